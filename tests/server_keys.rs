//! The sample server's HTTP contract (`/work/shared/CONTRACT.md`), end to end: every test starts
//! the real `portcullis` binary on SQLite in a temporary directory and talks HTTP to it.
//! The contract's tests are split by concern over the `server_*` files named in
//! `common::contract`; this one: API keys: shown once, listed, scoped, disabled, deleted, expired, rate limited.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Server, assert_problem};

use common::contract::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_key_is_shown_once_and_never_listed() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let before = now();
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "deploy", "permissions": ["session:list", "session:read"]}),
    )
    .await;
    let key = str_of(&created, "api_key");
    let key_id = str_of(&created, "key_id");
    assert!(key.starts_with("ck_"), "{key}");
    let prefix = str_of(&created, "prefix");
    assert!(key.starts_with(&prefix), "prefix {prefix} of {key}");
    assert!(prefix.len() < key.len());
    assert_eq!(
        perms(&created),
        sorted(&["session:list", "session:read"]),
        "{created}"
    );
    assert!(created["expires_at"].is_null(), "{created}");
    // The key works.
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;

    let res = get(&srv, "/api-keys", Cred::Bearer(&admin)).await;
    let text = res.text().await.unwrap();
    assert!(!text.contains(&key), "the list shows the key: {text}");
    assert!(
        !text.contains(&key[prefix.len()..]),
        "the list shows the key's secret: {text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {text}"));
    assert_eq!(items.len(), 1, "{text}");
    let item = &items[0];
    assert_eq!(item["key_id"], key_id.as_str(), "{item}");
    assert_eq!(item["name"], "deploy", "{item}");
    assert_eq!(item["prefix"], prefix.as_str(), "{item}");
    assert_eq!(item["enabled"], true, "{item}");
    assert!(item["expires_at"].is_null(), "{item}");
    assert!(item["agent_id"].is_null(), "{item}");
    assert!(item["rate_limit_per_minute"].is_null(), "{item}");
    let created_at = item["created_at"].as_u64().unwrap();
    assert!(
        created_at + 5 >= before && created_at <= now() + 5,
        "{item}"
    );
    assert!(
        item["last_used_at"].is_null() || item["last_used_at"].is_u64(),
        "{item}"
    );
    assert_eq!(perms(item), sorted(&["session:list", "session:read"]));
    for field in item.as_object().unwrap().keys() {
        assert!(
            !field.contains("hash") && field != "api_key" && field != "key" && field != "secret",
            "the list has a field {field}: {item}"
        );
    }
    assert_log_free_of(&srv, &[&key]);
}

