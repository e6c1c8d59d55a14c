//! NTLM and passwords for Active Directory accounts, against a Samba AD domain controller
//! ([`TestDomain`]): the gate with `--ntlm-winbind` has the DC check NTLM through winbindd
//! (curl, requests-ntlm, curl's SPNEGO with gss-ntlmssp, kerbside fetch), wrong, locked and
//! disabled accounts are refused in words; a domain user logged in with NTLM is named
//! (`Erin@AD.EXAMPLE.TEST`, the account's own case) and grouped (nested groups, for access
//! rules and the groups header) exactly as with Kerberos.
//!
//! One domain for the whole binary ([`TestDomain::shared`]): provisioning costs seconds.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::{clean_env, text, EchoUpstream, GateProcess};
use kerbside_testkit::{
    run_curl, run_curl_env, run_password_client, CurlRun, ProxyScheme, ServiceKeys, Squid,
    SquidOptions, TestCa, TestCert, TestDomain, TestRealm, WINBINDD_PRIV_GROUP,
};

/// The domain, with the accounts and keytab every test here uses.
struct Ad {
    domain: &'static TestDomain,
    /// `HTTP/localhost`, an AES-only service account.
    keytab: PathBuf,
    /// The domain's krb5.conf with `canonicalize = true`: the KDC then answers an
    /// enterprise name (a UPN) with the account's principal.
    canon_krb5_conf: PathBuf,
    ca: TestCa,
    cert: TestCert,
}

fn ad() -> &'static Ad {
    static AD: OnceLock<Ad> = OnceLock::new();
    AD.get_or_init(|| {
        let domain = TestDomain::shared().unwrap();
        domain
            .add_service_account("svc-ntlm-gate", &["HTTP/localhost"], ServiceKeys::AesOnly)
            .unwrap();
        let keytab = domain.dir().join("gate.keytab");
        domain.export_keytab("HTTP/localhost", &keytab).unwrap();
        domain
            .kinit("alice", "alice-password", &domain.user_ccache("alice"))
            .unwrap();
        // carol is disabled; dave is locked after two wrong passwords (his own policy).
        domain.add_user("carol", "carol-password").unwrap();
        domain.disable_user("carol").unwrap();
        domain.add_user("dave", "dave-password").unwrap();
        domain.lock_after_wrong_passwords("dave", 2).unwrap();
        // Erin (a capital in her account name) is in ntlm-developers through
        // ntlm-frontend; alice is in neither.
        domain.add_group("ntlm-developers").unwrap();
        domain.add_group("ntlm-frontend").unwrap();
        domain
            .add_group_member("ntlm-developers", "ntlm-frontend")
            .unwrap();
        domain.add_group_member("ntlm-frontend", "Erin").unwrap();
        domain
            .kinit("erin", "erin-password", &domain.user_ccache("erin"))
            .unwrap();
        let conf = std::fs::read_to_string(domain.krb5_conf()).unwrap();
        let canon_krb5_conf = domain.dir().join("krb5-canonicalize.conf");
        std::fs::write(
            &canon_krb5_conf,
            conf.replacen(
                "[libdefaults]\n",
                "[libdefaults]\n    canonicalize = true\n",
                1,
            ),
        )
        .unwrap();
        // In the domain's directory, which its watchdog removes: this CA is never dropped.
        let ca = TestCa::new_in(domain.dir());
        let cert = ca.issue(&[]);
        Ad {
            domain,
            keytab,
            canon_krb5_conf,
            ca,
            cert,
        }
    })
}

/// How the gate is told to take NTLM through winbind.
#[derive(Clone, Copy, PartialEq)]
enum Setting {
    /// `--ntlm-winbind --ntlm-winbind-smb-conf FILE`.
    Flags,
    /// `ntlm-winbind = true` and `ntlm-winbind-smb-conf` in the `--config` file.
    ConfigFile,
}

