//! Session cookies for `kerbside gate --auth cookie`: after a Negotiate login the gate sets
//! a cookie, and later requests present it instead of a Kerberos token.
//!
//! A cookie value is `base64url(nonce ‖ ciphertext ‖ tag)` (no padding), sealed with
//! XChaCha20-Poly1305 under a 32-byte key from a key file, with a random 24-byte nonce per
//! cookie. The plaintext is a version byte (`1`), the issue and expiry times (unix seconds,
//! big-endian `u64`s) and the principal (a big-endian `u16` length, then UTF-8). The
//! associated data is a fixed context string and the cookie's name, so a cookie only opens
//! as a kerbside session cookie of that name.
//!
//! - **Expiry.** A session ends when the client's ticket does, or after the codec's maximum
//!   lifetime (8 hours by default) if that comes first. The expiry is inside the sealed
//!   plaintext, so a client cannot extend it; the `Max-Age` of the cookie only tells the
//!   browser when to drop it.
//! - **Keys and rotation.** [`SessionKeys`] holds the current key, which seals, and previous
//!   keys, which still open. Which key sealed a cookie is not written in it: [`SessionCodec::open`]
//!   tries the current key, then the previous ones in order. A failed try costs one Poly1305
//!   over about a hundred bytes (the tag is checked before anything is decrypted), so keep
//!   the list of previous keys short: one is enough. To rotate without logging anyone out:
//!   move the key file aside, restart the gate with the old file as a previous key (a new
//!   current key is created), and drop the old file once the maximum lifetime has passed.
//!   A format change would change the context string, so old cookies would fail to open
//!   and their users log in again with Negotiate.
//! - **Cookie attributes.** `HttpOnly; Secure; SameSite=Lax; Path=/`. `Secure` can be left
//!   out only for plain-HTTP test setups: a browser does not store a `Secure` cookie set over
//!   `http://`, and a cookie without it is sent over plain HTTP, where anyone on the path can
//!   copy it and be that user until it expires.
//! - **Secrecy.** A cookie value is a bearer credential: nothing here logs it, and no error
//!   or `Debug` output contains it or a key.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use kerbside_server::session::{SessionCodec, SessionKeys};
//!
//! let codec = SessionCodec::new(SessionKeys::from_bytes([7; 32]));
//! let now = SystemTime::now();
//! // After a Negotiate login whose ticket has 2 hours left:
//! let (value, session) = codec.seal("alice@EXAMPLE.COM", Duration::from_secs(7200), now)?;
//! let set_cookie = codec.set_cookie_header(&value, &session, true, now);
//! assert!(set_cookie.contains("; Max-Age=7200; "));
//!
//! // A later request that sends the cookie back:
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::COOKIE, format!("kerbside_session={value}").parse()?);
//! let session = codec.from_request(&headers, now + Duration::from_secs(60))?;
//! assert_eq!(session.map(|s| s.principal).as_deref(), Some("alice@EXAMPLE.COM"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use kerbside_proto::cookie::{find_cookie, set_cookie, CookieError, SameSite, SetCookieAttrs};
use zeroize::Zeroize;

/// The cookie name a [`SessionCodec`] uses unless told otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "kerbside_session";

/// The longest a session lasts unless a [`SessionCodec`] is told otherwise: 8 hours, a
/// working day, and about the default lifetime of a Kerberos ticket.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The longest principal name a session holds, in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 1024;

/// The length of a session key, and so of a key file, in bytes.
pub const KEY_LEN: usize = 32;

/// How many cookies of our name one request may present that [`SessionCodec::from_request`]
/// tries to open; more are ignored. A browser sends one, or a few set for other paths.
pub const MAX_COOKIES_TRIED: usize = 8;

/// Bound into every cookie as associated data, before the cookie name.
const CONTEXT: &[u8] = b"kerbside session cookie v1\0";
const PAYLOAD_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Version, issued, expires, principal length.
const PAYLOAD_HEADER_LEN: usize = 1 + 8 + 8 + 2;
const MIN_SEALED_LEN: usize = NONCE_LEN + PAYLOAD_HEADER_LEN + 1 + TAG_LEN;
const MAX_SEALED_LEN: usize = NONCE_LEN + PAYLOAD_HEADER_LEN + MAX_PRINCIPAL_LEN + TAG_LEN;
const MIN_ENCODED_LEN: usize = base64_len(MIN_SEALED_LEN);
const MAX_ENCODED_LEN: usize = base64_len(MAX_SEALED_LEN);

