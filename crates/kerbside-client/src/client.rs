//! [`Client`]: one request, and the whole Negotiate exchange it needs, on one
//! connection.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, MutualOutcome, Progress, DEFAULT_MAX_LEGS,
};
use kerbside_proto::{parse_challenges, Challenge, MutualAuth, PlainHttpAuth, Transport};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, ErrorKind};
use crate::tls::{client_config, TlsSettings};

/// How the client authenticates.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Answer `401 Negotiate` with a Kerberos token.
    pub negotiate: bool,
    /// How strictly to check the server's final token.
    pub mutual: MutualAuth,
    /// The service name to ask a ticket for, instead of `HTTP@<host of the URL>`.
    pub spn: Option<String>,
    /// Which hosts may receive credentials over plain HTTP.
    pub plain_http: PlainHttpAuth,
    /// Forward the user's ticket-granting ticket (off unless asked).
    pub delegate: bool,
    /// A ticket cache to use instead of `KRB5CCNAME`.
    pub ccache: Option<String>,
    /// How many tokens one exchange may send.
    pub max_legs: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            negotiate: false,
            mutual: MutualAuth::Optional,
            spn: None,
            plain_http: PlainHttpAuth::Refuse,
            delegate: false,
            ccache: None,
            max_legs: DEFAULT_MAX_LEGS,
        }
    }
}

/// Everything a [`Client`] is built from.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// Certificate checking.
    pub tls: TlsSettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// The most bytes of a 401 body read (and dropped) to keep the connection for the
    /// next leg.
    pub max_challenge_body: Option<usize>,
}

