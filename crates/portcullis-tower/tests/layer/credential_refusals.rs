//! 401 `token_expired`, `token_revoked`, `wrong_token_type`, the API-key refusals and
//! `invalid_credentials`.

use super::*;

// ---------------------------------------------------------------------------------------------
// 401 token_expired, token_revoked, wrong_token_type
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_access_token_past_exp_and_the_leeway_is_token_expired() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let r = fx.get_with_bearer(&token).await;
    assert_401(&r, "token_expired");
    fx.clock.advance(3600);
    let r = fx.get_private(&[("cookie", &access_cookie(&token))]).await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn an_agent_token_past_exp_and_the_leeway_is_token_expired() {
    let fx = Fx::with_config(config().agent_ttl_secs(60));
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let h = bearer(run.token.expose());
    fx.clock.advance(60 + LEEWAY - 1);
    assert_actor(
        &fx.get_private(&[("authorization", &h)]).await,
        "agent",
        Some("agent-7"),
        Some("jwt"),
    );
    fx.clock.advance(2);
    let r = fx.get_private(&[("authorization", &h)]).await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn a_revoked_session_is_token_revoked() {
    let fx = Fx::new();
    let (sid, token) = fx.login("u-alice").await;
    let h = bearer(&token);
    assert_actor(
        &fx.get_private(&[("authorization", &h)]).await,
        "user",
        Some("u-alice"),
        Some("jwt"),
    );
    assert!(fx.auth.revoke_session(&sid).await.unwrap());
    assert_401(
        &fx.get_private(&[("authorization", &h)]).await,
        "token_revoked",
    );
    assert_401(
        &fx.get_private(&[("cookie", &access_cookie(&token))]).await,
        "token_revoked",
    );
}

#[tokio::test]
async fn all_sessions_of_a_user_revoked_is_token_revoked() {
    let fx = Fx::new();
    let (_, one) = fx.login("u-alice").await;
    let (_, two) = fx.login("u-alice").await;
    // (The count it returns is not checked: the memory store counts "live" by the system
    // clock, and these sessions live on the manual clock, years ago.)
    fx.auth
        .revoke_user_sessions(&UserId::from("u-alice"))
        .await
        .unwrap();
    for token in [one, two] {
        let r = fx.get_with_bearer(&token).await;
        assert_401(&r, "token_revoked");
    }
}

#[tokio::test]
async fn a_denied_jti_is_token_revoked() {
    let fx = Fx::new();
    let sid = fx.session("u-alice").await;
    let minted = fx.access("u-alice", &sid);
    let other = fx.access("u-alice", &sid);
    fx.auth
        .deny_token(&minted.jti, minted.expires_at)
        .await
        .unwrap();
    let r = fx.get_with_bearer(minted.token.expose()).await;
    assert_401(&r, "token_revoked");
    // Only that token: another of the same session still works.
    let r = fx.get_with_bearer(other.token.expose()).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn an_unknown_or_deleted_session_is_token_revoked() {
    let fx = Fx::new();
    // A session id that was never stored (or was deleted): the sid names nothing.
    let minted = fx.access("u-alice", &SessionId::random());
    let r = fx.get_with_bearer(minted.token.expose()).await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn an_expired_session_is_token_revoked_even_with_a_fresh_token() {
    let fx = Fx::new();
    let sid = fx.session_lasting("u-alice", 60).await;
    fx.clock.advance(60);
    // The token is minted now, so it is fresh; its session is not.
    let minted = fx.access("u-alice", &sid);
    let r = fx.get_with_bearer(minted.token.expose()).await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_token_naming_another_users_session_is_token_revoked() {
    let fx = Fx::new();
    let bobs_session = fx.session("u-bob").await;
    let minted = fx.access("u-alice", &bobs_session);
    let r = fx.get_with_bearer(minted.token.expose()).await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_denied_agent_run_token_is_token_revoked() {
    let fx = Fx::new();
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    fx.auth.deny_token(&run.jti, run.expires_at).await.unwrap();
    let r = fx.get_with_bearer(run.token.expose()).await;
    assert_401(&r, "token_revoked");
}

#[tokio::test]
async fn a_refresh_token_as_bearer_or_cookie_is_wrong_token_type() {
    let fx = Fx::new();
    let sid = fx.session("u-alice").await;
    let refresh = fx
        .auth
        .user_tokens()
        .mint_refresh(&UserId::from("u-alice"), &sid, false)
        .unwrap();
    let refresh = refresh.token.expose();
    let r = fx.get_with_bearer(refresh).await;
    assert_401(&r, "wrong_token_type");
    assert_no_leak(&r, &[refresh]);
    let r = fx.get_private(&[("cookie", &access_cookie(refresh))]).await;
    assert_401(&r, "wrong_token_type");
}

// ---------------------------------------------------------------------------------------------
// 401 for API keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_api_key_is_invalid_api_key() {
    let fx = Fx::new();
    // Well formed, right checksum, never stored.
    let stranger = api_key::generate(&ApiKeyPrefix::default());
    let key = stranger.key.expose();
    for r in fx.get_with_key_both_ways(key).await {
        assert_401(&r, "invalid_api_key");
        assert_no_leak(&r, &[key]);
    }
}

#[tokio::test]
async fn an_api_key_with_a_bad_checksum_or_shape_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let mut typo = key.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let truncated = key[..key.len() - 1].to_owned();
    let recased = format!("ck_{}", key[3..].to_ascii_uppercase());
    let dashed = format!("{}-{}", &key[..10], &key[11..]);
    for bad in [
        typo.as_str(),
        &truncated,
        &recased,
        &dashed,
        "ck_short",
        "ck_",
    ] {
        if bad == key {
            continue;
        }
        for r in fx.get_with_key_both_ways(bad).await {
            assert_401(&r, "invalid_api_key");
        }
    }
    // Anything in X-API-Key is an API key, whatever it looks like.
    let (_, jwt) = fx.login("u-alice").await;
    for not_a_key in [jwt.as_str(), "zz_abc", "hello"] {
        let r = fx.get_with_api_key(not_a_key).await;
        assert_401(&r, "invalid_api_key");
    }
}

#[tokio::test]
async fn api_keys_disabled_by_config_refuse_even_valid_keys() {
    let fx = Fx::with_config(config().api_keys_enabled(false));
    let (key, _) = fx.user_key("u-alice").await;
    for r in fx.get_with_key_both_ways(&key).await {
        assert_401(&r, "invalid_api_key");
    }
    // JWTs still work.
    let (_, token) = fx.login("u-alice").await;
    let r = fx.get_with_bearer(&token).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_deleted_api_key_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    assert_api_key_actor(&fx.get_with_api_key(&key).await, id.as_str());
    assert!(fx.auth.delete_api_key(&id).await.unwrap());
    assert_401(&fx.get_with_api_key(&key).await, "invalid_api_key");
}

#[tokio::test]
async fn an_expired_api_key_is_api_key_expired() {
    let fx = Fx::new();
    let (key, id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.expires_at = Some(T0 + 60);
        })
        .await;
    fx.clock.advance(59);
    assert_api_key_actor(&fx.get_with_api_key(&key).await, id.as_str());
    fx.clock.advance(1);
    for r in fx.get_with_key_both_ways(&key).await {
        assert_401(&r, "api_key_expired");
    }
}

#[tokio::test]
async fn a_disabled_api_key_is_api_key_disabled() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    assert!(fx.auth.set_api_key_enabled(&id, false).await.unwrap());
    for r in fx.get_with_key_both_ways(&key).await {
        assert_401(&r, "api_key_disabled");
    }
    assert!(fx.auth.set_api_key_enabled(&id, true).await.unwrap());
    assert_api_key_actor(&fx.get_with_api_key(&key).await, id.as_str());
}

#[tokio::test]
async fn disabled_beats_expired() {
    let fx = Fx::new();
    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.enabled = false;
            r.expires_at = Some(T0);
        })
        .await;
    assert_401(&fx.get_with_api_key(&key).await, "api_key_disabled");
}

