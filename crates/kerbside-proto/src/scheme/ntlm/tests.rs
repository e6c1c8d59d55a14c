#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::client::{self, ClientInputs, NtlmCredentials, NtlmInitiator};
use super::crypto::{self, SessionSecurity, Side};
use super::message::*;
use super::server::{
    ChannelBindingCheck, CheckInputs, ExpectAuthenticate, ExpectNegotiate, ServerInputs,
    VerifyInputs,
};
use super::NtlmError;
use crate::mechanism::{Mechanism, Step};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// MS-NLMP §4.2.1 common values.
const USER: &str = "User";
const DOMAIN: &str = "Domain";
const PASSWORD: &str = "Password";
const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];
const RANDOM_SESSION_KEY: [u8; 16] = [0x55; 16];

#[test]
fn ntowfv1_vector() {
    // MS-NLMP §4.2.2.1.2
    assert_eq!(
        crypto::nt_hash(PASSWORD).to_vec(),
        hex("a4f49c406510bdcab6824ee7c30fd852")
    );
}

#[test]
fn ntlmv2_vectors() {
    // MS-NLMP §4.2.4.1.1 NTOWFv2
    let key = crypto::ntowfv2(&crypto::nt_hash(PASSWORD), USER, DOMAIN);
    assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));

    // §4.2.4.1.3: the temp blob, with AV pairs NbDomainName "Domain", NbComputerName "Server".
    let blob = ClientChallengeBlob {
        timestamp: 0,
        client_challenge: CLIENT_CHALLENGE,
        av_pairs: AvPairs(vec![
            AvPair::NbDomainName("Domain".into()),
            AvPair::NbComputerName("Server".into()),
        ]),
    }
    .encode()
    .unwrap();
    assert_eq!(
        blob,
        hex("0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000
             02000c0044006f006d00610069006e00 01000c005300650072007600650072000000000000000000")
    );
    assert_eq!(
        ClientChallengeBlob::parse(&blob).unwrap().client_challenge,
        CLIENT_CHALLENGE
    );

    // §4.2.4.2.2 NTLMv2 response: NTProofStr
    let proof = crypto::nt_proof_str(&key, &SERVER_CHALLENGE, &blob);
    assert_eq!(proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
    // §4.2.4.2.1 LMv2 response
    assert_eq!(
        crypto::lmv2_response(&key, &SERVER_CHALLENGE, &CLIENT_CHALLENGE).to_vec(),
        hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    );
    // §4.2.4.1.2 session base key, §4.2.4.2.3 encrypted session key
    let base = crypto::session_base_key(&key, &proof);
    assert_eq!(base.to_vec(), hex("8de40ccadbc14a82f15cb0ad0de95ca3"));
    assert_eq!(
        crypto::rc4k(&base, &RANDOM_SESSION_KEY).to_vec(),
        hex("c5dad2544fc9799094ce1ce90bc9d03e")
    );
}

#[test]
fn session_key_vectors() {
    // MS-NLMP §4.2.4 (keys derived from the random session key 0x55 * 16)
    assert_eq!(
        crypto::sign_key(&RANDOM_SESSION_KEY, Side::Client).to_vec(),
        hex("4788dc861b4782f35d43fd98fe1a2d39")
    );
    assert_eq!(
        crypto::sign_key(&RANDOM_SESSION_KEY, Side::Server).to_vec(),
        hex("d04d6f10741041d1d246d64188d7a8ad")
    );
    let f128 = NegotiateFlags::EXTENDED_SESSIONSECURITY | NegotiateFlags::KEY_128;
    let f56 = NegotiateFlags::EXTENDED_SESSIONSECURITY | NegotiateFlags::KEY_56;
    let f40 = NegotiateFlags::EXTENDED_SESSIONSECURITY;
    for (flags, side, expected) in [
        (f128, Side::Client, "59f600973cc4960a25480a7c196e4c58"),
        (f128, Side::Server, "9355f3a957c1583d25c4c2f11e40390e"),
        (f56, Side::Client, "a5f7253c1065e8d3d68642040e71cfe0"),
        (f56, Side::Server, "583e2f98959b385cd158f3734b5f5d3f"),
        (f40, Side::Client, "42f964a471091a02ff4a77455366e4e5"),
        (f40, Side::Server, "c5d3853b406b7c1241c595f0ce0750e2"),
    ] {
        assert_eq!(
            crypto::seal_key(flags, &RANDOM_SESSION_KEY, side),
            hex(expected)
        );
    }
}

#[test]
fn gss_wrap_vectors() {
    // MS-NLMP §4.2.4.4: GSS_WrapEx of "Plaintext" (UTF-16LE), with and without key exchange.
    let plaintext = utf16_encode("Plaintext");
    let flags = NegotiateFlags::SEAL
        | NegotiateFlags::SIGN
        | NegotiateFlags::EXTENDED_SESSIONSECURITY
        | NegotiateFlags::KEY_128;
    for (flags, signature) in [
        (
            flags | NegotiateFlags::KEY_EXCH,
            "01000000 7fb38ec5c55d4976 00000000",
        ),
        (flags, "01000000 70352851f2564309 00000000"),
    ] {
        let mut client = SessionSecurity::new(Side::Client, flags, &RANDOM_SESSION_KEY);
        let (sealed, sig) = client.wrap(&plaintext);
        assert_eq!(sealed, hex("54e50165bf1936dc996020c1811b0f06fb5f"));
        assert_eq!(sig.to_vec(), hex(signature));
        let mut server = SessionSecurity::new(Side::Server, flags, &RANDOM_SESSION_KEY);
        assert_eq!(server.unwrap(&sealed, &sig).unwrap(), plaintext);
    }
}

#[test]
fn get_mic_verify_mic() {
    let flags = super::client::CLIENT_FLAGS;
    let mut client = SessionSecurity::new(Side::Client, flags, &RANDOM_SESSION_KEY);
    let mut server = SessionSecurity::new(Side::Server, flags, &RANDOM_SESSION_KEY);
    let m0 = client.get_mic(b"first");
    let m1 = client.get_mic(b"second");
    assert_eq!(&m0[12..], &[0, 0, 0, 0]);
    assert_eq!(&m1[12..], &[1, 0, 0, 0]);
    server.verify_mic(b"first", &m0).unwrap();
    // Out of order: sequence number 1 expected, and the RC4 state has moved on.
    let mut tampered = m1;
    tampered[5] ^= 1;
    assert_eq!(
        server.verify_mic(b"second", &tampered),
        Err(NtlmError::BadSignature)
    );
    // The server's own direction uses the other keys.
    let s0 = server.get_mic(b"x");
    let mut client2 = SessionSecurity::new(Side::Client, flags, &RANDOM_SESSION_KEY);
    client2.verify_mic(b"x", &s0).unwrap();
}

#[test]
fn channel_bindings_hash_layout() {
    let data = b"tls-server-end-point:abc";
    let mut manual = vec![0u8; 16];
    manual.extend_from_slice(&(data.len() as u32).to_le_bytes());
    manual.extend_from_slice(data);
    use md5::Digest;
    let expected: [u8; 16] = md5::Md5::digest(&manual).into();
    assert_eq!(crypto::channel_bindings_hash(data), expected);
}

#[test]
fn curl_and_windows_negotiate_parse() {
    // curl 7.88: 32 bytes, OEM only.
    let curl = hex("4e544c4d53535000010000000682080000000000000000000000000000000000");
    let parsed = NegotiateMessage::parse(&curl).unwrap();
    assert_eq!(parsed.flags, NegotiateFlags(0x0008_8206));
    assert_eq!(parsed.version, None);
    // curl points its empty fields at offset 0; ours point after the header.
    let encoded = parsed.encode().unwrap();
    assert_eq!(encoded.len(), 32);
    assert_eq!(NegotiateMessage::parse(&encoded).unwrap(), parsed);
    // testdata/ntlm-type1.txt: 40 bytes with a VERSION.
    let line = include_str!("../../../testdata/ntlm-type1.txt");
    use base64::Engine;
    let windows = base64::engine::general_purpose::STANDARD
        .decode(line.trim().trim_start_matches("NTLM "))
        .unwrap();
    let parsed = NegotiateMessage::parse(&windows).unwrap();
    assert_eq!(parsed.flags, NegotiateFlags(0xa208_8207));
    assert_eq!(parsed.version.unwrap().build, 7601);
    assert_eq!(
        NegotiateMessage::parse(&parsed.encode().unwrap()).unwrap(),
        parsed
    );
}

#[test]
fn our_negotiate_is_40_bytes_with_version() {
    let (negotiate, _) = client::start(credentials("alice", "pw"), client_inputs()).unwrap();
    assert_eq!(negotiate.len(), 40);
    let parsed = NegotiateMessage::parse(&negotiate).unwrap();
    assert!(parsed.flags.contains(NegotiateFlags::VERSION));
    assert!(parsed.flags.contains(NegotiateFlags::UNICODE));
    // Empty domain and workstation point at offset 40.
    assert_eq!(
        &negotiate[16..32],
        &hex("0000000028000000 0000000028000000")
    );
}

#[test]
fn parser_errors() {
    assert_eq!(
        NegotiateMessage::parse(b"NTLMSSQ\0\x01\0\0\0\0\0\0\0"),
        Err(MessageError::BadSignature)
    );
    assert_eq!(
        NegotiateMessage::parse(b"NTLM"),
        Err(MessageError::TooShort { len: 4, needed: 16 })
    );
    let mut chal = hex("4e544c4d53535000 02000000");
    chal.resize(48, 0);
    assert_eq!(ChallengeMessage::parse(&chal), Err(MessageError::OemOnly));
    chal[20] = 1; // Unicode
    chal[12] = 4; // TargetName length 4 …
    chal[16] = 200; // … at offset 200: informational only, read as empty
    assert_eq!(
        ChallengeMessage::parse(&chal).map(|c| c.target_name),
        Ok(String::new())
    );
    chal[16] = 48;
    chal.extend_from_slice(&[0x00, 0xd8, 0x41, 0x00]); // unpaired surrogate, then "A"
    assert_eq!(
        ChallengeMessage::parse(&chal).map(|c| c.target_name),
        Ok(String::new())
    );
    assert_eq!(
        NegotiateMessage::parse(&hex("4e544c4d53535000 02000000 00000000")),
        Err(MessageError::WrongType {
            expected: 1,
            found: 2
        })
    );
}

fn credentials(user: &str, password: &str) -> NtlmCredentials {
    NtlmCredentials::from_password("EXAMPLE", user, password)
}

const NOW: u64 = 133_500_000_000_000_000;

fn client_inputs() -> ClientInputs {
    ClientInputs {
        timestamp_fallback: NOW,
        client_challenge: [7; 8],
        exported_session_key: [9; 16],
        channel_bindings: None,
        target_spn: Some("HTTP/www.example.com".into()),
        workstation: Some("LAPTOP".into()),
    }
}

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

fn alice_lookup(user: &str, domain: &str) -> Option<[u8; 16]> {
    (user.eq_ignore_ascii_case("alice") && domain.eq_ignore_ascii_case("example"))
        .then(|| crypto::nt_hash("correct horse"))
}

fn verify<'a>(cb: ChannelBindingCheck, expected: Option<&'a [u8]>) -> VerifyInputs<'a> {
    VerifyInputs {
        now: NOW + 10 * 10_000_000,
        max_skew_secs: 300,
        channel_bindings: cb,
        expected_channel_bindings: expected,
        lookup: &alice_lookup,
    }
}

