//! HTTP cookies (RFC 6265), sans-IO: find a cookie's values in the `Cookie` request header
//! lines (or take it out of them), and format a `Set-Cookie` response header value.
//!
//! Only what a server needs to keep a session of its own: no cookie jar, no `Domain`
//! matching, no clock. Times are unix seconds the caller passes in.
//!
//! ```
//! use kerbside_proto::cookie::{find_cookie, set_cookie, SameSite, SetCookieAttrs};
//!
//! let attrs = SetCookieAttrs {
//!     path: Some("/".into()),
//!     http_only: true,
//!     secure: true,
//!     same_site: Some(SameSite::Lax),
//!     ..SetCookieAttrs::default()
//! }
//! .expiring(784_111_777, 3600);
//! let header = set_cookie("sid", "b2theQ", &attrs)?;
//! assert_eq!(
//!     header,
//!     "sid=b2theQ; Path=/; Max-Age=3600; Expires=Sun, 06 Nov 1994 09:49:37 GMT; \
//!      HttpOnly; Secure; SameSite=Lax"
//! );
//!
//! let lines: [&[u8]; 2] = [b"lang=en; sid=b2theQ", b"sid=\"older\""];
//! assert_eq!(find_cookie(lines, "sid")?, ["b2theQ", "older"]);
//! # Ok::<(), kerbside_proto::cookie::CookieError>(())
//! ```
//!
//! # What the parser accepts
//!
//! Browsers send `name=value` pairs joined by `"; "` (RFC 6265 §4.2.1). The parser is as
//! tolerant as they are, and it never lets one bad pair hide the others:
//!
//! - spaces and tabs around `;` and `=` are ignored, and so are empty pairs (`a=1;; b=2`);
//! - a value in double quotes (`name="value"`) is returned without them;
//! - a pair is **skipped** when it has no `=`, or when, for the name looked for, its value
//!   (unquoted) has a character outside RFC 6265's `cookie-octet`: a space, `"`, `,`, `\`,
//!   a control character or a non-ASCII byte. Such a value was not set by [`set_cookie`],
//!   which refuses them.
//!
//! Only two things are errors, because they say something is wrong with the request or the
//! caller rather than with one cookie: a header line longer than [`MAX_COOKIE_LINE_LEN`]
//! ([`CookieError::LineTooLong`]), and a `name` to look for that is not a cookie name
//! ([`CookieError::InvalidName`]).
//!
//! Names are compared case-sensitively, as browsers do.

use std::fmt::Write as _;

/// The longest `Cookie` header line [`find_cookie`] reads: 64 KiB. Browsers send at most
/// a few KiB (about 180 cookies of 4 KiB in the worst case browser), so a longer line is
/// not from one.
pub const MAX_COOKIE_LINE_LEN: usize = 64 * 1024;

/// What is wrong with a `Cookie` header or with a cookie to set.
///
/// No variant carries a cookie's value: values are often bearer credentials, and errors
/// end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// A `Cookie` header line is longer than [`MAX_COOKIE_LINE_LEN`].
    #[error("a Cookie header line is {len} bytes long, more than the {max} allowed", max = MAX_COOKIE_LINE_LEN)]
    LineTooLong {
        /// The length of the line, in bytes.
        len: usize,
    },
    /// A cookie name is empty or has a character that is not a `token` character
    /// (RFC 9110 §5.6.2): a space, a separator such as `=`, `;` or `,`, a control
    /// character or a non-ASCII byte.
    #[error("{name:?} is not a cookie name: a name is one or more token characters")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A cookie value to set has a character outside RFC 6265's `cookie-octet` (a space,
    /// `"`, `,`, `;`, `\`, a control character or a non-ASCII byte).
    #[error("the value of cookie {name:?} has a character not allowed in a cookie value at byte {position}")]
    InvalidValue {
        /// The cookie's name.
        name: String,
        /// Where the first bad character is, in bytes from the start of the value.
        position: usize,
    },
    /// A `Path` attribute has a control character or a `;`.
    #[error("{path:?} cannot be a cookie's Path: it has a control character or ';'")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// `SameSite=None` without `Secure`: browsers drop such a cookie.
    #[error("SameSite=None needs Secure, or browsers drop the cookie")]
    SameSiteNoneWithoutSecure,
    /// A name starting with `__Secure-` or `__Host-` (RFC 6265bis §4.1.3) without the
    /// attributes that prefix promises: `Secure`, and for `__Host-` also `Path=/`.
    #[error("a cookie named {name:?} must be Secure{and_path}", and_path = if name.starts_with("__Host-") { " with Path=/" } else { "" })]
    PrefixRequirements {
        /// The cookie's name.
        name: String,
    },
}

