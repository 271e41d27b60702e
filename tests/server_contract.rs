//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//!
//! Every row of the contract's endpoint table and every code of its error table (but 503
//! `auth_unavailable`, which needs a store that goes away) is exercised here, with the
//! statuses, `code`s and headers the contract promises.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, assert_problem};
use portcullis::ids::{AgentId, OrgId, RunId, SessionId, UserId};
use portcullis::token::{
    AccessGrant, AgentGrant, AgentTokens, DEFAULT_MAX_TOKEN_BYTES, KeyRing, SigningKey,
    TokenPolicy, UserTokenTtl, UserTokens,
};
use portcullis::{ManualClock, Secret};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// The password `common::Server::user_token` gives its users.
const USER_PASSWORD: &str = "user password 123";
/// A user-token secret the tests know, so they can mint tokens the server accepts.
const JWT_SECRET: &str = "server-contract-test-secret-0123456789-abcdef";
/// An agent-token secret the tests know.
const AGENT_SECRET: &str = "server-contract-agent-secret-9876543210-zyxwvu";

const NO_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const BAD_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

const ALL_PERMISSIONS: [&str; 13] = [
    "admin:read",
    "admin:write",
    "memory:create",
    "memory:delete",
    "memory:list",
    "memory:read",
    "memory:search",
    "memory:update",
    "session:create",
    "session:delete",
    "session:list",
    "session:read",
    "session:update",
];

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

/// The credential a request presents.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    /// `Authorization: Bearer …`
    Bearer(&'a str),
    /// `X-API-Key: …`
    Key(&'a str),
}

fn request(srv: &Server, method: Method, path: &str, cred: Cred<'_>) -> reqwest::RequestBuilder {
    let rb = srv.client().request(method, srv.url(path));
    match cred {
        Cred::None => rb,
        Cred::Bearer(t) => rb.bearer_auth(t),
        Cred::Key(k) => rb.header("X-API-Key", k),
    }
}

async fn call(
    srv: &Server,
    method: Method,
    path: &str,
    cred: Cred<'_>,
    body: Option<Value>,
) -> Response {
    let mut rb = request(srv, method, path, cred);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

async fn get(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::GET, path, cred, None).await
}

async fn post(srv: &Server, path: &str, cred: Cred<'_>, body: Value) -> Response {
    call(srv, Method::POST, path, cred, Some(body)).await
}

/// A POST without a body.
async fn post_empty(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::POST, path, cred, None).await
}

async fn patch(srv: &Server, path: &str, cred: Cred<'_>, body: Value) -> Response {
    call(srv, Method::PATCH, path, cred, Some(body)).await
}

async fn delete(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::DELETE, path, cred, None).await
}

/// Asserts the status and returns the JSON body (`Null` when empty).
async fn expect(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A 401 with `code` and the exact challenge: with `error="invalid_token"` iff a credential was
/// presented.
async fn assert_401(res: Response, code: &str, presented: bool) -> Value {
    let challenge = header(res.headers(), "www-authenticate");
    let body = assert_problem(res, 401, code).await;
    let want = if presented {
        BAD_CREDENTIAL_CHALLENGE
    } else {
        NO_CREDENTIAL_CHALLENGE
    };
    assert_eq!(
        challenge.as_deref(),
        Some(want),
        "WWW-Authenticate of a 401 {code}; body: {body}"
    );
    body
}

/// A 403 `insufficient_permissions` naming exactly the missing `scope`.
async fn assert_403_scope(res: Response, scope: &str) -> Value {
    let challenge = header(res.headers(), "www-authenticate");
    let body = assert_problem(res, 403, "insufficient_permissions").await;
    assert_eq!(
        challenge.unwrap_or_default(),
        format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
        "WWW-Authenticate of a 403; body: {body}"
    );
    body
}

/// The numeric value of a header.
fn num_header(headers: &HeaderMap, name: &str) -> u64 {
    let v = header(headers, name).unwrap_or_else(|| panic!("{name} missing: {headers:?}"));
    v.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {v:?}"))
}

/// A 429 `rate_limited` with `Retry-After` and `RateLimit-*`; returns the headers.
async fn assert_429(res: Response, limit: u64) -> HeaderMap {
    let headers = res.headers().clone();
    assert_problem(res, 429, "rate_limited").await;
    let retry_after = num_header(&headers, "retry-after");
    assert!(retry_after <= 60, "Retry-After {retry_after}");
    assert_eq!(
        num_header(&headers, "ratelimit-limit"),
        limit,
        "{headers:?}"
    );
    assert_eq!(
        num_header(&headers, "ratelimit-remaining"),
        0,
        "{headers:?}"
    );
    let reset = num_header(&headers, "ratelimit-reset");
    assert!(reset <= 60, "RateLimit-Reset {reset}");
    headers
}

/// Asserts `res` is a 4xx problem+json (any code); returns the status.
async fn assert_4xx_problem(res: Response, what: &str) -> u16 {
    let status = res.status().as_u16();
    let ct = header(res.headers(), "content-type").unwrap_or_default();
    let body = res.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "{what}: status {status}, body: {body}"
    );
    assert!(
        ct.starts_with("application/problem+json"),
        "{what}: content-type {ct}, body: {body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], status, "{what}: {body}");
    assert!(v["code"].is_string(), "{what}: {body}");
    status
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn str_of(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
        .to_owned()
}

/// The `permissions` of a JSON value, asserting it is an array of strings.
fn perms(v: &Value) -> Vec<String> {
    v["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("permissions is not an array in {v}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Every `Set-Cookie` line of a response.
fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The `Set-Cookie` line setting `name`.
fn cookie_line(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name} in {lines:?}"))
        .clone()
}

fn cookie_value(line: &str) -> String {
    let first = line.split(';').next().unwrap();
    first.split_once('=').unwrap().1.trim().to_owned()
}

/// The attributes of a `Set-Cookie` line, lowercased, without spaces around `=`.
fn cookie_attrs(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| {
            let a = a.trim().to_ascii_lowercase();
            match a.split_once('=') {
                Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
                None => a,
            }
        })
        .collect()
}

fn has_attr(line: &str, attr: &str) -> bool {
    cookie_attrs(line).iter().any(|a| a == attr)
}

// --- base64url and JWT pieces ------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn unb64url(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .unwrap_or_else(|| panic!("not base64url: {s}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Part `i` (0 header, 1 claims) of a JWT, decoded.
fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&unb64url(part)).unwrap()
}

fn policy(audience: &str) -> TokenPolicy {
    TokenPolicy {
        issuer: "portcullis".into(),
        audience: audience.into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    }
}

/// User tokens signed with `secret`, on a clock stopped at `at`, living 60 s.
fn user_tokens(secret: &str, at: u64) -> UserTokens {
    UserTokens::new(
        KeyRing::new(SigningKey::hs256(&Secret::from(secret))),
        policy("portcullis-api"),
        UserTokenTtl {
            access_secs: 60,
            refresh_secs: 60,
            remember_me_secs: 60,
        },
    )
    .with_clock(Arc::new(ManualClock::new(at)))
}

/// An access token for the user and session of `claims` (the claims of a real access token),
/// signed with `secret` as of `at`.
fn mint_access(secret: &str, at: u64, claims: &Value) -> String {
    let (user, org, sid) = (
        UserId::from(str_of(claims, "sub")),
        OrgId::from(str_of(claims, "org_id")),
        SessionId::from(str_of(claims, "sid")),
    );
    let email = str_of(claims, "email");
    let role = str_of(claims, "role");
    user_tokens(secret, at)
        .mint_access(AccessGrant {
            user_id: &user,
            email: &email,
            role: &role,
            org_id: &org,
            session_id: &sid,
        })
        .unwrap()
        .token
        .expose()
        .to_owned()
}

// --- domain helpers ----------------------------------------------------------------------------

fn start_with(env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default();
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    Server::start_with(opts)
}

/// `POST /auth/login` → (body, the response's headers).
async fn login_full(srv: &Server, body: Value) -> (Value, HeaderMap) {
    let res = post(srv, "/auth/login", Cred::None, body).await;
    let headers = res.headers().clone();
    (expect(res, 200).await, headers)
}

/// Logs in: (access token, refresh token).
async fn login_pair(srv: &Server, email: &str, password: &str) -> (String, String) {
    let v = srv.login(email, password).await;
    (str_of(&v, "access_token"), str_of(&v, "refresh_token"))
}

/// Creates a user as `admin`; its `POST /users` body.
async fn create_user(srv: &Server, admin: &str, email: &str, role: &str, org: &str) -> Value {
    let res = post(
        srv,
        "/users",
        Cred::Bearer(admin),
        json!({"email": email, "password": USER_PASSWORD, "role": role, "org_id": org}),
    )
    .await;
    expect(res, 201).await
}

/// Creates a user and logs in: (user id, access token).
async fn new_user(
    srv: &Server,
    admin: &str,
    email: &str,
    role: &str,
    org: &str,
) -> (String, String) {
    let u = create_user(srv, admin, email, role, org).await;
    let token = str_of(&srv.login(email, USER_PASSWORD).await, "access_token");
    (str_of(&u, "id"), token)
}

/// `POST /api-keys` as `cred`, expecting 201.
async fn create_key(srv: &Server, cred: Cred<'_>, body: Value) -> Value {
    expect(post(srv, "/api-keys", cred, body).await, 201).await
}

/// A key with `permissions` owned by `token`'s actor: (key id, key).
async fn key_with(srv: &Server, token: &str, permissions: &[&str]) -> (String, String) {
    let k = create_key(
        srv,
        Cred::Bearer(token),
        json!({"name": "test key", "permissions": permissions}),
    )
    .await;
    (str_of(&k, "key_id"), str_of(&k, "api_key"))
}

