//! The bytes of a tunnel between two plain TCP sockets, moved by the kernel:
//! `splice(2)` from one socket into a pipe and from the pipe into the other, so
//! they never reach user space (no copy in and out, a fraction of the CPU per MB
//! of the copy loop in [`crate::splice`]). Same semantics as that loop: bytes
//! already read by user space (hyper's, behind the `CONNECT` or the upstream's
//! `200`) go first; each direction ends on its own (the end passed on with a
//! shutdown of the other socket's write half), so everything the origin sent
//! reaches a slow client after the origin closed; a tunnel idle both ways for
//! the idle timeout ends, and so does a write a peer does not take within it.
//!
//! Every call is non-blocking (`SPLICE_F_NONBLOCK`, non-blocking pipes) and driven
//! by tokio's readiness (`readable`/`writable`, then `try_io`, which clears the
//! readiness when the socket says `EAGAIN`): no runtime thread ever blocks. No
//! `unsafe`: rustix wraps the system calls.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustix::pipe::{
    fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::splice::Spliced;

/// Per direction: the pipe's capacity asked for once a read filled the default
/// one (64 KiB: more system calls per MB), so that only bulk transfers hold
/// large pipes (they count against the user's `pipe-user-pages-soft`). Linux
/// grants up to `/proc/sys/fs/pipe-max-size` (1 MiB by default) without
/// privileges; a refusal keeps the size the pipe has.
const PIPE_SIZE: usize = 1024 * 1024;

/// A pipe: bytes spliced into `into` come out of `out`.
struct Pipe {
    out: OwnedFd,
    into: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let (out, into) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(Self { out, into })
    }
}

/// A pipe per direction, made before a tunnel is spliced, so that a process
/// out of descriptors copies the tunnel instead of failing it.
pub(crate) struct Pipes {
    up: Pipe,
    down: Pipe,
}

impl Pipes {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            up: Pipe::new()?,
            down: Pipe::new()?,
        })
    }
}

/// Carries bytes between `client` and `upstream` until both directions ended;
/// `client_buffered` goes to `upstream` first, `upstream_buffered` to `client`.
pub(crate) async fn splice_tcp(
    client: TcpStream,
    client_buffered: Bytes,
    upstream: TcpStream,
    upstream_buffered: Bytes,
    pipes: Pipes,
    idle: Duration,
) -> io::Result<Spliced> {
    let clock = Clock {
        start: Instant::now(),
        last: AtomicU64::new(0),
        idle,
    };
    let up = pump(&client, &upstream, &client_buffered, pipes.up, &clock);
    let down = pump(&upstream, &client, &upstream_buffered, pipes.down, &clock);
    let (up, down) = tokio::join!(up, down);
    Ok(Spliced {
        up: up?,
        down: down?,
        kernel: true,
    })
}

/// When the tunnel last moved a byte either way.
struct Clock {
    start: Instant,
    last: AtomicU64,
    idle: Duration,
}

impl Clock {
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// Whether neither way moved for the idle timeout.
    fn idle_both_ways(&self) -> bool {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last) >= self.idle
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "tunnel idle")
}

/// The end of a direction for the far side of `to` (`FIN`); the other way goes on.
fn end(to: &TcpStream) {
    let _ = rustix::net::shutdown(to, rustix::net::Shutdown::Write);
}

