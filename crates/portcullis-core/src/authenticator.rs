//! The [`Authenticator`]: turns one presented credential into an [`Actor`], or the reason it
//! cannot. Framework-free; the Tower layer extracts credentials and calls it.

use std::num::NonZeroU32;
use std::sync::Arc;

use crate::actor::{Actor, AgentActor, ApiKeyActor, AuthMethod, UserActor};
use crate::api_key::{self, KeyHash, KeyOwner};
use crate::cache::{CacheConfig, Caches, Invalidation, InvalidationSink};
use crate::clock::UnixTime;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AuthConfig, ConfigError};
use crate::error::StoreError;
use crate::error::{AuthError, TokenError};
use crate::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, TokenId, UserId};
use crate::permission::{PermissionCatalog, PermissionSet, seed};
use crate::rate_limit::{MemoryRateLimiter, RateLimiter};
use crate::resolved::Resolved;
use crate::session::RefreshRejection;
use crate::store::{AgentRecord, AgentStatus, RefreshResult, Stores};
use crate::token::{AgentTokens, TokenHeader, UserTokens, payload_has_type_claim};

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

/// A refresh token rotated by [`Authenticator::rotate_refresh`].
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The session as it now is.
    pub session: crate::session::SessionRecord,
    /// The new refresh token (hand it out; only its hash is kept).
    pub refresh: crate::token::MintedToken,
}

/// Told of every successful API key use, so that `last_used_at` can be written behind, in
/// batches, off the request path (`portcullis_sql::LastUsedWriter`). Must not block.
///
/// The [`Authenticator`] owns its sink: [`Authenticator::shutdown`] calls
/// [`shutdown`](Self::shutdown), so a writer that batches is flushed at exit without the
/// application keeping a handle to it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use portcullis_core::{Authenticator, UsageSink, UnixTime, ids::ApiKeyId};
///
/// #[derive(Default)]
/// struct Uses(Mutex<Vec<ApiKeyId>>);
/// impl UsageSink for Uses {
///     fn record(&self, key: &ApiKeyId, _at: UnixTime) {
///         if let Ok(mut uses) = self.0.lock() {
///             uses.push(key.clone());
///         }
///     }
/// }
/// let auth = Authenticator::builder().usage_sink(Arc::new(Uses::default())).build().unwrap();
/// # let _ = auth;
/// ```
#[async_trait::async_trait]
pub trait UsageSink: Send + Sync + 'static {
    /// `key` was used at `at`.
    fn record(&self, key: &ApiKeyId, at: UnixTime);

    /// Writes what is pending and stops taking uses (at shutdown). The default does nothing,
    /// for sinks that write at once.
    async fn shutdown(&self) {}
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
    user_tokens: UserTokens,
    agent_tokens: AgentTokens,
    stores: Stores,
    rate_limiter: Arc<dyn RateLimiter>,
    clock: SharedClock,
    catalog: PermissionCatalog,
    agent_permissions: PermissionSet,
    caches: Caches,
    resolved: Resolved,
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
}

impl AuthenticatorBuilder {
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

