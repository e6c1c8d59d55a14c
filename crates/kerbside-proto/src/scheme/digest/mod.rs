//! Digest access authentication (RFC 7616), client and server, and the `htdigest` file.
//!
//! - [`client`]: read a server's `WWW-Authenticate: Digest` challenges
//!   ([`client::DigestChallenge`], [`client::choose`]), answer them with a
//!   [`client::DigestSession`] that reuses the nonce with a growing `nc`, renew the nonce on
//!   `stale=true`, and check the server's `rspauth` in `Authentication-Info`.
//! - [`server`]: issue challenges with stateless, expiring, HMAC-signed nonces
//!   ([`server::DigestServer`]), verify `Authorization: Digest` against an HA1 store, refuse
//!   replayed nonce counts ([`server::NonceCounts`]), and produce the `Authentication-Info`
//!   value with `rspauth`.
//! - [`htdigest`]: Apache's `user:realm:HA1` file (MD5), and lighttpd's SHA-256 variant.
//!
//! The pieces both sides share live here: the [`Algorithm`]s, the [`Ha1`] secret, the
//! [`Qop`], the arithmetic of RFC 7616 §3.4.1, and [`to_header_value`], which writes
//! Digest parameters quoted the way RFC 7616 spells them (some servers insist).
//!
//! Nothing here reads a clock or a random number generator: the client's `cnonce`, the
//! server's nonce key and the current time are arguments.
//!
//! # Example: a client and a server, end to end
//!
//! ```
//! use kerbside_proto::scheme::digest::client::{choose, DigestPolicy, DigestSession};
//! use kerbside_proto::scheme::digest::htdigest::{format_line, Htdigest};
//! use kerbside_proto::scheme::digest::server::DigestServer;
//! use kerbside_proto::scheme::digest::{Algorithm, HashFunction};
//!
//! let now = 1_700_000_000; // unix seconds, from the caller's clock
//! let file = format_line("alice", "intranet", "s3cret", HashFunction::Sha256).unwrap();
//! let users = Htdigest::parse(file.as_bytes()).unwrap();
//! let server = DigestServer::new("intranet", [7; 32]).unwrap();
//!
//! // 401: the server's challenges, one WWW-Authenticate line each.
//! let challenges = server.challenges(now, false);
//! let chosen = choose(&challenges, &DigestPolicy::default()).unwrap();
//! assert_eq!(chosen.algorithm, Algorithm::Sha256);
//!
//! // The client answers; `cnonce` comes from the caller's random number generator.
//! let mut session = DigestSession::new(chosen, "alice", "s3cret");
//! let authorization = session.authorization("GET", "/wiki/", None, "q8Zr1xLb").unwrap();
//!
//! // The server checks it and proves it knows the password too.
//! let verified = server.verify(&authorization, "GET", "/wiki/", &users, now).unwrap();
//! assert_eq!(verified.user, "alice");
//! let info = kerbside_proto::AuthenticationInfo::parse(verified.authentication_info.as_bytes());
//! assert!(session.verify_authentication_info(&info.unwrap(), None).unwrap());
//! ```

pub mod client;
pub mod htdigest;
pub mod server;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};
use subtle::ConstantTimeEq as _;

use crate::header::{write_quoted_string, AuthParam, Credentials};

/// The scheme name as it appears on the wire.
pub const SCHEME: &str = "Digest";

/// A hash function Digest can use (RFC 7616 §3.3), without the `-sess` variation.
///
/// This is what an [`Ha1`] is computed with: an MD5 HA1 answers `MD5` and `MD5-sess`
/// challenges, a SHA-256 HA1 `SHA-256` and `SHA-256-sess`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashFunction {
    /// MD5: broken, kept for old servers; the client uses it only when allowed.
    Md5,
    /// SHA-256.
    Sha256,
    /// SHA-512/256 (SHA-512 truncated to 256 bits, with its own initial values).
    Sha512_256,
}

impl HashFunction {
    /// Every hash function, strongest first.
    pub const ALL: [HashFunction; 3] = [Self::Sha512_256, Self::Sha256, Self::Md5];

    /// The length of a digest in lowercase hex: 32 for MD5, 64 for the others.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 | Self::Sha512_256 => 64,
        }
    }

    /// The name used in `algorithm=` (without `-sess`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// `H(data)` of RFC 7616 §3.4: the digest of `data` in lowercase hex.
    pub fn hex_digest(self, data: &[u8]) -> String {
        match self {
            Self::Md5 => hex(&Md5::digest(data)),
            Self::Sha256 => hex(&Sha256::digest(data)),
            Self::Sha512_256 => hex(&Sha512_256::digest(data)),
        }
    }

    /// `H(a ":" b ":" …)`: the digest of the parts joined with colons.
    fn hash_joined(self, parts: &[&str]) -> String {
        self.hex_digest(parts.join(":").as_bytes())
    }
}

