//! End-to-end: `kerbside fetch`, `kerbside gate`, curl and Apache + mod_auth_gssapi,
//! with a real MIT KDC.

mod common;

use common::{curl, kerbside, raw_status, text, EchoUpstream, GateProcess};
use kerbside_testkit::{Apache, ApacheOptions, TestCa, TestRealm, PRIVATE_BODY};

#[test]
fn curl_negotiates_with_the_gate_and_cannot_spoof_the_identity() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);

    // Over HTTP/2 (curl's choice by ALPN) and over HTTP/1.1.
    for http_version in ["--http2", "--http1.1"] {
        let headers = realm.dir().join("curl-headers");
        let out = curl(&realm, ca.ca_pem_path())
            .args(["--negotiate", "-u", ":", http_version])
            .args(["-H", "X-Remote-User: mallory@EVIL.TEST", "-D"])
            .arg(&headers)
            .arg(gate.url("/repo?cmd=capabilities"))
            .output()
            .unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "curl failed: {err}\n{}", gate.log());
        assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
        assert!(
            !body.contains("mallory"),
            "spoofed identity reached the upstream: {body}"
        );
        assert!(
            !body.contains("LEAKED-AUTHORIZATION"),
            "token reached the upstream: {body}"
        );
        assert!(body.contains("path=/repo?cmd=capabilities\n"), "{body}");
        assert!(body.contains("proto=https\n"), "{body}");
        let headers = std::fs::read_to_string(headers).unwrap();
        // The final response carries the mutual-authentication token.
        let last = headers.rsplit("HTTP/").next().unwrap();
        assert!(
            last.starts_with("1.1 200") || last.starts_with("2 200"),
            "{headers}"
        );
        assert!(
            last.to_ascii_lowercase()
                .contains("www-authenticate: negotiate "),
            "no final token: {headers}"
        );
    }
    assert!(gate.log().contains("alice@EXAMPLE.TEST"), "{}", gate.log());
}

#[test]
fn curl_without_a_ticket_gets_401() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let out = curl(&realm, ca.ca_pem_path())
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/none.ccache", realm.dir().display()),
        )
        .args([
            "--negotiate",
            "-u",
            ":",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    assert_eq!(text(&out).0, "401");
}

#[test]
fn fetch_authenticates_to_apache_mod_auth_gssapi() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = Apache::start(&realm, &cert, ApacheOptions::default()).unwrap();
    let out = kerbside(&realm)
        .args([
            "fetch",
            "--negotiate",
            "--mutual",
            "required",
            "-i",
            "-v",
            "--cacert",
        ])
        .arg(ca.ca_pem_path())
        .arg(apache.url("/private/"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success(),
        "fetch failed: {err}\n{}",
        apache.error_log()
    );
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("x-remote-user: alice@EXAMPLE.TEST"), "{body}");
    assert!(body.ends_with(PRIVATE_BODY), "{body}");
    // -v names each leg and the target, and never shows a token.
    assert!(err.contains("< [#1] HTTP/1.1 401"), "{err}");
    assert!(
        err.contains("Kerberos target HTTP@localhost (the host of the URL)"),
        "{err}"
    );
    assert!(
        err.contains("> authorization: Negotiate [redacted"),
        "{err}"
    );
    assert!(
        err.contains("mutual authentication: server verified"),
        "{err}"
    );
    assert!(!err.contains("YII"), "a token leaked into -v output: {err}");
    assert_eq!(
        err.matches("* Connecting").count(),
        1,
        "legs must share one connection: {err}"
    );
}

#[test]
fn fetch_authenticates_to_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let out = kerbside(&realm)
        .args([
            "fetch",
            "--negotiate",
            "--mutual",
            "required",
            "-v",
            "-d",
            "hello=world",
        ])
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .arg(gate.url("/upload"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "fetch failed: {err}\n{}", gate.log());
    assert!(body.contains("method=POST\n"), "{body}");
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(
        body.contains("body=hello=world\n"),
        "the body must be replayed after the 401: {body}"
    );
    assert_eq!(err.matches("* Connecting").count(), 1, "{err}");
}

