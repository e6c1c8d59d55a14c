//! `kerbside proxy` with an `ntlmv2_hash` in the keyring file (cntlm's `PassNTLMv2`,
//! NTOWFv2 bound to one user and domain): the hash Debian's real `cntlm -H -u alice -d
//! EXAMPLE` prints (bit-inverted, as cntlm 0.92 writes its hashes) is the one `kerbside
//! nt-hash 'EXAMPLE\alice'` prints once inverted back; with it kerbside gets through
//! Squid's NTLM (a GET and a tunnel; Squid's log names alice) and through an origin whose
//! pyspnego acceptor checks the password. A hash made for another user, or cntlm's
//! inverted text as is, is a 502 that names the likely cause; Digest and Basic get the
//! same clear 502 an `nt_hash` gets.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::cntlm::{cntlm_hash, invert, pass_ntlmv2, with_password, CNTLM};
use common::proxy::{
    curl_via, ntlmv2_hash_entry, proxy_without_ticket, squid_requiring, write_keyring,
};
use common::{kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ProxyScheme, PyNtlmOptions, PyNtlmServer, TestRealm, ALICE, NTLM_DOMAIN};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// A keyring file (mode 600) holding `user`'s `ntlmv2_hash` for `hosts`.
fn keyring(dir: &Path, user: &str, hash: &str, hosts: &[&str]) -> PathBuf {
    let text: String = hosts
        .iter()
        .map(|h| ntlmv2_hash_entry(h, user, hash, "schemes = [\"ntlm\"]\n"))
        .collect::<Vec<_>>()
        .join("\n");
    write_keyring(dir, &text, 0o600)
}

/// `kerbside proxy` on a free loopback port with the keyring and `args`, no ticket.
fn proxy(keyring: &Path, args: &[&str]) -> (GateProcess, u16) {
    proxy_without_ticket(realm(), Some(keyring), args)
}

fn alice() -> String {
    format!("{NTLM_DOMAIN}\\{}", ALICE.name)
}

#[test]
fn kerbside_nt_hash_prints_what_cntlm_prints_inverted_back() {
    let from_cntlm = invert(&cntlm_hash(ALICE.name, NTLM_DOMAIN, ALICE.password));
    let mut cmd = kerbside(realm());
    cmd.args(["nt-hash", &alice()]);
    let out = with_password(cmd, ALICE.password);
    assert!(!out.contains(ALICE.password), "{out}");
    let (ours, comment) = pass_ntlmv2(&out);
    assert_eq!(ours, from_cntlm, "{out}");
    assert_eq!(comment, "# Only for user 'alice', domain 'EXAMPLE'");
    // Its PassNT (the keyring's `nt_hash`) is cntlm's inverted too.
    let pass_nt = |out: &str| -> String {
        let line = out.lines().find(|l| l.starts_with("PassNT ")).unwrap();
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    let mut cmd = Command::new(CNTLM);
    cmd.args(["-c", "/dev/null", "-H", "-u", "alice", "-d", NTLM_DOMAIN]);
    assert_eq!(
        invert(&pass_nt(&with_password(cmd, ALICE.password))),
        pass_nt(&out)
    );
    // cntlm upper-cases user and domain: another spelling, the same hash.
    assert_eq!(
        invert(&cntlm_hash("Alice", "example", ALICE.password)),
        ours
    );
    // --ntlmv2 --host: a keyring entry with it.
    let mut cmd = kerbside(realm());
    cmd.args(["nt-hash", &alice(), "--host", "proxy.example", "--ntlmv2"]);
    let entry = with_password(cmd, ALICE.password);
    assert!(
        entry.contains(&format!("ntlmv2_hash = \"{ours}\"")) && !entry.contains("nt_hash ="),
        "{entry}"
    );
    // Without a domain there is no NTLMv2 hash to make.
    let out = kerbside(realm())
        .args(["nt-hash", "alice", "--host", "h", "--ntlmv2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(
        !out.status.success() && err.contains("'DOMAIN\\user'"),
        "{err}"
    );
}

#[test]
fn a_cntlm_ntlmv2_hash_gets_through_squid_ntlm_and_an_origin_that_checks_it() {
    let squid = squid_requiring(realm(), ProxyScheme::NtlmFake);
    let origin = EchoUpstream::start();
    let checking = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let hash = invert(&cntlm_hash(ALICE.name, NTLM_DOMAIN, ALICE.password));
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring(dir.path(), &alice(), &hash, &["localhost", "127.0.0.1"]);
    // localhost goes through Squid; 127.0.0.1 (the pyspnego server) directly, its 401
    // NTLM answered (--origin-auth).
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
    let base = format!("http://localhost:{}", origin.port);
    for (extra, path) in [(&[][..], "/v2-get"), (&["-p"][..], "/v2-tunnel")] {
        let out = curl_via(realm(), port, extra, &format!("{base}{path}"));
        let (body, err) = text(&out);
        assert!(
            out.status.success() && body.contains(&format!("path={path}")),
            "{path}: {body}{err}\n--- proxy:\n{}\n--- squid:\n{}",
            p.log(),
            squid.cache_log()
        );
    }
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains("CONNECT localhost") && l.contains(" 200 "))
    });
    for what in ["/v2-get", "CONNECT localhost"] {
        let line = log
            .lines()
            .find(|l| l.contains(what) && l.contains(" 200 "))
            .unwrap_or_else(|| panic!("{what}: {log}"));
        assert!(line.contains("user=EXAMPLE\\alice"), "{what}: {log}");
    }

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
    assert!(!p.log().contains(&hash), "{}", p.log());
}

