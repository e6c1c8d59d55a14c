//! New connections: TCP, a proxy's `CONNECT` tunnel (and its `407`), TLS, all
//! within the connect timeout.

use std::time::Duration;

use http::header::{HeaderValue, HOST, PROXY_AUTHORIZATION};
use http::Request;
use hyper_util::rt::TokioIo;

use super::attempt::{drain, Failure};
use super::event::{redacted, Event, Observer};
use super::proxy_auth::{ProxyAuth, ProxyStep};
use super::Client;
use crate::conn::{establish, proxy_connection, proxy_h1, tcp, Conn, Origin, ProxyIo};
use crate::error::{Error, ErrorKind};
use crate::proxy::ProxyAddr;
use kerbside_proto::driver::ProxyReconnect;
use std::sync::atomic::Ordering;

/// A `CONNECT` tunnel opened by [`Client::open_tunnel_stream`].
#[derive(Debug)]
pub enum TunnelStream {
    /// The TCP connection to a plain `http://` proxy, carrying the tunnel.
    Tcp {
        /// The connection; what is written goes through the tunnel.
        stream: tokio::net::TcpStream,
        /// Bytes from the far end already read behind the proxy's `200`: they
        /// come before anything read from `stream`.
        buffered: bytes::Bytes,
    },
    /// Any other tunnel (TLS to an `https://` proxy).
    Io(TokioIo<hyper::upgrade::Upgraded>),
}

