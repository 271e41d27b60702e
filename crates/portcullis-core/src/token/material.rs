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

/// One half of a key, by algorithm: `S` is what the shared-secret algorithm holds, `A` what
/// each public-key algorithm holds.
#[derive(Clone)]
pub(crate) enum Material<S, A> {
    /// HMAC-SHA256.
    Hs256(S),
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256(A),
    /// ECDSA P-256 with SHA-256.
    Es256(A),
    /// Ed25519.
    EdDsa(A),
}

/// What verifies a signature: the pre-keyed MAC, or a public key.
pub(crate) type VerifyingMaterial = Material<Arc<HmacSha256>, Arc<PublicKey>>;

/// What makes a signature: the same pre-keyed MAC that verifies, or a private key.
pub(crate) type SigningMaterial = Material<Arc<HmacSha256>, EncodingKey>;

impl<S, A> Material<S, A> {
    /// The half `key` of a key of the public-key algorithm `alg`; HS256 keys are secrets, not
    /// key pairs.
    pub(crate) fn asymmetric(alg: JwtAlgorithm, key: A) -> Result<Self, KeyError> {
        Ok(match alg {
            JwtAlgorithm::Hs256 => return Err(KeyError::NotPem),
            JwtAlgorithm::Rs256 => Self::Rs256(key),
            JwtAlgorithm::Es256 => Self::Es256(key),
            JwtAlgorithm::EdDsa => Self::EdDsa(key),
        })
    }

    /// The one algorithm this material serves.
    pub(crate) const fn algorithm(&self) -> JwtAlgorithm {
        match self {
            Self::Hs256(_) => JwtAlgorithm::Hs256,
            Self::Rs256(_) => JwtAlgorithm::Rs256,
            Self::Es256(_) => JwtAlgorithm::Es256,
            Self::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// The public-key algorithms' half, if this is one of them.
    pub(crate) fn asymmetric_half(&self) -> Option<&A> {
        match self {
            Self::Hs256(_) => None,
            Self::Rs256(k) | Self::Es256(k) | Self::EdDsa(k) => Some(k),
        }
    }
}

impl VerifyingMaterial {
    /// The public key, for the public-key algorithms.
    pub(crate) fn public_key(&self) -> Option<&PublicKey> {
        self.asymmetric_half().map(|k| &**k)
    }

    /// The public key, to relabel (its JWK's `kid`).
    pub(crate) fn public_key_mut(&mut self) -> Option<&mut PublicKey> {
        match self {
            Self::Hs256(_) => None,
            Self::Rs256(k) | Self::Es256(k) | Self::EdDsa(k) => Some(Arc::make_mut(k)),
        }
    }
}

impl SigningMaterial {
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
