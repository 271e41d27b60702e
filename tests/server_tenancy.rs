//! Organisations, key governance and bad input (issue 12, points 1, 2 and 4), through the real
//! binary over HTTP. Each test is a hole a red team found: an org admin administering other
//! orgs, keys outliving or out-rating their parents, a viewer minting agent keys, a
//! zero-permission key deleting its owner's admin key, NUL characters turning into 503s on
//! PostgreSQL, and 400s echoing what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::contract::{Cred, call, delete, get, patch, post, post_empty, terminate_agent, whoami};
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, assert_problem, fresh_postgres};
use reqwest::{Method, Response};
use serde_json::{Value, json};

const PASSWORD: &str = common::USER_PASSWORD;

async fn expect(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Creates a user (as `by`) and logs it in; its access token.
async fn user(srv: &Server, by: &str, email: &str, role: &str, org: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD, "role": role, "org_id": org});
    expect(post(srv, "/users", Cred::Bearer(by), body).await, 201).await;
    srv.access_token(email, PASSWORD).await
}

async fn new_key(srv: &Server, cred: Cred<'_>, body: Value) -> Value {
    expect(post(srv, "/api-keys", cred, body).await, 201).await
}

async fn new_agent(srv: &Server, by: &str, org: Option<&str>) -> String {
    let body = match org {
        Some(o) => json!({"name": "bot", "org_id": o}),
        None => json!({"name": "bot"}),
    };
    let v = expect(post(srv, "/agents", Cred::Bearer(by), body).await, 201).await;
    v["agent_id"].as_str().unwrap().to_owned()
}

/// An org admin of `acme`, beside the superadmin, with a user in `globex`.
struct Orgs {
    srv: Server,
    root: String,
    acme_admin: String,
    globex_user: String,
    globex_user_id: String,
}

