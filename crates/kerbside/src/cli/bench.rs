//! `kerbside bench`: a load generator that speaks Negotiate, to measure a kerberized
//! server (wrk, ab and oha cannot authenticate).
//!
//! The tool measures the server, not itself: Kerberos tokens cost the client
//! 100–300 µs each, so every token a run needs is made ahead of the timed window,
//! on the blocking pool, each with its own GSSAPI context kept to verify the
//! server's final token afterwards. With `--requests N` a run knows how many it
//! needs; with only `--duration` it makes a bounded pool (`--tokens`) and stops
//! early, saying so, when the pool runs out. Every response is checked (status, and
//! the final `WWW-Authenticate: Negotiate` token against the exchange's context);
//! a failure is counted as an error of a named [`ErrorKind`], never as a success.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use http::header::{
    HeaderValue, AUTHORIZATION, CONNECTION, COOKIE, HOST, SET_COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kerbside_gssapi::{ClientCredentials, Delegation, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, MutualOutcome, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, Challenge, MutualAuth};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::net::TcpStream;

/// Arguments of `kerbside bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
Modes: `plain` sends keep-alive requests without authentication; `per-request` sends a \
fresh Negotiate token with every keep-alive request; `handshake` opens a new connection \
for each exchange: request, 401, token, final response; `reuse` authenticates once per \
connection with a token, then sends plain requests, returning any cookie the server set \
(a session cookie) or relying on `Persistent-Auth: true`.

Tokens: made ahead of the timed window, one per request (per-request, handshake) or per \
connection (reuse), each with its own GSSAPI context to verify the server's final token. \
With --requests N exactly as many are made; with only --duration a pool of --tokens is \
made and the run stops early, saying so, if it runs out (each token waiting in the pool \
holds a GSSAPI context, about 5 KB: 20000 take about 100 MB). Tokens are single use (servers \
keep a replay cache) and older than the 5-minute clock-skew window they are refused, so \
keep token runs under 4 minutes. Credentials come from the default ticket cache \
(KRB5CCNAME) or --ccache; a FILE: cache is read for each token, so a cache in the kernel \
keyring (KEYRING:) or on tmpfs makes token generation faster; --keytab keeps tickets in a \
memory cache of this process, the fastest.

Measures: requests/s counts successful requests (exchanges in handshake mode) over the \
timed window, from the first request to the last response; latency covers successful \
requests only, from sending (connecting, in handshake mode) to the last body byte. With \
--server-pid, the server's CPU time comes from /proc/PID/stat (utime+stime of all its \
threads, plus cutime+cstime: children it reaped during the window, such as CGI scripts) \
in clock ticks of `getconf CLK_TCK` (100 if that fails), so the figure is only as fine as \
10 ms over the window: run for a few seconds for a good figure. Several servers (repeat \
--server-pid or separate pids with commas) are summed; --server-children adds every \
process whose parent is one of them (Apache's workers), listed at the start and again at \
the end of the window: a process that came or went in between is reported \
(`processes_changed`), as its CPU time is then only partly in the window. \
--server-memory reads the servers' RSS and PSS (/proc/PID/smaps_rollup) before the \
keep-alive connections open and again after the run with all of them still open and \
idle, and reports the growth per open connection (use reuse mode against a \
connection-bound server for the memory of an idle authenticated connection).

Only HTTP/1.1 is spoken. Targets must resolve to loopback addresses unless \
--allow-remote. A progress line is written to standard error once a second when it is a \
terminal and --json is not given.

Exit status: 0 every request succeeded, 1 the run could not be made, 2 some requests \
failed (the report says which and why).")]
pub struct BenchArgs {
    /// The URL to request (https:// or http://).
    pub url: String,

    /// What each request does.
    #[arg(long, value_enum, default_value = "per-request")]
    pub mode: BenchMode,

    /// How many connections run requests at once.
    #[arg(short = 'c', long, value_name = "N", default_value = "2")]
    pub connections: usize,

    /// Run for this long (`500ms`, `5s`, `1m`); with --requests, whichever ends first.
    /// Without either, 10 seconds.
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Send this many requests (exchanges in handshake mode).
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// The most tokens made ahead when only --duration bounds the run.
    #[arg(long, value_name = "N", default_value = "20000")]
    pub tokens: usize,

    /// The status a successful request gets.
    #[arg(long, value_name = "CODE", default_value = "200")]
    pub expect_status: u16,

    /// Give up on a request (counted as a `timeout` error) after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Allow a target that is not on a loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// Report the CPU time this server process (and the children it reaped) used per
    /// successful request, from /proc/PID/stat; repeat (or separate with commas) to sum
    /// several processes.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Count the children of each --server-pid too (e.g. Apache's worker processes).
    #[arg(long, requires = "server_pid")]
    pub server_children: bool,

    /// Report the servers' memory growth per open idle connection after the run.
    #[arg(long, requires = "server_pid")]
    pub server_memory: bool,

    /// Print the report as JSON (and no progress or notes on standard error).
    #[arg(long)]
    pub json: bool,

    /// Kerberos service name instead of HTTP@<host of the URL>: `HTTP@host` or
    /// `HTTP/host@REALM`.
    #[arg(long, value_name = "NAME", help_heading = "Authentication")]
    pub spn: Option<String>,

