//! The `AuthLayer` end to end through `oneshot`: every way a request resolves to an actor,
//! every refusal with its status, `code` and headers, fallback, public paths, CSRF, a custom
//! renderer, malformed input, store failures and what the decision log may contain.
//!
//! State is set up through the core API (stores, token minting) and time moves on a
//! `ManualClock`, never by sleeping.

// Helpers outside #[test] fns unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_core::api_key::{self, ApiKeyPrefix, ApiKeyRecord, KeyHash, KeyOwner, KeysOf};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use portcullis_core::rate_limit::RateLimiter;
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{
    AgentDirectory, AgentRecord, AgentStatus, ApiKeyStore, Denylist, SessionStore, Stores,
};
use portcullis_core::token::{AccessGrant, AgentGrant, MintedToken, SigningKey};
use portcullis_core::{
    Actor, AuthConfig, AuthConfigBuilder, Authenticator, Clock, Credential, ManualClock,
    RateLimitInfo, Secret, StoreError, UnixTime, seed,
};
use portcullis_tower::{AuthLayer, Fallback, Policy, Renderer};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt, service_fn};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// The fixed start of every test's clock.
const T0: UnixTime = 1_700_000_000;
const USER_SECRET: &str = "layer-tests-user-jwt-secret-0123456789abcdef";
const AGENT_SECRET: &str = "layer-tests-agent-jwt-secret-0123456789abcdef";
const ORG: &str = "acme";
/// Default access token lifetime (15 min) and leeway (30 s).
const ACCESS_TTL: u64 = 15 * 60;
const LEEWAY: u64 = 30;

const BARE_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// What a failing backend says; it must never reach a response or a log line.
const STORE_MESSAGE: &str = "postgres://admin:hunter2@db.internal:5432 connection refused";

fn config() -> AuthConfigBuilder {
    AuthConfig::builder()
        .jwt_secret(Secret::from(USER_SECRET))
        .agent_secret(Secret::from(AGENT_SECRET))
}

/// The sample server's public paths: the library's default has none.
const PUBLIC_PATHS: [&str; 7] = [
    "/",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/.well-known/jwks.json",
    "/auth/login",
    "/auth/refresh",
];

/// The layer's policy in these tests: the contract's public paths.
fn policy() -> Policy {
    Policy::default().public_paths(PUBLIC_PATHS)
}

struct Fx {
    auth: Authenticator,
    clock: ManualClock,
    policy: Policy,
}

impl Fx {
    fn new() -> Self {
        Self::build(config(), Stores::memory(), None)
    }

    fn with_config(config: AuthConfigBuilder) -> Self {
        Self::build(config, Stores::memory(), None)
    }

    fn with_policy(policy: Policy) -> Self {
        Self::new().policy(policy)
    }

    /// This fixture with the layer's `policy`.
    fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The layer every `send` goes through.
    fn layer(&self) -> AuthLayer {
        AuthLayer::builder(self.auth.clone())
            .policy(self.policy.clone())
            .build()
            .unwrap()
    }

    fn with_stores(stores: Stores) -> Self {
        Self::build(config(), stores, None)
    }

    fn build(
        config: AuthConfigBuilder,
        stores: Stores,
        limiter: Option<Arc<dyn RateLimiter>>,
    ) -> Self {
        let clock = ManualClock::new(T0);
        let mut builder = Authenticator::builder()
            .config(config.build().unwrap())
            .clock(Arc::new(clock.clone()))
            .stores(stores);
        if let Some(limiter) = limiter {
            builder = builder.rate_limiter(limiter);
        }
        Self {
            auth: builder.build().unwrap(),
            clock,
            policy: policy(),
        }
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        send_with(self.layer(), req).await
    }

    /// [`send`](Self::send) for the logging test. Other tests run in parallel threads with no
    /// subscriber; one of them registering a callsite while this test installs its scoped
    /// subscriber can cache "never" for that callsite (tracing's per-callsite interest cache).
    /// Rebuilding the cache first makes the capture deterministic.
    async fn send_logged(&self, req: Request<Full<Bytes>>) -> Reply {
        tracing::callsite::rebuild_interest_cache();
        self.send(req).await
    }

    /// A live login session of `user` in [`ORG`], lasting `lifetime` seconds.
    async fn session_lasting(&self, user: &str, lifetime: u64) -> SessionId {
        let sid = SessionId::random();
        let record = SessionRecord::new(
            sid.clone(),
            UserId::from(user),
            OrgId::from(ORG),
            KeyHash::of(b"the first refresh token"),
            self.now(),
            lifetime,
            false,
        );
        self.auth.stores().sessions.create(record).await.unwrap();
        sid
    }

    async fn session(&self, user: &str) -> SessionId {
        self.session_lasting(user, 7 * 24 * 3600).await
    }

    /// An access token of `user` (role `user`, org [`ORG`]) for session `sid`.
    fn access(&self, user: &str, sid: &SessionId) -> MintedToken {
        self.auth
            .user_tokens()
            .mint_access(AccessGrant {
                user_id: &UserId::from(user),
                email: &format!("{user}@example.com"),
                role: "user",
                org_id: &OrgId::from(ORG),
                session_id: sid,
            })
            .unwrap()
    }

    /// A session and an access token for it.
    async fn login(&self, user: &str) -> (SessionId, String) {
        let sid = self.session(user).await;
        let token = self.access(user, &sid).token.expose().to_owned();
        (sid, token)
    }

    async fn agent(&self, id: &str) -> AgentId {
        let agent = AgentRecord {
            id: AgentId::from(id),
            org_id: OrgId::from(ORG),
            name: format!("{id} the agent"),
            status: AgentStatus::Active,
            created_at: self.now(),
        };
        self.auth.stores().agents.insert(agent).await.unwrap();
        AgentId::from(id)
    }

    fn run_token(&self, agent: &str, company: &str, run: &str) -> MintedToken {
        self.auth
            .agent_tokens()
            .mint(AgentGrant {
                agent_id: &AgentId::from(agent),
                company_id: &OrgId::from(company),
                adapter_type: "claude",
                run_id: &RunId::from(run),
            })
            .unwrap()
    }

    /// A stored key owned by `owner`, after `edit`; returns the key and its id.
    async fn key_with(
        &self,
        owner: KeyOwner,
        edit: impl FnOnce(&mut ApiKeyRecord),
    ) -> (String, ApiKeyId) {
        let generated = api_key::generate(&ApiKeyPrefix::default());
        let id = ApiKeyId::random();
        let mut record = ApiKeyRecord {
            id: id.clone(),
            name: "test key".into(),
            hash: generated.hash,
            display_prefix: generated.display_prefix.clone(),
            created_by: UserId::from("u-creator").into(),
            owner,
            org_id: OrgId::from(ORG),
            permissions: seed::MEMORY_ALL,
            created_at: self.now(),
            expires_at: None,
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
        };
        edit(&mut record);
        self.auth.stores().api_keys.insert(record).await.unwrap();
        (generated.key.expose().to_owned(), id)
    }

    async fn user_key(&self, user: &str) -> (String, ApiKeyId) {
        self.key_with(KeyOwner::User(UserId::from(user)), |_| {})
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

/// Echoes the actor the layer put in the request's extensions, and what else arrived.
async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let renderer = req.extensions().get::<Renderer>().is_some();
    let path = req.uri().path().to_owned();
    let method = req.method().to_string();
    let probe = req
        .headers()
        .get("x-probe")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut body = match req.extensions().get::<Actor>() {
        Some(actor) => json!({
            "kind": actor.kind().as_str(),
            "id": actor.id(),
            "method": actor.auth_method().map(|m| m.as_str()),
            "org_id": actor.org_id().map(|o| o.as_str()),
            "session_id": actor.session_id().map(|s| s.as_str()),
            "run_id": actor.run_id().map(|r| r.as_str()),
            "key_id": actor.api_key_id().map(|k| k.as_str()),
        }),
        None => json!({ "kind": "no actor in extensions" }),
    };
    let received = req.into_body().collect().await.unwrap().to_bytes();
    body["request"] = json!({
        "method": method,
        "path": path,
        "probe": probe,
        "body": String::from_utf8_lossy(&received),
        "renderer_in_extensions": renderer,
    });
    Ok(Response::new(Full::from(
        serde_json::to_vec(&body).unwrap(),
    )))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn header_secs(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .parse()
            .unwrap()
    }
}

async fn send_with(layer: AuthLayer, req: Request<Full<Bytes>>) -> Reply {
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(echo));
    let (parts, body) = svc.oneshot(req).await.unwrap().into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A request with raw header bytes (repeat a name to send it twice).
fn raw(method: Method, path: &str, headers: &[(&str, &[u8])]) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        b = b.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    b.body(Full::default()).unwrap()
}

fn req(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let bytes: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    raw(method, path, &bytes)
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    req(Method::GET, path, headers)
}

