//! `kerbside proxy` answering a proxy's `407 Digest`: Squid with
//! `digest_file_auth` (MD5, the only Digest Squid offers), `-u alice:...` and
//! `--allow-digest-md5`; curl's plain GET and CONNECT tunnel go through and Squid's
//! log names alice for both. A wrong password is a 502 that says so; without
//! `--allow-digest-md5` the 502 says MD5 was refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::{curl, kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ProxyScheme, Squid, SquidOptions, TestRealm, ALICE};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

fn digest_squid() -> Squid {
    Squid::start(
        realm(),
        SquidOptions {
            require_auth: true,
            scheme: ProxyScheme::Digest,
        },
    )
    .unwrap()
}

/// `kerbside proxy` on a free loopback port with `args`, and no Kerberos ticket.
fn proxy(args: &[&str]) -> (GateProcess, u16) {
    let mut cmd = kerbside(realm());
    cmd.env("KRB5CCNAME", "FILE:/nonexistent/kerbside-no-ticket")
        .args(["proxy", "--listen", "127.0.0.1:0", "-v"])
        .args(args);
    let p = GateProcess::from_command(cmd);
    let port = p.url.rsplit(':').next().unwrap().parse().unwrap();
    (p, port)
}

fn curl_via(port: u16, extra: &[&str], url: &str) -> std::process::Output {
    let mut cmd = curl(realm(), &std::env::temp_dir());
    cmd.args(["--noproxy", "", "--max-time", "20", "-i", "--proxy"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(extra)
        .arg(url);
    cmd.output().unwrap()
}

#[test]
fn digest_to_squid_for_a_get_and_a_tunnel() {
    let squid = digest_squid();
    let origin = EchoUpstream::start();
    let login = format!("{}:{}", ALICE.name, ALICE.password);
    let (p, port) = proxy(&["--proxy", &squid.url(), "-u", &login, "--allow-digest-md5"]);
    let out = curl_via(port, &[], &format!("{}/digest-get", origin.url()));
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/digest-get"),
        "{body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    let out = curl_via(port, &["-p"], &format!("{}/digest-tunnel", origin.url()));
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
        let out = curl_via(port, &[], &format!("{}/x", origin.url()));
        let (body, err) = text(&out);
        assert!(
            body.starts_with("HTTP/1.1 502") && body.contains(expected),
            "{args:?}: {body}{err}\n--- proxy:\n{}",
            p.log()
        );
    }
}
