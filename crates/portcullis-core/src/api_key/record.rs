//! An API key as stored: who owns it, who made it, what it may do, until when.

use crate::clock::UnixTime;
use crate::error::AuthError;
use crate::ids::{AgentId, ApiKeyId, OrgId, UserId};
use crate::key_hash::KeyHash;
use crate::permission::PermissionSet;

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
    /// Usage credits left, if the key has any: each request it authenticates takes one
    /// ([`ApiKeyStore::take_credits`](crate::store::ApiKeyStore::take_credits)), and at zero it
    /// is refused with 429 `usage_exhausted`. `None`: unlimited. A key never gains or loses
    /// its limit, so a cached record tells whether the key has credits, never how many: the
    /// count is the store's.
    pub remaining: Option<u64>,
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

    #[test]
    fn disabled_beats_expired_and_expiry_is_exclusive() {
        let rec = ApiKeyRecord {
            expires_at: Some(100),
            ..crate::testing::api_key_record("k", KeyHash::of(b"k"))
        };
        assert_eq!(rec.check_usable(99), Ok(()));
        assert_eq!(rec.check_usable(100), Err(AuthError::ApiKeyExpired));
        let disabled = ApiKeyRecord {
            enabled: false,
            ..rec
        };
        assert_eq!(disabled.check_usable(100), Err(AuthError::ApiKeyDisabled));
    }
}
