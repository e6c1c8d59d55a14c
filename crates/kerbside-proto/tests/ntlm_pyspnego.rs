//! Interop of the NTLM codec and NTLM-in-SPNEGO with an independent implementation: pyspnego's
//! pure-Python NTLM and SPNEGO, run from the peers venv that `scripts/install-deps.sh` makes
//! (`$KERBSIDE_PEERS_VENV` or `target/peers-venv`). Tokens go over the child's stdin/stdout
//! (`testdata/ntlm/pyspnego_peer.py`); no HTTP is involved.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kerbside_proto::scheme::ntlm::client::{ClientInputs, NtlmCredentials, NtlmInitiator};
use kerbside_proto::scheme::ntlm::server::{
    ChannelBindingCheck, ExpectNegotiate, ServerInputs, VerifyInputs,
};
use kerbside_proto::scheme::ntlm::{crypto, NtlmError};
use kerbside_proto::spnego::{SpnegoError, SpnegoNtlmAcceptor, SpnegoNtlmInitiator};
use kerbside_proto::{Mechanism, Step};

const PASSWORD: &str = "correct horse";
const BINDINGS: &[u8] = b"tls-server-end-point:0123456789abcdef0123456789abcdef";

fn python() -> PathBuf {
    let venv = std::env::var_os("KERBSIDE_PEERS_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-deps.sh to create the peers venv with pyspnego",
        python.display()
    );
    python
}

/// FILETIME now, from the system clock (the test, not the crate, reads the clock).
fn now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (unix.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(unix.subsec_nanos() / 100)
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    users: PathBuf,
}

/// What the peer printed: a token (None for `-`), whether it is done, and the user it saw.
struct Line {
    token: Option<Vec<u8>>,
    done: bool,
    user: String,
}

impl Peer {
    fn start(role: &str, protocol: &str, password: &str, bindings: Option<&[u8]>) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let users =
            std::env::temp_dir().join(format!("kerbside-ntlm-users-{}-{n}", std::process::id()));
        std::fs::write(&users, format!("EXAMPLE:alice:{PASSWORD}\n")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ntlm/pyspnego_peer.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .args([role, protocol])
            .env("NTLM_USER_FILE", &users)
            .env("PEER_USER", "EXAMPLE\\alice")
            .env("PEER_PASSWORD", password)
            .env("NETBIOS_COMPUTER_NAME", "PYCLIENT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(b) = bindings {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            command.env("PEER_CB", hex);
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            users,
        }
    }

    fn read(&mut self) -> Line {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap_or("EOF");
        assert!(
            kind == "TOKEN" || kind == "DONE",
            "pyspnego peer failed: {line}"
        );
        let token = match words.next() {
            Some("-") | None => None,
            Some(t) => Some(B64.decode(t).unwrap()),
        };
        Line {
            token,
            done: kind == "DONE",
            user: words.collect::<Vec<_>>().join(" "),
        }
    }

    fn send(&mut self, token: Option<&[u8]>) {
        let text = token.map_or_else(|| "-".to_owned(), |t| B64.encode(t));
        writeln!(self.stdin, "{text}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.users);
    }
}

fn client_inputs(bindings: Option<&[u8]>) -> ClientInputs {
    ClientInputs {
        timestamp_fallback: now(),
        client_challenge: *b"kerbside",
        exported_session_key: *b"0123456789abcdef",
        channel_bindings: bindings.map(<[u8]>::to_vec),
        target_spn: Some("HTTP/www.example.com".into()),
        workstation: Some("RUSTCLIENT".into()),
    }
}

fn server_inputs() -> ServerInputs {
    ServerInputs {
        server_challenge: *b"chalenge",
        timestamp: now(),
        netbios_domain: "EXAMPLE".into(),
        netbios_computer: "WWW".into(),
        dns_domain: "example.com".into(),
        dns_computer: "www.example.com".into(),
    }
}

fn lookup(user: &str, domain: &str) -> Option<[u8; 16]> {
    (user.eq_ignore_ascii_case("alice") && domain.eq_ignore_ascii_case("EXAMPLE"))
        .then(|| crypto::nt_hash(PASSWORD))
}

fn verify(bindings: Option<&[u8]>) -> VerifyInputs<'_> {
    VerifyInputs {
        now: now(),
        max_skew_secs: 300,
        channel_bindings: if bindings.is_some() {
            ChannelBindingCheck::Required
        } else {
            ChannelBindingCheck::IfPresent
        },
        expected_channel_bindings: bindings,
        lookup: &lookup,
    }
}

fn rust_ntlm_client_against_pyspnego(bindings: Option<&[u8]>) {
    let mut peer = Peer::start("acceptor", "ntlm", PASSWORD, bindings);
    let credentials = NtlmCredentials::from_password("EXAMPLE", "alice", PASSWORD);
    let mut client = NtlmInitiator::new(credentials, client_inputs(bindings));
    let Step::Continue(negotiate) = client.step(None).unwrap() else {
        panic!("expected the NEGOTIATE")
    };
    peer.send(Some(&negotiate));
    let challenge = peer.read().token.unwrap();
    let Step::Done(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!("expected the AUTHENTICATE")
    };
    peer.send(Some(&authenticate));
    let last = peer.read();
    assert!(last.done);
    assert_eq!(last.user, "EXAMPLE\\alice");
    assert!(client.established().unwrap().mic_sent());
}

#[test]
fn our_ntlm_client_is_accepted_by_pyspnego() {
    rust_ntlm_client_against_pyspnego(None);
}

