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
#[derive(Clone)]
pub struct ReverseProxy {
    client: Client<HttpConnector, Incoming>,
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    identity_header: HeaderName,
    signer: Option<IdentitySigner>,
}

impl std::fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseProxy")
            .field(
                "upstream",
                &format_args!("{}://{}{}", self.scheme, self.authority, self.prefix),
            )
            .field("identity_header", &self.identity_header)
            .field("signed", &self.signer.is_some())
            .finish()
    }
}

/// Signs the identity header so an upstream can tell it came from the gate:
/// `<identity-header>-Signature: v1 t=<unix seconds> sig=<base64url HMAC-SHA256>`
/// over `v1\n<principal>\n<t>\n<METHOD>\n<path?query>` with a shared key. The
/// upstream recomputes it and checks that `t` is recent.
#[derive(Clone)]
pub struct IdentitySigner {
    key: std::sync::Arc<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentitySigner(<key>)")
    }
}

impl IdentitySigner {
    /// A signer with this key (at least 32 bytes).
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < 32 {
            return Err(format!(
                "the identity key has {} bytes; it needs at least 32 (e.g. head -c 32 /dev/urandom)",
                key.len()
            ));
        }
        Ok(Self {
            key: std::sync::Arc::new(zeroize::Zeroizing::new(key)),
        })
    }

    /// Reads a key file, refusing one that others can read.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the identity key {}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "the identity key {} can be read by others: chmod 600 it",
                path.display()
            ));
        }
        let key = std::fs::read(path)
            .map_err(|e| format!("cannot read the identity key {}: {e}", path.display()))?;
        Self::new(key)
    }

    /// The signature header value for `principal` making `method path_and_query` at
    /// `unix` seconds.
    pub fn sign(&self, principal: &str, unix: u64, method: &str, path_and_query: &str) -> String {
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(format!("v1\n{principal}\n{unix}\n{method}\n{path_and_query}").as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("v1 t={unix} sig={sig}")
    }
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
            signer: None,
        })
    }

    /// Adds a signature header next to the identity header.
    pub fn with_signer(mut self, signer: IdentitySigner) -> Self {
        self.signer = Some(signer);
        self
    }

    fn signature_header(&self) -> Option<HeaderName> {
        HeaderName::from_bytes(format!("{}-signature", self.identity_header).as_bytes()).ok()
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
        strip_hop_by_hop(headers);
        // The gate's server already answered any `Expect: 100-continue`.
        headers.remove(http::header::EXPECT);
        // Never trust an identity header (or its signature) from the client.
        headers.remove(&self.identity_header);
        if let Some(sig) = self.signature_header() {
            headers.remove(sig);
        }
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
            if let (Some(signer), Some(name)) = (&self.signer, self.signature_header()) {
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let target = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let sig = signer.sign(&principal, unix, request.method().as_str(), &target);
                if let Ok(value) = HeaderValue::from_str(&sig) {
                    request.headers_mut().insert(name, value);
                }
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
            // An upgrade (WebSocket) passes through: the headers that ask for it go
            // upstream, and after a 101 the two connections are spliced.
            let upgrade = requested_upgrade(request.headers());
            let client_side = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
            if let Err(e) = this.prepare(&mut request) {
                tracing::warn!("cannot build the upstream request: {e}");
                return Ok(bad_gateway(StatusCode::BAD_REQUEST));
            }
            if let Some(protocol) = &upgrade {
                let headers = request.headers_mut();
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(http::header::UPGRADE, protocol.clone());
            }
            match this.client.request(request).await {
                Ok(mut response) => {
                    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                    if let (true, Some(client_side)) = (switching, client_side) {
                        let upstream_side = hyper::upgrade::on(&mut response);
                        tokio::spawn(async move {
                            match tokio::try_join!(client_side, upstream_side) {
                                Ok((client, upstream)) => {
                                    let mut client = hyper_util::rt::TokioIo::new(client);
                                    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
                                    let _ =
                                        tokio::io::copy_bidirectional(&mut client, &mut upstream)
                                            .await;
                                }
                                Err(e) => tracing::warn!("upgrade failed: {e}"),
                            }
                        });
                    }
                    let (mut parts, body) = response.into_parts();
                    let upgrade_headers = switching.then(|| {
                        (
                            parts.headers.get(CONNECTION).cloned(),
                            parts.headers.get(http::header::UPGRADE).cloned(),
                        )
                    });
                    for name in HOP_BY_HOP {
                        parts.headers.remove(*name);
                    }
                    if let Some((connection, protocol)) = upgrade_headers {
                        if let Some(c) = connection {
                            parts.headers.insert(CONNECTION, c);
                        }
                        if let Some(p) = protocol {
                            parts.headers.insert(http::header::UPGRADE, p);
                        }
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

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): the fixed list and those named in
/// `Connection`. A proxy must not forward them.
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
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
}

/// The protocol a request asks to upgrade to (`Connection: upgrade` + `Upgrade:`).
fn requested_upgrade(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if wants {
        headers.get(http::header::UPGRADE).cloned()
    } else {
        None
    }
}
