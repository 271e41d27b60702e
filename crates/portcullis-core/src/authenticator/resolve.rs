//! Resolution: one presented credential to an [`Actor`], through the caches and stores.

use std::num::NonZeroU32;
use std::sync::Arc;

use super::{Authenticator, Credential};
use crate::actor::{Actor, AgentActor, ApiKeyActor, AuthMethod, UserActor};
use crate::api_key::{self, KeyOwner};
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::error::{AuthError, TokenError};
use crate::ids::{AgentId, SessionId, TokenId};
use crate::metrics::{self, CacheName, StoreName};
use crate::oidc::Grants;
use crate::permission::PermissionSet;
use crate::store::{AgentRecord, AgentStatus, Credits};
use crate::token::{AccessToken, AgentToken, Carrier, VerifiedToken};

impl Authenticator {
    /// The actor a credential stands for.
    pub async fn resolve(&self, credential: Credential<'_>) -> Result<Actor, AuthError> {
        self.resolve_counted(credential, true).await
    }

    /// [`resolve`](Self::resolve) for a credential that [`resolve_cached`](Self::resolve_cached)
    /// has just missed: the resolved-credential cache is looked at again (another request may
    /// have filled it since) without counting a second lookup in the cache metrics.
    pub async fn resolve_after_miss(&self, credential: Credential<'_>) -> Result<Actor, AuthError> {
        self.resolve_counted(credential, false).await
    }

    async fn resolve_counted(
        &self,
        credential: Credential<'_>,
        count: bool,
    ) -> Result<Actor, AuthError> {
        if let Some(actor) = self.cached(credential, count) {
            return Ok(actor);
        }
        // Read before any store is: a revocation landing from here on makes the entry made
        // below stale at once.
        let epoch = self.0.credential_cache.epoch();
        let resolved = &self.0.credential_cache;
        match credential {
            Credential::ApiKey(key) => {
                let (actor, stale_at, cacheable) = self.resolve_api_key(key).await?;
                if cacheable {
                    resolved.insert_key(key, actor.clone(), epoch, self.0.clock.now(), stale_at);
                }
                Ok(actor)
            }
            Credential::Bearer(token) | Credential::Cookie(token) => {
                let method = match credential {
                    Credential::Cookie(_) => AuthMethod::Cookie,
                    _ => AuthMethod::Jwt,
                };
                let cookie = method == AuthMethod::Cookie;
                let seen = resolved.knows_token(token, cookie);
                let (actor, stale_at) = self.resolve_jwt(token, method, seen).await?;
                let now = self.0.clock.now();
                resolved.insert_token(token, cookie, actor.clone(), epoch, now, stale_at);
                Ok(actor)
            }
        }
    }

    /// The actor for a credential resolved recently and unchanged since, without waiting on
    /// anything: `None` means "resolve it the slow way" (never "refused"). Layers call this
    /// first so that the common case is decided synchronously.
    pub fn resolve_cached(&self, credential: Credential<'_>) -> Option<Actor> {
        self.cached(credential, true)
    }

    /// The cached actor, reporting the lookup to the cache metrics when `count`.
    fn cached(&self, credential: Credential<'_>, count: bool) -> Option<Actor> {
        let found = self.lookup(credential);
        if count {
            let cache = match credential {
                Credential::Bearer(_) => CacheName::ResolvedBearer,
                Credential::Cookie(_) => CacheName::ResolvedCookie,
                Credential::ApiKey(_) => CacheName::ResolvedApiKey,
            };
            metrics::cache_lookup(cache, found.is_some());
        }
        found
    }

    fn lookup(&self, credential: Credential<'_>) -> Option<Actor> {
        let now = self.0.clock.now();
        let resolved = &self.0.credential_cache;
        let entry = match credential {
            Credential::Bearer(token) => resolved.token(token, false, now)?,
            Credential::Cookie(token) => resolved.token(token, true, now)?,
            Credential::ApiKey(raw) => {
                // The cache is keyed by the key's keyed hash and only ever holds keys that
                // parsed and resolved, so a hit is that same valid key: the format checks
                // (alphabet, checksum) are left to the slow path. The length check keeps a huge
                // header from being hashed.
                let config = &self.0.config;
                if !config.api_keys_enabled || raw.len() != config.api_key_prefix.key_len() {
                    return None;
                }
                resolved.key(raw, now)?
            }
        };
        if let (Some(usage), Some(key)) = (&self.0.usage, &entry.key_id) {
            usage.record(key, now);
        }
        Some(entry.actor.clone())
    }

