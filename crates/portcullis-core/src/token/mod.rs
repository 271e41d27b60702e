//! Tokens: the key ring, and three token kinds with mutually exclusive validation.
//!
//! - **Access** (user): `type: "access"`, tied to a login session by `sid`; header
//!   `typ: "at+jwt"` (RFC 9068).
//! - **Refresh** (user): `type: "refresh"`, rotated on every use; stored only as a hash; its
//!   own audience, `<audience>:refresh`, so that a service verifying access tokens through the
//!   JWKS (same key, `iss` and `aud`) never takes one for an access token.
//! - **Agent run**: no `type`; its own secret, issuer and audience; `company_id` and `run_id`;
//!   `jti` optional, extra claims ignored (the shape other orchestrators mint).
//!
//! A token of one kind never passes as another: the kinds differ in `type` and `aud`, and the
//! agent family has its own keys and audience. A JWT presented to a service is verified in the
//! family its header names ([`TokenFamilies::verify`]); every verification hands back the
//! kind's [verified](AccessToken) claims, typed, never the wire's.
//!
//! Keys: [`JwtAlgorithm`] (`algorithm`), the crypto backend (`provider`), the pre-keyed
//! HMAC (`hmac`), key material by algorithm (`material`), key ids (`kid`), private PEM files
//! (`private_pem`), [`SigningKey`] and [`VerifyingKey`] (`key`), the [`KeyRing`] (`keyring`)
//! and its JWKS (`jwks`).

mod algorithm;
pub(crate) mod claims;
mod header;
mod hmac;
mod jwks;
mod key;
mod keyring;
mod kid;
mod material;
mod private_pem;
mod provider;
mod route;
mod verified;
mod verify;

use std::sync::Arc;

pub use algorithm::JwtAlgorithm;
pub use claims::REFRESH_AUDIENCE_SUFFIX;
pub use header::{ExplicitTyp, TokenHeader};
pub use key::{KeyError, SigningKey, VerifyingKey};
pub use keyring::KeyRing;
pub use route::{Carrier, TokenFamilies};
pub use verified::{AccessToken, AgentToken, RefreshToken, VerifiedToken};
pub use verify::{DEFAULT_MAX_TOKEN_BYTES, MintError, TokenPolicy};

use crate::clock::{SharedClock, SystemClock, UnixTime};
use crate::error::TokenError;
use crate::ids::{AgentId, OrgId, RunId, SessionId, TokenId, UserId};
use crate::secret::SecretString;
use claims::{AccessClaims, AgentClaims, Audience, NumericDate, RefreshClaims, Registered};
use verify::{HeaderRead, Verifier};

/// A token just minted, with what the caller needs to hand it out and to revoke it.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// The JWT. `Debug` prints `***`.
    pub token: SecretString,
    /// Its `jti`.
    pub jti: TokenId,
    /// Its `exp`.
    pub expires_at: UnixTime,
    /// Seconds from now to `exp`.
    pub expires_in: u64,
}

/// Lifetimes of user tokens, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserTokenTtl {
    /// Access token: 15 minutes by default.
    pub access_secs: u64,
    /// Refresh token: 7 days by default.
    pub refresh_secs: u64,
    /// Refresh token with remember-me: 30 days by default.
    pub remember_me_secs: u64,
}

impl Default for UserTokenTtl {
    fn default() -> Self {
        Self {
            access_secs: 15 * 60,
            refresh_secs: 7 * 24 * 3600,
            remember_me_secs: 30 * 24 * 3600,
        }
    }
}

/// What an access token says about its user.
#[derive(Debug, Clone, Copy)]
pub struct AccessGrant<'a> {
    /// The user.
    pub user_id: &'a UserId,
    /// Their email.
    pub email: &'a str,
    /// Their role.
    pub role: &'a str,
    /// Their organisation.
    pub org_id: &'a OrgId,
    /// The login session.
    pub session_id: &'a SessionId,
}

