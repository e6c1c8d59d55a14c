//! The headers by which the gate tells what is behind it who the client is, and the one rule
//! by which a client's own copies of them are removed, whatever their spelling.
//!
//! CGI, WSGI, Rack and PHP give an application its request headers as variables named
//! `HTTP_` and the header's name upper-cased with `-` turned into `_`, so `X-Remote-User`,
//! `x-remote-user`, `X_Remote_User` and `x-remote_user` all become `HTTP_X_REMOTE_USER`.
//! Removing only the exact name would let a client send `X_Remote_User: mallory` beside the
//! gate's header, and the application would read one of the two. So every client header
//! whose name equals, compared case-insensitively with `_` and `-` alike, one of the
//! headers the gate sets for identity is removed before the request goes on:
//!
//! - the identity header (default `X-Remote-User`),
//! - its signature header (`<identity>-Signature`), whether or not the gate signs,
//! - the scheme header, when one is configured (`--scheme-header`),
//! - the groups header, when one is configured (`groups-header`),
//! - and the spellings of `X-Forwarded-For`, `-Proto` and `-Host` other than the exact name
//!   (the gate appends to or replaces the exact ones itself).
//!
//! ```
//! use http::header::{HeaderMap, HeaderName, HeaderValue};
//! use kerbside_server::identity_headers::IdentityHeaders;
//!
//! let identity = IdentityHeaders::new(HeaderName::from_static("x-remote-user"), None);
//! let mut headers = HeaderMap::new();
//! headers.insert("x_remote_user", HeaderValue::from_static("mallory"));
//! headers.insert("x-remote_user", HeaderValue::from_static("mallory"));
//! headers.insert("x-remote-user-signature", HeaderValue::from_static("forged"));
//! headers.insert("x-remote-users", HeaderValue::from_static("kept"));
//! identity.strip_client_spellings(&mut headers);
//! assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-remote-users"]);
//! ```

use http::header::{HeaderMap, HeaderName};

/// Headers the gate's proxy sets itself; a client's other spellings of them are removed.
const FORWARDED: &[&str] = &["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// Whether an application reading headers through CGI-style variables (`HTTP_X_FOO`) sees
/// `a` and `b` as the same header: ASCII case-insensitive, with `_` and `-` alike.
pub fn same_variable(a: &str, b: &str) -> bool {
    let fold = |c: u8| match c {
        b'_' => b'-',
        c => c.to_ascii_lowercase(),
    };
    a.len() == b.len() && a.bytes().map(fold).eq(b.bytes().map(fold))
}

/// The headers the gate sets for identity: see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    identity: HeaderName,
    signature: Option<HeaderName>,
    scheme: Option<HeaderName>,
    groups: Option<HeaderName>,
}

impl IdentityHeaders {
    /// The identity header, its `-signature` header, and the scheme header if any.
    pub fn new(identity: HeaderName, scheme: Option<HeaderName>) -> Self {
        let signature = HeaderName::from_bytes(format!("{identity}-signature").as_bytes()).ok();
        Self {
            identity,
            signature,
            scheme,
            groups: None,
        }
    }

    /// The same headers, and `groups` for the client's groups (comma-separated).
    pub fn with_groups(mut self, groups: Option<HeaderName>) -> Self {
        self.groups = groups;
        self
    }

    /// The header that carries the client's groups, if one is configured.
    pub fn groups(&self) -> Option<&HeaderName> {
        self.groups.as_ref()
    }

    /// The header that carries the principal.
    pub fn identity(&self) -> &HeaderName {
        &self.identity
    }

    /// The header that carries the identity's signature (`<identity>-signature`).
    pub fn signature(&self) -> Option<&HeaderName> {
        self.signature.as_ref()
    }

    /// The header that carries the scheme the client used, if one is configured.
    pub fn scheme(&self) -> Option<&HeaderName> {
        self.scheme.as_ref()
    }

    /// Whether a client header called `name` must be removed.
    pub fn is_client_spelling(&self, name: &str) -> bool {
        let own = [
            Some(&self.identity),
            self.signature.as_ref(),
            self.scheme.as_ref(),
            self.groups.as_ref(),
        ];
        own.into_iter()
            .flatten()
            .any(|ours| same_variable(name, ours.as_str()))
            || FORWARDED
                .iter()
                .any(|ours| name != *ours && same_variable(name, ours))
    }

    /// Removes every header [`is_client_spelling`](Self::is_client_spelling) names, and
    /// logs each name removed (not its value).
    pub fn strip_client_spellings(&self, headers: &mut HeaderMap) {
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| self.is_client_spelling(name.as_str()))
            .cloned()
            .collect();
        for name in spoofed {
            tracing::info!(header = %name, "removed a client's copy of an identity header");
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> IdentityHeaders {
        IdentityHeaders::new(
            HeaderName::from_static("x-remote-user"),
            Some(HeaderName::from_static("x-auth-scheme")),
        )
    }

    #[test]
    fn every_spelling_of_the_gates_headers_is_a_client_spelling() {
        let h = headers();
        for name in [
            "x-remote-user",
            "x_remote_user",
            "x-remote_user",
            "x_remote-user",
            "X_REMOTE_USER",
            "x-remote-user-signature",
            "x_remote_user_signature",
            "x-auth-scheme",
            "x_auth_scheme",
            "x_forwarded_for",
            "x-forwarded_proto",
            "x_forwarded_host",
        ] {
            assert!(h.is_client_spelling(name), "{name}");
        }
        for name in [
            "x-remote-users",
            "x-remote",
            "remote-user",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-remote-user-sig",
            "x-auth",
        ] {
            assert!(!h.is_client_spelling(name), "{name}");
        }
    }

    #[test]
    fn without_a_scheme_header_its_name_is_a_header_like_any_other() {
        let h = IdentityHeaders::new(HeaderName::from_static("x-user"), None);
        assert!(!h.is_client_spelling("x-auth-scheme"));
        assert!(h.is_client_spelling("X_User_Signature"));
        assert_eq!(
            h.signature().map(HeaderName::as_str),
            Some("x-user-signature")
        );
    }

    #[test]
    fn same_variable_folds_case_and_separators_only() {
        assert!(same_variable("A-b_C", "a_B-c"));
        assert!(!same_variable("a-b", "a.b"));
        assert!(!same_variable("ab", "a-b"));
    }
}
