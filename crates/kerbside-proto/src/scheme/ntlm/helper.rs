//! Samba's `ntlm_auth --helper-protocol=ntlm-server-1`, sans IO: the request that asks the
//! domain controller (through winbindd) to check an NTLMv2 response, and the reader of the
//! helper's answer.
//!
//! A request is `Parameter: value` lines ended by a line holding one `.`; names go
//! base64-encoded (`Parameter:: base64`), so no user name can add a line of its own:
//!
//! ```text
//! Username:: YWxpY2U=
//! NT-Domain:: QURFWEFNUExF
//! LANMAN-Challenge: 0102030405060708
//! NT-Response: 4f5e…
//! Request-User-Session-Key: Yes
//! .
//! ```
//!
//! The answer is `Authenticated: Yes` with `User-Session-Key: HEX` (the NTLMv2 session base
//! key, which lets the caller check the MIC and sign), or `Authenticated: No` with
//! `Authentication-Error: TEXT`, the domain controller's NT status in English, which
//! [`DcRefusal`] sorts into what a person can act on. Samba 4.17 ends a refusal with two `.`
//! lines; [`ReplyReader`] skips `.` lines before an answer starts, so the stray one is not
//! taken for the next answer.
//!
//! ```
//! use kerbside_proto::scheme::ntlm::helper::{encode_request, HelperVerdict, ReplyReader};
//!
//! let request = encode_request("alice", "ADEXAMPLE", [1; 8], &[0; 48]);
//! assert!(request.ends_with(b"\n.\n"));
//! let mut reader = ReplyReader::default();
//! let mut verdict = None;
//! for line in ["Authenticated: Yes", "User-Session-Key: 000102030405060708090A0B0C0D0E0F", "."] {
//!     verdict = reader.line(line)?;
//! }
//! assert!(matches!(verdict, Some(HelperVerdict::Authenticated { .. })));
//! # Ok::<(), kerbside_proto::scheme::ntlm::helper::HelperError>(())
//! ```

use std::fmt;

use base64::Engine as _;

/// The longest line read from a helper (an answer's lines are short).
pub const MAX_LINE: usize = 4096;

/// The most lines one answer may have.
const MAX_LINES: usize = 32;

/// The request asking the helper to check `nt_response` (NTProofStr and the client's blob)
/// for `user` in `domain` against `server_challenge`, and to return the session key.
pub fn encode_request(
    user: &str,
    domain: &str,
    server_challenge: [u8; 8],
    nt_response: &[u8],
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    out.push_str(&format!("Username:: {}\n", b64.encode(user)));
    out.push_str(&format!("NT-Domain:: {}\n", b64.encode(domain)));
    out.push_str(&format!("LANMAN-Challenge: {}\n", hex(&server_challenge)));
    out.push_str(&format!("NT-Response: {}\n", hex(nt_response)));
    out.push_str("Request-User-Session-Key: Yes\n.\n");
    out.into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The helper's answer to one request.
#[derive(Clone, PartialEq, Eq)]
pub enum HelperVerdict {
    /// The domain controller checked the response.
    Authenticated {
        /// The user session key: for NTLMv2, the session base key.
        session_key: [u8; 16],
    },
    /// The domain controller refused.
    Refused(DcRefusal),
}

impl fmt::Debug for HelperVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Authenticated { .. } => f.write_str("Authenticated { session_key: <redacted> }"),
            Self::Refused(r) => f.debug_tuple("Refused").field(r).finish(),
        }
    }
}

/// Why the domain controller refused a logon, sorted from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalKind {
    /// `NT_STATUS_WRONG_PASSWORD` (or `LOGON_FAILURE`): the password is wrong.
    WrongPassword,
    /// `NT_STATUS_NO_SUCH_USER`: no such account in the domain.
    NoSuchUser,
    /// `NT_STATUS_ACCOUNT_LOCKED_OUT`: locked after too many wrong passwords.
    AccountLocked,
    /// `NT_STATUS_ACCOUNT_DISABLED`.
    AccountDisabled,
    /// `NT_STATUS_ACCOUNT_EXPIRED`.
    AccountExpired,
    /// `NT_STATUS_PASSWORD_EXPIRED` or `PASSWORD_MUST_CHANGE`.
    PasswordExpired,
    /// Logon hours or workstation restrictions.
    Restricted,
    /// Anything else (winbindd or the domain controller unreachable, for one).
    Other,
}

