//! `examples/existing_app.rs` end to end: the notes app that adopted Portcullis, on a fresh
//! SQLite file, served over real HTTP and driven with `reqwest`, one test per flow. Members
//! log in with the password hashes the app made itself.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/existing_app.rs"]
mod existing_app;

use std::sync::Arc;

use portcullis::AuthConfig;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const ADA: &str = "ada@team.example"; // an admin of team-a
const ADA_PASSWORD: &str = "ada's own passphrase";
const BOB: &str = "bob@team.example"; // a regular member of team-a
const BOB_PASSWORD: &str = "bob's own passphrase";

/// The app on 127.0.0.1, on its own SQLite file; the server stops with the test's runtime.
struct Running {
    base: String,
    ada_id: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("notes.db").display()
    );
    // No grace for a replayed refresh token, so that reuse is caught at once; plain HTTP, so
    // cookies without `Secure`.
    let config = AuthConfig::builder()
        .refresh_reuse_grace_secs(0)
        .cookie_secure(false)
        .build()
        .unwrap();
    let auth_db_url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let app = existing_app::app(&db_url, &auth_db_url, config)
        .await
        .unwrap();
    let ada_id = existing_app::add_member(&db_url, ADA, ADA_PASSWORD, true, "team-a")
        .await
        .unwrap();
    existing_app::add_member(&db_url, BOB, BOB_PASSWORD, false, "team-a")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Running {
        base,
        ada_id,
        _dir: dir,
    }
}

fn client() -> Client {
    Client::builder().build().unwrap()
}

