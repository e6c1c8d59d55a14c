//! Mercurial's hgweb.cgi behind `kerbside gate` with `allow-push = alice`: alice clones
//! and pushes through `kerbside tunnel`, bob's push is refused with 403, and with
//! anonymous read allowed, an anonymous push is refused with 401.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{hg, kerbside, run_ok, GateProcess};
use kerbside_testkit::{TestCa, TestRealm};

fn publish(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("published");
    run_ok(hg(dir).arg("init").arg(&repo));
    std::fs::write(repo.join("README"), "first\n").unwrap();
    run_ok(hg(&repo).args(["commit", "-A", "-m", "first"]));
    std::fs::write(repo.join(".hg/hgrc"), "[web]\nallow-push = alice\n").unwrap();
    let cgi = dir.join("hgweb.cgi");
    std::fs::write(
        &cgi,
        format!(
            "#!/usr/bin/python3\nfrom mercurial import demandimport; demandimport.enable()\nfrom mercurial.hgweb import hgweb, wsgicgi\nwsgicgi.launch(hgweb({:?}.encode()))\n",
            repo.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    repo
}

fn gate(realm: &TestRealm, cert: &kerbside_testkit::TestCert, anonymous_read: bool) -> GateProcess {
    let access = if anonymous_read {
        "\n[[access]]\npath = \"/hg\"\noperation = \"read\"\nanonymous = true\n[[access]]\npath = \"/hg\"\noperation = \"push\"\nauthenticated = true\n"
    } else {
        ""
    };
    let config = realm.dir().join(format!("gate-{anonymous_read}.toml"));
    std::fs::write(
        &config,
        format!(
            "tls-cert = {:?}\ntls-key = {:?}\nuser-map = \"strip-realm\"\n\n[[mount]]\npath = \"/hg\"\ncgi = {:?}\nenv = {{ HGRCPATH = \"\" }}\n{access}",
            cert.cert_pem_path(),
            cert.key_pem_path(),
            realm.dir().join("hgweb.cgi"),
        ),
    )
    .unwrap();
    let mut cmd = kerbside(realm);
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--keytab")
        .arg(realm.keytab());
    GateProcess::from_command(cmd)
}

fn tunnel(realm: &TestRealm, to: &str, ca: &Path, ccache: &Path) -> GateProcess {
    let mut cmd = kerbside(realm);
    cmd.env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .args(["tunnel", "--listen", "127.0.0.1:0", "--to", to, "--cacert"])
        .arg(ca);
    GateProcess::from_command(cmd)
}

#[test]
fn alice_pushes_bob_is_refused() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let repo = publish(realm.dir());
    let gate = gate(&realm, &cert, false);
    let bob_cache = realm.user_ccache("bob");
    realm.kinit("bob", "bob-password", &bob_cache).unwrap();
    let alice = tunnel(
        &realm,
        &gate.url("/hg"),
        ca.ca_pem_path(),
        &realm.user_ccache("alice"),
    );
    let bob = tunnel(&realm, &gate.url("/hg"), ca.ca_pem_path(), &bob_cache);

    let work = realm.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    run_ok(hg(&work).args(["clone", &alice.url("/"), "alice"]));
    std::fs::write(work.join("alice/NEW"), "from alice\n").unwrap();
    run_ok(hg(&work.join("alice")).args(["commit", "-A", "-m", "alice was here"]));
    let out = hg(&work.join("alice")).arg("push").output().unwrap();
    assert!(out.status.success(), "{out:?}\n{}", gate.log());
    let log = run_ok(hg(&repo).args(["log", "-T", "{desc}\\n"]));
    assert_eq!(log, "alice was here\nfirst\n");

    run_ok(hg(&work).args(["clone", &bob.url("/"), "bob"]));
    std::fs::write(work.join("bob/NEW"), "from bob\n").unwrap();
    run_ok(hg(&work.join("bob")).args(["commit", "-A", "-m", "bob tries"]));
    let out = hg(&work.join("bob")).arg("push").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP Error 403"), "{err}\n{}", gate.log());
    assert!(
        gate.log()
            .contains("the upstream refused an authenticated user"),
        "{}",
        gate.log()
    );
    let log = run_ok(hg(&repo).args(["log", "-T", "{desc}\\n"]));
    assert!(!log.contains("bob tries"));
}

#[test]
fn anonymous_read_and_authenticated_push() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    publish(realm.dir());
    let gate = gate(&realm, &cert, true);
    let work = realm.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    // Mercurial itself, no Kerberos, straight to the gate over HTTPS.
    let cacerts = format!("web.cacerts={}", ca.ca_pem_path().display());
    run_ok(hg(&work).args(["--config", &cacerts, "clone", &gate.url("/hg"), "anon"]));
    std::fs::write(work.join("anon/NEW"), "anonymous\n").unwrap();
    run_ok(hg(&work.join("anon")).args(["commit", "-A", "-m", "anonymous"]));
    let out = hg(&work.join("anon"))
        .args(["--config", &cacerts, "push"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("401") || text.contains("authorization"),
        "{text}\n{}",
        gate.log()
    );
}
