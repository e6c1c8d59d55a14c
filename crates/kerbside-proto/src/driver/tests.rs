//! The driver's every path, without a network or a KDC (the behaviours the
//! client's integration tests check against real servers, one decision each).

use super::*;
use crate::policy::{PlainHttpAuth, SchemeKind, SchemePolicy, Transport};
use SchemeKind::{Basic, Digest, Negotiate, Ntlm};

pub(super) fn settings(enabled: &[SchemeKind]) -> DriverSettings {
    DriverSettings::new(SchemePolicy::only(enabled), 4)
}

pub(super) fn origin() -> OriginFacts {
    OriginFacts::default()
}

fn learned_origin(mode: OriginMode, password_login: Option<SchemeKind>) -> OriginFacts {
    OriginFacts::new(true, mode, false, password_login)
}

pub(super) fn ready(settings: &DriverSettings, origin: OriginFacts) -> Ready {
    let opening = RequestDriver::new().open(settings, origin, "h.test", Transport::Tls, false);
    opening.connected(false, false).0
}

fn preempt(
    settings: &DriverSettings,
    origin: OriginFacts,
    transport: Transport,
    has_cookie: bool,
    asked: bool,
    authenticated: bool,
) -> Preempt {
    let mut request = RequestDriver::new();
    if asked {
        request.handle_learned(&Learn::NegotiateChallenge);
    }
    let opening = request.open(settings, origin, "h.test", transport, has_cookie);
    opening.connected(authenticated, authenticated).1
}

fn head(status: u16, offered: &[SchemeKind]) -> ResponseHead {
    ResponseHead::new(status, offered.to_vec())
}

/// The attempt after a token went and `status` came back.
fn token_answered(settings: &DriverSettings, status: u16, offered: &[SchemeKind]) -> TokenAnswered {
    let sent = Sent::Token {
        kind: Negotiate,
        preemptive: false,
    };
    match ready(settings, origin())
        .send(sent)
        .handle_response(head(status, offered))
    {
        Answered::Token(t) => t,
        other => panic!("expected a token answer, got {other:?}"),
    }
}

fn end_of(next: Next) -> AttemptEnd {
    match next {
        Next::End(e) => e.end,
        other => panic!("expected the attempt to end, got {other:?}"),
    }
}

