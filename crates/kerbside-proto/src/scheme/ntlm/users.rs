//! The gate's NTLM users file: one user per line with the NT hash of their password.
//!
//! ```text
//! # comments and blank lines are ignored
//! alice:8846F7EAEE8FB117AD06BDD830B7586C
//! EXAMPLE\bob:A4F49C406510BDCAB6824EE7C30FD852
//! ```
//!
//! A line is `user:HASH` or `DOMAIN\user:HASH`, the hash being 32 hex digits (NTOWFv1, MD4 of
//! the UTF-16LE password; see [`crypto::nt_hash`](super::crypto::nt_hash)). The name is
//! everything before the last `:`, with surrounding blanks removed.
//!
//! [`NtlmUsers::lookup`] compares user and domain names case-insensitively: an entry with a
//! domain matches only that domain; an entry without one matches any domain (a domain-qualified
//! entry wins). Sans-IO: the caller reads the file and checks its permissions.
//!
//! ```
//! use kerbside_proto::scheme::ntlm::users::NtlmUsers;
//!
//! let users = NtlmUsers::parse("EXAMPLE\\Bob:a4f49c406510bdcab6824ee7c30fd852\n")?;
//! assert!(users.lookup("bob", "example").is_some());
//! assert!(users.lookup("bob", "OTHER").is_none());
//! # Ok::<(), kerbside_proto::scheme::ntlm::users::UsersError>(())
//! ```

use std::fmt;

/// Why a users file (or a line to write into one) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// A line has no `:` between name and hash.
    #[error("line {line}: expected `user:NTHASH` or `DOMAIN\\user:NTHASH`")]
    MissingColon {
        /// The 1-based line number.
        line: usize,
    },
    /// The name before the `:` is empty (or the domain or user part of it is).
    #[error("line {line}: the user name is empty")]
    EmptyName {
        /// The 1-based line number.
        line: usize,
    },
    /// The name contains a control character.
    #[error("line {line}: the user name contains a control character")]
    ControlCharacter {
        /// The 1-based line number.
        line: usize,
    },
    /// The hash is not 32 hexadecimal digits.
    #[error("line {line}: the NT hash must be 32 hexadecimal digits")]
    BadHash {
        /// The 1-based line number.
        line: usize,
    },
    /// The same user (and domain) appears twice.
    #[error("line {line}: {name} is already listed on line {first}")]
    Duplicate {
        /// The 1-based line number of the repeat.
        line: usize,
        /// The line it first appeared on.
        first: usize,
        /// The name, as written on the repeat.
        name: String,
    },
    /// A name cannot be written on one line (it has a control character or starts with `#`,
    /// or has blanks around it).
    #[error("the user name {0:?} cannot be written in a users file")]
    Unrepresentable(String),
}

/// One entry of the users file.
#[derive(Clone, PartialEq, Eq)]
pub struct NtlmUser {
    /// The domain, for a `DOMAIN\user` entry.
    pub domain: Option<String>,
    /// The user name.
    pub user: String,
    /// The NT hash.
    pub nt_hash: [u8; 16],
    /// The 1-based line it came from.
    pub line: usize,
}

impl fmt::Debug for NtlmUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmUser")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("nt_hash", &"<redacted>")
            .field("line", &self.line)
            .finish()
    }
}

impl NtlmUser {
    /// The name as written in the file: `DOMAIN\user` or `user`.
    pub fn name(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}\\{}", self.user),
            None => self.user.clone(),
        }
    }
}

/// A parsed users file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NtlmUsers {
    entries: Vec<NtlmUser>,
}

