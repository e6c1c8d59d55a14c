//! Draining the gate's connections on shutdown: each connection task holds a
//! [`DrainWatcher`]; [`Drain::shutdown`] tells every one of them to finish the request
//! in flight and close (hyper's `graceful_shutdown`), then waits until all of them have.
//!
//! hyper-util's `GracefulShutdown` does the same for the connections its `Watcher`
//! accepts, but those are sealed to hyper-util's own types; the gate also serves
//! HTTP/1.1-only TLS connections with hyper's `http1::UpgradeableConnection` directly
//! (no HTTP/2 detection, whose 24-byte read doubles the idle read buffer), so it keeps
//! one drain of its own for both kinds.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

/// The gate's side: makes one watcher per connection and, at shutdown, signals them
/// and waits for them.
#[derive(Debug)]
pub(crate) struct Drain {
    tx: watch::Sender<()>,
}

impl Drain {
    /// A drain with no connections.
    pub(crate) fn new() -> Self {
        let (tx, _) = watch::channel(());
        Self { tx }
    }

    /// A watcher for a connection about to be served. Made in the accept loop, before
    /// the connection's task is spawned, so [`shutdown`](Self::shutdown) cannot miss it.
    pub(crate) fn watcher(&self) -> DrainWatcher {
        DrainWatcher {
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every connection to finish what it is doing and close, and waits until
    /// every watcher has been dropped (give this a deadline).
    pub(crate) async fn shutdown(self) {
        let _ = self.tx.send(());
        self.tx.closed().await;
    }
}

/// One connection's side: [`serve`](Self::serve) runs the connection and starts its
/// graceful shutdown when the gate drains.
#[derive(Debug)]
pub(crate) struct DrainWatcher {
    rx: watch::Receiver<()>,
}

impl DrainWatcher {
    /// Runs `conn` to its end; when the gate drains first, calls `graceful_shutdown` on
    /// it (the request in flight finishes, an idle keep-alive connection closes) and
    /// runs it to its end. The watcher is held until then, so the gate waits for it.
    pub(crate) async fn serve<C>(
        mut self,
        conn: C,
        graceful_shutdown: impl FnOnce(Pin<&mut C>),
    ) -> C::Output
    where
        C: Future,
    {
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            out = conn.as_mut() => return out,
            // `Err` only when the gate is gone: shut down as well.
            _ = self.rx.changed() => graceful_shutdown(conn.as_mut()),
        }
        conn.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A stand-in connection: pending until its graceful shutdown is called, then done.
    struct Conn {
        stopped: Arc<AtomicBool>,
    }

    impl Future for Conn {
        type Output = &'static str;
        fn poll(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<&'static str> {
            if self.stopped.load(Ordering::SeqCst) {
                std::task::Poll::Ready("drained")
            } else {
                std::task::Poll::Pending
            }
        }
    }

    #[tokio::test]
    async fn shutdown_stops_each_connection_and_waits_for_it() {
        let drain = Drain::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let watcher = drain.watcher();
            let stopped = Arc::new(AtomicBool::new(false));
            tasks.push(tokio::spawn(async move {
                watcher
                    .serve(Conn { stopped }, |c| {
                        c.stopped.store(true, Ordering::SeqCst)
                    })
                    .await
            }));
        }
        tokio::time::timeout(Duration::from_secs(10), drain.shutdown())
            .await
            .expect("the drain waits only for its connections");
        for task in tasks {
            assert!(
                task.is_finished(),
                "shutdown returned before a connection ended"
            );
            assert_eq!(task.await.unwrap(), "drained");
        }
    }

    #[tokio::test]
    async fn a_connection_that_ends_alone_is_not_waited_for() {
        let drain = Drain::new();
        let watcher = drain.watcher();
        let out = watcher.serve(std::future::ready("done"), |_| {}).await;
        assert_eq!(out, "done");
        tokio::time::timeout(Duration::from_secs(10), drain.shutdown())
            .await
            .expect("no watcher is left");
    }
}
