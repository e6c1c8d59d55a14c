//! `kerbside proxy` operations, with real peers: SIGTERM lets a request in flight
//! finish; `https_proxy`/`no_proxy` from the environment (lower case only) with
//! Squid (Kerberos); `--log-format json`; `--origin-auth` answering a kerberized
//! plain-HTTP `kerbside gate` for curl; an upstream that closes the connection
//! between NTLM legs (one restart, then a clear 502).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use common::proxy::{curl_via, curl_via_command, proxy, start_proxy, status_of, wait_for};
use common::{clean_env, kerbside, text, EchoUpstream, GateProcess, HeadEchoUpstream};
use kerbside_testkit::{Squid, SquidOptions, TestRealm};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let realm = realm();
    // Answers two seconds after it got the request.
    let origin = HeadEchoUpstream::start(Duration::from_secs(2));
    let (mut p, port) = proxy(realm, &[]);
    let client = curl_via_command(
        realm,
        &std::env::temp_dir(),
        port,
        &[],
        &format!("{}/slow", origin.url()),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_for("the origin to get the request", || origin.received() == 1);
    let killed = Command::new("kill")
        .args(["-TERM", &p.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = client.wait_with_output().unwrap();
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("GET /slow"),
        "{:?}",
        text(&out)
    );
    let status = p
        .wait_exit(Duration::from_secs(15))
        .expect("the proxy exits");
    assert!(status.success(), "{status:?}\n{}", p.log());
    assert!(
        p.wait_for_log(|l| l.contains("kerbside proxy: stopped")),
        "{}",
        p.log()
    );
    // Gone: nothing listens any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn https_proxy_and_no_proxy_from_the_environment_lower_case_only() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    // Upper case only: not read (a CGI request header), every request direct.
    let mut cmd = kerbside(realm);
    cmd.env_remove("no_proxy")
        .env("HTTPS_PROXY", squid.url())
        .env("NO_PROXY", "nothing.example");
    let (p, port) = start_proxy(cmd, &[]);
    // The log is read on another thread: wait for the line rather than race it.
    assert!(
        p.wait_for_log(|l| l.contains("routes from the environment")),
        "{}",
        p.log()
    );
    let out = curl_via(
        realm,
        port,
        &["-p"],
        &format!("http://localhost:{}/upper", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("no upstream proxy for CONNECT requests")),
        "{}",
        p.log()
    );
    drop(p);

    // Lower case: tunnels through Squid (trusted with --auth-proxies), except
    // what no_proxy names; plain HTTP (no http_proxy) direct.
    let mut cmd = kerbside(realm);
    cmd.env("https_proxy", squid.url())
        .env("no_proxy", "127.0.0.1");
    let (p, port) = start_proxy(cmd, &["--auth-proxies", "localhost"]);
    let out = curl_via(
        realm,
        port,
        &["-p"],
        &format!("http://localhost:{}/lower", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("CONNECT localhost") && l.contains(" 200 "))
    });
    assert!(log.contains("user=alice@EXAMPLE.TEST"), "{log}");
    let out = curl_via(realm, port, &["-p"], &format!("{}/bypassed", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let out = curl_via(
        realm,
        port,
        &[],
        &format!("http://localhost:{}/plain", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("matches the no-proxy entry 127.0.0.1")),
        "{}",
        p.log()
    );
    let log = squid.access_log();
    assert!(!log.contains("CONNECT 127.0.0.1"), "{log}");
    assert!(!log.contains("/plain"), "{log}");
    assert_eq!(
        log.matches("CONNECT localhost").count() - log.matches(" 407 ").count(),
        1,
        "{log}"
    );
}

#[test]
fn log_format_json_is_one_object_per_line() {
    let realm = realm();
    let origin = EchoUpstream::start();
    let (p, port) = proxy(realm, &["--log-format", "json"]);
    let out = curl_via(realm, port, &[], &format!("{}/json", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(p.wait_for_log(|l| l.contains("\"route\"")), "{}", p.log());
    let mut routes = 0;
    for line in p.log().lines() {
        // The start and stop lines are for people, on stderr; everything the log
        // carries is JSON.
        if line.starts_with("kerbside proxy: ") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
        if v["fields"]["message"] == "route" {
            routes += 1;
            assert!(
                v["fields"]["url"].as_str().unwrap().ends_with("/json"),
                "{line}"
            );
            assert_eq!(v["fields"]["route"], "DIRECT", "{line}");
        }
    }
    assert_eq!(routes, 1, "{}", p.log());
    // A format that does not exist is refused.
    let out = kerbside(realm)
        .args(["proxy", "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("use text or json"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn origin_auth_answers_a_kerberized_plain_http_origin_for_curl() {
    let realm = realm();
    let backend = EchoUpstream::start();
    // A plain-HTTP gate requiring Negotiate (HTTP@localhost from the keytab).
    let gate = GateProcess::start(realm, None, &backend.url(), &[]);
    // Without --origin-auth curl (no credentials of its own) gets the 401.
    let (p, port) = proxy(realm, &[]);
    let out = curl_via(realm, port, &[], &gate.url("/private"));
    assert_eq!(status_of(&out), 401, "{:?}\n{}", text(&out), p.log());
    drop(p);
    let (p, port) = proxy(realm, &["--origin-auth"]);
    let out = curl_via(realm, port, &[], &gate.url("/private"));
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 200, "{body}\n{}\n{}", p.log(), gate.log());
    assert!(body.contains("path=/private"), "{body}");
    assert!(body.contains("users=alice"), "{body}");
    // HTTPS through CONNECT is never touched: a tunnel to the gate gets its 401.
    let out = curl_via(realm, port, &["-p"], &gate.url("/tunnelled"));
    assert_eq!(status_of(&out), 401, "{:?}\n{}", text(&out), p.log());
}

/// A fake NTLM proxy: `407 NTLM`, then for a NEGOTIATE a real-looking CHALLENGE
/// (kerbside-proto's NTLM server side), and then it closes the connection.
fn closing_ntlm_upstream(negotiates: Arc<AtomicUsize>) -> u16 {
    use kerbside_proto::scheme::ntlm::server::{ExpectNegotiate, ServerInputs};
    common::serve_each_connection(move |stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut token = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h
                    .trim()
                    .strip_prefix("Proxy-Authorization: NTLM ")
                    .or_else(|| h.trim().strip_prefix("proxy-authorization: NTLM "))
                {
                    token = base64::engine::general_purpose::STANDARD
                        .decode(v.trim())
                        .ok();
                }
            }
            let Some(negotiate) = token else {
                let _ = writer.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
                );
                continue;
            };
            // Only a NEGOTIATE (message type 1) counts: an AUTHENTICATE sent on a
            // new connection, where the challenge it answers was never given,
            // would be a client error (and is closed on, uncounted).
            if negotiate.get(8..12) != Some(&[1, 0, 0, 0][..]) {
                return;
            }
            negotiates.fetch_add(1, Ordering::SeqCst);
            let inputs = ServerInputs {
                server_challenge: *b"kerbside",
                timestamp: 133_000_000_000_000_000,
                netbios_domain: "EXAMPLE".into(),
                netbios_computer: "PROXY".into(),
                dns_domain: "example.test".into(),
                dns_computer: "proxy.example.test".into(),
            };
            let Ok((challenge, _)) = ExpectNegotiate::new(inputs).handle_negotiate(&negotiate)
            else {
                return;
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(challenge);
            let _ = writer.write_all(
                format!(
                    "HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: NTLM {b64}\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            );
            let _ = writer.flush();
            // And gone, before the AUTHENTICATE can come.
            return;
        }
    })
}

/// `kerbside proxy` with NTLM credentials in front of [`closing_ntlm_upstream`]: the
/// NEGOTIATE count, the proxy and its port.
fn proxy_to_closing_ntlm_upstream() -> (Arc<AtomicUsize>, GateProcess, u16) {
    let negotiates = Arc::new(AtomicUsize::new(0));
    let upstream = closing_ntlm_upstream(negotiates.clone());
    let (p, port) = proxy(
        realm(),
        &[
            "--proxy",
            &format!("127.0.0.1:{upstream}"),
            "-u",
            "EXAMPLE\\alice:alice-password",
        ],
    );
    (negotiates, p, port)
}

/// The same for a tunnel (`CONNECT`): the exchange starts over on a new connection
/// once (a NEGOTIATE, not the AUTHENTICATE for the closed connection's challenge),
/// then the CONNECT fails with a clear 502.
#[test]
fn a_tunnel_through_an_upstream_closing_between_ntlm_legs_starts_over_once() {
    let (negotiates, p, port) = proxy_to_closing_ntlm_upstream();
    let out = curl_via(realm(), port, &["-p", "-v"], "http://origin.example/ntlm");
    let (body, err) = text(&out);
    assert!(!out.status.success(), "{body}{err}");
    assert!(
        err.contains("502") || body.contains("502"),
        "{body}{err}\n{}",
        p.log()
    );
    assert!(
        p.wait_for_log(|l| l.contains("CONNECT failed")
            && l.contains("in the middle of its authentication exchange, twice")),
        "{}",
        p.log()
    );
    assert_eq!(
        negotiates.load(Ordering::SeqCst),
        2,
        "one start-over on a new connection, then give up\n{}",
        p.log()
    );
}

#[test]
fn an_upstream_closing_between_ntlm_legs_gets_one_restart_then_a_clear_502() {
    let (negotiates, p, port) = proxy_to_closing_ntlm_upstream();
    let out = curl_via(realm(), port, &[], "http://origin.example/ntlm");
    let (body, err) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}{err}\n{}", p.log());
    assert!(body.contains("127.0.0.1"), "{body}");
    // The upstream hangs up as the AUTHENTICATE arrives: a clean close or, when the
    // message was already in its socket, a reset. Either way the client is told the
    // connection to that upstream failed.
    let said = body.to_lowercase();
    assert!(
        said.contains("closed") || said.contains("connection error"),
        "{body}"
    );
    assert_eq!(
        negotiates.load(Ordering::SeqCst),
        2,
        "one restart on a new connection, then give up\n{}",
        p.log()
    );
}

/// Started under a soft open-file limit of 256 (hard 4096, set with util-linux's
/// `prlimit`), the proxy raises its soft limit to the hard one, so a few hundred tunnels
/// do not exhaust it, and says so in its log.
#[test]
fn the_proxy_raises_its_soft_open_file_limit_to_the_hard_one() {
    let mut cmd = Command::new("prlimit");
    clean_env(&mut cmd);
    cmd.envs(realm().env())
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .args(["--nofile=256:4096", "--"])
        .arg(env!("CARGO_BIN_EXE_kerbside"));
    let (proxy, _) = start_proxy(cmd, &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in {limits}"));
    assert_eq!(
        open_files
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>(),
        ["4096", "4096"],
        "{open_files}"
    );
    assert!(
        proxy.wait_for_log(|l| l.contains("open-file limit raised from 256 to 4096")),
        "{}",
        proxy.log()
    );
}
