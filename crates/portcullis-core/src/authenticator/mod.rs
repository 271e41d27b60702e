//! The [`Authenticator`]: turns one presented credential into an [`Actor`](crate::Actor), or
//! the reason it cannot. Framework-free; the Tower layer extracts credentials and calls it.

use std::sync::Arc;

use crate::cache::InvalidationSink;
use crate::cache::credentials::CredentialCache;
use crate::cache::stores::StoreCaches;
use crate::clock::SharedClock;
use crate::config::{AuthConfig, ConfigError};
use crate::oidc::{FetchError, IssuerStatus, Issuers};
use crate::permission::{PermissionCatalog, PermissionSet};
use crate::rate_limit::RateLimiter;
use crate::store::Stores;
use crate::token::{AgentTokens, TokenFamilies, UserTokens};

mod builder;
mod refresh;
mod resolve;
mod revoke;
mod usage;

pub use builder::AuthenticatorBuilder;
pub use refresh::{RefreshRefusal, Rotation};
pub use usage::UsageSink;

/// One credential as presented, borrowed from the request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `X-API-Key: ck_…` or `Authorization: Bearer ck_…`.
    ApiKey(&'a str),
    /// `Authorization: Bearer <jwt>`: a user access token or an agent run token.
    Bearer(&'a str),
    /// The access-token cookie: a user access token.
    Cookie(&'a str),
}

impl Credential<'_> {
    /// `api_key`, `bearer` or `cookie`, for logs.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api_key",
            Self::Bearer(_) => "bearer",
            Self::Cookie(_) => "cookie",
        }
    }
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credential itself.
        write!(f, "Credential::{}(***)", self.kind())
    }
}

/// An [`Authenticator`] that does not keep it alive: for background tasks bound to one
/// (an invalidation subscriber), which must not outlive it by holding it.
///
/// ```
/// use portcullis_core::Authenticator;
/// let auth = Authenticator::builder().build().unwrap();
/// let weak = auth.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(auth);
/// assert!(weak.upgrade().is_none());
/// ```
#[derive(Clone)]
pub struct WeakAuthenticator(std::sync::Weak<Inner>);

impl WeakAuthenticator {
    /// The authenticator, while any clone of it is alive.
    pub fn upgrade(&self) -> Option<Authenticator> {
        self.0.upgrade().map(Authenticator)
    }
}

impl std::fmt::Debug for WeakAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakAuthenticator")
    }
}

/// Resolves credentials to actors. Cheap to clone (one `Arc`).
///
/// ```
/// use portcullis_core::{Authenticator, Credential, AuthError};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let auth = Authenticator::builder().build().unwrap(); // development defaults, memory stores
/// let err = auth.resolve(Credential::ApiKey("ck_typo")).await.unwrap_err();
/// assert_eq!(err, AuthError::InvalidApiKey);
/// # });
/// ```
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

