//! Refresh-token rotation with reuse detection.

use super::Authenticator;
use crate::api_key::KeyHash;
use crate::cache::Invalidation;
use crate::error::StoreError;
use crate::error::{AuthError, TokenError};
use crate::session::RefreshRejection;
use crate::store::RefreshResult;

/// A refresh token rotated by [`Authenticator::rotate_refresh`].
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The session as it now is.
    pub session: crate::session::SessionRecord,
    /// The new refresh token (hand it out; only its hash is kept).
    pub refresh: crate::token::MintedToken,
}

/// Why [`Authenticator::rotate_refresh_reporting_reuse`] refused.
#[derive(Debug)]
pub struct RefreshRefusal {
    /// The refusal, as [`Authenticator::rotate_refresh`] answers it.
    pub error: AuthError,
    /// The user and session revoked because a spent token came back, if that was why.
    pub reused: Option<(crate::ids::UserId, crate::ids::SessionId)>,
}

impl From<AuthError> for RefreshRefusal {
    fn from(error: AuthError) -> Self {
        Self {
            error,
            reused: None,
        }
    }
}

impl From<TokenError> for RefreshRefusal {
    fn from(e: TokenError) -> Self {
        AuthError::from(e).into()
    }
}

impl From<StoreError> for RefreshRefusal {
    fn from(e: StoreError) -> Self {
        AuthError::from(e).into()
    }
}

impl Authenticator {
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
        self.rotate_refresh_reporting_reuse(token)
            .await
            .map_err(|r| r.error)
    }

    /// [`rotate_refresh`](Self::rotate_refresh), saying with a refusal whose session was
    /// revoked for a detected reuse, for the audit log.
    pub async fn rotate_refresh_reporting_reuse(
        &self,
        token: &str,
    ) -> Result<Rotation, RefreshRefusal> {
        let tokens = self.user_tokens();
        let verified = tokens.verify_refresh(token)?;
        let (user, sid) = (verified.user_id, verified.session_id);
        let sessions = &self.0.stores.sessions;
        let mut presented = KeyHash::of(token.as_bytes());
        if let Some(parent) = verified.parent
            && let Some(session) = sessions.get(&sid).await?
            && session.current != presented
            && session.parent == Some(parent)
        {
            presented = parent;
        }
        let refresh = tokens
            .mint_rotated_refresh(&user, &sid, verified.remember_me, &presented)
            .map_err(|e| AuthError::Unavailable(StoreError::Unavailable(e.to_string())))?;
        let next = KeyHash::of(refresh.token.expose().as_bytes());
        let (now, grace) = (self.0.clock.now(), self.0.config.refresh_reuse_grace_secs);
        match sessions.refresh(&sid, &presented, next, now, grace).await? {
            RefreshResult::Rotated(session) if session.user_id == user => {
                Ok(Rotation { session, refresh })
            }
            RefreshResult::Rotated(_) | RefreshResult::NotFound => {
                Err(AuthError::InvalidToken(TokenError::UnknownSubject).into())
            }
            RefreshResult::ReuseDetected => {
                tracing::warn!(session = %sid, "refresh token reuse: session revoked");
                crate::metrics::refresh_reuse_detected();
                // Not confirmed on every instance: fail (503) rather than answer as if it held.
                self.invalidate_everywhere(Invalidation::Session(sid.clone()))
                    .await?;
                Err(RefreshRefusal {
                    error: AuthError::TokenRevoked,
                    reused: Some((user, sid)),
                })
            }
            RefreshResult::Rejected(RefreshRejection::Revoked) => {
                Err(AuthError::TokenRevoked.into())
            }
            RefreshResult::Rejected(RefreshRejection::Expired) => {
                Err(AuthError::TokenExpired.into())
            }
        }
    }
}
