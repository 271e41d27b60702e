//! Interop with PyJWT, in both directions, for HS256, RS256, ES256 and EdDSA.
//!
//! PyJWT runs as a child process, `tests/interop/pyjwt_peer.py`, one JSON request on stdin per
//! call. Keys are fresh on every run: HS256 secrets from [`Secret::random`], key pairs from
//! PyJWT's own `cryptography`, handed to Portcullis as PKCS#8 / SPKI PEM.
//!
//! The Python it runs is, in order: `$PORTCULLIS_PYTHON`, or `target/interop-venv`, created on
//! first use with `python3 -m venv` and `pip install -r tests/interop/requirements.txt`. When
//! none can be had, every test here fails with the reason: an interop test that skips proves
//! nothing.

// Test code: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::env;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::ids::{AgentId, OrgId, RunId, SessionId, TokenId, UserId};
use portcullis_core::token::{
    AccessGrant, AgentGrant, AgentTokens, DEFAULT_MAX_TOKEN_BYTES, JwtAlgorithm, KeyRing,
    SigningKey, TokenHeader, TokenPolicy, UserTokenTtl, UserTokens, VerifyingKey,
};
use portcullis_core::{Secret, TokenError};
use serde_json::{Value, json};

const USER_ISSUER: &str = "portcullis";
const USER_AUDIENCE: &str = "portcullis-api";
const AGENT_ISSUER: &str = "portcullis";
const AGENT_AUDIENCE: &str = "portcullis-agents";
const AGENT_TTL_SECS: u64 = 48 * 3600;
/// Not ASCII, so that both JSON encoders are exercised on it.
const EMAIL: &str = "zoë@example.com";

// ---------------------------------------------------------------------------------------------
// The tests, once per algorithm.
// ---------------------------------------------------------------------------------------------

macro_rules! interop_tests {
    ($($module:ident => $alg:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn access_token_minted_by_portcullis_verifies_in_pyjwt() {
                super::portcullis_access_token_verifies_in_pyjwt($alg);
            }

            #[test]
            fn pyjwt_rejects_portcullis_token_checked_with_another_key() {
                super::pyjwt_rejects_portcullis_token_under_another_key($alg);
            }

            #[test]
            fn access_token_minted_by_pyjwt_verifies_in_portcullis() {
                super::pyjwt_access_token_verifies_in_portcullis($alg);
            }

            #[test]
            fn access_token_minted_by_pyjwt_without_kid_verifies_against_active_key() {
                super::pyjwt_access_token_without_kid_verifies_against_active_key($alg);
            }

            #[test]
            fn pyjwt_token_signed_by_another_key_under_our_kid_is_bad_signature() {
                super::pyjwt_token_signed_by_another_key_under_our_kid_is_bad_signature($alg);
            }

            #[test]
            fn pyjwt_token_with_a_kid_not_in_the_ring_is_unknown_kid() {
                super::pyjwt_token_with_a_kid_not_in_the_ring_is_unknown_kid($alg);
            }
        }
    )*};
}

interop_tests! {
    hs256 => JwtAlgorithm::Hs256,
    rs256 => JwtAlgorithm::Rs256,
    es256 => JwtAlgorithm::Es256,
    eddsa => JwtAlgorithm::EdDsa,
}

fn portcullis_access_token_verifies_in_pyjwt(alg: JwtAlgorithm) {
    let key = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));
    let (user, org, sid) = (UserId::random(), OrgId::from("acme"), SessionId::random());
    let minted = tokens
        .mint_access(AccessGrant {
            user_id: &user,
            email: EMAIL,
            role: "admin",
            org_id: &org,
            session_id: &sid,
        })
        .expect("Portcullis mints");

    let claims = pyjwt_verify(&key, minted.token.expose(), USER_ISSUER, USER_AUDIENCE)
        .unwrap_or_else(|e| panic!("PyJWT refused Portcullis' {alg} access token: {e}"));

    assert_eq!(
        claims,
        json!({
            "sub": user.as_str(),
            "email": EMAIL,
            "role": "admin",
            "org_id": "acme",
            "type": "access",
            "sid": sid.as_str(),
            "jti": minted.jti.as_str(),
            "iss": USER_ISSUER,
            "aud": USER_AUDIENCE,
            "iat": minted.expires_at - tokens.ttl().access_secs,
            "exp": minted.expires_at,
        })
    );
    let (header, header_alg) =
        TokenHeader::parse(minted.token.expose(), DEFAULT_MAX_TOKEN_BYTES).expect("header");
    assert_eq!(header_alg, alg);
    assert_eq!(header.kid.as_deref(), Some(key.signing.kid()));
}

