//! Which request a lifecycle event belongs to: every router of this module runs its handlers
//! inside a [`RequestContext`] — the request id (the client's `X-Request-Id` when it is clean:
//! 1 to 128 characters of `A-Z a-z 0-9 - _ . : /`; a fresh UUID otherwise) and the client's
//! address (the peer, from axum's `ConnectInfo<SocketAddr>` when the app is served with
//! `into_make_service_with_connect_info`). The response echoes the request id in
//! `X-Request-Id`, so a client can find its request in the audit log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use portcullis_core::audit::RequestContext;

/// The header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The context of `request`.
pub fn request_context(request: &Request) -> RequestContext {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestContext::clean_request_id)
        .unwrap_or_else(RequestContext::new_request_id);
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    RequestContext {
        request_id: Some(request_id),
        client,
    }
}

/// Middleware: runs the rest of the request inside its [`RequestContext`] and echoes the id.
pub async fn with_request_context(request: Request, next: Next) -> Response {
    let ctx = request_context(&request);
    let id = ctx.request_id.clone();
    let mut response = ctx.scope(next.run(request)).await;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
