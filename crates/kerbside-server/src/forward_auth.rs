//! Forward authentication: the gate as the authentication service of a reverse proxy
//! that is already there (nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `forwardAuth`).
//!
//! The front proxy sends a copy of each client request's head (no body) to a
//! forward-auth path of the gate. That subrequest is not the request the rules must
//! judge: the front says which one it is in `X-Original-Method`/`X-Original-URI`
//! (nginx, as docs/forward-auth.md tells it to) or `X-Forwarded-Method`/
//! `X-Forwarded-Uri` (Caddy, Traefik). [`ForwardAuthLayer`] sits in front of the
//! [`NegotiateLayer`](crate::NegotiateLayer): for a forward-auth path it
//!
//! 1. refuses (`403`, in words, logged) a peer that is not one of the trusted front
//!    proxies ([`ForwardAuthSettings::trusted`]), since only they may name the request;
//! 2. rewrites the subrequest's method and URI into the original's, its path made
//!    canonical as at the gate's edge ([`crate::canonical_path`]; a path with no
//!    canonical form gets `403`), so the authentication layer and the access rules
//!    see what the client asked for;
//! 3. replaces the connection's channel bindings with the front's certificate
//!    ([`ForwardAuthSettings::front_binding`]) or none: the client's TLS channel ends
//!    at the front, not at the gate;
//! 4. hands the request to the authentication layer wrapped around [`Endpoint`],
//!    which answers `200` with the identity headers, never the request's own.
//!
//! The layer's `401` (with its challenges), `403`, final mutual token and
//! `Set-Cookie` reach the front as they are, for it to copy to the client. A `400`
//! (malformed credentials) becomes `403`: nginx turns any answer but 2xx, 401 and 403
//! into a `500`.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use tower_layer::Layer;
use tower_service::Service;

use crate::access::Groups;
use crate::body::GateBody;
use crate::identity::Authenticated;
use crate::per_connection::ConnectionInfo;
use crate::per_connection::TlsChannel;
use crate::usermap::UserMap;

/// The header carrying the local user name (the gate's `user-map` applied to the
/// principal) in a forward-auth answer, when a user map is set.
pub const USER_HEADER: &str = "x-kerbside-user";

/// The header carrying the groups (of the gate's groups file) the principal is in,
/// comma-separated, in a forward-auth answer, when a groups file is set.
pub const GROUPS_HEADER: &str = "x-kerbside-groups";

/// How the gate serves forward-auth mounts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForwardAuthSettings {
    /// The front proxies' addresses: only they may ask. Default: loopback
    /// (`127.0.0.0/8`, `::1`).
    pub trusted: Vec<ipnet::IpNet>,
    /// The `tls-server-end-point` channel binding of the front proxy's certificate:
    /// tokens that carry bindings must match it. `None`: bindings are not checked
    /// (the front's TLS channel is not the gate's).
    pub front_binding: Option<Arc<Vec<u8>>>,
    /// Also answer the mapped user name in [`USER_HEADER`].
    pub user_map: Option<UserMap>,
}

impl Default for ForwardAuthSettings {
    fn default() -> Self {
        Self {
            trusted: default_trusted(),
            front_binding: None,
            user_map: None,
        }
    }
}

/// Loopback: `127.0.0.0/8` and `::1`.
pub fn default_trusted() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Reads one trusted address: a network (`10.0.0.0/8`, `fd00::/8`) or one address
/// (`192.0.2.7`, `::1`).
pub fn parse_trusted(text: &str) -> Result<ipnet::IpNet, crate::SetupError> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(ipnet::IpNet::from).map_err(|_| {
        format!(
            "forward-auth-trusted {text:?} is not an address or network: give e.g. 127.0.0.1, ::1 or 10.0.0.0/8"
        )
        .into()
    })
}