fn pyjwt_rejects_portcullis_token_under_another_key(alg: JwtAlgorithm) {
    let key = TestKey::fresh(alg);
    let other = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));
    let minted = tokens
        .mint_access(AccessGrant {
            user_id: &UserId::random(),
            email: EMAIL,
            role: "user",
            org_id: &OrgId::from("acme"),
            session_id: &SessionId::random(),
        })
        .expect("Portcullis mints");

    let refused = pyjwt_verify(&other, minted.token.expose(), USER_ISSUER, USER_AUDIENCE)
        .expect_err("PyJWT must refuse a token checked with another key");
    assert!(
        refused.starts_with("InvalidSignatureError:"),
        "PyJWT refused for another reason: {refused}"
    );
}

fn pyjwt_access_token_verifies_in_portcullis(alg: JwtAlgorithm) {
    let key = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));
    let claims = contract_access_claims();

    let token = pyjwt_mint(&key, Some(key.signing.kid()), &claims);

    let verified = tokens
        .verify_access(&token)
        .unwrap_or_else(|e| panic!("Portcullis refused PyJWT's {alg} access token: {e:?}"));
    assert_eq!(
        serde_json::to_value(verified).expect("claims to JSON"),
        claims
    );
}

fn pyjwt_access_token_without_kid_verifies_against_active_key(alg: JwtAlgorithm) {
    let active = TestKey::fresh(alg);
    let previous = TestKey::fresh(alg);
    let ring = KeyRing::new(active.signing.clone())
        .with_previous(previous.signing.verifying_key().clone())
        .expect("distinct kids");
    let tokens = user_tokens(ring);
    let claims = contract_access_claims();

    let token = pyjwt_mint(&active, None, &claims);
    let verified = tokens
        .verify_access(&token)
        .unwrap_or_else(|e| panic!("Portcullis refused PyJWT's {alg} token without kid: {e:?}"));
    assert_eq!(
        serde_json::to_value(verified).expect("claims to JSON"),
        claims
    );

    // Only the active key is tried: the previous key's signature does not count without a kid.
    let by_previous = pyjwt_mint(&previous, None, &claims);
    assert_eq!(
        tokens.verify_access(&by_previous),
        Err(TokenError::BadSignature)
    );
}

fn pyjwt_token_signed_by_another_key_under_our_kid_is_bad_signature(alg: JwtAlgorithm) {
    let key = TestKey::fresh(alg);
    let other = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));

    let token = pyjwt_mint(&other, Some(key.signing.kid()), &contract_access_claims());

    assert_eq!(tokens.verify_access(&token), Err(TokenError::BadSignature));
}

fn pyjwt_token_with_a_kid_not_in_the_ring_is_unknown_kid(alg: JwtAlgorithm) {
    let key = TestKey::fresh(alg);
    let other = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));

    let token = pyjwt_mint(&other, Some(other.signing.kid()), &contract_access_claims());

    assert_eq!(tokens.verify_access(&token), Err(TokenError::UnknownKid));
}

// ---------------------------------------------------------------------------------------------
// Agent run tokens: HS256 with their own secret, issuer and audience.
// ---------------------------------------------------------------------------------------------

