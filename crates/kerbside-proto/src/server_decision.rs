//! The server's decisions that need no network, no clock and no GSSAPI: who a
//! request comes from ([`identify`] and its typed states, in `verdict.rs` and
//! `steps.rs`), which challenges a `401` offers and in which order, what the access
//! rules' verdict turns into, what a backend's `401` for an authenticated user
//! becomes, and when a response says the connection stays authenticated.
//! `kerbside-server`'s layer asks these and carries out the answer.
//!
//! ```
//! use kerbside_proto::server_decision::{challenges, Offer, Offers, ServerMode};
//!
//! let offers = Offers { negotiate: true, ntlm: true, digest: false, basic: true };
//! // NTLM authenticates a connection: offered in connection mode over HTTP/1.1 only.
//! assert_eq!(
//!     challenges(offers, ServerMode::Connection, false),
//!     [Offer::Negotiate, Offer::Ntlm, Offer::Basic]
//! );
//! assert_eq!(challenges(offers, ServerMode::Connection, true), [Offer::Negotiate, Offer::Basic]);
//! ```

mod steps;
#[cfg(test)]
mod tests_cases;
#[cfg(test)]
mod tests_verdict;
mod verdict;

pub use steps::{
    ntlm_binding_check, BasicCheck, BasicRoute, ExpectBasic, ExpectBasicCheck, ExpectDigest,
    ExpectKerberos, ExpectNegotiate, ExpectNtlm, ExpectNtlmChallenge, ExpectNtlmVerify,
    ExpectSpnegoAuthenticate, ExpectSpnegoChallenge, KerberosOutcome, NegotiateRoute, NtlmRoute,
    Refused, Unreadable, Verified,
};
pub use verdict::{
    identify, BindingPolicy, ConnectionLogin, Continuation, ExpectRemembered, ExpectRulesNeed,
    Failure, Login, NtlmSetup, Refusal, Remember, RequestFacts, SessionState, Setup, Source, Start,
    Verdict,
};

/// How a server keeps clients authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMode {
    /// No authentication.
    None,
    /// A fresh token on every request.
    PerRequest,
    /// The identity stays with the TCP connection after one handshake.
    Connection,
    /// A session cookie stands for the identity after one handshake.
    Cookie,
}

/// The schemes a server is configured to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offers {
    /// Negotiate (a keytab, or NTLM inside SPNEGO).
    pub negotiate: bool,
    /// NTLM against a users file.
    pub ntlm: bool,
    /// Digest against an htdigest file.
    pub digest: bool,
    /// Basic (against an htpasswd file or the KDC).
    pub basic: bool,
}

/// One challenge of a `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Offer {
    /// `WWW-Authenticate: Negotiate`.
    Negotiate,
    /// `WWW-Authenticate: NTLM`.
    Ntlm,
    /// `WWW-Authenticate: Digest ...` (one line per algorithm).
    Digest,
    /// `WWW-Authenticate: Basic realm="..."`.
    Basic,
}

/// The challenges of a `401` that carries no continuation token, strongest first,
/// each scheme only if configured; NTLM only in connection mode over HTTP/1.1 (it
/// authenticates the connection, which HTTP/2 multiplexes).
pub fn challenges(offers: Offers, mode: ServerMode, h2: bool) -> Vec<Offer> {
    let mut out = Vec::with_capacity(4);
    if offers.negotiate {
        out.push(Offer::Negotiate);
    }
    if offers.ntlm && mode == ServerMode::Connection && !h2 {
        out.push(Offer::Ntlm);
    }
    if offers.digest {
        out.push(Offer::Digest);
    }
    if offers.basic {
        out.push(Offer::Basic);
    }
    out
}

/// What the access rules said about a request and the identity found for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    /// Let it through.
    Allow,
    /// It needs an identity it does not have.
    Authenticate,
    /// This identity (or anonymous) may not.
    Deny,
}

/// What the server does once the rules have spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRules {
    /// Hand the request to the application.
    Pass,
    /// `401` with the challenges.
    Challenge,
    /// Tell the HTTP/2 client to come back over HTTP/1.1 (connection mode cannot
    /// log in on a multiplexed connection).
    Http11Required,
    /// `403`.
    Forbidden,
}

