//! What the Redis stores leave in Redis: every key under the prefix, with the expiry of what
//! it holds; and rotation stays exactly-once across instances under heavy contention.

// Test helpers outside #[test] fns unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use portcullis_core::api_key::KeyHash;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::ids::{SessionId, TokenId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{Denylist, RefreshResult, SessionStore};

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn ttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query_async(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_prefix_and_expire_with_their_contents() {
    let Some(redis) = common::connect().await else {
        return;
    };
    let prefix = redis.prefix().to_owned();
    let (sessions, denylist) = (redis.sessions(), redis.denylist());
    let now = SystemClock.now();
    let user = UserId::random();
    let first = KeyHash::of(b"first");
    let session = SessionRecord::new(
        SessionId::random(),
        user.clone(),
        "acme".into(),
        first,
        now,
        3_600,
        false,
    );
    sessions.create(session.clone()).await.unwrap();
    assert!(matches!(
        sessions.create(session.clone()).await,
        Err(portcullis_core::StoreError::Conflict(_))
    ));
    assert_eq!(sessions.count_live(now, None).await.unwrap(), 1);
    let RefreshResult::Rotated(_) = sessions
        .refresh(&session.id, &first, KeyHash::of(b"second"), now, 10)
        .await
        .unwrap()
    else {
        panic!("the current token rotates");
    };
    let jti = TokenId::random();
    denylist.deny(&jti, now + 60).await.unwrap();
    // A shorter expiry never shortens a denial.
    denylist.deny(&jti, now + 5).await.unwrap();
    assert!(denylist.is_denied(&jti, now + 30).await.unwrap());
    // An already-expired token needs no entry.
    let dead = TokenId::random();
    denylist.deny(&dead, now - 1).await.unwrap();

    let mut conn = raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let keys: BTreeSet<String> = keys.into_iter().collect();
    let session_key = format!("{prefix}session:{}", session.id);
    let user_key = format!("{prefix}user_sessions:{user}");
    let live_key = format!("{prefix}live_sessions");
    let deny_key = format!("{prefix}deny:{jti}");
    assert_eq!(
        keys,
        BTreeSet::from([
            session_key.clone(),
            user_key.clone(),
            live_key.clone(),
            deny_key.clone()
        ])
    );
    for key in [&session_key, &user_key, &live_key] {
        let t = ttl(&mut conn, key).await;
        assert!((3_590..=3_600).contains(&t), "{key}: ttl {t}");
    }
    let t = ttl(&mut conn, &deny_key).await;
    assert!((50..=60).contains(&t), "deny ttl {t}");

    assert!(sessions.revoke(&session.id).await.unwrap());
    assert_eq!(sessions.count_live(now, None).await.unwrap(), 0);
    // Revoked sessions stay (their tokens must keep failing) until they expire.
    assert!(sessions.get(&session.id).await.unwrap().unwrap().revoked);
}

/// Two instances (two connections), 16 refreshes of one token at once, many times over:
/// exactly one rotates each time; the others see reuse and the session ends revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn rotation_is_exactly_once_across_instances() {
    let Some((_, [a, b])) = common::connect_shared().await else {
        return;
    };
    for round in 0..25u8 {
        let t0 = KeyHash::of(&[b'r', round]);
        let now = SystemClock.now();
        let session = SessionRecord::new(
            SessionId::random(),
            UserId::random(),
            "acme".into(),
            t0,
            now,
            3_600,
            false,
        );
        a.sessions().create(session.clone()).await.unwrap();
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let store = if i % 2 == 0 {
                    a.sessions()
                } else {
                    b.sessions()
                };
                let id = session.id.clone();
                tokio::spawn(async move {
                    store
                        .refresh(&id, &t0, KeyHash::of(&[b'n', round, i]), now, 0)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut rotated = 0;
        for task in tasks {
            match task.await.unwrap() {
                RefreshResult::Rotated(_) => rotated += 1,
                RefreshResult::ReuseDetected | RefreshResult::Rejected(_) => {}
                RefreshResult::NotFound => panic!("session vanished"),
            }
        }
        assert_eq!(rotated, 1, "round {round}");
        assert!(
            a.sessions()
                .get(&session.id)
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
    }
}
