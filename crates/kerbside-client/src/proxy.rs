//! Forward proxies: which requests go through one (`--proxy`, `HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`), and `CONNECT` tunnels for `https://` origins.

use http::Uri;

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
    /// `.example.com` both match `a.example.com`), IP addresses, or `*` for all.
    pub no_proxy: Vec<String>,
}

/// A proxy's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProxyAddr {
    pub host: String,
    pub port: u16,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok())
        .filter(|v| !v.trim().is_empty())
}

impl ProxySettings {
    /// Reads `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`,
    /// `all_proxy`/`ALL_PROXY` and `no_proxy`/`NO_PROXY` (lower case first, as curl
    /// does; upper-case `HTTP_PROXY` is honoured too). Values that are not URLs are
    /// ignored.
    pub fn from_env() -> Self {
        let parse = |v: Option<String>| v.and_then(|v| parse_proxy(&v).ok());
        let all = env(&["all_proxy", "ALL_PROXY"]);
        Self {
            http: parse(env(&["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone())),
            https: parse(env(&["https_proxy", "HTTPS_PROXY"]).or(all)),
            no_proxy: env(&["no_proxy", "NO_PROXY"])
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

    /// The proxy for `origin`, if it is not excluded.
    pub(crate) fn route(&self, origin: &Origin) -> Option<ProxyAddr> {
        if self.excluded(&origin.host) {
            return None;
        }
        let proxy = if origin.tls { &self.https } else { &self.http };
        let proxy = proxy.as_ref()?;
        let host = proxy.host()?.trim_start_matches('[').trim_end_matches(']');
        Some(ProxyAddr {
            host: host.to_ascii_lowercase(),
            // curl's default proxy port.
            port: proxy.port_u16().unwrap_or(1080),
        })
    }

    fn excluded(&self, host: &str) -> bool {
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim().trim_start_matches('.').to_ascii_lowercase();
            entry == "*"
                || host.eq_ignore_ascii_case(&entry)
                || host
                    .to_ascii_lowercase()
                    .strip_suffix(&entry)
                    .is_some_and(|rest| rest.ends_with('.'))
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

/// Parses a proxy URL; a bare `host:port` means `http://host:port`. Only `http://`
/// proxies are supported.
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
    if uri.scheme_str() != Some("http") {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("proxy {v:?}: only http:// proxies are supported"),
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
                port: 3128
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

    #[test]
    fn only_http_proxies() {
        assert!(parse_proxy("socks5://p:1080").is_err());
        assert!(parse_proxy("https://p:443").is_err());
        assert_eq!(parse_proxy("p:3128").unwrap().port_u16(), Some(3128));
    }
}
