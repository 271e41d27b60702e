//! CSRF: cookie-authenticated unsafe requests need the matching `X-CSRF-Token`.

use super::*;

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

const CSRF: &str = "csrf-token-value-0123456789";

fn cookies(token: &str, csrf: &str) -> String {
    format!("{}; portcullis_csrf={csrf}", access_cookie(token))
}

#[track_caller]
fn assert_csrf_failed(r: &Reply) {
    let doc = assert_problem(r, 403, "csrf_failed", None);
    assert_eq!(doc["title"], "Forbidden");
}

#[tokio::test]
async fn a_cookie_post_without_x_csrf_token_is_csrf_failed() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(post(PRIVATE, &[("cookie", &cookies(&token, CSRF))]))
        .await;
    assert_csrf_failed(&r);
    // Without the CSRF cookie either.
    let r = fx
        .send(post(PRIVATE, &[("cookie", &access_cookie(&token))]))
        .await;
    assert_csrf_failed(&r);
}

#[tokio::test]
async fn a_cookie_already_resolved_still_needs_the_csrf_token_on_a_post() {
    // The second request is decided from the resolved-credential cache, in `call`.
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let ok = [
        ("cookie", cookies(&token, CSRF)),
        ("x-csrf-token", CSRF.to_owned()),
    ];
    let ok: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = fx.send(post(PRIVATE, &ok)).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    assert!(fx.auth.resolve_cached(Credential::Cookie(&token)).is_some());
    let r = fx
        .send(post(PRIVATE, &[("cookie", &cookies(&token, CSRF))]))
        .await;
    assert_csrf_failed(&r);
    let r = fx.get_private(&[("cookie", &access_cookie(&token))]).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn a_cookie_post_with_a_wrong_x_csrf_token_is_csrf_failed() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let c = cookies(&token, CSRF);
    for wrong in [
        "wrong",
        "csrf-token-value-012345678",
        "csrf-token-value-01234567890",
        " ",
    ] {
        let r = fx
            .send(post(PRIVATE, &[("cookie", &c), ("x-csrf-token", wrong)]))
            .await;
        assert_csrf_failed(&r);
    }
    // A header with no CSRF cookie to compare against.
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &access_cookie(&token)), ("x-csrf-token", CSRF)],
        ))
        .await;
    assert_csrf_failed(&r);
    // Empty on both sides is not a match.
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &cookies(&token, "")), ("x-csrf-token", "")],
        ))
        .await;
    assert_csrf_failed(&r);
    // Non-ASCII bytes in the header.
    let r = fx
        .send(raw(
            Method::POST,
            PRIVATE,
            &[("cookie", c.as_bytes()), ("x-csrf-token", b"\xffcsrf")],
        ))
        .await;
    assert_csrf_failed(&r);
    // Two X-CSRF-Token headers, one of them right.
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("cookie", &c),
                ("x-csrf-token", CSRF),
                ("x-csrf-token", "x"),
            ],
        ))
        .await;
    assert_csrf_failed(&r);
}

#[tokio::test]
async fn a_cookie_post_with_the_matching_x_csrf_token_passes() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let r = fx
        .send(post(
            PRIVATE,
            &[("cookie", &cookies(&token, CSRF)), ("x-csrf-token", CSRF)],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    // The CSRF cookie may come in its own Cookie header (HTTP/2 splits them).
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("cookie", &access_cookie(&token)),
                ("cookie", &format!("portcullis_csrf={CSRF}")),
                ("x-csrf-token", CSRF),
            ],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

#[tokio::test]
async fn every_unsafe_method_needs_csrf_under_cookie_auth() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let c = cookies(&token, CSRF);
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = fx
            .send(req(method.clone(), PRIVATE, &[("cookie", &c)]))
            .await;
        assert_csrf_failed(&r);
        let r = fx
            .send(req(
                method,
                PRIVATE,
                &[("cookie", &c), ("x-csrf-token", CSRF)],
            ))
            .await;
        assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    }
}

#[tokio::test]
async fn safe_methods_under_cookie_auth_need_no_csrf() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let r = fx
            .send(req(method, PRIVATE, &[("cookie", &access_cookie(&token))]))
            .await;
        assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    }
}

#[tokio::test]
async fn bearer_and_api_key_posts_are_exempt_from_csrf() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let (key, id) = fx.user_key("u-alice").await;
    let r = fx
        .send(post(PRIVATE, &[("authorization", &bearer(&token))]))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    let r = fx.send(post(PRIVATE, &[("x-api-key", &key)])).await;
    assert_api_key_actor(&r, id.as_str());
    let r = fx
        .send(post(PRIVATE, &[("authorization", &bearer(&key))]))
        .await;
    assert_api_key_actor(&r, id.as_str());
    // A bearer decides even with the same user's cookie alongside.
    let r = fx
        .send(post(
            PRIVATE,
            &[
                ("authorization", &bearer(&token)),
                ("cookie", &access_cookie(&token)),
            ],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_bad_cookie_on_an_unsafe_request_is_401_not_403() {
    let fx = Fx::new();
    let r = fx
        .send(post(PRIVATE, &[("cookie", "portcullis_access=a.b.c")]))
        .await;
    assert_401(&r, "invalid_token");
}
