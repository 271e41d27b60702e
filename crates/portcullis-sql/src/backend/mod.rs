//! The backends: one set of operations (`ops.rs`), compiled once for each database.
//!
//! `ops.rs` is written against a type alias `Db` and a few constants that each module below
//! defines before including it; its SQL runs unchanged on both databases (SQLite accepts
//! PostgreSQL's `$1` placeholders). What must differ — the schema and how migrations take
//! their lock — lives here and in `migrations/`.

use crate::migrate::Migration;

/// The tables whose rows expire (see `purge_expired` in `ops.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiringTable {
    /// `sessions`
    Sessions,
    /// `denied_tokens`
    DeniedTokens,
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::{ExpiringTable, Migration};

    type Db = sqlx::Sqlite;

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            description: "init",
            sql: include_str!("../../migrations/sqlite/0001_init.sql"),
        },
        Migration {
            version: 2,
            description: "key creators",
            sql: include_str!("../../migrations/sqlite/0002_key_creators.sql"),
        },
    ];
    /// An immediate transaction takes SQLite's write lock at once, so two processes
    /// migrating the same file run one after the other instead of deadlocking.
    const MIGRATION_BEGIN: &str = "BEGIN IMMEDIATE";
    const MIGRATION_LOCK: Option<&str> = None;

    include!("ops.rs");
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    use super::{ExpiringTable, Migration};

    type Db = sqlx::Postgres;

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            description: "init",
            sql: include_str!("../../migrations/postgres/0001_init.sql"),
        },
        Migration {
            version: 2,
            description: "key creators",
            sql: include_str!("../../migrations/postgres/0002_key_creators.sql"),
        },
    ];
    const MIGRATION_BEGIN: &str = "BEGIN";
    /// Instances starting together queue on this lock (held until the transaction ends)
    /// rather than racing to create the same tables. The key is arbitrary but fixed.
    const MIGRATION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(7160275418393431337)");

    include!("ops.rs");
}

/// Calls the operation `$op` of whichever backend `$pool` (a `&SqlPool`) is, with the pool
/// as its first argument, and awaits it.
macro_rules! dispatch {
    ($pool:expr, $op:ident($($arg:expr),* $(,)?)) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            $crate::SqlPool::Sqlite(pool) => $crate::backend::sqlite::$op(pool, $($arg),*).await,
            #[cfg(feature = "postgres")]
            $crate::SqlPool::Postgres(pool) => $crate::backend::postgres::$op(pool, $($arg),*).await,
        }
    };
}
pub(crate) use dispatch;
