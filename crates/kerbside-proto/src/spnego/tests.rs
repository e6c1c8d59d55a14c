#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::scheme::ntlm::crypto;
use crate::scheme::ntlm::server::ChannelBindingCheck;

const NOW: u64 = 133_500_000_000_000_000;

fn server_inputs() -> ServerInputs {
    ServerInputs {
        server_challenge: [3; 8],
        timestamp: NOW,
        netbios_domain: "EXAMPLE".into(),
        netbios_computer: "WWW".into(),
        dns_domain: "example.com".into(),
        dns_computer: "www.example.com".into(),
    }
}

fn initiator(password: &str) -> SpnegoNtlmInitiator {
    SpnegoNtlmInitiator::new(
        NtlmCredentials::from_password("EXAMPLE", "alice", password),
        ClientInputs {
            timestamp_fallback: NOW,
            client_challenge: [7; 8],
            exported_session_key: [9; 16],
            channel_bindings: None,
            target_spn: Some("HTTP/www.example.com".into()),
            workstation: None,
        },
    )
}

fn lookup(user: &str, _domain: &str) -> Option<[u8; 16]> {
    (user == "alice").then(|| crypto::nt_hash("correct horse"))
}

fn verify() -> VerifyInputs<'static> {
    VerifyInputs {
        now: NOW,
        max_skew_secs: 300,
        channel_bindings: ChannelBindingCheck::IfPresent,
        expected_channel_bindings: None,
        lookup: &lookup,
    }
}

fn continue_token(step: Step) -> Vec<u8> {
    match step {
        Step::Continue(t) => t,
        other => panic!("expected Continue, got {other:?}"),
    }
}

#[test]
fn initiator_and_acceptor_round_trip() {
    let mut client = initiator("correct horse");
    let init = continue_token(client.step(None).unwrap());
    assert!(is_ntlmssp_init(&init));
    let parsed = NegTokenInit::parse(&init).unwrap();
    assert_eq!(parsed.mech_types, vec![Oid::known(Oid::NTLMSSP)]);
    assert_eq!(parsed.encode(), init);

    let (challenge, server) = SpnegoNtlmAcceptor::new(server_inputs())
        .handle_init(&init)
        .unwrap();
    let resp = NegTokenResp::parse(&challenge).unwrap();
    assert_eq!(resp.neg_state, Some(NegState::AcceptIncomplete));
    assert!(resp.supported_mech.unwrap().is_ntlmssp());

    let auth = continue_token(client.step(Some(&challenge)).unwrap());
    assert!(NegTokenResp::parse(&auth).unwrap().mech_list_mic.is_some());
    let (final_token, who) = server.handle_response(&auth, verify()).unwrap();
    assert_eq!(who.user, "alice");
    let fin = NegTokenResp::parse(&final_token).unwrap();
    assert_eq!(fin.neg_state, Some(NegState::AcceptCompleted));
    assert!(fin.mech_list_mic.is_some());

    assert_eq!(client.step(Some(&final_token)).unwrap(), Step::Done(None));
    assert!(client.is_complete());
    assert!(matches!(
        client.step(Some(&final_token)),
        Err(SpnegoError::OutOfOrder(_))
    ));
}

#[test]
fn tampered_mech_list_mic_is_refused_both_ways() {
    let mut client = initiator("correct horse");
    let init = continue_token(client.step(None).unwrap());
    let (challenge, server) = SpnegoNtlmAcceptor::new(server_inputs())
        .handle_init(&init)
        .unwrap();
    let auth = continue_token(client.step(Some(&challenge)).unwrap());

    let mut resp = NegTokenResp::parse(&auth).unwrap();
    resp.mech_list_mic.as_mut().unwrap()[6] ^= 1;
    assert_eq!(
        server.clone().handle_response(&resp.encode(), verify()),
        Err(SpnegoError::MechListMicMismatch)
    );
    resp.mech_list_mic = None;
    assert_eq!(
        server.clone().handle_response(&resp.encode(), verify()),
        Err(SpnegoError::MechListMicMissing)
    );

    let (final_token, _) = server.handle_response(&auth, verify()).unwrap();
    let mut fin = NegTokenResp::parse(&final_token).unwrap();
    fin.mech_list_mic.as_mut().unwrap()[6] ^= 1;
    assert_eq!(
        client.step(Some(&fin.encode())),
        Err(SpnegoError::MechListMicMismatch)
    );
}

#[test]
fn wrong_password_and_reject() {
    let mut client = initiator("wrong");
    let init = continue_token(client.step(None).unwrap());
    let (challenge, server) = SpnegoNtlmAcceptor::new(server_inputs())
        .handle_init(&init)
        .unwrap();
    let auth = continue_token(client.step(Some(&challenge)).unwrap());
    assert!(matches!(
        server.handle_response(&auth, verify()),
        Err(SpnegoError::Ntlm(NtlmError::WrongResponse { .. }))
    ));
    let reject = NegTokenResp {
        neg_state: Some(NegState::Reject),
        ..NegTokenResp::default()
    };
    assert_eq!(
        client.step(Some(&reject.encode())),
        Err(SpnegoError::Rejected)
    );
}