#[test]
fn negotiate_over_plain_http_is_refused_unless_allowed() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = Apache::start(
        &realm,
        &cert,
        ApacheOptions {
            plain_http: true,
            ..ApacheOptions::default()
        },
    )
    .unwrap();
    let url = apache.plain_url("/private/");
    let refused = kerbside(&realm)
        .args(["fetch", "--negotiate", &url])
        .output()
        .unwrap();
    let (_, err) = text(&refused);
    assert_eq!(refused.status.code(), Some(67), "{err}");
    assert!(err.contains("over plain HTTP"), "{err}");
    assert!(err.contains("--allow-http-auth"), "{err}");

    // Opting in another host does not cover this one.
    let other = kerbside(&realm)
        .args([
            "fetch",
            "--negotiate",
            "--allow-http-auth=intranet.example",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(67));

    let allowed = kerbside(&realm)
        .args(["fetch", "--negotiate", "--allow-http-auth", &url])
        .output()
        .unwrap();
    let (body, err) = text(&allowed);
    assert!(allowed.status.success(), "{err}\n{}", apache.error_log());
    assert_eq!(body, PRIVATE_BODY);

    // Our own gate over plain HTTP too.
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, None, &upstream.url(), &[]);
    assert!(
        gate.log().contains("plain HTTP"),
        "the gate must warn: {}",
        gate.log()
    );
    let refused = kerbside(&realm)
        .args(["fetch", "--negotiate", &gate.url("/")])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(67));
    let allowed = kerbside(&realm)
        .args(["fetch", "--negotiate", "--allow-http-auth", &gate.url("/")])
        .output()
        .unwrap();
    assert!(
        text(&allowed).0.contains("users=alice@EXAMPLE.TEST"),
        "{:?}",
        text(&allowed)
    );
}

#[test]
fn fetch_without_a_ticket_says_run_kinit() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let out = kerbside(&realm)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/none.ccache", realm.dir().display()),
        )
        .args(["fetch", "--negotiate", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(gate.url("/"))
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("no Kerberos credentials for this user: run kinit"),
        "{err}"
    );
}

#[test]
fn fetch_fail_flag_and_output_file() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = Apache::start(&realm, &cert, ApacheOptions::default()).unwrap();
    // Without --negotiate the 401 is the answer; --fail turns it into exit 22.
    let out = kerbside(&realm)
        .args(["fetch", "--fail", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(apache.url("/private/"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(22), "{:?}", text(&out));
    assert!(text(&out).1.contains("add --negotiate"), "{:?}", text(&out));
    let file = realm.dir().join("page");
    let out = kerbside(&realm)
        .args(["fetch", "--negotiate", "-s", "-o"])
        .arg(&file)
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .arg(apache.url("/private/"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(file).unwrap(), PRIVATE_BODY);
}

#[test]
fn the_gate_answers_bad_input_with_4xx_and_keeps_serving() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let mut gate = GateProcess::start(&realm, None, &upstream.url(), &[]);
    let port: u16 = gate.url.rsplit(':').next().unwrap().parse().unwrap();
    let req = |auth: &str| {
        format!("GET / HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").into_bytes()
    };
    assert_eq!(raw_status(port, &req("")), 401);
    assert_eq!(raw_status(port, &req("Authorization: Negotiate\r\n")), 400);
    assert_eq!(
        raw_status(port, &req("Authorization: Negotiate !!!\r\n")),
        400
    );
    assert_eq!(
        raw_status(port, &req("Authorization: Negotiate \"unterminated\r\n")),
        400
    );
    assert_eq!(
        raw_status(port, &req("Authorization: Basic YWxpY2U6cHc=\r\n")),
        401
    );
    // Valid base64, not a Kerberos token; a truncated SPNEGO header.
    assert_eq!(
        raw_status(port, &req("Authorization: Negotiate aGVsbG8gd29ybGQ=\r\n")),
        401
    );
    assert_eq!(
        raw_status(
            port,
            &req("Authorization: Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXag\r\n")
        ),
        401
    );
    // 100 KiB of header: 431.
    let big = format!("Authorization: Negotiate {}\r\n", "A".repeat(100 * 1024));
    assert_eq!(raw_status(port, &req(&big)), 431);
    assert!(gate.is_running(), "{}", gate.log());
    let ok = kerbside(&realm)
        .args(["fetch", "--negotiate", "--allow-http-auth", &gate.url("/")])
        .output()
        .unwrap();
    assert!(
        text(&ok).0.contains("users=alice@EXAMPLE.TEST"),
        "{:?}\n{}",
        text(&ok),
        gate.log()
    );
}

#[test]
fn the_gate_rejects_a_replayed_token() {
    use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
    use kerbside_proto::{Mechanism, Step};

    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, None, &upstream.url(), &[]);
    let port: u16 = gate.url.rsplit(':').next().unwrap().parse().unwrap();
    let token = {
        let _env = realm.enter();
        let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("localhost")).unwrap();
        match init.step(None).unwrap() {
            Step::Continue(t) | Step::Done(Some(t)) => t,
            Step::Done(None) => panic!("no token"),
        }
    };
    let header = kerbside_proto::Credentials::negotiate(Some(&token)).to_header_value();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: {header}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(port, req.as_bytes()), 200, "{}", gate.log());
    assert_eq!(
        raw_status(port, req.as_bytes()),
        401,
        "a replayed token must be refused"
    );
    assert!(
        gate.wait_for_log(|l| l
            .lines()
            .any(|line| line.contains("replay") && !line.contains("replay cache file in use"))),
        "{}",
        gate.log()
    );
}