/// The answer to the rules' verdict.
pub fn after_rules(verdict: RuleVerdict, mode: ServerMode, h2: bool) -> AfterRules {
    match verdict {
        RuleVerdict::Allow => AfterRules::Pass,
        RuleVerdict::Authenticate if h2 && mode == ServerMode::Connection => {
            AfterRules::Http11Required
        }
        RuleVerdict::Authenticate => AfterRules::Challenge,
        RuleVerdict::Deny => AfterRules::Forbidden,
    }
}

/// The status the client gets for the application's `upstream` status: a `401` for
/// a user the server authenticated becomes `403` (hgweb answers `401` for a user
/// missing from `allow-push`; relaying it with a challenge would make clients retry
/// forever).
pub fn client_status(authenticated: bool, upstream: u16) -> u16 {
    if authenticated && upstream == 401 {
        403
    } else {
        upstream
    }
}

/// Whether a response says `Persistent-Auth: true`: the connection now carries the
/// identity (connection mode, HTTP/1.1, someone authenticated).
pub fn persistent_auth(mode: ServerMode, authenticated: bool, h2: bool) -> bool {
    mode == ServerMode::Connection && authenticated && !h2
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [ServerMode; 4] = [
        ServerMode::None,
        ServerMode::PerRequest,
        ServerMode::Connection,
        ServerMode::Cookie,
    ];

    fn all_offers() -> impl Iterator<Item = Offers> {
        (0u8..16).map(|bits| Offers {
            negotiate: bits & 1 != 0,
            ntlm: bits & 2 != 0,
            digest: bits & 4 != 0,
            basic: bits & 8 != 0,
        })
    }

    #[test]
    fn challenges_over_every_configuration() {
        for offers in all_offers() {
            for mode in MODES {
                for h2 in [false, true] {
                    let got = challenges(offers, mode, h2);
                    let why = format!("{offers:?} {mode:?} h2={h2}: {got:?}");
                    // Strongest first, no scheme twice.
                    assert!(got.windows(2).all(|w| w[0] < w[1]), "{why}");
                    // Only what is configured.
                    assert_eq!(got.contains(&Offer::Negotiate), offers.negotiate, "{why}");
                    assert_eq!(got.contains(&Offer::Digest), offers.digest, "{why}");
                    assert_eq!(got.contains(&Offer::Basic), offers.basic, "{why}");
                    // NTLM: configured, connection mode, HTTP/1.1 — all three.
                    assert_eq!(
                        got.contains(&Offer::Ntlm),
                        offers.ntlm && mode == ServerMode::Connection && !h2,
                        "{why}"
                    );
                }
            }
        }
    }

    #[test]
    fn rules_over_every_verdict_mode_and_protocol() {
        for verdict in [
            RuleVerdict::Allow,
            RuleVerdict::Authenticate,
            RuleVerdict::Deny,
        ] {
            for mode in MODES {
                for h2 in [false, true] {
                    let got = after_rules(verdict, mode, h2);
                    let want = match verdict {
                        RuleVerdict::Allow => AfterRules::Pass,
                        RuleVerdict::Deny => AfterRules::Forbidden,
                        RuleVerdict::Authenticate if h2 && mode == ServerMode::Connection => {
                            AfterRules::Http11Required
                        }
                        RuleVerdict::Authenticate => AfterRules::Challenge,
                    };
                    assert_eq!(got, want, "{verdict:?} {mode:?} h2={h2}");
                    // A request the rules refuse never passes.
                    assert!(verdict == RuleVerdict::Allow || got != AfterRules::Pass);
                }
            }
        }
    }

    #[test]
    fn a_backend_401_for_a_known_user_is_403_and_nothing_else_changes() {
        for status in 100..600 {
            assert_eq!(client_status(false, status), status);
            let want = if status == 401 { 403 } else { status };
            assert_eq!(client_status(true, status), want);
        }
    }

    #[test]
    fn persistent_auth_only_for_an_http1_connection_mode_login() {
        for mode in MODES {
            for authenticated in [false, true] {
                for h2 in [false, true] {
                    assert_eq!(
                        persistent_auth(mode, authenticated, h2),
                        mode == ServerMode::Connection && authenticated && !h2
                    );
                }
            }
        }
    }
}
