//! The gate: an authenticating reverse proxy and CGI host. TLS (rustls, HTTP/2 and
//! HTTP/1.1 by ALPN) or plain HTTP on one listener; a
//! [`NegotiateLayer`](crate::NegotiateLayer) in front of a [`Router`] that sends each
//! path to a [`ReverseProxy`](crate::ReverseProxy) or a
//! [`CgiService`](crate::cgi::CgiService); Prometheus metrics on their own listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::HeaderName;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;
use tower_service::Service;

use crate::access::AccessRules;
use crate::auth::{
    http11_required_as_error, AuthMode, BasicFallback, ChannelBindingPolicy, NegotiateConfig,
    NegotiateLayer, NegotiateService,
};
use crate::body::{BoxError, GateBody};
use crate::canonical_path::{prefix_matches, CanonicalPathLayer};
use crate::cgi::{CgiConfig, CgiService};
use crate::drain::{Drain, DrainWatcher};
use crate::forward_auth::{Endpoint, ForwardAuthLayer, ForwardAuthSettings};
use crate::health::{Draining, HealthLayer};
use crate::identity_headers::IdentityHeaders;
use crate::listener::Listener;
use crate::metrics::GateMetrics;
pub use crate::per_connection::ConnectionInfo;
use crate::per_connection::PerConnection;
use crate::proxy::{IdentitySigner, ProxyLimits, ReverseProxy};
use crate::proxy_protocol::{Prefixed, ProxyProtocol};
use crate::session::{SessionCodec, SessionKeys};

/// The largest request head accepted (Kerberos tokens with big PACs need room);
/// beyond it the client gets `431`.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connections to the metrics listener open at once, at most.
const METRICS_CONNECTIONS: usize = 64;

/// Time a scraper has to send its request to the metrics listener.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests under a path prefix go.
#[derive(Debug, Clone)]
pub enum MountTarget {
    /// A reverse proxy to this upstream.
    Proxy(Uri),
    /// A CGI program.
    Cgi(CgiConfig),
    /// The authentication endpoint of a front proxy (nginx `auth_request`, Caddy
    /// `forward_auth`): see [`crate::forward_auth`].
    ForwardAuth,
}

/// One mount: a path prefix and its target.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Mount {
    /// The path prefix (`/` for everything).
    pub prefix: String,
    /// Where the requests go.
    pub target: MountTarget,
    /// This mount's [`GateConfig::upstream_timeout`] (proxy mounts), if not the gate's.
    pub upstream_timeout: Option<Duration>,
    /// This mount's [`GateConfig::max_body`], if not the gate's.
    pub max_body: Option<u64>,
}

impl Mount {
    /// A mount with the gate's limits.
    pub fn new(prefix: impl Into<String>, target: MountTarget) -> Self {
        Self {
            prefix: prefix.into(),
            target,
            upstream_timeout: None,
            max_body: None,
        }
    }
}

