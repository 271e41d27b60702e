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

/// `whoami` with `X-API-Key: key`: its status and `code`.
async fn whoami_with_key(app: &Router, key: &str) -> (StatusCode, Value) {
    let a = call(
        app,
        Request::get("/auth/whoami")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.body)
}

#[tokio::test]
async fn a_rerolled_key_answers_a_new_secret_and_the_old_one_lives_only_for_the_overlap() {
    let app = app("user").await;
    let pair = login(&app).await.body;
    let bearer = format!("Bearer {}", pair["access_token"].as_str().unwrap());
    let body = json!({"name": "ci", "permissions": ["memory:read"], "expires_in_seconds": 3600,
                      "rate_limit_per_minute": 100});
    let made = call(
        &app,
        post_json("/api-keys")
            .header("authorization", &bearer)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let id = made.body["key_id"].as_str().unwrap().to_owned();
    let old = made.body["api_key"].as_str().unwrap().to_owned();
    let reroll = |overlap: Value| {
        post_json(&format!("/api-keys/{id}/reroll"))
            .header("authorization", &bearer)
            .body(Body::from(
                json!({ "overlap_seconds": overlap }).to_string(),
            ))
            .unwrap()
    };

    // With an overlap: a new secret for the same key; both work.
    let first = call(&app, reroll(json!(60))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["key_id"], id.as_str());
    assert_eq!(first.body["permissions"], json!(["memory:read"]));
    assert_eq!(first.body["expires_at"], made.body["expires_at"]);
    let new = first.body["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with(first.body["prefix"].as_str().unwrap()));
    for key in [&old, &new] {
        let (status, who) = whoami_with_key(&app, key).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(who["id"], id.as_str());
    }

    // Without an overlap: the secret replaced is dead at once, and so is the one the first
    // reroll kept (only the newest replaced secret survives a reroll).
    let second = call(&app, reroll(json!(0))).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let newest = second.body["api_key"].as_str().unwrap().to_owned();
    for dead in [&old, &new] {
        let (status, problem) = whoami_with_key(&app, dead).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(problem["code"], "invalid_api_key");
    }
    assert_eq!(whoami_with_key(&app, &newest).await.0, StatusCode::OK);

    // The listing shows the one key, with its new prefix.
    let list = call(&app, with_auth("GET", "/api-keys", &bearer)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["prefix"], second.body["prefix"]);

    // A bad overlap is 400 naming the field, never its value.
    for bad in [
        json!(-1),
        json!(86_401),
        json!(1.5),
        json!("60"),
        Value::Null,
    ] {
        let a = call(&app, reroll(bad.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
        assert_eq!(a.body["code"], "invalid_request");
        assert!(
            a.body["detail"]
                .as_str()
                .unwrap()
                .contains("overlap_seconds"),
            "{bad}: {}",
            a.body
        );
        assert_eq!(a.headers[CONTENT_TYPE], "application/problem+json");
    }
    let missing = call(
        &app,
        post_json(&format!("/api-keys/{id}/reroll"))
            .header("authorization", &bearer)
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body["detail"]
            .as_str()
            .unwrap()
            .contains("overlap_seconds")
    );
    assert_eq!(whoami_with_key(&app, &newest).await.0, StatusCode::OK);

    // Not a key of the caller's: 404. No credentials: 401.
    let unknown = call(
        &app,
        post_json("/api-keys/nope/reroll")
            .header("authorization", &bearer)
            .body(Body::from(json!({"overlap_seconds": 5}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "not_found");
    let anonymous = call(
        &app,
        post_json(&format!("/api-keys/{id}/reroll"))
            .body(Body::from(json!({"overlap_seconds": 5}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["code"], "missing_credentials");
    assert!(anonymous.headers.contains_key(WWW_AUTHENTICATE));
}

/// A request with `Authorization: <auth>` (none when empty) and no body.
fn with_auth(method: &str, path: &str, auth: &str) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if !auth.is_empty() {
        r = r.header("authorization", auth);
    }
    r.body(Body::empty()).unwrap()
}

/// The `session_id` whoami gives for `auth`.
async fn session_id(app: &Router, auth: &str) -> String {
    let who = call(app, with_auth("GET", "/auth/whoami", auth)).await;
    who.body["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_lists_its_sessions_and_ends_another_one_at_once() {
    let app = app("user").await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "remember_me": true});
    let laptop = call(
        &app,
        post_json("/auth/login")
            .header(
                "user-agent",
                http::HeaderValue::from_bytes(b"Laptop/1.0\t(X11) \xe9").unwrap(),
            )
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(laptop.status, StatusCode::OK);
    let phone = login(&app).await;
    assert_eq!(phone.status, StatusCode::OK);
    let bearer = |a: &Answer| format!("Bearer {}", a.body["access_token"].as_str().unwrap());
    let (laptop_sid, phone_sid) = (
        session_id(&app, &bearer(&laptop)).await,
        session_id(&app, &bearer(&phone)).await,
    );

    let list = call(&app, with_auth("GET", "/auth/sessions", &bearer(&phone))).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.headers["cache-control"], "no-store");
    let rows = list.body.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", list.body);
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let (l, p) = (row(&laptop_sid), row(&phone_sid));
    // The tab is dropped, a byte that is not UTF-8 is U+FFFD; no User-Agent is null.
    assert_eq!(l["user_agent"], "Laptop/1.0(X11) \u{fffd}");
    assert_eq!(p["user_agent"], Value::Null);
    assert_eq!(
        (l["current"].clone(), p["current"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(
        (l["remember_me"].clone(), p["remember_me"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(l["last_refreshed_at"], Value::Null);
    assert!(l["created_at"].is_u64(), "{l}");
    let mut keys: Vec<_> = l.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "current",
            "id",
            "last_refreshed_at",
            "remember_me",
            "user_agent"
        ]
    );

    let ended = call(
        &app,
        with_auth(
            "DELETE",
            &format!("/auth/sessions/{laptop_sid}"),
            &bearer(&phone),
        ),
    )
    .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    let dead = call(&app, with_auth("GET", "/auth/whoami", &bearer(&laptop))).await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dead.body["code"], "token_revoked");
    let refresh = json!({"refresh_token": laptop.body["refresh_token"]});
    let refused = call(
        &app,
        post_json("/auth/refresh")
            .body(Body::from(refresh.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["code"], "token_revoked");
    // Ended already, or never there: 404.
    for id in [laptop_sid.as_str(), "no-such-session"] {
        let again = call(
            &app,
            with_auth("DELETE", &format!("/auth/sessions/{id}"), &bearer(&phone)),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(again.body["code"], "not_found");
        assert!(
            again.headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
    }
    let list = call(&app, with_auth("GET", "/auth/sessions", &bearer(&phone))).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.body);
    assert_eq!(list.body[0]["id"], phone_sid.as_str());
}

#[tokio::test]
async fn sessions_need_a_signed_in_user() {
    let app = app("user").await;
    let pair = login(&app).await.body;
    let bearer = format!("Bearer {}", pair["access_token"].as_str().unwrap());
    let body = json!({"name": "reader", "permissions": ["session:read"]});
    let made = call(
        &app,
        post_json("/api-keys")
            .header("authorization", &bearer)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let key = format!("Bearer {}", made.body["api_key"].as_str().unwrap());
    let sid = session_id(&app, &bearer).await;
    for (method, path) in [
        ("GET", "/auth/sessions".to_owned()),
        ("DELETE", format!("/auth/sessions/{sid}")),
    ] {
        let refused = call(&app, with_auth(method, &path, &key)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(refused.body["code"], "wrong_actor_kind");
        let anonymous = call(&app, with_auth(method, &path, "")).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(anonymous.body["code"], "missing_credentials");
        assert_eq!(
            anonymous.headers[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis""#
        );
    }
    // The key ended nothing.
    let still = call(&app, with_auth("GET", "/auth/whoami", &bearer)).await;
    assert_eq!(still.status, StatusCode::OK);
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
        ("/auth/sessions", "get"),
        ("/auth/sessions/{id}", "delete"),
        ("/.well-known/jwks.json", "get"),
        ("/api-keys", "post"),
        ("/api-keys", "get"),
        ("/api-keys/{key_id}", "patch"),
        ("/api-keys/{key_id}", "delete"),
        ("/api-keys/{key_id}/reroll", "post"),
        ("/agents", "post"),
        ("/agents/{id}/runs", "post"),
        ("/agents/{id}/terminate", "post"),
        ("/users", "post"),
        ("/admin/stats", "get"),
        ("/admin/audit", "get"),
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
    // A user's sessions: every status the two routes answer.
    let list = &doc["paths"]["/auth/sessions"]["get"]["responses"];
    for status in ["200", "401", "403", "429", "503"] {
        assert!(
            list[status].is_object(),
            "GET /auth/sessions {status}: {list}"
        );
    }
    let reroll = &doc["paths"]["/api-keys/{key_id}/reroll"]["post"];
    for status in [
        "201", "400", "401", "403", "404", "413", "415", "429", "503",
    ] {
        assert!(
            reroll["responses"][status].is_object(),
            "POST /api-keys/{{key_id}}/reroll {status}: {reroll}"
        );
    }
    let overlap = &doc["components"]["schemas"]["RerollKey"]["properties"]["overlap_seconds"];
    assert_eq!(overlap["minimum"], 0, "{overlap}");
    assert_eq!(overlap["maximum"], 86_400, "{overlap}");
    assert_eq!(
        doc["components"]["schemas"]["RerollKey"]["required"],
        json!(["overlap_seconds"])
    );
    let audit = &doc["paths"]["/admin/audit"]["get"]["responses"];
    for status in ["200", "400", "401", "403", "429", "503"] {
        assert!(
            audit[status].is_object(),
            "GET /admin/audit {status}: {audit}"
        );
    }
    let end = &doc["paths"]["/auth/sessions/{id}"]["delete"]["responses"];
    for status in ["204", "400", "401", "403", "404", "429", "503"] {
        assert!(
            end[status].is_object(),
            "DELETE /auth/sessions/{{id}} {status}: {end}"
        );
    }
}

mod audit {
    use super::*;
    use portcullis_core::StoreError;
    use portcullis_core::audit::{
        AuditEvent, AuditLog, AuditPage, AuditQuery, AuditRecord, AuditSink,
    };
    use std::sync::Mutex;

    /// Events kept in memory, read back newest first (the SQL log's cursors are tested there).
    #[derive(Default)]
    struct MemLog(Mutex<Vec<AuditEvent>>);

    impl AuditSink for MemLog {
        fn record(&self, event: AuditEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[async_trait::async_trait]
    impl AuditLog for MemLog {
        async fn query(&self, q: &AuditQuery) -> Result<AuditPage, StoreError> {
            let events = self.0.lock().unwrap();
            let items = events
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, e)| q.org.is_none() || e.org_id == q.org)
                .take(q.limit as usize)
                .map(|(id, e)| AuditRecord {
                    id: id as i64,
                    event: e.clone(),
                })
                .collect();
            Ok(AuditPage {
                items,
                next_cursor: None,
            })
        }
    }

    async fn audited_app(role: &str) -> Router {
        let auth = Authenticator::builder()
            .config(AuthConfig::builder().build().unwrap())
            .build()
            .unwrap();
        let users = Arc::new(MemoryUsers::default());
        let log = Arc::new(MemLog::default());
        let lifecycle = Lifecycle::builder(auth.clone(), users.clone())
            .audit_sink(log.clone())
            .audit_log(log)
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

    #[tokio::test]
    async fn the_audit_route_shows_the_login_with_its_request_id() {
        let app = audited_app("admin").await;
        let body = json!({"email": "ada@example.com", "password": PASSWORD});
        let a = call(
            &app,
            post_json("/auth/login")
                .header("x-request-id", "r-7")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["x-request-id"], "r-7");
        let bearer = format!("Bearer {}", a.body["access_token"].as_str().unwrap());

        let page = call(&app, with_auth("GET", "/admin/audit", &bearer)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        // A request without an id gets one.
        let generated = page.headers["x-request-id"].to_str().unwrap();
        assert_eq!(generated.len(), 36, "{generated}");
        let items = page.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", page.body);
        assert_eq!(items[0]["action"], "login.succeeded");
        assert_eq!(items[0]["org_id"], "acme");
        assert_eq!(items[0]["request_id"], "r-7");
        assert_eq!(items[0]["client"], Value::Null, "no ConnectInfo in oneshot");
        assert_eq!(page.body["next_cursor"], Value::Null);
        assert!(!page.body.to_string().contains(PASSWORD));

        // A dirty request id is replaced.
        let r = Request::get("/admin/audit")
            .header("authorization", &bearer)
            .header("x-request-id", "bad id\twith spaces")
            .body(Body::empty())
            .unwrap();
        let a = call(&app, r).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["x-request-id"].len(), 36);

        for (query, field) in [
            ("limit=0", "limit"),
            ("cursor=zz", "cursor"),
            ("since=x", "since"),
        ] {
            let a = call(
                &app,
                with_auth("GET", &format!("/admin/audit?{query}"), &bearer),
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(a.body["code"], "invalid_request");
            assert!(
                a.body["detail"].as_str().unwrap().starts_with(field),
                "{}",
                a.body
            );
        }
        let a = call(&app, with_auth("GET", "/admin/audit", "")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body["code"], "missing_credentials");
        assert!(a.headers.contains_key(WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn the_audit_route_needs_admin_read() {
        let app = audited_app("user").await;
        let a = login(&app).await;
        let bearer = format!("Bearer {}", a.body["access_token"].as_str().unwrap());
        let a = call(&app, with_auth("GET", "/admin/audit", &bearer)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.body["code"], "insufficient_permissions");
        assert_eq!(
            a.headers[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_scope", scope="admin:read""#
        );
    }
}