impl fmt::Display for HashFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Digest `algorithm` (RFC 7616 §3.3): a [`HashFunction`], and whether it is the `-sess`
/// variation, whose A1 also covers the nonce and cnonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, strongest first, the plain variant before its `-sess`.
    pub const ALL: [Algorithm; 6] = [
        Self::Sha512_256,
        Self::Sha512_256Sess,
        Self::Sha256,
        Self::Sha256Sess,
        Self::Md5,
        Self::Md5Sess,
    ];

    /// Reads an `algorithm` value, ignoring ASCII case; `None` for one this crate does not
    /// know.
    pub fn parse(name: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// The name as RFC 7616 spells it: `SHA-256`, `MD5-sess`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The hash function.
    pub fn hash(self) -> HashFunction {
        match self {
            Self::Md5 | Self::Md5Sess => HashFunction::Md5,
            Self::Sha256 | Self::Sha256Sess => HashFunction::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => HashFunction::Sha512_256,
        }
    }

    /// Whether this is a `-sess` variation.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// The plain or `-sess` algorithm over `hash`.
    pub fn new(hash: HashFunction, session: bool) -> Algorithm {
        match (hash, session) {
            (HashFunction::Md5, false) => Self::Md5,
            (HashFunction::Md5, true) => Self::Md5Sess,
            (HashFunction::Sha256, false) => Self::Sha256,
            (HashFunction::Sha256, true) => Self::Sha256Sess,
            (HashFunction::Sha512_256, false) => Self::Sha512_256,
            (HashFunction::Sha512_256, true) => Self::Sha512_256Sess,
        }
    }

    /// A rank for choosing among challenges: higher is stronger. The hash function counts
    /// first (SHA-512-256 > SHA-256 > MD5); for the same hash, the plain algorithm ranks
    /// above `-sess`, which fewer servers implement correctly.
    pub fn strength(self) -> u8 {
        let hash = match self.hash() {
            HashFunction::Md5 => 0,
            HashFunction::Sha256 => 2,
            HashFunction::Sha512_256 => 4,
        };
        hash + u8::from(!self.is_session())
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The "quality of protection" of one request (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: the response covers the method and request-target.
    Auth,
    /// `auth-int`: it also covers the hash of the request body.
    AuthInt,
}

impl Qop {
    /// Reads a qop value, ignoring ASCII case.
    pub fn parse(value: &str) -> Option<Qop> {
        if value.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if value.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    /// `auth` or `auth-int`.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// `H(unq(username) ":" unq(realm) ":" passwd)` (RFC 7616 §3.4.2): what a Digest server
/// stores instead of the password, and what a client derives from it. It is as good as the
/// password for this realm, so `Debug` shows only the hash function.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    hash: HashFunction,
    hex: String,
}

impl Ha1 {
    /// Computes the HA1 of `user` and `password` in `realm` (all as UTF-8).
    pub fn compute(hash: HashFunction, user: &str, realm: &str, password: &str) -> Ha1 {
        Ha1 {
            hash,
            hex: hash.hash_joined(&[user, realm, password]),
        }
    }

    /// An HA1 given in hex, as in an `htdigest` file; `None` unless it is
    /// [`hash.hex_len()`](HashFunction::hex_len) hex digits. Upper-case digits are accepted.
    pub fn from_hex(hash: HashFunction, hex: &str) -> Option<Ha1> {
        (hex.len() == hash.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Ha1 {
            hash,
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// The hash function it was computed with.
    pub fn hash(&self) -> HashFunction {
        self.hash
    }

    /// The HA1 in lowercase hex, for writing it to a file.
    pub fn to_hex(&self) -> &str {
        &self.hex
    }

    /// The HA1 that goes into KD for `algorithm` with this nonce and cnonce: itself, or for
    /// a `-sess` algorithm `H(HA1 ":" nonce ":" cnonce)` (RFC 7616 §3.4.2).
    fn for_algorithm(&self, algorithm: Algorithm, nonce: &str, cnonce: &str) -> String {
        if algorithm.is_session() {
            self.hash.hash_joined(&[&self.hex, nonce, cnonce])
        } else {
            self.hex.clone()
        }
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ha1({}, <redacted>)", self.hash)
    }
}

/// `H(entity-body)` for `qop=auth-int`, in the session's hash function. Build one with
/// [`BodyHasher`] (or [`BodyHash::of`] for a body already in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyHash {
    hash: HashFunction,
    hex: String,
}

impl BodyHash {
    /// The hash of a whole body held in memory.
    pub fn of(hash: HashFunction, body: &[u8]) -> BodyHash {
        BodyHash {
            hash,
            hex: hash.hex_digest(body),
        }
    }

    /// The hash function it was computed with.
    pub fn hash(&self) -> HashFunction {
        self.hash
    }

    /// The hash in lowercase hex.
    pub fn as_hex(&self) -> &str {
        &self.hex
    }
}

/// Hashes a request or response body as it streams by, for `qop=auth-int`.
#[derive(Debug, Clone)]
pub struct BodyHasher(BodyHasherState);

#[derive(Debug, Clone)]
enum BodyHasherState {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl BodyHasher {
    /// An empty hasher for `hash`.
    pub fn new(hash: HashFunction) -> BodyHasher {
        BodyHasher(match hash {
            HashFunction::Md5 => BodyHasherState::Md5(Md5::new()),
            HashFunction::Sha256 => BodyHasherState::Sha256(Sha256::new()),
            HashFunction::Sha512_256 => BodyHasherState::Sha512_256(Sha512_256::new()),
        })
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        match &mut self.0 {
            BodyHasherState::Md5(h) => h.update(chunk),
            BodyHasherState::Sha256(h) => h.update(chunk),
            BodyHasherState::Sha512_256(h) => h.update(chunk),
        }
    }

    /// The hash of everything fed.
    pub fn finish(self) -> BodyHash {
        let (hash, hex) = match self.0 {
            BodyHasherState::Md5(h) => (HashFunction::Md5, hex(&h.finalize())),
            BodyHasherState::Sha256(h) => (HashFunction::Sha256, hex(&h.finalize())),
            BodyHasherState::Sha512_256(h) => (HashFunction::Sha512_256, hex(&h.finalize())),
        };
        BodyHash { hash, hex }
    }
}

/// What the request digest and `rspauth` are computed from (RFC 7616 §3.4.1, §3.5).
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    pub ha1: &'a Ha1,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    /// `None` for RFC 2069 compatibility (no qop, no nc, no cnonce).
    pub qop: Option<Qop>,
    pub nc: u32,
    /// The method, or "" for `rspauth`.
    pub method: &'a str,
    pub uri: &'a str,
    /// `H(entity-body)` for `auth-int`.
    pub body_hex: Option<&'a str>,
}

impl ResponseInput<'_> {
    /// The request digest in lowercase hex.
    pub(crate) fn digest(&self) -> String {
        let hash = self.algorithm.hash();
        let ha1 = self
            .ha1
            .for_algorithm(self.algorithm, self.nonce, self.cnonce);
        let ha2 = match (self.qop, self.body_hex) {
            (Some(Qop::AuthInt), body) => {
                let empty;
                let body = match body {
                    Some(body) => body,
                    None => {
                        empty = hash.hex_digest(b"");
                        &empty
                    }
                };
                hash.hash_joined(&[self.method, self.uri, body])
            }
            _ => hash.hash_joined(&[self.method, self.uri]),
        };
        match self.qop {
            Some(qop) => hash.hash_joined(&[
                &ha1,
                self.nonce,
                &format_nc(self.nc),
                self.cnonce,
                qop.as_str(),
                &ha2,
            ]),
            None => hash.hash_joined(&[&ha1, self.nonce, &ha2]),
        }
    }
}

/// `nc` as 8 lowercase hex digits.
pub(crate) fn format_nc(nc: u32) -> String {
    format!("{nc:08x}")
}

/// Reads `nc`: exactly 8 hex digits.
pub(crate) fn parse_nc(value: &str) -> Option<u32> {
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(value, 16).ok()
}

/// Compares two hex digests in constant time, ignoring ASCII case.
pub(crate) fn hex_eq(expected: &str, given: &str) -> bool {
    let given = given.to_ascii_lowercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// `userhash` (RFC 7616 §3.4.4): `H(unq(username) ":" unq(realm))`.
pub fn userhash(hash: HashFunction, user: &str, realm: &str) -> String {
    hash.hash_joined(&[user, realm])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Parameters RFC 7616 writes as quoted strings in challenges, credentials and
/// `Authentication-Info`; the others (`algorithm`, `qop` in credentials, `nc`, `stale`,
/// `userhash`, `charset`, `username*`) are tokens.
const QUOTED_PARAMS: [&str; 10] = [
    "realm",
    "domain",
    "nonce",
    "opaque",
    "username",
    "uri",
    "response",
    "cnonce",
    "rspauth",
    "nextnonce",
];

/// Writes Digest auth-params as RFC 7616 shows them: `realm`, `nonce`, `uri`, `response`,
/// `cnonce` and the like always quoted, `algorithm`, `nc` and `qop` bare. A `qop` in a
/// challenge is a quoted list (`qop="auth, auth-int"`), which `in_challenge` selects.
///
/// [`Credentials::to_header_value`] writes a value bare whenever it is a token, which RFC
/// 9110 allows but some Digest servers reject (`response=8ca5…` without quotes); prefer this
/// for Digest headers.
pub fn write_params(out: &mut String, params: &[AuthParam], in_challenge: bool) {
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&param.name);
        out.push('=');
        let quoted = QUOTED_PARAMS
            .iter()
            .any(|name| param.name.eq_ignore_ascii_case(name))
            || (in_challenge && param.name.eq_ignore_ascii_case("qop"))
            || !crate::header::is_token(&param.value);
        if quoted {
            write_quoted_string(out, &param.value);
        } else {
            out.push_str(&param.value);
        }
    }
}

/// `Authorization: Digest …` (or a challenge, with `in_challenge`) as a header value,
/// quoted as RFC 7616 shows it: see [`write_params`].
///
/// ```
/// use kerbside_proto::header::{AuthData, AuthParam, Credentials, Scheme};
///
/// let params = vec![
///     AuthParam::new("username", "Mufasa").unwrap(),
///     AuthParam::new("nc", "00000001").unwrap(),
/// ];
/// let credentials = Credentials::new(Scheme::DIGEST, AuthData::Params(params));
/// assert_eq!(credentials.to_header_value(), "Digest username=Mufasa, nc=00000001");
/// assert_eq!(
///     kerbside_proto::scheme::digest::to_header_value(&credentials),
///     "Digest username=\"Mufasa\", nc=00000001"
/// );
/// ```
pub fn to_header_value(credentials: &Credentials) -> String {
    let mut out = credentials.scheme.as_str().to_owned();
    if !credentials.data.params().is_empty() {
        out.push(' ');
        write_params(&mut out, credentials.data.params(), false);
    }
    out
}

/// A Digest challenge as one `WWW-Authenticate` value, quoted as RFC 7616 shows it.
pub fn challenge_header_value(challenge: &crate::header::Challenge) -> String {
    let mut out = challenge.scheme.as_str().to_owned();
    if !challenge.data.params().is_empty() {
        out.push(' ');
        write_params(&mut out, challenge.data.params(), true);
    }
    out
}

/// Checks `name=value` for a parameter this crate builds; the values it builds (hex, the
/// peer's own strings that already parsed, base64) cannot fail, but a caller-supplied
/// realm or username with a control character can.
pub(crate) fn param(name: &str, value: impl Into<String>) -> Result<AuthParam, String> {
    let value = value.into();
    AuthParam::new(name, value).map_err(|_| name.to_owned())
}

/// The `digest` fuzz target: `data` as challenges (answered by a client session, whose
/// credentials must format and parse back), as credentials (verified by a server), and as
/// `Authentication-Info` (checked by a client).
pub(crate) fn fuzz_check(data: &[u8]) {
    use crate::header::{parse_challenges, AuthenticationInfo};

    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if let Ok(offered) = parse_challenges(lines.iter().copied()) {
        for challenge in &offered {
            if let Ok(parsed) = client::DigestChallenge::parse(challenge) {
                let written = challenge_header_value(challenge);
                let reparsed = parse_challenges([written.as_bytes()]);
                assert_eq!(
                    reparsed.as_ref(),
                    Ok(&vec![challenge.clone()]),
                    "{written:?}"
                );
                let mut session = client::DigestSession::new(parsed, "user", "password");
                if let Ok(credentials) = session.authorization("GET", "/", None, "cnonce") {
                    let written = to_header_value(&credentials);
                    assert_eq!(Credentials::parse(written.as_bytes()), Ok(credentials));
                }
                let _ = session.handle_rechallenge(&offered);
            }
        }
        let _ = client::choose(&offered, &client::DigestPolicy { allow_md5: true });
    }
    let server = server::DigestServer::new("realm", [9; 32])
        .and_then(|s| s.with_algorithms(&Algorithm::ALL))
        .map(|s| s.with_userhash(true));
    let users = |user: &str, realm: &str, hash| Some(Ha1::compute(hash, user, realm, "password"));
    if let (Ok(credentials), Ok(server)) = (Credentials::parse(data), &server) {
        if let Ok(sent) = server::SentCredentials::parse(&credentials) {
            let _ = sent.username.len();
        }
        let _ = server.verify(&credentials, "GET", "/", &users, 1_700_000_000);
    }
    if let (Ok(info), Ok(server)) = (AuthenticationInfo::parse(data), &server) {
        if let Ok(chosen) = client::choose(
            &server.challenges(0, false),
            &client::DigestPolicy::default(),
        ) {
            let mut session = client::DigestSession::new(chosen, "user", "password");
            let _ = session.verify_authentication_info(&info, None);
            if session.authorization("GET", "/", None, "c").is_ok() {
                let _ = session.verify_authentication_info(&info, None);
            }
        }
    }
}
