//! The ring's public keys as a JWKS document, for services that verify our access tokens.

use jsonwebtoken::jwk::JwkSet;

use super::keyring::KeyRing;

impl KeyRing {
    /// The public keys as a JWKS document (asymmetric keys only; secrets are never published).
    /// Each carries its `kid`, its `alg` and `use: sig`.
    ///
    /// ```
    /// use portcullis_core::{Secret, token::{KeyRing, SigningKey}};
    /// let ring = KeyRing::new(SigningKey::hs256(&Secret::random(32)));
    /// assert!(ring.jwks().keys.is_empty(), "an HS256 secret is never published");
    /// ```
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys()
                .filter_map(|k| k.material().public_key())
                .map(|public| public.jwk.clone())
                .collect(),
        }
    }
}
