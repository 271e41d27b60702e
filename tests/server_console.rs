//! The admin console's reads (issue 16, point 5) through the real binary over HTTP: `GET /users`,
//! `GET /agents`, `GET /admin/users/{id}/sessions`, and the `/admin` page itself. Written as an
//! attacker would try them: another org's admin sees only its own org, a `user` gets 403, no
//! credentials 401, another org's user id 404, and no password hash ever leaves the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::contract::{
    Cred, assert_401, assert_403_scope, create_agent, expect, get, header, key_with, login_pair,
    new_user, post_empty, start_run, str_of, terminate_agent,
};
use common::{Server, USER_PASSWORD, assert_problem};
use serde_json::{Value, json};

/// The superadmin, an admin and a user of `acme`, and a user of `globex`.
struct Orgs {
    srv: Server,
    root: String,
    acme_admin: String,
    acme_user_id: String,
    acme_user: String,
    globex_user_id: String,
}

async fn orgs() -> Orgs {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let (_, acme_admin) = new_user(&srv, &root, "boss@acme.test", "admin", "acme").await;
    let (acme_user_id, acme_user) = new_user(&srv, &root, "ann@acme.test", "user", "acme").await;
    let (globex_user_id, _) = new_user(&srv, &root, "pat@globex.test", "user", "globex").await;
    Orgs {
        srv,
        root,
        acme_admin,
        acme_user_id,
        acme_user,
        globex_user_id,
    }
}

fn emails(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| str_of(u, "email"))
        .collect()
}

#[tokio::test]
async fn an_org_admin_lists_its_orgs_users_only_without_password_hashes() {
    let o = orgs().await;
    let list = expect(
        get(&o.srv, "/users", Cred::Bearer(&o.acme_admin)).await,
        200,
    )
    .await;
    assert_eq!(
        emails(&list),
        ["ann@acme.test", "boss@acme.test"],
        "acme's, sorted by email: {list}"
    );
    for u in list.as_array().unwrap() {
        let mut fields: Vec<_> = u.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        assert_eq!(fields, ["email", "id", "org_id", "role"], "{u}");
        assert_eq!(u["org_id"], "acme", "{u}");
    }
    let ann = &list[0];
    assert_eq!(ann["id"], o.acme_user_id.as_str(), "{ann}");
    assert_eq!(ann["role"], "user", "{ann}");
    let text = get(&o.srv, "/users", Cred::Bearer(&o.root))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("argon2"), "a password hash leaked: {text}");

    // The superadmin acts in every org: every user.
    let all = expect(get(&o.srv, "/users", Cred::Bearer(&o.root)).await, 200).await;
    assert_eq!(
        emails(&all),
        [
            "admin@example.com",
            "ann@acme.test",
            "boss@acme.test",
            "pat@globex.test"
        ],
        "{all}"
    );

    // An admin:read key of acme's admin reads acme, as its creator does.
    let (_, key) = key_with(&o.srv, &o.acme_admin, &["admin:read"]).await;
    let by_key = expect(get(&o.srv, "/users", Cred::Key(&key)).await, 200).await;
    assert_eq!(by_key, list);
}

#[tokio::test]
async fn an_org_admin_lists_its_orgs_agents_only_with_their_status() {
    let o = orgs().await;
    let mine = create_agent(&o.srv, &o.acme_admin, None).await;
    let theirs = create_agent(&o.srv, &o.root, Some("globex")).await;
    let mine_id = str_of(&mine, "agent_id");

    let list = expect(
        get(&o.srv, "/agents", Cred::Bearer(&o.acme_admin)).await,
        200,
    )
    .await;
    assert_eq!(
        list,
        json!([{"agent_id": mine_id, "org_id": "acme", "status": "active", "name": "indexer"}])
    );

    // Terminated, it stays listed, as terminated.
    expect(
        terminate_agent(&o.srv, Cred::Bearer(&o.acme_admin), &mine_id).await,
        204,
    )
    .await;
    let list = expect(
        get(&o.srv, "/agents", Cred::Bearer(&o.acme_admin)).await,
        200,
    )
    .await;
    assert_eq!(list[0]["status"], "terminated", "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    let all = expect(get(&o.srv, "/agents", Cred::Bearer(&o.root)).await, 200).await;
    let mut ids: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| str_of(a, "agent_id"))
        .collect();
    // Made in the same second, their order is by id (the conformance suite checks the order).
    ids.sort();
    let mut want = [mine_id, str_of(&theirs, "agent_id")];
    want.sort();
    assert_eq!(ids, want, "both orgs' agents");
}

