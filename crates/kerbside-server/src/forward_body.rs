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

/// A request body passed through to an upstream, at most `limit` bytes.
#[derive(Debug)]
pub(crate) struct ForwardBody<B> {
    inner: Pin<Box<B>>,
    limit: u64,
    seen: u64,
    progress: Arc<Progress>,
}

impl<B> ForwardBody<B> {
    pub(crate) fn new(inner: B, limit: u64, progress: Arc<Progress>) -> Self {
        Self {
            inner: Box::pin(inner),
            limit,
            seen: 0,
            progress,
        }
    }
}

impl<B> Body for ForwardBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.progress.too_large() {
            return Poll::Ready(Some(Err(Box::new(BodyTooLarge(this.limit)))));
        }
        this.progress.touch();
        let polled = this.inner.as_mut().poll_frame(cx);
        this.progress
            .waiting_for_client
            .store(polled.is_pending(), Ordering::Relaxed);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        this.progress.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge(this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
#[derive(Debug)]
pub(crate) struct IdleTimeout<B> {
    inner: Pin<Box<B>>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    metrics: Option<GateMetrics>,
    upstream: String,
}

impl<B> IdleTimeout<B> {
    pub(crate) fn new(
        inner: B,
        timeout: Duration,
        metrics: Option<GateMetrics>,
        upstream: String,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            metrics,
            upstream,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.timeout;
                this.sleep.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!(
                        upstream = %this.upstream,
                        "the upstream stopped sending its response for the upstream-timeout \
                         of {:?}; cut it off",
                        this.timeout
                    );
                    if let Some(m) = &this.metrics {
                        m.upstream_timeout();
                    }
                    // Once: a body is not polled after an error.
                    let next = Instant::now() + this.timeout;
                    this.sleep.as_mut().reset(next);
                    Poll::Ready(Some(Err(Box::new(UpstreamStalled(this.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