async fn orgs() -> Orgs {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let acme_admin = user(&srv, &root, "boss@acme.test", "admin", "acme").await;
    let globex_user = user(&srv, &root, "pat@globex.test", "user", "globex").await;
    let globex_user_id = whoami(&srv, Cred::Bearer(&globex_user)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Orgs {
        srv,
        root,
        acme_admin,
        globex_user,
        globex_user_id,
    }
}

// ---- 1. Organisations ----

#[tokio::test]
async fn the_first_user_is_a_superadmin_who_acts_in_every_org() {
    let o = orgs().await;
    let me = whoami(&o.srv, Cred::Bearer(&o.root)).await;
    assert_eq!(me["org_id"], "default");
    let login = o.srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let claims = payload(login["access_token"].as_str().unwrap());
    assert_eq!(claims["role"], "superadmin");
    // It made users in two orgs above; it may also give the role superadmin.
    let body = json!({"email": "second@root.test", "password": PASSWORD, "role": "superadmin", "org_id": "globex"});
    expect(
        post(&o.srv, "/users", Cred::Bearer(&o.root), body).await,
        201,
    )
    .await;
}

#[tokio::test]
async fn an_org_admin_naming_another_org_is_403_org_forbidden() {
    let o = orgs().await;
    let body = json!({"email": "mole@globex.test", "password": PASSWORD, "role": "admin", "org_id": "globex"});
    let res = post(&o.srv, "/users", Cred::Bearer(&o.acme_admin), body).await;
    assert_problem(res, 403, "org_forbidden").await;
    let body = json!({"name": "bot", "org_id": "globex"});
    let res = post(&o.srv, "/agents", Cred::Bearer(&o.acme_admin), body).await;
    assert_problem(res, 403, "org_forbidden").await;
    // Its own org, named or not, is fine.
    let body =
        json!({"email": "ann@acme.test", "password": PASSWORD, "role": "user", "org_id": "acme"});
    let v = expect(
        post(&o.srv, "/users", Cred::Bearer(&o.acme_admin), body).await,
        201,
    )
    .await;
    assert_eq!(v["org_id"], "acme");
    assert!(!new_agent(&o.srv, &o.acme_admin, None).await.is_empty());
}

#[tokio::test]
async fn only_a_caller_acting_in_every_org_may_give_superadmin() {
    let o = orgs().await;
    let body = json!({"email": "up@acme.test", "password": PASSWORD, "role": "superadmin"});
    let res = post(&o.srv, "/users", Cred::Bearer(&o.acme_admin), body).await;
    assert_problem(res, 403, "org_forbidden").await;
}

#[tokio::test]
async fn another_orgs_agent_is_404_for_runs_and_terminate() {
    let o = orgs().await;
    let globex_agent = new_agent(&o.srv, &o.root, Some("globex")).await;
    let res = post(
        &o.srv,
        &format!("/agents/{globex_agent}/runs"),
        Cred::Bearer(&o.acme_admin),
        json!({"adapter_type": "x"}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    let res = terminate_agent(&o.srv, Cred::Bearer(&o.acme_admin), &globex_agent).await;
    assert_problem(res, 404, "not_found").await;
    // The agent lives on: the superadmin still mints for it.
    let run = post(
        &o.srv,
        &format!("/agents/{globex_agent}/runs"),
        Cred::Bearer(&o.root),
        json!({"adapter_type": "x"}),
    )
    .await;
    let run = expect(run, 201).await;
    let agent = whoami(&o.srv, Cred::Bearer(run["token"].as_str().unwrap())).await;
    assert_eq!(agent["org_id"], "globex");
}

#[tokio::test]
async fn another_orgs_user_is_404_for_revoke_sessions_and_keeps_its_session() {
    let o = orgs().await;
    let path = format!("/admin/users/{}/revoke-sessions", o.globex_user_id);
    let res = post_empty(&o.srv, &path, Cred::Bearer(&o.acme_admin)).await;
    assert_problem(res, 404, "not_found").await;
    whoami(&o.srv, Cred::Bearer(&o.globex_user)).await;
    // The superadmin acts in globex too.
    expect(post_empty(&o.srv, &path, Cred::Bearer(&o.root)).await, 204).await;
    let res = get(&o.srv, "/auth/whoami", Cred::Bearer(&o.globex_user)).await;
    assert_problem(res, 401, "token_revoked").await;
}

#[tokio::test]
async fn stats_count_the_callers_org_and_every_org_for_a_superadmin() {
    let o = orgs().await;
    new_agent(&o.srv, &o.root, Some("globex")).await;
    new_agent(&o.srv, &o.acme_admin, None).await;
    new_key(
        &o.srv,
        Cred::Bearer(&o.globex_user),
        json!({"name": "g", "permissions": []}),
    )
    .await;
    let acme = expect(
        get(&o.srv, "/admin/stats", Cred::Bearer(&o.acme_admin)).await,
        200,
    )
    .await;
    assert_eq!(
        acme,
        json!({"users": 1, "api_keys": 0, "agents": 1, "active_sessions": 1})
    );
    let all = expect(
        get(&o.srv, "/admin/stats", Cred::Bearer(&o.root)).await,
        200,
    )
    .await;
    assert_eq!(all["users"], 3);
    assert_eq!(all["api_keys"], 1);
    assert_eq!(all["agents"], 2);
    assert!(all["active_sessions"].as_u64().unwrap() >= 3, "{all}");
}

#[tokio::test]
async fn a_superadmins_api_key_acts_in_its_owners_org_only() {
    let o = orgs().await;
    let key = new_key(
        &o.srv,
        Cred::Bearer(&o.root),
        json!({"name": "ops", "permissions": ["admin:read", "admin:write"]}),
    )
    .await;
    let key = key["api_key"].as_str().unwrap();
    let body =
        json!({"email": "k@globex.test", "password": PASSWORD, "role": "user", "org_id": "globex"});
    let res = post(&o.srv, "/users", Cred::Key(key), body).await;
    assert_problem(res, 403, "org_forbidden").await;
    let path = format!("/admin/users/{}/revoke-sessions", o.globex_user_id);
    let res = post_empty(&o.srv, &path, Cred::Key(key)).await;
    assert_problem(res, 404, "not_found").await;
}

// ---- 2. Key governance ----

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_child_of_a_rate_limited_key_is_limited_no_higher() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let parent = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "p", "permissions": ["memory:list"], "rate_limit_per_minute": 2}),
    )
    .await;
    let parent = parent["api_key"].as_str().unwrap().to_owned();
    // Asked for nothing, and asked for more: both get the parent's limit.
    let child = new_key(
        &srv,
        Cred::Key(&parent),
        json!({"name": "c", "permissions": ["memory:list"]}),
    )
    .await;
    let greedy = new_key(
        &srv,
        Cred::Key(&parent),
        json!({"name": "g", "permissions": ["memory:list"], "rate_limit_per_minute": 1000}),
    )
    .await;
    let child = child["api_key"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            get(&srv, "/api/v1/memories", Cred::Key(child))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "the child runs at its parent's 2 a minute"
    );
    let res = get(
        &srv,
        "/api/v1/memories",
        Cred::Key(greedy["api_key"].as_str().unwrap()),
    )
    .await;
    assert_eq!(res.status(), 200);
    // The parent's two requests of this minute went on making the children; its owner lists.
    let listed = expect(get(&srv, "/api-keys", Cred::Bearer(&root)).await, 200).await;
    let limits: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] != "p")
        .map(|k| k["rate_limit_per_minute"].clone())
        .collect();
    assert_eq!(limits, [json!(2), json!(2)]);
}

