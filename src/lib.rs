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
//! # #[cfg(feature = "axum")] {
//! use axum::{Router, routing::post};
//! use portcullis::{AuthLayer, Authenticator, RequirePermissions, seed::MemoryCreate};
//!
//! async fn create_memory(who: RequirePermissions<MemoryCreate>) -> String {
//!     format!("created by {}", who.id().unwrap_or("?"))
//! }
//!
//! let auth = Authenticator::from_env()?; // or Authenticator::builder()…
//! let app: Router = Router::new()
//!     .route("/memories", post(create_memory))
//!     .layer(AuthLayer::new(auth));
//! # }
//! # Ok::<(), portcullis::ConfigError>(())
//! ```
#![forbid(unsafe_code)]

pub use portcullis_core::{
    Actor, ActorKind, AgentActor, ApiKeyActor, ApiKeyFormatError, AuthConfig, AuthConfigBuilder,
    AuthEnv, AuthError, AuthMethod, Authenticator, AuthenticatorBuilder, Clock, ConfigError,
    Credential, ManualClock, OrgScope, Permission, PermissionCatalog, PermissionDef,
    PermissionGroup, PermissionList, PermissionSet, RateLimitInfo, Roles, Secret, SecretString,
    SharedClock, StoreError, SystemClock, TokenError, UnixTime, UserActor, actor, api_key, cache,
    clock, config, error, ids, key_issuance, permission, permissions, rate_limit, roles, secret,
    seed, session, store, token,
};
pub use portcullis_tower::{
    AuthLayer, AuthLayerBuilder, AuthService, Fallback, Policy, PolicyError, ProblemContext,
    Renderer, ResponseFuture, credentials, policy, render,
};

#[cfg(feature = "axum")]
pub use portcullis_axum::{
    AuthRejection, CurrentActor, CurrentOrg, RequireAnyPermission, RequirePermissions,
};

/// Redis stores: sessions, the denylist, shared rate limits and cross-instance invalidation.
#[cfg(feature = "redis")]
pub use portcullis_redis as redis;

/// SQL stores: API keys, sessions, agents, the denylist and users, in SQLite or PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use portcullis_sql as sql;
