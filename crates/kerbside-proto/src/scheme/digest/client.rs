//! The client side of Digest: read the server's challenges, answer them, keep answering
//! with the same nonce, and check the server's proof in `Authentication-Info`.
//!
//! 1. On a 401, [`choose`] picks the strongest usable challenge among the server's
//!    `WWW-Authenticate` values (SHA-512-256 > SHA-256 > MD5; MD5 only when
//!    [`DigestPolicy::allow_md5`]).
//! 2. [`DigestSession::new`] takes it with the username and password (or an [`Ha1`]);
//!    keep one session per origin and realm.
//! 3. [`DigestSession::authorization`] gives the `Authorization` value for each request,
//!    with `nc` one higher each time, so later requests to the same realm can carry it
//!    without waiting for a 401. Format it with [`to_header_value`](super::to_header_value).
//! 4. A 401 on a request that carried credentials goes to
//!    [`DigestSession::handle_rechallenge`]: with `stale=true` the session takes the new
//!    nonce and the request can be retried without asking for the password again;
//!    otherwise the password was refused.
//! 5. An `Authentication-Info` header goes to
//!    [`DigestSession::verify_authentication_info`], which checks `rspauth` (the server's
//!    proof that it knows the password too) and adopts `nextnonce`.
//!
//! `auth-int` is used when the caller gives the request body's hash and the server offers
//! it. RFC 2069 compatibility (no `qop`, no `nc`, no `cnonce`) is used only when the chosen
//! challenge has no `qop` at all.
//!
//! A session answers one request at a time as far as `Authentication-Info` is concerned: it
//! remembers the last request it signed, and checks `rspauth`, `nc` and `cnonce` against
//! that one.

use std::fmt;

use super::{format_nc, hex_eq, param, userhash, Algorithm, BodyHash, Ha1, Qop, ResponseInput};
use crate::header::{AuthData, AuthenticationInfo, Challenge, Credentials, Scheme};

/// What went wrong on the client side of Digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The challenge given to [`DigestChallenge::parse`] is not a Digest challenge.
    #[error("this is a {0} challenge, not Digest")]
    NotDigest(String),
    /// A parameter every Digest challenge must have is missing.
    #[error("the server's Digest challenge has no {0}")]
    MissingParam(&'static str),
    /// The challenge names an algorithm this client does not implement.
    #[error(
        "the server's Digest challenge asks for algorithm {0}, which kerbside does not \
         support (it supports SHA-512-256, SHA-256 and MD5, each with -sess)"
    )]
    UnsupportedAlgorithm(String),
    /// The best (or only) challenge uses MD5, which the policy does not allow.
    #[error(
        "the server offers Digest only with MD5, which is broken; \
         pass --allow-digest-md5 to use it anyway"
    )]
    Md5NotAllowed,
    /// The challenge's `qop` lists neither `auth` nor `auth-int`.
    #[error(
        "the server's Digest challenge offers qop {0:?}, and kerbside knows only auth and auth-int"
    )]
    UnsupportedQop(String),
    /// A `-sess` algorithm without `qop`: there would be no `cnonce` to compute A1 with.
    #[error("the server's Digest challenge asks for {0} without qop, which cannot work (-sess needs a cnonce)")]
    SessionWithoutQop(Algorithm),
    /// None of the challenges is Digest.
    #[error("the server did not offer Digest (it offered: {offered})")]
    NotOffered {
        /// The schemes the server did offer, comma-separated, or "nothing".
        offered: String,
    },
    /// A value we would send cannot go into a header (a control character, or empty).
    #[error("the Digest {0} cannot be sent: it is empty or holds a control character")]
    InvalidValue(&'static str),
    /// The body hash given for `auth-int` uses a different hash function from the session.
    #[error("the body hash is {given}, but this Digest session uses {session}")]
    BodyHashMismatch {
        /// The session's hash function.
        session: super::HashFunction,
        /// The body hash's.
        given: super::HashFunction,
    },
    /// The nonce count ran out (2³² requests on one nonce).
    #[error("the Digest nonce count is exhausted; start again with a new challenge")]
    NonceCountExhausted,
    /// `Authentication-Info` arrived before any request was signed.
    #[error("Authentication-Info arrived before any Digest request was sent")]
    NoRequestSent,
    /// `Authentication-Info` has `qop=auth-int`, which covers the response body, and no
    /// hash of that body was given.
    #[error("the server's Authentication-Info covers the response body (qop=auth-int); its hash is needed to check it")]
    ResponseBodyHashNeeded,
    /// A parameter of `Authentication-Info` does not match the request it answers.
    #[error(
        "the server's Authentication-Info has {param}={given:?}, but the request sent {sent:?}"
    )]
    InfoMismatch {
        /// `qop`, `nc` or `cnonce`.
        param: &'static str,
        /// What the server sent.
        given: String,
        /// What the request had.
        sent: String,
    },
    /// `rspauth` is not what the password gives.
    #[error("the server's rspauth did not verify: it may not know your password (or the response was tampered with)")]
    RspauthMismatch,
    /// `nextnonce` is empty.
    #[error("the server's Authentication-Info has an empty nextnonce")]
    EmptyNextNonce,
}

