//! External issuers end to end: the real `portcullis` binary over real HTTP, configured through
//! `AUTH_OIDC_ISSUERS`, against the real OpenID Provider (node's `oidc-provider`,
//! `tests/common/oidc.rs`). No mocks: each test starts its own provider(s) and server(s), so
//! they may run in parallel.
//!
//! What is proven: client-credentials and authorization-code tokens resolve to the actor the
//! configuration says (kind, id, org, permissions from scopes and roles, issuer); permissions
//! and orgs are enforced on them like on our own credentials; two issuers never verify each
//! other's tokens; key rotation, a provider that goes away and comes back, a flood of unknown
//! `kid`s, keys that grow too old, and start-up with the provider down; and that an external
//! token counts only as a bearer token (never as a cookie or an API key, and its `jku`/`x5u`
//! are never fetched).
//!
//! Needs Node.js and npm (`scripts/install-oidc-provider` installs the provider's packages) and
//! the `portcullis` binary (`cargo build -p portcullis-server`).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::contract::{BAD_CREDENTIAL_CHALLENGE, USER_ROLE, header, sorted};
use common::oidc::{Provider, decode_jwt};
use common::{Options, Server, assert_problem};
use reqwest::Response;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The audience the provider's tokens carry and the server accepts.
const AUDIENCE: &str = "portcullis-api";

/// The `viewer` role's permissions (bob's and svc-globex's role).
const VIEWER_ROLE: [&str; 5] = [
    "memory:list",
    "memory:read",
    "memory:search",
    "session:list",
    "session:read",
];

/// One entry of `AUTH_OIDC_ISSUERS` for `issuer`: org from the `org` claim, roles from
/// `realm_access.roles`, machine clients, `typ: at+jwt` required, no background fetch for an
/// hour (no `Cache-Control` from the provider: `max_secs`), one `kid`-triggered refetch a
/// minute, a retry a second after a failure. Tests change what they need through [`set`].
fn issuer_config(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "audiences": [AUDIENCE],
        "org": {"claim": "org"},
        "roles_claim": "realm_access.roles",
        "kind": "service",
        "require_at_jwt": true,
        "refresh": {
            "unknown_kid_cooldown_secs": 60,
            "min_secs": 1,
            "retry_secs": 1,
            "max_key_age_secs": 86400,
        },
    })
}

/// `config` with `path` (dotted: `refresh.max_secs`) set to `value`; `Value::Null` removes it.
fn set(mut config: Value, path: &str, value: Value) -> Value {
    let (parents, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
    let mut at = &mut config;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        at = &mut at[part];
    }
    let obj = at.as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(last);
    } else {
        obj.insert(last.to_owned(), value);
    }
    config
}

/// The server's environment for these issuers (development, the default).
fn options(issuers: &[Value]) -> Options {
    Options::default().env(
        "AUTH_OIDC_ISSUERS",
        &Value::from(issuers.to_vec()).to_string(),
    )
}

/// A server that trusts these issuers.
fn start_server(issuers: &[Value]) -> Server {
    Server::start_with(options(issuers))
}

/// The JWT with its header changed by `edit`; payload and signature kept as they are.
fn with_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let (header, _) = decode_jwt(token);
    let mut header = header.as_object().unwrap().clone();
    edit(&mut header);
    let (_, rest) = token.split_once('.').unwrap();
    let encoded = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    format!("{encoded}.{rest}")
}

/// The JWT with its payload changed by `edit`; header and signature kept as they are.
fn with_payload(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let (_, payload) = decode_jwt(token);
    let mut payload = payload.as_object().unwrap().clone();
    edit(&mut payload);
    let parts: Vec<&str> = token.split('.').collect();
    let encoded = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{encoded}.{}", parts[0], parts[2])
}

/// The JWT with its header's `kid` replaced (the signature no longer matters: no key has it).
fn forge_kid(token: &str, kid: &str) -> String {
    with_header(token, |h| {
        h.insert("kid".into(), kid.into());
    })
}

/// A `kid` no provider has.
fn random_kid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `kid` of a JWT's header.
fn kid_of(token: &str) -> String {
    decode_jwt(token).0["kid"].as_str().unwrap().to_owned()
}

