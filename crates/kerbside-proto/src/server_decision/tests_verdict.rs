//! The identification table walked in full: every configuration × protocol ×
//! connection × credentials × mechanism outcome × what the connection and the session
//! cookie remember, each verdict checked against the rules the server promises.

use super::*;
use crate::scheme::digest::server::{DigestRefusal, DigestVerified};
use crate::scheme::digest::Algorithm;
use crate::scheme::negotiate::server::{MalformedAuthorization, Presented};
use crate::spnego::{NegTokenInit, Oid};
use crate::SchemeKind;

/// What the htdigest check can give.
type DigestOutcome = Result<Result<DigestVerified, DigestRefusal>, Unreadable>;

const MODES: [ServerMode; 4] = [
    ServerMode::None,
    ServerMode::PerRequest,
    ServerMode::Connection,
    ServerMode::Cookie,
];

pub(super) fn all_setups() -> impl Iterator<Item = Setup> {
    let mut out = Vec::new();
    for mode in MODES {
        for bits in 0u8..32 {
            for ntlm in [
                None,
                Some(NtlmSetup {
                    in_negotiate: false,
                }),
                Some(NtlmSetup { in_negotiate: true }),
            ] {
                for binding in [
                    BindingPolicy::Off,
                    BindingPolicy::Optional,
                    BindingPolicy::Required,
                ] {
                    out.push(Setup {
                        mode,
                        kerberos: bits & 1 != 0,
                        ntlm,
                        digest: bits & 2 != 0,
                        basic_users: bits & 4 != 0,
                        basic_kdc: bits & 8 != 0,
                        sessions: bits & 16 != 0,
                        binding,
                    });
                }
            }
        }
    }
    out.into_iter()
}

pub(super) fn all_facts() -> impl Iterator<Item = RequestFacts> {
    (0u8..8).map(|bits| RequestFacts {
        h2: bits & 1 != 0,
        per_connection: bits & 2 != 0,
        binding: bits & 4 != 0,
    })
}

pub(super) fn spnego_ntlm_init() -> Vec<u8> {
    NegTokenInit {
        mech_types: vec![Oid::known(Oid::NTLMSSP)],
        req_flags: None,
        mech_token: None,
        mech_list_mic: None,
    }
    .encode()
}

pub(super) fn ntlm_message(kind: u32) -> Vec<u8> {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&kind.to_le_bytes());
    m.extend_from_slice(&[0; 20]);
    m
}

/// What a request brings, as the test names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Brings {
    Malformed,
    Nothing,
    Bearer,
    Basic,
    Ntlm,
    Digest,
    KerberosToken,
    SpnegoNtlmToken,
    RawNtlmUnderNegotiate,
}

pub(super) const BRINGS: [Brings; 9] = [
    Brings::Malformed,
    Brings::Nothing,
    Brings::Bearer,
    Brings::Basic,
    Brings::Ntlm,
    Brings::Digest,
    Brings::KerberosToken,
    Brings::SpnegoNtlmToken,
    Brings::RawNtlmUnderNegotiate,
];

impl Brings {
    pub(super) fn authorization(self) -> Result<Presented, MalformedAuthorization> {
        match self {
            Self::Malformed => Err(MalformedAuthorization::Repeated),
            Self::Nothing => Ok(Presented::Nothing),
            Self::Bearer => Ok(Presented::OtherScheme("Bearer".into())),
            Self::Basic => Ok(Presented::OtherScheme("bAsIc".into())),
            Self::Ntlm => Ok(Presented::OtherScheme("NTLM".into())),
            Self::Digest => Ok(Presented::OtherScheme("digest".into())),
            Self::KerberosToken => Ok(Presented::Token(b"\x60\x82\x02\x00krb5".to_vec())),
            Self::SpnegoNtlmToken => Ok(Presented::Token(spnego_ntlm_init())),
            Self::RawNtlmUnderNegotiate => Ok(Presented::Token(ntlm_message(1))),
        }
    }

