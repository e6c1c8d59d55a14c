//! git clones and pushes through `git http-backend` behind `kerbside gate`, with git's
//! own Negotiate support (Debian's git, libcurl GSS-API, `http.emptyAuth`) and
//! alice's ticket.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{clean_env, run_ok, GateProcess};
use kerbside_testkit::{TestCa, TestRealm};

fn git(realm: &TestRealm, ca: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new("/usr/bin/git");
    clean_env(&mut cmd);
    cmd.envs(realm.env())
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_SSL_CAINFO", ca)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "http.emptyAuth=true", "-c", "user.name=Alice"])
        .args([
            "-c",
            "user.email=alice@example.test",
            "-c",
            "init.defaultBranch=main",
        ]);
    cmd
}

#[test]
fn git_clones_and_pushes_with_its_own_negotiate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let root = realm.dir().join("git-root");
    std::fs::create_dir(&root).unwrap();
    run_ok(git(&realm, ca.ca_pem_path(), &root).args(["init", "-q", "--bare", "project.git"]));
    // One commit to clone.
    let seed = realm.dir().join("seed");
    std::fs::create_dir(&seed).unwrap();
    run_ok(git(&realm, ca.ca_pem_path(), &seed).args(["init", "-q"]));
    std::fs::write(seed.join("README"), "first\n").unwrap();
    run_ok(git(&realm, ca.ca_pem_path(), &seed).args(["add", "README"]));
    run_ok(git(&realm, ca.ca_pem_path(), &seed).args(["commit", "-q", "-m", "first"]));
    run_ok(
        git(&realm, ca.ca_pem_path(), &seed)
            .args(["push", "-q"])
            .arg(root.join("project.git"))
            .arg("main"),
    );

    let config = realm.dir().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "tls-cert = {:?}\ntls-key = {:?}\nuser-map = \"strip-realm\"\n\n[[mount]]\npath = \"/git\"\ncgi = \"/usr/lib/git-core/git-http-backend\"\nenv = {{ GIT_PROJECT_ROOT = {:?}, GIT_HTTP_EXPORT_ALL = \"1\" }}\n",
            cert.cert_pem_path(),
            cert.key_pem_path(),
            root
        ),
    )
    .unwrap();
    let gate = {
        let mut cmd = common::kerbside(&realm);
        cmd.args(["gate", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--keytab")
            .arg(realm.keytab());
        GateProcess::from_command(cmd)
    };
    let work = realm.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    let url = gate.url("/git/project.git");
    let out = git(&realm, ca.ca_pem_path(), &work)
        .args(["clone", "-q", &url, "clone"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", gate.log());
    let clone = work.join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "first\n"
    );
    std::fs::write(clone.join("NEW"), "pushed with Kerberos\n").unwrap();
    run_ok(git(&realm, ca.ca_pem_path(), &clone).args(["add", "NEW"]));
    run_ok(git(&realm, ca.ca_pem_path(), &clone).args(["commit", "-q", "-m", "second"]));
    let out = git(&realm, ca.ca_pem_path(), &clone)
        .args(["push", "-q", "origin", "main"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", gate.log());
    let log = run_ok(
        git(&realm, ca.ca_pem_path(), &root.join("project.git")).args([
            "log",
            "--format=%s",
            "main",
        ]),
    );
    assert_eq!(log, "second\nfirst\n");
    assert!(
        gate.log().contains("principal=alice@EXAMPLE.TEST"),
        "{}",
        gate.log()
    );

    // Without a ticket git gets nowhere.
    let out = git(&realm, ca.ca_pem_path(), &work)
        .env("KRB5CCNAME", format!("FILE:{}/none", realm.dir().display()))
        .args(["clone", "-q", &url, "denied"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
