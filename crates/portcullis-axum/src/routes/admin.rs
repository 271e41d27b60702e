//! Users and administration: `POST`/`GET /users`, `/admin/stats`, `/admin/audit`, a user's
//! sessions: list them, revoke them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_core::audit::{AuditCursor, AuditQuery};
use portcullis_core::ids::{OrgId, UserId};
use portcullis_core::lifecycle::{Lifecycle, NewUser};
use portcullis_core::seed::{AdminRead, AdminWrite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use super::auth::SessionInfo;
use super::json::{ApiJson, ApiPath, ApiQuery};
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
               links(("revokeUserSessions" = (operation_id = "revokeUserSessions", parameters(("id" = "$response.body#/id")))),
                     ("listUserSessions" = (operation_id = "listUserSessions", parameters(("id" = "$response.body#/id")))))),
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
    Ok((StatusCode::CREATED, Json(UserInfo::from(user))))
}

impl From<portcullis_core::users::Account> for UserInfo {
    fn from(a: portcullis_core::users::Account) -> Self {
        Self {
            id: a.id.to_string(),
            email: a.email,
            role: a.role,
            org_id: a.org_id.to_string(),
        }
    }
}

#[utoipa::path(get, path = "/users", tag = "admin", operation_id = "listUsers",
    responses((status = 200, body = [UserInfo], description = "the users of the caller's org (every org for the board and a superadmin), sorted by email; never a password hash"),
              (status = 403, description = "insufficient_permissions: needs admin:read")),
    security(("bearer" = []), ("api_key" = [])))]
/// The users of the caller's org.
pub async fn list_users(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminRead>,
) -> ApiResult<Json<Vec<UserInfo>>> {
    let users = s.users_in_scope(&who).await.api(&s)?;
    Ok(Json(users.into_iter().map(UserInfo::from).collect()))
}

#[utoipa::path(get, path = "/admin/users/{id}/sessions", tag = "admin", operation_id = "listUserSessions",
    params(("id" = String, Path, description = "the user's id", min_length = 1)),
    responses((status = 200, body = [SessionInfo],
               description = "the user's live sessions (not revoked, not expired), newest first, as `GET /auth/sessions` shows a user its own; `current` is always false"),
              (status = 403, description = "insufficient_permissions: needs admin:read"),
              (status = 404, description = "not_found: no such user, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// A user's live sessions.
pub async fn user_sessions(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminRead>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let sessions = s.sessions_of_user(&who, &UserId::from(id)).await.api(&s)?;
    Ok(super::auth::no_store(
        sessions.into_iter().map(SessionInfo::from).collect(),
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

/// `GET /admin/audit`'s query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this action (`login.succeeded`, `api_key.created`, …).
    #[param(min_length = 1, max_length = 100)]
    pub action: Option<String>,
    /// Only this actor's events.
    #[param(min_length = 1, max_length = 200)]
    pub actor_id: Option<String>,
    /// Only events at or after this time (unix seconds).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub since: Option<String>,
    /// Items per page, 1 to 200; 50 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page: `<time>.<id>`, a position in the log (the page
    /// starts strictly older than it).
    #[param(pattern = r"^[0-9]{1,18}\.[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// One audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditItem {
    /// When (unix seconds).
    pub time: u64,
    /// Who acted (a user, agent or key id, `board`); null when nobody is known.
    pub actor_id: Option<String>,
    /// `user`, `agent`, `api_key`, `service`, `board`, `anonymous`.
    pub actor_kind: String,
    /// The org it belongs to; null for an event of no org.
    pub org_id: Option<String>,
    /// What happened: `login.succeeded`, `login.refused`, `login.throttled`, `logout`,
    /// `refresh.reuse_detected`, `password.changed`, `sessions.revoked`, `user.created`,
    /// `api_key.created|enabled|disabled|deleted|rerolled`, `agent.created|terminated`,
    /// `run_token.minted`, `org.forbidden`.
    pub action: String,
    /// What it was done to (an id).
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request that caused it (`X-Request-Id`).
    pub request_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
}

/// `GET /admin/audit`.
#[derive(Serialize, ToSchema)]
pub struct AuditPageBody {
    /// Newest first.
    pub items: Vec<AuditItem>,
    /// Pass it as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The default page size.
pub const DEFAULT_AUDIT_LIMIT: u32 = 50;

/// A text filter: non-empty, at most `max` characters.
fn filter(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() || v.chars().count() > max => Err(ApiError::bad_request(format!(
            "{field} must have 1 to {max} characters"
        ))),
        Some(v) => Ok(Some(v)),
    }
}

impl AuditParams {
    /// The query, or a 400 naming the bad parameter.
    fn query(self) -> Result<AuditQuery, ApiError> {
        let limit = match self.limit {
            None => DEFAULT_AUDIT_LIMIT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| ApiError::bad_request("limit must be an integer from 1 to 200"))?,
        };
        let since = self
            .since
            .map(|s| {
                s.parse::<u64>()
                    .ok()
                    .filter(|s| i64::try_from(*s).is_ok())
                    .ok_or_else(|| ApiError::bad_request("since must be unix seconds (an integer)"))
            })
            .transpose()?;
        let cursor = self
            .cursor
            .map(|c| {
                AuditCursor::decode(&c).ok_or_else(|| {
                    ApiError::bad_request("cursor must be <time>.<id>, as next_cursor gives it")
                })
            })
            .transpose()?;
        Ok(AuditQuery {
            org: None,
            action: filter("action", self.action, 100)?,
            actor_id: filter("actor_id", self.actor_id, 200)?,
            since,
            cursor,
            limit,
        })
    }
}

#[utoipa::path(get, path = "/admin/audit", tag = "admin", operation_id = "getAuditLog",
    params(AuditParams),
    responses((status = 200, body = AuditPageBody, description = "the audit log of the caller's org (every org for the board and a superadmin), newest first"),
              (status = 400, description = "invalid_request: a bad `limit`, `since`, `cursor`, `action` or `actor_id` (the detail names it)"),
              (status = 403, description = "insufficient_permissions: needs admin:read")),
    security(("bearer" = []), ("api_key" = [])))]
/// The audit log.
pub async fn audit(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminRead>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Json<AuditPageBody>> {
    let query = params.query()?;
    let page = s.audit(&who, query).await.api(&s)?;
    Ok(Json(AuditPageBody {
        items: page
            .items
            .into_iter()
            .map(|r| AuditItem {
                time: r.event.time,
                actor_id: r.event.actor_id,
                actor_kind: r.event.actor_kind,
                org_id: r.event.org_id.map(|o| o.to_string()),
                action: r.event.action,
                target: r.event.target,
                outcome: r.event.outcome,
                request_id: r.event.request_id,
                client: r.event.client,
            })
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}
