//! Helpers shared by the Redis integration tests.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use portcullis_core::StoreError;
use portcullis_core::cache::InvalidationSink;
use portcullis_core::store::conformance::invalidation::{
    InvalidationBus, OnGap, OnMessage, Subscription,
};
use portcullis_redis::RedisStores;

/// The Redis the tests use: `PORTCULLIS_TEST_REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses.
pub fn fresh_prefix() -> String {
    format!("portcullis-test:{}:", uuid::Uuid::new_v4())
}

/// Stores under a fresh prefix; `None` (after printing SKIPPED) when Redis is unreachable,
/// unless `CI=true`, where an unreachable Redis fails the test.
pub async fn connect() -> Option<RedisStores> {
    connect_prefix(&fresh_prefix()).await
}

/// [`connect`] under a given prefix (two instances sharing state use the same one).
pub async fn connect_prefix(prefix: &str) -> Option<RedisStores> {
    let url = redis_url();
    match RedisStores::connect(&url, prefix).await {
        Ok(stores) => Some(stores),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("Redis unreachable at {} with CI=true: {e}", redacted(&url))
        }
        Err(e) => {
            eprintln!("SKIPPED (Redis unreachable at {}): {e}", redacted(&url));
            None
        }
    }
}

/// `N` instances (each its own connections, as `N` servers would have) sharing one fresh
/// prefix, and that prefix; `None` as [`connect`].
pub async fn connect_shared<const N: usize>() -> Option<(String, [RedisStores; N])> {
    let prefix = fresh_prefix();
    let mut made = Vec::with_capacity(N);
    for _ in 0..N {
        made.push(connect_prefix(&prefix).await?);
    }
    Some((prefix, made.try_into().ok()?))
}

/// The URL without anything between `://` and `@` (credentials).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// One instance's invalidator, as the invalidation conformance suite drives it.
pub struct Instance(pub RedisStores);

#[async_trait::async_trait]
impl InvalidationBus for Instance {
    fn sink(&self) -> Arc<dyn InvalidationSink> {
        Arc::new(self.0.invalidator())
    }

    async fn subscribe(
        &self,
        on_message: OnMessage,
        on_gap: OnGap,
    ) -> Result<Subscription, StoreError> {
        let subscription = self
            .0
            .invalidator()
            .on_gap(on_gap)
            .subscribe(on_message)
            .await?;
        Ok(Box::new(subscription))
    }
}

/// `N` instances (each its own connections) on one fresh prefix; `None` as [`connect`].
pub async fn instances<const N: usize>() -> Option<[Arc<dyn InvalidationBus>; N]> {
    let prefix = fresh_prefix();
    let mut made: Vec<Arc<dyn InvalidationBus>> = Vec::with_capacity(N);
    for _ in 0..N {
        made.push(Arc::new(Instance(connect_prefix(&prefix).await?)));
    }
    made.try_into().ok()
}
