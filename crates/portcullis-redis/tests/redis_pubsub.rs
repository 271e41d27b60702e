//! Cross-instance invalidation: every subscriber receives what one instance publishes.

// Test helpers outside #[test] fns unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use portcullis_core::api_key::{self, KeyHash};
use portcullis_core::ids::{ApiKeyId, SessionId, TokenId};
use portcullis_core::store::{ApiKeyStore, MemoryAgentDirectory, MemoryApiKeyStore};
use portcullis_core::testing;
use portcullis_core::{AuthError, Authenticator, Credential, StoreError};
use portcullis_redis::{Invalidation, RedisStores};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_subscribers_both_receive_an_invalidation_within_100ms() {
    // Three instances: two listen, one publishes.
    let Some((prefix, [one, two, publisher])) = common::connect_shared().await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriptions = Vec::new();
    for (name, instance) in [("one", &one), ("two", &two)] {
        let tx = tx.clone();
        subscriptions.push(
            instance
                .invalidator()
                .subscribe(move |what| {
                    let _ = tx.send((name, what, Instant::now()));
                })
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        publisher.invalidator().channel(),
        format!("{prefix}invalidate")
    );

    for what in [
        Invalidation::Session(SessionId::random()),
        Invalidation::ApiKey(KeyHash::of(b"ck_secret")),
        Invalidation::Token(TokenId::random()),
    ] {
        let sent = Instant::now();
        let receivers = publisher.invalidator().send(&what).await.unwrap();
        assert_eq!(receivers, 2);
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (name, got, at) = tokio::time::timeout(Duration::from_millis(100), rx.recv())
                .await
                .expect("delivered within 100 ms")
                .unwrap();
            assert_eq!(got, what);
            let latency = at.duration_since(sent);
            eprintln!("pub/sub latency to subscriber {name}: {latency:?}");
            assert!(latency < Duration::from_millis(100), "{latency:?}");
            seen.push(name);
        }
        seen.sort_unstable();
        assert_eq!(seen, ["one", "two"]);
    }

    // A dropped subscription stops receiving. Until Redis notices, a send reaches it and waits
    // for an ack that never comes: an error, not a success.
    drop(subscriptions);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sent = publisher
            .invalidator()
            .send(&Invalidation::Agent("a".into()))
            .await;
        if sent == Ok(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dropped subscribers still listening: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `send` returns only once each receiver's callback has returned: a callback that takes
/// 50 ms delays the send by as much, and what it did is visible the moment send returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_returns_only_after_every_subscriber_applied_the_message() {
    let Some((_, [one, two, publisher])) = common::connect_shared().await else {
        return;
    };
    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut subscriptions = Vec::new();
    for (name, instance, delay) in [("one", &one, 0), ("two", &two, 50)] {
        let applied = applied.clone();
        subscriptions.push(
            instance
                .invalidator()
                .subscribe_async(move |what| {
                    let applied = applied.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        applied.lock().unwrap().push((name, what));
                    }
                })
                .await
                .unwrap(),
        );
    }
    let invalidator = publisher.invalidator();
    for i in 0..20 {
        let what = Invalidation::Session(SessionId::from(format!("s{i}")));
        let started = Instant::now();
        assert_eq!(invalidator.send(&what).await, Ok(2));
        let took = started.elapsed();
        let mut seen: Vec<_> = applied
            .lock()
            .unwrap()
            .drain(..)
            .map(|(name, got)| {
                assert_eq!(got, what);
                name
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, ["one", "two"], "both applied it before send returned");
        assert!(took >= Duration::from_millis(50), "{took:?}");
    }
}

/// A subscriber that receives but never finishes applying: the publisher gives up after
/// `ack_timeout` with `Unavailable`, naming how many acknowledged, and a later send to
/// healthy subscribers succeeds again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_does_not_acknowledge_makes_send_fail_within_the_ack_timeout() {
    let Some((prefix, [healthy, stuck])) = common::connect_shared().await else {
        return;
    };
    let mut config = portcullis_redis::RedisConfig::default();
    config.ack_timeout = Duration::from_millis(300);
    let publisher = RedisStores::connect_with(&common::redis_url(), &prefix, config)
        .await
        .unwrap();
    let _ok = healthy.invalidator().subscribe(|_| {}).await.unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let stuck_subscription = stuck
        .invalidator()
        .subscribe_async(move |_| {
            let gate = gate.clone();
            async move { gate.notified().await }
        })
        .await
        .unwrap();

    let invalidator = publisher.invalidator();
    let started = Instant::now();
    let err = invalidator
        .send(&Invalidation::Agent("a".into()))
        .await
        .unwrap_err();
    let took = started.elapsed();
    let StoreError::Unavailable(msg) = &err else {
        panic!("{err:?}");
    };
    assert!(msg.contains("1 of 2 instances acknowledged"), "{msg}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );

    // The stuck one stops listening; the next send has one receiver, and succeeds.
    release.notify_one();
    drop(stuck_subscription);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match invalidator.send(&Invalidation::Agent("b".into())).await {
            Ok(1) => break,
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A message from an older publisher (no ack asked) is applied and not acknowledged; a
/// message asking for an ack gets exactly one per subscriber on the publisher's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_acknowledge_on_the_publishers_channel_once_applied() {
    let prefix = common::fresh_prefix();
    let Some(instance) = common::connect_prefix(&prefix).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _subscription = instance
        .invalidator()
        .subscribe(move |what| {
            let _ = tx.send(what);
        })
        .await
        .unwrap();
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut acks = client.get_async_pubsub().await.unwrap();
    acks.subscribe(format!("{prefix}invalidate:ack:publisher1"))
        .await
        .unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let publish = |payload: &'static str| {
        let mut conn = conn.clone();
        let channel = format!("{prefix}invalidate");
        async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(publish(r#"{"kind":"agent","id":"old"}"#).await, 1);
    assert_eq!(
        publish(r#"{"kind":"agent","id":"new","ack":{"to":"publisher1","id":"m1"}}"#).await,
        1
    );
    let mut stream = acks.on_message();
    let ack = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("acknowledged")
        .unwrap();
    let payload: String = ack.get_payload().unwrap();
    let (id, subscriber) = payload.split_once(' ').unwrap();
    assert_eq!(id, "m1", "only the message that asked is acknowledged");
    assert_eq!(subscriber.len(), 32, "{payload}");
    let old = rx.recv().await.unwrap();
    let new = rx.recv().await.unwrap();
    assert_eq!(
        (old, new),
        (
            Invalidation::Agent("old".into()),
            Invalidation::Agent("new".into())
        )
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err(),
        "one ack per message and subscriber"
    );
}

/// Two authenticators (two instances) sharing an API key store, announcing through Redis:
/// a key disabled on one is refused by the other from the moment the disable returns, not at
/// its cache's TTL (and re-enabled, accepted again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_disabled_on_one_instance_is_refused_by_the_other_at_once() {
    let Some((_, [redis_a, redis_b])) = common::connect_shared().await else {
        return;
    };
    // The API key store stands in for the SQL database both instances share.
    let api_keys: Arc<dyn ApiKeyStore> = Arc::new(MemoryApiKeyStore::default());
    let agents = Arc::new(MemoryAgentDirectory::default());
    let instance = |redis: &RedisStores| {
        Authenticator::builder()
            .stores(redis.stores_with(api_keys.clone(), agents.clone()))
            .invalidation_sink(Arc::new(redis.invalidator()))
            .build()
            .unwrap()
    };
    let (a, b) = (instance(&redis_a), instance(&redis_b));
    let _subscriptions = (
        redis_a
            .invalidator()
            .subscribe_authenticator(a.clone())
            .await
            .unwrap(),
        redis_b
            .invalidator()
            .subscribe_authenticator(b.clone())
            .await
            .unwrap(),
    );

    let generated = api_key::generate(&a.config().api_key_prefix);
    let id = ApiKeyId::random();
    api_keys
        .insert(testing::api_key_record(id.clone(), generated.hash))
        .await
        .unwrap();
    let key = generated.key.expose();
    // Both instances have it cached.
    assert!(a.resolve(Credential::ApiKey(key)).await.is_ok());
    assert!(b.resolve(Credential::ApiKey(key)).await.is_ok());

    // Acknowledged: once the disable returns, B refuses the key on its very next request.
    for round in 0..20 {
        let enabled = round % 2 == 1;
        assert!(a.set_api_key_enabled(&id, enabled).await.unwrap());
        let got = b.resolve(Credential::ApiKey(key)).await;
        if enabled {
            assert!(got.is_ok(), "round {round}: {got:?}");
        } else {
            assert_eq!(got, Err(AuthError::ApiKeyDisabled), "round {round}");
        }
    }
}

/// What acknowledgement adds to a revocation: `send` to two subscribers (PUBLISH, both apply,
/// both ack) against a bare PUBLISH, 200 times each; the figures go to BENCHMARKS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acknowledged_send_costs_about_one_more_round_trip_than_a_bare_publish() {
    let Some((prefix, [one, two, publisher])) = common::connect_shared().await else {
        return;
    };
    let _subs = (
        one.invalidator().subscribe(|_| {}).await.unwrap(),
        two.invalidator().subscribe(|_| {}).await.unwrap(),
    );
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let invalidator = publisher.invalidator();
    let (mut acked, mut bare) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let what = Invalidation::Token(TokenId::from(format!("t{i}")));
        let t = Instant::now();
        assert_eq!(invalidator.send(&what).await, Ok(2));
        acked.push(t.elapsed());
        let t = Instant::now();
        let n: u64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}unheard"))
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
        bare.push(t.elapsed());
    }
    acked.sort_unstable();
    bare.sort_unstable();
    println!(
        "acknowledged send to 2 subscribers: median {:?}, p95 {:?}; bare PUBLISH: median {:?}, p95 {:?}",
        acked[100], acked[190], bare[100], bare[190]
    );
    assert!(acked[100] < Duration::from_millis(50), "{:?}", acked[100]);
}
