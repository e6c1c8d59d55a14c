//! `kerbside proxy` answering a proxy's `407 Digest`: Squid with
//! `digest_file_auth` (MD5, the only Digest Squid offers), `-u alice:...` and
//! `--allow-digest-md5`; curl's plain GET and CONNECT tunnel go through and Squid's
//! log names alice for both. A wrong password is a 502 that says so; without
//! `--allow-digest-md5` the 502 says MD5 was refused. With `nonce_max_count 2` Squid
//! calls a nonce stale after two requests: later requests (kerbside sends the login
//! Squid took at once, with the next nonce count) answer its `stale=true` challenge once
//! and all get through as alice; each leg of an origin's NTLM exchange behind it takes
//! the next nonce count.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::proxy::{curl_via, proxy_without_ticket, squid_requiring, write_keyring};
use common::{curl, text, EchoUpstream, GateProcess};
use kerbside_testkit::{
    ProxyScheme, PyNtlmOptions, PyNtlmServer, Squid, TestRealm, ALICE, NTLM_DOMAIN,
};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

fn digest_squid() -> Squid {
    squid_with(ProxyScheme::Digest)
}

fn squid_with(scheme: ProxyScheme) -> Squid {
    squid_requiring(realm(), scheme)
}

/// `kerbside proxy` on a free loopback port with `args`, and no Kerberos ticket.
fn proxy(args: &[&str]) -> (GateProcess, u16) {
    proxy_without_ticket(realm(), None, args)
}

#[test]
fn digest_to_squid_for_a_get_and_a_tunnel() {
    let squid = digest_squid();
    let origin = EchoUpstream::start();
    let login = format!("{}:{}", ALICE.name, ALICE.password);
    let (p, port) = proxy(&["--proxy", &squid.url(), "-u", &login, "--allow-digest-md5"]);
    let out = curl_via(realm(), port, &[], &format!("{}/digest-get", origin.url()));
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/digest-get"),
        "{body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    let out = curl_via(
        realm(),
        port,
        &["-p"],
        &format!("{}/digest-tunnel", origin.url()),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/digest-tunnel"),
        "{body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
    });
    for what in ["GET http://127.0.0.1", "CONNECT 127.0.0.1"] {
        let line = log
            .lines()
            .find(|l| l.contains(what) && l.contains(" 200 "))
            .unwrap_or_else(|| panic!("{what}: {log}"));
        assert!(line.contains("user=alice"), "{log}");
    }
    assert!(
        !p.log().contains(ALICE.password),
        "no password in the log: {}",
        p.log()
    );
}

#[test]
fn a_wrong_digest_password_and_md5_not_allowed_are_clear_502s() {
    let squid = digest_squid();
    let origin = EchoUpstream::start();
    let url = squid.url();
    for (args, expected) in [
        (
            vec!["-u", "alice:wrong-password", "--allow-digest-md5"],
            "refused the Digest credentials: wrong user name or password",
        ),
        (vec!["-u", "alice:alice-password"], "MD5"),
    ] {
        let mut all = vec!["--proxy", url.as_str()];
        all.extend(args.iter().copied());
        let (p, port) = proxy(&all);
        let out = curl_via(realm(), port, &[], &format!("{}/x", origin.url()));
        let (body, err) = text(&out);
        assert!(
            body.starts_with("HTTP/1.1 502") && body.contains(expected),
            "{args:?}: {body}{err}\n--- proxy:\n{}",
            p.log()
        );
    }
}