fn post(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    req(Method::POST, path, headers)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn access_cookie(token: &str) -> String {
    format!("portcullis_access={token}")
}

/// A protected path (not in the default public list).
const PRIVATE: &str = "/api/v1/sessions";

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// A 200 from the inner service, carrying the expected actor.
#[track_caller]
fn assert_actor(r: &Reply, kind: &str, id: Option<&str>, method: Option<&str>) -> Value {
    assert_eq!(r.status, StatusCode::OK, "body: {}", r.text());
    let actor = r.json();
    assert_eq!(actor["kind"], kind, "{actor}");
    assert_eq!(actor["id"].as_str(), id, "{actor}");
    assert_eq!(actor["method"].as_str(), method, "{actor}");
    actor
}

#[track_caller]
fn assert_anonymous(r: &Reply) {
    assert_actor(r, "anonymous", None, None);
}

/// A problem+json refusal with exactly this status, code and challenge.
#[track_caller]
fn assert_problem(r: &Reply, status: u16, code: &str, challenge: Option<&str>) -> Value {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let doc = r.json();
    assert_eq!(doc["code"], code, "{doc}");
    assert_eq!(doc["status"], status, "{doc}");
    for member in ["type", "title", "detail"] {
        assert!(doc[member].is_string(), "{member} missing: {doc}");
    }
    assert_eq!(r.header("www-authenticate"), challenge, "{doc}");
    assert_no_leak(r, &[STORE_MESSAGE, "hunter2"]);
    doc
}

/// A 401 after a credential was presented.
#[track_caller]
fn assert_401(r: &Reply, code: &str) -> Value {
    assert_problem(r, 401, code, Some(INVALID_TOKEN_CHALLENGE))
}

/// None of `secrets` appears in the body or any header.
#[track_caller]
fn assert_no_leak(r: &Reply, secrets: &[&str]) {
    let mut all = r.text();
    for (name, value) in &r.headers {
        all.push_str(&format!(
            "\n{name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    for s in secrets {
        assert!(!all.contains(s), "response contains a secret: {all}");
    }
}

// ---------------------------------------------------------------------------------------------
// Valid credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_bearer_jwt_resolves_to_the_user_with_method_jwt() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    let actor = assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    assert_eq!(actor["org_id"], ORG);
    assert_eq!(actor["session_id"], sid.as_str());
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let h = format!("{scheme} {token}");
        let r = fx.send(get(PRIVATE, &[("authorization", &h)])).await;
        assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    }
}

#[tokio::test]
async fn access_cookie_resolves_to_the_user_with_method_cookie() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let cookie = format!("theme=dark; {}; lang=en", access_cookie(&token));
    let r = fx.send(get(PRIVATE, &[("cookie", &cookie)])).await;
    let actor = assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    assert_eq!(actor["session_id"], sid.as_str());
}

#[tokio::test]
async fn user_api_key_in_x_api_key_resolves_to_the_api_key_actor() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx.send(get(PRIVATE, &[("x-api-key", &key)])).await;
    let actor = assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
    assert_eq!(actor["key_id"], id.as_str());
    assert_eq!(actor["org_id"], ORG);
}

#[tokio::test]
async fn user_api_key_as_bearer_resolves_to_the_api_key_actor() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&key))]))
        .await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
}

#[tokio::test]
async fn agent_owned_api_key_resolves_to_the_agent() {
    let fx = Fx::new();
    let agent = fx.agent("agent-7").await;
    let (key, id) = fx.key_with(KeyOwner::Agent(agent), |_| {}).await;
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(&key))]))
            .await,
    ] {
        let actor = assert_actor(&r, "agent", Some("agent-7"), Some("api_key"));
        assert_eq!(actor["key_id"], id.as_str());
        assert_eq!(actor["run_id"], Value::Null);
    }
}

#[tokio::test]
async fn agent_run_token_resolves_to_the_agent_with_its_run() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let token = fx.run_token("agent-7", ORG, "run-42");
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(token.token.expose()))],
        ))
        .await;
    let actor = assert_actor(&r, "agent", Some("agent-7"), Some("jwt"));
    assert_eq!(actor["run_id"], "run-42");
    assert_eq!(actor["org_id"], ORG);
    assert_eq!(actor["key_id"], Value::Null);
}

#[tokio::test]
async fn the_same_credential_in_two_sources_counts_once() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[("x-api-key", &key), ("authorization", &bearer(&key))],
        ))
        .await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));

    let (_, token) = fx.login("u-bob").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("authorization", &bearer(&token)),
                ("cookie", &access_cookie(&token)),
            ],
        ))
        .await;
    // The bearer comes first in the contract's order.
    assert_actor(&r, "user", Some("u-bob"), Some("jwt"));
}

#[tokio::test]
async fn two_credentials_of_the_same_actor_are_accepted_and_the_first_decides() {
    let fx = Fx::new();
    let (_, phone) = fx.login("u-alice").await;
    let (_, laptop) = fx.login("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("authorization", &bearer(&phone)),
                ("cookie", &access_cookie(&laptop)),
            ],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));

    // An agent's own key and its run token name the same agent; the key comes first.
    let agent = fx.agent("agent-7").await;
    let (key, key_id) = fx.key_with(KeyOwner::Agent(agent), |_| {}).await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("x-api-key", &key),
                ("authorization", &bearer(run.token.expose())),
            ],
        ))
        .await;
    let actor = assert_actor(&r, "agent", Some("agent-7"), Some("api_key"));
    assert_eq!(actor["key_id"], key_id.as_str());
}

#[tokio::test]
async fn a_token_inside_the_leeway_is_still_accepted() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY - 1);
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

// ---------------------------------------------------------------------------------------------
// 401 missing_credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_credential_on_a_protected_path_is_missing_credentials_with_a_bare_challenge() {
    let fx = Fx::new();
    for r in [
        fx.send(get(PRIVATE, &[])).await,
        fx.send(post(PRIVATE, &[])).await,
    ] {
        let doc = assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
        assert_eq!(doc["title"], "Unauthorized");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("retry-after"), None);
    }
    // Unrelated cookies, an empty access cookie (a cleared one) and a non-ASCII Cookie header
    // (some other application's) are no credential either.
    for cookie in [
        &b"theme=dark; lang=en"[..],
        b"portcullis_access=",
        b"portcullis_access=\"\"",
        b"\xff\xfeportcullis_access",
    ] {
        let r = fx
            .send(raw(Method::GET, PRIVATE, &[("cookie", cookie)]))
            .await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

// ---------------------------------------------------------------------------------------------
// 401 invalid_token
// ---------------------------------------------------------------------------------------------

/// Base64url without padding, to craft token headers.
fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `token` with its header replaced by `header` (payload and signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64url(header.to_string().as_bytes()))
}

#[tokio::test]
async fn garbage_bearer_is_invalid_token() {
    let fx = Fx::new();
    for garbage in [
        "garbage",
        "a.b.c",
        "not.a.jwt.at.all",
        "eyJhbGciOi.x.y",
        "....",
    ] {
        let r = fx
            .send(get(PRIVATE, &[("authorization", &bearer(garbage))]))
            .await;
        assert_401(&r, "invalid_token");
        assert_no_leak(&r, &[garbage]);
    }
}

#[tokio::test]
async fn a_tampered_signature_is_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let sig_start = token.rfind('.').unwrap() + 1;
    let mut bytes = token.into_bytes();
    // The first signature character carries six full bits: changing it changes the signature.
    bytes[sig_start] = if bytes[sig_start] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&tampered))]))
        .await;
    assert_401(&r, "invalid_token");
    let r = fx
        .send(get(PRIVATE, &[("cookie", &access_cookie(&tampered))]))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn a_tampered_payload_is_invalid_token() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims = json!({
        "sub": "u-alice", "email": "a@example.com", "role": "admin", "org_id": ORG,
        "type": "access", "sid": sid.as_str(), "jti": "j1",
        "iat": T0, "exp": T0 + 600, "iss": "portcullis", "aud": "portcullis-api",
    });
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&forged))]))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_under_our_kid_is_invalid_token() {
    let fx = Fx::new();
    let (sid, _) = fx.login("u-alice").await;
    let our_kid = fx.auth.user_tokens().key_ring().active().kid().to_owned();
    let forger = Fx::with_config(
        config().jwt_signing_key(
            SigningKey::hs256(&Secret::from("the forger's own secret, 32+ bytes long"))
                .with_kid(&our_kid),
        ),
    );
    let forged = forger.access("u-alice", &sid);
    let forged = forged.token.expose();
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(forged))]))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn an_unknown_kid_is_invalid_token() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    // Re-headed with a kid no ring knows.
    let rekid = with_header(
        &token,
        &json!({"alg": "HS256", "typ": "JWT", "kid": "no-such-kid"}),
    );
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&rekid))]))
        .await;
    assert_401(&r, "invalid_token");
    // Minted by a stranger: other secrets, so other kids.
    let stranger = Fx::with_config(
        AuthConfig::builder()
            .jwt_secret(Secret::from("a stranger's user secret, 32+ bytes long"))
            .agent_secret(Secret::from("a stranger's agent secret, 32+ bytes long")),
    );
    let foreign = stranger.access("u-alice", &sid);
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(foreign.token.expose()))],
        ))
        .await;
    assert_401(&r, "invalid_token");
    fx.agent("agent-7").await;
    let foreign_run = stranger.run_token("agent-7", ORG, "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(foreign_run.token.expose()))],
        ))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn alg_none_and_crit_headers_are_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "NoNe"}),
        json!({"alg": "HS512"}),
        json!({"alg": "RS256"}),
        json!({"alg": "HS256", "crit": ["exp"]}),
    ] {
        let mut crafted = with_header(&token, &header);
        if header["alg"].as_str().unwrap().eq_ignore_ascii_case("none") {
            // Unsigned: an empty signature.
            crafted.truncate(crafted.rfind('.').unwrap() + 1);
        }
        let r = fx
            .send(get(PRIVATE, &[("authorization", &bearer(&crafted))]))
            .await;
        assert_401(&r, "invalid_token");
    }
}

