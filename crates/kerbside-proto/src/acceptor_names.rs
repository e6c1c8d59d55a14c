//! Which service names a gate accepts tickets for, and whether the ticket of a request is
//! for one of them: one name, a list (`acceptor = ["HTTP/a@R", "HTTP/b@R"]`), or the
//! request's own host (`acceptor = "{HOSTNAME}"`, as mod_auth_gssapi's `GssapiAcceptorName
//! {HOSTNAME}`), so one keytab holding several SPNs serves the load balancer's name and each
//! node's own on every node.
//!
//! For a list and for `{HOSTNAME}` the gate accepts with the whole keytab (a ticket for any
//! key in it opens), then checks the service principal of the established context against
//! [`AcceptorNames::check`]: the server name comes from the ticket GSSAPI decrypted, and the
//! `Host` the client sent is trusted only to be compared with it, never to pick a key.
//! One set of credentials serves every name, so the keytab is read (and reloaded) once and
//! the replay cache is one; acquiring credentials per host name would hold a credential per
//! name a client typed.
//!
//! ```
//! use kerbside_proto::acceptor_names::AcceptorNames;
//!
//! let names = AcceptorNames::parse(&["{HOSTNAME}".to_owned()]).unwrap();
//! assert!(names.check("HTTP/a.example.test@EXAMPLE.TEST", Some("A.example.test:8443")).is_ok());
//! assert!(names.check("HTTP/a.example.test@EXAMPLE.TEST", Some("b.example.test")).is_err());
//!
//! let names = AcceptorNames::parse(&["HTTP/a.example.test@EXAMPLE.TEST".to_owned(),
//!                                    "HTTP@b.example.test".to_owned()]).unwrap();
//! assert!(names.check("HTTP/b.example.test@EXAMPLE.TEST", None).is_ok());
//! assert!(names.check("HTTP/c.example.test@EXAMPLE.TEST", None).is_err());
//! ```

/// The placeholder for the request's host.
pub const HOSTNAME: &str = "{HOSTNAME}";

/// The service principals a gate accepts tickets for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AcceptorNames {
    /// Any key in the keytab (no `acceptor`).
    #[default]
    Any,
    /// One name, which GSSAPI itself holds the ticket to (`--acceptor NAME`).
    One(String),
    /// `HTTP/<the request's host>`, any realm in the keytab.
    Hostname,
    /// One of these.
    List(Vec<ServiceName>),
}

/// A service principal of a list: `HTTP/host@REALM`, or `HTTP@host` (any realm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// `HTTP`.
    pub service: String,
    /// `a.example.test`, in lower case.
    pub host: String,
    /// `EXAMPLE.TEST`; `None` for the host-based form.
    pub realm: Option<String>,
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.realm {
            Some(realm) => write!(f, "{}/{}@{realm}", self.service, self.host),
            None => write!(f, "{}@{}", self.service, self.host),
        }
    }
}

/// A configured acceptor name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptorNameError {
    /// Not `SERVICE/host[@REALM]`, `SERVICE@host` or `{HOSTNAME}`.
    #[error(
        "the acceptor name {0:?} is not SERVICE/host[@REALM], SERVICE@host or {{HOSTNAME}} \
         (e.g. HTTP/www.example.com@EXAMPLE.COM)"
    )]
    Malformed(String),
    /// `{HOSTNAME}` together with other names.
    #[error("acceptor = \"{{HOSTNAME}}\" takes the request's host; it cannot be one of a list")]
    HostnameInList,
}

/// Why a ticket does not fit the request: its service is not one the gate accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WrongService {
    /// `{HOSTNAME}`: the ticket is for another host than the request names.
    #[error(
        "the ticket is for {ticket} but the request is for the host {host:?}: with acceptor \
         = \"{{HOSTNAME}}\" a ticket must be for HTTP/<the Host the client sent>"
    )]
    OtherHost {
        /// The ticket's service principal.
        ticket: String,
        /// The request's host (lower case, no port), `""` when it named none.
        host: String,
    },
    /// A list: the ticket's service is not in it.
    #[error("the ticket is for {ticket}, which is not one of the acceptor names ({allowed})")]
    NotListed {
        /// The ticket's service principal.
        ticket: String,
        /// The configured names, comma-separated.
        allowed: String,
    },
}

