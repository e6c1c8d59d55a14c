//! The HTTP authentication headers: parse what a peer sent, format what we send.
//!
//! | Header | Grammar | Type |
//! |---|---|---|
//! | `WWW-Authenticate`, `Proxy-Authenticate` | `#challenge` (RFC 9110 §11.6.1, §11.7.1) | [`parse_challenges`], [`format_challenges`] → [`Challenge`] |
//! | `Authorization`, `Proxy-Authorization` | `credentials` (RFC 9110 §11.6.2, §11.7.2) | [`Credentials`] |
//! | `Authentication-Info`, `Proxy-Authentication-Info` | `#auth-param` (RFC 7615) | [`AuthenticationInfo`] |
//!
//! A challenge or credentials is a [`Scheme`] followed by [`AuthData`]: nothing, a `token68`
//! (`Negotiate YIIB…`), or a list of [`AuthParam`]s (`Digest realm="x", qop="auth"`).
//!
//! # How strictly the grammar is read
//!
//! The parser follows RFC 9110 and fails with a [`HeaderError`] naming the violation and its
//! byte position rather than guessing. Where the RFC asks recipients to be lenient, it is:
//!
//! - Empty list elements (`, ,`) and optional whitespace (SP or HTAB) are accepted wherever
//!   RFC 9110 §5.6.1 allows them, including around `=` in an auth-param (`BWS`). Between the
//!   scheme and its data the RFC asks for `1*SP`; HTAB is accepted there as well.
//! - Scheme and parameter names are case-insensitive; both keep their original spelling.
//! - Several field lines of one header are one list ([`parse_challenges`] takes them all).
//!
//! And where it is strict:
//!
//! - Control characters (including NUL, CR, LF and DEL; not HTAB) are rejected everywhere,
//!   inside quoted strings too.
//! - Bytes above 0x7F (`obs-text`) are accepted only inside quoted strings, and only when they
//!   form valid UTF-8 (values are Rust `String`s); elsewhere they are rejected.
//! - A parameter name may appear only once per challenge, credentials or Authentication-Info
//!   (RFC 9110 §11.2), compared without regard to case.
//! - One header value (one field line) may be at most [`MAX_VALUE_LEN`] bytes (64 KiB). That
//!   fits the largest Kerberos tickets Windows sends by default (`MaxTokenSize` 48 000 bytes,
//!   64 000 in base64).
//!
//! `Negotiate abc=` is a token68 and `Basic realm=x` is a parameter: after the scheme, a
//! token68 is taken only if it runs to a `,` or the end of the value. In a challenge list, an
//! element after a `,` belongs to the current challenge if it looks like `token BWS "="`, and
//! otherwise starts the next challenge.
//!
//! # Formatting
//!
//! A parameter value is written bare when it is a token and as a quoted string otherwise, with
//! `"` and `\` escaped, so formatting and parsing round-trip. Schemes that need a value quoted
//! even when it is a token (some Digest peers insist on it) can use [`write_quoted_string`].
//!
//! # Example
//!
//! ```
//! use kerbside_proto::header::{parse_challenges, AuthData, Credentials, Scheme};
//!
//! let lines: [&[u8]; 2] = [b"Negotiate, Basic realm=\"a, b\"", b"NTLM"];
//! let challenges = parse_challenges(lines).unwrap();
//! assert_eq!(challenges.len(), 3);
//! assert_eq!(challenges[0].scheme, Scheme::NEGOTIATE);
//! assert_eq!(challenges[0].data, AuthData::Empty);
//! assert_eq!(challenges[1].param("REALM"), Some("a, b"));
//!
//! let answer = Credentials::negotiate(Some(b"\x60\x82"));
//! assert_eq!(answer.to_header_value(), "Negotiate YII=");
//! ```

mod error;
mod grammar;
mod scheme;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

pub use error::{HeaderError, HeaderErrorKind};
pub use grammar::{is_token, is_token68, write_quoted_string};
pub use scheme::Scheme;

/// The longest header value (one field line) the parsers accept, in bytes: 64 KiB.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Standard base64, padding optional when decoding, written when encoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One `name=value` auth-param.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthParam {
    /// The parameter name as it was written; compare it without regard to ASCII case.
    pub name: String,
    /// The value, with the quotes and backslash escapes of a quoted string removed.
    pub value: String,
}

