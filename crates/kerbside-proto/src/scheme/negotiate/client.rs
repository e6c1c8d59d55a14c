//! The client side of a Negotiate exchange, one typed state per thing it waits for.
//!
//! ```
//! use kerbside_proto::scheme::negotiate::client::{ExpectChallenge, Progress};
//! use kerbside_proto::{parse_challenges, MutualAuth, Mechanism, Step};
//!
//! // A stand-in mechanism: real code uses kerbside-gssapi's initiator.
//! #[derive(Debug)]
//! struct OneLeg;
//! impl Mechanism for OneLeg {
//!     type Error = std::io::Error;
//!     fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Self::Error> {
//!         Ok(match input {
//!             None => Step::Continue(b"hello".to_vec()),
//!             Some(_) => Step::Done(None),
//!         })
//!     }
//! }
//!
//! let offered = parse_challenges([&b"Negotiate"[..]]).unwrap();
//! let (credentials, next) = ExpectChallenge::new(OneLeg, MutualAuth::Optional)
//!     .handle_challenge(&offered)
//!     .unwrap();
//! assert_eq!(credentials.to_header_value(), "Negotiate aGVsbG8=");
//! let final_challenge = parse_challenges([&b"Negotiate b2s="[..]]).unwrap();
//! match next.handle_response(200, &final_challenge).unwrap() {
//!     Progress::Established(done) => assert!(done.mutual_verified()),
//!     Progress::Continue(..) => unreachable!(),
//! }
//! ```

use crate::header::{AuthData, Challenge, Credentials, HeaderError, Scheme};
use crate::mechanism::{Mechanism, Step};
use crate::policy::MutualAuth;

/// How many tokens one exchange may send before it is abandoned.
pub const DEFAULT_MAX_LEGS: u32 = 5;

/// What went wrong in a Negotiate exchange, from the client's point of view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiateError<E: std::error::Error + 'static> {
    /// The mechanism (GSSAPI) failed to produce or accept a token.
    #[error("{0}")]
    Mechanism(#[source] E),
    /// The response that should have started the exchange does not offer Negotiate.
    #[error("the server did not offer Negotiate (it offered: {offered})")]
    NotOffered {
        /// The schemes the server did offer, comma-separated, or "nothing".
        offered: String,
    },
    /// The server answered our token with another 401 and no token to continue with.
    #[error(
        "the server rejected the Kerberos token (401 with no continuation token); \
         it may not trust this realm, lack the key for the service name, or refuse this user"
    )]
    Rejected,
    /// A token in a `WWW-Authenticate: Negotiate` header is not valid base64.
    #[error("the server sent a malformed Negotiate token: {0}")]
    MalformedToken(#[source] HeaderError),
    /// Mutual authentication is required and the server sent no final token.
    #[error(
        "the server sent no final Negotiate token, so it did not prove it holds the \
         service key (mutual authentication is required; use --mutual optional to accept this)"
    )]
    MutualAuthMissing,
    /// The server's final token did not verify: it may not be the server we wanted.
    #[error(
        "the server's final Negotiate token did not verify (mutual authentication failed): {0}"
    )]
    MutualAuthFailed(#[source] E),
    /// The server's final token did not complete the exchange.
    #[error("the server's final Negotiate token did not complete the exchange")]
    MutualAuthIncomplete,
    /// The exchange went on for more legs than allowed.
    #[error("the Negotiate exchange did not finish within {0} legs; giving up")]
    TooManyLegs(u32),
}

/// Start of an exchange: waiting for the server's `401` with `WWW-Authenticate:
/// Negotiate`, or ready to send a token unasked ([`start`](Self::start)).
#[derive(Debug)]
pub struct ExpectChallenge<M> {
    mech: M,
    mutual: MutualAuth,
    max_legs: u32,
    challenge_status: u16,
    scheme: Scheme,
}

/// A token was sent; waiting for the response to it.
#[derive(Debug)]
pub struct ExpectFinalToken<M> {
    mech: M,
    mutual: MutualAuth,
    legs: u32,
    max_legs: u32,
    challenge_status: u16,
    scheme: Scheme,
    /// The mechanism already said it is done (no mutual authentication requested).
    mech_done: bool,
}

/// The outcome of a response to a token.
#[derive(Debug)]
pub enum Progress<M> {
    /// The server wants another leg: send these credentials on the same connection.
    Continue(Credentials, ExpectFinalToken<M>),
    /// The exchange is over and the response is the answer to the request.
    Established(Established),
}

/// A finished exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    mutual: MutualOutcome,
}

/// What became of mutual authentication in a finished exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutualOutcome {
    /// The server's final token verified.
    Verified,
    /// The server sent no final token (allowed by the policy).
    NotSent,
    /// The policy is `off`; a final token, if sent, was not looked at.
    NotChecked,
}

impl Established {
    /// True if the server proved it holds the service key.
    pub fn mutual_verified(&self) -> bool {
        self.mutual == MutualOutcome::Verified
    }

    /// What became of mutual authentication.
    pub fn mutual(&self) -> MutualOutcome {
        self.mutual
    }
}

fn find_scheme<'a>(challenges: &'a [Challenge], scheme: &Scheme) -> Option<&'a Challenge> {
    challenges.iter().find(|c| c.scheme.is(scheme.as_str()))
}

