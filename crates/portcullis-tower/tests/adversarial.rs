//! The adversarial suite of the `AuthLayer` (issue 7, point 1), through `oneshot`: no network.
//!
//! Every group is one table of named cases. A case is a description, the request headers (built
//! by a closure from a fixture that holds the secrets, keys and valid tokens) and what must come
//! back: the exact status, problem `code` and `WWW-Authenticate` challenge of a refusal, or the
//! actor of an acceptance (the controls that prove a refusal is caused by the defect under test,
//! not by something else). No case may produce a 5xx, and no refusal may echo the credential.
//! Each group runs its whole table and then reports every failing case at once.
//!
//! Tokens are forged by hand (base64url JSON, HMAC-SHA256 built on the crate's SHA-256) so that
//! each forged token differs from a valid one in exactly the defect its case names; a control
//! in each table shows the same forging with no defect is accepted.

// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_core::api_key::{self, ApiKeyPrefix, ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{AgentRecord, AgentStatus, Stores};
use portcullis_core::token::{
    AccessGrant, AgentGrant, JwtAlgorithm, KeyRing, SigningKey, TokenPolicy, UserTokenTtl,
    UserTokens, VerifyingKey,
};
use portcullis_core::{Actor, AuthConfig, Authenticator, ManualClock, Secret, UnixTime, seed};
use portcullis_tower::{AuthLayer, Fallback};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt, service_fn};

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// The fixed time of every fixture's clock.
const T0: UnixTime = 1_700_000_000;
const USER_SECRET: &str = "adversarial-user-jwt-secret-0123456789abcdef";
const AGENT_SECRET: &str = "adversarial-agent-jwt-secret-0123456789abcdef";
const ORG: &str = "acme";
const OTHER_ORG: &str = "globex";
const LEEWAY: u64 = 30;
/// A protected path (not public by default).
const PRIVATE: &str = "/api/v1/sessions";

const BARE_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// Unit-test keys of portcullis-core (they protect nothing).
const RS_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pem");
const RS_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/eddsa.pem");
const ED_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/eddsa.pub.pem");
const ES_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/es256.pem");
const ES_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/es256.pub.pem");

// ---------------------------------------------------------------------------------------------
// base64url, HMAC-SHA256 and JWS by hand
// ---------------------------------------------------------------------------------------------

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
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn unb64url(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104) on the crate's SHA-256.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&KeyHash::of(key).0);
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&KeyHash::of(&inner).0);
    KeyHash::of(&outer).0
}

/// `header_segment.b64(claims).HMAC(secret)`.
fn sign_seg(header_segment: &str, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{header_segment}.{}", b64url(claims.to_string().as_bytes()));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// A compact JWS of `header` and `claims`, HMAC-SHA256-signed with `secret`.
fn sign(header: &Value, claims: &Value, secret: &[u8]) -> String {
    sign_seg(&b64url(header.to_string().as_bytes()), claims, secret)
}

/// A JWS of raw JSON texts (to send what `serde_json::Value` cannot hold, such as a duplicate
/// member), HMAC-SHA256-signed with `secret`.
fn sign_raw(header: &[u8], claims: &[u8], secret: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(claims));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// A JWS with an empty signature (what `alg: none` tokens carry).
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

fn seg(token: &str, i: usize) -> &str {
    token.split('.').nth(i).unwrap()
}

fn segments(token: &str) -> [&str; 3] {
    [seg(token, 0), seg(token, 1), seg(token, 2)]
}

/// `token`'s header, decoded.
fn header_of(token: &str) -> Value {
    serde_json::from_slice(&unb64url(seg(token, 0))).unwrap()
}

/// `s` with the base64url character at byte `i` replaced by another one.
fn flip_at(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// CRC-32 (IEEE), as `crc32fast` computes it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `body` (`ck_` and 43 random characters) with its API key checksum: six base62 digits of
/// its CRC-32. A key forged this way passes every check but the store lookup.
fn with_checksum(body: &str) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32(body.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&sum).unwrap())
}

fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().unwrap().remove(name);
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// The algorithm of the user key ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ring {
    Hs256,
    Rs256,
    EdDsa,
    Es256,
}

impl Ring {
    fn alg(self) -> JwtAlgorithm {
        match self {
            Self::Hs256 => JwtAlgorithm::Hs256,
            Self::Rs256 => JwtAlgorithm::Rs256,
            Self::EdDsa => JwtAlgorithm::EdDsa,
            Self::Es256 => JwtAlgorithm::Es256,
        }
    }

    fn pems(self) -> Option<(&'static [u8], &'static [u8])> {
        match self {
            Self::Hs256 => None,
            Self::Rs256 => Some((RS_PRIV, RS_PUB)),
            Self::EdDsa => Some((ED_PRIV, ED_PUB)),
            Self::Es256 => Some((ES_PRIV, ES_PUB)),
        }
    }
}

/// An authenticator on a stopped clock with two users, two agents (in two orgs), their keys and
/// valid tokens.
struct Fx {
    auth: Authenticator,
    /// The layer's fallback.
    fallback: Fallback,
    ring: Ring,
    user_kid: String,
    agent_kid: String,
    alice_sid: SessionId,
    /// u-alice's access token (role `user`, org [`ORG`]).
    alice: String,
    /// u-bob's access token.
    bob: String,
    /// u-alice's refresh token, same session.
    refresh: String,
    /// u-alice's API key (id `key-alice`).
    alice_key: String,
    /// u-bob's API key (id `key-bob`).
    bob_key: String,
    /// agent-7's own API key (id `key-agent-7`).
    agent_key: String,
    /// agent-7's run token (org [`ORG`]).
    run: String,
    /// agent-8's run token (org [`OTHER_ORG`]).
    run8: String,
}

impl Fx {
    async fn new(ring: Ring, fallback: Fallback) -> Self {
        let mut config = AuthConfig::builder()
            .jwt_secret(Secret::from(USER_SECRET))
            .agent_secret(Secret::from(AGENT_SECRET));
        if let Some((private, _)) = ring.pems() {
            config =
                config.jwt_signing_key(SigningKey::from_private_pem(ring.alg(), private).unwrap());
        }
        let auth = Authenticator::builder()
            .config(config.build().unwrap())
            .clock(Arc::new(ManualClock::new(T0)))
            .stores(Stores::memory())
            .build()
            .unwrap();
        let user_kid = auth.user_tokens().key_ring().active().kid().to_owned();
        let agent_kid = auth.agent_tokens().key_ring().active().kid().to_owned();
        if let Some((_, public)) = ring.pems() {
            // The public PEM the confusion cases use really is the ring's key.
            let public = VerifyingKey::from_public_pem(ring.alg(), public).unwrap();
            assert_eq!(public.kid(), user_kid, "{ring:?} test keys do not match");
        }
        let stores = auth.stores().clone();
        let mut sids = Vec::new();
        for user in ["u-alice", "u-bob"] {
            let sid = SessionId::random();
            let record = SessionRecord::new(
                sid.clone(),
                UserId::from(user),
                OrgId::from(ORG),
                KeyHash::of(user.as_bytes()),
                T0,
                7 * 24 * 3600,
                false,
            );
            stores.sessions.create(record).await.unwrap();
            sids.push(sid);
        }
        let access = |user: &str, sid: &SessionId| {
            auth.user_tokens()
                .mint_access(AccessGrant {
                    user_id: &UserId::from(user),
                    email: &format!("{user}@example.com"),
                    role: "user",
                    org_id: &OrgId::from(ORG),
                    session_id: sid,
                })
                .unwrap()
                .token
                .expose()
                .to_owned()
        };
        let alice = access("u-alice", &sids[0]);
        let bob = access("u-bob", &sids[1]);
        let refresh = auth
            .user_tokens()
            .mint_refresh(&UserId::from("u-alice"), &sids[0], false)
            .unwrap()
            .token
            .expose()
            .to_owned();
        for (agent, org) in [("agent-7", ORG), ("agent-8", OTHER_ORG)] {
            let record = AgentRecord {
                id: AgentId::from(agent),
                org_id: OrgId::from(org),
                name: format!("{agent} the agent"),
                status: AgentStatus::Active,
                created_at: T0,
            };
            stores.agents.insert(record).await.unwrap();
        }
        let run_token = |agent: &str, company: &str, run: &str| {
            auth.agent_tokens()
                .mint(AgentGrant {
                    agent_id: &AgentId::from(agent),
                    company_id: &OrgId::from(company),
                    adapter_type: "claude",
                    run_id: &RunId::from(run),
                })
                .unwrap()
                .token
                .expose()
                .to_owned()
        };
        let run = run_token("agent-7", ORG, "run-7");
        let run8 = run_token("agent-8", OTHER_ORG, "run-8");
        let mut keys = Vec::new();
        for (id, owner) in [
            ("key-alice", KeyOwner::User(UserId::from("u-alice"))),
            ("key-bob", KeyOwner::User(UserId::from("u-bob"))),
            ("key-agent-7", KeyOwner::Agent(AgentId::from("agent-7"))),
        ] {
            let generated = api_key::generate(&ApiKeyPrefix::default());
            let record = ApiKeyRecord {
                id: ApiKeyId::from(id),
                name: id.to_owned(),
                hash: generated.hash,
                display_prefix: generated.display_prefix.clone(),
                created_by: UserId::from("u-alice").into(),
                owner,
                org_id: OrgId::from(ORG),
                permissions: seed::MEMORY_ALL,
                created_at: T0,
                expires_at: None,
                enabled: true,
                rate_limit_per_minute: None,
                last_used_at: None,
            };
            stores.api_keys.insert(record).await.unwrap();
            keys.push(generated.key.expose().to_owned());
        }
        let fx = Self {
            auth,
            fallback,
            ring,
            user_kid,
            agent_kid,
            alice_sid: sids[0].clone(),
            alice,
            bob,
            refresh,
            alice_key: keys[0].clone(),
            bob_key: keys[1].clone(),
            agent_key: keys[2].clone(),
            run,
            run8,
        };
        // The hand-made HMAC signs exactly as the library does.
        let [h, p, s] = segments(&fx.run);
        assert_eq!(
            b64url(&hmac_sha256(
                AGENT_SECRET.as_bytes(),
                format!("{h}.{p}").as_bytes()
            )),
            s
        );
        // So does the hand-made API key checksum.
        assert_eq!(with_checksum(&fx.alice_key[..46]), fx.alice_key);
        if ring == Ring::Hs256 {
            let [h, p, s] = segments(&fx.alice);
            assert_eq!(
                b64url(&hmac_sha256(
                    USER_SECRET.as_bytes(),
                    format!("{h}.{p}").as_bytes()
                )),
                s
            );
        }
        fx
    }

