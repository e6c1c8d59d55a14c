//! The session cookie on its way through the layer: cleared when it did not open,
//! removed from the request before the inner service sees it.

use super::*;

/// Adds a `Set-Cookie` that clears a session cookie that did not open.
pub(super) fn clear_cookie<B>(response: &mut Response<B>, clear: Option<&str>) {
    if let Some(value) = clear.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// Removes the session cookie from `Cookie` headers before the request goes on: it
/// is a credential, and the upstream has no use for it.
pub(super) fn strip_cookie(headers: &mut http::HeaderMap, name: &str) {
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    headers.remove(COOKIE);
    for value in values {
        let Ok(text) = value.to_str() else {
            continue;
        };
        let kept: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|pair| pair.split_once('=').is_none_or(|(n, _)| n.trim() != name))
            .filter(|pair| !pair.is_empty())
            .collect();
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                headers.append(COOKIE, v);
            }
        }
    }
}