/// The domain controller's refusal: its kind and its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcRefusal {
    /// What kind of refusal it is.
    pub kind: RefusalKind,
    /// The helper's `Authentication-Error` text, as it came.
    pub message: String,
}

impl DcRefusal {
    /// Sorts a helper's error text (Samba's English NT status text, or an `NT_STATUS_` name).
    pub fn from_message(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
        let kind = if has(&["locked", "nt_status_account_locked_out"]) {
            RefusalKind::AccountLocked
        } else if has(&["currently disabled", "nt_status_account_disabled"]) {
            RefusalKind::AccountDisabled
        } else if has(&["account has expired", "nt_status_account_expired"]) {
            RefusalKind::AccountExpired
        } else if has(&[
            "password has expired",
            "must be changed",
            "nt_status_password_expired",
            "nt_status_password_must_change",
        ]) {
            RefusalKind::PasswordExpired
        } else if has(&[
            "password is not correct",
            "nt_status_wrong_password",
            "logon failure",
            "nt_status_logon_failure",
            "the attempted logon is invalid",
        ]) {
            RefusalKind::WrongPassword
        } else if has(&["account does not exist", "nt_status_no_such_user"]) {
            RefusalKind::NoSuchUser
        } else if has(&[
            "logon hours",
            "workstation",
            "nt_status_invalid_logon_hours",
            "nt_status_invalid_workstation",
        ]) {
            RefusalKind::Restricted
        } else {
            RefusalKind::Other
        };
        Self {
            kind,
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for DcRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self.kind {
            RefusalKind::WrongPassword => "wrong password",
            RefusalKind::NoSuchUser => "no such account in the domain",
            RefusalKind::AccountLocked => {
                "the account is locked out after too many wrong passwords (an administrator \
                 unlocks it, or it unlocks after the domain's lockout duration)"
            }
            RefusalKind::AccountDisabled => "the account is disabled in the domain",
            RefusalKind::AccountExpired => "the account has expired",
            RefusalKind::PasswordExpired => "the password has expired and must be changed",
            RefusalKind::Restricted => {
                "the account may not log on at this time or from this workstation"
            }
            RefusalKind::Other => "the domain controller refused the logon",
        };
        write!(f, "{words} (domain controller: {:?})", self.message)
    }
}

/// What is wrong with a helper's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelperError {
    /// A line is longer than [`MAX_LINE`].
    #[error("the ntlm_auth helper sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// An answer has more lines than any answer needs.
    #[error("the ntlm_auth helper's answer does not end")]
    TooManyLines,
    /// A line is not `Parameter: value` or `Parameter:: base64`.
    #[error("the ntlm_auth helper sent a line that is not `Parameter: value`: {0:?}")]
    BadLine(String),
    /// A `::` value is not base64.
    #[error("the ntlm_auth helper sent {0} with a value that is not base64")]
    BadBase64(String),
    /// The answer has no `Authenticated:` line, or one that is neither `Yes` nor `No`.
    #[error("the ntlm_auth helper's answer says neither `Authenticated: Yes` nor `No`")]
    NoVerdict,
    /// `Authenticated: Yes` without a 16-byte `User-Session-Key`.
    #[error(
        "the ntlm_auth helper authenticated the user but sent no 16-byte User-Session-Key \
         (is ntlm_auth from Samba 3.0.25 or newer?)"
    )]
    NoSessionKey,
}

/// Reads one answer, line by line (without the newline).
#[derive(Debug, Default, Clone)]
pub struct ReplyReader {
    authenticated: Option<String>,
    session_key: Option<String>,
    error: Option<String>,
    lines: usize,
}

impl ReplyReader {
    /// Takes one line; returns the verdict when the answer's closing `.` arrives.
    pub fn line(&mut self, line: &str) -> Result<Option<HelperVerdict>, HelperError> {
        if line.len() > MAX_LINE {
            return Err(HelperError::LineTooLong);
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "." {
            if self.lines == 0 {
                // The stray `.` Samba sends after a refusal.
                return Ok(None);
            }
            return self.verdict().map(Some);
        }
        self.lines += 1;
        if self.lines > MAX_LINES {
            return Err(HelperError::TooManyLines);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HelperError::BadLine(line.chars().take(80).collect()));
        };
        let value = match value.strip_prefix(':') {
            Some(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| HelperError::BadBase64(name.to_owned()))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            None => value.trim().to_owned(),
        };
        let slot = match name.trim() {
            n if n.eq_ignore_ascii_case("Authenticated") => &mut self.authenticated,
            n if n.eq_ignore_ascii_case("User-Session-Key") => &mut self.session_key,
            n if n.eq_ignore_ascii_case("Authentication-Error") => &mut self.error,
            _ => return Ok(None),
        };
        *slot = Some(value);
        Ok(None)
    }

