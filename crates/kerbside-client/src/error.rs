//! The client's error: opaque, with a kind and `is_*` predicates (as hyper does).
//!
//! A leaf: what an error is (its kind, the Kerberos problem behind it) is set where
//! it is made, never recovered later by looking inside its source.

use std::fmt;

use kerbside_gssapi::Problem;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL cannot be used.
    InvalidUrl,
    /// The TCP connection could not be made.
    Connect,
    /// TLS setup or handshake failed.
    Tls,
    /// The HTTP exchange failed (connection closed, protocol error).
    Http,
    /// The policy forbade sending credentials (e.g. plain HTTP).
    Policy,
    /// Authentication failed (Kerberos, the server's answer, mutual authentication).
    Auth,
    /// The request body could not be prepared.
    Body,
    /// A deadline passed: connecting (TCP, TLS, a proxy's `CONNECT`) took longer
    /// than the connect timeout, or the request longer than its overall deadline.
    Timeout,
}

/// A failed request. The message says what happened and, where possible, what to do.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The GSSAPI problem behind this error, when Kerberos failed.
    kerberos: Option<Problem>,
    /// The status a proxy refused a `CONNECT` with.
    proxy_status: Option<u16>,
    /// TLS with an `https://` proxy failed (not TLS with an origin).
    proxy_tls: bool,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            kerberos: None,
            proxy_status: None,
            proxy_tls: false,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
            kerberos: None,
            proxy_status: None,
            proxy_tls: false,
        }
    }

    /// Records the GSSAPI problem behind this error (where the error is made).
    pub(crate) fn with_kerberos_problem(mut self, problem: Option<Problem>) -> Self {
        self.kerberos = problem;
        self
    }

    /// Records the status a proxy refused a `CONNECT` with (where the error is made).
    pub(crate) fn with_proxy_status(mut self, status: u16) -> Self {
        self.proxy_status = Some(status);
        self
    }

    /// Marks a TLS failure as one with the proxy (where the error is made).
    pub(crate) fn of_proxy_tls(mut self) -> Self {
        self.proxy_tls = true;
        self
    }

    /// True when TLS with an `https://` proxy failed (its handshake, or its
    /// certificate not vouched for): the proxy, not the origin or the user, failed,
    /// so another proxy may be tried.
    pub fn is_proxy_tls(&self) -> bool {
        self.proxy_tls
    }

    /// The status a proxy answered `CONNECT` with when it refused to open the
    /// tunnel (a `5xx` means the proxy, not the user, failed: try another).
    pub fn proxy_status(&self) -> Option<u16> {
        self.proxy_status
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The GSSAPI problem behind this error, if Kerberos failed.
    fn gss_problem(&self) -> Option<Problem> {
        self.kerberos
    }

    /// True when the client has no usable Kerberos credentials (no ticket, or only
    /// an expired one): another scheme may still be answered.
    pub fn lacks_kerberos_credentials(&self) -> bool {
        matches!(
            self.gss_problem(),
            Some(Problem::NoCredentials | Problem::ExpiredTicket)
        )
    }

    /// True when no Kerberos token could be made for a reason that sent nothing
    /// to the server, so another scheme the client holds credentials for may be
    /// answered (`--anyauth`): no ticket or an expired one, a user principal the
    /// KDC does not know (`-u` with a password for a user only the NTLM, Digest or
    /// Basic password files know), no KDC of the user's realm reachable, or a realm
    /// this machine's Kerberos configuration does not know.
    ///
    /// A wrong password for a principal the KDC knows is not among them: the client
    /// stops there, as going on would try the same wrong password on the server
    /// (and count towards locking the account in a directory such as Active
    /// Directory).
    pub fn kerberos_unavailable(&self) -> bool {
        matches!(
            self.gss_problem(),
            Some(
                Problem::NoCredentials
                    | Problem::ExpiredTicket
                    | Problem::ClientPrincipalUnknown
                    | Problem::KdcUnreachable
                    | Problem::RealmUnknown
            )
        )
    }

    /// True if the policy refused to send credentials (plain HTTP, for one).
    pub fn is_policy(&self) -> bool {
        self.kind == ErrorKind::Policy
    }

    /// True if authentication failed.
    pub fn is_auth(&self) -> bool {
        self.kind == ErrorKind::Auth
    }

    /// True if no connection could be made.
    pub fn is_connect(&self) -> bool {
        self.kind == ErrorKind::Connect
    }

    /// True if TLS failed.
    pub fn is_tls(&self) -> bool {
        self.kind == ErrorKind::Tls
    }

    /// True if a deadline passed (the connect timeout or the request's overall
    /// deadline); the message says which and after how long.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
