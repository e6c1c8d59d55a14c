//! The direct accept (a one-leg Kerberos login through krb5 itself, without GSSAPI's
//! SPNEGO layer) against a real MIT KDC: it answers what GSSAPI answers, its reply is
//! taken by MIT's initiator and by python-gssapi, and everything it does not handle
//! goes to GSSAPI as before.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use kerbside_gssapi::{
    accepted_directly, AcceptStep, AcceptorConfig, Delegation, InitiatorConfig, NegotiateAcceptor,
    NegotiateInitiator,
};
use kerbside_proto::spnego::{NegState, NegTokenResp, Oid};
use kerbside_proto::{Mechanism, Step};
use kerbside_testkit::{require_peers_python, TestRealm};

fn config(realm: &TestRealm) -> AcceptorConfig {
    AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    }
}

/// An acceptor with the gate's memory replay cache: the direct accept applies.
fn direct_acceptor(realm: &TestRealm) -> NegotiateAcceptor {
    NegotiateAcceptor::new(&config(realm))
        .unwrap()
        .with_memory_replay_cache(Duration::from_secs(300))
        .unwrap()
}

/// An acceptor with MIT's replay cache: every token through GSSAPI.
fn gssapi_acceptor(realm: &TestRealm) -> NegotiateAcceptor {
    NegotiateAcceptor::new(&config(realm)).unwrap()
}

fn first_token(config: &InitiatorConfig) -> (NegotiateInitiator, Vec<u8>) {
    let mut init = NegotiateInitiator::new(config).unwrap();
    let token = match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no first token"),
    };
    (init, token)
}

struct Done {
    principal: String,
    token: Option<Vec<u8>>,
    channel_bound: bool,
    delegated: bool,
    lifetime: Option<Duration>,
    pac: Option<Vec<u8>>,
}

fn done(step: AcceptStep) -> Done {
    match step {
        AcceptStep::Done {
            principal,
            token,
            channel_bound,
            delegated,
            lifetime,
            pac,
            ..
        } => Done {
            principal,
            token,
            channel_bound,
            delegated,
            lifetime,
            pac,
        },
        other => panic!("one leg expected: {other:?}"),
    }
}

/// The SPNEGO reply's shape: negState, supportedMech, MIC, and the response token's
/// framing up to and including its TOK_ID (the AP-REP itself differs every time).
fn shape(reply: &[u8]) -> (Option<NegState>, Option<Oid>, bool, Option<Vec<u8>>) {
    let resp = NegTokenResp::parse(reply).unwrap();
    let framing = resp.response_token.as_ref().map(|t| {
        // 60 len 06 09 <9 bytes of OID> 02 00
        let header = if t.get(1).is_some_and(|b| b & 0x80 != 0) {
            2 + usize::from(t[1] & 0x7f)
        } else {
            2
        };
        t[header..header + 13].to_vec()
    });
    (
        resp.neg_state,
        resp.supported_mech,
        resp.mech_list_mic.is_some(),
        framing,
    )
}

