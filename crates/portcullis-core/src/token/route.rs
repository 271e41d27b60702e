//! Which family a presented JWT belongs to, decided from its header read once, then verified
//! there: a user's access token or an agent's run token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::header::TokenHeader;
use super::verified::VerifiedToken;
use super::verify::HeaderRead;
use super::{AgentTokens, UserTokens};
use crate::error::TokenError;

/// How a JWT was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Bearer`: a user access token or an agent run token.
    Bearer,
    /// The access-token cookie: only ever a user access token.
    Cookie,
}

/// The two token families a service verifies presented JWTs in.
///
/// ```
/// use portcullis_core::{Secret, TokenError, ids::*, token::*};
/// let policy = |audience: &str| TokenPolicy {
///     issuer: "portcullis".into(), audience: audience.into(),
///     leeway_secs: 30, max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
/// };
/// let users = UserTokens::new(
///     KeyRing::new(SigningKey::hs256(&Secret::random(32))),
///     policy("portcullis-api"),
///     UserTokenTtl::default(),
/// );
/// let agents = AgentTokens::new(
///     KeyRing::new(SigningKey::hs256(&Secret::random(32))),
///     policy("portcullis-agents"),
///     3600,
/// );
/// let run = agents.mint(AgentGrant {
///     agent_id: &AgentId::from("agent-1"), company_id: &OrgId::from("acme"),
///     adapter_type: "process", run_id: &RunId::from("run-1"),
/// }).unwrap();
/// let families = TokenFamilies::new(users, agents);
/// let Ok(VerifiedToken::Agent(token)) = families.verify(run.token.expose(), Carrier::Bearer)
/// else { panic!("a run token is the agent family's") };
/// assert_eq!(token.run_id, RunId::from("run-1"));
/// // A cookie carries only user tokens: the agent family is never tried.
/// assert_eq!(
///     families.verify(run.token.expose(), Carrier::Cookie),
///     Err(TokenError::UnknownKid)
/// );
/// ```
#[derive(Clone)]
pub struct TokenFamilies {
    users: UserTokens,
    agents: AgentTokens,
}

impl TokenFamilies {
    /// The user family and the agent family.
    pub fn new(users: UserTokens, agents: AgentTokens) -> Self {
        Self { users, agents }
    }

    /// User token minting and verification.
    pub fn users(&self) -> &UserTokens {
        &self.users
    }

    /// Agent token minting and verification.
    pub fn agents(&self) -> &AgentTokens {
        &self.agents
    }

    /// Verifies a presented JWT in its family. The header is read once: our own minted
    /// header bytes name their family (the user family's first); any other header is parsed
    /// and screened, and its `kid` names the family (the agent family only for a kid the user
    /// ring does not know and the agent ring does); a header without `kid` goes by the
    /// payload's shape (user tokens have a `type` claim, run tokens none). A cookie only ever
    /// carries a user token.
    pub fn verify(&self, token: &str, carrier: Carrier) -> Result<VerifiedToken, TokenError> {
        let (users, agents) = (&self.users.verifier, &self.agents.verifier);
        let bearer = carrier == Carrier::Bearer;
        let segment = token.split('.').next().unwrap_or_default();
        if let Some(minted) = users.minted(segment) {
            return self.user(token, minted);
        }
        if bearer && let Some(minted) = agents.minted(segment) {
            return self.agent(token, minted);
        }
        let (header, alg) = TokenHeader::parse(token, users.policy.max_token_bytes)?;
        let agent = bearer
            && match header.kid.as_deref() {
                Some(kid) => {
                    users.ring.find(Some(kid)).is_none() && agents.ring.find(Some(kid)).is_some()
                }
                None => !payload_has_type_claim(token),
            };
        let parsed = HeaderRead::Parsed(&header, alg);
        if agent {
            self.agent(token, parsed)
        } else {
            self.user(token, parsed)
        }
    }

    fn user(&self, token: &str, header: HeaderRead<'_>) -> Result<VerifiedToken, TokenError> {
        self.users
            .verify_access_read(token, header)
            .map(VerifiedToken::User)
    }

    fn agent(&self, token: &str, header: HeaderRead<'_>) -> Result<VerifiedToken, TokenError> {
        self.agents
            .verify_read(token, header)
            .map(VerifiedToken::Agent)
    }
}

impl std::fmt::Debug for TokenFamilies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFamilies")
            .field("users", self.users.key_ring())
            .field("agents", self.agents.key_ring())
            .finish()
    }
}

/// True when the (unverified) payload of `token` has a `type` member: how a token without
/// `kid` is routed to the user family (which has `type`) or the agent family (which has none).
/// A routing hint only; the chosen family then verifies everything.
fn payload_has_type_claim(token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        token_type: Option<serde::de::IgnoredAny>,
    }
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|json| serde_json::from_slice::<Peek>(&json).ok())
        .is_some_and(|peek| peek.token_type.is_some())
}
