//! The test realm against the real MIT tools: tickets, keytabs, parallel realms, shutdown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;
use std::thread;

use kerbside_testkit::TestRealm;

fn stdout_of(what: &str, output: std::io::Result<Output>, realm: &TestRealm) -> String {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}\n--- kdc.log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        realm.kdc_log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn realm_has_alice_ticket_and_http_keytab() {
    let realm = TestRealm::start().unwrap();
    assert_eq!(realm.realm(), "EXAMPLE.TEST");

    let klist = stdout_of("klist", realm.command("klist").output(), &realm);
    assert!(
        klist.contains("Default principal: alice@EXAMPLE.TEST"),
        "{klist}"
    );
    assert!(
        klist.contains("krbtgt/EXAMPLE.TEST@EXAMPLE.TEST"),
        "{klist}"
    );

    let keytab = stdout_of(
        "klist -k",
        realm.command("klist").arg("-k").output(),
        &realm,
    );
    assert!(keytab.contains("HTTP/localhost@EXAMPLE.TEST"), "{keytab}");
    assert!(keytab.contains("HTTP/127.0.0.1@EXAMPLE.TEST"), "{keytab}");

    // A service ticket for HTTP/localhost, as curl or a GSSAPI initiator would get one.
    stdout_of(
        "kvno",
        realm.command("kvno").arg("HTTP/localhost").output(),
        &realm,
    );

    let conf = std::fs::read_to_string(realm.krb5_conf()).unwrap();
    assert!(
        conf.contains(&format!("kdc = 127.0.0.1:{}", realm.kdc_port())),
        "{conf}"
    );
    assert!(realm.kdc_conf().exists());
    assert!(realm.dir().join("alice.ccache").exists());
}

#[test]
fn users_services_and_keytabs_can_be_added() {
    let realm = TestRealm::start().unwrap();
    let ccache = realm.user_ccache("bob");
    realm.kinit("bob", "bob-password", &ccache).unwrap();
    let klist = stdout_of(
        "klist bob",
        realm.command("klist").arg("-c").arg(&ccache).output(),
        &realm,
    );
    assert!(klist.contains("bob@EXAMPLE.TEST"), "{klist}");

    let err = realm.kinit("bob", "wrong-password", &ccache).unwrap_err();
    assert!(err.to_string().contains("kinit"), "{err}");

    realm.add_user("carol", "carol password").unwrap();
    realm
        .kinit("carol", "carol password", &realm.user_ccache("carol"))
        .unwrap();

    realm.add_service("HTTP/www.example.test").unwrap();
    let keytab = realm.dir().join("www.keytab");
    realm
        .export_keytab(&["HTTP/www.example.test"], &keytab)
        .unwrap();
    let listing = stdout_of(
        "klist -k",
        realm.command("klist").arg("-k").arg(&keytab).output(),
        &realm,
    );
    assert!(
        listing.contains("HTTP/www.example.test@EXAMPLE.TEST"),
        "{listing}"
    );
    // Exporting did not re-randomize the key: the original keytab still matches the KDC.
    let kvnos = stdout_of(
        "klist -k",
        realm.command("klist").arg("-k").output(),
        &realm,
    );
    let principal = realm.kadmin("getprinc HTTP/localhost").unwrap();
    assert!(principal.contains("vno 1"), "{principal}");
    assert!(
        kvnos.contains("   1 HTTP/localhost@EXAMPLE.TEST"),
        "{kvnos}"
    );

    // kadmin.local exits 0 on failed queries; the harness still reports them.
    let err = realm.add_user("alice", "again").unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(realm.kadmin("getprinc nobody-here").is_err());
}

#[test]
fn two_realms_run_concurrently_on_different_ports() {
    let starts: Vec<_> = (0..2)
        .map(|_| thread::spawn(|| TestRealm::start().unwrap()))
        .collect();
    let realms: Vec<TestRealm> = starts.into_iter().map(|h| h.join().unwrap()).collect();
    assert_ne!(realms[0].kdc_port(), realms[1].kdc_port());
    assert_ne!(realms[0].dir(), realms[1].dir());
    thread::scope(|s| {
        for realm in &realms {
            s.spawn(move || {
                let ccache = realm.user_ccache("bob");
                realm.kinit("bob", "bob-password", &ccache).unwrap();
                let out = stdout_of(
                    "kvno",
                    realm
                        .command("kvno")
                        .arg("HTTP/127.0.0.1")
                        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
                        .output(),
                    realm,
                );
                assert!(out.contains("HTTP/127.0.0.1@EXAMPLE.TEST"), "{out}");
            });
        }
    });
}

#[test]
fn drop_stops_only_its_own_kdc() {
    let doomed = TestRealm::start().unwrap();
    let survivor = TestRealm::start().unwrap();
    let doomed_pid = doomed.kdc_pid();
    let doomed_dir = doomed.dir().to_path_buf();
    assert!(pid_alive(doomed_pid));

    drop(doomed);
    assert!(!pid_alive(doomed_pid), "krb5kdc {doomed_pid} still running");
    assert!(!doomed_dir.exists(), "{} not removed", doomed_dir.display());

    assert!(pid_alive(survivor.kdc_pid()));
    survivor
        .kinit("bob", "bob-password", &survivor.user_ccache("bob"))
        .unwrap();
}

#[test]
fn enter_sets_and_restores_the_process_environment() {
    let realm = TestRealm::start().unwrap();
    let before = std::env::var_os("KRB5_CONFIG");
    {
        let _env = realm.enter();
        assert_eq!(
            std::env::var_os("KRB5_CONFIG").as_deref(),
            Some(realm.krb5_conf().as_os_str())
        );
        let ccname = std::env::var("KRB5CCNAME").unwrap();
        assert_eq!(
            ccname,
            format!("FILE:{}", realm.user_ccache("alice").display())
        );
        // A child that inherits the process environment sees the realm too.
        let out = std::process::Command::new("klist").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("alice@EXAMPLE.TEST"));
    }
    assert_eq!(std::env::var_os("KRB5_CONFIG"), before);
}