#[test]
fn a_kerberos_login_is_accepted_directly_as_gssapi_would_accept_it() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let direct = direct_acceptor(&realm);
    let gssapi = gssapi_acceptor(&realm);
    let client = InitiatorConfig::for_host("localhost");

    let (mut init, token) = first_token(&client);
    let before = accepted_directly();
    let ours = done(direct.accept(&token).unwrap());
    assert_eq!(
        accepted_directly(),
        before + 1,
        "the direct accept was used"
    );
    assert_eq!(ours.principal, "alice@EXAMPLE.TEST");
    assert!(!ours.channel_bound && !ours.delegated);
    // MIT's initiator checks the AP-REP (mutual authentication is on by default).
    let reply = ours
        .token
        .clone()
        .expect("a reply for mutual authentication");
    assert_eq!(init.step(Some(&reply)).unwrap(), Step::Done(None));

    // The same login through GSSAPI: the same facts, the same reply shape.
    let (mut init2, token2) = first_token(&client);
    let theirs = done(gssapi.accept(&token2).unwrap());
    assert_eq!(accepted_directly(), before + 1, "GSSAPI's own path");
    assert_eq!(theirs.principal, ours.principal);
    assert_eq!(theirs.pac, ours.pac, "the PAC (MIT 1.20's KDC adds one)");
    let (a, b) = (ours.lifetime.unwrap(), theirs.lifetime.unwrap());
    assert!(
        a.abs_diff(b) <= Duration::from_secs(2),
        "{a:?} against {b:?}"
    );
    let their_reply = theirs.token.unwrap();
    assert_eq!(shape(&reply), shape(&their_reply));
    assert_eq!(init2.step(Some(&their_reply)).unwrap(), Step::Done(None));

    // A replay is refused by the memory cache, as before.
    let again = direct.accept(&token).unwrap_err();
    assert!(again.to_string().contains("replay"), "{again}");

    // A reply changed by one bit is refused by MIT's initiator.
    let (mut init3, token3) = first_token(&client);
    let mut tampered = done(direct.accept(&token3).unwrap()).token.unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(init3.step(Some(&tampered)).is_err());
}

#[test]
fn windows_listing_of_kerberos_is_answered_with_the_same_oid_as_gssapi_answers() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let client = InitiatorConfig::for_host("localhost");
    let rewrap = |token: &[u8]| {
        let mech_token = kerbside_proto::krb5::spnego_mech_token(token).unwrap();
        kerbside_proto::spnego::NegTokenInit {
            mech_types: vec![Oid::known(Oid::MS_KRB5), Oid::known(Oid::KRB5)],
            req_flags: None,
            mech_token: Some(mech_token.to_vec()),
            mech_list_mic: None,
        }
        .encode()
    };
    let before = accepted_directly();
    let (_i, token) = first_token(&client);
    let ours = done(direct_acceptor(&realm).accept(&rewrap(&token)).unwrap());
    assert_eq!(accepted_directly(), before + 1);
    let (_i, token) = first_token(&client);
    let theirs = done(gssapi_acceptor(&realm).accept(&rewrap(&token)).unwrap());
    let ours = shape(&ours.token.unwrap());
    assert_eq!(ours, shape(&theirs.token.unwrap()));
    assert_eq!(ours.1, Some(Oid::known(Oid::MS_KRB5)));
}

