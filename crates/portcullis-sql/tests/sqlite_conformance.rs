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