    async fn hs256() -> Self {
        Self::new(Ring::Hs256, Fallback::None).await
    }

    /// The claims of a valid access token of u-alice.
    fn user_claims(&self) -> Value {
        json!({
            "sub": "u-alice", "email": "u-alice@example.com", "role": "user", "org_id": ORG,
            "type": "access", "sid": self.alice_sid.as_str(), "jti": "forged-user-jti",
            "iat": T0, "exp": T0 + 600, "iss": "portcullis", "aud": "portcullis-api",
        })
    }

    /// The claims of a valid run token of agent-7.
    fn agent_claims(&self) -> Value {
        json!({
            "sub": "agent-7", "company_id": ORG, "adapter_type": "claude", "run_id": "run-forged",
            "jti": "forged-agent-jti", "iat": T0, "exp": T0 + 3600,
            "iss": "portcullis", "aud": "portcullis-agents",
        })
    }

    fn user_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.user_kid})
    }

    fn agent_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.agent_kid})
    }

    /// A user access token with edited claims, under the header our signer writes, signed with
    /// the user secret (HS256 rings only).
    fn user_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.user_claims();
        edit(&mut claims);
        sign_seg(seg(&self.alice, 0), &claims, USER_SECRET.as_bytes())
    }

    /// An agent run token with edited claims, under the header our signer writes, signed with
    /// the agent secret.
    fn agent_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.agent_claims();
        edit(&mut claims);
        sign_seg(seg(&self.run, 0), &claims, AGENT_SECRET.as_bytes())
    }

    /// A user access token with an edited header and claims, signed with the user secret.
    fn user_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.user_header(), self.user_claims());
        edit(&mut header, &mut claims);
        sign(&header, &claims, USER_SECRET.as_bytes())
    }

    /// An agent run token with an edited header and claims, signed with the agent secret.
    fn agent_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.agent_header(), self.agent_claims());
        edit(&mut header, &mut claims);
        sign(&header, &claims, AGENT_SECRET.as_bytes())
    }

    async fn send(&self, headers: &[(String, Vec<u8>)]) -> Reply {
        // From a local client: board fallback is only for requests addressed to loopback.
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(PRIVATE)
            .header("host", "localhost");
        for (name, value) in headers {
            b = b.header(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let req = b.body(Full::default()).unwrap();
        let svc = ServiceBuilder::new()
            .layer(
                AuthLayer::builder(self.auth.clone())
                    .fallback(self.fallback)
                    .build()
                    .unwrap(),
            )
            .service(service_fn(echo));
        let (parts, body) = svc.oneshot(req).await.unwrap().into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}

/// The inner service: echoes the actor the layer resolved.
async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.extensions().get::<Actor>() {
        Some(actor) => json!({"kind": actor.kind().as_str(), "id": actor.id()}),
        None => json!({"kind": "no actor in extensions"}),
    };
    Ok(Response::new(Full::from(
        serde_json::to_vec(&body).unwrap(),
    )))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

// ---------------------------------------------------------------------------------------------
// Cases and the table runner
// ---------------------------------------------------------------------------------------------

type Headers = Vec<(String, Vec<u8>)>;
type Build = Box<dyn Fn(&Fx) -> Headers>;

/// Which `WWW-Authenticate` a 401 carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Challenge {
    /// `Bearer realm="portcullis"`: nothing was presented.
    Bare,
    /// `… error="invalid_token"`: a credential was presented.
    InvalidToken,
}

#[derive(Clone, Copy, Debug)]
enum Want {
    /// 200 from the inner service with this actor kind and id.
    Actor(&'static str, &'static str),
    /// A problem+json refusal.
    Problem(u16, &'static str, Challenge),
}

/// A 401 of a presented credential.
const fn no(code: &'static str) -> Want {
    Want::Problem(401, code, Challenge::InvalidToken)
}

const INVALID_TOKEN: Want = no("invalid_token");
const INVALID_API_KEY: Want = no("invalid_api_key");
const INVALID_CREDENTIALS: Want = no("invalid_credentials");
const WRONG_TOKEN_TYPE: Want = no("wrong_token_type");
const TOKEN_EXPIRED: Want = no("token_expired");
const TOKEN_REVOKED: Want = no("token_revoked");
const MISSING: Want = Want::Problem(401, "missing_credentials", Challenge::Bare);
const ALICE: Want = Want::Actor("user", "u-alice");
const AGENT_7: Want = Want::Actor("agent", "agent-7");
const ALICE_KEY: Want = Want::Actor("api_key", "key-alice");
const BOARD: Want = Want::Actor("board", "board");

struct Case {
    name: String,
    what: String,
    want: Want,
    build: Build,
}

#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    fn add(
        &mut self,
        name: impl Into<String>,
        what: impl Into<String>,
        want: Want,
        build: impl Fn(&Fx) -> Headers + 'static,
    ) {
        self.0.push(Case {
            name: name.into(),
            what: what.into(),
            want,
            build: Box::new(build),
        });
    }

    /// Appends `other`'s cases, their names prefixed with `group`.
    fn extend(&mut self, group: &str, other: Table) {
        self.0.extend(other.0.into_iter().map(|mut c| {
            c.name = format!("{group}: {}", c.name);
            c
        }));
    }
}

fn hv(name: &str, value: impl AsRef<[u8]>) -> (String, Vec<u8>) {
    (name.to_owned(), value.as_ref().to_vec())
}

fn bearer(token: impl AsRef<str>) -> Headers {
    vec![hv("authorization", format!("Bearer {}", token.as_ref()))]
}

fn x_api_key(key: impl AsRef<[u8]>) -> Headers {
    vec![hv("x-api-key", key)]
}

fn access_cookie(token: impl AsRef<str>) -> Headers {
    vec![hv(
        "cookie",
        format!("portcullis_access={}", token.as_ref()),
    )]
}

/// Runs every case of `table` against `fx`; the failures, one line each.
async fn run(group: &str, fx: &Fx, table: &Table) -> Vec<String> {
    let mut failures = Vec::new();
    let mut names = HashSet::new();
    for case in &table.0 {
        assert!(
            names.insert(case.name.as_str()),
            "{group}: duplicate case name {:?}",
            case.name
        );
        let headers = (case.build)(fx);
        let r = fx.send(&headers).await;
        if let Err(why) = check(&r, case.want, &headers) {
            let mut body = String::from_utf8_lossy(&r.body).into_owned();
            body.truncate(400);
            failures.push(format!(
                "[{group}] {} — {}\n    expected {:?}, got {} (WWW-Authenticate: {:?}): {why}\n    body: {body}",
                case.name,
                case.what,
                case.want,
                r.status,
                r.headers.get("www-authenticate"),
            ));
        }
    }
    println!(
        "{group}: {} cases, {} failed",
        table.0.len(),
        failures.len()
    );
    failures
}

/// Why `r` is not what `want` says, if it is not.
fn check(r: &Reply, want: Want, presented: &[(String, Vec<u8>)]) -> Result<(), String> {
    if r.status.is_server_error() {
        return Err("a 5xx".into());
    }
    let doc: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    let challenge = r
        .headers
        .get("www-authenticate")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match want {
        Want::Actor(kind, id) => {
            if r.status != StatusCode::OK {
                return Err("not a 200".into());
            }
            if doc["kind"] != kind || doc["id"] != id {
                return Err(format!("actor {doc}"));
            }
        }
        Want::Problem(status, code, expected_challenge) => {
            if r.status.as_u16() != status {
                return Err("wrong status".into());
            }
            let ct = r.headers.get("content-type").map(HeaderValue::as_bytes);
            if ct != Some(b"application/problem+json".as_slice()) {
                return Err(format!("content-type {ct:?}"));
            }
            if doc["code"] != code {
                return Err(format!("code {}", doc["code"]));
            }
            if doc["status"] != status {
                return Err(format!("status member {}", doc["status"]));
            }
            let expected = match expected_challenge {
                Challenge::Bare => BARE_CHALLENGE,
                Challenge::InvalidToken => INVALID_TOKEN_CHALLENGE,
            };
            if status == 401 && challenge.as_deref() != Some(expected) {
                return Err(format!("challenge {challenge:?}, expected {expected:?}"));
            }
            // A refusal never echoes what was presented.
            let body = String::from_utf8_lossy(&r.body);
            for (_, value) in presented {
                let value = String::from_utf8_lossy(value);
                for piece in value.split([' ', ';', '=', ',']) {
                    if piece.len() >= 16 && body.contains(piece) {
                        return Err("the body echoes the credential".into());
                    }
                }
            }
        }
    }
    Ok(())
}

