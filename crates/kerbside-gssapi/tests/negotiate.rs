//! The initiator and acceptor against a real MIT KDC (kerbside-testkit), in-process.
//! Each test holds the realm's environment guard while it calls GSSAPI.

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, ClientCredentials, Delegation, GssError, InitiatorConfig,
    NegotiateAcceptor, NegotiateInitiator, Problem,
};
use kerbside_proto::{Mechanism, MutualAuth, Step};
use kerbside_testkit::TestRealm;

fn acceptor(realm: &TestRealm) -> NegotiateAcceptor {
    NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .expect("acceptor from the realm's keytab")
}

fn first_token(config: &InitiatorConfig) -> Result<(NegotiateInitiator, Vec<u8>), GssError> {
    let mut init = NegotiateInitiator::new(config)?;
    let token = match init.step(None)? {
        Step::Continue(t) => t,
        Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no first token"),
    };
    Ok((init, token))
}

#[test]
fn login_with_mutual_authentication() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let (mut init, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    // SPNEGO: the token starts with the GSSAPI application tag 0x60.
    assert_eq!(token.first(), Some(&0x60));
    let AcceptStep::Done {
        principal, token, ..
    } = acceptor(&realm).accept(&token).unwrap()
    else {
        panic!("Kerberos should complete in one leg");
    };
    assert_eq!(principal, "alice@EXAMPLE.TEST");
    let final_token = token.expect("mutual authentication gives a final token");
    assert_eq!(init.step(Some(&final_token)).unwrap(), Step::Done(None));
    // Without keep_ticket_cache_copies (a one-shot client), the credential is the
    // user's cache itself: the service ticket is stored there, as curl's are.
    assert_eq!(init.credential_generation(), None);
    let context = kerbside_gssapi::krb5::Context::new().unwrap();
    let tickets = context.default_ccache().unwrap().tickets().unwrap();
    assert!(
        tickets
            .iter()
            .any(|t| t.server == "HTTP/localhost@EXAMPLE.TEST"),
        "{tickets:?}"
    );
}

/// What the accept itself reports besides the name (kerbside asks
/// `gss_accept_sec_context` for it in the one call): the ticket's remaining lifetime,
/// whether the token was bound to the channel the acceptor was given, and no
/// delegation unless asked for.
#[test]
fn the_accept_reports_lifetime_and_channel_binding() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let binding = b"tls-server-end-point:0123456789abcdef0123456789abcdef".to_vec();
    let mut bound = InitiatorConfig::for_host("localhost");
    bound.channel_bindings = Some(binding.clone());
    let (_init, token) = first_token(&bound).unwrap();
    let AcceptStep::Done {
        principal,
        channel_bound,
        lifetime,
        delegated,
        ..
    } = acceptor(&realm)
        .context()
        .step(&token, Some(&binding))
        .unwrap()
    else {
        panic!("one leg");
    };
    assert_eq!(principal, "alice@EXAMPLE.TEST");
    assert!(
        channel_bound,
        "the token carries the binding the acceptor checked"
    );
    assert!(!delegated);
    let lifetime = lifetime.expect("the ticket's lifetime");
    // The realm's tickets live 10 hours (max_life) and were just issued; MIT adds the
    // clock skew (5 minutes) to an acceptor's context lifetime.
    assert!(
        lifetime > std::time::Duration::from_secs(3600)
            && lifetime <= std::time::Duration::from_secs(10 * 3600 + 300),
        "{lifetime:?}"
    );

    let (_init, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    let AcceptStep::Done { channel_bound, .. } = acceptor(&realm).accept(&token).unwrap() else {
        panic!("one leg");
    };
    assert!(!channel_bound, "no binding in the token, none given");
}

#[test]
fn a_tampered_final_token_fails_mutual_authentication() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let (mut init, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    let AcceptStep::Done {
        token: Some(mut fin),
        ..
    } = acceptor(&realm).accept(&token).unwrap()
    else {
        panic!("expected a final token");
    };
    let last = fin.len() - 1;
    fin[last] ^= 0x55;
    assert!(init.step(Some(&fin)).is_err());
}

#[test]
fn without_mutual_the_acceptor_still_authenticates() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let mut config = InitiatorConfig::for_host("127.0.0.1");
    config.mutual = MutualAuth::Off;
    // SPNEGO still expects the acceptor's answer, so the first step may continue.
    let (_init, token) = first_token(&config).unwrap();
    let AcceptStep::Done { principal, .. } = acceptor(&realm).accept(&token).unwrap() else {
        panic!("one leg");
    };
    assert_eq!(principal, "alice@EXAMPLE.TEST");
}

