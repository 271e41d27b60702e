//! The backends: one set of operations ([`Ops`]), compiled once as code generic over the
//! database, and what each database does differently ([`Backend`]).
//!
//! The operations' SQL runs unchanged on both databases (SQLite accepts PostgreSQL's `$1`
//! placeholders). What must differ — the schema, how migrations take their lock, how a
//! result counts its rows — is a [`Backend`] implementation: `sqlite.rs`, `postgres.rs` and
//! the scripts in `migrations/`. Which backend a [`SqlPool`](crate::SqlPool) is, is decided
//! in one place, [`with_pool!`](crate::with_pool).

mod ops;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use ops::Ops;

use crate::migrate::Migration;

/// What one database does differently; everything else is [`Ops`].
pub(crate) trait Backend: sqlx::Database {
    /// The migration scripts, in `migrations/<backend>/`.
    const MIGRATIONS: &'static [Migration];
    /// The statement that opens the migrations' transaction.
    const MIGRATION_BEGIN: &'static str;
    /// A statement run first in that transaction to take a lock, if the database needs one.
    const MIGRATION_LOCK: Option<&'static str>;

    /// How many rows a statement changed (an inherent method of each `QueryResult`).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// The migration scripts in `migrations/<$dir>/`: the same versions for every backend.
macro_rules! migrations {
    ($dir:literal) => {
        &[
            Migration {
                version: 1,
                description: "init",
                sql: include_str!(concat!("../../migrations/", $dir, "/0001_init.sql")),
            },
            Migration {
                version: 2,
                description: "key creators",
                sql: include_str!(concat!("../../migrations/", $dir, "/0002_key_creators.sql")),
            },
            Migration {
                version: 3,
                description: "session user agent",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $dir,
                    "/0003_session_user_agent.sql"
                )),
            },
            Migration {
                version: 4,
                description: "key reroll",
                sql: include_str!(concat!("../../migrations/", $dir, "/0004_key_reroll.sql")),
            },
            Migration {
                version: 5,
                description: "audit log",
                sql: include_str!(concat!("../../migrations/", $dir, "/0005_audit_log.sql")),
            },
            Migration {
                version: 6,
                description: "key credits",
                sql: include_str!(concat!("../../migrations/", $dir, "/0006_key_credits.sql")),
            },
        ]
    };
}
use migrations;

/// The tables whose rows expire (see [`Ops::purge_expired`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiringTable {
    /// `sessions`
    Sessions,
    /// `denied_tokens`
    DeniedTokens,
}