#[test]
fn a_gate_whose_clock_is_off_explains_the_skew() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    // The gate runs ten minutes ahead of the KDC and the client (libfaketime).
    let gate = GateProcess::start_wrapped(
        &realm,
        None,
        &upstream.url(),
        &[],
        &["faketime", "-f", "+10m"],
    );
    let out = kerbside(&realm)
        .args(["fetch", "--negotiate", "--allow-http-auth", &gate.url("/")])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(err.contains("rejected the Kerberos token"), "{err}");
    assert!(
        gate.wait_for_log(|l| l.contains("differ by more than the allowed skew")),
        "{}",
        gate.log()
    );
}

#[test]
fn the_gate_reads_a_config_file_and_fetch_sends_a_file_body() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let config = realm.dir().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntls-cert = {:?}\ntls-key = {:?}\nidentity-header = \"X-Remote-User\"\nacceptor = \"HTTP@localhost\"\n",
            cert.cert_pem_path(),
            cert.key_pem_path()
        ),
    )
    .unwrap();
    let gate = GateProcess::start(
        &realm,
        None,
        &upstream.url(),
        &["--config", config.to_str().unwrap()],
    );
    assert!(
        gate.url.starts_with("https://"),
        "TLS from the file: {}",
        gate.url
    );
    let body = realm.dir().join("body.txt");
    std::fs::write(&body, "from a file").unwrap();
    let out = kerbside(&realm)
        .args(["fetch", "--negotiate", "-X", "PUT", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg("-d")
        .arg(format!("@{}", body.display()))
        .arg(gate.url("/put"))
        .output()
        .unwrap();
    let (text_out, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert!(text_out.contains("method=PUT\n"), "{text_out}");
    assert!(text_out.contains("body=from a file\n"), "{text_out}");

    // The acceptor name from the file restricts tickets to HTTP@localhost.
    let out = kerbside(&realm)
        .args(["fetch", "--negotiate", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(gate.url("/").replace("localhost", "127.0.0.1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(67), "{:?}", text(&out));

    // Unknown keys in the file are an error that names them.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nupstreem = \"x\"\n").unwrap();
    let out = kerbside(&realm)
        .args(["gate", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("upstreem"), "{:?}", text(&out));
}

#[test]
fn output_to_a_file_shows_progress_on_a_terminal_only() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = Apache::start(&realm, &cert, ApacheOptions::default()).unwrap();
    let out_file = realm.dir().join("page");
    let fetch = |extra: &str| {
        // `script` gives the command a terminal.
        let command = format!(
            "{} fetch --negotiate {extra} -o {} --cacert {} {}",
            env!("CARGO_BIN_EXE_kerbside"),
            out_file.display(),
            ca.ca_pem_path().display(),
            apache.url("/private/")
        );
        let mut cmd = std::process::Command::new("script");
        common::clean_env(&mut cmd);
        let out = cmd
            .envs(realm.env())
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = fetch("");
    let size = PRIVATE_BODY.len();
    assert!(shown.contains(&format!("{size} B/{size} B")), "{shown:?}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), PRIVATE_BODY);
    let quiet = fetch("-s");
    assert!(!quiet.contains(" B/"), "{quiet:?}");
}

#[test]
fn a_large_body_from_stdin_is_streamed_once_through_the_handshake() {
    use std::io::Write;
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let size = 2 * 1024 * 1024 + 3;
    let mut child = kerbside(&realm)
        .args(["fetch", "--negotiate", "-d", "@-", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(gate.url("/upload"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&vec![b'z'; size]));
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}\n{written:?}", gate.log());
    assert!(err.contains("streamed and can be sent only once"), "{err}");
    assert!(
        body.contains("users=alice@EXAMPLE.TEST"),
        "{}",
        &body[..body.len().min(300)]
    );
    assert_eq!(body.matches('z').count(), size, "the whole body, once");
}