#[test]
fn a_replayed_token_is_rejected() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let (_init, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    let acceptor = acceptor(&realm);
    assert!(matches!(
        acceptor.accept(&token),
        Ok(AcceptStep::Done { .. })
    ));
    let err = acceptor.accept(&token).unwrap_err();
    assert_eq!(err.problem(), Problem::Replay, "{err}");
}

#[test]
fn garbage_is_a_defective_token_not_a_crash() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acceptor = acceptor(&realm);
    for junk in [
        &b"\x60\x03\x06\x01\x00"[..],
        b"hello",
        b"\x60",
        &[0xff; 300],
    ] {
        let err = acceptor.accept(junk).unwrap_err();
        assert!(
            matches!(
                err.problem(),
                Problem::DefectiveToken | Problem::Unsupported
            ),
            "{junk:?}: {err}"
        );
    }
}

#[test]
fn no_ticket_says_run_kinit() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials =
        ClientCredentials::Ccache(format!("FILE:{}/nobody.ccache", realm.dir().display()));
    let err = first_token(&config).unwrap_err();
    assert_eq!(err.problem(), Problem::NoCredentials, "{err}");
    assert!(
        err.to_string()
            .starts_with("no Kerberos credentials for this user: run kinit"),
        "{err}"
    );
}

#[test]
fn an_unknown_service_is_named_in_the_error() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let err = first_token(&InitiatorConfig::for_host("nosuchhost.example.test")).unwrap_err();
    assert_eq!(err.problem(), Problem::ServerPrincipalUnknown, "{err}");
    assert!(
        err.to_string().contains("HTTP@nosuchhost.example.test"),
        "{err}"
    );
}

#[test]
fn a_keytab_without_the_key_and_a_stale_key_version_are_explained() {
    let realm = TestRealm::start().unwrap();
    realm.add_service("HTTP/other.example.test").unwrap();
    let other = realm.dir().join("other.keytab");
    realm
        .export_keytab(&["HTTP/other.example.test"], &other)
        .unwrap();
    let _env = realm.enter();
    let (_i, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    let wrong = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(other),
        acceptor_name: None,
    })
    .unwrap();
    let err = wrong.accept(&token).unwrap_err();
    assert_eq!(err.problem(), Problem::KeytabLacksKey, "{err}");

    // New key at the KDC (kvno 2), keytab still holds kvno 1.
    realm.kadmin("cpw -randkey HTTP/localhost").unwrap();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials =
        ClientCredentials::Ccache(format!("FILE:{}", realm.user_ccache("bob").display()));
    realm
        .kinit("bob", "bob-password", &realm.user_ccache("bob"))
        .unwrap();
    let (_i, token) = first_token(&config).unwrap();
    let err = acceptor(&realm).accept(&token).unwrap_err();
    assert_eq!(err.problem(), Problem::WrongKeyVersion, "{err}");
    assert!(err.to_string().contains("kvno"), "{err}");
}

#[test]
fn an_acceptor_name_restricts_which_tickets_are_accepted() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let only_ip = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: Some("HTTP@127.0.0.1".to_owned()),
    })
    .unwrap();
    let (_i, token) = first_token(&InitiatorConfig::for_host("localhost")).unwrap();
    assert!(only_ip.accept(&token).is_err());
    let (_i, token) = first_token(&InitiatorConfig::for_host("127.0.0.1")).unwrap();
    assert!(matches!(
        only_ip.accept(&token),
        Ok(AcceptStep::Done { .. })
    ));
}

