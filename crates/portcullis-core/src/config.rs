//! Configuration: [`AuthConfig::from_env`] reads the variables of the sample server's contract;
//! [`AuthConfig::builder`] sets the same things in code. Both go through one
//! [`AuthConfigBuilder::build`], which generates development secrets (with a warning) and
//! enforces production's refusals.

use std::path::PathBuf;

use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::api_key::ApiKeyPrefix;
use crate::roles::Roles;
use crate::secret::Secret;
use crate::token::{
    AgentTokens, DEFAULT_MAX_TOKEN_BYTES, JwtAlgorithm, KeyError, KeyRing, SigningKey, TokenPolicy,
    UserTokenTtl, UserTokens, VerifyingKey,
};

/// Shortest secret accepted in production, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

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
    /// Secrets generated because none was configured (development only), so that a server
    /// can persist them and keep tokens valid across restarts.
    pub generated: GeneratedSecrets,
}

/// Secrets the configuration generated in development.
#[derive(Debug, Clone, Default)]
pub struct GeneratedSecrets {
    /// For `AUTH_JWT_SECRET_KEY`.
    pub user_jwt_secret: Option<Secret>,
    /// For `AUTH_AGENT_JWT_SECRET`.
    pub agent_jwt_secret: Option<Secret>,
}

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
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut b = AuthConfigBuilder::default();
        if let Some(v) = get("AUTH_ENV") {
            b.env = match v.trim().to_ascii_lowercase().as_str() {
                "development" | "dev" => AuthEnv::Development,
                "production" | "prod" => AuthEnv::Production,
                _ => return Err(invalid("AUTH_ENV", "expected development or production")),
            };
        }
        if let Some(v) = get("AUTH_JWT_ALGORITHM") {
            b.algorithm = JwtAlgorithm::from_name(v.trim()).ok_or_else(|| {
                invalid(
                    "AUTH_JWT_ALGORITHM",
                    "expected HS256, RS256, ES256 or EdDSA",
                )
            })?;
        }
        b.user_secret = get("AUTH_JWT_SECRET_KEY").map(Secret::from);
        if let Some(path) = get("AUTH_JWT_PRIVATE_KEY_FILE") {
            b.private_key_file = Some(PathBuf::from(path));
        }
        if let Some(path) = get("AUTH_JWT_PREVIOUS_KEYS_FILE") {
            b.previous_keys_file = Some(PathBuf::from(path));
        }
        if let Some(v) = get("AUTH_JWT_ISSUER") {
            b.user_issuer = v;
        }
        if let Some(v) = get("AUTH_JWT_AUDIENCE") {
            b.user_audience = v;
        }
        if let Some(v) = get("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES") {
            b.ttl.access_secs = positive("AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES", &v)? * 60;
        }
        if let Some(v) = get("AUTH_REFRESH_TOKEN_EXPIRE_DAYS") {
            b.ttl.refresh_secs = positive("AUTH_REFRESH_TOKEN_EXPIRE_DAYS", &v)? * 86_400;
        }
        if let Some(v) = get("AUTH_REFRESH_TOKEN_REMEMBER_ME_DAYS") {
            b.ttl.remember_me_secs = positive("AUTH_REFRESH_TOKEN_REMEMBER_ME_DAYS", &v)? * 86_400;
        }
        if let Some(v) = get("AUTH_REFRESH_REUSE_GRACE_SECONDS") {
            b.refresh_reuse_grace_secs = number("AUTH_REFRESH_REUSE_GRACE_SECONDS", &v)?;
        }
        if let Some(v) = get("AUTH_JWT_LEEWAY_SECONDS") {
            b.leeway_secs = number("AUTH_JWT_LEEWAY_SECONDS", &v)?;
        }
        b.agent_secret = get("AUTH_AGENT_JWT_SECRET").map(Secret::from);
        if let Some(v) = get("AUTH_AGENT_JWT_TTL_SECONDS") {
            b.agent_ttl_secs = positive("AUTH_AGENT_JWT_TTL_SECONDS", &v)?;
        }
        if let Some(v) = get("AUTH_AGENT_JWT_ISSUER") {
            b.agent_issuer = v;
        }
        if let Some(v) = get("AUTH_AGENT_JWT_AUDIENCE") {
            b.agent_audience = v;
        }
        if let Some(v) = get("AUTH_API_KEY_ENABLED") {
            b.api_keys_enabled = boolean("AUTH_API_KEY_ENABLED", &v)?;
        }
        if let Some(v) = get("AUTH_API_KEY_PREFIX") {
            b.api_key_prefix = ApiKeyPrefix::new(v.trim())
                .map_err(|e| invalid("AUTH_API_KEY_PREFIX", &e.to_string()))?;
        }
        if let Some(v) = get("AUTH_COOKIE_SECURE") {
            b.cookie_secure = Some(boolean("AUTH_COOKIE_SECURE", &v)?);
        }
        b.build()
    }

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

