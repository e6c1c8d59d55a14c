//! `kerbside doctor [URL]`: each cause produced for real against a real MIT KDC (no
//! ticket, an expired ticket, clock skew under faketime, a KDC that is down, an
//! unknown SPN, a keytab behind the KDC's key version, an RC4-only service key, a
//! header over a limit, NTLM inside SPNEGO), named in words and in `--json`; and a
//! clean bill against the gate and against Apache with mod_auth_gssapi.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{clean_env, kerbside, text, with_password_on_stdin, EchoUpstream, GateProcess};
use kerbside_testkit::{
    Apache, ApacheOptions, ApacheScheme, SchemeApache, SchemeApacheOptions, TestCa, TestCert,
    TestRealm, ALICE,
};
use serde_json::Value;

/// One realm for the whole binary.
fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// One CA and certificate (for localhost) for the whole binary.
fn tls() -> &'static (TestCa, TestCert) {
    static TLS: OnceLock<(TestCa, TestCert)> = OnceLock::new();
    TLS.get_or_init(|| {
        // In the realm's directory: a CA in a static is never dropped.
        let ca = TestCa::new_in(realm().dir());
        let cert = ca.issue(&[]);
        (ca, cert)
    })
}

fn ca_path() -> String {
    tls().0.ca_pem_path().to_str().unwrap().to_owned()
}

/// A gate with the realm's keytab, TLS, in front of an echo upstream.
fn gate(extra: &[&str]) -> (GateProcess, EchoUpstream) {
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(realm(), Some(&tls().1), &upstream.url(), extra);
    (gate, upstream)
}

/// Runs `kerbside doctor ARGS` (with `--cacert`), also with `--json`; gives the exit
/// code, the text output and the parsed findings.
fn doctor_in(cmd: impl Fn() -> Command, args: &[&str]) -> (i32, String, Vec<Value>) {
    let run = |json: bool| -> Output {
        let mut c = cmd();
        c.args(["doctor", "--cacert", &ca_path(), "--kdc-timeout", "2"]);
        if json {
            c.arg("--json");
        }
        c.args(args).output().unwrap()
    };
    let out = run(false);
    let (stdout, stderr) = text(&out);
    let shown = format!("{stdout}{stderr}");
    let json = run(true);
    let (jstdout, jstderr) = text(&json);
    let findings: Value = serde_json::from_str(&jstdout)
        .unwrap_or_else(|e| panic!("--json printed no JSON ({e}): {jstdout}{jstderr}"));
    assert_eq!(
        out.status.code(),
        json.status.code(),
        "--json changes the exit status: {shown}"
    );
    let findings = findings.as_array().cloned().unwrap();
    (out.status.code().unwrap_or(-1), shown, findings)
}

fn doctor(args: &[&str]) -> (i32, String, Vec<Value>) {
    doctor_in(|| kerbside(realm()), args)
}

/// The findings whose `cause` is `cause`.
fn with_cause<'a>(findings: &'a [Value], cause: &str) -> Vec<&'a Value> {
    findings
        .iter()
        .filter(|f| f["cause"].as_str() == Some(cause))
        .collect()
}

/// The findings of a check.
fn of_check<'a>(findings: &'a [Value], check: &str) -> Vec<&'a Value> {
    findings
        .iter()
        .filter(|f| f["check"].as_str() == Some(check))
        .collect()
}

/// A port nothing listens on (over UDP or TCP) right now.
fn dead_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A ticket cache for alice in the realm's directory, named `name`, from `kinit ARGS`.
fn kinit(name: &str, args: &[&str]) -> String {
    let path = realm().dir().join(name);
    let mut child = realm()
        .command("kinit")
        .args(args)
        .arg("-c")
        .arg(&path)
        .arg("alice")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    format!("FILE:{}", path.display())
}

