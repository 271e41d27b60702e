//! Failed logins per email: after [`MAX_FAILURES`] in one minute, that email gets 429 until
//! the window closes — checked before the password, so the 11th guess learns nothing. Counted
//! in memory on one instance, in Redis when there are several.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis::api_key::KeyHash;
use portcullis::redis::RedisCounter;
use portcullis::{AuthError, RateLimitInfo, StoreError};

/// Failures allowed per email per window.
pub const MAX_FAILURES: u64 = 10;
/// The window, in seconds.
pub const WINDOW_SECS: u64 = 60;

/// Counts failed logins.
#[derive(Clone)]
pub enum LoginThrottle {
    /// One instance: a bounded cache whose entries expire with their window.
    Memory(moka::sync::Cache<KeyHash, Arc<AtomicU64>>),
    /// Several instances: Redis counters.
    Redis(RedisCounter),
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "LoginThrottle::Memory",
            Self::Redis(_) => "LoginThrottle::Redis",
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

    /// The counter's name for an email: its hash, so that no email sits in Redis in clear.
    fn name(email: &str) -> (KeyHash, String) {
        let h = KeyHash::of(email.as_bytes());
        let name = format!("login_fail:{}", h.to_hex());
        (h, name)
    }

    /// `Err(429)` when `email` has used up its failures.
    pub async fn check(&self, email: &str) -> Result<(), AuthError> {
        let (hash, name) = Self::name(email);
        let n = match self {
            Self::Memory(c) => c.get(&hash).map_or(0, |n| n.load(Ordering::Relaxed)),
            Self::Redis(r) => r.get(&name).await?,
        };
        if n >= MAX_FAILURES {
            return Err(AuthError::RateLimited(RateLimitInfo {
                limit: MAX_FAILURES as u32,
                remaining: 0,
                reset_secs: WINDOW_SECS,
                retry_after_secs: WINDOW_SECS,
            }));
        }
        Ok(())
    }

    /// Records one failure for `email`.
    pub async fn fail(&self, email: &str) -> Result<(), StoreError> {
        let (hash, name) = Self::name(email);
        match self {
            Self::Memory(c) => {
                c.get_with(hash, || Arc::new(AtomicU64::new(0)))
                    .fetch_add(1, Ordering::Relaxed);
            }
            Self::Redis(r) => {
                r.incr(&name, WINDOW_SECS).await?;
            }
        }
        Ok(())
    }
}
