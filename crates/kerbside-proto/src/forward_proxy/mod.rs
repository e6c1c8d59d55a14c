//! The decisions of `kerbside proxy`, the local forward proxy, that need no
//! network: which route a request takes, which upstreams are skipped after a
//! failure, which upstreams may receive credentials, which clients may use it,
//! and which headers stay on their hop.
//!
//! - [`hosts`]: host lists (`--noproxy`, `--auth-proxies`), CIDR ranges, the client
//!   allow list (`--allow`);
//! - [`route`]: upstream addresses, `--proxy` lists, PAC result strings, fixed routes,
//!   the credential allow list;
//! - [`failover`]: failed upstreams tried last for a while (the clock an argument);
//! - [`socket_owner`]: the uid of a loopback client, from `/proc/net/tcp` text.
//!
//! The header fields a proxy never passes on are in [`crate::hop_by_hop`].
//!
//! ```
//! use kerbside_proto::forward_proxy::hosts::HostList;
//! use kerbside_proto::forward_proxy::route::{parse_proxy_list, FixedRoutes, RouteChoice};
//!
//! let routes = FixedRoutes {
//!     http: parse_proxy_list(["proxy1.corp:3128,proxy2.corp:3128"]).unwrap(),
//!     connect: parse_proxy_list(["proxy1.corp:3128,proxy2.corp:3128"]).unwrap(),
//!     no_proxy: HostList::parse("localhost,127.0.0.0/8,.corp").unwrap(),
//!     source: "--proxy",
//! };
//! assert_eq!(routes.route("git.corp", true).choices, vec![RouteChoice::Direct]);
//! assert_eq!(routes.route("pypi.org", true).choices.len(), 2);
//! ```

pub mod failover;
pub mod hosts;
pub mod route;
pub mod socket_owner;

#[cfg(test)]
mod proptests;

/// Feeds `data` to every parser of this module: host lists, CIDR ranges, proxy
/// lists, PAC results, and the socket table; panics if a parsed list does not
/// format back into one that parses the same, or a socket line does not round-trip.
pub(crate) fn fuzz_check(data: &[u8]) {
    socket_owner::fuzz_check(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = hosts::HostList::parse(text) {
        let again = hosts::HostList::parse(&list.to_string());
        assert_eq!(again.as_ref(), Ok(&list), "{list}");
        for host in ["localhost", "10.1.2.3", "::1", "a.example.com", text] {
            let _ = list.matches(host);
        }
    }
    let _ = hosts::ClientAllowList::parse([text]);
    if let Ok(list) = route::parse_proxy_list([text]) {
        let formatted: Vec<String> = list.iter().map(ToString::to_string).collect();
        let again = route::parse_proxy_list(formatted.iter().map(String::as_str));
        assert_eq!(again.as_ref(), Ok(&list), "{formatted:?}");
    }
    if let Ok((choices, _)) = route::parse_pac_result(text) {
        assert!(!choices.is_empty() || text.to_ascii_uppercase().contains("SOCKS"));
    }
}
