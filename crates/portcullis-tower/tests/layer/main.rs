//! The `AuthLayer` end to end through `oneshot`: every way a request resolves to an actor,
//! every refusal with its status, `code` and headers, fallback, public paths, CSRF, a custom
//! renderer, malformed input, store failures and what the decision log may contain.
//!
//! State is set up through the core API (stores, token minting) and time moves on a
//! `ManualClock`, never by sleeping.
//!
//! One test binary, one module per concern (a binary per concern would link the crate
//! again for each): this file holds the fixture, the assertions and the failing stores that
//! several concerns share; each module below brings its own tests and the helpers only it
//! uses.

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
use portcullis_core::testing;
use portcullis_core::token::{AccessGrant, AgentGrant, MintedToken, SigningKey};
use portcullis_core::{
    Actor, AuthConfig, AuthConfigBuilder, Authenticator, Clock, Credential, ManualClock,
    RateLimitInfo, Secret, StoreError, UnixTime,
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

    /// `GET PRIVATE` with `headers`.
    async fn get_private(&self, headers: &[(&str, &str)]) -> Reply {
        self.send(get(PRIVATE, headers)).await
    }

    /// `GET PRIVATE` with `Authorization: Bearer <token>`.
    async fn get_with_bearer(&self, token: &str) -> Reply {
        self.get_private(&[("authorization", &bearer(token))]).await
    }

    /// `GET PRIVATE` with `X-API-Key: <key>`.
    async fn get_with_api_key(&self, key: &str) -> Reply {
        self.get_private(&[("x-api-key", key)]).await
    }

    /// `key` sent both ways a key may come: as `X-API-Key`, then as `Authorization: Bearer`.
    async fn get_with_key_both_ways(&self, key: &str) -> [Reply; 2] {
        [
            self.get_with_api_key(key).await,
            self.get_with_bearer(key).await,
        ]
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
            name: "test key".into(),
            created_by: UserId::from("u-creator").into(),
            owner,
            org_id: OrgId::from(ORG),
            created_at: self.now(),
            ..testing::api_key_record(id.clone(), generated.hash)
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
/// The request went through as the API key `id`, presented as an API key.
fn assert_api_key_actor(r: &Reply, id: &str) -> Value {
    assert_actor(r, "api_key", Some(id), Some("api_key"))
}

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

mod credential_refusals;
mod credentials;
mod csrf;
mod failures;
mod fallback;
mod logging;
mod malformed;
mod metrics;
mod service;
