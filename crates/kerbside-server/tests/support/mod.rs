//! A loopback HTTP/1 server running a [`CgiService`] as if behind the gate (the
//! request extensions the gate sets are inserted by a `map_request`), a client, and
//! helpers to write CGI scripts and run commands.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use kerbside_server::cgi::{CgiConfig, CgiService};
use kerbside_server::gate::ConnectionInfo;
use kerbside_server::{Authenticated, BoxError, GateBody};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

/// Everything logged by the tests of this binary (also written to standard error,
/// which the test harness shows for failing tests).
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let shared = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Tee(shared.clone()))
            .try_init();
        buffer
    })
    .clone()
}

/// Waits up to 3 s for a log line containing all of `needles`; gives it.
pub async fn log_line(needles: &[&str]) -> Option<String> {
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return Some(line.to_owned());
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Tee(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server on `127.0.0.1:port`; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// The status of every response the CGI service produced, in order.
    pub statuses: Arc<Mutex<Vec<StatusCode>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn statuses(&self) -> Vec<StatusCode> {
        self.statuses.lock().unwrap().clone()
    }
}

fn record(
    recorded: Arc<Mutex<Vec<StatusCode>>>,
) -> impl Fn(Response<GateBody>) -> Response<GateBody> + Clone {
    move |res| {
        recorded.lock().unwrap().push(res.status());
        res
    }
}

/// Serves `config` with requests authenticated as `principal` (none: anonymous),
/// arriving over "TLS" if `tls`.
pub async fn serve(config: CgiConfig, principal: Option<&str>, tls: bool) -> Server {
    logs();
    let cgi = CgiService::new(config).expect("valid CGI configuration");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let principal = principal.map(str::to_owned);
    let recorded = statuses.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, remote)) = listener.accept().await else {
                continue;
            };
            let principal = principal.clone();
            let recorded = recorded.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut req: Request<Incoming>| {
                    if let Some(principal) = &principal {
                        req.extensions_mut().insert(Authenticated::new(
                            principal.clone(),
                            kerbside_proto::SchemeKind::Negotiate,
                            true,
                        ));
                    }
                    req.extensions_mut().insert(ConnectionInfo { remote, tls });
                    req
                })
                .map_response(record(recorded))
                .service(cgi.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    Server {
        addr,
        statuses,
        task,
    }
}

pub type ClientBody = BoxBody<Bytes, BoxError>;

pub fn client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub fn full(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> ClientBody {
    full(Bytes::new())
}

/// A response read whole; `body` is `Err` if it was cut.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Result<Bytes, String>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body.as_ref().expect("a whole body")).into_owned()
    }

    /// The body as `NAME=value` lines (the output of `env`).
    pub fn variables(&self) -> BTreeMap<String, String> {
        self.text()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }
}

pub async fn send(request: Request<ClientBody>) -> Answer {
    let response = tokio::time::timeout(Duration::from_secs(60), client().request(request))
        .await
        .expect("an answer within 60 s")
        .expect("an HTTP response");
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string());
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Answer {
    send(Request::get(url).body(empty()).unwrap()).await
}

/// Writes an executable script.
pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A command with a clean environment: a known PATH, `HOME` in `home`, no system or
/// user configuration for git and Mercurial, and fixed author names.
pub fn command(program: &str, home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", home)
        .env("HGRCPATH", home.join("empty-hgrc"))
        .env("HGPLAIN", "1")
        .env("HGUSER", "Test <test@example.test>")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.test")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.test")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if !home.join("empty-hgrc").exists() {
        std::fs::write(home.join("empty-hgrc"), "").unwrap();
    }
    command
}

/// Runs a command, which must succeed within 120 s; gives its standard output.
pub async fn run(command: &mut tokio::process::Command) -> String {
    let (ok, stdout, stderr) = run_status(command).await;
    assert!(ok, "{command:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs a command within 120 s; gives whether it succeeded, its standard output and
/// its standard error.
pub async fn run_status(command: &mut tokio::process::Command) -> (bool, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} took over 120 s"))
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether process `pid` is gone (or only a zombie waiting for its parent).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits up to `limit` for `pid` to be gone.
pub async fn wait_gone(pid: u32, limit: Duration) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if process_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process_gone(pid)
}