    /// Whether the setup checks these credentials at all (otherwise they count as
    /// none).
    pub(super) fn configured(self, setup: &Setup) -> bool {
        match self {
            Self::Malformed | Self::Nothing | Self::Bearer => false,
            Self::Basic => setup.basic_users || setup.basic_kdc,
            Self::Ntlm => setup.ntlm.is_some(),
            Self::Digest => setup.digest,
            Self::KerberosToken | Self::SpnegoNtlmToken | Self::RawNtlmUnderNegotiate => true,
        }
    }

    pub(super) fn token(self) -> bool {
        matches!(
            self,
            Self::KerberosToken | Self::SpnegoNtlmToken | Self::RawNtlmUnderNegotiate
        )
    }
}

/// How a walk ended: the last input the test gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Last {
    Nothing,
    Success,
    Failure,
    Remembered {
        connection: bool,
        session: SessionState,
    },
}

pub(super) fn verified(final_token: bool, channel_bound: bool) -> Verified {
    Verified {
        principal: "alice@EXAMPLE.ORG".into(),
        channel_bound,
        final_token: final_token.then(|| b"final".to_vec()),
    }
}

/// A verification's outcomes: a login (with `final_token` or not, bound to the
/// channel or not), a refusal.
fn verifications(final_token: bool) -> Vec<(Result<Verified, Refused>, Last)> {
    let mut out: Vec<_> = [false, true]
        .map(|bound| (Ok(verified(final_token, bound)), Last::Success))
        .into();
    out.push((Err(Refused), Last::Failure));
    out
}

fn connection_login() -> ConnectionLogin {
    ConnectionLogin {
        principal: "conn@EXAMPLE.ORG".into(),
        scheme: SchemeKind::Ntlm,
        kerberos: false,
        channel_bound: true,
    }
}

fn digest_verified() -> DigestVerified {
    DigestVerified {
        user: "dave".into(),
        realm: "r".into(),
        algorithm: Algorithm::Sha256,
        nonce: "n".into(),
        nc: 1,
        authentication_info: "rspauth=\"x\"".into(),
    }
}