fn token_of<E: std::error::Error>(
    challenge: Option<&Challenge>,
) -> Result<Option<Vec<u8>>, NegotiateError<E>> {
    match challenge {
        None => Ok(None),
        Some(c) => c.decode_token68().map_err(NegotiateError::MalformedToken),
    }
}

impl<M: Mechanism> ExpectChallenge<M> {
    /// Starts an exchange with a fresh mechanism (one per exchange, never reused).
    pub fn new(mech: M, mutual: MutualAuth) -> Self {
        Self {
            mech,
            mutual,
            max_legs: DEFAULT_MAX_LEGS,
            challenge_status: 401,
            scheme: Scheme::NEGOTIATE,
        }
    }

    /// Carries the mechanism's tokens under another connection-based scheme than
    /// `Negotiate`: `NTLM` (MS-NLMP over HTTP works the same way, one connection,
    /// token68 data, 401 between legs).
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Authenticates to a proxy: challenges come with `407` in
    /// `Proxy-Authenticate`, credentials go in `Proxy-Authorization`.
    pub fn for_proxy(mut self) -> Self {
        self.challenge_status = 407;
        self
    }

    /// Sets how many tokens the exchange may send.
    pub fn with_max_legs(mut self, max_legs: u32) -> Self {
        self.max_legs = max_legs.max(1);
        self
    }

    /// Sends the first token without waiting for a 401 (the server is known to want
    /// Negotiate). The caller decides whether that is safe on this transport.
    pub fn start(mut self) -> Result<(Credentials, ExpectFinalToken<M>), NegotiateError<M::Error>> {
        let step = self.mech.step(None).map_err(NegotiateError::Mechanism)?;
        let (token, mech_done) = match step {
            Step::Continue(t) => (t, false),
            Step::Done(Some(t)) => (t, true),
            // A mechanism that has nothing to say at the start cannot authenticate.
            Step::Done(None) => return Err(NegotiateError::MutualAuthIncomplete),
        };
        Ok((
            Credentials::new(self.scheme.clone(), AuthData::base64(Some(&token))),
            ExpectFinalToken {
                mech: self.mech,
                mutual: self.mutual,
                legs: 1,
                max_legs: self.max_legs,
                challenge_status: self.challenge_status,
                scheme: self.scheme,
                mech_done,
            },
        ))
    }

    /// Handles the challenges of a `401` response (all `WWW-Authenticate` lines).
    pub fn handle_challenge(
        self,
        challenges: &[Challenge],
    ) -> Result<(Credentials, ExpectFinalToken<M>), NegotiateError<M::Error>> {
        if find_scheme(challenges, &self.scheme).is_none() {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            return Err(NegotiateError::NotOffered {
                offered: if offered.is_empty() {
                    "nothing".to_owned()
                } else {
                    offered.join(", ")
                },
            });
        }
        self.start()
    }
}

impl<M: Mechanism> ExpectFinalToken<M> {
    /// How many tokens this exchange has sent.
    pub fn legs(&self) -> u32 {
        self.legs
    }

    /// The mechanism the exchange runs.
    pub fn mechanism(&self) -> &M {
        &self.mech
    }

    /// The scheme the tokens travel under (`Negotiate` or `NTLM`).
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Handles the response to the last token: its status and its challenges
    /// (`WWW-Authenticate` lines, or `Proxy-Authenticate` for a proxy, which carry
    /// the final token on any status).
    pub fn handle_response(
        mut self,
        status: u16,
        challenges: &[Challenge],
    ) -> Result<Progress<M>, NegotiateError<M::Error>> {
        let token = token_of(find_scheme(challenges, &self.scheme))?;
        if status == self.challenge_status {
            let Some(token) = token else {
                return Err(NegotiateError::Rejected);
            };
            if self.mech_done {
                return Err(NegotiateError::Rejected);
            }
            if self.legs >= self.max_legs {
                return Err(NegotiateError::TooManyLegs(self.max_legs));
            }
            let next = match self
                .mech
                .step(Some(&token))
                .map_err(NegotiateError::Mechanism)?
            {
                Step::Continue(t) => t,
                Step::Done(Some(t)) => {
                    self.mech_done = true;
                    t
                }
                Step::Done(None) => return Err(NegotiateError::Rejected),
            };
            self.legs += 1;
            return Ok(Progress::Continue(
                Credentials::new(self.scheme.clone(), AuthData::base64(Some(&next))),
                self,
            ));
        }
        let mutual = match (self.mutual, token) {
            (MutualAuth::Off, _) => MutualOutcome::NotChecked,
            (MutualAuth::Required, None) => return Err(NegotiateError::MutualAuthMissing),
            (MutualAuth::Optional, None) => MutualOutcome::NotSent,
            (_, Some(token)) => {
                if self.mech_done {
                    // The mechanism finished without asking for mutual authentication,
                    // so there is nothing the token could prove.
                    return Err(NegotiateError::MutualAuthIncomplete);
                }
                match self.mech.step(Some(&token)) {
                    Ok(Step::Done(None)) => MutualOutcome::Verified,
                    Ok(_) => return Err(NegotiateError::MutualAuthIncomplete),
                    Err(e) => return Err(NegotiateError::MutualAuthFailed(e)),
                }
            }
        };
        Ok(Progress::Established(Established { mutual }))
    }
}
