//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: whoami (one actor per request), token errors, cookies and CSRF, several
//! credentials on one request.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, assert_problem};
use portcullis::Secret;
use portcullis::ids::{AgentId, OrgId, RunId};
use portcullis::token::{AgentGrant, AgentTokens, KeyRing, SigningKey};

use common::contract::*;
use reqwest::Method;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// whoami: one actor per request
// ---------------------------------------------------------------------------------------------

/// Every permission but the `admin:*` ones, sorted: what a `user` and an agent hold.
fn non_admin_permissions() -> Vec<String> {
    let want: Vec<&str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| !p.starts_with("admin:"))
        .collect();
    sorted(&want)
}

#[tokio::test]
async fn whoami_describes_a_user_from_a_jwt() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    let c = jwt_part(&access, 1);
    let me = whoami(&srv, Cred::Bearer(&access)).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], c["sub"], "{me}");
    assert_eq!(me["org_id"], "default", "{me}");
    assert_eq!(me["auth_method"], "jwt", "{me}");
    assert_eq!(me["session_id"], c["sid"], "{me}");
    assert_eq!(perms(&me), sorted(&ALL_PERMISSIONS), "{me}");
}

#[tokio::test]
async fn whoami_lists_a_viewers_permissions_sorted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (id, viewer) = new_user(&srv, &admin, "vic@example.com", "viewer", "acme").await;
    let me = whoami(&srv, Cred::Bearer(&viewer)).await;
    assert_eq!(me["kind"], "user", "{me}");
    assert_eq!(me["id"], id.as_str(), "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(
        perms(&me),
        sorted(&[
            "session:read",
            "session:list",
            "memory:read",
            "memory:list",
            "memory:search"
        ]),
        "{me}"
    );
    let (_, user) = new_user(&srv, &admin, "uma@example.com", "user", "acme").await;
    let me = whoami(&srv, Cred::Bearer(&user)).await;
    assert_eq!(perms(&me), non_admin_permissions(), "{me}");
}

#[tokio::test]
async fn whoami_describes_an_api_key() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "ci", "permissions": ["session:read", "memory:create", "admin:read"]}),
    )
    .await;
    let key = str_of(&created, "api_key");
    for cred in [Cred::Key(&key), Cred::Bearer(&key)] {
        let me = whoami(&srv, cred).await;
        assert_eq!(me["kind"], "api_key", "{me}");
        assert_eq!(me["id"], created["key_id"], "{me}");
        assert_eq!(me["org_id"], "default", "{me}");
        assert_eq!(me["auth_method"], "api_key", "{me}");
        assert_eq!(
            perms(&me),
            sorted(&["admin:read", "memory:create", "session:read"]),
            "{me}"
        );
        assert!(!me.to_string().contains(&key), "whoami shows the key");
    }
}

#[tokio::test]
async fn whoami_describes_an_agent_run_token() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let (_, admin) = new_user(&srv, &root, "root@acme.example", "admin", "acme").await;
    let agent = create_agent(&srv, &admin, None).await;
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    let token = str_of(&run, "token");
    let me = whoami(&srv, Cred::Bearer(&token)).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["org_id"], "acme", "{me}");
    assert_eq!(me["auth_method"], "jwt", "{me}");
    assert_eq!(me["run_id"], run["run_id"], "{me}");
    assert_eq!(perms(&me), non_admin_permissions(), "{me}");
}

#[tokio::test]
async fn whoami_describes_an_agent_owned_api_key_as_the_agent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, None).await;
    let agent_id = str_of(&agent, "agent_id");
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "agent key", "permissions": ["session:read", "session:list"], "agent_id": agent_id}),
    )
    .await;
    let me = whoami(&srv, Cred::Key(&str_of(&created, "api_key"))).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["org_id"], "default", "{me}");
    assert_eq!(me["auth_method"], "api_key", "{me}");
    let p = perms(&me);
    let mut s = p.clone();
    s.sort();
    assert_eq!(p, s, "permissions must be sorted: {me}");
}

