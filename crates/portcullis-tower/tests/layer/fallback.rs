//! The board fallback, `require_auth` and public paths.

use super::*;

// ---------------------------------------------------------------------------------------------
// Fallback and public paths
// ---------------------------------------------------------------------------------------------

/// What a local browser or client sends to a loopback bind.
const LOCAL_HOST: (&str, &str) = ("host", "localhost:8080");

#[tokio::test]
async fn board_fallback_without_credentials_is_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    for r in [
        fx.get_private(&[LOCAL_HOST]).await,
        fx.send(post(PRIVATE, &[LOCAL_HOST])).await,
        fx.get_private(&[LOCAL_HOST, ("cookie", "theme=dark")])
            .await,
    ] {
        let actor = assert_actor(&r, "board", Some("board"), Some("fallback"));
        assert_eq!(actor["org_id"], Value::Null);
    }
}

#[tokio::test]
async fn board_fallback_still_honours_real_credentials() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let (_, token) = fx.login("u-alice").await;
    let r = fx.get_with_bearer(&token).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_present_but_bad_credential_with_board_fallback_is_401_never_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let (_, token) = fx.login("u-alice").await;
    let (key, id) = fx.user_key("u-alice").await;
    fx.auth
        .stores()
        .api_keys
        .set_enabled(&id, false)
        .await
        .unwrap();
    let cases: [(&str, &[u8], &str); 8] = [
        ("authorization", b"Bearer garbage", "invalid_token"),
        (
            "authorization",
            b"Basic dXNlcjpwYXNz",
            "invalid_credentials",
        ),
        ("authorization", b"Bearer", "invalid_token"),
        ("authorization", b"Bearer \xff\xfe", "invalid_token"),
        ("x-api-key", b"ck_typo", "invalid_api_key"),
        ("x-api-key", b"", "invalid_api_key"),
        ("x-api-key", key.as_bytes(), "api_key_disabled"),
        ("cookie", b"portcullis_access=a.b.c", "invalid_token"),
    ];
    for (name, value, code) in cases {
        let r = fx.send(raw(Method::GET, PRIVATE, &[(name, value)])).await;
        assert_401(&r, code);
    }
    fx.clock.advance(ACCESS_TTL + LEEWAY);
    let r = fx.get_with_bearer(&token).await;
    assert_401(&r, "token_expired");
}

#[tokio::test]
async fn no_fallback_and_no_credential_on_a_public_path_is_anonymous() {
    let fx = Fx::new();
    for path in PUBLIC_PATHS {
        assert_anonymous(&fx.send(get(path, &[])).await);
    }
    assert_anonymous(&fx.send(post("/auth/login", &[])).await);
    // The query string is not part of the path.
    assert_anonymous(&fx.send(get("/healthz?verbose=1", &[])).await);
}

#[tokio::test]
async fn board_fallback_on_a_public_path_without_credentials_is_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let r = fx.send(get("/healthz", &[LOCAL_HOST])).await;
    assert_actor(&r, "board", Some("board"), Some("fallback"));
}

#[tokio::test]
async fn board_fallback_is_for_every_loopback_host_and_port() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    for host in [
        "localhost",
        "localhost:1234",
        "LOCALHOST:8080",
        "localhost.:8080",
        "127.0.0.1:8080",
        "127.0.0.2",
        "[::1]:8080",
    ] {
        let r = fx.get_private(&[("host", host)]).await;
        assert_actor(&r, "board", Some("board"), Some("fallback"));
    }
    // HTTP/2 `:authority` and HTTP/1.1 absolute-form arrive as the URI's authority.
    let r = fx
        .send(get("http://localhost:8080/api/v1/sessions", &[]))
        .await;
    assert_actor(&r, "board", Some("board"), Some("fallback"));
}

