//! `kerbside fetch` and the Kerberos service name it asks a ticket for: `--spn`
//! per host and for all hosts, `--spn-canonicalize` (DNS canonical name),
//! `--spn-port` (`HTTP/host:port`), checked against `kerbside gate` with a real MIT
//! KDC; and `--help` documenting every authentication flag.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{clean_env, kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{free_port, require_tool, TestCa, TestCert, TestRealm};

/// `kerbside fetch --negotiate -v --cacert CA <args…>`.
fn fetch(realm: &TestRealm, ca: &TestCa, args: &[&str]) -> Output {
    kerbside(realm)
        .args(["fetch", "--negotiate", "-v", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fetch_help_documents_every_authentication_flag() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    let out = cmd.args(["fetch", "--help"]).output().unwrap();
    let (help, err) = text(&out);
    assert!(out.status.success(), "{err}");
    for flag in [
        "--anyauth",
        "--negotiate-preemptive",
        "--mutual",
        "--spn",
        "--spn-canonicalize",
        "--spn-port",
        "--delegation",
        "--channel-binding",
        "--max-auth-rounds",
        "--keytab",
        "--user",
        "--allow-http-auth",
    ] {
        // On an option's own line (`  -u, --user <USER[:PASSWORD]>`, not the
        // description under it, indented further), the flag itself and not a longer
        // one that starts with it (`--spn` in `--spn-port`).
        let documented = help.lines().any(|line| {
            let spec = line.trim_start();
            let indent = line.len() - spec.len();
            (2..=6).contains(&indent)
                && spec.starts_with('-')
                && spec.split(", ").any(|part| {
                    part.strip_prefix(flag)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '=', '[']))
                })
        });
        assert!(documented, "`kerbside fetch --help` lacks {flag}:\n{help}");
    }
    // The values of --delegation are listed, with what each means.
    for value in ["none", "policy", "always"] {
        assert!(help.contains(&format!("{value}:")), "{value}:\n{help}");
    }
}

#[test]
fn delegation_values_are_accepted() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    for value in ["none", "policy", "always"] {
        let out = fetch(&realm, &ca, &["--delegation", value, &gate.url("/")]);
        let (body, err) = text(&out);
        assert!(
            out.status.success(),
            "--delegation {value}: {err}\n{}",
            gate.log()
        );
        assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    }
    let out = fetch(&realm, &ca, &["--delegation", "sometimes", &gate.url("/")]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("possible values: none, policy, always"),
        "{err}"
    );
}

#[test]
fn spn_names_the_service_per_host_or_for_every_host() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]); // localhost and 127.0.0.1
    let upstream = EchoUpstream::start();
    // The gate takes only tickets for HTTP/localhost, though its keytab also holds
    // HTTP/127.0.0.1: a success below proves which ticket the client got.
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--acceptor", "HTTP@localhost"],
    );
    let by_ip = gate.url("/").replace("localhost", "127.0.0.1");

    // By default the name comes from the URL: HTTP@127.0.0.1, refused by the gate.
    let out = fetch(&realm, &ca, &[&by_ip]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("* Kerberos target HTTP@127.0.0.1 (the host of the URL)"),
        "{err}"
    );
    assert!(err.contains("rejected the Kerberos token"), "{err}");

    // HOST=NAME for this host, NAME for every host; NAME as a host-based service
    // or as a Kerberos principal.
    for (spn, target) in [
        ("127.0.0.1=HTTP@localhost", "HTTP@localhost"),
        ("HTTP@localhost", "HTTP@localhost"),
        (
            "127.0.0.1=HTTP/localhost@EXAMPLE.TEST",
            "HTTP/localhost@EXAMPLE.TEST",
        ),
    ] {
        let out = fetch(&realm, &ca, &["--spn", spn, &by_ip]);
        let (body, err) = text(&out);
        assert!(out.status.success(), "--spn {spn}: {err}\n{}", gate.log());
        assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
        assert!(
            err.contains(&format!(
                "* Kerberos target {target} (given for 127.0.0.1 (--spn))"
            )),
            "--spn {spn}: {err}"
        );
        assert!(
            err.contains("mutual authentication: server verified"),
            "{err}"
        );
    }

    // A name given for another host does not apply to this one.
    let out = fetch(
        &realm,
        &ca,
        &["--spn", "git.example.test=HTTP@localhost", &by_ip],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("* Kerberos target HTTP@127.0.0.1 (the host of the URL)"),
        "{err}"
    );

    // A name the KDC does not know: exit 67, and the message names it.
    let out = fetch(
        &realm,
        &ca,
        &["--spn", "HTTP@nosuch.example.test", &gate.url("/")],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("the KDC does not know the service principal for HTTP@nosuch.example.test"),
        "{err}"
    );
}

