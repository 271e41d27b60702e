//! [`AuthLayer`], [`AuthService`] and [`ResponseFuture`].
//!
//! Requests with no credential at all are decided synchronously in `call` (anonymous, the
//! board — only for a request addressed to loopback unless remote use is allowed — or 401, as
//! the [`Policy`] says) and go straight to the inner service. Requests with credentials resolve them
//! through the [`Authenticator`] in a boxed future, then call the readied inner service with the
//! [`Actor`] in the request's extensions, or return the refusal.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, Response};
use pin_project_lite::pin_project;
use portcullis_core::metrics;
use portcullis_core::{Actor, AuthError, Authenticator, Credential};
use tower_layer::Layer;
use tower_service::Service;

use crate::credentials::{self, Sources};
use crate::policy::{Fallback, Policy, PolicyError};
use crate::render::Renderer;

/// Resolves every request to an [`Actor`] and inserts it into the request's extensions.
///
/// [`AuthLayer::new`] uses the default [`Policy`]: every path needs an actor, no fallback.
/// [`AuthLayer::builder`] sets public paths, fallback, header and cookie names and the realm.
///
/// ```
/// use portcullis_core::Authenticator;
/// use portcullis_tower::AuthLayer;
/// let layer = AuthLayer::new(Authenticator::builder().build().unwrap());
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

/// What every request reads and nothing changes: behind one `Arc`, so that cloning the service
/// (axum does, per request, for a layer on a router's routes) costs one reference count, not a
/// copy of the paths and not a second count for the authenticator.
#[derive(Debug)]
struct Shared {
    auth: Authenticator,
    policy: Policy,
    sources: Sources,
    renderer: Renderer,
}

impl AuthLayer {
    /// A layer deciding with `auth` and the default [`Policy`].
    pub fn new(auth: Authenticator) -> Self {
        Self {
            shared: Arc::new(Shared {
                auth,
                policy: Policy::default(),
                sources: Sources::DEFAULT,
                renderer: Renderer::default(),
            }),
        }
    }

    /// A builder for the layer's HTTP policy.
    ///
    /// ```
    /// use portcullis_core::Authenticator;
    /// use portcullis_tower::{AuthLayer, Fallback};
    /// let auth = Authenticator::builder().build().unwrap();
    /// let layer = AuthLayer::builder(auth)
    ///     .public_paths(["/", "/healthz", "/auth/login"])
    ///     .require_auth(true)
    ///     .fallback(Fallback::Board)
    ///     .allow_remote_fallback(false)
    ///     .realm("my-api")
    ///     .api_key_header("x-api-key")
    ///     .access_cookie("my_access")
    ///     .build()
    ///     .unwrap();
    /// assert!(!layer.policy().needs_auth("/healthz"));
    /// ```
    pub fn builder(auth: Authenticator) -> AuthLayerBuilder {
        AuthLayerBuilder {
            auth,
            policy: Policy::default(),
            renderer: Renderer::default(),
        }
    }

    /// Renders refusals with `renderer` (e.g. a custom body), keeping the realm.
    #[must_use]
    pub fn with_renderer(mut self, renderer: Renderer) -> Self {
        let shared = &*self.shared;
        let renderer = renderer.with_realm_of(&shared.renderer);
        self.shared = Arc::new(Shared {
            auth: shared.auth.clone(),
            policy: shared.policy.clone(),
            sources: shared.sources.clone(),
            renderer,
        });
        self
    }

    /// The policy this layer applies.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }
}

/// Builds an [`AuthLayer`]: the [`Policy`] setters, a [`Renderer`], and
/// [`build`](Self::build), which checks them.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayerBuilder {
    auth: Authenticator,
    policy: Policy,
    renderer: Renderer,
}