#[test]
fn a_good_setup_against_the_gate_is_all_ok() {
    let (gate, _upstream) = gate(&[]);
    let (code, out, findings) = doctor(&[&gate.url("/")]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // Configuration, both transports of the KDC, the clock.
    assert!(out.contains("default realm EXAMPLE.TEST"), "{out}");
    assert!(out.contains("dns_canonicalize_hostname = false"), "{out}");
    assert!(out.contains("UDP answers, TCP answers"), "{out}");
    let clock = of_check(&findings, "clock");
    assert_eq!(clock.len(), 1, "{out}");
    assert_eq!(clock[0]["level"], "ok", "{out}");
    // Credentials, the SPN and its ticket.
    assert!(out.contains("alice@EXAMPLE.TEST"), "{out}");
    assert!(out.contains("ticket-granting ticket valid until"), "{out}");
    assert!(
        out.contains("kerbside asks for HTTP@localhost (the host of the URL)"),
        "{out}"
    );
    assert!(
        out.contains("the KDC issues a ticket for HTTP@localhost"),
        "{out}"
    );
    assert!(out.contains("aes256-cts-hmac-sha1-96, kvno "), "{out}");
    // The request: offered schemes, accepted token, mutual authentication, size.
    assert!(out.contains("/ offers Negotiate\n"), "{out}");
    assert!(out.contains("answered 200 OK after Negotiate"), "{out}");
    assert!(
        out.contains("the server proved it holds the service key"),
        "{out}"
    );
    let size = of_check(&findings, "header-size");
    assert_eq!(size[0]["level"], "ok", "{out}");
    assert!(out.contains("nginx 8192"), "{out}");
    for f in &findings {
        assert!(f["what_to_do"].is_null() || f["level"] != "ok", "{f}");
    }
}

#[test]
fn without_a_url_only_this_machine_is_checked() {
    let (code, out, findings) = doctor(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(of_check(&findings, "spn").is_empty(), "{out}");
    assert!(of_check(&findings, "request").is_empty(), "{out}");
    assert_eq!(of_check(&findings, "credentials")[0]["level"], "ok");
}

#[test]
fn no_ticket_says_run_kinit() {
    let none = format!("FILE:{}/doctor-no-ticket", realm().dir().display());
    let (code, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &none);
            c
        },
        &["https://localhost:9/"],
    );
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "no_ticket");
    assert!(!f.is_empty(), "{out}");
    assert_eq!(f[0]["level"], "fail");
    assert!(
        f[0]["what_to_do"].as_str().unwrap().contains("run kinit"),
        "{out}"
    );
    assert!(out.contains("does not exist or is empty"), "{out}");
    assert!(out.contains("doctor-no-ticket"), "{out}");
}

#[test]
fn an_expired_ticket_says_run_kinit() {
    // A ticket that lives two seconds, then waited out (klist -s fails once it expires).
    let cache = kinit("doctor-short", &["-l", "2s"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while realm()
        .command("klist")
        .args(["-s", "-c", &cache])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the 2-second ticket never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &cache);
            c
        },
        &[],
    );
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "expired_ticket");
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0]["found"].as_str().unwrap().contains("expired"), "{out}");
    assert!(f[0]["found"].as_str().unwrap().contains(" ago)"), "{out}");
    assert!(
        f[0]["what_to_do"].as_str().unwrap().contains("kinit"),
        "{out}"
    );
    assert!(out.contains("your Kerberos ticket has expired"), "{out}");
}