/// Which Digest challenges the client may answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestPolicy {
    /// Answer MD5 and MD5-sess challenges (`--allow-digest-md5`). Off by default: MD5 is
    /// broken, and a man in the middle can strip the stronger challenges.
    pub allow_md5: bool,
}

/// One `WWW-Authenticate: Digest` challenge, read into its parts (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`: which user database applies.
    pub realm: String,
    /// `domain`: the URIs the same credentials cover, space-separated in the header; empty
    /// when absent (then: the whole origin).
    pub domain: Vec<String>,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, sent back unchanged.
    pub opaque: Option<String>,
    /// `stale=true`: the previous request's nonce expired but its response was right, so
    /// retry with the new nonce without asking for the password again.
    pub stale: bool,
    /// `algorithm`, MD5 when absent.
    pub algorithm: Algorithm,
    /// Whether the challenge named the algorithm; if not, the answer does not either.
    pub algorithm_given: bool,
    /// The `qop` values offered that this crate knows; empty when the challenge has no
    /// `qop` (RFC 2069 compatibility).
    pub qop: Vec<Qop>,
    /// `charset=UTF-8`. Usernames and passwords are always encoded as UTF-8.
    pub charset_utf8: bool,
    /// `userhash=true`: send `H(username:realm)` instead of the username.
    pub userhash: bool,
}

