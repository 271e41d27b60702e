//! Helpers shared by the core's integration tests.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use portcullis_core::api_key::{self, ApiKeyRecord, KeyHash};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId};
use portcullis_core::store::{AgentRecord, AgentStatus};
use portcullis_core::testing;
use portcullis_core::{
    AuthConfig, AuthConfigBuilder, Authenticator, AuthenticatorBuilder, Secret, UnixTime,
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
