//! What a run found: the [`Report`], printed as a table or as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Mode;

/// Latency percentiles, in microseconds.
#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub(super) p50: u64,
    pub(super) p90: u64,
    pub(super) p99: u64,
    pub(super) max: u64,
    pub(super) mean: f64,
}

/// The tokens made ahead.
#[derive(Debug, Serialize)]
pub(super) struct Tokens {
    pub(super) made: usize,
    pub(super) left_over: usize,
    pub(super) generation_s: f64,
    pub(super) us_each: f64,
}

/// The servers' memory before the connections opened and after the run with all of
/// them open.
#[derive(Debug, Serialize)]
pub(super) struct ServerMemory {
    pub(super) rss_before_kib: u64,
    pub(super) rss_after_kib: u64,
    pub(super) pss_before_kib: u64,
    pub(super) pss_after_kib: u64,
    /// Keep-alive connections still open when the memory was read.
    pub(super) connections_open: usize,
    /// Of those, connections that had authenticated (reuse mode).
    pub(super) connections_authenticated: usize,
    /// (PSS after − PSS before) / connections open.
    pub(super) pss_kib_per_connection: Option<f64>,
    /// The second reading, after the connections stayed idle (`--idle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle: Option<IdleMemory>,
}

/// The servers' memory read again after the connections stayed open and idle.
#[derive(Debug, Serialize)]
pub(super) struct IdleMemory {
    /// How long after the first reading.
    pub(super) after_s: f64,
    pub(super) rss_kib: u64,
    pub(super) pss_kib: u64,
    /// Keep-alive connections still open at the second reading.
    pub(super) connections_open: usize,
    /// (PSS now − PSS before the connections opened) / connections open.
    pub(super) pss_kib_per_connection: Option<f64>,
}

/// The server's CPU time over the timed window.
#[derive(Debug, Serialize)]
pub(super) struct ServerCpu {
    /// The first --server-pid.
    pub(super) pid: u32,
    /// Every process counted (with --server-children, as listed at the end).
    pub(super) pids: Vec<u32>,
    /// With --server-children: the process list differed between start and end.
    pub(super) processes_changed: bool,
    pub(super) clk_tck: u64,
    /// utime + stime, in microseconds.
    pub(super) own_us: u64,
    /// cutime + cstime (children reaped during the window), in microseconds.
    pub(super) children_us: u64,
    /// (own + children) / successful requests.
    pub(super) us_per_request: Option<f64>,
}

/// Mutual authentication over the run.
#[derive(Debug, Serialize)]
pub(super) struct Mutual {
    pub(super) policy: String,
    /// Final tokens that verified with their exchange's context.
    pub(super) verified: u64,
    /// Authenticated responses without a final token.
    pub(super) not_sent: u64,
}

/// The result of a run, printed as a table or as JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub(super) url: String,
    pub(super) mode: Mode,
    pub(super) connections: usize,
    pub(super) tls: bool,
    /// Requests that got an answer or failed (exchanges in handshake mode).
    pub(super) requests: u64,
    pub(super) successes: u64,
    /// Failed requests by kind, every kind present.
    pub(super) errors: BTreeMap<&'static str, u64>,
    /// The first failure's message of each kind that happened.
    pub(super) error_messages: BTreeMap<&'static str, String>,
    /// Final statuses received.
    pub(super) statuses: BTreeMap<u16, u64>,
    pub(super) elapsed_s: f64,
    /// Successful requests per second of the timed window.
    pub(super) requests_per_sec: f64,
    pub(super) latency_us: Option<Latency>,
    pub(super) mutual: Mutual,
    pub(super) tokens: Option<Tokens>,
    pub(super) server_cpu: Option<ServerCpu>,
    pub(super) server_memory: Option<ServerMemory>,
    /// Why the run ended before its bound, if it did.
    pub(super) stopped_early: Option<String>,
}

