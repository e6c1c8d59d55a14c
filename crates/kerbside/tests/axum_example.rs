//! kerbside-server as a library in someone else's app: `examples/axum.rs` (an axum
//! router with a public route and a `route_layer(NegotiateLayer)` one) is built with
//! cargo and run as a process against the test realm's keytab; curl --negotiate and
//! `kerbside fetch` log in to it, over plain HTTP (`axum::serve` with connect-info)
//! and over TLS (the example's own accept loop with `PerConnection`).
#![allow(clippy::unwrap_used)]

mod common;

use common::example_app::start;
use common::{curl, kerbside, text};
use kerbside_testkit::{TestCa, TestRealm};

/// `curl -i` with `args` on `url`: the status and the whole answer.
fn curl_get(realm: &TestRealm, ca: &TestCa, args: &[&str], url: &str) -> (u16, String) {
    let out = curl(realm, ca.ca_pem_path())
        .arg("-i")
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let (answer, err) = text(&out);
    assert!(out.status.success(), "curl {args:?} {url}: {err}");
    // The last head counts (curl --negotiate shows the 401 before the 200).
    let last = answer
        .rsplit("HTTP/")
        .next()
        .and_then(|head| head.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (last, answer)
}

#[test]
fn curl_logs_in_to_the_axum_example_and_the_public_route_stays_open() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let app = start(&realm, None);

    let (status, answer) = curl_get(
        &realm,
        &ca,
        &["--negotiate", "-u", ":"],
        &app.url("/private"),
    );
    assert_eq!(status, 200, "{answer}\n{}", app.log());
    assert!(
        answer.contains(
            "private page for alice@EXAMPLE.TEST (scheme Negotiate, realm EXAMPLE.TEST, channel-bound: false)"
        ),
        "{answer}"
    );

    // Without credentials: the layer's 401 with its challenge, not the handler.
    let (status, answer) = curl_get(&realm, &ca, &[], &app.url("/private"));
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer.lines().any(|l| l
            .to_ascii_lowercase()
            .starts_with("www-authenticate: negotiate")),
        "{answer}"
    );
    assert!(!answer.contains("private page"), "{answer}");

    // A token that is not one: 400 from the layer, never the page, never a 500.
    let (status, answer) = curl_get(
        &realm,
        &ca,
        &["-H", "Authorization: Negotiate !!!"],
        &app.url("/private"),
    );
    assert!(matches!(status, 400 | 401), "{answer}");
    assert!(!answer.contains("private page"), "{answer}");

    // The public route is outside the route_layer: no challenge, no login.
    let (status, answer) = curl_get(&realm, &ca, &[], &app.url("/"));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("public page, hello stranger"), "{answer}");
}

#[test]
fn kerbside_fetch_logs_in_to_the_axum_example_over_tls_with_channel_bindings() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let app = start(&realm, Some(&cert));
    assert!(app.url.starts_with("https://"), "{}", app.url);

    // kerbside fetch sends channel bindings by default; the example's PerConnection
    // carries the certificate's, so the login is bound to this TLS channel.
    let out = kerbside(&realm)
        .args(["fetch", "--negotiate", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(app.url("/private"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", app.log());
    assert_eq!(
        body,
        "private page for alice@EXAMPLE.TEST (scheme Negotiate, realm EXAMPLE.TEST, channel-bound: true)\n",
        "{err}"
    );

    // curl over TLS (HTTP/2 by ALPN) logs in too.
    let (status, answer) = curl_get(
        &realm,
        &ca,
        &["--negotiate", "-u", ":"],
        &app.url("/private"),
    );
    assert_eq!(status, 200, "{answer}\n{}", app.log());
    assert!(
        answer.contains("private page for alice@EXAMPLE.TEST"),
        "{answer}"
    );
}
