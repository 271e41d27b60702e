//! Everything that creates and governs actors, with no HTTP: login with its throttle and
//! timing equalisation, sessions and their token pairs, refresh rotation, logout, password
//! change, users, API keys, agents and their run tokens — each rule written once, here.
//!
//! [`Lifecycle`] is what `portcullis-axum`'s routers call; an application without axum calls
//! it directly. Every method that acts for someone takes the [`Actor`] the layer resolved and
//! checks what that actor may do (permissions, org scope, kind of actor) itself, so no
//! caller can forget a rule.
//!
//! ```no_run
//! # async fn run(auth: portcullis_core::Authenticator, users: std::sync::Arc<dyn portcullis_core::users::Users>) -> Result<(), portcullis_core::lifecycle::LifecycleError> {
//! use portcullis_core::lifecycle::Lifecycle;
//! let lifecycle = Lifecycle::builder(auth, users).build()?;
//! let tokens = lifecycle.login("ada@example.com", "correct horse", false).await?;
//! let next = lifecycle.refresh(tokens.refresh_token.expose()).await?;
//! # let _ = next; Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use crate::actor::UserActor;
use crate::api_key::{self, ApiKeyRecord, KeyHash};
use crate::audit::{AuditEvent, AuditLog, AuditPage, AuditQuery, AuditSink, action};
use crate::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use crate::key_issuance::{self, KeyIssueError, KeyRequest};
use crate::password::{self, MAX_PASSWORD_BYTES, PasswordError, Passwords};
use crate::permission::PermissionList;
use crate::permission::seed::{AdminRead, AdminWrite};
use crate::roles::RoleGrantError;
use crate::session::SessionRecord;
use crate::store::{AgentRecord, AgentStatus, Credits};
use crate::throttle::LoginThrottle;
use crate::token::{AccessGrant, AgentGrant};
use crate::users::{Account, Users};
use crate::{Actor, AuthError, Authenticator, PermissionSet, SecretString, StoreError};

/// The longest overlap of a reroll ([`Lifecycle::reroll_api_key`]): a day.
pub const MAX_REROLL_OVERLAP_SECS: u64 = 86_400;

/// The org new things go to when the caller has none (the board): `default`.
pub const DEFAULT_ORG: &str = "default";

/// Why a lifecycle call was refused or failed. Each variant is one kind of response.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// An auth refusal (401, 403, 429, or 503 for an unreachable store), rendered as the
    /// layer renders it.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 400: a field is wrong; says which and why, never the value.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// 404: no such thing, or one the caller may not see (another org's is no thing at all).
    #[error("not found")]
    NotFound,
    /// 409: the thing exists (a taken email) or is in a state that refuses it (a terminated
    /// agent's run).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// 503 with a short `Retry-After`: too many passwords are being checked at once; this
    /// check did not run.
    #[error("busy checking other passwords")]
    Busy,
    /// 500: a bug; the cause is for the log, not the response.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Auth(AuthError::Unavailable(other)),
        }
    }
}

impl From<PasswordError> for LifecycleError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            PasswordError::Failed(why) => Self::Internal(why),
        }
    }
}

/// `Result` of a lifecycle call.
pub type LifecycleResult<T> = Result<T, LifecycleError>;

/// A session just started or refreshed: its token pair and a CSRF token for cookie clients.
/// `Debug` hides the tokens.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// Whose session it is.
    pub account: Account,
    /// The session.
    pub session_id: SessionId,
    /// The access token (JWT).
    pub access_token: SecretString,
    /// Seconds until the access token expires.
    pub access_expires_in: u64,
    /// The refresh token (JWT), good for one rotation.
    pub refresh_token: SecretString,
    /// Seconds until the refresh token (and the session) expires.
    pub refresh_expires_in: u64,
    /// A fresh CSRF token for the double-submit cookie.
    pub csrf_token: SecretString,
}

/// One of a user's live sessions, as [`Lifecycle::sessions_of`] shows it to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session (the `sid` of its tokens).
    pub id: SessionId,
    /// When it began (unix seconds).
    pub created_at: crate::UnixTime,
    /// When its refresh token was last rotated, `None` when never
    /// ([`SessionRecord::last_refreshed_at`]).
    pub last_refreshed_at: Option<crate::UnixTime>,
    /// The `User-Agent` it was started with, cleaned; `None` when there was none.
    pub user_agent: Option<String>,
    /// A remember-me session (the longer refresh lifetime).
    pub remember_me: bool,
    /// True for the session of the access token the caller presented.
    pub current: bool,
}

/// A user to create.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Login email; trimmed and lowercased here, and must look like `name@domain`.
    pub email: &'a str,
    /// Password: [`check_new`](crate::password::check_new)'s rules.
    pub password: &'a str,
    /// A role of the config's [`Roles`](crate::Roles); who may give it is
    /// [`Roles::may_grant`](crate::Roles::may_grant)'s rule.
    pub role: &'a str,
    /// The org; the caller's when `None`.
    pub org_id: Option<&'a OrgId>,
}

