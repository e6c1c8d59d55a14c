//! [`Client`]: requests, and the handshakes they need, on connections that carry
//! their authentication.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{
    HeaderValue, AUTHORIZATION, COOKIE, EXPECT, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, WWW_AUTHENTICATE,
};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use kerbside_gssapi::{ClientCredentials, Delegation, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, MutualOutcome, NegotiateError, Progress, DEFAULT_MAX_LEGS,
};
use kerbside_proto::{
    parse_challenges, Challenge, MutualAuth, SchemeKind, SchemePolicy, TargetNameSettings,
    Transport,
};

use crate::body::{Replayable, RequestBody};
use crate::conn::{establish, is_http11_required, proxy_h1, tcp, Conn, Origin};
use crate::error::{Error, ErrorKind};
use crate::proxy::{ProxyAddr, ProxySettings};
use crate::schemes::{DigestState, Initiator, InitiatorError};
use crate::tls::{client_config, TlsSettings};
use kerbside_proto::scheme::digest::client::DigestSession;

/// When to send a Negotiate token without waiting for a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preemptive {
    /// After an earlier request of this client learned that the origin wants
    /// Negotiate (the default).
    #[default]
    Learned,
    /// Always, from the first request (`--negotiate-preemptive`).
    Always,
    /// Never: always wait for the 401.
    Never,
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Which schemes may be answered, and where credentials may go.
    pub schemes: SchemePolicy,
    /// How strictly to check the server's final token.
    pub mutual: MutualAuth,
    /// How the Kerberos service name is chosen.
    pub target: TargetNameSettings,
    /// Whether to forward the user's ticket-granting ticket.
    pub delegation: Delegation,
    /// Where the user's Kerberos credentials come from.
    pub credentials: ClientCredentials,
    /// Pass the TLS `tls-server-end-point` channel binding to GSSAPI on HTTPS.
    pub channel_binding: bool,
    /// When to skip the first 401.
    pub preemptive: Preemptive,
    /// How many tokens one exchange may send.
    pub max_legs: u32,
    /// How many 401 responses one request may meet before the client gives up.
    pub max_auth_rounds: u32,
    /// User names and passwords for NTLM, Digest and Basic.
    pub passwords: crate::keyring::CredentialSources,
    /// Answer Digest challenges that offer only MD5 (old servers).
    pub allow_digest_md5: bool,
    /// With no Kerberos ticket, answer `Negotiate` with NTLM inside SPNEGO (weaker
    /// than Kerberos, so off by default).
    pub ntlm_in_negotiate: bool,
}

impl Default for AuthSettings {
    /// Negotiate disabled (no scheme enabled): the 401 is returned as is.
    fn default() -> Self {
        Self {
            schemes: SchemePolicy::only(&[]),
            mutual: MutualAuth::Optional,
            target: TargetNameSettings::default(),
            delegation: Delegation::None,
            credentials: ClientCredentials::Default,
            channel_binding: true,
            preemptive: Preemptive::Learned,
            max_legs: DEFAULT_MAX_LEGS,
            max_auth_rounds: 4,
            passwords: crate::keyring::CredentialSources::default(),
            allow_digest_md5: false,
            ntlm_in_negotiate: false,
        }
    }
}

/// Everything a [`Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Certificate checking.
    pub tls: TlsSettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// Offer HTTP/2 by ALPN on TLS.
    pub http2: bool,
    /// Request bodies up to this size are kept in memory and sent again when a
    /// handshake needs it; larger ones are sent once, after `100 Continue`.
    pub replay_limit: usize,
    /// The most bytes of a 401 body read (and dropped) to keep a connection.
    pub max_challenge_body: usize,
    /// How long to wait for `100 Continue` before sending a large body anyway.
    pub continue_timeout: Duration,
    /// Forward proxies.
    pub proxy: ProxySettings,
    /// Keep cookies (session cookies of servers such as mod_auth_gssapi's
    /// `GssapiUseSessions`) in memory for the life of the client; never written to
    /// disk, `Secure` ones only sent over TLS.
    pub cookies: bool,
    /// The longest a new connection may take: name lookup, TCP connect, a proxy's
    /// `CONNECT` (and its authentication) and the TLS handshake. `None` waits for
    /// ever; the default is [`DEFAULT_CONNECT_TIMEOUT`] (curl's `--connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// The longest [`Client::send`] may take: connections, every authentication
    /// leg and the final response's head. The response body is read by the caller,
    /// who bounds that (as `kerbside fetch -m` does). `None` (the default) sets no
    /// deadline beyond the connect timeout (curl's `--max-time`).
    pub timeout: Option<Duration>,
}

/// The connect timeout of [`ClientConfig::default`]: 30 seconds (curl's is 300).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tls: TlsSettings::default(),
            auth: AuthSettings::default(),
            http2: true,
            replay_limit: 1024 * 1024,
            max_challenge_body: 1024 * 1024,
            continue_timeout: Duration::from_secs(1),
            proxy: ProxySettings::default(),
            cookies: true,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            timeout: None,
        }
    }
}

/// Something that happened while sending a request, for verbose output. Header
/// values in events are already redacted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A connection is being made.
    Connecting {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Whether TLS is used.
        tls: bool,
    },
    /// A new connection is up (after the TLS handshake, if any).
    Connected {
        /// The client's number for the connection.
        conn: u64,
        /// The peer's address.
        peer: String,
        /// `HTTP/1.1` or `HTTP/2`.
        protocol: &'static str,
    },
    /// A pooled connection is used again.
    Reusing {
        /// The connection's number.
        conn: u64,
        /// Whether it carries a completed handshake.
        authenticated: bool,
    },
    /// A request leg is sent.
    Request {
        /// The connection's number.
        conn: u64,
        /// Request line, e.g. `GET /x HTTP/1.1`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// A response arrived.
    Response {
        /// The connection's number.
        conn: u64,
        /// Status line, e.g. `HTTP/1.1 401 Unauthorized`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// The client will authenticate.
    Scheme {
        /// True when authenticating to a proxy (`407`, `Proxy-Authorization`).
        proxy: bool,
        /// The scheme, e.g. `Negotiate`.
        scheme: String,
        /// Why that scheme.
        scheme_reason: String,
        /// The Kerberos target name.
        target: String,
        /// Why that name.
        target_reason: String,
        /// Whether the channel binding of the TLS connection is passed.
        channel_binding: bool,
    },
    /// The exchange finished.
    Authenticated {
        /// True for a proxy exchange.
        proxy: bool,
        /// The scheme, e.g. `NTLM`.
        scheme: String,
        /// What became of mutual authentication.
        mutual: MutualOutcome,
        /// How many tokens were sent.
        legs: u32,
        /// Whether the server keeps the authentication with the connection.
        connection_bound: bool,
    },
    /// The request goes through a proxy.
    Proxy {
        /// The proxy's host.
        host: String,
        /// The proxy's port.
        port: u16,
        /// True for a `CONNECT` tunnel (an `https://` origin).
        tunnel: bool,
    },
    /// A decision the user may want to know about (a scheme skipped, a token held
    /// back), in words.
    Notice {
        /// What the client did and why.
        message: String,
    },
    /// The client starts over, once, on a new connection.
    Retrying {
        /// Why.
        reason: String,
    },
}

/// Receives [`Event`]s.
pub trait Observer: Send + Sync {
    /// Called for each event, in order.
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Observer for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}

/// How a request ended, in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The scheme the request authenticated with, when it did on this request.
    pub scheme: Option<SchemeKind>,
    /// `Some` when a Kerberos Negotiate exchange ran: what became of mutual
    /// authentication.
    pub negotiate: Option<MutualOutcome>,
    /// The connection the final response came on.
    pub connection: u64,
    /// How many 401 responses the request met.
    pub challenges: u32,
}

/// What the client learned about an origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    /// Not known yet whether authentication stays with the connection.
    #[default]
    Unknown,
    /// Every request needs a token (Apache's default).
    PerRequest,
    /// The connection stays authenticated (IIS, `GssapiConnectionBound`).
    ConnectionBound,
}

