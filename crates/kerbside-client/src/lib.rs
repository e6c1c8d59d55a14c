//! An HTTP client whose connections carry a Negotiate handshake.
//!
//! A Negotiate (or NTLM) exchange authenticates a connection, not a message: every
//! leg of `401 → token → 401/200` must travel on the same TCP connection, and a
//! GSSAPI context must never outlive its exchange. [`Client::send`] runs each
//! exchange on one connection with a fresh
//! [`NegotiateInitiator`](kerbside_gssapi::NegotiateInitiator), checks the server's
//! final token, keeps authenticated connections for the origin and identity, and
//! skips the first 401 for origins known to want Negotiate.
//!
//! Policy lives in one [`SchemePolicy`](kerbside_proto::SchemePolicy): the strongest
//! offered scheme that is enabled, no silent downgrade, and no credentials over
//! plain `http://` unless the host was opted in.
#![warn(missing_docs)]

mod body;
mod client;
mod conn;
mod error;
pub mod keyring;
mod proxy;
mod redact;
mod schemes;
mod tls;

pub use body::{BoxError, RequestBody, StreamBody};
pub use client::{
    AuthSettings, Client, ClientConfig, Event, Observer, Outcome, Preemptive, TunnelStream,
    DEFAULT_CONNECT_TIMEOUT,
};
pub use error::{Error, ErrorKind};
pub use kerbside_gssapi::{ClientCredentials, Delegation};
pub use keyring::{
    CredentialSource, CredentialSources, FoundCredential, Keyring, KeyringCredential, KeyringError,
    KeyringSecret, Secret,
};
pub use proxy::{parse_proxy, split_list, ProxySettings};
pub use redact::redact_header;
pub use tls::TlsSettings;
