//! The gate refuses replayed Negotiate tokens with its in-memory replay cache (MIT's
//! file cache is off for its acceptor): the same token twice, the same AP-REQ as a
//! bare krb5 token, and re-wrapped in SPNEGO with another mechanism listed; each with
//! a log line that says why. A fresh token from the same ticket gets in.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{EchoUpstream, GateProcess};
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::krb5;
use kerbside_proto::scheme::negotiate::server::challenge;
use kerbside_proto::{Mechanism, Step};
use kerbside_testkit::TestRealm;

fn token(realm: &TestRealm) -> Vec<u8> {
    let _env = realm.enter();
    let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("localhost")).unwrap();
    match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    }
}

/// The status of `GET /` with `Authorization: Negotiate <token>`.
fn status(gate: &GateProcess, token: &[u8]) -> u16 {
    let url = gate.url("");
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    // `Negotiate <base64>`, the same form as the challenge with a token.
    let header = challenge(Some(token));
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: {header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// DER `tag`, minimal length, `contents`.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(contents);
    out
}

/// SPNEGO listing the Microsoft krb5 OID before the real one, around `mech_token`.
fn rewrap(mech_token: &[u8]) -> Vec<u8> {
    let ms = [0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
    let krb5 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
    let spnego = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    let mechs = tlv(0x30, &[tlv(0x06, &ms), tlv(0x06, &krb5)].concat());
    let init = tlv(
        0x30,
        &[tlv(0xa0, &mechs), tlv(0xa2, &tlv(0x04, mech_token))].concat(),
    );
    tlv(0x60, &[tlv(0x06, &spnego), tlv(0xa0, &init)].concat())
}

#[test]
fn the_gate_refuses_replays_however_they_are_wrapped() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        None,
        &format!("http://127.0.0.1:{}", upstream.port),
        &["--auth", "per-request"],
    );
    let first = token(&realm);
    assert_eq!(status(&gate, &first), 200, "{}", gate.log());
    assert_eq!(status(&gate, &first), 401, "the same token again");
    let bare = krb5::spnego_mech_token(&first).unwrap().to_vec();
    assert_eq!(status(&gate, &bare), 401, "the AP-REQ as a bare krb5 token");
    assert_eq!(status(&gate, &rewrap(&bare)), 401, "re-wrapped in SPNEGO");
    assert!(
        gate.wait_for_log(|log| log.matches("seen before (memory replay cache)").count() >= 3),
        "each replay is logged as such: {}",
        gate.log()
    );
    assert_eq!(
        status(&gate, &token(&realm)),
        200,
        "a fresh token from the same ticket"
    );
}
