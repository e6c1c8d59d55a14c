//! What [`NegotiateLayer`](crate::NegotiateLayer) needs to know about the connection a
//! request came on, and the one helper that provides it: [`PerConnection`].
//!
//! HTTP authentication is per request, but some of it is tied to the connection: the
//! identity in connection mode and NTLM's three legs stay with one TCP connection, and
//! channel bindings name the TLS certificate the client saw. A tower layer sees only
//! requests, so whoever accepts connections makes one `PerConnection` per connection
//! and puts it in front of the service:
//!
//! - **axum**: `app.into_make_service_with_connect_info::<PerConnection>()` (feature
//!   `axum`, on by default): axum makes one per accepted TCP connection.
//! - **hyper, or your own accept loop** (TLS, for example): wrap the per-connection
//!   service with [`PerConnection::new`] as a [`Layer`].
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn run(layer: kerbside_server::NegotiateLayer) -> std::io::Result<()> {
//! use axum::{routing::get, Router};
//! use kerbside_server::{Authenticated, PerConnection};
//!
//! let app = Router::new()
//!     .route("/", get(|who: Authenticated| async move { format!("hello {}", who.principal) }))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<PerConnection>()).await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use kerbside_gssapi::AcceptContext;
use kerbside_proto::server_decision::ConnectionLogin;

/// Facts about the connection a request came on, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Whether the client came over TLS.
    pub tls: bool,
}

/// Authentication state of one client connection, for [`AuthMode::Connection`](crate::AuthMode::Connection). Kept by
/// [`PerConnection`]: one per connection.
#[derive(Debug, Default)]
pub struct ConnectionAuth {
    state: Mutex<ConnState>,
}

#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Who authenticated this connection.
    pub(crate) principal: Option<ConnectionLogin>,
    /// A multi-leg exchange waiting for its next token.
    pub(crate) pending: Option<AcceptContext>,
    /// An NTLM exchange that sent its CHALLENGE and waits for the AUTHENTICATE.
    pub(crate) ntlm: Option<kerbside_proto::scheme::ntlm::server::ExpectAuthenticate>,
    /// The same, inside SPNEGO (under `Negotiate`).
    pub(crate) spnego_ntlm: Option<kerbside_proto::spnego::SpnegoExpectAuthenticate>,
}

impl ConnectionAuth {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How a server hands [`NegotiateLayer`](crate::NegotiateLayer) each request's
/// [`PerConnection`], said to
/// [`NegotiateLayerBuilder::per_connection`](crate::NegotiateLayerBuilder::per_connection).
/// A layer that keeps state per connection (connection mode, NTLM, channel bindings
/// required) refuses to build without it; a request that comes without one anyway
/// gets `503`, and the log names the way promised here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionSupply {
    /// axum makes one per accepted connection: serve the app with
    /// `axum::serve(listener, app.into_make_service_with_connect_info::<PerConnection>())`.
    AxumConnectInfo,
    /// Your accept loop (hyper, TLS) wraps each accepted connection's service in
    /// `PerConnection::new(peer).layer(service)` (with the certificate for TLS).
    Layer,
}

impl ConnectionSupply {
    /// What to do so requests carry their [`PerConnection`], for error messages.
    pub(crate) fn how(self) -> &'static str {
        match self {
            Self::AxumConnectInfo => {
                "serve the app with axum::serve(listener, \
                 app.into_make_service_with_connect_info::<PerConnection>())"
            }
            Self::Layer => {
                "wrap each accepted connection's service in PerConnection::new(peer).layer(service)"
            }
        }
    }
}

/// TLS facts of the connection a request came on, for channel bindings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsChannel {
    /// The `tls-server-end-point` binding of the server's certificate.
    pub binding: Option<Arc<Vec<u8>>>,
}

/// The facts of one accepted connection: the peer's address, the TLS channel binding
/// of the server's certificate (if the connection is TLS), and the authentication
/// state that connection mode and NTLM keep with the connection.
///
/// Make exactly one per accepted connection (clones share the state): a
/// `PerConnection` reused across connections would let one client ride on another's
/// login.
#[derive(Debug, Clone)]
pub struct PerConnection {
    peer: Option<SocketAddr>,
    tls: TlsChannel,
    auth: Arc<ConnectionAuth>,
}

