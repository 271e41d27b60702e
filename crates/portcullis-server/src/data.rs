//! The sample application's own data: org-scoped `sessions` (conversations) and `memories`,
//! in the same database as the auth tables. Every query names the org, so another org's id is
//! simply not found. The SQL is the same on both backends (SQLite accepts `$1` placeholders);
//! [`with_pool!`] runs it on whichever pool the server was given.

use portcullis::OrgScope;
use portcullis::StoreError;
use portcullis::sql::{SqlPool, with_pool};
use serde::Serialize;
use sqlx::Row;

/// The tables, created if missing (idempotent; runs after the library's migrations).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS app_sessions (
        id TEXT NOT NULL PRIMARY KEY,
        org_id TEXT NOT NULL,
        title TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS app_sessions_org_idx ON app_sessions (org_id, created_at)",
    "CREATE TABLE IF NOT EXISTS app_memories (
        id TEXT NOT NULL PRIMARY KEY,
        org_id TEXT NOT NULL,
        content TEXT NOT NULL,
        session_id TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS app_memories_org_idx ON app_memories (org_id, created_at)",
];

/// The advisory lock the demo tables are created under on PostgreSQL (any constant of this
/// application's own).
const MIGRATION_LOCK: i64 = 0x706f_7274_6375_6c6c; // "portcull"

/// A conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// Its id.
    pub id: String,
    /// Its organisation.
    pub org_id: String,
    /// Its title.
    pub title: String,
    /// The actor that created it.
    pub created_by: String,
}

/// A remembered piece of text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Memory {
    /// Its id.
    pub id: String,
    /// Its organisation.
    pub org_id: String,
    /// The text.
    pub content: String,
    /// The session it belongs to, if any.
    pub session_id: Option<String>,
}

fn err(e: sqlx::Error) -> StoreError {
    // sqlx's messages name tables and columns, never values: safe to log.
    StoreError::Unavailable(format!("database: {e}"))
}

/// Which orgs a read may see, bound to queries as `$1 IS NULL OR org_id = $1` (`NULL`: every
/// org).
fn bind(scope: OrgScope<'_>) -> Option<String> {
    scope.org().map(ToString::to_string)
}

/// Sessions and memories. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Data {
    pool: SqlPool,
}

macro_rules! session_row {
    ($row:expr) => {
        Session {
            id: $row.try_get("id").map_err(err)?,
            org_id: $row.try_get("org_id").map_err(err)?,
            title: $row.try_get("title").map_err(err)?,
            created_by: $row.try_get("created_by").map_err(err)?,
        }
    };
}

macro_rules! memory_row {
    ($row:expr) => {
        Memory {
            id: $row.try_get("id").map_err(err)?,
            org_id: $row.try_get("org_id").map_err(err)?,
            content: $row.try_get("content").map_err(err)?,
            session_id: $row.try_get("session_id").map_err(err)?,
        }
    };
}

/// The row `id` of a `SELECT … WHERE id = $2 AND ($1 IS NULL OR org_id = $1)`, decoded by
/// `$row`, if `scope` sees it.
macro_rules! fetch_one {
    ($self:ident, $sql:expr, $scope:expr, $id:expr, $row:ident) => {
        with_pool!(&$self.pool, |p| {
            let row = sqlx::query($sql)
                .bind(bind($scope))
                .bind($id)
                .fetch_optional(p)
                .await
                .map_err(err)?;
            row.map(|r| Ok($row!(r))).transpose()
        })
    };
}

const SESSION_COLS: &str = "id, org_id, title, created_by";
const MEMORY_COLS: &str = "id, org_id, content, session_id";

