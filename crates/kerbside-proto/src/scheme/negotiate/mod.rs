//! Negotiate (SPNEGO over HTTP, RFC 4559).
//!
//! [`client`] drives one exchange as typed states: [`client::ExpectChallenge`] →
//! [`client::ExpectFinalToken`] → [`client::Established`]. [`server`] reads a request's
//! `Authorization` header and says what the acceptor must do with it. Neither touches
//! the network or GSSAPI: the token work is a [`Mechanism`](crate::Mechanism).

pub mod client;
pub mod server;

#[cfg(test)]
mod tests;

/// The scheme name as it appears on the wire.
pub const SCHEME: &str = "Negotiate";