#[tokio::test]
async fn a_child_of_an_expiring_key_dies_with_its_parent() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let parent = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "p", "permissions": ["memory:list"], "expires_in_seconds": 2}),
    )
    .await;
    let parent_exp = parent["expires_at"].as_u64().unwrap();
    let key = parent["api_key"].as_str().unwrap().to_owned();
    let child = new_key(
        &srv,
        Cred::Key(&key),
        json!({"name": "c", "permissions": ["memory:list"]}),
    )
    .await;
    assert_eq!(child["expires_at"].as_u64(), Some(parent_exp));
    let longer = new_key(
        &srv,
        Cred::Key(&key),
        json!({"name": "l", "permissions": ["memory:list"], "expires_in_seconds": 86400}),
    )
    .await;
    assert_eq!(longer["expires_at"].as_u64(), Some(parent_exp));
    let child = child["api_key"].as_str().unwrap();
    expect(get(&srv, "/api/v1/memories", Cred::Key(child)).await, 200).await;
    // The real binary's clock: wait out the parent's two seconds.
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let res = get(&srv, "/api/v1/memories", Cred::Key(child)).await;
    assert_problem(res, 401, "api_key_expired").await;
}

#[tokio::test]
async fn a_key_made_with_a_run_token_expires_with_the_token() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let agent = new_agent(&srv, &root, None).await;
    let run = post(
        &srv,
        &format!("/agents/{agent}/runs"),
        Cred::Bearer(&root),
        json!({"adapter_type": "x"}),
    )
    .await;
    let token = expect(run, 201).await["token"].as_str().unwrap().to_owned();
    let exp = payload(&token)["exp"].as_u64().unwrap();
    let key = new_key(
        &srv,
        Cred::Bearer(&token),
        json!({"name": "k", "permissions": ["memory:read"]}),
    )
    .await;
    assert_eq!(key["expires_at"].as_u64(), Some(exp));
    let key = new_key(
        &srv,
        Cred::Bearer(&token),
        json!({"name": "k", "permissions": ["memory:read"], "expires_in_seconds": 315_360_000}),
    )
    .await;
    assert_eq!(key["expires_at"].as_u64(), Some(exp));
}

#[tokio::test]
async fn a_viewer_cannot_make_a_key_that_acts_as_an_agent() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let viewer = user(&srv, &root, "v@default.test", "viewer", "default").await;
    let agent = new_agent(&srv, &root, None).await;
    let res = post(
        &srv,
        "/api-keys",
        Cred::Bearer(&viewer),
        json!({"name": "x", "permissions": ["memory:read"], "agent_id": agent}),
    )
    .await;
    let res_headers = res.headers().clone();
    assert_problem(res, 403, "insufficient_permissions").await;
    assert_eq!(
        res_headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="admin:write""#
    );
}

#[tokio::test]
async fn an_agent_key_holds_at_most_what_agents_hold() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let agent = new_agent(&srv, &root, None).await;
    let res = post(
        &srv,
        "/api-keys",
        Cred::Bearer(&root),
        json!({"name": "x", "permissions": ["admin:write"], "agent_id": agent}),
    )
    .await;
    assert_problem(res, 403, "insufficient_permissions").await;
    let ok = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "x", "permissions": ["memory:read"], "agent_id": agent}),
    )
    .await;
    let me = whoami(&srv, Cred::Key(ok["api_key"].as_str().unwrap())).await;
    assert_eq!(
        (me["kind"].as_str(), me["id"].as_str()),
        (Some("agent"), Some(agent.as_str()))
    );
}