#[test]
fn our_ntlm_client_with_channel_bindings_is_accepted_by_pyspnego() {
    rust_ntlm_client_against_pyspnego(Some(BINDINGS));
}

fn pyspnego_ntlm_client_against_ours(
    password: &str,
    bindings: Option<&[u8]>,
) -> Result<kerbside_proto::scheme::ntlm::server::NtlmAuthenticated, NtlmError> {
    let mut peer = Peer::start("initiator", "ntlm", password, bindings);
    let negotiate = peer.read().token.unwrap();
    let (challenge, server) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&negotiate)
        .unwrap();
    peer.send(Some(&challenge));
    let line = peer.read();
    assert!(line.done);
    server.handle_authenticate(&line.token.unwrap(), verify(bindings))
}

#[test]
fn pyspnego_ntlm_client_is_accepted_by_ours() {
    let who = pyspnego_ntlm_client_against_ours(PASSWORD, None).unwrap();
    assert_eq!(
        (who.domain.as_str(), who.user.as_str()),
        ("EXAMPLE", "alice")
    );
    assert_eq!(who.workstation, "PYCLIENT");
    assert!(who.mic_present);
    assert_eq!(who.target_name.as_deref(), Some("HTTP/www.example.com"));
    let who = pyspnego_ntlm_client_against_ours(PASSWORD, Some(BINDINGS)).unwrap();
    assert!(who.channel_bound);
}

#[test]
fn pyspnego_ntlm_client_with_wrong_password_or_bindings_is_refused() {
    assert!(matches!(
        pyspnego_ntlm_client_against_ours("wrong", None),
        Err(NtlmError::WrongResponse { .. })
    ));
    let mut peer = Peer::start(
        "initiator",
        "ntlm",
        PASSWORD,
        Some(b"tls-server-end-point:other"),
    );
    let negotiate = peer.read().token.unwrap();
    let (challenge, server) = ExpectNegotiate::new(server_inputs())
        .handle_negotiate(&negotiate)
        .unwrap();
    peer.send(Some(&challenge));
    let auth = peer.read().token.unwrap();
    assert_eq!(
        server.handle_authenticate(&auth, verify(Some(BINDINGS))),
        Err(NtlmError::ChannelBindingsMismatch)
    );
}

#[test]
fn our_spnego_client_is_accepted_by_pyspnego() {
    let mut peer = Peer::start("acceptor", "negotiate", PASSWORD, None);
    let credentials = NtlmCredentials::from_password("EXAMPLE", "alice", PASSWORD);
    let mut client = SpnegoNtlmInitiator::new(credentials, client_inputs(None));
    let Step::Continue(init) = client.step(None).unwrap() else {
        panic!("expected the NegTokenInit")
    };
    peer.send(Some(&init));
    let challenge = peer.read();
    assert!(!challenge.done);
    let Step::Continue(auth) = client.step(challenge.token.as_deref()).unwrap() else {
        panic!("expected the AUTHENTICATE")
    };
    peer.send(Some(&auth));
    let last = peer.read();
    assert!(last.done);
    assert_eq!(last.user, "EXAMPLE\\alice");
    // pyspnego answers with its own mechListMIC, which the initiator verifies.
    assert_eq!(
        client.step(last.token.as_deref()).unwrap(),
        Step::Done(None)
    );
    assert!(client.is_complete());
}

#[test]
fn pyspnego_spnego_client_is_accepted_by_ours() {
    let mut peer = Peer::start("initiator", "negotiate", PASSWORD, None);
    let init = peer.read().token.unwrap();
    assert!(kerbside_proto::spnego::is_ntlmssp_init(&init));
    let (challenge, server) = SpnegoNtlmAcceptor::new(server_inputs())
        .handle_init(&init)
        .unwrap();
    peer.send(Some(&challenge));
    let auth = peer.read();
    assert!(!auth.done);
    let (final_token, who) = server
        .handle_response(&auth.token.unwrap(), verify(None))
        .unwrap();
    assert_eq!(who.user, "alice");
    peer.send(Some(&final_token));
    assert!(peer.read().done, "pyspnego did not accept our final token");
}

#[test]
fn pyspnego_spnego_client_with_wrong_password_is_refused() {
    let mut peer = Peer::start("initiator", "negotiate", "wrong", None);
    let init = peer.read().token.unwrap();
    let (challenge, server) = SpnegoNtlmAcceptor::new(server_inputs())
        .handle_init(&init)
        .unwrap();
    peer.send(Some(&challenge));
    let auth = peer.read().token.unwrap();
    assert!(matches!(
        server.handle_response(&auth, verify(None)),
        Err(SpnegoError::Ntlm(NtlmError::WrongResponse { .. }))
    ));
}

#[test]
fn pyspnego_refuses_our_client_with_other_channel_bindings() {
    let mut peer = Peer::start("acceptor", "ntlm", PASSWORD, Some(BINDINGS));
    let credentials = NtlmCredentials::from_password("EXAMPLE", "alice", PASSWORD);
    let other: &[u8] = b"tls-server-end-point:other";
    let mut client = NtlmInitiator::new(credentials, client_inputs(Some(other)));
    let Step::Continue(negotiate) = client.step(None).unwrap() else {
        panic!("expected the NEGOTIATE")
    };
    peer.send(Some(&negotiate));
    let challenge = peer.read().token.unwrap();
    let Step::Done(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!("expected the AUTHENTICATE")
    };
    peer.send(Some(&authenticate));
    let mut line = String::new();
    peer.stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("ERROR"),
        "pyspnego accepted other channel bindings: {line}"
    );
}
