//! The conformance suite of cross-instance invalidation: an [`InvalidationSink`] that
//! announces what one instance revoked, and the subscribers of the other instances that drop
//! it from their caches (`portcullis-redis`'s `Invalidator`, over pub/sub).
//!
//! What an implementation must do, whatever carries the messages:
//! - a published invalidation reaches every subscribed instance, and
//!   [`publish`](InvalidationSink::publish) returns only once each has applied it;
//! - publishing the same invalidation twice is harmless;
//! - a dropped subscription stops receiving, and publishing then still succeeds;
//! - a gap (a message an instance could not apply) calls that instance's gap handler, so it
//!   can drop everything it cached, and the subscription goes on.
//!
//! A backend crate adapts its implementation to [`InvalidationBus`] and runs the suite with
//! [`invalidation_conformance_tests!`](crate::invalidation_conformance_tests).
//! [`MemoryInvalidationBus`] is the in-process reference the suite runs on in core.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::api_key::KeyHash;
use crate::cache::{Invalidation, InvalidationSink};
use crate::error::StoreError;
use crate::ids::{AgentId, SessionId, TokenId, UserId};

/// What a subscriber calls for each invalidation.
pub type OnMessage = Box<dyn Fn(Invalidation) + Send + Sync>;
/// What a subscriber calls when invalidations may have been missed.
pub type OnGap = Box<dyn Fn() + Send + Sync>;
/// A running subscription: dropping it stops the subscriber.
pub type Subscription = Box<dyn Any + Send>;

/// One instance's end of an invalidation channel, as the suite drives it.
#[async_trait]
pub trait InvalidationBus: Send + Sync + 'static {
    /// Where this instance announces its revocations.
    fn sink(&self) -> Arc<dyn InvalidationSink>;

    /// Subscribes this instance: `on_message` for every invalidation published (by any
    /// instance) from the moment this returns, `on_gap` whenever some may have been missed.
    async fn subscribe(
        &self,
        on_message: OnMessage,
        on_gap: OnGap,
    ) -> Result<Subscription, StoreError>;
}

/// Every kind of invalidation, with fresh ids.
fn every_kind() -> [Invalidation; 5] {
    [
        Invalidation::ApiKey(KeyHash::of(crate::random::uuid().as_bytes())),
        Invalidation::Session(SessionId::random()),
        Invalidation::UserSessions(UserId::random()),
        Invalidation::Agent(AgentId::random()),
        Invalidation::Token(TokenId::random()),
    ]
}