impl AuthParam {
    /// A parameter, checking that `name` is a token and that `value` has no control
    /// characters (other than HTAB), so that it can be formatted and parsed back.
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<AuthParam, HeaderError> {
        let (name, value) = (name.into(), value.into());
        grammar::check_token(&name)?;
        grammar::check_param_value(&value)?;
        Ok(AuthParam { name, value })
    }
}

/// What follows the scheme in a challenge or credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AuthData {
    /// Nothing: a bare scheme, such as the first `Negotiate` challenge.
    Empty,
    /// A `token68`, such as the base64 of a SPNEGO token. The parser only produces valid
    /// token68 strings; when building one by hand, check it with [`is_token68`].
    Token68(String),
    /// A list of auth-params, in the order written. The parser never produces an empty list;
    /// an empty list is formatted like [`AuthData::Empty`].
    Params(Vec<AuthParam>),
}

impl AuthData {
    /// The value of parameter `name`, compared without regard to ASCII case.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params()
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }

    /// The auth-params, or an empty slice when the data is not a parameter list.
    pub fn params(&self) -> &[AuthParam] {
        match self {
            AuthData::Params(params) => params,
            AuthData::Empty | AuthData::Token68(_) => &[],
        }
    }

    /// The token68, if that is what the data is.
    pub fn as_token68(&self) -> Option<&str> {
        match self {
            AuthData::Token68(token) => Some(token),
            AuthData::Empty | AuthData::Params(_) => None,
        }
    }

    /// The token68 decoded as base64 (standard alphabet, padding optional); `Ok(None)` when
    /// the data is not a token68. An error has kind [`HeaderErrorKind::InvalidBase64`] and a
    /// position within the token68.
    pub fn decode_token68(&self) -> Result<Option<Vec<u8>>, HeaderError> {
        let Some(token) = self.as_token68() else {
            return Ok(None);
        };
        BASE64.decode(token).map(Some).map_err(|e| {
            let position = match e {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(_) => token.len(),
                base64::DecodeError::InvalidPadding => token.find('=').unwrap_or(token.len()),
            };
            let found = token.as_bytes().get(position).copied();
            HeaderError::new(HeaderErrorKind::InvalidBase64, position, found)
        })
    }

    /// A token68 holding `token` in base64, or [`AuthData::Empty`] for `None` or an empty
    /// token.
    pub fn base64(token: Option<&[u8]>) -> AuthData {
        match token {
            Some(bytes) if !bytes.is_empty() => AuthData::Token68(BASE64.encode(bytes)),
            _ => AuthData::Empty,
        }
    }

    /// Appends ` token68` or ` a=b, c="d"` (with the leading space), or nothing.
    fn write_to(&self, out: &mut String) {
        match self {
            AuthData::Empty => {}
            AuthData::Token68(token) => {
                out.push(' ');
                out.push_str(token);
            }
            AuthData::Params(params) => {
                if !params.is_empty() {
                    out.push(' ');
                    write_params(out, params);
                }
            }
        }
    }
}

/// Token68 data can be a password (`Basic`) or a Kerberos authenticator; show only its size.
impl fmt::Debug for AuthData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthData::Empty => f.write_str("Empty"),
            AuthData::Token68(token) => write!(f, "Token68(<{} characters>)", token.len()),
            AuthData::Params(params) => f.debug_tuple("Params").field(params).finish(),
        }
    }
}

fn write_params(out: &mut String, params: &[AuthParam]) {
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&param.name);
        out.push('=');
        grammar::write_param_value(out, &param.value);
    }
}

/// One challenge from `WWW-Authenticate` or `Proxy-Authenticate`: a scheme the server accepts,
/// with its parameters or token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Challenge {
    /// The authentication scheme.
    pub scheme: Scheme,
    /// What follows the scheme.
    pub data: AuthData,
}

/// The credentials in `Authorization` or `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The authentication scheme.
    pub scheme: Scheme,
    /// What follows the scheme.
    pub data: AuthData,
}

