//! The sample server's `GET /auth/sessions` and `DELETE /auth/sessions/{id}` (issue 16, point
//! 3: sessions a user can see), end to end over real HTTP: the `portcullis` binary on SQLite,
//! and two instances on PostgreSQL and Redis for "ended on A is refused by B at once" (that
//! one needs both services: under `CI=true` their absence fails it, elsewhere it says SKIPPED
//! on stderr and returns). The binary must be built (`cargo build -p portcullis-server`).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::contract::*;
use common::{Server, assert_problem};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// `POST /auth/login` as `email` with `User-Agent: user_agent` (none when `None`); the
/// `(access_token, refresh_token)`.
async fn login_as(srv: &Server, email: &str, user_agent: Option<&str>) -> (String, String) {
    let mut rb = srv
        .client()
        .post(srv.url("/auth/login"))
        .json(&json!({"email": email, "password": USER_PASSWORD}));
    if let Some(ua) = user_agent {
        rb = rb.header("user-agent", ua);
    }
    let v = expect(rb.send().await.unwrap(), 200).await;
    (str_of(&v, "access_token"), str_of(&v, "refresh_token"))
}

/// `GET /auth/sessions` as `cred`, expecting 200 with `Cache-Control: no-store`; the list.
async fn sessions(srv: &Server, cred: Cred<'_>) -> Vec<Value> {
    let res = get(srv, "/auth/sessions", cred).await;
    assert_eq!(
        header(res.headers(), "cache-control").as_deref(),
        Some("no-store")
    );
    assert!(
        header(res.headers(), "content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    expect(res, 200).await.as_array().unwrap().clone()
}

/// `DELETE /auth/sessions/{id}` as `cred`.
async fn end(srv: &Server, cred: Cred<'_>, id: &str) -> Response {
    delete(srv, &format!("/auth/sessions/{id}"), cred).await
}

fn sid_of(srv_whoami: &Value) -> String {
    str_of(srv_whoami, "session_id")
}

#[tokio::test]
async fn a_user_sees_its_live_sessions_newest_first_and_ends_another_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "ada@example.com", "user", "default").await;
    let (laptop, laptop_refresh) =
        login_as(&srv, "ada@example.com", Some("Laptop/1.0 (X11; Linux)")).await;
    // A second later, so that "newest first" is a matter of time, not of ids.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let long_agent = format!("Phone/2.0 {}", "x".repeat(300));
    let (phone, _) = login_as(&srv, "ada@example.com", Some(&long_agent)).await;
    let laptop_sid = sid_of(&whoami(&srv, Cred::Bearer(&laptop)).await);
    let phone_sid = sid_of(&whoami(&srv, Cred::Bearer(&phone)).await);

    let listed = sessions(&srv, Cred::Bearer(&phone)).await;
    assert_eq!(
        ids(&json!(listed), "id"),
        [phone_sid.as_str(), laptop_sid.as_str()]
    );
    let (p, l) = (&listed[0], &listed[1]);
    let mut fields: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "created_at",
            "current",
            "id",
            "last_refreshed_at",
            "remember_me",
            "user_agent"
        ]
    );
    assert_eq!(
        (p["current"].clone(), l["current"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(l["user_agent"], "Laptop/1.0 (X11; Linux)");
    // Bounded: at most 256 characters are kept.
    assert_eq!(p["user_agent"].as_str().unwrap(), &long_agent[..256]);
    assert_eq!(l["remember_me"], false);
    assert_eq!(l["last_refreshed_at"], Value::Null);
    // Unix seconds, as `expires_at` is elsewhere.
    let (pc, lc) = (
        p["created_at"].as_u64().unwrap(),
        l["created_at"].as_u64().unwrap(),
    );
    assert!(lc < pc && pc <= now() && now() - lc < 60, "{lc} {pc}");
    // From the laptop, the laptop is current.
    let from_laptop = sessions(&srv, Cred::Bearer(&laptop)).await;
    assert_eq!(from_laptop[1]["id"], laptop_sid.as_str());
    assert_eq!(from_laptop[1]["current"], true);
    assert_eq!(from_laptop[0]["current"], false);

    // A refresh shows as `last_refreshed_at`; the new pair is still that session.
    let pair = expect(refresh(&srv, &laptop_refresh).await, 200).await;
    let (laptop, laptop_refresh) = (
        str_of(&pair, "access_token"),
        str_of(&pair, "refresh_token"),
    );
    let listed = sessions(&srv, Cred::Bearer(&phone)).await;
    let refreshed_at = listed[1]["last_refreshed_at"].as_u64().unwrap();
    assert!(refreshed_at >= lc && refreshed_at <= now(), "{}", listed[1]);

    // The phone ends the laptop's session: dead at once, access and refresh.
    let res = end(&srv, Cred::Bearer(&phone), &laptop_sid).await;
    assert_eq!(res.status(), 204);
    assert!(res.text().await.unwrap().is_empty());
    assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&laptop), "token_revoked").await;
    assert_401(refresh(&srv, &laptop_refresh).await, "token_revoked", true).await;
    let listed = sessions(&srv, Cred::Bearer(&phone)).await;
    assert_eq!(ids(&json!(listed), "id"), [phone_sid.as_str()]);

    // Already ended, or never there: 404 not_found.
    for id in [laptop_sid.as_str(), "no-such-session"] {
        assert_problem(end(&srv, Cred::Bearer(&phone), id).await, 404, "not_found").await;
    }
    whoami(&srv, Cred::Bearer(&phone)).await;
}

