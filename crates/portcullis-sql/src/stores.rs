//! The four core store traits on SQL, and [`SqlStores`], which hands them out.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::api_key::{ApiKeyRecord, KeyHash, KeysOf};
use portcullis_core::clock::UnixTime;
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{
    AgentDirectory, AgentRecord, ApiKeyStore, Credits, Denylist, SessionStore, Stores,
};

use crate::backend::{ExpiringTable, Ops};
use crate::pool::{PoolSettings, SqlPool};
use crate::users::UserStore;
use crate::with_pool;

/// Every store of one SQL database: the four core stores and the users.
///
/// ```no_run
/// # async fn run() -> Result<(), portcullis_core::StoreError> {
/// let sql = portcullis_sql::SqlStores::connect("sqlite://portcullis.db?mode=rwc").await?;
/// sql.migrate().await?;
/// let stores = sql.stores(); // for the Authenticator
/// let users = sql.users().clone(); // for login
/// # let _ = (stores, users); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqlStores {
    pool: SqlPool,
    users: UserStore,
    audit_retention_secs: u64,
}

/// How long audit events are kept by default: 90 days.
pub const DEFAULT_AUDIT_RETENTION_SECS: u64 = 90 * 86_400;

impl SqlStores {
    /// Connects to `url` (see [`SqlPool::connect`]): `sqlite://…` or `postgres://…`.
    /// Fails fast, with [`StoreError::Unavailable`], when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::from_pool(SqlPool::connect(url).await?))
    }

    /// [`connect`](Self::connect) with explicit pool settings.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        Ok(Self::from_pool(SqlPool::connect_with(url, settings).await?))
    }

    /// Stores over an existing pool.
    pub fn from_pool(pool: SqlPool) -> Self {
        Self {
            users: UserStore::new(pool.clone()),
            pool,
            audit_retention_secs: DEFAULT_AUDIT_RETENTION_SECS,
        }
    }

    /// Keeps audit events `secs` seconds ([`purge_expired`](Self::purge_expired) deletes
    /// older ones); [`DEFAULT_AUDIT_RETENTION_SECS`] otherwise.
    pub fn with_audit_retention(mut self, secs: u64) -> Self {
        self.audit_retention_secs = secs;
        self
    }

    /// The audit log of this database, for reading ([`crate::SqlAuditLog`]).
    pub fn audit_log(&self) -> crate::SqlAuditLog {
        crate::SqlAuditLog::new(self.pool.clone())
    }

    /// A writer of audit events to this database ([`crate::AuditWriter`]), on the current
    /// Tokio runtime.
    pub fn audit_writer(&self, settings: crate::AuditSettings) -> crate::AuditWriter {
        crate::AuditWriter::spawn(self.pool.clone(), settings)
    }

    /// The pool, e.g. for [`migrate`](crate::migrate).
    pub fn pool(&self) -> &SqlPool {
        &self.pool
    }

    /// Runs [`migrate`](crate::migrate) on this database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migrate(&self.pool).await
    }

    /// The four core stores, as the `Authenticator` takes them.
    pub fn stores(&self) -> Stores {
        Stores {
            api_keys: Arc::new(SqlApiKeyStore::new(self.pool.clone())),
            sessions: Arc::new(SqlSessionStore::new(self.pool.clone())),
            agents: Arc::new(SqlAgentDirectory::new(self.pool.clone())),
            denylist: Arc::new(SqlDenylist::new(self.pool.clone())),
        }
    }

    /// The users.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// How many API keys there are in `org`, or in every org (for stats): what
    /// [`ApiKeyStore::count`] of [`SqlStores::stores`]' key store answers.
    pub async fn count_api_keys(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        SqlApiKeyStore::new(self.pool.clone()).count(org).await
    }

    /// Every API key of every org, oldest first — for operators' tools (`portcullis keys
    /// list`), never for a request: no actor lists another's keys.
    pub async fn all_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_list_all(p).await)
    }

    /// Deletes sessions and denylist entries that expired at or before `now` (they can
    /// never matter again), and audit events older than the retention
    /// ([`with_audit_retention`](Self::with_audit_retention)); returns how many rows went.
    /// Call it now and then.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let sessions = with_pool!(&self.pool, |p| Ops::purge_expired(
            p,
            ExpiringTable::Sessions,
            now
        )
        .await)?;
        let denied = with_pool!(&self.pool, |p| Ops::purge_expired(
            p,
            ExpiringTable::DeniedTokens,
            now
        )
        .await)?;
        let audit = self
            .audit_log()
            .prune(now.saturating_sub(self.audit_retention_secs))
            .await?;
        Ok(sessions + denied + audit)
    }

    /// Runs [`purge_expired`](Self::purge_expired) every `every` on `clock`'s time, in a task of
    /// the current Tokio runtime, until the returned handle is aborted or the runtime stops. A
    /// failed purge is logged and tried again next time (nothing it would delete can matter).
    pub fn spawn_purge(
        &self,
        every: std::time::Duration,
        clock: portcullis_core::SharedClock,
    ) -> tokio::task::JoinHandle<()> {
        let stores = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                if let Err(e) = stores.purge_expired(clock.now()).await {
                    tracing::warn!(error = %e, "purge of expired rows failed");
                }
            }
        })
    }
}

