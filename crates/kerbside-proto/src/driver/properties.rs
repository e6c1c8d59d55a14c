//! Properties of the driver over random exchanges, driven the way the IO crate
//! drives it (with the policy choosing schemes): a request always ends, no
//! credentials go over plain HTTP before a 401, and no weaker scheme is chosen
//! after a refusal unless downgrades are allowed.

use proptest::prelude::*;

use super::tests::{origin, settings};
use super::*;
use crate::policy::{PlainHttpAuth, SchemeKind, SchemePolicy, Transport};
use SchemeKind::{Basic, Digest, Negotiate, Ntlm};

/// One response and what the IO crate found around it.
#[derive(Debug, Clone)]
struct Event {
    status: u16,
    offered: Vec<SchemeKind>,
    result: u8,
    stale: bool,
    after: ConnectionAfter,
    h2: bool,
}

fn kinds() -> impl Strategy<Value = Vec<SchemeKind>> {
    proptest::sample::subsequence(SchemeKind::ALL.to_vec(), 0..=4)
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![Just(200u16), Just(401u16), Just(401u16), Just(403u16)],
        kinds(),
        0u8..3,
        any::<bool>(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        any::<bool>(),
    )
        .prop_map(|(status, offered, result, stale, (w, h, c), h2)| Event {
            status,
            offered,
            result,
            stale,
            after: ConnectionAfter::new(w, h, c),
            h2,
        })
}

fn challenges(offered: &[SchemeKind]) -> Vec<crate::header::Challenge> {
    let lines: Vec<&str> = offered
        .iter()
        .map(|k| match k {
            Negotiate => "Negotiate",
            Ntlm => "NTLM",
            Digest => "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
            Basic => "Basic realm=\"r\"",
        })
        .collect();
    crate::header::parse_challenges(lines.iter().map(|l| l.as_bytes())).unwrap()
}

/// What a run of the driver did.
#[derive(Debug, Default)]
struct Trace {
    legs: u32,
    attempts: u32,
    /// Credentials went with the first leg of an attempt over plain HTTP before
    /// any 401 of this request offered Negotiate.
    unasked_plain_credentials: bool,
    /// A scheme was chosen weaker than one the server refused in the same attempt.
    downgraded: bool,
    finished: bool,
}

