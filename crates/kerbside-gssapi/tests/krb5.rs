//! `kerbside_gssapi::krb5` against a real MIT KDC (kerbside-testkit), in-process:
//! configuration values, a ticket cache's tickets, service tickets with their enctype
//! and kvno, memory caches from a password or a keytab, and each error's kind.
#![allow(clippy::unwrap_used)]

use kerbside_gssapi::krb5::{enctype_name, Context, Krb5ErrorKind};
use kerbside_testkit::TestRealm;

#[test]
fn caches_tickets_and_errors_against_a_real_kdc() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let context = Context::new().unwrap();
    assert_eq!(context.default_realm().as_deref(), Some("EXAMPLE.TEST"));
    assert_eq!(
        context.profile_values(&["realms", "EXAMPLE.TEST", "kdc"]),
        vec![format!("127.0.0.1:{}", realm.kdc_port())]
    );
    assert_eq!(
        context.profile_values(&["libdefaults", "rdns"]),
        vec!["false".to_owned()]
    );
    assert!(context
        .profile_values(&["libdefaults", "no-such-relation"])
        .is_empty());

    // alice's cache: her TGT, with times and flags.
    let cache = context.default_ccache().unwrap();
    assert_eq!(cache.cache_type(), "FILE");
    assert_eq!(cache.principal().unwrap(), "alice@EXAMPLE.TEST");
    let tickets = cache.tickets().unwrap();
    let tgt = tickets.iter().find(|t| t.is_tgt()).unwrap();
    assert_eq!(tgt.server, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST");
    assert!(tgt.times.endtime > tgt.times.authtime);
    assert!(tgt.flags.initial() && tgt.flags.forwardable(), "{tgt:?}");

    // A service ticket: host-based and principal forms, kvno and enctype read.
    let ticket = cache.service_ticket("HTTP@localhost").unwrap();
    assert_eq!(ticket.server, "HTTP/localhost@EXAMPLE.TEST");
    assert_eq!(ticket.kvno, Some(1));
    assert_eq!(
        ticket.enctype.map(enctype_name).as_deref(),
        Some("aes256-cts-hmac-sha1-96")
    );
    assert!(ticket.size > 100);
    realm.kadmin("cpw -randkey HTTP/127.0.0.1").unwrap();
    let ticket = cache.service_ticket("HTTP/127.0.0.1@EXAMPLE.TEST").unwrap();
    assert_eq!(ticket.kvno, Some(2));
    let e = cache
        .service_ticket("HTTP@nosuch.example.test")
        .unwrap_err();
    assert_eq!(e.kind(), Krb5ErrorKind::UnknownServer, "{e}");

    // No cache at all.
    let missing = format!("FILE:{}/missing", realm.dir().display());
    let e = context
        .resolve_ccache(&missing)
        .unwrap()
        .principal()
        .unwrap_err();
    assert_eq!(e.kind(), Krb5ErrorKind::NoCredentials, "{e}");

    // A password: the right one gives a memory cache; a wrong one is named as such.
    let bob = context.password_ccache("bob", "bob-password").unwrap();
    assert_eq!(bob.cache_type(), "MEMORY");
    assert_eq!(bob.principal().unwrap(), "bob@EXAMPLE.TEST");
    assert!(bob.service_ticket("HTTP@localhost").is_ok());
    let e = context.password_ccache("bob", "wrong").unwrap_err();
    assert_eq!(e.kind(), Krb5ErrorKind::WrongKey, "{e}");
    let e = context.password_ccache("nobody", "x").unwrap_err();
    assert_eq!(e.kind(), Krb5ErrorKind::UnknownClient, "{e}");

    // A keytab: its first principal, or the one named.
    let keytab = realm.dir().join("bob.keytab");
    realm.export_keytab(&["bob"], &keytab).unwrap();
    let from_keytab = context
        .keytab_ccache(keytab.to_str().unwrap(), None)
        .unwrap();
    assert_eq!(from_keytab.principal().unwrap(), "bob@EXAMPLE.TEST");
    let e = context
        .keytab_ccache(keytab.to_str().unwrap(), Some("alice"))
        .unwrap_err();
    assert_eq!(e.kind(), Krb5ErrorKind::NoKey, "{e}");
}
