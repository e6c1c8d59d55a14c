//! `kerbside proxy` at scale (issue 13): 1000 `CONNECT` tunnels open at the same
//! time through the proxy to Squid requiring Negotiate (negotiate_kerberos_auth
//! against the test realm), to an origin in this test; a cold proxy (no upstream
//! connection, no service ticket yet), so every first-use path is hit at once.
//! Every tunnel must be accepted, stay open until all 1000 are, and then carry its
//! own exchange; Squid's access log must name alice for each of them.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::kerbside;
use kerbside_testkit::{Squid, SquidOptions, TestRealm};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// Tunnels open at once.
const TUNNELS: usize = 1000;
/// The whole run's deadline: opening every tunnel, then every exchange.
const DEADLINE: Duration = Duration::from_secs(180);

/// The open-file limit this test needs: its own end of each tunnel and of each
/// origin connection, with room for the runtime.
const NEEDED_FDS: u64 = 2 * TUNNELS as u64 + 256;

/// Raises this process's soft open-file limit to its hard limit (the proxy and
/// Squid inherit it), and fails with a clear message when even that is too low.
fn raise_fd_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .map(|h| h.parse::<u64>().unwrap_or(u64::MAX))
        .unwrap();
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .expect("prlimit (util-linux) is needed to raise the open-file limit");
    assert!(status.success(), "prlimit failed");
    assert!(
        hard >= 3 * NEEDED_FDS,
        "the hard open-file limit is {hard}: 1000 tunnels need about {} descriptors in this \
         test, the proxy and Squid each; raise it (ulimit -Hn / LimitNOFILE)",
        NEEDED_FDS
    );
}

/// An origin that answers `ping N\n` with `pong N\n` on each connection, and counts
/// the connections open at the moment.
async fn origin(open: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let open = open.clone();
            tokio::spawn(async move {
                open.fetch_add(1, Ordering::SeqCst);
                let mut lines = BufReader::new(tcp);
                let mut line = String::new();
                while matches!(lines.read_line(&mut line).await, Ok(n) if n > 0) {
                    let answer = line.replacen("ping", "pong", 1);
                    if lines.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                    line.clear();
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    addr
}

/// `CONNECT` to `target` through the proxy at `proxy`: the stream after the `200`.
async fn open_tunnel(proxy: SocketAddr, target: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("connect to the proxy: {e}"))?;
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("send CONNECT: {e}"))?;
    // Byte by byte: nothing after the head may be taken from the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = s
            .read_u8()
            .await
            .map_err(|e| format!("read the answer: {e}"))?;
        head.push(b);
    }
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(s)
    } else {
        Err(String::from_utf8_lossy(&head).into_owned())
    }
}

/// `ping i` through the tunnel, `pong i` back.
async fn exchange(s: TcpStream, i: usize) -> Result<(), String> {
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(format!("ping {i}\n").as_bytes())
        .await
        .map_err(|e| format!("send through the tunnel: {e}"))?;
    let mut answer = String::new();
    s.read_line(&mut answer)
        .await
        .map_err(|e| format!("read through the tunnel: {e}"))?;
    if answer == format!("pong {i}\n") {
        Ok(())
    } else {
        Err(format!("tunnel {i} answered {answer:?}"))
    }
}

#[test]
fn a_thousand_tunnels_open_at_once_through_squid_with_negotiate() {
    raise_fd_limit();
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let target = runtime.block_on(origin(open.clone()));
    let mut cmd = kerbside(&realm);
    cmd.env_remove("no_proxy").env_remove("NO_PROXY").args([
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--proxy",
        &squid.url(),
    ]);
    let p = common::GateProcess::from_command(cmd);
    let port: u16 = p.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = SocketAddr::from(([127, 0, 0, 1], port));

    let barrier = Arc::new(Barrier::new(TUNNELS));
    let run = async {
        let tasks: Vec<_> = (0..TUNNELS)
            .map(|i| {
                let barrier = barrier.clone();
                let open = open.clone();
                tokio::spawn(async move {
                    let tunnel = open_tunnel(proxy, target).await;
                    // Every task arrives, tunnel or not, so no one waits forever; the
                    // leader sees how many tunnels are open at this moment.
                    let at_once = barrier
                        .wait()
                        .await
                        .is_leader()
                        .then(|| open.load(Ordering::SeqCst));
                    let result = match tunnel {
                        Ok(s) => exchange(s, i).await,
                        Err(e) => Err(format!("tunnel {i}: {e}")),
                    };
                    (result, at_once)
                })
            })
            .collect();
        let mut failures = Vec::new();
        let mut at_once = None;
        for t in tasks {
            let (result, leader) = t.await.unwrap();
            if let Err(e) = result {
                failures.push(e);
            }
            at_once = at_once.or(leader);
        }
        (failures, at_once)
    };
    let (failures, at_once) = runtime
        .block_on(async { tokio::time::timeout(DEADLINE, run).await })
        .unwrap_or_else(|_| panic!("the tunnels did not finish in {DEADLINE:?}\n{}", p.log()));
    assert!(
        failures.is_empty(),
        "{} of {TUNNELS} tunnels failed, e.g. {:?}\n--- proxy:\n{}\n--- squid:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        p.log(),
        squid.cache_log()
    );
    assert_eq!(
        at_once,
        Some(TUNNELS),
        "the origin saw this many connections open while every tunnel was open"
    );
    // Squid writes a tunnel's line when it closes.
    let line = format!("\"CONNECT {target}\" 200 user=alice@EXAMPLE.TEST");
    let log = squid.wait_access_log(|log| log.matches(&line).count() == TUNNELS);
    assert_eq!(
        log.matches(&line).count(),
        TUNNELS,
        "Squid authenticated every tunnel as alice:\n{}",
        log.lines().take(5).collect::<Vec<_>>().join("\n")
    );
}