/// Everything the gate is configured with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GateConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM); `None` serves plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The keytab; `None` uses `KRB5_KTNAME`.
    pub keytab: Option<PathBuf>,
    /// Accept only tickets for this service name (GSSAPI holds the ticket to it).
    pub acceptor: Option<String>,
    /// Which services a ticket may be for when that is decided per request: a list, or
    /// `{HOSTNAME}` (`acceptor` is then `None`: any key of the keytab opens a ticket).
    pub acceptor_names: kerbside_proto::acceptor_names::AcceptorNames,
    /// The replay cache file; `None` is the default place
    /// (`kerbside_gssapi::ReplayJournal::default_path`).
    pub replay_cache: Option<PathBuf>,
    /// A replay cache shared with the other gates behind one balancer:
    /// `redis://HOST:PORT/DB`; replaces the file (`replay_cache`).
    pub replay_cache_redis: Option<String>,
    /// What to do with Kerberos logins while the shared replay cache does not answer.
    pub replay_cache_unavailable: kerbside_gssapi::WhenUnavailable,
    /// Where requests go, longest prefix first.
    pub mounts: Vec<Mount>,
    /// The header that carries the principal upstream.
    pub identity_header: HeaderName,
    /// The header that carries the scheme the client used (`Negotiate`, `NTLM`,
    /// `Digest`, `Basic`) upstream, if any; removed from clients like the identity header.
    pub scheme_header: Option<HeaderName>,
    /// A key file (32+ bytes, mode 0600) to sign the identity header with, for
    /// upstreams that want proof it came from the gate.
    pub identity_key: Option<PathBuf>,
    /// How clients stay authenticated.
    pub mode: AuthMode,
    /// The session key file (cookie mode); created with mode 0600 if missing.
    pub session_key: Option<PathBuf>,
    /// Older session keys that still open cookies (key rotation).
    pub previous_session_keys: Vec<PathBuf>,
    /// Who may do what.
    pub access: AccessRules,
    /// Channel bindings on TLS.
    pub channel_binding: ChannelBindingPolicy,
    /// Where to serve `/metrics` (Prometheus), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Accept Basic credentials checked against the KDC and the keytab, with this
    /// realm name in the challenge (TLS only).
    pub basic_fallback: Option<String>,
    /// NTLM users file (`USER:NTHASH` lines): NTLM is offered in connection mode.
    pub ntlm_users: Option<PathBuf>,
    /// Take NTLMSSP inside Negotiate too (needs `ntlm_users` or `ntlm_winbind`).
    pub ntlm_in_negotiate: bool,
    /// NTLM for the accounts of the domain the host is joined to, checked by its domain
    /// controller through winbindd (libwbclient; instead of `ntlm_users`).
    pub ntlm_winbind: Option<crate::ntlm_winbind::WinbindConfig>,
    /// The NetBIOS name of the realm's AD domain, for Basic names typed `NAME\user`;
    /// `None`: the first label of the default realm (`AD` for `AD.EXAMPLE.COM`).
    pub netbios_domain: Option<String>,
    /// Digest users file (htdigest lines) and the realm.
    pub digest_users: Option<(PathBuf, String)>,
    /// Offer Digest MD5 as well as SHA-256 (old clients).
    pub digest_md5: bool,
    /// How long a Digest nonce is good for, in seconds.
    pub digest_nonce_lifetime: u64,
    /// Basic users file (htpasswd, bcrypt), TLS only.
    pub basic_users: Option<PathBuf>,
    /// At most this many tokens are accepted at once.
    pub max_handshakes: usize,
    /// Time a client has to send a request's headers (slowloris), and to start the
    /// next request on a kept-alive connection.
    pub header_timeout: Duration,
    /// How long an upstream may take to accept a connection, then to make progress
    /// (read the request body, send its response head); beyond it `504`. Mounts may
    /// set their own.
    pub upstream_timeout: Duration,
    /// The largest request body (proxy and CGI mounts); beyond it `413`. Mounts may
    /// set their own.
    pub max_body: u64,
    /// All request bodies spooled to disk for CGI programs at once, at most; a
    /// request that would go beyond it gets `507`.
    pub spool_budget: u64,
    /// Open client connections at most; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How [`MountTarget::ForwardAuth`] mounts trust and answer the front proxy.
    pub forward_auth: ForwardAuthSettings,
    /// The path of the whoami page (who the client is and how they logged in, HTML or
    /// JSON), served behind authentication and the rules; `None`: no page.
    pub whoami_path: Option<String>,
    /// The path of the health endpoint for load balancers (`200 ready`, `503 draining`
    /// once shutdown began), answered before authentication; `None`: no endpoint.
    pub health_path: Option<String>,
    /// How long the gate keeps serving after it was told to stop, with the health
    /// endpoint answering `503`, so balancers take it out before it stops accepting.
    pub shutdown_delay: Duration,
    /// Take the client's address from a PROXY protocol header (v1 or v2) that the
    /// trusted balancers send first on each connection; `None` (the default): off.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Keep the credentials clients delegate in this directory (mode 0700, a ticket
    /// cache per user) and give CGI programs theirs as `KRB5CCNAME`
    /// ([`crate::delegation`]); `None` (the default) keeps none.
    pub delegation_dir: Option<PathBuf>,
    /// Constrained delegation (S4U2Proxy): the gate's own account (`svc-web@REALM`,
    /// whose keys the keytab holds) gets tickets in the user's name to the services
    /// the domain lets it delegate to, without the user delegating. Needs
    /// `delegation_dir`.
    pub s4u2proxy: Option<String>,
    /// The header that carries the client's groups (comma-separated) to proxy mounts,
    /// if any; removed from clients like the identity header.
    pub groups_header: Option<HeaderName>,
    /// Names for the Active Directory groups of a PAC; `None` keeps them as SIDs.
    /// By default through winbind ([`GroupNames::winbind`](crate::ad_groups::GroupNames::winbind)).
    pub group_names: Option<crate::ad_groups::GroupNames>,
}

