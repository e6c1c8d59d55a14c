//! `kerbside fetch`: a curl-like client.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use kerbside_client::{
    AuthSettings, Client, ClientConfig, ErrorKind, Event, TargetSource, TlsSettings,
};
use kerbside_proto::{MutualAuth, PlainHttpAuth};

/// Arguments of `kerbside fetch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Negotiate, like every scheme that sends credentials, is refused over plain \
                  http:// unless --allow-http-auth is given.\n\nExit status: 0 success, 1 other \
                  error, 7 cannot connect, 22 HTTP status >= 400 with --fail, 35 TLS failure, \
                  67 authentication failed or refused by policy."
)]
pub struct FetchArgs {
    /// The URL to fetch (https:// or http://).
    pub url: String,

    /// Answer `401 Negotiate` with a Kerberos token from your ticket cache (KRB5CCNAME).
    #[arg(long)]
    pub negotiate: bool,

    /// The request method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,

    /// Send this request body (POST unless -X says otherwise); `@FILE` reads a file,
    /// `@-` standard input. Given several times, the parts are joined with `&`.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Vec<String>,

    /// Add a request header, `Name: value`. May be repeated.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Write the body to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Include the response status line and headers in the output.
    #[arg(short = 'i', long)]
    pub include: bool,

    /// Show each leg on standard error: request line, status, the scheme, the
    /// Kerberos target name used. Tokens, passwords and cookies are redacted.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print no warnings (errors are still printed).
    #[arg(short = 's', long)]
    pub silent: bool,

    /// Exit with status 22 when the final HTTP status is 400 or above.
    #[arg(short = 'f', long)]
    pub fail: bool,

    /// Do not verify the server's TLS certificate (the connection is then open to a man
    /// in the middle).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Trust only the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Kerberos service name to ask a ticket for, instead of HTTP@<host of the URL>
    /// (`HTTP@host` or `HTTP/host@REALM`).
    #[arg(long, value_name = "NAME")]
    pub spn: Option<String>,

    /// Mutual authentication: `required` (the server must prove itself with a final
    /// token), `optional` (check the token if sent), `off`.
    #[arg(long, value_name = "POLICY", default_value = "optional")]
    pub mutual: MutualAuth,

    /// Allow credentials over plain http://: for the URL's host, or, with `=HOSTS`,
    /// for those comma-separated hosts only. Anyone on the network path can then
    /// steal or replay them.
    #[arg(
        long = "allow-http-auth",
        value_name = "HOSTS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    pub allow_http_auth: Option<String>,
}

/// Exit statuses, close to curl's where curl has one.
const EXIT_OTHER: u8 = 1;
const EXIT_CONNECT: u8 = 7;
const EXIT_HTTP_ERROR: u8 = 22;
const EXIT_TLS: u8 = 35;
const EXIT_AUTH: u8 = 67;

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kerbside fetch: {message}");
    ExitCode::from(code)
}

fn read_data(data: &[String], silent: bool) -> std::io::Result<Option<Bytes>> {
    if data.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for d in data {
        let bytes = match d.strip_prefix('@') {
            Some("-") => {
                if !silent {
                    eprintln!(
                        "kerbside fetch: warning: reading the body from standard input; it is \
                         kept in memory so it can be sent again during authentication"
                    );
                }
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
    Ok(Some(Bytes::from(parts.join(&b'&'))))
}

fn plain_http_policy(arg: &Option<String>, uri: &Uri) -> PlainHttpAuth {
    match arg.as_deref() {
        None => PlainHttpAuth::Refuse,
        Some("") => PlainHttpAuth::Hosts(uri.host().map(str::to_owned).into_iter().collect()),
        Some(list) => PlainHttpAuth::Hosts(
            list.split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect(),
        ),
    }
}

fn verbose(event: &Event) {
    let mut err = std::io::stderr().lock();
    let _ = match event {
        Event::Connecting { host, port, tls } => writeln!(
            err,
            "* Connecting to {host} port {port}{}",
            if *tls { " (TLS)" } else { " (plain HTTP)" }
        ),
        Event::Connected { peer } => writeln!(err, "* Connected to {peer}"),
        Event::Request { line, headers } => {
            let _ = writeln!(err, "> {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "> {n}: {v}");
            }
            writeln!(err, ">")
        }
        Event::Response { line, headers } => {
            let _ = writeln!(err, "< {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "< {n}: {v}");
            }
            writeln!(err, "<")
        }
        Event::Scheme {
            scheme,
            target,
            source,
        } => writeln!(
            err,
            "* Answering with {scheme}, Kerberos target {target} ({})",
            match source {
                TargetSource::UrlHost => "from the host of the URL",
                TargetSource::Explicit => "given with --spn",
            }
        ),
        Event::Authenticated { mutual, legs } => writeln!(
            err,
            "* Negotiate done after {legs} token(s); mutual authentication: {}",
            match mutual {
                kerbside_proto::scheme::negotiate::client::MutualOutcome::Verified =>
                    "server verified",
                kerbside_proto::scheme::negotiate::client::MutualOutcome::NotSent =>
                    "server sent no final token",
                kerbside_proto::scheme::negotiate::client::MutualOutcome::NotChecked =>
                    "not checked (--mutual off)",
            }
        ),
        _ => Ok(()),
    };
}

/// Runs `kerbside fetch`.
pub async fn run(args: FetchArgs) -> ExitCode {
    let uri: Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => return fail(EXIT_OTHER, format!("{:?} is not a URL: {e}", args.url)),
    };
    let body = match read_data(&args.data, args.silent) {
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
    let config = ClientConfig {
        tls: TlsSettings {
            ca_file: args.cacert.clone(),
            insecure: args.insecure,
        },
        auth: AuthSettings {
            negotiate: args.negotiate,
            mutual: args.mutual,
            spn: args.spn.clone(),
            plain_http: plain_http_policy(&args.allow_http_auth, &uri),
            ..AuthSettings::default()
        },
        max_challenge_body: None,
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_TLS, e),
    };
    let quiet = |_: &Event| {};
    let observer: &dyn kerbside_client::Observer = if args.verbose { &verbose } else { &quiet };
    let response = match client.send(request, observer).await {
        Ok(r) => r,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::Connect => EXIT_CONNECT,
                ErrorKind::Tls => EXIT_TLS,
                ErrorKind::Auth | ErrorKind::Policy => EXIT_AUTH,
                _ => EXIT_OTHER,
            };
            return fail(code, e);
        }
    };
    let status = response.status();
    if status == http::StatusCode::UNAUTHORIZED && !args.negotiate && !args.silent {
        let offers_negotiate = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| {
                v.as_bytes().len() >= 9 && v.as_bytes()[..9].eq_ignore_ascii_case(b"negotiate")
            });
        if offers_negotiate {
            eprintln!("kerbside fetch: the server asks for Kerberos (Negotiate): add --negotiate");
        }
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
    if args.fail && status.as_u16() >= 400 {
        return fail(EXIT_HTTP_ERROR, format!("the server answered {status}"));
    }
    if let Err(e) = out.write_all(&head) {
        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(e) = out.write_all(data) {
                        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
                    }
                }
            }
            Err(e) => return fail(EXIT_OTHER, format!("the response body was cut off: {e}")),
        }
    }
    if let Err(e) = out.flush() {
        return fail(EXIT_OTHER, format!("cannot write the output: {e}"));
    }
    ExitCode::SUCCESS
}
