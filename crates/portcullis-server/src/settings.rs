//! Where the server keeps things (DATABASE_URL, REDIS_URL) and the auth configuration, with
//! development secrets generated once and persisted beside the database.

use std::path::PathBuf;

use portcullis::{AuthConfig, Policy, SecretString};

/// Default database: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://portcullis.db";

/// `DATABASE_URL`, with SQLite files created if missing.
pub fn database_url() -> String {
    let url = env("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url
    }
}

/// `REDIS_URL`, if set.
pub fn redis_url() -> Option<String> {
    env("REDIS_URL")
}

/// `PORTCULLIS_REDIS_PREFIX` (default `portcullis:`): instances sharing a prefix share state.
pub fn redis_prefix() -> String {
    env("PORTCULLIS_REDIS_PREFIX").unwrap_or_else(|| "portcullis:".to_owned())
}

/// `PORTCULLIS_METRICS_BIND`: where `GET /metrics` is served (Prometheus text), if set.
pub fn metrics_bind() -> Result<Option<std::net::SocketAddr>, String> {
    env("PORTCULLIS_METRICS_BIND")
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("PORTCULLIS_METRICS_BIND: expected host:port, got {v:?}"))
        })
        .transpose()
}

/// A non-empty variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The auth configuration from the environment. In development, secrets left unset are kept
/// in a file beside the database ([`AuthConfig::from_lookup_keeping_dev_secrets`]), so that
/// tokens survive a restart.
pub fn auth_config(database_url: &str) -> Result<AuthConfig, String> {
    AuthConfig::from_lookup_keeping_dev_secrets(env, &secrets_path(database_url))
        .map_err(|e| e.to_string())
}

/// The layer's HTTP policy: the contract's public paths, then `AUTH_REQUIRE_AUTH`,
/// `AUTH_REQUIRE_AUTH_EXCEPTIONS`, `AUTH_FALLBACK` and `AUTH_FALLBACK_ALLOW_REMOTE`.
pub fn http_policy() -> Result<Policy, String> {
    policy_from(env)
}

fn policy_from(lookup: impl Fn(&str) -> Option<String>) -> Result<Policy, String> {
    Policy::default()
        .public_paths(crate::routes::PUBLIC_PATHS)
        .with_lookup(lookup)
        .map_err(|e| e.to_string())
}

/// `<db file>.secrets` for SQLite; `portcullis-dev-secrets.json` in the working directory
/// otherwise.
fn secrets_path(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| !p.is_empty() && !p.contains(":memory:"));
    match file {
        Some(p) => PathBuf::from(format!("{p}.secrets")),
        None => PathBuf::from("portcullis-dev-secrets.json"),
    }
}

/// A random secret for `secret generate`: 32 bytes, base64url (43 characters).
pub fn generate_secret() -> String {
    SecretString::random_token().expose().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_live_beside_a_sqlite_file() {
        assert_eq!(
            secrets_path("sqlite:///tmp/x/p.db?mode=rwc"),
            PathBuf::from("/tmp/x/p.db.secrets")
        );
        assert_eq!(
            secrets_path("sqlite://portcullis.db"),
            PathBuf::from("portcullis.db.secrets")
        );
        assert_eq!(
            secrets_path("postgres://u@h/db"),
            PathBuf::from("portcullis-dev-secrets.json")
        );
    }

    #[test]
    fn the_policy_has_the_contracts_public_paths_plus_the_exceptions() {
        let policy = policy_from(|name| {
            (name == "AUTH_REQUIRE_AUTH_EXCEPTIONS").then(|| "/docs".to_owned())
        })
        .unwrap();
        for path in crate::routes::PUBLIC_PATHS.into_iter().chain(["/docs"]) {
            assert!(!policy.needs_auth(path), "{path}");
        }
        assert!(policy.needs_auth("/auth/whoami") && policy.needs_auth("/api/v1/sessions"));
        let err = policy_from(|name| (name == "AUTH_FALLBACK").then(|| "bored".to_owned()));
        assert_eq!(err.unwrap_err(), "AUTH_FALLBACK: expected none or board");
    }
}