impl AcceptorNames {
    /// The names `values` (the config file's `acceptor`, a string or a list, or each
    /// `--acceptor`): none is [`Any`](Self::Any), one plain name [`One`](Self::One).
    pub fn parse(values: &[String]) -> Result<Self, AcceptorNameError> {
        match values {
            [] => Ok(Self::Any),
            [one] if one.trim() == HOSTNAME => Ok(Self::Hostname),
            [one] => {
                ServiceName::parse(one)?;
                Ok(Self::One(one.trim().to_owned()))
            }
            many => {
                if many.iter().any(|v| v.trim() == HOSTNAME) {
                    return Err(AcceptorNameError::HostnameInList);
                }
                let names = many
                    .iter()
                    .map(|v| ServiceName::parse(v))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self::List(names))
            }
        }
    }

    /// The one name GSSAPI should acquire credentials for; `None` accepts with the whole
    /// keytab (and [`check`](Self::check) decides).
    pub fn gssapi_name(&self) -> Option<&str> {
        match self {
            Self::One(name) => Some(name),
            _ => None,
        }
    }

    /// The names in words, for `gate --check` and the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Any => "any service in the keytab".to_owned(),
            Self::One(name) => name.clone(),
            Self::Hostname => "HTTP/<the request's Host> ({HOSTNAME})".to_owned(),
            Self::List(names) => join(names),
        }
    }

    /// Whether a ticket for `ticket_service` (the established context's service
    /// principal, `HTTP/a.example.test@REALM`) may log in to a request for `host` (its
    /// `Host` or `:authority`, port and case as the client sent them).
    pub fn check(&self, ticket_service: &str, host: Option<&str>) -> Result<(), WrongService> {
        match self {
            // GSSAPI held the ticket to the name (or to the keytab) already.
            Self::Any | Self::One(_) => Ok(()),
            Self::Hostname => {
                let host = host.map(request_host).unwrap_or_default();
                let ticket = ServiceName::parse(ticket_service).ok();
                match ticket {
                    Some(t) if !host.is_empty() && t.service == "HTTP" && t.host == host => Ok(()),
                    _ => Err(WrongService::OtherHost {
                        ticket: ticket_service.to_owned(),
                        host,
                    }),
                }
            }
            Self::List(names) => {
                let ticket = ServiceName::parse(ticket_service).ok();
                let listed = ticket.is_some_and(|t| {
                    names.iter().any(|n| {
                        n.service == t.service
                            && n.host == t.host
                            && n.realm.as_ref().is_none_or(|r| Some(r) == t.realm.as_ref())
                    })
                });
                if listed {
                    Ok(())
                } else {
                    Err(WrongService::NotListed {
                        ticket: ticket_service.to_owned(),
                        allowed: join(names),
                    })
                }
            }
        }
    }
}

fn join(names: &[ServiceName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ServiceName {
    /// `SERVICE/host@REALM` or `SERVICE@host`; the host in lower case.
    pub fn parse(text: &str) -> Result<Self, AcceptorNameError> {
        let bad = || AcceptorNameError::Malformed(text.to_owned());
        let text = text.trim();
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        let (service, host, realm) = match text.split_once('/') {
            // `HTTP/host` without a realm: the default realm's, as GSSAPI reads it.
            Some((service, rest)) => match rest.rsplit_once('@') {
                Some((host, realm)) => (service, host, Some(realm)),
                None => (service, rest, None),
            },
            None => {
                let (service, host) = text.split_once('@').ok_or_else(bad)?;
                (service, host, None)
            }
        };
        if !plain(service) || !plain(host) || realm.is_some_and(|r| !plain(r)) {
            return Err(bad());
        }
        Ok(Self {
            service: service.to_owned(),
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            realm: realm.map(str::to_owned),
        })
    }
}

/// The host a request names: its `Host` (or `:authority`) without the port, a trailing
/// `.` or `userinfo@`, in lower case; `[v6]` keeps its brackets. `""` for a value that is
/// not a host name.
pub fn request_host(authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or_default().trim();
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => return String::new(),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return String::new(),
            None => authority,
        }
    };
    let host = host.trim_end_matches('.');
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':'))
    {
        return String::new();
    }
    host.to_ascii_lowercase()
}