#[test]
fn hs256_agent_token_minted_by_portcullis_verifies_in_pyjwt() {
    let key = TestKey::fresh(JwtAlgorithm::Hs256);
    let tokens = agent_tokens(&key);
    let (agent, company, run) = (AgentId::random(), OrgId::from("acme"), RunId::random());
    let minted = tokens
        .mint(AgentGrant {
            agent_id: &agent,
            company_id: &company,
            adapter_type: "claude_local",
            run_id: &run,
        })
        .expect("Portcullis mints");

    let claims = pyjwt_verify(&key, minted.token.expose(), AGENT_ISSUER, AGENT_AUDIENCE)
        .unwrap_or_else(|e| panic!("PyJWT refused Portcullis' agent token: {e}"));

    assert_eq!(
        claims,
        json!({
            "sub": agent.as_str(),
            "company_id": "acme",
            "adapter_type": "claude_local",
            "run_id": run.as_str(),
            "jti": minted.jti.as_str(),
            "iss": AGENT_ISSUER,
            "aud": AGENT_AUDIENCE,
            "iat": minted.expires_at - AGENT_TTL_SECS,
            "exp": minted.expires_at,
        })
    );
}

#[test]
fn hs256_agent_token_minted_by_pyjwt_verifies_in_portcullis() {
    let key = TestKey::fresh(JwtAlgorithm::Hs256);
    let tokens = agent_tokens(&key);
    let claims = contract_agent_claims();

    let token = pyjwt_mint(&key, Some(key.signing.kid()), &claims);

    let verified = tokens
        .verify(&token)
        .unwrap_or_else(|e| panic!("Portcullis refused PyJWT's agent token: {e:?}"));
    assert_eq!(
        serde_json::to_value(verified).expect("claims to JSON"),
        claims
    );
}

#[test]
fn hs256_agent_token_minted_by_pyjwt_without_kid_verifies_in_portcullis() {
    // Other orchestrators sign with the shared secret and set no kid.
    let key = TestKey::fresh(JwtAlgorithm::Hs256);
    let tokens = agent_tokens(&key);
    let claims = contract_agent_claims();

    let token = pyjwt_mint(&key, None, &claims);

    let verified = tokens
        .verify(&token)
        .unwrap_or_else(|e| panic!("Portcullis refused PyJWT's agent token without kid: {e:?}"));
    assert_eq!(
        serde_json::to_value(verified).expect("claims to JSON"),
        claims
    );
}

#[test]
fn hs256_agent_token_signed_by_pyjwt_with_another_secret_is_bad_signature() {
    let key = TestKey::fresh(JwtAlgorithm::Hs256);
    let other = TestKey::fresh(JwtAlgorithm::Hs256);
    let tokens = agent_tokens(&key);

    let token = pyjwt_mint(&other, None, &contract_agent_claims());

    assert_eq!(tokens.verify(&token), Err(TokenError::BadSignature));
}

// ---------------------------------------------------------------------------------------------
// Keys, token families and claims.
// ---------------------------------------------------------------------------------------------

/// One key as each side takes it.
struct TestKey {
    signing: SigningKey,
    /// What PyJWT signs with: the secret (base64) or the private PEM.
    pyjwt_signing: String,
    /// What PyJWT verifies with: the secret (base64) or the public PEM.
    pyjwt_verifying: String,
}

impl TestKey {
    fn fresh(alg: JwtAlgorithm) -> Self {
        if alg == JwtAlgorithm::Hs256 {
            let secret = Secret::random(32);
            let b64 = STANDARD.encode(secret.expose());
            return Self {
                signing: SigningKey::hs256(&secret),
                pyjwt_signing: b64.clone(),
                pyjwt_verifying: b64,
            };
        }
        let pair: Value = serde_json::from_str(
            &pyjwt("keygen", &json!({ "alg": alg.as_str() }))
                .unwrap_or_else(|e| panic!("PyJWT could not make a {alg} key: {e}")),
        )
        .expect("keygen answers JSON");
        let (private, public) = (pair["private_pem"].as_str(), pair["public_pem"].as_str());
        let (Some(private), Some(public)) = (private, public) else {
            panic!("keygen answered {pair}");
        };
        let signing = SigningKey::from_private_pem(alg, private.as_bytes())
            .unwrap_or_else(|e| panic!("Portcullis cannot load cryptography's {alg} PEM: {e}"));
        // A verify-only deployment (public PEM) must derive the same kid as the signer.
        let verifying = VerifyingKey::from_public_pem(alg, public.as_bytes())
            .unwrap_or_else(|e| panic!("Portcullis cannot load cryptography's {alg} SPKI: {e}"));
        assert_eq!(verifying.kid(), signing.kid());
        Self {
            signing,
            pyjwt_signing: private.to_owned(),
            pyjwt_verifying: public.to_owned(),
        }
    }
}

