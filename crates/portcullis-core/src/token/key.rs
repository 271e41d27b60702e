//! Signing and verifying keys: a `kid`, the key material of one algorithm, and the headers
//! our signer writes for it.
//!
//! A key's algorithm is its material's: an HS256 key verifies only HS256 tokens, so an
//! RS256 public key can never be used as an HMAC secret (algorithm confusion).

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};

use super::algorithm::JwtAlgorithm;
use super::header::{ExplicitTyp, HeaderSegments};
use super::hmac::HmacSha256;
use super::kid::{hs256_kid, thumbprint_kid};
use super::material::{PublicKey, SigningMaterial, VerifyingMaterial};
use super::private_pem;
use super::provider::install_crypto_provider;
use crate::secret::Secret;

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

/// A key that verifies: a shared secret or a public key, with its `kid`.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Arc<str>,
    material: VerifyingMaterial,
    header_segments: Arc<HeaderSegments>,
}

impl VerifyingKey {
    fn new(kid: Arc<str>, material: VerifyingMaterial) -> Self {
        Self {
            header_segments: HeaderSegments::new(material.algorithm(), &kid),
            kid,
            material,
        }
    }

    /// An HS256 key from a shared secret; its `kid` is derived from the secret (a one-way
    /// hash, stable across restarts).
    pub fn hs256(secret: &Secret) -> Self {
        // Not needed for HS256 itself; installed for whatever else in the process calls
        // jsonwebtoken, as every key constructor does.
        install_crypto_provider();
        let mac = Arc::new(HmacSha256::new(secret.expose()));
        Self::new(hs256_kid(secret), VerifyingMaterial::Hs256(mac))
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
        Self::public(alg, decoding, jwk)
    }

    /// A public key of `alg`, named by its thumbprint.
    fn public(alg: JwtAlgorithm, decoding: DecodingKey, mut jwk: Jwk) -> Result<Self, KeyError> {
        let kid = thumbprint_kid(alg, &jwk)?;
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let material = VerifyingMaterial::asymmetric(alg, Arc::new(PublicKey { decoding, jwk }))?;
        Ok(Self::new(kid, material))
    }

    /// Replaces the derived `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        if let Some(public) = self.material.public_key_mut() {
            public.jwk.common.key_id = Some(kid.to_owned());
        }
        Self::new(kid.into(), self.material)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies: the kind of its material.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.material.algorithm()
    }

    pub(crate) fn material(&self) -> &VerifyingMaterial {
        &self.material
    }

    /// The header segment our signer writes for this key and `typ`.
    pub(crate) fn header_segment(&self, typ: ExplicitTyp) -> &str {
        self.header_segments.get(typ)
    }

    /// The `typ` of `segment`, if it is a header our signer writes for this key.
    pub(crate) fn minted_typ(&self, segment: &str) -> Option<ExplicitTyp> {
        self.header_segments.typ_of(segment)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// A key that signs: a shared secret or a private key. Also verifies.
#[derive(Clone)]
pub struct SigningKey {
    /// Built with `verifying` from one secret or one private key, so of its algorithm.
    signing: SigningMaterial,
    verifying: VerifyingKey,
}

impl SigningKey {
    /// An HS256 key from a shared secret.
    pub fn hs256(secret: &Secret) -> Self {
        install_crypto_provider();
        let mac = Arc::new(HmacSha256::new(secret.expose()));
        Self {
            signing: SigningMaterial::Hs256(mac.clone()),
            verifying: VerifyingKey::new(hs256_kid(secret), VerifyingMaterial::Hs256(mac)),
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
        let encoding = private_pem::encoding_key(alg, pem)?;
        let jwk = Jwk::from_encoding_key(&encoding, alg.to_jwt()).map_err(err)?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(err)?;
        Ok(Self {
            signing: SigningMaterial::asymmetric(alg, encoding)?,
            verifying: VerifyingKey::public(alg, decoding, jwk)?,
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
        self.signing.algorithm()
    }

    /// The verifying half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The base64url signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
        self.signing.sign(message)
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