    /// Mutual authentication: `required` (every authenticated response must carry a
    /// final token that verifies), `optional` (verify the token when sent), `off`.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "optional",
        help_heading = "Authentication"
    )]
    pub mutual: MutualAuth,

    /// Bind tokens to the TLS channel (RFC 5929 tls-server-end-point) on HTTPS.
    #[arg(
        long,
        value_enum,
        value_name = "ON|OFF",
        default_value = "on",
        help_heading = "Authentication"
    )]
    pub channel_binding: super::client_args::Switch,

    /// Use this ticket cache instead of the default (KRB5CCNAME).
    #[arg(long, value_name = "CCACHE", help_heading = "Authentication")]
    pub ccache: Option<String>,

    /// Get tickets with this client keytab, kept in a memory cache of this process.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "ccache",
        help_heading = "Authentication"
    )]
    pub keytab: Option<PathBuf>,

    /// The principal to get tickets for with --keytab (default: the keytab's first).
    #[arg(
        long,
        value_name = "PRINCIPAL",
        requires = "keytab",
        help_heading = "Authentication"
    )]
    pub principal: Option<String>,

    /// Trust only the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub cacert: Option<PathBuf>,

    /// Do not verify the server's TLS certificate.
    #[arg(short = 'k', long, help_heading = "TLS")]
    pub insecure: bool,
}

/// What each request of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchMode {
    /// Keep-alive requests without authentication.
    Plain,
    /// A fresh Negotiate token on every keep-alive request.
    PerRequest,
    /// A new connection for each exchange: request, 401, token, final response.
    Handshake,
    /// A token once per connection, then plain requests (with the session cookie the
    /// server set, if any).
    Reuse,
}

impl BenchMode {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::PerRequest => "per-request",
            Self::Handshake => "handshake",
            Self::Reuse => "reuse",
        }
    }
}

/// Why a request did not count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No TCP connection or TLS session could be made.
    Connect,
    /// The final status was not the expected one.
    Status,
    /// The server's final token was missing (with `--mutual required`), malformed or
    /// did not verify with the exchange's GSSAPI context.
    Mutual,
    /// The connection failed or closed before a whole response came.
    Http,
    /// No token to send: the server's challenge did not offer Negotiate, asked for
    /// another leg, or the token pool ran out for a new connection (reuse mode).
    Token,
    /// No whole response within `--timeout`.
    Timeout,
}

impl ErrorKind {
    const ALL: [ErrorKind; 6] = [
        Self::Connect,
        Self::Status,
        Self::Mutual,
        Self::Http,
        Self::Token,
        Self::Timeout,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Status => "status",
            Self::Mutual => "mutual",
            Self::Http => "http",
            Self::Token => "token",
            Self::Timeout => "timeout",
        }
    }
}

/// A failed request: its kind and what happened.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 5s, 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Where requests go, resolved once before the run.
#[derive(Debug, Clone)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// Path and query of each request.
    path: String,
    /// The address every connection is made to.
    addr: SocketAddr,
}

impl Target {
    /// Parses the URL and resolves its host; refuses a non-loopback address unless
    /// `--allow-remote`, and tokens over plain HTTP to one at all. The first
    /// connection gets `--timeout` as its deadline.
    async fn resolve(args: &BenchArgs) -> Result<Self, String> {
        let (url, allow_remote) = (args.url.as_str(), args.allow_remote);
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url} must start with https:// or http://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        if !allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
                return Err(format!(
                    "refusing to load {host} ({}): it is not a loopback address; a benchmark \
                     is a flood of requests, so aim it at another machine only on purpose, \
                     with --allow-remote",
                    remote.ip()
                ));
            }
        }
        if !tls && tokens_needed(args) > 0 {
            if let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
                // Every token mode sends tokens before any 401: never over plain
                // HTTP to another machine (the client's rule, kerbside_proto's
                // Transport::allows_unasked_credentials).
                return Err(format!(
                    "refusing to send Kerberos tokens to {host} ({}) over plain http:// \
                     without a 401: anyone on the path could take them; use https:// (or \
                     --mode plain)",
                    remote.ip()
                ));
            }
        }
        // The first address that takes a connection (`localhost` may name ::1 first
        // while the server listens on 127.0.0.1 only).
        let mut last = None;
        for addr in &addrs {
            let connect = tokio::time::timeout(args.timeout, TcpStream::connect(addr));
            match connect.await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("timed out after {:?} (--timeout)", args.timeout),
                ))
            }) {
                Ok(_) => {
                    return Ok(Self {
                        tls,
                        host,
                        port,
                        authority,
                        path,
                        addr: *addr,
                    })
                }
                Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(last.unwrap_or_else(|| format!("cannot connect to {host}:{port}")))
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Makes connections to the target: TCP, then TLS (HTTP/1.1 by ALPN) for https.
#[derive(Clone)]
struct Connector {
    target: Arc<Target>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    tls_settings: kerbside_client::TlsSettings,
    /// `--timeout`, also the longest a connection may take.
    timeout: Duration,
}

/// One HTTP/1.1 connection.
struct Connection {
    sender: SendRequest<Empty<Bytes>>,
}

impl Connector {
    fn new(target: Arc<Target>, args: &BenchArgs) -> Result<Self, String> {
        let tls_settings = tls_settings(args);
        if !target.tls {
            return Ok(Self {
                target,
                tls: None,
                tls_settings,
                timeout: args.timeout,
            });
        }
        let config = tls_config(args)?;
        let name = match target.host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(target.host.clone())
                .map_err(|e| format!("{} is not a valid host name: {e}", target.host))?,
        };
        Ok(Self {
            target,
            tls: Some((tokio_rustls::TlsConnector::from(config), name)),
            tls_settings,
            timeout: args.timeout,
        })
    }

    /// A new connection, and the TLS `tls-server-end-point` channel binding, if any.
    /// [`connect_untimed`](Self::connect_untimed) within `--timeout`: connections
    /// made before the clock starts get a deadline too.
    async fn connect(&self) -> Result<(Connection, Option<Vec<u8>>), Failure> {
        tokio::time::timeout(self.timeout, self.connect_untimed())
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "connecting to {} timed out after {:?} (--timeout)",
                        self.target.addr, self.timeout
                    ),
                ))
            })
    }

    async fn connect_untimed(&self) -> Result<(Connection, Option<Vec<u8>>), Failure> {
        let tcp = TcpStream::connect(self.target.addr).await.map_err(|e| {
            Failure::new(
                ErrorKind::Connect,
                format!("cannot connect to {}: {e}", self.target.addr),
            )
        })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok((handshake(tcp).await?, None)),
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    Failure::new(
                        ErrorKind::Connect,
                        self.tls_settings.explain_handshake_failure(
                            &self.target.host,
                            self.target.port,
                            &e,
                        ),
                    )
                })?;
                let binding = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|leaf| {
                        kerbside_proto::channel_binding::tls_server_end_point(leaf.as_ref()).ok()
                    });
                Ok((handshake(stream).await?, binding))
            }
        }
    }
}

