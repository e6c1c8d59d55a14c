//! The load generator behind `kerbside bench`: it speaks Negotiate, to measure a
//! kerberized server (wrk, ab and oha cannot authenticate).
//!
//! The generator measures the server, not itself: Kerberos tokens cost the client
//! 100–300 µs each, so every token a run needs is made ahead of the timed window,
//! on the blocking pool, each with its own GSSAPI context kept to verify the
//! server's final token afterwards. With [`Config::requests`] a run knows how many it
//! needs; with only a [`Config::duration`] it makes a bounded pool ([`Config::tokens`])
//! and stops early, saying so, when the pool runs out. Every response is checked
//! (status, and the final `WWW-Authenticate: Negotiate` token against the exchange's
//! context); a failure is counted as an error of a named [`ErrorKind`], never as a
//! success.
//!
//! The pieces, one idea each: `conn` resolves the target and makes connections,
//! `tokens` makes the tokens ahead, `load` runs the connections and checks every answer,
//! `cpu` reads the server's CPU time and memory from /proc, and `report` holds what the
//! run found. The `kerbside bench` command only turns its flags into a [`Config`] and
//! prints the [`Report`].
//!
//! ```no_run
//! # async fn example() -> Result<(), kerbside::bench::BenchError> {
//! use kerbside::bench::{run, Config, Mode};
//!
//! let mut config = Config::new("https://localhost:8443/");
//! config.mode = Mode::Handshake;
//! config.requests = Some(1000);
//! let report = run(config, |_note| {}).await?;
//! println!("{}", report.table());
//! # Ok(())
//! # }
//! ```

mod conn;
mod cpu;
mod failure;
mod load;
mod report;
mod tokens;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use kerbside_gssapi::{ClientCredentials, Delegation, InitiatorConfig};
use kerbside_proto::MutualAuth;
use serde::Serialize;

use conn::{Connector, Target};
use cpu::{clock_ticks, read_cpu, read_cpus, read_memory, server_processes, CpuTicks};
pub use failure::ErrorKind;
use load::{drive, Shared, Tally};
pub use report::Report;
use report::{IdleMemory, Latency, Mutual, ServerCpu, ServerMemory, Tokens};
use tokens::{make_tokens, TokenPool};

/// What each request of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Mode {
    /// Keep-alive requests without authentication.
    Plain,
    /// A fresh Negotiate token on every keep-alive request.
    PerRequest,
    /// A new connection for each exchange: request, 401, token, final response.
    Handshake,
    /// A token once per connection, then plain requests (with the session cookie the
    /// server set, if any).
    Reuse,
}

impl Mode {
    /// The mode's name, as `kerbside bench --mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::PerRequest => "per-request",
            Self::Handshake => "handshake",
            Self::Reuse => "reuse",
        }
    }
}

/// What a run does and measures. [`Config::new`] gives `kerbside bench`'s defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The URL to request (https:// or http://).
    pub url: String,
    /// What each request does.
    pub mode: Mode,
    /// How many connections run requests at once (at least 1).
    pub connections: usize,
    /// Run for this long; with [`requests`](Self::requests), whichever ends first.
    /// Without either, 10 seconds.
    pub duration: Option<Duration>,
    /// Send this many requests (exchanges in handshake mode).
    pub requests: Option<u64>,
    /// The most tokens made ahead when only the duration bounds the run.
    pub tokens: usize,
    /// The status a successful request gets.
    pub expect_status: u16,
    /// Give up on a request (a [`ErrorKind::Timeout`]) after this long; also the
    /// longest a connection may take.
    pub timeout: Duration,
    /// Allow a target that is not on a loopback address.
    pub allow_remote: bool,
    /// Measure these server processes' CPU time (summed) per successful request.
    pub server_pids: Vec<u32>,
    /// Count the children of each server process too (e.g. Apache's workers).
    pub server_children: bool,
    /// Report the servers' memory growth per open idle connection after the run.
    pub server_memory: bool,
    /// With [`server_memory`](Self::server_memory): hold the connections open and
    /// idle this long after the run, then read the servers' memory once more.
    pub idle: Option<Duration>,
    /// Kerberos service name instead of `HTTP@<host of the URL>`.
    pub spn: Option<String>,
    /// How strictly the server's final token is checked.
    pub mutual: MutualAuth,
    /// Bind tokens to the TLS channel (RFC 5929 tls-server-end-point) on HTTPS.
    pub channel_binding: bool,
    /// Where the Kerberos credentials come from.
    pub credentials: ClientCredentials,
    /// How the server's certificate is checked.
    pub tls: kerbside_client::TlsSettings,
}

