//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: public paths, login, refresh, logout and password change.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, assert_problem};
use portcullis::ids::{SessionId, UserId};

use common::contract::*;
use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Public paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn public_paths_answer_without_credentials() {
    let srv = Server::start();
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
    ] {
        let res = get(&srv, path, Cred::None).await;
        assert_eq!(
            res.status(),
            200,
            "GET {path}: {}",
            res.text().await.unwrap()
        );
    }
    let ready = expect(get(&srv, "/readyz", Cred::None).await, 200).await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test]
async fn openapi_json_declares_bearer_and_api_key_security_schemes() {
    let srv = Server::start();
    let doc = expect(get(&srv, "/openapi.json", Cred::None).await, 200).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(
        schemes["bearer"]["scheme"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        "bearer",
        "{schemes}"
    );
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(
        schemes["api_key"]["name"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        "x-api-key",
        "{schemes}"
    );
    assert!(doc["paths"].is_object(), "paths missing");
}

#[tokio::test]
async fn jwks_is_public_and_never_shows_a_shared_secret() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let res = get(&srv, "/.well-known/jwks.json", Cred::None).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let jwks: Value = serde_json::from_str(&body).unwrap();
    assert!(jwks["keys"].is_array(), "{body}");
    assert!(!body.contains(JWT_SECRET), "JWKS shows the HS256 secret");
    assert!(
        !body.contains(&b64url(JWT_SECRET.as_bytes())),
        "JWKS shows the HS256 secret (base64url)"
    );
    for k in jwks["keys"].as_array().unwrap() {
        assert_ne!(k["kty"], "oct", "a symmetric key in the JWKS: {k}");
        assert!(
            k.get("k").is_none() && k.get("d").is_none(),
            "secret material: {k}"
        );
    }
}

#[tokio::test]
async fn unknown_path_needs_credentials_and_then_is_404() {
    let srv = Server::start();
    assert_get_401(&srv, "/no/such/path", Cred::None, "missing_credentials").await;
    let admin = srv.admin_token().await;
    assert_problem(
        get(&srv, "/no/such/path", Cred::Bearer(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn protected_routes_without_credentials_are_missing_credentials() {
    let srv = Server::start();
    for (method, path) in [
        (Method::GET, "/auth/whoami"),
        (Method::POST, "/auth/logout"),
        (Method::POST, "/auth/password"),
        (Method::POST, "/users"),
        (Method::GET, "/api-keys"),
        (Method::POST, "/api-keys"),
        (Method::POST, "/agents"),
        (Method::GET, "/api/v1/sessions"),
        (Method::GET, "/api/v1/memories"),
        (Method::GET, "/api/v1/memories/search?q=x"),
        (Method::GET, "/admin/stats"),
    ] {
        let res = call(&srv, method.clone(), path, Cred::None, None).await;
        let challenge = header(res.headers(), "www-authenticate");
        let body = assert_problem(res, 401, "missing_credentials").await;
        assert_eq!(
            challenge.as_deref(),
            Some(NO_CREDENTIAL_CHALLENGE),
            "{method} {path}: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_returns_a_bearer_pair_and_sets_cookies() {
    let srv = Server::start();
    let (body, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 15 * 60, "{body}");
    assert_eq!(body["refresh_expires_in"], 7 * 24 * 3600, "{body}");
    let access = str_of(&body, "access_token");
    let refresh = str_of(&body, "refresh_token");

    let h = jwt_part(&access, 0);
    assert!(h["kid"].is_string(), "access header lacks kid: {h}");
    assert_eq!(h["alg"], "HS256", "{h}");
    assert_eq!(h["typ"], "at+jwt", "{h}");
    let c = jwt_part(&access, 1);
    assert_eq!(c["type"], "access", "{c}");
    assert_eq!(c["email"], ADMIN_EMAIL, "{c}");
    assert_eq!(c["role"], "superadmin", "{c}");
    assert_eq!(c["org_id"], "default", "{c}");
    assert_eq!(c["iss"], "portcullis", "{c}");
    assert_eq!(c["aud"], "portcullis-api", "{c}");
    for claim in ["sub", "sid", "jti"] {
        assert!(c[claim].is_string(), "access lacks {claim}: {c}");
    }
    let exp = c["exp"].as_u64().unwrap();
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 15 * 60, "{c}");

    let r = jwt_part(&refresh, 1);
    assert_eq!(r["type"], "refresh", "{r}");
    assert_eq!(r["sid"], c["sid"], "{r}");
    assert_eq!(r["sub"], c["sub"], "{r}");
    assert_eq!(r["rmb"], false, "{r}");
    assert_eq!(r["aud"], "portcullis-api:refresh", "{r}");
    assert_ne!(r["jti"], c["jti"]);

    let cookies = set_cookies(&headers);
    let a = cookie_line(&cookies, "portcullis_access");
    assert_eq!(
        cookie_value(&a),
        access,
        "the access cookie holds the access token"
    );
    assert!(has_attr(&a, "httponly"), "{a}");
    assert!(has_attr(&a, "samesite=lax"), "{a}");
    assert!(has_attr(&a, "path=/"), "{a}");
    assert!(!has_attr(&a, "secure"), "Secure in development: {a}");
    let rf = cookie_line(&cookies, "portcullis_refresh");
    assert_eq!(
        cookie_value(&rf),
        refresh,
        "the refresh cookie holds the refresh token"
    );
    assert!(has_attr(&rf, "httponly"), "{rf}");
    assert!(has_attr(&rf, "samesite=strict"), "{rf}");
    assert!(has_attr(&rf, "path=/auth"), "{rf}");
    assert!(!has_attr(&rf, "secure"), "Secure in development: {rf}");
    let cs = cookie_line(&cookies, "portcullis_csrf");
    assert!(!cookie_value(&cs).is_empty(), "{cs}");
    assert!(
        !has_attr(&cs, "httponly"),
        "the CSRF cookie must be readable by JS: {cs}"
    );
    assert!(has_attr(&cs, "samesite=lax"), "{cs}");
    assert!(has_attr(&cs, "path=/"), "{cs}");

    // The pair works.
    let me = whoami(&srv, Cred::Bearer(&access)).await;
    assert_eq!(me["kind"], "user");
    assert_log_free_of(&srv, &[&access, &refresh, ADMIN_PASSWORD]);
}

#[tokio::test]
async fn login_with_remember_me_gets_the_longer_refresh_lifetime() {
    let srv = Server::start();
    let (body, _) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember_me": true}),
    )
    .await;
    assert_eq!(body["refresh_expires_in"], 30 * 24 * 3600, "{body}");
    let r = jwt_part(&str_of(&body, "refresh_token"), 1);
    assert_eq!(r["rmb"], true, "{r}");
    let lifetime = r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 30 * 24 * 3600, "{r}");
}

#[tokio::test]
async fn login_cookies_are_secure_when_cookie_secure_is_set() {
    let srv = start_with(&[("AUTH_COOKIE_SECURE", "true")]);
    let (_, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    for name in ["portcullis_access", "portcullis_refresh", "portcullis_csrf"] {
        let line = cookie_line(&cookies, name);
        assert!(has_attr(&line, "secure"), "{name} lacks Secure: {line}");
    }
    assert!(has_attr(
        &cookie_line(&cookies, "portcullis_access"),
        "httponly"
    ));
    assert!(has_attr(
        &cookie_line(&cookies, "portcullis_refresh"),
        "httponly"
    ));
}

#[tokio::test]
async fn login_unknown_email_and_wrong_password_get_the_same_refusal() {
    let srv = Server::start();
    let mut seen = Vec::new();
    for (email, password) in [
        ("nobody@example.com", ADMIN_PASSWORD),
        (ADMIN_EMAIL, "not the admin password"),
    ] {
        let res = post(
            &srv,
            "/auth/login",
            Cred::None,
            json!({"email": email, "password": password}),
        )
        .await;
        let challenge = header(res.headers(), "www-authenticate").unwrap_or_default();
        assert!(
            challenge == NO_CREDENTIAL_CHALLENGE || challenge == BAD_CREDENTIAL_CHALLENGE,
            "WWW-Authenticate of a failed login: {challenge:?}"
        );
        assert!(
            set_cookies(res.headers()).is_empty(),
            "a failed login sets cookies"
        );
        let body = assert_problem(res, 401, "invalid_credentials").await;
        let text = body.to_string();
        assert!(
            !text.contains(password),
            "the body shows the password: {text}"
        );
        seen.push((challenge, body));
    }
    assert_eq!(
        seen[0], seen[1],
        "unknown email and wrong password must be indistinguishable"
    );
    assert_log_free_of(&srv, &["not the admin password", ADMIN_PASSWORD]);
}

#[tokio::test]
async fn login_is_rate_limited_after_ten_failures_for_one_email() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "bob@example.com", "user", "default").await;
    let wrong = json!({"email": "bob@example.com", "password": "wrong password!"});
    for i in 0..10 {
        let res = post(&srv, "/auth/login", Cred::None, wrong.clone()).await;
        assert_eq!(res.status(), 401, "failure {} of 10", i + 1);
        assert_problem(res, 401, "invalid_credentials").await;
    }
    assert_429(
        post(&srv, "/auth/login", Cred::None, wrong.clone()).await,
        10,
    )
    .await;
    // Locked out for now even with the right password…
    let right = json!({"email": "bob@example.com", "password": USER_PASSWORD});
    assert_429(post(&srv, "/auth/login", Cred::None, right).await, 10).await;
    // …while another email is not affected.
    srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let srv = Server::start();
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let sid = jwt_part(&a0, 1)["sid"].clone();
    let body = expect(refresh(&srv, &r0).await, 200).await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    assert!(body["refresh_expires_in"].as_u64().unwrap() > 0, "{body}");
    let a1 = str_of(&body, "access_token");
    let r1 = str_of(&body, "refresh_token");
    assert_ne!(r1, r0, "the refresh token must rotate");
    assert_ne!(a1, a0);
    assert!(
        !body.to_string().contains(&r0),
        "the response shows the presented token"
    );
    let c1 = jwt_part(&a1, 1);
    assert_eq!(c1["sid"], sid, "rotation keeps the session");
    assert_eq!(jwt_part(&r1, 1)["type"], "refresh");
    let me = whoami(&srv, Cred::Bearer(&a1)).await;
    assert_eq!(me["session_id"], sid, "{me}");
    // The new refresh token rotates in turn.
    let body2 = expect(refresh(&srv, &r1).await, 200).await;
    assert_ne!(str_of(&body2, "refresh_token"), r1);
}

#[tokio::test]
async fn refresh_retry_within_the_grace_keeps_the_session() {
    // Default grace: 10 s.
    let srv = Server::start();
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = expect(refresh(&srv, &r0).await, 200).await;
    // The client did not get the answer and retries at once with the old token.
    let retry = expect(refresh(&srv, &r0).await, 200).await;
    let a_retry = str_of(&retry, "access_token");
    assert_eq!(
        jwt_part(&a_retry, 1)["sid"],
        jwt_part(&a0, 1)["sid"],
        "the retry answers for the same session"
    );
    // Nothing was revoked: both answers' access tokens work, and the session refreshes on.
    whoami(&srv, Cred::Bearer(&str_of(&first, "access_token"))).await;
    whoami(&srv, Cred::Bearer(&a_retry)).await;
    expect(refresh(&srv, &str_of(&retry, "refresh_token")).await, 200).await;
}

#[tokio::test]
async fn refresh_reuse_after_grace_revokes_the_session() {
    let srv = start_with(&[("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0")]);
    let (a0, r0) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rotated = expect(refresh(&srv, &r0).await, 200).await;
    let a1 = str_of(&rotated, "access_token");
    let r1 = str_of(&rotated, "refresh_token");
    whoami(&srv, Cred::Bearer(&a1)).await;
    // Past a zero grace, whatever the clock's granularity.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = refresh(&srv, &r0).await;
    let body = assert_401(replay, "token_revoked", true).await;
    assert!(!body.to_string().contains(&r0));
    // The whole session is dead at once: its access tokens and its current refresh token.
    assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&a1), "token_revoked").await;
    assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&a0), "token_revoked").await;
    assert_401(refresh(&srv, &r1).await, "token_revoked", true).await;
    // Another session of the same user is untouched.
    srv.admin_token().await;
}