#[tokio::test]
async fn api_key_listing_shows_only_the_callers_keys() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (admin_key_id, _) = key_with(&srv, &admin, &["session:read"]).await;
    let (_, user) = new_user(&srv, &admin, "ida@example.com", "user", "default").await;
    let (user_key_id, _) = key_with(&srv, &user, &["memory:read"]).await;
    let mine = expect(get(&srv, "/api-keys", Cred::Bearer(&user)).await, 200).await;
    assert_eq!(ids(&mine, "key_id"), vec![user_key_id.clone()], "{mine}");
    let theirs = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(
        ids(&theirs, "key_id"),
        vec![admin_key_id.clone()],
        "{theirs}"
    );
    // Another owner's key: 404, and it stays as it was.
    assert_problem(
        set_key_enabled(&srv, Cred::Bearer(&user), &admin_key_id, false).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        delete(
            &srv,
            &format!("/api-keys/{admin_key_id}"),
            Cred::Bearer(&user),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let theirs = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(theirs[0]["enabled"], true, "{theirs}");
}

/// As `cred`, the key `within` is created (201) and the key `beyond` is a 403 naming the
/// `missing` permission.
async fn within_and_beyond(
    srv: &Server,
    cred: Cred<'_>,
    within: Value,
    beyond: Value,
    missing: &str,
) {
    create_key(srv, cred, within).await;
    assert_403_scope(post(srv, "/api-keys", cred, beyond).await, missing).await;
}

#[tokio::test]
async fn api_key_asking_for_more_than_the_caller_holds_is_forbidden() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, viewer) = new_user(&srv, &admin, "jan@example.com", "viewer", "default").await;
    // A subset is fine; one permission more is a 403 naming it.
    within_and_beyond(
        &srv,
        Cred::Bearer(&viewer),
        json!({"name": "ro", "permissions": ["memory:read", "session:list"]}),
        json!({"name": "rw", "permissions": ["memory:read", "session:create"]}),
        "session:create",
    )
    .await;
    // A key creating a key: the same rule against the key's own permissions.
    let (_, key) = key_with(&srv, &admin, &["memory:read"]).await;
    within_and_beyond(
        &srv,
        Cred::Key(&key),
        json!({"name": "child", "permissions": ["memory:read"]}),
        json!({"name": "child", "permissions": ["memory:read", "memory:create"]}),
        "memory:create",
    )
    .await;
    // An unknown permission is malformed input.
    assert_problem(
        post(
            &srv,
            "/api-keys",
            Cred::Bearer(&admin),
            json!({"name": "x", "permissions": ["memory:fly"]}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn api_key_permissions_are_enforced_with_the_missing_scope() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["memory:read"]).await;
    assert_403_scope(
        post(
            &srv,
            "/api/v1/sessions",
            Cred::Key(&key),
            json!({"title": "t"}),
        )
        .await,
        "session:create",
    )
    .await;
    assert_403_scope(
        get(&srv, "/admin/stats", Cred::Key(&key)).await,
        "admin:read",
    )
    .await;
    assert_403_scope(
        get(&srv, "/api/v1/memories", Cred::Key(&key)).await,
        "memory:list",
    )
    .await;
}

#[tokio::test]
async fn disabled_api_key_is_api_key_disabled_until_enabled_again() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (key_id, key) = key_with(&srv, &admin, &["session:list"]).await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    let off = expect(
        set_key_enabled(&srv, Cred::Bearer(&admin), &key_id, false).await,
        200,
    )
    .await;
    assert_eq!(off["enabled"], false, "{off}");
    assert_eq!(off["key_id"], key_id.as_str(), "{off}");
    assert!(!off.to_string().contains(&key), "{off}");
    let body = assert_get_401(
        &srv,
        "/api/v1/sessions",
        Cred::Key(&key),
        "api_key_disabled",
    )
    .await;
    assert!(!body.to_string().contains(&key));
    assert_get_401(
        &srv,
        "/api/v1/sessions",
        Cred::Bearer(&key),
        "api_key_disabled",
    )
    .await;
    let on = expect(
        set_key_enabled(&srv, Cred::Bearer(&admin), &key_id, true).await,
        200,
    )
    .await;
    assert_eq!(on["enabled"], true, "{on}");
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
}

#[tokio::test]
async fn deleted_api_key_is_invalid_api_key_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (key_id, key) = key_with(&srv, &admin, &["session:list"]).await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    expect(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&admin)).await,
        204,
    )
    .await;
    let body = assert_get_401(&srv, "/api/v1/sessions", Cred::Key(&key), "invalid_api_key").await;
    assert!(!body.to_string().contains(&key));
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert!(ids(&list, "key_id").is_empty(), "{list}");
    assert_problem(
        delete(&srv, &format!("/api-keys/{key_id}"), Cred::Bearer(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn malformed_or_unknown_api_keys_are_invalid_api_key() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (_, key) = key_with(&srv, &admin, &["session:list"]).await;
    // One character changed: a checksum failure or an unknown key.
    let last = key.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &key[..key.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    for bad in [
        "ck_garbage",
        "ck_",
        flipped.as_str(),
        "ck_0000000000000000000000000000000000000000",
    ] {
        let body =
            assert_get_401(&srv, "/api/v1/sessions", Cred::Key(bad), "invalid_api_key").await;
        if bad.len() > 5 {
            assert!(!body.to_string().contains(bad), "{body}");
        }
        assert_get_401(
            &srv,
            "/api/v1/sessions",
            Cred::Bearer(bad),
            "invalid_api_key",
        )
        .await;
    }
}

#[tokio::test]
async fn expired_api_key_is_api_key_expired() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let before = now();
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "short-lived", "permissions": ["session:list"], "expires_in_seconds": 1}),
    )
    .await;
    let expires_at = created["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > before && expires_at <= now() + 2,
        "expires_at {expires_at}"
    );
    let key = str_of(&created, "api_key");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_get_401(&srv, "/api/v1/sessions", Cred::Key(&key), "api_key_expired").await;
}