impl DigestChallenge {
    /// Reads a challenge. Unknown parameters are ignored, as RFC 7616 asks.
    ///
    /// This does not apply a [`DigestPolicy`]; [`choose`] does.
    pub fn parse(challenge: &Challenge) -> Result<DigestChallenge, DigestError> {
        if !challenge.scheme.is(super::SCHEME) {
            return Err(DigestError::NotDigest(challenge.scheme.to_string()));
        }
        let data = &challenge.data;
        let realm = data
            .param("realm")
            .ok_or(DigestError::MissingParam("realm"))?;
        let nonce = data
            .param("nonce")
            .filter(|n| !n.is_empty())
            .ok_or(DigestError::MissingParam("nonce"))?;
        let (algorithm, algorithm_given) = match data.param("algorithm") {
            None => (Algorithm::Md5, false),
            Some(name) => (
                Algorithm::parse(name)
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(name.to_owned()))?,
                true,
            ),
        };
        let qop = match data.param("qop") {
            None => Vec::new(),
            Some(list) => {
                let mut known = Vec::new();
                for q in list.split(',').filter_map(|q| Qop::parse(q.trim())) {
                    if !known.contains(&q) {
                        known.push(q);
                    }
                }
                if known.is_empty() {
                    return Err(DigestError::UnsupportedQop(list.to_owned()));
                }
                known
            }
        };
        if qop.is_empty() && algorithm.is_session() {
            return Err(DigestError::SessionWithoutQop(algorithm));
        }
        let is_true = |name| {
            data.param(name)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        Ok(DigestChallenge {
            realm: realm.to_owned(),
            domain: data
                .param("domain")
                .map(|d| d.split_ascii_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            nonce: nonce.to_owned(),
            opaque: data.param("opaque").map(str::to_owned),
            stale: is_true("stale"),
            algorithm,
            algorithm_given,
            qop,
            charset_utf8: data
                .param("charset")
                .is_some_and(|c| c.eq_ignore_ascii_case("UTF-8")),
            userhash: is_true("userhash"),
        })
    }

    /// Whether this challenge says the previous nonce merely expired (`stale=true`).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// A rank for [`choose`]: algorithm strength first, then a challenge with `qop` over
    /// one without.
    fn rank(&self) -> (u8, bool) {
        (self.algorithm.strength(), !self.qop.is_empty())
    }
}

/// Picks the challenge to answer among all of a response's challenges (any scheme): the
/// strongest algorithm this policy allows, preferring one with `qop` among equals, and the
/// first of equals.
///
/// Fails with [`DigestError::NotOffered`] if there is no Digest challenge, with
/// [`DigestError::Md5NotAllowed`] if MD5 is all there is and it is not allowed, and
/// otherwise with the error of the first Digest challenge when none is usable.
pub fn choose(
    challenges: &[Challenge],
    policy: &DigestPolicy,
) -> Result<DigestChallenge, DigestError> {
    let mut best: Option<DigestChallenge> = None;
    let mut first_error = None;
    let mut md5_refused = false;
    for challenge in challenges.iter().filter(|c| c.scheme.is(super::SCHEME)) {
        match DigestChallenge::parse(challenge) {
            Ok(parsed)
                if parsed.algorithm.hash() == super::HashFunction::Md5 && !policy.allow_md5 =>
            {
                md5_refused = true;
            }
            Ok(parsed) => {
                if best.as_ref().is_none_or(|b| parsed.rank() > b.rank()) {
                    best = Some(parsed);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(best) = best {
        return Ok(best);
    }
    if md5_refused {
        return Err(DigestError::Md5NotAllowed);
    }
    Err(first_error.unwrap_or_else(|| DigestError::NotOffered {
        offered: offered_schemes(challenges),
    }))
}

fn offered_schemes(challenges: &[Challenge]) -> String {
    if challenges.is_empty() {
        return "nothing".to_owned();
    }
    let names: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    names.join(", ")
}

/// What a new 401 means for a session whose request carried credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rechallenge {
    /// `stale=true` with the same realm and hash function: the session took the new nonce;
    /// retry the request without asking for the password again.
    RetryWithNewNonce,
    /// The credentials were refused: ask for the password again (and start over with
    /// [`choose`] and a new session).
    CredentialsRejected,
}

/// The request the session signed last, to check `Authentication-Info` against.
#[derive(Debug, Clone)]
struct Sent {
    nonce: String,
    uri: String,
    nc: u32,
    cnonce: String,
    qop: Option<Qop>,
}

/// A Digest login to one origin and realm: the HA1, the current nonce and its count.
///
/// `Debug` does not show the HA1.
#[derive(Debug, Clone)]
pub struct DigestSession {
    challenge: DigestChallenge,
    username: String,
    ha1: Ha1,
    /// The `nc` of the last request on the current nonce; 0 before the first.
    nc: u32,
    /// For `-sess`: the cnonce that A1 was computed with, kept for the nonce's lifetime.
    session_cnonce: Option<String>,
    last: Option<Sent>,
}

impl DigestSession {
    /// A session for `challenge` (from [`choose`]) with a username and password.
    pub fn new(challenge: DigestChallenge, username: &str, password: &str) -> DigestSession {
        let ha1 = Ha1::compute(
            challenge.algorithm.hash(),
            username,
            &challenge.realm,
            password,
        );
        DigestSession::with_ha1(challenge, username, ha1)
    }

    /// A session from a stored HA1 instead of the password. The HA1 must be for the
    /// challenge's hash function and realm, or every response will be wrong.
    pub fn with_ha1(challenge: DigestChallenge, username: &str, ha1: Ha1) -> DigestSession {
        DigestSession {
            challenge,
            username: username.to_owned(),
            ha1,
            nc: 0,
            session_cnonce: None,
            last: None,
        }
    }

    /// The challenge currently answered (its nonce changes with `stale` and `nextnonce`).
    pub fn challenge(&self) -> &DigestChallenge {
        &self.challenge
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.challenge.realm
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.challenge.algorithm
    }

    /// The `nc` of the last request sent on the current nonce (0 before the first).
    pub fn nonce_count(&self) -> u32 {
        self.nc
    }

    /// The `Authorization` credentials for one request.
    ///
    /// - `method`: the request method, as sent (`GET`).
    /// - `uri`: the request-target exactly as it goes on the request line (`/dir/index.html`,
    ///   or the absolute URI when talking to a proxy); the server compares them.
    /// - `body`: the request body's hash, for `auth-int` (see [`BodyHasher`](super::BodyHasher)).
    ///   When given and the server offers `auth-int`, it is used; otherwise `auth`. If the
    ///   server offers only `auth-int` and no body is given, the body is taken to be empty.
    /// - `cnonce`: a fresh random string (16 random bytes in base64 or hex) from the caller.
    ///   For `-sess` algorithms the first cnonce of a nonce is kept for the nonce's
    ///   lifetime, since A1 depends on it.
    ///
    /// Each call counts one more request (`nc`).
    pub fn authorization(
        &mut self,
        method: &str,
        uri: &str,
        body: Option<&BodyHash>,
        cnonce: &str,
    ) -> Result<Credentials, DigestError> {
        let hash = self.challenge.algorithm.hash();
        if let Some(body) = body {
            if body.hash() != hash {
                return Err(DigestError::BodyHashMismatch {
                    session: hash,
                    given: body.hash(),
                });
            }
        }
        if cnonce.is_empty() || cnonce.contains(|c: char| c.is_control()) {
            return Err(DigestError::InvalidValue("cnonce"));
        }
        let offers = |q| self.challenge.qop.contains(&q);
        let qop = if self.challenge.qop.is_empty() {
            None
        } else if (body.is_some() && offers(Qop::AuthInt)) || !offers(Qop::Auth) {
            Some(Qop::AuthInt)
        } else {
            Some(Qop::Auth)
        };
        let nc = self
            .nc
            .checked_add(1)
            .ok_or(DigestError::NonceCountExhausted)?;
        let cnonce = if self.challenge.algorithm.is_session() {
            self.session_cnonce
                .get_or_insert_with(|| cnonce.to_owned())
                .clone()
        } else {
            cnonce.to_owned()
        };
        let response = ResponseInput {
            algorithm: self.challenge.algorithm,
            ha1: &self.ha1,
            nonce: &self.challenge.nonce,
            cnonce: &cnonce,
            qop,
            nc,
            method,
            uri,
            body_hex: body.map(BodyHash::as_hex),
        }
        .digest();

        let c = &self.challenge;
        let mut params = Vec::with_capacity(11);
        let mut push = |name: &'static str, value: String| {
            param(name, value)
                .map(|p| params.push(p))
                .map_err(|_| DigestError::InvalidValue(name))
        };
        if c.userhash {
            push("username", userhash(hash, &self.username, &c.realm))?;
        } else if self.username.is_ascii() {
            push("username", self.username.clone())?;
        } else {
            push("username*", encode_ext_value(&self.username))?;
        }
        push("realm", c.realm.clone())?;
        push("uri", uri.to_owned())?;
        if c.algorithm_given {
            push("algorithm", c.algorithm.as_str().to_owned())?;
        }
        push("nonce", c.nonce.clone())?;
        if let Some(qop) = qop {
            push("nc", format_nc(nc))?;
            push("cnonce", cnonce.clone())?;
            push("qop", qop.as_str().to_owned())?;
        }
        push("response", response)?;
        if let Some(opaque) = &c.opaque {
            push("opaque", opaque.clone())?;
        }
        if c.userhash {
            push("userhash", "true".to_owned())?;
        }
        if uri.is_empty() {
            return Err(DigestError::InvalidValue("uri"));
        }

        self.nc = nc;
        self.last = Some(Sent {
            nonce: c.nonce.clone(),
            uri: uri.to_owned(),
            nc,
            cnonce,
            qop,
        });
        Ok(Credentials::new(Scheme::DIGEST, AuthData::Params(params)))
    }

    /// Reads the challenges of a 401 that answered a request carrying this session's
    /// credentials.
    ///
    /// With a `stale=true` Digest challenge for the same realm and hash function, the
    /// session takes its nonce (and `opaque`, `qop`, `-sess` choice), resets `nc`, and says
    /// [`Rechallenge::RetryWithNewNonce`]. Otherwise the credentials were refused.
    pub fn handle_rechallenge(&mut self, challenges: &[Challenge]) -> Rechallenge {
        let renewal = challenges
            .iter()
            .filter_map(|c| DigestChallenge::parse(c).ok())
            .filter(|c| {
                c.stale
                    && c.realm == self.challenge.realm
                    && c.algorithm.hash() == self.challenge.algorithm.hash()
            })
            .max_by_key(|c| (c.algorithm == self.challenge.algorithm, c.rank()));
        match renewal {
            Some(challenge) => {
                self.adopt_nonce(challenge.nonce.clone());
                self.challenge = challenge;
                Rechallenge::RetryWithNewNonce
            }
            None => Rechallenge::CredentialsRejected,
        }
    }

    fn adopt_nonce(&mut self, nonce: String) {
        self.challenge.nonce = nonce;
        self.nc = 0;
        self.session_cnonce = None;
    }

    /// Checks `Authentication-Info` (RFC 7616 §3.5) against the last request signed.
    ///
    /// `qop`, `nc` and `cnonce`, when present, must match that request; `rspauth`, when
    /// present, must be right, or the server does not know the password (or someone
    /// tampered with the response). Only then is `nextnonce` adopted for the next
    /// requests. `response_body` is the hash of the response body, needed only when the
    /// server answers with `qop=auth-int`.
    ///
    /// Returns whether `rspauth` was present (and verified).
    pub fn verify_authentication_info(
        &mut self,
        info: &AuthenticationInfo,
        response_body: Option<&BodyHash>,
    ) -> Result<bool, DigestError> {
        let sent = self.last.as_ref().ok_or(DigestError::NoRequestSent)?;
        let sent_qop = sent.qop.map_or("", Qop::as_str);
        let nc = format_nc(sent.nc);
        let checks: [(&'static str, &str); 3] =
            [("qop", sent_qop), ("nc", &nc), ("cnonce", &sent.cnonce)];
        for (name, sent_value) in checks {
            if let Some(given) = info.param(name) {
                let same = if name == "cnonce" {
                    given == sent_value
                } else {
                    given.eq_ignore_ascii_case(sent_value)
                };
                if !same {
                    return Err(DigestError::InfoMismatch {
                        param: name,
                        given: given.to_owned(),
                        sent: sent_value.to_owned(),
                    });
                }
            }
        }
        let verified = match info.param("rspauth") {
            None => false,
            Some(rspauth) => {
                let body_hex = match (sent.qop, response_body) {
                    (Some(Qop::AuthInt), None) => return Err(DigestError::ResponseBodyHashNeeded),
                    (Some(Qop::AuthInt), Some(body)) => Some(body.as_hex()),
                    _ => None,
                };
                let expected = ResponseInput {
                    algorithm: self.challenge.algorithm,
                    ha1: &self.ha1,
                    nonce: &sent.nonce,
                    cnonce: &sent.cnonce,
                    qop: sent.qop,
                    nc: sent.nc,
                    method: "",
                    uri: &sent.uri,
                    body_hex,
                }
                .digest();
                if !hex_eq(&expected, rspauth) {
                    return Err(DigestError::RspauthMismatch);
                }
                true
            }
        };
        if let Some(next) = info.param("nextnonce") {
            if next.is_empty() {
                return Err(DigestError::EmptyNextNonce);
            }
            if next != self.challenge.nonce {
                self.adopt_nonce(next.to_owned());
            }
        }
        Ok(verified)
    }
}

/// RFC 8187 `ext-value` for `username*`: `UTF-8''` and the percent-encoded bytes.
pub(crate) fn encode_ext_value(value: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads an RFC 8187 `ext-value` in UTF-8 (`UTF-8'lang'J%C3%A4s%C3%B8n`); `None` for
/// another charset, bad escapes or invalid UTF-8.
pub(crate) fn decode_ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return None;
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let digits = tail.get(..2)?;
            let text = std::str::from_utf8(digits).ok()?;
            if !digits.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            bytes.push(u8::from_str_radix(text, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

impl fmt::Display for Rechallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rechallenge::RetryWithNewNonce => "the nonce expired; retrying with the new one",
            Rechallenge::CredentialsRejected => "the server refused the Digest credentials",
        })
    }
}
