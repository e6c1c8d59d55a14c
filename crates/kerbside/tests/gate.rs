//! End-to-end tests of `kerbside gate`: the real binary, a real MIT KDC and curl.
//! The authentication modes (per request, per connection, session cookie) and the
//! attacks on cookies, HTTP/2, header limits, slow clients, graceful shutdown, keytab
//! rotation, JSON logs and the metrics endpoint.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{curl, kerbside, metric, text, EchoUpstream, GateProcess, HeadEchoUpstream};
use kerbside_testkit::{TestCa, TestCert, TestRealm};

/// What curl prints after each transfer (`-w`), parsed by [`transfers`].
const WRITE_OUT: &str =
    "\ntransfer: status=%{http_code} version=%{http_version} connects=%{num_connects}\n";

/// One transfer as curl's `-w` [`WRITE_OUT`] described it.
#[derive(Debug, PartialEq, Eq)]
struct Transfer {
    status: String,
    version: String,
    connects: String,
}

fn transfers(stdout: &str) -> Vec<Transfer> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("transfer: "))
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or_default()
                    .to_owned()
            };
            Transfer {
                status: field("status"),
                version: field("version"),
                connects: field("connects"),
            }
        })
        .collect()
}

fn statuses(stdout: &str) -> Vec<String> {
    transfers(stdout).into_iter().map(|t| t.status).collect()
}

/// A `KRB5CCNAME` that names no ticket cache: a client without a ticket.
fn no_ticket(realm: &TestRealm) -> String {
    format!("FILE:{}/no-such.ccache", realm.dir().display())
}

fn port_of(gate: &GateProcess) -> u16 {
    gate.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The realm, a CA and a certificate for `localhost`.
fn tls_realm() -> (TestRealm, TestCa, TestCert) {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    (realm, ca, cert)
}

/// The response heads curl wrote with `-D`; the last one is the final response.
fn last_head(dump: &str) -> String {
    let last = dump.rsplit("HTTP/").next().unwrap_or_default();
    format!("HTTP/{last}")
}

/// The value of the first `name:` header of a response head (case-insensitive).
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The value of the `kerbside_session` cookie a response head sets.
fn session_cookie(head: &str) -> String {
    let set_cookie = header(head, "set-cookie").unwrap_or_else(|| panic!("no Set-Cookie: {head}"));
    set_cookie
        .strip_prefix("kerbside_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not our cookie: {set_cookie}"))
        .to_owned()
}

/// Logs in to a cookie-mode gate with curl and Negotiate; returns the cookie value.
fn log_in(realm: &TestRealm, ca: &TestCa, gate: &GateProcess) -> String {
    let dump = realm.dir().join(format!("login-{}.headers", port_of(gate)));
    let out = curl(realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-o", "/dev/null", "-D"])
        .arg(&dump)
        .arg(gate.url("/login"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}\n{}", text(&out), gate.log());
    session_cookie(&last_head(&std::fs::read_to_string(dump).unwrap()))
}

/// Presents `cookie` (a whole `Cookie` header value) without a ticket; returns the
/// status and the response head.
fn present_cookie(
    realm: &TestRealm,
    ca: &TestCa,
    gate: &GateProcess,
    cookie: &str,
) -> (u16, String) {
    let out = curl(realm, ca.ca_pem_path())
        .env("KRB5CCNAME", no_ticket(realm))
        .args(["-o", "/dev/null", "-D", "-", "-H"])
        .arg(format!("Cookie: {cookie}"))
        .arg(gate.url("/with-cookie"))
        .output()
        .unwrap();
    let (head, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

fn assert_challenged(status: u16, head: &str, gate: &GateProcess) {
    assert_eq!(status, 401, "{head}\n{}", gate.log());
    assert_eq!(
        header(head, "www-authenticate").as_deref(),
        Some("Negotiate"),
        "{head}"
    );
}

#[test]
fn per_request_mode_takes_a_token_on_every_request() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--metrics", "127.0.0.1:0"],
    );
    let url = gate.url("/per-request");
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--http1.1", "--negotiate", "-u", ":", "-w", WRITE_OUT])
        .args([&url, &url, &url])
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert_eq!(
        body.matches("users=alice@EXAMPLE.TEST\n").count(),
        3,
        "{body}"
    );
    let t = transfers(&body);
    assert_eq!(statuses(&body), ["200", "200", "200"], "{body}");
    // One connection for the three.
    assert_eq!(
        t.iter().map(|t| t.connects.as_str()).collect::<Vec<_>>(),
        ["1", "0", "0"],
        "{body}"
    );
    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "kerbside_gate_connection_reuse_total"),
        0.0,
        "{m}"
    );
    assert_eq!(metric(&m, "kerbside_gate_session_hits_total"), 0.0, "{m}");
}

