//! PostgreSQL: its migrations and the advisory lock they run under.

use super::{Backend, migrations};
use crate::migrate::Migration;

impl Backend for sqlx::Postgres {
    const MIGRATIONS: &'static [Migration] = migrations!("postgres");
    const MIGRATION_BEGIN: &'static str = "BEGIN";
    /// Instances starting together queue on this lock (held until the transaction ends)
    /// rather than racing to create the same tables. The key is arbitrary but fixed.
    const MIGRATION_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(7160275418393431337)");

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}
