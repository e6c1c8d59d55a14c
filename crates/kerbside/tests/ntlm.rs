//! NTLM on both sides, against real peers: `kerbside fetch --ntlm` to Apache +
//! mod_auth_gssapi with gss-ntlmssp and to a pyspnego acceptor (an implementation
//! independent of gss-ntlmssp); curl, requests-ntlm and curl's SPNEGO with a
//! gss-ntlmssp credential to `kerbside gate`.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{
    clean_env, fetch_without_ticket, kerbside, ok, run_fetch, sha256_hex, text,
    with_password_on_stdin, EchoUpstream, GateProcess,
};
use kerbside_testkit::{
    run_curl, run_curl_env, run_password_client, ApacheScheme, PyNtlmOptions, PyNtlmServer,
    SchemeApache, SchemeApacheOptions, TestCa, TestRealm, ALICE, BOB,
};

/// A users file for the gate (`kerbside ntlm-passwd`), mode 600.
fn ntlm_users(realm: &TestRealm) -> PathBuf {
    let path = realm.dir().join("ntlm-users");
    for (user, password) in [
        (ALICE.ntlm_name(), ALICE.password),
        ("bob".into(), BOB.password),
    ] {
        with_password_on_stdin(
            realm,
            &["ntlm-passwd".as_ref(), path.as_os_str(), user.as_ref()],
            password,
        );
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    path
}

#[test]
fn fetch_ntlm_to_apache_with_gss_ntlmssp_over_https_with_a_post() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = SchemeApache::start(&cert, SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);

    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "-i", "-v", "-u", &login],
        &apache.url("/private/"),
    );
    let body = ok(&out);
    let (_, err) = text(&out);
    assert!(body.contains("x-remote-user: EXAMPLE\\alice"), "{body}");
    assert!(err.contains("Answering the server with NTLM"), "{err}");
    assert!(
        !err.contains(ALICE.password),
        "the password reached -v output: {err}"
    );

    // A 200 KiB body goes through the connection-bound exchange intact.
    let file = realm.dir().join("upload.bin");
    let data: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out = fetch_without_ticket(&realm, ca.ca_pem_path())
        .args(["--ntlm", "-u", &login, "--data"])
        .arg(format!("@{}", file.display()))
        .arg(apache.url("/private/upload"))
        .output()
        .unwrap();
    let body = ok(&out);
    let digest = sha256_hex(&data);
    assert_eq!(body.trim(), format!("{digest} {}", data.len()));

    // A wrong password is refused in words.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "-u", "EXAMPLE\\alice:wrong"],
        &apache.url("/private/"),
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("refused the NTLM credentials"), "{err}");
}

#[test]
fn fetch_answers_negotiate_with_ntlm_inside_spnego_only_when_allowed() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    // Apache with gss-ntlmssp offers Negotiate (SPNEGO with NTLMSSP) and NTLM.
    let apache = SchemeApache::start(&cert, SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);

    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--negotiate", "--negotiate-ntlm", "-i", "-v", "-u", &login],
        &apache.url("/private/"),
    );
    let body = ok(&out);
    let (_, err) = text(&out);
    assert!(
        body.contains("x-remote-user: EXAMPLE\\alice"),
        "{body}\n{err}"
    );
    assert!(err.contains("NTLM inside Negotiate"), "{err}");

    // Without the switch, no Kerberos ticket means no Negotiate at all.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--negotiate", "-u", &login],
        &apache.url("/private/"),
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("Kerberos") || err.contains("ticket"), "{err}");
}

#[test]
fn fetch_ntlm_to_a_pyspnego_acceptor_with_channel_bindings() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let server = PyNtlmServer::start(PyNtlmOptions {
        cert: Some(&cert),
        channel_bindings: true,
        ..PyNtlmOptions::default()
    })
    .unwrap();
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "-i", "-u", &login],
        &server.url("/private/"),
    );
    let body = ok(&out);
    assert!(
        body.contains("x-remote-user: EXAMPLE\\alice"),
        "{body}\n{}",
        server.stderr()
    );
    // One connection: NEGOTIATE and AUTHENTICATE on it, nothing else.
    let entries = server.log_entries();
    let conns: std::collections::BTreeSet<_> = entries.iter().map(|e| e.connection).collect();
    assert_eq!(conns.len(), 1, "{}", server.log());

    // Without -u, the keyring file gives the NTLM user and password.
    let keyring = realm.dir().join("keyring.toml");
    std::fs::write(
        &keyring,
        format!(
            "[[credential]]\nhost = \"localhost\"\nuser = 'EXAMPLE\\alice'\npassword = \"{}\"\nschemes = [\"ntlm\"]\n",
            ALICE.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &keyring,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = fetch_without_ticket(&realm, ca.ca_pem_path())
        .env("KERBSIDE_KEYRING", &keyring)
        .args(["--ntlm", "-i", "-v"])
        .arg(server.url("/private/"))
        .output()
        .unwrap();
    let body = ok(&out);
    let (_, err) = text(&out);
    assert!(body.contains("x-remote-user: EXAMPLE\\alice"), "{body}");
    assert!(err.contains("from the keyring file"), "{err}");

    // Plain HTTP needs the host opted in, and then works.
    let plain = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "-u", &login],
        &plain.url("/private/"),
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("--allow-http-auth"), "{err}");
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "--allow-http-auth", "-u", &login],
        &plain.url("/private/"),
    );
    ok(&out);
}

