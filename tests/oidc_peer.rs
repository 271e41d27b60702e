//! The OpenID Provider test peer (`common::oidc`, node's `oidc-provider`) does what the
//! end-to-end tests rely on: discovery and JWKS at the issuer, client-credentials JWT access
//! tokens with our claims, key rotation, stop/restart on the same port, and a user's login
//! through the authorization-code flow. No mocks: every test starts the real provider.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use common::oidc::{Provider, decode_jwt};
use serde_json::{Value, json};

async fn get_json(url: &str) -> Value {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    res.json().await.unwrap()
}

/// The key ids of the provider's published JWKS, in its order.
async fn jwks_kids(p: &Provider) -> Vec<String> {
    let jwks = get_json(&format!("{}/jwks", p.issuer())).await;
    let keys = jwks["keys"].as_array().unwrap();
    for k in keys {
        // Public parts only.
        assert!(k.get("d").is_none(), "private key published: {k}");
        assert_eq!(k["kty"], "RSA", "{k}");
    }
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_issuer() {
    let p = Provider::start();
    assert!(
        p.issuer().starts_with("http://127.0.0.1:") && p.issuer().ends_with(&p.port().to_string()),
        "{}",
        p.issuer()
    );
    let kids = p.kids();
    assert_eq!(kids.len(), 1, "a fresh provider has one key: {kids:?}");

    let disco = get_json(&format!("{}/.well-known/openid-configuration", p.issuer())).await;
    assert_eq!(disco["issuer"], p.issuer());
    assert_eq!(disco["jwks_uri"], format!("{}/jwks", p.issuer()));
    assert_eq!(disco["token_endpoint"], format!("{}/token", p.issuer()));
    let grants = disco["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")), "{grants:?}");
    let scopes = disco["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("memory:search")), "{scopes:?}");

    assert_eq!(jwks_kids(&p).await, kids);
}

#[tokio::test]
async fn client_credentials_token_is_an_rs256_at_jwt_with_our_claims() {
    let p = Provider::start();
    let before = now();
    let token = p.token("svc-acme", "session:read memory:search").await;
    let (header, claims) = decode_jwt(&token);

    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["kid"], p.kids()[0].as_str(), "{header}");

    assert_eq!(claims["iss"], p.issuer(), "{claims}");
    assert_eq!(claims["sub"], "svc-acme", "{claims}");
    assert_eq!(claims["client_id"], "svc-acme", "{claims}");
    assert_eq!(claims["aud"], "portcullis-api", "{claims}");
    assert_eq!(claims["scope"], "session:read memory:search", "{claims}");
    assert_eq!(claims["org"], "acme", "{claims}");
    assert_eq!(claims["roles"], json!(["user"]), "{claims}");
    assert_eq!(claims["realm_access"]["roles"], json!(["user"]), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let iat = claims["iat"].as_u64().unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(
        iat + 5 >= before && iat <= now() + 5,
        "iat {iat}, now {before}"
    );
    assert_eq!(exp, iat + 3600, "{claims}");

    // The other clients carry their own claims.
    let (_, admin) = decode_jwt(&p.token("svc-admin", "admin:read admin:write").await);
    assert_eq!(admin["sub"], "svc-admin");
    assert_eq!(admin["org"], "acme");
    assert_eq!(admin["roles"], json!(["admin"]));
    assert_eq!(admin["realm_access"]["roles"], json!(["admin"]));
    assert_eq!(admin["scope"], "admin:read admin:write");
    let (_, globex) = decode_jwt(&p.token("svc-globex", "memory:read").await);
    assert_eq!(globex["org"], "globex");
    assert_eq!(globex["roles"], json!(["viewer"]));
    assert_eq!(globex["realm_access"]["roles"], json!(["viewer"]));
}

#[tokio::test]
async fn a_wrong_secret_gets_no_token() {
    let p = Provider::start();
    let res = reqwest::Client::new()
        .post(format!("{}/token", p.issuer()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc-acme"),
            ("client_secret", "svc-admin-secret"),
            ("scope", "session:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

#[tokio::test]
async fn the_audience_can_be_chosen() {
    let p = Provider::start_with_audience("https://api.example.test");
    let (_, claims) = decode_jwt(&p.token("svc-acme", "session:list").await);
    assert_eq!(claims["aud"], "https://api.example.test", "{claims}");
    assert_eq!(claims["scope"], "session:list");
}

#[tokio::test]
async fn rotate_signs_with_a_new_key_and_keeps_publishing_the_old_one() {
    let mut p = Provider::start();
    let issuer = p.issuer().to_owned();
    let old = p.kids()[0].clone();
    let (h, _) = decode_jwt(&p.token("svc-acme", "session:read").await);
    assert_eq!(h["kid"], old.as_str());

    p.rotate();
    assert_eq!(p.issuer(), issuer, "same port after a rotation");
    let kids = p.kids();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_ne!(kids[0], old, "a new signing key first");
    assert_eq!(kids[1], old, "the old key after it");
    assert_eq!(jwks_kids(&p).await, kids);

    let (h, claims) = decode_jwt(&p.token("svc-acme", "session:read").await);
    assert_eq!(h["kid"], kids[0].as_str(), "new tokens carry the new kid");
    assert_eq!(claims["iss"], issuer.as_str());

    // Retiring the old key unpublishes it.
    p.drop_old_keys();
    assert_eq!(p.kids(), vec![kids[0].clone()]);
    assert_eq!(jwks_kids(&p).await, vec![kids[0].clone()]);
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_serves_the_same_issuer() {
    let mut p = Provider::start();
    let issuer = p.issuer().to_owned();
    let kids = p.kids();
    let addr = ("127.0.0.1", p.port());
    TcpStream::connect(addr).expect("the running provider accepts connections");

    p.stop();
    let err = TcpStream::connect(addr).expect_err("a stopped provider refuses connections");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert!(
        reqwest::get(format!("{issuer}/jwks")).await.is_err(),
        "no HTTP answer while stopped"
    );

    p.restart();
    assert_eq!(p.issuer(), issuer);
    assert_eq!(p.kids(), kids, "the same keys after a restart");
    let disco = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(disco["issuer"], issuer.as_str());
    let (h, claims) = decode_jwt(&p.token("svc-globex", "memory:list").await);
    assert_eq!(h["kid"], kids[0].as_str());
    assert_eq!(claims["iss"], issuer.as_str());
}

#[tokio::test]
async fn a_user_logs_in_with_the_authorization_code_flow() {
    let p = Provider::start();
    let token = p.login("alice", "openid session:read session:list");
    let (header, claims) = decode_jwt(&token);
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["kid"], p.kids()[0].as_str(), "{header}");
    assert_eq!(claims["iss"], p.issuer(), "{claims}");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["client_id"], "portcullis-web", "{claims}");
    assert_eq!(claims["aud"], "portcullis-api", "{claims}");
    assert_eq!(
        claims["scope"], "openid session:read session:list",
        "{claims}"
    );
    assert_eq!(claims["org"], "acme", "{claims}");
    assert_eq!(claims["roles"], json!(["user"]), "{claims}");
    assert_eq!(claims["realm_access"]["roles"], json!(["user"]), "{claims}");

    // A name without claims still logs in, and gets none.
    let (_, claims) = decode_jwt(&p.login("mallory", "openid memory:read"));
    assert_eq!(claims["sub"], "mallory", "{claims}");
    assert!(claims.get("org").is_none(), "{claims}");
}
