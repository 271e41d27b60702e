//! Connecting: the URL's scheme picks the backend; the pool is bounded and fails fast.

use std::time::Duration;

use portcullis_core::StoreError;

use crate::backend::Ops;
use crate::error::{redact, unavailable};
use crate::with_pool;

/// A connection pool to one of the supported databases.
///
/// Made by [`SqlPool::connect`] (or from a pool of your own, `SqlPool::Sqlite(pool)`), and
/// shared by every store of a [`SqlStores`](crate::SqlStores): cloning is cheap.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlPool {
    /// An SQLite database.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// How big the pool is and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once (an in-memory SQLite database always uses one).
    pub max_connections: u32,
    /// How long acquiring a connection may take before the store reports
    /// [`StoreError::Unavailable`]: also the bound on connecting at start.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    /// Ten connections and a three-second acquire timeout.
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Sqlite,
    Postgres,
}

fn scheme(url: &str) -> Result<Scheme, StoreError> {
    let name = url.split(':').next().unwrap_or_default();
    match name.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Scheme::Sqlite),
        "postgres" | "postgresql" => Ok(Scheme::Postgres),
        _ => Err(StoreError::Unavailable(
            "unsupported database URL: expected sqlite:… or postgres://…".into(),
        )),
    }
}

impl SqlPool {
    /// Connects to `url` with the default [`PoolSettings`], opening one connection now so
    /// that an unreachable database fails at start (within the acquire timeout).
    ///
    /// `sqlite://path/to/file.db?mode=rwc` creates the file if missing (`mode=rw` does not);
    /// `sqlite::memory:` is a private in-memory database; `postgres://user@host/db` is
    /// PostgreSQL. Migrations are not run: call [`migrate`](crate::migrate).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// [`connect`](Self::connect) with explicit settings.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        Self::open(url, settings, false).await
    }

    /// Like [`connect_with`](Self::connect_with), but opens no connection until the first
    /// query; a bad URL still fails here.
    pub async fn connect_lazy_with(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        Self::open(url, settings, true).await
    }

    async fn open(url: &str, settings: PoolSettings, lazy: bool) -> Result<Self, StoreError> {
        let opened = match scheme(url)? {
            Scheme::Sqlite => open_sqlite(url, settings, lazy).await,
            Scheme::Postgres => open_postgres(url, settings, lazy).await,
        };
        opened.map_err(|e| redact(e, url))
    }

    /// Closes every connection; queries after this fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await)
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |p| Ops::ping(p).await)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for SqlPool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for SqlPool {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(feature: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "portcullis-sql was built without its `{feature}` feature"
    ))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str, settings: PoolSettings, lazy: bool) -> Result<SqlPool, StoreError> {
    use std::str::FromStr;

    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut options = SqliteConnectOptions::from_str(url)
        .map_err(|e| unavailable(&e))?
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let mut pool = SqlitePoolOptions::new().acquire_timeout(settings.acquire_timeout);
    if in_memory {
        // Each connection to `:memory:` would be its own database, and the last one closing
        // drops it: keep exactly one, forever.
        pool = pool
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        // WAL lets readers run while one writer writes; NORMAL is durable across crashes of
        // the process (not of the machine's power), the usual pairing with WAL.
        options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        pool = pool.max_connections(settings.max_connections.max(1));
    }
    connect(pool, options, lazy).await.map(SqlPool::Sqlite)
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &str, _: PoolSettings, _: bool) -> Result<SqlPool, StoreError> {
    Err(not_built("sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    settings: PoolSettings,
    lazy: bool,
) -> Result<SqlPool, StoreError> {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let options = PgConnectOptions::from_str(url)
        .map_err(|e| unavailable(&e))?
        .application_name("portcullis");
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        .acquire_timeout(settings.acquire_timeout);
    connect(pool, options, lazy).await.map(SqlPool::Postgres)
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str, _: PoolSettings, _: bool) -> Result<SqlPool, StoreError> {
    Err(not_built("postgres"))
}

/// Opens `pool` with `options`: at once (the database must answer now), or lazily (the
/// first query connects).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn connect<DB: sqlx::Database>(
    pool: sqlx::pool::PoolOptions<DB>,
    options: <DB::Connection as sqlx::Connection>::Options,
    lazy: bool,
) -> Result<sqlx::Pool<DB>, StoreError> {
    if lazy {
        Ok(pool.connect_lazy_with(options))
    } else {
        pool.connect_with(options)
            .await
            .map_err(|e| unavailable(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(scheme("sqlite://x.db?mode=rwc"), Ok(Scheme::Sqlite));
        assert_eq!(scheme("sqlite::memory:"), Ok(Scheme::Sqlite));
        assert_eq!(scheme("postgres://u@h/db"), Ok(Scheme::Postgres));
        assert_eq!(scheme("PostgreSQL://u@h/db"), Ok(Scheme::Postgres));
        assert!(scheme("mysql://u:secret@h/db").is_err());
        assert!(scheme("").is_err());
    }
}
