//! [`Authenticated`]: who the client is, once the layer has checked. Proxy, CGI,
//! forward-auth and axum handlers read it from the request's extensions. A leaf: it
//! imports nothing from the crate.

use kerbside_proto::SchemeKind;

/// The authenticated client, inserted into the request's extensions. With the `axum`
/// feature it is an extractor: a handler taking `Authenticated` answers `401` when no
/// one logged in (the layer let the request through anonymously, or did not run);
/// `Option<Authenticated>` takes both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authenticated {
    /// The client's name: a Kerberos principal as the KDC names it (`alice@EXAMPLE.TEST`,
    /// also for Basic checked against the KDC), or a user as the gate's users file spells
    /// it (NTLM, Digest, Basic with an htpasswd file), whatever case or domain the client
    /// typed.
    pub principal: String,
    /// The HTTP authentication scheme the client used: `Negotiate` (Kerberos, or NTLM
    /// inside SPNEGO), `NTLM`, `Digest` or `Basic`; `SchemeKind::name` gives the name CGI's
    /// `AUTH_TYPE` and the scheme header carry.
    pub scheme: SchemeKind,
    /// Whether `principal` is a Kerberos principal (Negotiate with Kerberos, Basic checked
    /// against the KDC), which a CGI user map turns into a user name; `false` for a name
    /// from the gate's own users files (NTLM, also inside Negotiate; Digest; Basic with an
    /// htpasswd file), which is already a user name and is passed as it is.
    pub kerberos: bool,
    /// The realm of a Kerberos principal (the part after the last unescaped `@`),
    /// `None` for a name from the gate's users files.
    pub realm: Option<String>,
    /// The groups of the access rules' groups file that hold `principal`, sorted.
    pub groups: Vec<String>,
    /// Whether the login was bound to this TLS channel (RFC 5929
    /// `tls-server-end-point`): the token carried bindings matching the server's
    /// certificate, so it cannot have been relayed through another TLS endpoint.
    pub channel_bound: bool,
}

impl Authenticated {
    /// An identity with no groups and no channel binding; `realm` is read from a
    /// Kerberos principal.
    pub fn new(principal: impl Into<String>, scheme: SchemeKind, kerberos: bool) -> Self {
        let principal = principal.into();
        let realm = kerberos.then(|| realm_of(&principal)).flatten();
        Self {
            principal,
            scheme,
            kerberos,
            realm,
            groups: Vec::new(),
            channel_bound: false,
        }
    }
}

/// The realm of a principal: what follows its last `@` that is not escaped.
fn realm_of(principal: &str) -> Option<String> {
    let bytes = principal.as_bytes();
    let mut at = None;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'@') => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| principal[i + 1..].to_owned())
        .filter(|r| !r.is_empty())
}

/// How this request's [`Authenticated`] identity was established, inserted into the
/// request's extensions beside it (for pages such as the gate's whoami). Holds no
/// credential: no token, no cookie value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginDetails {
    /// Where the identity came from on this request.
    pub via: LoginVia,
    /// When the session cookie that carried it expires (only for
    /// [`LoginVia::SessionCookie`]).
    pub session_expires: Option<std::time::SystemTime>,
}

/// Where a request's identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginVia {
    /// Credentials on this request (a token, a password).
    Credentials,
    /// An earlier login on the same connection (connection mode, NTLM).
    Connection,
    /// The gate's session cookie.
    SessionCookie,
}

impl LoginVia {
    /// `credentials`, `connection` or `session-cookie`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::Connection => "connection",
            Self::SessionCookie => "session-cookie",
        }
    }
}
