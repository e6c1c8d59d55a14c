//! The forward-proxy benchmark of issue 13, run by `scripts/bench-proxy.sh`:
//! `kerbside proxy`, cntlm and px in front of the same Squid, and Squid used
//! directly as the reference, with the same lighttpd origin; writes a section of
//! `BENCHMARKS.md`.
//!
//! Everything runs on this machine, in temporary directories, on free loopback
//! ports: a test realm (a real MIT KDC), Squid with `negotiate_kerberos_auth`
//! (kerbside proxy and px authenticate with alice's ticket), Squid with an NTLM
//! helper (cntlm has no Kerberos in Debian's build: NTLMv2 with alice's password),
//! an open Squid (the reference, used directly; and the Kerberos Squid used directly
//! with a Negotiate token per CONNECT, the reference that pays Squid's Kerberos
//! helper as kerbside proxy does), lighttpd (HTTP and HTTPS) as the origin. Measured, each proxy in turn: keep-alive plain-HTTP GETs at 4 and 64
//! clients (requests/s, and the proxy's CPU µs per request from /proc, its
//! processes and their children), CONNECT + TLS handshake + GET per second (8
//! clients), and MB/s of a 256 MiB file through one tunnel against the direct
//! figure.
//!
//! ```text
//! cargo build --release -p kerbside --bin kerbside --example bench_proxy
//! target/release/examples/bench_proxy --kerbside target/release/kerbside \
//!     --cntlm /usr/sbin/cntlm --px target/px-venv/bin/px --out BENCHMARKS.md
//! ```
#![allow(clippy::unwrap_used)]