#[test]
fn connection_mode_authenticates_a_connection_once() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--auth", "connection", "--metrics", "127.0.0.1:0"],
    );
    let url = gate.url("/connection");
    let dump = realm.dir().join("connection.headers");
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--http1.1", "--negotiate", "-u", ":", "-w", WRITE_OUT, "-D"])
        .arg(&dump)
        .args([&url, &url, &url])
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert_eq!(statuses(&body), ["200", "200", "200"], "{body}");
    assert_eq!(
        body.matches("users=alice@EXAMPLE.TEST\n").count(),
        3,
        "{body}"
    );
    let dump = std::fs::read_to_string(dump).unwrap();
    let finals: Vec<&str> = dump
        .split("HTTP/")
        .filter(|head| head.starts_with("1.1 200"))
        .collect();
    assert_eq!(finals.len(), 3, "{dump}");
    for head in finals {
        assert_eq!(
            header(head, "persistent-auth").as_deref(),
            Some("true"),
            "{dump}"
        );
    }
    // curl honours Persistent-Auth: the token went once, on the first request.
    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        1.0,
        "{m}\n{dump}"
    );
    assert_eq!(
        metric(&m, "kerbside_gate_connection_reuse_total"),
        2.0,
        "{m}"
    );
}

#[test]
fn cookie_mode_sets_a_session_cookie_that_stands_for_the_ticket() {
    let (realm, ca, cert) = tls_realm();
    let upstream = HeadEchoUpstream::start(Duration::ZERO);
    let key = realm.dir().join("session.key");
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &[
            "--auth",
            "cookie",
            "--session-key",
            key.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The key file: 32 bytes only its owner may read.
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&key).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
    }

    let jar = realm.dir().join("jar");
    let dump = realm.dir().join("cookie.headers");
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-w", WRITE_OUT, "-c"])
        .arg(&jar)
        .arg("-D")
        .arg(&dump)
        .arg(gate.url("/first"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert_eq!(statuses(&body), ["200"], "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("x-remote-user: alice@example.test\r\n"),
        "{body}"
    );
    let head = last_head(&std::fs::read_to_string(&dump).unwrap());
    let set_cookie = header(&head, "set-cookie").unwrap();
    let attrs: Vec<&str> = set_cookie.split("; ").collect();
    assert!(attrs[0].starts_with("kerbside_session="), "{set_cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(&attr), "{attr} missing: {set_cookie}");
    }
    assert!(
        attrs.iter().any(|a| a.starts_with("Expires=")),
        "{set_cookie}"
    );
    let max_age: u64 = attrs
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    // The realm's tickets last 10 hours; the session ends at the 8-hour maximum.
    assert!(
        (8 * 3600 - 120..=8 * 3600).contains(&max_age),
        "{set_cookie}"
    );
    let value = session_cookie(&head);

    // A second curl with the cookie jar and no ticket at all.
    let out = curl(&realm, ca.ca_pem_path())
        .env("KRB5CCNAME", no_ticket(&realm))
        .args(["-w", WRITE_OUT, "-b"])
        .arg(&jar)
        .arg(gate.url("/second"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert_eq!(statuses(&body), ["200"], "{body}\n{}", gate.log());
    assert!(
        body.to_ascii_lowercase()
            .contains("x-remote-user: alice@example.test\r\n"),
        "{body}"
    );
    assert!(!body.contains("kerbside_session"), "{body}");

    // Other cookies go upstream; ours does not.
    let (status, _) = present_cookie(
        &realm,
        &ca,
        &gate,
        &format!("theme=dark; kerbside_session={value}; lang=en"),
    );
    assert_eq!(status, 200);
    let out = curl(&realm, ca.ca_pem_path())
        .env("KRB5CCNAME", no_ticket(&realm))
        .arg("-H")
        .arg(format!(
            "Cookie: theme=dark; kerbside_session={value}; lang=en"
        ))
        .arg(gate.url("/third"))
        .output()
        .unwrap();
    let (body, _) = text(&out);
    let cookie_lines: Vec<&str> = body
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("cookie:"))
        .collect();
    assert_eq!(cookie_lines, ["cookie: theme=dark; lang=en"], "{body}");
    assert!(!body.contains(&value), "{body}");

    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(metric(&m, "kerbside_gate_session_hits_total"), 3.0, "{m}");
    assert!(
        !gate.log().contains(&value),
        "the cookie leaked into the log"
    );
}

#[test]
fn forged_foreign_and_expired_cookies_are_refused_with_a_challenge() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let key = realm.dir().join("a.key");
    let other_key = realm.dir().join("b.key");
    let cookie_gate = |key: &Path, wrapper: &[&str]| {
        GateProcess::start_wrapped(
            &realm,
            Some(&cert),
            &upstream.url(),
            &["--auth", "cookie", "--session-key", key.to_str().unwrap()],
            wrapper,
        )
    };
    let gate = cookie_gate(&key, &[]);
    let other = cookie_gate(&other_key, &[]);
    let good = log_in(&realm, &ca, &gate);
    let foreign = log_in(&realm, &ca, &other);
    let (status, _) = present_cookie(&realm, &ca, &gate, &format!("kerbside_session={good}"));
    assert_eq!(status, 200, "{}", gate.log());

    // One character changed in the sealed part.
    let mut forged = good.clone().into_bytes();
    forged[40] = if forged[40] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, head) = present_cookie(&realm, &ca, &gate, &format!("kerbside_session={forged}"));
    assert_challenged(status, &head, &gate);
    // Sealed by another gate's key.
    let (status, head) = present_cookie(&realm, &ca, &gate, &format!("kerbside_session={foreign}"));
    assert_challenged(status, &head, &gate);
    assert!(
        gate.wait_for_log(|l| l.matches("session cookie refused").count() >= 2
            && l.contains("does not authenticate")),
        "{}",
        gate.log()
    );
    // Not base64 at all.
    let (status, head) = present_cookie(&realm, &ca, &gate, "kerbside_session=%%%");
    assert_challenged(status, &head, &gate);
    assert!(
        gate.wait_for_log(|l| l.contains("malformed")),
        "{}",
        gate.log()
    );

    // The same key, nine hours later: past the 8-hour maximum.
    let later = cookie_gate(&key, &["faketime", "-f", "+9h"]);
    let (status, head) = present_cookie(&realm, &ca, &later, &format!("kerbside_session={good}"));
    assert_challenged(status, &head, &later);
    assert!(
        later.wait_for_log(|l| l.contains("session cookie refused") && l.contains("expired")),
        "{}",
        later.log()
    );

    for g in [&gate, &other, &later] {
        let log = g.log();
        for value in [&good, &forged, &foreign] {
            assert!(!log.contains(value.as_str()), "a cookie in the log:\n{log}");
        }
    }
}

