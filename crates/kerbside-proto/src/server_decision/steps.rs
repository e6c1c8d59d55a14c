//! One check per mechanism, each a typed state: the server runs the mechanism it names
//! (GSSAPI, the NTLM users file, the htdigest file, htpasswd or the KDC) and hands the
//! outcome to `handle`, which consumes the state and returns the [`Verdict`].

use super::verdict::{
    BindingPolicy, Continuation, Failure, Login, Refusal, Remember, RequestFacts, Setup, Source,
    Start, Verdict,
};
use super::ServerMode;
use crate::scheme::digest::server::{DigestRefusal, DigestVerified};
use crate::scheme::ntlm::message::message_type;
use crate::scheme::ntlm::server::ChannelBindingCheck;
use crate::SchemeKind;

/// Credentials or a message the mechanism could not read (answer `400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// Credentials the mechanism read and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// A login a mechanism verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who.
    pub principal: String,
    /// Whether the client's token was bound to the TLS channel.
    pub channel_bound: bool,
    /// The mechanism's last token for the client, if it has one.
    pub final_token: Option<Vec<u8>>,
}

/// How NTLM checks channel bindings under the server's policy: never without TLS.
pub fn ntlm_binding_check(policy: BindingPolicy, tls: bool) -> ChannelBindingCheck {
    match (policy, tls) {
        (_, false) | (BindingPolicy::Off, _) => ChannelBindingCheck::Off,
        (BindingPolicy::Optional, true) => ChannelBindingCheck::IfPresent,
        (BindingPolicy::Required, true) => ChannelBindingCheck::Required,
    }
}

fn login(verified: Verified, scheme: SchemeKind, kerberos: bool, remember: Remember) -> Verdict {
    Verdict::Authenticated(Login {
        principal: verified.principal,
        scheme,
        kerberos,
        channel_bound: verified.channel_bound,
        final_token: verified.final_token,
        authentication_info: None,
        remember,
        source: Source::Credentials,
    })
}

fn refuse(refusal: Refusal) -> Verdict {
    Verdict::Refuse(refusal)
}

/// A `Negotiate` token, before it is known which mechanism reads it.
#[derive(Debug)]
pub struct ExpectNegotiate {
    token: Vec<u8>,
    kerberos: bool,
    spnego_ntlm: bool,
    /// Connection mode, and the connection is known: multi-leg exchanges and
    /// logins stay with it.
    on_connection: bool,
    binding: BindingPolicy,
    tls: bool,
    set_cookie: bool,
}

/// Where a `Negotiate` token goes.
#[derive(Debug)]
pub enum NegotiateRoute {
    /// Decided already.
    Answer(Verdict),
    /// To GSSAPI (Kerberos, or whatever the keytab's mechanisms read).
    Kerberos(ExpectKerberos),
    /// NTLM inside SPNEGO, first leg: make the CHALLENGE.
    SpnegoNtlmChallenge(ExpectSpnegoChallenge),
    /// NTLM inside SPNEGO, second leg: check the AUTHENTICATE against the
    /// connection's pending exchange.
    SpnegoNtlmAuthenticate(ExpectSpnegoAuthenticate),
}

impl ExpectNegotiate {
    pub(super) fn new(setup: &Setup, facts: RequestFacts, token: Vec<u8>) -> Self {
        Self {
            token,
            kerberos: setup.kerberos,
            spnego_ntlm: setup.ntlm.is_some_and(|n| n.in_negotiate),
            on_connection: setup.mode == ServerMode::Connection && facts.per_connection,
            binding: setup.binding,
            tls: facts.binding,
            set_cookie: setup.mode == ServerMode::Cookie && setup.sessions,
        }
    }

    /// The token.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// Routes the token, given whether the connection has a SPNEGO-NTLM exchange
    /// waiting for its second leg. NTLM inside SPNEGO (when configured) takes that
    /// second leg, and a NegTokenInit preferring NTLMSSP; a raw NTLM message under
    /// `Negotiate` (not SPNEGO) goes to GSSAPI, which refuses it. NTLM needs connection
    /// mode; Kerberos needs a keytab.
    pub fn route(self, spnego_ntlm_pending: bool) -> NegotiateRoute {
        let ntlm = self.spnego_ntlm
            && (spnego_ntlm_pending
                || (crate::spnego::is_ntlmssp_init(&self.token)
                    && !self.token.starts_with(b"NTLMSSP")));
        if ntlm {
            if !self.on_connection {
                return NegotiateRoute::Answer(refuse(Refusal::unauthorized()));
            }
            return if spnego_ntlm_pending {
                NegotiateRoute::SpnegoNtlmAuthenticate(ExpectSpnegoAuthenticate {
                    token: self.token,
                    check: ntlm_binding_check(self.binding, self.tls),
                })
            } else {
                NegotiateRoute::SpnegoNtlmChallenge(ExpectSpnegoChallenge { token: self.token })
            };
        }
        if !self.kerberos {
            return NegotiateRoute::Answer(refuse(Refusal::unauthorized()));
        }
        NegotiateRoute::Kerberos(ExpectKerberos {
            token: self.token,
            on_connection: self.on_connection,
            binding: self.binding,
            tls: self.tls,
            set_cookie: self.set_cookie,
        })
    }
}

