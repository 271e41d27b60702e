//! Portcullis core: who is calling and what they may do, with no HTTP framework.
//!
//! - [`Actor`]: what every request resolves to.
//! - [`PermissionSet`], [`permissions!`], [`seed`]: permissions as a bitset with compile-time
//!   marker types.
//! - [`token`]: the key ring and the access, refresh and agent run token kinds.
//! - [`api_key`]: key generation, checksum parsing and hashing.
//! - [`session`]: the refresh-rotation state machine.
//! - [`store`]: the store traits and bounded in-memory stores.
//! - [`AuthConfig`]: configuration from the environment or a builder.
//!
//! ```
//! use portcullis_core::{AuthConfig, PermissionList, seed::MemoryCreate};
//! let config = AuthConfig::builder().build().unwrap(); // development: secrets generated
//! let user_role = config.roles.get("user").unwrap();
//! assert!(user_role.contains(MemoryCreate::SET));
//! ```
#![forbid(unsafe_code)]

pub mod actor;
pub mod api_key;
pub mod audit;
pub mod authenticator;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod key_hash;
pub mod key_issuance;
pub mod lifecycle;
pub mod metrics;
pub mod oidc;
pub mod password;
pub mod permission;
mod random;
pub mod rate_limit;
pub mod roles;
pub mod secret;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod token;
pub mod users;

pub use actor::{
    Actor, ActorKind, AgentActor, ApiKeyActor, AuthMethod, ExternalActor, OrgScope, UserActor,
};
pub use authenticator::{
    Authenticator, AuthenticatorBuilder, Credential, Rotation, UsageSink, WeakAuthenticator,
};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, UnixTime};
pub use config::{AuthConfig, AuthConfigBuilder, AuthEnv, ConfigError};
pub use error::{ApiKeyFormatError, AuthError, RateLimitInfo, StoreError, TokenError};
pub use permission::{
    Permission, PermissionCatalog, PermissionDef, PermissionGroup, PermissionList, PermissionNames,
    PermissionSet, seed,
};
pub use roles::Roles;
pub use secret::{Secret, SecretString};
