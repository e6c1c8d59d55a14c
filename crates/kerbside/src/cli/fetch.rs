//! `kerbside fetch`: a curl-like client. Flags are parsed here and resolved into the
//! client library's [`ClientConfig`].

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use kerbside_client::{
    AuthSettings, Client, ClientConfig, ClientCredentials, Delegation, ErrorKind, Event,
    Preemptive, ProxySettings, RequestBody, TlsSettings,
};
use kerbside_proto::scheme::negotiate::client::MutualOutcome;
use kerbside_proto::{MutualAuth, PlainHttpAuth, SchemeKind, SchemePolicy, TargetNameSettings};

/// Arguments of `kerbside fetch`.
#[derive(Debug, Args)]
#[command(after_help = "\
Authentication: with --negotiate the client answers `401 Negotiate` with a Kerberos token \
from your ticket cache (KRB5CCNAME), a client keytab (--keytab) or a password (-u), on the \
same connection as the 401. Negotiate, like every scheme that sends credentials, is refused \
over plain http:// unless --allow-http-auth names the host. NTLM, Digest and Basic are \
recognised but not implemented yet: a server that offers only those is refused with a \
message, never answered in clear.

Exit status: 0 success, 1 other error, 7 cannot connect, 22 HTTP status >= 400 with --fail, \
35 TLS failure, 67 authentication failed or refused by policy.")]
pub struct FetchArgs {
    /// The URL to fetch (https:// or http://).
    pub url: String,

    /// Answer `401 Negotiate` (Kerberos through SPNEGO).
    #[arg(long, help_heading = "Authentication")]
    pub negotiate: bool,

    /// Answer NTLM (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub ntlm: bool,

    /// Answer Digest (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub digest: bool,

    /// Answer Basic (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub basic: bool,

    /// Answer the strongest scheme the server offers (Negotiate > NTLM > Digest >
    /// Basic) that kerbside can use.
    #[arg(long, help_heading = "Authentication")]
    pub anyauth: bool,

    /// Send the Negotiate token with the first request instead of waiting for a 401
    /// (never over plain HTTP unless allowed). Without it, the client still does so
    /// for origins an earlier request of the same run learned want Negotiate.
    #[arg(long, help_heading = "Authentication")]
    pub negotiate_preemptive: bool,

    /// Mutual authentication: `required` (the server must prove itself with a final
    /// token), `optional` (check the token if sent), `off`.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "optional",
        help_heading = "Authentication"
    )]
    pub mutual: MutualAuth,

    /// Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host,
    /// or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or
    /// `HTTP/host@REALM`.
    #[arg(long, value_name = "[HOST=]NAME", help_heading = "Authentication")]
    pub spn: Vec<String>,

    /// Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker:
    /// a spoofed DNS answer then picks which service gets your ticket.
    #[arg(long, help_heading = "Authentication")]
    pub spn_canonicalize: bool,

    /// Put a non-default port into the service name (`HTTP/host:port`).
    #[arg(long, help_heading = "Authentication")]
    pub spn_port: bool,

    /// Forward your ticket-granting ticket: `none` (default), `policy` (only to
    /// services the KDC marks ok-as-delegate), `always`.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "none",
        help_heading = "Authentication"
    )]
    pub delegation: DelegationArg,

    /// Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on
    /// HTTPS; `off` for servers that reject it.
    #[arg(
        long,
        value_enum,
        value_name = "ON|OFF",
        default_value = "on",
        help_heading = "Authentication"
    )]
    pub channel_binding: Switch,

    /// Give up after this many 401 responses to one request.
    #[arg(
        long,
        value_name = "N",
        default_value = "4",
        help_heading = "Authentication"
    )]
    pub max_auth_rounds: u32,

    /// Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the
    /// principal given with -u or the keytab's first.
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub keytab: Option<PathBuf>,

    /// User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos
    /// principal; its ticket is used if the cache has one, else the password gets one
    /// (asked for on the terminal when not given). `-u :` means "my ticket", as in curl.
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER[:PASSWORD]",
        help_heading = "Authentication"
    )]
    pub user: Option<String>,

    /// Allow credentials over plain http://: for the URL's host, or with `=HOST` for
    /// that host (repeatable). Anyone on the network path can then steal or replay
    /// them.
    #[arg(
        long = "allow-http-auth",
        value_name = "HOST",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        help_heading = "Authentication"
    )]
    pub allow_http_auth: Vec<String>,

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

    /// Do not verify the server's TLS certificate (the connection is then open to a man
    /// in the middle).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Trust only the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Use HTTP/1.1 only (by default HTTP/2 is offered on TLS).
    #[arg(long = "http1.1")]
    pub http1_1: bool,

    /// Go through this HTTP proxy (`http://host:port` or `host:port`); `https://`
    /// URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate`
    /// is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain
    /// HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`,
    /// `https_proxy`, `all_proxy` from the environment.
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Proxy")]
    pub proxy: Option<String>,

    /// Hosts to reach without the proxy, comma-separated (`*` for all); default
    /// `no_proxy` from the environment.
    #[arg(long, value_name = "LIST", help_heading = "Proxy")]
    pub noproxy: Option<String>,
}

