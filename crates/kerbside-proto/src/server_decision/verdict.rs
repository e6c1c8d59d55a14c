//! Who a request comes from, decided without IO: which handler its credentials go to
//! (none, Negotiate, NTLM, Digest, Basic, the connection's or the session cookie's
//! identity), what a mechanism's outcome becomes (a `401` with a continuation token,
//! a login, a refusal with a status), and what the server must remember (the
//! connection's identity, a session cookie to set, a stale one to clear).
//!
//! The server reads the request's `Authorization` header with
//! [`read_authorization`](crate::scheme::negotiate::server::read_authorization) and
//! calls [`identify`]; the [`Start`] it gets says which check to run. Each check is a
//! typed state (`Expect…`) whose `handle` consumes it with the mechanism's outcome and
//! returns the [`Verdict`]: the server only runs the mechanisms and carries out what
//! the verdict says.
//!
//! ```
//! use kerbside_proto::scheme::negotiate::server::Presented;
//! use kerbside_proto::server_decision::{
//!     identify, BindingPolicy, RequestFacts, ServerMode, SessionState, Setup, Start, Verdict,
//! };
//!
//! let setup = Setup {
//!     mode: ServerMode::Cookie,
//!     kerberos: true,
//!     ntlm: None,
//!     digest: false,
//!     basic_users: false,
//!     basic_kdc: false,
//!     sessions: true,
//!     binding: BindingPolicy::Optional,
//! };
//! let facts = RequestFacts { h2: false, per_connection: false, binding: false };
//! // No credentials: the session cookie, if it opens, stands for the identity.
//! let Start::Remembered(remembered) = identify(&setup, facts, Ok(Presented::Nothing)) else {
//!     unreachable!()
//! };
//! let verdict = remembered.handle(None, SessionState::Valid("alice@EXAMPLE.ORG".into()));
//! assert!(matches!(verdict, Verdict::Authenticated(login) if login.principal == "alice@EXAMPLE.ORG"));
//! ```

use super::steps::{ExpectBasic, ExpectDigest, ExpectNegotiate, ExpectNtlm};
use super::{Offers, ServerMode};
use crate::scheme::negotiate::server::{MalformedAuthorization, Presented};
use crate::SchemeKind;

/// Whether tokens must be bound to the TLS channel (RFC 5929 `tls-server-end-point`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingPolicy {
    /// Bindings are not checked.
    Off,
    /// Bindings the client sends must match; tokens without them are accepted.
    Optional,
    /// Tokens must carry matching bindings.
    Required,
}

/// NTLM against a users file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtlmSetup {
    /// Also NTLM inside SPNEGO under `Negotiate`.
    pub in_negotiate: bool,
}

/// What a server is configured with, as far as the decisions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// How clients stay authenticated.
    pub mode: ServerMode,
    /// A keytab: Kerberos tokens under `Negotiate` can be checked.
    pub kerberos: bool,
    /// NTLM against a users file.
    pub ntlm: Option<NtlmSetup>,
    /// Digest against an htdigest file.
    pub digest: bool,
    /// Basic against an htpasswd file.
    pub basic_users: bool,
    /// Basic checked against the KDC (and the keytab, so it needs [`Setup::kerberos`]).
    pub basic_kdc: bool,
    /// Session cookies can be sealed and opened.
    pub sessions: bool,
    /// Channel bindings.
    pub binding: BindingPolicy,
}

impl Setup {
    /// Whether every request must come with the connection's state (the peer's
    /// login, a pending handshake): connection mode, NTLM (it authenticates the
    /// connection), or channel bindings required (the TLS channel is the
    /// connection's).
    pub fn needs_connection(&self) -> bool {
        self.mode == ServerMode::Connection
            || self.ntlm.is_some()
            || self.binding == BindingPolicy::Required
    }

    /// The schemes a `401` offers (see [`challenges`](super::challenges)).
    pub fn offers(&self) -> Offers {
        Offers {
            negotiate: self.kerberos || self.ntlm.is_some_and(|n| n.in_negotiate),
            ntlm: self.ntlm.is_some(),
            digest: self.digest,
            basic: self.takes_basic(),
        }
    }

    /// Whether `Authorization: Basic` is checked at all.
    pub(super) fn takes_basic(&self) -> bool {
        self.basic_users || self.basic_kdc
    }
}

/// The facts of one request the decisions read, besides its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    /// It came over HTTP/2 (multiplexed: no connection-bound login).
    pub h2: bool,
    /// The server knows the request's connection (kerbside-server's `PerConnection`).
    pub per_connection: bool,
    /// The server knows the TLS channel's bindings (`tls-server-end-point`).
    pub binding: bool,
}

/// What opening the request's session cookie gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// The server has no session cookies.
    Off,
    /// The request carries no session cookie.
    Absent,
    /// A cookie that opened (sealed by this server, not expired), for this principal.
    Valid(String),
    /// A cookie that did not open (forged, expired, sealed with another key).
    Refused,
}

