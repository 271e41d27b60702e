//! Faults under the real sample server (`portcullis serve`): its PostgreSQL going away mid-run
//! and coming back (through a TCP proxy this test controls), and restarts that must lose no
//! denylist entry, on the SQL denylist and on the Redis one.
//!
//! Already covered elsewhere, and not repeated here (`tests/server_multi_instance.rs`): Redis
//! going away under a running server (503 and recovery), and restarts losing no key, session or
//! revocation.
//!
//! Needs PostgreSQL (`PORTCULLIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and Redis (`PORTCULLIS_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`). Under `CI=true` an unreachable service fails the test;
//! elsewhere the test says SKIPPED on stderr and returns. The `portcullis` binary must be built
//! (`cargo build -p portcullis-server`).
//!
//! The tests run one at a time (they time an outage on a small machine).
#![cfg(all(feature = "postgres", feature = "redis"))]
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Options, PgDatabase as Database, Server, assert_problem, outcome,
    post_login, redis_addr, redis_ping, redis_url, run, serial, service_unreachable as unreachable,
};
use portcullis::api_key::{self, ApiKeyPrefix};
use portcullis::ids::TokenId;
use portcullis::redis::RedisStores;
use portcullis::sql::SqlStores;
use portcullis::store::Denylist;
use portcullis_testkit::jws::unb64url;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const JWT_SECRET: &str = "server-faults-user-secret-0123456789abcdef";
const AGENT_SECRET: &str = "server-faults-agent-secret-0123456789abcde";
/// How long the database may take to be seen down, and to be seen back.
const DETECT_BOUND: Duration = Duration::from_secs(15);
const RECOVER_BOUND: Duration = Duration::from_secs(30);
/// How long one request may take to be refused while the database is away: the pool's acquire
/// timeout (3 s, `PoolSettings::default`) and a margin for a loaded machine.
const ANSWER_BOUND: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------------------------------------
// Setup

/// `host:port` of the database server.
fn upstream(db: &Database) -> String {
    let after_scheme = db.url.split_once("://").unwrap().1;
    let authority = after_scheme.split('/').next().unwrap();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, a)| a)
        .to_owned()
}

/// The same database, reached through `127.0.0.1:port`.
fn through(db: &Database, port: u16) -> String {
    db.url
        .replacen(&upstream(db), &format!("127.0.0.1:{port}"), 1)
}

// ---------------------------------------------------------------------------------------------
// The proxy

/// What the proxy does with connections.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Forwards.
    Up,
    /// Closes every live connection, and each new one as soon as it is accepted: the database
    /// is gone and says so (connection reset / EOF).
    Cut,
    /// Keeps every connection open but forwards nothing, and accepts new ones that never
    /// answer: a black hole (a partition, a hung server). Leaving this mode closes them.
    Stall,
}