/// `POST /agents` as `admin`.
async fn create_agent(srv: &Server, admin: &str, org: Option<&str>) -> Value {
    let mut body = json!({"name": "indexer"});
    if let Some(org) = org {
        body["org_id"] = json!(org);
    }
    expect(post(srv, "/agents", Cred::Bearer(admin), body).await, 201).await
}

/// `POST /agents/{id}/runs` as `admin`.
async fn start_run(srv: &Server, admin: &str, agent_id: &str) -> Value {
    expect(
        post(
            srv,
            &format!("/agents/{agent_id}/runs"),
            Cred::Bearer(admin),
            json!({"adapter_type": "claude_local"}),
        )
        .await,
        201,
    )
    .await
}

async fn whoami(srv: &Server, cred: Cred<'_>) -> Value {
    expect(get(srv, "/auth/whoami", cred).await, 200).await
}

async fn create_session(srv: &Server, cred: Cred<'_>, title: &str) -> Value {
    expect(
        post(srv, "/api/v1/sessions", cred, json!({"title": title})).await,
        201,
    )
    .await
}

async fn create_memory(srv: &Server, cred: Cred<'_>, body: Value) -> Value {
    expect(post(srv, "/api/v1/memories", cred, body).await, 201).await
}

/// The ids in a JSON array of objects.
fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|o| str_of(o, field))
        .collect()
}

/// Nothing the server printed contains any of `secrets`.
fn assert_log_free_of(srv: &Server, secrets: &[&str]) {
    let out = srv.output();
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !out.contains(s),
            "the server's output contains a secret ({}…):\n{out}",
            &s[..s.len().min(12)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Public paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn public_paths_answer_without_credentials() {
    let srv = Server::start();
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
    ] {
        let res = get(&srv, path, Cred::None).await;
        assert_eq!(
            res.status(),
            200,
            "GET {path}: {}",
            res.text().await.unwrap()
        );
    }
    let ready = expect(get(&srv, "/readyz", Cred::None).await, 200).await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test]
async fn openapi_json_declares_bearer_and_api_key_security_schemes() {
    let srv = Server::start();
    let doc = expect(get(&srv, "/openapi.json", Cred::None).await, 200).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(
        schemes["bearer"]["scheme"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        "bearer",
        "{schemes}"
    );
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(
        schemes["api_key"]["name"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        "x-api-key",
        "{schemes}"
    );
    assert!(doc["paths"].is_object(), "paths missing");
}

#[tokio::test]
async fn jwks_is_public_and_never_shows_a_shared_secret() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let res = get(&srv, "/.well-known/jwks.json", Cred::None).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let jwks: Value = serde_json::from_str(&body).unwrap();
    assert!(jwks["keys"].is_array(), "{body}");
    assert!(!body.contains(JWT_SECRET), "JWKS shows the HS256 secret");
    assert!(
        !body.contains(&b64url(JWT_SECRET.as_bytes())),
        "JWKS shows the HS256 secret (base64url)"
    );
    for k in jwks["keys"].as_array().unwrap() {
        assert_ne!(k["kty"], "oct", "a symmetric key in the JWKS: {k}");
        assert!(
            k.get("k").is_none() && k.get("d").is_none(),
            "secret material: {k}"
        );
    }
}

#[tokio::test]
async fn unknown_path_needs_credentials_and_then_is_404() {
    let srv = Server::start();
    assert_401(
        get(&srv, "/no/such/path", Cred::None).await,
        "missing_credentials",
        false,
    )
    .await;
    let admin = srv.admin_token().await;
    assert_problem(
        get(&srv, "/no/such/path", Cred::Bearer(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn protected_routes_without_credentials_are_missing_credentials() {
    let srv = Server::start();
    for (method, path) in [
        (Method::GET, "/auth/whoami"),
        (Method::POST, "/auth/logout"),
        (Method::POST, "/auth/password"),
        (Method::POST, "/users"),
        (Method::GET, "/api-keys"),
        (Method::POST, "/api-keys"),
        (Method::POST, "/agents"),
        (Method::GET, "/api/v1/sessions"),
        (Method::GET, "/api/v1/memories"),
        (Method::GET, "/api/v1/memories/search?q=x"),
        (Method::GET, "/admin/stats"),
    ] {
        let res = call(&srv, method.clone(), path, Cred::None, None).await;
        let challenge = header(res.headers(), "www-authenticate");
        let body = assert_problem(res, 401, "missing_credentials").await;
        assert_eq!(
            challenge.as_deref(),
            Some(NO_CREDENTIAL_CHALLENGE),
            "{method} {path}: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_returns_a_bearer_pair_and_sets_cookies() {
    let srv = Server::start();
    let (body, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 15 * 60, "{body}");
    assert_eq!(body["refresh_expires_in"], 7 * 24 * 3600, "{body}");
    let access = str_of(&body, "access_token");
    let refresh = str_of(&body, "refresh_token");

    let h = jwt_part(&access, 0);
    assert!(h["kid"].is_string(), "access header lacks kid: {h}");
    assert_eq!(h["alg"], "HS256", "{h}");
    assert_eq!(h["typ"], "at+jwt", "{h}");
    let c = jwt_part(&access, 1);
    assert_eq!(c["type"], "access", "{c}");
    assert_eq!(c["email"], ADMIN_EMAIL, "{c}");
    assert_eq!(c["role"], "superadmin", "{c}");
    assert_eq!(c["org_id"], "default", "{c}");
    assert_eq!(c["iss"], "portcullis", "{c}");
    assert_eq!(c["aud"], "portcullis-api", "{c}");
    for claim in ["sub", "sid", "jti"] {
        assert!(c[claim].is_string(), "access lacks {claim}: {c}");
    }
    let exp = c["exp"].as_u64().unwrap();
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 15 * 60, "{c}");

    let r = jwt_part(&refresh, 1);
    assert_eq!(r["type"], "refresh", "{r}");
    assert_eq!(r["sid"], c["sid"], "{r}");
    assert_eq!(r["sub"], c["sub"], "{r}");
    assert_eq!(r["rmb"], false, "{r}");
    assert_eq!(r["aud"], "portcullis-api:refresh", "{r}");
    assert_ne!(r["jti"], c["jti"]);

    let cookies = set_cookies(&headers);
    let a = cookie_line(&cookies, "portcullis_access");
    assert_eq!(
        cookie_value(&a),
        access,
        "the access cookie holds the access token"
    );
    assert!(has_attr(&a, "httponly"), "{a}");
    assert!(has_attr(&a, "samesite=lax"), "{a}");
    assert!(has_attr(&a, "path=/"), "{a}");
    assert!(!has_attr(&a, "secure"), "Secure in development: {a}");
    let rf = cookie_line(&cookies, "portcullis_refresh");
    assert_eq!(
        cookie_value(&rf),
        refresh,
        "the refresh cookie holds the refresh token"
    );
    assert!(has_attr(&rf, "httponly"), "{rf}");
    assert!(has_attr(&rf, "samesite=strict"), "{rf}");
    assert!(has_attr(&rf, "path=/auth"), "{rf}");
    assert!(!has_attr(&rf, "secure"), "Secure in development: {rf}");
    let cs = cookie_line(&cookies, "portcullis_csrf");
    assert!(!cookie_value(&cs).is_empty(), "{cs}");
    assert!(
        !has_attr(&cs, "httponly"),
        "the CSRF cookie must be readable by JS: {cs}"
    );
    assert!(has_attr(&cs, "samesite=lax"), "{cs}");
    assert!(has_attr(&cs, "path=/"), "{cs}");

    // The pair works.
    let me = whoami(&srv, Cred::Bearer(&access)).await;
    assert_eq!(me["kind"], "user");
    assert_log_free_of(&srv, &[&access, &refresh, ADMIN_PASSWORD]);
}

#[tokio::test]
async fn login_with_remember_me_gets_the_longer_refresh_lifetime() {
    let srv = Server::start();
    let (body, _) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember_me": true}),
    )
    .await;
    assert_eq!(body["refresh_expires_in"], 30 * 24 * 3600, "{body}");
    let r = jwt_part(&str_of(&body, "refresh_token"), 1);
    assert_eq!(r["rmb"], true, "{r}");
    let lifetime = r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 30 * 24 * 3600, "{r}");
}

#[tokio::test]
async fn login_cookies_are_secure_when_cookie_secure_is_set() {
    let srv = start_with(&[("AUTH_COOKIE_SECURE", "true")]);
    let (_, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    for name in ["portcullis_access", "portcullis_refresh", "portcullis_csrf"] {
        let line = cookie_line(&cookies, name);
        assert!(has_attr(&line, "secure"), "{name} lacks Secure: {line}");
    }
    assert!(has_attr(
        &cookie_line(&cookies, "portcullis_access"),
        "httponly"
    ));
    assert!(has_attr(
        &cookie_line(&cookies, "portcullis_refresh"),
        "httponly"
    ));
}

#[tokio::test]
async fn login_unknown_email_and_wrong_password_get_the_same_refusal() {
    let srv = Server::start();
    let mut seen = Vec::new();
    for (email, password) in [
        ("nobody@example.com", ADMIN_PASSWORD),
        (ADMIN_EMAIL, "not the admin password"),
    ] {
        let res = post(
            &srv,
            "/auth/login",
            Cred::None,
            json!({"email": email, "password": password}),
        )
        .await;
        let challenge = header(res.headers(), "www-authenticate").unwrap_or_default();
        assert!(
            challenge == NO_CREDENTIAL_CHALLENGE || challenge == BAD_CREDENTIAL_CHALLENGE,
            "WWW-Authenticate of a failed login: {challenge:?}"
        );
        assert!(
            set_cookies(res.headers()).is_empty(),
            "a failed login sets cookies"
        );
        let body = assert_problem(res, 401, "invalid_credentials").await;
        let text = body.to_string();
        assert!(
            !text.contains(password),
            "the body shows the password: {text}"
        );
        seen.push((challenge, body));
    }
    assert_eq!(
        seen[0], seen[1],
        "unknown email and wrong password must be indistinguishable"
    );
    assert_log_free_of(&srv, &["not the admin password", ADMIN_PASSWORD]);
}

#[tokio::test]
async fn login_is_rate_limited_after_ten_failures_for_one_email() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "bob@example.com", "user", "default").await;
    let wrong = json!({"email": "bob@example.com", "password": "wrong password!"});
    for i in 0..10 {
        let res = post(&srv, "/auth/login", Cred::None, wrong.clone()).await;
        assert_eq!(res.status(), 401, "failure {} of 10", i + 1);
        assert_problem(res, 401, "invalid_credentials").await;
    }
    assert_429(
        post(&srv, "/auth/login", Cred::None, wrong.clone()).await,
        10,
    )
    .await;
    // Locked out for now even with the right password…
    let right = json!({"email": "bob@example.com", "password": USER_PASSWORD});
    assert_429(post(&srv, "/auth/login", Cred::None, right).await, 10).await;
    // …while another email is not affected.
    srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

async fn refresh(srv: &Server, token: &str) -> Response {
    post(
        srv,
        "/auth/refresh",
        Cred::None,
        json!({"refresh_token": token}),
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let srv = Server::start();
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let sid = jwt_part(&a0, 1)["sid"].clone();
    let body = expect(refresh(&srv, &r0).await, 200).await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    assert!(body["refresh_expires_in"].as_u64().unwrap() > 0, "{body}");
    let a1 = str_of(&body, "access_token");
    let r1 = str_of(&body, "refresh_token");
    assert_ne!(r1, r0, "the refresh token must rotate");
    assert_ne!(a1, a0);
    assert!(
        !body.to_string().contains(&r0),
        "the response shows the presented token"
    );
    let c1 = jwt_part(&a1, 1);
    assert_eq!(c1["sid"], sid, "rotation keeps the session");
    assert_eq!(jwt_part(&r1, 1)["type"], "refresh");
    let me = whoami(&srv, Cred::Bearer(&a1)).await;
    assert_eq!(me["session_id"], sid, "{me}");
    // The new refresh token rotates in turn.
    let body2 = expect(refresh(&srv, &r1).await, 200).await;
    assert_ne!(str_of(&body2, "refresh_token"), r1);
}

#[tokio::test]
async fn refresh_retry_within_the_grace_keeps_the_session() {
    // Default grace: 10 s.
    let srv = Server::start();
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = expect(refresh(&srv, &r0).await, 200).await;
    // The client did not get the answer and retries at once with the old token.
    let retry = expect(refresh(&srv, &r0).await, 200).await;
    let a_retry = str_of(&retry, "access_token");
    assert_eq!(
        jwt_part(&a_retry, 1)["sid"],
        jwt_part(&a0, 1)["sid"],
        "the retry answers for the same session"
    );
    // Nothing was revoked: both answers' access tokens work, and the session refreshes on.
    whoami(&srv, Cred::Bearer(&str_of(&first, "access_token"))).await;
    whoami(&srv, Cred::Bearer(&a_retry)).await;
    expect(refresh(&srv, &str_of(&retry, "refresh_token")).await, 200).await;
}

#[tokio::test]
async fn refresh_reuse_after_grace_revokes_the_session() {
    let srv = start_with(&[("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0")]);
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rotated = expect(refresh(&srv, &r0).await, 200).await;
    let a1 = str_of(&rotated, "access_token");
    let r1 = str_of(&rotated, "refresh_token");
    whoami(&srv, Cred::Bearer(&a1)).await;
    // Past a zero grace, whatever the clock's granularity.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = refresh(&srv, &r0).await;
    let body = assert_401(replay, "token_revoked", true).await;
    assert!(!body.to_string().contains(&r0));
    // The whole session is dead at once: its access tokens and its current refresh token.
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&a1)).await,
        "token_revoked",
        true,
    )
    .await;
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&a0)).await,
        "token_revoked",
        true,
    )
    .await;
    assert_401(refresh(&srv, &r1).await, "token_revoked", true).await;
    // Another session of the same user is untouched.
    srv.admin_token().await;
}

