//! The gate passes protocol upgrades (WebSocket) through after authenticating, and
//! can sign the identity header so an upstream can tell it came from the gate.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{kerbside, GateProcess};
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::{Mechanism, Step};
use kerbside_server::IdentitySigner;
use kerbside_testkit::TestRealm;

/// An upstream that records request heads, and switches protocols to an echo of
/// raw bytes when asked to `Upgrade: kerbside-echo`.
fn upgrading_upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.lock().unwrap().push(head.clone());
                if head.to_ascii_lowercase().contains("upgrade: kerbside-echo") {
                    writer
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: kerbside-echo\r\n\r\n")
                        .unwrap();
                    let mut buf = [0u8; 64];
                    while let Ok(n) = reader.read(&mut buf) {
                        if n == 0 || writer.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                } else {
                    writer
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .unwrap();
                }
            });
        }
    });
    (port, heads)
}

fn token(realm: &TestRealm) -> String {
    let _env = realm.enter();
    let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("localhost")).unwrap();
    let token = match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    };
    kerbside_proto::Credentials::negotiate(Some(&token)).to_header_value()
}

fn gate_port(gate: &GateProcess) -> u16 {
    gate.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn an_upgrade_passes_through_after_authentication() {
    let realm = TestRealm::start().unwrap();
    let (port, heads) = upgrading_upstream();
    let gate = GateProcess::start(&realm, None, &format!("http://127.0.0.1:{port}"), &[]);
    let mut stream = TcpStream::connect(("127.0.0.1", gate_port(&gate))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nConnection: Upgrade\r\nUpgrade: kerbside-echo\r\n\r\n",
        token(&realm)
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.1 101"),
        "{status}\n{}",
        gate.log()
    );
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    stream.write_all(b"ping through the gate").unwrap();
    let mut echoed = [0u8; 21];
    reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping through the gate");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("x-remote-user: alice@example.test"), "{head}");
    assert!(!head.contains("authorization"), "{head}");

    // Without a token there is no upgrade, only a challenge.
    let mut stream = TcpStream::connect(("127.0.0.1", gate_port(&gate))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: kerbside-echo\r\n\r\n")
        .unwrap();
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
}

#[test]
fn the_identity_header_can_be_signed() {
    let realm = TestRealm::start().unwrap();
    let (port, heads) = upgrading_upstream();
    let key = realm.dir().join("identity.key");
    let key_bytes: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(37)).collect();
    std::fs::write(&key, &key_bytes).unwrap();
    let mode = |m| std::os::unix::fs::PermissionsExt::from_mode(m);
    std::fs::set_permissions(&key, mode(0o644)).unwrap();
    let refused = kerbside(&realm)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
        ])
        .arg("--keytab")
        .arg(realm.keytab())
        .arg("--identity-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("chmod 600"),
        "a key others can read is refused: {refused:?}"
    );
    std::fs::set_permissions(&key, mode(0o600)).unwrap();
    let key_arg = key.to_str().unwrap().to_owned();
    let gate = GateProcess::start(
        &realm,
        None,
        &format!("http://127.0.0.1:{port}"),
        &["--identity-key", &key_arg],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", gate_port(&gate))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /app/x?y=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nX-Remote-User-Signature: v1 t=1 sig=forged\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        token(&realm)
    )
    .unwrap();
    let mut response = String::new();
    let _ = BufReader::new(stream).read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{response}\n{}",
        gate.log()
    );
    let head = heads.lock().unwrap()[0].clone();
    let sig_line = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-remote-user-signature:")
        })
        .unwrap_or_else(|| panic!("no signature: {head}"));
    assert_eq!(
        head.matches("ignature").count(),
        1,
        "the forged one is gone: {head}"
    );
    let value = sig_line.split_once(':').unwrap().1.trim();
    let t: u64 = value
        .split(' ')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    let expected =
        IdentitySigner::new(key_bytes)
            .unwrap()
            .sign("alice@EXAMPLE.TEST", t, "POST", "/app/x?y=1");
    assert_eq!(value, expected);
}
