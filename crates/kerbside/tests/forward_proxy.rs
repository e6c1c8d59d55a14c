//! `kerbside proxy`, the local forward proxy, with real peers: curl (plain HTTP,
//! and HTTPS through CONNECT to `kerbside gate` with curl's own Negotiate inside
//! the tunnel) with only the proxy configured, Squid requiring Negotiate
//! (negotiate_kerberos_auth against the test realm; its access log must name
//! alice for every request and tunnel) or Basic; failover with a dead first
//! upstream and the retry timer; --noproxy; who may use it (addresses, another
//! uid, origin-form requests); a ticket obtained after start, another principal's
//! ticket and kdestroy while it runs; 200 tunnels at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::proxy::{
    curl_via, proxy, served_line, squid_requiring, start_proxy, status_of, wait_for,
};
use common::{curl, hg, kerbside, run_ok, text, EchoUpstream, GateProcess, HgServe};
use kerbside_testkit::{ProxyScheme, Squid, SquidOptions, TestCa, TestRealm};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

fn proxy_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

#[test]
fn curl_plain_http_and_tunnels_through_squid_with_negotiate_and_one_auth_per_connection() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let (p, port) = proxy(realm, &["--proxy", &squid.url()]);

    // Three plain-HTTP GETs on one curl connection (keep-alive to the proxy), and a
    // tunnel (-p: CONNECT even for http://).
    let a = format!("{}/one", origin.url());
    let b = format!("{}/two", origin.url());
    let c = format!("{}/three", origin.url());
    let mut cmd = curl(realm, &std::env::temp_dir());
    cmd.args(["--noproxy", "", "--max-time", "20", "-v", "--proxy"])
        .arg(proxy_url(port))
        .args([&a, &b, &c]);
    let out = cmd.output().unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success(),
        "{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    for path in ["/one", "/two", "/three"] {
        assert!(body.contains(&format!("path={path}")), "{body}");
    }
    assert_eq!(
        err.matches("Re-using existing connection").count()
            + err.matches("Reusing existing").count(),
        2,
        "curl's connection to the proxy stays open: {err}"
    );
    assert!(!err.contains("Proxy-Authorization"), "{err}");

    let tunnelled = curl_via(realm, port, &["-p"], &format!("{}/tunnel", origin.url()));
    let (body, err) = text(&tunnelled);
    assert!(tunnelled.status.success(), "{err}\n{}", p.log());
    assert!(body.contains("path=/tunnel"), "{body}");

    squid.wait_access_log(|l| served_line(l, "CONNECT 127.0.0.1"));
    // A second tunnel: the upstream is known to want Negotiate, so the CONNECT
    // carries a fresh token at once (no 407 round trip).
    let again = curl_via(realm, port, &["-p"], &format!("{}/tunnel2", origin.url()));
    assert!(again.status.success(), "{:?}\n{}", text(&again), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("sent without waiting for a 407")),
        "{}",
        p.log()
    );
    let log = squid.wait_access_log(|l| {
        l.lines()
            .filter(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
            .count()
            == 2
    });
    let served: Vec<&str> = log.lines().filter(|l| !l.contains(" 407 ")).collect();
    assert_eq!(served.len(), 5, "{log}");
    for line in &served {
        assert!(line.contains("user=alice@EXAMPLE.TEST"), "{log}");
    }
    // Keep-alive upstream: the three GETs went on one authenticated connection to
    // Squid, so one 407 (one handshake) for them, and one for the first tunnel.
    assert_eq!(log.matches(" 407 ").count(), 2, "{log}");
    let ports: std::collections::HashSet<&str> = served[..3]
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(ports.len(), 1, "one upstream connection: {log}");
    assert!(!p.log().contains("YII"), "tokens redacted: {}", p.log());
}