impl GateConfig {
    /// A per-request gate on `listen` proxying everything to `upstream`.
    pub fn proxy(listen: SocketAddr, upstream: Uri) -> Self {
        Self {
            listen,
            tls: None,
            keytab: None,
            acceptor: None,
            acceptor_names: Default::default(),
            replay_cache: None,
            replay_cache_redis: None,
            replay_cache_unavailable: kerbside_gssapi::WhenUnavailable::Refuse,
            mounts: vec![Mount::new("/", MountTarget::Proxy(upstream))],
            identity_header: HeaderName::from_static(crate::proxy::DEFAULT_IDENTITY_HEADER),
            scheme_header: None,
            identity_key: None,
            mode: AuthMode::PerRequest,
            session_key: None,
            previous_session_keys: Vec::new(),
            access: AccessRules::allow_all_authenticated(),
            channel_binding: ChannelBindingPolicy::Optional,
            metrics: None,
            basic_fallback: None,
            ntlm_users: None,
            ntlm_in_negotiate: false,
            ntlm_winbind: None,
            netbios_domain: None,
            digest_users: None,
            digest_md5: false,
            digest_nonce_lifetime: kerbside_proto::scheme::digest::server::DEFAULT_NONCE_LIFETIME,
            basic_users: None,
            max_handshakes: 64,
            header_timeout: Duration::from_secs(30),
            upstream_timeout: crate::proxy::DEFAULT_UPSTREAM_TIMEOUT,
            max_body: crate::proxy::DEFAULT_MAX_BODY,
            spool_budget: crate::cgi::DEFAULT_SPOOL_BUDGET,
            max_connections: crate::listener::DEFAULT_MAX_CONNECTIONS,
            forward_auth: ForwardAuthSettings::default(),
            proxy_protocol: None,
            health_path: Some(crate::health::DEFAULT_HEALTH_PATH.to_owned()),
            whoami_path: Some(crate::whoami::DEFAULT_WHOAMI_PATH.to_owned()),
            shutdown_delay: Duration::ZERO,
            delegation_dir: None,
            s4u2proxy: None,
            groups_header: None,
            group_names: Some(crate::ad_groups::GroupNames::winbind()),
        }
    }
}

#[derive(Debug, Clone)]
enum Route {
    Proxy(Box<ReverseProxy>),
    Cgi(CgiService),
}

/// Sends each request to the mount with the longest matching prefix; `404` if none.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Arc<Vec<(String, Route)>>,
    /// The whoami page, answered before the mounts.
    whoami: Option<Arc<crate::whoami::WhoamiPage>>,
    /// Removed from requests in every client spelling, whatever the route.
    identity: Arc<IdentityHeaders>,
}

/// Refuses a mount prefix that no canonical request path could start with.
fn check_mount_prefix(prefix: &str) -> Result<(), String> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    match kerbside_proto::request_path::CanonicalPath::parse(trimmed) {
        Ok(canonical) if canonical.as_str() == trimmed => Ok(()),
        Ok(canonical) => Err(format!(
            "mount path {prefix:?} is not in canonical form (request paths are compared \
             after decoding, dot segments and // are resolved): write {canonical:?}"
        )),
        Err(e) => Err(format!("mount path {prefix:?} {e}")),
    }
}

