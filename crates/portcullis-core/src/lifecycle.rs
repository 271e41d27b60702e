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

use std::sync::Arc;

use crate::api_key::ApiKeyRecord;
use crate::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use crate::password::{PasswordError, Passwords};
use crate::store::AgentRecord;
use crate::throttle::LoginThrottle;
use crate::users::{Account, Users};
use crate::{Actor, AuthError, Authenticator, PermissionSet, SecretString, StoreError};

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
    /// Lifetime in seconds (see [`key_issuance`](crate::key_issuance)).
    pub expires_in_secs: Option<u64>,
    /// Its own rate limit, requests a minute.
    pub rate_limit_per_minute: Option<u32>,
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
}

impl LifecycleBuilder {
    /// Counts password checks with `throttle` (shared between instances:
    /// `LoginThrottle::shared(redis.counter())`); in memory by default.
    pub fn login_throttle(mut self, throttle: LoginThrottle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Prepares the password hasher (one hash's worth of time, for the dummy hash).
    pub fn build(self) -> LifecycleResult<Lifecycle> {
        todo!()
    }
}

impl Lifecycle {
    /// Starts building over `auth` (tokens, sessions, keys, agents) and `users`.
    pub fn builder(auth: Authenticator, users: Arc<dyn Users>) -> LifecycleBuilder {
        LifecycleBuilder {
            auth,
            users,
            throttle: None,
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
        let _ = (email, password, remember_me, &self.0.throttle);
        todo!()
    }

    /// Starts a session for `account` (already authenticated by the caller: SSO, a magic
    /// link, a test) and mints its first token pair.
    pub async fn start_session(
        &self,
        account: &Account,
        remember_me: bool,
    ) -> LifecycleResult<SessionTokens> {
        let _ = (account, remember_me);
        todo!()
    }

    /// Rotates a refresh token: the old one is spent, a new pair is minted. A spent token
    /// presented again after the grace window revokes the whole session. A session whose
    /// user is gone is revoked (401 `token_revoked`).
    pub async fn refresh(&self, refresh_token: &str) -> LifecycleResult<SessionTokens> {
        let _ = refresh_token;
        todo!()
    }

    /// Ends the caller's session: its access and refresh tokens die at once. Only a user has
    /// one (403 `wrong_actor_kind`).
    pub async fn logout(&self, actor: &Actor) -> LifecycleResult<()> {
        let _ = actor;
        todo!()
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
        let _ = (actor, current_password, new_password);
        todo!()
    }

    /// Revokes every session of user `user` (needs `admin:write`; another org's user is 404).
    pub async fn revoke_user_sessions(&self, actor: &Actor, user: &UserId) -> LifecycleResult<u64> {
        let _ = (actor, user);
        todo!()
    }

    // ---- users ----------------------------------------------------------------------------

    /// Creates a user (needs `admin:write`; the org rule is [`Actor::target_org`], the role
    /// rule [`Roles::may_grant`](crate::Roles::may_grant)).
    pub async fn create_user(&self, actor: &Actor, new: NewUser<'_>) -> LifecycleResult<Account> {
        let _ = (actor, new);
        todo!()
    }

    /// Creates the first user, a `superadmin` of [`DEFAULT_ORG`], when there is no user at all;
    /// `None` when there already is one (another instance may have made it first).
    pub async fn create_first_user(
        &self,
        email: &str,
        password: &str,
    ) -> LifecycleResult<Option<Account>> {
        let _ = (email, password);
        todo!()
    }

    /// Counts in the caller's org (needs `admin:read`).
    pub async fn stats(&self, actor: &Actor) -> LifecycleResult<Stats> {
        let _ = actor;
        todo!()
    }

    // ---- API keys -------------------------------------------------------------------------

    /// Makes an API key within [`key_issuance::grant`](crate::key_issuance::grant)'s bounds.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        new: NewApiKey,
    ) -> LifecycleResult<IssuedApiKey> {
        let _ = (actor, new);
        todo!()
    }

    /// The keys the caller manages ([`key_issuance::listing`](crate::key_issuance::listing)).
    pub async fn api_keys(&self, actor: &Actor) -> LifecycleResult<Vec<ApiKeyRecord>> {
        let _ = actor;
        todo!()
    }

    /// Enables or disables one of the caller's keys, at once; 404 when it is not one.
    pub async fn set_api_key_enabled(
        &self,
        actor: &Actor,
        id: &ApiKeyId,
        enabled: bool,
    ) -> LifecycleResult<ApiKeyRecord> {
        let _ = (actor, id, enabled);
        todo!()
    }

    /// Deletes one of the caller's keys: it stops working at once; 404 when it is not one.
    pub async fn delete_api_key(&self, actor: &Actor, id: &ApiKeyId) -> LifecycleResult<()> {
        let _ = (actor, id);
        todo!()
    }

    // ---- agents ---------------------------------------------------------------------------

    /// Registers an agent (needs `admin:write`; org rule [`Actor::target_org`]).
    pub async fn create_agent(
        &self,
        actor: &Actor,
        name: String,
        org_id: Option<&OrgId>,
    ) -> LifecycleResult<AgentRecord> {
        let _ = (actor, name, org_id);
        todo!()
    }

    /// Mints a run token for an agent (needs `admin:write`; another org's agent is 404, a
    /// terminated one 409).
    pub async fn start_run(
        &self,
        actor: &Actor,
        agent: &AgentId,
        adapter_type: &str,
    ) -> LifecycleResult<RunToken> {
        let _ = (actor, agent, adapter_type);
        todo!()
    }

    /// Terminates an agent (needs `admin:write`; another org's is 404): its run tokens and
    /// keys stop working at once.
    pub async fn terminate_agent(&self, actor: &Actor, agent: &AgentId) -> LifecycleResult<()> {
        let _ = (actor, agent);
        todo!()
    }
}
