//! The audit log (issue 16, point 1) through the real binary over HTTP: every lifecycle event
//! appears in `GET /admin/audit` after the request that caused it, with its actor, org, target,
//! outcome, request id and client; another org's admin sees none of them; a graceful restart
//! (SIGTERM, then start again on the same database) loses none, not even those of the last
//! request before the signal; no item holds a password, token or key that was used. On SQLite,
//! and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::contract::{
    Cred, assert_401, assert_403_scope, delete, expect, get, patch, post, post_empty,
};
use common::{ADMIN_PASSWORD, Options, Server, assert_problem, fresh_postgres};
use serde_json::{Value, json};

const PASSWORD: &str = common::USER_PASSWORD;
const NEW_PASSWORD: &str = "a brand new password";

/// Every page of `/admin/audit` as `token`, through the cursor (pages of 7); newest first.
async fn audit_all(srv: &Server, token: &str, filter: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/audit?limit=7{filter}&cursor={c}"),
            None => format!("/admin/audit?limit=7{filter}"),
        };
        let page = expect(get(srv, &path, Cred::Bearer(token)).await, 200).await;
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= 7, "{page}");
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    items
}

/// The items of `action` (optionally about `target`).
fn of<'a>(items: &'a [Value], action: &str, target: Option<&str>) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|i| i["action"] == action && target.is_none_or(|t| i["target"] == t))
        .collect()
}

