//! Portcullis on Redis: state that every instance of a service must share.
//!
//! - [`RedisSessionStore`]: login sessions and refresh rotation ([`SessionStore`]).
//! - [`RedisDenylist`]: `jti`s refused before their expiry ([`Denylist`]).
//! - [`RedisRateLimiter`]: GCRA counters shared by all instances ([`RateLimiter`]).
//! - [`Invalidator`]: a pub/sub channel that tells every instance to drop cache entries.
//!
//! API keys and agents live in SQL in this design. One call,
//! [`RedisStores::build_authenticator`], puts the Redis sessions and denylist beside whatever
//! stores the builder holds for those, shares the rate limiter, announces revocations and
//! subscribes to the other instances' before the authenticator is handed out:
//!
//! ```no_run
//! # async fn demo() -> Result<(), portcullis_redis::BuildError> {
//! use portcullis_core::{Authenticator, store::Stores};
//!
//! let redis = portcullis_redis::RedisStores::connect("redis://127.0.0.1:6379", "myapp:").await?;
//! let builder = Authenticator::builder().stores(Stores::memory()); // SQL stores in production
//! let auth = redis.build_authenticator(builder).await?;
//! # let _ = auth;
//! # Ok(())
//! # }
//! ```
//!
//! The parts are there for other arrangements: [`RedisStores::stores_with`],
//! [`RedisStores::rate_limiter`], [`RedisStores::invalidator`] and
//! [`Invalidator::subscribe_authenticator`].
//!
//! # Keys
//!
//! Every key and the channel are under the prefix given to [`RedisStores::connect`], so
//! tenants and tests sharing one Redis never collide:
//!
//! | key                              | type   | holds                                    |
//! |----------------------------------|--------|------------------------------------------|
//! | `<prefix>session:<sid>`          | hash   | one session; expires with the session    |
//! | `<prefix>user_sessions:<uid>`    | set    | a user's session ids, for revoke-all     |
//! | `<prefix>live_sessions`          | zset   | unrevoked session ids scored by expiry   |
//! | `<prefix>deny:<jti>`             | string | the token's `exp`; expires at it         |
//! | `<prefix>rate:<limit>:<key>`     | string | GCRA theoretical arrival time (µs)       |
//! | `<prefix>count:<name>`           | string | a fixed-window counter ([`RedisCounter`]) |
//! | `<prefix>invalidate` (channel)   | pubsub | core's [`Invalidation`]s as JSON         |
//! | `<prefix>invalidate:ack:<id>` (channel) | pubsub | acks to one publisher: `<message id> <subscriber id>` |
//!
//! Scripts touch several keys at once, so this targets a single Redis server (or a
//! primary with replicas), not Redis Cluster.
//!
//! # Failure
//!
//! Failing to reach or use Redis is [`StoreError::Unavailable`], which the layer turns into
//! a 503: it fails closed. Messages name the server's address, never the URL's credentials.
//! Each operation is bounded by [`RedisConfig::operation_timeout`], so an unreachable or
//! hung Redis fails fast. [`RedisStores::connect`] fails when Redis cannot be reached at
//! start; after that, a lost connection is re-established by the next operation once Redis
//! is back (reads and idempotent writes retry once on the new connection at once).
#![forbid(unsafe_code)]

mod counter;
mod denylist;
mod invalidate;
mod rate_limit;
mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::store::{AgentDirectory, ApiKeyStore, Stores};
use portcullis_core::{Authenticator, AuthenticatorBuilder, ConfigError, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

pub use counter::{RedisCounter, Reservation};
pub use denylist::RedisDenylist;
pub use invalidate::{Invalidation, InvalidationSubscription, Invalidator};
pub use rate_limit::RedisRateLimiter;
pub use session::RedisSessionStore;

#[cfg(doc)]
use portcullis_core::{
    rate_limit::RateLimiter,
    store::{Denylist, SessionStore},
};

/// Why [`RedisStores::build_authenticator`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The builder's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis could not be reached, or the invalidation subscription not made.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// Timeouts of the Redis connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// One attempt to open a TCP connection (and authenticate).
    pub connect_timeout: Duration,
    /// Waiting for the reply to one command.
    pub response_timeout: Duration,
    /// The whole of one store operation, reconnecting included: past it the operation fails
    /// with [`StoreError::Unavailable`].
    pub operation_timeout: Duration,
    /// How often an idle invalidation subscriber pings Redis to notice a dead connection.
    pub subscriber_ping_interval: Duration,
    /// How long a published invalidation waits for every receiving instance to acknowledge
    /// that it applied it, before the revocation fails (see [`Invalidator`]).
    pub ack_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(2),
            subscriber_ping_interval: Duration::from_secs(15),
            // Acks take about a millisecond; this only bounds an instance that stalls.
            ack_timeout: Duration::from_secs(1),
        }
    }
}

