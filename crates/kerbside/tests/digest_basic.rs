//! Digest and Basic on both sides, and `--anyauth`'s choice among all four schemes:
//! `kerbside fetch --digest` to lighttpd (SHA-256) and Apache mod_auth_digest (MD5);
//! curl and Python httpx to `kerbside gate --digest-users`; Basic against an htpasswd
//! file made by Apache's `htpasswd -B`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{
    failed, kerbside, ok, run_fetch, sha256_hex, text, with_password_on_stdin, EchoUpstream,
    GateProcess,
};
use kerbside_testkit::{
    run_curl, run_password_client, ApacheScheme, Lighttpd, LighttpdOptions, SchemeApache,
    SchemeApacheOptions, TestCa, TestRealm, ALICE, DIGEST_REALM,
};

fn alice() -> String {
    format!("{}:{}", ALICE.name, ALICE.password)
}

#[test]
fn fetch_digest_sha256_to_lighttpd() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let lighttpd = Lighttpd::start(LighttpdOptions::digest(&cert)).unwrap();
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "-v", "-u", &alice()],
        &lighttpd.url("/private/whoami"),
    );
    let body = ok(&out);
    let (_, err) = text(&out);
    assert!(body.contains("user=alice"), "{body}");
    assert!(err.contains("Answering the server with Digest"), "{err}");
    assert!(!err.contains(ALICE.password), "{err}");
    let err = failed(&run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "-u", "alice:wrong"],
        &lighttpd.url("/private/whoami"),
    ));
    assert!(err.contains("refused the Digest credentials"), "{err}");
}

#[test]
fn fetch_digest_md5_to_apache_only_when_allowed() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let apache =
        SchemeApache::start(&cert, SchemeApacheOptions::new(ApacheScheme::Digest)).unwrap();
    let err = failed(&run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "-u", &alice()],
        &apache.url("/private/whoami"),
    ));
    assert!(err.contains("--allow-digest-md5"), "{err}");
    // A POST too: the body goes once the Digest answer is accepted.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &[
            "--digest",
            "--allow-digest-md5",
            "-u",
            &alice(),
            "-d",
            "hello",
        ],
        &apache.url("/private/upload"),
    );
    let body = ok(&out);
    assert!(body.trim().ends_with(" 5"), "{body}");
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "--allow-digest-md5", "-u", &alice()],
        &apache.url("/private/whoami"),
    );
    assert!(ok(&out).contains("user=alice"));
}

/// A Digest users file for the gate made by `kerbside digest-passwd` (SHA-256).
fn digest_users(realm: &TestRealm) -> PathBuf {
    let path = realm.dir().join("digest-users");
    with_password_on_stdin(
        realm,
        &[
            "digest-passwd".as_ref(),
            path.as_os_str(),
            ALICE.name.as_ref(),
            DIGEST_REALM.as_ref(),
        ],
        ALICE.password,
    );
    let line = std::fs::read_to_string(&path).unwrap();
    // lighttpd's SHA-256 htdigest line: user:realm:hex(sha256(user:realm:password)).
    let expected = sha256_hex(format!("alice:{DIGEST_REALM}:{}", ALICE.password).as_bytes());
    assert_eq!(line, format!("alice:{DIGEST_REALM}:{expected}\n"));
    path
}

/// An htpasswd file with a bcrypt line made by Apache's `htpasswd -B`.
fn basic_users(realm: &TestRealm) -> PathBuf {
    let path = realm.dir().join("htpasswd");
    let status = Command::new("htpasswd")
        .args(["-c", "-b", "-B"])
        .arg(&path)
        .args([ALICE.name, ALICE.password])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

#[test]
fn curl_httpx_and_fetch_use_digest_with_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let users = digest_users(&realm);
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &[
            "--digest-users",
            users.to_str().unwrap(),
            "--digest-realm",
            DIGEST_REALM,
        ],
    );
    let run = run_curl(
        &["--digest", "-u", &alice(), &gate.url("/x?y=1")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", gate.log());
    assert!(run.body.contains("users=alice\n"), "{}", run.body);
    // Each challenge on its own line, SHA-256.
    let challenges = run.first_challenges("www-authenticate");
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Digest ") && c.contains("algorithm=SHA-256")),
        "{challenges:?}"
    );
    assert!(!run.header("authentication-info").is_empty(), "{run:?}");

    let run = run_curl(
        &["--digest", "-u", "alice:wrong", &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 401);

    let facts = run_password_client(&[
        "httpx-digest",
        &gate.url("/"),
        "--user",
        ALICE.name,
        "--password",
        ALICE.password,
        "--ca",
        ca.ca_pem_path().to_str().unwrap(),
        "--post-bytes",
        "1000",
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "200", "{}\n{}", facts.raw, gate.log());

    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "-v", "-u", &alice()],
        &gate.url("/"),
    );
    assert!(ok(&out).contains("users=alice\n"));
    let (_, err) = text(&out);
    // The gate's rspauth was checked (a tampered one fails the request).
    assert!(err.contains("authentication-info"), "{err}");
}

