//! The PROXY protocol on the gate's listener (opt-in): behind HAProxy or another L4/L7
//! balancer, each connection starts with a header naming the client, and the gate takes
//! the client's address from it, once, where the connection enters, so logs,
//! `X-Forwarded-For`, forward-auth's trust check and CGI's `REMOTE_ADDR` all see the
//! client rather than the balancer.
//!
//! Only the balancers in [`ProxyProtocol::trusted`] may send a header (anyone else could
//! claim any address); with the protocol on, a connection from anywhere else, or one that
//! does not start with a valid header within the header timeout, is closed and logged.
//! The header is parsed by [`kerbside_proto::proxy_protocol`]; the bytes after it are
//! handed on untouched ([`Prefixed`]) to TLS or HTTP.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use kerbside_proto::proxy_protocol::{parse, Parsed, ProxyHeaderError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// How the gate's listener takes the PROXY protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyProtocol {
    /// The balancers that may send a header (addresses or networks); default loopback.
    pub trusted: Vec<ipnet::IpNet>,
}

impl Default for ProxyProtocol {
    fn default() -> Self {
        Self {
            trusted: crate::forward_auth::default_trusted(),
        }
    }
}

/// Why a connection was closed before it was served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyProtocolRefusal {
    /// The peer is not a trusted balancer.
    #[error("{0} is not a trusted load balancer (proxy-protocol-trusted), so it may not send a PROXY protocol header; closed")]
    Untrusted(SocketAddr),
    /// No complete header in time.
    #[error("no PROXY protocol header within {0:?}; closed")]
    Timeout(Duration),
    /// The header is not one the gate takes.
    #[error("bad PROXY protocol header: {0}; closed")]
    Bad(#[from] ProxyHeaderError),
    /// Reading failed or the peer closed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// What was read: the client's address (or the balancer's own, for its health checks
/// with `LOCAL`/`UNKNOWN`), and the stream with the bytes after the header put back.
#[derive(Debug)]
pub struct Admitted<S> {
    /// The client's address, from the header; the balancer's when the header names none.
    pub remote: SocketAddr,
    /// The connection, starting at its first byte after the header.
    pub stream: Prefixed<S>,
}

/// Reads the header from a connection a balancer (`peer`) opened, within `deadline`.
pub async fn admit<S: AsyncRead + Unpin>(
    settings: &ProxyProtocol,
    mut stream: S,
    peer: SocketAddr,
    deadline: Duration,
) -> Result<Admitted<S>, ProxyProtocolRefusal> {
    if !crate::forward_auth::is_trusted(&settings.trusted, peer.ip()) {
        return Err(ProxyProtocolRefusal::Untrusted(peer));
    }
    let read = async {
        let mut buf = Vec::with_capacity(128);
        loop {
            match parse(&buf)? {
                Parsed::Complete { header, consumed } => {
                    let rest = buf.split_off(consumed);
                    return Ok::<_, ProxyProtocolRefusal>((header.source, rest));
                }
                Parsed::Incomplete { needed } => {
                    // Bytes read past the header are handed on (Prefixed); the parser
                    // bounds the header, so the buffer stays small.
                    let want = needed.saturating_sub(buf.len()).max(512);
                    let start = buf.len();
                    buf.resize(start + want, 0);
                    let n = stream.read(&mut buf[start..]).await?;
                    buf.truncate(start + n);
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the balancer closed before the header ended",
                        )
                        .into());
                    }
                }
            }
        }
    };
    let (source, rest) = tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| ProxyProtocolRefusal::Timeout(deadline))??;
    Ok(Admitted {
        remote: source.unwrap_or(peer),
        stream: Prefixed {
            prefix: rest,
            at: 0,
            inner: stream,
        },
    })
}

/// A stream with some bytes already read from it put back in front.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner` with nothing put back.
    pub fn new(inner: S) -> Self {
        Self {
            prefix: Vec::new(),
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_client_address_comes_from_the_header_and_the_rest_is_kept() {
        let (mut balancer, gate_side) = tokio::io::duplex(1024);
        let header = kerbside_proto::proxy_protocol::encode_v2(
            addr("192.0.2.7:4000"),
            addr("127.0.0.1:443"),
            &[],
        )
        .unwrap();
        // The header arrives in two pieces, with the request's first bytes after it.
        balancer.write_all(&header[..10]).await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            balancer.write_all(&header[10..]).await.unwrap();
            balancer.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            balancer
        });
        let admitted = admit(
            &ProxyProtocol::default(),
            gate_side,
            addr("127.0.0.1:5555"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(admitted.remote, addr("192.0.2.7:4000"));
        let _balancer = writer.await.unwrap();
        let mut stream = admitted.stream;
        let mut line = [0u8; 16];
        stream.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn untrusted_peers_silent_peers_and_bad_headers_are_refused() {
        let (_a, b) = tokio::io::duplex(64);
        let refused = admit(
            &ProxyProtocol::default(),
            b,
            addr("192.0.2.9:1"),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(refused, Err(ProxyProtocolRefusal::Untrusted(_))));

        let (_a, b) = tokio::io::duplex(64);
        let silent = admit(
            &ProxyProtocol::default(),
            b,
            addr("127.0.0.1:1"),
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(silent, Err(ProxyProtocolRefusal::Timeout(_))));

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let plain = admit(
            &ProxyProtocol::default(),
            b,
            addr("127.0.0.1:1"),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(
            plain,
            Err(ProxyProtocolRefusal::Bad(
                ProxyHeaderError::NotProxyProtocol
            ))
        ));
    }
}
