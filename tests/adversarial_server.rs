//! The adversarial suite against the real `portcullis` server over HTTP (issue 7, point 1).
//!
//! The credential cases are the shared corpus of `portcullis-testkit` (issue 14, point 6), the
//! same one `crates/portcullis-tower/tests/adversarial.rs` runs through `oneshot`: this file is
//! the harness — a server started with known secrets, its users, keys, agents and tokens made
//! through its own API, and `GET /auth/whoami` with each case's headers — and the cases only a
//! server can run: malformed bodies to `/auth/login` and `/auth/refresh` (below). The corpus
//! runs as an HS256 server, the same with board fallback, and as RS256 and EdDSA servers.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server};
use portcullis_testkit::corpus::{self, header};
use portcullis_testkit::jws::{flip_at, part, seg, sign, sign_seg, unsigned, with_seg};
use portcullis_testkit::{
    Alg, Fixture, Harness, Headers, Ids, Reply, Side, Table, assert_no_failures, run,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

const JWT_SECRET: &str = "adversarial-server-user-secret-0123456789-abcdef";
const AGENT_SECRET: &str = "adversarial-server-agent-secret-9876543210-zyxwvu";
const USER_PASSWORD: &str = "adversarial user password 1";

/// Unit-test keys of portcullis-core (they protect nothing).
const RS_PRIV: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/rs256.pem");
const RS_PUB: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/rs256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/eddsa.pem");
const ED_PUB: &[u8] = include_bytes!("../crates/portcullis-core/src/token/testdata/eddsa.pub.pem");

/// The server's clock: the wall clock.
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

/// A running server with two users in two orgs, their keys, two agents and valid tokens.
struct HttpServer {
    srv: Server,
    fx: Fixture,
}

impl HttpServer {
    /// Starts a server with `env`; `asymmetric` is its user ring's algorithm and public key when
    /// `env` configures one (HS256 with [`JWT_SECRET`] otherwise).
    async fn start(env: &[(&str, String)], asymmetric: Option<(Alg, &'static [u8])>) -> Self {
        let mut opts = Options::default().env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET);
        if asymmetric.is_none() {
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
        let (alice_id, alice, refresh) = users[0].clone();
        let (bob_id, bob, _) = users[1].clone();
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
        let (other_agent_id, other_run) = agents[1].clone();
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
        let fx = Fixture {
            clock: now,
            // The server's default `AUTH_JWT_LEEWAY_SECONDS`.
            leeway: 30,
            ring: asymmetric.map_or(Alg::Hs256, |(alg, _)| alg),
            user_secret: asymmetric.is_none().then(|| JWT_SECRET.as_bytes().to_vec()),
            agent_secret: AGENT_SECRET.as_bytes().to_vec(),
            public_pem: asymmetric.map(|(_, pem)| pem),
            jwk: None,
            user_kid: str_of(&part(&alice, 0), "kid"),
            agent_kid: str_of(&part(&run, 0), "kid"),
            org: "acme".into(),
            other_org: "globex".into(),
            alice,
            bob,
            refresh,
            run,
            other_run,
            alice_key,
            bob_key,
            agent_key,
            ids: Ids {
                alice: alice_id,
                bob: bob_id,
                alice_key: alice_key_id,
                agent: agent_id,
                other_agent: other_agent_id,
                // whoami names the board by kind only.
                board: None,
            },
        };
        fx.self_check();
        Self { srv, fx }
    }

    async fn hs256(env: &[(&str, String)]) -> Self {
        Self::start(env, None).await
    }

    /// Runs `table` as `group`, then checks the server still answers.
    async fn run(&self, group: &str, table: &Table) -> Vec<String> {
        let mut failures = run(group, self, table).await;
        let health = self
            .srv
            .client()
            .get(self.srv.url("/healthz"))
            .send()
            .await
            .unwrap();
        if health.status() != 200 {
            failures.push(format!(
                "[{group}] /healthz after the table: {}",
                health.status()
            ));
        }
        failures
    }
}

impl Harness for HttpServer {
    const SIDE: Side = Side::Server;

    fn fixture(&self) -> &Fixture {
        &self.fx
    }

    /// `GET /auth/whoami` with these headers.
    async fn send(&self, headers: &Headers) -> Reply {
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
        reply_of(res).await
    }
}

async fn reply_of(res: reqwest::Response) -> Reply {
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let (content_type, www_authenticate) = (header("content-type"), header("www-authenticate"));
    let retry_after = header("retry-after");
    Reply {
        status: res.status().as_u16(),
        content_type,
        www_authenticate,
        retry_after,
        body: res.bytes().await.unwrap().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn adversarial_credentials_are_refused_by_the_server() {
    let h = HttpServer::hs256(&[]).await;
    let mut failures = Vec::new();
    for (group, table) in corpus::hs256_groups() {
        failures.extend(h.run(&format!("server/{group}"), &table).await);
    }
    assert_no_failures(&failures);
}

/// The same corpus with `AUTH_FALLBACK=board`: every bad credential is still its 401, every
/// valid one still its actor, and only a request with no credential is the board.
#[tokio::test]
async fn with_board_fallback_every_bad_credential_is_still_401_never_the_board() {
    let h = HttpServer::hs256(&[("AUTH_FALLBACK", "board".into())]).await;
    let table = corpus::hs256_all().with_board_fallback();
    assert_no_failures(&h.run("board server", &table).await);
}

/// RS256 and EdDSA servers: their public key (as PEM, and as published in the JWKS) used as an
/// HS256 secret under their kid.
#[tokio::test]
async fn algorithm_confusion_against_asymmetric_servers() {
    let mut failures = Vec::new();
    for (alg, private, public) in [(Alg::Rs256, RS_PRIV, RS_PUB), (Alg::EdDsa, ED_PRIV, ED_PUB)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        std::fs::write(&path, private).unwrap();
        let mut h = HttpServer::start(
            &[
                ("AUTH_JWT_ALGORITHM", alg.jose().into()),
                ("AUTH_JWT_PRIVATE_KEY_FILE", path.display().to_string()),
            ],
            Some((alg, public)),
        )
        .await;
        // The kid an attacker reads from the JWKS is the one the tokens carry.
        let jwks: Value = h
            .srv
            .client()
            .get(h.srv.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwk = jwks["keys"][0].clone();
        assert_eq!(jwk["kid"], h.fx.user_kid.as_str(), "{jwks}");
        assert_eq!(part(&h.fx.alice, 0)["alg"], alg.jose());
        h.fx.jwk = Some(jwk);
        let group = format!("{} server", alg.jose());
        failures.extend(h.run(&group, &header::confusion_against_asymmetric()).await);
    }
    assert_no_failures(&failures);
}

// ---------------------------------------------------------------------------------------------
// Server only: malformed request bodies
// ---------------------------------------------------------------------------------------------

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
    let h = HttpServer::hs256(&[]).await;
    let fx = &h.fx;
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
    let refresh_claims = part(&fx.refresh, 1);
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
            with_seg(&fx.refresh, 1, |s| flip_at(s, s.len() / 2)),
            401,
            "invalid_token",
        ),
        (
            "truncated",
            fx.refresh[..fx.refresh.len() - 1].to_owned(),
            401,
            "invalid_token",
        ),
        (
            "exp 0",
            sign_seg(
                seg(&fx.refresh, 0),
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
                seg(&fx.refresh, 0),
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
    let client = h.srv.client();
    for (name, path, content_type, body, status, code) in &cases {
        let (got, ct, text) = if body.len() > 64 * 1024 {
            // The server may answer 413 and close before reading it all: a client writing the
            // whole body first would only see a broken pipe.
            raw_post(&h.srv.base, path, *content_type, body).await
        } else {
            let mut req = client.post(h.srv.url(path)).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", *ct);
            }
            let r = reply_of(req.send().await.unwrap()).await;
            (
                r.status,
                r.content_type,
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        };
        let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ct = ct.unwrap_or_default();
        if got != *status
            || doc["code"] != *code
            || doc["status"] != *status
            || !ct.starts_with("application/problem+json")
        {
            let mut body = text.clone();
            body.truncate(300);
            failures.push(format!(
                "[bodies] {name}\n    expected {status} {code}, got {got} ({ct}): {body}"
            ));
        }
        // The server still answers after each one.
        let health = client.get(h.srv.url("/healthz")).send().await.unwrap();
        if health.status() != 200 {
            failures.push(format!(
                "[bodies] /healthz after {name}: {}",
                health.status()
            ));
        }
    }
    println!("bodies: {} cases, {} failed", cases.len(), failures.len());
    // And still logs in and refreshes.
    let pair = h.srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = client
        .post(h.srv.url("/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "refresh after the malformed bodies");
    assert_no_failures(&failures);
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
