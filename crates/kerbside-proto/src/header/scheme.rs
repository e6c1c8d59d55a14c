//! The auth-scheme token: `Negotiate`, `Basic`, and so on.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::error::{HeaderError, HeaderErrorKind};
use super::grammar::is_tchar;

/// An authentication scheme name, such as `Negotiate`.
///
/// Scheme names are case-insensitive (RFC 9110 §11.1): equality and hashing ignore ASCII case,
/// while [`as_str`](Self::as_str) and `Display` keep the spelling that was parsed or given.
///
/// ```
/// use kerbside_proto::header::Scheme;
///
/// let parsed = Scheme::new("negotiate").unwrap();
/// assert_eq!(parsed, Scheme::NEGOTIATE);
/// assert!(parsed.is("NEGOTIATE"));
/// assert_eq!(parsed.to_string(), "negotiate");
/// ```
#[derive(Debug, Clone)]
pub struct Scheme(Cow<'static, str>);

impl Scheme {
    /// `Negotiate` (RFC 4559): SPNEGO, in practice Kerberos or NTLM.
    pub const NEGOTIATE: Scheme = Scheme(Cow::Borrowed("Negotiate"));
    /// `NTLM`: Microsoft's NTLM over HTTP, without SPNEGO.
    pub const NTLM: Scheme = Scheme(Cow::Borrowed("NTLM"));
    /// `Digest` (RFC 7616).
    pub const DIGEST: Scheme = Scheme(Cow::Borrowed("Digest"));
    /// `Basic` (RFC 7617).
    pub const BASIC: Scheme = Scheme(Cow::Borrowed("Basic"));
    /// `Bearer` (RFC 6750).
    pub const BEARER: Scheme = Scheme(Cow::Borrowed("Bearer"));

    /// A scheme with the given name, which must be a token (RFC 9110 §5.6.2).
    ///
    /// Fails with [`HeaderErrorKind::Empty`] for an empty name, and with
    /// [`HeaderErrorKind::InvalidTokenChar`] (or `ControlChar`, `NonAscii`) at the first byte
    /// that is not a `tchar`.
    pub fn new(name: &str) -> Result<Scheme, HeaderError> {
        if name.is_empty() {
            return Err(HeaderError::new(HeaderErrorKind::Empty, 0, None));
        }
        if let Some((position, &byte)) = name
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, b)| !is_tchar(**b))
        {
            let kind = super::grammar::classify(byte, HeaderErrorKind::InvalidTokenChar);
            return Err(HeaderError::new(kind, position, Some(byte)));
        }
        Ok(Scheme(Cow::Owned(name.to_owned())))
    }

    /// Builds a scheme from a string the parser already checked to be a token.
    pub(crate) fn from_token(token: &str) -> Scheme {
        Scheme(Cow::Owned(token.to_owned()))
    }

    /// The name as parsed or given, in its original case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this scheme is `other`, ignoring ASCII case.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl PartialEq for Scheme {
    fn eq(&self, other: &Self) -> bool {
        self.is(other.as_str())
    }
}

impl Eq for Scheme {}

impl Hash for Scheme {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for byte in self.0.bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scheme {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::new(s)
    }
}

impl AsRef<str> for Scheme {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
