//! Login sessions and the refresh-rotation rules, as a pure state machine.
//!
//! A session holds the hash of its current refresh token and of the one before it (the
//! parent). Presenting the current token rotates. Presenting the parent again within the grace
//! window (a lost response, a retry) rotates again from the same parent, so a client that
//! retries keeps its session. Presenting the parent after the grace, or any older token of the
//! session, is reuse: someone holds a stolen token, and the whole session is revoked.
//! Stores apply [`SessionRecord::refresh`] as one compare-and-swap.

use crate::api_key::KeyHash;
use crate::clock::UnixTime;
use crate::ids::{OrgId, SessionId, UserId};

/// One login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The `sid` claim.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// The user's organisation.
    pub org_id: OrgId,
    /// SHA-256 of the refresh token that may be used next.
    pub current: KeyHash,
    /// SHA-256 of the token `current` replaced, if any.
    pub parent: Option<KeyHash>,
    /// When `current` was issued by a rotation (the grace window starts here).
    pub rotated_at: UnixTime,
    /// When the session began.
    pub created_at: UnixTime,
    /// When the session ends regardless of use (the refresh lifetime).
    pub expires_at: UnixTime,
    /// Remember-me sessions get the longer refresh lifetime.
    pub remember_me: bool,
    /// Revoked sessions accept nothing.
    pub revoked: bool,
    /// The `User-Agent` the session was started with, cleaned by [`clean_user_agent`]; `None`
    /// when there was none. For the user's own list of sessions; never a credential.
    pub user_agent: Option<String>,
}

/// The most characters of a `User-Agent` a session keeps.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// A `User-Agent` as a session keeps it: control characters dropped, surrounding whitespace
/// trimmed, at most [`MAX_USER_AGENT_CHARS`] characters; `None` when nothing is left.
pub fn clean_user_agent(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let cleaned = cleaned.trim_end().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// What presenting a refresh token does to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Accept: store this new state (compare-and-swap against the old one).
    Rotate(SessionRecord),
    /// Reuse detected: revoke the whole session, refuse the request.
    RevokeForReuse,
    /// Refuse without changing anything.
    Reject(RefreshRejection),
}

/// Why a refresh was refused without a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    /// The session was revoked (logout, password change, admin, earlier reuse).
    Revoked,
    /// The session outlived its refresh lifetime.
    Expired,
}

impl SessionRecord {
    /// A new session whose first refresh token hashes to `first`.
    pub fn new(
        id: SessionId,
        user_id: UserId,
        org_id: OrgId,
        first: KeyHash,
        now: UnixTime,
        lifetime_secs: u64,
        remember_me: bool,
    ) -> Self {
        Self {
            id,
            user_id,
            org_id,
            current: first,
            parent: None,
            rotated_at: now,
            created_at: now,
            expires_at: now.saturating_add(lifetime_secs),
            remember_me,
            revoked: false,
            user_agent: None,
        }
    }

    /// The same session, started with the `User-Agent` `raw` (cleaned by
    /// [`clean_user_agent`]; `None` keeps none).
    #[must_use]
    pub fn with_user_agent(self, raw: Option<&str>) -> Self {
        Self {
            user_agent: raw.and_then(clean_user_agent),
            ..self
        }
    }

    /// When the session's refresh token was last rotated, or `None` when it never was: the
    /// start of the latest grace window ([`rotated_at`](Self::rotated_at)); a retry within
    /// that window does not move it.
    pub fn last_refreshed_at(&self) -> Option<UnixTime> {
        self.parent.is_some().then_some(self.rotated_at)
    }