#[test]
fn basic_against_htpasswd_over_https_only() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let users = basic_users(&realm);
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--basic-users", users.to_str().unwrap()],
    );
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--basic", "-u", &alice()],
        &gate.url("/"),
    );
    assert!(ok(&out).contains("users=alice\n"));
    let run = run_curl(
        &["--basic", "-u", &alice(), &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}");
    let run = run_curl(
        &["--basic", "-u", "alice:wrong", &gate.url("/")],
        Some(ca.ca_pem_path()),
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");

    // The gate refuses to take passwords without TLS.
    let out = kerbside(&realm)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--basic-users",
        ])
        .arg(&users)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success() && err.contains("needs TLS"), "{err}");
}

/// A plain-HTTP server that answers 401 with the given challenges (one per line) until
/// a request carries `Authorization`, then 200 with the scheme it got in the body.
struct Offering {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Offering {
    fn start(challenges: &'static [&'static str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut auth = None;
                        let mut length = 0usize;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end().to_owned();
                            if h.is_empty() {
                                break;
                            }
                            let lower = h.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("authorization:") {
                                auth = v.split_whitespace().next().map(str::to_owned);
                            }
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        let _ = reader.read_exact(&mut body);
                        let response = match auth {
                            Some(scheme) => {
                                record.lock().unwrap().push(scheme.clone());
                                let body = format!("scheme={scheme}\n");
                                format!(
                                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            None => {
                                let mut r =
                                    "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n".to_owned();
                                for c in challenges {
                                    r.push_str(&format!("www-authenticate: {c}\r\n"));
                                }
                                r.push_str("\r\n");
                                r
                            }
                        };
                        if stream.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

const DIGEST: &str = "Digest realm=\"r\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\"";

#[test]
fn anyauth_picks_the_strongest_scheme_it_holds_credentials_for() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let ticket = realm.user_ccache("alice");
    let orders: [&'static [&'static str]; 3] = [
        &["Basic realm=\"r\"", DIGEST, "NTLM", "Negotiate"],
        &["NTLM", "Negotiate", "Basic realm=\"r\"", DIGEST],
        &[DIGEST, "Basic realm=\"r\"", "Negotiate", "NTLM"],
    ];
    for offer in orders {
        let server = Offering::start(offer);
        // With a ticket: Negotiate.
        let out = kerbside(&realm)
            .env("KRB5CCNAME", &ticket)
            .args([
                "fetch",
                "--anyauth",
                "--allow-http-auth",
                "-v",
                "-u",
                "EXAMPLE\\alice:alice-password",
            ])
            .arg(server.url())
            .output()
            .unwrap();
        let body = ok(&out);
        assert_eq!(body, "scheme=negotiate\n", "{offer:?}");
        // Without one: NTLM, with the password given, and -v says why.
        let out = run_fetch(
            &realm,
            ca.ca_pem_path(),
            &[
                "--anyauth",
                "--allow-http-auth",
                "-v",
                "-u",
                "EXAMPLE\\alice:alice-password",
            ],
            &server.url(),
        );
        let (_, err) = text(&out);
        // The fake server says 200 to the NEGOTIATE message already.
        assert_eq!(ok(&out), "scheme=ntlm\n", "{offer:?}\n{err}");
        assert!(err.contains("Negotiate skipped"), "{err}");
        assert_eq!(
            server.seen.lock().unwrap().as_slice(),
            ["negotiate", "ntlm"]
        );
    }
    // A plain-HTTP server offering only Basic gets no password by default.
    let server = Offering::start(&["Basic realm=\"r\""]);
    let err = failed(&run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--anyauth", "-u", &alice()],
        &server.url(),
    ));
    assert!(err.contains("--allow-http-auth"), "{err}");
    assert!(server.seen.lock().unwrap().is_empty());
}

#[test]
fn anyauth_against_the_gate_with_every_scheme() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let ntlm = realm.dir().join("ntlm-users");
    with_password_on_stdin(
        &realm,
        &[
            "ntlm-passwd".as_ref(),
            ntlm.as_os_str(),
            "EXAMPLE\\alice".as_ref(),
        ],
        "alice-password",
    );
    let digest = digest_users(&realm);
    let basic = basic_users(&realm);
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &[
            "--auth",
            "connection",
            "--ntlm-users",
            ntlm.to_str().unwrap(),
            "--digest-users",
            digest.to_str().unwrap(),
            "--digest-realm",
            DIGEST_REALM,
            "--basic-users",
            basic.to_str().unwrap(),
        ],
    );
    // With a ticket: Kerberos.
    let out = kerbside(&realm)
        .env("KRB5CCNAME", realm.user_ccache("alice"))
        .args(["fetch", "--anyauth", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(gate.url("/"))
        .output()
        .unwrap();
    assert!(ok(&out).contains("users=alice@EXAMPLE.TEST\n"));
    // Without: NTLM with the password.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--anyauth", "-v", "-u", "EXAMPLE\\alice:alice-password"],
        &gate.url("/"),
    );
    let (_, err) = text(&out);
    assert!(ok(&out).contains("users=EXAMPLE\\alice\n"), "{err}");
    assert!(err.contains("Answering the server with NTLM"), "{err}");
    // Only Digest and Basic enabled: Digest.
    let out = run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--digest", "--basic", "-v", "-u", &alice()],
        &gate.url("/"),
    );
    let (_, err) = text(&out);
    assert!(ok(&out).contains("users=alice\n"), "{err}");
    assert!(err.contains("Answering the server with Digest"), "{err}");
    // A wrong NTLM password does not fall back to a weaker scheme on offer.
    let err = failed(&run_fetch(
        &realm,
        ca.ca_pem_path(),
        &["--anyauth", "-u", "EXAMPLE\\alice:wrong"],
        &gate.url("/"),
    ));
    assert!(err.contains("does not fall back"), "{err}");
}

