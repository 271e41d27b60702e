//! Cross-instance invalidation: every subscriber receives what one instance publishes.

// Test helpers outside #[test] fns unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::api_key::{self, ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::ids::{ApiKeyId, SessionId, TokenId, UserId};
use portcullis_core::store::{ApiKeyStore, MemoryAgentDirectory, MemoryApiKeyStore};
use portcullis_core::{AuthError, Authenticator, Credential, seed};
use portcullis_redis::{Invalidation, RedisStores};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_subscribers_both_receive_an_invalidation_within_100ms() {
    let prefix = common::fresh_prefix();
    // Three instances: two listen, one publishes.
    let (Some(one), Some(two), Some(publisher)) = (
        common::connect_prefix(&prefix).await,
        common::connect_prefix(&prefix).await,
        common::connect_prefix(&prefix).await,
    ) else {
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

    // A dropped subscription stops receiving.
    drop(subscriptions);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let receivers = publisher
            .invalidator()
            .send(&Invalidation::Agent("a".into()))
            .await
            .unwrap();
        if receivers == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dropped subscribers still listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two authenticators (two instances) sharing an API key store, announcing through Redis:
/// a key disabled on one is refused by the other at once, not at its cache's TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_disabled_on_one_instance_is_refused_by_the_other_at_once() {
    let prefix = common::fresh_prefix();
    let (Some(redis_a), Some(redis_b)) = (
        common::connect_prefix(&prefix).await,
        common::connect_prefix(&prefix).await,
    ) else {
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
        .insert(ApiKeyRecord {
            id: id.clone(),
            name: "k".into(),
            hash: generated.hash,
            display_prefix: generated.display_prefix.clone(),
            created_by: UserId::from("u").into(),
            owner: KeyOwner::User(UserId::from("u")),
            org_id: "acme".into(),
            permissions: seed::MEMORY_ALL,
            created_at: 0,
            expires_at: None,
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let key = generated.key.expose();
    // Both instances have it cached.
    assert!(a.resolve(Credential::ApiKey(key)).await.is_ok());
    assert!(b.resolve(Credential::ApiKey(key)).await.is_ok());

    let disabled = Instant::now();
    assert!(a.set_api_key_enabled(&id, false).await.unwrap());
    loop {
        match b.resolve(Credential::ApiKey(key)).await {
            Err(AuthError::ApiKeyDisabled) => break,
            other => {
                assert!(other.is_ok(), "{other:?}");
                assert!(
                    disabled.elapsed() < Duration::from_secs(1),
                    "the other instance still serves the disabled key from its cache"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    eprintln!(
        "disabled on instance A, refused by instance B after {:?}",
        disabled.elapsed()
    );
}
