//! Delegation to the application: a CGI program behind the gate calls a second
//! kerberized service (another gate, with its own service principal) with curl
//! `--negotiate` and the `KRB5CCNAME` the gate gave it, and that service sees the user,
//! not the gate.
//!
//! * The client delegates (curl `--delegation always`, `kerbside fetch --delegation
//!   always`) to a gate with `--delegation-dir`, against the MIT test realm.
//! * The client delegates nothing, and the gate uses constrained delegation
//!   (`--s4u2proxy`, S4U2Proxy) as its Samba AD account, which the domain lets delegate
//!   to the second service (`samba-tool delegation add-service`).
//! * Off by default: a client that delegates to a gate without `--delegation-dir` leaves
//!   nothing on disk, and the program gets no `KRB5CCNAME`.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{clean_env, curl, kerbside, text, EchoUpstream, GateProcess};
use kerbside_testkit::{ServiceKeys, TestCa, TestCert, TestDomain, TestRealm};

/// A CGI program that says who the gate let in and which ticket cache it was given,
/// then calls `backend` as that user with curl `--negotiate`.
fn write_calling_program(dir: &Path, ca: &Path, backend: &str) -> PathBuf {
    let program = dir.join("call-backend.cgi");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\n\
             printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
             printf 'front=%s\\n' \"$REMOTE_USER\"\n\
             printf 'ccache=%s\\n' \"${{KRB5CCNAME:-none}}\"\n\
             if [ -n \"$KRB5CCNAME\" ]; then\n\
             \x20 /usr/bin/curl --silent --show-error --noproxy '*' --cacert '{}' \
             --negotiate -u : '{backend}' 2>&1\n\
             fi\n",
            ca.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// A gate configuration file with the program at `/`, given `krb5_conf` (the program's
/// curl needs the realm), and `extra` lines.
fn write_config(dir: &Path, program: &Path, krb5_conf: &Path, extra: &str) -> PathBuf {
    let config = dir.join("front.toml");
    std::fs::write(
        &config,
        format!(
            "{extra}\n[[mount]]\npath = \"/\"\ncgi = \"{}\"\nenv = {{ KRB5_CONFIG = \"{}\" }}\n",
            program.display(),
            krb5_conf.display()
        ),
    )
    .unwrap();
    config
}

/// `kerbside gate` with TLS, its own replay cache directory, and `args`.
fn gate_command(
    program_env: &[(OsString, OsString)],
    dir: &Path,
    cert: &TestCert,
    args: &[&std::ffi::OsStr],
) -> Command {
    let rcache = tempfile::Builder::new()
        .prefix("rcache-")
        .tempdir_in(dir)
        .unwrap()
        .keep();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(program_env.iter().cloned())
        .env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", &rcache)
        .args(["gate", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path())
        .args(args);
    cmd
}

/// The lines of the program's answer.
fn answer(out: &Output, gate: &GateProcess) -> String {
    let (body, err) = text(out);
    assert!(out.status.success(), "{err}\n{body}\n{}", gate.log());
    body
}

/// Waits (up to `limit`) until `done` holds.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_delegating_client_is_seen_by_the_backend_through_a_cgi_program() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let dir = tempfile::tempdir().unwrap();
    // The backend: a second gate, reached as 127.0.0.1 (HTTP/127.0.0.1), echoing who
    // it let in.
    let echo = EchoUpstream::start();
    let backend = GateProcess::start(&realm, Some(&cert), &echo.url(), &[]);
    let backend_url = backend.url("/who").replace("localhost", "127.0.0.1");
    let program = write_calling_program(dir.path(), ca.ca_pem_path(), &backend_url);
    let deleg = dir.path().join("deleg");
    let config = write_config(dir.path(), &program, realm.krb5_conf(), "");
    let front = GateProcess::from_command(gate_command(
        &realm.env(),
        dir.path(),
        &cert,
        &[
            "--keytab".as_ref(),
            realm.keytab().as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--delegation-dir".as_ref(),
            deleg.as_os_str(),
        ],
    ));
    let url = front.url("/");
    let stored = deleg.join("krb5cc_alice@EXAMPLE.TEST");

    // curl --delegation always.
    let out = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "--delegation", "always", &url])
        .output()
        .unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("front=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(
        body.contains(&format!("ccache=FILE:{}\n", stored.display())),
        "{body}"
    );
    assert!(
        body.contains("users=alice@EXAMPLE.TEST\n"),
        "the backend saw someone else: {body}\n{}\n{}",
        front.log(),
        backend.log()
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&deleg), 0o700);
    assert_eq!(mode(&stored), 0o600);
    let names: Vec<_> = std::fs::read_dir(&deleg)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("krb5cc_alice@EXAMPLE.TEST")]);

    // kerbside fetch --delegation always, with bob's ticket: his own file.
    let bob = realm.dir().join("bob-deleg.ccache");
    realm.kinit("bob", "bob-password", &bob).unwrap();
    let out = kerbside(&realm)
        .env("KRB5CCNAME", format!("FILE:{}", bob.display()))
        .arg("fetch")
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .args(["--negotiate", "--delegation", "always", &url])
        .output()
        .unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("front=bob@EXAMPLE.TEST\n"), "{body}");
    assert!(body.contains("users=bob@EXAMPLE.TEST\n"), "{body}");
    assert!(deleg.join("krb5cc_bob@EXAMPLE.TEST").is_file());

    // A short-lived ticket: its file goes when it expires, without another request.
    let short = realm.dir().join("short.ccache");
    let status = realm
        .command("kinit")
        .args(["-l", "8s", "-c"])
        .arg(format!("FILE:{}", short.display()))
        .arg("alice")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"alice-password\n")?;
            child.wait()
        })
        .unwrap();
    assert!(status.success());
    let out = curl(&realm, ca.ca_pem_path())
        .env("KRB5CCNAME", format!("FILE:{}", short.display()))
        .args(["--negotiate", "-u", ":", "--delegation", "always", &url])
        .output()
        .unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(stored.is_file());
    assert!(
        wait_until(Duration::from_secs(30), || !stored.exists()),
        "the expired ticket cache is still there\n{}",
        front.log()
    );
    assert!(
        front.log().contains("expired delegated credential removed"),
        "{}",
        front.log()
    );
}

