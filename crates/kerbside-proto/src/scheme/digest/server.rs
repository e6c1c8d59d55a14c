//! The server side of Digest: challenges with signed, expiring nonces, verification of
//! `Authorization: Digest`, replay protection, and `Authentication-Info`.
//!
//! # Nonces
//!
//! A nonce is `base64(issued ‖ serial ‖ HMAC-SHA-256(key, issued ‖ serial ‖ realm)[..16])`:
//! the issue time in unix seconds, a serial number counted by this [`DigestServer`], and a
//! MAC. The server needs no table to know that it issued a nonce and when, so nonces
//! survive across connections; a nonce older than the lifetime is refused as stale (the
//! client retries with the new one, without asking for the password again).
//!
//! What does need memory is replay protection: [`NonceCounts`] remembers, for each nonce
//! in use, the highest `nc` seen and which of the 64 below it were used, within a fixed
//! number of nonces. Use a fresh random key each time the process starts: nonces from
//! before a restart, whose counts are forgotten, then no longer verify. Several server
//! processes behind one name need one key and sticky routing, or a client's nonce counts
//! are checked by one process and not the other (each still refuses what it saw).
//!
//! # Which algorithms, for which users
//!
//! An HA1 is tied to one hash function: an `htdigest` MD5 entry cannot answer a SHA-256
//! challenge. The server offers every algorithm it is configured with (SHA-256 by default,
//! MD5 only when asked), strongest first, each in its own challenge, and verification
//! asks the user store for the HA1 of the hash the client chose. A user who has only an MD5
//! entry can log in only with a client that picks MD5 (curl does when MD5 is offered first
//! or alone; kerbside only with `--allow-digest-md5`).
//!
//! Only `qop=auth` is offered and accepted: `auth-int` would need the request body
//! before the request is let through. RFC 2069 requests (no `qop`) are refused, since they
//! carry no nonce count to protect against replay.
//!
//! # Userhash
//!
//! With [`DigestServer::with_userhash`] the challenges say `userhash=true`, and clients
//! send `H(user:realm)` instead of the name. The server accepts a hashed name whenever the
//! [`DigestUsers`] store can resolve it ([`DigestUsers::user_for_hash`]; an
//! [`Htdigest`](super::htdigest::Htdigest) file can, since it holds the names).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use super::client::decode_ext_value;
use super::{format_nc, hex_eq, parse_nc, Algorithm, Ha1, HashFunction, Qop, ResponseInput};
use crate::header::{write_quoted_string, AuthData, AuthParam, Challenge, Credentials, Scheme};

/// How long a nonce is good for by default: 5 minutes.
pub const DEFAULT_NONCE_LIFETIME: u64 = 300;

/// How many nonces [`NonceCounts`] remembers by default.
pub const DEFAULT_NONCE_CAPACITY: usize = 10_000;

/// How far below the highest `nc` seen a request may arrive (out of order, as over HTTP/2)
/// and still be accepted once.
pub const NC_WINDOW: u32 = 64;

const MAC_LEN: usize = 16;
const NONCE_LEN: usize = 8 + 8 + MAC_LEN;

/// Where the server looks up HA1s: an [`Htdigest`](super::htdigest::Htdigest) file, or a
/// closure `Fn(user, realm, hash) -> Option<Ha1>` (which cannot resolve hashed names).
pub trait DigestUsers {
    /// The HA1 of `user` in `realm` for `hash`, if the store has one.
    fn ha1(&self, user: &str, realm: &str, hash: HashFunction) -> Option<Ha1>;

    /// The user whose `H(user:realm)` is `userhash`, for clients that send `userhash=true`.
    /// The default resolves nothing.
    fn user_for_hash(&self, userhash: &str, realm: &str, hash: HashFunction) -> Option<String> {
        let _ = (userhash, realm, hash);
        None
    }
}

impl<F> DigestUsers for F
where
    F: Fn(&str, &str, HashFunction) -> Option<Ha1>,
{
    fn ha1(&self, user: &str, realm: &str, hash: HashFunction) -> Option<Ha1> {
        self(user, realm, hash)
    }
}

/// A misconfigured [`DigestServer`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestConfigError {
    /// The realm cannot be sent in a header.
    #[error("the Digest realm {0:?} cannot be sent in a header (it holds a control character)")]
    InvalidRealm(String),
    /// No algorithm to offer.
    #[error("the Digest server needs at least one algorithm to offer")]
    NoAlgorithms,
    /// The nonce lifetime is zero.
    #[error("the Digest nonce lifetime must be at least one second")]
    ZeroLifetime,
}

