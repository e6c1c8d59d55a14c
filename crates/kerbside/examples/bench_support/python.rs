//! The second load generator of `bench_suite`: Negotiate tokens made the way Python
//! clients make them (python-gssapi in the peers venv, a fresh context per request,
//! `scripts/bench_python.py`), against the same gate as `kerbside bench`, in the same
//! run. Token making is inside the timed window here (in `kerbside bench` it is done
//! ahead), so the request rate is lower; the figure is the gate's CPU per request.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Medians of the rounds of one mode.
#[derive(Debug, Clone, Default)]
pub struct PythonCell {
    pub cpu_us: f64,
    pub rps: f64,
    pub errors: u64,
    pub rounds: Vec<f64>,
}

/// Where the generator is and what it needs.
pub struct Generator<'a> {
    pub python: &'a Path,
    pub script: &'a Path,
    pub ca_pem: &'a Path,
    pub env: Vec<(OsString, OsString)>,
}

impl Generator<'_> {
    /// `rounds` rounds of `secs` seconds against `url`, 2 processes (connections).
    pub fn cell(&self, url: &str, server_pid: u32, rounds: usize, secs: u64) -> PythonCell {
        let mut cpu = Vec::new();
        let mut rps = Vec::new();
        let mut errors = 0;
        for _ in 0..rounds {
            let out = Command::new(self.python)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .arg(self.script)
                .arg(url)
                .arg("--cacert")
                .arg(self.ca_pem)
                .args(["--server-pid", &server_pid.to_string(), "-c", "2", "-d"])
                .arg(secs.to_string())
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", self.python.display()));
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{}: no report ({e}): {}",
                    self.script.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            errors += report["errors"].as_u64().unwrap_or(0);
            if let Some(us) = report["server_cpu_us_per_request"].as_f64() {
                cpu.push(us);
            }
            rps.push(report["requests_per_s"].as_f64().unwrap_or(0.0));
        }
        PythonCell {
            cpu_us: super::median(&cpu),
            rps: super::median(&rps),
            errors,
            rounds: cpu,
        }
    }
}

/// The BENCHMARKS.md section: both generators side by side (gate, HTTPS).
pub fn section(
    python: &BTreeMap<&str, PythonCell>,
    kerbside: &BTreeMap<&str, (f64, f64)>,
) -> String {
    let mut s = String::from(
        "\n## Two load generators (gate, HTTPS, same run)\n\n\
         `kerbside bench` makes its tokens ahead of the timed window; \
         `scripts/bench_python.py` makes each one in the window with python-gssapi (MIT's \
         initiator through Python, a fresh SPNEGO context per request, 2 processes on \
         keep-alive connections), as a Python client does. Gate CPU per request (median):\n\n\
         | mode | kerbside bench µs | python-gssapi µs | kerbside bench req/s | python-gssapi req/s | python errors |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (mode, cell) in python {
        let (k_us, k_rps) = kerbside.get(mode).copied().unwrap_or((f64::NAN, f64::NAN));
        let _ = writeln!(
            s,
            "| {mode} | {k_us:.0} | {:.0} | {k_rps:.0} | {:.0} | {} |",
            cell.cpu_us, cell.rps, cell.errors
        );
    }
    let _ = writeln!(
        s,
        "\nRounds (python-gssapi, µs per request): {}",
        python
            .iter()
            .map(|(m, c)| format!(
                "{m} {:?}",
                c.rounds.iter().map(|v| v.round()).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    s.push_str(
        "\nThe gap between the two: python-gssapi makes each token inside the timed window, \
         so its request rate is lower and the two cores are shared with the client's own \
         Kerberos work; at a lower rate the gate's runtime sleeps between requests more \
         often (more futex and epoll wake-ups per request) and each accept runs on colder \
         caches, which shows most in the no-auth row.\n",
    );
    s
}
