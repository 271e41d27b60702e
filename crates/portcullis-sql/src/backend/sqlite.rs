//! SQLite: its migrations and its write lock.

use super::{Backend, migrations};
use crate::migrate::Migration;

impl Backend for sqlx::Sqlite {
    const MIGRATIONS: &'static [Migration] = migrations!("sqlite");
    /// An immediate transaction takes SQLite's write lock at once, so two processes
    /// migrating the same file run one after the other instead of deadlocking.
    const MIGRATION_BEGIN: &'static str = "BEGIN IMMEDIATE";
    const MIGRATION_LOCK: Option<&'static str> = None;

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}
