//! Every rejection of the token pipeline, by name, asserting the exact variant.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;
use crate::secret::Secret;

const NOW: u64 = 1_800_000_000;
const RS_PRIV: &[u8] = include_bytes!("testdata/rs256.pem");
const RS_PUB: &[u8] = include_bytes!("testdata/rs256.pub.pem");
const ES_PRIV: &[u8] = include_bytes!("testdata/es256.pem");
const ES_PUB: &[u8] = include_bytes!("testdata/es256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("testdata/eddsa.pem");
const ED_PUB: &[u8] = include_bytes!("testdata/eddsa.pub.pem");

fn secret() -> Secret {
    Secret::from("unit-test-secret-of-at-least-32-bytes")
}

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "portcullis".into(),
        audience: "portcullis-api".into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    }
}

fn clock() -> ManualClock {
    ManualClock::new(NOW)
}

fn user_tokens(ring: KeyRing, clock: &ManualClock) -> UserTokens {
    UserTokens::new(ring, policy(), UserTokenTtl::default()).with_clock(Arc::new(clock.clone()))
}

fn hs_tokens(clock: &ManualClock) -> UserTokens {
    user_tokens(KeyRing::new(SigningKey::hs256(&secret())), clock)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// Signs any header and claims with HS256 and `secret`, bypassing our minting.
fn forge_hs256(header: Value, claims: Value, secret: &[u8]) -> String {
    let msg = format!("{}.{}", b64(&header), b64(&claims));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{msg}.{sig}")
}

fn hs_kid() -> String {
    SigningKey::hs256(&secret()).kid().to_owned()
}

fn access_claims() -> Value {
    json!({
        "sub": "u1", "email": "a@example.com", "role": "user", "org_id": "acme",
        "type": "access", "sid": "s1", "jti": "j1",
        "iat": NOW, "exp": NOW + 900, "iss": "portcullis", "aud": "portcullis-api",
    })
}

/// The payload of `token`, as signed (the verified kinds keep only what callers need).
fn payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn verify_forged(header: Value, claims: Value) -> Result<AccessToken, TokenError> {
    hs_tokens(&clock()).verify_access(&forge_hs256(header, claims, secret().expose()))
}

fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT", "kid": hs_kid()})
}

fn grant<'a>(
    user: &'a crate::ids::UserId,
    org: &'a crate::ids::OrgId,
    sid: &'a crate::ids::SessionId,
) -> AccessGrant<'a> {
    AccessGrant {
        user_id: user,
        email: "a@example.com",
        role: "user",
        org_id: org,
        session_id: sid,
    }
}

fn mint_access(tokens: &UserTokens) -> String {
    let (u, o, s) = ("u1".into(), "acme".into(), "s1".into());
    tokens
        .mint_access(grant(&u, &o, &s))
        .unwrap()
        .token
        .expose()
        .to_owned()
}

#[test]
fn forged_token_with_valid_claims_is_accepted_by_the_test_helper() {
    // Guards the helpers below: a correctly signed, well-formed token passes.
    let access = verify_forged(hs_header(), access_claims()).unwrap();
    assert_eq!(access.user_id.as_str(), "u1");
}

#[test]
fn minted_access_token_round_trips_with_kid_and_claims() {
    let tokens = hs_tokens(&clock());
    let token = mint_access(&tokens);
    let (header, alg) = TokenHeader::parse(&token, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(alg, JwtAlgorithm::Hs256);
    assert_eq!(header.kid.as_deref(), Some(hs_kid().as_str()));
    let c = tokens.verify_access(&token).unwrap();
    assert_eq!(
        (c.user_id.as_str(), c.role.as_str(), c.org_id.as_str()),
        ("u1", "user", "acme")
    );
    assert_eq!(
        (c.session_id.as_str(), c.email.as_deref()),
        ("s1", Some("a@example.com"))
    );
    assert_eq!(c.expires_at, NOW + 900);
    let claims = payload(&token);
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["jti"], c.jti.as_str());
    assert_eq!(claims["exp"], NOW + 900);
    assert_eq!(claims["iat"], NOW);
}

#[test]
fn alg_none_in_every_casing_is_rejected() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!("{}.{}.", b64(&json!({"alg": alg})), b64(&access_claims()));
        assert_eq!(
            hs_tokens(&clock()).verify_access(&unsigned),
            Err(TokenError::AlgNone),
            "{alg}"
        );
        // Even with a valid HMAC attached.
        let signed = forge_hs256(json!({"alg": alg}), access_claims(), secret().expose());
        assert_eq!(
            hs_tokens(&clock()).verify_access(&signed),
            Err(TokenError::AlgNone)
        );
    }
}

