//! The sample server (`portcullis serve`), several real processes at once: two instances on one
//! PostgreSQL database and one Redis behind an imaginary load balancer, a Redis that goes away
//! and comes back under a running server, and restarts on the same database.
//!
//! Needs PostgreSQL (`PORTCULLIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), Redis (`PORTCULLIS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) and, for the outage test, `redis-server` on the `PATH`. Under
//! `CI=true` an unreachable service fails the test; elsewhere the test says SKIPPED on stderr and
//! returns. The `portcullis` binary must be built (`cargo build -p portcullis-server`).
//!
//! The tests run one at a time (they time cross-instance invalidation on a small machine).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use common::contract::login_pair;
use common::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Cluster, CutProxy, Options, Server, assert_problem, redis_addr,
    redis_ping, redis_url, run, serial, service_unreachable as unreachable,
};
use serde_json::{Value, json};

/// Shared by every instance of one test: each verifies the others' tokens.
const JWT_SECRET: &str = common::CLUSTER_JWT_SECRET;
const AGENT_SECRET: &str = common::CLUSTER_AGENT_SECRET;
const USER_PASSWORD: &str = common::USER_PASSWORD;
/// How soon a revocation on one instance must be honoured by the other.
const BOUND: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Setup

/// Runs `trial` against a fresh pair of instances (see [`common::with_pair`]).
fn with_pair<F>(trial: F)
where
    F: AsyncFnOnce(&Server, &Server, String),
{
    common::with_pair("smi", trial);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

#[derive(Clone, Copy)]
enum Cred<'a> {
    Bearer(&'a str),
    Key(&'a str),
}

fn with(req: reqwest::RequestBuilder, cred: Cred<'_>) -> reqwest::RequestBuilder {
    match cred {
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Key(k) => req.header("x-api-key", k),
    }
}

async fn whoami(http: &reqwest::Client, s: &Server, cred: Cred<'_>) -> reqwest::Response {
    with(http.get(s.url("/auth/whoami")), cred)
        .send()
        .await
        .unwrap()
}

/// `GET /auth/whoami` must answer 200; the body.
async fn whoami_ok(http: &reqwest::Client, s: &Server, cred: Cred<'_>, what: &str) -> Value {
    let res = whoami(http, s, cred).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{what} on {}: {body}", s.base);
    serde_json::from_str(&body).unwrap()
}

/// Creates a user (role `user`) as `admin` on `s` and logs it in there;
/// `(id, access_token, refresh_token)`.
async fn user_session(
    http: &reqwest::Client,
    s: &Server,
    admin: &str,
    email: &str,
) -> (String, String, String) {
    let v = common::create_user(http, s, admin, email).await;
    let id = v["id"].as_str().expect("user id").to_owned();
    let (access, refresh) = login_pair(s, email, USER_PASSWORD).await;
    (id, access, refresh)
}

async fn refresh(http: &reqwest::Client, s: &Server, refresh_token: &str) -> reqwest::Response {
    http.post(s.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap()
}

/// Sends `req`, asserts the answer is `status`; its JSON body.
async fn expect_json(req: reqwest::RequestBuilder, status: u16, what: &str) -> Value {
    let res = req.send().await.unwrap();
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `POST /api-keys` as `cred`; `(key_id, api_key)`.
async fn create_key(
    http: &reqwest::Client,
    s: &Server,
    cred: Cred<'_>,
    body: Value,
) -> (String, String) {
    let req = with(http.post(s.url("/api-keys")), cred).json(&body);
    let v = expect_json(req, 201, "create API key").await;
    (
        v["key_id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

/// Polls `whoami` on `s` with `cred` every millisecond until it is refused (401), and asserts
/// that refusal is the problem `code`; how long after `since` it arrived and how many requests
/// that took.
async fn time_until_refused(
    http: &reqwest::Client,
    s: &Server,
    cred: Cred<'_>,
    since: Instant,
    code: &str,
) -> (Duration, u32) {
    let mut polls = 0;
    loop {
        let res = whoami(http, s, cred).await;
        polls += 1;
        match res.status().as_u16() {
            401 => {
                let latency = since.elapsed();
                assert_problem(res, 401, code).await;
                return (latency, polls);
            }
            200 => {}
            other => panic!(
                "unexpected {other} while polling {}: {}",
                s.base,
                res.text().await.unwrap()
            ),
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{} still accepts the credential 5 s after its revocation ({polls} polls)",
            s.base
        );
        // Not a busy loop: the polling must not starve the instances on a small machine.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A 503 `auth_unavailable` problem with a `Retry-After` header.
async fn assert_unavailable(res: reqwest::Response, what: &str) {
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        res.status() == 503,
        "{what}: want 503 auth_unavailable, got {}: {}",
        res.status(),
        res.text().await.unwrap()
    );
    assert_problem(res, 503, "auth_unavailable").await;
    let retry_after = retry_after.unwrap_or_else(|| panic!("{what}: 503 without Retry-After"));
    assert!(
        retry_after.trim().parse::<u64>().is_ok(),
        "{what}: Retry-After {retry_after:?} is not a number of seconds"
    );
}

// ---------------------------------------------------------------------------------------------
// (a) logout on A, refused by B

#[test]
fn a_logout_on_instance_a_is_refused_by_instance_b_within_100ms() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let (uid, access, refresh_token) =
            user_session(&ha, a, &admin, "lb-user@example.com").await;

        // Like a load balancer: every other request goes to the other instance. Both now know
        // (and may cache) the session.
        for i in 0..6 {
            let (s, h) = if i % 2 == 0 { (a, &ha) } else { (b, &hb) };
            let me = whoami_ok(h, s, Cred::Bearer(&access), "the user's token").await;
            assert_eq!(me["kind"], "user", "{me}");
            assert_eq!(me["id"], uid.as_str(), "{me}");
            assert_eq!(me["auth_method"], "jwt", "{me}");
        }

        revoke(
            ha.post(a.url("/auth/logout")).bearer_auth(&access),
            204,
            "logout on A",
        )
        .await;
        let logged_out = Instant::now();
        let (latency, polls) =
            time_until_refused(&hb, b, Cred::Bearer(&access), logged_out, "token_revoked").await;
        println!(
            "(a) logout on A -> first 401 token_revoked on B after {latency:?} ({polls} requests to B)"
        );
        assert!(
            latency < BOUND,
            "B accepted the token for {latency:?} after the logout on A"
        );

        // Dead everywhere, for good; the refresh token too. Other sessions are untouched.
        for (s, h) in [(a, &ha), (b, &hb)] {
            assert_problem(
                whoami(h, s, Cred::Bearer(&access)).await,
                401,
                "token_revoked",
            )
            .await;
            whoami_ok(h, s, Cred::Bearer(&admin), "the admin's token").await;
        }
        let res = refresh(&hb, b, &refresh_token).await;
        assert_eq!(res.status(), 401, "the logged-out refresh token on B");
    });
}

// ---------------------------------------------------------------------------------------------
// (b) key created on A, deleted on B, refused by A

#[test]
fn b_an_api_key_deleted_on_instance_b_is_refused_by_instance_a_within_100ms() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let body = |name: &str| json!({"name": name, "permissions": ["memory:read"]});
        let (id, key) = create_key(&ha, a, Cred::Bearer(&admin), body("doomed")).await;
        let (_, other) = create_key(&ha, a, Cred::Bearer(&admin), body("bystander")).await;

        // Both instances have both keys cached.
        for _ in 0..2 {
            for (s, h) in [(a, &ha), (b, &hb)] {
                for k in [&key, &other] {
                    let me = whoami_ok(h, s, Cred::Key(k), "the API key").await;
                    assert_eq!(me["kind"], "api_key", "{me}");
                    assert_eq!(me["auth_method"], "api_key", "{me}");
                    assert_eq!(me["permissions"], json!(["memory:read"]), "{me}");
                }
            }
        }

        // The admin's token minted on A is good on B: delete the key there.
        let req = hb
            .delete(b.url(&format!("/api-keys/{id}")))
            .bearer_auth(&admin);
        revoke(req, 204, "DELETE /api-keys/{id} on B").await;
        let deleted = Instant::now();
        let (latency, polls) =
            time_until_refused(&ha, a, Cred::Key(&key), deleted, "invalid_api_key").await;
        println!(
            "(b) key deleted on B -> first 401 invalid_api_key on A after {latency:?} ({polls} requests to A)"
        );
        assert!(
            latency < BOUND,
            "A accepted the deleted key for {latency:?} after the DELETE on B"
        );

        for (s, h) in [(a, &ha), (b, &hb)] {
            assert_problem(whoami(h, s, Cred::Key(&key)).await, 401, "invalid_api_key").await;
            whoami_ok(h, s, Cred::Key(&other), "the other key").await;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// (c) admin revoke-sessions on B, refused by A

#[test]
fn c_admin_revoke_sessions_on_instance_b_kills_the_users_tokens_on_instance_a_at_once() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        // Two sessions of the user, both in use on A (and one on B too).
        let (uid, t1, r1) = user_session(&ha, a, &admin, "revoked-user@example.com").await;
        let (t2, _) = login_pair(b, "revoked-user@example.com", USER_PASSWORD).await;
        for _ in 0..2 {
            for t in [&t1, &t2] {
                let me = whoami_ok(&ha, a, Cred::Bearer(t), "the user's token").await;
                assert_eq!(me["id"], uid.as_str(), "{me}");
            }
            whoami_ok(&hb, b, Cred::Bearer(&t1), "the user's token").await;
        }

        let admin_b = b.admin_token().await;
        let req = hb
            .post(b.url(&format!("/admin/users/{uid}/revoke-sessions")))
            .bearer_auth(&admin_b);
        revoke(req, 204, "revoke-sessions on B").await;
        let revoked = Instant::now();
        let mut figures = Vec::new();
        for (label, t) in [("first session", &t1), ("second session", &t2)] {
            let (latency, polls) =
                time_until_refused(&ha, a, Cred::Bearer(t), revoked, "token_revoked").await;
            figures.push(format!("{label}: {latency:?} ({polls} requests)"));
            assert!(
                latency < BOUND,
                "A accepted the {label} for {latency:?} after revoke-sessions on B"
            );
        }
        println!(
            "(c) revoke-sessions on B -> 401 token_revoked on A after {}",
            figures.join(", ")
        );

        let res = refresh(&ha, a, &r1).await;
        assert_eq!(res.status(), 401, "a revoked session's refresh token on A");
        for (s, h) in [(a, &ha), (b, &hb)] {
            whoami_ok(h, s, Cred::Bearer(&admin), "the admin's own token").await;
        }
        // The user can still log in again: a fresh session is unaffected.
        let (t3, _) = login_pair(b, "revoked-user@example.com", USER_PASSWORD).await;
        whoami_ok(
            &ha,
            a,
            Cred::Bearer(&t3),
            "a new session after the revocation",
        )
        .await;
    });
}

// ---------------------------------------------------------------------------------------------
// (d) Redis goes away and comes back under a running server

/// A `redis-server` of this test's own, on a free port, that can be killed and restarted.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn spawn(port: u16) -> std::io::Result<Child> {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }

    /// `None` (after SKIPPED, or a panic under CI) when `redis-server` cannot be run.
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match Self::spawn(port) {
            Ok(c) => c,
            Err(e) => {
                unreachable("redis-server (binary)", e);
                return None;
            }
        };
        let mut redis = Self {
            port,
            child: Some(child),
        };
        redis.wait_up();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_up(&mut self) {
        let addr = format!("127.0.0.1:{}", self.port);
        let start = Instant::now();
        while let Err(e) = redis_ping(&addr) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server on port {} not up after 10 s: {e}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Again on the same port (empty: it never saved anything).
    fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let start = Instant::now();
        loop {
            self.child = Some(Self::spawn(self.port).unwrap());
            std::thread::sleep(Duration::from_millis(50));
            match self.child.as_mut().unwrap().try_wait().unwrap() {
                // Port not free yet: try again.
                Some(_) if start.elapsed() < Duration::from_secs(10) => {
                    self.child = None;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => break,
            }
        }
        self.wait_up();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn readyz(http: &reqwest::Client, s: &Server) -> reqwest::Response {
    http.get(s.url("/readyz")).send().await.unwrap()
}

#[test]
fn d_readyz_and_protected_routes_fail_closed_while_redis_is_down_and_recover_without_restart() {
    let _serial = serial();
    run(async {
        let Some(mut redis) = PrivateRedis::start() else {
            return;
        };
        let prefix = format!("pc-smi-{}:", uuid::Uuid::new_v4().simple());
        // SQLite for the records (the harness's default); Redis for sessions, denylist, counters.
        let s = Server::start_with(
            Options::default()
                .env("REDIS_URL", &redis.url())
                .env("PORTCULLIS_REDIS_PREFIX", &prefix)
                .env("AUTH_JWT_SECRET_KEY", JWT_SECRET)
                .env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET),
        );
        // Bounded: a request that hangs on the dead Redis is a failure, not a stuck test.
        let h = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();

        let res = readyz(&h, &s).await;
        assert_eq!(res.status(), 200, "/readyz with Redis up");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["status"], "ready", "{v}");
        let (admin, _) = login_pair(&s, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        // A rate-limited key: its counter lives in Redis.
        let (_, key) = create_key(
            &h,
            &s,
            Cred::Bearer(&admin),
            json!({"name": "limited", "permissions": ["memory:read"], "rate_limit_per_minute": 10000}),
        )
        .await;
        for _ in 0..2 {
            whoami_ok(&h, &s, Cred::Bearer(&admin), "the admin's token").await;
            whoami_ok(&h, &s, Cred::Key(&key), "the rate-limited key").await;
        }

        redis.kill();
        let down = Instant::now();
        // Until /readyz notices, a protected request may still be answered from a cache (200) or
        // refused (503), never anything else.
        let (mut early_ok, mut early_refused) = (0, 0);
        loop {
            let res = whoami(&h, &s, Cred::Bearer(&admin)).await;
            let st = res.status().as_u16();
            assert!(
                st == 200 || st == 503,
                "whoami right after Redis died: {st}: {}",
                res.text().await.unwrap()
            );
            if st == 200 {
                early_ok += 1;
            } else {
                early_refused += 1;
            }
            let res = readyz(&h, &s).await;
            if res.status() == 503 {
                assert_unavailable(res, "/readyz with Redis down").await;
                break;
            }
            assert_eq!(res.status(), 200, "/readyz while Redis dies");
            assert!(
                down.elapsed() < Duration::from_secs(10),
                "/readyz still 200 10 s after Redis died"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let detected = down.elapsed();

        // The outage: every protected request is refused, closed, and says when to come back.
        let mut outage = Duration::ZERO;
        for _ in 0..3 {
            for (what, cred) in [
                ("the admin's token", Cred::Bearer(&admin)),
                ("the rate-limited key", Cred::Key(&key)),
            ] {
                let t = Instant::now();
                let res = whoami(&h, &s, cred).await;
                outage = outage.max(t.elapsed());
                assert_unavailable(res, &format!("whoami with {what}, Redis down")).await;
            }
        }
        // No session can be created either.
        let res = h
            .post(s.url("/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_unavailable(res, "login, Redis down").await;
        let res = readyz(&h, &s).await;
        assert_unavailable(res, "/readyz, still down").await;
        let healthz = h.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(
            healthz.status(),
            200,
            "/healthz answers while Redis is down"
        );

        redis.restart();
        let up = Instant::now();
        loop {
            let res = readyz(&h, &s).await;
            if res.status() == 200 {
                break;
            }
            assert_unavailable(res, "/readyz while Redis comes back").await;
            assert!(
                up.elapsed() < Duration::from_secs(30),
                "/readyz still 503 30 s after Redis came back (no restart of the server)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let recovered = up.elapsed();

        // Redis came back empty: the old session is gone, but the server works again.
        let res = whoami(&h, &s, Cred::Bearer(&admin)).await;
        let old = res.status().as_u16();
        assert!(
            old == 200 || old == 401,
            "the pre-outage token after recovery: {old}: {}",
            res.text().await.unwrap()
        );
        let (fresh, _) = login_pair(&s, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        whoami_ok(
            &h,
            &s,
            Cred::Bearer(&fresh),
            "a token from after the outage",
        )
        .await;
        whoami_ok(
            &h,
            &s,
            Cred::Key(&key),
            "the rate-limited key after the outage",
        )
        .await;

        println!(
            "(d) Redis killed: /readyz 503 after {detected:?} (whoami before that: {early_ok} x 200, {early_refused} x 503); \
             slowest protected request during the outage {outage:?}, all 503 auth_unavailable \
             with Retry-After; Redis back: /readyz 200 after {recovered:?} without a restart; \
             pre-outage token afterwards: {old}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// (e) restarts

/// State left behind by the first run of a server, checked against the second.
struct Before {
    live_key: String,
    dead_key: String,
    dead_token: String,
    dead_refresh: String,
    live_token: String,
    live_refresh: String,
    admin_token: String,
}

async fn leave_state(s: &Server) -> Before {
    let h = s.client();
    let admin_token = s.admin_token().await;
    let (_, dead_token, dead_refresh) =
        user_session(&h, s, &admin_token, "restart-user@example.com").await;
    let res = h
        .post(s.url("/auth/logout"))
        .bearer_auth(&dead_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "logout");
    assert_problem(
        whoami(&h, s, Cred::Bearer(&dead_token)).await,
        401,
        "token_revoked",
    )
    .await;
    let (live_token, live_refresh) = login_pair(s, "restart-user@example.com", USER_PASSWORD).await;
    whoami_ok(&h, s, Cred::Bearer(&live_token), "the live session").await;

    let body = |name: &str| json!({"name": name, "permissions": ["memory:read", "memory:list"]});
    let (_, live_key) = create_key(&h, s, Cred::Bearer(&admin_token), body("kept")).await;
    let (dead_id, dead_key) = create_key(&h, s, Cred::Bearer(&admin_token), body("deleted")).await;
    whoami_ok(&h, s, Cred::Key(&live_key), "the key").await;
    whoami_ok(&h, s, Cred::Key(&dead_key), "the key to delete").await;
    let res = h
        .delete(s.url(&format!("/api-keys/{dead_id}")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "delete key");
    assert_problem(
        whoami(&h, s, Cred::Key(&dead_key)).await,
        401,
        "invalid_api_key",
    )
    .await;
    Before {
        live_key,
        dead_key,
        dead_token,
        dead_refresh,
        live_token,
        live_refresh,
        admin_token,
    }
}

async fn check_state(s: &Server, before: &Before) {
    let h = s.client();
    let me = whoami_ok(
        &h,
        s,
        Cred::Key(&before.live_key),
        "a key from before the restart",
    )
    .await;
    assert_eq!(me["kind"], "api_key", "{me}");
    assert_eq!(
        me["permissions"],
        json!(["memory:list", "memory:read"]),
        "{me}"
    );
    assert_problem(
        whoami(&h, s, Cred::Key(&before.dead_key)).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_problem(
        whoami(&h, s, Cred::Bearer(&before.dead_token)).await,
        401,
        "token_revoked",
    )
    .await;
    let res = refresh(&h, s, &before.dead_refresh).await;
    assert_eq!(
        res.status(),
        401,
        "a logged-out refresh token after the restart"
    );
    let me = whoami_ok(
        &h,
        s,
        Cred::Bearer(&before.live_token),
        "a live session's token from before the restart",
    )
    .await;
    assert_eq!(me["kind"], "user", "{me}");
    let res = refresh(&h, s, &before.live_refresh).await;
    assert_eq!(
        res.status(),
        200,
        "a live refresh token after the restart: {}",
        res.text().await.unwrap()
    );
    // One admin, one user: the admin was not created twice.
    let res = h
        .get(s.url("/admin/stats"))
        .bearer_auth(&before.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "/admin/stats");
    let stats: Value = res.json().await.unwrap();
    assert_eq!(stats["users"], 2, "{stats}");
}

#[test]
fn e_a_restart_on_sqlite_loses_no_key_session_or_revocation() {
    let _serial = serial();
    run(async {
        let opts = Options::default()
            .env("AUTH_JWT_SECRET_KEY", JWT_SECRET)
            .env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET);
        let first = Server::start_with(opts.clone());
        let before = leave_state(&first).await;
        let dir = first.dir.clone();
        let _keep = first.stop();
        let second = Server::start_with(Options {
            dir: Some(dir),
            ..opts
        });
        check_state(&second, &before).await;
        println!("(e) SQLite: keys, sessions and revocations survived a restart");
    });
}

#[test]
fn e_a_restart_on_postgres_and_redis_loses_no_key_session_or_revocation() {
    let _serial = serial();
    run(async {
        let Some(cluster) = Cluster::new("smi").await else {
            return;
        };
        let first = Server::start_with(cluster.options());
        let before = leave_state(&first).await;
        drop(first.stop());
        let second = Server::start_with(cluster.options());
        check_state(&second, &before).await;
        drop(second);
        println!("(e) PostgreSQL + Redis: keys, sessions and revocations survived a restart");
        cluster.drop_database().await;
    });
}

// ---------------------------------------------------------------------------------------------
// (f) revoke on A, use on B at once: never accepted after the 2xx

/// Trials per kind of revocation.
const TRIALS: usize = 40;

/// Revocations on A, each followed at once by one request on B with the revoked credential.
#[derive(Default)]
struct Tally {
    /// How long each revoking request took on A, to its 2xx.
    revoke: Vec<Duration>,
    /// Requests on B with a revoked credential, right after the revocation's 2xx.
    uses: usize,
    /// Those of them answered 200.
    accepted: usize,
}

impl Tally {
    fn report(mut self, kind: &str) {
        self.revoke.sort_unstable();
        let pct = |p: usize| self.revoke[(self.revoke.len() * p / 100).min(self.revoke.len() - 1)];
        println!(
            "(f) {kind}: {} trials, accepted on B after the 2xx on A: {} of {} requests; revoking \
             request on A: median {:?}, p95 {:?}, max {:?}",
            self.revoke.len(),
            self.accepted,
            self.uses,
            pct(50),
            pct(95),
            self.revoke.last().copied().unwrap_or_default()
        );
        assert_eq!(
            self.accepted, 0,
            "{kind}: B accepted the credential after the revocation's 2xx on A"
        );
    }
}

/// Sends the revoking request, which must answer `want`; how long it took.
async fn revoke(req: reqwest::RequestBuilder, want: u16, what: &str) -> Duration {
    let started = Instant::now();
    let res = req.send().await.unwrap();
    let took = started.elapsed();
    let status = res.status().as_u16();
    assert_eq!(status, want, "{what}: {}", res.text().await.unwrap());
    took
}

/// The request on B right after the revocation: a 401 `code`, or (counted) a 200.
async fn use_on_b(h: &reqwest::Client, b: &Server, cred: Cred<'_>, code: &str, tally: &mut Tally) {
    let res = whoami(h, b, cred).await;
    tally.uses += 1;
    if res.status() == 200 {
        tally.accepted += 1;
    } else {
        assert_problem(res, 401, code).await;
    }
}

/// Makes sure B has the credential cached (its second use is a cache hit).
async fn warm(h: &reqwest::Client, s: &Server, cred: Cred<'_>) {
    for _ in 0..2 {
        whoami_ok(h, s, cred, "the credential before its revocation").await;
    }
}

#[test]
fn f_a_logout_on_a_is_refused_by_b_on_the_very_next_request() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let mut tally = Tally::default();
        // A user per trial: one email gets 10 password checks a minute.
        for i in 0..TRIALS {
            let email = format!("trial-user-{i}@example.com");
            let (_, token, _) = user_session(&ha, a, &admin, &email).await;
            warm(&hb, b, Cred::Bearer(&token)).await;
            let req = ha.post(a.url("/auth/logout")).bearer_auth(&token);
            tally.revoke.push(revoke(req, 204, "logout on A").await);
            use_on_b(&hb, b, Cred::Bearer(&token), "token_revoked", &mut tally).await;
        }
        tally.report("logout");
    });
}

#[test]
fn f_revoke_sessions_on_a_is_refused_by_b_on_the_very_next_request() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let mut tally = Tally::default();
        // A user per trial: one email gets 10 password checks a minute.
        for i in 0..TRIALS {
            let email = format!("trial-user-{i}@example.com");
            let (uid, token, _) = user_session(&ha, a, &admin, &email).await;
            warm(&hb, b, Cred::Bearer(&token)).await;
            let req = ha
                .post(a.url(&format!("/admin/users/{uid}/revoke-sessions")))
                .bearer_auth(&admin);
            tally
                .revoke
                .push(revoke(req, 204, "revoke-sessions on A").await);
            use_on_b(&hb, b, Cred::Bearer(&token), "token_revoked", &mut tally).await;
        }
        tally.report("revoke-sessions");
    });
}

#[test]
fn f_a_key_disabled_on_a_is_refused_by_b_on_the_very_next_request() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let mut tally = Tally::default();
        for i in 0..TRIALS {
            let body = json!({"name": format!("k{i}"), "permissions": ["memory:read"]});
            let (id, key) = create_key(&ha, a, Cred::Bearer(&admin), body).await;
            warm(&hb, b, Cred::Key(&key)).await;
            let req = ha
                .patch(a.url(&format!("/api-keys/{id}")))
                .bearer_auth(&admin)
                .json(&json!({"enabled": false}));
            tally.revoke.push(revoke(req, 200, "disable on A").await);
            use_on_b(&hb, b, Cred::Key(&key), "api_key_disabled", &mut tally).await;
        }
        tally.report("key disable");
    });
}

#[test]
fn f_a_key_deleted_on_a_is_refused_by_b_on_the_very_next_request() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let mut tally = Tally::default();
        for i in 0..TRIALS {
            let body = json!({"name": format!("k{i}"), "permissions": ["memory:read"]});
            let (id, key) = create_key(&ha, a, Cred::Bearer(&admin), body).await;
            warm(&hb, b, Cred::Key(&key)).await;
            let req = ha
                .delete(a.url(&format!("/api-keys/{id}")))
                .bearer_auth(&admin);
            tally.revoke.push(revoke(req, 204, "delete on A").await);
            use_on_b(&hb, b, Cred::Key(&key), "invalid_api_key", &mut tally).await;
        }
        tally.report("key delete");
    });
}

/// A new agent, a run token of it and a key acting as it; `(agent_id, run_token, key)`.
async fn agent_with_credentials(
    h: &reqwest::Client,
    s: &Server,
    admin: &str,
    name: &str,
) -> (String, String, String) {
    let res = h
        .post(s.url("/agents"))
        .bearer_auth(admin)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create agent");
    let v: Value = res.json().await.unwrap();
    let agent = v["agent_id"].as_str().unwrap().to_owned();
    let res = h
        .post(s.url(&format!("/agents/{agent}/runs")))
        .bearer_auth(admin)
        .json(&json!({"adapter_type": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create run");
    let v: Value = res.json().await.unwrap();
    let run = v["token"].as_str().unwrap().to_owned();
    let body =
        json!({"name": format!("{name}-key"), "permissions": ["memory:read"], "agent_id": agent});
    let (_, key) = create_key(h, s, Cred::Bearer(admin), body).await;
    (agent, run, key)
}

#[test]
fn f_an_agent_terminated_on_a_is_refused_by_b_on_the_very_next_request() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let mut tally = Tally::default();
        for i in 0..TRIALS {
            let (agent, run, key) =
                agent_with_credentials(&ha, a, &admin, &format!("agent{i}")).await;
            warm(&hb, b, Cred::Bearer(&run)).await;
            warm(&hb, b, Cred::Key(&key)).await;
            let req = ha
                .post(a.url(&format!("/agents/{agent}/terminate")))
                .bearer_auth(&admin);
            tally.revoke.push(revoke(req, 204, "terminate on A").await);
            // Alternate which credential is tried first, so each is "the very next request".
            let creds = [Cred::Bearer(&run), Cred::Key(&key)];
            for cred in [creds[i % 2], creds[(i + 1) % 2]] {
                use_on_b(&hb, b, cred, "agent_terminated", &mut tally).await;
            }
        }
        tally.report("agent terminate");
    });
}

// ---------------------------------------------------------------------------------------------
// (g) publishing fails: 503, and the retry publishes

/// Repeats a revoking request until it is no longer 503 (each 503 checked); the final status.
async fn retry_until_not_503(
    make: impl Fn() -> reqwest::RequestBuilder,
    what: &str,
) -> reqwest::Response {
    let started = Instant::now();
    loop {
        let res = make().send().await.unwrap();
        if res.status() != 503 {
            return res;
        }
        assert_unavailable(res, what).await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: still 503 20 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A's link to Redis cut (B's intact): disabling or deleting a key and terminating an agent on A
/// are stored but cannot be published, so each is a 503 `auth_unavailable` with Retry-After —
/// never a 2xx while B may still serve its cached copy. Once the link is back, repeating each
/// request publishes (the delete finds its key: not a 404) and the credentials are dead on both
/// instances at once.
#[test]
fn g_a_revocation_that_cannot_be_published_is_503_and_its_retry_publishes_to_both_instances() {
    let _serial = serial();
    run(async {
        let Some(cluster) = Cluster::new("smi").await else {
            return;
        };
        let proxy = CutProxy::start(redis_addr(&redis_url())).await;
        let a = Server::start_with(
            cluster
                .options()
                .env("REDIS_URL", &format!("redis://127.0.0.1:{}", proxy.port)),
        );
        let b = Server::start_with(cluster.options());
        let h = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let admin = a.admin_token().await;
        // The revoking requests carry an API key: A reads keys from PostgreSQL, so they reach
        // the handler while Redis is cut off (a session token would be refused before it).
        let all = json!(["admin:read", "admin:write", "memory:read"]);
        let (_, admin_key) = create_key(
            &h,
            &a,
            Cred::Bearer(&admin),
            json!({"name": "ops", "permissions": all}),
        )
        .await;
        let body = |name: &str| json!({"name": name, "permissions": ["memory:read"]});
        let (disable_id, disable_key) = create_key(&h, &a, Cred::Key(&admin_key), body("d")).await;
        let (delete_id, delete_key) = create_key(&h, &a, Cred::Key(&admin_key), body("x")).await;
        let (agent, run_token, agent_key) = agent_with_credentials(&h, &a, &admin, "g").await;
        // What A answers while the link is cut (the unconfirmed delete only disabled its key),
        // and what both answer once the retries went through.
        let victims = [
            (
                "the disabled key",
                Cred::Key(&disable_key),
                "api_key_disabled",
                "api_key_disabled",
            ),
            (
                "the deleted key",
                Cred::Key(&delete_key),
                "api_key_disabled",
                "invalid_api_key",
            ),
            (
                "the agent's run token",
                Cred::Bearer(&run_token),
                "agent_terminated",
                "agent_terminated",
            ),
            (
                "the agent's key",
                Cred::Key(&agent_key),
                "agent_terminated",
                "agent_terminated",
            ),
        ];
        for (_, cred, _, _) in victims {
            warm(&h, &a, cred).await;
            warm(&h, &b, cred).await;
        }

        proxy.set_up(false);
        let disable = || {
            h.patch(a.url(&format!("/api-keys/{disable_id}")))
                .header("x-api-key", &admin_key)
                .json(&json!({"enabled": false}))
        };
        let delete = || {
            h.delete(a.url(&format!("/api-keys/{delete_id}")))
                .header("x-api-key", &admin_key)
        };
        let terminate = || {
            h.post(a.url(&format!("/agents/{agent}/terminate")))
                .header("x-api-key", &admin_key)
        };
        let started = Instant::now();
        assert_unavailable(disable().send().await.unwrap(), "disable, Redis cut").await;
        assert_unavailable(delete().send().await.unwrap(), "delete, Redis cut").await;
        assert_unavailable(terminate().send().await.unwrap(), "terminate, Redis cut").await;
        let refused_in = started.elapsed();
        // A fails closed on what it stored; B was not told (it may serve its cached copy).
        let mut b_still = 0;
        for (_, cred, cut_code, _) in victims {
            assert_problem(whoami(&h, &a, cred).await, 401, cut_code).await;
            if whoami(&h, &b, cred).await.status() == 200 {
                b_still += 1;
            }
        }

        proxy.set_up(true);
        let back = Instant::now();
        let res = retry_until_not_503(disable, "disable, retried").await;
        assert_eq!(
            res.status(),
            200,
            "disable, retried: {}",
            res.text().await.unwrap()
        );
        let res = retry_until_not_503(delete, "delete, retried").await;
        assert_eq!(
            res.status(),
            204,
            "delete, retried (the key must still be found): {}",
            res.text().await.unwrap()
        );
        let res = retry_until_not_503(terminate, "terminate, retried").await;
        assert_eq!(
            res.status(),
            204,
            "terminate, retried: {}",
            res.text().await.unwrap()
        );
        let published_in = back.elapsed();
        for (what, cred, _, code) in victims {
            for s in [&b, &a] {
                let res = whoami(&h, s, cred).await;
                assert_eq!(
                    res.status(),
                    401,
                    "{what} on {} after the retried revocation",
                    s.base
                );
                assert_problem(res, 401, code).await;
            }
        }
        println!(
            "(g) Redis cut from A: disable, delete, terminate each 503 auth_unavailable with \
             Retry-After ({refused_in:?} for the three); B still served {b_still} of 4 cached \
             credentials; link back: the retries published after {published_in:?} and all 4 \
             credentials were refused on both instances at once"
        );
        drop((a, b));
        cluster.drop_database().await;
    });
}

// ---------------------------------------------------------------------------------------------
// (h) instances started at the same moment on a fresh database

/// As README's "several instances" starts them: at once, on an empty database. Each migrates
/// and tries to create the first user; every one must come up, and there is one admin.
#[test]
fn h_instances_started_at_once_on_a_fresh_database_all_come_up_with_one_admin() {
    let _serial = serial();
    run(async {
        let Some(cluster) = Cluster::new("smi").await else {
            return;
        };
        let servers: Vec<Server> = std::thread::scope(|s| {
            let started: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Server::start_with(cluster.options())))
                .collect();
            // `start_with` panics (with the server's output) when one does not come up.
            started.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let http = reqwest::Client::new();
        for s in &servers {
            let res = readyz(&http, s).await;
            assert_eq!(
                res.status(),
                200,
                "an instance is not ready: {}",
                s.output()
            );
        }
        let token = servers[0].admin_token().await;
        let stats: Value = http
            .get(servers[3].url("/admin/stats"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["users"], 1, "{stats}");
        drop(servers);
        cluster.drop_database().await;
    });
}

// ---------------------------------------------------------------------------------------------
// (i) a key rerolled on A: its old secret lives for the overlap on both instances, then dies on both

/// `n` concurrent `whoami` requests with `X-API-Key: key`, alternating between `a` and `b`; the
/// status and problem `code` (empty for a 200) of each.
async fn burst(a: &Server, b: &Server, key: &str, n: usize) -> Vec<(u16, String)> {
    burst_keys(a, b, &[key], n).await
}

/// [`burst`] with request `i` presenting `keys[(i / 2) % keys.len()]`, so that every key
/// reaches both instances.
async fn burst_keys(a: &Server, b: &Server, keys: &[&str], n: usize) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = if i % 2 == 0 { a } else { b };
            let key = keys[(i / 2) % keys.len()];
            let (http, url, key) = (s.client(), s.url("/auth/whoami"), key.to_owned());
            tokio::spawn(async move {
                let res = http.get(url).header("x-api-key", key).send().await.unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let code = body["code"].as_str().unwrap_or("").to_owned();
                (status, code)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `POST /api-keys/{id}/reroll` on `s` as `admin` with `overlap_seconds`, expecting 201; the
/// answer.
async fn reroll(http: &reqwest::Client, s: &Server, admin: &str, id: &str, overlap: u64) -> Value {
    let req = http
        .post(s.url(&format!("/api-keys/{id}/reroll")))
        .bearer_auth(admin)
        .json(&json!({"overlap_seconds": overlap}));
    expect_json(req, 201, "reroll").await
}

#[test]
fn i_a_key_rerolled_on_a_keeps_its_old_secret_for_the_overlap_on_both_instances_then_neither() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let body = json!({"name": "rolling", "permissions": ["memory:read"]});
        let (id, old) = create_key(&ha, a, Cred::Bearer(&admin), body).await;
        // Both instances have the old secret cached.
        warm(&ha, a, Cred::Key(&old)).await;
        warm(&hb, b, Cred::Key(&old)).await;

        let rolled = reroll(&ha, a, &admin, &id, 2).await;
        let rerolled_at = Instant::now();
        assert_eq!(rolled["key_id"], id.as_str(), "{rolled}");
        let new = rolled["api_key"].as_str().unwrap().to_owned();

        // During the overlap: 32 concurrent requests with the old secret over both instances all
        // succeed, and the new secret works on B at once.
        let during = burst(a, b, &old, 32).await;
        assert!(
            rerolled_at.elapsed() < Duration::from_secs(1),
            "the burst took too long to be within the overlap"
        );
        assert!(
            during.iter().all(|(status, _)| *status == 200),
            "during the overlap: {during:?}"
        );
        for (s, h) in [(a, &ha), (b, &hb)] {
            let me = whoami_ok(h, s, Cred::Key(&new), "the new secret").await;
            assert_eq!(me["id"], id.as_str(), "{me}");
        }

        // After it: the very next request on B with the old secret is refused, and so are 32
        // concurrent ones over both instances; the new secret goes on working on both.
        tokio::time::sleep(Duration::from_millis(3_100).saturating_sub(rerolled_at.elapsed()))
            .await;
        assert_problem(
            whoami(&hb, b, Cred::Key(&old)).await,
            401,
            "invalid_api_key",
        )
        .await;
        let after = burst(a, b, &old, 32).await;
        assert!(
            after
                .iter()
                .all(|(status, code)| *status == 401 && code == "invalid_api_key"),
            "after the overlap: {after:?}"
        );
        for (s, h) in [(a, &ha), (b, &hb)] {
            whoami_ok(h, s, Cred::Key(&new), "the new secret after the overlap").await;
        }

        // A reroll on A without overlap: B refuses the secret it replaced on the very next
        // request, though B had it cached.
        warm(&hb, b, Cred::Key(&new)).await;
        let newest = reroll(&ha, a, &admin, &id, 0).await;
        let newest = newest["api_key"].as_str().unwrap().to_owned();
        assert_problem(
            whoami(&hb, b, Cred::Key(&new)).await,
            401,
            "invalid_api_key",
        )
        .await;
        let dead = burst(a, b, &new, 32).await;
        assert!(
            dead.iter()
                .all(|(status, code)| *status == 401 && code == "invalid_api_key"),
            "after a reroll without overlap: {dead:?}"
        );
        for (s, h) in [(a, &ha), (b, &hb)] {
            whoami_ok(h, s, Cred::Key(&newest), "the newest secret").await;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// (j) usage credits: one counter for both instances and for every secret of a key

/// How many of `results` are 200, and asserts every other one is 429 `usage_exhausted`.
fn successes(results: &[(u16, String)], what: &str) -> usize {
    for (status, code) in results {
        assert!(
            *status == 200 || (*status == 429 && code == "usage_exhausted"),
            "{what}: {results:?}"
        );
    }
    results.iter().filter(|(status, _)| *status == 200).count()
}

/// The listing's `remaining` of key `id`, read on `s`.
async fn remaining_of(http: &reqwest::Client, s: &Server, admin: &str, id: &str) -> Value {
    let req = http.get(s.url("/api-keys")).bearer_auth(admin);
    let list = expect_json(req, 200, "GET /api-keys").await;
    let key = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    key["remaining"].clone()
}

#[test]
fn j_credits_are_spent_exactly_once_across_both_instances_and_across_a_rerolls_secrets() {
    with_pair(async |a, b, admin| {
        let (ha, hb) = (a.client(), b.client());
        let metered =
            |name: &str| json!({"name": name, "permissions": ["memory:read"], "remaining": 20});

        // 32 concurrent requests over both instances with a key of 20 credits: exactly 20
        // succeed, the other 12 are 429 usage_exhausted, and none left — not fewer than none.
        let (id, key) = create_key(&ha, a, Cred::Bearer(&admin), metered("metered")).await;
        let results = burst(a, b, &key, 32).await;
        assert_eq!(successes(&results, "one secret"), 20, "{results:?}");
        for (s, h) in [(a, &ha), (b, &hb)] {
            assert_eq!(remaining_of(h, s, &admin, &id).await, 0);
            assert_problem(whoami(h, s, Cred::Key(&key)).await, 429, "usage_exhausted").await;
        }

        // A key with 20 credits rerolled with an overlap: its old and new secrets, 32 requests
        // at once over both instances, share the one counter.
        let (id, old) = create_key(&ha, a, Cred::Bearer(&admin), metered("rolled")).await;
        let rolled = reroll(&hb, b, &admin, &id, 60).await;
        assert_eq!(rolled["remaining"], 20, "a reroll resets nothing: {rolled}");
        let new = rolled["api_key"].as_str().unwrap().to_owned();
        let results = burst_keys(a, b, &[&old, &new], 32).await;
        assert_eq!(
            successes(&results, "old and new secrets"),
            20,
            "{results:?}"
        );
        for (s, h) in [(a, &ha), (b, &hb)] {
            assert_eq!(remaining_of(h, s, &admin, &id).await, 0);
            for secret in [&old, &new] {
                assert_problem(
                    whoami(h, s, Cred::Key(secret)).await,
                    429,
                    "usage_exhausted",
                )
                .await;
            }
        }
        println!(
            "(j) 32 concurrent requests over two instances: 20 served, 12 usage_exhausted, for \
             one secret and for a reroll's old and new secrets together"
        );
    });
}
