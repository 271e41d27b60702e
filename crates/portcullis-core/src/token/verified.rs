//! What a token is once verified: its signature, issuer, audience, times and kind checked,
//! and every claim its kind requires present, typed. Only verification makes these.

use crate::api_key::KeyHash;
use crate::clock::UnixTime;
use crate::ids::{AgentId, OrgId, RunId, SessionId, TokenId, UserId};

/// A verified user access token. Whether its session is live and its `jti` not denied is
/// the caller's next step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessToken {
    /// `sub`: the user.
    pub user_id: UserId,
    /// `email`, which tokens minted by other tools may leave out.
    pub email: Option<String>,
    /// `role`: the name of the user's role.
    pub role: String,
    /// `org_id`: the user's organisation.
    pub org_id: OrgId,
    /// `sid`: the login session.
    pub session_id: SessionId,
    /// `jti`: what the denylist names.
    pub jti: TokenId,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// A verified refresh token. Rotation rules are the session store's next step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshToken {
    /// `sub`: the user.
    pub user_id: UserId,
    /// `sid`: the login session.
    pub session_id: SessionId,
    /// `jti`.
    pub jti: TokenId,
    /// `rmb`: the session was started with remember-me.
    pub remember_me: bool,
    /// `prt`: for a token issued by rotating another, the hash of the token it replaced. Lets
    /// a sibling issued by a concurrent retry within the grace window (two tabs) be
    /// recognised as a retry rather than as reuse.
    pub parent: Option<KeyHash>,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// A verified agent run token. Whether its agent is live and in its company is the caller's
/// next step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentToken {
    /// `sub`: the agent.
    pub agent_id: AgentId,
    /// `company_id`: the agent's organisation.
    pub company_id: OrgId,
    /// `adapter_type`: what runs the agent, when the minter says.
    pub adapter_type: Option<String>,
    /// `run_id`: the run.
    pub run_id: RunId,
    /// `jti`. Optional: other orchestrators mint run tokens without one, which only
    /// terminating their agent revokes.
    pub jti: Option<TokenId>,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// A bearer or cookie JWT, verified in the family its header names
/// (see [`TokenFamilies::verify`](super::TokenFamilies::verify)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedToken {
    /// A user's access token.
    User(AccessToken),
    /// An agent's run token.
    Agent(AgentToken),
}