#[tokio::test]
async fn refresh_with_an_access_token_is_wrong_token_type() {
    let srv = Server::start();
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = assert_401(refresh(&srv, &access).await, "wrong_token_type", true).await;
    assert!(!body.to_string().contains(&access));
}

#[tokio::test]
async fn refresh_with_garbage_is_invalid_token() {
    let srv = Server::start();
    assert_401(refresh(&srv, "not.a.token").await, "invalid_token", true).await;
    assert_401(refresh(&srv, "garbage").await, "invalid_token", true).await;
}

#[tokio::test]
async fn refresh_without_a_token_is_a_4xx_problem() {
    let srv = Server::start();
    let res = post(&srv, "/auth/refresh", Cred::None, json!({})).await;
    let status = assert_4xx_problem(res, "refresh with {}").await;
    assert!(status == 400 || status == 401, "{status}");
}

#[tokio::test]
async fn refresh_through_the_cookie_sets_new_cookies() {
    let srv = Server::start();
    let (body, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    let r0 = cookie_value(&cookie_line(&cookies, "portcullis_refresh"));
    let csrf = cookie_value(&cookie_line(&cookies, "portcullis_csrf"));
    assert_eq!(r0, str_of(&body, "refresh_token"));
    // What a browser sends: the cookies (and the CSRF header, which a page can read), no body.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header(
            "Cookie",
            format!("portcullis_refresh={r0}; portcullis_csrf={csrf}"),
        )
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    let new_cookies = set_cookies(res.headers());
    let pair = expect(res, 200).await;
    let r1 = str_of(&pair, "refresh_token");
    assert_ne!(r1, r0);
    let a = cookie_line(&new_cookies, "portcullis_access");
    assert_eq!(cookie_value(&a), str_of(&pair, "access_token"));
    assert!(has_attr(&a, "httponly"), "{a}");
    let rf = cookie_line(&new_cookies, "portcullis_refresh");
    assert_eq!(cookie_value(&rf), r1);
    assert!(has_attr(&rf, "httponly"), "{rf}");
    assert!(has_attr(&rf, "samesite=strict"), "{rf}");
}