#[tokio::test]
async fn refresh_with_an_access_token_is_wrong_token_type() {
    let srv = Server::start();
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = assert_401(refresh(&srv, &access).await, "wrong_token_type", true).await;
    assert!(!body.to_string().contains(&access));
}

#[tokio::test]
async fn refresh_with_garbage_is_invalid_token() {
    let srv = Server::start();
    assert_401(refresh(&srv, "not.a.token").await, "invalid_token", true).await;
    assert_401(refresh(&srv, "garbage").await, "invalid_token", true).await;
}

#[tokio::test]
async fn refresh_without_a_token_is_a_4xx_problem() {
    let srv = Server::start();
    let res = post(&srv, "/auth/refresh", Cred::None, json!({})).await;
    let status = assert_4xx_problem(res, "refresh with {}").await;
    assert!(status == 400 || status == 401, "{status}");
}

#[tokio::test]
async fn refresh_through_the_cookie_sets_new_cookies() {
    let srv = Server::start();
    let (body, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    let r0 = cookie_value(&cookie_line(&cookies, "portcullis_refresh"));
    let csrf = cookie_value(&cookie_line(&cookies, "portcullis_csrf"));
    assert_eq!(r0, str_of(&body, "refresh_token"));
    // What a browser sends: the cookies (and the CSRF header, which a page can read), no body.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header(
            "Cookie",
            format!("portcullis_refresh={r0}; portcullis_csrf={csrf}"),
        )
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    let new_cookies = set_cookies(res.headers());
    let pair = expect(res, 200).await;
    let r1 = str_of(&pair, "refresh_token");
    assert_ne!(r1, r0);
    let a = cookie_line(&new_cookies, "portcullis_access");
    assert_eq!(cookie_value(&a), str_of(&pair, "access_token"));
    assert!(has_attr(&a, "httponly"), "{a}");
    let rf = cookie_line(&new_cookies, "portcullis_refresh");
    assert_eq!(cookie_value(&rf), r1);
    assert!(has_attr(&rf, "httponly"), "{rf}");
    assert!(has_attr(&rf, "samesite=strict"), "{rf}");
}

#[tokio::test]
async fn refresh_with_an_expired_refresh_token_is_token_expired() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let c = jwt_part(&access, 1);
    let (user, sid) = (
        UserId::from(str_of(&c, "sub")),
        SessionId::from(str_of(&c, "sid")),
    );
    let expired = user_tokens(JWT_SECRET, now() - 7200)
        .mint_refresh(&user, &sid, false)
        .unwrap();
    let token = expired.token.expose().to_owned();
    let body = assert_401(refresh(&srv, &token).await, "token_expired", true).await;
    assert!(!body.to_string().contains(&token));
}

// ---------------------------------------------------------------------------------------------
// Logout and password
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_kills_access_and_refresh_tokens_at_once() {
    let srv = Server::start();
    let (access, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (other_access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    whoami(&srv, Cred::Bearer(&access)).await;
    let res = post_empty(&srv, "/auth/logout", Cred::Bearer(&access)).await;
    let cookies = set_cookies(res.headers());
    expect(res, 204).await;
    for name in ["portcullis_access", "portcullis_refresh", "portcullis_csrf"] {
        let line = cookie_line(&cookies, name);
        assert!(
            has_attr(&line, "max-age=0"),
            "logout must clear {name}: {line}"
        );
    }
    let body = assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&access)).await,
        "token_revoked",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&access));
    assert_401(refresh(&srv, &refresh_token).await, "token_revoked", true).await;
    // Only that session: the user's other session lives on.
    whoami(&srv, Cred::Bearer(&other_access)).await;
}

#[tokio::test]
async fn logout_is_for_users_only() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:read"]).await;
    assert_problem(
        post_empty(&srv, "/auth/logout", Cred::Key(&key)).await,
        403,
        "wrong_actor_kind",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/auth/password",
            Cred::Key(&key),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1"}),
        )
        .await,
        403,
        "wrong_actor_kind",
    )
    .await;
    assert_401(
        post_empty(&srv, "/auth/logout", Cred::None).await,
        "missing_credentials",
        false,
    )
    .await;
}