#[test]
fn a_nonce_squid_calls_stale_is_answered_again_for_gets_and_tunnels() {
    let squid = squid_with(ProxyScheme::DigestNonceMaxCount(2));
    let origin = EchoUpstream::start();
    let login = format!("{}:{}", ALICE.name, ALICE.password);
    let (p, port) = proxy(&["--proxy", &squid.url(), "-u", &login, "--allow-digest-md5"]);
    // Seven plain GETs on one keep-alive connection from curl.
    let urls: Vec<String> = (0..7)
        .map(|i| format!("{}/stale-get-{i}", origin.url()))
        .collect();
    let mut cmd = curl(realm(), &std::env::temp_dir());
    cmd.args([
        "--noproxy",
        "",
        "--max-time",
        "30",
        "-i",
        "-w",
        "<connects=%{num_connects}>",
    ])
    .arg("--proxy")
    .arg(format!("http://127.0.0.1:{port}"))
    .args(&urls);
    let out = cmd.output().unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.matches("HTTP/1.1 200").count() == 7,
        "{body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    // curl connected once: one keep-alive connection to kerbside carried all seven.
    assert_eq!(body.matches("<connects=1>").count(), 1, "{body}");
    assert_eq!(body.matches("<connects=0>").count(), 6, "{body}");
    // Five tunnels, each its own CONNECT.
    for i in 0..5 {
        let out = curl_via(
            realm(),
            port,
            &["-p"],
            &format!("{}/stale-tunnel-{i}", origin.url()),
        );
        let (body, err) = text(&out);
        assert!(
            out.status.success() && body.contains(&format!("path=/stale-tunnel-{i}")),
            "{i}: {body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
            p.log(),
            squid.cache_log()
        );
    }
    let log = squid.wait_access_log(|l| {
        l.lines()
            .filter(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
            .count()
            == 5
    });
    for i in 0..7 {
        let what = format!("/stale-get-{i}\"");
        let line = log
            .lines()
            .find(|l| l.contains(&what) && l.contains(" 200 "))
            .unwrap_or_else(|| panic!("{what}: {log}"));
        assert!(line.contains("user=alice"), "{what}: {log}");
    }
    let tunnels: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
        .collect();
    assert!(
        tunnels.len() == 5 && tunnels.iter().all(|l| l.contains("user=alice")),
        "{log}"
    );
    // Eight tunnels and GETs at once share the login: nonce counts may reach Squid out
    // of order (it then calls the nonce stale); each request answers once with a
    // nonce of its own, and none fails.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = curl(realm(), &std::env::temp_dir());
            cmd.args(["--noproxy", "", "--max-time", "30", "-i", "--proxy"])
                .arg(format!("http://127.0.0.1:{port}"))
                .args(if i % 2 == 0 { &["-p"][..] } else { &[][..] })
                .arg(format!("{}/at-once-{i}", origin.url()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let (body, err) = text(&out);
        assert!(
            out.status.success() && body.contains(&format!("path=/at-once-{i}")),
            "{i}: {body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
            p.log(),
            squid.access_log()
        );
    }
    // Squid did call the nonce stale, and kerbside answered without an error.
    let proxy_log = p.log();
    assert!(
        proxy_log.contains("the proxy says the Digest nonce is stale"),
        "{proxy_log}\n--- squid:\n{log}"
    );
    // The login Squid took goes with later requests at once: fewer 407s than requests.
    let challenges = log.lines().filter(|l| l.contains(" 407 ")).count();
    assert!(challenges < 12, "{challenges} 407s for 12 requests: {log}");
    assert!(!proxy_log.contains(ALICE.password), "{proxy_log}");
}

#[test]
fn each_leg_of_an_origin_ntlm_exchange_takes_the_next_nonce_count() {
    let squid = squid_with(ProxyScheme::DigestNonceMaxCount(2));
    let checking = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keyring = write_keyring(
        dir.path(),
        &format!(
            "[[credential]]\nhost = 'localhost'\nuser = '{user}'\npassword = '{pw}'\n\
             schemes = ['digest']\n\n[[credential]]\nhost = '127.0.0.1'\n\
             user = '{NTLM_DOMAIN}\\{user}'\npassword = '{pw}'\nschemes = ['ntlm']\n",
            user = ALICE.name,
            pw = ALICE.password
        ),
        0o600,
    );
    let (p, port) = proxy_without_ticket(
        realm(),
        Some(&keyring),
        &[
            "--proxy",
            &squid.url(),
            "--allow-digest-md5",
            "--origin-auth",
        ],
    );
    // The origin's NTLM takes three legs through Squid, each with Digest credentials
    // for Squid: twice over, so later legs run past nonce_max_count too.
    for i in 0..2 {
        let out = curl_via(realm(), port, &[], &checking.url(&format!("/private/{i}")));
        let (body, err) = text(&out);
        assert!(
            body.starts_with("HTTP/1.1 200")
                && body
                    .to_ascii_lowercase()
                    .contains("x-remote-user: example\\alice"),
            "{i}: {body}{err}\n--- proxy:\n{}\n--- squid:\n{}\n--- server:\n{}",
            p.log(),
            squid.access_log(),
            checking.log()
        );
    }
}
