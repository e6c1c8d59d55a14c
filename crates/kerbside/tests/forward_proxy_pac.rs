//! `kerbside proxy --pac`, with real peers: the PAC file served by Python's
//! `http.server`, Squid requiring Negotiate (negotiate_kerberos_auth against the
//! test realm; its access log names the user), curl as the client. PAC routing
//! (direct for one host, through Squid for another, the fallback when the first
//! choice is dead), an unreachable PAC, a PAC that loops forever, a PAC naming a
//! proxy not on the credential allow list, a PAC changed on disk; the PAC's
//! evaluation-time histogram and failure counter, scraped from `--metrics` by curl.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::proxy::{curl_via, proxy, served_line, status_of, wait_for};
use common::{curl, kerbside, text, EchoUpstream};
use kerbside_testkit::{Squid, SquidOptions, TestRealm};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// A loopback port free a moment ago, for `--metrics`.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `--metrics` page on `port`, fetched by curl once it is served.
fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = curl(realm(), &std::env::temp_dir())
            .args(["--max-time", "5", "--fail"])
            .arg(format!("http://127.0.0.1:{port}/metrics"))
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "no metrics: {:?}", text(&out));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the series `series` (name and labels) in a metrics page.
fn metric(page: &str, series: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Python's `http.server` serving `dir` on a free loopback port; stopped on drop.
struct PacServer {
    child: Child,
    port: u16,
}

impl PacServer {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server (Debian's python3 is needed)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "Serving HTTP on 127.0.0.1 port 41235 (http://127.0.0.1:41235/) ..."
                if let Some(port) = line
                    .split(" port ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("http.server did not say its port");
        Self { child, port }
    }

    /// The URL of `name`, by the name `localhost` (so the PAC server's domain is
    /// `localhost`: credentials may go to a proxy called localhost, not to one
    /// called 127.0.0.1).
    fn url(&self, name: &str) -> String {
        format!("http://localhost:{}/{name}", self.port)
    }
}

impl Drop for PacServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn pac_routes_direct_through_squid_and_to_the_fallback() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let squid_port = squid.url().rsplit(':').next().unwrap().to_owned();
    let origin = EchoUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_port();
    std::fs::write(
        dir.path().join("proxy.pac"),
        format!(
            "function FindProxyForURL(url, host) {{
                 if (isInNet(host, '127.0.0.0', '255.0.0.0') && host !== 'localhost') return 'DIRECT';
                 if (url.substring(0, 6) === 'https:')
                     return 'PROXY localhost:{dead}; PROXY localhost:{squid_port}';
                 if (dnsDomainIs(host, 'localhost')) return 'PROXY localhost:{squid_port}; DIRECT';
                 return 'DIRECT';
             }}"
        ),
    )
    .unwrap();
    let server = PacServer::start(dir.path());
    let metrics = free_port();
    let (p, port) = proxy(
        realm,
        &[
            "--pac",
            &server.url("proxy.pac"),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
        ],
    );

    // 127.0.0.1: DIRECT (Squid never sees it).
    let out = curl_via(realm, port, &[], &format!("{}/direct", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    // localhost: through Squid, with alice's ticket.
    let via = format!("http://localhost:{}/via-squid", origin.port);
    let out = curl_via(realm, port, &[], &via);
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/via-squid"));
    assert!(!log.contains("/direct"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("/via-squid") && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
    // A tunnel: the first choice is dead, the second (Squid) carries it.
    let out = curl_via(
        realm,
        port,
        &["-p"],
        &format!("http://localhost:{}/fallback", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("path=/fallback"));
    squid.wait_access_log(|l| served_line(l, "CONNECT localhost"));
    assert!(
        p.wait_for_log(
            |l| l.contains(&format!("localhost:{dead}")) && l.contains("upstream proxy failed")
        ),
        "{}",
        p.log()
    );
    assert!(
        p.wait_for_log(|l| l.contains("proxy.pac answered")),
        "{}",
        p.log()
    );

    // Three evaluations (127.0.0.1, localhost, a tunnel to localhost), each in a
    // bucket; no failure.
    let page = scrape(metrics);
    assert_eq!(
        metric(&page, "kerbside_proxy_pac_evaluation_seconds_count"),
        Some(3),
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(3),
        "{page}"
    );
    assert!(
        page.contains("# TYPE kerbside_proxy_pac_evaluation_seconds histogram"),
        "{page}"
    );
    assert!(
        !page.contains("kerbside_proxy_pac_failures_total{"),
        "{page}"
    );

    // --check reads the same PAC.
    let out = kerbside(realm)
        .args(["proxy", "--pac", &server.url("proxy.pac"), "--check", &via])
        .output()
        .unwrap();
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout.contains("route source: PAC file http://localhost:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "1. http://localhost:{squid_port}: a 407 is answered"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("2. DIRECT"), "{stdout}");
}

#[test]
fn an_unreachable_pac_means_direct_with_a_warning() {
    let realm = realm();
    let origin = EchoUpstream::start();
    let url = format!("http://127.0.0.1:{}/proxy.pac", dead_port());
    let (p, port) = proxy(realm, &["--pac", &url]);
    assert!(
        p.wait_for_log(|l| l.contains("requests go DIRECT until it can be read")),
        "{}",
        p.log()
    );
    let out = curl_via(realm, port, &[], &format!("{}/x", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("path=/x"));
    p.wait_for_log(|l| l.contains("cannot be used"));
    assert!(
        p.wait_for_log(|l| l.contains("cannot be used (cannot fetch")),
        "{}",
        p.log()
    );
}

#[test]
fn a_pac_that_loops_forever_meets_the_time_limit() {
    let realm = realm();
    let origin = EchoUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let pac = dir.path().join("loop.pac");
    std::fs::write(
        &pac,
        "function FindProxyForURL(url, host) { for (;;) { try { } catch (e) { } } }",
    )
    .unwrap();
    let metrics = free_port();
    let (p, port) = proxy(
        realm,
        &[
            "--pac",
            pac.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    let out = curl_via(realm, port, &[], &format!("{}/x", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(
        p.wait_for_log(|l| l.contains("ran longer than the limit of 3000 ms")
            && l.contains("this host goes DIRECT")),
        "{}",
        p.log()
    );
    // The proxy still answers (the next request for the host is cached).
    let out = curl_via(realm, port, &[], &format!("{}/y", origin.url()));
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    // One evaluation (the second answer came from the cache), one time-limit
    // failure, above the 2.5 s bucket (the limit is 3 s).
    let page = scrape(metrics);
    assert_eq!(
        metric(
            &page,
            "kerbside_proxy_pac_failures_total{kind=\"time-limit\"}"
        ),
        Some(1),
        "{page}"
    );
    assert_eq!(
        metric(&page, "kerbside_proxy_pac_evaluation_seconds_count"),
        Some(1),
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"2.5\"}"
        ),
        Some(0),
        "{page}"
    );
}

#[test]
fn a_pac_naming_a_proxy_off_the_allow_list_gets_no_credentials() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let squid_port = squid.url().rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    // Served from localhost, naming 127.0.0.1: not the PAC server's domain.
    std::fs::write(
        dir.path().join("p.pac"),
        format!("function FindProxyForURL(url, host) {{ return 'PROXY 127.0.0.1:{squid_port}'; }}"),
    )
    .unwrap();
    let server = PacServer::start(dir.path());
    let (p, port) = proxy(realm, &["--pac", &server.url("p.pac")]);
    let out = curl_via(realm, port, &[], "http://origin.example/harvest");
    let (body, _) = text(&out);
    assert_eq!(status_of(&out), 502, "{body}\n{}", p.log());
    assert!(
        p.wait_for_log(|l| l.contains("is not on --auth-proxies")),
        "{}",
        p.log()
    );
    let log = squid.wait_access_log(|l| l.contains("/harvest"));
    for line in log.lines().filter(|l| l.contains("/harvest")) {
        assert!(line.contains(" 407 "), "{log}");
        assert!(!line.contains("alice"), "{log}");
    }
    // With --auth-proxies naming it, the same PAC gets the ticket.
    let (p, port) = proxy(
        realm,
        &["--pac", &server.url("p.pac"), "--auth-proxies", "127.0.0.1"],
    );
    let origin = EchoUpstream::start();
    let out = curl_via(
        realm,
        port,
        &[],
        &format!("http://localhost:{}/allowed", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/allowed"));
    assert!(log.contains("user=alice@EXAMPLE.TEST"), "{log}");
}

#[test]
fn a_pac_changed_on_disk_is_read_again() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let pac = dir.path().join("proxy.pac");
    std::fs::write(
        &pac,
        "function FindProxyForURL(url, host) { return 'DIRECT'; }",
    )
    .unwrap();
    let squid_host = squid.url().trim_start_matches("http://").to_owned();
    let (p, port) = proxy(
        realm,
        &[
            "--pac",
            pac.to_str().unwrap(),
            "--auth-proxies",
            "localhost",
        ],
    );
    let url = format!("http://localhost:{}/changed", origin.port);
    let out = curl_via(realm, port, &[], &url);
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(!squid.access_log().contains("/changed"));
    std::fs::write(
        &pac,
        format!("function FindProxyForURL(url, host) {{ return 'PROXY {squid_host}'; }}"),
    )
    .unwrap();
    wait_for("the new PAC to be loaded", || {
        p.log().matches(": loaded").count() >= 2
    });
    let out = curl_via(realm, port, &[], &url);
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    let log = squid.wait_access_log(|l| served_line(l, "/changed"));
    assert!(log.contains("user=alice@EXAMPLE.TEST"), "{log}");
    // Broken now: DIRECT, with a warning.
    std::fs::write(&pac, "function FindProxyForURL(url, host) {").unwrap();
    wait_for("the broken PAC to be noticed", || {
        p.wait_for_log(|l| l.contains("requests go DIRECT until it is fixed"))
    });
    let out = curl_via(
        realm,
        port,
        &[],
        &format!("http://localhost:{}/broken", origin.port),
    );
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), p.log());
    assert!(!squid.access_log().contains("/broken"));
}