impl SessionState {
    /// Whether an answer of the server's own that asks for credentials again (a
    /// refusal of the credentials, or the rules' `401`) also clears the cookie, so a
    /// browser stops sending one that will never open. A `403`, a `421` and the
    /// application's answers leave it alone.
    pub fn clears_with_refusal(&self) -> bool {
        matches!(self, Self::Refused)
    }
}

/// The identity a connection carries after a connection-bound login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLogin {
    /// Who logged in.
    pub principal: String,
    /// With which HTTP scheme.
    pub scheme: SchemeKind,
    /// Whether Kerberos vouched for the principal.
    pub kerberos: bool,
    /// Whether the login was bound to the TLS channel.
    pub channel_bound: bool,
}

/// What a request's credentials turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody: the access rules decide whether anonymous may.
    Anonymous {
        /// Something to count (a session cookie that did not open).
        failure: Option<Failure>,
    },
    /// Someone: the access rules decide whether this principal may.
    Authenticated(Login),
    /// Answer now with this, without asking the rules.
    Refuse(Refusal),
    /// Tell the HTTP/2 client to come back over HTTP/1.1: connection-bound
    /// authentication cannot log in on a multiplexed connection.
    Http11Required,
}

/// Someone authenticated, and what the server does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Who.
    pub principal: String,
    /// The HTTP scheme the client used.
    pub scheme: SchemeKind,
    /// Whether Kerberos vouched for the principal.
    pub kerberos: bool,
    /// Whether the login was bound to the TLS channel.
    pub channel_bound: bool,
    /// A last token for the client (`WWW-Authenticate: Negotiate <token>` on the
    /// success response: mutual authentication).
    pub final_token: Option<Vec<u8>>,
    /// Digest's `Authentication-Info` (rspauth) for the success response.
    pub authentication_info: Option<String>,
    /// What to remember so the next request needs no credentials.
    pub remember: Remember,
    /// Where the identity came from.
    pub source: Source,
}

/// What a login leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    /// Nothing: the next request brings credentials again.
    Nothing,
    /// The connection carries the identity from now on (connection mode, NTLM).
    OnConnection,
    /// Seal a session cookie for the principal and set it on the response.
    SessionCookie,
}

/// Where an identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A handshake or password check of this request.
    Credentials,
    /// The connection's earlier login.
    Connection,
    /// The session cookie.
    SessionCookie,
}

/// A refusal of the server's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `400`, `401` or `503`.
    pub status: u16,
    /// With a continuation token the `401` carries only it; without, it offers every
    /// challenge the server takes.
    pub continuation: Option<Continuation>,
    /// Digest challenges say `stale=true`.
    pub stale: bool,
    /// Something to count.
    pub failure: Option<Failure>,
}

impl Refusal {
    /// A refusal with nothing more to say.
    pub(super) fn status(status: u16) -> Self {
        Self {
            status,
            continuation: None,
            stale: false,
            failure: None,
        }
    }

    /// `401` with every challenge.
    pub(super) fn unauthorized() -> Self {
        Self::status(401)
    }

    /// `400`: credentials that cannot be read.
    pub(super) fn bad_request() -> Self {
        Self::status(400)
    }

    /// `401` counting this failure.
    pub(super) fn failed(failure: Failure) -> Self {
        Self {
            failure: Some(failure),
            ..Self::unauthorized()
        }
    }

    /// `401` carrying the next token of a multi-leg exchange.
    pub(super) fn continue_with(continuation: Continuation) -> Self {
        Self {
            continuation: Some(continuation),
            ..Self::unauthorized()
        }
    }
}

/// The next token of a multi-leg exchange, for the `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// `WWW-Authenticate: Negotiate <token>`.
    Negotiate(Vec<u8>),
    /// `WWW-Authenticate: NTLM <CHALLENGE>`.
    Ntlm(Vec<u8>),
}

/// A failure worth counting (the metrics' `reason` label). GSSAPI's own refusals
/// are named by the server from the error it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// A session cookie that did not open.
    BadSessionCookie,
    /// A Kerberos token without the TLS channel's bindings, which are required.
    ChannelBindingsMissing,
    /// An NTLM AUTHENTICATE on a connection that was sent no CHALLENGE.
    NtlmNoChallenge,
    /// NTLM credentials that did not verify.
    NtlmRefused,
    /// A Digest response for an expired (or replayed) nonce.
    DigestStaleNonce,
    /// Digest credentials that did not verify.
    DigestRefused,
    /// Basic credentials for an htpasswd user, with the wrong password.
    BasicWrongPassword,
    /// Basic credentials for a user the server cannot check.
    BasicUnknownUser,
}

impl Failure {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::BadSessionCookie => "bad_session_cookie",
            Self::ChannelBindingsMissing => "channel_bindings_missing",
            Self::NtlmNoChallenge => "ntlm_no_challenge",
            Self::NtlmRefused => "ntlm_refused",
            Self::DigestStaleNonce => "digest_stale_nonce",
            Self::DigestRefused => "digest_refused",
            Self::BasicWrongPassword => "basic_wrong_password",
            Self::BasicUnknownUser => "basic_unknown_user",
        }
    }
}

