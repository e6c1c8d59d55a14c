//! A CGI host (RFC 3875): [`CgiService`] runs one program for each request, such as
//! Mercurial's `hgweb.cgi` or `git http-backend`, and streams its answer back.
//!
//! Behind the gate's [`NegotiateLayer`](crate::NegotiateLayer) the program learns
//! who the client is from `REMOTE_USER` (a Kerberos principal turned into a user name by
//! a [`UserMap`]; a name from the gate's NTLM, Digest or Basic users file as the file
//! spells it) and `AUTH_TYPE` (the scheme the client used: `Negotiate`, `NTLM`,
//! `Digest` or `Basic`), which is what `hgweb`'s `allow-push` and `git http-backend`'s
//! `receive-pack` check.
//!
//! ```no_run
//! use std::time::Duration;
//! use kerbside_server::cgi::{CgiConfig, CgiService};
//! use kerbside_server::usermap::UserMap;
//!
//! let mut config = CgiConfig::new("/usr/lib/git-core/git-http-backend", "/git");
//! config.user_map = UserMap::StripRealm { realms: vec!["EXAMPLE.COM".into()] };
//! config.timeout = Duration::from_secs(600);
//! config.env.push(("GIT_PROJECT_ROOT".into(), "/srv/git".into()));
//! config.env.push(("GIT_HTTP_EXPORT_ALL".into(), "1".into()));
//! let service = CgiService::new(config)?;
//! # let _ = service; Ok::<(), kerbside_server::SetupError>(())
//! ```
//!
//! What the program gets:
//!
//! - a clean environment: `PATH=/usr/local/bin:/usr/bin:/bin`, `LANG=C.UTF-8`, then
//!   [`CgiConfig::env`], then the RFC 3875 meta-variables (which win over both);
//! - a `HTTP_*` variable for each request header, except `Authorization`,
//!   `Proxy-Authorization`, `Proxy` (httpoxy), `Expect`, hop-by-hop headers, `Content-Type` and
//!   `Content-Length` (given as `CONTENT_TYPE` and `CONTENT_LENGTH`), and headers
//!   whose names have anything but letters, digits and `-`: a client must not be able
//!   to send `X_Remote_User` and have it read as `HTTP_X_REMOTE_USER` (Apache drops
//!   them too);
//! - `PATH_INFO` percent-decoded (RFC 3875 §4.1.5) from the canonical path the gate's
//!   edge made ([`canonical_path`](crate::canonical_path)); `SCRIPT_NAME` is the mount and
//!   `REQUEST_URI` the canonical path with the query as sent. A path that is not canonical
//!   (`.` or `..` segments, `//`, `%2F`, an encoded NUL...) is refused with `400`;
//! - the request body on its standard input, at most [`CgiConfig::max_body`] bytes: a
//!   larger `Content-Length` is answered `413` before anything is read. CGI needs
//!   `CONTENT_LENGTH` up front, so a body sent without a length (HTTP/1.1 chunked, or
//!   HTTP/2 without `content-length`) is first written to an unnamed temporary file
//!   (in `TMPDIR`), once the request holds its slot (below), and cut off with `413`
//!   at the limit; all the spools in flight together stay within the
//!   [`CgiConfig::spool_budget`] (beyond it `507`). The program runs once the body is
//!   complete. Bodies with a length are streamed as they come;
//! - no command-line arguments (the RFC 3875 §4.4 "search string" arguments are not
//!   given: they are the door of old CGI argument-injection bugs);
//! - its own process group, so that when it is stopped its children go too.
//!
//! Its standard output must start with a header block (`Status:`, `Location:`,
//! `Content-Type:` and any other headers; lines end with LF or CRLF; a blank line
//! ends the block). A `Location` without `Status` answers `302`; local redirects are
//! not followed. Hop-by-hop headers in the block (`Connection`, `Transfer-Encoding`,
//! `Proxy-Authenticate`...) are dropped: the gate's connection to the client is its own. A block that is malformed, larger than [`MAX_CGI_HEAD`], or missing
//! answers `502`, as does a program that exits without one. What follows the block
//! is streamed to the client. Lines the program writes to standard error are logged
//! with `tracing::warn!`, with its name.
//!
//! At most [`CgiConfig::max_concurrent`] requests run (or spool their bodies) at once;
//! a request waits up to [`CgiConfig::queue_timeout`] for a slot, then gets `503` with
//! `Retry-After`.
//! [`CgiConfig::timeout`] bounds each request from its arrival to the end of the
//! response: a program that has sent no headers by then gets the client a `504`; one
//! still sending its body has the body cut. Either way it is killed, with its process
//! group, as it is when the client goes away.

