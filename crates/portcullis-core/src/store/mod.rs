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
use crate::session::{RefreshRejection, SessionRecord, Transition};

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
    /// Gives key `id` a new secret (a reroll): `new_hash` and `display_prefix` replace the
    /// current ones in one atomic step. With `previous_until`, the hash replaced stays
    /// presentable until then ([`find_presented`](Self::find_presented) finds it), replacing
    /// any hash an earlier reroll kept: only the newest replaced secret survives. Without it,
    /// the replaced hash is forgotten at once. False when there is no such key.
    ///
    /// The default answers [`StoreError::Unavailable`] (a store written before this method
    /// existed still compiles, and a reroll it cannot do fails closed); every store of this
    /// workspace implements it.
    async fn reroll(
        &self,
        id: &ApiKeyId,
        new_hash: KeyHash,
        display_prefix: &str,
        previous_until: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let _ = (id, new_hash, display_prefix, previous_until);
        Err(StoreError::Unavailable(
            "this API key store does not reroll keys".into(),
        ))
    }
    /// The key a presented hash stands for: by its current hash (with `None`), or by the hash
    /// its last reroll replaced (with that hash's deadline, which the caller checks; a store
    /// may also stop finding it once the deadline is past).
    ///
    /// The default is [`find_by_hash`](Self::find_by_hash): a store without rerolls.
    async fn find_presented(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(ApiKeyRecord, Option<UnixTime>)>, StoreError> {
        Ok(self.find_by_hash(hash).await?.map(|r| (r, None)))
    }
    /// The hash key `id`'s last reroll replaced and until when it is presentable, if one is
    /// kept (it may be past its deadline): what must be dropped from caches with the key.
    async fn previous_hash(
        &self,
        id: &ApiKeyId,
    ) -> Result<Option<(KeyHash, UnixTime)>, StoreError> {
        let _ = id;
        Ok(None)
    }
    /// Takes `n` usage credits from key `id` as one atomic step: all `n` or none, and never
    /// below zero however many instances take at once. A request takes one; a key made by a
    /// key with credits takes its own credits from its parent (see
    /// [`Lifecycle::create_api_key`](crate::lifecycle::Lifecycle::create_api_key)).
    ///
    /// The store's count is the only one: no cache, no other store (not Redis, where one is
    /// configured) holds a copy that could drift, be evicted and re-seeded, or hand out a
    /// credit twice. On SQL it is one conditional `UPDATE … WHERE remaining >= n`, which
    /// the database serialises per row across every instance; only keys with credits pay
    /// that round trip.
    ///
    /// The default answers [`StoreError::Unavailable`] (a store written before this method
    /// existed still compiles, and a credit it cannot count is refused: fail closed); every
    /// store of this workspace implements it.
    async fn take_credits(&self, id: &ApiKeyId, n: u64) -> Result<Credits, StoreError> {
        let _ = (id, n);
        Err(StoreError::Unavailable(
            "this API key store does not count usage credits".into(),
        ))
    }
    /// Gives back `n` credits that [`take_credits`](Self::take_credits) took for a step that
    /// then failed (a child key that could not be stored), as one atomic add. A key without a
    /// limit, or no longer there, is left as it is.
    ///
    /// The default answers [`StoreError::Unavailable`], as for `take_credits`; every store of
    /// this workspace implements it.
    async fn return_credits(&self, id: &ApiKeyId, n: u64) -> Result<(), StoreError> {
        let _ = (id, n);
        Err(StoreError::Unavailable(
            "this API key store does not count usage credits".into(),
        ))
    }
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

/// What [`ApiKeyStore::take_credits`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credits {
    /// The credits were taken; this many are left.
    Taken {
        /// Credits left after this take.
        left: u64,
    },
    /// Fewer credits are left than asked for; nothing was taken.
    Exhausted,
    /// The key has no credit limit; nothing was taken (nothing needs to be).
    Unlimited,
    /// There is no such key.
    NotFound,
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

/// How many times one [`SessionStore::refresh`] reads, applies the rule and tries to swap
/// before it gives up with [`StoreError::Unavailable`].
///
/// A lost swap means another writer changed the session first: it made progress, and this
/// refresh starts over from what that writer left. Within the grace window every concurrent
/// refresh of one token is a legitimate retry that rotates again, so of N at once the last
/// one loses up to N - 1 times: the limit is the number of concurrent refreshes of ONE
/// session that all succeed. Browsers and retrying clients make a handful (the e2e race test
/// fires 16; an earlier limit of 8 turned its 9th into a 503); 64 leaves four times that while
/// still ending a refresh that keeps losing in a bounded number of round trips, never a loop.
pub const MAX_REFRESH_ATTEMPTS: u32 = 64;

/// Login sessions and refresh rotation.
///
/// A backend provides the two primitives [`load_versioned`](Self::load_versioned) and
/// [`swap`](Self::swap) with its own atomicity (a lock, a version column, a script);
/// [`refresh`](Self::refresh) is written once on top of them.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn create(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// The session `id`: [`load_versioned`](Self::load_versioned) without the version.
    async fn get(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.load_versioned(id).await?.map(|(session, _)| session))
    }
    /// The session `id` and its version: a number that every write to the session (swap,
    /// revoke, revoke-all) changes, so that [`swap`](Self::swap) can tell whether anyone
    /// wrote since this read.
    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError>;
    /// Stores `new` as session `id` only if the session is still at `expected_version`, as one
    /// atomic step, and moves it to a new version. False when another writer got there first
    /// or the session is gone; nothing is written then.
    async fn swap(
        &self,
        id: &SessionId,
        expected_version: u64,
        new: &SessionRecord,
    ) -> Result<bool, StoreError>;
    /// Applies [`SessionRecord::refresh`] atomically: of two concurrent refreshes with the
    /// same token, exactly one rotates.
    ///
    /// Loads the session, applies the rule, and swaps the outcome in against the version it
    /// read; on a lost swap it starts over from the state now stored, so a loser sees what the
    /// winner left (a retry within the grace, or reuse). After [`MAX_REFRESH_ATTEMPTS`] lost
    /// swaps it answers [`StoreError::Unavailable`] (fail closed).
    async fn refresh(
        &self,
        id: &SessionId,
        presented: &KeyHash,
        next: KeyHash,
        now: UnixTime,
        grace_secs: u64,
    ) -> Result<RefreshResult, StoreError> {
        for _ in 0..MAX_REFRESH_ATTEMPTS {
            let Some((current, version)) = self.load_versioned(id).await? else {
                return Ok(RefreshResult::NotFound);
            };
            let (new, outcome) = match current.refresh(presented, next, now, grace_secs) {
                Transition::Rotate(new) => (new.clone(), RefreshResult::Rotated(new)),
                Transition::RevokeForReuse => (current.revoked(), RefreshResult::ReuseDetected),
                Transition::Reject(why) => return Ok(RefreshResult::Rejected(why)),
            };
            if self.swap(id, version, &new).await? {
                return Ok(outcome);
            }
            // Let the writer that won finish before reading again.
            tokio::task::yield_now().await;
        }
        Err(StoreError::Unavailable(format!(
            "session refresh lost its compare-and-swap {MAX_REFRESH_ATTEMPTS} times"
        )))
    }
    /// Revokes one session; false when there is no such session.
    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError>;
    /// Revokes every session of `user`; returns how many were live at `now`.
    async fn revoke_all_for_user(&self, user: &UserId, now: UnixTime) -> Result<u64, StoreError>;
    /// Sessions live at `now` in `org`, or in every org (for stats).
    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError>;
    /// The sessions of `user` live at `now` (not revoked, not expired), newest first: by
    /// `created_at`, then by id, both descending, so that the order is the same on every
    /// backend.
    ///
    /// The default answers [`StoreError::Unavailable`] (a store written before this method
    /// existed still compiles, and a list it cannot give fails closed); every store of this
    /// workspace implements it.
    async fn list_for_user(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let _ = (user, now);
        Err(StoreError::Unavailable(
            "this session store does not list sessions".into(),
        ))
    }
}

