//! An API key as a string: `<prefix>_<43 random base62 chars><6-char checksum>`, generated
//! and parsed here; nothing else in the crate knows its layout.

use std::fmt;

use crate::error::ApiKeyFormatError;
use crate::key_hash::KeyHash;
use crate::secret::SecretString;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Characters of the random part kept in the public display prefix.
const DISPLAY_LEN: usize = 8;
/// The longest prefix accepted in configuration.
pub const MAX_PREFIX_LEN: usize = 16;

/// The configured key prefix (`ck` by default): 1–16 lowercase ASCII letters or digits.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyPrefix(Box<str>);

impl ApiKeyPrefix {
    /// Validates a prefix.
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let ok = (1..=MAX_PREFIX_LEN).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(prefix.into()))
        } else {
            Err(InvalidPrefix)
        }
    }

    /// The prefix text, without the underscore.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `credential` has this prefix's shape (`<prefix>_…`): the resolver-choosing
    /// test, no validation beyond that.
    pub fn matches(&self, credential: &str) -> bool {
        credential.len() > self.0.len()
            && credential.as_bytes()[self.0.len()] == b'_'
            && credential.starts_with(&*self.0)
    }

    /// The full length of a key with this prefix.
    pub fn key_len(&self) -> usize {
        self.0.len() + 1 + RANDOM_LEN + CHECKSUM_LEN
    }
}

impl Default for ApiKeyPrefix {
    fn default() -> Self {
        Self("ck".into())
    }
}

impl fmt::Debug for ApiKeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A prefix that is empty, too long, or not lowercase ASCII alphanumerics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an API key prefix is 1 to 16 lowercase ASCII letters or digits")]
pub struct InvalidPrefix;

/// A freshly generated key: shown to its owner once, then only its hash is kept.
#[derive(Debug)]
pub struct GeneratedApiKey {
    /// The whole key. `Debug` prints `***`.
    pub key: SecretString,
    /// Its SHA-256.
    pub hash: KeyHash,
    /// `<prefix>_<first 8 random chars>`: safe to show in listings.
    pub display_prefix: String,
}

/// Generates a new key with `prefix`.
///
/// ```
/// use portcullis_core::api_key::{self, ApiKeyPrefix};
/// let prefix = ApiKeyPrefix::default();
/// let generated = api_key::generate(&prefix);
/// let parsed = api_key::parse(generated.key.expose(), &prefix).unwrap();
/// assert_eq!(parsed.hash(), generated.hash);
/// ```
pub fn generate(prefix: &ApiKeyPrefix) -> GeneratedApiKey {
    let mut key = String::with_capacity(prefix.key_len());
    key.push_str(prefix.as_str());
    key.push('_');
    let mut filled = 0;
    let mut buf = [0u8; 64];
    while filled < RANDOM_LEN {
        crate::random::fill(&mut buf);
        for &b in &buf {
            // Rejection sampling keeps every character uniform: 248 = 4 × 62.
            if b < 248 && filled < RANDOM_LEN {
                key.push(ALPHABET[(b % 62) as usize] as char);
                filled += 1;
            }
        }
    }
    let checksum = checksum(key.as_bytes());
    key.push_str(std::str::from_utf8(&checksum).unwrap_or_default());
    let display_prefix = key[..prefix.as_str().len() + 1 + DISPLAY_LEN].to_owned();
    let hash = KeyHash::of(key.as_bytes());
    GeneratedApiKey {
        key: SecretString::new(key),
        hash,
        display_prefix,
    }
}

/// A presented key that parsed: right prefix, alphabet, length and checksum.
#[derive(Clone, Copy)]
pub struct PresentedApiKey<'a> {
    raw: &'a str,
    prefix_len: usize,
}

impl PresentedApiKey<'_> {
    /// SHA-256 of the key: the store lookup.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(self.raw.as_bytes())
    }

    /// The public display prefix.
    pub fn display_prefix(&self) -> &str {
        &self.raw[..self.prefix_len + 1 + DISPLAY_LEN]
    }
}

impl fmt::Debug for PresentedApiKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedApiKey({}…)", self.display_prefix())
    }
}

/// Parses a presented key. Cheap, allocation-free and total: any input returns.
pub fn parse<'a>(
    input: &'a str,
    prefix: &ApiKeyPrefix,
) -> Result<PresentedApiKey<'a>, ApiKeyFormatError> {
    if input.len() != prefix.key_len() {
        return Err(ApiKeyFormatError::Length);
    }
    if !prefix.matches(input) {
        return Err(ApiKeyFormatError::Prefix);
    }
    let p = prefix.as_str().len() + 1;
    let bytes = input.as_bytes();
    if !bytes[p..].iter().all(u8::is_ascii_alphanumeric) {
        return Err(ApiKeyFormatError::Alphabet);
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if checksum(body) != sum {
        return Err(ApiKeyFormatError::Checksum);
    }
    Ok(PresentedApiKey {
        raw: input,
        prefix_len: prefix.as_str().len(),
    })
}