#[track_caller]
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Builds the fixture, runs the table, asserts nothing failed.
async fn run_group(group: &str, table: Table) {
    let fx = Fx::hs256().await;
    assert_no_failures(&run(group, &fx, &table).await);
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

const NONE_CASINGS: [&str; 6] = ["none", "None", "NONE", "nOnE", "NoNe", "nONE"];

fn alg_none() -> Table {
    let mut t = Table::default();
    t.add(
        "control: the valid access token",
        "the token every forgery below starts from",
        ALICE,
        |fx| bearer(&fx.alice),
    );
    t.add(
        "control: hand-signed access token",
        "the forging machinery, no defect",
        ALICE,
        |fx| bearer(fx.user_forged(|_, _| {})),
    );
    for casing in NONE_CASINGS {
        t.add(
            format!("alg {casing:?}, empty signature"),
            "unsigned token: header.payload.",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT"}),
                    &fx.user_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?}, kid of the ring, empty signature"),
            "an unsigned token naming our key",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT", "kid": fx.user_kid}),
                    &fx.user_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?}, valid HMAC signature kept"),
            "a token that verifies under our key but declares alg none",
            INVALID_TOKEN,
            move |fx| {
                bearer(fx.user_forged(|h, _| {
                    h["alg"] = json!(casing);
                }))
            },
        );
        t.add(
            format!("alg {casing:?}, no signature segment"),
            "header.payload, two segments",
            INVALID_TOKEN,
            move |fx| {
                let token = unsigned(&json!({"alg": casing}), &fx.user_claims());
                bearer(token.trim_end_matches('.'))
            },
        );
        t.add(
            format!("alg {casing:?}, agent run token, empty signature"),
            "an unsigned agent token",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT", "kid": fx.agent_kid}),
                    &fx.agent_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?} in the access cookie"),
            "an unsigned token as the cookie",
            INVALID_TOKEN,
            move |fx| access_cookie(unsigned(&json!({"alg": casing}), &fx.user_claims())),
        );
    }
    for (name, alg) in [
        ("alg \"none \" (trailing space)", json!("none ")),
        ("alg \"\" (empty)", json!("")),
        ("alg null", Value::Null),
        ("alg 0", json!(0)),
        ("alg [\"none\"]", json!(["none"])),
    ] {
        t.add(
            name,
            "an alg that is none in disguise or no alg at all",
            INVALID_TOKEN,
            move |fx| {
                let alg = alg.clone();
                bearer(fx.user_forged(move |h, _| h["alg"] = alg))
            },
        );
    }
    t.add(
        "alg member missing",
        "a header without alg",
        INVALID_TOKEN,
        |fx| {
            bearer(fx.user_forged(|h, _| {
                h.as_object_mut().unwrap().remove("alg");
            }))
        },
    );
    t
}

/// HS256 ring: tokens claiming an asymmetric (or unsupported) algorithm.
fn confusion_against_hs256() -> Table {
    let mut t = Table::default();
    t.add("control: the valid HS256 token", "", ALICE, |fx| {
        bearer(&fx.alice)
    });
    for alg in ["RS256", "EdDSA", "ES256"] {
        t.add(
            format!("claims {alg}, HMAC-signed with the user secret, our kid"),
            "the right MAC under an algorithm the key does not have",
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(alg))),
        );
        t.add(
            format!("claims {alg}, HMAC-signed with the user secret, no kid"),
            "tried against the active (HS256) key, which refuses the algorithm",
            INVALID_TOKEN,
            move |fx| {
                bearer(fx.user_forged(|h, _| {
                    h["alg"] = json!(alg);
                    h.as_object_mut().unwrap().remove("kid");
                }))
            },
        );
    }
    for (alg, ring) in [
        ("RS256", Ring::Rs256),
        ("EdDSA", Ring::EdDsa),
        ("ES256", Ring::Es256),
    ] {
        t.add(
            format!("claims {alg}, really signed with a {alg} key, under our HS256 kid"),
            "a genuine asymmetric signature naming our HMAC key",
            INVALID_TOKEN,
            move |fx| {
                let (private, _) = ring.pems().unwrap();
                let key = SigningKey::from_private_pem(ring.alg(), private)
                    .unwrap()
                    .with_kid(&fx.user_kid);
                let forger = UserTokens::new(
                    KeyRing::new(key),
                    TokenPolicy {
                        issuer: "portcullis".into(),
                        audience: "portcullis-api".into(),
                        leeway_secs: LEEWAY,
                        max_token_bytes: 8192,
                    },
                    UserTokenTtl::default(),
                )
                .with_clock(Arc::new(ManualClock::new(T0)));
                let token = forger
                    .mint_access(AccessGrant {
                        user_id: &UserId::from("u-alice"),
                        email: "u-alice@example.com",
                        role: "user",
                        org_id: &OrgId::from(ORG),
                        session_id: &fx.alice_sid,
                    })
                    .unwrap();
                assert_eq!(header_of(token.token.expose())["alg"], alg);
                bearer(token.token.expose())
            },
        );
    }
    for alg in [
        "HS384", "HS512", "RS512", "PS256", "ES384", "hs256", "Hs256", "HS256 ",
    ] {
        t.add(
            format!("claims unsupported alg {alg:?}, HMAC-signed with the user secret"),
            "only the exact JOSE names of the four supported algorithms",
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(alg))),
        );
    }
    t.add(
        "agent token claiming RS256, HMAC-signed with the agent secret",
        "confusion on the agent ring",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_forged(|h, _| h["alg"] = json!("RS256"))),
    );
    t
}

/// An asymmetric ring: its public key used as an HMAC secret.
fn confusion_against_asymmetric() -> Table {
    let mut t = Table::default();
    t.add(
        "control: the ring's own token",
        "signed by the ring's private key",
        ALICE,
        |fx| bearer(&fx.alice),
    );
    let public = |fx: &Fx| fx.ring.pems().unwrap().1;
    t.add(
        "HS256 signed with the public key PEM, the ring's kid",
        "the classic algorithm-confusion attack",
        INVALID_TOKEN,
        move |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), public(fx)))
        },
    );
    t.add(
        "HS256 signed with the public key PEM without its final newline, the ring's kid",
        "the PEM as commonly copied",
        INVALID_TOKEN,
        move |fx| {
            let pem = public(fx);
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), pem.trim_ascii_end()))
        },
    );
    t.add(
        "HS256 signed with the public key PEM, no kid",
        "tried against the active key, which is asymmetric",
        INVALID_TOKEN,
        move |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.user_claims(),
                public(fx),
            ))
        },
    );
    t.add(
        "HS256 signed with the public key PEM, the ring's header bytes re-headed",
        "the ring's exact header with alg swapped",
        INVALID_TOKEN,
        move |fx| {
            let mut header = header_of(&fx.alice);
            header["alg"] = json!("HS256");
            bearer(sign(&header, &fx.user_claims(), public(fx)))
        },
    );
    t.add(
        "the ring's real token re-headed as HS256, signature kept",
        "a valid asymmetric signature under a header claiming HMAC",
        INVALID_TOKEN,
        |fx| {
            let mut header = header_of(&fx.alice);
            header["alg"] = json!("HS256");
            let [_, p, s] = segments(&fx.alice);
            bearer(format!("{}.{p}.{s}", b64url(header.to_string().as_bytes())))
        },
    );
    t.add(
        "the ring's real token re-headed with another asymmetric alg",
        "RS256 ⇄ EdDSA ⇄ ES256",
        INVALID_TOKEN,
        |fx| {
            let other = if fx.ring == Ring::Rs256 {
                "EdDSA"
            } else {
                "RS256"
            };
            let mut header = header_of(&fx.alice);
            header["alg"] = json!(other);
            let [_, p, s] = segments(&fx.alice);
            bearer(format!("{}.{p}.{s}", b64url(header.to_string().as_bytes())))
        },
    );
    t.add(
        "HS256 signed with the user secret the config also holds, the ring's kid",
        "the configured HS256 secret is not a key of an asymmetric ring",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), USER_SECRET.as_bytes()))
        },
    );
    t.add("alg none with the ring's kid", "", INVALID_TOKEN, |fx| {
        bearer(unsigned(
            &json!({"alg": "none", "kid": fx.user_kid}),
            &fx.user_claims(),
        ))
    });
    t
}

