//! The reverse proxy behind the gate: forwards authenticated requests upstream with
//! the identity in a header, streaming bodies both ways.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use crate::body::GateBody;
use crate::forward_body::{ForwardBody, IdleTimeout, Progress};
use crate::hop_by_hop::strip_hop_by_hop;
use crate::identity::Authenticated;
use crate::identity_headers::IdentityHeaders;
use crate::metrics::GateMetrics;
use crate::per_connection::ConnectionInfo;

/// The header that carries the authenticated principal to the upstream by default.
pub const DEFAULT_IDENTITY_HEADER: &str = "x-remote-user";

/// The default [`ProxyLimits::upstream_timeout`].
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest request body (1 GiB: enough for large git pushes).
pub const DEFAULT_MAX_BODY: u64 = 1 << 30;

/// What a [`ReverseProxy`] waits for and takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyLimits {
    /// How long the upstream may take to accept the connection, and then to make
    /// progress: to read the next part of the request body, or, once the body is sent,
    /// to send its response head. Beyond it the client gets `504`.
    pub upstream_timeout: Duration,
    /// The largest request body passed on: a larger `Content-Length` gets `413` before
    /// anything is sent upstream; a body without a length is cut at the limit (`413`
    /// if the upstream has not answered yet).
    pub max_body: u64,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self {
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// A [`Service`] that forwards requests to one upstream (`http://host:port[/prefix]`).
///
/// Any copy of the identity header sent by the client, in any spelling (see
/// [`IdentityHeaders`]), is removed, and the principal from the [`Authenticated`]
/// extension is set in its place (with the scheme in the scheme header, if one is set).
/// An upstream that stalls, and a body over the limit, are cut off ([`ProxyLimits`]).
#[derive(Clone)]
pub struct ReverseProxy {
    client: Client<HttpConnector, ForwardBody<Incoming>>,
    limits: ProxyLimits,
    metrics: Option<GateMetrics>,
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    identity: IdentityHeaders,
    signer: Option<IdentitySigner>,
}

impl std::fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseProxy")
            .field(
                "upstream",
                &format_args!("{}://{}{}", self.scheme, self.authority, self.prefix),
            )
            .field("identity", &self.identity)
            .field("signed", &self.signer.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

/// Signs the identity header so an upstream can tell it came from the gate:
/// `<identity-header>-Signature: v1 t=<unix seconds> sig=<base64url HMAC-SHA256>`
/// over `v1\n<principal>\n<t>\n<METHOD>\n<path?query>` with a shared key, where
/// `path?query` is the request target the upstream receives (the upstream URL's path
/// prefix, then the canonical path and the query). The upstream recomputes it over its
/// own request target and checks that `t` is recent.
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
    pub fn new(key: Vec<u8>) -> Result<Self, crate::SetupError> {
        if key.len() < 32 {
            return Err(format!(
                "the identity key has {} bytes; it needs at least 32 (e.g. head -c 32 /dev/urandom)",
                key.len()
            ).into());
        }
        Ok(Self {
            key: std::sync::Arc::new(zeroize::Zeroizing::new(key)),
        })
    }

    /// Reads a key file, refusing one that others can read.
    pub fn load(path: &std::path::Path) -> Result<Self, crate::SetupError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the identity key {}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "the identity key {} can be read by others: chmod 600 it",
                path.display()
            )
            .into());
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
    pub fn new(upstream: &Uri, identity_header: HeaderName) -> Result<Self, crate::SetupError> {
        let scheme = upstream.scheme().cloned().unwrap_or(Scheme::HTTP);
        if scheme != Scheme::HTTP {
            return Err(format!(
                "upstream {upstream}: only http:// upstreams are supported so far"
            )
            .into());
        }
        let authority = upstream
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream {upstream} has no host"))?;
        let prefix = upstream.path().trim_end_matches('/').to_owned();
        let limits = ProxyLimits::default();
        Ok(Self {
            client: upstream_client(limits.upstream_timeout),
            limits,
            metrics: None,
            scheme,
            authority,
            prefix,
            identity: IdentityHeaders::new(identity_header, None),
            signer: None,
        })
    }

    /// Sets the timeout and the body limit.
    pub fn with_limits(mut self, limits: ProxyLimits) -> Self {
        if limits.upstream_timeout != self.limits.upstream_timeout {
            self.client = upstream_client(limits.upstream_timeout);
        }
        self.limits = limits;
        self
    }

    /// Counts timeouts, upstream failures and bodies over the limit here.
    pub fn with_metrics(mut self, metrics: GateMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a signature header next to the identity header.
    pub fn with_signer(mut self, signer: IdentitySigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Passes the scheme the client used (`Negotiate`, `NTLM`, `Digest`, `Basic`) in
    /// `header`, which is then removed from clients like the identity header.
    pub fn with_scheme_header(mut self, header: HeaderName) -> Self {
        self.identity = IdentityHeaders::new(self.identity.identity().clone(), Some(header));
        self
    }

    /// Uses these identity headers (the gate builds one set for all its mounts).
    pub fn with_identity_headers(mut self, identity: IdentityHeaders) -> Self {
        self.identity = identity;
        self
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
        // Never trust an identity header (or its signature, or the scheme) from the
        // client, however it is spelled.
        self.identity.strip_client_spellings(headers);
        let authenticated = request.extensions().get::<Authenticated>().cloned();
        if let Some(Authenticated {
            principal,
            scheme,
            groups,
            ..
        }) = authenticated
        {
            if let Some(name) = self.identity.groups() {
                if let Ok(value) = HeaderValue::from_str(&groups.join(",")) {
                    request.headers_mut().insert(name.clone(), value);
                }
            }
            if let Ok(value) = HeaderValue::from_str(&principal) {
                request
                    .headers_mut()
                    .insert(self.identity.identity().clone(), value);
            }
            if let Some(name) = self.identity.scheme() {
                request
                    .headers_mut()
                    .insert(name.clone(), HeaderValue::from_static(scheme.name()));
            }
            if let (Some(signer), Some(name)) = (&self.signer, self.identity.signature().cloned()) {
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // The target the upstream receives: its prefix, then the canonical path.
                let target = format!(
                    "{}{}",
                    self.prefix,
                    request.uri().path_and_query().map_or("/", |p| p.as_str())
                );
                let sig = signer.sign(&principal, unix, request.method().as_str(), &target);
                if let Ok(value) = HeaderValue::from_str(&sig) {
                    request.headers_mut().insert(name, value);
                }
            }
        }
        let info = request.extensions().get::<ConnectionInfo>().cloned();
        // HTTP/2 clients send no Host: the authority is in the URI (`:authority`).
        let host = request.headers().get(HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        let headers = request.headers_mut();
        // Only the gate says which host the client asked for, also when it cannot tell.
        headers.remove("x-forwarded-host");
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

/// How many idle keep-alive connections to the upstream are kept for reuse. Without a
/// bound, a burst of N concurrent requests leaves N (or more: a request that waits for
/// a connection also opens one, and the loser is kept) idle connections behind, each
/// ~30 KiB in the gate (hyper's buffers and task) and a connection slot upstream, for
/// the pool's idle timeout (90 s).
const UPSTREAM_IDLE_CONNECTIONS: usize = 256;

/// A client for upstreams that gives up connecting after `timeout`.
fn upstream_client(timeout: Duration) -> Client<HttpConnector, ForwardBody<Incoming>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(UPSTREAM_IDLE_CONNECTIONS)
        .build(connector)
}

/// Waits for `response` while the request keeps moving: `None` once nothing has
/// happened for `timeout` (no connection, no part of the body taken, no head).
async fn unless_stalled<F: Future>(
    response: F,
    progress: &Progress,
    timeout: Duration,
) -> Option<F::Output> {
    tokio::pin!(response);
    loop {
        let deadline = progress.last_activity() + timeout;
        tokio::select! {
            out = &mut response => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                if progress.last_activity() + timeout <= tokio::time::Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// The declared length of a request body, if any.
fn declared_length(request: &Request<Incoming>) -> Option<u64> {
    use http_body::Body;
    request.body().size_hint().exact().or_else(|| {
        request
            .headers()
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    })
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
            if let Some(length) = declared_length(&request) {
                if length > this.limits.max_body {
                    tracing::warn!(
                        upstream = %this.authority,
                        length,
                        limit = this.limits.max_body,
                        "request body larger than max-body; answering 413, nothing sent upstream"
                    );
                    if let Some(m) = &this.metrics {
                        m.body_too_large();
                    }
                    return Ok(bad_gateway(StatusCode::PAYLOAD_TOO_LARGE));
                }
            }
            if let Err(e) = this.prepare(&mut request) {
                tracing::warn!("cannot build the upstream request: {e}");
                return Ok(bad_gateway(StatusCode::BAD_REQUEST));
            }
            let progress = Progress::new();
            let mut request =
                request.map(|body| ForwardBody::new(body, this.limits.max_body, progress.clone()));
            if let Some(protocol) = &upgrade {
                let headers = request.headers_mut();
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(http::header::UPGRADE, protocol.clone());
            }
            let timeout = this.limits.upstream_timeout;
            let Some(outcome) =
                unless_stalled(this.client.request(request), &progress, timeout).await
            else {
                if progress.waiting_for_client() {
                    tracing::info!(
                        upstream = %this.authority,
                        "the client sent no more of its request body for {timeout:?}; answering 408"
                    );
                    return Ok(bad_gateway(StatusCode::REQUEST_TIMEOUT));
                }
                tracing::warn!(
                    upstream = %this.authority,
                    "the upstream did not answer (no connection, body not read, or no response head) \
                     within the upstream-timeout of {timeout:?}; answering 504"
                );
                if let Some(m) = &this.metrics {
                    m.upstream_timeout();
                }
                return Ok(bad_gateway(StatusCode::GATEWAY_TIMEOUT));
            };
            match outcome {
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
                    // The fixed list and whatever the upstream's `Connection` names
                    // (RFC 9110 §7.6.1): those were meant for this hop only.
                    strip_hop_by_hop(&mut parts.headers);
                    if let Some((connection, protocol)) = upgrade_headers {
                        if let Some(c) = connection {
                            parts.headers.insert(CONNECTION, c);
                        }
                        if let Some(p) = protocol {
                            parts.headers.insert(http::header::UPGRADE, p);
                        }
                    }
                    let body = IdleTimeout::new(
                        body,
                        timeout,
                        this.metrics.clone(),
                        this.authority.to_string(),
                    );
                    Ok(Response::from_parts(parts, body.boxed()))
                }
                Err(_) if progress.too_large() => {
                    tracing::warn!(
                        upstream = %this.authority,
                        limit = this.limits.max_body,
                        "request body larger than max-body; cut off, answering 413"
                    );
                    if let Some(m) = &this.metrics {
                        m.body_too_large();
                    }
                    Ok(bad_gateway(StatusCode::PAYLOAD_TOO_LARGE))
                }
                Err(e) if e.is_connect() && is_timeout(&e) => {
                    tracing::warn!(
                        upstream = %this.authority,
                        "cannot connect to the upstream within the upstream-timeout of {timeout:?}; answering 504"
                    );
                    if let Some(m) = &this.metrics {
                        m.upstream_timeout();
                    }
                    Ok(bad_gateway(StatusCode::GATEWAY_TIMEOUT))
                }
                Err(e) => {
                    tracing::error!(upstream = %this.authority, "upstream request failed: {e}");
                    if let Some(m) = &this.metrics {
                        m.upstream_failure();
                    }
                    Ok(bad_gateway(StatusCode::BAD_GATEWAY))
                }
            }
        })
    }
}

/// True if a client error was a timeout somewhere in its chain of sources.
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.to_string().contains("timed out")
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
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