#[tokio::test]
async fn an_agent_token_in_the_cookie_is_invalid_token() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[("cookie", &access_cookie(run.token.expose()))],
        ))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn an_agent_token_for_an_unknown_agent_or_another_company_is_invalid_token() {
    let fx = Fx::new();
    let ghost = fx.run_token("agent-ghost", ORG, "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(ghost.token.expose()))],
        ))
        .await;
    assert_401(&r, "invalid_token");
    fx.agent("agent-7").await;
    let elsewhere = fx.run_token("agent-7", "globex", "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(elsewhere.token.expose()))],
        ))
        .await;
    assert_401(&r, "invalid_token");
}

// ---------------------------------------------------------------------------------------------
// 401 token_expired, token_revoked, wrong_token_type
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_access_token_past_exp_and_the_leeway_is_token_expired() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_401(&r, "token_expired");
    fx.clock.advance(3600);
    let r = fx
        .send(get(PRIVATE, &[("cookie", &access_cookie(&token))]))
        .await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn an_agent_token_past_exp_and_the_leeway_is_token_expired() {
    let fx = Fx::with_config(config().agent_ttl_secs(60));
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let h = bearer(run.token.expose());
    fx.clock.advance(60 + LEEWAY - 1);
    assert_actor(
        &fx.send(get(PRIVATE, &[("authorization", &h)])).await,
        "agent",
        Some("agent-7"),
        Some("jwt"),
    );
    fx.clock.advance(2);
    let r = fx.send(get(PRIVATE, &[("authorization", &h)])).await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn a_revoked_session_is_token_revoked() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let h = bearer(&token);
    assert_actor(
        &fx.send(get(PRIVATE, &[("authorization", &h)])).await,
        "user",
        Some("u-alice"),
        Some("jwt"),
    );
    assert!(fx.auth.revoke_session(&sid).await.unwrap());
    assert_401(
        &fx.send(get(PRIVATE, &[("authorization", &h)])).await,
        "token_revoked",
    );
    assert_401(
        &fx.send(get(PRIVATE, &[("cookie", &access_cookie(&token))]))
            .await,
        "token_revoked",
    );
}

#[tokio::test]
async fn all_sessions_of_a_user_revoked_is_token_revoked() {
    let fx = Fx::new();
    let (_, one) = fx.login("u-alice").await;
    let (_, two) = fx.login("u-alice").await;
    // (The count it returns is not checked: the memory store counts "live" by the system
    // clock, and these sessions live on the manual clock, years ago.)
    fx.auth
        .revoke_user_sessions(&UserId::from("u-alice"))
        .await
        .unwrap();
    for token in [one, two] {
        let r = fx
            .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
            .await;
        assert_401(&r, "token_revoked");
    }
}

#[tokio::test]
async fn a_denied_jti_is_token_revoked() {
    let fx = Fx::new();
    let sid = fx.session("u-alice").await;
    let minted = fx.access("u-alice", &sid);
    let other = fx.access("u-alice", &sid);
    fx.auth
        .deny_token(&minted.jti, minted.expires_at)
        .await
        .unwrap();
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await;
    assert_401(&r, "token_revoked");
    // Only that token: another of the same session still works.
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(other.token.expose()))],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn an_unknown_or_deleted_session_is_token_revoked() {
    let fx = Fx::new();
    // A session id that was never stored (or was deleted): the sid names nothing.
    let minted = fx.access("u-alice", &SessionId::random());
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn an_expired_session_is_token_revoked_even_with_a_fresh_token() {
    let fx = Fx::new();
    let sid = fx.session_lasting("u-alice", 60).await;
    fx.clock.advance(60);
    // The token is minted now, so it is fresh; its session is not.
    let minted = fx.access("u-alice", &sid);
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_token_naming_another_users_session_is_token_revoked() {
    let fx = Fx::new();
    let bobs_session = fx.session("u-bob").await;
    let minted = fx.access("u-alice", &bobs_session);
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_denied_agent_run_token_is_token_revoked() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    fx.auth.deny_token(&run.jti, run.expires_at).await.unwrap();
    let r = fx
        .send(get(
            PRIVATE,
            &[("authorization", &bearer(run.token.expose()))],
        ))
        .await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_refresh_token_as_bearer_or_cookie_is_wrong_token_type() {
    let fx = Fx::new();
    let sid = fx.session("u-alice").await;
    let refresh = fx
        .auth
        .user_tokens()
        .mint_refresh(&UserId::from("u-alice"), &sid, false)
        .unwrap();
    let refresh = refresh.token.expose();
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(refresh))]))
        .await;
    assert_401(&r, "wrong_token_type");
    assert_no_leak(&r, &[refresh]);
    let r = fx
        .send(get(PRIVATE, &[("cookie", &access_cookie(refresh))]))
        .await;
    assert_401(&r, "wrong_token_type");
}

// ---------------------------------------------------------------------------------------------
// 401 for API keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_api_key_is_invalid_api_key() {
    let fx = Fx::new();
    // Well formed, right checksum, never stored.
    let stranger = api_key::generate(&ApiKeyPrefix::default());
    let key = stranger.key.expose();
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(key))]))
            .await,
    ] {
        assert_401(&r, "invalid_api_key");
        assert_no_leak(&r, &[key]);
    }
}

#[tokio::test]
async fn an_api_key_with_a_bad_checksum_or_shape_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let mut typo = key.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let truncated = key[..key.len() - 1].to_owned();
    let recased = format!("ck_{}", key[3..].to_ascii_uppercase());
    let dashed = format!("{}-{}", &key[..10], &key[11..]);
    for bad in [
        typo.as_str(),
        &truncated,
        &recased,
        &dashed,
        "ck_short",
        "ck_",
    ] {
        if bad == key {
            continue;
        }
        for r in [
            fx.send(get(PRIVATE, &[("x-api-key", bad)])).await,
            fx.send(get(PRIVATE, &[("authorization", &bearer(bad))]))
                .await,
        ] {
            assert_401(&r, "invalid_api_key");
        }
    }
    // Anything in X-API-Key is an API key, whatever it looks like.
    let (_, jwt) = fx.login("u-alice").await;
    for not_a_key in [jwt.as_str(), "zz_abc", "hello"] {
        let r = fx.send(get(PRIVATE, &[("x-api-key", not_a_key)])).await;
        assert_401(&r, "invalid_api_key");
    }
}

#[tokio::test]
async fn api_keys_disabled_by_config_refuse_even_valid_keys() {
    let fx = Fx::with_config(config().api_keys_enabled(false));
    let (key, _) = fx.user_key("u-alice").await;
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(&key))]))
            .await,
    ] {
        assert_401(&r, "invalid_api_key");
    }
    // JWTs still work.
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_deleted_api_key_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    assert_actor(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "api_key",
        Some(id.as_str()),
        Some("api_key"),
    );
    assert!(fx.auth.delete_api_key(&id).await.unwrap());
    assert_401(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "invalid_api_key",
    );
}

#[tokio::test]
async fn an_expired_api_key_is_api_key_expired() {
    let fx = Fx::new();
    let (key, id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.expires_at = Some(T0 + 60);
        })
        .await;
    fx.clock.advance(59);
    assert_actor(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "api_key",
        Some(id.as_str()),
        Some("api_key"),
    );
    fx.clock.advance(1);
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(&key))]))
            .await,
    ] {
        assert_401(&r, "api_key_expired");
    }
}

#[tokio::test]
async fn a_disabled_api_key_is_api_key_disabled() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    assert!(fx.auth.set_api_key_enabled(&id, false).await.unwrap());
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(&key))]))
            .await,
    ] {
        assert_401(&r, "api_key_disabled");
    }
    assert!(fx.auth.set_api_key_enabled(&id, true).await.unwrap());
    assert_actor(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "api_key",
        Some(id.as_str()),
        Some("api_key"),
    );
}

#[tokio::test]
async fn disabled_beats_expired() {
    let fx = Fx::new();
    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.enabled = false;
            r.expires_at = Some(T0);
        })
        .await;
    assert_401(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "api_key_disabled",
    );
}

#[tokio::test]
async fn a_terminated_agents_run_token_and_api_key_are_agent_terminated() {
    let fx = Fx::new();
    let agent = fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let (key, _) = fx.key_with(KeyOwner::Agent(agent.clone()), |_| {}).await;
    assert!(fx.auth.terminate_agent(&agent).await.unwrap());
    for r in [
        fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(run.token.expose()))],
        ))
        .await,
        fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(&key))]))
            .await,
    ] {
        assert_401(&r, "agent_terminated");
    }
}

