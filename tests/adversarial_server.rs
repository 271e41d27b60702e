//! The adversarial suite against the real `portcullis` server over HTTP (issue 7, point 1): the
//! families of `crates/portcullis-tower/tests/adversarial.rs`, smaller, through the binary; the
//! same table with board fallback on; algorithm confusion against RS256 and EdDSA servers; and
//! malformed bodies to `/auth/login` and `/auth/refresh`.
//!
//! Each server starts with known secrets, so tokens can be minted (`portcullis::token`) and
//! forged by hand (base64url JSON and HMAC-SHA256 on the crate's SHA-256). Every table runs in
//! full and then reports all failing cases at once.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server};
use portcullis::api_key::{self, ApiKeyPrefix, KeyHash};
use portcullis::ids::{AgentId, OrgId, RunId};
use portcullis::token::{
    AgentGrant, AgentTokens, DEFAULT_MAX_TOKEN_BYTES, KeyRing, SigningKey, TokenPolicy,
};
use portcullis::{ManualClock, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

const JWT_SECRET: &str = "adversarial-server-user-secret-0123456789-abcdef";
const AGENT_SECRET: &str = "adversarial-server-agent-secret-9876543210-zyxwvu";
const USER_PASSWORD: &str = "adversarial user password 1";

const BARE_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// Unit-test keys of portcullis-core (they protect nothing).
const RS_PRIV: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/rs256.pem");
const RS_PUB: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/rs256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/eddsa.pem");
const ED_PUB: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/eddsa.pub.pem");

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

fn sign_seg(header_segment: &str, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{header_segment}.{}", b64url(claims.to_string().as_bytes()));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

fn sign(header: &Value, claims: &Value, secret: &[u8]) -> String {
    sign_seg(&b64url(header.to_string().as_bytes()), claims, secret)
}

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

fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&unb64url(seg(token, i))).unwrap()
}

/// `token` with segment `i` replaced by `f(segment)`.
fn with_seg(token: &str, i: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut s: Vec<String> = token.split('.').map(str::to_owned).collect();
    s[i] = f(&s[i]);
    s.join(".")
}

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

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// A running server with two users in two orgs, their keys, two agents and valid tokens.
struct Fx {
    srv: Server,
    /// For an asymmetric user ring: its public key PEM.
    public_pem: Option<&'static [u8]>,
    user_kid: String,
    agent_kid: String,
    alice_id: String,
    /// alice's access token (role user, org acme).
    alice: String,
    alice_refresh: String,
    /// bob's access token (org globex).
    bob: String,
    alice_key_id: String,
    alice_key: String,
    bob_key: String,
    agent_id: String,
    /// The agent's run token (org acme).
    run: String,
    /// The agent's own API key.
    agent_key: String,
    /// Another agent's run token (org globex).
    run2: String,
    agent2_id: String,
}

