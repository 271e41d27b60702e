//! Every failure the routes answer, as `application/problem+json`: auth failures through the
//! library's one renderer (same body and headers as the layer's), the rest with the contract's
//! codes (`invalid_request`, `not_found`, `conflict`, …) through
//! [`render::problem`](portcullis_tower::render::problem). An application answers its own
//! errors with [`ApiError`] too, and looks like the rest of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::lifecycle::{Lifecycle, LifecycleError};
use portcullis_core::{AuthError, PermissionCatalog, PermissionSet, StoreError};
use portcullis_tower::render::{self, Renderer};

/// A refusal or failure of one request.
#[derive(Debug)]
pub enum ApiError {
    /// An auth failure, rendered as the layer renders it: the 401 challenge and the 403
    /// `scope` follow from the error ([`ApiError::forbidden`] names missing permissions).
    Auth(AuthError),
    /// 400 `invalid_request`: the text says what is wrong (never echoing a secret).
    BadRequest(String),
    /// 404 `not_found`.
    NotFound,
    /// 405 `method_not_allowed`.
    MethodNotAllowed,
    /// 409 `conflict`.
    Conflict(&'static str),
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType,
    /// 500 `internal_error`: a bug; the cause is logged, not shown.
    Internal(String),
    /// 503 `auth_unavailable` with `Retry-After`: too many passwords are being checked at
    /// once; this request's check did not run (the server sheds rather than queue for ever).
    Busy,
}

impl ApiError {
    /// 403 `insufficient_permissions` naming what is missing (nothing named when `missing`
    /// is empty: the route needs a kind of actor, not a permission).
    pub fn forbidden(missing: PermissionSet, catalog: &PermissionCatalog) -> Self {
        Self::Auth(AuthError::InsufficientPermissions {
            missing,
            names: catalog.names(missing).collect(),
        })
    }

    /// 400 `invalid_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    /// 503 `auth_unavailable` with `Retry-After`: a store of the app's own could not be
    /// reached (fail closed, as Portcullis does with its own). `cause` is logged, not shown.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        StoreError::Unavailable(cause.to_string()).into()
    }

    /// The response to a [`LifecycleError`], naming missing permissions with `catalog`.
    pub fn from_lifecycle(e: LifecycleError, catalog: &PermissionCatalog) -> Self {
        match e {
            LifecycleError::Auth(AuthError::InsufficientPermissions { missing, .. }) => {
                Self::forbidden(missing, catalog)
            }
            LifecycleError::Auth(e) => Self::Auth(e),
            LifecycleError::Invalid(why) => Self::BadRequest(why),
            LifecycleError::NotFound => Self::NotFound,
            LifecycleError::Conflict(what) => Self::Conflict(what),
            LifecycleError::Busy => Self::Busy,
            LifecycleError::Internal(why) => Self::Internal(why),
        }
    }
}

/// `.api(&lifecycle)?` in a handler: a [`LifecycleError`] as its response.
pub trait LifecycleResultExt<T> {
    /// The result, its error as an [`ApiError`].
    fn api(self, lifecycle: &Lifecycle) -> Result<T, ApiError>;
}

impl<T> LifecycleResultExt<T> for Result<T, LifecycleError> {
    fn api(self, lifecycle: &Lifecycle) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::from_lifecycle(e, lifecycle.authenticator().catalog()))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Auth(AuthError::Unavailable(other)),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

fn problem(status: StatusCode, code: &'static str, detail: &str) -> Response {
    render::problem(status, code, detail)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Auth(error) => {
                if let AuthError::Unavailable(e) = &error {
                    tracing::warn!(error = %e, "store unavailable");
                }
                Renderer::default().render(&error)
            }
            Self::BadRequest(detail) => {
                problem(StatusCode::BAD_REQUEST, "invalid_request", &detail)
            }
            Self::NotFound => problem(StatusCode::NOT_FOUND, "not_found", "no such resource"),
            Self::MethodNotAllowed => problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            ),
            Self::Conflict(detail) => problem(StatusCode::CONFLICT, "conflict", detail),
            Self::PayloadTooLarge => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 64 KiB",
            ),
            Self::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            Self::Busy => {
                let mut res = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth_unavailable",
                    "the server is busy checking other passwords; retry shortly",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
            }
        }
    }
}

/// `Result` of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::PermissionList;
    use portcullis_core::seed::{AdminRead, MemoryDelete};

    fn challenge(e: ApiError) -> (StatusCode, Option<String>) {
        let res = e.into_response();
        let challenge = res
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        (res.status(), challenge)
    }

    #[test]
    fn the_challenge_follows_from_the_error() {
        let catalog = PermissionCatalog::seed();
        let bare = r#"Bearer realm="portcullis""#;
        let invalid = r#"Bearer realm="portcullis", error="invalid_token""#;
        let lifecycle = |e| ApiError::from_lifecycle(LifecycleError::Auth(e), &catalog);
        let cases = [
            (lifecycle(AuthError::InvalidCredentials), bare),
            (AuthError::MissingCredentials.into(), bare),
            (lifecycle(AuthError::TokenRevoked), invalid),
            (AuthError::TokenRevoked.into(), invalid),
        ];
        for (e, want) in cases {
            let what = format!("{e:?}");
            assert_eq!(
                challenge(e),
                (StatusCode::UNAUTHORIZED, Some(want.to_owned())),
                "{what}"
            );
        }
    }

    #[test]
    fn a_lifecycle_403_is_named_through_the_catalog() {
        let catalog = PermissionCatalog::seed();
        let need = <(MemoryDelete, AdminRead)>::SET;
        let e = LifecycleError::Auth(AuthError::insufficient_permissions(need));
        assert_eq!(
            challenge(ApiError::from_lifecycle(e, &catalog)),
            (
                StatusCode::FORBIDDEN,
                Some(
                    r#"Bearer error="insufficient_scope", scope="admin:read memory:delete""#.into()
                )
            )
        );
        // Nothing the catalog knows: nothing named.
        let unknown = PermissionSet::from_bit(100);
        assert_eq!(
            challenge(ApiError::forbidden(unknown, &catalog)),
            (
                StatusCode::FORBIDDEN,
                Some(r#"Bearer error="insufficient_scope""#.into())
            )
        );
    }
}
