//! [`ProxyAuthDriver`]: authenticating to a forward proxy (`407`,
//! `Proxy-Authenticate`, `Proxy-Authorization`) on the one connection to it, for
//! a `CONNECT` tunnel or for requests sent through it.

use crate::policy::SchemeKind;

/// One connection's authentication to a proxy: which response goes to the token
/// exchange, when to choose a scheme, when to send again, when to give up.
///
/// The proxy keeps the authentication with the connection (Negotiate, NTLM), or
/// password credentials (Basic, Digest) go with the request; a `407` after them
/// means they were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuthDriver {
    max_rounds: u32,
    /// `407` responses that started a scheme.
    rounds: u32,
    /// Tokens sent in the current exchange.
    tokens: u32,
    phase: Phase,
    /// The connection to the proxy was made again once already.
    reconnected: bool,
    /// The password credentials out were made without this request's `407` (a
    /// Digest login the proxy took before, with its next nonce count).
    preemptive: bool,
    /// A `stale=true` Digest challenge was answered once already.
    stale_answered: bool,
}

/// What the proxy exchange is waiting for; every phase takes any response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No credentials out, or the exchange finished.
    Idle,
    /// A token of a connection-based exchange is out.
    Token(SchemeKind),
    /// Password credentials (Basic, Digest) go with the request.
    Password(SchemeKind),
}

/// What to do with a response from (or through) the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyStep {
    /// The proxy is satisfied, or has nothing to say: the response is the
    /// origin's (or the tunnel's).
    Done,
    /// The token exchange reads the response next
    /// ([`ProxyAuthDriver::handle_token_result`]).
    Exchange(SchemeKind),
    /// A `407` to answer: the policy chooses a scheme for the proxy, then
    /// [`ProxyAuthDriver::started`].
    Choose,
    /// Send the request again with the new `Proxy-Authorization`.
    Resend,
    /// A `407` to Digest credentials: the Digest session reads its challenge (is the
    /// nonce stale?), then [`ProxyAuthDriver::handle_digest_rechallenge`].
    DigestRechallenge,
    /// Give up.
    GiveUp(ProxyGiveUp),
}

/// How the Digest session read the `407` that answered its credentials (RFC 7616
/// §3.3: `stale=true` means the password was right and the nonce old).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestRechallenge {
    /// `stale=true` for the same realm and hash: the session took the new nonce.
    Stale,
    /// No `stale=true`: the credentials were refused.
    Refused,
}

/// How the token exchange took the proxy's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyTokenResult {
    /// The proxy wants another token.
    Continue,
    /// The exchange is complete: the connection is authenticated.
    Established,
    /// The proxy refused the token.
    Rejected,
}

/// Why the client gives up on the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyGiveUp {
    /// The proxy answered `407` to Basic credentials: wrong user name or password.
    BasicRefused,
    /// The proxy answered `407` to Digest credentials: wrong user name or password.
    DigestRefused,
    /// The proxy refused the token of this scheme.
    Rejected(SchemeKind),
    /// The proxy answered `407` more often than allowed.
    TooManyChallenges {
        /// How many.
        seen: u32,
        /// The limit.
        max: u32,
    },
    /// The proxy closed the connection in the middle of its exchange twice.
    ClosedTwice,
}

/// What to do when the proxy closed the connection between two legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyReconnect {
    /// Connect to the proxy again and go on with the exchange.
    Reconnect,
    /// Connect to the proxy again and start the exchange over without
    /// credentials: the proxy's challenge was for the closed connection.
    StartOver,
    /// Give up.
    GiveUp(ProxyGiveUp),
}

impl ProxyAuthDriver {
    /// A connection to the proxy with nothing sent yet; at most
    /// `max_auth_rounds` `407`s start a scheme.
    pub fn new(max_auth_rounds: u32) -> Self {
        Self {
            max_rounds: max_auth_rounds,
            rounds: 0,
            tokens: 0,
            phase: Phase::Idle,
            reconnected: false,
            preemptive: false,
            stale_answered: false,
        }
    }

    /// How many tokens the current exchange sent.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// A response came from the proxy (`status`).
    pub fn handle_response(&mut self, status: u16) -> ProxyStep {
        match self.phase {
            Phase::Password(SchemeKind::Digest) if status == 407 => ProxyStep::DigestRechallenge,
            Phase::Password(_) if status == 407 => ProxyStep::GiveUp(ProxyGiveUp::BasicRefused),
            Phase::Password(_) => ProxyStep::Done,
            Phase::Token(kind) => ProxyStep::Exchange(kind),
            Phase::Idle if status != 407 => ProxyStep::Done,
            Phase::Idle => {
                self.rounds += 1;
                if self.rounds > self.max_rounds {
                    return ProxyStep::GiveUp(ProxyGiveUp::TooManyChallenges {
                        seen: self.rounds,
                        max: self.max_rounds,
                    });
                }
                ProxyStep::Choose
            }
        }
    }

