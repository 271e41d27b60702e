//! The HTTP bench server: axum 0.8 `GET /hello` → `hello`, behind one auth variant.
//!
//! ```text
//! bench-server --variant <none|tower-http|portcullis-jwt[-metrics]|portcullis-api-key[-metrics]
//!                        |axum-login|jsonwebtoken|jwt-authorizer>
//!              --bind 127.0.0.1:PORT [--secret S]
//! ```
//!
//! Prints the credential a load tool should send, then `listening on http://ADDR` (last, so
//! that a script waiting for that line finds the credential already there):
//! `token: <jwt>` (the JWT variants; the static token for `tower-http`), `api_key: <key>` or
//! `cookie: <name>=<value>` (`axum-login`). One thread (`current_thread`), so that one pinned
//! core is one server. Used by `bench/http.sh`.
//!
//! - `none`: the plain handler.
//! - `tower-http`: `tower-http` 0.6's `ValidateRequestHeaderLayer::bearer`, a compare of the
//!   `Authorization` header with one static string: the do-nothing reference.
//! - `portcullis-jwt`, `portcullis-api-key`: `AuthLayer` (in-memory stores, one live session,
//!   one stored key) and a handler taking `RequirePermissions<MemoryRead>`. With `-metrics`,
//!   as the sample server runs with `PORTCULLIS_METRICS_BIND`: the library's Prometheus
//!   recorder (`portcullis_axum::prometheus::install`: installed for the process, its handles
//!   bound, its histograms folded in every 5 s); nothing scrapes it.
//! - `jsonwebtoken`: a hand-written `axum::middleware::from_fn` layer around
//!   `jsonwebtoken::decode` (HS256, `exp`/`iss`/`aud`, key and `Validation` made once), putting
//!   the owned claims in the extensions for a handler taking `Extension<Claims>`.
//! - `jwt-authorizer`: `jwt-authorizer` 0.15's layer (`from_secret`, `iss`/`aud` checked).
//!   It is written for axum 0.7, so its responses are converted to and from axum 0.7's body
//!   around it (one boxing each way); requests pass through untouched.
//! - `axum-login`: `axum-login` 0.18 on `tower-sessions` 0.14 and its `MemoryStore` (session
//!   layer + `AuthManagerLayer`), one user in an in-memory backend, `GET /hello` behind
//!   `login_required!` (the form without a login URL: 401, not a redirect). At start-up the
//!   server logs its user in once through its own `POST /login` (called in-process, never by
//!   the load tool) and prints the session cookie that login set.
//!
//! `BENCH_MOUNT` says how every layer but axum-login's (a route layer by its own documentation)
//! is put on the router: `layer` (the default), `Router::layer`; `wrap`, `layer.layer(router)`,
//! around the router, as axum documents for middleware that runs before routing.
//!
//! Every JWT variant verifies the same kind of token: a Portcullis access token (HS256, with
//! `kid`, `iss`, `aud`, `exp`), minted here with a 7-day lifetime so long runs stay valid.

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{DecodingKey, Validation};
use portcullis_axum::RequirePermissions;
use portcullis_bench::{AUDIENCE, DEFAULT_SECRET, Fixture, ISSUER, LEEWAY_SECS, peer};
use portcullis_core::seed::MemoryRead;
use portcullis_tower::AuthLayer;
use std::convert::Infallible;

use axum::routing::Route;
use tower::{Layer, Service, ServiceBuilder};

const USAGE: &str = "usage: bench-server --variant <none|tower-http|portcullis-jwt[-metrics]|portcullis-api-key[-metrics]|axum-login|jsonwebtoken|jwt-authorizer> --bind 127.0.0.1:PORT [--secret S]";
/// Seven days: a load run never outlives its token.
const TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;
/// The `tower-http` variant's one accepted bearer token.
const STATIC_BEARER_TOKEN: &str = "portcullis-bench-static-bearer-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    None,
    TowerHttp,
    PortcullisJwt,
    PortcullisApiKey,
    AxumLogin,
    Jsonwebtoken,
    JwtAuthorizer,
}

impl Variant {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "tower-http" => Self::TowerHttp,
            "portcullis-jwt" => Self::PortcullisJwt,
            "portcullis-api-key" => Self::PortcullisApiKey,
            "axum-login" => Self::AxumLogin,
            "jsonwebtoken" => Self::Jsonwebtoken,
            "jwt-authorizer" => Self::JwtAuthorizer,
            _ => return None,
        })
    }
}

struct Args {
    variant: Variant,
    /// A `-metrics` variant: record into a Prometheus recorder.
    metrics: bool,
    bind: SocketAddr,
    secret: String,
}

