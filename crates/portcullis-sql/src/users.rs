//! The users the sample server logs in: a table and five queries, and the core's
//! [`Users`] trait over them.

use std::fmt;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::clock::{Clock, SystemClock, UnixTime};
use portcullis_core::ids::{OrgId, UserId};
use portcullis_core::users::{Account, Users};

use crate::SqlPool;
use crate::backend::Ops;
use crate::with_pool;

/// A user account.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its id (the `sub` of its access tokens).
    pub id: UserId,
    /// Its login; unique, compared exactly (normalise before storing and before looking up).
    pub email: String,
    /// The password hash (a PHC string such as `$argon2id$…`). `Debug` prints `***`.
    pub password_hash: String,
    /// Its role name (`admin`, `user`, `viewer`, …), mapped to permissions by the config.
    pub role: String,
    /// Its organisation.
    pub org_id: OrgId,
    /// When created.
    pub created_at: UnixTime,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"***")
            .field("role", &self.role)
            .field("org_id", &self.org_id)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Users in the SQL database. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), portcullis_core::StoreError> {
/// use portcullis_sql::{SqlStores, UserRecord};
/// let sql = SqlStores::connect("sqlite::memory:").await?;
/// sql.migrate().await?;
/// let admin = UserRecord {
///     id: "u1".into(),
///     email: "admin@example.com".into(),
///     password_hash: "$argon2id$…".into(),
///     role: "admin".into(),
///     org_id: "default".into(),
///     created_at: 0,
/// };
/// sql.users().create(&admin).await?;
/// assert_eq!(sql.users().count(None).await?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UserStore {
    pool: SqlPool,
}

impl UserStore {
    /// Users in `pool`'s database (which must be migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    /// Stores a new user; a taken id or email is a [`StoreError::Conflict`].
    pub async fn create(&self, user: &UserRecord) -> Result<(), StoreError> {
        with_pool!(&self.pool, |p| Ops::user_create(p, user).await)
    }

    /// The user whose email is exactly `email`.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::user_find_by_email(p, email).await)
    }

    /// The user `id`.
    pub async fn get(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::user_get(p, id).await)
    }

    /// Replaces a user's password hash; false when there is no such user.
    pub async fn set_password_hash(
        &self,
        id: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        with_pool!(&self.pool, |p| Ops::user_set_password_hash(
            p,
            id,
            password_hash
        )
        .await)
    }

    /// How many users there are in `org`, or in every org.
    pub async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::user_count(p, org).await)
    }

    /// The users of `org`, or of every org, sorted by email.
    pub async fn list(&self, org: Option<&OrgId>) -> Result<Vec<UserRecord>, StoreError> {
        with_pool!(&self.pool, |p| Ops::user_list(p, org).await)
    }
}

impl From<UserRecord> for Account {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            email: u.email,
            password_hash: u.password_hash,
            role: u.role,
            org_id: u.org_id,
        }
    }
}

/// The core's [`Users`] over this table: what `portcullis_core::lifecycle::Lifecycle` logs in
/// against. [`create`](Users::create) stamps `created_at` from the system clock.
#[async_trait]
impl Users for UserStore {
    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        Ok(UserStore::find_by_email(self, email)
            .await?
            .map(Account::from))
    }

    async fn get(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(UserStore::get(self, id).await?.map(Account::from))
    }

    async fn create(&self, account: &Account) -> Result<(), StoreError> {
        let record = UserRecord {
            id: account.id.clone(),
            email: account.email.clone(),
            password_hash: account.password_hash.clone(),
            role: account.role.clone(),
            org_id: account.org_id.clone(),
            created_at: SystemClock.now(),
        };
        UserStore::create(self, &record).await
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        UserStore::set_password_hash(self, id, password_hash).await
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        UserStore::count(self, org).await
    }

    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<Account>, StoreError> {
        Ok(UserStore::list(self, org)
            .await?
            .into_iter()
            .map(Account::from)
            .collect())
    }
}
