//! The client's per-request driver as a sans-IO state machine: what to do next
//! after each response, failure or started scheme, never how to make a token.
//!
//! The IO crate (kerbside-client) owns connections, bodies, timers and the
//! mechanisms (GSSAPI, NTLM, Digest, Basic); this module owns every decision
//! between them, in the shape of quinn-proto and rustls:
//!
//! - one [`RequestDriver`] per request: whether to try again after an attempt
//!   ended (once on a fresh connection after a close mid-handshake, once over
//!   HTTP/1.1 after `HTTP_1_1_REQUIRED`), and whether the server asked this
//!   request for Negotiate (which lets a fresh attempt send a token at once,
//!   even over plain HTTP);
//! - one attempt per connection, in typed states: [`Opening`] (which pooled
//!   connection, and whether credentials go before a 401) → [`Ready`] (a leg may
//!   be sent) → [`AwaitingResponse`] → [`Answered`] (by what the leg carried) →
//!   [`Next`]: send again ([`SendOn`]), choose a scheme ([`Choosing`] →
//!   [`Starting`]), deliver the response ([`Delivery`]), or end the attempt
//!   ([`AttemptEnd`]). Each `handle_*` consumes its state, so a call out of order
//!   does not compile.
//!
//! A forward proxy's `407` has its own small machine, [`ProxyAuthDriver`], for the
//! one connection to the proxy (a `CONNECT` tunnel, or requests sent through it).
//!
//! What an attempt learns about the origin (it wants Negotiate, it keeps
//! authentication with the connection, it needs HTTP/1.1, its password login was
//! taken or is stale) comes out as [`Learn`] values (`take_learned` on each
//! result), for the IO crate to record where concurrent requests share it.
//!
//! ```
//! use kerbside_proto::driver::{
//!     Answered, DriverSettings, Next, OriginFacts, ResponseHead, RequestDriver, Sent,
//! };
//! use kerbside_proto::{SchemeKind, SchemePolicy, Transport};
//!
//! let settings = DriverSettings::new(SchemePolicy::only(&[SchemeKind::Negotiate]), 4);
//! let request = RequestDriver::new();
//! let opening = request.open(&settings, OriginFacts::default(), "h.test", Transport::Tls, false);
//! // The IO crate takes a connection as `opening.connection()` says, then:
//! let (ready, preempt) = opening.connected(false, false);
//! assert_eq!(preempt, kerbside_proto::driver::Preempt::Nothing);
//! let awaiting = ready.send(Sent::Nothing);
//! let head = ResponseHead::new(401, vec![SchemeKind::Negotiate]);
//! let Answered::Plain(unanswered) = awaiting.handle_response(head) else { unreachable!() };
//! assert!(matches!(unanswered.handle(), Next::Choose(_)));
//! ```

mod attempt;
#[cfg(test)]
mod properties;
mod proxy;
mod request;
#[cfg(test)]
mod tests;

pub use attempt::{
    Answered, AwaitingResponse, Choosing, Continuing, Delivery, Ended, Next, Opening,
    PasswordAnswered, Ready, StaleRetry, Starting, TokenAnswered, TokenResult, Unanswered,
};
pub use proxy::{
    DigestRechallenge, ProxyAuthDriver, ProxyGiveUp, ProxyReconnect, ProxyStep, ProxyTokenResult,
};
pub use request::{RequestDriver, Retry};

use crate::policy::{SchemeKind, SchemePolicy};

/// When to send a Negotiate token without waiting for a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preemptive {
    /// After an earlier request of this client learned that the origin wants
    /// Negotiate (the default).
    #[default]
    Learned,
    /// Always, from the first request (`--negotiate-preemptive`).
    Always,
    /// Never: always wait for the 401.
    Never,
}

/// The settings the driver decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverSettings {
    /// Which schemes may be answered, downgrades, plain HTTP.
    pub schemes: SchemePolicy,
    /// When to send a Negotiate token before a 401.
    pub preemptive: Preemptive,
    /// How many 401 responses one attempt may meet before the client gives up.
    pub max_auth_rounds: u32,
}

impl DriverSettings {
    /// Settings with these schemes and this limit on 401s, tokens sent before a
    /// 401 only once the origin is known to want them ([`Preemptive::Learned`]).
    pub fn new(schemes: SchemePolicy, max_auth_rounds: u32) -> Self {
        Self {
            schemes,
            preemptive: Preemptive::Learned,
            max_auth_rounds,
        }
    }

    /// The same settings with another preemption rule.
    pub fn with_preemptive(mut self, preemptive: Preemptive) -> Self {
        self.preemptive = preemptive;
        self
    }
}

/// Whether an origin keeps authentication with the connection, as far as known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OriginMode {
    /// Not known yet.
    #[default]
    Unknown,
    /// Every request needs credentials (Apache's default).
    PerRequest,
    /// The connection stays authenticated (IIS, `GssapiConnectionBound`).
    ConnectionBound,
}

/// What the client knows about an origin when an attempt starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginFacts {
    /// An earlier response asked for Negotiate.
    pub wants_negotiate: bool,
    /// Whether authentication stays with the connection.
    pub mode: OriginMode,
    /// The origin needs HTTP/1.1 (connection-based schemes, `HTTP_1_1_REQUIRED`).
    pub h1_only: bool,
    /// The origin took a Digest or Basic login before: it may go with the first
    /// leg.
    pub password_login: Option<SchemeKind>,
}

impl OriginFacts {
    /// Facts with these values.
    pub fn new(
        wants_negotiate: bool,
        mode: OriginMode,
        h1_only: bool,
        password_login: Option<SchemeKind>,
    ) -> Self {
        Self {
            wants_negotiate,
            mode,
            h1_only,
            password_login,
        }
    }
}

