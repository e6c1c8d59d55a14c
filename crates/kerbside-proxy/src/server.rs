//! [`ProxyServer`]: the listener, each client connection (HTTP/1.1 with
//! keep-alive, `CONNECT` upgrades, a deadline on every request head, a bound on
//! connections), and graceful shutdown: no new connections, idle ones closed,
//! in-flight requests and tunnels given a grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Notify, Semaphore};

use crate::access::Access;
use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::response::{closing, text, ProxyBody};
use crate::route_source::RouteSource;
use crate::upstreams::Upstreams;

/// The most bytes of a request head (larger gets `431`).
const MAX_HEAD: usize = 64 * 1024;

/// The listen queue: connections the kernel completes before the proxy accepts
/// them. A burst of new clients (a build starting 1000 downloads) must wait
/// there, not be dropped: a dropped SYN is retried only after 1 s, then 3 s. The
/// kernel caps it at `net.core.somaxconn` (4096 on current Linux); the default of
/// `TcpListener::bind` is 128, which 1000 tunnels opened at once overflowed
/// (`nstat` `TcpExtListenDrops`).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub upstreams: Upstreams,
    pub routes: Arc<dyn RouteSource>,
    pub metrics: Arc<Metrics>,
    pub origin_auth: bool,
    pub connect_timeout: Duration,
    pub tunnel_idle_timeout: Duration,
    pub active: Active,
    next_id: AtomicU64,
}

/// Counts connections and tunnels still running, for a graceful shutdown.
#[derive(Clone, Default)]
pub(crate) struct Active(Arc<(AtomicUsize, Notify)>);

/// One running connection or tunnel.
pub(crate) struct ActiveGuard(Arc<(AtomicUsize, Notify)>);

impl Active {
    pub(crate) fn enter(&self) -> ActiveGuard {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.0.clone())
    }

    async fn idle(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.0 .0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
}

/// The forward proxy, bound to its address.
pub struct ProxyServer {
    listener: TcpListener,
    local: SocketAddr,
    shared: Arc<Shared>,
    access: Access,
    header_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl ProxyServer {
    /// Builds the upstream clients and binds the listening address.
    pub async fn bind(config: ProxyConfig) -> std::io::Result<ProxyServer> {
        let metrics = config.metrics.clone();
        let upstreams = Upstreams::new(&config, metrics.clone())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let listener = listen(config.listen)?;
        let local = listener.local_addr()?;
        Ok(ProxyServer {
            listener,
            local,
            access: Access::new(config.allow.clone(), config.same_user_only),
            shared: Arc::new(Shared {
                upstreams,
                routes: config.routes.clone(),
                metrics,
                origin_auth: config.origin_auth,
                connect_timeout: config
                    .client
                    .connect_timeout
                    .unwrap_or(kerbside_client::DEFAULT_CONNECT_TIMEOUT),
                tunnel_idle_timeout: config.tunnel_idle_timeout,
                active: Active::default(),
                next_id: AtomicU64::new(0),
            }),
            header_timeout: config.header_timeout,
            max_connections: config.max_connections.max(1),
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes idle
    /// connections, and waits up to the grace period for requests and tunnels in
    /// flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopped) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, mostly: let some close.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "refused: {} connections already", self.max_connections);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().unwrap_or(self.local);
            let shared = self.shared.clone();
            let access = self.access.clone();
            let header_timeout = self.header_timeout;
            let mut stopped = stopped.clone();
            let guard = shared.active.enter();
            tokio::spawn(async move {
                let _slot = slot;
                let _guard = guard;
                let refused = access.check(peer, local).await.err();
                if let Some(why) = &refused {
                    tracing::warn!(%peer, "refused, nothing forwarded: {why}");
                    shared
                        .metrics
                        .inc("kerbside_proxy_refused_total", &[("reason", "client")]);
                }
                let service = {
                    let shared = shared.clone();
                    hyper::service::service_fn(move |request: Request<Incoming>| {
                        let shared = shared.clone();
                        let refused = refused.clone();
                        async move {
                            Ok::<_, Infallible>(match refused {
                                Some(why) => closing(
                                    StatusCode::FORBIDDEN,
                                    format!("kerbside proxy: refused: {why}"),
                                ),
                                None => handle(shared, request, peer).await,
                            })
                        }
                    })
                };
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(MAX_HEAD)
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                tokio::pin!(connection);
                let result = tokio::select! {
                    r = connection.as_mut() => r,
                    _ = stopped.changed() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, "client connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        let _ = stop.send(true);
        tracing::info!(
            "shutting down: waiting up to {} s for requests and tunnels in flight",
            self.shutdown_grace.as_secs()
        );
        let _ = tokio::time::timeout(self.shutdown_grace, self.shared.active.idle()).await;
    }
}

/// One request from an allowed client.
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    if request.method() == Method::CONNECT {
        return crate::connect::connect(shared, request, id).await;
    }
    if request.uri().authority().is_none() {
        // `GET /path` with a Host: what a web page can make a browser send to
        // 127.0.0.1:3128. A tool using a proxy always sends the absolute form.
        tracing::warn!(
            request = id,
            %peer,
            method = %request.method(),
            path = request.uri().path(),
            "refused, not forwarded: an origin-form request (a web page?)"
        );
        shared
            .metrics
            .inc("kerbside_proxy_refused_total", &[("reason", "origin-form")]);
        return text(
            StatusCode::FORBIDDEN,
            "kerbside proxy: refused: this is a forward proxy and takes only absolute-form \
             requests (GET http://host/path) and CONNECT; a request for a path on the proxy \
             itself is what a web page would send, so it is not served",
        );
    }
    crate::forward::forward(shared, request, id).await
}
