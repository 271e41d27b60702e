//! The `portcullis` command line, run as a process: help texts, `migrate`, `secret generate`,
//! and `keys create|list|revoke` against a server started on the same SQLite database.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A scratch directory with a SQLite database URL in it.
struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("p.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.file().display())
    }

    /// `portcullis <args>` on this database, with no Redis and nothing else from the caller's
    /// environment that the server reads.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", self.url())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        for var in [
            "REDIS_URL",
            "PORTCULLIS_REDIS_PREFIX",
            "PORTCULLIS_BIND",
            "PORTCULLIS_ADMIN_EMAIL",
            "PORTCULLIS_ADMIN_PASSWORD",
            "AUTH_ENV",
            "AUTH_FALLBACK",
            "AUTH_FALLBACK_ALLOW_REMOTE",
            "AUTH_REQUIRE_AUTH",
            "AUTH_REQUIRE_AUTH_EXCEPTIONS",
            "AUTH_API_KEY_PREFIX",
            "AUTH_API_KEY_ENABLED",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs `portcullis <args>` to the end (bounded); its output.
    fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), args)
    }

    /// Runs `portcullis <args>`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.output.status.success(),
            "`portcullis {}` failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.output.status,
            r.stdout(),
            r.stderr()
        );
        r.stdout()
    }

    /// `portcullis serve --bind 127.0.0.1:0` on this database, with the admin; once it listens.
    fn serve(&self) -> Serve {
        let mut cmd = self.command(&["serve", "--bind", "127.0.0.1:0"]);
        cmd.env("PORTCULLIS_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn portcullis serve");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                out_log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stderr = child.stderr.take().unwrap();
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`portcullis serve` did not say `listening on`; its output:\n{}",
                log.lock().unwrap()
            );
        };
        Serve { child, base, log }
    }
}

/// A finished command.
struct Run {
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `cmd` to the end, killing it after 60 s.
fn run(mut cmd: Command, args: &[&str]) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let id = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            // Still running after 60 s: kill this one process (by its id) so the test fails.
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
        }
    });
    // Reads both pipes to the end, so a chatty process cannot block on a full pipe.
    let output = {
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut BufReader::new(stderr), &mut v).unwrap();
            v
        });
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut BufReader::new(stdout), &mut out).unwrap();
        let status = child.wait().unwrap();
        Output {
            status,
            stdout: out,
            stderr: err.join().unwrap(),
        }
    };
    let _ = tx.send(());
    watchdog.join().unwrap();
    assert!(
        output.status.code().is_some(),
        "`portcullis {}` was killed ({}): it ran over 60 s",
        args.join(" "),
        output.status
    );
    Run { output }
}

