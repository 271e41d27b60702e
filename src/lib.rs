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
    Credential, Fallback, ManualClock, OrgScope, Permission, PermissionCatalog, PermissionDef,
    PermissionGroup, PermissionList, PermissionSet, RateLimitInfo, Roles, Secret, SecretString,
    SharedClock, StoreError, SystemClock, TokenError, UnixTime, UserActor, actor, api_key, cache,
    clock, config, error, ids, key_issuance, permission, permissions, rate_limit, roles, secret,
    seed, session, store, token,
};
pub use portcullis_tower::{
    AuthLayer, AuthService, ProblemContext, Renderer, ResponseFuture, credentials, render,
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
