//! Users and administration: `POST /users`, `/admin/stats`, revoke a user's sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::{OrgId, UserId};
use portcullis_core::lifecycle::{Lifecycle, NewUser};
use portcullis_core::seed::{AdminRead, AdminWrite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::{ApiJson, ApiPath};
use super::{ApiResult, LifecycleResultExt};
use crate::RequirePermissions;

/// `POST /users`.
#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    /// Login email (stored trimmed and lowercased, at most 320 bytes): `name@domain`, an `@`
    /// neither first nor last.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\u0000\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*@[^\u0000]*[^@\u0000\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    /// At least 8 characters, at most 1024 bytes of UTF-8.
    #[schema(min_length = 8)]
    pub password: String,
    /// `superadmin` (only from a caller acting in every org), `admin`, `user` or `viewer`.
    #[schema(schema_with = super::openapi::schemas::role)]
    pub role: String,
    /// The org; the caller's when absent. Another org than the caller's is 403
    /// `org_forbidden` unless the caller acts in every org.
    #[schema(min_length = 1, max_length = 200)]
    pub org_id: Option<String>,
}

/// A user, without its password hash.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    /// Its id.
    pub id: String,
    /// Its email.
    pub email: String,
    /// Its role.
    pub role: String,
    /// Its org.
    pub org_id: String,
}

/// `GET /admin/stats`.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// Users.
    pub users: u64,
    /// API keys.
    pub api_keys: u64,
    /// Agents.
    pub agents: u64,
    /// Login sessions live now.
    pub active_sessions: u64,
}

#[utoipa::path(post, path = "/users", tag = "admin", operation_id = "createUser", request_body = CreateUser,
    responses((status = 201, body = UserInfo, description = "the user",
               links(("revokeUserSessions" = (operation_id = "revokeUserSessions", parameters(("id" = "$response.body#/id")))))),
              (status = 403, description = "insufficient_permissions: needs admin:write; org_forbidden: another org, or `superadmin`, from a caller that does not act in every org"),
              (status = 409, description = "conflict: the email is taken")),
    security(("bearer" = []), ("api_key" = [])))]
/// Creates a user.
pub async fn create_user(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminWrite>,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    let org_id = req.org_id.map(OrgId::from);
    let user = s
        .create_user(
            &who,
            NewUser {
                email: &req.email,
                password: &req.password,
                role: &req.role,
                org_id: org_id.as_ref(),
            },
        )
        .await
        .api(&s)?;
    Ok((
        StatusCode::CREATED,
        Json(UserInfo {
            id: user.id.to_string(),
            email: user.email,
            role: user.role,
            org_id: user.org_id.to_string(),
        }),
    ))
}

#[utoipa::path(get, path = "/admin/stats", tag = "admin", operation_id = "getStats",
    responses((status = 200, body = Stats, description = "counts of the caller's org (every org for the board and a superadmin)"),
              (status = 403, description = "insufficient_permissions: needs admin:read")),
    security(("bearer" = []), ("api_key" = [])))]
/// Counts.
pub async fn stats(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminRead>,
) -> ApiResult<Json<Stats>> {
    let stats = s.stats(&who).await.api(&s)?;
    Ok(Json(Stats {
        users: stats.users,
        api_keys: stats.api_keys,
        agents: stats.agents,
        active_sessions: stats.active_sessions,
    }))
}

#[utoipa::path(post, path = "/admin/users/{id}/revoke-sessions", tag = "admin", operation_id = "revokeUserSessions",
    params(("id" = String, Path, description = "the user's id", min_length = 1)),
    responses((status = 204, description = "every session of the user is dead at once"),
              (status = 403, description = "insufficient_permissions: needs admin:write (or csrf_failed)"),
              (status = 404, description = "not_found: no such user, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Revokes every session of a user.
pub async fn revoke_sessions(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminWrite>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.revoke_user_sessions(&who, &UserId::from(id))
        .await
        .api(&s)?;
    Ok(StatusCode::NO_CONTENT)
}
