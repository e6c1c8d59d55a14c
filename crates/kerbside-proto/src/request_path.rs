//! One canonical form for a request path, decided once at the edge of a server so that
//! everything after it (routing, access rules, the proxy, CGI, the logs) reads the same
//! value and no two of them can disagree about which resource a request names.
//!
//! [`CanonicalPath::parse`] takes the path of a request target as received (still
//! percent-encoded, without the query) and either returns its canonical form or says why
//! there is none:
//!
//! - escapes of unreserved characters (`ALPHA DIGIT - . _ ~`) are decoded (`%61` → `a`,
//!   `%2e` → `.`), and every other escape is kept with upper-case hex (`%c3%a9` →
//!   `%C3%A9`); bytes that may not appear raw in a path (a space, `"`, non-ASCII...) are
//!   percent-encoded;
//! - `.` and `..` segments are resolved (RFC 3986 §5.2.4), whether written plainly or
//!   encoded in any case (`%2e%2E`, `.%2e`); a `..` that would climb above `/` is refused;
//! - `//` is merged into `/` (like Apache's `MergeSlashes`), so `//admin` is `/admin`;
//! - refused outright, because some server or application behind would read them as
//!   something else than we do: an encoded slash (`%2F`), a backslash (raw or `%5C`), NUL
//!   and every other control byte (raw or encoded, DEL included), a raw `;` (Tomcat and
//!   Spring drop `;parameters` from segments before matching, so `/admin;x/` is `/admin/`
//!   and `/..;/` is `/../` to them while it is neither to us; Spring's firewall refuses
//!   `;` for the same reason; an encoded `%3B` is a plain character and is kept), an
//!   overlong UTF-8 encoding of an ASCII character (`%C0%AE`, which old decoders read as
//!   `.`), and a malformed escape (`%`, `%4`, `%zz`);
//! - a path must start with `/`; the asterisk form (`OPTIONS *`) and an empty path are
//!   refused: nothing behind a gate is asked about the server as a whole.
//!
//! The canonical form is a fixed point: parsing it again gives it back unchanged.
//!
//! ```
//! use kerbside_proto::request_path::{CanonicalPath, PathError};
//!
//! let path = CanonicalPath::parse("/admin/%2E%2e/public//%78")?;
//! assert_eq!(path.as_str(), "/public/x");
//! assert_eq!(CanonicalPath::parse("/a/b/../c/")?.as_str(), "/a/c/");
//! assert_eq!(CanonicalPath::parse("/caf%c3%a9")?.as_str(), "/caf%C3%A9");
//! assert_eq!(CanonicalPath::parse("/public/..%2fadmin"), Err(PathError::EncodedSlash));
//! assert_eq!(CanonicalPath::parse("/../etc/passwd"), Err(PathError::EscapesRoot));
//! # Ok::<(), PathError>(())
//! ```

use std::fmt;

/// Why a request path has no canonical form. Each is answered with `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("is empty")]
    Empty,
    /// The asterisk form of `OPTIONS *`.
    #[error("is the asterisk form (OPTIONS *), which the gate does not serve")]
    Asterisk,
    /// The path does not start with `/`.
    #[error("does not start with /")]
    NotAbsolute,
    /// A `..` segment would climb above `/`.
    #[error("climbs above / with ..")]
    EscapesRoot,
    /// An encoded slash, `%2F`: some servers read it as a separator, others do not.
    #[error("has an encoded slash (%2F)")]
    EncodedSlash,
    /// A backslash, raw or `%5C`: Windows servers and some frameworks read it as `/`.
    #[error("has a backslash (\\ or %5C)")]
    Backslash,
    /// A control byte (`0x00`–`0x1F` or DEL), raw or encoded (`%00`, `%0A`, `%7F`...).
    #[error("has a control character (such as %00 or %0A)")]
    ControlByte,
    /// A `%` not followed by two hexadecimal digits.
    #[error("has a % that does not start an escape of two hexadecimal digits")]
    BadEscape,
    /// A raw `;`: Tomcat and Spring strip `;parameters` from segments before matching
    /// (`/admin;x/` is `/admin/`, `..;` is `..` to them).
    #[error("has a ; (path parameters, which some servers strip before matching)")]
    PathParameter,
    /// An overlong UTF-8 encoding of an ASCII character (`%C0%AE` for `.`, `%C0%AF` for
    /// `/`), which old decoders accept.
    #[error("has an overlong UTF-8 encoding (such as %C0%AE)")]
    OverlongUtf8,
}