/// `--delegation`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DelegationArg {
    /// Never forward the ticket-granting ticket.
    None,
    /// Only to services the KDC marks ok-as-delegate.
    Policy,
    /// Always.
    Always,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Exit statuses, close to curl's where curl has one.
const EXIT_OTHER: u8 = 1;
const EXIT_CONNECT: u8 = 7;
const EXIT_HTTP_ERROR: u8 = 22;
const EXIT_TLS: u8 = 35;
const EXIT_AUTH: u8 = 67;

/// Bodies up to this size are kept in memory and replayed during a handshake.
const REPLAY_LIMIT: usize = 1024 * 1024;

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kerbside fetch: {message}");
    ExitCode::from(code)
}

/// Reads `-d` arguments into a body: in memory up to the replay limit, streamed
/// beyond it.
async fn read_data(data: &[String], silent: bool) -> std::io::Result<Option<RequestBody>> {
    if data.is_empty() {
        return Ok(None);
    }
    if let [single] = data {
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
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                if buf.len() > REPLAY_LIMIT && !silent {
                    eprintln!(
                        "kerbside fetch: warning: the body from standard input is larger than \
                         {REPLAY_LIMIT} bytes and cannot be sent twice; if the server asks for \
                         authentication after it is sent, the request fails \
                         (--negotiate-preemptive avoids that)"
                    );
                }
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

fn plain_http_policy(args: &[String], uri: &Uri) -> PlainHttpAuth {
    if args.is_empty() {
        return PlainHttpAuth::Refuse;
    }
    PlainHttpAuth::Hosts(
        args.iter()
            .map(|h| match h.as_str() {
                "" => uri.host().unwrap_or_default().to_owned(),
                h => h.to_owned(),
            })
            .collect(),
    )
}

fn schemes(args: &FetchArgs) -> Vec<SchemeKind> {
    if args.anyauth {
        return SchemeKind::ALL.to_vec();
    }
    let mut v = Vec::new();
    if args.negotiate || args.negotiate_preemptive {
        v.push(SchemeKind::Negotiate);
    }
    if args.ntlm {
        v.push(SchemeKind::Ntlm);
    }
    if args.digest {
        v.push(SchemeKind::Digest);
    }
    if args.basic {
        v.push(SchemeKind::Basic);
    }
    v
}

fn credentials(args: &FetchArgs) -> Result<ClientCredentials, String> {
    let (user, password) = match args.user.as_deref() {
        None | Some(":") | Some("") => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
            None => (Some(u.to_owned()), None),
        },
    };
    if let Some(path) = &args.keytab {
        return Ok(ClientCredentials::Keytab {
            path: path.clone(),
            principal: user,
        });
    }
    match (user, password) {
        (None, _) => Ok(ClientCredentials::Default),
        (Some(principal), Some(password)) => Ok(ClientCredentials::Password {
            principal,
            password,
        }),
        (Some(principal), None) => {
            if !std::io::stdin().is_terminal() {
                return Err(format!(
                    "-u {principal} needs a password: give -u {principal}:PASSWORD or run on a terminal"
                ));
            }
            let password = rpassword::prompt_password(format!("Password for {principal}: "))
                .map_err(|e| format!("cannot read the password: {e}"))?;
            Ok(ClientCredentials::Password {
                principal,
                password,
            })
        }
    }
}

fn target_settings(args: &FetchArgs) -> TargetNameSettings {
    TargetNameSettings {
        overrides: args
            .spn
            .iter()
            .map(|s| match s.split_once('=') {
                Some((host, name)) => (host.to_owned(), name.to_owned()),
                None => ("*".to_owned(), s.clone()),
            })
            .collect(),
        canonicalize: args.spn_canonicalize,
        include_port: args.spn_port,
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
        Event::Connected {
            conn,
            peer,
            protocol,
        } => writeln!(err, "* Connected to {peer}, connection #{conn}, {protocol}"),
        Event::Reusing {
            conn,
            authenticated,
        } => writeln!(
            err,
            "* Reusing connection #{conn}{}",
            if *authenticated { " (authenticated)" } else { "" }
        ),
        Event::Request {
            conn,
            line,
            headers,
        } => {
            let _ = writeln!(err, "> [#{conn}] {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "> {n}: {v}");
            }
            writeln!(err, ">")
        }
        Event::Response {
            conn,
            line,
            headers,
        } => {
            let _ = writeln!(err, "< [#{conn}] {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "< {n}: {v}");
            }
            writeln!(err, "<")
        }
        Event::Scheme {
            proxy,
            scheme,
            scheme_reason,
            target,
            target_reason,
            channel_binding,
        } => writeln!(
            err,
            "* Answering {} with {scheme} ({scheme_reason})\n* Kerberos target {target} ({target_reason}){}",
            if *proxy { "the proxy" } else { "the server" },
            if *channel_binding {
                "; TLS channel binding passed"
            } else {
                ""
            }
        ),
        Event::Authenticated {
            proxy,
            mutual,
            legs,
            connection_bound,
        } => writeln!(
            err,
            "* Negotiate {}done after {legs} token(s); mutual authentication: {}{}",
            if *proxy { "with the proxy " } else { "" },
            match mutual {
                MutualOutcome::Verified => "server verified",
                MutualOutcome::NotSent => "server sent no final token",
                MutualOutcome::NotChecked => "not checked (--mutual off)",
            },
            if *connection_bound {
                "; the connection stays authenticated"
            } else {
                ""
            }
        ),
        Event::Proxy { host, port, tunnel } => writeln!(
            err,
            "* Through proxy {host}:{port}{}",
            if *tunnel { " (CONNECT tunnel)" } else { "" }
        ),
        Event::Retrying { reason } => writeln!(err, "* Starting over on a new connection: {reason}"),
        _ => Ok(()),
    };
}

/// Runs `kerbside fetch`.
pub async fn run(args: FetchArgs) -> ExitCode {
    let uri: Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => return fail(EXIT_OTHER, format!("{:?} is not a URL: {e}", args.url)),
    };
    let credentials = match credentials(&args) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_OTHER, e),
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
    let mut proxy = match &args.proxy {
        Some(p) => match kerbside_client::parse_proxy(p) {
            Ok(uri) => ProxySettings::all(uri),
            Err(e) => return fail(EXIT_OTHER, e),
        },
        None => ProxySettings::from_env(),
    };
    if let Some(list) = &args.noproxy {
        proxy.no_proxy = kerbside_client::split_list(list);
    }
    let config = ClientConfig {
        proxy,
        tls: TlsSettings {
            ca_file: args.cacert.clone(),
            insecure: args.insecure,
        },
        auth: AuthSettings {
            schemes: SchemePolicy {
                enabled: schemes(&args),
                allow_downgrade: false,
                plain_http: plain_http_policy(&args.allow_http_auth, &uri),
            },
            mutual: args.mutual,
            target: target_settings(&args),
            delegation: match args.delegation {
                DelegationArg::None => Delegation::None,
                DelegationArg::Policy => Delegation::Policy,
                DelegationArg::Always => Delegation::Always,
            },
            credentials,
            channel_binding: args.channel_binding == Switch::On,
            preemptive: if args.negotiate_preemptive {
                Preemptive::Always
            } else {
                Preemptive::Learned
            },
            max_auth_rounds: args.max_auth_rounds,
            ..AuthSettings::default()
        },
        http2: !args.http1_1,
        replay_limit: REPLAY_LIMIT,
        ..ClientConfig::default()
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
    if status == http::StatusCode::UNAUTHORIZED && schemes(&args).is_empty() && !args.silent {
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
    while let Some(frame) = body.frame().await {
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
