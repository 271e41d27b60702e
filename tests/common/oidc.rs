//! A real OpenID Provider for end-to-end tests: node's `oidc-provider` (OpenID Certified), run
//! from `tests/oidc-provider/provider.mjs` on a free port of 127.0.0.1.
//!
//! It issues client-credentials access tokens as JWTs (RS256, header `typ: at+jwt`, `aud`
//! `portcullis-api` unless told otherwise) to three clients, `svc-acme`, `svc-admin` and
//! `svc-globex` (secret `<client>-secret`), each with its own `org`, `roles` and
//! `realm_access.roles` claims. Its signing keys live in a file in the provider's own temporary
//! directory, so a test can rotate them, stop the provider and start it again on the same port.
//! `Provider::login` gets a user's token through the authorization-code flow.
//!
//! Needs Node.js and npm; the provider's packages are installed by `scripts/install-oidc-provider`
//! (`ensure_installed`, called by `Provider::start`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// How long the provider may take to print its JSON line (it takes about half a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// Runs `scripts/install-oidc-provider` once per process; panics with a clear message when node
/// or npm is missing or the install fails (every later call panics with the same message).
pub fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        for tool in ["node", "npm"] {
            match Command::new(tool).arg("--version").output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => {
                    return Err(format!(
                        "`{tool} --version` failed ({}): the OpenID Provider test peer needs \
                         Node.js and npm",
                        out.status
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "`{tool}` cannot be run ({e}): the OpenID Provider test peer needs \
                         Node.js and npm (apt-get install nodejs npm)"
                    ));
                }
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-oidc-provider");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{text}",
                script.display(),
                out.status
            ));
        }
        eprint!("{text}");
        Ok(())
    });
    if let Err(msg) = result {
        panic!("OpenID Provider test peer not installed: {msg}");
    }
}

/// The provider's one line on stdout.
struct Ready {
    issuer: String,
    port: u16,
    kids: Vec<String>,
}

/// A running provider process and what reads its output.
struct Running {
    child: Child,
    // Held open: the provider (`--exit-with-stdin`) exits when it closes, so that a test process
    // that dies without running `Drop` leaves no provider behind.
    _stdin: ChildStdin,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// A running OpenID Provider; killed on drop.
pub struct Provider {
    running: Option<Running>,
    issuer: String,
    port: u16,
    kids: Vec<String>,
    audience: String,
    dir: tempfile::TempDir,
    /// Everything the provider wrote to stdout and stderr, over all its starts.
    log: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts on a free port with a fresh signing key in a temporary directory of its own.
    pub fn start() -> Self {
        Self::start_with_audience("portcullis-api")
    }

    /// Like `start`, with access tokens for the audience `aud`.
    pub fn start_with_audience(aud: &str) -> Self {
        ensure_installed();
        let dir = tempfile::tempdir().unwrap();
        let mut p = Self {
            running: None,
            issuer: String::new(),
            port: 0,
            kids: Vec::new(),
            audience: aud.to_owned(),
            dir,
            log: Arc::new(Mutex::new(String::new())),
        };
        p.spawn(&[]);
        p
    }

    /// `http://127.0.0.1:PORT`
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on (the same across `restart` and `rotate`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key ids it publishes, the signing key's first (as the provider last reported them).
    pub fn kids(&self) -> Vec<String> {
        self.kids.clone()
    }

    /// The file holding its private keys (`{"keys": [JWK, ...]}`, signing key first).
    pub fn keys_file(&self) -> PathBuf {
        self.dir.path().join("keys.json")
    }

    /// Everything the provider printed so far (its notices and errors go to stderr).
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process and waits for it: the port refuses connections afterwards.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.kill();
        }
    }

