//! `RedisStores::build_authenticator`: one call wires an instance of a multi-instance service.

// Test helpers outside #[test] fns unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::api_key::{self, ApiKeyRecord};
use portcullis_core::ids::{ApiKeyId, OrgId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{ApiKeyStore, MemoryAgentDirectory, MemoryApiKeyStore, Stores};
use portcullis_core::testing;
use portcullis_core::{AuthError, Authenticator, Credential};

/// A builder whose API keys are `api_keys` (standing in for the SQL database both share).
fn builder(api_keys: &Arc<dyn ApiKeyStore>) -> portcullis_core::AuthenticatorBuilder {
    Authenticator::builder().stores(Stores {
        api_keys: api_keys.clone(),
        agents: Arc::new(MemoryAgentDirectory::default()),
        ..Stores::memory()
    })
}

async fn insert_key(
    auth: &Authenticator,
    api_keys: &Arc<dyn ApiKeyStore>,
    rate_limit_per_minute: Option<u32>,
) -> (ApiKeyId, String) {
    let generated = api_key::generate(&auth.config().api_key_prefix);
    let id = ApiKeyId::random();
    api_keys
        .insert(ApiKeyRecord {
            rate_limit_per_minute,
            ..testing::api_key_record(id.clone(), generated.hash)
        })
        .await
        .unwrap();
    (id, generated.key.expose().to_owned())
}

/// Sessions, rate limits and revocations are shared by two instances built with one call
/// each, with no subscription handle kept by the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_call_shares_sessions_rate_limits_and_revocations_between_instances() {
    let Some((_, [redis_a, redis_b])) = common::connect_shared().await else {
        return;
    };
    let api_keys: Arc<dyn ApiKeyStore> = Arc::new(MemoryApiKeyStore::default());
    let a = redis_a
        .build_authenticator(builder(&api_keys))
        .await
        .unwrap();
    let b = redis_b
        .build_authenticator(builder(&api_keys))
        .await
        .unwrap();

    // Sessions: made on A, read on B.
    let sid = SessionId::random();
    let session = SessionRecord::new(
        sid.clone(),
        UserId::from("u"),
        OrgId::from("acme"),
        api_key::KeyHash::of(b"refresh"),
        1,
        u64::from(u32::MAX),
        false,
    );
    a.stores().sessions.create(session).await.unwrap();
    assert!(b.stores().sessions.get(&sid).await.unwrap().is_some());

    // Rate limits: one use a minute, spent on A, refused on B.
    let (_, limited) = insert_key(&a, &api_keys, Some(1)).await;
    assert!(a.resolve(Credential::ApiKey(&limited)).await.is_ok());
    let second = b.resolve(Credential::ApiKey(&limited)).await;
    assert!(
        matches!(second, Err(AuthError::RateLimited(_))),
        "{second:?}"
    );

    // Revocations: a key both have cached, disabled on A, is refused by B at once.
    let (id, key) = insert_key(&a, &api_keys, None).await;
    assert!(a.resolve(Credential::ApiKey(&key)).await.is_ok());
    assert!(b.resolve(Credential::ApiKey(&key)).await.is_ok());
    assert!(a.set_api_key_enabled(&id, false).await.unwrap());
    assert_eq!(
        b.resolve(Credential::ApiKey(&key)).await,
        Err(AuthError::ApiKeyDisabled)
    );
}

/// The authenticator owns its subscription without being kept alive by it: dropping the
/// last clone unsubscribes (no leaked task or connection per authenticator built).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_authenticator_ends_its_subscription() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let api_keys: Arc<dyn ApiKeyStore> = Arc::new(MemoryApiKeyStore::default());
    let channel = redis.invalidator().channel().to_owned();
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut subscribers = async || -> i64 {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        n
    };

    let auth = redis.build_authenticator(builder(&api_keys)).await.unwrap();
    assert_eq!(subscribers().await, 1, "subscribed before it is handed out");
    let clone = auth.clone();
    drop(auth);
    assert_eq!(subscribers().await, 1, "a clone keeps it");
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(2);
    while subscribers().await != 0 {
        assert!(Instant::now() < deadline, "still subscribed after the drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
