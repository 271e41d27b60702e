//! The two caches on the request path, and what they share (their configuration, and the
//! invalidations that empty them):
//!
//! - `credentials`: the resolved-credential cache — the [`Actor`](crate::Actor) a credential
//!   resolved to, keyed by the exact credential, so a repeat skips verification and lookups.
//! - `stores`: the store caches — the records (API keys, sessions, agents, denied `jti`s)
//!   the slow path reads, in front of the stores.
//!
//! A revocation bumps the first and fences the second.

pub(crate) mod credentials;
pub(crate) mod stores;

use std::time::Duration;

use async_trait::async_trait;

use crate::api_key::KeyHash;
use crate::error::StoreError;
use crate::ids::{AgentId, SessionId, TokenId, UserId};

/// Sizes and lifetimes of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries per cache (API keys, sessions, agents, denied tokens), positive and negative.
    pub capacity: u64,
    /// How long an entry may be served without asking the store again. Revocations made
    /// through the [`Authenticator`](crate::Authenticator) (or announced by another instance)
    /// take effect at once regardless; this bounds staleness for changes made behind its back.
    pub ttl: Duration,
    /// Roughly how many bytes each cache of resolved credentials (bearer tokens, cookie
    /// tokens, API keys) may hold: a repeat of a credential within `ttl` skips verification
    /// and the store lookups (see `cache/credentials.rs`). 0 turns them off.
    pub resolved_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(30),
            resolved_bytes: 32 << 20,
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
///
/// The revoking methods of the `Authenticator` await [`publish`](Self::publish) and fail with
/// its error: a revocation is confirmed only once every other instance has dropped what it
/// cached, so a caller that answers "done" (a 204) never leaves another instance accepting
/// the credential. It is only called on revocations, never on the request path.
#[async_trait]
pub trait InvalidationSink: Send + Sync + 'static {
    /// Announces `what` and returns once the other instances have applied it; an error when
    /// that cannot be confirmed (the caller then fails, and repeating it announces again).
    /// Announcing the same invalidation twice must be harmless.
    async fn publish(&self, what: &Invalidation) -> Result<(), StoreError>;
}
