//! The claims of each token kind on the wire, as minted and as parsed. Private to `token`:
//! callers see the [verified](super::verified) kinds.
//!
//! Every field a token must carry is an `Option` here so that a missing one is reported as
//! [`TokenError::MissingClaim`] with its name, not as a generic parse failure; turning a
//! wire struct into its verified kind is where each is required, once.

use serde::{Deserialize, Deserializer, Serialize};

use super::header::ExplicitTyp;
use super::verified::{AccessToken, AgentToken, RefreshToken};
use crate::api_key::KeyHash;
use crate::clock::UnixTime;
use crate::error::TokenError;
use crate::ids::TokenId;

/// A JWT `NumericDate`: seconds since the epoch. Accepts integers and, as RFC 7519 allows,
/// non-negative finite fractions (truncated); anything else is a malformed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub(crate) struct NumericDate(pub(crate) UnixTime);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            Int(u64),
            Float(f64),
        }
        match Num::deserialize(d)? {
            Num::Int(n) => Ok(Self(n)),
            Num::Float(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Self(f as u64)),
            Num::Float(_) => Err(serde::de::Error::custom("NumericDate out of range")),
        }
    }
}

/// `aud`: one string or an array of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    /// `"aud": "x"`
    One(String),
    /// `"aud": ["x", "y"]`
    Many(Vec<String>),
}

impl Audience {
    /// True when `aud` names `base` followed by `suffix` (without building that string).
    pub(crate) fn contains_suffixed(&self, base: &str, suffix: &str) -> bool {
        let is = |a: &str| a.strip_suffix(suffix) == Some(base);
        match self {
            Self::One(a) => is(a),
            Self::Many(v) => v.iter().any(|a| is(a)),
        }
    }
}

/// What a refresh token's `aud` adds to the user audience: `portcullis-api:refresh`.
pub const REFRESH_AUDIENCE_SUFFIX: &str = ":refresh";

/// The registered claims every kind shares and the verifier checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Registered {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Audience>,
    /// Expiry (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<NumericDate>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<NumericDate>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<NumericDate>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jti: Option<String>,
}

/// The claims of a kind, as the verifier needs to see them.
pub(crate) trait KindClaims: serde::de::DeserializeOwned {
    /// What a token of this kind is once verified: its required claims present and typed.
    type Verified;
    /// The header `typ` this kind is minted with; a header naming another kind is refused.
    const TYP: ExplicitTyp = ExplicitTyp::Generic;
    /// Appended to the policy's audience to make this kind's `aud`.
    const AUDIENCE_SUFFIX: &'static str = "";
    /// The suffix of the other user kind, signed by the same keys: a token bearing that
    /// audience is the wrong kind of token (`wrong_token_type`), not a stranger's.
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = None;
    fn registered(&self) -> &Registered;
    /// Checks the kind's own claims (`type` and the required ones) once the signature and
    /// registered claims have passed, and keeps them typed; `expires_at` is the `exp` the
    /// registered checks found.
    fn into_verified(self, expires_at: UnixTime) -> Result<Self::Verified, TokenError>;
}

fn require<T>(v: Option<T>, name: &'static str) -> Result<T, TokenError> {
    v.ok_or(TokenError::MissingClaim(name))
}

fn require_type(actual: Option<&str>, expected: &str) -> Result<(), TokenError> {
    match actual {
        None => Err(TokenError::MissingClaim("type")),
        Some(t) if t == expected => Ok(()),
        Some(_) => Err(TokenError::WrongType),
    }
}