fn parse_args() -> Result<Args, String> {
    let mut variant = None;
    let mut metrics = false;
    let mut bind = None;
    let mut secret = DEFAULT_SECRET.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--variant" => {
                let v = value()?;
                let (name, recorded) = match v.strip_suffix("-metrics") {
                    Some(n) if n.starts_with("portcullis-") => (n, true),
                    _ => (v.as_str(), false),
                };
                metrics = recorded;
                variant = Some(Variant::parse(name).ok_or_else(|| format!("unknown variant {v}"))?);
            }
            "--bind" => {
                let v = value()?;
                bind = Some(v.parse().map_err(|e| format!("--bind {v}: {e}"))?);
            }
            "--secret" => secret = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        variant: variant.ok_or("--variant is required")?,
        metrics,
        bind: bind.ok_or("--bind is required")?,
        secret,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench-server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-server: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    portcullis_bench::install_jwt_provider();
    if args.metrics {
        // As the sample server does; nothing scrapes it here.
        portcullis_axum::prometheus::install()?;
    }
    let fx = Fixture::new(&args.secret, TOKEN_TTL_SECS).await;
    let token = fx.mint();
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let addr = listener.local_addr()?;
    let mount = Mount::from_env()?;
    let hello_router = || Router::new().route("/hello", get(hello));
    match args.variant {
        Variant::None => {
            announce(None, addr)?;
            axum::serve(listener, hello_router()).await?;
        }
        Variant::TowerHttp => {
            // Deprecated since tower-http 0.6.7 as "too basic to be useful in real
            // applications": that is what it is here, the cheapest check a layer can make.
            #[allow(deprecated)]
            let layer = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(
                STATIC_BEARER_TOKEN,
            );
            announce(Some(format!("token: {STATIC_BEARER_TOKEN}")), addr)?;
            serve(listener, hello_router(), layer, mount).await?;
        }
        Variant::AxumLogin => {
            // Its `login_required!` is a route layer by its documentation: mounted as shown
            // there whatever BENCH_MOUNT says.
            let app = session_peer::router();
            let cookie = session_peer::log_in(&app).await?;
            announce(Some(format!("cookie: {cookie}")), addr)?;
            axum::serve(listener, app).await?;
        }
        Variant::PortcullisJwt | Variant::PortcullisApiKey => {
            let credential = if args.variant == Variant::PortcullisApiKey {
                format!("api_key: {}", fx.api_key().await)
            } else {
                format!("token: {token}")
            };
            let routes = Router::new().route("/hello", get(hello_portcullis));
            announce(Some(credential), addr)?;
            serve(listener, routes, AuthLayer::new(fx.auth.clone()), mount).await?;
        }
        Variant::Jsonwebtoken => {
            let state = Arc::new(JwtState {
                key: peer::key(&args.secret),
                validation: peer::validation(),
            });
            let routes = Router::new().route("/hello", get(hello_claims));
            announce(Some(format!("token: {token}")), addr)?;
            let layer = middleware::from_fn_with_state(state, require_jwt);
            serve(listener, routes, layer, mount).await?;
        }
        Variant::JwtAuthorizer => {
            let authorizer =
                jwt_authorizer::JwtAuthorizer::<peer::Claims>::from_secret(&args.secret)
                    .validation(
                        jwt_authorizer::Validation::new()
                            .iss(&[ISSUER])
                            .aud(&[AUDIENCE])
                            .leeway(LEEWAY_SECS),
                    )
                    .build()
                    .await?;
            use jwt_authorizer::IntoLayer as _;
            // axum 0.7 responses out of the layer, axum 0.8 ones into it.
            let bridged = ServiceBuilder::new()
                .map_response(|r: http::Response<axum07::body::Body>| r.map(axum::body::Body::new))
                .layer(authorizer.into_layer())
                .map_response(|r: Response| r.map(axum07::body::Body::new));
            announce(Some(format!("token: {token}")), addr)?;
            serve(listener, hello_router(), bridged, mount).await?;
        }
    }
    Ok(())
}

/// How an auth layer is put on the `/hello` router (`BENCH_MOUNT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mount {
    /// `Router::layer` (the default): axum puts the layer on each route, and per request
    /// clones the boxed route and runs it through `Oneshot` and a boxed future — a cost every
    /// `.layer(…)` call on a router pays, ~700–860 instructions (BENCHMARKS.md, round four).
    Layer,
    /// `layer.layer(router)`: the layer wraps the whole router and runs before routing, as
    /// axum documents for middleware that must see every request.
    Wrap,
}

impl Mount {
    fn from_env() -> Result<Self, String> {
        match std::env::var("BENCH_MOUNT").as_deref() {
            Err(_) | Ok("" | "layer") => Ok(Self::Layer),
            Ok("wrap") => Ok(Self::Wrap),
            Ok(other) => Err(format!("BENCH_MOUNT={other}: layer or wrap")),
        }
    }
}

/// Prints the credential a load tool should send, then `listening on …` (last, so that a
/// script waiting for that line finds the credential already there).
fn announce(credential: Option<String>, addr: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(credential) = credential {
        writeln!(out, "{credential}")?;
    }
    writeln!(out, "listening on http://{addr}")?;
    out.flush()
}