/// A running `portcullis serve`; killed on drop.
struct Serve {
    child: Child,
    base: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `GET /auth/whoami` with `X-API-Key`; status and body.
async fn whoami_with_key(s: &Serve, key: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(s.url("/auth/whoami"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, body)
}

/// The admin's `GET /api-keys`.
async fn admin_keys(s: &Serve) -> Vec<Value> {
    let http = reqwest::Client::new();
    let res = http
        .post(s.url("/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "admin login");
    let login: Value = res.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();
    let res = http
        .get(s.url("/api-keys"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "GET /api-keys");
    let v: Value = res.json().await.unwrap();
    v.as_array().expect("a JSON array").clone()
}

fn db_exists(path: &Path) -> bool {
    path.metadata().map(|m| m.len() > 0).unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------

/// Help text minus its `Usage:` line, lowercased: what the command says about itself.
fn help(db: &Db, args: &[&str]) -> String {
    let mut full = args.to_vec();
    full.push("--help");
    let out = db.ok(&full);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("Usage:"))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

#[test]
fn help_of_the_command_and_every_subcommand_exits_0_and_says_what_it_does() {
    let db = Db::new();
    let top = help(&db, &[]);
    for sub in ["serve", "migrate", "keys", "secret"] {
        assert!(
            top.contains(sub),
            "`portcullis --help` lacks `{sub}`:\n{top}"
        );
    }
    // Each subcommand's own help describes it (any of these words, outside the usage line).
    let cases: &[(&[&str], &[&str])] = &[
        (&["serve"], &["serve", "server", "http", "listen"]),
        (&["migrate"], &["migrat"]),
        (&["keys"], &["api key", "keys"]),
        (&["keys", "create"], &["creat"]),
        (&["keys", "list"], &["list"]),
        (&["keys", "revoke"], &["revok", "delete", "disable"]),
        (&["secret"], &["secret"]),
        (&["secret", "generate"], &["generat", "random"]),
    ];
    for (args, words) in cases {
        let text = help(&db, args);
        assert!(
            words.iter().any(|w| text.contains(w)),
            "`portcullis {} --help` mentions none of {words:?}:\n{text}",
            args.join(" ")
        );
    }
    let text = help(&db, &["serve"]);
    assert!(
        text.contains("--bind"),
        "serve --help lacks --bind:\n{text}"
    );
    let text = help(&db, &["keys", "create"]);
    for opt in [
        "--owner",
        "--name",
        "--permissions",
        "--expires-in-seconds",
        "--rate-limit-per-minute",
        "--remaining",
    ] {
        assert!(
            text.contains(opt),
            "keys create --help lacks {opt}:\n{text}"
        );
    }
    assert!(
        help(&db, &["keys", "list"]).contains("--owner"),
        "keys list --help lacks --owner"
    );
    // Help touches no database.
    assert!(!db.file().exists(), "--help created the database");
}

#[test]
fn migrate_creates_the_database_and_can_run_again() {
    let db = Db::new();
    assert!(!db.file().exists());
    db.ok(&["migrate"]);
    assert!(
        db_exists(&db.file()),
        "`migrate` did not create {}",
        db.file().display()
    );
    // Idempotent.
    db.ok(&["migrate"]);
}

#[test]
fn secret_generate_prints_a_fresh_32_byte_base64url_secret() {
    let db = Db::new();
    let one = db.ok(&["secret", "generate"]);
    let two = db.ok(&["secret", "generate"]);
    for s in [&one, &two] {
        let s = s.trim();
        assert_eq!(s.len(), 43, "not 43 characters: {s:?}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "not base64url without padding: {s:?}"
        );
        // 43 characters carry 258 bits: 32 bytes leave the last character's low 2 bits zero.
        assert!(
            "AEIMQUYcgkosw048".contains(s.chars().last().unwrap()),
            "not a canonical encoding of 32 bytes: {s:?}"
        );
    }
    assert_ne!(one.trim(), two.trim(), "two runs printed the same secret");
}

#[test]
fn keys_create_list_and_revoke_work_against_a_running_server() {
    let db = Db::new();
    db.ok(&["migrate"]);
    let rt = rt();

    // No admin yet: an unknown owner is refused, clearly, and no key is printed.
    let create = |owner: &str, perms: &str| {
        db.run(&[
            "keys",
            "create",
            "--owner",
            owner,
            "--name",
            "cli-key",
            "--permissions",
            perms,
            "--expires-in-seconds",
            "3600",
            "--rate-limit-per-minute",
            "100",
        ])
    };
    let assert_refused_owner = |r: &Run, owner: &str| {
        assert!(
            !r.output.status.success(),
            "`keys create` for unknown {owner} exited 0: {}",
            r.stdout()
        );
        let err = (r.stderr() + &r.stdout()).to_lowercase();
        assert!(
            err.contains(owner)
                || [
                    "no user",
                    "not found",
                    "unknown",
                    "no such",
                    "does not exist"
                ]
                .iter()
                .any(|w| err.contains(w)),
            "`keys create` for unknown {owner} gave no clear message: {err}"
        );
        assert!(
            !r.stdout().contains("ck_"),
            "a key was printed for an unknown owner: {}",
            r.stdout()
        );
    };
    assert_refused_owner(&create(ADMIN_EMAIL, "memory:read"), ADMIN_EMAIL);

    // The server creates the admin at its first start.
    let log = db.serve().stop();
    assert!(
        !log.contains(ADMIN_PASSWORD),
        "serve printed the admin password"
    );

    assert_refused_owner(
        &create("nobody@example.com", "memory:read"),
        "nobody@example.com",
    );
    let r = create(ADMIN_EMAIL, "no:such-permission");
    assert!(
        !r.output.status.success(),
        "`keys create` accepted an unknown permission: {}",
        r.stdout()
    );

    let r = create(ADMIN_EMAIL, "session:list,memory:read");
    assert!(
        r.output.status.success(),
        "`keys create` for the admin failed: {}\n{}",
        r.stdout(),
        r.stderr()
    );
    let stdout = r.stdout();
    let key = stdout.trim_end().lines().last().unwrap().trim().to_owned();
    assert!(
        key.starts_with("ck_") && !key.contains(' '),
        "the last line of `keys create` is not a key: {stdout}"
    );
    assert_eq!(
        stdout.matches(&key).count(),
        1,
        "the key is printed more than once: {stdout}"
    );
    assert!(
        !r.stderr().contains(&key),
        "the key is in the log: {}",
        r.stderr()
    );

    // It authenticates against a running server, with what it was given.
    let server = db.serve();
    let (status, me) = rt.block_on(whoami_with_key(&server, &key));
    assert_eq!(status, 200, "whoami with the CLI's key: {me}");
    assert_eq!(me["kind"], "api_key", "{me}");
    assert_eq!(me["auth_method"], "api_key", "{me}");
    assert_eq!(
        me["permissions"],
        json!(["memory:read", "session:list"]),
        "{me}"
    );
    let listed = rt.block_on(admin_keys(&server));
    let record = listed
        .iter()
        .find(|k| k["name"] == "cli-key")
        .unwrap_or_else(|| panic!("GET /api-keys lacks the CLI's key: {listed:?}"))
        .clone();
    assert_eq!(record["rate_limit_per_minute"], 100, "{record}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = record["expires_at"].as_u64().expect("expires_at");
    assert!(
        expires.abs_diff(now + 3600) < 120,
        "expires_at {expires}, now {now}"
    );
    let key_id = record["key_id"].as_str().unwrap().to_owned();
    let prefix = record["prefix"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&prefix), "prefix {prefix} of key {key}");
    let log = server.stop();
    assert!(!log.contains(&key), "the server logged the key");

    // `keys list`: its id and prefix, never the key.
    for args in [
        &["keys", "list"][..],
        &["keys", "list", "--owner", ADMIN_EMAIL][..],
    ] {
        let r = db.run(args);
        assert!(
            r.output.status.success(),
            "`{}` failed: {}",
            args.join(" "),
            r.stderr()
        );
        let (out, err) = (r.stdout(), r.stderr());
        assert!(
            out.contains(&key_id),
            "`{}` lacks the id {key_id}:\n{out}",
            args.join(" ")
        );
        assert!(
            out.contains(&prefix),
            "`{}` lacks the prefix {prefix}:\n{out}",
            args.join(" ")
        );
        assert!(
            !out.contains(&key) && !err.contains(&key),
            "`{}` shows the key",
            args.join(" ")
        );
        let secret_part = &key[prefix.len()..];
        assert!(
            secret_part.len() >= 16 && !out.contains(secret_part),
            "`{}` shows the secret part of the key",
            args.join(" ")
        );
    }
    let r = db.run(&["keys", "list", "--owner", "nobody@example.com"]);
    assert!(
        !r.stdout().contains(&key_id),
        "`keys list --owner nobody@…` shows the admin's key"
    );

    // `keys revoke`: a freshly started server refuses the key.
    db.ok(&["keys", "revoke", &key_id]);
    let server = db.serve();
    let (status, body) = rt.block_on(whoami_with_key(&server, &key));
    assert_eq!(status, 401, "whoami with the revoked key: {body}");
    assert!(
        ["invalid_api_key", "api_key_disabled"].contains(&body["code"].as_str().unwrap_or("")),
        "{body}"
    );
    println!("revoked CLI key refused with 401 {}", body["code"]);
}

/// The layer's policy is checked by the server before it connects to anything: board fallback
/// is refused in production and on a non-loopback bind unless allowed, and a bad value is named.
#[test]
fn keys_create_gives_usage_credits_that_a_running_server_counts_down() {
    let db = Db::new();
    db.ok(&["migrate"]);
    db.serve().stop(); // creates the admin
    let create = |remaining: &str| {
        db.run(&[
            "keys",
            "create",
            "--owner",
            ADMIN_EMAIL,
            "--name",
            "metered",
            "--permissions",
            "memory:read",
            "--remaining",
            remaining,
        ])
    };
    for bad in ["0", "9007199254740992", "many"] {
        let r = create(bad);
        assert!(
            !r.output.status.success(),
            "`--remaining {bad}` was accepted: {}",
            r.stdout()
        );
        assert!(
            r.stderr().contains("remaining"),
            "`--remaining {bad}` gave no clear message: {}",
            r.stderr()
        );
        assert!(
            !r.stdout().contains("ck_"),
            "a key was printed: {}",
            r.stdout()
        );
    }
    let r = create("2");
    assert!(r.output.status.success(), "{}\n{}", r.stdout(), r.stderr());
    let key = r
        .stdout()
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

    let server = db.serve();
    let rt = rt();
    for _ in 0..2 {
        let (status, me) = rt.block_on(whoami_with_key(&server, &key));
        assert_eq!(status, 200, "{me}");
    }
    let (status, body) = rt.block_on(whoami_with_key(&server, &key));
    assert_eq!(
        (status, &body["code"]),
        (429, &json!("usage_exhausted")),
        "{body}"
    );
    let listed = rt.block_on(admin_keys(&server));
    let metered: Vec<_> = listed.iter().filter(|k| k["name"] == "metered").collect();
    assert_eq!(metered.len(), 1, "{listed:?}");
    assert_eq!(metered[0]["remaining"], 0, "{listed:?}");
}

#[test]
fn serve_refuses_a_policy_it_must_not_run_before_touching_the_database() {
    let db = Db::new();
    let prod_secrets = [
        ("AUTH_ENV", "production"),
        (
            "AUTH_JWT_SECRET_KEY",
            "a-user-secret-that-is-at-least-32-bytes",
        ),
        (
            "AUTH_AGENT_JWT_SECRET",
            "an-agent-secret-at-least-32-bytes-long!",
        ),
    ];
    // (AUTH_FALLBACK, bind, production, the message on stderr)
    let cases = [
        (
            "board",
            "0.0.0.0:0",
            false,
            "AUTH_FALLBACK=board on non-loopback address 0.0.0.0:0 needs AUTH_FALLBACK_ALLOW_REMOTE=true",
        ),
        (
            "board",
            "127.0.0.1:0",
            true,
            "AUTH_FALLBACK=board is refused in production",
        ),
        (
            "bored",
            "127.0.0.1:0",
            false,
            "AUTH_FALLBACK: expected none or board",
        ),
    ];
    for (fallback, bind, production, message) in cases {
        let args = ["serve", "--bind", bind];
        let mut cmd = db.command(&args);
        if production {
            cmd.envs(prod_secrets);
        }
        cmd.env("AUTH_FALLBACK", fallback);
        let r = run(cmd, &args);
        assert!(!r.output.status.success(), "{message}: {}", r.stdout());
        assert!(r.stderr().contains(message), "{message}: {}", r.stderr());
        assert!(!r.stdout().contains("listening on"), "{}", r.stdout());
        assert!(
            !db_exists(&db.file()),
            "{message}: the database was touched"
        );
    }
    // Allowed explicitly, the same remote board bind starts.
    let args = ["serve", "--bind", "0.0.0.0:0"];
    let mut cmd = db.command(&args);
    cmd.env("AUTH_FALLBACK", "board")
        .env("AUTH_FALLBACK_ALLOW_REMOTE", "true")
        .env("PORTCULLIS_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let first = stdout.lines().map_while(Result::ok).next();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.starts_with("listening on ")),
        "{first:?}"
    );
}