#[test]
fn clock_skew_is_measured_against_the_kdc() {
    let faked = |offset: &'static str| {
        move || {
            let mut c = Command::new("faketime");
            clean_env(&mut c);
            c.envs(realm().env());
            c.args(["-f", offset, env!("CARGO_BIN_EXE_kerbside")]);
            c
        }
    };
    // Ten minutes ahead: past the realm's five minutes.
    let (code, out, findings) = doctor_in(faked("+10m"), &[]);
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "clock_skew");
    assert_eq!(f.len(), 1, "{out}");
    assert_eq!(f[0]["level"], "fail", "{out}");
    let found = f[0]["found"].as_str().unwrap();
    assert!(found.contains("ahead of the KDC's"), "{found}");
    assert!(found.contains("the realm allows 300s"), "{found}");
    assert!(
        f[0]["what_to_do"].as_str().unwrap().contains("NTP"),
        "{out}"
    );
    // Two minutes behind: a warning only.
    let (code, out, findings) = doctor_in(faked("-2m"), &[]);
    let f = with_cause(&findings, "clock_skew");
    assert_eq!(f.len(), 1, "{out}");
    assert_eq!(f[0]["level"], "warn", "{out}");
    assert!(
        f[0]["found"].as_str().unwrap().contains("behind the KDC's"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_kdc_that_is_down_is_named() {
    let port = dead_port();
    let conf = realm().dir().join("doctor-dead-kdc.conf");
    let text = std::fs::read_to_string(realm().krb5_conf())
        .unwrap()
        .replace(
            &format!("127.0.0.1:{}", realm().kdc_port()),
            &format!("127.0.0.1:{port}"),
        );
    std::fs::write(&conf, text).unwrap();
    let (code, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5_CONFIG", &conf);
            c
        },
        &[],
    );
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "kdc_unreachable");
    assert!(!f.is_empty(), "{out}");
    assert!(
        out.contains(&format!(
            "KDC 127.0.0.1:{port} (127.0.0.1:{port}) of EXAMPLE.TEST: UDP"
        )),
        "{out}"
    );
    assert!(
        out.contains("cannot reach any KDC for EXAMPLE.TEST"),
        "{out}"
    );
    assert!(
        f[0]["what_to_do"]
            .as_str()
            .unwrap()
            .contains("start the KDC"),
        "{out}"
    );
}

#[test]
fn an_unknown_spn_is_named_with_the_commands_that_register_it() {
    let (gate, _upstream) = gate(&[]);
    let (code, out, findings) =
        doctor(&["--spn", "HTTP@unregistered.example.test", &gate.url("/")]);
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "unknown_spn");
    assert_eq!(f.len(), 1, "{out}");
    assert_eq!(f[0]["level"], "fail");
    let found = f[0]["found"].as_str().unwrap();
    assert!(
        found.contains("HTTP/unregistered.example.test@EXAMPLE.TEST")
            && found.contains("the SPN is not registered"),
        "{found}"
    );
    let todo = f[0]["what_to_do"].as_str().unwrap();
    assert!(
        todo.contains("setspn -S HTTP/unregistered.example.test"),
        "{todo}"
    );
    assert!(
        todo.contains("kadmin: addprinc -randkey HTTP/unregistered.example.test@EXAMPLE.TEST"),
        "{todo}"
    );
}

#[test]
fn a_keytab_behind_the_kdcs_key_version_is_named() {
    // Its own principal and keytab, so the realm's keytab stays current for the rest.
    let name = "HTTP/stale.example.test";
    realm().add_service(name).unwrap();
    let keytab = realm().dir().join("doctor-stale.keytab");
    realm().export_keytab(&[name], &keytab).unwrap();
    // Re-key at the KDC; the gate keeps the old keytab (kvno 1).
    realm().kadmin(&format!("cpw -randkey {name}")).unwrap();
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm());
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--keytab"])
        .arg(&keytab)
        .args(["--acceptor", name, "--upstream", &upstream.url()])
        .arg("--tls-cert")
        .arg(tls().1.cert_pem_path())
        .arg("--tls-key")
        .arg(tls().1.key_pem_path());
    let gate = GateProcess::from_command(cmd);
    let (code, out, findings) = doctor(&["--spn", &format!("{name}@EXAMPLE.TEST"), &gate.url("/")]);
    assert_eq!(code, 1, "{out}\n{}", gate.log());
    assert!(out.contains("kvno 2"), "{out}");
    let f = with_cause(&findings, "token_rejected");
    assert_eq!(f.len(), 1, "{out}");
    let todo = f[0]["what_to_do"].as_str().unwrap();
    assert!(
        todo.contains("kvno 2") && todo.contains("older kvno"),
        "{todo}"
    );
    assert!(todo.contains("ktadd"), "{todo}");
}

