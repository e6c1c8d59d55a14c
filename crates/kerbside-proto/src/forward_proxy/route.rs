//! Where a request goes: upstream proxies (`--proxy` lists, the environment, a PAC
//! result string such as `PROXY a:3128; HTTPS b:443; DIRECT`), `--noproxy`, and which
//! upstreams may receive the user's credentials (`--auth-proxies`).

use thiserror::Error;

use super::hosts::{normal_host, HostList, HostPattern};

/// How an upstream proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamKind {
    /// Plain HTTP to the proxy (`http://`, a PAC's `PROXY`).
    Http,
    /// TLS to the proxy (`https://`, a PAC's `HTTPS`).
    Https,
}

/// An upstream proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upstream {
    /// How it is spoken to.
    pub kind: UpstreamKind,
    /// Its host, lower case, without brackets.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            UpstreamKind::Http => "http",
            UpstreamKind::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// One choice of route, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteChoice {
    /// Straight to the origin.
    Direct,
    /// Through this upstream proxy.
    Proxy(Upstream),
}

impl std::fmt::Display for RouteChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteChoice::Direct => f.write_str("DIRECT"),
            RouteChoice::Proxy(u) => write!(f, "{u}"),
        }
    }
}

/// Why a proxy address or a PAC result could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RouteError {
    /// An upstream with a scheme kerbside does not speak to a proxy.
    #[error(
        "proxy {0:?}: only http:// and https:// upstream proxies are supported (socks is not)"
    )]
    UnsupportedScheme(String),
    /// No host, a bad port, or characters that do not belong in an address.
    #[error("proxy {0:?} is not HOST:PORT or http://HOST:PORT")]
    BadAddress(String),
    /// An empty list.
    #[error("the proxy list is empty")]
    Empty,
    /// A PAC result entry that is not `DIRECT`, `PROXY h:p`, `HTTPS h:p`, `SOCKS…`.
    #[error("the PAC result {0:?} is not DIRECT, PROXY host:port or HTTPS host:port")]
    BadPacEntry(String),
}

/// Parses one upstream address: `http://host:port`, `host:port` (meaning
/// `http://`), `[::1]:3128`; `https://` is read too (for PAC's `HTTPS`). Without a
/// port, 3128 for http (Squid's), 443 for https. A path, user or query is refused.
pub fn parse_upstream(text: &str) -> Result<Upstream, RouteError> {
    let text = text.trim();
    let bad = || RouteError::BadAddress(text.to_owned());
    let (kind, rest) = match text.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "http" => (UpstreamKind::Http, rest),
            "https" => (UpstreamKind::Https, rest),
            _ => return Err(RouteError::UnsupportedScheme(text.to_owned())),
        },
        None => (UpstreamKind::Http, text),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#', ' ']) {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (host.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    let port = match port {
        None => match kind {
            UpstreamKind::Http => 3128,
            UpstreamKind::Https => 443,
        },
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?
        }
        Some(_) => return Err(bad()),
    };
    let host = normal_host(&host);
    let host_ok = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    if !host_ok {
        return Err(bad());
    }
    Ok(Upstream { kind, host, port })
}

/// Parses `--proxy` values: each comma-separated, every entry an upstream,
/// `http://` or `https://` (TLS to the proxy); a list naming another kind (SOCKS) is
/// refused whole.
pub fn parse_proxy_list<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Upstream>, RouteError> {
    let mut list = Vec::new();
    for entry in values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let upstream = parse_upstream(entry)?;
        if !list.contains(&upstream) {
            list.push(upstream);
        }
    }
    if list.is_empty() {
        return Err(RouteError::Empty);
    }
    Ok(list)
}

