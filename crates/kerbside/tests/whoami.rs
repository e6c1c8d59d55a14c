//! The gate's whoami page (`/.kerbside/whoami`) with curl and kerbside fetch: who the
//! client is and how it logged in, in JSON and HTML, as the gate's mode and the request
//! make it (a token, then the session cookie; channel-bound for kerbside fetch, which
//! sends bindings); never a token or a cookie value; behind authentication; off with an
//! empty path. Firefox's view of it is in tests/firefox.rs.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{curl, kerbside, text, GateProcess, RecordingUpstream};
use kerbside_testkit::{TestCa, TestRealm};

fn body(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

#[test]
fn whoami_says_who_logged_in_and_how_in_json_and_html() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = RecordingUpstream::start();
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
            "--user-map",
            "strip-realm",
        ],
    );
    let url = gate.url("/.kerbside/whoami");
    let jar = realm.dir().join("cookies.txt");

    // No credentials: 401 with the challenge, like any protected path.
    let anonymous = curl(&realm, ca.ca_pem_path())
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(body(&anonymous), "401");

    // curl logs in with a token (and gets the session cookie).
    let first = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-H", "Accept: application/json"])
        .arg("-c")
        .arg(&jar)
        .arg(&url)
        .output()
        .unwrap();
    let json = body(&first);
    for field in [
        r#""authenticated":true"#,
        r#""principal":"alice@EXAMPLE.TEST""#,
        r#""user":"alice""#,
        r#""realm":"EXAMPLE.TEST""#,
        r#""scheme":"Negotiate""#,
        r#""mode":"cookie""#,
        r#""via":"credentials""#,
        r#""session_expires":null"#,
    ] {
        assert!(json.contains(field), "{field} not in {json}");
    }

    // The next request carries only the cookie: the page says so, with its expiry, and
    // shows neither the cookie's value nor any token.
    let second = curl(&realm, ca.ca_pem_path())
        .args(["-H", "Accept: application/json"])
        .arg("-b")
        .arg(&jar)
        .arg(&url)
        .output()
        .unwrap();
    let json = body(&second);
    assert!(json.contains(r#""via":"session-cookie""#), "{json}");
    let expires: u64 = json
        .split(r#""session_expires":"#)
        .nth(1)
        .and_then(|rest| rest.split(['}', ',']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no expiry in {json}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now && expires <= now + 8 * 3600 + 60,
        "{expires} vs {now}"
    );
    let cookies = std::fs::read_to_string(&jar).unwrap();
    let value = cookies
        .lines()
        .find(|l| l.contains("kerbside_session"))
        .and_then(|l| l.split('\t').nth(6))
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"));
    assert!(value.len() > 20 && !json.contains(value), "{json}");
    assert!(!json.contains("YII"), "a token on the page: {json}");

    // HTML for a browser, escaped, with the same facts.
    let html = body(
        &curl(&realm, ca.ca_pem_path())
            .arg("-b")
            .arg(&jar)
            .arg(&url)
            .output()
            .unwrap(),
    );
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<h1>alice@EXAMPLE.TEST</h1>"), "{html}");
    assert!(
        html.contains("session-cookie") && !html.contains(value),
        "{html}"
    );

    // kerbside fetch sends channel bindings: the page says the login was bound.
    let fetched = kerbside(&realm)
        .args(["fetch", "--negotiate", "-H", "Accept: application/json"])
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .arg(&url)
        .output()
        .unwrap();
    let json = body(&fetched);
    assert!(json.contains(r#""channel_bound":true"#), "{json}");
    assert!(
        upstream.requests().is_empty(),
        "the upstream saw the page's requests"
    );
}

#[test]
fn whoami_can_be_turned_off() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = RecordingUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &["--whoami-path", ""]);
    let out = curl(&realm, ca.ca_pem_path())
        .args([
            "--negotiate",
            "-u",
            ":",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(gate.url("/.kerbside/whoami"))
        .output()
        .unwrap();
    assert_eq!(body(&out), "200");
    // The request went to the upstream, as any other path would.
    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(upstream.requests()[0].path, "/.kerbside/whoami");
}
