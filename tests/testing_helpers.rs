//! `portcullis::testing` as an application's own tests use it: a small axum app called with
//! `oneshot`, through the real `AuthLayer` with minted tokens, and without the layer with an
//! actor put into the request.

// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::post;
use http_body_util::BodyExt;
use portcullis::seed::{MemoryCreate, MemoryRead};
use portcullis::{AuthLayer, Authenticator, PermissionList, RequirePermissions, testing};
use tower::ServiceExt;

/// The application under test: one route that needs `memory:create`.
fn routes() -> Router {
    async fn create_memory(who: RequirePermissions<MemoryCreate>) -> String {
        format!("created by {}", who.id().unwrap_or("?"))
    }
    Router::new().route("/memories", post(create_memory))
}

fn post_memories(token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/memories");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

/// Status, headers and the problem's body (JSON, or `null` when the body is not JSON).
async fn call(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_problem(headers: &HeaderMap, json: &serde_json::Value, code: &str) {
    assert_eq!(
        header_str(headers, header::CONTENT_TYPE),
        "application/problem+json"
    );
    assert_eq!(json["code"], code, "{json}");
}

/// A 403 `insufficient_permissions` whose challenge names the missing `memory:create`.
fn assert_needs_memory_create(status: StatusCode, headers: &HeaderMap, json: &serde_json::Value) {
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(headers, json, "insufficient_permissions");
    assert_eq!(
        header_str(headers, header::WWW_AUTHENTICATE),
        r#"Bearer error="insufficient_scope", scope="memory:create""#
    );
}

#[tokio::test]
async fn a_minted_token_whose_role_grants_the_permission_is_200() {
    let auth = Authenticator::builder().build().unwrap();
    let token = testing::actor()
        .id("ada")
        .org("acme")
        .role("user")
        .access_token(&auth)
        .await
        .unwrap();
    let app = routes().layer(AuthLayer::new(auth));
    let response = app.oneshot(post_memories(Some(token.expose()))).await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"created by ada");
}

#[tokio::test]
async fn a_minted_token_without_the_permission_is_403_insufficient_permissions_with_its_scope() {
    let auth = Authenticator::builder().build().unwrap();
    let token = testing::actor()
        .org("acme")
        .role("viewer")
        .access_token(&auth)
        .await
        .unwrap();
    let app = routes().layer(AuthLayer::new(auth));
    let (status, headers, json) = call(app, post_memories(Some(token.expose()))).await;
    assert_needs_memory_create(status, &headers, &json);
}

#[tokio::test]
async fn an_issued_api_key_with_exactly_the_permission_is_200_and_one_without_is_403() {
    let auth = Authenticator::builder().build().unwrap();
    let allowed = testing::actor()
        .id("allowed")
        .permissions(MemoryCreate::SET)
        .issue_api_key(&auth)
        .await
        .unwrap();
    let refused = testing::actor()
        .id("refused")
        .permissions(MemoryRead::SET)
        .issue_api_key(&auth)
        .await
        .unwrap();
    let app = routes().layer(AuthLayer::new(auth));
    let (status, _, _) = call(app.clone(), post_memories(Some(allowed.expose()))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, json) = call(app, post_memories(Some(refused.expose()))).await;
    assert_needs_memory_create(status, &headers, &json);
}

#[tokio::test]
async fn no_token_is_401_missing_credentials() {
    let auth = Authenticator::builder().build().unwrap();
    let app = routes().layer(AuthLayer::new(auth));
    let (status, headers, json) = call(app, post_memories(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_problem(&headers, &json, "missing_credentials");
    assert!(header_str(&headers, header::WWW_AUTHENTICATE).starts_with("Bearer"));
}

#[tokio::test]
async fn a_token_from_another_authenticator_is_401_invalid_token() {
    // Minted by a different key ring: the helper does not make every token pass.
    let other = Authenticator::builder().build().unwrap();
    let token = testing::actor()
        .role("user")
        .access_token(&other)
        .await
        .unwrap();
    let app = routes().layer(AuthLayer::new(Authenticator::builder().build().unwrap()));
    let (status, headers, json) = call(app, post_memories(Some(token.expose()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_problem(&headers, &json, "invalid_token");
    assert!(header_str(&headers, header::WWW_AUTHENTICATE).contains("invalid_token"));
}

#[tokio::test]
async fn a_handler_sees_the_actor_put_into_the_request_without_the_layer() {
    let allowed = testing::actor()
        .id("key-1")
        .permissions(MemoryCreate::SET)
        .api_key();
    let (status, _, _) = call(routes(), testing::with_actor(post_memories(None), allowed)).await;
    assert_eq!(status, StatusCode::OK);

    let refused = testing::actor().id("agent-1").agent();
    let (status, headers, json) =
        call(routes(), testing::with_actor(post_memories(None), refused)).await;
    assert_needs_memory_create(status, &headers, &json);
}
