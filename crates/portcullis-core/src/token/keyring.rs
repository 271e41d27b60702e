//! Signing keys and the key ring: one active key that signs, older keys that only verify.
//!
//! A key's algorithm is part of the key: an HS256 key verifies only HS256 tokens, so an
//! RS256 public key can never be used as an HMAC secret (algorithm confusion).

use std::fmt;
use std::sync::{Arc, Once};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::verify::ExplicitTyp;
use crate::api_key::KeyHash;
use crate::secret::Secret;

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "portcullis-core needs a crypto backend: enable its `aws-lc` (default) or `rust-crypto` feature"
);

/// Installs jsonwebtoken's process-wide crypto provider from *our* features before any
/// jsonwebtoken call. jsonwebtoken on its own falls back to a provider that panics at run time
/// when both or neither of its backends are enabled; this makes every combination work
/// (aws-lc wins when both are on, as the faster one).
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // Err means the application installed a provider first; that one is used.
        let _ = provider.install_default();
    });
}

/// The JWT signature algorithms Portcullis accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwtAlgorithm {
    /// Every supported algorithm, in discriminant order.
    pub const ALL: [Self; 4] = [Self::Hs256, Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name: `HS256`, `RS256`, `ES256`, `EdDSA`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses the exact JOSE name (case-sensitive, as RFC 7515 says).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub(crate) const fn to_jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// True for the public-key algorithms (published in JWKS).
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hs256)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM does not hold a key of the algorithm's kind.
    #[error("the {0} key could not be read: {1}")]
    InvalidKey(JwtAlgorithm, String),
    /// HS256 keys come from secrets, not PEM files.
    #[error("HS256 keys are secrets, not PEM files")]
    NotPem,
    /// Two keys of the ring share a `kid`.
    #[error("two keys share the kid `{0}`")]
    DuplicateKid(String),
}

/// HMAC-SHA256 keyed once, so that verifying does not re-derive the key pads for every token
/// (what `jsonwebtoken::decode` does; measured in portcullis-bench). From aws-lc when that
/// backend is on, else RustCrypto.
#[derive(Clone)]
pub(crate) struct HmacSha256 {
    #[cfg(feature = "aws-lc")]
    key: aws_lc_rs::hmac::Key,
    #[cfg(not(feature = "aws-lc"))]
    key: hmac::Hmac<sha2::Sha256>,
}

impl HmacSha256 {
    fn new(secret: &[u8]) -> Option<Self> {
        #[cfg(feature = "aws-lc")]
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        #[cfg(not(feature = "aws-lc"))]
        let key = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret).ok()?;
        Some(Self { key })
    }

    /// True when `tag` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        #[cfg(feature = "aws-lc")]
        return aws_lc_rs::hmac::verify(&self.key, message, tag).is_ok();
        #[cfg(not(feature = "aws-lc"))]
        return hmac::Mac::verify_slice(hmac::Mac::chain_update(self.key.clone(), message), tag)
            .is_ok();
    }
}

/// A key that verifies: a shared secret or a public key, with its `kid` and algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Arc<str>,
    alg: JwtAlgorithm,
    decoding: DecodingKey,
    public_jwk: Option<Jwk>,
    /// HS256 only: the pre-keyed MAC.
    hmac: Option<Arc<HmacSha256>>,
    /// The base64url headers our signer writes for this key, typed `JWT` (refresh and agent
    /// tokens) and `at+jwt` (access tokens): a token whose header segment is exactly one of
    /// these needs no header parsing.
    header_segments: Arc<HeaderSegments>,
}

/// The header segments [`Verifier::sign`](super::verify) writes for a key.
#[derive(Debug)]
struct HeaderSegments {
    generic: String,
    access: String,
}

impl HeaderSegments {
    fn new(alg: JwtAlgorithm, kid: &str) -> Arc<Self> {
        let segment = |typ: ExplicitTyp| {
            let mut header = jsonwebtoken::Header::new(alg.to_jwt());
            header.typ = Some(typ.header_value().to_owned());
            header.kid = Some(kid.to_owned());
            let json = serde_json::to_vec(&header).unwrap_or_default();
            URL_SAFE_NO_PAD.encode(json)
        };
        Arc::new(Self {
            generic: segment(ExplicitTyp::Generic),
            access: segment(ExplicitTyp::Access),
        })
    }

    /// The typ of the header `segment` is, if it is one of these.
    fn typ_of(&self, segment: &str) -> Option<ExplicitTyp> {
        if segment == self.access {
            Some(ExplicitTyp::Access)
        } else if segment == self.generic {
            Some(ExplicitTyp::Generic)
        } else {
            None
        }
    }
}

impl VerifyingKey {
    /// An HS256 key from a shared secret; its `kid` is derived from the secret (a one-way
    /// hash, stable across restarts).
    pub fn hs256(secret: &Secret) -> Self {
        install_crypto_provider();
        let kid = hs256_kid(secret);
        Self {
            header_segments: HeaderSegments::new(JwtAlgorithm::Hs256, &kid),
            kid,
            alg: JwtAlgorithm::Hs256,
            decoding: DecodingKey::from_secret(secret.expose()),
            public_jwk: None,
            // HMAC takes keys of any length: this cannot fail.
            hmac: HmacSha256::new(secret.expose()).map(Arc::new),
        }
    }

