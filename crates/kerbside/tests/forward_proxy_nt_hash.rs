//! `kerbside proxy` with an NTLM password stored only as its NT hash (the keyring
//! file's `nt_hash`, written by `kerbside nt-hash --host`, cntlm's `PassNT`): NTLMv2
//! to Squid with its NTLM helper (Squid's log names the user), NTLMv2 to an origin
//! whose pyspnego acceptor checks the password (so the hash is the right one); a
//! Basic-only Squid gets nothing and the client a 502 that says why; a keyring file
//! others can read is refused as for a password.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::cntlm::with_password;
use common::proxy::{curl_via, proxy_without_ticket, squid_requiring, write_keyring};
use common::{kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ProxyScheme, PyNtlmOptions, PyNtlmServer, TestRealm, ALICE, NTLM_DOMAIN};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// `kerbside nt-hash USER --host HOST` with `password` on its standard input: the
/// keyring entry it prints.
fn nt_hash_entry(user: &str, host: &str, password: &str) -> String {
    let mut cmd = kerbside(realm());
    cmd.args(["nt-hash", user, "--host", host]);
    let stdout = with_password(cmd, password);
    assert!(!stdout.contains(password), "{stdout}");
    stdout
}

/// A keyring file (mode `mode`) holding NT-hash entries of alice for `hosts`.
fn keyring(dir: &Path, hosts: &[&str], mode: u32) -> PathBuf {
    let user = format!("{NTLM_DOMAIN}\\{}", ALICE.name);
    let text: String = hosts
        .iter()
        .map(|h| nt_hash_entry(&user, h, ALICE.password))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("nt_hash = \""), "{text}");
    assert!(!text.contains("password"), "{text}");
    write_keyring(dir, &text, mode)
}

/// `kerbside proxy` on a free loopback port with the keyring and `args`.
fn proxy(keyring: &Path, args: &[&str]) -> (GateProcess, u16) {
    // No ticket: NTLM is the only way in.
    proxy_without_ticket(realm(), Some(keyring), args)
}

#[test]
fn an_nt_hash_answers_squid_ntlm_and_an_origin_that_checks_the_password() {
    let squid = squid_requiring(realm(), ProxyScheme::NtlmFake);
    let origin = EchoUpstream::start();
    let checking = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring(dir.path(), &["localhost", "127.0.0.1"], 0o600);
    // localhost goes through Squid; 127.0.0.1 (the pyspnego server) directly, its
    // 401 NTLM answered (--origin-auth).
    let (p, port) = proxy(
        &keyring,
        &[
            "--proxy",
            &squid.url(),
            "--noproxy",
            "127.0.0.1",
            "--origin-auth",
        ],
    );

    let out = curl_via(
        realm(),
        port,
        &[],
        &format!("http://localhost:{}/via-squid", origin.port),
    );
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/via-squid"),
        "{body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
        p.log(),
        squid.cache_log()
    );
    let log = squid.wait_access_log(|l| l.contains("/via-squid") && l.contains(" 200 "));
    let line = log
        .lines()
        .find(|l| l.contains("/via-squid") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("user=alice") || line.contains("user=EXAMPLE"),
        "{log}"
    );
    assert!(
        p.wait_for_log(|l| l.contains("from the keyring file")),
        "{}",
        p.log()
    );

    let out = curl_via(realm(), port, &[], &checking.url("/private/"));
    let (body, err) = text(&out);
    assert!(
        body.starts_with("HTTP/1.1 200")
            && body
                .to_ascii_lowercase()
                .contains("x-remote-user: example\\alice"),
        "{body}{err}\n--- proxy:\n{}\n--- server:\n{}",
        p.log(),
        checking.log()
    );
}

#[test]
fn an_nt_hash_is_refused_for_basic_with_a_clear_502() {
    let squid = squid_requiring(realm(), ProxyScheme::Basic);
    let origin = EchoUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring(dir.path(), &["localhost"], 0o600);
    let (p, port) = proxy(&keyring, &["--proxy", &squid.url()]);
    let out = curl_via(
        realm(),
        port,
        &[],
        &format!("http://localhost:{}/basic", origin.port),
    );
    let (body, err) = text(&out);
    assert!(
        body.starts_with("HTTP/1.1 502")
            && body.contains("asks for Basic, which needs EXAMPLE\\alice's password, but the keyring file holds only its NT hash"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    // Nothing went to Squid but the request that got its 407.
    let log = squid.access_log();
    assert!(!log.contains(" 200 "), "{log}");
}

#[test]
fn a_keyring_others_can_read_is_refused_with_an_nt_hash_too() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring(dir.path(), &["localhost"], 0o644);
    let out = kerbside(realm())
        .env("KERBSIDE_KEYRING", &keyring)
        .args([
            "proxy",
            "--proxy",
            "localhost:1",
            "--check",
            "http://example.test/",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}
