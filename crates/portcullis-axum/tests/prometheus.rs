//! `portcullis_axum::prometheus`: the recorder installed once per process, and `GET /metrics`
//! serving what the layer recorded. The sample server's test scrapes the full mix over HTTP
//! (tests/server_metrics.rs at the root); this one holds the library's part on its own.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "prometheus")]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode};
use portcullis_axum::prometheus::{self, InstallError};
use portcullis_core::Authenticator;
use portcullis_tower::AuthLayer;
use tower::ServiceExt;

#[test]
fn outside_a_tokio_runtime_install_is_an_error_not_a_panic() {
    assert!(matches!(
        prometheus::install(),
        Err(InstallError::NoRuntime)
    ));
}

#[tokio::test]
async fn installs_once_and_serves_what_the_layer_recorded() {
    let exporter = prometheus::install().unwrap();
    let again = prometheus::install();
    assert!(
        matches!(again, Err(InstallError::Exporter(_))),
        "a second recorder: {again:?}"
    );

    let auth = Authenticator::builder().build().unwrap();
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(AuthLayer::new(auth.clone()));
    for _ in 0..3 {
        let response = app
            .clone()
            .oneshot(Request::get("/hello").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    let response = exporter
        .router(auth)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    // Counted through the handles `install` bound, described, and the caches' sizes read by
    // the scrape itself.
    for line in [
        "portcullis_decisions_total{credential=\"none\",outcome=\"missing_credentials\"} 3",
        "# HELP portcullis_decisions_total ",
        "# TYPE portcullis_cache_entries gauge",
        "portcullis_unavailable_total 0",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}