/// The `tls-server-end-point` binding of the first certificate in a PEM file (the
/// front proxy's certificate).
pub fn load_front_binding(path: &std::path::Path) -> Result<Vec<u8>, crate::SetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let leaf = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("forward-auth-cert: cannot read {}: {e}", path.display()))?
        .next()
        .ok_or_else(|| format!("forward-auth-cert: {} holds no certificate", path.display()))?
        .map_err(|e| format!("forward-auth-cert: cannot read {}: {e}", path.display()))?;
    kerbside_proto::channel_binding::tls_server_end_point(leaf.as_ref()).map_err(|e| {
        format!(
            "forward-auth-cert: no channel binding for {}: {e}",
            path.display()
        )
        .into()
    })
}

/// Refuses, in words, what cannot work through a front proxy's auth subrequest:
/// connection-bound authentication (`auth = connection`, NTLM). Each subrequest may
/// come on another connection from the front, shared by many clients.
pub fn check_mode(mode: crate::auth::AuthMode, ntlm: bool) -> Result<(), crate::SetupError> {
    if mode == crate::auth::AuthMode::Connection {
        return Err(
            "forward-auth cannot work with --auth connection: the front proxy's \
                    subrequests do not keep the client's connection (use per-request or cookie)"
                .into(),
        );
    }
    if ntlm {
        return Err(
            "forward-auth cannot take NTLM: NTLM authenticates a connection, and the \
                    front proxy's subrequests do not keep the client's (drop --ntlm-users)"
                .into(),
        );
    }
    Ok(())
}

/// Which original request a forward-auth subrequest asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    /// The client's method.
    pub method: Method,
    /// The client's request target (path and query).
    pub target: PathAndQuery,
}

/// Why a forward-auth subrequest was refused before authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardAuthRefusal {
    /// The peer is not a trusted front proxy.
    #[error("{0} is not a trusted front proxy (forward-auth-trusted); only the front proxy may ask the forward-auth endpoint")]
    Untrusted(IpAddr),
    /// The request names no original URI.
    #[error("the front proxy did not say which request it asks about: send X-Original-URI and X-Original-Method (nginx) or X-Forwarded-Uri and X-Forwarded-Method (Caddy, Traefik)")]
    NoOriginalUri,
    /// The header is there but holds no method, or twice.
    #[error("{0} is missing, repeated or not a method")]
    BadMethod(&'static str),
    /// The original URI is not an origin-form request target.
    #[error("{0} is repeated or not a request path (it must start with /)")]
    BadUri(&'static str),
}

/// Reads the original request from the subrequest's headers: `X-Original-URI` and
/// `X-Original-Method` if the first is there, else `X-Forwarded-Uri` and
/// `X-Forwarded-Method`. Each must appear once; the target must be origin-form
/// (`/path?query`).
pub fn original_request(headers: &HeaderMap) -> Result<OriginalRequest, ForwardAuthRefusal> {
    let (uri_name, method_name) = if headers.contains_key("x-original-uri") {
        ("X-Original-URI", "X-Original-Method")
    } else if headers.contains_key("x-forwarded-uri") {
        ("X-Forwarded-Uri", "X-Forwarded-Method")
    } else {
        return Err(ForwardAuthRefusal::NoOriginalUri);
    };
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v.as_bytes()),
            _ => None,
        }
    };
    let target = single(uri_name)
        .filter(|v| v.first() == Some(&b'/'))
        .and_then(|v| PathAndQuery::try_from(v).ok())
        .ok_or(ForwardAuthRefusal::BadUri(uri_name))?;
    let method = single(method_name)
        .and_then(|v| Method::from_bytes(v).ok())
        .ok_or(ForwardAuthRefusal::BadMethod(method_name))?;
    Ok(OriginalRequest { method, target })
}

/// Whether `peer` may use the forward-auth endpoint.
pub fn is_trusted(trusted: &[ipnet::IpNet], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    trusted.iter().any(|net| net.contains(&peer))
}

