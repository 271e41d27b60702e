//! The routes of shared/CONTRACT.md. Auth lives in the extractors of each handler's signature
//! (`RequirePermissions<…>`, `CurrentActor`); handler bodies do the work.

pub mod meta;
pub mod resources;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use portcullis::routes::ApiError;
use portcullis::{Actor, AuthLayer};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The contract's public paths: they answer without credentials (exact matches). The auth
/// routes' own (login, refresh, JWKS) come from the library. `/admin` is a static page: what
/// it shows comes from the API, which needs the session.
pub const PUBLIC_PATHS: [&str; 8] = [
    "/",
    "/admin",
    "/healthz",
    "/readyz",
    "/openapi.json",
    portcullis::routes::PUBLIC_PATHS[0],
    portcullis::routes::PUBLIC_PATHS[1],
    portcullis::routes::PUBLIC_PATHS[2],
];

/// The whole application behind `layer` (built from [`PUBLIC_PATHS`] and the environment:
/// `settings::http_policy`): the library's auth routes, and the demo resources.
pub fn router(state: AppState, layer: AuthLayer) -> Router {
    Router::new()
        .route("/", get(meta::index))
        .route("/admin", get(meta::admin_console))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(meta::openapi))
        .merge(portcullis::routes::all(state.lifecycle.clone()))
        .merge(resources::routes())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(layer)
        .with_state(state)
}

/// Who an actor is, for `created_by` columns (`board` for the board).
pub fn principal(actor: &Actor) -> String {
    actor.id().unwrap_or(portcullis::actor::BOARD_ID).to_owned()
}