/// [`ApiKeyStore`] on SQL: keys found through a unique index on their SHA-256.
#[derive(Debug, Clone)]
pub struct SqlApiKeyStore {
    pool: SqlPool,
}

impl SqlApiKeyStore {
    /// Keys in `pool`'s database (which must be migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl ApiKeyStore for SqlApiKeyStore {
    async fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_insert(p, &record).await)
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_find_by_hash(p, hash).await)
    }

    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_get(p, id).await)
    }

    async fn find_presented(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(ApiKeyRecord, Option<UnixTime>)>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_find_presented(p, hash).await)
    }

    async fn reroll(
        &self,
        id: &ApiKeyId,
        new_hash: KeyHash,
        display_prefix: &str,
        previous_until: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_reroll(
            p,
            id,
            &new_hash,
            display_prefix,
            previous_until
        )
        .await)
    }

    async fn previous_hash(
        &self,
        id: &ApiKeyId,
    ) -> Result<Option<(KeyHash, UnixTime)>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_previous_hash(p, id).await)
    }

    async fn list(&self, of: &KeysOf) -> Result<Vec<ApiKeyRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_list(p, of).await)
    }

    async fn set_enabled(&self, id: &ApiKeyId, enabled: bool) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_set_enabled(p, id, enabled)
            .await)
    }

    async fn delete(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_delete(p, id).await)
    }

    /// One conditional `UPDATE … RETURNING` on the key's row: see [`ApiKeyStore::take_credits`]
    /// for why the database's count is the only one, Redis or not.
    async fn take_credits(&self, id: &ApiKeyId, n: u64) -> Result<Credits, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_take_credits(p, id, n).await)
    }

    /// One `UPDATE … SET remaining = remaining + n` on the key's row.
    async fn return_credits(&self, id: &ApiKeyId, n: u64) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_return_credits(p, id, n).await)
    }

    /// One transaction for the batch, one update per distinct key (its latest time).
    async fn touch(&self, used: &[(ApiKeyId, UnixTime)]) -> Result<(), StoreError> {
        let mut latest: HashMap<&ApiKeyId, UnixTime> = HashMap::with_capacity(used.len());
        for (id, at) in used {
            let t = latest.entry(id).or_insert(*at);
            *t = (*t).max(*at);
        }
        if latest.is_empty() {
            return Ok(());
        }
        let mut batch: Vec<(ApiKeyId, UnixTime)> = latest
            .into_iter()
            .map(|(id, at)| (id.clone(), at))
            .collect();
        // A fixed order keeps concurrent batches from locking rows in opposite orders.
        batch.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        with_pool!(&self.pool, |p| Ops::api_key_touch(p, &batch).await)
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::api_key_count(p, org).await)
    }
}

/// [`SessionStore`] on SQL. Refresh rotation is a compare-and-swap on the row's version.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    pool: SqlPool,
}

impl SqlSessionStore {
    /// Sessions in `pool`'s database (which must be migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, session: SessionRecord) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::session_create(p, &session).await)
    }

    /// The row and its `version` column, which every write to the row increments.
    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        with_pool!(&self.pool, |p| Ops::session_get_versioned(p, id).await)
    }

    /// One `UPDATE … WHERE id = $1 AND version = $2`: the database makes it atomic.
    async fn swap(
        &self,
        id: &SessionId,
        expected_version: u64,
        new: &SessionRecord,
    ) -> Result<bool, StoreError> {
        // A version past i64 was never handed out, so no row can be at it.
        let Ok(version) = i64::try_from(expected_version) else {
            return Ok(false);
        };
        with_pool!(&self.pool, |p| Ops::session_swap(p, id, version, new).await)
    }

    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::session_revoke(p, id).await)
    }

    async fn revoke_all_for_user(&self, user: &UserId, now: UnixTime) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::session_revoke_all_for_user(
            p, user, now
        )
        .await)
    }

    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::session_count_live(p, now, org).await)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::session_list_for_user(p, user, now)
            .await)
    }
}

/// [`AgentDirectory`] on SQL.
#[derive(Debug, Clone)]
pub struct SqlAgentDirectory {
    pool: SqlPool,
}

impl SqlAgentDirectory {
    /// Agents in `pool`'s database (which must be migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AgentDirectory for SqlAgentDirectory {
    async fn insert(&self, agent: AgentRecord) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::agent_insert(p, &agent).await)
    }

    async fn get(&self, id: &AgentId) -> Result<Option<AgentRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::agent_get(p, id).await)
    }

    async fn terminate(&self, id: &AgentId) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::agent_terminate(p, id).await)
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::agent_count(p, org).await)
    }

    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<AgentRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::agent_list(p, org).await)
    }
}

/// [`Denylist`] on SQL; [`SqlStores::purge_expired`] removes entries that no longer matter.
#[derive(Debug, Clone)]
pub struct SqlDenylist {
    pool: SqlPool,
}

impl SqlDenylist {
    /// Denied `jti`s in `pool`'s database (which must be migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Denylist for SqlDenylist {
    async fn deny(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::deny(p, jti, expires_at).await)
    }

    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::is_denied(p, jti, now).await)
    }
}
