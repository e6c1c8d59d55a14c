//! Where routes come from: the seam between the proxy and whatever decides the
//! route of a request. [`FixedRouteSource`] serves `--proxy`/`--noproxy` and the
//! environment; [`PacRouteSource`](crate::pac::PacRouteSource) serves `--pac`
//! (the `kerbside-pac` crate evaluates the script), returning what
//! `FindProxyForURL` returned, parsed with
//! [`parse_pac_result`](kerbside_proto::forward_proxy::route::parse_pac_result).

use std::future::Future;
use std::pin::Pin;

use kerbside_proto::forward_proxy::route::{FixedRoutes, Route};

/// What a route is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuery {
    /// The URL as a PAC file sees it: `http://host/path` for plain HTTP,
    /// `https://host:port/` for a tunnel (no path: it is inside TLS).
    pub url: String,
    /// The host, lower case, no brackets.
    pub host: String,
    /// The port.
    pub port: u16,
    /// True for a `CONNECT` tunnel.
    pub tunnel: bool,
}

/// A boxed future of a route.
pub type RouteFuture<'a> = Pin<Box<dyn Future<Output = Route> + Send + 'a>>;

/// Decides the route of each request. Never fails: a source that cannot decide
/// (a broken PAC file) answers `DIRECT` with the reason.
pub trait RouteSource: Send + Sync {
    /// The route for `query`.
    fn route<'a>(&'a self, query: &'a RouteQuery) -> RouteFuture<'a>;

    /// A name for logs and `--check`: `--proxy`, `environment`, `PAC file URL`.
    fn describe(&self) -> String;
}

/// Fixed routes: `--proxy` and `--noproxy`, or `https_proxy`, `http_proxy` and
/// `no_proxy` from the environment.
#[derive(Debug, Clone, Default)]
pub struct FixedRouteSource {
    /// The routes.
    pub routes: FixedRoutes,
}

impl RouteSource for FixedRouteSource {
    fn route<'a>(&'a self, query: &'a RouteQuery) -> RouteFuture<'a> {
        let route = self.routes.route(&query.host, query.tunnel);
        Box::pin(std::future::ready(route))
    }

    fn describe(&self) -> String {
        self.routes.source.to_owned()
    }
}
