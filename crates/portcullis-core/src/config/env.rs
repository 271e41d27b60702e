//! Reading the `AUTH_*` variables into the one [`AuthConfigBuilder`].

use std::path::PathBuf;

use super::{AuthConfig, AuthConfigBuilder, AuthEnv, ConfigError};
use crate::api_key::ApiKeyPrefix;
use crate::oidc::IssuerConfig;
use crate::secret::Secret;
use crate::token::JwtAlgorithm;

impl AuthConfig {
    /// Reads the process environment: the `AUTH_*` variables.
    ///
    /// ```
    /// // With AUTH_ENV unset (development), missing secrets are generated, with a warning.
    /// let config = portcullis_core::AuthConfig::from_env()?;
    /// assert!(config.roles.contains("admin"));
    /// # Ok::<(), portcullis_core::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, a file, a test's map).
    ///
    /// ```
    /// use portcullis_core::AuthConfig;
    /// let config = AuthConfig::from_lookup(|name| match name {
    ///     "AUTH_JWT_ISSUER" => Some("my-app".to_owned()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(config.user_policy.issuer, "my-app");
    /// # Ok::<(), portcullis_core::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        builder_from(lookup)?.build()
    }
}

/// `AUTH_ENV`'s value.
pub(super) fn auth_env(v: &str) -> Result<AuthEnv, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "development" | "dev" => Ok(AuthEnv::Development),
        "production" | "prod" => Ok(AuthEnv::Production),
        _ => Err(invalid("AUTH_ENV", "expected development or production")),
    }
}

/// The builder the variables describe; empty or blank variables count as unset.
fn builder_from(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthConfigBuilder, ConfigError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut b = AuthConfig::builder();
    if let Some(v) = get("AUTH_ENV") {
        b = b.env(auth_env(&v)?);
    }
    if let Some(v) = get("AUTH_JWT_ALGORITHM") {
        b = b.algorithm(JwtAlgorithm::from_name(v.trim()).ok_or_else(|| {
            invalid(
                "AUTH_JWT_ALGORITHM",
                "expected HS256, RS256, ES256 or EdDSA",
            )
        })?);
    }
    if let Some(v) = get("AUTH_JWT_SECRET_KEY") {
        b = b.jwt_secret(Secret::from(v));
    }
    if let Some(path) = get("AUTH_JWT_PRIVATE_KEY_FILE") {
        b = b.private_key_file(PathBuf::from(path));
    }
    if let Some(path) = get("AUTH_JWT_PREVIOUS_KEYS_FILE") {
        b = b.previous_keys_file(PathBuf::from(path));
    }
    if let Some(v) = get("AUTH_JWT_ISSUER") {
        b = b.issuer(&v);
    }
    if let Some(v) = get("AUTH_JWT_AUDIENCE") {
        b = b.audience(&v);
    }
    let mut ttl = b.ttl();
    if let Some(v) = get("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES") {
        ttl.access_secs = positive("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES", &v)? * 60;
    }
    if let Some(v) = get("AUTH_REFRESH_TOKEN_EXPIRE_DAYS") {
        ttl.refresh_secs = positive("AUTH_REFRESH_TOKEN_EXPIRE_DAYS", &v)? * 86_400;
    }
    if let Some(v) = get("AUTH_REFRESH_TOKEN_REMEMBER_ME_DAYS") {
        ttl.remember_me_secs = positive("AUTH_REFRESH_TOKEN_REMEMBER_ME_DAYS", &v)? * 86_400;
    }
    b = b.user_ttl(ttl);
    if let Some(v) = get("AUTH_REFRESH_REUSE_GRACE_SECONDS") {
        b = b.refresh_reuse_grace_secs(number("AUTH_REFRESH_REUSE_GRACE_SECONDS", &v)?);
    }
    if let Some(v) = get("AUTH_JWT_LEEWAY_SECONDS") {
        b = b.leeway_secs(number("AUTH_JWT_LEEWAY_SECONDS", &v)?);
    }
    if let Some(v) = get("AUTH_AGENT_JWT_SECRET") {
        b = b.agent_secret(Secret::from(v));
    }
    if let Some(v) = get("AUTH_AGENT_JWT_TTL_SECONDS") {
        b = b.agent_ttl_secs(positive("AUTH_AGENT_JWT_TTL_SECONDS", &v)?);
    }
    if let Some(v) = get("AUTH_AGENT_JWT_ISSUER") {
        b = b.agent_issuer(&v);
    }
    if let Some(v) = get("AUTH_AGENT_JWT_AUDIENCE") {
        b = b.agent_audience(&v);
    }
    if let Some(v) = get("AUTH_API_KEY_ENABLED") {
        b = b.api_keys_enabled(boolean("AUTH_API_KEY_ENABLED", &v)?);
    }
    if let Some(v) = get("AUTH_API_KEY_PREFIX") {
        b = b.api_key_prefix(
            ApiKeyPrefix::new(v.trim())
                .map_err(|e| invalid("AUTH_API_KEY_PREFIX", &e.to_string()))?,
        );
    }
    if let Some(v) = get("AUTH_COOKIE_SECURE") {
        b = b.cookie_secure(boolean("AUTH_COOKIE_SECURE", &v)?);
    }
    let issuers = match (get("AUTH_OIDC_ISSUERS"), get("AUTH_OIDC_ISSUERS_FILE")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "AUTH_OIDC_ISSUERS",
                "set AUTH_OIDC_ISSUERS or AUTH_OIDC_ISSUERS_FILE, not both",
            ));
        }
        (Some(json), None) => IssuerConfig::parse_list(&json)?,
        (None, Some(path)) => {
            let json = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "AUTH_OIDC_ISSUERS_FILE",
                    &format!("cannot read {path}: {e}"),
                )
            })?;
            IssuerConfig::parse_list(&json)?
        }
        (None, None) => Vec::new(),
    };
    for issuer in issuers {
        b = b.external_issuer(issuer);
    }
    Ok(b)
}

fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

fn number(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(var, "expected a whole number"))
}

fn positive(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    match number(var, v)? {
        0 => Err(invalid(var, "expected a whole number above 0")),
        n => Ok(n),
    }
}

fn boolean(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::from;
    use super::*;
    use crate::token::UserTokenTtl;

    #[test]
    fn defaults_match_the_contract() {
        let c = from(&[]).unwrap();
        assert_eq!(c.env, AuthEnv::Development);
        assert_eq!(c.user_policy.issuer, "portcullis");
        assert_eq!(c.user_policy.audience, "portcullis-api");
        assert_eq!(c.agent_policy.audience, "portcullis-agents");
        assert_eq!(c.user_policy.leeway_secs, 30);
        assert_eq!(c.user_ttl, UserTokenTtl::default());
        assert_eq!(c.user_ttl.access_secs, 900);
        assert_eq!(c.refresh_reuse_grace_secs, 10);
        assert_eq!(c.agent_ttl_secs, 172_800);
        assert!(c.api_keys_enabled && !c.cookie_secure);
        assert_eq!(c.api_key_prefix.as_str(), "ck");
        assert_eq!(c.user_keys.active().algorithm(), JwtAlgorithm::Hs256);
    }

    #[test]
    fn every_variable_is_read() {
        let c = from(&[
            ("AUTH_JWT_ISSUER", "iss-x"),
            ("AUTH_JWT_AUDIENCE", "aud-x"),
            ("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "5"),
            ("AUTH_REFRESH_TOKEN_EXPIRE_DAYS", "2"),
            ("AUTH_REFRESH_TOKEN_REMEMBER_ME_DAYS", "9"),
            ("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0"),
            ("AUTH_JWT_LEEWAY_SECONDS", "5"),
            ("AUTH_AGENT_JWT_TTL_SECONDS", "60"),
            ("AUTH_AGENT_JWT_ISSUER", "agent-iss"),
            ("AUTH_AGENT_JWT_AUDIENCE", "agent-aud"),
            ("AUTH_API_KEY_ENABLED", "false"),
            ("AUTH_API_KEY_PREFIX", "acme"),
            ("AUTH_COOKIE_SECURE", "true"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.user_policy.issuer.as_str(),
                c.user_policy.audience.as_str()
            ),
            ("iss-x", "aud-x")
        );
        assert_eq!(c.user_ttl.access_secs, 300);
        assert_eq!(c.user_ttl.refresh_secs, 2 * 86_400);
        assert_eq!(c.user_ttl.remember_me_secs, 9 * 86_400);
        assert_eq!(c.refresh_reuse_grace_secs, 0);
        assert_eq!(c.user_policy.leeway_secs, 5);
        assert_eq!(c.agent_ttl_secs, 60);
        assert_eq!(c.agent_policy.issuer, "agent-iss");
        assert_eq!(c.agent_policy.audience, "agent-aud");
        assert!(!c.api_keys_enabled && c.cookie_secure);
        assert_eq!(c.api_key_prefix.as_str(), "acme");
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let c = from(&[("AUTH_ENV", "  "), ("AUTH_JWT_ISSUER", "")]).unwrap();
        assert_eq!(c.env, AuthEnv::Development);
        assert_eq!(c.user_policy.issuer, "portcullis");
    }

    #[test]
    fn bad_values_are_clear_errors_without_the_value() {
        for (var, value) in [
            ("AUTH_ENV", "staging"),
            ("AUTH_JWT_ALGORITHM", "HS512"),
            ("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "00"),
            ("AUTH_JWT_LEEWAY_SECONDS", "-1"),
            ("AUTH_API_KEY_ENABLED", "maybe"),
            ("AUTH_API_KEY_PREFIX", "Bad_Prefix"),
        ] {
            match from(&[(var, value)]) {
                Err(ConfigError::Invalid { var: v, reason }) => {
                    assert_eq!(v, var);
                    assert!(!reason.contains(value), "{reason}");
                }
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }
}
