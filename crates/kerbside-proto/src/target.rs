//! Which Kerberos service name a client asks a ticket for.
//!
//! By default it is `HTTP@<host as written in the URL>`. Canonicalising the host
//! through DNS (following CNAMEs, as browsers may) is opt-in: a spoofed DNS answer
//! could then choose which service the ticket is for. Including the port
//! (`HTTP/host:port`) is opt-in for the rare realms that register such names.

/// Settings for choosing the target name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetNameSettings {
    /// Explicit names per host (compared without ASCII case); `*` matches any host.
    pub overrides: Vec<(String, String)>,
    /// Follow DNS to the canonical host name first (weaker against DNS spoofing).
    pub canonicalize: bool,
    /// Put a non-default port into the name: `HTTP/host:port` (a Kerberos principal
    /// in the default realm).
    pub include_port: bool,
}

/// A chosen target name and the reason, for `-v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetName {
    /// `HTTP@host`, `HTTP/host:port` or an explicit name.
    pub name: String,
    /// Why this name.
    pub reason: String,
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

impl TargetNameSettings {
    fn explicit(&self, host: &str) -> Option<&str> {
        self.overrides
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
            .or_else(|| self.overrides.iter().find(|(h, _)| h == "*"))
            .map(|(_, n)| n.as_str())
    }

    /// True if [`resolve`](Self::resolve) wants the canonical name of `host`.
    pub fn needs_canonical_name(&self, host: &str) -> bool {
        self.canonicalize && self.explicit(host).is_none() && !is_ip(host)
    }

    /// Chooses the name for `host`; `port` is the URL's port when it is not the
    /// scheme's default; `canonical` is what DNS said when asked.
    pub fn resolve(&self, host: &str, port: Option<u16>, canonical: Option<&str>) -> TargetName {
        if let Some(name) = self.explicit(host) {
            return TargetName {
                name: name.to_owned(),
                reason: format!("given for {host} (--spn)"),
            };
        }
        let (host_part, mut reason) = match canonical {
            Some(c) if self.canonicalize && !c.is_empty() && !c.eq_ignore_ascii_case(host) => (
                c.trim_end_matches('.').to_ascii_lowercase(),
                format!("canonical name of {host} in DNS (--spn-canonicalize)"),
            ),
            _ => (host.to_owned(), "the host of the URL".to_owned()),
        };
        match port {
            Some(port) if self.include_port => {
                reason.push_str(", with its port (--spn-port)");
                TargetName {
                    name: format!("HTTP/{host_part}:{port}"),
                    reason,
                }
            }
            _ => TargetName {
                name: format!("HTTP@{host_part}"),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_url_host() {
        let t = TargetNameSettings::default().resolve("www.example.test", Some(8443), Some("x"));
        assert_eq!(t.name, "HTTP@www.example.test");
        assert_eq!(t.reason, "the host of the URL");
    }

    #[test]
    fn overrides_canonical_names_and_ports() {
        let s = TargetNameSettings {
            overrides: vec![("Git.Example.Test".into(), "HTTP/git-lb@EXAMPLE.TEST".into())],
            canonicalize: true,
            include_port: true,
        };
        assert_eq!(
            s.resolve("git.example.test", None, None).name,
            "HTTP/git-lb@EXAMPLE.TEST"
        );
        assert!(!s.needs_canonical_name("git.example.test"));
        assert!(s.needs_canonical_name("alias.example.test"));
        assert!(!s.needs_canonical_name("127.0.0.1"));
        let t = s.resolve("alias.example.test", Some(8443), Some("Real.Example.Test."));
        assert_eq!(t.name, "HTTP/real.example.test:8443");
        assert!(
            t.reason.contains("canonical") && t.reason.contains("port"),
            "{}",
            t.reason
        );
        assert_eq!(s.resolve("h", None, Some("h")).name, "HTTP@h");
    }
}
