//! The keyring file: user names and passwords per host or per Kerberos realm, for the
//! schemes that need a password (NTLM, Digest, Basic) and for getting a Kerberos ticket
//! with a password (Negotiate).
//!
//! The file is TOML, private to its owner (`chmod 600`), by default at
//! `~/.config/kerbside/keyring.toml` (see [`Keyring::default_path`]):
//!
//! ```toml
//! [[credential]]
//! host = "intranet.example.com"   # this host only
//! user = 'EXAMPLE\alice'
//! password = "correct horse"
//! schemes = ["ntlm", "basic"]     # optional; all four when left out
//!
//! [[credential]]
//! host = "*.example.com"          # every host below example.com, not example.com itself
//! user = "alice@EXAMPLE.COM"
//! password = "battery staple"
//!
//! [[credential]]
//! realm = "EXAMPLE.COM"           # any host whose Kerberos realm is EXAMPLE.COM
//! user = "alice@EXAMPLE.COM"
//! password = "battery staple"
//! schemes = ["negotiate"]
//!
//! [[credential]]
//! host = "proxy.example.com"
//! user = 'EXAMPLE\alice'
//! nt_hash = "8846F7EAEE8FB117AD06BDD830B7586C"  # instead of a password: NTLM only
//!
//! [[credential]]
//! host = "proxy2.example.com"
//! user = 'EXAMPLE\alice'                     # exactly the user and domain it was made for
//! ntlmv2_hash = "512C91B5C22F94BF5D813ADAF60CD7AD"  # NTOWFv2: NTLMv2 only, this user only
//! ```
//!
//! An `nt_hash` (the MD4 of the UTF-16LE password in hex, as `kerbside nt-hash` prints it,
//! cntlm's `PassNT`) stands for the password where NTLM (v2) is all that is needed; Basic,
//! Digest and a Kerberos password need the password itself, and a credential holding only
//! its hash is refused for them with a message that says so. An `ntlmv2_hash` (NTOWFv2,
//! cntlm's `PassNTLMv2`, as `kerbside nt-hash 'DOMAIN\user'` prints it) is the same, and is
//! bound besides to the user and domain it was made for: `user` must be `DOMAIN\user`,
//! and the client sends the domain in capitals, as cntlm made the hash with it.
//!
//! [`Keyring::lookup`] prefers an exact host over a wildcard over a realm; see there.
//! [`CredentialSources`] puts the keyring between the command line and `~/.netrc`.
//!
//! Neither [`Keyring`], [`KeyringCredential`] nor any [`KeyringError`] shows a password:
//! `Debug` output says `<redacted>`, and a parse error names the line and the problem
//! without quoting the file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use kerbside_proto::netrc::{Netrc, NetrcError};
use kerbside_proto::SchemeKind;
use serde::Deserialize;

mod sources;

pub use sources::{CredentialSource, CredentialSources, FoundCredential, Secret};

/// The largest keyring or netrc file [`Keyring::load`] and [`load_netrc`] read.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Credentials read from a keyring file. Its `Debug` output never shows a password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
}

/// A credential and what it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyringEntry {
    target: Target,
    credential: KeyringCredential,
}

/// What a credential applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// One host, lower-cased, without a trailing dot.
    Host(String),
    /// Every host that ends with this suffix, which starts with a dot (`*.example.com` is
    /// stored as `.example.com`), lower-cased.
    Wildcard(String),
    /// Every host in this Kerberos realm (compared ASCII case-insensitively).
    Realm(String),
}

/// A user name and password (or the password's NT hash), and the schemes they may be
/// used with.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyringCredential {
    /// The user name as written: `alice`, `EXAMPLE\alice` or `alice@EXAMPLE.COM`.
    pub user: String,
    /// The password, or its NT hash.
    pub secret: KeyringSecret,
    /// The schemes this credential may answer, strongest first, without duplicates.
    pub schemes: Vec<SchemeKind>,
}

/// What a keyring credential holds. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyringSecret {
    /// The password itself (`password = "..."`): answers every scheme.
    Password(String),
    /// The NT hash of the password (`nt_hash = "32 hex digits"`, cntlm's `PassNT`):
    /// answers NTLM only.
    NtHash([u8; 16]),
    /// NTOWFv2 of the password for this credential's user and domain (`ntlmv2_hash = "32
    /// hex digits"`, cntlm's `PassNTLMv2`): answers NTLM (v2) only, as that user only.
    Ntlmv2Hash([u8; 16]),
}

impl fmt::Debug for KeyringSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => Redacted.fmt(f),
            Self::NtHash(_) => f.debug_tuple("NtHash").field(&Redacted).finish(),
            Self::Ntlmv2Hash(_) => f.debug_tuple("Ntlmv2Hash").field(&Redacted).finish(),
        }
    }
}

impl fmt::Debug for KeyringCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringCredential")
            .field("user", &self.user)
            .field("password", &self.secret)
            .field("schemes", &self.schemes)
            .finish()
    }
}

impl KeyringCredential {
    fn found(&self, source: CredentialSource) -> FoundCredential<'_> {
        FoundCredential {
            user: &self.user,
            secret: match &self.secret {
                KeyringSecret::Password(p) => Secret::Password(p),
                KeyringSecret::NtHash(h) => Secret::NtHash(h),
                KeyringSecret::Ntlmv2Hash(h) => Secret::Ntlmv2Hash(h),
            },
            source,
        }
    }
}

