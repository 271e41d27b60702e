//! [`PermissionNames`]: permissions by name, in a chosen order — what a 403 shows.

use std::fmt;

use super::{PermissionList, PermissionSet};

/// Names of permissions, in the order they were given: what a 403 shows the client
/// (`scope="memory:read session:read"`). Built from a route's [`PermissionList`] (its order)
/// or from a [`PermissionCatalog`](super::PermissionCatalog) (sorted), or empty when nothing names the permissions.
///
/// ```
/// use portcullis_core::{PermissionCatalog, PermissionNames, PermissionList};
/// use portcullis_core::seed::{MemoryDelete, AdminRead};
/// type Need = (MemoryDelete, AdminRead);
/// assert_eq!(PermissionNames::of::<Need>(Need::SET).to_string(), "memory:delete admin:read");
/// let sorted: PermissionNames = PermissionCatalog::seed().names(Need::SET).collect();
/// assert_eq!(sorted.to_string(), "admin:read memory:delete");
/// assert!(PermissionNames::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PermissionNames(Box<[&'static str]>);

impl PermissionNames {
    /// The names of the permissions of `P` that are in `set`, in `P`'s order.
    pub fn of<P: PermissionList>(set: PermissionSet) -> Self {
        let mut names = Vec::new();
        P::names_in(set, &mut |name| names.push(name));
        Self(names.into_boxed_slice())
    }

    /// True when no permission is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<&'static str> for PermissionNames {
    fn from_iter<I: IntoIterator<Item = &'static str>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// The names separated by single spaces (a `scope` value).
impl fmt::Display for PermissionNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}
