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
    /// The base64url header our signer writes for this key: a token whose header segment is
    /// exactly this needs no header parsing.
    header_segment: Arc<str>,
}

/// The header segment [`Verifier::sign`](super::verify) writes for a key.
fn header_segment(alg: JwtAlgorithm, kid: &str) -> Arc<str> {
    let mut header = jsonwebtoken::Header::new(alg.to_jwt());
    header.kid = Some(kid.to_owned());
    let json = serde_json::to_vec(&header).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json).into()
}

impl VerifyingKey {
    /// An HS256 key from a shared secret; its `kid` is derived from the secret (a one-way
    /// hash, stable across restarts).
    pub fn hs256(secret: &Secret) -> Self {
        install_crypto_provider();
        let kid = hs256_kid(secret);
        Self {
            header_segment: header_segment(JwtAlgorithm::Hs256, &kid),
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
            header_segment: header_segment(alg, &kid),
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
        self.header_segment = header_segment(self.alg, kid);
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

    pub(crate) fn header_segment(&self) -> &str {
        &self.header_segment
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

    /// A private key (PKCS#8 PEM; PKCS#1 also for RSA, SEC1 also for EC) for RS256, ES256 or
    /// EdDSA. The public half is derived for verification and JWKS.
    pub fn from_private_pem(alg: JwtAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let err = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey(alg, e.to_string());
        let encoding = match alg {
            JwtAlgorithm::Hs256 => return Err(KeyError::NotPem),
            JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem).map_err(err)?,
            JwtAlgorithm::Es256 => EncodingKey::from_ec_pem(pem).map_err(err)?,
            JwtAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem).map_err(err)?,
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

    /// The key whose minted header segment (base64url, as this crate signs) is exactly
    /// `segment`, if any.
    pub fn by_header_segment(&self, segment: &str) -> Option<&VerifyingKey> {
        self.keys().find(|k| k.header_segment() == segment)
    }

    /// The public keys as a JWKS document (asymmetric keys only; secrets are never published).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys().filter_map(|k| k.public_jwk.clone()).collect(),
        }
    }
}
