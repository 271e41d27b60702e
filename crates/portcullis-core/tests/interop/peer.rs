//! The PyJWT peer (`pyjwt_peer.py` beside this file), shared by `tests/pyjwt_interop.rs` and the
//! workspace's `tests/server_tokens.rs` (which includes it by `#[path]`).
//!
//! The Python it runs is, in order: `$PORTCULLIS_PYTHON`, or `target/interop-venv`, created on
//! first use with `python3 -m venv` and `pip install -r requirements.txt`. When none can be
//! had, every test using it fails with the reason: an interop test that skips proves nothing.

// Test code: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::env;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// Runs one peer command: its stdout, trimmed, or its stderr when PyJWT refused. Panics when
/// Python itself cannot be had or run.
pub fn pyjwt(command: &str, request: &Value) -> Result<String, String> {
    let python = python().unwrap_or_else(|e| panic!("{e}"));
    let script = interop_dir().join("pyjwt_peer.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("wait for the peer");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(stdout),
        // The peer's own "PyJWT said no"; anything else is a broken peer, not a refusal.
        Some(1) if !stderr.starts_with("Traceback") => Err(stderr),
        _ => panic!(
            "pyjwt_peer.py {command} crashed ({}):\n{stderr}",
            out.status
        ),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Finding or making a Python with PyJWT.
// ---------------------------------------------------------------------------------------------

/// This directory: `CARGO_MANIFEST_DIR` is portcullis-core's or, from the workspace's own
/// tests, the workspace root's.
fn interop_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = manifest.join("tests/interop");
    if here.join("pyjwt_peer.py").exists() {
        here
    } else {
        manifest.join("crates/portcullis-core/tests/interop")
    }
}

fn requirements() -> PathBuf {
    interop_dir().join("requirements.txt")
}

fn target_dir() -> PathBuf {
    // interop → tests → portcullis-core → crates → the workspace
    let dir = interop_dir();
    let workspace = dir.ancestors().nth(4).unwrap_or(&dir).to_path_buf();
    match env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is taken from the workspace root, where cargo runs.
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// The interpreter, found or set up once per process.
fn python() -> Result<&'static Path, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(find_or_bootstrap_python)
        .as_deref()
        .map_err(|e| {
            format!(
                "PyJWT interop tests need Python 3 with PyJWT and cannot get it:\n{e}\n\
                 Install python3 (with its venv module) and let this test reach PyPI once, or set \
                 PORTCULLIS_PYTHON to a Python that has `pip install -r {}`.",
                requirements().display()
            )
        })
}

fn find_or_bootstrap_python() -> Result<PathBuf, String> {
    if let Some(python) = env::var_os("PORTCULLIS_PYTHON").map(PathBuf::from) {
        if imports_pyjwt(&python) {
            return Ok(python);
        }
        eprintln!(
            "PORTCULLIS_PYTHON={} cannot import jwt and cryptography; using target/interop-venv",
            python.display()
        );
    }
    let target = target_dir();
    let venv = target.join("interop-venv");
    let python = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    if venv_is_ready(&venv, &python) {
        return Ok(python);
    }

    // Test threads and nextest's one-process-per-test all get here on a fresh checkout: the
    // first builds the venv, the others wait for it and find it ready.
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let _lock = lock_exclusively(&target.join("interop-venv.lock"))?;
    if !venv_is_ready(&venv, &python) {
        bootstrap_venv(&venv, &python)?;
    }
    Ok(python)
}

/// Blocks until this process holds `path`'s exclusive lock; dropping the file releases it.
fn lock_exclusively(path: &Path) -> Result<File, String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

/// Built from the current requirements.txt, and importable. The stamp is written last, so a
/// venv another process is still building is never taken as ready.
fn venv_is_ready(venv: &Path, python: &Path) -> bool {
    let stamp = fs::read(venv.join("portcullis-requirements.txt")).ok();
    stamp.is_some() && stamp == fs::read(requirements()).ok() && imports_pyjwt(python)
}

fn bootstrap_venv(venv: &Path, python: &Path) -> Result<(), String> {
    eprintln!("setting up PyJWT in {}", venv.display());
    if !run_ok(Command::new(python).arg("--version")) {
        run(Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv))?;
    }
    run(Command::new(python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
        .arg(requirements()))?;
    if !imports_pyjwt(python) {
        return Err(format!(
            "{} still cannot import jwt and cryptography after pip install",
            python.display()
        ));
    }
    fs::copy(requirements(), venv.join("portcullis-requirements.txt"))
        .map_err(|e| format!("cannot stamp {}: {e}", venv.display()))?;
    Ok(())
}

fn imports_pyjwt(python: &Path) -> bool {
    run_ok(Command::new(python).args(["-c", "import jwt, cryptography"]))
}

fn run_ok(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{shown}` could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ))
    }
}
