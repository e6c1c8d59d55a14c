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
    /// also for Basic checked against the KDC; for an Active Directory user, the account's
    /// `sAMAccountName@REALM` from the PAC, whatever form or case was typed at kinit), or a
    /// user as the gate's users file spells it (NTLM, Digest, Basic with an htpasswd file),
    /// whatever case or domain the client typed.
    pub principal: String,
    /// The HTTP authentication scheme the client used: `Negotiate` (Kerberos, or NTLM
    /// inside SPNEGO), `NTLM`, `Digest` or `Basic`; `SchemeKind::name` gives the name CGI's
    /// `AUTH_TYPE` and the scheme header carry.
    pub scheme: SchemeKind,
    /// Whether `principal` is a Kerberos principal (Negotiate with Kerberos, Basic checked
    /// against the KDC, and NTLM checked by the domain controller with `--ntlm-winbind`,
    /// which names the account as Kerberos does), which a user map turns into a user name;
    /// `false` for a name from the gate's own users files (NTLM, also inside Negotiate;
    /// Digest; Basic with an htpasswd file), which is already a user name and is passed as
    /// it is.
    pub kerberos: bool,
    /// The realm of a Kerberos principal (the part after the last unescaped `@`),
    /// `None` for a name from the gate's users files.
    pub realm: Option<String>,
    /// The groups of the access rules' groups file that hold `principal`, sorted, then
    /// the Active Directory groups of [`domain`](Self::domain) by name (`ADEXAMPLE\developers`),
    /// or by SID where the name could not be found.
    pub groups: Vec<String>,
    /// Whether the login was bound to this TLS channel (RFC 5929
    /// `tls-server-end-point`): the token carried bindings matching the server's
    /// certificate, so it cannot have been relayed through another TLS endpoint.
    pub channel_bound: bool,
    /// The Active Directory account, from the PAC of the client's Kerberos ticket (checked
    /// by GSSAPI); `None` for a ticket without one (an MIT KDC's) and for other schemes.
    pub domain: Option<DomainAccount>,
}

/// An Active Directory account, as the PAC of its ticket describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainAccount {
    /// The account's `sAMAccountName`, in the directory's case (`bob`).
    pub account_name: String,
    /// The NetBIOS name of its domain (`ADEXAMPLE`).
    pub netbios_domain: String,
    /// Its user principal name (`bob@ad.example.test`), when the PAC has one.
    pub upn: Option<String>,
    /// Its SID (`S-1-5-21-…-1104`).
    pub sid: Option<String>,
    /// The groups it is in, nested membership included, each once.
    pub groups: Vec<DomainGroup>,
}

impl DomainAccount {
    /// An account with no UPN, SID or groups.
    pub fn new(account_name: impl Into<String>, netbios_domain: impl Into<String>) -> Self {
        Self {
            account_name: account_name.into(),
            netbios_domain: netbios_domain.into(),
            upn: None,
            sid: None,
            groups: Vec::new(),
        }
    }

    /// `DOMAIN\account`, the down-level logon name (`ADEXAMPLE\bob`).
    pub fn down_level_name(&self) -> String {
        format!("{}\\{}", self.netbios_domain, self.account_name)
    }
}

/// A group of an Active Directory account: its SID, and its name once the domain was
/// asked (`None` if it could not be resolved in time or at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainGroup {
    /// `S-1-5-21-…-1105`.
    pub sid: String,
    /// `ADEXAMPLE\developers`.
    pub name: Option<String>,
}

impl DomainGroup {
    /// The name if known, else the SID: what the groups header and variable carry.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.sid)
    }
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
            domain: None,
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
