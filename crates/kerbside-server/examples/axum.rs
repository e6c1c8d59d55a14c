//! A small axum app with a public page and a page only Kerberos users see.
//!
//! ```text
//! cargo run -p kerbside-server --example axum -- --keytab /etc/http.keytab
//! curl --negotiate -u : http://localhost:8080/private
//! ```
//!
//! Flags: `--listen ADDR` (default `127.0.0.1:8080`), `--keytab FILE` (default: the
//! `KRB5_KTNAME` variable, else the system keytab), `--tls-cert FILE --tls-key FILE`
//! (PEM) to serve HTTPS, where logins are bound to the TLS channel, and `--mode
//! connection` to keep a login with its TCP connection (one handshake per connection,
//! `Persistent-Auth: true`) instead of a token on every request.
//!
//! Over plain HTTP the app is served by `axum::serve`, with axum's connect-info making a
//! [`PerConnection`] for every connection. Over TLS it runs its own accept loop (axum
//! has none for TLS) and wraps each connection's service in a `PerConnection` carrying
//! the certificate, the way any hyper server does.
#![allow(clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::header::USER_AGENT;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use kerbside_gssapi::{AcceptorConfig, NegotiateAcceptor};
use kerbside_server::{AuthMode, Authenticated, ConnectionSupply, NegotiateLayer, PerConnection};
use tower_layer::Layer;

/// Anyone may read this; a signed-in client is greeted by name.
async fn public(who: Option<Authenticated>) -> String {
    match who {
        Some(who) => format!("public page, hello {}\n", who.principal),
        None => "public page, hello stranger\n".to_owned(),
    }
}

/// Only reached by a client the layer authenticated.
async fn private(who: Authenticated, headers: HeaderMap) -> String {
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    tracing::info!(principal = %who.principal, user_agent = agent.unwrap_or("-"), "private page served");
    format!(
        "private page for {} (scheme {}, realm {}, channel-bound: {})\n",
        who.principal,
        who.scheme.name(),
        who.realm.as_deref().unwrap_or("-"),
        who.channel_bound,
    )
}

struct Args {
    listen: SocketAddr,
    keytab: Option<PathBuf>,
    tls: Option<(PathBuf, PathBuf)>,
    mode: AuthMode,
}

fn args() -> Result<Args, String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let (mut keytab, mut cert, mut key) = (None, None, None);
    let mut mode = AuthMode::PerRequest;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--keytab" => keytab = Some(PathBuf::from(value()?)),
            "--tls-cert" => cert = Some(PathBuf::from(value()?)),
            "--tls-key" => key = Some(PathBuf::from(value()?)),
            "--mode" => mode = value()?.parse().map_err(|e| format!("--mode: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    Ok(Args {
        listen,
        keytab,
        tls,
        mode,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = args()?;
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: args.keytab,
        acceptor_name: None,
    })?;
    // Connection mode keeps the login with the connection: the builder insists on
    // being told how each connection gets its PerConnection (below: axum's
    // connect-info over HTTP, our accept loop's layer over TLS).
    let layer = NegotiateLayer::builder()
        .acceptor(acceptor)
        .mode(args.mode)
        .per_connection(match args.tls {
            None => ConnectionSupply::AxumConnectInfo,
            Some(_) => ConnectionSupply::Layer,
        })
        .served_over_tls(args.tls.is_some())
        .build()?;
    // The ten lines: a public route, and a protected one behind the layer.
    let app = Router::new()
        .route("/private", get(private))
        .route_layer(layer)
        .route("/", get(public));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let Some((cert, key)) = args.tls else {
        eprintln!("listening on http://{addr}");
        let app = app.into_make_service_with_connect_info::<PerConnection>();
        axum::serve(listener, app).await?;
        return Ok(());
    };

    let tls = tokio_rustls::TlsAcceptor::from(kerbside_server::load_server_config(&cert, &key)?);
    let leaf = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::pem_file_iter(&cert)?
            .next()
            .ok_or("no certificate in --tls-cert")??
    };
    let binding = PerConnection::new(addr)
        .with_server_certificate(&leaf)
        .tls_binding()
        .ok_or("no channel binding for this certificate")?;
    eprintln!("listening on https://{addr}");
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (tls, app, binding) = (tls.clone(), app.clone(), binding.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            {
                Ok(Ok(stream)) => stream,
                _ => return,
            };
            // One PerConnection per accepted connection.
            let service = PerConnection::new(peer)
                .with_tls_binding(binding)
                .layer(app);
            let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            http.http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let _ = http
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}
