//! Malformed input: 4xx with the right code, never 5xx.

use super::*;

// ---------------------------------------------------------------------------------------------
// Malformed input: 4xx with the right code, never 5xx
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicated_authorization_headers_are_invalid_token() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let good = bearer(&token);
    // Even two copies of the same valid token.
    for second in [good.as_str(), "Bearer other", "Basic dXNlcjpwYXNz"] {
        let r = fx
            .get_private(&[("authorization", &good), ("authorization", second)])
            .await;
        assert_401(&r, "invalid_token");
    }
}

#[tokio::test]
async fn duplicated_x_api_key_headers_are_invalid_api_key() {
    let fx = Fx::new();
    let (key, _) = fx.user_key("u-alice").await;
    let r = fx
        .get_private(&[("x-api-key", &key), ("x-api-key", &key)])
        .await;
    assert_401(&r, "invalid_api_key");
}

#[tokio::test]
async fn two_different_access_cookies_are_invalid_token() {
    let fx = Fx::new();
    let (_, one) = fx.login("u-alice").await;
    let (_, two) = fx.login("u-alice").await;
    let r = fx
        .get_private(&[(
            "cookie",
            &format!("{}; {}", access_cookie(&one), access_cookie(&two)),
        )])
        .await;
    assert_401(&r, "invalid_token");
}

#[tokio::test]
async fn malformed_bearer_values_are_invalid_token() {
    let fx = Fx::new();
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer a b",
        "Bearer a.b.c d",
    ] {
        let r = fx.get_private(&[("authorization", value)]).await;
        assert_401(&r, "invalid_token");
    }
    // An empty Authorization header is a credential presented, and unreadable.
    let r = fx.get_private(&[("authorization", "")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(INVALID_TOKEN_CHALLENGE));
}

#[tokio::test]
async fn a_60_000_byte_credential_is_a_4xx_never_a_5xx() {
    let fx = Fx::new();
    let big = "a".repeat(60_000);
    let third = "a".repeat(20_000);
    let big_jwt = format!("{third}.{third}.{third}");
    let big_key = format!("ck_{big}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("authorization", bearer(&big), "invalid_token"),
        ("authorization", bearer(&big_jwt), "invalid_token"),
        ("authorization", bearer(&big_key), "invalid_api_key"),
        (
            "authorization",
            format!("Basic {big}"),
            "invalid_credentials",
        ),
        ("x-api-key", big_key.clone(), "invalid_api_key"),
        ("x-api-key", big.clone(), "invalid_api_key"),
        ("cookie", access_cookie(&big), "invalid_token"),
    ];
    for (name, value, code) in cases {
        assert!(value.len() >= 60_000);
        let r = fx.get_private(&[(name, &value)]).await;
        assert_401(&r, code);
        // The refusal does not echo the input back.
        assert!(r.body.len() < 1_000, "{} bytes", r.body.len());
    }
}

#[tokio::test]
async fn non_ascii_header_bytes_are_a_4xx_with_the_right_code() {
    let fx = Fx::new();
    let cases: [(&str, &[u8], &str); 5] = [
        ("authorization", b"Bearer \xff\xfe\xfd", "invalid_token"),
        ("authorization", b"Bearer caf\xc3\xa9.x.y", "invalid_token"),
        ("authorization", b"\xffBearer abc", "invalid_token"),
        ("x-api-key", b"ck_\xff\xfe", "invalid_api_key"),
        ("x-api-key", b"\x80", "invalid_api_key"),
    ];
    for (name, value, code) in cases {
        let r = fx.send(raw(Method::GET, PRIVATE, &[(name, value)])).await;
        assert_401(&r, code);
    }
    // An access cookie whose value is not ASCII is presented but unreadable (never absent);
    // other applications' non-ASCII cookies are no credential, and a readable access cookie
    // beside them still counts.
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[("cookie", b"portcullis_access=\xff.a.b")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    let r = fx
        .send(raw(Method::GET, PRIVATE, &[("cookie", b"junk=\xff")]))
        .await;
    assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    let (_, token) = fx.login("u-alice").await;
    let good = access_cookie(&token);
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[("cookie", b"junk=\xff"), ("cookie", good.as_bytes())],
        ))
        .await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
}

mod any_header_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever bytes arrive in the three credential headers, on any method, the answer is
        /// a 4xx problem (nothing there can be a valid credential), never a 5xx or a panic.
        #[test]
        fn never_a_5xx(
            auth in proptest::collection::vec(any::<u8>(), 0..300),
            key in proptest::collection::vec(any::<u8>(), 0..300),
            cookie in proptest::collection::vec(any::<u8>(), 0..300),
            bearer_prefix in any::<bool>(),
            post in any::<bool>(),
        ) {
            let fx = Fx::new();
            let mut auth = auth;
            if bearer_prefix {
                auth.splice(0..0, b"Bearer ".iter().copied());
            }
            let mut headers: Vec<(&str, &[u8])> = Vec::new();
            for (name, value) in [("authorization", &auth), ("x-api-key", &key), ("cookie", &cookie)] {
                if HeaderValue::from_bytes(value).is_ok() {
                    headers.push((name, value.as_slice()));
                }
            }
            let method = if post { Method::POST } else { Method::GET };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let r = rt.block_on(fx.send(raw(method, PRIVATE, &headers)));
            prop_assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
            prop_assert_eq!(r.header("content-type"), Some("application/problem+json"));
            let public = rt.block_on(fx.send(raw(Method::GET, "/healthz", &headers)));
            prop_assert_eq!(public.status, StatusCode::OK);
        }
    }
}