/// Reads an NT hash written as 32 hexadecimal digits (either case).
pub fn parse_nt_hash(text: &str) -> Option<[u8; 16]> {
    let text = text.trim();
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a keyring (or netrc) file cannot be used. No message quotes the file's contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The file could not be opened or read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's permissions let other users read or change it (unix: `mode & 0o077 != 0`),
    /// so its passwords may already be known to them; it is refused until fixed.
    #[error(
        "`{path}` is readable or writable by other users (mode {mode:03o}); \
         run `chmod 600 {path}` (and change any password it holds that others may have seen)",
        path = path.display()
    )]
    ReadableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("`{}` is larger than {limit} bytes; is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The text is not TOML, or not TOML of the keyring's shape (an unknown key, a missing
    /// `user` or `password`, a value of the wrong type).
    #[error("{}: {detail}", describe(path.as_deref()))]
    Parse {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// What is wrong and where (`line 4, column 1: unknown field ...`).
        detail: String,
    },
    /// A `[[credential]]` table is well-formed TOML but cannot be used: it names both or
    /// neither of `host` and `realm`, its host is a URL or a misplaced wildcard, its user
    /// name is empty, or it lists an unknown scheme.
    #[error("{}: credential {index}: {detail}", describe(path.as_deref()))]
    Invalid {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The credential's position in the file, from 1.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A netrc file did not parse.
    #[error("`{}`: {source}", path.display())]
    Netrc {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: NetrcError,
    },
}

/// Names where a keyring text came from, for an error message.
fn describe(path: Option<&Path>) -> String {
    match path {
        Some(path) => format!("`{}`", path.display()),
        None => "keyring".to_owned(),
    }
}

/// The file's shape, as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyring {
    #[serde(default)]
    credential: Vec<RawCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    host: Option<String>,
    realm: Option<String>,
    user: String,
    /// Read as any value and checked by hand, so that a password of the wrong type (a bare
    /// number) is not quoted by serde's "invalid type" message.
    password: Option<toml::Value>,
    /// The password's NT hash instead of the password (NTLM only); checked by hand too.
    nt_hash: Option<toml::Value>,
    /// NTOWFv2 of the password for this user and domain (NTLMv2 only); checked by hand too.
    ntlmv2_hash: Option<toml::Value>,
    schemes: Option<Vec<String>>,
}

impl Keyring {
    /// Parses a keyring's text; reads no file.
    ///
    /// ```
    /// use kerbside_client::keyring::Keyring;
    /// use kerbside_proto::SchemeKind;
    ///
    /// let keyring = Keyring::parse(r#"
    ///     [[credential]]
    ///     host = "*.example.com"
    ///     user = 'EXAMPLE\alice'
    ///     password = "correct horse"
    ///     schemes = ["ntlm"]
    /// "#)?;
    /// let found = keyring.lookup("intranet.example.com", None, SchemeKind::Ntlm).unwrap();
    /// assert_eq!(found.user, r"EXAMPLE\alice");
    /// assert!(keyring.lookup("intranet.example.com", None, SchemeKind::Basic).is_none());
    /// assert!(!format!("{keyring:?}").contains("horse"));
    /// # Ok::<(), kerbside_client::keyring::KeyringError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        parse_keyring(text, None)
    }

    /// Reads and parses the keyring file at `path`.
    ///
    /// On unix the file must be private to its owner: a file that group or others may read
    /// or write is refused with [`KeyringError::ReadableByOthers`], whose message says to
    /// run `chmod 600`. A file larger than [`MAX_FILE_SIZE`] is refused too.
    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        let bytes = read_private_file(path)?;
        let text = String::from_utf8(bytes).map_err(|_| KeyringError::Parse {
            path: Some(path.to_owned()),
            detail: "the file is not UTF-8".to_owned(),
        })?;
        parse_keyring(&text, Some(path))
    }

    /// Where the keyring is: `$KERBSIDE_KEYRING` if set, else
    /// `$XDG_CONFIG_HOME/kerbside/keyring.toml`, else `~/.config/kerbside/keyring.toml`
    /// (`None` if there is no home directory either). The file need not exist.
    pub fn default_path() -> Option<PathBuf> {
        default_keyring_path(&|name| std::env::var_os(name)).map(|(path, _)| path)
    }

    /// The credential for `host` (a bare host name: no scheme, port or path) that may
    /// answer `scheme`, if any. Only credentials that list `scheme` are considered; among
    /// them:
    ///
    /// 1. the first whose `host` is `host` (ASCII case-insensitively, ignoring a trailing dot);
    /// 2. else the wildcard `host = "*.suffix"` with the longest suffix that `host` ends with
    ///    (`*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`),
    ///    the first in the file if several are as long;
    /// 3. else, if `realm` (the Kerberos realm of the host's service principal, when the
    ///    caller knows it) is given, the first whose `realm` is `realm`, ASCII
    ///    case-insensitively.
    pub fn lookup(
        &self,
        host: &str,
        realm: Option<&str>,
        scheme: SchemeKind,
    ) -> Option<&KeyringCredential> {
        let host = normalize_host(host);
        let usable = || {
            self.entries
                .iter()
                .filter(move |entry| entry.credential.schemes.contains(&scheme))
        };
        let exact =
            || usable().find(|entry| matches!(&entry.target, Target::Host(h) if *h == host));
        let wildcard = || {
            let mut best: Option<(usize, &KeyringEntry)> = None;
            for entry in usable() {
                if let Target::Wildcard(suffix) = &entry.target {
                    let matches = host.len() > suffix.len() && host.ends_with(suffix.as_str());
                    if matches && best.is_none_or(|(len, _)| suffix.len() > len) {
                        best = Some((suffix.len(), entry));
                    }
                }
            }
            best.map(|(_, entry)| entry)
        };
        let by_realm = || {
            let realm = realm?;
            usable().find(
                |entry| matches!(&entry.target, Target::Realm(r) if r.eq_ignore_ascii_case(realm)),
            )
        };
        exact()
            .or_else(wildcard)
            .or_else(by_realm)
            .map(|entry| &entry.credential)
    }

    /// How many credentials the keyring holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the keyring holds no credential.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Lower-cases `host` and drops one trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