#[test]
fn a_previous_session_key_still_opens_cookies_after_rotation() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let key = realm.dir().join("session.key");
    let old = realm.dir().join("old.key");
    let new = realm.dir().join("new.key");
    let value = {
        let gate = GateProcess::start(
            &realm,
            Some(&cert),
            &upstream.url(),
            &["--auth", "cookie", "--session-key", key.to_str().unwrap()],
        );
        log_in(&realm, &ca, &gate)
    };
    std::fs::rename(&key, &old).unwrap();
    let config = realm.dir().join("rotated.toml");
    std::fs::write(
        &config,
        format!("auth = \"cookie\"\nsession-key = {new:?}\nprevious-session-keys = [{old:?}]\n"),
    )
    .unwrap();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--config", config.to_str().unwrap()],
    );
    assert_ne!(std::fs::read(&new).unwrap(), std::fs::read(&old).unwrap());
    let (status, _) = present_cookie(&realm, &ca, &gate, &format!("kerbside_session={value}"));
    assert_eq!(status, 200, "{}", gate.log());
    // New logins are sealed with the new key: a gate with only the old key refuses them.
    let fresh = log_in(&realm, &ca, &gate);
    let only_old = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--auth", "cookie", "--session-key", old.to_str().unwrap()],
    );
    let (status, head) =
        present_cookie(&realm, &ca, &only_old, &format!("kerbside_session={fresh}"));
    assert_challenged(status, &head, &only_old);
    // And without the previous key the old cookie is refused.
    let only_new = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--auth", "cookie", "--session-key", new.to_str().unwrap()],
    );
    let (status, head) =
        present_cookie(&realm, &ca, &only_new, &format!("kerbside_session={value}"));
    assert_challenged(status, &head, &only_new);
}

#[test]
fn http2_works_per_request() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let url = gate.url("/h2");
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--http2", "--negotiate", "-u", ":", "-w", WRITE_OUT])
        .args([&url, &url])
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    let t = transfers(&body);
    assert_eq!(t.len(), 2, "{body}");
    for t in &t {
        assert_eq!(
            (t.status.as_str(), t.version.as_str()),
            ("200", "2"),
            "{body}"
        );
    }
    assert_eq!(
        body.matches("users=alice@EXAMPLE.TEST\n").count(),
        2,
        "{body}"
    );
}

#[test]
fn http2_in_connection_mode_falls_back_to_http11() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--auth", "connection", "--metrics", "127.0.0.1:0"],
    );
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--http2", "--negotiate", "-u", ":", "-v", "-w", WRITE_OUT])
        .arg(gate.url("/h2-connection"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    // curl 7.88 sends its token at once over h2; the stream is reset with
    // HTTP_1_1_REQUIRED before the token is looked at; curl says "Downgrades to
    // HTTP/1.1", opens a second connection offering only http/1.1, sends a fresh
    // token, and gets 200 with Persistent-Auth.
    assert!(err.contains("HTTP_1_1_REQUIRED"), "{err}");
    let t = transfers(&body);
    assert_eq!(
        t,
        [Transfer {
            status: "200".to_owned(),
            version: "1.1".to_owned(),
            connects: "2".to_owned(),
        }],
        "{body}\n{err}"
    );
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        1.0,
        "the token sent over h2 must not be used: {m}"
    );
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="refused"}"#),
        0.0,
        "{m}"
    );
}

