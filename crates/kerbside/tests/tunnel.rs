//! `kerbside tunnel`: real Mercurial clones and pushes through a local plain-HTTP
//! port, to a repository behind `kerbside gate` (HTTPS, Negotiate), with alice's
//! ticket and no password.

mod common;

use common::{hg, kerbside, run_ok, text, EchoUpstream, GateProcess, HgServe};
use kerbside_testkit::{TestCa, TestRealm};

fn tunnel(realm: &TestRealm, to: &str, ca: &std::path::Path, extra: &[&str]) -> GateProcess {
    let mut cmd = kerbside(realm);
    cmd.args(["tunnel", "--listen", "127.0.0.1:0", "--to", to, "--cacert"])
        .arg(ca)
        .args(extra);
    GateProcess::from_command(cmd)
}

#[test]
fn hg_clones_and_pushes_through_the_tunnel_and_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let served = HgServe::start(realm.dir());
    let gate = GateProcess::start(&realm, Some(&cert), &served.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/"), ca.ca_pem_path(), &[]);

    let work = realm.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = hg(&work)
        .args(["clone", &tunnel.url("/"), "clone"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n--- tunnel:\n{}\n--- gate:\n{}\n--- hg serve:\n{}",
        text(&out),
        tunnel.log(),
        gate.log(),
        served.errors()
    );
    let clone = work.join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "hello from the server\n"
    );
    std::fs::write(clone.join("NEW"), "pushed through kerbside\n").unwrap();
    run_ok(hg(&clone).args(["commit", "-A", "-m", "second"]));
    run_ok(hg(&clone).args(["push"]));
    let log = run_ok(hg(&served.repo).args(["log", "-T", "{desc}\\n"]));
    assert_eq!(log, "second\nfirst\n");
    assert!(
        gate.log().contains("principal=alice@EXAMPLE.TEST"),
        "{}",
        gate.log()
    );
}

#[test]
fn the_tunnel_passes_bodies_and_errors_through_and_stays_on_loopback() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/prefix"), ca.ca_pem_path(), &[]);

    // curl without any Kerberos: the tunnel authenticates for it.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-H",
            "X-Remote-User: mallory",
            "-d",
            "a=1",
        ])
        .arg(tunnel.url("/x?y=z"))
        .output()
        .unwrap();
    let body = text(&out).0;
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(body.contains("path=/prefix/x?y=z\n"), "{body}");
    assert!(body.contains("body=a=1\n"), "{body}");

    // Without a ticket the local tool gets a 401 that says why.
    let no_ticket = {
        let mut cmd = kerbside(&realm);
        cmd.env("KRB5CCNAME", format!("FILE:{}/none", realm.dir().display()))
            .args(["tunnel", "--listen", "127.0.0.1:0", "--to", &gate.url("/")])
            .arg("--cacert")
            .arg(ca.ca_pem_path());
        GateProcess::from_command(cmd)
    };
    let out = std::process::Command::new("curl")
        .args(["-s", "--noproxy", "*", "-w", "\n%{http_code}"])
        .arg(no_ticket.url("/"))
        .output()
        .unwrap();
    let body = text(&out).0;
    assert!(body.contains("run kinit"), "{body}");
    assert!(body.ends_with("401"), "{body}");

    let out = kerbside(&realm)
        .args(["tunnel", "--listen", "0.0.0.0:0", "--to", &gate.url("/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--allow-remote"), "{:?}", text(&out));
}
