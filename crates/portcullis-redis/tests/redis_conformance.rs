//! The shared conformance suites against Redis: the stores, the rate limiter and login
//! throttle, and cross-instance invalidation over pub/sub.
//!
//! Redis holds sessions and the `jti` denylist; API keys and agents live in SQL in this
//! design, so the store suite runs with in-memory stores for those two. The session and
//! denylist checks (rotation, reuse, revoke-all, expiry, the concurrent refresh race, denylist
//! expiry) are the ones that exercise Redis. Each test gets its own random key prefix.
//!
//! When Redis is unreachable every test here fails under `CI=true` and otherwise prints
//! SKIPPED and returns without checking anything: nothing runs on memory in Redis's name.

mod common;

use std::sync::Arc;

use portcullis_core::rate_limit::RateLimiter;
use portcullis_core::store::{MemoryAgentDirectory, MemoryApiKeyStore};

portcullis_core::store_conformance_tests!(optional: async {
    // Redis sessions and denylist; API keys and agents in memory (they live in SQL).
    common::connect().await.map(|redis| {
        redis.stores_with(
            Arc::new(MemoryApiKeyStore::default()),
            Arc::new(MemoryAgentDirectory::default()),
        )
    })
});

portcullis_core::limit_conformance_tests!(optional:
    limiter = async {
        common::connect()
            .await
            .map(|redis| Arc::new(redis.rate_limiter()) as Arc<dyn RateLimiter>)
    },
    throttle = async { common::connect().await.map(|redis| redis.login_throttle()) },
);

portcullis_core::invalidation_conformance_tests!(optional: common::instances::<3>());