#[tokio::test]
async fn api_key_over_its_rate_limit_is_429_with_headers() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "slow", "permissions": ["session:list"], "rate_limit_per_minute": 2}),
    )
    .await;
    let key = str_of(&created, "api_key");
    for _ in 0..2 {
        expect(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 200).await;
    }
    assert_429(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await, 2).await;
    // The limit is the key's: the admin's own requests go on.
    expect(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&admin)).await,
        200,
    )
    .await;
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(list[0]["rate_limit_per_minute"], 2, "{list}");
}

/// `POST /api-keys/{key_id}/reroll` with `overlap_seconds`.
async fn reroll(srv: &Server, cred: Cred<'_>, key_id: &str, overlap: Value) -> reqwest::Response {
    post(
        srv,
        &format!("/api-keys/{key_id}/reroll"),
        cred,
        json!({ "overlap_seconds": overlap }),
    )
    .await
}

#[tokio::test]
async fn rerolled_api_key_old_secret_works_for_the_overlap_then_is_invalid() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "rolling", "permissions": ["session:list", "session:read"],
               "expires_in_seconds": 3600, "rate_limit_per_minute": 1000}),
    )
    .await;
    let key_id = str_of(&created, "key_id");
    let old = str_of(&created, "api_key");
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&old)).await, 200).await;
    let rolled = expect(
        reroll(&srv, Cred::Bearer(&admin), &key_id, json!(2)).await,
        201,
    )
    .await;
    assert_eq!(rolled["key_id"], key_id.as_str(), "{rolled}");
    assert_eq!(perms(&rolled), perms(&created), "{rolled}");
    assert_eq!(rolled["expires_at"], created["expires_at"], "{rolled}");
    let new = str_of(&rolled, "api_key");
    assert_ne!(new, old);
    assert!(new.starts_with(&str_of(&rolled, "prefix")), "{rolled}");
    // During the overlap both work, as the same key.
    for secret in [&old, &new] {
        expect(get(&srv, "/api/v1/sessions", Cred::Key(secret)).await, 200).await;
        assert_eq!(whoami(&srv, Cred::Key(secret)).await["id"], key_id.as_str());
    }
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_get_401(&srv, "/api/v1/sessions", Cred::Key(&old), "invalid_api_key").await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&new)).await, 200).await;
    // Still one key, with its limits and the new prefix.
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(ids(&list, "key_id"), vec![key_id.clone()], "{list}");
    assert_eq!(list[0]["prefix"], rolled["prefix"], "{list}");
    assert_eq!(list[0]["rate_limit_per_minute"], 1000, "{list}");
    assert_log_free_of(&srv, &[&old, &new]);
}

#[tokio::test]
async fn rerolled_api_key_without_overlap_kills_the_old_secret_at_once() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (key_id, old) = key_with(&srv, &admin, &["session:list"]).await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&old)).await, 200).await;
    let rolled = expect(
        reroll(&srv, Cred::Bearer(&admin), &key_id, json!(0)).await,
        201,
    )
    .await;
    let new = str_of(&rolled, "api_key");
    assert_get_401(&srv, "/api/v1/sessions", Cred::Key(&old), "invalid_api_key").await;
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&new)).await, 200).await;
}

#[tokio::test]
async fn rerolling_another_users_key_is_not_found_and_a_bad_overlap_is_invalid() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let (admin_key_id, admin_key) = key_with(&srv, &admin, &["session:list"]).await;
    let (_, user) = new_user(&srv, &admin, "ida@example.com", "user", "default").await;
    assert_problem(
        reroll(&srv, Cred::Bearer(&user), &admin_key_id, json!(10)).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        reroll(&srv, Cred::Bearer(&admin), "no-such-key", json!(10)).await,
        404,
        "not_found",
    )
    .await;
    for bad in [
        json!(-1),
        json!(86_401),
        json!(2.5),
        json!("10"),
        Value::Null,
    ] {
        let body = assert_problem(
            reroll(&srv, Cred::Bearer(&admin), &admin_key_id, bad.clone()).await,
            400,
            "invalid_request",
        )
        .await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("overlap_seconds"), "{bad}: {body}");
    }
    let missing = post(
        &srv,
        &format!("/api-keys/{admin_key_id}/reroll"),
        Cred::Bearer(&admin),
        json!({}),
    )
    .await;
    let body = assert_problem(missing, 400, "invalid_request").await;
    assert!(body["detail"].as_str().unwrap().contains("overlap_seconds"));
    assert_401(
        reroll(&srv, Cred::None, &admin_key_id, json!(10)).await,
        "missing_credentials",
        false,
    )
    .await;
    // None of it touched the key.
    expect(
        get(&srv, "/api/v1/sessions", Cred::Key(&admin_key)).await,
        200,
    )
    .await;
}

