//! The secret policy: development generates missing secrets and warns about weak ones;
//! production refuses secrets that are missing, shorter than [`MIN_SECRET_BYTES`], or the same
//! for user and agent tokens.

use std::collections::HashMap;
use std::path::Path;

use subtle::ConstantTimeEq as _;

use super::{AuthConfig, AuthEnv, ConfigError};
use crate::secret::{Secret, SecretString};

/// The variables whose secrets development generates when they are unset.
const GENERATED: [&str; 2] = ["AUTH_JWT_SECRET_KEY", "AUTH_AGENT_JWT_SECRET"];

impl AuthConfig {
    /// [`from_env`](Self::from_env), except that in development the secrets left unset are
    /// read from the JSON file `path` — or generated and written there, readable by its owner
    /// only — so that tokens survive a restart. In production nothing is read or written:
    /// missing secrets are refused as always.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("pc-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("app.db.secrets");
    /// let lookup = |_: &str| None;
    /// let a = portcullis_core::AuthConfig::from_lookup_keeping_dev_secrets(lookup, &path)?;
    /// let b = portcullis_core::AuthConfig::from_lookup_keeping_dev_secrets(lookup, &path)?;
    /// // The same secrets both times: a token of the first verifies with the second.
    /// assert_eq!(a.user_tokens().key_ring().active().kid(), b.user_tokens().key_ring().active().kid());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), portcullis_core::ConfigError>(())
    /// ```
    pub fn from_env_keeping_dev_secrets(path: &Path) -> Result<Self, ConfigError> {
        Self::from_lookup_keeping_dev_secrets(|name| std::env::var(name).ok(), path)
    }

    /// [`from_env_keeping_dev_secrets`](Self::from_env_keeping_dev_secrets) through `lookup`.
    pub fn from_lookup_keeping_dev_secrets(
        lookup: impl Fn(&str) -> Option<String>,
        path: &Path,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let production = match get("AUTH_ENV") {
            Some(v) => super::env::auth_env(&v)? == AuthEnv::Production,
            None => false,
        };
        let mut kept = HashMap::new();
        if !production && GENERATED.iter().any(|v| get(v).is_none()) {
            kept = kept_secrets(path, &get)?;
        }
        Self::from_lookup(|name| get(name).or_else(|| kept.get(name).cloned()))
    }
}

/// The secrets file at `path`, with a secret generated (and the file written) for each
/// variable `get` leaves unset and the file lacks.
fn kept_secrets(
    path: &Path,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::Invalid {
        var: "development secrets file",
        reason: format!("{}: {reason}", path.display()),
    };
    let mut secrets: HashMap<String, String> = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| file_error(format!("not a secrets file: {e}")))?,
        Err(_) => HashMap::new(),
    };
    let mut changed = false;
    for var in GENERATED {
        if get(var).is_none() && !secrets.contains_key(var) {
            let token = SecretString::random_token();
            secrets.insert(var.to_owned(), token.expose().to_owned());
            changed = true;
        }
    }
    if changed {
        let text = serde_json::to_string_pretty(&secrets).unwrap_or_default();
        write_private(path, &text).map_err(|e| file_error(format!("cannot write: {e}")))?;
        tracing::warn!(
            path = %path.display(),
            "development: generated JWT secrets and saved them in this file; \
             set AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET in production"
        );
    }
    Ok(secrets)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Shortest secret accepted in production, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The secret for `var`: the one given if production accepts it, else (in development) one
/// generated with a warning. The warning names the variable, never a value.
pub(super) fn resolve_secret(
    given: Option<Secret>,
    var: &'static str,
    production: bool,
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
            Ok(Secret::random(MIN_SECRET_BYTES))
        }
    }
}

