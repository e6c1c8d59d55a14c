//! What the layer is configured with: the authentication mode, the channel-binding
//! policy, and the settings of each scheme.

use super::*;

/// How clients stay authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication: requests pass anonymously (anonymous mounts, benchmarks).
    None,
    /// Every request carries a fresh Negotiate token (the default).
    #[default]
    PerRequest,
    /// After one handshake the identity stays with the TCP connection
    /// (`Persistent-Auth: true`, as IIS and mod_auth_gssapi's `GssapiConnectionBound`).
    /// HTTP/2 clients are told `HTTP_1_1_REQUIRED`.
    Connection,
    /// After one handshake a session cookie (AEAD-sealed) stands for the identity.
    Cookie,
}

impl std::str::FromStr for AuthMode {
    type Err = crate::ParseSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "per-request" => Ok(Self::PerRequest),
            "connection" => Ok(Self::Connection),
            "cookie" => Ok(Self::Cookie),
            other => Err(crate::ParseSettingError::new(
                "auth mode",
                other,
                "none, per-request, connection or cookie",
            )),
        }
    }
}

impl From<AuthMode> for kerbside_proto::server_decision::ServerMode {
    fn from(mode: AuthMode) -> Self {
        match mode {
            AuthMode::None => Self::None,
            AuthMode::PerRequest => Self::PerRequest,
            AuthMode::Connection => Self::Connection,
            AuthMode::Cookie => Self::Cookie,
        }
    }
}

/// Whether tokens must be bound to the TLS channel (RFC 5929 `tls-server-end-point`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingPolicy {
    /// Bindings are not checked.
    Off,
    /// Bindings the client sends must match; tokens without them are accepted.
    #[default]
    Optional,
    /// Tokens must carry matching bindings.
    Required,
}

impl std::str::FromStr for ChannelBindingPolicy {
    type Err = crate::ParseSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(crate::ParseSettingError::new(
                "channel-binding policy",
                other,
                "off, optional or required",
            )),
        }
    }
}

impl From<ChannelBindingPolicy> for kerbside_proto::server_decision::BindingPolicy {
    fn from(policy: ChannelBindingPolicy) -> Self {
        match policy {
            ChannelBindingPolicy::Off => Self::Off,
            ChannelBindingPolicy::Optional => Self::Optional,
            ChannelBindingPolicy::Required => Self::Required,
        }
    }
}

/// What the layer is configured with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NegotiateConfig {
    /// How clients stay authenticated.
    pub mode: AuthMode,
    /// The keytab's credentials (unused in [`AuthMode::None`]).
    pub acceptor: Option<NegotiateAcceptor>,
    /// Which services a ticket may be for: with a list or `{HOSTNAME}` the acceptor
    /// takes any key of its keytab and this decides, per request, against the ticket's
    /// service and the request's host ([`AcceptorNames::check`]).
    ///
    /// [`AcceptorNames::check`]: kerbside_proto::acceptor_names::AcceptorNames::check
    pub acceptor_names: kerbside_proto::acceptor_names::AcceptorNames,
    /// Where accepted authenticators are kept so a restart does not forget them
    /// (`NegotiateAcceptor::with_replay_file`); `None` is the default place, under
    /// `KRB5RCACHEDIR` or `/var/tmp`. If the file cannot be used, MIT's replay
    /// cache checks every token instead (slower, as safe), and a warning says why.
    pub replay_cache: Option<std::path::PathBuf>,
    /// Session cookies (required by [`AuthMode::Cookie`]).
    pub sessions: Option<Arc<SessionCodec>>,
    /// Mark session cookies `Secure` (turn off only for plain-HTTP tests).
    pub secure_cookies: bool,
    /// Who may do what.
    pub access: Arc<AccessRules>,
    /// Channel bindings.
    pub channel_binding: ChannelBindingPolicy,
    /// At most this many tokens are accepted at once; more wait.
    pub max_handshakes: usize,
    /// Counters for `/metrics`.
    pub metrics: Option<GateMetrics>,
    /// Accept Basic credentials too, checked against the KDC (off by default; only
    /// over TLS).
    pub basic_fallback: Option<BasicFallback>,
    /// Accept NTLM against a users file (offered in connection mode only).
    pub ntlm: Option<crate::passwords::NtlmSettings>,
    /// Accept Digest against an htdigest file.
    pub digest: Option<crate::passwords::DigestSettings>,
    /// Accept Basic against an htpasswd file (before the KDC fallback, if both).
    pub basic_users: Option<crate::passwords::BasicUsers>,
    /// The realm of the Basic challenge when only `basic_users` is set.
    pub basic_realm: String,
    /// Where credentials clients delegate are kept for CGI programs; `None` (the
    /// default) keeps none.
    pub delegation: Option<Arc<crate::delegation::DelegationStore>>,
    /// Names for the Active Directory groups of a PAC (through winbind); `None` keeps
    /// them as SIDs.
    pub group_names: Option<crate::ad_groups::GroupNames>,
    /// A replay cache shared with the other gates behind one balancer (e.g.
    /// [`RedisReplay`](crate::redis_replay::RedisReplay)), asked after this gate's
    /// memory cache; `None` (the default): this gate's caches only.
    pub shared_replay: Option<SharedReplayConfig>,
}

/// A replay cache shared between gates, and what to do while it does not answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SharedReplayConfig {
    /// The store.
    pub store: Arc<dyn kerbside_gssapi::SharedReplay>,
    /// Refuse Kerberos logins while it does not answer (the default), or let this
    /// gate's memory cache decide alone.
    pub when_unavailable: kerbside_gssapi::WhenUnavailable,
}

impl SharedReplayConfig {
    /// `store`, refusing logins while it does not answer.
    pub fn new(store: Arc<dyn kerbside_gssapi::SharedReplay>) -> Self {
        Self {
            store,
            when_unavailable: kerbside_gssapi::WhenUnavailable::Refuse,
        }
    }
}

/// Basic authentication as a fallback for clients without Kerberos: the user name
/// and password get a ticket from the KDC **and** that ticket is checked against the
/// gate's own keytab, so a fake KDC cannot vouch for a user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BasicFallback {
    /// The `realm` shown in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
    /// The service the ticket is asked for (a key the keytab holds); by default
    /// `HTTP@<host of the request>`.
    pub service: Option<String>,
    /// The NetBIOS name of the realm's Active Directory domain: a user name typed as
    /// `NAME\user` is the principal `user` of the default realm. `None` refuses such
    /// names.
    pub netbios_domain: Option<String>,
}

impl NegotiateConfig {
    /// Per-request Negotiate with this acceptor; any authenticated principal allowed.
    pub fn per_request(acceptor: NegotiateAcceptor) -> Self {
        Self::base(Some(acceptor), true)
    }

    /// Per request, with this acceptor (if any), no other scheme, the default limits,
    /// any authenticated principal allowed.
    pub(crate) fn base(acceptor: Option<NegotiateAcceptor>, secure_cookies: bool) -> Self {
        Self {
            mode: AuthMode::PerRequest,
            acceptor,
            replay_cache: None,
            sessions: None,
            secure_cookies,
            access: Arc::new(AccessRules::allow_all_authenticated()),
            channel_binding: ChannelBindingPolicy::Optional,
            max_handshakes: 64,
            metrics: None,
            basic_fallback: None,
            ntlm: None,
            digest: None,
            basic_users: None,
            basic_realm: "kerbside".to_owned(),
            delegation: None,
            group_names: None,
            shared_replay: None,
            acceptor_names: Default::default(),
        }
    }
}