fn delivery_of(next: Next) -> Delivery {
    match next {
        Next::Deliver(d) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

// --- which connection an attempt takes --------------------------------------

#[test]
fn a_first_attempt_takes_a_pooled_connection_preferring_authenticated_ones() {
    let opening = RequestDriver::new().open(
        &settings(&[Negotiate]),
        origin(),
        "h",
        Transport::Tls,
        false,
    );
    assert_eq!(
        opening.connection(),
        Connection::Pooled {
            prefer_authenticated: true,
            h1_only: false
        }
    );
}

#[test]
fn an_origin_that_wants_a_token_per_request_gets_any_pooled_connection() {
    let facts = OriginFacts::new(false, OriginMode::PerRequest, true, None);
    let opening =
        RequestDriver::new().open(&settings(&[Negotiate]), facts, "h", Transport::Tls, false);
    assert_eq!(
        opening.connection(),
        Connection::Pooled {
            prefer_authenticated: false,
            h1_only: true
        }
    );
}

#[test]
fn a_restart_takes_a_fresh_connection() {
    let Retry::Again { driver, learned } =
        RequestDriver::new().handle_end(AttemptEnd::Restart(RestartReason::SendFailed))
    else {
        panic!("one restart is allowed");
    };
    assert_eq!(learned, None);
    let opening = driver.open(
        &settings(&[Negotiate]),
        origin(),
        "h",
        Transport::Tls,
        false,
    );
    assert_eq!(opening.connection(), Connection::Fresh { h1_only: false });
}

// --- the request's retries -------------------------------------------------

#[test]
fn a_second_restart_gives_up() {
    let Retry::Again { driver, .. } =
        RequestDriver::new().handle_end(AttemptEnd::Restart(RestartReason::SendFailed))
    else {
        panic!("one restart is allowed");
    };
    let reason = RestartReason::ClosedMidHandshake(Ntlm);
    assert_eq!(
        driver.handle_end(AttemptEnd::Restart(reason)),
        Retry::GiveUp(GiveUp::RestartedTwice(reason))
    );
}

#[test]
fn http_1_1_required_goes_again_once_over_http_1_1() {
    let Retry::Again { driver, learned } =
        RequestDriver::new().handle_end(AttemptEnd::Http11Required)
    else {
        panic!("one HTTP/1.1 retry is allowed");
    };
    assert_eq!(learned, Some(Learn::H1Only));
    // Not a restart: the next attempt may use a pooled (HTTP/1.1) connection.
    let facts = OriginFacts::new(false, OriginMode::Unknown, true, None);
    assert!(matches!(
        driver
            .open(&settings(&[]), facts, "h", Transport::Tls, false)
            .connection(),
        Connection::Pooled { h1_only: true, .. }
    ));
    assert_eq!(
        driver.handle_end(AttemptEnd::Http11Required),
        Retry::GiveUp(GiveUp::Http11RequiredTwice)
    );
}

#[test]
fn a_restart_and_an_http_1_1_retry_are_counted_apart() {
    let Retry::Again { driver, .. } = RequestDriver::new().handle_end(AttemptEnd::Http11Required)
    else {
        panic!()
    };
    assert!(matches!(
        driver.handle_end(AttemptEnd::Restart(RestartReason::SendFailed)),
        Retry::Again { .. }
    ));
}

#[test]
fn giving_up_is_final() {
    let why = GiveUp::TooManyChallenges { seen: 5, max: 4 };
    assert_eq!(
        RequestDriver::new().handle_end(AttemptEnd::GiveUp(why.clone())),
        Retry::GiveUp(why)
    );
}

// --- credentials before a 401 ----------------------------------------------

#[test]
fn a_token_goes_before_a_401_to_an_origin_known_to_want_it_over_tls() {
    let s = settings(&[Negotiate]);
    let o = learned_origin(OriginMode::Unknown, None);
    assert_eq!(
        preempt(&s, o, Transport::Tls, false, false, false),
        Preempt::Negotiate { always: false }
    );
    assert_eq!(
        preempt(&s, o, Transport::InsecureTls, false, false, false),
        Preempt::Negotiate { always: false }
    );
}

#[test]
fn nothing_goes_before_a_401_to_an_origin_not_known_to_want_it() {
    assert_eq!(
        preempt(
            &settings(&[Negotiate]),
            origin(),
            Transport::Tls,
            false,
            false,
            false
        ),
        Preempt::Nothing
    );
}

#[test]
fn negotiate_preemptive_sends_a_token_to_any_origin_even_with_a_cookie() {
    let s = settings(&[Negotiate]).with_preemptive(Preemptive::Always);
    assert_eq!(
        preempt(&s, origin(), Transport::Tls, true, false, false),
        Preempt::Negotiate { always: true }
    );
}

#[test]
fn preemption_off_never_sends_a_token_first() {
    let s = settings(&[Negotiate]).with_preemptive(Preemptive::Never);
    let o = learned_origin(OriginMode::Unknown, None);
    assert_eq!(
        preempt(&s, o, Transport::Tls, false, false, false),
        Preempt::Nothing
    );
}

#[test]
fn a_session_cookie_stands_for_the_handshake() {
    let s = settings(&[Negotiate, Basic]);
    let o = learned_origin(OriginMode::Unknown, Some(Basic));
    assert_eq!(
        preempt(&s, o, Transport::Tls, true, false, false),
        Preempt::Nothing
    );
}

#[test]
fn over_plain_http_no_token_goes_before_a_401_whatever_the_options() {
    let mut s = settings(&[Negotiate]).with_preemptive(Preemptive::Always);
    s.schemes.plain_http = PlainHttpAuth::Any;
    let o = learned_origin(OriginMode::Unknown, None);
    assert_eq!(
        preempt(&s, o, Transport::Plain, false, false, false),
        Preempt::HeldBack
    );
    // A 401 to this very request offered Negotiate: the restart may send it.
    assert_eq!(
        preempt(&s, o, Transport::Plain, false, true, false),
        Preempt::Negotiate { always: true }
    );
}

#[test]
fn a_connection_the_origin_keeps_authenticated_needs_no_token() {
    let s = settings(&[Negotiate, Basic]);
    let o = learned_origin(OriginMode::ConnectionBound, Some(Basic));
    assert_eq!(
        preempt(&s, o, Transport::Tls, false, false, true),
        Preempt::Nothing
    );
    // Unless the origin wants a token on every request.
    let o = learned_origin(OriginMode::PerRequest, None);
    assert_eq!(
        preempt(&s, o, Transport::Tls, false, false, true),
        Preempt::Negotiate { always: false }
    );
}

#[test]
fn a_password_login_taken_before_goes_with_the_first_leg() {
    let s = settings(&[Digest, Basic]);
    for kind in [Digest, Basic] {
        let o = OriginFacts::new(false, OriginMode::Unknown, false, Some(kind));
        assert_eq!(
            preempt(&s, o, Transport::Tls, false, false, false),
            Preempt::Password(kind)
        );
    }
}

#[test]
fn a_password_login_needs_its_scheme_enabled_and_the_transport_allowed() {
    let o = OriginFacts::new(false, OriginMode::Unknown, false, Some(Basic));
    assert_eq!(
        preempt(&settings(&[Digest]), o, Transport::Tls, false, false, false),
        Preempt::Nothing
    );
    let mut s = settings(&[Basic]);
    // Over plain HTTP: not before a 401, and then only to an opted-in host.
    assert_eq!(
        preempt(&s, o, Transport::Plain, false, false, false),
        Preempt::Nothing
    );
    assert_eq!(
        preempt(&s, o, Transport::Plain, false, true, false),
        Preempt::Nothing
    );
    s.schemes.plain_http = PlainHttpAuth::Hosts(vec!["h.test".to_owned()]);
    assert_eq!(
        preempt(&s, o, Transport::Plain, false, true, false),
        Preempt::Password(Basic)
    );
}

#[test]
fn negotiate_not_enabled_means_no_token() {
    let o = learned_origin(OriginMode::Unknown, None);
    assert_eq!(
        preempt(&settings(&[Basic]), o, Transport::Tls, false, false, false),
        Preempt::Nothing
    );
}

// --- a leg that fails --------------------------------------------------------

#[test]
fn a_reused_connection_that_fails_is_worth_a_fresh_start_if_the_body_replays() {
    let opening = RequestDriver::new().open(&settings(&[]), origin(), "h", Transport::Tls, false);
    let (ready, _) = opening.connected(true, false);
    let awaiting = ready.send(Sent::Nothing);
    assert_eq!(
        awaiting.clone().handle_send_error(true),
        AttemptEnd::Restart(RestartReason::SendFailed)
    );
    assert_eq!(
        awaiting.handle_send_error(false),
        AttemptEnd::GiveUp(GiveUp::SendFailed)
    );
}

#[test]
fn a_new_connection_that_fails_with_nothing_in_flight_gives_up() {
    let awaiting = ready(&settings(&[]), origin()).send(Sent::Nothing);
    assert_eq!(
        awaiting.handle_send_error(true),
        AttemptEnd::GiveUp(GiveUp::SendFailed)
    );
}

#[test]
fn a_connection_that_fails_mid_handshake_starts_over() {
    let sent = Sent::Token {
        kind: Ntlm,
        preemptive: false,
    };
    let awaiting = ready(&settings(&[Ntlm]), origin()).send(sent);
    assert_eq!(awaiting.tokens(), 1);
    assert_eq!(
        awaiting.handle_send_error(true),
        AttemptEnd::Restart(RestartReason::SendFailed)
    );
}

#[test]
fn http_1_1_required_ends_the_attempt() {
    let awaiting = ready(&settings(&[]), origin()).send(Sent::Nothing);
    assert_eq!(
        awaiting.handle_http11_required(),
        AttemptEnd::Http11Required
    );
}

// --- a response to a leg without credentials --------------------------------

#[test]
fn a_401_offering_negotiate_teaches_that_the_origin_wants_it() {
    let awaiting = ready(&settings(&[Negotiate]), origin()).send(Sent::Nothing);
    let mut answered = awaiting.handle_response(head(401, &[Negotiate, Basic]));
    assert_eq!(answered.take_learned(), vec![Learn::NegotiateChallenge]);
    let mut request = RequestDriver::new();
    request.handle_learned(&Learn::NegotiateChallenge);
    assert!(request.asked());
}

#[test]
fn a_success_without_credentials_is_delivered_and_the_connection_kept() {
    let awaiting = ready(&settings(&[Negotiate]), origin()).send(Sent::Nothing);
    let Answered::Plain(u) = awaiting.handle_response(head(200, &[])) else {
        panic!()
    };
    let d = delivery_of(u.handle());
    assert_eq!(
        (d.scheme, d.keep_connection, d.challenges, d.tokens),
        (None, true, 0, 0)
    );
}

#[test]
fn a_connection_whose_large_body_was_withheld_is_not_pooled_on_http_1_1() {
    for (h2, keep) in [(false, false), (true, true)] {
        let awaiting = ready(&settings(&[Negotiate]), origin()).send(Sent::Nothing);
        let Answered::Plain(u) = awaiting.handle_response(head(200, &[]).on(h2, true)) else {
            panic!()
        };
        assert_eq!(delivery_of(u.handle()).keep_connection, keep);
    }
}

#[test]
fn success_on_an_authenticated_connection_teaches_it_stays_authenticated() {
    let s = settings(&[Negotiate]);
    let o = OriginFacts::new(true, OriginMode::Unknown, false, None);
    let opening = RequestDriver::new().open(&s, o, "h", Transport::Tls, false);
    let (ready, preempt) = opening.connected(true, true);
    assert_eq!(preempt, Preempt::Nothing);
    let Answered::Plain(u) = ready.send(Sent::Nothing).handle_response(head(200, &[])) else {
        panic!()
    };
    let d = delivery_of(u.handle());
    assert_eq!(d.learned, vec![Learn::Mode(OriginMode::ConnectionBound)]);
}

#[test]
fn a_401_on_an_authenticated_connection_teaches_a_token_per_request() {
    let s = settings(&[Negotiate]);
    let o = OriginFacts::new(true, OriginMode::Unknown, false, None);
    let (ready, _) = RequestDriver::new()
        .open(&s, o, "h", Transport::Tls, false)
        .connected(true, true);
    let Answered::Plain(u) = ready
        .send(Sent::Nothing)
        .handle_response(head(401, &[Negotiate]))
    else {
        panic!()
    };
    let mut next = u.handle();
    assert!(matches!(next, Next::Choose(_)));
    assert_eq!(
        next.take_learned(),
        vec![
            Learn::NegotiateChallenge,
            Learn::Mode(OriginMode::PerRequest),
            Learn::ConnectionUnauthenticated
        ]
    );
}

#[test]
fn with_no_scheme_enabled_the_401_is_the_answer() {
    let awaiting = ready(&settings(&[]), origin()).send(Sent::Nothing);
    let Answered::Plain(u) = awaiting.handle_response(head(401, &[Negotiate])) else {
        panic!()
    };
    let d = delivery_of(u.handle());
    assert_eq!(
        (d.scheme, d.keep_connection, d.challenges),
        (None, false, 1)
    );
}

// --- 401 loops ---------------------------------------------------------------

#[test]
fn the_client_gives_up_after_max_auth_rounds_401s() {
    let s = settings(&[Basic]);
    let mut ready = ready(&s, origin());
    for round in 1..=5 {
        let sent = if round == 1 {
            Sent::Nothing
        } else {
            Sent::Password {
                kind: Basic,
                preemptive: false,
                stale_retry: false,
            }
        };
        let answered = ready.send(sent).handle_response(head(401, &[Basic]));
        let next = match answered {
            Answered::Plain(u) => u.handle(),
            // Basic refused would end the attempt: pretend the server offers it anew
            // by answering as if nothing had been sent.
            Answered::Password(p) => p.handle(),
            Answered::Token(_) => unreachable!(),
        };
        match next {
            Next::Choose(c) => {
                let starting = c.chosen(Basic).unwrap();
                ready = starting
                    .started(false, ConnectionAfter::default())
                    .unwrap()
                    .0;
            }
            Next::End(e) => {
                assert_eq!(
                    e.end,
                    AttemptEnd::GiveUp(GiveUp::Rejected {
                        kind: Basic,
                        weaker: vec![]
                    })
                );
                assert_eq!(round, 2);
                return;
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    panic!("the loop should have ended");
}

#[test]
fn a_multi_leg_exchange_gives_up_after_max_auth_rounds() {
    let s = settings(&[Ntlm]);
    let mut ready = ready(&s, origin());
    for round in 1..=10 {
        let sent = Sent::Token {
            kind: Ntlm,
            preemptive: false,
        };
        let Answered::Token(t) = ready.send(sent).handle_response(head(401, &[Ntlm])) else {
            panic!()
        };
        match t.handle_result(TokenResult::Continue) {
            Next::Continue(c) => {
                ready = c.drained(ConnectionAfter::default()).unwrap().0;
            }
            Next::End(e) => {
                assert_eq!(
                    e.end,
                    AttemptEnd::GiveUp(GiveUp::TooManyChallenges { seen: 5, max: 4 })
                );
                assert_eq!(round, 5);
                return;
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("never gave up");
}

// --- a connection-based exchange --------------------------------------------

#[test]
fn a_second_leg_on_http_2_restarts_over_http_1_1() {
    let s = settings(&[Negotiate]);
    let sent = Sent::Token {
        kind: Negotiate,
        preemptive: false,
    };
    let Answered::Token(t) = ready(&s, origin())
        .send(sent)
        .handle_response(head(401, &[Negotiate]).on(true, false))
    else {
        panic!()
    };
    let mut next = t.handle_result(TokenResult::Continue);
    assert!(next.take_learned().contains(&Learn::H1Only));
    assert_eq!(
        end_of(next),
        AttemptEnd::Restart(RestartReason::SecondLegOnHttp2(Negotiate))
    );
}

#[test]
fn the_next_token_goes_on_the_same_connection_unless_it_closed() {
    let s = settings(&[Negotiate]);
    let Next::Continue(c) =
        token_answered(&s, 401, &[Negotiate]).handle_result(TokenResult::Continue)
    else {
        panic!()
    };
    assert_eq!(
        c.clone().drained(ConnectionAfter::default()).unwrap().1,
        SendOn::Same
    );
    for after in [
        ConnectionAfter::new(false, false, true),
        ConnectionAfter::new(true, false, false),
    ] {
        assert_eq!(
            c.clone().drained(after).unwrap_err().end,
            AttemptEnd::Restart(RestartReason::ClosedMidHandshake(Negotiate))
        );
    }
}

#[test]
fn an_established_exchange_is_delivered_and_teaches_the_origin() {
    let s = settings(&[Negotiate]);
    let done = TokenResult::Established {
        persistent: Some(true),
        ntlm_inside: false,
    };
    let d = delivery_of(token_answered(&s, 200, &[]).handle_result(done));
    assert_eq!(d.scheme, Some(Negotiate));
    assert!(d.keep_connection && d.connection_bound);
    assert_eq!(d.authenticated, Some(true));
    assert_eq!(
        d.learned,
        vec![
            Learn::WantsNegotiate(true),
            Learn::Mode(OriginMode::ConnectionBound)
        ]
    );
    let per_request = TokenResult::Established {
        persistent: Some(false),
        ntlm_inside: false,
    };
    let d = delivery_of(token_answered(&s, 200, &[]).handle_result(per_request));
    assert!(!d.connection_bound);
    assert!(d.learned.contains(&Learn::Mode(OriginMode::PerRequest)));
}

#[test]
fn ntlm_authenticates_the_connection_but_not_on_http_2() {
    let s = settings(&[Ntlm]);
    for (kind, ntlm_inside) in [(Ntlm, false), (Negotiate, true)] {
        let sent = Sent::Token {
            kind,
            preemptive: false,
        };
        let done = TokenResult::Established {
            persistent: None,
            ntlm_inside,
        };
        for h2 in [false, true] {
            let Answered::Token(t) = ready(&s, origin())
                .send(sent)
                .handle_response(head(200, &[]).on(h2, false))
            else {
                panic!()
            };
            let d = delivery_of(t.handle_result(done));
            assert_eq!(d.connection_bound, !h2);
            assert_eq!(d.authenticated, Some(!h2));
        }
    }
}

#[test]
fn a_refused_preemptive_token_starts_over_and_unlearns_negotiate() {
    let s = settings(&[Negotiate]);
    let o = learned_origin(OriginMode::Unknown, None);
    let opening = RequestDriver::new().open(&s, o, "h", Transport::Tls, false);
    let (ready, preempt) = opening.connected(false, false);
    assert_eq!(preempt, Preempt::Negotiate { always: false });
    let sent = Sent::Token {
        kind: Negotiate,
        preemptive: true,
    };
    let Answered::Token(t) = ready.send(sent).handle_response(head(401, &[Negotiate])) else {
        panic!()
    };
    let mut next = t.handle_result(TokenResult::Rejected);
    assert!(next.take_learned().contains(&Learn::WantsNegotiate(false)));
    assert_eq!(
        end_of(next),
        AttemptEnd::Restart(RestartReason::PreemptiveRefused)
    );
}

#[test]
fn a_refused_token_with_a_weaker_scheme_on_offer_does_not_downgrade() {
    let s = settings(&[Negotiate, Basic]);
    let next = token_answered(&s, 401, &[Negotiate, Basic]).handle_result(TokenResult::Rejected);
    assert_eq!(
        end_of(next),
        AttemptEnd::GiveUp(GiveUp::Rejected {
            kind: Negotiate,
            weaker: vec![Basic]
        })
    );
}

#[test]
fn a_refused_token_with_nothing_weaker_gives_up() {
    let s = settings(&[Negotiate, Basic]);
    let next = token_answered(&s, 401, &[Negotiate]).handle_result(TokenResult::Rejected);
    assert_eq!(
        end_of(next),
        AttemptEnd::GiveUp(GiveUp::Rejected {
            kind: Negotiate,
            weaker: vec![]
        })
    );
}

#[test]
fn allow_downgrade_lets_a_weaker_scheme_answer_after_a_refusal() {
    let mut s = settings(&[Negotiate, Basic]);
    s.schemes.allow_downgrade = true;
    let mut next =
        token_answered(&s, 401, &[Negotiate, Basic]).handle_result(TokenResult::Rejected);
    assert!(next
        .take_learned()
        .contains(&Learn::ConnectionUnauthenticated));
    let Next::Unanswered(u) = next else { panic!() };
    let Next::Choose(c) = u.handle() else {
        panic!()
    };
    assert_eq!(c.failed(), Some(Negotiate));
}

// --- Digest and Basic --------------------------------------------------------

fn password_answered(kind: SchemeKind, preemptive: bool, stale_retry: bool, status: u16) -> Next {
    let s = settings(&[kind]);
    let sent = Sent::Password {
        kind,
        preemptive,
        stale_retry,
    };
    match ready(&s, origin())
        .send(sent)
        .handle_response(head(status, &[kind]))
    {
        Answered::Password(p) => p.handle(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_password_login_the_server_took_is_learned() {
    for kind in [Digest, Basic] {
        let d = delivery_of(password_answered(kind, false, false, 200));
        assert_eq!(d.scheme, Some(kind));
        assert_eq!(d.learned, vec![Learn::PasswordLoginTaken(kind)]);
        assert!(!d.connection_bound);
    }
}

#[test]
fn a_stale_digest_nonce_is_answered_once() {
    let Next::MaybeStale(stale) = password_answered(Digest, false, false, 401) else {
        panic!()
    };
    assert_eq!(
        stale.clone().stale(ConnectionAfter::default()).1,
        SendOn::Same
    );
    assert_eq!(
        stale
            .clone()
            .stale(ConnectionAfter::new(false, false, true))
            .1,
        SendOn::Fresh
    );
    assert_eq!(
        end_of(stale.not_stale()),
        AttemptEnd::GiveUp(GiveUp::Rejected {
            kind: Digest,
            weaker: vec![]
        })
    );
    // After one stale retry, a 401 is a refusal.
    assert!(matches!(
        password_answered(Digest, false, true, 401),
        Next::End(_)
    ));
}

#[test]
fn a_refused_basic_login_gives_up() {
    assert_eq!(
        end_of(password_answered(Basic, false, false, 401)),
        AttemptEnd::GiveUp(GiveUp::Rejected {
            kind: Basic,
            weaker: vec![]
        })
    );
}

#[test]
fn a_refused_login_sent_before_the_401_is_forgotten_and_the_challenge_answered() {
    let mut next = password_answered(Basic, true, false, 401);
    assert_eq!(next.take_learned(), vec![Learn::PasswordLoginForgotten]);
    let Next::Unanswered(u) = next else { panic!() };
    let Next::Choose(c) = u.handle() else {
        panic!()
    };
    assert_eq!(c.failed(), None);
}

// --- choosing and starting a scheme ------------------------------------------

fn choosing(settings: &DriverSettings, h2: bool) -> Choosing {
    let awaiting = ready(settings, origin()).send(Sent::Nothing);
    let Answered::Plain(u) = awaiting.handle_response(head(401, &[Negotiate, Ntlm]).on(h2, false))
    else {
        panic!()
    };
    match u.handle() {
        Next::Choose(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn ntlm_on_http_2_restarts_over_http_1_1() {
    let s = settings(&[Ntlm]);
    let err = choosing(&s, true).chosen(Ntlm).unwrap_err();
    assert!(err.learned.contains(&Learn::H1Only));
    assert_eq!(
        err.end,
        AttemptEnd::Restart(RestartReason::NeedsHttp11(Ntlm))
    );
    assert!(choosing(&s, false).chosen(Ntlm).is_ok());
    // Kerberos needs one leg only: it may run on HTTP/2.
    assert!(choosing(&settings(&[Negotiate]), true)
        .chosen(Negotiate)
        .is_ok());
}

#[test]
fn a_scheme_without_credentials_sends_the_choice_back() {
    let s = settings(&[Negotiate, Ntlm]);
    let starting = choosing(&s, false).chosen(Negotiate).unwrap();
    let again = starting.unavailable();
    assert!(again.chosen(Ntlm).is_ok());
}

#[test]
fn first_credentials_go_on_the_same_connection_unless_it_cannot_carry_them() {
    let s = settings(&[Negotiate, Basic]);
    let start = || choosing(&s, false).chosen(Negotiate).unwrap();
    let on = |token, after| start().started(token, after).map(|(_, on)| on);
    assert_eq!(on(true, ConnectionAfter::default()), Ok(SendOn::Same));
    assert_eq!(
        on(true, ConnectionAfter::new(true, false, false)),
        Ok(SendOn::Fresh)
    );
    assert_eq!(
        on(false, ConnectionAfter::new(false, false, true)),
        Ok(SendOn::Fresh)
    );
    assert_eq!(
        start()
            .started(true, ConnectionAfter::new(false, false, true))
            .unwrap_err()
            .end,
        AttemptEnd::Restart(RestartReason::ClosedMidHandshake(Negotiate))
    );
    // On HTTP/2 a withheld body only lost its stream.
    let h2 = choosing(&s, true).chosen(Negotiate).unwrap();
    assert_eq!(
        h2.started(true, ConnectionAfter::new(true, true, false))
            .unwrap()
            .1,
        SendOn::Same
    );
}