#[tokio::test]
async fn a_terminated_agents_run_token_and_api_key_are_agent_terminated() {
    let fx = Fx::new();
    let agent = fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let (key, _) = fx.key_with(KeyOwner::Agent(agent.clone()), |_| {}).await;
    assert!(fx.auth.terminate_agent(&agent).await.unwrap());
    for r in [
        fx.get_with_bearer(run.token.expose()).await,
        fx.get_with_api_key(&key).await,
        fx.get_with_bearer(&key).await,
    ] {
        assert_401(&r, "agent_terminated");
    }
}

#[tokio::test]
async fn an_api_key_owned_by_an_unknown_agent_is_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx
        .key_with(KeyOwner::Agent(AgentId::from("agent-ghost")), |_| {})
        .await;
    assert_401(&fx.get_with_api_key(&key).await, "invalid_api_key");
}

// ---------------------------------------------------------------------------------------------
// 401 invalid_credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn basic_and_other_authorization_schemes_are_invalid_credentials() {
    let fx = Fx::new();
    for value in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"u\"",
        "Token abc",
        "Negotiate YIIB",
    ] {
        let r = fx.get_private(&[("authorization", value)]).await;
        assert_401(&r, "invalid_credentials");
        assert_no_leak(&r, &["dXNlcjpwYXNz"]);
    }
}