#[path = "bench_support/negotiate_tunnels.rs"]
mod negotiate_tunnels;
#[path = "bench_support/plot.rs"]
mod plot;
#[path = "bench_support/proxy_plot.rs"]
mod proxy_plot;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kerbside_testkit::{
    free_port, Lighttpd, LighttpdOptions, ProxyScheme, Squid, SquidOptions, TestCa, TestRealm,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BIG_BYTES: usize = 256 << 20;

struct Args {
    kerbside: PathBuf,
    cntlm: PathBuf,
    px: PathBuf,
    out: Option<PathBuf>,
    svg: Option<PathBuf>,
    secs: u64,
    command: String,
    /// Only kerbside proxy and the reference (a quicker run while tuning).
    only_kerbside: bool,
}

fn args() -> Args {
    let mut a = Args {
        kerbside: "target/release/kerbside".into(),
        cntlm: "/usr/sbin/cntlm".into(),
        px: "target/px-venv/bin/px".into(),
        out: None,
        svg: None,
        secs: 5,
        command: "scripts/bench-proxy.sh".into(),
        only_kerbside: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--only-kerbside" {
            a.only_kerbside = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--kerbside" => a.kerbside = value.into(),
            "--cntlm" => a.cntlm = value.into(),
            "--px" => a.px = value.into(),
            "--out" => a.out = Some(value.into()),
            "--svg" => a.svg = Some(value.into()),
            "--secs" => a.secs = value.parse().unwrap(),
            "--command" => a.command = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// A proxy under test: its address, its process (stopped on drop), its log.
struct Proxy {
    name: &'static str,
    addr: SocketAddr,
    child: Option<Child>,
    pid: u32,
    /// The upstream proxy's pid, for the diagnostics.
    upstream: Option<u32>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(name: &'static str, mut cmd: Command, port: u16, log: &Path) -> Proxy {
    let file = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {addr}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    Proxy {
        name,
        addr,
        child: Some(child),
        pid,
        upstream: None,
    }
}

/// utime + stime of `pid` and its descendants, in µs.
fn cpu_micros(pid: u32) -> u64 {
    let tick = 1_000_000 / 100; // USER_HZ is 100 on Linux
    let mut total = 0;
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let p = pids[i];
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the name: state(0) ppid(1) ... utime(11) stime(12)
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * tick;
            total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * tick;
        }
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    total
}

/// Reads one response (head, and a Content-Length body); `Ok(keep_alive)`.
async fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    let mut close = line.starts_with("HTTP/1.0");
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            let (n, v) = (n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if n == "content-length" {
                length = v.parse().unwrap_or(0);
            } else if (n == "connection" || n == "proxy-connection") && v == "close" {
                close = true;
            } else if (n == "connection" || n == "proxy-connection") && v == "keep-alive" {
                close = false;
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await?;
    Ok((status, !close))
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: u64,
    errors: u64,
    reconnects: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.ok += o.ok;
        self.errors += o.errors;
        self.reconnects += o.reconnects;
    }
}

/// Keep-alive GETs of `url` through `proxy` from `clients` connections for `secs`.
async fn gets(proxy: SocketAddr, url: &str, clients: usize, secs: f64) -> Tally {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let request = format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n");
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut conn: Option<BufReader<TcpStream>> = None;
            // Whether the connection has answered before: a reused one that fails
            // was closed by the proxy after a response that announced keep-alive
            // (cntlm does): counted as a reconnect, not an error.
            let mut reused = false;
            while Instant::now() < deadline {
                if conn.is_none() {
                    reused = false;
                    match TcpStream::connect(proxy).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            conn = Some(BufReader::new(s));
                            t.reconnects += 1;
                        }
                        Err(_) => {
                            t.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let result = async {
                    c.get_mut().write_all(request.as_bytes()).await?;
                    read_response(c).await
                };
                match tokio::time::timeout(Duration::from_secs(10), result).await {
                    Ok(Ok((200, keep))) => {
                        t.ok += 1;
                        reused = true;
                        if !keep {
                            conn = None;
                        }
                    }
                    Ok(Err(e)) if reused && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        conn = None;
                    }
                    _ => {
                        t.errors += 1;
                        conn = None;
                    }
                }
            }
            t
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total += task.await.unwrap();
    }
    total.reconnects = total.reconnects.saturating_sub(clients as u64);
    total
}

/// CONNECT to `target`, TLS to it, GET /bench, close: repeated by `clients` for
/// `secs`. `proxy` `None`: straight to the origin (no CONNECT).
async fn tunnels(
    proxy: Option<SocketAddr>,
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    clients: usize,
    secs: f64,
) -> Tally {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while Instant::now() < deadline {
                let one = async {
                    let s = TcpStream::connect(proxy.unwrap_or(target)).await?;
                    s.set_nodelay(true)?;
                    let connect = proxy.map(|_| (target.port(), None));
                    negotiate_tunnels::tls_get(s, connect, tls.clone()).await
                };
                match tokio::time::timeout(Duration::from_secs(10), one).await {
                    Ok(Ok(())) => t.ok += 1,
                    _ => t.errors += 1,
                }
            }
            t
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total += task.await.unwrap();
    }
    total
}

/// MB/s of GET /big.bin over one connection, through a CONNECT tunnel of `proxy`
/// or straight to the origin.
async fn throughput(proxy: Option<SocketAddr>, origin: SocketAddr) -> Option<f64> {
    let started = Instant::now();
    let s = TcpStream::connect(proxy.unwrap_or(origin)).await.ok()?;
    s.set_nodelay(true).ok()?;
    let mut r = BufReader::with_capacity(1 << 16, s);
    let port = origin.port();
    if proxy.is_some() {
        r.get_mut()
            .write_all(
                format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .ok()?;
        let mut line = String::new();
        r.read_line(&mut line).await.ok()?;
        if !line.contains(" 200 ") {
            return None;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await.ok()? == 0 || h.trim().is_empty() {
                break;
            }
        }
    }
    r.get_mut()
        .write_all(format!("GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let (status, _) = {
        // Head only: the body is read below in large pieces.
        let mut line = String::new();
        r.read_line(&mut line).await.ok()?;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await.ok()? == 0 || h.trim().is_empty() {
                break;
            }
        }
        (line.contains(" 200 "), ())
    };
    if !status {
        return None;
    }
    let mut left = BIG_BYTES;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = r.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        left = left.saturating_sub(n);
    }
    Some(BIG_BYTES as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// `n` CONNECT tunnels to `origin` (plain HTTP) through `proxy`, all open at once
/// (each waits for the others after its `200`), then a GET of `/bench` through
/// each: `(tunnels that completed their GET, failures)`.
async fn at_once(proxy: SocketAddr, origin: SocketAddr, n: usize) -> (u64, u64) {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let open = async {
                    let s = TcpStream::connect(proxy).await?;
                    s.set_nodelay(true)?;
                    let mut r = BufReader::new(s);
                    r.get_mut()
                        .write_all(
                            format!("CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n\r\n")
                                .as_bytes(),
                        )
                        .await?;
                    let (status, _) = read_response(&mut r).await?;
                    if status == 200 {
                        Ok(r)
                    } else {
                        Err(std::io::Error::other(format!("CONNECT answered {status}")))
                    }
                };
                let tunnel = tokio::time::timeout(Duration::from_secs(60), open).await;
                barrier.wait().await;
                let Ok(Ok(mut r)) = tunnel else {
                    return false;
                };
                let get = async {
                    r.get_mut()
                        .write_all(
                            format!("GET /bench HTTP/1.1\r\nHost: {origin}\r\n\r\n").as_bytes(),
                        )
                        .await?;
                    read_response(&mut r).await
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(60), get).await,
                    Ok(Ok((200, _)))
                )
            })
        })
        .collect();
    let mut done = (0, 0);
    for t in tasks {
        if t.await.unwrap_or(false) {
            done.0 += 1;
        } else {
            done.1 += 1;
        }
    }
    done
}

