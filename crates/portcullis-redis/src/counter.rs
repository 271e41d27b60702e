//! Fixed-window counters: `<prefix>count:<name>` counts events and expires with its window.
//! The login throttle (`portcullis_core::throttle`) counts password checks per email with it,
//! on every instance at once, through [`SharedCounter`].

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::throttle::{SharedCounter, Slot};
use redis::Script;

use crate::{Backend, Retry};

/// Takes one of `limit` slots in the window, or none when all are taken: check and count in
/// one step, so that a burst can never take more than `limit` (a GET then an INCR could).
///
/// KEYS: counter. ARGV: limit, window (ms). Returns {taken (1/0), count after, ms left}.
const RESERVE: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= tonumber(ARGV[1]) then
  return {0, n, redis.call('PTTL', KEYS[1])}
end
n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {1, n, ttl}
";

/// Gives a slot back, only while its window is open (a DECR on an expired key would create
/// a negative counter that never expires). KEYS: counter.
const RELEASE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
";

/// What [`RedisCounter::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// True when a slot was taken.
    pub taken: bool,
    /// Slots taken in the window, this one included.
    pub count: u64,
    /// Milliseconds until the window closes.
    pub reset_ms: u64,
}

/// Counts events per name in fixed windows, shared by every instance on this Redis and prefix.
#[derive(Clone)]
pub struct RedisCounter {
    backend: Backend,
    reserve: Arc<Script>,
    release: Arc<Script>,
}

impl RedisCounter {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            reserve: Arc::new(Script::new(RESERVE)),
            release: Arc::new(Script::new(RELEASE)),
        }
    }

    fn key(&self, name: &str) -> String {
        self.backend.key(&format!("count:{name}"))
    }

    /// The count in `name`'s current window (0 when none is open).
    pub async fn get(&self, name: &str) -> Result<u64, StoreError> {
        let key = self.key(name);
        let n: Option<u64> = self
            .backend
            .run("read counter", Retry::Once, |mut conn| {
                let key = key.clone();
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Adds one to `name`'s window, opening a window of `window_secs` if none is open;
    /// returns the new count. Not resent after a broken connection (it would count twice).
    pub async fn incr(&self, name: &str, window_secs: u64) -> Result<u64, StoreError> {
        let key = self.key(name);
        let (n, _): (u64, i64) = self
            .backend
            .run("count", Retry::Never, |mut conn| {
                let key = key.clone();
                async move {
                    redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg(&key)
                        .cmd("EXPIRE")
                        .arg(&key)
                        .arg(window_secs)
                        .arg("NX")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(n)
    }

    /// Atomically takes one of `limit` slots of `name`'s window (opening a window of
    /// `window_secs` if none is open), or reports that none is left. Not resent after a
    /// broken connection (it would take two).
    pub async fn reserve(
        &self,
        name: &str,
        limit: u64,
        window_secs: u64,
    ) -> Result<Reservation, StoreError> {
        let key = self.key(name);
        let (taken, count, reset_ms): (i64, i64, i64) = self
            .backend
            .run("reserve", Retry::Never, |mut conn| {
                let mut call = self.reserve.prepare_invoke();
                call.key(&key)
                    .arg(limit)
                    .arg(window_secs.saturating_mul(1000));
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(Reservation {
            taken: taken == 1,
            count: u64::try_from(count).unwrap_or(0),
            reset_ms: u64::try_from(reset_ms).unwrap_or(0),
        })
    }

    /// Gives back a slot taken by [`reserve`](Self::reserve) whose event did not happen; a
    /// no-op once the window has closed.
    pub async fn release(&self, name: &str) -> Result<(), StoreError> {
        let key = self.key(name);
        let _: i64 = self
            .backend
            .run("release", Retry::Never, |mut conn| {
                let mut call = self.release.prepare_invoke();
                call.key(&key);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(())
    }
}

/// The login throttle's shared counter: `RedisStores::login_throttle` (`LoginThrottle::shared`
/// over this counter) counts password checks on every instance at once.
#[async_trait]
impl SharedCounter for RedisCounter {
    async fn reserve(&self, name: &str, limit: u64, window_secs: u64) -> Result<Slot, StoreError> {
        let r = RedisCounter::reserve(self, name, limit, window_secs).await?;
        Ok(Slot {
            taken: r.taken,
            reset_ms: r.reset_ms,
        })
    }

    async fn release(&self, name: &str) -> Result<(), StoreError> {
        RedisCounter::release(self, name).await
    }
}

impl std::fmt::Debug for RedisCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounter")
            .field("backend", &self.backend)
            .finish()
    }
}
