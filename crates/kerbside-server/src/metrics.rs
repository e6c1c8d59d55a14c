//! Prometheus metrics of the gate: handshakes by result, failure reasons, handshake
//! latency, active connections and session hits, and the limits at work: upstream
//! timeouts and failures, bodies over the limit, failed accepts, the connection cap.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    class: &'static str,
}

/// The gate's metrics. Cheap to clone; all clones count into the same registry.
#[derive(Clone)]
pub struct GateMetrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    handshakes: Family<ResultLabel, Counter>,
    failures: Family<ReasonLabel, Counter>,
    handshake_seconds: Histogram,
    active_connections: Gauge<i64, AtomicI64>,
    session_hits: Counter,
    connection_reuse: Counter,
    responses: Family<StatusLabel, Counter>,
    upstream_timeouts: Counter,
    upstream_failures: Counter,
    bodies_too_large: Counter,
    accept_failures: Counter,
    connection_cap_waits: Counter,
    proxy_protocol_refusals: Counter,
    replay_cache_unavailable: Counter,
    direct_accepts: Counter,
}

impl std::fmt::Debug for GateMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateMetrics")
    }
}

impl Default for GateMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GateMetrics {
    /// A fresh registry with every metric registered under the `kerbside_gate` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kerbside_gate");
        let handshakes = Family::<ResultLabel, Counter>::default();
        let failures = Family::<ReasonLabel, Counter>::default();
        let handshake_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let active_connections = Gauge::<i64, AtomicI64>::default();
        let session_hits = Counter::default();
        let connection_reuse = Counter::default();
        let responses = Family::<StatusLabel, Counter>::default();
        registry.register(
            "handshakes",
            "Kerberos handshakes (accepted tokens) by result",
            handshakes.clone(),
        );
        registry.register(
            "handshake_failures",
            "Refused tokens by reason",
            failures.clone(),
        );
        registry.register(
            "handshake_duration_seconds",
            "Time spent accepting one token (GSSAPI)",
            handshake_seconds.clone(),
        );
        registry.register(
            "active_connections",
            "Client connections open now",
            active_connections.clone(),
        );
        registry.register(
            "session_hits",
            "Requests authenticated by a session cookie",
            session_hits.clone(),
        );
        registry.register(
            "connection_reuse",
            "Requests authenticated by their connection (connection-bound mode)",
            connection_reuse.clone(),
        );
        registry.register("responses", "Responses by status class", responses.clone());
        let upstream_timeouts = Counter::default();
        let upstream_failures = Counter::default();
        let bodies_too_large = Counter::default();
        let accept_failures = Counter::default();
        let connection_cap_waits = Counter::default();
        let proxy_protocol_refusals = Counter::default();
        let replay_cache_unavailable = Counter::default();
        let direct_accepts = Counter::default();
        registry.register(
            "direct_accepts",
            "Kerberos logins accepted through krb5 directly (one leg, no GSSAPI SPNEGO \
             layer), counted for the whole process",
            direct_accepts.clone(),
        );
        registry.register(
            "replay_cache_unavailable",
            "Kerberos logins for which the shared replay cache (Redis) did not answer",
            replay_cache_unavailable.clone(),
        );
        registry.register(
            "proxy_protocol_refusals",
            "Connections closed before serving: no valid PROXY protocol header in time, or not from a trusted balancer",
            proxy_protocol_refusals.clone(),
        );
        registry.register(
            "upstream_timeouts",
            "Requests answered 504 because the upstream stalled (upstream-timeout)",
            upstream_timeouts.clone(),
        );
        registry.register(
            "upstream_failures",
            "Requests answered 502 because the upstream failed (refused, reset, bad answer)",
            upstream_failures.clone(),
        );
        registry.register(
            "request_bodies_too_large",
            "Requests answered 413 because the body was over max-body",
            bodies_too_large.clone(),
        );
        registry.register(
            "accept_failures",
            "Failed accepts of connections (EMFILE, ENFILE, ENOBUFS...)",
            accept_failures.clone(),
        );
        registry.register(
            "connection_cap_waits",
            "Times a listener stopped accepting because max-connections were open",
            connection_cap_waits.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            handshakes,
            failures,
            handshake_seconds,
            active_connections,
            session_hits,
            connection_reuse,
            responses,
            upstream_timeouts,
            upstream_failures,
            bodies_too_large,
            accept_failures,
            connection_cap_waits,
            proxy_protocol_refusals,
            replay_cache_unavailable,
            direct_accepts,
        }))
    }

    /// Counts one accepted (`ok`) or refused handshake and how long it took.
    pub fn handshake(&self, ok: bool, took: Duration) {
        self.0
            .handshakes
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "refused" },
            })
            .inc();
        self.0.handshake_seconds.observe(took.as_secs_f64());
    }

    /// Counts a refusal by its reason (a short snake_case word).
    pub fn failure(&self, reason: &str) {
        self.0
            .failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a request authenticated by its session cookie.
    pub fn session_hit(&self) {
        self.0.session_hits.inc();
    }

    /// Counts a request authenticated by its connection.
    pub fn connection_reuse(&self) {
        self.0.connection_reuse.inc();
    }

    /// Counts a response by status class.
    pub fn response(&self, status: http::StatusCode) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.0.responses.get_or_create(&StatusLabel { class }).inc();
    }

    /// Counts a request whose upstream stalled (`504`).
    pub fn upstream_timeout(&self) {
        self.0.upstream_timeouts.inc();
    }

    /// Counts a request whose upstream failed (`502`).
    pub fn upstream_failure(&self) {
        self.0.upstream_failures.inc();
    }

    /// Counts a request body over the limit (`413`).
    pub fn body_too_large(&self) {
        self.0.bodies_too_large.inc();
    }

    /// Counts a failed `accept()`.
    pub fn accept_failure(&self) {
        self.0.accept_failures.inc();
    }

    /// Counts a time the connection cap was reached.
    pub fn connection_cap_wait(&self) {
        self.0.connection_cap_waits.inc();
    }

    /// Counts a connection closed for its PROXY protocol header (or its absence).
    pub fn proxy_protocol_refused(&self) {
        self.0.proxy_protocol_refusals.inc();
    }

    /// Counts a login for which the shared replay cache did not answer.
    pub fn replay_cache_unavailable(&self) {
        self.0.replay_cache_unavailable.inc();
    }

    /// A connection opened; the returned guard counts it closed when dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.0.active_connections.inc();
        ConnectionGuard(self.clone())
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        // The direct accepts are counted by kerbside-gssapi for the process; brought
        // up to date here, when they are read.
        let direct = kerbside_gssapi::accepted_directly();
        let seen = self.0.direct_accepts.get();
        if direct > seen {
            self.0.direct_accepts.inc_by(direct - seen);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// Counts an open connection until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(GateMetrics);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0 .0.active_connections.dec();
    }
}