/// Mints and verifies user access and refresh tokens.
///
/// ```
/// use portcullis_core::{Secret, token::*, ids::*};
/// let ring = KeyRing::new(SigningKey::hs256(&Secret::random(32)));
/// let tokens = UserTokens::new(ring, TokenPolicy {
///     issuer: "portcullis".into(), audience: "portcullis-api".into(),
///     leeway_secs: 30, max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
/// }, UserTokenTtl::default());
/// let (user, org, sid) = (UserId::from("u1"), OrgId::from("acme"), SessionId::random());
/// let minted = tokens.mint_access(AccessGrant {
///     user_id: &user, email: "a@example.com", role: "user", org_id: &org, session_id: &sid,
/// }).unwrap();
/// let access = tokens.verify_access(minted.token.expose()).unwrap();
/// assert_eq!((access.user_id, access.session_id), (user.clone(), sid.clone()));
/// // A refresh token is not an access token.
/// let refresh = tokens.mint_refresh(&user, &sid, false).unwrap();
/// assert_eq!(tokens.verify_access(refresh.token.expose()), Err(TokenError::WrongType));
/// # use portcullis_core::TokenError;
/// ```
#[derive(Clone)]
pub struct UserTokens {
    verifier: Arc<Verifier>,
    ttl: UserTokenTtl,
    clock: SharedClock,
}

impl UserTokens {
    /// User tokens signed by `ring`'s active key, on the system clock.
    pub fn new(ring: KeyRing, policy: TokenPolicy, ttl: UserTokenTtl) -> Self {
        Self {
            verifier: Arc::new(Verifier::new(ring, policy)),
            ttl,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.verifier.ring
    }

    /// The policy.
    pub fn policy(&self) -> &TokenPolicy {
        &self.verifier.policy
    }

    /// The lifetimes.
    pub fn ttl(&self) -> UserTokenTtl {
        self.ttl
    }

    /// A new access token.
    pub fn mint_access(&self, grant: AccessGrant<'_>) -> Result<MintedToken, MintError> {
        let now = self.clock.now();
        let jti = TokenId::random();
        let exp = now + self.ttl.access_secs;
        let claims = AccessClaims {
            sub: Some(grant.user_id.to_string()),
            email: Some(grant.email.to_owned()),
            role: Some(grant.role.to_owned()),
            org_id: Some(grant.org_id.to_string()),
            token_type: Some("access".into()),
            sid: Some(grant.session_id.to_string()),
            registered: registered(&self.verifier.policy, "", now, exp, &jti),
        };
        finish(&self.verifier, &claims, ExplicitTyp::Access, jti, now, exp)
    }

    /// A new refresh token; remember-me gets the longer lifetime.
    pub fn mint_refresh(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        remember_me: bool,
    ) -> Result<MintedToken, MintError> {
        self.mint_refresh_with(user_id, session_id, remember_me, None)
    }

    /// A refresh token issued by rotating the one whose hash is `parent` (it carries that
    /// hash as `prt`, see [`RefreshToken::parent`]).
    pub fn mint_rotated_refresh(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        remember_me: bool,
        parent: &crate::api_key::KeyHash,
    ) -> Result<MintedToken, MintError> {
        self.mint_refresh_with(user_id, session_id, remember_me, Some(parent.to_hex()))
    }

    fn mint_refresh_with(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        remember_me: bool,
        prt: Option<String>,
    ) -> Result<MintedToken, MintError> {
        let now = self.clock.now();
        let jti = TokenId::random();
        let exp = now + self.refresh_lifetime(remember_me);
        let claims = RefreshClaims {
            sub: Some(user_id.to_string()),
            token_type: Some("refresh".into()),
            sid: Some(session_id.to_string()),
            rmb: remember_me,
            prt,
            registered: registered(
                &self.verifier.policy,
                REFRESH_AUDIENCE_SUFFIX,
                now,
                exp,
                &jti,
            ),
        };
        finish(&self.verifier, &claims, ExplicitTyp::Generic, jti, now, exp)
    }

    /// The refresh lifetime for a session.
    pub fn refresh_lifetime(&self, remember_me: bool) -> u64 {
        if remember_me {
            self.ttl.remember_me_secs
        } else {
            self.ttl.refresh_secs
        }
    }

    /// Verifies an access token. Session liveness and the denylist are the caller's next step.
    pub fn verify_access(&self, token: &str) -> Result<AccessToken, TokenError> {
        self.verify_access_read(token, HeaderRead::Unread)
    }

    /// As [`verify_access`](Self::verify_access), with the header as the router read it.
    fn verify_access_read(
        &self,
        token: &str,
        header: HeaderRead<'_>,
    ) -> Result<AccessToken, TokenError> {
        let now = self.clock.now();
        self.verifier
            .verify_read::<AccessClaims>(token, header, now)
    }

    /// Verifies a refresh token (its `aud` must be the user audience plus `:refresh`).
    /// Rotation rules are the session store's next step.
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshToken, TokenError> {
        self.verifier
            .verify::<RefreshClaims>(token, self.clock.now())
    }
}

/// What an agent run token says.
#[derive(Debug, Clone, Copy)]
pub struct AgentGrant<'a> {
    /// The agent.
    pub agent_id: &'a AgentId,
    /// Its company.
    pub company_id: &'a OrgId,
    /// The adapter running it.
    pub adapter_type: &'a str,
    /// The run.
    pub run_id: &'a RunId,
}