/// A gate on HTTPS in connection mode with the domain's keytab and NTLM checked by the DC.
fn ntlm_gate(ad: &Ad, upstream: &EchoUpstream, setting: Setting, extra: &[&str]) -> GateProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
        .env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", ad.domain.dir())
        .env("RUST_LOG", "info")
        .arg("gate")
        .args(["--listen", "127.0.0.1:0", "--upstream", &upstream.url()])
        .args(["--auth", "connection"]);
    match setting {
        Setting::Flags => {
            cmd.arg("--ntlm-winbind")
                .arg("--ntlm-winbind-smb-conf")
                .arg(ad.domain.smb_conf());
        }
        Setting::ConfigFile => {
            let config = ad.domain.dir().join("gate-ntlm-winbind.toml");
            std::fs::write(
                &config,
                format!(
                    "ntlm-winbind = true\nntlm-winbind-smb-conf = {:?}\n",
                    ad.domain.smb_conf()
                ),
            )
            .unwrap();
            cmd.arg("--config").arg(config);
        }
    }
    cmd.arg("--keytab")
        .arg(&ad.keytab)
        .arg("--tls-cert")
        .arg(ad.cert.cert_pem_path())
        .arg("--tls-key")
        .arg(ad.cert.key_pem_path())
        .args(extra);
    GateProcess::from_command(cmd)
}

fn curl(args: &[&str]) -> CurlRun {
    run_curl(args, Some(ad().ca.ca_pem_path())).unwrap()
}

/// `users=…` as the echo upstream saw it.
const ALICE: &str = "users=alice@AD.EXAMPLE.TEST\n";

#[test]
fn domain_users_log_in_with_ntlm_as_with_kerberos() {
    let ad = ad();
    let upstream = EchoUpstream::start();
    let gate = ntlm_gate(ad, &upstream, Setting::Flags, &["--ntlm-in-negotiate"]);
    let url = gate.url("/");
    assert!(
        gate.log()
            .contains("domain controller of ADEXAMPLE (ad.example.test, realm AD.EXAMPLE.TEST)"),
        "{}",
        gate.log()
    );

    // Kerberos first: the identity NTLM must match.
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache("alice"));
    let krb5_conf = ad.domain.krb5_conf().as_os_str();
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &url],
        Some(ad.ca.ca_pem_path()),
        &[("KRB5CCNAME", &ccache), ("KRB5_CONFIG", krb5_conf)],
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(run.body.contains(ALICE), "{}", run.body);

    // curl's NTLM, with the NetBIOS domain, the DNS domain, and another case.
    for login in [
        "ADEXAMPLE\\alice:alice-password",
        "ad.example.test\\ALICE:alice-password",
        "alice:alice-password",
    ] {
        let run = curl(&["--ntlm", "-u", login, &url]);
        assert_eq!(run.status, 200, "{login}: {run:?}\n{}", gate.log());
        assert!(run.body.contains(ALICE), "{login}: {}", run.body);
    }

    // requests-ntlm (pyspnego): a MIC and TLS channel bindings, both checked with the
    // session key the DC returned; then two requests on the authenticated connection.
    let facts = run_password_client(&[
        "requests-ntlm",
        &url,
        "--user",
        "ADEXAMPLE\\alice",
        "--password",
        "alice-password",
        "--ca",
        ad.ca.ca_pem_path().to_str().unwrap(),
        "--count",
        "3",
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, gate.log());
    assert_eq!(
        facts.get("statuses"),
        "401,401,200,200,200",
        "{}",
        facts.raw
    );
    assert!(
        gate.wait_for_log(|l| l.lines().any(|l| l.contains("authenticated with NTLM")
            && l.contains("alice@AD.EXAMPLE.TEST")
            && l.contains("channel_bound=true"))),
        "{}",
        gate.log()
    );

    // kerbside fetch --ntlm.
    let mut fetch = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut fetch);
    let out = fetch
        .env("KRB5_CONFIG", krb5_conf)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/none", ad.domain.dir().display()),
        )
        .args([
            "fetch",
            "--ntlm",
            "-u",
            "ADEXAMPLE\\alice:alice-password",
            "--cacert",
        ])
        .arg(ad.ca.ca_pem_path())
        .arg(&url)
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "fetch: {err}\n{}", gate.log());
    assert!(body.contains(ALICE), "{body}");

    // NTLM inside SPNEGO: curl --negotiate with no ticket and a gss-ntlmssp credential.
    let cred = ad.domain.dir().join("ntlm-client");
    std::fs::write(&cred, "ADEXAMPLE:alice:alice-password\n").unwrap();
    let none = format!("FILE:{}/no-ticket", ad.domain.dir().display());
    let env: Vec<(&str, &OsStr)> = vec![
        ("NTLM_USER_FILE", cred.as_os_str()),
        ("NTLMUSER", OsStr::new("ADEXAMPLE\\alice")),
        ("KRB5CCNAME", OsStr::new(&none)),
        ("KRB5_CONFIG", krb5_conf),
    ];
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &url],
        Some(ad.ca.ca_pem_path()),
        &env,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(run.body.contains(ALICE), "{}", run.body);
    assert!(
        gate.wait_for_log(|l| l.contains("authenticated with NTLM inside Negotiate")),
        "{}",
        gate.log()
    );
    std::fs::write(&cred, "ADEXAMPLE:alice:wrong\n").unwrap();
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &url],
        Some(ad.ca.ca_pem_path()),
        &env,
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");
}