#[tokio::test]
async fn board_fallback_for_a_host_that_is_not_loopback_is_401_missing_credentials() {
    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let not_loopback: [&[(&str, &[u8])]; 11] = [
        &[("host", b"evil.example")],
        &[("host", b"evil.example:8080")],
        &[("host", b"localhost.evil.com:8080")],
        &[("host", b"127.0.0.1.evil.com")],
        &[("host", b"127.0.0.1.")],
        &[("host", b"10.0.0.1:8080")],
        &[("host", b"0.0.0.0:8080")],
        &[("host", b"evil@localhost")],
        &[("host", b"localhost\xff")],
        &[("host", b"localhost"), ("host", b"evil.example")],
        // No host named at all.
        &[],
    ];
    for headers in not_loopback {
        for method in [Method::GET, Method::POST] {
            let r = fx.send(raw(method, PRIVATE, headers)).await;
            assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
        }
        // On a public path: anonymous, never the board.
        assert_anonymous(&fx.send(raw(Method::GET, "/healthz", headers)).await);
    }
    // An absolute-form URI naming another host, whatever `Host` says.
    for host in ["localhost", "evil.example"] {
        let r = fx
            .send(get(
                "http://evil.example/api/v1/sessions",
                &[("host", host)],
            ))
            .await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
    let r = fx
        .send(get(
            "http://localhost/api/v1/sessions",
            &[("host", "evil.example")],
        ))
        .await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    // Real credentials still resolve, whatever the host.
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .get_private(&[("host", "evil.example"), ("authorization", &bearer(&token))])
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn board_fallback_with_remote_allowed_is_the_board_for_any_host() {
    let fx = Fx::with_policy(
        policy()
            .fallback(Fallback::Board)
            .allow_remote_fallback(true),
    );
    for headers in [
        &[("host", "evil.example")][..],
        &[("host", "10.0.0.1:8080")],
        &[],
    ] {
        let r = fx.send(get(PRIVATE, headers)).await;
        assert_actor(&r, "board", Some("board"), Some("fallback"));
    }
}

#[tokio::test]
async fn an_access_cookie_beside_a_cookie_that_is_not_ascii_is_presented_never_the_board() {
    let fx = Fx::with_policy(policy().fallback(Fallback::Board));
    let local = ("host", &b"localhost:8080"[..]);
    // A bad access cookie: 401, not the board, in one header or across two.
    let bad: [&[(&str, &[u8])]; 3] = [
        &[
            local,
            ("cookie", b"name=\xc3\xa9t\xc3\xa9; portcullis_access=a.b.c"),
        ],
        &[local, ("cookie", b"portcullis_access=a.b.c; x=\xff")],
        &[
            local,
            ("cookie", b"x=\xff"),
            ("cookie", b"portcullis_access=a.b.c"),
        ],
    ];
    for headers in bad {
        let r = fx.send(raw(Method::GET, PRIVATE, headers)).await;
        assert_401(&r, "invalid_token");
    }
    // Our cookie's own value not ASCII: present but unreadable.
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[local, ("cookie", b"portcullis_access=a.b.\xc3\xa9")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    // A good one: that user.
    let (_, token) = fx.login("u-alice").await;
    let cookie = format!("name=\u{e9}t\u{e9}; {}", access_cookie(&token));
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[local, ("cookie", cookie.as_bytes())],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn require_auth_off_leaves_a_protected_path_anonymous_without_credentials() {
    let fx = Fx::with_policy(policy().require_auth(false));
    assert_anonymous(&fx.get_private(&[]).await);
    assert_anonymous(&fx.send(post(PRIVATE, &[])).await);
    // But a present-but-bad credential is still refused.
    let r = fx.get_private(&[("authorization", "Bearer garbage")]).await;
    assert_401(&r, "invalid_token");
    let r = fx
        .get_private(&[("authorization", "Basic dXNlcjpwYXNz")])
        .await;
    assert_401(&r, "invalid_credentials");
    // And a good one resolves.
    let (_, token) = fx.login("u-alice").await;
    let r = fx.get_with_bearer(&token).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn public_paths_match_exactly_never_by_prefix() {
    let fx = Fx::new();
    assert_anonymous(&fx.send(get("/healthz", &[])).await);
    for path in [
        "/healthzX",
        "/healthz/",
        "/healthz/x",
        "/HEALTHZ",
        "/%68ealthz",
        "//healthz",
        "/auth/login/../../api/v1/sessions",
        "/auth/logout",
        "/x/healthz",
    ] {
        let r = fx.send(get(path, &[])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

#[tokio::test]
async fn a_configured_public_path_is_public() {
    let fx = Fx::with_policy(policy().public_paths(["/metrics"]));
    assert_anonymous(&fx.send(get("/metrics", &[])).await);
    let r = fx.send(get("/metrics/x", &[])).await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
}

#[tokio::test]
async fn a_bad_credential_on_a_public_path_is_anonymous_never_the_board() {
    for fallback in [Fallback::None, Fallback::Board] {
        let fx = Fx::with_policy(policy().fallback(fallback));
        let (_, token) = fx.login("u-alice").await;
        fx.clock.advance(ACCESS_TTL + LEEWAY);
        let expired_cookie = access_cookie(&token);
        let expired_bearer = bearer(&token);
        let cases: [&[(&str, &[u8])]; 8] = [
            &[("authorization", b"Bearer garbage")],
            &[("authorization", b"Basic dXNlcjpwYXNz")],
            &[("authorization", b"Bearer \xff")],
            &[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            &[("x-api-key", b"ck_typo")],
            &[("x-api-key", b"\xff")],
            &[("cookie", expired_cookie.as_bytes())],
            &[("authorization", expired_bearer.as_bytes())],
        ];
        for headers in cases {
            for (method, path) in [(Method::GET, "/healthz"), (Method::POST, "/auth/login")] {
                let r = fx.send(raw(method, path, headers)).await;
                assert_anonymous(&r);
            }
        }
    }
}

#[tokio::test]
async fn a_valid_credential_on_a_public_path_resolves_its_actor() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(get("/healthz", &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}