impl Router {
    fn new(
        config: &GateConfig,
        identity: IdentityHeaders,
        signer: Option<&IdentitySigner>,
        metrics: &GateMetrics,
        delegation: Option<&Arc<crate::delegation::DelegationStore>>,
    ) -> Result<Self, crate::SetupError> {
        let mut routes = Vec::new();
        let spool = crate::cgi::SpoolBudget::new(config.spool_budget);
        for mount in &config.mounts {
            check_mount_prefix(&mount.prefix)?;
            let max_body = mount.max_body.unwrap_or(config.max_body);
            let route = match &mount.target {
                MountTarget::Proxy(upstream) => {
                    let proxy = ReverseProxy::new(upstream, identity.identity().clone())?
                        .with_identity_headers(identity.clone())
                        .with_limits(ProxyLimits {
                            upstream_timeout: mount
                                .upstream_timeout
                                .unwrap_or(config.upstream_timeout),
                            max_body,
                        })
                        .with_metrics(metrics.clone());
                    Route::Proxy(Box::new(match signer {
                        Some(s) => proxy.with_signer(s.clone()),
                        None => proxy,
                    }))
                }
                MountTarget::Cgi(cgi) => {
                    let mut cgi = cgi.clone();
                    cgi.max_body = max_body;
                    cgi.spool_budget = Some(spool.clone());
                    cgi.metrics = Some(metrics.clone());
                    cgi.delegation = delegation.cloned();
                    Route::Cgi(CgiService::new(cgi)?)
                }
                // Answered in front of the authentication layer (`ForwardAuthLayer`).
                MountTarget::ForwardAuth => continue,
            };
            routes.push((mount.prefix.clone(), route));
        }
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.trim_end_matches('/').len()));
        Ok(Self {
            routes: Arc::new(routes),
            whoami: config.whoami_path.as_ref().map(|path| {
                Arc::new(crate::whoami::WhoamiPage::new(
                    path.clone(),
                    config.forward_auth.user_map.clone(),
                    config.mode,
                ))
            }),
            identity: Arc::new(identity),
        })
    }
}

impl Service<Request<Incoming>> for Router {
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        self.identity.strip_client_spellings(request.headers_mut());
        if let Some(page) = self.whoami.as_ref().filter(|p| p.matches(&request)) {
            let response = page.answer(&request);
            return Box::pin(async move { Ok(response) });
        }
        let path = request.uri().path();
        let route = self
            .routes
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .map(|(_, r)| r.clone());
        Box::pin(async move {
            match route {
                Some(Route::Proxy(mut p)) => p.call(request).await,
                Some(Route::Cgi(mut c)) => c.call(request).await,
                None => {
                    let mut response = Response::new(GateBody::default());
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    Ok(response)
                }
            }
        })
    }
}