/// Runs NEGOTIATE and CHALLENGE; returns the AUTHENTICATE, the client's and the server's state.
fn exchange(
    creds: NtlmCredentials,
    inputs: ClientInputs,
) -> (Vec<u8>, client::Established, ExpectAuthenticate) {
    let (negotiate, expect_challenge) = client::start(creds, inputs).unwrap();
    let (challenge, expect_auth) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&negotiate)
        .unwrap();
    let (authenticate, established) = expect_challenge.handle_challenge(&challenge).unwrap();
    (authenticate, established, expect_auth)
}

#[test]
fn round_trip_succeeds_with_mic_and_keys() {
    let (auth, established, server) =
        exchange(credentials("alice", "correct horse"), client_inputs());
    let who = server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .unwrap();
    assert_eq!(who.user, "alice");
    assert_eq!(who.domain, "EXAMPLE");
    assert_eq!(who.workstation, "LAPTOP");
    assert_eq!(who.target_name.as_deref(), Some("HTTP/www.example.com"));
    assert!(who.mic_present);
    assert!(established.mic_sent());
    assert_eq!(
        &who.exported_session_key,
        established.exported_session_key()
    );
    assert_eq!(who.exported_session_key, [9; 16]);
    let mut c = established.session_security().unwrap();
    let mut s = who.session_security().unwrap();
    s.verify_mic(b"hello", &c.get_mic(b"hello")).unwrap();
    assert!(!format!("{who:?}").contains("9, 9"));
    let parsed = AuthenticateMessage::parse(&auth).unwrap();
    assert_eq!(parsed.lm_response, vec![0; 24]);
}

