//! [`NegotiateLayerBuilder`]: a [`NegotiateLayer`] from settings that are checked
//! together, so a combination that cannot work is refused when the server starts,
//! with a [`ConfigError`] naming it, instead of failing every login later.

use std::sync::Arc;

use kerbside_gssapi::NegotiateAcceptor;

use crate::access::AccessRules;
use crate::auth::{AuthMode, BasicFallback, ChannelBindingPolicy, NegotiateConfig, NegotiateLayer};
use crate::metrics::GateMetrics;
use crate::passwords::{BasicUsers, DigestSettings, NtlmSettings};
use crate::per_connection::ConnectionSupply;
use crate::session::SessionCodec;

/// A combination of settings [`NegotiateLayerBuilder::build`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A mode that authenticates needs something to authenticate with.
    #[error(
        "nothing to authenticate with: give a keytab (acceptor), or a users file for NTLM, \
         Digest or Basic, or use AuthMode::None"
    )]
    NoMechanism,
    /// Cookie mode seals the identity with a key the layer was not given.
    #[error("cookie mode needs a session key: call sessions(SessionCodec) on the builder")]
    CookieModeWithoutKey,
    /// Cookie mode's cookies come from a Kerberos login.
    #[error("cookie mode needs a keytab: session cookies are made by Kerberos logins")]
    CookieModeWithoutKeytab,
    /// NTLM authenticates the connection, not the request.
    #[error(
        "NTLM authenticates connections: it needs AuthMode::Connection (and PerConnection \
         on every connection)"
    )]
    NtlmWithoutConnectionMode,
    /// Basic sends the password in the clear on every request.
    #[error(
        "Basic sends passwords in the clear: serve TLS and say so with served_over_tls(true), \
         or allow it on plain HTTP explicitly with allow_basic_over_plain_http()"
    )]
    BasicWithoutTls,
    /// Bindings name the TLS certificate; there is none on plain HTTP.
    #[error(
        "channel bindings required, but the server does not serve TLS: serve TLS and say so \
         with served_over_tls(true), or use ChannelBindingPolicy::Optional"
    )]
    ChannelBindingWithoutTls,
    /// The layer keeps state per connection, and the builder was not told how each
    /// request will carry its connection's [`PerConnection`](crate::PerConnection).
    #[error(
        "{needs} keeps state per connection: say how each connection's PerConnection is \
         made with per_connection(ConnectionSupply::AxumConnectInfo) and serve the app with \
         into_make_service_with_connect_info::<PerConnection>(), or \
         per_connection(ConnectionSupply::Layer) and wrap each accepted connection's service \
         in PerConnection::new(peer)"
    )]
    NoPerConnection {
        /// What needs it: connection mode (which NTLM needs too), or required
        /// channel bindings.
        needs: &'static str,
    },
    /// `max_handshakes` of 0 would refuse every login.
    #[error("max_handshakes must be at least 1")]
    NoHandshakes,
}

/// Builds a [`NegotiateLayer`], checking the settings together.
///
/// Connection mode, NTLM and required channel bindings keep state per connection:
/// say how every connection gets its [`PerConnection`](crate::PerConnection) with
/// [`per_connection`](Self::per_connection), or the build fails with
/// [`ConfigError::NoPerConnection`] (a request that comes without one anyway gets
/// `503` and a log line saying what to add).
///
/// ```no_run
/// use kerbside_gssapi::{AcceptorConfig, NegotiateAcceptor};
/// use kerbside_server::{AuthMode, ConnectionSupply, NegotiateLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let acceptor = NegotiateAcceptor::new(&AcceptorConfig::default())?;
/// let layer = NegotiateLayer::builder()
///     .acceptor(acceptor)
///     .mode(AuthMode::Connection)
///     // axum::serve(listener, app.into_make_service_with_connect_info::<PerConnection>())
///     .per_connection(ConnectionSupply::AxumConnectInfo)
///     .served_over_tls(true)
///     .build()?;
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NegotiateLayerBuilder {
    config: NegotiateConfig,
    tls: bool,
    basic_over_plain_http: bool,
    supply: Option<ConnectionSupply>,
}

