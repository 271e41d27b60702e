//! Several instances on real PostgreSQL and Redis, and a database that goes away mid-run.
//!
//! Needs PostgreSQL (`PORTCULLIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and Redis (`PORTCULLIS_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`). Under `CI=true` an unreachable service fails the test;
//! elsewhere the test says SKIPPED on stderr and returns.
#![cfg(all(feature = "postgres", feature = "redis", feature = "axum"))]
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use portcullis::api_key::{self, ApiKeyRecord, KeyOwner};
use portcullis::cache::CacheConfig;
use portcullis::ids::{ApiKeyId, OrgId, UserId};
use portcullis::redis::RedisStores;
use portcullis::sql::PoolSettings;
use portcullis::sql::SqlStores;
use portcullis::store::Stores;
use portcullis::{AuthLayer, Authenticator, seed};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};

use common::{CutProxy, fresh_postgres, redis_url, service_unreachable as unreachable};

type Svc = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

fn service(auth: Authenticator) -> Svc {
    BoxCloneService::new(
        ServiceBuilder::new()
            .layer(AuthLayer::new(auth))
            .service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }),
    )
}

async fn status(svc: &Svc, header: (&str, &str)) -> (StatusCode, String) {
    let req = Request::get("/private")
        .header(header.0, header.1)
        .body(Full::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

async fn insert_key(stores: &Stores, auth: &Authenticator, enabled: bool) -> (String, ApiKeyId) {
    let g = api_key::generate(&auth.config().api_key_prefix);
    let id = ApiKeyId::random();
    stores
        .api_keys
        .insert(ApiKeyRecord {
            id: id.clone(),
            name: "mi".into(),
            hash: g.hash,
            display_prefix: g.display_prefix.clone(),
            created_by: UserId::from("u1").into(),
            owner: KeyOwner::User(UserId::from("u1")),
            org_id: "acme".into(),
            permissions: seed::MEMORY_ALL,
            created_at: auth.clock().now(),
            expires_at: None,
            enabled,
            rate_limit_per_minute: None,
            last_used_at: None,
            remaining: None,
        })
        .await
        .unwrap();
    (g.key.expose().to_owned(), id)
}

/// Polls `svc` until it answers `want`; how long that took.
async fn time_until(svc: &Svc, header: (&str, &str), want: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _) = status(svc, header).await;
        assert!(
            status == StatusCode::OK || status == want,
            "unexpected {status}"
        );
        if status == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never refused");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_instance_is_honoured_by_the_other_within_100ms() {
    let Some(db) = fresh_postgres("mi").await else {
        return;
    };
    let redis_url = redis_url();
    let prefix = format!("pc-mi-{}:", uuid::Uuid::new_v4().simple());
    // A shared user secret: both instances verify each other's tokens.
    let config = || {
        portcullis::AuthConfig::builder()
            .jwt_secret(portcullis::Secret::from(
                "multi-instance-secret-of-32-bytes!!",
            ))
            .agent_secret(portcullis::Secret::from(
                "multi-instance-agent-secret-32-byte",
            ))
            .build()
            .unwrap()
    };
    let mut instances = Vec::new();
    for _ in 0..2 {
        let sql = SqlStores::connect(&db).await.unwrap();
        sql.migrate().await.unwrap();
        let redis = match RedisStores::connect(&redis_url, &prefix).await {
            Ok(r) => r,
            Err(e) => return unreachable("Redis", e),
        };
        let sql_stores = sql.stores();
        let stores = redis.stores_with(sql_stores.api_keys.clone(), sql_stores.agents.clone());
        let auth = Authenticator::builder()
            .config(config())
            .stores(stores.clone())
            .invalidation_sink(Arc::new(redis.invalidator()))
            .build()
            .unwrap();
        let subscription = redis
            .invalidator()
            .subscribe_authenticator(auth.clone())
            .await
            .unwrap();
        instances.push((auth.clone(), stores, service(auth), subscription));
    }
    let (a_auth, a_stores, a_svc, _) = &instances[0];
    let (_, _, b_svc, _) = &instances[1];

    // An API key, used on both instances (so both have it cached), revoked through A.
    let (key, id) = insert_key(a_stores, a_auth, true).await;
    assert_eq!(status(a_svc, ("x-api-key", &key)).await.0, StatusCode::OK);
    assert_eq!(status(b_svc, ("x-api-key", &key)).await.0, StatusCode::OK);
    assert!(a_auth.delete_api_key(&id).await.unwrap());
    let key_latency = time_until(b_svc, ("x-api-key", &key), StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        status(b_svc, ("x-api-key", &key)).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".into())
    );

    // A login session, used on both, logged out through A.
    let (user, org) = (UserId::from("u1"), OrgId::from("acme"));
    let (sid, token) = common::session_token(a_auth, a_stores, &user, &org, "user").await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        status(a_svc, ("authorization", &bearer)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status(b_svc, ("authorization", &bearer)).await.0,
        StatusCode::OK
    );
    assert!(a_auth.revoke_session(&sid).await.unwrap());
    let logout_latency =
        time_until(b_svc, ("authorization", &bearer), StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        status(b_svc, ("authorization", &bearer)).await,
        (StatusCode::UNAUTHORIZED, "token_revoked".into())
    );

    println!(
        "key revocation honoured by the other instance after {key_latency:?}; logout after {logout_latency:?}"
    );
    assert!(key_latency < Duration::from_millis(100), "{key_latency:?}");
    assert!(
        logout_latency < Duration::from_millis(100),
        "{logout_latency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_goes_away_gives_503_then_recovers_with_no_wrong_200() {
    let Some(db) = fresh_postgres("mi").await else {
        return;
    };
    // Migrate directly, then serve through the proxy.
    SqlStores::connect(&db)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let upstream = db
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = CutProxy::start(upstream.clone()).await;
    let proxied = db.replace(&upstream, &format!("127.0.0.1:{}", proxy.port));
    let settings = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_millis(500),
    };
    let sql = SqlStores::connect_with(&proxied, settings).await.unwrap();
    let stores = sql.stores();
    // Entries live 1 ms: every request below asks the database.
    let auth = Authenticator::builder()
        .stores(stores.clone())
        .cache(CacheConfig {
            capacity: 1_000,
            ttl: Duration::from_millis(1),
            ..CacheConfig::default()
        })
        .build()
        .unwrap();
    let svc = service(auth.clone());
    let (good, _) = insert_key(&stores, &auth, true).await;
    let (disabled, _) = insert_key(&stores, &auth, false).await;
    let expect = |label: &str, got: (StatusCode, String), want: (StatusCode, &str)| {
        assert_eq!((got.0, got.1.as_str()), want, "{label}");
    };

    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        expect(
            "up, good key",
            status(&svc, ("x-api-key", &good)).await,
            (StatusCode::OK, ""),
        );
        expect(
            "up, disabled key",
            status(&svc, ("x-api-key", &disabled)).await,
            (StatusCode::UNAUTHORIZED, "api_key_disabled"),
        );
    }

    proxy.set_up(false);
    let mut refused = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        for key in [&good, &disabled] {
            let got = status(&svc, ("x-api-key", key)).await;
            expect(
                "down",
                got,
                (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            );
            refused += 1;
        }
    }

    proxy.set_up(true);
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let got = status(&svc, ("x-api-key", &good)).await;
        if got.0 == StatusCode::OK {
            break;
        }
        expect(
            "recovering",
            got,
            (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
        );
        assert!(start.elapsed() < Duration::from_secs(10), "no recovery");
    }
    let recovery = start.elapsed();
    expect(
        "recovered, disabled key",
        status(&svc, ("x-api-key", &disabled)).await,
        (StatusCode::UNAUTHORIZED, "api_key_disabled"),
    );
    println!(
        "database down: {refused} requests, all 503 auth_unavailable; recovered {recovery:?} after it came back, without a restart"
    );
}
