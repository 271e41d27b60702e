//! [`AuthenticatorBuilder`]: configuration, stores, clock, catalog, caches.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Authenticator, Inner, UsageSink};
use crate::cache::credentials::CredentialCache;
use crate::cache::stores::StoreCaches;
use crate::cache::{CacheConfig, InvalidationSink};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AuthConfig, ConfigError};
use crate::oidc::{Issuers, JwksSource};
use crate::permission::{PermissionCatalog, PermissionSet, seed};
use crate::rate_limit::{MemoryRateLimiter, RateLimiter};
use crate::store::Stores;
use crate::token::TokenFamilies;

/// Builds an [`Authenticator`].
pub struct AuthenticatorBuilder {
    config: Option<AuthConfig>,
    stores: Option<Stores>,
    rate_limiter: Option<Arc<dyn RateLimiter>>,
    clock: Option<SharedClock>,
    catalog: PermissionCatalog,
    agent_permissions: PermissionSet,
    cache: CacheConfig,
    sink: Option<Arc<dyn InvalidationSink>>,
    usage: Option<Arc<dyn UsageSink>>,
    jwks_sources: HashMap<String, Arc<dyn JwksSource>>,
}

impl AuthenticatorBuilder {
    /// The defaults [`Authenticator::builder`] documents.
    pub(super) fn new() -> Self {
        Self {
            config: None,
            stores: None,
            rate_limiter: None,
            clock: None,
            catalog: PermissionCatalog::seed(),
            agent_permissions: seed::SESSION_ALL | seed::MEMORY_ALL,
            cache: CacheConfig::default(),
            sink: None,
            usage: None,
            jwks_sources: HashMap::new(),
        }
    }

    /// Where successful API key uses are reported (default: nowhere). The authenticator owns
    /// it and flushes it in [`Authenticator::shutdown`].
    #[must_use]
    pub fn usage_sink(mut self, usage: Arc<dyn UsageSink>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Cache sizes and lifetimes (default: 100 000 entries each, 30 s).
    #[must_use]
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Where invalidations are announced to other instances (default: nowhere).
    #[must_use]
    pub fn invalidation_sink(mut self, sink: Arc<dyn InvalidationSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The configuration (default: `AuthConfig::builder().build()`, development).
    #[must_use]
    pub fn config(mut self, config: AuthConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The stores (default: bounded in-memory stores).
    #[must_use]
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Changes the stores set so far (default: the in-memory ones), keeping the rest: for a
    /// backend that provides only some of them (Redis sessions beside SQL keys).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis_core::{Authenticator, store::{MemoryDenylist, Stores}};
    /// let auth = Authenticator::builder()
    ///     .stores(Stores::memory())
    ///     .map_stores(|s| Stores { denylist: Arc::new(MemoryDenylist::default()), ..s })
    ///     .build()
    ///     .unwrap();
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn map_stores(mut self, change: impl FnOnce(Stores) -> Stores) -> Self {
        self.stores = Some(change(self.stores.unwrap_or_else(Stores::memory)));
        self
    }

    /// The rate limiter (default: in memory).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// The clock (default: the system clock). Tests inject a [`ManualClock`](crate::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The declared permissions (default: the seed set).
    #[must_use]
    pub fn catalog(mut self, catalog: PermissionCatalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// What agents on run tokens may do (default: `session:*` and `memory:*`).
    #[must_use]
    pub fn agent_permissions(mut self, permissions: PermissionSet) -> Self {
        self.agent_permissions = permissions;
        self
    }

    /// Where the keys of the configured external issuer `issuer` come from, instead of
    /// HTTPS discovery (the `oidc` feature's [`HttpJwks`](crate::oidc::HttpJwks)).
    #[must_use]
    pub fn jwks_source(mut self, issuer: &str, source: Arc<dyn JwksSource>) -> Self {
        self.jwks_sources.insert(issuer.to_owned(), source);
        self
    }

    /// Builds it.
    pub fn build(self) -> Result<Authenticator, ConfigError> {
        let config = match self.config {
            Some(c) => c,
            None => AuthConfig::builder().build()?,
        };
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let issuers = Issuers::new(&config.issuers, self.jwks_sources, &clock)?;
        Ok(Authenticator(Arc::new(Inner {
            issuers,
            tokens: TokenFamilies::new(
                config.user_tokens().with_clock(clock.clone()),
                config.agent_tokens().with_clock(clock.clone()),
            ),
            config,
            stores: self.stores.unwrap_or_else(Stores::memory),
            rate_limiter: self
                .rate_limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::default())),
            clock,
            catalog: self.catalog,
            agent_permissions: self.agent_permissions,
            store_caches: StoreCaches::new(self.cache),
            credential_cache: CredentialCache::new(self.cache.resolved_bytes, self.cache.ttl),
            sink: self.sink,
            usage: self.usage,
            owned: std::sync::Mutex::new(Vec::new()),
        })))
    }
}
