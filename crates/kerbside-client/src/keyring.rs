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
mod tests;