/// Every verdict reachable from `start`, with the last input that led there. `again`
/// makes the same start afresh (the states are consumed by `handle`).
pub(super) fn walk(start: Start, again: &dyn Fn() -> Start) -> Vec<(Vec<String>, Last, Verdict)> {
    let mut out = Vec::new();
    let mut push =
        |path: Vec<String>, last: Last, verdict: Verdict| out.push((path, last, verdict));
    match start {
        Start::Reject(r) => push(vec!["rejected".into()], Last::Nothing, Verdict::Refuse(r)),
        Start::Answer(v) => push(vec![], Last::Nothing, v),
        Start::AskRules(_) => {
            for needs in [false, true] {
                let Start::AskRules(ask) = again() else {
                    unreachable!()
                };
                let next = ask.handle(needs);
                let again = move || match again() {
                    Start::AskRules(ask) => ask.handle(needs),
                    _ => unreachable!(),
                };
                for (mut path, last, v) in walk(next, &again) {
                    path.insert(0, format!("rules need auth={needs}"));
                    push(path, last, v);
                }
            }
        }
        Start::Remembered(_) => {
            for connection in [false, true] {
                for session in [
                    SessionState::Off,
                    SessionState::Absent,
                    SessionState::Valid("cookie@EXAMPLE.ORG".into()),
                    SessionState::Refused,
                ] {
                    let Start::Remembered(r) = again() else {
                        unreachable!()
                    };
                    let v = r.handle(connection.then(connection_login), session.clone());
                    push(
                        vec![format!("connection={connection} session={session:?}")],
                        Last::Remembered {
                            connection,
                            session,
                        },
                        v,
                    );
                }
            }
        }
        Start::Basic(_) => {
            for user in [None, Some(""), Some("a/b"), Some("a\0"), Some("alice")] {
                for knows in [false, true] {
                    let route = || match again() {
                        Start::Basic(b) => b.credentials(user, knows),
                        _ => unreachable!(),
                    };
                    let path = vec![format!("basic user={user:?} known={knows}")];
                    if let BasicRoute::Answer(v) = route() {
                        push(path, Last::Nothing, v);
                        continue;
                    }
                    for check in [
                        BasicCheck::Verified("alice".into()),
                        BasicCheck::Refused,
                        BasicCheck::Unavailable,
                        BasicCheck::UnknownUser,
                    ] {
                        let last = match check {
                            BasicCheck::Verified(_) => Last::Success,
                            _ => Last::Failure,
                        };
                        let v = match route() {
                            BasicRoute::Htpasswd(c) | BasicRoute::Kdc(c) => c.handle(check.clone()),
                            BasicRoute::Answer(_) => unreachable!(),
                        };
                        let mut path = path.clone();
                        path.push(format!("{check:?}"));
                        push(path, last, v);
                    }
                }
            }
        }
        Start::Digest(_) => {
            let outcomes: [(DigestOutcome, Last); 5] = [
                (Err(Unreadable), Last::Failure),
                (Ok(Ok(digest_verified())), Last::Success),
                (Ok(Err(DigestRefusal::StaleNonce)), Last::Failure),
                (Ok(Err(DigestRefusal::Malformed("x".into()))), Last::Failure),
                (
                    Ok(Err(DigestRefusal::WrongResponse { user: "d".into() })),
                    Last::Failure,
                ),
            ];
            for (outcome, last) in outcomes {
                let Start::Digest(d) = again() else {
                    unreachable!()
                };
                let path = vec![format!("digest {outcome:?}")];
                push(path, last, d.handle(outcome));
            }
        }
        Start::Ntlm(_) => {
            let messages: [Option<Vec<u8>>; 5] = [
                None,
                Some(ntlm_message(1)),
                Some(ntlm_message(2)),
                Some(ntlm_message(3)),
                Some(b"garbage".to_vec()),
            ];
            for message in &messages {
                for pending in [false, true] {
                    let route = || match again() {
                        Start::Ntlm(n) => n.message(message.as_deref(), pending),
                        _ => unreachable!(),
                    };
                    let path = vec![format!("ntlm {message:?} pending={pending}")];
                    match route() {
                        NtlmRoute::Answer(v) => push(path, Last::Nothing, v),
                        NtlmRoute::Challenge(_) => {
                            for made in [Ok(b"challenge".to_vec()), Err(Unreadable)] {
                                let NtlmRoute::Challenge(c) = route() else {
                                    unreachable!()
                                };
                                push(path.clone(), Last::Nothing, c.handle(made));
                            }
                        }
                        NtlmRoute::Verify(_) => {
                            for (outcome, last) in verifications(false) {
                                let NtlmRoute::Verify(c) = route() else {
                                    unreachable!()
                                };
                                push(path.clone(), last, c.handle(outcome));
                            }
                        }
                    }
                }
            }
        }
        Start::Negotiate(_) => {
            for pending in [false, true] {
                let route = || match again() {
                    Start::Negotiate(n) => n.route(pending),
                    _ => unreachable!(),
                };
                let path = vec![format!("negotiate spnego-ntlm pending={pending}")];
                match route() {
                    NegotiateRoute::Answer(v) => push(path, Last::Nothing, v),
                    NegotiateRoute::Kerberos(_) => {
                        let mut outcomes = vec![
                            KerberosOutcome::Continue(b"next".to_vec()),
                            KerberosOutcome::Refused,
                            KerberosOutcome::Unavailable,
                        ];
                        for token in [false, true] {
                            for bound in [false, true] {
                                outcomes.push(KerberosOutcome::Done(verified(token, bound)));
                            }
                        }
                        for outcome in outcomes {
                            let last = match outcome {
                                KerberosOutcome::Done(_) => Last::Success,
                                KerberosOutcome::Continue(_) => Last::Nothing,
                                _ => Last::Failure,
                            };
                            let NegotiateRoute::Kerberos(k) = route() else {
                                unreachable!()
                            };
                            let mut path = path.clone();
                            path.push(format!("kerberos {outcome:?}"));
                            push(path, last, k.handle(outcome));
                        }
                    }
                    NegotiateRoute::SpnegoNtlmChallenge(_) => {
                        for made in [Ok(b"reply".to_vec()), Err(Unreadable)] {
                            let NegotiateRoute::SpnegoNtlmChallenge(c) = route() else {
                                unreachable!()
                            };
                            push(path.clone(), Last::Nothing, c.handle(made));
                        }
                    }
                    NegotiateRoute::SpnegoNtlmAuthenticate(_) => {
                        for (outcome, last) in verifications(true) {
                            let NegotiateRoute::SpnegoNtlmAuthenticate(c) = route() else {
                                unreachable!()
                            };
                            push(path.clone(), last, c.handle(outcome));
                        }
                    }
                }
            }
        }
    }
    out
}