/// Parses the string a PAC's `FindProxyForURL` returned: entries separated by
/// `;`, each `DIRECT`, `PROXY host:port`, `HTTPS host:port` (keywords without
/// regard to case). `SOCKS`/`SOCKS4`/`SOCKS5` entries are skipped (kerbside does not
/// speak SOCKS) and named in the second list. An empty result means `DIRECT`.
pub fn parse_pac_result(text: &str) -> Result<(Vec<RouteChoice>, Vec<String>), RouteError> {
    let mut choices = Vec::new();
    let mut skipped = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let mut words = entry.split_ascii_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let address = words.next();
        if words.next().is_some() {
            return Err(RouteError::BadPacEntry(entry.to_owned()));
        }
        let choice = match (keyword.as_str(), address) {
            ("DIRECT", None) => RouteChoice::Direct,
            ("PROXY", Some(a)) if !a.contains("://") => RouteChoice::Proxy(
                parse_upstream(a).map_err(|_| RouteError::BadPacEntry(entry.to_owned()))?,
            ),
            ("HTTPS", Some(a)) if !a.contains("://") => RouteChoice::Proxy(
                parse_upstream(&format!("https://{a}"))
                    .map_err(|_| RouteError::BadPacEntry(entry.to_owned()))?,
            ),
            ("SOCKS" | "SOCKS4" | "SOCKS5", Some(_)) => {
                skipped.push(entry.to_owned());
                continue;
            }
            _ => return Err(RouteError::BadPacEntry(entry.to_owned())),
        };
        if !choices.contains(&choice) {
            choices.push(choice);
        }
    }
    if choices.is_empty() && skipped.is_empty() {
        choices.push(RouteChoice::Direct);
    }
    Ok((choices, skipped))
}

/// A route decision for one request, with the reason for `-v` and `--check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The choices, in order.
    pub choices: Vec<RouteChoice>,
    /// Why, in words.
    pub reason: String,
}

/// Routes from a fixed list (`--proxy`, or the environment): the same upstreams
/// for every host the no-proxy list does not name. Nothing is bypassed unless
/// the list says so (no implicit `localhost`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedRoutes {
    /// Upstreams for plain-HTTP requests, in order.
    pub http: Vec<Upstream>,
    /// Upstreams for `CONNECT` tunnels, in order.
    pub connect: Vec<Upstream>,
    /// Hosts reached directly.
    pub no_proxy: HostList,
    /// Where the settings came from, for the reason (`--proxy`, `environment`).
    pub source: &'static str,
}

impl FixedRoutes {
    /// The route for a request to `host`; `tunnel` for a `CONNECT`.
    pub fn route(&self, host: &str, tunnel: bool) -> Route {
        let upstreams = if tunnel { &self.connect } else { &self.http };
        if let Some(p) = self.no_proxy.matching(host) {
            return Route {
                choices: vec![RouteChoice::Direct],
                reason: format!("{host} matches the no-proxy entry {p}"),
            };
        }
        if upstreams.is_empty() {
            return Route {
                choices: vec![RouteChoice::Direct],
                reason: format!(
                    "no upstream proxy for {} requests in the {}",
                    if tunnel { "CONNECT" } else { "plain-HTTP" },
                    self.source
                ),
            };
        }
        Route {
            choices: upstreams.iter().cloned().map(RouteChoice::Proxy).collect(),
            reason: format!("the upstream list of the {}", self.source),
        }
    }
}

/// Which upstream proxies may receive the user's credentials (`--auth-proxies`):
/// a host list, by default the hosts given with `--proxy`. A proxy a PAC file or
/// the environment names that is not on it is used without credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialAllowList {
    hosts: HostList,
}

impl CredentialAllowList {
    /// The given list.
    pub fn new(hosts: HostList) -> Self {
        Self { hosts }
    }