fn kid_injection() -> Table {
    let mut t = Table::default();
    t.add("control: the user kid, hand-signed", "", ALICE, |fx| {
        bearer(fx.user_forged(|_, _| {}))
    });
    t.add("control: the agent kid, hand-signed", "", AGENT_7, |fx| {
        bearer(fx.agent_forged(|_, _| {}))
    });
    let kids: Vec<(&str, Value)> = vec![
        ("path traversal", json!("../../etc/passwd")),
        ("absolute path", json!("/dev/null")),
        (
            "path traversal after our kid",
            json!("KID/../../../etc/passwd"),
        ),
        ("SQL injection", json!("' OR 1=1 --")),
        ("SQL injection after our kid", json!("KID' OR '1'='1")),
        ("a NUL byte", json!("\u{0}")),
        ("our kid and a NUL byte", json!("KID\u{0}")),
        ("a NUL byte and our kid", json!("\u{0}KID")),
        ("5 000 characters", json!("k".repeat(5000))),
        (
            "our kid padded to 5 000 characters",
            json!("KID".to_owned() + &" ".repeat(5000)),
        ),
        ("non-ASCII", json!("ключ-🔑-clé")),
        ("our kid with a non-ASCII suffix", json!("KID\u{e9}")),
        ("empty", json!("")),
        ("our kid re-cased", json!("KID-UPPER")),
        ("our kid with a trailing space", json!("KID ")),
        ("a URL", json!("https://evil.example/jwks.json")),
        ("a number", json!(1)),
        ("an array", json!(["KID"])),
        ("an object", json!({"kid": "KID"})),
    ];
    for (label, kid) in kids {
        let kid2 = kid.clone();
        t.add(
            format!("user token, kid {label}"),
            "signed with the user secret: the kid picks the key, never the active one",
            INVALID_TOKEN,
            move |fx| {
                let kid = with_kid(&kid, &fx.user_kid);
                bearer(fx.user_forged(|h, _| h["kid"] = kid))
            },
        );
        t.add(
            format!("agent token, kid {label}"),
            "signed with the agent secret",
            INVALID_TOKEN,
            move |fx| {
                let kid = with_kid(&kid2, &fx.agent_kid);
                bearer(fx.agent_forged(|h, _| h["kid"] = kid))
            },
        );
    }
    t.add(
        "user token under the agent kid",
        "signed with the user secret, naming the agent key",
        INVALID_TOKEN,
        |fx| bearer(fx.user_forged(|h, _| h["kid"] = json!(fx.agent_kid))),
    );
    t.add(
        "agent token under the user kid",
        "signed with the agent secret, naming the user key",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_forged(|h, _| h["kid"] = json!(fx.user_kid))),
    );
    t.add(
        "kid injection in the access cookie",
        "",
        INVALID_TOKEN,
        |fx| access_cookie(fx.user_forged(|h, _| h["kid"] = json!("../../etc/passwd"))),
    );
    t
}

