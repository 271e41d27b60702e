//! Portcullis for axum 0.8: extractors that say in a handler's signature what the route needs.
//!
//! | extractor | gives | refuses with |
//! | --- | --- | --- |
//! | [`CurrentActor`] | any authenticated actor | 401 `missing_credentials` |
//! | `Option<CurrentActor>` | the actor, or `None` when the layer let the request through anonymous | — (the layer's 401 comes first, see below) |
//! | [`RequirePermissions<P>`] | an actor holding every permission of `P` | 401, or 403 `insufficient_permissions` naming the missing ones |
//! | [`RequireAnyPermission<P>`] | an actor holding at least one permission of `P` | 401, or 403 |
//! | [`CurrentOrg`] | the actor and the org it acts in (every org, for the board) | 401 |
//!
//! Each derefs to the [`Actor`]. They read what [`AuthLayer`](portcullis_tower::AuthLayer) put
//! in the request; without the layer they answer 500 with a message naming the fix, never a 401
//! (`Option<CurrentActor>` too: a missing layer is not an anonymous request).
//!
//! The layer decides first, by its [`Policy`](portcullis_tower::Policy): where
//! [`needs_auth`](portcullis_tower::Policy::needs_auth) holds, a request without an actor is
//! its 401 before any handler runs, so there `Option<CurrentActor>` is always `Some`. It is
//! `None` only where the layer lets an anonymous request through: on a public path (also when a
//! bad credential was presented there) or with `require_auth(false)` and no credential at all.
//! A present-but-bad credential on any other path is the layer's 401, never `None`.
//!
//! ```
//! use axum::{Router, routing::post};
//! use portcullis_axum::RequirePermissions;
//! use portcullis_core::{Authenticator, seed::MemoryCreate};
//! use portcullis_tower::AuthLayer;
//!
//! async fn create_memory(who: RequirePermissions<MemoryCreate>) -> String {
//!     format!("created by {}", who.id().unwrap_or("?"))
//! }
//! let auth = Authenticator::builder().build().unwrap();
//! let app: Router = Router::new()
//!     .route("/memories", post(create_memory))
//!     .layer(AuthLayer::new(auth));
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "routes")]
pub mod routes;

use std::marker::PhantomData;
use std::ops::Deref;

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use portcullis_core::ids::OrgId;
use portcullis_core::{Actor, AuthError, OrgScope, PermissionList, PermissionNames};
use portcullis_tower::Renderer;

/// What a handler gets when the route needs any authenticated actor.
///
/// `Option<CurrentActor>` is `None` for an anonymous request instead of refusing it.
///
/// ```
/// use portcullis_axum::CurrentActor;
///
/// async fn me(who: CurrentActor) -> String {
///     format!("{} {}", who.kind().as_str(), who.id().unwrap_or("-"))
/// }
///
/// async fn greeting(who: Option<CurrentActor>) -> String {
///     who.and_then(|a| a.id().map(str::to_owned)).unwrap_or_else(|| "hello, stranger".into())
/// }
/// # let _: axum::Router = axum::Router::new()
/// #     .route("/me", axum::routing::get(me))
/// #     .route("/", axum::routing::get(greeting));
/// ```
#[derive(Debug, Clone)]
pub struct CurrentActor(pub Actor);

/// An actor holding every permission of `P` (a marker or a tuple of markers).
///
/// Without them: 403 `insufficient_permissions`, and
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` naming the missing ones.
///
/// ```
/// use portcullis_axum::RequirePermissions;
/// use portcullis_core::seed::{MemoryDelete, MemoryRead};
///
/// async fn purge(who: RequirePermissions<(MemoryRead, MemoryDelete)>) -> String {
///     format!("purged by {}", who.id().unwrap_or("?"))
/// }
/// # let _: axum::Router = axum::Router::new().route("/purge", axum::routing::post(purge));
/// ```
pub struct RequirePermissions<P>(Actor, PhantomData<fn() -> P>);

