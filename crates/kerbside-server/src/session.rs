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

mod codec;
mod fuzz;
mod keys;
#[cfg(test)]
mod tests;

pub use codec::{Session, SessionCodec};
#[doc(hidden)]
pub use fuzz::{fuzz_check, FUZZ_KEY, FUZZ_NOW};
pub use keys::{SessionKey, SessionKeys};