#[test]
fn delegation_is_off_by_default_and_leaves_nothing_on_disk() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let dir = tempfile::tempdir().unwrap();
    let echo = EchoUpstream::start();
    let backend = GateProcess::start(&realm, Some(&cert), &echo.url(), &[]);
    let backend_url = backend.url("/who").replace("localhost", "127.0.0.1");
    let program = write_calling_program(dir.path(), ca.ca_pem_path(), &backend_url);
    let config = write_config(dir.path(), &program, realm.krb5_conf(), "");
    // Everything the gate could write a ticket cache to, in one empty directory.
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut cmd = gate_command(
        &realm.env(),
        dir.path(),
        &cert,
        &[
            "--keytab".as_ref(),
            realm.keytab().as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
    );
    cmd.env("TMPDIR", &scratch)
        .env("KRB5CCNAME", format!("DIR:{}", scratch.display()));
    let front = GateProcess::from_command(cmd);

    let out = curl(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":", "--delegation", "always"])
        .arg(front.url("/"))
        .output()
        .unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("front=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(body.contains("ccache=none\n"), "{body}");
    assert!(!body.contains("users="), "{body}");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        !front.log().contains("delegated credential"),
        "{}",
        front.log()
    );
}

/// A gate account that may delegate (S4U2Proxy) to a backend, in the Samba AD domain.
#[test]
fn constrained_delegation_reaches_the_backend_as_the_user_without_the_user_delegating() {
    let domain = TestDomain::shared().unwrap();
    domain
        .add_service_account("svc-front", &["HTTP/localhost"], ServiceKeys::AesOnly)
        .unwrap();
    domain
        .add_service_account("svc-back", &["HTTP/127.0.0.1"], ServiceKeys::AesOnly)
        .unwrap();
    domain
        .samba_tool(&["delegation", "add-service", "svc-front", "HTTP/127.0.0.1"])
        .unwrap();
    // The front's keytab: its account's own key (for its TGT) and its service's.
    let front_keytab = domain.dir().join("front.keytab");
    domain.export_keytab("svc-front", &front_keytab).unwrap();
    domain
        .export_keytab("HTTP/localhost", &front_keytab)
        .unwrap();
    let back_keytab = domain.dir().join("back.keytab");
    domain
        .export_keytab("HTTP/127.0.0.1", &back_keytab)
        .unwrap();

    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let dir = tempfile::tempdir_in(domain.dir()).unwrap();
    let echo = EchoUpstream::start();
    let backend = GateProcess::from_command(gate_command(
        &domain.env(),
        dir.path(),
        &cert,
        &[
            "--keytab".as_ref(),
            back_keytab.as_os_str(),
            "--upstream".as_ref(),
            echo.url().as_ref(),
        ],
    ));
    let backend_url = backend.url("/who").replace("localhost", "127.0.0.1");
    let program = write_calling_program(dir.path(), ca.ca_pem_path(), &backend_url);
    let deleg = dir.path().join("deleg");
    let config = write_config(dir.path(), &program, domain.krb5_conf(), "");
    let front = GateProcess::from_command(gate_command(
        &domain.env(),
        dir.path(),
        &cert,
        &[
            "--keytab".as_ref(),
            front_keytab.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--delegation-dir".as_ref(),
            deleg.as_os_str(),
            "--s4u2proxy".as_ref(),
            "svc-front@AD.EXAMPLE.TEST".as_ref(),
        ],
    ));

    // alice logs in without delegating (no --delegation).
    let ccache = domain.user_ccache("alice");
    domain.kinit("alice", "alice-password", &ccache).unwrap();
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    let out = cmd
        .envs(domain.env())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(["--negotiate", "-u", ":"])
        .arg(front.url("/"))
        .output()
        .unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("front=alice@AD.EXAMPLE.TEST\n"), "{body}");
    assert!(
        body.contains("users=alice@AD.EXAMPLE.TEST\n"),
        "the backend saw someone else: {body}\n{}\n{}",
        front.log(),
        backend.log()
    );
    assert!(!body.contains("svc-front"), "{body}");
    assert!(deleg.join("krb5cc_alice@AD.EXAMPLE.TEST").is_file());
    // Again with the same service ticket: the file already holds it, and is not
    // written again.
    let out = cmd.output().unwrap();
    let body = answer(&out, &front);
    assert!(body.contains("users=alice@AD.EXAMPLE.TEST\n"), "{body}");
    let stored = front.log().matches("delegated credential stored").count();
    assert_eq!(stored, 1, "{}", front.log());

    // gate --check on the same settings names the account and the directory.
    let out = gate_command(
        &domain.env(),
        dir.path(),
        &cert,
        &[
            "--check".as_ref(),
            "--keytab".as_ref(),
            front_keytab.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--delegation-dir".as_ref(),
            deleg.as_os_str(),
            "--s4u2proxy".as_ref(),
            "svc-front@AD.EXAMPLE.TEST".as_ref(),
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        "ok:      s4u2proxy: the gate gets its own TGT as svc-front@AD.EXAMPLE.TEST from the keytab",
        "ok:      svc-front@AD.EXAMPLE.TEST is an account name",
        "is the gate's own, mode 0700",
    ] {
        assert!(stdout.contains(line), "{line:?} missing: {stdout}");
    }
}