#[tokio::test]
async fn an_api_key_owned_by_an_unknown_agent_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx
        .key_with(KeyOwner::Agent(AgentId::from("agent-ghost")), |_| {})
        .await;
    assert_401(
        &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
        "invalid_api_key",
    );
}

// ---------------------------------------------------------------------------------------------
// 401 invalid_credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn basic_and_other_authorization_schemes_are_invalid_credentials() {
    let fx = Fx::new();
    for value in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"u\"",
        "Token abc",
        "Negotiate YIIB",
    ] {
        let r = fx.send(get(PRIVATE, &[("authorization", value)])).await;
        assert_401(&r, "invalid_credentials");
        assert_no_leak(&r, &["dXNlcjpwYXNz"]);
    }
}

#[tokio::test]
async fn two_valid_credentials_of_different_actors_are_invalid_credentials() {
    let fx = Fx::new();
    let (alices_key, _) = fx.user_key("u-alice").await;
    let (_, bobs_token) = fx.login("u-bob").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("x-api-key", &alices_key),
                ("authorization", &bearer(&bobs_token)),
            ],
        ))
        .await;
    assert_401(&r, "invalid_credentials");

    // Bearer and cookie of two different users.
    let (_, alices_token) = fx.login("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("authorization", &bearer(&alices_token)),
                ("cookie", &access_cookie(&bobs_token)),
            ],
        ))
        .await;
    assert_401(&r, "invalid_credentials");

    // Two different keys, and a user key with an agent token.
    let (bobs_key, _) = fx.user_key("u-bob").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("x-api-key", &alices_key),
                ("authorization", &bearer(&bobs_key)),
            ],
        ))
        .await;
    assert_401(&r, "invalid_credentials");
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("x-api-key", &alices_key),
                ("authorization", &bearer(run.token.expose())),
            ],
        ))
        .await;
    assert_401(&r, "invalid_credentials");
}

#[tokio::test]
async fn any_bad_credential_among_several_refuses_the_request() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let (_, token) = fx.login("u-alice").await;
    // A good key, a garbage bearer.
    let r = fx
        .send(get(
            PRIVATE,
            &[("x-api-key", &key), ("authorization", "Bearer garbage")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    // A bad key, a good bearer.
    let r = fx
        .send(get(
            PRIVATE,
            &[("x-api-key", "ck_typo"), ("authorization", &bearer(&token))],
        ))
        .await;
    assert_401(&r, "invalid_api_key");
    // A good bearer, an expired cookie.
    let (_, old) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let (_, fresh) = fx.login("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[
                ("authorization", &bearer(&fresh)),
                ("cookie", &access_cookie(&old)),
            ],
        ))
        .await;
    assert_401(&r, "token_expired");
    // A good bearer, an empty X-API-Key.
    let r = fx
        .send(get(
            PRIVATE,
            &[("x-api-key", ""), ("authorization", &bearer(&fresh))],
        ))
        .await;
    assert_401(&r, "invalid_api_key");
}

// ---------------------------------------------------------------------------------------------
// 429 rate_limited
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_third_request_over_a_two_per_minute_key_is_rate_limited() {
    let fx = Fx::new();
    let (key, id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(2);
        })
        .await;
    for _ in 0..2 {
        assert_actor(
            &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
            "api_key",
            Some(id.as_str()),
            Some("api_key"),
        );
    }
    let r = fx.send(get(PRIVATE, &[("x-api-key", &key)])).await;
    let doc = assert_problem(&r, 429, "rate_limited", None);
    assert_eq!(doc["title"], "Too Many Requests");
    let retry_after = r.header_secs("retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let reset = r.header_secs("ratelimit-reset");
    assert!((1..=60).contains(&reset), "RateLimit-Reset {reset}");
    assert_no_leak(&r, &[&key]);
    // The same key as a bearer shares the bucket; another key has its own.
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&key))]))
        .await;
    assert_problem(&r, 429, "rate_limited", None);
    let (other, other_id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(2);
        })
        .await;
    assert_actor(
        &fx.send(get(PRIVATE, &[("x-api-key", &other)])).await,
        "api_key",
        Some(other_id.as_str()),
        Some("api_key"),
    );
}

#[tokio::test]
async fn a_key_without_a_limit_is_not_rate_limited() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    for _ in 0..50 {
        assert_actor(
            &fx.send(get(PRIVATE, &[("x-api-key", &key)])).await,
            "api_key",
            Some(id.as_str()),
            Some("api_key"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 503 auth_unavailable: fail closed
// ---------------------------------------------------------------------------------------------

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A backend that cannot be reached: every call fails (written out the way `async_trait`
/// expands, since `async-trait` is not a dev-dependency of this crate).
#[derive(Debug, Clone, Copy)]
struct Down;

fn down<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
    Box::pin(async { Err(StoreError::Unavailable(STORE_MESSAGE.to_owned())) })
}

impl SessionStore for Down {
    fn create<'l0, 'at>(&'l0 self, _: SessionRecord) -> StoreFuture<'at, ()>
    where
        'l0: 'at,
        Self: 'at,
    {
        down()
    }

    fn get<'l0, 'l1, 'at>(&'l0 self, _: &'l1 SessionId) -> StoreFuture<'at, Option<SessionRecord>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn load_versioned<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 SessionId,
    ) -> StoreFuture<'at, Option<(SessionRecord, u64)>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn swap<'l0, 'l1, 'l2, 'at>(
        &'l0 self,
        _: &'l1 SessionId,
        _: u64,
        _: &'l2 SessionRecord,
    ) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        down()
    }

    fn revoke<'l0, 'l1, 'at>(&'l0 self, _: &'l1 SessionId) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn revoke_all_for_user<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 UserId,
        _: UnixTime,
    ) -> StoreFuture<'at, u64>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn count_live<'l0, 'l1, 'at>(
        &'l0 self,
        _: UnixTime,
        _: Option<&'l1 OrgId>,
    ) -> StoreFuture<'at, u64>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }
}

impl ApiKeyStore for Down {
    fn insert<'l0, 'at>(&'l0 self, _: ApiKeyRecord) -> StoreFuture<'at, ()>
    where
        'l0: 'at,
        Self: 'at,
    {
        down()
    }

    fn find_by_hash<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 KeyHash,
    ) -> StoreFuture<'at, Option<ApiKeyRecord>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn get<'l0, 'l1, 'at>(&'l0 self, _: &'l1 ApiKeyId) -> StoreFuture<'at, Option<ApiKeyRecord>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn list<'l0, 'l1, 'at>(&'l0 self, _: &'l1 KeysOf) -> StoreFuture<'at, Vec<ApiKeyRecord>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn set_enabled<'l0, 'l1, 'at>(&'l0 self, _: &'l1 ApiKeyId, _: bool) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn delete<'l0, 'l1, 'at>(&'l0 self, _: &'l1 ApiKeyId) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn touch<'l0, 'l1, 'at>(&'l0 self, _: &'l1 [(ApiKeyId, UnixTime)]) -> StoreFuture<'at, ()>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }
}

impl Denylist for Down {
    fn deny<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 portcullis_core::ids::TokenId,
        _: UnixTime,
    ) -> StoreFuture<'at, ()>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn is_denied<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 portcullis_core::ids::TokenId,
        _: UnixTime,
    ) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }
}

impl AgentDirectory for Down {
    fn insert<'l0, 'at>(&'l0 self, _: AgentRecord) -> StoreFuture<'at, ()>
    where
        'l0: 'at,
        Self: 'at,
    {
        down()
    }

    fn get<'l0, 'l1, 'at>(&'l0 self, _: &'l1 AgentId) -> StoreFuture<'at, Option<AgentRecord>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn terminate<'l0, 'l1, 'at>(&'l0 self, _: &'l1 AgentId) -> StoreFuture<'at, bool>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }

    fn count<'l0, 'l1, 'at>(&'l0 self, _: Option<&'l1 OrgId>) -> StoreFuture<'at, u64>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }
}

impl RateLimiter for Down {
    fn check<'l0, 'l1, 'at>(
        &'l0 self,
        _: &'l1 str,
        _: NonZeroU32,
    ) -> StoreFuture<'at, Result<(), RateLimitInfo>>
    where
        'l0: 'at,
        'l1: 'at,
        Self: 'at,
    {
        down()
    }
}

/// In-memory stores with `edit` applied (to break some of them).
fn stores_with(edit: impl FnOnce(&mut Stores)) -> Stores {
    let mut stores = Stores::memory();
    edit(&mut stores);
    stores
}

#[track_caller]
fn assert_503(r: &Reply) {
    let doc = assert_problem(r, 503, "auth_unavailable", None);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(doc["title"], "Service Unavailable");
}

#[tokio::test]
async fn a_failing_session_store_is_auth_unavailable_never_200() {
    let fx = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
    // No session can be created; the token names one anyway.
    let minted = fx.access("u-alice", &SessionId::random());
    for r in [
        fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await,
        fx.send(get(
            PRIVATE,
            &[("cookie", &access_cookie(minted.token.expose()))],
        ))
        .await,
    ] {
        assert_503(&r);
    }
}

