//! Who owns the other end of a loopback connection: Linux lists every TCP socket
//! with its owner's uid in `/proc/net/tcp` and `/proc/net/tcp6`. The client's
//! socket is the line whose local address is the client's and whose remote address
//! is the proxy's listening end. This module reads the text; the IO crate reads the
//! files.
//!
//! Addresses are written as the kernel holds them: an IPv4 address as one 32-bit
//! word in hex in the machine's byte order, an IPv6 address as four such words, a
//! port as a 16-bit hex number.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::hosts::canonical_ip;

/// The TCP state `ESTABLISHED` in the `st` column.
const ESTABLISHED: &str = "01";

/// One socket of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLine {
    /// The socket's own address.
    pub local: SocketAddr,
    /// The address it is connected to.
    pub remote: SocketAddr,
    /// Whether the connection is established.
    pub established: bool,
    /// The owner's uid.
    pub uid: u32,
}

/// Parses one line of `/proc/net/tcp` or `tcp6`; `None` for the header line or a
/// line that does not parse.
pub fn parse_line(line: &str) -> Option<SocketLine> {
    let mut fields = line.split_ascii_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = parse_address(fields.next()?)?;
    let remote = parse_address(fields.next()?)?;
    let state = fields.next()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
    let uid = fields.nth(3)?.parse().ok()?;
    Some(SocketLine {
        local,
        remote,
        established: state == ESTABLISHED,
        uid,
    })
}

fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    if port.len() != 4 || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(address.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The uid owning the client's end of the connection from `client` to `server`
/// (the proxy's accepted socket: its peer and its local address), found in
/// `tables` (the text of `/proc/net/tcp` and `/proc/net/tcp6`). An established
/// socket wins over one in another state. `None` if no line matches (the client
/// is in another network namespace, or on another machine).
pub fn socket_owner<'a>(
    tables: impl IntoIterator<Item = &'a str>,
    client: SocketAddr,
    server: SocketAddr,
) -> Option<u32> {
    let same = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port() && canonical_ip(a.ip()) == canonical_ip(b.ip())
    };
    let mut found = None;
    for table in tables {
        for line in table.lines().filter_map(parse_line) {
            if same(line.local, client) && same(line.remote, server) {
                if line.established {
                    return Some(line.uid);
                }
                found.get_or_insert(line.uid);
            }
        }
    }
    found
}

/// Feeds `data` to the table parser; panics if a line parses into an address
/// that does not format back into the line's own fields.
pub(crate) fn fuzz_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        if let Some(parsed) = parse_line(line) {
            let local = line.split_ascii_whitespace().nth(1).unwrap_or_default();
            assert_eq!(
                format_address(parsed.local).to_ascii_uppercase(),
                local.to_ascii_uppercase()
            );
        }
    }
    let any = SocketAddr::from(([127, 0, 0, 1], 3128));
    let _ = socket_owner([text], any, any);
}

/// An address as the kernel writes it (for tests).
pub fn format_address(address: SocketAddr) -> String {
    let hex = |b: &[u8]| {
        let mut w = [0u8; 4];
        w.copy_from_slice(b);
        format!("{:08X}", u32::from_ne_bytes(w))
    };
    let ip = match address.ip() {
        IpAddr::V4(a) => hex(&a.octets()),
        IpAddr::V6(a) => a.octets().chunks_exact(4).map(hex).collect(),
    };
    format!("{ip}:{:04X}", address.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(local: SocketAddr, remote: SocketAddr, state: &str, uid: u32) -> String {
        format!(
            "   3: {} {} {state} 00000000:00000000 00:00000000 00000000  {uid}        0 \
             123456 1 0000000000000000 20 4 30 10 -1",
            format_address(local),
            format_address(remote)
        )
    }

    #[test]
    fn finds_the_clients_end_not_the_proxys() {
        let client: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:3128".parse().unwrap();
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n{}\n{}\n{}\n",
            line(server, "0.0.0.0:0".parse().unwrap(), "0A", 1000),
            line(server, client, "01", 1000),
            line(client, server, "01", 65534),
        );
        assert_eq!(socket_owner([table.as_str()], client, server), Some(65534));
        let other: SocketAddr = "127.0.0.2:40001".parse().unwrap();
        assert_eq!(socket_owner([table.as_str()], other, server), None);
    }

    #[test]
    fn reads_the_kernels_own_line() {
        // From a little-endian machine: 127.0.0.1:3128 → 127.0.0.1:45678.
        if cfg!(target_endian = "little") {
            let l = parse_line(
                "   1: 0100007F:0C38 0100007F:B26E 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 20 4 30 10 -1",
            )
            .unwrap();
            assert_eq!(l.local, "127.0.0.1:3128".parse::<SocketAddr>().unwrap());
            assert_eq!(l.remote.port(), 45678);
            assert_eq!(l.uid, 1000);
            assert!(l.established);
        }
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let client: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:3128".parse().unwrap();
        let table = line("127.0.0.1:5000".parse().unwrap(), server, "01", 7);
        assert_eq!(socket_owner([table.as_str()], client, server), Some(7));
        let c6: SocketAddr = "[::1]:5000".parse().unwrap();
        let s6: SocketAddr = "[::1]:3128".parse().unwrap();
        let table6 = line(c6, s6, "01", 8);
        assert_eq!(socket_owner(["", table6.as_str()], c6, s6), Some(8));
    }

    proptest! {
        #[test]
        fn any_address_round_trips(
            a in any::<[u8; 4]>(), b in any::<[u8; 16]>(), p in any::<u16>(), uid in any::<u32>()
        ) {
            for address in [
                SocketAddr::from((a, p)),
                SocketAddr::from((b, p)),
            ] {
                let text = line(address, address, "01", uid);
                let parsed = parse_line(&text).unwrap();
                prop_assert_eq!(parsed.local, address);
                prop_assert_eq!(parsed.uid, uid);
            }
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            fuzz_check(text.as_bytes());
        }
    }
}
