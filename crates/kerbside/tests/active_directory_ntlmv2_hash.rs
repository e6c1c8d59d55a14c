//! `kerbside proxy` with an `ntlmv2_hash` in the keyring file in front of a Squid whose
//! NTLM is checked by an Active Directory domain controller (Samba, through winbindd's
//! `ntlm_auth`): the hash Debian's real `cntlm -H -u alice -d ADEXAMPLE` prints
//! (inverted back, see docs/corporate-proxy.md) gets a GET and a tunnel through as
//! `ADEXAMPLE\alice`; a hash made for another user is refused by the DC, and the 502
//! says the proxy refused the NTLM credentials and names the likely cause.
//!
//! One domain for the whole binary ([`TestDomain::shared`]).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cntlm::{cntlm_hash, invert};
use common::proxy::{
    ntlmv2_hash_entry, squid_requiring, start_proxy, through_proxy, write_keyring,
};
use common::{clean_env, text, EchoUpstream, GateProcess};
use kerbside_testkit::{
    ProxyScheme, Squid, TestDomain, TestRealm, AD_NETBIOS_DOMAIN, WINBINDD_PRIV_GROUP,
};

/// `cntlm -H -u user -d domain` (Debian's 0.92.3) with `password` on its standard
/// input: its `PassNTLMv2`, inverted back (cntlm 0.92 prints each byte XOR FF).
fn cntlm_ntlmv2_hash(user: &str, domain: &str, password: &str) -> String {
    invert(&cntlm_hash(user, domain, password))
}

fn keyring(dir: &Path, user: &str, hash: &str) -> PathBuf {
    write_keyring(dir, &ntlmv2_hash_entry("localhost", user, hash, ""), 0o600)
}

fn proxy(domain: &TestDomain, keyring: &Path, squid: &Squid) -> GateProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.env("KRB5_CONFIG", domain.krb5_conf())
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/no-ticket", domain.dir().display()),
        )
        .env("KERBSIDE_KEYRING", keyring);
    start_proxy(cmd, &["--proxy", &squid.url()]).0
}

fn curl_via(proxy: &GateProcess, extra: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error"])
        .env_remove("http_proxy")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY");
    through_proxy(cmd, &proxy.url, extra, url).output().unwrap()
}

#[test]
fn an_ntlmv2_hash_from_cntlm_is_checked_by_the_domain_controller() {
    let domain = TestDomain::shared().unwrap();
    domain.grant_privileged_pipe(WINBINDD_PRIV_GROUP).unwrap();
    // Squid needs a realm for its own keytab; the NTLM it asks for is the domain's.
    let realm = TestRealm::start().unwrap();
    let squid = squid_requiring(&realm, ProxyScheme::NtlmWinbind);
    let origin = EchoUpstream::start();
    let alice = format!("{AD_NETBIOS_DOMAIN}\\alice");

    let dir = tempfile::tempdir().unwrap();
    let hash = cntlm_ntlmv2_hash("alice", AD_NETBIOS_DOMAIN, "alice-password");
    let p = proxy(domain, &keyring(dir.path(), &alice, &hash), &squid);
    for (extra, path) in [(&[][..], "/ad-v2-get"), (&["-p"][..], "/ad-v2-tunnel")] {
        let out = curl_via(&p, extra, &format!("{}{path}", origin.url()));
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
            .any(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "))
    });
    for what in ["/ad-v2-get", "CONNECT 127.0.0.1"] {
        assert!(
            log.lines().any(|l| l.contains(what)
                && l.contains(" 200 ")
                && l.to_ascii_lowercase().contains("user=adexample\\alice")),
            "{what}: {log}"
        );
    }
    assert!(!p.log().contains(&hash), "{}", p.log());

    // A hash made for bob (with alice's password), in alice's entry: the DC refuses it.
    let dir = tempfile::tempdir().unwrap();
    let for_bob = cntlm_ntlmv2_hash("bob", AD_NETBIOS_DOMAIN, "alice-password");
    let p = proxy(domain, &keyring(dir.path(), &alice, &for_bob), &squid);
    let out = curl_via(&p, &[], &format!("{}/ad-v2-wrong", origin.url()));
    let (body, err) = text(&out);
    assert!(
        body.starts_with("HTTP/1.1 502")
            && body.contains("refused the NTLM credentials: wrong user name, domain or password")
            && body.contains("holds an ntlmv2_hash for ADEXAMPLE\\alice")
            && body.contains("made for another user or domain"),
        "{body}{err}\n--- proxy:\n{}",
        p.log()
    );
    assert!(!body.contains(&for_bob) && !p.log().contains(&for_bob));
}
