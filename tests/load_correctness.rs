//! Load with correct decisions: the real server under a known mix of requests — valid JWTs,
//! valid API keys, expired, revoked and forged tokens, forged keys (a fresh, checksum-valid
//! one each time), a key without the permission, no credentials — where every single response
//! is checked against the status and `code` it must have. Zero wrong decisions, zero 5xx, and
//! the server's memory stays bounded while it refuses a flood of distinct forged credentials.
//!
//! `LOAD_REQUESTS` (default 100 000) and `LOAD_CONCURRENCY` (default 32) size the run;
//! `PORTCULLIS_BIN=target/release/portcullis` loads the release build (BENCHMARKS.md).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Options, Server};
use portcullis::api_key::{self, ApiKeyPrefix};
use portcullis::ids::{OrgId, SessionId, UserId};
use portcullis::token::{
    AccessGrant, DEFAULT_MAX_TOKEN_BYTES, KeyRing, SigningKey, TokenPolicy, UserTokenTtl,
    UserTokens,
};
use portcullis::{ManualClock, Secret};
use serde_json::{Value, json};

const SECRET: &str = "load-test-user-secret-0123456789abcdef";
const AGENT_SECRET: &str = "load-test-agent-secret-0123456789abcdef";

/// What one request of the mix sends and must get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    ValidJwt,
    ValidKey,
    Expired,
    Revoked,
    ForgedJwt,
    ForgedKey,
    Insufficient,
    NoCredentials,
}

const MIX: [Case; 10] = [
    Case::ValidJwt,
    Case::ValidJwt,
    Case::ValidKey,
    Case::ValidKey,
    Case::Expired,
    Case::Revoked,
    Case::ForgedJwt,
    Case::ForgedKey,
    Case::Insufficient,
    Case::NoCredentials,
];

impl Case {
    fn expected(self) -> (u16, Option<&'static str>) {
        match self {
            Self::ValidJwt | Self::ValidKey => (200, None),
            Self::Expired => (401, Some("token_expired")),
            Self::Revoked => (401, Some("token_revoked")),
            Self::ForgedJwt => (401, Some("invalid_token")),
            Self::ForgedKey => (401, Some("invalid_api_key")),
            Self::Insufficient => (403, Some("insufficient_permissions")),
            Self::NoCredentials => (401, Some("missing_credentials")),
        }
    }
}