#[derive(Debug, Clone, Default)]
struct OriginState {
    wants_negotiate: bool,
    mode: Mode,
    h1_only: bool,
    /// The Digest login the server took, used again with the next nonce count.
    digest: Option<Arc<DigestState>>,
    /// The server took Basic credentials: send them with every request.
    basic: bool,
}

type PoolKey = (Origin, String, Option<ProxyAddr>);

#[derive(Default)]
struct Shared {
    pool: Mutex<HashMap<PoolKey, Vec<Conn>>>,
    next_id: AtomicU64,
    /// What forks of a client share: the same user's cookies and what was learned
    /// about origins.
    common: Arc<Common>,
}

#[derive(Default)]
struct Common {
    origins: Mutex<HashMap<Origin, OriginState>>,
    cookies: Mutex<cookie_store::CookieStore>,
}

/// An HTTP client that authenticates with Kerberos (Negotiate).
///
/// Each handshake runs on one connection with a fresh GSSAPI context; connections
/// that authenticated are pooled per origin and identity and used again; origins
/// known to want Negotiate get a token without a 401 first.
///
/// ```no_run
/// use kerbside_client::{AuthSettings, Client, ClientConfig};
/// use kerbside_proto::{SchemeKind, SchemePolicy};
///
/// # async fn run() -> Result<(), kerbside_client::Error> {
/// let client = Client::new(ClientConfig {
///     auth: AuthSettings {
///         schemes: SchemePolicy::only(&[SchemeKind::Negotiate]),
///         ..AuthSettings::default()
///     },
///     ..ClientConfig::default()
/// })?;
/// let request = http::Request::get("https://intranet.example.test/")
///     .body(Default::default())
///     .expect("a valid request");
/// let response = client.send(request, &|_: &kerbside_client::Event| {}).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    tls_any: Arc<rustls::ClientConfig>,
    tls_h1: Arc<rustls::ClientConfig>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why an attempt ended without a response.
enum Failure {
    /// The connection went away in the middle of a handshake (or a reused one was
    /// stale): worth one more try on a fresh connection.
    Restart(Error),
    /// The server wants HTTP/1.1 for this.
    Http11Required,
    /// Give up.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

struct Leg {
    response: Response<Incoming>,
    /// A streamed body was taken back unsent: the connection cannot be used again.
    withheld: bool,
}

struct Parts {
    method: http::Method,
    uri: Uri,
    headers: http::HeaderMap,
}

impl Client {
    /// Builds a client; fails if the TLS settings cannot be used (a bad CA file).
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let any: &[&[u8]] = if config.http2 {
            &[b"h2", b"http/1.1"]
        } else {
            &[b"http/1.1"]
        };
        Ok(Self {
            tls_any: client_config(&config.tls, any)?,
            tls_h1: client_config(&config.tls, &[b"http/1.1"])?,
            config: Arc::new(config),
            shared: Arc::new(Shared::default()),
        })
    }

    /// A client with the same configuration, TLS setup, cookies and knowledge of
    /// origins, but its own connections: for a proxy that must never share an
    /// authenticated upstream connection between two of its own clients.
    pub fn fork(&self) -> Client {
        Client {
            config: self.config.clone(),
            tls_any: self.tls_any.clone(),
            tls_h1: self.tls_h1.clone(),
            shared: Arc::new(Shared {
                pool: Mutex::default(),
                next_id: AtomicU64::new(0),
                common: self.shared.common.clone(),
            }),
        }
    }

    fn origin_state(&self, origin: &Origin) -> OriginState {
        self.shared
            .common
            .origins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(origin)
            .cloned()
            .unwrap_or_default()
    }

    fn learn(&self, origin: &Origin, f: impl FnOnce(&mut OriginState)) {
        let mut origins = self
            .shared
            .common
            .origins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(origins.entry(origin.clone()).or_default());
    }

    fn key(&self, origin: &Origin) -> PoolKey {
        (
            origin.clone(),
            self.config.auth.credentials.identity_key(),
            self.config.proxy.route(origin),
        )
    }

    /// A pooled connection, preferring authenticated ones when asked.
    fn checkout(&self, key: &PoolKey, prefer_authenticated: bool, h1_only: bool) -> Option<Conn> {
        let mut pool = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conns = pool.get_mut(key)?;
        conns.retain(|c| !c.is_closed());
        let usable = |c: &Conn| c.is_ready() && !(h1_only && c.is_h2());
        let index = conns
            .iter()
            .position(|c| usable(c) && c.authenticated == prefer_authenticated)
            .or_else(|| conns.iter().position(usable))?;
        if let crate::conn::Sender::H2(sender) = &conns[index].sender {
            // HTTP/2 connections are shared: hand out a clone, keep the original.
            let c = &conns[index];
            return Some(Conn {
                id: c.id,
                sender: crate::conn::Sender::H2(sender.clone()),
                channel_binding: c.channel_binding.clone(),
                authenticated: false,
                via_proxy: c.via_proxy,
            });
        }
        Some(conns.swap_remove(index))
    }

    fn checkin(&self, key: PoolKey, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        let mut pool = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conns = pool.entry(key).or_default();
        if conns.iter().any(|c| c.id == conn.id) {
            return; // an HTTP/2 clone
        }
        conns.push(conn);
    }

