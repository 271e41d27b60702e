//! An unreachable database is `StoreError::Unavailable`, quickly, and says nothing of the
//! URL or its password.
// Test setup outside #[test] fns: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use portcullis_core::StoreError;
use portcullis_sql::SqlStores;

fn unavailable_message(err: StoreError) -> String {
    match err {
        StoreError::Unavailable(message) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn unreachable_postgres_is_unavailable_within_the_acquire_timeout_and_hides_the_password() {
    use portcullis_core::api_key::KeyHash;
    use portcullis_sql::{PoolSettings, SqlPool};

    // Port 1 is closed: connections are refused at once, and retried until the timeout.
    let url = "postgres://u:hunter2@127.0.0.1:1/x";
    let started = Instant::now();
    let err = SqlStores::connect(url).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{err:?}").contains("hunter2"));
    let message = unavailable_message(err);
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("127.0.0.1:1"),
        "{message}"
    );

    // A pool that connects lazily fails the same way at its first query.
    let settings = PoolSettings {
        acquire_timeout: Duration::from_millis(500),
        ..PoolSettings::default()
    };
    let sql = SqlStores::from_pool(SqlPool::connect_lazy_with(url, settings).await.unwrap());
    assert!(!format!("{sql:?}").contains("hunter2"));
    let started = Instant::now();
    let err = sql
        .stores()
        .api_keys
        .find_by_hash(&KeyHash::of(b"k"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let message = unavailable_message(err);
    assert!(!message.contains("hunter2"), "{message}");
    let err = portcullis_sql::migrate(sql.pool()).await.unwrap_err();
    assert!(!unavailable_message(err).contains("hunter2"));
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_in_a_missing_directory_is_unavailable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("portcullis.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let started = Instant::now();
    let err = SqlStores::connect(&url).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let message = unavailable_message(err);
    assert!(!message.contains("no-such-dir"), "{message}");
}

#[tokio::test]
async fn an_unsupported_scheme_is_unavailable_without_the_url() {
    let err = SqlStores::connect("mysql://u:hunter2@127.0.0.1/x")
        .await
        .unwrap_err();
    let message = unavailable_message(err);
    assert!(message.contains("unsupported"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_closed_pool_is_unavailable() {
    let sql = SqlStores::connect("sqlite::memory:").await.unwrap();
    sql.migrate().await.unwrap();
    sql.pool().close().await;
    let err = sql.users().count(None).await.unwrap_err();
    assert!(unavailable_message(err).contains("closed"));
}
