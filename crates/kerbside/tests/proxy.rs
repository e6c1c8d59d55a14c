//! `kerbside fetch` through Squid requiring Negotiate (Debian's
//! negotiate_kerberos_auth helper): a CONNECT tunnel to an HTTPS origin that wants
//! Negotiate too, and plain HTTP through the proxy.

#![allow(clippy::unwrap_used)]

mod common;

use common::{kerbside, text, EchoUpstream};
use kerbside_testkit::{
    Apache, ApacheOptions, ProxyScheme, Squid, SquidOptions, TestCa, TestRealm,
};

#[test]
fn fetch_authenticates_to_squid_and_then_to_the_origin_inside_the_tunnel() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache = Apache::start(&realm, &cert, ApacheOptions::default()).unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();

    let out = kerbside(&realm)
        .args([
            "fetch",
            "--negotiate",
            "-v",
            "-i",
            "--allow-http-auth=localhost",
        ])
        .args(["--proxy", &squid.url(), "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(apache.url("/private/"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success(),
        "{err}\n--- squid:\n{}\n{}",
        squid.access_log(),
        squid.cache_log()
    );
    assert!(body.contains("x-remote-user: alice@EXAMPLE.TEST"), "{body}");
    assert!(err.contains("CONNECT tunnel"), "{err}");
    assert!(err.contains("Answering the proxy with Negotiate"), "{err}");
    assert!(
        err.contains("Kerberos target HTTP@localhost (the host of the URL (of the proxy))"),
        "{err}"
    );
    assert!(err.contains("Negotiate with the proxy done"), "{err}");
    assert!(err.contains("Answering the server with Negotiate"), "{err}");
    assert!(
        err.contains("407"),
        "the proxy must have asked first: {err}"
    );
    assert!(!err.contains("YII"), "tokens must be redacted: {err}");
    // Squid logs the 407 at once and the tunnel when it closes: wait for the tunnel's line.
    let tunnel_line = |log: &str| {
        log.lines()
            .any(|l| l.contains("CONNECT") && l.contains(" 200 "))
    };
    let log = squid.wait_access_log(tunnel_line);
    assert!(
        log.lines().any(|l| l.contains("CONNECT")
            && l.contains(" 200 ")
            && l.contains("user=alice@EXAMPLE.TEST")),
        "{log}"
    );

    // The proxy speaks plain HTTP: without the opt-in for it, no token goes there.
    let refused = kerbside(&realm)
        .args(["fetch", "--negotiate", "--proxy", &squid.url(), "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(apache.url("/private/"))
        .output()
        .unwrap();
    let (_, err) = text(&refused);
    assert_eq!(refused.status.code(), Some(67), "{err}");
    assert!(
        err.contains("proxy localhost") && err.contains("--allow-http-auth"),
        "{err}"
    );
}

#[test]
fn plain_http_through_squid_from_the_environment() {
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let origin = EchoUpstream::start();
    let out = kerbside(&realm)
        .env("http_proxy", squid.url())
        .args(["fetch", "--negotiate", "-v", "--allow-http-auth=localhost"])
        .arg(format!("{}/through", origin.url()))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", squid.cache_log());
    assert!(body.contains("path=/through"), "{body}");
    assert!(err.contains("Through proxy localhost"), "{err}");
    assert!(err.contains("Negotiate with the proxy done"), "{err}");

    // NO_PROXY sends it directly.
    let out = kerbside(&realm)
        .env("http_proxy", squid.url())
        .env("no_proxy", "127.0.0.1")
        .args(["fetch", "-v"])
        .arg(format!("{}/direct", origin.url()))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(body.contains("path=/direct"), "{body}");
    assert!(!err.contains("Through proxy"), "{err}");
}

/// `kerbside fetch` with no Kerberos ticket, through Squid asking for `scheme`.
fn fetch_through(
    realm: &TestRealm,
    squid: &Squid,
    args: &[&str],
    url: &str,
) -> std::process::Output {
    kerbside(realm)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/no-ticket", realm.dir().display()),
        )
        .args([
            "fetch",
            "-v",
            "--allow-http-auth=localhost",
            "--proxy",
            &squid.url(),
        ])
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
fn ntlm_and_basic_to_squid() {
    let realm = TestRealm::start().unwrap();
    let origin = EchoUpstream::start();
    let url = format!("{}/through", origin.url());

    // NTLM: Squid's ntlm_fake_auth runs the whole connection-bound exchange (it does not
    // check the password); the user it logs is the one the client sent.
    let squid = Squid::start(
        &realm,
        SquidOptions {
            scheme: ProxyScheme::NtlmFake,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let out = fetch_through(
        &realm,
        &squid,
        &["--ntlm", "-u", "EXAMPLE\\alice:alice-password"],
        &url,
    );
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", squid.cache_log());
    assert!(body.contains("path=/through"), "{body}");
    assert!(err.contains("Answering the proxy with NTLM"), "{err}");
    assert!(
        err.contains("NTLM with the proxy done after 2 message(s)"),
        "{err}"
    );
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("/through") && l.contains(" 200 "))
    });
    assert!(
        log.to_ascii_lowercase().contains("user=example\\alice"),
        "{log}"
    );

    // Basic: checked by basic_ncsa_auth against an htpasswd file.
    let squid = Squid::start(
        &realm,
        SquidOptions {
            scheme: ProxyScheme::Basic,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let out = fetch_through(
        &realm,
        &squid,
        &["--basic", "-u", "alice:alice-password"],
        &url,
    );
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", squid.cache_log());
    assert!(body.contains("path=/through"), "{body}");
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("/through") && l.contains(" 200 "))
    });
    assert!(log.contains("user=alice"), "{log}");
    let out = fetch_through(&realm, &squid, &["--basic", "-u", "alice:wrong"], &url);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("refused the Basic credentials"), "{err}");
}