/// Sets configuration in code; [`build`](Self::build) applies the same rules as `from_env`.
#[derive(Debug, Clone)]
pub struct AuthConfigBuilder {
    env: AuthEnv,
    algorithm: JwtAlgorithm,
    user_secret: Option<Secret>,
    signing_key: Option<SigningKey>,
    private_key_file: Option<PathBuf>,
    previous_keys: Vec<VerifyingKey>,
    previous_keys_file: Option<PathBuf>,
    user_issuer: String,
    user_audience: String,
    ttl: UserTokenTtl,
    refresh_reuse_grace_secs: u64,
    leeway_secs: u64,
    max_token_bytes: usize,
    agent_secret: Option<Secret>,
    agent_ttl_secs: u64,
    agent_issuer: String,
    agent_audience: String,
    api_keys_enabled: bool,
    api_key_prefix: ApiKeyPrefix,
    cookie_secure: Option<bool>,
    roles: Roles,
}

impl Default for AuthConfigBuilder {
    fn default() -> Self {
        Self {
            env: AuthEnv::Development,
            algorithm: JwtAlgorithm::Hs256,
            user_secret: None,
            signing_key: None,
            private_key_file: None,
            previous_keys: Vec::new(),
            previous_keys_file: None,
            user_issuer: "portcullis".into(),
            user_audience: "portcullis-api".into(),
            ttl: UserTokenTtl::default(),
            refresh_reuse_grace_secs: 10,
            leeway_secs: 30,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            agent_secret: None,
            agent_ttl_secs: 172_800,
            agent_issuer: "portcullis".into(),
            agent_audience: "portcullis-agents".into(),
            api_keys_enabled: true,
            api_key_prefix: ApiKeyPrefix::default(),
            cookie_secure: None,
            roles: Roles::default(),
        }
    }
}

macro_rules! setters {
    ($( $(#[$m:meta])* $name:ident : $ty:ty => $field:ident $(via $conv:path)? ;)+) => {$(
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = setters!(@conv value $(, $conv)?);
            self
        }
    )+};
    (@conv $v:ident) => { $v };
    (@conv $v:ident, $conv:path) => { $conv($v) };
}

fn into_string(s: &str) -> String {
    s.to_owned()
}

impl AuthConfigBuilder {
    setters! {
        /// `AUTH_ENV`.
        env: AuthEnv => env;
        /// HS256 secret for user tokens.
        jwt_secret: Secret => user_secret via Some;
        /// Signing key for user tokens (any algorithm); replaces the secret.
        jwt_signing_key: SigningKey => signing_key via Some;
        /// Required `iss` of user tokens.
        issuer: &str => user_issuer via into_string;
        /// Required `aud` of user tokens.
        audience: &str => user_audience via into_string;
        /// User token lifetimes.
        user_ttl: UserTokenTtl => ttl;
        /// Refresh reuse grace window, seconds.
        refresh_reuse_grace_secs: u64 => refresh_reuse_grace_secs;
        /// Clock skew allowed, seconds.
        leeway_secs: u64 => leeway_secs;
        /// Largest token accepted, bytes.
        max_token_bytes: usize => max_token_bytes;
        /// HS256 secret for agent run tokens.
        agent_secret: Secret => agent_secret via Some;
        /// Agent run token lifetime, seconds.
        agent_ttl_secs: u64 => agent_ttl_secs;
        /// Required `iss` of agent tokens.
        agent_issuer: &str => agent_issuer via into_string;
        /// Required `aud` of agent tokens.
        agent_audience: &str => agent_audience via into_string;
        /// Accept API keys.
        api_keys_enabled: bool => api_keys_enabled;
        /// API key prefix.
        api_key_prefix: ApiKeyPrefix => api_key_prefix;
        /// `Secure` on cookies.
        cookie_secure: bool => cookie_secure via Some;
        /// Role → permissions.
        roles: Roles => roles;
    }

    /// Adds a verify-only user token key (rotation).
    #[must_use]
    pub fn previous_key(mut self, key: VerifyingKey) -> Self {
        self.previous_keys.push(key);
        self
    }

