//! Core values ↔ column values, the same for every backend.
//!
//! Times are unix seconds in a signed 64-bit column; hashes are 32 raw bytes; a permission
//! set is its `u128` bits as decimal text; enums are short lowercase words.

use portcullis_core::StoreError;
use portcullis_core::api_key::{KeyHash, KeyOwner};
use portcullis_core::clock::UnixTime;
use portcullis_core::permission::PermissionSet;
use portcullis_core::store::AgentStatus;

/// A time as a column value. Times past `i64::MAX` seconds (some 292 billion years) are
/// stored as `i64::MAX`: "never".
pub(crate) fn time(t: UnixTime) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A time column value back as a time.
pub(crate) fn time_from(column: &'static str, v: i64) -> Result<UnixTime, StoreError> {
    UnixTime::try_from(v).map_err(|_| malformed(column))
}

/// A nullable time column value back as a time.
pub(crate) fn opt_time_from(
    column: &'static str,
    v: Option<i64>,
) -> Result<Option<UnixTime>, StoreError> {
    v.map(|v| time_from(column, v)).transpose()
}

/// A hash column value back as a hash.
pub(crate) fn hash_from(column: &'static str, bytes: &[u8]) -> Result<KeyHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(KeyHash)
        .map_err(|_| malformed(column))
}

/// A permission set as a column value.
pub(crate) fn permissions(p: PermissionSet) -> String {
    p.bits().to_string()
}

/// A permissions column value back as a set.
pub(crate) fn permissions_from(text: &str) -> Result<PermissionSet, StoreError> {
    text.parse::<u128>()
        .map(PermissionSet::from_bits)
        .map_err(|_| malformed("permissions"))
}

/// The `(owner_kind, owner_id)` columns of a key's owner.
pub(crate) fn owner(owner: &KeyOwner) -> (&'static str, &str) {
    match owner {
        KeyOwner::User(id) => ("user", id.as_str()),
        KeyOwner::Agent(id) => ("agent", id.as_str()),
    }
}

/// The `(owner_kind, owner_id)` columns back as an owner.
pub(crate) fn owner_from(kind: &str, id: String) -> Result<KeyOwner, StoreError> {
    match kind {
        "user" => Ok(KeyOwner::User(id.into())),
        "agent" => Ok(KeyOwner::Agent(id.into())),
        _ => Err(malformed("owner_kind")),
    }
}

/// An agent's status as a column value.
pub(crate) fn status(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Active => "active",
        AgentStatus::Terminated => "terminated",
    }
}

/// A status column value back as a status.
pub(crate) fn status_from(text: &str) -> Result<AgentStatus, StoreError> {
    match text {
        "active" => Ok(AgentStatus::Active),
        "terminated" => Ok(AgentStatus::Terminated),
        _ => Err(malformed("status")),
    }
}

/// A rate limit column value back as a rate limit.
pub(crate) fn rate_limit_from(v: Option<i64>) -> Result<Option<u32>, StoreError> {
    v.map(|v| u32::try_from(v).map_err(|_| malformed("rate_limit_per_minute")))
        .transpose()
}

/// Usage credits as stored (a non-negative `BIGINT`) to a count.
pub(crate) fn credits(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Unavailable("usage credits out of range".into()))
}

/// A stored credit count; a negative one was never written by this crate.
pub(crate) fn credits_from(v: Option<i64>) -> Result<Option<u64>, StoreError> {
    v.map(|v| u64::try_from(v).map_err(|_| malformed("remaining")))
        .transpose()
}

/// A row that no version of this crate wrote: the database was edited by hand or by
/// something else. Refusing it fails closed.
pub(crate) fn malformed(column: &'static str) -> StoreError {
    StoreError::Unavailable(format!("malformed stored value in column `{column}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_saturate_at_i64_max_and_negative_times_are_malformed() {
        assert_eq!(time(0), 0);
        assert_eq!(time(u64::MAX), i64::MAX);
        assert_eq!(time_from("t", 42), Ok(42));
        assert!(matches!(
            time_from("t", -1),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn every_permission_bit_round_trips_through_text() {
        for p in [
            PermissionSet::EMPTY,
            PermissionSet::ALL,
            PermissionSet::from_bit(127),
        ] {
            assert_eq!(permissions_from(&permissions(p)), Ok(p));
        }
        assert!(permissions_from("-1").is_err());
        assert!(permissions_from("").is_err());
    }

    #[test]
    fn hashes_must_be_exactly_32_bytes() {
        let h = KeyHash::of(b"x");
        assert_eq!(hash_from("h", &h.0), Ok(h));
        assert!(hash_from("h", &h.0[..31]).is_err());
    }

    #[test]
    fn owners_and_statuses_round_trip() {
        for o in [KeyOwner::User("u".into()), KeyOwner::Agent("a".into())] {
            let (kind, id) = owner(&o);
            assert_eq!(owner_from(kind, id.to_owned()), Ok(o.clone()));
        }
        assert!(owner_from("board", "x".into()).is_err());
        for s in [AgentStatus::Active, AgentStatus::Terminated] {
            assert_eq!(status_from(status(s)), Ok(s));
        }
        assert_eq!(rate_limit_from(Some(60)), Ok(Some(60)));
        assert!(rate_limit_from(Some(-1)).is_err());
    }
}
