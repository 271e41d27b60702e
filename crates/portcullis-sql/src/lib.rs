//! Portcullis stores on SQL: SQLite (embedded, the default) and PostgreSQL, through sqlx.
//!
//! - [`SqlStores`]: connect from a URL, then hand the four core stores
//!   ([`ApiKeyStore`](portcullis_core::store::ApiKeyStore),
//!   [`SessionStore`](portcullis_core::store::SessionStore),
//!   [`AgentDirectory`](portcullis_core::store::AgentDirectory),
//!   [`Denylist`](portcullis_core::store::Denylist)) to the `Authenticator`, and the
//!   [`UserStore`] to login.
//! - [`migrate`]: the versioned schema, embedded; call it at start.
//! - [`LastUsedWriter`]: API keys' last use, written behind in batches.
//! - [`AuditWriter`] and [`SqlAuditLog`]: the audit log, written behind in batches, read a
//!   page at a time.
//!
//! Every store passes the shared conformance suite on both databases. Errors are
//! [`StoreError::Unavailable`](portcullis_core::StoreError::Unavailable) (the layer answers
//! 503, failing closed) except unique-value collisions, which are
//! [`StoreError::Conflict`](portcullis_core::StoreError::Conflict); no message contains the
//! database URL or its password.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), portcullis_core::StoreError> {
//! use portcullis_core::ids::AgentId;
//! use portcullis_core::store::{AgentRecord, AgentStatus};
//! use portcullis_sql::SqlStores;
//!
//! let sql = SqlStores::connect("sqlite::memory:").await?; // or sqlite://file.db?mode=rwc, postgres://…
//! sql.migrate().await?;
//! let stores = sql.stores();
//! let agent = AgentRecord {
//!     id: AgentId::random(),
//!     org_id: "acme".into(),
//!     name: "builder".into(),
//!     status: AgentStatus::Active,
//!     created_at: 1_700_000_000,
//! };
//! stores.agents.insert(agent.clone()).await?;
//! assert_eq!(stores.agents.get(&agent.id).await?, Some(agent));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "portcullis-sql needs a database: enable its `sqlite` (default) or `postgres` feature"
);

mod audit;
mod backend;
mod batch;
mod codec;
mod dispatch;
mod error;
mod last_used;
mod migrate;
mod pool;
mod stores;
mod users;

pub use audit::{AuditEnv, AuditSettings, AuditWriter, MAX_AUDIT_PAGE, SqlAuditLog};
pub use last_used::{LastUsedSender, LastUsedSettings, LastUsedWriter};
pub use migrate::migrate;
pub use pool::{PoolSettings, SqlPool};
pub use stores::{
    DEFAULT_AUDIT_RETENTION_SECS, SqlAgentDirectory, SqlApiKeyStore, SqlDenylist, SqlSessionStore,
    SqlStores,
};
pub use users::{UserRecord, UserStore};

/// The sqlx this crate is built on, for building an [`SqlPool`] from a pool of your own.
pub use sqlx;

/// What [`with_pool!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::{Absent, PgPool, SqlitePool, Typed, typed};
}