    /// A public key (SPKI PEM) for RS256, ES256 or EdDSA; its `kid` is its RFC 7638 thumbprint.
    pub fn from_public_pem(alg: JwtAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let err = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey(alg, e.to_string());
        let decoding = match alg {
            JwtAlgorithm::Hs256 => return Err(KeyError::NotPem),
            JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem).map_err(err)?,
            JwtAlgorithm::Es256 => DecodingKey::from_ec_pem(pem).map_err(err)?,
            JwtAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem).map_err(err)?,
        };
        let jwk = Jwk::from_decoding_key(&decoding, Some(alg.to_jwt())).map_err(err)?;
        Self::from_public_jwk(alg, decoding, jwk, None)
    }

    fn from_public_jwk(
        alg: JwtAlgorithm,
        decoding: DecodingKey,
        mut jwk: Jwk,
        kid: Option<Arc<str>>,
    ) -> Result<Self, KeyError> {
        let kid = match kid {
            Some(k) => k,
            None => jwk
                .thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| KeyError::InvalidKey(alg, e.to_string()))?
                .into(),
        };
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            header_segments: HeaderSegments::new(alg, &kid),
            kid,
            alg,
            decoding,
            public_jwk: Some(jwk),
            hmac: None,
        })
    }

    /// Replaces the derived `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.into();
        self.header_segments = HeaderSegments::new(self.alg, kid);
        if let Some(jwk) = &mut self.public_jwk {
            jwk.common.key_id = Some(kid.to_owned());
        }
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn hmac(&self) -> Option<&HmacSha256> {
        self.hmac.as_deref()
    }

    /// The header segment our signer writes for this key and `typ`.
    pub(crate) fn header_segment(&self, typ: ExplicitTyp) -> &str {
        match typ {
            ExplicitTyp::Access => &self.header_segments.access,
            ExplicitTyp::Generic | ExplicitTyp::Other => &self.header_segments.generic,
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A key that signs: a shared secret or a private key. Also verifies.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verifying: VerifyingKey,
}

impl SigningKey {
    /// An HS256 key from a shared secret.
    pub fn hs256(secret: &Secret) -> Self {
        install_crypto_provider();
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            verifying: VerifyingKey::hs256(secret),
        }
    }

    /// A private key for RS256, ES256 or EdDSA, in any PEM form `openssl` writes: PKCS#8
    /// (`PRIVATE KEY`), PKCS#1 for RSA (`RSA PRIVATE KEY`), SEC1 for ES256 (`EC PRIVATE KEY`,
    /// also after the `EC PARAMETERS` block `openssl ecparam -genkey` writes without `-noout`).
    /// The public half is derived for verification and JWKS.
    ///
    /// ```
    /// use portcullis_core::token::{JwtAlgorithm, SigningKey};
    /// let sec1 = include_bytes!("testdata/es256.sec1.pem");
    /// let pkcs8 = include_bytes!("testdata/es256.pem");
    /// let a = SigningKey::from_private_pem(JwtAlgorithm::Es256, sec1).unwrap();
    /// let b = SigningKey::from_private_pem(JwtAlgorithm::Es256, pkcs8).unwrap();
    /// assert_eq!(a.kid(), b.kid(), "one key, two encodings");
    /// ```
    pub fn from_private_pem(alg: JwtAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let err = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey(alg, e.to_string());
        let block = private_key_block(alg, pem)?;
        let encoding = match (alg, block.tag()) {
            (JwtAlgorithm::Hs256, _) => return Err(KeyError::NotPem),
            // jsonwebtoken reads EC keys only as PKCS#8: re-wrap SEC1 (RFC 5915) as PKCS#8.
            (JwtAlgorithm::Es256, "EC PRIVATE KEY") => {
                EncodingKey::from_ec_der(sec1_to_pkcs8(block.contents())?.as_bytes())
            }
            (JwtAlgorithm::Rs256, _) => {
                EncodingKey::from_rsa_pem(pem::encode(&block).as_bytes()).map_err(err)?
            }
            (JwtAlgorithm::Es256, _) => {
                EncodingKey::from_ec_pem(pem::encode(&block).as_bytes()).map_err(err)?
            }
            (JwtAlgorithm::EdDsa, _) => {
                EncodingKey::from_ed_pem(pem::encode(&block).as_bytes()).map_err(err)?
            }
        };
        let jwk = Jwk::from_encoding_key(&encoding, alg.to_jwt()).map_err(err)?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(err)?;
        Ok(Self {
            encoding,
            verifying: VerifyingKey::from_public_jwk(alg, decoding, jwk, None)?,
        })
    }

    /// Replaces the derived `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.verifying = self.verifying.with_kid(kid);
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.verifying.kid()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.verifying.alg
    }

    /// The verifying half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// The one private-key block of a PEM file, with a reason naming what was found instead.
