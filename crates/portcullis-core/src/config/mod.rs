//! Configuration: [`AuthConfig::from_env`] reads the variables of the sample server's contract;
//! [`AuthConfig::builder`] sets the same things in code. Both go through one
//! [`AuthConfigBuilder::build`], which generates development secrets (with a warning) and
//! enforces production's refusals.
//!
//! One job per file: `env` reads the `AUTH_*` variables into the builder, `builder` is that one
//! builder, `secrets` is the secret policy (development generation, production refusals) and
//! `previous_keys` is the format of `AUTH_JWT_PREVIOUS_KEYS_FILE`.

mod builder;
mod env;
mod previous_keys;
mod secrets;

pub use builder::AuthConfigBuilder;
pub use secrets::MIN_SECRET_BYTES;

use crate::api_key::ApiKeyPrefix;
use crate::roles::Roles;
use crate::token::{AgentTokens, KeyRing, TokenPolicy, UserTokenTtl, UserTokens};

/// `AUTH_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthEnv {
    /// Generated secrets with a warning; board fallback allowed.
    #[default]
    Development,
    /// Secrets required and at least 32 bytes; no board fallback.
    Production,
}

/// A configuration that cannot be used. Never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("{0} must be set in production")]
    Missing(&'static str),
    /// A secret is too short.
    #[error("{var} must be at least {min} bytes in production")]
    TooShort {
        /// The variable.
        var: &'static str,
        /// The minimum.
        min: usize,
    },
    /// A variable does not parse.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What was expected.
        reason: String,
    },
    /// One secret for user and agent tokens in production: whoever holds the agent secret
    /// (handed to every orchestrator) could sign user tokens.
    #[error(
        "AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET must differ in production: generate one each (portcullis secret generate)"
    )]
    SameSecretForUsersAndAgents,
    /// A key file could not be read or used.
    #[error("{var}: {reason}")]
    Key {
        /// The variable naming the file.
        var: &'static str,
        /// Why.
        reason: String,
    },
}

/// A usable configuration.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_ENV`.
    pub env: AuthEnv,
    /// User token keys.
    pub user_keys: KeyRing,
    /// `iss`, `aud`, leeway, size limit of user tokens.
    pub user_policy: TokenPolicy,
    /// User token lifetimes.
    pub user_ttl: UserTokenTtl,
    /// `AUTH_REFRESH_REUSE_GRACE_SECONDS`.
    pub refresh_reuse_grace_secs: u64,
    /// Agent token keys.
    pub agent_keys: KeyRing,
    /// `iss`, `aud`, leeway, size limit of agent tokens.
    pub agent_policy: TokenPolicy,
    /// `AUTH_AGENT_JWT_TTL_SECONDS`.
    pub agent_ttl_secs: u64,
    /// `AUTH_API_KEY_ENABLED`.
    pub api_keys_enabled: bool,
    /// `AUTH_API_KEY_PREFIX`.
    pub api_key_prefix: ApiKeyPrefix,
    /// `AUTH_COOKIE_SECURE`.
    pub cookie_secure: bool,
    /// Role → permissions.
    pub roles: Roles,
    /// External issuers whose access tokens resolve to actors (`AUTH_OIDC_ISSUERS`).
    pub issuers: Vec<crate::oidc::IssuerConfig>,
}

impl AuthConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use portcullis_core::{AuthConfig, AuthEnv, Secret};
    /// let config = AuthConfig::builder()
    ///     .env(AuthEnv::Production)
    ///     .jwt_secret(Secret::random(32))
    ///     .agent_secret(Secret::random(32))
    ///     .issuer("my-service")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.user_policy.issuer, "my-service");
    /// assert!(config.cookie_secure);
    /// ```
    pub fn builder() -> AuthConfigBuilder {
        AuthConfigBuilder::default()
    }

    /// Mints and verifies user tokens with this configuration.
    pub fn user_tokens(&self) -> UserTokens {
        UserTokens::new(
            self.user_keys.clone(),
            self.user_policy.clone(),
            self.user_ttl,
        )
    }

    /// Mints and verifies agent run tokens with this configuration.
    pub fn agent_tokens(&self) -> AgentTokens {
        AgentTokens::new(
            self.agent_keys.clone(),
            self.agent_policy.clone(),
            self.agent_ttl_secs,
        )
    }
}

/// What the tests of every part of the configuration share.
#[cfg(test)]
mod test_support {
    use std::collections::HashMap;

    use super::{AuthConfig, ConfigError};

    pub(super) const LONG: &str = "a-secret-that-is-at-least-32-bytes-long";
    pub(super) const LONG2: &str = "another-secret-at-least-32-bytes-long!!";

    /// The configuration these variables give.
    pub(super) fn from(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuthConfig::from_lookup(|k| map.get(k).cloned())
    }

    /// Production with two distinct long secrets, plus `extra`.
    pub(super) fn prod(extra: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let mut vars = vec![
            ("AUTH_ENV", "production"),
            ("AUTH_JWT_SECRET_KEY", LONG),
            ("AUTH_AGENT_JWT_SECRET", LONG2),
        ];
        vars.extend_from_slice(extra);
        from(&vars)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{LONG, LONG2, from, prod};
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn debug_output_never_contains_a_secret() {
        let c = prod(&[]).unwrap();
        let dev = from(&[]).unwrap();
        let shown = format!(
            "{c:?} {dev:?} {:?}",
            AuthConfig::builder().jwt_secret(Secret::from(LONG))
        );
        assert!(!shown.contains(LONG) && !shown.contains(LONG2), "{shown}");
    }
}