#[tokio::test]
async fn a_failing_denylist_is_auth_unavailable_for_users_and_agents() {
    let fx = Fx::with_stores(stores_with(|s| s.denylist = Arc::new(Down)));
    // A live session and a live agent: only the denylist cannot answer.
    let (_, token) = fx.login("u-alice").await;
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    assert_503(
        &fx.send(get(PRIVATE, &[("authorization", &bearer(&token))]))
            .await,
    );
    assert_503(
        &fx.send(get(PRIVATE, &[("cookie", &access_cookie(&token))]))
            .await,
    );
    assert_503(
        &fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(run.token.expose()))],
        ))
        .await,
    );
}

#[tokio::test]
async fn a_failing_api_key_store_is_auth_unavailable() {
    let fx = Fx::with_stores(stores_with(|s| s.api_keys = Arc::new(Down)));
    let key = api_key::generate(&ApiKeyPrefix::default());
    let key = key.key.expose();
    for r in [
        fx.send(get(PRIVATE, &[("x-api-key", key)])).await,
        fx.send(get(PRIVATE, &[("authorization", &bearer(key))]))
            .await,
    ] {
        assert_503(&r);
        assert_no_leak(&r, &[key]);
    }
    // A key that fails parsing never reaches the store: still a plain 401.
    assert_401(
        &fx.send(get(PRIVATE, &[("x-api-key", "ck_typo")])).await,
        "invalid_api_key",
    );
}

#[tokio::test]
async fn a_failing_agent_directory_is_auth_unavailable() {
    let fx = Fx::with_stores(stores_with(|s| s.agents = Arc::new(Down)));
    let (key, _) = fx
        .key_with(KeyOwner::Agent(AgentId::from("agent-7")), |_| {})
        .await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    assert_503(
        &fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(run.token.expose()))],
        ))
        .await,
    );
    assert_503(&fx.send(get(PRIVATE, &[("x-api-key", &key)])).await);
}

#[tokio::test]
async fn a_failing_rate_limiter_is_auth_unavailable() {
    let fx = Fx::build(config(), Stores::memory(), Some(Arc::new(Down)));
    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(100);
        })
        .await;
    assert_503(&fx.send(get(PRIVATE, &[("x-api-key", &key)])).await);
}

#[tokio::test]
async fn a_store_failure_is_never_the_board_nor_anonymous_on_a_protected_path() {
    let fx = Fx::build(
        config(),
        stores_with(|s| {
            s.sessions = Arc::new(Down);
            s.api_keys = Arc::new(Down);
        }),
        None,
    )
    .policy(policy().fallback(Fallback::Board));
    let minted = fx.access("u-alice", &SessionId::random());
    let key = api_key::generate(&ApiKeyPrefix::default());
    assert_503(
        &fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await,
    );
    assert_503(
        &fx.send(get(PRIVATE, &[("x-api-key", key.key.expose())]))
            .await,
    );
    let fx = Fx::build(config(), stores_with(|s| s.sessions = Arc::new(Down)), None)
        .policy(policy().require_auth(false));
    let minted = fx.access("u-alice", &SessionId::random());
    assert_503(
        &fx.send(get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ))
        .await,
    );
}

// ---------------------------------------------------------------------------------------------
// Fallback and public paths
// ---------------------------------------------------------------------------------------------

/// What a local browser or client sends to a loopback bind.
const LOCAL_HOST: (&str, &str) = ("host", "localhost:8080");

#[tokio::test]
async fn board_fallback_without_credentials_is_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    for r in [
        fx.send(get(PRIVATE, &[LOCAL_HOST])).await,
        fx.send(post(PRIVATE, &[LOCAL_HOST])).await,
        fx.send(get(PRIVATE, &[LOCAL_HOST, ("cookie", "theme=dark")]))
            .await,
    ] {
        let actor = assert_actor(&r, "board", Some("board"), Some("fallback"));
        assert_eq!(actor["org_id"], Value::Null);
    }
}

#[tokio::test]
async fn board_fallback_still_honours_real_credentials() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_present_but_bad_credential_with_board_fallback_is_401_never_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let (_, token) = fx.login("u-alice").await;
    let (key, id) = fx.user_key("u-alice").await;
    fx.auth
        .stores()
        .api_keys
        .set_enabled(&id, false)
        .await
        .unwrap();
    let cases: [(&str, &[u8], &str); 8] = [
        ("authorization", b"Bearer garbage", "invalid_token"),
        (
            "authorization",
            b"Basic dXNlcjpwYXNz",
            "invalid_credentials",
        ),
        ("authorization", b"Bearer", "invalid_token"),
        ("authorization", b"Bearer \xff\xfe", "invalid_token"),
        ("x-api-key", b"ck_typo", "invalid_api_key"),
        ("x-api-key", b"", "invalid_api_key"),
        ("x-api-key", key.as_bytes(), "api_key_disabled"),
        ("cookie", b"portcullis_access=a.b.c", "invalid_token"),
    ];
    for (name, value, code) in cases {
        let r = fx.send(raw(Method::GET, PRIVATE, &[(name, value)])).await;
        assert_401(&r, code);
    }
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn no_fallback_and_no_credential_on_a_public_path_is_anonymous() {
    let fx = Fx::new();
    for path in PUBLIC_PATHS {
        assert_anonymous(&fx.send(get(path, &[])).await);
    }
    assert_anonymous(&fx.send(post("/auth/login", &[])).await);
    // The query string is not part of the path.
    assert_anonymous(&fx.send(get("/healthz?verbose=1", &[])).await);
}

#[tokio::test]
async fn board_fallback_on_a_public_path_without_credentials_is_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let r = fx.send(get("/healthz", &[LOCAL_HOST])).await;
    assert_actor(&r, "board", Some("board"), Some("fallback"));
}

#[tokio::test]
async fn board_fallback_is_for_every_loopback_host_and_port() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    for host in [
        "localhost",
        "localhost:1234",
        "LOCALHOST:8080",
        "localhost.:8080",
        "127.0.0.1:8080",
        "127.0.0.2",
        "[::1]:8080",
    ] {
        let r = fx.send(get(PRIVATE, &[("host", host)])).await;
        assert_actor(&r, "board", Some("board"), Some("fallback"));
    }
    // HTTP/2 `:authority` and HTTP/1.1 absolute-form arrive as the URI's authority.
    let r = fx
        .send(get("http://localhost:8080/api/v1/sessions", &[]))
        .await;
    assert_actor(&r, "board", Some("board"), Some("fallback"));
}

