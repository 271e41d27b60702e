//! Who is calling: the one value every request resolves to.

use std::sync::Arc;

use crate::clock::UnixTime;
use crate::error::AuthError;
use crate::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use crate::permission::{PermissionList, PermissionSet};

/// How the actor proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A bearer JWT (user access token or agent run token).
    Jwt,
    /// An API key.
    ApiKey,
    /// The access-token cookie (browsers).
    Cookie,
    /// No credentials; board fallback in local trusted mode.
    Fallback,
    /// An external issuer's access token (OpenID Connect).
    Oidc,
}

impl AuthMethod {
    /// The contract's name: `jwt`, `api_key`, `cookie`, `fallback`, `oidc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Cookie => "cookie",
            Self::Fallback => "fallback",
            Self::Oidc => "oidc",
        }
    }
}

/// The kind of actor, as `whoami` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A person with a login session.
    User,
    /// An automated agent.
    Agent,
    /// An API key owned by a user.
    ApiKey,
    /// A machine client of an external issuer (client credentials).
    Service,
    /// Local trusted mode.
    Board,
    /// Nobody.
    Anonymous,
}

impl ActorKind {
    /// `user`, `agent`, `api_key`, `service`, `board`, `anonymous`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::ApiKey => "api_key",
            Self::Service => "service",
            Self::Board => "board",
            Self::Anonymous => "anonymous",
        }
    }
}

/// A signed-in user, from an access token (bearer or cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserActor {
    /// The user.
    pub id: UserId,
    /// Their organisation.
    pub org_id: OrgId,
    /// Their role's name.
    pub role: Arc<str>,
    /// What the role grants.
    pub permissions: PermissionSet,
    /// The role acts in every org (`superadmin`), not only in `org_id`.
    pub all_orgs: bool,
    /// The login session the token belongs to.
    pub session_id: SessionId,
    /// [`AuthMethod::Jwt`] or [`AuthMethod::Cookie`].
    pub method: AuthMethod,
}

/// An agent, from a run token or from an API key it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentActor {
    /// The agent.
    pub id: AgentId,
    /// The company it works for.
    pub org_id: OrgId,
    /// What it may do.
    pub permissions: PermissionSet,
    /// The run, for run tokens.
    pub run_id: Option<RunId>,
    /// The key, for agent-owned API keys.
    pub key_id: Option<ApiKeyId>,
    /// [`AuthMethod::Jwt`] or [`AuthMethod::ApiKey`].
    pub method: AuthMethod,
    /// When the credential stops working: the run token's `exp`, or the key's expiry.
    pub expires_at: Option<UnixTime>,
    /// The key's own rate limit, for agent-owned keys.
    pub rate_limit_per_minute: Option<u32>,
}

/// An API key owned by a user; acts with the key's own permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyActor {
    /// The key.
    pub key_id: ApiKeyId,
    /// Who created it.
    pub owner: UserId,
    /// The owner's organisation.
    pub org_id: OrgId,
    /// The key's permissions (a subset of its creator's at creation).
    pub permissions: PermissionSet,
    /// The key's own limit, if any.
    pub rate_limit_per_minute: Option<u32>,
    /// When the key stops working, if ever.
    pub expires_at: Option<UnixTime>,
}

/// A person or machine client signed in at an external issuer (OpenID Connect), from its
/// access token. Acts in its one org only, whatever roles the issuer gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalActor {
    /// The issuer (`iss`).
    pub issuer: Arc<str>,
    /// The subject (the configured subject claim, `sub` by default).
    pub subject: Arc<str>,
    /// A person or a machine client.
    pub kind: crate::oidc::ExternalKind,
    /// The org the token maps to.
    pub org_id: OrgId,
    /// What its scopes and roles grant.
    pub permissions: PermissionSet,
    /// The token's `exp`.
    pub expires_at: UnixTime,
}

impl ExternalActor {
    /// The actor's id where it owns things (API keys it makes): the subject qualified by
    /// its issuer, so that no two issuers' subjects — nor a local user's id — are the same.
    pub fn principal(&self) -> String {
        format!("{}#{}", self.issuer, self.subject)
    }
}

/// Where an actor acts: in one org, or in every org (the board, a `superadmin`).
///
/// ```
/// use portcullis_core::{Actor, OrgScope};
/// assert_eq!(Actor::Board.org_scope(), Some(OrgScope::All));
/// assert_eq!(Actor::Anonymous.org_scope(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgScope<'a> {
    /// Only this org.
    Org(&'a OrgId),
    /// Every org.
    All,
}