    /// Checks everything and builds. Development without secrets generates them and warns;
    /// production refuses missing or short secrets and one secret for users and agents.
    /// (Board fallback is HTTP policy: `portcullis_tower::Policy` refuses it in production.)
    pub fn build(self) -> Result<AuthConfig, ConfigError> {
        let production = self.env == AuthEnv::Production;
        let mut generated = GeneratedSecrets::default();

        // The user secret, when user tokens are signed with one.
        let mut user_secret = None;
        let active = match (self.signing_key, self.algorithm) {
            (Some(key), _) => key,
            (None, JwtAlgorithm::Hs256) => {
                let secret = resolve_secret(
                    self.user_secret,
                    "AUTH_JWT_SECRET_KEY",
                    production,
                    &mut generated.user_jwt_secret,
                )?;
                let key = SigningKey::hs256(&secret);
                user_secret = Some(secret);
                key
            }
            (None, alg) => {
                let path = self
                    .private_key_file
                    .ok_or(ConfigError::Missing("AUTH_JWT_PRIVATE_KEY_FILE"))?;
                let pem = read_key_file("AUTH_JWT_PRIVATE_KEY_FILE", &path)?;
                SigningKey::from_private_pem(alg, pem.expose())
                    .map_err(|e| key_error("AUTH_JWT_PRIVATE_KEY_FILE", e))?
            }
        };
        let mut user_keys = KeyRing::new(active);
        let mut previous = self.previous_keys;
        if let Some(path) = &self.previous_keys_file {
            previous.extend(load_previous_keys(path)?);
        }
        for key in previous {
            user_keys = user_keys
                .with_previous(key)
                .map_err(|e| key_error("AUTH_JWT_PREVIOUS_KEYS_FILE", e))?;
        }

        let agent_secret = resolve_secret(
            self.agent_secret,
            "AUTH_AGENT_JWT_SECRET",
            production,
            &mut generated.agent_jwt_secret,
        )?;
        if let Some(user_secret) = &user_secret
            && bool::from(user_secret.expose().ct_eq(agent_secret.expose()))
        {
            if production {
                return Err(ConfigError::SameSecretForUsersAndAgents);
            }
            tracing::warn!(
                "AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET are the same; production would refuse it"
            );
        }
        let agent_keys = KeyRing::new(SigningKey::hs256(&agent_secret));

        let policy = |issuer: String, audience: String| TokenPolicy {
            issuer,
            audience,
            leeway_secs: self.leeway_secs,
            max_token_bytes: self.max_token_bytes,
        };
        Ok(AuthConfig {
            env: self.env,
            user_keys,
            user_policy: policy(self.user_issuer, self.user_audience),
            user_ttl: self.ttl,
            refresh_reuse_grace_secs: self.refresh_reuse_grace_secs,
            agent_keys,
            agent_policy: policy(self.agent_issuer, self.agent_audience),
            agent_ttl_secs: self.agent_ttl_secs,
            api_keys_enabled: self.api_keys_enabled,
            api_key_prefix: self.api_key_prefix,
            cookie_secure: self.cookie_secure.unwrap_or(production),
            roles: self.roles,
            generated,
        })
    }
}

fn resolve_secret(
    given: Option<Secret>,
    var: &'static str,
    production: bool,
    generated: &mut Option<Secret>,
) -> Result<Secret, ConfigError> {
    match given {
        Some(s) if s.len() < MIN_SECRET_BYTES => {
            if production {
                return Err(ConfigError::TooShort {
                    var,
                    min: MIN_SECRET_BYTES,
                });
            }
            tracing::warn!(
                variable = var,
                "secret is shorter than 32 bytes; production would refuse it"
            );
            Ok(s)
        }
        Some(s) => Ok(s),
        None if production => Err(ConfigError::Missing(var)),
        None => {
            tracing::warn!(
                variable = var,
                "no secret configured: generated one for development; tokens will not survive a restart unless it is persisted"
            );
            let s = Secret::random(MIN_SECRET_BYTES);
            *generated = Some(s.clone());
            Ok(s)
        }
    }
}

fn read_key_file(var: &'static str, path: &PathBuf) -> Result<Secret, ConfigError> {
    std::fs::read(path)
        .map(Secret::new)
        .map_err(|e| ConfigError::Key {
            var,
            reason: format!("cannot read {}: {e}", path.display()),
        })
}

