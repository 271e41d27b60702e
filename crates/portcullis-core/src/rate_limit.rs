//! Per-key rate limits: GCRA (governor), one limiter per key, in a bounded cache.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};

use crate::error::{RateLimitInfo, StoreError};

/// Decides whether one more request of `key` fits in its limit.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// `Ok(Ok(()))`: allowed. `Ok(Err(info))`: over the limit. `Err`: the counter store failed.
    async fn check(
        &self,
        key: &str,
        per_minute: NonZeroU32,
    ) -> Result<Result<(), RateLimitInfo>, StoreError>;
}

type KeyLimiter = Gcra<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Limits in process memory: at most `capacity` keys are tracked (least recently used go
/// first), so a flood of distinct keys cannot grow memory without bound.
pub struct MemoryRateLimiter {
    limiters: moka::sync::Cache<(Box<str>, NonZeroU32), Arc<KeyLimiter>>,
    clock: DefaultClock,
}

impl MemoryRateLimiter {
    /// A limiter tracking at most `capacity` keys.
    pub fn new(capacity: u64) -> Self {
        Self {
            limiters: moka::sync::Cache::builder()
                .max_capacity(capacity)
                // A limiter idle for longer than its window holds a full bucket: dropping it
                // loses nothing.
                .time_to_idle(Duration::from_secs(120))
                .build(),
            clock: DefaultClock::default(),
        }
    }

    /// Synchronous check (the in-memory limiter never waits).
    pub fn check_now(&self, key: &str, per_minute: NonZeroU32) -> Result<(), RateLimitInfo> {
        let limiter = self.limiters.get_with((key.into(), per_minute), || {
            Arc::new(Gcra::direct(Quota::per_minute(per_minute)).with_middleware())
        });
        let limit = per_minute.get();
        // GCRA refills one request every 60/limit seconds; a full refill takes a minute.
        match limiter.check() {
            Ok(_) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(RateLimitInfo {
                    limit,
                    remaining: 0,
                    reset_secs: retry_after_secs.max(1),
                    retry_after_secs: retry_after_secs.max(1),
                })
            }
        }
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("tracked", &self.limiters.entry_count())
            .finish()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(
        &self,
        key: &str,
        per_minute: NonZeroU32,
    ) -> Result<Result<(), RateLimitInfo>, StoreError> {
        Ok(self.check_now(key, per_minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_the_per_minute_limit_then_429_with_a_retry_time() {
        let limiter = MemoryRateLimiter::new(10);
        let three = NonZeroU32::new(3).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check_now("k1", three), Ok(()));
        }
        let info = limiter.check_now("k1", three).unwrap_err();
        assert_eq!((info.limit, info.remaining), (3, 0));
        assert!((1..=20).contains(&info.retry_after_secs), "{info:?}");
        // Another key has its own bucket.
        assert_eq!(limiter.check_now("k2", three), Ok(()));
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let limiter = MemoryRateLimiter::new(100);
        let one = NonZeroU32::new(1).unwrap();
        for i in 0..10_000 {
            let _ = limiter.check_now(&format!("forged-{i}"), one);
        }
        limiter.limiters.run_pending_tasks();
        assert!(limiter.limiters.entry_count() <= 100);
    }
}