#[test]
fn unknown_crit_header_is_rejected() {
    let header = json!({"alg": "HS256", "kid": hs_kid(), "crit": ["exp-ext"], "exp-ext": 1});
    assert_eq!(
        verify_forged(header, access_claims()),
        Err(TokenError::UnknownCrit)
    );
}

#[test]
fn unsupported_algorithm_is_rejected() {
    for alg in ["HS512", "hs256", "RS384", "PS256", "ES384", "foo"] {
        let header = json!({"alg": alg, "kid": hs_kid()});
        assert_eq!(
            verify_forged(header, access_claims()),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn rs256_public_key_used_as_hs256_secret_is_rejected() {
    // Algorithm confusion: an attacker signs with HS256 using the public key as the secret and
    // names the RS256 key's kid.
    let ring = KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::Rs256, RS_PRIV).unwrap());
    let kid = ring.active().kid().to_owned();
    let tokens = user_tokens(ring, &clock());
    let forged = forge_hs256(json!({"alg": "HS256", "kid": kid}), access_claims(), RS_PUB);
    assert_eq!(
        tokens.verify_access(&forged),
        Err(TokenError::AlgorithmNotAllowed)
    );
    // And without a kid (tried against the active key): same.
    let forged = forge_hs256(json!({"alg": "HS256"}), access_claims(), RS_PUB);
    assert_eq!(
        tokens.verify_access(&forged),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn eddsa_public_key_used_as_hs256_secret_is_rejected() {
    let ring = KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::EdDsa, ED_PRIV).unwrap());
    let tokens = user_tokens(ring, &clock());
    let forged = forge_hs256(json!({"alg": "HS256"}), access_claims(), ED_PUB);
    assert_eq!(
        tokens.verify_access(&forged),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn unknown_kid_is_rejected() {
    for kid in [
        "nope",
        "../../etc/passwd",
        "' OR 1=1 --",
        "a\0b",
        &"k".repeat(5_000),
    ] {
        let header = json!({"alg": "HS256", "kid": kid});
        let result = verify_forged(header, access_claims());
        assert!(
            result == Err(TokenError::UnknownKid) || result == Err(TokenError::Oversize),
            "{result:?}"
        );
    }
    let header = json!({"alg": "HS256", "kid": "nope"});
    assert_eq!(
        verify_forged(header, access_claims()),
        Err(TokenError::UnknownKid)
    );
}

#[test]
fn bad_signature_is_rejected() {
    let forged = forge_hs256(
        hs_header(),
        access_claims(),
        b"another-secret-of-at-least-32-bytes!",
    );
    assert_eq!(
        hs_tokens(&clock()).verify_access(&forged),
        Err(TokenError::BadSignature)
    );
    // A valid token whose payload was swapped.
    let tokens = hs_tokens(&clock());
    let token = mint_access(&tokens);
    let mut parts: Vec<&str> = token.split('.').collect();
    let evil = b64(&with(access_claims(), "role", json!("admin")));
    parts[1] = &evil;
    assert_eq!(
        tokens.verify_access(&parts.join(".")),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn expired_token_is_rejected_after_the_leeway_only() {
    let c = clock();
    let tokens = hs_tokens(&c);
    let token = mint_access(&tokens);
    c.advance(900 + 29);
    assert!(tokens.verify_access(&token).is_ok(), "within leeway");
    c.advance(1);
    assert_eq!(tokens.verify_access(&token), Err(TokenError::Expired));
}

#[test]
fn not_yet_valid_token_is_rejected() {
    let claims = with(access_claims(), "nbf", json!(NOW + 31));
    assert_eq!(
        verify_forged(hs_header(), claims),
        Err(TokenError::NotYetValid)
    );
    let claims = with(access_claims(), "nbf", json!(NOW + 30));
    assert!(verify_forged(hs_header(), claims).is_ok(), "within leeway");
}

#[test]
fn token_issued_in_the_future_is_rejected() {
    let claims = with(access_claims(), "iat", json!(NOW + 31));
    assert_eq!(
        verify_forged(hs_header(), claims),
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn wrong_issuer_is_rejected() {
    let claims = with(access_claims(), "iss", json!("evil"));
    assert_eq!(
        verify_forged(hs_header(), claims),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn wrong_audience_is_rejected_and_audience_arrays_work() {
    let claims = with(access_claims(), "aud", json!("other-api"));
    assert_eq!(
        verify_forged(hs_header(), claims),
        Err(TokenError::WrongAudience)
    );
    let claims = with(access_claims(), "aud", json!(["x", "portcullis-api"]));
    assert!(verify_forged(hs_header(), claims).is_ok());
    let claims = with(access_claims(), "aud", json!(["x", "y"]));
    assert_eq!(
        verify_forged(hs_header(), claims),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn missing_required_claims_are_named() {
    for claim in [
        "exp", "iss", "aud", "type", "sub", "sid", "jti", "role", "org_id",
    ] {
        let claims = without(access_claims(), claim);
        assert_eq!(
            verify_forged(hs_header(), claims),
            Err(TokenError::MissingClaim(claim)),
            "{claim}"
        );
    }
}

#[test]
fn wrong_typed_and_absurd_times_are_malformed_not_panics() {
    for exp in [
        json!("soon"),
        json!(-1),
        json!(null),
        json!(1e300),
        json!([1]),
        json!(true),
    ] {
        let claims = with(access_claims(), "exp", exp.clone());
        let result = verify_forged(hs_header(), claims);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed | TokenError::MissingClaim("exp"))
            ),
            "{exp}: {result:?}"
        );
    }
    // The far future is a valid, if silly, expiry; u64::MAX must not overflow.
    let claims = with(access_claims(), "exp", json!(u64::MAX));
    assert!(verify_forged(hs_header(), claims).is_ok());
    let claims = with(access_claims(), "exp", json!((NOW + 60) as f64 + 0.5));
    assert!(
        verify_forged(hs_header(), claims).is_ok(),
        "fractional NumericDate"
    );
}

#[test]
fn refresh_token_used_as_access_token_is_wrong_type_and_the_reverse() {
    let tokens = hs_tokens(&clock());
    let (u, s) = ("u1".into(), "s1".into());
    let refresh = tokens.mint_refresh(&u, &s, false).unwrap();
    assert_eq!(
        tokens.verify_access(refresh.token.expose()),
        Err(TokenError::WrongType)
    );
    let access = mint_access(&tokens);
    assert_eq!(tokens.verify_refresh(&access), Err(TokenError::WrongType));
    let claims = tokens.verify_refresh(refresh.token.expose()).unwrap();
    assert!(!claims.remember_me);
    assert_eq!(refresh.expires_in, 7 * 86_400);
    let remembered = tokens.mint_refresh(&u, &s, true).unwrap();
    assert_eq!(remembered.expires_in, 30 * 86_400);
    assert!(
        tokens
            .verify_refresh(remembered.token.expose())
            .unwrap()
            .remember_me
    );
}

#[test]
fn user_token_is_never_an_agent_token_and_the_reverse() {
    let c = clock();
    let agent_policy = TokenPolicy {
        audience: "portcullis-agents".into(),
        ..policy()
    };
    let agent_secret = Secret::from("agent-secret-of-at-least-32-bytes!!!");
    let agents = AgentTokens::new(
        KeyRing::new(SigningKey::hs256(&agent_secret)),
        agent_policy.clone(),
        172_800,
    )
    .with_clock(Arc::new(c.clone()));
    let users = hs_tokens(&c);
    let (a, o, r) = ("agent-1".into(), "acme".into(), "run-1".into());
    let run = agents
        .mint(AgentGrant {
            agent_id: &a,
            company_id: &o,
            adapter_type: "process",
            run_id: &r,
        })
        .unwrap();
    assert_eq!(run.expires_in, 172_800);
    // Different keys: the agent token's kid is unknown to the user ring, and the reverse.
    assert_eq!(
        users.verify_access(run.token.expose()),
        Err(TokenError::UnknownKid)
    );
    assert_eq!(
        agents.verify(&mint_access(&users)),
        Err(TokenError::UnknownKid)
    );
    // Even if both families shared a secret (misconfiguration), an access token's header
    // names its kind (`at+jwt`), the audience keeps them apart…
    let shared = AgentTokens::new(KeyRing::new(SigningKey::hs256(&secret())), agent_policy, 60)
        .with_clock(Arc::new(c.clone()));
    assert_eq!(
        shared.verify(&mint_access(&users)),
        Err(TokenError::WrongType)
    );
    let untyped_access = forge_hs256(hs_header(), access_claims(), secret().expose());
    assert_eq!(
        shared.verify(&untyped_access),
        Err(TokenError::WrongAudience)
    );
    let agent_on_user_secret = shared
        .mint(AgentGrant {
            agent_id: &a,
            company_id: &o,
            adapter_type: "process",
            run_id: &r,
        })
        .unwrap();
    assert_eq!(
        users.verify_access(agent_on_user_secret.token.expose()),
        Err(TokenError::WrongAudience)
    );
    // …and if they shared the audience too, the `type` claim still does.
    let same_everything =
        AgentTokens::new(KeyRing::new(SigningKey::hs256(&secret())), policy(), 60)
            .with_clock(Arc::new(c.clone()));
    assert_eq!(
        same_everything.verify(&mint_access(&users)),
        Err(TokenError::WrongType)
    );
    let agent_token = same_everything
        .mint(AgentGrant {
            agent_id: &a,
            company_id: &o,
            adapter_type: "process",
            run_id: &r,
        })
        .unwrap();
    assert_eq!(
        users.verify_access(agent_token.token.expose()),
        Err(TokenError::MissingClaim("type"))
    );
    let claims = agents.verify(run.token.expose()).unwrap();
    assert_eq!(claims.company_id.as_str(), "acme");
    assert_eq!(claims.run_id.as_str(), "run-1");
}

#[test]
fn oversize_token_is_rejected_before_parsing() {
    let huge = "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
    assert_eq!(
        hs_tokens(&clock()).verify_access(&huge),
        Err(TokenError::Oversize)
    );
    let big_header = json!({"alg": "HS256", "pad": "x".repeat(2_000)});
    assert_eq!(
        verify_forged(big_header, access_claims()),
        Err(TokenError::Oversize)
    );
}

#[test]
fn malformed_tokens_are_rejected() {
    let tokens = hs_tokens(&clock());
    let good = mint_access(&tokens);
    let (h, rest) = good.split_once('.').unwrap();
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "not-base64!.x.y",
        &format!("{}.{rest}", URL_SAFE_NO_PAD.encode("not json")),
        &format!("{h}.%%%.sig"),
        &format!("{h}.{}.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
    ] {
        let result = tokens.verify_access(bad);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed | TokenError::BadSignature)
            ),
            "{bad}: {result:?}"
        );
    }
    assert_eq!(tokens.verify_access("a.b"), Err(TokenError::Malformed));
}

#[test]
fn every_algorithm_round_trips_and_rejects_the_others_keys() {
    let c = clock();
    let rings = [
        KeyRing::new(SigningKey::hs256(&secret())),
        KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::Rs256, RS_PRIV).unwrap()),
        KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::Es256, ES_PRIV).unwrap()),
        KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::EdDsa, ED_PRIV).unwrap()),
    ];
    let tokens: Vec<_> = rings.iter().map(|r| user_tokens(r.clone(), &c)).collect();
    for (i, t) in tokens.iter().enumerate() {
        let token = mint_access(t);
        assert!(
            t.verify_access(&token).is_ok(),
            "{:?}",
            t.key_ring().active()
        );
        for (j, other) in tokens.iter().enumerate() {
            if i != j {
                assert_eq!(other.verify_access(&token), Err(TokenError::UnknownKid));
            }
        }
    }
}

