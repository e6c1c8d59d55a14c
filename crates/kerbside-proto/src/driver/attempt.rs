//! One attempt at a request on one connection, in typed states: each `handle_*`
//! consumes the state it is called on and returns the next.

use super::{
    AttemptEnd, Connection, ConnectionAfter, DriverSettings, GiveUp, Learn, OriginFacts,
    OriginMode, Preempt, Preemptive, ResponseHead, RestartReason, SendOn, Sent,
};
use crate::policy::{SchemeKind, Transport};

/// What every state of an attempt carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Core {
    settings: DriverSettings,
    origin: OriginFacts,
    host: String,
    transport: Transport,
    /// The connection carried a completed handshake the origin keeps with it.
    bound: bool,
    /// The connection came from the pool.
    reused: bool,
    /// 401 responses met.
    challenges: u32,
    /// Legs sent with credentials.
    tokens: u32,
    /// A scheme the server refused, when falling back to a weaker one is allowed.
    failed: Option<SchemeKind>,
    /// What the last leg carried.
    in_flight: Sent,
    learned: Vec<Learn>,
}

impl Core {
    fn too_many(&self) -> Option<AttemptEnd> {
        let max = self.settings.max_auth_rounds;
        (self.challenges > max).then_some(AttemptEnd::GiveUp(GiveUp::TooManyChallenges {
            seen: self.challenges,
            max,
        }))
    }

    /// The enabled schemes weaker than `kind` that the server also offers.
    fn weaker_on_offer(&self, kind: SchemeKind, offered: &[SchemeKind]) -> Vec<SchemeKind> {
        SchemeKind::ALL
            .into_iter()
            .filter(|k| *k > kind && self.settings.schemes.allows(*k) && offered.contains(k))
            .collect()
    }

    /// The server refused `kind`: fall back to a weaker scheme if one is on offer
    /// and allowed, otherwise give up.
    fn refused(mut self, kind: SchemeKind, head: ResponseHead, extra: Option<Learn>) -> Next {
        let weaker = self.weaker_on_offer(kind, &head.offered);
        if weaker.is_empty() || !self.settings.schemes.allow_downgrade {
            return Next::End(Ended::new(
                self,
                AttemptEnd::GiveUp(GiveUp::Rejected { kind, weaker }),
            ));
        }
        self.failed = Some(kind);
        self.learned.extend(extra);
        Next::Unanswered(Unanswered { core: self, head })
    }

    fn delivery(
        self,
        scheme: Option<SchemeKind>,
        keep_connection: bool,
        connection_bound: bool,
        authenticated: Option<bool>,
    ) -> Delivery {
        Delivery {
            scheme,
            keep_connection,
            connection_bound,
            authenticated,
            challenges: self.challenges,
            tokens: self.tokens,
            learned: self.learned,
        }
    }
}

/// An attempt about to take a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    core: Core,
    has_cookie: bool,
    asked: bool,
    connection: Connection,
}

impl Opening {
    pub(super) fn new(
        settings: DriverSettings,
        origin: OriginFacts,
        host: String,
        transport: Transport,
        has_cookie: bool,
        asked: bool,
        connection: Connection,
    ) -> Self {
        Self {
            core: Core {
                settings,
                origin,
                host,
                transport,
                bound: false,
                reused: false,
                challenges: 0,
                tokens: 0,
                failed: None,
                in_flight: Sent::Nothing,
                learned: Vec::new(),
            },
            has_cookie,
            asked,
            connection,
        }
    }

    /// Which connection to take.
    pub fn connection(&self) -> Connection {
        self.connection
    }

