//! How a [`Client`](super::Client) is configured: [`ClientConfig`] and its
//! [`AuthSettings`].

use std::time::Duration;

use kerbside_gssapi::{ClientCredentials, Delegation};
use kerbside_proto::scheme::negotiate::client::DEFAULT_MAX_LEGS;
use kerbside_proto::{MutualAuth, SchemePolicy, TargetNameSettings};

use crate::proxy::ProxySettings;
use crate::tls::TlsSettings;

/// When to send a Negotiate token without waiting for a 401 (decided by the
/// request driver of `kerbside-proto`).
pub use kerbside_proto::driver::Preemptive;

/// How the client authenticates.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Which schemes may be answered, and where credentials may go.
    pub schemes: SchemePolicy,
    /// How strictly to check the server's final token.
    pub mutual: MutualAuth,
    /// How the Kerberos service name is chosen.
    pub target: TargetNameSettings,
    /// Whether to forward the user's ticket-granting ticket.
    pub delegation: Delegation,
    /// Where the user's Kerberos credentials come from.
    pub credentials: ClientCredentials,
    /// Pass the TLS `tls-server-end-point` channel binding to GSSAPI on HTTPS.
    pub channel_binding: bool,
    /// When to skip the first 401.
    pub preemptive: Preemptive,
    /// How many tokens one exchange may send.
    pub max_legs: u32,
    /// How many 401 responses one request may meet before the client gives up.
    pub max_auth_rounds: u32,
    /// User names and passwords for NTLM, Digest and Basic.
    pub passwords: crate::keyring::CredentialSources,
    /// Answer Digest challenges that offer only MD5 (old servers).
    pub allow_digest_md5: bool,
    /// With no Kerberos ticket, answer `Negotiate` with NTLM inside SPNEGO (weaker
    /// than Kerberos, so off by default).
    pub ntlm_in_negotiate: bool,
}

impl Default for AuthSettings {
    /// Negotiate disabled (no scheme enabled): the 401 is returned as is.
    fn default() -> Self {
        Self {
            schemes: SchemePolicy::only(&[]),
            mutual: MutualAuth::Optional,
            target: TargetNameSettings::default(),
            delegation: Delegation::None,
            credentials: ClientCredentials::Default,
            channel_binding: true,
            preemptive: Preemptive::Learned,
            max_legs: DEFAULT_MAX_LEGS,
            max_auth_rounds: 4,
            passwords: crate::keyring::CredentialSources::default(),
            allow_digest_md5: false,
            ntlm_in_negotiate: false,
        }
    }
}

/// Everything a [`Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Certificate checking.
    pub tls: TlsSettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// Offer HTTP/2 by ALPN on TLS.
    pub http2: bool,
    /// Request bodies up to this size are kept in memory and sent again when a
    /// handshake needs it; larger ones are sent once, after `100 Continue`.
    pub replay_limit: usize,
    /// The most bytes of a 401 body read (and dropped) to keep a connection.
    pub max_challenge_body: usize,
    /// How long to wait for `100 Continue` before sending a large body anyway.
    pub continue_timeout: Duration,
    /// Forward proxies.
    pub proxy: ProxySettings,
    /// Certificate checking of `https://` proxies (curl's `--proxy-cacert`,
    /// `--proxy-insecure`): the system's roots by default, not [`tls`](Self::tls).
    pub proxy_tls: TlsSettings,
    /// Keep cookies (session cookies of servers such as mod_auth_gssapi's
    /// `GssapiUseSessions`) in memory for the life of the client; never written to
    /// disk, `Secure` ones only sent over TLS.
    pub cookies: bool,
    /// The longest a new connection may take: name lookup, TCP connect, a proxy's
    /// `CONNECT` (and its authentication) and the TLS handshake. `None` waits for
    /// ever; the default is [`DEFAULT_CONNECT_TIMEOUT`] (curl's `--connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// The longest [`Client::send`] may take: connections, every authentication
    /// leg and the final response's head. The response body is read by the caller,
    /// who bounds that (as `kerbside fetch -m` does). `None` (the default) sets no
    /// deadline beyond the connect timeout (curl's `--max-time`).
    pub timeout: Option<Duration>,
    /// Answer an origin's `401` (on by default). Off, a `401` is returned as it
    /// came, while a proxy's `407` is still answered: for a forward proxy that
    /// authenticates to its upstream only.
    pub origin_auth: bool,
}

/// The connect timeout of [`ClientConfig::default`]: 30 seconds (curl's is 300).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tls: TlsSettings::default(),
            auth: AuthSettings::default(),
            http2: true,
            replay_limit: 1024 * 1024,
            max_challenge_body: 1024 * 1024,
            continue_timeout: Duration::from_secs(1),
            proxy: ProxySettings::default(),
            proxy_tls: TlsSettings::default(),
            cookies: true,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            timeout: None,
            origin_auth: true,
        }
    }
}
