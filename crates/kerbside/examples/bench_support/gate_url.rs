//! The URL a gate started by a benchmark says it listens on.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// Reads the gate's standard error (piped) on a thread, for the whole of its life so the
/// gate never blocks on a full pipe, and gives the URL of its "listening on URL, ..."
/// line; panics if none comes within 20 s.
pub fn listening_url(child: &mut Child) -> String {
    let stderr = child
        .stderr
        .take()
        .expect("the gate's standard error is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.split(',').next().unwrap_or("").to_owned());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the gate did not start")
}
