//! The two PAC functions that need the network, in Rust: `myIpAddress()` (the
//! address of the route to the outside, found by connecting a UDP socket, which
//! sends nothing, never by looking up the machine's own name) and
//! `dnsResolve(host)` (a look-up bounded by a deadline, `None` when the name does
//! not resolve).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

/// Where `myIpAddress` routes to (a documentation address: only the routing
/// table is consulted, no packet is sent).
const OUTSIDE: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 53),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 53),
];

/// The longest a `dnsResolve` waits.
pub const DNS_DEADLINE: Duration = Duration::from_secs(2);

/// The local IPv4 address of the route to the outside, or `127.0.0.1` when
/// there is no such route.
pub fn my_ip_address() -> Ipv4Addr {
    for target in OUTSIDE {
        let Ok(socket) = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))) else {
            continue;
        };
        if socket.connect(target).is_err() {
            continue;
        }
        if let Ok(SocketAddr::V4(local)) = socket.local_addr() {
            if !local.ip().is_unspecified() {
                return *local.ip();
            }
        }
    }
    Ipv4Addr::LOCALHOST
}

/// The first IPv4 address of `host` (an address is returned as it is), or
/// `None` when the name does not resolve within [`DNS_DEADLINE`].
pub fn dns_resolve(host: &str) -> Option<Ipv4Addr> {
    let host = host.trim();
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip);
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !valid {
        return None;
    }
    // getaddrinfo has no timeout of its own: it runs on a thread of its own, and
    // a slow one is left to finish alone.
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    let spawned = std::thread::Builder::new()
        .name("kerbside-pac-dns".into())
        .spawn(move || {
            let first = (name.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| {
                    addrs.find_map(|a| match a {
                        SocketAddr::V4(v4) => Some(*v4.ip()),
                        SocketAddr::V6(_) => None,
                    })
                });
            let _ = tx.send(first);
        });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(DNS_DEADLINE).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn my_ip_address_is_an_address_of_this_machine() {
        let ip = my_ip_address();
        // Bindable means it is one of ours.
        assert!(UdpSocket::bind(SocketAddr::from((ip, 0))).is_ok(), "{ip}");
    }

    #[test]
    fn names_that_do_not_resolve_give_none() {
        assert_eq!(dns_resolve("10.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(dns_resolve("localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(dns_resolve("no-such-host.invalid"), None);
        assert_eq!(dns_resolve(""), None);
        assert_eq!(dns_resolve("a b"), None);
        assert_eq!(dns_resolve(&"a".repeat(300)), None);
    }
}