#[tokio::test]
async fn another_users_session_is_not_found_and_lives_on() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "ada@example.com", "user", "default").await;
    create_user(&srv, &admin, "bob@example.com", "user", "default").await;
    let (ada, _) = login_as(&srv, "ada@example.com", None).await;
    let (bob, _) = login_as(&srv, "bob@example.com", None).await;
    let bob_sid = sid_of(&whoami(&srv, Cred::Bearer(&bob)).await);
    assert_problem(
        end(&srv, Cred::Bearer(&ada), &bob_sid).await,
        404,
        "not_found",
    )
    .await;
    // Not even the superadmin ends someone else's session through this route.
    assert_problem(
        end(&srv, Cred::Bearer(&admin), &bob_sid).await,
        404,
        "not_found",
    )
    .await;
    whoami(&srv, Cred::Bearer(&bob)).await;
    // Each sees only its own; without a User-Agent it is null.
    let listed = sessions(&srv, Cred::Bearer(&ada)).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_ne!(listed[0]["id"], bob_sid.as_str());
    assert_eq!(listed[0]["user_agent"], Value::Null);
    assert_eq!(listed[0]["current"], true);
}

#[tokio::test]
async fn an_api_key_or_an_agent_is_wrong_actor_kind_and_no_credentials_is_401() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "ada@example.com", "user", "default").await;
    let user_sid = sid_of(&whoami(&srv, Cred::Bearer(&user)).await);
    let (_, key) = key_with(&srv, &user, &["session:read", "session:list"]).await;
    let agent = create_agent(&srv, &admin, None).await;
    let run = start_run(&srv, &admin, &str_of(&agent, "agent_id")).await;
    let run_token = str_of(&run, "token");
    let end_path = format!("/auth/sessions/{user_sid}");
    for cred in [
        Cred::Key(&key),
        Cred::Bearer(&key),
        Cred::Bearer(&run_token),
    ] {
        for (method, path) in [(Method::GET, "/auth/sessions"), (Method::DELETE, &end_path)] {
            let res = call(&srv, method, path, cred, None).await;
            assert_problem(res, 403, "wrong_actor_kind").await;
        }
    }
    for (method, path) in [(Method::GET, "/auth/sessions"), (Method::DELETE, &end_path)] {
        let res = call(&srv, method, path, Cred::None, None).await;
        assert_401(res, "missing_credentials", false).await;
    }
    // Nothing was ended.
    whoami(&srv, Cred::Bearer(&user)).await;
}

#[tokio::test]
async fn the_served_document_describes_both_routes() {
    let srv = Server::start();
    let doc = expect(get(&srv, "/openapi.json", Cred::None).await, 200).await;
    let list = &doc["paths"]["/auth/sessions"]["get"];
    assert_eq!(list["operationId"], "listSessions", "{list}");
    for status in ["200", "401", "403", "503"] {
        assert!(
            list["responses"][status].is_object(),
            "GET {status}: {list}"
        );
    }
    let end = &doc["paths"]["/auth/sessions/{id}"]["delete"];
    assert_eq!(end["operationId"], "endSession", "{end}");
    for status in ["204", "401", "403", "404", "503"] {
        assert!(
            end["responses"][status].is_object(),
            "DELETE {status}: {end}"
        );
    }
}

/// Two instances on one PostgreSQL database and one Redis: a session ended on A is refused by
/// B on the very next request, although B had just accepted (and may have cached) it.
#[test]
fn a_session_ended_on_instance_a_is_refused_by_instance_b_at_once() {
    common::with_pair("sss", async |a, b, admin| {
        create_user(a, &admin, "ada@example.com", "user", "default").await;
        let (laptop, laptop_refresh) = login_as(a, "ada@example.com", Some("Laptop")).await;
        let (phone, _) = login_as(b, "ada@example.com", Some("Phone")).await;
        let laptop_sid = sid_of(&whoami(b, Cred::Bearer(&laptop)).await);
        // Both instances list the same sessions.
        for s in [a, b] {
            let listed = sessions(s, Cred::Bearer(&phone)).await;
            assert_eq!(listed.len(), 2, "{listed:?}");
        }
        for _ in 0..3 {
            whoami(b, Cred::Bearer(&laptop)).await;
        }
        let res = end(a, Cred::Bearer(&phone), &laptop_sid).await;
        assert_eq!(res.status(), 204);
        // The 204 came after B was told: B's very next answer is the refusal.
        assert_get_401(b, "/auth/whoami", Cred::Bearer(&laptop), "token_revoked").await;
        assert_get_401(a, "/auth/whoami", Cred::Bearer(&laptop), "token_revoked").await;
        assert_401(refresh(b, &laptop_refresh).await, "token_revoked", true).await;
        let listed = sessions(b, Cred::Bearer(&phone)).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["user_agent"], "Phone");
        // Ended on A, so B finds nothing to end.
        assert_problem(
            end(b, Cred::Bearer(&phone), &laptop_sid).await,
            404,
            "not_found",
        )
        .await;
    });
}
