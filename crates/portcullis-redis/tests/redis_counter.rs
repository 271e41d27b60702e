//! The fixed-window counter's reservations: a burst takes exactly the limit, however many
//! ask at once, and a slot given back is taken again.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reservations_takes_exactly_the_limit() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let counter = redis.counter();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = counter.clone();
            tokio::spawn(async move { c.reserve("burst", 10, 60).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!((1..=60_000).contains(&r.reset_ms), "{r:?}");
        taken += u32::from(r.taken);
    }
    assert_eq!(taken, 10);
    // The refusals did not count: one slot given back is one slot to take.
    counter.release("burst").await.unwrap();
    let again = counter.reserve("burst", 10, 60).await.unwrap();
    assert!(again.taken, "{again:?}");
    assert_eq!(again.count, 10);
    assert!(!counter.reserve("burst", 10, 60).await.unwrap().taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_without_an_open_window_creates_nothing() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let counter = redis.counter();
    counter.release("never-reserved").await.unwrap();
    assert_eq!(counter.get("never-reserved").await.unwrap(), 0);
    let first = counter.reserve("never-reserved", 1, 60).await.unwrap();
    assert!(first.taken && first.count == 1, "{first:?}");
}
