//! The owner of one TCP socket, asked of the kernel by its four addresses through
//! netlink `sock_diag` (`SOCK_DIAG_BY_FAMILY`, an exact look-up, as `ss` does): a
//! constant cost, where reading `/proc/net/tcp` costs one line per socket on the
//! machine (thousands of `TIME_WAIT` sockets under load: tens of milliseconds
//! for every client connection). Linux only; the caller falls back to the tables.

use std::io;
use std::net::{IpAddr, SocketAddr};

use kerbside_proto::forward_proxy::hosts::canonical_ip;
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketType};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `ENOENT`: no such socket.
const ENOENT: i32 = 2;

/// The uid owning the TCP socket whose local address is `local` and remote
/// address `remote`; `Ok(None)` when the kernel has no such socket.
///
/// Never blocks, so it is called on the async runtime: the kernel answers a
/// `sock_diag` request inside the `send` (the answer is queued when `send`
/// returns), and the answer is taken with `MSG_DONTWAIT`; a missing one is an
/// error (`WouldBlock`), and the caller falls back to the tables.
pub(crate) fn socket_uid(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
    let request = request(local, remote);
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::send(&fd, &request, SendFlags::empty())?;
    let mut answer = [0u8; 1024];
    let (len, _) = rustix::net::recv(&fd, &mut answer[..], RecvFlags::DONTWAIT)?;
    parse_answer(answer.get(..len).unwrap_or_default())
}

/// The `nlmsghdr` + `inet_diag_req_v2` asking for one socket, all states.
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let (l_ip, r_ip) = (canonical_ip(local.ip()), canonical_ip(remote.ip()));
    let v4 = matches!((l_ip, r_ip), (IpAddr::V4(_), IpAddr::V4(_)));
    let family: u16 = if v4 { 2 } else { 10 }; // AF_INET, AF_INET6
    let addr = |ip: IpAddr| -> [u8; 16] {
        let mut a = [0u8; 16];
        match ip {
            IpAddr::V4(v) if v4 => a[..4].copy_from_slice(&v.octets()),
            IpAddr::V4(v) => a = v.to_ipv6_mapped().octets(),
            IpAddr::V6(v) => a = v.octets(),
        }
        a
    };
    let mut m = Vec::with_capacity(72);
    m.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    m.push(family as u8); // sdiag_family
    m.push(IPPROTO_TCP);
    m.push(0); // idiag_ext
    m.push(0); // pad
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: all
    m.extend_from_slice(&local.port().to_be_bytes()); // idiag_sport
    m.extend_from_slice(&remote.port().to_be_bytes()); // idiag_dport
    m.extend_from_slice(&addr(l_ip)); // idiag_src
    m.extend_from_slice(&addr(r_ip)); // idiag_dst
    m.extend_from_slice(&0u32.to_ne_bytes()); // idiag_if
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // cookie: INET_DIAG_NOCOOKIE
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m
}

/// The uid in an `inet_diag_msg` answer, `None` for `ENOENT`.
fn parse_answer(answer: &[u8]) -> io::Result<Option<u32>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "short sock_diag answer");
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_ne_bytes(answer.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(answer.get(o..o + 4)?.try_into().ok()?))
    };
    match u16_at(4).ok_or_else(bad)? {
        NLMSG_ERROR => {
            let errno = u32_at(16).map(|e| e as i32).ok_or_else(bad)?;
            if errno == -ENOENT {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(-errno))
            }
        }
        // nlmsghdr (16), then family, state, timer, retrans (4), sockid (48),
        // expires, rqueue, wqueue (12): idiag_uid.
        SOCK_DIAG_BY_FAMILY => Ok(Some(u32_at(16 + 4 + 48 + 12).ok_or_else(bad)?)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected sock_diag answer type {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_owner_of_a_loopback_connection_and_not_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let own = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").unwrap().uid()
        };
        // The client's socket: local = the peer the server saw, remote = the listener.
        assert_eq!(
            socket_uid(peer, listener.local_addr().unwrap()).unwrap(),
            Some(own)
        );
        assert_eq!(client.local_addr().unwrap(), peer);
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(socket_uid(nobody, nobody).unwrap(), None);
    }

    #[test]
    fn short_or_odd_answers_are_errors_not_panics() {
        for len in 0..100 {
            let answer = vec![0xffu8; len];
            let _ = parse_answer(&answer);
        }
        assert!(parse_answer(&[]).is_err());
    }
}
