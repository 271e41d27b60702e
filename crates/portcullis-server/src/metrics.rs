//! `GET /metrics` in the Prometheus text format, on its own address
//! (`PORTCULLIS_METRICS_BIND`; off when unset): the library's `portcullis_…` series through a
//! Prometheus recorder installed for the whole process. The main port never serves it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis::Authenticator;
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the resolution histogram's buckets: a store lookup on the same
/// host takes tens of microseconds, a remote database milliseconds, a timeout seconds.
const RESOLVE_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

/// Installs the recorder and serves `/metrics` on `bind`; returns the address it listens on.
/// Call once, before the authenticator takes requests.
pub async fn serve(bind: SocketAddr, auth: Authenticator) -> Result<SocketAddr, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(portcullis::metrics::RESOLVE_DURATION.to_owned()),
            &RESOLVE_BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    portcullis::metrics::describe();
    portcullis::metrics::bind_global();
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (PORTCULLIS_METRICS_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Histogram samples are folded in now and then, not only when scraped.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((handle, auth));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(addr)
}

/// The cache sizes are read here, per scrape, rather than on the request path.
async fn scrape(
    State((handle, auth)): State<(PrometheusHandle, Authenticator)>,
) -> impl IntoResponse {
    auth.record_cache_entries().await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
}
