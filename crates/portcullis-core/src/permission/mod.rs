//! Permissions: a 128-bit set with O(1) checks, declared by applications through
//! [`permissions!`](crate::permissions), each with an `"area:verb"` name and a zero-sized
//! marker type so that routes name their requirements at compile time.
//!
//! `set` is the bit set, `declare` the traits and the macro, `catalog` the names, [`seed`] the
//! sample server's built-in permissions.

mod catalog;
mod declare;
mod names;
pub mod seed;
mod set;

pub use catalog::{PermissionCatalog, PermissionClash};
pub use declare::{Permission, PermissionDef, PermissionGroup, PermissionList};
pub use names::PermissionNames;
pub use set::PermissionSet;

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
