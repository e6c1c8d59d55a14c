//! The in-memory replay cache refuses every replay MIT's file cache refuses, against a
//! real MIT KDC: the same token twice, the same AP-REQ unwrapped from SPNEGO (a bare
//! krb5 token), and re-wrapped with another mechanism type listed; a fresh token from
//! the same ticket is accepted.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, InitiatorConfig, NegotiateAcceptor, NegotiateInitiator, Problem,
};
use kerbside_proto::krb5;
use kerbside_proto::spnego::{NegTokenInit, Oid};
use kerbside_proto::{Mechanism, Step};
use kerbside_testkit::TestRealm;

fn token() -> Vec<u8> {
    let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("localhost")).unwrap();
    match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    }
}

/// SPNEGO listing the Microsoft krb5 OID before the real one, around `mech_token`
/// (encoded by proto's `NegTokenInit`).
fn spnego_with_two_mechs(mech_token: &[u8]) -> Vec<u8> {
    NegTokenInit {
        mech_types: vec![Oid::known(Oid::MS_KRB5), Oid::known(Oid::KRB5)],
        req_flags: None,
        mech_token: Some(mech_token.to_vec()),
        mech_list_mic: None,
    }
    .encode()
}

fn accepted(result: Result<AcceptStep, kerbside_gssapi::GssError>) -> bool {
    matches!(result, Ok(AcceptStep::Done { .. }))
}

fn replay(result: Result<AcceptStep, kerbside_gssapi::GssError>) -> bool {
    matches!(&result, Err(e) if e.problem() == Problem::Replay)
}

#[test]
fn every_replay_mit_refuses_the_memory_cache_refuses() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let config = AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    };
    let mit = NegotiateAcceptor::new(&config).unwrap();
    let memory = mit
        .with_memory_replay_cache(Duration::from_secs(300))
        .unwrap();
    assert!(memory.has_memory_replay_cache());

    for acceptor in [&mit, &memory] {
        let name = if acceptor.has_memory_replay_cache() {
            "memory"
        } else {
            "MIT"
        };
        // The same token twice.
        let first = token();
        assert!(accepted(acceptor.accept(&first)), "{name}: a fresh token");
        assert!(
            replay(acceptor.accept(&first)),
            "{name}: the same token again"
        );

        // The same AP-REQ as a bare krb5 token, after the SPNEGO one.
        let mech = krb5::spnego_mech_token(&first).unwrap().to_vec();
        assert_ne!(mech, first);
        assert_eq!(mech.first(), Some(&0x60));
        let unwrapped = acceptor.accept(&mech);
        assert!(
            !accepted(unwrapped.clone()),
            "{name}: unwrapped: {unwrapped:?}"
        );

        // Re-wrapped with another mechanism type listed first.
        let rewrapped = spnego_with_two_mechs(&mech);
        assert_eq!(
            krb5::authenticator(&rewrapped).unwrap().cipher,
            krb5::authenticator(&first).unwrap().cipher
        );
        let result = acceptor.accept(&rewrapped);
        assert!(!accepted(result.clone()), "{name}: re-wrapped: {result:?}");

        // A bare krb5 token first, then the same AP-REQ in SPNEGO.
        let second = token();
        let bare = krb5::spnego_mech_token(&second).unwrap().to_vec();
        assert!(
            accepted(acceptor.accept(&bare)),
            "{name}: a bare krb5 token"
        );
        assert!(
            replay(acceptor.accept(&bare)),
            "{name}: the bare token again"
        );
        let result = acceptor.accept(&second);
        assert!(
            !accepted(result.clone()),
            "{name}: SPNEGO after bare: {result:?}"
        );

        // A fresh token from the same ticket (new authenticator) is fine.
        assert!(accepted(acceptor.accept(&token())), "{name}: fresh token");
    }
}

#[test]
fn replays_across_clones_and_threads_are_caught_once() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap()
    .with_memory_replay_cache(Duration::from_secs(300))
    .unwrap();
    let t = token();
    let results: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let a = acceptor.clone();
                let t = t.clone();
                s.spawn(move || accepted(a.accept(&t)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|ok| **ok).count(),
        1,
        "exactly one of four concurrent uses wins: {results:?}"
    );
}

#[test]
fn without_any_replay_cache_a_replay_passes() {
    // The control: `ReplayCheck::Off` (benchmarks only) really is off, so the tests
    // above prove the memory cache, not some other check.
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let off = NegotiateAcceptor::with_replay_check(
        &AcceptorConfig {
            keytab: Some(realm.keytab().to_owned()),
            acceptor_name: None,
        },
        kerbside_gssapi::ReplayCheck::Off,
    )
    .unwrap();
    let t = token();
    assert!(accepted(off.accept(&t)));
    assert!(accepted(off.accept(&t)), "rcache none: accepted twice");
}
