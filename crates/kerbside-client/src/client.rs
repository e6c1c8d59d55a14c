//! [`Client`]: requests, and the handshakes they need, on connections that carry
//! their authentication.
//!
//! - [`settings`]: [`ClientConfig`] and [`AuthSettings`];
//! - [`event`]: the [`Event`]s of verbose output and a request's [`Outcome`];
//! - `pool`: connections kept per origin and identity;
//! - `connect`: new connections (TCP, a proxy's tunnel, TLS) within the connect timeout;
//! - `proxy_auth`: a proxy's `407` handshake;
//! - `attempt`: one attempt at a request on one connection, leg after leg;
//! - `start`: the first credentials of each scheme;
//! - `leg`: one request and its response head on a connection.

mod attempt;
mod connect;
pub mod event;
mod leg;
mod pool;
mod proxy_auth;
pub mod settings;
mod start;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use kerbside_proto::driver::{
    AttemptEnd, DriverSettings, GiveUp, OriginFacts, OriginMode, RequestDriver, Retry,
};
use kerbside_proto::{SchemeKind, SchemePolicy, Transport};

use crate::body::{Replayable, RequestBody};
use crate::conn::{Conn, Origin};
use crate::error::{Error, ErrorKind};
use crate::proxy::ProxyAddr;
use crate::schemes::DigestState;
use crate::tls::client_config;

use attempt::Failure;
use connect::seconds;
pub use connect::TunnelStream;
pub use event::{Event, Observer, Outcome};
pub use settings::{AuthSettings, ClientConfig, Preemptive, DEFAULT_CONNECT_TIMEOUT};

/// What the client learned about an origin.
#[derive(Debug, Clone, Default)]
struct OriginState {
    wants_negotiate: bool,
    mode: OriginMode,
    h1_only: bool,
    /// The Digest login the server took, used again with the next nonce count.
    digest: Option<Arc<DigestState>>,
    /// The server took Basic credentials: send them with every request.
    basic: bool,
}

impl OriginState {
    /// What the request driver decides by.
    fn facts(&self) -> OriginFacts {
        let password_login = if self.digest.is_some() {
            Some(SchemeKind::Digest)
        } else if self.basic {
            Some(SchemeKind::Basic)
        } else {
            None
        };
        OriginFacts::new(
            self.wants_negotiate,
            self.mode,
            self.h1_only,
            password_login,
        )
    }
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
    /// Proxies that took Negotiate: a tunnel through them gets a token at once.
    negotiate_proxies: Mutex<std::collections::HashSet<ProxyAddr>>,
    /// Proxies that took a Digest login: later requests send it at once with the next
    /// nonce count (a stale nonce is then answered once, RFC 7616 §3.3).
    digest_proxies: Mutex<HashMap<ProxyAddr, Arc<DigestState>>>,
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
    /// What the request driver decides by, from `config.auth`.
    driver: Arc<DriverSettings>,
    tls_any: Arc<rustls::ClientConfig>,
    tls_h1: Arc<rustls::ClientConfig>,
    /// TLS to an `https://` proxy (HTTP/1.1: `CONNECT` needs it).
    tls_proxy: Arc<rustls::ClientConfig>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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
        let origin_schemes = if config.origin_auth {
            config.auth.schemes.clone()
        } else {
            // The driver answers no 401; the proxy's 407 reads `config.auth` itself.
            SchemePolicy {
                enabled: Vec::new(),
                ..config.auth.schemes.clone()
            }
        };
        let driver = DriverSettings::new(origin_schemes, config.auth.max_auth_rounds)
            .with_preemptive(config.auth.preemptive);
        Ok(Self {
            tls_any: client_config(&config.tls, any)?,
            tls_h1: client_config(&config.tls, &[b"http/1.1"])?,
            tls_proxy: client_config(&config.proxy_tls, &[b"http/1.1"])?,
            driver: Arc::new(driver),
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
            driver: self.driver.clone(),
            tls_any: self.tls_any.clone(),
            tls_h1: self.tls_h1.clone(),
            tls_proxy: self.tls_proxy.clone(),
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

    fn proxy_wants_negotiate(&self, proxy: &ProxyAddr) -> bool {
        self.shared
            .common
            .negotiate_proxies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(proxy)
    }

    fn learn_proxy_negotiate(&self, proxy: &ProxyAddr) {
        self.shared
            .common
            .negotiate_proxies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(proxy.clone());
    }

    /// The Digest login `proxy` took, if any.
    fn proxy_digest(&self, proxy: &ProxyAddr) -> Option<Arc<DigestState>> {
        self.digest_proxies().get(proxy).cloned()
    }

    /// `proxy` took this Digest login (`Some`), or refused it (`None`).
    fn learn_proxy_digest(&self, proxy: &ProxyAddr, login: Option<Arc<DigestState>>) {
        let mut proxies = self.digest_proxies();
        match login {
            Some(login) => proxies.insert(proxy.clone(), login),
            None => proxies.remove(proxy),
        };
    }

    fn digest_proxies(&self) -> std::sync::MutexGuard<'_, HashMap<ProxyAddr, Arc<DigestState>>> {
        self.shared
            .common
            .digest_proxies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self, origin: &Origin) -> PoolKey {
        (
            origin.clone(),
            self.config.auth.credentials.connection_identity(),
            self.config.proxy.route(origin),
        )
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
        let mut request = RequestDriver::new();
        loop {
            let (end, error) = match self
                .attempt(&origin, &parts, &mut body, observer, &mut request)
                .await
            {
                Ok(response) => return Ok(response),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Restart(reason, e)) => (AttemptEnd::Restart(reason), Some(e)),
                Err(Failure::Http11Required) => (AttemptEnd::Http11Required, None),
            };
            match request.clone().handle_end(end) {
                Retry::Again { driver, learned } => {
                    request = driver;
                    if learned.is_some() {
                        // The one thing a retry learns: HTTP/1.1 only.
                        self.learn(&origin, |s| s.h1_only = true);
                    }
                    let reason = match &error {
                        Some(e) => e.to_string(),
                        None => "the server requires HTTP/1.1 for this request \
                                 (HTTP_1_1_REQUIRED)"
                            .to_owned(),
                    };
                    observer.event(&Event::Retrying { reason });
                }
                Retry::GiveUp(GiveUp::Http11RequiredTwice) => {
                    return Err(Error::new(
                        ErrorKind::Http,
                        "the server answered HTTP_1_1_REQUIRED even over HTTP/1.1",
                    ))
                }
                Retry::GiveUp(_) => {
                    return Err(error.unwrap_or_else(|| {
                        Error::new(ErrorKind::Http, "the request could not be completed")
                    }))
                }
            }
        }
    }
}