/// `kid` with `KID` replaced by `ours` (and `KID-UPPER` by `ours` upper-cased).
fn with_kid(kid: &Value, ours: &str) -> Value {
    let replace = |s: &str| {
        s.replace("KID-UPPER", &ours.to_ascii_uppercase())
            .replace("KID", ours)
    };
    match kid {
        Value::String(s) => Value::String(replace(s)),
        Value::Array(a) => Value::Array(a.iter().map(|v| with_kid(v, ours)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), with_kid(v, ours)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A JSON member to set (`None`: no change).
type Member = Option<(&'static str, Value)>;

fn unknown_crit() -> Table {
    let mut t = Table::default();
    t.add(
        "control: an unknown non-critical header member",
        "unknown members are ignored (RFC 7515 §4)",
        ALICE,
        |fx| bearer(fx.user_forged(|h, _| h["x-custom"] = json!(true))),
    );
    let crits: Vec<(&str, Value, Member)> = vec![
        ("[\"exp\"]", json!(["exp"]), None),
        (
            "[\"x-custom\"] with x-custom present",
            json!(["x-custom"]),
            Some(("x-custom", json!(true))),
        ),
        (
            "[\"b64\"] with b64 false (RFC 7797)",
            json!(["b64"]),
            Some(("b64", json!(false))),
        ),
        (
            "[\"b64\"] with b64 true",
            json!(["b64"]),
            Some(("b64", json!(true))),
        ),
        ("[] (empty, forbidden by RFC 7515)", json!([]), None),
        ("\"exp\" (a string, not an array)", json!("exp"), None),
        ("an object", json!({"exp": true}), None),
        ("[1]", json!([1]), None),
    ];
    for (label, crit, extra) in crits {
        let extra2 = extra.clone();
        let crit2 = crit.clone();
        t.add(
            format!("user token, crit {label}"),
            "we implement no extension, so any crit is refused",
            INVALID_TOKEN,
            move |fx| {
                let (crit, extra) = (crit.clone(), extra.clone());
                bearer(fx.user_forged(move |h, _| {
                    h["crit"] = crit;
                    if let Some((k, v)) = extra {
                        h[k] = v;
                    }
                }))
            },
        );
        t.add(
            format!("agent token, crit {label}"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let (crit, extra) = (crit2.clone(), extra2.clone());
                bearer(fx.agent_forged(move |h, _| {
                    h["crit"] = crit;
                    if let Some((k, v)) = extra {
                        h[k] = v;
                    }
                }))
            },
        );
    }
    t.add("crit in the access cookie", "", INVALID_TOKEN, |fx| {
        access_cookie(fx.user_forged(|h, _| h["crit"] = json!(["exp"])))
    });
    t
}

/// What a time-claim value must give.
#[derive(Clone, Copy)]
enum Outcome {
    /// Accepted: the token's actor.
    Ok,
    /// Refused with this want.
    No(Want),
}

fn time_claims() -> Table {
    use Outcome::{No, Ok};
    let bad = No(INVALID_TOKEN);
    let expired = No(TOKEN_EXPIRED);
    // Wrong types and absurd values refused for all three claims.
    let shared: Vec<(&str, Value)> = vec![
        ("a numeric string", json!((T0 + 600).to_string())),
        ("a date string", json!("2030-01-01T00:00:00Z")),
        ("a bool", json!(true)),
        ("an object", json!({"$date": T0 + 600})),
        ("an array", json!([T0 + 600])),
        ("negative", json!(-((T0 + 600) as i64))),
        ("-1", json!(-1)),
        ("1e300", json!(1e300)),
        ("2^64 as a float", json!(18_446_744_073_709_551_616.0_f64)),
        ("i64::MIN", json!(i64::MIN)),
    ];
    let exp: Vec<(&str, Option<Value>, Outcome)> = vec![
        ("missing", None, bad),
        ("null", Some(Value::Null), bad),
        ("0", Some(json!(0)), expired),
        ("1", Some(json!(1)), expired),
        ("u64::MAX", Some(json!(u64::MAX)), Ok),
        (
            "a fraction in the future",
            Some(json!(T0 as f64 + 600.5)),
            Ok,
        ),
        (
            "a fraction in the past",
            Some(json!(T0 as f64 - 3600.5)),
            expired,
        ),
        ("exactly the leeway ago", Some(json!(T0 - LEEWAY)), expired),
        (
            "one second inside the leeway",
            Some(json!(T0 - LEEWAY + 1)),
            Ok,
        ),
    ];
    let not_before: Vec<(&str, Option<Value>, Outcome)> = vec![
        ("missing", None, Ok),
        ("0", Some(json!(0)), Ok),
        ("1", Some(json!(1)), Ok),
        ("u64::MAX", Some(json!(u64::MAX)), bad),
        ("a fraction in the past", Some(json!(T0 as f64 - 0.5)), Ok),
        ("exactly the leeway ahead", Some(json!(T0 + LEEWAY)), Ok),
        (
            "one second past the leeway ahead",
            Some(json!(T0 + LEEWAY + 1)),
            bad,
        ),
        ("a year ahead", Some(json!(T0 + 365 * 24 * 3600)), bad),
    ];
    let mut t = Table::default();
    for family in ["user", "agent"] {
        let accepted = if family == "user" { ALICE } else { AGENT_7 };
        t.add(
            format!("control: {family} token, hand-signed"),
            "",
            accepted,
            move |fx| bearer(forge_family(fx, family, |_| {})),
        );
        for claim in ["exp", "nbf", "iat"] {
            let specific = if claim == "exp" { &exp } else { &not_before };
            let rows = shared
                .iter()
                .map(|(label, v)| (*label, Some(v.clone()), bad))
                .chain(specific.iter().cloned());
            for (label, value, outcome) in rows {
                let want = match outcome {
                    Ok => accepted,
                    No(w) => w,
                };
                t.add(
                    format!("{family} token, {claim} {label}"),
                    format!("{claim} = {value:?}, everything else valid and signed"),
                    want,
                    move |fx| {
                        let value = value.clone();
                        bearer(forge_family(fx, family, move |c| match value {
                            Some(v) => c[claim] = v,
                            None => remove(c, claim),
                        }))
                    },
                );
            }
        }
    }
    t
}

/// A token of `family` ("user" or "agent") with edited claims, correctly signed.
fn forge_family(fx: &Fx, family: &str, edit: impl FnOnce(&mut Value)) -> String {
    if family == "user" {
        fx.user_with(edit)
    } else {
        fx.agent_with(edit)
    }
}

fn iss_aud_type() -> Table {
    let mut t = Table::default();
    let user: Vec<(&str, Member, Want)> = vec![
        ("iss missing", Some(("iss", Value::Null)), INVALID_TOKEN),
        (
            "iss foreign",
            Some(("iss", json!("https://evil.example"))),
            INVALID_TOKEN,
        ),
        (
            "iss re-cased",
            Some(("iss", json!("Portcullis"))),
            INVALID_TOKEN,
        ),
        (
            "iss with a trailing space",
            Some(("iss", json!("portcullis "))),
            INVALID_TOKEN,
        ),
        (
            "iss an array",
            Some(("iss", json!(["portcullis"]))),
            INVALID_TOKEN,
        ),
        ("iss a number", Some(("iss", json!(1))), INVALID_TOKEN),
        ("aud missing", Some(("aud", Value::Null)), INVALID_TOKEN),
        (
            "aud the agent audience",
            Some(("aud", json!("portcullis-agents"))),
            INVALID_TOKEN,
        ),
        (
            "aud foreign",
            Some(("aud", json!("evil-api"))),
            INVALID_TOKEN,
        ),
        (
            "aud re-cased",
            Some(("aud", json!("Portcullis-API"))),
            INVALID_TOKEN,
        ),
        (
            "aud an empty array",
            Some(("aud", json!([]))),
            INVALID_TOKEN,
        ),
        (
            "aud an array of foreigners",
            Some(("aud", json!(["evil-api", "portcullis-agents"]))),
            INVALID_TOKEN,
        ),
        (
            "aud an array naming us",
            Some(("aud", json!(["evil-api", "portcullis-api"]))),
            ALICE,
        ),
        ("aud a number", Some(("aud", json!(1))), INVALID_TOKEN),
        ("type missing", Some(("type", Value::Null)), INVALID_TOKEN),
        (
            "type refresh",
            Some(("type", json!("refresh"))),
            WRONG_TOKEN_TYPE,
        ),
        (
            "type re-cased ACCESS",
            Some(("type", json!("ACCESS"))),
            WRONG_TOKEN_TYPE,
        ),
        ("type empty", Some(("type", json!(""))), WRONG_TOKEN_TYPE),
        (
            "type agent",
            Some(("type", json!("agent"))),
            WRONG_TOKEN_TYPE,
        ),
        ("type a number", Some(("type", json!(1))), INVALID_TOKEN),
        (
            "type an array",
            Some(("type", json!(["access"]))),
            INVALID_TOKEN,
        ),
        ("sub missing", Some(("sub", Value::Null)), INVALID_TOKEN),
        ("sub a number", Some(("sub", json!(1))), INVALID_TOKEN),
        ("sid missing", Some(("sid", Value::Null)), INVALID_TOKEN),
        ("jti missing", Some(("jti", Value::Null)), INVALID_TOKEN),
        (
            "org_id missing",
            Some(("org_id", Value::Null)),
            INVALID_TOKEN,
        ),
        ("role missing", Some(("role", Value::Null)), INVALID_TOKEN),
        ("control: no change", None, ALICE),
    ];
    let agent: Vec<(&str, Member, Want)> = vec![
        ("iss missing", Some(("iss", Value::Null)), INVALID_TOKEN),
        (
            "iss foreign",
            Some(("iss", json!("https://evil.example"))),
            INVALID_TOKEN,
        ),
        ("aud missing", Some(("aud", Value::Null)), INVALID_TOKEN),
        (
            "aud the user audience",
            Some(("aud", json!("portcullis-api"))),
            INVALID_TOKEN,
        ),
        (
            "aud an array naming us",
            Some(("aud", json!(["x", "portcullis-agents"]))),
            AGENT_7,
        ),
        (
            "type access",
            Some(("type", json!("access"))),
            WRONG_TOKEN_TYPE,
        ),
        (
            "type agent",
            Some(("type", json!("agent"))),
            WRONG_TOKEN_TYPE,
        ),
        ("sub missing", Some(("sub", Value::Null)), INVALID_TOKEN),
        (
            "company_id missing",
            Some(("company_id", Value::Null)),
            INVALID_TOKEN,
        ),
        (
            "run_id missing",
            Some(("run_id", Value::Null)),
            INVALID_TOKEN,
        ),
        // Optional on run tokens (CONTRACT.md): other orchestrators mint none.
        ("jti missing", Some(("jti", Value::Null)), AGENT_7),
        (
            "extra claims",
            Some(("responsible_user_id", json!({"kind": "limited"}))),
            AGENT_7,
        ),
        ("control: no change", None, AGENT_7),
    ];
    for (family, rows) in [("user", user), ("agent", agent)] {
        for (label, edit, want) in rows {
            t.add(
                format!("{family} token, {label}"),
                "signed correctly; Null means the claim is removed",
                want,
                move |fx| {
                    let edit = edit.clone();
                    bearer(forge_family(fx, family, move |c| {
                        if let Some((k, v)) = edit {
                            if v.is_null() {
                                remove(c, k);
                            } else {
                                c[k] = v;
                            }
                        }
                    }))
                },
            );
        }
    }
    t
}

fn token_kinds() -> Table {
    let mut t = Table::default();
    t.add("control: the access token", "", ALICE, |fx| {
        bearer(&fx.alice)
    });
    t.add("control: the run token", "", AGENT_7, |fx| bearer(&fx.run));
    t.add(
        "refresh token as bearer",
        "a real refresh token used as an access token",
        WRONG_TOKEN_TYPE,
        |fx| bearer(&fx.refresh),
    );
    t.add(
        "refresh token as the access cookie",
        "",
        WRONG_TOKEN_TYPE,
        |fx| access_cookie(&fx.refresh),
    );
    // A user token signed with the agent secret.
    t.add(
        "user token signed with the agent secret, agent kid",
        "routed to the agent family by its kid; the user audience is not the agents'",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.agent_kid});
            bearer(sign(&header, &fx.user_claims(), AGENT_SECRET.as_bytes()))
        },
    );
    t.add(
        "user token signed with the agent secret, the agent's exact header",
        "the fast path for our own header bytes",
        INVALID_TOKEN,
        |fx| {
            bearer(sign_seg(
                seg(&fx.run, 0),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, user kid",
        "the user key does not verify it",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.user_header(),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, no kid",
        "routed to the user family by its type claim",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, agent kid, agent iss and aud",
        "a valid agent-family token that carries a user `type`: agents carry none",
        WRONG_TOKEN_TYPE,
        |fx| {
            let mut claims = fx.user_claims();
            claims["aud"] = json!("portcullis-agents");
            bearer(sign(&fx.agent_header(), &claims, AGENT_SECRET.as_bytes()))
        },
    );
    t.add(
        "user token signed with the agent secret, in the access cookie",
        "cookies carry user tokens only",
        INVALID_TOKEN,
        |fx| {
            access_cookie(sign(
                &fx.agent_header(),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    // An agent token signed with the user secret.
    t.add(
        "agent token signed with the user secret, user kid",
        "verified by the user key; the agent audience is not the users'",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.user_header(),
                &fx.agent_claims(),
                USER_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, the user's exact header",
        "",
        INVALID_TOKEN,
        |fx| {
            bearer(sign_seg(
                seg(&fx.alice, 0),
                &fx.agent_claims(),
                USER_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, agent kid",
        "the agent key does not verify it",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.agent_header(),
                &fx.agent_claims(),
                USER_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, no kid",
        "routed to the agent family (no type claim), whose key does not verify it",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.agent_claims(),
                USER_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, user kid, user iss and aud",
        "a user-family token without `type`",
        INVALID_TOKEN,
        |fx| {
            let mut claims = fx.agent_claims();
            claims["aud"] = json!("portcullis-api");
            bearer(sign(&fx.user_header(), &claims, USER_SECRET.as_bytes()))
        },
    );
    t.add(
        "the real run token in the access cookie",
        "cookies carry user tokens only",
        INVALID_TOKEN,
        |fx| access_cookie(&fx.run),
    );
    // company_id.
    t.add(
        "agent token whose company_id is another org",
        "agent-7 lives in acme; the token says globex",
        INVALID_TOKEN,
        |fx| {
            let minted = fx
                .auth
                .agent_tokens()
                .mint(AgentGrant {
                    agent_id: &AgentId::from("agent-7"),
                    company_id: &OrgId::from(OTHER_ORG),
                    adapter_type: "claude",
                    run_id: &RunId::from("run-x"),
                })
                .unwrap();
            bearer(minted.token.expose())
        },
    );
    t.add(
        "agent token whose company_id is its org re-cased",
        "",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_with(|c| c["company_id"] = json!("ACME"))),
    );
    t.add(
        "agent token whose company_id is empty",
        "",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_with(|c| c["company_id"] = json!(""))),
    );
    t.add(
        "agent token of agent-8 claiming agent-7's org",
        "agent-8 lives in globex",
        INVALID_TOKEN,
        |fx| {
            bearer(fx.agent_with(|c| {
                c["sub"] = json!("agent-8");
            }))
        },
    );
    t.add("agent token of an unknown agent", "", INVALID_TOKEN, |fx| {
        bearer(fx.agent_with(|c| c["sub"] = json!("agent-ghost")))
    });
    t.add(
        "user token naming another user's session",
        "signed, but sub u-bob does not own u-alice's sid",
        TOKEN_REVOKED,
        |fx| bearer(fx.user_with(|c| c["sub"] = json!("u-bob"))),
    );
    t.add(
        "user token naming an unknown session",
        "",
        TOKEN_REVOKED,
        |fx| bearer(fx.user_with(|c| c["sid"] = json!("no-such-session"))),
    );
    t
}

fn tampered_tokens() -> Table {
    let mut t = Table::default();
    fn access(fx: &Fx) -> &str {
        &fx.alice
    }
    fn run(fx: &Fx) -> &str {
        &fx.run
    }
    type Pick = fn(&Fx) -> &str;
    let kinds: [(&str, Pick, Want); 2] = [("access", access, ALICE), ("run", run, AGENT_7)];
    for (kind, pick, accepted) in kinds {
        t.add(
            format!("control: the {kind} token"),
            "",
            accepted,
            move |fx| bearer(pick(fx)),
        );
        t.add(
            format!("control: the {kind} token after two spaces"),
            "RFC 6750: `Bearer` 1*SP token",
            accepted,
            move |fx| vec![hv("authorization", format!("Bearer  {}", pick(fx)))],
        );
        for (i, part) in ["header", "payload", "signature"].into_iter().enumerate() {
            t.add(
                format!("{kind} token, first char of the {part} changed"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let token = pick(fx);
                    let mut s = segments(token).map(str::to_owned);
                    s[i] = flip_at(&s[i], 0);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, middle char of the {part} changed"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let token = pick(fx);
                    let mut s = segments(token).map(str::to_owned);
                    s[i] = flip_at(&s[i], s[i].len() / 2);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} cut by one char"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].pop();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} cut in half"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    let half = s[i].len() / 2;
                    s[i].truncate(half);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} emptied"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].clear();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} missing"),
                "two segments left",
                INVALID_TOKEN,
                move |fx| {
                    let s: Vec<&str> = segments(pick(fx))
                        .into_iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| p)
                        .collect();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} with base64 padding"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].push('=');
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} with a space inside"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].insert(4, ' ');
                    bearer(s.join("."))
                },
            );
        }
        t.add(
            format!("{kind} token, signature with non-canonical trailing bits"),
            "decodes to the same bytes under a lenient base64 decoder",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                let last = s[2].pop().unwrap();
                let idx = B64.iter().position(|&c| c == last as u8).unwrap();
                assert_eq!(
                    idx & 3,
                    0,
                    "a canonical HS256 signature ends in 4 data bits"
                );
                s[2].push(char::from(B64[idx | 1]));
                bearer(s.join("."))
            },
        );
        t.add(
            format!("{kind} token, signature in the standard base64 alphabet with padding"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                s[2] = s[2].replace('-', "+").replace('_', "/") + "=";
                bearer(s.join("."))
            },
        );
        t.add(
            format!("{kind} token, header only"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(seg(pick(fx), 0)),
        );
        t.add(
            format!("{kind} token, payload only"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(seg(pick(fx), 1)),
        );
        t.add(
            format!("{kind} token, only dots"),
            "",
            INVALID_TOKEN,
            |_| bearer(".."),
        );
        t.add(
            format!("{kind} token, truncated to 20 chars"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(&pick(fx)[..20]),
        );
        t.add(
            format!("{kind} token + trailing dot"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}.", pick(fx))),
        );
        t.add(
            format!("{kind} token + leading dot"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!(".{}", pick(fx))),
        );
        t.add(
            format!("{kind} token + extra segment"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{}", seg(token, 1)))
            },
        );
        t.add(
            format!("{kind} token + its signature again"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{}", seg(token, 2)))
            },
        );
        t.add(
            format!("{kind} token twice, dot-joined"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{token}"))
            },
        );
        t.add(
            format!("{kind} token + a trailing tab"),
            "tab is not SP",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}\t", pick(fx))),
        );
        t.add(
            format!("{kind} token + a trailing comma"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{},", pick(fx))),
        );
        t.add(
            format!("{kind} token + a space and junk"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{} junk", pick(fx))),
        );
        t.add(
            format!("{kind} token + 1 char"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}A", pick(fx))),
        );
        t.add(
            format!("{kind} token upper-cased"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(pick(fx).to_ascii_uppercase()),
        );
        t.add(
            format!("{kind} token lower-cased"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(pick(fx).to_ascii_lowercase()),
        );
        t.add(
            format!("{kind} token, signature tampered, in the cookie"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                s[2] = flip_at(&s[2], 0);
                access_cookie(s.join("."))
            },
        );
    }
    t
}

fn api_keys() -> Table {
    let mut t = Table::default();
    // (label, the bad key from the valid one, want via X-API-Key, want via Bearer)
    type Mutate = fn(&str) -> String;
    fn r(
        label: &'static str,
        f: Mutate,
        header: Want,
        bearer: Want,
    ) -> (&'static str, Mutate, Want, Want) {
        (label, f, header, bearer)
    }
    let rows: Vec<(&str, Mutate, Want, Want)> = vec![
        r(
            "one random char changed",
            |k| flip_at(k, 10),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "first random char changed",
            |k| flip_at(k, 3),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "one checksum char changed",
            |k| flip_at(k, k.len() - 1),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "two chars swapped",
            |k| {
                let mut b = k.as_bytes().to_vec();
                let i = (3..b.len() - 1).find(|&i| b[i] != b[i + 1]).unwrap();
                b.swap(i, i + 1);
                String::from_utf8(b).unwrap()
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated by one char",
            |k| k[..k.len() - 1].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "checksum cut off",
            |k| k[..k.len() - 6].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated to the prefix",
            |_| "ck_".to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated to the display prefix",
            |k| k[..11].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "one char appended",
            |k| format!("{k}a"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "padding appended",
            |k| format!("{k}="),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "a dot appended",
            |k| format!("{k}."),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part doubled",
            |k| format!("{k}{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "key twice",
            |k| format!("{k}{k}"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part upper-cased",
            |k| format!("ck_{}", k[3..].to_ascii_uppercase()),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part lower-cased",
            |k| format!("ck_{}", k[3..].to_ascii_lowercase()),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part case-swapped",
            |k| {
                let swapped: String = k[3..]
                    .chars()
                    .map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect();
                format!("ck_{swapped}")
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        // Not our prefix's shape: as a bearer it is a JWT, and a malformed one.
        r(
            "prefix upper-cased",
            |k| format!("CK_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "whole key upper-cased",
            |k| k.to_ascii_uppercase(),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "wrong prefix sk_",
            |k| format!("sk_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix with a dash",
            |k| format!("ck-{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix without the underscore",
            |k| format!("ck{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix doubled",
            |k| format!("ck_{k}"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "prefix missing",
            |k| k[3..].to_owned(),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "a space inside",
            |k| format!("{} {}", &k[..20], &k[20..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "a dash inside",
            |k| format!("{}-{}", &k[..20], &k[21..]),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "valid checksum, never stored",
            |_| {
                api_key::generate(&ApiKeyPrefix::default())
                    .key
                    .expose()
                    .to_owned()
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "valid checksum under another prefix",
            |_| {
                api_key::generate(&ApiKeyPrefix::new("sk").unwrap())
                    .key
                    .expose()
                    .to_owned()
            },
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "valid checksum, a stored key's display prefix, never stored",
            |k| {
                // The real key's first 11 characters, one changed after them, re-checksummed.
                with_checksum(&flip_at(&k[..46], 20))
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
    ];
    t.add("control: the key in X-API-Key", "", ALICE_KEY, |fx| {
        x_api_key(&fx.alice_key)
    });
    t.add("control: the key as a bearer", "", ALICE_KEY, |fx| {
        bearer(&fx.alice_key)
    });
    t.add(
        "control: the key in X-API-Key between spaces",
        "leading and trailing whitespace is not part of a field value (RFC 9110 §5.5)",
        ALICE_KEY,
        |fx| x_api_key(format!("  {}  ", fx.alice_key)),
    );
    t.add("control: the agent's key", "", AGENT_7, |fx| {
        x_api_key(&fx.agent_key)
    });
    for (label, mutate, via_header, via_bearer) in rows {
        t.add(format!("X-API-Key, {label}"), "", via_header, move |fx| {
            let bad = mutate(&fx.alice_key);
            assert_ne!(bad, fx.alice_key);
            x_api_key(bad)
        });
        t.add(format!("Bearer, {label}"), "", via_bearer, move |fx| {
            let bad = mutate(&fx.alice_key);
            assert_ne!(bad, fx.alice_key);
            bearer(bad)
        });
    }
    t.add("agent key, one char changed", "", INVALID_API_KEY, |fx| {
        x_api_key(flip_at(&fx.agent_key, 10))
    });
    t.add(
        "the key in the access cookie",
        "cookies carry JWTs",
        INVALID_TOKEN,
        |fx| access_cookie(&fx.alice_key),
    );
    t.add(
        "a JWT in X-API-Key",
        "anything there is an API key",
        INVALID_API_KEY,
        |fx| x_api_key(&fx.alice),
    );
    t.add("X-API-Key empty", "", INVALID_API_KEY, |_| x_api_key(""));
    t.add("X-API-Key only spaces", "", INVALID_API_KEY, |_| {
        x_api_key("   ")
    });
    t.add("X-API-Key garbage", "", INVALID_API_KEY, |_| {
        x_api_key("hello")
    });
    t.add(
        "X-API-Key twice, the same valid key",
        "",
        INVALID_API_KEY,
        |fx| {
            vec![
                hv("x-api-key", &fx.alice_key),
                hv("x-api-key", &fx.alice_key),
            ]
        },
    );
    t.add(
        "X-API-Key twice, valid and garbage",
        "",
        INVALID_API_KEY,
        |fx| vec![hv("x-api-key", &fx.alice_key), hv("x-api-key", "ck_typo")],
    );
    t
}

fn authorization_headers() -> Table {
    let mut t = Table::default();
    let a = |v: &str| vec![hv("authorization", v)];
    t.add("control: Bearer", "", ALICE, |fx| bearer(&fx.alice));
    t.add(
        "lowercase scheme",
        "RFC 7235: the scheme is case-insensitive",
        ALICE,
        |fx| vec![hv("authorization", format!("bearer {}", fx.alice))],
    );
    t.add("uppercase scheme", "", ALICE, |fx| {
        vec![hv("authorization", format!("BEARER {}", fx.alice))]
    });
    t.add("lowercase scheme, garbage", "", INVALID_TOKEN, move |_| {
        a("bearer garbage")
    });
    t.add(
        "garbage",
        "no scheme at all",
        INVALID_CREDENTIALS,
        move |_| a("garbage"),
    );
    t.add(
        "empty",
        "an empty Authorization header is presented and unreadable",
        INVALID_CREDENTIALS,
        move |_| a(""),
    );
    t.add("a single space", "", INVALID_CREDENTIALS, move |_| a(" "));
    t.add("Bearer garbage", "", INVALID_TOKEN, move |_| {
        a("Bearer garbage")
    });
    t.add("Bearer with nothing", "", INVALID_TOKEN, move |_| {
        a("Bearer")
    });
    t.add("Bearer and one space", "", INVALID_TOKEN, move |_| {
        a("Bearer ")
    });
    t.add("Bearer and two spaces", "", INVALID_TOKEN, move |_| {
        a("Bearer  ")
    });
    t.add("Bearer a.b.c", "", INVALID_TOKEN, move |_| {
        a("Bearer a.b.c")
    });
    t.add("Bearer ....", "", INVALID_TOKEN, move |_| a("Bearer ...."));
    t.add(
        "Bearer with a tab",
        "tab is not SP",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Bearer\t{}", fx.alice))],
    );
    t.add("Bearer without a space", "", INVALID_CREDENTIALS, |fx| {
        vec![hv("authorization", format!("Bearer{}", fx.alice))]
    });
    t.add("Bearer: with a colon", "", INVALID_CREDENTIALS, |fx| {
        vec![hv("authorization", format!("Bearer: {}", fx.alice))]
    });
    t.add("two tokens", "", INVALID_TOKEN, |fx| {
        vec![hv(
            "authorization",
            format!("Bearer {} {}", fx.alice, fx.bob),
        )]
    });
    t.add("two tokens, comma-separated", "", INVALID_TOKEN, |fx| {
        vec![hv(
            "authorization",
            format!("Bearer {}, Bearer {}", fx.alice, fx.bob),
        )]
    });
    t.add("Basic", "", INVALID_CREDENTIALS, move |_| {
        a("Basic dXNlcjpwYXNz")
    });
    t.add(
        "Basic carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Basic {}", fx.alice))],
    );
    t.add("Basic with nothing", "", INVALID_CREDENTIALS, move |_| {
        a("Basic")
    });
    t.add("Digest", "", INVALID_CREDENTIALS, move |_| {
        a("Digest username=\"u\", nonce=\"n\"")
    });
    t.add(
        "Token scheme carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Token {}", fx.alice))],
    );
    t.add(
        "JWT scheme carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("JWT {}", fx.alice))],
    );
    t.add(
        "ApiKey scheme carrying a valid key",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("ApiKey {}", fx.alice_key))],
    );
    // Duplicated headers.
    t.add(
        "two Authorization headers, the same valid token",
        "",
        INVALID_TOKEN,
        |fx| {
            let v = format!("Bearer {}", fx.alice);
            vec![hv("authorization", &v), hv("authorization", &v)]
        },
    );
    t.add(
        "two Authorization headers, two users",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("authorization", format!("Bearer {}", fx.bob)),
            ]
        },
    );
    t.add(
        "two Authorization headers, valid and Basic",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("authorization", "Basic dXNlcjpwYXNz"),
            ]
        },
    );
    t.add(
        "two Authorization headers, empty and valid",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", ""),
                hv("authorization", format!("Bearer {}", fx.alice)),
            ]
        },
    );
    t.add(
        "two Authorization headers, valid key and valid token",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice_key)),
                hv("authorization", format!("Bearer {}", fx.alice)),
            ]
        },
    );
    // 60 000 bytes.
    let big = || "a".repeat(60_000);
    t.add("60 000-byte bearer", "", INVALID_TOKEN, move |_| {
        bearer(big())
    });
    t.add("60 000-byte three-part bearer", "", INVALID_TOKEN, |_| {
        let third = "a".repeat(20_000);
        bearer(format!("{third}.{third}.{third}"))
    });
    t.add(
        "valid token + 60 000 bytes of signature",
        "",
        INVALID_TOKEN,
        move |fx| bearer(format!("{}{}", fx.alice, big())),
    );
    t.add(
        "valid token with a 60 000-byte payload",
        "",
        INVALID_TOKEN,
        move |fx| {
            let [h, _, s] = segments(&fx.alice);
            bearer(format!("{h}.{}.{s}", big()))
        },
    );
    t.add(
        "60 000-byte signed token",
        "correctly signed, huge claim",
        INVALID_TOKEN,
        move |fx| bearer(fx.user_with(|c| c["pad"] = json!(big()))),
    );
    t.add(
        "60 000-byte bearer API key",
        "",
        INVALID_API_KEY,
        move |_| bearer(format!("ck_{}", big())),
    );
    t.add("60 000-byte X-API-Key", "", INVALID_API_KEY, move |_| {
        x_api_key(format!("ck_{}", big()))
    });
    t.add("60 000-byte Basic", "", INVALID_CREDENTIALS, move |_| {
        vec![hv("authorization", format!("Basic {}", big()))]
    });
    t.add(
        "60 000-byte Authorization without a scheme",
        "",
        INVALID_CREDENTIALS,
        move |_| vec![hv("authorization", big())],
    );
    t.add("60 000-byte access cookie", "", INVALID_TOKEN, move |_| {
        access_cookie(big())
    });
    // Non-ASCII and invalid UTF-8.
    let raw = |name: &'static str, v: &'static [u8]| move |_: &Fx| vec![hv(name, v)];
    t.add(
        "Bearer, invalid UTF-8",
        "",
        INVALID_TOKEN,
        raw("authorization", b"Bearer \xff\xfe\xfd"),
    );
    t.add(
        "Bearer, UTF-8 non-ASCII",
        "",
        INVALID_TOKEN,
        raw("authorization", "Bearer café.x.y".as_bytes()),
    );
    t.add(
        "Bearer, a lone continuation byte",
        "",
        INVALID_TOKEN,
        raw("authorization", b"Bearer \x80"),
    );
    t.add(
        "invalid UTF-8 before the scheme",
        "",
        INVALID_TOKEN,
        raw("authorization", b"\xffBearer abc"),
    );
    t.add(
        "non-ASCII scheme",
        "",
        INVALID_TOKEN,
        raw("authorization", "Béarer abc".as_bytes()),
    );
    t.add(
        "valid token + an invalid UTF-8 byte",
        "",
        INVALID_TOKEN,
        |fx| {
            let mut v = format!("Bearer {}", fx.alice).into_bytes();
            v.push(0xff);
            vec![hv("authorization", v)]
        },
    );
    t.add(
        "valid token with a non-ASCII char inside",
        "",
        INVALID_TOKEN,
        |fx| {
            let [h, p, s] = segments(&fx.alice);
            vec![hv("authorization", format!("Bearer {h}.{p}é.{s}"))]
        },
    );
    t.add(
        "X-API-Key, invalid UTF-8",
        "",
        INVALID_API_KEY,
        raw("x-api-key", b"ck_\xff\xfe"),
    );
    t.add(
        "X-API-Key, a lone continuation byte",
        "",
        INVALID_API_KEY,
        raw("x-api-key", b"\x80"),
    );
    t.add("valid key + a non-ASCII char", "", INVALID_API_KEY, |fx| {
        x_api_key(format!("{}é", fx.alice_key))
    });
    t.add(
        "Cookie header with invalid UTF-8 around the access cookie",
        "our cookie, present but unreadable: an error, never absence",
        INVALID_TOKEN,
        raw("cookie", b"portcullis_access=\xff.a.b"),
    );
    t.add(
        "Cookie header with invalid UTF-8 and no access cookie",
        "another application's cookie: no credential",
        MISSING,
        raw("cookie", b"junk=\xff\xfe"),
    );
    t
}

fn conflicting_credentials() -> Table {
    let mut t = Table::default();
    let two = |a: (&str, String), b: (&str, String)| vec![hv(a.0, a.1), hv(b.0, b.1)];
    t.add(
        "control: the same token as bearer and cookie",
        "counts once",
        ALICE,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.alice)),
            )
        },
    );
    t.add(
        "control: the same key in X-API-Key and bearer",
        "counts once",
        ALICE_KEY,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.alice_key)),
            )
        },
    );
    t.add(
        "control: an agent's key and its run token",
        "one actor",
        AGENT_7,
        move |fx| {
            two(
                ("x-api-key", fx.agent_key.clone()),
                ("authorization", format!("Bearer {}", fx.run)),
            )
        },
    );
    t.add(
        "valid key of A + valid token of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.bob)),
            )
        },
    );
    t.add(
        "valid key of A + valid cookie of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("cookie", format!("portcullis_access={}", fx.bob)),
            )
        },
    );
    t.add(
        "valid token of A + valid cookie of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.bob)),
            )
        },
    );
    t.add(
        "valid key of A + valid key of B as bearer",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.bob_key)),
            )
        },
    );
    t.add(
        "valid key of A + an agent's run token",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.run)),
            )
        },
    );
    t.add(
        "agent-7's key + agent-8's run token",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.agent_key.clone()),
                ("authorization", format!("Bearer {}", fx.run8)),
            )
        },
    );
    t.add(
        "valid token + a bad key",
        "the key is checked first",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", "ck_typo".into()),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + a tampered key",
        "",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", flip_at(&fx.alice_key, 10)),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + an unknown well-formed key",
        "",
        INVALID_API_KEY,
        move |fx| {
            let stranger = api_key::generate(&ApiKeyPrefix::default())
                .key
                .expose()
                .to_owned();
            two(
                ("x-api-key", stranger),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + an empty X-API-Key",
        "",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", String::new()),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid key + a garbage bearer",
        "",
        INVALID_TOKEN,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", "Bearer garbage".into()),
            )
        },
    );
    t.add(
        "valid key + a Basic header",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", "Basic dXNlcjpwYXNz".into()),
            )
        },
    );
    t.add(
        "valid token + a tampered cookie",
        "",
        INVALID_TOKEN,
        move |fx| {
            let tampered = flip_at(&fx.alice, fx.alice.len() - 10);
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={tampered}")),
            )
        },
    );
    t.add(
        "valid token + a refresh token cookie",
        "",
        WRONG_TOKEN_TYPE,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.refresh)),
            )
        },
    );
    t.add(
        "tampered token + valid cookie",
        "",
        INVALID_TOKEN,
        move |fx| {
            let tampered = flip_at(&fx.alice, fx.alice.len() - 10);
            two(
                ("authorization", format!("Bearer {tampered}")),
                ("cookie", format!("portcullis_access={}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + two different access cookies",
        "",
        INVALID_TOKEN,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                (
                    "cookie",
                    format!(
                        "portcullis_access={}; portcullis_access={}",
                        fx.alice, fx.bob
                    ),
                ),
            )
        },
    );
    t
}

/// Claims and headers that are not the plain JSON objects they should be: duplicate members
/// (parser differentials), other JSON types, trailing bytes, deep nesting. All correctly signed.
fn json_structure() -> Table {
    let mut t = Table::default();
    t.add(
        "control: raw JSON, signed",
        "the raw forging machinery, no defect",
        ALICE,
        |fx| {
            let (h, c) = (fx.user_header().to_string(), fx.user_claims().to_string());
            bearer(sign_raw(h.as_bytes(), c.as_bytes(), USER_SECRET.as_bytes()))
        },
    );
    /// The user claims as JSON text with `extra` spliced in after the opening brace.
    fn spliced(fx: &Fx, extra: &str) -> Vec<u8> {
        let claims = fx.user_claims().to_string();
        format!("{{{extra},{}", &claims[1..]).into_bytes()
    }
    type Claims = fn(&Fx) -> Vec<u8>;
    fn r(label: &'static str, claims: Claims) -> (&'static str, Claims) {
        (label, claims)
    }
    let payloads = [
        r("exp twice, past then future", |fx| {
            spliced(fx, &format!(r#""exp":{}"#, T0 - 3600))
        }),
        r("type twice, refresh then access", |fx| {
            spliced(fx, r#""type":"refresh""#)
        }),
        r("sub twice, u-bob then u-alice", |fx| {
            spliced(fx, r#""sub":"u-bob""#)
        }),
        r("aud twice, foreign then ours", |fx| {
            spliced(fx, r#""aud":"evil-api""#)
        }),
        r("an array", |fx| {
            format!("[{}]", fx.user_claims()).into_bytes()
        }),
        r("a string", |fx| {
            serde_json::to_vec(&fx.user_claims().to_string()).unwrap()
        }),
        r("a number", |_| b"1".to_vec()),
        r("null", |_| b"null".to_vec()),
        r("empty", |_| Vec::new()),
        r("trailing garbage", |fx| {
            format!("{}x", fx.user_claims()).into_bytes()
        }),
        r("two objects", |fx| {
            format!("{0}{0}", fx.user_claims()).into_bytes()
        }),
        r("a byte-order mark first", |fx| {
            format!("\u{feff}{}", fx.user_claims()).into_bytes()
        }),
        r("invalid UTF-8 in an unknown member's string", |fx| {
            let mut claims = spliced(fx, r#""x":"?""#);
            let at = claims.iter().position(|&b| b == b'?').unwrap();
            claims[at] = 0xff;
            claims
        }),
        r("nested 5 000 levels deep", |fx| {
            spliced(
                fx,
                &format!(r#""x":{}{}"#, "[".repeat(5000), "]".repeat(5000)),
            )
        }),
        r("a 200 000-char claim", |fx| {
            spliced(fx, &format!(r#""x":"{}""#, "y".repeat(200_000)))
        }),
    ];
    for (label, claims) in payloads {
        t.add(
            format!("user claims: {label}"),
            "signed with the user secret",
            INVALID_TOKEN,
            move |fx| {
                let header = fx.user_header().to_string();
                bearer(sign_raw(
                    header.as_bytes(),
                    &claims(fx),
                    USER_SECRET.as_bytes(),
                ))
            },
        );
    }
    type Header = fn(&Fx) -> String;
    fn h(label: &'static str, header: Header) -> (&'static str, Header) {
        (label, header)
    }
    let headers = [
        h("alg twice, none then HS256", |fx| {
            format!(r#"{{"alg":"none","alg":"HS256","kid":"{}"}}"#, fx.user_kid)
        }),
        h("alg twice, HS256 then none", |fx| {
            format!(r#"{{"alg":"HS256","alg":"none","kid":"{}"}}"#, fx.user_kid)
        }),
        h("kid twice, agent then user", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","kid":"{}"}}"#,
                fx.agent_kid, fx.user_kid
            )
        }),
        h("crit twice, [\"exp\"] then null", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","crit":["exp"],"crit":null}}"#,
                fx.user_kid
            )
        }),
        h("an array", |fx| {
            format!(r#"[{{"alg":"HS256","kid":"{}"}}]"#, fx.user_kid)
        }),
        h("trailing garbage", |fx| {
            format!(r#"{{"alg":"HS256","kid":"{}"}}x"#, fx.user_kid)
        }),
        h("nested 500 levels deep", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","x":{}{}}}"#,
                fx.user_kid,
                "[".repeat(500),
                "]".repeat(500)
            )
        }),
        h("empty", |_| String::new()),
    ];
    t.add(
        "header: invalid UTF-8 in the typ member",
        "not a JSON text (RFC 8259 §8.1), so not a JOSE header",
        INVALID_TOKEN,
        |fx| {
            let mut header =
                format!(r#"{{"alg":"HS256","typ":"?","kid":"{}"}}"#, fx.user_kid).into_bytes();
            let at = header.iter().position(|&b| b == b'?').unwrap();
            header[at] = 0xff;
            let claims = fx.user_claims().to_string();
            bearer(sign_raw(&header, claims.as_bytes(), USER_SECRET.as_bytes()))
        },
    );
    for (label, header) in headers {
        t.add(
            format!("header: {label}"),
            "signed with the user secret",
            INVALID_TOKEN,
            move |fx| {
                let claims = fx.user_claims().to_string();
                bearer(sign_raw(
                    header(fx).as_bytes(),
                    claims.as_bytes(),
                    USER_SECRET.as_bytes(),
                ))
            },
        );
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_every_casing_is_invalid_token() {
    run_group("alg none", alg_none()).await;
}

#[tokio::test]
async fn algorithm_confusion_is_invalid_token() {
    let mut failures = Vec::new();
    let fx = Fx::hs256().await;
    failures.extend(run("confusion/HS256 ring", &fx, &confusion_against_hs256()).await);
    for ring in [Ring::Rs256, Ring::EdDsa, Ring::Es256] {
        let fx = Fx::new(ring, Fallback::None).await;
        failures.extend(
            run(
                &format!("confusion/{ring:?} ring"),
                &fx,
                &confusion_against_asymmetric(),
            )
            .await,
        );
    }
    assert_no_failures(&failures);
}

#[tokio::test]
async fn kid_injection_is_invalid_token() {
    run_group("kid injection", kid_injection()).await;
}

#[tokio::test]
async fn unknown_crit_is_invalid_token() {
    run_group("crit", unknown_crit()).await;
}

#[tokio::test]
async fn missing_wrong_typed_and_absurd_exp_nbf_iat() {
    run_group("exp/nbf/iat", time_claims()).await;
}

#[tokio::test]
async fn wrong_iss_aud_type_and_missing_claims() {
    run_group("iss/aud/type", iss_aud_type()).await;
}

#[tokio::test]
async fn token_kinds_and_families_never_cross() {
    run_group("token kinds", token_kinds()).await;
}

#[tokio::test]
async fn tampered_truncated_and_extended_tokens_are_invalid_token() {
    run_group("tampered tokens", tampered_tokens()).await;
}

#[tokio::test]
async fn duplicate_members_and_non_object_json_are_invalid_token() {
    run_group("json structure", json_structure()).await;
}

#[tokio::test]
async fn tampered_truncated_extended_and_recased_api_keys() {
    run_group("api keys", api_keys()).await;
}

#[tokio::test]
async fn garbage_empty_duplicated_huge_and_non_ascii_authorization() {
    run_group("authorization headers", authorization_headers()).await;
}

#[tokio::test]
async fn conflicting_credentials_are_refused() {
    run_group("conflicting credentials", conflicting_credentials()).await;
}

/// Every table again with board fallback on: every refusal stays the same 401 (never the
/// board), every control stays its actor, and only a request with no credential is the board.
#[tokio::test]
async fn with_board_fallback_every_bad_credential_is_still_401_never_the_board() {
    let mut all = Table::default();
    all.add(
        "no credentials at all",
        "the one request that is the board",
        BOARD,
        |_| Vec::new(),
    );
    all.add(
        "unrelated cookies only",
        "no credential either",
        BOARD,
        |_| vec![hv("cookie", "theme=dark; lang=en")],
    );
    all.add(
        "an empty access cookie",
        "a cleared cookie is no credential",
        BOARD,
        |_| access_cookie(""),
    );
    for (group, table) in [
        ("alg none", alg_none()),
        ("confusion", confusion_against_hs256()),
        ("kid", kid_injection()),
        ("crit", unknown_crit()),
        ("exp/nbf/iat", time_claims()),
        ("iss/aud/type", iss_aud_type()),
        ("kinds", token_kinds()),
        ("tampered", tampered_tokens()),
        ("json", json_structure()),
        ("api keys", api_keys()),
        ("authorization", authorization_headers()),
        ("conflicts", conflicting_credentials()),
    ] {
        all.extend(group, table);
    }
    // What the layer treats as no credential at all is the board; everything else keeps its
    // expectation.
    for case in &mut all.0 {
        if matches!(case.want, Want::Problem(_, "missing_credentials", _)) {
            case.want = BOARD;
            case.name = format!("{} (no credential: the board)", case.name);
        }
    }
    let fx = Fx::new(Ring::Hs256, Fallback::Board).await;
    let mut failures = run("board fallback", &fx, &all).await;
    for ring in [Ring::Rs256, Ring::EdDsa] {
        let fx = Fx::new(ring, Fallback::Board).await;
        failures.extend(
            run(
                &format!("board fallback/{ring:?} ring"),
                &fx,
                &confusion_against_asymmetric(),
            )
            .await,
        );
    }
    assert_no_failures(&failures);
}
