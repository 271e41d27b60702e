//! Password hashing: argon2id with the crate's recommended parameters, off the async threads.
//!
//! A login for an unknown email verifies against a dummy hash made at start with the same
//! parameters, so that it costs what a wrong password costs: the two are indistinguishable in
//! status, body and (roughly) time.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use crate::problem::ApiError;

/// Shortest password accepted for new users and password changes.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: argon2 takes any length, but a megabyte costs time for nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Passwords {
    /// Prepares the dummy hash (one hash's worth of time, at start).
    pub fn new() -> Result<Self, String> {
        let dummy = hash_blocking("portcullis dummy password, never a real one")?;
        Ok(Self {
            dummy: dummy.into(),
        })
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::Internal)
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy
    /// (and is false), so that unknown users cost the same as known ones.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

fn hash_blocking(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Checks a new password's length.
pub fn check_new(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_verifies_and_wrong_or_unknown_do_not() {
        let p = Passwords::new().unwrap();
        let h = p.hash("s3cret-pass").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("s3cret-pass", Some(&h)).await);
        assert!(!p.verify("wrong", Some(&h)).await);
        // The dummy's own password must not log in an unknown user.
        assert!(
            !p.verify("portcullis dummy password, never a real one", None)
                .await
        );
    }
}