#[test]
fn kerberos_first_is_not_ours() {
    let init = NegTokenInit {
        mech_types: vec![
            Oid::known(Oid::MS_KRB5),
            Oid::known(Oid::KRB5),
            Oid::known(Oid::NTLMSSP),
        ],
        req_flags: None,
        mech_token: Some(vec![0x60, 0x00]),
        mech_list_mic: None,
    }
    .encode();
    assert!(!is_ntlmssp_init(&init));
    assert_eq!(
        SpnegoNtlmAcceptor::new(server_inputs())
            .handle_init(&init)
            .unwrap_err(),
        SpnegoError::NtlmNotPreferred {
            preferred: "1.2.840.48018.1.2.2".into()
        }
    );
    assert!(is_ntlmssp_init(b"NTLMSSP\0\x01\0\0\0\x06\x82\x08\0"));
    assert!(!is_ntlmssp_init(b"NTLMSSP\0\x03\0\0\0"));
}

#[test]
fn oid_display() {
    assert_eq!(
        Oid::known(Oid::NTLMSSP).to_string(),
        "1.3.6.1.4.1.311.2.2.10"
    );
    assert_eq!(Oid::known(Oid::KRB5).to_string(), "1.2.840.113554.1.2.2");
    assert_eq!(Oid::known(Oid::SPNEGO).to_string(), "1.3.6.1.5.5.2");
}

#[test]
fn rfc4559_sample_tokens_parse() {
    // testdata/rfc4559-exchange.txt: real DER framing and OIDs.
    use base64::Engine;
    let text = include_str!("../../testdata/rfc4559-exchange.txt");
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .collect();
    // The NegTokenInit has random bytes where its mechToken field should be: refused.
    assert_eq!(
        NegTokenInit::parse(&tokens[0]),
        Err(SpnegoError::Malformed("an unknown or out-of-order field"))
    );
    let resp = NegTokenResp::parse(&tokens[1]).unwrap();
    assert_eq!(resp.neg_state, Some(NegState::AcceptCompleted));
    assert_eq!(resp.supported_mech, Some(Oid::known(Oid::KRB5)));
    assert_eq!(resp.encode(), tokens[1]);
}

#[test]
fn strict_der() {
    // Indefinite length, non-minimal length, trailing bytes.
    assert!(NegTokenResp::parse(&[0xa1, 0x80, 0x30, 0x00, 0x00, 0x00]).is_err());
    assert!(NegTokenResp::parse(&[0xa1, 0x81, 0x02, 0x30, 0x00]).is_err());
    assert!(NegTokenResp::parse(&[0xa1, 0x02, 0x30, 0x00, 0x00]).is_err());
    assert_eq!(
        NegTokenResp::parse(&[0xa1, 0x02, 0x30, 0x00]).unwrap(),
        NegTokenResp::default()
    );
    // Fields out of order.
    let bad = [
        0xa1, 0x0c, 0x30, 0x0a, 0xa2, 0x03, 0x04, 0x01, 0x00, 0xa0, 0x03, 0x0a, 0x01, 0x00,
    ];
    assert!(NegTokenResp::parse(&bad).is_err());
}

fn oid() -> impl Strategy<Value = Oid> {
    prop_oneof![
        Just(Oid::known(Oid::NTLMSSP)),
        Just(Oid::known(Oid::KRB5)),
        Just(Oid::known(Oid::MS_KRB5)),
        proptest::collection::vec(0u8..0x80, 1..6)
            .prop_map(|v| Oid::from_der_contents(&v).unwrap()),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

proptest! {
    #[test]
    fn parsers_never_panic(data in bytes(300)) {
        fuzz_check(&data);
        let mut wrapped = vec![0x60, 0x81, 0x80];
        wrapped.extend_from_slice(&data);
        fuzz_check(&wrapped);
    }

    #[test]
    fn neg_token_init_round_trip(
        mech_types in proptest::collection::vec(oid(), 0..4),
        req_flags in proptest::option::of((0u8..8, bytes(3)).prop_map(|(u, mut b)| { b.insert(0, u); b })),
        mech_token in proptest::option::of(bytes(300)),
        mech_list_mic in proptest::option::of(bytes(20)),
    ) {
        let t = NegTokenInit { mech_types, req_flags, mech_token, mech_list_mic };
        prop_assert_eq!(NegTokenInit::parse(&t.encode()).unwrap(), t);
    }

    #[test]
    fn neg_token_resp_round_trip(
        neg_state in proptest::option::of(prop_oneof![
            Just(NegState::AcceptCompleted), Just(NegState::AcceptIncomplete),
            Just(NegState::Reject), Just(NegState::RequestMic)]),
        supported_mech in proptest::option::of(oid()),
        response_token in proptest::option::of(bytes(70000)),
        mech_list_mic in proptest::option::of(bytes(20)),
    ) {
        let t = NegTokenResp { neg_state, supported_mech, response_token, mech_list_mic };
        prop_assert_eq!(NegTokenResp::parse(&t.encode()).unwrap(), t);
    }
}
