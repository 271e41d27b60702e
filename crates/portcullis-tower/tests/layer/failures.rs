//! 429 `rate_limited`, and 503 `auth_unavailable` when a store fails: the layer fails closed.

use super::*;

// ---------------------------------------------------------------------------------------------
// 429 rate_limited
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_third_request_over_a_two_per_minute_key_is_rate_limited() {
    let fx = Fx::new();
    let (key, id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(2);
        })
        .await;
    for _ in 0..2 {
        assert_api_key_actor(&fx.get_with_api_key(&key).await, id.as_str());
    }
    let r = fx.get_with_api_key(&key).await;
    let doc = assert_problem(&r, 429, "rate_limited", None);
    assert_eq!(doc["title"], "Too Many Requests");
    let retry_after = r.header_secs("retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let reset = r.header_secs("ratelimit-reset");
    assert!((1..=60).contains(&reset), "RateLimit-Reset {reset}");
    assert_no_leak(&r, &[&key]);
    // The same key as a bearer shares the bucket; another key has its own.
    let r = fx.get_with_bearer(&key).await;
    assert_problem(&r, 429, "rate_limited", None);
    let (other, other_id) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(2);
        })
        .await;
    assert_api_key_actor(&fx.get_with_api_key(&other).await, other_id.as_str());
}

#[tokio::test]
async fn a_key_without_a_limit_is_not_rate_limited() {
    let fx = Fx::new();
    let (key, id) = fx.user_key("u-alice").await;
    for _ in 0..50 {
        assert_api_key_actor(&fx.get_with_api_key(&key).await, id.as_str());
    }
}

#[tokio::test]
async fn a_failing_session_store_is_auth_unavailable_never_200() {
    let fx = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
    // No session can be created; the token names one anyway.
    let minted = fx.access("u-alice", &SessionId::random());
    for r in [
        fx.get_with_bearer(minted.token.expose()).await,
        fx.get_private(&[("cookie", &access_cookie(minted.token.expose()))])
            .await,
    ] {
        assert_503(&r);
    }
}

#[tokio::test]
async fn a_failing_denylist_is_auth_unavailable_for_users_and_agents() {
    let fx = Fx::with_stores(stores_with(|s| s.denylist = Arc::new(Down)));
    // A live session and a live agent: only the denylist cannot answer.
    let (_, token) = fx.login("u-alice").await;
    fx.agent("agent-7").await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    assert_503(&fx.get_with_bearer(&token).await);
    assert_503(&fx.get_private(&[("cookie", &access_cookie(&token))]).await);
    assert_503(&fx.get_with_bearer(run.token.expose()).await);
}

#[tokio::test]
async fn a_failing_api_key_store_is_auth_unavailable() {
    let fx = Fx::with_stores(stores_with(|s| s.api_keys = Arc::new(Down)));
    let key = api_key::generate(&ApiKeyPrefix::default());
    let key = key.key.expose();
    for r in fx.get_with_key_both_ways(key).await {
        assert_503(&r);
        assert_no_leak(&r, &[key]);
    }
    // A key that fails parsing never reaches the store: still a plain 401.
    assert_401(&fx.get_with_api_key("ck_typo").await, "invalid_api_key");
}

#[tokio::test]
async fn a_failing_agent_directory_is_auth_unavailable() {
    let fx = Fx::with_stores(stores_with(|s| s.agents = Arc::new(Down)));
    let (key, _) = fx
        .key_with(KeyOwner::Agent(AgentId::from("agent-7")), |_| {})
        .await;
    let run = fx.run_token("agent-7", ORG, "run-1");
    assert_503(&fx.get_with_bearer(run.token.expose()).await);
    assert_503(&fx.get_with_api_key(&key).await);
}

#[tokio::test]
async fn a_failing_rate_limiter_is_auth_unavailable() {
    let fx = Fx::build(config(), Stores::memory(), Some(Arc::new(Down)));
    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(100);
        })
        .await;
    assert_503(&fx.get_with_api_key(&key).await);
}

#[tokio::test]
async fn a_store_failure_is_never_the_board_nor_anonymous_on_a_protected_path() {
    let fx = Fx::build(
        config(),
        stores_with(|s| {
            s.sessions = Arc::new(Down);
            s.api_keys = Arc::new(Down);
        }),
        None,
    )
    .policy(policy().fallback(Fallback::Board));
    let minted = fx.access("u-alice", &SessionId::random());
    let key = api_key::generate(&ApiKeyPrefix::default());
    assert_503(&fx.get_with_bearer(minted.token.expose()).await);
    assert_503(&fx.get_with_api_key(key.key.expose()).await);
    let fx = Fx::build(config(), stores_with(|s| s.sessions = Arc::new(Down)), None)
        .policy(policy().require_auth(false));
    let minted = fx.access("u-alice", &SessionId::random());
    assert_503(&fx.get_with_bearer(minted.token.expose()).await);
}
