//! The `htdigest` password file: one `user:realm:HA1` line per user and realm.
//!
//! Apache's `htdigest` tool writes the HA1 as 32 hex digits of MD5
//! (`MD5(user:realm:password)`); lighttpd also accepts 64 hex digits of SHA-256 of the same
//! string, and so does this parser. The length says which: an MD5 line answers only `MD5`
//! and `MD5-sess` challenges, a SHA-256 line only `SHA-256` and `SHA-256-sess`. A user may
//! have one line of each. SHA-512-256 HA1s cannot be told apart from SHA-256 ones by their
//! length, so this file does not hold them (a [`DigestUsers`] closure can).
//!
//! Lines starting with `#` (after optional blanks) and blank lines are skipped; a trailing
//! CR is dropped. Any other line that is not `user:realm:HA1` is an error naming its line,
//! as is a second line for the same user, realm and hash.
//!
//! ```
//! use kerbside_proto::scheme::digest::htdigest::{format_line, Htdigest};
//! use kerbside_proto::scheme::digest::HashFunction;
//!
//! let line = format_line("Mufasa", "testrealm@host.com", "Circle Of Life", HashFunction::Md5)?;
//! assert_eq!(line, "Mufasa:testrealm@host.com:939e7578ed9e3c518a452acee763bce9");
//! let file = Htdigest::parse(format!("# users\n{line}\n").as_bytes())?;
//! assert!(file.lookup("Mufasa", "testrealm@host.com", HashFunction::Md5).is_some());
//! assert!(file.lookup("Mufasa", "testrealm@host.com", HashFunction::Sha256).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use super::server::DigestUsers;
use super::{userhash, Ha1, HashFunction};

/// One line of an `htdigest` file. `Debug` does not show the HA1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtdigestEntry {
    /// The username.
    pub user: String,
    /// The realm.
    pub realm: String,
    /// `H(user:realm:password)`.
    pub ha1: Ha1,
}

/// A parsed `htdigest` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Htdigest {
    entries: Vec<HtdigestEntry>,
    /// (hash, realm, userhash) → index into `entries`.
    by_userhash: HashMap<(HashFunction, String, String), usize>,
}

/// A line of an `htdigest` file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("htdigest line {line}: {kind}")]
pub struct HtdigestError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub kind: HtdigestErrorKind,
}

/// What is wrong with a line of an `htdigest` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtdigestErrorKind {
    /// The line is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The line does not have exactly three `:`-separated fields.
    #[error("expected user:realm:hash, found {0} field(s)")]
    FieldCount(usize),
    /// The user field is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// The hash is neither 32 nor 64 hex digits.
    #[error(
        "the hash is {0} characters long; expected 32 hex digits (MD5, as htdigest writes) \
         or 64 (SHA-256)"
    )]
    HashLength(usize),
    /// The hash has a character that is not a hex digit.
    #[error("the hash is not hexadecimal")]
    NotHex,
    /// The same user, realm and hash function appear twice.
    #[error("a second {hash} entry for user {user:?} in realm {realm:?} (the first is on line {first_line})")]
    Duplicate {
        /// The user.
        user: String,
        /// The realm.
        realm: String,
        /// The hash function.
        hash: HashFunction,
        /// The line of the first entry.
        first_line: usize,
    },
}

/// Why [`format_line`] cannot write a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtdigestFormatError {
    /// The user or realm is empty (user) or holds `:` or a control character.
    #[error(
        "the {0} cannot go into an htdigest line: it is empty or holds ':' or a control character"
    )]
    InvalidField(&'static str),
    /// SHA-512-256 HA1s cannot be stored: they would be read back as SHA-256.
    #[error("htdigest files hold MD5 or SHA-256 HA1s, not {0}")]
    UnsupportedHash(HashFunction),
}

/// The line `user:realm:HA1` (without a newline) for a password, as Apache's `htdigest`
/// writes it for MD5, or lighttpd's SHA-256 variant.
pub fn format_line(
    user: &str,
    realm: &str,
    password: &str,
    hash: HashFunction,
) -> Result<String, HtdigestFormatError> {
    let bad = |s: &str| s.contains(|c: char| c == ':' || c.is_control());
    if user.is_empty() || bad(user) {
        return Err(HtdigestFormatError::InvalidField("user name"));
    }
    if bad(realm) {
        return Err(HtdigestFormatError::InvalidField("realm"));
    }
    if hash == HashFunction::Sha512_256 {
        return Err(HtdigestFormatError::UnsupportedHash(hash));
    }
    let ha1 = Ha1::compute(hash, user, realm, password);
    Ok(format!("{user}:{realm}:{}", ha1.to_hex()))
}

