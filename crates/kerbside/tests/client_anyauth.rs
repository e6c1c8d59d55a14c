//! Issue 10, point 14: `--anyauth` with a password that cannot get a Kerberos
//! ticket because the KDC does not know the user goes on to the next scheme it
//! holds credentials for (no credential was sent), and `-v` says why; a wrong
//! password for a user the KDC knows stops there. The server is `kerbside gate`
//! offering Negotiate and NTLM; curl `--ntlm` shows the NTLM login is good.
#![allow(clippy::unwrap_used)]

mod common;

use common::{run_fetch, text, with_password_on_stdin, EchoUpstream, GateProcess};
use kerbside_testkit::{run_curl, TestCa, TestRealm};

#[test]
fn anyauth_goes_on_to_ntlm_for_a_user_the_kdc_does_not_know() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    // carol is in the gate's NTLM users file only; alice in the KDC and the file.
    let users = realm.dir().join("ntlm-users");
    for (user, password) in [("carol", "carol-password"), ("alice", "alice-password")] {
        with_password_on_stdin(
            &realm,
            &["ntlm-passwd".as_ref(), users.as_os_str(), user.as_ref()],
            password,
        );
    }
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &[
            "--auth",
            "connection",
            "--ntlm-users",
            users.to_str().unwrap(),
        ],
    );
    let url = gate.url("/");

    // carol's NTLM login is good (curl --ntlm). curl --anyauth itself picks
    // Negotiate, cannot make a token without a ticket, and stops at the 401.
    let run = run_curl(
        &["--ntlm", "-u", "carol:carol-password", &url],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());

    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--anyauth", "-v", "-u", "carol:carol-password"],
        &url,
    );
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert!(body.contains("carol"), "{body}");
    assert!(
        err.contains("Negotiate skipped: the KDC does not know the user carol"),
        "-v says why: {err}"
    );
    assert!(err.contains("Answering the server with NTLM"), "{err}");

    // A wrong password for a user the KDC knows stops at Kerberos: the same wrong
    // password is not tried on the server (account lockout). Count the NTLM lines once
    // the gate has logged fetch's login (bound to the TLS channel, unlike curl's): the
    // log arrives from the gate's stderr a little after the response.
    assert!(
        gate.wait_for_log(
            |l| l.contains("authenticated with NTLM principal=carol channel_bound=true")
        ),
        "{}",
        gate.log()
    );
    let before = gate.log().matches("NTLM").count();
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--anyauth", "-u", "alice:wrong-password"],
        &url,
    );
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the KDC refused the password of alice: wrong password"),
        "{err}"
    );
    assert_eq!(
        gate.log().matches("NTLM").count(),
        before,
        "no NTLM attempt reached the gate: {}",
        gate.log()
    );
}