#[test]
fn a_server_that_drops_the_connection_after_its_challenge_is_reported() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let server = PyNtlmServer::start(PyNtlmOptions {
        close_after_challenge: true,
        ..PyNtlmOptions::default()
    })
    .unwrap();
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "--allow-http-auth", "-v", "-u", &login],
        &server.url("/private/"),
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("closed the connection in the middle of the NTLM exchange, twice"),
        "{err}"
    );
    // It started over once, on a fresh connection.
    assert_eq!(
        err.matches("Starting over on a new connection").count(),
        1,
        "{err}"
    );
    let negotiates = server
        .log_entries()
        .iter()
        .filter(|e| e.leg == "negotiate")
        .count();
    assert_eq!(negotiates, 2, "{}", server.log());
}

/// A TLS gate in connection mode taking NTLM for the users of `users`.
fn ntlm_gate(
    realm: &TestRealm,
    cert: &kerbside_testkit::TestCert,
    upstream: &str,
    users: &Path,
    extra: &[&str],
) -> GateProcess {
    let mut args = vec![
        "--auth",
        "connection",
        "--ntlm-users",
        users.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    GateProcess::start(realm, Some(cert), upstream, &args)
}

#[test]
fn curl_and_requests_ntlm_log_in_to_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let users = ntlm_users(&realm);
    let gate = ntlm_gate(&realm, &cert, &upstream.url(), &users, &[]);
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);

    // curl 7.88 sends the 32-byte NEGOTIATE that gss-ntlmssp refuses; the gate takes it.
    let run = run_curl(
        &["--ntlm", "-u", &login, &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(run.body.contains("users=EXAMPLE\\alice"), "{}", run.body);
    assert!(run
        .first_challenges("www-authenticate")
        .iter()
        .any(|c| c.starts_with("NTLM")));

    // Over HTTP/2 the gate never offers NTLM: it tells curl HTTP_1_1_REQUIRED, and
    // curl logs in over HTTP/1.1.
    let run = run_curl(
        &["--http2", "--ntlm", "-u", &login, &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(
        run.responses.iter().all(|r| r.starts_with("HTTP/1.1")),
        "{run:?}"
    );
    let run = run_curl(
        &["--ntlm", "-u", "EXAMPLE\\alice:wrong", &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");

    // requests-ntlm (pyspnego underneath): a GET, then two more requests on the
    // authenticated connection.
    let facts = run_password_client(&[
        "requests-ntlm",
        &gate.url("/"),
        "--user",
        &ALICE.ntlm_name(),
        "--password",
        ALICE.password,
        "--ca",
        ca.ca_pem_path().to_str().unwrap(),
        "--count",
        "3",
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, gate.log());
    // One handshake (the bare 401 and the CHALLENGE), then three answers, the last
    // two on the authenticated connection without a new handshake.
    assert_eq!(
        facts.get("statuses"),
        "401,401,200,200,200",
        "{}",
        facts.raw
    );
    // pyspnego sends a MIC and the TLS channel bindings: the gate checked both.
    assert!(
        gate.wait_for_log(
            |l| l.contains("authenticated with NTLM") && l.contains("channel_bound=true")
        ),
        "{}",
        gate.log()
    );
    // A 60 kB POST: requests-ntlm sends the body with every leg; the gate reads it
    // after each 401 so the handshake stays on its connection.
    let facts = run_password_client(&[
        "requests-ntlm",
        &gate.url("/"),
        "--user",
        &ALICE.ntlm_name(),
        "--password",
        ALICE.password,
        "--ca",
        ca.ca_pem_path().to_str().unwrap(),
        "--post-bytes",
        "60000",
    ])
    .unwrap();
    assert_eq!(
        facts.get("statuses"),
        "401,401,200",
        "{}\n{}",
        facts.raw,
        gate.log()
    );
    let facts = run_password_client(&[
        "requests-ntlm",
        &gate.url("/"),
        "--user",
        &ALICE.ntlm_name(),
        "--password",
        "wrong",
        "--ca",
        ca.ca_pem_path().to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "401", "{}", facts.raw);

    // kerbside fetch against its own gate, for completeness.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--ntlm", "-u", &login],
        &gate.url("/"),
    );
    assert!(ok(&out).contains("users=EXAMPLE\\alice"));
}

#[test]
fn curl_negotiate_with_a_gss_ntlmssp_credential_logs_in_to_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let users = ntlm_users(&realm);
    let gate = ntlm_gate(
        &realm,
        &cert,
        &upstream.url(),
        &users,
        &["--ntlm-in-negotiate"],
    );
    // gss-ntlmssp as curl's initiator: no Kerberos ticket, an NTLM user and password.
    let cred = realm.dir().join("ntlm-client");
    std::fs::write(&cred, format!("EXAMPLE:alice:{}\n", ALICE.password)).unwrap();
    let none = format!("FILE:{}/no-ticket", realm.dir().display());
    let env: Vec<(&str, &OsStr)> = vec![
        ("NTLM_USER_FILE", cred.as_os_str()),
        ("NTLMUSER", OsStr::new("EXAMPLE\\alice")),
        ("KRB5CCNAME", OsStr::new(&none)),
        ("KRB5_CONFIG", realm.krb5_conf().as_os_str()),
    ];
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &gate.url("/")],
        Some(ca.ca_pem_path()),
        &env,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(run.body.contains("users=EXAMPLE\\alice"), "{}", run.body);

    std::fs::write(&cred, "EXAMPLE:alice:wrong\n").unwrap();
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &gate.url("/")],
        Some(ca.ca_pem_path()),
        &env,
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");
}

#[test]
fn ntlm_needs_connection_mode_and_a_private_users_file() {
    let realm = TestRealm::start().unwrap();
    let users = ntlm_users(&realm);
    let mut cmd = kerbside(&realm);
    clean_env(&mut cmd);
    let out = cmd
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--ntlm-users",
        ])
        .arg(&users)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("--auth connection"), "{err}");

    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = kerbside(&realm)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--auth",
            "connection",
            "--ntlm-users",
        ])
        .arg(&users)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("chmod 600"), "{err}");
}