#[tokio::test]
async fn password_change_revokes_every_session() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "carol@example.com", "user", "default").await;
    let (a1, r1) = login_pair(&srv, "carol@example.com", USER_PASSWORD).await;
    let (a2, r2) = login_pair(&srv, "carol@example.com", USER_PASSWORD).await;
    let new_password = "a brand new password";
    let res = post(
        &srv,
        "/auth/password",
        Cred::Bearer(&a1),
        json!({"current_password": USER_PASSWORD, "new_password": new_password}),
    )
    .await;
    expect(res, 204).await;
    for a in [&a1, &a2] {
        assert_401(
            get(&srv, "/auth/whoami", Cred::Bearer(a)).await,
            "token_revoked",
            true,
        )
        .await;
    }
    for r in [&r1, &r2] {
        assert_401(refresh(&srv, r).await, "token_revoked", true).await;
    }
    assert_problem(
        post(
            &srv,
            "/auth/login",
            Cred::None,
            json!({"email": "carol@example.com", "password": USER_PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    srv.login("carol@example.com", new_password).await;
    // The admin's session is not the user's.
    whoami(&srv, Cred::Bearer(&admin)).await;
    assert_log_free_of(&srv, &[new_password, USER_PASSWORD]);
}

#[tokio::test]
async fn password_change_with_a_wrong_current_password_is_invalid_credentials() {
    let srv = Server::start();
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = post(
        &srv,
        "/auth/password",
        Cred::Bearer(&access),
        json!({"current_password": "not my password", "new_password": "a new password 1"}),
    )
    .await;
    let challenge = header(res.headers(), "www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(NO_CREDENTIAL_CHALLENGE),
        "WWW-Authenticate: {challenge:?}"
    );
    let body = assert_problem(res, 401, "invalid_credentials").await;
    assert!(!body.to_string().contains("not my password"));
    // Nothing changed: the session lives and the old password still logs in.
    whoami(&srv, Cred::Bearer(&access)).await;
    srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn password_change_to_a_short_password_is_invalid_request() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    assert_problem(
        post(
            &srv,
            "/auth/password",
            Cred::Bearer(&access),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "short"}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    whoami(&srv, Cred::Bearer(&access)).await;
}

// ---------------------------------------------------------------------------------------------
// whoami: one actor per request
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn whoami_describes_a_user_from_a_jwt() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    let c = jwt_part(&access, 1);
    let me = whoami(&srv, Cred::Bearer(&access)).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], c["sub"], "{me}");
    assert_eq!(me["org_id"], "default", "{me}");
    assert_eq!(me["auth_method"], "jwt", "{me}");
    assert_eq!(me["session_id"], c["sid"], "{me}");
    assert_eq!(perms(&me), sorted(&ALL_PERMISSIONS), "{me}");
}

#[tokio::test]
async fn whoami_lists_a_viewers_permissions_sorted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (id, viewer) = new_user(&srv, &admin, "vic@example.com", "viewer", "acme").await;
    let me = whoami(&srv, Cred::Bearer(&viewer)).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], id.as_str(), "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(
        perms(&me),
        sorted(&[
            "session:read",
            "session:list",
            "memory:read",
            "memory:list",
            "memory:search"
        ]),
        "{me}"
    );
    let (_, user) = new_user(&srv, &admin, "uma@example.com", "user", "acme").await;
    let me = whoami(&srv, Cred::Bearer(&user)).await;
    let want: Vec<&str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| !p.starts_with("admin:"))
        .collect();
    assert_eq!(perms(&me), sorted(&want), "{me}");
}

#[tokio::test]
async fn whoami_describes_an_api_key() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "ci", "permissions": ["session:read", "memory:create", "admin:read"]}),
    )
    .await;
    let key = str_of(&created, "api_key");
    for cred in [Cred::Key(&key), Cred::Bearer(&key)] {
        let me = whoami(&srv, cred).await;
        assert_eq!(me["kind"], "api_key", "{me}");
        assert_eq!(me["id"], created["key_id"], "{me}");
        assert_eq!(me["org_id"], "default", "{me}");
        assert_eq!(me["auth_method"], "api_key", "{me}");
        assert_eq!(
            perms(&me),
            sorted(&["admin:read", "memory:create", "session:read"]),
            "{me}"
        );
        assert!(!me.to_string().contains(&key), "whoami shows the key");
    }
}

#[tokio::test]
async fn whoami_describes_an_agent_run_token() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let (_, admin) = new_user(&srv, &root, "root@acme.example", "admin", "acme").await;
    let agent = create_agent(&srv, &admin, None).await;
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    let token = str_of(&run, "token");
    let me = whoami(&srv, Cred::Bearer(&token)).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(me["auth_method"], "jwt", "{me}");
    assert_eq!(me["run_id"], run["run_id"], "{me}");
    let want: Vec<&str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| !p.starts_with("admin:"))
        .collect();
    assert_eq!(perms(&me), sorted(&want), "{me}");
}

#[tokio::test]
async fn whoami_describes_an_agent_owned_api_key_as_the_agent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, None).await;
    let agent_id = str_of(&agent, "agent_id");
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "agent key", "permissions": ["session:read", "session:list"], "agent_id": agent_id}),
    )
    .await;
    let me = whoami(&srv, Cred::Key(&str_of(&created, "api_key"))).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["org_id"], "default", "{me}");
    assert_eq!(me["auth_method"], "api_key", "{me}");
    let p = perms(&me);
    let mut s = p.clone();
    s.sort();
    assert_eq!(p, s, "permissions must be sorted: {me}");
}

#[tokio::test]
async fn whoami_describes_the_board_under_board_fallback() {
    let srv = start_with(&[("AUTH_FALLBACK", "board")]);
    let me = whoami(&srv, Cred::None).await;
    assert_eq!(me["kind"], "board", "{me}");
    assert_eq!(me["auth_method"], "fallback", "{me}");
    assert_eq!(perms(&me), sorted(&ALL_PERMISSIONS), "{me}");
    // The board works everywhere without credentials…
    expect(get(&srv, "/admin/stats", Cred::None).await, 200).await;
    let s = create_session(&srv, Cred::None, "board's").await;
    assert_eq!(s["org_id"], "default", "{s}");
    // …but a presented bad credential is a 401, never the board.
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer("garbage")).await,
        "invalid_token",
        true,
    )
    .await;
    assert_401(
        get(&srv, "/auth/whoami", Cred::Key("ck_garbage")).await,
        "invalid_api_key",
        true,
    )
    .await;
    // And a real credential is its own actor.
    let admin = srv.admin_token().await;
    assert_eq!(whoami(&srv, Cred::Bearer(&admin)).await["kind"], "user");
    // The board reads every org.
    let (_, acme) = new_user(&srv, &admin, "pat@example.com", "user", "acme").await;
    let theirs = create_session(&srv, Cred::Bearer(&acme), "acme's").await;
    let path = format!("/api/v1/sessions/{}", str_of(&theirs, "id"));
    assert_eq!(
        expect(get(&srv, &path, Cred::None).await, 200).await["title"],
        "acme's"
    );
}

#[tokio::test]
async fn whoami_without_credentials_is_missing_credentials() {
    let srv = Server::start();
    assert_401(
        get(&srv, "/auth/whoami", Cred::None).await,
        "missing_credentials",
        false,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Token errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_bearer_is_invalid_token() {
    let srv = Server::start();
    for bad in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "x.y"] {
        let body = assert_401(
            get(&srv, "/auth/whoami", Cred::Bearer(bad)).await,
            "invalid_token",
            true,
        )
        .await;
        assert!(!body["detail"].as_str().unwrap().contains(bad), "{body}");
    }
}

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    let claims = jwt_part(&access, 1);
    let payload = b64url(claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_401(
                get(&srv, "/auth/whoami", Cred::Bearer(&forged)).await,
                "invalid_token",
                true,
            )
            .await;
        }
    }
    // With the real key id too.
    let kid = jwt_part(&access, 0)["kid"].clone();
    let header = b64url(json!({"alg": "none", "kid": kid}).to_string().as_bytes());
    let forged = format!("{header}.{payload}.");
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&forged)).await,
        "invalid_token",
        true,
    )
    .await;
}

#[tokio::test]
async fn tokens_with_another_algorithm_a_crit_header_or_a_foreign_key_are_invalid_token() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let access = srv.admin_token().await;
    let parts: Vec<&str> = access.split('.').collect();
    let kid = jwt_part(&access, 0)["kid"].clone();
    for header in [
        json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
        json!({"alg": "HS512", "kid": kid, "typ": "JWT"}),
        json!({"alg": "HS256", "kid": kid, "typ": "JWT", "crit": ["exp"]}),
    ] {
        let forged = format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert_401(
            get(&srv, "/auth/whoami", Cred::Bearer(&forged)).await,
            "invalid_token",
            true,
        )
        .await;
    }
    // A well-formed token for a live session, signed with another secret.
    let claims = jwt_part(&access, 1);
    let foreign = mint_access("some-other-secret-that-is-long-enough-000", now(), &claims);
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&foreign)).await,
        "invalid_token",
        true,
    )
    .await;
    // A tampered payload under the real signature.
    let mut tampered_claims = claims.clone();
    tampered_claims["role"] = json!("admin");
    tampered_claims["org_id"] = json!("other");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(tampered_claims.to_string().as_bytes()),
        parts[2]
    );
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&tampered)).await,
        "invalid_token",
        true,
    )
    .await;
}

#[tokio::test]
async fn expired_access_token_is_token_expired() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let access = srv.admin_token().await;
    let claims = jwt_part(&access, 1);
    // Control: a fresh token minted here for the same live session is accepted, so the server
    // does use the known secret…
    let fresh = mint_access(JWT_SECRET, now(), &claims);
    assert_eq!(whoami(&srv, Cred::Bearer(&fresh)).await["kind"], "user");
    // …and the same token, expired an hour ago (far beyond the 30 s leeway), is refused.
    let expired = mint_access(JWT_SECRET, now() - 3600, &claims);
    let body = assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&expired)).await,
        "token_expired",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&expired));
    // Through the cookie too.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("Cookie", format!("portcullis_access={expired}"))
        .send()
        .await
        .unwrap();
    assert_401(res, "token_expired", true).await;
}

#[tokio::test]
async fn refresh_token_as_bearer_is_wrong_token_type() {
    let srv = Server::start();
    let (_, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&refresh_token)).await,
        "wrong_token_type",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&refresh_token));
}