#[tokio::test]
async fn another_orgs_agent_id_is_404_for_a_key() {
    let o = orgs().await;
    let globex_agent = new_agent(&o.srv, &o.root, Some("globex")).await;
    let res = post(
        &o.srv,
        "/api-keys",
        Cred::Bearer(&o.acme_admin),
        json!({"name": "x", "permissions": ["memory:read"], "agent_id": globex_agent}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn a_zero_permission_key_cannot_see_or_delete_its_owners_other_keys() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let admin_key = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "admin", "permissions": ["admin:read", "admin:write"]}),
    )
    .await;
    let admin_key_id = admin_key["key_id"].as_str().unwrap().to_owned();
    let zero = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "zero", "permissions": []}),
    )
    .await;
    let zero = zero["api_key"].as_str().unwrap().to_owned();
    let path = format!("/api-keys/{admin_key_id}");
    let res = delete(&srv, &path, Cred::Key(&zero)).await;
    assert_problem(res, 404, "not_found").await;
    let res = patch(&srv, &path, Cred::Key(&zero), json!({"enabled": false})).await;
    assert_problem(res, 404, "not_found").await;
    let listed = expect(get(&srv, "/api-keys", Cred::Key(&zero)).await, 200).await;
    assert_eq!(listed, json!([]));
    // The admin key still works; the zero key manages what it made.
    expect(
        get(
            &srv,
            "/admin/stats",
            Cred::Key(admin_key["api_key"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    let child = new_key(
        &srv,
        Cred::Key(&zero),
        json!({"name": "child", "permissions": []}),
    )
    .await;
    let listed = expect(get(&srv, "/api-keys", Cred::Key(&zero)).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let child_path = format!("/api-keys/{}", child["key_id"].as_str().unwrap());
    expect(delete(&srv, &child_path, Cred::Key(&zero)).await, 204).await;
}

#[tokio::test]
async fn a_user_manages_the_keys_its_keys_made_and_no_one_elses() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let ann = user(&srv, &root, "ann@default.test", "user", "default").await;
    let bob = user(&srv, &root, "bob@default.test", "user", "default").await;
    let k = new_key(
        &srv,
        Cred::Bearer(&ann),
        json!({"name": "k", "permissions": ["memory:read"]}),
    )
    .await;
    let grandchild = new_key(
        &srv,
        Cred::Key(k["api_key"].as_str().unwrap()),
        json!({"name": "gc", "permissions": []}),
    )
    .await;
    let listed = expect(get(&srv, "/api-keys", Cred::Bearer(&ann)).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let path = format!("/api-keys/{}", grandchild["key_id"].as_str().unwrap());
    let res = delete(&srv, &path, Cred::Bearer(&bob)).await;
    assert_problem(res, 404, "not_found").await;
    expect(get(&srv, "/api-keys", Cred::Bearer(&bob)).await, 200).await;
    expect(delete(&srv, &path, Cred::Bearer(&ann)).await, 204).await;
}

#[tokio::test]
async fn a_user_only_route_called_by_a_key_is_403_wrong_actor_kind() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let key = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "k", "permissions": ["session:read"]}),
    )
    .await;
    let res = post_empty(
        &srv,
        "/auth/logout",
        Cred::Key(key["api_key"].as_str().unwrap()),
    )
    .await;
    let www = res.headers().get("www-authenticate").cloned();
    assert_problem(res, 403, "wrong_actor_kind").await;
    assert!(
        www.is_none(),
        "no insufficient_scope challenge for a kind mismatch: {www:?}"
    );
}

// ---- 4. Bad input ----

/// Every text field and path id, with a NUL in it: 400 `invalid_request`, naming the field.
async fn nul_everywhere_is_400(srv: &Server) {
    let client = srv.client();
    let res = client
        .post(srv.url("/auth/login"))
        .json(&json!({"email": "a\u{0}@b.c", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    let v = assert_problem(res, 400, "invalid_request").await;
    assert_eq!(v["detail"], "email: must not contain a NUL character");
    let root = srv.admin_token().await;
    let auth = Cred::Bearer(&root);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"title": "t\u{0}"})),
        ),
        (
            Method::POST,
            "/api/v1/memories",
            Some(json!({"content": "c\u{0}"})),
        ),
        (
            Method::POST,
            "/api-keys",
            Some(json!({"name": "n\u{0}", "permissions": []})),
        ),
        (
            Method::POST,
            "/users",
            Some(json!({"email": "x@y.z", "password": "p\u{0}ssword1", "role": "user"})),
        ),
        (Method::GET, "/api/v1/memories/search?q=a%00b", None),
        (Method::GET, "/api/v1/memories/a%00b", None),
        (Method::DELETE, "/api/v1/sessions/%00", None),
        (Method::POST, "/agents/a%00/terminate", None),
        (
            Method::PATCH,
            "/api-keys/k%00",
            Some(json!({"enabled": false})),
        ),
    ] {
        let res = call(srv, method.clone(), path, auth, body).await;
        let v = assert_problem(res, 400, "invalid_request").await;
        assert!(
            v["detail"].as_str().unwrap().contains("NUL"),
            "{method} {path}: {v}"
        );
    }
}

