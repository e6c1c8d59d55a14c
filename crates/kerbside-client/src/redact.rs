//! Header values as they may be shown to a person: secrets replaced by their size.

use http::header::{HeaderName, HeaderValue};

/// Returns the value of a header for logs and `-v` output: tokens, passwords and
/// cookies are replaced by a note of their length; everything else is shown as is.
pub fn redact_header(name: &HeaderName, value: &HeaderValue) -> String {
    let secret_whole = matches!(name.as_str(), "cookie" | "set-cookie");
    let secret_after_scheme = matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "www-authenticate"
            | "proxy-authenticate"
            | "authentication-info"
            | "proxy-authentication-info"
    );
    let text = String::from_utf8_lossy(value.as_bytes());
    if secret_whole {
        return format!("[redacted, {} bytes]", value.len());
    }
    if !secret_after_scheme {
        return text.into_owned();
    }
    // Keep the scheme (the first word) and parameter names of challenges, hide the
    // rest. Challenges without data ("Negotiate") stay as they are.
    match text.split_once([' ', '\t']) {
        None => text.into_owned(),
        Some((scheme, rest)) if name.as_str().ends_with("authenticate") && is_params(rest) => {
            format!("{scheme} {rest}")
        }
        Some((scheme, rest)) => format!("{scheme} [redacted, {} bytes]", rest.trim().len()),
    }
}

/// A challenge's parameters (`realm="x"`) are not secret; a token68 is.
fn is_params(rest: &str) -> bool {
    let rest = rest.trim();
    match rest.find('=') {
        Some(i) => {
            let after = &rest[i + 1..];
            !after.is_empty()
                && !after.starts_with('=')
                && rest[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &'static str, value: &'static str) -> String {
        redact_header(
            &HeaderName::from_static(name),
            &HeaderValue::from_static(value),
        )
    }

    #[test]
    fn tokens_are_hidden_and_sized() {
        assert_eq!(
            r("authorization", "Negotiate YIIBhgYGKwYBBQUCoIIBejCC"),
            "Negotiate [redacted, 24 bytes]"
        );
        assert_eq!(
            r("www-authenticate", "Negotiate oYG2MIGzoAMKAQ=="),
            "Negotiate [redacted, 16 bytes]"
        );
        assert_eq!(r("cookie", "session=abc"), "[redacted, 11 bytes]");
    }

    #[test]
    fn bare_challenges_and_params_and_other_headers_stay() {
        assert_eq!(r("www-authenticate", "Negotiate"), "Negotiate");
        assert_eq!(
            r("www-authenticate", "Basic realm=\"x\""),
            "Basic realm=\"x\""
        );
        assert_eq!(r("content-type", "text/plain"), "text/plain");
    }
}