#[derive(Default, Clone)]
struct Row {
    name: String,
    get4: Option<(f64, f64, u64, u64)>,
    get64: Option<(f64, f64, u64, u64)>,
    tunnels: Option<(f64, u64)>,
    mbps: Option<f64>,
    /// The proxy's CPU µs per tunnel (CONNECT+TLS+GET), and per MB through one.
    tunnel_cpu: Option<f64>,
    cpu_per_mb: Option<f64>,
    /// 1000 tunnels at once: completed, failed.
    at_once: Option<(u64, u64)>,
    note: String,
}

async fn measure(
    p: &Proxy,
    url: &str,
    tls_target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    origin: SocketAddr,
    secs: u64,
) -> Row {
    let mut row = Row {
        name: p.name.to_owned(),
        ..Row::default()
    };
    // Warm up: the first handshakes with the upstream are not timed.
    // Warm up: the first handshakes with the upstream (one per upstream connection,
    // up to 64) are not timed; the cells measure the steady state.
    let drops = listen_drops();
    let warm = gets(p.addr, url, 64, 3.0).await;
    eprintln!(
        "bench-proxy:   {}: warm-up: {} ok, {} errors, listen drops +{}",
        p.name,
        warm.ok,
        warm.errors,
        listen_drops() - drops
    );
    if warm.ok == 0 {
        row.note = format!(
            "no successful request in the warm-up ({} errors)",
            warm.errors
        );
        return row;
    }
    for clients in [4usize, 64] {
        let drops = listen_drops();
        let before = cpu_micros(p.pid);
        let started = Instant::now();
        let t = gets(p.addr, url, clients, secs as f64).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_micros(p.pid) - before;
        eprintln!(
            "bench-proxy:   {}: {clients} clients: {} ok, {} errors, listen drops +{}",
            p.name,
            t.ok,
            t.errors,
            listen_drops() - drops
        );
        let cell = (
            t.ok as f64 / elapsed,
            if t.ok > 0 {
                cpu as f64 / t.ok as f64
            } else {
                f64::NAN
            },
            t.errors,
            t.reconnects,
        );
        if clients == 4 {
            row.get4 = Some(cell);
        } else {
            row.get64 = Some(cell);
        }
    }
    let (before, up_before, drops_before) = (cpu_micros(p.pid), upstream_cpu(p), listen_drops());
    let started = Instant::now();
    let t = tunnels(Some(p.addr), tls_target, tls, 8, secs as f64).await;
    row.tunnels = Some((t.ok as f64 / started.elapsed().as_secs_f64(), t.errors));
    let per = |v: u64| v as f64 / t.ok.max(1) as f64;
    row.tunnel_cpu = Some(per(cpu_micros(p.pid) - before));
    eprintln!(
        "bench-proxy:   {}: tunnels: {:.0} µs CPU per tunnel in the proxy, {:.0} in its \
         upstream; listen drops +{}",
        p.name,
        per(cpu_micros(p.pid) - before),
        per(upstream_cpu(p) - up_before),
        listen_drops() - drops_before
    );
    let before = cpu_micros(p.pid);
    row.mbps = throughput(Some(p.addr), origin).await;
    row.cpu_per_mb = Some((cpu_micros(p.pid) - before) as f64 / (BIG_BYTES as f64 / 1e6));
    row
}