macro_rules! policy_setters {
    ($( $(#[$m:meta])* $name:ident($ty:ty); )+) => {$(
        $(#[$m])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.policy = self.policy.$name(value);
            self
        }
    )+};
}

impl AuthLayerBuilder {
    policy_setters! {
        /// See [`Policy::require_auth`].
        require_auth(bool);
        /// See [`Policy::fallback`].
        fallback(Fallback);
        /// See [`Policy::allow_remote_fallback`].
        allow_remote_fallback(bool);
        /// See [`Policy::realm`].
        realm(&str);
        /// See [`Policy::api_key_header`].
        api_key_header(&str);
        /// See [`Policy::access_cookie`].
        access_cookie(&str);
    }

    /// See [`Policy::public_paths`].
    pub fn public_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.policy = self.policy.public_paths(paths);
        self
    }

    /// Replaces the whole policy (e.g. one read with [`Policy::with_env`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Renders refusals with `renderer` (e.g. a custom body).
    pub fn renderer(mut self, renderer: Renderer) -> Self {
        self.renderer = renderer;
        self
    }

    /// Checks the policy against the authenticator (production refuses board fallback) and
    /// that the names and realm can travel in HTTP.
    pub fn build(self) -> Result<AuthLayer, PolicyError> {
        let policy = self.policy;
        policy.check_env(self.auth.config().env)?;
        let setting = |setting, reason| PolicyError::Setting { setting, reason };
        let api_key_header = HeaderName::try_from(policy.api_key_header.as_str())
            .map_err(|_| setting("api_key_header", "not a header name"))?;
        if api_key_header == AUTHORIZATION || api_key_header == COOKIE {
            // Those are read as the bearer and cookie sources already.
            return Err(setting("api_key_header", "not authorization or cookie"));
        }
        let cookie = policy.access_cookie.as_str();
        // RFC 6265 cookie-name: a token, so no separators, `=` or `;` in particular.
        if cookie.is_empty()
            || !cookie
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            return Err(setting("access_cookie", "not a cookie name"));
        }
        let renderer = self
            .renderer
            .with_realm(&policy.realm)
            .map_err(|_| setting("realm", "visible ASCII without quotes or backslashes"))?;
        let sources = Sources {
            api_key_header,
            access_cookie: Cow::Owned(policy.access_cookie.clone()),
        };
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                auth: self.auth,
                policy,
                sources,
                renderer,
            }),
        })
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        // Public paths need no actor; a bad credential there leaves the request anonymous
        // (never the board), so that e.g. login works with a stale access cookie.
        let public = shared.policy.is_public(req.uri().path());
        let prefix = &shared.auth.config().api_key_prefix;
        // Read through `&req`, not split into parts: on the cached path the request then goes
        // to the inner service without its head (~200 bytes) being moved out and back.
        let extracted = credentials::extract_headers(req.headers(), prefix, &shared.sources);
        let early = match extracted {
            Ok(creds) if creds.is_empty() => Early::NoCredentials,
            Ok(creds) => {
                // The common case is decided here, without a future: one credential,
                // resolved recently and unchanged since.
                let mut all = creds.iter();
                match (all.next(), all.next()) {
                    (Some(only), None) => match shared.auth.resolve_cached(only) {
                        Some(actor) => Early::Cached(
                            only.kind(),
                            check_csrf(only, req.method(), req.headers(), actor),
                        ),
                        None => Early::Resolve,
                    },
                    _ => Early::Resolve,
                }
            }
            Err(e) => Early::Unreadable(e),
        };
        let (kind, actor, presented) = match early {
            Early::Resolve => {
                // Only decisions that wait report a latency: one made here, synchronously,
                // takes well under a microsecond, and skipping the clock reads is measurable
                // on the hot path (two `clock_gettime` of the three per cached request).
                let started = Instant::now();
                let (parts, body) = req.into_parts();
                let shared = self.shared.clone();
                let decision = Box::pin(async move {
                    let (kind, result) = decide(&shared.auth, &shared.sources, &parts).await;
                    (parts, kind, result)
                });
                return ResponseFuture {
                    state: State::Authorizing {
                        decision,
                        body: Some(body),
                        inner: Some(take_ready(&mut self.inner)),
                        shared: self.shared.clone(),
                        started,
                        public,
                    },
                };
            }
            Early::NoCredentials => {
                let fallback = shared.policy.fallback_for(req.uri(), req.headers());
                if !fallback.is_authenticated() && shared.policy.needs_auth_when(public) {
                    ("none", Err(AuthError::MissingCredentials), false)
                } else {
                    ("none", Ok(fallback), false)
                }
            }
            Early::Cached(kind, result) => (kind, result, true),
            Early::Unreadable(e) => ("unreadable", Err(e), true),
        };
        let actor = match actor {
            Err(_) if public && presented => Ok(Actor::Anonymous),
            other => other,
        };
        log_decision(kind, actor.as_ref(), None);
        metrics::decision(kind, actor.as_ref().map(|_| ()));
        match actor {
            Ok(actor) => ResponseFuture {
                state: State::Calling {
                    fut: call_with(&mut self.inner, req, actor, &shared.renderer),
                },
            },
            Err(e) => ResponseFuture {
                state: State::Rejected {
                    response: Some(shared.renderer.render(&e)),
                },
            },
        }
    }
}

