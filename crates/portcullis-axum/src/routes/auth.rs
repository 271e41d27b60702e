//! `/auth/*`: login, refresh rotation, logout, whoami, password change, the caller's own
//! sessions; and the JWKS.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::USER_AGENT;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::SessionId;
use portcullis_core::lifecycle::{Lifecycle, SessionSummary, SessionTokens};
use portcullis_core::{Actor, AuthError};
use portcullis_tower::cookies::{self, Issued};
use portcullis_tower::credentials::{self, REFRESH_COOKIE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::{ApiJson, is_json_content_type};
use super::{ApiError, ApiPath, ApiResult, LifecycleResultExt};
use crate::CurrentActor;

/// `POST /auth/login`.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The account's email (case-insensitive).
    pub email: String,
    /// Its password.
    pub password: String,
    /// A 30-day refresh token instead of 7 days.
    #[serde(default)]
    pub remember_me: bool,
}

/// A fresh token pair.
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    /// The access token (JWT).
    pub access_token: String,
    /// The refresh token (JWT), good for one rotation.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// `POST /auth/refresh`, as `application/json` (or send the refresh cookie, no body and
/// `X-CSRF-Token` equal to the `portcullis_csrf` cookie).
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token; the `portcullis_refresh` cookie (with `X-CSRF-Token`) when absent.
    pub refresh_token: Option<String>,
}

/// `POST /auth/password`.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new one: at least 8 characters, at most 1024 bytes of UTF-8.
    #[schema(min_length = 8)]
    pub new_password: String,
}

/// `GET /auth/whoami`.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// `user`, `agent`, `api_key`, `service` (an external issuer's machine client) or `board`.
    pub kind: &'static str,
    /// The actor's id.
    pub id: Option<String>,
    /// Its organisation (`null` for the board, which acts in every org).
    pub org_id: Option<String>,
    /// Its permissions, sorted.
    pub permissions: Vec<&'static str>,
    /// `jwt`, `api_key`, `cookie`, `fallback` or `oidc`.
    pub auth_method: Option<&'static str>,
    /// The external issuer, for `oidc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The login session, for users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The run, for agents on run tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// One of the caller's live sessions, in `GET /auth/sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    /// The session's id (the `sid` of its tokens; `session_id` in `GET /auth/whoami`).
    pub id: String,
    /// When it began (unix seconds).
    pub created_at: u64,
    /// When its refresh token was last rotated (unix seconds): the start of the latest
    /// rotation's grace window, which a retry within that window does not move. `null` when
    /// it was never refreshed.
    pub last_refreshed_at: Option<u64>,
    /// The `User-Agent` sent at login: control characters dropped, at most 256 characters;
    /// `null` when there was none.
    #[schema(max_length = 256)]
    pub user_agent: Option<String>,
    /// Started with remember-me (the longer refresh lifetime).
    pub remember_me: bool,
    /// True for the session of the access token this request came with.
    pub current: bool,
}

impl From<SessionSummary> for SessionInfo {
    fn from(s: SessionSummary) -> Self {
        Self {
            id: s.id.to_string(),
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            user_agent: s.user_agent,
            remember_me: s.remember_me,
            current: s.current,
        }
    }
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair,
               description = "a token pair, also set as cookies: `portcullis_access` and `portcullis_refresh` (HttpOnly), `portcullis_csrf`"),
              (status = 401, description = "invalid_credentials: an unknown email and a wrong password alike"),
              (status = 429, description = "rate_limited: 10 password checks a minute for one email"),
              (status = 503, description = "auth_unavailable: a store is unreachable, or the server is too busy hashing")))]
