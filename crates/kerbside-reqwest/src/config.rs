//! The middleware's settings and the builder that checks them.

use std::time::Duration;

use kerbside_gssapi::{ClientCredentials, Delegation};
use kerbside_proto::{MutualAuth, PlainHttpAuth, TargetNameSettings};

use crate::error::BuildError;
use crate::NegotiateMiddleware;

/// How long making or checking one token may take by default (a KDC round trip).
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How many origins the middleware remembers as wanting Negotiate by default.
pub const DEFAULT_MAX_ORIGINS: usize = 1024;

/// The settings a [`NegotiateMiddleware`] runs with, as checked by [`Builder::build`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How strictly the server's final token is checked.
    pub mutual: MutualAuth,
    /// Which hosts may receive a token over plain `http://`.
    pub plain_http: PlainHttpAuth,
    /// Which Kerberos service name a token is made for.
    pub target: TargetNameSettings,
    /// Whether the ticket-granting ticket is forwarded.
    pub delegation: Delegation,
    /// Where the user's Kerberos credentials come from.
    pub credentials: ClientCredentials,
    /// Hosts that get a token with the first request, before any `401`.
    pub preemptive_hosts: Vec<String>,
    /// How long making or checking one token may take.
    pub token_timeout: Duration,
    /// How many origins are remembered as wanting Negotiate.
    pub max_origins: usize,
}

/// Builds a [`NegotiateMiddleware`]; [`build`](Self::build) checks the settings.
///
/// ```
/// use kerbside_reqwest::{Mutual, NegotiateMiddleware};
///
/// let middleware = NegotiateMiddleware::builder()
///     .mutual(Mutual::Required)
///     .allow_http_auth("build.intranet")
///     .spn("git.example.com", "HTTP/git-lb.example.com@EXAMPLE.COM")
///     .build()?;
/// # Ok::<(), kerbside_reqwest::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    mutual: MutualAuth,
    plain_http_hosts: Vec<String>,
    spns: Vec<(String, String)>,
    spn_include_port: bool,
    delegation: Delegation,
    credentials: ClientCredentials,
    preemptive_hosts: Vec<String>,
    token_timeout: Duration,
    max_origins: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            mutual: MutualAuth::Optional,
            plain_http_hosts: Vec::new(),
            spns: Vec::new(),
            spn_include_port: false,
            delegation: Delegation::None,
            credentials: ClientCredentials::Default,
            preemptive_hosts: Vec::new(),
            token_timeout: DEFAULT_TOKEN_TIMEOUT,
            max_origins: DEFAULT_MAX_ORIGINS,
        }
    }
}

impl Builder {
    /// How strictly the server's final token is checked: `Required` (it must come
    /// and verify), `Optional` (the default: if it comes, it must verify) or `Off`.
    pub fn mutual(mut self, mutual: MutualAuth) -> Self {
        self.mutual = mutual;
        self
    }

    /// Allows tokens to go to `host` over plain `http://` (refused by default: a
    /// token in the clear can be relayed). Call once per host.
    pub fn allow_http_auth(mut self, host: impl Into<String>) -> Self {
        self.plain_http_hosts.push(host.into());
        self
    }

    /// Makes tokens for `host` with the service name `name` (`HTTP/other@REALM` or
    /// `HTTP@other`) instead of `HTTP@host`; `*` as the host applies to every host
    /// without a name of its own.
    pub fn spn(mut self, host: impl Into<String>, name: impl Into<String>) -> Self {
        self.spns.push((host.into(), name.into()));
        self
    }

    /// Puts a non-default port into the service name (`HTTP/host:port`), for the
    /// rare realms that register such names.
    pub fn spn_include_port(mut self, include: bool) -> Self {
        self.spn_include_port = include;
        self
    }

    /// Whether the ticket-granting ticket is forwarded to the server (never, by default).
    pub fn delegation(mut self, delegation: Delegation) -> Self {
        self.delegation = delegation;
        self
    }