#[tokio::test]
async fn whoami_describes_the_board_under_board_fallback() {
    let srv = start_with(&[("AUTH_FALLBACK", "board")]);
    let me = whoami(&srv, Cred::None).await;
    assert_eq!(me["kind"], "board", "{me}");
    assert_eq!(me["auth_method"], "fallback", "{me}");
    assert_eq!(perms(&me), sorted(&ALL_PERMISSIONS), "{me}");
    // The board works everywhere without credentials…
    expect(get(&srv, "/admin/stats", Cred::None).await, 200).await;
    let s = create_session(&srv, Cred::None, "board's").await;
    assert_eq!(s["org_id"], "default", "{s}");
    // …but a presented bad credential is a 401, never the board.
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer("garbage"),
        "invalid_token",
    )
    .await;
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Key("ck_garbage"),
        "invalid_api_key",
    )
    .await;
    // And a real credential is its own actor.
    let admin = srv.admin_token().await;
    assert_eq!(whoami(&srv, Cred::Bearer(&admin)).await["kind"], "user");
    // The board reads every org.
    let (_, acme) = new_user(&srv, &admin, "pat@example.com", "user", "acme").await;
    let theirs = create_session(&srv, Cred::Bearer(&acme), "acme's").await;
    let path = format!("/api/v1/sessions/{}", str_of(&theirs, "id"));
    assert_eq!(
        expect(get(&srv, &path, Cred::None).await, 200).await["title"],
        "acme's"
    );
}

#[tokio::test]
async fn whoami_without_credentials_is_missing_credentials() {
    let srv = Server::start();
    assert_get_401(&srv, "/auth/whoami", Cred::None, "missing_credentials").await;
}

// ---------------------------------------------------------------------------------------------
// Token errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_bearer_is_invalid_token() {
    let srv = Server::start();
    for bad in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "x.y"] {
        let body = assert_get_401(&srv, "/auth/whoami", Cred::Bearer(bad), "invalid_token").await;
        assert!(!body["detail"].as_str().unwrap().contains(bad), "{body}");
    }
}

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let srv = Server::start();
    let access = srv.admin_token().await;
    let claims = jwt_part(&access, 1);
    let payload = b64url(claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&forged), "invalid_token").await;
        }
    }
    // With the real key id too.
    let kid = jwt_part(&access, 0)["kid"].clone();
    let header = b64url(json!({"alg": "none", "kid": kid}).to_string().as_bytes());
    let forged = format!("{header}.{payload}.");
    assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&forged), "invalid_token").await;
}

#[tokio::test]
async fn tokens_with_another_algorithm_a_crit_header_or_a_foreign_key_are_invalid_token() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let access = srv.admin_token().await;
    let parts: Vec<&str> = access.split('.').collect();
    let kid = jwt_part(&access, 0)["kid"].clone();
    for header in [
        json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
        json!({"alg": "HS512", "kid": kid, "typ": "JWT"}),
        json!({"alg": "HS256", "kid": kid, "typ": "JWT", "crit": ["exp"]}),
    ] {
        let forged = format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&forged), "invalid_token").await;
    }
    // A well-formed token for a live session, signed with another secret.
    let claims = jwt_part(&access, 1);
    let foreign = mint_access("some-other-secret-that-is-long-enough-000", now(), &claims);
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&foreign),
        "invalid_token",
    )
    .await;
    // A tampered payload under the real signature.
    let mut tampered_claims = claims.clone();
    tampered_claims["role"] = json!("admin");
    tampered_claims["org_id"] = json!("other");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(tampered_claims.to_string().as_bytes()),
        parts[2]
    );
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&tampered),
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn expired_access_token_is_token_expired() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let access = srv.admin_token().await;
    let claims = jwt_part(&access, 1);
    // Control: a fresh token minted here for the same live session is accepted, so the server
    // does use the known secret…
    let fresh = mint_access(JWT_SECRET, now(), &claims);
    assert_eq!(whoami(&srv, Cred::Bearer(&fresh)).await["kind"], "user");
    // …and the same token, expired an hour ago (far beyond the 30 s leeway), is refused.
    let expired = mint_access(JWT_SECRET, now() - 3600, &claims);
    let body = assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&expired),
        "token_expired",
    )
    .await;
    assert!(!body.to_string().contains(&expired));
    // Through the cookie too.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("Cookie", format!("portcullis_access={expired}"))
        .send()
        .await
        .unwrap();
    assert_401(res, "token_expired", true).await;
}

#[tokio::test]
async fn refresh_token_as_bearer_is_wrong_token_type() {
    let srv = Server::start();
    let (_, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&refresh_token),
        "wrong_token_type",
    )
    .await;
    assert!(!body.to_string().contains(&refresh_token));
}

