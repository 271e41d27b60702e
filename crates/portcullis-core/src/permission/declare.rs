//! Declaring permissions: the [`Permission`] and [`PermissionList`] traits, and the
//! [`permissions!`](crate::permissions) macro that makes marker types and a checked [`PermissionGroup`].

use super::PermissionSet;

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
