//! `kerbside bench`: the command's arguments, and how they resolve into the load
//! generator's [`Config`] (the generator itself is the library module
//! [`kerbside::bench`]); then the report, printed as a table or JSON.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kerbside::bench::{Config, Mode, Note};
use kerbside_gssapi::ClientCredentials;
use kerbside_proto::MutualAuth;

/// Arguments of `kerbside bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
Modes: `plain` sends keep-alive requests without authentication; `per-request` sends a \
fresh Negotiate token with every keep-alive request; `handshake` opens a new connection \
for each exchange: request, 401, token, final response; `reuse` authenticates once per \
connection with a token, then sends plain requests, returning any cookie the server set \
(a session cookie) or relying on `Persistent-Auth: true`.

Tokens: made ahead of the timed window, one per request (per-request, handshake) or per \
connection (reuse), each with its own GSSAPI context to verify the server's final token. \
With --requests N exactly as many are made; with only --duration a pool of --tokens is \
made and the run stops early, saying so, if it runs out (each token waiting in the pool \
holds a GSSAPI context, about 5 KB: 20000 take about 100 MB). Tokens are single use (servers \
keep a replay cache) and older than the 5-minute clock-skew window they are refused, so \
keep token runs under 4 minutes. Credentials come from the default ticket cache \
(KRB5CCNAME) or --ccache; a FILE: cache is read for each token, so a cache in the kernel \
keyring (KEYRING:) or on tmpfs makes token generation faster; --keytab keeps tickets in a \
memory cache of this process, the fastest.

Measures: requests/s counts successful requests (exchanges in handshake mode) over the \
timed window, from the first request to the last response; latency covers successful \
requests only, from sending (connecting, in handshake mode) to the last body byte. With \
--server-pid, the server's CPU time comes from /proc/PID/stat (utime+stime of all its \
threads, plus cutime+cstime: children it reaped during the window, such as CGI scripts) \
in clock ticks of `getconf CLK_TCK` (100 if that fails), so the figure is only as fine as \
10 ms over the window: run for a few seconds for a good figure. Several servers (repeat \
--server-pid or separate pids with commas) are summed; --server-children adds every \
process whose parent is one of them (Apache's workers), listed at the start and again at \
the end of the window: a process that came or went in between is reported \
(`processes_changed`), as its CPU time is then only partly in the window. \
--server-memory reads the servers' RSS and PSS (/proc/PID/smaps_rollup) before the \
keep-alive connections open and again after the run with all of them still open and \
idle, and reports the growth per open connection (use reuse mode against a \
connection-bound server for the memory of an idle authenticated connection). With \
--idle DURATION the connections are then held open and idle that long and the memory \
read once more: the figure a long-running server settles at, once it has given back \
what the burst of the run left behind.

Only HTTP/1.1 is spoken. Targets must resolve to loopback addresses unless \
--allow-remote. A progress line is written to standard error once a second when it is a \
terminal and --json is not given.

Exit status: 0 every request succeeded, 1 the run could not be made, 2 some requests \
failed (the report says which and why).")]
pub struct BenchArgs {
    /// The URL to request (https:// or http://).
    pub url: String,

    /// What each request does.
    #[arg(long, value_enum, default_value = "per-request")]
    pub mode: ModeArg,

    /// How many connections run requests at once.
    #[arg(short = 'c', long, value_name = "N", default_value = "2")]
    pub connections: usize,

    /// Run for this long (`500ms`, `5s`, `1m`); with --requests, whichever ends first.
    /// Without either, 10 seconds.
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Send this many requests (exchanges in handshake mode).
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// The most tokens made ahead when only --duration bounds the run.
    #[arg(long, value_name = "N", default_value = "20000")]
    pub tokens: usize,

    /// The status a successful request gets.
    #[arg(long, value_name = "CODE", default_value = "200")]
    pub expect_status: u16,

    /// Give up on a request (counted as a `timeout` error) after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Allow a target that is not on a loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// Report the CPU time this server process (and the children it reaped) used per
    /// successful request, from /proc/PID/stat; repeat (or separate with commas) to sum
    /// several processes.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Count the children of each --server-pid too (e.g. Apache's worker processes).
    #[arg(long, requires = "server_pid")]
    pub server_children: bool,