#[test]
fn wrong_locked_and_disabled_domain_accounts_are_refused_in_words() {
    let ad = ad();
    let upstream = EchoUpstream::start();
    let gate = ntlm_gate(ad, &upstream, Setting::ConfigFile, &[]);
    let url = gate.url("/");
    let refused_with = |login: &str, words: &str| {
        let before = gate.log().len();
        let run = curl(&["--ntlm", "-u", login, &url]);
        assert_eq!(run.status, 401, "{login}: {run:?}\n{}", gate.log());
        assert!(
            gate.wait_for_log(|l| l[before..]
                .lines()
                .any(|l| l.contains("NTLM credentials refused") && l.contains(words))),
            "{login}: no refusal saying {words:?}:\n{}",
            gate.log()
        );
    };
    refused_with(
        "ADEXAMPLE\\bob:wrong",
        "bob@AD.EXAMPLE.TEST: wrong password",
    );
    refused_with("ADEXAMPLE\\nobody:x", "no such account");
    refused_with("ADEXAMPLE\\carol:carol-password", "the account is disabled");
    refused_with(
        "OTHER\\alice:alice-password",
        "its own domain ADEXAMPLE only",
    );
    refused_with("alice@ad.example.test:alice-password", "is a UPN");
    // Two wrong passwords lock dave; then even the right one is refused, as locked.
    refused_with("ADEXAMPLE\\dave:wrong", "wrong password");
    refused_with("ADEXAMPLE\\dave:wrong", "wrong password");
    refused_with("ADEXAMPLE\\dave:dave-password", "the account is locked out");
    let log = gate.log();
    for secret in ["alice-password", "carol-password", "dave-password"] {
        assert!(!log.contains(secret), "a password reached the log:\n{log}");
    }
    // And bob with his password still gets in on a new connection.
    let run = curl(&["--ntlm", "-u", "ADEXAMPLE\\bob:bob-password", &url]);
    assert_eq!(run.status, 200, "{run:?}\n{log}");
    assert!(
        run.body.contains("users=bob@AD.EXAMPLE.TEST\n"),
        "{}",
        run.body
    );
}

/// A gate on HTTPS with Basic checked against the domain's KDC and the keytab.
fn basic_gate(ad: &Ad, upstream: &EchoUpstream, canonicalize: bool, extra: &[&str]) -> GateProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env());
    if canonicalize {
        cmd.env("KRB5_CONFIG", &ad.canon_krb5_conf);
    }
    cmd.env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", ad.domain.dir())
        .env("RUST_LOG", "info")
        .arg("gate")
        .args(["--listen", "127.0.0.1:0", "--upstream", &upstream.url()])
        .arg("--basic-fallback")
        .arg("--keytab")
        .arg(&ad.keytab)
        .arg("--tls-cert")
        .arg(ad.cert.cert_pem_path())
        .arg("--tls-key")
        .arg(ad.cert.key_pem_path())
        .args(extra);
    GateProcess::from_command(cmd)
}