use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::uri::Authority;
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

mod head;

use crate::body::{BoxError, GateBody};
use crate::hop_by_hop::is_hop_by_hop;
use crate::identity::Authenticated;
use crate::metrics::GateMetrics;
use crate::per_connection::ConnectionInfo;
use crate::spool::{next_data, spool, SpoolLimits, SpoolShare, Spooled};
pub use crate::spool::{SpoolBudget, DEFAULT_SPOOL_BUDGET};
use crate::usermap::UserMap;
use head::{parse_head, read_head, HeadError};

/// The largest CGI header block accepted; a larger one answers `502`.
pub const MAX_CGI_HEAD: usize = 64 * 1024;

/// Standard-error lines longer than this are cut before they are logged.
const MAX_STDERR_LINE: usize = 2048;

/// At most this many standard-error lines are logged for one request.
const MAX_STDERR_LINES: usize = 1000;

/// The `Retry-After` given with `503` when no slot came free, in seconds.
const RETRY_AFTER_SECONDS: &str = "10";

/// How long a program that closed its output is given to exit before it is killed,
/// when its exit status is wanted for a log line.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The response body read from the program's standard output, in chunks of this size.
const READ_CHUNK: usize = 32 * 1024;

/// How a [`CgiService`] runs its program.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CgiConfig {
    /// The program (it must be executable).
    pub program: PathBuf,
    /// The URL prefix the program is mounted at, e.g. `/hg`, or `""` for the whole
    /// site: it becomes `SCRIPT_NAME`, and the rest of the path `PATH_INFO`. Requests
    /// outside it get `404`. A trailing `/` is ignored.
    pub mount: String,
    /// Time for a whole request, from its arrival to the last byte of the response
    /// (default 300 s).
    pub timeout: Duration,
    /// Programs run at once, at most (default 16).
    pub max_concurrent: usize,
    /// How long a request waits for one of the `max_concurrent` slots before it is
    /// answered `503` (default 30 s).
    pub queue_timeout: Duration,
    /// The largest request body taken; see the [module docs](self). Default 1 GiB.
    pub max_body: u64,
    /// The disk budget shared by all spooled bodies in flight; `None` for no budget
    /// (the gate gives every CGI mount the same one).
    pub spool_budget: Option<SpoolBudget>,
    /// Where bodies over the limit and timeouts are counted.
    pub metrics: Option<GateMetrics>,
    /// Extra environment variables, e.g. `GIT_PROJECT_ROOT`, `GIT_HTTP_EXPORT_ALL`,
    /// `HGRCPATH`. The meta-variables of RFC 3875 win over these.
    pub env: Vec<(String, String)>,
    /// How the authenticated principal becomes `REMOTE_USER` (default
    /// [`UserMap::Full`]).
    pub user_map: UserMap,
    /// The program's working directory; `None` runs it in its own directory.
    pub working_dir: Option<PathBuf>,
    /// Delegated credentials: the program gets the user's as `KRB5CCNAME`
    /// ([`crate::delegation`]); `None` (the default) gives none.
    pub delegation: Option<Arc<crate::delegation::DelegationStore>>,
}

impl CgiConfig {
    /// A configuration with the defaults for everything but the program and where it
    /// is mounted.
    pub fn new(program: impl Into<PathBuf>, mount: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            mount: mount.into(),
            timeout: Duration::from_secs(300),
            max_concurrent: 16,
            queue_timeout: Duration::from_secs(30),
            max_body: crate::proxy::DEFAULT_MAX_BODY,
            spool_budget: None,
            metrics: None,
            env: Vec::new(),
            user_map: UserMap::Full,
            working_dir: None,
            delegation: None,
        }
    }
}

