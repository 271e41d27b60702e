//! [`PermissionCatalog`]: every permission an application uses, names ↔ bits.

use super::{PermissionDef, PermissionGroup, PermissionSet, seed};

/// Every declared permission an application uses: names ↔ bits, for tokens, storage and
/// error messages. Built once at start-up from one or more [`PermissionGroup`]s.
#[derive(Debug, Clone)]
pub struct PermissionCatalog {
    // Sorted by name, so `names` yields sorted output without sorting per call.
    by_name: Vec<PermissionDef>,
}

/// Two groups given to [`PermissionCatalog::new`] declare the same bit or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission `{name}` (bit {bit}) clashes with another declared permission")]
pub struct PermissionClash {
    /// The clashing name.
    pub name: &'static str,
    /// The clashing bit.
    pub bit: u8,
}

impl PermissionCatalog {
    /// A catalog of the given groups.
    pub fn new(groups: &[PermissionGroup]) -> Result<Self, PermissionClash> {
        let mut by_name: Vec<PermissionDef> = Vec::new();
        for def in groups.iter().flat_map(|g| g.0.iter()) {
            if by_name
                .iter()
                .any(|d| d.bit == def.bit || d.name == def.name)
            {
                return Err(PermissionClash {
                    name: def.name,
                    bit: def.bit,
                });
            }
            by_name.push(*def);
        }
        by_name.sort_by_key(|d| d.name);
        Ok(Self { by_name })
    }

    /// The built-in seed set only.
    pub fn seed() -> Self {
        let mut by_name = seed::SEED.0.to_vec();
        by_name.sort_by_key(|d| d.name);
        Self { by_name }
    }

    /// The permission called `name`, if declared.
    pub fn parse(&self, name: &str) -> Option<PermissionSet> {
        self.by_name
            .binary_search_by(|d| d.name.cmp(name))
            .ok()
            .map(|i| PermissionSet::from_bit(self.by_name[i].bit))
    }

    /// Every name in `names` as one set; the first unknown name is the error.
    pub fn parse_all<'a, I>(&self, names: I) -> Result<PermissionSet, &'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        names.into_iter().try_fold(PermissionSet::EMPTY, |set, n| {
            self.parse(n).map(|p| set.union(p)).ok_or(n)
        })
    }

    /// The names of the declared permissions in `set`, sorted.
    pub fn names(&self, set: PermissionSet) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name
            .iter()
            .filter(move |d| set.contains(PermissionSet::from_bit(d.bit)))
            .map(|d| d.name)
    }

    /// Every declared permission.
    pub fn all(&self) -> PermissionSet {
        self.by_name.iter().fold(PermissionSet::EMPTY, |s, d| {
            s.union(PermissionSet::from_bit(d.bit))
        })
    }
}

impl Default for PermissionCatalog {
    fn default() -> Self {
        Self::seed()
    }
}