/// Why the server refused `Authorization: Digest`. [`status`](Self::status) says what to
/// answer; a 401 carries fresh [`DigestServer::challenges`], with `stale=true` when
/// [`is_stale`](Self::is_stale).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestRefusal {
    /// The credentials are not Digest.
    #[error("the credentials are {0}, not Digest")]
    NotDigest(String),
    /// A parameter is missing, repeated in two spellings, or not what the grammar allows.
    #[error("malformed Digest credentials: {0}")]
    Malformed(String),
    /// The credentials are for another realm.
    #[error("the Digest credentials are for realm {given:?}, not {expected:?}")]
    WrongRealm {
        /// The realm in the credentials.
        given: String,
        /// This server's realm.
        expected: String,
    },
    /// The client used an algorithm this server did not offer.
    #[error("the client used Digest algorithm {0}, which this server does not offer")]
    AlgorithmNotOffered(String),
    /// The client used a qop other than `auth`, or none (RFC 2069).
    #[error("the client used Digest qop {0:?}; this server accepts only qop=auth")]
    QopNotOffered(String),
    /// The `uri` parameter is not the request-target.
    #[error("the Digest uri {uri:?} is not the request-target {request_target:?}")]
    UriMismatch {
        /// The `uri` parameter.
        uri: String,
        /// The request-target of the request.
        request_target: String,
    },
    /// The nonce was not issued by this server (or its key changed since).
    #[error("the Digest nonce was not issued by this server (or the server restarted)")]
    InvalidNonce,
    /// The nonce expired; the response was right, so the client may retry with a new one.
    #[error("the Digest nonce expired; the client should retry with the new one")]
    StaleNonce,
    /// No HA1 for this user, realm and hash function.
    #[error("unknown Digest user {user:?} (or no {hash} entry for them)")]
    UnknownUser {
        /// The username (or the userhash as sent).
        user: String,
        /// The hash function the client used.
        hash: HashFunction,
    },
    /// The response does not match the password.
    #[error("wrong Digest response for user {user:?}: wrong password")]
    WrongResponse {
        /// The username.
        user: String,
    },
    /// The nonce count was already used with this nonce (a replay), or fell out of the
    /// window, or the nonce's counts were forgotten to make room.
    #[error("Digest nonce count {nc:08x} was already used or is too old (a replay?)")]
    Replayed {
        /// The nonce count sent.
        nc: u32,
    },
}

impl DigestRefusal {
    /// The status to answer with: 400 for a malformed request or a `uri` that is not the
    /// request-target, 401 (with challenges) otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::UriMismatch { .. } => 400,
            _ => 401,
        }
    }

    /// Whether the new challenges should say `stale=true`: the client knows the password
    /// and only needs a new nonce.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::StaleNonce | Self::Replayed { .. })
    }
}

/// A request whose Digest credentials verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestVerified {
    /// The user (resolved from the userhash when one was sent).
    pub user: String,
    /// The realm.
    pub realm: String,
    /// The algorithm the client used.
    pub algorithm: Algorithm,
    /// The nonce the client used.
    pub nonce: String,
    /// The nonce count.
    pub nc: u32,
    /// The value for the `Authentication-Info` response header: `rspauth`, `qop`, `nc`,
    /// `cnonce`, and `nextnonce` once the nonce is past half its lifetime.
    pub authentication_info: String,
}