/// Signs in: a token pair in the body and in cookies. The `User-Agent` is kept with the
/// session (cleaned and bounded) for the user's list of sessions.
pub async fn login(
    State(s): State<Lifecycle>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let user_agent = headers
        .get(USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let tokens = s
        .login_with_user_agent(
            &req.email,
            &req.password,
            req.remember_me,
            user_agent.as_deref(),
        )
        .await
        .api(&s)?;
    Ok(token_response(&s, &tokens))
}

/// The body and cookies of a token pair.
fn token_response(s: &Lifecycle, t: &SessionTokens) -> Response {
    let mut headers = HeaderMap::new();
    cookies::issue(
        &mut headers,
        &Issued {
            access: (t.access_token.expose(), t.access_expires_in),
            refresh: (t.refresh_token.expose(), t.refresh_expires_in),
            csrf: t.csrf_token.expose(),
        },
        s.authenticator().config().cookie_secure,
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = TokenPair {
        access_token: t.access_token.expose().to_owned(),
        refresh_token: t.refresh_token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: t.access_expires_in,
        refresh_expires_in: t.refresh_expires_in,
    };
    (headers, Json(body)).into_response()
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body(content = Option<RefreshRequest>, description = "the refresh token; with no body, the `portcullis_refresh` cookie"),
    responses((status = 200, body = TokenPair, description = "a new pair (the old refresh token is spent), also set as cookies"),
              (status = 401, description = "expired, revoked, reused past the grace, or not a refresh token"),
              (status = 403, description = "csrf_failed: the cookie without a matching `X-CSRF-Token`"),
              (status = 415, description = "unsupported_media_type: a body that is not application/json"),
              (status = 503, description = "auth_unavailable: a store is unreachable")))]
/// Rotates a refresh token: the old one is spent, a new pair is issued. Presenting a spent
/// token again after the grace window revokes the whole session.
///
/// The token comes from a JSON body or, with no body, from the refresh cookie. Both are closed
/// to other sites: a cross-site form can post `text/plain` without a preflight (and so plant
/// its own session's cookies: login CSRF), hence JSON only; and it sends the cookie on its
/// own, hence the cookie also needs `X-CSRF-Token`, which a page of another site cannot read.
pub async fn refresh(
    State(s): State<Lifecycle>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request(r.body_text())
        }
    })?;
    let token = match refresh_token_in_body(&headers, &body)? {
        Some(t) => t,
        None => {
            let token = credentials::cookie(&headers, REFRESH_COOKIE)
                .map_err(ApiError::Auth)?
                .ok_or(ApiError::Auth(AuthError::MissingCredentials))?;
            if !credentials::csrf_matches(&headers) {
                return Err(ApiError::Auth(AuthError::CsrfFailed));
            }
            token.to_owned()
        }
    };
    let tokens = s.refresh(&token).await.api(&s)?;
    Ok(token_response(&s, &tokens))
}

/// The refresh token of a JSON body; `None` for no body (no `Content-Type` and no bytes), for
/// whitespace and for a JSON body without one — the cookie's turn. Any other body, or a
/// `Content-Type` that is not JSON (judged as `axum::Json` does), is 415.
fn refresh_token_in_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Option<String>> {
    let content_type = headers.get(CONTENT_TYPE);
    if content_type.is_none() && body.is_empty() {
        return Ok(None);
    }
    if !content_type.is_some_and(is_json_content_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<RefreshRequest>(body)
        .map_err(|_| ApiError::bad_request("the body must be {\"refresh_token\": \"…\"}"))?
        .refresh_token)
}

/// 204, with the three cookies cleared.
fn cleared(s: &Lifecycle) -> Response {
    let mut headers = HeaderMap::new();
    cookies::clear(&mut headers, s.authenticator().config().cookie_secure);
    (StatusCode::NO_CONTENT, headers).into_response()
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    responses((status = 204, description = "the session's access and refresh tokens are dead at once"),
              (status = 403, description = "wrong_actor_kind: only a signed-in user has a session to end (or csrf_failed)")),
    security(("bearer" = []), ("api_key" = [])))]