/// A tower [`Service`] that answers each request by running a CGI program. See the
/// [module docs](self) for what the program sees and what the client gets.
#[derive(Clone)]
pub struct CgiService {
    shared: Arc<Shared>,
}

struct Shared {
    config: CgiConfig,
    /// The program's file name, for log lines.
    name: Arc<str>,
    working_dir: PathBuf,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for CgiService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CgiService")
            .field("program", &self.shared.config.program)
            .field("mount", &self.shared.config.mount)
            .field("free_slots", &self.shared.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl CgiService {
    /// Checks the configuration (the program exists and is executable, the mount is
    /// a path) and makes the service. Errors are sentences for the operator.
    pub fn new(mut config: CgiConfig) -> Result<Self, crate::SetupError> {
        let program = &config.program;
        let metadata = std::fs::metadata(program)
            .map_err(|e| format!("CGI program {}: {e}", program.display()))?;
        if !metadata.is_file() {
            return Err(format!("CGI program {} is not a file", program.display()).into());
        }
        if metadata.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "CGI program {} is not executable (chmod +x it)",
                program.display()
            )
            .into());
        }
        let mount = config.mount.trim_end_matches('/').to_owned();
        if !mount.is_empty() && !mount.starts_with('/') {
            return Err(format!(
                "CGI mount {:?} must start with `/` (or be empty for the whole site)",
                config.mount
            )
            .into());
        }
        config.mount = mount;
        if config.max_concurrent == 0 {
            return Err("CGI max_concurrent must be at least 1".into());
        }
        let working_dir = match &config.working_dir {
            Some(dir) => dir.clone(),
            None => match program.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            },
        };
        if !working_dir.is_dir() {
            return Err(format!(
                "CGI working directory {} is not a directory",
                working_dir.display()
            )
            .into());
        }
        for (name, value) in &config.env {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                return Err(format!("CGI environment variable {name:?} is not valid").into());
            }
        }
        let name: Arc<str> = program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into();
        let slots = Arc::new(Semaphore::new(config.max_concurrent));
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                name,
                working_dir,
                slots,
            }),
        })
    }
}

impl<B> Service<Request<B>> for CgiService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    /// Always ready: requests wait for a slot (bounded) inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

fn answer(status: StatusCode) -> Response<GateBody> {
    let mut response = Response::new(GateBody::default());
    *response.status_mut() = status;
    response
}

/// What goes to the program's standard input.
enum Input<B> {
    Nothing,
    Streamed(Pin<Box<B>>),
    Spooled(tokio::fs::File, SpoolShare),
}

impl Shared {
    async fn handle<B>(&self, request: Request<B>) -> Response<GateBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let deadline = Instant::now() + self.config.timeout;
        let program = &self.name;
        let user = match request.extensions().get::<Authenticated>() {
            Some(
                who @ Authenticated {
                    principal,
                    scheme,
                    kerberos,
                    ..
                },
            ) => {
                // The user map is for Kerberos principals; a name from the gate's users
                // files is already a user name.
                let map = if *kerberos {
                    &self.config.user_map
                } else {
                    &UserMap::Full
                };
                match map.map_authenticated(who) {
                    Some(user) => Some((user, scheme.name(), who.groups.join(","))),
                    None => {
                        tracing::warn!(%principal, program = %program, "the user map refuses this principal");
                        return answer(StatusCode::FORBIDDEN);
                    }
                }
            }
            None => None,
        };
        // The user's delegated ticket cache, for a Kerberos login, if the gate keeps them.
        let delegated_ccache = match (
            &self.config.delegation,
            request.extensions().get::<Authenticated>(),
        ) {
            (Some(store), Some(who)) if who.kerberos => store.current(&who.principal),
            _ => None,
        };
        let path_info = match path_info(&self.config.mount, request.uri().path()) {
            Ok(path_info) => path_info,
            Err(status) => return answer(status),
        };

