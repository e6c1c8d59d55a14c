//! `kerbside gate --basic-fallback`: Basic credentials checked against the KDC and
//! the gate's keytab, with curl as the client; a fake KDC cannot vouch for a user.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{clean_env, curl, kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{TestCa, TestCert, TestRealm};

/// A TLS gate with Basic fallback whose Kerberos configuration (KDC) comes from
/// `kdc_realm` and whose keys come from `keytab_realm`.
fn gate(
    kdc_realm: &TestRealm,
    keytab_realm: &TestRealm,
    cert: &TestCert,
    upstream: &str,
) -> GateProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(kdc_realm.env())
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--basic-fallback",
            "--upstream",
            upstream,
        ])
        .arg("--keytab")
        .arg(keytab_realm.keytab())
        .arg("--tls-cert")
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path());
    GateProcess::from_command(cmd)
}

#[test]
fn basic_credentials_are_checked_against_the_kdc_and_the_keytab() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = gate(&realm, &realm, &cert, &upstream.url());
    let no_ticket = format!("FILE:{}/none", realm.dir().display());

    let out = curl(&realm, ca.ca_pem_path())
        .env("KRB5CCNAME", &no_ticket)
        .args(["--basic", "-u", "alice:alice-password"])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(
        body.contains("users=alice@EXAMPLE.TEST\n"),
        "{body}{err}\n{}",
        gate.log()
    );
    assert!(
        !body.contains("LEAKED-AUTHORIZATION"),
        "the password must not reach the upstream: {body}"
    );
    assert!(
        gate.log().contains("authenticated with Basic"),
        "{}",
        gate.log()
    );

    let headers = realm.dir().join("h");
    let out = curl(&realm, ca.ca_pem_path())
        .env("KRB5CCNAME", &no_ticket)
        .args([
            "--basic",
            "-u",
            "alice:wrong",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-D",
        ])
        .arg(&headers)
        .arg(gate.url("/"))
        .output()
        .unwrap();
    assert_eq!(text(&out).0, "401");
    let headers = std::fs::read_to_string(headers)
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("www-authenticate: negotiate\r\n"),
        "{headers}"
    );
    assert!(
        headers.contains("www-authenticate: basic realm=\"kerbside\""),
        "{headers}"
    );
    assert!(
        !gate.log().contains("wrong"),
        "passwords never reach the log"
    );

    // With a ticket, --anyauth picks the stronger Negotiate.
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--anyauth", "-u", "alice:alice-password"])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    assert!(
        text(&out).0.contains("users=alice@EXAMPLE.TEST"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_fake_kdc_cannot_vouch_for_a_user() {
    // Two realms of the same name: the gate holds the real one's keys but talks to
    // the impostor's KDC, which knows alice's password (as an attacker's would).
    let real = TestRealm::start().unwrap();
    let fake = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let fooled = gate(&fake, &real, &cert, &upstream.url());
    let out = curl(&real, ca.ca_pem_path())
        .env("KRB5CCNAME", format!("FILE:{}/none", real.dir().display()))
        .args([
            "--basic",
            "-u",
            "alice:alice-password",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(fooled.url("/"))
        .output()
        .unwrap();
    assert_eq!(text(&out).0, "401", "{}", fooled.log());
    assert!(
        fooled.wait_for_log(|l| l.contains("Basic credentials refused") && l.contains("Integrity")),
        "the ticket from the impostor KDC must fail to open with the real key: {}",
        fooled.log()
    );
}

#[test]
fn basic_fallback_needs_tls() {
    let realm = TestRealm::start().unwrap();
    let out = kerbside(&realm)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--basic-fallback",
            "--upstream",
            "http://127.0.0.1:1",
        ])
        .arg("--keytab")
        .arg(realm.keytab())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("needs TLS"), "{:?}", text(&out));
}
