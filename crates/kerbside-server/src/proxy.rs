//! The reverse proxy behind the gate: forwards authenticated requests upstream with
//! the identity in a header, streaming bodies both ways.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use crate::auth::Authenticated;
use crate::gate::ConnectionInfo;

/// The header that carries the authenticated principal to the upstream by default.
pub const DEFAULT_IDENTITY_HEADER: &str = "x-remote-user";

/// Errors of bodies streamed through the gate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Response bodies of the gate (proxied, from CGI, or made by the gate).
pub type GateBody = BoxBody<Bytes, BoxError>;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A [`Service`] that forwards requests to one upstream (`http://host:port[/prefix]`).
///
/// Any copy of the identity header sent by the client is removed, and the
/// principal from the [`Authenticated`] extension is set in its place.
#[derive(Debug, Clone)]
pub struct ReverseProxy {
    client: Client<HttpConnector, Incoming>,
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    identity_header: HeaderName,
}

impl ReverseProxy {
    /// A proxy to `upstream`, setting the identity in `identity_header`.
    pub fn new(upstream: &Uri, identity_header: HeaderName) -> Result<Self, String> {
        let scheme = upstream.scheme().cloned().unwrap_or(Scheme::HTTP);
        if scheme != Scheme::HTTP {
            return Err(format!(
                "upstream {upstream}: only http:// upstreams are supported so far"
            ));
        }
        let authority = upstream
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream {upstream} has no host"))?;
        let prefix = upstream.path().trim_end_matches('/').to_owned();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            scheme,
            authority,
            prefix,
            identity_header,
        })
    }

    fn upstream_uri(&self, uri: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.prefix, path_and_query))
            .build()
    }

    fn prepare(&self, request: &mut Request<Incoming>) -> Result<(), http::Error> {
        let headers = request.headers_mut();
        // Headers named in Connection are hop-by-hop too.
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        for name in HOP_BY_HOP {
            headers.remove(*name);
        }
        // The gate's server already answered any `Expect: 100-continue`.
        headers.remove(http::header::EXPECT);
        // Never trust an identity header from the client.
        headers.remove(&self.identity_header);
        let principal = request
            .extensions()
            .get::<Authenticated>()
            .map(|a| a.principal.clone());
        if let Some(principal) = principal {
            if let Ok(value) = HeaderValue::from_str(&principal) {
                request
                    .headers_mut()
                    .insert(self.identity_header.clone(), value);
            }
        }
        let info = request.extensions().get::<ConnectionInfo>().cloned();
        let host = request.headers().get(HOST).cloned();
        let headers = request.headers_mut();
        if let Some(info) = info {
            let for_value = info.remote.ip().to_string();
            let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(prior) => format!("{prior}, {for_value}"),
                None => for_value,
            };
            if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
                headers.insert("x-forwarded-for", v);
            }
            headers.insert(
                "x-forwarded-proto",
                HeaderValue::from_static(if info.tls { "https" } else { "http" }),
            );
        }
        if let Some(host) = host {
            headers.insert("x-forwarded-host", host);
        }
        let uri = self.upstream_uri(request.uri())?;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_11;
        Ok(())
    }
}

fn bad_gateway(status: StatusCode) -> Response<GateBody> {
    let mut response = Response::new(GateBody::default());
    *response.status_mut() = status;
    response
}

impl Service<Request<Incoming>> for ReverseProxy {
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if let Err(e) = this.prepare(&mut request) {
                tracing::warn!("cannot build the upstream request: {e}");
                return Ok(bad_gateway(StatusCode::BAD_REQUEST));
            }
            match this.client.request(request).await {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    for name in HOP_BY_HOP {
                        parts.headers.remove(*name);
                    }
                    Ok(Response::from_parts(
                        parts,
                        body.map_err(|e| Box::new(e) as BoxError).boxed(),
                    ))
                }
                Err(e) => {
                    tracing::error!(upstream = %this.authority, "upstream request failed: {e}");
                    Ok(bad_gateway(StatusCode::BAD_GATEWAY))
                }
            }
        })
    }
}
