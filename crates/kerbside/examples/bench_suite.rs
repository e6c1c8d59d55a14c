//! The benchmark of issue 5, run by `scripts/bench.sh`: the gate in every auth mode
//! over HTTP and HTTPS, Apache 2 + mod_auth_gssapi as a reverse proxy in the matching
//! modes, both in front of the same lighttpd upstream, and a bare
//! `gss_accept_sec_context` loop; then `BENCHMARKS.md` and an SVG plot.
//!
//! Everything runs on this machine, in temporary directories, on free loopback ports:
//! a test realm (a real MIT KDC), a test CA, lighttpd serving a 96-byte file, the
//! gate (`kerbside gate`, the release binary) and a private Apache. Load comes from
//! `kerbside bench` with tokens made ahead; server CPU is read from /proc for the
//! gateway's processes only (never the upstream's). Each cell is the median of
//! several short rounds.
//!
//! ```text
//! cargo build --release -p kerbside --bin kerbside --example bench_suite
//! cargo build --release -p kerbside-gssapi --example accept_loop
//! target/release/examples/bench_suite --kerbside target/release/kerbside \
//!     --accept-loop target/release/examples/accept_loop --out BENCHMARKS.md \
//!     --svg docs/bench/cpu-per-request.svg
//! ```
#![allow(clippy::unwrap_used)]

#[path = "bench_support/gate_url.rs"]
mod gate_url;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kerbside_testkit::{free_port, Apache, ApacheOptions, TestCa, TestCert, TestRealm};
use serde_json::Value;

#[path = "bench_support/python.rs"]
mod python;

/// The upstream's page: 96 bytes.
const PAGE: &str = "kerbside bench upstream page: 96 bytes of text/plain, the same for every gateway measured.....\n";

struct Args {
    kerbside: PathBuf,
    accept_loop: PathBuf,
    out: PathBuf,
    svg: PathBuf,
    rounds: usize,
    round_secs: u64,
    accepts: usize,
    memory_conns: usize,
    command: String,
    /// The peers venv's Python (python-gssapi) for the second load generator.
    python: PathBuf,
    /// Start the gate in this mode (HTTPS), print how to reach it, and wait (for
    /// profiling by hand).
    hold: Option<String>,
}

