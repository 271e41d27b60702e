//! Your users, your table: what Portcullis needs to know of the people who log in.
//!
//! An application implements [`Users`] over its own users table (its own schema, its own
//! column names); `portcullis-sql`'s `UserStore` is one implementation, not a requirement.
//! Passwords are stored as PHC strings (`$argon2id$…`, as [`Passwords`](crate::password::Passwords)
//! makes them; other argon2 variants and parameters verify too).

use std::fmt;

/// The attribute an implementation of [`Users`] needs (`#[async_trait]`), re-exported so that an
/// application does not add the crate itself.
pub use async_trait::async_trait;

use crate::StoreError;
use crate::ids::{OrgId, UserId};

/// A person who logs in, as Portcullis sees them.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id: the `sub` of its access tokens. Stable, never reused.
    pub id: UserId,
    /// Its login name (the contract's `email`): stored trimmed and lowercased.
    pub email: String,
    /// Its password hash, a PHC string. `Debug` prints `***`.
    pub password_hash: String,
    /// Its role, mapped to permissions by [`Roles`](crate::Roles) (`admin`, `user`, …).
    pub role: String,
    /// Its organisation.
    pub org_id: OrgId,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"***")
            .field("role", &self.role)
            .field("org_id", &self.org_id)
            .finish()
    }
}

/// The users table, whoever owns it.
///
/// Every method is one query. Errors are [`StoreError`]s: `Unavailable` when the database
/// cannot be reached (Portcullis answers 503 and fails closed), `Conflict` when
/// [`create`](Users::create) meets a taken email.
#[async_trait]
pub trait Users: Send + Sync + 'static {
    /// The account whose login is exactly `email` (already trimmed and lowercased).
    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;
    /// The account `id`.
    async fn get(&self, id: &UserId) -> Result<Option<Account>, StoreError>;
    /// Stores a new account; a taken email is [`StoreError::Conflict`].
    async fn create(&self, account: &Account) -> Result<(), StoreError>;
    /// Replaces an account's password hash; false when there is no such account.
    async fn set_password_hash(&self, id: &UserId, password_hash: &str)
    -> Result<bool, StoreError>;
    /// How many accounts `org` has, or every org when `None`.
    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError>;
    /// The accounts of `org`, or of every org when `None`, in the order [`by_email`] sorts
    /// them (for an admin's list of users).
    ///
    /// The default answers [`StoreError::Unavailable`] (an implementation written before this
    /// method existed still compiles, and a list it cannot give fails closed).
    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<Account>, StoreError> {
        let _ = org;
        Err(StoreError::Unavailable(
            "this users table does not list users".into(),
        ))
    }
}

/// Sorts accounts by email (unique), then id, as [`Users::list`] answers them.
pub fn by_email(accounts: &mut [Account]) {
    accounts.sort_by(|a, b| {
        a.email
            .cmp(&b.email)
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
}

/// Users in memory: for tests, examples and prototypes (nothing survives a restart). Emails
/// are unique, as in a real table.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use portcullis_core::users::{Account, MemoryUsers, Users};
/// let users = MemoryUsers::default();
/// let ada = Account {
///     id: "u1".into(),
///     email: "ada@example.com".into(),
///     password_hash: "$argon2id$…".into(),
///     role: "admin".into(),
///     org_id: "acme".into(),
/// };
/// users.create(&ada).await.unwrap();
/// assert!(users.create(&ada).await.is_err());
/// assert_eq!(users.find_by_email("ada@example.com").await.unwrap(), Some(ada));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryUsers(std::sync::Mutex<std::collections::HashMap<UserId, Account>>);

impl MemoryUsers {
    /// Deletes the account `id` (Portcullis never does; an app's own tools, or a test, may).
    pub fn remove(&self, id: &UserId) -> Option<Account> {
        self.rows().remove(id)
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<UserId, Account>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Users for MemoryUsers {
    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.rows().values().find(|a| a.email == email).cloned())
    }

    async fn get(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.rows().get(id).cloned())
    }

    async fn create(&self, account: &Account) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if rows.contains_key(&account.id) || rows.values().any(|a| a.email == account.email) {
            return Err(StoreError::Conflict("user"));
        }
        rows.insert(account.id.clone(), account.clone());
        Ok(())
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .rows()
            .get_mut(id)
            .map(|a| a.password_hash = password_hash.to_owned())
            .is_some())
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        let rows = self.rows();
        Ok(rows
            .values()
            .filter(|a| org.is_none_or(|o| a.org_id == *o))
            .count() as u64)
    }

    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<Account>, StoreError> {
        let mut accounts: Vec<_> = self
            .rows()
            .values()
            .filter(|a| org.is_none_or(|o| a.org_id == *o))
            .cloned()
            .collect();
        by_email(&mut accounts);
        Ok(accounts)
    }
}