    /// True when access tokens of this session are honoured at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        !self.revoked && now < self.expires_at
    }

    /// The rule: what presenting `presented` at `now` does, given the hash `next` of the
    /// token that would replace it and the grace window in seconds.
    pub fn refresh(
        &self,
        presented: &KeyHash,
        next: KeyHash,
        now: UnixTime,
        grace_secs: u64,
    ) -> Transition {
        if self.revoked {
            return Transition::Reject(RefreshRejection::Revoked);
        }
        if now >= self.expires_at {
            return Transition::Reject(RefreshRejection::Expired);
        }
        if *presented == self.current {
            return Transition::Rotate(Self {
                current: next,
                parent: Some(self.current),
                rotated_at: now,
                ..self.clone()
            });
        }
        // A grace of 0 disables retries altogether (even within the same second).
        let within_grace = grace_secs > 0 && now <= self.rotated_at.saturating_add(grace_secs);
        if self.parent.as_ref() == Some(presented) && within_grace {
            // A retry of the rotation just made: rotate again from the same parent. The grace
            // window keeps its start, so retries cannot stretch it.
            return Transition::Rotate(Self {
                current: next,
                ..self.clone()
            });
        }
        Transition::RevokeForReuse
    }

    /// The state after revocation.
    #[must_use]
    pub fn revoked(&self) -> Self {
        Self {
            revoked: true,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GRACE: u64 = 10;

    fn h(n: u64) -> KeyHash {
        KeyHash::of(&n.to_le_bytes())
    }

    fn session() -> SessionRecord {
        SessionRecord::new(
            "s".into(),
            "u".into(),
            "o".into(),
            h(0),
            1_000,
            3_600,
            false,
        )
    }

    fn rotate(s: &SessionRecord, presented: u64, next: u64, now: u64) -> SessionRecord {
        match s.refresh(&h(presented), h(next), now, GRACE) {
            Transition::Rotate(n) => n,
            other => panic!("expected rotation, got {other:?}"),
        }
    }

    #[test]
    fn user_agents_are_bounded_and_lose_control_characters() {
        assert_eq!(clean_user_agent(""), None);
        assert_eq!(clean_user_agent(" \t\r\n\u{7f} "), None);
        assert_eq!(
            clean_user_agent("Mozilla/5.0\r\n(X11)\u{0}"),
            Some("Mozilla/5.0(X11)".to_owned())
        );
        let long = "é".repeat(300);
        let kept = clean_user_agent(&long).unwrap();
        assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
        let s = session().with_user_agent(Some("curl/8\u{1b}[0m"));
        assert_eq!(s.user_agent.as_deref(), Some("curl/8[0m"));
        assert_eq!(session().with_user_agent(None).user_agent, None);
    }

    #[test]
    fn last_refreshed_at_is_none_until_the_first_rotation() {
        let s = session();
        assert_eq!(s.last_refreshed_at(), None);
        let s = rotate(&s, 0, 1, 1_005);
        assert_eq!(s.last_refreshed_at(), Some(1_005));
        // A retry within the grace keeps the window's start.
        let s = rotate(&s, 0, 2, 1_007);
        assert_eq!(s.last_refreshed_at(), Some(1_005));
    }

    #[test]
    fn current_token_rotates() {
        let s = rotate(&session(), 0, 1, 1_001);
        assert_eq!(s.current, h(1));
        assert_eq!(s.parent, Some(h(0)));
        assert_eq!(s.rotated_at, 1_001);
    }

    #[test]
    fn parent_within_grace_rotates_again_and_keeps_the_window() {
        let s = rotate(&session(), 0, 1, 1_001);
        let s2 = rotate(&s, 0, 2, 1_011);
        assert_eq!(s2.current, h(2));
        assert_eq!(s2.parent, Some(h(0)));
        assert_eq!(s2.rotated_at, 1_001);
        // Still measured from the first rotation: one second later it is reuse.
        assert_eq!(
            s2.refresh(&h(0), h(3), 1_012, GRACE),
            Transition::RevokeForReuse
        );
    }

    #[test]
    fn parent_after_grace_is_reuse() {
        let s = rotate(&session(), 0, 1, 1_001);
        assert_eq!(
            s.refresh(&h(0), h(2), 1_012, GRACE),
            Transition::RevokeForReuse
        );
    }

    #[test]
    fn zero_grace_means_any_replay_is_reuse_even_in_the_same_second() {
        let s = session().refresh(&h(0), h(1), 1_001, 0);
        let Transition::Rotate(s) = s else {
            panic!("{s:?}")
        };
        assert_eq!(s.refresh(&h(0), h(2), 1_001, 0), Transition::RevokeForReuse);
    }

    #[test]
    fn grandparent_is_reuse_even_within_grace() {
        let s = rotate(&rotate(&session(), 0, 1, 1_001), 1, 2, 1_002);
        assert_eq!(
            s.refresh(&h(0), h(3), 1_003, GRACE),
            Transition::RevokeForReuse
        );
    }

    #[test]
    fn revoked_and_expired_sessions_reject_without_change() {
        let s = session();
        assert_eq!(
            s.revoked().refresh(&h(0), h(1), 1_001, GRACE),
            Transition::Reject(RefreshRejection::Revoked)
        );
        assert_eq!(
            s.refresh(&h(0), h(1), 4_600, GRACE),
            Transition::Reject(RefreshRejection::Expired)
        );
        assert!(s.is_live(4_599));
        assert!(!s.is_live(4_600));
        assert!(!s.revoked().is_live(1_000));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Present the token issued `back` rotations ago (0 = current).
        Present { back: usize, wait: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        (0usize..4, 0u64..30).prop_map(|(back, wait)| Op::Present { back, wait })
    }

    proptest! {
        /// Whatever order tokens are presented in: exactly the current token, or the parent
        /// within the grace window, rotates; anything else revokes; and once revoked, nothing
        /// is ever accepted again.
        #[test]
        fn rotation_invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
            let mut s = session();
            let mut issued: Vec<u64> = vec![0];
            let mut now = 1_000;
            let mut next = 1;
            let mut revoked = false;
            for Op::Present { back, wait } in ops {
                now += wait;
                let idx = issued.len().saturating_sub(1 + back);
                let presented = issued[idx];
                let t = s.refresh(&h(presented), h(next), now, GRACE);
                if revoked {
                    prop_assert_eq!(t, Transition::Reject(RefreshRejection::Revoked));
                    continue;
                }
                if now >= s.expires_at {
                    prop_assert_eq!(t, Transition::Reject(RefreshRejection::Expired));
                    continue;
                }
                let is_current = h(presented) == s.current;
                let is_parent_in_grace = s.parent == Some(h(presented)) && now <= s.rotated_at + GRACE;
                match t {
                    Transition::Rotate(n) => {
                        prop_assert!(is_current || is_parent_in_grace);
                        prop_assert_eq!(n.current, h(next));
                        prop_assert!(n.rotated_at <= now);
                        s = n;
                        issued.push(next);
                        next += 1;
                    }
                    Transition::RevokeForReuse => {
                        prop_assert!(!is_current && !is_parent_in_grace);
                        s = s.revoked();
                        revoked = true;
                    }
                    Transition::Reject(r) => prop_assert!(false, "unexpected rejection {:?}", r),
                }
            }
        }
    }
}