/// Which connection the next leg travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOn {
    /// The connection the last leg came back on.
    Same,
    /// A new connection (the last one closed, or kept a withheld body back).
    Fresh,
}

/// Which connection an attempt starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// A pooled connection if one is ready, else a new one.
    Pooled {
        /// Prefer one that carries a completed handshake.
        prefer_authenticated: bool,
        /// Only an HTTP/1.1 connection.
        h1_only: bool,
    },
    /// Always a new connection (a retry after a close mid-handshake).
    Fresh {
        /// Offer only HTTP/1.1.
        h1_only: bool,
    },
}

/// Whether credentials go with the first leg of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preempt {
    /// Nothing: wait for the 401.
    Nothing,
    /// A Negotiate token without waiting for a 401.
    Negotiate {
        /// `--negotiate-preemptive` asked for it (otherwise an earlier request
        /// learned the origin wants Negotiate).
        always: bool,
    },
    /// The origin's Digest or Basic login taken before, if the policy still
    /// allows it for this transport.
    Password(SchemeKind),
    /// A Negotiate token would go, but not before a 401 over plain `http://`.
    HeldBack,
}

/// What one leg carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// No credentials.
    Nothing,
    /// A token of a connection-based exchange (Negotiate, NTLM).
    Token {
        /// The scheme.
        kind: SchemeKind,
        /// Sent before any 401 of this attempt.
        preemptive: bool,
    },
    /// Digest or Basic credentials.
    Password {
        /// The scheme.
        kind: SchemeKind,
        /// Sent before any 401, because the origin took them before.
        preemptive: bool,
        /// A Digest answer to a `stale=true` challenge.
        stale_retry: bool,
    },
}

impl Sent {
    fn carries_credentials(self) -> bool {
        !matches!(self, Sent::Nothing)
    }
}

/// The head of a response, as the driver needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The schemes its `WWW-Authenticate` challenges offer, as far as known.
    pub offered: Vec<SchemeKind>,
    /// It came on an HTTP/2 connection.
    pub h2: bool,
    /// The request's large body was kept back unsent (`100 Continue` never
    /// came), which leaves an HTTP/1.1 connection unusable.
    pub withheld: bool,
}

impl ResponseHead {
    /// A response head that came on HTTP/1.1, with the whole body sent.
    pub fn new(status: u16, offered: Vec<SchemeKind>) -> Self {
        Self {
            status,
            offered,
            h2: false,
            withheld: false,
        }
    }

    /// The same head, with how it came.
    pub fn on(mut self, h2: bool, withheld: bool) -> Self {
        self.h2 = h2;
        self.withheld = withheld;
        self
    }

    fn is_challenge(&self) -> bool {
        self.status == 401
    }
}

/// What the connection looks like once a response's body was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionAfter {
    /// A large body was kept back unsent, which leaves an HTTP/1.1 connection
    /// unusable.
    pub withheld: bool,
    /// The connection is HTTP/2.
    pub h2: bool,
    /// The server closed the connection.
    pub closed: bool,
}

impl ConnectionAfter {
    /// These facts.
    pub fn new(withheld: bool, h2: bool, closed: bool) -> Self {
        Self {
            withheld,
            h2,
            closed,
        }
    }
}

/// Something an attempt learned, for the IO crate to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// A 401 to this request offered Negotiate: the origin wants it, and a new
    /// attempt of this request may send a token at once.
    NegotiateChallenge,
    /// Whether the origin wants Negotiate.
    WantsNegotiate(bool),
    /// Whether the origin keeps authentication with the connection.
    Mode(OriginMode),
    /// The origin needs HTTP/1.1 connections.
    H1Only,
    /// The origin took this Digest or Basic login: send it with the next requests.
    PasswordLoginTaken(SchemeKind),
    /// The login taken before is refused now: forget it.
    PasswordLoginForgotten,
    /// The connection no longer counts as authenticated.
    ConnectionUnauthenticated,
}

/// How an attempt ended without a response to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Worth one more try on a fresh connection.
    Restart(RestartReason),
    /// The server wants HTTP/1.1 for this request.
    Http11Required,
    /// Give up.
    GiveUp(GiveUp),
}

/// Why an attempt starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// Sending failed on a reused connection (the server may have closed it while
    /// idle) or in the middle of a handshake.
    SendFailed,
    /// The server closed the connection between two legs of a handshake.
    ClosedMidHandshake(SchemeKind),
    /// A connection-based exchange needs a second leg, which only HTTP/1.1 can
    /// carry.
    SecondLegOnHttp2(SchemeKind),
    /// The chosen scheme (NTLM) needs an HTTP/1.1 connection.
    NeedsHttp11(SchemeKind),
    /// The server refused a token sent without a 401.
    PreemptiveRefused,
}

/// Why the client gives up on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUp {
    /// Sending failed and the request cannot be tried again (a fresh connection
    /// with nothing in flight, or a body that cannot be sent twice).
    SendFailed,
    /// The server answered 401 more often than allowed.
    TooManyChallenges {
        /// How many 401s.
        seen: u32,
        /// The limit.
        max: u32,
    },
    /// The server refused the credentials, and no weaker scheme may be tried.
    Rejected {
        /// The scheme refused.
        kind: SchemeKind,
        /// Enabled schemes weaker than `kind` the server offers, which the policy
        /// forbids falling back to (empty if none).
        weaker: Vec<SchemeKind>,
    },
    /// The attempt had to start over twice.
    RestartedTwice(RestartReason),
    /// The server answered `HTTP_1_1_REQUIRED` even over HTTP/1.1.
    Http11RequiredTwice,
}
