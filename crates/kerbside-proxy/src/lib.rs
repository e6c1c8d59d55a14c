//! `kerbside proxy`: a local HTTP forward proxy for tools behind a corporate proxy
//! that answers `407` to everything.
//!
//! Tools (pip, git, curl, npm...) point at it (`127.0.0.1:3128` by default) with no
//! credentials; it chooses a route for each request (an upstream proxy, in order
//! with failover, or direct) and authenticates to the upstream with the user's
//! credentials (Negotiate, NTLM, Basic) through [`kerbside_client`], on the same
//! connection for a connection-bound exchange.
//!
//! - [`config`]: [`ProxyConfig`], what the proxy is built from;
//! - [`route_source`]: where routes come from ([`RouteSource`]: a fixed list, the
//!   environment) and [`pac`] ([`pac::PacRouteSource`]: a PAC file, evaluated by
//!   [`kerbside_pac`]);
//! - [`upstreams`]: one client per upstream, failover, the credential allow list;
//! - `access`: who may use the proxy (addresses, the socket owner's uid);
//! - `forward`: plain-HTTP requests; `connect`: `CONNECT` tunnels; `splice`: the
//!   bytes of a tunnel (`splice_tcp`: with `splice(2)` between two TCP sockets);
//! - `server`: the listener, client connections, graceful shutdown;
//! - [`metrics`]: Prometheus counters.
//!
//! Every decision that needs no network is in
//! [`kerbside_proto::forward_proxy`].
//!
//! ```no_run
//! use kerbside_proxy::{ProxyConfig, ProxyServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let config = ProxyConfig::default();
//! let server = ProxyServer::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.serve(std::future::pending()).await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod access;
pub mod config;
mod connect;
mod fd_limit;
mod forward;
pub mod metrics;
mod observe;
pub mod pac;
mod response;
pub mod route_source;
mod server;
#[cfg(target_os = "linux")]
mod sock_diag;
mod splice;
#[cfg(target_os = "linux")]
mod splice_tcp;
#[cfg(test)]
mod test_support;
pub mod upstreams;

pub use config::ProxyConfig;
pub use fd_limit::raise_open_file_limit;
pub use route_source::{FixedRouteSource, RouteSource};
pub use server::ProxyServer;
pub use upstreams::Upstreams;