/// The `SameSite` attribute of a cookie: when a browser sends it on cross-site requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent on same-site requests and on top-level navigations from other sites.
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on every request; needs `Secure`.
    None,
}

impl SameSite {
    /// The attribute's value as sent: `Lax`, `Strict` or `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// The attributes of a `Set-Cookie` header, for [`set_cookie`]. `Default` is a session
/// cookie (no `Max-Age` nor `Expires`) with no attributes at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCookieAttrs {
    /// `Path`: the path prefix the browser sends the cookie for.
    pub path: Option<String>,
    /// `Max-Age`: seconds until the cookie expires; `0` deletes it.
    pub max_age: Option<u64>,
    /// `Expires`, in unix seconds, sent as an IMF-fixdate for clients that do not know
    /// `Max-Age`. Dates after the year 9999 are sent as the last second of 9999.
    pub expires: Option<u64>,
    /// `HttpOnly`: scripts cannot read the cookie.
    pub http_only: bool,
    /// `Secure`: the browser sends the cookie over HTTPS only.
    pub secure: bool,
    /// `SameSite`.
    pub same_site: Option<SameSite>,
}

impl SetCookieAttrs {
    /// Sets both `Max-Age` to `lifetime` seconds and `Expires` to `now + lifetime`, with
    /// `now` in unix seconds.
    #[must_use]
    pub fn expiring(mut self, now: u64, lifetime: u64) -> Self {
        self.max_age = Some(lifetime);
        self.expires = Some(now.saturating_add(lifetime));
        self
    }
}

/// All values of the cookie `name` in the `Cookie` header lines of a request, in the order
/// they come (lines in order, pairs in each line in order).
///
/// Browsers may send several cookies of one name (set for different paths or domains), so
/// a caller that needs one picks among them, for instance the first that authenticates.
/// See the [module documentation](self) for which malformations skip a pair and which are
/// errors.
///
/// # Errors
///
/// [`CookieError::LineTooLong`] if a line is longer than [`MAX_COOKIE_LINE_LEN`], and
/// [`CookieError::InvalidName`] if `name` is not a cookie name.
pub fn find_cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Result<Vec<&'a str>, CookieError> {
    check_name(name)?;
    let mut found = Vec::new();
    for line in cookie_headers {
        if line.len() > MAX_COOKIE_LINE_LEN {
            return Err(CookieError::LineTooLong { len: line.len() });
        }
        for pair in pairs(line) {
            let Some((pair_name, mut value)) = pair.name_value else {
                continue;
            };
            if pair_name != name.as_bytes() {
                continue;
            }
            if let [b'"', inner @ .., b'"'] = value {
                value = inner;
            }
            if value.iter().all(|&b| is_cookie_octet(b)) {
                // Cookie octets are ASCII, so this never fails.
                if let Ok(value) = std::str::from_utf8(value) {
                    found.push(value);
                }
            }
        }
    }
    Ok(found)
}

/// One `Cookie` header line without the pairs named `name`: what a server passes on after
/// taking its own cookie out of a request. Every pair of that name goes, whatever its
/// value; the others are kept byte for byte (without the spaces and tabs around them),
/// joined by `"; "`, and empty pairs are dropped. `None` when no pair is left.
///
/// Pairs are split as [`find_cookie`] splits them, so a pair it would find is removed.
///
/// # Errors
///
/// As [`find_cookie`]: [`CookieError::LineTooLong`] if `line` is longer than
/// [`MAX_COOKIE_LINE_LEN`], and [`CookieError::InvalidName`] if `name` is not a cookie
/// name.
pub fn remove_cookie(line: &[u8], name: &str) -> Result<Option<Vec<u8>>, CookieError> {
    check_name(name)?;
    if line.len() > MAX_COOKIE_LINE_LEN {
        return Err(CookieError::LineTooLong { len: line.len() });
    }
    let mut kept = Vec::with_capacity(line.len());
    for pair in pairs(line) {
        if pair.whole.is_empty() || pair.name_value.is_some_and(|(n, _)| n == name.as_bytes()) {
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(pair.whole);
    }
    Ok((!kept.is_empty()).then_some(kept))
}

/// One `;`-separated piece of a `Cookie` line.
struct Pair<'a> {
    /// The piece without spaces and tabs at either end.
    whole: &'a [u8],
    /// Its name and value, each trimmed, split at the first `=`; `None` without `=`.
    name_value: Option<(&'a [u8], &'a [u8])>,
}

