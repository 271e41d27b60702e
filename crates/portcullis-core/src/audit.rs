//! The audit log: every lifecycle event (login, logout, refresh reuse, password change,
//! sessions revoked, users, keys, agents, run tokens, refused org) as one [`AuditEvent`],
//! reported by the [`Lifecycle`](crate::lifecycle::Lifecycle) to an [`AuditSink`] set on its
//! builder, and read back through an [`AuditLog`].
//!
//! A sink never blocks nor fails the request: it queues (bounded) and drops, counting, when
//! full. No event holds a secret: actors, orgs and targets are ids, never a token, a key or a
//! password.
//!
//! The HTTP side says which request caused an event through [`RequestContext::scope`]: the
//! lifecycle reads the request id and client address of the request it runs for from there.

use std::future::Future;

use crate::clock::UnixTime;
use crate::ids::OrgId;
use crate::{Actor, StoreError};

/// The dotted names of the actions recorded.
pub mod action {
    /// A password login started a session.
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    /// A login was refused (unknown email or wrong password).
    pub const LOGIN_REFUSED: &str = "login.refused";
    /// A login was refused by the login throttle (429).
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    /// A user ended their session.
    pub const LOGOUT: &str = "logout";
    /// A spent refresh token came back after the grace window: its session was revoked.
    pub const REFRESH_REUSE_DETECTED: &str = "refresh.reuse_detected";
    /// A user changed their password (every session revoked).
    pub const PASSWORD_CHANGED: &str = "password.changed";
    /// An admin revoked every session of a user.
    pub const SESSIONS_REVOKED: &str = "sessions.revoked";
    /// A user was created.
    pub const USER_CREATED: &str = "user.created";
    /// An API key was created.
    pub const API_KEY_CREATED: &str = "api_key.created";
    /// An API key was enabled.
    pub const API_KEY_ENABLED: &str = "api_key.enabled";
    /// An API key was disabled.
    pub const API_KEY_DISABLED: &str = "api_key.disabled";
    /// An API key was deleted.
    pub const API_KEY_DELETED: &str = "api_key.deleted";
    /// An API key was given a new secret (its replaced secret lives for the overlap).
    pub const API_KEY_REROLLED: &str = "api_key.rerolled";
    /// An agent was registered.
    pub const AGENT_CREATED: &str = "agent.created";
    /// An agent was terminated.
    pub const AGENT_TERMINATED: &str = "agent.terminated";
    /// An agent run token was minted.
    pub const RUN_TOKEN_MINTED: &str = "run_token.minted";
    /// An actor named an org it does not act in (403 `org_forbidden`).
    pub const ORG_FORBIDDEN: &str = "org.forbidden";

    /// Every action, for validating a filter.
    pub const ALL: &[&str] = &[
        LOGIN_SUCCEEDED,
        LOGIN_REFUSED,
        LOGIN_THROTTLED,
        LOGOUT,
        REFRESH_REUSE_DETECTED,
        PASSWORD_CHANGED,
        SESSIONS_REVOKED,
        USER_CREATED,
        API_KEY_CREATED,
        API_KEY_ENABLED,
        API_KEY_DISABLED,
        API_KEY_DELETED,
        API_KEY_REROLLED,
        AGENT_CREATED,
        AGENT_TERMINATED,
        RUN_TOKEN_MINTED,
        ORG_FORBIDDEN,
    ];
}

/// How an event ended: `success` or `failure`.
pub mod outcome {
    /// It was done.
    pub const SUCCESS: &str = "success";
    /// It was refused.
    pub const FAILURE: &str = "failure";
}

/// One lifecycle event. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When (unix seconds).
    pub time: UnixTime,
    /// Who acted: a user, agent or key id, `board`; `None` when nobody is known (a refused
    /// login for an unknown email).
    pub actor_id: Option<String>,
    /// `user`, `agent`, `api_key`, `service`, `board`, `anonymous`.
    pub actor_kind: String,
    /// The org the event belongs to (whose admins see it); `None`: only those acting in every
    /// org see it.
    pub org_id: Option<OrgId>,
    /// One of [`action`].
    pub action: String,
    /// What it was done to (an id), if anything.
    pub target: Option<String>,
    /// One of [`outcome`].
    pub outcome: String,
    /// The request that caused it ([`RequestContext`]).
    pub request_id: Option<String>,
    /// The client's address ([`RequestContext`]).
    pub client: Option<String>,
}

impl AuditEvent {
    /// An event of `action` by `actor` at `time`, its org the actor's, its request context the
    /// current one ([`RequestContext::current`]).
    pub fn by(actor: &Actor, action: &'static str, time: UnixTime) -> Self {
        let ctx = RequestContext::current().unwrap_or_default();
        Self {
            time,
            actor_id: actor.id().map(str::to_owned),
            actor_kind: actor.kind().as_str().to_owned(),
            org_id: actor.org_id().cloned(),
            action: action.to_owned(),
            target: None,
            outcome: outcome::SUCCESS.to_owned(),
            request_id: ctx.request_id,
            client: ctx.client,
        }
    }