/// A token for GSSAPI.
#[derive(Debug)]
pub struct ExpectKerberos {
    token: Vec<u8>,
    on_connection: bool,
    binding: BindingPolicy,
    tls: bool,
    set_cookie: bool,
}

/// What GSSAPI made of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KerberosOutcome {
    /// Accepted.
    Done(Verified),
    /// Another leg is needed: this token goes back to the client.
    Continue(Vec<u8>),
    /// Refused (the server counts GSSAPI's reason).
    Refused,
    /// The server could not run the check (its handshake limiter closed).
    Unavailable,
}

impl ExpectKerberos {
    /// The token.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// Whether the acceptor's context continues a pending exchange of the connection
    /// and waits there for the next leg (connection mode); otherwise every token
    /// starts a fresh context.
    pub fn keeps_context(&self) -> bool {
        self.on_connection
    }

    /// Whether the TLS channel's bindings are handed to the acceptor.
    pub fn uses_binding(&self) -> bool {
        self.binding != BindingPolicy::Off
    }

    /// The verdict. A login without bindings is refused when they are required and
    /// the channel has some; it stays with the connection in connection mode and
    /// makes a session cookie in cookie mode. Another leg is possible only where the
    /// context can wait for it (connection mode); per request, the client starts over.
    pub fn handle(self, outcome: KerberosOutcome) -> Verdict {
        match outcome {
            KerberosOutcome::Done(verified) => {
                if self.binding == BindingPolicy::Required && self.tls && !verified.channel_bound {
                    return refuse(Refusal::failed(Failure::ChannelBindingsMissing));
                }
                let remember = if self.on_connection {
                    Remember::OnConnection
                } else if self.set_cookie {
                    Remember::SessionCookie
                } else {
                    Remember::Nothing
                };
                login(verified, SchemeKind::Negotiate, true, remember)
            }
            KerberosOutcome::Continue(next) if self.on_connection => {
                refuse(Refusal::continue_with(Continuation::Negotiate(next)))
            }
            KerberosOutcome::Continue(_) | KerberosOutcome::Refused => {
                refuse(Refusal::unauthorized())
            }
            KerberosOutcome::Unavailable => refuse(Refusal::status(503)),
        }
    }
}

/// The first SPNEGO-NTLM token: a NegTokenInit carrying an NTLM NEGOTIATE.
#[derive(Debug)]
pub struct ExpectSpnegoChallenge {
    token: Vec<u8>,
}

impl ExpectSpnegoChallenge {
    /// The token.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// The reply carrying the CHALLENGE goes back in a `401` (the server keeps the
    /// pending exchange with the connection); a token that does not read is `400`.
    pub fn handle(self, reply: Result<Vec<u8>, Unreadable>) -> Verdict {
        match reply {
            Ok(reply) => refuse(Refusal::continue_with(Continuation::Negotiate(reply))),
            Err(Unreadable) => refuse(Refusal::bad_request()),
        }
    }
}

/// The second SPNEGO-NTLM token: a NegTokenResp carrying the AUTHENTICATE.
#[derive(Debug)]
pub struct ExpectSpnegoAuthenticate {
    token: Vec<u8>,
    check: ChannelBindingCheck,
}

impl ExpectSpnegoAuthenticate {
    /// The token.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// How the AUTHENTICATE's channel bindings are checked.
    pub fn binding_check(&self) -> ChannelBindingCheck {
        self.check
    }

    /// A verified login stays with the connection (scheme `Negotiate`, whatever
    /// mechanism SPNEGO chose; not Kerberos) and carries SPNEGO's final reply.
    pub fn handle(self, outcome: Result<Verified, Refused>) -> Verdict {
        match outcome {
            Ok(verified) => login(
                verified,
                SchemeKind::Negotiate,
                false,
                Remember::OnConnection,
            ),
            Err(Refused) => refuse(Refusal::failed(Failure::NtlmRefused)),
        }
    }