/// A curl `-H @file` argument for an `X-Big` header of `size` bytes.
fn big_header(realm: &TestRealm, size: usize) -> String {
    let path = realm.dir().join(format!("x-big-{size}"));
    std::fs::write(&path, format!("X-Big: {}\n", "a".repeat(size))).unwrap();
    format!("@{}", path.display())
}

#[test]
fn large_headers_are_accepted_up_to_the_limit() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let mut gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let forty = big_header(&realm, 40 * 1024);
    let hundred = big_header(&realm, 100 * 1024);
    let url = gate.url("/big");
    let fetch = |version: &str, header: &str, negotiate: bool| {
        let mut cmd = curl(&realm, ca.ca_pem_path());
        cmd.args([version, "-o", "/dev/null", "-w", WRITE_OUT, "-H", header]);
        if negotiate {
            cmd.args(["--negotiate", "-u", ":"]);
        }
        let out = cmd.arg(&url).output().unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), statuses(&stdout), stderr)
    };
    let ok = |status: &str| (Some(0), vec![status.to_owned()]);
    for version in ["--http1.1", "--http2"] {
        let (code, status, err) = fetch(version, &forty, true);
        assert_eq!(
            (code, status),
            ok("200"),
            "{version}: {err}\n{}",
            gate.log()
        );
        let (code, status, err) = fetch(version, &forty, false);
        assert_eq!((code, status), ok("401"), "{version}: {err}");
    }
    let (code, status, err) = fetch("--http1.1", &hundred, false);
    assert_eq!((code, status), ok("431"), "{err}");
    // Over h2 the gate advertises SETTINGS_MAX_HEADER_LIST_SIZE 65536, and curl
    // (nghttp2) will not send a bigger header list: it resets the stream itself
    // (REFUSED_STREAM), retries on fresh connections and gives up with exit 56.
    let (code, status, err) = fetch("--http2", &hundred, false);
    assert_eq!((code, status), (Some(56), vec!["000".to_owned()]), "{err}");

    assert!(gate.is_running(), "{}", gate.log());
    let (code, status, err) = fetch("--http2", "X-Small: 1", true);
    assert_eq!((code, status), ok("200"), "{err}");
}

/// What the gate answered a raw HTTP/2 request: frames by type.
#[derive(Debug, Default)]
struct H2Answer {
    /// `:status` of each HEADERS frame.
    statuses: Vec<String>,
    /// Error codes of RST_STREAM frames.
    resets: Vec<u32>,
    /// Error codes of GOAWAY frames.
    goaways: Vec<u32>,
}

const ENHANCE_YOUR_CALM: u32 = 0xb;
const FRAME_HEADERS: u8 = 1;
const FRAME_RST_STREAM: u8 = 3;
const FRAME_GOAWAY: u8 = 7;
const FRAME_CONTINUATION: u8 = 9;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), `first` holding the
/// bits above the prefix.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | u8::try_from(value).unwrap());
        return;
    }
    out.push(first | u8::try_from(max).unwrap());
    let mut rest = value - max;
    while rest >= 128 {
        out.push(u8::try_from(rest % 128).unwrap() | 0x80);
        rest /= 128;
    }
    out.push(u8::try_from(rest).unwrap());
}

/// Sends `GET /` over cleartext HTTP/2 (prior knowledge) with an `x-big` header of
/// `size` bytes, split in 16 KiB HEADERS/CONTINUATION frames as a client that ignores
/// the gate's SETTINGS would, and reads what comes back until the gate closes or
/// goes quiet.
fn raw_h2_big_header(port: u16, size: usize) -> H2Answer {
    let mut block = vec![0x82, 0x86, 0x84]; // :method GET, :scheme http, :path /
    hpack_int(&mut block, 0x00, 4, 1); // :authority, literal value
    hpack_int(&mut block, 0x00, 7, "localhost".len());
    block.extend_from_slice(b"localhost");
    block.push(0x00); // literal name and value, not indexed
    hpack_int(&mut block, 0x00, 7, "x-big".len());
    block.extend_from_slice(b"x-big");
    hpack_int(&mut block, 0x00, 7, size);
    block.extend(std::iter::repeat_n(b'a', size));

    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend(h2_frame(4, 0, 0, &[])); // SETTINGS
    let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let (kind, mut flags) = if i == 0 {
            (FRAME_HEADERS, 0x1) // END_STREAM
        } else {
            (FRAME_CONTINUATION, 0)
        };
        if last {
            flags |= 0x4; // END_HEADERS
        }
        request.extend(h2_frame(kind, flags, 1, chunk));
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // The gate may stop reading and close before it has everything.
    let _ = stream.write_all(&request);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut answer = H2Answer::default();
    // Frames until stream 1 ends, the connection goes away or goes quiet.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return answer,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
        while bytes.len() >= 9 {
            let len =
                usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
            if bytes.len() < 9 + len {
                break;
            }
            let frame: Vec<u8> = bytes.drain(..9 + len).collect();
            let (kind, flags, payload) = (frame[3], frame[4], &frame[9..]);
            let code = |at: usize| {
                payload
                    .get(at..at + 4)
                    .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()))
            };
            match kind {
                FRAME_HEADERS => {
                    answer.statuses.extend(hpack_status(payload));
                    if flags & 0x1 != 0 {
                        return answer;
                    }
                }
                FRAME_RST_STREAM => {
                    answer.resets.push(code(0));
                    return answer;
                }
                FRAME_GOAWAY => {
                    answer.goaways.push(code(4));
                    return answer;
                }
                _ => {}
            }
        }
    }
}

