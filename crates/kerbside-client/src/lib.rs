//! An HTTP client whose connections carry a Negotiate handshake.
//!
//! A Negotiate (or NTLM) exchange authenticates a connection, not a message: every
//! leg of `401 → token → 401/200` must travel on the same TCP connection, and a
//! GSSAPI context must never outlive its exchange. [`Client::send`] opens a
//! connection, sends the request, and if the server answers `401 Negotiate`, runs the
//! exchange on that same connection with a fresh [`NegotiateInitiator`], checks the
//! server's final token, and returns the final response.
//!
//! Credentials never go over plain `http://` unless the host was opted in
//! ([`AuthSettings::plain_http`]).
//!
//! [`NegotiateInitiator`]: kerbside_gssapi::NegotiateInitiator
#![warn(missing_docs)]

mod client;
mod error;
mod redact;
mod tls;

pub use client::{AuthSettings, Client, ClientConfig, Event, Observer, Outcome, TargetSource};
pub use error::{Error, ErrorKind};
pub use redact::redact_header;
pub use tls::TlsSettings;