async fn handshake<IO>(io: IO) -> Result<Connection, Failure>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::new(ErrorKind::Http, format!("HTTP/1.1 setup failed: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection { sender })
}

/// A response read to its end, with what the checks need.
struct Answer {
    status: StatusCode,
    challenges: Result<Vec<Challenge>, String>,
    set_cookies: Vec<String>,
    persistent_auth: bool,
    /// The server will close the connection after this response.
    closing: bool,
}

impl Connection {
    async fn send(
        &mut self,
        target: &Target,
        authorization: Option<&HeaderValue>,
        cookie: Option<&str>,
    ) -> Result<Answer, Failure> {
        let mut request = Request::get(target.path.as_str())
            .header(HOST, target.authority.as_str())
            .header(
                USER_AGENT,
                concat!("kerbside-bench/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::new(ErrorKind::Http, format!("bad request: {e}")))?;
        if let Some(value) = authorization {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
            request.headers_mut().insert(COOKIE, cookie);
        }
        let http_error =
            |e: hyper::Error| Failure::new(ErrorKind::Http, format!("connection failed: {e}"));
        self.sender.ready().await.map_err(http_error)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(http_error)?;
        let (head, body) = response.into_parts();
        body.collect().await.map_err(|e| {
            Failure::new(
                ErrorKind::Http,
                format!("the response body was cut off: {e}"),
            )
        })?;
        let challenges = parse_challenges(
            head.headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .map_err(|e| format!("malformed WWW-Authenticate header: {e}"));
        let set_cookies = head
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|pair| pair.trim().to_owned())
            .filter(|pair| pair.contains('='))
            .collect();
        let header_is = |name, value: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        Ok(Answer {
            status: head.status,
            persistent_auth: header_is(http::HeaderName::from_static("persistent-auth"), "true"),
            closing: header_is(CONNECTION, "close") || self.sender.is_closed(),
            challenges,
            set_cookies,
        })
    }
}

/// The client library's TLS settings and verifier (one trust path for every client).
fn tls_settings(args: &BenchArgs) -> kerbside_client::TlsSettings {
    kerbside_client::TlsSettings {
        ca_file: args.cacert.clone(),
        insecure: args.insecure,
    }
}

fn tls_config(args: &BenchArgs) -> Result<Arc<rustls::ClientConfig>, String> {
    tls_settings(args)
        .client_config(&[b"http/1.1"])
        .map_err(|e| e.to_string())
}

/// One exchange made ahead: the `Authorization` value to send and the context that
/// verifies the server's answer.
struct Exchange {
    authorization: HeaderValue,
    state: ExpectFinalToken<NegotiateInitiator>,
}

/// Tokens made ahead, taken one at a time by the connections.
struct TokenPool {
    exchanges: Mutex<Vec<Exchange>>,
}

impl TokenPool {
    fn take(&self) -> Option<Exchange> {
        self.exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn left(&self) -> usize {
        self.exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Makes `count` exchanges on the blocking pool: one first (it fetches the service
/// ticket into the cache and reports a credentials problem once), then the rest
/// split over one task per CPU.
async fn make_tokens(config: InitiatorConfig, count: usize) -> Result<Vec<Exchange>, String> {
    fn make(config: &InitiatorConfig, count: usize) -> Result<Vec<Exchange>, String> {
        (0..count)
            .map(|_| {
                let mech = NegotiateInitiator::new(config).map_err(|e| e.to_string())?;
                let (credentials, state) = ExpectChallenge::new(mech, config.mutual)
                    .start()
                    .map_err(|e| e.to_string())?;
                let authorization = HeaderValue::from_str(&credentials.to_header_value())
                    .map_err(|e| format!("unusable token: {e}"))?;
                Ok(Exchange {
                    authorization,
                    state,
                })
            })
            .collect()
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let config = Arc::new(config);
    let first = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || make(&config, 1))
            .await
            .map_err(|e| format!("token task failed: {e}"))??
    };
    let rest = count - 1;
    let tasks = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(rest.max(1));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let share = rest / tasks + usize::from(i < rest % tasks);
        let config = config.clone();
        handles.push(tokio::task::spawn_blocking(move || make(&config, share)));
    }
    let mut all = first;
    for handle in handles {
        all.extend(
            handle
                .await
                .map_err(|e| format!("token task failed: {e}"))??,
        );
    }
    Ok(all)
}

/// The processes whose CPU time is counted: the given pids and, with `children`, every
/// process whose parent is one of them.
fn server_processes(pids: &[u32], children: bool) -> Vec<u32> {
    let mut all: Vec<u32> = pids.to_vec();
    if children {
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|t| parse_ppid(&t));
                if parent.is_some_and(|p| pids.contains(&p)) && !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
    }
    all.sort_unstable();
    all
}

/// The parent pid in the text of `/proc/PID/stat`.
fn parse_ppid(text: &str) -> Option<u32> {
    text[text.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU ticks of each process (a process that is gone counts nothing).
fn read_cpus(pids: &[u32]) -> BTreeMap<u32, CpuTicks> {
    pids.iter()
        .filter_map(|&pid| Some((pid, read_cpu(pid).ok()?)))
        .collect()
}

/// Resident and proportional set size of processes, in KiB, from
/// `/proc/PID/smaps_rollup`.
fn read_memory(pids: &[u32]) -> Result<(u64, u64), String> {
    let mut rss = 0;
    let mut pss = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/smaps_rollup");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        for line in text.lines() {
            let field = |name: &str| {
                line.strip_prefix(name)
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            };
            if let Some(kib) = field("Rss:") {
                rss += kib;
            } else if let Some(kib) = field("Pss:") {
                pss += kib;
            }
        }
    }
    Ok((rss, pss))
}

/// CPU time of a process, in clock ticks, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTicks {
    /// utime + stime.
    own: u64,
    /// cutime + cstime: children the process waited for.
    children: u64,
}

/// Parses the text of `/proc/PID/stat` (the command name may hold spaces and
/// parentheses: fields are counted after the last `)`).
fn parse_stat(text: &str) -> Option<CpuTicks> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11.
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(CpuTicks {
        own: field(11)? + field(12)?,
        children: field(13)? + field(14)?,
    })
}

fn read_cpu(pid: u32) -> Result<CpuTicks, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path} (--server-pid {pid}): {e}"))?;
    parse_stat(&text).ok_or_else(|| format!("cannot parse {path}"))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's value, if that fails).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// What every connection shares during the run.
struct Shared {
    target: Arc<Target>,
    connector: Connector,
    mode: BenchMode,
    expect: StatusCode,
    timeout: Duration,
    pool: TokenPool,
    /// Requests not yet started, when `--requests` bounds the run.
    budget: Option<AtomicU64>,
    deadline: Option<Instant>,
    stop: AtomicBool,
    /// Why the run ended before its bound, if it did.
    stopped_early: Mutex<Option<String>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    /// Claims the next request; false when the run is over.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// A token for the next request; stops the run when the pool is empty.
    fn token(&self) -> Option<Exchange> {
        let exchange = self.pool.take();
        if exchange.is_none() && !self.stop.swap(true, Ordering::Relaxed) {
            let mut reason = self
                .stopped_early
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reason.get_or_insert_with(|| {
                "the tokens made ahead ran out; raise --tokens or bound the run with --requests"
                    .to_owned()
            });
        }
        exchange
    }

    /// Checks the final response of an authenticated exchange: its status, then the
    /// server's final token against the exchange's context.
    fn verify(
        &self,
        exchange: Exchange,
        answer: &Answer,
        tally: &mut Tally,
    ) -> Result<(), Failure> {
        self.check_status(answer)?;
        if answer.status == StatusCode::UNAUTHORIZED {
            // An expected 401 (--expect-status 401): nothing to verify.
            return Ok(());
        }
        let challenges = answer
            .challenges
            .as_ref()
            .map_err(|e| Failure::new(ErrorKind::Mutual, e.clone()))?;
        match exchange
            .state
            .handle_response(answer.status.as_u16(), challenges)
        {
            Ok(Progress::Established(done)) => {
                match done.mutual() {
                    MutualOutcome::Verified => tally.verified += 1,
                    MutualOutcome::NotSent => tally.not_sent += 1,
                    MutualOutcome::NotChecked => {}
                }
                Ok(())
            }
            Ok(Progress::Continue(..)) => Err(Failure::new(
                ErrorKind::Token,
                "the server asked for another leg",
            )),
            Err(
                e @ (NegotiateError::MutualAuthMissing
                | NegotiateError::MutualAuthFailed(_)
                | NegotiateError::MutualAuthIncomplete
                | NegotiateError::MalformedToken(_)),
            ) => Err(Failure::new(ErrorKind::Mutual, e.to_string())),
            Err(e) => Err(Failure::new(ErrorKind::Token, e.to_string())),
        }
    }

    fn check_status(&self, answer: &Answer) -> Result<(), Failure> {
        if answer.status == self.expect {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorKind::Status,
                format!("expected {}, got {}", self.expect, answer.status),
            ))
        }
    }
}