impl NtlmUsers {
    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let mut entries: Vec<NtlmUser> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (name, hash) = trimmed
                .rsplit_once(':')
                .ok_or(UsersError::MissingColon { line })?;
            let nt_hash = parse_hash(hash.trim()).ok_or(UsersError::BadHash { line })?;
            let name = name.trim();
            if name.chars().any(char::is_control) {
                return Err(UsersError::ControlCharacter { line });
            }
            let (domain, user) = match name.split_once('\\') {
                Some((d, u)) => (Some(d.trim().to_owned()), u.trim().to_owned()),
                None => (None, name.to_owned()),
            };
            if user.is_empty() || domain.as_deref() == Some("") {
                return Err(UsersError::EmptyName { line });
            }
            let entry = NtlmUser {
                domain,
                user,
                nt_hash,
                line,
            };
            if let Some(first) = entries.iter().find(|e| same_name(e, &entry)) {
                return Err(UsersError::Duplicate {
                    line,
                    first: first.line,
                    name: entry.name(),
                });
            }
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[NtlmUser] {
        &self.entries
    }

    /// The NT hash for a user as a client named it; see [`find`](Self::find).
    pub fn lookup(&self, user: &str, domain: &str) -> Option<[u8; 16]> {
        self.find(user, domain).map(|e| e.nt_hash)
    }

    /// The entry for a user as a client named it: a `DOMAIN\user` entry for that domain if
    /// there is one, else a bare `user` entry (which matches whatever domain the client
    /// sent). Names compare case-insensitively, as NTLM does (NTOWFv2 upper-cases the user
    /// name). The entry's [`name`](NtlmUser::name) is how the user is then called, whatever
    /// the client typed: `ALICE` and `OTHER\alice` are both the file's `alice`.
    pub fn find(&self, user: &str, domain: &str) -> Option<&NtlmUser> {
        let user_matches = |e: &&NtlmUser| eq_ci(&e.user, user);
        self.entries
            .iter()
            .filter(user_matches)
            .find(|e| e.domain.as_deref().is_some_and(|d| eq_ci(d, domain)))
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(user_matches)
                    .find(|e| e.domain.is_none())
            })
    }
}

/// Formats one line of a users file (without the newline) for `user` (`alice` or
/// `EXAMPLE\alice`) and an NT hash, in upper-case hex.
pub fn format_line(user: &str, nt_hash: &[u8; 16]) -> Result<String, UsersError> {
    let (domain, name) = match user.split_once('\\') {
        Some((d, u)) => (Some(d), u),
        None => (None, user),
    };
    let bad = user.chars().any(char::is_control)
        || user.starts_with('#')
        || name.is_empty()
        || domain == Some("")
        || domain.is_some_and(|d| d.trim() != d)
        || name.trim() != name
        || user.trim() != user;
    if bad {
        return Err(UsersError::Unrepresentable(user.to_owned()));
    }
    let hex: String = nt_hash.iter().map(|b| format!("{b:02X}")).collect();
    Ok(format!("{user}:{hex}"))
}

fn parse_hash(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn eq_ci(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn same_name(a: &NtlmUser, b: &NtlmUser) -> bool {
    eq_ci(&a.user, &b.user)
        && match (&a.domain, &b.domain) {
            (Some(x), Some(y)) => eq_ci(x, y),
            (None, None) => true,
            _ => false,
        }
}

/// Fuzz check: parses `data`; what parses must format back to text that parses to the same
/// entries, and every entry must be found by [`NtlmUsers::lookup`].
pub(crate) fn fuzz_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(users) = NtlmUsers::parse(text) else {
        return;
    };
    let mut out = String::new();
    for e in users.entries() {
        let line = format_line(&e.name(), &e.nt_hash)
            .unwrap_or_else(|err| panic!("{e:?} parsed but does not format: {err}"));
        out.push_str(&line);
        out.push('\n');
        let found = users.lookup(&e.user, e.domain.as_deref().unwrap_or(""));
        assert!(found.is_some(), "{e:?} not found");
    }
    let reparsed = NtlmUsers::parse(&out).unwrap_or_else(|err| panic!("{out:?}: {err}"));
    assert_eq!(reparsed.entries.len(), users.entries.len());
    for (a, b) in reparsed.entries.iter().zip(&users.entries) {
        assert_eq!(
            (&a.domain, &a.user, a.nt_hash),
            (&b.domain, &b.user, b.nt_hash)
        );
    }
}
