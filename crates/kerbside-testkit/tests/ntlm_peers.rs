//! The NTLM peers against third-party clients: Apache + mod_auth_gssapi + gss-ntlmssp with
//! Python's requests-ntlm (and what curl gets from it), and the pyspnego acceptor with
//! `curl --ntlm`, curl's SPNEGO over gss-ntlmssp, and requests-ntlm.
#![allow(clippy::unwrap_used)]

use kerbside_testkit::{
    require_peers_python, run_curl, run_curl_env, run_password_client, ApacheScheme, ClientFacts,
    CurlRun, PyNtlmOptions, PyNtlmServer, SchemeApache, SchemeApacheOptions, TestCa, ALICE,
    NTLM_DOMAIN, PRIVATE_BODY, PUBLIC_BODY,
};

/// requests-ntlm as `EXAMPLE\alice` with `password`, trusting `ca`, plus `extra` arguments.
fn requests_ntlm(url: &str, password: &str, ca: &TestCa, extra: &[&str]) -> ClientFacts {
    let ca = ca.ca_pem_path().to_str().unwrap();
    let user = ALICE.ntlm_name();
    let mut args = vec![
        "requests-ntlm",
        url,
        "--user",
        &user,
        "--password",
        password,
        "--ca",
        ca,
    ];
    args.extend(extra);
    run_password_client(&args).unwrap()
}

/// `EXAMPLE\alice:password` for curl's `-u`.
fn curl_user(password: &str) -> String {
    format!("{}:{password}", ALICE.ntlm_name())
}

#[test]
fn apache_ntlm_lets_requests_ntlm_in_and_refuses_a_wrong_password() {
    require_peers_python();
    let ca = TestCa::new();
    let apache =
        SchemeApache::start(&ca.issue(&[]), SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let log = || apache.error_log();

    // Two requests in one session: the second rides on the authenticated connection.
    let facts = requests_ntlm(
        &apache.url("/private/"),
        ALICE.password,
        &ca,
        &["--count", "2"],
    );
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, log());
    // The bare 401, the CHALLENGE, the page; then the page again with no handshake.
    assert_eq!(facts.get("statuses"), "401,401,200,200", "{}", facts.raw);
    assert_eq!(facts.get("remote_user"), "EXAMPLE\\alice", "{}", facts.raw);
    assert_eq!(facts.get("body"), PRIVATE_BODY.trim_end());
    // mod_auth_gssapi with ntlmssp offers both schemes, each on its own line.
    assert_eq!(facts.get("challenges"), "Negotiate|NTLM", "{}", facts.raw);

    // A POST body reaches the CGI intact through the handshake.
    let facts = requests_ntlm(
        &apache.url("/private/upload"),
        ALICE.password,
        &ca,
        &["--post-bytes", "100000"],
    );
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, log());
    assert_eq!(
        facts.get("body"),
        format!("{} 100000", facts.get("sent_sha256")),
        "{}",
        facts.raw
    );

    let facts = requests_ntlm(&apache.url("/private/"), "wrong-password", &ca, &[]);
    assert_eq!(facts.get("status"), "401", "{}\n{}", facts.raw, log());

    // The access log saw the user and the scheme, and a request let in by the connection.
    let entries = apache.access_entries();
    let alice = Some("EXAMPLE\\alice");
    assert!(
        entries[..3]
            .iter()
            .all(|e| e.client_port == entries[0].client_port),
        "{}",
        apache.access_log()
    );
    assert_eq!(
        (
            entries[2].status,
            entries[2].user.as_deref(),
            entries[2].auth_scheme.as_deref()
        ),
        (200, alice, Some("NTLM")),
        "{}",
        apache.access_log()
    );
    assert_eq!(
        (
            entries[3].status,
            entries[3].user.as_deref(),
            entries[3].auth_scheme.as_deref()
        ),
        (200, alice, None),
        "{}",
        apache.access_log()
    );
    assert_eq!(entries[3].client_port, entries[0].client_port);
}

#[test]
fn apache_ntlm_over_plain_http_lets_requests_ntlm_in() {
    require_peers_python();
    let ca = TestCa::new();
    let apache = SchemeApache::start(
        &ca.issue(&[]),
        SchemeApacheOptions {
            scheme: ApacheScheme::Ntlm,
            plain_http: true,
        },
    )
    .unwrap();
    let facts = requests_ntlm(
        &apache.plain_url("/private/whoami"),
        ALICE.password,
        &ca,
        &[],
    );
    assert_eq!(
        facts.get("status"),
        "200",
        "{}\n{}",
        facts.raw,
        apache.error_log()
    );
    assert_eq!(facts.get("body"), "user=EXAMPLE\\alice", "{}", facts.raw);
}