/// A TCP proxy on a free port in front of PostgreSQL, switched between [`Mode`]s.
struct Proxy {
    port: u16,
    /// The mode, with a counter so that every switch is seen.
    mode: tokio::sync::watch::Sender<(u64, Mode)>,
    /// Connections forwarded / refused or held so far.
    forwarded: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// Holds `sockets` open, forwarding nothing, until the mode changes again; then closes them.
async fn hold<T>(sockets: T, mut watch: tokio::sync::watch::Receiver<(u64, Mode)>) {
    let _ = watch.changed().await;
    drop(sockets);
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watch) = tokio::sync::watch::channel((0u64, Mode::Up));
        let (forwarded, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (fwd, rfs) = (forwarded.clone(), refused.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut watch = watch.clone();
                // Only switches after this connection was accepted concern it.
                let (_, now) = *watch.borrow_and_update();
                match now {
                    Mode::Cut => {
                        rfs.fetch_add(1, Ordering::SeqCst);
                        drop(client); // closed at once
                        continue;
                    }
                    Mode::Stall => {
                        rfs.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(hold(client, watch));
                        continue;
                    }
                    Mode::Up => {}
                }
                fwd.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let switched = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        _ = watch.changed() => true,
                    };
                    if switched && watch.borrow_and_update().1 == Mode::Stall {
                        hold((client, server), watch).await;
                    }
                });
            }
        });
        Self {
            port,
            mode,
            forwarded,
            refused,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_modify(|(n, m)| {
            *n += 1;
            *m = mode;
        });
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.forwarded.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/// A client whose requests cannot hang the test.
fn client() -> reqwest::Client {
    common::client_with_timeout(Duration::from_secs(20))
}

async fn whoami_bearer(http: &reqwest::Client, s: &Server, token: &str) -> reqwest::Response {
    http.get(s.url("/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn whoami_key(http: &reqwest::Client, s: &Server, key: &str) -> reqwest::Response {
    http.get(s.url("/auth/whoami"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

async fn readyz(http: &reqwest::Client, s: &Server) -> reqwest::Response {
    http.get(s.url("/readyz")).send().await.unwrap()
}

/// `POST /api-keys` as `token`.
async fn create_key(
    http: &reqwest::Client,
    s: &Server,
    token: &str,
    name: &str,
) -> reqwest::Response {
    http.post(s.url("/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": name, "permissions": ["memory:read"]}))
        .send()
        .await
        .unwrap()
}

/// The `api_key` of a 201 from `POST /api-keys`.
async fn created_key(res: reqwest::Response) -> String {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 201, "create key: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["api_key"].as_str().unwrap().to_owned()
}

/// A 503 `auth_unavailable` problem with a `Retry-After` of whole seconds.
async fn assert_unavailable(res: reqwest::Response, what: &str) {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    if status != 503 {
        panic!(
            "{what}: want 503 auth_unavailable, got {status}: {}",
            res.text().await.unwrap()
        );
    }
    assert_problem(res, 503, "auth_unavailable").await;
    let retry_after = retry_after.unwrap_or_else(|| panic!("{what}: 503 without Retry-After"));
    assert!(
        retry_after.trim().parse::<u64>().is_ok_and(|n| n > 0),
        "{what}: Retry-After {retry_after:?} is not a positive number of seconds"
    );
}

/// Sends, times, and checks a 503 `auth_unavailable`; how long the answer took.
async fn timed_unavailable<F: Future<Output = reqwest::Response>>(f: F, what: &str) -> Duration {
    let t = Instant::now();
    let res = f.await;
    let took = t.elapsed();
    assert_unavailable(res, what).await;
    took
}

// ---------------------------------------------------------------------------------------------
// (a) PostgreSQL goes away under a running server and comes back

/// A request made during an outage, sent from a task of its own.
enum Probe {
    Key(String),
    Login,
    Readyz,
    CreateKey(String),
}

async fn probe(http: reqwest::Client, base: String, probe: Probe) -> reqwest::Response {
    let req = match probe {
        Probe::Key(k) => http
            .get(format!("{base}/auth/whoami"))
            .header("x-api-key", k),
        Probe::Login => http
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        Probe::Readyz => http.get(format!("{base}/readyz")),
        Probe::CreateKey(token) => http
            .post(format!("{base}/api-keys"))
            .bearer_auth(token)
            .json(&json!({"name": "during", "permissions": ["memory:read"]})),
    };
    req.send().await.unwrap()
}

/// The server on PostgreSQL through a proxy; the proxy switched to `mode` mid-run, then back.
async fn database_outage(mode: Mode) {
    let Some(db) = Database::create("sf").await else {
        return;
    };
    let proxy = Proxy::start(upstream(&db)).await;
    let s = Server::start_with(
        Options::default()
            .env("DATABASE_URL", &through(&db, proxy.port))
            .env("AUTH_JWT_SECRET_KEY", JWT_SECRET)
            .env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET),
    );
    let http = client();

    // Up: ready on PostgreSQL; a key used once (so cached) and two never used.
    let res = readyz(&http, &s).await;
    assert_eq!(res.status(), 200, "/readyz with the database up");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["database"], "postgres", "{v}");
    let admin = s.admin_token().await;
    let used_key = created_key(create_key(&http, &s, &admin, "used").await).await;
    let fresh_key = created_key(create_key(&http, &s, &admin, "fresh").await).await;
    let fresh_key2 = created_key(create_key(&http, &s, &admin, "fresh 2").await).await;
    for _ in 0..2 {
        assert_eq!(whoami_bearer(&http, &s, &admin).await.status(), 200);
        assert_eq!(whoami_key(&http, &s, &used_key).await.status(), 200);
    }
    // Well-formed (checksum and all) but never issued: refusing one takes the database. The one
    // presented now has its refusal cached (a negative entry); the other is first presented
    // during the outage.
    let never_issued = || {
        api_key::generate(&ApiKeyPrefix::new("ck").unwrap())
            .key
            .expose()
            .to_owned()
    };
    let (known_unknown, unknown_key) = (never_issued(), never_issued());
    let (status, code) = outcome(whoami_key(&http, &s, &known_unknown).await).await;
    assert_eq!(
        (status, code.as_str()),
        (401, "invalid_api_key"),
        "unknown key, up"
    );

    // The database goes away: /readyz notices; until then it is 200, never anything else.
    proxy.set(mode);
    let down = Instant::now();
    let mut polls = 0;
    loop {
        let res = readyz(&http, &s).await;
        polls += 1;
        if res.status() == 503 {
            assert_unavailable(res, "/readyz with the database down").await;
            break;
        }
        assert_eq!(res.status(), 200, "/readyz while the database goes away");
        assert!(
            down.elapsed() < DETECT_BOUND,
            "/readyz still 200 {DETECT_BOUND:?} after the database went away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detected = down.elapsed();

    // The outage: whatever needs the database is refused, closed, with a Retry-After, and in
    // bounded time — all at once, so that they also compete for the pool.
    let probes = [
        (
            "whoami with a key never used before",
            Probe::Key(fresh_key.clone()),
        ),
        (
            "whoami with another key never used before",
            Probe::Key(fresh_key2),
        ),
        (
            "whoami with a well-formed key never issued",
            Probe::Key(unknown_key.clone()),
        ),
        ("login", Probe::Login),
        ("/readyz", Probe::Readyz),
        // Writing needs the database, whether or not the caller came from the cache.
        ("POST /api-keys", Probe::CreateKey(admin.clone())),
    ];
    let tasks: Vec<_> = probes
        .into_iter()
        .map(|(what, p)| {
            let (http, base) = (http.clone(), s.base.clone());
            tokio::spawn(async move {
                let took = timed_unavailable(probe(http, base, p), what).await;
                assert!(
                    took < ANSWER_BOUND,
                    "{what} took {took:?} to be refused during the outage"
                );
                took
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        slowest = slowest.max(t.await.unwrap());
    }
    // A credential resolved before the outage may still be answered from the cache until its
    // entry goes stale (200, or 401 for the cached refusal), or be refused (503): never another
    // answer.
    let mut cached = Vec::new();
    for (what, res, cached_answer) in [
        (
            "admin token",
            whoami_bearer(&http, &s, &admin).await,
            (200, ""),
        ),
        (
            "used key",
            whoami_key(&http, &s, &used_key).await,
            (200, ""),
        ),
        (
            "never-issued key seen before",
            whoami_key(&http, &s, &known_unknown).await,
            (401, "invalid_api_key"),
        ),
    ] {
        let (status, code) = outcome(res).await;
        assert!(
            (status, code.as_str()) == cached_answer
                || (status == 503 && code == "auth_unavailable"),
            "{what} during the outage: {status} {code}"
        );
        cached.push(format!("{what} {status}"));
    }
    let t = Instant::now();
    let healthz = http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200, "/healthz while the database is down");
    let healthz_took = t.elapsed();
    let outage_counts = proxy.counts();

    // Back: /readyz recovers by itself, bounded; until then only 503.
    proxy.set(Mode::Up);
    let up = Instant::now();
    let mut recovering = 0;
    loop {
        let res = readyz(&http, &s).await;
        if res.status() == 200 {
            break;
        }
        recovering += 1;
        assert_unavailable(res, "/readyz while the database comes back").await;
        assert!(
            up.elapsed() < RECOVER_BOUND,
            "/readyz still 503 {RECOVER_BOUND:?} after the database came back (no restart)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = up.elapsed();

    // Everything works again, in the same process.
    for (what, key) in [
        ("the key never used before", &fresh_key),
        ("the key used before", &used_key),
    ] {
        let (status, code) = outcome(whoami_key(&http, &s, key).await).await;
        assert_eq!((status, code.as_str()), (200, ""), "{what} after recovery");
    }
    for key in [&unknown_key, &known_unknown] {
        let (status, code) = outcome(whoami_key(&http, &s, key).await).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_api_key"),
            "a never-issued key after recovery"
        );
    }
    let res = post_login(&http, &s, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200, "login after recovery");
    let v: Value = res.json().await.unwrap();
    let fresh_token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami_bearer(&http, &s, &fresh_token).await.status(), 200);
    assert_eq!(whoami_bearer(&http, &s, &admin).await.status(), 200);
    let new_key = created_key(create_key(&http, &s, &fresh_token, "after").await).await;
    assert_eq!(whoami_key(&http, &s, &new_key).await.status(), 200);

    println!(
        "(a) PostgreSQL {mode:?} at the proxy: /readyz 503 after {detected:?} ({polls} polls); \
         uncached keys, a never-issued key, login, /readyz and POST /api-keys, at once: all 503 \
         auth_unavailable with Retry-After, slowest {slowest:?}; /healthz 200 in \
         {healthz_took:?}; cached: {}; proxy connections forwarded/refused-or-held: \
         {outage_counts:?}; back up: /readyz 200 after {recovered:?} ({recovering} x 503 while \
         recovering), no restart",
        cached.join(", ")
    );
    drop(s);
    drop(proxy);
    db.drop_database().await;
}

#[test]
fn postgres_going_away_gives_503_auth_unavailable_and_the_server_recovers_without_a_restart() {
    let _serial = serial();
    run(database_outage(Mode::Cut));
}

#[test]
fn postgres_that_stops_answering_gives_503_in_bounded_time_and_the_server_recovers() {
    let _serial = serial();
    run(database_outage(Mode::Stall));
}

// ---------------------------------------------------------------------------------------------
// (b) restarts lose no denylist entry

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `(jti, exp)` of a JWT (read, not verified: the server minted it).
fn jti_and_exp(token: &str) -> (TokenId, u64) {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&unb64url(payload)).unwrap();
    (
        TokenId::from(claims["jti"].as_str().unwrap()),
        claims["exp"].as_u64().unwrap(),
    )
}

/// Which denylist the server under test keeps.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sql,
    Redis,
}

/// The denylist of one backend, opened with the library the way the server opens it.
enum Opened {
    Sql(SqlStores),
    Redis(RedisStores),
}

impl Opened {
    async fn open(backend: Backend, db: &Database, prefix: &str) -> Self {
        match backend {
            Backend::Sql => Self::Sql(SqlStores::connect(&db.url).await.unwrap()),
            Backend::Redis => {
                Self::Redis(RedisStores::connect(&redis_url(), prefix).await.unwrap())
            }
        }
    }

    fn denylist(&self) -> Arc<dyn Denylist> {
        match self {
            Self::Sql(sql) => sql.stores().denylist,
            Self::Redis(redis) => Arc::new(redis.denylist()),
        }
    }

    async fn deny(&self, jti: &TokenId, exp: u64) {
        self.denylist().deny(jti, exp).await.unwrap();
    }

    async fn is_denied(&self, jti: &TokenId) -> bool {
        self.denylist().is_denied(jti, now()).await.unwrap()
    }

    /// Lets go of every connection.
    async fn close(self) {
        match self {
            Self::Sql(sql) => sql.pool().close().await,
            Self::Redis(redis) => drop(redis),
        }
    }
}

/// Denies a live access token's `jti` behind the server's back (the server has no endpoint that
/// denies one), then: the server refuses it; every connection is dropped and a fresh one still
/// finds it denied; a restarted server still refuses it. A second token of another session is
/// accepted throughout.
async fn denylist_survives_restart(backend: Backend) {
    let Some(db) = Database::create("sf").await else {
        return;
    };
    let prefix = format!("pc-sf-{}:", uuid::Uuid::new_v4().simple());
    let mut opts = Options::default()
        .env("DATABASE_URL", &db.url)
        .env("AUTH_JWT_SECRET_KEY", JWT_SECRET)
        .env("AUTH_AGENT_JWT_SECRET", AGENT_SECRET);
    if backend == Backend::Redis {
        if let Err(e) = redis_ping(&redis_addr(&redis_url())) {
            unreachable("Redis", e);
            db.drop_database().await;
            return;
        }
        opts = opts
            .env("REDIS_URL", &redis_url())
            .env("PORTCULLIS_REDIS_PREFIX", &prefix);
    }
    let label = match backend {
        Backend::Sql => "SQL (PostgreSQL) denylist",
        Backend::Redis => "Redis denylist (PostgreSQL for records)",
    };
    let http = client();
    let first = Server::start_with(opts.clone());
    // Neither token is presented before the denial: no instance has cached a verdict for it.
    let denied = first.admin_token().await;
    let kept = first.admin_token().await;
    let (jti, exp) = jti_and_exp(&denied);
    let (kept_jti, _) = jti_and_exp(&kept);
    assert!(exp > now(), "the token is live");

    let list = Opened::open(backend, &db, &prefix).await;
    assert!(
        !list.is_denied(&jti).await,
        "{label}: denied before the deny"
    );
    list.deny(&jti, exp).await;
    assert!(
        list.is_denied(&jti).await,
        "{label}: not denied after the deny"
    );
    list.close().await;

    let check = |s: &Server, when: &'static str| {
        let (http, s_url) = (http.clone(), s.url("/auth/whoami"));
        let (denied, kept) = (denied.clone(), kept.clone());
        async move {
            let res = http.get(&s_url).bearer_auth(&denied).send().await.unwrap();
            assert_problem(res, 401, "token_revoked").await;
            let res = http.get(&s_url).bearer_auth(&kept).send().await.unwrap();
            assert_eq!(res.status(), 200, "{label}: the other token, {when}");
        }
    };
    check(&first, "before the restart").await;
    drop(first.stop());

    // Everything dropped: a fresh connection still finds the entry, and only it.
    let list = Opened::open(backend, &db, &prefix).await;
    assert!(
        list.is_denied(&jti).await,
        "{label}: the entry is gone after reconnecting"
    );
    assert!(
        !list.is_denied(&kept_jti).await,
        "{label}: a token never denied reads as denied"
    );
    list.close().await;

    let second = Server::start_with(opts);
    check(&second, "after the restart").await;
    drop(second);
    println!(
        "(b) {label}: a denied jti is refused (401 token_revoked) before and after a restart of \
         the server and is still denied on a fresh connection; another session's token is accepted"
    );
    db.drop_database().await;
}

#[test]
fn a_restart_on_postgres_loses_no_sql_denylist_entry() {
    let _serial = serial();
    run(denylist_survives_restart(Backend::Sql));
}

#[test]
fn a_restart_on_postgres_and_redis_loses_no_redis_denylist_entry() {
    let _serial = serial();
    run(denylist_survives_restart(Backend::Redis));
}