/// The session base key a domain controller would return for alice's response.
fn dc_session_key(auth: &[u8]) -> [u8; 16] {
    let msg = AuthenticateMessage::parse(auth).unwrap();
    let key = crypto::ntowfv2(&crypto::nt_hash("correct horse"), &msg.user, &msg.domain);
    let (proof, _) = msg.nt_response.split_at(16);
    crypto::session_base_key(&key, proof.try_into().unwrap())
}

fn check(cb: ChannelBindingCheck) -> CheckInputs<'static> {
    CheckInputs {
        now: NOW + 10 * 10_000_000,
        max_skew_secs: 300,
        channel_bindings: cb,
        expected_channel_bindings: None,
    }
}

#[test]
fn a_remote_verifier_gives_the_same_result_as_a_local_one() {
    let (auth, established, server) =
        exchange(credentials("alice", "correct horse"), client_inputs());
    let local = server
        .clone()
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .unwrap();
    let pending = server.handle_authenticate_remote(&auth).unwrap();
    assert_eq!((pending.user(), pending.domain()), ("alice", "EXAMPLE"));
    assert_eq!(pending.server_challenge(), [3; 8]);
    assert!(pending.nt_response().len() > 24);
    let remote = pending
        .handle_session_key(dc_session_key(&auth), check(ChannelBindingCheck::IfPresent))
        .unwrap();
    assert_eq!(remote, local);
    assert_eq!(
        &remote.exported_session_key,
        established.exported_session_key()
    );
}