#[test]
fn public_pem_verifies_what_the_private_pem_signs() {
    let c = clock();
    for (alg, private, public) in [
        (JwtAlgorithm::Rs256, RS_PRIV, RS_PUB),
        (JwtAlgorithm::Es256, ES_PRIV, ES_PUB),
        (JwtAlgorithm::EdDsa, ED_PRIV, ED_PUB),
    ] {
        let signer = user_tokens(
            KeyRing::new(SigningKey::from_private_pem(alg, private).unwrap()),
            &c,
        );
        let public = VerifyingKey::from_public_pem(alg, public).unwrap();
        assert_eq!(
            public.kid(),
            signer.key_ring().active().kid(),
            "thumbprint kid is stable"
        );
        // A ring whose active key is something else but which holds the public key as previous.
        let verifier = user_tokens(
            KeyRing::new(SigningKey::hs256(&secret()))
                .with_previous(public)
                .unwrap(),
            &c,
        );
        assert!(
            verifier.verify_access(&mint_access(&signer)).is_ok(),
            "{alg}"
        );
    }
    assert_eq!(
        SigningKey::from_private_pem(JwtAlgorithm::Rs256, ES_PRIV).unwrap_err(),
        KeyError::InvalidKey(JwtAlgorithm::Rs256, "InvalidKeyFormat".into())
    );
}