/// Why a target name was chosen, for `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// `HTTP@` + the host of the URL.
    UrlHost,
    /// Given explicitly (`--spn`).
    Explicit,
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
    /// The connection is up (after the TLS handshake, if any).
    Connected {
        /// The peer's address.
        peer: String,
    },
    /// A request leg is sent.
    Request {
        /// Request line, e.g. `GET /x HTTP/1.1`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// A response arrived.
    Response {
        /// Status line, e.g. `HTTP/1.1 401 Unauthorized`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// The client will answer a challenge.
    Scheme {
        /// The scheme, e.g. `Negotiate`.
        scheme: String,
        /// The Kerberos target name.
        target: String,
        /// Why that name.
        source: TargetSource,
    },
    /// The exchange finished.
    Authenticated {
        /// What became of mutual authentication.
        mutual: MutualOutcome,
        /// How many tokens were sent.
        legs: u32,
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

/// How a request ended, attached to the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Some` when a Negotiate exchange ran: what became of mutual authentication.
    pub negotiate: Option<MutualOutcome>,
    /// How many requests went over the connection.
    pub legs: u32,
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    tls: Arc<rustls::ClientConfig>,
}

struct Origin {
    host: String,
    port: u16,
    tls: bool,
}

const DEFAULT_MAX_CHALLENGE_BODY: usize = 1024 * 1024;

impl Client {
    /// Builds a client; fails if the TLS settings cannot be used (a bad CA file).
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let tls = client_config(&config.tls)?;
        Ok(Self {
            config: Arc::new(config),
            tls,
        })
    }

    fn origin(uri: &Uri) -> Result<Origin, Error> {
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("unsupported URL scheme {other:?}: use http:// or https://"),
                ))
            }
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("{uri} is not an absolute URL: start it with https://"),
                ))
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::new(ErrorKind::InvalidUrl, format!("{uri} has no host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Origin { host, port, tls })
    }

    async fn connect(
        &self,
        origin: &Origin,
        observer: &dyn Observer,
    ) -> Result<SendRequest<Full<Bytes>>, Error> {
        observer.event(&Event::Connecting {
            host: origin.host.clone(),
            port: origin.port,
            tls: origin.tls,
        });
        let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::Connect,
                    format!("cannot connect to {}:{}: {e}", origin.host, origin.port),
                    e,
                )
            })?;
        let _ = tcp.set_nodelay(true);
        let peer = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        if origin.tls {
            let name = match origin.host.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(origin.host.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidUrl,
                        format!("{} is not a valid host name: {e}", origin.host),
                    )
                })?,
            };
            let stream = TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    Error::with_source(
                        ErrorKind::Tls,
                        format!(
                            "TLS handshake with {}:{} failed: {e} (use --cacert FILE to trust a \
                             private CA)",
                            origin.host, origin.port
                        ),
                        e,
                    )
                })?;
            observer.event(&Event::Connected { peer });
            handshake(stream).await
        } else {
            observer.event(&Event::Connected { peer });
            handshake(tcp).await
        }
    }

    /// Sends a request and returns the final response, running a Negotiate exchange
    /// on the same connection when the server asks for one and the settings allow.
    ///
    /// The request's URI must be absolute. The response carries an [`Outcome`] in
    /// its extensions.
    pub async fn send(
        &self,
        request: Request<Bytes>,
        observer: &dyn Observer,
    ) -> Result<Response<Incoming>, Error> {
        let (mut parts, body) = request.into_parts();
        let origin = Self::origin(&parts.uri)?;
        if !parts.headers.contains_key(HOST) {
            let host = match (origin.tls, origin.port) {
                (true, 443) | (false, 80) => host_for_header(&origin.host),
                (_, port) => format!("{}:{port}", host_for_header(&origin.host)),
            };
            let value = HeaderValue::from_str(&host)
                .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, "bad host", e))?;
            parts.headers.insert(HOST, value);
        }
        // HTTP/1.1 requests carry the path only; the Host header names the origin.
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let origin_form: Uri = target
            .parse()
            .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, "bad path", e))?;

        let mut conn = self.connect(&origin, observer).await?;
        let build = |auth: Option<&str>| -> Result<Request<Full<Bytes>>, Error> {
            let mut req = Request::builder()
                .method(parts.method.clone())
                .uri(origin_form.clone())
                .version(http::Version::HTTP_11)
                .body(Full::new(body.clone()))
                .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, "bad request", e))?;
            *req.headers_mut() = parts.headers.clone();
            if let Some(auth) = auth {
                let value = HeaderValue::from_str(auth)
                    .map_err(|e| Error::with_source(ErrorKind::Auth, "bad token", e))?;
                req.headers_mut().insert(AUTHORIZATION, value);
            }
            Ok(req)
        };

        let mut legs = 1;
        let response = send_leg(&mut conn, build(None)?, observer).await?;
        let settings = &self.config.auth;
        if response.status() != StatusCode::UNAUTHORIZED || !settings.negotiate {
            return Ok(finish(response, None, legs));
        }
        let challenges = read_challenges(&response)?;
        if !challenges.iter().any(|c| c.scheme.is("Negotiate")) {
            return Ok(finish(response, None, legs));
        }
        let transport = if !origin.tls {
            Transport::Plain
        } else if self.config.tls.insecure {
            Transport::InsecureTls
        } else {
            Transport::Tls
        };
        settings
            .plain_http
            .check("Negotiate", &origin.host, transport)
            .map_err(|e| Error::with_source(ErrorKind::Policy, e.to_string(), e))?;

        let (target, source) = match &settings.spn {
            Some(spn) => (spn.clone(), TargetSource::Explicit),
            None => (format!("HTTP@{}", origin.host), TargetSource::UrlHost),
        };
        observer.event(&Event::Scheme {
            scheme: "Negotiate".to_owned(),
            target: target.clone(),
            source,
        });
        let initiator_config = InitiatorConfig {
            target,
            mutual: settings.mutual,
            delegate: settings.delegate,
            ccache: settings.ccache.clone(),
            channel_bindings: None,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let (credentials, mut state) = blocking(move || {
            let mech = NegotiateInitiator::new(&initiator_config).map_err(auth_error)?;
            ExpectChallenge::new(mech, mutual)
                .with_max_legs(max_legs)
                .handle_challenge(&challenges)
                .map_err(auth_error)
        })
        .await?;
        drain(response, self.max_challenge_body()).await?;
        let mut authorization = credentials.to_header_value();
        loop {
            if conn.is_closed() {
                return Err(Error::new(
                    ErrorKind::Http,
                    "the server closed the connection in the middle of the Negotiate \
                     exchange; the next leg must travel on the same connection",
                ));
            }
            legs += 1;
            let response = send_leg(&mut conn, build(Some(&authorization))?, observer).await?;
            let challenges = read_challenges(&response)?;
            let status = response.status().as_u16();
            let progress = blocking(move || {
                ExpectFinalToken::handle_response(state, status, &challenges).map_err(auth_error)
            })
            .await?;
            match progress {
                Progress::Continue(credentials, next) => {
                    drain(response, self.max_challenge_body()).await?;
                    authorization = credentials.to_header_value();
                    state = next;
                }
                Progress::Established(done) => {
                    observer.event(&Event::Authenticated {
                        mutual: done.mutual(),
                        legs: legs - 1,
                    });
                    return Ok(finish(response, Some(done.mutual()), legs));
                }
            }
        }
    }

    fn max_challenge_body(&self) -> usize {
        self.config
            .max_challenge_body
            .unwrap_or(DEFAULT_MAX_CHALLENGE_BODY)
    }
}

fn host_for_header(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn auth_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::with_source(ErrorKind::Auth, e.to_string(), e)
}

/// Runs GSSAPI work (which may block on files or the KDC) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Auth, format!("authentication task failed: {e}")))?
}

async fn handshake<IO>(io: IO) -> Result<SendRequest<Full<Bytes>>, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(|e| {
        Error::with_source(ErrorKind::Http, format!("HTTP/1.1 setup failed: {e}"), e)
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection ended: {e}");
        }
    });
    Ok(sender)
}

async fn send_leg(
    conn: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    observer: &dyn Observer,
) -> Result<Response<Incoming>, Error> {
    observer.event(&Event::Request {
        line: format!(
            "{} {} {:?}",
            request.method(),
            request.uri(),
            request.version()
        ),
        headers: redacted(request.headers()),
    });
    conn.ready().await.map_err(|e| {
        Error::with_source(ErrorKind::Http, format!("the connection closed: {e}"), e)
    })?;
    let response = conn.send_request(request).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Http,
            format!("the server did not answer the request: {e}"),
            e,
        )
    })?;
    observer.event(&Event::Response {
        line: format!("{:?} {}", response.version(), response.status()),
        headers: redacted(response.headers()),
    });
    Ok(response)
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
    negotiate: Option<MutualOutcome>,
    legs: u32,
) -> Response<Incoming> {
    response
        .extensions_mut()
        .insert(Outcome { negotiate, legs });
    response
}
