//! Service keys the Active Directory way, against a Samba AD domain controller
//! ([`TestDomain`]): what `kerbside gate --check` says about AD's default RC4 accounts and
//! AES accounts, and a password change of the gate's service account (kvno + 1) while
//! the gate runs, with the new keys added to its keytab: tickets from before and after
//! the change both let in, by curl and by `kerbside fetch`, with no restart.
//!
//! One domain for the whole binary ([`TestDomain::shared`]).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{clean_env, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ServiceKeys, TestCa, TestCert, TestDomain};

fn domain() -> &'static TestDomain {
    TestDomain::shared().unwrap()
}

/// `kerbside gate --check` with `keytab`, a certificate for `host` only, and alice as the
/// test principal (password in a file) asking for `HTTP@host`.
fn check(keytab: &Path, host: &str) -> (Option<i32>, String) {
    let domain = domain();
    let ca = TestCa::new();
    let cert = ca.issue(&[host]);
    let upstream = EchoUpstream::start();
    let password = domain.dir().join("alice.password");
    std::fs::write(&password, "alice-password\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    let out = cmd
        .envs(domain.env())
        .env_remove("KRB5CCNAME")
        .args(["gate", "--check", "--keytab"])
        .arg(keytab)
        .args(["--upstream", &upstream.url(), "--tls-cert"])
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path())
        .args(["--check-principal", "alice", "--check-password-file"])
        .arg(&password)
        .args(["--check-spn", &format!("HTTP@{host}")])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

#[test]
fn check_warns_about_rc4_accounts_and_not_about_aes_ones() {
    let domain = domain();
    domain
        .add_service_account(
            "svc-chk-rc4",
            &["HTTP/rc4.ad.example.test"],
            ServiceKeys::Rc4Default,
        )
        .unwrap();
    domain
        .add_service_account(
            "svc-chk-aes",
            &["HTTP/aes.ad.example.test"],
            ServiceKeys::AesOnly,
        )
        .unwrap();
    let rc4 = domain.dir().join("chk-rc4.keytab");
    let aes = domain.dir().join("chk-aes.keytab");
    domain
        .export_keytab("HTTP/rc4.ad.example.test", &rc4)
        .unwrap();
    domain
        .export_keytab("HTTP/aes.ad.example.test", &aes)
        .unwrap();

    let (code, out) = check(&rc4, "rc4.ad.example.test");
    assert_eq!(
        code,
        Some(0),
        "RC4 works today: a warning, not a problem: {out}"
    );
    // A new account's keys are at kvno 2 (`user add`, then its random password is set).
    // Samba's KDC gives no initial ticket to an SPN as a client name, so the KDC is
    // asked as the test principal.
    assert!(
        out.contains(
            "keytab entry: HTTP/rc4.ad.example.test@AD.EXAMPLE.TEST kvno 2 (arcfour-hmac)"
        ),
        "{out}"
    );
    assert!(
        out.contains("the KDC encrypts tickets for HTTP/rc4.ad.example.test@AD.EXAMPLE.TEST with kvno 2 (arcfour-hmac), which the keytab holds (asked as alice)"),
        "{out}"
    );
    let warning = out
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("RC4"))
        .unwrap_or_else(|| panic!("no RC4 warning: {out}"));
    for words in [
        "msDS-SupportedEncryptionTypes",
        "to 24",
        "ktpass /crypto AES256-SHA1",
        "HTTP/rc4.ad.example.test@AD.EXAMPLE.TEST",
    ] {
        assert!(warning.contains(words), "{words:?} missing: {warning}");
    }
    assert!(
        out.contains("alice@AD.EXAMPLE.TEST would be let in"),
        "{out}"
    );

    let (code, out) = check(&aes, "aes.ad.example.test");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("the KDC encrypts tickets for HTTP/aes.ad.example.test@AD.EXAMPLE.TEST with kvno 2 (aes256-cts-hmac-sha1-96), which the keytab holds"),
        "{out}"
    );
    assert!(!out.contains("RC4"), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");
}

/// curl with the ticket cache `ccache`, trusting `ca`, Negotiate.
fn curl(ccache: &Path, ca: &TestCa, url: &str) -> Output {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    let mut name = std::ffi::OsString::from("FILE:");
    name.push(ccache);
    cmd.envs(domain().env())
        .env("KRB5CCNAME", name)
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-w", "%{http_code}\n", url])
        .output()
        .unwrap()
}

/// `kerbside fetch --negotiate` with the ticket cache `ccache`.
fn fetch(ccache: &Path, ca: &TestCa, url: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    let mut name = std::ffi::OsString::from("FILE:");
    name.push(ccache);
    cmd.envs(domain().env())
        .env("KRB5CCNAME", name)
        .arg("fetch")
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .args(["--negotiate", url])
        .output()
        .unwrap()
}

