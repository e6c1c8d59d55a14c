//! Request bodies that survive a handshake.
//!
//! A request may have to be sent more than once during a handshake (the first try
//! gets a 401). A body up to the replay limit is kept in memory and sent again. A
//! larger or streamed body is sent once: its request carries `Expect:
//! 100-continue`, and the body waits behind a [`Gate`] until the server says `100
//! Continue` (or stays silent for a moment); if the server answers 401 first, the
//! body is taken back, unsent, for the authenticated request.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

/// Errors of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body, as given by the caller.
pub type StreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// The body of a request sent through [`Client`](crate::Client).
pub struct RequestBody(Inner);

enum Inner {
    Full(Bytes),
    Stream { body: StreamBody, len: Option<u64> },
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Full(b) => write!(f, "RequestBody::Full({} bytes)", b.len()),
            Inner::Stream { len, .. } => write!(f, "RequestBody::Stream({len:?} bytes)"),
        }
    }
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self(Inner::Full(Bytes::new()))
    }

    /// A streamed body of `len` bytes if known. It is sent at most once.
    pub fn stream(body: StreamBody, len: Option<u64>) -> Self {
        Self(Inner::Stream { body, len })
    }

    /// The body's length, if known.
    pub fn len(&self) -> Option<u64> {
        match &self.0 {
            Inner::Full(b) => Some(b.len() as u64),
            Inner::Stream { len, .. } => *len,
        }
    }

    /// True if the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        Self(Inner::Full(b))
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(b: Vec<u8>) -> Self {
        Self(Inner::Full(b.into()))
    }
}

impl From<String> for RequestBody {
    fn from(b: String) -> Self {
        Self(Inner::Full(b.into()))
    }
}

impl From<&'static str> for RequestBody {
    fn from(b: &'static str) -> Self {
        Self(Inner::Full(Bytes::from_static(b.as_bytes())))
    }
}

/// What travels to hyper.
pub(crate) type WireBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body the client can send once or several times.
pub(crate) enum Replayable {
    /// Kept in memory: sent as often as needed.
    Memory(Bytes),
    /// Not sent yet; `None` once it has gone.
    Once {
        body: Option<StreamBody>,
        len: Option<u64>,
    },
}

impl Replayable {
    /// Buffers bodies up to `limit` bytes; larger or unknown-length bodies stay
    /// streamed.
    pub(crate) async fn new(body: RequestBody, limit: usize) -> Result<Self, BoxError> {
        Ok(match body.0 {
            Inner::Full(b) if b.len() <= limit => Self::Memory(b),
            Inner::Full(b) => {
                let len = Some(b.len() as u64);
                Self::Once {
                    body: Some(
                        http_body_util::Full::new(b)
                            .map_err(|never| match never {})
                            .boxed_unsync(),
                    ),
                    len,
                }
            }
            // A stream that is already over is no body at all.
            Inner::Stream { body, .. } if http_body::Body::is_end_stream(&body) => {
                Self::Memory(Bytes::new())
            }
            // A small stream of known length is read into memory so it can be
            // replayed like any small body.
            Inner::Stream { body, len: Some(n) } if n <= limit as u64 => {
                Self::Memory(body.collect().await?.to_bytes())
            }
            Inner::Stream { body, len } => Self::Once {
                body: Some(body),
                len,
            },
        })
    }

    /// The whole body, when it is kept in memory (Digest `auth-int` hashes it).
    pub(crate) fn bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Memory(b) => Some(b),
            Self::Once { .. } => None,
        }
    }

    /// True if the body can be sent again.
    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// The body for one send. A streamed body comes behind a [`Gate`] (to be opened
    /// by `100 Continue`); `None` means the stream has already been sent.
    pub(crate) fn take(&mut self) -> Option<(WireBody, Option<Gate>)> {
        match self {
            Self::Memory(b) => Some((
                http_body_util::Full::new(b.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
                None,
            )),
            Self::Once { body, len } => {
                let inner = body.take()?;
                let gate = Gate(Arc::new(Mutex::new(GateState {
                    body: Some(inner),
                    open: false,
                    aborted: false,
                    started: false,
                    waker: None,
                    len: *len,
                })));
                Some((GatedBody(gate.clone()).boxed_unsync(), Some(gate)))
            }
        }
    }

    /// Puts back a streamed body whose gate never opened.
    pub(crate) fn restore(&mut self, gate: &Gate) -> bool {
        if let Self::Once { body, .. } = self {
            if let Some(inner) = gate.abort() {
                *body = Some(inner);
                return true;
            }
        }
        false
    }
}

struct GateState {
    body: Option<StreamBody>,
    open: bool,
    aborted: bool,
    started: bool,
    waker: Option<Waker>,
    len: Option<u64>,
}

/// Holds a streamed body back until the server agrees to receive it.
#[derive(Clone)]
pub(crate) struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets the body flow (`100 Continue`, or the server's silence).
    pub(crate) fn open(&self) {
        let mut s = self.lock();
        if !s.aborted {
            s.open = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    /// Opens the gate after `wait` unless it was aborted by then (RFC 9110
    /// §10.1.1: a client need not wait for `100 Continue` forever).
    pub(crate) fn open_after(&self, wait: Duration) {
        let gate = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            gate.open();
        });
    }

    /// Stops the body from flowing and returns it if none of it was sent. The
    /// connection then fails its request, as it must: the body promised in the
    /// headers will never come.
    pub(crate) fn abort(&self) -> Option<StreamBody> {
        let mut s = self.lock();
        s.aborted = true;
        let body = if s.started { None } else { s.body.take() };
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        body
    }
}

struct GatedBody(Gate);

impl Body for GatedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut s = self.0.lock();
        if s.aborted && !s.started {
            return Poll::Ready(Some(Err(
                "request body withheld: the server refused it".into()
            )));
        }
        if !s.open {
            s.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        s.started = true;
        match s.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.0.lock().len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().len == Some(0)
    }
}

/// An empty body for requests without one (`CONNECT`).
pub(crate) fn empty() -> WireBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
