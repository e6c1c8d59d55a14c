//! Forward proxies: which requests go through one (`--proxy`, `http_proxy`,
//! `https_proxy`, `all_proxy`, `no_proxy`, read as curl reads them).

use http::Uri;
use hyper_util::client::proxy::matcher::Matcher;

use crate::conn::Origin;
use crate::error::{Error, ErrorKind};

/// Which proxy, if any, each request goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for `http://` URLs.
    pub http: Option<Uri>,
    /// Proxy for `https://` URLs (reached with `CONNECT`).
    pub https: Option<Uri>,
    /// Hosts reached directly: exact names, domain suffixes (`example.com` and
    /// `.example.com` both match `a.example.com`), IP addresses, CIDR ranges
    /// (`10.0.0.0/8`), or `*` for all.
    pub no_proxy: Vec<String>,
}

/// A proxy's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProxyAddr {
    pub host: String,
    pub port: u16,
    /// An `https://` proxy: TLS to the proxy, then HTTP (and `CONNECT`) inside.
    pub tls: bool,
}

impl ProxySettings {
    /// Reads the proxy variables as curl does: `http_proxy` in lower case only (an
    /// upper-case `HTTP_PROXY` is never read: under CGI it is the client's `Proxy:`
    /// request header, the "httpoxy" hole), `https_proxy`/`HTTPS_PROXY`,
    /// `all_proxy`/`ALL_PROXY` and `no_proxy`/`NO_PROXY`, the lower-case name first.
    /// Empty values count as unset; values that are not `http://` proxy URLs are
    /// ignored.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let parse = |v: Option<String>| v.and_then(|v| parse_proxy(&v).ok());
        let all = first(&["all_proxy", "ALL_PROXY"]);
        Self {
            http: parse(first(&["http_proxy"]).or_else(|| all.clone())),
            https: parse(first(&["https_proxy", "HTTPS_PROXY"]).or(all)),
            no_proxy: first(&["no_proxy", "NO_PROXY"])
                .map(|v| split_list(&v))
                .unwrap_or_default(),
        }
    }

    /// One proxy for every scheme (`--proxy`).
    pub fn all(proxy: Uri) -> Self {
        Self {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy: Vec::new(),
        }
    }

    /// The proxy for `origin`, unless `no_proxy` excludes it (hyper-util's matcher:
    /// `*`, a domain and its subdomains with or without a leading dot, IP addresses
    /// and CIDR ranges, as curl 7.86 and later).
    pub(crate) fn route(&self, origin: &Origin) -> Option<ProxyAddr> {
        let proxy = if origin.tls { &self.https } else { &self.http };
        let proxy = proxy.as_ref()?;
        let matcher = Matcher::builder()
            .http(proxy.to_string())
            .https(proxy.to_string())
            .no(self.no_proxy.join(","))
            .build();
        let destination = Uri::builder()
            .scheme(if origin.tls { "https" } else { "http" })
            .authority(format!("{}:{}", origin.authority_host(), origin.port))
            .path_and_query("/")
            .build()
            .ok()?;
        matcher.intercept(&destination)?;
        let host = proxy.host()?.trim_start_matches('[').trim_end_matches(']');
        let tls = proxy.scheme_str() == Some("https");
        Some(ProxyAddr {
            host: host.to_ascii_lowercase(),
            // curl's default proxy ports.
            port: proxy.port_u16().unwrap_or(if tls { 443 } else { 1080 }),
            tls,
        })
    }
}