    /// The check could not be run (the domain controller, asked through winbind,
    /// did not answer): see [`ntlm_unavailable`].
    pub fn handle_unavailable(self) -> Verdict {
        ntlm_unavailable()
    }
}

/// An NTLM AUTHENTICATE whose check could not be run (the domain controller that
/// checks NTLMv2 responses for the gate could not be asked) is `503`, not a wrong
/// password: the client's credentials may be good, and asking again later may work.
/// Counted as a refused NTLM logon.
fn ntlm_unavailable() -> Verdict {
    refuse(Refusal {
        failure: Some(Failure::NtlmRefused),
        ..Refusal::status(503)
    })
}

/// `Authorization: NTLM`, in connection mode over HTTP/1.1.
#[derive(Debug)]
pub struct ExpectNtlm {
    per_connection: bool,
    check: ChannelBindingCheck,
}

/// What an NTLM message asks for.
#[derive(Debug)]
pub enum NtlmRoute {
    /// Decided already.
    Answer(Verdict),
    /// A NEGOTIATE: make the CHALLENGE.
    Challenge(ExpectNtlmChallenge),
    /// An AUTHENTICATE: check it against the connection's CHALLENGE.
    Verify(ExpectNtlmVerify),
}

impl ExpectNtlm {
    /// NTLM authenticates the connection: refused outside connection mode (the
    /// client is asked again, for another scheme), and HTTP/2 clients must come back
    /// over HTTP/1.1.
    pub(super) fn start(setup: &Setup, facts: RequestFacts) -> Start {
        if setup.mode != ServerMode::Connection {
            return Start::Answer(refuse(Refusal::unauthorized()));
        }
        if facts.h2 {
            return Start::Answer(Verdict::Http11Required);
        }
        Start::Ntlm(ExpectNtlm {
            per_connection: facts.per_connection,
            check: ntlm_binding_check(setup.binding, facts.binding),
        })
    }

    /// Routes the decoded message (`None`: the credentials carry no token68 that
    /// decodes), given whether the connection holds a CHALLENGE it sent.
    pub fn message(self, message: Option<&[u8]>, challenge_pending: bool) -> NtlmRoute {
        let Some(message) = message else {
            return NtlmRoute::Answer(refuse(Refusal::bad_request()));
        };
        if !self.per_connection {
            return NtlmRoute::Answer(refuse(Refusal::unauthorized()));
        }
        match message_type(message) {
            Some(1) => NtlmRoute::Challenge(ExpectNtlmChallenge(())),
            Some(3) if !challenge_pending => {
                NtlmRoute::Answer(refuse(Refusal::failed(Failure::NtlmNoChallenge)))
            }
            Some(3) => NtlmRoute::Verify(ExpectNtlmVerify { check: self.check }),
            _ => NtlmRoute::Answer(refuse(Refusal::bad_request())),
        }
    }
}

/// An NTLM NEGOTIATE, waiting for the CHALLENGE made for it.
#[derive(Debug)]
pub struct ExpectNtlmChallenge(());

impl ExpectNtlmChallenge {
    /// The CHALLENGE goes back in a `401 NTLM <challenge>` (the server keeps the
    /// pending exchange with the connection); a NEGOTIATE that does not read is `400`.
    pub fn handle(self, challenge: Result<Vec<u8>, Unreadable>) -> Verdict {
        match challenge {
            Ok(challenge) => refuse(Refusal::continue_with(Continuation::Ntlm(challenge))),
            Err(Unreadable) => refuse(Refusal::bad_request()),
        }
    }
}

/// An NTLM AUTHENTICATE, waiting for its check.
#[derive(Debug)]
pub struct ExpectNtlmVerify {
    check: ChannelBindingCheck,
}

impl ExpectNtlmVerify {
    /// How the AUTHENTICATE's channel bindings are checked.
    pub fn binding_check(&self) -> ChannelBindingCheck {
        self.check
    }

    /// A verified login stays with the connection.
    pub fn handle(self, outcome: Result<Verified, Refused>) -> Verdict {
        match outcome {
            Ok(verified) => login(verified, SchemeKind::Ntlm, false, Remember::OnConnection),
            Err(Refused) => refuse(Refusal::failed(Failure::NtlmRefused)),
        }
    }

    /// The check could not be run (the domain controller, asked through winbind,
    /// did not answer): see [`ntlm_unavailable`].
    pub fn handle_unavailable(self) -> Verdict {
        ntlm_unavailable()
    }
}

