//! Which requests a local listener that acts with the user's identity (`kerbside
//! tunnel`) may serve: those of the user's own tools, not those a web page in the
//! user's browser makes it send.
//!
//! A page can make the browser send a request to `http://127.0.0.1:PORT` (a form
//! POST, an image, `fetch()` in `no-cors` mode), and with DNS rebinding
//! (`evil.example` resolving to 127.0.0.1) even read the answer as its own origin.
//! The browser always tells: the `Host` is the name the page used, and a request a
//! page starts carries `Origin` (every POST, every CORS request) or
//! `Sec-Fetch-Site` (Firefox and Chromium, for loopback addresses). So a request is
//! served only if:
//!
//! * its `Host` (and the authority of an absolute-form target, if any) is the
//!   listener itself: the address the connection came in on, `localhost`,
//!   `127.0.0.1` or `[::1]`, with the listener's port (or a name the user allowed);
//!   a request without `Host` (HTTP/1.0) is no browser's and is served;
//! * any `Origin` is the listener's own origin (`http://` and one of those
//!   authorities); `Origin: null` (a sandboxed frame, a redirect) is refused;
//! * any `Sec-Fetch-Site` is `same-origin` or `none` (the user typed the address);
//!   `same-site` (another port of the same host) and `cross-site` are refused.
//!
//! Header values are given as bytes, every field line of a header separately; a
//! header given more than once is refused (a browser never does that).

use std::net::IpAddr;

use thiserror::Error;

/// The request facts the guard looks at, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOrigin<'a> {
    /// Every `Host` field line.
    pub host: &'a [&'a [u8]],
    /// The authority of an absolute-form request target (`GET http://a:1/ HTTP/1.1`).
    pub target_authority: Option<&'a str>,
    /// Every `Origin` field line.
    pub origin: &'a [&'a [u8]],
    /// Every `Sec-Fetch-Site` field line.
    pub sec_fetch_site: &'a [&'a [u8]],
}

/// Why a request was refused: it may come from a web page.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The `Host` names something other than this listener (DNS rebinding, or the
    /// listener reached under a name it was not told about).
    #[error(
        "Host {0:?} is not this tunnel's address (DNS rebinding by a web page?); tools \
         reach it as localhost or 127.0.0.1 with its port, or name the host with \
         --allowed-host"
    )]
    ForeignHost(String),
    /// An absolute-form request target names another authority (a browser using the
    /// listener as its proxy).
    #[error(
        "the request target names {0:?}, not this tunnel (is a browser using it as a \
         proxy?)"
    )]
    ForeignTarget(String),
    /// `Origin` is another origin: a web page sent it.
    #[error("Origin {0:?} is another site: a web page sent this request")]
    ForeignOrigin(String),
    /// `Origin: null`: a sandboxed or redirected request from a web page.
    #[error("Origin null: a web page (sandboxed, or after a redirect) sent this request")]
    NullOrigin,
    /// `Sec-Fetch-Site` says another site (or another port of this host) started it.
    #[error("Sec-Fetch-Site {0:?}: a web page of another origin sent this request")]
    CrossSite(String),
    /// A header the guard reads came more than once, or is not text.
    #[error("{0} was sent more than once or is not text")]
    Malformed(&'static str),
}

/// The authorities a listener answers to.
#[derive(Debug, Clone)]
pub struct LocalListener {
    port: u16,
    /// Lower-case host names and IP literals (IPv6 in brackets), each with the port
    /// it is reached on.
    allowed: Vec<(String, u16)>,
}