/// Fuzz check: `data` as configured names and as a Host, checked against a ticket; nothing
/// panics, and a ticket is let in only for a host or a name it matches.
pub(crate) fn fuzz_check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (names, host) = text.split_once('\n').unwrap_or((&text, ""));
    let values: Vec<String> = names.split(',').map(str::to_owned).collect();
    let host_shown = request_host(host);
    assert!(!host_shown.contains(['/', '@', ' ']));
    if let Ok(parsed) = AcceptorNames::parse(&values) {
        let ticket = format!("HTTP/{host_shown}@R");
        if AcceptorNames::Hostname == parsed {
            assert_eq!(
                parsed.check(&ticket, Some(host)).is_ok(),
                !host_shown.is_empty() && ServiceName::parse(&ticket).is_ok()
            );
            assert!(
                parsed.check("HTTP/other.invalid@R", Some(host)).is_err()
                    || host_shown == "other.invalid"
            );
        }
        let _ = parsed.check(&text, Some(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(values: &[&str]) -> AcceptorNames {
        AcceptorNames::parse(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn hostname_takes_the_request_s_host_and_nothing_else() {
        let n = names(&["{HOSTNAME}"]);
        assert_eq!(n.gssapi_name(), None);
        for host in ["a.test", "A.Test", "a.test:8443", "a.test.", "a.test.:443"] {
            assert!(n.check("HTTP/a.test@R.TEST", Some(host)).is_ok(), "{host}");
        }
        let err = n.check("HTTP/a.test@R.TEST", Some("b.test")).unwrap_err();
        assert!(err.to_string().contains("\"b.test\""), "{err}");
        for bad in [
            None,
            Some(""),
            Some("a.test:x"),
            Some("a test"),
            Some("[::1"),
        ] {
            assert!(n.check("HTTP/a.test@R.TEST", bad).is_err(), "{bad:?}");
        }
        // Only HTTP tickets; not another service with the same host.
        assert!(n.check("host/a.test@R.TEST", Some("a.test")).is_err());
        assert!(n.check("HTTP/[::1]@R.TEST", Some("[::1]:443")).is_err());
    }

    #[test]
    fn a_list_takes_its_names_only() {
        let n = names(&["HTTP/a.test@R.TEST", "HTTP@B.test"]);
        assert_eq!(n.gssapi_name(), None);
        assert!(n.check("HTTP/a.test@R.TEST", None).is_ok());
        assert!(n.check("HTTP/b.test@ANY.REALM", Some("whatever")).is_ok());
        assert!(n.check("HTTP/a.test@OTHER.TEST", None).is_err());
        let err = n.check("HTTP/c.test@R.TEST", None).unwrap_err();
        assert!(
            err.to_string()
                .contains("not one of the acceptor names (HTTP/a.test@R.TEST, HTTP@b.test)"),
            "{err}"
        );
        assert_eq!(n.describe(), "HTTP/a.test@R.TEST, HTTP@b.test");
    }

    /// `HTTP/host` without a realm (GSSAPI adds the default realm) is taken alone, as
    /// before lists existed, and in a list stands for that host in any realm.
    #[test]
    fn a_principal_without_its_realm_is_taken() {
        let one = names(&["HTTP/stale.example.test"]);
        assert_eq!(one.gssapi_name(), Some("HTTP/stale.example.test"));
        let list = names(&["HTTP/a.test", "HTTP/b.test@R.TEST"]);
        assert!(list.check("HTTP/a.test@ANY.TEST", None).is_ok());
        assert!(list.check("HTTP/c.test@R.TEST", None).is_err());
    }

    #[test]
    fn one_name_is_left_to_gssapi_and_bad_names_are_refused() {
        let n = names(&["HTTP/a.test@R.TEST"]);
        assert_eq!(n.gssapi_name(), Some("HTTP/a.test@R.TEST"));
        assert_eq!(names(&[]), AcceptorNames::Any);
        for bad in ["HTTP", "/a@R", "HTTP/a b@R", "HTTP@", "{HOST}"] {
            assert!(AcceptorNames::parse(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert_eq!(
            AcceptorNames::parse(&["{HOSTNAME}".to_owned(), "HTTP@a".to_owned()]),
            Err(AcceptorNameError::HostnameInList)
        );
    }

    proptest! {
        #[test]
        fn nothing_panics_and_a_host_matches_only_itself(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            fuzz_check(&data);
        }

        #[test]
        fn any_port_and_case_of_a_host_is_that_host(host in "[a-z][a-z0-9-]{0,10}(\\.[a-z0-9-]{1,8}){0,3}", port in 1u16.., upper: bool) {
            let n = AcceptorNames::Hostname;
            let sent = if upper { host.to_ascii_uppercase() } else { host.clone() };
            let ticket = format!("HTTP/{host}@R.TEST");
            let with_port = format!("{sent}:{port}");
            let other = format!("x{host}");
            let matches = n.check(&ticket, Some(&with_port)).is_ok();
            let other_matches = n.check(&ticket, Some(&other)).is_ok();
            prop_assert!(matches);
            prop_assert!(!other_matches);
        }
    }
}
