//! Verifying an external issuer's access token, with the same guarantees as our own: the
//! algorithm from the key, `exp` required, `nbf`/`iat` with leeway, `iss` and `aud` exact,
//! explicit typing honoured; then its claims mapped to an actor.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::config::{IssuerAlgorithm, OrgMapping};
use super::issuer::Issuer;
use crate::actor::ExternalActor;
use crate::clock::UnixTime;
use crate::error::{AuthError, TokenError};
use crate::permission::{PermissionCatalog, PermissionSet};
use crate::roles::Roles;
use crate::token::claims::{Audience, NumericDate};
use crate::token::{ExplicitTyp, JwtAlgorithm, TokenHeader};

/// What the role table and the catalog are, for mapping claims to permissions.
pub(crate) struct Grants<'a> {
    pub(crate) roles: &'a Roles,
    pub(crate) catalog: &'a PermissionCatalog,
}

/// The payload members every token needs, and the rest for the mapping.
#[derive(serde::Deserialize)]
struct Payload {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl Issuer {
    /// Verifies `token` as an access token of this issuer and maps it to an actor.
    pub(crate) async fn verify(
        &self,
        token: &str,
        max_token_bytes: usize,
        now: UnixTime,
        grants: &Grants<'_>,
    ) -> Result<ExternalActor, AuthError> {
        let config = &self.config;
        let header = TokenHeader::screen(token, max_token_bytes)?;
        let named = IssuerAlgorithm::from_name(&header.alg);
        let Some(alg) = named.filter(|a| config.algorithms.contains(a)) else {
            // HS256 (the provider's public key taken for a secret) is ours, never theirs.
            let known = named.is_some() || JwtAlgorithm::from_name(&header.alg).is_some();
            return Err(if known {
                TokenError::AlgorithmNotAllowed
            } else {
                TokenError::UnsupportedAlgorithm
            }
            .into());
        };
        match ExplicitTyp::of(header.typ.as_deref()) {
            ExplicitTyp::Other => return Err(TokenError::WrongType.into()),
            ExplicitTyp::Generic if config.require_at_jwt => {
                return Err(TokenError::WrongType.into());
            }
            _ => {}
        }
        // `jku`, `x5u`, `jwk` and `x5c` are never read: keys come from the configured JWKS only.
        let key = self.key(header.kid.as_deref(), alg).await?;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let payload = signing_input
            .split_once('.')
            .ok_or(TokenError::Malformed)?
            .1;
        let valid = jsonwebtoken::crypto::verify(
            signature,
            signing_input.as_bytes(),
            &key.decoding,
            alg.to_jwt(),
        );
        if !matches!(valid, Ok(true)) {
            return Err(TokenError::BadSignature.into());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| TokenError::Malformed)?;
        let claims: Payload = serde_json::from_str(text).map_err(|_| TokenError::Malformed)?;
        let expires_at = self.check_registered(&claims, now)?;
        self.actor(&claims.rest, expires_at, grants)
    }

    /// `iss`, `aud` and the times; the `exp` they passed.
    fn check_registered(&self, c: &Payload, now: UnixTime) -> Result<UnixTime, TokenError> {
        let config = &self.config;
        let leeway = config.leeway_secs;
        let exp = c.exp.ok_or(TokenError::MissingClaim("exp"))?.0;
        let iss = c.iss.as_deref().ok_or(TokenError::MissingClaim("iss"))?;
        let aud = c.aud.as_ref().ok_or(TokenError::MissingClaim("aud"))?;
        if iss != config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !config
            .audiences
            .iter()
            .any(|a| aud.contains_suffixed(a, ""))
        {
            return Err(TokenError::WrongAudience);
        }
        if exp.saturating_add(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if c.nbf.is_some_and(|nbf| nbf.0 > now.saturating_add(leeway)) {
            return Err(TokenError::NotYetValid);
        }
        if c.iat.is_some_and(|iat| iat.0 > now.saturating_add(leeway)) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(exp)
    }

    /// The actor the claims name: subject, org, permissions from scopes and roles.
    fn actor(
        &self,
        claims: &Map<String, Value>,
        expires_at: UnixTime,
        grants: &Grants<'_>,
    ) -> Result<ExternalActor, AuthError> {
        let config = &self.config;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let subject = text(&config.subject_claim).ok_or(TokenError::MissingClaim("sub"))?;
        let org = match &config.org {
            OrgMapping::Fixed(org) => org.as_str(),
            OrgMapping::Claim(name) => text(name).ok_or(TokenError::MissingClaim("org"))?,
        };
        let mut permissions = PermissionSet::EMPTY;
        if config.scope_permissions {
            let scope = claims.get("scope").or_else(|| claims.get("scp"));
            for name in names(scope) {
                permissions =
                    permissions | grants.catalog.parse(name).unwrap_or(PermissionSet::EMPTY);
            }
        }
        if let Some(path) = &config.roles_claim {
            for role in names(at_path(claims, path)) {
                permissions = permissions | grants.roles.get(role).unwrap_or(PermissionSet::EMPTY);
            }
        }
        Ok(ExternalActor {
            issuer: Arc::from(config.issuer.as_str()),
            subject: Arc::from(subject),
            kind: config.kind,
            org_id: org.into(),
            permissions,
            expires_at,
        })
    }
}

/// The value at a dotted path (`realm_access.roles`), or of the claim named by the whole path
/// when there is one: Auth0's namespaced claims are URLs (`https://example.com/roles`).
fn at_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// Names from a space-separated string, an array of strings, or an object's keys.
fn names(value: Option<&Value>) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        Some(Value::String(s)) => Box::new(s.split_ascii_whitespace()),
        Some(Value::Array(items)) => Box::new(items.iter().filter_map(Value::as_str)),
        // Zitadel's roles claim: an object keyed by role name.
        Some(Value::Object(map)) => Box::new(map.keys().map(String::as_str)),
        _ => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roles_path_is_a_whole_claim_name_or_dotted() {
        let claims = serde_json::json!({
            "https://app.example.com/roles": ["admin"],
            "realm_access": {"roles": ["viewer"]},
        });
        let claims = claims.as_object().unwrap();
        let at = |path| names(at_path(claims, path)).collect::<Vec<_>>();
        assert_eq!(at("https://app.example.com/roles"), ["admin"]);
        assert_eq!(at("realm_access.roles"), ["viewer"]);
        assert!(at("realm_access.groups").is_empty());
    }
}
