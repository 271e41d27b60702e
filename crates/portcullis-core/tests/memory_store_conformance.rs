//! The shared conformance suites against the in-memory implementations: the stores, the rate
//! limiter and login throttle, and the in-process invalidation bus.
#![cfg(feature = "conformance")]

use std::sync::Arc;

use portcullis_core::rate_limit::{MemoryRateLimiter, RateLimiter};
use portcullis_core::store::conformance::Stores;
use portcullis_core::store::conformance::invalidation::MemoryInvalidationBus;
use portcullis_core::throttle::LoginThrottle;

portcullis_core::store_conformance_tests!(async { Stores::memory() });

portcullis_core::limit_conformance_tests!(
    limiter = async { Arc::new(MemoryRateLimiter::default()) as Arc<dyn RateLimiter> },
    throttle = async { LoginThrottle::memory() },
);

portcullis_core::invalidation_conformance_tests!(async { MemoryInvalidationBus::instances::<3>() });
