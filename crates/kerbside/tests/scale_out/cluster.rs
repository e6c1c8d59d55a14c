//! The fixture of `tests/scale_out.rs`: one realm and one certificate for the whole
//! binary; gates run as processes (TLS, PROXY protocol, metrics, the replay cache in
//! one Redis) behind Debian's HAProxy in TCP mode with health checks every 200 ms; and
//! client workers (`tests/peers/load_clients.py`: requests with requests-gssapi or
//! requests-ntlm) that record every request with its outcome.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{clean_env, curl, kerbside, text, GateProcess, HeadEchoUpstream};
use kerbside_testkit::{Backend, Haproxy, HaproxyOptions, Redis, SendProxy, TestCa, TestRealm};

/// One realm for the binary, with tickets for alice and bob.
pub fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| {
        let realm = TestRealm::start().unwrap();
        realm
            .kinit("bob", "bob-password", &realm.user_ccache("bob"))
            .unwrap();
        realm
    })
}

/// The PEM files of a CA and of a certificate it issued for localhost.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One CA and certificate for the binary, written into the realm's directory (which
/// the realm's watchdog deletes when the process ends; a `TestCa` kept in a static
/// would leave its own directory behind).
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let ca = TestCa::new();
        let cert = ca.issue(&["localhost"]);
        let dir = realm().dir();
        let tls = Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("localhost.pem"),
            key: dir.join("localhost.key"),
        };
        std::fs::write(&tls.ca, ca.ca_pem()).unwrap();
        std::fs::write(&tls.cert, cert.cert_pem()).unwrap();
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tls.key)
            .unwrap()
            .write_all(cert.key_pem().as_bytes())
            .unwrap();
        tls
    })
}

/// The CA's PEM file.
pub fn ca() -> &'static Path {
    &tls().ca
}

/// The tests that put load on the machine (2 cores) run one at a time.
pub fn load_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TLS gate in front of `upstream` that takes the PROXY protocol (from loopback) and
/// serves metrics.
pub fn gate(upstream: &str, extra: &[&str]) -> GateProcess {
    let realm = realm();
    let mut cmd = kerbside(realm);
    cmd.args([
        "gate",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ])
    .arg("--keytab")
    .arg(realm.keytab())
    .args(["--upstream", upstream])
    .arg("--tls-cert")
    .arg(&tls().cert)
    .arg("--tls-key")
    .arg(&tls().key)
    .arg("--proxy-protocol")
    .args(extra);
    GateProcess::from_command(cmd)
}