#[tokio::test]
async fn board_fallback_for_a_host_that_is_not_loopback_is_401_missing_credentials() {
    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let not_loopback: [&[(&str, &[u8])]; 11] = [
        &[("host", b"evil.example")],
        &[("host", b"evil.example:8080")],
        &[("host", b"localhost.evil.com:8080")],
        &[("host", b"127.0.0.1.evil.com")],
        &[("host", b"127.0.0.1.")],
        &[("host", b"10.0.0.1:8080")],
        &[("host", b"0.0.0.0:8080")],
        &[("host", b"evil@localhost")],
        &[("host", b"localhost\xff")],
        &[("host", b"localhost"), ("host", b"evil.example")],
        // No host named at all.
        &[],
    ];
    for headers in not_loopback {
        for method in [Method::GET, Method::POST] {
            let r = fx.send(raw(method, PRIVATE, headers)).await;
            assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
        }
        // On a public path: anonymous, never the board.
        assert_anonymous(&fx.send(raw(Method::GET, "/healthz", headers)).await);
    }
    // An absolute-form URI naming another host, whatever `Host` says.
    for host in ["localhost", "evil.example"] {
        let r = fx
            .send(get(
                "http://evil.example/api/v1/sessions",
                &[("host", host)],
            ))
            .await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
    let r = fx
        .send(get(
            "http://localhost/api/v1/sessions",
            &[("host", "evil.example")],
        ))
        .await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    // Real credentials still resolve, whatever the host.
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[("host", "evil.example"), ("authorization", &bearer(&token))],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn board_fallback_with_remote_allowed_is_the_board_for_any_host() {
    let fx = Fx::with_policy(
        policy()
            .fallback(Fallback::Board)
            .allow_remote_fallback(true),
    );
    for headers in [
        &[("host", "evil.example")][..],
        &[("host", "10.0.0.1:8080")],
        &[],
    ] {
        let r = fx.send(get(PRIVATE, headers)).await;
        assert_actor(&r, "board", Some("board"), Some("fallback"));
    }
}

#[tokio::test]
async fn an_access_cookie_beside_a_cookie_that_is_not_ascii_is_presented_never_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let local = ("host", &b"localhost:8080"[..]);
    // A bad access cookie: 401, not the board, in one header or across two.
    let bad: [&[(&str, &[u8])]; 3] = [
        &[
            local,
            ("cookie", b"name=\xc3\xa9t\xc3\xa9; portcullis_access=a.b.c"),
        ],
        &[local, ("cookie", b"portcullis_access=a.b.c; x=\xff")],
        &[
            local,
            ("cookie", b"x=\xff"),
            ("cookie", b"portcullis_access=a.b.c"),
        ],
    ];
    for headers in bad {
        let r = fx.send(raw(Method::GET, PRIVATE, headers)).await;
        assert_401(&r, "invalid_token");
    }
    // Our cookie's own value not ASCII: present but unreadable.
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[local, ("cookie", b"portcullis_access=a.b.\xc3\xa9")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    // A good one: that user.
    let (_, token) = fx.login("u-alice").await;
    let cookie = format!("name=\u{e9}t\u{e9}; {}", access_cookie(&token));
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[local, ("cookie", cookie.as_bytes())],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn require_auth_off_leaves_a_protected_path_anonymous_without_credentials() {
    let fx = Fx::with_policy(policy().require_auth(false));
    assert_anonymous(&fx.send(get(PRIVATE, &[])).await);
    assert_anonymous(&fx.send(post(PRIVATE, &[])).await);
    // But a present-but-bad credential is still refused.
    let r = fx
        .send(get(PRIVATE, &[("authorization", "Bearer garbage")]))
        .await;
    assert_401(&r, "invalid_token");
    let r = fx
        .send(get(PRIVATE, &[("authorization", "Basic dXNlcjpwYXNz")]))
        .await;
    assert_401(&r, "invalid_credentials");
    // And a good one resolves.
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn public_paths_match_exactly_never_by_prefix() {
    let fx = Fx::new();
    assert_anonymous(&fx.send(get("/healthz", &[])).await);
    for path in [
        "/healthzX",
        "/healthz/",
        "/healthz/x",
        "/HEALTHZ",
        "/%68ealthz",
        "//healthz",
        "/auth/login/../../api/v1/sessions",
        "/auth/logout",
        "/x/healthz",
    ] {
        let r = fx.send(get(path, &[])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

#[tokio::test]
async fn a_configured_public_path_is_public() {
    let fx = Fx::with_policy(policy().public_paths(["/metrics"]));
    assert_anonymous(&fx.send(get("/metrics", &[])).await);
    let r = fx.send(get("/metrics/x", &[])).await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
}

#[tokio::test]
async fn a_bad_credential_on_a_public_path_is_anonymous_never_the_board() {
    for fallback in [Fallback::None, Fallback::Board] {
        let fx = Fx::with_policy(policy().fallback(fallback));
        let (_, token) = fx.login("u-alice").await;
        fx.clock.advance(ACCESS_TTL + LEEWAY);
        let expired_cookie = access_cookie(&token);
        let expired_bearer = bearer(&token);
        let cases: [&[(&str, &[u8])]; 8] = [
            &[("authorization", b"Bearer garbage")],
            &[("authorization", b"Basic dXNlcjpwYXNz")],
            &[("authorization", b"Bearer \xff")],
            &[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            &[("x-api-key", b"ck_typo")],
            &[("x-api-key", b"\xff")],
            &[("cookie", expired_cookie.as_bytes())],
            &[("authorization", expired_bearer.as_bytes())],
        ];
        for headers in cases {
            for (method, path) in [(Method::GET, "/healthz"), (Method::POST, "/auth/login")] {
                let r = fx.send(raw(method, path, headers)).await;
                assert_anonymous(&r);
            }
        }
    }
}

#[tokio::test]
async fn a_valid_credential_on_a_public_path_resolves_its_actor() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get("/healthz", &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

// ---------------------------------------------------------------------------------------------
// The request itself, the service's reuse, a custom key prefix
// ---------------------------------------------------------------------------------------------

fn with_body(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(Full::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn the_request_reaches_the_inner_service_intact() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    // Through the asynchronous path (a credential) and the synchronous one (none, public).
    let r = fx
        .send(with_body(
            Method::PUT,
            "/api/v1/memories/m1?x=1",
            &[("authorization", &bearer(&token)), ("x-probe", "p1")],
            "hello body",
        ))
        .await;
    let echoed = assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    assert_eq!(
        echoed["request"],
        json!({"method": "PUT", "path": "/api/v1/memories/m1", "probe": "p1",
               "body": "hello body", "renderer_in_extensions": false})
    );
    let r = fx
        .send(with_body(
            Method::POST,
            "/auth/login",
            &[("x-probe", "p2")],
            "{\"email\":\"a\"}",
        ))
        .await;
    assert_anonymous(&r);
    assert_eq!(r.json()["request"]["body"], "{\"email\":\"a\"}");
    assert_eq!(r.json()["request"]["probe"], "p2");
}

#[tokio::test]
async fn a_custom_renderer_is_handed_to_the_inner_service_the_default_one_is_not() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let h = bearer(&token);
    let r = send_with(
        custom_layer(&fx.auth),
        get(PRIVATE, &[("authorization", &h)]),
    )
    .await;
    assert_eq!(r.json()["request"]["renderer_in_extensions"], true);
    let r = send_with(fx.layer(), get(PRIVATE, &[("authorization", &h)])).await;
    assert_eq!(r.json()["request"]["renderer_in_extensions"], false);
}

#[tokio::test]
async fn one_service_serves_many_requests_in_any_order() {
    use tower::Service;
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let (key, key_id) = fx.user_key("u-bob").await;
    let mut svc = ServiceBuilder::new()
        .layer(fx.layer())
        .service(service_fn(echo));
    let h = bearer(&token);
    let requests = [
        (get(PRIVATE, &[("authorization", &h)]), Some("u-alice")),
        (get(PRIVATE, &[]), None),
        (get(PRIVATE, &[("x-api-key", &key)]), Some(key_id.as_str())),
        (get("/healthz", &[]), None),
        (get(PRIVATE, &[("authorization", "Bearer bad")]), None),
        (get(PRIVATE, &[("authorization", &h)]), Some("u-alice")),
    ];
    let mut futures = Vec::new();
    for (req, _) in &requests {
        let req = Request::builder()
            .uri(req.uri().clone())
            .body(Full::default())
            .map(|mut r| {
                *r.headers_mut() = req.headers().clone();
                r
            })
            .unwrap();
        futures.push(svc.ready().await.unwrap().call(req));
    }
    // Awaited in reverse: each future owns what it needs.
    let mut statuses = Vec::new();
    for fut in futures.into_iter().rev() {
        let res = fut.await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].clone();
        statuses.push((status.as_u16(), id));
    }
    statuses.reverse();
    let ids: Vec<Option<&str>> = requests.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        statuses.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [200, 401, 200, 200, 401, 200]
    );
    for ((status, id), expected) in statuses.iter().zip(ids) {
        if *status == 200 {
            assert_eq!(id.as_str(), expected);
        }
    }
}

#[tokio::test]
async fn a_custom_api_key_prefix_decides_what_a_bearer_is() {
    let prefix = ApiKeyPrefix::new("acme").unwrap();
    let fx = Fx::with_config(config().api_key_prefix(prefix.clone()));
    let generated = api_key::generate(&prefix);
    let id = ApiKeyId::random();
    fx.auth
        .stores()
        .api_keys
        .insert(ApiKeyRecord {
            id: id.clone(),
            name: "acme key".into(),
            hash: generated.hash,
            display_prefix: generated.display_prefix.clone(),
            created_by: UserId::from("u-alice").into(),
            owner: KeyOwner::User(UserId::from("u-alice")),
            org_id: OrgId::from(ORG),
            permissions: seed::MEMORY_ALL,
            created_at: T0,
            expires_at: None,
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let key = generated.key.expose();
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(key))]))
        .await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
    let r = fx.send(get(PRIVATE, &[("x-api-key", key)])).await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
    // A default-prefix key is now just a (bad) JWT as a bearer, and a bad key in X-API-Key.
    let ck = api_key::generate(&ApiKeyPrefix::default());
    let r = fx
        .send(get(PRIVATE, &[("authorization", &bearer(ck.key.expose()))]))
        .await;
    assert_401(&r, "invalid_token");
    let r = fx
        .send(get(PRIVATE, &[("x-api-key", ck.key.expose())]))
        .await;
    assert_401(&r, "invalid_api_key");
}

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

const CSRF: &str = "csrf-token-value-0123456789";

fn cookies(token: &str, csrf: &str) -> String {
    format!("{}; portcullis_csrf={csrf}", access_cookie(token))
}

#[track_caller]
fn assert_csrf_failed(r: &Reply) {
    let doc = assert_problem(r, 403, "csrf_failed", None);
    assert_eq!(doc["title"], "Forbidden");
}

#[tokio::test]
async fn a_cookie_post_without_x_csrf_token_is_csrf_failed() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(post(PRIVATE, &[("cookie", &cookies(&token, CSRF))]))
        .await;
    assert_csrf_failed(&r);
    // Without the CSRF cookie either.
    let r = fx
        .send(post(PRIVATE, &[("cookie", &access_cookie(&token))]))
        .await;
    assert_csrf_failed(&r);
}

#[tokio::test]
async fn a_cookie_already_resolved_still_needs_the_csrf_token_on_a_post() {
    // The second request is decided from the resolved-credential cache, in `call`.
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let ok = [
        ("cookie", cookies(&token, CSRF)),
        ("x-csrf-token", CSRF.to_owned()),
    ];
    let ok: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = fx.send(post(PRIVATE, &ok)).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    assert!(fx.auth.resolve_cached(Credential::Cookie(&token)).is_some());
    let r = fx
        .send(post(PRIVATE, &[("cookie", &cookies(&token, CSRF))]))
        .await;
    assert_csrf_failed(&r);
    let r = fx
        .send(get(PRIVATE, &[("cookie", &access_cookie(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn a_cookie_post_with_a_wrong_x_csrf_token_is_csrf_failed() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let c = cookies(&token, CSRF);
    for wrong in [
        "wrong",
        "csrf-token-value-012345678",
        "csrf-token-value-01234567890",
        " ",
    ] {
        let r = fx
            .send(post(PRIVATE, &[("cookie", &c), ("x-csrf-token", wrong)]))
            .await;
        assert_csrf_failed(&r);
    }
    // A header with no CSRF cookie to compare against.
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &access_cookie(&token)), ("x-csrf-token", CSRF)],
        ))
        .await;
    assert_csrf_failed(&r);
    // Empty on both sides is not a match.
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &cookies(&token, "")), ("x-csrf-token", "")],
        ))
        .await;
    assert_csrf_failed(&r);
    // Non-ASCII bytes in the header.
    let r = fx
        .send(raw(
            Method::POST,
            PRIVATE,
            &[("cookie", c.as_bytes()), ("x-csrf-token", b"\xffcsrf")],
        ))
        .await;
    assert_csrf_failed(&r);
    // Two X-CSRF-Token headers, one of them right.
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("cookie", &c),
                ("x-csrf-token", CSRF),
                ("x-csrf-token", "x"),
            ],
        ))
        .await;
    assert_csrf_failed(&r);
}