#[test]
fn a_wrong_key_from_a_remote_verifier_fails_the_mic() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    let pending = server.handle_authenticate_remote(&auth).unwrap();
    assert_eq!(
        pending.handle_session_key([0; 16], check(ChannelBindingCheck::Off)),
        Err(NtlmError::MicMismatch)
    );
}

#[test]
fn a_remote_verifier_never_sees_v1_or_anonymous_logons() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    let mut msg = AuthenticateMessage::parse(&auth).unwrap();
    msg.nt_response.truncate(24);
    msg.mic = None;
    let v1 = msg.encode().unwrap();
    assert!(matches!(
        server.clone().handle_authenticate_remote(&v1),
        Err(NtlmError::NtlmV1Response)
    ));
    msg.nt_response.clear();
    let anonymous = msg.encode().unwrap();
    assert!(matches!(
        server.handle_authenticate_remote(&anonymous),
        Err(NtlmError::Anonymous)
    ));
}

#[test]
fn wrong_password_is_refused() {
    let (auth, _, server) = exchange(credentials("alice", "wrong"), client_inputs());
    assert!(matches!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None)),
        Err(NtlmError::WrongResponse { .. })
    ));
}

#[test]
fn unknown_user_is_refused() {
    let (auth, _, server) = exchange(credentials("mallory", "x"), client_inputs());
    assert!(matches!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None)),
        Err(NtlmError::UnknownUser { .. })
    ));
}

#[test]
fn tampered_mic_is_refused() {
    let (mut auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    auth[MIC_OFFSET] ^= 0x80;
    assert_eq!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None)),
        Err(NtlmError::MicMismatch)
    );
}

#[test]
fn tampered_flags_break_the_mic() {
    let (mut auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    auth[60] &= !0x20; // drop NTLMSSP_NEGOTIATE_SEAL
    assert_eq!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None)),
        Err(NtlmError::MicMismatch)
    );
}

