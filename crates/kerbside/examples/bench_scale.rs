//! The scale-out benchmark of issue 15, run by `scripts/bench-scale.sh`: 1, 2 and 3
//! gates (the release `kerbside gate`, HTTPS, PROXY v2, replay cache in one Redis)
//! behind Debian's HAProxy in TCP mode with health checks, and one gate with only its
//! memory replay cache against one with Redis; writes a section of `BENCHMARKS.md`.
//!
//! Everything runs on this machine (2 cores, shared by the load generator, HAProxy,
//! Redis, the gates, the KDC-less token making and the lighttpd upstream), in temporary
//! directories, on free loopback ports. Load: `kerbside bench --json` with Kerberos
//! tokens made ahead (alice's keytab); each cell is the median of rounds, the cells
//! taken in turn within each round so that drift on the shared machine spreads over all
//! of them. A cell's HAProxy is started for it and stopped after it, so the gates of
//! other cells get no health checks meanwhile.
//!
//! ```text
//! cargo build --release -p kerbside --bin kerbside --example bench_scale
//! target/release/examples/bench_scale --kerbside target/release/kerbside --out BENCHMARKS.md
//! ```
#![allow(clippy::unwrap_used)]

#[path = "bench_support/gate_url.rs"]
mod gate_url;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kerbside_testkit::{
    Backend, Haproxy, HaproxyOptions, Lighttpd, LighttpdOptions, Redis, SendProxy, TestCa,
    TestCert, TestRealm,
};
use serde_json::Value;

const START: &str = "<!-- bench-scale:start -->";
const END: &str = "<!-- bench-scale:end -->";

struct Args {
    kerbside: PathBuf,
    out: Option<PathBuf>,
    rounds: usize,
    secs: u64,
    connections: usize,
    command: String,
}

