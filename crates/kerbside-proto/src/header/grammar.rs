//! The grammar itself: character classes, a cursor over the bytes of one header value, and the
//! productions of RFC 9110 §11 (`challenge`, `credentials`, `auth-param`, `token68`) and
//! §5.6 (`token`, `quoted-string`, lists).
//!
//! Every read goes through [`Cursor::peek`], which returns `None` at the end of the input, so
//! no malformed value can make the parser index out of bounds.

use std::collections::HashSet;

use super::error::{HeaderError, HeaderErrorKind};
use super::scheme::Scheme;
use super::{AuthData, AuthParam, MAX_VALUE_LEN};

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The characters of `token68` before the trailing `=` (RFC 9110 §11.2).
pub(crate) fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// A control character as RFC 5234 defines `CTL`, except HTAB, which HTTP treats as whitespace.
pub(crate) fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// `qdtext` (RFC 9110 §5.6.4): HTAB, SP, visible ASCII other than `"` and `\`, and obs-text.
fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

/// What may follow a backslash in a `quoted-pair`: HTAB, SP, VCHAR and obs-text.
fn is_quotable(b: u8) -> bool {
    b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80
}

/// Picks the error kind for an unexpected byte: control characters and non-ASCII bytes get
/// their own kinds wherever they appear; any other byte gets `otherwise`.
pub(crate) fn classify(b: u8, otherwise: HeaderErrorKind) -> HeaderErrorKind {
    if is_ctl(b) {
        HeaderErrorKind::ControlChar
    } else if b >= 0x80 {
        HeaderErrorKind::NonAscii
    } else {
        otherwise
    }
}

/// Whether `s` is a `token`: one or more `tchar`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `s` is a `token68`: one or more of `A-Z a-z 0-9 - . _ ~ + /`, then any number of `=`.
pub fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// Appends `value` to `out` as a `quoted-string`, escaping `"` and `\` with a backslash.
///
/// Control characters other than HTAB cannot be represented in a quoted string; they are
/// written as they are, and the result will not parse. [`AuthParam::new`] rejects them.
pub fn write_quoted_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends an auth-param value: bare when it is a token, otherwise as a quoted string.
pub(crate) fn write_param_value(out: &mut String, value: &str) {
    if is_token(value) {
        out.push_str(value);
    } else {
        write_quoted_string(out, value);
    }
}

/// Checks that `value` can be written as an auth-param value: no control characters other
/// than HTAB. The error position is the byte offset within `value`.
pub(crate) fn check_param_value(value: &str) -> Result<(), HeaderError> {
    match value.bytes().enumerate().find(|(_, b)| is_ctl(*b)) {
        Some((position, b)) => Err(HeaderError::new(
            HeaderErrorKind::InvalidQuotedChar,
            position,
            Some(b),
        )),
        None => Ok(()),
    }
}

/// Checks that `name` is a token, for a scheme or parameter name.
pub(crate) fn check_token(name: &str) -> Result<(), HeaderError> {
    Scheme::new(name).map(drop)
}

