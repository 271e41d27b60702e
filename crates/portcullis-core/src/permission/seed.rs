//! The permissions of the sample server, built in (bits 0–12).

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