/// The inner service of a forward-auth path: `200` with the identity headers of the
/// [`Authenticated`] extension (for a request the rules let in anonymously, the
/// identity header empty).
#[derive(Debug, Clone)]
pub struct Endpoint {
    identity_header: HeaderName,
    scheme_header: Option<HeaderName>,
    user_map: Option<UserMap>,
    groups: Arc<Groups>,
}

impl Endpoint {
    /// An endpoint answering the principal in `identity_header`, the mapped user in
    /// [`USER_HEADER`] (with a user map), the principal's groups in [`GROUPS_HEADER`]
    /// (if `groups` has any); call [`with_scheme_header`](Self::with_scheme_header)
    /// for the scheme.
    pub fn new(identity_header: HeaderName, user_map: Option<UserMap>, groups: Groups) -> Self {
        Self {
            identity_header,
            scheme_header: None,
            user_map,
            groups: Arc::new(groups),
        }
    }

    /// Also answer the scheme the client used (`Negotiate`, `Digest`, `Basic`) in
    /// `header` (the gate's `--scheme-header`).
    pub fn with_scheme_header(mut self, header: Option<HeaderName>) -> Self {
        self.scheme_header = header;
        self
    }

    fn answer(&self, who: Option<&Authenticated>) -> Response<GateBody> {
        let mut response = Response::new(GateBody::default());
        let headers = response.headers_mut();
        let Some(who) = who else {
            // Empty, not absent: Caddy 2.6 would copy an absent header as the text
            // of its placeholder. nginx sends an empty header on as none.
            headers.insert(self.identity_header.clone(), HeaderValue::from_static(""));
            return response;
        };
        let principal = who.principal.as_str();
        if let Ok(value) = HeaderValue::from_str(principal) {
            headers.insert(self.identity_header.clone(), value);
        }
        if let Some(name) = &self.scheme_header {
            headers.insert(name.clone(), HeaderValue::from_static(who.scheme.name()));
        }
        if let Some(map) = &self.user_map {
            // A name from the gate's users files is a user name already.
            let user = if who.kerberos {
                map.map_authenticated(who)
            } else {
                Some(principal.to_owned())
            };
            if let Some(value) = user.and_then(|user| HeaderValue::from_str(&user).ok()) {
                headers.insert(HeaderName::from_static(USER_HEADER), value);
            }
        }
        // The groups file's groups, then the Active Directory groups of the PAC.
        if !self.groups.is_empty() || who.domain.is_some() {
            if let Ok(value) = HeaderValue::from_str(&who.groups.join(",")) {
                headers.insert(HeaderName::from_static(GROUPS_HEADER), value);
            }
        }
        response
    }
}

impl<B> Service<Request<B>> for Endpoint {
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<GateBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(request.extensions().get::<Authenticated>())))
    }
}

/// Sends requests for the forward-auth paths to `endpoint` (the authentication layer
/// around an [`Endpoint`]) after the checks and rewriting in the module docs; every
/// other request to the inner service.
#[derive(Clone)]
pub struct ForwardAuthLayer<E> {
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    paths: Vec<String>,
    settings: ForwardAuthSettings,
    endpoint: E,
    metrics: Option<crate::metrics::GateMetrics>,
}

impl<E> std::fmt::Debug for ForwardAuthLayer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuthLayer")
            .field("paths", &self.shared.paths)
            .field("trusted", &self.shared.settings.trusted)
            .finish_non_exhaustive()
    }
}

impl<E> ForwardAuthLayer<E> {
    /// Forward-auth at `paths` (each with what is under it), answered by `endpoint`.
    pub fn new(paths: Vec<String>, settings: ForwardAuthSettings, endpoint: E) -> Self {
        Self {
            shared: Arc::new(Shared {
                paths,
                settings,
                endpoint,
                metrics: None,
            }),
        }
    }