/// A documented limitation of this peer, asserted so that a change is noticed: Debian 12's
/// gss-ntlmssp 1.2.0 cannot decode the 32-byte NEGOTIATE message of `curl --ntlm`.
#[test]
fn apache_ntlm_refuses_curls_negotiate_message() {
    let ca = TestCa::new();
    let apache =
        SchemeApache::start(&ca.issue(&[]), SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let run = run_curl(
        &[
            "--ntlm",
            "-u",
            &curl_user(ALICE.password),
            &apache.url("/private/"),
        ],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert!(run.exit.success(), "{run:?}");
    assert_eq!(run.status, 401, "{run:?}");
    assert!(
        apache.error_log().contains("Failed to decode data"),
        "{}",
        apache.error_log()
    );
    // The public page needs nothing.
    let run = run_curl(&[&apache.url("/public/")], Some(ca.ca_pem_path())).unwrap();
    assert_eq!((run.status, run.body.as_str()), (200, PUBLIC_BODY));
}

#[test]
fn pyntlm_lets_curl_ntlm_in_on_one_connection_and_refuses_a_wrong_password() {
    require_peers_python();
    let server = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let url = server.url("/private/");
    // Two URLs in one curl: the second rides on the connection the first authenticated.
    let run = run_curl(
        &["--ntlm", "-u", &curl_user(ALICE.password), &url, &url],
        None,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", server.log());
    assert_eq!(run.header("X-Remote-User"), ["EXAMPLE\\alice"]);
    assert_eq!(run.body, PRIVATE_BODY);

    let entries = server.log_entries();
    let legs: Vec<(u32, &str, u16)> = entries
        .iter()
        .map(|e| (e.connection, e.leg.as_str(), e.status))
        .collect();
    assert_eq!(
        legs[..2],
        [(1, "negotiate", 401), (1, "authenticate", 200)],
        "{}",
        server.log()
    );
    assert!(
        entries[2..].iter().all(|e| e.connection == 1
            && e.status == 200
            && e.user.as_deref() == Some("EXAMPLE\\alice")),
        "{}",
        server.log()
    );

    let run = run_curl(&["--ntlm", "-u", &curl_user("wrong-password"), &url], None).unwrap();
    assert_eq!(run.status, 401, "{run:?}");
    let last = server.log_entries().pop().unwrap();
    assert_eq!(
        (last.leg.as_str(), last.status, last.user),
        ("failed", 401, None),
        "{}",
        server.log()
    );
    assert!(last.error.is_some(), "{}", server.log());
}

#[test]
fn pyntlm_over_https_checks_requests_ntlms_channel_bindings() {
    require_peers_python();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let server = PyNtlmServer::start(PyNtlmOptions {
        cert: Some(&cert),
        channel_bindings: true,
        ..PyNtlmOptions::default()
    })
    .unwrap();
    // requests-ntlm binds to the server certificate (tls-server-end-point).
    let facts = requests_ntlm(
        &server.url("/private/upload"),
        ALICE.password,
        &ca,
        &["--post-bytes", "5000", "--count", "2"],
    );
    assert_eq!(
        facts.get("status"),
        "200",
        "{}\n{}{}",
        facts.raw,
        server.log(),
        server.stderr()
    );
    assert_eq!(facts.get("remote_user"), "EXAMPLE\\alice");
    assert_eq!(
        facts.get("body"),
        format!("{} 5000", facts.get("sent_sha256"))
    );
    assert!(
        server
            .log_entries()
            .iter()
            .all(|e| e.scheme == "https" && e.error.is_none()),
        "{}",
        server.log()
    );

    let facts = requests_ntlm(&server.url("/private/"), "wrong-password", &ca, &[]);
    assert_eq!(facts.get("status"), "401", "{}", facts.raw);

    // curl 7.88 sends no channel bindings: the server insists on them.
    let run = run_curl(
        &[
            "--ntlm",
            "-u",
            &curl_user(ALICE.password),
            &server.url("/private/"),
        ],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}\n{}", server.log());
    let last = server.log_entries().pop().unwrap();
    assert!(
        last.error.as_deref().unwrap_or("").contains("bindings"),
        "{}",
        server.log()
    );
}

#[test]
fn pyntlm_closing_after_the_challenge_defeats_curl() {
    require_peers_python();
    let server = PyNtlmServer::start(PyNtlmOptions {
        close_after_challenge: true,
        ..PyNtlmOptions::default()
    })
    .unwrap();
    let run = run_curl(
        &[
            "--ntlm",
            "-u",
            &curl_user(ALICE.password),
            &server.url("/private/"),
        ],
        None,
    )
    .unwrap();
    // curl starts over with a new NEGOTIATE on a fresh connection after every drop and never
    // sends the AUTHENTICATE; depending on timing it gives up with "Connection died, tried 5
    // times before giving up" (exit 55) or, after 51 rounds, "Maximum (50) redirects
    // followed" (exit 47).
    assert!(
        matches!(run.exit.code(), Some(47 | 55)),
        "{run:?}\n{}",
        server.log()
    );
    assert_eq!(run.status, 401, "{run:?}");
    // One line per connection, each a NEGOTIATE answered by a CHALLENGE; threads may log
    // out of order.
    let mut entries = server.log_entries();
    entries.sort_by_key(|e| e.connection);
    assert!(entries.len() > 1, "{}", server.log());
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            (entry.connection as usize, entry.leg.as_str(), entry.status),
            (i + 1, "negotiate", 401),
            "{}",
            server.log()
        );
    }
}

/// NTLMSSP inside SPNEGO: curl's `--negotiate` through MIT GSSAPI with gss-ntlmssp as the
/// initiator (no Kerberos ticket, so SPNEGO picks NTLM), pyspnego's SPNEGO as the acceptor.
#[test]
fn pyntlm_accepts_ntlm_inside_negotiate_from_gss_ntlmssp() {
    require_peers_python();
    let server = PyNtlmServer::start(PyNtlmOptions {
        negotiate: true,
        ..PyNtlmOptions::default()
    })
    .unwrap();
    let run = curl_negotiate_ntlmssp(&server.url("/private/"), ALICE.password, None);
    assert_eq!(
        run.status,
        200,
        "{run:?}\n{}{}",
        server.log(),
        server.stderr()
    );
    assert_eq!(run.header("X-Remote-User"), ["EXAMPLE\\alice"]);
    assert_eq!(run.body, PRIVATE_BODY);
    let entries = server.log_entries();
    assert!(
        entries
            .iter()
            .any(|e| e.auth.as_deref() == Some("Negotiate") && e.status == 200),
        "{}",
        server.log()
    );
    let run = curl_negotiate_ntlmssp(&server.url("/private/"), "wrong-password", None);
    assert_eq!(run.status, 401, "{run:?}\n{}", server.log());
}

#[test]
fn apache_ntlm_accepts_ntlm_inside_negotiate_from_gss_ntlmssp() {
    let ca = TestCa::new();
    let apache =
        SchemeApache::start(&ca.issue(&[]), SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let url = apache.url("/private/upload");
    let run = curl_negotiate_ntlmssp(&url, ALICE.password, Some(&ca));
    assert_eq!(run.status, 200, "{run:?}\n{}", apache.error_log());
    assert_eq!(run.header("X-Remote-User"), ["EXAMPLE\\alice"]);
    let run = curl_negotiate_ntlmssp(&url, "wrong-password", Some(&ca));
    assert_eq!(run.status, 401, "{run:?}\n{}", apache.error_log());
}

/// `curl --negotiate -u :` with no Kerberos at all, so MIT GSSAPI's SPNEGO picks gss-ntlmssp:
/// the user `EXAMPLE\alice` from `NTLMUSER`, her `password` from an `NTLM_USER_FILE`.
fn curl_negotiate_ntlmssp(url: &str, password: &str, ca: Option<&TestCa>) -> CurlRun {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("ntlm-users");
    std::fs::write(&users, format!("{NTLM_DOMAIN}:{}:{password}\n", ALICE.name)).unwrap();
    let ccache = format!("FILE:{}/no-ccache", dir.path().display());
    let ntlm_user = ALICE.ntlm_name();
    run_curl_env(
        &["--negotiate", "-u", ":", url],
        ca.map(TestCa::ca_pem_path),
        &[
            ("NTLM_USER_FILE", users.as_os_str()),
            ("NTLMUSER", ntlm_user.as_ref()),
            ("KRB5CCNAME", ccache.as_ref()),
            ("KRB5_CONFIG", "/dev/null".as_ref()),
        ],
    )
    .unwrap()
}
