//! Interop with PyJWT, in both directions, for HS256, RS256, ES256 and EdDSA.
//!
//! PyJWT runs as a child process, `tests/interop/pyjwt_peer.py`, one JSON request on stdin per
//! call (`tests/interop/peer.rs` finds or makes the Python). Keys are fresh on every run: HS256
//! secrets from [`Secret::random`], key pairs from PyJWT's own `cryptography`, handed to
//! Portcullis as PKCS#8 / SPKI PEM.

// Test code: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "interop/peer.rs"]
mod peer;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use peer::pyjwt;
use portcullis_core::ids::{AgentId, OrgId, RunId, SessionId, TokenId, UserId};
use portcullis_core::token::{
    AccessGrant, AccessToken, AgentGrant, AgentToken, AgentTokens, DEFAULT_MAX_TOKEN_BYTES,
    JwtAlgorithm, KeyRing, SigningKey, TokenHeader, TokenPolicy, UserTokenTtl, UserTokens,
    VerifyingKey,
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
            fn refresh_token_is_invalid_audience_to_pyjwt_checking_the_access_audience() {
                super::refresh_token_is_invalid_audience_to_pyjwt($alg);
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
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068");
}

fn refresh_token_is_invalid_audience_to_pyjwt(alg: JwtAlgorithm) {
    // A service verifying access tokens with our key, issuer and audience, as RFC 9068 says.
    let key = TestKey::fresh(alg);
    let tokens = user_tokens(KeyRing::new(key.signing.clone()));
    let refresh = tokens
        .mint_refresh(&UserId::random(), &SessionId::random(), false)
        .expect("Portcullis mints");

    let refused = pyjwt_verify(&key, refresh.token.expose(), USER_ISSUER, USER_AUDIENCE)
        .expect_err("a refresh token is no access token");
    assert!(
        refused.starts_with("InvalidAudienceError:"),
        "PyJWT refused for another reason: {refused}"
    );
    let claims = pyjwt_verify(
        &key,
        refresh.token.expose(),
        USER_ISSUER,
        &format!("{USER_AUDIENCE}:refresh"),
    )
    .unwrap_or_else(|e| panic!("PyJWT refused the refresh token on its own audience: {e}"));
    assert_eq!(claims["type"], "refresh");
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
    assert_access_is(&verified, &claims);
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
    assert_access_is(&verified, &claims);

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
    assert_agent_is(&verified, &claims);
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
    assert_agent_is(&verified, &claims);
}

#[test]
fn hs256_paperclip_shaped_agent_token_minted_by_pyjwt_verifies_in_portcullis() {
    // The claims of Paperclip's createLocalAgentJwt (server/src/agent-auth-jwt.ts), in its
    // order: no jti, no kid, and claims Portcullis does not know.
    let key = TestKey::fresh(JwtAlgorithm::Hs256);
    let tokens = agent_tokens(&key);
    let (agent, run, now) = (AgentId::random(), RunId::random(), unix_now());
    let claims = format!(
        r#"{{"sub":"{agent}","company_id":"acme","adapter_type":"claude_local","run_id":"{run}","responsible_user_id":null,"key_scope":{{"kind":"limited"}},"iat":{now},"exp":{exp},"iss":"{AGENT_ISSUER}","aud":"{AGENT_AUDIENCE}","instance_id":"default"}}"#,
        agent = agent.as_str(),
        run = run.as_str(),
        exp = now + AGENT_TTL_SECS,
    );

    let token = pyjwt_mint(&key, None, &Value::String(claims));

    let verified = tokens
        .verify(&token)
        .unwrap_or_else(|e| panic!("Portcullis refused a Paperclip-shaped token: {e:?}"));
    assert_eq!(verified.agent_id, agent);
    assert_eq!(verified.run_id, run);
    assert_eq!(verified.adapter_type.as_deref(), Some("claude_local"));
    assert_eq!(verified.jti, None);
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

/// Every claim a verified access token keeps is the one PyJWT signed (`iss`, `aud` and `type`
/// were checked against the policy to get this far).
fn assert_access_is(verified: &AccessToken, claims: &Value) {
    assert_eq!(verified.user_id.as_str(), claims["sub"]);
    assert_eq!(verified.email.as_deref(), claims["email"].as_str());
    assert_eq!(verified.role, claims["role"]);
    assert_eq!(verified.org_id.as_str(), claims["org_id"]);
    assert_eq!(verified.session_id.as_str(), claims["sid"]);
    assert_eq!(verified.jti.as_str(), claims["jti"]);
    assert_eq!(verified.expires_at, claims["exp"]);
}

/// Every claim a verified run token keeps is the one PyJWT signed.
fn assert_agent_is(verified: &AgentToken, claims: &Value) {
    assert_eq!(verified.agent_id.as_str(), claims["sub"]);
    assert_eq!(verified.company_id.as_str(), claims["company_id"]);
    assert_eq!(
        verified.adapter_type.as_deref(),
        claims["adapter_type"].as_str()
    );
    assert_eq!(verified.run_id.as_str(), claims["run_id"]);
    assert_eq!(
        verified.jti.as_ref().map(|j| j.as_str()),
        claims["jti"].as_str()
    );
    assert_eq!(verified.expires_at, claims["exp"]);
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
