//! The contract's auth routes as [`Router`]s an application merges: everything that creates
//! and governs actors, over a [`Lifecycle`] (which decides every rule; the handlers only read
//! the request and write the response).
//!
//! | router | routes |
//! | --- | --- |
//! | [`auth()`] | `POST /auth/login`, `/auth/refresh`, `/auth/logout`, `/auth/password`, `GET /auth/whoami`, `GET /auth/sessions`, `DELETE /auth/sessions/{id}`, `GET /.well-known/jwks.json` |
//! | [`api_keys()`] | `POST`/`GET /api-keys`, `PATCH`/`DELETE /api-keys/{key_id}` |
//! | [`agents()`] | `POST`/`GET /agents`, `POST /agents/{id}/runs`, `/agents/{id}/terminate` |
//! | [`admin()`] | `POST`/`GET /users`, `GET /admin/stats`, `GET /admin/audit`, `GET /admin/users/{id}/sessions`, `POST /admin/users/{id}/revoke-sessions` |
//! | [`all()`] | the four |
//!
//! They sit at the contract's paths (the refresh cookie's `Path=/auth` is part of the
//! protocol), so an app merges rather than nests them, behind an
//! [`AuthLayer`](portcullis_tower::AuthLayer) whose policy lists [`PUBLIC_PATHS`] among its
//! public paths. Each router runs its handlers in the request's
//! [`RequestContext`](portcullis_core::audit::RequestContext) ([`context`]), so the audit log
//! knows which request caused an event. [`openapi::PortcullisApi`] documents them for the app's own utoipa document.
//!
//! ```no_run
//! # async fn run(auth: portcullis_core::Authenticator, users: std::sync::Arc<dyn portcullis_core::users::Users>) -> Result<(), Box<dyn std::error::Error>> {
//! use axum::Router;
//! use portcullis_core::lifecycle::Lifecycle;
//! use portcullis_tower::{AuthLayer, Policy};
//!
//! let lifecycle = Lifecycle::builder(auth.clone(), users).build()?;
//! let layer = AuthLayer::builder(auth)
//!     .policy(Policy::default().public_paths(portcullis_axum::routes::PUBLIC_PATHS))
//!     .build()?;
//! let app: Router = Router::new()
//!     .merge(portcullis_axum::routes::all(lifecycle))
//!     .layer(layer);
//! # let _ = app; Ok(()) }
//! ```

pub mod admin;
pub mod agents;
pub mod auth;
pub mod context;
mod error;
mod json;
pub mod keys;
pub mod openapi;

pub use error::{ApiError, ApiResult, LifecycleResultExt};
pub use json::{ApiJson, ApiPath, ApiQuery, is_json_content_type, parse_json, whole_number};

use axum::Router;
use axum::routing::{delete, get, patch, post};
use portcullis_core::lifecycle::Lifecycle;

/// The paths of these routers that answer without credentials: login, refresh (its token is
/// the credential) and the JWKS.
pub const PUBLIC_PATHS: [&str; 3] = ["/auth/login", "/auth/refresh", "/.well-known/jwks.json"];

/// The four routers.
pub fn all<S: Clone + Send + Sync + 'static>(lifecycle: Lifecycle) -> Router<S> {
    Router::new()
        .merge(auth(lifecycle.clone()))
        .merge(api_keys(lifecycle.clone()))
        .merge(agents(lifecycle.clone()))
        .merge(admin(lifecycle))
}

/// `/auth/*` and the JWKS: sessions and passwords.
pub fn auth<S: Clone + Send + Sync + 'static>(lifecycle: Lifecycle) -> Router<S> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/whoami", get(auth::whoami))
        .route("/auth/password", post(auth::change_password))
        .route("/auth/sessions", get(auth::list_sessions))
        .route("/auth/sessions/{id}", delete(auth::end_session))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .with_state(lifecycle)
        .layer(axum::middleware::from_fn(context::with_request_context))
}

/// `/api-keys*`.
pub fn api_keys<S: Clone + Send + Sync + 'static>(lifecycle: Lifecycle) -> Router<S> {
    Router::new()
        .route("/api-keys", post(keys::create).get(keys::list))
        .route(
            "/api-keys/{key_id}",
            patch(keys::update).delete(keys::delete),
        )
        .route("/api-keys/{key_id}/reroll", post(keys::reroll))
        .with_state(lifecycle)
        .layer(axum::middleware::from_fn(context::with_request_context))
}

/// `/agents*`.
pub fn agents<S: Clone + Send + Sync + 'static>(lifecycle: Lifecycle) -> Router<S> {
    Router::new()
        .route("/agents", post(agents::create).get(agents::list))
        .route("/agents/{id}/runs", post(agents::create_run))
        .route("/agents/{id}/terminate", post(agents::terminate))
        .with_state(lifecycle)
        .layer(axum::middleware::from_fn(context::with_request_context))
}

/// `/users` and `/admin/*`.
pub fn admin<S: Clone + Send + Sync + 'static>(lifecycle: Lifecycle) -> Router<S> {
    Router::new()
        .route("/users", post(admin::create_user).get(admin::list_users))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users/{id}/sessions", get(admin::user_sessions))
        .route(
            "/admin/users/{id}/revoke-sessions",
            post(admin::revoke_sessions),
        )
        .with_state(lifecycle)
        .layer(axum::middleware::from_fn(context::with_request_context))
}

/// A text field that must be present, non-empty once trimmed, and at most `max` characters as
/// sent: [`lifecycle::required_text`](portcullis_core::lifecycle::required_text) as a 400.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    portcullis_core::lifecycle::required_text(field, value, max).map_err(|e| match e {
        portcullis_core::lifecycle::LifecycleError::Invalid(why) => ApiError::BadRequest(why),
        other => ApiError::Internal(other.to_string()),
    })
}

/// Permission names, sorted.
fn sorted_names(lifecycle: &Lifecycle, set: portcullis_core::PermissionSet) -> Vec<&'static str> {
    let mut names: Vec<_> = lifecycle.authenticator().catalog().names(set).collect();
    names.sort_unstable();
    names
}