    /// The token exchange read the response ([`ProxyStep::Exchange`]).
    pub fn handle_token_result(&mut self, result: ProxyTokenResult) -> ProxyStep {
        let Phase::Token(kind) = self.phase else {
            // No exchange is out: nothing to continue.
            return ProxyStep::Done;
        };
        match result {
            ProxyTokenResult::Continue => {
                self.tokens += 1;
                ProxyStep::Resend
            }
            ProxyTokenResult::Established => {
                // The proxy keeps the authentication with the connection.
                self.phase = Phase::Idle;
                ProxyStep::Done
            }
            ProxyTokenResult::Rejected => {
                self.phase = Phase::Idle;
                ProxyStep::GiveUp(ProxyGiveUp::Rejected(kind))
            }
        }
    }

    /// The chosen scheme made its first credentials: send the request again with
    /// them. Basic and Digest go with the request, not the connection.
    pub fn started(&mut self, kind: SchemeKind) -> ProxyStep {
        if matches!(kind, SchemeKind::Basic | SchemeKind::Digest) {
            self.phase = Phase::Password(kind);
        } else {
            self.phase = Phase::Token(kind);
            self.tokens = 1;
        }
        ProxyStep::Resend
    }

    /// Password credentials made before this request's `407` (a Digest login the
    /// proxy took before) go with the request: a `407` that refuses them starts over
    /// with its challenge, once, instead of giving up.
    pub fn preempted(&mut self, kind: SchemeKind) {
        self.started(kind);
        self.preemptive = true;
    }

    /// The Digest session read the `407` to its credentials
    /// ([`ProxyStep::DigestRechallenge`]). A stale nonce is answered once with the new
    /// one, without counting as a refusal; a second stale in a row, or a refusal, gives
    /// up, except that preemptive credentials start over with the `407`'s challenge.
    pub fn handle_digest_rechallenge(&mut self, rechallenge: DigestRechallenge) -> ProxyStep {
        if rechallenge == DigestRechallenge::Stale && !self.stale_answered {
            self.stale_answered = true;
            // The new credentials answer this request's own challenge.
            self.preemptive = false;
            return ProxyStep::Resend;
        }
        if self.preemptive {
            self.preemptive = false;
            self.phase = Phase::Idle;
            return self.handle_response(407);
        }
        ProxyStep::GiveUp(ProxyGiveUp::DigestRefused)
    }

    /// Whether a connection-based exchange is past its first token: the proxy's
    /// challenge (NTLM's, or a Negotiate continuation) belongs to this connection,
    /// so if the connection fails or closes now the exchange cannot go on on
    /// another one; the request starts over on a new connection (once: the
    /// request's own restart budget).
    pub fn mid_exchange(&self) -> bool {
        matches!(self.phase, Phase::Token(_)) && self.tokens > 1
    }

