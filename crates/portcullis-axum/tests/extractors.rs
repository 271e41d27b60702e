//! The extractors: 401 versus 403, the optional actor, the org, the missing layer, and the
//! application's body on extractor rejections.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use portcullis_axum::{
    CurrentActor, CurrentOrg, MISSING_LAYER, RequireAnyPermission, RequirePermissions,
};
use portcullis_core::seed::{AdminWrite, MemoryRead, SessionCreate};
use portcullis_core::{AuthConfig, Authenticator, Fallback};
use portcullis_tower::{AuthLayer, Renderer};
use tower::ServiceExt;

async fn maybe(who: Option<CurrentActor>) -> String {
    who.map_or_else(|| "anonymous".into(), |a| a.kind().as_str().to_owned())
}

async fn admin(_: RequirePermissions<(AdminWrite, SessionCreate)>) -> &'static str {
    "ok"
}

async fn any(_: RequireAnyPermission<(AdminWrite, MemoryRead)>) -> &'static str {
    "ok"
}

async fn org(o: CurrentOrg) -> String {
    o.org_id().map_or_else(|| "all".into(), |id| id.to_string())
}

fn routes() -> Router {
    Router::new()
        .route("/maybe", get(maybe))
        .route("/admin", get(admin))
        .route("/any", get(any))
        .route("/org", get(org))
}

fn authenticator(fallback: Fallback) -> Authenticator {
    let config = AuthConfig::builder()
        .require_auth(false)
        .fallback(fallback)
        .build()
        .unwrap();
    Authenticator::builder().config(config).build().unwrap()
}

async fn get_body(app: Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let res = app
        // A local client: board fallback is only for requests addressed to loopback.
        .oneshot(
            Request::get(path)
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn a_route_without_the_layer_is_a_500_that_names_the_fix() {
    let (status, _, body) = get_body(routes(), "/admin").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, MISSING_LAYER);
    assert!(body.contains("AuthLayer::new"));
    let (status, _, _) = get_body(routes(), "/maybe").await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Option<CurrentActor> too"
    );
}

#[tokio::test]
async fn an_anonymous_request_is_401_not_403_and_optional_is_none() {
    let app = routes().layer(AuthLayer::new(authenticator(Fallback::None)));
    let (status, headers, body) = get_body(app.clone(), "/admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="portcullis""#);
    assert_eq!(headers["content-type"], "application/problem+json");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["code"], "missing_credentials");
    assert_eq!(json["status"], 401);
    assert_eq!(
        get_body(app.clone(), "/org").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = get_body(app, "/maybe").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
}

#[tokio::test]
async fn the_board_passes_every_permission_check_in_every_org() {
    let app = routes().layer(AuthLayer::new(authenticator(Fallback::Board)));
    assert_eq!(get_body(app.clone(), "/admin").await.0, StatusCode::OK);
    assert_eq!(get_body(app.clone(), "/any").await.0, StatusCode::OK);
    assert_eq!(get_body(app.clone(), "/maybe").await.2, "board");
    assert_eq!(get_body(app, "/org").await.2, "all");
}

#[tokio::test]
async fn extractor_rejections_use_the_applications_body() {
    let renderer = Renderer::default().with_body(|_, p| {
        (
            http::HeaderValue::from_static("text/plain"),
            format!("nope: {}", p.code).into(),
        )
    });
    let app = routes().layer(AuthLayer::new(authenticator(Fallback::None)).with_renderer(renderer));
    let (status, headers, body) = get_body(app, "/admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, "nope: missing_credentials");
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="portcullis""#);
}
