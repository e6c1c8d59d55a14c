//! `kerbside tunnel`: a local plain-HTTP listener that forwards every request to a
//! kerberized origin through the client library, so tools without Negotiate
//! (Mercurial, pip, npm, a browser without Kerberos set up) reach it with the user's
//! ticket: `hg clone http://127.0.0.1:PORT/repo`.
//!
//! It serves the user's tools, not the web pages in the user's browser: a request
//! whose `Host` is not the tunnel, or that a page of another origin sent (`Origin`,
//! `Sec-Fetch-Site`), gets 403 and a line in the log, and nothing is forwarded
//! ([`kerbside_proto::local_guard`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use http::header::{CONTENT_LENGTH, HOST, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use kerbside_client::{BoxError, Client, Event, RequestBody};
use kerbside_proto::local_guard::{LocalListener, RequestOrigin};
use kerbside_server::strip_hop_by_hop;
use tokio::net::TcpListener;

use super::client_args::ClientArgs;

/// Arguments of `kerbside tunnel`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example: publish nothing, reach everything —
  kerbside tunnel --listen 127.0.0.1:8080 --to https://hg.example.com/repos
  hg clone http://127.0.0.1:8080/project

Whoever can connect to the listener acts with your Kerberos identity: it listens on \
loopback only unless --allow-remote is given. Web pages in your browser cannot use it: a \
request whose Host is not the tunnel (localhost, 127.0.0.1, [::1] or the address it was \
reached on, with its port; more names with --allowed-host), or that carries the Origin of \
another site or Sec-Fetch-Site: cross-site/same-site, gets 403 and is not forwarded. Each local connection gets its own upstream \
connections, so a connection-bound upstream never serves two local clients on one \
authenticated connection. Negotiate is enabled unless other schemes are chosen.")]
pub struct TunnelArgs {
    /// Local address to listen on (plain HTTP).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The remote origin and path prefix every request is forwarded to, e.g.
    /// `https://hg.example.com/repos`.
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// Listen on a non-loopback address. Anyone who can reach it then uses your
    /// Kerberos identity.
    #[arg(long)]
    pub allow_remote: bool,

    /// Another name tools reach the tunnel by, as `NAME` (with the tunnel's port) or
    /// `NAME:PORT` (e.g. `localhost:9000` through `ssh -L 9000:localhost:8080`);
    /// repeatable. Requests with any other Host are refused (DNS rebinding).
    #[arg(long, value_name = "NAME[:PORT]")]
    pub allowed_host: Vec<String>,

    /// Log each request and each authentication step on standard error.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

type TunnelBody = BoxBody<Bytes, BoxError>;

struct Target {
    scheme: String,
    authority: String,
    prefix: String,
}

fn text_response(status: StatusCode, text: String) -> Response<TunnelBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text + "\n"))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// True if `path` has a `..` segment, plain or percent-encoded (`%2e%2e`), also one
/// hidden behind an encoded slash or backslash (`..%2f`), which an upstream may read as
/// a step up out of the `--to` prefix. The rest of the path is forwarded as the tool
/// wrote it (npm's `@scope%2fname`, for one, needs its encoded slash).
fn climbs(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        let decoded = lower
            .replace("%2e", ".")
            .replace("%2f", "/")
            .replace("%5c", "/")
            .replace('\\', "/");
        decoded.split('/').any(|part| part == "..")
    })
}

/// Why `request` must not be forwarded, if a web page may have sent it.
fn refusal(guard: &LocalListener, request: &Request<Incoming>) -> Option<String> {
    let values = |name: &str| -> Vec<&[u8]> {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    };
    let (host, origin, site) = (values("host"), values("origin"), values("sec-fetch-site"));
    let target = request.uri().authority().map(|a| a.as_str());
    guard
        .check(&RequestOrigin {
            host: &host,
            target_authority: target,
            origin: &origin,
            sec_fetch_site: &site,
        })
        .err()
        .map(|e| e.to_string())
}