/// The length of `n` bytes in unpadded base64.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Why a session key could not be loaded, a session not sealed, or a cookie not opened.
///
/// When a cookie does not open ([`Malformed`](Self::Malformed), [`BadMac`](Self::BadMac),
/// [`Expired`](Self::Expired), [`UnsupportedVersion`](Self::UnsupportedVersion)) the gate
/// falls back to Negotiate; the error says which, for the log, and never holds the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The cookie value is not unpadded base64url of the right length: not one of ours.
    #[error("the session cookie is malformed")]
    Malformed,
    /// The cookie does not authenticate under any session key: it was tampered with, sealed
    /// with a key the gate no longer has, or sealed under another cookie name.
    #[error("the session cookie does not authenticate: tampered with, or sealed with another key")]
    BadMac,
    /// The cookie authenticates, but the session it holds has ended.
    #[error("the session expired at {expired} (unix time)")]
    Expired {
        /// When the session ended, in unix seconds.
        expired: u64,
    },
    /// The cookie authenticates, but holds a session in a layout this version does not read.
    #[error("the session cookie has payload version {0}, which this kerbside does not read")]
    UnsupportedVersion(u8),
    /// The request's `Cookie` header is malformed beyond skipping a pair (see
    /// [`kerbside_proto::cookie`]), or a cookie name given to the codec is not a cookie name.
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// The principal to seal is empty or longer than [`MAX_PRINCIPAL_LEN`] bytes.
    #[error("a session principal must be 1 to {MAX_PRINCIPAL_LEN} bytes, not {len}")]
    InvalidPrincipal {
        /// The principal's length in bytes.
        len: usize,
    },
    /// The ticket has less than a second left, so a session would end at once.
    #[error("the Kerberos ticket has less than a second left: no session cookie set")]
    TicketExpiring,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The AEAD refused to seal. It does so only for messages far larger than a session.
    #[error("sealing the session failed")]
    Seal,
    /// A key file could not be created, opened or read.
    #[error("session key file {}: {source}", path.display())]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A key file can be read or written by its group or by others.
    #[error(
        "session key file {} has mode {mode:03o}, so users other than its owner can use it; \
         run: chmod 600 {}",
        path.display(),
        path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold exactly [`KEY_LEN`] bytes.
    #[error(
        "session key file {} is {len} bytes long, not {KEY_LEN}; it must be {KEY_LEN} random \
         bytes (remove it and the gate creates one, logging everyone out)",
        path.display()
    )]
    KeyFileLength {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
}

/// A 32-byte session key. It is zeroed when dropped, and its `Debug` output does not show it.
pub struct SessionKey(Box<[u8; KEY_LEN]>);