/// Whether this process may run a command in its own mount namespace with another
/// `/etc/hosts` (needs root or CAP_SYS_ADMIN, and util-linux `unshare`).
fn private_hosts_work(hosts: &Path) -> bool {
    Command::new("unshare")
        .arg("-m")
        .args([
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/hosts && getent hosts myalias"#,
        ])
        .arg(hosts)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `kerbside fetch --negotiate -v --cacert CA <args…>` seeing `hosts` as
/// `/etc/hosts`: run in a private mount namespace (`unshare -m`) where `hosts` is
/// bind-mounted over `/etc/hosts`. The machine's `/etc/hosts` is not changed.
fn fetch_with_hosts(realm: &TestRealm, ca: &TestCa, hosts: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.envs(realm.env())
        .arg("-m")
        .args(["sh", "-c", r#"mount --bind "$0" /etc/hosts && exec "$@""#])
        .arg(hosts)
        .arg(env!("CARGO_BIN_EXE_kerbside"))
        .args(["fetch", "--negotiate", "-v", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(args);
    cmd.output().unwrap()
}

// glibc's HOSTALIASES does not do here what this test needs: glibc applies it only
// in `res_search` (the DNS backend), which then asks the name server for the
// target name, so `myalias -> localhost` needs a DNS server that answers for
// `localhost`; the one here does not, and getaddrinfo("myalias") fails (checked with
// `getent ahosts` and Python's getaddrinfo). A private /etc/hosts line
// `127.0.0.1 localhost myalias` does: the files backend gives `localhost` (the first
// name of the line) as the canonical name of `myalias`, as a CNAME would.
#[test]
fn spn_canonicalize_follows_the_canonical_name() {
    let realm = TestRealm::start().unwrap();
    let hosts = realm.dir().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost myalias\n").unwrap();
    require_tool("unshare", "util-linux");
    require_tool("mount", "mount");
    assert!(
        private_hosts_work(&hosts),
        "this test needs `unshare -m` and `mount --bind` to work (root or CAP_SYS_ADMIN, as in \
         the CI container) to give kerbside a private /etc/hosts"
    );
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "myalias", "127.0.0.1"]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let url = gate.url("/").replace("localhost", "myalias");

    // Without --spn-canonicalize the name is the URL's: the KDC has no HTTP/myalias.
    let out = fetch_with_hosts(&realm, &ca, &hosts, &[&url]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("* Kerberos target HTTP@myalias (the host of the URL)"),
        "{err}"
    );
    assert!(
        err.contains("the KDC does not know the service principal for HTTP@myalias"),
        "{err}"
    );

    // With it, the canonical name: HTTP@localhost, which the KDC and the gate know.
    let out = fetch_with_hosts(&realm, &ca, &hosts, &["--spn-canonicalize", &url]);
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(
        err.contains(
            "* Kerberos target HTTP@localhost (canonical name of myalias in DNS \
             (--spn-canonicalize))"
        ),
        "{err}"
    );

    // An explicit --spn wins over the canonical name.
    let out = fetch_with_hosts(
        &realm,
        &ca,
        &hosts,
        &[
            "--spn-canonicalize",
            "--spn",
            "myalias=HTTP@nosuch.example.test",
            &url,
        ],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("* Kerberos target HTTP@nosuch.example.test (given for myalias (--spn))"),
        "{err}"
    );
}

/// A `kerbside gate` on a given port with a given keytab (the fixture in
/// `common` picks both itself), stopped on drop.
struct PortGate {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PortGate {
    fn start(realm: &TestRealm, cert: &TestCert, port: u16, keytab: &Path, upstream: &str) -> Self {
        let mut child = kerbside(realm)
            .args(["gate", "--listen", &format!("127.0.0.1:{port}"), "--keytab"])
            .arg(keytab)
            .args(["--upstream", upstream, "--tls-cert"])
            .arg(cert.cert_pem_path())
            .arg("--tls-key")
            .arg(cert.key_pem_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on ") {
                    let _ = tx.send(());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut gate = Self { child, log };
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = gate.child.kill();
            panic!("the gate did not start: {}", gate.log());
        }
        gate
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for PortGate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn spn_port_asks_for_a_principal_with_the_port() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let port = free_port().unwrap();
    let principal = format!("HTTP/localhost:{port}");
    realm.add_service(&principal).unwrap();
    // The gate's keytab holds only the key of HTTP/localhost:PORT.
    let keytab = realm.dir().join("port.keytab");
    realm.export_keytab(&[&principal], &keytab).unwrap();
    let gate = PortGate::start(&realm, &cert, port, &keytab, &upstream.url());
    let url = format!("https://localhost:{port}/");

    // Without --spn-port the ticket is for HTTP/localhost: no key for it.
    let out = fetch(&realm, &ca, &[&url]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(67), "{err}");
    assert!(
        err.contains("* Kerberos target HTTP@localhost (the host of the URL)"),
        "{err}"
    );

    let out = fetch(&realm, &ca, &["--spn-port", &url]);
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}\n{}", gate.log());
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(
        err.contains(&format!(
            "* Kerberos target HTTP/localhost:{port} (the host of the URL, with its port \
             (--spn-port))"
        )),
        "{err}"
    );
    assert!(
        err.contains("mutual authentication: server verified"),
        "{err}"
    );
}
