//! A request with an API key updates its `last_used_at` in the database, behind the request.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::api_key::{self, ApiKeyRecord};
use portcullis_core::ids::ApiKeyId;
use portcullis_core::testing;
use portcullis_core::{Authenticator, Credential, ManualClock};
use portcullis_sql::{LastUsedSettings, LastUsedWriter, SqlStores};

#[tokio::test]
async fn a_used_key_gets_last_used_at_written_behind_and_a_refused_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let sql = SqlStores::connect(&url).await.unwrap();
    sql.migrate().await.unwrap();
    let stores = sql.stores();
    let writer = LastUsedWriter::spawn(
        stores.api_keys.clone(),
        LastUsedSettings {
            interval: Duration::from_millis(10),
            ..LastUsedSettings::default()
        },
    );
    let clock = ManualClock::new(1_700_000_000);
    let auth = Authenticator::builder()
        .stores(stores.clone())
        .clock(Arc::new(clock.clone()))
        .usage_sink(Arc::new(writer.sender()))
        .build()
        .unwrap();

    let mut ids = Vec::new();
    let mut keys = Vec::new();
    for enabled in [true, false] {
        let g = api_key::generate(&auth.config().api_key_prefix);
        let id = ApiKeyId::random();
        stores
            .api_keys
            .insert(ApiKeyRecord {
                enabled,
                ..testing::api_key_record(id.clone(), g.hash)
            })
            .await
            .unwrap();
        ids.push(id);
        keys.push(g.key.expose().to_owned());
    }
    assert!(auth.resolve(Credential::ApiKey(&keys[0])).await.is_ok());
    assert!(auth.resolve(Credential::ApiKey(&keys[1])).await.is_err());
    writer.shutdown().await;
    let used = stores.api_keys.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(1_700_000_000));
    let refused = stores.api_keys.get(&ids[1]).await.unwrap().unwrap();
    assert_eq!(refused.last_used_at, None);
}
