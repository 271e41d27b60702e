//! Helpers shared by the core's integration tests.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use portcullis_core::api_key::{self, ApiKeyRecord, KeyHash, KeysOf};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId};
use portcullis_core::store::{AgentRecord, AgentStatus, ApiKeyStore, Credits, MemoryApiKeyStore};
use portcullis_core::testing;
use portcullis_core::{
    AuthConfig, AuthConfigBuilder, Authenticator, AuthenticatorBuilder, Secret, StoreError,
    UnixTime,
};

/// A configuration with a fresh random secret for user tokens; add what the test is about.
pub fn config() -> AuthConfigBuilder {
    AuthConfig::builder().jwt_secret(Secret::random(32))
}

/// An authenticator builder over `config` (built here: a bad test configuration panics).
pub fn authenticator(config: AuthConfigBuilder) -> AuthenticatorBuilder {
    Authenticator::builder().config(config.build().unwrap())
}

/// A new key in `auth`'s key store, stored as `record` makes it from the usual test record
/// ([`testing::api_key_record`] with a random id); returns the key, its id and its hash.
pub async fn insert_key(
    auth: &Authenticator,
    record: impl FnOnce(ApiKeyRecord) -> ApiKeyRecord,
) -> (String, ApiKeyId, KeyHash) {
    let generated = api_key::generate(&auth.config().api_key_prefix);
    let id = ApiKeyId::random();
    let stored = record(testing::api_key_record(id.clone(), generated.hash));
    auth.stores().api_keys.insert(stored).await.unwrap();
    (generated.key.expose().to_owned(), id, generated.hash)
}

/// An active agent `id` (named `a`) of `org`, created at `created_at`, in `auth`'s directory.
pub async fn insert_agent(auth: &Authenticator, id: &AgentId, org: &OrgId, created_at: UnixTime) {
    let record = AgentRecord {
        id: id.clone(),
        org_id: org.clone(),
        name: "a".into(),
        status: AgentStatus::Active,
        created_at,
    };
    auth.stores().agents.insert(record).await.unwrap();
}

/// API keys in memory for tests: counts lookups by hash, can be switched off to act like an
/// unreachable database (`down`), can fail only its inserts (`inserts_fail`: a database that
/// drops out between two statements), and can hold a lookup in flight (`hold`).
#[derive(Default)]
pub struct TestKeys {
    pub inner: MemoryApiKeyStore,
    pub lookups: AtomicUsize,
    pub down: AtomicBool,
    pub inserts_fail: AtomicBool,
    /// When set, the next lookup reads the record, signals the first `Notify`, and waits for
    /// the second before returning what it read: a slow load in flight.
    pub hold: std::sync::Mutex<Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>>,
}

#[async_trait]
impl ApiKeyStore for TestKeys {
    async fn insert(&self, r: ApiKeyRecord) -> Result<(), StoreError> {
        if self.inserts_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection reset".into()));
        }
        self.inner.insert(r).await
    }
    async fn find_by_hash(&self, h: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        // Long enough that concurrent requests overlap with this one.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        let read = self.inner.find_by_hash(h).await;
        let hold = self.hold.lock().unwrap().take();
        if let Some((entered, release)) = hold {
            entered.notify_one();
            release.notified().await;
        }
        read
    }
    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn list(&self, o: &KeysOf) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.list(o).await
    }
    async fn set_enabled(&self, id: &ApiKeyId, e: bool) -> Result<bool, StoreError> {
        self.inner.set_enabled(id, e).await
    }
    async fn delete(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn touch(&self, u: &[(ApiKeyId, u64)]) -> Result<(), StoreError> {
        self.inner.touch(u).await
    }
    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        self.inner.count(org).await
    }
    async fn take_credits(&self, id: &ApiKeyId, n: u64) -> Result<Credits, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        self.inner.take_credits(id, n).await
    }
    async fn return_credits(&self, id: &ApiKeyId, n: u64) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        self.inner.return_credits(id, n).await
    }
}
