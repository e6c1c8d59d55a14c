//! Plain-HTTP requests (`GET http://host/path HTTP/1.1`, absolute form): the
//! route is chosen, the request goes through the first upstream that answers (or
//! directly), with the hop-by-hop fields of both hops removed; the client's own
//! `Proxy-Authorization` never goes on.

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, EXPECT, HOST, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use kerbside_client::{BoxError, RequestBody};
use kerbside_proto::forward_proxy::route::RouteChoice;

use crate::observe::RequestObserver;
use crate::response::{status_for, text, ProxyBody};
use crate::route_source::RouteQuery;
use crate::server::Shared;

/// Removes the hop-by-hop fields (the fixed list and those `Connection` names).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = kerbside_proto::hop_by_hop::connection_options(
        headers
            .get_all(http::header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    );
    for name in named {
        headers.remove(name.as_str());
    }
    for name in kerbside_proto::hop_by_hop::HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// What a route query for `uri` is.
pub(crate) fn query_for(uri: &Uri) -> Option<RouteQuery> {
    let host = uri.host()?;
    let tls = uri.scheme_str() == Some("https");
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    Some(RouteQuery {
        url: uri.to_string(),
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        host,
        // An https:// URL in absolute form still goes through CONNECT upstream.
        tunnel: tls,
    })
}

/// Forwards one absolute-form request.
pub(crate) async fn forward(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    id: u64,
) -> Response<ProxyBody> {
    let (mut parts, body) = request.into_parts();
    let uri = parts.uri.clone();
    let Some(query) =
        query_for(&uri).filter(|_| matches!(uri.scheme_str(), Some("http" | "https")))
    else {
        shared
            .metrics
            .inc("kerbside_proxy_refused_total", &[("reason", "bad-target")]);
        return text(
            StatusCode::BAD_REQUEST,
            format!("kerbside proxy: {uri:?} is not an http:// or https:// URL"),
        );
    };
    let route = shared.routes.route(&query).await;
    let choices = shared.upstreams.order(&route.choices);
    tracing::debug!(
        request = id,
        method = %parts.method,
        url = %uri,
        route = %choices.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        reason = %route.reason,
        "route"
    );
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(HOST);
    // The client library decides for itself whether to wait for `100 Continue`.
    parts.headers.remove(EXPECT);
    let len = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let empty = http_body::Body::is_end_stream(&body) || len == Some(0);
    let mut body = if empty {
        None
    } else {
        Some(RequestBody::stream(
            body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
            len,
        ))
    };
    let observer = RequestObserver::new(id, shared.metrics.clone());
    let mut last_error = None;
    for (i, choice) in choices.iter().enumerate() {
        let (client, upstream) = match choice {
            RouteChoice::Direct => (shared.upstreams.direct().clone(), None),
            RouteChoice::Proxy(u) => match shared.upstreams.client(u) {
                Ok(c) => (c, Some(u)),
                Err(e) => {
                    tracing::warn!(request = id, upstream = %u, "skipped: {e}");
                    continue;
                }
            },
        };
        let attempt_body = if empty {
            RequestBody::empty()
        } else {
            match body.take() {
                Some(b) => b,
                None => break,
            }
        };
        let mut upstream_request = Request::new(attempt_body);
        *upstream_request.method_mut() = parts.method.clone();
        *upstream_request.uri_mut() = uri.clone();
        *upstream_request.headers_mut() = parts.headers.clone();
        match client.send(upstream_request, &observer).await {
            Ok(response) => {
                if let Some(u) = upstream {
                    shared.upstreams.succeeded(u);
                }
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                if shared.origin_auth && head.status != StatusCode::UNAUTHORIZED {
                    // A final Negotiate token was for the proxy, not for the tool.
                    head.headers.remove(WWW_AUTHENTICATE);
                }
                let route_label = if upstream.is_some() {
                    "proxy"
                } else {
                    "direct"
                };
                let upstream_label = upstream.map_or_else(String::new, ToString::to_string);
                let class = format!("{}xx", head.status.as_u16() / 100);
                shared.metrics.inc(
                    "kerbside_proxy_requests_total",
                    &[
                        ("route", route_label),
                        ("upstream", &upstream_label),
                        ("status", &class),
                    ],
                );
                tracing::info!(
                    request = id,
                    method = %parts.method,
                    url = %uri,
                    via = %choice,
                    status = head.status.as_u16(),
                    "forwarded"
                );
                return Response::from_parts(
                    head,
                    body.map_err(|e| Box::new(e) as BoxError).boxed(),
                );
            }
            Err(e) => {
                // The upstream itself failed (no TCP connection, no TLS with an
                // https:// proxy, a deadline): the next route may do.
                let upstream_failed = e.is_connect() || e.is_timeout() || e.is_proxy_tls();
                let retryable = upstream_failed && empty;
                if e.is_auth() || e.is_policy() {
                    shared.metrics.inc(
                        "kerbside_proxy_auth_failures_total",
                        &[("scheme", &observer.scheme())],
                    );
                }
                if let Some(u) = upstream {
                    if upstream_failed {
                        shared.upstreams.failed(u, &e.to_string());
                    }
                }
                if retryable && i + 1 < choices.len() {
                    tracing::info!(request = id, via = %choice, "trying the next route: {e}");
                    last_error = Some(e);
                    continue;
                }
                return failure(&shared, id, &parts.method, &uri, choice, &e);
            }
        }
    }
    let message = match last_error {
        Some(e) => format!("kerbside proxy: no route to {uri} worked; the last: {e}"),
        None => format!(
            "kerbside proxy: no usable route to {uri} ({})",
            route.reason
        ),
    };
    tracing::warn!(request = id, url = %uri, "{message}");
    shared
        .metrics
        .inc("kerbside_proxy_errors_total", &[("status", "502")]);
    text(StatusCode::BAD_GATEWAY, message)
}

fn failure(
    shared: &Shared,
    id: u64,
    method: &http::Method,
    uri: &Uri,
    via: &RouteChoice,
    e: &kerbside_client::Error,
) -> Response<ProxyBody> {
    let status = status_for(e);
    shared.metrics.inc(
        "kerbside_proxy_errors_total",
        &[("status", status.as_str())],
    );
    tracing::warn!(request = id, %method, url = %uri, %via, status = status.as_u16(), "failed: {e}");
    text(
        status,
        format!("kerbside proxy: {method} {uri} via {via}: {e}"),
    )
}
