//! `kerbside gate --check`: configuration and a full Kerberos round trip against a
//! real KDC, with problems explained in words.
#![allow(clippy::unwrap_used)]

mod common;

use common::{kerbside, text, EchoUpstream};
use kerbside_testkit::{TestCa, TestRealm};

fn check(realm: &TestRealm, extra: &[&str]) -> (Option<i32>, String) {
    let password = realm.dir().join("bob.password");
    std::fs::write(&password, "bob-password\n").unwrap();
    let out = kerbside(realm)
        .args(["gate", "--check", "--keytab"])
        .arg(realm.keytab())
        .args(["--check-principal", "bob", "--check-password-file"])
        .arg(&password)
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

#[test]
fn a_good_setup_passes_the_round_trip() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let (code, out) = check(
        &realm,
        &[
            "--check-spn",
            "HTTP@localhost",
            "--upstream",
            &upstream.url(),
            "--tls-cert",
            cert.cert_pem_path().to_str().unwrap(),
            "--tls-key",
            cert.key_pem_path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("bob got a service ticket for HTTP@localhost"),
        "{out}"
    );
    assert!(out.contains("bob@EXAMPLE.TEST would be let in"), "{out}");
    assert!(out.contains("mutual authentication"), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");
}

#[test]
fn problems_are_named() {
    let realm = TestRealm::start().unwrap();
    // Nothing listens on port 1; no TLS; a service the KDC does not know.
    let (code, out) = check(
        &realm,
        &[
            "--check-spn",
            "HTTP@nosuch.example.test",
            "--upstream",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("PROBLEM: no TLS"), "{out}");
    assert!(out.contains("does not accept connections"), "{out}");
    assert!(
        out.contains("KDC does not know the service principal"),
        "{out}"
    );

    // A new key at the KDC that the keytab lacks (kvno 2 against kvno 1).
    realm.kadmin("cpw -randkey HTTP/localhost").unwrap();
    let upstream = EchoUpstream::start();
    let (code, out) = check(
        &realm,
        &[
            "--check-spn",
            "HTTP@localhost",
            "--upstream",
            &upstream.url(),
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the gate would refuse bob"), "{out}");
    assert!(out.contains("kvno"), "{out}");
}