type Log = Arc<Mutex<Vec<(&'static str, Invalidation)>>>;

/// Subscribes `bus` as `name`, recording what it applies in `log` and counting its gaps.
async fn recorder(
    bus: &dyn InvalidationBus,
    name: &'static str,
    log: &Log,
    gaps: &Arc<AtomicU64>,
) -> Subscription {
    let (log, gaps) = (log.clone(), gaps.clone());
    bus.subscribe(
        Box::new(move |what| {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((name, what));
        }),
        Box::new(move || {
            gaps.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .await
    .unwrap()
}

fn drain(log: &Log) -> Vec<(&'static str, Invalidation)> {
    let mut got: Vec<_> = log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    got.sort_by_key(|(name, _)| *name);
    got
}

/// Each kind of invalidation published by one instance has been applied by both other
/// (subscribed) instances by the time `publish` returns; publishing it again is harmless
/// and applied again.
pub async fn invalidation_reaches_every_subscriber_before_publish_returns(
    instances: [Arc<dyn InvalidationBus>; 3],
) {
    let [one, two, publisher] = instances;
    let (log, gaps) = (Log::default(), Arc::new(AtomicU64::new(0)));
    let _subscriptions = (
        recorder(&*one, "one", &log, &gaps).await,
        recorder(&*two, "two", &log, &gaps).await,
    );
    let sink = publisher.sink();
    for what in every_kind() {
        for _ in 0..2 {
            sink.publish(&what).await.unwrap();
            assert_eq!(
                drain(&log),
                [("one", what.clone()), ("two", what.clone())],
                "both applied it before publish returned"
            );
        }
    }
    assert_eq!(
        gaps.load(Ordering::SeqCst),
        0,
        "no gap on a healthy channel"
    );
}

/// A dropped subscription stops receiving; publishing goes on succeeding for the others.
/// (Until the transport notices the subscriber left, a publish may fail waiting for it,
/// never succeed without the others having applied it.)
pub async fn invalidation_stops_at_a_dropped_subscription(
    instances: [Arc<dyn InvalidationBus>; 3],
) {
    let [one, two, publisher] = instances;
    let (log, gaps) = (Log::default(), Arc::new(AtomicU64::new(0)));
    let kept = recorder(&*one, "one", &log, &gaps).await;
    let dropped = recorder(&*two, "two", &log, &gaps).await;
    let sink = publisher.sink();
    drop(dropped);
    let deadline = Instant::now() + Duration::from_secs(5);
    let what = Invalidation::Agent(AgentId::random());
    loop {
        let published = sink.publish(&what).await;
        let got = drain(&log);
        if published.is_ok() && got == [("one", what.clone())] {
            break;
        }
        if published.is_ok() {
            assert_eq!(got.first(), Some(&("one", what.clone())), "{got:?}");
        }
        assert!(
            Instant::now() < deadline,
            "a dropped subscriber still listening: {published:?} {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for what in every_kind() {
        sink.publish(&what).await.unwrap();
        assert_eq!(drain(&log), [("one", what)]);
    }
    drop(kept);
}

/// A message an instance fails to apply (its callback panics) is a gap: that instance's gap
/// handler runs (it drops everything instead), the publish is still confirmed, the other
/// instance applies the message, and the failing instance goes on receiving.
pub async fn invalidation_gap_when_a_message_cannot_be_applied(
    instances: [Arc<dyn InvalidationBus>; 3],
) {
    let [healthy, failing, publisher] = instances;
    let (log, gaps) = (Log::default(), Arc::new(AtomicU64::new(0)));
    let _healthy = recorder(&*healthy, "healthy", &log, &gaps).await;
    let poison = Invalidation::Session(SessionId::random());
    let failing_gaps = Arc::new(AtomicU64::new(0));
    let _failing = {
        let (log, poison, gaps) = (log.clone(), poison.clone(), failing_gaps.clone());
        failing
            .subscribe(
                Box::new(move |what| {
                    if what == poison {
                        // Unwinds as a panic would, without the panic hook's backtrace (slow
                        // enough to outlast a publisher's wait for acknowledgements).
                        std::panic::resume_unwind(Box::new("this instance cannot apply it"));
                    }
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(("failing", what));
                }),
                Box::new(move || {
                    gaps.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .await
            .unwrap()
    };
    let sink = publisher.sink();
    if let Err(e) = sink.publish(&poison).await {
        panic!(
            "a message applied everywhere it could be, and a gap ({} reported) where it \
             could not, is confirmed: {e:?}",
            failing_gaps.load(Ordering::SeqCst)
        );
    }
    assert_eq!(drain(&log), [("healthy", poison)]);
    assert_eq!(failing_gaps.load(Ordering::SeqCst), 1, "one gap reported");
    let next = Invalidation::Token(TokenId::random());
    sink.publish(&next).await.unwrap();
    assert_eq!(
        drain(&log),
        [("failing", next.clone()), ("healthy", next)],
        "the failing instance goes on receiving"
    );
    assert_eq!(failing_gaps.load(Ordering::SeqCst), 1);
    assert_eq!(
        gaps.load(Ordering::SeqCst),
        0,
        "the healthy instance saw no gap"
    );
}

type Subscriber = (u64, Arc<OnMessage>, Arc<OnGap>);

/// The in-process reference: every instance made by [`instances`](Self::instances) shares one
/// list of subscribers, and `publish` applies the message to each before it returns.
#[derive(Clone, Default)]
pub struct MemoryInvalidationBus {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemoryInvalidationBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryInvalidationBus")
            .finish_non_exhaustive()
    }
}

impl MemoryInvalidationBus {
    /// `N` instances on one channel.
    pub fn instances<const N: usize>() -> [Arc<dyn InvalidationBus>; N] {
        let bus = Self::default();
        std::array::from_fn(|_| Arc::new(bus.clone()) as Arc<dyn InvalidationBus>)
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl InvalidationSink for MemoryInvalidationBus {
    async fn publish(&self, what: &Invalidation) -> Result<(), StoreError> {
        let subscribers = self.subscribers().clone();
        for (_, on_message, on_gap) in subscribers {
            let applied =
                std::panic::catch_unwind(AssertUnwindSafe(|| on_message(what.clone()))).is_ok();
            if !applied {
                on_gap();
            }
        }
        Ok(())
    }
}

/// Removes its subscriber from the list when dropped.
struct MemorySubscription {
    bus: MemoryInvalidationBus,
    id: u64,
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.bus.subscribers().retain(|(id, _, _)| *id != self.id);
    }
}

#[async_trait]
impl InvalidationBus for MemoryInvalidationBus {
    fn sink(&self) -> Arc<dyn InvalidationSink> {
        Arc::new(self.clone())
    }

    async fn subscribe(
        &self,
        on_message: OnMessage,
        on_gap: OnGap,
    ) -> Result<Subscription, StoreError> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.subscribers()
            .push((id, Arc::new(on_message), Arc::new(on_gap)));
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            id,
        }))
    }
}

/// Runs every invalidation conformance check as its own `#[tokio::test]` against the three
/// instances on one channel that `$factory` (a future of `[Arc<dyn InvalidationBus>; 3]`)
/// makes; with `optional:`, a future of `Option<…>`, a test whose factory yields `None`
/// returns at once (the factory says SKIPPED, and fails instead under CI).
#[macro_export]
macro_rules! invalidation_conformance_tests {
    (optional: $factory:expr) => {
        $crate::__optional_conformance_tests!(invalidation; $factory;
            invalidation_reaches_every_subscriber_before_publish_returns,
            invalidation_stops_at_a_dropped_subscription,
            invalidation_gap_when_a_message_cannot_be_applied);
    };
    ($factory:expr) => {
        $crate::invalidation_conformance_tests!(optional: async { Some($factory.await) });
    };
}
