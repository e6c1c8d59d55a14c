//! The NTLM server side against a real curl (`curl --ntlm`, its own NTLMv2 code), over a
//! minimal HTTP/1.1 exchange on a loopback socket written here with std only. curl's
//! NEGOTIATE is the 32-byte OEM-only form; the server answers in Unicode and curl follows.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kerbside_proto::scheme::ntlm::server::{
    ChannelBindingCheck, ExpectAuthenticate, ExpectNegotiate, ServerInputs, VerifyInputs,
};
use kerbside_proto::scheme::ntlm::{crypto, NtlmError};

fn now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (unix.as_secs() + 11_644_473_600) * 10_000_000
}

/// Reads one request's head; returns the NTLM token of its Authorization header, if any.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Option<Vec<u8>>> {
    let mut token = None;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() && !first {
            return Some(token);
        }
        first = false;
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                let b64 = value.trim().strip_prefix("NTLM ").unwrap();
                token = Some(B64.decode(b64).unwrap());
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, header: Option<String>, body: &str) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    if let Some(h) = header {
        out.push_str(&format!("WWW-Authenticate: {h}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes()).unwrap();
}

/// Runs curl with `user:password`; returns curl's output and what our server concluded.
fn curl_against_ours(login: &str) -> (String, Result<String, NtlmError>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let curl = std::thread::spawn({
        let login = login.to_owned();
        move || {
            let out = Command::new("curl")
                .args(["-s", "--ntlm", "-u", &login, &url])
                .output()
                .expect("curl is needed (scripts/install-deps.sh installs it)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    });
    let (mut stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut waiting: Option<ExpectAuthenticate> = None;
    let lookup = |user: &str, domain: &str| {
        (user.eq_ignore_ascii_case("alice") && domain.eq_ignore_ascii_case("EXAMPLE"))
            .then(|| crypto::nt_hash("correct horse"))
    };
    let outcome = loop {
        let Some(token) = read_request(&mut reader) else {
            panic!("curl closed the connection early")
        };
        match (token, waiting.take()) {
            (None, _) => respond(&mut stream, "401 Unauthorized", Some("NTLM".into()), ""),
            (Some(negotiate), None) => {
                let server = ExpectNegotiate::new(ServerInputs {
                    server_challenge: *b"curlchal",
                    timestamp: now(),
                    netbios_domain: "EXAMPLE".into(),
                    netbios_computer: "WWW".into(),
                    dns_domain: "example.com".into(),
                    dns_computer: "www.example.com".into(),
                });
                let (challenge, next) = server.handle_negotiate(&negotiate).unwrap();
                waiting = Some(next);
                let header = format!("NTLM {}", B64.encode(challenge));
                respond(&mut stream, "401 Unauthorized", Some(header), "");
            }
            (Some(authenticate), Some(server)) => {
                let result = server.handle_authenticate(
                    &authenticate,
                    VerifyInputs {
                        now: now(),
                        max_skew_secs: 300,
                        channel_bindings: ChannelBindingCheck::IfPresent,
                        expected_channel_bindings: None,
                        lookup: &lookup,
                    },
                );
                match &result {
                    Ok(who) => respond(&mut stream, "200 OK", None, &format!("hello {}", who.user)),
                    Err(_) => respond(&mut stream, "403 Forbidden", None, "no"),
                }
                break result.map(|who| format!("{}\\{}", who.domain, who.user));
            }
        }
    };
    drop(stream);
    (curl.join().unwrap(), outcome)
}

#[test]
fn curl_authenticates_to_our_ntlm_server() {
    let (body, outcome) = curl_against_ours("EXAMPLE\\alice:correct horse");
    assert_eq!(outcome.unwrap(), "EXAMPLE\\alice");
    assert_eq!(body, "hello alice");
}

#[test]
fn curl_with_a_wrong_password_is_refused() {
    let (_, outcome) = curl_against_ours("EXAMPLE\\alice:wrong");
    assert!(
        matches!(outcome, Err(NtlmError::WrongResponse { .. })),
        "{outcome:?}"
    );
}
