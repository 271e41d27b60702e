//! The request as the inner service sees it, the service's reuse, a custom API-key prefix, a
//! custom renderer, and the layer's builder (policy, header and cookie names, realm).

use super::*;

// ---------------------------------------------------------------------------------------------
// The request itself, the service's reuse, a custom key prefix
// ---------------------------------------------------------------------------------------------

fn with_body(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(Full::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn the_request_reaches_the_inner_service_intact() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    // Through the asynchronous path (a credential) and the synchronous one (none, public).
    let r = fx
        .send(with_body(
            Method::PUT,
            "/api/v1/memories/m1?x=1",
            &[("authorization", &bearer(&token)), ("x-probe", "p1")],
            "hello body",
        ))
        .await;
    let echoed = assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
    assert_eq!(
        echoed["request"],
        json!({"method": "PUT", "path": "/api/v1/memories/m1", "probe": "p1",
               "body": "hello body", "renderer_in_extensions": false})
    );
    let r = fx
        .send(with_body(
            Method::POST,
            "/auth/login",
            &[("x-probe", "p2")],
            "{\"email\":\"a\"}",
        ))
        .await;
    assert_anonymous(&r);
    assert_eq!(r.json()["request"]["body"], "{\"email\":\"a\"}");
    assert_eq!(r.json()["request"]["probe"], "p2");
}

#[tokio::test]
async fn a_custom_renderer_is_handed_to_the_inner_service_the_default_one_is_not() {
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let h = bearer(&token);
    let r = send_with(
        custom_layer(&fx.auth),
        get(PRIVATE, &[("authorization", &h)]),
    )
    .await;
    assert_eq!(r.json()["request"]["renderer_in_extensions"], true);
    let r = send_with(fx.layer(), get(PRIVATE, &[("authorization", &h)])).await;
    assert_eq!(r.json()["request"]["renderer_in_extensions"], false);
}

#[tokio::test]
async fn one_service_serves_many_requests_in_any_order() {
    use tower::Service;
    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let (key, key_id) = fx.user_key("u-bob").await;
    let mut svc = ServiceBuilder::new()
        .layer(fx.layer())
        .service(service_fn(echo));
    let h = bearer(&token);
    let requests = [
        (get(PRIVATE, &[("authorization", &h)]), Some("u-alice")),
        (get(PRIVATE, &[]), None),
        (get(PRIVATE, &[("x-api-key", &key)]), Some(key_id.as_str())),
        (get("/healthz", &[]), None),
        (get(PRIVATE, &[("authorization", "Bearer bad")]), None),
        (get(PRIVATE, &[("authorization", &h)]), Some("u-alice")),
    ];
    let mut futures = Vec::new();
    for (req, _) in &requests {
        let req = Request::builder()
            .uri(req.uri().clone())
            .body(Full::default())
            .map(|mut r| {
                *r.headers_mut() = req.headers().clone();
                r
            })
            .unwrap();
        futures.push(svc.ready().await.unwrap().call(req));
    }
    // Awaited in reverse: each future owns what it needs.
    let mut statuses = Vec::new();
    for fut in futures.into_iter().rev() {
        let res = fut.await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].clone();
        statuses.push((status.as_u16(), id));
    }
    statuses.reverse();
    let ids: Vec<Option<&str>> = requests.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        statuses.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [200, 401, 200, 200, 401, 200]
    );
    for ((status, id), expected) in statuses.iter().zip(ids) {
        if *status == 200 {
            assert_eq!(id.as_str(), expected);
        }
    }
}

#[tokio::test]
async fn a_custom_api_key_prefix_decides_what_a_bearer_is() {
    let prefix = ApiKeyPrefix::new("acme").unwrap();
    let fx = Fx::with_config(config().api_key_prefix(prefix.clone()));
    let generated = api_key::generate(&prefix);
    let id = ApiKeyId::random();
    fx.auth
        .stores()
        .api_keys
        .insert(ApiKeyRecord {
            name: "acme key".into(),
            created_by: UserId::from("u-alice").into(),
            owner: KeyOwner::User(UserId::from("u-alice")),
            created_at: T0,
            ..testing::api_key_record(id.clone(), generated.hash)
        })
        .await
        .unwrap();
    let key = generated.key.expose();
    let r = fx.get_with_bearer(key).await;
    assert_api_key_actor(&r, id.as_str());
    let r = fx.get_with_api_key(key).await;
    assert_api_key_actor(&r, id.as_str());
    // A default-prefix key is now just a (bad) JWT as a bearer, and a bad key in X-API-Key.
    let ck = api_key::generate(&ApiKeyPrefix::default());
    let r = fx.get_with_bearer(ck.key.expose()).await;
    assert_401(&r, "invalid_token");
    let r = fx.get_with_api_key(ck.key.expose()).await;
    assert_401(&r, "invalid_api_key");
}

// ---------------------------------------------------------------------------------------------
// A custom renderer
// ---------------------------------------------------------------------------------------------

fn custom_layer(auth: &Authenticator) -> AuthLayer {
    AuthLayer::new(auth.clone()).with_renderer(Renderer::default().with_body(|_err, problem| {
        (
            HeaderValue::from_static("text/plain; charset=utf-8"),
            Bytes::from(format!(
                "denied {} {}",
                problem.status.as_u16(),
                problem.code
            )),
        )
    }))
}

