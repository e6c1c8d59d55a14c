//! The identification table's cases one by one: where a Kerberos login is
//! remembered, when a second leg can wait, required bindings, NTLM inside SPNEGO,
//! and any token or scheme name routed (property test).

use super::tests_verdict::*;
use super::*;
use crate::scheme::negotiate::server::Presented;
use proptest::prelude::*;

fn setup(mode: ServerMode) -> Setup {
    Setup {
        mode,
        kerberos: true,
        ntlm: None,
        digest: false,
        basic_users: false,
        basic_kdc: false,
        sessions: false,
        binding: BindingPolicy::Optional,
    }
}

const H1: RequestFacts = RequestFacts {
    h2: false,
    per_connection: true,
    binding: false,
};

fn kerberos(setup: &Setup, facts: RequestFacts) -> ExpectKerberos {
    let Start::Negotiate(n) = identify(setup, facts, Brings::KerberosToken.authorization()) else {
        panic!("not a Negotiate start")
    };
    match n.route(false) {
        NegotiateRoute::Kerberos(k) => k,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_kerberos_login_is_remembered_where_the_mode_says() {
    let cases = [
        (ServerMode::PerRequest, false, Remember::Nothing),
        (ServerMode::Connection, false, Remember::OnConnection),
        (ServerMode::Cookie, true, Remember::SessionCookie),
        // Cookie mode without a codec (the builder refuses it) makes no cookie.
        (ServerMode::Cookie, false, Remember::Nothing),
    ];
    for (mode, sessions, want) in cases {
        let setup = Setup {
            sessions,
            ..setup(mode)
        };
        let k = kerberos(&setup, H1);
        assert_eq!(k.keeps_context(), mode == ServerMode::Connection);
        let Verdict::Authenticated(login) = k.handle(KerberosOutcome::Done(verified(true, false)))
        else {
            panic!("not a login")
        };
        assert_eq!(login.remember, want, "{mode:?}");
        assert_eq!(login.final_token.as_deref(), Some(&b"final"[..]));
    }
}

#[test]
fn a_second_leg_waits_only_on_a_known_connection() {
    let per_request = kerberos(&setup(ServerMode::PerRequest), H1);
    assert_eq!(
        per_request.handle(KerberosOutcome::Continue(b"t".to_vec())),
        Verdict::Refuse(Refusal::unauthorized())
    );
    let connection = kerberos(&setup(ServerMode::Connection), H1);
    assert_eq!(
        connection.handle(KerberosOutcome::Continue(b"t".to_vec())),
        Verdict::Refuse(Refusal::continue_with(Continuation::Negotiate(
            b"t".to_vec()
        )))
    );
}

#[test]
fn required_bindings_refuse_an_unbound_token_only_over_tls() {
    let setup = Setup {
        binding: BindingPolicy::Required,
        ..setup(ServerMode::PerRequest)
    };
    let tls = RequestFacts {
        binding: true,
        ..H1
    };
    let k = kerberos(&setup, tls);
    assert!(k.uses_binding());
    assert_eq!(
        k.handle(KerberosOutcome::Done(verified(false, false))),
        Verdict::Refuse(Refusal::failed(Failure::ChannelBindingsMissing))
    );
    let k = kerberos(&setup, H1);
    assert!(matches!(
        k.handle(KerberosOutcome::Done(verified(false, false))),
        Verdict::Authenticated(_)
    ));
    let off = Setup {
        binding: BindingPolicy::Off,
        ..setup
    };
    assert!(!kerberos(&off, tls).uses_binding());
}

#[test]
fn spnego_ntlm_takes_its_own_tokens_and_raw_ntlm_goes_to_gssapi() {
    let setup = Setup {
        ntlm: Some(NtlmSetup { in_negotiate: true }),
        ..setup(ServerMode::Connection)
    };
    let route = |brings: Brings, pending: bool| {
        let Start::Negotiate(n) = identify(&setup, H1, brings.authorization()) else {
            panic!()
        };
        n.route(pending)
    };
    assert!(matches!(
        route(Brings::SpnegoNtlmToken, false),
        NegotiateRoute::SpnegoNtlmChallenge(_)
    ));
    assert!(matches!(
        route(Brings::KerberosToken, true),
        NegotiateRoute::SpnegoNtlmAuthenticate(_)
    ));
    assert!(matches!(
        route(Brings::RawNtlmUnderNegotiate, false),
        NegotiateRoute::Kerberos(_)
    ));
    assert!(matches!(
        route(Brings::KerberosToken, false),
        NegotiateRoute::Kerberos(_)
    ));
}

#[test]
fn an_ntlm_check_the_domain_controller_cannot_run_is_503_not_a_refusal() {
    let setup = Setup {
        ntlm: Some(NtlmSetup { in_negotiate: true }),
        ..setup(ServerMode::Connection)
    };
    let unavailable = Verdict::Refuse(Refusal {
        failure: Some(Failure::NtlmRefused),
        ..Refusal::status(503)
    });
    // Authorization: NTLM, the AUTHENTICATE leg.
    let Start::Ntlm(n) = identify(&setup, H1, Brings::Ntlm.authorization()) else {
        panic!("not an NTLM start")
    };
    let NtlmRoute::Verify(verify) = n.message(Some(&ntlm_message(3)), true) else {
        panic!("not a verification")
    };
    assert_eq!(verify.handle_unavailable(), unavailable);
    // NTLM inside Negotiate, the second leg.
    let Start::Negotiate(n) = identify(&setup, H1, Brings::KerberosToken.authorization()) else {
        panic!("not a Negotiate start")
    };
    let NegotiateRoute::SpnegoNtlmAuthenticate(authenticate) = n.route(true) else {
        panic!("not the second SPNEGO-NTLM leg")
    };
    assert_eq!(authenticate.handle_unavailable(), unavailable);
    // A wrong password stays a 401.
    let Start::Ntlm(n) = identify(&setup, H1, Brings::Ntlm.authorization()) else {
        panic!()
    };
    let NtlmRoute::Verify(verify) = n.message(Some(&ntlm_message(3)), true) else {
        panic!()
    };
    assert_eq!(
        verify.handle(Err(Refused)),
        Verdict::Refuse(Refusal::failed(Failure::NtlmRefused))
    );
}

#[test]
fn a_basic_name_for_another_domain_is_an_unknown_user_not_a_wrong_password() {
    let setup = Setup {
        basic_kdc: true,
        ..setup(ServerMode::PerRequest)
    };
    let Start::Basic(b) = identify(&setup, H1, Brings::Basic.authorization()) else {
        panic!("not a Basic start")
    };
    let BasicRoute::Kdc(check) = b.credentials(Some("OTHER\\bob"), false) else {
        panic!("not a KDC check")
    };
    assert_eq!(
        check.handle(BasicCheck::UnknownUser),
        Verdict::Refuse(Refusal::failed(Failure::BasicUnknownUser))
    );
}

#[test]
fn failure_labels_are_distinct() {
    let all = [
        Failure::BadSessionCookie,
        Failure::ChannelBindingsMissing,
        Failure::NtlmNoChallenge,
        Failure::NtlmRefused,
        Failure::DigestStaleNonce,
        Failure::DigestRefused,
        Failure::BasicWrongPassword,
        Failure::BasicUnknownUser,
    ];
    let labels: std::collections::HashSet<_> = all.iter().map(|f| f.label()).collect();
    assert_eq!(labels.len(), all.len());
}

#[test]
fn ntlm_binding_checks_follow_the_policy_and_need_tls() {
    use crate::scheme::ntlm::server::ChannelBindingCheck;
    for policy in [
        BindingPolicy::Off,
        BindingPolicy::Optional,
        BindingPolicy::Required,
    ] {
        assert_eq!(ntlm_binding_check(policy, false), ChannelBindingCheck::Off);
    }
    assert_eq!(
        ntlm_binding_check(BindingPolicy::Off, true),
        ChannelBindingCheck::Off
    );
    assert_eq!(
        ntlm_binding_check(BindingPolicy::Optional, true),
        ChannelBindingCheck::IfPresent
    );
    assert_eq!(
        ntlm_binding_check(BindingPolicy::Required, true),
        ChannelBindingCheck::Required
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any token, any scheme name, any configuration: identification ends in a
    /// verdict, and only configured NTLM-in-SPNEGO ever takes a Negotiate token away
    /// from GSSAPI.
    #[test]
    fn any_token_or_scheme_is_routed(
        token in proptest::collection::vec(any::<u8>(), 1..64),
        scheme in "[A-Za-z]{1,12}",
        setup_index in 0usize..4608,
        facts_index in 0usize..8,
        pending in any::<bool>(),
    ) {
        let setup = all_setups().nth(setup_index % all_setups().count()).unwrap();
        let facts = all_facts().nth(facts_index).unwrap();
        let start = identify(&setup, facts, Ok(Presented::Token(token.clone())));
        if let Start::Negotiate(n) = start {
            prop_assert_eq!(n.token(), &token[..]);
            match n.route(pending) {
                NegotiateRoute::SpnegoNtlmChallenge(_) | NegotiateRoute::SpnegoNtlmAuthenticate(_) => {
                    prop_assert!(setup.ntlm.is_some_and(|n| n.in_negotiate));
                }
                NegotiateRoute::Kerberos(k) => prop_assert!(setup.kerberos && k.token() == &token[..]),
                NegotiateRoute::Answer(v) => {
                    let is_refusal = matches!(v, Verdict::Refuse(_));
                    prop_assert!(is_refusal);
                }
            }
        }
        let again = || identify(&setup, facts, Ok(Presented::OtherScheme(scheme.clone())));
        for (_, _, v) in walk(again(), &again) {
            let is_http11 = v == Verdict::Http11Required;
            prop_assert!(!is_http11 || setup.mode == ServerMode::Connection);
        }
    }
}