/// What to do with a request's credentials.
#[derive(Debug)]
pub enum Start {
    /// Refused before anything else about the request is looked at (its session
    /// cookie included, which this answer therefore leaves alone): the server
    /// cannot serve it as set up (`503`), or its `Authorization` cannot be read
    /// (`400`).
    Reject(Refusal),
    /// Decided already.
    Answer(Verdict),
    /// Check `Authorization: Basic`.
    Basic(ExpectBasic),
    /// Run an `Authorization: NTLM` leg (connection mode, HTTP/1.1).
    Ntlm(ExpectNtlm),
    /// Check `Authorization: Digest`.
    Digest(ExpectDigest),
    /// An HTTP/2 request in connection mode without a token: ask the access rules
    /// whether it needs authentication.
    AskRules(ExpectRulesNeed),
    /// No credentials: the connection's or the session cookie's identity, if any.
    Remembered(ExpectRemembered),
    /// A `Negotiate` token.
    Negotiate(ExpectNegotiate),
}

/// The first decision about a request: which check its credentials go to.
///
/// In order: a server that keeps state per connection refuses (`503`) a request
/// whose connection it does not know (a misconfigured server, not the client's
/// fault); an `Authorization` header that cannot be read is `400`; with no
/// authentication configured everyone is anonymous; Basic, NTLM and Digest
/// credentials go to their checks when configured (other schemes count as no
/// credentials); an HTTP/2 request with a token in connection mode must come back
/// over HTTP/1.1; a `Negotiate` token is checked; no credentials fall back on what the
/// connection or a session cookie remembers.
pub fn identify(
    setup: &Setup,
    facts: RequestFacts,
    authorization: Result<Presented, MalformedAuthorization>,
) -> Start {
    if setup.needs_connection() && !facts.per_connection {
        return Start::Reject(Refusal::status(503));
    }
    let Ok(presented) = authorization else {
        return Start::Reject(Refusal::bad_request());
    };
    if setup.mode == ServerMode::None {
        return Start::Answer(Verdict::Anonymous { failure: None });
    }
    let token = match presented {
        Presented::Token(token) => Some(token),
        Presented::Nothing => None,
        Presented::OtherScheme(scheme) => {
            if scheme.eq_ignore_ascii_case("basic") && setup.takes_basic() {
                return Start::Basic(ExpectBasic::new(setup));
            }
            if scheme.eq_ignore_ascii_case("ntlm") && setup.ntlm.is_some() {
                return ExpectNtlm::start(setup, facts);
            }
            if scheme.eq_ignore_ascii_case("digest") && setup.digest {
                return Start::Digest(ExpectDigest::new());
            }
            None
        }
    };
    let connection_mode = setup.mode == ServerMode::Connection;
    match token {
        Some(_) if connection_mode && facts.h2 => Start::Answer(Verdict::Http11Required),
        Some(token) => Start::Negotiate(ExpectNegotiate::new(setup, facts, token)),
        None if connection_mode && facts.h2 => Start::AskRules(ExpectRulesNeed {
            remembered: ExpectRemembered::new(setup),
        }),
        None => Start::Remembered(ExpectRemembered::new(setup)),
    }
}

/// Waits for the access rules' answer: does this HTTP/2 request (connection mode, no
/// token) need authentication?
#[derive(Debug)]
pub struct ExpectRulesNeed {
    remembered: ExpectRemembered,
}

impl ExpectRulesNeed {
    /// A request that needs authentication must come back over HTTP/1.1; one that
    /// does not goes on anonymously (or as what a session cookie says).
    pub fn handle(self, needs_authentication: bool) -> Start {
        if needs_authentication {
            Start::Answer(Verdict::Http11Required)
        } else {
            Start::Remembered(self.remembered)
        }
    }
}

/// Waits for what the connection and the session cookie remember.
#[derive(Debug)]
pub struct ExpectRemembered {
    connection_mode: bool,
}

impl ExpectRemembered {
    fn new(setup: &Setup) -> Self {
        Self {
            connection_mode: setup.mode == ServerMode::Connection,
        }
    }

    /// The identity of a request without credentials: the connection's (connection
    /// mode only), else the session cookie's, else nobody (counting a cookie that did
    /// not open). A session cookie only ever stands for a Kerberos login over
    /// `Negotiate`.
    pub fn handle(self, connection: Option<ConnectionLogin>, session: SessionState) -> Verdict {
        if let Some(login) = connection.filter(|_| self.connection_mode) {
            return Verdict::Authenticated(Login {
                principal: login.principal,
                scheme: login.scheme,
                kerberos: login.kerberos,
                channel_bound: login.channel_bound,
                final_token: None,
                authentication_info: None,
                remember: Remember::Nothing,
                source: Source::Connection,
            });
        }
        match session {
            SessionState::Valid(principal) => Verdict::Authenticated(Login {
                principal,
                scheme: SchemeKind::Negotiate,
                kerberos: true,
                channel_bound: false,
                final_token: None,
                authentication_info: None,
                remember: Remember::Nothing,
                source: Source::SessionCookie,
            }),
            SessionState::Refused => Verdict::Anonymous {
                failure: Some(Failure::BadSessionCookie),
            },
            SessionState::Off | SessionState::Absent => Verdict::Anonymous { failure: None },
        }
    }
}
