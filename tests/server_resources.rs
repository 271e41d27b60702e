//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: users, sessions and memories (tenancy, viewers), admin stats and revocation.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, Server, assert_problem};

use common::contract::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_creates_a_user_who_can_log_in() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let u = create_user(&srv, &admin, "dave@example.com", "user", "acme").await;
    assert!(u["id"].is_string(), "{u}");
    assert_eq!(u["email"], "dave@example.com", "{u}");
    assert_eq!(u["role"], "user", "{u}");
    assert_eq!(u["org_id"], "acme", "{u}");
    assert!(u.get("password").is_none(), "{u}");
    assert!(!u.to_string().contains(USER_PASSWORD), "{u}");
    let token = str_of(
        &srv.login("dave@example.com", USER_PASSWORD).await,
        "access_token",
    );
    assert_eq!(whoami(&srv, Cred::Bearer(&token)).await["id"], u["id"]);
    // org_id defaults to the caller's.
    let res = post(
        &srv,
        "/users",
        Cred::Bearer(&admin),
        json!({"email": "erin@example.com", "password": USER_PASSWORD, "role": "viewer"}),
    )
    .await;
    let e = expect(res, 201).await;
    assert_eq!(e["org_id"], "default", "{e}");
    assert_eq!(e["role"], "viewer", "{e}");
}

#[tokio::test]
async fn creating_a_user_with_a_taken_email_is_409_conflict() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    create_user(&srv, &admin, "frank@example.com", "user", "default").await;
    for email in ["frank@example.com", ADMIN_EMAIL] {
        assert_problem(
            post(
                &srv,
                "/users",
                Cred::Bearer(&admin),
                json!({"email": email, "password": USER_PASSWORD, "role": "user"}),
            )
            .await,
            409,
            "conflict",
        )
        .await;
    }
}