    /// Starts it again (stopping it first if it runs) on the same port with the same keys.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&[]);
    }

    /// Stops it and starts it again on the same port with a new signing key; the old keys stay
    /// published after it.
    pub fn rotate(&mut self) {
        self.stop();
        self.spawn(&["--rotate"]);
    }

    /// Stops it and starts it again on the same port with only its signing key: the keys
    /// before the last rotation are no longer published.
    pub fn drop_old_keys(&mut self) {
        self.stop();
        self.spawn(&["--drop-old"]);
    }

    /// A client-credentials access token for `client` (secret `<client>-secret`) with `scope`
    /// (space-separated; empty for none). Panics with the response body unless it is a 200.
    pub async fn token(&self, client: &str, scope: &str) -> String {
        let secret = format!("{client}-secret");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret.as_str()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let res = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .timeout(Duration::from_secs(20))
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {}/token: {e}", self.issuer));
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(
            status,
            200,
            "client-credentials token for {client}: {body}\nprovider output:\n{}",
            self.output()
        );
        let json: Value = serde_json::from_str(&body).unwrap();
        json["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_owned()
    }

    /// Logs `user` in with the authorization-code flow (`login.mjs`: PKCE, public client
    /// `portcullis-web`, the provider's development login and consent pages, no browser) and
    /// returns the access token: a JWT like a client-credentials one, with `sub` = `user` and
    /// `client_id` = `portcullis-web`; `alice` (acme, user) and `bob` (globex, viewer) get
    /// org/roles claims, any other name none. Panics with the script's and provider's output.
    pub fn login(&self, user: &str, scope: &str) -> String {
        let script = peer_dir().join("login.mjs");
        let out = Command::new("node")
            .arg(&script)
            .args(["--issuer", &self.issuer, "--user", user, "--scope", scope])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run node {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "login.mjs --user {user} failed ({}): {}\nprovider output:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.output()
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Starts the process (on `self.port`, 0 the first time) and waits for its JSON line.
    fn spawn(&mut self, extra: &[&str]) {
        let script = peer_dir().join("provider.mjs");
        let started = Instant::now();
        let mut child = Command::new("node")
            .arg(&script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--keys")
            .arg(self.keys_file())
            .arg("--audience")
            .arg(&self.audience)
            .arg("--exit-with-stdin")
            .args(extra)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node {}: {e}", script.display()));
        let stdin = child.stdin.take().unwrap();

        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let out_log = self.log.clone();
        let out = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
                let mut l = out_log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stderr = child.stderr.take().unwrap();
        let err_log = self.log.clone();
        let err = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = err_log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let running = Running {
            child,
            _stdin: stdin,
            readers: vec![out, err],
        };

        // A closed channel (the process exited) or the time limit: fail with what it said.
        let line = rx.recv_timeout(START_TIMEOUT);
        let why = match &line {
            Ok(v) => format!("its JSON line is not as expected: {v}"),
            Err(mpsc::RecvTimeoutError::Timeout) => format!("not ready within {START_TIMEOUT:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => "it exited before it was ready".to_owned(),
        };
        let ready = line.ok().and_then(|v| {
            Some(Ready {
                issuer: v["issuer"].as_str()?.to_owned(),
                port: u16::try_from(v["port"].as_u64()?).ok()?,
                kids: v["kids"]
                    .as_array()?
                    .iter()
                    .map(|k| k.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?,
            })
        });
        let Some(ready) = ready else {
            running.kill();
            panic!(
                "the OpenID Provider did not start ({why}): node {} --port {} {}; its output:\n{}",
                script.display(),
                self.port,
                extra.join(" "),
                self.output()
            );
        };
        assert!(
            self.port == 0 || ready.port == self.port,
            "the provider came up on port {} instead of {}",
            ready.port,
            self.port
        );
        eprintln!(
            "oidc provider {} up in {:?} (kids {:?})",
            ready.issuer,
            started.elapsed(),
            ready.kids
        );
        self.issuer = ready.issuer;
        self.port = ready.port;
        self.kids = ready.kids;
        self.running = Some(running);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JWT's header and payload, decoded (the signature is not checked).
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS compact serialization: {token}");
    let part = |s: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_else(|e| panic!("base64url {s}: {e}"));
        serde_json::from_slice(&bytes).unwrap()
    };
    (part(parts[0]), part(parts[1]))
}
