//! The shared store conformance suite, and the SQL-only checks, on SQLite: each test gets
//! its own database file (WAL, a pool of real connections) in a temp dir.
#![cfg(feature = "sqlite")]
// Test setup outside #[test] fns: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use portcullis_sql::SqlStores;
use tempfile::TempDir;

/// A new, empty database file; not migrated.
async fn fresh_unmigrated() -> (SqlStores, String, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("portcullis.db").display()
    );
    let sql = SqlStores::connect(&url).await.unwrap();
    (sql, url, dir)
}

async fn fresh() -> (SqlStores, TempDir) {
    let (sql, _, dir) = fresh_unmigrated().await;
    sql.migrate().await.unwrap();
    (sql, dir)
}

portcullis_core::store_conformance_tests!(async {
    let (sql, dir) = fresh().await;
    common::with_guard(sql.stores(), dir)
});

#[tokio::test]
async fn users_round_trip() {
    let (sql, _dir) = fresh().await;
    common::users_round_trip(&sql).await;
}

#[tokio::test]
async fn users_trait_round_trip() {
    let (sql, _dir) = fresh().await;
    common::users_trait_round_trip(&sql).await;
}

#[tokio::test]
async fn api_key_counts_agree() {
    let (sql, _dir) = fresh().await;
    common::api_key_counts_agree(&sql).await;
}