/// Polls the audit log (written behind, within a second or so) until `action` about `target`
/// is in it; that item.
async fn wait_for(srv: &Server, token: &str, action: &str, target: Option<&str>) -> Value {
    for _ in 0..100 {
        let items = audit_all(srv, token, &format!("&action={action}")).await;
        if let Some(i) = of(&items, action, target).first() {
            return (*i).clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{action} about {target:?} never appeared in /admin/audit");
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_owned()
}

/// One event's fields.
#[track_caller]
fn check(item: &Value, actor: Option<&str>, kind: &str, org: Option<&str>, outcome: &str) {
    assert_eq!(item["actor_id"].as_str(), actor, "{item}");
    assert_eq!(item["actor_kind"], kind, "{item}");
    assert_eq!(item["org_id"].as_str(), org, "{item}");
    assert_eq!(item["outcome"], outcome, "{item}");
    assert_eq!(item["client"], "127.0.0.1", "{item}");
    assert!(
        item["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{item}"
    );
    assert!(
        item["time"].as_u64().is_some_and(|t| t > 1_700_000_000),
        "{item}"
    );
}

struct Run {
    root: String,
    acme_admin: String,
    acme_admin_id: String,
    globex_admin: String,
    secrets: Vec<String>,
    /// The session of the last request before the restart (its logout).
    last_session: String,
}

/// Causes every event of the list, checking each appears after its request.
async fn every_event(srv: &Server) -> Run {
    let http = srv.client();
    let mut secrets = vec![
        ADMIN_PASSWORD.to_owned(),
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
    ];
    let root_login = srv.login(common::ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let root = str_of(&root_login, "access_token");
    secrets.push(str_of(&root_login, "refresh_token"));
    secrets.push(root.clone());
    let root_id = expect(get(srv, "/auth/whoami", Cred::Bearer(&root)).await, 200).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = wait_for(srv, &root, "login.succeeded", None).await;
    check(&e, Some(&root_id), "user", Some("default"), "success");

    // user.created, with the client's X-Request-Id kept.
    let res = http
        .post(srv.url("/users"))
        .bearer_auth(&root)
        .header("X-Request-Id", "audit-test-1")
        .json(&json!({"email": "boss@acme.test", "password": PASSWORD, "role": "admin", "org_id": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "audit-test-1");
    let acme_admin_id = str_of(&expect(res, 201).await, "id");
    let e = wait_for(srv, &root, "user.created", Some(&acme_admin_id)).await;
    check(&e, Some(&root_id), "user", Some("acme"), "success");
    assert_eq!(e["request_id"], "audit-test-1");

    let login = srv.login("boss@acme.test", PASSWORD).await;
    let acme_admin = str_of(&login, "access_token");
    secrets.extend([acme_admin.clone(), str_of(&login, "refresh_token")]);
    let e = wait_for(srv, &root, "login.succeeded", None).await;
    assert_eq!(e["action"], "login.succeeded");

    // login.refused: a known email names its user and org.
    let res = http
        .post(srv.url("/auth/login"))
        .json(&json!({"email": "boss@acme.test", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_credentials").await;
    let e = wait_for(srv, &root, "login.refused", Some(&acme_admin_id)).await;
    check(&e, None, "anonymous", Some("acme"), "failure");

    // login.throttled: an unknown email, past its ten checks a minute.
    for _ in 0..10 {
        let res = http
            .post(srv.url("/auth/login"))
            .json(&json!({"email": "ghost@nowhere.test", "password": "whatever it is"}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = http
        .post(srv.url("/auth/login"))
        .json(&json!({"email": "ghost@nowhere.test", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "rate_limited").await;
    let e = wait_for(srv, &root, "login.throttled", None).await;
    check(&e, None, "anonymous", None, "failure");

    // A user of acme, and its key: created, disabled, enabled, deleted.
    let body = json!({"email": "ada@acme.test", "password": PASSWORD, "role": "user"});
    let ada_id = str_of(
        &expect(
            post(srv, "/users", Cred::Bearer(&acme_admin), body).await,
            201,
        )
        .await,
        "id",
    );
    wait_for(srv, &root, "user.created", Some(&ada_id)).await;
    let ada_login = srv.login("ada@acme.test", PASSWORD).await;
    let ada = str_of(&ada_login, "access_token");
    secrets.extend([ada.clone(), str_of(&ada_login, "refresh_token")]);
    let key = expect(
        post(
            srv,
            "/api-keys",
            Cred::Bearer(&ada),
            json!({"name": "ci", "permissions": ["memory:read"]}),
        )
        .await,
        201,
    )
    .await;
    let key_id = str_of(&key, "key_id");
    secrets.push(str_of(&key, "api_key"));
    let e = wait_for(srv, &root, "api_key.created", Some(&key_id)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");
    let path = format!("/api-keys/{key_id}");
    expect(
        patch(srv, &path, Cred::Bearer(&ada), json!({"enabled": false})).await,
        200,
    )
    .await;
    let e = wait_for(srv, &root, "api_key.disabled", Some(&key_id)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");
    expect(
        patch(srv, &path, Cred::Bearer(&ada), json!({"enabled": true})).await,
        200,
    )
    .await;
    wait_for(srv, &root, "api_key.enabled", Some(&key_id)).await;
    let rerolled = expect(
        post(
            srv,
            &format!("{path}/reroll"),
            Cred::Bearer(&ada),
            json!({"overlap_seconds": 60}),
        )
        .await,
        201,
    )
    .await;
    secrets.push(str_of(&rerolled, "api_key"));
    let e = wait_for(srv, &root, "api_key.rerolled", Some(&key_id)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");
    expect(delete(srv, &path, Cred::Bearer(&ada)).await, 204).await;
    let e = wait_for(srv, &root, "api_key.deleted", Some(&key_id)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");

    // agent.created, run_token.minted, agent.terminated.
    let agent = expect(
        post(
            srv,
            "/agents",
            Cred::Bearer(&acme_admin),
            json!({"name": "bot"}),
        )
        .await,
        201,
    )
    .await;
    let agent_id = str_of(&agent, "agent_id");
    let e = wait_for(srv, &root, "agent.created", Some(&agent_id)).await;
    check(&e, Some(&acme_admin_id), "user", Some("acme"), "success");
    let run = expect(
        post(
            srv,
            &format!("/agents/{agent_id}/runs"),
            Cred::Bearer(&acme_admin),
            json!({"adapter_type": "claude"}),
        )
        .await,
        201,
    )
    .await;
    secrets.push(str_of(&run, "token"));
    let e = wait_for(srv, &root, "run_token.minted", Some(&agent_id)).await;
    check(&e, Some(&acme_admin_id), "user", Some("acme"), "success");
    expect(
        post_empty(
            srv,
            &format!("/agents/{agent_id}/terminate"),
            Cred::Bearer(&acme_admin),
        )
        .await,
        204,
    )
    .await;
    let e = wait_for(srv, &root, "agent.terminated", Some(&agent_id)).await;
    check(&e, Some(&acme_admin_id), "user", Some("acme"), "success");

    // org.forbidden: an org admin naming another org.
    let body = json!({"email": "eve@globex.test", "password": PASSWORD, "role": "user", "org_id": "globex"});
    assert_problem(
        post(srv, "/users", Cred::Bearer(&acme_admin), body).await,
        403,
        "org_forbidden",
    )
    .await;
    let e = wait_for(srv, &root, "org.forbidden", Some("globex")).await;
    check(&e, Some(&acme_admin_id), "user", Some("acme"), "failure");

    // sessions.revoked
    let path = format!("/admin/users/{ada_id}/revoke-sessions");
    expect(post_empty(srv, &path, Cred::Bearer(&acme_admin)).await, 204).await;
    let e = wait_for(srv, &root, "sessions.revoked", Some(&ada_id)).await;
    check(&e, Some(&acme_admin_id), "user", Some("acme"), "success");

    // refresh.reuse_detected: a spent refresh token after the grace (1 s here).
    let login = srv.login("ada@acme.test", PASSWORD).await;
    let first = str_of(&login, "refresh_token");
    let session = expect(
        get(
            srv,
            "/auth/whoami",
            Cred::Bearer(&str_of(&login, "access_token")),
        )
        .await,
        200,
    )
    .await;
    let sid = str_of(&session, "session_id");
    secrets.extend([first.clone(), str_of(&login, "access_token")]);
    let res = http
        .post(srv.url("/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    let next = expect(res, 200).await;
    secrets.extend([
        str_of(&next, "refresh_token"),
        str_of(&next, "access_token"),
    ]);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let res = http
        .post(srv.url("/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    assert_401(res, "token_revoked", true).await;
    let e = wait_for(srv, &root, "refresh.reuse_detected", Some(&sid)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "failure");

    // password.changed
    let ada = srv.access_token("ada@acme.test", PASSWORD).await;
    secrets.push(ada.clone());
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    expect(
        post(srv, "/auth/password", Cred::Bearer(&ada), body).await,
        204,
    )
    .await;
    let e = wait_for(srv, &root, "password.changed", Some(&ada_id)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");

    // Another org's admin.
    let body = json!({"email": "chief@globex.test", "password": PASSWORD, "role": "admin", "org_id": "globex"});
    expect(post(srv, "/users", Cred::Bearer(&root), body).await, 201).await;
    let globex_admin = srv.access_token("chief@globex.test", PASSWORD).await;
    secrets.push(globex_admin.clone());

    // logout: the last request before the restart; not waited for.
    let login = srv.login("ada@acme.test", NEW_PASSWORD).await;
    let last = str_of(&login, "access_token");
    secrets.extend([last.clone(), str_of(&login, "refresh_token")]);
    let last_session = str_of(
        &expect(get(srv, "/auth/whoami", Cred::Bearer(&last)).await, 200).await,
        "session_id",
    );

    // logout, of another session by its id (DELETE /auth/sessions/{id}): that session is the
    // target.
    let other = srv.login("ada@acme.test", NEW_PASSWORD).await;
    let other_token = str_of(&other, "access_token");
    secrets.extend([other_token.clone(), str_of(&other, "refresh_token")]);
    let other_session = str_of(
        &expect(
            get(srv, "/auth/whoami", Cred::Bearer(&other_token)).await,
            200,
        )
        .await,
        "session_id",
    );
    let path = format!("/auth/sessions/{other_session}");
    expect(delete(srv, &path, Cred::Bearer(&last)).await, 204).await;
    let e = wait_for(srv, &root, "logout", Some(&other_session)).await;
    check(&e, Some(&ada_id), "user", Some("acme"), "success");
    expect(
        post_empty(srv, "/auth/logout", Cred::Bearer(&last)).await,
        204,
    )
    .await;

    Run {
        root,
        acme_admin,
        acme_admin_id,
        globex_admin,
        secrets,
        last_session,
    }
}

const EVERY_ACTION: [&str; 17] = [
    "login.succeeded",
    "login.refused",
    "login.throttled",
    "logout",
    "refresh.reuse_detected",
    "password.changed",
    "sessions.revoked",
    "user.created",
    "api_key.created",
    "api_key.enabled",
    "api_key.disabled",
    "api_key.deleted",
    "api_key.rerolled",
    "agent.created",
    "agent.terminated",
    "run_token.minted",
    "org.forbidden",
];

/// What each org sees, and no secret anywhere.
async fn scoped_and_secret_free(srv: &Server, run: &Run) -> Vec<Value> {
    let all = audit_all(srv, &run.root, "").await;
    for action in EVERY_ACTION {
        assert!(
            !of(&all, action, None).is_empty(),
            "{action} missing for the superadmin"
        );
    }
    // Newest first.
    let times: Vec<u64> = all.iter().map(|i| i["time"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // The acme admin: acme's events only, every action of acme's among them.
    let acme = audit_all(srv, &run.acme_admin, "").await;
    assert!(acme.iter().all(|i| i["org_id"] == "acme"), "only acme's");
    for action in EVERY_ACTION {
        if action != "login.throttled" {
            assert!(
                !of(&acme, action, None).is_empty(),
                "{action} missing for acme's admin"
            );
        }
    }
    // Filters.
    let mine = audit_all(
        srv,
        &run.acme_admin,
        &format!("&actor_id={}", run.acme_admin_id),
    )
    .await;
    assert!(
        !mine.is_empty()
            && mine
                .iter()
                .all(|i| i["actor_id"] == run.acme_admin_id.as_str())
    );
    let future = audit_all(srv, &run.root, "&since=99999999999").await;
    assert!(future.is_empty());

    // globex's admin sees nothing of acme's, nor of no org.
    let globex = audit_all(srv, &run.globex_admin, "").await;
    assert!(!globex.is_empty(), "its own login");
    assert!(globex.iter().all(|i| i["org_id"] == "globex"), "{globex:?}");

    let text = serde_json::to_string(&all).unwrap();
    for s in &run.secrets {
        assert!(!text.contains(s.as_str()), "a secret in the audit log");
    }
    all
}

async fn bad_requests(srv: &Server, run: &Run) {
    let doc = expect(get(srv, "/openapi.json", Cred::None).await, 200).await;
    let op = &doc["paths"]["/admin/audit"]["get"];
    assert_eq!(op["operationId"], "getAuditLog", "{op}");
    for status in ["200", "400", "401", "403", "429", "503"] {
        assert!(op["responses"][status].is_object(), "{status}: {op}");
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("since=yesterday", "since"),
        ("since=9223372036854775808", "since"),
        ("action=", "action"),
    ] {
        let res = get(
            srv,
            &format!("/admin/audit?{query}"),
            Cred::Bearer(&run.root),
        )
        .await;
        let v = assert_problem(res, 400, "invalid_request").await;
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.starts_with(field), "{query}: {detail}");
        assert!(
            !detail.contains("ten")
                && !detail.contains("yesterday")
                && !detail.contains("not-a-cursor")
        );
    }
    // A cursor is a position, not a token: any `<time>.<id>` is one (here, before everything).
    let res = get(srv, "/admin/audit?cursor=0.0", Cred::Bearer(&run.root)).await;
    let page = expect(res, 200).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");
    assert_401(
        get(srv, "/admin/audit", Cred::None).await,
        "missing_credentials",
        false,
    )
    .await;
    assert_401(
        get(srv, "/admin/audit", Cred::Bearer("nope.nope.nope")).await,
        "invalid_token",
        true,
    )
    .await;
    let viewer = srv.user_token("val@acme.test", "viewer", "acme").await;
    assert_403_scope(
        get(srv, "/admin/audit", Cred::Bearer(&viewer)).await,
        "admin:read",
    )
    .await;
    // The default page is 50 items: past them, a cursor.
    for _ in 0..20 {
        let body = json!({"name": "n", "permissions": []});
        expect(
            post(srv, "/api-keys", Cred::Bearer(&run.root), body).await,
            201,
        )
        .await;
    }
    let total = loop {
        let n = audit_all(srv, &run.root, "").await.len();
        if n > 50 {
            break n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let page = expect(get(srv, "/admin/audit", Cred::Bearer(&run.root)).await, 200).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        50,
        "{total} events"
    );
    assert!(page["next_cursor"].is_string());
}

async fn whole_story(opts: Options) {
    let srv = Server::start_with(opts.clone());
    let run = every_event(&srv).await;
    let dir = srv.dir.clone();
    // SIGTERM at once: the logout's event is still queued, and must survive.
    let (status, tmp) = srv.terminate();
    assert!(status.success(), "a graceful stop: {status:?}");
    let srv = Server::start_with(Options {
        dir: Some(dir),
        ..opts
    });
    let all = scoped_and_secret_free(&srv, &run).await;
    let e = of(&all, "logout", Some(&run.last_session));
    assert_eq!(e.len(), 1, "the last event before the stop was kept");
    assert_eq!(e[0]["org_id"], "acme");
    bad_requests(&srv, &run).await;
    drop(srv);
    drop(tmp);
}

/// Events still queued at SIGTERM (the writer would wait an hour) are written before the
/// server exits: after a restart on the same database they are all there.
#[tokio::test]
async fn a_graceful_stop_writes_the_queued_events() {
    let opts = Options::default().env("PORTCULLIS_AUDIT_FLUSH_MS", "3600000");
    let srv = Server::start_with(opts.clone());
    let root = srv.admin_token().await;
    let mut keys = Vec::new();
    for _ in 0..5 {
        let body = json!({"name": "n", "permissions": []});
        let key = expect(
            post(&srv, "/api-keys", Cred::Bearer(&root), body).await,
            201,
        )
        .await;
        keys.push(str_of(&key, "key_id"));
    }
    let queued = audit_all(&srv, &root, "").await;
    assert!(queued.is_empty(), "still queued: {queued:?}");
    let dir = srv.dir.clone();
    let (status, tmp) = srv.terminate();
    assert!(status.success(), "a graceful stop: {status:?}");
    let srv = Server::start_with(Options {
        dir: Some(dir),
        ..opts
    });
    let root = srv.admin_token().await;
    let all = audit_all(&srv, &root, "").await;
    for key in &keys {
        assert_eq!(
            of(&all, "api_key.created", Some(key)).len(),
            1,
            "{key}: {all:?}"
        );
    }
    assert_eq!(
        of(&all, "login.succeeded", None).len(),
        1,
        "the first login; the second is queued"
    );
    drop(tmp);
}

fn opts() -> Options {
    Options::default().env("AUTH_REFRESH_REUSE_GRACE_SECONDS", "1")
}

#[tokio::test]
async fn every_event_is_audited_scoped_and_survives_a_restart_on_sqlite() {
    whole_story(opts()).await;
}

#[tokio::test]
async fn every_event_is_audited_scoped_and_survives_a_restart_on_postgres() {
    let Some(db) = fresh_postgres("audit").await else {
        return;
    };
    whole_story(opts().env("DATABASE_URL", &db)).await;
}