/// Never quotes the file: it holds a private key.
fn private_key_block(alg: JwtAlgorithm, pem: &[u8]) -> Result<pem::Pem, KeyError> {
    if alg == JwtAlgorithm::Hs256 {
        return Err(KeyError::NotPem);
    }
    let invalid = |reason: &str| KeyError::InvalidKey(alg, reason.to_owned());
    let blocks = pem::parse_many(pem).map_err(|_| invalid("not a PEM file"))?;
    let accepted: &[&str] = match alg {
        JwtAlgorithm::Rs256 => &["PRIVATE KEY", "RSA PRIVATE KEY"],
        JwtAlgorithm::Es256 => &["PRIVATE KEY", "EC PRIVATE KEY"],
        JwtAlgorithm::EdDsa | JwtAlgorithm::Hs256 => &["PRIVATE KEY"],
    };
    let mut keys = blocks
        .into_iter()
        .filter(|b| b.tag().ends_with("PRIVATE KEY"));
    match (keys.next(), keys.next()) {
        (Some(block), None) if accepted.contains(&block.tag()) => Ok(block),
        (Some(block), None) if block.tag() == "ENCRYPTED PRIVATE KEY" => Err(invalid(
            "the key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)",
        )),
        (Some(block), None) => Err(invalid(&format!(
            "a `{}` block does not hold a {alg} key; expected {}",
            block.tag(),
            accepted.join(" or ")
        ))),
        (None, _) => Err(invalid("no PRIVATE KEY block in the PEM file")),
        (Some(_), Some(_)) => Err(invalid("more than one private key in the PEM file")),
    }
}

/// A SEC1 `ECPrivateKey` (DER) on P-256 as PKCS#8 (DER). Other curves are refused here.
fn sec1_to_pkcs8(der: &[u8]) -> Result<p256::pkcs8::der::SecretDocument, KeyError> {
    use p256::pkcs8::EncodePrivateKey as _;
    let invalid = |reason: &str| KeyError::InvalidKey(JwtAlgorithm::Es256, reason.to_owned());
    p256::SecretKey::from_sec1_der(der)
        .map_err(|_| invalid("the EC PRIVATE KEY is not a valid P-256 (prime256v1) key"))?
        .to_pkcs8_der()
        .map_err(|_| invalid("the EC PRIVATE KEY could not be re-encoded as PKCS#8"))
}

fn hs256_kid(secret: &Secret) -> Arc<str> {
    let mut input = b"portcullis-kid:".to_vec();
    input.extend_from_slice(secret.expose());
    let hash = KeyHash::of(&input);
    input.fill(0);
    format!("hs-{}", &hash.to_hex()[..16]).into()
}

/// The keys of one token family: the active key signs, every key verifies.
///
/// ```
/// use portcullis_core::{Secret, token::{KeyRing, SigningKey, VerifyingKey}};
/// let old = Secret::from("an-old-secret-of-at-least-32-bytes!!");
/// let new = Secret::from("the-new-secret-of-at-least-32-bytes!!");
/// let ring = KeyRing::new(SigningKey::hs256(&new))
///     .with_previous(VerifyingKey::hs256(&old))
///     .unwrap();
/// assert_eq!(ring.keys().count(), 2);
/// assert!(ring.find(Some(ring.active().kid())).is_some());
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    active: SigningKey,
    previous: Vec<VerifyingKey>,
}

impl KeyRing {
    /// A ring with one key.
    pub fn new(active: SigningKey) -> Self {
        Self {
            active,
            previous: Vec::new(),
        }
    }

    /// Adds a verify-only key (a key being rotated out).
    pub fn with_previous(mut self, key: VerifyingKey) -> Result<Self, KeyError> {
        if self.keys().any(|k| k.kid() == key.kid()) {
            return Err(KeyError::DuplicateKid(key.kid().to_owned()));
        }
        self.previous.push(key);
        Ok(self)
    }

    /// The signing key.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every verifying key, the active one first.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        std::iter::once(&self.active.verifying).chain(self.previous.iter())
    }

    /// The key for a token header's `kid`; a token without `kid` is tried against the active
    /// key only.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            None => Some(&self.active.verifying),
            Some(kid) => self.keys().find(|k| &*k.kid == kid),
        }
    }

    /// The key whose minted header segment (base64url, as this crate signs, of any token
    /// kind) is exactly `segment`, if any.
    pub fn by_header_segment(&self, segment: &str) -> Option<&VerifyingKey> {
        self.by_header_segment_typed(segment).map(|(key, _)| key)
    }

    /// As [`by_header_segment`](Self::by_header_segment), with the `typ` that header carries.
    pub(crate) fn by_header_segment_typed(
        &self,
        segment: &str,
    ) -> Option<(&VerifyingKey, ExplicitTyp)> {
        self.keys()
            .find_map(|k| Some((k, k.header_segments.typ_of(segment)?)))
    }

    /// The public keys as a JWKS document (asymmetric keys only; secrets are never published).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys().filter_map(|k| k.public_jwk.clone()).collect(),
        }
    }
}
