//! Permissions: a 128-bit set with O(1) checks, declared by applications through
//! [`permissions!`](crate::permissions), each with an `"area:verb"` name and a zero-sized
//! marker type so that routes name their requirements at compile time.

use std::fmt;

/// A set of permissions: one bit each, up to 128.
///
/// ```
/// use portcullis_core::{PermissionList, PermissionSet, seed::{MemoryCreate, MemoryRead, SessionCreate}};
/// let held = <(MemoryCreate, MemoryRead)>::SET;
/// assert!(held.contains(MemoryRead::SET));
/// assert!(!held.contains(SessionCreate::SET));
/// assert_eq!(held.missing(<(MemoryRead, SessionCreate)>::SET), SessionCreate::SET);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u128);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: Self = Self(0);
    /// Every permission there can be (the board).
    pub const ALL: Self = Self(u128::MAX);

    /// The set holding the single permission at `bit`.
    ///
    /// # Panics
    /// At compile time (in const context) when `bit >= 128`.
    pub const fn from_bit(bit: u8) -> Self {
        assert!(bit < 128, "permission bits go from 0 to 127");
        Self(1u128 << bit)
    }

    /// The raw bits (for storage).
    pub const fn bits(self) -> u128 {
        self.0
    }

    /// A set from raw bits (from storage).
    pub const fn from_bits(bits: u128) -> Self {
        Self(bits)
    }

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// What both sets hold.
    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// True when every permission in `required` is held.
    pub const fn contains(self, required: Self) -> bool {
        self.0 & required.0 == required.0
    }

    /// True when at least one permission in `any` is held (false for an empty `any`).
    pub const fn intersects(self, any: Self) -> bool {
        self.0 & any.0 != 0
    }

    /// The permissions in `required` that this set lacks.
    #[must_use]
    pub const fn missing(self, required: Self) -> Self {
        Self(required.0 & !self.0)
    }

    /// True when empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bit positions held, in ascending order.
    pub fn iter_bits(self) -> impl Iterator<Item = u8> {
        (0u8..128).filter(move |b| self.0 & (1u128 << b) != 0)
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ALL {
            return f.write_str("PermissionSet(ALL)");
        }
        f.debug_set().entries(self.iter_bits()).finish()
    }
}

impl std::ops::BitOr for PermissionSet {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// Names of permissions, in the order they were given: what a 403 shows the client
/// (`scope="memory:read session:read"`). Built from a route's [`PermissionList`] (its order)
/// or from a [`PermissionCatalog`] (sorted), or empty when nothing names the permissions.
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

/// One permission, declared by [`permissions!`](crate::permissions).
pub trait Permission: PermissionList {
    /// Its bit in a [`PermissionSet`].
    const BIT: u8;
    /// Its `"area:verb"` name, as used in tokens, the database and `WWW-Authenticate`.
    const NAME: &'static str;
}

/// A permission marker or a tuple of them: what a route requires.
pub trait PermissionList: Send + Sync + 'static {
    /// The set of every permission in the list.
    const SET: PermissionSet;

