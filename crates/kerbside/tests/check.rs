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
    // The keytab, entry by entry, and the KDC's key version for each principal, asked
    // with the principal's own key.
    for host in ["localhost", "127.0.0.1"] {
        assert!(
            out.contains(&format!(
                "keytab entry: HTTP/{host}@EXAMPLE.TEST kvno 1 (aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "the KDC encrypts tickets for HTTP/{host}@EXAMPLE.TEST with kvno 1 (aes256-cts-hmac-sha1-96), which the keytab holds (asked with HTTP/{host}@EXAMPLE.TEST's own key)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "the acceptor name HTTP/{host} is one of the TLS certificate's names"
            )),
            "{out}"
        );
    }
    assert!(out.contains("has mode 0600 (its owner only)"), "{out}");
    assert!(
        out.contains("clients can reach the gate as https://localhost/, https://127.0.0.1/"),
        "{out}"
    );
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn the_keytab_against_the_certificate_and_its_mode() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    // A certificate for another host than the keytab's, and one name of the keytab's.
    let cert = ca.issue(&["www.example.test", "localhost"]);
    let upstream = EchoUpstream::start();
    let keytab = realm.dir().join("readable.keytab");
    realm
        .export_keytab(&["HTTP/localhost", "HTTP/127.0.0.1"], &keytab)
        .unwrap();
    std::fs::set_permissions(&keytab, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = kerbside(&realm)
        .args(["gate", "--check", "--keytab"])
        .arg(&keytab)
        .args(["--upstream", &upstream.url(), "--tls-cert"])
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let out_text = format!("{stdout}{stderr}");
    // Warnings only: the gate works for localhost.
    assert_eq!(out.status.code(), Some(0), "{out_text}");
    assert!(
        out_text.contains("has mode 0644: every local user can read the service's keys"),
        "{out_text}"
    );
    assert!(out_text.contains("chmod 600"), "{out_text}");
    assert!(
        out_text.contains("warning: the gate accepts tickets for HTTP/127.0.0.1, but the TLS certificate is not for 127.0.0.1 (it is for www.example.test, localhost)"),
        "{out_text}"
    );
    assert!(
        out_text.contains("warning: the TLS certificate names www.example.test, but the keytab has no key for HTTP/www.example.test"),
        "{out_text}"
    );
    assert!(
        out_text.contains("clients can reach the gate as https://localhost/ "),
        "{out_text}"
    );
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
    // The KDC's kvno, learnt from bob's ticket (the keytab's old key cannot get one).
    assert!(
        out.contains("PROBLEM: the keytab is stale: the service's key was changed (kvno 2 at the KDC, 1 in the keytab): export a new keytab for HTTP/localhost@EXAMPLE.TEST"),
        "{out}"
    );
    assert!(out.contains("(asked as bob)"), "{out}");

    // The new key exported (ktadd makes kvno 3 and appends it): the keytab is current,
    // and keeps kvno 1 for tickets issued before.
    realm
        .kadmin(&format!(
            "ktadd -k {} HTTP/localhost",
            realm.keytab().display()
        ))
        .unwrap();
    let (code, out) = check(
        &realm,
        &[
            "--check-spn",
            "HTTP@localhost",
            "--upstream",
            &upstream.url(),
        ],
    );
    assert_eq!(code, Some(1), "only the missing TLS is left: {out}");
    assert!(!out.contains("stale"), "{out}");
    assert!(
        out.contains("keytab entry: HTTP/localhost@EXAMPLE.TEST kvno 1 (aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96); kvno 3 (aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96)"),
        "{out}"
    );
    assert!(
        out.contains("the KDC encrypts tickets for HTTP/localhost@EXAMPLE.TEST with kvno 3 (aes256-cts-hmac-sha1-96), which the keytab holds (asked with HTTP/localhost@EXAMPLE.TEST's own key)"),
        "{out}"
    );
    assert!(out.contains("bob@EXAMPLE.TEST would be let in"), "{out}");
}
