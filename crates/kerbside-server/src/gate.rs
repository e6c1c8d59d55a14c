//! The gate: an authenticating reverse proxy. TLS (rustls) or plain HTTP on one
//! listener, [`NegotiateLayer`](crate::NegotiateLayer) in front of a
//! [`ReverseProxy`](crate::ReverseProxy).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use kerbside_gssapi::{AcceptorConfig, NegotiateAcceptor};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

use crate::auth::NegotiateLayer;
use crate::proxy::ReverseProxy;

/// The largest request head accepted (Kerberos tokens with big PACs need room);
/// beyond it the client gets `431`.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Facts about the connection a request came on, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Whether the client came over TLS.
    pub tls: bool,
}

/// Everything the gate is configured with.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM); `None` serves plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The keytab; `None` uses `KRB5_KTNAME`.
    pub keytab: Option<PathBuf>,
    /// Accept only tickets for this service name.
    pub acceptor: Option<String>,
    /// Where authenticated requests go.
    pub upstream: Uri,
    /// The header that carries the principal upstream.
    pub identity_header: HeaderName,
}

/// A gate bound to its listener, ready to [`serve`](Gate::serve).
pub struct Gate {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    acceptor: NegotiateAcceptor,
    proxy: ReverseProxy,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Loads the keytab and TLS material and binds the listener. Every error is a
    /// sentence for the operator.
    pub async fn bind(config: &GateConfig) -> Result<Self, String> {
        let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
            keytab: config.keytab.clone(),
            acceptor_name: config.acceptor.clone(),
        })
        .map_err(|e| format!("cannot use the keytab: {e}"))?;
        let tls = match &config.tls {
            Some((cert, key)) => Some(TlsAcceptor::from(crate::tls::load_server_config(
                cert, key,
            )?)),
            None => None,
        };
        let proxy = ReverseProxy::new(&config.upstream, config.identity_header.clone())?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        Ok(Self {
            listener,
            tls,
            acceptor,
            proxy,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// True if the gate serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (up to
    /// 30 seconds).
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_buf_size(MAX_HEADER_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let info = ConnectionInfo {
                remote,
                tls: self.tls.is_some(),
            };
            let service = ServiceBuilder::new()
                .map_request(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(info);
                    req
                })
                .layer(NegotiateLayer::new(self.acceptor.clone()))
                .service(self.proxy.clone());
            let service = TowerToHyperService::new(service);
            let builder = builder.clone();
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        let stream =
                            match tokio::time::timeout(Duration::from_secs(30), tls.accept(tcp))
                                .await
                            {
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
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        if let Err(e) = watcher.watch(conn.into_owned()).await {
                            tracing::debug!(%remote, "connection ended: {e}");
                        }
                    }
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                        if let Err(e) = watcher.watch(conn.into_owned()).await {
                            tracing::debug!(%remote, "connection ended: {e}");
                        }
                    }
                }
            });
        }
        tracing::info!("shutting down: finishing requests in flight");
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after 30 s; closing them");
        }
    }
}
