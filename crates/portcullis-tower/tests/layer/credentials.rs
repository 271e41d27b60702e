//! Credentials that resolve to an actor, and 401 `missing_credentials` and `invalid_token`.

use super::*;
use portcullis_testkit::jws::{b64url, reheaded};

// ---------------------------------------------------------------------------------------------
// Valid credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_bearer_jwt_resolves_to_the_user_with_method_jwt() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let r = fx.get_with_bearer(&token).await;
    let actor = assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    assert_eq!(actor["org_id"], ORG);
    assert_eq!(actor["session_id"], sid.as_str());
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let h = format!("{scheme} {token}");
        let r = fx.get_private(&[("authorization", &h)]).await;
        assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    }
}

#[tokio::test]
async fn access_cookie_resolves_to_the_user_with_method_cookie() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let cookie = format!("theme=dark; {}; lang=en", access_cookie(&token));
    let r = fx.get_private(&[("cookie", &cookie)]).await;
    let actor = assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    assert_eq!(actor["session_id"], sid.as_str());
}

#[tokio::test]
async fn user_api_key_in_x_api_key_resolves_to_the_api_key_actor() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx.get_with_api_key(&key).await;
    let actor = assert_api_key_actor(&r, id.as_str());
    assert_eq!(actor["key_id"], id.as_str());
    assert_eq!(actor["org_id"], ORG);
}

#[tokio::test]
async fn user_api_key_as_bearer_resolves_to_the_api_key_actor() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx.get_with_bearer(&key).await;
    assert_api_key_actor(&r, id.as_str());
}

#[tokio::test]
async fn agent_owned_api_key_resolves_to_the_agent() {
    let fx = Fx::new();
    let agent = fx.agent("agent-7").await;
    let (key, id) = fx.key_with(KeyOwner::Agent(agent), |_| {}).await;
    for r in fx.get_with_key_both_ways(&key).await {
        let actor = assert_actor(&r, "agent", Some("agent-7"), Some("api_key"));
        assert_eq!(actor["key_id"], id.as_str());
        assert_eq!(actor["run_id"], Value::Null);
    }
}

#[tokio::test]
async fn agent_run_token_resolves_to_the_agent_with_its_run() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let token = fx.run_token("agent-7", ORG, "run-42");
    let r = fx.get_with_bearer(token.token.expose()).await;
    let actor = assert_actor(&r, "agent", Some("agent-7"), Some("jwt"));
    assert_eq!(actor["run_id"], "run-42");
    assert_eq!(actor["org_id"], ORG);
    assert_eq!(actor["key_id"], Value::Null);
}

#[tokio::test]
async fn the_same_credential_in_two_sources_counts_once() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx
        .get_private(&[("x-api-key", &key), ("authorization", &bearer(&key))])
        .await;
    assert_api_key_actor(&r, id.as_str());

    let (_, token) = fx.login("u-bob").await;
    let r = fx
        .get_private(&[
            ("authorization", &bearer(&token)),
            ("cookie", &access_cookie(&token)),
        ])
        .await;
    // The bearer comes first in the contract's order.
    assert_actor(&r, "user", Some("u-bob"), Some("jwt"));
}

#[tokio::test]
async fn two_credentials_of_the_same_actor_are_accepted_and_the_first_decides() {
    let fx = Fx::new();
    let (_, phone) = fx.login("u-alice").await;
    let (_, laptop) = fx.login("u-alice").await;
    let r = fx
        .get_private(&[
            ("authorization", &bearer(&phone)),
            ("cookie", &access_cookie(&laptop)),
        ])
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));

    // An agent's own key and its run token name the same agent; the key comes first.
    let agent = fx.agent("agent-7").await;
    let (key, key_id) = fx.key_with(KeyOwner::Agent(agent), |_| {}).await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .get_private(&[
            ("x-api-key", &key),
            ("authorization", &bearer(run.token.expose())),
        ])
        .await;
    let actor = assert_actor(&r, "agent", Some("agent-7"), Some("api_key"));
    assert_eq!(actor["key_id"], key_id.as_str());
}

#[tokio::test]
async fn a_token_inside_the_leeway_is_still_accepted() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY - 1);
    let r = fx.get_with_bearer(&token).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

