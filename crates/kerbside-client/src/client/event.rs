//! What a [`Client`](super::Client) tells its caller: [`Event`]s for verbose output
//! (redacted), and the [`Outcome`] of a request.

use kerbside_proto::scheme::negotiate::client::MutualOutcome;
use kerbside_proto::SchemeKind;

/// Something that happened while sending a request, for verbose output. Header
/// values in events are already redacted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A connection is being made.
    Connecting {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Whether TLS is used.
        tls: bool,
    },
    /// A new connection is up (after the TLS handshake, if any).
    Connected {
        /// The client's number for the connection.
        conn: u64,
        /// The peer's address.
        peer: String,
        /// `HTTP/1.1` or `HTTP/2`.
        protocol: &'static str,
    },
    /// A pooled connection is used again.
    Reusing {
        /// The connection's number.
        conn: u64,
        /// Whether it carries a completed handshake.
        authenticated: bool,
    },
    /// A request leg is sent.
    Request {
        /// The connection's number.
        conn: u64,
        /// Request line, e.g. `GET /x HTTP/1.1`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// A response arrived.
    Response {
        /// The connection's number.
        conn: u64,
        /// Status line, e.g. `HTTP/1.1 401 Unauthorized`.
        line: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// The client will authenticate.
    Scheme {
        /// True when authenticating to a proxy (`407`, `Proxy-Authorization`).
        proxy: bool,
        /// The scheme, e.g. `Negotiate`.
        scheme: String,
        /// Why that scheme.
        scheme_reason: String,
        /// The Kerberos target name.
        target: String,
        /// Why that name.
        target_reason: String,
        /// Whether the channel binding of the TLS connection is passed.
        channel_binding: bool,
    },
    /// The exchange finished.
    Authenticated {
        /// True for a proxy exchange.
        proxy: bool,
        /// The scheme, e.g. `NTLM`.
        scheme: String,
        /// What became of mutual authentication.
        mutual: MutualOutcome,
        /// How many tokens were sent.
        legs: u32,
        /// Whether the server keeps the authentication with the connection.
        connection_bound: bool,
    },
    /// The request goes through a proxy.
    Proxy {
        /// The proxy's host.
        host: String,
        /// The proxy's port.
        port: u16,
        /// True for a `CONNECT` tunnel (an `https://` origin).
        tunnel: bool,
    },
    /// A decision the user may want to know about (a scheme skipped, a token held
    /// back), in words.
    Notice {
        /// What the client did and why.
        message: String,
    },
    /// The client starts over, once, on a new connection.
    Retrying {
        /// Why.
        reason: String,
    },
}

/// Receives [`Event`]s.
pub trait Observer: Send + Sync {
    /// Called for each event, in order.
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Observer for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}

/// How a request ended, in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The scheme the request authenticated with, when it did on this request.
    pub scheme: Option<SchemeKind>,
    /// `Some` when a Kerberos Negotiate exchange ran: what became of mutual
    /// authentication.
    pub negotiate: Option<MutualOutcome>,
    /// The connection the final response came on.
    pub connection: u64,
    /// How many 401 responses the request met.
    pub challenges: u32,
}

pub(super) fn redacted(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), crate::redact_header(n, v)))
        .collect()
}
