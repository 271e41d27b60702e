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
    AgentDirectory, AgentRecord, ApiKeyStore, Denylist, SessionStore, Stores,
};

use crate::backend::{ExpiringTable, dispatch};
use crate::pool::{PoolSettings, SqlPool};
use crate::users::UserStore;

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
}

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
        }
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
        dispatch!(&self.pool, api_key_list_all())
    }

    /// Deletes sessions and denylist entries that expired at or before `now` (they can
    /// never matter again); returns how many rows went. Call it now and then.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let sessions = dispatch!(&self.pool, purge_expired(ExpiringTable::Sessions, now))?;
        let denied = dispatch!(&self.pool, purge_expired(ExpiringTable::DeniedTokens, now))?;
        Ok(sessions + denied)
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
        dispatch!(&self.pool, api_key_insert(&record))
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        dispatch!(&self.pool, api_key_find_by_hash(hash))
    }

    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        dispatch!(&self.pool, api_key_get(id))
    }

    async fn list(&self, of: &KeysOf) -> Result<Vec<ApiKeyRecord>, StoreError> {
        dispatch!(&self.pool, api_key_list(of))
    }

    async fn set_enabled(&self, id: &ApiKeyId, enabled: bool) -> Result<bool, StoreError> {
        dispatch!(&self.pool, api_key_set_enabled(id, enabled))
    }

    async fn delete(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        dispatch!(&self.pool, api_key_delete(id))
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
        dispatch!(&self.pool, api_key_touch(&batch))
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        dispatch!(&self.pool, api_key_count(org))
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
        dispatch!(&self.pool, session_create(&session))
    }

    /// The row and its `version` column, which every write to the row increments.
    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        dispatch!(&self.pool, session_get_versioned(id))
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
        dispatch!(&self.pool, session_swap(id, version, new))
    }

    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError> {
        dispatch!(&self.pool, session_revoke(id))
    }

    async fn revoke_all_for_user(&self, user: &UserId, now: UnixTime) -> Result<u64, StoreError> {
        dispatch!(&self.pool, session_revoke_all_for_user(user, now))
    }

    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError> {
        dispatch!(&self.pool, session_count_live(now, org))
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
        dispatch!(&self.pool, agent_insert(&agent))
    }

    async fn get(&self, id: &AgentId) -> Result<Option<AgentRecord>, StoreError> {
        dispatch!(&self.pool, agent_get(id))
    }

    async fn terminate(&self, id: &AgentId) -> Result<bool, StoreError> {
        dispatch!(&self.pool, agent_terminate(id))
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        dispatch!(&self.pool, agent_count(org))
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
        dispatch!(&self.pool, deny(jti, expires_at))
    }

    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError> {
        dispatch!(&self.pool, is_denied(jti, now))
    }
}
