//! `kerbside fetch`: a curl-like client. Flags are parsed here and resolved into the
//! client library's [`ClientConfig`].

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use kerbside_client::{Client, ErrorKind, Event, RequestBody};

use super::client_args::{ClientArgs, REPLAY_LIMIT};

/// Arguments of `kerbside fetch`.
#[derive(Debug, Args)]
#[command(after_help = "\
Authentication: with --negotiate the client answers `401 Negotiate` with a Kerberos token \
from your ticket cache (KRB5CCNAME), a client keytab (--keytab) or a password (-u), on the \
same connection as the 401. --ntlm (NTLMv2), --digest and --basic answer with the user and \
password of -u, --netrc or the keyring; --anyauth picks the strongest scheme the server \
offers that you hold credentials for, and never falls back to a weaker one after a refusal \
unless --allow-downgrade. Every scheme that sends credentials is refused over plain http:// \
unless --allow-http-auth names the host.

Exit status: 0 success, 1 other error, 7 cannot connect, 22 HTTP status >= 400 with --fail, \
28 timed out (--connect-timeout, -m), 35 TLS failure, 67 authentication failed or refused by \
policy.")]
pub struct FetchArgs {
    /// The URL to fetch (https:// or http://).
    pub url: String,

    #[command(flatten)]
    pub client: ClientArgs,

    /// The request method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,

    /// Send this request body (POST unless -X says otherwise); `@FILE` reads a file,
    /// `@-` standard input. Given several times, the parts are joined with `&`.
    /// Bodies over 1 MiB are streamed once, after the server's `100 Continue`.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Vec<String>,

    /// Add a request header, `Name: value`. May be repeated.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Write the body to FILE instead of standard output (with a progress bar on a
    /// terminal).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Include the response status line and headers in the output.
    #[arg(short = 'i', long)]
    pub include: bool,

    /// Show each leg on standard error: connection, request line, status, the scheme
    /// and why, the Kerberos target name and why. Tokens, passwords and cookies are
    /// redacted.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print no warnings or progress (errors are still printed).
    #[arg(short = 's', long)]
    pub silent: bool,

    /// Exit with status 22 when the final HTTP status is 400 or above.
    #[arg(short = 'f', long)]
    pub fail: bool,
}

/// Exit statuses, close to curl's where curl has one.
const EXIT_OTHER: u8 = 1;
const EXIT_CONNECT: u8 = 7;
const EXIT_HTTP_ERROR: u8 = 22;
const EXIT_TIMEOUT: u8 = 28;
const EXIT_TLS: u8 = 35;
const EXIT_AUTH: u8 = 67;

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kerbside fetch: {message}");
    ExitCode::from(code)
}

/// Standard input as a body: in memory up to the replay limit; beyond it, what was
/// read so far followed by the rest of the stream, sent once.
async fn read_stdin(silent: bool) -> std::io::Result<RequestBody> {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut head = Vec::with_capacity(64 * 1024);
    let mut limited = (&mut stdin).take(REPLAY_LIMIT as u64 + 1);
    limited.read_to_end(&mut head).await?;
    if head.len() <= REPLAY_LIMIT {
        return Ok(RequestBody::from(head));
    }
    if !silent {
        eprintln!(
            "kerbside fetch: warning: the body from standard input is larger than \
             {REPLAY_LIMIT} bytes, so it is streamed and can be sent only once; it waits for \
             the server's 100 Continue, but if the server asks for authentication after \
             reading it, the request fails (--negotiate-preemptive avoids that)"
        );
    }
    let first =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) },
        );
    let rest = tokio_util::io::ReaderStream::new(stdin);
    let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(
        futures_util::StreamExt::chain(first, rest),
        |r| r.map(hyper::body::Frame::data).map_err(Into::into),
    ));
    Ok(RequestBody::stream(body.boxed_unsync(), None))
}