fn parse_keyring(text: &str, path: Option<&Path>) -> Result<Keyring, KeyringError> {
    let raw: RawKeyring = toml::from_str(text).map_err(|error| KeyringError::Parse {
        path: path.map(Path::to_owned),
        detail: toml_error_detail(text, &error),
    })?;
    let entries = raw
        .credential
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            credential(raw).map_err(|detail| KeyringError::Invalid {
                path: path.map(Path::to_owned),
                index: i + 1,
                detail,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Keyring { entries })
}

/// The message of a TOML error with its line and column, without the snippet of the file
/// that `toml`'s `Display` shows (it could hold a password).
fn toml_error_detail(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Checks one `[[credential]]` table.
fn credential(raw: RawCredential) -> Result<KeyringEntry, String> {
    let target = match (raw.host, raw.realm) {
        (Some(host), None) => host_target(&host)?,
        (None, Some(realm)) => {
            if realm.is_empty() || realm.chars().any(|c| c.is_whitespace() || c == '@') {
                return Err("`realm` must be a Kerberos realm such as `EXAMPLE.COM`".to_owned());
            }
            Target::Realm(realm)
        }
        (Some(_), Some(_)) => {
            return Err(
                "both `host` and `realm`; write one credential for each if both are meant"
                    .to_owned(),
            )
        }
        (None, None) => return Err("needs a `host` or a `realm`".to_owned()),
    };
    if raw.user.is_empty() {
        return Err("`user` is empty".to_owned());
    }
    let secret = secret(raw.password, raw.nt_hash, raw.ntlmv2_hash, &raw.user)?;
    let raw_schemes_given = raw.schemes.is_some();
    let schemes = match raw.schemes {
        None => SchemeKind::ALL.to_vec(),
        Some(names) => {
            let mut schemes = names
                .iter()
                .map(|name| {
                    SchemeKind::ALL
                        .into_iter()
                        .find(|kind| kind.name().eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            format!(
                                "unknown scheme `{name}` in `schemes`; \
                                 expected \"negotiate\", \"ntlm\", \"digest\" or \"basic\""
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if schemes.is_empty() {
                return Err(
                    "`schemes` is empty, so it would never be used; leave it out to allow all"
                        .to_owned(),
                );
            }
            schemes.sort();
            schemes.dedup();
            schemes
        }
    };
    let hash_key = match secret {
        KeyringSecret::Password(_) => None,
        KeyringSecret::NtHash(_) => Some("an `nt_hash`"),
        KeyringSecret::Ntlmv2Hash(_) => Some("an `ntlmv2_hash`"),
    };
    if let Some(key) =
        hash_key.filter(|_| raw_schemes_given && !schemes.contains(&SchemeKind::Ntlm))
    {
        return Err(format!(
            "{key} answers NTLM only, and `schemes` leaves NTLM out; add \"ntlm\" or give \
             the `password`"
        ));
    }
    Ok(KeyringEntry {
        target,
        credential: KeyringCredential {
            user: raw.user,
            secret,
            schemes,
        },
    })
}

/// Checks a credential's secret: exactly one of `password`, `nt_hash` and `ntlmv2_hash`.
fn secret(
    password: Option<toml::Value>,
    nt_hash: Option<toml::Value>,
    ntlmv2_hash: Option<toml::Value>,
    user: &str,
) -> Result<KeyringSecret, String> {
    let hash = |key: &str, value: toml::Value| match value {
        toml::Value::String(text) => parse_nt_hash(&text).ok_or_else(|| {
            format!(
                "`{key}` must be 32 hexadecimal digits (as `kerbside nt-hash` prints it; see \
                 docs/corporate-proxy.md for a hash from cntlm)"
            )
        }),
        _ => Err(format!("`{key}` must be a string (put it in quotes)")),
    };
    match (password, nt_hash, ntlmv2_hash) {
        (Some(toml::Value::String(password)), None, None) => Ok(KeyringSecret::Password(password)),
        (Some(_), None, None) => Err("`password` must be a string (put it in quotes)".to_owned()),
        (None, Some(value), None) => Ok(KeyringSecret::NtHash(hash("nt_hash", value)?)),
        (None, None, Some(value)) => {
            let key = hash("ntlmv2_hash", value)?;
            match user.split_once('\\') {
                Some((domain, name)) if !domain.is_empty() && !name.is_empty() => {
                    Ok(KeyringSecret::Ntlmv2Hash(key))
                }
                _ => Err(
                    "an `ntlmv2_hash` answers only for the user and domain it was made for: \
                     write `user` as 'DOMAIN\\user', the same user and domain given to \
                     `kerbside nt-hash` (or `cntlm -H -u user -d DOMAIN`)"
                        .to_owned(),
                ),
            }
        }
        (None, None, None) => {
            Err("missing field `password` (or `nt_hash`, or `ntlmv2_hash`)".to_owned())
        }
        _ => Err(
            "more than one of `password`, `nt_hash` and `ntlmv2_hash`; give one (the password \
             answers every scheme)"
                .to_owned(),
        ),
    }
}

/// Checks a `host` value: a host name, or `*.` followed by one.
fn host_target(host: &str) -> Result<Target, String> {
    if host.contains("://") {
        return Err(format!(
            "`host` is a host name, not a URL: write `{}`",
            host.split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
        ));
    }
    if host.is_empty()
        || !host.is_ascii()
        || host
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || "/@?#".contains(c))
    {
        return Err("`host` must be a host name such as `intranet.example.com` \
             (internationalized names in their `xn--` form)"
            .to_owned());
    }
    if host.matches(':').count() == 1 {
        return Err(
            "`host` has a port; leave it out (a credential applies to every port)".to_owned(),
        );
    }
    let host = normalize_host(host);
    let (name, wildcard) = match host.strip_prefix("*.") {
        Some(suffix) => (suffix, true),
        None => (host.as_str(), false),
    };
    if name.contains('*') {
        return Err(
            "a wildcard must be the whole first label of a host name, as in `*.example.com`"
                .to_owned(),
        );
    }
    if name.split('.').any(str::is_empty) {
        return Err(format!(
            "`host` has an empty label (`..`, or a leading dot){}",
            if wildcard {
                ""
            } else {
                "; for a wildcard write `*.example.com`"
            }
        ));
    }
    Ok(if wildcard {
        Target::Wildcard(format!(".{name}"))
    } else {
        Target::Host(host)
    })
}

/// Reads `path` after checking that only its owner may read or write it, and that it is
/// not larger than [`MAX_FILE_SIZE`]. The check is made on the opened file.
fn read_private_file(path: &Path) -> Result<Vec<u8>, KeyringError> {
    let io = |source| KeyringError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    check_private(path, &metadata)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(KeyringError::TooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_SIZE,
        });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::ReadableByOthers {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Outside unix there are no mode bits to check; the file's ACL is the user's business.
#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), KeyringError> {
    Ok(())
}

/// Reads and parses the netrc file at `path`, refusing it, like [`Keyring::load`], if other
/// users may read or write it (Python's `netrc` module refuses such a `~/.netrc` too; curl
/// does not check).
pub fn load_netrc(path: &Path) -> Result<Netrc, KeyringError> {
    let bytes = read_private_file(path)?;
    Netrc::parse(&bytes).map_err(|source| KeyringError::Netrc {
        path: path.to_owned(),
        source,
    })
}

/// Where the netrc file is: `$NETRC` if set (as curl 8.9 and Python's `netrc` module read
/// it), else `~/.netrc` (`~/_netrc` on Windows). The file need not exist.
pub fn netrc_default_path() -> Option<PathBuf> {
    default_netrc_path(&|name| std::env::var_os(name)).map(|(path, _)| path)
}

/// Reads an environment variable; a parameter so that tests need not change the process's
/// environment.
type Env<'a> = &'a dyn Fn(&str) -> Option<std::ffi::OsString>;

/// A non-empty environment variable.
fn env_var(env: Env<'_>, name: &str) -> Option<PathBuf> {
    env(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

fn home_dir(env: Env<'_>) -> Option<PathBuf> {
    env_var(env, "HOME").or_else(|| env_var(env, "USERPROFILE"))
}

/// The keyring's path, and whether the user named it (so that its absence is an error).
fn default_keyring_path(env: Env<'_>) -> Option<(PathBuf, bool)> {
    if let Some(path) = env_var(env, "KERBSIDE_KEYRING") {
        return Some((path, true));
    }
    let config = env_var(env, "XDG_CONFIG_HOME")
        .filter(|dir| dir.is_absolute())
        .or_else(|| home_dir(env).map(|home| home.join(".config")))?;
    Some((config.join("kerbside").join("keyring.toml"), false))
}

/// The netrc's path, and whether the user named it.
fn default_netrc_path(env: Env<'_>) -> Option<(PathBuf, bool)> {
    if let Some(path) = env_var(env, "NETRC") {
        return Some((path, true));
    }
    let name = if cfg!(windows) { "_netrc" } else { ".netrc" };
    Some((home_dir(env)?.join(name), false))
}

/// The check of the `keyring` fuzz target (`fuzz/fuzz_targets/keyring.rs`): parses `data`
/// as a keyring, and panics if what parses cannot find its own credentials, or if its
/// `Debug` output depends on the passwords (so would show one).
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keyring = match Keyring::parse(text) {
        Ok(keyring) => keyring,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    for entry in &keyring.entries {
        for &scheme in &entry.credential.schemes {
            let found = match &entry.target {
                Target::Host(host) => keyring.lookup(host, None, scheme),
                Target::Wildcard(suffix) => keyring.lookup(&format!("x{suffix}"), None, scheme),
                Target::Realm(realm) => keyring.lookup("", Some(realm), scheme),
            };
            let found = found.unwrap_or_else(|| panic!("{entry:?} not found for {scheme}"));
            assert!(found.schemes.contains(&scheme));
        }
    }
    let mut blanked = keyring.clone();
    for entry in &mut blanked.entries {
        entry.credential.secret = match entry.credential.secret {
            KeyringSecret::Password(_) => KeyringSecret::Password(String::new()),
            KeyringSecret::NtHash(_) => KeyringSecret::NtHash([0; 16]),
            KeyringSecret::Ntlmv2Hash(_) => KeyringSecret::Ntlmv2Hash([0; 16]),
        };
    }
    assert_eq!(format!("{keyring:?}"), format!("{blanked:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"
        [[credential]]
        host = "intranet.example.com"
        user = 'EXAMPLE\alice'
        password = "exact-secret"
        schemes = ["ntlm", "basic"]

        [[credential]]
        host = "*.example.com"
        user = "wild@EXAMPLE.COM"
        password = "wild-secret"

        [[credential]]
        host = "*.deep.example.com"
        user = "deep"
        password = "deep-secret"

        [[credential]]
        realm = "EXAMPLE.COM"
        user = "realm@EXAMPLE.COM"
        password = "realm-secret"
        schemes = ["negotiate"]
    "#;

    fn user_for(
        keyring: &Keyring,
        host: &str,
        realm: Option<&str>,
        scheme: SchemeKind,
    ) -> Option<String> {
        keyring
            .lookup(host, realm, scheme)
            .map(|credential| credential.user.clone())
    }

    fn detail(result: Result<Keyring, KeyringError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn parses_the_documented_example() {
        let keyring = Keyring::parse(EXAMPLE).unwrap();
        assert_eq!(keyring.len(), 4);
        let exact = keyring
            .lookup("intranet.example.com", None, SchemeKind::Ntlm)
            .unwrap();
        assert_eq!(
            exact,
            &KeyringCredential {
                user: r"EXAMPLE\alice".into(),
                secret: KeyringSecret::Password("exact-secret".into()),
                schemes: vec![SchemeKind::Ntlm, SchemeKind::Basic],
            }
        );
        let wild = keyring
            .lookup("www.example.com", None, SchemeKind::Digest)
            .unwrap();
        assert_eq!(wild.schemes, SchemeKind::ALL);
        assert!(Keyring::parse("").unwrap().is_empty());
        // The module documentation's example parses too.
        let module_doc = include_str!("keyring.rs")
            .lines()
            .skip_while(|line| !line.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|line| !line.starts_with("//! ```"))
            .map(|line| line.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(Keyring::parse(&module_doc).unwrap().len(), 5);
    }

    #[test]
    fn exact_host_beats_wildcard_beats_realm() {
        let keyring = Keyring::parse(EXAMPLE).unwrap();
        let realm = Some("EXAMPLE.COM");
        use SchemeKind::{Basic, Digest, Negotiate, Ntlm};
        // Exact, case-insensitively and ignoring a trailing dot.
        for host in ["intranet.example.com", "INTRANET.Example.com."] {
            assert_eq!(
                user_for(&keyring, host, realm, Ntlm).as_deref(),
                Some(r"EXAMPLE\alice")
            );
        }
        // The exact entry does not allow Digest: the wildcard answers.
        assert_eq!(
            user_for(&keyring, "intranet.example.com", realm, Digest).as_deref(),
            Some("wild@EXAMPLE.COM")
        );
        // Wildcard beats realm, even for Negotiate.
        assert_eq!(
            user_for(&keyring, "intranet.example.com", realm, Negotiate).as_deref(),
            Some("wild@EXAMPLE.COM")
        );
        // The realm answers for a host no host entry matches, if the realm is known.
        assert_eq!(
            user_for(&keyring, "example.com", Some("example.com"), Negotiate).as_deref(),
            Some("realm@EXAMPLE.COM")
        );
        assert_eq!(user_for(&keyring, "example.com", None, Negotiate), None);
        assert_eq!(user_for(&keyring, "example.com", realm, Basic), None);
        assert_eq!(
            user_for(&keyring, "example.org", Some("OTHER.ORG"), Negotiate),
            None
        );
    }

    #[test]
    fn wildcards_match_subdomains_only_and_the_longest_wins() {
        let keyring = Keyring::parse(EXAMPLE).unwrap();
        let basic = |host| user_for(&keyring, host, None, SchemeKind::Basic);
        assert_eq!(basic("a.example.com").as_deref(), Some("wild@EXAMPLE.COM"));
        assert_eq!(
            basic("a.b.example.com").as_deref(),
            Some("wild@EXAMPLE.COM")
        );
        assert_eq!(basic("example.com"), None);
        assert_eq!(basic("badexample.com"), None);
        assert_eq!(basic("example.com.evil.org"), None);
        assert_eq!(
            basic("deep.example.com").as_deref(),
            Some("wild@EXAMPLE.COM")
        );
        assert_eq!(basic("x.deep.example.com").as_deref(), Some("deep"));
        // Order in the file does not matter between wildcards of different lengths.
        let reversed = Keyring::parse(
            "[[credential]]\nhost = '*.deep.example.com'\nuser = 'deep'\npassword = ''\n\
             [[credential]]\nhost = '*.EXAMPLE.com'\nuser = 'wild'\npassword = ''\n",
        )
        .unwrap();
        assert_eq!(
            user_for(&reversed, "x.deep.example.com", None, SchemeKind::Basic).as_deref(),
            Some("deep")
        );
        assert_eq!(
            user_for(&reversed, "y.example.com", None, SchemeKind::Basic).as_deref(),
            Some("wild")
        );
    }

    #[test]
    fn first_of_equal_entries_wins() {
        let keyring = Keyring::parse(
            "[[credential]]\nhost = 'h'\nuser = 'first'\npassword = ''\n\
             [[credential]]\nhost = 'H'\nuser = 'second'\npassword = ''\n",
        )
        .unwrap();
        assert_eq!(
            user_for(&keyring, "h", None, SchemeKind::Basic).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn rejects_what_it_cannot_use_and_says_why() {
        let cases = [
            ("[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\npasword = 'p'", "line 5, column 1: unknown field `pasword`"),
            ("[[credential]]\nhost = 'h'\nuser = 'u'", "missing field `password`"),
            ("[credential]\nhost = 'h'", "keyring: "),
            ("[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 123456", "credential 1: `password` must be a string"),
            ("[[credential]]\nhost = 'h'\nrealm = 'R'\nuser = 'u'\npassword = 'p'", "both `host` and `realm`"),
            ("[[credential]]\nuser = 'u'\npassword = 'p'", "needs a `host` or a `realm`"),
            ("[[credential]]\nhost = 'https://h.example/x'\nuser = 'u'\npassword = 'p'", "not a URL: write `h.example`"),
            ("[[credential]]\nhost = 'h.example:8443'\nuser = 'u'\npassword = 'p'", "has a port"),
            ("[[credential]]\nhost = 'a b'\nuser = 'u'\npassword = 'p'", "must be a host name"),
            ("[[credential]]\nhost = '*'\nuser = 'u'\npassword = 'p'", "wildcard must be the whole first label"),
            ("[[credential]]\nhost = 'a.*.com'\nuser = 'u'\npassword = 'p'", "wildcard must be the whole first label"),
            ("[[credential]]\nhost = '*example.com'\nuser = 'u'\npassword = 'p'", "wildcard must be the whole first label"),
            ("[[credential]]\nhost = '*..com'\nuser = 'u'\npassword = 'p'", "empty label"),
            ("[[credential]]\nhost = '.example.com'\nuser = 'u'\npassword = 'p'", "for a wildcard write"),
            ("[[credential]]\nhost = 'a..'\nuser = 'u'\npassword = 'p'", "empty label"),
            ("[[credential]]\nrealm = ''\nuser = 'u'\npassword = 'p'", "`realm` must be a Kerberos realm"),
            ("[[credential]]\nhost = 'h'\nuser = ''\npassword = 'p'", "`user` is empty"),
            ("[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = ['kerberos']", "unknown scheme `kerberos`"),
            ("[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = []", "`schemes` is empty"),
            ("[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\n[[credential]]\nhost = 'h'", "missing field `user`"),
        ];
        for (text, expected) in cases {
            let message = detail(Keyring::parse(text));
            assert!(message.contains(expected), "{text:?}: {message}");
        }
        // Scheme names are case-insensitive, duplicates collapse, and the strongest comes first.
        let keyring = Keyring::parse(
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = ['Basic', 'NTLM', 'basic']",
        )
        .unwrap();
        assert_eq!(
            keyring
                .lookup("h", None, SchemeKind::Basic)
                .unwrap()
                .schemes,
            [SchemeKind::Ntlm, SchemeKind::Basic]
        );
    }

    #[test]
    fn an_nt_hash_stands_for_the_password_for_ntlm_only() {
        let keyring = Keyring::parse(
            "[[credential]]\nhost = 'proxy'\nuser = 'CORP\\alice'\n\
             nt_hash = '8846f7eaee8fb117ad06bdd830b7586c'\n",
        )
        .unwrap();
        let sources = CredentialSources::new().with_keyring(keyring);
        let found = sources
            .lookup("proxy", None, SchemeKind::Basic)
            .map(|f| (f.secret, f.password(SchemeKind::Basic, "the proxy proxy")));
        let hash = parse_nt_hash("8846F7EAEE8FB117AD06BDD830B7586C").unwrap();
        assert_eq!(
            hash,
            kerbside_proto::scheme::ntlm::crypto::nt_hash("password")
        );
        let (secret, password) = found.unwrap();
        assert_eq!(secret, Secret::NtHash(&hash));
        let refusal = password.unwrap_err();
        assert!(
            refusal.contains("the proxy proxy asks for Basic, which needs CORP\\alice's password")
                && refusal.contains("only its NT hash"),
            "{refusal}"
        );
        assert!(!format!("{secret:?}").contains("88"), "{secret:?}");
        for (text, expected) in [
            (
                "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = '8846F7EA'",
                "`nt_hash` must be 32 hexadecimal digits",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = 'zz46F7EAEE8FB117AD06BDD830B7586C'",
                "`nt_hash` must be 32 hexadecimal digits",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = 5",
                "`nt_hash` must be a string",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\n\
                 nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'",
                "more than one of `password`, `nt_hash` and `ntlmv2_hash`",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'u'\n\
                 nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'\nschemes = ['basic']",
                "answers NTLM only",
            ),
        ] {
            let e = detail(Keyring::parse(text));
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains("8846"), "{e}");
        }
    }

    #[test]
    fn an_ntlmv2_hash_answers_ntlm_only_for_a_domain_user() {
        let keyring = Keyring::parse(
            "[[credential]]\nhost = 'proxy'\nuser = 'EXAMPLE\\alice'\n\
             ntlmv2_hash = '512c91b5c22f94bf5d813adaf60cd7ad'\n",
        )
        .unwrap();
        let hash = parse_nt_hash("512C91B5C22F94BF5D813ADAF60CD7AD").unwrap();
        assert_eq!(
            hash,
            kerbside_proto::scheme::ntlm::crypto::ntlmv2_hash("secret", "alice", "EXAMPLE")
        );
        let sources = CredentialSources::new().with_keyring(keyring.clone());
        let found = sources.lookup("proxy", None, SchemeKind::Digest).unwrap();
        assert_eq!(found.secret, Secret::Ntlmv2Hash(&hash));
        assert_eq!(found.secret.hash_key(), Some("ntlmv2_hash"));
        let refusal = found
            .password(SchemeKind::Digest, "the proxy proxy")
            .unwrap_err();
        assert!(
            refusal.contains("asks for Digest, which needs EXAMPLE\\alice's password")
                && refusal.contains("only its NTLMv2 hash (ntlmv2_hash)"),
            "{refusal}"
        );
        for shown in [format!("{found:?}"), format!("{keyring:?}")] {
            assert!(!shown.contains("51") && !shown.contains("81"), "{shown}");
        }
        let hint = crate::schemes::ntlmv2_hash_hint(Some(found));
        assert!(
            hint.contains("only for the user and domain it was made for"),
            "{hint}"
        );
        assert!(!hint.contains("512C"), "{hint}");
        for (text, expected) in [
            (
                "[[credential]]\nhost = 'h'\nuser = 'alice'\n\
                 ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
                "write `user` as 'DOMAIN\\user'",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = '\\alice'\n\
                 ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
                "write `user` as 'DOMAIN\\user'",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'D\\u'\nntlmv2_hash = '512C91B5'",
                "`ntlmv2_hash` must be 32 hexadecimal digits",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'D\\u'\nntlmv2_hash = 5",
                "`ntlmv2_hash` must be a string",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'D\\u'\n\
                 nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'\n\
                 ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
                "more than one of",
            ),
            (
                "[[credential]]\nhost = 'h'\nuser = 'D\\u'\n\
                 ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'\nschemes = ['digest']",
                "an `ntlmv2_hash` answers NTLM only",
            ),
        ] {
            let e = detail(Keyring::parse(text));
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains("512C"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn nt_hashes_read_back(bytes in proptest::array::uniform16(any::<u8>())) {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(parse_nt_hash(&hex), Some(bytes));
            prop_assert_eq!(parse_nt_hash(&hex.to_uppercase()), Some(bytes));
            prop_assert_eq!(parse_nt_hash(&hex[1..]), None);
        }

        #[test]
        fn nt_hash_parsing_never_panics(text in ".{0,40}") {
            let _ = parse_nt_hash(&text);
        }
    }

    #[test]
    fn errors_never_quote_a_password() {
        for text in [
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = \"hunter2",
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'hunter2'\nextra = 1",
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 7777777",
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = [\"hunter2\"]",
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'hunter2' 'x'",
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = \"hunter2\\q\"",
        ] {
            let message = detail(Keyring::parse(text));
            assert!(
                !message.contains("hunter2") && !message.contains("7777777"),
                "{message}"
            );
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let keyring = Keyring::parse(EXAMPLE).unwrap();
        let sources = CredentialSources::new()
            .with_command_line("cli", "cli-secret")
            .with_keyring(keyring.clone())
            .with_netrc(Netrc::parse(b"machine h login n password netrc-secret").unwrap());
        let found = sources.lookup("h", None, SchemeKind::Basic).unwrap();
        let debug = format!(
            "{keyring:?} {keyring:#?} {sources:?} {found:?} {:?}",
            keyring.lookup("intranet.example.com", None, SchemeKind::Basic)
        );
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("<redacted>") && debug.contains("wild@EXAMPLE.COM"));
    }

    #[test]
    fn command_line_beats_keyring_beats_netrc() {
        let keyring = Keyring::parse(
            "[[credential]]\nhost = 'k.example'\nuser = 'from-keyring'\npassword = 'k'\nschemes = ['ntlm']",
        )
        .unwrap();
        let netrc = Netrc::parse(
            b"machine k.example login from-netrc password n\n\
              machine nopass.example login alone\n\
              default login anonymous password guest\n",
        )
        .unwrap();
        let files = CredentialSources::new()
            .with_keyring(keyring)
            .with_netrc(netrc);
        let all = files.clone().with_command_line("from-cli", "c");
        let lookup = |sources: &CredentialSources, host, scheme| {
            sources.lookup(host, None, scheme).map(|found| {
                (
                    found.user.to_owned(),
                    found.password(scheme, host).unwrap_or_default().to_owned(),
                    found.source,
                )
            })
        };
        let owned = |user: &str, password: &str, source| {
            Some((user.to_owned(), password.to_owned(), source))
        };
        use CredentialSource::{CommandLine, Keyring as FromKeyring, Netrc as FromNetrc};
        assert_eq!(
            lookup(&all, "k.example", SchemeKind::Ntlm),
            owned("from-cli", "c", CommandLine)
        );
        assert_eq!(
            lookup(&all, "other", SchemeKind::Negotiate),
            owned("from-cli", "c", CommandLine)
        );
        assert_eq!(
            lookup(&files, "K.Example", SchemeKind::Ntlm),
            owned("from-keyring", "k", FromKeyring)
        );
        // The keyring entry does not allow Basic: the netrc answers.
        assert_eq!(
            lookup(&files, "k.example", SchemeKind::Basic),
            owned("from-netrc", "n", FromNetrc)
        );
        assert_eq!(
            lookup(&files, "k.example.", SchemeKind::Digest),
            owned("from-netrc", "n", FromNetrc)
        );
        // The netrc never answers Negotiate, and an entry without a password answers nothing
        // (not even the default entry after it).
        assert_eq!(lookup(&files, "k.example", SchemeKind::Negotiate), None);
        assert_eq!(lookup(&files, "nopass.example", SchemeKind::Basic), None);
        assert_eq!(
            lookup(&files, "else.example", SchemeKind::Basic),
            owned("anonymous", "guest", FromNetrc)
        );
        assert_eq!(
            lookup(&CredentialSources::new(), "k.example", SchemeKind::Basic),
            None
        );
    }

    fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path
    }

    #[cfg(unix)]
    #[test]
    fn load_refuses_a_file_others_can_read_or_write() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o777] {
            let path = write_file(dir.path(), "keyring.toml", EXAMPLE, mode);
            let error = Keyring::load(&path).unwrap_err();
            assert!(
                matches!(&error, KeyringError::ReadableByOthers { mode: m, .. } if *m == mode),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display()))
                    && message.contains(&format!("{mode:o}")),
                "{message}"
            );
            let netrc = write_file(dir.path(), "netrc", "machine h", mode);
            assert!(matches!(
                load_netrc(&netrc),
                Err(KeyringError::ReadableByOthers { .. })
            ));
        }
        for mode in [0o600, 0o400] {
            let path = write_file(dir.path(), "keyring.toml", EXAMPLE, mode);
            assert_eq!(Keyring::load(&path).unwrap().len(), 4);
            let netrc = write_file(dir.path(), "netrc", "machine h login u", mode);
            assert_eq!(load_netrc(&netrc).unwrap().entries().len(), 1);
        }
    }

    #[test]
    fn load_names_the_file_in_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let error = Keyring::load(&missing).unwrap_err();
        assert!(
            matches!(&error, KeyringError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert!(error.to_string().contains("missing.toml"), "{error}");

        let bad = write_file(
            dir.path(),
            "bad.toml",
            "[[credential]]\nhost = 'h'\n",
            0o600,
        );
        let message = Keyring::load(&bad).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("`{}`: ", bad.display())),
            "{message}"
        );

        let not_utf8 = dir.path().join("latin1.toml");
        std::fs::write(&not_utf8, b"# caf\xe9\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&not_utf8, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(Keyring::load(&not_utf8)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));

        let big = write_file(
            dir.path(),
            "big.toml",
            &"#".repeat(MAX_FILE_SIZE as usize + 1),
            0o600,
        );
        assert!(matches!(
            Keyring::load(&big),
            Err(KeyringError::TooLarge { .. })
        ));

        let netrc = write_file(dir.path(), "netrc", "machine h login", 0o600);
        let message = load_netrc(&netrc).unwrap_err().to_string();
        assert!(
            message.contains("netrc`: line 1, column 11: `login` needs a value"),
            "{message}"
        );
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
    }

    #[test]
    fn default_paths_follow_the_environment() {
        let keyring = |vars: &[(&str, &str)]| default_keyring_path(&env_of(vars));
        let netrc = |vars: &[(&str, &str)]| default_netrc_path(&env_of(vars));
        assert_eq!(
            keyring(&[
                ("KERBSIDE_KEYRING", "/k.toml"),
                ("XDG_CONFIG_HOME", "/x"),
                ("HOME", "/h")
            ]),
            Some(("/k.toml".into(), true))
        );
        assert_eq!(
            keyring(&[
                ("KERBSIDE_KEYRING", ""),
                ("XDG_CONFIG_HOME", "/x"),
                ("HOME", "/h")
            ]),
            Some(("/x/kerbside/keyring.toml".into(), false))
        );
        // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
        assert_eq!(
            keyring(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]),
            Some(("/h/.config/kerbside/keyring.toml".into(), false))
        );
        assert_eq!(keyring(&[]), None);
        assert_eq!(
            netrc(&[("NETRC", "/n"), ("HOME", "/h")]),
            Some(("/n".into(), true))
        );
        let name = if cfg!(windows) { "_netrc" } else { ".netrc" };
        assert_eq!(
            netrc(&[("HOME", "/h")]),
            Some((Path::new("/h").join(name), false))
        );
        assert_eq!(netrc(&[]), None);
    }

    #[test]
    fn load_default_skips_missing_files_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let sources = CredentialSources::load_from_env(&env_of(&[("HOME", home)])).unwrap();
        assert!(sources.keyring.is_none() && sources.netrc.is_none());

        let named = dir.path().join("nope.toml");
        let env = env_of(&[
            ("HOME", home),
            ("KERBSIDE_KEYRING", named.to_str().unwrap()),
        ]);
        assert!(matches!(
            CredentialSources::load_from_env(&env),
            Err(KeyringError::Io { .. })
        ));

        write_file(dir.path(), ".netrc", "machine h login u password p", 0o600);
        std::fs::create_dir_all(dir.path().join(".config/kerbside")).unwrap();
        write_file(
            &dir.path().join(".config/kerbside"),
            "keyring.toml",
            "[[credential]]\nhost = 'k'\nuser = 'u'\npassword = 'p'",
            0o600,
        );
        let sources = CredentialSources::load_from_env(&env_of(&[("HOME", home)])).unwrap();
        assert_eq!(sources.keyring.map(|k| k.len()), Some(1));
        if cfg!(unix) {
            assert_eq!(sources.netrc.map(|n| n.entries().len()), Some(1));
        }
    }

    /// Seeds of `fuzz/corpus/keyring`, replayed through the fuzz target's check.
    #[test]
    fn seed_corpus_passes_the_fuzz_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/keyring");
        let mut seen = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                fuzz_check(&std::fs::read(&path).unwrap());
                seen += 1;
            }
        }
        assert!(seen >= 5, "the seed corpus went missing ({seen} files)");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,300}") {
            fuzz_check(text.as_bytes());
        }

        #[test]
        fn parse_never_panics_on_keyring_like_text(
            lines in prop::collection::vec(
                prop_oneof![
                    Just("[[credential]]".to_owned()),
                    "(host|realm|user|password) = [\"'][*a-zA-Z.:/@ \\\\]{0,12}[\"']",
                    "(nt_hash|ntlmv2_hash|password) = [\"'][0-9a-fA-F]{30,33}[\"']",
                    "schemes = \\[([\"'](ntlm|basic|digest|negotiate|x)[\"'], ?){0,3}\\]",
                    ".{0,20}",
                ],
                0..12,
            )
        ) {
            fuzz_check(lines.join("\n").as_bytes());
        }
    }
}