/// An actor holding at least one permission of `P`.
///
/// ```
/// use portcullis_axum::RequireAnyPermission;
/// use portcullis_core::PermissionList;
/// use portcullis_core::seed::{MemoryRead, MemorySearch};
///
/// async fn search(who: RequireAnyPermission<(MemoryRead, MemorySearch)>) -> &'static str {
///     if who.has::<MemoryRead>() { "full results" } else { "titles only" }
/// }
/// # let _: axum::Router = axum::Router::new().route("/search", axum::routing::get(search));
/// ```
pub struct RequireAnyPermission<P>(Actor, PhantomData<fn() -> P>);

/// The actor and the organisation it acts in.
///
/// ```
/// use portcullis_axum::CurrentOrg;
/// use portcullis_core::OrgScope;
///
/// async fn list(org: CurrentOrg) -> String {
///     match org.scope() {
///         OrgScope::Org(id) => format!("rows of {}", id.as_str()),
///         OrgScope::All => "rows of every org".into(),
///     }
/// }
/// # let _: axum::Router = axum::Router::new().route("/rows", axum::routing::get(list));
/// ```
#[derive(Debug, Clone)]
pub struct CurrentOrg(Actor);

macro_rules! deref_to_actor {
    ($($t:ident $(<$p:ident>)?),+) => {$(
        impl$(<$p>)? Deref for $t$(<$p>)? {
            type Target = Actor;
            fn deref(&self) -> &Actor {
                &self.0
            }
        }
    )+};
}
deref_to_actor!(
    CurrentActor,
    RequirePermissions<P>,
    RequireAnyPermission<P>,
    CurrentOrg
);

impl<P> RequirePermissions<P> {
    /// The actor.
    pub fn into_actor(self) -> Actor {
        self.0
    }
}

impl<P> RequireAnyPermission<P> {
    /// The actor.
    pub fn into_actor(self) -> Actor {
        self.0
    }
}

impl<P> std::fmt::Debug for RequirePermissions<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequirePermissions").field(&self.0).finish()
    }
}

impl<P> std::fmt::Debug for RequireAnyPermission<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireAnyPermission")
            .field(&self.0)
            .finish()
    }
}

impl CurrentOrg {
    /// The actor's own organisation; `None` for the board. A `superadmin` has one, yet acts in
    /// every org: ask [`CurrentOrg::scope`] where it may act.
    pub fn org_id(&self) -> Option<&OrgId> {
        self.0.org_id()
    }

    /// Where the actor acts: its own org, or every org (the board, a `superadmin`). Bind
    /// queries with [`OrgScope::org`]: `None` means every org.
    pub fn scope(&self) -> OrgScope<'_> {
        self.0.query_scope()
    }

    /// True when the actor may act in `org`.
    pub fn allows(&self, org: &OrgId) -> bool {
        self.0.can_access_org(org)
    }
}

/// Why an extractor refused. Like axum's own rejections it has a [`status`](Self::status) and
/// is its own response ([`IntoResponse`]): a 401 or 403 rendered as the layer renders its
/// refusals (with the application's [`Renderer`] when the layer has a custom one), or the 500
/// of a route without the layer.
///
/// ```
/// use axum::http::StatusCode;
/// use portcullis_axum::AuthRejection;
///
/// fn describe(r: &AuthRejection) -> String {
///     match r {
///         AuthRejection::MissingLayer => "misconfigured".into(),
///         AuthRejection::Unauthenticated(_) => "log in first".into(),
///         AuthRejection::Forbidden(f) => format!("not allowed: {}", f.error().code()),
///         _ => r.status().to_string(),
///     }
/// }
/// assert_eq!(AuthRejection::MissingLayer.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(AuthRejection::MissingLayer.code(), None);
/// # let _ = describe;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// 500: no [`Actor`] in the request — the layer is not installed on this route.
    MissingLayer,
    /// 401 `missing_credentials`: the layer let an anonymous request through and the route
    /// needs an actor.
    Unauthenticated(Refusal),
    /// 403 `insufficient_permissions`, naming the permissions missing.
    Forbidden(Refusal),
}

