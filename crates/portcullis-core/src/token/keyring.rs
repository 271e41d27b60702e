//! The key ring of one token family: one active key that signs, older keys that only verify,
//! and finding the key a token names.

use super::header::ExplicitTyp;
use super::key::{KeyError, SigningKey, VerifyingKey};

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
        std::iter::once(self.active.verifying_key()).chain(self.previous.iter())
    }

    /// The key for a token header's `kid`; a token without `kid` is tried against the active
    /// key only.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            None => Some(self.active.verifying_key()),
            Some(kid) => self.keys().find(|k| k.kid() == kid),
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
        self.keys().find_map(|k| Some((k, k.minted_typ(segment)?)))
    }
}