/// Production refuses one secret for user and agent tokens (whoever holds the agent secret
/// could sign user tokens); development warns. Compared in constant time.
pub(super) fn refuse_one_secret_for_users_and_agents(
    user: &Secret,
    agent: &Secret,
    production: bool,
) -> Result<(), ConfigError> {
    if bool::from(user.expose().ct_eq(agent.expose())) {
        if production {
            return Err(ConfigError::SameSecretForUsersAndAgents);
        }
        tracing::warn!(
            "AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET are the same; production would refuse it"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{LONG, LONG2, from, prod};
    use super::super::{AuthConfig, AuthEnv};
    use super::*;
    use crate::token::{JwtAlgorithm, SigningKey};

    #[test]
    fn development_secrets_are_kept_in_the_file_and_production_reads_none() {
        let dir = std::env::temp_dir().join(format!("pc-kept-{}", crate::ids::UserId::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.db.secrets");
        let dev = |_: &str| None;
        let a = AuthConfig::from_lookup_keeping_dev_secrets(dev, &path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains("AUTH_JWT_SECRET_KEY") && written.contains("AUTH_AGENT_JWT_SECRET")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = AuthConfig::from_lookup_keeping_dev_secrets(dev, &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            written,
            "rewritten"
        );
        assert_eq!(
            a.user_tokens().key_ring().active().kid(),
            b.user_tokens().key_ring().active().kid()
        );
        // A secret that is set wins over the file; production touches no file.
        let other = dir.join("other.secrets");
        let set = |name: &str| (name == "AUTH_JWT_SECRET_KEY").then(|| LONG.to_owned());
        let c = AuthConfig::from_lookup_keeping_dev_secrets(set, &other).unwrap();
        assert!(
            !std::fs::read_to_string(&other)
                .unwrap()
                .contains("AUTH_JWT_SECRET_KEY")
        );
        assert_ne!(
            c.user_tokens().key_ring().active().kid(),
            a.user_tokens().key_ring().active().kid()
        );
        let unwritten = dir.join("prod.secrets");
        let r = AuthConfig::from_lookup_keeping_dev_secrets(
            |name: &str| (name == "AUTH_ENV").then(|| "production".to_owned()),
            &unwritten,
        );
        assert!(matches!(r, Err(ConfigError::Missing(_))), "{r:?}");
        assert!(!unwritten.exists());
        std::fs::write(&path, "not json").unwrap();
        let bad = AuthConfig::from_lookup_keeping_dev_secrets(dev, &path).unwrap_err();
        assert!(bad.to_string().contains("not a secrets file"), "{bad}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn development_without_secrets_generates_them() {
        let generated = resolve_secret(None, "AUTH_JWT_SECRET_KEY", false).unwrap();
        assert_eq!(generated.len(), MIN_SECRET_BYTES);
        let again = resolve_secret(None, "AUTH_JWT_SECRET_KEY", false).unwrap();
        assert_ne!(generated.expose(), again.expose());

        let (a, b) = (from(&[]).unwrap(), from(&[]).unwrap());
        assert_eq!(a.user_keys.active().algorithm(), JwtAlgorithm::Hs256);
        assert_ne!(a.user_keys.active().kid(), b.user_keys.active().kid());
        assert_ne!(a.agent_keys.active().kid(), b.agent_keys.active().kid());
        let configured = from(&[("AUTH_JWT_SECRET_KEY", LONG)]).unwrap();
        assert_eq!(
            configured.user_keys.active().kid(),
            SigningKey::hs256(&Secret::from(LONG)).kid()
        );
    }

    #[test]
    fn a_generated_secret_never_shows_in_debug_output() {
        let generated = resolve_secret(None, "AUTH_JWT_SECRET_KEY", false).unwrap();
        let c = AuthConfig::builder()
            .jwt_secret(generated.clone())
            .build()
            .unwrap();
        let shown = format!("{c:?} {generated:?}");
        let hex: String = generated
            .expose()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&hex), "{shown}");
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
        // 32 bytes is enough.
        let exact = "32-bytes-is-exactly-the-minimum!";
        assert_eq!(exact.len(), 32);
        assert!(prod(&[("AUTH_JWT_SECRET_KEY", exact)]).is_ok());
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
        assert!(prod(&[("AUTH_AGENT_JWT_SECRET", LONG2)]).is_ok());
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
}
