//! Tokens and interop, end to end: the real `portcullis` binary over HTTP, with PyJWT (through
//! `crates/portcullis-core/tests/interop/peer.rs`) as the other side — an agent orchestrator
//! minting run tokens, and a service verifying access tokens through our JWKS.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../crates/portcullis-core/tests/interop/peer.rs"]
mod peer;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Options, Server, assert_problem};
use peer::pyjwt;
use serde_json::{Value, json};

const BAD_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/portcullis-core/src/token/testdata")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn start_with(env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default();
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    Server::start_with(opts)
}

async fn whoami(srv: &Server, token: &str) -> reqwest::Response {
    srv.client()
        .get(srv.url("/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A 401 with `code` and the challenge of a presented credential.
async fn assert_401(res: reqwest::Response, code: &str) {
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_problem(res, 401, code).await;
    assert_eq!(challenge.as_deref(), Some(BAD_CREDENTIAL_CHALLENGE));
}

/// The decoded JOSE header of a compact JWT.
fn header_of(token: &str) -> Value {
    let segment = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// PyJWT verifying `token` with the key the server's JWKS names by the token's `kid`:
/// `{header, claims}`, or PyJWT's exception (`ClassName: message`).
async fn pyjwt_verify_via_jwks(srv: &Server, token: &str, audience: &str) -> Result<Value, String> {
    let res = srv
        .client()
        .get(srv.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let jwks = json_of(res, 200).await;
    pyjwt(
        "verify_jwks",
        &json!({"jwks": jwks, "token": token, "issuer": "portcullis", "audience": audience}),
    )
    .map(|out| serde_json::from_str(&out).unwrap())
}

// --- (a) agent run tokens minted by another orchestrator ---------------------------------------

#[tokio::test]
async fn paperclip_agent_token_minted_by_pyjwt_is_200_as_that_agent() {
    // Paperclip's createLocalAgentJwt (server/src/agent-auth-jwt.ts) signs with a key derived
    // per instance and company: HMAC-SHA256(master, "jwt:<instance>:<company>"), as hex. A
    // deployment serving one company gives Portcullis that derived key as its agent secret.
    let master = "paperclip-master-secret-for-this-test-only";
    let derived = pyjwt(
        "hmac_hex",
        &json!({"key": master, "message": "jwt:default:default"}),
    )
    .unwrap();
    let srv = start_with(&[
        ("AUTH_AGENT_JWT_SECRET", &derived),
        // Paperclip's default issuer and audience.
        ("AUTH_AGENT_JWT_ISSUER", "paperclip"),
        ("AUTH_AGENT_JWT_AUDIENCE", "paperclip-api"),
    ]);
    let admin = srv.admin_token().await;
    let res = srv
        .client()
        .post(srv.url("/agents"))
        .bearer_auth(&admin)
        .json(&json!({"name": "paperclip worker"}))
        .send()
        .await
        .unwrap();
    let agent = json_of(res, 201).await;
    let (agent_id, org_id) = (
        agent["agent_id"].as_str().unwrap(),
        agent["org_id"].as_str().unwrap(),
    );
    assert_eq!(
        org_id, "default",
        "the admin's org, which the key was derived for"
    );

    // Exactly createLocalAgentJwt's claims, in its order: no jti, no kid, claims we ignore.
    let run_id = "8f14e45f-ceea-467a-9575-0b3a5fbc1f7c";
    let iat = now();
    let claims = format!(
        r#"{{"sub":"{agent_id}","company_id":"{org_id}","adapter_type":"claude_local","run_id":"{run_id}","responsible_user_id":null,"iat":{iat},"exp":{exp},"iss":"paperclip","aud":"paperclip-api","instance_id":"default"}}"#,
        exp = iat + 48 * 3600,
    );
    let token = pyjwt(
        "mint",
        &json!({"alg": "HS256", "key": STANDARD.encode(&derived), "claims": claims}),
    )
    .unwrap();
    assert_eq!(header_of(&token), json!({"alg": "HS256", "typ": "JWT"}));

    let me = json_of(whoami(&srv, &token).await, 200).await;
    assert_eq!(me["kind"], "agent");
    assert_eq!(me["id"], agent_id);
    assert_eq!(me["org_id"], org_id);
    assert_eq!(me["auth_method"], "jwt");
    assert_eq!(me["run_id"], run_id);

    // A token with no jti is still ended by terminating its agent.
    let res = srv
        .client()
        .post(srv.url(&format!("/agents/{agent_id}/terminate")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_401(whoami(&srv, &token).await, "agent_terminated").await;
}

// --- (b) typed access tokens, refresh tokens on their own audience -----------------------------

#[tokio::test]
async fn refresh_token_is_invalid_audience_through_the_jwks_and_401_as_a_bearer() {
    let key = testdata("es256.pem");
    let srv = start_with(&[
        ("AUTH_JWT_ALGORITHM", "ES256"),
        ("AUTH_JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
    ]);
    let pair = srv.login(common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    let (access, refresh) = (
        pair["access_token"].as_str().unwrap(),
        pair["refresh_token"].as_str().unwrap(),
    );

    // A service verifying access tokens through our JWKS, with our iss and aud (RFC 9068).
    let ok = pyjwt_verify_via_jwks(&srv, access, "portcullis-api")
        .await
        .unwrap_or_else(|e| panic!("PyJWT refused the access token: {e}"));
    assert_eq!(ok["header"]["typ"], "at+jwt");
    assert_eq!(ok["claims"]["type"], "access");
    assert_eq!(header_of(refresh)["typ"], "JWT");
    let refused = pyjwt_verify_via_jwks(&srv, refresh, "portcullis-api")
        .await
        .expect_err("a refresh token must not pass as an access token");
    assert!(
        refused.starts_with("InvalidAudienceError:"),
        "refused for another reason: {refused}"
    );
    let own = pyjwt_verify_via_jwks(&srv, refresh, "portcullis-api:refresh")
        .await
        .unwrap_or_else(|e| panic!("PyJWT refused the refresh token on its audience: {e}"));
    assert_eq!(own["claims"]["aud"], "portcullis-api:refresh");

    assert_401(whoami(&srv, refresh).await, "wrong_token_type").await;
    json_of(whoami(&srv, access).await, 200).await;
    // And the refresh token still refreshes.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    let rotated = json_of(res, 200).await;
    let next = rotated["access_token"].as_str().unwrap();
    assert_eq!(header_of(next)["typ"], "at+jwt");
}

// --- (c) private keys in the PEM forms openssl writes ------------------------------------------

/// Starts the server with `alg` and the key file `pem`, logs in, and checks that the token is
/// served (whoami) and that PyJWT verifies it through the JWKS under the key's kid.
async fn starts_mints_and_jwks_verifies(alg: &str, pem: &str, begins: &str) {
    let key = testdata(pem);
    assert!(
        std::fs::read_to_string(&key).unwrap().starts_with(begins),
        "{pem} is the form under test"
    );
    let srv = start_with(&[
        ("AUTH_JWT_ALGORITHM", alg),
        ("AUTH_JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
    ]);
    let access = srv.admin_token().await;
    assert_eq!(header_of(&access)["alg"], alg);
    json_of(whoami(&srv, &access).await, 200).await;
    let verified = pyjwt_verify_via_jwks(&srv, &access, "portcullis-api")
        .await
        .unwrap_or_else(|e| panic!("PyJWT refused the {alg} token via the JWKS: {e}"));
    assert_eq!(verified["claims"]["email"], common::ADMIN_EMAIL);
}

#[tokio::test]
async fn server_starts_with_a_sec1_ec_private_key_and_its_jwks_verifies_its_tokens() {
    starts_mints_and_jwks_verifies("ES256", "es256.sec1.pem", "-----BEGIN EC PRIVATE KEY-----")
        .await;
}

#[tokio::test]
async fn server_starts_with_a_pkcs1_rsa_private_key_and_its_jwks_verifies_its_tokens() {
    starts_mints_and_jwks_verifies(
        "RS256",
        "rs256.pkcs1.pem",
        "-----BEGIN RSA PRIVATE KEY-----",
    )
    .await;
}

// --- (d) production refuses one secret for users and agents ------------------------------------

#[test]
fn production_with_one_secret_for_users_and_agents_exits_non_zero_and_says_so() {
    let secret = "one-secret-for-users-and-agents-of-at-least-32-bytes";
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::binary())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("REDIS_URL")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/portcullis.db", dir.path().display()),
        )
        .env("AUTH_ENV", "production")
        .env("AUTH_JWT_SECRET_KEY", secret)
        .env("AUTH_AGENT_JWT_SECRET", secret)
        .env("PORTCULLIS_ADMIN_EMAIL", common::ADMIN_EMAIL)
        .env("PORTCULLIS_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    // A server that started would never exit: give it a bound, then kill it.
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let _ = tx.send(());
        status
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("the server did not exit: it started with one secret for users and agents");
    }
    let status = waiter.join().unwrap();
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    assert!(!status.success(), "exit status {status}; output:\n{output}");
    assert!(
        output.contains("AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET must differ in production"),
        "{output}"
    );
    assert!(
        !output.contains(secret),
        "the secret was printed:\n{output}"
    );
    assert!(!output.contains("listening on"), "{output}");
}

// --- (e) the README's AUTH_JWT_PREVIOUS_KEYS_FILE example --------------------------------------

/// The fenced block of README.md opened with "```json previous-keys.json".
fn readme_previous_keys_example() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != "```json previous-keys.json");
    assert!(
        lines.next().is_some(),
        "README.md has no previous-keys.json example"
    );
    let block: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    block.join("\n")
}

#[tokio::test]
async fn readme_previous_keys_example_keeps_tokens_of_the_old_keys_valid() {
    let example = readme_previous_keys_example();
    let entries: Value = serde_json::from_str(&example).expect("the example is JSON");
    let old_secret = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["alg"] == "HS256")
        .and_then(|e| e["secret"].as_str())
        .expect("the example has an HS256 entry")
        .to_owned();

    // Before the rotation: tokens signed by the old HS256 secret, then by the ES256 key whose
    // public half the example lists (testdata/es256.pub.pem).
    let first = start_with(&[("AUTH_JWT_SECRET_KEY", &old_secret)]);
    let by_old_secret = first.admin_token().await;
    let dir = first.dir.clone();
    let _keep = first.stop();
    let es_key = testdata("es256.pem");
    let second = Server::start_with(
        Options {
            dir: Some(dir.clone()),
            ..Options::default()
        }
        .env("AUTH_JWT_ALGORITHM", "ES256")
        .env("AUTH_JWT_PRIVATE_KEY_FILE", es_key.to_str().unwrap()),
    );
    let by_old_es256 = second.admin_token().await;
    drop(second);

    // After it: a new secret, the README's file as the previous keys.
    let file = dir.join("previous-keys.json");
    std::fs::write(&file, &example).unwrap();
    let rotated = Server::start_with(
        Options {
            dir: Some(dir.clone()),
            ..Options::default()
        }
        .env(
            "AUTH_JWT_SECRET_KEY",
            "the-new-user-secret-after-rotation-32-bytes+",
        )
        .env("AUTH_JWT_PREVIOUS_KEYS_FILE", file.to_str().unwrap()),
    );
    for (what, token) in [("HS256", &by_old_secret), ("ES256", &by_old_es256)] {
        let me = json_of(whoami(&rotated, token).await, 200).await;
        assert_eq!(me["kind"], "user", "{what}");
    }
    let fresh = rotated.admin_token().await;
    assert_ne!(header_of(&fresh)["kid"], header_of(&by_old_secret)["kid"]);
    json_of(whoami(&rotated, &fresh).await, 200).await;
}
