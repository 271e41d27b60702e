//! The examples, exercised: each example's app is built here with a real `Authenticator` and
//! driven with requests (`oneshot`), and the hyper example is also served over real HTTP.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "axum")]

mod common;

#[path = "../examples/axum_app.rs"]
mod axum_app;
#[path = "../examples/hyper_service.rs"]
mod hyper_service;
#[path = "../examples/per_route_permissions.rs"]
mod per_route_permissions;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use portcullis::api_key::{self, ApiKeyRecord, KeyOwner};
use portcullis::ids::{ApiKeyId, OrgId, UserId};
use portcullis::{Authenticator, PermissionList, seed::*};
use tower::ServiceExt;

/// An authenticator with one live session of a user with `role`; returns a bearer token.
async fn user_token(auth: &Authenticator, role: &str) -> String {
    let (user, org) = (UserId::random(), OrgId::from("acme"));
    common::session_token(auth, auth.stores(), &user, &org, role)
        .await
        .1
}

async fn api_key(auth: &Authenticator, permissions: portcullis::PermissionSet) -> String {
    let generated = api_key::generate(&auth.config().api_key_prefix);
    let user = UserId::random();
    auth.stores()
        .api_keys
        .insert(ApiKeyRecord {
            id: ApiKeyId::random(),
            name: "t".into(),
            hash: generated.hash,
            display_prefix: generated.display_prefix.clone(),
            created_by: user.clone().into(),
            owner: KeyOwner::User(user),
            org_id: "acme".into(),
            permissions,
            created_at: 0,
            expires_at: None,
            enabled: true,
            rate_limit_per_minute: None,
            last_used_at: None,
            remaining: None,
        })
        .await
        .unwrap();
    generated.key.expose().to_owned()
}

fn auth() -> Authenticator {
    Authenticator::builder().build().unwrap()
}

async fn send(app: axum::Router, req: Request<Body>) -> (StatusCode, String, http::HeaderMap) {
    let res = app.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        String::from_utf8_lossy(&bytes).into_owned(),
        parts.headers,
    )
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn axum_app_creates_with_permission_and_refuses_without() {
    let auth = auth();
    let user = user_token(&auth, "user").await;
    let viewer = user_token(&auth, "viewer").await;
    let app = axum_app::app(auth);
    let post = |t: &str| {
        Request::post("/memories")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body, _) = send(app.clone(), post(&user)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("created by "), "{body}");

    let (status, body, headers) = send(app.clone(), post(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "insufficient_permissions");
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="memory:create""#
    );

    let (status, body, headers) = send(
        app.clone(),
        Request::post("/memories").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "missing_credentials");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="portcullis""#);

    let get_me = Request::get("/me")
        .header("authorization", format!("Bearer {user}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = send(app, get_me).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("user "), "{body}");
}

#[tokio::test]
async fn per_route_permissions_tuple_needs_all_and_any_needs_one() {
    let auth = auth();
    let reader = api_key(&auth, <(MemoryRead, SessionRead)>::SET).await;
    let searcher = api_key(&auth, MemorySearch::SET).await;
    let nobody = api_key(&auth, SessionList::SET).await;
    let app = per_route_permissions::app(auth);
    let get = |path: &str, key: &str| {
        Request::get(path)
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };

    assert_eq!(
        send(app.clone(), get("/sessions/s1/memories", &reader))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body, headers) = send(app.clone(), get("/sessions/s1/memories", &searcher)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "insufficient_permissions".into())
    );
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="memory:read session:read""#
    );

    assert_eq!(
        send(app.clone(), get("/memories/search", &reader)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(app.clone(), get("/memories/search", &searcher))
            .await
            .0,
        StatusCode::OK
    );
    let (status, _, headers) = send(app.clone(), get("/memories/search", &nobody)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="memory:read memory:search""#
    );

    let del = Request::delete("/memories/m1")
        .header("x-api-key", &reader)
        .body(Body::empty())
        .unwrap();
    let (status, _, headers) = send(app.clone(), del).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="memory:delete admin:read""#
    );

    let (status, body, _) = send(app, get("/org", &reader)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "org acme"));
}

#[tokio::test]
async fn hyper_service_reads_the_actor_from_extensions() {
    let auth = auth();
    let admin = user_token(&auth, "admin").await;
    let svc = hyper_service::service::<http_body_util::Full<bytes::Bytes>>(auth);
    let req = Request::get("/")
        .header("authorization", format!("Bearer {admin}"))
        .body(Default::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"hello admin "), "{body:?}");

    let res = svc
        .oneshot(Request::get("/private").body(Default::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hyper_service_answers_over_real_http() {
    let auth = auth();
    let token = user_token(&auth, "user").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_auth = auth.clone();
    tokio::spawn(async move {
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper_util::service::TowerToHyperService::new(hyper_service::service::<
                hyper::body::Incoming,
            >(
                server_auth.clone()
            ));
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    for (auth_header, expected) in [(Some(format!("Bearer {token}")), 200u16), (None, 401)] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = Request::get("/hello").header("host", addr.to_string());
        if let Some(h) = &auth_header {
            req = req.header("authorization", h);
        }
        let res = sender
            .send_request(
                req.body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected);
    }
}