    /// The connection is taken (`reused`: from the pool; `authenticated`: it
    /// carries a completed handshake). Says whether credentials go with the first
    /// leg: never over plain `http://` before a 401 to this request, never when a
    /// cookie may stand for the handshake (except `--negotiate-preemptive`), never
    /// on a connection the origin keeps authenticated.
    pub fn connected(self, reused: bool, authenticated: bool) -> (Ready, Preempt) {
        let Opening {
            mut core,
            has_cookie,
            asked,
            ..
        } = self;
        let bound = authenticated && core.origin.mode != OriginMode::PerRequest;
        core.bound = bound;
        core.reused = reused;
        let settings = &core.settings;
        let wants_preempt = settings.schemes.allows(SchemeKind::Negotiate)
            && !bound
            && match settings.preemptive {
                Preemptive::Always => true,
                Preemptive::Learned => core.origin.wants_negotiate && !has_cookie,
                Preemptive::Never => false,
            };
        let unasked = core.transport.allows_unasked_credentials() || asked;
        let preempt = if wants_preempt && unasked {
            Preempt::Negotiate {
                always: settings.preemptive == Preemptive::Always,
            }
        } else if wants_preempt {
            Preempt::HeldBack
        } else if !bound && !has_cookie && unasked {
            match core.origin.password_login {
                Some(kind)
                    if settings.schemes.allows(kind)
                        && settings
                            .schemes
                            .plain_http
                            .check(kind.name(), &core.host, core.transport)
                            .is_ok() =>
                {
                    Preempt::Password(kind)
                }
                _ => Preempt::Nothing,
            }
        } else {
            Preempt::Nothing
        };
        (Ready { core }, preempt)
    }
}

/// A leg may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    core: Core,
}

impl Ready {
    /// A leg went out carrying `sent`.
    pub fn send(mut self, sent: Sent) -> AwaitingResponse {
        if sent.carries_credentials() {
            self.core.tokens += 1;
        }
        self.core.in_flight = sent;
        AwaitingResponse { core: self.core }
    }

    /// How many legs carried credentials so far.
    pub fn tokens(&self) -> u32 {
        self.core.tokens
    }
}

/// A leg is out; its response (or a failure) comes next. A proxy's `407` that
/// the proxy exchange answers sends the same leg again in this state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingResponse {
    core: Core,
}

impl AwaitingResponse {
    /// Sending failed before a response came. A connection from the pool may have
    /// been closed by the server while idle, and one in the middle of a handshake
    /// must not be: both are worth a fresh start if the body can be sent again.
    pub fn handle_send_error(self, replayable: bool) -> AttemptEnd {
        let mid_handshake = matches!(self.core.in_flight, Sent::Token { .. });
        if (self.core.reused || mid_handshake) && replayable {
            AttemptEnd::Restart(RestartReason::SendFailed)
        } else {
            AttemptEnd::GiveUp(GiveUp::SendFailed)
        }
    }

    /// The server refused the request over HTTP/2 (`HTTP_1_1_REQUIRED`).
    pub fn handle_http11_required(self) -> AttemptEnd {
        AttemptEnd::Http11Required
    }

    /// How many legs carried credentials so far.
    pub fn tokens(&self) -> u32 {
        self.core.tokens
    }

    /// A response head came: a 401 counts, one offering Negotiate teaches that
    /// the origin wants it; what comes next depends on what the leg carried.
    pub fn handle_response(mut self, head: ResponseHead) -> Answered {
        if head.is_challenge() {
            self.core.challenges += 1;
            if head.offered.contains(&SchemeKind::Negotiate) {
                self.core.learned.push(Learn::NegotiateChallenge);
            }
        }
        match self.core.in_flight {
            Sent::Nothing => Answered::Plain(Unanswered {
                core: self.core,
                head,
            }),
            Sent::Token { kind, preemptive } => Answered::Token(TokenAnswered {
                core: self.core,
                head,
                kind,
                preemptive,
            }),
            Sent::Password {
                kind,
                preemptive,
                stale_retry,
            } => Answered::Password(PasswordAnswered {
                core: self.core,
                head,
                kind,
                preemptive,
                stale_retry,
            }),
        }
    }
}

/// A response, by what its leg carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The leg carried no credentials.
    Plain(Unanswered),
    /// The leg carried a token: the exchange reads the response next.
    Token(TokenAnswered),
    /// The leg carried Digest or Basic credentials.
    Password(PasswordAnswered),
}