/// Splits a comma-separated host list (`--noproxy`, `NO_PROXY`).
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a proxy URL; a bare `host:port` means `http://host:port`. `http://` and
/// `https://` (TLS to the proxy) proxies are supported.
pub fn parse_proxy(v: &str) -> Result<Uri, Error> {
    let v = v.trim();
    let with_scheme = if v.contains("://") {
        v.to_owned()
    } else {
        format!("http://{v}")
    };
    let uri: Uri = with_scheme.parse().map_err(|e| {
        Error::new(
            ErrorKind::InvalidUrl,
            format!("proxy {v:?} is not a URL: {e}"),
        )
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("proxy {v:?}: only http:// and https:// proxies are supported"),
        ));
    }
    if uri.host().is_none() {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("proxy {v:?} has no host"),
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Origin {
        Origin::of(&url.parse().unwrap()).unwrap()
    }

    #[test]
    fn routes_by_scheme_and_no_proxy() {
        let p = ProxySettings {
            http: Some(parse_proxy("proxy.example:3128").unwrap()),
            https: Some(parse_proxy("http://sproxy.example:8080").unwrap()),
            no_proxy: split_list("internal.example, .corp.example,10.1.2.3"),
        };
        assert_eq!(
            p.route(&origin("http://www.example/")),
            Some(ProxyAddr {
                host: "proxy.example".into(),
                port: 3128,
                tls: false,
            })
        );
        assert_eq!(p.route(&origin("https://www.example/")).unwrap().port, 8080);
        assert_eq!(p.route(&origin("https://internal.example/")), None);
        assert_eq!(p.route(&origin("https://a.internal.example/")), None);
        assert_eq!(p.route(&origin("https://x.corp.example/")), None);
        assert_eq!(p.route(&origin("https://corp.example/")), None);
        assert!(p.route(&origin("https://notcorp.example/")).is_some());
        assert_eq!(p.route(&origin("http://10.1.2.3/")), None);
        let all = ProxySettings {
            no_proxy: vec!["*".into()],
            ..p
        };
        assert_eq!(all.route(&origin("http://www.example/")), None);
    }

    fn vars(pairs: &[(&str, &str)]) -> ProxySettings {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        ProxySettings::from_vars(|name| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn upper_case_http_proxy_is_never_read() {
        let p = vars(&[("HTTP_PROXY", "http://mallory:3128")]);
        assert_eq!(p.http, None);
        assert_eq!(p.route(&origin("http://www.example/")), None);
        // all_proxy still applies to http:// (curl does the same).
        let p = vars(&[("HTTP_PROXY", "http://mallory:3128"), ("ALL_PROXY", "p:1")]);
        assert_eq!(p.route(&origin("http://www.example/")).unwrap().host, "p");
        let p = vars(&[("http_proxy", "http://good:3128")]);
        assert_eq!(
            p.route(&origin("http://www.example/")).unwrap().host,
            "good"
        );
    }

    #[test]
    fn lower_case_wins_over_upper_case() {
        let p = vars(&[
            ("https_proxy", "lower:1"),
            ("HTTPS_PROXY", "upper:2"),
            ("no_proxy", "a.example"),
            ("NO_PROXY", "b.example"),
        ]);
        assert_eq!(
            p.route(&origin("https://www.example/")).unwrap().host,
            "lower"
        );
        assert_eq!(p.route(&origin("https://a.example/")), None);
        assert!(p.route(&origin("https://b.example/")).is_some());
        let p = vars(&[("HTTPS_PROXY", "upper:2"), ("https_proxy", " ")]);
        assert_eq!(
            p.route(&origin("https://www.example/")).unwrap().host,
            "upper"
        );
    }

    #[test]
    fn no_proxy_takes_cidr_ranges_and_ipv6() {
        let p = ProxySettings {
            no_proxy: split_list("10.0.0.0/8, ::1"),
            ..ProxySettings::all(parse_proxy("p:1").unwrap())
        };
        assert_eq!(p.route(&origin("http://10.200.3.4/")), None);
        assert_eq!(p.route(&origin("http://[::1]:8080/")), None);
        assert!(p.route(&origin("http://11.0.0.1/")).is_some());
    }

    #[test]
    fn http_and_https_proxies_only() {
        assert!(parse_proxy("socks5://p:1080").is_err());
        assert_eq!(parse_proxy("p:3128").unwrap().port_u16(), Some(3128));
        let tls = ProxySettings::all(parse_proxy("https://P.example").unwrap());
        assert_eq!(
            tls.route(&origin("https://www.example/")),
            Some(ProxyAddr {
                host: "p.example".into(),
                port: 443,
                tls: true,
            })
        );
    }
}