/// A Digest server for one realm: issues challenges and verifies credentials.
///
/// Holds its replay table behind a mutex, so one `DigestServer` (in an `Arc`) serves every
/// connection.
pub struct DigestServer {
    realm: String,
    algorithms: Vec<Algorithm>,
    nonce_lifetime: u64,
    userhash: bool,
    key: [u8; 32],
    serial: AtomicU64,
    counts: Mutex<NonceCounts>,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("algorithms", &self.algorithms)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("userhash", &self.userhash)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl DigestServer {
    /// A server for `realm` that offers SHA-256 with `qop=auth`, nonces good for
    /// [`DEFAULT_NONCE_LIFETIME`], signed with `key` (32 random bytes from the caller,
    /// fresh at each start).
    pub fn new(realm: impl Into<String>, key: [u8; 32]) -> Result<DigestServer, DigestConfigError> {
        let realm = realm.into();
        if realm.contains(|c: char| c.is_control() && c != '\t') {
            return Err(DigestConfigError::InvalidRealm(realm));
        }
        Ok(DigestServer {
            realm,
            algorithms: vec![Algorithm::Sha256],
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            userhash: false,
            key,
            serial: AtomicU64::new(0),
            counts: Mutex::new(NonceCounts::new(DEFAULT_NONCE_CAPACITY)),
        })
    }

    /// Offers these algorithms (each in its own challenge, strongest first). Add
    /// [`Algorithm::Md5`] for `htdigest` files written by Apache's `htdigest`.
    pub fn with_algorithms(
        mut self,
        algorithms: &[Algorithm],
    ) -> Result<DigestServer, DigestConfigError> {
        if algorithms.is_empty() {
            return Err(DigestConfigError::NoAlgorithms);
        }
        let mut list: Vec<Algorithm> = Vec::new();
        for a in algorithms {
            if !list.contains(a) {
                list.push(*a);
            }
        }
        list.sort_by_key(|a| std::cmp::Reverse(a.strength()));
        self.algorithms = list;
        Ok(self)
    }

    /// Sets how many seconds a nonce is good for.
    pub fn with_nonce_lifetime(mut self, seconds: u64) -> Result<DigestServer, DigestConfigError> {
        if seconds == 0 {
            return Err(DigestConfigError::ZeroLifetime);
        }
        self.nonce_lifetime = seconds;
        Ok(self)
    }

    /// Says `userhash=true` in the challenges (RFC 7616 §3.4.4).
    pub fn with_userhash(mut self, userhash: bool) -> DigestServer {
        self.userhash = userhash;
        self
    }

    /// Remembers the nonce counts of at most `capacity` nonces (default
    /// [`DEFAULT_NONCE_CAPACITY`]).
    pub fn with_nonce_capacity(self, capacity: usize) -> DigestServer {
        DigestServer {
            counts: Mutex::new(NonceCounts::new(capacity)),
            ..self
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The algorithms offered, strongest first.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The challenges for a 401: one per algorithm, strongest first, all with the same new
    /// nonce. Send each on its own `WWW-Authenticate` line (formatted with
    /// [`challenge_header_value`](super::challenge_header_value)): some clients read only
    /// the first Digest challenge of a line. `stale` comes from
    /// [`DigestRefusal::is_stale`]; `now` is unix seconds.
    pub fn challenges(&self, now: u64, stale: bool) -> Vec<Challenge> {
        let nonce = self.issue_nonce(now);
        self.algorithms
            .iter()
            .map(|algorithm| {
                let mut params = vec![
                    AuthParam {
                        name: "realm".into(),
                        value: self.realm.clone(),
                    },
                    AuthParam {
                        name: "qop".into(),
                        value: "auth".into(),
                    },
                    AuthParam {
                        name: "algorithm".into(),
                        value: algorithm.as_str().into(),
                    },
                    AuthParam {
                        name: "nonce".into(),
                        value: nonce.clone(),
                    },
                ];
                if stale {
                    params.push(AuthParam {
                        name: "stale".into(),
                        value: "true".into(),
                    });
                }
                params.push(AuthParam {
                    name: "charset".into(),
                    value: "UTF-8".into(),
                });
                if self.userhash {
                    params.push(AuthParam {
                        name: "userhash".into(),
                        value: "true".into(),
                    });
                }
                Challenge::new(Scheme::DIGEST, AuthData::Params(params))
            })
            .collect()
    }

    fn mac(&self, issued: u64, serial: u64) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"kerbside digest nonce\0");
        mac.update(&issued.to_be_bytes());
        mac.update(&serial.to_be_bytes());
        mac.update(self.realm.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&tag[..MAC_LEN]);
        out
    }

    fn issue_nonce(&self, now: u64) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&now.to_be_bytes());
        bytes.extend_from_slice(&serial.to_be_bytes());
        bytes.extend_from_slice(&self.mac(now, serial));
        STANDARD_NO_PAD.encode(bytes)
    }

    /// The issue time and serial of a nonce this server signed; `None` for any other.
    fn open_nonce(&self, nonce: &str) -> Option<(u64, u64)> {
        if nonce.len() > 64 {
            return None;
        }
        let bytes = STANDARD_NO_PAD.decode(nonce).ok()?;
        if bytes.len() != NONCE_LEN {
            return None;
        }
        let (issued, rest) = bytes.split_at(8);
        let (serial, tag) = rest.split_at(8);
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        let serial = u64::from_be_bytes(serial.try_into().ok()?);
        let expected = self.mac(issued, serial);
        bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag)).then_some((issued, serial))
    }

    /// Verifies `Authorization: Digest` credentials for a request.
    ///
    /// `method` is the request method and `request_target` the request-target exactly as on
    /// the request line: the `uri` parameter must equal it. `users` gives the HA1 for the
    /// user and the hash function the client chose. `now` is unix seconds.
    ///
    /// On success, send [`DigestVerified::authentication_info`] as `Authentication-Info`.
    pub fn verify(
        &self,
        credentials: &Credentials,
        method: &str,
        request_target: &str,
        users: &dyn DigestUsers,
        now: u64,
    ) -> Result<DigestVerified, DigestRefusal> {
        let sent = SentCredentials::parse(credentials)?;
        if sent.realm != self.realm {
            return Err(DigestRefusal::WrongRealm {
                given: sent.realm.to_owned(),
                expected: self.realm.clone(),
            });
        }
        if !self.algorithms.contains(&sent.algorithm) {
            return Err(DigestRefusal::AlgorithmNotOffered(
                sent.algorithm.to_string(),
            ));
        }
        if sent.qop != Some(Qop::Auth) {
            return Err(DigestRefusal::QopNotOffered(
                sent.qop.map_or("none", Qop::as_str).to_owned(),
            ));
        }
        if sent.uri != request_target {
            return Err(DigestRefusal::UriMismatch {
                uri: sent.uri.to_owned(),
                request_target: request_target.to_owned(),
            });
        }
        let (issued, serial) = self
            .open_nonce(sent.nonce)
            .ok_or(DigestRefusal::InvalidNonce)?;

        let hash = sent.algorithm.hash();
        let user = if sent.userhash {
            users
                .user_for_hash(&sent.username, &self.realm, hash)
                .ok_or_else(|| DigestRefusal::UnknownUser {
                    user: sent.username.clone(),
                    hash,
                })?
        } else {
            sent.username.clone()
        };
        let ha1 = users
            .ha1(&user, &self.realm, hash)
            .filter(|ha1| ha1.hash() == hash)
            .ok_or_else(|| DigestRefusal::UnknownUser {
                user: user.clone(),
                hash,
            })?;
        let input = |method, uri| ResponseInput {
            algorithm: sent.algorithm,
            ha1: &ha1,
            nonce: sent.nonce,
            cnonce: sent.cnonce,
            qop: sent.qop,
            nc: sent.nc,
            method,
            uri,
            body_hex: None,
        };
        if !hex_eq(&input(method, sent.uri).digest(), sent.response) {
            return Err(DigestRefusal::WrongResponse { user });
        }
        let expires = issued.saturating_add(self.nonce_lifetime);
        if now >= expires {
            return Err(DigestRefusal::StaleNonce);
        }
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(sent.nonce, serial, sent.nc, expires, now)
            .map_err(|_| DigestRefusal::Replayed { nc: sent.nc })?;

        let rspauth = input("", sent.uri).digest();
        let mut info = String::from("rspauth=");
        write_quoted_string(&mut info, &rspauth);
        info.push_str(", qop=auth, nc=");
        info.push_str(&format_nc(sent.nc));
        info.push_str(", cnonce=");
        write_quoted_string(&mut info, sent.cnonce);
        if now.saturating_sub(issued) >= self.nonce_lifetime / 2 {
            info.push_str(", nextnonce=");
            write_quoted_string(&mut info, &self.issue_nonce(now));
        }
        Ok(DigestVerified {
            user,
            realm: self.realm.clone(),
            algorithm: sent.algorithm,
            nonce: sent.nonce.to_owned(),
            nc: sent.nc,
            authentication_info: info,
        })
    }
}