impl Answered {
    /// What the attempt learned since the last call.
    pub fn take_learned(&mut self) -> Vec<Learn> {
        let core = match self {
            Self::Plain(s) => &mut s.core,
            Self::Token(s) => &mut s.core,
            Self::Password(s) => &mut s.core,
        };
        std::mem::take(&mut core.learned)
    }
}

/// How a connection-based exchange took the response to its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenResult {
    /// The server wants another token.
    Continue,
    /// The exchange is complete (and the server's final token checked).
    Established {
        /// The response's `Persistent-Auth` header (IIS, mod_auth_gssapi).
        persistent: Option<bool>,
        /// NTLM inside SPNEGO under `Negotiate`: it authenticates the connection.
        ntlm_inside: bool,
    },
    /// The server refused the token (401 again, with no token to continue).
    Rejected,
}

/// The response to a token; the exchange's verdict comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswered {
    core: Core,
    head: ResponseHead,
    kind: SchemeKind,
    preemptive: bool,
}

impl TokenAnswered {
    /// The exchange read the response.
    pub fn handle_result(mut self, result: TokenResult) -> Next {
        let kind = self.kind;
        match result {
            TokenResult::Continue if self.head.h2 => {
                // Connection-based exchanges need HTTP/1.1.
                self.core.learned.push(Learn::H1Only);
                Next::End(Ended::new(
                    self.core,
                    AttemptEnd::Restart(RestartReason::SecondLegOnHttp2(kind)),
                ))
            }
            TokenResult::Continue => match self.core.too_many() {
                Some(end) => Next::End(Ended::new(self.core, end)),
                None => Next::Continue(Continuing {
                    core: self.core,
                    kind,
                }),
            },
            TokenResult::Established {
                persistent,
                ntlm_inside,
            } => {
                let h2 = self.head.h2;
                // NTLM authenticates the connection (MS-NTHT); Kerberos only where
                // the server says so or was seen to.
                let connection_bound = !h2
                    && (persistent == Some(true)
                        || self.core.origin.mode == OriginMode::ConnectionBound
                        || kind == SchemeKind::Ntlm
                        || ntlm_inside);
                if kind == SchemeKind::Negotiate {
                    self.core.learned.push(Learn::WantsNegotiate(true));
                }
                match persistent {
                    Some(true) if !h2 => self
                        .core
                        .learned
                        .push(Learn::Mode(OriginMode::ConnectionBound)),
                    Some(false) => self.core.learned.push(Learn::Mode(OriginMode::PerRequest)),
                    _ => {}
                }
                Next::Deliver(
                    self.core
                        .delivery(Some(kind), true, connection_bound, Some(!h2)),
                )
            }
            TokenResult::Rejected
                if self.preemptive && self.core.tokens == 1 && self.core.challenges == 1 =>
            {
                // The token sent without a 401 was not wanted (a new server, a
                // stale belief): answer the challenge in the ordinary way.
                self.core.learned.push(Learn::WantsNegotiate(false));
                Next::End(Ended::new(
                    self.core,
                    AttemptEnd::Restart(RestartReason::PreemptiveRefused),
                ))
            }
            TokenResult::Rejected => {
                self.core
                    .refused(kind, self.head, Some(Learn::ConnectionUnauthenticated))
            }
        }
    }
}

/// The exchange wants another token on the same connection; the 401's body is
/// read next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuing {
    core: Core,
    kind: SchemeKind,
}

impl Continuing {
    /// The 401's body was read: the next token goes on the same connection, or
    /// the attempt starts over if the server closed it.
    pub fn drained(self, after: ConnectionAfter) -> Result<(Ready, SendOn), Ended> {
        if after.withheld || after.closed {
            let end = AttemptEnd::Restart(RestartReason::ClosedMidHandshake(self.kind));
            return Err(Ended::new(self.core, end));
        }
        Ok((Ready { core: self.core }, SendOn::Same))
    }
}