/// A 401 or 403 of an extractor: the error, and the renderer it is answered with.
#[derive(Debug)]
pub struct Refusal {
    error: AuthError,
    /// The layer's renderer when it is a custom one (in the request's extensions).
    renderer: Option<Renderer>,
}

impl Refusal {
    fn new(parts: &Parts, error: AuthError) -> Self {
        Self {
            error,
            renderer: parts.extensions.get::<Renderer>().cloned(),
        }
    }

    /// The refusal.
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The refusal, by value.
    pub fn into_error(self) -> AuthError {
        self.error
    }

    /// Its response, rendered as the layer renders its own refusals.
    fn into_response(self) -> Response {
        self.renderer
            .unwrap_or_default()
            .render::<Body>(&self.error)
    }
}

impl AuthRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self.error() {
            None => StatusCode::INTERNAL_SERVER_ERROR,
            Some(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED),
        }
    }

    /// The error, unless the layer is missing.
    pub fn error(&self) -> Option<&AuthError> {
        match self {
            Self::MissingLayer => None,
            Self::Unauthenticated(r) | Self::Forbidden(r) => Some(r.error()),
        }
    }

    /// The contract's `code` of the response, unless the layer is missing (that 500 is plain
    /// text, [`MISSING_LAYER`]).
    pub fn code(&self) -> Option<&'static str> {
        self.error().map(AuthError::code)
    }
}

/// The text of the 500 a route without the layer answers.
pub const MISSING_LAYER: &str = "portcullis: no Actor in the request extensions: this route is \
    not behind the auth layer. Add `.layer(AuthLayer::new(authenticator))` to the Router, after \
    the routes that use Portcullis extractors.";

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingLayer => {
                (StatusCode::INTERNAL_SERVER_ERROR, MISSING_LAYER).into_response()
            }
            Self::Unauthenticated(r) | Self::Forbidden(r) => r.into_response(),
        }
    }
}

/// The authenticated actor, or the rejection.
fn authenticated(parts: &Parts) -> Result<&Actor, AuthRejection> {
    match parts.extensions.get::<Actor>() {
        None => Err(AuthRejection::MissingLayer),
        Some(Actor::Anonymous) => Err(AuthRejection::Unauthenticated(Refusal::new(
            parts,
            AuthError::MissingCredentials,
        ))),
        Some(actor) => Ok(actor),
    }
}

/// 403 `insufficient_permissions` for `missing`, named with `P`'s names in `P`'s order.
fn forbidden<P: PermissionList>(
    parts: &Parts,
    missing: portcullis_core::PermissionSet,
) -> AuthRejection {
    AuthRejection::Forbidden(Refusal::new(
        parts,
        AuthError::InsufficientPermissions {
            missing,
            names: PermissionNames::of::<P>(missing),
        },
    ))
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentActor {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authenticated(parts).map(|a| Self(a.clone()))
    }
}

/// `Option<CurrentActor>`: `None` for an anonymous request the layer let through, the actor
/// otherwise (the board included); a 500 naming the fix without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentActor {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Actor>() {
            None => Err(AuthRejection::MissingLayer),
            Some(Actor::Anonymous) => Ok(None),
            Some(actor) => Ok(Some(Self(actor.clone()))),
        }
    }
}

impl<S: Send + Sync, P: PermissionList> FromRequestParts<S> for RequirePermissions<P> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let actor = authenticated(parts)?;
        let missing = actor.permissions().missing(P::SET);
        if missing.is_empty() {
            Ok(Self(actor.clone(), PhantomData))
        } else {
            Err(forbidden::<P>(parts, missing))
        }
    }
}

impl<S: Send + Sync, P: PermissionList> FromRequestParts<S> for RequireAnyPermission<P> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let actor = authenticated(parts)?;
        if actor.permissions().intersects(P::SET) {
            Ok(Self(actor.clone(), PhantomData))
        } else {
            Err(forbidden::<P>(parts, P::SET))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentOrg {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authenticated(parts).map(|a| Self(a.clone()))
    }
}
