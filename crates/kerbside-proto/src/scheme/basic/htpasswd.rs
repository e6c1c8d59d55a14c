//! The `htpasswd` password file: one `user:hash` line per user, checked with bcrypt.
//!
//! Accepted hashes:
//!
//! - bcrypt, `$2y$`, `$2b$` or `$2a$` (what `htpasswd -B` writes), and
//! - `{SHA}` followed by the base64 of the password's SHA-1 (`htpasswd -s`): unsalted and
//!   fast to attack, read only so that old files keep working.
//!
//! Refused, with a message naming the line and `htpasswd -B`: Apache's MD5 (`$apr1$`, the
//! old default of `htpasswd`), `crypt()` hashes (DES and the `$1$`, `$5$`, `$6$` kinds)
//! and plain text. Lines starting with `#` and blank lines are skipped; a trailing CR is
//! dropped.
//!
//! [`Htpasswd::verify`] spends a bcrypt computation even for an unknown user, against a
//! dummy hash as costly as the costliest entry, so that the time it takes does not tell
//! which users exist. `Debug` never shows a hash.
//!
//! ```
//! use kerbside_proto::scheme::basic::htpasswd::{Htpasswd, Verdict};
//!
//! // Written by `htpasswd -bnB -C 5 alice 'correct horse'`.
//! let file = Htpasswd::parse(b"alice:$2y$05$0.YH9lbjf3bI2SNmki4eD.QICHuT4fe26GY2XHDgeI/THJ9dHECvi\n")?;
//! assert_eq!(file.verify("alice", "correct horse"), Verdict::Verified);
//! assert_eq!(file.verify("alice", "wrong"), Verdict::WrongPassword);
//! assert_eq!(file.verify("mallory", "correct horse"), Verdict::UnknownUser);
//! # Ok::<(), kerbside_proto::scheme::basic::htpasswd::HtpasswdError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

/// Salt and hash of the dummy bcrypt entry checked for unknown users (its password is
/// irrelevant: the result is thrown away).
const DUMMY_BCRYPT_TAIL: &str = "PdYRyozpnWkWmHCB6s8Oe.puaJjvw.LqROTDsKzQtxGQWKHNqmheW";

/// The bcrypt cost of the dummy when the file has no bcrypt entry (`htpasswd -B`'s default).
const DEFAULT_COST: u32 = 5;

/// What a password hash in the file is.
#[derive(Clone, PartialEq, Eq)]
enum PasswordHash {
    /// A bcrypt hash string, checked when parsed.
    Bcrypt(String),
    /// `{SHA}`: the SHA-1 of the password.
    Sha1([u8; 20]),
}

/// One line of an `htpasswd` file. `Debug` shows the user and the kind of hash only.
#[derive(Clone, PartialEq, Eq)]
pub struct HtpasswdEntry {
    /// The user name.
    pub user: String,
    hash: PasswordHash,
}

impl HtpasswdEntry {
    /// `bcrypt` or `{SHA}`.
    pub fn hash_kind(&self) -> &'static str {
        match self.hash {
            PasswordHash::Bcrypt(_) => "bcrypt",
            PasswordHash::Sha1(_) => "{SHA}",
        }
    }

    fn check(&self, password: &str) -> bool {
        match &self.hash {
            PasswordHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            PasswordHash::Sha1(digest) => {
                let given: [u8; 20] = Sha1::digest(password.as_bytes()).into();
                bool::from(given.ct_eq(digest))
            }
        }
    }
}

impl fmt::Debug for HtpasswdEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtpasswdEntry")
            .field("user", &self.user)
            .field("hash", &format_args!("<redacted {}>", self.hash_kind()))
            .finish()
    }
}

