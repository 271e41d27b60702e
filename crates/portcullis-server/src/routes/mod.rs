//! The routes of shared/CONTRACT.md. Auth lives in the extractors of each handler's signature
//! (`RequirePermissions<…>`, `CurrentActor`); handler bodies do the work.

pub mod admin;
pub mod agents;
pub mod auth;
pub mod keys;
pub mod meta;
pub mod resources;

use crate::problem::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use portcullis::ids::{OrgId, UserId};
use portcullis::{Actor, AuthLayer, OrgScope};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The org new things go to when the board creates them.
pub const DEFAULT_ORG: &str = "default";

/// The contract's public paths: they answer without credentials (exact matches).
pub const PUBLIC_PATHS: [&str; 7] = [
    "/",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/.well-known/jwks.json",
    "/auth/login",
    "/auth/refresh",
];

/// The whole application behind `layer` (built from [`PUBLIC_PATHS`] and the environment:
/// `settings::http_policy`).
pub fn router(state: AppState, layer: AuthLayer) -> Router {
    Router::new()
        .route("/", get(meta::index))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(meta::openapi))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/whoami", get(auth::whoami))
        .route("/auth/password", post(auth::change_password))
        .route("/users", post(admin::create_user))
        .route("/api-keys", post(keys::create).get(keys::list))
        .route(
            "/api-keys/{key_id}",
            patch(keys::update).delete(keys::delete),
        )
        .route("/agents", post(agents::create))
        .route("/agents/{id}/runs", post(agents::create_run))
        .route("/agents/{id}/terminate", post(agents::terminate))
        .route(
            "/api/v1/sessions",
            post(resources::create_session).get(resources::list_sessions),
        )
        .route(
            "/api/v1/sessions/{id}",
            get(resources::get_session)
                .patch(resources::update_session)
                .delete(resources::delete_session),
        )
        .route(
            "/api/v1/memories",
            post(resources::create_memory).get(resources::list_memories),
        )
        .route("/api/v1/memories/search", get(resources::search_memories))
        .route(
            "/api/v1/memories/{id}",
            get(resources::get_memory)
                .patch(resources::update_memory)
                .delete(resources::delete_memory),
        )
        .route("/admin/stats", get(admin::stats))
        .route(
            "/admin/users/{id}/revoke-sessions",
            post(admin::revoke_sessions),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(layer)
        .with_state(state)
}

/// The orgs an actor reads: its own, or every org for the board and a superadmin.
pub fn read_scope(actor: &Actor) -> OrgScope<'_> {
    actor.query_scope()
}

/// The org an actor creates things in (`default` for the board).
pub fn home_org(actor: &Actor) -> OrgId {
    actor
        .org_id()
        .cloned()
        .unwrap_or_else(|| OrgId::from(DEFAULT_ORG))
}

/// The org named in a body (`org_id`), checked against where the actor acts: absent, the
/// actor's own; another org the actor does not act in, 403 `org_forbidden`.
pub fn target_org(actor: &Actor, requested: Option<&str>) -> Result<OrgId, ApiError> {
    let requested = requested
        .map(|org| required_text("org_id", org, 200).map(OrgId::from))
        .transpose()?;
    Ok(actor.target_org(requested, &OrgId::from(DEFAULT_ORG))?)
}

/// Who an actor is, for `created_by` columns (`board` for the board).
pub fn principal(actor: &Actor) -> String {
    actor.id().unwrap_or(portcullis::actor::BOARD_ID).to_owned()
}

/// The user behind a user actor; other actors are 403 `wrong_actor_kind` (the route needs a
/// signed-in user).
pub fn user_of(actor: &Actor) -> Result<(&UserId, &portcullis::UserActor), ApiError> {
    match actor {
        Actor::User(u) => Ok((&u.id, u)),
        _ => Err(ApiError::presented(portcullis::AuthError::WrongActorKind)),
    }
}

/// A text field that must be present, non-empty once trimmed, and at most `max` characters as
/// sent (the `maxLength` /openapi.json states, which counts the whitespace too).
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "{field} must have at most {max} characters"
        )));
    }
    Ok(v.to_owned())
}