impl Fx {
    async fn start(env: &[(&str, String)], public_pem: Option<&'static [u8]>) -> Self {
        let mut opts = Options::default().env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET);
        if public_pem.is_none() {
            opts = opts.env("AUTH_JWT_SECRET_KEY", JWT_SECRET);
        }
        for (k, v) in env {
            opts = opts.env(k, v);
        }
        let srv = Server::start_with(opts);
        let admin = srv.admin_token().await;
        let c = srv.client();
        let post = |path: &str, token: &str, body: Value| {
            let req = c.post(srv.url(path)).bearer_auth(token).json(&body);
            let path = path.to_owned();
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, 201, "POST {path}: {body}");
                body
            }
        };
        let mut users = Vec::new();
        for (email, org) in [
            ("alice@acme.example", "acme"),
            ("bob@globex.example", "globex"),
        ] {
            let created = post(
                "/users",
                &admin,
                json!({"email": email, "password": USER_PASSWORD, "role": "user", "org_id": org}),
            )
            .await;
            let pair = srv.login(email, USER_PASSWORD).await;
            users.push((
                str_of(&created, "id"),
                str_of(&pair, "access_token"),
                str_of(&pair, "refresh_token"),
            ));
        }
        let (alice_id, alice, alice_refresh) = users[0].clone();
        let bob = users[1].1.clone();
        let key = |token: String, agent: Option<String>| {
            let mut body = json!({"name": "adversarial", "permissions": ["memory:read"]});
            if let Some(agent) = agent {
                body["agent_id"] = json!(agent);
            }
            let fut = post("/api-keys", &token, body);
            async move {
                let k = fut.await;
                (str_of(&k, "key_id"), str_of(&k, "api_key"))
            }
        };
        let (alice_key_id, alice_key) = key(alice.clone(), None).await;
        let (_, bob_key) = key(bob.clone(), None).await;
        let mut agents = Vec::new();
        for org in ["acme", "globex"] {
            let agent = post(
                "/agents",
                &admin,
                json!({"name": "adversary", "org_id": org}),
            )
            .await;
            let id = str_of(&agent, "agent_id");
            let run = post(
                &format!("/agents/{id}/runs"),
                &admin,
                json!({"adapter_type": "claude_local"}),
            )
            .await;
            agents.push((id, str_of(&run, "token")));
        }
        let (agent_id, run) = agents[0].clone();
        let (agent2_id, run2) = agents[1].clone();
        // A key of the agent, made by an admin of its org.
        post(
            "/users",
            &admin,
            json!({"email": "root@acme.example", "password": USER_PASSWORD, "role": "admin", "org_id": "acme"}),
        )
        .await;
        let acme_admin = str_of(
            &srv.login("root@acme.example", USER_PASSWORD).await,
            "access_token",
        );
        let (_, agent_key) = key(acme_admin, Some(agent_id.clone())).await;
        let fx = Self {
            public_pem,
            user_kid: str_of(&part(&alice, 0), "kid"),
            agent_kid: str_of(&part(&run, 0), "kid"),
            alice_id,
            alice,
            alice_refresh,
            bob,
            alice_key_id,
            alice_key,
            bob_key,
            agent_id,
            run,
            agent_key,
            run2,
            agent2_id,
            srv,
        };
        assert_eq!(with_checksum(&fx.alice_key[..46]), fx.alice_key);
        // The hand-made HMAC signs exactly as the server does.
        let input = format!("{}.{}", seg(&fx.run, 0), seg(&fx.run, 1));
        assert_eq!(
            b64url(&hmac_sha256(AGENT_SECRET.as_bytes(), input.as_bytes())),
            seg(&fx.run, 2)
        );
        fx
    }

    async fn hs256(env: &[(&str, String)]) -> Self {
        Self::start(env, None).await
    }

    fn user_claims(&self) -> Value {
        let mut c = part(&self.alice, 1);
        c["iat"] = json!(now());
        c["exp"] = json!(now() + 600);
        c
    }

    fn agent_claims(&self) -> Value {
        let mut c = part(&self.run, 1);
        c["iat"] = json!(now());
        c["exp"] = json!(now() + 600);
        c
    }

    fn user_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.user_kid})
    }

    fn agent_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.agent_kid})
    }

    /// alice's claims edited, under the header the server writes, signed with the user secret.
    fn user_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = self.user_claims();
        edit(&mut c);
        sign_seg(seg(&self.alice, 0), &c, JWT_SECRET.as_bytes())
    }

    fn agent_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = self.agent_claims();
        edit(&mut c);
        sign_seg(seg(&self.run, 0), &c, AGENT_SECRET.as_bytes())
    }

    fn user_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut h, mut c) = (self.user_header(), self.user_claims());
        edit(&mut h, &mut c);
        sign(&h, &c, JWT_SECRET.as_bytes())
    }

    fn agent_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut h, mut c) = (self.agent_header(), self.agent_claims());
        edit(&mut h, &mut c);
        sign(&h, &c, AGENT_SECRET.as_bytes())
    }

    /// A run token of the agent minted elsewhere with the shared secret, for `company`.
    fn run_for_company(&self, company: &str) -> String {
        AgentTokens::new(
            KeyRing::new(SigningKey::hs256(&Secret::from(AGENT_SECRET))),
            TokenPolicy {
                issuer: "portcullis".into(),
                audience: "portcullis-agents".into(),
                leeway_secs: 30,
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            },
            600,
        )
        .with_clock(Arc::new(ManualClock::new(now())))
        .mint(AgentGrant {
            agent_id: &AgentId::from(self.agent_id.as_str()),
            company_id: &OrgId::from(company),
            adapter_type: "process",
            run_id: &RunId::from("run-elsewhere"),
        })
        .unwrap()
        .token
        .expose()
        .to_owned()
    }

    /// `GET /auth/whoami` with these headers.
    async fn whoami(&self, headers: &Headers) -> Reply {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let res = self
            .srv
            .client()
            .get(self.srv.url("/auth/whoami"))
            .headers(map)
            .send()
            .await
            .unwrap();
        Reply::of(res).await
    }
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    async fn of(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        Self {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// Cases and the table runner
// ---------------------------------------------------------------------------------------------

type Headers = Vec<(String, Vec<u8>)>;
type Build = Box<dyn Fn(&Fx) -> Headers>;

/// An actor `whoami` must describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Alice,
    AliceKey,
    Agent,
    Board,
}

#[derive(Clone, Copy, Debug)]
enum Want {
    Actor(Who),
    /// status, code, and for a 401 whether a credential was presented (the challenge then
    /// carries `error="invalid_token"`).
    Problem(u16, &'static str, bool),
}

const fn no(code: &'static str) -> Want {
    Want::Problem(401, code, true)
}

const INVALID_TOKEN: Want = no("invalid_token");
const INVALID_API_KEY: Want = no("invalid_api_key");
const INVALID_CREDENTIALS: Want = no("invalid_credentials");
const WRONG_TOKEN_TYPE: Want = no("wrong_token_type");
const TOKEN_EXPIRED: Want = no("token_expired");
const MISSING: Want = Want::Problem(401, "missing_credentials", false);
const ALICE: Want = Want::Actor(Who::Alice);
const ALICE_KEY: Want = Want::Actor(Who::AliceKey);
const AGENT: Want = Want::Actor(Who::Agent);
const BOARD: Want = Want::Actor(Who::Board);

struct Case {
    name: String,
    want: Want,
    build: Build,
}

#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    fn add(
        &mut self,
        name: impl Into<String>,
        want: Want,
        build: impl Fn(&Fx) -> Headers + 'static,
    ) {
        self.0.push(Case {
            name: name.into(),
            want,
            build: Box::new(build),
        });
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
        let r = fx.whoami(&headers).await;
        if let Err(why) = check(fx, &r, case.want, &headers) {
            let mut body = r.body.clone();
            body.truncate(400);
            failures.push(format!(
                "[{group}] {}\n    expected {:?}, got {} (WWW-Authenticate: {:?}): {why}\n    body: {body}",
                case.name,
                case.want,
                r.status,
                r.header("www-authenticate"),
            ));
        }
    }
    // The server still answers.
    let health = fx
        .srv
        .client()
        .get(fx.srv.url("/healthz"))
        .send()
        .await
        .unwrap();
    if health.status() != 200 {
        failures.push(format!(
            "[{group}] /healthz after the table: {}",
            health.status()
        ));
    }
    println!(
        "{group}: {} cases, {} failed",
        table.0.len(),
        failures.len()
    );
    failures
}