fn parse() -> Args {
    let mut a = Args {
        kerbside: "target/release/kerbside".into(),
        accept_loop: "target/release/examples/accept_loop".into(),
        out: "BENCHMARKS.md".into(),
        svg: "docs/bench/cpu-per-request.svg".into(),
        rounds: 5,
        round_secs: 3,
        accepts: 5000,
        memory_conns: 1000,
        command: "scripts/bench.sh".into(),
        python: "target/peers-venv/bin/python".into(),
        hold: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--kerbside" => a.kerbside = v.into(),
            "--accept-loop" => a.accept_loop = v.into(),
            "--out" => a.out = v.into(),
            "--svg" => a.svg = v.into(),
            "--rounds" => a.rounds = v.parse().unwrap(),
            "--round-secs" => a.round_secs = v.parse().unwrap(),
            "--accepts" => a.accepts = v.parse().unwrap(),
            "--memory-conns" => a.memory_conns = v.parse().unwrap(),
            "--command" => a.command = v,
            "--hold" => a.hold = Some(v),
            "--python" => a.python = v.into(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The four ways of staying authenticated, as the gate names them.
const MODES: [&str; 4] = ["none", "per-request", "connection", "cookie"];

/// `kerbside bench --mode` for a gateway mode.
fn bench_mode(mode: &str) -> &'static str {
    match mode {
        "none" => "plain",
        "per-request" => "per-request",
        _ => "reuse",
    }
}

/// Apache's location for a mode (reverse-proxy mode of the testkit harness).
fn apache_path(mode: &str) -> &'static str {
    match mode {
        "none" => "/public/bench.txt",
        "per-request" => "/private/bench.txt",
        "connection" => "/bound/bench.txt",
        _ => "/session/bench.txt",
    }
}

/// One measured cell: medians over the rounds.
#[derive(Debug, Clone, Default)]
struct Cell {
    cpu_us: f64,
    rps: f64,
    errors: u64,
    rounds: Vec<f64>,
    note: String,
}

struct Env {
    args: Args,
    realm: TestRealm,
    cert: TestCert,
    ca_pem: PathBuf,
    alice_keytab: PathBuf,
    dir: tempfile::TempDir,
    log: String,
}

impl Env {
    fn say(&mut self, line: &str) {
        eprintln!("bench_suite: {line}");
        self.log.push_str(line);
        self.log.push('\n');
    }

    /// `kerbside bench URL --json ...`; the parsed report.
    fn bench(&self, url: &str, extra: &[String]) -> Value {
        let mut cmd = Command::new(&self.args.kerbside);
        cmd.envs(self.realm.env())
            .arg("bench")
            .arg(url)
            .arg("--json")
            .arg("--keytab")
            .arg(&self.alice_keytab)
            .arg("--cacert")
            .arg(&self.ca_pem)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        let out = cmd.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kerbside bench {url} {extra:?}: no report ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// One round of `mode` against `url` with `pids`, added to `series`.
    fn round(&mut self, series: &mut Series, url: &str, mode: &str, pids: &[u32], children: bool) {
        let round = series.cpu.len();
        let mut extra: Vec<String> = [
            "--mode",
            bench_mode(mode),
            "-c",
            "2",
            "-d",
            &format!("{}s", self.args.round_secs),
            "--tokens",
            &series.tokens.to_string(),
            "--server-pid",
            &pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if children {
            extra.push("--server-children".into());
        }
        let report = self.bench(url, &extra);
        let ok = report["successes"].as_u64().unwrap_or(0);
        let errs: u64 = report["errors"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        series.errors += errs;
        series.cpu.push(
            report["server_cpu"]["us_per_request"]
                .as_f64()
                .unwrap_or(f64::NAN),
        );
        series
            .rps
            .push(report["requests_per_sec"].as_f64().unwrap_or(0.0));
        if report["server_cpu"]["processes_changed"].as_bool() == Some(true) {
            series
                .notes
                .push(format!("round {round}: server processes changed"));
        }
        if let Some(why) = report["stopped_early"].as_str() {
            series
                .notes
                .push(format!("round {round}: stopped early: {why}"));
        }
        if errs > 0 {
            series.notes.push(format!(
                "round {round}: errors {}",
                report["error_messages"]
            ));
        }
        // Enough tokens for the next round: what this one used, and a third more.
        series.tokens = ((ok as f64 * 1.4) as usize).clamp(2_000, 40_000);
    }

    /// The medians of `series`, logged.
    fn cell(&mut self, name: &str, mode: &str, series: Series) -> Cell {
        let cpu: Vec<f64> = series.cpu.into_iter().filter(|c| c.is_finite()).collect();
        let cell = Cell {
            cpu_us: median(&cpu),
            rps: median(&series.rps),
            errors: series.errors,
            rounds: cpu,
            note: series.notes.join("; "),
        };
        self.say(&format!(
            "{name} {mode}: {:.0} µs/request, {:.0} requests/s, {} errors (rounds {:?}) {}",
            cell.cpu_us,
            cell.rps,
            cell.errors,
            cell.rounds.iter().map(|c| c.round()).collect::<Vec<_>>(),
            cell.note
        ));
        cell
    }
}

/// The rounds of one cell so far.
struct Series {
    cpu: Vec<f64>,
    rps: Vec<f64>,
    errors: u64,
    notes: Vec<String>,
    /// Tokens to make for the next round (per-request mode uses one per request).
    tokens: usize,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            cpu: Vec::new(),
            rps: Vec::new(),
            errors: 0,
            notes: Vec::new(),
            tokens: 20_000,
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A child process, killed on drop.
struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// lighttpd serving [`PAGE`] at `/bench.txt`.
fn upstream(dir: &Path) -> (Proc, SocketAddr) {
    let root = dir.join("lighttpd");
    std::fs::create_dir_all(root.join("htdocs")).unwrap();
    std::fs::write(root.join("htdocs/bench.txt"), PAGE).unwrap();
    let port = free_port().unwrap();
    let conf = root.join("lighttpd.conf");
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{r}/htdocs\"
server.bind = \"127.0.0.1\"
server.port = {port}
server.errorlog = \"{r}/error.log\"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 120
server.max-fds = 16384
server.max-connections = 8192
mimetype.assign = (\".txt\" => \"text/plain\")
",
            r = root.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/lighttpd")
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start /usr/sbin/lighttpd (Debian package lighttpd)");
    wait_port(port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    (
        Proc {
            child,
            url: format!("http://{addr}"),
        },
        addr,
    )
}

/// `kerbside gate` in `mode`, TLS or not, in front of `upstream`.
fn gate(env: &Env, mode: &str, tls: bool, upstream: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(&env.args.kerbside);
    cmd.envs(env.realm.env())
        .env_remove("RUST_LOG")
        .arg("gate")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--keytab")
        .arg(env.realm.keytab())
        .arg("--upstream")
        .arg(upstream)
        .arg("--auth")
        .arg(mode)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if mode == "cookie" {
        cmd.arg("--session-key")
            .arg(env.dir.path().join("session.key"));
    }
    if tls {
        cmd.arg("--tls-cert")
            .arg(env.cert.cert_pem_path())
            .arg("--tls-key")
            .arg(env.cert.key_pem_path());
    }
    let mut child = cmd.spawn().unwrap();
    let url = gate_url::listening_url(&mut child).replace("127.0.0.1", "localhost");
    Proc { child, url }
}

fn version(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_else(|_| "?".to_owned())
}

fn dpkg(package: &str) -> String {
    version("dpkg-query", &["-W", "-f", "${Version}", package])
}

fn main() {
    let args = parse();
    let started = Instant::now();
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let dir = tempfile::Builder::new()
        .prefix("kerbside-bench-")
        .tempdir()
        .unwrap();
    let alice_keytab = dir.path().join("alice.keytab");
    realm.export_keytab(&["alice"], &alice_keytab).unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.ca_pem()).unwrap();
    let mut env = Env {
        args,
        realm,
        cert,
        ca_pem,
        alice_keytab,
        dir,
        log: String::new(),
    };
    let (lighttpd, upstream_addr) = upstream(env.dir.path());
    env.say(&format!("upstream: lighttpd at {}", lighttpd.url));
    if let Some(mode) = env.args.hold.clone() {
        let g = gate(&env, &mode, true, &lighttpd.url, &[]);
        let vars: Vec<String> = env
            .realm
            .env()
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        println!(
            "export {}\nURL={}/bench.txt PID={} KEYTAB={} CA={}",
            vars.join(" "),
            g.url,
            g.child.id(),
            env.alice_keytab.display(),
            env.ca_pem.display()
        );
        std::thread::sleep(Duration::from_secs(1800));
        return;
    }

    // The ceiling: bare accepts.
    let mut accept = BTreeMap::new();
    for rcache in ["mit", "off", "memory", "file"] {
        let out = Command::new(&env.args.accept_loop)
            .envs(env.realm.env())
            .arg("--keytab")
            .arg(env.realm.keytab())
            .arg("--client-keytab")
            .arg(&env.alice_keytab)
            .arg("--service")
            .arg("HTTP@localhost")
            .arg("-n")
            .arg(env.args.accepts.to_string())
            .arg("--replay-cache")
            .arg(rcache)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "accept_loop --replay-cache {rcache}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        env.say(&format!("bare accept, replay cache {rcache}: {v}"));
        accept.insert(rcache, v["cpu_us_per_accept"].as_f64().unwrap_or(f64::NAN));
    }

    // The gate, each mode, HTTP and HTTPS, and Apache + mod_auth_gssapi as a reverse
    // proxy to the same upstream: the rounds of every cell of a transport are
    // interleaved (each round: every mode, the gate then Apache), so a change in
    // what else the machine does moves all of them alike and the ratios (gate against
    // Apache, connection and cookie against no-auth) compare the same moments.
    let apache = Apache::start(
        &env.realm,
        &env.cert,
        ApacheOptions {
            plain_http: true,
            proxy_to: Some(upstream_addr),
            ..ApacheOptions::default()
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    env.say(&format!("apache: processes {:?}", apache.pids()));
    let mut gate_cells: BTreeMap<(&str, bool), Cell> = BTreeMap::new();
    let mut apache_cells: BTreeMap<(&str, bool), Cell> = BTreeMap::new();
    for tls in [false, true] {
        let gates: Vec<(&str, Proc)> = MODES
            .iter()
            .map(|mode| (*mode, gate(&env, mode, tls, &lighttpd.url, &[])))
            .collect();
        let mut series: BTreeMap<(&str, bool), Series> = BTreeMap::new();
        for _ in 0..env.args.rounds {
            for (mode, g) in &gates {
                let url = format!("{}/bench.txt", g.url);
                let s = series.entry((mode, true)).or_default();
                env.round(s, &url, mode, &[g.child.id()], false);
                let path = apache_path(mode);
                let url = if tls {
                    apache.url(path)
                } else {
                    apache.plain_url(path)
                };
                let s = series.entry((mode, false)).or_default();
                env.round(s, &url, mode, &[apache.pid()], true);
            }
        }
        for ((mode, ours), s) in series {
            let transport = if tls { "HTTPS" } else { "HTTP" };
            if ours {
                let cell = env.cell(&format!("gate {transport}"), mode, s);
                gate_cells.insert((mode, tls), cell);
            } else {
                let cell = env.cell(&format!("Apache {transport}"), mode, s);
                apache_cells.insert((mode, tls), cell);
            }
        }
    }
    drop(apache);

    // The second load generator (python-gssapi tokens), HTTPS, same gate settings.
    let mut python_cells = BTreeMap::new();
    {
        let (python, ca_pem) = (env.args.python.clone(), env.ca_pem.clone());
        let generator = python::Generator {
            python: &python,
            script: Path::new("scripts/bench_python.py"),
            ca_pem: &ca_pem,
            env: env.realm.env(),
        };
        for mode in ["none", "per-request"] {
            let g = gate(&env, mode, true, &lighttpd.url, &[]);
            let url = format!("{}/bench.txt", g.url);
            let cell = generator.cell(&url, g.child.id(), env.args.rounds, env.args.round_secs);
            env.say(&format!("python-gssapi, gate {mode}: {cell:?}"));
            python_cells.insert(mode, cell);
        }
    }
    let kerbside_https: BTreeMap<&str, (f64, f64)> = gate_cells
        .iter()
        .filter(|((_, tls), _)| *tls)
        .map(|((mode, _), c)| (*mode, (c.cpu_us, c.rps)))
        .collect();

    // Errors at 2, 16, 256 and 1024 connections (HTTPS).
    let mut error_runs: BTreeMap<(&str, usize), (u64, u64)> = BTreeMap::new();
    for mode in MODES {
        let g = gate(&env, mode, true, &lighttpd.url, &[]);
        let url = format!("{}/bench.txt", g.url);
        for conns in [2usize, 16, 256, 1024] {
            let extra: Vec<String> = [
                "--mode",
                bench_mode(mode),
                "-c",
                &conns.to_string(),
                "-d",
                "2s",
                "--tokens",
                "8000",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let r = env.bench(&url, &extra);
            let errs: u64 = r["errors"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).sum())
                .unwrap_or(0);
            let ok = r["successes"].as_u64().unwrap_or(0);
            env.say(&format!(
                "errors: gate {mode}, {conns} connections: {ok} ok, {errs} errors {}",
                if errs > 0 {
                    r["error_messages"].to_string()
                } else {
                    String::new()
                }
            ));
            error_runs.insert((mode, conns), (ok, errs));
        }
    }

    // Memory per idle authenticated connection (connection mode, HTTPS): each
    // connection logs in with one request answered by the gate itself (its whoami
    // page) and is left idle: the connection's own cost. Then the same with each
    // login's request going to the upstream (all at once: a burst of upstream
    // connections, of which the pool keeps 256), and after 3 s of requests on every
    // connection (which also leaves the allocator's high-water mark behind).
    let memory: Vec<Value> = [
        ("--requests", "/.kerbside/whoami"),
        ("--requests", "/bench.txt"),
        ("-d", "/bench.txt"),
    ]
    .into_iter()
    .map(|(how, path)| {
        let g = gate(&env, "connection", true, &lighttpd.url, &[]);
        let url = format!("{}{path}", g.url);
        let pid = g.child.id().to_string();
        let conns = env.args.memory_conns.to_string();
        let amount = if how == "-d" { "3s" } else { conns.as_str() };
        let extra: Vec<String> = [
            "--mode",
            "reuse",
            "-c",
            &conns,
            how,
            amount,
            "--server-pid",
            &pid,
            "--server-memory",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = env.bench(&url, &extra);
        env.say(&format!(
            "memory ({path} {how} {amount}): {}",
            r["server_memory"]
        ));
        r["server_memory"].clone()
    })
    .collect();

    let mut report = render(
        &env,
        &accept,
        &gate_cells,
        &apache_cells,
        &error_runs,
        &memory,
        started.elapsed(),
    );
    report.push_str(&python::section(&python_cells, &kerbside_https));
    // Sections written by other benchmarks (scripts/bench-proxy.sh) and what follows
    // them are kept as they are.
    if let Ok(old) = std::fs::read_to_string(&env.args.out) {
        if let Some(at) = old.find("<!-- bench-proxy:start -->") {
            let mut kept = old[at..].to_owned();
            // Not the previous run's own section, should it have ended up there.
            let ours = "\n## Two load generators (gate, HTTPS, same run)\n";
            if let Some(from) = kept.find(ours) {
                let rest = &kept[from + ours.len()..];
                let to = rest
                    .find("\n## ")
                    .map_or(kept.len(), |e| from + ours.len() + e);
                kept.replace_range(from..to, "");
            }
            report.push('\n');
            report.push_str(&kept);
        }
    }
    std::fs::write(&env.args.out, report).unwrap();
    if let Some(parent) = env.args.svg.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&env.args.svg, svg(&gate_cells, &apache_cells, &accept)).unwrap();
    env.say(&format!(
        "wrote {} and {} in {:.0} s",
        env.args.out.display(),
        env.args.svg.display(),
        started.elapsed().as_secs_f64()
    ));
    drop(lighttpd);
}

fn fmt_us(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "–".to_owned()
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    env: &Env,
    accept: &BTreeMap<&str, f64>,
    gate: &BTreeMap<(&str, bool), Cell>,
    apache: &BTreeMap<(&str, bool), Cell>,
    errors: &BTreeMap<(&str, usize), (u64, u64)>,
    memory: &[Value],
    took: Duration,
) -> String {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let rev = version("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Benchmarks

Server CPU time per request of a Kerberos (Negotiate) gateway in front of a small upstream:
`kerbside gate` against Apache 2 + mod_auth_gssapi as a reverse proxy, in the same run,
on the same machine, to the same upstream. Written by `{cmd}` (issue 5); the numbers
below are from one run of it.

![server CPU per request by mode, gate against Apache](docs/bench/cpu-per-request.svg)

## Machine and versions

| | |
|---|---|
| CPUs | {nproc} × {cpu_model} |
| kernel | {kernel} |
| kerbside | git {rev}{dirty} (release build) |
| rustc | {rustc} |
| MIT krb5 | {krb5} |
| Apache | {apache} (mpm_event, mod_proxy_http) |
| mod_auth_gssapi | {gssapi} |
| lighttpd (upstream) | {lighttpd} |

## How it was measured

* **Upstream**: lighttpd serving a 96-byte `text/plain` file on a loopback port. Its CPU
  time is never counted: only the gateway's processes are.
* **Load**: `kerbside bench` (`--json`), 2 keep-alive connections, Kerberos tokens made
  ahead of the timed window (client keytab, memory ccache) so the load generator measures
  the server. Modes: `plain` (gate `--auth none`, Apache `/public/`), `per-request` (a fresh
  token on every request), `reuse` (one token per connection, then the connection
  (`connection` mode, Apache `GssapiConnectionBound On`) or the session cookie (`cookie`
  mode, Apache `GssapiUseSessions On`) carries the identity). Every response is checked
  (status, mutual-authentication token where sent); errors are counted, never successes.
* **Server CPU**: utime+stime from `/proc/PID/stat` over the timed window divided by
  successful requests (`kerbside bench --server-pid`). For Apache, the parent and all its
  children (`--server-children`: 2 worker processes of 64 threads, started at once and
  never replaced; the process list is read at the start and the end of each round).
* **Noise**: the machine may be shared (other builds); each cell's rounds vary by up to
  ±15%, and the gate's HTTPS rounds are listed below the table.
* **Rounds**: each cell is the median of {rounds} rounds of {secs} s. For each transport the
  rounds of all cells are interleaved (round 1 of every mode, the gate then Apache, then
  round 2...), so the ratios compare the same moments of the machine.
* **Bare accept**: `accept_loop` (crates/kerbside-gssapi/examples), {accepts} SPNEGO tokens
  made first, then only the accepts timed with `getrusage(RUSAGE_THREAD)`: MIT's
  `gss_accept_sec_context` (+ the name and PAC inquiries the gate makes) with MIT's file
  replay cache and with none, and the gate's own path with its in-memory replay cache (a
  one-leg Kerberos login through `krb5_rd_req` directly, kerbside-gssapi `direct.rs`).
  The target's bare accept is MIT's, with its replay cache.
* Gate settings: defaults (`--channel-binding optional`, info-level log to stderr, read and
  discarded); Apache: `LogLevel warn` with an access log, TLS session cache on.

Commands (what `{cmd}` runs):

```sh
cargo build --release -p kerbside --bin kerbside --example bench_suite
cargo build --release -p kerbside-gssapi --example accept_loop
target/release/examples/bench_suite --rounds {rounds} --round-secs {secs}
# each cell is rounds of, e.g.:
kerbside bench https://localhost:PORT/bench.txt --mode per-request -c 2 -d {secs}s \\
    --keytab alice.keytab --cacert ca.pem --server-pid GATE_PID --json
kerbside bench https://localhost:PORT/private/bench.txt --mode per-request -c 2 -d {secs}s \\
    --keytab alice.keytab --cacert ca.pem --server-pid APACHE_PID --server-children --json
```
",
        cmd = env.args.command,
        nproc = std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel = version("uname", &["-sr"]),
        dirty = if dirty { " + uncommitted changes" } else { "" },
        rustc = version("rustc", &["--version"]),
        krb5 = dpkg("libkrb5-3"),
        apache = dpkg("apache2"),
        gssapi = dpkg("libapache2-mod-auth-gssapi"),
        lighttpd = dpkg("lighttpd"),
        rounds = env.args.rounds,
        secs = env.args.round_secs,
        accepts = env.args.accepts,
    );

    let _ = writeln!(
        s,
        "## Server CPU per request (µs, median), and requests/s

| mode | transport | gate µs | Apache µs | gate / Apache | gate req/s | Apache req/s |
|---|---|---:|---:|---:|---:|---:|"
    );
    for tls in [true, false] {
        for mode in MODES {
            let g = gate.get(&(mode, tls)).cloned().unwrap_or_default();
            let a = apache.get(&(mode, tls)).cloned().unwrap_or_default();
            let _ = writeln!(
                s,
                "| {mode} | {} | {} | {} | {:.2} | {:.0} | {:.0} |",
                if tls { "HTTPS" } else { "HTTP" },
                fmt_us(g.cpu_us),
                fmt_us(a.cpu_us),
                g.cpu_us / a.cpu_us,
                g.rps,
                a.rps
            );
        }
    }
    let _ = writeln!(
        s,
        "
Bare `gss_accept_sec_context` (SPNEGO, one thread, CPU per accept): **{}** µs with MIT's
file replay cache, **{}** µs with none; the gate's own accept (`krb5_rd_req` directly, its
in-memory replay cache): **{}** µs.
",
        fmt_us(accept["mit"]),
        fmt_us(accept["off"]),
        fmt_us(accept["memory"])
    );
    let notes: Vec<String> = gate
        .iter()
        .map(|((m, t), c)| (format!("gate {m} {}", if *t { "HTTPS" } else { "HTTP" }), c))
        .chain(apache.iter().map(|((m, t), c)| {
            (
                format!("Apache {m} {}", if *t { "HTTPS" } else { "HTTP" }),
                c,
            )
        }))
        .filter(|(_, c)| !c.note.is_empty() || c.errors > 0)
        .map(|(name, c)| format!("* {name}: {} errors; {}", c.errors, c.note))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "Notes from the rounds:\n\n{}\n", notes.join("\n"));
    }
    let _ = writeln!(
        s,
        "Rounds (µs per request, gate HTTPS): {}
",
        MODES
            .iter()
            .map(|m| format!(
                "{m} {:?}",
                gate.get(&(*m, true))
                    .map(|c| c.rounds.iter().map(|r| r.round()).collect::<Vec<_>>())
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    // Targets, over HTTPS (the issue's transport), and over HTTP.
    let _ = writeln!(
        s,
        "## Targets (issue 5)\n\n| transport | target | gate µs | limit µs | |\n|---|---|---:|---:|---|"
    );
    for tls in [true, false] {
        let t = if tls { "HTTPS" } else { "HTTP" };
        let g = |m: &str| gate.get(&(m, tls)).map_or(f64::NAN, |c| c.cpu_us);
        let a = |m: &str| apache.get(&(m, tls)).map_or(f64::NAN, |c| c.cpu_us);
        let bare = accept["mit"];
        let mut row = |name: String, value: f64, limit: f64| {
            let met = value <= limit;
            let _ = writeln!(
                s,
                "| {t} | {name} | {} | {} | {} |",
                fmt_us(value),
                fmt_us(limit),
                if met {
                    "met".to_owned()
                } else {
                    format!(
                        "**not met** (+{:.0} µs, {:+.0}%)",
                        value - limit,
                        (value / limit - 1.0) * 100.0
                    )
                }
            );
        };
        row(
            "per-request ≤ gate no-auth + 1.3 × bare accept (MIT rcache)".into(),
            g("per-request"),
            g("none") + 1.3 * bare,
        );
        row(
            "per-request ≤ ½ Apache per-request".into(),
            g("per-request"),
            a("per-request") / 2.0,
        );
        row(
            "per-request ≤ 0.4 × Apache per-request (issue 15)".into(),
            g("per-request"),
            a("per-request") * 0.4,
        );
        for m in ["connection", "cookie"] {
            row(
                format!("{m} within 10% of gate no-auth"),
                g(m),
                g("none") * 1.1,
            );
        }
        row(
            "connection < Apache GssapiConnectionBound".into(),
            g("connection"),
            a("connection"),
        );
        row(
            "cookie < Apache GssapiUseSessions".into(),
            g("cookie"),
            a("cookie"),
        );
        row("no-auth < Apache no-auth".into(), g("none"), a("none"));
    }
    let _ = writeln!(
        s,
        "
The bare-accept reference in the first target is the accept with MIT's file replay cache
(as a server must check replays): {} µs; with the gate's in-memory cache it is {} µs.

## Errors at 2, 16, 256 and 1024 connections (gate, HTTPS, 2 s each)

Per-request runs end when their 8000 tokens made ahead are used up (that is the `ok` count).

| mode | 2 | 16 | 256 | 1024 |
|---|---:|---:|---:|---:|",
        fmt_us(accept["mit"]),
        fmt_us(accept["memory"])
    );
    for mode in MODES {
        let cell = |c: usize| {
            errors
                .get(&(mode, c))
                .map_or("–".to_owned(), |(ok, e)| format!("{e} errors / {ok} ok"))
        };
        let _ = writeln!(
            s,
            "| {mode} | {} | {} | {} | {} |",
            cell(2),
            cell(16),
            cell(256),
            cell(1024)
        );
    }
    let per = |m: &Value| m["pss_kib_per_connection"].as_f64().unwrap_or(f64::NAN);
    let (idle, upstream, loaded) = (&memory[0], &memory[1], &memory[2]);
    let _ = writeln!(
        s,
        "
## Memory per idle authenticated connection (gate, connection mode, HTTPS)

{} keep-alive connections, each authenticated by one request the gate answers itself
(its whoami page: `kerbside bench https://…/.kerbside/whoami --mode reuse -c {n} --requests {n}
--server-memory`), then left idle: the gate's PSS grew from {} KiB to {} KiB (RSS {} → {}
KiB), **{:.1} KiB per connection** (target ≤ 32 KiB: {}): hyper's read and write buffers,
rustls's record buffer (4 KiB), the connection's task (~4 KiB), the TLS keys and the
identity.

The same with each login's request proxied to the upstream, all {n} at once (`/bench.txt`):
PSS {} → {} KiB, {:.1} KiB per connection. The difference is not held by the idle client
connections: the burst opened up to {n} upstream connections, the pool keeps 256 of them
idle (for 90 s), and the allocator keeps the memory of the others (glibc returns it only
when asked: `malloc_trim(0)` through gdb gave back 7–8 KiB per connection).

After 3 s of requests on all {n} connections (`-d 3s` instead of `--requests`):
PSS {} → {} KiB, {:.1} KiB per connection: the allocator's high-water mark of the load
and the upstream connections the pool keeps idle (at most 256).
",
        idle["connections_open"],
        idle["pss_before_kib"],
        idle["pss_after_kib"],
        idle["rss_before_kib"],
        idle["rss_after_kib"],
        per(idle),
        if per(idle) <= 32.0 {
            "met"
        } else {
            "**not met**"
        },
        upstream["pss_before_kib"],
        upstream["pss_after_kib"],
        per(upstream),
        loaded["pss_before_kib"],
        loaded["pss_after_kib"],
        per(loaded),
        n = env.args.memory_conns,
    );
    let _ = writeln!(
        s,
        "The whole run took {:.0} s.

## Where the gate's time goes, and what was done about it

* **The Kerberos accept dominates a login.** `accept_loop` above is the floor: one
  `gss_accept_sec_context` on a warm CPU. Inside a server the same call runs colder (the
  load generator and the upstream share the two cores, so caches are refilled between
  accepts) and costs more. `strace` of the gate shows what MIT krb5 does per accept besides
  the cryptography: it reads the keytab (open, lock, read, unlock), builds about five krb5
  contexts (an `access` and a `stat` of krb5.conf each, and a full re-read of krb5.conf
  twice), looks for authdata plugins, and, with its replay cache on, opens and appends to
  the replay-cache file. Apache pays the same per-accept costs, and more around them.
* **Replay cache in memory** (done): the gate's acceptor runs with MIT's file replay cache
  off (credential store `rcache` = `none:`) and checks replays itself, keyed on SHA-256 of
  the AP-REQ's encrypted authenticator (found by a strict DER walker,
  `kerbside_proto::krb5`), for twice the clock skew (600 s) from first sight, in 16
  mutex-guarded shards, bounded at about a million entries (a full cache falls back to
  MIT's). Tokens the walker cannot read, and exchanges of more than one leg, go through
  MIT's replay cache as before. Tests against a real KDC (`crates/kerbside-gssapi/tests/replay.rs`,
  `crates/kerbside/tests/replay.rs`) show it refuses every replay MIT's refuses: the same
  token, the same AP-REQ unwrapped to a bare krb5 token, re-wrapped in SPNEGO with another
  mechanism listed, concurrent uses of one token (exactly one wins); a fresh token from the
  same ticket is accepted. It saves the difference between the MIT and the memory
  bare-accept figures above on every login, and the file lock that serialises accepts.
* **Credentials acquired once**: they were already (the acceptor holds one credential
  handle; the memory-cache variant is made once per gate).
* **No hop to a blocking thread** (done): accepts ran on tokio's blocking pool; an A/B on
  this machine (per-request over HTTP, 4 rounds of 3 s each) gave 331–368 µs per request
  with the hop and 283–335 µs without, so the accept now runs on the runtime's worker
  threads (one per core: the bounded pool sized to the cores; an accept reads only the
  keytab and memory, never the network), still behind the `max-handshakes` semaphore.
* **krb5.conf parsed once** (done): MIT's GSSAPI makes and frees several krb5 contexts
  per accept, and frees the parsed krb5.conf with the last one, so every accept parsed
  it again (twice). `kerbside-gssapi` now keeps one krb5 context open for the life of
  the process (`krb5_init_context`, never freed), which keeps the parsed profile shared;
  MIT still `stat`s the file on each open, so an edited krb5.conf is read. On this
  machine that took the per-request figure from about 315 to about 255 µs (HTTPS, 5
  rounds of 3 s each, `bench_suite --hold per-request`) and the bare accept (whose
  process also holds a context now) from about 110 to about 95 µs.
* **Where a login's CPU goes** (profiled again on 7 December in the evening, machine
  quiet, release build with debug information, `perf record -F 4999 --call-graph dwarf`
  of the gate under `kerbside bench --mode per-request -c 2`, HTTPS, 237 µs per request
  in that window; shares of the gate's samples, inclusive, so they overlap): the accept
  (`gss_accept_sec_context` with what kerbside asks of it) 37–42%, about 90–100 µs, of
  which `krb5_init_context` 13% (about 31 µs: MIT's six krb5 contexts per login, each
  an `access` and a `stat` of krb5.conf) and MIT's look into its authdata plugin
  directory 3%; the kernel 38% (loopback TCP sends 11%, where the sender also does the
  receiver's work; scheduling and wake-ups between requests); rustls 10%; the log line
  per login 8% (about 18 µs, of which the write to the stderr pipe and the wake-up of
  its reader 5%); malloc and free about 10%; the upstream client and the proxy about 8%;
  header parsing, base64 and the replay check under 1% each. The accept inside a server
  runs on cold caches, unlike the tight loop of the bare figure, and the no-auth figure
  it is compared with is measured at about three times the request rate, where the
  runtime seldom sleeps between requests. The gate still spends clearly less CPU per
  login than Apache (the ratio column).
* **Connection and cookie against no-auth**: an authenticated request does more than an
  anonymous one: the identity goes upstream (`X-Remote-User`), the response carries
  `Persistent-Auth: true` or the cookie is opened (XChaCha20-Poly1305), and the access
  rules see a principal; that is 5–20 µs on a base of 50–70 µs, so the 10% margin is met
  in some runs and cells and missed in others (the table says which for this run). Both
  modes stay well below Apache's figures for the same modes. Where cookie mode spends
  its extra (`perf record -g` of the gate, cookie mode, HTTPS, `kerbside bench --mode
  reuse -c 2`, December 2026): opening the cookie (XChaCha20-Poly1305 with its key set-up,
  ~1.9% of the gate's samples), finding, checking and removing it in the `Cookie` header
  and its base64 (~1.2%): about 3% of the gate's CPU, 2–3 µs per request; no
  `Set-Cookie` is made after the login. The rest of the gap between the rounds is this
  machine's noise (no-auth rounds themselves vary by ±15%); the gate's CPU at this rate
  is mostly the kernel's (task switches and wake-ups, ~25% of samples).
* **Memory per idle connection** (issue 15). What an idle authenticated connection
  holds is measured on connections whose login request the gate answers itself (its
  whoami page), as in the table above: hyper's read buffer (8 KiB, of which a fresh
  connection touches the first page), its write buffer, rustls's record buffer (4 KiB),
  the connection's task (~4 KiB), the TLS keys and the identity. It does not depend on
  how many there are (release build, `bench_suite --hold connection`, `kerbside bench
  https://…/.kerbside/whoami --mode reuse -c N --requests N --server-memory`, a fresh
  gate each): 26.7 KiB per connection at N = 500, 26.0 and 26.1 at 1000, 25.9 at 2000,
  25.7 KiB between 500 and 2000. When each login's request is proxied to the upstream,
  all N at once (`/bench.txt`), the figure is 46.5–48.6 KiB at N = 1000 and 40.9 at
  2000; read again after 20 s idle (`--idle 20s`) it moves by less than 0.2 KiB. That
  difference is the burst's, not the idle connections': `malloc_trim(0)` called in the
  gate through gdb while the connections were still open gave back 7–8 KiB per
  connection (46.4 → 39.0 at 1000, 46.7 → 38.3 at 2000): glibc's allocator had kept the
  memory of the up-to-N upstream connections the burst opened. What trimming leaves
  above the whoami figure is the 256 idle upstream connections the pool keeps (counted
  with `ss`) and pages in which a few live objects sit among freed ones. The gate does
  not trim on its own (glibc only, and it holds each arena's lock while it walks it).
  Earlier changes, each measured then: TLS connections whose ALPN is not `h2` are served
  by hyper's HTTP/1 builder directly, so the read buffer stays at 8 KiB (hyper-util's
  HTTP/1-or-2 detection read 24 bytes first and hyper's next 8 KiB `reserve` doubled it:
  heaptrack, 300 connections, 16.4 → 8.2 KiB each; drained by
  `crates/kerbside-server/src/drain.rs`), and the upstream pool keeps at most 256 idle
  connections (it was unbounded: after 3 s of load on 1000 connections 66.1 → 58.5 KiB
  per connection).
* **Keytab in memory** (done, issue 15): the keytab's entries are copied once into MIT's
  `MEMORY:` keytab (krb5 keytab API, `crates/kerbside-gssapi/src/keytab.rs`) and the
  acceptor credentials acquired from it; the file's inode, size and mtime are looked at
  at most once a second, and at once when a first token fails, and a changed file is
  read into a new memory keytab whose credentials replace the old in one swap (tests:
  `tests/keytab_reload.rs` re-keys the service with `kadmin.local ktadd` under a running
  gate; `active_directory_keys.rs` rotates an AD account). `strace -c -f` of the gate
  under per-request load (HTTPS, `kerbside bench -c 2`): 62 → 36 syscalls per request
  (the keytab's open, 3 `fcntl` locks, ~10 `lseek`, ~8 `read`, `close` are gone; left:
  ~7 `access` + ~7 `stat` of krb5.conf, one pair per krb5 context MIT makes, 3 failed
  `openat` of MIT's authdata plugin directory, 3 `getrandom`, futex/epoll wake-ups).
  Callgrind (`accept_loop --replay-cache memory`, 300 accepts, instructions inside
  `NegotiateAcceptor::accept`): 372.6k → 367.1k per accept (−1.5%: callgrind counts
  user space only; the saving is mostly in the kernel). On the gate's CPU per login the
  A/B is within this machine's noise with `kerbside bench` (median of 4 rounds, 251 →
  246 µs) and clear with the python-gssapi generator (median of 3 rounds, 324 → 247 µs).
* **Where the rest of a login goes** (callgrind, same run): of the instructions of one
  accept, 63% were `gss_accept_sec_context` (of which the AES decryption and checksums
  ~35%, PAC verification 6%), and 31% `krb5_init_context`, which MIT's GSSAPI calls in
  nearly every call; the three inquiries after the accept (name, flags, lifetime,
  through libgssapi's `ServerCtx`, one `gss_inquire_context` each) and the name's
  display and release were most of the rest.
* **One call for what the accept knows** (done, issue 15): kerbside binds
  `gss_accept_sec_context` itself (`crates/kerbside-gssapi/src/accept_ctx.rs`) and asks
  it for the client's name, the flags, the lifetime and a delegated credential in the
  same call; a context completed by a later leg is asked once, one
  `gss_inquire_context` for all three. Callgrind (`accept_loop --replay-cache memory
  -n 300`, instructions inside `NegotiateAcceptor::accept`, 301 accepts): **392.6k →
  343.1k per accept (−12.6%)**; the GSSAPI calls after the accept (inquiries, display,
  release, PAC attribute, delete) 182k → 90k. `accept_loop -n 2000`, CPU per accept
  (2 runs each, machine loaded by other builds): 60.9/64.0 → 51.7/51.0 µs. The
  principal now comes from `gss_display_name` as an error when GSSAPI cannot display it
  (libgssapi's `Display` gave the text `<name can't be displayed>`, which would have
  passed for a user name).
* **`krb5_init_context` per call: what is left, and why it stays** (issue 15). MIT
  1.20's krb5 mechanism makes a fresh krb5 context (`krb5_gss_init_context` →
  `krb5_init_context`, ~17k instructions: 12 profile lookups in the parsed krb5.conf,
  trace and plugin set-up) in each of: the accept itself (the context's own, freed by
  `gss_delete_sec_context`), each conversion of the client's name to a mechglue name
  (two inside the accept, because SPNEGO wraps the krb5 name in a second mechglue name),
  `gss_display_name`, `gss_get_name_attribute` (the PAC) and `gss_release_name`: six
  per login now (eight before), ~29% of an accept's instructions (counted with
  an `LD_PRELOAD` shim on `krb5_init_context` and callgrind). MIT offers no way to hand
  it a context: `krb5_gss_use_kdc_context` only switches these to
  `krb5int_init_context_kdc` (the KDC's profile, the same work), and
  `gss_krb5_import_cred` / `gss_acquire_cred_from` supply a keytab or ccache, not a
  context. The profile is already kept parsed (above), so no file is read; what is
  left is MIT's own per-call set-up. The remaining ways to cut it are not cheap:
  accepting the krb5 token under our own SPNEGO (one name conversion less, but the
  SPNEGO reply and mechListMIC become ours) or our own `krb5_rd_req` accept (the whole
  security surface of the accept becomes ours); neither is done. Asking for the PAC
  only when a ticket can carry one would save ~19k instructions per MIT-realm login,
  but only the ticket (encrypted) says whether it has one.
",
        took.as_secs_f64()
    );
    s
}

/// A grouped bar chart: CPU µs per request by mode, gate and Apache, HTTPS.
fn svg(
    gate: &BTreeMap<(&str, bool), Cell>,
    apache: &BTreeMap<(&str, bool), Cell>,
    accept: &BTreeMap<&str, f64>,
) -> String {
    let (w, h) = (720.0, 420.0);
    let (left, right, top, bottom) = (70.0, 20.0, 50.0, 70.0);
    let values: Vec<f64> = MODES
        .iter()
        .flat_map(|m| {
            [
                gate.get(&(*m, true)).map_or(0.0, |c| c.cpu_us),
                apache.get(&(*m, true)).map_or(0.0, |c| c.cpu_us),
            ]
        })
        .chain(accept.values().copied())
        .filter(|v| v.is_finite())
        .collect();
    let max = values.iter().copied().fold(1.0, f64::max);
    let step = [25.0, 50.0, 100.0, 200.0, 250.0, 500.0]
        .into_iter()
        .find(|s| max / s <= 8.0)
        .unwrap_or(1000.0);
    let top_value = (max / step).ceil() * step;
    let plot_h = h - top - bottom;
    let y = |v: f64| top + plot_h - v / top_value * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{cx}" y="24" text-anchor="middle" font-size="15">Server CPU per request over HTTPS (µs, lower is better)</text>"##,
        cx = w / 2.0
    );
    let mut tick = 0.0;
    while tick <= top_value + 0.1 {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{tick}</text>"##,
            x2 = w - right,
            y = y(tick),
            tx = left - 6.0,
            ty = y(tick) + 4.0
        );
        tick += step;
    }
    let group = (w - left - right) / MODES.len() as f64;
    let bar = group * 0.3;
    for (i, mode) in MODES.iter().enumerate() {
        let x0 = left + group * i as f64 + group * 0.2;
        for (j, (cells, color)) in [(gate, "#2a7ab0"), (apache, "#c0504d")].iter().enumerate() {
            let v = cells.get(&(*mode, true)).map_or(f64::NAN, |c| c.cpu_us);
            if !v.is_finite() {
                continue;
            }
            let x = x0 + bar * j as f64;
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{yy:.1}" width="{bw:.1}" height="{bh:.1}" fill="{color}"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{v:.0}</text>"##,
                yy = y(v),
                bw = bar - 4.0,
                bh = (top + plot_h - y(v)).max(0.0),
                tx = x + (bar - 4.0) / 2.0,
                ty = y(v) - 4.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{tx:.1}" y="{ty}" text-anchor="middle">{mode}</text>"##,
            tx = x0 + bar,
            ty = h - bottom + 18.0
        );
    }
    if let Some(v) = accept.get("mit").filter(|v| v.is_finite()) {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#555" stroke-dasharray="6 4"/><text x="{x2}" y="{ty:.1}" text-anchor="end" fill="#555">bare gss_accept_sec_context (MIT rcache) {v:.0} µs</text>"##,
            x2 = w - right,
            yy = y(*v),
            ty = y(*v) - 5.0
        );
    }
    let ly = h - 24.0;
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{ly}" width="14" height="14" fill="#2a7ab0"/><text x="{lx1}" y="{lt}">kerbside gate</text>
<rect x="{lx2}" y="{ly}" width="14" height="14" fill="#c0504d"/><text x="{lx3}" y="{lt}">Apache 2 + mod_auth_gssapi (reverse proxy)</text>
</svg>"##,
        lx1 = left + 20.0,
        lx2 = left + 140.0,
        lx3 = left + 160.0,
        lt = ly + 12.0
    );
    s
}
