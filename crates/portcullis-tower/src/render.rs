//! The one place a refusal becomes a response: `application/problem+json`
//! `{type, title, status, detail, code}` with the contract's headers — `WWW-Authenticate` on
//! 401 and on 403 `insufficient_permissions`, `Retry-After` and `RateLimit-*` on 429,
//! `Retry-After` on 503. Applications may replace the body (not the status or headers) with
//! [`Renderer::with_body`].
//!
//! Everything follows from the [`AuthError`]: its status and `code`, whether a 401's challenge
//! says `error="invalid_token"` ([`AuthError::credential_presented`]), and the `scope` of a 403
//! (the `names` of [`AuthError::InsufficientPermissions`]).

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use portcullis_core::AuthError;

/// Seconds a client should wait after a 503.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json");

/// The problem document of a refusal, as given to a custom body function.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    /// HTTP status.
    pub status: StatusCode,
    /// The contract's `code`.
    pub code: &'static str,
    /// Short title.
    pub title: &'static str,
    /// Human-readable detail. Never contains a credential or a secret.
    pub detail: String,
    /// The missing permissions' names, space-separated, if the error names any.
    pub scope: Option<&'a str>,
}

/// A replacement body: its content type and bytes.
pub type ErrorBody = (HeaderValue, Bytes);