    /// Exactly the hosts of these upstreams (no subdomains).
    pub fn of_upstreams<'a>(upstreams: impl IntoIterator<Item = &'a Upstream>) -> Self {
        let mut hosts = HostList::default();
        for u in upstreams {
            let pattern = match u.host.parse::<std::net::IpAddr>() {
                Ok(a) => HostPattern::Range(super::hosts::Cidr::single(a)),
                Err(_) => HostPattern::Wildcard(u.host.clone()),
            };
            hosts.push(pattern);
        }
        Self { hosts }
    }

    /// This list and `pattern`.
    pub fn with(mut self, pattern: HostPattern) -> Self {
        self.hosts.push(pattern);
        self
    }

    /// Whether credentials may go to `upstream`.
    pub fn allows(&self, upstream: &Upstream) -> bool {
        self.hosts.matches(&upstream.host)
    }

    /// The list, for messages.
    pub fn hosts(&self) -> &HostList {
        &self.hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(host: &str, port: u16) -> Upstream {
        Upstream {
            kind: UpstreamKind::Http,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn proxy_lists() {
        let l =
            parse_proxy_list(["a.example:3128,http://B.example:8080/", " [::1]:1 ", "c"]).unwrap();
        assert_eq!(
            l,
            vec![
                up("a.example", 3128),
                up("b.example", 8080),
                up("::1", 1),
                up("c", 3128)
            ]
        );
        assert_eq!(l[2].to_string(), "http://[::1]:1");
        assert_eq!(
            parse_proxy_list(["https://P:1"]).unwrap(),
            vec![Upstream {
                kind: UpstreamKind::Https,
                host: "p".into(),
                port: 1
            }]
        );
        for bad in [
            "socks5://p:1",
            "p:0",
            "p:99999",
            "http://u:pw@p:1",
            "p:1/path",
            "[zz]:1",
            "p:x",
            "",
        ] {
            assert!(parse_proxy_list([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn pac_results() {
        let (c, skipped) =
            parse_pac_result("PROXY a:1; HTTPS b:2;DIRECT; SOCKS5 s:1080; proxy a:1").unwrap();
        assert_eq!(
            c,
            vec![
                RouteChoice::Proxy(up("a", 1)),
                RouteChoice::Proxy(Upstream {
                    kind: UpstreamKind::Https,
                    host: "b".into(),
                    port: 2
                }),
                RouteChoice::Direct,
            ]
        );
        assert_eq!(skipped, vec!["SOCKS5 s:1080".to_owned()]);
        assert_eq!(parse_pac_result("").unwrap().0, vec![RouteChoice::Direct]);
        for bad in [
            "PROXY",
            "DIRECT x",
            "PROXY a:1 b",
            "FTP a:1",
            "PROXY http://a:1",
        ] {
            assert!(parse_pac_result(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_routes_bypass_only_what_the_list_names() {
        let r = FixedRoutes {
            http: vec![up("p", 1)],
            connect: vec![up("p", 1), up("q", 2)],
            no_proxy: HostList::parse("internal.example,10.0.0.0/8").unwrap(),
            source: "--proxy",
        };
        assert_eq!(r.route("localhost", false).choices.len(), 1);
        assert_eq!(r.route("localhost", true).choices.len(), 2);
        let direct = r.route("a.internal.example", true);
        assert_eq!(direct.choices, vec![RouteChoice::Direct]);
        assert!(
            direct.reason.contains("internal.example"),
            "{}",
            direct.reason
        );
        assert_eq!(
            r.route("10.1.1.1", false).choices,
            vec![RouteChoice::Direct]
        );
        let none = FixedRoutes::default().route("x", false);
        assert_eq!(none.choices, vec![RouteChoice::Direct]);
    }

    #[test]
    fn credentials_only_to_listed_proxies() {
        let given = [up("proxy.corp.example", 1), up("127.0.0.1", 2)];
        let allow = CredentialAllowList::of_upstreams(&given);
        assert!(allow.allows(&up("proxy.corp.example", 9)));
        assert!(allow.allows(&up("127.0.0.1", 9)));
        assert!(!allow.allows(&up("evil.proxy.corp.example", 1)));
        assert!(!allow.allows(&up("wpad.example", 1)));
        let wide = CredentialAllowList::new(HostList::parse("corp.example").unwrap());
        assert!(wide.allows(&up("p2.corp.example", 1)));
        assert!(!CredentialAllowList::default().allows(&up("p", 1)));
    }
}
