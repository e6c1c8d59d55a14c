//! Prometheus metrics of the proxy (`--metrics ADDR`): counters of requests and
//! tunnels by route and upstream, authentication handshakes and failures by
//! scheme, upstream failures, PAC failures by kind; a histogram of PAC evaluation
//! times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The counters and histograms, by name and label set.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, String), Histogram>>,
}

/// One histogram's counts: per bucket (not cumulative), the sum and the count.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The time of one `FindProxyForURL` call, in seconds.
pub const PAC_EVALUATION_SECONDS: &str = "kerbside_proxy_pac_evaluation_seconds";

/// Upper bounds of the PAC evaluation buckets, in seconds: a plain script takes
/// tens of microseconds, one that resolves names milliseconds, the limit is 3 s.
const PAC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every histogram: name, help text and bucket bounds.
const HISTOGRAMS: &[(&str, &str, &[f64])] = &[(
    PAC_EVALUATION_SECONDS,
    "Time of each PAC FindProxyForURL call (cached answers are not counted), failures included.",
    PAC_BUCKETS,
)];

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
    (
        "kerbside_proxy_pac_failures_total",
        "PAC failures, by kind: fetch, script, no-function, exception, not-a-string, \
         bad-answer, time-limit, memory-limit, engine.",
    ),
];

fn render_labels(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Adds one to `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        let labels = render_labels(labels);
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry((name, labels)).or_default() += 1;
    }

    /// Records `value` (seconds) in histogram `name` with `labels`.
    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let Some((_, _, bounds)) = HISTOGRAMS.iter().find(|(n, _, _)| *n == name) else {
            return;
        };
        let labels = render_labels(labels);
        let mut histograms = self
            .histograms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = histograms.entry((name, labels)).or_default();
        if h.buckets.len() != bounds.len() {
            h.buckets = vec![0; bounds.len()];
        }
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            h.buckets[i] += 1;
        }
        h.sum += value;
        h.count += 1;
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
        drop(counters);
        let histograms = self
            .histograms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, help, bounds) in HISTOGRAMS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for ((n, labels), h) in histograms.iter() {
                if n != name {
                    continue;
                }
                let sep = if labels.is_empty() { "" } else { "," };
                let mut cumulative = 0;
                for (bound, count) in bounds.iter().zip(&h.buckets) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
                    );
                }
                let braced = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{labels}}}")
                };
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}\n{name}_sum{braced} {}\n\
                     {name}_count{braced} {}",
                    h.count, h.sum, h.count
                );
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

    #[test]
    fn renders_cumulative_histogram_buckets() {
        let m = Metrics::default();
        m.observe(PAC_EVALUATION_SECONDS, &[], 0.0002);
        m.observe(PAC_EVALUATION_SECONDS, &[], 0.003);
        m.observe(PAC_EVALUATION_SECONDS, &[], 30.0);
        m.observe("unknown", &[], 1.0);
        let text = m.render();
        for line in [
            "# TYPE kerbside_proxy_pac_evaluation_seconds histogram",
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"0.0001\"} 0",
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"0.00025\"} 1",
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"0.005\"} 2",
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"5\"} 2",
            "kerbside_proxy_pac_evaluation_seconds_bucket{le=\"+Inf\"} 3",
            "kerbside_proxy_pac_evaluation_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(!text.contains("unknown"), "{text}");
    }
}