/// One direction: `buffered`, then everything `from` sends, into `to`.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    buffered: &[u8],
    pipe: Pipe,
    clock: &Clock,
) -> io::Result<u64> {
    let mut total = 0u64;
    if !buffered.is_empty() {
        write_all(to, buffered, clock).await?;
        total += buffered.len() as u64;
        clock.touch();
    }
    let Pipe {
        out: pipe_out,
        into: pipe_in,
    } = pipe;
    let mut capacity = fcntl_getpipe_size(&pipe_in).unwrap_or(4096);
    let mut may_grow = capacity < PIPE_SIZE;
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        // Socket to pipe: the pipe is empty here, so EAGAIN means no data yet.
        let moved = match tokio::time::timeout(clock.idle, from.readable()).await {
            Ok(Ok(())) => from.try_io(Interest::READABLE, || {
                splice(from, None, &pipe_in, None, capacity, flags).map_err(io::Error::from)
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // Idle this way: the tunnel lives on while the other way moves.
                if clock.idle_both_ways() {
                    end(to);
                    return Err(timed_out());
                }
                continue;
            }
        };
        let n = match moved {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                end(to);
                return Err(e);
            }
        };
        clock.touch();
        drain(&pipe_out, to, n, clock).await?;
        total += n as u64;
        clock.touch();
        if may_grow && n >= capacity {
            // A bulk transfer: a larger pipe (empty now, as a resize needs).
            may_grow = false;
            if let Ok(size) = fcntl_setpipe_size(&pipe_in, PIPE_SIZE) {
                capacity = size;
            }
        }
    }
    end(to);
    Ok(total)
}

/// Pipe to socket: all `n` bytes in the pipe into `to`, each wait for room
/// within the idle timeout.
async fn drain(pipe_out: &OwnedFd, to: &TcpStream, mut n: usize, clock: &Clock) -> io::Result<()> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    while n > 0 {
        match tokio::time::timeout(clock.idle, to.writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        }
        match to.try_io(Interest::WRITABLE, || {
            splice(pipe_out, None, to, None, n, flags).map_err(io::Error::from)
        }) {
            // The pipe held n bytes: 0 would mean it is empty, which it is not.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the tunnel's pipe gave no bytes",
                ))
            }
            Ok(moved) => {
                n -= moved.min(n);
                clock.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `bytes` into `to`, each wait for room within the idle timeout.
async fn write_all(to: &TcpStream, mut bytes: &[u8], clock: &Clock) -> io::Result<()> {
    while !bytes.is_empty() {
        match tokio::time::timeout(clock.idle, to.writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        }
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pair;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn buffered_bytes_go_first_and_a_bulk_transfer_arrives_intact_both_ways() {
        let (mut client_far, client) = pair().await;
        let (upstream, mut upstream_far) = pair().await;
        let task = tokio::spawn(splice_tcp(
            client,
            Bytes::from_static(b"hello "),
            upstream,
            Bytes::from_static(b"welcome "),
            Pipes::new().unwrap(),
            Duration::from_secs(10),
        ));
        let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let origin = tokio::spawn(async move {
            let mut got = vec![0u8; 6];
            upstream_far.read_exact(&mut got).await.unwrap();
            assert_eq!(got, b"hello ");
            upstream_far.write_all(&sent).await.unwrap();
            upstream_far.shutdown().await.unwrap();
            // The client's half goes on after ours ended.
            let mut rest = Vec::new();
            upstream_far.read_to_end(&mut rest).await.unwrap();
            rest
        });
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 4096];
        loop {
            let n = client_far.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            if got.len() < 100_000 {
                // A slow reader at first: the origin is done long before.
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(&got[..8], b"welcome ");
        assert!(
            got[8..] == data[..],
            "{} bytes of {}",
            got.len() - 8,
            data.len()
        );
        client_far.write_all(b"bye").await.unwrap();
        client_far.shutdown().await.unwrap();
        assert_eq!(origin.await.unwrap(), b"bye");
        let s = task.await.unwrap().unwrap();
        assert_eq!((s.up, s.down), (9, 8 + data.len() as u64));
    }

    #[tokio::test]
    async fn a_tunnel_idle_both_ways_ends() {
        let (_client_far, client) = pair().await;
        let (upstream, _upstream_far) = pair().await;
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            splice_tcp(
                client,
                Bytes::new(),
                upstream,
                Bytes::new(),
                Pipes::new().unwrap(),
                Duration::from_millis(200),
            ),
        )
        .await
        .expect("the idle timeout ends the tunnel");
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