pub(super) fn verdicts(
    setup: &Setup,
    facts: RequestFacts,
    brings: Brings,
) -> Vec<(Vec<String>, Last, Verdict)> {
    let again = || identify(setup, facts, brings.authorization());
    walk(again(), &again)
}

#[test]
fn every_request_gets_the_verdict_the_server_promises() {
    let mut walked = 0usize;
    for setup in all_setups() {
        for facts in all_facts() {
            for brings in BRINGS {
                for (path, last, verdict) in verdicts(&setup, facts, brings) {
                    walked += 1;
                    check(&setup, facts, brings, &last, &verdict, &path);
                }
            }
        }
    }
    assert!(walked > 100_000, "walked {walked} cases");
}

fn check(
    setup: &Setup,
    facts: RequestFacts,
    brings: Brings,
    last: &Last,
    verdict: &Verdict,
    path: &[String],
) {
    let why = format!("{setup:?} {facts:?} {brings:?} {path:?} → {verdict:?}");
    let connection_mode = setup.mode == ServerMode::Connection;
    // The server's own misconfiguration comes first, then unreadable credentials,
    // then a server without authentication.
    // Both are rejections, decided before the session cookie is looked at.
    let rejected = path.first().is_some_and(|p| p == "rejected");
    if setup.needs_connection() && !facts.per_connection {
        assert_eq!(verdict, &Verdict::Refuse(Refusal::status(503)), "{why}");
        assert!(rejected, "{why}");
        return;
    }
    if brings == Brings::Malformed {
        assert_eq!(verdict, &Verdict::Refuse(Refusal::bad_request()), "{why}");
        assert!(rejected, "{why}");
        return;
    }
    assert!(!rejected, "{why}");
    if setup.mode == ServerMode::None {
        assert_eq!(verdict, &Verdict::Anonymous { failure: None }, "{why}");
        return;
    }
    let credentials = brings.configured(setup);
    // Connection-bound logins need HTTP/1.1.
    if connection_mode && facts.h2 && (brings.token() || brings == Brings::Ntlm && credentials) {
        assert_eq!(verdict, &Verdict::Http11Required, "{why}");
    }
    match verdict {
        Verdict::Http11Required => assert!(connection_mode && facts.h2, "{why}"),
        Verdict::Anonymous { failure } => {
            // Credentials the server checks never end anonymous.
            assert!(!credentials, "{why}");
            let Last::Remembered {
                connection,
                session,
            } = last
            else {
                panic!("anonymous without asking what is remembered: {why}");
            };
            assert!(!(*connection && connection_mode), "{why}");
            assert!(!matches!(session, SessionState::Valid(_)), "{why}");
            assert_eq!(
                *failure,
                (*session == SessionState::Refused).then_some(Failure::BadSessionCookie),
                "{why}"
            );
        }
        Verdict::Refuse(refusal) => {
            assert!([400, 401, 503].contains(&refusal.status), "{why}");
            if refusal.status == 503 {
                // Past the first check, only a closed handshake limiter.
                assert!(
                    path.last().is_some_and(|p| p.contains("Unavailable")),
                    "{why}"
                );
                assert!(brings.token(), "{why}");
            }
            if refusal.stale {
                assert_eq!(brings, Brings::Digest, "{why}");
            }
            match &refusal.continuation {
                None => {}
                Some(Continuation::Ntlm(_)) => {
                    assert_eq!(refusal.status, 401, "{why}");
                    assert!(
                        brings == Brings::Ntlm && connection_mode && !facts.h2,
                        "{why}"
                    );
                }
                Some(Continuation::Negotiate(_)) => {
                    assert_eq!(refusal.status, 401, "{why}");
                    assert!(
                        brings.token() && connection_mode && facts.per_connection,
                        "{why}"
                    );
                }
            }
            // A mechanism's success is refused only for missing channel bindings.
            if last == &Last::Success {
                assert_eq!(
                    refusal.failure,
                    Some(Failure::ChannelBindingsMissing),
                    "{why}"
                );
                assert!(
                    setup.binding == BindingPolicy::Required && facts.binding,
                    "{why}"
                );
            }
        }
        Verdict::Authenticated(login) => {
            match login.source {
                Source::Credentials => {
                    assert_eq!(last, &Last::Success, "{why}");
                    let scheme = match brings {
                        Brings::Basic => SchemeKind::Basic,
                        Brings::Ntlm => SchemeKind::Ntlm,
                        Brings::Digest => SchemeKind::Digest,
                        _ => SchemeKind::Negotiate,
                    };
                    assert_eq!(login.scheme, scheme, "{why}");
                    assert!(credentials, "{why}");
                }
                Source::Connection => {
                    assert!(connection_mode && !credentials, "{why}");
                    assert!(
                        matches!(
                            last,
                            Last::Remembered {
                                connection: true,
                                ..
                            }
                        ),
                        "{why}"
                    );
                    assert_eq!(login.principal, "conn@EXAMPLE.ORG", "{why}");
                }
                Source::SessionCookie => {
                    assert!(!credentials, "{why}");
                    let Last::Remembered {
                        connection,
                        session,
                    } = last
                    else {
                        panic!("{why}");
                    };
                    // The connection's identity comes first.
                    assert!(!(*connection && connection_mode), "{why}");
                    assert_eq!(
                        session,
                        &SessionState::Valid(login.principal.clone()),
                        "{why}"
                    );
                    assert!(
                        login.scheme == SchemeKind::Negotiate && login.kerberos,
                        "{why}"
                    );
                }
            }
            match login.remember {
                Remember::Nothing => {}
                Remember::OnConnection => {
                    assert!(
                        connection_mode && facts.per_connection && !facts.h2,
                        "{why}"
                    );
                    assert_eq!(login.source, Source::Credentials, "{why}");
                }
                Remember::SessionCookie => {
                    assert!(setup.mode == ServerMode::Cookie && setup.sessions, "{why}");
                    assert!(
                        login.scheme == SchemeKind::Negotiate && login.kerberos,
                        "{why}"
                    );
                    assert_eq!(login.source, Source::Credentials, "{why}");
                }
            }
            // A Kerberos login must be channel-bound when that is required and the
            // channel has bindings.
            if login.kerberos
                && login.scheme == SchemeKind::Negotiate
                && login.source == Source::Credentials
            {
                assert!(
                    setup.binding != BindingPolicy::Required
                        || !facts.binding
                        || login.channel_bound,
                    "{why}"
                );
            }
            assert!(
                login.final_token.is_none() || login.scheme == SchemeKind::Negotiate,
                "{why}"
            );
            assert_eq!(
                login.authentication_info.is_some(),
                login.scheme == SchemeKind::Digest,
                "{why}"
            );
            assert!(
                !login.kerberos
                    || matches!(login.scheme, SchemeKind::Negotiate | SchemeKind::Basic),
                "{why}"
            );
        }
    }
}

#[test]
fn credentials_the_server_does_not_check_count_as_none() {
    for setup in all_setups() {
        for facts in all_facts() {
            let none: Vec<Verdict> = verdicts(&setup, facts, Brings::Nothing)
                .into_iter()
                .map(|(_, _, v)| v)
                .collect();
            for brings in [Brings::Bearer, Brings::Basic, Brings::Ntlm, Brings::Digest] {
                if brings.configured(&setup) {
                    continue;
                }
                let got: Vec<Verdict> = verdicts(&setup, facts, brings)
                    .into_iter()
                    .map(|(_, _, v)| v)
                    .collect();
                assert_eq!(got, none, "{setup:?} {facts:?} {brings:?}");
            }
        }
    }
}