    /// Where the Kerberos credentials come from (the default ticket cache, by default).
    pub fn credentials(mut self, credentials: ClientCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sends a token with the first request to `host`, before any `401`: the only
    /// way a streamed body reaches a Negotiate origin the middleware has not seen yet.
    pub fn preemptive(mut self, host: impl Into<String>) -> Self {
        self.preemptive_hosts.push(host.into());
        self
    }

    /// How long making or checking one token may take (30 s by default).
    pub fn token_timeout(mut self, timeout: Duration) -> Self {
        self.token_timeout = timeout;
        self
    }

    /// How many origins are remembered as wanting Negotiate (1024 by default; 0
    /// remembers none, so every request first gets a `401`).
    pub fn max_origins(mut self, max: usize) -> Self {
        self.max_origins = max;
        self
    }

    /// Checks the settings and builds the middleware.
    pub fn build(self) -> Result<NegotiateMiddleware, BuildError> {
        self.check().map(NegotiateMiddleware::from_config)
    }

    fn check(self) -> Result<Config, BuildError> {
        for host in &self.plain_http_hosts {
            check_host("allow_http_auth", host, false)?;
        }
        for host in &self.preemptive_hosts {
            check_host("preemptive", host, false)?;
        }
        for (host, name) in &self.spns {
            check_host("spn", host, true)?;
            if !is_service_name(name) {
                return Err(BuildError::BadServiceName {
                    host: host.clone(),
                    name: name.clone(),
                });
            }
        }
        if self.delegation != Delegation::None {
            if let Some(host) = self.plain_http_hosts.first() {
                return Err(BuildError::DelegationOverPlainHttp { host: host.clone() });
            }
        }
        if let ClientCredentials::Keytab { path, .. } = &self.credentials {
            if let Err(e) = std::fs::File::open(path) {
                return Err(BuildError::KeytabUnreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        }
        if self.token_timeout.is_zero() {
            return Err(BuildError::ZeroTimeout);
        }
        let plain_http = if self.plain_http_hosts.is_empty() {
            PlainHttpAuth::Refuse
        } else {
            PlainHttpAuth::Hosts(self.plain_http_hosts)
        };
        Ok(Config {
            mutual: self.mutual,
            plain_http,
            target: TargetNameSettings {
                overrides: self.spns,
                canonicalize: false,
                include_port: self.spn_include_port,
            },
            delegation: self.delegation,
            credentials: self.credentials,
            preemptive_hosts: self.preemptive_hosts,
            token_timeout: self.token_timeout,
            max_origins: self.max_origins,
        })
    }
}

/// A host as `url::Url::host_str` spells it: a name, an IPv4 address or a
/// bracketed IPv6 address; `*` only where `wildcard` is allowed.
fn check_host(what: &'static str, host: &str, wildcard: bool) -> Result<(), BuildError> {
    let ok = if wildcard && host == "*" {
        true
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if ok {
        Ok(())
    } else {
        Err(BuildError::NotAHost {
            what,
            given: host.to_owned(),
        })
    }
}

/// `service@host` or `service/host[@REALM]`, each part non-empty, no spaces.
fn is_service_name(name: &str) -> bool {
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if let Some((service, rest)) = name.split_once('/') {
        let host = rest.split_once('@').map_or(rest, |(h, realm)| {
            if printable(realm) && !realm.contains('@') {
                h
            } else {
                ""
            }
        });
        printable(service) && printable(host) && !host.contains('/')
    } else if let Some((service, host)) = name.split_once('@') {
        printable(service) && printable(host) && !host.contains('@')
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_must_be_bare() {
        for good in ["build.example", "127.0.0.1", "[::1]", "a_b-c"] {
            assert!(check_host("t", good, false).is_ok(), "{good}");
        }
        for bad in [
            "", "http://x", "x:8080", "x/", "*", "[nope]", "a b", "user@x",
        ] {
            let err = check_host("t", bad, false).unwrap_err();
            assert!(err.to_string().contains("not a host name"), "{err}");
        }
        assert!(check_host("spn", "*", true).is_ok());
    }

    #[test]
    fn service_names_are_host_based_or_principals() {
        for good in [
            "HTTP@host",
            "HTTP/host",
            "HTTP/host@EXAMPLE.COM",
            "HTTP/host:8443",
        ] {
            assert!(is_service_name(good), "{good}");
        }
        for bad in [
            "", "host", "HTTP@", "@host", "HTTP/", "HTTP/@R", "HTTP/h@", "HTTP/a b", "a@b@c",
        ] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_judged_without_panicking(s in "\\PC{0,40}") {
            if check_host("t", &s, false).is_ok() && !s.starts_with('[') {
                proptest::prop_assert!(!s.contains([':', '/', '@', ' ']), "{s}");
            }
            if is_service_name(&s) {
                proptest::prop_assert!(s.contains(['@', '/']) && !s.contains(' '), "{s}");
            }
        }
    }

    #[test]
    fn build_refuses_bad_settings_with_typed_errors() {
        let b = || super::Builder::default();
        assert!(matches!(
            b().allow_http_auth("http://x").check(),
            Err(BuildError::NotAHost {
                what: "allow_http_auth",
                ..
            })
        ));
        assert!(matches!(
            b().spn("h", "nonsense").check(),
            Err(BuildError::BadServiceName { .. })
        ));
        assert!(matches!(
            b().allow_http_auth("h")
                .delegation(Delegation::Always)
                .check(),
            Err(BuildError::DelegationOverPlainHttp { .. })
        ));
        assert!(matches!(
            b().credentials(ClientCredentials::Keytab {
                path: "/nonexistent/kt".into(),
                principal: None
            })
            .check(),
            Err(BuildError::KeytabUnreadable { .. })
        ));
        assert!(matches!(
            b().token_timeout(Duration::ZERO).check(),
            Err(BuildError::ZeroTimeout)
        ));
        let config = b()
            .allow_http_auth("h")
            .spn("*", "HTTP/x@R")
            .check()
            .unwrap();
        assert_eq!(config.plain_http, PlainHttpAuth::Hosts(vec!["h".into()]));
        assert_eq!(config.mutual, MutualAuth::Optional);
    }
}