#[test]
fn access_tokens_are_typed_at_jwt_and_refresh_tokens_have_their_own_audience() {
    let tokens = hs_tokens(&clock());
    let access = mint_access(&tokens);
    let (header, _) = TokenHeader::parse(&access, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let ring = tokens.key_ring();
    let segment = access.split('.').next().unwrap();
    assert!(
        matches!(
            ring.by_header_segment_typed(segment),
            Some((_, ExplicitTyp::Access))
        ),
        "the fast path knows our access header"
    );
    let (u, s) = ("u1".into(), "s1".into());
    let refresh = tokens.mint_refresh(&u, &s, false).unwrap();
    let refresh = refresh.token.expose();
    let (header, _) = TokenHeader::parse(refresh, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(
        ring.by_header_segment(refresh.split('.').next().unwrap())
            .is_some()
    );
    let claims = tokens.verify_refresh(refresh).unwrap();
    assert_eq!(
        (claims.user_id.as_str(), claims.session_id.as_str()),
        ("u1", "s1")
    );
    assert_eq!(payload(refresh)["aud"], "portcullis-api:refresh");
    // A refresh token bearing the access audience (as minted before) is refused.
    let refresh_claims = json!({
        "sub": "u1", "type": "refresh", "sid": "s1", "jti": "j2", "rmb": false,
        "iat": NOW, "exp": NOW + 900, "iss": "portcullis", "aud": "portcullis-api",
    });
    let old_refresh = forge_hs256(hs_header(), refresh_claims.clone(), secret().expose());
    assert_eq!(
        tokens.verify_refresh(&old_refresh),
        Err(TokenError::WrongType)
    );
    let elsewhere = with(refresh_claims, "aud", json!("other-api:refresh"));
    let elsewhere = forge_hs256(hs_header(), elsewhere, secret().expose());
    assert_eq!(
        tokens.verify_refresh(&elsewhere),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn typ_is_optional_but_a_typ_naming_another_kind_is_wrong_type() {
    let header = |typ: Value| json!({"alg": "HS256", "kid": hs_kid(), "typ": typ});
    // Not required: untyped, generic and RFC 9068 spellings all pass the access family.
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt"),
        json!("application/AT+JWT"),
    ] {
        assert!(
            verify_forged(header(typ.clone()), access_claims()).is_ok(),
            "{typ}"
        );
    }
    let untyped = json!({"alg": "HS256", "kid": hs_kid()});
    assert!(verify_forged(untyped, access_claims()).is_ok());
    // Another explicit kind is never an access token.
    for typ in ["logout+jwt", "application/secevent+jwt", "rt+jwt"] {
        assert_eq!(
            verify_forged(header(json!(typ)), access_claims()),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    // And a header that says access token is no refresh token.
    let tokens = hs_tokens(&clock());
    let refresh = json!({
        "sub": "u1", "type": "refresh", "sid": "s1", "jti": "j2",
        "iat": NOW, "exp": NOW + 900, "iss": "portcullis", "aud": "portcullis-api:refresh",
    });
    let typed = forge_hs256(header(json!("at+jwt")), refresh.clone(), secret().expose());
    assert_eq!(tokens.verify_refresh(&typed), Err(TokenError::WrongType));
    let generic = forge_hs256(header(json!("JWT")), refresh, secret().expose());
    assert!(tokens.verify_refresh(&generic).is_ok());
}

#[test]
fn agent_token_without_jti_and_with_extra_claims_verifies() {
    let agent_secret = Secret::from("agent-secret-of-at-least-32-bytes!!!");
    let agents = AgentTokens::new(
        KeyRing::new(SigningKey::hs256(&agent_secret)),
        TokenPolicy {
            audience: "portcullis-agents".into(),
            ..policy()
        },
        172_800,
    )
    .with_clock(Arc::new(clock()));
    // The shape of Paperclip's createLocalAgentJwt: no kid, no jti, extra claims.
    let claims = json!({
        "sub": "agent-1", "company_id": "acme", "adapter_type": "claude_local",
        "run_id": "run-1", "responsible_user_id": null, "key_scope": {"kind": "limited"},
        "iat": NOW, "exp": NOW + 3600, "iss": "portcullis", "aud": "portcullis-agents",
        "instance_id": "default",
    });
    let token = forge_hs256(
        json!({"alg": "HS256", "typ": "JWT"}),
        claims.clone(),
        agent_secret.expose(),
    );
    let verified = agents.verify(&token).unwrap();
    assert_eq!(verified.jti, None);
    assert_eq!(verified.run_id.as_str(), "run-1");
    for required in ["sub", "company_id", "run_id", "exp"] {
        let token = forge_hs256(
            json!({"alg": "HS256", "typ": "JWT"}),
            without(claims.clone(), required),
            agent_secret.expose(),
        );
        assert_eq!(
            agents.verify(&token),
            Err(TokenError::MissingClaim(required)),
            "{required}"
        );
    }
}

#[test]
fn private_keys_load_in_every_pem_form_openssl_writes() {
    let c = clock();
    for (alg, pkcs8, other_form) in [
        (
            JwtAlgorithm::Es256,
            ES_PRIV,
            &include_bytes!("testdata/es256.sec1.pem")[..],
        ),
        (
            JwtAlgorithm::Rs256,
            RS_PRIV,
            &include_bytes!("testdata/rs256.pkcs1.pem")[..],
        ),
    ] {
        let a = SigningKey::from_private_pem(alg, pkcs8).unwrap();
        let b =
            SigningKey::from_private_pem(alg, other_form).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(
            a.kid(),
            b.kid(),
            "{alg}: one key, one kid, whatever the encoding"
        );
        // What the second form signs, the first form's public half verifies.
        let signer = user_tokens(KeyRing::new(b), &c);
        let verifier = user_tokens(KeyRing::new(a), &c);
        assert!(
            verifier.verify_access(&mint_access(&signer)).is_ok(),
            "{alg}"
        );
    }
    // `openssl ecparam -genkey` without -noout: EC PARAMETERS, then the key.
    let params = include_bytes!("testdata/es256.params.pem");
    let key = SigningKey::from_private_pem(JwtAlgorithm::Es256, params).unwrap();
    let tokens = user_tokens(KeyRing::new(key), &c);
    assert!(tokens.verify_access(&mint_access(&tokens)).is_ok());
}

#[test]
fn unusable_private_pems_are_clear_errors_that_never_quote_the_key() {
    let sec1 = include_bytes!("testdata/es256.sec1.pem");
    let pkcs1 = include_bytes!("testdata/rs256.pkcs1.pem");
    let encrypted =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let two = [ES_PRIV, ES_PRIV].concat();
    let p384 = include_bytes!("testdata/p384.sec1.pem");
    for (alg, pem, expected) in [
        (JwtAlgorithm::Rs256, &sec1[..], "does not hold a RS256 key"),
        (JwtAlgorithm::Es256, &pkcs1[..], "does not hold a ES256 key"),
        (JwtAlgorithm::EdDsa, &sec1[..], "does not hold a EdDSA key"),
        (JwtAlgorithm::Es256, &encrypted[..], "encrypted"),
        (JwtAlgorithm::Es256, &two[..], "more than one private key"),
        (JwtAlgorithm::Es256, ES_PUB, "no PRIVATE KEY block"),
        (
            JwtAlgorithm::Es256,
            b"not pem at all",
            "no PRIVATE KEY block",
        ),
        (JwtAlgorithm::Es256, &p384[..], "not a valid P-256"),
    ] {
        let err = SigningKey::from_private_pem(alg, pem).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(expected), "{alg}: {shown}");
        assert!(!shown.contains("MIG"), "{shown}");
    }
    assert_eq!(
        SigningKey::from_private_pem(JwtAlgorithm::Hs256, ES_PRIV).unwrap_err(),
        KeyError::NotPem
    );
}

#[test]
fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
    let c = clock();
    let old_secret = Secret::from("the-old-secret-of-at-least-32-bytes!!");
    let old = user_tokens(KeyRing::new(SigningKey::hs256(&old_secret)), &c);
    let old_token = mint_access(&old);
    let rotated = user_tokens(
        KeyRing::new(SigningKey::hs256(&secret()))
            .with_previous(VerifyingKey::hs256(&old_secret))
            .unwrap(),
        &c,
    );
    assert!(rotated.verify_access(&old_token).is_ok());
    let new_token = mint_access(&rotated);
    assert_eq!(old.verify_access(&new_token), Err(TokenError::UnknownKid));
    // Dropped from the ring: refused.
    assert_eq!(
        hs_tokens(&c).verify_access(&old_token),
        Err(TokenError::UnknownKid)
    );
    // A token without kid is tried against the active key only.
    let no_kid = forge_hs256(
        json!({"alg": "HS256"}),
        access_claims(),
        old_secret.expose(),
    );
    assert_eq!(
        rotated.verify_access(&no_kid),
        Err(TokenError::BadSignature)
    );
    let no_kid = forge_hs256(json!({"alg": "HS256"}), access_claims(), secret().expose());
    assert!(rotated.verify_access(&no_kid).is_ok());
}

#[test]
fn duplicate_kid_in_ring_is_refused() {
    let err = KeyRing::new(SigningKey::hs256(&secret()))
        .with_previous(VerifyingKey::hs256(&secret()))
        .unwrap_err();
    assert_eq!(err, KeyError::DuplicateKid(hs_kid()));
}

#[test]
fn jwks_publishes_public_keys_only() {
    let ring = KeyRing::new(SigningKey::from_private_pem(JwtAlgorithm::Es256, ES_PRIV).unwrap())
        .with_previous(VerifyingKey::from_public_pem(JwtAlgorithm::Rs256, RS_PUB).unwrap())
        .unwrap()
        .with_previous(VerifyingKey::hs256(&secret()))
        .unwrap();
    let jwks = serde_json::to_value(ring.jwks()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the HS256 secret is never published");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["kid"], ring.active().kid());
    assert_eq!(keys[1]["kty"], "RSA");
    assert!(
        keys.iter()
            .all(|k| k.get("d").is_none() && k.get("k").is_none())
    );
    assert!(
        KeyRing::new(SigningKey::hs256(&secret()))
            .jwks()
            .keys
            .is_empty()
    );
}

#[test]
fn keys_and_minted_tokens_never_show_secrets_in_debug() {
    let key = SigningKey::hs256(&secret());
    let shown = format!("{key:?} {:?}", KeyRing::new(key.clone()));
    assert!(!shown.contains("unit-test-secret"), "{shown}");
    let minted = hs_tokens(&clock());
    let (u, o, s) = ("u1".into(), "acme".into(), "s1".into());
    let m = minted.mint_access(grant(&u, &o, &s)).unwrap();
    assert!(!format!("{m:?}").contains(m.token.expose()));
}

#[test]
fn hs256_signatures_are_what_jsonwebtoken_makes_and_checks() {
    // HS256 signs with the key's pre-keyed MAC, not jsonwebtoken: the bytes must not change.
    let tokens = hs_tokens(&clock());
    let token = mint_access(&tokens);
    let (message, signature) = token.rsplit_once('.').unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(secret().expose());
    let alg = jsonwebtoken::Algorithm::HS256;
    assert!(jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg).unwrap());
    let theirs = jsonwebtoken::EncodingKey::from_secret(secret().expose());
    assert_eq!(
        jsonwebtoken::crypto::sign(message.as_bytes(), &theirs, alg).unwrap(),
        signature
    );
}

#[test]
fn a_keys_algorithm_is_its_material() {
    let hs = SigningKey::hs256(&secret());
    assert_eq!(hs.algorithm(), JwtAlgorithm::Hs256);
    assert_eq!(hs.verifying_key().algorithm(), JwtAlgorithm::Hs256);
    assert!(hs.verifying_key().material().public_key().is_none());
    for (alg, private, public) in [
        (JwtAlgorithm::Rs256, RS_PRIV, RS_PUB),
        (JwtAlgorithm::Es256, ES_PRIV, ES_PUB),
        (JwtAlgorithm::EdDsa, ED_PRIV, ED_PUB),
    ] {
        let signing = SigningKey::from_private_pem(alg, private).unwrap();
        assert_eq!(signing.algorithm(), alg);
        assert_eq!(signing.verifying_key().algorithm(), alg);
        let verifying = VerifyingKey::from_public_pem(alg, public).unwrap();
        assert_eq!(verifying.algorithm(), alg);
        let renamed = verifying.with_kid("renamed");
        let jwk = &renamed.material().public_key().unwrap().jwk;
        assert_eq!(jwk.common.key_id.as_deref(), Some("renamed"), "{alg}");
    }
    assert_eq!(
        VerifyingKey::from_public_pem(JwtAlgorithm::Hs256, RS_PUB).unwrap_err(),
        KeyError::NotPem
    );
}

/// A user family on `secret()` and an agent family on its own secret and audience.
fn families(c: &ManualClock) -> TokenFamilies {
    let agents = AgentTokens::new(
        KeyRing::new(SigningKey::hs256(&agent_secret())),
        TokenPolicy {
            audience: "portcullis-agents".into(),
            ..policy()
        },
        3600,
    )
    .with_clock(Arc::new(c.clone()));
    TokenFamilies::new(hs_tokens(c), agents)
}

fn agent_secret() -> Secret {
    Secret::from("agent-secret-of-at-least-32-bytes!!!")
}

fn agent_claims() -> Value {
    json!({
        "sub": "agent-1", "company_id": "acme", "run_id": "run-1", "jti": "j9",
        "iat": NOW, "exp": NOW + 3600, "iss": "portcullis", "aud": "portcullis-agents",
    })
}

fn mint_run(families: &TokenFamilies) -> String {
    let (a, o, r) = ("agent-1".into(), "acme".into(), "run-1".into());
    let grant = AgentGrant {
        agent_id: &a,
        company_id: &o,
        adapter_type: "process",
        run_id: &r,
    };
    families
        .agents()
        .mint(grant)
        .unwrap()
        .token
        .expose()
        .to_owned()
}

#[test]
fn families_route_our_own_headers_by_their_bytes() {
    let c = clock();
    let families = families(&c);
    let access = mint_access(families.users());
    let Ok(VerifiedToken::User(user)) = families.verify(&access, Carrier::Bearer) else {
        panic!("an access token is the user family's");
    };
    assert_eq!(
        (user.user_id.as_str(), user.jti.as_str().is_empty()),
        ("u1", false)
    );
    assert!(matches!(
        families.verify(&access, Carrier::Cookie),
        Ok(VerifiedToken::User(_))
    ));
    let run = mint_run(&families);
    let Ok(VerifiedToken::Agent(agent)) = families.verify(&run, Carrier::Bearer) else {
        panic!("a run token is the agent family's");
    };
    assert_eq!(
        (agent.agent_id.as_str(), agent.company_id.as_str()),
        ("agent-1", "acme")
    );
    assert_eq!(agent.adapter_type.as_deref(), Some("process"));
    assert!(agent.jti.is_some(), "we mint run tokens with a jti");
    assert_eq!(agent.expires_at, NOW + 3600);
    // Cookies carry user tokens only: the run token meets the user family's keys.
    assert_eq!(
        families.verify(&run, Carrier::Cookie),
        Err(TokenError::UnknownKid)
    );
    // A refresh token is the user family's, and not an access token.
    let (u, s) = ("u1".into(), "s1".into());
    let refresh = families.users().mint_refresh(&u, &s, false).unwrap();
    assert_eq!(
        families.verify(refresh.token.expose(), Carrier::Bearer),
        Err(TokenError::WrongType)
    );
}

#[test]
fn families_route_other_headers_by_kid_then_by_the_payloads_type() {
    let c = clock();
    let families = families(&c);
    let agent_kid = SigningKey::hs256(&agent_secret()).kid().to_owned();
    // A kid only the agent ring knows: the agent family.
    let by_kid = forge_hs256(
        json!({"alg": "HS256", "kid": agent_kid}),
        agent_claims(),
        agent_secret().expose(),
    );
    assert!(matches!(
        families.verify(&by_kid, Carrier::Bearer),
        Ok(VerifiedToken::Agent(_))
    ));
    // A kid the user ring knows: the user family.
    let user_kid = forge_hs256(hs_header(), access_claims(), secret().expose());
    assert!(matches!(
        families.verify(&user_kid, Carrier::Bearer),
        Ok(VerifiedToken::User(_))
    ));
    // A kid neither knows: the user family, which refuses it.
    let stranger = forge_hs256(
        json!({"alg": "HS256", "kid": "nope"}),
        agent_claims(),
        agent_secret().expose(),
    );
    assert_eq!(
        families.verify(&stranger, Carrier::Bearer),
        Err(TokenError::UnknownKid)
    );
    // No kid: a payload without `type` is a run token (Paperclip's shape), one with it a user's.
    let no_kid = json!({"alg": "HS256", "typ": "JWT"});
    let run = forge_hs256(no_kid.clone(), agent_claims(), agent_secret().expose());
    let Ok(VerifiedToken::Agent(agent)) = families.verify(&run, Carrier::Bearer) else {
        panic!("a kid-less token without `type` is the agent family's");
    };
    assert_eq!(agent.jti.as_ref().map(|j| j.as_str()), Some("j9"));
    let access = forge_hs256(no_kid.clone(), access_claims(), secret().expose());
    assert!(matches!(
        families.verify(&access, Carrier::Bearer),
        Ok(VerifiedToken::User(_))
    ));
    // A run token signed with the user secret but without `type` goes to the agent family,
    // whose key does not match.
    let misrouted = forge_hs256(no_kid, agent_claims(), secret().expose());
    assert_eq!(
        families.verify(&misrouted, Carrier::Bearer),
        Err(TokenError::BadSignature)
    );
    // And as a cookie, the same token meets the user family: no `type`.
    let cookie = forge_hs256(json!({"alg": "HS256"}), agent_claims(), secret().expose());
    assert_eq!(
        families.verify(&cookie, Carrier::Cookie),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn families_screen_the_header_once_with_the_same_errors() {
    let c = clock();
    let families = families(&c);
    for carrier in [Carrier::Bearer, Carrier::Cookie] {
        let unsigned = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&agent_claims()));
        assert_eq!(
            families.verify(&unsigned, carrier),
            Err(TokenError::AlgNone)
        );
        let crit = json!({"alg": "HS256", "crit": ["x"]});
        let crit = forge_hs256(crit, agent_claims(), agent_secret().expose());
        assert_eq!(
            families.verify(&crit, carrier),
            Err(TokenError::UnknownCrit)
        );
        assert_eq!(families.verify("a.b", carrier), Err(TokenError::Malformed));
        let huge = "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
        assert_eq!(families.verify(&huge, carrier), Err(TokenError::Oversize));
        let rs = json!({"alg": "RS256"});
        let rs = forge_hs256(rs, access_claims(), secret().expose());
        assert_eq!(
            families.verify(&rs, carrier),
            Err(TokenError::AlgorithmNotAllowed)
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = hs_tokens(&clock()).verify_access(&s);
        }

        #[test]
        fn verify_never_panics_on_three_part_garbage(a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,100}") {
            let _ = hs_tokens(&clock()).verify_access(&format!("{a}.{b}.{c}"));
        }

        #[test]
        fn huge_and_non_ascii_tokens_are_errors(n in 1usize..100_000, ch in any::<char>()) {
            let s: String = std::iter::repeat_n(ch, n).collect();
            prop_assert!(hs_tokens(&clock()).verify_access(&s).is_err());
        }
    }
}
