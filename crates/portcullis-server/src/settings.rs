//! Where the server keeps things (DATABASE_URL, REDIS_URL) and the auth configuration, with
//! development secrets generated once and persisted beside the database.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::{AuthConfig, Policy, Secret};

/// Default database: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://portcullis.db";

/// The variables whose secrets development generates when unset.
const GENERATED: [&str; 2] = ["AUTH_JWT_SECRET_KEY", "AUTH_AGENT_JWT_SECRET"];

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

/// A non-empty variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The auth configuration from the environment. In development, secrets left unset are read
/// from (or generated into) a file beside the database, so that tokens survive a restart.
pub fn auth_config(database_url: &str) -> Result<AuthConfig, String> {
    let production = env("AUTH_ENV").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "production" | "prod"
        )
    });
    let mut persisted = HashMap::new();
    if !production && GENERATED.iter().any(|v| env(v).is_none()) {
        persisted = dev_secrets(&secrets_path(database_url))?;
    }
    AuthConfig::from_lookup(|name| env(name).or_else(|| persisted.get(name).cloned()))
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

fn dev_secrets(path: &PathBuf) -> Result<HashMap<String, String>, String> {
    let mut secrets: HashMap<String, String> = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a secrets file: {e}", path.display()))?,
        Err(_) => HashMap::new(),
    };
    let mut changed = false;
    for var in GENERATED {
        if env(var).is_none() && !secrets.contains_key(var) {
            secrets.insert(var.to_owned(), generate_secret());
            changed = true;
        }
    }
    if changed {
        write_private(
            path,
            &serde_json::to_string_pretty(&secrets).unwrap_or_default(),
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        tracing::warn!(
            path = %path.display(),
            "development: generated JWT secrets and saved them beside the database; \
             set AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET in production"
        );
    }
    Ok(secrets)
}

#[cfg(unix)]
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
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
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// 32 random bytes, base64url (43 characters).
pub fn generate_secret() -> String {
    URL_SAFE_NO_PAD.encode(Secret::random(32).expose())
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

    #[test]
    fn generated_secrets_are_43_chars_and_differ() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
