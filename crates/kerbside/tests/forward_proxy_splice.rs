//! `kerbside proxy` tunnels moved by the kernel (issue 13): when both ends of a
//! `CONNECT` tunnel are plain TCP sockets (the client's, and the upstream's, direct
//! or through an `http://` proxy) the proxy moves the bytes with `splice(2)`. A
//! 20 MB transfer each way, through the proxy and Squid requiring Negotiate
//! (negotiate_kerberos_auth against the test realm) and directly, must arrive
//! intact and in order, with the client's first bytes sent right behind its
//! `CONNECT` (so hyper has read some of them: they must go upstream first); the
//! proxy's log must say the kernel moved them. (Half-close and a slow reader are
//! in kerbside-proxy's splice_tcp unit tests, on real TCP sockets.)
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::GateProcess;
use kerbside_testkit::{Squid, SquidOptions, TestRealm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes each way.
const SIZE: usize = 20 * 1024 * 1024;
/// Of the client's bytes, how many it sends in the same write as its `CONNECT`.
const BEHIND_CONNECT: usize = 64 * 1024;
/// The whole transfer's deadline.
const DEADLINE: Duration = Duration::from_secs(120);

/// `SIZE` bytes that differ by `seed` and do not repeat with a short period (a
/// reordered or dropped piece shows).
fn payload(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(SIZE);
    out
}

/// Sends `out` on `tcp` while reading `SIZE` bytes from it, then ends its
/// sending half and reads until the other end: everything read. (Both ends close
/// only once all is through: Squid ends a whole tunnel when one side closes.)
async fn exchange(tcp: TcpStream, out: Vec<u8>, skip: usize) -> Vec<u8> {
    let (mut read, mut write) = tcp.into_split();
    let sender = tokio::spawn(async move {
        write.write_all(&out[skip..]).await.unwrap();
        write
    });
    let mut got = vec![0u8; SIZE];
    read.read_exact(&mut got).await.unwrap();
    let mut write = sender.await.unwrap();
    write.shutdown().await.unwrap();
    read.read_to_end(&mut got).await.unwrap();
    got
}

/// An origin taking one connection: it sends `down` and returns what it got.
async fn origin(down: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        exchange(tcp, down, 0).await
    });
    (addr, task)
}

/// Through the proxy at `proxy` to `target`: `up` (its first `BEHIND_CONNECT`
/// bytes in the same write as the `CONNECT`); returns what it got.
async fn client(proxy: SocketAddr, target: SocketAddr, up: Vec<u8>) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut first = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    first.extend_from_slice(&up[..BEHIND_CONNECT]);
    s.write_all(&first).await.unwrap();
    // Byte by byte: nothing after the head may be taken from the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.unwrap());
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    exchange(s, up, BEHIND_CONNECT).await
}

/// `kerbside proxy -v` on a free loopback port with `args`.
fn proxy(realm: &TestRealm, args: &[&str]) -> (GateProcess, SocketAddr) {
    let (p, port) = common::proxy::proxy(realm, args);
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// 20 MB each way through `p` to an origin here: both arrive intact, and the
/// proxy's log says the kernel moved them.
fn transfer_is_intact_and_spliced(p: &GateProcess, proxy: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (up, down) = (payload(1), payload(2));
    let (got_down, got_up) = runtime
        .block_on(async {
            tokio::time::timeout(DEADLINE, async {
                let (target, origin) = origin(down.clone()).await;
                let got_down = client(proxy, target, up.clone()).await;
                (got_down, origin.await.unwrap())
            })
            .await
        })
        .unwrap_or_else(|_| panic!("the transfer did not finish in {DEADLINE:?}\n{}", p.log()));
    // Not assert_eq!: 20 MB in a failure message helps no one.
    assert!(
        got_up == up,
        "the origin got {} bytes, {} sent; first difference at {:?}",
        got_up.len(),
        up.len(),
        got_up.iter().zip(&up).position(|(a, b)| a != b)
    );
    assert!(
        got_down == down,
        "the client got {} bytes, {} sent; first difference at {:?}",
        got_down.len(),
        down.len(),
        got_down.iter().zip(&down).position(|(a, b)| a != b)
    );
    let counts = format!("up={SIZE} down={SIZE} splice=true");
    assert!(
        p.wait_for_log(|l| l.contains("tunnel closed") && l.contains(&counts)),
        "the proxy logs a spliced tunnel with {counts}:\n{}",
        p.log()
    );
}

#[test]
fn twenty_megabytes_each_way_through_the_proxy_and_squid_arrive_intact_by_splice() {
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let (p, proxy_addr) = proxy(&realm, &["--proxy", &squid.url()]);
    transfer_is_intact_and_spliced(&p, proxy_addr);
    let log = squid.wait_access_log(|l| l.contains("CONNECT 127.0.0.1") && l.contains(" 200 "));
    assert!(log.contains("user=alice@EXAMPLE.TEST"), "{log}");

    // Direct (no upstream for loopback): the upstream socket is the origin's.
    let (p, proxy_addr) = proxy(
        &realm,
        &["--proxy", &squid.url(), "--noproxy", "127.0.0.0/8"],
    );
    transfer_is_intact_and_spliced(&p, proxy_addr);
}
