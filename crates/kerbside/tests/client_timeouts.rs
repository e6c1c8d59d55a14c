//! Issue 10, point 10: timeouts with curl's names. Stalled servers — one whose
//! listen backlog is full (connect never completes), one that accepts and never
//! answers (neither TLS nor HTTP), one that sends its headers and then stalls the
//! body — end `kerbside fetch` with exit status 28 and words that say what timed
//! out, as curl ends with 28 on the same listener; the tunnel answers 504; the
//! library's error is `is_timeout()`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{clean_env, text, GateProcess};

/// A listener that accepts connections and keeps them open. With `first` empty
/// it never writes; otherwise it reads a request head, writes `first` (a response
/// head and part of a body), and then nothing more.
fn stalling(first: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                if !first.is_empty() {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" {
                            let _ = (&stream).write_all(first);
                            break;
                        }
                        line.clear();
                    }
                }
                // Held open until the client goes away.
                let _ = std::io::copy(&mut &stream, &mut std::io::sink());
            });
        }
    });
    port
}

/// A listener (python's socket module, `listen(0)`) that never accepts, with its
/// backlog filled by the test: a new connection then never completes.
struct FullBacklog {
    child: Child,
    port: u16,
    _fillers: Vec<TcpStream>,
}

impl FullBacklog {
    fn start() -> Self {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import socket, sys\n\
                 s = socket.socket()\n\
                 s.bind(('127.0.0.1', 0))\n\
                 s.listen(0)\n\
                 print(s.getsockname()[1], flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Connect until one does not complete: the backlog is then full.
        let mut fillers = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => fillers.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the backlog: {e}"),
            }
            assert!(fillers.len() < 64, "the backlog does not fill up");
        }
        Self {
            child,
            port,
            _fillers: fillers,
        }
    }
}

impl Drop for FullBacklog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fetch(args: &[&str], url: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.arg("fetch")
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn curl(args: &[&str], url: &str) -> Output {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    cmd.args(["--silent", "--show-error", "--noproxy", "*", "--insecure"])
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

/// Both curl and kerbside ended with 28; kerbside's standard error.
fn both_time_out(args: &[&str], url: &str) -> String {
    let by_curl = curl(args, url);
    assert_eq!(
        by_curl.status.code(),
        Some(28),
        "curl: {:?}",
        text(&by_curl)
    );
    let out = fetch(args, url);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(28), "{err}");
    assert!(!err.contains("Usage"), "not a usage error: {err}");
    err
}

#[test]
fn a_full_backlog_ends_in_a_connect_timeout() {
    let server = FullBacklog::start();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let err = both_time_out(&["--connect-timeout", "0.5"], &url);
    assert!(
        err.contains(&format!(
            "connecting to 127.0.0.1:{} timed out after 0.5 seconds",
            server.port
        )),
        "{err}"
    );
}

#[test]
fn a_server_that_never_finishes_tls_ends_in_a_connect_timeout() {
    let port = stalling(b"");
    let url = format!("https://localhost:{port}/");
    let err = both_time_out(&["--connect-timeout", "1"], &url);
    assert!(
        err.contains("timed out after 1 second (TCP, TLS handshake)"),
        "{err}"
    );
}

#[test]
fn a_server_that_never_answers_ends_in_max_time() {
    let port = stalling(b"");
    let url = format!("http://127.0.0.1:{port}/");
    let err = both_time_out(&["-m", "1"], &url);
    assert!(
        err.contains("timed out after 1 second without a complete response"),
        "{err}"
    );
}

#[test]
fn a_body_that_stalls_ends_in_max_time() {
    let port = stalling(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
    let url = format!("http://127.0.0.1:{port}/");
    let by_curl = curl(&["--max-time", "1"], &url);
    assert_eq!(by_curl.status.code(), Some(28), "{:?}", text(&by_curl));
    let out = fetch(&["--max-time", "1"], &url);
    let (body, err) = text(&out);
    assert_eq!(out.status.code(), Some(28), "{err}");
    assert_eq!(body, "abc", "what came is written");
    assert!(err.contains("stopped sending the body"), "{err}");
}

#[test]
fn a_negative_or_wordy_timeout_is_a_usage_error() {
    for bad in ["-1", "soon"] {
        let out = fetch(
            &[&format!("--connect-timeout={bad}")],
            "http://127.0.0.1:9/",
        );
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("not a number of seconds"), "{err}");
    }
}

#[test]
fn the_tunnel_answers_504_when_its_upstream_stalls() {
    let port = stalling(b"");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.args(["tunnel", "--listen", "127.0.0.1:0", "--to"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["-m", "0.5"]);
    let tunnel = GateProcess::from_command(cmd);
    let out = curl(
        &["--write-out", "%{http_code}", "--output", "/dev/null"],
        &tunnel.url("/x").replace("localhost", "127.0.0.1"),
    );
    let (code, _) = text(&out);
    assert_eq!(code, "504", "{}", tunnel.log());
    assert!(tunnel.log().contains("timed out"), "{}", tunnel.log());
}

#[tokio::test]
async fn the_library_times_out_with_a_typed_error_and_a_finite_default() {
    assert_eq!(
        kerbside_client::ClientConfig::default().connect_timeout,
        Some(kerbside_client::DEFAULT_CONNECT_TIMEOUT)
    );
    let port = stalling(b"");
    let client = kerbside_client::Client::new(kerbside_client::ClientConfig {
        connect_timeout: Some(Duration::from_millis(300)),
        ..kerbside_client::ClientConfig::default()
    })
    .unwrap();
    let request = http::Request::get(format!("https://localhost:{port}/"))
        .body(kerbside_client::RequestBody::empty())
        .unwrap();
    let err = client
        .send(request, &|_: &kerbside_client::Event| {})
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("0.3 seconds"), "{err}");

    let client = kerbside_client::Client::new(kerbside_client::ClientConfig {
        timeout: Some(Duration::from_millis(300)),
        ..kerbside_client::ClientConfig::default()
    })
    .unwrap();
    let request = http::Request::get(format!("http://127.0.0.1:{port}/"))
        .body(kerbside_client::RequestBody::empty())
        .unwrap();
    let err = client
        .send(request, &|_: &kerbside_client::Event| {})
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[test]
fn bench_gives_its_first_connections_a_deadline_too() {
    let port = stalling(b"");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    let out = cmd
        .args(["bench", "--timeout", "1s", "--requests", "5"])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("timed out after 1s (--timeout)"), "{err}");
}

#[test]
fn bench_gives_up_on_a_target_whose_backlog_is_full() {
    let server = FullBacklog::start();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    let out = cmd
        .args([
            "bench",
            "--mode",
            "plain",
            "--timeout",
            "1s",
            "--requests",
            "1",
        ])
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("timed out after 1s (--timeout)"), "{err}");
}