#[test]
fn channel_bindings() {
    let good = b"tls-server-end-point:good".to_vec();
    let bad = b"tls-server-end-point:bad".to_vec();
    let with = |cb: Option<Vec<u8>>| ClientInputs {
        channel_bindings: cb,
        ..client_inputs()
    };
    let creds = || credentials("alice", "correct horse");

    let (auth, _, server) = exchange(creds(), with(Some(good.clone())));
    let who = server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::Required, Some(&good)))
        .unwrap();
    assert!(who.channel_bound);

    let (auth, _, server) = exchange(creds(), with(Some(bad.clone())));
    assert_eq!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, Some(&good))),
        Err(NtlmError::ChannelBindingsMismatch)
    );

    let (auth, _, server) = exchange(creds(), with(None));
    assert_eq!(
        server
            .clone()
            .handle_authenticate(&auth, verify(ChannelBindingCheck::Required, Some(&good))),
        Err(NtlmError::ChannelBindingsMissing)
    );
    assert!(
        !server
            .clone()
            .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, Some(&good)))
            .unwrap()
            .channel_bound
    );
    assert_eq!(
        server.handle_authenticate(&auth, verify(ChannelBindingCheck::Required, None)),
        Err(NtlmError::ChannelBindingsUnavailable)
    );
}

#[test]
fn timestamp_out_of_skew_is_refused() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    let mut v = verify(ChannelBindingCheck::Off, None);
    v.now = NOW + 301 * 10_000_000;
    assert_eq!(
        server.handle_authenticate(&auth, v),
        Err(NtlmError::TimestampSkew {
            skew_secs: 301,
            max_skew_secs: 300
        })
    );
}

#[test]
fn replayed_authenticate_is_refused_by_a_fresh_exchange() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None))
        .unwrap();
    // A new exchange on the server has a new challenge.
    let (negotiate, _) = client::start(credentials("alice", "x"), client_inputs()).unwrap();
    let fresh = ExpectNegotiate::new(ServerInputs {
        server_challenge: [4; 8],
        ..server_inputs()
    });
    let (_, server2) = fresh.handle_negotiate(&negotiate).unwrap();
    assert!(matches!(
        server2.handle_authenticate(&auth, verify(ChannelBindingCheck::Off, None)),
        Err(NtlmError::WrongResponse { .. })
    ));
}

#[test]
fn ntlmv1_and_anonymous_are_refused() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    let mut msg = AuthenticateMessage::parse(&auth).unwrap();
    msg.mic = None;
    msg.nt_response = vec![0x11; 24];
    assert_eq!(
        server.clone().handle_authenticate(
            &msg.encode().unwrap(),
            verify(ChannelBindingCheck::Off, None)
        ),
        Err(NtlmError::NtlmV1Response)
    );
    msg.nt_response.clear();
    msg.lm_response = vec![0];
    msg.user.clear();
    assert_eq!(
        server.handle_authenticate(
            &msg.encode().unwrap(),
            verify(ChannelBindingCheck::Off, None)
        ),
        Err(NtlmError::Anonymous)
    );
}

#[test]
fn mic_flag_without_mic_is_refused() {
    let (auth, _, server) = exchange(credentials("alice", "correct horse"), client_inputs());
    let mut msg = AuthenticateMessage::parse(&auth).unwrap();
    msg.mic = None;
    msg.version = None;
    assert_eq!(
        server.handle_authenticate(
            &msg.encode().unwrap(),
            verify(ChannelBindingCheck::Off, None)
        ),
        Err(NtlmError::MicMissing)
    );
}

#[test]
fn server_accepts_curl_negotiate_and_answers_in_unicode() {
    let curl = hex("4e544c4d53535000010000000682080000000000000000000000000000000000");
    let (challenge, _) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&curl)
        .unwrap();
    let parsed = ChallengeMessage::parse(&challenge).unwrap();
    assert!(parsed.flags.contains(NegotiateFlags::UNICODE));
    assert!(parsed
        .flags
        .contains(NegotiateFlags::EXTENDED_SESSIONSECURITY));
    assert!(!parsed.flags.contains(NegotiateFlags::KEY_EXCH));
    assert_eq!(parsed.version, None);
    assert_eq!(parsed.target_info.unwrap().timestamp(), Some(NOW));
}

