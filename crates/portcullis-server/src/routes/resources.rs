//! The org-scoped resources: `/api/v1/sessions` and `/api/v1/memories`. Each handler's first
//! argument says what it needs; another org's id is a 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::lifecycle::home_org;
use portcullis::routes::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, required_text};
use portcullis::seed::{
    MemoryCreate, MemoryDelete, MemoryList, MemoryRead, MemorySearch, MemoryUpdate, SessionCreate,
    SessionDelete, SessionList, SessionRead, SessionUpdate,
};
use portcullis::{OrgScope, RequirePermissions};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::data::{Memory, Session};
use crate::routes::principal;
use crate::state::AppState;

const MAX_TITLE: usize = 1_000;
const MAX_CONTENT: usize = 60_000;

/// `POST`/`PATCH /api/v1/sessions`.
#[derive(Deserialize, ToSchema)]
pub struct SessionBody {
    /// The title (trimmed).
    #[schema(min_length = 1, max_length = 1000)]
    pub title: String,
}

/// `POST /api/v1/memories`.
#[derive(Deserialize, ToSchema)]
pub struct NewMemory {
    /// The text (trimmed).
    #[schema(min_length = 1, max_length = 60_000)]
    pub content: String,
    /// A session of the same org (another org's, or none: 404).
    pub session_id: Option<String>,
}

/// `PATCH /api/v1/memories/{id}`.
#[derive(Deserialize, ToSchema)]
pub struct MemoryBody {
    /// The new text (trimmed).
    #[schema(min_length = 1, max_length = 60_000)]
    pub content: String,
}

/// `GET /api/v1/memories/search?q=`.
#[derive(Deserialize)]
pub struct SearchQuery {
    /// Text the content must contain (case-insensitive).
    pub q: String,
}

/// The demo resources' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sessions", post(create_session).get(list_sessions))
        .route(
            "/api/v1/sessions/{id}",
            get(get_session)
                .patch(update_session)
                .delete(delete_session),
        )
        .route("/api/v1/memories", post(create_memory).get(list_memories))
        .route("/api/v1/memories/search", get(search_memories))
        .route(
            "/api/v1/memories/{id}",
            get(get_memory).patch(update_memory).delete(delete_memory),
        )
}

fn found<T>(v: Option<T>) -> ApiResult<T> {
    v.ok_or(ApiError::NotFound)
}

fn done(changed: bool) -> ApiResult<()> {
    if changed {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", operation_id = "createSession", request_body = SessionBody,
    responses((status = 201, body = Session, description = "the session",
               links(("getSession" = (operation_id = "getSession", parameters(("id" = "$response.body#/id")))),
                     ("updateSession" = (operation_id = "updateSession", parameters(("id" = "$response.body#/id")))),
                     ("deleteSession" = (operation_id = "deleteSession", parameters(("id" = "$response.body#/id")))))),
              (status = 403, description = "insufficient_permissions: needs session:create (or csrf_failed)")),
    security(("bearer" = []), ("api_key" = [])))]