    fn verdict(&mut self) -> Result<HelperVerdict, HelperError> {
        let this = std::mem::take(self);
        match this.authenticated.as_deref() {
            Some(yes) if yes.eq_ignore_ascii_case("yes") => {
                let key = this
                    .session_key
                    .as_deref()
                    .and_then(parse_key)
                    .ok_or(HelperError::NoSessionKey)?;
                Ok(HelperVerdict::Authenticated { session_key: key })
            }
            Some(no) if no.eq_ignore_ascii_case("no") => Ok(HelperVerdict::Refused(
                DcRefusal::from_message(this.error.as_deref().unwrap_or("")),
            )),
            _ => Err(HelperError::NoVerdict),
        }
    }
}

/// The NetBIOS and DNS names of a domain from `wbinfo --domain-info=NAME`'s output
/// (`Name : ADEXAMPLE` and `Alt_Name : ad.example.test` lines); `None` unless both are there
/// and are plain names (letters, digits, `-`, `.`, `_`).
pub fn parse_domain_info(text: &str) -> Option<(String, String)> {
    let field = |wanted: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            let plain = !value.is_empty()
                && value.len() <= 255
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            (name.trim() == wanted && plain).then(|| value.to_owned())
        })
    };
    Some((field("Name")?, field("Alt_Name")?))
}