fn args() -> Args {
    let mut a = Args {
        kerbside: "target/release/kerbside".into(),
        out: None,
        rounds: 3,
        secs: 4,
        connections: 12,
        command: "scripts/bench-scale.sh".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--kerbside" => a.kerbside = value.into(),
            "--out" => a.out = Some(value.into()),
            "--rounds" => a.rounds = value.parse().unwrap(),
            "--secs" => a.secs = value.parse().unwrap(),
            "--connections" => a.connections = value.parse().unwrap(),
            "--command" => a.command = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// A gate process, killed on drop.
struct Gate {
    child: Child,
    port: u16,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kerbside gate` (per-request, HTTPS, PROXY protocol) with `extra` arguments.
fn gate(a: &Args, realm: &TestRealm, cert: &TestCert, upstream: &str, extra: &[&str]) -> Gate {
    let mut cmd = Command::new(&a.kerbside);
    cmd.envs(realm.env())
        .env_remove("RUST_LOG")
        .args(["gate", "--listen", "127.0.0.1:0", "--auth", "per-request"])
        .arg("--keytab")
        .arg(realm.keytab())
        .args(["--upstream", upstream, "--proxy-protocol"])
        .arg("--tls-cert")
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let url = gate_url::listening_url(&mut child);
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    Gate { child, port }
}

/// HAProxy in front of `gates`, once its checks see them all up.
fn haproxy(gates: &[&Gate]) -> Haproxy {
    let h = Haproxy::start(&HaproxyOptions {
        backends: gates
            .iter()
            .map(|g| Backend {
                port: g.port,
                send_proxy: SendProxy::V2,
            })
            .collect(),
        health_path: Some("/.kerbside/health".to_owned()),
        tls_checks: true,
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = h.statuses() {
            if s.len() == gates.len() && s.iter().all(|s| s == "UP") {
                return h;
            }
        }
        assert!(Instant::now() < deadline, "gates not up: {}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// utime + stime of `pid` (all its threads), in microseconds.
fn cpu_micros(pid: u32) -> u64 {
    let tick = 1_000_000 / 100; // USER_HZ is 100 on Linux
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12)
    (f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        * tick
}

/// One round of one cell.
#[derive(Debug, Default, Clone)]
struct Round {
    rps: f64,
    gate_us: f64,
    haproxy_us: f64,
    redis_us: f64,
    errors: u64,
    note: String,
}

/// The medians of a cell's rounds, and all its errors.
#[derive(Debug, Default)]
struct Cell {
    rounds: Vec<Round>,
}

impl Cell {
    fn median(&self, f: impl Fn(&Round) -> f64) -> f64 {
        let mut v: Vec<f64> = self
            .rounds
            .iter()
            .map(f)
            .filter(|x| x.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    }
    fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum()
    }
    fn gate_rounds(&self) -> String {
        let v: Vec<String> = self
            .rounds
            .iter()
            .map(|r| format!("{:.0}", r.gate_us))
            .collect();
        v.join(", ")
    }
}

struct Bench<'a> {
    a: &'a Args,
    realm: &'a TestRealm,
    keytab: PathBuf,
    ca: PathBuf,
    tokens: BTreeMap<String, usize>,
}

impl Bench<'_> {
    /// `kerbside bench` in `mode` through `haproxy` to `gates`; Redis's CPU counted
    /// when `redis` is given.
    fn round(
        &mut self,
        name: &str,
        mode: &str,
        haproxy: &Haproxy,
        gates: &[&Gate],
        redis: Option<u32>,
        connections: usize,
    ) -> Round {
        let tokens = *self.tokens.get(name).unwrap_or(&20_000);
        let pids: Vec<String> = gates.iter().map(|g| g.child.id().to_string()).collect();
        let (h0, r0) = (cpu_micros(haproxy.pid()), redis.map_or(0, cpu_micros));
        let out = Command::new(&self.a.kerbside)
            .envs(self.realm.env())
            .arg("bench")
            .arg(format!("https://localhost:{}/bench", haproxy.port()))
            .args(["--json", "--mode", mode])
            .args(["-c", &connections.to_string()])
            .args(["-d", &format!("{}s", self.a.secs)])
            .args(["--tokens", &tokens.to_string()])
            .arg("--keytab")
            .arg(&self.keytab)
            .arg("--cacert")
            .arg(&self.ca)
            .args(["--server-pid", &pids.join(",")])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        let (h1, r1) = (cpu_micros(haproxy.pid()), redis.map_or(0, cpu_micros));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kerbside bench: no report ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let ok = report["successes"].as_u64().unwrap_or(0);
        let errors: u64 = report["errors"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        let mut note = String::new();
        if let Some(why) = report["stopped_early"].as_str() {
            note = format!("stopped early: {why}");
        }
        if errors > 0 {
            note.push_str(&format!(" errors: {}", report["error_messages"]));
        }
        // Enough tokens for the next round: twice what this one used.
        self.tokens.insert(
            name.to_owned(),
            ((ok as f64 * 2.0) as usize).clamp(2_000, 40_000),
        );
        let per = |us: u64| {
            if ok == 0 {
                f64::NAN
            } else {
                us as f64 / ok as f64
            }
        };
        let round = Round {
            rps: report["requests_per_sec"].as_f64().unwrap_or(0.0),
            gate_us: report["server_cpu"]["us_per_request"]
                .as_f64()
                .unwrap_or(f64::NAN),
            haproxy_us: per(h1 - h0),
            redis_us: if redis.is_some() { per(r1 - r0) } else { 0.0 },
            errors,
            note,
        };
        eprintln!("bench-scale: {name} {mode}: {round:?}");
        round
    }
}

fn first_line(cmd: &str, args: &[&str]) -> String {
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

fn f0(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.0}")
    }
}

fn main() {
    let a = args();
    let started = Instant::now();
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost"]);
    let dir = tempfile::Builder::new()
        .prefix("kerbside-bench-scale-")
        .tempdir()
        .unwrap();
    let keytab = dir.path().join("alice.keytab");
    realm.export_keytab(&["alice"], &keytab).unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.ca_pem()).unwrap();
    let upstream = Lighttpd::start(LighttpdOptions::upstream()).unwrap();
    let upstream_url = format!("http://127.0.0.1:{}", upstream.plain_port().unwrap());
    let redis = Redis::start().unwrap();
    let redis_pid = redis.pid().unwrap();
    let redis_url = redis.url();
    let shared = ["--replay-cache", redis_url.as_str()];
    let gates: Vec<Gate> = (0..3)
        .map(|_| gate(&a, &realm, &cert, &upstream_url, &shared))
        .collect();
    // The gate's default: its memory replay cache only (and a file beside it).
    let rcache = dir.path().join("replay-cache");
    let memory = gate(
        &a,
        &realm,
        &cert,
        &upstream_url,
        &["--replay-cache", rcache.to_str().unwrap()],
    );
    let mut bench = Bench {
        a: &a,
        realm: &realm,
        keytab,
        ca: ca_pem,
        tokens: BTreeMap::new(),
    };
    let modes = ["per-request", "handshake"];
    let mut scale: BTreeMap<(usize, &str), Cell> = BTreeMap::new();
    let mut sparse: BTreeMap<&str, Cell> = BTreeMap::new();
    let mut memory_cell = Cell::default();
    let third = (a.connections / 3).max(1);
    for round in 0..a.rounds {
        eprintln!("bench-scale: round {}/{}", round + 1, a.rounds);
        for n in 1..=3 {
            let members: Vec<&Gate> = gates.iter().take(n).collect();
            let h = haproxy(&members);
            for mode in modes {
                let r = bench.round(
                    &format!("{n}-{mode}"),
                    mode,
                    &h,
                    &members,
                    Some(redis_pid),
                    a.connections,
                );
                scale.entry((n, mode)).or_default().rounds.push(r);
                if n == 1 {
                    // The control: one gate with the load each of three gates gets.
                    let r = bench.round(
                        &format!("sparse-{mode}"),
                        mode,
                        &h,
                        &members,
                        Some(redis_pid),
                        third,
                    );
                    sparse.entry(mode).or_default().rounds.push(r);
                }
            }
        }
        let h = haproxy(&[&memory]);
        let r = bench.round("memory", "per-request", &h, &[&memory], None, a.connections);
        memory_cell.rounds.push(r);
    }

    let mut md = String::new();
    let _ = writeln!(md, "{START}\n## Many gates behind HAProxy (issue 15)\n");
    let _ = writeln!(
        md,
        "Written by `{}` ({} rounds of {} s per cell, cells in turn within each round, \
         median shown; {:.0} s in all) on this machine: 2 cores shared by the load \
         generator, HAProxy, Redis, the gates and the upstream, so throughput cannot grow \
         with the gates; what must hold is CPU per request staying flat and no errors. \
         HAProxy {} in TCP mode (PROXY v2, health checks on `/.kerbside/health` every \
         200 ms over TLS, round robin); Redis {}; the release gate (`--auth \
         per-request`, HTTPS, `--replay-cache redis://...`); lighttpd upstream (`/bench`, \
         96 bytes). Load: `kerbside bench --mode per-request` ({} keep-alive connections, \
         spread over the gates when they connect, a fresh Kerberos token on every request) \
         and `--mode handshake` (a new connection per login: request, 401, token, answer). \
         Gates' CPU: utime+stime of every gate over the timed window (`--server-pid`); \
         HAProxy's and Redis's over the whole `kerbside bench` run (including token making, \
         when only health checks reach them), all divided by successful requests.\n",
        a.command,
        a.rounds,
        a.secs,
        started.elapsed().as_secs_f64(),
        first_line("/usr/sbin/haproxy", &["-v"])
            .split_whitespace()
            .nth(2)
            .unwrap_or("?"),
        first_line("redis-server", &["--version"])
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or("?"),
        a.connections,
    );
    let _ = writeln!(
        md,
        "| gates | mode | req/s | gates' CPU µs/req (rounds) | HAProxy µs/req | Redis µs/req | errors |"
    );
    let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|");
    for mode in modes {
        for n in 1..=3 {
            let c = &scale[&(n, mode)];
            let _ = writeln!(
                md,
                "| {n} | {mode} | {} | {} [{}] | {} | {} | {} |",
                f0(c.median(|r| r.rps)),
                f0(c.median(|r| r.gate_us)),
                c.gate_rounds(),
                f0(c.median(|r| r.haproxy_us)),
                f0(c.median(|r| r.redis_us)),
                c.errors()
            );
        }
    }
    for mode in modes {
        let c = &sparse[mode];
        let _ = writeln!(
            md,
            "| 1, {third} connections (a third of the load: what each of 3 gates gets) | {mode} | {} | {} [{}] | {} | {} | {} |",
            f0(c.median(|r| r.rps)),
            f0(c.median(|r| r.gate_us)),
            c.gate_rounds(),
            f0(c.median(|r| r.haproxy_us)),
            f0(c.median(|r| r.redis_us)),
            c.errors()
        );
    }
    let one = &scale[&(1, "per-request")];
    let _ = writeln!(
        md,
        "\nThe Redis check per login (one gate behind HAProxy, per-request, same rounds):\n\n\
         | replay cache | req/s | gate CPU µs/req (rounds) | Redis µs/req | errors |\n\
         |---|---:|---:|---:|---:|\n\
         | memory (and its file) | {} | {} [{}] | — | {} |\n\
         | Redis (memory in front) | {} | {} [{}] | {} | {} |\n",
        f0(memory_cell.median(|r| r.rps)),
        f0(memory_cell.median(|r| r.gate_us)),
        memory_cell.gate_rounds(),
        memory_cell.errors(),
        f0(one.median(|r| r.rps)),
        f0(one.median(|r| r.gate_us)),
        one.gate_rounds(),
        f0(one.median(|r| r.redis_us)),
        one.errors(),
    );
    let notes: Vec<String> = scale
        .values()
        .chain(sparse.values())
        .chain(std::iter::once(&memory_cell))
        .flat_map(|c| c.rounds.iter())
        .filter(|r| !r.note.is_empty())
        .map(|r| r.note.clone())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "Notes: {}\n", notes.join("; "));
    }
    let _ = writeln!(md, "{END}");
    println!("{md}");
    if let Some(out) = &a.out {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        let new = match (old.find(START), old.find(END)) {
            (Some(s), Some(e)) => {
                format!("{}{}{}", &old[..s], md.trim_end(), &old[e + END.len()..])
            }
            _ => format!("{}\n\n{}\n", old.trim_end(), md.trim_end()),
        };
        std::fs::write(out, new).unwrap();
        eprintln!("bench-scale: wrote {}", out.display());
    }
}
