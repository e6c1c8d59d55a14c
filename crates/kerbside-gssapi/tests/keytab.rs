//! The acceptor's keytab read into memory, against a real MIT KDC (kerbside-testkit):
//! a key added to the file (`kadmin.local ktadd`) is used at once, old tickets keep
//! working, and a file that stops being a keytab leaves the keys read before in use.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, ClientCredentials, Delegation, InitiatorConfig, NegotiateAcceptor,
    NegotiateInitiator,
};
use kerbside_proto::{Mechanism, MutualAuth, Step};
use kerbside_testkit::TestRealm;

/// A token for HTTP@localhost from alice's keys, with a service ticket asked for now.
fn token(alice_keytab: &Path) -> Vec<u8> {
    let config = InitiatorConfig {
        target: "HTTP@localhost".to_owned(),
        mutual: MutualAuth::Off,
        delegation: Delegation::None,
        credentials: ClientCredentials::Keytab {
            path: alice_keytab.to_owned(),
            principal: Some("alice@EXAMPLE.TEST".to_owned()),
        },
        channel_bindings: None,
    };
    let mut init = NegotiateInitiator::new(&config).unwrap();
    match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    }
}

fn accepted(acceptor: &NegotiateAcceptor, token: &[u8]) -> bool {
    matches!(acceptor.accept(token), Ok(AcceptStep::Done { principal, .. }) if principal == "alice@EXAMPLE.TEST")
}

#[test]
fn keys_added_to_the_file_are_used_at_once_and_a_broken_file_keeps_the_old_ones() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let alice = realm.dir().join("alice.keytab");
    realm.export_keytab(&["alice"], &alice).unwrap();
    let keytab = realm.dir().join("service.keytab");
    realm.export_keytab(&["HTTP/localhost"], &keytab).unwrap();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(keytab.clone()),
        acceptor_name: None,
    })
    .unwrap()
    .with_memory_replay_cache(std::time::Duration::from_secs(300))
    .unwrap();

    let old = token(&alice);
    assert!(accepted(&acceptor, &old));

    // Re-keyed: a new random key at kvno + 1, appended to the file.
    realm
        .kadmin(&format!("ktadd -k \"{}\" HTTP/localhost", keytab.display()))
        .unwrap();
    let new = token(&alice);
    assert!(accepted(&acceptor, &new), "a ticket for the new key");
    // A fresh token from the old ticket cannot be had (the KDC gives the new kvno
    // now); the old token is a replay, refused as such.
    assert!(!accepted(&acceptor, &old));

    // The file stops being a keytab: the keys read before stay in use.
    let good = std::fs::read(&keytab).unwrap();
    std::fs::write(&keytab, b"not a keytab").unwrap();
    // A token that fails makes the acceptor look at the file at once.
    let mut broken = token(&alice);
    let last = broken.len() - 1;
    broken[last] ^= 0x55;
    assert!(!accepted(&acceptor, &broken));
    assert!(accepted(&acceptor, &token(&alice)));
    // An acceptor started on it now fails, in words, as MIT's file keytab does.
    let err = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(keytab.clone()),
        acceptor_name: None,
    })
    .unwrap_err();
    assert!(!err.to_string().is_empty());

    // Written back: still accepted.
    std::fs::write(&keytab, good).unwrap();
    assert!(accepted(&acceptor, &token(&alice)));
}
