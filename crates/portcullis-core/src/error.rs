//! Every way authentication or authorization can fail. Each [`AuthError`] variant is one
//! outcome `code` of the contract and maps to exactly one HTTP status, here and nowhere else.

use crate::permission::{PermissionNames, PermissionSet};

/// Why a JWT was refused. Each reason is distinct so tests and logs can tell them apart;
/// clients only see the [`AuthError`] code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than the configured maximum: refused before any parsing.
    #[error("token is larger than allowed")]
    Oversize,
    /// Not three base64url parts of JSON, or claims of the wrong shape.
    #[error("token is malformed")]
    Malformed,
    /// `alg: none`, in any casing.
    #[error("unsigned tokens (alg none) are refused")]
    AlgNone,
    /// A `crit` header names extensions we do not understand (we understand none).
    #[error("token has critical header extensions we do not understand")]
    UnknownCrit,
    /// An `alg` that is not one of HS256, RS256, ES256, EdDSA.
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The `alg` is not the one the selected key is for (algorithm confusion).
    #[error("token algorithm is not allowed for its key")]
    AlgorithmNotAllowed,
    /// The `kid` names no key in the ring.
    #[error("token key id is unknown")]
    UnknownKid,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("token issuer is wrong")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("token audience is wrong")]
    WrongAudience,
    /// A required claim is absent.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// A valid token of another kind (a refresh token used as an access token, …).
    #[error("token is of the wrong type")]
    WrongType,
    /// The token's subject (an agent) does not exist.
    #[error("token subject is unknown")]
    UnknownSubject,
    /// An agent token whose `company_id` is not the agent's organisation.
    #[error("token company does not match its agent")]
    CompanyMismatch,
}

/// Why a presented API key was refused by parsing alone, before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyFormatError {
    /// Too short or too long to be a key.
    #[error("API key has the wrong length")]
    Length,
    /// Does not start with the configured `<prefix>_`.
    #[error("API key has the wrong prefix")]
    Prefix,
    /// A character outside the key alphabet.
    #[error("API key has characters outside its alphabet")]
    Alphabet,
    /// The checksum does not match: a typo or a forgery.
    #[error("API key checksum does not match")]
    Checksum,
}

/// A store could not answer. The layer fails closed on it (503), never open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bounded in-memory store is full and will not drop state to make room.
    #[error("store is full")]
    CapacityExceeded,
    /// An insert collided with an existing unique value.
    #[error("store conflict: {0}")]
    Conflict(&'static str),
}