#[test]
fn client_answers_old_challenges_with_ntlmv2_and_refuses_oem_only_servers() {
    let (_, expect) = client::start(credentials("a", "b"), client_inputs()).unwrap();
    let challenge = ChallengeMessage {
        target_name: "X".into(),
        flags: NegotiateFlags::UNICODE | NegotiateFlags::NTLM,
        server_challenge: [1; 8],
        target_info: None,
        version: None,
    }
    .encode()
    .unwrap();
    // No target information: still an NTLMv2 response (longer than NTLMv1's 24 bytes).
    let (authenticate, _) = expect.handle_challenge(&challenge).unwrap();
    let parsed = AuthenticateMessage::parse(&authenticate).unwrap();
    assert!(parsed.nt_response.len() > 24);
    // A 40-byte CHALLENGE header (no TargetInfo fields) with its TargetName right after.
    let mut old = Vec::new();
    old.extend_from_slice(b"NTLMSSP\0");
    old.extend_from_slice(&2u32.to_le_bytes());
    old.extend_from_slice(&2u16.to_le_bytes());
    old.extend_from_slice(&2u16.to_le_bytes());
    old.extend_from_slice(&40u32.to_le_bytes());
    old.extend_from_slice(
        &(NegotiateFlags::UNICODE | NegotiateFlags::NTLM | NegotiateFlags::TARGET_INFO)
            .0
            .to_le_bytes(),
    );
    old.extend_from_slice(&[7; 8]);
    old.extend_from_slice(&[0; 8]);
    old.extend_from_slice(b"X\0");
    let parsed = ChallengeMessage::parse(&old).unwrap();
    assert_eq!(
        (parsed.target_name.as_str(), parsed.target_info),
        ("X", None)
    );
    let (_, expect) = client::start(credentials("a", "b"), client_inputs()).unwrap();
    let mut oem = challenge.clone();
    oem[20] = 2;
    assert!(matches!(
        expect.handle_challenge(&oem),
        Err(NtlmError::ServerOffersOnlyNtlmV1 { .. })
    ));
    let (_, expect) = client::start(credentials("a", "b"), client_inputs()).unwrap();
    assert!(matches!(
        expect.handle_challenge(b"garbage"),
        Err(NtlmError::MalformedChallenge(_))
    ));
}

#[test]
fn initiator_mechanism_steps() {
    let mut initiator = NtlmInitiator::new(credentials("alice", "correct horse"), client_inputs());
    assert!(initiator.step(Some(b"x")).is_err());
    let mut initiator = NtlmInitiator::new(credentials("alice", "correct horse"), client_inputs());
    let Step::Continue(negotiate) = initiator.step(None).unwrap() else {
        panic!("expected Continue")
    };
    let (challenge, server) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&negotiate)
        .unwrap();
    let Step::Done(Some(auth)) = initiator.step(Some(&challenge)).unwrap() else {
        panic!("expected Done")
    };
    assert!(initiator.established().is_some());
    assert!(matches!(
        initiator.step(Some(&challenge)),
        Err(NtlmError::OutOfOrder(_))
    ));
    assert!(initiator.established().is_some());
    server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .unwrap();
}

#[test]
fn credentials_debug_redacts_the_hash() {
    let c = credentials("alice", "pw");
    let shown = format!("{c:?}");
    let client::NtlmSecret::NtHash(hash) = &c.secret else {
        panic!("{shown}")
    };
    assert!(shown.contains("redacted") && !shown.contains(&format!("{}", hash[0])));
    let v2 = NtlmCredentials::from_ntowfv2("EX", "bob", [0xAB; 16]);
    assert!(
        !format!("{v2:?}").to_ascii_lowercase().contains("ab"),
        "{v2:?}"
    );
    assert_eq!(NtlmCredentials::split_login("EX\\bob"), ("EX", "bob"));
    assert_eq!(
        NtlmCredentials::split_login("bob@ex.com"),
        ("", "bob@ex.com")
    );
}

fn av_pair() -> impl Strategy<Value = AvPair> {
    prop_oneof![
        ".{0,8}".prop_map(AvPair::NbComputerName),
        ".{0,8}".prop_map(AvPair::NbDomainName),
        ".{0,8}".prop_map(AvPair::DnsComputerName),
        ".{0,8}".prop_map(AvPair::DnsDomainName),
        ".{0,8}".prop_map(AvPair::DnsTreeName),
        any::<u32>().prop_map(AvPair::Flags),
        any::<u64>().prop_map(AvPair::Timestamp),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(AvPair::SingleHost),
        ".{0,8}".prop_map(AvPair::TargetName),
        any::<[u8; 16]>().prop_map(AvPair::ChannelBindings),
        (11u16.., proptest::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(id, value)| AvPair::Other { id, value }),
    ]
}