impl<'a> OrgScope<'a> {
    /// True when `org` is in scope.
    pub fn contains(&self, org: &OrgId) -> bool {
        match self {
            Self::Org(own) => *own == org,
            Self::All => true,
        }
    }

    /// The one org, or `None` for every org (how a query binds it).
    pub fn org(self) -> Option<&'a OrgId> {
        match self {
            Self::Org(own) => Some(own),
            Self::All => None,
        }
    }
}

/// Who is calling. Cheap to clone: an `Arc` or nothing inside.
///
/// ```
/// use portcullis_core::{Actor, ActorKind, PermissionList, seed::AdminWrite};
/// let board = Actor::Board;
/// assert_eq!(board.kind(), ActorKind::Board);
/// assert!(board.has::<AdminWrite>());
/// assert!(!Actor::Anonymous.has::<AdminWrite>());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(Arc<UserActor>),
    /// An agent.
    Agent(Arc<AgentActor>),
    /// A user's API key.
    ApiKey(Arc<ApiKeyActor>),
    /// A person or service signed in at an external issuer.
    External(Arc<ExternalActor>),
    /// Local trusted mode: every permission in every org.
    Board,
    /// No credentials and no fallback.
    Anonymous,
}

/// The id `whoami` reports for the board.
pub const BOARD_ID: &str = "board";

impl Actor {
    /// The kind of actor.
    pub fn kind(&self) -> ActorKind {
        match self {
            Self::User(_) => ActorKind::User,
            Self::Agent(_) => ActorKind::Agent,
            Self::ApiKey(_) => ActorKind::ApiKey,
            Self::External(e) => match e.kind {
                crate::oidc::ExternalKind::User => ActorKind::User,
                crate::oidc::ExternalKind::Service => ActorKind::Service,
            },
            Self::Board => ActorKind::Board,
            Self::Anonymous => ActorKind::Anonymous,
        }
    }