impl LocalListener {
    /// A listener on `port` whose connection came in on `local` (the accepted
    /// socket's own address), also reached as `extra` names (`name` or `name:port`).
    pub fn new(port: u16, local: IpAddr, extra: &[String]) -> Self {
        let mut allowed: Vec<(String, u16)> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|h| ((*h).to_owned(), port))
            .collect();
        let local = match local {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("[{v6}]"),
            },
        };
        allowed.push((local, port));
        for name in extra {
            match split_authority(name.as_bytes()) {
                Some((host, explicit)) => allowed.push((host, explicit.unwrap_or(port))),
                None => allowed.push((name.to_ascii_lowercase(), port)),
            }
        }
        Self { port, allowed }
    }

    /// The listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn is_own(&self, authority: &[u8]) -> bool {
        split_authority(authority).is_some_and(|(host, port)| {
            let port = port.unwrap_or(80);
            self.allowed.iter().any(|(h, p)| *h == host && *p == port)
        })
    }

    /// Whether to serve a request: `Ok` for the user's tools, the reason otherwise.
    pub fn check(&self, request: &RequestOrigin<'_>) -> Result<(), Refusal> {
        match request.host {
            [] => {}
            [host] => {
                if !self.is_own(host) {
                    return Err(Refusal::ForeignHost(shown(host)));
                }
            }
            _ => return Err(Refusal::Malformed("Host")),
        }
        if let Some(authority) = request.target_authority {
            if !self.is_own(authority.as_bytes()) {
                return Err(Refusal::ForeignTarget(shown(authority.as_bytes())));
            }
        }
        match request.origin {
            [] => {}
            [origin] => {
                let origin = origin.trim_ascii();
                if origin.eq_ignore_ascii_case(b"null") {
                    return Err(Refusal::NullOrigin);
                }
                let own = origin
                    .strip_prefix(b"http://")
                    .is_some_and(|authority| self.is_own(authority));
                if !own {
                    return Err(Refusal::ForeignOrigin(shown(origin)));
                }
            }
            _ => return Err(Refusal::Malformed("Origin")),
        }
        match request.sec_fetch_site {
            [] => {}
            [site] => {
                let site = site.trim_ascii();
                if !site.eq_ignore_ascii_case(b"same-origin") && !site.eq_ignore_ascii_case(b"none")
                {
                    return Err(Refusal::CrossSite(shown(site)));
                }
            }
            _ => return Err(Refusal::Malformed("Sec-Fetch-Site")),
        }
        Ok(())
    }
}

/// A header value for a message: text, at most 100 characters.
fn shown(value: &[u8]) -> String {
    String::from_utf8_lossy(value).chars().take(100).collect()
}