#[test]
fn basic_fallback_takes_the_names_ad_users_type() {
    let ad = ad();
    let upstream = EchoUpstream::start();
    let gate = basic_gate(ad, &upstream, true, &["--netbios-domain", "ADEXAMPLE"]);
    let url = gate.url("/");
    // The account's name, its UPN (an enterprise name the KDC canonicalizes, as
    // `canonicalize = true` in krb5.conf asks), and the NetBIOS form all log bob in as
    // bob@AD.EXAMPLE.TEST.
    for login in [
        "bob:bob-password",
        "bob@ad.example.test:bob-password",
        "ADEXAMPLE\\bob:bob-password",
        "adexample\\bob:bob-password",
    ] {
        let run = curl(&["--basic", "-u", login, &url]);
        assert_eq!(run.status, 200, "{login}: {run:?}\n{}", gate.log());
        assert!(
            run.body.contains("users=bob@AD.EXAMPLE.TEST\n"),
            "{login}: {}",
            run.body
        );
    }
    let refused_with = |login: &str, words: &str| {
        let before = gate.log().len();
        let run = curl(&["--basic", "-u", login, &url]);
        assert_eq!(run.status, 401, "{login}: {run:?}\n{}", gate.log());
        assert!(
            gate.wait_for_log(|l| l[before..]
                .lines()
                .any(|l| l.contains("Basic credentials refused") && l.contains(words))),
            "{login}: no refusal saying {words:?}:\n{}",
            gate.log()
        );
    };
    refused_with("bob:wrong", "refused the password");
    refused_with("ADEXAMPLE\\bob:wrong", "refused the password");
    refused_with("bob@ad.example.test:wrong", "refused the password");
    refused_with(
        "carol:carol-password",
        "locked out after too many wrong passwords, or disabled",
    );
    refused_with(
        "OTHER\\bob:bob-password",
        "not this realm's NetBIOS domain ADEXAMPLE",
    );
    let log = gate.log();
    assert!(
        !log.contains("run kinit"),
        "a wrong password is not a missing ticket:\n{log}"
    );
    assert!(
        !log.contains("bob-password"),
        "a password reached the log:\n{log}"
    );

    // Without --netbios-domain, the realm's first label is the NetBIOS name.
    let gate = basic_gate(ad, &upstream, false, &[]);
    let run = curl(&["--basic", "-u", "AD\\bob:bob-password", &gate.url("/")]);
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(
        run.body.contains("users=bob@AD.EXAMPLE.TEST\n"),
        "{}",
        run.body
    );
    // Without `canonicalize = true` the KDC leaves a UPN as it was typed, but the ticket's
    // PAC names the account: bob@AD.EXAMPLE.TEST all the same, and no warning (the gate
    // says to set canonicalize only for a ticket without a PAC to name the account from).
    let run = curl(&[
        "--basic",
        "-u",
        "bob@ad.example.test:bob-password",
        &gate.url("/"),
    ]);
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(
        run.body.contains("users=bob@AD.EXAMPLE.TEST\n"),
        "{}",
        run.body
    );
    assert!(
        gate.wait_for_log(|l| l.contains("bob@AD.EXAMPLE.TEST path=/")
            && l.matches("authenticated with Basic").count() == 2),
        "{}",
        gate.log()
    );
    assert!(
        !gate.log().contains("set `canonicalize = true`"),
        "{}",
        gate.log()
    );
}

/// `kerbside fetch` with the domain's krb5.conf, no ticket cache, trusting the test CA.
fn fetch(ad: &Ad) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.env("KRB5_CONFIG", &ad.canon_krb5_conf)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/no-ticket", ad.domain.dir().display()),
        )
        .arg("fetch")
        .arg("--cacert")
        .arg(ad.ca.ca_pem_path());
    cmd
}

#[test]
fn fetch_gets_tickets_from_ad_with_a_password_in_each_name_form() {
    let ad = ad();
    let upstream = EchoUpstream::start();
    let gate = ntlm_gate(ad, &upstream, Setting::Flags, &[]);
    let url = gate.url("/");
    // An AS exchange with the DC for the account, the principal, and the UPN (sent as
    // an enterprise name the DC canonicalizes: `canonicalize = true` in krb5.conf);
    // Negotiate with the ticket.
    for user in ["bob", "bob@AD.EXAMPLE.TEST", "bob@ad.example.test"] {
        let out = fetch(ad)
            .args(["--negotiate", "-v", "-u", &format!("{user}:bob-password")])
            .arg(&url)
            .output()
            .unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "{user}: {err}\n{}", gate.log());
        assert!(
            body.contains("users=bob@AD.EXAMPLE.TEST\n"),
            "{user}: {body}"
        );
        assert!(
            !err.contains("bob-password"),
            "{user}: the password in -v: {err}"
        );
    }
    // Kerberos, not a password scheme: the gate's plain "authenticated" line.
    let kerberos_logins = gate
        .log()
        .lines()
        .filter(|l| l.contains(" authenticated ") && l.contains("principal=bob@AD.EXAMPLE.TEST"))
        .count();
    assert_eq!(kerberos_logins, 3, "{}", gate.log());
    // The NetBIOS form is an NTLM name: NTLMv2 with the domain's password, checked by
    // the DC through winbind.
    let out = fetch(ad)
        .args(["--ntlm", "-u", "ADEXAMPLE\\bob:bob-password"])
        .arg(&url)
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert!(body.contains("users=bob@AD.EXAMPLE.TEST\n"), "{body}");
    // A wrong password: the KDC's refusal in words, not "run kinit".
    let out = fetch(ad)
        .args(["--negotiate", "-u", "bob@ad.example.test:wrong"])
        .arg(&url)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("refused the password of bob@ad.example.test"),
        "{err}"
    );
    // A disabled account: the KDC revokes its credentials.
    let out = fetch(ad)
        .args(["--negotiate", "-u", "carol:carol-password"])
        .arg(&url)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("locked out after too many wrong passwords, or disabled"),
        "{err}"
    );
}