    /// Counts the refusals made here (`forward_auth_untrusted`,
    /// `forward_auth_no_original`) and their `403`s in `metrics`.
    pub fn with_metrics(
        paths: Vec<String>,
        settings: ForwardAuthSettings,
        endpoint: E,
        metrics: crate::metrics::GateMetrics,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                paths,
                settings,
                endpoint,
                metrics: Some(metrics),
            }),
        }
    }

    fn is_forward_auth(&self, path: &str) -> bool {
        self.shared
            .paths
            .iter()
            .any(|p| crate::canonical_path::prefix_matches(p, path))
    }
}

impl<S, E> Layer<S> for ForwardAuthLayer<E> {
    type Service = ForwardAuthService<S, E>;
    fn layer(&self, inner: S) -> Self::Service {
        ForwardAuthService {
            inner,
            layer: ForwardAuthLayer {
                shared: self.shared.clone(),
            },
        }
    }
}

/// The service made by [`ForwardAuthLayer`].
#[derive(Clone)]
pub struct ForwardAuthService<S, E> {
    inner: S,
    layer: ForwardAuthLayer<E>,
}

impl<S, E> std::fmt::Debug for ForwardAuthService<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuthService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn refusal(status: StatusCode) -> Response<GateBody> {
    let mut response = Response::new(GateBody::default());
    *response.status_mut() = status;
    response
}

