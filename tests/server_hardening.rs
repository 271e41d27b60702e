//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: malformed input is a 4xx never a 5xx, and no response or log line echoes a
//! token, key or password.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, assert_problem};

use common::contract::*;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_invalid_request_never_a_5xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let raw = |path: &str, body: Vec<u8>| {
        srv.client()
            .post(srv.url(path))
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body)
    };
    for (path, body) in [
        ("/api/v1/sessions", b"{\"title\":".to_vec()),
        ("/api/v1/sessions", b"not json".to_vec()),
        ("/api/v1/sessions", b"[]".to_vec()),
        ("/api/v1/sessions", b"{\"title\": 42}".to_vec()),
        ("/api/v1/sessions", b"{}".to_vec()),
        ("/api/v1/sessions", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("/api/v1/sessions", b"{\"title\": \"\\ud800\"}".to_vec()),
        ("/api/v1/memories", b"{\"content\": null}".to_vec()),
        (
            "/api-keys",
            b"{\"name\": \"x\", \"permissions\": \"session:read\"}".to_vec(),
        ),
        (
            "/api-keys",
            b"{\"name\": \"x\", \"permissions\": [], \"expires_in_seconds\": -5}".to_vec(),
        ),
        ("/users", b"{\"email\": 1}".to_vec()),
        ("/auth/login", b"{\"email\": \"a\"".to_vec()),
        ("/auth/login", vec![0xc3, 0x28, 0xa0, 0xa1]),
        ("/auth/refresh", b"{\"refresh_token\": 7}".to_vec()),
    ] {
        let res = raw(path, body.clone()).send().await.unwrap();
        let what = format!("POST {path} {}", String::from_utf8_lossy(&body));
        let status = assert_4xx_problem(res, &what).await;
        if path != "/auth/refresh" && path != "/auth/login" {
            assert_eq!(status, 400, "{what}");
        }
    }
    // The server is still fine.
    whoami(&srv, Cred::Bearer(&admin)).await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut rb = srv
            .client()
            .post(srv.url("/api/v1/sessions"))
            .bearer_auth(&admin)
            .body(r#"{"title":"x"}"#);
        if let Some(ct) = ct {
            rb = rb.header("Content-Type", ct);
        }
        assert_problem(rb.send().await.unwrap(), 415, "unsupported_media_type").await;
    }
    let res = srv
        .client()
        .post(srv.url("/auth/login"))
        .header("Content-Type", "text/plain")
        .body(format!(
            r#"{{"email":"{ADMIN_EMAIL}","password":"{ADMIN_PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn huge_bodies_are_413() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for size in [70 * 1024, 1024 * 1024] {
        let body = json!({"title": "a".repeat(size)});
        assert_problem(
            post(&srv, "/api/v1/sessions", Cred::Bearer(&admin), body).await,
            413,
            "payload_too_large",
        )
        .await;
        let body = json!({"email": ADMIN_EMAIL, "password": "p".repeat(size)});
        assert_problem(
            post(&srv, "/auth/login", Cred::None, body).await,
            413,
            "payload_too_large",
        )
        .await;
    }
    // Just under the limit is fine (or refused as input, never as a size or a 5xx).
    let body = json!({"content": "m".repeat(60 * 1024)});
    let res = post(&srv, "/api/v1/memories", Cred::Bearer(&admin), body).await;
    let status = res.status().as_u16();
    assert!(status == 201 || status == 400, "a 60 KiB memory: {status}");
    whoami(&srv, Cred::Bearer(&admin)).await;
}

#[tokio::test]
async fn odd_headers_paths_and_queries_are_4xx_never_5xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    // A bearer token far over any size limit.
    let big = "a".repeat(3 * 1024);
    assert_401(
        get(
            &srv,
            "/auth/whoami",
            Cred::Bearer(&format!("{big}.{big}.{big}")),
        )
        .await,
        "invalid_token",
        true,
    )
    .await;
    // Non-ASCII bytes in credential headers.
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header(
            "X-API-Key",
            HeaderValue::from_bytes(b"ck_\xff\xfe\xfd").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_api_key", true).await;
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header(
            "Authorization",
            HeaderValue::from_bytes(b"Bearer \xff\xfe.\xfd.\xfc").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_401(res, "invalid_token", true).await;
    // Odd ids, queries and methods.
    let a = Cred::Bearer(&admin);
    for path in [
        "/api/v1/memories/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/sessions/' OR 1=1 --",
    ] {
        assert_4xx_problem(get(&srv, path, a).await, path).await;
    }
    // A query that decodes to nonsense may be searched for or refused, never a 5xx.
    for path in [
        "/api/v1/memories/search?q=%ff%fe",
        "/api/v1/memories/search?q=%",
        "/api/v1/memories/search?q=%00",
    ] {
        let res = get(&srv, path, a).await;
        if res.status() != 200 {
            assert_4xx_problem(res, path).await;
        }
    }
    assert_problem(
        call(&srv, Method::PUT, "/api/v1/sessions", a, Some(json!({}))).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_problem(
        delete(&srv, "/api/v1/sessions/no-such-id", a).await,
        404,
        "not_found",
    )
    .await;
    whoami(&srv, a).await;
}

#[tokio::test]
async fn an_id_that_is_not_utf8_is_a_problem_json_4xx() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for path in [
        "/api/v1/sessions/%00%ff",
        "/api/v1/memories/%ff%fe",
        "/api-keys/%c3%28",
    ] {
        let res = call(&srv, Method::DELETE, path, Cred::Bearer(&admin), None).await;
        assert_4xx_problem(res, path).await;
        assert_4xx_problem(get(&srv, path, Cred::Bearer(&admin)).await, path).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets never echoed
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_response_or_log_line_contains_a_presented_token_key_or_password() {
    let srv = start_with(&[("AUTH_JWT_SECRET_KEY", JWT_SECRET)]);
    let (access, refresh_token) = login_pair(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (key_id, key) = key_with(&srv, &access, &["session:list"]).await;
    let agent_id = str_of(&create_agent(&srv, &access, None).await, "agent_id");
    let run_token = str_of(&start_run(&srv, &access, &agent_id).await, "token");
    let expired = mint_access(JWT_SECRET, now() - 3600, &jwt_part(&access, 1));
    let wrong_password = "this is not the password";
    let mut bodies = Vec::new();
    let mut keep = |what: &str, body: String| bodies.push((what.to_owned(), body));

    // Successful and refused requests presenting each secret.
    for (what, res) in [
        (
            "whoami jwt",
            get(&srv, "/auth/whoami", Cred::Bearer(&access)).await,
        ),
        (
            "whoami key",
            get(&srv, "/auth/whoami", Cred::Key(&key)).await,
        ),
        (
            "whoami run",
            get(&srv, "/auth/whoami", Cred::Bearer(&run_token)).await,
        ),
        ("keys list", get(&srv, "/api-keys", Cred::Key(&key)).await),
        (
            "stats by key",
            get(&srv, "/admin/stats", Cred::Key(&key)).await,
        ),
        (
            "refresh as bearer",
            get(&srv, "/auth/whoami", Cred::Bearer(&refresh_token)).await,
        ),
        (
            "expired",
            get(&srv, "/auth/whoami", Cred::Bearer(&expired)).await,
        ),
        (
            "access as refresh",
            post(
                &srv,
                "/auth/refresh",
                Cred::None,
                json!({"refresh_token": access}),
            )
            .await,
        ),
        (
            "bad login",
            post(
                &srv,
                "/auth/login",
                Cred::None,
                json!({"email": ADMIN_EMAIL, "password": wrong_password}),
            )
            .await,
        ),
        (
            "bad password change",
            post(
                &srv,
                "/auth/password",
                Cred::Bearer(&access),
                json!({"current_password": wrong_password, "new_password": "whatever 12345"}),
            )
            .await,
        ),
        (
            "malformed with secrets",
            post(
                &srv,
                "/api/v1/sessions",
                Cred::Bearer(&access),
                json!({"title": 1, "token": access, "key": key}),
            )
            .await,
        ),
    ] {
        keep(what, res.text().await.unwrap());
    }
    // Then revoke everything and present it all again.
    expect(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&access)).await,
        204,
    )
    .await;
    expect(
        terminate_agent(&srv, Cred::Bearer(&access), &agent_id).await,
        204,
    )
    .await;
    let rotated = expect(refresh(&srv, &refresh_token).await, 200).await;
    keep("rotated", rotated.to_string());
    let rotated_access = str_of(&rotated, "access_token");
    expect(
        post_empty(&srv, "/auth/logout", Cred::Bearer(&rotated_access)).await,
        204,
    )
    .await;
    for (what, res) in [
        (
            "deleted key",
            get(&srv, "/auth/whoami", Cred::Key(&key)).await,
        ),
        (
            "terminated run",
            get(&srv, "/auth/whoami", Cred::Bearer(&run_token)).await,
        ),
        (
            "logged out",
            get(&srv, "/auth/whoami", Cred::Bearer(&access)).await,
        ),
        ("revoked refresh", refresh(&srv, &refresh_token).await),
    ] {
        assert_eq!(res.status(), 401, "{what}");
        keep(what, res.text().await.unwrap());
    }
    let secrets = [
        access.as_str(),
        refresh_token.as_str(),
        key.as_str(),
        run_token.as_str(),
        expired.as_str(),
        wrong_password,
        ADMIN_PASSWORD,
        JWT_SECRET,
    ];
    for (what, body) in &bodies {
        for s in secrets {
            assert!(
                !body.contains(s),
                "{what}: the response contains a secret: {body}"
            );
        }
    }
    assert_log_free_of(&srv, &secrets);
}