/// A gate bound to its listener, ready to [`serve`](Gate::serve).
pub struct Gate {
    listener: Listener,
    metrics_listener: Option<Listener>,
    tls: Option<TlsAcceptor>,
    binding: Option<Arc<Vec<u8>>>,
    layer: NegotiateLayer,
    forward_auth: ForwardAuthLayer<NegotiateService<Endpoint>>,
    router: Router,
    metrics: GateMetrics,
    header_timeout: Duration,
    proxy_protocol: Option<Arc<ProxyProtocol>>,
    health: HealthLayer,
    draining: Draining,
    shutdown_delay: Duration,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Loads the keytab, session keys and TLS material and binds the listeners.
    /// Every error is a sentence for the operator.
    pub async fn bind(config: &GateConfig) -> Result<Self, crate::SetupError> {
        let acceptor = if config.mode == AuthMode::None {
            None
        } else {
            startup_acceptor(config)?
        };
        let sessions = match (&config.session_key, config.mode) {
            (Some(path), _) => {
                let keys = SessionKeys::load_or_create(path)
                    .and_then(|k| k.with_previous(&config.previous_session_keys))
                    .map_err(|e| format!("session key: {e}"))?;
                Some(Arc::new(SessionCodec::new(keys)))
            }
            (None, AuthMode::Cookie) => {
                return Err("cookie mode needs a session key: pass --session-key FILE"
                    .to_owned()
                    .into())
            }
            (None, _) => None,
        };
        let (tls, binding) = match &config.tls {
            Some((cert, key)) => {
                let (server_config, leaf) = crate::tls::load_server_config_with_leaf(cert, key)?;
                let binding = kerbside_proto::channel_binding::tls_server_end_point(&leaf)
                    .map_err(|e| {
                        tracing::warn!("no channel bindings for this certificate: {e}");
                    })
                    .ok()
                    .map(Arc::new);
                (Some(TlsAcceptor::from(server_config)), binding)
            }
            None => (None, None),
        };
        if config.basic_users.is_some() && tls.is_none() {
            return Err(
                "Basic sends passwords: --basic-users needs TLS (--tls-cert/--tls-key)"
                    .to_owned()
                    .into(),
            );
        }
        let any_ntlm = config.ntlm_users.is_some() || config.ntlm_winbind.is_some();
        if any_ntlm && config.mode != AuthMode::Connection {
            return Err(
                "NTLM authenticates connections: --ntlm-users and --ntlm-winbind need --auth \
                 connection"
                    .to_owned()
                    .into(),
            );
        }
        let ntlm = match (&config.ntlm_users, &config.ntlm_winbind) {
            (Some(_), Some(_)) => {
                return Err(
                    "NTLM is checked either against --ntlm-users or by the domain \
                            controller (--ntlm-winbind), not both"
                        .to_owned()
                        .into(),
                )
            }
            (Some(path), None) => Some(crate::passwords::NtlmSettings::load(
                path,
                config.ntlm_in_negotiate,
            )?),
            (None, Some(winbind)) => {
                let ntlm = crate::ntlm_winbind::WinbindNtlm::discover(winbind.clone()).await?;
                let d = ntlm.domain();
                tracing::info!(
                    "NTLM is checked by the domain controller of {} ({}, realm {}) through winbindd",
                    d.netbios,
                    d.dns,
                    d.realm
                );
                Some(crate::passwords::NtlmSettings::winbind(
                    ntlm,
                    config.ntlm_in_negotiate,
                ))
            }
            (None, None) => None,
        };
        let digest = match &config.digest_users {
            Some((path, realm)) => Some(crate::passwords::DigestSettings::load(
                path,
                realm,
                config.digest_md5,
                config.digest_nonce_lifetime,
            )?),
            None => None,
        };
        let basic_users = match &config.basic_users {
            Some(path) => Some(crate::passwords::BasicUsers::load(path)?),
            None => None,
        };
        if config.basic_fallback.is_some() && tls.is_none() {
            return Err(
                "Basic fallback sends passwords: it needs TLS (--tls-cert/--tls-key)"
                    .to_owned()
                    .into(),
            );
        }
        if config.channel_binding == ChannelBindingPolicy::Required && tls.is_none() {
            return Err("channel-binding required needs TLS (--tls-cert/--tls-key)"
                .to_owned()
                .into());
        }
        let forward_auth_paths: Vec<String> = config
            .mounts
            .iter()
            .filter(|m| matches!(m.target, MountTarget::ForwardAuth))
            .map(|m| m.prefix.clone())
            .collect();
        if !forward_auth_paths.is_empty() {
            crate::forward_auth::check_mode(config.mode, any_ntlm)?;
        }
        let delegation = match &config.delegation_dir {
            Some(dir) => {
                let store = crate::delegation::DelegationStore::open(dir)?;
                tokio::spawn(store.clone().reaper());
                Some(store)
            }
            None if config.s4u2proxy.is_some() => {
                return Err(
                    "s4u2proxy needs delegation-dir: the credentials it makes are \
                            kept there for CGI programs"
                        .into(),
                )
            }
            None => None,
        };
        let metrics = GateMetrics::new();
        let draining = Draining::default();
        let layer = NegotiateLayer::with_config(NegotiateConfig {
            mode: config.mode,
            acceptor,
            acceptor_names: config.acceptor_names.clone(),
            replay_cache: config.replay_cache.clone(),
            sessions,
            // Behind a front proxy with TLS (its certificate given), the browser's
            // connection is HTTPS even if the gate's is not.
            secure_cookies: tls.is_some()
                || (!forward_auth_paths.is_empty() && config.forward_auth.front_binding.is_some()),
            access: Arc::new(config.access.clone()),
            channel_binding: config.channel_binding,
            max_handshakes: config.max_handshakes,
            metrics: Some(metrics.clone()),
            basic_fallback: config.basic_fallback.clone().map(|realm| BasicFallback {
                realm,
                service: config.acceptor.clone(),
                netbios_domain: config.netbios_domain.clone().or_else(|| {
                    kerbside_gssapi::krb5::Context::new()
                        .ok()
                        .and_then(|c| c.default_realm())
                        .and_then(|r| r.split('.').next().map(str::to_ascii_uppercase))
                        .filter(|label| !label.is_empty())
                }),
            }),
            ntlm,
            digest,
            basic_users,
            basic_realm: config
                .digest_users
                .as_ref()
                .map_or_else(|| "kerbside".to_owned(), |(_, realm)| realm.clone()),
            delegation: delegation.clone(),
            group_names: config.group_names.clone(),
            shared_replay: match &config.replay_cache_redis {
                Some(url) => {
                    let store = crate::redis_replay::RedisReplay::new(url, Some(metrics.clone()))
                        .map_err(|e| e.to_string())?;
                    let mut shared = crate::auth::SharedReplayConfig::new(Arc::new(store));
                    shared.when_unavailable = config.replay_cache_unavailable;
                    Some(shared)
                }
                None => None,
            },
        });
        let signer = match &config.identity_key {
            Some(path) => Some(IdentitySigner::load(path)?),
            None => None,
        };
        let identity =
            IdentityHeaders::new(config.identity_header.clone(), config.scheme_header.clone())
                .with_groups(config.groups_header.clone());
        let router = Router::new(
            config,
            identity,
            signer.as_ref(),
            &metrics,
            delegation.as_ref(),
        )?;
        let forward_auth = ForwardAuthLayer::with_metrics(
            forward_auth_paths,
            config.forward_auth.clone(),
            tower_layer::Layer::layer(
                &layer,
                Endpoint::new(
                    config.identity_header.clone(),
                    config.forward_auth.user_map.clone(),
                    config.access.groups().clone(),
                )
                .with_scheme_header(config.scheme_header.clone()),
            ),
            metrics.clone(),
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let listener = Listener::new(listener, "gate")
            .with_max_connections(config.max_connections)
            .with_metrics(metrics.clone());
        let metrics_listener = match config.metrics {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?,
            )
            .map(|l| Listener::new(l, "metrics").with_max_connections(METRICS_CONNECTIONS)),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            tls,
            binding,
            layer,
            forward_auth,
            router,
            metrics,
            header_timeout: config.header_timeout,
            proxy_protocol: config.proxy_protocol.clone().map(Arc::new),
            health: HealthLayer::new(config.health_path.as_deref(), draining.clone()),
            draining,
            shutdown_delay: config.shutdown_delay,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics address actually bound, if metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// True if the gate serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (up to
    /// 30 seconds).
    pub async fn serve(mut self, shutdown: impl Future<Output = ()>) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(MAX_HEADER_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .keep_alive_interval(Some(Duration::from_secs(60)));
        let builder = Arc::new(builder);
        // TLS connections that did not choose h2 by ALPN are HTTP/1.1: served without
        // the auto builder's HTTP/2 detection, whose 24-byte read before hyper's own
        // reads doubles each idle connection's read buffer (8 → 16 KiB).
        let mut http1 = hyper::server::conn::http1::Builder::new();
        // max_header_size too: max_buf_size alone is checked only while the head is
        // incomplete, so a bigger head that arrives in one read got through.
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_header_size(MAX_HEADER_BYTES);
        let http1 = Arc::new(http1);
        let drain = Drain::new();
        if let Some(listener) = self.metrics_listener {
            tokio::spawn(serve_metrics(listener, self.metrics.clone()));
        }
        tokio::pin!(shutdown);
        // Once told to stop: the health endpoint says so at once, and the gate keeps
        // taking connections for shutdown_delay, so balancers stop sending it clients
        // before it stops accepting.
        let mut stop_at: Option<tokio::time::Instant> = None;
        loop {
            let (tcp, remote, slot) = tokio::select! {
                a = self.listener.accept() => (a.stream, a.remote, a.slot),
                () = &mut shutdown, if stop_at.is_none() => {
                    self.draining.start();
                    if self.shutdown_delay.is_zero() {
                        break;
                    }
                    tracing::info!(
                        "draining: the health endpoint answers 503; serving for {:?} more",
                        self.shutdown_delay
                    );
                    stop_at = Some(tokio::time::Instant::now() + self.shutdown_delay);
                    continue;
                }
                () = sleep_until_or_forever(stop_at) => break,
            };
            let _ = tcp.set_nodelay(true);
            let connection = Connection {
                builder: builder.clone(),
                http1: http1.clone(),
                tls: self.tls.clone(),
                binding: self.binding.clone(),
                layer: self.layer.clone(),
                forward_auth: self.forward_auth.clone(),
                router: self.router.clone(),
                metrics: self.metrics.clone(),
                header_timeout: self.header_timeout,
                proxy_protocol: self.proxy_protocol.clone(),
                health: self.health.clone(),
            };
            let watcher = drain.watcher();
            let guard = self.metrics.connection();
            tokio::spawn(async move {
                let _guard = guard;
                let _slot = slot;
                connection.serve(tcp, remote, watcher).await;
            });
        }
        // Stop taking connections at once, so clients go elsewhere instead of waiting
        // in the backlog while requests in flight finish.
        drop(self.listener);
        tracing::info!("shutting down: finishing requests in flight");
        if tokio::time::timeout(Duration::from_secs(30), drain.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after 30 s; closing them");
        }
    }
}

/// Waits until `at`, or forever when there is no `at`.
async fn sleep_until_or_forever(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What one accepted connection needs from the gate, moved into its task.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// For TLS connections whose ALPN is not `h2`.
    http1: Arc<hyper::server::conn::http1::Builder>,
    tls: Option<TlsAcceptor>,
    binding: Option<Arc<Vec<u8>>>,
    layer: NegotiateLayer,
    forward_auth: ForwardAuthLayer<NegotiateService<Endpoint>>,
    router: Router,
    metrics: GateMetrics,
    header_timeout: Duration,
    proxy_protocol: Option<Arc<ProxyProtocol>>,
    health: HealthLayer,
}

impl Connection {
    /// Takes the client's address (from the PROXY protocol header when it is on), then
    /// TLS, then serves HTTP until the connection ends or the gate drains it.
    async fn serve(self, tcp: TcpStream, peer: SocketAddr, watcher: DrainWatcher) {
        let (stream, remote) = match &self.proxy_protocol {
            None => (Prefixed::new(tcp), peer),
            Some(settings) => {
                match crate::proxy_protocol::admit(settings, tcp, peer, self.header_timeout).await {
                    Ok(admitted) => (admitted.stream, admitted.remote),
                    Err(refusal) => {
                        tracing::warn!(%peer, "{refusal}");
                        self.metrics.proxy_protocol_refused();
                        return;
                    }
                }
            }
        };
        let info = ConnectionInfo {
            remote,
            tls: self.tls.is_some(),
        };
        let mut connection = PerConnection::new(remote);
        if let Some(binding) = &self.binding {
            connection = connection.with_tls_binding(binding.clone());
        }
        let service = ServiceBuilder::new()
            .map_result(reset_for_http11)
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(info);
                req
            })
            .layer(connection)
            .map_response(explain_refusal)
            .layer(CanonicalPathLayer::new(Some(self.metrics.clone())))
            .layer(self.health)
            .layer(self.forward_auth)
            .layer(self.layer)
            .service(self.router);
        let service = TowerToHyperService::new(service);
        match self.tls {
            Some(tls) => {
                let stream =
                    match tokio::time::timeout(self.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    };
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let conn = self
                        .builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.serve(conn, |c| c.graceful_shutdown()).await {
                        tracing::debug!(%remote, "connection ended: {e}");
                    }
                } else {
                    let conn = self
                        .http1
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    if let Err(e) = watcher.serve(conn, |c| c.graceful_shutdown()).await {
                        tracing::debug!(%remote, "connection ended: {e}");
                    }
                }
            }
            // Plain HTTP keeps the detection: clients may speak h2c with prior knowledge.
            None => {
                let conn = self
                    .builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.serve(conn, |c| c.graceful_shutdown()).await {
                    tracing::debug!(%remote, "connection ended: {e}");
                }
            }
        }
    }
}