#[test]
fn the_tunnel_logs_in_to_the_gate_with_an_ad_ticket() {
    let ad = ad();
    let upstream = EchoUpstream::start();
    let gate = ntlm_gate(ad, &upstream, Setting::Flags, &[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
        .args(["tunnel", "--listen", "127.0.0.1:0", "--to", &gate.url("/")])
        .arg("--cacert")
        .arg(ad.ca.ca_pem_path());
    let tunnel = GateProcess::from_command(cmd);
    // curl with no Kerberos at all: the tunnel uses alice's AD ticket.
    let run = run_curl(&[&tunnel.url("/through")], None).unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}\n{}", tunnel.log(), gate.log());
    assert!(run.body.contains(ALICE), "{}", run.body);
}

#[test]
fn fetch_answers_an_ad_backed_squid_with_ntlm() {
    let ad = ad();
    ad.domain
        .grant_privileged_pipe(WINBINDD_PRIV_GROUP)
        .unwrap();
    // Squid needs a realm for its own keytab; the NTLM it asks for is the domain's.
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(
        &realm,
        SquidOptions {
            scheme: ProxyScheme::NtlmWinbind,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let origin = EchoUpstream::start();
    let url = format!("{}/through-squid", origin.url());
    let through = |login: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
        clean_env(&mut cmd);
        cmd.env("KRB5_CONFIG", ad.domain.krb5_conf())
            .env(
                "KRB5CCNAME",
                format!("FILE:{}/no-ticket", ad.domain.dir().display()),
            )
            .args([
                "fetch",
                "-v",
                "--allow-http-auth=localhost",
                "--proxy",
                &squid.url(),
            ])
            .args(["--ntlm", "-u", login])
            .arg(&url)
            .output()
            .unwrap()
    };
    // The 407 from Squid is answered with NTLMv2; ntlm_auth has the DC check it.
    let out = through("ADEXAMPLE\\alice:alice-password");
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", squid.cache_log());
    assert!(body.contains("path=/through-squid"), "{body}");
    assert!(err.contains("407"), "{err}");
    assert!(err.contains("Answering the proxy with NTLM"), "{err}");
    let log = squid.wait_access_log(|l| l.contains("/through-squid") && l.contains(" 200 "));
    assert!(
        log.lines().any(|l| l.contains("/through-squid")
            && l.contains(" 200 ")
            && l.to_ascii_lowercase().contains("user=adexample\\alice")),
        "{log}"
    );
    // A wrong password: the DC refuses, Squid answers 407 again, fetch gives up.
    let out = through("ADEXAMPLE\\alice:wrong");
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("407"), "{err}");

    // `kerbside proxy` in front of it, with the domain credentials: curl, with no
    // credentials of its own, gets through; Squid logs the domain user.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.env("KRB5_CONFIG", ad.domain.krb5_conf())
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/no-ticket", ad.domain.dir().display()),
        )
        .args(["proxy", "--listen", "127.0.0.1:0", "--proxy", &squid.url()])
        .args(["-u", "ADEXAMPLE\\bob:bob-password"]);
    let proxy = GateProcess::from_command(cmd);
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--proxy",
            &proxy.url,
        ])
        .arg(format!("{}/via-kerbside-proxy", origin.url()))
        .env_remove("http_proxy")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(
        out.status.success() && body.contains("path=/via-kerbside-proxy"),
        "{body}{err}\n{}\n{}",
        proxy.log(),
        squid.cache_log()
    );
    let log = squid.wait_access_log(|l| l.contains("/via-kerbside-proxy") && l.contains(" 200 "));
    assert!(
        log.lines().any(|l| l.contains("/via-kerbside-proxy")
            && l.contains(" 200 ")
            && l.to_ascii_lowercase().contains("user=adexample\\bob")),
        "{log}"
    );
}