    /// A new connection to `origin` (through its proxy, if any), within the
    /// connect timeout.
    async fn new_conn(
        &self,
        origin: &Origin,
        h1_only: bool,
        observer: &dyn Observer,
    ) -> Result<Conn, Failure> {
        let route = self.config.proxy.route(origin);
        let (host, port) = match &route {
            Some(p) => (p.host.clone(), p.port),
            None => (origin.host.clone(), origin.port),
        };
        observer.event(&Event::Connecting {
            host: host.clone(),
            port,
            tls: origin.tls && route.is_none(),
        });
        let via_proxy = route.is_some();
        let connect = self.connect(origin, h1_only, route, host.clone(), port, observer);
        let Some(limit) = self.config.connect_timeout else {
            return connect.await;
        };
        match tokio::time::timeout(limit, connect).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Fatal(Error::new(
                ErrorKind::Timeout,
                format!(
                    "connecting to {host}:{port} timed out after {} (TCP{}{}): the server or \
                     the network does not answer; --connect-timeout sets the limit",
                    seconds(limit),
                    if via_proxy {
                        ", the proxy's CONNECT"
                    } else {
                        ""
                    },
                    if origin.tls { ", TLS handshake" } else { "" },
                ),
            ))),
        }
    }

    async fn connect(
        &self,
        origin: &Origin,
        h1_only: bool,
        route: Option<ProxyAddr>,
        host: String,
        port: u16,
        observer: &dyn Observer,
    ) -> Result<Conn, Failure> {
        let tls = if h1_only { &self.tls_h1 } else { &self.tls_any };
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (stream, peer) = tcp(&host, port).await?;
        let conn = match route {
            None => establish(stream, origin, tls, &self.config.tls, id).await?,
            Some(_) if !origin.tls => {
                observer.event(&Event::Proxy {
                    host,
                    port,
                    tunnel: false,
                });
                let mut conn = establish(stream, origin, tls, &self.config.tls, id).await?;
                conn.via_proxy = true;
                conn
            }
            Some(proxy) => {
                observer.event(&Event::Proxy {
                    host,
                    port,
                    tunnel: true,
                });
                let tunnel = self.tunnel(stream, &proxy, origin, observer).await?;
                establish(
                    hyper_util::rt::TokioIo::new(tunnel),
                    origin,
                    tls,
                    &self.config.tls,
                    id,
                )
                .await?
            }
        };
        observer.event(&Event::Connected {
            conn: id,
            peer,
            protocol: conn.protocol(),
        });
        Ok(conn)
    }

    /// Opens a `CONNECT` tunnel to `origin` through `proxy`, authenticating to the
    /// proxy (407) on the same connection.
    async fn tunnel(
        &self,
        stream: tokio::net::TcpStream,
        proxy: &ProxyAddr,
        origin: &Origin,
        observer: &dyn Observer,
    ) -> Result<hyper::upgrade::Upgraded, Failure> {
        let mut sender = proxy_h1(stream).await?;
        let mut auth = ProxyAuth::new(proxy.clone());
        let authority = format!("{}:{}", origin.authority_host(), origin.port);
        let mut reconnected = false;
        loop {
            let mut request = Request::builder()
                .method(http::Method::CONNECT)
                .uri(authority.as_str())
                .header(HOST, authority.as_str())
                .body(crate::body::empty())
                .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, "bad CONNECT", e))?;
            if let Some(h) = auth.header() {
                request.headers_mut().insert(
                    PROXY_AUTHORIZATION,
                    HeaderValue::from_str(h)
                        .map_err(|e| Error::with_source(ErrorKind::Auth, "bad token", e))?,
                );
            }
            observer.event(&Event::Request {
                conn: 0,
                line: format!("CONNECT {authority} HTTP/1.1"),
                headers: redacted(request.headers()),
            });
            sender.ready().await.map_err(|e| {
                Error::with_source(
                    ErrorKind::Http,
                    format!("the proxy closed the connection: {e}"),
                    e,
                )
            })?;
            let response = sender.send_request(request).await.map_err(|e| {
                Error::with_source(
                    ErrorKind::Http,
                    format!(
                        "the proxy {}:{} did not answer CONNECT: {e}",
                        proxy.host, proxy.port
                    ),
                    e,
                )
            })?;
            observer.event(&Event::Response {
                conn: 0,
                line: format!("{:?} {}", response.version(), response.status()),
                headers: redacted(response.headers()),
            });
            let status = response.status();
            match auth
                .on_response(self, status, response.headers(), observer)
                .await?
            {
                ProxyStep::Retry => {
                    drain(response, self.config.max_challenge_body).await?;
                    if sender.is_closed() {
                        if reconnected {
                            return Err(Failure::Fatal(Error::new(
                                ErrorKind::Auth,
                                format!(
                                    "the proxy {}:{} closed the connection in the middle of its \
                                     Negotiate exchange, twice",
                                    proxy.host, proxy.port
                                ),
                            )));
                        }
                        reconnected = true;
                        let (stream, _) = tcp(&proxy.host, proxy.port).await?;
                        sender = proxy_h1(stream).await?;
                    }
                }
                ProxyStep::Done if status.is_success() => {
                    return hyper::upgrade::on(response).await.map_err(|e| {
                        Failure::Fatal(Error::with_source(
                            ErrorKind::Http,
                            format!("the proxy accepted CONNECT but the tunnel failed: {e}"),
                            e,
                        ))
                    });
                }
                ProxyStep::Done => {
                    return Err(Failure::Fatal(Error::new(
                        ErrorKind::Http,
                        format!(
                            "the proxy {}:{} refused to open a tunnel to {authority}: {status}",
                            proxy.host, proxy.port
                        ),
                    )));
                }
            }
        }
    }

    fn transport(&self, origin: &Origin) -> Transport {
        if !origin.tls {
            Transport::Plain
        } else if self.config.tls.insecure {
            Transport::InsecureTls
        } else {
            Transport::Tls
        }
    }

    /// Sends a request and returns the final response, authenticating on the same
    /// connection when the server asks and the settings allow.
    ///
    /// The URI must be absolute. The response carries an [`Outcome`].
    pub async fn send(
        &self,
        request: Request<RequestBody>,
        observer: &dyn Observer,
    ) -> Result<Response<Incoming>, Error> {
        let Some(limit) = self.config.timeout else {
            return self.send_untimed(request, observer).await;
        };
        let target = request
            .uri()
            .authority()
            .map_or_else(|| request.uri().to_string(), |a| a.to_string());
        match tokio::time::timeout(limit, self.send_untimed(request, observer)).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the request to {target} timed out after {} without a complete response \
                     (-m/--max-time sets the limit)",
                    seconds(limit)
                ),
            )),
        }
    }

    async fn send_untimed(
        &self,
        request: Request<RequestBody>,
        observer: &dyn Observer,
    ) -> Result<Response<Incoming>, Error> {
        let (parts, body) = request.into_parts();
        let origin = Origin::of(&parts.uri)?;
        let mut body = Replayable::new(body, self.config.replay_limit)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Body,
                    format!("cannot read the request body: {e}"),
                )
            })?;
        let parts = Parts {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
        };
        let mut restarted = false;
        let mut h1_retry = false;
        // This request met a 401 asking for Negotiate: a fresh attempt may send its
        // token at once, even over plain HTTP.
        let mut asked = false;
        loop {
            match self
                .attempt(&origin, &parts, &mut body, observer, restarted, &mut asked)
                .await
            {
                Ok(response) => return Ok(response),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Restart(e)) => {
                    if restarted {
                        return Err(e);
                    }
                    restarted = true;
                    observer.event(&Event::Retrying {
                        reason: e.to_string(),
                    });
                }
                Err(Failure::Http11Required) => {
                    if h1_retry {
                        return Err(Error::new(
                            ErrorKind::Http,
                            "the server answered HTTP_1_1_REQUIRED even over HTTP/1.1",
                        ));
                    }
                    h1_retry = true;
                    self.learn(&origin, |s| s.h1_only = true);
                    observer.event(&Event::Retrying {
                        reason: "the server requires HTTP/1.1 for this request (HTTP_1_1_REQUIRED)"
                            .to_owned(),
                    });
                }
            }
        }
    }

    async fn attempt(
        &self,
        origin: &Origin,
        parts: &Parts,
        body: &mut Replayable,
        observer: &dyn Observer,
        fresh: bool,
        asked: &mut bool,
    ) -> Result<Response<Incoming>, Failure> {
        let settings = &self.config.auth;
        let negotiate = settings.schemes.allows(SchemeKind::Negotiate);
        let known = self.origin_state(origin);
        let key = self.key(origin);
        let pooled = if fresh {
            None
        } else {
            self.checkout(&key, known.mode != Mode::PerRequest, known.h1_only)
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => {
                observer.event(&Event::Reusing {
                    conn: c.id,
                    authenticated: c.authenticated,
                });
                c
            }
            None => self.new_conn(origin, known.h1_only, observer).await?,
        };
        let mut proxy_auth = self.config.proxy.route(origin).map(ProxyAuth::new);
        let transport = self.transport(origin);
        let bound = conn.authenticated && known.mode != Mode::PerRequest;
        // A session cookie for this URL may stand for the handshake: try it first
        // (a 401 still leads to the exchange).
        let has_cookie = self.config.cookies && self.cookie_header(&parts.uri).is_some();
        let wants_preempt = negotiate
            && !bound
            && match settings.preemptive {
                Preemptive::Always => true,
                Preemptive::Learned => known.wants_negotiate && !has_cookie,
                Preemptive::Never => false,
            };
        // Over plain HTTP the first request goes without credentials, whatever the
        // options: the 401 decides (a 401 to this very request did).
        let unasked = transport.allows_unasked_credentials() || *asked;
        let preempt = wants_preempt && unasked;
        if wants_preempt && !unasked {
            observer.event(&Event::Notice {
                message: "no Negotiate token before a 401 over plain http://: the server's \
                          401 decides"
                    .to_owned(),
            });
        }
        let mut exchange = None;
        let mut authorization = None;
        if preempt {
            let reason = if settings.preemptive == Preemptive::Always {
                "sent without waiting for a 401 (--negotiate-preemptive)"
            } else {
                "sent without waiting for a 401: an earlier request learned the server wants it"
            };
            match self
                .start_negotiate(origin, &conn, None, reason.to_owned(), observer)
                .await
            {
                Ok((credentials, next)) => {
                    exchange = Some(Exchange::Token(next));
                    authorization = Some(credentials);
                }
                // No token can be made, and nothing was sent: the 401 decides,
                // perhaps for another scheme.
                Err(Failure::Fatal(e)) if e.kerberos_unavailable() => {
                    observer.event(&Event::Notice {
                        message: format!("no Negotiate token before the 401: {e}"),
                    });
                }
                Err(f) => return Err(f),
            }
        } else if !bound && !has_cookie && unasked {
            // Digest and Basic need no handshake once the server took them: the
            // next request carries them at once (Digest with the next nonce count).
            if let Some((credentials, next)) =
                self.preemptive_password(origin, &known, parts, body.bytes(), transport, observer)?
            {
                exchange = Some(next);
                authorization = Some(credentials);
            }
        }
        let mut challenges_seen = 0;
        let mut sent_tokens = u32::from(authorization.is_some());
        let mut failed: Option<SchemeKind> = None;
        loop {
            let proxy_header = proxy_auth
                .as_ref()
                .and_then(|p| p.header().map(str::to_owned));
            let leg = match self
                .leg(
                    &mut conn,
                    origin,
                    parts,
                    body,
                    authorization.as_deref(),
                    proxy_header.as_deref(),
                    observer,
                )
                .await
            {
                Ok(leg) => leg,
                Err(e) => {
                    let mid_handshake = matches!(exchange, Some(Exchange::Token(_)));
                    return Err(match e {
                        LegError::Http11Required => Failure::Http11Required,
                        LegError::Fatal(e) => Failure::Fatal(e),
                        // A reused connection may have been closed by the server while
                        // idle, and one in the middle of a handshake must not be.
                        LegError::Send(e) if (reused || mid_handshake) && body.is_replayable() => {
                            Failure::Restart(e)
                        }
                        LegError::Send(e) => Failure::Fatal(e),
                    });
                }
            };
            let response = leg.response;
            let status = response.status();
            if conn.via_proxy {
                if let Some(pa) = proxy_auth.as_mut() {
                    if let ProxyStep::Retry = pa
                        .on_response(self, status, response.headers(), observer)
                        .await?
                    {
                        drain(response, self.config.max_challenge_body).await?;
                        if leg.withheld || conn.is_closed() {
                            conn = self.new_conn(origin, known.h1_only, observer).await?;
                        }
                        continue;
                    }
                }
            }
            let challenges = read_challenges(&response)?;
            if status == StatusCode::UNAUTHORIZED {
                challenges_seen += 1;
                if challenges.iter().any(|c| c.scheme.is("Negotiate")) {
                    self.learn(origin, |s| s.wants_negotiate = true);
                    *asked = true;
                }
            }
            match exchange.take() {
                None => {}
                Some(Exchange::Token(state)) => {
                    let kind = if state.scheme().is("NTLM") {
                        SchemeKind::Ntlm
                    } else {
                        SchemeKind::Negotiate
                    };
                    let ntlm_inside = matches!(state.mechanism(), Initiator::SpnegoNtlm(_));
                    let code = status.as_u16();
                    let offered = challenges.clone();
                    let progress =
                        blocking(move || ExpectFinalToken::handle_response(state, code, &offered))
                            .await?;
                    match progress {
                        Ok(Progress::Continue(credentials, next)) => {
                            if conn.is_h2() {
                                // Connection-based exchanges need HTTP/1.1.
                                self.learn(origin, |s| s.h1_only = true);
                                return Err(Failure::Restart(Error::new(
                                    ErrorKind::Auth,
                                    format!(
                                        "the {kind} exchange needs more than one leg, which only \
                                         HTTP/1.1 can carry"
                                    ),
                                )));
                            }
                            self.too_many(challenges_seen)?;
                            drain(response, self.config.max_challenge_body).await?;
                            if leg.withheld || conn.is_closed() {
                                return Err(Failure::Restart(closed_mid_handshake(origin, kind)));
                            }
                            authorization = Some(credentials.to_header_value());
                            exchange = Some(Exchange::Token(next));
                            sent_tokens += 1;
                            continue;
                        }
                        Ok(Progress::Established(done)) => {
                            let persistent = persistent_auth(&response);
                            // NTLM authenticates the connection (MS-NTHT); Kerberos
                            // only where the server says so or was seen to.
                            let connection_bound = !conn.is_h2()
                                && (persistent == Some(true)
                                    || known.mode == Mode::ConnectionBound
                                    || kind == SchemeKind::Ntlm
                                    || ntlm_inside);
                            self.learn(origin, |s| {
                                if kind == SchemeKind::Negotiate {
                                    s.wants_negotiate = true;
                                }
                                match persistent {
                                    Some(true) if !conn.is_h2() => s.mode = Mode::ConnectionBound,
                                    Some(false) => s.mode = Mode::PerRequest,
                                    _ => {}
                                }
                            });
                            conn.authenticated = !conn.is_h2();
                            observer.event(&Event::Authenticated {
                                proxy: false,
                                scheme: kind.name().to_owned(),
                                mutual: done.mutual(),
                                legs: sent_tokens,
                                connection_bound,
                            });
                            let id = conn.id;
                            self.checkin(key, conn);
                            let mutual = (kind == SchemeKind::Negotiate && !ntlm_inside)
                                .then(|| done.mutual());
                            return Ok(finish(response, Some(kind), mutual, id, challenges_seen));
                        }
                        Err(NegotiateError::Rejected)
                            if preempt && sent_tokens == 1 && challenges_seen == 1 =>
                        {
                            // The preemptive token was not wanted (a new server, a
                            // stale belief): answer the challenge in the ordinary way.
                            self.learn(origin, |s| s.wants_negotiate = false);
                            drain(response, self.config.max_challenge_body).await?;
                            return Err(Failure::Restart(Error::new(
                                ErrorKind::Auth,
                                "the server refused a token sent without a 401; starting over",
                            )));
                        }
                        Err(NegotiateError::Rejected) => {
                            let weaker = self.weaker_on_offer(kind, &challenges);
                            if weaker.is_none() || !settings.schemes.allow_downgrade {
                                return Err(Failure::Fatal(self.rejected(
                                    kind,
                                    conn.channel_binding.is_some(),
                                    weaker,
                                )));
                            }
                            failed = Some(kind);
                            conn.authenticated = false;
                        }
                        Err(e) => return Err(Failure::Fatal(auth_error(e))),
                    }
                }
                Some(Exchange::Password {
                    kind,
                    digest,
                    signed,
                    preemptive,
                    stale_retried,
                }) => {
                    if status != StatusCode::UNAUTHORIZED {
                        if let Some(session) = &digest {
                            if let Some(mut signed) = signed {
                                check_rspauth(&mut signed, &response)?;
                            }
                            let shared = session.clone();
                            self.learn(origin, |s| s.digest = Some(shared));
                        } else {
                            self.learn(origin, |s| s.basic = true);
                        }
                        observer.event(&Event::Authenticated {
                            proxy: false,
                            scheme: kind.name().to_owned(),
                            mutual: MutualOutcome::NotChecked,
                            legs: sent_tokens,
                            connection_bound: false,
                        });
                        let id = conn.id;
                        if !leg.withheld || conn.is_h2() {
                            self.checkin(key, conn);
                        }
                        return Ok(finish(response, Some(kind), None, id, challenges_seen));
                    }
                    if let (Some(session), false) = (&digest, stale_retried) {
                        let kept = body.bytes().cloned();
                        if let Some((header, signed)) =
                            self.digest_stale_retry(session, &challenges, parts, kept.as_ref())?
                        {
                            // stale=true: the password was right, the nonce old.
                            drain(response, self.config.max_challenge_body).await?;
                            if leg.withheld && !conn.is_h2() || conn.is_closed() {
                                conn = self.new_conn(origin, known.h1_only, observer).await?;
                            }
                            observer.event(&Event::Retrying {
                                reason: "the server says the Digest nonce is stale; answering its new one"
                                    .to_owned(),
                            });
                            authorization = Some(header);
                            exchange = Some(Exchange::Password {
                                kind,
                                digest,
                                signed: Some(signed),
                                preemptive,
                                stale_retried: true,
                            });
                            sent_tokens += 1;
                            continue;
                        }
                    }
                    if preemptive {
                        // What the server took before it refuses now (a restart, a
                        // new password file): forget it and answer the challenge.
                        self.learn(origin, |s| {
                            s.digest = None;
                            s.basic = false;
                        });
                    } else {
                        let weaker = self.weaker_on_offer(kind, &challenges);
                        if weaker.is_none() || !settings.schemes.allow_downgrade {
                            return Err(Failure::Fatal(self.rejected(kind, false, weaker)));
                        }
                        failed = Some(kind);
                    }
                }
            }
            if status != StatusCode::UNAUTHORIZED {
                if bound && known.mode == Mode::Unknown {
                    // A request without a token succeeded on an authenticated
                    // connection: the server keeps authentication with it.
                    self.learn(origin, |s| s.mode = Mode::ConnectionBound);
                }
                let id = conn.id;
                if !leg.withheld || conn.is_h2() {
                    self.checkin(key, conn);
                }
                return Ok(finish(response, None, None, id, challenges_seen));
            }
            if bound {
                // The server wants a token on every request after all.
                self.learn(origin, |s| s.mode = Mode::PerRequest);
                conn.authenticated = false;
            }
            if settings.schemes.enabled.is_empty() {
                // No authentication asked for: the 401 is the answer.
                let id = conn.id;
                return Ok(finish(response, None, None, id, challenges_seen));
            }
            self.too_many(challenges_seen)?;
            let mut unavailable = self.unavailable(origin, &challenges);
            let (credentials, next) = loop {
                let chosen = settings
                    .schemes
                    .choose_among(&challenges, failed, &origin.host, transport, &unavailable)
                    .map_err(|e| {
                        let kind = match e {
                            kerbside_proto::SchemeRefusal::Transport(_) => ErrorKind::Policy,
                            _ => ErrorKind::Auth,
                        };
                        Error::with_source(kind, e.to_string(), e)
                    })?;
                let (kind, reason) = (chosen.kind, chosen.reason.clone());
                if kind == SchemeKind::Ntlm && conn.is_h2() {
                    // A connection-based exchange cannot run on HTTP/2.
                    self.learn(origin, |s| s.h1_only = true);
                    return Err(Failure::Restart(Error::new(
                        ErrorKind::Auth,
                        format!("{kind} needs an HTTP/1.1 connection"),
                    )));
                }
                let kept = body.bytes().cloned();
                match self
                    .start_scheme(
                        kind,
                        reason,
                        origin,
                        &conn,
                        &challenges,
                        parts,
                        kept.as_ref(),
                        observer,
                    )
                    .await
                {
                    Ok(started) => break started,
                    Err(StartError::Unavailable(why)) => unavailable.push((kind, why)),
                    Err(StartError::Failure(f)) => return Err(f),
                }
            };
            drain(response, self.config.max_challenge_body).await?;
            if leg.withheld && !conn.is_h2() {
                // The large body was kept back, which leaves an HTTP/1.1 connection
                // unusable; the token goes with it on a new one (Kerberos needs no
                // state from the 401, and NTLM starts with its first message). On
                // HTTP/2 only the stream was lost.
                conn = self.new_conn(origin, known.h1_only, observer).await?;
            } else if conn.is_closed() {
                if matches!(next, Exchange::Token(_)) {
                    return Err(Failure::Restart(closed_mid_handshake(
                        origin,
                        failed.unwrap_or(SchemeKind::Negotiate),
                    )));
                }
                conn = self.new_conn(origin, known.h1_only, observer).await?;
            }
            authorization = Some(credentials);
            exchange = Some(next);
            sent_tokens += 1;
        }
    }

    /// The schemes on offer that this client cannot answer, and why: no password for
    /// the host (NTLM, Digest, Basic), or a Digest offer with MD5 only.
    fn unavailable(&self, origin: &Origin, challenges: &[Challenge]) -> Vec<(SchemeKind, String)> {
        let settings = &self.config.auth;
        let mut out = Vec::new();
        for kind in [SchemeKind::Ntlm, SchemeKind::Digest, SchemeKind::Basic] {
            if settings.schemes.allows(kind)
                && settings
                    .passwords
                    .lookup(&origin.host, None, kind)
                    .is_none()
            {
                out.push((
                    kind,
                    format!(
                        "no user name and password for {}: give -u USER:PASSWORD (DOMAIN\\USER \
                         for NTLM), or put them in the keyring file",
                        origin.host
                    ),
                ));
            }
        }
        if settings.schemes.allows(SchemeKind::Digest)
            && !out.iter().any(|(k, _)| *k == SchemeKind::Digest)
        {
            if let Err(why) = crate::schemes::digest_usable(challenges, settings.allow_digest_md5) {
                out.push((SchemeKind::Digest, why));
            }
        }
        out
    }

    /// The enabled schemes weaker than `kind` that the server also offers, if any.
    fn weaker_on_offer(&self, kind: SchemeKind, challenges: &[Challenge]) -> Option<String> {
        let weaker: Vec<&str> = SchemeKind::ALL
            .into_iter()
            .filter(|k| *k > kind && self.config.auth.schemes.allows(*k))
            .filter(|k| challenges.iter().any(|c| c.scheme.is(k.name())))
            .map(SchemeKind::name)
            .collect();
        (!weaker.is_empty()).then(|| weaker.join(", "))
    }

    /// The error for credentials the server refused.
    fn rejected(&self, kind: SchemeKind, channel_bound: bool, weaker: Option<String>) -> Error {
        let settings = &self.config.auth;
        let mut message = match kind {
            SchemeKind::Negotiate => NegotiateError::<InitiatorError>::Rejected.to_string(),
            SchemeKind::Ntlm => "the server refused the NTLM credentials (401 after the \
                                 AUTHENTICATE message): wrong user name, domain or password"
                .to_owned(),
            SchemeKind::Digest => "the server refused the Digest credentials: wrong user name \
                                   or password for its realm"
                .to_owned(),
            SchemeKind::Basic => "the server refused the Basic credentials: wrong user name or \
                                  password"
                .to_owned(),
        };
        if kind <= SchemeKind::Ntlm && channel_bound && settings.channel_binding {
            message.push_str(
                "; the token was bound to this TLS connection (channel bindings): if the \
                 server or a TLS-terminating proxy in front of it rejects that, retry with \
                 --channel-binding off",
            );
        }
        if let Some(weaker) = weaker {
            let refusal = kerbside_proto::SchemeRefusal::Downgrade {
                failed: kind,
                weaker,
            };
            message.push_str(&format!("; {refusal} (--allow-downgrade permits it)"));
        }
        Error::new(ErrorKind::Auth, message)
    }

    /// Starts the chosen scheme on `conn`: its first credentials and the exchange
    /// that waits for the answer.
    #[allow(clippy::too_many_arguments)]
    async fn start_scheme(
        &self,
        kind: SchemeKind,
        reason: String,
        origin: &Origin,
        conn: &Conn,
        challenges: &[Challenge],
        parts: &Parts,
        body: Option<&bytes::Bytes>,
        observer: &dyn Observer,
    ) -> Result<(String, Exchange), StartError> {
        let settings = &self.config.auth;
        match kind {
            SchemeKind::Negotiate => {
                match self
                    .start_negotiate(origin, conn, Some(challenges), reason.clone(), observer)
                    .await
                {
                    Ok((credentials, next)) => Ok((credentials, Exchange::Token(next))),
                    Err(Failure::Fatal(e)) if e.kerberos_unavailable() => {
                        // No ticket and none to be had (no ticket, a user the KDC
                        // does not know, no KDC), and nothing was sent: NTLM inside
                        // SPNEGO, when allowed and a password is at hand; otherwise
                        // the next scheme on offer.
                        observer.event(&Event::Notice {
                            message: format!("Negotiate skipped: {e}"),
                        });
                        if settings.ntlm_in_negotiate {
                            if let Some(found) =
                                settings
                                    .passwords
                                    .lookup(&origin.host, None, SchemeKind::Ntlm)
                            {
                                return self
                                    .start_ntlm(origin, conn, &found, true, reason, observer)
                                    .map(|(c, next)| (c, Exchange::Token(next)));
                            }
                        }
                        Err(StartError::Unavailable(e.to_string()))
                    }
                    Err(f) => Err(StartError::Failure(f)),
                }
            }
            SchemeKind::Ntlm => {
                let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
                    return Err(StartError::Unavailable("no password".to_owned()));
                };
                self.start_ntlm(origin, conn, &found, false, reason, observer)
                    .map(|(c, next)| (c, Exchange::Token(next)))
            }
            SchemeKind::Digest | SchemeKind::Basic => {
                let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
                    return Err(StartError::Unavailable("no password".to_owned()));
                };
                observer.event(&Event::Scheme {
                    proxy: false,
                    scheme: kind.name().to_owned(),
                    scheme_reason: reason,
                    target: found.user.to_owned(),
                    target_reason: found.source.describe().to_owned(),
                    channel_binding: false,
                });
                if kind == SchemeKind::Basic {
                    let credentials = crate::schemes::basic(found.user, found.password)
                        .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                    return Ok((
                        credentials,
                        Exchange::Password {
                            kind,
                            digest: None,
                            signed: None,
                            preemptive: false,
                            stale_retried: false,
                        },
                    ));
                }
                let session = crate::schemes::DigestState::start(
                    challenges,
                    found.user,
                    found.password,
                    settings.allow_digest_md5,
                )
                .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                let (header, signed) = session
                    .authorization(parts.method.as_str(), &request_target(&parts.uri), body)
                    .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                Ok((
                    header,
                    Exchange::Password {
                        kind,
                        digest: Some(Arc::new(session)),
                        signed: Some(signed),
                        preemptive: false,
                        stale_retried: false,
                    },
                ))
            }
        }
    }

    /// The first NTLM message, under the `NTLM` scheme or inside SPNEGO under
    /// `Negotiate`.
    fn start_ntlm(
        &self,
        origin: &Origin,
        conn: &Conn,
        found: &crate::keyring::FoundCredential<'_>,
        inside_negotiate: bool,
        reason: String,
        observer: &dyn Observer,
    ) -> Result<(String, ExpectFinalToken<Initiator>), StartError> {
        let settings = &self.config.auth;
        let bindings = if settings.channel_binding {
            conn.channel_binding.clone()
        } else {
            None
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: if inside_negotiate {
                "NTLM inside Negotiate (SPNEGO)".to_owned()
            } else {
                "NTLM".to_owned()
            },
            scheme_reason: reason,
            target: found.user.to_owned(),
            target_reason: found.source.describe().to_owned(),
            channel_binding: bindings.is_some(),
        });
        let fatal = |e: String| StartError::Failure(Failure::Fatal(Error::new(ErrorKind::Auth, e)));
        let (credentials, inputs) =
            crate::schemes::ntlm_inputs(found, &origin.host, bindings).map_err(fatal)?;
        let (mech, scheme) = if inside_negotiate {
            (
                Initiator::SpnegoNtlm(Box::new(kerbside_proto::spnego::SpnegoNtlmInitiator::new(
                    credentials,
                    inputs,
                ))),
                kerbside_proto::Scheme::NEGOTIATE,
            )
        } else {
            (
                Initiator::Ntlm(Box::new(
                    kerbside_proto::scheme::ntlm::client::NtlmInitiator::new(credentials, inputs),
                )),
                kerbside_proto::Scheme::NTLM,
            )
        };
        // NTLM has no mutual authentication of its own (SPNEGO's mechListMIC is
        // checked by the mechanism).
        let (credentials, next) = ExpectChallenge::new(mech, MutualAuth::Off)
            .with_scheme(scheme)
            .with_max_legs(settings.max_legs)
            .start()
            .map_err(|e| StartError::Failure(Failure::Fatal(auth_error(e))))?;
        Ok((credentials.to_header_value(), next))
    }

    /// Credentials for a request to an origin whose Digest or Basic login was taken
    /// before.
    fn preemptive_password(
        &self,
        origin: &Origin,
        known: &OriginState,
        parts: &Parts,
        body: Option<&bytes::Bytes>,
        transport: Transport,
        observer: &dyn Observer,
    ) -> Result<Option<(String, Exchange)>, Failure> {
        let settings = &self.config.auth;
        let (kind, digest) = if let Some(session) = known.digest.clone() {
            (SchemeKind::Digest, Some(session))
        } else if known.basic {
            (SchemeKind::Basic, None)
        } else {
            return Ok(None);
        };
        if !settings.schemes.allows(kind)
            || settings
                .schemes
                .plain_http
                .check(kind.name(), &origin.host, transport)
                .is_err()
        {
            return Ok(None);
        }
        let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
            return Ok(None);
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: kind.name().to_owned(),
            scheme_reason: "sent without waiting for a 401: the server took it before".to_owned(),
            target: found.user.to_owned(),
            target_reason: found.source.describe().to_owned(),
            channel_binding: false,
        });
        let (header, signed) = match &digest {
            Some(session) => {
                let (header, signed) = session.authorization(
                    parts.method.as_str(),
                    &request_target(&parts.uri),
                    body,
                )?;
                (header, Some(signed))
            }
            None => (crate::schemes::basic(found.user, found.password)?, None),
        };
        Ok(Some((
            header,
            Exchange::Password {
                kind,
                digest,
                signed,
                preemptive: true,
                stale_retried: false,
            },
        )))
    }

    /// New Digest credentials when the 401 says the nonce was stale.
    fn digest_stale_retry(
        &self,
        session: &crate::schemes::DigestState,
        challenges: &[Challenge],
        parts: &Parts,
        body: Option<&bytes::Bytes>,
    ) -> Result<Option<(String, Box<DigestSession>)>, Failure> {
        if !session.take_stale(challenges) {
            return Ok(None);
        }
        Ok(Some(session.authorization(
            parts.method.as_str(),
            &request_target(&parts.uri),
            body,
        )?))
    }

    fn cookie_header(&self, uri: &Uri) -> Option<HeaderValue> {
        let url = url::Url::parse(&uri.to_string()).ok()?;
        let store = self
            .shared
            .common
            .cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pairs: Vec<String> = store
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    fn store_cookies(&self, uri: &Uri, headers: &http::HeaderMap) {
        let Ok(url) = url::Url::parse(&uri.to_string()) else {
            return;
        };
        let mut store = self
            .shared
            .common
            .cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for value in headers.get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                // A cookie the jar refuses (bad domain, malformed) is dropped.
                let _ = store.parse(text, &url);
            }
        }
    }

    fn too_many(&self, challenges_seen: u32) -> Result<(), Failure> {
        let max = self.config.auth.max_auth_rounds;
        if challenges_seen > max {
            return Err(Failure::Fatal(Error::new(
                ErrorKind::Auth,
                format!(
                    "the server answered 401 {challenges_seen} times in a row; giving up \
                     (--max-auth-rounds {max})"
                ),
            )));
        }
        Ok(())
    }

    /// Prepares the first token of an exchange on `conn`.
    async fn start_negotiate(
        &self,
        origin: &Origin,
        conn: &Conn,
        challenges: Option<&[Challenge]>,
        scheme_reason: String,
        observer: &dyn Observer,
    ) -> Result<(String, ExpectFinalToken<Initiator>), Failure> {
        let settings = &self.config.auth;
        let canonical = if settings.target.needs_canonical_name(&origin.host) {
            let host = origin.host.clone();
            tokio::task::spawn_blocking(move || canonical_name(&host))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let target =
            settings
                .target
                .resolve(&origin.host, origin.explicit_port(), canonical.as_deref());
        let channel_bindings = if settings.channel_binding {
            conn.channel_binding.clone()
        } else {
            None
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: "Negotiate".to_owned(),
            scheme_reason,
            target: target.name.clone(),
            target_reason: target.reason.clone(),
            channel_binding: channel_bindings.is_some(),
        });
        let config = InitiatorConfig {
            target: target.name,
            mutual: settings.mutual,
            delegation: settings.delegation,
            credentials: settings.credentials.clone(),
            channel_bindings,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let challenges = challenges.map(<[Challenge]>::to_vec);
        let (credentials, next) = blocking(move || {
            let mech = Initiator::Gss(
                NegotiateInitiator::new(&config)
                    .map_err(|e| credential_error(e, &config.credentials))?,
            );
            let start = ExpectChallenge::new(mech, mutual).with_max_legs(max_legs);
            match challenges {
                Some(c) => start.handle_challenge(&c),
                None => start.start(),
            }
            .map_err(auth_error)
        })
        .await??;
        Ok((credentials.to_header_value(), next))
    }

    /// Sends one leg on `conn`.
    #[allow(clippy::too_many_arguments)]
    async fn leg(
        &self,
        conn: &mut Conn,
        origin: &Origin,
        parts: &Parts,
        body: &mut Replayable,
        authorization: Option<&str>,
        proxy_authorization: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<Leg, LegError> {
        let Some((wire, gate)) = body.take() else {
            return Err(LegError::Fatal(Error::new(
                ErrorKind::Body,
                "the server asked for authentication after the streamed request body was \
                 sent, and it cannot be sent again; use --negotiate-preemptive or a body \
                 from a file",
            )));
        };
        let uri = if conn.is_h2() || conn.via_proxy {
            parts.uri.clone()
        } else {
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(|e| {
                    LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad path", e))
                })?
        };
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(wire)
            .map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad request", e))
            })?;
        *request.headers_mut() = parts.headers.clone();
        if conn.is_h2() {
            request.headers_mut().remove(HOST);
            *request.version_mut() = http::Version::HTTP_2;
        } else if !request.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(&origin.authority()).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad host", e))
            })?;
            request.headers_mut().insert(HOST, host);
        }
        if let Some(auth) = authorization {
            let value = HeaderValue::from_str(auth).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::Auth, "bad token", e))
            })?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        if let Some(auth) = proxy_authorization {
            let value = HeaderValue::from_str(auth).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::Auth, "bad token", e))
            })?;
            request.headers_mut().insert(PROXY_AUTHORIZATION, value);
        }
        if self.config.cookies && !request.headers().contains_key(COOKIE) {
            if let Some(cookie) = self.cookie_header(&parts.uri) {
                request.headers_mut().insert(COOKIE, cookie);
            }
        }
        if let Some(gate) = &gate {
            request
                .headers_mut()
                .insert(EXPECT, HeaderValue::from_static("100-continue"));
            let opener = gate.clone();
            hyper::ext::on_informational(&mut request, move |info| {
                if info.status() == StatusCode::CONTINUE {
                    opener.open();
                }
            });
            gate.open_after(self.config.continue_timeout);
        }
        observer.event(&Event::Request {
            conn: conn.id,
            line: format!("{} {} {}", request.method(), request.uri(), conn.protocol()),
            headers: redacted(request.headers()),
        });
        let result = conn.send(request).await;
        let withheld = gate.as_ref().is_some_and(|g| body.restore(g));
        match result {
            Ok(response) => {
                if self.config.cookies {
                    self.store_cookies(&parts.uri, response.headers());
                }
                observer.event(&Event::Response {
                    conn: conn.id,
                    line: format!("{:?} {}", response.version(), response.status()),
                    headers: redacted(response.headers()),
                });
                Ok(Leg { response, withheld })
            }
            Err(e) if is_http11_required(&e) => Err(LegError::Http11Required),
            Err(e) => Err(LegError::Send(Error::with_source(
                ErrorKind::Http,
                format!(
                    "the connection to {}:{} failed before a response came: {e}",
                    origin.host, origin.port
                ),
                e,
            ))),
        }
    }
}

