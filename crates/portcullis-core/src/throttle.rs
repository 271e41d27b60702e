//! Password checks per email: at most [`MAX_CHECKS`] in one window of [`WINDOW_SECS`],
//! however many arrive at once — the rest get 429 without touching the password.
//!
//! A check first *reserves* a slot (one atomic step: test and count together), and only a
//! request holding a slot may hash. Counting after the hash, as failures, let a burst of
//! concurrent guesses all pass the test before the first one was counted.
//!
//! Every check takes a slot, successful or not: the contract bounds password *checks*, the
//! outcome is unknown until the hash has run, and so one account costs at most ten argon2
//! runs a minute whoever holds its password. A slot whose check never ran (the server was
//! too busy to hash) is given back. Unknown emails are counted alike, so a 429 says nothing
//! about whether the account exists. Counted in memory on one instance, in Redis (one Lua
//! script) when there are several.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::api_key::KeyHash;
use crate::{AuthError, RateLimitInfo, StoreError};

/// What a [`SharedCounter`] found when asked for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// True when a slot was taken.
    pub taken: bool,
    /// Milliseconds until the window closes.
    pub reset_ms: u64,
}

/// Fixed-window counters shared by several instances (`portcullis-redis`'s `RedisCounter`).
#[async_trait]
pub trait SharedCounter: Send + Sync + 'static {
    /// Atomically takes one of `limit` slots of `name`'s window (opening a window of
    /// `window_secs` if none is open), or reports that none is left.
    async fn reserve(&self, name: &str, limit: u64, window_secs: u64) -> Result<Slot, StoreError>;
    /// Gives back a slot of `name`'s window (never below zero).
    async fn release(&self, name: &str) -> Result<(), StoreError>;
}

/// Password checks allowed per email per window.
pub const MAX_CHECKS: u64 = 10;
/// The window, in seconds.
pub const WINDOW_SECS: u64 = 60;

/// One email's window in memory.
#[derive(Debug)]
pub struct Window {
    opened: Instant,
    taken: AtomicU64,
}

impl Window {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            taken: AtomicU64::new(0),
        }
    }

    /// Whole seconds until the window closes (at least 1).
    fn reset_secs(&self) -> u64 {
        WINDOW_SECS
            .saturating_sub(self.opened.elapsed().as_secs())
            .max(1)
    }
}

/// Counts password checks per email.
#[derive(Clone)]
pub enum LoginThrottle {
    /// One instance: a bounded cache whose entries expire with their window.
    Memory(moka::sync::Cache<KeyHash, Arc<Window>>),
    /// Several instances: a shared counter (Redis).
    Shared(Arc<dyn SharedCounter>),
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "LoginThrottle::Memory",
            Self::Shared(_) => "LoginThrottle::Shared",
        })
    }
}

impl LoginThrottle {
    /// In memory, tracking at most 100 000 emails.
    pub fn memory() -> Self {
        Self::Memory(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(WINDOW_SECS))
                .build(),
        )
    }

    /// Shared by every instance that uses `counter`.
    pub fn shared(counter: Arc<dyn SharedCounter>) -> Self {
        Self::Shared(counter)
    }

    /// The counter's name for an email: its hash, so that no email sits in Redis in clear.
    fn name(email: &str) -> (KeyHash, String) {
        let h = KeyHash::of(email.as_bytes());
        let name = format!("password_checks:{}", h.to_hex());
        (h, name)
    }

    /// Takes one password check for `email`; `Err(429)` when its window has none left.
    /// Call before hashing, and [`release`](Self::release) if the check then does not run.
    pub async fn reserve(&self, email: &str) -> Result<(), AuthError> {
        let (hash, name) = Self::name(email);
        let reset_secs = match self {
            Self::Memory(c) => {
                let w = c.get_with(hash, || Arc::new(Window::new()));
                let taken = w
                    .taken
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < MAX_CHECKS).then_some(n + 1)
                    });
                if taken.is_ok() {
                    return Ok(());
                }
                w.reset_secs()
            }
            Self::Shared(r) => {
                let got = r.reserve(&name, MAX_CHECKS, WINDOW_SECS).await?;
                if got.taken {
                    return Ok(());
                }
                got.reset_ms.div_ceil(1000).max(1)
            }
        };
        crate::metrics::login_throttled();
        Err(AuthError::RateLimited(RateLimitInfo {
            limit: MAX_CHECKS as u32,
            remaining: 0,
            reset_secs,
            retry_after_secs: reset_secs,
        }))
    }

    /// Gives back a slot taken by [`reserve`](Self::reserve) whose check did not run.
    pub async fn release(&self, email: &str) -> Result<(), StoreError> {
        let (hash, name) = Self::name(email);
        match self {
            Self::Memory(c) => {
                if let Some(w) = c.get(&hash) {
                    let _ = w
                        .taken
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                }
            }
            Self::Shared(r) => r.release(&name).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eleventh_reservation_is_429_and_a_release_gives_one_back() {
        let t = LoginThrottle::memory();
        for _ in 0..MAX_CHECKS {
            t.reserve("a@example.com").await.unwrap();
        }
        let Err(AuthError::RateLimited(info)) = t.reserve("a@example.com").await else {
            panic!("the 11th check must be refused");
        };
        assert_eq!((info.limit, info.remaining), (10, 0));
        assert!((1..=WINDOW_SECS).contains(&info.retry_after_secs));
        // Another email has its own window.
        t.reserve("b@example.com").await.unwrap();
        t.release("a@example.com").await.unwrap();
        t.reserve("a@example.com").await.unwrap();
        assert!(t.reserve("a@example.com").await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_take_exactly_the_limit() {
        let t = LoginThrottle::memory();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.reserve("burst@example.com").await.is_ok() })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            taken += u64::from(task.await.unwrap());
        }
        assert_eq!(taken, MAX_CHECKS);
    }
}