impl Data {
    /// On `pool`.
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    /// Creates the tables if missing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if let SqlPool::Postgres(p) = &self.pool {
            // PostgreSQL's `CREATE … IF NOT EXISTS` is not safe under concurrency: two instances
            // starting at once on a fresh database collide in its catalog (a unique violation).
            // One at a time, under a transaction-scoped advisory lock.
            let mut tx = p.begin().await.map_err(err)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            for sql in SCHEMA {
                sqlx::query(sql).execute(&mut *tx).await.map_err(err)?;
            }
            return tx.commit().await.map_err(err);
        }
        for sql in SCHEMA {
            with_pool!(&self.pool, |p| sqlx::query(sql)
                .execute(p)
                .await
                .map(|_| ())
                .map_err(err))?;
        }
        Ok(())
    }

    /// Stores a new session.
    pub async fn create_session(&self, s: &Session, now: i64) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| sqlx::query(
            "INSERT INTO app_sessions (id, org_id, title, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(&s.id)
        .bind(&s.org_id)
        .bind(&s.title)
        .bind(&s.created_by)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(err))
    }

    /// The sessions `scope` sees, oldest first.
    pub async fn list_sessions(&self, scope: OrgScope<'_>) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM app_sessions \
             WHERE ($1 IS NULL OR org_id = $1) ORDER BY created_at, id"
        );
        with_pool!(&self.pool, |p| {
            let rows = sqlx::query(&sql)
                .bind(bind(scope))
                .fetch_all(p)
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| Ok(session_row!(r)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// The session `id`, if `scope` sees it.
    pub async fn get_session(
        &self,
        scope: OrgScope<'_>,
        id: &str,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM app_sessions WHERE id = $2 AND ($1 IS NULL OR org_id = $1)"
        );
        fetch_one!(self, &sql, scope, id, session_row)
    }

    /// Renames a session; false when `scope` does not see it.
    pub async fn update_session(
        &self,
        scope: OrgScope<'_>,
        id: &str,
        title: &str,
    ) -> Result<bool, StoreError> {
        self.change_one(
            "UPDATE app_sessions SET title = $3 WHERE id = $2 AND ($1 IS NULL OR org_id = $1)",
            scope,
            id,
            Some(title),
        )
        .await
    }

    /// Deletes a session; false when `scope` does not see it.
    pub async fn delete_session(&self, scope: OrgScope<'_>, id: &str) -> Result<bool, StoreError> {
        self.change_one(
            "DELETE FROM app_sessions WHERE id = $2 AND ($1 IS NULL OR org_id = $1)",
            scope,
            id,
            None,
        )
        .await
    }

    /// Stores a new memory.
    pub async fn create_memory(
        &self,
        m: &Memory,
        created_by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| sqlx::query(
            "INSERT INTO app_memories (id, org_id, content, session_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&m.id)
        .bind(&m.org_id)
        .bind(&m.content)
        .bind(&m.session_id)
        .bind(created_by)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(err))
    }

    /// The memories `scope` sees whose content contains `needle` (case-insensitive), oldest
    /// first; all of them when `needle` is `None`.
    pub async fn list_memories(
        &self,
        scope: OrgScope<'_>,
        needle: Option<&str>,
    ) -> Result<Vec<Memory>, StoreError> {
        let pattern = needle.map(|n| format!("%{}%", escape_like(&n.to_lowercase())));
        let sql = format!(
            "SELECT {MEMORY_COLS} FROM app_memories \
             WHERE ($1 IS NULL OR org_id = $1) \
             AND ($2 IS NULL OR LOWER(content) LIKE $2 ESCAPE '\\') \
             ORDER BY created_at, id"
        );
        with_pool!(&self.pool, |p| {
            let rows = sqlx::query(&sql)
                .bind(bind(scope))
                .bind(&pattern)
                .fetch_all(p)
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| Ok(memory_row!(r)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// The memory `id`, if `scope` sees it.
    pub async fn get_memory(
        &self,
        scope: OrgScope<'_>,
        id: &str,
    ) -> Result<Option<Memory>, StoreError> {
        let sql = format!(
            "SELECT {MEMORY_COLS} FROM app_memories WHERE id = $2 AND ($1 IS NULL OR org_id = $1)"
        );
        fetch_one!(self, &sql, scope, id, memory_row)
    }

    /// Rewrites a memory; false when `scope` does not see it.
    pub async fn update_memory(
        &self,
        scope: OrgScope<'_>,
        id: &str,
        content: &str,
    ) -> Result<bool, StoreError> {
        self.change_one(
            "UPDATE app_memories SET content = $3 WHERE id = $2 AND ($1 IS NULL OR org_id = $1)",
            scope,
            id,
            Some(content),
        )
        .await
    }

    /// Deletes a memory; false when `scope` does not see it.
    pub async fn delete_memory(&self, scope: OrgScope<'_>, id: &str) -> Result<bool, StoreError> {
        self.change_one(
            "DELETE FROM app_memories WHERE id = $2 AND ($1 IS NULL OR org_id = $1)",
            scope,
            id,
            None,
        )
        .await
    }

    /// Runs an `UPDATE` or `DELETE` of the row `id` if `scope` sees it: `$1` is the scope,
    /// `$2` the id, `$3` the new value (if any). True when a row changed.
    async fn change_one(
        &self,
        sql: &str,
        scope: OrgScope<'_>,
        id: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| {
            let mut query = sqlx::query(sql).bind(bind(scope)).bind(id);
            if let Some(value) = value {
                query = query.bind(value);
            }
            query
                .execute(p)
                .await
                .map(|r| r.rows_affected() > 0)
                .map_err(err)
        })
    }
}

/// Escapes `LIKE`'s wildcards so that a search for `50%` means the text `50%`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
