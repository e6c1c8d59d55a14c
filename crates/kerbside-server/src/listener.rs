//! Accepting connections without letting a flood, or a shortage of file
//! descriptors, take the process down: at most `max_connections` are open at once
//! (the rest wait in the kernel's backlog, since `accept()` is not called), and an
//! accept that fails (EMFILE, ENFILE, ENOBUFS, ...) is logged, at most once every
//! few seconds, and retried after a short back-off that grows, never in a busy loop.
//!
//! The gate's listener, its metrics listener and the tunnel's all accept through
//! [`Listener`].
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use kerbside_server::listener::Listener;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let mut listener = Listener::new(tcp, "example").with_max_connections(4096);
//! loop {
//!     let accepted = listener.accept().await;
//!     tokio::spawn(async move {
//!         let _slot = accepted.slot; // the connection counts until this is dropped
//!         drop(accepted.stream);
//!     });
//! }
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::metrics::GateMetrics;

/// The default cap on open connections of the gate.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The first pause after a failed accept; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// The longest pause after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// At most one log line per this long for failed accepts, and for the cap.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// One accepted connection.
#[derive(Debug)]
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The connection's place under the cap: keep it while the connection is open.
    pub slot: Option<OwnedSemaphorePermit>,
}

/// A TCP listener that caps open connections and backs off when accept fails.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    name: &'static str,
    slots: Option<(Arc<Semaphore>, usize)>,
    metrics: Option<GateMetrics>,
    backoff: Duration,
    failures: RateLimited,
    at_cap: RateLimited,
}

/// A log line that is written at most once per [`LOG_EVERY`], with how many times
/// its event happened since the last one.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<Instant>,
    since: u64,
}

impl RateLimited {
    /// Counts one event; `Some(count)` if a line is due now.
    fn event(&mut self) -> Option<u64> {
        self.since += 1;
        let due = self.last.is_none_or(|last| last.elapsed() >= LOG_EVERY);
        if due {
            self.last = Some(Instant::now());
            let count = self.since;
            self.since = 0;
            Some(count)
        } else {
            None
        }
    }
}

impl Listener {
    /// Accepts on `listener`; `name` says which listener in log lines.
    pub fn new(listener: TcpListener, name: &'static str) -> Self {
        Self {
            listener,
            name,
            slots: None,
            metrics: None,
            backoff: FIRST_BACKOFF,
            failures: RateLimited::default(),
            at_cap: RateLimited::default(),
        }
    }

    /// At most `max` connections open at once (at least 1).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        let max = max.max(1);
        self.slots = Some((Arc::new(Semaphore::new(max)), max));
        self
    }

    /// Counts failed accepts and reaching the cap.
    pub fn with_metrics(mut self, metrics: GateMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, once there is room for it. Never fails: a failed accept
    /// is logged and retried after a pause.
    pub async fn accept(&mut self) -> Accepted {
        let slot = match &self.slots {
            None => None,
            Some((slots, max)) => Some(match slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    if let Some(m) = &self.metrics {
                        m.connection_cap_wait();
                    }
                    if let Some(times) = self.at_cap.event() {
                        tracing::warn!(
                            listener = self.name,
                            max_connections = max,
                            times,
                            "reached max-connections: new connections wait in the \
                             kernel's backlog until one closes"
                        );
                    }
                    match slots.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        // The semaphore is never closed; without a slot, serve anyway.
                        Err(_) => return self.accept_now(None).await,
                    }
                }
            }),
        };
        self.accept_now(slot).await
    }

    async fn accept_now(&mut self, slot: Option<OwnedSemaphorePermit>) -> Accepted {
        loop {
            match self.listener.accept().await {
                Ok((stream, remote)) => {
                    self.backoff = FIRST_BACKOFF;
                    return Accepted {
                        stream,
                        remote,
                        slot,
                    };
                }
                Err(e) => {
                    if let Some(m) = &self.metrics {
                        m.accept_failure();
                    }
                    if let Some(times) = self.failures.event() {
                        tracing::error!(
                            listener = self.name,
                            times,
                            "cannot accept a connection: {e}{}; retrying in {:?}",
                            advice(&e),
                            self.backoff
                        );
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// What an operator can do about a failed accept.
fn advice(error: &std::io::Error) -> &'static str {
    use rustix::io::Errno;
    match error.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::MFILE) => {
            " (this process is out of file descriptors: raise `ulimit -n` / LimitNOFILE, \
             or lower max-connections)"
        }
        Some(Errno::NFILE) => " (the system is out of file descriptors)",
        Some(Errno::NOBUFS | Errno::NOMEM) => " (the system is out of memory for sockets)",
        _ => "",
    }
}
