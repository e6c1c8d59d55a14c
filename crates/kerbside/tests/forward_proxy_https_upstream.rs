//! `kerbside proxy` with an `https://` upstream proxy: TLS to the proxy (HAProxy
//! terminating TLS with a private CA's certificate, in front of Squid requiring
//! Negotiate: Debian's Squid has no `https_port`), then the same plain-HTTP,
//! `CONNECT` and `407` handling inside it. curl, with only the local proxy
//! configured, gets a plain GET and an HTTPS tunnel (TLS inside TLS) through; Squid's
//! log names alice for both. A PAC's `HTTPS host:port` is used the same way. A
//! proxy certificate the `--proxy-cacert` file does not vouch for gives a 502 that
//! says so, or, with another upstream listed, the next one is used and the failed
//! one skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::proxy::{curl_via_command, start_proxy};
use common::{kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{Haproxy, Squid, SquidOptions, TestCa, TestRealm};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// `kerbside proxy` on a free loopback port with `args`.
fn proxy(realm: &TestRealm, args: &[&str]) -> (GateProcess, u16) {
    start_proxy(kerbside(realm), args)
}

/// curl with only `--proxy http://127.0.0.1:port`, trusting `ca` for origins.
fn curl_via(port: u16, ca: &std::path::Path, extra: &[&str], url: &str) -> std::process::Output {
    curl_via_command(realm(), ca, port, extra, url)
        .output()
        .unwrap()
}

/// Squid requiring Negotiate, behind HAProxy terminating TLS with a certificate
/// of `ca` for localhost.
fn tls_squid(ca: &TestCa) -> (Squid, Haproxy) {
    let squid = Squid::start(realm(), SquidOptions::default()).unwrap();
    let cert = ca.issue(&[]);
    let tls = Haproxy::tls_terminator(&cert, squid.port()).unwrap();
    (squid, tls)
}

#[test]
fn plain_get_and_tls_in_tls_tunnel_through_an_https_upstream_with_negotiate() {
    let realm = realm();
    let ca = TestCa::new();
    let (squid, tls) = tls_squid(&ca);
    let origin = EchoUpstream::start();
    let upstream = format!("https://localhost:{}", tls.port());
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &upstream,
            "--proxy-cacert",
            ca.ca_pem_path().to_str().unwrap(),
        ],
    );

    // A plain-HTTP GET: absolute form inside TLS to the proxy.
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &[],
        &format!("{}/plain", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/plain"),
        "{body}{err}\n--- proxy:\n{}\n--- haproxy:\n{}\n--- squid:\n{}",
        p.log(),
        tls.log(),
        squid.cache_log()
    );

    // HTTPS to a kerberized gate: CONNECT inside TLS to the proxy, curl's own TLS
    // (and Negotiate to the gate) inside the tunnel.
    let cert = ca.issue(&[]);
    let gate_origin = EchoUpstream::start();
    let gate = GateProcess::start(realm, Some(&cert), &gate_origin.url(), &[]);
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &["--negotiate", "-u", ":"],
        &gate.url("/secret"),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("alice@EXAMPLE.TEST"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );

    // The client library does the same for `kerbside fetch -x https://...`: with TLS
    // to the proxy, Negotiate needs no --allow-http-auth.
    let mut fetch = kerbside(realm);
    fetch
        .args(["fetch", "--negotiate", "-x", &upstream, "--proxy-cacert"])
        .arg(ca.ca_pem_path())
        .arg(format!("{}/fetched", origin.url()));
    let out = fetch.output().unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/fetched"),
        "{body}{err}"
    );

    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("CONNECT localhost") && l.contains(" 200 "))
    });
    let fetched = log
        .lines()
        .find(|l| l.contains("/fetched") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(fetched.contains("user=alice@EXAMPLE.TEST"), "{log}");
    let get = log
        .lines()
        .find(|l| l.contains("GET http://127.0.0.1") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(get.contains("user=alice@EXAMPLE.TEST"), "{log}");
    let connect = log
        .lines()
        .find(|l| l.contains("CONNECT localhost") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(connect.contains("user=alice@EXAMPLE.TEST"), "{log}");
    assert!(!p.log().contains("YII"), "tokens redacted: {}", p.log());
}

#[test]
fn a_pac_https_entry_is_used_with_tls_to_the_proxy() {
    let realm = realm();
    let ca = TestCa::new();
    let (squid, tls) = tls_squid(&ca);
    let origin = EchoUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let pac = dir.path().join("proxy.pac");
    std::fs::write(
        &pac,
        format!(
            "function FindProxyForURL(url, host) {{ return \"HTTPS localhost:{}\"; }}\n",
            tls.port()
        ),
    )
    .unwrap();
    let (p, port) = proxy(
        realm,
        &[
            "--pac",
            pac.to_str().unwrap(),
            "--auth-proxies",
            "localhost",
            "--proxy-cacert",
            ca.ca_pem_path().to_str().unwrap(),
        ],
    );
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &["-p"],
        &format!("{}/pac", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/pac"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
    });
    let connect = log
        .lines()
        .find(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(connect.contains("user=alice@EXAMPLE.TEST"), "{log}");
}

#[test]
fn a_proxy_certificate_of_another_ca_gives_a_clear_502() {
    let realm = realm();
    let ca = TestCa::new();
    let (_squid, tls) = tls_squid(&ca);
    let other = TestCa::new();
    let origin = EchoUpstream::start();
    let upstream = format!("https://localhost:{}", tls.port());
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &upstream,
            "--proxy-cacert",
            other.ca_pem_path().to_str().unwrap(),
        ],
    );
    // TestCa's CAs share one name: the proxy's certificate names the other file's
    // CA as issuer, and its signature does not verify with it.
    let expected = format!(
        "TLS handshake with the proxy localhost:{} failed: the signature on the proxy's \
         certificate does not verify with the CA of that name in {} (--proxy-cacert)",
        tls.port(),
        other.ca_pem_path().display()
    );
    let out = curl_via(port, ca.ca_pem_path(), &[], &format!("{}/x", origin.url()));
    let (body, err) = text(&out);
    assert!(
        body.starts_with("HTTP/1.1 502") && body.contains(&expected),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    // A tunnel: curl says the CONNECT got 502; the proxy's log says why.
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &["-p"],
        &format!("{}/x", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        !out.status.success() && format!("{body}{err}").contains("502"),
        "{body}{err}"
    );
    assert!(
        p.wait_for_log(|l| l.matches(expected.as_str()).count() >= 2),
        "{}",
        p.log()
    );
}

/// A TLS failure with an `https://` proxy is the proxy's failure, as a refused TCP
/// connection is: the next upstream is used (here the same Squid over plain HTTP)
/// and the failed one is skipped for the next requests.
#[test]
fn a_proxy_whose_tls_fails_is_skipped_for_the_next_upstream() {
    let realm = realm();
    let ca = TestCa::new();
    let (squid, tls) = tls_squid(&ca);
    let other = TestCa::new();
    let origin = EchoUpstream::start();
    let list = format!(
        "https://localhost:{},http://localhost:{}",
        tls.port(),
        squid.port()
    );
    let (p, port) = proxy(
        realm,
        &[
            "--proxy",
            &list,
            "--proxy-cacert",
            other.ca_pem_path().to_str().unwrap(),
        ],
    );
    let failed = format!(
        "TLS handshake with the proxy localhost:{} failed",
        tls.port()
    );
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &[],
        &format!("{}/first", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        body.starts_with("HTTP/1.1 200"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    assert!(
        p.wait_for_log(|l| l.contains("upstream proxy failed") && l.contains(&failed)),
        "{}",
        p.log()
    );
    let tried = p.log().matches(failed.as_str()).count();
    // A tunnel now goes to the plain Squid first: no second TLS attempt.
    let out = curl_via(
        port,
        ca.ca_pem_path(),
        &["-p"],
        &format!("{}/second", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("HTTP/1.1 200"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    assert_eq!(
        p.log().matches(failed.as_str()).count(),
        tried,
        "the failed proxy was not tried again: {}",
        p.log()
    );
    let log = squid.wait_access_log(|log| {
        log.lines()
            .any(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
    });
    assert!(
        log.lines()
            .any(|l| l.contains("/first") && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("CONNECT 127.0.0.1")
            && l.contains(" 200 ")
            && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );
}
