//! The gate's pool of keep-alive connections to its upstream is bounded: a burst of
//! concurrent requests opens as many upstream connections as it needs, and afterwards
//! the gate keeps at most 256 of them idle (each costs the gate ~30 KiB and the
//! upstream a connection slot), closing the rest. The real gate binary, `kerbside
//! bench` as the client and a loopback upstream that counts its open connections.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{kerbside, text, GateProcess};
use kerbside_testkit::TestRealm;
use serde_json::Value;

/// The most idle upstream connections the gate keeps (`UPSTREAM_IDLE_CONNECTIONS`).
const KEPT: usize = 256;
/// Concurrent requests in the burst: more than the gate keeps.
const BURST: usize = 320;

/// Open connections now, and the most that were open at once.
#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    peak: AtomicUsize,
}

/// A loopback upstream that answers each request after `delay` (so that the burst's
/// requests overlap) and keeps connections alive until the gate closes them.
fn counting_upstream(delay: Duration) -> (u16, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counts = shared.clone();
            let now = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    // Requests have no body: the empty line ends one.
                    if line.trim_end().is_empty() {
                        std::thread::sleep(delay);
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            break;
                        }
                    }
                }
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, counts)
}

#[test]
fn after_a_burst_the_gate_keeps_at_most_256_idle_upstream_connections() {
    let realm = TestRealm::start().unwrap();
    let (port, counts) = counting_upstream(Duration::from_millis(300));
    let gate = GateProcess::start(
        &realm,
        None,
        &format!("http://127.0.0.1:{port}"),
        &["--auth", "none"],
    );
    let burst = BURST.to_string();
    let out = kerbside(&realm)
        .args([
            "bench", "--json", "--mode", "plain", "-c", &burst, "-n", &burst,
        ])
        .arg(format!("{}/", gate.url))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(
        report["successes"].as_u64(),
        Some(BURST as u64),
        "{report:#}"
    );
    let peak = counts.peak.load(Ordering::SeqCst);
    assert!(
        peak > KEPT,
        "the burst should need more than {KEPT} upstream connections at once; it opened {peak}"
    );
    // The gate closes the connections its pool does not keep: wait for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = counts.open.load(Ordering::SeqCst);
        if open <= KEPT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} upstream connections still open 20 s after the burst (peak {peak}); \
             the gate should keep at most {KEPT}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
