//! The conformance suite of the limits: every [`RateLimiter`] (core's in-memory GCRA,
//! `portcullis-redis`'s Lua GCRA) and every [`LoginThrottle`] (in memory, or over a
//! [`SharedCounter`](crate::throttle::SharedCounter) such as Redis's).
//!
//! A backend crate runs it with
//! [`limit_conformance_tests!`](crate::limit_conformance_tests), giving async factories for a
//! fresh limiter and a fresh throttle (or, with `optional:`, factories that may yield none, to
//! skip when the backend is unreachable).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{AuthError, RateLimitInfo};
use crate::rate_limit::RateLimiter;
use crate::throttle::{LoginThrottle, MAX_CHECKS, WINDOW_SECS};

/// A key no other test (or run) uses: backends may share state between tests.
fn fresh(what: &str) -> String {
    format!("conformance-{what}-{}", crate::random::uuid())
}

fn per_minute(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// `n` requests of `key` under `limit` a minute that must all be allowed.
async fn allow(limiter: &dyn RateLimiter, key: &str, limit: NonZeroU32, n: u32) {
    for i in 0..n {
        assert_eq!(
            limiter.check(key, limit).await.unwrap(),
            Ok(()),
            "request {} of {n} under {limit}/min",
            i + 1
        );
    }
}

/// One request of `key` that must be refused; its info.
async fn refused(limiter: &dyn RateLimiter, key: &str, limit: NonZeroU32) -> RateLimitInfo {
    match limiter.check(key, limit).await.unwrap() {
        Ok(()) => panic!("a request over {limit}/min was allowed"),
        Err(info) => info,
    }
}

/// The refusal says which limit, that nothing remains, when to retry (the next request frees
/// up within `60 / limit` seconds) and when the bucket is full again (within the minute).
fn assert_refusal(info: &RateLimitInfo, limit: u32) {
    assert_eq!((info.limit, info.remaining), (limit, 0), "{info:?}");
    let refill = 60_u64.div_ceil(u64::from(limit)).max(1);
    assert!(
        (1..=refill).contains(&info.retry_after_secs),
        "retry within {refill} s: {info:?}"
    );
    assert!(
        (info.retry_after_secs..=60).contains(&info.reset_secs),
        "reset after the retry and within the minute: {info:?}"
    );
}

/// A burst of exactly the per-minute limit, then a refusal with its retry information; the
/// same key under another limit has a bucket of its own.
pub async fn rate_limit_refuses_over_the_limit(limiter: Arc<dyn RateLimiter>) {
    let key = fresh("over");
    allow(&*limiter, &key, per_minute(5), 5).await;
    let info = refused(&*limiter, &key, per_minute(5)).await;
    assert_refusal(&info, 5);
    // Refusals are not counted: asking again is refused alike, not later.
    assert_refusal(&refused(&*limiter, &key, per_minute(5)).await, 5);
    assert_eq!(limiter.check(&key, per_minute(6)).await.unwrap(), Ok(()));
}

/// Keys are independent: one key's burst neither uses up nor refills another's.
pub async fn rate_limit_keys_are_independent(limiter: Arc<dyn RateLimiter>) {
    let (a, b) = (fresh("a"), fresh("b"));
    let three = per_minute(3);
    allow(&*limiter, &a, three, 3).await;
    assert_refusal(&refused(&*limiter, &a, three).await, 3);
    allow(&*limiter, &b, three, 3).await;
    assert_refusal(&refused(&*limiter, &b, three).await, 3);
    assert_refusal(&refused(&*limiter, &a, three).await, 3);
}

/// The bucket refills on the clock: under 60 a minute, one request frees up every second,
/// and a refused client that waits the `Retry-After` it was given is allowed once.
pub async fn rate_limit_refills_on_the_clock(limiter: Arc<dyn RateLimiter>) {
    let key = fresh("refill");
    let sixty = per_minute(60);
    allow(&*limiter, &key, sixty, 60).await;
    let info = refused(&*limiter, &key, sixty).await;
    assert_refusal(&info, 60);
    assert_eq!(info.retry_after_secs, 1, "{info:?}");
    tokio::time::sleep(Duration::from_secs(info.retry_after_secs) + Duration::from_millis(100))
        .await;
    assert_eq!(
        limiter.check(&key, sixty).await.unwrap(),
        Ok(()),
        "allowed again after Retry-After"
    );
    // One request freed up, one taken: the next waits for the next second.
    assert_refusal(&refused(&*limiter, &key, sixty).await, 60);
}

/// However many requests arrive at once, no more than the limit are allowed.
pub async fn rate_limit_concurrent_requests_never_exceed_the_limit(limiter: Arc<dyn RateLimiter>) {
    let key = Arc::<str>::from(fresh("burst"));
    let limit = per_minute(20);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (limiter, key) = (limiter.clone(), key.clone());
            tokio::spawn(async move { limiter.check(&key, limit).await.unwrap().is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += u32::from(t.await.unwrap());
    }
    // A refill takes 3 s per request; the burst is over long before that.
    assert_eq!(allowed, 20);
}

/// The eleventh password check of an email in its window is refused with the window's
/// retry information; another email has its own window; a slot given back is taken again.
pub async fn login_throttle_refuses_the_eleventh_check(throttle: LoginThrottle) {
    let (a, b) = (fresh("a@example.com"), fresh("b@example.com"));
    for _ in 0..MAX_CHECKS {
        throttle.reserve(&a).await.unwrap();
    }
    let Err(AuthError::RateLimited(info)) = throttle.reserve(&a).await else {
        panic!("the 11th check must be refused");
    };
    assert_eq!((info.limit, info.remaining), (10, 0));
    assert!(
        (1..=WINDOW_SECS).contains(&info.retry_after_secs),
        "{info:?}"
    );
    assert_eq!(info.reset_secs, info.retry_after_secs, "{info:?}");
    throttle.reserve(&b).await.unwrap();
    throttle.release(&a).await.unwrap();
    throttle.reserve(&a).await.unwrap();
    assert!(throttle.reserve(&a).await.is_err());
    // Giving back a slot of an email never reserved changes nothing.
    let c = fresh("c@example.com");
    throttle.release(&c).await.unwrap();
    for _ in 0..MAX_CHECKS {
        throttle.reserve(&c).await.unwrap();
    }
    assert!(throttle.reserve(&c).await.is_err());
}

/// Of 200 concurrent checks of one email, exactly [`MAX_CHECKS`] get a slot.
pub async fn login_throttle_concurrent_checks_take_exactly_the_limit(throttle: LoginThrottle) {
    let email = Arc::<str>::from(fresh("burst@example.com"));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (t, email) = (throttle.clone(), email.clone());
            tokio::spawn(async move { t.reserve(&email).await.is_ok() })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += u64::from(task.await.unwrap());
    }
    assert_eq!(taken, MAX_CHECKS);
}

/// Runs every limit conformance check as its own `#[tokio::test]`: the rate-limiter checks
/// against what `$limiter` (a future of `Arc<dyn RateLimiter>`) makes, the throttle checks
/// against what `$throttle` (a future of [`LoginThrottle`]) makes.
///
/// With `optional:`, the factories are futures of `Option<…>`, and a test whose factory
/// yields `None` returns at once (the factory says SKIPPED; under CI it should fail instead).
#[macro_export]
macro_rules! limit_conformance_tests {
    (optional: limiter = $limiter:expr, throttle = $throttle:expr $(,)?) => {
        $crate::__optional_conformance_tests!(limits; $limiter;
            rate_limit_refuses_over_the_limit, rate_limit_keys_are_independent,
            rate_limit_refills_on_the_clock, rate_limit_concurrent_requests_never_exceed_the_limit);
        $crate::__optional_conformance_tests!(limits; $throttle;
            login_throttle_refuses_the_eleventh_check,
            login_throttle_concurrent_checks_take_exactly_the_limit);
    };
    (limiter = $limiter:expr, throttle = $throttle:expr $(,)?) => {
        $crate::limit_conformance_tests!(optional:
            limiter = async { Some($limiter.await) },
            throttle = async { Some($throttle.await) });
    };
}
