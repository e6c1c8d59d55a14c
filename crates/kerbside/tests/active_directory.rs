//! The gate against Active Directory: a Samba AD domain controller ([`TestDomain`]) issues
//! the tickets (with a PAC), the gate's keytabs are exported from the domain, and curl and
//! `kerbside fetch` log in as domain users.
//!
//! One domain for the whole binary ([`TestDomain::shared`]): provisioning costs seconds.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use common::{clean_env, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ServiceKeys, TestCa, TestCert, TestDomain};

/// How many groups the user `many` is in: about what gives a 15 KB `Authorization` header.
const MANY_GROUPS: usize = 1200;

/// The domain, with the accounts and keytabs every test here uses.
struct Ad {
    domain: &'static TestDomain,
    /// `HTTP/localhost`, an AES-only service account (`msDS-SupportedEncryptionTypes = 24`).
    aes_keytab: PathBuf,
    /// `HTTP/127.0.0.1`, a service account with AD's default: RC4.
    rc4_keytab: PathBuf,
}

fn ad() -> &'static Ad {
    static AD: OnceLock<Ad> = OnceLock::new();
    AD.get_or_init(|| {
        let started = Instant::now();
        let domain = TestDomain::shared().unwrap();
        eprintln!(
            "test domain provisioned and started in {:?}",
            started.elapsed()
        );
        domain
            .add_service_account("svc-gate-aes", &["HTTP/localhost"], ServiceKeys::AesOnly)
            .unwrap();
        domain
            .add_service_account("svc-gate-rc4", &["HTTP/127.0.0.1"], ServiceKeys::Rc4Default)
            .unwrap();
        let aes_keytab = domain.dir().join("gate-aes.keytab");
        let rc4_keytab = domain.dir().join("gate-rc4.keytab");
        domain.export_keytab("HTTP/localhost", &aes_keytab).unwrap();
        domain.export_keytab("HTTP/127.0.0.1", &rc4_keytab).unwrap();
        domain
            .kinit("alice", "alice-password", &domain.user_ccache("alice"))
            .unwrap();
        let started = Instant::now();
        domain.add_user("many", "many-password").unwrap();
        domain
            .add_user_to_new_groups("many", "many", MANY_GROUPS)
            .unwrap();
        domain
            .kinit("many", "many-password", &domain.user_ccache("many"))
            .unwrap();
        eprintln!(
            "user in {MANY_GROUPS} groups made and logged in in {:?}",
            started.elapsed()
        );
        Ad {
            domain,
            aes_keytab,
            rc4_keytab,
        }
    })
}

/// A CA and a certificate for `localhost` and `127.0.0.1`.
fn tls() -> (TestCa, TestCert) {
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    (ca, cert)
}

/// A gate on HTTPS with `keytab`, in front of `upstream`, seeing the domain's krb5.conf.
fn gate(ad: &Ad, keytab: &Path, cert: &TestCert, upstream: &EchoUpstream) -> GateProcess {
    let rcache = tempfile::Builder::new()
        .prefix("rcache-")
        .tempdir_in(ad.domain.dir())
        .unwrap()
        .keep();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
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

/// curl with `user`'s ticket cache, trusting `ca`, Negotiate.
fn curl_as(ad: &Ad, user: &str, ca: &TestCa) -> Command {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache(user));
    cmd.envs(ad.domain.env())
        .env("KRB5CCNAME", ccache)
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(["--negotiate", "-u", ":"]);
    cmd
}

/// `kerbside fetch --negotiate` with alice's ticket cache, trusting `ca`.
fn fetch_as_alice(ad: &Ad, ca: &TestCa) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
        .arg("fetch")
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .arg("--negotiate");
    cmd
}