#[test]
fn an_unreachable_kdc_is_explained() {
    let realm = TestRealm::start().unwrap();
    // A krb5.conf whose KDC port has nothing listening.
    let dead = kerbside_testkit::free_port().unwrap();
    let conf = std::fs::read_to_string(realm.krb5_conf())
        .unwrap()
        .replace(&format!(":{}", realm.kdc_port()), &format!(":{dead}"));
    let conf_path = realm.dir().join("dead-krb5.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let _env = realm.enter();
    let old = std::env::var_os("KRB5_CONFIG");
    // SAFETY (edition 2021: safe fn): the realm guard serialises environment access.
    std::env::set_var("KRB5_CONFIG", &conf_path);
    let mut config = InitiatorConfig::for_host("localhost");
    // A fresh cache with only a TGT would still need the KDC; an empty one would say
    // "no credentials", so get a TGT now and ask for the service ticket later.
    config.credentials =
        ClientCredentials::Ccache(format!("FILE:{}", realm.user_ccache("bob").display()));
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    realm
        .kinit("bob", "bob-password", &realm.user_ccache("bob"))
        .unwrap();
    std::env::set_var("KRB5_CONFIG", &conf_path);
    let err = first_token(&config).unwrap_err();
    if let Some(old) = old {
        std::env::set_var("KRB5_CONFIG", old);
    }
    assert_eq!(err.problem(), Problem::KdcUnreachable, "{err}");
}

#[test]
fn the_acceptor_says_what_is_wrong_with_a_missing_keytab() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let err = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.dir().join("missing.keytab")),
        acceptor_name: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("missing.keytab"), "{err}");
}

#[test]
fn an_expired_ticket_says_run_kinit_again() {
    let realm = TestRealm::start().unwrap();
    let ccache = realm.dir().join("short.ccache");
    let mut kinit = realm
        .command("kinit")
        .args(["-l", "3s", "-c"])
        .arg(&ccache)
        .arg("bob")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    kinit
        .stdin
        .take()
        .unwrap()
        .write_all(b"bob-password\n")
        .unwrap();
    assert!(kinit.wait().unwrap().success());
    let _env = realm.enter();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials = ClientCredentials::Ccache(format!("FILE:{}", ccache.display()));
    // The event is GSSAPI seeing the 3-second ticket as expired: ask for a token every
    // 100 ms until it refuses (at most 30 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let err = loop {
        match first_token(&config) {
            Err(err) => break err,
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "bob's 3-second ticket still makes tokens after 30 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    assert_eq!(err.problem(), Problem::ExpiredTicket, "{err}");
    assert!(err.to_string().contains("expired: run kinit"), "{err}");
}

#[test]
fn credentials_from_a_client_keytab_and_from_a_password() {
    let realm = TestRealm::start().unwrap();
    let keytab = realm.dir().join("bob.keytab");
    // -norandkey keeps bob's password valid.
    realm.export_keytab(&["bob"], &keytab).unwrap();
    let _env = realm.enter();
    let acceptor = acceptor(&realm);
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials = ClientCredentials::Keytab {
        path: keytab,
        principal: Some("bob@EXAMPLE.TEST".into()),
    };
    let (_i, token) = first_token(&config).unwrap();
    let AcceptStep::Done { principal, .. } = acceptor.accept(&token).unwrap() else {
        panic!("one leg");
    };
    assert_eq!(principal, "bob@EXAMPLE.TEST");

    config.credentials = ClientCredentials::Password {
        principal: "bob".into(),
        password: "bob-password".into(),
    };
    assert!(
        !format!("{config:?}").contains("bob-password"),
        "Debug must hide the password"
    );
    let (_i, token) = first_token(&config).unwrap();
    let AcceptStep::Done { principal, .. } = acceptor.accept(&token).unwrap() else {
        panic!("one leg");
    };
    assert_eq!(principal, "bob@EXAMPLE.TEST");

    config.credentials = ClientCredentials::Password {
        principal: "bob".into(),
        password: "wrong".into(),
    };
    assert!(first_token(&config).is_err());
}

#[test]
fn delegation_is_off_by_default_and_policy_respects_ok_as_delegate() {
    let realm = TestRealm::start().unwrap();
    // alice's ticket must be forwardable for delegation to happen at all.
    realm
        .kinit("alice", "alice-password", &realm.user_ccache("alice"))
        .unwrap();
    let _env = realm.enter();
    let acceptor = acceptor(&realm);
    let delegated = |delegation| {
        let mut config = InitiatorConfig::for_host("localhost");
        config.delegation = delegation;
        let (_i, token) = first_token(&config).unwrap();
        match acceptor.accept(&token).unwrap() {
            AcceptStep::Done { delegated, .. } => delegated,
            other => panic!("{other:?}"),
        }
    };
    assert!(!delegated(Delegation::None));
    // HTTP/localhost is not marked ok-as-delegate in the test realm.
    assert!(!delegated(Delegation::Policy));
    assert!(delegated(Delegation::Always));
}
