//! What a new API key may hold, and which keys an actor manages. One rule, here, for every
//! application: the sample server's `/api-keys` routes only call it.
//!
//! - A key holds at most what its creator holds.
//! - A key made by a key, or by an agent on a run token, lives no longer than that credential
//!   and is limited no more loosely: asked for more, or for nothing, it gets the parent's bound.
//!   Otherwise a child would outlive a revoked-by-expiry parent or outrun its rate limit.
//! - A key made by a key with usage credits must ask for its own credits, and takes them from
//!   its parent ([`Lifecycle::create_api_key`](crate::lifecycle::Lifecycle::create_api_key)):
//!   the parent's counter drops by as many, so a key and all the keys it makes never spend
//!   more than the parent held. (Bounding a child only by the parent's count would let a key
//!   with N credits mint N children of N each.)
//! - A key that acts as an agent (`agent_id`) needs `admin:write` in the agent's org and holds
//!   at most what agents may hold (never `admin:*`). An agent of another org is not found.
//! - An actor lists and manages the keys it made; a user also those its keys made. A key is
//!   its own actor here: it never reaches its owner's other keys.

use crate::actor::Actor;
use crate::api_key::{ApiKeyRecord, KeyCreator, KeyOwner, KeysOf};
use crate::clock::UnixTime;
use crate::error::AuthError;
use crate::ids::{OrgId, UserId};
use crate::permission::{PermissionList, PermissionSet, seed::AdminWrite};
use crate::store::{AgentRecord, AgentStatus};

/// The longest lifetime a key may be given: ten years, so that every `expires_at` fits the
/// stores' signed 64-bit columns and a JSON number.
pub const MAX_KEY_LIFETIME_SECS: u64 = 10 * 365 * 86_400;

/// The highest per-key rate limit (requests a minute): what a signed 32-bit integer holds.
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = i32::MAX as u32;

/// The most usage credits a key may be given: 2^53 - 1, the largest integer every JSON parser
/// reads exactly (and well within the stores' signed 64-bit columns).
pub const MAX_CREDITS: u64 = (1 << 53) - 1;

/// What the caller asked for.
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest<'a> {
    /// The permissions the key should hold.
    pub permissions: PermissionSet,
    /// Lifetime in seconds (1 ..= [`MAX_KEY_LIFETIME_SECS`]); none: as long as the creator's
    /// credential, or for ever.
    pub expires_in_secs: Option<u64>,
    /// Requests a minute (1 ..= [`MAX_RATE_LIMIT_PER_MINUTE`]); none: the creator's, or none.
    pub rate_limit_per_minute: Option<u32>,
    /// Usage credits (1 ..= [`MAX_CREDITS`]); none: unlimited (a key made by a key with credits
    /// must ask for some).
    pub remaining: Option<u64>,
    /// The agent the key should act as, as found by its id (`None` when not asked for).
    pub agent: Option<&'a AgentRecord>,
}

/// Why a key cannot be made. Each maps to one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyIssueError {
    /// 403/401: the caller may not (missing permissions, or not authenticated).
    Refused(AuthError),
    /// 404: the agent is not one the caller can see (another org's, or terminated).
    AgentNotFound,
    /// 400: a field is out of range; names the field and the rule, never the value.
    Invalid(&'static str),
}

impl From<AuthError> for KeyIssueError {
    fn from(e: AuthError) -> Self {
        Self::Refused(e)
    }
}

/// What the key gets: everything of its record but its id, name, hash and times of use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// Whom it acts as.
    pub owner: KeyOwner,
    /// Its org.
    pub org_id: OrgId,
    /// Its permissions.
    pub permissions: PermissionSet,
    /// When it stops working, if ever.
    pub expires_at: Option<UnixTime>,
    /// Its rate limit, if any.
    pub rate_limit_per_minute: Option<u32>,
    /// Its usage credits, if limited (still to be taken from a parent with credits).
    pub remaining: Option<u64>,
    /// Who made it.
    pub created_by: KeyCreator,
}