fn parse_key(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Fuzz check: feeds `data`, split into lines, to a [`ReplyReader`] (nothing panics; an
/// `Authenticated` verdict always carries the key that was sent), and checks that a request
/// for any name is lines of `Parameter: value` ended by one `.`.
pub(crate) fn fuzz_check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut reader = ReplyReader::default();
    for line in text.split('\n') {
        match reader.line(line) {
            Ok(Some(HelperVerdict::Authenticated { session_key })) => {
                assert!(text.to_ascii_uppercase().contains(&hex(&session_key)));
            }
            Ok(_) => {}
            Err(_) => reader = ReplyReader::default(),
        }
    }
    if let Some((netbios, dns)) = parse_domain_info(&text) {
        for name in [netbios, dns] {
            assert!(!name.is_empty() && text.contains(&name));
            assert!(name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)));
        }
    }
    super::wbinfo::fuzz_check(&text);
    let (user, domain) = text.split_once('\\').unwrap_or((&text, ""));
    let request = encode_request(user, domain, [0; 8], data);
    let request = String::from_utf8(request).expect("requests are ASCII");
    let lines: Vec<&str> = request.lines().collect();
    assert_eq!(lines.last(), Some(&"."));
    assert_eq!(lines.iter().filter(|l| **l == ".").count(), 1);
    assert!(lines[..lines.len() - 1].iter().all(|l| l.contains(": ")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(lines: &[&str]) -> Vec<Result<HelperVerdict, HelperError>> {
        let mut reader = ReplyReader::default();
        lines
            .iter()
            .filter_map(|l| reader.line(l).transpose())
            .collect()
    }

    #[test]
    fn samba_4_17_answers_are_read() {
        // Captured from ntlm_auth 4.17 against the test domain: a success, then a refusal
        // with its stray second `.`, then a success on the same helper.
        let got = read(&[
            "Authenticated: Yes",
            "User-Session-Key: 447FC43E320218CAF79F312A929AD303",
            ".",
            "Authenticated: No",
            "Authentication-Error: When trying to update a password, this return status \
             indicates that the value provided as the current password is not correct.",
            ".",
            ".",
            "Authenticated: No",
            "Authentication-Error: The user account has been automatically locked because too \
             many invalid logon attempts or password change attempts have been requested.",
            ".",
            ".",
            "Authenticated: No",
            "Authentication-Error: The referenced account is currently disabled and cannot be \
             logged on to.",
            ".",
            ".",
            "Authenticated: No",
            "Authentication-Error: The specified account does not exist.",
            ".",
        ]);
        let key = [
            0x44, 0x7F, 0xC4, 0x3E, 0x32, 0x02, 0x18, 0xCA, 0xF7, 0x9F, 0x31, 0x2A, 0x92, 0x9A,
            0xD3, 0x03,
        ];
        assert_eq!(
            got[0],
            Ok(HelperVerdict::Authenticated { session_key: key })
        );
        let kinds: Vec<RefusalKind> = got[1..]
            .iter()
            .map(|v| match v {
                Ok(HelperVerdict::Refused(r)) => r.kind,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                RefusalKind::WrongPassword,
                RefusalKind::AccountLocked,
                RefusalKind::AccountDisabled,
                RefusalKind::NoSuchUser
            ]
        );
    }

    #[test]
    fn refusals_are_told_in_words() {
        let r = DcRefusal::from_message("NT_STATUS_ACCOUNT_LOCKED_OUT");
        assert!(
            r.to_string().starts_with("the account is locked out"),
            "{r}"
        );
        let r = DcRefusal::from_message("winbindd is not running");
        assert_eq!(r.kind, RefusalKind::Other);
        assert!(r.to_string().contains("winbindd is not running"));
    }

    #[test]
    fn bad_answers_are_errors() {
        assert_eq!(
            read(&["Authenticated: Yes", "."]),
            [Err(HelperError::NoSessionKey)]
        );
        assert_eq!(
            read(&["Authenticated: Yes", "User-Session-Key: 00", "."]),
            [Err(HelperError::NoSessionKey)]
        );
        assert_eq!(
            read(&["Hello", "."])[0],
            Err(HelperError::BadLine("Hello".into()))
        );
        assert_eq!(read(&["X: y", "."]), [Err(HelperError::NoVerdict)]);
        let long = "A".repeat(MAX_LINE + 1);
        assert_eq!(read(&[&long]), [Err(HelperError::LineTooLong)]);
        let many = vec!["X: y"; MAX_LINES + 1];
        assert_eq!(read(&many), [Err(HelperError::TooManyLines)]);
    }

    #[test]
    fn wbinfo_domain_info_is_read() {
        // `wbinfo --domain-info=ADEXAMPLE` on the test domain's DC (Samba 4.17).
        let text = "Name              : ADEXAMPLE\nAlt_Name          : ad.example.test\n\
                    SID               : S-1-5-21-304857732-3074021682-274288030\n\
                    Active Directory  : Yes\nNative            : No\nPrimary           : Yes\n";
        assert_eq!(
            parse_domain_info(text),
            Some(("ADEXAMPLE".into(), "ad.example.test".into()))
        );
        assert_eq!(parse_domain_info("Name : ADEXAMPLE\nAlt_Name : \n"), None);
        assert_eq!(parse_domain_info("Name : A B\nAlt_Name : x\n"), None);
    }

    #[test]
    fn names_are_sent_in_base64() {
        let request = encode_request("al\nice", "AD\nEXAMPLE", [0xAB; 8], &[1, 2]);
        let text = String::from_utf8(request).unwrap();
        assert_eq!(
            text,
            "Username:: YWwKaWNl\nNT-Domain:: QUQKRVhBTVBMRQ==\n\
             LANMAN-Challenge: ABABABABABABABAB\nNT-Response: 0102\n\
             Request-User-Session-Key: Yes\n.\n"
        );
    }

    #[test]
    fn the_fuzz_seeds_hold() {
        for seed in [
            &b"Authenticated: Yes\nUser-Session-Key: 447FC43E320218CAF79F312A929AD303\n.\n"[..],
            b"Authenticated: No\nAuthentication-Error:: bG9ja2Vk\n.\n.\n",
            b"ADEXAMPLE\\alice",
        ] {
            fuzz_check(seed);
        }
    }

    proptest! {
        #[test]
        fn any_lines_never_panic(lines in proptest::collection::vec(".{0,60}", 0..40)) {
            let mut reader = ReplyReader::default();
            for line in &lines {
                if reader.line(line).is_err() {
                    reader = ReplyReader::default();
                }
            }
        }

        #[test]
        fn a_session_key_round_trips(key in any::<[u8; 16]>(), stray in any::<bool>()) {
            let mut lines = Vec::new();
            if stray {
                lines.push(".".to_owned());
            }
            lines.push("Authenticated: Yes".to_owned());
            lines.push(format!("User-Session-Key: {}", hex(&key)));
            lines.push(".".to_owned());
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            prop_assert_eq!(read(&refs), vec![Ok(HelperVerdict::Authenticated { session_key: key })]);
        }

        #[test]
        fn requests_keep_their_lines(user in ".{0,40}", domain in ".{0,20}", resp in proptest::collection::vec(any::<u8>(), 0..64)) {
            let request = String::from_utf8(encode_request(&user, &domain, [7; 8], &resp)).unwrap();
            prop_assert_eq!(request.lines().count(), 6);
            prop_assert!(request.ends_with("\n.\n"));
        }
    }
}
