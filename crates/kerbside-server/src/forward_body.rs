//! Bodies passing through the proxy. A request body on its way to an upstream is cut
//! off beyond the mount's `max-body`, and watched, so that the proxy can tell an
//! upstream that stalls (no progress for the `upstream-timeout`) from a client that
//! is slow to send. A response body from an upstream is ended when the upstream
//! sends nothing for the `upstream-timeout` (as nginx's `proxy_read_timeout`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::metrics::GateMetrics;

/// What a [`ForwardBody`] tells the proxy while the request is on its way.
#[derive(Debug)]
pub(crate) struct Progress {
    start: Instant,
    /// Milliseconds since `start` of the last time the body was read or yielded data.
    last: AtomicU64,
    /// The last read found the client had nothing to send yet.
    waiting_for_client: AtomicBool,
    /// The body went over the limit and was cut.
    too_large: AtomicBool,
}

impl Progress {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            waiting_for_client: AtomicBool::new(false),
            too_large: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the request last moved (sent, read from the client, or started).
    pub(crate) fn last_activity(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// The body was waiting for the client when it last moved.
    pub(crate) fn waiting_for_client(&self) -> bool {
        self.waiting_for_client.load(Ordering::Relaxed)
    }

    /// The body went over its limit.
    pub(crate) fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }
}

/// The error a [`ForwardBody`] ends with when the client sends more than the limit.
#[derive(Debug)]
pub(crate) struct BodyTooLarge(pub(crate) u64);

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body is larger than the limit of {} bytes",
            self.0
        )
    }
}

impl std::error::Error for BodyTooLarge {}

/// One poll of a watched body's frame, as [`Body::poll_frame`] gives it.
type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

/// What watches a body passing through: it may end the body before the inner one is
/// polled, and sees (and may replace) what each poll gave.
pub(crate) trait Watcher {
    /// Before the inner body is polled: an error ends the body there.
    fn before_poll(&mut self) -> Option<BoxError> {
        None
    }

    /// What the client of the body gets for what the inner body gave.
    fn after_poll(&mut self, polled: Polled, cx: &mut Context<'_>) -> Polled;
}

/// A body passed through with a [`Watcher`]; size hints and the end of the stream are
/// the inner body's.
#[derive(Debug)]
pub(crate) struct Watched<B, W> {
    inner: Pin<Box<B>>,
    watcher: W,
}

impl<B, W> Body for Watched<B, W>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    W: Watcher + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = &mut *self;
        if let Some(e) = this.watcher.before_poll() {
            return Poll::Ready(Some(Err(e)));
        }
        let polled = this
            .inner
            .as_mut()
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(Into::into)));
        this.watcher.after_poll(polled, cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body passed through to an upstream, at most `limit` bytes.
pub(crate) type ForwardBody<B> = Watched<B, BodyLimit>;

/// Cuts a request body off beyond its limit and tells [`Progress`] how it moves.
#[derive(Debug)]
pub(crate) struct BodyLimit {
    limit: u64,
    seen: u64,
    progress: Arc<Progress>,
}

impl<B> Watched<B, BodyLimit> {
    pub(crate) fn new(inner: B, limit: u64, progress: Arc<Progress>) -> Self {
        Self {
            inner: Box::pin(inner),
            watcher: BodyLimit {
                limit,
                seen: 0,
                progress,
            },
        }
    }
}

impl Watcher for BodyLimit {
    fn before_poll(&mut self) -> Option<BoxError> {
        if self.progress.too_large() {
            return Some(Box::new(BodyTooLarge(self.limit)));
        }
        self.progress.touch();
        None
    }

    fn after_poll(&mut self, polled: Polled, _cx: &mut Context<'_>) -> Polled {
        self.progress
            .waiting_for_client
            .store(polled.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.seen = self.seen.saturating_add(data.len() as u64);
                if self.seen > self.limit {
                    self.progress.too_large.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge(self.limit)))));
                }
            }
        }
        polled
    }
}

/// The error a response body ends with when the upstream stalls in the middle.
#[derive(Debug)]
pub(crate) struct UpstreamStalled(Duration);

impl std::fmt::Display for UpstreamStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the upstream sent no more of its response for {:?} (upstream-timeout)",
            self.0
        )
    }
}

impl std::error::Error for UpstreamStalled {}

/// A response body from an upstream that ends with [`UpstreamStalled`] when nothing
/// arrives for `timeout`.
pub(crate) type IdleTimeout<B> = Watched<B, IdleDeadline>;

/// Ends a response body whose upstream sends nothing for `timeout`.
#[derive(Debug)]
pub(crate) struct IdleDeadline {
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    metrics: Option<GateMetrics>,
    upstream: String,
}

impl<B> Watched<B, IdleDeadline> {
    pub(crate) fn new(
        inner: B,
        timeout: Duration,
        metrics: Option<GateMetrics>,
        upstream: String,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            watcher: IdleDeadline {
                timeout,
                sleep: Box::pin(tokio::time::sleep(timeout)),
                metrics,
                upstream,
            },
        }
    }
}

impl Watcher for IdleDeadline {
    fn after_poll(&mut self, polled: Polled, cx: &mut Context<'_>) -> Polled {
        if polled.is_ready() {
            let next = Instant::now() + self.timeout;
            self.sleep.as_mut().reset(next);
            return polled;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!(
                    upstream = %self.upstream,
                    "the upstream stopped sending its response for the upstream-timeout \
                     of {:?}; cut it off",
                    self.timeout
                );
                if let Some(m) = &self.metrics {
                    m.upstream_timeout();
                }
                // Once: a body is not polled after an error.
                let next = Instant::now() + self.timeout;
                self.sleep.as_mut().reset(next);
                Poll::Ready(Some(Err(Box::new(UpstreamStalled(self.timeout)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn a_response_that_stalls_is_cut_off() {
        use futures_util::StreamExt;
        let frames = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(
            Bytes::from_static(b"part"),
        ))])
        .chain(futures_util::stream::pending());
        let body = StreamBody::new(frames);
        let mut body = IdleTimeout::new(body, Duration::from_millis(200), None, "test".into());
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"part"));
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("upstream-timeout"), "{error}");
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes() {
        let progress = Progress::new();
        let body = ForwardBody::new(Full::new(Bytes::from_static(b"hello")), 5, progress.clone());
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"hello");
        assert!(!progress.too_large());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_cut() {
        let chunks = (0..4)
            .map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"abc"))));
        let stream = StreamBody::new(futures_util::stream::iter(chunks));
        let progress = Progress::new();
        let body = ForwardBody::new(stream, 7, progress.clone());
        let error = body.collect().await.unwrap_err();
        assert!(error.to_string().contains("limit of 7 bytes"), "{error}");
        assert!(progress.too_large());
    }
}
