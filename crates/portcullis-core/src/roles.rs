//! Roles: names mapped to permission sets by configuration.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::permission::{PermissionSet, seed};

/// A role name → permission set map, and which roles act in every org. The defaults are the
/// contract's `superadmin` (every permission, every org), `admin`, `user` and `viewer`;
/// applications add or replace roles through [`Roles::insert`] and [`Roles::insert_all_orgs`].
///
/// ```
/// use portcullis_core::{Roles, PermissionList, seed::{AdminWrite, MemoryRead}};
/// let roles = Roles::default();
/// assert!(roles.get("admin").unwrap().contains(AdminWrite::SET));
/// assert!(roles.get("viewer").unwrap().contains(MemoryRead::SET));
/// assert!(roles.get("root").is_none());
/// assert!(roles.acts_in_every_org("superadmin") && !roles.acts_in_every_org("admin"));
/// ```
#[derive(Debug, Clone)]
pub struct Roles {
    permissions: HashMap<Arc<str>, PermissionSet>,
    all_orgs: HashSet<Arc<str>>,
}

impl Roles {
    /// No roles at all.
    pub fn empty() -> Self {
        Self {
            permissions: HashMap::new(),
            all_orgs: HashSet::new(),
        }
    }

    /// Adds or replaces a role that acts in its holder's org only.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, permissions: PermissionSet) -> &mut Self {
        let name = name.into();
        self.all_orgs.remove(&name);
        self.permissions.insert(name, permissions);
        self
    }

    /// Adds or replaces a role that acts in every org.
    pub fn insert_all_orgs(
        &mut self,
        name: impl Into<Arc<str>>,
        permissions: PermissionSet,
    ) -> &mut Self {
        let name = name.into();
        self.all_orgs.insert(name.clone());
        self.permissions.insert(name, permissions);
        self
    }

    /// The permissions of `role`, if it exists.
    pub fn get(&self, role: &str) -> Option<PermissionSet> {
        self.permissions.get(role).copied()
    }

    /// True when `role` exists.
    pub fn contains(&self, role: &str) -> bool {
        self.permissions.contains_key(role)
    }

    /// True when `role` acts in every org.
    pub fn acts_in_every_org(&self, role: &str) -> bool {
        self.all_orgs.contains(role)
    }

    /// The role names, sorted (for error messages and documentation).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.permissions.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }
}

impl Default for Roles {
    fn default() -> Self {
        use seed::*;
        let mut roles = Self::empty();
        roles
            .insert_all_orgs("superadmin", PermissionSet::ALL)
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
