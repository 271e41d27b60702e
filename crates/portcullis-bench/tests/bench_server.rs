//! The HTTP bench server over real HTTP: each Portcullis variant refuses a request without its
//! credential and with a tampered one, and serves it with its own. `bench/http.sh` checks the
//! same before every load run; this keeps a broken variant out of the normal test run, and
//! makes `cargo test` build the bench binaries that `scripts/bench-smoke` then runs.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A bench server, killed on drop.
struct Server {
    child: Child,
    addr: String,
    /// The header line its credential travels in (`X-API-Key: …`, `Authorization: Bearer …`).
    credential: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bench-server --variant <variant>` with `BENCH_MOUNT=<mount>`.
fn start(variant: &str, mount: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-server"))
        .args(["--variant", variant, "--bind", "127.0.0.1:0"])
        .env("BENCH_MOUNT", mount)
        .stdout(Stdio::piped())
        .spawn()
        .expect("bench-server starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a line").expect("readable");
    // The credential first, then the address.
    let printed = next();
    let credential = match printed.split_once(": ") {
        Some(("api_key", key)) => format!("X-API-Key: {key}"),
        Some(("token", token)) => format!("Authorization: Bearer {token}"),
        _ => panic!("{variant}: {printed:?}"),
    };
    let listening = next();
    let addr = listening
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{variant}: {listening:?}"))
        .to_owned();
    Server {
        child,
        addr,
        credential,
    }
}

/// The status of `GET /hello` with `header` (if any), over a fresh connection.
fn status(addr: &str, header: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let extra = header.map_or(String::new(), |h| format!("{h}\r\n"));
    write!(
        stream,
        "GET /hello HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// The credential with its last character changed.
fn tampered(credential: &str) -> String {
    let mut t = credential.to_owned();
    let last = t.pop().expect("non-empty");
    t.push(if last == 'A' { 'B' } else { 'A' });
    t
}

/// The variant refuses a request without its credential and with a tampered one, and serves it
/// with its own.
fn check(variant: &str, mount: &str) {
    let server = start(variant, mount);
    let what = format!("{variant} (BENCH_MOUNT={mount})");
    assert_eq!(status(&server.addr, None), 401, "{what}: no credential");
    assert_eq!(
        status(&server.addr, Some(&tampered(&server.credential))),
        401,
        "{what}: tampered"
    );
    // Twice: the first resolves through the stores, the second from the cache.
    for _ in 0..2 {
        assert_eq!(
            status(&server.addr, Some(&server.credential)),
            200,
            "{what}: its own credential"
        );
    }
}

#[test]
fn every_portcullis_variant_refuses_a_missing_or_tampered_credential_and_serves_its_own() {
    for variant in [
        "portcullis-api-key",
        "portcullis-jwt",
        "portcullis-api-key-metrics",
        "portcullis-jwt-metrics",
    ] {
        check(variant, "layer");
    }
}

/// Around the router (`BENCH_MOUNT=wrap`) the layers decide as they do on it: what the
/// benchmark's wrapped rows measure is auth, not a pass-through.
#[test]
fn wrapped_around_the_router_the_layers_still_decide() {
    for variant in ["tower-http", "portcullis-api-key-metrics", "portcullis-jwt"] {
        check(variant, "wrap");
    }
}

#[test]
fn an_unknown_mount_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-server"))
        .args(["--variant", "none", "--bind", "127.0.0.1:0"])
        .env("BENCH_MOUNT", "sideways")
        .output()
        .expect("bench-server runs");
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BENCH_MOUNT=sideways: layer or wrap"),
        "{stderr}"
    );
}