impl Htdigest {
    /// Parses the file's bytes.
    pub fn parse(text: &[u8]) -> Result<Htdigest, HtdigestError> {
        let mut file = Htdigest::default();
        let mut first_lines: HashMap<(String, String, HashFunction), usize> = HashMap::new();
        for (index, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = index + 1;
            let error = |kind| HtdigestError { line, kind };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw).map_err(|_| error(HtdigestErrorKind::NotUtf8))?;
            let trimmed = text.trim_start_matches([' ', '\t']);
            if trimmed.trim_end_matches([' ', '\t']).is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = text.split(':').collect();
            let [user, realm, hex] = fields[..] else {
                return Err(error(HtdigestErrorKind::FieldCount(fields.len())));
            };
            if user.is_empty() {
                return Err(error(HtdigestErrorKind::EmptyUser));
            }
            let hash = match hex.len() {
                32 => HashFunction::Md5,
                64 => HashFunction::Sha256,
                n => return Err(error(HtdigestErrorKind::HashLength(n))),
            };
            let ha1 = Ha1::from_hex(hash, hex).ok_or_else(|| error(HtdigestErrorKind::NotHex))?;
            let key = (user.to_owned(), realm.to_owned(), hash);
            if let Some(&first_line) = first_lines.get(&key) {
                return Err(error(HtdigestErrorKind::Duplicate {
                    user: user.to_owned(),
                    realm: realm.to_owned(),
                    hash,
                    first_line,
                }));
            }
            first_lines.insert(key, line);
            file.push(HtdigestEntry {
                user: user.to_owned(),
                realm: realm.to_owned(),
                ha1,
            });
        }
        Ok(file)
    }

    fn push(&mut self, entry: HtdigestEntry) {
        let hash = entry.ha1.hash();
        let key = (
            hash,
            entry.realm.clone(),
            userhash(hash, &entry.user, &entry.realm),
        );
        self.by_userhash.insert(key, self.entries.len());
        self.entries.push(entry);
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[HtdigestEntry] {
        &self.entries
    }

    /// The entry for this user, realm and hash function.
    pub fn lookup(&self, user: &str, realm: &str, hash: HashFunction) -> Option<&HtdigestEntry> {
        self.entries
            .iter()
            .find(|e| e.user == user && e.realm == realm && e.ha1.hash() == hash)
    }

    /// The file's text, one line per entry, each ending in a newline (comments are not
    /// kept).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&format!("{}:{}:{}\n", e.user, e.realm, e.ha1.to_hex()));
        }
        out
    }
}

impl DigestUsers for Htdigest {
    fn ha1(&self, user: &str, realm: &str, hash: HashFunction) -> Option<Ha1> {
        self.lookup(user, realm, hash).map(|e| e.ha1.clone())
    }

    fn user_for_hash(&self, userhash: &str, realm: &str, hash: HashFunction) -> Option<String> {
        let key = (hash, realm.to_owned(), userhash.to_ascii_lowercase());
        self.by_userhash
            .get(&key)
            .and_then(|&i| self.entries.get(i))
            .map(|e| e.user.clone())
    }
}

/// The `htdigest` fuzz target: what parses formats back to the same file, and every entry
/// is found by name and by userhash.
pub(crate) fn fuzz_check(data: &[u8]) {
    if let Ok(file) = Htdigest::parse(data) {
        let text = file.to_text();
        assert_eq!(
            Htdigest::parse(text.as_bytes()).as_ref(),
            Ok(&file),
            "{text:?}"
        );
        for entry in file.entries() {
            let hash = entry.ha1.hash();
            let found = file.lookup(&entry.user, &entry.realm, hash);
            assert_eq!(found, Some(entry));
            let hashed = userhash(hash, &entry.user, &entry.realm);
            assert_eq!(
                file.user_for_hash(&hashed, &entry.realm, hash).as_deref(),
                Some(entry.user.as_str())
            );
        }
    }
}