impl PerConnection {
    /// A plain-TCP connection from `peer`.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer: Some(peer),
            tls: TlsChannel { binding: None },
            auth: Arc::default(),
        }
    }

    /// The connection is TLS with this server certificate (DER, the leaf): its RFC
    /// 5929 `tls-server-end-point` binding is what tokens are checked against. A
    /// certificate whose signature algorithm names no hash gives no binding (logged).
    #[must_use]
    pub fn with_server_certificate(mut self, leaf_der: &[u8]) -> Self {
        match kerbside_proto::channel_binding::tls_server_end_point(leaf_der) {
            Ok(binding) => self.tls.binding = Some(Arc::new(binding)),
            Err(e) => tracing::warn!("no channel bindings for this certificate: {e}"),
        }
        self
    }

    /// The connection is TLS with this ready-made `tls-server-end-point` binding
    /// (computed once for the server's certificate, shared by every connection).
    #[must_use]
    pub fn with_tls_binding(mut self, binding: Arc<Vec<u8>>) -> Self {
        self.tls.binding = Some(binding);
        self
    }

    /// The client's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the connection carries a TLS channel binding.
    pub fn is_tls(&self) -> bool {
        self.tls.binding.is_some()
    }

    pub(crate) fn auth(&self) -> &Arc<ConnectionAuth> {
        &self.auth
    }

    pub(crate) fn binding(&self) -> Option<&Arc<Vec<u8>>> {
        self.tls.binding.as_ref()
    }

    /// The `tls-server-end-point` binding, to share with the next connections
    /// ([`with_tls_binding`](Self::with_tls_binding)) instead of hashing the
    /// certificate again.
    pub fn tls_binding(&self) -> Option<Arc<Vec<u8>>> {
        self.tls.binding.clone()
    }

    /// The `PerConnection` of a request: put there by [`PerConnection`]'s layer, or
    /// by axum's connect-info.
    pub fn of<B>(request: &Request<B>) -> Option<&Self> {
        Self::from_extensions(request.extensions())
    }

    pub(crate) fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        if let Some(this) = extensions.get::<Self>() {
            return Some(this);
        }
        #[cfg(feature = "axum")]
        if let Some(axum::extract::ConnectInfo(this)) =
            extensions.get::<axum::extract::ConnectInfo<Self>>()
        {
            return Some(this);
        }
        None
    }
}

impl<S> Layer<S> for PerConnection {
    type Service = WithConnection<S>;
    fn layer(&self, inner: S) -> WithConnection<S> {
        WithConnection {
            inner,
            connection: self.clone(),
        }
    }
}

/// The service made by [`PerConnection`]'s layer: adds the connection's facts to each
/// request.
#[derive(Debug, Clone)]
pub struct WithConnection<S> {
    inner: S,
    connection: PerConnection,
}

impl<S, B> Service<Request<B>> for WithConnection<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.connection.clone());
        self.inner.call(request)
    }
}

#[cfg(feature = "axum")]
impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PerConnection
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self::new(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_connection_state_and_new_ones_do_not() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let a = PerConnection::new(peer);
        let b = a.clone();
        let c = PerConnection::new(peer);
        assert!(Arc::ptr_eq(a.auth(), b.auth()));
        assert!(!Arc::ptr_eq(a.auth(), c.auth()));
        assert!(!a.is_tls());
        assert!(a.clone().with_tls_binding(Arc::new(vec![1])).is_tls());
    }

    #[test]
    fn the_layer_puts_it_in_every_request() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut service =
            PerConnection::new(peer).layer(tower::service_fn(|req: Request<()>| async move {
                Ok::<_, std::convert::Infallible>(PerConnection::of(&req).and_then(|c| c.peer()))
            }));
        let seen = futures_util::FutureExt::now_or_never(service.call(Request::new(())));
        assert_eq!(seen, Some(Ok(Some(peer))));
    }
}
