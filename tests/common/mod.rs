//! Starts the real `portcullis` binary on a free port and talks HTTP to it.
//!
//! The binary is the one `cargo test --workspace` builds beside this test executable
//! (`target/<profile>/portcullis`); `PORTCULLIS_BIN` overrides it. `oidc` runs a real OpenID
//! Provider (node's `oidc-provider`) for tests that take tokens from one.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod contract;
pub mod oidc;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The `portcullis` binary.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PORTCULLIS_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> → target/<profile>/portcullis
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p portcullis-server` \
         (`cargo test --workspace` builds it)",
        bin.display()
    );
    bin
}

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Its data directory (the SQLite database lives here unless `DATABASE_URL` is given).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Everything the server wrote to stdout and stderr so far is readable here.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// How to start one.
#[derive(Default, Clone)]
pub struct Options {
    /// Extra environment (`AUTH_*`, `DATABASE_URL`, `REDIS_URL`, …).
    pub env: Vec<(String, String)>,
    /// Reuse this data directory (for restarts); a fresh temporary one otherwise.
    pub dir: Option<PathBuf>,
}

impl Options {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
}

impl Server {
    /// Starts on SQLite in a fresh directory with the admin `ADMIN_EMAIL`.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Self {
        let (tmp, dir) = match opts.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .current_dir(&dir)
            .env_remove("REDIS_URL")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/portcullis.db", dir.display()),
            )
            .env("PORTCULLIS_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn portcullis");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut l = out_log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stderr = child.stderr.take().unwrap();
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = err_log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not say `listening on`; its output:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            base,
            dir,
            _tmp: tmp,
            log,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process in KiB (Linux), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops the process and keeps its directory (for a restart on the same database).
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self._tmp.take()
    }

    /// Stops the process gracefully (SIGTERM, as a service manager does), waits for it to exit
    /// and keeps its directory (for a restart on the same database); its exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Option<tempfile::TempDir>) {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let status = self.child.wait().unwrap();
        (status, self._tmp.take())
    }

    /// A client without a cookie store.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// `POST /auth/login`; the JSON body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let res = self
            .client()
            .post(self.url("/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login as {email}");
        res.json().await.unwrap()
    }

    /// Logs in (must answer 200); the access token.
    pub async fn access_token(&self, email: &str, password: &str) -> String {
        self.login(email, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The admin's access token.
    pub async fn admin_token(&self) -> String {
        self.access_token(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user as the admin and returns its access token.
    pub async fn user_token(&self, email: &str, role: &str, org: &str) -> String {
        let admin = self.admin_token().await;
        let res = self
            .client()
            .post(self.url("/users"))
            .bearer_auth(&admin)
            .json(&json!({"email": email, "password": USER_PASSWORD, "role": role, "org_id": org}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "create user {email}");
        self.access_token(email, USER_PASSWORD).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client without a cookie store that follows no redirect and gives up after `timeout` (so a
/// request cannot hang the test).
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Asserts a problem+json refusal: status, `code`, content type; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    let got = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}; body: {body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], code, "code; body: {body}");
    assert_eq!(v["status"], status, "status field; body: {body}");
    for field in ["type", "title", "detail"] {
        assert!(v[field].is_string(), "{field} missing: {body}");
    }
    v
}

/// Status and problem `code` (empty for a success or a body that is not problem+json).
pub async fn outcome(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

/// `POST /auth/login` with `email` and `password` through `http`; the answer, whatever it is.
pub async fn post_login(
    http: &reqwest::Client,
    s: &Server,
    email: &str,
    password: &str,
) -> reqwest::Response {
    http.post(s.url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The password of every user the tests create.
pub const USER_PASSWORD: &str = "user password 123";

/// Creates a user (role `user`, password [`USER_PASSWORD`]) as `admin` through `http`; asserts
/// the 201 and returns the body.
pub async fn create_user(http: &reqwest::Client, s: &Server, admin: &str, email: &str) -> Value {
    let res = http
        .post(s.url("/users"))
        .bearer_auth(admin)
        .json(&json!({"email": email, "password": USER_PASSWORD, "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create user {email}");
    res.json().await.unwrap()
}

/// `var`, or `default` when unset.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A service a test needs is down: under `CI=true` the test fails (scripts/services starts it);
/// elsewhere it says SKIPPED and the caller returns.
pub fn service_unreachable(what: &str, err: impl std::fmt::Display) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is unreachable under CI=true: {err} (scripts/services starts it)"
    );
    eprintln!("SKIPPED ({what} unreachable: {err})");
}

/// The Redis the tests use (`PORTCULLIS_TEST_REDIS_URL`, default the local server).
pub fn redis_url() -> String {
    env_or("PORTCULLIS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// `host:port` of a `redis://[user@]host:port[/db]` URL.
pub fn redis_addr(url: &str) -> String {
    let rest = url
        .strip_prefix("redis://")
        .expect("a redis:// URL")
        .split('/')
        .next()
        .unwrap();
    rest.rsplit_once('@').map_or(rest, |(_, a)| a).to_owned()
}

/// `PING` over a plain socket.
pub fn redis_ping(addr: &str) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    if answer.starts_with("+PONG") {
        Ok(())
    } else {
        Err(format!("PING answered {answer:?}"))
    }
}

