//! `CONNECT host:port` tunnels: the route is chosen, a tunnel opened through the
//! first upstream that takes it (authenticating to it on that connection) or a
//! TCP connection made directly, then `200` to the client and the bytes spliced.
//! Nothing inside a tunnel is read or changed (no interception).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use kerbside_client::TunnelStream;
use kerbside_proto::forward_proxy::route::RouteChoice;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::observe::RequestObserver;
use crate::response::{status_for, text, ProxyBody};
use crate::route_source::RouteQuery;
use crate::server::Shared;
use crate::splice::{splice, Spliced};

/// Either end of a tunnel.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The upstream end of a tunnel: a plain TCP socket (direct, or to an `http://`
/// proxy, with the bytes already read behind its `200`) that the kernel can
/// splice, or any other stream.
enum Upstream {
    Tcp(TcpStream, Bytes),
    Io(Box<dyn Io>),
}

/// Answers one `CONNECT`.
pub(crate) async fn connect(
    shared: Arc<Shared>,
    mut request: Request<Incoming>,
    id: u64,
) -> Response<ProxyBody> {
    let authority = request.uri().authority().cloned();
    let Some((host, port)) = authority
        .as_ref()
        .and_then(|a| a.port_u16().map(|p| (a.host(), p)))
        .filter(|(h, _)| !h.is_empty())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "kerbside proxy: CONNECT needs host:port, not {:?}",
                request.uri().to_string()
            ),
        );
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let query = RouteQuery {
        url: format!("https://{}/", authority.as_ref().map_or("", |a| a.as_str())),
        host: host.clone(),
        port,
        tunnel: true,
    };
    let route = shared.routes.route(&query).await;
    let choices = shared.upstreams.order(&route.choices);
    tracing::debug!(
        request = id,
        target = %format!("{host}:{port}"),
        route = %choices.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        reason = %route.reason,
        "route (CONNECT)"
    );
    let observer = RequestObserver::new(id, shared.metrics.clone());
    let mut last_error = String::new();
    for choice in &choices {
        let opened: Result<Upstream, (String, StatusCode)> = match choice {
            RouteChoice::Direct => {
                let connect = tokio::net::TcpStream::connect((host.as_str(), port));
                match tokio::time::timeout(shared.connect_timeout, connect).await {
                    Ok(Ok(tcp)) => {
                        let _ = tcp.set_nodelay(true);
                        Ok(Upstream::Tcp(tcp, Bytes::new()))
                    }
                    Ok(Err(e)) => Err((
                        format!("cannot connect to {host}:{port}: {e}"),
                        StatusCode::BAD_GATEWAY,
                    )),
                    Err(_) => Err((
                        format!(
                            "connecting to {host}:{port} timed out after {} s",
                            shared.connect_timeout.as_secs_f32()
                        ),
                        StatusCode::GATEWAY_TIMEOUT,
                    )),
                }
            }
            RouteChoice::Proxy(u) => {
                let client = match shared.upstreams.client(u) {
                    Ok(c) => c,
                    Err(e) => {
                        last_error = e.to_string();
                        continue;
                    }
                };
                match client.open_tunnel_stream(&host, port, &observer).await {
                    Ok(io) => {
                        shared.upstreams.succeeded(u);
                        Ok(match io {
                            TunnelStream::Tcp { stream, buffered } => {
                                Upstream::Tcp(stream, buffered)
                            }
                            TunnelStream::Io(io) => Upstream::Io(Box::new(io)),
                        })
                    }
                    Err(e) => {
                        if e.is_auth() || e.is_policy() {
                            shared.metrics.inc(
                                "kerbside_proxy_auth_failures_total",
                                &[("scheme", &observer.scheme())],
                            );
                        }
                        let upstream_failed = e.is_connect()
                            || e.is_timeout()
                            || e.is_proxy_tls()
                            || e.proxy_status().is_some_and(|s| s >= 500);
                        if upstream_failed {
                            shared.upstreams.failed(u, &e.to_string());
                            tracing::info!(request = id, via = %choice, "trying the next route: {e}");
                            last_error = e.to_string();
                            continue;
                        }
                        Err((e.to_string(), status_for(&e)))
                    }
                }
            }
        };
        let upstream = match opened {
            Ok(io) => io,
            Err((message, status)) => {
                shared.metrics.inc(
                    "kerbside_proxy_errors_total",
                    &[("status", status.as_str())],
                );
                tracing::warn!(request = id, target = %format!("{host}:{port}"), via = %choice, status = status.as_u16(), "CONNECT failed: {message}");
                return text(
                    status,
                    format!("kerbside proxy: CONNECT {host}:{port} via {choice}: {message}"),
                );
            }
        };
        let (route_label, upstream_label) = match choice {
            RouteChoice::Direct => ("direct", String::new()),
            RouteChoice::Proxy(u) => ("proxy", u.to_string()),
        };
        shared.metrics.inc(
            "kerbside_proxy_tunnels_total",
            &[("route", route_label), ("upstream", &upstream_label)],
        );
        tracing::info!(request = id, target = %format!("{host}:{port}"), via = %choice, "tunnel open");
        let on_upgrade = hyper::upgrade::on(&mut request);
        let idle = shared.tunnel_idle_timeout;
        let guard = shared.active.enter();
        tokio::spawn(async move {
            let _guard = guard;
            let client = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(request = id, "the client left before the tunnel: {e}");
                    return;
                }
            };
            match carry(client, upstream, idle).await {
                Ok(s) => tracing::debug!(
                    request = id,
                    up = s.up,
                    down = s.down,
                    splice = s.kernel,
                    "tunnel closed"
                ),
                Err(e) => tracing::debug!(request = id, "tunnel ended: {e}"),
            }
        });
        return Response::new(crate::response::empty());
    }
    let message = if last_error.is_empty() {
        format!("no usable route ({})", route.reason)
    } else {
        format!("no route worked; the last: {last_error}")
    };
    shared
        .metrics
        .inc("kerbside_proxy_errors_total", &[("status", "502")]);
    tracing::warn!(request = id, target = %format!("{host}:{port}"), "CONNECT failed: {message}");
    text(
        StatusCode::BAD_GATEWAY,
        format!("kerbside proxy: CONNECT {host}:{port}: {message}"),
    )
}