impl Config {
    /// A run against `url` with `kerbside bench`'s defaults: per-request mode, 2
    /// connections, 10 seconds, a pool of at most 20000 tokens, status 200 expected,
    /// 10 s timeout, loopback only, mutual authentication optional, channel bindings
    /// on, the default ticket cache and the system's CA certificates.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            mode: Mode::PerRequest,
            connections: 2,
            duration: None,
            requests: None,
            tokens: 20000,
            expect_status: 200,
            timeout: Duration::from_secs(10),
            allow_remote: false,
            server_pids: Vec::new(),
            server_children: false,
            server_memory: false,
            idle: None,
            spn: None,
            mutual: MutualAuth::Optional,
            channel_binding: true,
            credentials: ClientCredentials::Default,
            tls: kerbside_client::TlsSettings::default(),
        }
    }
}

/// Something a run says while it goes, for a person watching.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Note {
    /// Tokens are about to be made ahead of the timed window.
    MakingTokens {
        /// How many.
        count: usize,
        /// For which service.
        target: String,
    },
    /// The run is long enough for its tokens to age past the server's clock-skew window.
    TokensMayExpire,
    /// Once a second during the timed window.
    Progress {
        /// Since the window started.
        elapsed: Duration,
        /// Successful requests so far.
        ok: u64,
        /// Failed requests so far.
        failed: u64,
        /// Successful requests in the last second.
        last_second: u64,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MakingTokens { count, target } => {
                write!(f, "making {count} tokens for {target} ahead of the run")
            }
            Self::TokensMayExpire => f.write_str(
                "warning: tokens older than the server's clock-skew window (usually 5 \
                 minutes) are refused; keep token runs under 4 minutes",
            ),
            Self::Progress {
                elapsed,
                ok,
                failed,
                last_second,
            } => write!(
                f,
                "{:>5.0} s  {ok} ok  {failed} errors  {last_second} requests/s",
                elapsed.as_secs_f64()
            ),
        }
    }
}

/// Why a run could not be made (as opposed to requests that failed, which the
/// [`Report`] counts): a bad configuration, a target that cannot be reached, no
/// credentials for a token, /proc not readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchError {
    message: String,
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BenchError {}

impl From<String> for BenchError {
    fn from(message: String) -> Self {
        Self { message }
    }
}

/// How many tokens a run makes ahead.
fn tokens_needed(config: &Config) -> usize {
    let requests = config
        .requests
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match config.mode {
        Mode::Plain => 0,
        Mode::PerRequest | Mode::Handshake => requests.unwrap_or(config.tokens),
        // One per connection, and as many again for connections the server closes.
        Mode::Reuse => {
            let per_connection = config.connections.saturating_mul(2).saturating_add(8);
            requests.map_or(per_connection, |n| n.min(per_connection))
        }
    }
}

/// Runs the load `config` describes and reports what it found; `notes` hears what
/// the run says while it goes ([`Note`]), from the task that runs it and, once a
/// second, from a progress task.
///
/// An `Err` means the run could not be made; requests that failed are counted in the
/// [`Report`] ([`Report::succeeded`]).
pub async fn run(
    config: Config,
    notes: impl Fn(Note) + Send + Sync + 'static,
) -> Result<Report, BenchError> {
    Ok(bench(config, Arc::new(notes)).await?)
}