#[test]
fn a_hash_made_for_another_user_or_left_inverted_is_a_clear_502() {
    let checking = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
    let for_bob = invert(&cntlm_hash("bob", NTLM_DOMAIN, ALICE.password));
    let as_printed = cntlm_hash(ALICE.name, NTLM_DOMAIN, ALICE.password);
    for hash in [for_bob, as_printed] {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring(dir.path(), &alice(), &hash, &["127.0.0.1"]);
        let (p, port) = proxy(&keyring, &["--origin-auth"]);
        let out = curl_via(realm(), port, &[], &checking.url("/private/"));
        let (body, err) = text(&out);
        assert!(
            body.starts_with("HTTP/1.1 502")
                && body.contains("refused the NTLM credentials")
                && body.contains("holds an ntlmv2_hash for EXAMPLE\\alice")
                && body.contains("made for another user or domain")
                && body.contains("kerbside nt-hash --ntlmv2"),
            "{body}{err}\n--- proxy:\n{}\n--- server:\n{}",
            p.log(),
            checking.log()
        );
        assert!(!body.contains(&hash) && !p.log().contains(&hash));
    }
}

#[test]
fn an_ntlmv2_hash_is_refused_for_digest_and_basic_with_a_clear_502() {
    let origin = EchoUpstream::start();
    let hash = invert(&cntlm_hash(ALICE.name, NTLM_DOMAIN, ALICE.password));
    for scheme in [ProxyScheme::Digest, ProxyScheme::Basic] {
        let squid = squid_requiring(realm(), scheme);
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring(dir.path(), &alice(), &hash, &["localhost"]);
        let (p, port) = proxy(&keyring, &["--proxy", &squid.url(), "--allow-digest-md5"]);
        let out = curl_via(
            realm(),
            port,
            &[],
            &format!("http://localhost:{}/x", origin.port),
        );
        let (body, err) = text(&out);
        assert!(
            body.starts_with("HTTP/1.1 502")
                && body.contains("which needs EXAMPLE\\alice's password, but the keyring file holds only its NTLMv2 hash (ntlmv2_hash)"),
            "{scheme:?}: {body}{err}\n--- proxy:\n{}",
            p.log()
        );
        let log = squid.access_log();
        assert!(!log.contains(" 200 "), "{log}");
    }
}
