//! The library's `portcullis_…` series in the Prometheus text format (feature `prometheus`).
//!
//! [`install`] sets a Prometheus recorder for the whole process, describes every series and binds
//! the request path's handles to it ([`metrics::bind_global`]), so that each report costs one
//! atomic add. [`Exporter::router`] answers `GET /metrics`: serve it on an address of its own
//! (the sample server's `PORTCULLIS_METRICS_BIND`), never on the public port.
//!
//! ```no_run
//! # async fn run(auth: portcullis_core::Authenticator) -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = portcullis_axum::prometheus::install()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! axum::serve(listener, exporter.router(auth)).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis_core::{Authenticator, metrics};

/// Upper bounds (seconds) of the resolution histogram's buckets: a store lookup on the same
/// host takes tens of microseconds, a remote database milliseconds, a timeout seconds.
pub const RESOLVE_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

/// How often histogram samples are folded in when nothing scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed recorder: renders the text format and serves it.
#[derive(Clone, Debug)]
pub struct Exporter {
    handle: PrometheusHandle,
}

/// Why [`install`] could not install the recorder.
#[derive(Debug)]
pub enum InstallError {
    /// Not called inside a Tokio runtime, which runs the recorder's upkeep.
    NoRuntime,
    /// The exporter refused (a recorder is already installed for this process, say).
    Exporter(BuildError),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime => f.write_str("the Prometheus recorder needs a Tokio runtime"),
            Self::Exporter(e) => write!(f, "cannot install the Prometheus recorder: {e}"),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoRuntime => None,
            Self::Exporter(e) => Some(e),
        }
    }
}

/// Installs the process-wide Prometheus recorder (with [`RESOLVE_BUCKETS`] for
/// `portcullis_resolve_duration_seconds`), describes the series, binds the request path to it
/// and starts its upkeep on the current Tokio runtime. Call once, before the authenticator
/// takes requests; a second call is an error, not a second recorder.
pub fn install() -> Result<Exporter, InstallError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| InstallError::NoRuntime)?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::RESOLVE_DURATION.to_owned()),
            &RESOLVE_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(InstallError::Exporter)?;
    metrics::describe();
    metrics::bind_global();
    let upkeep = handle.clone();
    runtime.spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Exporter { handle })
}

impl Exporter {
    /// Every series in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// `GET /metrics`: records the caches' sizes of `auth` (read per scrape, not on the request
    /// path), then answers the text format.
    pub fn router(&self, auth: Authenticator) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state((self.clone(), auth))
    }
}

async fn scrape(State((exporter, auth)): State<(Exporter, Authenticator)>) -> impl IntoResponse {
    auth.record_cache_entries().await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        exporter.render(),
    )
}