    /// The actor's id: user id, agent id, key id, an external actor's subject, `"board"`, or
    /// none for anonymous.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(u) => Some(u.id.as_str()),
            Self::Agent(a) => Some(a.id.as_str()),
            Self::ApiKey(k) => Some(k.key_id.as_str()),
            Self::External(e) => Some(&e.subject),
            Self::Board => Some(BOARD_ID),
            Self::Anonymous => None,
        }
    }

    /// The actor's organisation; none for the board (it spans all) and anonymous.
    pub fn org_id(&self) -> Option<&OrgId> {
        match self {
            Self::User(u) => Some(&u.org_id),
            Self::Agent(a) => Some(&a.org_id),
            Self::ApiKey(k) => Some(&k.org_id),
            Self::External(e) => Some(&e.org_id),
            Self::Board | Self::Anonymous => None,
        }
    }

    /// Where the actor acts: its own org; every org for the board and a `superadmin` user;
    /// nowhere for anonymous. API keys and agents act in the org of the user or agent they
    /// belong to, whatever that user's role.
    pub fn org_scope(&self) -> Option<OrgScope<'_>> {
        match self {
            Self::Board => Some(OrgScope::All),
            Self::User(u) if u.all_orgs => Some(OrgScope::All),
            Self::Anonymous => None,
            other => other.org_id().map(OrgScope::Org),
        }
    }

    /// [`Actor::org_scope`] for filtering queries: anonymous, which acts nowhere, gets an org
    /// that no record has, so a query it reaches by mistake finds nothing.
    pub fn query_scope(&self) -> OrgScope<'_> {
        static NOWHERE: std::sync::LazyLock<OrgId> = std::sync::LazyLock::new(|| OrgId::from(""));
        self.org_scope().unwrap_or(OrgScope::Org(&NOWHERE))
    }

    /// True when the actor acts in every org.
    pub fn acts_in_every_org(&self) -> bool {
        self.org_scope() == Some(OrgScope::All)
    }

    /// True when the actor may act in `org`. Something of an org it may not act in is, to it,
    /// not there: callers answer 404, never "forbidden", so ids of other orgs leak nothing.
    pub fn can_access_org(&self, org: &OrgId) -> bool {
        self.org_scope().is_some_and(|s| s.contains(org))
    }

    /// The org a new thing goes to when the actor names none: its own, or `default` for an
    /// actor without one (the board, which spans every org).
    ///
    /// ```
    /// use portcullis_core::{Actor, ids::OrgId};
    /// let default = OrgId::from("default");
    /// assert_eq!(Actor::Board.home_org(&default).as_str(), "default");
    /// ```
    pub fn home_org<'a>(&'a self, default: &'a OrgId) -> &'a OrgId {
        self.org_id().unwrap_or(default)
    }

    /// The org a new thing goes to when the actor names `requested` (or none: its own org, or
    /// `default` for an actor without one). Naming an org it may not act in is
    /// [`AuthError::OrgForbidden`].
    pub fn target_org(
        &self,
        requested: Option<OrgId>,
        default: &OrgId,
    ) -> Result<OrgId, AuthError> {
        match requested {
            Some(org) if self.can_access_org(&org) => Ok(org),
            Some(_) => Err(AuthError::OrgForbidden),
            None => Ok(self.home_org(default).clone()),
        }
    }

    /// When the credential the actor presented stops working, if it is bounded: an API key's
    /// expiry, an agent run token's or an external token's `exp`. Keys it makes expire no
    /// later.
    pub fn credential_expires_at(&self) -> Option<UnixTime> {
        match self {
            Self::ApiKey(k) => k.expires_at,
            Self::Agent(a) => a.expires_at,
            Self::External(e) => Some(e.expires_at),
            _ => None,
        }
    }

    /// The rate limit of the API key the actor presented, if it has one. Keys it makes have
    /// one no higher.
    pub fn credential_rate_limit(&self) -> Option<u32> {
        match self {
            Self::ApiKey(k) => k.rate_limit_per_minute,
            Self::Agent(a) => a.rate_limit_per_minute,
            _ => None,
        }
    }

    /// What the actor may do.
    pub fn permissions(&self) -> PermissionSet {
        match self {
            Self::User(u) => u.permissions,
            Self::Agent(a) => a.permissions,
            Self::ApiKey(k) => k.permissions,
            Self::External(e) => e.permissions,
            Self::Board => PermissionSet::ALL,
            Self::Anonymous => PermissionSet::EMPTY,
        }
    }

    /// True when the actor holds every permission of `P`.
    pub fn has<P: PermissionList>(&self) -> bool {
        self.permissions().contains(P::SET)
    }

    /// How the actor authenticated; none for anonymous.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        match self {
            Self::User(u) => Some(u.method),
            Self::Agent(a) => Some(a.method),
            Self::ApiKey(_) => Some(AuthMethod::ApiKey),
            Self::External(_) => Some(AuthMethod::Oidc),
            Self::Board => Some(AuthMethod::Fallback),
            Self::Anonymous => None,
        }
    }

    /// The login session, for users.
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            Self::User(u) => Some(&u.session_id),
            _ => None,
        }
    }

    /// The run, for agents on a run token.
    pub fn run_id(&self) -> Option<&RunId> {
        match self {
            Self::Agent(a) => a.run_id.as_ref(),
            _ => None,
        }
    }

    /// The external issuer, for actors signed in at one.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Self::External(e) => Some(&e.issuer),
            _ => None,
        }
    }

    /// The API key the request came with, if any.
    pub fn api_key_id(&self) -> Option<&ApiKeyId> {
        match self {
            Self::ApiKey(k) => Some(&k.key_id),
            Self::Agent(a) => a.key_id.as_ref(),
            _ => None,
        }
    }

    /// True for anyone but [`Actor::Anonymous`].
    pub const fn is_authenticated(&self) -> bool {
        !matches!(self, Self::Anonymous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::*;

    #[test]
    fn actor_is_small_and_clone_is_cheap() {
        assert!(std::mem::size_of::<Actor>() <= 16);
    }

    #[test]
    fn board_spans_every_org_and_user_only_its_own() {
        let user = Actor::User(Arc::new(UserActor {
            id: "u1".into(),
            org_id: "acme".into(),
            role: "user".into(),
            permissions: SESSION_ALL,
            all_orgs: false,
            session_id: "s1".into(),
            method: AuthMethod::Jwt,
        }));
        assert!(user.can_access_org(&"acme".into()));
        assert!(!user.can_access_org(&"globex".into()));
        assert!(Actor::Board.can_access_org(&"globex".into()));
        assert!(!Actor::Anonymous.can_access_org(&"acme".into()));
        assert!(user.has::<(SessionCreate, SessionList)>());
        assert!(!user.has::<MemoryRead>());
        assert_eq!(user.auth_method().map(AuthMethod::as_str), Some("jwt"));
        assert_eq!(user.session_id().map(|s| s.as_str()), Some("s1"));
    }
}
