//! Caches in front of the stores on the request path (moka): bounded, with positive and
//! negative entries, single-flight loading (a burst of requests for one uncached key makes one
//! store query), and invalidation at once on revoke, disable and terminate. Store errors are
//! never cached: the request fails closed and the next one asks the store again.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::api_key::{ApiKeyRecord, KeyHash};
use crate::error::StoreError;
use crate::ids::{AgentId, SessionId, TokenId, UserId};
use crate::session::SessionRecord;
use crate::store::AgentRecord;

/// Sizes and lifetimes of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries per cache (API keys, sessions, agents, denied tokens), positive and negative.
    pub capacity: u64,
    /// How long an entry may be served without asking the store again. Revocations made
    /// through the [`Authenticator`](crate::Authenticator) (or announced by another instance)
    /// take effect at once regardless; this bounds staleness for changes made behind its back.
    pub ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(30),
        }
    }
}

/// Something another instance (or this one) revoked: drop it from every cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// An API key changed (disabled, enabled, deleted).
    ApiKey(KeyHash),
    /// A session was revoked.
    Session(SessionId),
    /// Every session of a user was revoked.
    UserSessions(UserId),
    /// An agent was terminated.
    Agent(AgentId),
    /// A token id was denied.
    Token(TokenId),
}

/// Where the [`Authenticator`](crate::Authenticator) announces its invalidations, so that other
/// instances drop the same entries (Redis pub/sub in `portcullis-redis`).
pub trait InvalidationSink: Send + Sync + 'static {
    /// Announces `what`. Must not block; delivery is best effort (the TTL bounds the rest).
    fn publish(&self, what: &Invalidation);
}

pub(crate) struct Caches {
    api_keys: Cache<KeyHash, Option<Arc<ApiKeyRecord>>>,
    sessions: Cache<SessionId, Option<Arc<SessionRecord>>>,
    agents: Cache<AgentId, Option<Arc<AgentRecord>>>,
    denied: Cache<TokenId, bool>,
}

fn build<K, V>(config: CacheConfig, closures: bool) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let builder = Cache::builder()
        .max_capacity(config.capacity)
        .time_to_live(config.ttl);
    if closures {
        builder.support_invalidation_closures().build()
    } else {
        builder.build()
    }
}

impl Caches {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self {
            api_keys: build(config, false),
            sessions: build(config, true),
            agents: build(config, false),
            denied: build(config, false),
        }
    }

    pub(crate) async fn api_key<F>(
        &self,
        hash: KeyHash,
        load: F,
    ) -> Result<Option<Arc<ApiKeyRecord>>, StoreError>
    where
        F: Future<Output = Result<Option<ApiKeyRecord>, StoreError>>,
    {
        self.api_keys
            .try_get_with(hash, async { load.await.map(|r| r.map(Arc::new)) })
            .await
            .map_err(|e| (*e).clone())
    }

    pub(crate) async fn session<F>(
        &self,
        id: &SessionId,
        load: F,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError>
    where
        F: Future<Output = Result<Option<SessionRecord>, StoreError>>,
    {
        self.sessions
            .try_get_with_by_ref(id, async { load.await.map(|r| r.map(Arc::new)) })
            .await
            .map_err(|e| (*e).clone())
    }

    pub(crate) async fn agent<F>(
        &self,
        id: &AgentId,
        load: F,
    ) -> Result<Option<Arc<AgentRecord>>, StoreError>
    where
        F: Future<Output = Result<Option<AgentRecord>, StoreError>>,
    {
        self.agents
            .try_get_with_by_ref(id, async { load.await.map(|r| r.map(Arc::new)) })
            .await
            .map_err(|e| (*e).clone())
    }

    pub(crate) async fn denied<F>(&self, jti: &TokenId, load: F) -> Result<bool, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>>,
    {
        self.denied
            .try_get_with_by_ref(jti, load)
            .await
            .map_err(|e| (*e).clone())
    }

    pub(crate) async fn invalidate(&self, what: &Invalidation) {
        match what {
            Invalidation::ApiKey(hash) => self.api_keys.invalidate(hash).await,
            Invalidation::Session(id) => self.sessions.invalidate(id).await,
            Invalidation::UserSessions(user) => {
                let user = user.clone();
                // Closures are enabled for this cache; the error case cannot happen.
                let _ = self.sessions.invalidate_entries_if(move |_, s| {
                    s.as_ref().is_some_and(|s| s.user_id == user)
                });
            }
            Invalidation::Agent(id) => self.agents.invalidate(id).await,
            Invalidation::Token(jti) => self.denied.invalidate(jti).await,
        }
    }
}
