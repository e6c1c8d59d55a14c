//! `kerbside proxy`: the local forward proxy ([`kerbside_proxy`]). Its flags,
//! resolved into a [`ProxyConfig`]: routes from `--proxy`/`--noproxy` or the
//! environment, the credential and client allow lists, the client library's
//! authentication flags (shared with `fetch`), and `--check URL`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kerbside_pac::PacLimits;
use kerbside_proto::forward_proxy::hosts::{ClientAllowList, HostList};
use kerbside_proto::forward_proxy::route::{
    parse_proxy_list, CredentialAllowList, FixedRoutes, Upstream,
};
use kerbside_proxy::pac::{PacLocation, PacRouteSource};
use kerbside_proxy::route_source::{RouteQuery, RouteSource};
use kerbside_proxy::upstreams::CredentialDecision;
use kerbside_proxy::{FixedRouteSource, ProxyConfig, ProxyServer};

use super::client_args::ClientArgs;

/// Arguments of `kerbside proxy`.
#[derive(Debug, Args)]
#[command(
    mut_arg("proxy", |a| a.help(
        "Upstream proxy, `http://host:port` or `host:port`, or `https://host:port` (TLS to \
         the proxy, its certificate checked with --proxy-cacert or the system's roots); \
         comma-separated or repeated \
         for failover, tried in order (one that cannot be reached or answers 5xx to CONNECT \
         is tried last for --proxy-retry-after). Default: https_proxy (for CONNECT) and \
         http_proxy (plain HTTP) from the environment, lower case only")),
    mut_arg("noproxy", |a| a.help(
        "Hosts reached directly, comma-separated: names (with their subdomains), \
         .suffix, *.suffix, wildcards (build-*.corp), addresses, CIDR ranges, * for all. \
         Nothing is bypassed unless listed (suggested: localhost,127.0.0.0/8,::1). \
         Default: no_proxy from the environment when the upstreams come from it")),
    after_help = "\
Example: point your tools at it, with no credentials of their own —
  kerbside proxy --proxy proxy.corp.example:8080 --noproxy localhost,127.0.0.0/8,.corp.example
  export https_proxy=http://127.0.0.1:3128 http_proxy=http://127.0.0.1:3128
Or let the corporate PAC file decide each route —
  kerbside proxy --pac http://wpad.corp.example/wpad.dat