#[tokio::test]
async fn refresh_with_an_expired_refresh_token_is_token_expired() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let c = jwt_part(&access, 1);
    let (user, sid) = (
        UserId::from(str_of(&c, "sub")),
        SessionId::from(str_of(&c, "sid")),
    );
    let expired = user_tokens(JWT_SECRET, now() - 7200)
        .mint_refresh(&user, &sid, false)
        .unwrap();
    let token = expired.token.expose().to_owned();
    let body = assert_401(refresh(&srv, &token).await, "token_expired", true).await;
    assert!(!body.to_string().contains(&token));
}

// ---------------------------------------------------------------------------------------------
// Logout and password
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_kills_access_and_refresh_tokens_at_once() {
    let srv = Server::start();
    let (access, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (other_access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    whoami(&srv, Cred::Bearer(&access)).await;
    let res = post_empty(&srv, "/auth/logout", Cred::Bearer(&access)).await;
    let cookies = set_cookies(res.headers());
    expect(res, 204).await;
    for name in ["portcullis_access", "portcullis_refresh", "portcullis_csrf"] {
        let line = cookie_line(&cookies, name);
        assert!(
            has_attr(&line, "max-age=0"),
            "logout must clear {name}: {line}"
        );
    }
    let body = assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&access), "token_revoked").await;
    assert!(!body.to_string().contains(&access));
    assert_401(refresh(&srv, &refresh_token).await, "token_revoked", true).await;
    // Only that session: the user's other session lives on.
    whoami(&srv, Cred::Bearer(&other_access)).await;
}

