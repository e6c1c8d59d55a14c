//! Property tests: no input from a peer or a file makes the Digest code panic, and what it
//! writes reads back.

use proptest::prelude::*;

use super::client::{choose, decode_ext_value, encode_ext_value, DigestPolicy, DigestSession};
use super::htdigest::{format_line, Htdigest};
use super::server::{DigestServer, NonceCounts};
use super::{Algorithm, HashFunction};
use crate::header::{parse_challenges, AuthenticationInfo, Credentials};

const NOW: u64 = 1_700_000_000;

/// Header-ish text: mostly the characters Digest parameters are made of.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,200}",
        "Digest( [a-z*]{1,9}=(\"[ -~]{0,20}\"|[A-Za-z0-9/+=-]{0,20}),?){0,10}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn challenges_never_panic(text in header_text(), user in any::<String>(), password in any::<String>(),
                              method in "[A-Z]{0,7}", uri in any::<String>(), cnonce in any::<String>()) {
        if let Ok(challenges) = parse_challenges([text.as_bytes()]) {
            if let Ok(chosen) = choose(&challenges, &DigestPolicy { allow_md5: true }) {
                let mut session = DigestSession::new(chosen, &user, &password);
                if let Ok(credentials) = session.authorization(&method, &uri, None, &cnonce) {
                    let written = super::to_header_value(&credentials);
                    prop_assert_eq!(Credentials::parse(written.as_bytes()), Ok(credentials));
                }
                let _ = session.handle_rechallenge(&challenges);
            }
        }
    }

    #[test]
    fn credentials_and_info_never_panic(text in header_text(), info in "[ -~]{0,120}") {
        let server = DigestServer::new("r", [1; 32]).unwrap()
            .with_algorithms(&Algorithm::ALL).unwrap()
            .with_userhash(true);
        let users = Htdigest::parse(b"a:r:939e7578ed9e3c518a452acee763bce9").unwrap();
        if let Ok(credentials) = Credentials::parse(text.as_bytes()) {
            let _ = server.verify(&credentials, "GET", "/", &users, NOW);
        }
        let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
        let mut session = DigestSession::new(chosen, "a", "p");
        let _ = session.authorization("GET", "/", None, "c");
        if let Ok(info) = AuthenticationInfo::parse(info.as_bytes()) {
            let _ = session.verify_authentication_info(&info, None);
        }
    }

    #[test]
    fn htdigest_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), text in "([a-z#: ]{0,8}:[a-z ]{0,8}:[0-9a-f]{30,66}\r?\n){0,5}") {
        for input in [&bytes[..], text.as_bytes()] {
            if let Ok(file) = Htdigest::parse(input) {
                prop_assert_eq!(Htdigest::parse(file.to_text().as_bytes()), Ok(file));
            }
        }
    }

    #[test]
    fn htdigest_lines_round_trip(user in any::<String>(), realm in any::<String>(), password in any::<String>(), sha in any::<bool>()) {
        let hash = if sha { HashFunction::Sha256 } else { HashFunction::Md5 };
        if let Ok(line) = format_line(&user, &realm, &password, hash) {
            let file = Htdigest::parse(line.as_bytes()).unwrap();
            let entry = file.lookup(&user, &realm, hash);
            // A user name starting with '#' reads as a comment, as in Apache.
            prop_assert!(entry.is_some() || user.trim_start().starts_with('#') || (user.trim().is_empty()));
        }
    }

    #[test]
    fn ext_values_round_trip(value in any::<String>(), garbage in "[ -~]{0,40}") {
        prop_assert_eq!(decode_ext_value(&encode_ext_value(&value)), Some(value));
        let _ = decode_ext_value(&garbage);
    }

    #[test]
    fn nonce_counts_stay_bounded(ops in proptest::collection::vec((0u8..20, 0u64..30, any::<u32>(), 0u64..50), 0..200)) {
        let mut counts = NonceCounts::new(5);
        for (nonce, serial, nc, now) in ops {
            let _ = counts.record(&nonce.to_string(), serial, nc, now + 10, now);
            prop_assert!(counts.len() <= 5);
        }
    }
}