/// What to do after a response from (or through) a proxy.
enum ProxyStep {
    /// Send the request again with the new `Proxy-Authorization`.
    Retry,
    /// The proxy is satisfied (or has nothing to say).
    Done,
}

/// One exchange with a proxy (`407`, `Proxy-Authenticate`, `Proxy-Authorization`).
struct ProxyAuth {
    proxy: ProxyAddr,
    exchange: Option<ExpectFinalToken<Initiator>>,
    header: Option<String>,
    rounds: u32,
    tokens: u32,
    /// Basic credentials went out: they go with every request through the proxy.
    basic: bool,
}

impl ProxyAuth {
    fn new(proxy: ProxyAddr) -> Self {
        Self {
            proxy,
            exchange: None,
            header: None,
            rounds: 0,
            tokens: 0,
            basic: false,
        }
    }

    fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    async fn on_response(
        &mut self,
        client: &Client,
        status: StatusCode,
        headers: &http::HeaderMap,
        observer: &dyn Observer,
    ) -> Result<ProxyStep, Failure> {
        let challenges = parse_challenges(
            headers
                .get_all(PROXY_AUTHENTICATE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Auth,
                format!("the proxy sent a malformed Proxy-Authenticate header: {e}"),
                e,
            )
        })?;
        let proxy_error = |e: NegotiateError<InitiatorError>| {
            Failure::Fatal(Error::with_source(
                ErrorKind::Auth,
                format!("proxy {}:{}: {e}", self.proxy.host, self.proxy.port),
                e,
            ))
        };
        if self.basic {
            if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the proxy {}:{} refused the Basic credentials: wrong user name or \
                         password",
                        self.proxy.host, self.proxy.port
                    ),
                )));
            }
            return Ok(ProxyStep::Done);
        }
        if let Some(state) = self.exchange.take() {
            let scheme = state.scheme().as_str().to_owned();
            let code = status.as_u16();
            let progress =
                blocking(move || ExpectFinalToken::handle_response(state, code, &challenges))
                    .await?;
            return match progress {
                Ok(Progress::Continue(credentials, next)) => {
                    self.header = Some(credentials.to_header_value());
                    self.exchange = Some(next);
                    self.tokens += 1;
                    Ok(ProxyStep::Retry)
                }
                Ok(Progress::Established(done)) => {
                    observer.event(&Event::Authenticated {
                        proxy: true,
                        scheme,
                        mutual: done.mutual(),
                        legs: self.tokens,
                        connection_bound: true,
                    });
                    // The proxy keeps the authentication with the connection.
                    self.header = None;
                    Ok(ProxyStep::Done)
                }
                Err(NegotiateError::Rejected) if scheme == "NTLM" => {
                    Err(Failure::Fatal(Error::new(
                        ErrorKind::Auth,
                        format!(
                            "the proxy {}:{} refused the NTLM credentials: wrong user name, \
                             domain or password",
                            self.proxy.host, self.proxy.port
                        ),
                    )))
                }
                Err(e) => Err(proxy_error(e)),
            };
        }
        if status != StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            return Ok(ProxyStep::Done);
        }
        self.rounds += 1;
        client.too_many(self.rounds)?;
        let settings = &client.config.auth;
        // Passwords for the proxy's host; Digest is not answered to proxies.
        let mut unavailable: Vec<(SchemeKind, String)> = [SchemeKind::Ntlm, SchemeKind::Basic]
            .into_iter()
            .filter(|k| {
                settings
                    .passwords
                    .lookup(&self.proxy.host, None, *k)
                    .is_none()
            })
            .map(|k| {
                (
                    k,
                    format!(
                        "no user name and password for the proxy {}: give -u or put them \
                         in the keyring file",
                        self.proxy.host
                    ),
                )
            })
            .collect();
        unavailable.push((
            SchemeKind::Digest,
            "kerbside does not answer Digest to proxies".to_owned(),
        ));
        let chosen = settings
            .schemes
            .choose_among(
                &challenges,
                None,
                &self.proxy.host,
                Transport::Plain,
                &unavailable,
            )
            .map_err(|e| {
                let kind = match e {
                    kerbside_proto::SchemeRefusal::Transport(_) => ErrorKind::Policy,
                    _ => ErrorKind::Auth,
                };
                Error::with_source(kind, format!("proxy {}: {e}", self.proxy.host), e)
            })?;
        if chosen.kind != SchemeKind::Negotiate {
            let found = settings
                .passwords
                .lookup(&self.proxy.host, None, chosen.kind)
                .ok_or_else(|| {
                    Failure::Fatal(Error::new(ErrorKind::Auth, "no password for the proxy"))
                })?;
            observer.event(&Event::Scheme {
                proxy: true,
                scheme: chosen.kind.name().to_owned(),
                scheme_reason: chosen.reason.clone(),
                target: found.user.to_owned(),
                target_reason: found.source.describe().to_owned(),
                channel_binding: false,
            });
            if chosen.kind == SchemeKind::Basic {
                self.header = Some(crate::schemes::basic(found.user, found.password)?);
                self.basic = true;
                return Ok(ProxyStep::Retry);
            }
            let (credentials, inputs) = crate::schemes::ntlm_inputs(&found, &self.proxy.host, None)
                .map_err(|e| Failure::Fatal(Error::new(ErrorKind::Auth, e)))?;
            let mech = Initiator::Ntlm(Box::new(
                kerbside_proto::scheme::ntlm::client::NtlmInitiator::new(credentials, inputs),
            ));
            let (credentials, next) = ExpectChallenge::new(mech, MutualAuth::Off)
                .with_scheme(kerbside_proto::Scheme::NTLM)
                .with_max_legs(settings.max_legs)
                .for_proxy()
                .start()
                .map_err(|e| Failure::Fatal(auth_error(e)))?;
            self.header = Some(credentials.to_header_value());
            self.exchange = Some(next);
            self.tokens = 1;
            return Ok(ProxyStep::Retry);
        }
        let target = settings.target.resolve(&self.proxy.host, None, None);
        observer.event(&Event::Scheme {
            proxy: true,
            scheme: chosen.kind.name().to_owned(),
            scheme_reason: chosen.reason.clone(),
            target: target.name.clone(),
            target_reason: format!("{} (of the proxy)", target.reason),
            channel_binding: false,
        });
        let config = InitiatorConfig {
            target: target.name,
            mutual: settings.mutual,
            delegation: Delegation::None,
            credentials: settings.credentials.clone(),
            channel_bindings: None,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let result = blocking(move || {
            let mech = Initiator::Gss(NegotiateInitiator::new(&config).map_err(auth_error)?);
            ExpectChallenge::new(mech, mutual)
                .with_max_legs(max_legs)
                .for_proxy()
                .handle_challenge(&challenges)
                .map_err(auth_error)
        })
        .await??;
        let (credentials, next) = result;
        self.header = Some(credentials.to_header_value());
        self.exchange = Some(next);
        self.tokens = 1;
        Ok(ProxyStep::Retry)
    }
}