/// `GET /auth/whoami` with the bearer token.
async fn whoami(srv: &Server, token: &str) -> Response {
    srv.client()
        .get(srv.url("/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `whoami` must answer 200: the body.
async fn whoami_ok(srv: &Server, token: &str) -> Value {
    let res = whoami(srv, token).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "whoami; body: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A 401 with `code` and the challenge for a presented credential.
async fn assert_401(res: Response, code: &str) -> Value {
    let challenge = header(res.headers(), "www-authenticate");
    let body = assert_problem(res, 401, code).await;
    assert_eq!(
        challenge.as_deref(),
        Some(BAD_CREDENTIAL_CHALLENGE),
        "WWW-Authenticate of a 401 {code}; body: {body}"
    );
    body
}

/// A 403 `insufficient_permissions` naming exactly `scope`.
async fn assert_403_scope(res: Response, scope: &str) -> Value {
    let challenge = header(res.headers(), "www-authenticate");
    let body = assert_problem(res, 403, "insufficient_permissions").await;
    assert_eq!(
        challenge.as_deref(),
        Some(format!(r#"Bearer error="insufficient_scope", scope="{scope}""#).as_str()),
        "WWW-Authenticate of a 403; body: {body}"
    );
    body
}

/// What `/readyz` says about `issuer`'s keys: `{keys, key_count, fetches, age_secs,
/// last_error}`.
async fn issuer_state(srv: &Server, issuer: &str) -> Value {
    let res = srv.client().get(srv.url("/readyz")).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "readyz: {body}");
    assert_eq!(body["status"], "ready", "{body}");
    let state = body["issuers"][issuer].clone();
    assert!(state.is_object(), "readyz names no issuer {issuer}: {body}");
    state
}

/// How many fetches of `issuer`'s keys the server has made.
async fn fetches(srv: &Server, issuer: &str) -> u64 {
    issuer_state(srv, issuer).await["fetches"].as_u64().unwrap()
}

/// Polls `/readyz` until `issuer`'s keys are `want`; the state then. Fails after `within`.
async fn wait_for_keys(srv: &Server, issuer: &str, want: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let state = issuer_state(srv, issuer).await;
        if state["keys"] == want {
            return state;
        }
        assert!(
            start.elapsed() < within,
            "{issuer}'s keys not {want} within {within:?}: {state}\nserver output:\n{}",
            srv.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /api/v1/sessions` as `token`: must be 201; the body.
async fn create_session(srv: &Server, token: &str, title: &str) -> Value {
    let res = srv
        .client()
        .post(srv.url("/api/v1/sessions"))
        .bearer_auth(token)
        .json(&json!({"title": title}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 201, "POST /api/v1/sessions; body: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn get(srv: &Server, path: &str, token: &str) -> Response {
    srv.client()
        .get(srv.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A TCP listener that only counts the connections made to it (the address of a `jku` or
/// `x5u` that must never be fetched).
struct Tripwire {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Tripwire {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if conn.is_ok() {
                    h.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self { port, hits, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Runs `portcullis serve` with `env` until it exits (at most 30 s; killed and failed if it
/// is still running by then): its exit status and everything it printed.
fn run_until_exit(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("output.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut cmd = Command::new(common::binary());
    cmd.arg("serve")
        .arg("--bind")
        .arg("127.0.0.1:0")
        .current_dir(dir.path())
        .env_remove("REDIS_URL")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/portcullis.db", dir.path().display()),
        )
        .env("PORTCULLIS_ADMIN_EMAIL", common::ADMIN_EMAIL)
        .env("PORTCULLIS_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            let mut text = String::new();
            std::fs::File::open(&out_path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            panic!("the server still runs after 30 s; its output:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap();
    (status, text)
}

/// Production secrets (≥ 32 bytes, different).
const PRODUCTION: [(&str, &str); 3] = [
    ("AUTH_ENV", "production"),
    (
        "AUTH_JWT_SECRET_KEY",
        "server-oidc-test-user-secret-0123456789abcdef",
    ),
    (
        "AUTH_AGENT_JWT_SECRET",
        "server-oidc-test-agent-secret-0123456789abcde",
    ),
];

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// 1. Client credentials
// ---------------------------------------------------------------------------------------------

/// A svc-acme client-credentials token is a `service` actor of org acme holding its scopes and
/// its `user` role's permissions; it creates a session in acme, is refused a route needing a
/// permission it lacks (403 with the scope challenge), and never sees globex's sessions.
#[tokio::test]
async fn client_credentials_token_acts_as_a_service_with_its_scopes_and_roles() {
    let p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let scope = "session:create session:read session:list";
    let acme = p.token("svc-acme", scope).await;

    let me = whoami_ok(&srv, &acme).await;
    assert_eq!(me["kind"], "service", "{me}");
    assert_eq!(me["id"], "svc-acme", "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(me["auth_method"], "oidc", "{me}");
    assert_eq!(me["issuer"], p.issuer(), "{me}");
    // The scope's three are within the user role's: the union is the role.
    assert_eq!(me["permissions"], json!(sorted(USER_ROLE)), "{me}");
    assert!(me.get("session_id").is_none_or(Value::is_null), "{me}");

    let session = create_session(&srv, &acme, "acme's").await;
    assert_eq!(session["org_id"], "acme", "{session}");
    assert_eq!(session["created_by"], "svc-acme", "{session}");
    let acme_id = session["id"].as_str().unwrap().to_owned();

    // GET /admin/stats needs admin:read, which neither the scope nor the role grants.
    assert_403_scope(get(&srv, "/admin/stats", &acme).await, "admin:read").await;

    // svc-globex (org globex, role viewer) makes a session; svc-acme cannot see it, and back.
    let globex = p.token("svc-globex", scope).await;
    let theirs = create_session(&srv, &globex, "globex's").await;
    assert_eq!(theirs["org_id"], "globex", "{theirs}");
    let globex_id = theirs["id"].as_str().unwrap().to_owned();
    let res = get(&srv, &format!("/api/v1/sessions/{globex_id}"), &acme).await;
    assert_problem(res, 404, "not_found").await;
    let res = get(&srv, &format!("/api/v1/sessions/{acme_id}"), &globex).await;
    assert_problem(res, 404, "not_found").await;
    let res = get(&srv, "/api/v1/sessions", &acme).await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![acme_id.as_str()],
        "acme lists only its own: {listed}"
    );
    let res = get(&srv, &format!("/api/v1/sessions/{acme_id}"), &acme).await;
    assert_eq!(res.status(), 200, "its own session");
}

/// Without `roles_claim` a token holds exactly the permissions its scope names (names that are
/// not permissions, like `openid`, grant nothing).
#[tokio::test]
async fn without_roles_claim_a_token_holds_exactly_its_scopes() {
    let p = Provider::start();
    let config = set(issuer_config(p.issuer()), "roles_claim", Value::Null);
    let srv = start_server(&[config]);
    let token = p
        .token(
            "svc-acme",
            "openid session:create session:read session:list",
        )
        .await;

    let me = whoami_ok(&srv, &token).await;
    assert_eq!(me["kind"], "service", "{me}");
    assert_eq!(me["id"], "svc-acme", "{me}");
    assert_eq!(me["issuer"], p.issuer(), "{me}");
    assert_eq!(
        me["permissions"],
        json!(["session:create", "session:list", "session:read"]),
        "{me}"
    );
    // The role would grant memory:create; without roles_claim it does not count.
    let res = srv
        .client()
        .post(srv.url("/api/v1/memories"))
        .bearer_auth(&token)
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap();
    assert_403_scope(res, "memory:create").await;
    let session = create_session(&srv, &token, "scoped").await;
    assert_eq!(session["org_id"], "acme", "{session}");
}

// ---------------------------------------------------------------------------------------------
// 2. Authorization-code login
// ---------------------------------------------------------------------------------------------

/// A person's token from the authorization-code flow, under an issuer of `kind: user`, is a
/// `user` actor of the org its claims name.
#[tokio::test]
async fn authorization_code_login_acts_as_a_user_of_its_org() {
    let p = Provider::start();
    let config = set(issuer_config(p.issuer()), "kind", json!("user"));
    let srv = start_server(&[config]);

    let alice = p.login("alice", "openid session:read session:list");
    let me = whoami_ok(&srv, &alice).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], "alice", "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(me["auth_method"], "oidc", "{me}");
    assert_eq!(me["issuer"], p.issuer(), "{me}");
    assert_eq!(me["permissions"], json!(sorted(USER_ROLE)), "{me}");
    let session = create_session(&srv, &alice, "alice's").await;
    assert_eq!(session["org_id"], "acme", "{session}");
    assert_eq!(session["created_by"], "alice", "{session}");

    let bob = p.login("bob", "openid session:read");
    let me = whoami_ok(&srv, &bob).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], "bob", "{me}");
    assert_eq!(me["org_id"], "globex", "{me}");
    assert_eq!(me["permissions"], json!(sorted(&VIEWER_ROLE)), "{me}");
    // bob may read sessions, but not alice's: another org's id is a 404.
    let alice_id = session["id"].as_str().unwrap();
    let res = get(&srv, &format!("/api/v1/sessions/{alice_id}"), &bob).await;
    assert_problem(res, 404, "not_found").await;
}

// ---------------------------------------------------------------------------------------------
// 3. Two issuers
// ---------------------------------------------------------------------------------------------

/// Two configured issuers each verify their own tokens only; a third, unconfigured one is an
/// unknown issuer.
#[tokio::test]
async fn two_issuers_verify_only_their_own_tokens() {
    let a = Provider::start();
    let b = Provider::start();
    let other = Provider::start();
    let b_config = set(issuer_config(b.issuer()), "org", json!({"fixed": "globex"}));
    let b_config = set(b_config, "kind", json!("user"));
    let srv = start_server(&[issuer_config(a.issuer()), b_config]);
    let scope = "session:read";

    let from_a = a.token("svc-acme", scope).await;
    let me = whoami_ok(&srv, &from_a).await;
    assert_eq!(me["issuer"], a.issuer(), "{me}");
    assert_eq!(me["kind"], "service", "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");

    // B's svc-acme says org acme; B's configuration fixes globex.
    let from_b = b.token("svc-acme", scope).await;
    let me = whoami_ok(&srv, &from_b).await;
    assert_eq!(me["issuer"], b.issuer(), "{me}");
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], "svc-acme", "{me}");
    assert_eq!(me["org_id"], "globex", "{me}");

    // A's token naming B's key: A's keys do not hold it.
    let b_kid = b.kids()[0].clone();
    assert_ne!(b_kid, a.kids()[0]);
    assert_401(
        whoami(&srv, &forge_kid(&from_a, &b_kid)).await,
        "invalid_token",
    )
    .await;
    // And back.
    let a_kid = a.kids()[0].clone();
    assert_401(
        whoami(&srv, &forge_kid(&from_b, &a_kid)).await,
        "invalid_token",
    )
    .await;
    // A's token re-addressed to B (its `iss` changed, A's kid and signature kept).
    let readdressed = with_payload(&from_a, |p| {
        p.insert("iss".into(), b.issuer().into());
    });
    assert_401(whoami(&srv, &readdressed).await, "invalid_token").await;

    // A real token from a provider nobody configured: an unknown issuer.
    let unknown = other.token("svc-acme", scope).await;
    assert_401(whoami(&srv, &unknown).await, "invalid_token").await;

    // Both issuers are still fine, and the genuine tokens still work.
    assert_eq!(issuer_state(&srv, a.issuer()).await["keys"], "fresh");
    assert_eq!(issuer_state(&srv, b.issuer()).await["keys"], "fresh");
    assert_eq!(whoami_ok(&srv, &from_a).await["issuer"], a.issuer());
    assert_eq!(whoami_ok(&srv, &from_b).await["issuer"], b.issuer());
}

// ---------------------------------------------------------------------------------------------
// 4. Rotation
// ---------------------------------------------------------------------------------------------

/// The provider rotates while the server runs: the first token with the new `kid` refetches
/// the keys exactly once and works; tokens with the old `kid` keep working (the old key is
/// still published).
#[tokio::test]
async fn rotation_refetches_once_and_keeps_the_old_key() {
    let mut p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let old_kid = p.kids()[0].clone();
    let t1 = p.token("svc-acme", "session:read").await;
    // Another old-kid token, first presented after the rotation (never from a cache).
    let t1_unseen = p.token("svc-acme", "session:list").await;
    assert_eq!(kid_of(&t1), old_kid);
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");
    let before = fetches(&srv, p.issuer()).await;
    assert_eq!(before, 1, "one fetch at start");

    p.rotate();
    let t2 = p.token("svc-acme", "session:read").await;
    assert_ne!(kid_of(&t2), old_kid, "signed with the new key");
    assert_eq!(whoami_ok(&srv, &t2).await["id"], "svc-acme");
    assert_eq!(
        fetches(&srv, p.issuer()).await,
        before + 1,
        "the unknown kid refetched once"
    );

    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");
    assert_eq!(whoami_ok(&srv, &t1_unseen).await["id"], "svc-acme");
    let state = issuer_state(&srv, p.issuer()).await;
    assert_eq!(state["keys"], "fresh", "{state}");
    assert_eq!(state["key_count"], 2, "{state}");
    assert_eq!(state["fetches"], before + 1, "no other fetch: {state}");
}

// ---------------------------------------------------------------------------------------------
// 5. Provider stopped
// ---------------------------------------------------------------------------------------------

/// With the provider down the last good keys keep verifying, an unknown `kid` is refused (its
/// refetch fails: `stale`, with the reason); once the provider is back, the retry a second
/// later (`retry_secs`) makes the keys `fresh` again.
#[tokio::test]
async fn a_stopped_provider_leaves_the_last_good_keys_until_it_is_back() {
    let mut p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let t1 = p.token("svc-acme", "session:read").await;
    let t1_unseen = p.token("svc-acme", "session:list").await;
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");

    p.stop();
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");
    assert_eq!(whoami_ok(&srv, &t1_unseen).await["id"], "svc-acme");
    let before = fetches(&srv, p.issuer()).await;
    let forged = forge_kid(&t1, &random_kid());
    assert_401(whoami(&srv, &forged).await, "invalid_token").await;

    let state = issuer_state(&srv, p.issuer()).await;
    assert_eq!(state["keys"], "stale", "{state}");
    assert_eq!(
        state["fetches"],
        before + 1,
        "the unknown kid tried once: {state}"
    );
    assert_eq!(
        state["key_count"], 1,
        "the last good keys are kept: {state}"
    );
    let error = state["last_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "stale says why: {state}");
    assert_eq!(
        whoami_ok(&srv, &t1).await["id"],
        "svc-acme",
        "still verifies"
    );

    p.restart();
    let state = wait_for_keys(&srv, p.issuer(), "fresh", Duration::from_secs(8)).await;
    assert!(state["last_error"].is_null(), "{state}");
    let t2 = p.token("svc-acme", "session:read").await;
    assert_eq!(whoami_ok(&srv, &t2).await["id"], "svc-acme");
}

/// The same with background refreshes every second (`max_secs: 1`): the server notices the
/// provider is gone by itself (`stale`), keeps verifying, and `fresh` again once it is back.
#[tokio::test]
async fn background_refresh_notices_a_provider_going_and_coming_back() {
    let mut p = Provider::start();
    let config = set(issuer_config(p.issuer()), "refresh.max_secs", json!(1));
    let srv = start_server(&[config]);
    let t1 = p.token("svc-acme", "session:read").await;
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");

    p.stop();
    let state = wait_for_keys(&srv, p.issuer(), "stale", Duration::from_secs(8)).await;
    assert!(
        state["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{state}"
    );
    assert_eq!(state["key_count"], 1, "{state}");
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");

    p.restart();
    let state = wait_for_keys(&srv, p.issuer(), "fresh", Duration::from_secs(8)).await;
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(whoami_ok(&srv, &t1).await["id"], "svc-acme");
}

// ---------------------------------------------------------------------------------------------
// 6. Flood of unknown kids
// ---------------------------------------------------------------------------------------------

/// 200 concurrent tokens with random `kid`s: every one a 401, and at most one refetch
/// (`unknown_kid_cooldown_secs: 60`). A genuine token still works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch() {
    let p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let token = p.token("svc-acme", "session:read").await;
    let before = fetches(&srv, p.issuer()).await;

    let http = srv.client();
    let url = srv.url("/auth/whoami");
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url) = (http.clone(), url.clone());
        let forged = forge_kid(&token, &random_kid());
        requests.spawn(async move { http.get(url).bearer_auth(forged).send().await.unwrap() });
    }
    let mut refused = 0;
    while let Some(res) = requests.join_next().await {
        assert_401(res.unwrap(), "invalid_token").await;
        refused += 1;
    }
    assert_eq!(refused, 200);

    let after = fetches(&srv, p.issuer()).await;
    assert!(
        after <= before + 1,
        "200 unknown kids made {} fetches",
        after - before
    );
    assert_eq!(whoami_ok(&srv, &token).await["id"], "svc-acme");
}

// ---------------------------------------------------------------------------------------------
// 7. Expired key set
// ---------------------------------------------------------------------------------------------

/// Keys not refreshed for longer than `max_key_age_secs` are no longer trusted: a valid token
/// of the issuer is a 503 `auth_unavailable` with `Retry-After`, and readyz says `expired`.
#[tokio::test]
async fn keys_older_than_max_key_age_refuse_with_503() {
    let mut p = Provider::start();
    let config = set(
        set(issuer_config(p.issuer()), "refresh.max_secs", json!(1)),
        "refresh.max_key_age_secs",
        json!(2),
    );
    let srv = start_server(&[config]);
    let valid = p.token("svc-acme", "session:read").await;
    p.stop();

    let state = wait_for_keys(&srv, p.issuer(), "expired", Duration::from_secs(10)).await;
    assert_eq!(state["key_count"], 1, "{state}");
    assert!(state["age_secs"].as_u64().unwrap() > 2, "{state}");

    let res = whoami(&srv, &valid).await;
    let retry_after = header(res.headers(), "retry-after");
    assert_problem(res, 503, "auth_unavailable").await;
    let retry_after: u64 = retry_after
        .expect("Retry-After on a 503")
        .trim()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(issuer_state(&srv, p.issuer()).await["keys"], "expired");
}

/// The same for a token that was accepted (and so remembered) before the keys expired: the
/// expiry is about the keys, so no earlier verification outlives it.
#[tokio::test]
async fn expired_keys_refuse_even_a_token_accepted_before() {
    let mut p = Provider::start();
    let config = set(
        set(issuer_config(p.issuer()), "refresh.max_secs", json!(1)),
        "refresh.max_key_age_secs",
        json!(2),
    );
    let srv = start_server(&[config]);
    let seen = p.token("svc-acme", "session:read").await;
    assert_eq!(whoami_ok(&srv, &seen).await["id"], "svc-acme");
    p.stop();

    wait_for_keys(&srv, p.issuer(), "expired", Duration::from_secs(10)).await;
    let res = whoami(&srv, &seen).await;
    let retry_after = header(res.headers(), "retry-after");
    assert_problem(res, 503, "auth_unavailable").await;
    assert!(retry_after.is_some(), "Retry-After on a 503");
}

/// With the provider up, keys never grow older than `max_key_age_secs`: the background
/// refresh (at most `max_secs` apart, which the configuration keeps below the key age)
/// fetches them again in time.
#[tokio::test]
async fn keys_are_refetched_before_they_grow_too_old_while_the_provider_is_up() {
    let p = Provider::start();
    let config = set(
        set(issuer_config(p.issuer()), "refresh.max_secs", json!(1)),
        "refresh.max_key_age_secs",
        json!(2),
    );
    let srv = start_server(&[config]);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let token = p.token("svc-acme", "session:read").await;
    let res = whoami(&srv, &token).await;
    let (status, body) = (res.status(), res.text().await.unwrap());
    let state = issuer_state(&srv, p.issuer()).await;
    assert_eq!(
        status, 200,
        "a valid token with the provider up; body: {body}; readyz: {state}"
    );
    assert_eq!(state["keys"], "fresh", "{state}");
}

// ---------------------------------------------------------------------------------------------
// 8. Start-up
// ---------------------------------------------------------------------------------------------

/// In production an issuer whose keys cannot be fetched stops the server from starting: it
/// exits non-zero and names the issuer. (The same configuration with the provider up starts.)
#[tokio::test]
async fn production_refuses_to_start_without_an_issuers_keys() {
    let issuer = format!("http://127.0.0.1:{}", closed_port());
    let issuers = Value::from(vec![issuer_config(&issuer)]).to_string();
    let mut env = PRODUCTION.to_vec();
    env.push(("AUTH_OIDC_ISSUERS", issuers.as_str()));
    let (status, output) = run_until_exit(&env);
    assert!(!status.success(), "exit {status}; output:\n{output}");
    assert!(
        output.contains(&issuer),
        "the output names the issuer {issuer}:\n{output}"
    );
    assert!(
        !output.contains("listening on"),
        "it never listened:\n{output}"
    );

    // Control: the same production settings with a reachable provider start and verify.
    let p = Provider::start();
    let mut opts = options(&[issuer_config(p.issuer())]);
    for (k, v) in PRODUCTION {
        opts = opts.env(k, v);
    }
    let srv = Server::start_with(opts);
    let token = p.token("svc-acme", "session:read").await;
    assert_eq!(whoami_ok(&srv, &token).await["org_id"], "acme");
}

/// In development a provider that is down at start does not stop the server: its keys are
/// `pending`, its tokens refused with 503, and a few seconds after it comes up they work.
#[tokio::test]
async fn development_starts_with_the_provider_down_and_catches_up() {
    let mut p = Provider::start();
    let token = p.token("svc-acme", "session:read").await;
    p.stop(); // `restart` brings it back on the same port

    let srv = start_server(&[issuer_config(p.issuer())]);
    let state = issuer_state(&srv, p.issuer()).await;
    assert_eq!(state["keys"], "pending", "{state}");
    assert_eq!(state["key_count"], 0, "{state}");
    assert!(
        state["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{state}"
    );
    // No keys at all: the fault is ours, not the token's.
    assert_problem(whoami(&srv, &token).await, 503, "auth_unavailable").await;

    p.restart();
    let state = wait_for_keys(&srv, p.issuer(), "fresh", Duration::from_secs(8)).await;
    assert_eq!(state["key_count"], 1, "{state}");
    let me = whoami_ok(&srv, &token).await;
    assert_eq!(me["id"], "svc-acme", "{me}");
    assert_eq!(me["issuer"], p.issuer(), "{me}");
}

// ---------------------------------------------------------------------------------------------
// 9. Carriers
// ---------------------------------------------------------------------------------------------

/// An external token is a bearer token only: in the `portcullis_access` cookie it is refused
/// (cookies carry our own tokens), as `X-API-Key` it is an invalid key.
#[tokio::test]
async fn an_external_token_counts_only_as_a_bearer_token() {
    let p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let token = p.token("svc-acme", "session:read").await;
    assert_eq!(whoami_ok(&srv, &token).await["id"], "svc-acme");

    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("cookie", format!("portcullis_access={token}"))
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_token").await;

    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("x-api-key", &token)
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_api_key").await;
}

/// `jku` and `x5u` in a token's header are never fetched: keys come from the configured issuer
/// only.
#[tokio::test]
async fn jku_and_x5u_are_never_fetched() {
    let p = Provider::start();
    let srv = start_server(&[issuer_config(p.issuer())]);
    let token = p.token("svc-acme", "session:read").await;
    let tripwire = Tripwire::start();

    for member in ["jku", "x5u"] {
        let forged = with_header(&token, |h| {
            h.insert("kid".into(), random_kid().into());
            h.insert(member.into(), tripwire.url("/jwks").into());
        });
        assert_401(whoami(&srv, &forged).await, "invalid_token").await;
        // With the real kid too (the header changed, so the signature is wrong).
        let forged = with_header(&token, |h| {
            h.insert(member.into(), tripwire.url("/jwks").into());
        });
        assert_401(whoami(&srv, &forged).await, "invalid_token").await;
    }
    // Anything started in the background would have connected by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tripwire.hits(), 0, "the server connected to the jku/x5u");
}