fn version() -> impl Strategy<Value = Option<Version>> {
    proptest::option::of(
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>()).prop_map(
            |(major, minor, build, revision)| Version {
                major,
                minor,
                build,
                revision,
            },
        ),
    )
}

#[test]
fn users_are_found_whatever_the_case_and_named_as_the_file_spells_them() {
    let users = super::users::NtlmUsers::parse(
        "alice:8846F7EAEE8FB117AD06BDD830B7586C\nEXAMPLE\\Bob:A4F49C406510BDCAB6824EE7C30FD852\n",
    )
    .unwrap();
    let name = |user: &str, domain: &str| users.find(user, domain).map(|e| e.name());
    for (user, domain) in [
        ("alice", ""),
        ("ALICE", ""),
        ("Alice", "KERBSIDE"),
        ("alice", "OTHERDOMAIN"),
    ] {
        assert_eq!(
            name(user, domain).as_deref(),
            Some("alice"),
            "{domain}\\{user}"
        );
    }
    for (user, domain) in [("bob", "example"), ("BOB", "EXAMPLE"), ("Bob", "Example")] {
        assert_eq!(
            name(user, domain).as_deref(),
            Some("EXAMPLE\\Bob"),
            "{domain}\\{user}"
        );
    }
    // A domain-qualified entry is only for its domain.
    assert_eq!(name("bob", "OTHER"), None);
    assert_eq!(name("bob", ""), None);
    assert_eq!(name("mallory", ""), None);
}

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        crate::fuzzing::ntlm(&data);
        let mut signed = SIGNATURE.to_vec();
        signed.extend_from_slice(&data);
        crate::fuzzing::ntlm(&signed);
    }

    #[test]
    fn av_pairs_round_trip(pairs in proptest::collection::vec(av_pair(), 0..6)) {
        let pairs = AvPairs(pairs);
        prop_assert_eq!(AvPairs::parse(&pairs.encode().unwrap()).unwrap(), pairs);
    }

    #[test]
    fn negotiate_round_trip(
        flags in any::<u32>(),
        domain in proptest::collection::vec(any::<u8>(), 0..10),
        workstation in proptest::collection::vec(any::<u8>(), 0..10),
        version in version(),
    ) {
        let mut flags = NegotiateFlags(flags).without(NegotiateFlags::VERSION);
        if version.is_some() { flags = flags | NegotiateFlags::VERSION; }
        let m = NegotiateMessage { flags, domain, workstation, version };
        prop_assert_eq!(NegotiateMessage::parse(&m.encode().unwrap()).unwrap(), m);
    }

    #[test]
    fn challenge_round_trip(
        flags in any::<u32>(),
        target_name in ".{0,10}",
        server_challenge in any::<[u8; 8]>(),
        pairs in proptest::option::of(proptest::collection::vec(av_pair(), 0..5)),
        version in version(),
    ) {
        let mut flags = NegotiateFlags(flags).without(NegotiateFlags::VERSION) | NegotiateFlags::UNICODE;
        if version.is_some() { flags = flags | NegotiateFlags::VERSION; }
        let m = ChallengeMessage { target_name, flags, server_challenge, target_info: pairs.map(AvPairs), version };
        prop_assert_eq!(ChallengeMessage::parse(&m.encode().unwrap()).unwrap(), m);
    }

    #[test]
    fn authenticate_round_trip(
        flags in any::<u32>(),
        lm in proptest::collection::vec(any::<u8>(), 0..30),
        nt in proptest::collection::vec(any::<u8>(), 0..60),
        domain in ".{0,6}", user in ".{0,6}", workstation in ".{0,6}",
        key in proptest::collection::vec(any::<u8>(), 0..17),
        version in version(),
        mic in proptest::option::of(any::<[u8; 16]>()),
    ) {
        let mut flags = NegotiateFlags(flags).without(NegotiateFlags::VERSION) | NegotiateFlags::UNICODE;
        if version.is_some() { flags = flags | NegotiateFlags::VERSION; }
        let m = AuthenticateMessage {
            lm_response: lm, nt_response: nt, domain, user, workstation,
            encrypted_session_key: key, flags, version, mic,
        };
        prop_assert_eq!(AuthenticateMessage::parse(&m.encode().unwrap()).unwrap(), m);
    }

    #[test]
    fn users_lines_round_trip(user in "[^\\x00-\\x1f\\x7f#:\\\\ ][^\\x00-\\x1f\\x7f\\\\]{0,8}", hash in any::<[u8; 16]>()) {
        if let Ok(line) = super::users::format_line(&user, &hash) {
            let users = super::users::NtlmUsers::parse(&line).unwrap();
            let (domain, name) = user.split_once('\\').unwrap_or(("ANY", &user));
            prop_assert_eq!(users.lookup(name, domain), Some(hash));
        }
    }

    #[test]
    fn users_parser_never_panics(text in ".{0,200}") {
        crate::fuzzing::ntlm_users(text.as_bytes());
    }
}