macro_rules! scheme_and_data_methods {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("A ", $what, " with the given scheme and data.")]
            pub fn new(scheme: Scheme, data: AuthData) -> $ty {
                $ty { scheme, data }
            }

            #[doc = concat!(
                "A `Negotiate` ", $what, " carrying `token` in base64, or a bare `Negotiate` ",
                "for `None` (or an empty token)."
            )]
            pub fn negotiate(token: Option<&[u8]>) -> $ty {
                $ty::new(Scheme::NEGOTIATE, AuthData::base64(token))
            }

            /// The value of auth-param `name`, compared without regard to ASCII case.
            pub fn param(&self, name: &str) -> Option<&str> {
                self.data.param(name)
            }

            /// The token68, if the data is one.
            pub fn token68(&self) -> Option<&str> {
                self.data.as_token68()
            }

            /// The token68 decoded as base64 (padding optional); `Ok(None)` when there is no
            /// token68. See [`AuthData::decode_token68`].
            pub fn decode_token68(&self) -> Result<Option<Vec<u8>>, HeaderError> {
                self.data.decode_token68()
            }

            #[doc = concat!("The ", $what, " as a header value: `Scheme`, `Scheme token68` or `Scheme a=b, c=\"d\"`.")]
            pub fn to_header_value(&self) -> String {
                let mut out = String::new();
                self.write_to(&mut out);
                out
            }

            fn write_to(&self, out: &mut String) {
                out.push_str(self.scheme.as_str());
                self.data.write_to(out);
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_header_value())
            }
        }
    };
}

scheme_and_data_methods!(Challenge, "challenge");
scheme_and_data_methods!(Credentials, "credentials");

impl Credentials {
    /// Parses the value of `Authorization` or `Proxy-Authorization`.
    ///
    /// ```
    /// use kerbside_proto::header::{Credentials, Scheme};
    ///
    /// let credentials = Credentials::parse(b"Negotiate YIIBhQ==").unwrap();
    /// assert_eq!(credentials.scheme, Scheme::NEGOTIATE);
    /// assert_eq!(credentials.decode_token68().unwrap(), Some(vec![0x60, 0x82, 0x01, 0x85]));
    /// ```
    pub fn parse(value: &[u8]) -> Result<Credentials, HeaderError> {
        let (scheme, data) = grammar::credentials(value)?;
        Ok(Credentials { scheme, data })
    }
}

/// Parses all field lines of one `WWW-Authenticate` or `Proxy-Authenticate` header, in the
/// order received, into the challenges they list.
///
/// Empty lines and empty list elements are skipped, so the result may be empty. An error
/// carries the index of the line that holds it ([`HeaderError::line`]) and a byte position
/// within that line.
///
/// ```
/// use kerbside_proto::header::{parse_challenges, Scheme};
///
/// let challenges = parse_challenges([&b"Basic realm=\"a, b\", Negotiate"[..]]).unwrap();
/// let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
/// assert_eq!(schemes, ["Basic", "Negotiate"]);
/// ```
pub fn parse_challenges<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Challenge>, HeaderError> {
    let mut parsed = Vec::new();
    for (line, value) in values.into_iter().enumerate() {
        grammar::challenges(value, &mut parsed).map_err(|e| e.on_line(line))?;
    }
    Ok(parsed
        .into_iter()
        .map(|(scheme, data)| Challenge { scheme, data })
        .collect())
}

/// Formats challenges as one `WWW-Authenticate` or `Proxy-Authenticate` value, separated by
/// `, `. An empty slice gives an empty string.
pub fn format_challenges(challenges: &[Challenge]) -> String {
    let mut out = String::new();
    for (i, challenge) in challenges.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        challenge.write_to(&mut out);
    }
    out
}

/// The value of `Authentication-Info` or `Proxy-Authentication-Info` (RFC 7615): a list of
/// auth-params, such as Digest's `nextnonce` and `rspauth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AuthenticationInfo {
    /// The parameters, in the order written.
    pub params: Vec<AuthParam>,
}

impl AuthenticationInfo {
    /// Parses the header value. An empty value (or one of only commas and whitespace) gives
    /// an empty list.
    ///
    /// ```
    /// use kerbside_proto::header::AuthenticationInfo;
    ///
    /// let info = AuthenticationInfo::parse(b"qop=auth, rspauth=\"6629fae4\"").unwrap();
    /// assert_eq!(info.param("RspAuth"), Some("6629fae4"));
    /// assert_eq!(info.to_header_value(), "qop=auth, rspauth=6629fae4");
    /// ```
    pub fn parse(value: &[u8]) -> Result<AuthenticationInfo, HeaderError> {
        Ok(AuthenticationInfo {
            params: grammar::auth_param_list(value)?,
        })
    }

    /// The value of parameter `name`, compared without regard to ASCII case.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }

    /// The parameters as a header value: `a=b, c="d e"`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::new();
        write_params(&mut out, &self.params);
        out
    }
}

impl fmt::Display for AuthenticationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}