/// A 429 `usage_exhausted`: a problem with no `Retry-After` nor `RateLimit-*` (credits never
/// refill, so there is nothing to wait for).
async fn assert_usage_exhausted(res: reqwest::Response) {
    let headers = res.headers().clone();
    assert_problem(res, 429, "usage_exhausted").await;
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} on usage_exhausted: {headers:?}"
        );
    }
    assert!(headers.get("www-authenticate").is_none(), "{headers:?}");
}

/// A key with `remaining` usage credits, made as `token` (`session:list` only); the answer.
async fn metered_key(srv: &Server, token: &str, name: &str, remaining: u64) -> Value {
    create_key(
        srv,
        Cred::Bearer(token),
        json!({"name": name, "permissions": ["session:list"], "remaining": remaining}),
    )
    .await
}

/// `n` requests with `key` answered 200, then the next one 429 `usage_exhausted`.
async fn spend_all(srv: &Server, key: &str, n: usize) {
    for i in 0..n {
        let res = get(srv, "/api/v1/sessions", Cred::Key(key)).await;
        assert_eq!(res.status(), 200, "request {i} of {n}");
    }
    assert_usage_exhausted(get(srv, "/api/v1/sessions", Cred::Key(key)).await).await;
}

/// The key `key_id` in `GET /api-keys` as `token`.
async fn listed(srv: &Server, token: &str, key_id: &str) -> Value {
    let list = expect(get(srv, "/api-keys", Cred::Bearer(token)).await, 200).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == key_id)
        .cloned()
        .unwrap_or_else(|| panic!("{key_id} not listed: {list}"))
}

#[tokio::test]
async fn api_key_with_credits_is_429_usage_exhausted_once_they_are_spent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = metered_key(&srv, &admin, "metered", 3).await;
    assert_eq!(created["remaining"], 3, "{created}");
    let key = str_of(&created, "api_key");
    let key_id = str_of(&created, "key_id");
    let before = now();
    spend_all(&srv, &key, 3).await;
    // And stays so.
    assert_usage_exhausted(get(&srv, "/api/v1/sessions", Cred::Key(&key)).await).await;
    // Not the caller's other credentials: the admin goes on.
    expect(
        get(&srv, "/api/v1/sessions", Cred::Bearer(&admin)).await,
        200,
    )
    .await;
    // The listing: none left, and the last use, once written behind (every 5 s).
    let mut item = listed(&srv, &admin, &key_id).await;
    assert_eq!(item["remaining"], 0, "{item}");
    let waited = std::time::Instant::now();
    while item["last_used_at"].is_null() && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        item = listed(&srv, &admin, &key_id).await;
    }
    let last_used = item["last_used_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("last_used_at never written: {item}"));
    assert!(last_used + 5 >= before && last_used <= now() + 5, "{item}");
    // A key without credits lists `remaining: null`.
    let (plain_id, _) = key_with(&srv, &admin, &["session:list"]).await;
    assert!(listed(&srv, &admin, &plain_id).await["remaining"].is_null());
    // Disabled beats exhausted: 401 as before.
    expect(
        patch(
            &srv,
            &format!("/api-keys/{key_id}"),
            Cred::Bearer(&admin),
            json!({"enabled": false}),
        )
        .await,
        200,
    )
    .await;
    assert_get_401(
        &srv,
        "/api/v1/sessions",
        Cred::Key(&key),
        "api_key_disabled",
    )
    .await;
}