/// Drives the machine as the IO crate does, with the policy choosing schemes,
/// through `events` (then 401s offering everything, for ever).
fn run(
    settings: &DriverSettings,
    facts: OriginFacts,
    transport: Transport,
    events: &[Event],
) -> Trace {
    let mut trace = Trace::default();
    let mut request = RequestDriver::new();
    let mut events = events.iter().cloned();
    let mut next_event = || {
        events.next().unwrap_or(Event {
            status: 401,
            offered: SchemeKind::ALL.to_vec(),
            result: 0,
            stale: true,
            after: ConnectionAfter::default(),
            h2: false,
        })
    };
    let max_legs = (settings.max_auth_rounds + 3) * 3 + 3;
    loop {
        trace.attempts += 1;
        let asked = request.asked();
        let opening = request.open(settings, facts, "h.test", transport, false);
        let (mut ready, preempt) = opening.connected(trace.attempts > 1, false);
        let mut sent = match preempt {
            Preempt::Negotiate { .. } => Sent::Token {
                kind: Negotiate,
                preemptive: true,
            },
            Preempt::Password(kind) => Sent::Password {
                kind,
                preemptive: true,
                stale_retry: false,
            },
            Preempt::Nothing | Preempt::HeldBack => Sent::Nothing,
        };
        if sent != Sent::Nothing && transport == Transport::Plain && !asked {
            trace.unasked_plain_credentials = true;
        }
        let mut refused: Option<SchemeKind> = None;
        let end = loop {
            trace.legs += 1;
            if trace.legs > max_legs {
                return trace;
            }
            let e = next_event();
            let answered = ready
                .send(sent)
                .handle_response(ResponseHead::new(e.status, e.offered.clone()).on(e.h2, false));
            let mut answered = answered;
            for l in answered.take_learned() {
                request.handle_learned(&l);
            }
            let mut next = match answered {
                Answered::Plain(u) => u.handle(),
                Answered::Token(t) => {
                    let kind = match sent {
                        Sent::Token { kind, .. } => kind,
                        _ => unreachable!(),
                    };
                    let result = match (e.status, e.result) {
                        (401, 0) => TokenResult::Continue,
                        (401, _) => {
                            if !matches!(
                                sent,
                                Sent::Token {
                                    preemptive: true,
                                    ..
                                }
                            ) {
                                refused = Some(refused.map_or(kind, |r| r.min(kind)));
                            }
                            TokenResult::Rejected
                        }
                        _ => TokenResult::Established {
                            persistent: None,
                            ntlm_inside: false,
                        },
                    };
                    t.handle_result(result)
                }
                Answered::Password(p) => {
                    // A login sent before the 401 (taken by the origin earlier) and
                    // refused now is forgotten, not a refusal of what the server
                    // offered: the challenge is answered afresh.
                    if e.status == 401 {
                        if let Sent::Password {
                            kind,
                            preemptive: false,
                            ..
                        } = sent
                        {
                            refused = Some(refused.map_or(kind, |r| r.min(kind)));
                        }
                    }
                    p.handle()
                }
            };
            let step: Result<(Ready, Sent), AttemptEnd> = loop {
                for l in next.take_learned() {
                    request.handle_learned(&l);
                }
                next = match next {
                    Next::Continue(c) => match c.drained(e.after) {
                        Ok((r, _)) => {
                            let kind = match sent {
                                Sent::Token { kind, .. } => kind,
                                _ => Negotiate,
                            };
                            break Ok((
                                r,
                                Sent::Token {
                                    kind,
                                    preemptive: false,
                                },
                            ));
                        }
                        Err(end) => break Err(end.end),
                    },
                    Next::MaybeStale(s) if e.stale => {
                        let (r, _) = s.stale(e.after);
                        break Ok((
                            r,
                            Sent::Password {
                                kind: Digest,
                                preemptive: false,
                                stale_retry: true,
                            },
                        ));
                    }
                    Next::MaybeStale(s) => s.not_stale(),
                    Next::Unanswered(u) => u.handle(),
                    Next::Choose(c) => {
                        let offered = challenges(&e.offered);
                        let chosen = settings.schemes.choose_among(
                            &offered,
                            c.failed(),
                            "h.test",
                            transport,
                            &[],
                        );
                        let Ok(chosen) = chosen else {
                            trace.finished = true;
                            return trace;
                        };
                        let kind = chosen.kind;
                        if refused.is_some_and(|r| kind > r) {
                            trace.downgraded = true;
                        }
                        match c.chosen(kind) {
                            Ok(starting) => {
                                let token = kind <= Ntlm;
                                match starting.started(token, e.after) {
                                    Ok((r, _)) => {
                                        let s = if token {
                                            Sent::Token {
                                                kind,
                                                preemptive: false,
                                            }
                                        } else {
                                            Sent::Password {
                                                kind,
                                                preemptive: false,
                                                stale_retry: false,
                                            }
                                        };
                                        break Ok((r, s));
                                    }
                                    Err(end) => break Err(end.end),
                                }
                            }
                            Err(end) => break Err(end.end),
                        }
                    }
                    Next::Deliver(_) => {
                        trace.finished = true;
                        return trace;
                    }
                    Next::End(end) => break Err(end.end),
                };
            };
            match step {
                Ok((r, s)) => {
                    ready = r;
                    sent = s;
                }
                Err(end) => break end,
            }
        };
        match request.clone().handle_end(end) {
            Retry::Again { driver, .. } => request = driver,
            Retry::GiveUp(_) => {
                trace.finished = true;
                return trace;
            }
        }
        if trace.attempts > 3 {
            return trace;
        }
    }
}

