//! Policy decisions that need no network: when credentials may be sent over a
//! transport, and how strictly the server's final mutual-authentication token is
//! checked.

use std::fmt;
use std::str::FromStr;

/// How strictly a client checks the server's final Negotiate token
/// (mutual authentication, RFC 4559 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MutualAuth {
    /// The server must send a final token and it must verify.
    Required,
    /// If the server sends a final token it must verify; if it sends none, the
    /// response is accepted. This is the default.
    #[default]
    Optional,
    /// Final tokens are ignored.
    Off,
}

impl MutualAuth {
    /// The spelling used on command lines and in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for MutualAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mutual-authentication policy name that is not `required`, `optional` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mutual-authentication policy {0:?}: use required, optional or off")]
pub struct UnknownMutualAuth(pub String);

impl FromStr for MutualAuth {
    type Err = UnknownMutualAuth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            "off" => Ok(Self::Off),
            _ => Err(UnknownMutualAuth(s.to_owned())),
        }
    }
}

/// Whether the connection a request travels on protects what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`: TLS with a verified server certificate.
    Tls,
    /// `https://` with certificate verification switched off (`--insecure`).
    InsecureTls,
    /// `http://`: anyone on the path can read and change the exchange.
    Plain,
}

/// Which hosts may receive credentials over plain HTTP.
///
/// Negotiate, NTLM and Basic over plain HTTP let a man in the middle steal or relay
/// credentials, or strip the challenge down to Basic. kerbside refuses them unless
/// the user opted in for that host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlainHttpAuth {
    /// No host: credentials only travel over TLS (the default).
    #[default]
    Refuse,
    /// These hosts (compared without ASCII case) may receive credentials over HTTP.
    Hosts(Vec<String>),
    /// Every host (the user passed `--allow-http-auth` without a host list).
    Any,
}

/// Why credentials were not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The request goes over plain HTTP and the host was not opted in.
    #[error(
        "refusing to send {scheme} credentials to {host} over plain HTTP: anyone on the \
         network path could steal or replay them; use https://, or pass \
         --allow-http-auth if you accept the risk for this host"
    )]
    PlainHttp {
        /// The scheme that would have been used.
        scheme: String,
        /// The host the credentials would have gone to.
        host: String,
    },
}

impl PlainHttpAuth {
    /// Decides whether credentials of `scheme` may go to `host` over `transport`.
    pub fn check(&self, scheme: &str, host: &str, transport: Transport) -> Result<(), PolicyError> {
        let allowed = match (transport, self) {
            (Transport::Tls | Transport::InsecureTls, _) => true,
            (Transport::Plain, Self::Any) => true,
            (Transport::Plain, Self::Hosts(hosts)) => {
                hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            }
            (Transport::Plain, Self::Refuse) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(PolicyError::PlainHttp {
                scheme: scheme.to_owned(),
                host: host.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_by_default_and_names_the_flag() {
        let err = PlainHttpAuth::default()
            .check("Negotiate", "intranet", Transport::Plain)
            .unwrap_err();
        assert!(err.to_string().contains("--allow-http-auth"), "{err}");
        assert!(err.to_string().contains("intranet"), "{err}");
    }

    #[test]
    fn tls_is_always_allowed() {
        for p in [PlainHttpAuth::Refuse, PlainHttpAuth::Any] {
            assert!(p.check("Negotiate", "h", Transport::Tls).is_ok());
        }
    }

    #[test]
    fn opt_in_is_per_host() {
        let p = PlainHttpAuth::Hosts(vec!["Build.Example".into()]);
        assert!(p
            .check("Negotiate", "build.example", Transport::Plain)
            .is_ok());
        assert!(p
            .check("Negotiate", "other.example", Transport::Plain)
            .is_err());
        assert!(PlainHttpAuth::Any
            .check("Negotiate", "x", Transport::Plain)
            .is_ok());
    }

    #[test]
    fn mutual_auth_parses_its_three_names_only() {
        assert_eq!("Required".parse(), Ok(MutualAuth::Required));
        assert_eq!("optional".parse(), Ok(MutualAuth::Optional));
        assert_eq!("off".parse(), Ok(MutualAuth::Off));
        assert!("yes".parse::<MutualAuth>().is_err());
    }
}
