//! Plumbing and domain helpers shared by the sample server's contract tests (`server_auth`,
//! `server_credentials`, `server_keys`, `server_agents`, `server_resources`,
//! `server_hardening`): requests with a credential, status and problem assertions, cookies,
//! JWT pieces, and the users, keys, agents and data a test sets up through the API.
//!
//! Together those files exercise every row of the contract's endpoint table and every code of
//! its error table (but 503 `auth_unavailable`, which needs a store that goes away) with the
//! statuses, `code`s and headers the contract promises.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Options, Server, assert_problem};
use portcullis::ids::{OrgId, SessionId, UserId};
use portcullis::token::{
    AccessGrant, DEFAULT_MAX_TOKEN_BYTES, KeyRing, SigningKey, TokenPolicy, UserTokenTtl,
    UserTokens,
};
use portcullis::{ManualClock, Secret};
use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// The password `common::Server::user_token` gives its users.
pub use super::USER_PASSWORD;
/// A user-token secret the tests know, so they can mint tokens the server accepts.
pub const JWT_SECRET: &str = "server-contract-test-secret-0123456789-abcdef";
/// An agent-token secret the tests know.
pub const AGENT_SECRET: &str = "server-contract-agent-secret-9876543210-zyxwvu";

pub const NO_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
pub const BAD_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

pub const ALL_PERMISSIONS: [&str; 13] = [
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

/// The `user` role's permissions: every one but `admin:*`.
pub const USER_ROLE: &[&str] = ALL_PERMISSIONS.split_at(2).1;

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

/// The credential a request presents.
#[derive(Clone, Copy)]
pub enum Cred<'a> {
    None,
    /// `Authorization: Bearer …`
    Bearer(&'a str),
    /// `X-API-Key: …`
    Key(&'a str),
}

pub fn request(
    srv: &Server,
    method: Method,
    path: &str,
    cred: Cred<'_>,
) -> reqwest::RequestBuilder {
    let rb = srv.client().request(method, srv.url(path));
    match cred {
        Cred::None => rb,
        Cred::Bearer(t) => rb.bearer_auth(t),
        Cred::Key(k) => rb.header("X-API-Key", k),
    }
}

pub async fn call(
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

pub async fn get(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::GET, path, cred, None).await
}

pub async fn post(srv: &Server, path: &str, cred: Cred<'_>, body: Value) -> Response {
    call(srv, Method::POST, path, cred, Some(body)).await
}

/// A POST without a body.
pub async fn post_empty(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::POST, path, cred, None).await
}

pub async fn patch(srv: &Server, path: &str, cred: Cred<'_>, body: Value) -> Response {
    call(srv, Method::PATCH, path, cred, Some(body)).await
}

pub async fn delete(srv: &Server, path: &str, cred: Cred<'_>) -> Response {
    call(srv, Method::DELETE, path, cred, None).await
}

/// Asserts the status and returns the JSON body (`Null` when empty).
pub async fn expect(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }
}

pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A 401 with `code` and the exact challenge: with `error="invalid_token"` iff a credential was
/// presented.
pub async fn assert_401(res: Response, code: &str, presented: bool) -> Value {
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

/// `GET path` as `cred` is a 401 with `code` and the exact challenge (see [`assert_401`]: a
/// credential is presented unless `cred` is [`Cred::None`]); the body.
pub async fn assert_get_401(srv: &Server, path: &str, cred: Cred<'_>, code: &str) -> Value {
    let presented = !matches!(cred, Cred::None);
    assert_401(get(srv, path, cred).await, code, presented).await
}

/// A 403 `insufficient_permissions` naming exactly the missing `scope`.
pub async fn assert_403_scope(res: Response, scope: &str) -> Value {
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
pub fn num_header(headers: &HeaderMap, name: &str) -> u64 {
    let v = header(headers, name).unwrap_or_else(|| panic!("{name} missing: {headers:?}"));
    v.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {v:?}"))
}

/// A 429 `rate_limited` with `Retry-After` and `RateLimit-*`; returns the headers.
pub async fn assert_429(res: Response, limit: u64) -> HeaderMap {
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
pub async fn assert_4xx_problem(res: Response, what: &str) -> u16 {
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

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn str_of(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
        .to_owned()
}

/// The `permissions` of a JSON value, asserting it is an array of strings.
pub fn perms(v: &Value) -> Vec<String> {
    v["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("permissions is not an array in {v}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

pub fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Every `Set-Cookie` line of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The `Set-Cookie` line setting `name`.
pub fn cookie_line(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name} in {lines:?}"))
        .clone()
}

pub fn cookie_value(line: &str) -> String {
    let first = line.split(';').next().unwrap();
    first.split_once('=').unwrap().1.trim().to_owned()
}

/// The attributes of a `Set-Cookie` line, lowercased, without spaces around `=`.
pub fn cookie_attrs(line: &str) -> Vec<String> {
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

pub fn has_attr(line: &str, attr: &str) -> bool {
    cookie_attrs(line).iter().any(|a| a == attr)
}

// --- base64url and JWT pieces ------------------------------------------------------------------

// Not every suite that includes this module uses both.
#[allow(unused_imports)]
pub use portcullis_testkit::jws::{b64url, unb64url};

/// Part `i` (0 header, 1 claims) of a JWT, decoded.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&unb64url(part)).unwrap()
}

pub fn policy(audience: &str) -> TokenPolicy {
    TokenPolicy {
        issuer: "portcullis".into(),
        audience: audience.into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    }
}

/// User tokens signed with `secret`, on a clock stopped at `at`, living 60 s.
pub fn user_tokens(secret: &str, at: u64) -> UserTokens {
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
pub fn mint_access(secret: &str, at: u64, claims: &Value) -> String {
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

pub fn start_with(env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default();
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    Server::start_with(opts)
}

/// `POST /auth/refresh` with `token` in the JSON body.
pub async fn refresh(srv: &Server, token: &str) -> Response {
    post(
        srv,
        "/auth/refresh",
        Cred::None,
        json!({"refresh_token": token}),
    )
    .await
}

/// `POST /auth/login` → (body, the response's headers).
pub async fn login_full(srv: &Server, body: Value) -> (Value, HeaderMap) {
    let res = post(srv, "/auth/login", Cred::None, body).await;
    let headers = res.headers().clone();
    (expect(res, 200).await, headers)
}

/// Logs in: (access token, refresh token).
pub async fn login_pair(srv: &Server, email: &str, password: &str) -> (String, String) {
    let v = srv.login(email, password).await;
    (str_of(&v, "access_token"), str_of(&v, "refresh_token"))
}

/// Creates a user as `admin`; its `POST /users` body.
pub async fn create_user(srv: &Server, admin: &str, email: &str, role: &str, org: &str) -> Value {
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
pub async fn new_user(
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
pub async fn create_key(srv: &Server, cred: Cred<'_>, body: Value) -> Value {
    expect(post(srv, "/api-keys", cred, body).await, 201).await
}

/// A key with `permissions` owned by `token`'s actor: (key id, key).
pub async fn key_with(srv: &Server, token: &str, permissions: &[&str]) -> (String, String) {
    let k = create_key(
        srv,
        Cred::Bearer(token),
        json!({"name": "test key", "permissions": permissions}),
    )
    .await;
    (str_of(&k, "key_id"), str_of(&k, "api_key"))
}

/// `POST /agents` as `admin`.
pub async fn create_agent(srv: &Server, admin: &str, org: Option<&str>) -> Value {
    let mut body = json!({"name": "indexer"});
    if let Some(org) = org {
        body["org_id"] = json!(org);
    }
    expect(post(srv, "/agents", Cred::Bearer(admin), body).await, 201).await
}

/// `POST /agents/{id}/terminate` as `cred`.
pub async fn terminate_agent(srv: &Server, cred: Cred<'_>, agent_id: &str) -> Response {
    post_empty(srv, &format!("/agents/{agent_id}/terminate"), cred).await
}

/// `PATCH /api-keys/{id}` as `cred`, turning the key on or off.
pub async fn set_key_enabled(
    srv: &Server,
    cred: Cred<'_>,
    key_id: &str,
    enabled: bool,
) -> Response {
    patch(
        srv,
        &format!("/api-keys/{key_id}"),
        cred,
        json!({"enabled": enabled}),
    )
    .await
}

/// `POST /agents/{id}/runs` as `admin`.
pub async fn start_run(srv: &Server, admin: &str, agent_id: &str) -> Value {
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

pub async fn whoami(srv: &Server, cred: Cred<'_>) -> Value {
    expect(get(srv, "/auth/whoami", cred).await, 200).await
}

pub async fn create_session(srv: &Server, cred: Cred<'_>, title: &str) -> Value {
    expect(
        post(srv, "/api/v1/sessions", cred, json!({"title": title})).await,
        201,
    )
    .await
}

pub async fn create_memory(srv: &Server, cred: Cred<'_>, body: Value) -> Value {
    expect(post(srv, "/api/v1/memories", cred, body).await, 201).await
}

/// The ids in a JSON array of objects.
pub fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|o| str_of(o, field))
        .collect()
}

/// Nothing the server printed contains any of `secrets`.
pub fn assert_log_free_of(srv: &Server, secrets: &[&str]) {
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