#[tokio::test]
async fn migrate_again_is_a_no_op() {
    let (sql, _dir) = fresh().await;
    common::migrate_again_is_a_no_op(&sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_both_succeed() {
    let (a, url, _dir) = fresh_unmigrated().await;
    let b = SqlStores::connect(&url).await.unwrap();
    common::concurrent_migrations_both_succeed(&a, &b).await;
}

#[tokio::test]
async fn conflicts_counts_and_purge() {
    let (sql, _dir) = fresh().await;
    common::conflicts_counts_and_purge(&sql).await;
}

#[tokio::test]
async fn extreme_values_round_trip() {
    let (sql, _dir) = fresh().await;
    common::extreme_values_round_trip(&sql).await;
}

#[tokio::test]
async fn last_used_writer_reaches_the_database() {
    let (sql, _dir) = fresh().await;
    common::last_used_writer_reaches_the_database(&sql).await;
}

#[tokio::test]
async fn an_in_memory_database_works_on_its_single_connection() {
    let sql = SqlStores::connect("sqlite::memory:").await.unwrap();
    sql.migrate().await.unwrap();
    common::users_round_trip(&sql).await;
    assert_eq!(sql.pool().backend_name(), "sqlite");
}

#[tokio::test]
async fn the_file_persists_across_pools() {
    let (sql, url, _dir) = fresh_unmigrated().await;
    sql.migrate().await.unwrap();
    common::migrate_again_is_a_no_op(&sql).await;
    sql.pool().close().await;
    let again = SqlStores::connect(&url).await.unwrap();
    again.migrate().await.unwrap();
    assert_eq!(again.users().count(None).await.unwrap(), 1);
}

#[tokio::test]
async fn the_purge_task_deletes_expired_rows_on_the_clock_it_is_given() {
    use portcullis_core::ids::TokenId;
    let (sql, _dir) = fresh().await;
    let t = 1_800_000_000;
    let denylist = sql.stores().denylist;
    let (gone, kept) = (TokenId::random(), TokenId::random());
    denylist.deny(&gone, t - 1).await.unwrap();
    denylist.deny(&kept, t + 60).await.unwrap();
    // Asked at an earlier time, both are denied while their rows exist.
    assert!(denylist.is_denied(&gone, t - 10).await.unwrap());
    let clock = portcullis_core::ManualClock::new(t);
    let task = sql.spawn_purge(
        std::time::Duration::from_millis(10),
        std::sync::Arc::new(clock),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while denylist.is_denied(&gone, t - 10).await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the purge task never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(denylist.is_denied(&kept, t).await.unwrap());
    task.abort();
}

/// A database left at schema version 2 by an earlier release, holding a session and a key:
/// migration 3 adds `user_agent` and the old session reads back (and lists) with none;
/// migration 4 adds the replaced hash of a reroll, and the old key is found with none kept and
/// can be rerolled.
#[tokio::test]
async fn a_version_2_session_survives_migration_3_without_a_user_agent() {
    use portcullis_core::api_key::KeyHash;
    use portcullis_core::clock::{Clock, SystemClock};
    use portcullis_core::ids::{SessionId, UserId};
    use portcullis_sql::SqlPool;
    use sha2::{Digest, Sha256};

    let (sql, _, _dir) = fresh_unmigrated().await;
    let SqlPool::Sqlite(pool) = sql.pool() else {
        panic!("not SQLite")
    };
    // The migrations table as every release has made it (`migrate::CREATE_TABLE`).
    sqlx::raw_sql(
        "CREATE TABLE _portcullis_migrations (version BIGINT NOT NULL PRIMARY KEY, \
         description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
    for (version, script) in [
        (1_i64, include_str!("../migrations/sqlite/0001_init.sql")),
        (
            2,
            include_str!("../migrations/sqlite/0002_key_creators.sql"),
        ),
    ] {
        sqlx::raw_sql(script).execute(pool).await.unwrap();
        let checksum: String = Sha256::digest(script.replace('\r', "").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        sqlx::query(
            "INSERT INTO _portcullis_migrations (version, description, checksum, applied_at) \
             VALUES (?, 'earlier release', ?, 0)",
        )
        .bind(version)
        .bind(checksum)
        .execute(pool)
        .await
        .unwrap();
    }
    let now = i64::try_from(SystemClock.now()).unwrap();
    let (sid, user) = (SessionId::random(), UserId::random());
    sqlx::query(
        "INSERT INTO sessions (id, user_id, org_id, current_hash, parent_hash, rotated_at, \
         created_at, expires_at, remember_me, revoked, version) \
         VALUES (?, ?, 'acme', ?, NULL, ?, ?, ?, 0, 0, 0)",
    )
    .bind(sid.as_str())
    .bind(user.as_str())
    .bind(&KeyHash::of(b"old").0[..])
    .bind(now)
    .bind(now)
    .bind(now + 3_600)
    .execute(pool)
    .await
    .unwrap();

    let key_hash = KeyHash::of(b"an old key");
    sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, display_prefix, created_by, creator_user, \
         owner_kind, owner_id, org_id, permissions, created_at, expires_at, enabled, \
         rate_limit_per_minute, last_used_at) \
         VALUES ('old-key', 'ci', ?, 'ck_old', ?, ?, 'user', ?, 'acme', '1', ?, NULL, 1, NULL, NULL)",
    )
    .bind(&key_hash.0[..])
    .bind(user.as_str())
    .bind(user.as_str())
    .bind(user.as_str())
    .bind(now)
    .execute(pool)
    .await
    .unwrap();

    sql.migrate().await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _portcullis_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    let stores = sql.stores();
    let old = stores.sessions.get(&sid).await.unwrap().unwrap();
    assert_eq!(old.user_agent, None);
    assert_eq!(old.user_id, user);
    let listed = stores
        .sessions
        .list_for_user(&user, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(listed, vec![old]);

    let key_id = portcullis_core::ids::ApiKeyId::from("old-key");
    let (key, kept) = stores
        .api_keys
        .find_presented(&key_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((key.id.clone(), kept), (key_id.clone(), None));
    // Migration 6 leaves an older key unlimited: no usage credits to count.
    assert_eq!(key.remaining, None);
    assert_eq!(
        stores.api_keys.take_credits(&key_id, 1).await.unwrap(),
        portcullis_core::store::Credits::Unlimited
    );
    assert_eq!(stores.api_keys.previous_hash(&key_id).await.unwrap(), None);
    let next = KeyHash::of(b"its next secret");
    let until = SystemClock.now() + 60;
    assert!(
        stores
            .api_keys
            .reroll(&key_id, next, "ck_next", Some(until))
            .await
            .unwrap()
    );
    let (_, kept) = stores
        .api_keys
        .find_presented(&key_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, Some(until));
}

#[tokio::test]
async fn audit_log_round_trip() {
    let (sql, _dir) = fresh().await;
    common::audit_log_round_trip(&sql).await;
}
