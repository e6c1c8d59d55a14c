//! Prometheus counters of the proxy (`--metrics ADDR`): requests and tunnels by
//! route and upstream, authentication handshakes and failures by scheme, upstream
//! failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The counters, by name and label set.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

/// Every counter: name and help text.
const COUNTERS: &[(&str, &str)] = &[
    (
        "kerbside_proxy_requests_total",
        "Plain-HTTP requests forwarded, by route (direct or proxy), upstream and status class.",
    ),
    (
        "kerbside_proxy_tunnels_total",
        "CONNECT tunnels opened, by route and upstream.",
    ),
    (
        "kerbside_proxy_refused_total",
        "Requests refused before forwarding, by reason.",
    ),
    (
        "kerbside_proxy_errors_total",
        "Requests and tunnels that failed, by the status the client got.",
    ),
    (
        "kerbside_proxy_auth_handshakes_total",
        "Completed authentications to upstream proxies (or origins), by scheme.",
    ),
    (
        "kerbside_proxy_auth_failures_total",
        "Authentications refused or failed, by scheme.",
    ),
    (
        "kerbside_proxy_upstream_failures_total",
        "Upstreams that could not be connected or answered 5xx to CONNECT.",
    ),
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Adds one to `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry((name, labels)).or_default() += 1;
    }

    /// The value of one counter (for tests and `--check`).
    pub fn get(&self, name: &str, labels: &str) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .iter()
            .find(|((n, l), _)| *n == name && l == labels)
            .map_or(0, |(_, v)| *v)
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), value) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let m = Metrics::default();
        m.inc(
            "kerbside_proxy_tunnels_total",
            &[("route", "proxy"), ("upstream", "a\"b")],
        );
        m.inc(
            "kerbside_proxy_tunnels_total",
            &[("route", "proxy"), ("upstream", "a\"b")],
        );
        let text = m.render();
        assert!(
            text.contains("kerbside_proxy_tunnels_total{route=\"proxy\",upstream=\"a\\\"b\"} 2"),
            "{text}"
        );
        assert!(text.contains("# TYPE kerbside_proxy_auth_failures_total counter"));
    }
}
