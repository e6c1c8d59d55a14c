//! Connections: TCP, TLS with ALPN, HTTP/1.1 or HTTP/2, and what a handshake on
//! them needs to know (the TLS channel binding, whether they are authenticated).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::WireBody;
use crate::error::{Error, ErrorKind};

/// Scheme, host and port of a URL: what a connection is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub(crate) fn of(uri: &Uri) -> Result<Self, Error> {
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
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self { tls, host, port })
    }

    /// The port if it is not the scheme's default.
    pub(crate) fn explicit_port(&self) -> Option<u16> {
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => None,
            (_, p) => Some(p),
        }
    }

    /// The host as it appears in an authority (IPv6 in brackets).
    pub(crate) fn authority_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The `Host` header value.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.explicit_port() {
            None => host,
            Some(p) => format!("{host}:{p}"),
        }
    }
}

/// How requests go over a connection.
pub(crate) enum Sender {
    H1(http1::SendRequest<WireBody>),
    H2(http2::SendRequest<WireBody>),
}

/// One connection and what the client knows about it.
pub(crate) struct Conn {
    pub id: u64,
    pub sender: Sender,
    /// `tls-server-end-point` channel binding data, on TLS.
    pub channel_binding: Option<Vec<u8>>,
    /// A handshake completed on this connection.
    pub authenticated: bool,
    /// Plain HTTP through a forward proxy: requests carry absolute URIs.
    pub via_proxy: bool,
}

impl Conn {
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    pub(crate) fn protocol(&self) -> &'static str {
        if self.is_h2() {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Ready for a new request now (HTTP/1.1: the previous response was read).
    pub(crate) fn is_ready(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_ready(),
            Sender::H2(s) => s.is_ready(),
        }
    }

    pub(crate) async fn send(
        &mut self,
        request: Request<WireBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
        }
    }
}

/// Opens a TCP connection to `host:port`.
pub(crate) async fn tcp(host: &str, port: u16) -> Result<(TcpStream, String), Error> {
    let tcp = TcpStream::connect((host, port)).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Connect,
            format!("cannot connect to {host}:{port}: {e}"),
            e,
        )
    })?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    Ok((tcp, peer))
}

/// How long a proxy's addresses are kept (Chromium keeps a host's addresses a
/// minute when the system resolver gives no TTL).
const PROXY_ADDRESSES_KEPT: Duration = Duration::from_secs(60);

/// At most this many proxy names are kept (a PAC may name many); the oldest go.
const PROXY_NAMES_KEPT: usize = 64;

/// A proxy's name and port, and when its addresses were looked up.
type KeptAddresses = HashMap<(String, u16), (Instant, Arc<[SocketAddr]>)>;

/// The addresses of proxy names looked up in the last [`PROXY_ADDRESSES_KEPT`].
static PROXY_ADDRESSES: Mutex<Option<KeptAddresses>> = Mutex::new(None);

/// A TCP connection to a proxy. A forward proxy opens a new connection to its
/// upstream for every tunnel (a `CONNECT` takes the connection), and a name
/// look-up each time (a hop to a blocking thread, `/etc/hosts`, a DNS query) is
/// work for nothing: a proxy name's addresses are kept for a minute, tried in
/// order, and forgotten when none of them can be connected to.
pub(crate) async fn proxy_tcp(host: &str, port: u16) -> Result<(TcpStream, String), Error> {
    if host.parse::<IpAddr>().is_ok() {
        return tcp(host, port).await;
    }
    let key = (host.to_owned(), port);
    let now = Instant::now();
    let kept = PROXY_ADDRESSES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(&key))
        .filter(|(at, _)| now.duration_since(*at) < PROXY_ADDRESSES_KEPT)
        .map(|(_, addrs)| addrs.clone());
    let cannot = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Connect,
            format!("cannot connect to {host}:{port}: {e}"),
            e,
        )
    };
    let addrs = match kept {
        Some(addrs) => addrs,
        None => {
            let found: Arc<[SocketAddr]> = tokio::net::lookup_host((host, port))
                .await
                .map_err(cannot)?
                .collect();
            let mut map = PROXY_ADDRESSES
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let map = map.get_or_insert_with(HashMap::new);
            if map.len() >= PROXY_NAMES_KEPT {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
            map.insert(key.clone(), (now, found.clone()));
            found
        }
    };
    let mut last = None;
    for addr in addrs.iter() {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok((tcp, addr.to_string()));
            }
            Err(e) => last = Some(e),
        }
    }
    // None answered: look the name up again next time.
    if let Some(map) = PROXY_ADDRESSES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        map.remove(&key);
    }
    Err(cannot(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
    })))
}

