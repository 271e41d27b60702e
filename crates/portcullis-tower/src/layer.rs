//! [`AuthLayer`], [`AuthService`] and [`ResponseFuture`].
//!
//! Requests with no credential at all are decided synchronously in `call` (anonymous, the
//! board — only for a request addressed to loopback unless remote use is allowed — or 401) and go straight to the inner service. Requests with credentials resolve them
//! through the [`Authenticator`] in a boxed future, then call the readied inner service with the
//! [`Actor`] in the request's extensions, or return the refusal.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use pin_project_lite::pin_project;
use portcullis_core::{Actor, AuthError, Authenticator, Credential, Fallback};
use tower_layer::Layer;
use tower_service::Service;

use crate::render::{ProblemContext, Renderer};
use crate::{credentials, loopback};

/// Resolves every request to an [`Actor`] and inserts it into the request's extensions.
///
/// ```
/// use portcullis_core::Authenticator;
/// use portcullis_tower::AuthLayer;
/// let layer = AuthLayer::new(Authenticator::builder().build().unwrap());
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Authenticator,
    renderer: Renderer,
}

impl AuthLayer {
    /// A layer deciding with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        Self {
            auth,
            renderer: Renderer::default(),
        }
    }

    /// Renders refusals with `renderer` (e.g. a custom body).
    #[must_use]
    pub fn with_renderer(mut self, renderer: Renderer) -> Self {
        self.renderer = renderer;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            renderer: self.renderer.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Authenticator,
    renderer: Renderer,
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
        let (parts, body) = req.into_parts();
        let config = self.auth.config();
        // Public paths need no actor; a bad credential there leaves the request anonymous
        // (never the board), so that e.g. login works with a stale access cookie.
        let public = config.is_public_path(parts.uri.path());
        let needs_actor = config.require_auth && !public;
        let early = match credentials::extract(&parts, &config.api_key_prefix) {
            Ok(creds) if creds.is_empty() => Early::NoCredentials,
            Ok(creds) => {
                // The common case is decided here, without a future: one credential,
                // resolved recently and unchanged since.
                let mut all = creds.iter();
                match (all.next(), all.next()) {
                    (Some(only), None) => match self.auth.resolve_cached(only) {
                        Some(actor) => Early::Cached(only.kind(), check_csrf(only, &parts, actor)),
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
                let auth = self.auth.clone();
                let decision = Box::pin(async move {
                    let (kind, result) = decide(&auth, &parts).await;
                    (parts, kind, result)
                });
                return ResponseFuture {
                    state: State::Authorizing {
                        decision,
                        body: Some(body),
                        inner: Some(take_ready(&mut self.inner)),
                        renderer: self.renderer.clone(),
                        started,
                        public,
                    },
                };
            }
            Early::NoCredentials => {
                // The board only for a request addressed to loopback by name, unless remote
                // use is allowed: a DNS-rebound page reaches a loopback bind too (loopback.rs).
                let fallback = match config.fallback {
                    Fallback::Board
                        if config.fallback_allow_remote
                            || loopback::addressed_to_loopback(&parts) =>
                    {
                        Actor::Board
                    }
                    Fallback::Board | Fallback::None => Actor::Anonymous,
                };
                if needs_actor && !fallback.is_authenticated() {
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
        match actor {
            Ok(actor) => ResponseFuture {
                state: State::Calling {
                    fut: call_with(&mut self.inner, parts, body, actor, &self.renderer),
                },
            },
            Err(e) => ResponseFuture {
                state: State::Rejected {
                    response: Some(self.renderer.render(
                        &e,
                        ProblemContext {
                            credential_presented: presented,
                            scope: None,
                        },
                    )),
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
    mut parts: Parts,
    body: ReqBody,
    actor: Actor,
    renderer: &Renderer,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
{
    if renderer.is_custom() {
        // Extractors render their rejections with the application's body too.
        parts.extensions.insert(renderer.clone());
    }
    parts.extensions.insert(actor);
    inner.call(Request::from_parts(parts, body))
}

/// Resolves every credential presented: the first decides the actor; any other must resolve
/// too, to the same actor. Cookie-authenticated unsafe requests must pass the CSRF check.
async fn decide(auth: &Authenticator, parts: &Parts) -> (&'static str, Result<Actor, AuthError>) {
    // Extracted again here rather than carried over from `call`: the credentials borrow the
    // head, which moves into this future. Extraction is a few header lookups, no allocation.
    let creds = match credentials::extract(parts, &auth.config().api_key_prefix) {
        Ok(c) => c,
        Err(e) => return ("unreadable", Err(e)),
    };
    let mut all = creds.iter();
    let Some(first) = all.next() else {
        return ("none", Err(AuthError::MissingCredentials));
    };
    let kind = first.kind();
    let result = async {
        let actor = auth.resolve(first).await?;
        for other in all {
            let also = auth.resolve(other).await?;
            if (also.kind(), also.id()) != (actor.kind(), actor.id()) {
                return Err(AuthError::ConflictingCredentials);
            }
        }
        check_csrf(first, parts, actor)
    }
    .await;
    (kind, result)
}

/// Cookie-authenticated unsafe requests must echo the CSRF cookie in `X-CSRF-Token`.
fn check_csrf(decided_by: Credential<'_>, parts: &Parts, actor: Actor) -> Result<Actor, AuthError> {
    if matches!(decided_by, Credential::Cookie(_))
        && credentials::is_unsafe(&parts.method)
        && !credentials::csrf_matches(&parts.headers)
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
            renderer: Renderer,
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
                    renderer,
                    started,
                    public,
                } => {
                    let (parts, kind, result) = ready!(decision.poll(cx));
                    log_decision(kind, result.as_ref(), Some(*started));
                    let actor = match result {
                        Ok(actor) => actor,
                        Err(_) if *public => Actor::Anonymous,
                        Err(e) => {
                            let response = renderer.render(
                                &e,
                                ProblemContext {
                                    credential_presented: true,
                                    scope: None,
                                },
                            );
                            return Poll::Ready(Ok(response));
                        }
                    };
                    let body = body.take().expect("ResponseFuture polled after completion");
                    let mut svc = inner
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let fut = call_with(&mut svc, parts, body, actor, renderer);
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