enum LegError {
    Send(Error),
    Http11Required,
    Fatal(Error),
}

/// `2 seconds`, `0.5 seconds`, `1 second`.
pub(crate) fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "1" {
        "1 second".to_owned()
    } else {
        format!("{text} seconds")
    }
}

fn closed_mid_handshake(origin: &Origin, kind: SchemeKind) -> Error {
    Error::new(
        ErrorKind::Auth,
        format!(
            "{}:{} closed the connection in the middle of the {kind} exchange, twice; it \
             must keep the connection open between the 401 and the next request (a proxy or \
             load balancer in between may be switching connections)",
            origin.host, origin.port
        ),
    )
}

/// Why a chosen scheme could not start.
enum StartError {
    /// The client holds no credentials for it (no Kerberos ticket): try the next.
    Unavailable(String),
    /// Give up (or start over).
    Failure(Failure),
}

/// An exchange waiting for the response to the credentials it sent.
enum Exchange {
    /// A connection-based exchange (Negotiate, NTLM): tokens on one connection.
    Token(ExpectFinalToken<Initiator>),
    /// Digest or Basic: one request carries the credentials.
    Password {
        kind: SchemeKind,
        /// The Digest state (nonce, nonce count), shared with later requests.
        digest: Option<Arc<DigestState>>,
        /// The Digest session as it signed this request, for its `rspauth`.
        signed: Option<Box<DigestSession>>,
        /// Sent without a 401, because the server took it before.
        preemptive: bool,
        /// A `stale=true` challenge was answered already.
        stale_retried: bool,
    },
}