/// The `:status` at the start of a response's HPACK block (a fresh connection, so
/// no dynamic table): indexed (200, 204, 206, 304, 400, 404, 500) or a literal with
/// the name `:status`, its value raw or Huffman-coded.
fn hpack_status(block: &[u8]) -> Option<String> {
    const STATIC: [&str; 7] = ["200", "204", "206", "304", "400", "404", "500"];
    let first = *block.first()?;
    if first & 0x80 != 0 {
        return STATIC
            .get(usize::from(first & 0x7f).checked_sub(8)?)
            .map(|s| (*s).to_owned());
    }
    if !matches!(first, 0x48 | 0x08 | 0x18) {
        return None;
    }
    let len = usize::from(block.get(1)? & 0x7f);
    let value = block.get(2..2 + len)?;
    if block[1] & 0x80 == 0 {
        return Some(String::from_utf8_lossy(value).into_owned());
    }
    huffman_digits(value)
}

/// Decodes a Huffman-coded (RFC 7541 Appendix B) string of digits.
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    const CODES: [(u32, usize); 10] = [
        (0b00000, 5),
        (0b00001, 5),
        (0b00010, 5),
        (0b011001, 6),
        (0b011010, 6),
        (0b011011, 6),
        (0b011100, 6),
        (0b011101, 6),
        (0b011110, 6),
        (0b011111, 6),
    ];
    let bits: Vec<bool> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1 == 1))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    'symbols: while at < bits.len() {
        if bits.len() - at < 8 && bits[at..].iter().all(|b| *b) {
            break; // padding
        }
        for (digit, (code, len)) in (b'0'..).zip(CODES) {
            let matches = at + len <= bits.len()
                && (0..len).all(|k| bits[at + k] == ((code >> (len - 1 - k)) & 1 == 1));
            if matches {
                out.push(char::from(digit));
                at += len;
                continue 'symbols;
            }
        }
        return None;
    }
    Some(out)
}