/// The parameters of `Authorization: Digest`, checked for presence and form.
#[derive(Debug)]
pub(crate) struct SentCredentials<'a> {
    pub username: String,
    pub userhash: bool,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub uri: &'a str,
    pub response: &'a str,
    pub algorithm: Algorithm,
    pub qop: Option<Qop>,
    pub nc: u32,
    pub cnonce: &'a str,
}

impl<'a> SentCredentials<'a> {
    pub(crate) fn parse(credentials: &'a Credentials) -> Result<Self, DigestRefusal> {
        if !credentials.scheme.is(super::SCHEME) {
            return Err(DigestRefusal::NotDigest(credentials.scheme.to_string()));
        }
        let data = &credentials.data;
        if data.params().is_empty() {
            return Err(DigestRefusal::Malformed("no parameters".into()));
        }
        let required = |name: &'static str| {
            data.param(name)
                .ok_or_else(|| DigestRefusal::Malformed(format!("no {name}")))
        };
        let userhash = match data.param("userhash") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => return Err(DigestRefusal::Malformed(format!("userhash={v:?}"))),
        };
        let username = match (data.param("username"), data.param("username*")) {
            (Some(name), None) => name.to_owned(),
            (None, Some(ext)) if !userhash => decode_ext_value(ext).ok_or_else(|| {
                DigestRefusal::Malformed("username* is not a UTF-8 ext-value".into())
            })?,
            (None, Some(_)) => {
                return Err(DigestRefusal::Malformed(
                    "username* together with userhash=true".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(DigestRefusal::Malformed(
                    "both username and username*".into(),
                ))
            }
            (None, None) => return Err(DigestRefusal::Malformed("no username".into())),
        };
        let algorithm = match data.param("algorithm") {
            None => Algorithm::Md5,
            Some(name) => Algorithm::parse(name)
                .ok_or_else(|| DigestRefusal::AlgorithmNotOffered(name.to_owned()))?,
        };
        let qop = match data.param("qop") {
            None => None,
            Some(q) => {
                Some(Qop::parse(q).ok_or_else(|| DigestRefusal::QopNotOffered(q.to_owned()))?)
            }
        };
        let (nc, cnonce) = if qop.is_some() {
            let nc = required("nc")?;
            let nc = parse_nc(nc).ok_or_else(|| {
                DigestRefusal::Malformed(format!("nc={nc:?} is not 8 hex digits"))
            })?;
            (nc, required("cnonce")?)
        } else {
            (0, "")
        };
        Ok(SentCredentials {
            username,
            userhash,
            realm: required("realm")?,
            nonce: required("nonce")?,
            uri: required("uri")?,
            response: required("response")?,
            algorithm,
            qop,
            nc,
            cnonce,
        })
    }
}