impl Default for NegotiateLayerBuilder {
    fn default() -> Self {
        Self {
            config: NegotiateConfig::base(None, false),
            tls: false,
            basic_over_plain_http: false,
            supply: None,
        }
    }
}

impl NegotiateLayer {
    /// A builder, starting from per-request Negotiate with nothing to authenticate
    /// with yet.
    pub fn builder() -> NegotiateLayerBuilder {
        NegotiateLayerBuilder::default()
    }
}

impl NegotiateLayerBuilder {
    /// The keytab's credentials, for Negotiate (Kerberos).
    #[must_use]
    pub fn acceptor(mut self, acceptor: NegotiateAcceptor) -> Self {
        self.config.acceptor = Some(acceptor);
        self
    }

    /// How clients stay authenticated (default: a token on every request).
    #[must_use]
    pub fn mode(mut self, mode: AuthMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Whether the server serves TLS (default: no). It decides whether Basic and
    /// required channel bindings are allowed and whether cookies are `Secure`.
    #[must_use]
    pub fn served_over_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The key that seals session cookies (needed by [`AuthMode::Cookie`]).
    #[must_use]
    pub fn sessions(mut self, codec: Arc<SessionCodec>) -> Self {
        self.config.sessions = Some(codec);
        self
    }

    /// Where accepted authenticators are kept across restarts (see
    /// [`NegotiateConfig::replay_cache`]).
    #[must_use]
    pub fn replay_cache(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.replay_cache = Some(path.into());
        self
    }

    /// A replay cache shared with the other servers behind one balancer (e.g.
    /// [`RedisReplay`](crate::redis_replay::RedisReplay)), asked after this server's
    /// memory cache (see [`NegotiateConfig::shared_replay`]).
    #[must_use]
    pub fn shared_replay(mut self, shared: crate::auth::SharedReplayConfig) -> Self {
        self.config.shared_replay = Some(shared);
        self
    }

    /// Who may do what (default: any authenticated client, everywhere).
    #[must_use]
    pub fn access(mut self, rules: Arc<AccessRules>) -> Self {
        self.config.access = rules;
        self
    }

    /// Whether tokens must be bound to the TLS channel (default: optional).
    #[must_use]
    pub fn channel_binding(mut self, policy: ChannelBindingPolicy) -> Self {
        self.config.channel_binding = policy;
        self
    }

    /// At most this many tokens are checked at once; more wait (default 64).
    #[must_use]
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.config.max_handshakes = n;
        self
    }

