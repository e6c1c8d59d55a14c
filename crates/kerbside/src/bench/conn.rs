//! Where requests go and how connections get there: the target resolved once (loopback
//! only unless allowed), TCP then TLS (HTTP/1.1 by ALPN), one request at a time on a
//! connection and what its answer said.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, AUTHORIZATION, CONNECTION, COOKIE, HOST, SET_COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kerbside_proto::cookie::set_cookie_pair;
use kerbside_proto::{parse_challenges, Challenge};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::failure::{ErrorKind, Failure};
use super::{tokens_needed, Config};

/// Where requests go, resolved once before the run.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) tls: bool,
    pub(super) host: String,
    pub(super) port: u16,
    /// The `Host` header.
    pub(super) authority: String,
    /// Path and query of each request.
    pub(super) path: String,
    /// The address every connection is made to.
    pub(super) addr: SocketAddr,
}

impl Target {
    /// Parses the URL and resolves its host; refuses a non-loopback address unless
    /// `--allow-remote`, and tokens over plain HTTP to one at all. The first
    /// connection gets `--timeout` as its deadline.
    pub(super) async fn resolve(config: &Config) -> Result<Self, String> {
        let (url, allow_remote) = (config.url.as_str(), config.allow_remote);
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url} must start with https:// or http://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        if !allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
                return Err(format!(
                    "refusing to load {host} ({}): it is not a loopback address; a benchmark \
                     is a flood of requests, so aim it at another machine only on purpose, \
                     with --allow-remote",
                    remote.ip()
                ));
            }
        }
        if !tls && tokens_needed(config) > 0 {
            if let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
                // Every token mode sends tokens before any 401: never over plain
                // HTTP to another machine (the client's rule, kerbside_proto's
                // Transport::allows_unasked_credentials).
                return Err(format!(
                    "refusing to send Kerberos tokens to {host} ({}) over plain http:// \
                     without a 401: anyone on the path could take them; use https:// (or \
                     --mode plain)",
                    remote.ip()
                ));
            }
        }
        // The first address that takes a connection (`localhost` may name ::1 first
        // while the server listens on 127.0.0.1 only).
        let mut last = None;
        for addr in &addrs {
            let connect = tokio::time::timeout(config.timeout, TcpStream::connect(addr));
            match connect.await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("timed out after {:?} (--timeout)", config.timeout),
                ))
            }) {
                Ok(_) => {
                    return Ok(Self {
                        tls,
                        host,
                        port,
                        authority,
                        path,
                        addr: *addr,
                    })
                }
                Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(last.unwrap_or_else(|| format!("cannot connect to {host}:{port}")))
    }
}

pub(super) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Makes connections to the target: TCP, then TLS (HTTP/1.1 by ALPN) for https.
#[derive(Clone)]
pub(super) struct Connector {
    pub(super) target: Arc<Target>,
    pub(super) tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    pub(super) tls_settings: kerbside_client::TlsSettings,
    /// `--timeout`, also the longest a connection may take.
    pub(super) timeout: Duration,
}

/// One HTTP/1.1 connection.
pub(super) struct Connection {
    pub(super) sender: SendRequest<Empty<Bytes>>,
}

impl Connector {
    pub(super) fn new(target: Arc<Target>, config: &Config) -> Result<Self, String> {
        let tls_settings = config.tls.clone();
        if !target.tls {
            return Ok(Self {
                target,
                tls: None,
                tls_settings,
                timeout: config.timeout,
            });
        }
        let tls_config = tls_settings
            .client_config(&[b"http/1.1"])
            .map_err(|e| e.to_string())?;
        let name = match target.host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(target.host.clone())
                .map_err(|e| format!("{} is not a valid host name: {e}", target.host))?,
        };
        Ok(Self {
            target,
            tls: Some((tokio_rustls::TlsConnector::from(tls_config), name)),
            tls_settings,
            timeout: config.timeout,
        })
    }

    /// A new connection, and the TLS `tls-server-end-point` channel binding, if any.
    /// [`connect_untimed`](Self::connect_untimed) within `--timeout`: connections
    /// made before the clock starts get a deadline too.
    pub(super) async fn connect(&self) -> Result<(Connection, Option<Vec<u8>>), Failure> {
        tokio::time::timeout(self.timeout, self.connect_untimed())
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "connecting to {} timed out after {:?} (--timeout)",
                        self.target.addr, self.timeout
                    ),
                ))
            })
    }

    pub(super) async fn connect_untimed(&self) -> Result<(Connection, Option<Vec<u8>>), Failure> {
        let tcp = TcpStream::connect(self.target.addr).await.map_err(|e| {
            Failure::new(
                ErrorKind::Connect,
                format!("cannot connect to {}: {e}", self.target.addr),
            )
        })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok((handshake(tcp).await?, None)),
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    Failure::new(
                        ErrorKind::Connect,
                        self.tls_settings.explain_handshake_failure(
                            &self.target.host,
                            self.target.port,
                            &e,
                        ),
                    )
                })?;
                let binding = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|leaf| {
                        kerbside_proto::channel_binding::tls_server_end_point(leaf.as_ref()).ok()
                    });
                Ok((handshake(stream).await?, binding))
            }
        }
    }
}

pub(super) async fn handshake<IO>(io: IO) -> Result<Connection, Failure>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::new(ErrorKind::Http, format!("HTTP/1.1 setup failed: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection { sender })
}

/// A response read to its end, with what the checks need.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) challenges: Result<Vec<Challenge>, String>,
    pub(super) set_cookies: Vec<(String, String)>,
    pub(super) persistent_auth: bool,
    /// The server will close the connection after this response.
    pub(super) closing: bool,
}

impl Connection {
    pub(super) async fn send(
        &mut self,
        target: &Target,
        authorization: Option<&HeaderValue>,
        cookie: Option<&str>,
    ) -> Result<Answer, Failure> {
        let mut request = Request::get(target.path.as_str())
            .header(HOST, target.authority.as_str())
            .header(
                USER_AGENT,
                concat!("kerbside-bench/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::new(ErrorKind::Http, format!("bad request: {e}")))?;
        if let Some(value) = authorization {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
            request.headers_mut().insert(COOKIE, cookie);
        }
        let http_error =
            |e: hyper::Error| Failure::new(ErrorKind::Http, format!("connection failed: {e}"));
        self.sender.ready().await.map_err(http_error)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(http_error)?;
        let (head, body) = response.into_parts();
        body.collect().await.map_err(|e| {
            Failure::new(
                ErrorKind::Http,
                format!("the response body was cut off: {e}"),
            )
        })?;
        let challenges = parse_challenges(
            head.headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .map_err(|e| format!("malformed WWW-Authenticate header: {e}"));
        let set_cookies = head
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(set_cookie_pair)
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let header_is = |name, value: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        Ok(Answer {
            status: head.status,
            persistent_auth: header_is(http::HeaderName::from_static("persistent-auth"), "true"),
            closing: header_is(CONNECTION, "close") || self.sender.is_closed(),
            challenges,
            set_cookies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_loopback() {
        for ip in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            assert!(
                is_loopback(ip.parse().unwrap_or_else(|_| unreachable!())),
                "{ip}"
            );
        }
        for ip in ["10.0.0.1", "192.0.2.1", "::2", "2001:db8::1"] {
            assert!(
                !is_loopback(ip.parse().unwrap_or_else(|_| unreachable!())),
                "{ip}"
            );
        }
    }
}
