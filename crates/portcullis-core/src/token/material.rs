//! Key material by algorithm: each variant holds exactly what its algorithm signs or
//! verifies with, so an HS256 key cannot carry a public key, nor an RS256 key a secret, and a
//! key's algorithm is what it is made of rather than a field that could disagree with it.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::algorithm::JwtAlgorithm;
use super::hmac::HmacSha256;
use super::key::KeyError;

/// A public key, as the crypto provider verifies with it and as JWKS publishes it.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) decoding: DecodingKey,
    /// Carries the key's `kid` and `use: sig`.
    pub(crate) jwk: Jwk,
}

/// What verifies a signature.
#[derive(Clone)]
pub(crate) enum VerifyingMaterial {
    /// The shared secret, as a pre-keyed MAC.
    Hs256(Arc<HmacSha256>),
    /// An RSA public key.
    Rs256(Arc<PublicKey>),
    /// A P-256 public key.
    Es256(Arc<PublicKey>),
    /// An Ed25519 public key.
    EdDsa(Arc<PublicKey>),
}

impl VerifyingMaterial {
    /// A public key of the asymmetric algorithm `alg`; HS256 keys are secrets, not public keys.
    pub(crate) fn public(alg: JwtAlgorithm, key: PublicKey) -> Result<Self, KeyError> {
        let key = Arc::new(key);
        Ok(match alg {
            JwtAlgorithm::Hs256 => return Err(KeyError::NotPem),
            JwtAlgorithm::Rs256 => Self::Rs256(key),
            JwtAlgorithm::Es256 => Self::Es256(key),
            JwtAlgorithm::EdDsa => Self::EdDsa(key),
        })
    }

    /// The one algorithm this material verifies.
    pub(crate) const fn algorithm(&self) -> JwtAlgorithm {
        match self {
            Self::Hs256(_) => JwtAlgorithm::Hs256,
            Self::Rs256(_) => JwtAlgorithm::Rs256,
            Self::Es256(_) => JwtAlgorithm::Es256,
            Self::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// The public key, for the asymmetric algorithms.
    pub(crate) fn public_key(&self) -> Option<&PublicKey> {
        match self {
            Self::Hs256(_) => None,
            Self::Rs256(k) | Self::Es256(k) | Self::EdDsa(k) => Some(k),
        }
    }

    /// The public key, to relabel (its JWK's `kid`).
    pub(crate) fn public_key_mut(&mut self) -> Option<&mut PublicKey> {
        match self {
            Self::Hs256(_) => None,
            Self::Rs256(k) | Self::Es256(k) | Self::EdDsa(k) => Some(Arc::make_mut(k)),
        }
    }
}

/// What makes a signature.
#[derive(Clone)]
pub(crate) enum SigningMaterial {
    /// The shared secret: the same pre-keyed MAC that verifies.
    Hs256(Arc<HmacSha256>),
    /// An RSA private key.
    Rs256(EncodingKey),
    /// A P-256 private key.
    Es256(EncodingKey),
    /// An Ed25519 private key.
    EdDsa(EncodingKey),
}

impl SigningMaterial {
    /// A private key of the asymmetric algorithm `alg`.
    pub(crate) fn private(alg: JwtAlgorithm, key: EncodingKey) -> Result<Self, KeyError> {
        Ok(match alg {
            JwtAlgorithm::Hs256 => return Err(KeyError::NotPem),
            JwtAlgorithm::Rs256 => Self::Rs256(key),
            JwtAlgorithm::Es256 => Self::Es256(key),
            JwtAlgorithm::EdDsa => Self::EdDsa(key),
        })
    }

    /// The one algorithm this material signs with.
    pub(crate) const fn algorithm(&self) -> JwtAlgorithm {
        match self {
            Self::Hs256(_) => JwtAlgorithm::Hs256,
            Self::Rs256(_) => JwtAlgorithm::Rs256,
            Self::Es256(_) => JwtAlgorithm::Es256,
            Self::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// The base64url signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
        match self {
            Self::Hs256(mac) => Ok(URL_SAFE_NO_PAD.encode(mac.sign(message))),
            Self::Rs256(key) | Self::Es256(key) | Self::EdDsa(key) => {
                jsonwebtoken::crypto::sign(message, key, self.algorithm().to_jwt())
            }
        }
    }
}
