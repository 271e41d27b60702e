//! Password hashing: argon2id with the crate's recommended parameters, off the async threads,
//! and never more of it at once than the machine can hold.
//!
//! A login for an unknown email verifies against a dummy hash made at start with the same
//! parameters, so that it costs what a wrong password costs: the two are indistinguishable in
//! status, body and (roughly) time.
//!
//! Each hash or verification works in argon2's 19 MiB block matrix, so unbounded concurrency
//! is unbounded memory (120 concurrent logins once reached 4.5 GB). A semaphore admits
//! [`Passwords::concurrency`] of them at once — one per core (more would only queue on the CPU
//! while holding memory), and never more than [`HASH_MEMORY_BUDGET_MIB`] worth. The rest wait
//! up to [`MAX_WAIT`] for a turn, then get 503 `auth_unavailable` ("busy").
//!
//! Each turn owns one block matrix, allocated on first use and kept for the next hash: with a
//! fresh allocation per hash, glibc keeps freed 19 MiB chunks in per-thread arenas, and the
//! blocking pool's many threads took the peak to ~870 MB even with two hashes at a time.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shortest password accepted for new users and password changes.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: argon2 takes any length, but a megabyte costs time for nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Memory all concurrent hashes together may hold (argon2's blocks, not the server's base).
pub const HASH_MEMORY_BUDGET_MIB: usize = 256;
/// How long a request waits for a hashing turn before it is answered "busy".
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// One argon2 block matrix for the default parameters (19 MiB).
type Blocks = Box<[Block]>;

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// No hashing turn came within [`MAX_WAIT`]: the check did not run (503, retry shortly).
    #[error("too many passwords are being hashed at once")]
    Busy,
    /// argon2 failed (a bug or a resource failure).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and verifies passwords, a bounded number at once. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    dummy: Arc<str>,
    turns: Arc<Turns>,
    max_wait: Duration,
}

/// The semaphore, and the block matrices of finished turns, kept for the next ones (never
/// more than there are permits).
struct Turns {
    permits: Arc<Semaphore>,
    spare: Mutex<Vec<Blocks>>,
}

/// A permit to hash, with its block matrix; gives both back when dropped.
struct Turn {
    blocks: Option<Blocks>,
    turns: Arc<Turns>,
    _permit: OwnedSemaphorePermit,
}

impl Turn {
    fn blocks(&mut self) -> &mut [Block] {
        self.blocks.get_or_insert_with(|| {
            vec![Block::default(); Params::DEFAULT.block_count()].into_boxed_slice()
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Before the permit (a field) is released: the next turn finds the matrix.
        if let Some(b) = self.blocks.take() {
            self.turns
                .spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(b);
        }
    }
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Passwords {
    /// Prepares the dummy hash (one hash's worth of time, at start).
    pub fn new() -> Result<Self, PasswordError> {
        let mut blocks = vec![Block::default(); Params::DEFAULT.block_count()];
        let dummy = hash_with(&mut blocks, "portcullis dummy password, never a real one")
            .map_err(PasswordError::Failed)?;
        let concurrency = Self::concurrency();
        tracing::debug!(concurrency, "password hashing turns");
        Ok(Self {
            dummy: dummy.into(),
            turns: Arc::new(Turns {
                permits: Arc::new(Semaphore::new(concurrency)),
                spare: Mutex::new(vec![blocks.into_boxed_slice()]),
            }),
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
    async fn turn(&self) -> Result<Turn, PasswordError> {
        let permits = self.turns.permits.clone();
        match tokio::time::timeout(self.max_wait, permits.acquire_owned()).await {
            Ok(Ok(permit)) => {
                let blocks = self
                    .turns
                    .spare
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop();
                Ok(Turn {
                    blocks,
                    turns: self.turns.clone(),
                    _permit: permit,
                })
            }
            // Closed never happens (the semaphore is never closed); treat it as busy too.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("password hashing saturated; request shed");
                Err(PasswordError::Busy)
            }
        }
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        let mut turn = self.turn().await?;
        // The turn moves into the blocking task: a client that hangs up does not free it
        // while the hash still runs.
        tokio::task::spawn_blocking(move || hash_with(turn.blocks(), &password))
            .await
            .map_err(|e| PasswordError::Failed(e.to_string()))?
            .map_err(PasswordError::Failed)
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy
    /// (and is false), so that unknown users cost the same as known ones. `Err` is
    /// [`PasswordError::Busy`] when no turn came in time: no check was made.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        let mut turn = self.turn().await?;
        let ok = tokio::task::spawn_blocking(move || verify_with(turn.blocks(), &password, &hash))
            .await
            .map_err(|e| PasswordError::Failed(e.to_string()))?;
        Ok(ok && known)
    }
}

/// argon2id of `password` with a fresh salt, in `blocks`, as a PHC string — what
/// `PasswordHasher::hash_password` makes, without allocating its own 19 MiB.
fn hash_with(blocks: &mut [Block], password: &str) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| format!("argon2: {e}");
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| err(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::default()
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
        .map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&Params::DEFAULT).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `phc` — what `PasswordVerifier` does, in
/// `blocks`. A stored hash with more memory than the default (none is made here) gets its own.
fn verify_with(blocks: &mut [Block], password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let done = if params.block_count() <= blocks.len() {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    } else {
        argon2.hash_password_into(password.as_bytes(), salt, &mut out)
    };
    // `Output`'s equality is constant-time.
    done.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Checks a new password's length: the reason it is refused (a 400's detail), if it is.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        ));
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

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = Passwords::new().unwrap();
        // Made by the crate (as every hash stored before pooled memory was): verifies here.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"old hash pass", &salt)
            .unwrap()
            .to_string();
        assert!(p.verify("old hash pass", Some(&theirs)).await.unwrap());
        assert!(!p.verify("old hash pasS", Some(&theirs)).await.unwrap());
        // Made here: the crate verifies it.
        let ours = p.hash("new hash pass").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"new hash pass", &parsed)
                .is_ok()
        );
        // Cheaper and dearer parameters than the pooled matrix verify too.
        for m_cost in [8 * 1024, 32 * 1024] {
            let params = Params::new(m_cost, 1, 1, None).unwrap();
            let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"other params", &salt)
                .unwrap()
                .to_string();
            assert!(p.verify("other params", Some(&other)).await.unwrap());
        }
        assert!(!p.verify("x", Some("not a phc string")).await.unwrap());
    }

    #[test]
    fn concurrency_is_within_the_cores_and_the_memory_budget() {
        let n = Passwords::concurrency();
        assert!(n >= 1);
        assert!(
            n * 19 <= HASH_MEMORY_BUDGET_MIB,
            "{n} hashes exceed the budget"
        );
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
            .permits
            .clone()
            .acquire_many_owned(u32::try_from(Passwords::concurrency()).unwrap())
            .await
            .unwrap();
        assert!(matches!(
            p.verify("whatever", None).await,
            Err(PasswordError::Busy)
        ));
        assert!(matches!(p.hash("whatever").await, Err(PasswordError::Busy)));
    }
}