The proxy authenticates to the upstream with your Kerberos ticket (Negotiate), or your \
NTLM or Basic password (-u, --netrc, the keyring file), whichever is the strongest the \
upstream offers and you hold. Credentials go only to upstreams on --auth-proxies (default: \
the hosts given with --proxy, and the domain of the --pac server). Only clients on --allow (default loopback) and, on Linux, \
only your own user's programs may use it: it acts with your identity."
)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = kerbside_proxy::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// A PAC file (proxy auto-config), a path or an http:// or https:// URL:
    /// FindProxyForURL decides each request's route (DIRECT, PROXY, HTTPS and
    /// fallbacks, in order; SOCKS entries are skipped). Evaluated on a thread of
    /// its own with a time and memory limit; re-read when it changes. One that
    /// cannot be fetched or run means DIRECT, with a warning. Not with --proxy.
    #[arg(long, value_name = "FILE|URL")]
    pub pac: Option<String>,

    /// How often a PAC URL is fetched again, in seconds (a file is looked at
    /// every second).
    #[arg(long, value_name = "SECS", default_value = "300")]
    pub pac_refresh: u64,

    /// Upstream proxies that may receive your credentials, comma-separated host
    /// patterns (as --noproxy). Default: the hosts given with --proxy, and the
    /// PAC server's domain (wpad.corp.example: corp.example). Any other upstream
    /// (a PAC file's or the environment's) is used without credentials.
    #[arg(long, value_name = "LIST")]
    pub auth_proxies: Option<String>,

    /// Client addresses that may use the proxy, as CIDR ranges or addresses
    /// (repeatable or comma-separated). Default: 127.0.0.0/8 and ::1.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,

    /// Let programs of other users of this machine use the proxy (and your
    /// identity). By default, on Linux, a loopback client whose socket another user
    /// owns gets 403.
    #[arg(long)]
    pub allow_other_users: bool,

    /// Answer an origin's `401` Negotiate/NTLM for plain-HTTP requests with your
    /// credentials (as `kerbside tunnel` does). HTTPS through CONNECT is never
    /// touched.
    #[arg(long)]
    pub origin_auth: bool,

    /// How long an upstream that failed is tried last, in seconds.
    #[arg(long, value_name = "SECS", default_value = "300")]
    pub proxy_retry_after: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics: requests, tunnels,
    /// handshakes and failures, and with --pac the PAC evaluation times (a
    /// histogram) and PAC failures by kind.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// Print the route and authentication decision for URL, and exit.
    #[arg(long, value_name = "URL")]
    pub check: Option<String>,

    /// Log each route decision and authentication step (secrets redacted).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Log format: `text` (default) or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: String,

    /// Threads that serve clients and relay tunnels. One (the default, as Squid
    /// and cntlm) spends the least CPU per request and per tunnel: with more,
    /// every wake-up may cross threads. Negotiate tokens are made on separate
    /// threads either way.
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// Routes and the default credential allow list, from the flags or the
/// environment (`https_proxy`, `http_proxy`, `no_proxy`, lower case only).
fn routes(args: &ProxyArgs) -> Result<(FixedRoutes, Vec<Upstream>), String> {
    let listed = |text: &str| HostList::parse(text).map_err(|e| format!("--noproxy: {e}"));
    if !args.client.proxy.is_empty() {
        let list = parse_proxy_list(args.client.proxy.iter().map(String::as_str))
            .map_err(|e| format!("--proxy: {e}"))?;
        let no_proxy = match &args.client.noproxy {
            Some(l) => listed(l)?,
            None => HostList::default(),
        };
        return Ok((
            FixedRoutes {
                http: list.clone(),
                connect: list.clone(),
                no_proxy,
                source: "--proxy list",
            },
            list,
        ));
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let from_env = |name: &str| -> Result<Vec<Upstream>, String> {
        match var(name) {
            Some(v) => parse_proxy_list([v.as_str()]).map_err(|e| format!("{name}: {e}")),
            None => Ok(Vec::new()),
        }
    };
    let no_proxy = match (&args.client.noproxy, var("no_proxy")) {
        (Some(l), _) => listed(l)?,
        (None, Some(l)) => HostList::parse(&l).map_err(|e| format!("no_proxy: {e}"))?,
        (None, None) => HostList::default(),
    };
    Ok((
        FixedRoutes {
            http: from_env("http_proxy")?,
            connect: from_env("https_proxy")?,
            no_proxy,
            source: "environment (https_proxy, http_proxy)",
        },
        Vec::new(),
    ))
}

/// Whether `upstream` is this proxy's own listening address (an exported
/// `https_proxy` that points back at it): a loop.
fn is_self(upstream: &Upstream, listen: SocketAddr) -> bool {
    if upstream.port != listen.port() {
        return false;
    }
    match upstream.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == listen.ip() || (ip.is_loopback() && listen.ip().is_unspecified()),
        Err(_) => {
            upstream.host == "localhost"
                && (listen.ip().is_loopback() || listen.ip().is_unspecified())
        }
    }
}