/// A parsed `htpasswd` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Htpasswd {
    entries: Vec<HtpasswdEntry>,
    /// A bcrypt hash with the highest cost in the file, for unknown users.
    dummy: String,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`Htpasswd::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right.
    Verified,
    /// The user exists and the password is wrong.
    WrongPassword,
    /// No such user (a bcrypt computation was spent all the same).
    UnknownUser,
}

/// A line of an `htpasswd` file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("htpasswd line {line}: {kind}")]
pub struct HtpasswdError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub kind: HtpasswdErrorKind,
}

/// What is wrong with a line of an `htpasswd` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtpasswdErrorKind {
    /// The line is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The line has no `:` between user and hash.
    #[error("expected user:hash, found no ':'")]
    NoColon,
    /// The user field is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// A hash kind that is refused; the message says which and what to do.
    #[error(
        "user {user:?} has {kind}, which kerbside does not accept; \
         set the password again with `htpasswd -B` (bcrypt)"
    )]
    Unsupported {
        /// The user.
        user: String,
        /// What the hash looks like: "an Apache MD5 ($apr1$) hash", ….
        kind: &'static str,
    },
    /// A bcrypt hash that is not well formed (cost, salt or length).
    #[error("user {0:?} has a malformed bcrypt hash")]
    InvalidBcrypt(String),
    /// A `{SHA}` hash that is not the base64 of 20 bytes.
    #[error("user {0:?} has a malformed {{SHA}} hash")]
    InvalidSha1(String),
    /// The same user appears twice.
    #[error("a second entry for user {user:?} (the first is on line {first_line})")]
    Duplicate {
        /// The user.
        user: String,
        /// The line of the first entry.
        first_line: usize,
    },
}

fn classify(user: &str, hash: &str) -> Result<PasswordHash, HtpasswdErrorKind> {
    let unsupported = |kind| HtpasswdErrorKind::Unsupported {
        user: user.to_owned(),
        kind,
    };
    if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
        return match bcrypt::HashParts::from_str(hash) {
            Ok(parts) if hash.len() == 60 && (4..=31).contains(&parts.get_cost()) => {
                Ok(PasswordHash::Bcrypt(hash.to_owned()))
            }
            _ => Err(HtpasswdErrorKind::InvalidBcrypt(user.to_owned())),
        };
    }
    if let Some(b64) = hash.strip_prefix("{SHA}") {
        return STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
            .map(PasswordHash::Sha1)
            .ok_or_else(|| HtpasswdErrorKind::InvalidSha1(user.to_owned()));
    }
    Err(if hash.starts_with("$apr1$") {
        unsupported("an Apache MD5 ($apr1$) hash")
    } else if hash.starts_with("$1$") || hash.starts_with("$5$") || hash.starts_with("$6$") {
        unsupported("a crypt() MD5 or SHA-2 hash")
    } else if hash.len() == 13 {
        unsupported("what looks like a crypt() DES hash")
    } else {
        unsupported("a hash of unknown kind (or a plain-text password)")
    })
}

impl Htpasswd {
    /// Parses the file's bytes.
    pub fn parse(text: &[u8]) -> Result<Htpasswd, HtpasswdError> {
        let mut entries: Vec<HtpasswdEntry> = Vec::new();
        let mut first_lines: HashMap<String, usize> = HashMap::new();
        for (index, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = index + 1;
            let error = |kind| HtpasswdError { line, kind };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw).map_err(|_| error(HtpasswdErrorKind::NotUtf8))?;
            let trimmed = text.trim_matches([' ', '\t']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (user, hash) = text
                .split_once(':')
                .ok_or_else(|| error(HtpasswdErrorKind::NoColon))?;
            if user.is_empty() {
                return Err(error(HtpasswdErrorKind::EmptyUser));
            }
            let hash = classify(user, hash).map_err(error)?;
            if let Some(&first_line) = first_lines.get(user) {
                return Err(error(HtpasswdErrorKind::Duplicate {
                    user: user.to_owned(),
                    first_line,
                }));
            }
            first_lines.insert(user.to_owned(), line);
            entries.push(HtpasswdEntry {
                user: user.to_owned(),
                hash,
            });
        }
        let cost = entries
            .iter()
            .filter_map(|e| match &e.hash {
                PasswordHash::Bcrypt(h) => {
                    bcrypt::HashParts::from_str(h).ok().map(|p| p.get_cost())
                }
                PasswordHash::Sha1(_) => None,
            })
            .max()
            .unwrap_or(DEFAULT_COST);
        Ok(Htpasswd {
            entries,
            dummy: format!("$2y${cost:02}${DUMMY_BCRYPT_TAIL}"),
        })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[HtpasswdEntry] {
        &self.entries
    }

    /// Whether `user` is in the file.
    pub fn contains(&self, user: &str) -> bool {
        self.entries.iter().any(|e| e.user == user)
    }

    /// Checks a user's password. Takes about as long for an unknown user as for a known
    /// one with the costliest hash in the file. bcrypt reads only the first 72 bytes of a
    /// password, as Apache does.
    pub fn verify(&self, user: &str, password: &str) -> Verdict {
        match self.entries.iter().find(|e| e.user == user) {
            Some(entry) if entry.check(password) => Verdict::Verified,
            Some(_) => Verdict::WrongPassword,
            None => {
                let _ = bcrypt::verify(password, &self.dummy);
                Verdict::UnknownUser
            }
        }
    }
}

/// The `htpasswd` fuzz target: parsing never panics, every entry is found, and `{SHA}`
/// entries (cheap, unlike bcrypt with an arbitrary cost) can be checked.
pub(crate) fn fuzz_check(data: &[u8]) {
    if let Ok(file) = Htpasswd::parse(data) {
        for entry in file.entries() {
            assert!(file.contains(&entry.user));
            if let PasswordHash::Sha1(_) = entry.hash {
                let _ = file.verify(&entry.user, "password");
            }
        }
        let _ = format!("{file:?}");
    }
}
