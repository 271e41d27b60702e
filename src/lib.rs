//! # Portcullis
//!
//! Authentication and authorization for Rust HTTP services: every request resolves to an
//! [`Actor`] — from an API key, a user's JWT access token tied to a live session, an agent's
//! run token, or a board fallback for local trusted mode — and routes say what they need as
//! types such as `RequirePermissions<MemoryCreate>`.
//!
//! This crate is the facade: one `use portcullis::…` for everything, and
//! `use portcullis::prelude::*` for what nearly every app names.
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
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `axum` | yes | the extractors ([`CurrentActor`], [`RequirePermissions<P>`], …) for axum 0.8 |
//! | `aws-lc` | yes | the JWT crypto backend (aws-lc-rs); wins when both backends are on |
//! | `rust-crypto` | no | the pure-Rust JWT crypto backend; one of the two is required |
//! | `sqlite`, `postgres` | no | `portcullis::sql`: stores on SQLite (embedded) or PostgreSQL |
//! | `redis` | no | `portcullis::redis`: sessions, denylist, rate limits and invalidation on Redis |
//! | `prometheus` | no | `portcullis::prometheus`: the `portcullis_…` series through a Prometheus recorder, and a `GET /metrics` router |
//!
// The guide's examples use the axum extractors, so it is part of the docs when they are.
#![cfg_attr(feature = "axum", doc = include_str!("guide.md"))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use portcullis_core::{
    Actor, ActorKind, AgentActor, ApiKeyActor, ApiKeyFormatError, AuthConfig, AuthConfigBuilder,
    AuthEnv, AuthError, AuthMethod, Authenticator, AuthenticatorBuilder, Clock, ConfigError,
    Credential, ExternalActor, ManualClock, OrgScope, Permission, PermissionCatalog, PermissionDef,
    PermissionGroup, PermissionList, PermissionSet, RateLimitInfo, Roles, Rotation, Secret,
    SecretString, SharedClock, StoreError, SystemClock, TokenError, UnixTime, UsageSink, UserActor,
    actor, api_key, audit, authenticator, cache, clock, config, error, ids, key_issuance,
    lifecycle, metrics, oidc, password, permission, permissions, rate_limit, roles, secret, seed,
    session, store, throttle, token, users,
};
pub use portcullis_tower::{
    AuthLayer, AuthLayerBuilder, AuthService, Fallback, Policy, PolicyError, Renderer,
    ResponseFuture, cookies, credentials, loopback, policy, render,
};

#[cfg(feature = "axum")]
pub use portcullis_axum::{
    AuthRejection, CurrentActor, CurrentOrg, RequireAnyPermission, RequirePermissions,
};

#[cfg(feature = "routes")]
pub use portcullis_axum::routes;

#[cfg(feature = "prometheus")]
pub use portcullis_axum::prometheus;

/// Redis stores: sessions, the denylist, shared rate limits and cross-instance invalidation.
#[cfg(feature = "redis")]
pub use portcullis_redis as redis;

/// SQL stores: API keys, sessions, agents, the denylist and users, in SQLite or PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use portcullis_sql as sql;

/// Helpers for an application's own tests (feature `testing`): actors with given permissions
/// for handler tests, and valid access tokens for `oneshot` calls through the real
/// [`AuthLayer`].
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::post};
/// use portcullis::{RequirePermissions, PermissionList, seed::MemoryCreate, testing};
/// use tower::ServiceExt;
///
/// async fn create(_: RequirePermissions<MemoryCreate>) -> StatusCode {
///     StatusCode::CREATED
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let app = Router::new().route("/memories", post(create)); // no layer: a handler test
/// let actor = testing::actor().permissions(MemoryCreate::SET).org("acme").user();
/// let request = testing::with_actor(Request::post("/memories").body(Body::empty()).unwrap(), actor);
/// assert_eq!(app.oneshot(request).await.unwrap().status(), StatusCode::CREATED);
/// # });
/// # }
/// ```
#[cfg(feature = "testing")]
pub mod testing {
    pub use portcullis_core::testing::*;

    use portcullis_core::Actor;

    /// `request` with `actor` in its extensions, where [`AuthLayer`](crate::AuthLayer) puts
    /// it: the extractors then see that actor, for testing handlers without the layer.
    pub fn with_actor<B>(mut request: http::Request<B>, actor: Actor) -> http::Request<B> {
        request.extensions_mut().insert(actor);
        request
    }
}

/// What nearly every application names: `use portcullis::prelude::*;`.
///
/// The actor and its parts, the authenticator and its configuration, the layer, the
/// permission traits (for `Marker::SET` and `Marker::NAME`) and, with the `axum` feature, the
/// extractors. Permission markers are not included: import the ones a module uses from
/// [`seed`] or from your own [`permissions!`] block.
///
/// ```
/// use portcullis::prelude::*;
/// use portcullis::seed::{MemoryCreate, MemoryRead};
///
/// let auth = Authenticator::builder().config(AuthConfig::builder().build()?).build()?;
/// let _layer = AuthLayer::new(auth);
/// let held = <(MemoryRead, MemoryCreate)>::SET;
/// assert!(held.contains(MemoryRead::SET));
/// assert_eq!(MemoryCreate::NAME, "memory:create");
/// # Ok::<(), ConfigError>(())
/// ```
pub mod prelude {
    pub use portcullis_core::{
        Actor, ActorKind, AuthConfig, AuthError, AuthMethod, Authenticator, ConfigError, OrgScope,
        Permission, PermissionList, PermissionSet,
    };
    pub use portcullis_tower::AuthLayer;

    #[cfg(feature = "axum")]
    pub use portcullis_axum::{CurrentActor, CurrentOrg, RequireAnyPermission, RequirePermissions};
}