impl SessionKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SessionKey {
        SessionKey(Box::new(bytes))
    }

    /// A new random key.
    ///
    /// # Errors
    ///
    /// [`SessionError::Random`] if the operating system's random number generator fails.
    pub fn generate() -> Result<SessionKey, SessionError> {
        let mut key = SessionKey(Box::new([0; KEY_LEN]));
        getrandom::fill(&mut key.0[..]).map_err(SessionError::Random)?;
        Ok(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// The keys of a [`SessionCodec`]: the current key seals new cookies; it and the previous
/// keys open them.
#[derive(Debug)]
pub struct SessionKeys {
    current: SessionKey,
    previous: Vec<SessionKey>,
}

impl SessionKeys {
    /// Keys from a current key and previous ones.
    pub fn new(current: SessionKey, previous: Vec<SessionKey>) -> SessionKeys {
        SessionKeys { current, previous }
    }

    /// Only `current`, from its bytes; for tests.
    pub fn from_bytes(current: [u8; KEY_LEN]) -> SessionKeys {
        SessionKeys::new(SessionKey::from_bytes(current), Vec::new())
    }

    /// Reads the current key from the key file `path`: exactly [`KEY_LEN`] raw bytes that only
    /// its owner can read. If there is no such file, creates it with mode 0600 and a new
    /// random key. Creation does not race: the file is created only if it does not exist,
    /// never with wider permissions, and if another process creates it first this reads
    /// that process's key. (A reader that comes within the microseconds between creation
    /// and the write of the 32 bytes sees a [`SessionError::KeyFileLength`]; try again.)
    ///
    /// The owner of the file is not checked; keep it in a directory only the gate's user
    /// can write.
    ///
    /// # Errors
    ///
    /// - [`SessionError::KeyFilePermissions`] if the group or others may read or write it
    ///   (Unix only): the message says to run `chmod 600`;
    /// - [`SessionError::KeyFileLength`] if it is not exactly 32 bytes long;
    /// - [`SessionError::KeyFileIo`] if it cannot be created, opened or read;
    /// - [`SessionError::Random`] if no random key can be made.
    pub fn load_or_create(path: &Path) -> Result<SessionKeys, SessionError> {
        let key = SessionKey::generate()?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let current = match options.open(path) {
            Ok(mut file) => {
                let written = file.write_all(&key.0[..]).and_then(|()| file.sync_all());
                if let Err(source) = written {
                    // Leave no short key file behind to be refused on the next start.
                    let _ = std::fs::remove_file(path);
                    return Err(key_file_io(path, source));
                }
                key
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read_key_file(path)?,
            Err(source) => return Err(key_file_io(path, source)),
        };
        Ok(SessionKeys::new(current, Vec::new()))
    }

    /// Adds the keys in `paths` as previous keys, which open cookies but do not seal them:
    /// cookies sealed before a key rotation still open. The files must exist, and are
    /// checked like [`load_or_create`](Self::load_or_create)'s.
    ///
    /// # Errors
    ///
    /// As [`load_or_create`](Self::load_or_create), and [`SessionError::KeyFileIo`] if a
    /// file does not exist.
    pub fn with_previous(mut self, paths: &[PathBuf]) -> Result<SessionKeys, SessionError> {
        for path in paths {
            self.previous.push(read_key_file(path)?);
        }
        Ok(self)
    }

    /// How many keys open cookies: the current one and the previous ones.
    pub fn len(&self) -> usize {
        1 + self.previous.len()
    }

    /// Always `false`: there is always a current key.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn all(&self) -> impl Iterator<Item = &SessionKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

fn key_file_io(path: &Path, source: io::Error) -> SessionError {
    SessionError::KeyFileIo {
        path: path.to_owned(),
        source,
    }
}

/// Reads and checks an existing key file.
fn read_key_file(path: &Path) -> Result<SessionKey, SessionError> {
    let mut file = File::open(path).map_err(|e| key_file_io(path, e))?;
    let metadata = file.metadata().map_err(|e| key_file_io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SessionError::KeyFilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let wrong_length = |len| SessionError::KeyFileLength {
        path: path.to_owned(),
        len,
    };
    if metadata.len() != KEY_LEN as u64 {
        return Err(wrong_length(metadata.len()));
    }
    let mut key = SessionKey(Box::new([0; KEY_LEN]));
    file.read_exact(&mut key.0[..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => wrong_length(0),
            _ => key_file_io(path, e),
        })?;
    // The file may have grown since its length was read.
    let mut more = [0; 1];
    match file.read(&mut more) {
        Ok(0) => Ok(key),
        Ok(_) => Err(wrong_length(KEY_LEN as u64 + 1)),
        Err(e) => Err(key_file_io(path, e)),
    }
}

/// A session that a cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The Kerberos principal that logged in, such as `alice@EXAMPLE.COM`.
    pub principal: String,
    /// When the session ends, in unix seconds.
    pub expires: u64,
    /// When the session began (the Negotiate login), in unix seconds.
    pub issued: u64,
}

/// Seals sessions into cookie values and opens them again; see the [module
/// documentation](self) for the format and the guarantees.
pub struct SessionCodec {
    keys: SessionKeys,
    cookie_name: String,
    max_lifetime: Duration,
    /// [`CONTEXT`] then the cookie name, built once rather than per request.
    associated_data: Vec<u8>,
}

impl fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCodec")
            .field("keys", &self.keys)
            .field("cookie_name", &self.cookie_name)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl SessionCodec {
    /// A codec with `keys`, the cookie name [`DEFAULT_COOKIE_NAME`] and the maximum lifetime
    /// [`DEFAULT_MAX_LIFETIME`].
    pub fn new(keys: SessionKeys) -> SessionCodec {
        SessionCodec {
            keys,
            cookie_name: String::new(),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            associated_data: Vec::new(),
        }
        .named(DEFAULT_COOKIE_NAME)
    }

    /// Uses the cookie name `name`. Cookies sealed under another name do not open.
    ///
    /// # Errors
    ///
    /// [`SessionError::Cookie`] with [`CookieError::InvalidName`] if `name` is not a cookie
    /// name (one or more token characters), or is `__Host-` or `__Secure-` prefixed (the
    /// codec may set cookies without `Secure`).
    pub fn with_cookie_name(self, name: &str) -> Result<SessionCodec, SessionError> {
        // set_cookie checks the name, prefixes included, with the laxest attributes used.
        let attrs = SetCookieAttrs {
            path: Some("/".to_owned()),
            ..SetCookieAttrs::default()
        };
        set_cookie(name, "", &attrs).map_err(|error| match error {
            CookieError::PrefixRequirements { name } => CookieError::InvalidName { name },
            other => other,
        })?;
        Ok(self.named(name))
    }

    fn named(mut self, name: &str) -> SessionCodec {
        self.cookie_name = name.to_owned();
        self.associated_data = [CONTEXT, name.as_bytes()].concat();
        self
    }

    /// Ends sessions after at most `max_lifetime`, whatever the ticket's lifetime. It also
    /// shortens sessions sealed before, by a codec with a longer maximum: [`open`](Self::open)
    /// counts from when they were issued.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> SessionCodec {
        self.max_lifetime = max_lifetime;
        self
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The longest a session lasts.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Seals a session for `principal`, who has just logged in with a ticket that has
    /// `ticket_remaining` left, into a cookie value. The session ends at
    /// `now + min(ticket_remaining, max_lifetime)`, in whole seconds.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidPrincipal`] if `principal` is empty or longer than
    /// [`MAX_PRINCIPAL_LEN`]; [`SessionError::TicketExpiring`] if that lifetime is under a
    /// second; [`SessionError::Random`] if no nonce can be drawn.
    pub fn seal(
        &self,
        principal: &str,
        ticket_remaining: Duration,
        now: SystemTime,
    ) -> Result<(String, Session), SessionError> {
        let principal_len = principal.len();
        if principal_len == 0 || principal_len > MAX_PRINCIPAL_LEN {
            return Err(SessionError::InvalidPrincipal { len: principal_len });
        }
        let lifetime = ticket_remaining.min(self.max_lifetime).as_secs();
        if lifetime == 0 {
            return Err(SessionError::TicketExpiring);
        }
        let issued = unix_seconds(now);
        let expires = issued.saturating_add(lifetime);

        let mut sealed = [0u8; MAX_SEALED_LEN];
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        getrandom::fill(nonce).map_err(SessionError::Random)?;
        let (payload, rest) = rest.split_at_mut(PAYLOAD_HEADER_LEN + principal_len);
        payload[0] = PAYLOAD_VERSION;
        payload[1..9].copy_from_slice(&issued.to_be_bytes());
        payload[9..17].copy_from_slice(&expires.to_be_bytes());
        // At most MAX_PRINCIPAL_LEN, checked above.
        payload[17..19].copy_from_slice(&(principal_len as u16).to_be_bytes());
        payload[19..].copy_from_slice(principal.as_bytes());
        let nonce = XNonce::try_from(&*nonce).map_err(|_| SessionError::Seal)?;
        let tag = self
            .keys
            .current
            .cipher()
            .encrypt_inout_detached(&nonce, &self.associated_data, payload.into())
            .map_err(|_| SessionError::Seal)?;
        rest[..TAG_LEN].copy_from_slice(&tag);
        let sealed_len = NONCE_LEN + PAYLOAD_HEADER_LEN + principal_len + TAG_LEN;
        let value = URL_SAFE_NO_PAD.encode(&sealed[..sealed_len]);
        let session = Session {
            principal: principal.to_owned(),
            expires,
            issued,
        };
        Ok((value, session))
    }

    /// Opens a cookie value that [`seal`](Self::seal) made, under any of the keys, and
    /// checks that its session has not ended at `now`.
    ///
    /// It works on the stack: the one allocation is the principal's `String`. No key is
    /// derived; a cookie that fails costs one Poly1305 per key.
    ///
    /// # Errors
    ///
    /// - [`SessionError::Malformed`] if `value` is not unpadded base64url of a possible
    ///   length;
    /// - [`SessionError::BadMac`] if it does not authenticate under any key (any change to
    ///   a sealed value, a key the codec does not have, another cookie name);
    /// - [`SessionError::Expired`] if the session has ended: at its expiry, or
    ///   [`max_lifetime`](Self::max_lifetime) after it was issued, whichever is first;
    /// - [`SessionError::UnsupportedVersion`] if it holds a payload version this code does
    ///   not read (sealed by a newer kerbside with the same key).
    pub fn open(&self, value: &str, now: SystemTime) -> Result<Session, SessionError> {
        if !(MIN_ENCODED_LEN..=MAX_ENCODED_LEN).contains(&value.len()) {
            return Err(SessionError::Malformed);
        }
        let mut sealed = [0u8; MAX_SEALED_LEN];
        let sealed_len = URL_SAFE_NO_PAD
            .decode_slice(value, &mut sealed)
            .map_err(|_| SessionError::Malformed)?;
        if sealed_len < MIN_SEALED_LEN {
            return Err(SessionError::Malformed);
        }
        let (nonce, rest) = sealed[..sealed_len].split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SessionError::Malformed)?;
        let tag = Tag::try_from(tag).map_err(|_| SessionError::Malformed)?;
        let mut payload = [0u8; MAX_SEALED_LEN];
        let payload = &mut payload[..ciphertext.len()];
        let opened = self.keys.all().any(|key| {
            InOutBuf::new(ciphertext, &mut *payload).is_ok_and(|buffer| {
                key.cipher()
                    .decrypt_inout_detached(&nonce, &self.associated_data, buffer, &tag)
                    .is_ok()
            })
        });
        if !opened {
            return Err(SessionError::BadMac);
        }
        let session = parse_payload(payload)?;
        let max_lifetime = self.max_lifetime.as_secs();
        let expires = session
            .expires
            .min(session.issued.saturating_add(max_lifetime));
        if unix_seconds(now) >= expires {
            return Err(SessionError::Expired { expired: expires });
        }
        Ok(Session { expires, ..session })
    }

    /// The `Set-Cookie` header value that gives the browser the cookie `value` sealed for
    /// `session`: `Path=/`, `Max-Age` the seconds from `now` to the session's end, `Expires`
    /// that end, `HttpOnly`, `Secure` (unless `secure` is `false`: for plain-HTTP test setups
    /// only, see the [module documentation](self)) and `SameSite=Lax`.
    ///
    /// `value` must come from [`seal`](Self::seal). Anything else that is not a cookie value
    /// (this cannot happen with `seal`'s output) gets the header of
    /// [`clear_cookie_header`](Self::clear_cookie_header) instead.
    pub fn set_cookie_header(
        &self,
        value: &str,
        session: &Session,
        secure: bool,
        now: SystemTime,
    ) -> String {
        let now = unix_seconds(now);
        let attrs = Self::attrs(secure).expiring(now, session.expires.saturating_sub(now));
        set_cookie(&self.cookie_name, value, &attrs)
            .unwrap_or_else(|_| self.clear_cookie_header(secure))
    }

    /// The `Set-Cookie` header value that makes the browser drop the cookie (after a logout,
    /// or when it no longer opens): an empty value, `Max-Age=0` and an `Expires` in 1970,
    /// with the attributes of [`set_cookie_header`](Self::set_cookie_header). `secure` must
    /// match what the cookie was set with, since browsers ignore a `Secure` cookie sent over
    /// plain HTTP.
    pub fn clear_cookie_header(&self, secure: bool) -> String {
        let attrs = Self::attrs(secure).expiring(0, 0);
        // The name was checked when the codec got it and the value is empty, so this
        // does not fail; the fallback is the same header without those checks.
        set_cookie(&self.cookie_name, "", &attrs).unwrap_or_else(|_| {
            format!(
                "{}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{}; \
                 SameSite=Lax",
                self.cookie_name,
                if secure { "; Secure" } else { "" }
            )
        })
    }

    fn attrs(secure: bool) -> SetCookieAttrs {
        SetCookieAttrs {
            path: Some("/".to_owned()),
            http_only: true,
            secure,
            same_site: Some(SameSite::Lax),
            ..SetCookieAttrs::default()
        }
    }

    /// The session of the first of our cookies in `headers` (the `Cookie` lines) that opens
    /// at `now`, trying at most [`MAX_COOKIES_TRIED`]; `None` if the request has none of our
    /// cookies.
    ///
    /// # Errors
    ///
    /// The error of the first cookie tried if none opens (see [`open`](Self::open)), and
    /// [`SessionError::Cookie`] if a `Cookie` line is too long to read.
    pub fn from_request(
        &self,
        headers: &http::HeaderMap,
        now: SystemTime,
    ) -> Result<Option<Session>, SessionError> {
        let lines = headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(http::HeaderValue::as_bytes);
        let values = find_cookie(lines, &self.cookie_name)?;
        let mut first_error = None;
        for value in values.into_iter().take(MAX_COOKIES_TRIED) {
            match self.open(value, now) {
                Ok(session) => return Ok(Some(session)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(None), Err)
    }
}

/// Reads an authenticated payload: version, issued, expires, principal.
fn parse_payload(payload: &[u8]) -> Result<Session, SessionError> {
    let (&version, rest) = payload.split_first().ok_or(SessionError::Malformed)?;
    if version != PAYLOAD_VERSION {
        return Err(SessionError::UnsupportedVersion(version));
    }
    let (issued, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(SessionError::Malformed)?;
    let (expires, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(SessionError::Malformed)?;
    let (len, principal) = rest
        .split_first_chunk::<2>()
        .ok_or(SessionError::Malformed)?;
    if usize::from(u16::from_be_bytes(*len)) != principal.len() || principal.is_empty() {
        return Err(SessionError::Malformed);
    }
    let principal = std::str::from_utf8(principal).map_err(|_| SessionError::Malformed)?;
    Ok(Session {
        principal: principal.to_owned(),
        expires: u64::from_be_bytes(*expires),
        issued: u64::from_be_bytes(*issued),
    })
}

/// `now` in unix seconds; a time before 1970 counts as 1970.
fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The key of the `session` fuzz target and of its seed corpus.
#[doc(hidden)]
pub const FUZZ_KEY: [u8; KEY_LEN] = [0x5e; KEY_LEN];

/// The time at which the `session` fuzz target opens cookies: 2023-11-14T22:13:20Z.
#[doc(hidden)]
pub const FUZZ_NOW: u64 = 1_700_000_000;

/// Opens `data` as a cookie value and as `Cookie` header lines with [`FUZZ_KEY`] at
/// [`FUZZ_NOW`], and panics if what opens is not a session that seals and opens again to
/// the same principal, or if it fails with an error that could carry part of the input.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
    let now = UNIX_EPOCH + Duration::from_secs(FUZZ_NOW);
    let text = String::from_utf8_lossy(data);
    let check = |opened: Result<Option<Session>, SessionError>| match opened {
        Ok(Some(session)) => {
            assert!(session.expires > FUZZ_NOW);
            assert!(session.expires - session.issued <= DEFAULT_MAX_LIFETIME.as_secs());
            let lifetime = Duration::from_secs(session.expires - FUZZ_NOW);
            let (value, sealed) = codec
                .seal(&session.principal, lifetime, now)
                .unwrap_or_else(|e| panic!("an opened session does not seal again: {e}"));
            assert_eq!(codec.open(&value, now).ok(), Some(sealed));
        }
        Ok(None) => {}
        // Errors about a cookie carry nothing of the request, so cannot show a value.
        Err(
            SessionError::Malformed
            | SessionError::BadMac
            | SessionError::Expired { .. }
            | SessionError::UnsupportedVersion(_)
            | SessionError::Cookie(CookieError::LineTooLong { .. }),
        ) => {}
        Err(other) => panic!("opening a cookie cannot fail with {other:?}"),
    };
    check(codec.open(&text, now).map(Some));
    let mut headers = http::HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            headers.append(http::header::COOKIE, value);
        }
    }
    check(codec.from_request(&headers, now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn codec(key: u8) -> SessionCodec {
        SessionCodec::new(SessionKeys::from_bytes([key; KEY_LEN]))
    }

    fn flip(value: &str, index: usize, mask: u8) -> String {
        let mut bytes = URL_SAFE_NO_PAD.decode(value).unwrap();
        let index = index % bytes.len();
        bytes[index] ^= mask;
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn seal_then_open_gives_the_session_back() {
        let codec = codec(1);
        let (value, session) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        assert_eq!(
            session,
            Session {
                principal: "alice@EXAMPLE.COM".into(),
                issued: 1000,
                expires: 4600
            }
        );
        assert_eq!(codec.open(&value, at(1000)).unwrap(), session);
        assert_eq!(codec.open(&value, at(4599)).unwrap(), session);
        assert!(value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn each_seal_uses_a_new_nonce() {
        let codec = codec(1);
        let (a, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        let (b, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        assert_ne!(a, b);
        assert_ne!(a[..32], b[..32]);
    }

    #[test]
    fn principals_of_every_length_round_trip() {
        let codec = codec(1);
        for len in [1, 2, 3, 100, MAX_PRINCIPAL_LEN - 1, MAX_PRINCIPAL_LEN] {
            let principal = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let (value, session) = codec.seal(&principal, HOUR, at(1000)).unwrap();
            assert!(value.len() <= MAX_ENCODED_LEN);
            assert_eq!(codec.open(&value, at(1000)).unwrap(), session);
        }
        for principal in [String::new(), "a".repeat(MAX_PRINCIPAL_LEN + 1)] {
            assert!(matches!(
                codec.seal(&principal, HOUR, at(1000)),
                Err(SessionError::InvalidPrincipal { .. })
            ));
        }
    }

    #[test]
    fn a_tampered_cookie_is_bad_mac() {
        let codec = codec(1);
        let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        let len = URL_SAFE_NO_PAD.decode(&value).unwrap().len();
        for index in 0..len {
            for mask in [0x01, 0x80, 0xff] {
                assert!(
                    matches!(
                        codec.open(&flip(&value, index, mask), at(1000)),
                        Err(SessionError::BadMac)
                    ),
                    "byte {index}, mask {mask:#x}"
                );
            }
        }
    }

    #[test]
    fn a_cookie_of_another_key_is_bad_mac() {
        let (value, _) = codec(1).seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        assert!(matches!(
            codec(2).open(&value, at(1000)),
            Err(SessionError::BadMac)
        ));
    }

    #[test]
    fn a_cookie_sealed_under_another_name_is_bad_mac() {
        let other = codec(1).with_cookie_name("other").unwrap();
        let (value, _) = other.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        assert!(other.open(&value, at(1000)).is_ok());
        assert!(matches!(
            codec(1).open(&value, at(1000)),
            Err(SessionError::BadMac)
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let codec = codec(1);
        let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        let too_long = "A".repeat(MAX_ENCODED_LEN + 1);
        for garbage in [
            "",
            "abc",
            &value[..value.len() - 1],
            &format!("{value}A"),
            &value.replace(|_| true, "="),
            &format!("{}+", &value[..value.len() - 1]),
            &too_long,
        ] {
            assert!(
                matches!(
                    codec.open(garbage, at(1000)),
                    Err(SessionError::Malformed | SessionError::BadMac)
                ),
                "{garbage:?}"
            );
        }
        assert!(matches!(
            codec.open("", at(1000)),
            Err(SessionError::Malformed)
        ));
    }

    #[test]
    fn an_expired_session_is_expired() {
        let codec = codec(1);
        let (value, session) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        for now in [session.expires, session.expires + 1, u64::MAX / 2] {
            assert!(matches!(
                codec.open(&value, at(now)),
                Err(SessionError::Expired { expired: 4600 })
            ));
        }
    }

    #[test]
    fn expiry_is_capped_by_the_ticket_and_by_the_max_lifetime() {
        let codec = codec(1);
        let (_, session) = codec
            .seal("a@R", Duration::from_millis(90_500), at(1000))
            .unwrap();
        assert_eq!(session.expires, 1090);
        let (_, session) = codec.seal("a@R", 24 * HOUR, at(1000)).unwrap();
        assert_eq!(session.expires, 1000 + 8 * 3600);
        let short = SessionCodec::new(SessionKeys::from_bytes([1; KEY_LEN]))
            .with_max_lifetime(Duration::from_secs(60));
        let (_, session) = short.seal("a@R", HOUR, at(1000)).unwrap();
        assert_eq!(session.expires, 1060);
        assert!(matches!(
            codec.seal("a@R", Duration::from_millis(999), at(1000)),
            Err(SessionError::TicketExpiring)
        ));
    }

    #[test]
    fn a_lower_max_lifetime_shortens_sessions_already_sealed() {
        let (value, _) = codec(1).seal("a@R", 8 * HOUR, at(1000)).unwrap();
        let short = codec(1).with_max_lifetime(HOUR);
        assert_eq!(short.open(&value, at(1000)).unwrap().expires, 4600);
        assert!(matches!(
            short.open(&value, at(4600)),
            Err(SessionError::Expired { expired: 4600 })
        ));
    }

    #[test]
    fn an_unknown_payload_version_is_reported_after_authentication() {
        // Seal a payload of version 2 by hand with the codec's key and context.
        let codec = codec(1);
        let mut payload = vec![2u8];
        payload.extend_from_slice(&1000u64.to_be_bytes());
        payload.extend_from_slice(&5000u64.to_be_bytes());
        payload.extend_from_slice(&1u16.to_be_bytes());
        payload.push(b'a');
        let nonce = XNonce::from([9; NONCE_LEN]);
        let tag = codec
            .keys
            .current
            .cipher()
            .encrypt_inout_detached(&nonce, &codec.associated_data, payload[..].as_mut().into())
            .unwrap();
        let value = URL_SAFE_NO_PAD.encode([&nonce[..], &payload, &tag[..]].concat());
        assert!(matches!(
            codec.open(&value, at(1000)),
            Err(SessionError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn rotation_keeps_old_cookies_and_seals_with_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let (current, old) = (dir.path().join("session.key"), dir.path().join("old.key"));
        let before = SessionCodec::new(SessionKeys::load_or_create(&current).unwrap());
        let (old_value, old_session) = before.seal("a@R", HOUR, at(1000)).unwrap();

        std::fs::rename(&current, &old).unwrap();
        let keys = SessionKeys::load_or_create(&current)
            .unwrap()
            .with_previous(std::slice::from_ref(&old))
            .unwrap();
        assert_eq!(keys.len(), 2);
        let after = SessionCodec::new(keys);
        assert_eq!(after.open(&old_value, at(1000)).unwrap(), old_session);
        let (new_value, new_session) = after.seal("b@R", HOUR, at(1000)).unwrap();
        assert_eq!(after.open(&new_value, at(1000)).unwrap(), new_session);
        // Sealed with the new key: the old key alone does not open it.
        assert!(matches!(
            before.open(&new_value, at(1000)),
            Err(SessionError::BadMac)
        ));
        let new_only = SessionCodec::new(SessionKeys::load_or_create(&current).unwrap());
        assert!(new_only.open(&new_value, at(1000)).is_ok());
        assert!(matches!(
            new_only.open(&old_value, at(1000)),
            Err(SessionError::BadMac)
        ));
    }

    #[test]
    fn a_missing_previous_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let result =
            SessionKeys::from_bytes([1; KEY_LEN]).with_previous(&[dir.path().join("nope")]);
        assert!(matches!(result, Err(SessionError::KeyFileIo { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_created_0600_with_32_bytes_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        let first = SessionCodec::new(SessionKeys::load_or_create(&path).unwrap());
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(metadata.len(), 32);
        let (value, _) = first.seal("a@R", HOUR, at(1000)).unwrap();
        let second = SessionCodec::new(SessionKeys::load_or_create(&path).unwrap());
        assert!(second.open(&value, at(1000)).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        std::fs::write(&path, [3; KEY_LEN]).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = SessionKeys::load_or_create(&path).unwrap_err();
            assert!(
                matches!(error, SessionError::KeyFilePermissions { mode: m, .. } if m == mode),
                "{error:?}"
            );
            assert!(error.to_string().contains("chmod 600"), "{error}");
            assert!(error.to_string().contains(&path.display().to_string()));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(SessionKeys::load_or_create(&path).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        for len in [0, 31, 33, 64] {
            std::fs::write(&path, vec![3; len]).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let error = SessionKeys::load_or_create(&path).unwrap_err();
            assert!(
                matches!(error, SessionError::KeyFileLength { len: l, .. } if l == len as u64),
                "{error:?}"
            );
            let previous =
                SessionKeys::from_bytes([1; KEY_LEN]).with_previous(std::slice::from_ref(&path));
            assert!(matches!(previous, Err(SessionError::KeyFileLength { .. })));
        }
    }

    #[test]
    fn set_cookie_header_has_the_security_attributes_and_the_ticket_lifetime() {
        let codec = codec(1);
        let ticket = Duration::from_secs(1234);
        let (value, session) = codec.seal("a@R", ticket, at(1_700_000_000)).unwrap();
        let header = codec.set_cookie_header(&value, &session, true, at(1_700_000_000));
        assert_eq!(
            header,
            format!(
                "kerbside_session={value}; Path=/; Max-Age=1234; \
                 Expires=Tue, 14 Nov 2023 22:33:54 GMT; HttpOnly; Secure; SameSite=Lax"
            )
        );
        // Later, Max-Age counts down to the same end.
        let later = codec.set_cookie_header(&value, &session, true, at(1_700_001_000));
        assert!(later.contains("; Max-Age=234; "), "{later}");
        let plain = codec.set_cookie_header(&value, &session, false, at(1_700_000_000));
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(plain.contains("HttpOnly; SameSite=Lax"), "{plain}");
        // Not a value from seal: the browser is told to drop the cookie instead.
        let bad = codec.set_cookie_header("a b", &session, true, at(1_700_000_000));
        assert_eq!(bad, codec.clear_cookie_header(true));
    }

    #[test]
    fn clear_cookie_header_expires_the_cookie() {
        assert_eq!(
            codec(1).clear_cookie_header(true),
            "kerbside_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; SameSite=Lax"
        );
        assert!(!codec(1).clear_cookie_header(false).contains("Secure"));
    }

    #[test]
    fn cookie_names_are_checked() {
        for name in ["", "a b", "a;b", "__Host-s", "__Secure-s"] {
            assert!(
                matches!(
                    codec(1).with_cookie_name(name),
                    Err(SessionError::Cookie(CookieError::InvalidName { .. }))
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            codec(1).with_cookie_name("sid").unwrap().cookie_name(),
            "sid"
        );
    }

    #[test]
    fn from_request_finds_the_first_cookie_that_opens() {
        let codec = codec(1);
        let (good, session) = codec.seal("a@R", HOUR, at(1000)).unwrap();
        let (stranger, _) = self::codec(2).seal("b@R", HOUR, at(1000)).unwrap();
        let mut headers = http::HeaderMap::new();
        assert_eq!(codec.from_request(&headers, at(1000)).unwrap(), None);
        headers.append(http::header::COOKIE, "lang=en; theme=dark".parse().unwrap());
        assert_eq!(codec.from_request(&headers, at(1000)).unwrap(), None);
        headers.append(
            http::header::COOKIE,
            format!("kerbside_session={stranger}; kerbside_session=junk")
                .parse()
                .unwrap(),
        );
        assert!(matches!(
            codec.from_request(&headers, at(1000)),
            Err(SessionError::BadMac)
        ));
        headers.append(
            http::header::COOKIE,
            format!("x=1; kerbside_session=\"{good}\"").parse().unwrap(),
        );
        assert_eq!(
            codec.from_request(&headers, at(1000)).unwrap(),
            Some(session)
        );
        assert!(matches!(
            codec.from_request(&headers, at(5000)),
            Err(SessionError::BadMac)
        ));
    }

    #[test]
    fn from_request_tries_a_bounded_number_of_cookies() {
        let codec = codec(1);
        let (good, _) = codec.seal("a@R", HOUR, at(1000)).unwrap();
        let mut line = "kerbside_session=x; ".repeat(MAX_COOKIES_TRIED);
        line.push_str(&format!("kerbside_session={good}"));
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, line.parse().unwrap());
        assert!(matches!(
            codec.from_request(&headers, at(1000)),
            Err(SessionError::Malformed)
        ));
    }

    #[test]
    fn from_request_refuses_an_overlong_cookie_line() {
        let mut headers = http::HeaderMap::new();
        let line = format!("a={}", "x".repeat(70_000));
        headers.insert(http::header::COOKIE, line.parse().unwrap());
        assert!(matches!(
            codec(1).from_request(&headers, at(1000)),
            Err(SessionError::Cookie(CookieError::LineTooLong { .. }))
        ));
    }

    #[test]
    fn debug_output_never_shows_keys_or_cookies() {
        let codec = SessionCodec::new(SessionKeys::new(
            SessionKey::from_bytes([0xab; KEY_LEN]),
            vec![SessionKey::from_bytes([0xcd; KEY_LEN])],
        ));
        let shown = format!("{codec:?} {codec:#?}");
        for leak in ["171", "205", "ab", "AB", "cd", "CD", "q6ur", "zc3N"] {
            assert!(!shown.contains(leak), "{leak} in {shown}");
        }
        assert!(shown.contains("redacted"), "{shown}");
        let (value, _) = codec.seal("a@R", HOUR, at(1000)).unwrap();
        let errors = [
            codec.open(&flip(&value, 30, 1), at(1000)).unwrap_err(),
            codec.open(&value, at(99_999)).unwrap_err(),
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(&value[..16]), "{shown}");
        }
    }

    /// A cookie value sealed with [`FUZZ_KEY`] that opens at [`FUZZ_NOW`], for the seed
    /// corpus: `cargo test -p kerbside-server print_a_fuzz_seed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_a_fuzz_seed() {
        let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
        let (value, _) = codec
            .seal("alice@EXAMPLE.COM", 8 * HOUR, at(FUZZ_NOW - 60))
            .unwrap();
        println!("{value}");
    }

    /// Seeds of `fuzz/corpus/session`, replayed through the fuzz target's check; one of them
    /// must open.
    #[test]
    fn seed_corpus_passes_the_fuzz_check() {
        let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
        let (mut seen, mut opened) = (0, 0);
        for (_, data) in kerbside_testkit::fuzz_seeds("session") {
            fuzz_check(&data);
            let text = String::from_utf8_lossy(&data);
            opened += usize::from(codec.open(&text, at(FUZZ_NOW)).is_ok());
            seen += 1;
        }
        assert!(seen >= 5, "the seed corpus went missing ({seen} files)");
        assert!(opened >= 1, "no seed opens with FUZZ_KEY at FUZZ_NOW");
    }

    proptest! {
        #[test]
        fn any_flipped_byte_is_bad_mac(
            principal in "[a-z]{1,20}@[A-Z.]{1,20}",
            index in any::<usize>(),
            mask in 1u8..,
        ) {
            let codec = codec(1);
            let (value, _) = codec.seal(&principal, HOUR, at(1000)).unwrap();
            prop_assert!(matches!(
                codec.open(&flip(&value, index, mask), at(1000)),
                Err(SessionError::BadMac)
            ));
        }

        #[test]
        fn any_changed_character_never_opens(
            index in any::<usize>(),
            replacement in any::<char>(),
        ) {
            let codec = codec(1);
            let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
            let index = index % value.len();
            let mut changed = value.clone();
            changed.replace_range(index..=index, replacement.encode_utf8(&mut [0; 4]));
            prop_assume!(changed != value);
            prop_assert!(codec.open(&changed, at(1000)).is_err());
        }

        #[test]
        fn open_never_panics(text in ".{0,1500}") {
            fuzz_check(text.as_bytes());
        }

        #[test]
        fn open_never_panics_on_base64url(text in "[A-Za-z0-9_-]{70,1500}") {
            fuzz_check(text.as_bytes());
        }

        #[test]
        fn seal_and_open_round_trip(
            principal in "\\PC{1,60}",
            ticket in 1u64..100_000,
            now in 0u64..4_000_000_000,
        ) {
            let codec = codec(1);
            let (value, session) = codec
                .seal(&principal, Duration::from_secs(ticket), at(now))
                .unwrap();
            prop_assert_eq!(session.expires, now + ticket.min(8 * 3600));
            prop_assert_eq!(codec.open(&value, at(now)).unwrap(), session.clone());
            let header = codec.set_cookie_header(&value, &session, true, at(now));
            let max_age = format!("; Max-Age={}; ", ticket.min(8 * 3600));
            prop_assert!(header.contains(&max_age), "{}", header);
        }
    }
}