#[tokio::test]
async fn an_agent_token_minted_elsewhere_with_the_shared_secret_is_accepted() {
    let srv = start_with(&[("AUTH_AGENT_JWT_SECRET", AGENT_SECRET)]);
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, Some("acme")).await;
    let agent_id = AgentId::from(str_of(&agent, "agent_id"));
    let tokens = AgentTokens::new(
        KeyRing::new(SigningKey::hs256(&Secret::from(AGENT_SECRET))),
        policy("portcullis-agents"),
        3600,
    );
    let run = RunId::from("run-from-another-orchestrator");
    let mint = |company: &str| {
        tokens
            .mint(AgentGrant {
                agent_id: &agent_id,
                company_id: &OrgId::from(company),
                adapter_type: "process",
                run_id: &run,
            })
            .unwrap()
            .token
            .expose()
            .to_owned()
    };
    let me = whoami(&srv, Cred::Bearer(&mint("acme"))).await;
    assert_eq!(me["kind"], "agent", "{me}");
    assert_eq!(me["id"], agent_id.as_str(), "{me}");
    assert_eq!(me["run_id"], "run-from-another-orchestrator", "{me}");
    // A company that is not the agent's organisation is refused.
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&mint("other-org")),
        "invalid_token",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Cookies and CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cookie_authenticated_unsafe_request_needs_the_csrf_token() {
    let srv = Server::start();
    let (_, headers) = login_full(
        &srv,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let cookies = set_cookies(&headers);
    let access = cookie_value(&cookie_line(&cookies, "portcullis_access"));
    let csrf = cookie_value(&cookie_line(&cookies, "portcullis_csrf"));
    let jar = format!("portcullis_access={access}; portcullis_csrf={csrf}");
    let with_cookies = |method: Method, path: &str| {
        srv.client()
            .request(method, srv.url(path))
            .header("Cookie", jar.clone())
    };
    // Safe methods need no CSRF token.
    let me = expect(
        with_cookies(Method::GET, "/auth/whoami")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["auth_method"], "cookie", "{me}");
    assert_eq!(me["kind"], "user", "{me}");
    // Unsafe ones do: missing, wrong, then right.
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 403, "csrf_failed").await;
    assert!(!body.to_string().contains(&csrf));
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .header("X-CSRF-Token", "not-the-token")
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "csrf_failed").await;
    let res = with_cookies(Method::POST, "/api/v1/sessions")
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"title": "from a browser"}))
        .send()
        .await
        .unwrap();
    let s = expect(res, 201).await;
    assert_eq!(s["title"], "from a browser");
    // The header alone, without the cookie to match, is not enough either.
    let res = srv
        .client()
        .post(srv.url("/api/v1/sessions"))
        .header("Cookie", format!("portcullis_access={access}"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "csrf_failed").await;
    // A bad access cookie is a 401, not anonymous.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("Cookie", "portcullis_access=garbage")
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_token", true).await;
}

// ---------------------------------------------------------------------------------------------
// Several credentials
// ---------------------------------------------------------------------------------------------

/// `GET /api/v1/sessions` with exactly these credential headers.
async fn sessions_with(srv: &Server, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = srv.client().get(srv.url("/api/v1/sessions"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn any_bad_credential_among_several_is_a_401() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:list"]).await;
    let bearer = format!("Bearer {admin}");
    for (what, headers) in [
        (
            "a good JWT and a bad key",
            [
                ("Authorization", bearer.as_str()),
                ("X-API-Key", "ck_garbage"),
            ],
        ),
        (
            "a good key and a bad JWT",
            [
                ("Authorization", "Bearer garbage.jwt.here"),
                ("X-API-Key", key.as_str()),
            ],
        ),
    ] {
        let res = sessions_with(&srv, &headers).await;
        let challenge = header(res.headers(), "www-authenticate");
        assert_eq!(res.status(), 401, "{what}: {}", res.text().await.unwrap());
        assert_eq!(
            challenge.as_deref(),
            Some(BAD_CREDENTIAL_CHALLENGE),
            "{what}"
        );
    }
    // A good key and a bad access cookie.
    let res = sessions_with(
        &srv,
        &[
            ("X-API-Key", key.as_str()),
            ("Cookie", "portcullis_access=garbage"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
}