/// Resolves the flags into the proxy's configuration (reading the PAC file
/// once, when there is one).
async fn resolve(mut args: ProxyArgs) -> Result<(ProxyConfig, ProxyArgs), String> {
    let pac = match &args.pac {
        Some(text) => {
            if !args.client.proxy.is_empty() || args.client.noproxy.is_some() {
                return Err(
                    "--pac decides every route: give it without --proxy and --noproxy".into(),
                );
            }
            Some(PacLocation::parse(text)?)
        }
        None => None,
    };
    let (routes, given) = routes(&args)?;
    for upstream in routes.http.iter().chain(&routes.connect) {
        if is_self(upstream, args.listen) {
            return Err(format!(
                "the upstream {upstream} is this proxy's own address {} (is https_proxy or \
                 http_proxy set to it in this shell?): requests would loop; give --proxy",
                args.listen
            ));
        }
    }
    let auth_proxies = match &args.auth_proxies {
        Some(l) => CredentialAllowList::new(
            HostList::parse(l).map_err(|e| format!("--auth-proxies: {e}"))?,
        ),
        None => {
            let mut list = CredentialAllowList::of_upstreams(&given);
            if let Some(domain) = pac.as_ref().and_then(PacLocation::auth_domain) {
                list = list.with(domain);
            }
            list
        }
    };
    let allow = ClientAllowList::parse(args.allow.iter().map(String::as_str))
        .map_err(|e| format!("--allow: {e}"))?;
    // No scheme flag: every scheme the upstream may offer; the strongest one the
    // user holds credentials for is answered.
    let c = &args.client;
    if !(c.anyauth || c.negotiate || c.ntlm || c.digest || c.basic || c.negotiate_preemptive) {
        args.client.anyauth = true;
    }
    let keyring_host = given
        .first()
        .or(routes.connect.first())
        .map_or_else(|| "localhost".to_owned(), |u| u.host.clone());
    let uri: http::Uri = format!("http://{keyring_host}/")
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("http://localhost/"));
    // The routes are resolved above; the client's own proxy settings are set per
    // upstream (a --proxy list is not one proxy URL).
    let proxies = std::mem::take(&mut args.client.proxy);
    let client = args.client.config(&uri);
    args.client.proxy = proxies;
    let mut client = client?;
    // Upstream connections stay HTTP/1.1 (a proxy's handshake binds to one).
    client.http2 = false;
    let metrics = Arc::new(kerbside_proxy::metrics::Metrics::default());
    let routes: Arc<dyn RouteSource> = match pac {
        Some(location) => {
            PacRouteSource::start(
                location,
                &client,
                PacLimits::default(),
                Duration::from_secs(args.pac_refresh.max(1)),
                metrics.clone(),
            )
            .await?
        }
        None => Arc::new(FixedRouteSource { routes }),
    };
    let config = ProxyConfig {
        listen: args.listen,
        allow,
        same_user_only: !args.allow_other_users,
        routes,
        auth_proxies,
        retry_after: Duration::from_secs(args.proxy_retry_after),
        client,
        origin_auth: args.origin_auth,
        metrics,
        ..ProxyConfig::default()
    };
    Ok((config, args))
}

