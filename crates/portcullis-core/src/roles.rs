//! Roles: names mapped to permission sets by configuration.

use std::collections::HashMap;
use std::sync::Arc;

use crate::permission::{PermissionSet, seed};

/// A role name → permission set map. The defaults are the contract's `admin`, `user` and
/// `viewer`; applications add or replace roles through [`Roles::insert`].
///
/// ```
/// use portcullis_core::{Roles, PermissionList, seed::{AdminWrite, MemoryRead}};
/// let roles = Roles::default();
/// assert!(roles.get("admin").unwrap().contains(AdminWrite::SET));
/// assert!(roles.get("viewer").unwrap().contains(MemoryRead::SET));
/// assert!(roles.get("root").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Roles(HashMap<Arc<str>, PermissionSet>);

impl Roles {
    /// No roles at all.
    pub fn empty() -> Self {
        Self(HashMap::new())
    }

    /// Adds or replaces a role.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, permissions: PermissionSet) -> &mut Self {
        self.0.insert(name.into(), permissions);
        self
    }

    /// The permissions of `role`, if it exists.
    pub fn get(&self, role: &str) -> Option<PermissionSet> {
        self.0.get(role).copied()
    }

    /// True when `role` exists.
    pub fn contains(&self, role: &str) -> bool {
        self.0.contains_key(role)
    }
}

impl Default for Roles {
    fn default() -> Self {
        use seed::*;
        let mut roles = Self::empty();
        roles
            .insert("admin", SESSION_ALL | MEMORY_ALL | ADMIN_ALL)
            .insert("user", SESSION_ALL | MEMORY_ALL)
            .insert(
                "viewer",
                <(
                    SessionRead,
                    SessionList,
                    MemoryRead,
                    MemoryList,
                    MemorySearch,
                ) as crate::PermissionList>::SET,
            );
        roles
    }
}
