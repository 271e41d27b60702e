//! Versioned schema migrations, embedded in the binary.
//!
//! Each backend has its own SQL (`migrations/sqlite/`, `migrations/postgres/`). Applied
//! versions are recorded in `_portcullis_migrations` — a table of our own, so that an
//! application keeping its own sqlx migrations in the same database is not disturbed — with
//! a SHA-256 of each script, so that a migration edited after release is refused rather than
//! silently skipped. Everything runs in one transaction under a lock: instances starting
//! together apply each migration once.

use portcullis_core::StoreError;
use portcullis_core::clock::{Clock, SystemClock, UnixTime};
use sha2::{Digest, Sha256};

use crate::SqlPool;
use crate::backend::Ops;
use crate::with_pool;

/// Brings the database's schema up to date: applies, in order, every migration not applied
/// yet. Call it once at start, before serving; running it again is a no-op.
///
/// ```no_run
/// # async fn run() -> Result<(), portcullis_core::StoreError> {
/// let pool = portcullis_sql::SqlPool::connect("sqlite://portcullis.db?mode=rwc").await?;
/// portcullis_sql::migrate(&pool).await?;
/// # Ok(()) }
/// ```
///
/// Fails with [`StoreError::Unavailable`] when the database cannot be reached, when a
/// script fails, or when an applied migration's script has changed since it was applied.
/// Versions applied by a newer release are tolerated (logged), so that an older instance
/// can still start during a rolling upgrade.
pub async fn migrate(pool: &SqlPool) -> Result<(), StoreError> {
    with_pool!(pool, |p| Ops::migrate(p).await)
}

/// One migration script.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    /// SHA-256 of the script, in hex, ignoring carriage returns (a checkout with CRLF line
    /// endings must not look like an edited migration).
    pub(crate) fn checksum(&self) -> String {
        let mut hasher = Sha256::new();
        for chunk in self.sql.split('\r') {
            hasher.update(chunk.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A row of `_portcullis_migrations`.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) version: i64,
    pub(crate) checksum: String,
}

/// The same on both backends.
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _portcullis_migrations (\
     version BIGINT NOT NULL PRIMARY KEY, \
     description TEXT NOT NULL, \
     checksum TEXT NOT NULL, \
     applied_at BIGINT NOT NULL)";

/// The migrations still to apply, in version order; an error if an applied one has changed.
pub(crate) fn pending<'m>(
    known: &'m [Migration],
    applied: &[Applied],
) -> Result<Vec<&'m Migration>, StoreError> {
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            Some(m) if m.checksum() != a.checksum => {
                return Err(StoreError::Unavailable(format!(
                    "migration {} ({}) was changed after it was applied",
                    m.version, m.description
                )));
            }
            Some(_) => {}
            None => tracing::warn!(
                version = a.version,
                "the database has a migration this release does not know (a newer release?)"
            ),
        }
    }
    let mut todo: Vec<_> = known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect();
    todo.sort_by_key(|m| m.version);
    Ok(todo)
}

/// The time recorded as `applied_at`.
pub(crate) fn now() -> UnixTime {
    SystemClock.now()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 2,
            description: "two",
            sql: "CREATE TABLE b (x INT);",
        },
        Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x INT);\r\n",
        },
    ];

    fn applied(version: i64, checksum: String) -> Applied {
        Applied { version, checksum }
    }

    #[test]
    fn pending_migrations_come_in_version_order() {
        let todo = pending(KNOWN, &[]).unwrap();
        assert_eq!(todo.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
        let todo = pending(KNOWN, &[applied(1, KNOWN[1].checksum())]).unwrap();
        assert_eq!(todo.iter().map(|m| m.version).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let err = pending(KNOWN, &[applied(1, "0".repeat(64))]).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(m) if m.contains("migration 1")));
    }

    #[test]
    fn unknown_applied_versions_are_tolerated() {
        let all = [
            applied(1, KNOWN[1].checksum()),
            applied(2, KNOWN[0].checksum()),
            applied(3, "x".into()),
        ];
        assert!(pending(KNOWN, &all).unwrap().is_empty());
    }

    #[test]
    fn checksums_ignore_carriage_returns() {
        let lf = Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x INT);\n",
        };
        assert_eq!(lf.checksum(), KNOWN[1].checksum());
        assert_eq!(lf.checksum().len(), 64);
    }
}
