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
use portcullis_core::token::AccessGrant;
use portcullis_core::{AuthConfig, Authenticator};
use portcullis_tower::{AuthLayer, Fallback, Renderer};
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

fn authenticator() -> Authenticator {
    let config = AuthConfig::builder().build().unwrap();
    Authenticator::builder().config(config).build().unwrap()
}

/// Nothing required: the extractors decide.
fn open_layer(fallback: Fallback) -> AuthLayer {
    AuthLayer::builder(authenticator())
        .require_auth(false)
        .fallback(fallback)
        .build()
        .unwrap()
}

async fn get_body(app: Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
    get_with(app, path, None).await
}

async fn get_with(
    app: Router,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    // A local client: board fallback is only for requests addressed to loopback.
    let mut req = Request::get(path).header("host", "localhost");
    if let Some(v) = authorization {
        req = req.header("authorization", v);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
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
    let app = routes().layer(open_layer(Fallback::None));
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
    let app = routes().layer(open_layer(Fallback::Board));
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
    let app = routes().layer(open_layer(Fallback::None).with_renderer(renderer));
    let (status, headers, body) = get_body(app, "/admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, "nope: missing_credentials");
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="portcullis""#);
}

/// What the crate docs say of `Option<CurrentActor>`: where the policy needs auth, the layer's
/// 401 comes first (with or without a bad credential); on a public path a missing or bad
/// credential is `None` and a good one the actor.
#[tokio::test]
async fn optional_actor_is_none_only_where_the_layer_lets_anonymous_through() {
    let auth = authenticator();
    let layer = AuthLayer::builder(auth.clone())
        .public_paths(["/maybe"])
        .build()
        .unwrap();
    let app = routes().route("/private-maybe", get(maybe)).layer(layer);
    assert!(
        layer_policy_needs_auth(&auth, "/private-maybe"),
        "the test's premise"
    );

    // Protected: no credential, or a bad one, is the layer's 401 before the handler.
    for (authorization, code, challenge) in [
        (None, "missing_credentials", r#"Bearer realm="portcullis""#),
        (
            Some("Bearer not.a.jwt"),
            "invalid_token",
            r#"Bearer realm="portcullis", error="invalid_token""#,
        ),
    ] {
        let (status, headers, body) = get_with(app.clone(), "/private-maybe", authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(headers["www-authenticate"], challenge);
        assert_eq!(headers["content-type"], "application/problem+json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], code);
    }

    // Public: no credential or a bad one is `None`.
    for authorization in [None, Some("Bearer not.a.jwt"), Some("Basic dXNlcjpwYXNz")] {
        let (status, _, body) = get_with(app.clone(), "/maybe", authorization).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    }

    // A valid token is the actor, on either path.
    let token = user_token(&auth).await;
    let bearer = format!("Bearer {token}");
    for path in ["/maybe", "/private-maybe"] {
        let (status, _, body) = get_with(app.clone(), path, Some(&bearer)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "user"), "{path}");
    }
}

#[tokio::test]
async fn extractor_rejections_carry_the_layers_realm() {
    let layer = AuthLayer::builder(authenticator())
        .require_auth(false)
        .realm("acme-api")
        .build()
        .unwrap();
    let (status, headers, body) = get_body(routes().layer(layer), "/admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="acme-api""#);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["code"], "missing_credentials");
}

fn layer_policy_needs_auth(auth: &Authenticator, path: &str) -> bool {
    AuthLayer::builder(auth.clone())
        .public_paths(["/maybe"])
        .build()
        .unwrap()
        .policy()
        .needs_auth(path)
}

/// A live session and an access token for it, through the core API.
async fn user_token(auth: &Authenticator) -> String {
    use portcullis_core::ids::{OrgId, SessionId, UserId};
    use portcullis_core::session::SessionRecord;
    let sid = SessionId::random();
    let now = auth.clock().now();
    let record = SessionRecord::new(
        sid.clone(),
        UserId::from("u-1"),
        OrgId::from("acme"),
        portcullis_core::api_key::KeyHash::of(b"refresh"),
        now,
        3600,
        false,
    );
    auth.stores().sessions.create(record).await.unwrap();
    auth.user_tokens()
        .mint_access(AccessGrant {
            user_id: &UserId::from("u-1"),
            email: "u1@example.com",
            role: "user",
            org_id: &OrgId::from("acme"),
            session_id: &sid,
        })
        .unwrap()
        .token
        .expose()
        .to_owned()
}

/// A request head holding `actor` (none: the layer is missing), as the layer leaves it.
fn parts_with(actor: Option<portcullis_core::Actor>) -> http::request::Parts {
    let mut req = Request::get("/").body(()).unwrap();
    if let Some(actor) = actor {
        req.extensions_mut().insert(actor);
    }
    req.into_parts().0
}

/// Checks that `r` reports `status` and `code` and that its response has them, with the
/// challenge `challenge`; the response's problem document.
async fn rendered_as_it_says(
    r: portcullis_axum::AuthRejection,
    status: StatusCode,
    code: &str,
    challenge: &str,
) -> serde_json::Value {
    use axum::response::IntoResponse;
    assert_eq!((r.status(), r.code()), (status, Some(code)), "{r:?}");
    let res = r.into_response();
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["www-authenticate"], challenge);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["code"], code);
    json
}

#[tokio::test]
async fn rejections_say_their_status_and_code_and_render_as_before() {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    use portcullis_axum::AuthRejection;
    use portcullis_core::{Actor, AuthError, AuthMethod, PermissionList, UserActor};

    let reader = Actor::User(std::sync::Arc::new(UserActor {
        id: "u-1".into(),
        org_id: "acme".into(),
        role: "reader".into(),
        permissions: MemoryRead::SET,
        all_orgs: false,
        session_id: "s-1".into(),
        method: AuthMethod::Jwt,
    }));
    type Admin = RequirePermissions<(SessionCreate, AdminWrite)>;

    let missing = Admin::from_request_parts(&mut parts_with(None), &())
        .await
        .unwrap_err();
    assert!(matches!(missing, AuthRejection::MissingLayer));
    assert_eq!(
        (missing.status(), missing.code(), missing.error()),
        (StatusCode::INTERNAL_SERVER_ERROR, None, None)
    );
    assert_eq!(
        missing.into_response().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let anonymous = Admin::from_request_parts(&mut parts_with(Some(Actor::Anonymous)), &())
        .await
        .unwrap_err();
    let AuthRejection::Unauthenticated(refusal) = &anonymous else {
        panic!("expected Unauthenticated, got {anonymous:?}");
    };
    assert_eq!(refusal.error(), &AuthError::MissingCredentials);
    rendered_as_it_says(
        anonymous,
        StatusCode::UNAUTHORIZED,
        "missing_credentials",
        r#"Bearer realm="portcullis""#,
    )
    .await;

    // Both missing, named in the route's order (not the catalog's).
    let forbidden = Admin::from_request_parts(&mut parts_with(Some(reader.clone())), &())
        .await
        .unwrap_err();
    let AuthRejection::Forbidden(refusal) = &forbidden else {
        panic!("expected Forbidden, got {forbidden:?}");
    };
    let AuthError::InsufficientPermissions { missing, names } = refusal.error() else {
        panic!("expected insufficient_permissions, got {refusal:?}");
    };
    assert_eq!(*missing, <(SessionCreate, AdminWrite)>::SET);
    assert_eq!(names.to_string(), "session:create admin:write");
    let json = rendered_as_it_says(
        forbidden,
        StatusCode::FORBIDDEN,
        "insufficient_permissions",
        r#"Bearer error="insufficient_scope", scope="session:create admin:write""#,
    )
    .await;
    assert_eq!(
        json["detail"],
        "missing permissions: session:create admin:write"
    );

    // Holding one of them is enough for RequireAnyPermission.
    let any = RequireAnyPermission::<(AdminWrite, MemoryRead)>::from_request_parts(
        &mut parts_with(Some(reader)),
        &(),
    )
    .await;
    assert!(any.is_ok());
}