/// Reads `-d` arguments into a body: in memory up to the replay limit, streamed
/// beyond it.
async fn read_data(data: &[String], silent: bool) -> std::io::Result<Option<RequestBody>> {
    if data.is_empty() {
        return Ok(None);
    }
    if let [single] = data {
        if single == "@-" {
            return read_stdin(silent).await.map(Some);
        }
        if let Some(path) = single.strip_prefix('@').filter(|p| *p != "-") {
            let meta = std::fs::metadata(path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
            if meta.len() > REPLAY_LIMIT as u64 {
                let file = tokio::fs::File::open(path).await?;
                let stream = tokio_util::io::ReaderStream::new(file);
                let body =
                    http_body_util::StreamBody::new(futures_util::StreamExt::map(stream, |r| {
                        r.map(hyper::body::Frame::data).map_err(Into::into)
                    }));
                return Ok(Some(RequestBody::stream(
                    body.boxed_unsync(),
                    Some(meta.len()),
                )));
            }
        }
    }
    let mut parts = Vec::new();
    for d in data {
        let bytes = match d.strip_prefix('@') {
            Some("-") => {
                // Joined with other parts, standard input is read whole.
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                buf
            }
            Some(path) => std::fs::read(path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?,
            None => d.as_bytes().to_vec(),
        };
        parts.push(bytes);
    }
    Ok(Some(RequestBody::from(parts.join(&b'&'))))
}

/// Runs `kerbside fetch`.
pub async fn run(args: FetchArgs) -> ExitCode {
    let uri: Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => return fail(EXIT_OTHER, format!("{:?} is not a URL: {e}", args.url)),
    };
    let body = match read_data(&args.data, args.silent).await {
        Ok(b) => b,
        Err(e) => return fail(EXIT_OTHER, e),
    };
    let method = match (&args.method, &body) {
        (Some(m), _) => match Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => return fail(EXIT_OTHER, format!("{m:?} is not an HTTP method")),
        },
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut builder = Request::builder().method(method).uri(uri.clone());
    if let Some(headers) = builder.headers_mut() {
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("kerbside/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        if body.is_some() {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        for h in &args.headers {
            let Some((name, value)) = h.split_once(':') else {
                return fail(
                    EXIT_OTHER,
                    format!("header {h:?} is not of the form 'Name: value'"),
                );
            };
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) else {
                return fail(EXIT_OTHER, format!("header {h:?} is not a valid header"));
            };
            headers.insert(name, value);
        }
    }
    let request = match builder.body(body.unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_OTHER, format!("cannot build the request: {e}")),
    };
    // -m bounds the whole transfer: the client library's deadline covers the
    // request up to the response head, this one the body too.
    let deadline = args
        .client
        .max_time
        .filter(|d| !d.is_zero())
        .map(|d| tokio::time::Instant::now() + d);
    let config = match args.client.config(&uri) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_OTHER, e),
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_TLS, e),
    };
    let quiet = |_: &Event| {};
    let observer: &dyn kerbside_client::Observer = if args.verbose {
        &super::client_args::verbose
    } else {
        &quiet
    };
    let response = match client.send(request, observer).await {
        Ok(r) => r,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::Connect => EXIT_CONNECT,
                ErrorKind::Tls => EXIT_TLS,
                ErrorKind::Auth | ErrorKind::Policy => EXIT_AUTH,
                ErrorKind::Timeout => EXIT_TIMEOUT,
                _ => EXIT_OTHER,
            };
            return fail(code, e);
        }
    };
    let status = response.status();
    if status == http::StatusCode::UNAUTHORIZED && args.client.schemes().is_empty() && !args.silent
    {
        let offers_negotiate = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| {
                v.as_bytes()
                    .get(..9)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"negotiate"))
            });
        if offers_negotiate {
            eprintln!("kerbside fetch: the server asks for Kerberos (Negotiate): add --negotiate");
        }
    }
    if args.fail && status.as_u16() >= 400 {
        return fail(EXIT_HTTP_ERROR, format!("the server answered {status}"));
    }
    let mut head = Vec::new();
    if args.include {
        let _ = writeln!(head, "{:?} {}\r", response.version(), status);
        for (n, v) in response.headers() {
            let _ = head.write_all(n.as_str().as_bytes());
            let _ = head.write_all(b": ");
            let _ = head.write_all(v.as_bytes());
            let _ = head.write_all(b"\r\n");
        }
        let _ = head.write_all(b"\r\n");
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => return fail(EXIT_OTHER, format!("cannot write {}: {e}", path.display())),
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let progress = (args.output.is_some() && !args.silent && std::io::stderr().is_terminal())
        .then(|| progress_bar(response.headers()));
    if let Err(e) = out.write_all(&head) {
        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
    }
    let mut body = response.into_body();
    loop {
        let frame = match deadline {
            None => body.frame().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => {
                    let _ = out.flush();
                    return fail(
                        EXIT_TIMEOUT,
                        format!(
                            "the transfer timed out after {} seconds (-m/--max-time): the \
                             server stopped sending the body",
                            args.client.max_time.map_or(0.0, |d| d.as_secs_f64())
                        ),
                    );
                }
            },
        };
        let Some(frame) = frame else { break };
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(e) = out.write_all(data) {
                        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
                    }
                    if let Some(p) = &progress {
                        p.inc(data.len() as u64);
                    }
                }
            }
            Err(e) => return fail(EXIT_OTHER, format!("the response body was cut off: {e}")),
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    if let Err(e) = out.flush() {
        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
    }
    ExitCode::SUCCESS
}

fn progress_bar(headers: &http::HeaderMap) -> indicatif::ProgressBar {
    let len = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}