async fn bench(config: Config, notes: Arc<dyn Fn(Note) + Send + Sync>) -> Result<Report, String> {
    if config.connections == 0 {
        return Err("--connections must be at least 1".to_owned());
    }
    if config.requests == Some(0) {
        return Err("--requests must be at least 1".to_owned());
    }
    let duration = match (config.duration, config.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let target = Arc::new(Target::resolve(&config).await?);
    let connector = Connector::new(target.clone(), &config)?;
    // One connection first: the server is there, TLS works, and the certificate gives
    // the channel binding every token is made with.
    let (_, binding) = connector.connect().await.map_err(|f| f.message)?;

    let count = tokens_needed(&config);
    let mut tokens = None;
    let mut exchanges = Vec::new();
    if count > 0 {
        if duration.is_some_and(|d| d > Duration::from_secs(240)) {
            notes(Note::TokensMayExpire);
        }
        let initiator = InitiatorConfig {
            target: config
                .spn
                .clone()
                .unwrap_or_else(|| format!("HTTP@{}", target.host)),
            mutual: config.mutual,
            delegation: Delegation::None,
            credentials: config.credentials.clone(),
            channel_bindings: binding.filter(|_| config.channel_binding),
        };
        notes(Note::MakingTokens {
            count,
            target: initiator.target.clone(),
        });
        let started = Instant::now();
        exchanges = make_tokens(initiator, count)
            .await
            .map_err(|e| format!("cannot make a token: {e}"))?;
        let took = started.elapsed().as_secs_f64();
        tokens = Some(Tokens {
            made: exchanges.len(),
            left_over: 0,
            generation_s: took,
            us_each: took * 1e6 / exchanges.len().max(1) as f64,
        });
    }

    let watched = server_processes(&config.server_pids, config.server_children);
    let memory_before = if config.server_memory {
        Some(read_memory(&watched)?)
    } else {
        None
    };
    // Keep-alive modes connect before the clock starts.
    let mut conns = Vec::new();
    for _ in 0..config.connections {
        conns.push(if config.mode == Mode::Handshake {
            None
        } else {
            Some(connector.connect().await.map_err(|f| f.message)?.0)
        });
    }

    let measure_cpu = !config.server_pids.is_empty();
    let ticks = measure_cpu.then(clock_ticks);
    for pid in &config.server_pids {
        read_cpu(*pid)?;
    }
    let processes_before = server_processes(&config.server_pids, config.server_children);
    let cpu_before = read_cpus(&processes_before);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        connector,
        mode: config.mode,
        expect: StatusCode::from_u16(config.expect_status)
            .map_err(|_| format!("{} is not an HTTP status", config.expect_status))?,
        timeout: config.timeout,
        pool: TokenPool {
            exchanges: Mutex::new(exchanges),
        },
        budget: config.requests.map(AtomicU64::new),
        deadline: duration.map(|d| started + d),
        stop: AtomicBool::new(false),
        stopped_early: Mutex::new(None),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(drive(shared.clone(), conn)))
        .collect();
    let progress = tokio::spawn(progress(shared.clone(), started, notes.clone()));
    let mut tally = Tally::new();
    let mut open = Vec::new();
    for worker in workers {
        let (t, conn) = worker
            .await
            .map_err(|e| format!("a connection's task failed: {e}"))?;
        tally.merge(t);
        open.extend(conn);
    }
    let elapsed = started.elapsed();
    let processes_after = server_processes(&config.server_pids, config.server_children);
    let cpu_after = read_cpus(&processes_after);
    let server_memory = match memory_before {
        Some((rss_before, pss_before)) => {
            // Let the server finish with the last responses before looking.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (rss_after, pss_after) = read_memory(&processes_after)?;
            let connections_open = open.iter().filter(|c| !c.sender.is_closed()).count();
            let settled = match config.idle {
                Some(idle) => {
                    tokio::time::sleep(idle).await;
                    let (rss, pss) = read_memory(&processes_after)?;
                    let still_open = open.iter().filter(|c| !c.sender.is_closed()).count();
                    Some(IdleMemory {
                        after_s: idle.as_secs_f64(),
                        rss_kib: rss,
                        pss_kib: pss,
                        connections_open: still_open,
                        pss_kib_per_connection: (still_open > 0)
                            .then(|| (pss as f64 - pss_before as f64) / still_open as f64),
                    })
                }
                None => None,
            };
            Some(ServerMemory {
                rss_before_kib: rss_before,
                rss_after_kib: rss_after,
                pss_before_kib: pss_before,
                pss_after_kib: pss_after,
                connections_open,
                connections_authenticated: if config.mode == Mode::Reuse {
                    connections_open
                } else {
                    0
                },
                pss_kib_per_connection: (connections_open > 0)
                    .then(|| (pss_after as f64 - pss_before as f64) / connections_open as f64),
                idle: settled,
            })
        }
        None => None,
    };
    drop(open);
    progress.abort();

    let successes = shared.ok.load(Ordering::Relaxed);
    let server_cpu = match (config.server_pids.first(), ticks) {
        (Some(&pid), Some(clk_tck)) => {
            let us = |t: u64| t * 1_000_000 / clk_tck;
            let zero = CpuTicks {
                own: 0,
                children: 0,
            };
            let (mut own, mut children) = (0, 0);
            for (p, after) in &cpu_after {
                let before = cpu_before.get(p).unwrap_or(&zero);
                own += after.own.saturating_sub(before.own);
                children += after.children.saturating_sub(before.children);
            }
            let own_us = us(own);
            let children_us = us(children);
            Some(ServerCpu {
                pid,
                pids: processes_after.clone(),
                processes_changed: processes_before != processes_after,
                clk_tck,
                own_us,
                children_us,
                us_per_request: (successes > 0)
                    .then(|| (own_us + children_us) as f64 / successes as f64),
            })
        }
        _ => None,
    };
    if let Some(t) = &mut tokens {
        t.left_over = shared.pool.left();
    }
    let latency = (successes > 0).then(|| Latency {
        p50: tally.latency.value_at_quantile(0.5),
        p90: tally.latency.value_at_quantile(0.9),
        p99: tally.latency.value_at_quantile(0.99),
        max: tally.latency.max(),
        mean: tally.latency.mean(),
    });
    let report = Report {
        url: config.url.clone(),
        mode: config.mode,
        connections: config.connections,
        tls: target.tls,
        requests: successes + shared.failed.load(Ordering::Relaxed),
        successes,
        errors: ErrorKind::ALL
            .iter()
            .map(|k| (k.name(), tally.errors.get(k).map_or(0, |e| e.0)))
            .collect(),
        error_messages: tally
            .errors
            .iter()
            .map(|(k, (_, message))| (k.name(), message.clone()))
            .collect(),
        statuses: tally.statuses.clone(),
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_sec: successes as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us: latency,
        mutual: Mutual {
            policy: config.mutual.to_string(),
            verified: tally.verified,
            not_sent: tally.not_sent,
        },
        tokens,
        server_cpu,
        server_memory,
        stopped_early: shared
            .stopped_early
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    };
    Ok(report)
}

/// Tells `notes` how the run goes, once a second.
async fn progress(shared: Arc<Shared>, started: Instant, notes: Arc<dyn Fn(Note) + Send + Sync>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let ok = shared.ok.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        notes(Note::Progress {
            elapsed: started.elapsed(),
            ok,
            failed,
            last_second: ok - last,
        });
        last = ok;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_runs_make_as_many_tokens_as_they_can_use() {
        let mut config = Config::new("https://localhost/");
        config.requests = Some(50);
        assert_eq!(tokens_needed(&config), 50);
        config.requests = None;
        assert_eq!(tokens_needed(&config), 20000);
        config.mode = Mode::Plain;
        assert_eq!(tokens_needed(&config), 0);
        config.mode = Mode::Reuse;
        config.connections = 4;
        assert_eq!(tokens_needed(&config), 16);
        config.requests = Some(3);
        assert_eq!(tokens_needed(&config), 3);
    }
}
