//! The public routes: the login page, the admin console's page, health, readiness, OpenAPI.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::LazyLock;

use crate::state::AppState;
use portcullis::routes::ApiResult;

#[utoipa::path(get, path = "/", tag = "meta", operation_id = "loginPage",
    responses((status = 200, description = "the login page", content_type = "text/html", body = String)))]
/// The login page: plain HTML and a little JavaScript, using the cookie flow.
pub async fn index() -> Response {
    static PAGE: LazyLock<String> =
        LazyLock::new(|| with_cookie_flow(include_str!("../../static/index.html")));
    page(PAGE.as_str())
}

#[utoipa::path(get, path = "/admin", tag = "meta", operation_id = "adminConsole",
    responses((status = 200, description = "the admin console: a static page whose script calls the API with the cookie flow (and goes to `/` to sign in on a 401)", content_type = "text/html", body = String)))]
/// The admin console: plain HTML and a little JavaScript, like the login page; the data comes
/// from the API, with the cookies and the CSRF header, so the page itself is public.
pub async fn admin_console() -> Response {
    static PAGE: LazyLock<String> =
        LazyLock::new(|| with_cookie_flow(include_str!("../../static/admin.html")));
    page(PAGE.as_str())
}

/// Where a page's inline script takes the shared client side of the cookie flow.
const COOKIE_FLOW_SLOT: &str = "/* cookie-flow.js */";

/// `html` with the cookie flow's script (`static/cookie-flow.js`: the CSRF header, the one
/// refresh at a time, problem texts) in its slot. Spliced, not linked, so that the CSP allows
/// no script but the page's own inline one.
fn with_cookie_flow(html: &str) -> String {
    html.replacen(
        COOKIE_FLOW_SLOT,
        include_str!("../../static/cookie-flow.js"),
        1,
    )
}

/// A static page of this server, with the headers that keep it to itself: it runs only its
/// own inline script, talks only to this origin, and is never framed nor told where it was.
fn page(html: &'static str) -> Response {
    let mut res = Html(html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[utoipa::path(get, path = "/healthz", tag = "meta", operation_id = "healthz",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
/// The process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "meta", operation_id = "readyz",
    responses((status = 200, description = "`{\"status\": \"ready\", \"database\", \"redis\", \"issuers\"}`: `issuers` maps each external issuer to its keys' state (`fresh`, `stale`: the last fetch failed and the last good keys are used, `expired`, `pending`)", body = Object),
              (status = 503, description = "auth_unavailable: the database or Redis is down")))]
/// The database (and Redis, when configured) answer.
pub async fn readyz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    s.sql.pool().ping().await?;
    let redis = match &s.redis {
        Some(r) => {
            r.ping().await?;
            "ok"
        }
        None => "not configured",
    };
    // External issuers: a stale one still verifies with its last good keys, so the
    // instance stays ready; the state is reported for operators.
    let issuers: serde_json::Map<String, Value> = s
        .auth
        .issuer_status()
        .into_iter()
        .map(|i| {
            let state = json!({
                "keys": i.freshness.as_str(),
                "key_count": i.keys,
                "fetches": i.fetches,
                "age_secs": i.age_secs,
                "last_error": i.last_error,
            });
            (i.issuer, state)
        })
        .collect();
    Ok(Json(json!({
        "status": "ready",
        "database": s.sql.pool().backend_name(),
        "redis": redis,
        "issuers": issuers,
    })))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
/// The OpenAPI document, generated from the handlers.
pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_takes_the_cookie_flow_once_in_its_script() {
        for html in [
            include_str!("../../static/index.html"),
            include_str!("../../static/admin.html"),
        ] {
            assert_eq!(html.matches(COOKIE_FLOW_SLOT).count(), 1);
            let page = with_cookie_flow(html);
            assert!(!page.contains(COOKIE_FLOW_SLOT));
            assert_eq!(page.matches("function csrfToken()").count(), 1);
            let script = page.find("<script>").unwrap_or(usize::MAX);
            assert!(page.find("function csrfToken()").unwrap_or(0) > script);
        }
    }
}