/// Each kind is read through a flat "wire" struct and converted: serde's `flatten` (which the
/// kinds use to share [`Registered`] when minting) buffers every claim into an intermediate
/// map when reading, several times the cost of a plain struct on the verification path.
macro_rules! wire {
    ($wire:ident => $claims:ident { $($field:ident $(as $rename:literal)?: $ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        struct $wire {
            $( $(#[serde(rename = $rename)])? #[serde(default)] $field: $ty, )*
            #[serde(default)]
            iss: Option<String>,
            #[serde(default)]
            aud: Option<Audience>,
            #[serde(default)]
            exp: Option<NumericDate>,
            #[serde(default)]
            nbf: Option<NumericDate>,
            #[serde(default)]
            iat: Option<NumericDate>,
            #[serde(default)]
            jti: Option<String>,
        }

        impl From<$wire> for $claims {
            fn from(w: $wire) -> Self {
                Self {
                    $($field: w.$field,)*
                    registered: Registered {
                        iss: w.iss,
                        aud: w.aud,
                        exp: w.exp,
                        nbf: w.nbf,
                        iat: w.iat,
                        jti: w.jti,
                    },
                }
            }
        }
    };
}

wire!(AccessWire => AccessClaims {
    sub: Option<String>,
    email: Option<String>,
    role: Option<String>,
    org_id: Option<String>,
    token_type as "type": Option<String>,
    sid: Option<String>,
});

wire!(RefreshWire => RefreshClaims {
    sub: Option<String>,
    token_type as "type": Option<String>,
    sid: Option<String>,
    rmb: bool,
    prt: Option<String>,
});

wire!(AgentWire => AgentClaims {
    sub: Option<String>,
    company_id: Option<String>,
    adapter_type: Option<String>,
    run_id: Option<String>,
    token_type as "type": Option<String>,
});

/// A user's access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AccessWire")]
pub(crate) struct AccessClaims {
    /// The user id.
    pub(crate) sub: Option<String>,
    /// The user's email.
    #[serde(default)]
    pub(crate) email: Option<String>,
    /// The user's role.
    pub(crate) role: Option<String>,
    /// The user's organisation.
    pub(crate) org_id: Option<String>,
    /// Always `"access"`.
    #[serde(rename = "type")]
    pub(crate) token_type: Option<String>,
    /// The login session.
    pub(crate) sid: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub(crate) registered: Registered,
}

impl KindClaims for AccessClaims {
    type Verified = AccessToken;
    const TYP: ExplicitTyp = ExplicitTyp::Access;
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = Some(REFRESH_AUDIENCE_SUFFIX);
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn into_verified(self, expires_at: UnixTime) -> Result<AccessToken, TokenError> {
        require_type(self.token_type.as_deref(), "access")?;
        let sub = require(self.sub, "sub")?;
        let role = require(self.role, "role")?;
        let org_id = require(self.org_id, "org_id")?;
        let sid = require(self.sid, "sid")?;
        let jti = require(self.registered.jti, "jti")?;
        Ok(AccessToken {
            user_id: sub.into(),
            email: self.email,
            role,
            org_id: org_id.into(),
            session_id: sid.into(),
            jti: TokenId::from(jti),
            expires_at,
        })
    }
}

/// A refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RefreshWire")]
pub(crate) struct RefreshClaims {
    /// The user id.
    pub(crate) sub: Option<String>,
    /// Always `"refresh"`.
    #[serde(rename = "type")]
    pub(crate) token_type: Option<String>,
    /// The login session.
    pub(crate) sid: Option<String>,
    /// Remember-me.
    #[serde(default)]
    pub(crate) rmb: bool,
    /// For a token issued by a rotation: the SHA-256 (hex) of the refresh token it replaced.
    /// Lets a sibling issued by a concurrent retry within the grace window (two tabs) be
    /// recognised as a retry rather than as reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prt: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub(crate) registered: Registered,
}

impl KindClaims for RefreshClaims {
    type Verified = RefreshToken;
    /// A refresh token is no access token to a service that checks only `iss` and `aud`.
    const AUDIENCE_SUFFIX: &'static str = REFRESH_AUDIENCE_SUFFIX;
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = Some("");
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn into_verified(self, expires_at: UnixTime) -> Result<RefreshToken, TokenError> {
        require_type(self.token_type.as_deref(), "refresh")?;
        let sub = require(self.sub, "sub")?;
        let sid = require(self.sid, "sid")?;
        let jti = require(self.registered.jti, "jti")?;
        Ok(RefreshToken {
            user_id: sub.into(),
            session_id: sid.into(),
            jti: TokenId::from(jti),
            remember_me: self.rmb,
            // A `prt` that is no hash names no parent: the token is presented as itself.
            parent: self.prt.as_deref().and_then(KeyHash::from_hex),
            expires_at,
        })
    }
}

/// An agent run token, in the shape other agent orchestrators mint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AgentWire")]
pub(crate) struct AgentClaims {
    /// The agent id.
    pub(crate) sub: Option<String>,
    /// The agent's organisation.
    pub(crate) company_id: Option<String>,
    /// The adapter that runs the agent.
    #[serde(default)]
    pub(crate) adapter_type: Option<String>,
    /// The run.
    pub(crate) run_id: Option<String>,
    /// Agent tokens carry no `type`; a token that does is a user token.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_type: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub(crate) registered: Registered,
}

impl KindClaims for AgentClaims {
    type Verified = AgentToken;
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn into_verified(self, expires_at: UnixTime) -> Result<AgentToken, TokenError> {
        if self.token_type.is_some() {
            return Err(TokenError::WrongType);
        }
        let sub = require(self.sub, "sub")?;
        let company_id = require(self.company_id, "company_id")?;
        let run_id = require(self.run_id, "run_id")?;
        Ok(AgentToken {
            agent_id: sub.into(),
            company_id: company_id.into(),
            adapter_type: self.adapter_type,
            run_id: run_id.into(),
            // No `jti`: other orchestrators (Paperclip's `createLocalAgentJwt`) mint none; such
            // a token can only be revoked by terminating its agent.
            jti: self.registered.jti.map(TokenId::from),
            expires_at,
        })
    }
}