impl Report {
    /// Failed requests, every kind together.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Whether the run counts as a success: no failed request, and at least one that
    /// succeeded.
    pub fn succeeded(&self) -> bool {
        self.error_total() == 0 && self.successes > 0
    }

    /// Successful requests (exchanges in handshake mode).
    pub fn successes(&self) -> u64 {
        self.successes
    }

    /// The report as pretty-printed JSON (`kerbside bench --json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as the table `kerbside bench` prints.
    pub fn table(&self) -> String {
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        let mut lines = vec![
            ("target", self.url.clone()),
            (
                "mode",
                format!(
                    "{} ({} connection{}, HTTP/1.1{})",
                    self.mode.name(),
                    self.connections,
                    if self.connections == 1 { "" } else { "s" },
                    if self.tls { " over TLS" } else { "" }
                ),
            ),
            (
                "requests",
                format!(
                    "{} ok, {} errors in {:.3} s",
                    self.successes,
                    self.error_total(),
                    self.elapsed_s
                ),
            ),
            (
                "throughput",
                format!("{:.1} requests/s", self.requests_per_sec),
            ),
        ];
        lines.push((
            "latency",
            match &self.latency_us {
                Some(l) => format!(
                    "p50 {}, p90 {}, p99 {}, max {}",
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max)
                ),
                None => "no successful request".to_owned(),
            },
        ));
        lines.push((
            "statuses",
            self.statuses
                .iter()
                .map(|(s, n)| format!("{s} × {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        if self.mode != Mode::Plain {
            lines.push((
                "mutual auth",
                format!(
                    "{} verified, {} without a final token (--mutual {})",
                    self.mutual.verified, self.mutual.not_sent, self.mutual.policy
                ),
            ));
        }
        if let Some(t) = &self.tokens {
            lines.push((
                "tokens",
                format!(
                    "{} made ahead in {:.3} s ({:.0} µs each), {} left over",
                    t.made, t.generation_s, t.us_each, t.left_over
                ),
            ));
        }
        if let Some(cpu) = &self.server_cpu {
            let per = cpu
                .us_per_request
                .map_or("-".to_owned(), |us| format!("{us:.0} µs/request"));
            lines.push((
                "server CPU",
                format!(
                    "{per} (pid {}: {} ms own + {} ms reaped children; CLK_TCK {}{})",
                    cpu.pids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    cpu.own_us / 1000,
                    cpu.children_us / 1000,
                    cpu.clk_tck,
                    if cpu.processes_changed {
                        "; processes came or went during the run"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(m) = &self.server_memory {
            let per = m.pss_kib_per_connection.map_or("-".to_owned(), |k| {
                format!("{k:.1} KiB PSS per open connection")
            });
            lines.push((
                "server mem",
                format!(
                    "{per} ({} open, {} authenticated; PSS {} → {} KiB, RSS {} → {} KiB)",
                    m.connections_open,
                    m.connections_authenticated,
                    m.pss_before_kib,
                    m.pss_after_kib,
                    m.rss_before_kib,
                    m.rss_after_kib
                ),
            ));
            if let Some(idle) = &m.idle {
                let per = idle.pss_kib_per_connection.map_or("-".to_owned(), |k| {
                    format!("{k:.1} KiB PSS per open connection")
                });
                lines.push((
                    "idle mem",
                    format!(
                        "{per} after {:.0} s idle ({} open; PSS {} KiB, RSS {} KiB)",
                        idle.after_s, idle.connections_open, idle.pss_kib, idle.rss_kib
                    ),
                ));
            }
        }
        let failed: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        lines.push((
            "errors",
            if failed.is_empty() {
                "none".to_owned()
            } else {
                failed.join(", ")
            },
        ));
        let mut out = String::new();
        for (name, value) in lines {
            out.push_str(&format!("{name:<13}{value}\n"));
        }
        for (kind, message) in &self.error_messages {
            out.push_str(&format!("  {kind:<11}{message}\n"));
        }
        if let Some(reason) = &self.stopped_early {
            out.push_str(&format!("stopped early: {reason}\n"));
        }
        out
    }
}
