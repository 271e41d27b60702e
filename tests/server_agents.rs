//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: agents: run tokens, termination, the admin routes that manage them.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_problem};

use common::contract::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn agent_run_token_works_for_sessions_in_its_org() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    // An admin of acme; its agent is in acme by default.
    let (_, admin) = new_user(&srv, &root, "root@acme.example", "admin", "acme").await;
    let agent = create_agent(&srv, &admin, None).await;
    assert_eq!(agent["status"], "active", "{agent}");
    assert_eq!(agent["org_id"], "acme", "{agent}");
    assert_eq!(agent["name"], "indexer", "{agent}");
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    assert_eq!(run["expires_in"], 172_800, "{run}");
    let token = str_of(&run, "token");
    let c = jwt_part(&token, 1);
    assert_eq!(c["sub"], agent_id.as_str(), "{c}");
    assert_eq!(c["company_id"], "acme", "{c}");
    assert_eq!(c["adapter_type"], "claude_local", "{c}");
    assert_eq!(c["run_id"], run["run_id"], "{c}");
    assert_eq!(c["aud"], "portcullis-agents", "{c}");
    assert_eq!(c["iss"], "portcullis", "{c}");
    assert!(
        c["jti"].is_string() && c["exp"].is_u64() && c["iat"].is_u64(),
        "{c}"
    );
    assert!(c.get("type").is_none(), "{c}");

    let t = Cred::Bearer(&token);
    let s = create_session(&srv, t, "agent work").await;
    assert_eq!(s["org_id"], "acme", "{s}");
    assert_eq!(s["created_by"], agent_id.as_str(), "{s}");
    let id = str_of(&s, "id");
    let path = format!("/api/v1/sessions/{id}");
    let list = expect(get(&srv, "/api/v1/sessions", t).await, 200).await;
    assert!(ids(&list, "id").contains(&id), "{list}");
    assert_eq!(
        expect(get(&srv, &path, t).await, 200).await["title"],
        "agent work"
    );
    let p = expect(
        patch(&srv, &path, t, json!({"title": "renamed"})).await,
        200,
    )
    .await;
    assert_eq!(p["title"], "renamed", "{p}");
    let m = create_memory(
        &srv,
        t,
        json!({"content": "agent memory", "session_id": id}),
    )
    .await;
    assert_eq!(m["org_id"], "acme", "{m}");
    expect(delete(&srv, &path, t).await, 204).await;
    assert_problem(get(&srv, &path, t).await, 404, "not_found").await;
    // Not an admin.
    assert_403_scope(get(&srv, "/admin/stats", t).await, "admin:read").await;
    // The default org's session is not the agent's.
    let other = create_session(&srv, Cred::Bearer(&root), "root's").await;
    assert_problem(
        get(
            &srv,
            &format!("/api/v1/sessions/{}", str_of(&other, "id")),
            t,
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_admin_runs_and_terminates_an_agent_it_created_for_another_org() {
    // `POST /agents` takes `org_id`; runs and terminate need admin:write, nothing more.
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent = create_agent(&srv, &admin, Some("acme")).await;
    assert_eq!(agent["org_id"], "acme", "{agent}");
    let agent_id = str_of(&agent, "agent_id");
    let run = start_run(&srv, &admin, &agent_id).await;
    let token = str_of(&run, "token");
    assert_eq!(jwt_part(&token, 1)["company_id"], "acme");
    let me = whoami(&srv, Cred::Bearer(&token)).await;
    assert_eq!(me["org_id"], "acme", "{me}");
    expect(
        terminate_agent(&srv, Cred::Bearer(&admin), &agent_id).await,
        204,
    )
    .await;
    assert_get_401(
        &srv,
        "/auth/whoami",
        Cred::Bearer(&token),
        "agent_terminated",
    )
    .await;
}

#[tokio::test]
async fn terminating_an_agent_kills_its_run_tokens_and_keys_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let agent_id = str_of(&create_agent(&srv, &admin, None).await, "agent_id");
    let token = str_of(&start_run(&srv, &admin, &agent_id).await, "token");
    let key = str_of(
        &create_key(
            &srv,
            Cred::Bearer(&admin),
            json!({"name": "agent key", "permissions": ["session:list"], "agent_id": agent_id}),
        )
        .await,
        "api_key",
    );
    expect(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&token)).await,
        200,
    )
    .await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    expect(
        terminate_agent(&srv, Cred::Bearer(&admin), &agent_id).await,
        204,
    )
    .await;
    let body = assert_get_401(
        &srv,
        "/api/v1/sessions",
        Cred::Bearer(&token),
        "agent_terminated",
    )
    .await;
    assert!(!body.to_string().contains(&token));
    assert_get_401(
        &srv,
        "/api/v1/sessions",
        Cred::Key(&key),
        "agent_terminated",
    )
    .await;
    assert_get_401(&srv, "/auth/whoami", Cred::Bearer(&key), "agent_terminated").await;
}

#[tokio::test]
async fn agent_routes_need_admin_write_and_a_known_agent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, user) = new_user(&srv, &admin, "kim@example.com", "user", "default").await;
    let agent_id = str_of(&create_agent(&srv, &admin, None).await, "agent_id");
    assert_403_scope(
        post(&srv, "/agents", Cred::Bearer(&user), json!({"name": "x"})).await,
        "admin:write",
    )
    .await;
    assert_403_scope(
        post(
            &srv,
            &format!("/agents/{agent_id}/runs"),
            Cred::Bearer(&user),
            json!({"adapter_type": "process"}),
        )
        .await,
        "admin:write",
    )
    .await;
    assert_403_scope(
        terminate_agent(&srv, Cred::Bearer(&user), &agent_id).await,
        "admin:write",
    )
    .await;
    assert_problem(
        post(
            &srv,
            "/agents/no-such-agent/runs",
            Cred::Bearer(&admin),
            json!({"adapter_type": "process"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        post_empty(
            &srv,
            "/agents/no-such-agent/terminate",
            Cred::Bearer(&admin),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // The agent was not terminated by the refused call.
    let token = str_of(&start_run(&srv, &admin, &agent_id).await, "token");
    whoami(&srv, Cred::Bearer(&token)).await;
}