fn any_settings() -> impl Strategy<Value = DriverSettings> {
    (
        kinds(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(Preemptive::Learned),
            Just(Preemptive::Always),
            Just(Preemptive::Never)
        ],
        0u32..6,
    )
        .prop_map(|(enabled, downgrade, plain, preemptive, max)| {
            let mut schemes = SchemePolicy::only(&enabled);
            schemes.allow_downgrade = downgrade;
            if plain {
                schemes.plain_http = PlainHttpAuth::Any;
            }
            DriverSettings::new(schemes, max).with_preemptive(preemptive)
        })
}

fn any_origin() -> impl Strategy<Value = OriginFacts> {
    (
        any::<bool>(),
        prop_oneof![
            Just(OriginMode::Unknown),
            Just(OriginMode::PerRequest),
            Just(OriginMode::ConnectionBound)
        ],
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(Digest), Just(Basic)]),
    )
        .prop_map(|(wants, mode, h1, login)| OriginFacts::new(wants, mode, h1, login))
}

fn any_transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::Tls),
        Just(Transport::InsecureTls),
        Just(Transport::Plain)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the server answers, a request ends: within max-auth-rounds 401s
    /// per attempt, and at most three attempts (a restart, an HTTP/1.1 retry).
    #[test]
    fn every_request_ends(
        settings in any_settings(),
        facts in any_origin(),
        transport in any_transport(),
        events in proptest::collection::vec(event(), 0..24),
    ) {
        let trace = run(&settings, facts, transport, &events);
        prop_assert!(trace.finished, "{trace:?}");
        prop_assert!(trace.attempts <= 3, "{trace:?}");
    }

    /// Over plain HTTP nothing goes before a 401 to this request, whatever the
    /// options and whatever was learned.
    #[test]
    fn never_credentials_over_plain_http_before_a_401(
        settings in any_settings(),
        facts in any_origin(),
        events in proptest::collection::vec(event(), 0..24),
        authenticated in any::<bool>(),
    ) {
        let trace = run(&settings, facts, Transport::Plain, &events);
        prop_assert!(!trace.unasked_plain_credentials, "{trace:?}");
        let opening = RequestDriver::new().open(&settings, facts, "h.test", Transport::Plain, false);
        let (_, preempt) = opening.connected(authenticated, authenticated);
        prop_assert!(matches!(preempt, Preempt::Nothing | Preempt::HeldBack));
    }

    /// A scheme weaker than one the server refused is never chosen unless
    /// downgrades are allowed.
    #[test]
    fn never_a_weaker_scheme_after_a_refusal_unless_allowed(
        settings in any_settings(),
        facts in any_origin(),
        transport in any_transport(),
        events in proptest::collection::vec(event(), 0..24),
    ) {
        let trace = run(&settings, facts, transport, &events);
        if !settings.schemes.allow_downgrade {
            prop_assert!(!trace.downgraded, "{trace:?}");
        }
    }
}

/// The property runner sees a downgrade when one happens, so the property above
/// is not vacuous.
#[test]
fn the_runner_sees_a_downgrade_when_allowed() {
    let mut s = settings(&[Negotiate, Basic]);
    s.schemes.allow_downgrade = true;
    let ev = |status, offered: &[SchemeKind], result| Event {
        status,
        offered: offered.to_vec(),
        result,
        stale: false,
        after: ConnectionAfter::default(),
        h2: false,
    };
    let events = [
        ev(401, &[Negotiate, Basic], 0),
        ev(401, &[Negotiate, Basic], 1),
        ev(200, &[], 0),
    ];
    let trace = run(&s, origin(), Transport::Tls, &events);
    assert!(trace.finished && trace.downgraded, "{trace:?}");
    s.schemes.allow_downgrade = false;
    let trace = run(&s, origin(), Transport::Tls, &events);
    assert!(trace.finished && !trace.downgraded, "{trace:?}");
}