/// The pairs of one `Cookie` header line, in order: the one parser of request cookies.
fn pairs(line: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    line.split(|&b| b == b';').map(|piece| Pair {
        whole: trim_ows(piece),
        name_value: piece
            .iter()
            .position(|&b| b == b'=')
            .map(|eq| (trim_ows(&piece[..eq]), trim_ows(&piece[eq + 1..]))),
    })
}

/// Formats a `Set-Cookie` header value: `name=value` and then the attributes of `attrs`,
/// in the order `Path`, `Max-Age`, `Expires`, `HttpOnly`, `Secure`, `SameSite`.
///
/// # Errors
///
/// - [`CookieError::InvalidName`] if `name` is not a token;
/// - [`CookieError::InvalidValue`] if `value` has a character outside `cookie-octet` (an
///   empty value is allowed);
/// - [`CookieError::InvalidPath`] if the path has a control character or `;`;
/// - [`CookieError::SameSiteNoneWithoutSecure`] for `SameSite=None` without `Secure`;
/// - [`CookieError::PrefixRequirements`] if a `__Secure-` or `__Host-` name lacks what
///   the prefix requires.
pub fn set_cookie(name: &str, value: &str, attrs: &SetCookieAttrs) -> Result<String, CookieError> {
    check_name(name)?;
    if let Some(position) = value.bytes().position(|b| !is_cookie_octet(b)) {
        return Err(CookieError::InvalidValue {
            name: name.to_owned(),
            position,
        });
    }
    if let Some(path) = &attrs.path {
        if path.bytes().any(|b| b.is_ascii_control() || b == b';') {
            return Err(CookieError::InvalidPath { path: path.clone() });
        }
    }
    if attrs.same_site == Some(SameSite::None) && !attrs.secure {
        return Err(CookieError::SameSiteNoneWithoutSecure);
    }
    let host_prefix = name.starts_with("__Host-");
    if (host_prefix || name.starts_with("__Secure-")) && !attrs.secure
        || host_prefix && attrs.path.as_deref() != Some("/")
    {
        return Err(CookieError::PrefixRequirements {
            name: name.to_owned(),
        });
    }

    let mut header = format!("{name}={value}");
    if let Some(path) = &attrs.path {
        header.push_str("; Path=");
        header.push_str(path);
    }
    if let Some(max_age) = attrs.max_age {
        let _ = write!(header, "; Max-Age={max_age}");
    }
    if let Some(expires) = attrs.expires {
        header.push_str("; Expires=");
        push_imf_fixdate(&mut header, expires);
    }
    if attrs.http_only {
        header.push_str("; HttpOnly");
    }
    if attrs.secure {
        header.push_str("; Secure");
    }
    if let Some(same_site) = attrs.same_site {
        header.push_str("; SameSite=");
        header.push_str(same_site.as_str());
    }
    Ok(header)
}

/// The cookie a `Set-Cookie` response header value sets, as the `(name, value)` a client
/// sends back (RFC 6265 §5.2 steps 1–6): the text before the first `;`, split at its first
/// `=`, blanks around each trimmed. `None` when that text has no `=` or an empty name, which
/// a client ignores. The attributes after the `;` are not read.
///
/// ```
/// use kerbside_proto::cookie::set_cookie_pair;
///
/// assert_eq!(set_cookie_pair("sid = b2theQ; Path=/; HttpOnly"), Some(("sid", "b2theQ")));
/// assert_eq!(set_cookie_pair("no-equals; Path=/"), None);
/// ```
pub fn set_cookie_pair(set_cookie: &str) -> Option<(&str, &str)> {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (
        name.trim_matches([' ', '\t']),
        value.trim_matches([' ', '\t']),
    );
    (!name.is_empty()).then_some((name, value))
}

/// Formats unix seconds as an IMF-fixdate (RFC 9110 §5.6.7), such as
/// `Sun, 06 Nov 1994 08:49:37 GMT`. Dates after the year 9999 are formatted as its last
/// second.
pub fn imf_fixdate(unix_seconds: u64) -> String {
    let mut text = String::with_capacity(29);
    push_imf_fixdate(&mut text, unix_seconds);
    text
}

fn push_imf_fixdate(out: &mut String, unix_seconds: u64) {
    /// 9999-12-31T23:59:59Z: IMF-fixdate has four year digits.
    const LAST: u64 = 253_402_300_799;
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = unix_seconds.min(LAST);
    let days = seconds / 86_400;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
    );
}