    /// Report the servers' memory growth per open idle connection after the run.
    #[arg(long, requires = "server_pid")]
    pub server_memory: bool,

    /// With --server-memory: hold the connections open and idle this long after the
    /// run, then read the servers' memory again (e.g. 15s).
    #[arg(long, value_name = "DURATION", requires = "server_memory", value_parser = parse_duration)]
    pub idle: Option<Duration>,

    /// Print the report as JSON (and no progress or notes on standard error).
    #[arg(long)]
    pub json: bool,

    /// Kerberos service name instead of HTTP@<host of the URL>: `HTTP@host` or
    /// `HTTP/host@REALM`.
    #[arg(long, value_name = "NAME", help_heading = "Authentication")]
    pub spn: Option<String>,

    /// Mutual authentication: `required` (every authenticated response must carry a
    /// final token that verifies), `optional` (verify the token when sent), `off`.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "optional",
        help_heading = "Authentication"
    )]
    pub mutual: MutualAuth,

    /// Bind tokens to the TLS channel (RFC 5929 tls-server-end-point) on HTTPS.
    #[arg(
        long,
        value_enum,
        value_name = "ON|OFF",
        default_value = "on",
        help_heading = "Authentication"
    )]
    pub channel_binding: super::client_args::Switch,

    /// Use this ticket cache instead of the default (KRB5CCNAME).
    #[arg(long, value_name = "CCACHE", help_heading = "Authentication")]
    pub ccache: Option<String>,

    /// Get tickets with this client keytab, kept in a memory cache of this process.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "ccache",
        help_heading = "Authentication"
    )]
    pub keytab: Option<PathBuf>,

    /// The principal to get tickets for with --keytab (default: the keytab's first).
    #[arg(
        long,
        value_name = "PRINCIPAL",
        requires = "keytab",
        help_heading = "Authentication"
    )]
    pub principal: Option<String>,

    /// Trust only the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub cacert: Option<PathBuf>,

    /// Do not verify the server's TLS certificate.
    #[arg(short = 'k', long, help_heading = "TLS")]
    pub insecure: bool,
}

/// What each request of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
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

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Plain => Self::Plain,
            ModeArg::PerRequest => Self::PerRequest,
            ModeArg::Handshake => Self::Handshake,
            ModeArg::Reuse => Self::Reuse,
        }
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 5s, 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl BenchArgs {
    /// The generator's configuration these arguments describe.
    fn resolve(self) -> Config {
        let mut config = Config::new(self.url);
        config.mode = self.mode.into();
        config.connections = self.connections;
        config.duration = self.duration;
        config.requests = self.requests;
        config.tokens = self.tokens;
        config.expect_status = self.expect_status;
        config.timeout = self.timeout;
        config.allow_remote = self.allow_remote;
        config.server_pids = self.server_pid;
        config.server_children = self.server_children;
        config.server_memory = self.server_memory;
        config.idle = self.idle;
        config.spn = self.spn;
        config.mutual = self.mutual;
        config.channel_binding = self.channel_binding == super::client_args::Switch::On;
        config.credentials = match (self.ccache, self.keytab) {
            (Some(cc), _) => ClientCredentials::Ccache(cc),
            (None, Some(path)) => ClientCredentials::Keytab {
                path,
                principal: self.principal,
            },
            (None, None) => ClientCredentials::Default,
        };
        config.tls = kerbside_client::TlsSettings {
            ca_file: self.cacert,
            insecure: self.insecure,
        };
        config
    }
}

/// Runs `kerbside bench`: notes and a progress line on standard error (a progress line
/// only on a terminal, neither with `--json`), the report on standard output.
pub async fn run(args: BenchArgs) -> ExitCode {
    let json = args.json;
    let progress = !json && std::io::stderr().is_terminal();
    let notes = move |note: Note| match note {
        Note::Progress { .. } if progress => eprint!("\r\x1b[K{note}"),
        Note::Progress { .. } => {}
        note if !json => eprintln!("kerbside bench: {note}"),
        _ => {}
    };
    let report = match kerbside::bench::run(args.resolve(), notes).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("kerbside bench: {e}");
            return ExitCode::from(1);
        }
    };
    if progress {
        eprint!("\r\x1b[K");
    }
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.table());
    }
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
