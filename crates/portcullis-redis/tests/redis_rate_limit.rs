//! The Redis rate limiter beyond the shared suite (`redis_conformance.rs`): what an allowed
//! request leaves, and two instances sharing one count.

mod common;

use std::num::NonZeroU32;

use portcullis_core::rate_limit::RateLimiter;

/// What only Redis's limiter tells: the state after an allowed request (for `RateLimit-*`
/// headers). The refusal and its retry information, independent keys and limits, the refill
/// and concurrent bursts are the shared rate-limiter conformance suite's
/// (`redis_conformance.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_requests_count_down_the_remaining() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let limiter = redis.rate_limiter();
    let five = NonZeroU32::new(5).unwrap();
    for expected_remaining in (0..5).rev() {
        let info = limiter
            .check_with_info("key-a", five)
            .await
            .unwrap()
            .expect("within the limit");
        assert_eq!((info.limit, info.remaining), (5, expected_remaining));
        assert!((1..=60).contains(&info.reset_secs), "{info:?}");
    }
    let refused = limiter
        .check_with_info("key-a", five)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((refused.limit, refused.remaining), (5, 0));
    assert!(
        (refused.retry_after_secs..=60).contains(&refused.reset_secs),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_count() {
    let Some((_, [a, b])) = common::connect_shared().await else {
        return;
    };
    // Two connections, as two server instances would have.
    let (a, b) = (a.rate_limiter(), b.rate_limiter());
    let three = NonZeroU32::new(3).unwrap();
    assert_eq!(a.check("shared", three).await.unwrap(), Ok(()));
    assert_eq!(b.check("shared", three).await.unwrap(), Ok(()));
    assert_eq!(a.check("shared", three).await.unwrap(), Ok(()));
    let refused_b = b.check("shared", three).await.unwrap().unwrap_err();
    let refused_a = a.check("shared", three).await.unwrap().unwrap_err();
    for info in [refused_a, refused_b] {
        assert_eq!((info.limit, info.remaining), (3, 0));
        assert!((1..=20).contains(&info.retry_after_secs), "{info:?}");
    }
}
