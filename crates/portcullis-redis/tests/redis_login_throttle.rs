//! The login throttle shared through Redis: `RedisCounter` as the core's `SharedCounter`.
//! Two instances on one prefix share each email's ten password checks a minute.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use portcullis_core::AuthError;
use portcullis_core::throttle::{MAX_CHECKS, SharedCounter, WINDOW_SECS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slot_maps_the_reservation() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let counter: Arc<dyn SharedCounter> = Arc::new(redis.counter());
    let first = counter.reserve("slot", 1, 60).await.unwrap();
    assert!(first.taken);
    assert!((1..=60_000).contains(&first.reset_ms), "{first:?}");
    let refused = counter.reserve("slot", 1, 60).await.unwrap();
    assert!(!refused.taken);
    assert!((1..=60_000).contains(&refused.reset_ms), "{refused:?}");
    counter.release("slot").await.unwrap();
    assert!(counter.reserve("slot", 1, 60).await.unwrap().taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_ten_checks_and_the_eleventh_is_429() {
    let Some((_, [a, b])) = common::connect_shared().await else {
        return;
    };
    let a = a.login_throttle();
    let b = b.login_throttle();
    for i in 0..MAX_CHECKS {
        let t = if i % 2 == 0 { &a } else { &b };
        t.reserve("ada@example.com").await.unwrap();
    }
    let Err(AuthError::RateLimited(info)) = b.reserve("ada@example.com").await else {
        panic!("the 11th check, on either instance, must be refused");
    };
    assert_eq!((info.limit, info.remaining), (10, 0));
    assert!(
        (1..=WINDOW_SECS).contains(&info.retry_after_secs),
        "{info:?}"
    );
    assert!(a.reserve("ada@example.com").await.is_err());
    // Another email has its own window; a slot given back on one instance is taken on the other.
    a.reserve("bob@example.com").await.unwrap();
    a.release("ada@example.com").await.unwrap();
    b.reserve("ada@example.com").await.unwrap();
    assert!(a.reserve("ada@example.com").await.is_err());
}
