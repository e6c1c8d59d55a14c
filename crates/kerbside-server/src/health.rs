//! The health endpoint for load balancers' checks (`/.kerbside/health` by default):
//! `200 ready` while the gate takes work, `503 draining` once it was told to stop, so a
//! balancer sends new clients elsewhere while requests in flight finish. It answers
//! before authentication and the access rules (a balancer has no ticket) and says
//! nothing about the gate but those two words.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::Layer;
use tower_service::Service;

use crate::body::GateBody;

/// The default path of the health endpoint.
pub const DEFAULT_HEALTH_PATH: &str = "/.kerbside/health";

/// Whether the gate is draining; shared by the endpoint and the gate's shutdown.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on the endpoint answers `503`.
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`start`](Self::start) was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Answers `GET`/`HEAD` of `path` itself; everything else goes on. Without a path it
/// lets everything through.
#[derive(Debug, Clone)]
pub struct HealthLayer {
    path: Option<Arc<str>>,
    draining: Draining,
}

impl HealthLayer {
    /// The endpoint at `path` (a canonical path; `None`: no endpoint), reading
    /// `draining`.
    pub fn new(path: Option<&str>, draining: Draining) -> Self {
        Self {
            path: path.map(Arc::from),
            draining,
        }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;

    fn layer(&self, inner: S) -> Health<S> {
        Health {
            inner,
            path: self.path.clone(),
            draining: self.draining.clone(),
        }
    }
}

/// The service of [`HealthLayer`].
#[derive(Debug, Clone)]
pub struct Health<S> {
    inner: S,
    path: Option<Arc<str>>,
    draining: Draining,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for Health<S>
where
    S: Service<Request<B>, Response = Response<GateBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<GateBody>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let is_health = self.path.as_deref() == Some(request.uri().path())
            && (request.method() == Method::GET || request.method() == Method::HEAD);
        if !is_health {
            let fut = self.inner.call(request);
            return Box::pin(fut);
        }
        let (status, text) = if self.draining.is_draining() {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        } else {
            (StatusCode::OK, "ready\n")
        };
        let body = if request.method() == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from_static(text.as_bytes())
        };
        let mut response = Response::new(
            Full::new(body)
                .map_err(|never: Infallible| match never {})
                .boxed(),
        );
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Box::pin(async move { Ok(response) })
    }
}
