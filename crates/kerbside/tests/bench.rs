//! End-to-end tests of `kerbside bench`: the real binary against real gates and a
//! real MIT KDC, in every mode, bounded by a request count and by a duration; wrong
//! expectations come out as errors of a named kind, never as successes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::{kerbside, text, GateProcess};
use kerbside_testkit::{TestCa, TestCert, TestRealm};
use serde_json::Value;

/// The realm, a CA and a certificate for `localhost`.
fn tls_realm() -> (TestRealm, TestCa, TestCert) {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    (realm, ca, cert)
}

/// A loopback HTTP/1.1 server that answers every request with `answer`, in one
/// write (the shared echo upstreams write a response in pieces, and Nagle's
/// algorithm then adds ~40 ms to each: a benchmark would measure that).
fn fixed_answer(answer: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    // Requests have no body: the empty line ends one.
                    if line.trim_end().is_empty() && writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// An upstream for the gates.
fn upstream() -> String {
    let port = fixed_answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
    format!("http://127.0.0.1:{port}")
}

/// Runs `kerbside bench --json` with `args`; returns the exit code and the report.
fn bench(realm: &TestRealm, ca: &Path, args: &[&str]) -> (i32, Value) {
    let out = kerbside(realm)
        .arg("bench")
        .arg("--json")
        .arg("--cacert")
        .arg(ca)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap(), report)
}

fn count(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer} in {report:#}"))
}

/// Every request succeeded: no error of any kind, `n` successes, a throughput and
/// latencies.
fn assert_clean(report: &Value, n: u64) {
    assert_eq!(count(report, "/successes"), n, "{report:#}");
    assert_eq!(count(report, "/requests"), n, "{report:#}");
    for (kind, errors) in report["errors"].as_object().unwrap() {
        assert_eq!(errors.as_u64(), Some(0), "{kind} errors: {report:#}");
    }
    assert!(
        report["requests_per_sec"].as_f64().unwrap() > 0.0,
        "{report:#}"
    );
    let latency = &report["latency_us"];
    assert!(count(latency, "/p50") > 0, "{report:#}");
    assert!(
        count(latency, "/p50") <= count(latency, "/p99"),
        "{report:#}"
    );
    assert!(
        count(latency, "/p99") <= count(latency, "/max"),
        "{report:#}"
    );
}

#[test]
fn per_request_and_handshake_modes_verify_every_final_token() {
    let (realm, ca, cert) = tls_realm();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream(), &[]);
    let url = gate.url("/bench");
    let pid = gate.pid().to_string();

    for mode in ["per-request", "handshake"] {
        let (code, report) = bench(
            &realm,
            ca.ca_pem_path(),
            &[
                &url,
                "--mode",
                mode,
                "--requests",
                "200",
                "--connections",
                "4",
                "--server-pid",
                &pid,
                "--mutual",
                "required",
            ],
        );
        assert_eq!(code, 0, "{mode}: {report:#}\n{}", gate.log());
        assert_clean(&report, 200);
        assert_eq!(report["mode"], mode);
        // One token per request, made ahead, each verified the gate's final token.
        assert_eq!(count(&report, "/tokens/made"), 200, "{report:#}");
        assert_eq!(count(&report, "/tokens/left_over"), 0, "{report:#}");
        assert_eq!(count(&report, "/mutual/verified"), 200, "{report:#}");
        assert_eq!(count(&report, "/statuses/200"), 200, "{report:#}");
        let cpu = &report["server_cpu"];
        assert_eq!(count(cpu, "/pid"), u64::from(gate.pid()), "{report:#}");
        assert!(cpu["us_per_request"].is_number(), "{report:#}");
    }
    // The tokens were new to the gate: none was refused as a replay (the line at start
    // names the replay cache file).
    assert!(
        !gate
            .log()
            .lines()
            .filter(|l| !l.contains("replay cache file in use"))
            .any(|l| l.to_ascii_lowercase().contains("replay")),
        "{}",
        gate.log()
    );

    // The table for people.
    let out = kerbside(&realm)
        .args([
            "bench",
            "-n",
            "400",
            "-c",
            "4",
            "--server-pid",
            &pid,
            "--cacert",
        ])
        .arg(ca.ca_pem_path())
        .arg(&url)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "mode         per-request (4 connections, HTTP/1.1 over TLS)",
        "requests     400 ok, 0 errors in ",
        "statuses     200 × 400",
        "mutual auth  400 verified, 0 without a final token (--mutual optional)",
        "tokens       400 made ahead in ",
        "errors       none",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
    for word in ["requests/s", "p50 ", "p90 ", "p99 ", "max ", "µs/request"] {
        assert!(stdout.contains(word), "{word:?} missing:\n{stdout}");
    }
    // Not a terminal: no progress line; notes only.
    assert!(!stderr.contains(" ok  "), "{stderr}");
}

