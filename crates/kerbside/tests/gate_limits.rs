//! The gate's limits, run as a process against real clients (curl, raw TCP): it
//! refuses to start unable to authenticate anyone, cuts off stalled upstreams (504),
//! caps connections, backs off when accept fails, bounds request bodies (413), and
//! answers an oversized header with 431 over HTTP/1.1 and HTTP/2 alike.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use common::{kerbside, EchoUpstream};
use kerbside_testkit::TestRealm;

/// One realm for the whole binary.
fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// Runs `kerbside gate ARGS` that must refuse to start; gives its exit code and
/// standard error. The gate is killed if it is still running after 10 s.
fn gate_refuses(realm: &TestRealm, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["gate", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.url())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the gate started although it cannot authenticate anyone: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gate_without_a_keytab_refuses_to_start() {
    let realm = realm();
    let missing = realm.dir().join("no-such.keytab");
    let missing_env = format!("FILE:{}", missing.display());
    // No --keytab, and KRB5_KTNAME names a file that does not exist.
    let (code, err) = gate_refuses(realm, &[("KRB5_KTNAME", &missing_env)], &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("ktadd") && err.contains("--keytab"), "{err}");
    // An explicit --keytab that does not exist.
    let (code, err) = gate_refuses(realm, &[], &["--keytab", missing.to_str().unwrap()]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn gate_with_an_empty_keytab_refuses_to_start() {
    let realm = realm();
    let empty = realm.dir().join("empty.keytab");
    std::fs::write(&empty, b"").unwrap();
    let (code, err) = gate_refuses(realm, &[], &["--keytab", empty.to_str().unwrap()]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    assert!(err.contains("holds no keys"), "{err}");
}

#[test]
fn gate_with_a_keytab_for_another_principal_refuses_to_start() {
    let realm = realm();
    let other = realm.dir().join("other.keytab");
    if !other.exists() {
        realm.add_service("HTTP/other").unwrap();
        realm.export_keytab(&["HTTP/other"], &other).unwrap();
    }
    let (code, err) = gate_refuses(
        realm,
        &[],
        &[
            "--keytab",
            other.to_str().unwrap(),
            "--acceptor",
            "HTTP@localhost",
        ],
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&other.display().to_string()), "{err}");
    assert!(err.contains("HTTP/localhost"), "{err}");
    // The same keytab serves when the acceptor is the principal it holds.
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.url())
        .args([
            "--keytab",
            other.to_str().unwrap(),
            "--acceptor",
            "HTTP@other",
        ]);
    let gate = common::GateProcess::from_command(cmd);
    drop(gate);
}
