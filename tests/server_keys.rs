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