// ---------------------------------------------------------------------------------------------
// 401 missing_credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_credential_on_a_protected_path_is_missing_credentials_with_a_bare_challenge() {
    let fx = Fx::new();
    for r in [fx.get_private(&[]).await, fx.send(post(PRIVATE, &[])).await] {
        let doc = assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
        assert_eq!(doc["title"], "Unauthorized");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("retry-after"), None);
    }
    // Unrelated cookies, an empty access cookie (a cleared one) and a non-ASCII Cookie header
    // (some other application's) are no credential either.
    for cookie in [
        &b"theme=dark; lang=en"[..],
        b"portcullis_access=",
        b"portcullis_access=\"\"",
        b"\xff\xfeportcullis_access",
    ] {
        let r = fx
            .send(raw(Method::GET, PRIVATE, &[("cookie", cookie)]))
            .await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

// ---------------------------------------------------------------------------------------------
// 401 invalid_token
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_bearer_is_invalid_token() {
    let fx = Fx::new();
    for garbage in [
        "garbage",
        "a.b.c",
        "not.a.jwt.at.all",
        "eyJhbGciOi.x.y",
        "....",
    ] {
        let r = fx.get_with_bearer(garbage).await;
        assert_401(&r, "invalid_token");
        assert_no_leak(&r, &[garbage]);
    }
}

#[tokio::test]
async fn a_tampered_signature_is_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let sig_start = token.rfind('.').unwrap() + 1;
    let mut bytes = token.into_bytes();
    // The first signature character carries six full bits: changing it changes the signature.
    bytes[sig_start] = if bytes[sig_start] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = fx.get_with_bearer(&tampered).await;
    assert_401(&r, "invalid_token");
    let r = fx
        .get_private(&[("cookie", &access_cookie(&tampered))])
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn a_tampered_payload_is_invalid_token() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims = json!({
        "sub": "u-alice", "email": "a@example.com", "role": "admin", "org_id": ORG,
        "type": "access", "sid": sid.as_str(), "jti": "j1",
        "iat": T0, "exp": T0 + 600, "iss": "portcullis", "aud": "portcullis-api",
    });
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    let r = fx.get_with_bearer(&forged).await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_under_our_kid_is_invalid_token() {
    let fx = Fx::new();
    let (sid, _) = fx.login("u-alice").await;
    let our_kid = fx.auth.user_tokens().key_ring().active().kid().to_owned();
    let forger = Fx::with_config(
        config().jwt_signing_key(
            SigningKey::hs256(&Secret::from("the forger's own secret, 32+ bytes long"))
                .with_kid(&our_kid),
        ),
    );
    let forged = forger.access("u-alice", &sid);
    let forged = forged.token.expose();
    let r = fx.get_with_bearer(forged).await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn an_unknown_kid_is_invalid_token() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    // Re-headed with a kid no ring knows.
    let rekid = reheaded(
        &token,
        &json!({"alg": "HS256", "typ": "JWT", "kid": "no-such-kid"}),
    );
    let r = fx.get_with_bearer(&rekid).await;
    assert_401(&r, "invalid_token");
    // Minted by a stranger: other secrets, so other kids.
    let stranger = Fx::with_config(
        AuthConfig::builder()
            .jwt_secret(Secret::from("a stranger's user secret, 32+ bytes long"))
            .agent_secret(Secret::from("a stranger's agent secret, 32+ bytes long")),
    );
    let foreign = stranger.access("u-alice", &sid);
    let r = fx.get_with_bearer(foreign.token.expose()).await;
    assert_401(&r, "invalid_token");
    fx.agent("agent-7").await;
    let foreign_run = stranger.run_token("agent-7", ORG, "run-1");
    let r = fx.get_with_bearer(foreign_run.token.expose()).await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn alg_none_and_crit_headers_are_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "NoNe"}),
        json!({"alg": "HS512"}),
        json!({"alg": "RS256"}),
        json!({"alg": "HS256", "crit": ["exp"]}),
    ] {
        let mut crafted = reheaded(&token, &header);
        if header["alg"].as_str().unwrap().eq_ignore_ascii_case("none") {
            // Unsigned: an empty signature.
            crafted.truncate(crafted.rfind('.').unwrap() + 1);
        }
        let r = fx.get_with_bearer(&crafted).await;
        assert_401(&r, "invalid_token");
    }
}

#[tokio::test]
async fn an_agent_token_in_the_cookie_is_invalid_token() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .get_private(&[("cookie", &access_cookie(run.token.expose()))])
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn an_agent_token_for_an_unknown_agent_or_another_company_is_invalid_token() {
    let fx = Fx::new();
    let ghost = fx.run_token("agent-ghost", ORG, "run-1");
    let r = fx.get_with_bearer(ghost.token.expose()).await;
    assert_401(&r, "invalid_token");
    fx.agent("agent-7").await;
    let elsewhere = fx.run_token("agent-7", "globex", "run-1");
    let r = fx.get_with_bearer(elsewhere.token.expose()).await;
    assert_401(&r, "invalid_token");
}