fn key_error(var: &'static str, e: KeyError) -> ConfigError {
    ConfigError::Key {
        var,
        reason: e.to_string(),
    }
}

/// One entry of `AUTH_JWT_PREVIOUS_KEYS_FILE`, a JSON array:
/// `[{"alg": "HS256", "secret": "…"}, {"alg": "RS256", "public_key_pem": "…", "kid": "…"}]`.
#[derive(Deserialize)]
struct PreviousKeyEntry {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    public_key_pem: Option<String>,
}

fn load_previous_keys(path: &PathBuf) -> Result<Vec<VerifyingKey>, ConfigError> {
    const VAR: &str = "AUTH_JWT_PREVIOUS_KEYS_FILE";
    let raw = read_key_file(VAR, path)?;
    let entries: Vec<PreviousKeyEntry> =
        serde_json::from_slice(raw.expose()).map_err(|e| ConfigError::Key {
            var: VAR,
            // serde_json's message names a position, never the input's content.
            reason: format!("not a JSON array of keys: {e}"),
        })?;
    entries
        .into_iter()
        .map(|entry| {
            let alg = JwtAlgorithm::from_name(&entry.alg).ok_or_else(|| ConfigError::Key {
                var: VAR,
                reason: format!("unknown alg `{}`", entry.alg),
            })?;
            let key = match (alg, entry.secret, entry.public_key_pem) {
                (JwtAlgorithm::Hs256, Some(secret), _) => {
                    Ok(VerifyingKey::hs256(&Secret::from(secret)))
                }
                (JwtAlgorithm::Hs256, None, _) => Err(ConfigError::Key {
                    var: VAR,
                    reason: "an HS256 entry needs `secret`".into(),
                }),
                (alg, _, Some(pem)) => VerifyingKey::from_public_pem(alg, pem.as_bytes())
                    .map_err(|e| key_error(VAR, e)),
                (_, _, None) => Err(ConfigError::Key {
                    var: VAR,
                    reason: "an asymmetric entry needs `public_key_pem`".into(),
                }),
            }?;
            Ok(match entry.kid {
                Some(kid) => key.with_kid(&kid),
                None => key,
            })
        })
        .collect()
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
    use std::collections::HashMap;

    use super::*;

    const LONG: &str = "a-secret-that-is-at-least-32-bytes-long";
    const LONG2: &str = "another-secret-at-least-32-bytes-long!!";

    fn from(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuthConfig::from_lookup(|k| map.get(k).cloned())
    }

    fn prod(extra: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let mut vars = vec![
            ("AUTH_ENV", "production"),
            ("AUTH_JWT_SECRET_KEY", LONG),
            ("AUTH_AGENT_JWT_SECRET", LONG2),
        ];
        vars.extend_from_slice(extra);
        from(&vars)
    }

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
    fn development_without_secrets_generates_them() {
        let c = from(&[]).unwrap();
        let user = c.generated.user_jwt_secret.as_ref().unwrap();
        assert_eq!(user.len(), MIN_SECRET_BYTES);
        assert!(c.generated.agent_jwt_secret.is_some());
        assert_eq!(c.user_keys.active().kid(), SigningKey::hs256(user).kid());
        let configured = from(&[("AUTH_JWT_SECRET_KEY", LONG)]).unwrap();
        assert!(configured.generated.user_jwt_secret.is_none());
    }

    #[test]
    fn production_refuses_missing_secrets() {
        assert_eq!(
            from(&[("AUTH_ENV", "production"), ("AUTH_AGENT_JWT_SECRET", LONG)]).unwrap_err(),
            ConfigError::Missing("AUTH_JWT_SECRET_KEY")
        );
        assert_eq!(
            from(&[("AUTH_ENV", "production"), ("AUTH_JWT_SECRET_KEY", LONG)]).unwrap_err(),
            ConfigError::Missing("AUTH_AGENT_JWT_SECRET")
        );
        assert_eq!(
            prod(&[("AUTH_JWT_ALGORITHM", "RS256")]).unwrap_err(),
            ConfigError::Missing("AUTH_JWT_PRIVATE_KEY_FILE")
        );
    }

    #[test]
    fn production_refuses_short_secrets() {
        let short = "31-bytes-is-one-byte-too-short!";
        assert_eq!(short.len(), 31);
        assert_eq!(
            prod(&[("AUTH_JWT_SECRET_KEY", short)]).unwrap_err(),
            ConfigError::TooShort {
                var: "AUTH_JWT_SECRET_KEY",
                min: 32
            }
        );
        assert_eq!(
            prod(&[("AUTH_AGENT_JWT_SECRET", short)]).unwrap_err(),
            ConfigError::TooShort {
                var: "AUTH_AGENT_JWT_SECRET",
                min: 32
            }
        );
        // Development accepts it, with a warning.
        assert!(from(&[("AUTH_JWT_SECRET_KEY", short)]).is_ok());
    }

    #[test]
    fn production_refuses_one_secret_for_users_and_agents() {
        let err = prod(&[("AUTH_AGENT_JWT_SECRET", LONG)]).unwrap_err();
        assert_eq!(err, ConfigError::SameSecretForUsersAndAgents);
        let shown = err.to_string();
        assert!(shown.contains("AUTH_JWT_SECRET_KEY") && shown.contains("AUTH_AGENT_JWT_SECRET"));
        assert!(!shown.contains(LONG), "{shown}");
        // Development warns but starts.
        assert!(
            from(&[
                ("AUTH_JWT_SECRET_KEY", LONG),
                ("AUTH_AGENT_JWT_SECRET", LONG)
            ])
            .is_ok()
        );
        let builder = AuthConfig::builder()
            .env(AuthEnv::Production)
            .jwt_secret(Secret::from(LONG))
            .agent_secret(Secret::from(LONG));
        assert_eq!(
            builder.build().unwrap_err(),
            ConfigError::SameSecretForUsersAndAgents
        );
    }

    #[test]
    fn production_cookies_are_secure_by_default() {
        let c = prod(&[]).unwrap();
        assert!(c.cookie_secure, "Secure cookies by default in production");
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

    #[test]
    fn asymmetric_key_and_previous_keys_are_loaded_from_files() {
        let dir = std::env::temp_dir().join(format!("portcullis-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("es256.pem");
        std::fs::write(&private, include_bytes!("token/testdata/es256.pem")).unwrap();
        let previous = dir.join("previous.json");
        let rs_pub =
            String::from_utf8(include_bytes!("token/testdata/rs256.pub.pem").to_vec()).unwrap();
        let entries = serde_json::json!([
            {"alg": "HS256", "secret": LONG2, "kid": "old-hs"},
            {"alg": "RS256", "public_key_pem": rs_pub},
        ]);
        std::fs::write(&previous, entries.to_string()).unwrap();
        let c = prod(&[
            ("AUTH_JWT_ALGORITHM", "ES256"),
            ("AUTH_JWT_PRIVATE_KEY_FILE", private.to_str().unwrap()),
            ("AUTH_JWT_PREVIOUS_KEYS_FILE", previous.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(c.user_keys.active().algorithm(), JwtAlgorithm::Es256);
        let kids: Vec<_> = c
            .user_keys
            .keys()
            .map(|k| (k.kid().to_owned(), k.algorithm()))
            .collect();
        assert_eq!(kids.len(), 3);
        assert_eq!(kids[1], ("old-hs".to_owned(), JwtAlgorithm::Hs256));
        assert_eq!(kids[2].1, JwtAlgorithm::Rs256);
        assert_eq!(c.user_keys.jwks().keys.len(), 2);

        std::fs::write(&previous, "not json").unwrap();
        let err = prod(&[("AUTH_JWT_PREVIOUS_KEYS_FILE", previous.to_str().unwrap())]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Key {
                var: "AUTH_JWT_PREVIOUS_KEYS_FILE",
                ..
            }
        ));
        let err = prod(&[
            ("AUTH_JWT_ALGORITHM", "RS256"),
            ("AUTH_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Key {
                var: "AUTH_JWT_PRIVATE_KEY_FILE",
                ..
            }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let c = prod(&[]).unwrap();
        let dev = from(&[]).unwrap();
        let shown = format!(
            "{c:?} {dev:?} {:?}",
            AuthConfig::builder().jwt_secret(Secret::from(LONG))
        );
        assert!(!shown.contains(LONG) && !shown.contains(LONG2), "{shown}");
        let generated = dev.generated.user_jwt_secret.unwrap();
        let hex: String = generated
            .expose()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&hex));
    }

    #[test]
    fn builder_applies_the_same_rules_as_the_environment() {
        assert_eq!(
            AuthConfig::builder()
                .env(AuthEnv::Production)
                .build()
                .unwrap_err(),
            ConfigError::Missing("AUTH_JWT_SECRET_KEY")
        );
        let c = AuthConfig::builder().cookie_secure(true).build().unwrap();
        assert!(c.cookie_secure);
    }
}
