//! Denied `jti`s: `<prefix>deny:<jti>` holds the token's `exp` and expires at it.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::clock::UnixTime;
use portcullis_core::ids::TokenId;
use portcullis_core::store::Denylist;
use redis::Script;

use crate::{Backend, Retry};

/// Stores the later of the existing and the new expiry, and expires the key at it (a time
/// already past removes it at once: that token is dead anyway).
///
/// KEYS: deny key. ARGV: expires_at.
const DENY: &str = r"
local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local exp = tonumber(ARGV[1])
if exp > old then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('EXPIREAT', KEYS[1], exp)
end
return 1
";

/// Denied token ids in Redis, shared by every instance; each entry goes when its token
/// would have expired anyway.
#[derive(Clone)]
pub struct RedisDenylist {
    backend: Backend,
    deny: Arc<Script>,
}

impl RedisDenylist {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            deny: Arc::new(Script::new(DENY)),
        }
    }

    fn key(&self, jti: &TokenId) -> String {
        self.backend.key(&format!("deny:{jti}"))
    }
}

#[async_trait]
impl Denylist for RedisDenylist {
    async fn deny(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError> {
        let key = self.key(jti);
        // Idempotent (the later expiry wins), so safe to resend.
        let _: i64 = self
            .backend
            .run("deny token", Retry::Once, |mut conn| {
                let mut call = self.deny.prepare_invoke();
                call.key(&key).arg(expires_at);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(())
    }

    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError> {
        let key = self.key(jti);
        let until: Option<UnixTime> = self
            .backend
            .run("check denylist", Retry::Once, |mut conn| {
                let key = key.clone();
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        // The key may outlive `exp` by a moment, and `now` is the caller's clock: compare.
        Ok(until.is_some_and(|exp| exp > now))
    }
}

impl std::fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("backend", &self.backend)
            .finish()
    }
}