/// The response to Digest or Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAnswered {
    core: Core,
    head: ResponseHead,
    kind: SchemeKind,
    preemptive: bool,
    stale_retry: bool,
}

impl PasswordAnswered {
    /// Anything but a 401 means the server took the credentials (the IO crate
    /// checks a Digest `rspauth` first); a 401 to a Digest answer may say the
    /// nonce was stale, once.
    pub fn handle(mut self) -> Next {
        if !self.head.is_challenge() {
            self.core.learned.push(Learn::PasswordLoginTaken(self.kind));
            let keep = !self.head.withheld || self.head.h2;
            return Next::Deliver(self.core.delivery(Some(self.kind), keep, false, None));
        }
        if self.kind == SchemeKind::Digest && !self.stale_retry {
            return Next::MaybeStale(StaleRetry { answered: self });
        }
        self.refused()
    }

    fn refused(mut self) -> Next {
        if self.preemptive {
            // What the server took before it refuses now (a restart, a new
            // password file): forget it and answer the challenge.
            self.core.learned.push(Learn::PasswordLoginForgotten);
            return Next::Unanswered(Unanswered {
                core: self.core,
                head: self.head,
            });
        }
        self.core.refused(self.kind, self.head, None)
    }
}

/// A 401 to a Digest answer: the IO crate asks the Digest session whether the
/// challenge says `stale=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRetry {
    answered: PasswordAnswered,
}

impl StaleRetry {
    /// The nonce was stale and the password right: new credentials go with the
    /// new nonce once the 401's body was read, on the same connection unless it
    /// closed or kept a large body back.
    pub fn stale(self, after: ConnectionAfter) -> (Ready, SendOn) {
        let on = if after.withheld && !after.h2 || after.closed {
            SendOn::Fresh
        } else {
            SendOn::Same
        };
        (
            Ready {
                core: self.answered.core,
            },
            on,
        )
    }

    /// Not stale: the credentials were refused.
    pub fn not_stale(self) -> Next {
        self.answered.refused()
    }
}

/// A response no pending credentials explain: a success delivers, a 401 leads
/// to choosing a scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    core: Core,
    head: ResponseHead,
}

impl Unanswered {
    /// Decides what the response means.
    pub fn handle(mut self) -> Next {
        let head = self.head;
        let bound = self.core.bound;
        if !head.is_challenge() {
            if bound && self.core.origin.mode == OriginMode::Unknown {
                // A request without a token succeeded on an authenticated
                // connection: the server keeps authentication with it.
                self.core
                    .learned
                    .push(Learn::Mode(OriginMode::ConnectionBound));
            }
            let keep = !head.withheld || head.h2;
            return Next::Deliver(self.core.delivery(None, keep, false, None));
        }
        if bound {
            // The server wants a token on every request after all.
            self.core.learned.push(Learn::Mode(OriginMode::PerRequest));
            self.core.learned.push(Learn::ConnectionUnauthenticated);
        }
        if self.core.settings.schemes.enabled.is_empty() {
            // No authentication asked for: the 401 is the answer.
            return Next::Deliver(self.core.delivery(None, false, false, None));
        }
        if let Some(end) = self.core.too_many() {
            return Next::End(Ended::new(self.core, end));
        }
        Next::Choose(Choosing {
            core: self.core,
            h2: head.h2,
        })
    }
}

/// A 401 to answer: the IO crate asks the policy
/// ([`SchemePolicy::choose_among`](crate::SchemePolicy::choose_among), with
/// [`failed`](Self::failed)) which scheme, then says which it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choosing {
    core: Core,
    h2: bool,
}

impl Choosing {
    /// The scheme the server refused, which the policy must not choose again nor
    /// fall back from unless downgrades are allowed.
    pub fn failed(&self) -> Option<SchemeKind> {
        self.core.failed
    }