/// CRC-32 of `body`, as six base62 digits (62⁶ > 2³²).
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pfx() -> ApiKeyPrefix {
        ApiKeyPrefix::default()
    }

    #[test]
    fn generated_key_has_the_documented_shape() {
        let g = generate(&pfx());
        let k = g.key.expose();
        assert_eq!(k.len(), 2 + 1 + 43 + 6);
        assert!(k.starts_with("ck_"));
        assert!(k[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(g.display_prefix, &k[..11]);
        assert_eq!(g.hash, KeyHash::of(k.as_bytes()));
        assert_ne!(generate(&pfx()).hash, g.hash);
    }

    #[test]
    fn typo_in_key_is_rejected_by_checksum() {
        let g = generate(&pfx());
        let mut k = g.key.expose().as_bytes().to_vec();
        // Change one character of the random part to another alphabet character.
        k[10] = if k[10] == b'a' { b'b' } else { b'a' };
        let k = String::from_utf8(k).unwrap();
        assert_eq!(parse(&k, &pfx()).unwrap_err(), ApiKeyFormatError::Checksum);
    }

    #[test]
    fn recased_key_is_rejected() {
        let g = generate(&pfx());
        let k = g.key.expose();
        let recased: String = k
            .chars()
            .enumerate()
            .map(|(i, c)| if i > 3 { c.to_ascii_uppercase() } else { c })
            .collect();
        if recased != k {
            assert_eq!(
                parse(&recased, &pfx()).unwrap_err(),
                ApiKeyFormatError::Checksum
            );
        }
    }

    #[test]
    fn wrong_prefix_length_and_alphabet_have_their_own_errors() {
        let g = generate(&pfx());
        let k = g.key.expose();
        assert_eq!(
            parse(&k[..k.len() - 1], &pfx()).unwrap_err(),
            ApiKeyFormatError::Length
        );
        assert_eq!(
            parse(&format!("{k}x"), &pfx()).unwrap_err(),
            ApiKeyFormatError::Length
        );
        let other = format!("zz{}", &k[2..]);
        assert_eq!(
            parse(&other, &pfx()).unwrap_err(),
            ApiKeyFormatError::Prefix
        );
        let bad = format!("{}-{}", &k[..10], &k[11..]);
        assert_eq!(
            parse(&bad, &pfx()).unwrap_err(),
            ApiKeyFormatError::Alphabet
        );
        assert_eq!(parse("", &pfx()).unwrap_err(), ApiKeyFormatError::Length);
    }

    #[test]
    fn custom_prefix_round_trips_and_bad_prefixes_are_refused() {
        let p = ApiKeyPrefix::new("acme2").unwrap();
        let g = generate(&p);
        assert!(p.matches(g.key.expose()));
        assert!(parse(g.key.expose(), &p).is_ok());
        assert_eq!(
            parse(g.key.expose(), &pfx()).unwrap_err(),
            ApiKeyFormatError::Length
        );
        for bad in ["", "CK", "c_k", "toolongprefix1234", "cé"] {
            assert_eq!(ApiKeyPrefix::new(bad), Err(InvalidPrefix), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_string(s in any::<String>()) {
            let _ = parse(&s, &pfx());
        }

        #[test]
        fn parse_rejects_huge_and_non_ascii_input(n in 50usize..100_000, c in any::<char>()) {
            let s: String = std::iter::repeat_n(c, n).collect();
            prop_assert!(parse(&s, &pfx()).is_err() || s.len() == pfx().key_len());
            let huge = format!("ck_{}", "a".repeat(100_000));
            prop_assert_eq!(parse(&huge, &pfx()).unwrap_err(), ApiKeyFormatError::Length);
        }

        #[test]
        fn any_single_substitution_is_caught(pos in 3usize..52, c in proptest::sample::select(ALPHABET.to_vec())) {
            let g = generate(&pfx());
            let mut k = g.key.expose().as_bytes().to_vec();
            prop_assume!(k[pos] != c);
            k[pos] = c;
            let k = String::from_utf8(k).unwrap();
            prop_assert_eq!(parse(&k, &pfx()).unwrap_err(), ApiKeyFormatError::Checksum);
        }
    }
}
