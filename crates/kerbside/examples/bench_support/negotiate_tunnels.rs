//! The forward-proxy benchmark's second reference: the Kerberos Squid used
//! directly by a client that makes its own Negotiate token for every CONNECT (with
//! kerbside-gssapi's `NegotiateInitiator`, as `curl --proxy-negotiate` does), then
//! a TLS handshake and a GET through the tunnel. Against the open Squid, this
//! reference also pays Squid's Kerberos helper per tunnel, as kerbside proxy does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::{Mechanism, Step};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A fresh first Negotiate token for `HTTP@host` from the default ticket cache.
fn token(host: &str) -> std::io::Result<String> {
    let mut init =
        NegotiateInitiator::new(&InitiatorConfig::for_host(host)).map_err(std::io::Error::other)?;
    match init.step(None).map_err(std::io::Error::other)? {
        Step::Continue(t) | Step::Done(Some(t)) => {
            Ok(base64::engine::general_purpose::STANDARD.encode(t))
        }
        Step::Done(None) => Err(std::io::Error::other("no Negotiate token")),
    }
}

/// One CONNECT (with a Negotiate token for `HTTP@proxy_host`) + TLS + GET /bench.
async fn one(
    proxy: SocketAddr,
    proxy_host: &str,
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<()> {
    let s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    let authorization = format!("Negotiate {}", token(proxy_host)?);
    tls_get(s, Some((target.port(), Some(&authorization))), tls).await
}

/// On `s`: a `CONNECT localhost:PORT` first when `connect` says so (with its
/// `Proxy-Authorization`, if any), then a TLS handshake with `localhost` and
/// `GET /bench`, which must answer 200.
pub async fn tls_get(
    s: TcpStream,
    connect: Option<(u16, Option<&str>)>,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s);
    if let Some((port, authorization)) = connect {
        let credentials = authorization
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        r.get_mut()
            .write_all(
                format!(
                    "CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n{credentials}\r\n"
                )
                .as_bytes(),
            )
            .await?;
        let mut line = String::new();
        r.read_line(&mut line).await?;
        if !line.contains(" 200 ") {
            return Err(std::io::Error::other(line));
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 || h.trim().is_empty() {
                break;
            }
        }
    }
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut s = connector.connect(name, r.into_inner()).await?;
    s.write_all(b"GET /bench HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all).await;
    if all.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not 200"))
    }
}

/// CONNECT (Negotiate) + TLS + GET, repeated by `clients` for `secs`:
/// `(successes, errors)`. The caller has the realm's environment entered (the
/// tokens are made in this process).
pub async fn tunnels(
    proxy: SocketAddr,
    proxy_host: &str,
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    clients: usize,
    secs: f64,
) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (tls, host) = (tls.clone(), proxy_host.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0, 0);
            while Instant::now() < deadline {
                let attempt = one(proxy, &host, target, tls.clone());
                match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) => {
                        if errors == 0 {
                            eprintln!("bench-proxy:   Negotiate tunnel failed: {e}");
                        }
                        errors += 1;
                    }
                    Err(_) => errors += 1,
                }
            }
            (ok, errors)
        }));
    }
    let mut total = (0, 0);
    for task in tasks {
        if let Ok((ok, errors)) = task.await {
            total.0 += ok;
            total.1 += errors;
        }
    }
    total
}
