//! A Kerberos password from the keyring file when there is no ticket.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{TestCa, TestRealm};

#[test]
fn a_password_from_the_keyring_gets_a_ticket_when_there_is_none() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let keyring = realm.dir().join("keyring.toml");
    std::fs::write(
        &keyring,
        "[[credential]]\nhost = \"localhost\"\nuser = \"bob\"\npassword = \"bob-password\"\nschemes = [\"negotiate\"]\n",
    )
    .unwrap();
    let fetch = || {
        kerbside(&realm)
            .env("KRB5CCNAME", format!("FILE:{}/none", realm.dir().display()))
            .env("KERBSIDE_KEYRING", &keyring)
            .args(["fetch", "--negotiate", "--cacert"])
            .arg(ca.ca_pem_path())
            .arg(gate.url("/"))
            .output()
            .unwrap()
    };
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = fetch();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).1.contains("chmod 600"), "{:?}", text(&out));
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = fetch();
    let (body, err) = text(&out);
    assert!(body.contains("users=bob@EXAMPLE.TEST\n"), "{body}{err}");
    assert!(!err.contains("bob-password"), "{err}");
}