/// The gate's port on 127.0.0.1.
pub fn port_of(gate: &GateProcess) -> u16 {
    gate.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// HAProxy (TCP mode, PROXY v2, health checks on `/.kerbside/health` every 200 ms,
/// `fall 1 rise 1`) in front of `gates`, once its checks see every gate up.
pub fn haproxy(gates: &[&GateProcess]) -> Haproxy {
    let haproxy = Haproxy::start(&HaproxyOptions {
        backends: gates
            .iter()
            .map(|g| Backend {
                port: port_of(g),
                send_proxy: SendProxy::V2,
            })
            .collect(),
        health_path: Some("/.kerbside/health".to_owned()),
        tls_checks: true,
    })
    .unwrap();
    let n = gates.len();
    let up = wait_statuses(&haproxy, |s| s.len() == n && s.iter().all(|s| s == "UP"));
    assert!(
        up.len() == n && up.iter().all(|s| s == "UP"),
        "{up:?}\n{}",
        haproxy.log()
    );
    haproxy
}

/// Polls HAProxy's view of the gates until `want` holds (10 s at most).
pub fn wait_statuses(haproxy: &Haproxy, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The stats socket may appear a moment after the listener.
        let statuses = haproxy.statuses();
        if Instant::now() > deadline {
            return statuses.unwrap();
        }
        match statuses {
            Ok(statuses) if want(&statuses) => return statuses,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three (or more) gates sharing one Redis replay cache behind one HAProxy, in front of
/// one echo upstream.
pub struct Cluster {
    pub gates: Vec<GateProcess>,
    pub haproxy: Haproxy,
    pub upstream: HeadEchoUpstream,
    pub redis: Redis,
}

impl Cluster {
    /// One gate per entry of `extra` (its own arguments, after the shared
    /// `--replay-cache redis://...`); the upstream answers each request after `delay`.
    pub fn start(delay: Duration, extra: &[&[&str]]) -> Cluster {
        let redis = Redis::start().unwrap();
        let upstream = HeadEchoUpstream::start(delay);
        let url = redis.url();
        let gates: Vec<GateProcess> = extra
            .iter()
            .map(|args| {
                let mut all = vec!["--replay-cache", url.as_str()];
                all.extend_from_slice(args);
                gate(&upstream.url(), &all)
            })
            .collect();
        let haproxy = haproxy(&gates.iter().collect::<Vec<_>>());
        Cluster {
            gates,
            haproxy,
            upstream,
            redis,
        }
    }

    /// `https://localhost:PORT{path}` of HAProxy.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.haproxy.port())
    }

    /// Every gate's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = format!("haproxy:\n{}\n", self.haproxy.log());
        for (i, gate) in self.gates.iter().enumerate() {
            all.push_str(&format!("gate{i}:\n{}\n", gate.log()));
        }
        all
    }
}

/// The status of the last response in `curl -i` output.
pub fn status_of(out: &Output) -> u16 {
    let (stdout, _) = text(out);
    stdout
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The values of `name` among the header lines the upstream echoed (every response in
/// the output).
pub fn echoed(out: &Output, name: &str) -> Vec<String> {
    text(out)
        .0
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// `curl -i` with the realm's environment (alice's ticket) and our CA.
pub fn curl_i() -> Command {
    let mut cmd = curl(realm(), ca());
    cmd.args(["-i", "--max-time", "20"]);
    cmd
}

/// A fresh SPNEGO token for `HTTP@localhost` from python-gssapi, base64, with alice's
/// ticket.
pub fn python_token() -> String {
    let python = kerbside_testkit::require_peers_python();
    let out = Command::new(python)
        .envs(realm().env())
        .args([
            "-c",
            "import base64, gssapi\n\
             name = gssapi.Name('HTTP@localhost', gssapi.NameType.hostbased_service)\n\
             spnego = gssapi.OID.from_int_seq('1.3.6.1.5.5.2')\n\
             ctx = gssapi.SecurityContext(name=name, usage='initiate', mech=spnego)\n\
             print(base64.b64encode(ctx.step()).decode())",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "python-gssapi: {:?}", text(&out));
    text(&out).0.trim().to_owned()
}

/// Sends `kill -SIGNAL pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Seconds since the epoch (the load client's clock).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits until `pred` holds, polling every 20 ms, for `limit` at most.
pub fn wait_until(limit: Duration, pred: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pred()
}

/// TCP connections the gate listening on `port` holds now (accepted or waiting in its
/// accept queue, including those whose client side already closed), from
/// /proc/net/tcp.
pub fn connections_to(port: u16) -> usize {
    // States: 01 ESTABLISHED, 03 SYN_RECV, 08 CLOSE_WAIT.
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && matches!(fields.get(3), Some(&"01" | &"03" | &"08"))
        })
        .count()
}

/// A random 32-byte session key file, mode 600.
pub fn session_key(path: &Path) {
    let mut key = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key).unwrap();
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .unwrap()
        .write_all(&key)
        .unwrap();
}

/// A client worker of [`Load`]: how it logs in and how many requests it sends on each
/// connection.
pub struct Worker {
    /// `negotiate` (a token with every request), `negotiate-connection` (a token after
    /// a 401 only) or `ntlm`.
    pub scheme: &'static str,
    /// The user it logs in as (`DOMAIN\user` for NTLM), as the upstream must see it.
    pub user: String,
    /// Its ticket cache (`FILE:...`) or NTLM password.
    pub secret: String,
    pub per_connection: u32,
}

/// A Negotiate worker with `user`'s ticket cache.
pub fn negotiate(scheme: &'static str, user: &str, per_connection: u32) -> Worker {
    Worker {
        scheme,
        user: realm().principal(user),
        secret: format!("FILE:{}", realm().user_ccache(user).display()),
        per_connection,
    }
}

/// One request as a worker recorded it.
#[derive(Debug, Clone)]
pub struct Record {
    pub worker: u64,
    pub connection: u64,
    pub start: f64,
    pub end: f64,
    /// 0 when the request failed without a response.
    pub status: u16,
    /// The `x-remote-user` values the upstream saw.
    pub users: Vec<String>,
    /// The user the worker logged in as.
    pub user: String,
    pub error: Option<String>,
}

impl Record {
    /// A 200 whose request reached the upstream as the worker's own user, once.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.users == [self.user.clone()]
    }
}

/// Client workers running in one Python process until [`finish`](Self::finish).
pub struct Load {
    child: Child,
    out: PathBuf,
    stop: PathBuf,
    _dir: tempfile::TempDir,
}

impl Load {
    /// Starts `workers` against `url`; they stop by themselves after 60 s.
    pub fn start(url: &str, workers: &[Worker]) -> Load {
        let python = kerbside_testkit::require_peers_python();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/load_clients.py");
        let dir = tempfile::Builder::new()
            .prefix("kerbside-load-")
            .tempdir()
            .unwrap();
        let out = dir.path().join("records.jsonl");
        let stop = dir.path().join("stop");
        let mut cmd = Command::new(python);
        clean_env(&mut cmd);
        cmd.envs(realm().env())
            .arg(script)
            .args(["--url", url, "--max-seconds", "60"])
            .arg("--ca")
            .arg(ca())
            .arg("--out")
            .arg(&out)
            .arg("--stop")
            .arg(&stop);
        for w in workers {
            cmd.arg("--worker").arg(format!(
                "{}:{}:{}:{}",
                w.scheme, w.user, w.secret, w.per_connection
            ));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Load {
            child,
            out,
            stop,
            _dir: dir,
        }
    }

    /// Tells the workers to stop, waits for them (30 s at most) and returns every
    /// request they recorded, in the order they ended.
    pub fn finish(mut self) -> Vec<Record> {
        std::fs::write(&self.stop, b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the load clients did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(status.success(), "load_clients.py failed: {stderr}");
        let text = std::fs::read_to_string(&self.out).unwrap();
        let mut records: Vec<Record> = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                Record {
                    worker: v["worker"].as_u64().unwrap(),
                    connection: v["connection"].as_u64().unwrap(),
                    start: v["start"].as_f64().unwrap(),
                    end: v["end"].as_f64().unwrap(),
                    status: v["status"].as_u64().unwrap() as u16,
                    users: v["users"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|u| u.as_str().unwrap().to_owned())
                        .collect(),
                    user: v["as"].as_str().unwrap().to_owned(),
                    error: v["error"].as_str().map(str::to_owned),
                }
            })
            .collect();
        records.sort_by(|a, b| a.end.total_cmp(&b.end));
        records
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records that are not [`Record::ok`], for failure messages.
pub fn failures(records: &[Record]) -> Vec<&Record> {
    records.iter().filter(|r| !r.ok()).collect()
}