        let (parts, body) = request.into_parts();
        let body = Box::pin(body);
        let length = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        if let Some(length) = length.filter(|&l| l > self.config.max_body) {
            tracing::warn!(
                program = %program,
                length,
                limit = self.config.max_body,
                "request body larger than max-body; answering 413 without reading it"
            );
            self.count(GateMetrics::body_too_large);
            return answer(StatusCode::PAYLOAD_TOO_LARGE);
        }

        let wait = self
            .config
            .queue_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let permit = match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    program = %program,
                    max_concurrent = self.config.max_concurrent,
                    "no free CGI slot; answering 503"
                );
                let mut response = answer(StatusCode::SERVICE_UNAVAILABLE);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
                return response;
            }
        };

        // The body is read only by a request that holds a slot, so that waiting
        // requests cost no disk.
        let (input, content_length) = match length {
            Some(0) => (Input::Nothing, None),
            Some(length) => (Input::Streamed(body), Some(length)),
            None => match tokio::time::timeout_at(deadline, self.spool(body)).await {
                Ok(Ok(Spooled { length: 0, .. })) => (Input::Nothing, None),
                Ok(Ok(Spooled {
                    file,
                    length,
                    share,
                })) => (Input::Spooled(file, share), Some(length)),
                Ok(Err(status)) => return answer(status),
                Err(_) => {
                    tracing::info!(program = %program, "request body not received in time");
                    return answer(StatusCode::REQUEST_TIMEOUT);
                }
            },
        };

        let mut env = self.environment(&parts, path_info, user, content_length);
        if let Some(ccache) = delegated_ccache {
            // After the configured variables, so it wins over a KRB5CCNAME of `env`.
            let mut value = OsString::from("FILE:");
            value.push(ccache);
            env.push(("KRB5CCNAME".into(), value));
        }
        let mut command = Command::new(&self.config.program);
        command
            .env_clear()
            .envs(env)
            .current_dir(&self.working_dir)
            .stdin(match input {
                Input::Nothing => Stdio::null(),
                _ => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(program = %self.config.program.display(), "cannot run the CGI program: {e}");
                return answer(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            tracing::error!(program = %program, "the CGI program's output pipes are missing");
            return answer(StatusCode::INTERNAL_SERVER_ERROR);
        };
        log_stderr(program.clone(), stderr);
        let feeder = child
            .stdin
            .take()
            .map(|stdin| tokio::spawn(feed(input, stdin, program.clone())));
        let mut running = Running {
            child,
            feeder,
            program: program.clone(),
            _permit: permit,
        };

        let head = match tokio::time::timeout_at(deadline, read_head(&mut stdout)).await {
            Ok(Ok(head)) => head,
            Ok(Err(HeadError::Read(e))) => {
                tracing::warn!(program = %program, "cannot read the CGI program's output: {e}");
                return answer(StatusCode::BAD_GATEWAY);
            }
            Ok(Err(HeadError::TooLarge)) => {
                tracing::warn!(program = %program, "CGI header block larger than {MAX_CGI_HEAD} bytes; answering 502");
                return answer(StatusCode::BAD_GATEWAY);
            }
            Ok(Err(HeadError::Ended)) => {
                match running.exit_status(deadline).await {
                    Some(status) if !status.success() => {
                        tracing::warn!(program = %program, %status, "CGI program failed before sending headers; answering 502");
                    }
                    Some(status) => {
                        tracing::warn!(program = %program, %status, "CGI program sent no headers; answering 502");
                    }
                    None => {
                        tracing::warn!(program = %program, "CGI program closed its output without sending headers; stopped it, answering 502");
                    }
                }
                return answer(StatusCode::BAD_GATEWAY);
            }
            Err(_) => {
                tracing::warn!(
                    program = %program,
                    timeout = ?self.config.timeout,
                    "CGI program sent no headers in time; stopped it, answering 504"
                );
                self.count(GateMetrics::upstream_timeout);
                return answer(StatusCode::GATEWAY_TIMEOUT);
            }
        };
        let (status, headers) = match parse_head(&head.block) {
            Ok(parsed) => parsed,
            Err(problem) => {
                tracing::warn!(program = %program, "bad CGI header block ({problem}); answering 502");
                return answer(StatusCode::BAD_GATEWAY);
            }
        };
        let body = CgiBody {
            leftover: (!head.rest.is_empty()).then(|| Bytes::from(head.rest)),
            stdout: Some(stdout),
            buffer: vec![0; READ_CHUNK],
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            deadline_at: deadline,
            timeout: self.config.timeout,
            running: Some(running),
        };
        let mut response = Response::new(body.boxed());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    /// Spools a body of unknown length within this mount's limits.
    async fn spool<B>(&self, body: Pin<Box<B>>) -> Result<Spooled, StatusCode>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let limits = SpoolLimits {
            max_body: self.config.max_body,
            budget: self.config.spool_budget.as_ref(),
            metrics: self.config.metrics.as_ref(),
        };
        spool(body, &limits, &self.name).await
    }

    /// Counts an event in the gate's metrics, if there are any.
    fn count(&self, event: fn(&GateMetrics)) {
        if let Some(m) = &self.config.metrics {
            event(m);
        }
    }

    /// The program's environment: defaults, the configured variables, then the
    /// meta-variables of RFC 3875.
    fn environment(
        &self,
        parts: &http::request::Parts,
        path_info: Vec<u8>,
        user: Option<(String, &'static str, String)>,
        content_length: Option<u64>,
    ) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |name: &str, value: &[u8]| {
            env.push((name.into(), OsStr::from_bytes(value).to_owned()));
        };
        set("PATH", b"/usr/local/bin:/usr/bin:/bin");
        set("LANG", b"C.UTF-8");
        for (name, value) in &self.config.env {
            set(name, value.as_bytes());
        }

        let info = parts.extensions.get::<ConnectionInfo>();
        let tls = info.is_some_and(|i| i.tls);
        set("GATEWAY_INTERFACE", b"CGI/1.1");
        set(
            "SERVER_SOFTWARE",
            concat!("kerbside/", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        let authority = parts.uri.authority().cloned().or_else(|| {
            parts
                .headers
                .get(HOST)
                .and_then(|h| Authority::try_from(h.as_bytes()).ok())
        });
        let default_port = if tls { 443 } else { 80 };
        let (server_name, server_port) = match &authority {
            Some(a) => (a.host(), a.port_u16().unwrap_or(default_port)),
            None => ("localhost", default_port),
        };
        set("SERVER_NAME", server_name.as_bytes());
        set("SERVER_PORT", server_port.to_string().as_bytes());
        set("SERVER_PROTOCOL", protocol(parts.version).as_bytes());
        set("REQUEST_METHOD", parts.method.as_str().as_bytes());
        set("REQUEST_SCHEME", if tls { b"https" } else { b"http" });
        set("SCRIPT_NAME", self.config.mount.as_bytes());
        if !path_info.is_empty() {
            set("PATH_INFO", &path_info);
        }
        set("QUERY_STRING", parts.uri.query().unwrap_or("").as_bytes());
        set(
            "REQUEST_URI",
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .as_bytes(),
        );
        if let Some(info) = info {
            set("REMOTE_ADDR", info.remote.ip().to_string().as_bytes());
            set("REMOTE_PORT", info.remote.port().to_string().as_bytes());
        }
        if tls {
            set("HTTPS", b"on");
        }
        if let Some((user, scheme, groups)) = user {
            set("AUTH_TYPE", scheme.as_bytes());
            set("REMOTE_USER", user.as_bytes());
            set("REMOTE_USER_GROUPS", groups.as_bytes());
        }
        if let Some(length) = content_length {
            set("CONTENT_LENGTH", length.to_string().as_bytes());
        }
        if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
            set("CONTENT_TYPE", content_type.as_bytes());
        }
        for name in parts.headers.keys() {
            if let Some(variable) = header_variable(name) {
                let mut value = Vec::new();
                for (i, v) in parts.headers.get_all(name).iter().enumerate() {
                    if i > 0 {
                        value.extend_from_slice(b", ");
                    }
                    value.extend_from_slice(v.as_bytes());
                }
                set(&variable, &value);
            }
        }
        env
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Request headers never given to the program as `HTTP_*`, besides the hop-by-hop ones
/// ([`is_hop_by_hop`]).
const HIDDEN_HEADERS: &[&str] = &[
    "authorization",
    // httpoxy: HTTP_PROXY is read as a proxy setting by many libraries.
    "proxy",
    "content-type",
    "content-length",
    // The gate's server answers `Expect: 100-continue` itself; a program that
    // answered too (hgweb does) would write `HTTP/1.1 100 Continue` into its headers.
    "expect",
];

/// `HTTP_X_FOO` for `x-foo`, or `None` for headers the program must not see.
fn header_variable(name: &HeaderName) -> Option<String> {
    let name = name.as_str();
    if HIDDEN_HEADERS.contains(&name)
        || is_hop_by_hop(name)
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let mut variable = String::with_capacity(5 + name.len());
    variable.push_str("HTTP_");
    variable.extend(name.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    Some(variable)
}

/// `PATH_INFO` for a request path: the part after the mount, percent-decoded.
///
/// The gate made the path canonical at its edge (no `.` or `..` segment, no `%2F`, no
/// control byte), so decoding it once cannot make a separator or a string end; a path that
/// is not canonical is refused with `400` rather than read a second way.
pub(crate) fn path_info(mount: &str, path: &str) -> Result<Vec<u8>, StatusCode> {
    match kerbside_proto::request_path::CanonicalPath::parse(path) {
        Ok(canonical) if canonical.as_str() == path => {}
        _ => return Err(StatusCode::BAD_REQUEST),
    }
    let rest = if mount.is_empty() {
        path
    } else if let Some(rest) = path.strip_prefix(mount) {
        if !rest.is_empty() && !rest.starts_with('/') {
            return Err(StatusCode::NOT_FOUND);
        }
        rest
    } else {
        return Err(StatusCode::NOT_FOUND);
    };
    Ok(percent_encoding::percent_decode(rest.as_bytes()).collect())
}

/// Copies the request body to the program's standard input, then closes it.
async fn feed<B>(input: Input<B>, mut stdin: ChildStdin, program: Arc<str>)
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match input {
        Input::Nothing => {}
        Input::Streamed(mut body) => {
            while let Some(frame) = next_data(&mut body).await {
                match frame {
                    Ok(Some(data)) => {
                        if let Err(e) = stdin.write_all(&data).await {
                            tracing::debug!(program = %program, "CGI program stopped reading its input: {e}");
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::info!(program = %program, "request body broken off: {e}");
                        return;
                    }
                }
            }
        }
        Input::Spooled(mut file, _share) => {
            if let Err(e) = tokio::io::copy(&mut file, &mut stdin).await {
                tracing::debug!(program = %program, "CGI program stopped reading its input: {e}");
                return;
            }
        }
    }
    let _ = stdin.shutdown().await;
}

/// Logs the program's standard error, a line at a time.
fn log_stderr(program: Arc<str>, mut stderr: ChildStderr) {
    tokio::spawn(async move {
        let mut chunk = vec![0; 4096];
        let mut line = Vec::new();
        let mut cut = false;
        let mut logged = 0;
        let mut emit = |line: &mut Vec<u8>, cut: &mut bool| {
            if logged < MAX_STDERR_LINES {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end_matches('\r');
                let more = if *cut { " [cut]" } else { "" };
                tracing::warn!(program = %program, "{text}{more}");
            } else if logged == MAX_STDERR_LINES {
                tracing::warn!(program = %program, "further standard error not logged");
            }
            logged += 1;
            line.clear();
            *cut = false;
        };
        loop {
            let n = match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for piece in chunk[..n].split_inclusive(|&b| b == b'\n') {
                let (text, ends) = match piece.strip_suffix(b"\n") {
                    Some(text) => (text, true),
                    None => (piece, false),
                };
                let room = MAX_STDERR_LINE.saturating_sub(line.len());
                if text.len() > room {
                    cut = true;
                }
                line.extend_from_slice(&text[..text.len().min(room)]);
                if ends {
                    emit(&mut line, &mut cut);
                }
            }
        }
        if !line.is_empty() {
            emit(&mut line, &mut cut);
        }
    });
}

/// A running program, its input feeder and its slot. Dropping it before the program
/// was reaped kills the program's process group.
struct Running {
    child: Child,
    feeder: Option<JoinHandle<()>>,
    program: Arc<str>,
    _permit: OwnedSemaphorePermit,
}

impl Running {
    /// The exit status, if the program exits within [`EXIT_GRACE`] (and before
    /// `deadline`).
    async fn exit_status(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let limit = deadline.min(Instant::now() + EXIT_GRACE);
        match tokio::time::timeout_at(limit, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(e)) => {
                tracing::warn!(program = %self.program, "cannot wait for the CGI program: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// After the whole response was sent: reaps the program in the background and
    /// logs a failure.
    fn finish(mut self, deadline: Instant) {
        tokio::spawn(async move {
            match self.exit_status(deadline).await {
                Some(status) if !status.success() => {
                    tracing::warn!(program = %self.program, %status, "CGI program failed after sending its response");
                }
                Some(_) => {}
                None => {
                    tracing::warn!(program = %self.program, "CGI program closed its output but did not exit; stopped it");
                }
            }
        });
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(feeder) = &self.feeder {
            feeder.abort();
        }
        // Until the program is reaped its pid, which is also its process group's id,
        // cannot be reused: killing the group is safe. (kill_on_drop then kills and
        // reaps the program itself.)
        if let Some(pid) = self.child.id() {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .filter(|&pid| pid > 1)
                .and_then(rustix::process::Pid::from_raw)
            {
                if let Err(e) =
                    rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
                {
                    tracing::debug!(program = %self.program, "cannot kill the CGI process group: {e}");
                }
            }
        }
    }
}

/// The response body: the program's output after its header block, until the
/// program closes it or the request's time is up.
struct CgiBody {
    leftover: Option<Bytes>,
    stdout: Option<ChildStdout>,
    buffer: Vec<u8>,
    deadline: Pin<Box<Sleep>>,
    deadline_at: Instant,
    timeout: Duration,
    running: Option<Running>,
}

#[derive(Debug)]
struct CgiTimedOut(Duration);

impl fmt::Display for CgiTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CGI response not finished within {:?}", self.0)
    }
}

impl std::error::Error for CgiTimedOut {}

impl Body for CgiBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(data) = this.leftover.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(stdout) = this.stdout.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.stdout = None;
            if let Some(running) = this.running.take() {
                tracing::warn!(
                    program = %running.program,
                    timeout = ?this.timeout,
                    "CGI response not finished in time; stopped the program, cut the response"
                );
            }
            return Poll::Ready(Some(Err(Box::new(CgiTimedOut(this.timeout)))));
        }
        let mut read = ReadBuf::new(&mut this.buffer);
        match Pin::new(stdout).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                this.stdout = None;
                if let Some(running) = this.running.take() {
                    running.finish(this.deadline_at);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(read.filled())))))
            }
            Poll::Ready(Err(e)) => {
                this.stdout = None;
                if let Some(running) = this.running.take() {
                    tracing::warn!(program = %running.program, "cannot read the CGI program's output: {e}");
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.leftover.is_none() && self.stdout.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::head::find_blank_line;
    use super::*;
    use http::header::LOCATION;

    #[test]
    fn path_info_is_decoded_under_the_mount() {
        assert_eq!(path_info("/hg", "/hg").unwrap(), b"");
        assert_eq!(path_info("/hg", "/hg/").unwrap(), b"/");
        assert_eq!(path_info("/hg", "/hg/a%20b/c%3Fd").unwrap(), b"/a b/c?d");
        assert_eq!(path_info("", "/x/%C3%A9").unwrap(), "/x/é".as_bytes());
        assert_eq!(path_info("/hg", "/hgx"), Err(StatusCode::NOT_FOUND));
        assert_eq!(path_info("/hg", "/git/x"), Err(StatusCode::NOT_FOUND));
        assert_eq!(path_info("/hg", "/hg/..a/b.").unwrap(), b"/..a/b.");
    }

    #[test]
    fn path_info_refuses_a_path_that_is_not_canonical() {
        for path in [
            "/hg/%zz",
            "/hg/%4",
            "/hg/a%00b",
            "/hg/../etc",
            "/hg/a/%2E%2E/b",
            "/hg/./b",
            "/hg/a%2Fb",
            "/hg//b",
            "/hg/%61",
            "/hg/%c3%a9",
        ] {
            assert_eq!(
                path_info("/hg", path),
                Err(StatusCode::BAD_REQUEST),
                "{path}"
            );
        }
    }

    #[test]
    fn header_variables() {
        let var = |n: &str| header_variable(&HeaderName::from_bytes(n.as_bytes()).unwrap());
        assert_eq!(var("x-foo").as_deref(), Some("HTTP_X_FOO"));
        assert_eq!(var("Git-Protocol").as_deref(), Some("HTTP_GIT_PROTOCOL"));
        assert_eq!(var("x_remote_user"), None);
        assert_eq!(var("x.y"), None);
        assert_eq!(var("authorization"), None);
        assert_eq!(var("proxy"), None);
        assert_eq!(var("content-length"), None);
        for hop in [
            "connection",
            "te",
            "upgrade",
            "proxy-authorization",
            "keep-alive",
        ] {
            assert_eq!(var(hop), None, "{hop}");
        }
    }

    #[test]
    fn blank_line_is_found_with_any_line_ends() {
        assert_eq!(find_blank_line(b"A: b\n\nbody", 0), Some((5, 6)));
        assert_eq!(find_blank_line(b"A: b\r\n\r\nbody", 0), Some((6, 8)));
        assert_eq!(find_blank_line(b"A: b\r\n\nbody", 0), Some((6, 7)));
        assert_eq!(find_blank_line(b"A: b\n\r\nbody", 0), Some((5, 7)));
        assert_eq!(find_blank_line(b"\nbody", 0), Some((0, 1)));
        assert_eq!(find_blank_line(b"\r\nbody", 0), Some((0, 2)));
        assert_eq!(find_blank_line(b"A: b\r\n", 0), None);
        assert_eq!(find_blank_line(b"A: b\r\nB: c\r", 0), None);
    }

    #[tokio::test]
    async fn head_is_read_across_reads() {
        let (mut writer, mut reader) = tokio::io::duplex(16);
        tokio::spawn(async move {
            for piece in [&b"Content-Type: text/plain\r"[..], b"\n", b"\r", b"\nhello"] {
                writer.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let head = read_head(&mut reader).await.ok().unwrap();
        assert_eq!(head.block, b"Content-Type: text/plain\r\n");
        let mut rest = head.rest;
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"hello");
    }

    #[test]
    fn heads() {
        let (status, headers) = parse_head(
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: 1\r\nX-A: 2\r\n",
        )
        .unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers.get_all("x-a").iter().count(), 2);
        let (status, headers) = parse_head(b"Location: http://example.test/\n").unwrap();
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(headers[LOCATION], "http://example.test/");
        let (status, headers) =
            parse_head(b"content-type: text/html\nConnection: close\nTransfer-Encoding: chunked\n")
                .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.len(), 1);
        // Proxy authentication is between the client and a proxy, not the program's.
        let (_, headers) = parse_head(
            b"Content-Type: a/b\nProxy-Authenticate: Basic\nProxy-Authorization: x\nKeep-Alive: 5\n",
        )
        .unwrap();
        assert_eq!(headers.len(), 1);
        assert!(parse_head(b"").is_err());
        assert!(parse_head(b"X-Only: 1\n").is_err());
        assert!(parse_head(b"garbage\n").is_err());
        assert!(parse_head(b"Bad Name: x\nContent-Type: a/b\n").is_err());
        assert!(parse_head(b"Status: 20\n").is_err());
        assert!(parse_head(b"Status: 101 Switching\n").is_err());
        assert!(parse_head(b"Status: 2000\n").is_err());
        assert!(parse_head(b"Status: ok\n").is_err());
        assert!(parse_head(b"Content-Type: a\x01b\n").is_err());
        assert_eq!(
            parse_head(b"Status: 204\n").unwrap().0,
            StatusCode::NO_CONTENT
        );
    }
}
