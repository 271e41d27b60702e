//! `/auth/*`: login, refresh rotation, logout, whoami, password change.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis::api_key::KeyHash;
use portcullis::credentials::{self, REFRESH_COOKIE};
use portcullis::ids::SessionId;
use portcullis::session::SessionRecord;
use portcullis::sql::UserRecord;
use portcullis::token::AccessGrant;
use portcullis::{Actor, AuthError, CurrentActor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cookies::{self, Issued};
use crate::json::ApiJson;
use crate::password::{self, MAX_PASSWORD_BYTES};
use crate::problem::{ApiError, ApiResult};
use crate::routes::user_of;
use crate::settings::generate_secret;
use crate::state::AppState;

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
    /// `user`, `agent`, `api_key` or `board`.
    pub kind: &'static str,
    /// The actor's id.
    pub id: Option<String>,
    /// Its organisation (`null` for the board, which acts in every org).
    pub org_id: Option<String>,
    /// Its permissions, sorted.
    pub permissions: Vec<&'static str>,
    /// `jwt`, `api_key`, `cookie` or `fallback`.
    pub auth_method: Option<&'static str>,
    /// The login session, for users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The run, for agents on run tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Emails are compared trimmed and lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair,
               description = "a token pair, also set as cookies: `portcullis_access` and `portcullis_refresh` (HttpOnly), `portcullis_csrf`"),
              (status = 401, description = "invalid_credentials: an unknown email and a wrong password alike"),
              (status = 429, description = "rate_limited: 10 password checks a minute for one email"),
              (status = 503, description = "auth_unavailable: a store is unreachable, or the server is too busy hashing")))]
/// Signs in: a token pair in the body and in cookies.
pub async fn login(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let email = normalize_email(&req.email);
    if email.len() > 320 || req.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::auth(AuthError::InvalidCredentials));
    }
    let (user, ok) = with_check_slot(&s, &email, async {
        let user = s.users().find_by_email(&email).await?;
        // An unknown email verifies against a dummy hash: same answer, same cost.
        let ok = s
            .passwords
            .verify(
                &req.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await?;
        Ok((user, ok))
    })
    .await?;
    match user {
        Some(user) if ok => issue_session(&s, &user, req.remember_me).await,
        _ => {
            tracing::info!(outcome = "invalid_credentials", "login refused");
            Err(ApiError::auth(AuthError::InvalidCredentials))
        }
    }
}

/// Runs the password check `check` for `email` on a slot of the login throttle, taken first
/// (429 when none is left); the slot is given back when `check` fails without a verdict (a
/// store error, or too busy to hash), since no password was checked.
async fn with_check_slot<T>(
    s: &AppState,
    email: &str,
    check: impl Future<Output = ApiResult<T>>,
) -> ApiResult<T> {
    s.throttle.reserve(email).await?;
    let verdict = check.await;
    if verdict.is_err()
        && let Err(e) = s.throttle.release(email).await
    {
        tracing::warn!(error = %e, "could not give back a login throttle slot");
    }
    verdict
}

/// Starts a login session for `user` and answers with its first token pair.
async fn issue_session(s: &AppState, user: &UserRecord, remember_me: bool) -> ApiResult<Response> {
    let tokens = s.auth.user_tokens();
    let sid = SessionId::random();
    let refresh = tokens
        .mint_refresh(&user.id, &sid, remember_me)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let session = SessionRecord::new(
        sid.clone(),
        user.id.clone(),
        user.org_id.clone(),
        KeyHash::of(refresh.token.expose().as_bytes()),
        s.now(),
        tokens.refresh_lifetime(remember_me),
        remember_me,
    );
    s.auth.stores().sessions.create(session).await?;
    tracing::info!(user = %user.id, session = %sid, "login");
    token_response(s, user, &sid, refresh.token.expose(), refresh.expires_in)
}