/// Ends the caller's login session: its access and refresh tokens die at once.
pub async fn logout(State(s): State<Lifecycle>, who: CurrentActor) -> ApiResult<Response> {
    s.logout(&who).await.api(&s)?;
    Ok(cleared(&s))
}

#[utoipa::path(get, path = "/auth/sessions", tag = "auth", operation_id = "listSessions",
    responses((status = 200, body = [SessionInfo],
               description = "the caller's live sessions (not revoked, not expired), newest first; `current` marks the one of this request's access token"),
              (status = 403, description = "wrong_actor_kind: only a signed-in user has sessions (an API key, an agent or the board does not)")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller's live login sessions, newest first.
pub async fn list_sessions(State(s): State<Lifecycle>, who: CurrentActor) -> ApiResult<Response> {
    let sessions = s.sessions_of(&who).await.api(&s)?;
    Ok(no_store(
        sessions.into_iter().map(SessionInfo::from).collect(),
    ))
}

/// A list of sessions as JSON, never cached.
pub(super) fn no_store(body: Vec<SessionInfo>) -> Response {
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", operation_id = "endSession",
    params(("id" = String, Path, description = "the session's id, as `GET /auth/sessions` lists it", min_length = 1)),
    responses((status = 204, description = "the session's access and refresh tokens are dead at once, on every instance (as after its logout)"),
              (status = 403, description = "wrong_actor_kind: only a signed-in user has sessions (or csrf_failed)"),
              (status = 404, description = "not_found: not a live session of the caller — another user's, an unknown id, or one already ended")),
    security(("bearer" = []), ("api_key" = [])))]
/// Ends one of the caller's sessions (another device's, or this one), at once, everywhere.
pub async fn end_session(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.end_session(&who, &SessionId::from(id)).await.api(&s)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/auth/whoami", tag = "auth", operation_id = "whoami",
    responses((status = 200, body = WhoAmI, description = "the caller, as the auth layer resolved it")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller, as the layer resolved it.
pub async fn whoami(State(s): State<Lifecycle>, who: CurrentActor) -> Json<WhoAmI> {
    let actor: &Actor = &who;
    Json(WhoAmI {
        kind: actor.kind().as_str(),
        id: actor.id().map(str::to_owned),
        org_id: actor.org_id().map(ToString::to_string),
        permissions: super::sorted_names(&s, actor.permissions()),
        auth_method: actor.auth_method().map(|m| m.as_str()),
        issuer: actor.issuer().map(str::to_owned),
        session_id: actor.session_id().map(ToString::to_string),
        run_id: actor.run_id().map(ToString::to_string),
    })
}

#[utoipa::path(post, path = "/auth/password", tag = "auth", operation_id = "changePassword", request_body = PasswordChange,
    responses((status = 204, description = "changed; every session of the user is revoked"),
              (status = 400, description = "invalid_request: the new password is shorter than 8 characters or longer than 1024 bytes (or any other bad input)"),
              (status = 401, description = "invalid_credentials: wrong current password (or a bad credential)"),
              (status = 403, description = "wrong_actor_kind: only a signed-in user has a password (or csrf_failed)"),
              (status = 429, description = "rate_limited: shares login's 10 password checks a minute"),
              (status = 503, description = "auth_unavailable: a store is unreachable, or the server is too busy hashing")),
    security(("bearer" = []), ("api_key" = [])))]
/// Changes the caller's password and revokes every session of theirs.
pub async fn change_password(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    s.change_password(&who, &req.current_password, &req.new_password)
        .await
        .api(&s)?;
    Ok(cleared(&s))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "meta", operation_id = "jwks",
    responses((status = 200, description = "a JWK set (RFC 7517)", body = Object)))]
/// The public keys of the user key ring (empty with HS256).
pub async fn jwks(State(s): State<Lifecycle>) -> ApiResult<Response> {
    let set = s.authenticator().user_tokens().key_ring().jwks();
    let body = serde_json::to_value(&set).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(body).into_response())
}
