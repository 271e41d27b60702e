//! Who is calling: the one value every request resolves to.

use std::sync::Arc;

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
}

impl AuthMethod {
    /// The contract's name: `jwt`, `api_key`, `cookie`, `fallback`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Cookie => "cookie",
            Self::Fallback => "fallback",
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
    /// Local trusted mode.
    Board,
    /// Nobody.
    Anonymous,
}

impl ActorKind {
    /// `user`, `agent`, `api_key`, `board`, `anonymous`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::ApiKey => "api_key",
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
    /// Local trusted mode: every permission in every org.
    Board,
    /// No credentials and no fallback.
    Anonymous,
}

/// The id `whoami` reports for the board.
pub const BOARD_ID: &str = "board";

impl Actor {
    /// The kind of actor.
    pub const fn kind(&self) -> ActorKind {
        match self {
            Self::User(_) => ActorKind::User,
            Self::Agent(_) => ActorKind::Agent,
            Self::ApiKey(_) => ActorKind::ApiKey,
            Self::Board => ActorKind::Board,
            Self::Anonymous => ActorKind::Anonymous,
        }
    }

    /// The actor's id: user id, agent id, key id, `"board"`, or none for anonymous.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(u) => Some(u.id.as_str()),
            Self::Agent(a) => Some(a.id.as_str()),
            Self::ApiKey(k) => Some(k.key_id.as_str()),
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
            Self::Board | Self::Anonymous => None,
        }
    }

    /// True when the actor may act in `org`: its own org, or any org for the board.
    pub fn can_access_org(&self, org: &OrgId) -> bool {
        match self {
            Self::Board => true,
            other => other.org_id() == Some(org),
        }
    }

    /// What the actor may do.
    pub fn permissions(&self) -> PermissionSet {
        match self {
            Self::User(u) => u.permissions,
            Self::Agent(a) => a.permissions,
            Self::ApiKey(k) => k.permissions,
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