/// Why [`NonceCounts::record`] refused a nonce count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceCountRefusal {
    /// This `nc` was already used with this nonce, or is more than [`NC_WINDOW`] below
    /// the highest one used.
    #[error("nonce count already used, or too far behind the highest one used")]
    Replayed,
    /// The nonce's counts were dropped to make room, so its counts are unknown.
    #[error("this nonce's counts were forgotten to make room; a new nonce is needed")]
    Forgotten,
}

/// The nonce counts seen per nonce, in bounded memory, to refuse replayed requests.
///
/// For each nonce it keeps the highest `nc` and which of the [`NC_WINDOW`] counts below it
/// were used, so requests sent at once (over HTTP/2) may arrive out of order. When full,
/// it drops expired nonces first, then the oldest-issued; a nonce issued no later than a
/// dropped one is refused from then on ([`NonceCountRefusal::Forgotten`]), since its
/// counts are no longer known.
#[derive(Debug, Clone)]
pub struct NonceCounts {
    capacity: usize,
    entries: HashMap<String, Window>,
    /// Nonces with a serial at or below this were dropped or may have been.
    forgotten_through: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    serial: u64,
    expires: u64,
    highest: u32,
    /// Bit `i` is set when `highest - i` was used.
    used: u64,
}

impl NonceCounts {
    /// An empty table for at most `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> NonceCounts {
        NonceCounts {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            forgotten_through: None,
        }
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records that `nc` was used with `nonce`, issued with `serial` (increasing with each
    /// nonce issued) and good until `expires`; refuses a count already used.
    pub fn record(
        &mut self,
        nonce: &str,
        serial: u64,
        nc: u32,
        expires: u64,
        now: u64,
    ) -> Result<(), NonceCountRefusal> {
        if let Some(window) = self.entries.get_mut(nonce) {
            return window.record(nc);
        }
        if self
            .forgotten_through
            .is_some_and(|through| serial <= through)
        {
            return Err(NonceCountRefusal::Forgotten);
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, w| w.expires > now);
        }
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, w)| w.serial)
                .map(|(nonce, w)| (nonce.clone(), w.serial));
            if let Some((oldest, oldest_serial)) = oldest {
                self.entries.remove(&oldest);
                let through = self
                    .forgotten_through
                    .map_or(oldest_serial, |t| t.max(oldest_serial));
                self.forgotten_through = Some(through);
                if serial <= through {
                    return Err(NonceCountRefusal::Forgotten);
                }
            }
        }
        let mut window = Window {
            serial,
            expires,
            highest: 0,
            used: 1,
        };
        window.record(nc)?;
        self.entries.insert(nonce.to_owned(), window);
        Ok(())
    }
}

impl Window {
    fn record(&mut self, nc: u32) -> Result<(), NonceCountRefusal> {
        if nc > self.highest {
            let shift = nc - self.highest;
            self.used = if shift >= 64 { 0 } else { self.used << shift };
            self.used |= 1;
            self.highest = nc;
            return Ok(());
        }
        let behind = self.highest - nc;
        if behind >= NC_WINDOW {
            return Err(NonceCountRefusal::Replayed);
        }
        let bit = 1u64 << behind;
        if self.used & bit != 0 {
            return Err(NonceCountRefusal::Replayed);
        }
        self.used |= bit;
        Ok(())
    }
}
