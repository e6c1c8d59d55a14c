//! Gates behind Debian's HAProxy in TCP mode (TLS passed through), as docs/scale-out.md
//! configures it: the client's address reaches the gate through the PROXY protocol (v1
//! and v2), HAProxy's health checks read `/.kerbside/health`, and a gate drained with
//! SIGTERM and `--shutdown-delay` is taken out before it stops accepting, with no error
//! for clients. curl's own `--haproxy-protocol` is the second peer that sends headers.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{curl, kerbside, metric, text, GateProcess, HeadEchoUpstream};
use kerbside_testkit::{Backend, Haproxy, HaproxyOptions, SendProxy, TestCa, TestCert, TestRealm};

/// One realm for the binary.
fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// A TLS gate in front of `upstream` that takes the PROXY protocol from loopback.
fn gate(realm: &TestRealm, cert: &TestCert, upstream: &str, extra: &[&str]) -> GateProcess {
    let mut cmd = kerbside(realm);
    cmd.args([
        "gate",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ])
    .arg("--keytab")
    .arg(realm.keytab())
    .args(["--upstream", upstream])
    .arg("--tls-cert")
    .arg(cert.cert_pem_path())
    .arg("--tls-key")
    .arg(cert.key_pem_path())
    .arg("--proxy-protocol")
    .args(extra);
    GateProcess::from_command(cmd)
}

fn port_of(gate: &GateProcess) -> u16 {
    gate.url.rsplit(':').next().unwrap().parse().unwrap()
}