#[test]
fn a_final_token_that_does_not_verify_is_a_mutual_error() {
    let realm = TestRealm::start().unwrap();
    // A server that answers every request 200 with a final token that is not one.
    let port = fixed_answer(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
         WWW-Authenticate: Negotiate Z2FyYmFnZQ==\r\n\r\nok",
    );
    let url = format!("http://localhost:{port}/");
    let out = kerbside(&realm)
        .args(["bench", "--json", "-n", "20", "-c", "2", &url])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(count(&report, "/successes"), 0, "{report:#}");
    assert_eq!(count(&report, "/errors/mutual"), 20, "{report:#}");
    assert_eq!(count(&report, "/statuses/200"), 20, "{report:#}");
    let message = report["error_messages"]["mutual"].as_str().unwrap();
    assert!(message.contains("did not verify"), "{message}");
}

#[test]
fn wrong_expectations_are_errors_not_successes() {
    let (realm, ca, cert) = tls_realm();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream(), &[]);
    let url = gate.url("/bench");

    // No token to a gate that wants one on every request: 401s.
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[&url, "--mode", "plain", "--requests", "50", "-c", "2"],
    );
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(count(&report, "/successes"), 0, "{report:#}");
    assert_eq!(count(&report, "/errors/status"), 50, "{report:#}");
    assert_eq!(count(&report, "/statuses/401"), 50, "{report:#}");
    assert!(report["latency_us"].is_null(), "{report:#}");
    let message = report["error_messages"]["status"].as_str().unwrap();
    assert!(message.contains("expected 200 OK, got 401"), "{message}");

    // ... which is a success when that is what was asked for.
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[
            &url,
            "--mode",
            "plain",
            "-n",
            "20",
            "--expect-status",
            "401",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_clean(&report, 20);

    // Reuse against a gate that keeps nothing: the first request of each
    // connection passes, the plain ones after it are refused.
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[&url, "--mode", "reuse", "-n", "40", "-c", "2"],
    );
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(count(&report, "/successes"), 2, "{report:#}");
    assert_eq!(count(&report, "/errors/status"), 38, "{report:#}");
    let message = report["error_messages"]["status"].as_str().unwrap();
    assert!(message.contains("neither with the connection"), "{message}");

    // A token that cannot be made (no such service) stops the run before it starts.
    let out = kerbside(&realm)
        .args([
            "bench",
            "-n",
            "10",
            "--spn",
            "HTTP@nowhere.example.test",
            "--cacert",
        ])
        .arg(ca.ca_pem_path())
        .arg(&url)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot make a token"), "{stderr}");
}

#[test]
fn reuse_mode_authenticates_once_per_connection() {
    let (realm, ca, cert) = tls_realm();
    let key = realm.dir().join("session.key");
    let cookie_gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream(),
        &["--auth", "cookie", "--session-key", key.to_str().unwrap()],
    );
    let connection_gate =
        GateProcess::start(&realm, Some(&cert), &upstream(), &["--auth", "connection"]);
    for gate in [&cookie_gate, &connection_gate] {
        let pid = gate.pid().to_string();
        let (code, report) = bench(
            &realm,
            ca.ca_pem_path(),
            &[
                &gate.url("/reuse"),
                "--mode",
                "reuse",
                "--requests",
                "200",
                "--connections",
                "4",
                "--server-pid",
                &pid,
            ],
        );
        assert_eq!(code, 0, "{report:#}\n{}", gate.log());
        assert_clean(&report, 200);
        // A token for each of the 4 connections, the rest spare.
        let made = count(&report, "/tokens/made");
        assert_eq!(made - count(&report, "/tokens/left_over"), 4, "{report:#}");
        assert_eq!(count(&report, "/mutual/verified"), 4, "{report:#}");
        assert!(report["server_cpu"]["us_per_request"].is_number());
    }
}