/// Creates a session in the caller's org.
pub async fn create_session(
    State(s): State<AppState>,
    who: RequirePermissions<SessionCreate>,
    ApiJson(body): ApiJson<SessionBody>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let session = Session {
        id: Uuid::now_v7().to_string(),
        org_id: home_org(&who).to_string(),
        title: required_text("title", &body.title, MAX_TITLE)?,
        created_by: principal(&who),
    };
    s.data.create_session(&session, now(&s)).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", operation_id = "listSessions",
    responses((status = 200, body = [Session], description = "the sessions of the caller's org"),
              (status = 403, description = "insufficient_permissions: needs session:list")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller's org's sessions.
pub async fn list_sessions(
    State(s): State<AppState>,
    who: RequirePermissions<SessionList>,
) -> ApiResult<Json<Vec<Session>>> {
    Ok(Json(s.data.list_sessions(who.query_scope()).await?))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "getSession",
    params(("id" = String, Path, description = "the session's id", min_length = 1)),
    responses((status = 200, body = Session, description = "the session"),
              (status = 403, description = "insufficient_permissions: needs session:read"),
              (status = 404, description = "not_found: no such session, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// One session.
pub async fn get_session(
    State(s): State<AppState>,
    who: RequirePermissions<SessionRead>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(found(
        s.data.get_session(who.query_scope(), &id).await?,
    )?))
}

#[utoipa::path(patch, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "updateSession",
    params(("id" = String, Path, description = "the session's id", min_length = 1)),
    request_body = SessionBody,
    responses((status = 200, body = Session, description = "the renamed session"),
              (status = 403, description = "insufficient_permissions: needs session:update (or csrf_failed)"),
              (status = 404, description = "not_found: no such session, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Renames a session.
pub async fn update_session(
    State(s): State<AppState>,
    who: RequirePermissions<SessionUpdate>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SessionBody>,
) -> ApiResult<Json<Session>> {
    let title = required_text("title", &body.title, MAX_TITLE)?;
    let scope = who.query_scope();
    done(s.data.update_session(scope, &id, &title).await?)?;
    Ok(Json(found(s.data.get_session(scope, &id).await?)?))
}

#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "deleteSession",
    params(("id" = String, Path, description = "the session's id", min_length = 1)),
    responses((status = 204, description = "deleted"),
              (status = 403, description = "insufficient_permissions: needs session:delete (or csrf_failed)"),
              (status = 404, description = "not_found: no such session, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Deletes a session.
pub async fn delete_session(
    State(s): State<AppState>,
    who: RequirePermissions<SessionDelete>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    done(s.data.delete_session(who.query_scope(), &id).await?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/memories", tag = "memories", operation_id = "createMemory", request_body = NewMemory,
    responses((status = 201, body = Memory, description = "the memory",
               links(("getMemory" = (operation_id = "getMemory", parameters(("id" = "$response.body#/id")))),
                     ("updateMemory" = (operation_id = "updateMemory", parameters(("id" = "$response.body#/id")))),
                     ("deleteMemory" = (operation_id = "deleteMemory", parameters(("id" = "$response.body#/id")))))),
              (status = 403, description = "insufficient_permissions: needs memory:create (or csrf_failed)"),
              (status = 404, description = "not_found: `session_id` names no session of the caller's org")),
    security(("bearer" = []), ("api_key" = [])))]
/// Remembers something in the caller's org.
pub async fn create_memory(
    State(s): State<AppState>,
    who: RequirePermissions<MemoryCreate>,
    ApiJson(body): ApiJson<NewMemory>,
) -> ApiResult<(StatusCode, Json<Memory>)> {
    let org = home_org(&who);
    let content = required_text("content", &body.content, MAX_CONTENT)?;
    if let Some(sid) = &body.session_id
        && s.data
            .get_session(OrgScope::Org(&org), sid)
            .await?
            .is_none()
    {
        // Another org's id is a 404 whatever the route (shared/CONTRACT.md, Organisations).
        return Err(ApiError::NotFound);
    }
    let memory = Memory {
        id: Uuid::now_v7().to_string(),
        org_id: org.to_string(),
        content,
        session_id: body.session_id,
    };
    s.data
        .create_memory(&memory, &principal(&who), now(&s))
        .await?;
    Ok((StatusCode::CREATED, Json(memory)))
}

#[utoipa::path(get, path = "/api/v1/memories", tag = "memories", operation_id = "listMemories",
    responses((status = 200, body = [Memory], description = "the memories of the caller's org"),
              (status = 403, description = "insufficient_permissions: needs memory:list")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller's org's memories.
pub async fn list_memories(
    State(s): State<AppState>,
    who: RequirePermissions<MemoryList>,
) -> ApiResult<Json<Vec<Memory>>> {
    Ok(Json(s.data.list_memories(who.query_scope(), None).await?))
}

#[utoipa::path(get, path = "/api/v1/memories/search", tag = "memories", operation_id = "searchMemories",
    params(("q" = String, Query, description = "text the content contains (trimmed; case-insensitive)", min_length = 1, max_length = 1000)),
    responses((status = 200, body = [Memory], description = "the memories of the caller's org whose content contains `q`"),
              (status = 400, description = "invalid_request: `q` missing, empty or too long"),
              (status = 403, description = "insufficient_permissions: needs memory:search")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller's org's memories whose content contains `q`.
pub async fn search_memories(
    State(s): State<AppState>,
    who: RequirePermissions<MemorySearch>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<Memory>>> {
    let q = required_text("q", &query.q, MAX_TITLE)?;
    Ok(Json(
        s.data.list_memories(who.query_scope(), Some(&q)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/memories/{id}", tag = "memories", operation_id = "getMemory",
    params(("id" = String, Path, description = "the memory's id", min_length = 1)),
    responses((status = 200, body = Memory, description = "the memory"),
              (status = 403, description = "insufficient_permissions: needs memory:read"),
              (status = 404, description = "not_found: no such memory, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// One memory.
pub async fn get_memory(
    State(s): State<AppState>,
    who: RequirePermissions<MemoryRead>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Memory>> {
    Ok(Json(found(
        s.data.get_memory(who.query_scope(), &id).await?,
    )?))
}

#[utoipa::path(patch, path = "/api/v1/memories/{id}", tag = "memories", operation_id = "updateMemory",
    params(("id" = String, Path, description = "the memory's id", min_length = 1)),
    request_body = MemoryBody,
    responses((status = 200, body = Memory, description = "the rewritten memory"),
              (status = 403, description = "insufficient_permissions: needs memory:update (or csrf_failed)"),
              (status = 404, description = "not_found: no such memory, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Rewrites a memory.
pub async fn update_memory(
    State(s): State<AppState>,
    who: RequirePermissions<MemoryUpdate>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MemoryBody>,
) -> ApiResult<Json<Memory>> {
    let content = required_text("content", &body.content, MAX_CONTENT)?;
    let scope = who.query_scope();
    done(s.data.update_memory(scope, &id, &content).await?)?;
    Ok(Json(found(s.data.get_memory(scope, &id).await?)?))
}

#[utoipa::path(delete, path = "/api/v1/memories/{id}", tag = "memories", operation_id = "deleteMemory",
    params(("id" = String, Path, description = "the memory's id", min_length = 1)),
    responses((status = 204, description = "deleted"),
              (status = 403, description = "insufficient_permissions: needs memory:delete (or csrf_failed)"),
              (status = 404, description = "not_found: no such memory, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Deletes a memory.
pub async fn delete_memory(
    State(s): State<AppState>,
    who: RequirePermissions<MemoryDelete>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    done(s.data.delete_memory(who.query_scope(), &id).await?)?;
    Ok(StatusCode::NO_CONTENT)
}

fn now(s: &AppState) -> i64 {
    i64::try_from(s.now()).unwrap_or(i64::MAX)
}
