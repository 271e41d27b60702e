//! The secret policy: development generates missing secrets and warns about weak ones;
//! production refuses secrets that are missing, shorter than [`MIN_SECRET_BYTES`], or the same
//! for user and agent tokens.

use subtle::ConstantTimeEq as _;

use super::ConfigError;
use crate::secret::Secret;

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
