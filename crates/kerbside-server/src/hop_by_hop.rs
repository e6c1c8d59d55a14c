//! Hop-by-hop headers (RFC 9110 §7.6.1): fields about one connection, which a proxy or a
//! gateway must not pass on; the list is `kerbside_proto::hop_by_hop`'s, shared with
//! the forward proxy.

use http::header::{HeaderName, CONNECTION};
use http::HeaderMap;

pub(crate) use kerbside_proto::hop_by_hop::{is_hop_by_hop, HOP_BY_HOP};

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): the fixed list and those named in
/// `Connection`. A proxy must not forward them.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = kerbside_proto::hop_by_hop::connection_options(
        headers.get_all(CONNECTION).iter().map(|v| v.as_bytes()),
    )
    .into_iter()
    .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
    .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_list_is_matched_without_regard_to_case() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name));
            assert!(is_hop_by_hop(&name.to_ascii_uppercase()));
        }
        for name in [
            "content-type",
            "cookie",
            "authorization",
            "x-remote-user",
            "",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }

    #[test]
    fn strips_the_list_and_the_fields_connection_names() {
        let mut headers = HeaderMap::new();
        for name in HOP_BY_HOP {
            headers.insert(*name, HeaderValue::from_static("x"));
        }
        headers.append(CONNECTION, HeaderValue::from_static("close, X-Private"));
        headers.append(CONNECTION, HeaderValue::from_static(" x-other ,, bad name"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("x-other", HeaderValue::from_static("2"));
        headers.insert("x-kept", HeaderValue::from_static("3"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept", "content-type"]);
    }

    #[test]
    fn a_connection_value_that_is_not_text_still_goes() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_bytes(b"\xff").unwrap());
        headers.insert("x-kept", HeaderValue::from_static("3"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
    }
}