/// The bytes of a tunnel: with `splice(2)` when both ends are plain TCP sockets
/// (on Linux), else through the copy loop.
async fn carry(client: Upgraded, upstream: Upstream, idle: Duration) -> std::io::Result<Spliced> {
    let (upstream, buffered) = match upstream {
        Upstream::Io(io) => return splice(TokioIo::new(client), io, idle).await,
        Upstream::Tcp(tcp, buffered) => (tcp, buffered),
    };
    #[cfg(target_os = "linux")]
    let client = match client.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let client = parts.io.into_inner();
            match crate::splice_tcp::Pipes::new() {
                Ok(pipes) => {
                    return crate::splice_tcp::splice_tcp(
                        client,
                        parts.read_buf,
                        upstream,
                        buffered,
                        pipes,
                        idle,
                    )
                    .await
                }
                Err(e) => {
                    tracing::debug!("no pipes for splice(2), the tunnel is copied: {e}");
                    return copy(client, parts.read_buf, upstream, buffered, idle).await;
                }
            }
        }
        Err(client) => client,
    };
    copy(TokioIo::new(client), Bytes::new(), upstream, buffered, idle).await
}

/// The copy loop, after the bytes already read from either side (`client_buffered`
/// goes upstream first, `upstream_buffered` to the client).
async fn copy<C: Io>(
    mut client: C,
    client_buffered: Bytes,
    mut upstream: TcpStream,
    upstream_buffered: Bytes,
    idle: Duration,
) -> std::io::Result<Spliced> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "tunnel idle");
    tokio::time::timeout(idle, upstream.write_all(&client_buffered))
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(idle, client.write_all(&upstream_buffered))
        .await
        .map_err(|_| timed_out())??;
    let mut spliced = splice(client, upstream, idle).await?;
    spliced.up += client_buffered.len() as u64;
    spliced.down += upstream_buffered.len() as u64;
    Ok(spliced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pair;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_copy_fallback_sends_the_bytes_already_read_first_and_counts_them() {
        let (mut client_far, client) = pair().await;
        let (upstream, mut upstream_far) = pair().await;
        let task = tokio::spawn(copy(
            client,
            Bytes::from_static(b"early "),
            upstream,
            Bytes::from_static(b"ready "),
            Duration::from_secs(10),
        ));
        client_far.write_all(b"up").await.unwrap();
        client_far.shutdown().await.unwrap();
        upstream_far.write_all(b"down").await.unwrap();
        upstream_far.shutdown().await.unwrap();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        upstream_far.read_to_end(&mut up).await.unwrap();
        client_far.read_to_end(&mut down).await.unwrap();
        assert_eq!((&up[..], &down[..]), (&b"early up"[..], &b"ready down"[..]));
        let s = task.await.unwrap().unwrap();
        assert_eq!((s.up, s.down, s.kernel), (8, 10, false));
    }
}
