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
}