/// The body and cookies of a token pair; mints the access token.
fn token_response(
    s: &AppState,
    user: &UserRecord,
    sid: &SessionId,
    refresh_token: &str,
    refresh_expires_in: u64,
) -> ApiResult<Response> {
    let access = s
        .auth
        .user_tokens()
        .mint_access(AccessGrant {
            user_id: &user.id,
            email: &user.email,
            role: &user.role,
            org_id: &user.org_id,
            session_id: sid,
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut headers = HeaderMap::new();
    let csrf = generate_secret();
    cookies::issue(
        &mut headers,
        &Issued {
            access: (access.token.expose(), access.expires_in),
            refresh: (refresh_token, refresh_expires_in),
            csrf: &csrf,
        },
        s.auth.config().cookie_secure,
    );
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    let body = TokenPair {
        access_token: access.token.expose().to_owned(),
        refresh_token: refresh_token.to_owned(),
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_expires_in,
    };
    Ok((headers, Json(body)).into_response())
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
    State(s): State<AppState>,
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
                .map_err(ApiError::presented)?
                .ok_or(ApiError::auth(AuthError::MissingCredentials))?;
            if !credentials::csrf_matches(&headers) {
                return Err(ApiError::presented(AuthError::CsrfFailed));
            }
            token.to_owned()
        }
    };
    let rotation = s
        .auth
        .rotate_refresh(&token)
        .await
        .map_err(ApiError::presented)?;
    let session = rotation.session;
    let Some(user) = s.users().get(&session.user_id).await? else {
        s.auth.revoke_session(&session.id).await?;
        return Err(ApiError::presented(AuthError::TokenRevoked));
    };
    let lifetime = session.expires_at.saturating_sub(s.now());
    token_response(
        &s,
        &user,
        &session.id,
        rotation.refresh.token.expose(),
        lifetime,
    )
}

/// The refresh token of a JSON body; `None` for no body (no `Content-Type` and no bytes), for
/// whitespace and for a JSON body without one — the cookie's turn. Any other body, or a
/// `Content-Type` that is not JSON (judged as `axum::Json` does), is 415.
fn refresh_token_in_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Option<String>> {
    let content_type = headers.get(CONTENT_TYPE);
    if content_type.is_none() && body.is_empty() {
        return Ok(None);
    }
    if !content_type.is_some_and(crate::json::is_json_content_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<RefreshRequest>(body)
        .map_err(|_| ApiError::bad_request("the body must be {\"refresh_token\": \"…\"}"))?
        .refresh_token)
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    responses((status = 204, description = "the session's access and refresh tokens are dead at once"),
              (status = 403, description = "wrong_actor_kind: only a signed-in user has a session to end (or csrf_failed)")),
    security(("bearer" = []), ("api_key" = [])))]
/// Ends the caller's login session: its access and refresh tokens die at once.
pub async fn logout(State(s): State<AppState>, who: CurrentActor) -> ApiResult<Response> {
    let (_, user) = user_of(&who)?;
    s.auth.revoke_session(&user.session_id).await?;
    let mut headers = HeaderMap::new();
    cookies::clear(&mut headers, s.auth.config().cookie_secure);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

#[utoipa::path(get, path = "/auth/whoami", tag = "auth", operation_id = "whoami",
    responses((status = 200, body = WhoAmI, description = "the caller, as the auth layer resolved it")),
    security(("bearer" = []), ("api_key" = [])))]
/// The caller, as the layer resolved it.
pub async fn whoami(State(s): State<AppState>, who: CurrentActor) -> Json<WhoAmI> {
    let actor: &Actor = &who;
    let mut permissions: Vec<&'static str> = s.auth.catalog().names(actor.permissions()).collect();
    permissions.sort_unstable();
    Json(WhoAmI {
        kind: actor.kind().as_str(),
        id: actor.id().map(str::to_owned),
        org_id: actor.org_id().map(ToString::to_string),
        permissions,
        auth_method: actor.auth_method().map(|m| m.as_str()),
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
    State(s): State<AppState>,
    who: CurrentActor,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    let (user_id, _) = user_of(&who)?;
    password::check_new(&req.new_password)?;
    let Some(user) = s.users().get(user_id).await? else {
        return Err(ApiError::presented(AuthError::TokenRevoked));
    };
    // The same slots as logins for this email: a stolen access token guesses no faster.
    let ok = with_check_slot(&s, &normalize_email(&user.email), async {
        if req.current_password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        s.passwords
            .verify(&req.current_password, Some(&user.password_hash))
            .await
    })
    .await?;
    if !ok {
        return Err(ApiError::auth(AuthError::InvalidCredentials));
    }
    let hash = s.passwords.hash(&req.new_password).await?;
    s.users().set_password_hash(&user.id, &hash).await?;
    let revoked = s.auth.revoke_user_sessions(&user.id).await?;
    tracing::info!(user = %user.id, revoked, "password changed; sessions revoked");
    let mut headers = HeaderMap::new();
    cookies::clear(&mut headers, s.auth.config().cookie_secure);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}