#[tokio::test]
async fn logout_is_for_users_only() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:read"]).await;
    assert_problem(
        post_empty(&srv, "/auth/logout", Cred::Key(&key)).await,
        403,
        "wrong_actor_kind",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/auth/password",
            Cred::Key(&key),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1"}),
        )
        .await,
        403,
        "wrong_actor_kind",
    )
    .await;
    assert_401(
        post_empty(&srv, "/auth/logout", Cred::None).await,
        "missing_credentials",
        false,
    )
    .await;
}

#[tokio::test]
async fn password_change_revokes_every_session() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "carol@example.com", "user", "default").await;
    let (a1, r1) = login_pair(&srv, "carol@example.com", USER_PASSWORD).await;
    let (a2, r2) = login_pair(&srv, "carol@example.com", USER_PASSWORD).await;
    let new_password = "a brand new password";
    let res = post(
        &srv,
        "/auth/password",
        Cred::Bearer(&a1),
        json!({"current_password": USER_PASSWORD, "new_password": new_password}),
    )
    .await;
    expect(res, 204).await;
    for a in [&a1, &a2] {
        assert_get_401(&srv, "/auth/whoami", Cred::Bearer(a), "token_revoked").await;
    }
    for r in [&r1, &r2] {
        assert_401(refresh(&srv, r).await, "token_revoked", true).await;
    }
    assert_problem(
        post(
            &srv,
            "/auth/login",
            Cred::None,
            json!({"email": "carol@example.com", "password": USER_PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    srv.login("carol@example.com", new_password).await;
    // The admin's session is not the user's.
    whoami(&srv, Cred::Bearer(&admin)).await;
    assert_log_free_of(&srv, &[new_password, USER_PASSWORD]);
}

#[tokio::test]
async fn password_change_with_a_wrong_current_password_is_invalid_credentials() {
    let srv = Server::start();
    let (access, _) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = post(
        &srv,
        "/auth/password",
        Cred::Bearer(&access),
        json!({"current_password": "not my password", "new_password": "a new password 1"}),
    )
    .await;
    let challenge = header(res.headers(), "www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(NO_CREDENTIAL_CHALLENGE),
        "WWW-Authenticate: {challenge:?}"
    );
    let body = assert_problem(res, 401, "invalid_credentials").await;
    assert!(!body.to_string().contains("not my password"));
    // Nothing changed: the session lives and the old password still logs in.
    whoami(&srv, Cred::Bearer(&access)).await;
    srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn password_change_to_a_short_password_is_invalid_request() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    assert_problem(
        post(
            &srv,
            "/auth/password",
            Cred::Bearer(&access),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "short"}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    whoami(&srv, Cred::Bearer(&access)).await;
}