/// The request-target of an origin-form request: the path and query.
fn request_target(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
}

/// Checks the Digest `Authentication-Info` of a successful response, when sent.
fn check_rspauth(signed: &mut DigestSession, response: &Response<Incoming>) -> Result<(), Failure> {
    let Some(value) = response.headers().get("authentication-info") else {
        return Ok(());
    };
    crate::schemes::check_info(signed, value.as_bytes()).map_err(Failure::Fatal)
}

/// `Persistent-Auth: true|false` (IIS and mod_auth_gssapi).
fn persistent_auth(response: &Response<Incoming>) -> Option<bool> {
    let v = response.headers().get("persistent-auth")?.to_str().ok()?;
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The canonical name DNS gives for `host` (following CNAMEs), if any.
fn canonical_name(host: &str) -> Option<String> {
    let hints = dns_lookup::AddrInfoHints {
        flags: libc_ai_canonname(),
        ..dns_lookup::AddrInfoHints::default()
    };
    dns_lookup::getaddrinfo(Some(host), None, Some(hints))
        .ok()?
        .filter_map(Result::ok)
        .find_map(|ai| ai.canonname)
}

/// `AI_CANONNAME` from <netdb.h> (the same value on Linux and the BSDs).
const fn libc_ai_canonname() -> i32 {
    2
}

/// The error for Kerberos credentials that could not be had, naming the user
/// when a password was given for one (`-u user:password`). The GSSAPI error stays
/// the source: [`Error::kerberos_unavailable`] reads it.
fn credential_error(e: kerbside_gssapi::GssError, credentials: &ClientCredentials) -> Error {
    // krb5.h: KRB5KDC_ERR_PREAUTH_FAILED, a wrong password where the KDC asks for
    // pre-authentication.
    const PREAUTH_FAILED: u32 = (-1_765_328_360_i32) as u32;
    let principal = match credentials {
        ClientCredentials::Password { principal, .. }
        | ClientCredentials::FreshPassword { principal, .. } => principal,
        _ => return auth_error(e),
    };
    let message = match e.problem() {
        kerbside_gssapi::Problem::ClientPrincipalUnknown => format!(
            "the KDC does not know the user {principal}, so its password gets no Kerberos \
             ticket"
        ),
        kerbside_gssapi::Problem::Integrity => format!(
            "the KDC refused the password of {principal}: wrong password (nothing was sent \
             to the server)"
        ),
        _ if e.minor() == PREAUTH_FAILED => format!(
            "the KDC refused the password of {principal}: wrong password (nothing was sent \
             to the server)"
        ),
        _ => return auth_error(e),
    };
    Error::with_source(ErrorKind::Auth, message, e)
}

fn auth_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::with_source(ErrorKind::Auth, e.to_string(), e)
}

/// Runs GSSAPI work (which may block on files or the KDC) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Failure::Fatal(Error::new(
            ErrorKind::Auth,
            format!("authentication task failed: {e}"),
        ))
    })
}

fn redacted(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), crate::redact_header(n, v)))
        .collect()
}

fn read_challenges(response: &Response<Incoming>) -> Result<Vec<Challenge>, Error> {
    parse_challenges(
        response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(HeaderValue::as_bytes),
    )
    .map_err(|e| {
        Error::with_source(
            ErrorKind::Auth,
            format!("the server sent a malformed WWW-Authenticate header: {e}"),
            e,
        )
    })
}

/// Reads and drops a challenge's body so the connection can carry the next leg.
async fn drain(response: Response<Incoming>, limit: usize) -> Result<(), Error> {
    Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                ErrorKind::Http,
                format!("could not read the 401 response body (limit {limit} bytes): {e}"),
            )
        })
}

fn finish(
    mut response: Response<Incoming>,
    scheme: Option<SchemeKind>,
    negotiate: Option<MutualOutcome>,
    connection: u64,
    challenges: u32,
) -> Response<Incoming> {
    response.extensions_mut().insert(Outcome {
        scheme,
        negotiate,
        connection,
        challenges,
    });
    response
}