#[tokio::test]
async fn an_agent_token_minted_elsewhere_with_the_shared_secret_is_accepted() {
    let srv = start_with(&[("AUTH_AGENT_JWT_SECRET", AGENT_SECRET)]);
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, Some("acme")).await;
    let agent_id = AgentId::from(str_of(&agent, "agent_id"));
    let tokens = AgentTokens::new(
        KeyRing::new(SigningKey::hs256(&Secret::from(AGENT_SECRET))),
        policy("portcullis-agents"),
        3600,
    );
    let run = RunId::from("run-from-another-orchestrator");
    let mint = |company: &str| {
        tokens
            .mint(AgentGrant {
                agent_id: &agent_id,
                company_id: &OrgId::from(company),
                adapter_type: "process",
                run_id: &run,
            })
            .unwrap()
            .token
            .expose()
            .to_owned()
    };
    let me = whoami(&srv, Cred::Bearer(&mint("acme"))).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["run_id"], "run-from-another-orchestrator", "{me}");
    // A company that is not the agent's organisation is refused.
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&mint("other-org"))).await,
        "invalid_token",
        true,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_creates_a_user_who_can_log_in() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let u = create_user(&srv, &admin, "dave@example.com", "user", "acme").await;
    assert!(u["id"].is_string(), "{u}");
    assert_eq!(u["email"], "dave@example.com", "{u}");
    assert_eq!(u["role"], "user", "{u}");
    assert_eq!(u["org_id"], "acme", "{u}");
    assert!(u.get("password").is_none(), "{u}");
    assert!(!u.to_string().contains(USER_PASSWORD), "{u}");
    let token = str_of(
        &srv.login("dave@example.com", USER_PASSWORD).await,
        "access_token",
    );
    assert_eq!(whoami(&srv, Cred::Bearer(&token)).await["id"], u["id"]);
    // org_id defaults to the caller's.
    let res = post(
        &srv,
        "/users",
        Cred::Bearer(&admin),
        json!({"email": "erin@example.com", "password": USER_PASSWORD, "role": "viewer"}),
    )
    .await;
    let e = expect(res, 201).await;
    assert_eq!(e["org_id"], "default", "{e}");
    assert_eq!(e["role"], "viewer", "{e}");
}

#[tokio::test]
async fn creating_a_user_with_a_taken_email_is_409_conflict() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "frank@example.com", "user", "default").await;
    for email in ["frank@example.com", ADMIN_EMAIL] {
        assert_problem(
            post(
                &srv,
                "/users",
                Cred::Bearer(&admin),
                json!({"email": email, "password": USER_PASSWORD, "role": "user"}),
            )
            .await,
            409,
            "conflict",
        )
        .await;
    }
}

#[tokio::test]
async fn creating_a_user_with_an_unknown_role_or_short_password_is_invalid_request() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for body in [
        json!({"email": "g@example.com", "password": USER_PASSWORD, "role": "emperor"}),
        json!({"email": "g@example.com", "password": "short", "role": "user"}),
        json!({"email": "g@example.com", "role": "user"}),
    ] {
        assert_problem(
            post(&srv, "/users", Cred::Bearer(&admin), body).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn non_admin_cannot_create_users() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "hank@example.com", "user", "default").await;
    let body = json!({"email": "x@example.com", "password": USER_PASSWORD, "role": "admin"});
    assert_403_scope(
        post(&srv, "/users", Cred::Bearer(&user), body.clone()).await,
        "admin:write",
    )
    .await;
    // An API key without admin:write neither.
    let (_, key) = key_with(&srv, &admin, &["admin:read"]).await;
    assert_403_scope(
        post(&srv, "/users", Cred::Key(&key), body).await,
        "admin:write",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_key_is_shown_once_and_never_listed() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let before = now();
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "deploy", "permissions": ["session:list", "session:read"]}),
    )
    .await;
    let key = str_of(&created, "api_key");
    let key_id = str_of(&created, "key_id");
    assert!(key.starts_with("ck_"), "{key}");
    let prefix = str_of(&created, "prefix");
    assert!(key.starts_with(&prefix), "prefix {prefix} of {key}");
    assert!(prefix.len() < key.len());
    assert_eq!(
        perms(&created),
        sorted(&["session:list", "session:read"]),
        "{created}"
    );
    assert!(created["expires_at"].is_null(), "{created}");
    // The key works.
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;

    let res = get(&srv, "/api-keys", Cred::Bearer(&admin)).await;
    let text = res.text().await.unwrap();
    assert!(!text.contains(&key), "the list shows the key: {text}");
    assert!(
        !text.contains(&key[prefix.len()..]),
        "the list shows the key's secret: {text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {text}"));
    assert_eq!(items.len(), 1, "{text}");
    let item = &items[0];
    assert_eq!(item["key_id"], key_id.as_str(), "{item}");
    assert_eq!(item["name"], "deploy", "{item}");
    assert_eq!(item["prefix"], prefix.as_str(), "{item}");
    assert_eq!(item["enabled"], true, "{item}");
    assert!(item["expires_at"].is_null(), "{item}");
    assert!(item["agent_id"].is_null(), "{item}");
    assert!(item["rate_limit_per_minute"].is_null(), "{item}");
    let created_at = item["created_at"].as_u64().unwrap();
    assert!(
        created_at + 5 >= before && created_at <= now() + 5,
        "{item}"
    );
    assert!(
        item["last_used_at"].is_null() || item["last_used_at"].is_u64(),
        "{item}"
    );
    assert_eq!(perms(item), sorted(&["session:list", "session:read"]));
    for field in item.as_object().unwrap().keys() {
        assert!(
            !field.contains("hash") && field != "api_key" && field != "key" && field != "secret",
            "the list has a field {field}: {item}"
        );
    }
    assert_log_free_of(&srv, &[&key]);
}