/// The kvnos a keytab holds, as MIT's `klist -k` reads them.
fn keytab_kvnos(keytab: &Path) -> Vec<u32> {
    let out = domain()
        .command("klist")
        .arg("-k")
        .arg(keytab)
        .output()
        .unwrap();
    let (list, err) = text(&out);
    assert!(out.status.success(), "klist -k: {err}");
    let mut kvnos: Vec<u32> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    kvnos.dedup();
    kvnos
}

/// A gate on HTTPS with `keytab` in front of `upstream`.
fn gate(keytab: &Path, cert: &TestCert, upstream: &EchoUpstream) -> GateProcess {
    let domain = domain();
    let rcache = tempfile::Builder::new()
        .prefix("rcache-")
        .tempdir_in(domain.dir())
        .unwrap()
        .keep();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(domain.env())
        .env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", &rcache)
        .arg("gate")
        .args(["--listen", "127.0.0.1:0", "--upstream", &upstream.url()])
        .arg("--keytab")
        .arg(keytab)
        .arg("--tls-cert")
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path());
    GateProcess::from_command(cmd)
}

fn assert_let_in(what: &str, out: &Output, gate: &GateProcess) {
    let (body, err) = text(out);
    assert!(out.status.success(), "{what}: {err}\n{}", gate.log());
    assert!(
        body.contains("users=alice@AD.EXAMPLE.TEST\n"),
        "{what}: {body}\n{}",
        gate.log()
    );
}

#[test]
fn a_password_change_under_a_running_gate_keeps_old_and_new_tickets_working() {
    let domain = domain();
    domain
        .add_service_account("svc-rotate", &["HTTP/localhost"], ServiceKeys::AesOnly)
        .unwrap();
    let keytab = domain.dir().join("rotate.keytab");
    domain.export_keytab("HTTP/localhost", &keytab).unwrap();
    let old = keytab_kvnos(&keytab);
    assert_eq!(old.len(), 1, "{old:?}");
    let (old, new) = (old[0], old[0] + 1);
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = EchoUpstream::start();
    let gate = gate(&keytab, &cert, &upstream);
    let url = gate.url("/rotate");

    // Tickets to HTTP/localhost at the old kvno, kept in the caches of curl and fetch.
    let before = domain.dir().join("rotate-before.ccache");
    let before_fetch = domain.dir().join("rotate-before-fetch.ccache");
    domain.kinit("alice", "alice-password", &before).unwrap();
    domain
        .kinit("alice", "alice-password", &before_fetch)
        .unwrap();
    assert_let_in("curl before", &curl(&before, &ca, &url), &gate);
    assert_let_in("fetch before", &fetch(&before_fetch, &ca, &url), &gate);

    // The account's password changes: AD makes new keys at kvno + 1.
    domain
        .samba_tool(&[
            "user",
            "setpassword",
            "svc-rotate",
            "--newpassword=Rotated-pw-1",
        ])
        .unwrap();
    let (code, out) = check(&keytab, "localhost");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("the keytab is stale: the service's key was changed (kvno {new} at the KDC, {old} in the keytab): export a new keytab")),
        "{out}"
    );

    // The new keys are added to the keytab the gate is reading (exportkeytab appends).
    domain.export_keytab("HTTP/localhost", &keytab).unwrap();
    let kvnos = keytab_kvnos(&keytab);
    assert!(kvnos.contains(&old) && kvnos.contains(&new), "{kvnos:?}");
    let (code, out) = check(&keytab, "localhost");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "with kvno {new} (aes256-cts-hmac-sha1-96), which the keytab holds"
        )),
        "{out}"
    );

    // Old tickets (the old kvno, from the caches) and new ones (fresh caches), without
    // restarting the gate.
    let after = domain.dir().join("rotate-after.ccache");
    let after_fetch = domain.dir().join("rotate-after-fetch.ccache");
    domain.kinit("alice", "alice-password", &after).unwrap();
    domain
        .kinit("alice", "alice-password", &after_fetch)
        .unwrap();
    assert_let_in("curl, ticket from before", &curl(&before, &ca, &url), &gate);
    assert_let_in(
        "fetch, ticket from before",
        &fetch(&before_fetch, &ca, &url),
        &gate,
    );
    assert_let_in("curl, ticket from after", &curl(&after, &ca, &url), &gate);
    assert_let_in(
        "fetch, ticket from after",
        &fetch(&after_fetch, &ca, &url),
        &gate,
    );
    for (ccache, kvno) in [(&before, old), (&after, new)] {
        let found = ticket_kvno(ccache, "HTTP/localhost");
        assert_eq!(found, kvno, "{}", ccache.display());
    }
}

/// The kvno of the cached ticket for `service` in `ccache`, as MIT's `kvno --cached-only`
/// reads it (without asking the KDC).
fn ticket_kvno(ccache: &Path, service: &str) -> u32 {
    let mut name = std::ffi::OsString::from("FILE:");
    name.push(ccache);
    let out = domain()
        .command("kvno")
        .env("KRB5CCNAME", name)
        .arg("--cached-only")
        .arg(service)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "kvno: {stderr}");
    stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("kvno said {stdout}"))
}