/// The outcome of a refused request. Each variant is one contract `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401 `missing_credentials`: the route needs an actor and none was presented.
    #[error("authentication required")]
    MissingCredentials,
    /// 401 `invalid_credentials`: wrong email or password (a login, nothing presented as a
    /// token: the challenge is bare).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// 401 `invalid_credentials` too: an `Authorization` header of a scheme other than
    /// `Bearer` (Basic, Digest, …) — a credential presented, but not one this service accepts,
    /// so the challenge says `error="invalid_token"`. Its text is the login's, so that clients
    /// see one `detail` for one `code`.
    #[error("invalid email or password")]
    UnsupportedScheme,
    /// 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(TokenError),
    /// 401 `token_expired`.
    #[error("token has expired")]
    TokenExpired,
    /// 401 `token_revoked`: logged out, session revoked, or `jti` denied.
    #[error("token has been revoked")]
    TokenRevoked,
    /// 401 `wrong_token_type`.
    #[error("token is of the wrong type")]
    WrongTokenType,
    /// 401 `invalid_api_key`: malformed, unknown or deleted.
    #[error("invalid API key")]
    InvalidApiKey,
    /// 401 `api_key_expired`.
    #[error("API key has expired")]
    ApiKeyExpired,
    /// 401 `api_key_disabled`.
    #[error("API key is disabled")]
    ApiKeyDisabled,
    /// 401 `agent_terminated`.
    #[error("agent has been terminated")]
    AgentTerminated,
    /// 403 `insufficient_permissions`; `missing` is what the route needed and the actor lacks,
    /// `names` how the response names it (`scope="…"` and the `detail`), empty when nothing
    /// named it: the extractors name `missing` with the route's permission types, the routes
    /// with the [`PermissionCatalog`](crate::PermissionCatalog).
    #[error("insufficient permissions")]
    InsufficientPermissions {
        /// The permissions lacking.
        missing: PermissionSet,
        /// Their names for the client, in the order to show them; may be empty.
        names: PermissionNames,
    },
    /// 401 `invalid_credentials` too: several credentials that name different actors.
    /// (Kept apart from `InvalidCredentials` so logs can tell a bad login from a conflict.)
    #[error("the credentials presented name different actors")]
    ConflictingCredentials,
    /// 403 `csrf_failed`: a cookie-authenticated unsafe request without a matching CSRF token.
    #[error("CSRF token missing or wrong")]
    CsrfFailed,
    /// 403 `org_forbidden`: the request names an org the actor does not act in.
    #[error("the actor does not act in that organisation")]
    OrgForbidden,
    /// 403 `wrong_actor_kind`: the route is for another kind of actor (a user-only route
    /// called by an agent or an API key).
    #[error("this route is not for this kind of actor")]
    WrongActorKind,
    /// 429 `rate_limited`.
    #[error("rate limit exceeded")]
    RateLimited(RateLimitInfo),
    /// 429 `usage_exhausted`: the API key's usage credits are spent. Credits never refill, so
    /// there is no `Retry-After`: retrying cannot help.
    #[error("usage credits exhausted")]
    UsageExhausted,
    /// 503 `auth_unavailable`: a store could not be reached; fail closed.
    #[error("authentication temporarily unavailable")]
    Unavailable(StoreError),
}

/// What a 429 tells the client (`Retry-After`, `RateLimit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the window.
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
    /// Seconds to wait before retrying.
    pub retry_after_secs: u64,
}

impl AuthError {
    /// The contract's stable `code`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidCredentials | Self::UnsupportedScheme | Self::ConflictingCredentials => {
                "invalid_credentials"
            }
            Self::InvalidToken(_) => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::WrongTokenType => "wrong_token_type",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ApiKeyExpired => "api_key_expired",
            Self::ApiKeyDisabled => "api_key_disabled",
            Self::AgentTerminated => "agent_terminated",
            Self::InsufficientPermissions { .. } => "insufficient_permissions",
            Self::CsrfFailed => "csrf_failed",
            Self::OrgForbidden => "org_forbidden",
            Self::WrongActorKind => "wrong_actor_kind",
            Self::RateLimited(_) => "rate_limited",
            Self::UsageExhausted => "usage_exhausted",
            Self::Unavailable(_) => "auth_unavailable",
        }
    }

    /// The HTTP status.
    pub const fn status(&self) -> u16 {
        match self {
            Self::InsufficientPermissions { .. }
            | Self::CsrfFailed
            | Self::OrgForbidden
            | Self::WrongActorKind => 403,
            Self::RateLimited(_) | Self::UsageExhausted => 429,
            Self::Unavailable(_) => 503,
            _ => 401,
        }
    }

    /// 403 `insufficient_permissions` lacking `missing`, named by nobody yet (the response
    /// names nothing until a route's types or a catalog name it).
    pub fn insufficient_permissions(missing: PermissionSet) -> Self {
        Self::InsufficientPermissions {
            missing,
            names: PermissionNames::default(),
        }
    }

    /// True for a 401 that refuses a credential the client presented — a token, a key, two
    /// credentials that disagree, an `Authorization` header of another scheme: its challenge
    /// then says `error="invalid_token"` (RFC 6750 §3.1). False for `missing_credentials`
    /// (nothing presented), for a login's `invalid_credentials` (an email and a password are
    /// not a bearer credential) and for every status but 401.
    pub const fn credential_presented(&self) -> bool {
        self.status() == 401 && !matches!(self, Self::MissingCredentials | Self::InvalidCredentials)
    }

    /// A short, fixed title for the problem document.
    pub const fn title(&self) -> &'static str {
        match self.status() {
            401 => "Unauthorized",
            403 => "Forbidden",
            429 => "Too Many Requests",
            _ => "Service Unavailable",
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => Self::TokenExpired,
            TokenError::WrongType => Self::WrongTokenType,
            other => Self::InvalidToken(other),
        }
    }
}

