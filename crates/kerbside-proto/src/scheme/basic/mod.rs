//! Basic authentication (RFC 7617): the user and password, base64-encoded, and the
//! `htpasswd` file ([`htpasswd`]) a server checks them against.
//!
//! Basic sends the password itself on every request; use it over TLS only (the policy in
//! [`crate::policy`] refuses it over plain HTTP unless told otherwise). User and password are
//! encoded as UTF-8, and the server's challenge says so with `charset="UTF-8"`.
//!
//! ```
//! use kerbside_proto::scheme::basic;
//!
//! let credentials = basic::credentials("Aladdin", "open sesame").unwrap();
//! assert_eq!(credentials.to_header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
//!
//! let login = basic::decode(&credentials).unwrap();
//! assert_eq!(login.user, "Aladdin");
//! assert_eq!(login.password(), "open sesame");
//! assert!(!format!("{login:?}").contains("sesame"));
//!
//! assert_eq!(
//!     basic::challenge("intranet").unwrap().to_header_value(),
//!     "Basic realm=intranet, charset=UTF-8"
//! );
//! ```

pub mod htpasswd;

#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::header::{write_quoted_string, AuthData, AuthParam, Challenge, Credentials, Scheme};

/// The scheme name as it appears on the wire.
pub const SCHEME: &str = "Basic";

/// Why Basic credentials cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicError {
    /// The user name has a `:`, which would end it early (RFC 7617 §2).
    #[error("a Basic user name cannot contain ':'")]
    ColonInUser,
    /// The user or password has a control character, which RFC 7617 forbids.
    #[error("the Basic {0} contains a control character")]
    ControlCharacter(&'static str),
    /// The credentials are not Basic.
    #[error("the credentials are {0}, not Basic")]
    NotBasic(String),
    /// There is no token68 after `Basic`.
    #[error("the Basic credentials are empty or not a single base64 token")]
    NoToken,
    /// The token is not valid base64.
    #[error("the Basic credentials are not valid base64")]
    InvalidBase64,
    /// The decoded bytes are not UTF-8.
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    /// The decoded text has no `:` between user and password.
    #[error("the Basic credentials have no ':' between user and password")]
    NoColon,
    /// The realm cannot be sent in a header.
    #[error("the realm {0:?} cannot be sent in a header (it holds a control character)")]
    InvalidRealm(String),
}

/// A user and password read from `Authorization: Basic`. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user name.
    pub user: String,
    password: String,
}

impl BasicCredentials {
    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `Authorization: Basic base64(user ":" password)`, in UTF-8 (RFC 7617 §2.1).
pub fn credentials(user: &str, password: &str) -> Result<Credentials, BasicError> {
    if user.contains(':') {
        return Err(BasicError::ColonInUser);
    }
    if has_control(user) {
        return Err(BasicError::ControlCharacter("user name"));
    }
    if has_control(password) {
        return Err(BasicError::ControlCharacter("password"));
    }
    let token = STANDARD.encode(format!("{user}:{password}"));
    Ok(Credentials::new(Scheme::BASIC, AuthData::Token68(token)))
}

/// Reads `Authorization: Basic …`: base64 (padding optional), UTF-8, split at the first
/// `:`. Control characters are refused, as RFC 7617 forbids them.
pub fn decode(credentials: &Credentials) -> Result<BasicCredentials, BasicError> {
    if !credentials.scheme.is(SCHEME) {
        return Err(BasicError::NotBasic(credentials.scheme.to_string()));
    }
    let bytes = credentials
        .decode_token68()
        .map_err(|_| BasicError::InvalidBase64)?
        .ok_or(BasicError::NoToken)?;
    let text = String::from_utf8(bytes).map_err(|_| BasicError::NotUtf8)?;
    let (user, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    if has_control(user) {
        return Err(BasicError::ControlCharacter("user name"));
    }
    if has_control(password) {
        return Err(BasicError::ControlCharacter("password"));
    }
    Ok(BasicCredentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// The challenge `Basic realm="…", charset="UTF-8"` (RFC 7617 §2.1).
pub fn challenge(realm: &str) -> Result<Challenge, BasicError> {
    let params = vec![
        AuthParam::new("realm", realm).map_err(|_| BasicError::InvalidRealm(realm.to_owned()))?,
        AuthParam {
            name: "charset".into(),
            value: "UTF-8".into(),
        },
    ];
    Ok(Challenge::new(Scheme::BASIC, AuthData::Params(params)))
}

/// The challenge as RFC 7617 writes it, with both values quoted:
/// `Basic realm="intranet", charset="UTF-8"`. Some old clients read the realm only when
/// it is quoted.
pub fn challenge_header_value(realm: &str) -> Result<String, BasicError> {
    challenge(realm)?;
    let mut out = String::from("Basic realm=");
    write_quoted_string(&mut out, realm);
    out.push_str(", charset=\"UTF-8\"");
    Ok(out)
}

/// The `basic` fuzz target: `data` as `Authorization` credentials, and as `user:password`
/// text; what decodes encodes back into credentials that decode the same.
pub(crate) fn fuzz_check(data: &[u8]) {
    let round_trip = |user: &str, password: &str| {
        if let Ok(encoded) = credentials(user, password) {
            let reparsed = Credentials::parse(encoded.to_header_value().as_bytes());
            let decoded = reparsed.as_ref().map(decode);
            match decoded {
                Ok(Ok(login)) => {
                    assert_eq!((login.user.as_str(), login.password()), (user, password))
                }
                other => panic!("{user:?}:{password:?} did not round-trip: {other:?}"),
            }
        }
    };
    if let Ok(credentials) = Credentials::parse(data) {
        if let Ok(login) = decode(&credentials) {
            round_trip(&login.user, login.password());
        }
    }
    if let Some((user, password)) = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.split_once(':'))
    {
        round_trip(user, password);
    }
    if let Ok(realm) = std::str::from_utf8(data) {
        if let Ok(value) = challenge_header_value(realm) {
            let parsed = crate::header::parse_challenges([value.as_bytes()]);
            assert_eq!(parsed, Ok(vec![challenge(realm).expect("checked above")]));
        }
    }
}