#[tokio::test]
async fn a_nul_in_any_text_is_400_on_sqlite() {
    nul_everywhere_is_400(&Server::start()).await;
}

#[tokio::test]
async fn a_nul_in_any_text_is_400_on_postgres() {
    let Some(db) = fresh_postgres("tenancy").await else {
        return;
    };
    nul_everywhere_is_400(&Server::start_with(
        Options::default().env("DATABASE_URL", &db),
    ))
    .await;
}

#[tokio::test]
async fn a_400_names_the_field_and_never_echoes_the_value() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    let res = post(
        &srv,
        "/api-keys",
        Cred::Bearer(&root),
        json!({"name": "n", "permissions": [], "expires_in_seconds": "31415926535"}),
    )
    .await;
    let v = assert_problem(res, 400, "invalid_request").await;
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("expires_in_seconds: wrong type"),
        "{detail}"
    );
    assert!(!detail.contains("31415926535"), "{detail}");
    let res = post(
        &srv,
        "/api-keys",
        Cred::Bearer(&root),
        json!({"name": "n", "permissions": [], "rate_limit_per_minute": 31_415_926_535_u64}),
    )
    .await;
    let v = assert_problem(res, 400, "invalid_request").await;
    assert!(
        !v["detail"].as_str().unwrap().contains("31415926535"),
        "{v}"
    );
    let res = srv
        .client()
        .post(srv.url("/auth/login"))
        .json(&json!({"email": "a@b.c", "password": ["long password 123"]}))
        .send()
        .await
        .unwrap();
    let v = assert_problem(res, 400, "invalid_request").await;
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with("password: "), "{detail}");
    assert!(!detail.contains("long password"), "{detail}");
    let res = post(
        &srv,
        "/users",
        Cred::Bearer(&root),
        json!({"email": "a@b.c", "password": "long password 123", "role": "emperor-of-everything"}),
    )
    .await;
    let v = assert_problem(res, 400, "invalid_request").await;
    assert!(!v["detail"].as_str().unwrap().contains("emperor"), "{v}");
    let res = post(
        &srv,
        "/api-keys",
        Cred::Bearer(&root),
        json!({"name": "n", "permissions": ["memory:own-everything"]}),
    )
    .await;
    let v = assert_problem(res, 400, "invalid_request").await;
    assert!(
        !v["detail"].as_str().unwrap().contains("own-everything"),
        "{v}"
    );
}

#[tokio::test]
async fn out_of_range_key_fields_are_400() {
    let srv = Server::start();
    let root = srv.admin_token().await;
    for body in [
        json!({"name": "n", "permissions": [], "expires_in_seconds": i64::MAX}),
        json!({"name": "n", "permissions": [], "expires_in_seconds": 0}),
        json!({"name": "n", "permissions": [], "rate_limit_per_minute": u32::MAX}),
        json!({"name": "n", "permissions": [], "rate_limit_per_minute": 0}),
    ] {
        let res = post(&srv, "/api-keys", Cred::Bearer(&root), body.clone()).await;
        assert_problem(res, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn the_board_manages_the_keys_it_made_and_no_others() {
    let srv = Server::start_with(Options::default().env("AUTH_FALLBACK", "board"));
    let root = srv.admin_token().await;
    let users_key = new_key(
        &srv,
        Cred::Bearer(&root),
        json!({"name": "u", "permissions": []}),
    )
    .await;
    let board = |method: Method, path: &str, body: Option<Value>| {
        let mut rb = srv.client().request(method, srv.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    let made = expect(
        board(
            Method::POST,
            "/api-keys",
            Some(json!({"name": "b", "permissions": ["memory:read"]})),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    let listed = expect(board(Method::GET, "/api-keys", None).await.unwrap(), 200).await;
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].clone())
        .collect();
    assert_eq!(ids, [made["key_id"].clone()]);
    let theirs = format!("/api-keys/{}", users_key["key_id"].as_str().unwrap());
    let res = board(Method::DELETE, &theirs, None).await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let mine = format!("/api-keys/{}", made["key_id"].as_str().unwrap());
    expect(board(Method::DELETE, &mine, None).await.unwrap(), 204).await;
}
