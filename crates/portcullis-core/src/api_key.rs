//! API keys: `<prefix>_<43 random base62 chars><6-char checksum>`.
//!
//! The random part carries 256 bits (43 × log2 62 ≈ 256.0). The checksum is CRC-32 of
//! everything before it, so a typo or a forged key dies in [`parse`] before any lookup.
//! Keys are stored only as their SHA-256 [`KeyHash`].

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::UnixTime;
use crate::error::{ApiKeyFormatError, AuthError};
use crate::ids::{AgentId, ApiKeyId, OrgId, UserId};
use crate::permission::PermissionSet;
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

/// SHA-256 of a whole API key (or of a refresh token): what the stores keep.
/// Compared in constant time; `Debug` shows only the first bytes.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Lowercase hex, for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// From lowercase or uppercase hex.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

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

/// Who owns a key: a user (the key acts as itself) or an agent (the key acts as the agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// A user's key.
    User(UserId),
    /// An agent's key.
    Agent(AgentId),
}

/// Who made a key: the actor that asked — its id as `whoami` names it, or, for an actor that
/// came with an API key, that key's id — and the user behind it, if any (a user, or the owner of
/// the user's key that asked). An actor manages the keys it made; a user also those its keys
/// made (see [`crate::key_issuance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCreator {
    /// The creating actor's id (user, API key, agent or `board`).
    pub actor: String,
    /// The user accountable for it, if any.
    pub user: Option<UserId>,
}

impl KeyCreator {
    /// A key a user made directly.
    pub fn user(id: UserId) -> Self {
        Self {
            actor: id.as_str().to_owned(),
            user: Some(id),
        }
    }
}

impl From<UserId> for KeyCreator {
    fn from(id: UserId) -> Self {
        Self::user(id)
    }
}

impl From<&str> for KeyCreator {
    fn from(id: &str) -> Self {
        Self::user(UserId::from(id))
    }
}

/// Which keys a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysOf {
    /// Those the actor with this id made.
    Actor(String),
    /// Those a user made, directly or through its keys.
    User(UserId),
}

impl KeysOf {
    /// True when `record` is one of them.
    pub fn matches(&self, record: &ApiKeyRecord) -> bool {
        match self {
            Self::Actor(id) => record.created_by.actor == *id,
            Self::User(u) => record.created_by.user.as_ref() == Some(u),
        }
    }
}

/// A stored key. Holds no key material but its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id.
    pub id: ApiKeyId,
    /// The owner's label for it.
    pub name: String,
    /// SHA-256 of the key.
    pub hash: KeyHash,
    /// `<prefix>_<8 chars>`, for listings.
    pub display_prefix: String,
    /// Who made it.
    pub created_by: KeyCreator,
    /// Whom it acts as.
    pub owner: KeyOwner,
    /// The organisation.
    pub org_id: OrgId,
    /// What it may do.
    pub permissions: PermissionSet,
    /// When created.
    pub created_at: UnixTime,
    /// When it stops working, if ever.
    pub expires_at: Option<UnixTime>,
    /// Disabled keys are refused with `api_key_disabled`.
    pub enabled: bool,
    /// Its own rate limit, if any.
    pub rate_limit_per_minute: Option<u32>,
    /// Last use, written behind.
    pub last_used_at: Option<UnixTime>,
}

impl ApiKeyRecord {
    /// Whether the key may be used at `now`: disabled beats expired (the owner's explicit act
    /// is the more useful thing to report).
    pub fn check_usable(&self, now: UnixTime) -> Result<(), AuthError> {
        if !self.enabled {
            return Err(AuthError::ApiKeyDisabled);
        }
        match self.expires_at {
            Some(exp) if now >= exp => Err(AuthError::ApiKeyExpired),
            _ => Ok(()),
        }
    }
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

    #[test]
    fn key_hash_hex_round_trips_and_debug_is_short() {
        let h = KeyHash::of(b"x");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert_eq!(KeyHash::from_hex(&"é".repeat(32)), None);
        let shown = format!("{h:?}");
        assert!(shown.starts_with("KeyHash(") && !shown.contains(&h.to_hex()[..16]));
    }

    #[test]
    fn disabled_beats_expired_and_expiry_is_exclusive() {
        let rec = ApiKeyRecord {
            id: "k".into(),
            name: "n".into(),
            hash: KeyHash::of(b"k"),
            display_prefix: "ck_x".into(),
            created_by: "u".into(),
            owner: KeyOwner::User("u".into()),
            org_id: "o".into(),
            permissions: PermissionSet::EMPTY,
            created_at: 0,
            expires_at: Some(100),
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
        };
        assert_eq!(rec.check_usable(99), Ok(()));
        assert_eq!(rec.check_usable(100), Err(AuthError::ApiKeyExpired));
        let disabled = ApiKeyRecord {
            enabled: false,
            ..rec
        };
        assert_eq!(disabled.check_usable(100), Err(AuthError::ApiKeyDisabled));
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