/// A request path in its canonical form; made only by [`CanonicalPath::parse`], so holding
/// one means the path was checked. See the [module documentation](self) for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalPath(String);

impl CanonicalPath {
    /// The canonical form of `path` (a request target's path as received, without the
    /// query), or why it has none.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path == "*" {
            return Err(PathError::Asterisk);
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathError::NotAbsolute);
        };
        let mut segments: Vec<String> = Vec::new();
        // Whether the output ends with `/` after the last segment.
        let mut trailing_slash = true;
        for raw in rest.split('/') {
            let segment = canonical_segment(raw.as_bytes())?;
            match segment.as_str() {
                "" | "." => trailing_slash = true,
                ".." => {
                    if segments.pop().is_none() {
                        return Err(PathError::EscapesRoot);
                    }
                    trailing_slash = true;
                }
                _ => {
                    segments.push(segment);
                    trailing_slash = false;
                }
            }
        }
        let mut out = String::with_capacity(path.len());
        for segment in &segments {
            out.push('/');
            out.push_str(segment);
        }
        if trailing_slash || out.is_empty() {
            out.push('/');
        }
        Ok(Self(out))
    }

    /// The canonical path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments between the slashes, still percent-encoded (`/a/b/` gives `a`, `b`
    /// and an empty last segment; `/` gives one empty segment).
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0[1..].split('/')
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CanonicalPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `b` is an RFC 3986 unreserved character.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether `b` may appear raw in a canonical segment: unreserved, sub-delims, `:` and `@`
/// (RFC 3986 `pchar` without the escapes).
fn is_raw_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// One segment (no `/` in `raw`) in canonical form.
fn canonical_segment(raw: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    // The byte the previous escape stood for, to catch overlong UTF-8.
    let mut previous_escape: Option<u8> = None;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let value = match (raw.get(i + 1), raw.get(i + 2)) {
                (Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(PathError::BadEscape),
                },
                _ => return Err(PathError::BadEscape),
            };
            i += 3;
            if matches!(previous_escape, Some(0xc0 | 0xc1)) && (0x80..0xc0).contains(&value) {
                return Err(PathError::OverlongUtf8);
            }
            previous_escape = Some(value);
            match value {
                b'/' => return Err(PathError::EncodedSlash),
                b'\\' => return Err(PathError::Backslash),
                v if is_control(v) => return Err(PathError::ControlByte),
                v if is_unreserved(v) => out.push(char::from(v)),
                v => push_escape(&mut out, v),
            }
            continue;
        }
        previous_escape = None;
        i += 1;
        match b {
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            b if is_control(b) => return Err(PathError::ControlByte),
            b if is_raw_pchar(b) => out.push(char::from(b)),
            b => push_escape(&mut out, b),
        }
    }
    Ok(out)
}

/// Decodes every escape of a canonical segment (whose escapes are all well formed).
fn decode_segment(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| Some(hex_value(*bytes.get(i + 1)?)? << 4 | hex_value(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(value) => {
                out.push(value);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Fuzz check: whatever `data` canonicalises to starts with `/`, is ASCII, has no `//`, is
/// its own canonical form, and has no segment that decodes to `.`, `..`, or to bytes with a
/// `/`, a backslash or a control byte.
pub(crate) fn fuzz_check(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    let Ok(canonical) = CanonicalPath::parse(&path) else {
        return;
    };
    let text = canonical.as_str();
    assert!(text.starts_with('/'), "{path:?} → {text:?}");
    assert!(!text.contains("//"), "{path:?} → {text:?}");
    assert!(text.is_ascii(), "{path:?} → {text:?}");
    assert_eq!(
        CanonicalPath::parse(text).as_ref(),
        Ok(&canonical),
        "not idempotent: {path:?} → {text:?}"
    );
    for segment in canonical.segments() {
        let decoded = decode_segment(segment);
        assert!(decoded != b"." && decoded != b"..", "{path:?} → {text:?}");
        assert!(
            !decoded
                .iter()
                .any(|&b| b == b'/' || b == b'\\' || is_control(b)),
            "{path:?} → {text:?}"
        );
    }
}

#[cfg(test)]
mod tests;