/// A read position in one header value.
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `input`; fails if `input` is longer than [`MAX_VALUE_LEN`].
    pub(crate) fn new(input: &'a [u8]) -> Result<Self, HeaderError> {
        if input.len() > MAX_VALUE_LEN {
            let found = input.get(MAX_VALUE_LEN).copied();
            return Err(HeaderError::new(
                HeaderErrorKind::TooLong,
                MAX_VALUE_LEN,
                found,
            ));
        }
        Ok(Self { input, pos: 0 })
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Steps over the current byte; callers have seen it with `peek`.
    fn bump(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.input.get(start..end).unwrap_or_default()
    }

    /// An error of `kind` at the current position.
    fn error(&self, kind: HeaderErrorKind) -> HeaderError {
        HeaderError::new(kind, self.pos, self.peek())
    }

    /// An error for an unexpected byte at the current position (see [`classify`]).
    fn unexpected(&self, otherwise: HeaderErrorKind) -> HeaderError {
        match self.peek() {
            Some(b) => self.error(classify(b, otherwise)),
            None => self.error(otherwise),
        }
    }

    /// After a token with nothing between: a visible non-`tchar` byte means the token itself
    /// was malformed; anything else is reported as `otherwise`.
    fn unexpected_after_token(&self, whitespace: usize, otherwise: HeaderErrorKind) -> HeaderError {
        match self.peek() {
            Some(b) if whitespace == 0 && b.is_ascii_graphic() => {
                self.error(HeaderErrorKind::InvalidTokenChar)
            }
            _ => self.unexpected(otherwise),
        }
    }

    /// Skips `OWS` (SP and HTAB) and returns how many bytes were skipped.
    fn skip_ows(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        self.pos - start
    }

    /// Skips empty list elements: any run of OWS and commas.
    fn skip_empty_elements(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.bump();
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
        self.slice(start, self.pos)
    }

    /// `token`, or `None` (without moving) if there is none here.
    fn token(&mut self) -> Option<&'a str> {
        let bytes = self.take_while(is_tchar);
        if bytes.is_empty() {
            None
        } else {
            // tchar is ASCII, so this cannot fail.
            std::str::from_utf8(bytes).ok()
        }
    }

    /// `token68`, or `None` (without moving) if there is none here.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if self.take_while(is_token68_char).is_empty() {
            return None;
        }
        self.take_while(|b| b == b'=');
        std::str::from_utf8(self.slice(start, self.pos)).ok()
    }

    /// `quoted-string`, unescaped; the cursor is on the opening `"`.
    fn quoted_string(&mut self) -> Result<String, HeaderError> {
        let open = self.pos;
        self.bump();
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(HeaderError::new(
                        HeaderErrorKind::UnterminatedQuotedString,
                        open,
                        Some(b'"'),
                    ))
                }
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        None => {
                            return Err(HeaderError::new(
                                HeaderErrorKind::UnterminatedQuotedString,
                                open,
                                Some(b'"'),
                            ))
                        }
                        Some(b) if is_quotable(b) => {
                            value.push(b);
                            self.bump();
                        }
                        Some(_) => return Err(self.error(HeaderErrorKind::InvalidQuotedChar)),
                    }
                }
                Some(b) if is_qdtext(b) => {
                    value.push(b);
                    self.bump();
                }
                Some(_) => return Err(self.error(HeaderErrorKind::InvalidQuotedChar)),
            }
        }
        // Check UTF-8 on the raw bytes between the quotes so the error can point at the
        // offending byte; removing ASCII backslashes from valid UTF-8 keeps it valid.
        let raw = self.slice(open + 1, self.pos - 1);
        if let Err(e) = std::str::from_utf8(raw) {
            let position = open + 1 + e.valid_up_to();
            let found = self.input.get(position).copied();
            return Err(HeaderError::new(
                HeaderErrorKind::InvalidUtf8,
                position,
                found,
            ));
        }
        String::from_utf8(value)
            .map_err(|_| HeaderError::new(HeaderErrorKind::InvalidUtf8, open, Some(b'"')))
    }

    /// Whether an `auth-param` starts here: `token BWS "="`. Does not move the cursor.
    fn at_auth_param(&mut self) -> bool {
        let start = self.pos;
        let found = self.token().is_some() && {
            self.skip_ows();
            self.peek() == Some(b'=')
        };
        self.pos = start;
        found
    }

    /// One `auth-param`; the cursor is at the name. Leaves the cursor after the value.
    /// Returns the param and whether its value was a bare token.
    fn auth_param(&mut self, seen: &mut HashSet<String>) -> Result<(AuthParam, bool), HeaderError> {
        let name_pos = self.pos;
        let Some(name) = self.token() else {
            return Err(self.unexpected(HeaderErrorKind::ExpectedParamName));
        };
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(HeaderError::new(
                HeaderErrorKind::DuplicateParam,
                name_pos,
                self.input.get(name_pos).copied(),
            ));
        }
        let whitespace = self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(self.unexpected_after_token(whitespace, HeaderErrorKind::ExpectedEquals));
        }
        self.bump();
        self.skip_ows();
        let (value, bare) = match self.peek() {
            Some(b'"') => (self.quoted_string()?, false),
            _ => match self.token() {
                Some(token) => (token.to_owned(), true),
                None => return Err(self.unexpected(HeaderErrorKind::ExpectedParamValue)),
            },
        };
        let param = AuthParam {
            name: name.to_owned(),
            value,
        };
        Ok((param, bare))
    }

    /// After a list element: skips OWS and checks that a comma or the end follows.
    fn end_of_element(&mut self, after_bare_token: bool) -> Result<(), HeaderError> {
        let whitespace = self.skip_ows();
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(_) if after_bare_token => {
                Err(self.unexpected_after_token(whitespace, HeaderErrorKind::ExpectedComma))
            }
            Some(_) => Err(self.unexpected(HeaderErrorKind::ExpectedComma)),
        }
    }

    /// `#auth-param` starting at a parameter name. In a challenge list (`in_challenges`), stops
    /// before an element that is not an auth-param, which starts the next challenge.
    fn auth_params(&mut self, in_challenges: bool) -> Result<Vec<AuthParam>, HeaderError> {
        let mut params = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let (param, bare) = self.auth_param(&mut seen)?;
            params.push(param);
            self.end_of_element(bare)?;
            self.skip_empty_elements();
            if self.at_end() || (in_challenges && !self.at_auth_param()) {
                return Ok(params);
            }
        }
    }

    /// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, for a challenge (`in_list`) or for
    /// credentials. Leaves the cursor at the `,` or end that follows.
    fn scheme_and_data(&mut self, in_list: bool) -> Result<(Scheme, AuthData), HeaderError> {
        let Some(scheme) = self.token() else {
            return Err(self.unexpected(HeaderErrorKind::ExpectedScheme));
        };
        let scheme = Scheme::from_token(scheme);
        let whitespace = self.skip_ows();
        match self.peek() {
            None => return Ok((scheme, AuthData::Empty)),
            Some(b',') if in_list => return Ok((scheme, AuthData::Empty)),
            Some(b',') => return Err(self.error(HeaderErrorKind::TrailingData)),
            Some(_) if whitespace == 0 => {
                return Err(self.unexpected_after_token(0, HeaderErrorKind::InvalidTokenChar));
            }
            Some(_) => {}
        }
        let start = self.pos;
        if let Some(token68) = self.token68() {
            self.skip_ows();
            match self.peek() {
                None => return Ok((scheme, AuthData::Token68(token68.to_owned()))),
                Some(b',') if in_list => {
                    return Ok((scheme, AuthData::Token68(token68.to_owned())))
                }
                Some(b',') => return Err(self.error(HeaderErrorKind::TrailingData)),
                Some(_) => self.pos = start,
            }
        }
        let params = self.auth_params(in_list)?;
        Ok((scheme, AuthData::Params(params)))
    }
}