/// What `call` can tell without waiting.
enum Early {
    /// No credential at all: the fallback actor, or 401.
    NoCredentials,
    /// One credential, resolved before and still fresh (CSRF already checked).
    Cached(&'static str, Result<Actor, AuthError>),
    /// Credentials to resolve through the stores.
    Resolve,
    /// A credential header that cannot be read.
    Unreadable(AuthError),
}

/// Takes the readied inner service, leaving a fresh clone in its place (the readied one is the
/// one `poll_ready` was called on).
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

fn call_with<S, ReqBody>(
    inner: &mut S,
    mut req: Request<ReqBody>,
    actor: Actor,
    renderer: &Renderer,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
{
    if renderer.is_custom() {
        // Extractors render their rejections with the application's body too.
        req.extensions_mut().insert(renderer.clone());
    }
    req.extensions_mut().insert(actor);
    inner.call(req)
}

/// Resolves every credential presented: the first decides the actor; any other must resolve
/// too, to the same actor. Cookie-authenticated unsafe requests must pass the CSRF check.
async fn decide(
    auth: &Authenticator,
    sources: &Sources,
    parts: &Parts,
) -> (&'static str, Result<Actor, AuthError>) {
    // Extracted again here rather than carried over from `call`: the credentials borrow the
    // head, which moves into this future. Extraction is a few header lookups, no allocation.
    let creds = match credentials::extract_from(parts, &auth.config().api_key_prefix, sources) {
        Ok(c) => c,
        Err(e) => return ("unreadable", Err(e)),
    };
    let lone = creds.iter().nth(1).is_none();
    let mut all = creds.iter();
    let Some(first) = all.next() else {
        return ("none", Err(AuthError::MissingCredentials));
    };
    let kind = first.kind();
    let result = async {
        // A lone credential has just missed the resolved-credential cache in `call`.
        let actor = if lone {
            auth.resolve_after_miss(first).await?
        } else {
            auth.resolve(first).await?
        };
        for other in all {
            let also = auth.resolve(other).await?;
            if (also.kind(), also.id()) != (actor.kind(), actor.id()) {
                return Err(AuthError::ConflictingCredentials);
            }
        }
        check_csrf(first, &parts.method, &parts.headers, actor)
    }
    .await;
    (kind, result)
}

/// Cookie-authenticated unsafe requests must echo the CSRF cookie in `X-CSRF-Token`.
fn check_csrf(
    decided_by: Credential<'_>,
    method: &Method,
    headers: &HeaderMap,
    actor: Actor,
) -> Result<Actor, AuthError> {
    if matches!(decided_by, Credential::Cookie(_))
        && credentials::is_unsafe(method)
        && !credentials::csrf_matches(headers)
    {
        return Err(AuthError::CsrfFailed);
    }
    Ok(actor)
}

/// One event per decision: credential kind, key id, actor id, org, outcome code, latency (0
/// for a decision made without waiting, `started` = `None`). Never a credential. The field
/// values are only computed when the event is enabled.
fn log_decision(kind: &str, result: Result<&Actor, &AuthError>, started: Option<Instant>) {
    let latency_us = || started.map_or(0, |s| s.elapsed().as_micros() as u64);
    match result {
        Ok(actor) => tracing::debug!(
            target: "portcullis",
            credential = kind,
            key_id = actor.api_key_id().map(|k| k.as_str()),
            actor = actor.kind().as_str(),
            actor_id = actor.id(),
            org = actor.org_id().map(|o| o.as_str()),
            outcome = "allow",
            latency_us = latency_us(),
            "auth decision"
        ),
        Err(e) => tracing::info!(
            target: "portcullis",
            credential = kind,
            outcome = e.code(),
            reason = %e,
            latency_us = latency_us(),
            "auth decision"
        ),
    }
}

type Decision =
    Pin<Box<dyn Future<Output = (Parts, &'static str, Result<Actor, AuthError>)> + Send>>;

pin_project! {
    /// The response future of [`AuthService`].
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Authorizing {
            #[pin]
            decision: Decision,
            body: Option<ReqBody>,
            inner: Option<S>,
            shared: Arc<Shared>,
            started: Instant,
            public: bool,
        },
        Calling {
            #[pin]
            fut: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    // Polling a completed future is a caller bug, not something a request can cause.
    #[allow(clippy::expect_used)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authorizing {
                    decision,
                    body,
                    inner,
                    shared,
                    started,
                    public,
                } => {
                    let (parts, kind, result) = ready!(decision.poll(cx));
                    log_decision(kind, result.as_ref(), Some(*started));
                    metrics::resolve_duration(kind, started.elapsed().as_secs_f64());
                    let actor = match result {
                        Ok(actor) => actor,
                        Err(_) if *public => Actor::Anonymous,
                        Err(e) => {
                            metrics::decision(kind, Err(&e));
                            return Poll::Ready(Ok(shared.renderer.render(&e)));
                        }
                    };
                    metrics::decision(kind, Ok(()));
                    let body = body.take().expect("ResponseFuture polled after completion");
                    let mut svc = inner
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let req = Request::from_parts(parts, body);
                    let fut = call_with(&mut svc, req, actor, &shared.renderer);
                    this.state.set(State::Calling { fut });
                }
                StateProj::Calling { fut } => return fut.poll(cx),
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
            }
        }
    }
}