/// Year, month (1–12) and day (1–31) of the `days`th day after 1970-01-01, by Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn check_name(name: &str) -> Result<(), CookieError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(CookieError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 §4.1.1 `cookie-octet`: visible ASCII but `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// `bytes` without spaces and tabs at either end.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Feeds `data` to [`find_cookie`], as one header line and split on LF into several, for a
/// few names, and panics if a value found is not a `cookie-octet` string that
/// [`set_cookie`] formats and [`find_cookie`] finds again, or if [`remove_cookie`] leaves
/// a pair [`find_cookie`] finds.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    if let Some((name, value)) = std::str::from_utf8(data).ok().and_then(set_cookie_pair) {
        assert!(!name.is_empty() && !name.contains(';') && !value.contains(';'));
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let first_name = data
        .split(|&b| b == b'=')
        .next()
        .and_then(|name| std::str::from_utf8(trim_ows(name)).ok())
        .unwrap_or("");
    // Secure with Path=/ satisfies the `__Host-` and `__Secure-` prefixes.
    let attrs = SetCookieAttrs {
        path: Some("/".to_owned()),
        secure: true,
        ..SetCookieAttrs::default()
    };
    for name in [first_name, "kerbside_session", "a"] {
        for input in [vec![data], lines.clone()] {
            match find_cookie(input.iter().copied(), name) {
                Ok(values) => {
                    for value in values {
                        let header = set_cookie(name, value, &attrs)
                            .unwrap_or_else(|e| panic!("found {value:?} but cannot set it: {e}"));
                        // What a browser sends back: the pair before the attributes.
                        let pair = header.split("; ").next().unwrap_or_default();
                        assert_eq!(
                            find_cookie([pair.as_bytes()], name).as_deref(),
                            Ok(&[value][..])
                        );
                    }
                }
                Err(CookieError::InvalidName { .. }) => assert!(check_name(name).is_err()),
                Err(CookieError::LineTooLong { len }) => assert!(len > MAX_COOKIE_LINE_LEN),
                Err(other) => panic!("find_cookie cannot fail with {other:?}"),
            }
        }
        for line in &lines {
            match remove_cookie(line, name) {
                Ok(Some(kept)) => {
                    assert!(!kept.is_empty() && kept.len() <= 2 * line.len());
                    assert_eq!(find_cookie([&kept[..]], name).as_deref(), Ok(&[][..]));
                    assert_eq!(remove_cookie(&kept, name).as_ref(), Ok(&Some(kept.clone())));
                }
                Ok(None) => {}
                Err(CookieError::InvalidName { .. }) => assert!(check_name(name).is_err()),
                Err(CookieError::LineTooLong { len }) => assert!(len > MAX_COOKIE_LINE_LEN),
                Err(other) => panic!("remove_cookie cannot fail with {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn find<'a>(lines: &[&'a str], name: &str) -> Result<Vec<&'a str>, CookieError> {
        find_cookie(lines.iter().map(|l| l.as_bytes()), name)
    }

    #[test]
    fn set_cookie_values_give_the_pair_a_client_sends_back() {
        assert_eq!(set_cookie_pair("sid=abc"), Some(("sid", "abc")));
        assert_eq!(
            set_cookie_pair(" sid\t= a=b ; Path=/; Secure"),
            Some(("sid", "a=b"))
        );
        assert_eq!(set_cookie_pair("sid=; Max-Age=0"), Some(("sid", "")));
        assert_eq!(set_cookie_pair("=abc"), None);
        assert_eq!(set_cookie_pair("sid; Path=/"), None);
        assert_eq!(set_cookie_pair("Path=/x"), Some(("Path", "/x")));
        assert_eq!(set_cookie_pair(""), None);
        // What set_cookie writes, set_cookie_pair reads back.
        let header = set_cookie("sid", "b2theQ", &SetCookieAttrs::default()).unwrap();
        assert_eq!(set_cookie_pair(&header), Some(("sid", "b2theQ")));
    }

    #[test]
    fn finds_a_cookie_among_others() {
        assert_eq!(find(&["a=1; b=2; c=3"], "b"), Ok(vec!["2"]));
        assert_eq!(find(&["a=1; b=2; c=3"], "d"), Ok(vec![]));
        assert_eq!(find(&[], "a"), Ok(vec![]));
        assert_eq!(find(&[""], "a"), Ok(vec![]));
    }

    #[test]
    fn finds_every_value_across_lines_in_order() {
        assert_eq!(
            find(&["s=1; t=0; s=2", "s=3", "u=4;s=5"], "s"),
            Ok(vec!["1", "2", "3", "5"])
        );
    }

    #[test]
    fn names_are_case_sensitive_and_whole() {
        assert_eq!(
            find(&["SID=1; sid=2; sidx=3; xsid=4"], "sid"),
            Ok(vec!["2"])
        );
    }

    #[test]
    fn tolerates_whitespace_empty_pairs_and_quotes() {
        assert_eq!(find(&[" \ta = 1 ;;b=\t2\t; ;"], "a"), Ok(vec!["1"]));
        assert_eq!(find(&[" \ta = 1 ;;b=\t2\t; ;"], "b"), Ok(vec!["2"]));
        assert_eq!(find(&["a=\"quoted\""], "a"), Ok(vec!["quoted"]));
        assert_eq!(find(&["a=\"\"; b="], "a"), Ok(vec![""]));
        assert_eq!(find(&["a=\"\"; b="], "b"), Ok(vec![""]));
        assert_eq!(find(&["a=x=y"], "a"), Ok(vec!["x=y"]));
    }

    #[test]
    fn skips_pairs_that_do_not_parse_and_keeps_the_rest() {
        // No '=', a lone quote, a space, a comma, a backslash, a control, non-ASCII.
        let line = "a; a=\"; a=x y; a=x,y; a=x\\y; a=x\u{1}; a=é; a=ok";
        assert_eq!(find(&[line], "a"), Ok(vec!["ok"]));
        assert_eq!(find_cookie([&b"a=\xff\xfe; a=ok"[..]], "a"), Ok(vec!["ok"]));
        assert_eq!(find(&["=x; a=1"], "a"), Ok(vec!["1"]));
    }

    #[test]
    fn a_line_over_64_kib_is_an_error() {
        let long = format!("a=1; b={}", "x".repeat(MAX_COOKIE_LINE_LEN));
        assert_eq!(
            find(&["a=1", &long], "a"),
            Err(CookieError::LineTooLong { len: long.len() })
        );
        let just = format!("a={}", "x".repeat(MAX_COOKIE_LINE_LEN - 2));
        assert_eq!(find(&[&just], "a").map(|v| v.len()), Ok(1));
    }

    #[test]
    fn an_invalid_name_to_look_for_is_an_error() {
        for name in ["", "a b", "a=b", "a;b", "é"] {
            assert!(
                matches!(find(&["a=1"], name), Err(CookieError::InvalidName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn set_cookie_formats_every_attribute() {
        let attrs = SetCookieAttrs {
            path: Some("/app".into()),
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Strict),
            ..SetCookieAttrs::default()
        }
        .expiring(1_700_000_000, 600);
        assert_eq!(
            set_cookie("s", "v", &attrs).unwrap(),
            "s=v; Path=/app; Max-Age=600; Expires=Tue, 14 Nov 2023 22:23:20 GMT; HttpOnly; \
             Secure; SameSite=Strict"
        );
        assert_eq!(
            set_cookie("s", "", &SetCookieAttrs::default()).unwrap(),
            "s="
        );
    }

    #[test]
    fn set_cookie_refuses_bad_names_values_and_attributes() {
        let plain = SetCookieAttrs::default();
        assert!(matches!(
            set_cookie("a b", "v", &plain),
            Err(CookieError::InvalidName { .. })
        ));
        assert_eq!(
            set_cookie("a", "ab;c", &plain),
            Err(CookieError::InvalidValue {
                name: "a".into(),
                position: 2
            })
        );
        for value in ["a b", "\"", ",", "\\", "\u{7f}", "é"] {
            assert!(set_cookie("a", value, &plain).is_err(), "{value:?}");
        }
        let bad_path = SetCookieAttrs {
            path: Some("/a;b".into()),
            ..SetCookieAttrs::default()
        };
        assert!(matches!(
            set_cookie("a", "v", &bad_path),
            Err(CookieError::InvalidPath { .. })
        ));
        let none = SetCookieAttrs {
            same_site: Some(SameSite::None),
            ..SetCookieAttrs::default()
        };
        assert_eq!(
            set_cookie("a", "v", &none),
            Err(CookieError::SameSiteNoneWithoutSecure)
        );
        let secure = SetCookieAttrs {
            secure: true,
            ..SetCookieAttrs::default()
        };
        assert!(set_cookie("__Secure-a", "v", &secure).is_ok());
        assert!(set_cookie("__Secure-a", "v", &plain).is_err());
        assert!(set_cookie("__Host-a", "v", &secure).is_err());
        let host = SetCookieAttrs {
            path: Some("/".into()),
            ..secure
        };
        assert!(set_cookie("__Host-a", "v", &host).is_ok());
    }

    #[test]
    fn errors_never_show_the_value() {
        let error = set_cookie("a", "secret token", &SetCookieAttrs::default()).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("secret"));
    }

    #[test]
    fn imf_fixdate_matches_known_dates() {
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        // 2100 is not a leap year.
        assert_eq!(imf_fixdate(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(
            imf_fixdate(253_402_300_799),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(imf_fixdate(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn remove_cookie_takes_out_every_pair_of_the_name_and_keeps_the_rest() {
        let removed = |line: &str, name: &str| {
            remove_cookie(line.as_bytes(), name)
                .map(|kept| kept.map(|k| String::from_utf8(k).unwrap()))
        };
        assert_eq!(
            removed("a=1; sid=x; b=2", "sid").unwrap().as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(removed(" sid = x ;\tsid=\"y\"", "sid").unwrap(), None);
        assert_eq!(
            removed("sid=bad value; c", "sid").unwrap().as_deref(),
            Some("c")
        );
        assert_eq!(
            removed("a=1;; ;SID=2; sidx=3", "sid").unwrap().as_deref(),
            Some("a=1; SID=2; sidx=3")
        );
        assert_eq!(removed("", "sid").unwrap(), None);
        // Bytes that are not text are kept as they are.
        assert_eq!(
            remove_cookie(b"sid=1; l=\xe9t\xe9", "sid")
                .unwrap()
                .as_deref(),
            Some(&b"l=\xe9t\xe9"[..])
        );
        assert!(matches!(
            removed("a=1", "bad name"),
            Err(CookieError::InvalidName { .. })
        ));
        let long = "a".repeat(MAX_COOKIE_LINE_LEN + 1);
        assert!(matches!(
            removed(&long, "sid"),
            Err(CookieError::LineTooLong { .. })
        ));
    }

    #[test]
    fn fuzz_check_holds_on_examples() {
        for data in [
            &b"a=1; b=\"2\""[..],
            b"kerbside_session=abc\nkerbside_session=\"def\"",
            b"\xff=\xff",
            b"",
            b";;;===;",
        ] {
            fuzz_check(data);
        }
    }

    fn cookie_name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    fn cookie_value() -> impl Strategy<Value = String> {
        "[!#-+\\--:<-\\[\\]-~]{0,40}"
    }

    proptest! {
        #[test]
        fn set_cookie_round_trips_through_find_cookie(
            name in cookie_name(),
            value in cookie_value(),
            others in prop::collection::vec((cookie_name(), cookie_value()), 0..4),
            max_age in prop::option::of(0u64..10_000_000),
            now in 0u64..4_000_000_000,
            quoted in any::<bool>(),
        ) {
            let attrs = SetCookieAttrs {
                path: Some("/".into()),
                http_only: true,
                secure: true,
                same_site: Some(SameSite::Lax),
                ..SetCookieAttrs::default()
            };
            let attrs = match max_age {
                Some(age) => attrs.expiring(now, age),
                None => attrs,
            };
            let header = set_cookie(&name, &value, &attrs).unwrap();
            // What a browser sends back: the pair before the first "; ".
            let pair = header.split("; ").next().unwrap();
            prop_assert_eq!(pair, format!("{name}={value}"));
            let sent = if quoted { format!("{name}=\"{value}\"") } else { pair.to_owned() };
            let mut line: Vec<String> = others
                .iter()
                .filter(|(other, _)| *other != name)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            line.insert(line.len() / 2, sent);
            let line = line.join("; ");
            prop_assert_eq!(find(&[&line], &name).unwrap(), vec![value.as_str()]);
        }

        #[test]
        fn find_cookie_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            fuzz_check(&data);
        }

        #[test]
        fn find_cookie_never_panics_on_cookie_like_text(
            text in "([a-z_]{0,3}[= ;\"\t]{0,2}[a-z\",\\\\]{0,3}[; ]{0,2}){0,10}"
        ) {
            fuzz_check(text.as_bytes());
        }

        #[test]
        fn imf_fixdate_is_always_29_characters(seconds in any::<u64>()) {
            prop_assert_eq!(imf_fixdate(seconds).len(), 29);
        }
    }
}
