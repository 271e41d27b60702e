//! Portcullis without axum: a plain hyper server whose tower service reads the `Actor` from the
//! request's extensions.
//!
//! `cargo run --example hyper_service`, then `curl -i localhost:3002/` (401).

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use portcullis::{Actor, AuthLayer, Authenticator, PermissionList, seed::AdminRead};
use tower::ServiceBuilder;
use tower::util::BoxCloneService;

/// A tower service over any request body: the layer in front of a plain function.
pub fn service<B: Send + 'static>(
    auth: Authenticator,
) -> BoxCloneService<Request<B>, Response<Full<Bytes>>, Infallible> {
    BoxCloneService::new(
        ServiceBuilder::new()
            .layer(AuthLayer::new(auth))
            .service_fn(handle),
    )
}

async fn handle<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The layer always inserts an actor; anonymous only reaches here on public paths.
    let actor = req
        .extensions()
        .get::<Actor>()
        .cloned()
        .unwrap_or(Actor::Anonymous);
    let text = if actor.permissions().contains(AdminRead::SET) {
        format!("hello admin {}", actor.id().unwrap_or("?"))
    } else {
        format!(
            "hello {} {}",
            actor.kind().as_str(),
            actor.id().unwrap_or("?")
        )
    };
    Ok(Response::new(Full::from(text)))
}

#[allow(dead_code)] // The tests drive `service` directly.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = Authenticator::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = hyper_util::service::TowerToHyperService::new(service::<hyper::body::Incoming>(
            auth.clone(),
        ));
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}