struct Inner {
    config: AuthConfig,
    tokens: TokenFamilies,
    /// External issuers (OpenID Connect), by `iss`.
    issuers: Issuers,
    stores: Stores,
    rate_limiter: Arc<dyn RateLimiter>,
    clock: SharedClock,
    catalog: PermissionCatalog,
    agent_permissions: PermissionSet,
    store_caches: StoreCaches,
    credential_cache: CredentialCache,
    sink: Option<Arc<dyn InvalidationSink>>,
    usage: Option<Arc<dyn UsageSink>>,
    /// Background work that lives as long as this authenticator (see [`Authenticator::own`]).
    owned: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("env", &self.0.config.env)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// From the environment (`AuthConfig::from_env`), with in-memory stores.
    ///
    /// ```
    /// // With AUTH_ENV unset (development), missing secrets are generated, with a warning.
    /// let auth = portcullis_core::Authenticator::from_env()?;
    /// # let _ = auth;
    /// # Ok::<(), portcullis_core::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().config(AuthConfig::from_env()?).build()
    }

    /// A builder: configuration, stores, clock, permission catalog, caches; each defaults
    /// (development configuration, bounded in-memory stores, the system clock, the seed set).
    ///
    /// ```
    /// use portcullis_core::{AuthConfig, Authenticator, store::Stores};
    /// let auth = Authenticator::builder()
    ///     .config(AuthConfig::builder().issuer("my-app").build()?)
    ///     .stores(Stores::memory())
    ///     .build()?;
    /// assert_eq!(auth.config().user_policy.issuer, "my-app");
    /// # Ok::<(), portcullis_core::ConfigError>(())
    /// ```
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder::new()
    }

    /// Keeps `companion` alive as long as this authenticator (any clone of it): for
    /// background work bound to it, such as a cross-instance invalidation subscription, so
    /// that the application holds one handle instead of several. A companion that needs the
    /// authenticator holds a [`downgrade`](Self::downgrade)d one, or neither is ever dropped.
    ///
    /// ```
    /// use portcullis_core::Authenticator;
    /// let auth = Authenticator::builder().build().unwrap();
    /// auth.own(String::from("dropped with the authenticator"));
    /// ```
    pub fn own(&self, companion: impl Send + Sync + 'static) {
        // A poisoned lock only means another `own` panicked; the list itself is sound.
        let mut owned = self.0.owned.lock().unwrap_or_else(|e| e.into_inner());
        owned.push(Box::new(companion));
    }

    /// A handle that does not keep this authenticator alive.
    pub fn downgrade(&self) -> WeakAuthenticator {
        WeakAuthenticator(Arc::downgrade(&self.0))
    }

    /// Flushes what is written behind the requests (the [`UsageSink`]'s pending API key
    /// uses): call it once the server has stopped taking requests. Uses reported afterwards
    /// may be dropped.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = portcullis_core::Authenticator::builder().build().unwrap();
    /// auth.shutdown().await;
    /// # });
    /// ```
    pub async fn shutdown(&self) {
        if let Some(usage) = &self.0.usage {
            usage.shutdown().await;
        }
    }

    /// Fetches every external issuer's keys once and keeps them fresh in the background for
    /// as long as this authenticator lives. Call it once, at start; it returns the issuers
    /// whose first fetch failed, and why (they are retried in the background, and their
    /// tokens are refused until a fetch succeeds): a production server refuses to start on
    /// any, a development one warns.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let auth = portcullis_core::Authenticator::builder().build().unwrap();
    /// assert!(auth.start_issuers().await.is_empty(), "no issuer configured");
    /// # });
    /// ```
    pub async fn start_issuers(&self) -> Vec<(String, FetchError)> {
        self.0.issuers.start(|task| self.own(task)).await
    }

    /// Each external issuer's key freshness, for readiness reports.
    pub fn issuer_status(&self) -> Vec<IssuerStatus> {
        self.0.issuers.status()
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.0.config
    }

    /// User token minting and verification.
    pub fn user_tokens(&self) -> &UserTokens {
        self.0.tokens.users()
    }

    /// Agent token minting and verification.
    pub fn agent_tokens(&self) -> &AgentTokens {
        self.0.tokens.agents()
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }

    /// The declared permissions.
    pub fn catalog(&self) -> &PermissionCatalog {
        &self.0.catalog
    }

    /// What agents may hold (the most an agent's run token or key carries).
    pub fn agent_permissions(&self) -> PermissionSet {
        self.0.agent_permissions
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }

    /// Entries held per cache, in [`CacheName::ALL`](crate::metrics::CacheName::ALL) order
    /// (the store caches' pending evictions applied first, so that the counts are current).
    pub async fn cache_entries(&self) -> [(crate::metrics::CacheName, u64); 7] {
        use crate::metrics::CacheName;
        let [bearer, cookie, keys] = self.0.credential_cache.entry_counts();
        let stores = &self.0.store_caches;
        [
            (CacheName::ResolvedBearer, bearer),
            (CacheName::ResolvedCookie, cookie),
            (CacheName::ResolvedApiKey, keys),
            (CacheName::ApiKeys, stores.api_keys.entry_count().await),
            (CacheName::Sessions, stores.sessions.entry_count().await),
            (CacheName::Agents, stores.agents.entry_count().await),
            (CacheName::Denylist, stores.denied.entry_count().await),
        ]
    }

    /// Sets the `portcullis_cache_entries` gauges from [`cache_entries`](Self::cache_entries):
    /// call it when the metrics are scraped, or now and then (it is not done per request).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = portcullis_core::Authenticator::builder().build().unwrap();
    /// auth.record_cache_entries().await; // a no-op without a recorder
    /// # });
    /// ```
    pub async fn record_cache_entries(&self) {
        for (cache, entries) in self.cache_entries().await {
            crate::metrics::cache_entries(cache, entries);
        }
    }
}