/// The shared connection: a reconnecting multiplexed connection, the key prefix, and what
/// error messages may say about the server.
#[derive(Clone)]
pub(crate) struct Backend(Arc<BackendInner>);

struct BackendInner {
    manager: ConnectionManager,
    client: Client,
    prefix: String,
    /// `host:port` (or socket path): safe to print.
    addr: String,
    /// Scrubbed from any error text, in case a driver message ever echoes it.
    secrets: Vec<String>,
    config: RedisConfig,
}

/// Whether an operation may be sent again after the connection broke under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and idempotent writes: one more attempt on a fresh connection.
    Once,
    /// Writes whose repetition would change the outcome (a second rotation, a second
    /// count): never resent.
    Never,
}

impl Backend {
    async fn connect(url: &str, prefix: &str, config: RedisConfig) -> Result<Self, StoreError> {
        // The URL's own parse errors are not echoed: they could quote the URL.
        let client = Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL ({:?})", e.kind())))?;
        let info = client.get_connection_info();
        let addr = info.addr.to_string();
        let secrets: Vec<String> = info
            .redis
            .password
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.connect_timeout)
            .set_response_timeout(config.response_timeout)
            // The manager's backoff starts at one second; retrying inside one operation would
            // blow its time budget. A broken connection is instead replaced on the next
            // operation (and idempotent operations try once more straight away).
            .set_number_of_retries(0);
        let timeout = config.operation_timeout;
        let manager = match tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), manager_config),
        )
        .await
        {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(unavailable(&addr, &secrets, "connect", &e.to_string())),
            Err(_) => {
                let detail = format!("timed out after {timeout:?}");
                return Err(unavailable(&addr, &secrets, "connect", &detail));
            }
        };
        Ok(Self(Arc::new(BackendInner {
            manager,
            client,
            prefix: prefix.to_owned(),
            addr,
            secrets,
            config,
        })))
    }

    /// `<prefix><rest>`.
    pub(crate) fn key(&self, rest: &str) -> String {
        let mut key = String::with_capacity(self.0.prefix.len() + rest.len());
        key.push_str(&self.0.prefix);
        key.push_str(rest);
        key
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.0.config
    }

    pub(crate) fn client(&self) -> &Client {
        &self.0.client
    }

    /// A [`StoreError::Unavailable`] naming the server and `what` failed, with `detail`
    /// scrubbed of credentials.
    pub(crate) fn error(&self, what: &str, detail: &str) -> StoreError {
        unavailable(&self.0.addr, &self.0.secrets, what, detail)
    }

    /// Runs `op` on the shared connection within the operation timeout, mapping every
    /// failure to [`StoreError::Unavailable`].
    pub(crate) async fn run<T, F, Fut>(
        &self,
        what: &str,
        retry: Retry,
        mut op: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let timeout = self.0.config.operation_timeout;
        let attempts = async {
            let first = op(self.0.manager.clone()).await;
            match first {
                Err(e) if retry == Retry::Once && e.is_unrecoverable_error() => {
                    // The manager has begun replacing the connection; this waits for it.
                    tracing::debug!(what, error = %self.scrub(&e.to_string()), "retrying on a new Redis connection");
                    op(self.0.manager.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(timeout, attempts).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(what, &e.to_string())),
            Err(_) => Err(self.error(what, &format!("timed out after {timeout:?}"))),
        }
    }

    fn scrub(&self, text: &str) -> String {
        scrub(&self.0.secrets, text)
    }
}

fn scrub(secrets: &[String], text: &str) -> String {
    secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
}

fn unavailable(addr: &str, secrets: &[String], what: &str, detail: &str) -> StoreError {
    StoreError::Unavailable(scrub(
        secrets,
        &format!("redis at {addr}: {what}: {detail}"),
    ))
}

/// The Redis stores of one deployment, sharing one connection and one key prefix.
///
/// Cheap to clone; every handle it gives out shares the connection.
#[derive(Clone)]
pub struct RedisStores {
    backend: Backend,
    sessions: RedisSessionStore,
    denylist: RedisDenylist,
}

impl RedisStores {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, or `rediss://` where the
    /// `redis` crate is built with TLS) with the default [`RedisConfig`]; every key is put
    /// under `prefix` (for instance `"myapp:"`).
    ///
    /// Fails with [`StoreError::Unavailable`] when Redis cannot be reached within
    /// [`RedisConfig::operation_timeout`]; the message never contains the URL's password.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, prefix, RedisConfig::default()).await
    }

    /// [`connect`](Self::connect) with explicit timeouts.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        config: RedisConfig,
    ) -> Result<Self, StoreError> {
        let backend = Backend::connect(url, prefix, config).await?;
        Ok(Self {
            sessions: RedisSessionStore::new(backend.clone()),
            denylist: RedisDenylist::new(backend.clone()),
            backend,
        })
    }

    /// The session store.
    pub fn sessions(&self) -> RedisSessionStore {
        self.sessions.clone()
    }

    /// The `jti` denylist.
    pub fn denylist(&self) -> RedisDenylist {
        self.denylist.clone()
    }

    /// A rate limiter whose counters every instance on this Redis and prefix shares.
    pub fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::new(self.backend.clone())
    }

    /// Fixed-window event counters (failed logins, for instance).
    pub fn counter(&self) -> RedisCounter {
        RedisCounter::new(self.backend.clone())
    }

    /// The login throttle every instance on this Redis and prefix shares, for
    /// [`LifecycleBuilder::login_throttle`](portcullis_core::lifecycle::LifecycleBuilder::login_throttle):
    /// ten password checks a minute per email across the cluster, not per instance.
    pub fn login_throttle(&self) -> portcullis_core::throttle::LoginThrottle {
        portcullis_core::throttle::LoginThrottle::shared(std::sync::Arc::new(self.counter()))
    }

    /// Checks that Redis answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self
            .backend
            .run("ping", Retry::Once, |mut conn| async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await?;
        Ok(())
    }

    /// The invalidation channel: publish revocations, subscribe to drop cache entries.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator::new(self.backend.clone())
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.backend.0.prefix
    }

    /// [`Stores`] with Redis sessions and denylist, and the given API key store and agent
    /// directory (which this design keeps in SQL).
    pub fn stores_with(
        &self,
        api_keys: Arc<dyn ApiKeyStore>,
        agents: Arc<dyn AgentDirectory>,
    ) -> Stores {
        Stores {
            api_keys,
            sessions: Arc::new(self.sessions()),
            agents,
            denylist: Arc::new(self.denylist()),
        }
    }

    /// Builds an authenticator for one of several instances sharing this Redis: its
    /// sessions and denylist are Redis's (API keys and agents stay as the builder has them),
    /// it shares the rate limiter, announces its revocations on the invalidation channel and
    /// waits for the other instances to apply them, and it is subscribed to theirs.
    ///
    /// Returns once the subscription is active, so the authenticator never serves without
    /// hearing revocations; failing to subscribe is [`BuildError::Unavailable`]. The
    /// authenticator owns the subscription ([`Authenticator::own`]): it ends when the last
    /// clone is dropped.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), portcullis_redis::BuildError> {
    /// use portcullis_core::{AuthConfig, Authenticator};
    /// let redis = portcullis_redis::RedisStores::connect("redis://127.0.0.1:6379", "myapp:").await?;
    /// let builder = Authenticator::builder().config(AuthConfig::from_env()?);
    /// let auth = redis.build_authenticator(builder).await?;
    /// # let _ = auth;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build_authenticator(
        &self,
        builder: AuthenticatorBuilder,
    ) -> Result<Authenticator, BuildError> {
        let invalidator = self.invalidator();
        let auth = builder
            .map_stores(|s| self.stores_with(s.api_keys, s.agents))
            .rate_limiter(Arc::new(self.rate_limiter()))
            .invalidation_sink(Arc::new(invalidator.clone()))
            .build()?;
        let subscription = invalidator.subscribe_authenticator(auth.clone()).await?;
        auth.own(subscription);
        Ok(auth)
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client or URL: they hold the password.
        f.debug_struct("Redis")
            .field("addr", &self.0.addr)
            .field("prefix", &self.0.prefix)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStores")
            .field("backend", &self.backend)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_carry_credentials() {
        let secrets = vec!["hunter2".to_owned()];
        let StoreError::Unavailable(msg) = unavailable(
            "127.0.0.1:1",
            &secrets,
            "connect",
            "failed for redis://:hunter2@127.0.0.1:1",
        ) else {
            unreachable!()
        };
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("127.0.0.1:1"), "{msg}");
    }
}