impl<S, E, B> Service<Request<B>> for ForwardAuthService<S, E>
where
    S: Service<Request<B>, Response = Response<GateBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    E: Service<Request<B>, Response = Response<GateBody>, Error = S::Error>
        + Clone
        + Send
        + Sync
        + 'static,
    E::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<GateBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<GateBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !self.layer.is_forward_auth(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let settings = &self.layer.shared.settings;
        let peer = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|c| c.remote);
        let subrequest = request.uri().path().to_owned();
        let checked = match peer {
            Some(peer) if is_trusted(&settings.trusted, peer.ip()) => {
                original_request(request.headers())
            }
            Some(peer) => Err(ForwardAuthRefusal::Untrusted(peer.ip())),
            // Outside the gate nobody says who the peer is: trust no one.
            None => Err(ForwardAuthRefusal::Untrusted(IpAddr::from([0, 0, 0, 0]))),
        };
        let original = match checked {
            Ok(original) => original,
            Err(e) => {
                tracing::warn!(peer = ?peer, path = %subrequest, "forward-auth request refused: {e}");
                if let Some(m) = &self.layer.shared.metrics {
                    m.failure(match e {
                        ForwardAuthRefusal::Untrusted(_) => "forward_auth_untrusted",
                        _ => "forward_auth_no_original",
                    });
                    m.response(StatusCode::FORBIDDEN);
                }
                return Box::pin(std::future::ready(Ok(refusal(StatusCode::FORBIDDEN))));
            }
        };
        tracing::debug!(peer = ?peer, method = %original.method, target = %original.target, "forward-auth request");
        *request.method_mut() = original.method;
        *request.uri_mut() = Uri::from(original.target);
        // The client's path, made canonical as the gate's own requests are at its edge
        // (the rules, Digest and the logs read it); one with no canonical form is
        // refused with 403, which every front passes on (nginx turns 400 into 500).
        if let Err(problem) = crate::canonical_path::canonicalise(&mut request) {
            tracing::warn!(peer = ?peer, path = %request.uri().path().escape_debug(), "forward-auth request refused: the original request path {problem}");
            if let Some(m) = &self.layer.shared.metrics {
                m.failure("forward_auth_bad_path");
                m.response(StatusCode::FORBIDDEN);
            }
            return Box::pin(std::future::ready(Ok(refusal(StatusCode::FORBIDDEN))));
        }
        request.extensions_mut().insert(TlsChannel {
            binding: settings.front_binding.clone(),
        });
        let mut endpoint = self.layer.shared.endpoint.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| endpoint.poll_ready(cx)).await?;
            let mut response = endpoint.call(request).await?;
            if response.status() == StatusCode::BAD_REQUEST {
                // nginx answers 500 for anything but 2xx, 401 and 403 from
                // auth_request; the reason is in the gate's log.
                *response.status_mut() = StatusCode::FORBIDDEN;
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn nginx_headers_win_over_caddy_headers() {
        let original = original_request(&headers(&[
            ("x-original-uri", "/admin/x?y=1"),
            ("x-original-method", "POST"),
            ("x-forwarded-uri", "/public"),
            ("x-forwarded-method", "GET"),
        ]))
        .unwrap();
        assert_eq!(original.method, Method::POST);
        assert_eq!(original.target.as_str(), "/admin/x?y=1");
        let caddy = original_request(&headers(&[
            ("x-forwarded-uri", "/public?a"),
            ("x-forwarded-method", "PUT"),
        ]))
        .unwrap();
        assert_eq!(caddy.method, Method::PUT);
        assert_eq!(caddy.target.as_str(), "/public?a");
    }

    #[test]
    fn missing_repeated_or_absolute_targets_are_refused() {
        assert_eq!(
            original_request(&headers(&[("x-original-method", "GET")])),
            Err(ForwardAuthRefusal::NoOriginalUri)
        );
        assert_eq!(
            original_request(&headers(&[("x-original-uri", "/a")])),
            Err(ForwardAuthRefusal::BadMethod("X-Original-Method"))
        );
        for bad in ["http://evil/a", "a/b", "*", ""] {
            assert_eq!(
                original_request(&headers(&[
                    ("x-original-uri", bad),
                    ("x-original-method", "GET")
                ])),
                Err(ForwardAuthRefusal::BadUri("X-Original-URI")),
                "{bad}"
            );
        }
        assert_eq!(
            original_request(&headers(&[
                ("x-forwarded-uri", "/a"),
                ("x-forwarded-uri", "/b"),
                ("x-forwarded-method", "GET")
            ])),
            Err(ForwardAuthRefusal::BadUri("X-Forwarded-Uri"))
        );
    }

    #[test]
    fn trusted_addresses_are_networks_or_single_addresses() {
        let trusted = vec![
            parse_trusted("127.0.0.1/32").unwrap(),
            parse_trusted("::1").unwrap(),
            parse_trusted("10.1.2.3/8").unwrap(),
        ];
        assert!(is_trusted(&trusted, "127.0.0.1".parse().unwrap()));
        assert!(!is_trusted(&trusted, "127.0.0.2".parse().unwrap()));
        assert!(is_trusted(&trusted, "10.200.0.1".parse().unwrap()));
        assert!(is_trusted(&trusted, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_trusted(&trusted, "::1".parse().unwrap()));
        assert!(!is_trusted(&trusted, "::2".parse().unwrap()));
        assert!(parse_trusted("localhost")
            .unwrap_err()
            .message()
            .contains("127.0.0.1"));
        assert!(parse_trusted("10.0.0.0/33").is_err());
        let loopback = default_trusted();
        assert!(is_trusted(&loopback, "127.9.9.9".parse().unwrap()));
        assert!(!is_trusted(&loopback, "192.0.2.1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn any_header_values_give_an_answer_not_a_panic(
            uri in proptest::collection::vec(any::<u8>(), 0..64),
            method in proptest::collection::vec(any::<u8>(), 0..16),
            nginx in any::<bool>(),
        ) {
            let (u, m) = if nginx {
                ("x-original-uri", "x-original-method")
            } else {
                ("x-forwarded-uri", "x-forwarded-method")
            };
            let mut map = HeaderMap::new();
            if let (Ok(uv), Ok(mv)) = (HeaderValue::from_bytes(&uri), HeaderValue::from_bytes(&method)) {
                map.insert(u, uv);
                map.insert(m, mv);
                if let Ok(original) = original_request(&map) {
                    prop_assert!(original.target.as_str().starts_with('/'));
                }
            }
        }

        #[test]
        fn any_text_parses_as_trusted_or_is_refused_in_words(text in ".{0,40}") {
            if let Err(e) = parse_trusted(&text) {
                prop_assert!(e.message().contains("forward-auth-trusted"));
            }
        }
    }
}
