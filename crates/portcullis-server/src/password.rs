//! Password hashing: argon2id with the crate's recommended parameters, off the async threads,
//! and never more of it at once than the machine can hold.
//!
//! A login for an unknown email verifies against a dummy hash made at start with the same
//! parameters, so that it costs what a wrong password costs: the two are indistinguishable in
//! status, body and (roughly) time.
//!
//! Each hash or verification holds argon2's 19 MiB block matrix while it runs, so unbounded
//! concurrency is unbounded memory (120 concurrent logins once reached 4.5 GB). A semaphore
//! admits [`Passwords::concurrency`] of them at once — one per core (more would only queue on
//! the CPU while holding memory), and never more than [`HASH_MEMORY_BUDGET_MIB`] worth. The
//! rest wait up to [`MAX_WAIT`] for a turn, then get 503 `auth_unavailable` ("busy").

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Argon2, Params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::ApiError;

/// Shortest password accepted for new users and password changes.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: argon2 takes any length, but a megabyte costs time for nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Memory all concurrent hashes together may hold (argon2's blocks, not the server's base).
pub const HASH_MEMORY_BUDGET_MIB: usize = 256;
/// How long a request waits for a hashing turn before it is answered "busy".
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Hashes and verifies passwords, a bounded number at once. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    dummy: Arc<str>,
    turns: Arc<Semaphore>,
    max_wait: Duration,
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
        let concurrency = Self::concurrency();
        tracing::debug!(concurrency, "password hashing slots");
        Ok(Self {
            dummy: dummy.into(),
            turns: Arc::new(Semaphore::new(concurrency)),
            max_wait: MAX_WAIT,
        })
    }

    /// Hashes that may run at once: the cores, capped by [`HASH_MEMORY_BUDGET_MIB`] over
    /// argon2's default memory cost (19 MiB: 13 at most), at least one.
    pub fn concurrency() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let per_hash_mib = (Params::DEFAULT_M_COST as usize).div_ceil(1024);
        let by_memory = (HASH_MEMORY_BUDGET_MIB / per_hash_mib).max(1);
        cores.clamp(1, by_memory)
    }

    /// A turn to hash, waiting at most [`MAX_WAIT`]; "busy" when none comes.
    async fn turn(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.max_wait, self.turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Closed never happens (the semaphore is never closed); treat it as busy too.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("password hashing saturated; request shed");
                Err(ApiError::Busy)
            }
        }
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        let turn = self.turn().await?;
        // The turn moves into the blocking task: a client that hangs up does not free it
        // while the hash still holds its memory.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            hash_blocking(&password)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy
    /// (and is false), so that unknown users cost the same as known ones. `Err` is
    /// [`ApiError::Busy`] when no turn came in time: no check was made.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        let turn = self.turn().await?;
        let ok = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(ok && known)
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
        assert!(p.verify("s3cret-pass", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong", Some(&h)).await.unwrap());
        // The dummy's own password must not log in an unknown user.
        assert!(
            !p.verify("portcullis dummy password, never a real one", None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn concurrency_is_within_the_cores_and_the_memory_budget() {
        let n = Passwords::concurrency();
        assert!(n >= 1);
        assert!(n * 19 <= HASH_MEMORY_BUDGET_MIB, "{n} hashes exceed the budget");
    }

    #[tokio::test]
    async fn a_check_that_gets_no_turn_in_time_is_busy() {
        let p = Passwords {
            max_wait: Duration::from_millis(20),
            ..Passwords::new().unwrap()
        };
        // Every turn taken, as by hashes in flight.
        let _all = p
            .turns
            .clone()
            .acquire_many_owned(u32::try_from(Passwords::concurrency()).unwrap())
            .await
            .unwrap();
        assert!(matches!(
            p.verify("whatever", None).await,
            Err(ApiError::Busy)
        ));
        assert!(matches!(p.hash("whatever").await, Err(ApiError::Busy)));
    }
}