/// CPU µs of the proxy's upstream (Squid and its helpers), for the diagnostics.
fn upstream_cpu(p: &Proxy) -> u64 {
    p.upstream.map_or(0, cpu_micros)
}

/// The kernel's count of connections dropped at a full listen queue
/// (`TcpExtListenDrops` of `nstat`), machine-wide.
fn listen_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenDrops")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Tunnels opened at once by [`at_once`] (issue 13: 0 errors at 1000).
const AT_ONCE: usize = 1000;

fn f0(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.0}")
    }
}

fn main() {
    let a = args();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let origin = Lighttpd::start(LighttpdOptions {
        cert: Some(&cert),
        plain_http: true,
        digest: None,
        http2: false,
    })
    .unwrap();
    std::fs::write(origin.dir().join("htdocs/big.bin"), vec![b'k'; BIG_BYTES]).unwrap();
    let plain = SocketAddr::from(([127, 0, 0, 1], origin.plain_port().unwrap()));
    let tls_target = SocketAddr::from(([127, 0, 0, 1], origin.port().unwrap()));
    let url = format!("http://127.0.0.1:{}/bench", plain.port());
    let squid_k = Squid::start(&realm, SquidOptions::default()).unwrap();
    let squid_n = Squid::start(
        &realm,
        SquidOptions {
            require_auth: true,
            scheme: ProxyScheme::NtlmFake,
        },
    )
    .unwrap();
    let squid_open = Squid::start(
        &realm,
        SquidOptions {
            require_auth: false,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    // Kept after the run: each proxy's log, for a cell that failed.
    let logs = PathBuf::from("target/bench-proxy");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut rows = Vec::new();
    let mut extra = Vec::new();
    let say = |s: &str| eprintln!("bench-proxy: {s}");

    // kerbside proxy: Negotiate (alice's ticket) to the Kerberos Squid. Kept running
    // for the alternated tunnel rounds against the Kerberos Squid used directly.
    let kerbside_proxy = {
        let port = free_port().unwrap();
        let mut cmd = Command::new(&a.kerbside);
        cmd.envs(realm.env())
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--proxy"])
            .arg(format!("localhost:{}", squid_k.port()));
        let mut p = spawn("kerbside proxy", cmd, port, &logs.join("kerbside.log"));
        p.upstream = Some(squid_k.pid());
        say("kerbside proxy");
        let mut row = runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs));
        say(&format!("kerbside proxy, {AT_ONCE} tunnels at once"));
        let drops = listen_drops();
        row.at_once = Some(runtime.block_on(at_once(p.addr, plain, AT_ONCE)));
        eprintln!("bench-proxy:   listen drops +{}", listen_drops() - drops);
        rows.push(row);
        p
    };
    // kerbside proxy in front of the open Squid: the proxy's own cost, without
    // authentication upstream.
    if !a.only_kerbside {
        let port = free_port().unwrap();
        let mut cmd = Command::new(&a.kerbside);
        cmd.envs(realm.env())
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--proxy"])
            .arg(format!("localhost:{}", squid_open.port()));
        let mut p = spawn(
            "kerbside proxy, open Squid (no auth)",
            cmd,
            port,
            &logs.join("kerbside-open.log"),
        );
        p.upstream = Some(squid_open.pid());
        say("kerbside proxy, open Squid");
        extra.push(runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs)));
    }
    let skipped = |name: &str| Row {
        name: name.into(),
        note: "not run: --only-kerbside".into(),
        ..Row::default()
    };
    // kerbside proxy with no upstream (tunnels straight to the origin): its own
    // cost per tunnel and per MB, against "direct to the origin".
    if !a.only_kerbside {
        let port = free_port().unwrap();
        let mut cmd = Command::new(&a.kerbside);
        cmd.envs(realm.env())
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .args(["proxy", "--listen", &format!("127.0.0.1:{port}")]);
        let p = spawn(
            "kerbside proxy, no upstream (direct to the origin)",
            cmd,
            port,
            &logs.join("kerbside-direct.log"),
        );
        say("kerbside proxy, no upstream");
        extra.push(runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs)));
    }
    // cntlm: NTLMv2 with alice's password to the NTLM Squid.
    if a.only_kerbside {
        rows.push(skipped("cntlm"));
    } else if a.cntlm.exists() {
        let port = free_port().unwrap();
        let conf = logs.join("cntlm.conf");
        std::fs::write(
            &conf,
            format!(
                "Username alice\nDomain EXAMPLE\nPassword alice-password\nAuth NTLM\n\
                 Proxy 127.0.0.1:{}\nListen 127.0.0.1:{port}\n",
                squid_n.port()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(&a.cntlm);
        cmd.args(["-f", "-c"]).arg(&conf);
        let p = spawn("cntlm", cmd, port, &logs.join("cntlm.log"));
        say("cntlm");
        let mut row = runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs));
        row.note
            .push_str(" NTLM to Squid's fake NTLM helper: Debian's cntlm has no Kerberos, and its NTLMv2 needs a target info block the helper does not send");
        rows.push(row);
    } else {
        rows.push(Row {
            name: "cntlm".into(),
            note: format!("{} is missing", a.cntlm.display()),
            ..Row::default()
        });
    }
    // px: Negotiate (alice's ticket, through libcurl's GSSAPI) to the Kerberos Squid.
    if a.only_kerbside {
        rows.push(skipped("px"));
    } else if a.px.exists() {
        let port = free_port().unwrap();
        let mut cmd = Command::new(&a.px);
        cmd.envs(realm.env())
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .arg(format!("--server=localhost:{}", squid_k.port()))
            .arg(format!("--port={port}"))
            .args(["--listen=127.0.0.1", "--auth=NEGOTIATE"]);
        let p = spawn("px", cmd, port, &logs.join("px.log"));
        say("px");
        rows.push(runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs)));
    } else {
        rows.push(Row {
            name: "px".into(),
            note: format!("{} is missing", a.px.display()),
            ..Row::default()
        });
    }
    // Squid used directly (open, no authentication): the reference.
    {
        let p = Proxy {
            name: "Squid directly (reference, no auth)",
            addr: SocketAddr::from(([127, 0, 0, 1], squid_open.port())),
            child: None,
            pid: squid_open.pid(),
            upstream: None,
        };
        say("Squid directly");
        let mut row = runtime.block_on(measure(&p, &url, tls_target, tls.clone(), plain, a.secs));
        say(&format!("Squid directly, {AT_ONCE} tunnels at once"));
        let drops = listen_drops();
        row.at_once = Some(runtime.block_on(at_once(p.addr, plain, AT_ONCE)));
        eprintln!("bench-proxy:   listen drops +{}", listen_drops() - drops);
        rows.push(row);
    }
    let mut alternated: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    // The Kerberos Squid used directly, a Negotiate token per CONNECT made by the
    // load generator: the reference that pays Squid's Kerberos helper per tunnel,
    // as kerbside proxy's row does. Its CPU is Squid's, with its helpers.
    {
        say("Squid with Kerberos directly");
        let _env = realm.enter();
        let squid = SocketAddr::from(([127, 0, 0, 1], squid_k.port()));
        let run = |secs| {
            let t =
                negotiate_tunnels::tunnels(squid, "localhost", tls_target, tls.clone(), 8, secs);
            runtime.block_on(t)
        };
        run(1.0); // warm-up: the service ticket, Squid's helpers
                  // Both paths end at Squid's Kerberos helper, and cells measured minutes apart
                  // differ by the machine's noise: rounds alternate between kerbside proxy and
                  // this reference, and the summary compares their medians.
        let (mut cpu, mut ok, mut errors) = (0, 0, 0);
        for _ in 0..ALTERNATED_ROUNDS {
            let started = Instant::now();
            let t = runtime.block_on(tunnels(
                Some(kerbside_proxy.addr),
                tls_target,
                tls.clone(),
                8,
                a.secs as f64,
            ));
            alternated
                .0
                .push(t.ok as f64 / started.elapsed().as_secs_f64());
            let (before, started) = (cpu_micros(squid_k.pid()), Instant::now());
            let (n, e) = run(a.secs as f64);
            alternated
                .1
                .push(n as f64 / started.elapsed().as_secs_f64());
            cpu += cpu_micros(squid_k.pid()) - before;
            ok += n;
            errors += e;
        }
        eprintln!(
            "bench-proxy:   {ok} tunnels, {errors} errors; per second, kerbside proxy {:?}, \
             directly {:?}",
            alternated.0, alternated.1
        );
        rows.push(Row {
            name: "Squid with Kerberos directly (reference: the client makes a Negotiate token per CONNECT; CPU: Squid's)".into(),
            tunnels: Some((median(&alternated.1), errors)),
            tunnel_cpu: Some(cpu as f64 / ok.max(1) as f64),
            ..Row::default()
        });
    }
    // Throughput through one tunnel: single transfers move with the machine's load
    // by tens of percent, so rounds alternate between kerbside proxy (through the
    // Kerberos Squid) and the open Squid used directly, and the summary compares medians.
    let mut alternated_mbps: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    {
        let squid = SocketAddr::from(([127, 0, 0, 1], squid_open.port()));
        for _ in 0..THROUGHPUT_ROUNDS {
            if let Some(m) = runtime.block_on(throughput(Some(kerbside_proxy.addr), plain)) {
                alternated_mbps.0.push(m);
            }
            if let Some(m) = runtime.block_on(throughput(Some(squid), plain)) {
                alternated_mbps.1.push(m);
            }
        }
        eprintln!(
            "bench-proxy:   MB/s through one tunnel, kerbside proxy {:?}, Squid directly {:?}",
            alternated_mbps.0, alternated_mbps.1
        );
    }
    drop(kerbside_proxy);
    let direct_tunnels = runtime.block_on(tunnels(None, tls_target, tls.clone(), 8, a.secs as f64));
    let direct_tunnel_rate = direct_tunnels.ok as f64 / a.secs as f64;
    let direct_mbps = runtime.block_on(throughput(None, plain));

    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- bench-proxy:start -->\n## Forward proxy: kerbside proxy, cntlm, px (issue 13)\n"
    );
    let _ = writeln!(
        md,
        "Written by `{}`: one run, {} s per cell, on this machine (2 cores, shared with \
         the load generator, Squid and lighttpd). The proxy's CPU is utime+stime from \
         /proc of its processes and their children over the timed window, divided by \
         successful requests. kerbside proxy and px authenticate with Negotiate (a \
         Kerberos ticket) to Squid with `negotiate_kerberos_auth`; cntlm (Debian's, no \
         Kerberos) with NTLM to Squid with an NTLM helper; the references are an open \
         Squid used directly, and for tunnels the Kerberos Squid used directly by a client \
         making a Negotiate token per CONNECT (its CPU is Squid's: the Kerberos helper's \
         cost that kerbside proxy's tunnels also cause upstream). Origin: lighttpd, `/bench` (96 bytes) over HTTP, and over \
         HTTPS for the tunnels; MB/s is a 256 MiB file through one CONNECT tunnel. \
         CPU µs/tunnel and µs/MB are the proxy's own CPU (Squid's with its helpers) per \
         CONNECT+TLS+GET and per MB through the tunnel: the figures the load on this \
         shared machine changes least. Load average at the start: {}.\n",
        a.command, a.secs, load
    );
    let _ = writeln!(md, "| | GET req/s, 4 clients | CPU µs/req, 4 | GET req/s, 64 clients | CPU µs/req, 64 | errors / reconnects | CONNECT+TLS+GET /s (8 clients) | CPU µs/tunnel | tunnel MB/s | CPU µs/MB |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let g = |c: Option<(f64, f64, u64, u64)>| {
            c.map_or(("—".into(), "—".into(), 0, 0), |(rps, cpu, e, rc)| {
                (f0(rps), f0(cpu), e, rc)
            })
        };
        let (r4, c4, e4, rc4) = g(r.get4);
        let (r64, c64, e64, rc64) = g(r.get64);
        let (t, te) = r.tunnels.map_or(("—".into(), 0), |(v, e)| (f0(v), e));
        let _ = writeln!(
            md,
            "| {}{} | {r4} | {c4} | {r64} | {c64} | {} / {} | {t}{} | {} | {} | {} |",
            r.name,
            if r.note.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", r.note.trim())
            },
            e4 + e64,
            rc4 + rc64,
            if te > 0 {
                format!(" ({te} errors)")
            } else {
                String::new()
            },
            r.tunnel_cpu.map_or("—".into(), f0),
            // "failed" only where it was measured (not for a skipped or tunnel-only row).
            r.mbps
                .map_or(if r.get4.is_some() { "failed" } else { "—" }.into(), f0),
            r.cpu_per_mb.map_or("—".into(), f0),
        );
    }
    for r in &extra {
        let g = |c: Option<(f64, f64, u64, u64)>| {
            c.map_or(("—".into(), "—".into()), |(rps, cpu, _, _)| {
                (f0(rps), f0(cpu))
            })
        };
        let (r4, c4) = g(r.get4);
        let (r64, c64) = g(r.get64);
        let _ = writeln!(
            md,
            "| {} | {r4} | {c4} | {r64} | {c64} | | {} | {} | {} | {} |",
            r.name,
            r.tunnels.map_or("—".into(), |(v, _)| f0(v)),
            r.tunnel_cpu.map_or("—".into(), f0),
            r.mbps.map_or("failed".into(), f0),
            r.cpu_per_mb.map_or("—".into(), f0),
        );
    }
    let _ = writeln!(
        md,
        "| direct to the origin | | | | | | {} | | {} | |\n",
        f0(direct_tunnel_rate),
        direct_mbps.map_or("failed".into(), f0)
    );
    let k = &rows[0];
    let ratio = |other: &Row| -> String {
        match (k.get4, other.get4, k.get64, other.get64) {
            (Some(a4), Some(b4), Some(a64), Some(b64)) => format!(
                "{:.2} at 4 clients, {:.2} at 64",
                a4.1 / b4.1,
                a64.1 / b64.1
            ),
            _ => "not measured".into(),
        }
    };
    let _ = writeln!(
        md,
        "kerbside proxy's CPU per request against cntlm's: {}; against px's: {}. \
         Tunnel set-up rate against Squid used directly: {} (open Squid, no auth), {} (the \
         Kerberos Squid, the client making a Negotiate token per CONNECT: the medians of {ALTERNATED_ROUNDS} rounds \
         alternated between the two, kerbside proxy {} and directly {} tunnels/s); tunnel throughput against Squid used directly: {} (the medians of {THROUGHPUT_ROUNDS} transfers alternated between the two, kerbside proxy {} and Squid {} MB/s; the table's cells are single transfers), and against direct to the origin (no proxy at all): {}. \
         {AT_ONCE} tunnels open at once, then a GET through each: kerbside proxy {}, Squid directly {}.\n\
         \"reconnects\" counts new client connections the proxy forced by closing after a response (cntlm closes after each one, announcing keep-alive).\n{}<!-- bench-proxy:end -->",
        ratio(&rows[1]),
        ratio(&rows[2]),
        tunnel_ratio(k, &rows[3]),
        if alternated.1.is_empty() || median(&alternated.1) <= 0.0 {
            "not measured".to_owned()
        } else {
            format!(
                "{:.0}%",
                100.0 * median(&alternated.0) / median(&alternated.1)
            )
        },
        rounds_text(&alternated.0),
        rounds_text(&alternated.1),
        if alternated_mbps.0.is_empty() || alternated_mbps.1.is_empty() {
            "not measured".to_owned()
        } else {
            format!(
                "{:.0}%",
                100.0 * median(&alternated_mbps.0) / median(&alternated_mbps.1)
            )
        },
        rounds_text(&alternated_mbps.0),
        rounds_text(&alternated_mbps.1),
        match (k.mbps, direct_mbps) {
            (Some(a), Some(b)) => format!("{:.0}%", 100.0 * a / b),
            _ => "not measured".into(),
        },
        at_once_text(k.at_once),
        at_once_text(rows[3].at_once),
        a.svg.as_ref().map_or(String::new(), |svg| format!(
            "\n![The figures above as bars]({})\n",
            svg.display()
        )),
    );
    println!("{md}");
    if let Some(svg) = &a.svg {
        std::fs::write(
            svg,
            proxy_plot::plot(&rows, &extra, direct_tunnel_rate, direct_mbps, &a.command),
        )
        .unwrap();
        eprintln!("bench-proxy: wrote {}", svg.display());
    }
    if let Some(out) = &a.out {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        let new = match (
            old.find("<!-- bench-proxy:start -->"),
            old.find("<!-- bench-proxy:end -->"),
        ) {
            (Some(s), Some(e)) => format!(
                "{}{}{}",
                &old[..s],
                md.trim_end(),
                &old[e + "<!-- bench-proxy:end -->".len()..]
            ),
            _ => format!("{}\n{}\n", old.trim_end(), md.trim_end()),
        };
        std::fs::write(out, new).unwrap();
        eprintln!("bench-proxy: wrote {}", out.display());
    }
}

/// `a`'s tunnel set-up rate against `b`'s, in percent.
/// Rounds of tunnels alternated between kerbside proxy and the Kerberos Squid
/// used directly.
const ALTERNATED_ROUNDS: usize = 3;
/// Transfers through one tunnel alternated between kerbside proxy and the open
/// Squid used directly.
const THROUGHPUT_ROUNDS: usize = 5;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rounds_text(v: &[f64]) -> String {
    let all: Vec<String> = v.iter().map(|x| f0(*x)).collect();
    format!("[{}]", all.join(", "))
}

fn tunnel_ratio(a: &Row, b: &Row) -> String {
    match (a.tunnels, b.tunnels) {
        (Some((a, _)), Some((b, _))) if b > 0.0 => format!("{:.0}%", 100.0 * a / b),
        _ => "not measured".into(),
    }
}

fn at_once_text(cell: Option<(u64, u64)>) -> String {
    match cell {
        Some((ok, 0)) => format!("all {ok} completed, 0 errors"),
        Some((ok, errors)) => format!("{ok} completed, {errors} errors"),
        None => "not measured".into(),
    }
}
