//! Per-route permissions: all of a tuple with `RequirePermissions`, one of a set with
//! `RequireAnyPermission`, and the org a request acts in with `CurrentOrg`.
//!
//! `cargo run --example per_route_permissions`

use axum::Router;
use axum::routing::{delete, get};
use portcullis::seed::{AdminRead, MemoryDelete, MemoryRead, MemorySearch, SessionRead};
use portcullis::{AuthLayer, Authenticator, CurrentOrg, RequireAnyPermission, RequirePermissions};

/// Routes with different needs.
pub fn app(auth: Authenticator) -> Router {
    Router::new()
        // Needs both: reading the memory and the session it belongs to.
        .route("/sessions/{id}/memories", get(session_memories))
        // Either will do: a reader or a searcher may look.
        .route("/memories/search", get(search))
        // Deleting needs delete *and* admin read (to audit).
        .route("/memories/{id}", delete(remove))
        .route("/org", get(org))
        .layer(AuthLayer::new(auth))
}

async fn session_memories(who: RequirePermissions<(MemoryRead, SessionRead)>) -> String {
    format!("memories for {}", who.id().unwrap_or("?"))
}

async fn search(_who: RequireAnyPermission<(MemoryRead, MemorySearch)>) -> &'static str {
    "results"
}

async fn remove(_who: RequirePermissions<(MemoryDelete, AdminRead)>) -> &'static str {
    "deleted"
}

async fn org(org: CurrentOrg) -> String {
    match org.org_id() {
        Some(id) => format!("org {id}"),
        None => "every org".into(),
    }
}

#[allow(dead_code)] // The tests drive `app` directly.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = Authenticator::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(auth)).await?;
    Ok(())
}