#[test]
fn an_rc4_only_service_key_is_flagged() {
    let name = "HTTP/rc4.example.test";
    realm()
        .kadmin(&format!("addprinc -randkey -e rc4-hmac:normal {name}"))
        .unwrap();
    let (gate, _upstream) = gate(&[]);
    let (_, out, findings) = doctor(&["--spn", &format!("{name}@EXAMPLE.TEST"), &gate.url("/")]);
    let f = with_cause(&findings, "weak_enctype");
    assert_eq!(f.len(), 1, "{out}");
    assert_eq!(f[0]["level"], "warn");
    let found = f[0]["found"].as_str().unwrap();
    assert!(
        found.contains("rc4-hmac") && found.contains("weak"),
        "{found}"
    );
    assert!(
        f[0]["what_to_do"].as_str().unwrap().contains("AES"),
        "{out}"
    );
}

#[test]
fn a_header_over_a_limit_is_named() {
    let (gate, _upstream) = gate(&[]);
    let (code, out, findings) = doctor(&["--header-limit", "500", &gate.url("/")]);
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "header_too_large");
    assert_eq!(f.len(), 1, "{out}");
    assert!(
        f[0]["found"]
            .as_str()
            .unwrap()
            .contains("--header-limit 500"),
        "{out}"
    );
}

#[test]
fn ntlm_inside_spnego_is_the_sign_of_a_missing_ticket() {
    let users = realm().dir().join("doctor-ntlm-users");
    with_password_on_stdin(
        realm(),
        &[
            "ntlm-passwd".as_ref(),
            users.as_os_str(),
            ALICE.ntlm_name().as_ref(),
        ],
        ALICE.password,
    );
    let (gate, _upstream) = gate(&[
        "--auth",
        "connection",
        "--ntlm-users",
        users.to_str().unwrap(),
        "--ntlm-in-negotiate",
    ]);
    let none = format!("FILE:{}/doctor-no-ticket-ntlm", realm().dir().display());
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);
    let (_, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &none);
            c
        },
        &["--negotiate-ntlm", "-u", &login, &gate.url("/")],
    );
    let f = with_cause(&findings, "ntlm_in_spnego");
    assert_eq!(f.len(), 1, "{out}\n{}", gate.log());
    assert_eq!(f[0]["level"], "warn");
    assert!(
        f[0]["found"]
            .as_str()
            .unwrap()
            .contains("NTLM inside SPNEGO, not Kerberos"),
        "{out}"
    );
    assert!(out.contains("offers Negotiate, NTLM\n"), "{out}");

    // The same against Apache, whose Negotiate is gss-ntlmssp's SPNEGO.
    let apache =
        SchemeApache::start(&tls().1, SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
    let (_, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &none);
            c
        },
        &["--negotiate-ntlm", "-u", &login, &apache.url("/private/")],
    );
    assert_eq!(with_cause(&findings, "ntlm_in_spnego").len(), 1, "{out}");
    assert!(
        out.contains("answered 200 OK after Negotiate"),
        "{out}\n{}",
        apache.error_log()
    );
}

#[test]
fn apache_with_mod_auth_gssapi_gets_a_clean_bill() {
    let apache = Apache::start(realm(), &tls().1, ApacheOptions::default()).unwrap();
    let (code, out, findings) = doctor(&[&apache.url("/private/")]);
    assert_eq!(code, 0, "{out}\n{}", apache.error_log());
    assert!(out.contains("/private/ offers Negotiate\n"), "{out}");
    assert!(out.contains("answered 200 OK after Negotiate"), "{out}");
    assert_eq!(of_check(&findings, "mutual")[0]["level"], "ok", "{out}");
}

/// `kerbside doctor` with no ticket cache at all.
fn doctor_without_ticket(name: &str, args: &[&str]) -> (i32, String, Vec<Value>) {
    let none = format!("FILE:{}/{name}", realm().dir().display());
    doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &none);
            c
        },
        args,
    )
}