#[test]
fn a_domain_controller_that_cannot_be_asked_is_a_503_not_a_wrong_password() {
    use std::os::unix::fs::PermissionsExt;
    let ad = ad();
    let upstream = EchoUpstream::start();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v wbinfo"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // A gate whose wbinfo is `fake` first on PATH, with `env` added.
    let gate_with = |name: &str, fake: &str, env: &[(&str, &OsStr)]| {
        let bin = ad.domain.dir().join(name);
        std::fs::create_dir_all(&bin).unwrap();
        let wbinfo = bin.join("wbinfo");
        std::fs::write(&wbinfo, fake.replace("REAL", real.trim())).unwrap();
        std::fs::set_permissions(&wbinfo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
        clean_env(&mut cmd);
        cmd.envs(ad.domain.env())
            .envs(env.iter().copied())
            .env("PATH", path)
            .env_remove("KRB5CCNAME")
            .arg("gate")
            .args(["--listen", "127.0.0.1:0", "--upstream", &upstream.url()])
            .args(["--auth", "connection", "--ntlm-winbind", "--keytab"])
            .arg(&ad.keytab)
            .arg("--tls-cert")
            .arg(ad.cert.cert_pem_path())
            .arg("--tls-key")
            .arg(ad.cert.key_pem_path());
        GateProcess::from_command(cmd)
    };
    let alice = |gate: &GateProcess| {
        curl(&[
            "--ntlm",
            "-u",
            "ADEXAMPLE\\alice:alice-password",
            &gate.url("/"),
        ])
    };

    // The gate's own check cannot reach winbindd (libwbclient's `_NO_WINBINDD=1`; wbinfo's
    // start-up questions still reach it): 503.
    let gate = gate_with(
        "plain-wbinfo",
        "#!/bin/sh\nexec env -u _NO_WINBINDD REAL \"$@\"\n",
        &[("_NO_WINBINDD", OsStr::new("1"))],
    );
    let run = alice(&gate);
    assert_eq!(run.status, 503, "{run:?}\n{}", gate.log());
    assert!(
        gate.wait_for_log(
            |l| l.contains("could not ask the domain controller through winbindd")
                && l.contains("winbindd: WBC_ERR_")
        ),
        "{}",
        gate.log()
    );

    // The DC accepts the response, but winbind cannot give the account's groups (a wbinfo
    // whose --user-sids fails): 503 too, never a login without the groups rules may need.
    let gate = gate_with(
        "broken-wbinfo",
        "#!/bin/sh\ncase \"$1\" in --user-sids*) echo 'WBC_ERR_WINBIND_NOT_AVAILABLE' >&2; exit 1;; esac\nexec REAL \"$@\"\n",
        &[],
    );
    let run = alice(&gate);
    assert_eq!(run.status, 503, "{run:?}\n{}", gate.log());
    assert!(
        gate.wait_for_log(|l| l.contains("winbind cannot give the account's groups")
            && l.contains("WBC_ERR_WINBIND_NOT_AVAILABLE")),
        "{}",
        gate.log()
    );
}

/// An upstream that answers each request with one line: the identity and groups headers
/// it got (`user=…;groups=…`), so curl and requests-ntlm (which reports the first line of
/// the body) both show them.
fn who_upstream() -> String {
    use std::io::{BufRead, BufReader, Write};
    let port = common::serve_each_connection(|stream| {
        let _ = (|| -> std::io::Result<()> {
            stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut writer = stream;
            loop {
                let (mut user, mut groups) = (String::from("-"), String::from("-"));
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(": ") {
                        match name.to_ascii_lowercase().as_str() {
                            "x-remote-user" => user = value.to_owned(),
                            "x-remote-groups" => groups = value.to_owned(),
                            _ => {}
                        }
                    }
                }
                let body = format!("user={user};groups={groups}\n");
                write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )?;
                writer.flush()?;
            }
        })();
    });
    format!("http://127.0.0.1:{port}")
}

/// The `user` and the sorted `ADEXAMPLE\…` groups of a [`who_upstream`] body.
fn who(body: &str) -> (String, Vec<String>) {
    let line = body.lines().next().unwrap_or_default();
    let (user, groups) = line
        .strip_prefix("user=")
        .and_then(|l| l.split_once(";groups="))
        .unwrap_or_else(|| panic!("not an upstream answer: {body:?}"));
    let mut groups: Vec<String> = groups
        .split(',')
        .filter(|g| g.starts_with("ADEXAMPLE\\"))
        .map(str::to_owned)
        .collect();
    groups.sort();
    (user.to_owned(), groups)
}

