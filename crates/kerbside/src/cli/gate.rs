//! `kerbside gate`: an authenticating reverse proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use http::header::HeaderName;
use http::Uri;
use kerbside_server::gate::{Gate, GateConfig};
use serde::Deserialize;

/// Arguments of `kerbside gate`. Each may also be set in the `--config` file; the
/// command line wins.
#[derive(Debug, Args)]
#[command(
    after_help = "Configuration file (TOML), same names as the options:\n\n  \
    listen = \"0.0.0.0:443\"\n  tls-cert = \"/etc/kerbside/cert.pem\"\n  \
    tls-key = \"/etc/kerbside/key.pem\"\n  keytab = \"/etc/kerbside/http.keytab\"\n  \
    acceptor = \"HTTP@www.example.com\"\n  upstream = \"http://127.0.0.1:8000\"\n  \
    identity-header = \"X-Remote-User\"\n\nLogging: RUST_LOG (default info)."
)]
pub struct GateArgs {
    /// A TOML file with the settings below.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on (default 127.0.0.1:8443; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// TLS certificate chain (PEM). Without --tls-cert/--tls-key the gate serves plain
    /// HTTP, where tokens and identities travel unprotected.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Keytab holding the service keys (default: KRB5_KTNAME, then the system keytab).
    #[arg(long, value_name = "FILE")]
    pub keytab: Option<PathBuf>,

    /// Accept only tickets for this service (`HTTP@host` or `HTTP/host@REALM`);
    /// by default a ticket for any key in the keytab is accepted.
    #[arg(long, value_name = "NAME")]
    pub acceptor: Option<String>,

    /// Where authenticated requests are forwarded (http://host:port[/prefix]).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,

    /// Header that carries the client principal (e.g. alice@EXAMPLE.TEST) upstream.
    /// Any copy sent by a client is removed first. Default X-Remote-User.
    #[arg(long, value_name = "NAME")]
    pub identity_header: Option<String>,
}

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GateFile {
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    keytab: Option<PathBuf>,
    acceptor: Option<String>,
    upstream: Option<String>,
    identity_header: Option<String>,
}

fn load_file(path: &Path) -> Result<GateFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Resolves command line and file into the gate's configuration.
fn resolve(args: GateArgs) -> Result<GateConfig, String> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => GateFile::default(),
    };
    let upstream = args
        .upstream
        .or(file.upstream)
        .ok_or("no upstream: pass --upstream http://host:port (or set upstream in --config)")?;
    let upstream: Uri = upstream
        .parse()
        .map_err(|e| format!("upstream {upstream:?} is not a URL: {e}"))?;
    let identity = args
        .identity_header
        .or(file.identity_header)
        .unwrap_or_else(|| kerbside_server::DEFAULT_IDENTITY_HEADER.to_owned());
    let identity_header = HeaderName::from_bytes(identity.as_bytes())
        .map_err(|_| format!("{identity:?} is not a valid header name"))?;
    let tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("give both tls-cert and tls-key, or neither".to_owned()),
    };
    Ok(GateConfig {
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
        tls,
        keytab: args.keytab.or(file.keytab),
        acceptor: args.acceptor.or(file.acceptor),
        upstream,
        identity_header,
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs `kerbside gate`.
pub async fn run(args: GateArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let config = match resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(2);
        }
    };
    let gate = match Gate::bind(&config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = match gate.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(1);
        }
    };
    if !gate.is_tls() {
        tracing::warn!(
            "serving plain HTTP: Kerberos tokens and user identities travel unprotected; \
             give --tls-cert and --tls-key"
        );
    }
    let scheme = if gate.is_tls() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port.
    eprintln!(
        "kerbside gate: listening on {scheme}://{addr}, forwarding to {}",
        config.upstream
    );
    gate.serve(shutdown_signal()).await;
    ExitCode::SUCCESS
}
