//! The claims of each token kind, as minted and as accepted.
//!
//! Every field a token must carry is an `Option` here so that a missing one is reported as
//! [`TokenError::MissingClaim`] with its name, not as a generic parse failure.

use serde::{Deserialize, Deserializer, Serialize};

use super::verify::ExplicitTyp;
use crate::clock::UnixTime;
use crate::error::TokenError;

/// A JWT `NumericDate`: seconds since the epoch. Accepts integers and, as RFC 7519 allows,
/// non-negative finite fractions (truncated); anything else is a malformed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NumericDate(pub UnixTime);

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
pub enum Audience {
    /// `"aud": "x"`
    One(String),
    /// `"aud": ["x", "y"]`
    Many(Vec<String>),
}

impl Audience {
    /// True when `aud` names `expected`.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Self::One(a) => a == expected,
            Self::Many(v) => v.iter().any(|a| a == expected),
        }
    }

    /// True when `aud` names `base` followed by `suffix` (without building that string).
    pub fn contains_suffixed(&self, base: &str, suffix: &str) -> bool {
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
pub struct Registered {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<NumericDate>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The claims of a kind, as the verifier needs to see them.
pub(crate) trait KindClaims: serde::de::DeserializeOwned {
    /// The header `typ` this kind is minted with; a header naming another kind is refused.
    const TYP: ExplicitTyp = ExplicitTyp::Generic;
    /// Appended to the policy's audience to make this kind's `aud`.
    const AUDIENCE_SUFFIX: &'static str = "";
    /// The suffix of the other user kind, signed by the same keys: a token bearing that
    /// audience is the wrong kind of token (`wrong_token_type`), not a stranger's.
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = None;
    fn registered(&self) -> &Registered;
    /// Checks the kind's own claims (`type` and the required ones) once the signature and
    /// registered claims have passed.
    fn check_kind(&self) -> Result<(), TokenError>;
}

fn require<T>(v: &Option<T>, name: &'static str) -> Result<(), TokenError> {
    v.as_ref().map(|_| ()).ok_or(TokenError::MissingClaim(name))
}

fn require_type(actual: &Option<String>, expected: &str) -> Result<(), TokenError> {
    match actual.as_deref() {
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
pub struct AccessClaims {
    /// The user id.
    pub sub: Option<String>,
    /// The user's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// The user's organisation.
    pub org_id: Option<String>,
    /// Always `"access"`.
    #[serde(rename = "type")]
    pub token_type: Option<String>,
    /// The login session.
    pub sid: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub registered: Registered,
}

impl KindClaims for AccessClaims {
    const TYP: ExplicitTyp = ExplicitTyp::Access;
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = Some(REFRESH_AUDIENCE_SUFFIX);
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn check_kind(&self) -> Result<(), TokenError> {
        require_type(&self.token_type, "access")?;
        require(&self.sub, "sub")?;
        require(&self.role, "role")?;
        require(&self.org_id, "org_id")?;
        require(&self.sid, "sid")?;
        require(&self.registered.jti, "jti")
    }
}

/// A refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RefreshWire")]
pub struct RefreshClaims {
    /// The user id.
    pub sub: Option<String>,
    /// Always `"refresh"`.
    #[serde(rename = "type")]
    pub token_type: Option<String>,
    /// The login session.
    pub sid: Option<String>,
    /// Remember-me.
    #[serde(default)]
    pub rmb: bool,
    /// For a token issued by a rotation: the SHA-256 (hex) of the refresh token it replaced.
    /// Lets a sibling issued by a concurrent retry within the grace window (two tabs) be
    /// recognised as a retry rather than as reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prt: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub registered: Registered,
}

impl KindClaims for RefreshClaims {
    /// A refresh token is no access token to a service that checks only `iss` and `aud`.
    const AUDIENCE_SUFFIX: &'static str = REFRESH_AUDIENCE_SUFFIX;
    const SIBLING_AUDIENCE_SUFFIX: Option<&'static str> = Some("");
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn check_kind(&self) -> Result<(), TokenError> {
        require_type(&self.token_type, "refresh")?;
        require(&self.sub, "sub")?;
        require(&self.sid, "sid")?;
        require(&self.registered.jti, "jti")
    }
}

/// An agent run token, in the shape other agent orchestrators mint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AgentWire")]
pub struct AgentClaims {
    /// The agent id.
    pub sub: Option<String>,
    /// The agent's organisation.
    pub company_id: Option<String>,
    /// The adapter that runs the agent.
    #[serde(default)]
    pub adapter_type: Option<String>,
    /// The run.
    pub run_id: Option<String>,
    /// Agent tokens carry no `type`; a token that does is a user token.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`, `jti`.
    #[serde(flatten)]
    pub registered: Registered,
}

impl KindClaims for AgentClaims {
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn check_kind(&self) -> Result<(), TokenError> {
        if self.token_type.is_some() {
            return Err(TokenError::WrongType);
        }
        require(&self.sub, "sub")?;
        require(&self.company_id, "company_id")?;
        // No `jti`: other orchestrators (Paperclip's `createLocalAgentJwt`) mint none; such a
        // token can only be revoked by terminating its agent.
        require(&self.run_id, "run_id")
    }
}