    /// Counters for `/metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: GateMetrics) -> Self {
        self.config.metrics = Some(metrics);
        self
    }

    /// Basic checked against the KDC, for clients without Kerberos.
    #[must_use]
    pub fn basic_fallback(mut self, fallback: BasicFallback) -> Self {
        self.config.basic_fallback = Some(fallback);
        self
    }

    /// Basic against an htpasswd file, with this realm in the challenge.
    #[must_use]
    pub fn basic_users(mut self, users: BasicUsers, realm: impl Into<String>) -> Self {
        self.config.basic_users = Some(users);
        self.config.basic_realm = realm.into();
        self
    }

    /// Lets Basic run on plain HTTP, where anyone on the path reads the password.
    #[must_use]
    pub fn allow_basic_over_plain_http(mut self) -> Self {
        self.basic_over_plain_http = true;
        self
    }

    /// NTLM against a users file (needs [`AuthMode::Connection`]).
    #[must_use]
    pub fn ntlm(mut self, settings: NtlmSettings) -> Self {
        self.config.ntlm = Some(settings);
        self
    }

    /// Digest against an htdigest file.
    #[must_use]
    pub fn digest(mut self, settings: DigestSettings) -> Self {
        self.config.digest = Some(settings);
        self
    }

    /// How each request will carry its connection's
    /// [`PerConnection`](crate::PerConnection); required by connection mode, NTLM and
    /// required channel bindings, which keep state per connection.
    #[must_use]
    pub fn per_connection(mut self, supply: ConnectionSupply) -> Self {
        self.supply = Some(supply);
        self
    }

    /// Checks the settings together and makes the layer.
    pub fn build(self) -> Result<NegotiateLayer, ConfigError> {
        let supply = self.supply;
        let config = self.check()?;
        Ok(NegotiateLayer::with_supply(config, supply))
    }

    fn check(mut self) -> Result<NegotiateConfig, ConfigError> {
        let c = &self.config;
        if c.mode != AuthMode::None
            && c.acceptor.is_none()
            && c.ntlm.is_none()
            && c.digest.is_none()
            && c.basic_users.is_none()
        {
            return Err(ConfigError::NoMechanism);
        }
        if c.mode == AuthMode::Cookie {
            if c.sessions.is_none() {
                return Err(ConfigError::CookieModeWithoutKey);
            }
            if c.acceptor.is_none() {
                return Err(ConfigError::CookieModeWithoutKeytab);
            }
        }
        if c.ntlm.is_some() && c.mode != AuthMode::Connection {
            return Err(ConfigError::NtlmWithoutConnectionMode);
        }
        if (c.basic_fallback.is_some() || c.basic_users.is_some())
            && !self.tls
            && !self.basic_over_plain_http
        {
            return Err(ConfigError::BasicWithoutTls);
        }
        if c.channel_binding == ChannelBindingPolicy::Required && !self.tls {
            return Err(ConfigError::ChannelBindingWithoutTls);
        }
        if c.max_handshakes == 0 {
            return Err(ConfigError::NoHandshakes);
        }
        // NTLM needs connection mode, checked above.
        let needs = if c.mode == AuthMode::Connection {
            Some("connection mode")
        } else if c.channel_binding == ChannelBindingPolicy::Required {
            Some("channel-binding = required")
        } else {
            None
        };
        if let (Some(needs), None) = (needs, self.supply) {
            return Err(ConfigError::NoPerConnection { needs });
        }
        self.config.secure_cookies = self.tls;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_users() -> NegotiateLayerBuilder {
        // Digest needs no KDC, which keeps these tests free of one.
        use std::os::unix::fs::PermissionsExt;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "alice:kerbside:0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let digest = DigestSettings::load(file.path(), "kerbside", false, 300).unwrap();
        NegotiateLayer::builder().digest(digest)
    }

    fn err(builder: NegotiateLayerBuilder) -> ConfigError {
        builder.check().map(|_| ()).unwrap_err()
    }

    #[test]
    fn each_impossible_combination_is_named() {
        assert_eq!(err(NegotiateLayer::builder()), ConfigError::NoMechanism);
        assert_eq!(
            err(with_users().mode(AuthMode::Cookie)),
            ConfigError::CookieModeWithoutKey
        );
        assert_eq!(
            err(with_users().channel_binding(ChannelBindingPolicy::Required)),
            ConfigError::ChannelBindingWithoutTls
        );
        assert_eq!(
            err(with_users()
                .served_over_tls(true)
                .channel_binding(ChannelBindingPolicy::Required)),
            ConfigError::NoPerConnection {
                needs: "channel-binding = required"
            }
        );
        let no_supply = err(with_users().mode(AuthMode::Connection));
        assert_eq!(
            no_supply,
            ConfigError::NoPerConnection {
                needs: "connection mode"
            }
        );
        let message = no_supply.to_string();
        for what in [
            "connection mode keeps state per connection",
            "per_connection(ConnectionSupply::AxumConnectInfo)",
            "into_make_service_with_connect_info::<PerConnection>()",
            "PerConnection::new(peer)",
        ] {
            assert!(message.contains(what), "{message}");
        }
        assert_eq!(
            err(with_users().max_handshakes(0)),
            ConfigError::NoHandshakes
        );
    }

    #[test]
    fn sound_settings_build_and_cookies_are_secure_over_tls_only() {
        assert!(with_users().check().is_ok_and(|c| !c.secure_cookies));
        assert!(with_users()
            .served_over_tls(true)
            .channel_binding(ChannelBindingPolicy::Required)
            .per_connection(ConnectionSupply::Layer)
            .check()
            .is_ok_and(|c| c.secure_cookies));
        assert!(with_users()
            .mode(AuthMode::Connection)
            .per_connection(ConnectionSupply::AxumConnectInfo)
            .check()
            .is_ok());
        assert!(NegotiateLayer::builder()
            .mode(AuthMode::None)
            .check()
            .is_ok());
    }
}