#[tokio::test]
async fn a_cookie_post_with_the_matching_x_csrf_token_passes() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &cookies(&token, CSRF)), ("x-csrf-token", CSRF)],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    // The CSRF cookie may come in its own Cookie header (HTTP/2 splits them).
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("cookie", &access_cookie(&token)),
                ("cookie", &format!("portcullis_csrf={CSRF}")),
                ("x-csrf-token", CSRF),
            ],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn every_unsafe_method_needs_csrf_under_cookie_auth() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let c = cookies(&token, CSRF);
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = fx
            .send(req(method.clone(), PRIVATE, &[("cookie", &c)]))
            .await;
        assert_csrf_failed(&r);
        let r = fx
            .send(req(
                method,
                PRIVATE,
                &[("cookie", &c), ("x-csrf-token", CSRF)],
            ))
            .await;
        assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    }
}

#[tokio::test]
async fn safe_methods_under_cookie_auth_need_no_csrf() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let r = fx
            .send(req(method, PRIVATE, &[("cookie", &access_cookie(&token))]))
            .await;
        assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    }
}

#[tokio::test]
async fn bearer_and_api_key_posts_are_exempt_from_csrf() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx
        .send(post(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    let r = fx.send(post(PRIVATE, &[("x-api-key", &key)])).await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
    let r = fx
        .send(post(PRIVATE, &[("authorization", &bearer(&key))]))
        .await;
    assert_actor(&r, "api_key", Some(id.as_str()), Some("api_key"));
    // A bearer decides even with the same user's cookie alongside.
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("authorization", &bearer(&token)),
                ("cookie", &access_cookie(&token)),
            ],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_bad_cookie_on_an_unsafe_request_is_401_not_403() {
    let fx = Fx::new();
    let r = fx
        .send(post(PRIVATE, &[("cookie", "portcullis_access=a.b.c")]))
        .await;
    assert_401(&r, "invalid_token");
}

// ---------------------------------------------------------------------------------------------
// A custom renderer
// ---------------------------------------------------------------------------------------------

fn custom_layer(auth: &Authenticator) -> AuthLayer {
    AuthLayer::new(auth.clone()).with_renderer(Renderer::default().with_body(|_err, problem| {
        (
            HeaderValue::from_static("text/plain; charset=utf-8"),
            Bytes::from(format!(
                "denied {} {}",
                problem.status.as_u16(),
                problem.code
            )),
        )
    }))
}

#[tokio::test]
async fn a_custom_body_keeps_status_and_www_authenticate() {
    let fx = Fx::new();
    let layer = custom_layer(&fx.auth);

    let r = send_with(layer.clone(), get(PRIVATE, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "denied 401 missing_credentials");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("www-authenticate"), Some(BARE_CHALLENGE));

    let r = send_with(
        layer.clone(),
        get(PRIVATE, &[("authorization", "Bearer x.y.z")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "denied 401 invalid_token");
    assert_eq!(r.header("www-authenticate"), Some(INVALID_TOKEN_CHALLENGE));

    let (_, token) = fx.login("u-alice").await;
    let r = send_with(
        layer.clone(),
        post(PRIVATE, &[("cookie", &access_cookie(&token))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "denied 403 csrf_failed");
    assert_eq!(r.header("www-authenticate"), None);

    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(1);
        })
        .await;
    send_with(layer.clone(), get(PRIVATE, &[("x-api-key", &key)])).await;
    let r = send_with(layer.clone(), get(PRIVATE, &[("x-api-key", &key)])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text(), "denied 429 rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-limit"), Some("1"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert!(r.header("ratelimit-reset").is_some());

    // Success is untouched.
    let r = send_with(layer, get(PRIVATE, &[("authorization", &bearer(&token))])).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_custom_body_keeps_the_503_retry_after() {
    let fx = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
    let minted = fx.access("u-alice", &SessionId::random());
    let r = send_with(
        custom_layer(&fx.auth),
        get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text(), "denied 503 auth_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

// ---------------------------------------------------------------------------------------------
// Malformed input: 4xx with the right code, never 5xx
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicated_authorization_headers_are_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let good = bearer(&token);
    // Even two copies of the same valid token.
    for second in [good.as_str(), "Bearer other", "Basic dXNlcjpwYXNz"] {
        let r = fx
            .send(get(
                PRIVATE,
                &[("authorization", &good), ("authorization", second)],
            ))
            .await;
        assert_401(&r, "invalid_token");
    }
}

#[tokio::test]
async fn duplicated_x_api_key_headers_are_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let r = fx
        .send(get(PRIVATE, &[("x-api-key", &key), ("x-api-key", &key)]))
        .await;
    assert_401(&r, "invalid_api_key");
}

#[tokio::test]
async fn two_different_access_cookies_are_invalid_token() {
    let fx = Fx::new();
    let (_, one) = fx.login("u-alice").await;
    let (_, two) = fx.login("u-alice").await;
    let r = fx
        .send(get(
            PRIVATE,
            &[(
                "cookie",
                &format!("{}; {}", access_cookie(&one), access_cookie(&two)),
            )],
        ))
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn malformed_bearer_values_are_invalid_token() {
    let fx = Fx::new();
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer a b",
        "Bearer a.b.c d",
    ] {
        let r = fx.send(get(PRIVATE, &[("authorization", value)])).await;
        assert_401(&r, "invalid_token");
    }
    // An empty Authorization header is a credential presented, and unreadable.
    let r = fx.send(get(PRIVATE, &[("authorization", "")])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(INVALID_TOKEN_CHALLENGE));
}

#[tokio::test]
async fn a_60_000_byte_credential_is_a_4xx_never_a_5xx() {
    let fx = Fx::new();
    let big = "a".repeat(60_000);
    let third = "a".repeat(20_000);
    let big_jwt = format!("{third}.{third}.{third}");
    let big_key = format!("ck_{big}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("authorization", bearer(&big), "invalid_token"),
        ("authorization", bearer(&big_jwt), "invalid_token"),
        ("authorization", bearer(&big_key), "invalid_api_key"),
        (
            "authorization",
            format!("Basic {big}"),
            "invalid_credentials",
        ),
        ("x-api-key", big_key.clone(), "invalid_api_key"),
        ("x-api-key", big.clone(), "invalid_api_key"),
        ("cookie", access_cookie(&big), "invalid_token"),
    ];
    for (name, value, code) in cases {
        assert!(value.len() >= 60_000);
        let r = fx.send(get(PRIVATE, &[(name, &value)])).await;
        assert_401(&r, code);
        // The refusal does not echo the input back.
        assert!(r.body.len() < 1_000, "{} bytes", r.body.len());
    }
}

#[tokio::test]
async fn non_ascii_header_bytes_are_a_4xx_with_the_right_code() {
    let fx = Fx::new();
    let cases: [(&str, &[u8], &str); 5] = [
        ("authorization", b"Bearer \xff\xfe\xfd", "invalid_token"),
        ("authorization", b"Bearer caf\xc3\xa9.x.y", "invalid_token"),
        ("authorization", b"\xffBearer abc", "invalid_token"),
        ("x-api-key", b"ck_\xff\xfe", "invalid_api_key"),
        ("x-api-key", b"\x80", "invalid_api_key"),
    ];
    for (name, value, code) in cases {
        let r = fx.send(raw(Method::GET, PRIVATE, &[(name, value)])).await;
        assert_401(&r, code);
    }
    // An access cookie whose value is not ASCII is presented but unreadable (never absent);
    // other applications' non-ASCII cookies are no credential, and a readable access cookie
    // beside them still counts.
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[("cookie", b"portcullis_access=\xff.a.b")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    let r = fx
        .send(raw(Method::GET, PRIVATE, &[("cookie", b"junk=\xff")]))
        .await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    let (_, token) = fx.login("u-alice").await;
    let good = access_cookie(&token);
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[("cookie", b"junk=\xff"), ("cookie", good.as_bytes())],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

mod any_header_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever bytes arrive in the three credential headers, on any method, the answer is
        /// a 4xx problem (nothing there can be a valid credential), never a 5xx or a panic.
        #[test]
        fn never_a_5xx(
            auth in proptest::collection::vec(any::<u8>(), 0..300),
            key in proptest::collection::vec(any::<u8>(), 0..300),
            cookie in proptest::collection::vec(any::<u8>(), 0..300),
            bearer_prefix in any::<bool>(),
            post in any::<bool>(),
        ) {
            let fx = Fx::new();
            let mut auth = auth;
            if bearer_prefix {
                auth.splice(0..0, b"Bearer ".iter().copied());
            }
            let mut headers: Vec<(&str, &[u8])> = Vec::new();
            for (name, value) in [("authorization", &auth), ("x-api-key", &key), ("cookie", &cookie)] {
                if HeaderValue::from_bytes(value).is_ok() {
                    headers.push((name, value.as_slice()));
                }
            }
            let method = if post { Method::POST } else { Method::GET };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let r = rt.block_on(fx.send(raw(method, PRIVATE, &headers)));
            prop_assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
            prop_assert_eq!(r.header("content-type"), Some("application/problem+json"));
            let public = rt.block_on(fx.send(raw(Method::GET, "/healthz", &headers)));
            prop_assert_eq!(public.status, StatusCode::OK);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn decisions_are_logged_with_outcomes_and_actors_but_never_a_credential() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("portcullis=debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let (token, key, key_id, bad_token, run, broken_token) =
        tracing::subscriber::with_default(subscriber, || {
            rt.block_on(async {
                let fx = Fx::new();
                // Register both decision callsites before the real requests.
                fx.send_logged(get(PRIVATE, &[])).await;
                fx.send_logged(get("/healthz", &[])).await;
                let (_, token) = fx.login("u-alice").await;
                let (key, key_id) = fx.user_key("u-bob").await;
                fx.agent("agent-7").await;
                let run = fx
                    .run_token("agent-7", ORG, "run-42")
                    .token
                    .expose()
                    .to_owned();
                // A real token with a broken signature: looks like a credential in every way.
                let sig = token.rfind('.').unwrap() + 1;
                let bad_token = format!("{}{}", &token[..sig], "A".repeat(token.len() - sig));

                assert_actor(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&token))]))
                        .await,
                    "user",
                    Some("u-alice"),
                    Some("jwt"),
                );
                assert_actor(
                    &fx.send_logged(get(PRIVATE, &[("x-api-key", &key)])).await,
                    "api_key",
                    Some(key_id.as_str()),
                    Some("api_key"),
                );
                assert_actor(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&run))]))
                        .await,
                    "agent",
                    Some("agent-7"),
                    Some("jwt"),
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&bad_token))]))
                        .await,
                    "invalid_token",
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("cookie", &access_cookie(&bad_token))]))
                        .await,
                    "invalid_token",
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("authorization", "Basic dXNlcjpodW50ZXIy")]))
                        .await,
                    "invalid_credentials",
                );
                assert_problem(
                    &fx.send_logged(get(PRIVATE, &[])).await,
                    401,
                    "missing_credentials",
                    Some(BARE_CHALLENGE),
                );

                // A store failure: its message must not be logged either.
                let broken = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
                let broken_token = broken
                    .access("u-carol", &SessionId::random())
                    .token
                    .expose()
                    .to_owned();
                assert_503(
                    &broken
                        .send_logged(get(PRIVATE, &[("authorization", &bearer(&broken_token))]))
                        .await,
                );
                (token, key, key_id, bad_token, run, broken_token)
            })
        });

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // Outcomes, credential kinds and actors are there.
    for expected in [
        "auth decision",
        "allow",
        "u-alice",
        key_id.as_str(),
        "agent-7",
        "invalid_token",
        "invalid_credentials",
        "missing_credentials",
        "auth_unavailable",
        "bearer",
        "api_key",
        "cookie",
    ] {
        assert!(logs.contains(expected), "log lacks {expected:?}:\n{logs}");
    }
    // Credentials, their parts and secrets are not.
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    let payload = |t: &str| t.split('.').nth(1).unwrap().to_owned();
    for secret in [
        token.as_str(),
        &signature(&token),
        &payload(&token),
        key.as_str(),
        &key[11..],
        bad_token.as_str(),
        &signature(&bad_token),
        run.as_str(),
        &signature(&run),
        broken_token.as_str(),
        "dXNlcjpodW50ZXIy",
        "hunter2",
        STORE_MESSAGE,
        USER_SECRET,
        AGENT_SECRET,
    ] {
        assert!(
            !logs.contains(secret),
            "log contains a secret {secret:?}:\n{logs}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The layer's builder: policy, names and realm
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_default_layer_has_no_public_path_every_path_is_401_missing_credentials() {
    let fx = Fx::new();
    for path in PUBLIC_PATHS {
        let r = send_with(AuthLayer::new(fx.auth.clone()), get(path, &[])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

#[tokio::test]
async fn a_custom_realm_names_every_401_challenge() {
    let fx = Fx::new();
    let layer = AuthLayer::builder(fx.auth.clone())
        .realm("acme api")
        .build()
        .unwrap();
    let r = send_with(layer.clone(), get(PRIVATE, &[])).await;
    assert_problem(
        &r,
        401,
        "missing_credentials",
        Some(r#"Bearer realm="acme api""#),
    );
    let r = send_with(layer, get(PRIVATE, &[("authorization", "Bearer x.y.z")])).await;
    assert_problem(
        &r,
        401,
        "invalid_token",
        Some(r#"Bearer realm="acme api", error="invalid_token""#),
    );
}

#[tokio::test]
async fn custom_api_key_header_and_access_cookie_are_read_and_the_default_names_are_not() {
    let fx = Fx::new();
    let layer = AuthLayer::builder(fx.auth.clone())
        .api_key_header("x-acme-key")
        .access_cookie("acme_at")
        .build()
        .unwrap();
    let (key, key_id) = fx.user_key("u-alice").await;
    let r = send_with(layer.clone(), get(PRIVATE, &[("x-acme-key", &key)])).await;
    assert_actor(&r, "api_key", Some(key_id.as_str()), Some("api_key"));
    let (_, token) = fx.login("u-alice").await;
    let cookie = format!("acme_at={token}");
    let r = send_with(layer.clone(), get(PRIVATE, &[("cookie", &cookie)])).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    // The contract's names are no credential for this layer: nothing was presented.
    for header in [
        ("x-api-key", key.as_str()),
        ("cookie", &access_cookie(&token)),
    ] {
        let r = send_with(layer.clone(), get(PRIVATE, &[header])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
    // A bad value under the custom name is presented: 401 invalid_api_key.
    let r = send_with(layer, get(PRIVATE, &[("x-acme-key", "ck_typo")])).await;
    assert_401(&r, "invalid_api_key");
}

#[test]
fn the_builder_refuses_names_and_realms_http_cannot_carry() {
    let fx = Fx::new();
    let build =
        |f: fn(portcullis_tower::AuthLayerBuilder) -> portcullis_tower::AuthLayerBuilder| {
            f(AuthLayer::builder(fx.auth.clone())).build().map(|_| ())
        };
    let setting = |e: Result<(), portcullis_tower::PolicyError>| match e {
        Err(portcullis_tower::PolicyError::Setting { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        setting(build(|b| b.api_key_header("x api key"))),
        "api_key_header"
    );
    assert_eq!(
        setting(build(|b| b.api_key_header("authorization"))),
        "api_key_header"
    );
    assert_eq!(setting(build(|b| b.access_cookie("a=b"))), "access_cookie");
    assert_eq!(setting(build(|b| b.access_cookie(""))), "access_cookie");
    assert_eq!(setting(build(|b| b.realm("a\"b"))), "realm");
    assert_eq!(setting(build(|b| b.realm("caf\u{e9}"))), "realm");
    assert!(build(|b| b.realm("acme api").access_cookie("__Host-at")).is_ok());
}

#[test]
fn the_builder_refuses_board_fallback_with_a_production_authenticator() {
    let auth = Authenticator::builder()
        .config(
            config()
                .env(portcullis_core::AuthEnv::Production)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = AuthLayer::builder(auth.clone())
        .fallback(Fallback::Board)
        .build()
        .unwrap_err();
    assert_eq!(err, portcullis_tower::PolicyError::FallbackInProduction);
    assert!(AuthLayer::builder(auth).build().is_ok());
}