fn init_logging(verbose: bool, format: &str) {
    let default = if verbose {
        "info,kerbside_proxy=debug,kerbside=debug"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().with_current_span(false).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// `--check URL`: the route and the credentials each upstream on it gets.
async fn check(config: &ProxyConfig, url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--check {url:?} is not a URL: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("--check {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let tunnel = uri.scheme_str() == Some("https");
    let query = RouteQuery {
        url: url.to_owned(),
        port: uri.port_u16().unwrap_or(if tunnel { 443 } else { 80 }),
        host,
        tunnel,
    };
    let route = config.routes.route(&query).await;
    let upstreams =
        kerbside_proxy::Upstreams::new(config, Default::default()).map_err(|e| e.to_string())?;
    let mut out = format!(
        "{url}\n  request: {}\n  route source: {}\n  reason: {}\n",
        if tunnel {
            "CONNECT tunnel (HTTPS is never touched)"
        } else {
            "plain HTTP (absolute form)"
        },
        config.routes.describe(),
        route.reason
    );
    let schemes: Vec<&str> = config
        .client
        .auth
        .schemes
        .enabled
        .iter()
        .map(|k| k.name())
        .collect();
    for (i, choice) in route.choices.iter().enumerate() {
        let auth = match choice {
            kerbside_proto::forward_proxy::route::RouteChoice::Direct => {
                if config.origin_auth && !tunnel {
                    "no proxy; an origin's 401 is answered (--origin-auth)".to_owned()
                } else {
                    "no proxy; no credentials".to_owned()
                }
            }
            kerbside_proto::forward_proxy::route::RouteChoice::Proxy(u) => {
                match upstreams.credentials_for(u) {
                    CredentialDecision::Allowed => format!(
                        "a 407 is answered with the strongest of {} the upstream offers and you \
                         hold credentials for",
                        schemes.join(", ")
                    ),
                    CredentialDecision::NotListed => format!(
                        "not on --auth-proxies ({}): used without credentials",
                        config.auth_proxies.hosts()
                    ),
                }
            }
        };
        out.push_str(&format!("  {}. {choice}: {auth}\n", i + 1));
    }
    Ok(out)
}

async fn serve_metrics(addr: SocketAddr, metrics: Arc<kerbside_proxy::metrics::Metrics>) {
    use http_body_util::Full;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve metrics on {addr}: {e}");
            return;
        }
    };
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<_>| {
                let body = if req.uri().path() == "/metrics" {
                    metrics.render()
                } else {
                    String::new()
                };
                let status = if body.is_empty() {
                    http::StatusCode::NOT_FOUND
                } else {
                    http::StatusCode::OK
                };
                let mut response = http::Response::new(Full::new(bytes::Bytes::from(body)));
                *response.status_mut() = status;
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs `kerbside proxy`.
pub async fn run(args: ProxyArgs) -> ExitCode {
    if args.log_format != "text" && args.log_format != "json" {
        eprintln!(
            "kerbside proxy: log format {:?}: use text or json",
            args.log_format
        );
        return ExitCode::from(2);
    }
    init_logging(args.verbose, &args.log_format);
    // A token per tunnel: from a kept memory copy of the ticket cache (docs/corporate-proxy.md).
    kerbside_gssapi::keep_ticket_cache_copies();
    let (config, args) = match resolve(args).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(url) = &args.check {
        return match check(&config, url).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kerbside proxy: {e}");
                ExitCode::from(2)
            }
        };
    }
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            "listening on {}, beyond loopback: every client --allow lets in acts with your \
             identity",
            config.listen
        );
    }
    if !config.allow.only_loopback() {
        tracing::warn!("--allow lets in clients beyond this machine; each acts with your identity");
    }
    if let Some((before, after)) = kerbside_proxy::raise_open_file_limit() {
        tracing::info!(
            "open-file limit raised from {before} to {after} (each tunnel holds two descriptors)"
        );
    }
    let routes = config.routes.describe();
    let server = match ProxyServer::bind(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kerbside proxy: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    if let Some(addr) = args.metrics {
        tokio::spawn(serve_metrics(addr, server.metrics()));
        eprintln!("kerbside proxy: metrics on http://{addr}/metrics");
    }
    eprintln!(
        "kerbside proxy: listening on http://{}, routes from the {routes}",
        server.local_addr()
    );
    server.serve(terminated()).await;
    eprintln!("kerbside proxy: stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_that_is_the_proxy_itself_is_a_loop() {
        let up = |h: &str, p| Upstream {
            kind: kerbside_proto::forward_proxy::route::UpstreamKind::Http,
            host: h.into(),
            port: p,
        };
        let listen: SocketAddr = "127.0.0.1:3128".parse().unwrap_or_else(|_| unreachable!());
        assert!(is_self(&up("127.0.0.1", 3128), listen));
        assert!(is_self(&up("localhost", 3128), listen));
        assert!(!is_self(&up("127.0.0.1", 8080), listen));
        assert!(!is_self(&up("proxy.corp", 3128), listen));
    }
}