    /// Builds it.
    pub fn build(self) -> Result<Authenticator, ConfigError> {
        let config = match self.config {
            Some(c) => c,
            None => AuthConfig::builder().build()?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Ok(Authenticator(Arc::new(Inner {
            user_tokens: config.user_tokens().with_clock(clock.clone()),
            agent_tokens: config.agent_tokens().with_clock(clock.clone()),
            config,
            stores: self.stores.unwrap_or_else(Stores::memory),
            rate_limiter: self
                .rate_limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::default())),
            clock,
            catalog: self.catalog,
            agent_permissions: self.agent_permissions,
            caches: Caches::new(self.cache),
            resolved: Resolved::new(self.cache.resolved_bytes, self.cache.ttl),
            sink: self.sink,
            usage: self.usage,
            owned: std::sync::Mutex::new(Vec::new()),
        })))
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
        AuthenticatorBuilder {
            config: None,
            stores: None,
            rate_limiter: None,
            clock: None,
            catalog: PermissionCatalog::seed(),
            agent_permissions: seed::SESSION_ALL | seed::MEMORY_ALL,
            cache: CacheConfig::default(),
            sink: None,
            usage: None,
        }
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

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.0.config
    }

    /// User token minting and verification.
    pub fn user_tokens(&self) -> &UserTokens {
        &self.0.user_tokens
    }

    /// Agent token minting and verification.
    pub fn agent_tokens(&self) -> &AgentTokens {
        &self.0.agent_tokens
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

    /// The actor a credential stands for.
    pub async fn resolve(&self, credential: Credential<'_>) -> Result<Actor, AuthError> {
        if let Some(actor) = self.resolve_cached(credential) {
            return Ok(actor);
        }
        // Read before any store is: a revocation landing from here on makes the entry made
        // below stale at once.
        let epoch = self.0.resolved.epoch();
        let resolved = &self.0.resolved;
        match credential {
            Credential::ApiKey(key) => {
                let (actor, hash, stale_at, cacheable) = self.resolve_api_key(key).await?;
                if cacheable {
                    resolved.insert_key(hash, actor.clone(), epoch, self.0.clock.now(), stale_at);
                }
                Ok(actor)
            }
            Credential::Bearer(token) | Credential::Cookie(token) => {
                let method = match credential {
                    Credential::Cookie(_) => AuthMethod::Cookie,
                    _ => AuthMethod::Jwt,
                };
                let (actor, stale_at) = self.resolve_jwt(token, method).await?;
                let now = self.0.clock.now();
                let cookie = method == AuthMethod::Cookie;
                resolved.insert_token(token, cookie, actor.clone(), epoch, now, stale_at);
                Ok(actor)
            }
        }
    }

    /// The actor for a credential resolved recently and unchanged since, without waiting on
    /// anything: `None` means "resolve it the slow way" (never "refused"). Layers call this
    /// first so that the common case is decided synchronously.
    pub fn resolve_cached(&self, credential: Credential<'_>) -> Option<Actor> {
        let now = self.0.clock.now();
        let resolved = &self.0.resolved;
        let entry = match credential {
            Credential::Bearer(token) => resolved.token(token, false, now)?,
            Credential::Cookie(token) => resolved.token(token, true, now)?,
            Credential::ApiKey(raw) => {
                // The cache is keyed by the key's SHA-256 and only ever holds keys that parsed
                // and resolved, so a hit is that same valid key: the format checks (alphabet,
                // checksum) are left to the slow path. The length check keeps a huge header
                // from being hashed.
                let config = &self.0.config;
                if !config.api_keys_enabled || raw.len() != config.api_key_prefix.key_len() {
                    return None;
                }
                resolved.key(&KeyHash::of(raw.as_bytes()), now)?
            }
        };
        if let (Some(usage), Some(key)) = (&self.0.usage, &entry.key_id) {
            usage.record(key, now);
        }
        Some(entry.actor.clone())
    }

    /// The actor of a JWT and the first second it must not be served from the cache.
    async fn resolve_jwt(
        &self,
        token: &str,
        method: AuthMethod,
    ) -> Result<(Actor, UnixTime), AuthError> {
        // Cookies only ever carry user tokens. Otherwise the header names the family: our own
        // minted headers by their exact bytes, others by their kid; a token without a kid goes
        // by its claims' shape.
        let agent = method == AuthMethod::Jwt && self.is_agent_token(token)?;
        if agent {
            self.resolve_agent_token(token).await
        } else {
            self.resolve_user_token(token, method).await
        }
    }

    /// Whether a bearer JWT belongs to the agent family.
    fn is_agent_token(&self, token: &str) -> Result<bool, AuthError> {
        let (user_ring, agent_ring) = (
            self.0.user_tokens.key_ring(),
            self.0.agent_tokens.key_ring(),
        );
        let segment = token.split('.').next().unwrap_or_default();
        if user_ring.by_header_segment(segment).is_some() {
            return Ok(false);
        }
        if agent_ring.by_header_segment(segment).is_some() {
            return Ok(true);
        }
        let max = self.0.config.user_policy.max_token_bytes;
        let (header, _) = TokenHeader::parse(token, max)?;
        Ok(match header.kid.as_deref() {
            Some(kid) => {
                user_ring.find(Some(kid)).is_none() && agent_ring.find(Some(kid)).is_some()
            }
            None => !payload_has_type_claim(token),
        })
    }

    async fn resolve_user_token(
        &self,
        token: &str,
        method: AuthMethod,
    ) -> Result<(Actor, UnixTime), AuthError> {
        let claims = self.0.user_tokens.verify_access(token)?;
        let token_stale_at = self.token_stale_at(claims.registered.exp);
        // verify_access guarantees these are present.
        let (Some(sub), Some(sid), Some(org), Some(role), Some(jti)) = (
            claims.sub,
            claims.sid,
            claims.org_id,
            claims.role,
            claims.registered.jti,
        ) else {
            return Err(AuthError::InvalidToken(TokenError::Malformed));
        };
        let now = self.0.clock.now();
        let session_id = SessionId::from(sid);
        let user_id = UserId::from(sub);
        let session = self
            .session(&session_id)
            .await?
            .filter(|s| s.user_id == user_id && s.is_live(now));
        let Some(session) = session else {
            return Err(AuthError::TokenRevoked);
        };
        if self.is_denied(&TokenId::from(jti), now).await? {
            return Err(AuthError::TokenRevoked);
        }
        let roles = &self.0.config.roles;
        let permissions = roles.get(&role).unwrap_or(PermissionSet::EMPTY);
        let actor = Actor::User(Arc::new(UserActor {
            id: user_id,
            org_id: OrgId::from(org),
            all_orgs: roles.acts_in_every_org(&role),
            role: role.into(),
            permissions,
            session_id,
            method,
        }));
        Ok((actor, token_stale_at.min(session.expires_at)))
    }

    /// When a verified token with this `exp` stops being acceptable (leeway included).
    fn token_stale_at(&self, exp: Option<crate::token::NumericDate>) -> UnixTime {
        exp.map_or(0, |e| {
            e.0.saturating_add(self.0.config.user_policy.leeway_secs)
        })
    }

    async fn resolve_agent_token(&self, token: &str) -> Result<(Actor, UnixTime), AuthError> {
        let claims = self.0.agent_tokens.verify(token)?;
        let stale_at = claims.registered.exp.map_or(0, |e| {
            e.0.saturating_add(self.0.config.agent_policy.leeway_secs)
        });
        let (Some(sub), Some(company), Some(run)) = (claims.sub, claims.company_id, claims.run_id)
        else {
            return Err(AuthError::InvalidToken(TokenError::Malformed));
        };
        let agent = self
            .live_agent(&AgentId::from(sub))
            .await?
            .ok_or(TokenError::UnknownSubject)?;
        if agent.org_id.as_str() != company {
            return Err(TokenError::CompanyMismatch.into());
        }
        // A token without `jti` (as other orchestrators mint) cannot be on the denylist;
        // terminating its agent still ends it.
        if let Some(jti) = claims.registered.jti
            && self
                .is_denied(&TokenId::from(jti), self.0.clock.now())
                .await?
        {
            return Err(AuthError::TokenRevoked);
        }
        let actor = Actor::Agent(Arc::new(AgentActor {
            id: agent.id.clone(),
            org_id: agent.org_id.clone(),
            permissions: self.0.agent_permissions,
            run_id: Some(RunId::from(run)),
            key_id: None,
            method: AuthMethod::Jwt,
            expires_at: claims.registered.exp.map(|e| e.0),
            rate_limit_per_minute: None,
        }));
        Ok((actor, stale_at))
    }

    /// The agent, if it exists; terminated agents are an error.
    async fn live_agent(&self, id: &AgentId) -> Result<Option<Arc<AgentRecord>>, AuthError> {
        let agents = &self.0.stores.agents;
        match self.0.caches.agents.record(id, || agents.get(id)).await? {
            Some(a) if a.status == AgentStatus::Terminated => Err(AuthError::AgentTerminated),
            other => Ok(other),
        }
    }

    async fn session(
        &self,
        id: &SessionId,
    ) -> Result<Option<Arc<crate::session::SessionRecord>>, StoreError> {
        let sessions = &self.0.stores.sessions;
        self.0.caches.sessions.record(id, || sessions.get(id)).await
    }

    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError> {
        let denylist = &self.0.stores.denylist;
        self.0
            .caches
            .denied
            .get(jti, || denylist.is_denied(jti, now))
            .await
    }

    /// The actor of an API key, its hash, when a cached resolution must stop being served,
    /// and whether it may be cached at all (a key with a rate limit must meet its limiter
    /// on every request).
    async fn resolve_api_key(
        &self,
        raw: &str,
    ) -> Result<(Actor, KeyHash, UnixTime, bool), AuthError> {
        if !self.0.config.api_keys_enabled {
            return Err(AuthError::InvalidApiKey);
        }
        let hash = api_key::parse(raw, &self.0.config.api_key_prefix)?.hash();
        let keys = &self.0.stores.api_keys;
        let record = self
            .0
            .caches
            .api_keys
            .record(&hash, || keys.find_by_hash(&hash))
            .await?
            .ok_or(AuthError::InvalidApiKey)?;
        let now = self.0.clock.now();
        record.check_usable(now)?;
        if let Some(limit) = record.rate_limit_per_minute.and_then(NonZeroU32::new) {
            self.0
                .rate_limiter
                .check(record.id.as_str(), limit)
                .await?
                .map_err(AuthError::RateLimited)?;
        }
        if let Some(usage) = &self.0.usage {
            usage.record(&record.id, now);
        }
        let cacheable = record.rate_limit_per_minute.is_none();
        let stale_at = record.expires_at.unwrap_or(UnixTime::MAX);
        let actor = match &record.owner {
            KeyOwner::Agent(agent_id) => {
                let agent = self
                    .live_agent(agent_id)
                    .await?
                    .ok_or(AuthError::InvalidApiKey)?;
                Actor::Agent(Arc::new(AgentActor {
                    id: agent.id.clone(),
                    org_id: agent.org_id.clone(),
                    permissions: record.permissions,
                    run_id: None,
                    key_id: Some(record.id.clone()),
                    method: AuthMethod::ApiKey,
                    expires_at: record.expires_at,
                    rate_limit_per_minute: record.rate_limit_per_minute,
                }))
            }
            KeyOwner::User(owner) => Actor::ApiKey(Arc::new(ApiKeyActor {
                key_id: record.id.clone(),
                owner: owner.clone(),
                org_id: record.org_id.clone(),
                permissions: record.permissions,
                rate_limit_per_minute: record.rate_limit_per_minute,
                expires_at: record.expires_at,
            })),
        };
        Ok((actor, hash, stale_at, cacheable))
    }

    /// Drops `what` from this instance's caches (for invalidations announced by others).
    pub async fn invalidate(&self, what: &Invalidation) {
        self.0.caches.invalidate(what).await;
        // After the store caches: a resolution that starts from here on reads fresh state.
        self.0.resolved.bump();
    }

    /// Drops every cached entry on this instance, so that the next request of each credential
    /// asks the stores again. For when invalidations may have been missed: the Redis
    /// subscriber calls it when its connection drops and when it is back (`Invalidator::on_gap`),
    /// so that while Redis is unreachable requests fail closed rather than ride the cache.
    pub fn invalidate_all(&self) {
        self.0.caches.invalidate_all();
        self.0.resolved.bump();
    }

    /// Invalidates locally, then announces it to the other instances and waits until the sink
    /// confirms they applied it. The local caches are dropped even when announcing fails, so
    /// this instance never rides a stale entry; the error makes the revoking call fail (503),
    /// and since every store write before it is idempotent, repeating the call announces again.
    async fn invalidate_everywhere(&self, what: Invalidation) -> Result<(), StoreError> {
        self.invalidate(&what).await;
        match &self.0.sink {
            Some(sink) => sink.publish(&what).await,
            None => Ok(()),
        }
    }

    /// Revokes one session: its access and refresh tokens are dead at once, on every instance.
    /// Fails (after revoking it in the store) when the other instances cannot be told.
    pub async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        let found = self.0.stores.sessions.revoke(id).await?;
        self.invalidate_everywhere(Invalidation::Session(id.clone()))
            .await?;
        Ok(found)
    }

    /// Revokes every session of a user (password change, admin action), on every instance.
    pub async fn revoke_user_sessions(&self, user: &UserId) -> Result<u64, StoreError> {
        let now = self.0.clock.now();
        let n = self
            .0
            .stores
            .sessions
            .revoke_all_for_user(user, now)
            .await?;
        self.invalidate_everywhere(Invalidation::UserSessions(user.clone()))
            .await?;
        Ok(n)
    }

    /// Denies a token id until `expires_at`, on every instance.
    pub async fn deny_token(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError> {
        self.0.stores.denylist.deny(jti, expires_at).await?;
        self.invalidate_everywhere(Invalidation::Token(jti.clone()))
            .await
    }

    /// Terminates an agent: its run tokens and keys are dead at once, on every instance.
    pub async fn terminate_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let found = self.0.stores.agents.terminate(id).await?;
        self.invalidate_everywhere(Invalidation::Agent(id.clone()))
            .await?;
        Ok(found)
    }

    /// Enables or disables an API key, at once, on every instance.
    pub async fn set_api_key_enabled(
        &self,
        id: &ApiKeyId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let Some(hash) = self.key_hash(id).await? else {
            return Ok(false);
        };
        let found = self.0.stores.api_keys.set_enabled(id, enabled).await?;
        self.invalidate_everywhere(Invalidation::ApiKey(hash))
            .await?;
        Ok(found)
    }

    /// Deletes an API key: dead at once, on every instance.
    ///
    /// With an invalidation sink, the key is first disabled and that is announced; only then is
    /// the record deleted. So when announcing fails, the key is still there (and refused), and
    /// repeating the delete finds it and announces again, instead of finding nothing and
    /// leaving other instances on their cached copy. The deletion itself is announced once
    /// more, so that caches say "no such key" rather than "disabled"; if that second
    /// announcement fails the key is already refused everywhere, so it is only logged.
    pub async fn delete_api_key(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        let Some(hash) = self.key_hash(id).await? else {
            return Ok(false);
        };
        if self.0.sink.is_some() {
            self.0.stores.api_keys.set_enabled(id, false).await?;
            self.invalidate_everywhere(Invalidation::ApiKey(hash))
                .await?;
        }
        let found = self.0.stores.api_keys.delete(id).await?;
        if let Err(e) = self.invalidate_everywhere(Invalidation::ApiKey(hash)).await {
            tracing::warn!(key = %id, error = %e, "deleted API key announced only as disabled");
        }
        Ok(found)
    }

    async fn key_hash(&self, id: &ApiKeyId) -> Result<Option<KeyHash>, StoreError> {
        Ok(self.0.stores.api_keys.get(id).await?.map(|r| r.hash))
    }

    /// Rotates a refresh token: verifies it as a refresh token, presents it to its session
    /// (rotation with reuse detection) and mints its successor. A detected reuse revokes the
    /// session everywhere at once.
    ///
    /// Two concurrent refreshes of one token within the grace window (two tabs, a retried
    /// request) each get a new token, but the session holds only one as current; the other is
    /// its sibling, minted from the same parent, and says so in its signed `prt` claim.
    /// Presenting a sibling is a retry of the parent's rotation, not a reuse: it is presented
    /// as the parent, which the session's rule rotates again within the grace and treats as
    /// reuse after it.
    pub async fn rotate_refresh(&self, token: &str) -> Result<Rotation, AuthError> {
        let tokens = &self.0.user_tokens;
        let claims = tokens.verify_refresh(token)?;
        let (Some(sub), Some(sid)) = (claims.sub, claims.sid) else {
            return Err(AuthError::InvalidToken(TokenError::Malformed));
        };
        let (user, sid) = (UserId::from(sub), SessionId::from(sid));
        let sessions = &self.0.stores.sessions;
        let mut presented = KeyHash::of(token.as_bytes());
        if let Some(parent) = claims.prt.as_deref().and_then(KeyHash::from_hex)
            && let Some(session) = sessions.get(&sid).await?
            && session.current != presented
            && session.parent == Some(parent)
        {
            presented = parent;
        }
        let refresh = tokens
            .mint_rotated_refresh(&user, &sid, claims.rmb, &presented)
            .map_err(|e| AuthError::Unavailable(StoreError::Unavailable(e.to_string())))?;
        let next = KeyHash::of(refresh.token.expose().as_bytes());
        let (now, grace) = (self.0.clock.now(), self.0.config.refresh_reuse_grace_secs);
        match sessions.refresh(&sid, &presented, next, now, grace).await? {
            RefreshResult::Rotated(session) if session.user_id == user => {
                Ok(Rotation { session, refresh })
            }
            RefreshResult::Rotated(_) | RefreshResult::NotFound => {
                Err(AuthError::InvalidToken(TokenError::UnknownSubject))
            }
            RefreshResult::ReuseDetected => {
                tracing::warn!(session = %sid, "refresh token reuse: session revoked");
                // Not confirmed on every instance: fail (503) rather than answer as if it held.
                self.invalidate_everywhere(Invalidation::Session(sid))
                    .await?;
                Err(AuthError::TokenRevoked)
            }
            RefreshResult::Rejected(RefreshRejection::Revoked) => Err(AuthError::TokenRevoked),
            RefreshResult::Rejected(RefreshRejection::Expired) => Err(AuthError::TokenExpired),
        }
    }
}