/// The encryption type of the ticket for `service` in `user`'s cache (`klist -e`).
fn ticket_etype(ad: &Ad, user: &str, service: &str) -> String {
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache(user));
    let out = ad
        .domain
        .command("klist")
        .arg("-e")
        .env("KRB5CCNAME", ccache)
        .output()
        .unwrap();
    let (list, err) = text(&out);
    assert!(out.status.success(), "klist: {err}");
    list.lines()
        .skip_while(|l| !l.contains(&format!("{service}@")))
        .nth(1)
        .and_then(|l| l.split("Etype (skey, tkt): ").nth(1))
        .unwrap_or_else(|| panic!("no ticket for {service}: {list}"))
        .trim()
        .to_owned()
}

#[test]
fn aes_keytab_from_ad_accepts_curl_and_fetch() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = EchoUpstream::start();
    let gate = gate(ad, &ad.aes_keytab, &cert, &upstream);
    let url = gate.url("/aes");

    let out = curl_as(ad, "alice", &ca).arg(&url).output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "curl: {err}\n{}", gate.log());
    assert!(
        body.contains("users=alice@AD.EXAMPLE.TEST\n"),
        "{body}\n{}",
        gate.log()
    );
    let etype = ticket_etype(ad, "alice", "HTTP/localhost");
    assert!(
        etype.ends_with("aes256-cts-hmac-sha1-96"),
        "the ticket to an AES-only account is AES: {etype}"
    );

    let out = fetch_as_alice(ad, &ca).arg(&url).output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "fetch: {err}\n{}", gate.log());
    assert!(body.contains("users=alice@AD.EXAMPLE.TEST\n"), "{body}");
}

#[test]
fn rc4_keytab_from_ad_accepts_curl_and_fetch() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = EchoUpstream::start();
    let gate = gate(ad, &ad.rc4_keytab, &cert, &upstream);
    // The RC4 account's SPN is HTTP/127.0.0.1: clients ask for the host they connect to.
    let url = gate.url("/rc4").replace("localhost", "127.0.0.1");

    let out = curl_as(ad, "alice", &ca).arg(&url).output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "curl: {err}\n{}", gate.log());
    assert!(
        body.contains("users=alice@AD.EXAMPLE.TEST\n"),
        "{body}\n{}",
        gate.log()
    );
    let etype = ticket_etype(ad, "alice", "HTTP/127.0.0.1");
    assert!(
        etype.ends_with("arcfour-hmac"),
        "AD issues RC4 tickets to an account without msDS-SupportedEncryptionTypes: {etype}"
    );

    let out = fetch_as_alice(ad, &ca).arg(&url).output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "fetch: {err}\n{}", gate.log());
    assert!(body.contains("users=alice@AD.EXAMPLE.TEST\n"), "{body}");
}

#[test]
fn a_user_in_many_groups_logs_in_over_http1_and_http2() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = EchoUpstream::start();
    let gate = gate(ad, &ad.aes_keytab, &cert, &upstream);
    let url = gate.url("/many");
    for version in ["--http1.1", "--http2"] {
        let out = curl_as(ad, "many", &ca)
            .arg(version)
            .args(["-v", "-w", "%{http_code} %{http_version}\n"])
            .arg(&url)
            .output()
            .unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "{version}: {err}\n{}", gate.log());
        assert!(
            body.contains("users=many@AD.EXAMPLE.TEST\n"),
            "{version}: {body}\n{}",
            gate.log()
        );
        let expected = if version == "--http2" {
            "200 2"
        } else {
            "200 1.1"
        };
        assert!(
            body.ends_with(&format!("{expected}\n")),
            "{version}: {body}"
        );
        // The token is big because the ticket carries a PAC listing every group.
        let header = err
            .lines()
            .find_map(|l| {
                let l = l.strip_prefix("> ")?;
                l.strip_prefix("Authorization: Negotiate ")
                    .or_else(|| l.strip_prefix("authorization: Negotiate "))
            })
            .unwrap_or_else(|| panic!("{version}: no Authorization header sent: {err}"));
        assert!(
            header.len() > 12 * 1024,
            "{version}: the Negotiate token of a user in {MANY_GROUPS} groups is only {} bytes",
            header.len()
        );
        eprintln!(
            "{version}: Authorization header of {} bytes",
            header.len() + "Authorization: Negotiate ".len()
        );
    }
}