/// An API key to make.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Its label (already trimmed and checked by the caller).
    pub name: String,
    /// What it may do: a subset of the caller's permissions.
    pub permissions: PermissionSet,
    /// Lifetime in seconds (see [`key_issuance`]).
    pub expires_in_secs: Option<u64>,
    /// Its own rate limit, requests a minute.
    pub rate_limit_per_minute: Option<u32>,
    /// Usage credits: each request the key authenticates takes one, and at zero it is refused
    /// with 429 `usage_exhausted`; none: unlimited (see [`key_issuance`]).
    pub remaining: Option<u64>,
    /// The agent it should act as.
    pub agent_id: Option<AgentId>,
}

/// An API key just made: the only time the key itself is seen. `Debug` hides it.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    /// Its record, as stored.
    pub record: ApiKeyRecord,
    /// The key.
    pub key: SecretString,
}

/// A run token just minted. `Debug` hides it.
#[derive(Debug, Clone)]
pub struct RunToken {
    /// The run.
    pub run_id: RunId,
    /// The token (JWT).
    pub token: SecretString,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Counts in the caller's org (every org for the board and a superadmin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Users.
    pub users: u64,
    /// API keys.
    pub api_keys: u64,
    /// Agents.
    pub agents: u64,
    /// Login sessions live now.
    pub active_sessions: u64,
}

/// The lifecycle of users, sessions, keys and agents. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle(Arc<Inner>);

struct Inner {
    auth: Authenticator,
    users: Arc<dyn Users>,
    passwords: Passwords,
    throttle: LoginThrottle,
    audit: Option<Arc<dyn AuditSink>>,
    audit_log: Option<Arc<dyn AuditLog>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").finish_non_exhaustive()
    }
}

/// Builds a [`Lifecycle`].
pub struct LifecycleBuilder {
    auth: Authenticator,
    users: Arc<dyn Users>,
    throttle: Option<LoginThrottle>,
    audit: Option<Arc<dyn AuditSink>>,
    audit_log: Option<Arc<dyn AuditLog>>,
}

impl LifecycleBuilder {
    /// Counts password checks with `throttle` (shared between instances:
    /// `redis.login_throttle()`); in memory by default.
    pub fn login_throttle(mut self, throttle: LoginThrottle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Reports every lifecycle event to `sink` ([`crate::audit`]); none by default.
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Reads the audit log from `log` for [`Lifecycle::audit`]; without one that call answers
    /// an empty page.
    pub fn audit_log(mut self, log: Arc<dyn AuditLog>) -> Self {
        self.audit_log = Some(log);
        self
    }

    /// Prepares the password hasher (one hash's worth of time, for the dummy hash).
    pub fn build(self) -> LifecycleResult<Lifecycle> {
        let passwords = Passwords::new()?;
        Ok(Lifecycle(Arc::new(Inner {
            auth: self.auth,
            users: self.users,
            passwords,
            throttle: self.throttle.unwrap_or_else(LoginThrottle::memory),
            audit: self.audit,
            audit_log: self.audit_log,
        })))
    }
}

/// The longest email accepted, in bytes (RFC 5321's 64 + 1 + 255, rounded as the contract
/// states it).
pub const MAX_EMAIL_BYTES: usize = 320;

/// The org `actor` creates things in when it names none: its own, or [`DEFAULT_ORG`] for the
/// board ([`Actor::home_org`]). For an application's own resources, as for users and agents.
pub fn home_org(actor: &Actor) -> OrgId {
    actor.home_org(&OrgId::from(DEFAULT_ORG)).clone()
}

/// Emails are compared and stored trimmed and lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An actor that presented something: anonymous is 401 `missing_credentials`.
fn authenticated(actor: &Actor) -> LifecycleResult<&Actor> {
    match actor {
        Actor::Anonymous => Err(AuthError::MissingCredentials.into()),
        other => Ok(other),
    }
}

/// An actor holding every permission of `P` (as `RequirePermissions<P>` checks): 401 for
/// anonymous, 403 `insufficient_permissions` naming what is missing otherwise.
fn require<P: PermissionList>(actor: &Actor) -> LifecycleResult<()> {
    let missing = authenticated(actor)?.permissions().missing(P::SET);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AuthError::insufficient_permissions(missing).into())
    }
}

/// The user behind a user actor; other actors are 403 `wrong_actor_kind`.
fn user_of(actor: &Actor) -> LifecycleResult<&UserActor> {
    match authenticated(actor)? {
        Actor::User(u) => Ok(u),
        _ => Err(AuthError::WrongActorKind.into()),
    }
}

/// A text field that must be non-empty once trimmed and at most `max` characters as sent
/// (the `maxLength` an OpenAPI document states, which counts the whitespace too): the trimmed
/// text, or a 400 naming the field and the rule.
pub fn required_text(field: &str, value: &str, max: usize) -> LifecycleResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(LifecycleError::Invalid(format!(
            "{field} must not be empty"
        )));
    }
    if value.chars().count() > max {
        return Err(LifecycleError::Invalid(format!(
            "{field} must have at most {max} characters"
        )));
    }
    Ok(v.to_owned())
}

/// The org named (`org_id`, checked as text), or the actor's own; another org the actor does
/// not act in is 403 `org_forbidden`.
fn target_org(actor: &Actor, requested: Option<&OrgId>) -> LifecycleResult<OrgId> {
    let requested = requested
        .map(|org| required_text("org_id", org.as_str(), 200).map(OrgId::from))
        .transpose()?;
    Ok(actor.target_org(requested, &OrgId::from(DEFAULT_ORG))?)
}

fn internal(e: impl std::fmt::Display) -> LifecycleError {
    LifecycleError::Internal(e.to_string())
}