/// The user-token secret every instance of a [`Cluster`] shares (tests mint with it).
pub const CLUSTER_JWT_SECRET: &str = "server-cluster-test-user-secret-0123456789ab";
/// The agent-token secret every instance of a [`Cluster`] shares.
pub const CLUSTER_AGENT_SECRET: &str = "server-cluster-test-agent-secret-0123456789a";

/// What the instances of one test share: a fresh PostgreSQL database and a fresh prefix on the
/// shared Redis.
pub struct Cluster {
    database: PgDatabase,
    /// `postgres://…/<name>`.
    pub db: String,
    /// The Redis key prefix.
    pub prefix: String,
}

impl Cluster {
    /// A new one; `None` when PostgreSQL or Redis is down outside CI.
    pub async fn new(tag: &str) -> Option<Self> {
        if let Err(e) = redis_ping(&redis_addr(&redis_url())) {
            service_unreachable("Redis", e);
            return None;
        }
        let database = PgDatabase::create(tag).await?;
        Some(Self {
            db: database.url.clone(),
            database,
            prefix: format!("pc-{tag}-{}:", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Everything an instance of this cluster is started with.
    pub fn options(&self) -> Options {
        Options::default()
            .env("DATABASE_URL", &self.db)
            .env("REDIS_URL", &redis_url())
            .env("PORTCULLIS_REDIS_PREFIX", &self.prefix)
            .env("AUTH_JWT_SECRET_KEY", CLUSTER_JWT_SECRET)
            .env("AUTH_AGENT_JWT_SECRET", CLUSTER_AGENT_SECRET)
    }

    /// Two instances, started one after the other (the first migrates and creates the admin).
    pub fn start_pair(&self) -> (Server, Server) {
        let a = Server::start_with(self.options());
        let b = Server::start_with(self.options());
        (a, b)
    }

    /// Drops the database; call once every instance is stopped.
    pub async fn drop_database(self) {
        self.database.drop_database().await;
    }
}

/// Runs `trial(a, b, admin_token)` against a fresh pair of instances of a fresh [`Cluster`]
/// (one heavy test at a time, see [`serial`]), then drops the database; returns at once when
/// PostgreSQL or Redis is down outside CI.
pub fn with_pair<F>(tag: &str, trial: F)
where
    F: AsyncFnOnce(&Server, &Server, String),
{
    let _serial = serial();
    run(async {
        let Some(cluster) = Cluster::new(tag).await else {
            return;
        };
        let (a, b) = cluster.start_pair();
        let admin = a.admin_token().await;
        trial(&a, &b, admin).await;
        drop((a, b));
        cluster.drop_database().await;
    });
}

/// A fresh, empty PostgreSQL database of one test (on `PORTCULLIS_TEST_POSTGRES_URL`, default
/// the local server); [`PgDatabase::drop_database`] removes it.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// `postgres://…/<name>`, direct.
    pub url: String,
}

impl PgDatabase {
    /// A new one; `None` when PostgreSQL is unreachable outside CI — under `CI=true` an
    /// unreachable service fails the test instead of skipping it.
    pub async fn create(tag: &str) -> Option<Self> {
        use sqlx::Connection as _;
        let admin_url = env_or(
            "PORTCULLIS_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                service_unreachable("PostgreSQL", e);
                return None;
            }
        };
        let name = format!("portcullis_{tag}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database; call once every server using it is stopped.
    pub async fn drop_database(self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A fresh, empty PostgreSQL database (see [`PgDatabase`]) that outlives the test; its URL.
/// `None` when PostgreSQL is unreachable outside CI.
pub async fn fresh_postgres(tag: &str) -> Option<String> {
    PgDatabase::create(tag).await.map(|d| d.url)
}

/// A TCP proxy on `127.0.0.1:port` that can be cut (live connections closed, new ones refused)
/// and restored: a database or Redis that goes away and comes back.
pub struct CutProxy {
    /// Where it listens.
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl CutProxy {
    /// Listens on a free port and forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, watch) = tokio::sync::watch::channel(0u64);
        let accepting = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: connection closed at once
                }
                let upstream = upstream.clone();
                let mut watch = watch.clone();
                // Only cuts after this connection opened close it.
                watch.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    /// Restores (`true`) or cuts (`false`) the way through.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

/// In-process tests: writes a live session of `user` in `org` to `stores` and mints an access
/// token of it with `role` through `auth`; `(session id, token)`.
pub async fn session_token(
    auth: &portcullis::Authenticator,
    stores: &portcullis::store::Stores,
    user: &portcullis::ids::UserId,
    org: &portcullis::ids::OrgId,
    role: &str,
) -> (portcullis::ids::SessionId, String) {
    let sid = portcullis::ids::SessionId::random();
    let now = auth.clock().now();
    stores
        .sessions
        .create(portcullis::session::SessionRecord::new(
            sid.clone(),
            user.clone(),
            org.clone(),
            portcullis::api_key::KeyHash::of(b"r"),
            now,
            3600,
            false,
        ))
        .await
        .unwrap();
    let minted = auth
        .user_tokens()
        .mint_access(portcullis::token::AccessGrant {
            user_id: user,
            email: "u@example.com",
            role,
            org_id: org,
            session_id: &sid,
        })
        .unwrap();
    let token = minted.token.expose().to_owned();
    (sid, token)
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One heavy test at a time in a test binary (each starts servers and measures them on a small
/// machine); a test that panicked does not poison the rest.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` on a multi-threaded runtime of its own (four workers, so a burst is truly parallel).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
