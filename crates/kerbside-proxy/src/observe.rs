//! What the client library reports while it carries out one request or tunnel:
//! logged at debug level (`-v`), redacted as the library redacts it, and counted.

use std::sync::{Arc, Mutex};

use kerbside_client::{Event, Observer};

use crate::metrics::Metrics;

/// Watches one request or tunnel.
pub(crate) struct RequestObserver {
    /// Which request, for log lines.
    pub id: u64,
    pub metrics: Arc<Metrics>,
    /// The scheme last chosen, for a failure's label.
    pub scheme: Mutex<Option<String>>,
}

impl RequestObserver {
    pub(crate) fn new(id: u64, metrics: Arc<Metrics>) -> Self {
        Self {
            id,
            metrics,
            scheme: Mutex::new(None),
        }
    }

    /// The scheme of the exchange in progress, or `none`.
    pub(crate) fn scheme(&self) -> String {
        self.scheme
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "none".to_owned())
    }
}

impl Observer for RequestObserver {
    fn event(&self, event: &Event) {
        let id = self.id;
        match event {
            Event::Scheme {
                proxy,
                scheme,
                scheme_reason,
                target,
                target_reason,
                ..
            } => {
                *self
                    .scheme
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(scheme.clone());
                tracing::debug!(
                    request = id,
                    to = if *proxy { "upstream proxy" } else { "origin" },
                    %scheme,
                    reason = %scheme_reason,
                    as_ = %target,
                    why = %target_reason,
                    "auth: answering"
                );
            }
            Event::Authenticated {
                proxy,
                scheme,
                legs,
                ..
            } => {
                self.metrics.inc(
                    "kerbside_proxy_auth_handshakes_total",
                    &[
                        ("scheme", scheme),
                        ("peer", if *proxy { "proxy" } else { "origin" }),
                    ],
                );
                tracing::debug!(request = id, %scheme, legs, proxy, "auth: done");
            }
            Event::Request {
                conn,
                line,
                headers,
            } => {
                tracing::debug!(request = id, conn, %line, headers = ?headers, "upstream request");
            }
            Event::Response {
                conn,
                line,
                headers,
            } => {
                tracing::debug!(request = id, conn, %line, headers = ?headers, "upstream response");
            }
            Event::Connecting { host, port, .. } => {
                tracing::debug!(request = id, %host, port, "connecting");
            }
            Event::Reusing {
                conn,
                authenticated,
            } => tracing::debug!(request = id, conn, authenticated, "reusing a connection"),
            Event::Notice { message } => tracing::debug!(request = id, "{message}"),
            Event::Retrying { reason } => {
                tracing::debug!(request = id, "starting over on a new connection: {reason}");
            }
            _ => {}
        }
    }
}
