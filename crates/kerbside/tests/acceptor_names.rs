//! One gate, several service names (issue 15, "one name for many nodes"): a keytab holding
//! `HTTP/a.test`, `HTTP/b.test` and `HTTP/c.test`, and the gate's `acceptor` as
//! `{HOSTNAME}` (the ticket must be for the request's own host) or as a list (the ticket
//! must be for one of them), against a real MIT KDC ([`TestRealm`]) and curl
//! `--negotiate`, the host names resolved to 127.0.0.1 with `curl --resolve`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{clean_env, curl, kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{TestCa, TestCert, TestRealm};

struct Setup {
    realm: TestRealm,
    keytab: PathBuf,
    ca: TestCa,
    cert: TestCert,
}

fn setup() -> Setup {
    let realm = TestRealm::start().unwrap();
    for host in ["a.test", "b.test", "c.test"] {
        realm.add_service(&format!("HTTP/{host}")).unwrap();
    }
    let keytab = realm.dir().join("several.keytab");
    realm
        .export_keytab(&["HTTP/a.test", "HTTP/b.test", "HTTP/c.test"], &keytab)
        .unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["a.test", "b.test", "c.test"]);
    Setup {
        realm,
        keytab,
        ca,
        cert,
    }
}

/// `kerbside gate` with the three-name keytab and `args`.
fn gate(s: &Setup, upstream: &EchoUpstream, args: &[&str]) -> GateProcess {
    let mut cmd = kerbside(&s.realm);
    cmd.env("RUST_LOG", "info")
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ])
        .arg("--keytab")
        .arg(&s.keytab)
        .arg("--tls-cert")
        .arg(s.cert.cert_pem_path())
        .arg("--tls-key")
        .arg(s.cert.key_pem_path())
        .args(args);
    GateProcess::from_command(cmd)
}

/// The gate's port.
fn port(gate: &GateProcess) -> u16 {
    let url = gate.url("");
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// curl --negotiate to `https://HOST:PORT/` (HOST resolved to 127.0.0.1), with the
/// headers `extra`: the status and body.
fn status(s: &Setup, gate: &GateProcess, host: &str, extra: &[&str]) -> (String, String) {
    let port = port(gate);
    let out = curl(&s.realm, s.ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "curl: {err}");
    let (body, code) = body.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

#[test]
fn hostname_and_lists_take_their_names_and_refuse_others_in_words() {
    let s = setup();
    let upstream = EchoUpstream::start();
    let alice = format!("users=alice@{}\n", s.realm.realm());

    // {HOSTNAME}: each name's ticket on its own Host.
    let g = gate(&s, &upstream, &["--acceptor", "{HOSTNAME}"]);
    for host in ["a.test", "b.test"] {
        let (code, body) = status(&s, &g, host, &[]);
        assert_eq!(code, "200", "{host}: {body}\n{}", g.log());
        assert!(body.contains(&alice), "{body}");
    }
    // A ticket for a.test (curl asks for the URL's host) sent with Host: b.test.
    let (code, _) = status(&s, &g, "a.test", &["-H", "Host: b.test"]);
    assert_eq!(code, "401", "{}", g.log());
    assert!(
        g.wait_for_log(|l| l.contains(&format!(
            "the ticket is for HTTP/a.test@{} but the request is for the host \"b.test\"",
            s.realm.realm()
        ))),
        "{}",
        g.log()
    );
    drop(g);

    // A list in the configuration file: a and b, not c (whose key the keytab holds too).
    let config = s.realm.dir().join("list.toml");
    std::fs::write(
        &config,
        format!(
            "acceptor = [\"HTTP/a.test@{r}\", \"HTTP/b.test@{r}\"]\n",
            r = s.realm.realm()
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_owned();
    let g = gate(&s, &upstream, &["--config", &config_arg]);
    for host in ["a.test", "b.test"] {
        let (code, body) = status(&s, &g, host, &[]);
        assert_eq!(code, "200", "{host}: {body}\n{}", g.log());
    }
    let (code, _) = status(&s, &g, "c.test", &[]);
    assert_eq!(code, "401", "{}", g.log());
    assert!(
        g.wait_for_log(|l| l.contains(&format!(
            "the ticket is for HTTP/c.test@{r}, which is not one of the acceptor names \
             (HTTP/a.test@{r}, HTTP/b.test@{r})",
            r = s.realm.realm()
        ))),
        "{}",
        g.log()
    );
    drop(g);

    // The same list as repeated --acceptor flags.
    let a = format!("HTTP/a.test@{}", s.realm.realm());
    let b = format!("HTTP/b.test@{}", s.realm.realm());
    let g = gate(&s, &upstream, &["--acceptor", &a, "--acceptor", &b]);
    assert_eq!(status(&s, &g, "b.test", &[]).0, "200", "{}", g.log());
    assert_eq!(status(&s, &g, "c.test", &[]).0, "401", "{}", g.log());
}

#[test]
fn gate_check_reports_the_acceptor_names() {
    let s = setup();
    let upstream = EchoUpstream::start();
    let check = |args: &[&str]| -> (bool, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
        clean_env(&mut cmd);
        let out = cmd
            .envs(s.realm.env())
            .args(["gate", "--check", "--upstream", &upstream.url()])
            .arg("--keytab")
            .arg(&s.keytab)
            .arg("--tls-cert")
            .arg(s.cert.cert_pem_path())
            .arg("--tls-key")
            .arg(s.cert.key_pem_path())
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.success(), format!("{stdout}{stderr}"))
    };
    let (ok, report) = check(&["--acceptor", "{HOSTNAME}"]);
    assert!(ok, "{report}");
    assert!(
        report.contains("acceptor names: HTTP/<the request's Host> ({HOSTNAME}) — the keytab has HTTP/ keys for a.test, b.test, c.test"),
        "{report}"
    );
    let a = format!("HTTP/a.test@{}", s.realm.realm());
    let d = format!("HTTP/d.test@{}", s.realm.realm());
    let (ok, report) = check(&["--acceptor", &a, "--acceptor", &d]);
    assert!(!ok, "a name without a key is a problem: {report}");
    assert!(
        report.contains(&format!("acceptor names: {a}, {d}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("the acceptor name {d} has no key in the keytab")),
        "{report}"
    );
    // A malformed name is refused in words before anything starts.
    let (ok, report) = check(&["--acceptor", "HTTP/a test"]);
    assert!(!ok);
    assert!(report.contains("is not SERVICE/host[@REALM]"), "{report}");
}