impl From<ApiKeyFormatError> for AuthError {
    fn from(_: ApiKeyFormatError) -> Self {
        Self::InvalidApiKey
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_contract_status() {
        let cases = [
            (AuthError::MissingCredentials, 401, "missing_credentials"),
            (AuthError::InvalidCredentials, 401, "invalid_credentials"),
            (AuthError::UnsupportedScheme, 401, "invalid_credentials"),
            (
                AuthError::ConflictingCredentials,
                401,
                "invalid_credentials",
            ),
            (
                AuthError::InvalidToken(TokenError::BadSignature),
                401,
                "invalid_token",
            ),
            (AuthError::TokenExpired, 401, "token_expired"),
            (AuthError::TokenRevoked, 401, "token_revoked"),
            (AuthError::WrongTokenType, 401, "wrong_token_type"),
            (AuthError::InvalidApiKey, 401, "invalid_api_key"),
            (AuthError::ApiKeyExpired, 401, "api_key_expired"),
            (AuthError::ApiKeyDisabled, 401, "api_key_disabled"),
            (AuthError::AgentTerminated, 401, "agent_terminated"),
            (
                AuthError::InsufficientPermissions {
                    missing: PermissionSet::EMPTY,
                    names: PermissionNames::default(),
                },
                403,
                "insufficient_permissions",
            ),
            (AuthError::CsrfFailed, 403, "csrf_failed"),
            (AuthError::OrgForbidden, 403, "org_forbidden"),
            (AuthError::WrongActorKind, 403, "wrong_actor_kind"),
            (
                AuthError::RateLimited(RateLimitInfo {
                    limit: 1,
                    remaining: 0,
                    reset_secs: 1,
                    retry_after_secs: 1,
                }),
                429,
                "rate_limited",
            ),
            (AuthError::UsageExhausted, 429, "usage_exhausted"),
            (
                AuthError::Unavailable(StoreError::Unavailable("down".into())),
                503,
                "auth_unavailable",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code()), (status, code), "{err:?}");
        }
    }

    #[test]
    fn only_a_401_of_a_presented_credential_says_so() {
        let presented = [
            AuthError::UnsupportedScheme,
            AuthError::ConflictingCredentials,
            AuthError::InvalidToken(TokenError::Malformed),
            AuthError::TokenExpired,
            AuthError::TokenRevoked,
            AuthError::WrongTokenType,
            AuthError::InvalidApiKey,
            AuthError::ApiKeyExpired,
            AuthError::ApiKeyDisabled,
            AuthError::AgentTerminated,
        ];
        for err in presented {
            assert!(err.credential_presented(), "{err:?}");
        }
        let not = [
            AuthError::MissingCredentials,
            AuthError::InvalidCredentials,
            AuthError::CsrfFailed,
            AuthError::OrgForbidden,
            AuthError::InsufficientPermissions {
                missing: PermissionSet::EMPTY,
                names: PermissionNames::default(),
            },
            AuthError::Unavailable(StoreError::CapacityExceeded),
        ];
        for err in not {
            assert!(!err.credential_presented(), "{err:?}");
        }
    }

    #[test]
    fn token_errors_map_to_their_codes() {
        assert_eq!(
            AuthError::from(TokenError::Expired),
            AuthError::TokenExpired
        );
        assert_eq!(
            AuthError::from(TokenError::WrongType),
            AuthError::WrongTokenType
        );
        assert_eq!(AuthError::from(TokenError::AlgNone).code(), "invalid_token");
    }
}
