//! Portcullis for Tower: [`AuthLayer`] resolves every request to one [`Actor`] and puts it in
//! the request's extensions, or answers with the refusal — over any
//! `Service<http::Request<B>>` (axum, hyper, tonic alike).
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use portcullis_core::{Actor, Authenticator};
//! use portcullis_tower::AuthLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let auth = Authenticator::builder().build().unwrap();
//! let svc = ServiceBuilder::new().layer(AuthLayer::new(auth)).service(service_fn(
//!     |req: Request<Full<Bytes>>| async move {
//!         let who = req.extensions().get::<Actor>().and_then(|a| a.id()).unwrap_or("nobody");
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("hello {who}")))))
//!     },
//! ));
//! // No credential on a protected path: 401 missing_credentials.
//! let res = svc.oneshot(Request::get("/private").body(Full::default()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! # });
//! ```
#![forbid(unsafe_code)]

pub mod cookies;
pub mod credentials;
mod layer;
pub mod loopback;
pub mod policy;
pub mod render;

pub use layer::{AuthLayer, AuthLayerBuilder, AuthService, ResponseFuture};
pub use policy::{Fallback, Policy, PolicyError};
pub use portcullis_core::{Actor, AuthError, Authenticator};
pub use render::Renderer;
