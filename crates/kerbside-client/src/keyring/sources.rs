//! [`CredentialSources`]: the command line, then the keyring, then `~/.netrc`.

use std::fmt;

use kerbside_proto::netrc::Netrc;
use kerbside_proto::SchemeKind;

use super::{
    default_keyring_path, default_netrc_path, load_netrc, normalize_host, Env, Keyring,
    KeyringCredential, KeyringError, KeyringSecret, Redacted,
};

/// Where a user name and password come from, in order of precedence:
///
/// 1. the command line (`--user alice:…`): the user typed it for this request, so it
///    answers every scheme; the caller decides which hosts it goes to (not to the other
///    host of a redirect, for one);
/// 2. the [`Keyring`], by [`Keyring::lookup`];
/// 3. `~/.netrc`, by [`Netrc::lookup`] (its `default` entry included), for NTLM, Digest
///    and Basic only, and only from an entry with both `login` and `password`: a netrc is
///    written for curl and ftp, and does not say which Kerberos principal its login is.
///
/// `Debug` output never shows a password.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    pub(super) command_line: Option<KeyringCredential>,
    pub(super) keyring: Option<Keyring>,
    pub(super) netrc: Option<Netrc>,
}

/// Which of the [`CredentialSources`] a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// The command line.
    CommandLine,
    /// The keyring file.
    Keyring,
    /// The netrc file.
    Netrc,
}

impl CredentialSource {
    /// Where the credential came from, in words for `-v`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CommandLine => "from -u",
            Self::Keyring => "from the keyring file",
            Self::Netrc => "from the netrc file",
        }
    }
}

/// A user name and password (or its NT hash) found by [`CredentialSources::lookup`].
/// Its `Debug` output never shows the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FoundCredential<'a> {
    /// The user name.
    pub user: &'a str,
    /// The password, or its NT hash.
    pub secret: Secret<'a>,
    /// Where it came from, for `-v` and for error messages.
    pub source: CredentialSource,
}

/// The secret of a [`FoundCredential`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Secret<'a> {
    /// The password.
    Password(&'a str),
    /// The password's NT hash (a keyring's `nt_hash`): NTLM only.
    NtHash(&'a [u8; 16]),
    /// NTOWFv2 of the password for the credential's user and domain (a keyring's
    /// `ntlmv2_hash`): NTLMv2 only, as that user only.
    Ntlmv2Hash(&'a [u8; 16]),
}

impl Secret<'_> {
    /// The keyring key of a secret that is only a hash (answers NTLM only), or `None`
    /// for a password.
    pub fn hash_key(&self) -> Option<&'static str> {
        match self {
            Self::Password(_) => None,
            Self::NtHash(_) => Some("nt_hash"),
            Self::Ntlmv2Hash(_) => Some("ntlmv2_hash"),
        }
    }
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => Redacted.fmt(f),
            Self::NtHash(_) => f.debug_tuple("NtHash").field(&Redacted).finish(),
            Self::Ntlmv2Hash(_) => f.debug_tuple("Ntlmv2Hash").field(&Redacted).finish(),
        }
    }
}

impl fmt::Debug for FoundCredential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundCredential")
            .field("user", &self.user)
            .field("password", &self.secret)
            .field("source", &self.source)
            .finish()
    }
}

impl<'a> FoundCredential<'a> {
    /// The password, for `scheme` (Basic, Digest, a Kerberos password) at `host`; a
    /// credential that holds only the NT hash cannot answer it, and the error says so
    /// and what to do.
    pub fn password(&self, scheme: SchemeKind, host: &str) -> Result<&'a str, String> {
        match self.secret {
            Secret::Password(p) => Ok(p),
            Secret::NtHash(_) => Err(format!(
                "{host} asks for {}, which needs {}'s password, but the keyring file holds \
                 only its NT hash (nt_hash), which answers NTLM only: put the `password` in \
                 the keyring file for {host}, or give -u",
                scheme.name(),
                self.user
            )),
            Secret::Ntlmv2Hash(_) => Err(format!(
                "{host} asks for {}, which needs {}'s password, but the keyring file holds \
                 only its NTLMv2 hash (ntlmv2_hash), which answers NTLM only: put the \
                 `password` in the keyring file for {host}, or give -u",
                scheme.name(),
                self.user
            )),
        }
    }
}

impl CredentialSources {
    /// No sources: every lookup finds nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the user name and password given on the command line.
    pub fn with_command_line(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.command_line = Some(KeyringCredential {
            user: user.into(),
            secret: KeyringSecret::Password(password.into()),
            schemes: SchemeKind::ALL.to_vec(),
        });
        self
    }

    /// Adds a keyring.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Adds a netrc.
    pub fn with_netrc(mut self, netrc: Netrc) -> Self {
        self.netrc = Some(netrc);
        self
    }

    /// The keyring at [`Keyring::default_path`] and the netrc at [`netrc_default_path`],
    /// each if it exists. A file named by `$KERBSIDE_KEYRING` or `$NETRC` must exist; any
    /// file that exists must be private and parse.
    pub fn load_default() -> Result<Self, KeyringError> {
        Self::load_from_env(&|name| std::env::var_os(name))
    }

    /// Like [`load_default`](Self::load_default), reading the netrc only when
    /// `netrc` is true (curl reads it only with `--netrc`).
    pub fn load_default_with(netrc: bool) -> Result<Self, KeyringError> {
        Self::load_from_env_with(&|name| std::env::var_os(name), netrc)
    }

    pub(super) fn load_from_env(env: Env<'_>) -> Result<Self, KeyringError> {
        Self::load_from_env_with(env, true)
    }

    fn load_from_env_with(env: Env<'_>, netrc: bool) -> Result<Self, KeyringError> {
        let mut sources = Self::new();
        if let Some((path, named)) = default_keyring_path(env) {
            sources.keyring = optional(Keyring::load(&path), named)?;
        }
        if netrc {
            if let Some((path, named)) = default_netrc_path(env) {
                sources.netrc = optional(load_netrc(&path), named)?;
            }
        }
        Ok(sources)
    }

    /// The credential for `host` (and its Kerberos `realm`, if known) that may answer
    /// `scheme`, from the first source that has one; see [`CredentialSources`].
    pub fn lookup(
        &self,
        host: &str,
        realm: Option<&str>,
        scheme: SchemeKind,
    ) -> Option<FoundCredential<'_>> {
        if let Some(credential) = &self.command_line {
            return Some(credential.found(CredentialSource::CommandLine));
        }
        if let Some(credential) = self
            .keyring
            .as_ref()
            .and_then(|keyring| keyring.lookup(host, realm, scheme))
        {
            return Some(credential.found(CredentialSource::Keyring));
        }
        if scheme == SchemeKind::Negotiate {
            return None;
        }
        let entry = self.netrc.as_ref()?.lookup(normalize_host(host).as_str())?;
        Some(FoundCredential {
            user: entry.login.as_deref()?,
            secret: Secret::Password(entry.password.as_deref()?),
            source: CredentialSource::Netrc,
        })
    }
}

/// A loaded file, or `None` if it does not exist and the user did not name it.
fn optional<T>(loaded: Result<T, KeyringError>, named: bool) -> Result<Option<T>, KeyringError> {
    match loaded {
        Ok(value) => Ok(Some(value)),
        Err(KeyringError::Io { source, .. })
            if !named && source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}