    /// The actor of a JWT and the first second it must not be served from the cache. `seen`:
    /// whether the resolved-credential cache has known this token (see [`Self::is_denied`]).
    async fn resolve_jwt(
        &self,
        token: &str,
        method: AuthMethod,
        seen: bool,
    ) -> Result<(Actor, UnixTime), AuthError> {
        // Only a bearer JWT may be an agent's: cookies carry user tokens.
        let carrier = if method == AuthMethod::Jwt {
            Carrier::Bearer
        } else {
            Carrier::Cookie
        };
        // An external issuer's token is verified by that issuer alone (bearer only).
        if carrier == Carrier::Bearer
            && !self.0.issuers.is_empty()
            && let Some(issuer) = self.0.issuers.route(token)
        {
            let grants = Grants {
                roles: &self.0.config.roles,
                catalog: &self.0.catalog,
            };
            let max_bytes = self.0.config.user_policy.max_token_bytes;
            let external = issuer
                .verify(token, max_bytes, self.0.clock.now(), &grants)
                .await?;
            // Not served from the cache past the token's `exp`, nor past the time its
            // issuer's keys stop being trusted.
            let stale_at = external
                .expires_at
                .saturating_add(issuer.config.leeway_secs)
                .min(issuer.trusted_until());
            return Ok((Actor::External(Arc::new(external)), stale_at));
        }
        match self.0.tokens.verify(token, carrier)? {
            VerifiedToken::User(access) => self.resolve_user_token(access, method, seen).await,
            VerifiedToken::Agent(run) => self.resolve_agent_token(run, seen).await,
        }
    }

    async fn resolve_user_token(
        &self,
        access: AccessToken,
        method: AuthMethod,
        seen: bool,
    ) -> Result<(Actor, UnixTime), AuthError> {
        // When the token stops being acceptable (leeway included).
        let token_stale_at = access
            .expires_at
            .saturating_add(self.0.config.user_policy.leeway_secs);
        let now = self.0.clock.now();
        let session = self
            .session(&access.session_id)
            .await?
            .filter(|s| s.user_id == access.user_id && s.is_live(now));
        let Some(session) = session else {
            return Err(AuthError::TokenRevoked);
        };
        if self.is_denied(&access.jti, now, seen).await? {
            return Err(AuthError::TokenRevoked);
        }
        let roles = &self.0.config.roles;
        let role = access.role;
        let permissions = roles.get(&role).unwrap_or(PermissionSet::EMPTY);
        let actor = Actor::User(Arc::new(UserActor {
            id: access.user_id,
            org_id: access.org_id,
            all_orgs: roles.acts_in_every_org(&role),
            role: role.into(),
            permissions,
            session_id: access.session_id,
            method,
        }));
        Ok((actor, token_stale_at.min(session.expires_at)))
    }

    async fn resolve_agent_token(
        &self,
        run: AgentToken,
        seen: bool,
    ) -> Result<(Actor, UnixTime), AuthError> {
        let stale_at = run
            .expires_at
            .saturating_add(self.0.config.agent_policy.leeway_secs);
        let agent = self
            .live_agent(&run.agent_id)
            .await?
            .ok_or(TokenError::UnknownSubject)?;
        if agent.org_id != run.company_id {
            return Err(TokenError::CompanyMismatch.into());
        }
        // A token without `jti` (as other orchestrators mint) cannot be on the denylist;
        // terminating its agent still ends it.
        if let Some(jti) = &run.jti
            && self.is_denied(jti, self.0.clock.now(), seen).await?
        {
            return Err(AuthError::TokenRevoked);
        }
        let actor = Actor::Agent(Arc::new(AgentActor {
            id: agent.id.clone(),
            org_id: agent.org_id.clone(),
            permissions: self.0.agent_permissions,
            run_id: Some(run.run_id),
            key_id: None,
            method: AuthMethod::Jwt,
            expires_at: Some(run.expires_at),
            rate_limit_per_minute: None,
        }));
        Ok((actor, stale_at))
    }

