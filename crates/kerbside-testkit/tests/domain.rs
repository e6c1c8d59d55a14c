//! The Samba AD test domain against MIT's kinit, kvno and klist, and its shutdown.
//!
//! One test: a domain costs seconds to provision, and only one can run on a machine at a time.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::Output;

use kerbside_testkit::{ServiceKeys, TestDomain, FIXED_PORTS, WINBINDD_SOCKET};

fn stdout_of(what: &str, output: std::io::Result<Output>, domain: &TestDomain) -> String {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        domain.samba_log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for init to reap it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.get(stat.rfind(')')? + 2..)?.chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

#[test]
fn domain_serves_mit_clients_and_stops_without_a_trace() {
    let domain = TestDomain::start().unwrap();
    let ccache = domain.user_ccache("alice");
    domain.kinit("alice", "alice-password", &ccache).unwrap();
    let klist = stdout_of("klist", domain.command("klist").output(), &domain);
    assert!(
        klist.contains("Default principal: alice@AD.EXAMPLE.TEST"),
        "{klist}"
    );
    // The relaxed password policy: no expiry warning from kinit, and no expiry at all.
    assert!(!klist.contains("expire"), "{klist}");

    // A wrong password is refused by the domain's KDC.
    let wrong = domain.kinit("alice", "not-her-password", &domain.user_ccache("wrong"));
    assert!(wrong.is_err(), "kinit with a wrong password succeeded");

    // Service accounts: AD's default RC4 keys, and AES only.
    domain
        .add_service_account(
            "svc-rc4",
            &["HTTP/rc4.ad.example.test"],
            ServiceKeys::Rc4Default,
        )
        .unwrap();
    domain
        .add_service_account(
            "svc-aes",
            &["HTTP/aes.ad.example.test"],
            ServiceKeys::AesOnly,
        )
        .unwrap();
    for (spn, etype) in [
        ("HTTP/rc4.ad.example.test", "arcfour-hmac"),
        ("HTTP/aes.ad.example.test", "aes256-cts-hmac-sha1-96"),
    ] {
        let keytab = domain.dir().join(format!("{}.keytab", &spn[5..8]));
        domain.export_keytab(spn, &keytab).unwrap();
        let keys = stdout_of(
            "klist -ke",
            domain.command("klist").arg("-ke").arg(&keytab).output(),
            &domain,
        );
        assert!(keys.contains(&format!("{spn}@AD.EXAMPLE.TEST")), "{keys}");
        assert!(keys.contains(etype), "{spn} should have {etype}: {keys}");
        if etype.starts_with("aes") {
            assert!(!keys.contains("arcfour"), "AES-only keytab: {keys}");
        }
        // kvno gets a service ticket with alice's TGT, encrypted with that key.
        let kvno = stdout_of("kvno", domain.command("kvno").arg(spn).output(), &domain);
        assert!(
            kvno.contains(&format!("{spn}@AD.EXAMPLE.TEST: kvno = ")),
            "{kvno}"
        );
        let tickets = stdout_of(
            "klist -e",
            domain.command("klist").arg("-e").output(),
            &domain,
        );
        let line = tickets
            .lines()
            .skip_while(|l| !l.contains(spn))
            .nth(1)
            .unwrap_or_default();
        assert!(line.contains(etype), "{spn}'s ticket: {tickets}");
    }

    // The name forms AD takes at kinit: another case, and the UPN as an enterprise name.
    let upper = domain.user_ccache("ALICE");
    domain.kinit("ALICE", "alice-password", &upper).unwrap();
    let enterprise = domain.user_ccache("alice-upn");
    domain
        .kinit_with(
            &["-E"],
            "alice@ad.example.test",
            "alice-password",
            &enterprise,
        )
        .unwrap();

    // Nested groups.
    domain.add_group("developers").unwrap();
    domain.add_group("engineering").unwrap();
    domain.add_group_member("developers", "alice").unwrap();
    domain
        .add_group_member("engineering", "developers")
        .unwrap();
    let members = domain
        .samba_tool(&["group", "listmembers", "engineering"])
        .unwrap();
    assert!(members.contains("developers"), "{members}");

    // Many groups at once.
    domain.add_user("many", "many-password").unwrap();
    domain.add_user_to_new_groups("many", "bulk", 20).unwrap();
    let groups = domain.samba_tool(&["user", "getgroups", "many"]).unwrap();
    assert_eq!(
        groups.lines().filter(|l| l.starts_with("bulk-")).count(),
        20,
        "{groups}"
    );

    // Stopping leaves no process, no port and no winbindd socket behind.
    let pids = domain.pids();
    assert!(
        pids.len() > 3,
        "samba and winbindd should be running: {pids:?}"
    );
    let dir = domain.dir().to_path_buf();
    domain.stop().unwrap();
    let alive: Vec<u32> = pids.iter().copied().filter(|pid| running(*pid)).collect();
    assert!(alive.is_empty(), "still running after stop: {alive:?}");
    for port in FIXED_PORTS {
        assert!(
            TcpListener::bind(("127.0.0.1", *port)).is_ok(),
            "port {port} is still taken after stop"
        );
    }
    assert!(
        std::os::unix::net::UnixStream::connect(WINBINDD_SOCKET).is_err(),
        "winbindd still answers after stop"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
}
