//! The error returned when an authentication header does not follow the grammar.

use std::fmt;

/// What was wrong with a header value.
///
/// Each variant names one violation of the grammar in RFC 9110 §11 (challenges and credentials)
/// or RFC 7615 (Authentication-Info). The variant says what was wrong; [`HeaderError::position`]
/// says where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderErrorKind {
    /// The value holds nothing but whitespace where something was required (an `Authorization`
    /// value, or a scheme name passed to [`Scheme::new`](super::Scheme::new)).
    #[error("empty value")]
    Empty,
    /// A challenge or credentials must begin with an auth-scheme token, and something else was
    /// found (for example `=abc` or a quoted string).
    #[error("expected an authentication scheme (a token)")]
    ExpectedScheme,
    /// A character that is neither a `tchar` nor a delimiter that may follow a token appeared
    /// straight after a token (for example `Nego@tiate` or `realm=a/b`).
    #[error("character not allowed in a token")]
    InvalidTokenChar,
    /// A quoted string was opened with `"` and the value ended before the closing `"`. The
    /// position is that of the opening quote.
    #[error("unterminated quoted string")]
    UnterminatedQuotedString,
    /// A quoted string contains a control character (anything below 0x20 other than HTAB, or
    /// DEL), either as is or after a backslash.
    #[error("control character in a quoted string")]
    InvalidQuotedChar,
    /// The bytes of a quoted string above 0x7F (`obs-text`) do not form valid UTF-8.
    #[error("quoted string is not valid UTF-8")]
    InvalidUtf8,
    /// A parameter name was followed by something other than `=`.
    #[error("expected '=' after the parameter name")]
    ExpectedEquals,
    /// In a challenge list, an auth-param (`name=value`) appears where a challenge should
    /// start: at the start of the list, or after a bare scheme or a token68
    /// (`Negotiate, realm="x"`).
    #[error("parameter without a scheme before it")]
    ParamWithoutScheme,
    /// A list of auth-params holds something that is not a parameter name where one was
    /// expected.
    #[error("expected a parameter name (a token)")]
    ExpectedParamName,
    /// `=` was followed by neither a token nor a quoted string (for example `realm=` at the
    /// end of the value).
    #[error("expected a parameter value (a token or a quoted string)")]
    ExpectedParamValue,
    /// A complete list element (challenge or auth-param) was followed by something other than
    /// `,` or the end of the value.
    #[error("expected ',' or the end of the value")]
    ExpectedComma,
    /// Complete credentials were followed by more data; `Authorization` carries exactly one
    /// set of credentials.
    #[error("unexpected data after the credentials")]
    TrailingData,
    /// The same parameter name (compared without regard to ASCII case) appears twice in one
    /// challenge, credentials or Authentication-Info; RFC 9110 §11.2 forbids this. The
    /// position is that of the second occurrence.
    #[error("parameter appears more than once")]
    DuplicateParam,
    /// A control character (below 0x20 other than HTAB, or DEL; this includes NUL, CR and LF)
    /// appeared outside a quoted string.
    #[error("control character outside a quoted string")]
    ControlChar,
    /// A byte above 0x7F appeared outside a quoted string; RFC 9110 allows `obs-text` only
    /// inside quoted strings.
    #[error("non-ASCII byte outside a quoted string")]
    NonAscii,
    /// A token68 is not valid base64 (standard alphabet; padding optional). The position is
    /// counted within the token68.
    #[error("token68 is not valid base64")]
    InvalidBase64,
    /// The value is longer than [`MAX_VALUE_LEN`](super::MAX_VALUE_LEN) bytes.
    #[error("value longer than 65536 bytes")]
    TooLong,
}

/// A header value that does not follow the grammar: what is wrong and where.
///
/// The position is the 0-based byte offset, within the header value (one field line), of the
/// byte where the problem was found, or the length of the value when the value ended too early.
///
/// ```
/// use kerbside_proto::header::{Credentials, HeaderErrorKind};
///
/// let err = Credentials::parse(b"Digest nonce=1, realm=").unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::ExpectedParamValue);
/// assert_eq!(err.position(), 22);
/// assert_eq!(
///     err.to_string(),
///     "expected a parameter value (a token or a quoted string) at byte 22 (end of value)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {position}{}", Context { found: *found, line: *line })]
pub struct HeaderError {
    kind: HeaderErrorKind,
    position: usize,
    found: Option<u8>,
    line: Option<usize>,
}

impl HeaderError {
    pub(crate) fn new(kind: HeaderErrorKind, position: usize, found: Option<u8>) -> Self {
        Self {
            kind,
            position,
            found,
            line: None,
        }
    }

    pub(crate) fn on_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// What was wrong.
    pub fn kind(&self) -> HeaderErrorKind {
        self.kind
    }

    /// The 0-based byte offset within the header value where the problem was found.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The byte found at [`position`](Self::position), or `None` when the value ended there.
    pub fn found(&self) -> Option<u8> {
        self.found
    }

    /// For [`parse_challenges`](super::parse_challenges), the 0-based index of the header line
    /// (field line) that holds the error; `None` for parsers that take a single value.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

/// The tail of the error message: the byte found and, when known, the header line.
struct Context {
    found: Option<u8>,
    line: Option<usize>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.found {
            None => f.write_str(" (end of value)")?,
            Some(b) if b.is_ascii_graphic() => write!(f, " (found '{}')", char::from(b))?,
            Some(b) => write!(f, " (found byte 0x{b:02x})")?,
        }
        if let Some(line) = self.line {
            write!(f, " in header line {}", line + 1)?;
        }
        Ok(())
    }
}