    /// The policy chose `kind`: start it, unless it cannot run on this connection
    /// (NTLM needs HTTP/1.1).
    pub fn chosen(mut self, kind: SchemeKind) -> Result<Starting, Ended> {
        if kind == SchemeKind::Ntlm && self.h2 {
            // A connection-based exchange cannot run on HTTP/2.
            self.core.learned.push(Learn::H1Only);
            let end = AttemptEnd::Restart(RestartReason::NeedsHttp11(kind));
            return Err(Ended::new(self.core, end));
        }
        Ok(Starting {
            core: self.core,
            h2: self.h2,
        })
    }
}

/// A chosen scheme is making its first credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starting {
    core: Core,
    h2: bool,
}

impl Starting {
    /// The client holds no credentials for the scheme after all (no Kerberos
    /// ticket): the policy chooses again, without it.
    pub fn unavailable(self) -> Choosing {
        Choosing {
            core: self.core,
            h2: self.h2,
        }
    }

    /// The first credentials are made and the 401's body was read (`token`: a
    /// connection-based exchange). They go on the same connection, or a new one
    /// if it closed or kept a large body back; a handshake whose connection
    /// closed before its first token starts over.
    pub fn started(self, token: bool, after: ConnectionAfter) -> Result<(Ready, SendOn), Ended> {
        let on = if after.withheld && !after.h2 {
            // The large body was kept back, which leaves an HTTP/1.1 connection
            // unusable; the token goes with it on a new one (Kerberos needs no
            // state from the 401, and NTLM starts with its first message). On
            // HTTP/2 only the stream was lost.
            SendOn::Fresh
        } else if after.closed {
            if token {
                let kind = self.core.failed.unwrap_or(SchemeKind::Negotiate);
                let end = AttemptEnd::Restart(RestartReason::ClosedMidHandshake(kind));
                return Err(Ended::new(self.core, end));
            }
            SendOn::Fresh
        } else {
            SendOn::Same
        };
        Ok((Ready { core: self.core }, on))
    }
}

/// What comes after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The exchange goes on: read the 401's body, then send its next token.
    Continue(Continuing),
    /// Ask the Digest session whether the nonce was stale.
    MaybeStale(StaleRetry),
    /// No pending credentials explain the response (none were sent, or the
    /// refused ones may fall back to a weaker scheme).
    Unanswered(Unanswered),
    /// Choose a scheme for the 401.
    Choose(Choosing),
    /// The response is the request's answer.
    Deliver(Delivery),
    /// The attempt ends without an answer.
    End(Ended),
}

impl Next {
    /// What the attempt learned since the last call.
    pub fn take_learned(&mut self) -> Vec<Learn> {
        let learned = match self {
            Self::Continue(s) => &mut s.core.learned,
            Self::MaybeStale(s) => &mut s.answered.core.learned,
            Self::Unanswered(s) => &mut s.core.learned,
            Self::Choose(s) => &mut s.core.learned,
            Self::Deliver(d) => &mut d.learned,
            Self::End(e) => &mut e.learned,
        };
        std::mem::take(learned)
    }
}

/// The response is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The scheme this request authenticated with, if it did.
    pub scheme: Option<SchemeKind>,
    /// Put the connection back in the pool.
    pub keep_connection: bool,
    /// The server keeps the authentication with the connection.
    pub connection_bound: bool,
    /// `Some`: mark the connection (un)authenticated.
    pub authenticated: Option<bool>,
    /// How many 401s the attempt met.
    pub challenges: u32,
    /// How many legs carried credentials.
    pub tokens: u32,
    /// What the attempt learned, not yet taken.
    pub learned: Vec<Learn>,
}

/// An attempt that ended without an answer, and what it learned on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// How it ended.
    pub end: AttemptEnd,
    /// What it learned, not yet taken.
    pub learned: Vec<Learn>,
    /// How many 401s it met.
    pub challenges: u32,
}

impl Ended {
    fn new(core: Core, end: AttemptEnd) -> Self {
        Self {
            end,
            learned: core.learned,
            challenges: core.challenges,
        }
    }

    /// What the attempt learned.
    pub fn take_learned(&mut self) -> Vec<Learn> {
        std::mem::take(&mut self.learned)
    }
}