/// `host[:port]` → lower-case host (IPv6 in brackets, one trailing dot dropped) and
/// the port if given. `None` for anything else (userinfo, a path, empty parts).
fn split_authority(authority: &[u8]) -> Option<(String, Option<u16>)> {
    let authority = std::str::from_utf8(authority.trim_ascii()).ok()?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let v6: std::net::Ipv6Addr = v6.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// The fuzz target's check: `data` split on LF into Host, Origin, Sec-Fetch-Site
/// and a target authority; the guard never panics, and whatever it lets through
/// names the listener.
pub(crate) fn fuzz_check(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let host = parts.next().unwrap_or_default();
    let origin = parts.next().unwrap_or_default();
    let site = parts.next().unwrap_or_default();
    let target = parts.next().and_then(|t| std::str::from_utf8(t).ok());
    let guard = LocalListener::new(8080, IpAddr::from([127, 0, 0, 1]), &["build".to_owned()]);
    let request = RequestOrigin {
        host: &[host],
        target_authority: target,
        origin: &[origin],
        sec_fetch_site: &[site],
    };
    if guard.check(&request).is_ok() {
        for authority in [Some(host), target.map(str::as_bytes)]
            .into_iter()
            .flatten()
        {
            let (name, port) = split_authority(authority).expect("allowed, so it parsed");
            assert!(["localhost", "127.0.0.1", "[::1]", "build"].contains(&name.as_str()));
            assert_eq!(port.unwrap_or(80), 8080);
        }
        let origin = origin.trim_ascii();
        assert!(origin.starts_with(b"http://"), "{origin:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tunnel() -> LocalListener {
        LocalListener::new(8080, "127.0.0.1".parse().unwrap(), &[])
    }

    fn with_host(host: &str) -> Result<(), Refusal> {
        tunnel().check(&RequestOrigin {
            host: &[host.as_bytes()],
            ..RequestOrigin::default()
        })
    }

    #[test]
    fn tools_reach_it_by_its_own_names() {
        for host in [
            "localhost:8080",
            "LOCALHOST:8080",
            "localhost.:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:8080",
        ] {
            assert_eq!(with_host(host), Ok(()), "{host}");
        }
        assert_eq!(
            tunnel().check(&RequestOrigin::default()),
            Ok(()),
            "HTTP/1.0"
        );
    }

    #[test]
    fn other_hosts_and_ports_are_refused() {
        for host in [
            "evil.example:8080",
            "evil.example",
            "localhost",
            "localhost:80",
            "127.0.0.2:8080",
            "localhost:8080@evil.example",
            "localhost:8080/x",
            "localhost:",
            "localhost:08080x",
            "",
            "[::1",
        ] {
            assert!(
                matches!(with_host(host), Err(Refusal::ForeignHost(_))),
                "{host}"
            );
        }
        let two = tunnel().check(&RequestOrigin {
            host: &[b"localhost:8080", b"localhost:8080"],
            ..RequestOrigin::default()
        });
        assert_eq!(two, Err(Refusal::Malformed("Host")));
    }

    #[test]
    fn port_80_may_go_without_a_port() {
        let on_80 = LocalListener::new(80, "127.0.0.1".parse().unwrap(), &[]);
        let check = |host: &[u8]| {
            on_80.check(&RequestOrigin {
                host: &[host],
                ..RequestOrigin::default()
            })
        };
        assert_eq!(check(b"localhost"), Ok(()));
        assert_eq!(check(b"localhost:80"), Ok(()));
    }

    #[test]
    fn the_accepted_address_and_allowed_names_count_as_its_own() {
        let remote = LocalListener::new(
            8080,
            "192.0.2.7".parse().unwrap(),
            &["build-host".to_owned(), "localhost:9000".to_owned()],
        );
        let check = |host: &[u8]| {
            remote.check(&RequestOrigin {
                host: &[host],
                ..RequestOrigin::default()
            })
        };
        assert_eq!(check(b"192.0.2.7:8080"), Ok(()));
        assert_eq!(check(b"Build-Host:8080"), Ok(()));
        assert_eq!(check(b"localhost:9000"), Ok(()), "an ssh -L forward");
        assert!(check(b"192.0.2.8:8080").is_err());
        assert!(check(b"build-host:9000").is_err());
        let mapped = LocalListener::new(8080, "::ffff:127.0.0.5".parse().unwrap(), &[]);
        assert_eq!(
            mapped.check(&RequestOrigin {
                host: &[b"127.0.0.5:8080"],
                ..RequestOrigin::default()
            }),
            Ok(())
        );
    }

    #[test]
    fn an_absolute_target_must_name_the_tunnel_too() {
        let check = |target: &str| {
            tunnel().check(&RequestOrigin {
                host: &[b"localhost:8080"],
                target_authority: Some(target),
                ..RequestOrigin::default()
            })
        };
        assert_eq!(check("127.0.0.1:8080"), Ok(()));
        assert!(matches!(
            check("evil.example"),
            Err(Refusal::ForeignTarget(_))
        ));
    }

    #[test]
    fn only_its_own_origin_may_send_an_origin() {
        let check = |origin: &[u8]| {
            tunnel().check(&RequestOrigin {
                host: &[b"localhost:8080"],
                origin: &[origin],
                ..RequestOrigin::default()
            })
        };
        assert_eq!(check(b"http://localhost:8080"), Ok(()));
        assert_eq!(check(b"http://127.0.0.1:8080"), Ok(()));
        assert_eq!(check(b"null"), Err(Refusal::NullOrigin));
        for origin in [
            &b"http://127.0.0.2:8080"[..],
            b"http://localhost:8081",
            b"http://localhost",
            b"https://localhost:8080",
            b"http://evil.example",
            b"http://localhost:8080/",
            b"",
            b"\xff",
        ] {
            assert!(
                matches!(check(origin), Err(Refusal::ForeignOrigin(_))),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn sec_fetch_site_must_be_same_origin_or_none() {
        let check = |site: &[u8]| {
            tunnel().check(&RequestOrigin {
                host: &[b"localhost:8080"],
                sec_fetch_site: &[site],
                ..RequestOrigin::default()
            })
        };
        assert_eq!(check(b"same-origin"), Ok(()));
        assert_eq!(check(b"none"), Ok(()));
        assert_eq!(
            check(b"same-site"),
            Err(Refusal::CrossSite("same-site".into()))
        );
        assert_eq!(
            check(b"cross-site"),
            Err(Refusal::CrossSite("cross-site".into()))
        );
        assert!(check(b"whatever").is_err());
    }

    #[test]
    fn refusals_say_what_to_do() {
        let text = with_host("evil.example:8080").unwrap_err().to_string();
        assert!(text.contains("--allowed-host"), "{text}");
    }

    proptest! {
        #[test]
        fn no_header_value_panics_and_foreign_names_never_pass(
            host in proptest::collection::vec(any::<u8>(), 0..40),
            origin in proptest::collection::vec(any::<u8>(), 0..40),
            site in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let guard = tunnel();
            let result = guard.check(&RequestOrigin {
                host: &[&host],
                target_authority: None,
                origin: &[&origin],
                sec_fetch_site: &[&site],
            });
            if result.is_ok() {
                let (name, port) = split_authority(&host).unwrap();
                prop_assert!(["localhost", "127.0.0.1", "[::1]"].contains(&name.as_str()));
                prop_assert_eq!(port.unwrap_or(80), 8080);
            }
        }
    }
}
