//! The mountable routes, driven through the real layer with `oneshot`: what the routers add to
//! the lifecycle (its rules have their own tests in portcullis-core) — the cookie protocol,
//! where the refresh token comes from, the status codes, problem+json and the OpenAPI document.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "routes")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, StatusCode};
use portcullis_axum::routes;
use portcullis_core::ids::{OrgId, UserId};
use portcullis_core::lifecycle::Lifecycle;
use portcullis_core::users::{Account, MemoryUsers, Users};
use portcullis_core::{AuthConfig, Authenticator};
use portcullis_tower::AuthLayer;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

/// The four routers behind the layer, and a user `role` of org `acme` with [`PASSWORD`].
async fn app(role: &str) -> Router {
    let auth = Authenticator::builder()
        .config(AuthConfig::builder().build().unwrap())
        .build()
        .unwrap();
    let users = Arc::new(MemoryUsers::default());
    let lifecycle = Lifecycle::builder(auth.clone(), users.clone())
        .build()
        .unwrap();
    users
        .create(&Account {
            id: UserId::random(),
            email: "ada@example.com".into(),
            password_hash: lifecycle.passwords().hash(PASSWORD).await.unwrap(),
            role: role.into(),
            org_id: OrgId::from("acme"),
        })
        .await
        .unwrap();
    let layer = AuthLayer::builder(auth)
        .public_paths(routes::PUBLIC_PATHS)
        .build()
        .unwrap();
    Router::new().merge(routes::all(lifecycle)).layer(layer)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(app: &Router, request: Request<Body>) -> Answer {
    let res = app.clone().oneshot(request).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

fn post_json(path: &str) -> http::request::Builder {
    Request::post(path).header(CONTENT_TYPE, "application/json")
}

async fn login(app: &Router) -> Answer {
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    call(
        app,
        post_json("/auth/login")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// `name=value` of each Set-Cookie, and the whole lines.
fn cookies(headers: &HeaderMap) -> (String, Vec<String>) {
    let lines: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let pairs = lines
        .iter()
        .map(|l| l.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    (pairs, lines)
}

fn cookie_value(pairs: &str, name: &str) -> String {
    pairs
        .split("; ")
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn login_answers_a_pair_in_the_body_and_three_cookies() {
    let app = app("user").await;
    let a = login(&app).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.headers["cache-control"], "no-store");
    let (pairs, lines) = cookies(&a.headers);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let refresh = lines
        .iter()
        .find(|l| l.starts_with("portcullis_refresh="))
        .unwrap();
    assert!(refresh.contains("HttpOnly") && refresh.contains("Path=/auth"));
    assert!(refresh.contains("SameSite=Strict"));
    assert_eq!(
        cookie_value(&pairs, "portcullis_access"),
        a.body["access_token"].as_str().unwrap()
    );
    // A wrong password: 401 invalid_credentials with the bare challenge, no cookie.
    let body = json!({"email": "ada@example.com", "password": "wrong password"});
    let bad = call(
        &app,
        post_json("/auth/login")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.body["code"], "invalid_credentials");
    assert_eq!(
        bad.headers[WWW_AUTHENTICATE],
        r#"Bearer realm="portcullis""#
    );
    assert_eq!(bad.headers[CONTENT_TYPE], "application/problem+json");
    assert!(bad.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn refresh_by_cookie_needs_the_csrf_header_and_json_refresh_is_415_otherwise() {
    let app = app("user").await;
    let (pairs, _) = cookies(&login(&app).await.headers);
    let csrf = cookie_value(&pairs, "portcullis_csrf");
    // The cookie alone: 403 csrf_failed.
    let no_csrf = call(
        &app,
        Request::post("/auth/refresh")
            .header(COOKIE, &pairs)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.body["code"], "csrf_failed");
    // With it: a new pair, new cookies.
    let ok = call(
        &app,
        Request::post("/auth/refresh")
            .header(COOKIE, &pairs)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(cookies(&ok.headers).1.len(), 3);
    // A form body (what a cross-site form can post): 415.
    let form = call(
        &app,
        Request::post("/auth/refresh")
            .header(CONTENT_TYPE, "text/plain")
            .body(Body::from("refresh_token=x"))
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(form.body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn logout_clears_the_cookies_and_kills_the_access_token() {
    let app = app("user").await;
    let pair = login(&app).await.body;
    let bearer = format!("Bearer {}", pair["access_token"].as_str().unwrap());
    let out = call(
        &app,
        Request::post("/auth/logout")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let (_, lines) = cookies(&out.headers);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.contains("Max-Age=0")), "{lines:?}");
    let after = call(
        &app,
        Request::get("/auth/whoami")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.body["code"], "token_revoked");
}

#[tokio::test]
async fn a_viewer_creating_an_agent_is_403_naming_the_scope() {
    let app = app("viewer").await;
    let pair = login(&app).await.body;
    let body = json!({"name": "bot"});
    let a = call(
        &app,
        post_json("/agents")
            .header(
                "authorization",
                format!("Bearer {}", pair["access_token"].as_str().unwrap()),
            )
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["code"], "insufficient_permissions");
    assert_eq!(
        a.headers[WWW_AUTHENTICATE],
        r#"Bearer error="insufficient_scope", scope="admin:write""#
    );
}

#[tokio::test]
async fn a_key_made_through_the_routes_works_and_holds_no_more_than_asked() {
    let app = app("user").await;
    let pair = login(&app).await.body;
    let bearer = format!("Bearer {}", pair["access_token"].as_str().unwrap());
    let body = json!({"name": "reader", "permissions": ["memory:read"]});
    let made = call(
        &app,
        post_json("/api-keys")
            .header("authorization", &bearer)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let key = made.body["api_key"].as_str().unwrap();
    let who = call(
        &app,
        Request::get("/auth/whoami")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.body["kind"], "api_key");
    assert_eq!(who.body["permissions"], json!(["memory:read"]));
    // The listing never shows the key.
    let list = call(
        &app,
        Request::get("/api-keys")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(key));
}

#[test]
fn the_document_describes_every_route_of_the_routers() {
    let doc = routes::openapi::document(
        utoipa::openapi::OpenApiBuilder::new().build(),
        &routes::PUBLIC_PATHS,
    );
    for (path, method) in [
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/whoami", "get"),
        ("/auth/password", "post"),
        ("/.well-known/jwks.json", "get"),
        ("/api-keys", "post"),
        ("/api-keys", "get"),
        ("/api-keys/{key_id}", "patch"),
        ("/api-keys/{key_id}", "delete"),
        ("/agents", "post"),
        ("/agents/{id}/runs", "post"),
        ("/agents/{id}/terminate", "post"),
        ("/users", "post"),
        ("/admin/stats", "get"),
        ("/admin/users/{id}/revoke-sessions", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["operationId"].is_string(),
            "{method} {path} is not documented"
        );
    }
    // Login is public; whoami is not, and documents the layer's refusals.
    assert!(doc["paths"]["/auth/login"]["post"]["responses"]["401"].is_object());
    assert!(doc["paths"]["/auth/whoami"]["get"]["responses"]["503"].is_object());
    assert!(doc["paths"]["/auth/whoami"]["get"]["security"].is_array());
}