/// Decides what a key asked for by `actor` at `now` may be. `agent_permissions` is what agents
/// may hold; `default_org` is where the board's own keys go.
///
/// ```
/// use portcullis_core::{Actor, PermissionList, seed::{MemoryRead, SESSION_ALL, MEMORY_ALL}};
/// use portcullis_core::key_issuance::{KeyRequest, grant};
/// let req = KeyRequest {
///     permissions: MemoryRead::SET,
///     expires_in_secs: Some(60),
///     rate_limit_per_minute: None,
///     remaining: None,
///     agent: None,
/// };
/// let g = grant(&Actor::Board, &req, 1_000, SESSION_ALL | MEMORY_ALL, &"default".into()).unwrap();
/// assert_eq!(g.expires_at, Some(1_060));
/// assert!(grant(&Actor::Anonymous, &req, 1_000, SESSION_ALL, &"default".into()).is_err());
/// ```
pub fn grant(
    actor: &Actor,
    req: &KeyRequest<'_>,
    now: UnixTime,
    agent_permissions: PermissionSet,
    default_org: &OrgId,
) -> Result<KeyGrant, KeyIssueError> {
    let created_by = creator(actor).ok_or(AuthError::MissingCredentials)?;
    let missing = actor.permissions().missing(req.permissions);
    if !missing.is_empty() {
        return Err(AuthError::insufficient_permissions(missing).into());
    }
    let requested_expiry = match req.expires_in_secs {
        None => None,
        Some(0) => {
            return Err(KeyIssueError::Invalid(
                "expires_in_seconds must be at least 1",
            ));
        }
        Some(s) if s > MAX_KEY_LIFETIME_SECS => {
            return Err(KeyIssueError::Invalid(
                "expires_in_seconds must be at most 315360000 (ten years)",
            ));
        }
        Some(s) => Some(now.saturating_add(s)),
    };
    let requested_limit = match req.rate_limit_per_minute {
        None => None,
        Some(0) => {
            return Err(KeyIssueError::Invalid(
                "rate_limit_per_minute must be at least 1",
            ));
        }
        Some(n) if n > MAX_RATE_LIMIT_PER_MINUTE => {
            return Err(KeyIssueError::Invalid(
                "rate_limit_per_minute must be at most 2147483647",
            ));
        }
        Some(n) => Some(n),
    };
    if let Some(n) = req.remaining
        && !(1..=MAX_CREDITS).contains(&n)
    {
        return Err(KeyIssueError::Invalid(
            "remaining must be between 1 and 9007199254740991",
        ));
    }
    let (owner, org_id) = match req.agent {
        None => (owner_of(actor), actor.home_org(default_org).clone()),
        Some(agent) => {
            if !actor.can_access_org(&agent.org_id) || agent.status != AgentStatus::Active {
                return Err(KeyIssueError::AgentNotFound);
            }
            let missing = actor.permissions().missing(AdminWrite::SET);
            if !missing.is_empty() {
                return Err(AuthError::insufficient_permissions(missing).into());
            }
            let beyond = agent_permissions.missing(req.permissions);
            if !beyond.is_empty() {
                return Err(AuthError::insufficient_permissions(beyond).into());
            }
            (KeyOwner::Agent(agent.id.clone()), agent.org_id.clone())
        }
    };
    Ok(KeyGrant {
        owner,
        org_id,
        permissions: req.permissions,
        expires_at: tighter(requested_expiry, actor.credential_expires_at()),
        rate_limit_per_minute: tighter(requested_limit, actor.credential_rate_limit()),
        remaining: req.remaining,
        created_by,
    })
}

/// The lower of two optional bounds, where `None` means unbounded.
fn tighter<T: Ord>(asked: Option<T>, parent: Option<T>) -> Option<T> {
    match (asked, parent) {
        (Some(a), Some(p)) => Some(a.min(p)),
        (a, p) => a.or(p),
    }
}

/// Whom a key made by `actor` (without `agent_id`) acts as: a user's key and a user's key's key
/// act for the user; an agent's for the agent; the board's for the board.
fn owner_of(actor: &Actor) -> KeyOwner {
    match actor {
        Actor::User(u) => KeyOwner::User(u.id.clone()),
        Actor::ApiKey(k) => KeyOwner::User(k.owner.clone()),
        Actor::Agent(a) => KeyOwner::Agent(a.id.clone()),
        Actor::External(e) => KeyOwner::User(UserId::from(e.principal())),
        Actor::Board | Actor::Anonymous => KeyOwner::User(UserId::from(crate::actor::BOARD_ID)),
    }
}