/// The acceptor the gate serves with, or why it cannot serve: a gate whose keytab
/// holds no key for its service would answer every client `401`, so it does not
/// start. A configuration with password users files (NTLM, Digest, Basic) and no
/// keytab named (`--keytab`) starts without Kerberos, with a warning; a keytab
/// that was named must work.
pub fn startup_acceptor(
    config: &GateConfig,
) -> Result<Option<kerbside_gssapi::NegotiateAcceptor>, crate::SetupError> {
    if let Some(impersonator) = &config.s4u2proxy {
        return kerbside_gssapi::NegotiateAcceptor::with_constrained_delegation(
            &kerbside_gssapi::AcceptorConfig {
                keytab: config.keytab.clone(),
                acceptor_name: config.acceptor.clone(),
            },
            impersonator,
        )
        .map(Some)
        .map_err(|e| {
            format!(
                "s4u2proxy as {impersonator}: {e}; the keytab must hold the account's own \
                 key ({impersonator}) besides its service principals"
            )
            .into()
        });
    }
    match crate::keytab::usable_acceptor(config.keytab.as_deref(), config.acceptor.as_deref()) {
        Ok(acceptor) => Ok(Some(acceptor)),
        Err(e) => {
            let passwords = config.ntlm_users.is_some()
                || config.ntlm_winbind.is_some()
                || config.digest_users.is_some()
                || config.basic_users.is_some();
            if passwords && config.keytab.is_none() && config.basic_fallback.is_none() {
                tracing::warn!(
                    "Kerberos (Negotiate) is off: {}; only the password schemes are offered",
                    crate::keytab::keytab_problem(
                        config.keytab.as_deref(),
                        config.acceptor.as_deref(),
                        &e
                    )
                );
                Ok(None)
            } else {
                Err(crate::keytab::keytab_problem(
                    config.keytab.as_deref(),
                    config.acceptor.as_deref(),
                    &e,
                )
                .into())
            }
        }
    }
}