#[tokio::test]
async fn two_valid_credentials_of_different_actors_are_invalid_credentials() {
    let fx = Fx::new();
    let (alices_key, _) = fx.user_key("u-alice").await;
    let (_, bobs_token) = fx.login("u-bob").await;
    let r = fx
        .get_private(&[
            ("x-api-key", &alices_key),
            ("authorization", &bearer(&bobs_token)),
        ])
        .await;
    assert_401(&r, "invalid_credentials");

    // Bearer and cookie of two different users.
    let (_, alices_token) = fx.login("u-alice").await;
    let r = fx
        .get_private(&[
            ("authorization", &bearer(&alices_token)),
            ("cookie", &access_cookie(&bobs_token)),
        ])
        .await;
    assert_401(&r, "invalid_credentials");

    // Two different keys, and a user key with an agent token.
    let (bobs_key, _) = fx.user_key("u-bob").await;
    let r = fx
        .get_private(&[
            ("x-api-key", &alices_key),
            ("authorization", &bearer(&bobs_key)),
        ])
        .await;
    assert_401(&r, "invalid_credentials");
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    let r = fx
        .get_private(&[
            ("x-api-key", &alices_key),
            ("authorization", &bearer(run.token.expose())),
        ])
        .await;
    assert_401(&r, "invalid_credentials");
}

#[tokio::test]
async fn any_bad_credential_among_several_refuses_the_request() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let (_, token) = fx.login("u-alice").await;
    // A good key, a garbage bearer.
    let r = fx
        .get_private(&[("x-api-key", &key), ("authorization", "Bearer garbage")])
        .await;
    assert_401(&r, "invalid_token");
    // A bad key, a good bearer.
    let r = fx
        .get_private(&[("x-api-key", "ck_typo"), ("authorization", &bearer(&token))])
        .await;
    assert_401(&r, "invalid_api_key");
    // A good bearer, an expired cookie.
    let (_, old) = fx.login("u-alice").await;
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let (_, fresh) = fx.login("u-alice").await;
    let r = fx
        .get_private(&[
            ("authorization", &bearer(&fresh)),
            ("cookie", &access_cookie(&old)),
        ])
        .await;
    assert_401(&r, "token_expired");
    // A good bearer, an empty X-API-Key.
    let r = fx
        .get_private(&[("x-api-key", ""), ("authorization", &bearer(&fresh))])
        .await;
    assert_401(&r, "invalid_api_key");
}
