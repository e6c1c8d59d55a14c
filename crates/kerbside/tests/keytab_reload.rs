//! The gate reads its keytab into memory once and reads it again when the file
//! changes, so keys rotated under a running gate work without a restart: the service
//! is re-keyed with MIT's `kadmin.local ktadd` (which appends the new kvno to the
//! keytab file) while the gate runs, and curl (MIT's initiator through libcurl) gets
//! in with tickets of the old kvno and of the new one; a keytab replaced by another
//! file holding only the new key is read too (within a second), and the old kvno's
//! tickets are then refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{curl, text, EchoUpstream, GateProcess};
use kerbside_testkit::{TestCa, TestRealm};

const SERVICE: &str = "HTTP/localhost";

/// `curl --negotiate` with the tickets of `ccache`; its output is the status and body.
fn get(realm: &TestRealm, ca: &TestCa, ccache: &Path, url: &str) -> Output {
    let mut name = OsString::from("FILE:");
    name.push(ccache);
    curl(realm, ca.ca_pem_path())
        .env("KRB5CCNAME", name)
        .args(["--negotiate", "-u", ":", "-w", "\nstatus=%{http_code}\n"])
        .arg(url)
        .output()
        .unwrap()
}

/// The kvno of the cached ticket for the service in `ccache` (`kvno --cached-only`).
fn ticket_kvno(realm: &TestRealm, ccache: &Path) -> u32 {
    let mut name = OsString::from("FILE:");
    name.push(ccache);
    let out = realm
        .command("kvno")
        .env("KRB5CCNAME", name)
        .args(["--cached-only", SERVICE])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    stdout
        .rsplit("kvno = ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no kvno in {stdout:?}"))
}

/// The service's kvnos in `keytab`, as `klist -k` lists them.
fn keytab_kvnos(realm: &TestRealm, keytab: &Path) -> Vec<u32> {
    let out = realm
        .command("klist")
        .arg("-k")
        .arg(keytab)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let mut kvnos: Vec<u32> = stdout
        .lines()
        .filter(|line| line.contains(SERVICE))
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect();
    kvnos.dedup();
    kvnos
}

fn assert_let_in(what: &str, out: &Output, gate: &GateProcess) {
    let (body, err) = text(out);
    assert!(
        body.contains("users=alice@EXAMPLE.TEST\n") && body.ends_with("status=200\n"),
        "{what}: {body}{err}\n{}",
        gate.log()
    );
}

#[test]
fn keys_added_and_replaced_under_a_running_gate_are_read_without_a_restart() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let upstream = EchoUpstream::start();
    let keytab = realm.keytab().to_path_buf();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let url = gate.url("/rotate");

    // A ticket at the first kvno, kept in its own cache.
    let before = realm.dir().join("before.ccache");
    realm.kinit("alice", "alice-password", &before).unwrap();
    assert_let_in("before", &get(&realm, &ca, &before, &url), &gate);
    let old = ticket_kvno(&realm, &before);

    // Re-keyed while the gate runs: ktadd makes a new random key and appends it.
    realm
        .kadmin(&format!("ktadd -k \"{}\" {SERVICE}", keytab.display()))
        .unwrap();
    let kvnos = keytab_kvnos(&realm, &keytab);
    assert!(
        kvnos.contains(&old) && kvnos.contains(&(old + 1)),
        "{kvnos:?}"
    );

    // A ticket at the new kvno gets in at once (its first failure makes the gate look
    // at the file), and the old ticket still does.
    let after = realm.dir().join("after.ccache");
    realm.kinit("alice", "alice-password", &after).unwrap();
    assert_let_in("after", &get(&realm, &ca, &after, &url), &gate);
    assert_eq!(ticket_kvno(&realm, &after), old + 1);
    assert_let_in(
        "before, after the re-key",
        &get(&realm, &ca, &before, &url),
        &gate,
    );
    assert!(
        gate.wait_for_log(|log| log.contains("keytab changed: its keys were read again")),
        "{}",
        gate.log()
    );

    // The file replaced (a new inode) by one holding only the new key: the old kvno's
    // tickets are refused, the new ones still get in.
    let only_new = realm.dir().join("only-new.keytab");
    realm
        .kadmin(&format!(
            "ktadd -norandkey -k \"{}\" {SERVICE}",
            only_new.display()
        ))
        .unwrap();
    assert_eq!(keytab_kvnos(&realm, &only_new), [old + 1]);
    std::fs::rename(&only_new, &keytab).unwrap();
    // The gate looks at the file at most once a second while tokens are accepted, so
    // the old ticket may get in until then: poll, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (body, err) = text(&get(&realm, &ca, &before, &url));
        if body.ends_with("status=401\n") {
            break;
        }
        assert!(
            body.ends_with("status=200\n") && Instant::now() < deadline,
            "the old key is still accepted: {body}{err}\n{}",
            gate.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        gate.log()
            .matches("keytab changed: its keys were read again")
            .count(),
        2,
        "{}",
        gate.log()
    );
    assert_let_in(
        "after, with the old key gone",
        &get(&realm, &ca, &after, &url),
        &gate,
    );
}