async fn login(c: &Client, base: &str, email: &str, password: &str) -> Response {
    c.post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A member's token pair (status asserted).
async fn tokens(base: &str, email: &str, password: &str) -> Value {
    let res = login(&client(), base, email, password).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

/// Status, headers and JSON body (`Null` when there is none).
async fn parts(res: Response) -> (StatusCode, HeaderMap, Value) {
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, headers, body)
}

async fn get_notes(base: &str, bearer: &str) -> (StatusCode, HeaderMap, Value) {
    let res = client()
        .get(format!("{base}/notes"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    parts(res).await
}

fn problem_type(headers: &HeaderMap) -> &str {
    headers["content-type"].to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_members_own_password_gives_a_pair_and_three_cookies_and_a_wrong_one_is_401() {
    let srv = start().await;
    let res = login(&client(), &srv.base, ADA, ADA_PASSWORD).await;
    let (status, headers, body) = parts(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(access(&body).split('.').count() == 3, "a JWT: {body}");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
    assert!(body["refresh_expires_in"].as_u64().is_some_and(|s| s > 0));

    let cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let line = |name: &str| {
        *cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
    };
    assert!(line("portcullis_access").contains("HttpOnly"));
    let refresh = line("portcullis_refresh");
    assert!(
        refresh.contains("HttpOnly") && refresh.contains("Path=/auth"),
        "{refresh}"
    );
    assert!(
        !line("portcullis_csrf").contains("HttpOnly"),
        "scripts read the CSRF cookie"
    );

    // The token is the member: whoami says who, in which team, with which role.
    let res = client()
        .get(format!("{}/auth/whoami", srv.base))
        .bearer_auth(access(&body))
        .send()
        .await
        .unwrap();
    let (status, _, who) = parts(res).await;
    assert_eq!(status, StatusCode::OK, "{who}");
    assert_eq!(who["kind"], "user");
    assert_eq!(
        who["id"],
        srv.ada_id.as_str(),
        "the member_id is the token's subject"
    );
    assert_eq!(who["org_id"], "team-a");
    let held = who["permissions"].as_array().unwrap();
    assert!(held.contains(&json!("admin:read")), "role admin: {who}");

    // A wrong password, and an unknown login, are the same 401, setting no cookie.
    for (email, password) in [
        (ADA, "not ada's passphrase"),
        ("eve@team.example", ADA_PASSWORD),
    ] {
        let (status, headers, body) =
            parts(login(&client(), &srv.base, email, password).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "invalid_credentials");
        assert_eq!(problem_type(&headers), "application/problem+json");
        assert!(headers.get("set-cookie").is_none());
        assert!(!body.to_string().contains("passphrase"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_a_json_body_rotates_the_pair_and_a_reused_refresh_token_is_401() {
    let srv = start().await;
    let first = tokens(&srv.base, BOB, BOB_PASSWORD).await;
    let refresh = |token: Value| {
        let url = format!("{}/auth/refresh", srv.base);
        async move {
            let res = client()
                .post(url)
                .json(&json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap();
            parts(res).await
        }
    };

    let (status, _, second) = refresh(first["refresh_token"].clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(
        get_notes(&srv.base, access(&second)).await.0,
        StatusCode::OK
    );

    // The rotated-away token again: reuse, refused, and the whole session goes with it.
    let (status, headers, body) = refresh(first["refresh_token"].clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "token_revoked");
    assert_eq!(problem_type(&headers), "application/problem+json");
    assert!(headers.get("set-cookie").is_none());
    let (status, _, body) = get_notes(&srv.base, access(&second)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "token_revoked");
    let (status, _, body) = refresh(second["refresh_token"].clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_post_to_notes_needs_the_csrf_header() {
    let srv = start().await;
    let jar = Arc::new(Jar::default());
    let browser = Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    assert_eq!(
        login(&browser, &srv.base, BOB, BOB_PASSWORD).await.status(),
        StatusCode::OK
    );
    let url: reqwest::Url = format!("{}/notes", srv.base).parse().unwrap();
    let sent = jar.cookies(&url).unwrap();
    let sent = sent.to_str().unwrap();
    let csrf = sent
        .split("; ")
        .find_map(|c| c.strip_prefix("portcullis_csrf="))
        .unwrap_or_else(|| panic!("no CSRF cookie for /notes: {sent}"));
    assert!(sent.contains("portcullis_access="), "{sent}");
    assert!(!sent.contains("portcullis_refresh="), "Path=/auth: {sent}");

    // Cookies alone: refused before the handler runs, nothing stored.
    let res = browser
        .post(url.clone())
        .json(&json!({"body": "forged"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "csrf_failed");
    assert_eq!(problem_type(&headers), "application/problem+json");

    // Cookies and the header: created, by Bob.
    let res = browser
        .post(url.clone())
        .header("x-csrf-token", csrf)
        .json(&json!({"body": "standup at ten"}))
        .send()
        .await
        .unwrap();
    let (status, _, note) = parts(res).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["body"], "standup at ten");

    // A safe request needs no header; only the real note is there.
    let (status, _, list) = parts(browser.get(url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let notes = list["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{list}");
    assert_eq!(notes[0]["body"], "standup at ten");
    assert_eq!(notes[0]["author"], note["author"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_made_with_a_bearer_token_reads_the_teams_notes() {
    let srv = start().await;
    let bob = tokens(&srv.base, BOB, BOB_PASSWORD).await;
    let res = client()
        .post(format!("{}/notes", srv.base))
        .bearer_auth(access(&bob))
        .json(&json!({"body": "ship on friday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = client()
        .post(format!("{}/api-keys", srv.base))
        .bearer_auth(access(&bob))
        .json(&json!({"name": "dashboard", "permissions": ["memory:list"]}))
        .send()
        .await
        .unwrap();
    let (status, _, made) = parts(res).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["permissions"], json!(["memory:list"]));
    let key = made["api_key"].as_str().unwrap();

    let read = client()
        .get(format!("{}/notes", srv.base))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let (status, _, list) = parts(read).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["notes"][0]["body"], "ship on friday");

    // The key holds only what it was given: writing is a 403 naming the scope.
    let write = client()
        .post(format!("{}/notes", srv.base))
        .header("x-api-key", key)
        .json(&json!({"body": "from the key"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(write).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "insufficient_permissions");
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="memory:create""#
    );

    // A key that is not one is a 401, not the notes.
    let res = client()
        .get(format!("{}/notes", srv.base))
        .header("x-api-key", format!("{key}x"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_api_key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_role_lacks_the_permission_is_403_naming_the_scope() {
    let srv = start().await;
    let roster = |token: String| {
        let url = format!("{}/members", srv.base);
        async move { parts(client().get(url).bearer_auth(token).send().await.unwrap()).await }
    };

    // Bob is a regular member (role `user`): no admin:read.
    let bob = tokens(&srv.base, BOB, BOB_PASSWORD).await;
    let (status, headers, body) = roster(access(&bob).to_owned()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "insufficient_permissions");
    assert_eq!(problem_type(&headers), "application/problem+json");
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="admin:read""#
    );

    // Ada is an admin of the team: the roster, with no password hash in it.
    let ada = tokens(&srv.base, ADA, ADA_PASSWORD).await;
    let (status, _, body) = roster(access(&ada).to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["members"].as_array().unwrap().len(), 2, "{body}");
    assert!(!body.to_string().contains("argon2"), "{body}");

    // No credentials at all: 401 with the challenge.
    let res = client()
        .get(format!("{}/members", srv.base))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "missing_credentials");
    assert!(headers.contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_logout_the_access_token_is_401() {
    let srv = start().await;
    let pair = tokens(&srv.base, ADA, ADA_PASSWORD).await;
    assert_eq!(get_notes(&srv.base, access(&pair)).await.0, StatusCode::OK);

    let res = client()
        .post(format!("{}/auth/logout", srv.base))
        .bearer_auth(access(&pair))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let (status, headers, body) = get_notes(&srv.base, access(&pair)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "token_revoked");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // The session's refresh token died with it.
    let res = client()
        .post(format!("{}/auth/refresh", srv.base))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_note_is_a_4xx_problem_and_nothing_is_stored() {
    let srv = start().await;
    let bob = tokens(&srv.base, BOB, BOB_PASSWORD).await;
    let post = |content_type: &'static str, body: &'static str| {
        let (url, token) = (format!("{}/notes", srv.base), access(&bob).to_owned());
        async move {
            let res = client()
                .post(url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            parts(res).await
        }
    };
    for (content_type, body, status, code) in [
        (
            "application/json",
            r#"{"body": "   "}"#,
            400,
            "invalid_request",
        ),
        ("application/json", r#"{"body": "#, 400, "invalid_request"),
        (
            "application/json",
            r#"{"text": "no body field"}"#,
            400,
            "invalid_request",
        ),
        ("text/plain", "hello", 415, "unsupported_media_type"),
    ] {
        let (got, headers, problem) = post(content_type, body).await;
        assert_eq!(got.as_u16(), status, "{body}: {problem}");
        assert_eq!(problem["code"], code, "{body}");
        assert_eq!(problem_type(&headers), "application/problem+json");
    }
    let (status, _, list) = get_notes(&srv.base, access(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["notes"], json!([]));
}