    /// Calls `f` with the name of each permission of the list that is in `set`, in list order
    /// (how a 403 names what is missing without a catalog).
    fn names_in(set: PermissionSet, f: &mut dyn FnMut(&'static str));
}

macro_rules! tuple_lists {
    ($( ($($t:ident),+) )+) => {$(
        impl<$($t: PermissionList),+> PermissionList for ($($t,)+) {
            const SET: PermissionSet = PermissionSet::EMPTY $(.union($t::SET))+;

            fn names_in(set: PermissionSet, f: &mut dyn FnMut(&'static str)) {
                $($t::names_in(set, f);)+
            }
        }
    )+};
}
tuple_lists! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}

/// One declared permission: its bit and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionDef {
    /// Bit position, 0–127.
    pub bit: u8,
    /// `"area:verb"`.
    pub name: &'static str,
}

/// The permissions one [`permissions!`](crate::permissions) block declares.
#[derive(Debug, Clone, Copy)]
pub struct PermissionGroup(pub &'static [PermissionDef]);

impl PermissionGroup {
    /// Checks, at compile time when used in a `const`, that bits and names are unique and that
    /// every name is `area:verb` in lowercase ASCII.
    pub const fn assert_valid(&self) {
        let defs = self.0;
        let mut i = 0;
        while i < defs.len() {
            assert!(defs[i].bit < 128, "permission bits go from 0 to 127");
            assert!(
                valid_name(defs[i].name),
                "permission names look like `area:verb`"
            );
            let mut j = i + 1;
            while j < defs.len() {
                assert!(defs[i].bit != defs[j].bit, "two permissions share a bit");
                assert!(
                    !str_eq(defs[i].name, defs[j].name),
                    "two permissions share a name"
                );
                j += 1;
            }
            i += 1;
        }
    }

    /// Every permission of the group.
    pub const fn all(&self) -> PermissionSet {
        let mut set = PermissionSet::EMPTY;
        let mut i = 0;
        while i < self.0.len() {
            set = set.union(PermissionSet::from_bit(self.0[i].bit));
            i += 1;
        }
        set
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let mut colons = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b':' => {
                if i == 0 || i == b.len() - 1 {
                    return false;
                }
                colons += 1
            }
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {}
            _ => return false,
        }
        i += 1;
    }
    colons == 1
}

/// Declares an application's permissions: one zero-sized marker type per permission and a
/// [`PermissionGroup`] constant listing them, checked at compile time.
///
/// ```
/// portcullis_core::permissions! {
///     /// Billing permissions of my app (bits 32 and up, clear of the seed set).
///     pub const BILLING = {
///         /// Read invoices.
///         BillingRead = 32 => "billing:read",
///         /// Issue refunds.
///         BillingRefund = 33 => "billing:refund",
///     };
/// }
/// use portcullis_core::{Permission, PermissionCatalog, PermissionList, seed};
/// let catalog = PermissionCatalog::new(&[seed::SEED, BILLING]).unwrap();
/// assert_eq!(catalog.parse("billing:refund"), Some(BillingRefund::SET));
/// assert_eq!(BillingRead::NAME, "billing:read");
/// ```
#[macro_export]
macro_rules! permissions {
    (
        $(#[$meta:meta])*
        $vis:vis const $group:ident = {
            $( $(#[$pmeta:meta])* $name:ident = $bit:literal => $text:literal ),+ $(,)?
        };
    ) => {
        $(
            $(#[$pmeta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            $vis struct $name;

            impl $crate::Permission for $name {
                const BIT: u8 = $bit;
                const NAME: &'static str = $text;
            }

            impl $crate::PermissionList for $name {
                const SET: $crate::PermissionSet = $crate::PermissionSet::from_bit($bit);

                fn names_in(set: $crate::PermissionSet, f: &mut dyn FnMut(&'static str)) {
                    if set.contains(Self::SET) {
                        f($text);
                    }
                }
            }
        )+

        $(#[$meta])*
        $vis const $group: $crate::PermissionGroup = $crate::PermissionGroup(&[
            $( $crate::PermissionDef { bit: $bit, name: $text } ),+
        ]);

        const _: () = $group.assert_valid();
    };
}

/// The permissions of the sample server, built in (bits 0–12).
pub mod seed {
    crate::permissions! {
        /// `session:*`, `memory:*` and `admin:*`.
        pub const SEED = {
            /// `session:create`
            SessionCreate = 0 => "session:create",
            /// `session:read`
            SessionRead = 1 => "session:read",
            /// `session:update`
            SessionUpdate = 2 => "session:update",
            /// `session:delete`
            SessionDelete = 3 => "session:delete",
            /// `session:list`
            SessionList = 4 => "session:list",
            /// `memory:create`
            MemoryCreate = 5 => "memory:create",
            /// `memory:read`
            MemoryRead = 6 => "memory:read",
            /// `memory:update`
            MemoryUpdate = 7 => "memory:update",
            /// `memory:delete`
            MemoryDelete = 8 => "memory:delete",
            /// `memory:search`
            MemorySearch = 9 => "memory:search",
            /// `memory:list`
            MemoryList = 10 => "memory:list",
            /// `admin:read`
            AdminRead = 11 => "admin:read",
            /// `admin:write`
            AdminWrite = 12 => "admin:write",
        };
    }

    use super::{PermissionList, PermissionSet};

    /// `session:*`.
    pub const SESSION_ALL: PermissionSet = <(
        SessionCreate,
        SessionRead,
        SessionUpdate,
        SessionDelete,
        SessionList,
    )>::SET;
    /// `memory:*`.
    pub const MEMORY_ALL: PermissionSet = <(
        MemoryCreate,
        MemoryRead,
        MemoryUpdate,
        MemoryDelete,
        MemorySearch,
        MemoryList,
    )>::SET;
    /// `admin:*`.
    pub const ADMIN_ALL: PermissionSet = <(AdminRead, AdminWrite)>::SET;
}

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

#[cfg(test)]
mod tests {
    use super::seed::*;
    use super::*;

    #[test]
    fn seed_names_round_trip_and_sort() {
        let cat = PermissionCatalog::seed();
        let all: Vec<_> = cat.names(cat.all()).collect();
        assert_eq!(all.len(), 13);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(all, sorted);
        for name in all {
            let set = cat.parse(name).unwrap();
            assert_eq!(cat.names(set).collect::<Vec<_>>(), vec![name]);
        }
        assert_eq!(cat.parse("memory:fly"), None);
    }

    #[test]
    fn tuples_combine_and_nest() {
        type Both = (MemoryCreate, (SessionRead, AdminWrite));
        assert_eq!(
            Both::SET,
            MemoryCreate::SET | SessionRead::SET | AdminWrite::SET
        );
        assert_eq!(MemoryCreate::NAME, "memory:create");
    }

    #[test]
    fn names_in_lists_only_the_members_in_the_set_in_order() {
        type Need = (MemoryCreate, (SessionRead, AdminWrite));
        let mut names = Vec::new();
        Need::names_in(
            SessionRead::SET | AdminWrite::SET | MemoryList::SET,
            &mut |n| names.push(n),
        );
        assert_eq!(names, ["session:read", "admin:write"]);
    }

    #[test]
    fn missing_is_what_is_required_and_not_held() {
        let held = SESSION_ALL;
        let need = <(SessionRead, MemoryRead)>::SET;
        assert!(!held.contains(need));
        assert!(held.intersects(need));
        assert_eq!(held.missing(need), MemoryRead::SET);
        assert!(PermissionSet::ALL.contains(need));
        assert!(!PermissionSet::EMPTY.intersects(PermissionSet::EMPTY));
    }

    #[test]
    fn clashing_groups_are_refused() {
        crate::permissions! {
            const CLASH = { Other = 3 => "other:thing" };
        }
        let err = PermissionCatalog::new(&[SEED, CLASH]).unwrap_err();
        assert_eq!(err.bit, 3);
        assert_eq!(Other::SET, PermissionSet::from_bit(3));
    }

    #[test]
    fn parse_all_names_the_first_unknown() {
        let cat = PermissionCatalog::seed();
        assert_eq!(
            cat.parse_all(["memory:read", "session:list"]),
            Ok(MemoryRead::SET | SessionList::SET)
        );
        assert_eq!(cat.parse_all(["memory:read", "nope:x"]), Err("nope:x"));
    }
}