/// The creator record of a key `actor` makes; none for anonymous.
pub fn creator(actor: &Actor) -> Option<KeyCreator> {
    let (actor_id, user) = match actor {
        // Qualified by its issuer: no other issuer's subject, nor a local id, is the same.
        Actor::External(e) => (e.principal(), None),
        Actor::User(u) => (u.id.as_str().to_owned(), Some(u.id.clone())),
        Actor::ApiKey(k) => (k.key_id.as_str().to_owned(), Some(k.owner.clone())),
        other => (
            other
                .api_key_id()
                .map(|k| k.as_str())
                .or(other.id())?
                .to_owned(),
            None,
        ),
    };
    Some(KeyCreator {
        actor: actor_id,
        user,
    })
}

/// The keys `actor` lists: those it made; for a user also those its keys made. `None` for
/// anonymous.
pub fn listing(actor: &Actor) -> Option<KeysOf> {
    match actor {
        Actor::User(u) => Some(KeysOf::User(u.id.clone())),
        Actor::Anonymous => None,
        other => creator(other).map(|c| KeysOf::Actor(c.actor)),
    }
}

/// True when `actor` may see, enable, disable or delete `record`: the keys of its
/// [`listing`]. The board too manages only the keys it made — every other key is, to it, not
/// there (the operator's break-glass for those is `portcullis keys revoke`, on the database).
pub fn manages(actor: &Actor, record: &ApiKeyRecord) -> bool {
    listing(actor).is_some_and(|of| of.matches(record))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::actor::{AgentActor, ApiKeyActor, AuthMethod, UserActor};
    use crate::api_key::KeyHash;
    use crate::permission::seed::{self, *};

    fn user(role_perms: PermissionSet, org: &str) -> Actor {
        Actor::User(Arc::new(UserActor {
            id: "u1".into(),
            org_id: org.into(),
            role: "x".into(),
            permissions: role_perms,
            all_orgs: false,
            session_id: "s".into(),
            method: AuthMethod::Jwt,
        }))
    }

    fn key(perms: PermissionSet, expires_at: Option<u64>, limit: Option<u32>) -> Actor {
        Actor::ApiKey(Arc::new(ApiKeyActor {
            key_id: "k1".into(),
            owner: "u1".into(),
            org_id: "acme".into(),
            permissions: perms,
            rate_limit_per_minute: limit,
            expires_at,
        }))
    }

    fn agent_rec(org: &str) -> AgentRecord {
        AgentRecord {
            id: "a1".into(),
            org_id: org.into(),
            name: "bot".into(),
            status: AgentStatus::Active,
            created_at: 0,
        }
    }

    fn req(permissions: PermissionSet) -> KeyRequest<'static> {
        KeyRequest {
            permissions,
            expires_in_secs: None,
            rate_limit_per_minute: None,
            remaining: None,
            agent: None,
        }
    }

    const AGENTS: PermissionSet = SESSION_ALL.union(MEMORY_ALL);

    #[test]
    fn a_child_key_never_outlives_or_outruns_its_parent() {
        let parent = key(MEMORY_ALL, Some(5_000), Some(2));
        let g = grant(&parent, &req(MemoryRead::SET), 1_000, AGENTS, &"d".into()).unwrap();
        assert_eq!(
            (g.expires_at, g.rate_limit_per_minute),
            (Some(5_000), Some(2))
        );
        let asked_more = KeyRequest {
            expires_in_secs: Some(1_000_000),
            rate_limit_per_minute: Some(200),
            ..req(MemoryRead::SET)
        };
        let g = grant(&parent, &asked_more, 1_000, AGENTS, &"d".into()).unwrap();
        assert_eq!(
            (g.expires_at, g.rate_limit_per_minute),
            (Some(5_000), Some(2))
        );
        let asked_less = KeyRequest {
            expires_in_secs: Some(10),
            rate_limit_per_minute: Some(1),
            ..req(MemoryRead::SET)
        };
        let g = grant(&parent, &asked_less, 1_000, AGENTS, &"d".into()).unwrap();
        assert_eq!(
            (g.expires_at, g.rate_limit_per_minute),
            (Some(1_010), Some(1))
        );
        assert_eq!(g.created_by.actor, "k1");
        assert_eq!(g.owner, KeyOwner::User("u1".into()));
    }

    #[test]
    fn a_key_made_on_a_run_token_expires_with_it() {
        let agent = Actor::Agent(Arc::new(AgentActor {
            id: "a1".into(),
            org_id: "acme".into(),
            permissions: AGENTS,
            run_id: Some("r".into()),
            key_id: None,
            method: AuthMethod::Jwt,
            expires_at: Some(173_800),
            rate_limit_per_minute: None,
        }));
        let g = grant(&agent, &req(MemoryRead::SET), 1_000, AGENTS, &"d".into()).unwrap();
        assert_eq!(g.expires_at, Some(173_800));
        assert_eq!(g.owner, KeyOwner::Agent("a1".into()));
    }

    #[test]
    fn agent_keys_need_admin_write_in_the_agents_org_and_no_more_than_agents_hold() {
        let viewer = user(seed::MEMORY_ALL, "acme");
        let agent = agent_rec("acme");
        let for_agent = KeyRequest {
            agent: Some(&agent),
            ..req(MemoryRead::SET)
        };
        assert_eq!(
            grant(&viewer, &for_agent, 0, AGENTS, &"d".into()),
            Err(KeyIssueError::Refused(AuthError::insufficient_permissions(
                AdminWrite::SET
            )))
        );
        let admin = user(PermissionSet::ALL, "acme");
        let g = grant(&admin, &for_agent, 0, AGENTS, &"d".into()).unwrap();
        assert_eq!(g.owner, KeyOwner::Agent("a1".into()));
        let too_much = KeyRequest {
            agent: Some(&agent),
            ..req(AdminWrite::SET)
        };
        assert!(matches!(
            grant(&admin, &too_much, 0, AGENTS, &"d".into()),
            Err(KeyIssueError::Refused(
                AuthError::InsufficientPermissions { .. }
            ))
        ));
        let other_org = agent_rec("globex");
        let foreign = KeyRequest {
            agent: Some(&other_org),
            ..req(MemoryRead::SET)
        };
        assert_eq!(
            grant(&admin, &foreign, 0, AGENTS, &"d".into()),
            Err(KeyIssueError::AgentNotFound)
        );
    }

    #[test]
    fn out_of_range_fields_are_invalid_without_echoing_them() {
        let admin = user(PermissionSet::ALL, "acme");
        for r in [
            KeyRequest {
                expires_in_secs: Some(0),
                ..req(MemoryRead::SET)
            },
            KeyRequest {
                expires_in_secs: Some(u64::MAX),
                ..req(MemoryRead::SET)
            },
            KeyRequest {
                rate_limit_per_minute: Some(0),
                ..req(MemoryRead::SET)
            },
            KeyRequest {
                rate_limit_per_minute: Some(u32::MAX),
                ..req(MemoryRead::SET)
            },
            KeyRequest {
                remaining: Some(0),
                ..req(MemoryRead::SET)
            },
            KeyRequest {
                remaining: Some(MAX_CREDITS + 1),
                ..req(MemoryRead::SET)
            },
        ] {
            assert!(matches!(
                grant(&admin, &r, 0, AGENTS, &"d".into()),
                Err(KeyIssueError::Invalid(_))
            ));
        }
    }

    #[test]
    fn a_key_manages_only_what_it_made_and_a_user_what_it_and_its_keys_made() {
        let record = |actor: &str, user: Option<&str>| ApiKeyRecord {
            id: "x".into(),
            name: "n".into(),
            hash: KeyHash::of(b"x"),
            display_prefix: "ck_x".into(),
            created_by: KeyCreator {
                actor: actor.into(),
                user: user.map(Into::into),
            },
            owner: KeyOwner::User("u1".into()),
            org_id: "acme".into(),
            permissions: ADMIN_ALL,
            created_at: 0,
            expires_at: None,
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
            remaining: None,
        };
        let owners_admin_key = record("u1", Some("u1"));
        let made_by_k1 = record("k1", Some("u1"));
        let zero_key = key(PermissionSet::EMPTY, None, None);
        assert!(!manages(&zero_key, &owners_admin_key));
        assert!(manages(&zero_key, &made_by_k1));
        let owner = user(PermissionSet::ALL, "acme");
        assert!(manages(&owner, &owners_admin_key) && manages(&owner, &made_by_k1));
        assert!(!manages(&Actor::Board, &owners_admin_key));
        assert!(manages(&Actor::Board, &record("board", None)));
        assert!(!manages(&Actor::Anonymous, &owners_admin_key));
    }
}