struct Creds {
    jwt: String,
    key: String,
    expired: String,
    revoked: String,
    narrow_key: String,
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A token for the user and session of `claims`, signed with the server's secret, issued at
/// `at` and living 60 s.
fn mint(claims: &Value, at: u64) -> String {
    let s = |k: &str| claims[k].as_str().unwrap().to_owned();
    let tokens = UserTokens::new(
        KeyRing::new(SigningKey::hs256(&Secret::from(SECRET))),
        TokenPolicy {
            issuer: "portcullis".into(),
            audience: "portcullis-api".into(),
            leeway_secs: 30,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        },
        UserTokenTtl {
            access_secs: 60,
            refresh_secs: 60,
            remember_me_secs: 60,
        },
    )
    .with_clock(Arc::new(ManualClock::new(at)));
    let (user, org, sid) = (
        UserId::from(s("sub")),
        OrgId::from(s("org_id")),
        SessionId::from(s("sid")),
    );
    let (email, role) = (s("email"), s("role"));
    let grant = AccessGrant {
        user_id: &user,
        email: &email,
        role: &role,
        org_id: &org,
        session_id: &sid,
    };
    tokens.mint_access(grant).unwrap().token.expose().to_owned()
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn setup(server: &Server) -> Creds {
    let http = server.client();
    let jwt = server.admin_token().await;
    let key_for = |perms: Value| {
        let http = http.clone();
        let jwt = jwt.clone();
        let url = server.url("/api-keys");
        async move {
            let res = http
                .post(url)
                .bearer_auth(&jwt)
                .json(&json!({"name": "load", "permissions": perms}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()["api_key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let key = key_for(json!(["memory:list"])).await;
    let narrow_key = key_for(json!(["session:list"])).await;
    // A second login, logged out: its access token is revoked.
    let revoked = server.admin_token().await;
    let res = http
        .post(server.url("/auth/logout"))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Signed right, for a live session, but two hours old.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = mint(&claims_of(&jwt), now - 7200);
    Creds {
        jwt,
        key,
        expired,
        revoked,
        narrow_key,
    }
}

/// A token with a valid shape and header whose signature is random: every one is distinct.
fn forged_jwt(valid: &str, n: u64) -> String {
    let (signing_input, _) = valid.rsplit_once('.').unwrap();
    let mut sig = format!("{n:043}");
    sig.truncate(43);
    format!("{signing_input}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_load_gets_only_correct_decisions_and_bounded_memory() {
    let total = env_num("LOAD_REQUESTS", 100_000);
    let concurrency = env_num("LOAD_CONCURRENCY", 32);
    let server = Server::start_with(
        Options::default()
            .env("AUTH_JWT_SECRET_KEY", SECRET)
            .env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET)
            .env("RUST_LOG", "warn"),
    );
    let creds = Arc::new(setup(&server).await);
    let url = Arc::new(server.url("/api/v1/memories"));
    let prefix = ApiKeyPrefix::default();
    let rss_before = server.rss_kib();

    let next = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let server_errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, creds) = (server.client(), url.clone(), creds.clone());
        let (next, wrong, server_errors) = (next.clone(), wrong.clone(), server_errors.clone());
        let prefix = prefix.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let case = MIX[(n % MIX.len() as u64) as usize];
                let req = http.get(url.as_str());
                let req = match case {
                    Case::ValidJwt => req.bearer_auth(&creds.jwt),
                    Case::ValidKey => req.header("x-api-key", &creds.key),
                    Case::Expired => req.bearer_auth(&creds.expired),
                    Case::Revoked => req.bearer_auth(&creds.revoked),
                    Case::ForgedJwt => req.bearer_auth(forged_jwt(&creds.jwt, n)),
                    Case::ForgedKey => {
                        req.header("x-api-key", api_key::generate(&prefix).key.expose())
                    }
                    Case::Insufficient => req.header("x-api-key", &creds.narrow_key),
                    Case::NoCredentials => req,
                };
                let res = req.timeout(Duration::from_secs(30)).send().await;
                let (status, body) = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        (s, r.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, e.to_string()),
                };
                if status >= 500 || status == 0 {
                    server_errors.fetch_add(1, Ordering::Relaxed);
                }
                let (want_status, want_code) = case.expected();
                let code = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned));
                if status != want_status || want_code.is_some_and(|c| code.as_deref() != Some(c)) {
                    let mut w = wrong.lock().unwrap();
                    if w.len() < 20 {
                        w.push(format!("#{n} {case:?}: got {status} {body}"));
                    } else {
                        w.push(String::new());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rss_after = server.rss_kib();
    let wrong = wrong.lock().unwrap();
    println!(
        "load: {total} requests, {concurrency} concurrent, {:.1} s, {:.0} req/s; \
         wrong decisions {}; 5xx or failed {}; server RSS {} KiB before, {} KiB after",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        wrong.len(),
        server_errors.load(Ordering::Relaxed),
        rss_before.unwrap_or(0),
        rss_after.unwrap_or(0),
    );
    assert!(
        wrong.is_empty(),
        "{} wrong decisions, first ones:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(server_errors.load(Ordering::Relaxed), 0);
    // A fifth of the requests carry a distinct forged credential; none of them may grow the
    // server past its bounded caches (100 000 negative key entries of well under 1 KiB each).
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        assert!(
            after < before + 256 * 1024,
            "server RSS grew from {before} KiB to {after} KiB"
        );
    }
}
