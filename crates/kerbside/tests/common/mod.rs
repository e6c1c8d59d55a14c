//! Fixtures for the binary's tests: the `kerbside` binary run as a child process with
//! a test realm's environment, an echo upstream, and curl.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kerbside_testkit::{TestCert, TestRealm};

pub mod cntlm;
pub mod example_app;
pub mod firefox;
pub mod proxy;

/// The built `kerbside` binary with the realm's environment and none of the
/// machine's CA overrides.
pub fn kerbside(realm: &TestRealm) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(realm.env());
    cmd
}

/// Removes variables of this machine that would change what a test sees.
pub fn clean_env(cmd: &mut Command) {
    for var in [
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "GIT_SSL_CAINFO",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
}

/// curl with the realm's environment, our CA, and no proxy.
pub fn curl(realm: &TestRealm, ca: &Path) -> Command {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    cmd.envs(realm.env());
    cmd.arg("--silent")
        .arg("--show-error")
        .arg("--noproxy")
        .arg("*")
        .arg("--cacert")
        .arg(ca);
    cmd
}

/// A small HTTP/1.1 upstream that answers every request with what it received:
/// `method`, `path`, each `x-remote-user` header it saw, and the body.
pub struct EchoUpstream {
    pub port: u16,
}

/// A server on a free loopback port that hands each connection to `handle` on a thread of
/// its own; returns the port. The fixtures below are this with a handler each.
pub fn serve_each_connection(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}

impl EchoUpstream {
    pub fn start() -> Self {
        let port = serve_each_connection(|stream| {
            let _ = echo(stream);
        });
        Self { port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn echo(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request_line = line.trim_end().to_owned();
        let mut users = Vec::new();
        let mut length = 0usize;
        let mut forwarded_proto = String::new();
        let mut chunked = false;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let (n, v) = (n.trim().to_ascii_lowercase(), v.trim().to_owned());
                match n.as_str() {
                    "x-remote-user" => users.push(v),
                    "content-length" => length = v.parse().unwrap_or(0),
                    "x-forwarded-proto" => forwarded_proto = v,
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "authorization" => users.push(format!("LEAKED-AUTHORIZATION:{v}")),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        };
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        let text = format!(
            "method={method}\npath={path}\nusers={}\nproto={forwarded_proto}\nbody={}\n",
            users.join("|"),
            String::from_utf8_lossy(&body)
        );
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
    }
}

/// Reads a chunked request body (RFC 9112 §7.1), trailers ignored.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer)?;
                if trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// A running `kerbside gate`, stopped on drop.
pub struct GateProcess {
    child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl GateProcess {
    /// Starts a gate on a free port with the realm's keytab in front of `upstream`;
    /// TLS with `cert` when given.
    pub fn start(
        realm: &TestRealm,
        cert: Option<&TestCert>,
        upstream: &str,
        extra: &[&str],
    ) -> Self {
        Self::start_wrapped(realm, cert, upstream, extra, &[])
    }

    /// Like [`start`](Self::start), with the gate run under `wrapper` (e.g.
    /// `["faketime", "-f", "+10m"]`).
    pub fn start_wrapped(
        realm: &TestRealm,
        cert: Option<&TestCert>,
        upstream: &str,
        extra: &[&str],
        wrapper: &[&str],
    ) -> Self {
        let mut cmd = match wrapper.split_first() {
            None => kerbside(realm),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                clean_env(&mut cmd);
                cmd.envs(realm.env());
                cmd.args(args).arg(env!("CARGO_BIN_EXE_kerbside"));
                cmd
            }
        };
        cmd.arg("gate")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--keytab")
            .arg(realm.keytab())
            .arg("--upstream")
            .arg(upstream)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(cert) = cert {
            cmd.arg("--tls-cert")
                .arg(cert.cert_pem_path())
                .arg("--tls-key")
                .arg(cert.key_pem_path());
        }
        Self::from_command(cmd)
    }

    /// Runs a `kerbside` server command (gate or tunnel) with stderr piped, and waits
    /// for its "listening on URL" line.
    pub fn from_command(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Its own process group, so that drop also stops what a wrapper (faketime
        // forks) started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("start kerbside");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split(',').next().unwrap_or("").to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url.replace("127.0.0.1", "localhost"),
            Err(_) => {
                let _ = child.kill();
                panic!("kerbside did not start: {}", log.lock().unwrap());
            }
        };
        Self { child, url, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `pred` holds for the log or the time is up.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if pred(&self.log()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends raw bytes to `addr` over plain TCP and returns the status code of the answer.
pub fn raw_status(port: u16, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&got);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

/// `hg` with a clean configuration: no user or system hgrc, a fixed user name.
pub fn hg(dir: &Path) -> Command {
    let mut cmd = Command::new("hg");
    clean_env(&mut cmd);
    cmd.current_dir(dir)
        .env("HGRCPATH", "")
        .env("HGPLAIN", "1")
        .env("HGUSER", "test <test@example.test>");
    cmd
}

/// Runs a command and panics with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A Mercurial repository with one commit, served by `hg serve` (pushes allowed
/// over plain HTTP), stopped on drop.
pub struct HgServe {
    child: Child,
    pub repo: std::path::PathBuf,
    pub port: u16,
}

impl HgServe {
    pub fn start(dir: &Path) -> Self {
        let repo = dir.join("served-repo");
        run_ok(hg(dir).arg("init").arg(&repo));
        std::fs::write(repo.join("README"), "hello from the server\n").unwrap();
        run_ok(hg(&repo).args(["commit", "-A", "-m", "first"]));
        for _ in 0..5 {
            let port = kerbside_testkit::free_port().unwrap();
            let mut child = hg(&repo)
                .args(["serve", "-a", "127.0.0.1", "-p", &port.to_string(), "-E"])
                .arg(dir.join("hg-serve-errors.log"))
                .args([
                    "--config",
                    "web.allow-push=*",
                    "--config",
                    "web.push_ssl=false",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { child, repo, port };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("hg serve did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What `hg serve` wrote to its error log (tracebacks of failed requests).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.repo.with_file_name("hg-serve-errors.log")).unwrap_or_default()
    }
}

impl Drop for HgServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GateProcess {
    /// The gate's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the gate to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics URL from the "metrics on URL" line of the log (`--metrics`).
    pub fn metrics_url(&self) -> String {
        assert!(
            self.wait_for_log(|l| l.contains("metrics on ")),
            "no metrics line: {}",
            self.log()
        );
        let log = self.log();
        let rest = log.split("metrics on ").nth(1).unwrap();
        rest.lines().next().unwrap().trim().to_owned()
    }

    /// The text of `GET /metrics` (plain HTTP/1.0 over TCP).
    pub fn metrics(&self) -> String {
        let url = self.metrics_url();
        let authority = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap();
        let mut stream = TcpStream::connect(authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {authority}\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }
}

/// The value of the sample `name` (with its labels, e.g.
/// `kerbside_gate_handshakes_total{result="ok"}`) in Prometheus text, 0 if absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// An HTTP/1.1 upstream that answers each request, after `delay`, with its whole
/// head (request line and headers) as the body; counts the requests it received.
pub struct HeadEchoUpstream {
    pub port: u16,
    received: Arc<std::sync::atomic::AtomicUsize>,
}

impl HeadEchoUpstream {
    pub fn start(delay: Duration) -> Self {
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = received.clone();
        let port = serve_each_connection(move |stream| {
            let _ = echo_head(stream, delay, &counter);
        });
        Self { port, received }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many request heads arrived so far.
    pub fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn echo_head(
    stream: TcpStream,
    delay: Duration,
    counter: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(delay);
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{head}",
            head.len()
        )?;
        writer.flush()?;
    }
}

/// One request as [`RecordingUpstream`] saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Each `x-remote-user` header, in order.
    pub users: Vec<String>,
    pub user_agent: String,
}

/// An HTTP/1.1 upstream that remembers every request (method, path, `x-remote-user`,
/// `User-Agent`) and answers with a small HTML page naming the user, which links the
/// stylesheet `style.css` (any path ending in `.css` gets one).
pub struct RecordingUpstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RecordingUpstream {
    pub fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let port = serve_each_connection(move |stream| {
            let _ = record(stream, &sink);
        });
        Self { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn record(stream: TcpStream, seen: &Mutex<Vec<RecordedRequest>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let mut request = RecordedRequest {
            method: parts.next().unwrap_or_default().to_owned(),
            path: parts.next().unwrap_or_default().to_owned(),
            users: Vec::new(),
            user_agent: String::new(),
        };
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let v = v.trim().to_owned();
                match n.trim().to_ascii_lowercase().as_str() {
                    "x-remote-user" => request.users.push(v),
                    "user-agent" => request.user_agent = v,
                    "content-length" => length = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (content_type, page) = if request.path.ends_with(".css") {
            ("text/css", "h1 { color: rgb(0, 128, 0) }\n".to_owned())
        } else {
            let page = format!(
                "<!doctype html><html><head><title>kerbside gate</title>\
                 <link rel=\"stylesheet\" href=\"style.css\"></head>\
                 <body><h1>Hello, {}</h1><p>{} {} through kerbside gate</p></body></html>\n",
                request.users.join(", "),
                request.method,
                request.path
            );
            ("text/html; charset=utf-8", page)
        };
        seen.lock().unwrap().push(request);
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        )?;
        writer.flush()?;
    }
}

/// `kerbside fetch` trusting `ca`, with no Kerberos ticket at all: only password
/// schemes can answer.
pub fn fetch_without_ticket(realm: &TestRealm, ca: &Path) -> Command {
    let mut cmd = kerbside(realm);
    cmd.env(
        "KRB5CCNAME",
        format!("FILE:{}/no-ticket", realm.dir().display()),
    )
    .arg("fetch")
    .arg("--cacert")
    .arg(ca);
    cmd
}

/// Runs [`fetch_without_ticket`] with `args` on `url`.
pub fn run_fetch(realm: &TestRealm, ca: &Path, args: &[&str], url: &str) -> Output {
    fetch_without_ticket(realm, ca)
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

/// The body of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    let (body, err) = text(out);
    assert!(out.status.success(), "fetch failed: {err}\n{body}");
    body
}

/// The standard error of a run that must have failed.
pub fn failed(out: &Output) -> String {
    let (body, err) = text(out);
    assert!(
        !out.status.success(),
        "fetch should have failed: {body}\n{err}"
    );
    err
}

/// Runs `kerbside ARGS...` with `password` on standard input (`ntlm-passwd`,
/// `digest-passwd`) and checks it succeeded.
pub fn with_password_on_stdin(realm: &TestRealm, args: &[&std::ffi::OsStr], password: &str) {
    let mut child = kerbside(realm)
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The hex SHA-256 of `data`, by coreutils' sha256sum.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}