/// Serves `routes` behind `layer`, mounted as `mount` says.
async fn serve<L>(
    listener: tokio::net::TcpListener,
    routes: Router,
    layer: L,
    mount: Mount,
) -> std::io::Result<()>
where
    L: Layer<Route> + Layer<Router> + Clone + Send + Sync + 'static,
    <L as Layer<Route>>::Service:
        Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    <<L as Layer<Route>>::Service as Service<Request>>::Response: IntoResponse + 'static,
    <<L as Layer<Route>>::Service as Service<Request>>::Future: Send + 'static,
    <L as Layer<Router>>::Service:
        Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    <<L as Layer<Router>>::Service as Service<Request>>::Future: Send + 'static,
{
    if mount == Mount::Wrap {
        let app = Layer::<Router>::layer(&layer, routes);
        axum::serve(
            listener,
            axum::ServiceExt::<Request>::into_make_service(app),
        )
        .await
    } else {
        axum::serve(listener, routes.layer(layer)).await
    }
}

async fn hello() -> &'static str {
    "hello"
}

async fn hello_portcullis(_who: RequirePermissions<MemoryRead>) -> &'static str {
    "hello"
}

async fn hello_claims(Extension(_claims): Extension<peer::Claims>) -> &'static str {
    "hello"
}

struct JwtState {
    key: DecodingKey,
    validation: Validation,
}

/// The layer a team writes around `jsonwebtoken`: bearer token in, claims in the extensions
/// or a 401.
async fn require_jwt(State(st): State<Arc<JwtState>>, mut req: Request, next: Next) -> Response {
    let claims = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| peer::decode(token, &st.key, &st.validation));
    match claims {
        Some(Some(claims)) => {
            req.extensions_mut().insert(claims);
            next.run(req).await
        }
        Some(None) => unauthorized(r#"Bearer error="invalid_token""#),
        None => unauthorized("Bearer"),
    }
}

fn unauthorized(challenge: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
    )
        .into_response()
}

/// The `axum-login` variant: the session peer as its documentation sets it up.
mod session_peer {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::error::Error;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::routing::{get, post};
    use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
    use sha2::{Digest as _, Sha256};
    use tower::ServiceExt as _;
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    /// The one user's id and password (the login path is not benchmarked).
    const USER_ID: u64 = 1;
    const PASSWORD: &str = "bench-password";

    /// A user as a backend loads it on every request: id, name and password hash, the hash
    /// doubling as the session auth hash (a password change ends the sessions).
    #[derive(Debug, Clone)]
    pub(super) struct User {
        id: u64,
        #[allow(dead_code, reason = "a user record carries more than its id and hash")]
        name: String,
        password_hash: Vec<u8>,
    }

    impl AuthUser for User {
        type Id = u64;

        fn id(&self) -> u64 {
            self.id
        }

        fn session_auth_hash(&self) -> &[u8] {
            &self.password_hash
        }
    }

    /// An in-memory user table.
    #[derive(Debug, Clone)]
    pub(super) struct Backend {
        users: Arc<HashMap<u64, User>>,
    }

    impl AuthnBackend for Backend {
        type User = User;
        /// (user id, password).
        type Credentials = (u64, String);
        type Error = Infallible;

        async fn authenticate(
            &self,
            (id, password): Self::Credentials,
        ) -> Result<Option<User>, Infallible> {
            let hash = Sha256::digest(password.as_bytes());
            Ok(self
                .users
                .get(&id)
                .filter(|u| u.password_hash[..] == hash[..])
                .cloned())
        }

        async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Infallible> {
            Ok(self.users.get(id).cloned())
        }
    }

    /// `GET /hello` behind `login_required!`, `POST /login` (body: the password), both under
    /// the session layer and `AuthManagerLayer`.
    pub(super) fn router() -> Router {
        let user = User {
            id: USER_ID,
            name: "bench".to_owned(),
            password_hash: Sha256::digest(PASSWORD.as_bytes()).to_vec(),
        };
        let backend = Backend {
            users: Arc::new(HashMap::from([(USER_ID, user)])),
        };
        // Plain HTTP on loopback: the cookie is not marked `Secure`.
        let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
        let auth = AuthManagerLayerBuilder::new(backend, sessions).build();
        Router::new()
            .route("/hello", get(super::hello))
            .route_layer(axum_login::login_required!(Backend))
            .route("/login", post(login))
            .layer(auth)
    }

    async fn login(mut auth: AuthSession<Backend>, password: String) -> StatusCode {
        match auth.authenticate((USER_ID, password)).await {
            Ok(Some(user)) => match auth.login(&user).await {
                Ok(()) => StatusCode::NO_CONTENT,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Ok(None) => StatusCode::UNAUTHORIZED,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs the user in through the router's own `POST /login`; returns the session cookie
    /// it set, as `name=value`.
    pub(super) async fn log_in(app: &Router) -> Result<String, Box<dyn Error>> {
        let req = Request::post("/login").body(Body::from(PASSWORD))?;
        let res = app.clone().oneshot(req).await?;
        if res.status() != StatusCode::NO_CONTENT {
            return Err(format!("login: {}", res.status()).into());
        }
        let set_cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .ok_or("login set no cookie")?
            .to_str()?;
        let pair = set_cookie.split(';').next().unwrap_or_default().trim();
        Ok(pair.to_owned())
    }
}
