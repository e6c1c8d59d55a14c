//! The bytes of a tunnel, both ways, through bounded buffers (small at first,
//! growing while a read fills them): each direction ends
//! on its own (a half-close is passed on with a shutdown of the other side's
//! write half), so everything the origin sent reaches a slow client after the
//! origin closed. A tunnel idle both ways for the idle timeout ends, and so does
//! a write a peer does not take within it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Per direction: the buffer a tunnel starts with. Most tunnels carry a TLS
/// handshake and a few small records; a small buffer costs little to make (a
/// 64 KiB one, zeroed and freed twice per tunnel, was a visible part of the
/// CPU per tunnel: freeing a chunk that large makes glibc consolidate its heap).
const FIRST_BUFFER: usize = 16 * 1024;
/// Per direction: the most bytes held at once. The buffer doubles up to this
/// each time a read fills it, so a bulk transfer moves in large pieces (fewer
/// system calls per MB).
const MAX_BUFFER: usize = 256 * 1024;

/// Bytes each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spliced {
    pub up: u64,
    pub down: u64,
    /// Moved by the kernel (`splice(2)`), not this copy loop.
    pub kernel: bool,
}

/// Carries bytes between `client` and `upstream` until both directions ended.
pub(crate) async fn splice<C, U>(client: C, upstream: U, idle: Duration) -> std::io::Result<Spliced>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let up = pump(&mut client_read, &mut upstream_write, idle, start, &last);
    let down = pump(&mut upstream_read, &mut client_write, idle, start, &last);
    let (up, down) = tokio::join!(up, down);
    Ok(Spliced {
        up: up?,
        down: down?,
        kernel: false,
    })
}

async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    idle: Duration,
    start: Instant,
    last: &AtomicU64,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; FIRST_BUFFER];
    let mut total = 0u64;
    let touch = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "tunnel idle");
    loop {
        let n = match tokio::time::timeout(idle, from.read(&mut buffer)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                let _ = to.shutdown().await;
                return Err(e);
            }
            Err(_) => {
                // Idle this way: the tunnel lives on while the other way moves.
                let quiet = start
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                if quiet >= idle {
                    let _ = to.shutdown().await;
                    return Err(timed_out());
                }
                continue;
            }
        };
        touch();
        match tokio::time::timeout(idle, to.write_all(&buffer[..n])).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        }
        total += n as u64;
        touch();
        if n == buffer.len() && buffer.len() < MAX_BUFFER {
            buffer.resize(buffer.len() * 2, 0);
        }
    }
    // The other side gets the end of this direction; the other way goes on.
    let _ = tokio::time::timeout(idle, to.shutdown()).await;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bulk_transfer_in_reads_that_fill_the_growing_buffer_arrives_intact() {
        // Pipes larger than the largest buffer: every read can fill it, so it
        // grows from FIRST_BUFFER to MAX_BUFFER on the way.
        let (client, mut client_far) = tokio::io::duplex(2 * MAX_BUFFER);
        let (upstream, mut upstream_far) = tokio::io::duplex(2 * MAX_BUFFER);
        let task = tokio::spawn(splice(client, upstream, Duration::from_secs(5)));
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            upstream_far.write_all(&sent).await.unwrap();
            upstream_far.shutdown().await.unwrap();
            upstream_far
        });
        let mut got = Vec::new();
        client_far.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "{} bytes of {}", got.len(), data.len());
        client_far.shutdown().await.unwrap();
        drop(writer.await.unwrap());
        let s = task.await.unwrap().unwrap();
        assert_eq!((s.up, s.down), (0, data.len() as u64));
    }

    #[tokio::test]
    async fn everything_reaches_a_slow_reader_after_the_sender_closed() {
        let (client, mut client_far) = tokio::io::duplex(1024);
        let (upstream, mut upstream_far) = tokio::io::duplex(1024);
        let task = tokio::spawn(splice(client, upstream, Duration::from_secs(5)));
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            upstream_far.write_all(&sent).await.unwrap();
            upstream_far.shutdown().await.unwrap();
            // Keep reading our side until the client's end comes through.
            let mut rest = Vec::new();
            upstream_far.read_to_end(&mut rest).await.unwrap();
            rest
        });
        let mut got = Vec::new();
        let mut chunk = [0u8; 100];
        loop {
            let n = client_far.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            tokio::task::yield_now().await;
        }
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        client_far.write_all(b"bye").await.unwrap();
        client_far.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"bye");
        let s = task.await.unwrap().unwrap();
        assert_eq!((s.up, s.down), (3, data.len() as u64));
    }
}
