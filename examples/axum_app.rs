//! Layering Portcullis onto an existing axum app: one `.layer(…)`, and handlers that say what
//! they need in their signature.
//!
//! `cargo run --example axum_app`, then `curl -i localhost:3000/memories -X POST` (401).

use axum::Router;
use axum::routing::{get, post};
use portcullis::seed::MemoryCreate;
use portcullis::{AuthLayer, Authenticator, CurrentActor, RequirePermissions};

/// The application: what it was before Portcullis, plus one layer.
pub fn app(auth: Authenticator) -> Router {
    Router::new()
        .route("/memories", post(create_memory))
        .route("/me", get(me))
        .layer(AuthLayer::new(auth))
}

async fn create_memory(who: RequirePermissions<MemoryCreate>) -> String {
    format!("created by {}", who.id().unwrap_or("?"))
}

async fn me(who: CurrentActor) -> String {
    format!("{} {}", who.kind().as_str(), who.id().unwrap_or("?"))
}

#[allow(dead_code)] // The tests drive `app` directly.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = Authenticator::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(auth)).await?;
    Ok(())
}