fn check(fx: &Fx, r: &Reply, want: Want, presented: &Headers) -> Result<(), String> {
    if r.status >= 500 {
        return Err("a 5xx".into());
    }
    let doc: Value = serde_json::from_str(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    match want {
        Want::Actor(who) => {
            if r.status != 200 {
                return Err("not a 200".into());
            }
            let (kind, id) = match who {
                Who::Alice => ("user", fx.alice_id.as_str()),
                Who::AliceKey => ("api_key", fx.alice_key_id.as_str()),
                Who::Agent => ("agent", fx.agent_id.as_str()),
                Who::Board => ("board", "board"),
            };
            if doc["kind"] != kind || (who != Who::Board && doc["id"] != id) {
                return Err(format!("actor {doc}"));
            }
        }
        Want::Problem(status, code, presented_credential) => {
            if r.status != status {
                return Err("wrong status".into());
            }
            let ct = r.header("content-type").unwrap_or_default();
            if !ct.starts_with("application/problem+json") {
                return Err(format!("content-type {ct:?}"));
            }
            if doc["code"] != code || doc["status"] != status {
                return Err(format!("code {} status {}", doc["code"], doc["status"]));
            }
            let challenge = if presented_credential {
                INVALID_TOKEN_CHALLENGE
            } else {
                BARE_CHALLENGE
            };
            if status == 401 && r.header("www-authenticate").as_deref() != Some(challenge) {
                return Err(format!("challenge, expected {challenge:?}"));
            }
            for (_, value) in presented {
                let value = String::from_utf8_lossy(value);
                for piece in value.split([' ', ';', '=', ',']) {
                    if piece.len() >= 16 && r.body.contains(piece) {
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

// ---------------------------------------------------------------------------------------------
// The credential table
// ---------------------------------------------------------------------------------------------

fn credentials() -> Table {
    let mut t = Table::default();
    // Controls: each refusal below differs from one of these in the defect it names.
    t.add("control: access token", ALICE, |fx| bearer(&fx.alice));
    t.add("control: access cookie", ALICE, |fx| {
        access_cookie(&fx.alice)
    });
    t.add("control: hand-signed access token", ALICE, |fx| {
        bearer(fx.user_forged(|_, _| {}))
    });
    t.add("control: key in X-API-Key", ALICE_KEY, |fx| {
        x_api_key(&fx.alice_key)
    });
    t.add("control: key as bearer", ALICE_KEY, |fx| {
        bearer(&fx.alice_key)
    });
    t.add("control: run token", AGENT, |fx| bearer(&fx.run));
    t.add("control: hand-signed run token", AGENT, |fx| {
        bearer(fx.agent_forged(|_, _| {}))
    });
    t.add("control: run token minted elsewhere", AGENT, |fx| {
        bearer(fx.run_for_company("acme"))
    });
    t.add("control: the agent's key", AGENT, |fx| {
        x_api_key(&fx.agent_key)
    });
    t.add("control: lowercase scheme", ALICE, |fx| {
        vec![hv("authorization", format!("bearer {}", fx.alice))]
    });

    // alg none.
    for casing in ["none", "None", "NONE", "nOnE"] {
        t.add(
            format!("alg {casing:?}, empty signature"),
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT"}),
                    &fx.user_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?}, no signature segment"),
            INVALID_TOKEN,
            move |fx| {
                let token = unsigned(
                    &json!({"alg": casing, "kid": fx.user_kid}),
                    &fx.user_claims(),
                );
                bearer(token.trim_end_matches('.'))
            },
        );
        t.add(
            format!("alg {casing:?}, valid HMAC kept"),
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(casing))),
        );
        t.add(
            format!("alg {casing:?}, agent token"),
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "kid": fx.agent_kid}),
                    &fx.agent_claims(),
                ))
            },
        );
    }
    // Algorithm confusion on the HS256 server.
    for alg in ["RS256", "EdDSA", "ES256", "HS512"] {
        t.add(
            format!("claims {alg}, HMAC-signed, our kid"),
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(alg))),
        );
    }
    // kid injection.
    for (label, kid) in [
        ("path traversal", json!("../../etc/passwd")),
        ("SQL injection", json!("' OR 1=1 --")),
        ("a NUL byte", json!("\u{0}")),
        ("5 000 characters", json!("k".repeat(5000))),
        ("non-ASCII", json!("ключ-🔑")),
        ("empty", json!("")),
    ] {
        let kid2 = kid.clone();
        t.add(
            format!("user token, kid {label}"),
            INVALID_TOKEN,
            move |fx| {
                let kid = kid.clone();
                bearer(fx.user_forged(move |h, _| h["kid"] = kid))
            },
        );
        t.add(
            format!("agent token, kid {label}"),
            INVALID_TOKEN,
            move |fx| {
                let kid = kid2.clone();
                bearer(fx.agent_forged(move |h, _| h["kid"] = kid))
            },
        );
    }
    // crit.
    for (label, crit) in [
        ("[\"exp\"]", json!(["exp"])),
        ("[]", json!([])),
        ("[\"b64\"]", json!(["b64"])),
    ] {
        t.add(format!("crit {label}"), INVALID_TOKEN, move |fx| {
            let crit = crit.clone();
            bearer(fx.user_forged(move |h, _| h["crit"] = crit))
        });
    }
    // exp, nbf, iat.
    let times: Vec<(&str, &str, Option<Value>, Want, Want)> = vec![
        ("exp", "missing", None, INVALID_TOKEN, INVALID_TOKEN),
        (
            "exp",
            "a string",
            Some(json!((now() + 600).to_string())),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "exp",
            "a bool",
            Some(json!(true)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "exp",
            "an object",
            Some(json!({})),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        ("exp", "-1", Some(json!(-1)), INVALID_TOKEN, INVALID_TOKEN),
        (
            "exp",
            "1e300",
            Some(json!(1e300)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        ("exp", "0", Some(json!(0)), TOKEN_EXPIRED, TOKEN_EXPIRED),
        ("exp", "1", Some(json!(1)), TOKEN_EXPIRED, TOKEN_EXPIRED),
        (
            "exp",
            "an hour ago",
            Some(json!(now() - 3600)),
            TOKEN_EXPIRED,
            TOKEN_EXPIRED,
        ),
        ("exp", "u64::MAX", Some(json!(u64::MAX)), ALICE, AGENT),
        (
            "exp",
            "a fraction in the future",
            Some(json!(now() as f64 + 600.5)),
            ALICE,
            AGENT,
        ),
        (
            "nbf",
            "u64::MAX",
            Some(json!(u64::MAX)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "nbf",
            "a year ahead",
            Some(json!(now() + 365 * 86_400)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "nbf",
            "a string",
            Some(json!("0")),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        ("nbf", "0", Some(json!(0)), ALICE, AGENT),
        (
            "iat",
            "u64::MAX",
            Some(json!(u64::MAX)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "iat",
            "1e300",
            Some(json!(1e300)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        (
            "iat",
            "negative",
            Some(json!(-5)),
            INVALID_TOKEN,
            INVALID_TOKEN,
        ),
        ("iat", "a float", Some(json!(1.5)), ALICE, AGENT),
        ("iat", "missing", None, ALICE, AGENT),
    ];
    for (claim, label, value, user_want, agent_want) in times {
        let value2 = value.clone();
        t.add(
            format!("user token, {claim} {label}"),
            user_want,
            move |fx| {
                let value = value.clone();
                bearer(fx.user_with(move |c| match value {
                    Some(v) => c[claim] = v,
                    None => {
                        c.as_object_mut().unwrap().remove(claim);
                    }
                }))
            },
        );
        t.add(
            format!("agent token, {claim} {label}"),
            agent_want,
            move |fx| {
                let value = value2.clone();
                bearer(fx.agent_with(move |c| match value {
                    Some(v) => c[claim] = v,
                    None => {
                        c.as_object_mut().unwrap().remove(claim);
                    }
                }))
            },
        );
    }
    // iss, aud, type.
    for (label, claim, value, want) in [
        (
            "iss foreign",
            "iss",
            json!("https://evil.example"),
            INVALID_TOKEN,
        ),
        (
            "aud of the agents",
            "aud",
            json!("portcullis-agents"),
            INVALID_TOKEN,
        ),
        ("aud an empty array", "aud", json!([]), INVALID_TOKEN),
        ("type refresh", "type", json!("refresh"), WRONG_TOKEN_TYPE),
        ("type ACCESS", "type", json!("ACCESS"), WRONG_TOKEN_TYPE),
        ("type missing", "type", Value::Null, INVALID_TOKEN),
    ] {
        t.add(format!("user token, {label}"), want, move |fx| {
            let value = value.clone();
            bearer(fx.user_with(move |c| {
                if value.is_null() {
                    c.as_object_mut().unwrap().remove(claim);
                } else {
                    c[claim] = value;
                }
            }))
        });
    }
    t.add("agent token, aud of the users", INVALID_TOKEN, |fx| {
        bearer(fx.agent_with(|c| c["aud"] = json!("portcullis-api")))
    });
    t.add("agent token, iss foreign", INVALID_TOKEN, |fx| {
        bearer(fx.agent_with(|c| c["iss"] = json!("evil")))
    });
    t.add(
        "user token, invalid UTF-8 in an unknown claim",
        INVALID_TOKEN,
        |fx| {
            // Not a JSON text (RFC 8259 §8.1), so not a claims set.
            let mut claims = fx.user_claims().to_string().into_bytes();
            claims.splice(1..1, br#""x":"?","#.iter().copied());
            claims[6] = 0xff;
            let input = format!("{}.{}", seg(&fx.alice, 0), b64url(&claims));
            let sig = hmac_sha256(JWT_SECRET.as_bytes(), input.as_bytes());
            bearer(format!("{input}.{}", b64url(&sig)))
        },
    );
    t.add("agent token, with a type", WRONG_TOKEN_TYPE, |fx| {
        bearer(fx.agent_with(|c| c["type"] = json!("access")))
    });
    // Kinds and families.
    t.add("refresh token as bearer", WRONG_TOKEN_TYPE, |fx| {
        bearer(&fx.alice_refresh)
    });
    t.add(
        "refresh token as the access cookie",
        WRONG_TOKEN_TYPE,
        |fx| access_cookie(&fx.alice_refresh),
    );
    t.add(
        "user token signed with the agent secret, agent kid",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.agent_header(),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, user kid",
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
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256"}),
                &fx.user_claims(),
                AGENT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, user kid",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.user_header(),
                &fx.agent_claims(),
                JWT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, agent kid",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.agent_header(),
                &fx.agent_claims(),
                JWT_SECRET.as_bytes(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, no kid",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256"}),
                &fx.agent_claims(),
                JWT_SECRET.as_bytes(),
            ))
        },
    );
    t.add("run token in the access cookie", INVALID_TOKEN, |fx| {
        access_cookie(&fx.run)
    });
    t.add("agent token for another company", INVALID_TOKEN, |fx| {
        bearer(fx.run_for_company("globex"))
    });
    t.add("agent token for its org re-cased", INVALID_TOKEN, |fx| {
        bearer(fx.run_for_company("ACME"))
    });
    t.add(
        "agent token naming the other agent, our company",
        INVALID_TOKEN,
        |fx| {
            let other = fx.agent2_id.clone();
            bearer(fx.agent_with(move |c| c["sub"] = json!(other)))
        },
    );
    // Tampered, truncated, extended tokens.
    for (kind, pick) in [("access", pick_alice as fn(&Fx) -> &str), ("run", pick_run)] {
        for (i, name) in ["header", "payload", "signature"].into_iter().enumerate() {
            t.add(
                format!("{kind} token, {name} tampered"),
                INVALID_TOKEN,
                move |fx| bearer(with_seg(pick(fx), i, |s| flip_at(s, s.len() / 2))),
            );
            t.add(
                format!("{kind} token, {name} cut by one char"),
                INVALID_TOKEN,
                move |fx| bearer(with_seg(pick(fx), i, |s| s[..s.len() - 1].to_owned())),
            );
            t.add(
                format!("{kind} token, {name} emptied"),
                INVALID_TOKEN,
                move |fx| bearer(with_seg(pick(fx), i, |_| String::new())),
            );
            t.add(
                format!("{kind} token, {name} missing"),
                INVALID_TOKEN,
                move |fx| {
                    let s: Vec<&str> = pick(fx)
                        .split('.')
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| p)
                        .collect();
                    bearer(s.join("."))
                },
            );
        }
        t.add(
            format!("{kind} token + trailing dot"),
            INVALID_TOKEN,
            move |fx| bearer(format!("{}.", pick(fx))),
        );
        t.add(
            format!("{kind} token + extra segment"),
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{}", seg(token, 2)))
            },
        );
        t.add(
            format!("{kind} token with a space inside"),
            INVALID_TOKEN,
            move |fx| {
                bearer(with_seg(pick(fx), 1, |s| {
                    format!("{} {}", &s[..4], &s[4..])
                }))
            },
        );
        t.add(
            format!("{kind} token with non-canonical signature bits"),
            INVALID_TOKEN,
            move |fx| {
                bearer(with_seg(pick(fx), 2, |s| {
                    let mut s = s.to_owned();
                    let last = s.pop().unwrap();
                    let idx = B64.iter().position(|&c| c == last as u8).unwrap();
                    s.push(char::from(B64[idx | 1]));
                    s
                }))
            },
        );
        t.add(
            format!("{kind} token upper-cased"),
            INVALID_TOKEN,
            move |fx| bearer(pick(fx).to_ascii_uppercase()),
        );
    }
    // API keys.
    type Mutate = fn(&str) -> String;
    fn r(
        label: &'static str,
        f: Mutate,
        header: Want,
        bearer: Want,
    ) -> (&'static str, Mutate, Want, Want) {
        (label, f, header, bearer)
    }
    for (label, mutate, via_header, via_bearer) in [
        r(
            "one char changed",
            |k| flip_at(k, 10),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "checksum char changed",
            |k| flip_at(k, k.len() - 1),
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
            "truncated to the prefix",
            |_| "ck_".to_owned(),
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
            "prefix upper-cased",
            |k| format!("CK_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "wrong prefix",
            |k| format!("sk_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "valid checksum, one char changed, never stored",
            |k| with_checksum(&flip_at(&k[..46], 20)),
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
    ] {
        t.add(format!("X-API-Key, {label}"), via_header, move |fx| {
            x_api_key(mutate(&fx.alice_key))
        });
        t.add(format!("Bearer key, {label}"), via_bearer, move |fx| {
            bearer(mutate(&fx.alice_key))
        });
    }
    // Authorization headers.
    let a = |v: &'static [u8]| move |_: &Fx| vec![hv("authorization", v)];
    t.add("Authorization garbage", INVALID_CREDENTIALS, a(b"garbage"));
    t.add("Authorization empty", INVALID_CREDENTIALS, a(b""));
    t.add("Bearer with nothing", INVALID_TOKEN, a(b"Bearer"));
    t.add("Bearer and a space", INVALID_TOKEN, a(b"Bearer "));
    t.add("Bearer and two spaces", INVALID_TOKEN, a(b"Bearer  "));
    t.add("Bearer garbage", INVALID_TOKEN, a(b"Bearer garbage"));
    t.add("Basic", INVALID_CREDENTIALS, a(b"Basic dXNlcjpwYXNz"));
    t.add(
        "Bearer, invalid UTF-8",
        INVALID_TOKEN,
        a(b"Bearer \xff\xfe\xfd"),
    );
    t.add(
        "Bearer, non-ASCII",
        INVALID_TOKEN,
        a("Bearer café.x.y".as_bytes()),
    );
    t.add("X-API-Key, invalid UTF-8", INVALID_API_KEY, |_| {
        x_api_key(b"ck_\xff\xfe")
    });
    t.add(
        "two Authorization headers, same token",
        INVALID_TOKEN,
        |fx| {
            let v = format!("Bearer {}", fx.alice);
            vec![hv("authorization", &v), hv("authorization", &v)]
        },
    );
    t.add(
        "two Authorization headers, two users",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("authorization", format!("Bearer {}", fx.bob)),
            ]
        },
    );
    t.add("60 000-byte bearer", INVALID_TOKEN, |_| {
        bearer("a".repeat(60_000))
    });
    t.add("valid token + 60 000 bytes", INVALID_TOKEN, |fx| {
        bearer(format!("{}{}", fx.alice, "a".repeat(60_000)))
    });
    t.add("60 000-byte bearer key", INVALID_API_KEY, |_| {
        bearer(format!("ck_{}", "a".repeat(60_000)))
    });
    t.add("60 000-byte X-API-Key", INVALID_API_KEY, |_| {
        x_api_key("a".repeat(60_000))
    });
    t.add("60 000-byte Basic", INVALID_CREDENTIALS, |_| {
        vec![hv("authorization", format!("Basic {}", "a".repeat(60_000)))]
    });
    t.add("60 000-byte access cookie", INVALID_TOKEN, |_| {
        access_cookie("a".repeat(60_000))
    });
    // Conflicting credentials.
    t.add("key of alice + token of bob", INVALID_CREDENTIALS, |fx| {
        vec![
            hv("x-api-key", &fx.alice_key),
            hv("authorization", format!("Bearer {}", fx.bob)),
        ]
    });
    t.add(
        "key of alice + key of bob as bearer",
        INVALID_CREDENTIALS,
        |fx| {
            vec![
                hv("x-api-key", &fx.alice_key),
                hv("authorization", format!("Bearer {}", fx.bob_key)),
            ]
        },
    );
    t.add(
        "token of alice + cookie of bob",
        INVALID_CREDENTIALS,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("cookie", format!("portcullis_access={}", fx.bob)),
            ]
        },
    );
    t.add(
        "the agent's key + the other agent's run token",
        INVALID_CREDENTIALS,
        |fx| {
            vec![
                hv("x-api-key", &fx.agent_key),
                hv("authorization", format!("Bearer {}", fx.run2)),
            ]
        },
    );
    t.add("valid token + a bad key", INVALID_API_KEY, |fx| {
        vec![
            hv("x-api-key", "ck_typo"),
            hv("authorization", format!("Bearer {}", fx.alice)),
        ]
    });
    t.add(
        "valid token + an unknown well-formed key",
        INVALID_API_KEY,
        |fx| {
            let stranger = api_key::generate(&ApiKeyPrefix::default())
                .key
                .expose()
                .to_owned();
            vec![
                hv("x-api-key", stranger),
                hv("authorization", format!("Bearer {}", fx.alice)),
            ]
        },
    );
    t.add("valid key + a garbage bearer", INVALID_TOKEN, |fx| {
        vec![
            hv("x-api-key", &fx.alice_key),
            hv("authorization", "Bearer garbage"),
        ]
    });
    t.add("valid token + a tampered cookie", INVALID_TOKEN, |fx| {
        let tampered = with_seg(&fx.alice, 2, |s| flip_at(s, 0));
        vec![
            hv("authorization", format!("Bearer {}", fx.alice)),
            hv("cookie", format!("portcullis_access={tampered}")),
        ]
    });
    t
}

fn pick_alice(fx: &Fx) -> &str {
    &fx.alice
}

fn pick_run(fx: &Fx) -> &str {
    &fx.run
}

/// `POST path` over a raw connection: the body is written concurrently with reading the answer,
/// and a write error (the server closing early) is ignored. (status, content type, body).
async fn raw_post(
    base: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        let _ = wr.flush().await;
        wr
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut buf = [0u8; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            // Done once the head and the announced body are in.
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(usize::MAX);
                if body.len() >= len {
                    break;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to POST {path} within 60 s");
    writer.abort();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let content_type = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-type")
            .then(|| v.trim().to_owned())
    });
    (status, content_type, body.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn adversarial_credentials_are_refused_by_the_server() {
    let fx = Fx::hs256(&[]).await;
    let mut t = credentials();
    t.add("no credentials", MISSING, |_| Vec::new());
    assert_no_failures(&run("server", &fx, &t).await);
}

/// The same table with `AUTH_FALLBACK=board`: every bad credential is still its 401, every
/// valid one still its actor, and only a request with no credential is the board.
#[tokio::test]
async fn with_board_fallback_every_bad_credential_is_still_401_never_the_board() {
    let fx = Fx::hs256(&[("AUTH_FALLBACK", "board".into())]).await;
    let mut t = credentials();
    t.add("no credentials", BOARD, |_| Vec::new());
    t.add("unrelated cookies only", BOARD, |_| {
        vec![hv("cookie", "theme=dark")]
    });
    assert_no_failures(&run("board server", &fx, &t).await);
}

/// RS256 and EdDSA servers: their public key (as PEM, and as published in the JWKS) used as an
/// HS256 secret under their kid.
#[tokio::test]
async fn algorithm_confusion_against_asymmetric_servers() {
    let mut failures = Vec::new();
    for (alg, private, public) in [("RS256", RS_PRIV, RS_PUB), ("EdDSA", ED_PRIV, ED_PUB)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        std::fs::write(&path, private).unwrap();
        let fx = Fx::start(
            &[
                ("AUTH_JWT_ALGORITHM", alg.into()),
                ("AUTH_JWT_PRIVATE_KEY_FILE", path.display().to_string()),
            ],
            Some(public),
        )
        .await;
        // The kid an attacker reads from the JWKS is the one the tokens carry.
        let jwks: Value = fx
            .srv
            .client()
            .get(fx.srv.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwk = jwks["keys"][0].clone();
        assert_eq!(jwk["kid"], fx.user_kid.as_str(), "{jwks}");
        assert_eq!(part(&fx.alice, 0)["alg"], alg);

        let mut t = Table::default();
        t.add("control: the server's own token", ALICE, |fx| {
            bearer(&fx.alice)
        });
        t.add("control: the agent ring is still HS256", AGENT, |fx| {
            bearer(&fx.run)
        });
        t.add(
            "HS256 with the public PEM, the ring's kid",
            INVALID_TOKEN,
            |fx| {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
                bearer(sign(&header, &fx.user_claims(), fx.public_pem.unwrap()))
            },
        );
        t.add(
            "HS256 with the public PEM trimmed, the ring's kid",
            INVALID_TOKEN,
            |fx| {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
                bearer(sign(
                    &header,
                    &fx.user_claims(),
                    fx.public_pem.unwrap().trim_ascii(),
                ))
            },
        );
        t.add("HS256 with the public PEM, no kid", INVALID_TOKEN, |fx| {
            bearer(sign(
                &json!({"alg": "HS256"}),
                &fx.user_claims(),
                fx.public_pem.unwrap(),
            ))
        });
        let jwk_text = jwk.to_string();
        t.add(
            "HS256 with the JWK as secret, the ring's kid",
            INVALID_TOKEN,
            move |fx| {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
                bearer(sign(&header, &fx.user_claims(), jwk_text.as_bytes()))
            },
        );
        let key_material = jwk["n"].as_str().or(jwk["x"].as_str()).unwrap().to_owned();
        t.add(
            "HS256 with the JWK's key material as secret",
            INVALID_TOKEN,
            move |fx| {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
                bearer(sign(&header, &fx.user_claims(), &unb64url(&key_material)))
            },
        );
        t.add(
            "the server's token re-headed as HS256",
            INVALID_TOKEN,
            |fx| {
                let mut header = part(&fx.alice, 0);
                header["alg"] = json!("HS256");
                bearer(with_seg(&fx.alice, 0, |_| {
                    b64url(header.to_string().as_bytes())
                }))
            },
        );
        t.add("alg none with the ring's kid", INVALID_TOKEN, |fx| {
            bearer(unsigned(
                &json!({"alg": "none", "kid": fx.user_kid}),
                &fx.user_claims(),
            ))
        });
        failures.extend(run(&format!("{alg} server"), &fx, &t).await);
    }
    assert_no_failures(&failures);
}

/// (name, path, content type, body, status, code).
type BodyCase = (
    String,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

/// Malformed bodies to `/auth/login` and `/auth/refresh`: each a 4xx problem with its exact code,
/// never a 5xx, and the server answers afterwards.
#[tokio::test]
async fn malformed_login_and_refresh_bodies_are_4xx_never_5xx() {
    let fx = Fx::hs256(&[]).await;
    const JSON: Option<&str> = Some("application/json");
    let deep_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let login = |email: &str, extra: &str| {
        format!(r#"{{"email":"{email}","password":"p"{extra}}}"#).into_bytes()
    };
    // (name, path, content type, body, status, code)
    let mut cases: Vec<BodyCase> = vec![
        (
            "login: 1 MiB body".into(),
            "/auth/login",
            JSON,
            login(
                "big@example.com",
                &format!(r#","pad":"{}""#, "x".repeat(1 << 20)),
            ),
            413,
            "payload_too_large",
        ),
        (
            "login: 10 MiB of whitespace".into(),
            "/auth/login",
            JSON,
            vec![b' '; 10 << 20],
            413,
            "payload_too_large",
        ),
        (
            "login: 60 000-byte password".into(),
            "/auth/login",
            JSON,
            format!(
                r#"{{"email":"long@example.com","password":"{}"}}"#,
                "p".repeat(60_000)
            )
            .into_bytes(),
            401,
            "invalid_credentials",
        ),
        (
            "login: 60 000-byte email".into(),
            "/auth/login",
            JSON,
            login(&"e".repeat(60_000), ""),
            401,
            "invalid_credentials",
        ),
        (
            "login: non-UTF-8 bytes".into(),
            "/auth/login",
            JSON,
            b"\xff\xfe\xfd{\"email\":1}".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: invalid UTF-8 in the email".into(),
            "/auth/login",
            JSON,
            b"{\"email\":\"\xff\xfe\",\"password\":\"p\"}".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: a lone surrogate escape".into(),
            "/auth/login",
            JSON,
            login(r"\ud800@example.com", ""),
            400,
            "invalid_request",
        ),
        (
            "login: 10 000 nested arrays".into(),
            "/auth/login",
            JSON,
            deep_arrays.clone().into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "login: 10 000 nested objects".into(),
            "/auth/login",
            JSON,
            deep_objects.clone().into_bytes(),
            400,
            "invalid_request",
        ),
        // Valid JSON: the unknown member is skipped (without recursion), the password is wrong.
        (
            "login: 10 000 nested arrays in an unknown member".into(),
            "/auth/login",
            JSON,
            login("deep@example.com", &format!(r#","x":{deep_arrays}"#)),
            401,
            "invalid_credentials",
        ),
        (
            "login: 10 000 nested arrays as the email".into(),
            "/auth/login",
            JSON,
            format!(r#"{{"email":{deep_arrays},"password":"p"}}"#).into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "login: email a number, password a bool".into(),
            "/auth/login",
            JSON,
            br#"{"email":1,"password":true}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: email an array".into(),
            "/auth/login",
            JSON,
            br#"{"email":["a@example.com"],"password":"p"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: email an object".into(),
            "/auth/login",
            JSON,
            br#"{"email":{"$ne":null},"password":{"$ne":null}}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: remember_me a string".into(),
            "/auth/login",
            JSON,
            login("rm@example.com", r#","remember_me":"yes""#),
            400,
            "invalid_request",
        ),
        (
            "login: email twice".into(),
            "/auth/login",
            JSON,
            br#"{"email":"a@example.com","email":"b@example.com","password":"p"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: password missing".into(),
            "/auth/login",
            JSON,
            br#"{"email":"a@example.com"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: null".into(),
            "/auth/login",
            JSON,
            b"null".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: an array".into(),
            "/auth/login",
            JSON,
            b"[]".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: a string".into(),
            "/auth/login",
            JSON,
            b"\"admin\"".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: empty".into(),
            "/auth/login",
            JSON,
            Vec::new(),
            400,
            "invalid_request",
        ),
        (
            "login: truncated JSON".into(),
            "/auth/login",
            JSON,
            br#"{"email":"a@exa"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "login: trailing garbage".into(),
            "/auth/login",
            JSON,
            login("tg@example.com", "}x"),
            400,
            "invalid_request",
        ),
        (
            "login: NUL bytes".into(),
            "/auth/login",
            JSON,
            vec![0; 1000],
            400,
            "invalid_request",
        ),
        (
            "login: no content type".into(),
            "/auth/login",
            None,
            login("ct@example.com", ""),
            415,
            "unsupported_media_type",
        ),
        (
            "login: text/plain".into(),
            "/auth/login",
            Some("text/plain"),
            login("ct@example.com", ""),
            415,
            "unsupported_media_type",
        ),
        (
            "login: a NUL in the email".into(),
            "/auth/login",
            JSON,
            login(r"nul\u0000@example.com", ""),
            400,
            "invalid_request",
        ),
        (
            "refresh: 1 MiB body".into(),
            "/auth/refresh",
            JSON,
            format!(r#"{{"refresh_token":"{}"}}"#, "x".repeat(1 << 20)).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "refresh: non-UTF-8 bytes".into(),
            "/auth/refresh",
            JSON,
            b"\xff\xfe\xfd".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "refresh: invalid UTF-8 in the token".into(),
            "/auth/refresh",
            JSON,
            b"{\"refresh_token\":\"\xff.\xfe.\xfd\"}".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "refresh: 10 000 nested arrays".into(),
            "/auth/refresh",
            JSON,
            deep_arrays.clone().into_bytes(),
            400,
            "invalid_request",
        ),
        // Valid JSON: an unknown member `a`, so no refresh_token in the body, and no cookie.
        (
            "refresh: 10 000 nested objects".into(),
            "/auth/refresh",
            JSON,
            deep_objects.clone().into_bytes(),
            401,
            "missing_credentials",
        ),
        (
            "refresh: 10 000 nested arrays as the token".into(),
            "/auth/refresh",
            JSON,
            format!(r#"{{"refresh_token":{deep_arrays}}}"#).into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "refresh: token a number".into(),
            "/auth/refresh",
            JSON,
            br#"{"refresh_token":1}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "refresh: token an object".into(),
            "/auth/refresh",
            JSON,
            br#"{"refresh_token":{}}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "refresh: an array".into(),
            "/auth/refresh",
            JSON,
            b"[]".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "refresh: not JSON, text/plain".into(),
            "/auth/refresh",
            Some("text/plain"),
            b"refresh please".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "refresh: token null, no cookie".into(),
            "/auth/refresh",
            JSON,
            br#"{"refresh_token":null}"#.to_vec(),
            401,
            "missing_credentials",
        ),
        (
            "refresh: whitespace only, no cookie".into(),
            "/auth/refresh",
            JSON,
            b" \n\t ".to_vec(),
            401,
            "missing_credentials",
        ),
        (
            "refresh: token empty".into(),
            "/auth/refresh",
            JSON,
            br#"{"refresh_token":""}"#.to_vec(),
            401,
            "invalid_token",
        ),
        (
            "refresh: token garbage".into(),
            "/auth/refresh",
            JSON,
            br#"{"refresh_token":"garbage"}"#.to_vec(),
            401,
            "invalid_token",
        ),
        (
            "refresh: 60 000-byte token".into(),
            "/auth/refresh",
            JSON,
            format!(r#"{{"refresh_token":"{}"}}"#, "a".repeat(60_000)).into_bytes(),
            401,
            "invalid_token",
        ),
    ];
    // Tokens of the wrong kind or forged, through the refresh endpoint.
    let refresh_claims = part(&fx.alice_refresh, 1);
    let forged: Vec<(&str, String, u16, &str)> = vec![
        ("an access token", fx.alice.clone(), 401, "wrong_token_type"),
        ("a run token", fx.run.clone(), 401, "invalid_token"),
        ("an API key", fx.alice_key.clone(), 401, "invalid_token"),
        (
            "alg none",
            unsigned(&json!({"alg": "none"}), &refresh_claims),
            401,
            "invalid_token",
        ),
        (
            "signed with the agent secret",
            sign(&fx.agent_header(), &refresh_claims, AGENT_SECRET.as_bytes()),
            401,
            "invalid_token",
        ),
        (
            "tampered",
            with_seg(&fx.alice_refresh, 1, |s| flip_at(s, s.len() / 2)),
            401,
            "invalid_token",
        ),
        (
            "truncated",
            fx.alice_refresh[..fx.alice_refresh.len() - 1].to_owned(),
            401,
            "invalid_token",
        ),
        (
            "exp 0",
            sign_seg(
                seg(&fx.alice_refresh, 0),
                &{
                    let mut c = refresh_claims.clone();
                    c["exp"] = json!(0);
                    c
                },
                JWT_SECRET.as_bytes(),
            ),
            401,
            "token_expired",
        ),
        (
            "exp a string",
            sign_seg(
                seg(&fx.alice_refresh, 0),
                &{
                    let mut c = refresh_claims.clone();
                    c["exp"] = json!("soon");
                    c
                },
                JWT_SECRET.as_bytes(),
            ),
            401,
            "invalid_token",
        ),
    ];
    for (label, token, status, code) in forged {
        cases.push((
            format!("refresh: {label}"),
            "/auth/refresh",
            JSON,
            serde_json::to_vec(&json!({ "refresh_token": token })).unwrap(),
            status,
            code,
        ));
    }
    let mut failures = Vec::new();
    let client = fx.srv.client();
    for (name, path, content_type, body, status, code) in &cases {
        let (got, ct, text) = if body.len() > 64 * 1024 {
            // The server may answer 413 and close before reading it all: a client writing the
            // whole body first would only see a broken pipe.
            raw_post(&fx.srv.base, path, *content_type, body).await
        } else {
            let mut req = client.post(fx.srv.url(path)).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", *ct);
            }
            let r = Reply::of(req.send().await.unwrap()).await;
            (r.status, r.header("content-type"), r.body)
        };
        let r = Reply {
            status: got,
            headers: HeaderMap::new(),
            body: text,
        };
        let doc: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let ct = ct.unwrap_or_default();
        if r.status != *status
            || doc["code"] != *code
            || doc["status"] != *status
            || !ct.starts_with("application/problem+json")
        {
            let mut body = r.body.clone();
            body.truncate(300);
            failures.push(format!(
                "[bodies] {name}\n    expected {status} {code}, got {} ({ct}): {body}",
                r.status
            ));
        }
        // The server still answers after each one.
        let health = client.get(fx.srv.url("/healthz")).send().await.unwrap();
        if health.status() != 200 {
            failures.push(format!(
                "[bodies] /healthz after {name}: {}",
                health.status()
            ));
        }
    }
    println!("bodies: {} cases, {} failed", cases.len(), failures.len());
    // And still logs in and refreshes.
    let pair = fx.srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = client
        .post(fx.srv.url("/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "refresh after the malformed bodies");
    assert_no_failures(&failures);
}
