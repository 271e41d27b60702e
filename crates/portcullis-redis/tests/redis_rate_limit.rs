//! The Redis rate limiter: a limit of N refuses the N+1-th request, and instances share it.

mod common;

use std::num::NonZeroU32;

use portcullis_core::rate_limit::RateLimiter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_refused_with_sane_info() {
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
    let refused = limiter.check("key-a", five).await.unwrap().unwrap_err();
    assert_eq!((refused.limit, refused.remaining), (5, 0));
    // One request frees up every 60/5 = 12 s.
    assert!((1..=12).contains(&refused.retry_after_secs), "{refused:?}");
    assert!(
        (refused.retry_after_secs..=60).contains(&refused.reset_secs),
        "{refused:?}"
    );
    // Another key, and the same key under another limit, have their own buckets.
    assert_eq!(limiter.check("key-b", five).await.unwrap(), Ok(()));
    assert_eq!(
        limiter
            .check("key-a", NonZeroU32::new(6).unwrap())
            .await
            .unwrap(),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_count() {
    let prefix = common::fresh_prefix();
    let (Some(a), Some(b)) = (
        common::connect_prefix(&prefix).await,
        common::connect_prefix(&prefix).await,
    ) else {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_exceed_the_limit() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let limit = NonZeroU32::new(20).unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let limiter = redis.rate_limiter();
            tokio::spawn(async move { limiter.check("burst", limit).await.unwrap().is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += u32::from(t.await.unwrap());
    }
    // A refill takes 3 s per request; the burst is over long before that.
    assert_eq!(allowed, 20);
}