/// Sorts sessions newest first, as [`SessionStore::list_for_user`] answers them.
pub fn newest_first(sessions: &mut [SessionRecord]) {
    sessions.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.as_str().cmp(a.id.as_str()))
    });
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
    /// The agents of `org`, or of every org when `None` (active and terminated), in the
    /// order [`by_creation`] sorts them, so that it is the same on every backend.
    ///
    /// The default answers [`StoreError::Unavailable`] (a directory written before this
    /// method existed still compiles, and a list it cannot give fails closed); every
    /// directory of this workspace implements it.
    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<AgentRecord>, StoreError> {
        let _ = org;
        Err(StoreError::Unavailable(
            "this agent directory does not list agents".into(),
        ))
    }
}

/// Sorts agents oldest first (by `created_at`, then by id), as [`AgentDirectory::list`]
/// answers them.
pub fn by_creation(agents: &mut [AgentRecord]) {
    agents.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Memory sessions whose swap always loses, as if another writer always got there first.
    #[derive(Default)]
    struct AlwaysLoses {
        inner: MemorySessionStore,
        loads: AtomicU32,
    }

    #[async_trait]
    impl SessionStore for AlwaysLoses {
        async fn create(&self, session: SessionRecord) -> Result<(), StoreError> {
            self.inner.create(session).await
        }
        async fn load_versioned(
            &self,
            id: &SessionId,
        ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
            self.loads.fetch_add(1, Ordering::Relaxed);
            self.inner.load_versioned(id).await
        }
        async fn swap(&self, _: &SessionId, _: u64, _: &SessionRecord) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError> {
            self.inner.revoke(id).await
        }
        async fn revoke_all_for_user(
            &self,
            user: &UserId,
            now: UnixTime,
        ) -> Result<u64, StoreError> {
            self.inner.revoke_all_for_user(user, now).await
        }
        async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError> {
            self.inner.count_live(now, org).await
        }
    }

    fn session(first: KeyHash) -> SessionRecord {
        SessionRecord::new(
            "s".into(),
            "u".into(),
            "o".into(),
            first,
            1_000,
            3_600,
            false,
        )
    }

    #[tokio::test]
    async fn a_refresh_that_keeps_losing_its_swap_fails_closed_after_the_limit() {
        let store = AlwaysLoses::default();
        let t0 = KeyHash::of(b"t0");
        store.create(session(t0)).await.unwrap();
        let result = store
            .refresh(&"s".into(), &t0, KeyHash::of(b"t1"), 1_001, 10)
            .await;
        let Err(StoreError::Unavailable(why)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(why.contains(&MAX_REFRESH_ATTEMPTS.to_string()), "{why}");
        assert_eq!(store.loads.load(Ordering::Relaxed), MAX_REFRESH_ATTEMPTS);
        // Nothing was written.
        assert_eq!(store.get(&"s".into()).await.unwrap(), Some(session(t0)));
    }

    #[tokio::test]
    async fn refresh_rejects_and_reports_missing_sessions_without_swapping() {
        let store = AlwaysLoses::default();
        let t0 = KeyHash::of(b"t0");
        let missing = store
            .refresh(&"none".into(), &t0, KeyHash::of(b"t1"), 1_001, 10)
            .await
            .unwrap();
        assert_eq!(missing, RefreshResult::NotFound);
        store.create(session(t0)).await.unwrap();
        store.revoke(&"s".into()).await.unwrap();
        let revoked = store
            .refresh(&"s".into(), &t0, KeyHash::of(b"t1"), 1_001, 10)
            .await
            .unwrap();
        assert_eq!(revoked, RefreshResult::Rejected(RefreshRejection::Revoked));
        assert_eq!(
            store.loads.load(Ordering::Relaxed),
            2,
            "one load each, no retry"
        );
    }
}