#[tokio::test]
async fn a_custom_body_keeps_status_and_www_authenticate() {
    let fx = Fx::new();
    let layer = custom_layer(&fx.auth);

    let r = send_with(layer.clone(), get(PRIVATE, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "denied 401 missing_credentials");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("www-authenticate"), Some(BARE_CHALLENGE));

    let r = send_with(
        layer.clone(),
        get(PRIVATE, &[("authorization", "Bearer x.y.z")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "denied 401 invalid_token");
    assert_eq!(r.header("www-authenticate"), Some(INVALID_TOKEN_CHALLENGE));

    let (_, token) = fx.login("u-alice").await;
    let r = send_with(
        layer.clone(),
        post(PRIVATE, &[("cookie", &access_cookie(&token))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "denied 403 csrf_failed");
    assert_eq!(r.header("www-authenticate"), None);

    let (key, _) = fx
        .key_with(KeyOwner::User(UserId::from("u-alice")), |r| {
            r.rate_limit_per_minute = Some(1);
        })
        .await;
    send_with(layer.clone(), get(PRIVATE, &[("x-api-key", &key)])).await;
    let r = send_with(layer.clone(), get(PRIVATE, &[("x-api-key", &key)])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text(), "denied 429 rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-limit"), Some("1"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert!(r.header("ratelimit-reset").is_some());

    // Success is untouched.
    let r = send_with(layer, get(PRIVATE, &[("authorization", &bearer(&token))])).await;
    assert_actor(&r, "user", Some("u-alice"), Some("jwt"));
}

#[tokio::test]
async fn a_custom_body_keeps_the_503_retry_after() {
    let fx = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
    let minted = fx.access("u-alice", &SessionId::random());
    let r = send_with(
        custom_layer(&fx.auth),
        get(
            PRIVATE,
            &[("authorization", &bearer(minted.token.expose()))],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text(), "denied 503 auth_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

// ---------------------------------------------------------------------------------------------
// The layer's builder: policy, names and realm
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_default_layer_has_no_public_path_every_path_is_401_missing_credentials() {
    let fx = Fx::new();
    for path in PUBLIC_PATHS {
        let r = send_with(AuthLayer::new(fx.auth.clone()), get(path, &[])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
}

#[tokio::test]
async fn a_custom_realm_names_every_401_challenge() {
    let fx = Fx::new();
    let layer = AuthLayer::builder(fx.auth.clone())
        .realm("acme api")
        .build()
        .unwrap();
    let r = send_with(layer.clone(), get(PRIVATE, &[])).await;
    assert_problem(
        &r,
        401,
        "missing_credentials",
        Some(r#"Bearer realm="acme api""#),
    );
    let r = send_with(layer, get(PRIVATE, &[("authorization", "Bearer x.y.z")])).await;
    assert_problem(
        &r,
        401,
        "invalid_token",
        Some(r#"Bearer realm="acme api", error="invalid_token""#),
    );
}

#[tokio::test]
async fn custom_api_key_header_and_access_cookie_are_read_and_the_default_names_are_not() {
    let fx = Fx::new();
    let layer = AuthLayer::builder(fx.auth.clone())
        .api_key_header("x-acme-key")
        .access_cookie("acme_at")
        .build()
        .unwrap();
    let (key, key_id) = fx.user_key("u-alice").await;
    let r = send_with(layer.clone(), get(PRIVATE, &[("x-acme-key", &key)])).await;
    assert_api_key_actor(&r, key_id.as_str());
    let (_, token) = fx.login("u-alice").await;
    let cookie = format!("acme_at={token}");
    let r = send_with(layer.clone(), get(PRIVATE, &[("cookie", &cookie)])).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    // The contract's names are no credential for this layer: nothing was presented.
    for header in [
        ("x-api-key", key.as_str()),
        ("cookie", &access_cookie(&token)),
    ] {
        let r = send_with(layer.clone(), get(PRIVATE, &[header])).await;
        assert_problem(&r, 401, "missing_credentials", Some(BARE_CHALLENGE));
    }
    // A bad value under the custom name is presented: 401 invalid_api_key.
    let r = send_with(layer, get(PRIVATE, &[("x-acme-key", "ck_typo")])).await;
    assert_401(&r, "invalid_api_key");
}

#[test]
fn the_builder_refuses_names_and_realms_http_cannot_carry() {
    let fx = Fx::new();
    let build =
        |f: fn(portcullis_tower::AuthLayerBuilder) -> portcullis_tower::AuthLayerBuilder| {
            f(AuthLayer::builder(fx.auth.clone())).build().map(|_| ())
        };
    let setting = |e: Result<(), portcullis_tower::PolicyError>| match e {
        Err(portcullis_tower::PolicyError::Setting { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        setting(build(|b| b.api_key_header("x api key"))),
        "api_key_header"
    );
    assert_eq!(
        setting(build(|b| b.api_key_header("authorization"))),
        "api_key_header"
    );
    assert_eq!(setting(build(|b| b.access_cookie("a=b"))), "access_cookie");
    assert_eq!(setting(build(|b| b.access_cookie(""))), "access_cookie");
    assert_eq!(setting(build(|b| b.realm("a\"b"))), "realm");
    assert_eq!(setting(build(|b| b.realm("caf\u{e9}"))), "realm");
    assert!(build(|b| b.realm("acme api").access_cookie("__Host-at")).is_ok());
}

#[test]
fn the_builder_refuses_board_fallback_with_a_production_authenticator() {
    let auth = Authenticator::builder()
        .config(
            config()
                .env(portcullis_core::AuthEnv::Production)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = AuthLayer::builder(auth.clone())
        .fallback(Fallback::Board)
        .build()
        .unwrap_err();
    assert_eq!(err, portcullis_tower::PolicyError::FallbackInProduction);
    assert!(AuthLayer::builder(auth).build().is_ok());
}
