//! Rate limits shared by every instance: GCRA in one Lua script, on Redis's clock.
//!
//! Each (key, limit) has one string `<prefix>rate:<limit>:<key>` holding its theoretical
//! arrival time in microseconds; it expires when the bucket is full again. The semantics
//! match core's in-memory limiter: a burst of `per_minute` requests, then one more every
//! `60 / per_minute` seconds. Time is read from the Redis server (`TIME`), so instances
//! with skewed clocks still agree.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::rate_limit::RateLimiter;
use portcullis_core::{RateLimitInfo, StoreError};
use redis::Script;

use crate::{Backend, Retry};

const PERIOD_MICROS: u64 = 60_000_000;

/// GCRA: allow when the theoretical arrival time `tat` minus the burst tolerance `tau` is
/// not in the future; an allowed request moves `tat` one emission interval on.
/// Integer microseconds throughout, so a burst is exactly `limit` requests.
///
/// KEYS: counter. ARGV: limit, period (µs).
/// Returns {allowed (1/0), remaining, µs until the bucket is full, µs until retry}.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local interval = math.max(1, math.floor(tonumber(ARGV[2]) / limit))
local tau = interval * (limit - 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat - tau > now then
  return {0, 0, tat - now, tat - tau - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
local remaining = math.max(0, math.floor((now + tau - new_tat) / interval) + 1)
return {1, remaining, new_tat - now, 0}
";

/// Per-key rate limits whose counters live in Redis, so every instance enforces one limit.
#[derive(Clone)]
pub struct RedisRateLimiter {
    backend: Backend,
    gcra: Arc<Script>,
}

impl RedisRateLimiter {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            gcra: Arc::new(Script::new(GCRA)),
        }
    }

    /// Like [`RateLimiter::check`], with the state after an allowed request too (for
    /// `RateLimit-*` headers): `Ok(Ok(info))` allowed, `Ok(Err(info))` over the limit.
    pub async fn check_with_info(
        &self,
        key: &str,
        per_minute: NonZeroU32,
    ) -> Result<Result<RateLimitInfo, RateLimitInfo>, StoreError> {
        let limit = per_minute.get();
        let counter = self.backend.key(&format!("rate:{limit}:{key}"));
        // Never resent: a request counted whose reply was lost must not count twice.
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .backend
            .run("rate limit", Retry::Never, |mut conn| {
                let mut call = self.gcra.prepare_invoke();
                call.key(&counter).arg(limit).arg(PERIOD_MICROS);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let info = RateLimitInfo {
            limit,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(limit),
            reset_secs: ceil_secs(reset_us),
            retry_after_secs: 0,
        };
        Ok(if allowed == 1 {
            Ok(info)
        } else {
            Err(RateLimitInfo {
                remaining: 0,
                reset_secs: info.reset_secs.max(1),
                retry_after_secs: ceil_secs(retry_us).max(1),
                ..info
            })
        })
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(micros: i64) -> u64 {
    u64::try_from(micros.max(0))
        .unwrap_or(0)
        .div_ceil(1_000_000)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        key: &str,
        per_minute: NonZeroU32,
    ) -> Result<Result<(), RateLimitInfo>, StoreError> {
        Ok(self.check_with_info(key, per_minute).await?.map(|_| ()))
    }
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("backend", &self.backend)
            .finish()
    }
}