/// Mints and verifies agent run tokens (48 h by default), with their own keys and audience.
#[derive(Clone)]
pub struct AgentTokens {
    verifier: Arc<Verifier>,
    ttl_secs: u64,
    clock: SharedClock,
}

impl AgentTokens {
    /// Agent tokens signed by `ring`'s active key, living `ttl_secs`.
    pub fn new(ring: KeyRing, policy: TokenPolicy, ttl_secs: u64) -> Self {
        Self {
            verifier: Arc::new(Verifier::new(ring, policy)),
            ttl_secs,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.verifier.ring
    }

    /// The policy.
    pub fn policy(&self) -> &TokenPolicy {
        &self.verifier.policy
    }

    /// A new run token.
    pub fn mint(&self, grant: AgentGrant<'_>) -> Result<MintedToken, MintError> {
        let now = self.clock.now();
        let jti = TokenId::random();
        let exp = now + self.ttl_secs;
        let claims = AgentClaims {
            sub: Some(grant.agent_id.to_string()),
            company_id: Some(grant.company_id.to_string()),
            adapter_type: Some(grant.adapter_type.to_owned()),
            run_id: Some(grant.run_id.to_string()),
            token_type: None,
            registered: registered(&self.verifier.policy, "", now, exp, &jti),
        };
        finish(&self.verifier, &claims, ExplicitTyp::Generic, jti, now, exp)
    }

    /// Verifies a run token. Agent liveness and company are the caller's next step.
    pub fn verify(&self, token: &str) -> Result<AgentToken, TokenError> {
        self.verify_read(token, HeaderRead::Unread)
    }

    /// As [`verify`](Self::verify), with the header as the router read it.
    fn verify_read(&self, token: &str, header: HeaderRead<'_>) -> Result<AgentToken, TokenError> {
        let now = self.clock.now();
        self.verifier.verify_read::<AgentClaims>(token, header, now)
    }
}

fn registered(
    policy: &TokenPolicy,
    audience_suffix: &str,
    now: UnixTime,
    exp: UnixTime,
    jti: &TokenId,
) -> Registered {
    Registered {
        iss: Some(policy.issuer.clone()),
        aud: Some(Audience::One(format!(
            "{}{audience_suffix}",
            policy.audience
        ))),
        exp: Some(NumericDate(exp)),
        nbf: None,
        iat: Some(NumericDate(now)),
        jti: Some(jti.to_string()),
    }
}

fn finish<T: serde::Serialize>(
    verifier: &Verifier,
    claims: &T,
    typ: ExplicitTyp,
    jti: TokenId,
    now: UnixTime,
    exp: UnixTime,
) -> Result<MintedToken, MintError> {
    Ok(MintedToken {
        token: SecretString::new(verifier.sign(claims, typ)?),
        jti,
        expires_at: exp,
        expires_in: exp - now,
    })
}
#[cfg(test)]
mod tests;
