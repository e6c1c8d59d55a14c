//! Issue 10, point 13: over plain `http://` no credentials go before the server's
//! 401, whatever the options (`--allow-http-auth --negotiate-preemptive`) or what
//! earlier requests of the same process learned (the tunnel). A recording server
//! (the witness of what went over the wire) answers 401 to every request without
//! `Authorization`; the clients are `kerbside fetch` and curl through `kerbside
//! tunnel`, each run as a process.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{kerbside, text, GateProcess};
use kerbside_testkit::{TestRealm, TestRequest};

/// A plain-HTTP server that answers `401` with `challenge` to a request without
/// `Authorization` and `200` to one with it, and records the scheme of each
/// request's `Authorization` (`None` when there was none).
struct AuthRecorder {
    port: u16,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl AuthRecorder {
    fn start(challenge: &'static str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let port = common::serve_each_connection(move |stream| {
            let _ = serve(stream, challenge, &sink);
        });
        Self { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    challenge: &str,
    seen: &Mutex<Vec<Option<String>>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = TestRequest::read(&mut reader)? {
        let scheme = request
            .header("authorization")
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_owned);
        let answer = if scheme.is_some() {
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n".to_owned()
        } else {
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        };
        seen.lock().unwrap().push(scheme);
        writer.write_all(answer.as_bytes())?;
        writer.flush()?;
    }
    Ok(())
}

fn negotiate() -> Option<String> {
    Some("Negotiate".to_owned())
}

#[test]
fn fetch_over_plain_http_waits_for_the_401_even_with_negotiate_preemptive() {
    let realm = TestRealm::start().unwrap();
    let server = AuthRecorder::start("Negotiate");
    let out = kerbside(&realm)
        .args([
            "fetch",
            "-v",
            "--negotiate-preemptive",
            "--allow-http-auth",
            &server.url("/"),
        ])
        .output()
        .unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(body, "hello\n");
    // The first request carried nothing; the token went only after the 401.
    assert_eq!(server.seen(), vec![None, negotiate()], "{err}");
    assert!(
        err.contains("no Negotiate token before a 401 over plain http://"),
        "-v says why: {err}"
    );
}

#[test]
fn the_tunnel_to_a_plain_http_origin_waits_for_the_401_on_every_request() {
    let realm = TestRealm::start().unwrap();
    let server = AuthRecorder::start("Negotiate");
    let mut cmd = kerbside(&realm);
    cmd.args([
        "tunnel",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &server.url(""),
        "--allow-http-auth",
        "--negotiate-preemptive",
    ]);
    let tunnel = GateProcess::from_command(cmd);
    // Three requests of one tunnel process (two on one local connection, one on
    // another): what the first learned sends no token before the next 401.
    for urls in [vec!["/a", "/b"], vec!["/c"]] {
        let mut curl = std::process::Command::new("curl");
        common::clean_env(&mut curl);
        curl.args(["-s", "--show-error", "--fail", "--noproxy", "*"]);
        for u in urls {
            curl.arg(tunnel.url(u).replace("localhost", "127.0.0.1"));
        }
        let out = curl.output().unwrap();
        let (body, err) = text(&out);
        assert!(out.status.success(), "{err}\n{}", tunnel.log());
        assert!(body.starts_with("hello\n"), "{body}");
    }
    assert_eq!(
        server.seen(),
        (0..3).flat_map(|_| [None, negotiate()]).collect::<Vec<_>>(),
        "{}",
        tunnel.log()
    );
}

#[test]
fn a_basic_login_the_origin_took_is_not_sent_before_the_next_401_over_plain_http() {
    let realm = TestRealm::start().unwrap();
    let server = AuthRecorder::start("Basic realm=\"r\"");
    let mut cmd = kerbside(&realm);
    cmd.args([
        "tunnel",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &server.url(""),
        "--basic",
        "-u",
        "alice:secret",
        "--allow-http-auth",
    ]);
    let tunnel = GateProcess::from_command(cmd);
    let mut curl = std::process::Command::new("curl");
    common::clean_env(&mut curl);
    let out = curl
        .args(["-s", "--show-error", "--fail", "--noproxy", "*"])
        .arg(tunnel.url("/a").replace("localhost", "127.0.0.1"))
        .arg(tunnel.url("/b").replace("localhost", "127.0.0.1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}\n{}", text(&out), tunnel.log());
    let basic = Some("Basic".to_owned());
    assert_eq!(
        server.seen(),
        vec![None, basic.clone(), None, basic],
        "{}",
        tunnel.log()
    );
}

#[test]
fn bench_sends_no_token_over_plain_http_to_another_machine() {
    // 192.0.2.1 (TEST-NET-1) is never contacted: the run is refused before.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kerbside"));
    common::clean_env(&mut cmd);
    let out = cmd
        .args([
            "bench",
            "--allow-remote",
            "--requests",
            "1",
            "http://192.0.2.1:9/",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "refusing to send Kerberos tokens to 192.0.2.1 (192.0.2.1) over plain http://"
        ),
        "{err}"
    );
}
