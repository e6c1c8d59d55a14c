//! [`ProxyConfig`]: everything a [`ProxyServer`](crate::ProxyServer) is built from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kerbside_client::ClientConfig;
use kerbside_proto::forward_proxy::failover::DEFAULT_RETRY_AFTER;
use kerbside_proto::forward_proxy::hosts::ClientAllowList;
use kerbside_proto::forward_proxy::route::CredentialAllowList;

use crate::metrics::Metrics;
use crate::route_source::{FixedRouteSource, RouteSource};

/// The default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3128";

/// How the proxy is configured.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Which client addresses may use it.
    pub allow: ClientAllowList,
    /// On Linux, refuse loopback clients whose socket another user owns (on by
    /// default; `--allow-other-users` turns it off).
    pub same_user_only: bool,
    /// Where routes come from.
    pub routes: Arc<dyn RouteSource>,
    /// Which upstreams may receive the user's credentials.
    pub auth_proxies: CredentialAllowList,
    /// How long a failed upstream is tried last.
    pub retry_after: Duration,
    /// The client settings for upstreams: credentials, schemes, TLS, timeouts. Its
    /// proxy settings are replaced per upstream.
    pub client: ClientConfig,
    /// Answer an origin's `401` for plain-HTTP requests (`--origin-auth`).
    pub origin_auth: bool,
    /// How long a client connection may take to send a request head.
    pub header_timeout: Duration,
    /// How long a tunnel may carry nothing in either direction, and a write to a
    /// peer that does not read may wait.
    pub tunnel_idle_timeout: Duration,
    /// The most client connections at once.
    pub max_connections: usize,
    /// How long in-flight requests and tunnels get after SIGTERM.
    pub shutdown_grace: Duration,
    /// Where the counters and histograms go (`--metrics`), shared with a
    /// [`PacRouteSource`](crate::pac::PacRouteSource).
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("listen", &self.listen)
            .field("allow", &self.allow)
            .field("same_user_only", &self.same_user_only)
            .field("auth_proxies", &self.auth_proxies)
            .field("retry_after", &self.retry_after)
            .field("origin_auth", &self.origin_auth)
            .finish_non_exhaustive()
    }
}

impl Default for ProxyConfig {
    /// Loopback, port 3128, the same user only, every request direct (no
    /// upstream), credentials to no upstream.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            allow: ClientAllowList::default(),
            same_user_only: true,
            routes: Arc::new(FixedRouteSource::default()),
            auth_proxies: CredentialAllowList::default(),
            retry_after: DEFAULT_RETRY_AFTER,
            client: ClientConfig::default(),
            origin_auth: false,
            header_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(600),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
            metrics: Arc::new(Metrics::default()),
        }
    }
}