#[tokio::test]
async fn an_admin_sees_a_users_live_sessions_but_not_another_orgs() {
    let o = orgs().await;
    // Ann has two sessions: the one `orgs` made and one more.
    let (_, refresh) = login_pair(&o.srv, "ann@acme.test", USER_PASSWORD).await;
    let path = format!("/admin/users/{}/sessions", o.acme_user_id);
    let res = get(&o.srv, &path, Cred::Bearer(&o.acme_admin)).await;
    assert_eq!(
        header(res.headers(), "cache-control").as_deref(),
        Some("no-store")
    );
    let list = expect(res, 200).await;
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    for s in items {
        assert_eq!(s["current"], false, "none is the caller's: {s}");
        assert!(s["id"].is_string() && s["created_at"].is_u64(), "{s}");
    }
    // The same shape as the user's own list of them.
    let own = expect(
        get(&o.srv, "/auth/sessions", Cred::Bearer(&o.acme_user)).await,
        200,
    )
    .await;
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| str_of(s, "id"))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&list), ids(&own));

    // Another org's user, and no user at all, are 404 alike, even to an admin with admin:read.
    for id in [o.globex_user_id.as_str(), "no-such-user"] {
        let res = get(
            &o.srv,
            &format!("/admin/users/{id}/sessions"),
            Cred::Bearer(&o.acme_admin),
        )
        .await;
        assert_problem(res, 404, "not_found").await;
    }
    // The superadmin sees globex's.
    let globex = format!("/admin/users/{}/sessions", o.globex_user_id);
    let theirs = expect(get(&o.srv, &globex, Cred::Bearer(&o.root)).await, 200).await;
    assert_eq!(theirs.as_array().unwrap().len(), 1, "{theirs}");

    // Revoked, the list is empty and the refresh token is dead.
    expect(
        post_empty(
            &o.srv,
            &format!("/admin/users/{}/revoke-sessions", o.acme_user_id),
            Cred::Bearer(&o.acme_admin),
        )
        .await,
        204,
    )
    .await;
    let list = expect(get(&o.srv, &path, Cred::Bearer(&o.acme_admin)).await, 200).await;
    assert_eq!(list, json!([]));
    let res = common::contract::refresh(&o.srv, &refresh).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_console_reads_need_admin_read_and_a_credential() {
    let o = orgs().await;
    let sessions = format!("/admin/users/{}/sessions", o.acme_user_id);
    let agent = create_agent(&o.srv, &o.acme_admin, None).await;
    let run = start_run(&o.srv, &o.acme_admin, &str_of(&agent, "agent_id")).await;
    let run_token = str_of(&run, "token");
    let (_, memory_key) = key_with(&o.srv, &o.acme_admin, &["memory:read"]).await;
    for path in ["/users", "/agents", sessions.as_str()] {
        // A user, an agent (never admin:*) and a key without admin:read: 403.
        for cred in [
            Cred::Bearer(&o.acme_user),
            Cred::Bearer(&run_token),
            Cred::Key(&memory_key),
        ] {
            assert_403_scope(get(&o.srv, path, cred).await, "admin:read").await;
        }
        assert_401(
            get(&o.srv, path, Cred::None).await,
            "missing_credentials",
            false,
        )
        .await;
        assert_401(
            get(&o.srv, path, Cred::Bearer("not.a.token")).await,
            "invalid_token",
            true,
        )
        .await;
    }
}

#[tokio::test]
async fn the_console_page_is_public_with_the_login_pages_headers() {
    let srv = Server::start();
    let login = srv.client().get(srv.url("/")).send().await.unwrap();
    let res = srv.client().get(srv.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    for name in [
        "content-type",
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
    ] {
        let got = header(res.headers(), name);
        assert!(got.is_some(), "{name} missing");
        assert_eq!(got, header(login.headers(), name), "{name}");
    }
    let csp = header(res.headers(), "content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>Portcullis admin</title>"), "{html}");
    // Data goes in as text: no markup is built from strings.
    assert!(!html.contains("innerHTML"), "the page uses innerHTML");
    // Not a prefix: `/admin/…` still needs credentials.
    let res = srv
        .client()
        .get(srv.url("/admin/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