#[tokio::test]
async fn api_key_listing_shows_only_the_callers_keys() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (admin_key_id, _) = key_with(&srv, &admin, &["session:read"]).await;
    let (_, user) = new_user(&srv, &admin, "ida@example.com", "user", "default").await;
    let (user_key_id, _) = key_with(&srv, &user, &["memory:read"]).await;
    let mine = expect(get(&srv, "/api-keys", Cred::Bearer(&user)).await, 200).await;
    assert_eq!(ids(&mine, "key_id"), vec![user_key_id.clone()], "{mine}");
    let theirs = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(
        ids(&theirs, "key_id"),
        vec![admin_key_id.clone()],
        "{theirs}"
    );
    // Another owner's key: 404, and it stays as it was.
    assert_problem(
        patch(
            &srv,
            &format!("/api-keys/{admin_key_id}"),
            Cred::Bearer(&user),
            json!({"enabled": false}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        delete(
            &srv,
            &format!("/api-keys/{admin_key_id}"),
            Cred::Bearer(&user),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let theirs = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(theirs[0]["enabled"], true, "{theirs}");
}

#[tokio::test]
async fn api_key_asking_for_more_than_the_caller_holds_is_forbidden() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, viewer) = new_user(&srv, &admin, "jan@example.com", "viewer", "default").await;
    // A subset is fine.
    create_key(
        &srv,
        Cred::Bearer(&viewer),
        json!({"name": "ro", "permissions": ["memory:read", "session:list"]}),
    )
    .await;
    assert_403_scope(
        post(
            &srv,
            "/api-keys",
            Cred::Bearer(&viewer),
            json!({"name": "rw", "permissions": ["memory:read", "session:create"]}),
        )
        .await,
        "session:create",
    )
    .await;
    // A key creating a key: the same rule against the key's own permissions.
    let (_, key) = key_with(&srv, &admin, &["memory:read"]).await;
    create_key(
        &srv,
        Cred::Key(&key),
        json!({"name": "child", "permissions": ["memory:read"]}),
    )
    .await;
    assert_403_scope(
        post(
            &srv,
            "/api-keys",
            Cred::Key(&key),
            json!({"name": "child", "permissions": ["memory:read", "memory:create"]}),
        )
        .await,
        "memory:create",
    )
    .await;
    // An unknown permission is malformed input.
    assert_problem(
        post(
            &srv,
            "/api-keys",
            Cred::Bearer(&admin),
            json!({"name": "x", "permissions": ["memory:fly"]}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn api_key_permissions_are_enforced_with_the_missing_scope() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["memory:read"]).await;
    assert_403_scope(
        post(
            &srv,
            "/api/v1/sessions",
            Cred::Key(&key),
            json!({"title": "t"}),
        )
        .await,
        "session:create",
    )
    .await;
    assert_403_scope(
        get(&srv, "/admin/stats", Cred::Key(&key)).await,
        "admin:read",
    )
    .await;
    assert_403_scope(
        get(&srv, "/api/v1/memories", Cred::Key(&key)).await,
        "memory:list",
    )
    .await;
}

#[tokio::test]
async fn disabled_api_key_is_api_key_disabled_until_enabled_again() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (key_id, key) = key_with(&srv, &admin, &["session:list"]).await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    let off = expect(
        patch(
            &srv,
            &format!("/api-keys/{key_id}"),
            Cred::Bearer(&admin),
            json!({"enabled": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(off["enabled"], false, "{off}");
    assert_eq!(off["key_id"], key_id.as_str(), "{off}");
    assert!(!off.to_string().contains(&key), "{off}");
    let body = assert_401(
        get(&srv, "/api/v1/sessions", Cred::Key(&key)).await,
        "api_key_disabled",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&key));
    assert_401(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&key)).await,
        "api_key_disabled",
        true,
    )
    .await;
    let on = expect(
        patch(
            &srv,
            &format!("/api-keys/{key_id}"),
            Cred::Bearer(&admin),
            json!({"enabled": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(on["enabled"], true, "{on}");
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
}

#[tokio::test]
async fn deleted_api_key_is_invalid_api_key_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (key_id, key) = key_with(&srv, &admin, &["session:list"]).await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    expect(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&admin)).await,
        204,
    )
    .await;
    let body = assert_401(
        get(&srv, "/api/v1/sessions", Cred::Key(&key)).await,
        "invalid_api_key",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&key));
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert!(ids(&list, "key_id").is_empty(), "{list}");
    assert_problem(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn malformed_or_unknown_api_keys_are_invalid_api_key() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:list"]).await;
    // One character changed: a checksum failure or an unknown key.
    let last = key.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &key[..key.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    for bad in [
        "ck_garbage",
        "ck_",
        flipped.as_str(),
        "ck_0000000000000000000000000000000000000000",
    ] {
        let body = assert_401(
            get(&srv, "/api/v1/sessions", Cred::Key(bad)).await,
            "invalid_api_key",
            true,
        )
        .await;
        if bad.len() > 5 {
            assert!(!body.to_string().contains(bad), "{body}");
        }
        assert_401(
            get(&srv, "/api/v1/sessions", Cred::Bearer(bad)).await,
            "invalid_api_key",
            true,
        )
        .await;
    }
}

#[tokio::test]
async fn expired_api_key_is_api_key_expired() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let before = now();
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "short-lived", "permissions": ["session:list"], "expires_in_seconds": 1}),
    )
    .await;
    let expires_at = created["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > before && expires_at <= now() + 2,
        "expires_at {expires_at}"
    );
    let key = str_of(&created, "api_key");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_401(
        get(&srv, "/api/v1/sessions", Cred::Key(&key)).await,
        "api_key_expired",
        true,
    )
    .await;
}

#[tokio::test]
async fn api_key_over_its_rate_limit_is_429_with_headers() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "slow", "permissions": ["session:list"], "rate_limit_per_minute": 2}),
    )
    .await;
    let key = str_of(&created, "api_key");
    for _ in 0..2 {
        expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    }
    assert_429(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 2).await;
    // The limit is the key's: the admin's own requests go on.
    expect(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&admin)).await,
        200,
    )
    .await;
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(list[0]["rate_limit_per_minute"], 2, "{list}");
}

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn agent_run_token_works_for_sessions_in_its_org() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    // An admin of acme; its agent is in acme by default.
    let (_, admin) = new_user(&srv, &root, "root@acme.example", "admin", "acme").await;
    let agent = create_agent(&srv, &admin, None).await;
    assert_eq!(agent["status"], "active", "{agent}");
    assert_eq!(agent["org_id"], "acme", "{agent}");
    assert_eq!(agent["name"], "indexer", "{agent}");
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    assert_eq!(run["expires_in"], 172_800, "{run}");
    let token = str_of(&run, "token");
    let c = jwt_part(&token, 1);
    assert_eq!(c["sub"], agent_id.as_str(), "{c}");
    assert_eq!(c["company_id"], "acme", "{c}");
    assert_eq!(c["adapter_type"], "claude_local", "{c}");
    assert_eq!(c["run_id"], run["run_id"], "{c}");
    assert_eq!(c["aud"], "portcullis-agents", "{c}");
    assert_eq!(c["iss"], "portcullis", "{c}");
    assert!(
        c["jti"].is_string() && c["exp"].is_u64() && c["iat"].is_u64(),
        "{c}"
    );
    assert!(c.get("type").is_none(), "{c}");

    let t = Cred::Bearer(&token);
    let s = create_session(&srv, t, "agent work").await;
    assert_eq!(s["org_id"], "acme", "{s}");
    assert_eq!(s["created_by"], agent_id.as_str(), "{s}");
    let id = str_of(&s, "id");
    let path = format!("/api/v1/sessions/{id}");
    let list = expect(get(&srv, "/api/v1/sessions", t).await, 200).await;
    assert!(ids(&list, "id").contains(&id), "{list}");
    assert_eq!(
        expect(get(&srv, &path, t).await, 200).await["title"],
        "agent work"
    );
    let p = expect(
        patch(&srv, &path, t, json!({"title": "renamed"})).await,
        200,
    )
    .await;
    assert_eq!(p["title"], "renamed", "{p}");
    let m = create_memory(
        &srv,
        t,
        json!({"content": "agent memory", "session_id": id}),
    )
    .await;
    assert_eq!(m["org_id"], "acme", "{m}");
    expect(delete(&srv, &path, t).await, 204).await;
    assert_problem(get(&srv, &path, t).await, 404, "not_found").await;
    // Not an admin.
    assert_403_scope(get(&srv, "/admin/stats", t).await, "admin:read").await;
    // The default org's session is not the agent's.
    let other = create_session(&srv, Cred::Bearer(&root), "root's").await;
    assert_problem(
        get(
            &srv,
            &format!("/api/v1/sessions/{}", str_of(&other, "id")),
            t,
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_admin_runs_and_terminates_an_agent_it_created_for_another_org() {
    // `POST /agents` takes `org_id`; runs and terminate need admin:write, nothing more.
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, Some("acme")).await;
    assert_eq!(agent["org_id"], "acme", "{agent}");
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    let token = str_of(&run, "token");
    assert_eq!(jwt_part(&token, 1)["company_id"], "acme");
    let me = whoami(&srv, Cred::Bearer(&token)).await;
    assert_eq!(me["org_id"], "acme", "{me}");
    expect(
        post_empty(
            &srv,
            &format!("/agents/{agent_id}/terminate"),
            Cred::Bearer(&admin),
        )
        .await,
        204,
    )
    .await;
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&token)).await,
        "agent_terminated",
        true,
    )
    .await;
}

#[tokio::test]
async fn terminating_an_agent_kills_its_run_tokens_and_keys_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent_id = str_of(&create_agent(&srv, &admin, None).await, "agent_id");
    let token = str_of(&start_run(&srv, &admin, &agent_id).await, "token");
    let key = str_of(
        &create_key(
            &srv,
            Cred::Bearer(&admin),
            json!({"name": "agent key", "permissions": ["session:list"], "agent_id": agent_id}),
        )
        .await,
        "api_key",
    );
    expect(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&token)).await,
        200,
    )
    .await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    expect(
        post_empty(
            &srv,
            &format!("/agents/{agent_id}/terminate"),
            Cred::Bearer(&admin),
        )
        .await,
        204,
    )
    .await;
    let body = assert_401(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&token)).await,
        "agent_terminated",
        true,
    )
    .await;
    assert!(!body.to_string().contains(&token));
    assert_401(
        get(&srv, "/api/v1/sessions", Cred::Key(&key)).await,
        "agent_terminated",
        true,
    )
    .await;
    assert_401(
        get(&srv, "/auth/whoami", Cred::Bearer(&key)).await,
        "agent_terminated",
        true,
    )
    .await;
}

