//! The session cookie on its way through the layer: cleared when it did not open,
//! removed from the request before the inner service sees it.

use super::*;
use kerbside_proto::cookie::remove_cookie;

/// Adds a `Set-Cookie` that clears a session cookie that did not open.
pub(super) fn clear_cookie<B>(response: &mut Response<B>, clear: Option<&str>) {
    if let Some(value) = clear.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// Removes the session cookie from `Cookie` headers before the request goes on: it
/// is a credential, and the upstream has no use for it. The pairs are split by
/// [`kerbside_proto::cookie`], the parser that reads the session cookie; a line it
/// cannot read (longer than it reads) is dropped whole rather than passed on.
pub(super) fn strip_cookie(headers: &mut http::HeaderMap, name: &str) {
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    headers.remove(COOKIE);
    for value in values {
        let Ok(Some(kept)) = remove_cookie(value.as_bytes(), name) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_bytes(&kept) {
            headers.append(COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_cookie_takes_out_the_session_and_keeps_other_cookies() {
        let mut headers = http::HeaderMap::new();
        for line in [
            &b"theme=dark; kerbside_session=abc; lang=en"[..],
            b"kerbside_session=\"def\"",
            b"l=\xe9t\xe9 ; kerbside_session = x",
        ] {
            headers.append(COOKIE, HeaderValue::from_bytes(line).unwrap());
        }
        headers.append(
            COOKIE,
            HeaderValue::from_str(&format!("a=1; kerbside_session=x{}", "y".repeat(70_000)))
                .unwrap(),
        );
        strip_cookie(&mut headers, "kerbside_session");
        let lines: Vec<&[u8]> = headers
            .get_all(COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(lines, [&b"theme=dark; lang=en"[..], b"l=\xe9t\xe9"]);
    }
}