/// HTTP/2 requests that connection mode cannot serve reset their stream with
/// `HTTP_1_1_REQUIRED`, which browsers and curl act on.
fn reset_for_http11(
    result: Result<Response<GateBody>, Infallible>,
) -> Result<Response<GateBody>, BoxError> {
    http11_required_as_error(result)
}

/// Gives the gate's own empty 401 and 403 answers a short page, as Apache does, so a
/// person in a browser learns what happened (and browsers that wait for a body to
/// show do not hang).
fn explain_refusal(mut response: Response<GateBody>) -> Response<GateBody> {
    use http_body::Body;
    let text = match response.status() {
        StatusCode::UNAUTHORIZED => {
            "<!DOCTYPE html>\n<title>Sign-in required</title>\n<h1>Kerberos sign-in required</h1>\n<p>This site accepts Kerberos (Negotiate). Get a ticket with <code>kinit</code>, and make sure your browser trusts this site for Kerberos.</p>\n"
        }
        StatusCode::FORBIDDEN => {
            "<!DOCTYPE html>\n<title>Forbidden</title>\n<h1>Forbidden</h1>\n<p>You are signed in, but not allowed to do this.</p>\n"
        }
        StatusCode::REQUEST_TIMEOUT => {
            "<!DOCTYPE html>\n<title>Request timeout</title>\n<h1>Request timeout</h1>\n<p>The request body stopped arriving. Try again.</p>\n"
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "<!DOCTYPE html>\n<title>Request too large</title>\n<h1>Request body too large</h1>\n<p>The request body is larger than this site takes (max-body). Send less, or ask the site's operator to raise the limit.</p>\n"
        }
        StatusCode::BAD_GATEWAY => {
            "<!DOCTYPE html>\n<title>Bad gateway</title>\n<h1>Bad gateway</h1>\n<p>The service behind this gate failed to answer. Try again later; the gate's log says more.</p>\n"
        }
        StatusCode::GATEWAY_TIMEOUT => {
            "<!DOCTYPE html>\n<title>Gateway timeout</title>\n<h1>Gateway timeout</h1>\n<p>The service behind this gate did not answer in time. Try again later; the gate's log says more.</p>\n"
        }
        StatusCode::INSUFFICIENT_STORAGE => {
            "<!DOCTYPE html>\n<title>Busy</title>\n<h1>No room for the request body</h1>\n<p>The gate has no room to hold this request body now. Try again in a moment.</p>\n"
        }
        _ => return response,
    };
    if response.body().size_hint().exact() != Some(0) {
        return response;
    }
    *response.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Serves `GET /metrics` in the Prometheus text format.
async fn serve_metrics(mut listener: Listener, metrics: GateMetrics) {
    loop {
        let accepted = listener.accept().await;
        let (tcp, slot) = (accepted.stream, accepted.slot);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (StatusCode::OK, metrics.encode())
                    } else {
                        (StatusCode::NOT_FOUND, "see /metrics\n".to_owned())
                    };
                    let mut response =
                        Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(METRICS_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