#[test]
fn curl_https_through_the_tunnel_reaches_a_kerberized_gate_untouched() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let origin = EchoUpstream::start();
    let gate = GateProcess::start(realm, Some(&cert), &origin.url(), &[]);
    let (p, port) = proxy(realm, &["--proxy", &squid.url()]);
    let mut cmd = curl(realm, ca.ca_pem_path());
    cmd.args([
        "--noproxy",
        "",
        "--max-time",
        "20",
        "--negotiate",
        "-u",
        ":",
    ])
    .args(["--proxy", &proxy_url(port)])
    .arg(gate.url("/secret"));
    let out = cmd.output().unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success(),
        "{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    // The gate authenticated curl itself (inside TLS, through the tunnel).
    assert!(
        body.contains("x-remote-user=alice@EXAMPLE.TEST") || body.contains("alice@EXAMPLE.TEST"),
        "{body}"
    );
    let log = squid.wait_access_log(|l| served_line(l, "CONNECT localhost"));
    let connect = log
        .lines()
        .find(|l| l.contains("CONNECT localhost") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(connect.contains("user=alice@EXAMPLE.TEST"), "{log}");
}

#[test]
fn a_dead_first_upstream_is_skipped_then_retried_after_the_timer() {
    let realm = realm();
    let squid = Squid::start(
        realm,
        SquidOptions {
            require_auth: false,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let origin = EchoUpstream::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let list = format!("127.0.0.1:{dead_port},{}", squid.url());
    let (p, port) = proxy(realm, &["--proxy", &list, "--proxy-retry-after", "2"]);
    let out = curl_via(realm, port, &[], &format!("{}/first", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("upstream proxy failed")),
        "{}",
        p.log()
    );
    // Tried last now: the next request goes to Squid first.
    let before = p.log().matches("cannot connect to 127.0.0.1").count();
    let out = curl_via(realm, port, &["-p"], &format!("{}/second", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert_eq!(
        p.log().matches("cannot connect to 127.0.0.1").count(),
        before,
        "the dead upstream was not tried again: {}",
        p.log()
    );
    // After the timer it is first again (and fails again).
    wait_for("the dead upstream tried again", || {
        let out = curl_via(realm, port, &[], &format!("{}/again", origin.url()));
        assert_eq!(status_of(&out), 200, "{:?}", text(&out));
        p.log().matches("cannot connect to 127.0.0.1").count() > before
    });
    let log = squid.wait_access_log(|l| served_line(l, "/again"));
    assert!(
        log.contains("/first") && log.contains("CONNECT 127.0.0.1"),
        "{log}"
    );
}

#[test]
fn noproxy_hosts_go_direct_and_nothing_else_does() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &squid.url(),
            "--noproxy",
            "127.0.0.0/8",
            "--metrics",
            &metrics_addr,
        ],
    );
    let out = curl_via(realm, port, &[], &format!("{}/direct", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let out = curl_via(
        realm,
        port,
        &["-p"],
        &format!("{}/direct-tunnel", origin.url()),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("matches the no-proxy entry 127.0.0.0/8")),
        "{}",
        p.log()
    );
    // Through Squid: a name not on the list.
    let out = curl_via(
        realm,
        port,
        &[],
        &format!("http://localhost:{}/via-squid", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/via-squid"));
    assert!(!log.contains("/direct"), "{log}");

    // Prometheus counters by route and upstream, handshakes by scheme.
    let mut m = curl(realm, &std::env::temp_dir());
    let out = m
        .arg(format!("http://{metrics_addr}/metrics"))
        .output()
        .unwrap();
    let (metrics, _) = text(&out);
    assert!(
        metrics.contains(
            "kerbside_proxy_requests_total{route=\"direct\",upstream=\"\",status=\"2xx\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("kerbside_proxy_tunnels_total{route=\"direct\",upstream=\"\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"proxy\",upstream=\"http://localhost:"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "kerbside_proxy_auth_handshakes_total{scheme=\"Negotiate\",peer=\"proxy\"} 1"
        ),
        "{metrics}"
    );

    // --check says the same without a request.
    let out = kerbside(realm)
        .args(["proxy", "--proxy", &squid.url(), "--noproxy", "127.0.0.0/8"])
        .args(["--check", "https://pypi.example/simple/"])
        .output()
        .unwrap();
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("CONNECT tunnel"), "{stdout}");
    assert!(stdout.contains("1. http://localhost:"), "{stdout}");
    assert!(stdout.contains("a 407 is answered"), "{stdout}");
}

#[test]
fn clients_outside_the_allow_list_other_users_and_web_pages_are_refused() {
    let realm = realm();
    let origin = EchoUpstream::start();
    let url = format!("{}/x", origin.url());
    // Default: all of loopback, same user.
    let (p, port) = proxy(realm, &[]);
    let out = curl_via(realm, port, &["--interface", "127.0.0.2"], &url);
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());

    // Another uid (nobody) on the same machine gets 403, nothing forwarded.
    let out = Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "10",
        ])
        .args([
            "--noproxy",
            "",
            "--proxy",
            &proxy_url(port),
            &format!("{}/other-user", origin.url()),
        ])
        .output()
        .expect("runuser (util-linux) is needed for this test");
    let (body, err) = text(&out);
    assert_eq!(status_of(&out), 403, "{body}{err}\n{}", p.log());
    assert!(body.contains("only the proxy's own user"), "{body}");
    assert!(
        p.wait_for_log(|l| l.contains("refused, nothing forwarded")),
        "{}",
        p.log()
    );
    drop(p);

    // With --allow-other-users it is served.
    let (p, port) = proxy(realm, &["--allow-other-users"]);
    let out = Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "10",
        ])
        .args(["--noproxy", "", "--proxy", &proxy_url(port), &url])
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    drop(p);

    // Only 127.0.0.1: a client from 127.0.0.2 gets 403; --allow lets it in.
    let (p, port) = proxy(realm, &["--allow", "127.0.0.1/32"]);
    let out = curl_via(realm, port, &["--interface", "127.0.0.2"], &url);
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 403, "{body}\n{}", p.log());
    assert!(
        body.contains("clients from 127.0.0.2 may not use this proxy"),
        "{body}"
    );
    let out = curl_via(realm, port, &["--interface", "127.0.0.1"], &url);
    assert_eq!(status_of(&out), 200, "{:?}", text(&out));
    drop(p);
    let (p, port) = proxy(realm, &["--allow", "127.0.0.1/32", "--allow", "127.0.0.2"]);
    let out = curl_via(realm, port, &["--interface", "127.0.0.2"], &url);
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());

    // What a web page can make a browser send to 127.0.0.1:3128: an origin-form
    // request with a Host. Refused, not forwarded.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /x HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        origin.port
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!answer.contains("path=/x"), "{answer}");
}