#[tokio::test]
async fn agent_routes_need_admin_write_and_a_known_agent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "kim@example.com", "user", "default").await;
    let agent_id = str_of(&create_agent(&srv, &admin, None).await, "agent_id");
    assert_403_scope(
        post(&srv, "/agents", Cred::Bearer(&user), json!({"name": "x"})).await,
        "admin:write",
    )
    .await;
    assert_403_scope(
        post(
            &srv,
            &format!("/agents/{agent_id}/runs"),
            Cred::Bearer(&user),
            json!({"adapter_type": "process"}),
        )
        .await,
        "admin:write",
    )
    .await;
    assert_403_scope(
        post_empty(
            &srv,
            &format!("/agents/{agent_id}/terminate"),
            Cred::Bearer(&user),
        )
        .await,
        "admin:write",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/agents/no-such-agent/runs",
            Cred::Bearer(&admin),
            json!({"adapter_type": "process"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        post_empty(
            &srv,
            "/agents/no-such-agent/terminate",
            Cred::Bearer(&admin),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // The agent was not terminated by the refused call.
    let token = str_of(&start_run(&srv, &admin, &agent_id).await, "token");
    whoami(&srv, Cred::Bearer(&token)).await;
}

// ---------------------------------------------------------------------------------------------
// Sessions and memories
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_are_created_listed_read_updated_and_deleted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let me = whoami(&srv, Cred::Bearer(&admin)).await;
    let a = Cred::Bearer(&admin);
    let s = create_session(&srv, a, "first").await;
    assert_eq!(s["title"], "first", "{s}");
    assert_eq!(s["org_id"], "default", "{s}");
    assert_eq!(s["created_by"], me["id"], "{s}");
    let id = str_of(&s, "id");
    let path = format!("/api/v1/sessions/{id}");
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert_eq!(ids(&list, "id"), vec![id.clone()], "{list}");
    let got = expect(get(&srv, &path, a).await, 200).await;
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["title"], "first");
    let p = expect(patch(&srv, &path, a, json!({"title": "second"})).await, 200).await;
    assert_eq!(p["title"], "second", "{p}");
    assert_eq!(
        expect(get(&srv, &path, a).await, 200).await["title"],
        "second"
    );
    expect(delete(&srv, &path, a).await, 204).await;
    assert_problem(get(&srv, &path, a).await, 404, "not_found").await;
    assert_problem(delete(&srv, &path, a).await, 404, "not_found").await;
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    // An empty title is malformed.
    assert_problem(
        post(&srv, "/api/v1/sessions", a, json!({"title": ""})).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn memories_are_created_searched_updated_and_deleted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let a = Cred::Bearer(&admin);
    let session = str_of(&create_session(&srv, a, "notes").await, "id");
    let fox = create_memory(
        &srv,
        a,
        json!({"content": "the quick brown fox", "session_id": session}),
    )
    .await;
    assert_eq!(fox["content"], "the quick brown fox", "{fox}");
    assert_eq!(fox["org_id"], "default", "{fox}");
    assert_eq!(fox["session_id"], session.as_str(), "{fox}");
    let dog = create_memory(&srv, a, json!({"content": "a lazy dog sleeps"})).await;
    assert!(dog["session_id"].is_null(), "{dog}");
    let (fox_id, dog_id) = (str_of(&fox, "id"), str_of(&dog, "id"));

    let mut all = ids(
        &expect(get(&srv, "/api/v1/memories", a).await, 200).await,
        "id",
    );
    all.sort();
    let mut want = vec![fox_id.clone(), dog_id.clone()];
    want.sort();
    assert_eq!(all, want);
    let found = expect(get(&srv, "/api/v1/memories/search?q=fox", a).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![fox_id.clone()], "{found}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=lazy", a).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![dog_id.clone()], "{found}");
    let none = expect(get(&srv, "/api/v1/memories/search?q=zebra", a).await, 200).await;
    assert!(ids(&none, "id").is_empty(), "{none}");
    assert_problem(
        get(&srv, "/api/v1/memories/search", a).await,
        400,
        "invalid_request",
    )
    .await;

    let path = format!("/api/v1/memories/{fox_id}");
    assert_eq!(
        expect(get(&srv, &path, a).await, 200).await["content"],
        "the quick brown fox"
    );
    let p = expect(
        patch(&srv, &path, a, json!({"content": "the slow red fox"})).await,
        200,
    )
    .await;
    assert_eq!(p["content"], "the slow red fox", "{p}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=quick", a).await, 200).await;
    assert!(
        ids(&found, "id").is_empty(),
        "search sees the old content: {found}"
    );
    expect(delete(&srv, &path, a).await, 204).await;
    assert_problem(get(&srv, &path, a).await, 404, "not_found").await;
    assert_problem(
        post(&srv, "/api/v1/memories", a, json!({"content": ""})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/api/v1/memories",
            a,
            json!({"content": "x", "session_id": "no-such-session"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn another_orgs_sessions_and_memories_are_not_found() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, acme) = new_user(&srv, &admin, "lee@example.com", "user", "acme").await;
    let (_, acme_viewer) = new_user(&srv, &admin, "lou@example.com", "viewer", "acme").await;
    let theirs = Cred::Bearer(&acme);
    let s = create_session(&srv, theirs, "acme secret plans").await;
    assert_eq!(s["org_id"], "acme", "{s}");
    let m = create_memory(&srv, theirs, json!({"content": "acme secret memory"})).await;
    let s_path = format!("/api/v1/sessions/{}", str_of(&s, "id"));
    let m_path = format!("/api/v1/memories/{}", str_of(&m, "id"));
    // The same org sees them, even as a viewer.
    expect(get(&srv, &s_path, Cred::Bearer(&acme_viewer)).await, 200).await;
    expect(get(&srv, &m_path, Cred::Bearer(&acme_viewer)).await, 200).await;

    // An admin of `default` holds every permission, but not in acme.
    let (_, default_admin) = new_user(&srv, &admin, "dee@example.com", "admin", "default").await;
    let a = Cred::Bearer(&default_admin);
    for path in [&s_path, &m_path] {
        assert_problem(get(&srv, path, a).await, 404, "not_found").await;
        assert_problem(delete(&srv, path, a).await, 404, "not_found").await;
    }
    assert_problem(
        patch(&srv, &s_path, a, json!({"title": "mine"})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        patch(&srv, &m_path, a, json!({"content": "mine"})).await,
        404,
        "not_found",
    )
    .await;
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    let list = expect(get(&srv, "/api/v1/memories", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=secret", a).await, 200).await;
    assert!(ids(&found, "id").is_empty(), "{found}");
    // Nor may a memory of ours point at their session: another org's id is a 404, whatever the
    // route (CONTRACT, Organisations).
    assert_problem(
        post(
            &srv,
            "/api/v1/memories",
            a,
            json!({"content": "x", "session_id": s["id"]}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Nothing was changed or deleted.
    assert_eq!(
        expect(get(&srv, &s_path, theirs).await, 200).await["title"],
        "acme secret plans"
    );
    assert_eq!(
        expect(get(&srv, &m_path, theirs).await, 200).await["content"],
        "acme secret memory"
    );
}

#[tokio::test]
async fn viewer_reads_but_cannot_write() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, viewer) = new_user(&srv, &admin, "mo@example.com", "viewer", "default").await;
    let s = create_session(&srv, Cred::Bearer(&admin), "shared").await;
    let m = create_memory(
        &srv,
        Cred::Bearer(&admin),
        json!({"content": "shared memory"}),
    )
    .await;
    let v = Cred::Bearer(&viewer);
    expect(get(&srv, "/api/v1/sessions", v).await, 200).await;
    expect(get(&srv, "/api/v1/memories", v).await, 200).await;
    let found = expect(get(&srv, "/api/v1/memories/search?q=shared", v).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![str_of(&m, "id")]);
    let s_path = format!("/api/v1/sessions/{}", str_of(&s, "id"));
    let m_path = format!("/api/v1/memories/{}", str_of(&m, "id"));
    assert_403_scope(
        post(&srv, "/api/v1/sessions", v, json!({"title": "x"})).await,
        "session:create",
    )
    .await;
    assert_403_scope(
        patch(&srv, &s_path, v, json!({"title": "x"})).await,
        "session:update",
    )
    .await;
    assert_403_scope(delete(&srv, &s_path, v).await, "session:delete").await;
    assert_403_scope(
        post(&srv, "/api/v1/memories", v, json!({"content": "x"})).await,
        "memory:create",
    )
    .await;
    assert_403_scope(
        patch(&srv, &m_path, v, json!({"content": "x"})).await,
        "memory:update",
    )
    .await;
    assert_403_scope(delete(&srv, &m_path, v).await, "memory:delete").await;
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_stats_counts_users_keys_agents_and_sessions() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "ned@example.com", "user", "acme").await;
    key_with(&srv, &admin, &["session:read"]).await;
    key_with(&srv, &user, &["session:read"]).await;
    create_agent(&srv, &admin, None).await;
    let stats = expect(get(&srv, "/admin/stats", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(stats["users"], 2, "{stats}");
    assert_eq!(stats["api_keys"], 2, "{stats}");
    assert_eq!(stats["agents"], 1, "{stats}");
    // The admin's and the user's login sessions at least.
    assert!(stats["active_sessions"].as_u64().unwrap() >= 2, "{stats}");
    assert_403_scope(
        get(&srv, "/admin/stats", Cred::Bearer(&user)).await,
        "admin:read",
    )
    .await;
}

#[tokio::test]
async fn admin_revoke_sessions_kills_all_of_that_users_sessions_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let u = create_user(&srv, &admin, "ola@example.com", "user", "default").await;
    let user_id = str_of(&u, "id");
    let (a1, r1) = login_pair(&srv, "ola@example.com", USER_PASSWORD).await;
    let (a2, r2) = login_pair(&srv, "ola@example.com", USER_PASSWORD).await;
    let path = format!("/admin/users/{user_id}/revoke-sessions");
    assert_403_scope(
        post_empty(&srv, &path, Cred::Bearer(&a1)).await,
        "admin:write",
    )
    .await;
    whoami(&srv, Cred::Bearer(&a1)).await;
    expect(post_empty(&srv, &path, Cred::Bearer(&admin)).await, 204).await;
    for a in [&a1, &a2] {
        assert_401(
            get(&srv, "/auth/whoami", Cred::Bearer(a)).await,
            "token_revoked",
            true,
        )
        .await;
    }
    for r in [&r1, &r2] {
        assert_401(refresh(&srv, r).await, "token_revoked", true).await;
    }
    // The user may log in again; the admin's session is untouched.
    srv.login("ola@example.com", USER_PASSWORD).await;
    whoami(&srv, Cred::Bearer(&admin)).await;
}

// ---------------------------------------------------------------------------------------------
// Cookies and CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cookie_authenticated_unsafe_request_needs_the_csrf_token() {
    let srv = Server::start();
    let (_, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    let access = cookie_value(&cookie_line(&cookies, "portcullis_access"));
    let csrf = cookie_value(&cookie_line(&cookies, "portcullis_csrf"));
    let jar = format!("portcullis_access={access}; portcullis_csrf={csrf}");
    let with_cookies = |method: Method, path: &str| {
        srv.client()
            .request(method, srv.url(path))
            .header("Cookie", jar.clone())
    };
    // Safe methods need no CSRF token.
    let me = expect(
        with_cookies(Method::GET, "/auth/whoami")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["auth_method"], "cookie", "{me}");
    assert_eq!(me["kind"], "user", "{me}");
    // Unsafe ones do: missing, wrong, then right.
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 403, "csrf_failed").await;
    assert!(!body.to_string().contains(&csrf));
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .header("X-CSRF-Token", "not-the-token")
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "csrf_failed").await;
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    let s = expect(res, 201).await;
    assert_eq!(s["title"], "from a browser");
    // The header alone, without the cookie to match, is not enough either.
    let res = srv
        .client()
        .post(srv.url("/api/v1/sessions"))
        .header("Cookie", format!("portcullis_access={access}"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "csrf_failed").await;
    // A bad access cookie is a 401, not anonymous.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("Cookie", "portcullis_access=garbage")
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_token", true).await;
}

// ---------------------------------------------------------------------------------------------
// Several credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn any_bad_credential_among_several_is_a_401() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:list"]).await;
    // A good JWT and a bad key.
    let res = srv
        .client()
        .get(srv.url("/api/v1/sessions"))
        .bearer_auth(&admin)
        .header("X-API-Key", "ck_garbage")
        .send()
        .await
        .unwrap();
    let challenge = header(res.headers(), "www-authenticate");
    assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
    assert_eq!(challenge.as_deref(), Some(BAD_CREDENTIAL_CHALLENGE));
    // A good key and a bad JWT.
    let res = srv
        .client()
        .get(srv.url("/api/v1/sessions"))
        .bearer_auth("garbage.jwt.here")
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    let challenge = header(res.headers(), "www-authenticate");
    assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
    assert_eq!(challenge.as_deref(), Some(BAD_CREDENTIAL_CHALLENGE));
    // A good key and a bad access cookie.
    let res = srv
        .client()
        .get(srv.url("/api/v1/sessions"))
        .header("X-API-Key", &key)
        .header("Cookie", "portcullis_access=garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_invalid_request_never_a_5xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let raw = |path: &str, body: Vec<u8>| {
        srv.client()
            .post(srv.url(path))
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body)
    };
    for (path, body) in [
        ("/api/v1/sessions", b"{\"title\":".to_vec()),
        ("/api/v1/sessions", b"not json".to_vec()),
        ("/api/v1/sessions", b"[]".to_vec()),
        ("/api/v1/sessions", b"{\"title\": 42}".to_vec()),
        ("/api/v1/sessions", b"{}".to_vec()),
        ("/api/v1/sessions", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("/api/v1/sessions", b"{\"title\": \"\\ud800\"}".to_vec()),
        ("/api/v1/memories", b"{\"content\": null}".to_vec()),
        (
            "/api-keys",
            b"{\"name\": \"x\", \"permissions\": \"session:read\"}".to_vec(),
        ),
        (
            "/api-keys",
            b"{\"name\": \"x\", \"permissions\": [], \"expires_in_seconds\": -5}".to_vec(),
        ),
        ("/users", b"{\"email\": 1}".to_vec()),
        ("/auth/login", b"{\"email\": \"a\"".to_vec()),
        ("/auth/login", vec![0xc3, 0x28, 0xa0, 0xa1]),
        ("/auth/refresh", b"{\"refresh_token\": 7}".to_vec()),
    ] {
        let res = raw(path, body.clone()).send().await.unwrap();
        let what = format!("POST {path} {}", String::from_utf8_lossy(&body));
        let status = assert_4xx_problem(res, &what).await;
        if path != "/auth/refresh" && path != "/auth/login" {
            assert_eq!(status, 400, "{what}");
        }
    }
    // The server is still fine.
    whoami(&srv, Cred::Bearer(&admin)).await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut rb = srv
            .client()
            .post(srv.url("/api/v1/sessions"))
            .bearer_auth(&admin)
            .body(r#"{"title":"x"}"#);
        if let Some(ct) = ct {
            rb = rb.header("Content-Type", ct);
        }
        assert_problem(rb.send().await.unwrap(), 415, "unsupported_media_type").await;
    }
    let res = srv
        .client()
        .post(srv.url("/auth/login"))
        .header("Content-Type", "text/plain")
        .body(format!(
            r#"{{"email":"{ADMIN_EMAIL}","password":"{ADMIN_PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn huge_bodies_are_413() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for size in [70 * 1024, 1024 * 1024] {
        let body = json!({"title": "a".repeat(size)});
        assert_problem(
            post(&srv, "/api/v1/sessions", Cred::Bearer(&admin), body).await,
            413,
            "payload_too_large",
        )
        .await;
        let body = json!({"email": ADMIN_EMAIL, "password": "p".repeat(size)});
        assert_problem(
            post(&srv, "/auth/login", Cred::None, body).await,
            413,
            "payload_too_large",
        )
        .await;
    }
    // Just under the limit is fine (or refused as input, never as a size or a 5xx).
    let body = json!({"content": "m".repeat(60 * 1024)});
    let res = post(&srv, "/api/v1/memories", Cred::Bearer(&admin), body).await;
    let status = res.status().as_u16();
    assert!(status == 201 || status == 400, "a 60 KiB memory: {status}");
    whoami(&srv, Cred::Bearer(&admin)).await;
}

#[tokio::test]
async fn odd_headers_paths_and_queries_are_4xx_never_5xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    // A bearer token far over any size limit.
    let big = "a".repeat(3 * 1024);
    assert_401(
        get(
            &srv,
            "/auth/whoami",
            Cred::Bearer(&format!("{big}.{big}.{big}")),
        )
        .await,
        "invalid_token",
        true,
    )
    .await;
    // Non-ASCII bytes in credential headers.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header(
            "X-API-Key",
            HeaderValue::from_bytes(b"ck_\xff\xfe\xfd").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_api_key", true).await;
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header(
            "Authorization",
            HeaderValue::from_bytes(b"Bearer \xff\xfe.\xfd.\xfc").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_token", true).await;
    // Odd ids, queries and methods.
    let a = Cred::Bearer(&admin);
    for path in [
        "/api/v1/memories/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/sessions/' OR 1=1 --",
    ] {
        assert_4xx_problem(get(&srv, path, a).await, path).await;
    }
    // A query that decodes to nonsense may be searched for or refused, never a 5xx.
    for path in [
        "/api/v1/memories/search?q=%ff%fe",
        "/api/v1/memories/search?q=%",
        "/api/v1/memories/search?q=%00",
    ] {
        let res = get(&srv, path, a).await;
        if res.status() != 200 {
            assert_4xx_problem(res, path).await;
        }
    }
    assert_problem(
        call(&srv, Method::PUT, "/api/v1/sessions", a, Some(json!({}))).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_problem(
        delete(&srv, "/api/v1/sessions/no-such-id", a).await,
        404,
        "not_found",
    )
    .await;
    whoami(&srv, a).await;
}

#[tokio::test]
async fn an_id_that_is_not_utf8_is_a_problem_json_4xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for path in [
        "/api/v1/sessions/%00%ff",
        "/api/v1/memories/%ff%fe",
        "/api-keys/%c3%28",
    ] {
        let res = call(&srv, Method::DELETE, path, Cred::Bearer(&admin), None).await;
        assert_4xx_problem(res, path).await;
        assert_4xx_problem(get(&srv, path, Cred::Bearer(&admin)).await, path).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets never echoed
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_response_or_log_line_contains_a_presented_token_key_or_password() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let (access, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (key_id, key) = key_with(&srv, &access, &["session:list"]).await;
    let agent_id = str_of(&create_agent(&srv, &access, None).await, "agent_id");
    let run_token = str_of(&start_run(&srv, &access, &agent_id).await, "token");
    let expired = mint_access(JWT_SECRET, now() - 3600, &jwt_part(&access, 1));
    let wrong_password = "this is not the password";
    let mut bodies = Vec::new();
    let mut keep = |what: &str, body: String| bodies.push((what.to_owned(), body));

    // Successful and refused requests presenting each secret.
    for (what, res) in [
        (
            "whoami jwt",
            get(&srv, "/auth/whoami", Cred::Bearer(&access)).await,
        ),
        (
            "whoami key",
            get(&srv, "/auth/whoami", Cred::Key(&key)).await,
        ),
        (
            "whoami run",
            get(&srv, "/auth/whoami", Cred::Bearer(&run_token)).await,
        ),
        ("keys list", get(&srv, "/api-keys", Cred::Key(&key)).await),
        (
            "stats by key",
            get(&srv, "/admin/stats", Cred::Key(&key)).await,
        ),
        (
            "refresh as bearer",
            get(&srv, "/auth/whoami", Cred::Bearer(&refresh_token)).await,
        ),
        (
            "expired",
            get(&srv, "/auth/whoami", Cred::Bearer(&expired)).await,
        ),
        (
            "access as refresh",
            post(
                &srv,
                "/auth/refresh",
                Cred::None,
                json!({"refresh_token": access}),
            )
            .await,
        ),
        (
            "bad login",
            post(
                &srv,
                "/auth/login",
                Cred::None,
                json!({"email": ADMIN_EMAIL, "password": wrong_password}),
            )
            .await,
        ),
        (
            "bad password change",
            post(
                &srv,
                "/auth/password",
                Cred::Bearer(&access),
                json!({"current_password": wrong_password, "new_password": "whatever 12345"}),
            )
            .await,
        ),
        (
            "malformed with secrets",
            post(
                &srv,
                "/api/v1/sessions",
                Cred::Bearer(&access),
                json!({"title": 1, "token": access, "key": key}),
            )
            .await,
        ),
    ] {
        keep(what, res.text().await.unwrap());
    }
    // Then revoke everything and present it all again.
    expect(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&access)).await,
        204,
    )
    .await;
    expect(
        post_empty(
            &srv,
            &format!("/agents/{agent_id}/terminate"),
            Cred::Bearer(&access),
        )
        .await,
        204,
    )
    .await;
    let rotated = expect(refresh(&srv, &refresh_token).await, 200).await;
    keep("rotated", rotated.to_string());
    let rotated_access = str_of(&rotated, "access_token");
    expect(
        post_empty(&srv, "/auth/logout", Cred::Bearer(&rotated_access)).await,
        204,
    )
    .await;
    for (what, res) in [
        (
            "deleted key",
            get(&srv, "/auth/whoami", Cred::Key(&key)).await,
        ),
        (
            "terminated run",
            get(&srv, "/auth/whoami", Cred::Bearer(&run_token)).await,
        ),
        (
            "logged out",
            get(&srv, "/auth/whoami", Cred::Bearer(&access)).await,
        ),
        ("revoked refresh", refresh(&srv, &refresh_token).await),
    ] {
        assert_eq!(res.status(), 401, "{what}");
        keep(what, res.text().await.unwrap());
    }
    let secrets = [
        access.as_str(),
        refresh_token.as_str(),
        key.as_str(),
        run_token.as_str(),
        expired.as_str(),
        wrong_password,
        ADMIN_PASSWORD,
        JWT_SECRET,
    ];
    for (what, body) in &bodies {
        for s in secrets {
            assert!(
                !body.contains(s),
                "{what}: the response contains a secret: {body}"
            );
        }
    }
    assert_log_free_of(&srv, &secrets);
}
