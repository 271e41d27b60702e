//! Roles: names mapped to permission sets by configuration.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::actor::Actor;
use crate::error::AuthError;
use crate::permission::{PermissionSet, seed};

/// Why a role cannot be given to a new user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleGrantError {
    /// No such role (400: name the roles, not what was sent).
    Unknown,
    /// The role acts in every org and the giver does not (403 `org_forbidden`).
    Refused(AuthError),
}

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

    /// Whether `giver` may give `role` to a new user: the role must exist, and only an actor
    /// that acts in every org may give a role that does (an org admin cannot mint a
    /// superadmin, which would act in every org).
    ///
    /// ```
    /// use portcullis_core::{Actor, Roles, roles::RoleGrantError};
    /// let roles = Roles::default();
    /// assert_eq!(roles.may_grant(&Actor::Board, "superadmin"), Ok(()));
    /// assert_eq!(roles.may_grant(&Actor::Board, "emperor"), Err(RoleGrantError::Unknown));
    /// ```
    pub fn may_grant(&self, giver: &Actor, role: &str) -> Result<(), RoleGrantError> {
        if !self.contains(role) {
            return Err(RoleGrantError::Unknown);
        }
        if self.acts_in_every_org(role) && !giver.acts_in_every_org() {
            return Err(RoleGrantError::Refused(AuthError::OrgForbidden));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::actor::{AuthMethod, UserActor};

    fn user(role: &str, all_orgs: bool) -> Actor {
        Actor::User(Arc::new(UserActor {
            id: "u".into(),
            org_id: "acme".into(),
            role: role.into(),
            permissions: PermissionSet::ALL,
            all_orgs,
            session_id: "s".into(),
            method: AuthMethod::Jwt,
        }))
    }

    #[test]
    fn only_a_giver_acting_in_every_org_gives_a_role_that_does() {
        let roles = Roles::default();
        let org_admin = user("admin", false);
        assert_eq!(
            roles.may_grant(&org_admin, "superadmin"),
            Err(RoleGrantError::Refused(AuthError::OrgForbidden))
        );
        assert_eq!(roles.may_grant(&org_admin, "admin"), Ok(()));
        assert_eq!(
            roles.may_grant(&user("superadmin", true), "superadmin"),
            Ok(())
        );
        assert_eq!(
            roles.may_grant(&org_admin, "root"),
            Err(RoleGrantError::Unknown)
        );
    }
}
