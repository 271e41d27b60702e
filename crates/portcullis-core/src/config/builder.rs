//! The one builder: [`AuthConfig::builder`] in code, [`AuthConfig::from_lookup`] from variables.

use std::path::{Path, PathBuf};

use super::previous_keys::load_previous_keys;
use super::secrets::{refuse_one_secret_for_users_and_agents, resolve_secret};
use super::{AuthConfig, AuthEnv, ConfigError};
use crate::api_key::ApiKeyPrefix;
use crate::oidc::IssuerConfig;
use crate::roles::Roles;
use crate::secret::Secret;
use crate::token::{
    DEFAULT_MAX_TOKEN_BYTES, JwtAlgorithm, KeyError, KeyRing, SigningKey, TokenPolicy,
    UserTokenTtl, VerifyingKey,
};

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
    issuers: Vec<IssuerConfig>,
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
            issuers: Vec::new(),
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

    /// Adds an external issuer whose access tokens resolve to actors (OpenID Connect).
    #[must_use]
    pub fn external_issuer(mut self, issuer: IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Adds a verify-only user token key (rotation).
    #[must_use]
    pub fn previous_key(mut self, key: VerifyingKey) -> Self {
        self.previous_keys.push(key);
        self
    }

    /// `AUTH_JWT_ALGORITHM`: without a signing key, HS256 uses the secret and the others
    /// read `AUTH_JWT_PRIVATE_KEY_FILE`.
    pub(super) fn algorithm(mut self, algorithm: JwtAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// `AUTH_JWT_PRIVATE_KEY_FILE`.
    pub(super) fn private_key_file(mut self, path: PathBuf) -> Self {
        self.private_key_file = Some(path);
        self
    }

    /// `AUTH_JWT_PREVIOUS_KEYS_FILE`.
    pub(super) fn previous_keys_file(mut self, path: PathBuf) -> Self {
        self.previous_keys_file = Some(path);
        self
    }

    /// The user token lifetimes set so far (the environment sets them one by one).
    pub(super) fn ttl(&self) -> UserTokenTtl {
        self.ttl
    }

    /// Checks everything and builds. Development without secrets generates them and warns;
    /// production refuses missing or short secrets and one secret for users and agents.
    /// (Board fallback is HTTP policy: `portcullis_tower::Policy` refuses it in production.)
    pub fn build(self) -> Result<AuthConfig, ConfigError> {
        let production = self.env == AuthEnv::Production;

        // The user secret, when user tokens are signed with one.
        let mut user_secret = None;
        let active = match (self.signing_key, self.algorithm) {
            (Some(key), _) => key,
            (None, JwtAlgorithm::Hs256) => {
                let secret = resolve_secret(self.user_secret, "AUTH_JWT_SECRET_KEY", production)?;
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

        let agent_secret = resolve_secret(self.agent_secret, "AUTH_AGENT_JWT_SECRET", production)?;
        if let Some(user_secret) = &user_secret {
            refuse_one_secret_for_users_and_agents(user_secret, &agent_secret, production)?;
        }
        let agent_keys = KeyRing::new(SigningKey::hs256(&agent_secret));

        let own = [self.user_issuer.as_str(), self.agent_issuer.as_str()];
        crate::oidc::check_all(&self.issuers, &own, production)?;

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
            issuers: self.issuers,
        })
    }
}

/// The bytes of a key file, kept as a secret (a private key is one).
pub(super) fn read_key_file(var: &'static str, path: &Path) -> Result<Secret, ConfigError> {
    std::fs::read(path)
        .map(Secret::new)
        .map_err(|e| ConfigError::Key {
            var,
            reason: format!("cannot read {}: {e}", path.display()),
        })
}

/// A key that cannot be used, as the error naming its variable.
pub(super) fn key_error(var: &'static str, e: KeyError) -> ConfigError {
    ConfigError::Key {
        var,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{LONG, from, prod};
    use super::*;

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

    #[test]
    fn production_cookies_are_secure_by_default() {
        let c = prod(&[]).unwrap();
        assert!(c.cookie_secure, "Secure cookies by default in production");
        assert!(!from(&[]).unwrap().cookie_secure);
    }

    #[test]
    fn a_signing_key_replaces_the_user_secret() {
        let key = SigningKey::hs256(&Secret::from(LONG));
        let c = AuthConfig::builder()
            .jwt_signing_key(key.clone())
            .build()
            .unwrap();
        assert_eq!(c.user_keys.active().kid(), key.kid());
    }
}