#[test]
fn a_stale_digest_nonce_is_answered_without_asking_again() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let users = digest_users(&realm);
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &[
            "--digest-users",
            users.to_str().unwrap(),
            "--digest-realm",
            DIGEST_REALM,
            "--digest-nonce-lifetime",
            "1",
        ],
    );
    // The tunnel is one long-lived client: its second request reuses the login.
    let mut cmd = kerbside(&realm);
    cmd.env(
        "KRB5CCNAME",
        format!("FILE:{}/no-ticket", realm.dir().display()),
    )
    .args([
        "tunnel",
        "--listen",
        "127.0.0.1:0",
        "--digest",
        "-u",
        &alice(),
        "--to",
    ])
    .arg(gate.url("/"))
    .arg("--cacert")
    .arg(ca.ca_pem_path());
    let tunnel = GateProcess::from_command(cmd);
    let get = || {
        let run = run_curl(&[&tunnel.url("/")], None).unwrap();
        assert_eq!(run.status, 200, "{run:?}\n{}\n{}", tunnel.log(), gate.log());
        assert!(run.body.contains("users=alice\n"), "{}", run.body);
    };
    get();
    // Requests of one login in flight at once, each with its own nonce count and
    // rspauth.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(get);
        }
    });
    // Requests (every 200 ms) until one goes with a nonce past its 1-second lifetime: it
    // is told the nonce is stale, goes again with the new one, and still gets its 200.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gate.log().contains("Digest nonce expired") {
        assert!(
            std::time::Instant::now() < deadline,
            "no request met an expired nonce in 30 s: {}",
            gate.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        get();
    }
}
