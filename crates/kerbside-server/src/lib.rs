//! Server side of kerbside: a tower [`NegotiateLayer`] that authenticates requests
//! with Kerberos (Negotiate, RFC 4559) against a keytab, and the gate built on it: an
//! authenticating reverse proxy ([`gate`]).
//!
//! The layer drops into any tower stack (axum, plain hyper):
//!
//! ```no_run
//! use kerbside_gssapi::{AcceptorConfig, NegotiateAcceptor};
//! use kerbside_server::{Authenticated, NegotiateLayer};
//! use tower::{service_fn, ServiceBuilder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
//!     keytab: Some("/etc/krb5.keytab".into()),
//!     acceptor_name: None,
//! })?;
//! let service = ServiceBuilder::new()
//!     .layer(NegotiateLayer::new(acceptor))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let who = &req.extensions().get::<Authenticated>().expect("set by the layer").principal;
//!         Ok::<_, std::convert::Infallible>(http::Response::new(format!("hello {who}")))
//!     }));
//! # let _ = service; Ok(()) }
//! ```
//!
//! Replayed tokens are refused by default, across restarts too: the layer checks them
//! in memory and keeps what it accepted in a replay cache file
//! ([`NegotiateConfig::replay_cache`]; by default under `KRB5RCACHEDIR`, else
//! `/var/tmp`, named for the acceptor and the user id). Two layers for the same
//! service in one process or on one machine need a file each: the second finds the
//! default file held and checks replays with MIT's (slower) file cache instead, saying
//! so in a warning.
#![warn(missing_docs)]

pub mod access;
mod ad_account;
pub mod ad_groups;
mod auth;
mod body;
mod builder;
pub mod canonical_path;
pub mod cgi;
pub mod check;
pub mod delegation;
mod drain;
mod error;
#[cfg(feature = "axum")]
pub mod extract;
pub mod forward_auth;
mod forward_body;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod health;
mod hop_by_hop;
mod identity;
pub mod identity_headers;
mod keytab;
pub mod listener;
pub mod metrics;
pub mod ntlm_winbind;
pub mod passwords;
pub mod per_connection;
mod proxy;
pub mod proxy_protocol;
pub mod redis_replay;
pub mod redis_url;
pub mod session;
mod spool;
mod tls;
pub mod usermap;
mod wbclient;
pub mod whoami;
mod winbind_account;

pub use auth::{
    http11_required_as_error, AuthMode, BasicFallback, ChannelBindingPolicy, Http11Required,
    NegotiateConfig, NegotiateLayer, NegotiateService, SharedReplayConfig,
};
pub use body::{BoxError, GateBody};
pub use builder::{ConfigError, NegotiateLayerBuilder};
pub use error::{ParseSettingError, SetupError};
pub use hop_by_hop::strip_hop_by_hop;
pub use identity::{Authenticated, DomainAccount, DomainGroup, LoginDetails, LoginVia};
pub use per_connection::{ConnectionAuth, ConnectionSupply, PerConnection, TlsChannel};
pub use proxy::{
    IdentitySigner, ProxyLimits, ReverseProxy, DEFAULT_IDENTITY_HEADER, DEFAULT_MAX_BODY,
    DEFAULT_UPSTREAM_TIMEOUT,
};
pub use tls::load_server_config;