    /// The agent, if it exists; terminated agents are an error.
    async fn live_agent(&self, id: &AgentId) -> Result<Option<Arc<AgentRecord>>, AuthError> {
        let agents = &self.0.stores.agents;
        match self
            .0
            .store_caches
            .agents
            .record(id, || agents.get(id))
            .await?
        {
            Some(a) if a.status == AgentStatus::Terminated => Err(AuthError::AgentTerminated),
            other => Ok(other),
        }
    }

    async fn session(
        &self,
        id: &SessionId,
    ) -> Result<Option<Arc<crate::session::SessionRecord>>, StoreError> {
        let sessions = &self.0.stores.sessions;
        self.0
            .store_caches
            .sessions
            .record(id, || sessions.get(id))
            .await
    }

    /// Whether `jti` is denied.
    ///
    /// A token seen for the first time (`seen` false) asks the denylist store directly and
    /// caches only a denial: the answer for a new `jti` is almost always "not denied", and the
    /// token's actor goes into the resolved-credential cache right after, which answers its
    /// repeats without asking again. Caching that answer as well (moka's single-flight
    /// get-or-insert of a new entry) was half of a first-seen token's whole `resolve` in the
    /// profile of BENCHMARKS.md. A token resolved again (its cached actor went stale: a
    /// revocation somewhere, the cache TTL) goes through the fenced denylist cache as before,
    /// so a wave of re-resolutions after a revocation costs no store round trip per token.
    async fn is_denied(
        &self,
        jti: &TokenId,
        now: UnixTime,
        seen: bool,
    ) -> Result<bool, StoreError> {
        let denylist = &self.0.stores.denylist;
        let denied = &self.0.store_caches.denied;
        if seen {
            return denied.get(jti, || denylist.is_denied(jti, now)).await;
        }
        let denials = &self.0.store_caches.denials;
        if denials.get(jti).is_some() {
            return Ok(true);
        }
        let found = denylist
            .is_denied(jti, now)
            .await
            .inspect_err(|_| metrics::store_error(StoreName::Denylist))?;
        if found {
            denials.insert(jti.clone(), ());
        }
        Ok(found)
    }

    /// The actor of an API key, when a cached resolution must stop being served,
    /// and whether it may be cached at all: a key with a rate limit must meet its limiter, and
    /// one with usage credits must pay one, on every request, so neither is ever served from
    /// the resolved-credential cache. Keys with neither keep the synchronous cached path,
    /// which never looks at credits.
    async fn resolve_api_key(&self, raw: &str) -> Result<(Actor, UnixTime, bool), AuthError> {
        if !self.0.config.api_keys_enabled {
            return Err(AuthError::InvalidApiKey);
        }
        let hash = api_key::parse(raw, &self.0.config.api_key_prefix)?.hash();
        let keys = &self.0.stores.api_keys;
        let found = self
            .0
            .store_caches
            .api_keys
            .record(&hash, || keys.find_presented(&hash))
            .await?
            .ok_or(AuthError::InvalidApiKey)?;
        let (record, previous_until) = &*found;
        let now = self.0.clock.now();
        // A secret a reroll replaced works until its overlap ends, then it is no key at all.
        if previous_until.is_some_and(|until| now >= until) {
            return Err(AuthError::InvalidApiKey);
        }
        record.check_usable(now)?;
        if let Some(limit) = record.rate_limit_per_minute.and_then(NonZeroU32::new) {
            self.0
                .rate_limiter
                .check(record.id.as_str(), limit)
                .await
                .inspect_err(|_| metrics::store_error(StoreName::RateLimits))?
                .map_err(AuthError::RateLimited)?;
        }
        let cacheable = record.rate_limit_per_minute.is_none() && record.remaining.is_none();
        let stale_at = record
            .expires_at
            .unwrap_or(UnixTime::MAX)
            .min(previous_until.unwrap_or(UnixTime::MAX));
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
        // Last, once every other check has passed, so a refused request costs no credit. The
        // record (perhaps cached) only says whether the key has credits; the store counts.
        if record.remaining.is_some() {
            match keys
                .take_credits(&record.id, 1)
                .await
                .inspect_err(|_| metrics::store_error(StoreName::ApiKeys))?
            {
                Credits::Taken { .. } | Credits::Unlimited => {}
                Credits::Exhausted => return Err(AuthError::UsageExhausted),
                Credits::NotFound => return Err(AuthError::InvalidApiKey),
            }
        }
        if let Some(usage) = &self.0.usage {
            usage.record(&record.id, now);
        }
        Ok((actor, stale_at, cacheable))
    }
}