/// `#challenge` in one header value, appended to `out`.
pub(crate) fn challenges(
    input: &[u8],
    out: &mut Vec<(Scheme, AuthData)>,
) -> Result<(), HeaderError> {
    let mut cursor = Cursor::new(input)?;
    loop {
        cursor.skip_empty_elements();
        if cursor.at_end() {
            return Ok(());
        }
        if cursor.at_auth_param() {
            return Err(cursor.error(HeaderErrorKind::ParamWithoutScheme));
        }
        out.push(cursor.scheme_and_data(true)?);
    }
}

/// `credentials`, with optional whitespace around it.
pub(crate) fn credentials(input: &[u8]) -> Result<(Scheme, AuthData), HeaderError> {
    let mut cursor = Cursor::new(input)?;
    cursor.skip_ows();
    if cursor.at_end() {
        return Err(cursor.error(HeaderErrorKind::Empty));
    }
    let parsed = cursor.scheme_and_data(false)?;
    // After a list of params the cursor is at the end; after a scheme or token68, the
    // whitespace and a possible comma have been handled above.
    if !cursor.at_end() {
        return Err(cursor.error(HeaderErrorKind::TrailingData));
    }
    Ok(parsed)
}

/// `#auth-param`, as in Authentication-Info; may be empty.
pub(crate) fn auth_param_list(input: &[u8]) -> Result<Vec<AuthParam>, HeaderError> {
    let mut cursor = Cursor::new(input)?;
    cursor.skip_empty_elements();
    if cursor.at_end() {
        return Ok(Vec::new());
    }
    cursor.auth_params(false)
}
