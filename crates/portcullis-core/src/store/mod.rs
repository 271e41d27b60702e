//! Store traits: where keys, sessions, agents and denied tokens live.
//!
//! Every backend (in-memory here; SQL and Redis in their crates) implements the same traits
//! and passes the same conformance suite. A store that cannot answer returns
//! [`StoreError`], which the layer turns into 503 `auth_unavailable`: fail closed.

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;

pub use memory::{MemoryAgentDirectory, MemoryApiKeyStore, MemoryDenylist, MemorySessionStore};

use crate::api_key::{ApiKeyRecord, KeyHash, KeysOf};
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use crate::session::{RefreshRejection, SessionRecord};

/// API keys, found by the SHA-256 of the presented key.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key. A second key with the same hash or id is a [`StoreError::Conflict`].
    async fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError>;
    /// The key whose hash is `hash`.
    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// The key with id `id`.
    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// The keys `of` names, oldest first.
    async fn list(&self, of: &KeysOf) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Enables or disables a key; false when there is no such key.
    async fn set_enabled(&self, id: &ApiKeyId, enabled: bool) -> Result<bool, StoreError>;
    /// Deletes a key; false when there is no such key.
    async fn delete(&self, id: &ApiKeyId) -> Result<bool, StoreError>;
    /// Records last use for a batch of keys (written behind, never on the request path).
    async fn touch(&self, used: &[(ApiKeyId, UnixTime)]) -> Result<(), StoreError>;
    /// How many keys `org` has (enabled or not, expired or not), or every org when `None`:
    /// for statistics.
    ///
    /// The default answers [`StoreError::Unavailable`] (a store written before this method
    /// existed still compiles, and a count it cannot give fails closed); every store of this
    /// workspace implements it.
    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        let _ = org;
        Err(StoreError::Unavailable(
            "this API key store does not count keys".into(),
        ))
    }
}

/// The result of presenting a refresh token to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshResult {
    /// Rotated; the new state is stored.
    Rotated(SessionRecord),
    /// Reuse detected; the session is now revoked.
    ReuseDetected,
    /// Refused without change.
    Rejected(RefreshRejection),
    /// No such session.
    NotFound,
}

/// Login sessions and refresh rotation.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn create(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// The session `id`.
    async fn get(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;
    /// Applies [`SessionRecord::refresh`] atomically: of two concurrent refreshes with the
    /// same token, exactly one rotates.
    async fn refresh(
        &self,
        id: &SessionId,
        presented: &KeyHash,
        next: KeyHash,
        now: UnixTime,
        grace_secs: u64,
    ) -> Result<RefreshResult, StoreError>;
    /// Revokes one session; false when there is no such session.
    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError>;
    /// Revokes every session of `user`; returns how many were live.
    async fn revoke_all_for_user(&self, user: &UserId) -> Result<u64, StoreError>;
    /// Sessions live at `now` in `org`, or in every org (for stats).
    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError>;
}

/// Whether an agent is active or terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// Its tokens and keys work.
    Active,
    /// Its tokens and keys are dead.
    Terminated,
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Its id (the `sub` of its run tokens).
    pub id: AgentId,
    /// Its organisation (the `company_id` of its run tokens).
    pub org_id: OrgId,
    /// Its name.
    pub name: String,
    /// Active or terminated.
    pub status: AgentStatus,
    /// When created.
    pub created_at: UnixTime,
}

/// Agents, checked on every agent request.
#[async_trait]
pub trait AgentDirectory: Send + Sync + 'static {
    /// Stores a new agent.
    async fn insert(&self, agent: AgentRecord) -> Result<(), StoreError>;
    /// The agent `id`.
    async fn get(&self, id: &AgentId) -> Result<Option<AgentRecord>, StoreError>;
    /// Terminates an agent; false when there is no such agent.
    async fn terminate(&self, id: &AgentId) -> Result<bool, StoreError>;
    /// How many agents there are in `org`, or in every org (for stats).
    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError>;
}

/// Token ids (`jti`) refused before their expiry.
#[async_trait]
pub trait Denylist: Send + Sync + 'static {
    /// Denies `jti` until `expires_at` (the token's own `exp`; after it the entry may go).
    async fn deny(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError>;
    /// True when `jti` is denied at `now`.
    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError>;
}

/// One backend's four stores, as the [`Authenticator`](crate::Authenticator) uses them.
#[derive(Clone)]
pub struct Stores {
    /// API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Agents.
    pub agents: Arc<dyn AgentDirectory>,
    /// Denied `jti`s.
    pub denylist: Arc<dyn Denylist>,
}

impl Stores {
    /// Fresh bounded in-memory stores.
    pub fn memory() -> Self {
        Self {
            api_keys: Arc::new(MemoryApiKeyStore::default()),
            sessions: Arc::new(MemorySessionStore::default()),
            agents: Arc::new(MemoryAgentDirectory::default()),
            denylist: Arc::new(MemoryDenylist::default()),
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
