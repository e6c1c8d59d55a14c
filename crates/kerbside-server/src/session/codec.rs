//! Sealing a session into a cookie value and opening it again, and the
//! `Set-Cookie` and `Cookie` headers that carry it.

use super::*;

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
/// documentation](super) for the format and the guarantees.
pub struct SessionCodec {
    pub(super) keys: SessionKeys,
    cookie_name: String,
    max_lifetime: Duration,
    /// [`CONTEXT`] then the cookie name, built once rather than per request.
    pub(super) associated_data: Vec<u8>,
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
    /// only, see the [module documentation](super)) and `SameSite=Lax`.
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