#[test]
fn a_duration_bounds_the_run() {
    let (realm, ca, cert) = tls_realm();
    let open = GateProcess::start(&realm, Some(&cert), &upstream(), &["--auth", "none"]);
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[
            &open.url("/"),
            "--mode",
            "plain",
            "--duration",
            "2s",
            "-c",
            "4",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    let n = count(&report, "/successes");
    assert!(n > 0, "{report:#}");
    assert_clean(&report, n);
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((2.0..5.0).contains(&elapsed), "{report:#}");
    assert!(report["stopped_early"].is_null(), "{report:#}");
    assert!(
        report["tokens"].is_null(),
        "plain mode makes no token: {report:#}"
    );

    // With only a duration, token modes make a bounded pool and say when it ran out.
    let gate = GateProcess::start(&realm, Some(&cert), &upstream(), &[]);
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[&gate.url("/"), "--duration", "60s", "--tokens", "100"],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_clean(&report, 100);
    assert!(report["elapsed_s"].as_f64().unwrap() < 30.0, "{report:#}");
    let reason = report["stopped_early"].as_str().unwrap();
    assert!(reason.contains("--tokens"), "{reason}");
}

#[test]
fn only_loopback_targets_unless_allowed() {
    let out = Command::new(env!("CARGO_BIN_EXE_kerbside"))
        .args([
            "bench",
            "--mode",
            "plain",
            "-n",
            "1",
            "http://192.0.2.1:8080/",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}

/// Apache + mod_auth_gssapi as a reverse proxy (the testkit's `proxy_to` mode): the
/// server CPU is summed over the parent and its worker processes, each mode of the
/// benchmark has its location, and memory per open connection is reported.
#[test]
fn apache_reverse_proxy_with_all_its_processes_counted() {
    let (realm, ca, cert) = tls_realm();
    let port = fixed_answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
    let apache = kerbside_testkit::Apache::start(
        &realm,
        &cert,
        kerbside_testkit::ApacheOptions {
            proxy_to: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let pid = apache.pid().to_string();
    for (path, mode, idle) in [
        ("/public/x", "plain", None),
        ("/private/x", "per-request", None),
        ("/bound/x", "reuse", Some("1s")),
        ("/session/x", "reuse", None),
    ] {
        let url = apache.url(path);
        let mut args = vec![
            url.as_str(),
            "--mode",
            mode,
            "-n",
            "20",
            "--server-pid",
            &pid,
            "--server-children",
            "--server-memory",
        ];
        if let Some(idle) = idle {
            args.extend(["--idle", idle]);
        }
        let (code, report) = bench(&realm, ca.ca_pem_path(), &args);
        assert_eq!(code, 0, "{path}: {report:#}\n{}", apache.error_log());
        assert_clean(&report, 20);
        let pids = report["server_cpu"]["pids"].as_array().unwrap();
        assert!(
            pids.len() >= 3,
            "the parent and its two workers: {report:#}"
        );
        assert!(report["server_cpu"]["us_per_request"].is_number());
        assert_eq!(count(&report, "/server_memory/connections_open"), 2);
        match idle {
            // Read again after the connections stayed idle, still open (Apache's
            // KeepAliveTimeout is longer than a second).
            Some(_) => {
                assert_eq!(count(&report, "/server_memory/idle/connections_open"), 2);
                assert_eq!(report["server_memory"]["idle"]["after_s"], 1.0);
                assert!(report["server_memory"]["idle"]["pss_kib"].as_u64().unwrap() > 0);
            }
            None => assert!(report["server_memory"].get("idle").is_none(), "{report:#}"),
        }
    }
    // Connection-bound and session locations let the connection in after one token.
    let log = apache.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("/bound/x") && l.contains("auth=-") && l.contains(" 200 ")),
        "{log}"
    );
}

#[test]
fn several_server_pids_are_summed() {
    let (realm, ca, cert) = tls_realm();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream(), &["--auth", "none"]);
    let me = std::process::id().to_string();
    let pids = format!("{},{me}", gate.pid());
    let (code, report) = bench(
        &realm,
        ca.ca_pem_path(),
        &[
            &gate.url("/"),
            "--mode",
            "plain",
            "-n",
            "50",
            "--server-pid",
            &pids,
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    let listed: Vec<u64> = report["server_cpu"]["pids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(listed.len(), 2, "{report:#}");
    assert_eq!(
        report["server_cpu"]["processes_changed"],
        Value::Bool(false)
    );
}
