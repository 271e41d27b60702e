//! `GET /metrics` in the Prometheus text format, on its own address
//! (`PORTCULLIS_METRICS_BIND`; off when unset): the library's recorder and router
//! (`portcullis::prometheus`). The main port never serves it.

use std::net::SocketAddr;

use portcullis::Authenticator;
use tokio::net::TcpListener;

/// Installs the recorder and serves `/metrics` on `bind`; returns the address it listens on.
/// Call once, before the authenticator takes requests.
pub async fn serve(bind: SocketAddr, auth: Authenticator) -> Result<SocketAddr, String> {
    let exporter = portcullis::prometheus::install().map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (PORTCULLIS_METRICS_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = exporter.router(auth);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(addr)
}
