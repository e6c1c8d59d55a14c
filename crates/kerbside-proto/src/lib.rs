//! The sans-IO core of kerbside: HTTP authentication grammar, schemes and policy.
//!
//! Nothing here opens a socket, reads a clock or calls GSSAPI. Callers hand in header values
//! as bytes and get back typed values, decisions, and header values to send.
//!
//! - [`header`]: parse and format `WWW-Authenticate`, `Authorization`, `Authentication-Info`
//!   and their proxy counterparts (RFC 9110 §11, RFC 7615).
//! - [`driver`]: the client's per-request decisions (restart, preemptive credentials,
//!   no downgrade, stale Digest nonces, 401 loops) as a typed state machine.
//! - [`forward_proxy`]: the local forward proxy's routes, failover, allow lists.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acceptor_names;
pub mod cert_names;
pub mod channel_binding;
pub mod cookie;
mod der;
pub mod driver;
pub mod forward_proxy;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod hop_by_hop;
pub mod kdc_probe;
pub mod keytab;
pub mod krb5;
pub mod local_guard;
pub mod mechanism;
pub mod netrc;
pub mod pac;
pub mod policy;
pub mod proxy_protocol;
pub mod replay_file;
pub mod request_path;
pub mod scheme;
pub mod server_decision;
pub mod spnego;
pub mod target;

pub use header::{
    format_challenges, parse_challenges, AuthData, AuthParam, AuthenticationInfo, Challenge,
    Credentials, HeaderError, HeaderErrorKind, Scheme,
};
pub use mechanism::{Mechanism, Step};
pub use policy::{
    Chosen, MutualAuth, PlainHttpAuth, PolicyError, SchemeKind, SchemePolicy, SchemeRefusal,
    Transport,
};
pub use target::{TargetName, TargetNameSettings};