#[test]
fn ntlm_logins_are_named_and_grouped_as_kerberos_logins() {
    let ad = ad();
    let sid = ad
        .domain
        .samba_tool(&["group", "show", "ntlm-developers", "--attributes=objectSid"])
        .unwrap();
    let sid = sid
        .lines()
        .find_map(|l| l.strip_prefix("objectSid: "))
        .unwrap_or_else(|| panic!("no objectSid in {sid}"))
        .trim()
        .to_owned();
    let config = ad.domain.dir().join("gate-ntlm-groups.toml");
    std::fs::write(
        &config,
        format!(
            r#"ntlm-winbind = true
ntlm-winbind-smb-conf = {smb_conf:?}
ntlm-in-negotiate = true
auth = "connection"
groups-header = "X-Remote-Groups"
upstream = "{upstream}"

[[access]]
path = "/"
authenticated = true

[[access]]
path = "/dev"
groups = ["ADEXAMPLE\\ntlm-developers"]

[[access]]
path = "/by-sid"
groups = ["{sid}"]
"#,
            smb_conf = ad.domain.smb_conf(),
            upstream = who_upstream(),
        ),
    )
    .unwrap();
    let gate = gate_with_config_file(ad, &config);
    let erin = "Erin@AD.EXAMPLE.TEST";

    // Kerberos (`kinit erin`, in lower case): the PAC names the account and its groups.
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache("erin"));
    let krb5_conf = ad.domain.krb5_conf().as_os_str();
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &gate.url("/dev/kerberos")],
        Some(ad.ca.ca_pem_path()),
        &[("KRB5CCNAME", &ccache), ("KRB5_CONFIG", krb5_conf)],
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    let (user, kerberos_groups) = who(&run.body);
    assert_eq!(user, erin, "{}", run.body);
    for group in [
        "ADEXAMPLE\\ntlm-developers",
        "ADEXAMPLE\\ntlm-frontend",
        "ADEXAMPLE\\Domain Users",
    ] {
        assert!(
            kerberos_groups.iter().any(|g| g == group),
            "{group} missing from {kerberos_groups:?}"
        );
    }
    eprintln!("Erin's groups with Kerberos: {kerberos_groups:?}");

    // NTLM (curl), in every spelling: the same name and the same groups, let in by the
    // rule naming the group (erin is in it through ntlm-frontend) and by the one naming
    // its SID.
    for login in [
        "erin:erin-password",
        "ERIN:erin-password",
        "ADEXAMPLE\\erin:erin-password",
    ] {
        for path in ["/dev/ntlm", "/by-sid/ntlm"] {
            let run = curl(&["--ntlm", "-u", login, &gate.url(path)]);
            assert_eq!(run.status, 200, "{login} {path}: {run:?}\n{}", gate.log());
            let (user, groups) = who(&run.body);
            assert_eq!(user, erin, "{login}: {}", run.body);
            assert_eq!(groups, kerberos_groups, "{login}: NTLM and Kerberos differ");
        }
    }
    assert!(
        gate.wait_for_log(|l| l.lines().any(|l| l.contains("authenticated with NTLM")
            && l.contains("principal=Erin@AD.EXAMPLE.TEST"))),
        "{}",
        gate.log()
    );

    // requests-ntlm (pyspnego): the same.
    let facts = run_password_client(&[
        "requests-ntlm",
        &gate.url("/dev/python"),
        "--user",
        "ADEXAMPLE\\erin",
        "--password",
        "erin-password",
        "--ca",
        ad.ca.ca_pem_path().to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, gate.log());
    let (user, groups) = who(facts.get("body"));
    assert_eq!(user, erin, "{}", facts.raw);
    assert_eq!(groups, kerberos_groups, "{}", facts.raw);

    // NTLM inside Negotiate (curl with gss-ntlmssp and no ticket): the same.
    let cred = ad.domain.dir().join("ntlm-client-erin");
    std::fs::write(&cred, "ADEXAMPLE:erin:erin-password\n").unwrap();
    let none = format!("FILE:{}/no-ticket", ad.domain.dir().display());
    let run = run_curl_env(
        &["--negotiate", "-u", ":", &gate.url("/dev/spnego")],
        Some(ad.ca.ca_pem_path()),
        &[
            ("NTLM_USER_FILE", cred.as_os_str()),
            ("NTLMUSER", OsStr::new("ADEXAMPLE\\erin")),
            ("KRB5CCNAME", OsStr::new(&none)),
            ("KRB5_CONFIG", krb5_conf),
        ],
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert_eq!(who(&run.body), (erin.to_owned(), kerberos_groups.clone()));

    // alice is in neither group: 403 by name and by SID, let in elsewhere.
    for path in ["/dev/x", "/by-sid/x"] {
        let run = curl(&[
            "--ntlm",
            "-u",
            "ADEXAMPLE\\alice:alice-password",
            &gate.url(path),
        ]);
        assert_eq!(run.status, 403, "{path}: {run:?}\n{}", gate.log());
    }
    let run = curl(&["--ntlm", "-u", "alice:alice-password", &gate.url("/open")]);
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert_eq!(who(&run.body).0, "alice@AD.EXAMPLE.TEST");

    // Basic checked against the KDC names her the same way.
    let upstream = EchoUpstream::start();
    let basic = basic_gate(ad, &upstream, false, &[]);
    for login in ["erin:erin-password", "ERIN:erin-password"] {
        let run = curl(&["--basic", "-u", login, &basic.url("/")]);
        assert_eq!(run.status, 200, "{login}: {run:?}\n{}", basic.log());
        assert!(
            run.body.contains("users=Erin@AD.EXAMPLE.TEST\n"),
            "{login}: {}",
            run.body
        );
    }
}

/// The gate with the domain's keytab, TLS, and the configuration file `config`.
fn gate_with_config_file(ad: &Ad, config: &std::path::Path) -> GateProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
        .env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", ad.domain.dir())
        .env("RUST_LOG", "info")
        .args(["gate", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--keytab")
        .arg(&ad.keytab)
        .arg("--tls-cert")
        .arg(ad.cert.cert_pem_path())
        .arg("--tls-key")
        .arg(ad.cert.key_pem_path());
    GateProcess::from_command(cmd)
}

/// `user-map` names a domain user who logged in with NTLM (checked by the DC) the way it
/// names them after Kerberos: CGI's `REMOTE_USER` is the short name, the down-level name
/// or the UPN, whichever spelling the client typed.
#[test]
fn user_map_names_an_ntlm_login_as_it_names_a_kerberos_login() {
    let ad = ad();
    let program = ad.domain.dir().join("remote-user.cgi");
    std::fs::write(
        &program,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nREMOTE_USER=%s\\n' \"$REMOTE_USER\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache("erin"));
    for (map, expected) in [
        ("strip-realm", Some("Erin")),
        ("down-level", Some("ADEXAMPLE\\Erin")),
        // AD's implicit UPN; its case is the PAC's (checked: NTLM gives the same).
        ("upn", None),
    ] {
        let config = ad
            .domain
            .dir()
            .join(format!("gate-ntlm-user-map-{map}.toml"));
        std::fs::write(
            &config,
            format!(
                "ntlm-winbind = true\nauth = \"connection\"\nuser-map = \"{map}\"\ncgi = {program:?}\n"
            ),
        )
        .unwrap();
        let gate = gate_with_config_file(ad, &config);
        let run = run_curl_env(
            &["--negotiate", "-u", ":", &gate.url("/")],
            Some(ad.ca.ca_pem_path()),
            &[
                ("KRB5CCNAME", &ccache),
                ("KRB5_CONFIG", ad.domain.krb5_conf().as_os_str()),
            ],
        )
        .unwrap();
        assert_eq!(run.status, 200, "{map} Kerberos: {run:?}\n{}", gate.log());
        let kerberos = run
            .body
            .lines()
            .find_map(|l| l.strip_prefix("REMOTE_USER="))
            .unwrap_or_else(|| panic!("{map}: no REMOTE_USER in {}", run.body))
            .to_owned();
        match expected {
            Some(expected) => assert_eq!(kerberos, expected, "{map}"),
            None => assert!(
                kerberos.eq_ignore_ascii_case("erin@ad.example.test"),
                "{map}: {kerberos}"
            ),
        }
        for login in ["erin:erin-password", "ADEXAMPLE\\ERIN:erin-password"] {
            let run = curl(&["--ntlm", "-u", login, &gate.url("/")]);
            assert_eq!(run.status, 200, "{map} {login}: {run:?}\n{}", gate.log());
            assert!(
                run.body.contains(&format!("REMOTE_USER={kerberos}\n")),
                "{map} {login}: {} (Kerberos gave {kerberos})\n{}",
                run.body,
                gate.log()
            );
        }
    }
}
