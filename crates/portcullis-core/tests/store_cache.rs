//! The caches in front of the stores: single-flight, negative entries, errors never cached,
//! invalidation at once.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::TestKeys;

use async_trait::async_trait;
use portcullis_core::api_key::{self, ApiKeyRecord, KeyHash};
use portcullis_core::cache::{Invalidation, InvalidationSink};
use portcullis_core::ids::ApiKeyId;
use portcullis_core::store::{ApiKeyStore, Stores};
use portcullis_core::testing;
use portcullis_core::{AuthError, Authenticator, Credential, StoreError};

#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Invalidation>>);

#[async_trait]
impl InvalidationSink for Recorder {
    async fn publish(&self, what: &Invalidation) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(what.clone());
        Ok(())
    }
}

struct Fx {
    auth: Authenticator,
    store: Arc<TestKeys>,
    sink: Arc<Recorder>,
}

fn fx() -> Fx {
    let store = Arc::new(TestKeys::default());
    let sink = Arc::new(Recorder::default());
    let stores = Stores {
        api_keys: store.clone(),
        ..Stores::memory()
    };
    let auth = Authenticator::builder()
        .stores(stores)
        .invalidation_sink(sink.clone())
        .build()
        .unwrap();
    Fx { auth, store, sink }
}

async fn new_key(fx: &Fx) -> (String, ApiKeyId) {
    let g = api_key::generate(&fx.auth.config().api_key_prefix);
    let id = ApiKeyId::random();
    fx.store
        .insert(testing::api_key_record(id.clone(), g.hash))
        .await
        .unwrap();
    (g.key.expose().to_owned(), id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_for_one_uncached_key_makes_one_store_query() {
    let fx = fx();
    let (key, _) = new_key(&fx).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let auth = fx.auth.clone();
            let key = key.clone();
            tokio::spawn(async move { auth.resolve(Credential::ApiKey(&key)).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(fx.store.lookups.load(Ordering::SeqCst), 1);
    // And later requests are served from the cache.
    fx.auth.resolve(Credential::ApiKey(&key)).await.unwrap();
    assert_eq!(fx.store.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_repeated_unknown_key_is_answered_from_the_negative_cache() {
    let fx = fx();
    let unknown = api_key::generate(&fx.auth.config().api_key_prefix);
    for _ in 0..100 {
        assert_eq!(
            fx.auth
                .resolve(Credential::ApiKey(unknown.key.expose()))
                .await,
            Err(AuthError::InvalidApiKey)
        );
    }
    assert_eq!(fx.store.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_forged_key_never_reaches_the_store() {
    let fx = fx();
    let forged = format!("ck_{}", "A".repeat(49));
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&forged)).await,
        Err(AuthError::InvalidApiKey)
    );
    assert_eq!(fx.store.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn store_errors_are_not_cached_and_the_next_request_recovers() {
    let fx = fx();
    let (key, _) = new_key(&fx).await;
    fx.store.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert!(matches!(
            fx.auth.resolve(Credential::ApiKey(&key)).await,
            Err(AuthError::Unavailable(_))
        ));
    }
    fx.store.down.store(false, Ordering::SeqCst);
    assert!(fx.auth.resolve(Credential::ApiKey(&key)).await.is_ok());
    assert_eq!(fx.store.lookups.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn disabling_or_deleting_through_the_authenticator_takes_effect_at_once_and_is_announced() {
    let fx = fx();
    let (key, id) = new_key(&fx).await;
    let hash = KeyHash::of(key.as_bytes());
    assert!(fx.auth.resolve(Credential::ApiKey(&key)).await.is_ok());
    assert!(fx.auth.set_api_key_enabled(&id, false).await.unwrap());
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&key)).await,
        Err(AuthError::ApiKeyDisabled)
    );
    assert!(fx.auth.set_api_key_enabled(&id, true).await.unwrap());
    assert!(fx.auth.resolve(Credential::ApiKey(&key)).await.is_ok());
    assert!(fx.auth.delete_api_key(&id).await.unwrap());
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&key)).await,
        Err(AuthError::InvalidApiKey)
    );
    assert_eq!(
        *fx.sink.0.lock().unwrap(),
        vec![Invalidation::ApiKey(hash); 4],
        "every change is announced to the other instances (a delete twice: disabled, then gone)"
    );
    assert!(!fx.auth.delete_api_key(&id).await.unwrap(), "already gone");
}

#[tokio::test]
async fn an_invalidation_from_another_instance_drops_the_entry() {
    let fx = fx();
    let (key, id) = new_key(&fx).await;
    assert!(fx.auth.resolve(Credential::ApiKey(&key)).await.is_ok());
    // Another instance disabled it: the store changed behind this one's back…
    fx.store.set_enabled(&id, false).await.unwrap();
    assert!(
        fx.auth.resolve(Credential::ApiKey(&key)).await.is_ok(),
        "still cached"
    );
    // …and its announcement arrives.
    fx.auth
        .invalidate(&Invalidation::ApiKey(KeyHash::of(key.as_bytes())))
        .await;
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&key)).await,
        Err(AuthError::ApiKeyDisabled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_in_flight_during_a_revocation_does_not_bring_the_old_record_back() {
    let fx = fx();
    let (key, id) = new_key(&fx).await;
    let (entered, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    *fx.store.hold.lock().unwrap() = Some((entered.clone(), release.clone()));
    let (auth, k) = (fx.auth.clone(), key.clone());
    let in_flight = tokio::spawn(async move { auth.resolve(Credential::ApiKey(&k)).await });
    entered.notified().await; // the load has read the enabled record…
    assert!(fx.auth.set_api_key_enabled(&id, false).await.unwrap()); // …and the key is disabled
    release.notify_one();
    // The request that raced the revocation may go either way; every later one must not.
    let _ = in_flight.await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            fx.auth.resolve(Credential::ApiKey(&key)).await,
            Err(AuthError::ApiKeyDisabled)
        );
    }
}

#[tokio::test]
async fn a_key_with_credits_fails_closed_when_its_count_is_unreachable_and_one_without_does_not_notice()
 {
    let fx = fx();
    let (plain, _) = new_key(&fx).await;
    let g = api_key::generate(&fx.auth.config().api_key_prefix);
    let id = ApiKeyId::random();
    let metered = ApiKeyRecord {
        remaining: Some(3),
        ..testing::api_key_record(id.clone(), g.hash)
    };
    fx.store.insert(metered).await.unwrap();
    let metered = g.key.expose().to_owned();
    for key in [&plain, &metered] {
        fx.auth.resolve(Credential::ApiKey(key)).await.unwrap();
    }
    fx.store.down.store(true, Ordering::SeqCst);
    // Both records are cached; only the key with credits needs the store, and is refused.
    let err = fx
        .auth
        .resolve(Credential::ApiKey(&metered))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (503, "auth_unavailable"));
    assert!(
        fx.auth
            .resolve_cached(Credential::ApiKey(&metered))
            .is_none()
    );
    assert!(fx.auth.resolve_cached(Credential::ApiKey(&plain)).is_some());
    fx.store.down.store(false, Ordering::SeqCst);
    // The outage took nothing: 2 of 3 left.
    for _ in 0..2 {
        fx.auth.resolve(Credential::ApiKey(&metered)).await.unwrap();
    }
    let err = fx
        .auth
        .resolve(Credential::ApiKey(&metered))
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::UsageExhausted);
    assert_eq!((err.status(), err.code()), (429, "usage_exhausted"));
}
