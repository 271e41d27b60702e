//! [`PermissionSet`]: 128 bits, one per permission, with O(1) checks.

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