/// Short, stable names of refusal reasons for the metrics label.
pub(crate) fn reason_label(problem: kerbside_gssapi::Problem) -> &'static str {
    use kerbside_gssapi::Problem as P;
    match problem {
        P::NoCredentials => "no_credentials",
        P::ExpiredTicket => "expired_ticket",
        P::ClockSkew => "clock_skew",
        P::ServerPrincipalUnknown => "server_principal_unknown",
        P::ClientPrincipalUnknown => "client_principal_unknown",
        P::KeytabLacksKey => "keytab_lacks_key",
        P::WrongKeyVersion => "wrong_key_version",
        P::Integrity => "integrity",
        P::KdcUnreachable => "kdc_unreachable",
        P::RealmUnknown => "realm_unknown",
        P::Replay => "replay",
        P::DefectiveToken => "defective_token",
        P::ChannelBindings => "channel_bindings",
        P::Unsupported => "unsupported_mechanism",
        P::WrongPassword => "wrong_password",
        P::AccountRevoked => "account_revoked",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text_format() {
        let m = GateMetrics::new();
        m.handshake(true, Duration::from_micros(300));
        m.handshake(false, Duration::from_micros(100));
        m.failure("replay");
        m.session_hit();
        let guard = m.connection();
        let text = m.encode();
        assert!(
            text.contains("kerbside_gate_handshakes_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kerbside_gate_handshake_failures_total{reason=\"replay\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kerbside_gate_session_hits_total 1"),
            "{text}"
        );
        assert!(
            text.contains("kerbside_gate_active_connections 1"),
            "{text}"
        );
        drop(guard);
        assert!(m.encode().contains("kerbside_gate_active_connections 0"));
    }
}
