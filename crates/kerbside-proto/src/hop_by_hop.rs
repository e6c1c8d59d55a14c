//! Hop-by-hop header fields (RFC 9110 §7.6.1): fields about one connection, which
//! a proxy or a gateway must not pass on. The one list the gate, its CGI gateway,
//! the tunnel and the forward proxy use.

/// The hop-by-hop field names (lower case): the connection options RFC 9110 §7.6.1
/// names, the obsolete `Keep-Alive` and `Proxy-Connection`, and the proxy
/// authentication fields (RFC 9110 §11.7), which are for the proxy, not the origin.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is in the fixed hop-by-hop list, compared without regard to case.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The field names the `Connection` field lines name (lower case, empty and
/// non-text entries skipped): also hop-by-hop for this message.
pub fn connection_options<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_matched_without_regard_to_case() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name));
            assert!(is_hop_by_hop(&name.to_ascii_uppercase()));
        }
        for name in ["content-type", "cookie", "authorization", ""] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }

    #[test]
    fn connection_names_options() {
        let v: [&[u8]; 3] = [b"close, X-Private", b" x-other ,, ", b"\xff"];
        assert_eq!(connection_options(v), ["close", "x-private", "x-other"]);
    }
}
