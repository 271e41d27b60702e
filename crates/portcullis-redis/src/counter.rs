//! Fixed-window counters: `<prefix>count:<name>` counts events and expires with its window.
//! The sample server counts failed logins per email with it, on every instance at once.

use portcullis_core::StoreError;

use crate::{Backend, Retry};

/// Counts events per name in fixed windows, shared by every instance on this Redis and prefix.
#[derive(Clone)]
pub struct RedisCounter {
    backend: Backend,
}

impl RedisCounter {
    pub(crate) fn new(backend: Backend) -> Self {
        Self { backend }
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
}

impl std::fmt::Debug for RedisCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounter")
            .field("backend", &self.backend)
            .finish()
    }
}