#[test]
fn filetime_counts_100ns_from_1601() {
    use std::time::Duration;
    assert_eq!(super::filetime(Duration::ZERO), 116_444_736_000_000_000);
    assert_eq!(
        super::filetime(Duration::new(1, 250)),
        116_444_736_010_000_002
    );
}

#[test]
fn an_ntowfv2_hash_answers_as_the_password_does_for_its_user_and_domain() {
    // MS-NLMP §4.2.4.1.1: NTOWFv2("Password", "User", "Domain").
    let key: [u8; 16] = hex("0c868a403bfd7a93a3001ef22ef02e3f").try_into().unwrap();
    let from_password = NtlmCredentials::from_password(DOMAIN, USER, PASSWORD);
    let from_key = NtlmCredentials::from_ntowfv2(DOMAIN, USER, key);
    let (a, _) = client::start(from_password, client_inputs()).unwrap();
    let (b, _) = client::start(from_key, client_inputs()).unwrap();
    assert_eq!(a, b);
    let (challenge, _) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&a)
        .unwrap();
    let answer = |creds: NtlmCredentials| {
        let (_, expect) = client::start(creds, client_inputs()).unwrap();
        expect.handle_challenge(&challenge).unwrap().0
    };
    assert_eq!(
        answer(NtlmCredentials::from_password(DOMAIN, USER, PASSWORD)),
        answer(NtlmCredentials::from_ntowfv2(DOMAIN, USER, key))
    );

    // cntlm's PassNTLMv2 (`cntlm -H -u alice -d EXAMPLE`, password `secret`; Debian's
    // cntlm 0.92.3 prints every byte inverted: AED36E4A3DD06B40A27EC52509F32852) is
    // NTOWFv2 with the domain upper-cased, whatever case it was given in.
    let cntlm: [u8; 16] = hex("512C91B5C22F94BF5D813ADAF60CD7AD").try_into().unwrap();
    assert_eq!(crypto::ntlmv2_hash("secret", "alice", "EXAMPLE"), cntlm);
    assert_eq!(crypto::ntlmv2_hash("secret", "Alice", "example"), cntlm);
    assert_eq!(
        crypto::ntlmv2_hash(PASSWORD, USER, DOMAIN),
        crypto::ntowfv2(&crypto::nt_hash(PASSWORD), USER, "DOMAIN")
    );

    // Our acceptor takes alice's hash for alice in EXAMPLE, not for bob.
    let alice = crypto::ntlmv2_hash("correct horse", "alice", "example");
    let (auth, _, server) = exchange(
        NtlmCredentials::from_ntowfv2("EXAMPLE", "alice", alice),
        client_inputs(),
    );
    let who = server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .unwrap();
    assert_eq!(who.user, "alice");
    let (auth, _, server) = exchange(
        NtlmCredentials::from_ntowfv2("EXAMPLE", "ALICE", alice),
        client_inputs(),
    );
    assert!(server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .is_ok());
    let bob = crypto::ntlmv2_hash("correct horse", "bob", "EXAMPLE");
    let (auth, _, server) = exchange(
        NtlmCredentials::from_ntowfv2("EXAMPLE", "alice", bob),
        client_inputs(),
    );
    assert!(server
        .handle_authenticate(&auth, verify(ChannelBindingCheck::IfPresent, None))
        .is_err());
}