fn user_tokens(ring: KeyRing) -> UserTokens {
    let policy = TokenPolicy {
        issuer: USER_ISSUER.into(),
        audience: USER_AUDIENCE.into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    UserTokens::new(ring, policy, UserTokenTtl::default())
}

fn agent_tokens(key: &TestKey) -> AgentTokens {
    let policy = TokenPolicy {
        issuer: AGENT_ISSUER.into(),
        audience: AGENT_AUDIENCE.into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    AgentTokens::new(KeyRing::new(key.signing.clone()), policy, AGENT_TTL_SECS)
}

/// An access token's claims exactly as shared/CONTRACT.md lists them.
fn contract_access_claims() -> Value {
    let now = unix_now();
    json!({
        "sub": UserId::random().as_str(),
        "email": EMAIL,
        "role": "user",
        "org_id": "acme",
        "type": "access",
        "sid": SessionId::random().as_str(),
        "jti": TokenId::random().as_str(),
        "iat": now,
        "exp": now + 900,
        "iss": USER_ISSUER,
        "aud": USER_AUDIENCE,
    })
}

/// An agent run token's claims exactly as shared/CONTRACT.md lists them.
fn contract_agent_claims() -> Value {
    let now = unix_now();
    json!({
        "sub": AgentId::random().as_str(),
        "company_id": "acme",
        "adapter_type": "claude_local",
        "run_id": RunId::random().as_str(),
        "iat": now,
        "exp": now + AGENT_TTL_SECS,
        "jti": TokenId::random().as_str(),
        "iss": AGENT_ISSUER,
        "aud": AGENT_AUDIENCE,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// The PyJWT peer.
// ---------------------------------------------------------------------------------------------

/// PyJWT's `decode` of `token`: the claims, or the exception it raised (`ClassName: message`).
fn pyjwt_verify(key: &TestKey, token: &str, issuer: &str, audience: &str) -> Result<Value, String> {
    let claims = pyjwt(
        "verify",
        &json!({
            "alg": key.signing.algorithm().as_str(),
            "key": key.pyjwt_verifying,
            "token": token,
            "issuer": issuer,
            "audience": audience,
        }),
    )?;
    Ok(serde_json::from_str(&claims).expect("verify answers JSON"))
}

/// PyJWT's `encode` of `claims` with `key`, with a `kid` header when given one.
fn pyjwt_mint(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    pyjwt(
        "mint",
        &json!({
            "alg": key.signing.algorithm().as_str(),
            "key": key.pyjwt_signing,
            "kid": kid,
            "claims": claims,
        }),
    )
    .unwrap_or_else(|e| panic!("PyJWT could not mint: {e}"))
}

/// Runs one peer command: its stdout, trimmed, or its stderr when PyJWT refused. Panics when
/// Python itself cannot be had or run.
fn pyjwt(command: &str, request: &Value) -> Result<String, String> {
    let python = python().unwrap_or_else(|e| panic!("{e}"));
    let script = manifest_dir().join("tests/interop/pyjwt_peer.py");
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

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn requirements() -> PathBuf {
    manifest_dir().join("tests/interop/requirements.txt")
}

fn target_dir() -> PathBuf {
    let workspace = manifest_dir()
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| manifest_dir());
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