fn status_of(out: &Output) -> u16 {
    let (stdout, _) = text(out);
    stdout
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The values of `name` among the header lines the upstream echoed.
fn echoed(out: &Output, name: &str) -> Vec<String> {
    let (stdout, _) = text(out);
    let body = stdout.rsplit("\r\n\r\n").next().unwrap_or("");
    body.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// `curl -i --negotiate` from `source` through HAProxy.
fn through(realm: &TestRealm, ca: &Path, haproxy: &Haproxy, source: &str, path: &str) -> Output {
    curl(realm, ca)
        .args(["-i", "--negotiate", "-u", ":", "--interface", source])
        .arg(format!("https://localhost:{}{path}", haproxy.port()))
        .output()
        .unwrap()
}

/// Polls HAProxy's view of the gates until `want` holds (10 s at most).
fn wait_statuses(haproxy: &Haproxy, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let statuses = haproxy.statuses().unwrap();
        if want(&statuses) || Instant::now() > deadline {
            return statuses;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_client_address_comes_through_haproxy_with_the_proxy_protocol_v1_and_v2() {
    let realm = realm();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = HeadEchoUpstream::start(Duration::ZERO);
    let gates = [
        gate(realm, &cert, &upstream.url(), &[]),
        gate(realm, &cert, &upstream.url(), &[]),
    ];
    let haproxy = Haproxy::start(&HaproxyOptions {
        backends: vec![
            Backend {
                port: port_of(&gates[0]),
                send_proxy: SendProxy::V1,
            },
            Backend {
                port: port_of(&gates[1]),
                send_proxy: SendProxy::V2,
            },
        ],
        health_path: Some("/.kerbside/health".to_owned()),
        tls_checks: true,
    })
    .unwrap();
    let up = wait_statuses(&haproxy, |s| s.len() == 2 && s.iter().all(|s| s == "UP"));
    assert_eq!(up, ["UP", "UP"], "{}", haproxy.log());

    // Round robin: two requests, one through each gate, each from 127.0.0.2. Without
    // the PROXY protocol the gates would see HAProxy's 127.0.0.1.
    for _ in 0..2 {
        let out = through(realm, ca.ca_pem_path(), &haproxy, "127.0.0.2", "/app");
        let report = format!("{:?}\n{}", text(&out), haproxy.log());
        assert_eq!(status_of(&out), 200, "{report}");
        assert_eq!(echoed(&out, "x-forwarded-for"), ["127.0.0.2"], "{report}");
        assert_eq!(
            echoed(&out, "x-remote-user"),
            ["alice@EXAMPLE.TEST"],
            "{report}"
        );
    }
    for gate in &gates {
        let metrics = gate.metrics();
        assert!(
            metric(&metrics, "kerbside_gate_handshakes_total{result=\"ok\"}") >= 1.0,
            "each gate logged one client in: {metrics}"
        );
        assert_eq!(
            metric(&metrics, "kerbside_gate_proxy_protocol_refusals_total"),
            0.0,
            "HAProxy's connections and checks all carried a header: {}",
            gate.log()
        );
    }
}

#[test]
fn connections_without_a_header_or_from_untrusted_addresses_are_closed() {
    let realm = realm();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = HeadEchoUpstream::start(Duration::ZERO);
    let gate = gate(
        realm,
        &cert,
        &upstream.url(),
        &["--proxy-protocol-trusted", "127.0.0.1"],
    );
    let port = port_of(&gate);

    // curl's own PROXY v1 header, from a trusted address: the health endpoint answers
    // without a ticket, and a login works.
    let health = curl(realm, ca.ca_pem_path())
        .args(["-i", "--haproxy-protocol", "--interface", "127.0.0.1"])
        .arg(format!("https://localhost:{port}/.kerbside/health"))
        .output()
        .unwrap();
    assert_eq!(
        status_of(&health),
        200,
        "{:?}\n{}",
        text(&health),
        gate.log()
    );
    assert!(text(&health).0.ends_with("ready\n"), "{:?}", text(&health));
    let login = curl(realm, ca.ca_pem_path())
        .args(["-i", "--haproxy-protocol", "--negotiate", "-u", ":"])
        .args(["--interface", "127.0.0.1"])
        .arg(format!("https://localhost:{port}/x"))
        .output()
        .unwrap();
    assert_eq!(status_of(&login), 200, "{:?}\n{}", text(&login), gate.log());

    // A client that talks to the gate directly, as if there were no balancer.
    let direct = curl(realm, ca.ca_pem_path())
        .args(["-i", "--negotiate", "-u", ":"])
        .arg(format!("https://localhost:{port}/x"))
        .output()
        .unwrap();
    assert!(!direct.status.success(), "{:?}", text(&direct));

    // A raw HTTP request with no header: closed with no answer.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    // A valid header from 127.0.0.2, which is not the trusted balancer (127.0.0.1 is):
    // it could claim any address, so the connection is closed.
    let untrusted = curl(realm, ca.ca_pem_path())
        .args(["-i", "--haproxy-protocol", "--interface", "127.0.0.2"])
        .arg(format!("https://localhost:{port}/.kerbside/health"))
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "{:?}", text(&untrusted));

    let metrics = gate.metrics();
    assert_eq!(
        metric(&metrics, "kerbside_gate_proxy_protocol_refusals_total"),
        3.0,
        "{metrics}\n{}",
        gate.log()
    );
    let log = gate.log();
    assert!(
        log.contains("does not start with a PROXY protocol header")
            && log.contains("127.0.0.2")
            && log.contains("not a trusted load balancer"),
        "{log}"
    );
}

#[test]
fn a_draining_gate_is_taken_out_by_the_health_checks_without_a_client_error() {
    let realm = realm();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = HeadEchoUpstream::start(Duration::ZERO);
    let mut draining = gate(realm, &cert, &upstream.url(), &["--shutdown-delay", "3"]);
    let staying = gate(realm, &cert, &upstream.url(), &[]);
    let haproxy = Haproxy::start(&HaproxyOptions {
        backends: vec![
            Backend {
                port: port_of(&draining),
                send_proxy: SendProxy::V2,
            },
            Backend {
                port: port_of(&staying),
                send_proxy: SendProxy::V2,
            },
        ],
        health_path: Some("/.kerbside/health".to_owned()),
        tls_checks: true,
    })
    .unwrap();
    let up = wait_statuses(&haproxy, |s| s.len() == 2 && s.iter().all(|s| s == "UP"));
    assert_eq!(up, ["UP", "UP"], "{}", haproxy.log());

    let status = Command::new("kill")
        .args(["-TERM", &draining.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Within the shutdown delay the gate still accepts, its health says 503, and
    // HAProxy takes it out.
    let statuses = wait_statuses(&haproxy, |s| {
        s.first().is_some_and(|s| s.starts_with("DOWN"))
    });
    assert!(
        statuses[0].starts_with("DOWN") && statuses[1] == "UP",
        "{statuses:?}\n{}\n{}",
        haproxy.log(),
        draining.log()
    );
    assert!(
        draining.is_running(),
        "the gate stopped before the balancer took it out"
    );
    let health = curl(realm, ca.ca_pem_path())
        .args(["-i", "--haproxy-protocol"])
        .arg(format!(
            "https://localhost:{}/.kerbside/health",
            port_of(&draining)
        ))
        .output()
        .unwrap();
    assert_eq!(status_of(&health), 503, "{:?}", text(&health));
    assert!(text(&health).0.ends_with("draining\n"));

    // Every client request meanwhile goes to the other gate, and succeeds.
    for _ in 0..6 {
        let out = through(realm, ca.ca_pem_path(), &haproxy, "127.0.0.1", "/app");
        assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), haproxy.log());
    }
    let exit = draining.wait_exit(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        draining.log()
    );
    assert!(draining.log().contains("draining"), "{}", draining.log());
    for _ in 0..4 {
        let out = through(realm, ca.ca_pem_path(), &haproxy, "127.0.0.1", "/app");
        assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), haproxy.log());
    }
}