impl Lifecycle {
    /// Starts building over `auth` (tokens, sessions, keys, agents) and `users`.
    pub fn builder(auth: Authenticator, users: Arc<dyn Users>) -> LifecycleBuilder {
        LifecycleBuilder {
            auth,
            users,
            throttle: None,
            audit: None,
            audit_log: None,
        }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.0.auth
    }

    /// The users.
    pub fn users(&self) -> &Arc<dyn Users> {
        &self.0.users
    }

    /// The password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.0.passwords
    }

    fn now(&self) -> crate::UnixTime {
        self.0.auth.clock().now()
    }

    /// Reports `event` to the audit sink, if there is one (never waits).
    fn emit(&self, event: AuditEvent) {
        if let Some(sink) = &self.0.audit {
            sink.record(event);
        }
    }

    /// An event by `actor` now.
    fn event(&self, actor: &Actor, action: &'static str) -> AuditEvent {
        AuditEvent::by(actor, action, self.now())
    }

    /// An event by the user `account` now (in its org).
    fn event_of(&self, account: &Account, action: &'static str) -> AuditEvent {
        AuditEvent::by(&Actor::Anonymous, action, self.now())
            .actor(account.id.as_str(), "user")
            .org(Some(account.org_id.clone()))
    }

    /// `target_org`, reporting a refusal as `org.forbidden`.
    fn target_org_audited(
        &self,
        actor: &Actor,
        requested: Option<&OrgId>,
    ) -> LifecycleResult<OrgId> {
        let org = target_org(actor, requested);
        if let Err(LifecycleError::Auth(AuthError::OrgForbidden)) = &org {
            let target = requested.map(|o| o.as_str().to_owned()).unwrap_or_default();
            self.emit(
                self.event(actor, action::ORG_FORBIDDEN)
                    .target(target)
                    .failed(),
            );
        }
        org
    }

    /// The audit log of the caller's org (every org for the board and a superadmin); needs
    /// `admin:read`. `query.org` is set here from the caller, whatever it held.
    pub async fn audit(&self, actor: &Actor, mut query: AuditQuery) -> LifecycleResult<AuditPage> {
        require::<AdminRead>(actor)?;
        query.org = actor.query_scope().org().cloned();
        match &self.0.audit_log {
            Some(log) => Ok(log.query(&query).await?),
            None => Ok(AuditPage {
                items: Vec::new(),
                next_cursor: None,
            }),
        }
    }

    /// Stops the audit sink after writing what it holds (at shutdown).
    pub async fn shutdown_audit(&self) {
        if let Some(sink) = &self.0.audit {
            sink.shutdown().await;
        }
    }

    /// Runs the password check `check` for `email` on a slot of the login throttle, taken
    /// first (429 when none is left); the slot is given back when `check` fails without a
    /// verdict (a store error, or too busy to hash), since no password was checked.
    async fn with_check_slot<T>(
        &self,
        email: &str,
        check: impl Future<Output = LifecycleResult<T>>,
    ) -> LifecycleResult<T> {
        self.0.throttle.reserve(email).await?;
        let verdict = check.await;
        if verdict.is_err()
            && let Err(e) = self.0.throttle.release(email).await
        {
            tracing::warn!(error = %e, "could not give back a login throttle slot");
        }
        verdict
    }

    // ---- sessions -------------------------------------------------------------------------

    /// Checks `email` and `password` and starts a session. An unknown email and a wrong
    /// password are alike (401 `invalid_credentials`, same cost: the dummy hash); every check
    /// takes a slot of the login throttle first (429 when none is left), given back when the
    /// check could not run (busy, store down).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        remember_me: bool,
    ) -> LifecycleResult<SessionTokens> {
        self.login_with_user_agent(email, password, remember_me, None)
            .await
    }

    /// [`login`](Self::login), keeping the client's `User-Agent` with the session (cleaned by
    /// [`clean_user_agent`](crate::session::clean_user_agent)), for the user's list of
    /// sessions.
    pub async fn login_with_user_agent(
        &self,
        email: &str,
        password: &str,
        remember_me: bool,
        user_agent: Option<&str>,
    ) -> LifecycleResult<SessionTokens> {
        let email = normalize_email(email);
        if email.len() > MAX_EMAIL_BYTES || password.len() > MAX_PASSWORD_BYTES {
            self.emit(
                self.event(&Actor::Anonymous, action::LOGIN_REFUSED)
                    .failed(),
            );
            return Err(AuthError::InvalidCredentials.into());
        }
        let checked = self
            .with_check_slot(&email, async {
                let account = self.0.users.find_by_email(&email).await?;
                // An unknown email verifies against a dummy hash: same answer, same cost.
                let ok = self
                    .0
                    .passwords
                    .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
                    .await?;
                Ok((account, ok))
            })
            .await;
        let (account, ok) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                if let LifecycleError::Auth(AuthError::RateLimited(_)) = &e {
                    self.emit(
                        self.event(&Actor::Anonymous, action::LOGIN_THROTTLED)
                            .failed(),
                    );
                }
                return Err(e);
            }
        };
        match account {
            Some(account) if ok => {
                let tokens = self
                    .start_session_with_user_agent(&account, remember_me, user_agent)
                    .await?;
                self.emit(
                    self.event_of(&account, action::LOGIN_SUCCEEDED)
                        .target(tokens.session_id.as_str()),
                );
                Ok(tokens)
            }
            account => {
                tracing::info!(outcome = "invalid_credentials", "login refused");
                let mut event = self
                    .event(&Actor::Anonymous, action::LOGIN_REFUSED)
                    .failed();
                if let Some(account) = account {
                    event = event
                        .target(account.id.as_str())
                        .org(Some(account.org_id.clone()));
                }
                self.emit(event);
                Err(AuthError::InvalidCredentials.into())
            }
        }
    }

    /// Starts a session for `account` (already authenticated by the caller: SSO, a magic
    /// link, a test) and mints its first token pair.
    pub async fn start_session(
        &self,
        account: &Account,
        remember_me: bool,
    ) -> LifecycleResult<SessionTokens> {
        self.start_session_with_user_agent(account, remember_me, None)
            .await
    }

    /// [`start_session`](Self::start_session), keeping the client's `User-Agent` with the
    /// session (cleaned by [`clean_user_agent`](crate::session::clean_user_agent)).
    pub async fn start_session_with_user_agent(
        &self,
        account: &Account,
        remember_me: bool,
        user_agent: Option<&str>,
    ) -> LifecycleResult<SessionTokens> {
        let auth = &self.0.auth;
        let tokens = auth.user_tokens();
        let sid = SessionId::random();
        let refresh = tokens
            .mint_refresh(&account.id, &sid, remember_me)
            .map_err(internal)?;
        let session = SessionRecord::new(
            sid.clone(),
            account.id.clone(),
            account.org_id.clone(),
            KeyHash::of(refresh.token.expose().as_bytes()),
            self.now(),
            tokens.refresh_lifetime(remember_me),
            remember_me,
        )
        .with_user_agent(user_agent);
        auth.stores().sessions.create(session).await?;
        tracing::info!(user = %account.id, session = %sid, "login");
        self.session_tokens(account.clone(), sid, refresh.token, refresh.expires_in)
    }

    /// Mints the access token of a session whose refresh token is `refresh_token`.
    fn session_tokens(
        &self,
        account: Account,
        session_id: SessionId,
        refresh_token: SecretString,
        refresh_expires_in: u64,
    ) -> LifecycleResult<SessionTokens> {
        let access = self
            .0
            .auth
            .user_tokens()
            .mint_access(AccessGrant {
                user_id: &account.id,
                email: &account.email,
                role: &account.role,
                org_id: &account.org_id,
                session_id: &session_id,
            })
            .map_err(internal)?;
        Ok(SessionTokens {
            account,
            session_id,
            access_token: access.token,
            access_expires_in: access.expires_in,
            refresh_token,
            refresh_expires_in,
            csrf_token: SecretString::random_token(),
        })
    }

    /// Rotates a refresh token: the old one is spent, a new pair is minted. A spent token
    /// presented again after the grace window revokes the whole session. A session whose
    /// user is gone is revoked (401 `token_revoked`).
    pub async fn refresh(&self, refresh_token: &str) -> LifecycleResult<SessionTokens> {
        let auth = &self.0.auth;
        let rotation = match auth.rotate_refresh_reporting_reuse(refresh_token).await {
            Ok(rotation) => rotation,
            Err(refusal) => {
                if let Some((user, sid)) = refusal.reused {
                    let org = self
                        .0
                        .users
                        .get(&user)
                        .await
                        .ok()
                        .flatten()
                        .map(|a| a.org_id);
                    self.emit(
                        self.event(&Actor::Anonymous, action::REFRESH_REUSE_DETECTED)
                            .actor(user.as_str(), "user")
                            .org(org)
                            .target(sid.as_str())
                            .failed(),
                    );
                }
                return Err(refusal.error.into());
            }
        };
        let session = rotation.session;
        let Some(account) = self.0.users.get(&session.user_id).await? else {
            auth.revoke_session(&session.id).await?;
            return Err(AuthError::TokenRevoked.into());
        };
        let lifetime = session.expires_at.saturating_sub(self.now());
        self.session_tokens(account, session.id, rotation.refresh.token, lifetime)
    }

    /// Ends the caller's session: its access and refresh tokens die at once. Only a user has
    /// one (403 `wrong_actor_kind`).
    pub async fn logout(&self, actor: &Actor) -> LifecycleResult<()> {
        let user = user_of(actor)?;
        self.0.auth.revoke_session(&user.session_id).await?;
        self.emit(
            self.event(actor, action::LOGOUT)
                .target(user.session_id.as_str()),
        );
        Ok(())
    }

    /// The caller's live sessions (not revoked, not expired), newest first; `current` marks
    /// the one of the access token presented. Only a user has sessions (403
    /// `wrong_actor_kind` for any other actor, 401 for anonymous).
    pub async fn sessions_of(&self, actor: &Actor) -> LifecycleResult<Vec<SessionSummary>> {
        let user = user_of(actor)?;
        self.live_sessions(&user.id, Some(&user.session_id)).await
    }

    /// The live sessions of user `user` (needs `admin:read`; another org's user is 404), newest
    /// first, as [`sessions_of`](Self::sessions_of) shows a user its own; `current` is always
    /// false (none is the caller's).
    pub async fn sessions_of_user(
        &self,
        actor: &Actor,
        user: &UserId,
    ) -> LifecycleResult<Vec<SessionSummary>> {
        require::<AdminRead>(actor)?;
        self.account_in_scope(actor, user).await?;
        self.live_sessions(user, None).await
    }

    /// `user`'s live sessions, newest first; `current` marks session `current`.
    async fn live_sessions(
        &self,
        user: &UserId,
        current: Option<&SessionId>,
    ) -> LifecycleResult<Vec<SessionSummary>> {
        let mut live = self
            .0
            .auth
            .stores()
            .sessions
            .list_for_user(user, self.now())
            .await?;
        // The store promises the order; sorting again costs nothing and keeps it whatever
        // the backend.
        crate::store::newest_first(&mut live);
        Ok(live
            .into_iter()
            .map(|s| SessionSummary {
                current: Some(&s.id) == current,
                last_refreshed_at: s.last_refreshed_at(),
                id: s.id,
                created_at: s.created_at,
                user_agent: s.user_agent,
                remember_me: s.remember_me,
            })
            .collect())
    }

    /// The account `user`, if the caller may act in its org: another org's user is, to this
    /// caller, no user at all (404).
    async fn account_in_scope(&self, actor: &Actor, user: &UserId) -> LifecycleResult<Account> {
        match self.0.users.get(user).await? {
            Some(account) if actor.can_access_org(&account.org_id) => Ok(account),
            _ => Err(LifecycleError::NotFound),
        }
    }

    /// Ends one of the caller's sessions at once, on every instance, exactly as
    /// [`logout`](Self::logout) ends the caller's own (the caller's own may be named too), and
    /// audited as it is (`logout`, the ended session as the target).
    /// Another user's session, an unknown id and a session already ended (revoked or
    /// expired) are all 404; only a user has sessions (403 `wrong_actor_kind`).
    pub async fn end_session(&self, actor: &Actor, id: &SessionId) -> LifecycleResult<()> {
        let user = user_of(actor)?;
        let auth = &self.0.auth;
        match auth.stores().sessions.get(id).await? {
            Some(s) if s.user_id == user.id && s.is_live(self.now()) => {}
            _ => return Err(LifecycleError::NotFound),
        }
        auth.revoke_session(id).await?;
        tracing::info!(user = %user.id, session = %id, "session ended by its user");
        // The audit log's `logout`, as for the caller's own; the target says which session.
        self.emit(self.event(actor, action::LOGOUT).target(id.as_str()));
        Ok(())
    }

    /// Changes the caller's password (a user's: 403 `wrong_actor_kind` otherwise), checking
    /// the current one on the login throttle's slots, and revokes every session of theirs.
    /// Returns how many sessions were revoked.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current_password: &str,
        new_password: &str,
    ) -> LifecycleResult<u64> {
        let user = user_of(actor)?;
        password::check_new(new_password).map_err(LifecycleError::Invalid)?;
        let Some(account) = self.0.users.get(&user.id).await? else {
            return Err(AuthError::TokenRevoked.into());
        };
        // The same slots as logins for this email: a stolen access token guesses no faster.
        let ok = self
            .with_check_slot(&normalize_email(&account.email), async {
                if current_password.len() > MAX_PASSWORD_BYTES {
                    return Ok(false);
                }
                Ok(self
                    .0
                    .passwords
                    .verify(current_password, Some(&account.password_hash))
                    .await?)
            })
            .await?;
        if !ok {
            return Err(AuthError::InvalidCredentials.into());
        }
        let hash = self.0.passwords.hash(new_password).await?;
        self.0.users.set_password_hash(&account.id, &hash).await?;
        let revoked = self.0.auth.revoke_user_sessions(&account.id).await?;
        tracing::info!(user = %account.id, revoked, "password changed; sessions revoked");
        self.emit(
            self.event(actor, action::PASSWORD_CHANGED)
                .target(account.id.as_str()),
        );
        Ok(revoked)
    }

    /// Revokes every session of user `user` (needs `admin:write`; another org's user is 404).
    pub async fn revoke_user_sessions(&self, actor: &Actor, user: &UserId) -> LifecycleResult<u64> {
        require::<AdminWrite>(actor)?;
        let org = self.account_in_scope(actor, user).await?.org_id;
        let n = self.0.auth.revoke_user_sessions(user).await?;
        self.emit(
            self.event(actor, action::SESSIONS_REVOKED)
                .target(user.as_str())
                .org(Some(org)),
        );
        tracing::info!(user = %user, revoked = n, "sessions revoked by an admin");
        Ok(n)
    }

    // ---- users ----------------------------------------------------------------------------

    /// Creates a user (needs `admin:write`; the org rule is [`Actor::target_org`], the role
    /// rule [`Roles::may_grant`](crate::Roles::may_grant)).
    pub async fn create_user(&self, actor: &Actor, new: NewUser<'_>) -> LifecycleResult<Account> {
        require::<AdminWrite>(actor)?;
        let email = normalize_email(new.email);
        if email.len() > MAX_EMAIL_BYTES
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
        {
            return Err(LifecycleError::Invalid(
                "email must look like name@domain".into(),
            ));
        }
        password::check_new(new.password).map_err(LifecycleError::Invalid)?;
        let roles = &self.0.auth.config().roles;
        roles.may_grant(actor, new.role).map_err(|e| match e {
            RoleGrantError::Unknown => LifecycleError::Invalid(format!(
                "role must be one of: {}",
                roles.names().join(", ")
            )),
            RoleGrantError::Refused(e) => LifecycleError::Auth(e),
        })?;
        let org_id = self.target_org_audited(actor, new.org_id)?;
        let account = Account {
            id: UserId::random(),
            email,
            password_hash: self.0.passwords.hash(new.password).await?,
            role: new.role.to_owned(),
            org_id,
        };
        match self.0.users.create(&account).await {
            Ok(()) => {
                self.emit(
                    self.event(actor, action::USER_CREATED)
                        .target(account.id.as_str())
                        .org(Some(account.org_id.clone())),
                );
                Ok(account)
            }
            Err(StoreError::Conflict(_)) => Err(LifecycleError::Conflict("that email is taken")),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the first user, a `superadmin` of [`DEFAULT_ORG`], when there is no user at all;
    /// `None` when there already is one (another instance may have made it first).
    pub async fn create_first_user(
        &self,
        email: &str,
        password: &str,
    ) -> LifecycleResult<Option<Account>> {
        if self.0.users.count(None).await? > 0 {
            return Ok(None);
        }
        let account = Account {
            id: UserId::random(),
            email: normalize_email(email),
            password_hash: self.0.passwords.hash(password).await?,
            role: "superadmin".into(),
            org_id: OrgId::from(DEFAULT_ORG),
        };
        match self.0.users.create(&account).await {
            Ok(()) => {
                tracing::info!(email = %account.email, "created superadmin");
                Ok(Some(account))
            }
            // Another instance made it first.
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The users of the caller's org (every org for the board and a superadmin), sorted by
    /// email; needs `admin:read`.
    pub async fn users_in_scope(&self, actor: &Actor) -> LifecycleResult<Vec<Account>> {
        require::<AdminRead>(actor)?;
        let mut users = self.0.users.list(actor.query_scope().org()).await?;
        crate::users::by_email(&mut users);
        Ok(users)
    }

    /// Counts in the caller's org (needs `admin:read`).
    pub async fn stats(&self, actor: &Actor) -> LifecycleResult<Stats> {
        require::<AdminRead>(actor)?;
        let stores = self.0.auth.stores();
        let org = actor.query_scope().org();
        Ok(Stats {
            users: self.0.users.count(org).await?,
            api_keys: stores.api_keys.count(org).await?,
            agents: stores.agents.count(org).await?,
            active_sessions: stores.sessions.count_live(self.now(), org).await?,
        })
    }

    // ---- API keys -------------------------------------------------------------------------

    /// Makes an API key within [`key_issuance::grant`]'s bounds. A key made by an API key
    /// with usage credits takes its own `remaining` from that key first (see
    /// [`key_issuance`]): 400 without `remaining`, 429 `usage_exhausted` when it asks for more
    /// than is left.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        new: NewApiKey,
    ) -> LifecycleResult<IssuedApiKey> {
        authenticated(actor)?;
        let name = required_text("name", &new.name, 200)?;
        let auth = &self.0.auth;
        let agent = match &new.agent_id {
            None => None,
            Some(id) => Some(
                auth.stores()
                    .agents
                    .get(id)
                    .await?
                    .ok_or(LifecycleError::NotFound)?,
            ),
        };
        let request = KeyRequest {
            permissions: new.permissions,
            expires_in_secs: new.expires_in_secs,
            rate_limit_per_minute: new.rate_limit_per_minute,
            remaining: new.remaining,
            agent: agent.as_ref(),
        };
        let now = self.now();
        let grant = key_issuance::grant(
            actor,
            &request,
            now,
            auth.agent_permissions(),
            &OrgId::from(DEFAULT_ORG),
        )
        .map_err(|e| match e {
            KeyIssueError::Refused(e) => LifecycleError::Auth(e),
            KeyIssueError::AgentNotFound => LifecycleError::NotFound,
            KeyIssueError::Invalid(why) => LifecycleError::Invalid(why.to_owned()),
        })?;
        let paid = self.take_parent_credits(actor, grant.remaining).await?;
        let generated = api_key::generate(&auth.config().api_key_prefix);
        let record = ApiKeyRecord {
            id: ApiKeyId::random(),
            name,
            hash: generated.hash,
            display_prefix: generated.display_prefix,
            created_by: grant.created_by,
            owner: grant.owner,
            org_id: grant.org_id,
            permissions: grant.permissions,
            created_at: now,
            expires_at: grant.expires_at,
            enabled: true,
            rate_limit_per_minute: grant.rate_limit_per_minute,
            last_used_at: None,
            remaining: grant.remaining,
        };
        if let Err(e) = auth.stores().api_keys.insert(record.clone()).await {
            if let Some((parent, n)) = paid {
                self.return_parent_credits(parent, n).await;
            }
            return Err(e.into());
        }
        tracing::info!(key = %record.id, by = %record.created_by.actor, "api key created");
        self.emit(
            self.event(actor, action::API_KEY_CREATED)
                .target(record.id.as_str())
                .org(Some(record.org_id.clone())),
        );
        Ok(IssuedApiKey {
            record,
            key: generated.key,
        })
    }

    /// When `actor` came with an API key that has usage credits, takes the new key's credits
    /// (`asked`) from it at once, so that a key and every key it makes never spend more than
    /// it held; a new key without credits is then refused (400), and one asking for more
    /// than the parent has left is 429 `usage_exhausted`. Nothing for any other actor.
    /// Answers what it took, and from which key.
    ///
    /// Taken before the new key is stored — never the other way round, a key with credits
    /// nobody paid for. Should storing it fail, they go back ([`Self::return_parent_credits`]).
    async fn take_parent_credits<'a>(
        &self,
        actor: &'a Actor,
        asked: Option<u64>,
    ) -> LifecycleResult<Option<(&'a ApiKeyId, u64)>> {
        let Some(parent) = actor.api_key_id() else {
            return Ok(None);
        };
        let keys = &self.0.auth.stores().api_keys;
        let record = keys.get(parent).await?.ok_or(AuthError::InvalidApiKey)?;
        if record.remaining.is_none() {
            return Ok(None);
        }
        let Some(n) = asked else {
            return Err(LifecycleError::Invalid(
                "remaining is required when the creating API key has usage credits".into(),
            ));
        };
        match keys.take_credits(parent, n).await? {
            Credits::Taken { .. } => Ok(Some((parent, n))),
            Credits::Unlimited => Ok(None),
            Credits::Exhausted => Err(AuthError::UsageExhausted.into()),
            Credits::NotFound => Err(AuthError::InvalidApiKey.into()),
        }
    }

    /// Gives `parent` back the `n` credits taken for a child key that could not be stored.
    /// If the store cannot take them back either (it is likely down), they are lost: said at
    /// `error` level with the key's id and the count, for an operator to restore.
    async fn return_parent_credits(&self, parent: &ApiKeyId, n: u64) {
        let keys = &self.0.auth.stores().api_keys;
        if let Err(e) = keys.return_credits(parent, n).await {
            tracing::error!(
                key = %parent,
                credits = n,
                error = %e,
                "usage credits taken for a child key that was not stored could not be returned"
            );
        }
    }

    /// Makes an API key for the account whose login is `email`, as the account itself would
    /// make it — the same [`create_api_key`](Self::create_api_key) bounds (at most what its role
    /// grants, the lifetime and rate-limit ranges) — for tools outside any session: the sample
    /// server's `portcullis keys create`, bootstrapping and break-glass. No such account is 404.
    pub async fn create_api_key_for(
        &self,
        email: &str,
        new: NewApiKey,
    ) -> LifecycleResult<IssuedApiKey> {
        let account = self
            .0
            .users
            .find_by_email(&normalize_email(email))
            .await?
            .ok_or(LifecycleError::NotFound)?;
        let roles = &self.0.auth.config().roles;
        let actor = Actor::User(Arc::new(UserActor {
            id: account.id,
            org_id: account.org_id,
            permissions: roles.get(&account.role).unwrap_or(PermissionSet::EMPTY),
            all_orgs: roles.acts_in_every_org(&account.role),
            role: account.role.into(),
            // Out of band: no login session is behind this actor, and none is needed — a key's
            // creator is its user.
            session_id: SessionId::from("out-of-band"),
            method: crate::AuthMethod::Jwt,
        }));
        self.create_api_key(&actor, new).await
    }

    /// The keys the caller manages ([`key_issuance::listing`]).
    pub async fn api_keys(&self, actor: &Actor) -> LifecycleResult<Vec<ApiKeyRecord>> {
        let Some(of) = key_issuance::listing(authenticated(actor)?) else {
            return Ok(Vec::new());
        };
        Ok(self.0.auth.stores().api_keys.list(&of).await?)
    }

    /// The key `id`, if the caller manages it; 404 otherwise (whether or not it exists).
    async fn owned(&self, actor: &Actor, id: &ApiKeyId) -> LifecycleResult<ApiKeyRecord> {
        authenticated(actor)?;
        self.0
            .auth
            .stores()
            .api_keys
            .get(id)
            .await?
            .filter(|r| key_issuance::manages(actor, r))
            .ok_or(LifecycleError::NotFound)
    }

    /// Enables or disables one of the caller's keys, at once; 404 when it is not one.
    pub async fn set_api_key_enabled(
        &self,
        actor: &Actor,
        id: &ApiKeyId,
        enabled: bool,
    ) -> LifecycleResult<ApiKeyRecord> {
        let mut record = self.owned(actor, id).await?;
        if !self.0.auth.set_api_key_enabled(id, enabled).await? {
            return Err(LifecycleError::NotFound);
        }
        record.enabled = enabled;
        let what = if enabled {
            action::API_KEY_ENABLED
        } else {
            action::API_KEY_DISABLED
        };
        self.emit(
            self.event(actor, what)
                .target(record.id.as_str())
                .org(Some(record.org_id.clone())),
        );
        Ok(record)
    }

    /// Deletes one of the caller's keys: it stops working at once; 404 when it is not one.
    pub async fn delete_api_key(&self, actor: &Actor, id: &ApiKeyId) -> LifecycleResult<()> {
        let record = self.owned(actor, id).await?;
        if !self.0.auth.delete_api_key(id).await? {
            return Err(LifecycleError::NotFound);
        }
        self.emit(
            self.event(actor, action::API_KEY_DELETED)
                .target(id.as_str())
                .org(Some(record.org_id)),
        );
        Ok(())
    }

    /// Gives one of the caller's keys a new secret (a reroll): the same id, permissions, rate
    /// limit and expiry, a new key shown this once. The secret it replaces keeps working for
    /// `overlap_secs` (0 ..= [`MAX_REROLL_OVERLAP_SECS`]; 0: dead at once) and is then no key
    /// at all (401 `invalid_api_key`), on every instance. Rerolling again within an overlap
    /// kills the secret the first reroll kept: only the newest replaced secret survives. Who
    /// may: whoever manages the key ([`key_issuance::manages`]); any other key is 404.
    pub async fn reroll_api_key(
        &self,
        actor: &Actor,
        id: &ApiKeyId,
        overlap_secs: u64,
    ) -> LifecycleResult<IssuedApiKey> {
        if overlap_secs > MAX_REROLL_OVERLAP_SECS {
            return Err(LifecycleError::Invalid(format!(
                "overlap_seconds must be between 0 and {MAX_REROLL_OVERLAP_SECS}"
            )));
        }
        let mut record = self.owned(actor, id).await?;
        let auth = &self.0.auth;
        let generated = api_key::generate(&auth.config().api_key_prefix);
        let previous_until = (overlap_secs > 0).then(|| self.now().saturating_add(overlap_secs));
        if !auth
            .reroll_api_key(
                id,
                generated.hash,
                &generated.display_prefix,
                previous_until,
            )
            .await?
        {
            return Err(LifecycleError::NotFound);
        }
        record.hash = generated.hash;
        record.display_prefix = generated.display_prefix;
        tracing::info!(key = %record.id, overlap_secs, "api key rerolled");
        self.emit(
            self.event(actor, action::API_KEY_REROLLED)
                .target(id.as_str())
                .org(Some(record.org_id.clone())),
        );
        Ok(IssuedApiKey {
            record,
            key: generated.key,
        })
    }

    // ---- agents ---------------------------------------------------------------------------

    /// Registers an agent (needs `admin:write`; org rule [`Actor::target_org`]).
    pub async fn create_agent(
        &self,
        actor: &Actor,
        name: String,
        org_id: Option<&OrgId>,
    ) -> LifecycleResult<AgentRecord> {
        require::<AdminWrite>(actor)?;
        let name = required_text("name", &name, 200)?;
        let org_id = self.target_org_audited(actor, org_id)?;
        let agent = AgentRecord {
            id: AgentId::random(),
            org_id,
            name,
            status: AgentStatus::Active,
            created_at: self.now(),
        };
        self.0.auth.stores().agents.insert(agent.clone()).await?;
        self.emit(
            self.event(actor, action::AGENT_CREATED)
                .target(agent.id.as_str())
                .org(Some(agent.org_id.clone())),
        );
        Ok(agent)
    }

    /// The agent `id`; 404 when there is none, or when it is of an org the caller does not
    /// act in.
    async fn agent(&self, actor: &Actor, id: &AgentId) -> LifecycleResult<AgentRecord> {
        self.0
            .auth
            .stores()
            .agents
            .get(id)
            .await?
            .filter(|a| actor.can_access_org(&a.org_id))
            .ok_or(LifecycleError::NotFound)
    }

    /// The agents of the caller's org (every org for the board and a superadmin), active and
    /// terminated, oldest first; needs `admin:read`.
    pub async fn agents_in_scope(&self, actor: &Actor) -> LifecycleResult<Vec<AgentRecord>> {
        require::<AdminRead>(actor)?;
        let mut agents = self
            .0
            .auth
            .stores()
            .agents
            .list(actor.query_scope().org())
            .await?;
        crate::store::by_creation(&mut agents);
        Ok(agents)
    }

    /// Mints a run token for an agent (needs `admin:write`; another org's agent is 404, a
    /// terminated one 409).
    pub async fn start_run(
        &self,
        actor: &Actor,
        agent: &AgentId,
        adapter_type: &str,
    ) -> LifecycleResult<RunToken> {
        require::<AdminWrite>(actor)?;
        let adapter_type = required_text("adapter_type", adapter_type, 100)?;
        let agent = self.agent(actor, agent).await?;
        if agent.status == AgentStatus::Terminated {
            return Err(LifecycleError::Conflict("the agent is terminated"));
        }
        let run_id = RunId::random();
        let minted = self
            .0
            .auth
            .agent_tokens()
            .mint(AgentGrant {
                agent_id: &agent.id,
                company_id: &agent.org_id,
                adapter_type: &adapter_type,
                run_id: &run_id,
            })
            .map_err(internal)?;
        self.emit(
            self.event(actor, action::RUN_TOKEN_MINTED)
                .target(agent.id.as_str())
                .org(Some(agent.org_id.clone())),
        );
        Ok(RunToken {
            run_id,
            token: minted.token,
            expires_in: minted.expires_in,
        })
    }

    /// Terminates an agent (needs `admin:write`; another org's is 404): its run tokens and
    /// keys stop working at once.
    pub async fn terminate_agent(&self, actor: &Actor, agent: &AgentId) -> LifecycleResult<()> {
        require::<AdminWrite>(actor)?;
        let agent = self.agent(actor, agent).await?;
        self.0.auth.terminate_agent(&agent.id).await?;
        tracing::info!(agent = %agent.id, "agent terminated");
        self.emit(
            self.event(actor, action::AGENT_TERMINATED)
                .target(agent.id.as_str())
                .org(Some(agent.org_id.clone())),
        );
        Ok(())
    }
}