/// `Authorization: Digest`, waiting for the htdigest check.
#[derive(Debug)]
pub struct ExpectDigest(());

impl ExpectDigest {
    pub(super) fn new() -> Self {
        Self(())
    }

    /// A verified request gets `Authentication-Info`; a refusal keeps the status the
    /// Digest server chose (`400` for a malformed or mismatched response) and says
    /// `stale=true` for an old nonce; credentials that do not parse are `400`.
    pub fn handle(
        self,
        outcome: Result<Result<DigestVerified, DigestRefusal>, Unreadable>,
    ) -> Verdict {
        match outcome {
            Err(Unreadable) => refuse(Refusal::bad_request()),
            Ok(Ok(verified)) => Verdict::Authenticated(Login {
                principal: verified.user,
                scheme: SchemeKind::Digest,
                kerberos: false,
                channel_bound: false,
                final_token: None,
                authentication_info: Some(verified.authentication_info),
                remember: Remember::Nothing,
                source: Source::Credentials,
            }),
            Ok(Err(refusal)) => {
                let stale = refusal.is_stale();
                refuse(Refusal {
                    stale,
                    failure: Some(if stale {
                        Failure::DigestStaleNonce
                    } else {
                        Failure::DigestRefused
                    }),
                    ..Refusal::status(refusal.status())
                })
            }
        }
    }
}

/// `Authorization: Basic`, waiting for its user name.
#[derive(Debug)]
pub struct ExpectBasic {
    htpasswd: bool,
    kdc: bool,
}

/// Which check a Basic user name goes to.
#[derive(Debug)]
pub enum BasicRoute {
    /// Decided already.
    Answer(Verdict),
    /// The htpasswd file (it knows the user).
    Htpasswd(ExpectBasicCheck),
    /// A ticket from the KDC for the password, opened with the server's keytab.
    Kdc(ExpectBasicCheck),
}

impl ExpectBasic {
    pub(super) fn new(setup: &Setup) -> Self {
        Self {
            htpasswd: setup.basic_users,
            kdc: setup.basic_kdc && setup.kerberos,
        }
    }

    /// Routes the credentials' user name (`None`: no `user:password` decodes, `400`),
    /// given whether the htpasswd file knows it. A name that is empty or could
    /// address another principal or file (`/`, NUL) is refused; the htpasswd file
    /// comes before the KDC.
    pub fn credentials(self, user: Option<&str>, htpasswd_knows: bool) -> BasicRoute {
        let Some(user) = user else {
            return BasicRoute::Answer(refuse(Refusal::bad_request()));
        };
        if user.is_empty() || user.contains(['/', '\0']) {
            return BasicRoute::Answer(refuse(Refusal::unauthorized()));
        }
        if self.htpasswd && htpasswd_knows {
            return BasicRoute::Htpasswd(ExpectBasicCheck { kerberos: false });
        }
        if self.kdc {
            return BasicRoute::Kdc(ExpectBasicCheck { kerberos: true });
        }
        BasicRoute::Answer(refuse(Refusal::failed(Failure::BasicUnknownUser)))
    }
}

/// What a Basic password check gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicCheck {
    /// The password is right, for this principal.
    Verified(String),
    /// The password is wrong (or the KDC refused it).
    Refused,
    /// The check could not run (handshake limiter closed, task failed, a KDC
    /// exchange that wanted another leg).
    Unavailable,
    /// The name names no user the server can check (`OTHERDOMAIN\bob`: a NetBIOS
    /// domain that is not the realm's).
    UnknownUser,
}

/// A Basic password, waiting for its check.
#[derive(Debug)]
pub struct ExpectBasicCheck {
    kerberos: bool,
}

impl ExpectBasicCheck {
    /// A verified password logs in with Basic for this request only (Kerberos
    /// vouches for it when the KDC checked it); any failure asks again.
    pub fn handle(self, check: BasicCheck) -> Verdict {
        match check {
            BasicCheck::Verified(principal) => login(
                Verified {
                    principal,
                    channel_bound: false,
                    final_token: None,
                },
                SchemeKind::Basic,
                self.kerberos,
                Remember::Nothing,
            ),
            BasicCheck::Refused if !self.kerberos => {
                refuse(Refusal::failed(Failure::BasicWrongPassword))
            }
            BasicCheck::Refused | BasicCheck::Unavailable => refuse(Refusal::unauthorized()),
            BasicCheck::UnknownUser => refuse(Refusal::failed(Failure::BasicUnknownUser)),
        }
    }
}