/// Speaks HTTP to `origin` over `io` (a TCP stream or a proxy tunnel): TLS first
/// for `https://`, then HTTP/1.1 or HTTP/2 as ALPN decided.
pub(crate) async fn establish<IO>(
    io: IO,
    origin: &Origin,
    tls: &Arc<rustls::ClientConfig>,
    settings: &crate::tls::TlsSettings,
    id: u64,
) -> Result<Conn, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if !origin.tls {
        let sender = handshake_h1(io).await?;
        return Ok(Conn {
            id,
            sender: Sender::H1(sender),
            channel_binding: None,
            authenticated: false,
            via_proxy: false,
        });
    }
    let name = server_name(&origin.host)?;
    let stream = TlsConnector::from(tls.clone())
        .connect(name, io)
        .await
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Tls,
                settings.explain_handshake_failure(&origin.host, origin.port, &e),
                e,
            )
        })?;
    let (_, session) = stream.get_ref();
    let channel_binding = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| kerbside_proto::channel_binding::tls_server_end_point(leaf.as_ref()).ok());
    let h2 = session.alpn_protocol() == Some(b"h2");
    let sender = if h2 {
        Sender::H2(handshake_h2(stream).await?)
    } else {
        Sender::H1(handshake_h1(stream).await?)
    };
    Ok(Conn {
        id,
        sender,
        channel_binding,
        authenticated: false,
        via_proxy: false,
    })
}

/// A connection to a proxy: TCP, or TLS over TCP for an `https://` proxy.
/// (`Any`, so that a plain TCP one can be taken back out of its box.)
pub(crate) trait ProxyStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::any::Any
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> ProxyStream for T {}

/// A connection to a proxy, boxed.
pub(crate) type ProxyIo = Box<dyn ProxyStream>;

/// Opens a connection to `proxy`: TCP, then TLS (offering HTTP/1.1 only, the
/// proxy's name checked against its certificate with `tls`) for an `https://`
/// proxy.
pub(crate) async fn proxy_connection(
    proxy: &crate::proxy::ProxyAddr,
    tls: &Arc<rustls::ClientConfig>,
    settings: &crate::tls::TlsSettings,
) -> Result<(ProxyIo, String), Error> {
    let (stream, peer) = proxy_tcp(&proxy.host, proxy.port).await?;
    if !proxy.tls {
        return Ok((Box::new(stream), peer));
    }
    let name = server_name(&proxy.host)?;
    let stream = TlsConnector::from(tls.clone())
        .connect(name, stream)
        .await
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Tls,
                settings.explain_proxy_handshake_failure(&proxy.host, proxy.port, &e),
                e,
            )
            .of_proxy_tls()
        })?;
    Ok((Box::new(stream), peer))
}

/// The TLS name of `host`: an IP address or a DNS name.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_owned()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("{host} is not a valid host name: {e}"),
            )
        }),
    }
}

/// An HTTP/1.1 connection to a proxy that can be upgraded into a `CONNECT` tunnel.
pub(crate) async fn proxy_h1(io: ProxyIo) -> Result<http1::SendRequest<WireBody>, Error> {
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Http,
            format!("HTTP/1.1 setup with the proxy failed: {e}"),
            e,
        )
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("proxy connection ended: {e}");
        }
    });
    Ok(sender)
}

async fn handshake_h1<IO>(io: IO) -> Result<http1::SendRequest<WireBody>, Error>
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

async fn handshake_h2<IO>(io: IO) -> Result<http2::SendRequest<WireBody>, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| Error::with_source(ErrorKind::Http, format!("HTTP/2 setup failed: {e}"), e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection ended: {e}");
        }
    });
    Ok(sender)
}

/// True if an HTTP/2 error is the server's `HTTP_1_1_REQUIRED`.
pub(crate) fn is_http11_required(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::HTTP_1_1_REQUIRED);
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kept(port: u16) -> Option<Arc<[SocketAddr]>> {
        PROXY_ADDRESSES
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|m| m.get(&("localhost".to_owned(), port)))
            .map(|(_, a)| a.clone())
    }

    #[test]
    fn a_proxy_names_addresses_are_kept_and_forgotten_when_none_answers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (_, peer) = proxy_tcp("localhost", port).await.unwrap();
            assert_eq!(peer, format!("127.0.0.1:{port}"));
            let addrs = kept(port).expect("kept after the first connection");
            assert!(addrs.contains(&SocketAddr::from(([127, 0, 0, 1], port))));
            // The second connection uses the kept addresses.
            proxy_tcp("localhost", port).await.unwrap();
            assert!(Arc::ptr_eq(&addrs, &kept(port).unwrap()));
            // Nothing listens any more: the error names the proxy, and the name is
            // looked up again next time.
            drop(listener);
            let e = proxy_tcp("localhost", port).await.unwrap_err();
            assert!(e.is_connect(), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("cannot connect to localhost:{port}: ")),
                "{e}"
            );
            assert!(kept(port).is_none());
        });
    }
}