/// What one connection counted; merged at the end.
struct Tally {
    latency: Histogram<u64>,
    errors: BTreeMap<ErrorKind, (u64, String)>,
    statuses: BTreeMap<u16, u64>,
    verified: u64,
    not_sent: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            // 1 µs to 1 hour, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            errors: BTreeMap::new(),
            statuses: BTreeMap::new(),
            verified: 0,
            not_sent: 0,
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (kind, (count, message)) in other.errors {
            let entry = self.errors.entry(kind).or_insert((0, message));
            entry.0 += count;
        }
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.verified += other.verified;
        self.not_sent += other.not_sent;
    }
}

/// How a claimed request ended when it did not fail.
enum Done {
    /// The response passed every check.
    Success,
    /// Not sent: the token pool is empty and the run is stopping.
    NoToken,
}

/// One connection's loop: claims requests until the run is over.
async fn drive(shared: Arc<Shared>, mut conn: Option<Connection>) -> (Tally, Option<Connection>) {
    let mut tally = Tally::new();
    let mut session = Session::default();
    while shared.claim() {
        let started = Instant::now();
        let work = one(&shared, &mut conn, &mut session, &mut tally);
        let result = match tokio::time::timeout(shared.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::Timeout,
                format!("no whole response within {:?}", shared.timeout),
            )),
        };
        match result {
            Ok(Done::Success) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = tally.latency.record(micros.max(1));
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Done::NoToken) => break,
            Err(failure) => {
                if matches!(
                    failure.kind,
                    ErrorKind::Connect | ErrorKind::Http | ErrorKind::Timeout
                ) {
                    conn = None;
                }
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let entry = tally
                    .errors
                    .entry(failure.kind)
                    .or_insert((0, failure.message));
                entry.0 += 1;
            }
        }
    }
    (tally, conn)
}