#[tokio::test]
async fn api_key_credits_out_of_range_or_not_a_whole_number_are_invalid_request() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    for bad in [
        json!(0),
        json!(-1),
        json!(2.5),
        json!("3"),
        json!(true),
        json!(9_007_199_254_740_992_u64),
    ] {
        let res = post(
            &srv,
            "/api-keys",
            Cred::Bearer(&admin),
            json!({"name": "bad", "permissions": ["session:list"], "remaining": bad}),
        )
        .await;
        let body = assert_problem(res, 400, "invalid_request").await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("remaining"), "{bad}: {body}");
    }
    // None of them made a key.
    let list = expect(get(&srv, "/api-keys", Cred::Bearer(&admin)).await, 200).await;
    assert_eq!(list, json!([]));
    // The document says what the server enforces.
    let doc = expect(get(&srv, "/openapi.json", Cred::None).await, 200).await;
    let schema = &doc["components"]["schemas"]["CreateKey"]["properties"]["remaining"];
    assert_eq!(schema["minimum"], 1, "{schema}");
    let responses = &doc["paths"]["/api-keys"]["post"]["responses"];
    assert!(responses["429"].is_object(), "{responses}");
    let codes = doc["components"]["responses"]["RateLimited"]["content"]
        ["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]
        .clone();
    assert!(
        codes
            .as_array()
            .unwrap()
            .contains(&json!("usage_exhausted")),
        "{codes}"
    );
}

#[tokio::test]
async fn a_key_made_by_a_key_with_credits_takes_them_from_its_parent() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let parent = metered_key(&srv, &admin, "parent", 10).await;
    let parent_key = str_of(&parent, "api_key");
    let parent_id = str_of(&parent, "key_id");
    // A key asked for by the parent, with `remaining` (null: left out).
    let ask_child = |remaining: Value| {
        let body =
            json!({"name": "child", "permissions": ["session:list"], "remaining": remaining});
        post(&srv, "/api-keys", Cred::Key(&parent_key), body)
    };
    // Left out: refused, not unlimited (the request itself paid 1: 9 left).
    let res = ask_child(Value::Null).await;
    let body = assert_problem(res, 400, "invalid_request").await;
    assert!(
        body["detail"].as_str().unwrap().contains("remaining"),
        "{body}"
    );
    // More than the parent has left (8 once this request paid): refused, nothing taken.
    assert_usage_exhausted(ask_child(json!(9)).await).await;
    // Within: the child's credits leave the parent (7 left after paying, 2 after the child).
    let child = expect(ask_child(json!(5)).await, 201).await;
    assert_eq!(child["remaining"], 5, "{child}");
    let child_key = str_of(&child, "api_key");
    assert_eq!(listed(&srv, &admin, &parent_id).await["remaining"], 2);
    // Parent and child never spend more than the parent's 10: 3 + 2 + 5 = 10.
    spend_all(&srv, &parent_key, 2).await;
    spend_all(&srv, &child_key, 5).await;
    // A spent parent makes no more keys.
    assert_usage_exhausted(ask_child(json!(1)).await).await;
    // A user's own keys are not bounded by anything but the range.
    let big = create_key(
        &srv,
        Cred::Bearer(&admin),
        json!({"name": "big", "permissions": ["session:list"], "remaining": 9_007_199_254_740_991_u64}),
    )
    .await;
    assert_eq!(big["remaining"], 9_007_199_254_740_991_u64, "{big}");
}

#[tokio::test]
async fn rerolling_a_key_with_credits_keeps_its_count() {
    let srv = Server::start();
    let admin = srv.admin_token().await;
    let created = metered_key(&srv, &admin, "metered", 4).await;
    let key_id = str_of(&created, "key_id");
    let old = str_of(&created, "api_key");
    expect(get(&srv, "/api/v1/sessions", Cred::Key(&old)).await, 200).await;
    let rolled = expect(
        reroll(&srv, Cred::Bearer(&admin), &key_id, json!(60)).await,
        201,
    )
    .await;
    assert_eq!(rolled["remaining"], 3, "{rolled}");
    let new = str_of(&rolled, "api_key");
    // Old and new secret spend one counter.
    for secret in [&old, &new, &old] {
        expect(get(&srv, "/api/v1/sessions", Cred::Key(secret)).await, 200).await;
    }
    for secret in [&old, &new] {
        assert_usage_exhausted(get(&srv, "/api/v1/sessions", Cred::Key(secret)).await).await;
    }
    assert_eq!(listed(&srv, &admin, &key_id).await["remaining"], 0);
}