#[test]
fn oversized_http2_headers_get_431_or_goaway_from_the_gate_itself() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let mut gate = GateProcess::start(&realm, None, &upstream.url(), &[]);
    let port = port_of(&gate);
    // Over the 64 KiB limit: h2 decodes the block and answers 431 on the stream;
    // the connection stays up.
    for kib in [70, 100] {
        let answer = raw_h2_big_header(port, kib * 1024);
        assert_eq!(answer.statuses, ["431"], "{kib} KiB: {answer:?}");
        assert!(answer.goaways.is_empty(), "{kib} KiB: {answer:?}");
    }
    // Far over it (200 KiB in 13 frames), h2 takes the CONTINUATION frames for a
    // flood and closes the connection: GOAWAY ENHANCE_YOUR_CALM.
    let answer = raw_h2_big_header(port, 200 * 1024);
    assert!(answer.statuses.is_empty(), "{answer:?}");
    assert_eq!(answer.goaways, [ENHANCE_YOUR_CALM], "{answer:?}");
    // 40 KiB is fine: 401, the challenge.
    let answer = raw_h2_big_header(port, 40 * 1024);
    assert_eq!(answer.statuses, ["401"], "{answer:?}");

    assert!(gate.is_running(), "{}", gate.log());
    let out = curl(&realm, Path::new("/dev/null"))
        .args([
            "--http2-prior-knowledge",
            "--negotiate",
            "-u",
            ":",
            "-w",
            WRITE_OUT,
        ])
        .arg(gate.url("/after"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    let t = transfers(&body);
    assert_eq!(t.len(), 1, "{body}{err}");
    assert_eq!(
        (t[0].status.as_str(), t[0].version.as_str()),
        ("200", "2"),
        "{body}{err}\n{}",
        gate.log()
    );
}

#[test]
fn a_slow_client_is_cut_off_after_the_header_timeout() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let config = realm.dir().join("slow.toml");
    std::fs::write(&config, "header-timeout = 2\n").unwrap();
    let mut gate = GateProcess::start(
        &realm,
        None,
        &upstream.url(),
        &["--config", config.to_str().unwrap()],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port_of(&gate))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut drip = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for byte in b"Host: localhost\r\nX-Slow: one-byte-a-second-forever" {
            std::thread::sleep(Duration::from_secs(1));
            if drip.write_all(&[*byte]).is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let took = started.elapsed();
    eprintln!(
        "slow client cut off after {took:?}: {read:?} {:?}",
        String::from_utf8_lossy(&answer)
    );
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("still connected after {took:?}: {e}\n{}", gate.log()),
    }
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        took >= Duration::from_millis(1500),
        "cut off early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "cut off late: {took:?}");

    assert!(gate.is_running(), "{}", gate.log());
    let out = curl(&realm, Path::new("/dev/null"))
        .args(["--negotiate", "-u", ":", "-w", WRITE_OUT])
        .arg(gate.url("/after"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert_eq!(statuses(&body), ["200"], "{err}\n{}", gate.log());
}

/// Python (http.client, ssl with ALPN `http/1.1`, a python-gssapi token): one
/// authenticated request on a keep-alive connection, which it then holds idle, and
/// prints what the gate sent next (`b''`: it closed the connection).
const IDLE_HTTP11_CLIENT: &str = r#"
import base64, http.client, ssl, sys, gssapi
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx, timeout=25)
name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
token = gssapi.SecurityContext(name=name, usage="initiate").step()
c.request("GET", "/idle", headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()})
r = c.getresponse()
r.read()
print(r.status, c.sock.selected_alpn_protocol(), r.getheader("Connection"), flush=True)
print(repr(c.sock.recv(1)), flush=True)
"#;

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let (realm, ca, cert) = tls_realm();
    let upstream = HeadEchoUpstream::start(Duration::from_secs(2));
    let mut gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let port = port_of(&gate);
    // An idle authenticated HTTP/1.1 keep-alive connection (served without HTTP/2
    // detection): the drain closes it rather than waiting 30 s for it.
    let mut idle = realm
        .command(kerbside_testkit::require_peers_python())
        .arg("-c")
        .arg(IDLE_HTTP11_CLIENT)
        .arg(port.to_string())
        .arg(ca.ca_pem_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut idle_out = std::io::BufReader::new(idle.stdout.take().unwrap());
    let mut served = String::new();
    std::io::BufRead::read_line(&mut idle_out, &mut served).unwrap();
    assert_eq!(served.trim(), "200 http/1.1 None", "{}", gate.log());
    // Requests in flight over HTTP/2 and over HTTP/1.1 finish.
    let requests: Vec<_> = ["--http2", "--http1.1"]
        .into_iter()
        .map(|version| {
            curl(&realm, ca.ca_pem_path())
                .args([version, "--negotiate", "-u", ":", "-w", WRITE_OUT])
                .arg(gate.url("/slow"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.received() < 3 {
        assert!(
            Instant::now() < deadline,
            "requests not upstream: {}",
            gate.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &gate.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for request in requests {
        let out = request.wait_with_output().unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "{err}\n{}", gate.log());
        assert_eq!(statuses(&body), ["200"], "{body}\n{err}\n{}", gate.log());
        assert!(body.contains("GET /slow HTTP/1.1"), "{body}");
    }
    let mut closed = String::new();
    idle_out.read_to_string(&mut closed).unwrap();
    let idle = idle.wait_with_output().unwrap();
    assert_eq!(closed.trim(), "b''", "{}", text(&idle).1);
    let status = gate
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the gate did not exit: {}", gate.log()));
    assert!(status.success(), "{status:?}\n{}", gate.log());
    assert!(gate.log().contains("shutting down"), "{}", gate.log());
    assert!(
        !gate.log().contains("still in flight"),
        "the drain waited out its deadline: {}",
        gate.log()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port still takes connections"
    );
}

#[test]

fn a_draining_gate_refuses_new_connections_at_once() {
    let realm = TestRealm::start().unwrap();
    let upstream = HeadEchoUpstream::start(Duration::from_secs(3));
    let mut gate = GateProcess::start(&realm, None, &upstream.url(), &[]);
    let port = port_of(&gate);
    let request = curl(&realm, Path::new("/dev/null"))
        .args(["--negotiate", "-u", ":", "-w", WRITE_OUT])
        .arg(gate.url("/slow"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.received() == 0 {
        assert!(
            Instant::now() < deadline,
            "no request upstream: {}",
            gate.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &gate.pid().to_string()])
        .status()
        .unwrap();
    assert!(
        gate.wait_for_log(|l| l.contains("shutting down")),
        "{}",
        gate.log()
    );
    // A new client during the drain: refused, or at least answered, at once.
    let started = Instant::now();
    if let Ok(mut late) = TcpStream::connect(("127.0.0.1", port)) {
        late.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = late.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let mut answer = Vec::new();
        let _ = late.read_to_end(&mut answer);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a new connection during the drain waited {:?} for {:?}",
            started.elapsed(),
            String::from_utf8_lossy(&answer)
        );
    }
    let out = request.wait_with_output().unwrap();
    assert_eq!(statuses(&text(&out).0), ["200"]);
    assert!(gate.wait_exit(Duration::from_secs(10)).is_some());
}

/// `kvno PRINCIPAL` with this ticket cache: the key version of the cached (or newly
/// fetched) service ticket.
fn ticket_kvno(realm: &TestRealm, ccache: &str) -> String {
    let out = realm
        .command("kvno")
        .env("KRB5CCNAME", ccache)
        .arg("HTTP/localhost")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    stdout.rsplit("kvno = ").next().unwrap().trim().to_owned()
}

#[test]
fn keytab_rotation_is_picked_up_without_a_restart() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let old_client = format!("FILE:{}", realm.user_ccache("alice").display());
    let fresh_path = realm.dir().join("fresh.ccache");
    let fresh_client = format!("FILE:{}", fresh_path.display());
    let fetch = |gate: &GateProcess, ccache: &str| {
        let out = curl(&realm, ca.ca_pem_path())
            .env("KRB5CCNAME", ccache)
            .args(["--negotiate", "-u", ":", "-w", WRITE_OUT])
            .arg(gate.url("/rotate"))
            .output()
            .unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "{err}");
        (statuses(&body), body)
    };
    // alice's cache now holds a ticket for kvno 1.
    assert_eq!(fetch(&gate, &old_client).0, ["200"], "{}", gate.log());

    realm.kadmin("cpw -randkey HTTP/localhost").unwrap();
    realm
        .export_keytab(&["HTTP/localhost"], realm.keytab())
        .unwrap();
    realm.kinit("alice", "alice-password", &fresh_path).unwrap();
    assert_eq!(ticket_kvno(&realm, &old_client), "1");
    assert_eq!(ticket_kvno(&realm, &fresh_client), "2");

    // The running gate's keytab has kvno 1 and 2: both tickets get in.
    let (status, body) = fetch(&gate, &old_client);
    assert_eq!(status, ["200"], "{body}\n{}", gate.log());
    let (status, body) = fetch(&gate, &fresh_client);
    assert_eq!(status, ["200"], "{body}\n{}", gate.log());
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");

    // A keytab with kvno 2 only.
    let kvno2 = realm.dir().join("kvno2.keytab");
    realm.export_keytab(&["HTTP/localhost"], &kvno2).unwrap();
    let mut cmd = kerbside(&realm);
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--keytab"])
        .arg(&kvno2)
        .args(["--upstream", &upstream.url(), "--tls-cert"])
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path());
    let new_gate = GateProcess::from_command(cmd);
    let (status, body) = fetch(&new_gate, &fresh_client);
    assert_eq!(status, ["200"], "{body}\n{}", new_gate.log());
    let (status, _) = fetch(&new_gate, &old_client);
    assert_eq!(status, ["401"], "{}", new_gate.log());
    assert!(
        new_gate.wait_for_log(|l| l.contains("WrongKeyVersion") && l.contains("kvno")),
        "{}",
        new_gate.log()
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--log-format", "json", "--metrics", "127.0.0.1:0"],
    );
    let ok = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-w", WRITE_OUT])
        .arg(gate.url("/json/path?q=1"))
        .output()
        .unwrap();
    assert_eq!(statuses(&text(&ok).0), ["200"], "{:?}", text(&ok));
    let refused = curl(&realm, ca.ca_pem_path())
        .args(["-H", "Authorization: Negotiate aGVsbG8=", "-w", WRITE_OUT])
        .arg(gate.url("/json/refused"))
        .output()
        .unwrap();
    assert_eq!(statuses(&text(&refused).0), ["401"]);
    assert!(
        gate.wait_for_log(|l| l.contains("token refused")),
        "{}",
        gate.log()
    );
    let log = gate.log();
    let mut objects = Vec::new();
    for line in log.lines() {
        if line.starts_with("kerbside gate: ") {
            continue;
        }
        let value = json::parse(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        objects.push(value);
    }
    let authenticated = objects
        .iter()
        .filter_map(|o| o.get("fields"))
        .find(|f| f.get("message").and_then(json::Value::as_str) == Some("authenticated"))
        .unwrap_or_else(|| panic!("no authentication line: {log}"));
    assert_eq!(
        authenticated.get("principal").and_then(json::Value::as_str),
        Some("alice@EXAMPLE.TEST"),
        "{log}"
    );
    assert_eq!(
        authenticated.get("path").and_then(json::Value::as_str),
        Some("/json/path"),
        "{log}"
    );
    let refusal = objects
        .iter()
        .find(|o| {
            o.get("fields")
                .and_then(|f| f.get("message"))
                .and_then(json::Value::as_str)
                .is_some_and(|m| m.contains("token refused"))
        })
        .unwrap_or_else(|| panic!("no refusal line: {log}"));
    assert_eq!(
        refusal.get("level").and_then(json::Value::as_str),
        Some("WARN"),
        "{log}"
    );
}

#[test]
fn metrics_count_handshakes_and_refusals_by_reason() {
    let (realm, ca, cert) = tls_realm();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--metrics", "127.0.0.1:0"],
    );
    let ok = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-w", WRITE_OUT])
        .arg(gate.url("/metered"))
        .output()
        .unwrap();
    assert_eq!(statuses(&text(&ok).0), ["200"], "{:?}", text(&ok));
    let refused = curl(&realm, ca.ca_pem_path())
        .args(["-H", "Authorization: Negotiate aGVsbG8=", "-w", WRITE_OUT])
        .arg(gate.url("/garbage"))
        .output()
        .unwrap();
    assert_eq!(statuses(&text(&refused).0), ["401"]);

    // Read with curl, as Prometheus would.
    let out = curl(&realm, Path::new("/dev/null"))
        .args(["-D", "-"])
        .arg(gate.metrics_url())
        .output()
        .unwrap();
    let (m, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(
        m.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{m}"
    );
    for family in [
        "kerbside_gate_handshakes",
        "kerbside_gate_handshake_failures",
        "kerbside_gate_session_hits",
        "kerbside_gate_connection_reuse",
        "kerbside_gate_active_connections",
        "kerbside_gate_responses",
        "kerbside_gate_handshake_duration_seconds",
    ] {
        assert!(m.contains(&format!("# TYPE {family} ")), "{family}: {m}");
    }
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="refused"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "kerbside_gate_handshake_duration_seconds_count"),
        2.0,
        "{m}"
    );
    let reasons: Vec<&str> = m
        .lines()
        .filter_map(|l| l.strip_prefix("kerbside_gate_handshake_failures_total{reason=\""))
        .collect();
    assert_eq!(reasons.len(), 1, "{m}");
    let (reason, count) = reasons[0].split_once("\"} ").unwrap();
    assert_eq!(count, "1", "{m}");
    assert_ne!(reason, "other", "{m}\n{}", gate.log());
    eprintln!("a garbage token is refused as {reason}");
    assert_eq!(reason, "defective_token", "{m}");
    assert_eq!(
        metric(&m, r#"kerbside_gate_responses_total{class="2xx"}"#),
        1.0,
        "{m}"
    );
    // Every connection has closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&gate.metrics(), "kerbside_gate_active_connections") != 0.0 {
        assert!(Instant::now() < deadline, "{}", gate.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]

fn metrics_count_the_gates_own_refusals_as_responses() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, None, &upstream.url(), &["--metrics", "127.0.0.1:0"]);
    let port = port_of(&gate);
    let req = |auth: &str| {
        format!("GET / HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").into_bytes()
    };
    assert_eq!(common::raw_status(port, &req("")), 401);
    assert_eq!(
        common::raw_status(port, &req("Authorization: Negotiate aGVsbG8=\r\n")),
        401
    );
    assert_eq!(
        common::raw_status(port, &req("Authorization: Negotiate\r\n")),
        400
    );
    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_responses_total{class="4xx"}"#),
        3.0,
        "{m}"
    );
}

/// Just enough JSON to check that each log line is one valid object and to read
/// its fields.
mod json {
    #[derive(Debug, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }
    }

    /// Parses one JSON text; anything after the value is an error.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut parser = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        if parser.i != parser.s.len() {
            return Err(format!("text after the value at byte {}", parser.i));
        }
        Ok(value)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }

        fn skip_space(&mut self) {
            while self
                .peek()
                .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            {
                self.i += 1;
            }
        }

        fn expect(&mut self, c: u8) -> Result<(), String> {
            self.skip_space();
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at byte {}", c as char, self.i))
            }
        }

        fn value(&mut self) -> Result<Value, String> {
            self.skip_space();
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    let mut members = Vec::new();
                    self.skip_space();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Object(members));
                    }
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        self.expect(b':')?;
                        members.push((key, self.value()?));
                        self.skip_space();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(members));
                            }
                            _ => return Err(format!("expected , or }} at byte {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.skip_space();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.skip_space();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return Err(format!("expected , or ] at byte {}", self.i)),
                        }
                    }
                }
                Some(b'"') => self.string().map(Value::String),
                Some(b't') => self.literal("true", Value::Bool(true)),
                Some(b'f') => self.literal("false", Value::Bool(false)),
                Some(b'n') => self.literal("null", Value::Null),
                Some(c) if c == b'-' || c.is_ascii_digit() => {
                    let start = self.i;
                    while self.peek().is_some_and(|c| {
                        c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                    }) {
                        self.i += 1;
                    }
                    let number = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                    number
                        .parse()
                        .map(Value::Number)
                        .map_err(|_| format!("bad number {number:?}"))
                }
                _ => Err(format!("no value at byte {}", self.i)),
            }
        }

        fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(value)
            } else {
                Err(format!("bad literal at byte {}", self.i))
            }
        }

        fn string(&mut self) -> Result<String, String> {
            if self.peek() != Some(b'"') {
                return Err(format!("expected a string at byte {}", self.i));
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let c = self.peek().ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let escaped = self.peek().ok_or("unterminated escape")?;
                        self.i += 1;
                        let decoded = match escaped {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hex = self
                                    .s
                                    .get(self.i..self.i + 4)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .ok_or("bad \\u escape")?;
                                self.i += 4;
                                char::from_u32(hex).unwrap_or('\u{fffd}')
                            }
                            other => return Err(format!("bad escape \\{}", other as char)),
                        };
                        let mut buf = [0; 4];
                        out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
                    }
                    c if c < 0x20 => return Err("a control character in a string".to_owned()),
                    c => out.push(c),
                }
            }
        }
    }
}
