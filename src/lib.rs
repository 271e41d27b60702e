//! # Portcullis
//!
//! Authentication and authorization for Rust HTTP services: every request resolves to an
//! [`Actor`] — from an API key, a user's JWT access token tied to a live session, an agent's
//! run token, or a board fallback for local trusted mode — and routes say what they need as
//! types such as `RequirePermissions<MemoryCreate>`.
//!
//! This crate is the facade: one `use portcullis::…` for everything.
//!
//! ```
//! use portcullis::{AuthConfig, PermissionList, seed::MemoryCreate};
//! let config = AuthConfig::builder().build()?;
//! assert!(config.roles.get("user").unwrap().contains(MemoryCreate::SET));
//! # Ok::<(), portcullis::ConfigError>(())
//! ```
#![forbid(unsafe_code)]

pub use portcullis_core::{
    Actor, ActorKind, AgentActor, ApiKeyActor, ApiKeyFormatError, AuthConfig, AuthConfigBuilder,
    AuthEnv, AuthError, AuthMethod, Clock, ConfigError, Fallback, ManualClock, Permission,
    PermissionCatalog, PermissionDef, PermissionGroup, PermissionList, PermissionSet,
    RateLimitInfo, Roles, Secret, SecretString, SharedClock, StoreError, SystemClock, TokenError,
    UnixTime, UserActor, actor, api_key, clock, config, error, ids, permission, permissions, roles,
    secret, seed, session, store, token,
};