type BodyFn = dyn Fn(&AuthError, &Problem<'_>) -> ErrorBody + Send + Sync;

/// Renders refusals. Cheap to clone.
#[derive(Clone, Default)]
pub struct Renderer {
    body: Option<Arc<BodyFn>>,
    /// `None`: the default realm, whose challenges are static.
    realm: Option<Arc<Realm>>,
}

/// The two 401 challenges of one realm, built once so that a refusal copies a header value
/// instead of formatting one. Behind an `Arc`: a renderer travels in rejections, which should
/// stay small.
struct Realm {
    bare: HeaderValue,
    invalid_token: HeaderValue,
}

const BARE_CHALLENGE: HeaderValue = HeaderValue::from_static(r#"Bearer realm="portcullis""#);
const INVALID_TOKEN_CHALLENGE: HeaderValue =
    HeaderValue::from_static(r#"Bearer realm="portcullis", error="invalid_token""#);

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("custom_body", &self.body.is_some())
            .field(
                "realm",
                &self
                    .realm
                    .as_ref()
                    .map_or(BARE_CHALLENGE, |r| r.bare.clone()),
            )
            .finish()
    }
}

impl Renderer {
    /// Replaces the body of every refusal; status and headers stay the contract's.
    ///
    /// ```
    /// use portcullis_tower::render::Renderer;
    /// let renderer = Renderer::default().with_body(|_err, problem| {
    ///     (http::HeaderValue::from_static("text/plain"), format!("no: {}", problem.code).into())
    /// });
    /// # let _ = renderer;
    /// ```
    #[must_use]
    pub fn with_body(
        mut self,
        f: impl Fn(&AuthError, &Problem<'_>) -> ErrorBody + Send + Sync + 'static,
    ) -> Self {
        self.body = Some(Arc::new(f));
        self
    }

    /// Names `realm` in the 401 challenge (`Bearer realm="…"`). A realm is a quoted-string:
    /// visible ASCII and spaces, without `"` or `\`; anything else is refused, never escaped.
    ///
    /// ```
    /// use portcullis_tower::render::Renderer;
    /// assert!(Renderer::default().with_realm("my-api").is_ok());
    /// assert!(Renderer::default().with_realm("a\"b").is_err());
    /// ```
    pub fn with_realm(mut self, realm: &str) -> Result<Self, InvalidRealm> {
        let ok = !realm.is_empty()
            && realm
                .bytes()
                .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\');
        if !ok {
            return Err(InvalidRealm);
        }
        if realm == crate::policy::DEFAULT_REALM {
            self.realm = None;
            return Ok(self);
        }
        let value = |v: String| HeaderValue::from_str(&v).map_err(|_| InvalidRealm);
        self.realm = Some(Arc::new(Realm {
            bare: value(format!(r#"Bearer realm="{realm}""#))?,
            invalid_token: value(format!(r#"Bearer realm="{realm}", error="invalid_token""#))?,
        }));
        Ok(self)
    }

    /// This renderer with `other`'s realm.
    pub(crate) fn with_realm_of(mut self, other: &Self) -> Self {
        self.realm = other.realm.clone();
        self
    }

    /// True when a custom body function or realm is set (extractors then render with this
    /// renderer too).
    pub fn is_custom(&self) -> bool {
        self.body.is_some() || self.realm.is_some()
    }

    /// The response for `err`: status, `code`, challenge and scope all follow from it.
    ///
    /// ```
    /// use portcullis_core::{AuthError, PermissionList, PermissionNames, seed::MemoryRead};
    /// use portcullis_tower::Renderer;
    /// let err = AuthError::InsufficientPermissions {
    ///     missing: MemoryRead::SET,
    ///     names: PermissionNames::of::<MemoryRead>(MemoryRead::SET),
    /// };
    /// let res: http::Response<bytes::Bytes> = Renderer::default().render(&err);
    /// assert_eq!(res.status(), 403);
    /// assert_eq!(
    ///     res.headers()["www-authenticate"],
    ///     r#"Bearer error="insufficient_scope", scope="memory:read""#
    /// );
    /// ```
    pub fn render<B: From<Bytes>>(&self, err: &AuthError) -> Response<B> {
        if let AuthError::Unavailable(_) = err {
            portcullis_core::metrics::unavailable();
        }
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let scope = match err {
            AuthError::InsufficientPermissions { names, .. } if !names.is_empty() => {
                Some(names.to_string())
            }
            _ => None,
        };
        let scope = scope.as_deref();
        let problem = Problem {
            status,
            code: err.code(),
            title: err.title(),
            detail: detail(err, scope),
            scope,
        };
        let (content_type, body) = match &self.body {
            Some(f) => f(err, &problem),
            None => (PROBLEM_JSON, problem_json(&problem)),
        };
        let mut response = Response::new(B::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match err {
            AuthError::InsufficientPermissions { .. } => {
                let mut v = String::from(r#"Bearer error="insufficient_scope""#);
                if let Some(scope) = scope {
                    let _ = write!(v, r#", scope="{scope}""#);
                }
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(WWW_AUTHENTICATE, v);
                }
            }
            AuthError::RateLimited(info) => {
                headers.insert(RETRY_AFTER, info.retry_after_secs.into());
                headers.insert(
                    HeaderName::from_static("ratelimit-limit"),
                    info.limit.into(),
                );
                headers.insert(
                    HeaderName::from_static("ratelimit-remaining"),
                    info.remaining.into(),
                );
                headers.insert(
                    HeaderName::from_static("ratelimit-reset"),
                    info.reset_secs.into(),
                );
            }
            AuthError::Unavailable(_) => {
                headers.insert(RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECS.into());
            }
            AuthError::CsrfFailed => {}
            _ if status == StatusCode::UNAUTHORIZED => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    match (&self.realm, err.credential_presented()) {
                        (None, true) => INVALID_TOKEN_CHALLENGE,
                        (None, false) => BARE_CHALLENGE,
                        (Some(r), true) => r.invalid_token.clone(),
                        (Some(r), false) => r.bare.clone(),
                    },
                );
            }
            _ => {}
        }
        response
    }
}

/// A problem that is not an auth refusal — an application's own `invalid_request`,
/// `not_found`, `conflict`, … — in the same document and with the same headers
/// (`application/problem+json`, `Cache-Control: no-store`) as the renderer's refusals.
/// `detail` is shown to the client: never put a value the client sent or a secret in it.
///
/// ```
/// use http::StatusCode;
/// let res: http::Response<bytes::Bytes> =
///     portcullis_tower::render::problem(StatusCode::NOT_FOUND, "not_found", "no such resource");
/// assert_eq!(res.status(), 404);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// ```
pub fn problem<B: From<Bytes>>(
    status: StatusCode,
    code: &'static str,
    detail: &str,
) -> Response<B> {
    let body = problem_json(&Problem {
        status,
        code,
        title: status.canonical_reason().unwrap_or("Error"),
        detail: detail.to_owned(),
        scope: None,
    });
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, PROBLEM_JSON);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A realm that cannot be a quoted-string in `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRealm;

impl std::fmt::Display for InvalidRealm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a realm is non-empty visible ASCII without `\"` or `\\`")
    }
}

impl std::error::Error for InvalidRealm {}

fn detail(err: &AuthError, scope: Option<&str>) -> String {
    match (err, scope) {
        (AuthError::InsufficientPermissions { .. }, Some(scope)) => {
            format!("missing permissions: {scope}")
        }
        // Display texts are fixed strings: no credential, key or store message ever reaches
        // them (`Unavailable` does not print its cause).
        _ => err.to_string(),
    }
}

fn problem_json(p: &Problem<'_>) -> Bytes {
    let doc = serde_json::json!({
        "type": "about:blank",
        "title": p.title,
        "status": p.status.as_u16(),
        "detail": p.detail,
        "code": p.code,
    });
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::seed::{MemoryCreate, SessionRead};
    use portcullis_core::{
        PermissionList, PermissionNames, PermissionSet, RateLimitInfo, StoreError, TokenError,
    };

    fn render(err: AuthError) -> Response<Bytes> {
        Renderer::default().render(&err)
    }

    fn json(r: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    #[test]
    fn a_401_without_credentials_has_a_bare_challenge() {
        let r = render(AuthError::MissingCredentials);
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis""#
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
        let body = json(&r);
        assert_eq!(body["code"], "missing_credentials");
        assert_eq!(body["status"], 401);
        assert_eq!(body["title"], "Unauthorized");
        assert!(body["type"].is_string() && body["detail"].is_string());
    }

    #[test]
    fn a_401_with_a_credential_says_invalid_token() {
        let r = render(AuthError::InvalidToken(TokenError::BadSignature));
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis", error="invalid_token""#
        );
        assert_eq!(json(&r)["code"], "invalid_token");
    }

    #[test]
    fn invalid_credentials_says_invalid_token_only_for_another_scheme() {
        let login = render(AuthError::InvalidCredentials);
        let basic = render(AuthError::UnsupportedScheme);
        assert_eq!(
            login.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis""#
        );
        assert_eq!(
            basic.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis", error="invalid_token""#
        );
        assert_eq!(login.status(), basic.status());
        assert_eq!(login.body(), basic.body(), "one code, one body");
        assert_eq!(json(&basic)["code"], "invalid_credentials");
    }

    #[test]
    fn a_403_names_the_missing_scope() {
        type Need = (MemoryCreate, SessionRead);
        let r = render(AuthError::InsufficientPermissions {
            missing: Need::SET,
            names: PermissionNames::of::<Need>(Need::SET),
        });
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_scope", scope="memory:create session:read""#
        );
        assert_eq!(json(&r)["code"], "insufficient_permissions");
        assert_eq!(
            json(&r)["detail"],
            "missing permissions: memory:create session:read"
        );
        let csrf = render(AuthError::CsrfFailed);
        assert_eq!(
            (csrf.status().as_u16(), json(&csrf)["code"].as_str()),
            (403, Some("csrf_failed"))
        );
        assert!(csrf.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn a_403_without_names_names_nothing() {
        let r = render(AuthError::insufficient_permissions(PermissionSet::EMPTY));
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_scope""#
        );
        assert_eq!(json(&r)["detail"], "insufficient permissions");
    }

    #[test]
    fn a_429_carries_retry_after_and_ratelimit_headers() {
        let info = RateLimitInfo {
            limit: 60,
            remaining: 0,
            reset_secs: 7,
            retry_after_secs: 1,
        };
        let r = render(AuthError::RateLimited(info));
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert_eq!(r.headers()["ratelimit-limit"], "60");
        assert_eq!(r.headers()["ratelimit-remaining"], "0");
        assert_eq!(r.headers()["ratelimit-reset"], "7");
        assert_eq!(json(&r)["code"], "rate_limited");
    }

    #[test]
    fn a_503_has_retry_after_and_never_the_store_message() {
        let err = AuthError::Unavailable(StoreError::Unavailable(
            "postgres://admin:hunter2@db".into(),
        ));
        let r = render(err);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "5");
        assert_eq!(json(&r)["code"], "auth_unavailable");
        assert!(!String::from_utf8_lossy(r.body()).contains("hunter2"));
    }

    #[test]
    fn a_custom_body_keeps_status_and_headers() {
        let renderer = Renderer::default().with_body(|_, p| {
            (
                HeaderValue::from_static("text/plain"),
                format!("denied: {}", p.code).into(),
            )
        });
        let r: Response<Bytes> = renderer.render(&AuthError::TokenExpired);
        assert_eq!(r.status(), 401);
        assert_eq!(r.body(), "denied: token_expired");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis", error="invalid_token""#
        );
    }

    #[test]
    fn a_realm_names_the_401_challenge_and_only_a_custom_one_is_custom() {
        let same = Renderer::default().with_realm("portcullis").unwrap();
        assert!(
            !same.is_custom(),
            "the default realm needs no renderer in extensions"
        );
        let acme = Renderer::default().with_realm("acme").unwrap();
        assert!(acme.is_custom());
        let r: Response<Bytes> = acme.render(&AuthError::MissingCredentials);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], r#"Bearer realm="acme""#);
        for bad in ["", "a\"b", "a\\b", "caf\u{e9}", "a\nb"] {
            assert_eq!(
                Renderer::default().with_realm(bad).err(),
                Some(InvalidRealm),
                "{bad:?}"
            );
        }
    }
}