#[test]
fn channel_bindings_are_checked_and_anything_unusual_goes_to_gssapi() {
    let realm = TestRealm::start().unwrap();
    realm
        .kinit("alice", "alice-password", &realm.user_ccache("alice"))
        .unwrap();
    let _env = realm.enter();
    let acceptor = direct_acceptor(&realm);
    let binding = b"tls-server-end-point:0123456789abcdef0123456789abcdef".to_vec();
    let mut bound = InitiatorConfig::for_host("localhost");
    bound.channel_bindings = Some(binding.clone());

    // Matching bindings: accepted directly, and bound.
    let before = accepted_directly();
    let (mut init, token) = first_token(&bound);
    let login = done(acceptor.context().step(&token, Some(&binding)).unwrap());
    assert!(login.channel_bound);
    assert_eq!(accepted_directly(), before + 1);
    assert_eq!(
        init.step(Some(&login.token.unwrap())).unwrap(),
        Step::Done(None)
    );

    // Other bindings: GSSAPI refuses, as it always did.
    let (_i, token) = first_token(&bound);
    let e = acceptor
        .context()
        .step(&token, Some(b"tls-server-end-point:another"))
        .unwrap_err();
    assert!(e.to_string().contains("binding"), "{e}");
    assert_eq!(accepted_directly(), before + 1);

    // A client that sent none, to a server that has some: accepted directly as not
    // bound, as GSSAPI answers it.
    let (_i, token) = first_token(&InitiatorConfig::for_host("localhost"));
    let ours = acceptor.context().step(&token, Some(&binding));
    let (_i, token) = first_token(&InitiatorConfig::for_host("localhost"));
    let theirs = gssapi_acceptor(&realm)
        .context()
        .step(&token, Some(&binding));
    assert_eq!(
        ours.as_ref()
            .map(|s| matches!(
                s,
                AcceptStep::Done {
                    channel_bound: false,
                    ..
                }
            ))
            .ok(),
        theirs
            .as_ref()
            .map(|s| matches!(
                s,
                AcceptStep::Done {
                    channel_bound: false,
                    ..
                }
            ))
            .ok(),
        "{ours:?} against {theirs:?}"
    );
    assert!(theirs.is_ok(), "{theirs:?}");
    assert_eq!(accepted_directly(), before + 2);

    // A delegated ticket: GSSAPI stores it; the direct accept never sees it.
    let mut delegating = InitiatorConfig::for_host("localhost");
    delegating.delegation = Delegation::Always;
    let (_i, token) = first_token(&delegating);
    let mut context = acceptor.context();
    assert!(done(context.step(&token, None).unwrap()).delegated);
    assert!(context.take_delegated().is_some());
    assert_eq!(accepted_directly(), before + 2);

    // An acceptor name: GSSAPI matches it.
    let named = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: Some("HTTP@localhost".to_owned()),
    })
    .unwrap()
    .with_memory_replay_cache(Duration::from_secs(300))
    .unwrap();
    let (_i, token) = first_token(&InitiatorConfig::for_host("localhost"));
    assert_eq!(
        done(named.accept(&token).unwrap()).principal,
        "alice@EXAMPLE.TEST"
    );
    assert_eq!(accepted_directly(), before + 2);
}

/// python-gssapi (MIT's initiator driven from Python), with the bare Kerberos
/// mechanism and with SPNEGO: each login is accepted directly, and the client takes
/// the reply (it checks the AP-REP) as complete.
#[test]
fn python_gssapi_takes_the_direct_reply_bare_and_in_spnego() {
    let python = require_peers_python();
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acceptor = direct_acceptor(&realm);
    let script = r#"
import base64, sys, gssapi
mech = gssapi.OID.from_int_seq(sys.argv[1])
name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
flags = gssapi.RequirementFlag.mutual_authentication
ctx = gssapi.SecurityContext(name=name, mech=mech, usage="initiate", flags=flags)
print(base64.b64encode(ctx.step()).decode(), flush=True)
reply = base64.b64decode(sys.stdin.readline().strip())
ctx.step(reply)
print("complete=%s mutual=%s" % (ctx.complete, bool(ctx.actual_flags & flags)), flush=True)
"#;
    for mech in ["1.2.840.113554.1.2.2", "1.3.6.1.5.5.2"] {
        let mut child = Command::new(&python)
            .args(["-c", script, mech])
            .envs(realm.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let token = base64::engine::general_purpose::STANDARD
            .decode(line.trim())
            .unwrap_or_else(|e| panic!("{mech}: no token from python ({e}): {line:?}"));
        let before = accepted_directly();
        let login = done(acceptor.accept(&token).unwrap());
        assert_eq!(accepted_directly(), before + 1, "{mech}");
        assert_eq!(login.principal, "alice@EXAMPLE.TEST");
        let reply = login.token.unwrap();
        if mech.starts_with("1.2.840") {
            // Bare: the AP-REP token itself, TOK_ID 02 00.
            assert_eq!(reply.first(), Some(&0x60));
        } else {
            assert_eq!(reply.first(), Some(&0xa1));
        }
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            "{}",
            base64::engine::general_purpose::STANDARD.encode(&reply)
        )
        .unwrap();
        drop(stdin);
        let mut result = String::new();
        out.read_line(&mut result).unwrap();
        assert!(child.wait().unwrap().success(), "{mech}: {result}");
        assert_eq!(result.trim(), "complete=True mutual=True", "{mech}");
    }
}