#[test]
fn an_upstream_refusing_the_password_gives_502_with_the_reason() {
    let realm = realm();
    let squid = squid_requiring(realm, ProxyScheme::Basic);
    let origin = EchoUpstream::start();
    let (p, port) = proxy(
        realm,
        &["--proxy", &squid.url(), "-u", "alice:wrong-password"],
    );
    let out = curl_via(realm, port, &[], &format!("{}/x", origin.url()));
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}\n{}", p.log());
    assert!(body.contains("refused the Basic credentials"), "{body}");
    assert!(!body.contains("407") || body.contains("502"), "{body}");
    let out = curl_via(realm, port, &["-p"], &format!("{}/t", origin.url()));
    let (body, err) = text(&out);
    assert!(
        body.contains("502") || err.contains("502"),
        "{body}{err}\n{}",
        p.log()
    );
    drop(p);
    // The right password works, and Squid logs the user.
    let (p, port) = proxy(
        realm,
        &["--proxy", &squid.url(), "-u", "alice:alice-password"],
    );
    let out = curl_via(realm, port, &[], &format!("{}/ok", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/ok"));
    assert!(
        log.lines()
            .any(|l| l.contains("/ok") && l.contains("user=alice")),
        "{log}"
    );
}

#[test]
fn a_ticket_obtained_after_start_is_used_without_restart() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let cache = realm.dir().join("later-ticket");
    let _ = std::fs::remove_file(&cache);
    let mut cmd = kerbside(realm);
    cmd.env("KRB5CCNAME", format!("FILE:{}", cache.display()));
    let (p, port) = start_proxy(cmd, &["--proxy", &squid.url()]);
    let out = curl_via(realm, port, &[], &format!("{}/before", origin.url()));
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}\n{}", p.log());
    assert!(
        body.to_lowercase().contains("ticket") || body.contains("credentials"),
        "{body}"
    );
    realm.kinit("alice", "alice-password", &cache).unwrap();
    let out = curl_via(realm, port, &[], &format!("{}/after", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/after"));
    assert!(
        log.lines()
            .any(|l| l.contains("/after") && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
}

#[test]
fn another_principals_ticket_and_kdestroy_are_noticed_at_the_next_request_without_restart() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let cache = realm.dir().join("changing-ticket");
    realm.kinit("alice", "alice-password", &cache).unwrap();
    let mut cmd = kerbside(realm);
    cmd.env("KRB5CCNAME", format!("FILE:{}", cache.display()));
    let (p, port) = start_proxy(cmd, &["--proxy", &squid.url()]);
    // Each tunnel is a new upstream connection with a new Negotiate token.
    let tunnel = |path: &str| {
        let out = curl_via(realm, port, &["-p"], &format!("{}/{path}", origin.url()));
        assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
        assert!(text(&out).0.contains(&format!("path=/{path}")));
    };
    let tunnels_of = |user: &str, log: &str| {
        log.lines()
            .filter(|l| l.contains("CONNECT 127.0.0.1") && l.contains(&format!("user={user}@")))
            .count()
    };
    // A plain-HTTP request goes on an upstream connection authenticated once and
    // kept for the next ones.
    let plain = |path: &str| {
        let out = curl_via(realm, port, &[], &format!("{}/{path}", origin.url()));
        assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    };
    let served_as = |path: &str, user: &str| {
        let line = format!("/{path}\"");
        let log = squid.wait_access_log(|l| served_line(l, &line));
        assert!(
            log.lines()
                .any(|l| l.contains(&line) && l.contains(&format!("user={user}@"))),
            "Squid should log /{path} as {user}:\n{log}"
        );
    };
    tunnel("as-alice");
    squid.wait_access_log(|log| tunnels_of("alice", log) == 1);
    plain("plain-alice");
    served_as("plain-alice", "alice");
    plain("plain-alice-again");
    served_as("plain-alice-again", "alice");

    // A new ticket for another principal in the same cache (as `kinit bob` does):
    // the next tunnel, and the next plain request too (not the connection kept
    // from alice's login), go as bob.
    realm.kinit("bob", "bob-password", &cache).unwrap();
    tunnel("as-bob");
    let log = squid.wait_access_log(|log| tunnels_of("bob", log) == 1);
    assert_eq!(tunnels_of("alice", &log), 1, "{log}");
    plain("plain-bob");
    served_as("plain-bob", "bob");

    // kdestroy while the proxy runs: the next request that needs a handshake gets
    // the clear 502; kinit again and it works, still without a restart.
    let mut kdestroy = realm.command("kdestroy");
    kdestroy.arg("-c").arg(format!("FILE:{}", cache.display()));
    run_ok(&mut kdestroy);
    assert!(!cache.exists());
    let out = curl_via(realm, port, &[], &format!("{}/destroyed", origin.url()));
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}\n{}", p.log());
    assert!(body.contains("kinit"), "{body}");
    realm.kinit("alice", "alice-password", &cache).unwrap();
    let out = curl_via(realm, port, &[], &format!("{}/again", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/again"));
    assert!(
        log.lines()
            .any(|l| l.contains("/again") && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
}

#[test]
fn two_hundred_tunnels_at_once() {
    let realm = realm();
    let origin = EchoUpstream::start();
    let (p, port) = proxy(realm, &[]);
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let origin_port = origin.port;
            std::thread::spawn(move || -> Result<(), String> {
                let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                write!(
                    s,
                    "CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n"
                )
                .map_err(|e| e.to_string())?;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    s.read_exact(&mut byte).map_err(|e| format!("head: {e}"))?;
                    head.push(byte[0]);
                }
                if !head.starts_with(b"HTTP/1.1 200") {
                    return Err(String::from_utf8_lossy(&head).into_owned());
                }
                write!(
                    s,
                    "GET /t{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .map_err(|e| e.to_string())?;
                let mut answer = String::new();
                s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
                if answer.contains(&format!("path=/t{i}")) {
                    Ok(())
                } else {
                    Err(answer)
                }
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(3)],
        p.log()
    );
}

/// `hg clone` of a plain-HTTP repository, with only the proxy configured
/// (`http_proxy.always`: Mercurial would otherwise go to localhost directly).
#[test]
fn hg_clones_through_the_proxy_and_squid() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = HgServe::start(dir.path());
    let (p, port) = proxy(realm, &["--proxy", &squid.url()]);
    let out = hg(dir.path())
        .args(["--config", &format!("http_proxy.host=127.0.0.1:{port}")])
        .args([
            "--config",
            "http_proxy.always=True",
            "clone",
            &served.url(),
            "clone",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}\n{}", text(&out), p.log());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("clone/README")).unwrap(),
        "hello from the server\n"
    );
    let log = squid.wait_access_log(|l| served_line(l, "cmd=getbundle"));
    assert!(
        log.lines()
            .filter(|l| l.contains(" 200 "))
            .all(|l| l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
}

/// A wheel with one module, built by hand (a zip with its metadata).
fn write_wheel(dir: &std::path::Path) {
    let script = format!(
        "import zipfile\n\
         z = zipfile.ZipFile({:?}, 'w')\n\
         z.writestr('kerbside_probe/__init__.py', 'VALUE = 42\\n')\n\
         z.writestr('kerbside_probe-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: kerbside-probe\\nVersion: 1.0\\n')\n\
         z.writestr('kerbside_probe-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
         z.writestr('kerbside_probe-1.0.dist-info/RECORD', 'kerbside_probe/__init__.py,,\\nkerbside_probe-1.0.dist-info/METADATA,,\\nkerbside_probe-1.0.dist-info/WHEEL,,\\nkerbside_probe-1.0.dist-info/RECORD,,\\n')\n\
         z.close()\n",
        dir.join("kerbside_probe-1.0-py3-none-any.whl")
    );
    run_ok(Command::new("/usr/bin/python3").args(["-c", &script]));
}

/// `pip install` from a local index (Python's http.server) with `pip --proxy`.
#[test]
fn pip_installs_from_a_local_index_through_the_proxy() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let pip =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv/bin/pip");
    assert!(
        pip.exists(),
        "{} is missing: run scripts/install-deps.sh",
        pip.display()
    );
    let index = tempfile::tempdir().unwrap();
    write_wheel(index.path());
    let server_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &server_port.to_string(),
        ])
        .current_dir(index.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the index server", || {
        TcpStream::connect(("127.0.0.1", server_port)).is_ok()
    });
    let (p, port) = proxy(realm, &["--proxy", &squid.url()]);
    let target = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&pip);
    common::clean_env(&mut cmd);
    let out = cmd
        .args([
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-index",
        ])
        .args([
            "--proxy",
            &proxy_url(port),
            "--find-links",
            &format!("http://127.0.0.1:{server_port}/"),
        ])
        .arg("--target")
        .arg(target.path())
        .arg("kerbside-probe")
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{:?}\n{}", text(&out), p.log());
    assert!(target.path().join("kerbside_probe/__init__.py").exists());
    let log = squid.wait_access_log(|l| served_line(l, ".whl"));
    assert!(
        log.lines()
            .any(|l| l.contains(".whl") && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
}

/// `git clone` over HTTPS (CONNECT through the proxy and Squid) from `git
/// http-backend` behind a kerberized gate, git's own Negotiate inside TLS.
#[test]
fn git_clones_over_https_through_the_proxy() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let root = tempfile::tempdir().unwrap();
    let git = |dir: &std::path::Path| {
        let mut cmd = Command::new("/usr/bin/git");
        common::clean_env(&mut cmd);
        cmd.envs(realm.env())
            .current_dir(dir)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_SSL_CAINFO", ca.ca_pem_path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .args([
                "-c",
                "http.emptyAuth=true",
                "-c",
                "user.name=A",
                "-c",
                "user.email=a@example.test",
            ])
            .args(["-c", "init.defaultBranch=main"]);
        cmd
    };
    run_ok(git(root.path()).args(["init", "-q", "--bare", "project.git"]));
    let seed = root.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    run_ok(git(&seed).args(["init", "-q"]));
    std::fs::write(seed.join("README"), "through the proxy\n").unwrap();
    run_ok(git(&seed).args(["add", "README"]));
    run_ok(git(&seed).args(["commit", "-q", "-m", "first"]));
    run_ok(
        git(&seed)
            .args(["push", "-q"])
            .arg(root.path().join("project.git"))
            .arg("main"),
    );
    let config = root.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "tls-cert = {:?}\ntls-key = {:?}\n\n[[mount]]\npath = \"/git\"\ncgi = \"/usr/lib/git-core/git-http-backend\"\nenv = {{ GIT_PROJECT_ROOT = {:?}, GIT_HTTP_EXPORT_ALL = \"1\" }}\n",
            cert.cert_pem_path(),
            cert.key_pem_path(),
            root.path()
        ),
    )
    .unwrap();
    let gate = {
        let mut cmd = kerbside(realm);
        cmd.args(["gate", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--keytab")
            .arg(realm.keytab());
        GateProcess::from_command(cmd)
    };
    let (p, port) = proxy(realm, &["--proxy", &squid.url()]);
    let out = git(root.path())
        .args(["-c", &format!("http.proxy={}", proxy_url(port))])
        .args(["clone", "-q", &gate.url("/git/project.git"), "clone"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n--- proxy:\n{}\n--- gate:\n{}",
        text(&out),
        p.log(),
        gate.log()
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("clone/README")).unwrap(),
        "through the proxy\n"
    );
    let log = squid.wait_access_log(|l| served_line(l, "CONNECT localhost"));
    for line in log.lines().filter(|l| l.contains(" 200 ")) {
        assert!(line.contains("user=alice@EXAMPLE.TEST"), "{log}");
    }
}

/// NTLM to Squid (its fake helper runs the real connection-bound exchange and logs
/// the user name the client sent), with the password from -u.
#[test]
fn ntlm_to_squid_with_the_password_from_the_command_line() {
    let realm = realm();
    let squid = squid_requiring(realm, ProxyScheme::NtlmFake);
    let origin = EchoUpstream::start();
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &squid.url(),
            "-u",
            "EXAMPLE\\alice:alice-password",
        ],
    );
    let out = curl_via(realm, port, &[], &format!("{}/ntlm", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let out = curl_via(
        realm,
        port,
        &["-p"],
        &format!("{}/ntlm-tunnel", origin.url()),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "CONNECT 127.0.0.1"));
    for line in log.lines().filter(|l| l.contains(" 200 ")) {
        assert!(line.to_lowercase().contains("alice"), "{log}");
    }
    assert!(p.wait_for_log(|l| l.contains("NTLM")), "{}", p.log());
}

/// An upstream that answers 407 to everything, whatever it gets: the client gets a
/// 502 with the reason after a bounded number of tries, never the 407.
#[test]
fn an_upstream_answering_407_forever_is_bounded() {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let realm = realm();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let upstream = common::serve_each_connection(move |stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = writer.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n\
                  Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &format!("127.0.0.1:{upstream}"),
            "--connect-timeout",
            "10",
        ],
    );
    let out = curl_via(realm, port, &[], "http://origin.example/x");
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}\n{}", p.log());
    assert!(body.contains("127.0.0.1"), "{body}");
    let out = curl_via(realm, port, &["-p"], "http://origin.example/t");
    let (body, err) = text(&out);
    assert!(body.contains("502") || err.contains("502"), "{body}{err}");
    let tries = seen.load(Ordering::SeqCst);
    assert!(
        (2..=10).contains(&tries),
        "{tries} requests to the upstream\n{}",
        p.log()
    );
}
