//! Key ids, derived from the key itself so that they are stable across restarts and the same
//! for the signer and for a verify-only deployment of the same key.

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

use super::algorithm::JwtAlgorithm;
use super::key::KeyError;
use crate::api_key::KeyHash;
use crate::secret::Secret;

/// An HS256 key's `kid`: a one-way hash of its secret.
pub(crate) fn hs256_kid(secret: &Secret) -> Arc<str> {
    let mut input = b"portcullis-kid:".to_vec();
    input.extend_from_slice(secret.expose());
    let hash = KeyHash::of(&input);
    input.fill(0);
    format!("hs-{}", &hash.to_hex()[..16]).into()
}

/// A public key's `kid`: its RFC 7638 thumbprint.
pub(crate) fn thumbprint_kid(alg: JwtAlgorithm, jwk: &Jwk) -> Result<Arc<str>, KeyError> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map(Into::into)
        .map_err(|e| KeyError::InvalidKey(alg, e.to_string()))
}