async fn forward(
    client: &Client,
    target: &Target,
    request: Request<Incoming>,
    verbose: bool,
) -> Response<TunnelBody> {
    let (mut parts, body) = request.into_parts();
    if climbs(parts.uri.path()) {
        tracing::warn!(path = %parts.uri.path(), "refused: the path has a .. segment");
        return text_response(
            StatusCode::BAD_REQUEST,
            "the path has a .. segment, which could climb out of the tunnel's --to prefix\n"
                .to_owned(),
        );
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = match format!(
        "{}://{}{}{}",
        target.scheme, target.authority, target.prefix, path
    )
    .parse()
    {
        Ok(u) => u,
        Err(e) => return text_response(StatusCode::BAD_REQUEST, format!("bad path: {e}")),
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(HOST);
    let len = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = if http_body::Body::is_end_stream(&body) || len == Some(0) {
        RequestBody::empty()
    } else {
        RequestBody::stream(
            body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
            len,
        )
    };
    // The client library decides for itself whether to wait for `100 Continue`.
    parts.headers.remove(http::header::EXPECT);
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = uri.clone();
    *upstream.headers_mut() = parts.headers;
    let log = |e: &Event| {
        if verbose {
            super::client_args::verbose(e);
        }
    };
    match client.send(upstream, &log).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            if parts.status != StatusCode::UNAUTHORIZED {
                // The final Negotiate token was for us, not for the local tool.
                parts.headers.remove(WWW_AUTHENTICATE);
            }
            tracing::info!(%uri, status = %parts.status, "forwarded");
            Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
        }
        Err(e) => {
            tracing::warn!(%uri, "upstream request failed: {e}");
            let status = if e.is_auth() || e.is_policy() {
                StatusCode::UNAUTHORIZED
            } else if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            text_response(status, format!("kerbside tunnel: {e}"))
        }
    }
}

/// Runs `kerbside tunnel`.
pub async fn run(mut args: TunnelArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // Long-running: tokens from a kept memory copy of the ticket cache.
    kerbside_gssapi::keep_ticket_cache_copies();
    let to: Uri = match args.to.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("kerbside tunnel: --to {:?} is not a URL: {e}", args.to);
            return ExitCode::from(2);
        }
    };
    let (Some(scheme), Some(authority)) = (to.scheme_str(), to.authority()) else {
        eprintln!("kerbside tunnel: --to needs an absolute URL such as https://host/prefix");
        return ExitCode::from(2);
    };
    let target = Arc::new(Target {
        scheme: scheme.to_owned(),
        authority: authority.to_string(),
        prefix: to.path().trim_end_matches('/').to_owned(),
    });
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        eprintln!(
            "kerbside tunnel: refusing to listen on {}: anyone who reaches it would act as you; \
             use a loopback address or --allow-remote",
            args.listen
        );
        return ExitCode::from(2);
    }
    if !args.client.anyauth
        && !args.client.ntlm
        && !args.client.digest
        && !args.client.basic
        && !args.client.negotiate_preemptive
    {
        args.client.negotiate = true;
    }
    let config = match args.client.config(&to) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside tunnel: {e}");
            return ExitCode::from(2);
        }
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside tunnel: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kerbside tunnel: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().map_or(args.listen, |a| a);
    eprintln!("kerbside tunnel: listening on http://{local}, forwarding to {to}");
    let verbose = args.verbose;
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let mut listener = kerbside_server::listener::Listener::new(listener, "tunnel")
        .with_max_connections(kerbside_server::listener::DEFAULT_MAX_CONNECTIONS);
    loop {
        let (tcp, remote, slot) = tokio::select! {
            a = listener.accept() => (a.stream, a.remote, a.slot),
            _ = &mut shutdown => return ExitCode::SUCCESS,
        };
        // One client per local connection: its upstream connections (and any
        // connection-bound authentication on them) serve this local client only.
        let client = client.fork();
        let target = target.clone();
        // The tunnel's own names for this connection: the address it came in on.
        let local_ip = tcp.local_addr().map_or(local.ip(), |a| a.ip());
        let guard = Arc::new(LocalListener::new(
            local.port(),
            local_ip,
            &args.allowed_host,
        ));
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let client = client.clone();
                let target = target.clone();
                let refused = refusal(&guard, &req);
                async move {
                    if let Some(why) = refused {
                        tracing::warn!(
                            %remote,
                            method = %req.method(),
                            path = req.uri().path(),
                            "refused, not forwarded: {why}"
                        );
                        return Ok::<_, Infallible>(text_response(
                            StatusCode::FORBIDDEN,
                            format!(
                                "kerbside tunnel: refused: {why}. The tunnel serves the tools \
                                 on this machine, not web pages."
                            ),
                        ));
                    }
                    Ok(forward(&client, &target, req, verbose).await)
                }
            });
            let result = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(60))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(%remote, "local connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::climbs;

    #[test]
    fn dot_dot_segments_are_found_in_every_spelling() {
        for path in [
            "/..",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a/%2E./b",
            "/a/.%2e",
            "/a/..%2fb",
            "/a/..%5Cb",
            "/a/..\\b",
        ] {
            assert!(climbs(path), "{path}");
        }
        for path in [
            "/",
            "/a/b",
            "/a/.../b",
            "/a/..b",
            "/@scope%2fname",
            "/a/./b",
            "/a..",
        ] {
            assert!(!climbs(path), "{path}");
        }
    }
}