    /// The same event by another actor (`kind` as [`ActorKind::as_str`](crate::ActorKind::as_str)).
    pub fn actor(mut self, id: &str, kind: &str) -> Self {
        self.actor_id = Some(id.to_owned());
        self.actor_kind = kind.to_owned();
        self
    }

    /// The same event about `target`.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The same event in `org`.
    pub fn org(mut self, org: Option<OrgId>) -> Self {
        self.org_id = org;
        self
    }

    /// The same event, refused.
    pub fn failed(mut self) -> Self {
        self.outcome = outcome::FAILURE.to_owned();
        self
    }
}

/// Where the lifecycle reports events. `record` is called on the request path: it must not
/// block nor fail (queue, and drop when the queue is full).
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one event.
    fn record(&self, event: AuditEvent);

    /// Writes what is pending and stops taking events (at shutdown). The default does nothing.
    async fn shutdown(&self) {}
}

/// Which request an event belongs to: its id and the client's address, as the HTTP side
/// found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `X-Request-Id` (cleaned) or a generated id.
    pub request_id: Option<String>,
    /// The peer address.
    pub client: Option<String>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The longest request id kept.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

impl RequestContext {
    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CONTEXT.scope(self, fut).await
    }

    /// The context of the request being served, if the HTTP side set one.
    pub fn current() -> Option<Self> {
        CONTEXT.try_with(Clone::clone).ok()
    }

    /// A fresh request id (a UUID v4), for a request that brought none.
    pub fn new_request_id() -> String {
        crate::random::uuid()
    }

    /// A request id as a client sent it, if it is usable: 1 to [`MAX_REQUEST_ID_CHARS`]
    /// characters of `A-Z a-z 0-9 - _ . : /`; anything else is `None` (the caller generates
    /// one).
    pub fn clean_request_id(sent: &str) -> Option<String> {
        let ok = !sent.is_empty()
            && sent.len() <= MAX_REQUEST_ID_CHARS
            && sent
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
        ok.then(|| sent.to_owned())
    }
}

/// A stored event, as [`AuditLog::query`] answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its row id (unique, increasing in insertion order).
    pub id: i64,
    /// The event.
    pub event: AuditEvent,
}

/// Where reading starts: strictly older than this `(time, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last item's time.
    pub time: UnixTime,
    /// The last item's id.
    pub id: i64,
}

impl AuditCursor {
    /// The largest number of digits of either part: both fit an `i64`.
    pub const MAX_DIGITS: usize = 18;

    /// The text form, `<time>.<id>`: a position in the log, not a secret. Any value of that
    /// form is a valid position (the page starts strictly older than it).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.time, self.id)
    }

    /// Reads [`encode`](Self::encode)'s form: two runs of 1 to [`MAX_DIGITS`](Self::MAX_DIGITS)
    /// ASCII digits joined by a dot; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('.')?;
        let digits = |s: &str| {
            (1..=Self::MAX_DIGITS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(time) || !digits(id) {
            return None;
        }
        Some(Self {
            time: time.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// A query of the audit log: newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this org's events; `None`: every org's.
    pub org: Option<OrgId>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor_id: Option<String>,
    /// Only events at or after this time.
    pub since: Option<UnixTime>,
    /// Start after this item.
    pub cursor: Option<AuditCursor>,
    /// At most this many items.
    pub limit: u32,
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditRecord>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<AuditCursor>,
}

/// The stored audit log, for reading.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// One page of events matching `query`.
    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = AuditCursor {
            time: 1_700_000_000,
            id: 42,
        };
        assert_eq!(AuditCursor::decode(&c.encode()), Some(c));
        assert_eq!(AuditCursor::decode("not a cursor!"), None);
        assert_eq!(AuditCursor::decode(""), None);
        assert_eq!(AuditCursor::decode(&"A".repeat(100)), None);
        // Any position of the documented form is accepted, the oldest and the largest.
        assert_eq!(
            AuditCursor::decode("0.0"),
            Some(AuditCursor { time: 0, id: 0 })
        );
        let max = "9".repeat(AuditCursor::MAX_DIGITS);
        assert!(AuditCursor::decode(&format!("{max}.{max}")).is_some());
        for bad in ["1.", ".1", "1.2.3", "-1.2", "+1.2", "1:2", "0"] {
            assert_eq!(AuditCursor::decode(bad), None, "{bad}");
        }
        assert_eq!(AuditCursor::decode(&format!("1{max}.1")), None);
    }

    #[test]
    fn request_ids_are_kept_only_when_clean() {
        assert_eq!(
            RequestContext::clean_request_id("abc-123"),
            Some("abc-123".into())
        );
        assert_eq!(RequestContext::clean_request_id("a b"), None);
        assert_eq!(RequestContext::clean_request_id(""), None);
        assert_eq!(RequestContext::clean_request_id(&"a".repeat(129)), None);
    }

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        assert_eq!(RequestContext::current(), None);
        let ctx = RequestContext {
            request_id: Some("r1".into()),
            client: Some("127.0.0.1:1".into()),
        };
        let seen = ctx.clone().scope(async { RequestContext::current() }).await;
        assert_eq!(seen, Some(ctx));
    }
}