/// What a connection of reuse mode keeps between requests.
#[derive(Default)]
struct Session {
    /// The connection carries a completed handshake.
    authenticated: bool,
    /// The server said `Persistent-Auth: true` on this connection.
    bound: bool,
    /// Cookies the server set (`name=value`), sent back with every request.
    cookies: BTreeMap<String, String>,
}

impl Session {
    fn keep(&mut self, answer: &Answer) {
        self.bound |= answer.persistent_auth;
        for pair in &answer.set_cookies {
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The open connection, or a new one.
async fn ready<'c>(
    shared: &Shared,
    conn: &'c mut Option<Connection>,
    session: &mut Session,
) -> Result<&'c mut Connection, Failure> {
    if conn.is_none() {
        session.authenticated = false;
        session.bound = false;
        *conn = Some(shared.connector.connect().await?.0);
    }
    conn.as_mut()
        .ok_or_else(|| Failure::new(ErrorKind::Connect, "no connection"))
}

/// Sends one request (one exchange in handshake mode) and checks the answer.
async fn one(
    shared: &Shared,
    conn: &mut Option<Connection>,
    session: &mut Session,
    tally: &mut Tally,
) -> Result<Done, Failure> {
    let target = &shared.target;
    match shared.mode {
        BenchMode::Plain => {
            let answer = ready(shared, conn, session)
                .await?
                .send(target, None, None)
                .await?;
            tally.status(conn, &answer);
            shared.check_status(&answer)?;
        }
        BenchMode::PerRequest => {
            let Some(exchange) = shared.token() else {
                return Ok(Done::NoToken);
            };
            let answer = ready(shared, conn, session)
                .await?
                .send(target, Some(&exchange.authorization), None)
                .await?;
            tally.status(conn, &answer);
            shared.verify(exchange, &answer, tally)?;
        }
        BenchMode::Handshake => {
            let Some(exchange) = shared.token() else {
                return Ok(Done::NoToken);
            };
            let (mut fresh, _) = shared.connector.connect().await?;
            let challenge = fresh.send(target, None, None).await?;
            if challenge.status != StatusCode::UNAUTHORIZED {
                *tally.statuses.entry(challenge.status.as_u16()).or_default() += 1;
                return Err(Failure::new(
                    ErrorKind::Status,
                    format!("expected a 401 challenge, got {}", challenge.status),
                ));
            }
            let offered = challenge
                .challenges
                .as_ref()
                .is_ok_and(|c| c.iter().any(|c| c.scheme.is("Negotiate")));
            if !offered {
                return Err(Failure::new(
                    ErrorKind::Token,
                    "the 401 does not offer Negotiate",
                ));
            }
            if challenge.closing {
                return Err(Failure::new(
                    ErrorKind::Http,
                    "the server closed the connection after its 401: the token must go on \
                     the same connection",
                ));
            }
            let answer = fresh
                .send(target, Some(&exchange.authorization), None)
                .await?;
            *tally.statuses.entry(answer.status.as_u16()).or_default() += 1;
            shared.verify(exchange, &answer, tally)?;
        }
        BenchMode::Reuse => {
            let c = ready(shared, conn, session).await?;
            if session.authenticated || !session.cookies.is_empty() {
                let cookie = session.cookie_header();
                let answer = c.send(target, None, cookie.as_deref()).await?;
                session.keep(&answer);
                tally.status(conn, &answer);
                shared.check_status(&answer).map_err(|mut failure| {
                    if answer.status == StatusCode::UNAUTHORIZED
                        && !session.bound
                        && session.cookies.is_empty()
                    {
                        failure.message.push_str(
                            " (the server kept the authentication neither with the \
                             connection, Persistent-Auth: true, nor in a cookie)",
                        );
                    }
                    failure
                })?;
            } else {
                // Out of tokens (the server closed more connections than the pool
                // allows for): the run stops early and says so, as in per-request mode.
                let Some(exchange) = shared.token() else {
                    return Ok(Done::NoToken);
                };
                let answer = c.send(target, Some(&exchange.authorization), None).await?;
                session.keep(&answer);
                tally.status(conn, &answer);
                shared.verify(exchange, &answer, tally)?;
                session.authenticated = true;
            }
        }
    }
    Ok(Done::Success)
}

impl Tally {
    /// Counts a final status; forgets the connection if the server closes it.
    fn status(&mut self, conn: &mut Option<Connection>, answer: &Answer) {
        *self.statuses.entry(answer.status.as_u16()).or_default() += 1;
        if answer.closing {
            *conn = None;
        }
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: f64,
}

/// The tokens made ahead.
#[derive(Debug, Serialize)]
struct Tokens {
    made: usize,
    left_over: usize,
    generation_s: f64,
    us_each: f64,
}

/// The servers' memory before the connections opened and after the run with all of
/// them open.
#[derive(Debug, Serialize)]
struct ServerMemory {
    rss_before_kib: u64,
    rss_after_kib: u64,
    pss_before_kib: u64,
    pss_after_kib: u64,
    /// Keep-alive connections still open when the memory was read.
    connections_open: usize,
    /// Of those, connections that had authenticated (reuse mode).
    connections_authenticated: usize,
    /// (PSS after − PSS before) / connections open.
    pss_kib_per_connection: Option<f64>,
}

/// The server's CPU time over the timed window.
#[derive(Debug, Serialize)]
struct ServerCpu {
    /// The first --server-pid.
    pid: u32,
    /// Every process counted (with --server-children, as listed at the end).
    pids: Vec<u32>,
    /// With --server-children: the process list differed between start and end.
    processes_changed: bool,
    clk_tck: u64,
    /// utime + stime, in microseconds.
    own_us: u64,
    /// cutime + cstime (children reaped during the window), in microseconds.
    children_us: u64,
    /// (own + children) / successful requests.
    us_per_request: Option<f64>,
}

/// Mutual authentication over the run.
#[derive(Debug, Serialize)]
struct Mutual {
    policy: String,
    /// Final tokens that verified with their exchange's context.
    verified: u64,
    /// Authenticated responses without a final token.
    not_sent: u64,
}

/// The result of a run, printed as a table or as JSON.
#[derive(Debug, Serialize)]
struct Report {
    url: String,
    mode: BenchMode,
    connections: usize,
    tls: bool,
    /// Requests that got an answer or failed (exchanges in handshake mode).
    requests: u64,
    successes: u64,
    /// Failed requests by kind, every kind present.
    errors: BTreeMap<&'static str, u64>,
    /// The first failure's message of each kind that happened.
    error_messages: BTreeMap<&'static str, String>,
    /// Final statuses received.
    statuses: BTreeMap<u16, u64>,
    elapsed_s: f64,
    /// Successful requests per second of the timed window.
    requests_per_sec: f64,
    latency_us: Option<Latency>,
    mutual: Mutual,
    tokens: Option<Tokens>,
    server_cpu: Option<ServerCpu>,
    server_memory: Option<ServerMemory>,
    /// Why the run ended before its bound, if it did.
    stopped_early: Option<String>,
}

impl Report {
    fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    fn table(&self) -> String {
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        let mut lines = vec![
            ("target", self.url.clone()),
            (
                "mode",
                format!(
                    "{} ({} connection{}, HTTP/1.1{})",
                    self.mode.name(),
                    self.connections,
                    if self.connections == 1 { "" } else { "s" },
                    if self.tls { " over TLS" } else { "" }
                ),
            ),
            (
                "requests",
                format!(
                    "{} ok, {} errors in {:.3} s",
                    self.successes,
                    self.error_total(),
                    self.elapsed_s
                ),
            ),
            (
                "throughput",
                format!("{:.1} requests/s", self.requests_per_sec),
            ),
        ];
        lines.push((
            "latency",
            match &self.latency_us {
                Some(l) => format!(
                    "p50 {}, p90 {}, p99 {}, max {}",
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max)
                ),
                None => "no successful request".to_owned(),
            },
        ));
        lines.push((
            "statuses",
            self.statuses
                .iter()
                .map(|(s, n)| format!("{s} × {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        if self.mode != BenchMode::Plain {
            lines.push((
                "mutual auth",
                format!(
                    "{} verified, {} without a final token (--mutual {})",
                    self.mutual.verified, self.mutual.not_sent, self.mutual.policy
                ),
            ));
        }
        if let Some(t) = &self.tokens {
            lines.push((
                "tokens",
                format!(
                    "{} made ahead in {:.3} s ({:.0} µs each), {} left over",
                    t.made, t.generation_s, t.us_each, t.left_over
                ),
            ));
        }
        if let Some(cpu) = &self.server_cpu {
            let per = cpu
                .us_per_request
                .map_or("-".to_owned(), |us| format!("{us:.0} µs/request"));
            lines.push((
                "server CPU",
                format!(
                    "{per} (pid {}: {} ms own + {} ms reaped children; CLK_TCK {}{})",
                    cpu.pids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    cpu.own_us / 1000,
                    cpu.children_us / 1000,
                    cpu.clk_tck,
                    if cpu.processes_changed {
                        "; processes came or went during the run"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(m) = &self.server_memory {
            let per = m.pss_kib_per_connection.map_or("-".to_owned(), |k| {
                format!("{k:.1} KiB PSS per open connection")
            });
            lines.push((
                "server mem",
                format!(
                    "{per} ({} open, {} authenticated; PSS {} → {} KiB, RSS {} → {} KiB)",
                    m.connections_open,
                    m.connections_authenticated,
                    m.pss_before_kib,
                    m.pss_after_kib,
                    m.rss_before_kib,
                    m.rss_after_kib
                ),
            ));
        }
        let failed: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        lines.push((
            "errors",
            if failed.is_empty() {
                "none".to_owned()
            } else {
                failed.join(", ")
            },
        ));
        let mut out = String::new();
        for (name, value) in lines {
            out.push_str(&format!("{name:<13}{value}\n"));
        }
        for (kind, message) in &self.error_messages {
            out.push_str(&format!("  {kind:<11}{message}\n"));
        }
        if let Some(reason) = &self.stopped_early {
            out.push_str(&format!("stopped early: {reason}\n"));
        }
        out
    }
}

/// Runs `kerbside bench`.
pub async fn run(args: BenchArgs) -> ExitCode {
    match bench(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kerbside bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// How many tokens a run makes ahead.
fn tokens_needed(args: &BenchArgs) -> usize {
    let requests = args
        .requests
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match args.mode {
        BenchMode::Plain => 0,
        BenchMode::PerRequest | BenchMode::Handshake => requests.unwrap_or(args.tokens),
        // One per connection, and as many again for connections the server closes.
        BenchMode::Reuse => {
            let per_connection = args.connections.saturating_mul(2).saturating_add(8);
            requests.map_or(per_connection, |n| n.min(per_connection))
        }
    }
}

async fn bench(args: BenchArgs) -> Result<ExitCode, String> {
    if args.connections == 0 {
        return Err("--connections must be at least 1".to_owned());
    }
    if args.requests == Some(0) {
        return Err("--requests must be at least 1".to_owned());
    }
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let note = |text: &str| {
        if !args.json {
            eprintln!("kerbside bench: {text}");
        }
    };
    let target = Arc::new(Target::resolve(&args).await?);
    let connector = Connector::new(target.clone(), &args)?;
    // One connection first: the server is there, TLS works, and the certificate gives
    // the channel binding every token is made with.
    let (_, binding) = connector.connect().await.map_err(|f| f.message)?;

    let count = tokens_needed(&args);
    let mut tokens = None;
    let mut exchanges = Vec::new();
    if count > 0 {
        if duration.is_some_and(|d| d > Duration::from_secs(240)) {
            note(
                "warning: tokens older than the server's clock-skew window (usually 5 \
                 minutes) are refused; keep token runs under 4 minutes",
            );
        }
        let credentials = match (&args.ccache, &args.keytab) {
            (Some(cc), _) => ClientCredentials::Ccache(cc.clone()),
            (None, Some(path)) => ClientCredentials::Keytab {
                path: path.clone(),
                principal: args.principal.clone(),
            },
            (None, None) => ClientCredentials::Default,
        };
        let config = InitiatorConfig {
            target: args
                .spn
                .clone()
                .unwrap_or_else(|| format!("HTTP@{}", target.host)),
            mutual: args.mutual,
            delegation: Delegation::None,
            credentials,
            channel_bindings: binding
                .filter(|_| args.channel_binding == super::client_args::Switch::On),
        };
        note(&format!(
            "making {count} tokens for {} ahead of the run",
            config.target
        ));
        let started = Instant::now();
        exchanges = make_tokens(config, count)
            .await
            .map_err(|e| format!("cannot make a token: {e}"))?;
        let took = started.elapsed().as_secs_f64();
        tokens = Some(Tokens {
            made: exchanges.len(),
            left_over: 0,
            generation_s: took,
            us_each: took * 1e6 / exchanges.len().max(1) as f64,
        });
    }

    let watched = server_processes(&args.server_pid, args.server_children);
    let memory_before = if args.server_memory {
        Some(read_memory(&watched)?)
    } else {
        None
    };
    // Keep-alive modes connect before the clock starts.
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(if args.mode == BenchMode::Handshake {
            None
        } else {
            Some(connector.connect().await.map_err(|f| f.message)?.0)
        });
    }

    let measure_cpu = !args.server_pid.is_empty();
    let ticks = measure_cpu.then(clock_ticks);
    for pid in &args.server_pid {
        read_cpu(*pid)?;
    }
    let processes_before = server_processes(&args.server_pid, args.server_children);
    let cpu_before = read_cpus(&processes_before);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        connector,
        mode: args.mode,
        expect: StatusCode::from_u16(args.expect_status)
            .map_err(|_| format!("{} is not an HTTP status", args.expect_status))?,
        timeout: args.timeout,
        pool: TokenPool {
            exchanges: Mutex::new(exchanges),
        },
        budget: args.requests.map(AtomicU64::new),
        deadline: duration.map(|d| started + d),
        stop: AtomicBool::new(false),
        stopped_early: Mutex::new(None),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(drive(shared.clone(), conn)))
        .collect();
    let progress = (!args.json && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(progress(shared.clone(), started)));
    let mut tally = Tally::new();
    let mut open = Vec::new();
    for worker in workers {
        let (t, conn) = worker
            .await
            .map_err(|e| format!("a connection's task failed: {e}"))?;
        tally.merge(t);
        open.extend(conn);
    }
    let elapsed = started.elapsed();
    let processes_after = server_processes(&args.server_pid, args.server_children);
    let cpu_after = read_cpus(&processes_after);
    let server_memory = match memory_before {
        Some((rss_before, pss_before)) => {
            // Let the server finish with the last responses before looking.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (rss_after, pss_after) = read_memory(&processes_after)?;
            let connections_open = open.iter().filter(|c| !c.sender.is_closed()).count();
            Some(ServerMemory {
                rss_before_kib: rss_before,
                rss_after_kib: rss_after,
                pss_before_kib: pss_before,
                pss_after_kib: pss_after,
                connections_open,
                connections_authenticated: if args.mode == BenchMode::Reuse {
                    connections_open
                } else {
                    0
                },
                pss_kib_per_connection: (connections_open > 0)
                    .then(|| (pss_after as f64 - pss_before as f64) / connections_open as f64),
            })
        }
        None => None,
    };
    drop(open);
    if let Some(p) = progress {
        p.abort();
        eprint!("\r\x1b[K");
    }

    let successes = shared.ok.load(Ordering::Relaxed);
    let server_cpu = match (args.server_pid.first(), ticks) {
        (Some(&pid), Some(clk_tck)) => {
            let us = |t: u64| t * 1_000_000 / clk_tck;
            let zero = CpuTicks {
                own: 0,
                children: 0,
            };
            let (mut own, mut children) = (0, 0);
            for (p, after) in &cpu_after {
                let before = cpu_before.get(p).unwrap_or(&zero);
                own += after.own.saturating_sub(before.own);
                children += after.children.saturating_sub(before.children);
            }
            let own_us = us(own);
            let children_us = us(children);
            Some(ServerCpu {
                pid,
                pids: processes_after.clone(),
                processes_changed: processes_before != processes_after,
                clk_tck,
                own_us,
                children_us,
                us_per_request: (successes > 0)
                    .then(|| (own_us + children_us) as f64 / successes as f64),
            })
        }
        _ => None,
    };
    if let Some(t) = &mut tokens {
        t.left_over = shared.pool.left();
    }
    let latency = (successes > 0).then(|| Latency {
        p50: tally.latency.value_at_quantile(0.5),
        p90: tally.latency.value_at_quantile(0.9),
        p99: tally.latency.value_at_quantile(0.99),
        max: tally.latency.max(),
        mean: tally.latency.mean(),
    });
    let report = Report {
        url: args.url.clone(),
        mode: args.mode,
        connections: args.connections,
        tls: target.tls,
        requests: successes + shared.failed.load(Ordering::Relaxed),
        successes,
        errors: ErrorKind::ALL
            .iter()
            .map(|k| (k.name(), tally.errors.get(k).map_or(0, |e| e.0)))
            .collect(),
        error_messages: tally
            .errors
            .iter()
            .map(|(k, (_, message))| (k.name(), message.clone()))
            .collect(),
        statuses: tally.statuses.clone(),
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_sec: successes as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us: latency,
        mutual: Mutual {
            policy: args.mutual.to_string(),
            verified: tally.verified,
            not_sent: tally.not_sent,
        },
        tokens,
        server_cpu,
        server_memory,
        stopped_early: shared
            .stopped_early
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| format!("cannot write the report: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", report.table());
    }
    Ok(if report.error_total() == 0 && successes > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Writes a progress line to standard error once a second.
async fn progress(shared: Arc<Shared>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let ok = shared.ok.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        eprint!(
            "\r\x1b[K{:>5.0} s  {ok} ok  {failed} errors  {} requests/s",
            started.elapsed().as_secs_f64(),
            ok - last
        );
        last = ok;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (kerb side) (x)) S 1 4242 4242 0 -1 4194560 1523 0 0 0 \
                    37 12 5 3 20 0 9 0 1234 5678 90";
        assert_eq!(
            parse_stat(line),
            Some(CpuTicks {
                own: 49,
                children: 8
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn only_loopback_addresses_are_loopback() {
        for ip in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            assert!(
                is_loopback(ip.parse().unwrap_or_else(|_| unreachable!())),
                "{ip}"
            );
        }
        for ip in ["10.0.0.1", "192.0.2.1", "::2", "2001:db8::1"] {
            assert!(
                !is_loopback(ip.parse().unwrap_or_else(|_| unreachable!())),
                "{ip}"
            );
        }
    }
}