impl Client {
    /// A new connection to `origin` (through its proxy, if any), within the
    /// connect timeout.
    pub(super) async fn new_conn(
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
            tls: route.as_ref().map_or(origin.tls, |p| p.tls),
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

    pub(super) async fn connect(
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
        let (conn, peer) = match route {
            None => {
                let (stream, peer) = tcp(&host, port).await?;
                (
                    establish(stream, origin, tls, &self.config.tls, id).await?,
                    peer,
                )
            }
            Some(proxy) => {
                let (stream, peer) = self.proxy_connection(&proxy).await?;
                (
                    self.through_proxy(stream, proxy, origin, tls, id, observer)
                        .await?,
                    peer,
                )
            }
        };
        observer.event(&Event::Connected {
            conn: id,
            peer,
            protocol: conn.protocol(),
        });
        Ok(conn)
    }

    /// A connection (TCP, or TLS for an `https://` proxy) to `proxy`.
    async fn proxy_connection(&self, proxy: &ProxyAddr) -> Result<(ProxyIo, String), Error> {
        proxy_connection(proxy, &self.tls_proxy, &self.config.proxy_tls).await
    }

    /// HTTP to `origin` over `stream` to `proxy`: requests in absolute form for
    /// `http://`, a `CONNECT` tunnel and TLS inside it for `https://`.
    async fn through_proxy(
        &self,
        stream: ProxyIo,
        proxy: ProxyAddr,
        origin: &Origin,
        tls: &std::sync::Arc<rustls::ClientConfig>,
        id: u64,
        observer: &dyn Observer,
    ) -> Result<Conn, Failure> {
        let (host, port) = (proxy.host.clone(), proxy.port);
        Ok(match proxy {
            _ if !origin.tls => {
                observer.event(&Event::Proxy {
                    host,
                    port,
                    tunnel: false,
                });
                let mut conn = establish(stream, origin, tls, &self.config.tls, id).await?;
                conn.via_proxy = true;
                conn
            }
            proxy => {
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
        })
    }

    /// Opens a `CONNECT` tunnel to `host:port` through the proxy the settings name
    /// for `https://host:port`, authenticating to the proxy (`407`) on the same
    /// connection, within the connect timeout; nothing is spoken inside it (no TLS).
    /// For a forward proxy that passes the tunnel on to its own client.
    ///
    /// Fails with [`ErrorKind::InvalidUrl`] when the settings send `host` directly
    /// (open a TCP connection instead), with [`Error::proxy_status`] set when the
    /// proxy refused the tunnel.
    pub async fn open_tunnel(
        &self,
        host: &str,
        port: u16,
        observer: &dyn Observer,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, Error> {
        let (upgraded, _) = self.open_upgraded(host, port, observer).await?;
        Ok(TokioIo::new(upgraded))
    }

    /// [`Client::open_tunnel`], giving the tunnel's TCP connection itself when
    /// nothing is layered on it (a plain `http://` proxy: no TLS to the proxy),
    /// with the bytes the proxy sent after its `200` that were already read, so
    /// that the caller can move the bytes with the kernel (`splice(2)`).
    pub async fn open_tunnel_stream(
        &self,
        host: &str,
        port: u16,
        observer: &dyn Observer,
    ) -> Result<TunnelStream, Error> {
        let (upgraded, proxy_tls) = self.open_upgraded(host, port, observer).await?;
        if proxy_tls {
            return Ok(TunnelStream::Io(TokioIo::new(upgraded)));
        }
        let parts = match upgraded.downcast::<TokioIo<ProxyIo>>() {
            Ok(parts) => parts,
            Err(upgraded) => return Ok(TunnelStream::Io(TokioIo::new(upgraded))),
        };
        let any: Box<dyn std::any::Any + Send> = parts.io.into_inner();
        match any.downcast::<tokio::net::TcpStream>() {
            Ok(tcp) => Ok(TunnelStream::Tcp {
                stream: *tcp,
                buffered: parts.read_buf,
            }),
            // `proxy_connection` boxes the bare TCP stream for a plain proxy.
            Err(_) => Err(Error::new(
                ErrorKind::Http,
                format!("the tunnel to {host}:{port} is not the TCP connection it was opened on"),
            )),
        }
    }

    /// The upgraded `CONNECT` tunnel, and whether the proxy is spoken to with TLS.
    async fn open_upgraded(
        &self,
        host: &str,
        port: u16,
        observer: &dyn Observer,
    ) -> Result<(hyper::upgrade::Upgraded, bool), Error> {
        let origin = Origin {
            tls: true,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port,
        };
        let Some(proxy) = self.config.proxy.route(&origin) else {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("no proxy is set for {host}:{port}"),
            ));
        };
        observer.event(&Event::Connecting {
            host: proxy.host.clone(),
            port: proxy.port,
            tls: proxy.tls,
        });
        let open = async {
            let (stream, _) = self.proxy_connection(&proxy).await?;
            observer.event(&Event::Proxy {
                host: proxy.host.clone(),
                port: proxy.port,
                tunnel: true,
            });
            self.tunnel(stream, &proxy, &origin, observer).await
        };
        let result = match self.config.connect_timeout {
            None => open.await,
            Some(limit) => match tokio::time::timeout(limit, open).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "opening a tunnel to {host}:{port} through the proxy {}:{} timed \
                             out after {}",
                            proxy.host,
                            proxy.port,
                            seconds(limit)
                        ),
                    ))
                }
            },
        };
        match result {
            Ok(upgraded) => Ok((upgraded, proxy.tls)),
            Err(Failure::Fatal(e) | Failure::Restart(_, e)) => Err(e),
            Err(Failure::Http11Required) => Err(Error::new(
                ErrorKind::Http,
                "the proxy answered CONNECT with HTTP_1_1_REQUIRED",
            )),
        }
    }

    /// A new connection to `proxy` after it closed the one its exchange was on
    /// (once; the driver says whether the exchange goes on or starts over).
    async fn reconnect_proxy(
        &self,
        auth: &mut ProxyAuth,
        proxy: &ProxyAddr,
    ) -> Result<hyper::client::conn::http1::SendRequest<crate::body::WireBody>, Failure> {
        if let ProxyReconnect::GiveUp(_) = auth.handle_closed() {
            return Err(Failure::Fatal(Error::new(
                ErrorKind::Auth,
                format!(
                    "the proxy {}:{} closed the connection in the middle of its \
                     authentication exchange, twice",
                    proxy.host, proxy.port
                ),
            )));
        }
        let (stream, _) = self.proxy_connection(proxy).await?;
        Ok(proxy_h1(stream).await?)
    }

    /// Opens a `CONNECT` tunnel to `origin` through `proxy`, authenticating to the
    /// proxy (407) on the same connection.
    pub(super) async fn tunnel(
        &self,
        stream: ProxyIo,
        proxy: &ProxyAddr,
        origin: &Origin,
        observer: &dyn Observer,
    ) -> Result<hyper::upgrade::Upgraded, Failure> {
        let mut sender = proxy_h1(stream).await?;
        let authority = format!("{}:{}", origin.authority_host(), origin.port);
        let mut auth = ProxyAuth::new(proxy.clone(), self.config.auth.max_auth_rounds)
            .for_request("CONNECT", authority.clone());
        if self.proxy_wants_negotiate(proxy) {
            auth.preempt_negotiate(self, observer).await;
        } else {
            auth.preempt_digest(self, observer);
        }
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
            let sent = match sender.ready().await {
                Ok(()) => sender.send_request(request).await.map_err(|e| {
                    Error::with_source(
                        ErrorKind::Http,
                        format!(
                            "the proxy {}:{} did not answer CONNECT: {e}",
                            proxy.host, proxy.port
                        ),
                        e,
                    )
                }),
                Err(e) => Err(Error::with_source(
                    ErrorKind::Http,
                    format!("the proxy closed the connection: {e}"),
                    e,
                )),
            };
            let response = match sent {
                Ok(r) => r,
                // The proxy went away after its challenge: its exchange starts over
                // on a new connection, once.
                Err(e) if auth.mid_exchange() => {
                    observer.event(&Event::Retrying {
                        reason: e.to_string(),
                    });
                    sender = self.reconnect_proxy(&mut auth, proxy).await?;
                    continue;
                }
                Err(e) => return Err(Failure::Fatal(e)),
            };
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
                        sender = self.reconnect_proxy(&mut auth, proxy).await?;
                    }
                }
                ProxyStep::Done if status.is_success() => {
                    if auth.negotiated() {
                        self.learn_proxy_negotiate(proxy);
                    }
                    return hyper::upgrade::on(response).await.map_err(|e| {
                        Failure::Fatal(Error::with_source(
                            ErrorKind::Http,
                            format!("the proxy accepted CONNECT but the tunnel failed: {e}"),
                            e,
                        ))
                    });
                }
                ProxyStep::Done => {
                    return Err(Failure::Fatal(
                        Error::new(
                            ErrorKind::Http,
                            format!(
                                "the proxy {}:{} refused to open a tunnel to {authority}: \
                                 {status}",
                                proxy.host, proxy.port
                            ),
                        )
                        .with_proxy_status(status.as_u16()),
                    ));
                }
            }
        }
    }
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