    /// The proxy closed the connection (or it failed) before the next leg:
    /// connect again, once. An exchange past its first token starts over (see
    /// [`mid_exchange`](Self::mid_exchange)); before it, the first token goes on
    /// the new connection.
    pub fn handle_closed(&mut self) -> ProxyReconnect {
        if self.reconnected {
            return ProxyReconnect::GiveUp(ProxyGiveUp::ClosedTwice);
        }
        self.reconnected = true;
        if self.mid_exchange() {
            self.phase = Phase::Idle;
            self.tokens = 0;
            return ProxyReconnect::StartOver;
        }
        ProxyReconnect::Reconnect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use SchemeKind::{Basic, Negotiate, Ntlm};

    #[test]
    fn only_a_challenge_answered_ties_the_exchange_to_its_connection() {
        let mut d = ProxyAuthDriver::new(4);
        assert!(!d.mid_exchange());
        assert_eq!(d.handle_response(407), ProxyStep::Choose);
        d.started(Ntlm);
        // The first token may go on any connection.
        assert!(!d.mid_exchange());
        assert_eq!(d.handle_response(407), ProxyStep::Exchange(Ntlm));
        assert_eq!(
            d.handle_token_result(ProxyTokenResult::Continue),
            ProxyStep::Resend
        );
        // The answer to the proxy's challenge belongs to this connection.
        assert!(d.mid_exchange());
        assert_eq!(d.handle_response(200), ProxyStep::Exchange(Ntlm));
        d.handle_token_result(ProxyTokenResult::Established);
        assert!(!d.mid_exchange());
        // A close now starts the exchange over, once.
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        d.started(Ntlm);
        d.handle_response(407);
        d.handle_token_result(ProxyTokenResult::Continue);
        assert_eq!(d.handle_closed(), ProxyReconnect::StartOver);
        assert!(!d.mid_exchange());
        assert_eq!(d.handle_response(407), ProxyStep::Choose);
        d.started(Ntlm);
        d.handle_response(407);
        d.handle_token_result(ProxyTokenResult::Continue);
        assert_eq!(
            d.handle_closed(),
            ProxyReconnect::GiveUp(ProxyGiveUp::ClosedTwice)
        );
        // Password schemes are never tied to a connection.
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        d.started(Basic);
        assert!(!d.mid_exchange());
    }

    #[test]
    fn a_response_without_407_goes_through() {
        let mut d = ProxyAuthDriver::new(4);
        assert_eq!(d.handle_response(200), ProxyStep::Done);
        assert_eq!(d.handle_response(401), ProxyStep::Done);
    }

    #[test]
    fn a_407_chooses_a_scheme_and_its_token_goes_again() {
        let mut d = ProxyAuthDriver::new(4);
        assert_eq!(d.handle_response(407), ProxyStep::Choose);
        assert_eq!(d.started(Negotiate), ProxyStep::Resend);
        assert_eq!(d.tokens(), 1);
        assert_eq!(d.handle_response(200), ProxyStep::Exchange(Negotiate));
        assert_eq!(
            d.handle_token_result(ProxyTokenResult::Established),
            ProxyStep::Done
        );
        // The connection stays authenticated: later responses go through.
        assert_eq!(d.handle_response(200), ProxyStep::Done);
    }

    #[test]
    fn ntlm_takes_three_legs_on_one_connection() {
        let mut d = ProxyAuthDriver::new(4);
        assert_eq!(d.handle_response(407), ProxyStep::Choose);
        d.started(Ntlm);
        assert_eq!(d.handle_response(407), ProxyStep::Exchange(Ntlm));
        assert_eq!(
            d.handle_token_result(ProxyTokenResult::Continue),
            ProxyStep::Resend
        );
        assert_eq!(d.tokens(), 2);
        assert_eq!(d.handle_response(200), ProxyStep::Exchange(Ntlm));
        assert_eq!(
            d.handle_token_result(ProxyTokenResult::Established),
            ProxyStep::Done
        );
    }

    #[test]
    fn a_refused_token_gives_up() {
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        d.started(Ntlm);
        assert_eq!(d.handle_response(407), ProxyStep::Exchange(Ntlm));
        assert_eq!(
            d.handle_token_result(ProxyTokenResult::Rejected),
            ProxyStep::GiveUp(ProxyGiveUp::Rejected(Ntlm))
        );
    }

    #[test]
    fn a_407_to_basic_credentials_is_a_refusal() {
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        assert_eq!(d.started(Basic), ProxyStep::Resend);
        assert_eq!(d.handle_response(200), ProxyStep::Done);
        assert_eq!(
            d.handle_response(407),
            ProxyStep::GiveUp(ProxyGiveUp::BasicRefused)
        );
    }

    #[test]
    fn a_407_to_digest_credentials_is_a_refusal_and_no_token_exchange() {
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        assert_eq!(d.started(SchemeKind::Digest), ProxyStep::Resend);
        assert_eq!(d.handle_response(200), ProxyStep::Done);
        assert_eq!(d.handle_response(407), ProxyStep::DigestRechallenge);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Refused),
            ProxyStep::GiveUp(ProxyGiveUp::DigestRefused)
        );
    }

    #[test]
    fn a_stale_digest_nonce_is_answered_once_without_a_refusal() {
        let mut d = ProxyAuthDriver::new(1);
        assert_eq!(d.handle_response(407), ProxyStep::Choose);
        d.started(SchemeKind::Digest);
        assert_eq!(d.handle_response(407), ProxyStep::DigestRechallenge);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Stale),
            ProxyStep::Resend
        );
        // Not a round: max-auth-rounds 1 is not exceeded.
        assert_eq!(d.handle_response(200), ProxyStep::Done);

        // A second stale in a row is a refusal, as is no stale at all.
        let mut d = ProxyAuthDriver::new(4);
        d.handle_response(407);
        d.started(SchemeKind::Digest);
        d.handle_response(407);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Stale),
            ProxyStep::Resend
        );
        assert_eq!(d.handle_response(407), ProxyStep::DigestRechallenge);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Stale),
            ProxyStep::GiveUp(ProxyGiveUp::DigestRefused)
        );
    }

    #[test]
    fn preemptive_digest_credentials_refused_start_over_once() {
        let mut d = ProxyAuthDriver::new(4);
        d.preempted(SchemeKind::Digest);
        assert_eq!(d.handle_response(407), ProxyStep::DigestRechallenge);
        // The proxy forgot the nonce (restarted): its challenge decides.
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Refused),
            ProxyStep::Choose
        );
        d.started(SchemeKind::Digest);
        assert_eq!(d.handle_response(407), ProxyStep::DigestRechallenge);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Refused),
            ProxyStep::GiveUp(ProxyGiveUp::DigestRefused)
        );

        // A stale preemptive nonce is answered with the new one; a refusal then is final.
        let mut d = ProxyAuthDriver::new(4);
        d.preempted(SchemeKind::Digest);
        d.handle_response(407);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Stale),
            ProxyStep::Resend
        );
        d.handle_response(407);
        assert_eq!(
            d.handle_digest_rechallenge(DigestRechallenge::Refused),
            ProxyStep::GiveUp(ProxyGiveUp::DigestRefused)
        );
    }

    #[test]
    fn the_client_gives_up_after_max_auth_rounds_407s() {
        let mut d = ProxyAuthDriver::new(2);
        for _ in 0..2 {
            assert_eq!(d.handle_response(407), ProxyStep::Choose);
        }
        assert_eq!(
            d.handle_response(407),
            ProxyStep::GiveUp(ProxyGiveUp::TooManyChallenges { seen: 3, max: 2 })
        );
    }

    #[test]
    fn a_closed_connection_is_made_again_once() {
        let mut d = ProxyAuthDriver::new(4);
        assert_eq!(d.handle_closed(), ProxyReconnect::Reconnect);
        assert_eq!(
            d.handle_closed(),
            ProxyReconnect::GiveUp(ProxyGiveUp::ClosedTwice)
        );
    }

    proptest! {
        /// Whatever the proxy answers, the exchange ends (Done or GiveUp): within
        /// max-auth-rounds `407`s, each exchange as long as its token goes on.
        #[test]
        fn every_proxy_exchange_ends(
            max in 0u32..6,
            statuses in proptest::collection::vec(prop_oneof![Just(200u16), Just(407u16)], 0..64),
            results in proptest::collection::vec(0u8..3, 0..64),
            kinds in proptest::collection::vec(prop_oneof![Just(Negotiate), Just(Ntlm), Just(Basic), Just(SchemeKind::Digest)], 0..64),
        ) {
            let mut d = ProxyAuthDriver::new(max);
            if max % 2 == 0 {
                // A Digest login the proxy took before goes with the first request.
                d.preempted(SchemeKind::Digest);
            }
            let mut statuses = statuses.into_iter().chain(std::iter::repeat(407));
            let mut results = results.into_iter().chain(std::iter::repeat(0));
            let mut kinds = kinds.into_iter().chain(std::iter::repeat(Ntlm));
            let mut steps = 0;
            let limit = 64 + (max + 2) * 80;
            loop {
                steps += 1;
                prop_assert!(steps < limit, "no end after {steps} responses");
                let mut step = d.handle_response(statuses.next().unwrap_or(407));
                if step == ProxyStep::DigestRechallenge {
                    step = d.handle_digest_rechallenge(if results.next().unwrap_or(0) == 0 {
                        DigestRechallenge::Stale
                    } else {
                        DigestRechallenge::Refused
                    });
                }
                if let ProxyStep::Exchange(_) = step {
                    let r = match results.next().unwrap_or(0) {
                        // A token continues at most 8 times (the exchange's own limit).
                        0 if d.tokens() < 8 => ProxyTokenResult::Continue,
                        1 => ProxyTokenResult::Established,
                        _ => ProxyTokenResult::Rejected,
                    };
                    step = d.handle_token_result(r);
                }
                match step {
                    ProxyStep::GiveUp(_) | ProxyStep::Done => break,
                    ProxyStep::Choose => {
                        d.started(kinds.next().unwrap_or(Ntlm));
                    }
                    _ => {}
                }
            }
        }
    }
}
