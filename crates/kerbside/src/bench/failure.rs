//! Why a request did not count as a success: the kinds a report counts, and one failure.

/// Why a request did not count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No TCP connection or TLS session could be made.
    Connect,
    /// The final status was not the expected one.
    Status,
    /// The server's final token was missing (with `--mutual required`), malformed or
    /// did not verify with the exchange's GSSAPI context.
    Mutual,
    /// The connection failed or closed before a whole response came.
    Http,
    /// No token to send: the server's challenge did not offer Negotiate, asked for
    /// another leg, or the token pool ran out for a new connection (reuse mode).
    Token,
    /// No whole response within `--timeout`.
    Timeout,
}

impl ErrorKind {
    pub(crate) const ALL: [ErrorKind; 6] = [
        Self::Connect,
        Self::Status,
        Self::Mutual,
        Self::Http,
        Self::Token,
        Self::Timeout,
    ];

    /// The kind's name in the report (`connect`, `status`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Status => "status",
            Self::Mutual => "mutual",
            Self::Http => "http",
            Self::Token => "token",
            Self::Timeout => "timeout",
        }
    }
}

/// A failed request: its kind and what happened.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