#[tokio::test]
async fn creating_a_user_with_an_unknown_role_or_short_password_is_invalid_request() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for body in [
        json!({"email": "g@example.com", "password": USER_PASSWORD, "role": "emperor"}),
        json!({"email": "g@example.com", "password": "short", "role": "user"}),
        json!({"email": "g@example.com", "role": "user"}),
    ] {
        assert_problem(
            post(&srv, "/users", Cred::Bearer(&admin), body).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn non_admin_cannot_create_users() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "hank@example.com", "user", "default").await;
    let body = json!({"email": "x@example.com", "password": USER_PASSWORD, "role": "admin"});
    assert_403_scope(
        post(&srv, "/users", Cred::Bearer(&user), body.clone()).await,
        "admin:write",
    )
    .await;
    // An API key without admin:write neither.
    let (_, key) = key_with(&srv, &admin, &["admin:read"]).await;
    assert_403_scope(
        post(&srv, "/users", Cred::Key(&key), body).await,
        "admin:write",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Sessions and memories
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_are_created_listed_read_updated_and_deleted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let me = whoami(&srv, Cred::Bearer(&admin)).await;
    let a = Cred::Bearer(&admin);
    let s = create_session(&srv, a, "first").await;
    assert_eq!(s["title"], "first", "{s}");
    assert_eq!(s["org_id"], "default", "{s}");
    assert_eq!(s["created_by"], me["id"], "{s}");
    let id = str_of(&s, "id");
    let path = format!("/api/v1/sessions/{id}");
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert_eq!(ids(&list, "id"), vec![id.clone()], "{list}");
    let got = expect(get(&srv, &path, a).await, 200).await;
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["title"], "first");
    let p = expect(patch(&srv, &path, a, json!({"title": "second"})).await, 200).await;
    assert_eq!(p["title"], "second", "{p}");
    assert_eq!(
        expect(get(&srv, &path, a).await, 200).await["title"],
        "second"
    );
    expect(delete(&srv, &path, a).await, 204).await;
    assert_problem(get(&srv, &path, a).await, 404, "not_found").await;
    assert_problem(delete(&srv, &path, a).await, 404, "not_found").await;
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    // An empty title is malformed.
    assert_problem(
        post(&srv, "/api/v1/sessions", a, json!({"title": ""})).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn memories_are_created_searched_updated_and_deleted() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let a = Cred::Bearer(&admin);
    let session = str_of(&create_session(&srv, a, "notes").await, "id");
    let fox = create_memory(
        &srv,
        a,
        json!({"content": "the quick brown fox", "session_id": session}),
    )
    .await;
    assert_eq!(fox["content"], "the quick brown fox", "{fox}");
    assert_eq!(fox["org_id"], "default", "{fox}");
    assert_eq!(fox["session_id"], session.as_str(), "{fox}");
    let dog = create_memory(&srv, a, json!({"content": "a lazy dog sleeps"})).await;
    assert!(dog["session_id"].is_null(), "{dog}");
    let (fox_id, dog_id) = (str_of(&fox, "id"), str_of(&dog, "id"));

    let mut all = ids(
        &expect(get(&srv, "/api/v1/memories", a).await, 200).await,
        "id",
    );
    all.sort();
    let mut want = vec![fox_id.clone(), dog_id.clone()];
    want.sort();
    assert_eq!(all, want);
    let found = expect(get(&srv, "/api/v1/memories/search?q=fox", a).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![fox_id.clone()], "{found}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=lazy", a).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![dog_id.clone()], "{found}");
    let none = expect(get(&srv, "/api/v1/memories/search?q=zebra", a).await, 200).await;
    assert!(ids(&none, "id").is_empty(), "{none}");
    assert_problem(
        get(&srv, "/api/v1/memories/search", a).await,
        400,
        "invalid_request",
    )
    .await;

    let path = format!("/api/v1/memories/{fox_id}");
    assert_eq!(
        expect(get(&srv, &path, a).await, 200).await["content"],
        "the quick brown fox"
    );
    let p = expect(
        patch(&srv, &path, a, json!({"content": "the slow red fox"})).await,
        200,
    )
    .await;
    assert_eq!(p["content"], "the slow red fox", "{p}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=quick", a).await, 200).await;
    assert!(
        ids(&found, "id").is_empty(),
        "search sees the old content: {found}"
    );
    expect(delete(&srv, &path, a).await, 204).await;
    assert_problem(get(&srv, &path, a).await, 404, "not_found").await;
    assert_problem(
        post(&srv, "/api/v1/memories", a, json!({"content": ""})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/api/v1/memories",
            a,
            json!({"content": "x", "session_id": "no-such-session"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn another_orgs_sessions_and_memories_are_not_found() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, acme) = new_user(&srv, &admin, "lee@example.com", "user", "acme").await;
    let (_, acme_viewer) = new_user(&srv, &admin, "lou@example.com", "viewer", "acme").await;
    let theirs = Cred::Bearer(&acme);
    let s = create_session(&srv, theirs, "acme secret plans").await;
    assert_eq!(s["org_id"], "acme", "{s}");
    let m = create_memory(&srv, theirs, json!({"content": "acme secret memory"})).await;
    let s_path = format!("/api/v1/sessions/{}", str_of(&s, "id"));
    let m_path = format!("/api/v1/memories/{}", str_of(&m, "id"));
    // The same org sees them, even as a viewer.
    expect(get(&srv, &s_path, Cred::Bearer(&acme_viewer)).await, 200).await;
    expect(get(&srv, &m_path, Cred::Bearer(&acme_viewer)).await, 200).await;

    // An admin of `default` holds every permission, but not in acme.
    let (_, default_admin) = new_user(&srv, &admin, "dee@example.com", "admin", "default").await;
    let a = Cred::Bearer(&default_admin);
    for path in [&s_path, &m_path] {
        assert_problem(get(&srv, path, a).await, 404, "not_found").await;
        assert_problem(delete(&srv, path, a).await, 404, "not_found").await;
    }
    assert_problem(
        patch(&srv, &s_path, a, json!({"title": "mine"})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        patch(&srv, &m_path, a, json!({"content": "mine"})).await,
        404,
        "not_found",
    )
    .await;
    let list = expect(get(&srv, "/api/v1/sessions", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    let list = expect(get(&srv, "/api/v1/memories", a).await, 200).await;
    assert!(ids(&list, "id").is_empty(), "{list}");
    let found = expect(get(&srv, "/api/v1/memories/search?q=secret", a).await, 200).await;
    assert!(ids(&found, "id").is_empty(), "{found}");
    // Nor may a memory of ours point at their session: another org's id is a 404, whatever the
    // route (CONTRACT, Organisations).
    assert_problem(
        post(
            &srv,
            "/api/v1/memories",
            a,
            json!({"content": "x", "session_id": s["id"]}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Nothing was changed or deleted.
    assert_eq!(
        expect(get(&srv, &s_path, theirs).await, 200).await["title"],
        "acme secret plans"
    );
    assert_eq!(
        expect(get(&srv, &m_path, theirs).await, 200).await["content"],
        "acme secret memory"
    );
}

#[tokio::test]
async fn viewer_reads_but_cannot_write() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, viewer) = new_user(&srv, &admin, "mo@example.com", "viewer", "default").await;
    let s = create_session(&srv, Cred::Bearer(&admin), "shared").await;
    let m = create_memory(
        &srv,
        Cred::Bearer(&admin),
        json!({"content": "shared memory"}),
    )
    .await;
    let v = Cred::Bearer(&viewer);
    expect(get(&srv, "/api/v1/sessions", v).await, 200).await;
    expect(get(&srv, "/api/v1/memories", v).await, 200).await;
    let found = expect(get(&srv, "/api/v1/memories/search?q=shared", v).await, 200).await;
    assert_eq!(ids(&found, "id"), vec![str_of(&m, "id")]);
    let s_path = format!("/api/v1/sessions/{}", str_of(&s, "id"));
    let m_path = format!("/api/v1/memories/{}", str_of(&m, "id"));
    assert_403_scope(
        post(&srv, "/api/v1/sessions", v, json!({"title": "x"})).await,
        "session:create",
    )
    .await;
    assert_403_scope(
        patch(&srv, &s_path, v, json!({"title": "x"})).await,
        "session:update",
    )
    .await;
    assert_403_scope(delete(&srv, &s_path, v).await, "session:delete").await;
    assert_403_scope(
        post(&srv, "/api/v1/memories", v, json!({"content": "x"})).await,
        "memory:create",
    )
    .await;
    assert_403_scope(
        patch(&srv, &m_path, v, json!({"content": "x"})).await,
        "memory:update",
    )
    .await;
    assert_403_scope(delete(&srv, &m_path, v).await, "memory:delete").await;
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_stats_counts_users_keys_agents_and_sessions() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "ned@example.com", "user", "acme").await;
    key_with(&srv, &admin, &["session:read"]).await;
    key_with(&srv, &user, &["session:read"]).await;
    create_agent(&srv, &admin, None).await;
    let stats = expect(get(&srv, "/admin/stats", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(stats["users"], 2, "{stats}");
    assert_eq!(stats["api_keys"], 2, "{stats}");
    assert_eq!(stats["agents"], 1, "{stats}");
    // The admin's and the user's login sessions at least.
    assert!(stats["active_sessions"].as_u64().unwrap() >= 2, "{stats}");
    assert_403_scope(
        get(&srv, "/admin/stats", Cred::Bearer(&user)).await,
        "admin:read",
    )
    .await;
}

#[tokio::test]
async fn admin_revoke_sessions_kills_all_of_that_users_sessions_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let u = create_user(&srv, &admin, "ola@example.com", "user", "default").await;
    let user_id = str_of(&u, "id");
    let (a1, r1) = login_pair(&srv, "ola@example.com", USER_PASSWORD).await;
    let (a2, r2) = login_pair(&srv, "ola@example.com", USER_PASSWORD).await;
    let path = format!("/admin/users/{user_id}/revoke-sessions");
    assert_403_scope(
        post_empty(&srv, &path, Cred::Bearer(&a1)).await,
        "admin:write",
    )
    .await;
    whoami(&srv, Cred::Bearer(&a1)).await;
    expect(post_empty(&srv, &path, Cred::Bearer(&admin)).await, 204).await;
    for a in [&a1, &a2] {
        assert_get_401(&srv, "/auth/whoami", Cred::Bearer(a), "token_revoked").await;
    }
    for r in [&r1, &r2] {
        assert_401(refresh(&srv, r).await, "token_revoked", true).await;
    }
    // The user may log in again; the admin's session is untouched.
    srv.login("ola@example.com", USER_PASSWORD).await;
    whoami(&srv, Cred::Bearer(&admin)).await;
}