#[test]
fn credentials_from_a_keytab_or_a_password_are_checked_as_fetch_uses_them() {
    let (gate, _upstream) = gate(&[]);
    // A client keytab for bob (-norandkey: his password stays).
    let keytab = realm().dir().join("doctor-bob.keytab");
    realm().export_keytab(&["bob"], &keytab).unwrap();
    let (code, out, findings) = doctor_without_ticket(
        "doctor-none-1",
        &["--keytab", keytab.to_str().unwrap(), &gate.url("/")],
    );
    assert_eq!(code, 0, "{out}");
    let creds = of_check(&findings, "credentials");
    assert!(
        creds[0]["found"]
            .as_str()
            .unwrap()
            .contains("the KDC issued a ticket for bob@EXAMPLE.TEST"),
        "{out}"
    );
    assert!(out.contains("answered 200 OK after Negotiate"), "{out}");

    // A password with -u, with no ticket: the KDC is asked.
    let (code, out, _) =
        doctor_without_ticket("doctor-none-2", &["-u", "bob:bob-password", &gate.url("/")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the KDC took the password of bob (-u) and issued a ticket"),
        "{out}"
    );
    // A wrong one is named, and nothing is sent with it.
    let (code, out, findings) =
        doctor_without_ticket("doctor-none-3", &["-u", "bob:wrong", &gate.url("/")]);
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "wrong_password");
    assert_eq!(f.len(), 1, "{out}");
    assert!(!out.contains("wrong\n") && !out.contains(":wrong"), "{out}");
    // A keytab without the principal asked for.
    let (code, out, findings) = doctor_without_ticket(
        "doctor-none-4",
        &[
            "--keytab",
            keytab.to_str().unwrap(),
            "-u",
            "alice",
            &gate.url("/"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    let f = with_cause(&findings, "keytab_unusable");
    assert_eq!(f.len(), 1, "{out}");
    assert!(
        f[0]["what_to_do"].as_str().unwrap().contains("klist -kt"),
        "{out}"
    );
}

#[test]
fn the_names_reverse_dns_gives_are_asked_for_too() {
    // https://127.0.0.1/: kerbside asks for HTTP@127.0.0.1; reverse DNS says localhost,
    // whose HTTP/localhost the KDC also knows.
    let (gate, _upstream) = gate(&[]);
    let port = gate
        .url("/")
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let url = format!("https://127.0.0.1:{port}/");
    let (_, out, findings) = doctor(&[&url]);
    assert!(
        out.contains("kerbside asks for HTTP@127.0.0.1 (the host of the URL)"),
        "{out}"
    );
    let tickets = of_check(&findings, "service-ticket");
    assert_eq!(tickets.len(), 2, "{out}");
    let rdns = tickets[1]["found"].as_str().unwrap();
    assert!(
        rdns.contains("HTTP@localhost") && rdns.contains("reverse DNS"),
        "{out}"
    );
}

#[test]
fn a_password_from_the_keyring_is_used_as_fetch_uses_it() {
    let (gate, _upstream) = gate(&[]);
    let keyring = realm().dir().join("doctor-keyring.toml");
    std::fs::write(
        &keyring,
        "[[credential]]\nhost = \"localhost\"\nuser = \"bob\"\npassword = \"bob-password\"\nschemes = [\"negotiate\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &keyring,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let none = format!("FILE:{}/doctor-none-keyring", realm().dir().display());
    let (code, out, _) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5CCNAME", &none).env("KERBSIDE_KEYRING", &keyring);
            c
        },
        &[&gate.url("/")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "the KDC took the password of bob (the keyring file {})",
            keyring.display()
        )),
        "{out}"
    );
    assert!(!out.contains("bob-password"), "{out}");
    assert!(out.contains("answered 200 OK after Negotiate"), "{out}");
}

#[test]
fn with_every_kdc_down_no_service_ticket_is_waited_for() {
    let port = dead_port();
    let conf = realm().dir().join("doctor-dead-kdc-url.conf");
    let text = std::fs::read_to_string(realm().krb5_conf())
        .unwrap()
        .replace(
            &format!("127.0.0.1:{}", realm().kdc_port()),
            &format!("127.0.0.1:{port}"),
        );
    std::fs::write(&conf, text).unwrap();
    let (code, out, findings) = doctor_in(
        || {
            let mut c = kerbside(realm());
            c.env("KRB5_CONFIG", &conf);
            c
        },
        &["https://localhost:9/"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        !with_cause(&findings, "kdc_unreachable").is_empty(),
        "{out}"
    );
    let tickets = of_check(&findings, "service-ticket");
    assert_eq!(tickets.len(), 1, "{out}");
    assert_eq!(tickets[0]["level"], "warn", "{out}");
}
