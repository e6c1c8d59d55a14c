//! Host lists (`--noproxy`, `no_proxy`, `--auth-proxies`) and address ranges
//! (`--allow`): parsed once into [`HostList`] and [`Cidr`], matched without a
//! network (no DNS look-up: a name matches name patterns, an address matches
//! address patterns).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Why an entry of a host list or an address range could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HostListError {
    /// A CIDR range whose address or prefix length does not parse, or whose
    /// prefix is longer than the address.
    #[error(
        "{0:?} is not an address range: write it as ADDRESS/BITS, e.g. 10.0.0.0/8 or fd00::/8"
    )]
    BadCidr(String),
    /// An entry with characters no host name, address or wildcard has.
    #[error(
        "{0:?} is not a host pattern: use a name (example.com, with its subdomains), \
         .example.com, *.example.com, an address, a CIDR range or *"
    )]
    BadPattern(String),
}

/// An address range: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `ADDRESS/BITS` or a bare address (all of its bits).
    pub fn parse(text: &str) -> Result<Cidr, HostListError> {
        let bad = || HostListError::BadCidr(text.to_owned());
        let text = text.trim();
        let (address, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = max_bits(network);
        let bits = match bits {
            None => max,
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) && b.len() <= 3 => {
                b.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if bits > max {
            return Err(bad());
        }
        if bits == max {
            return Ok(Cidr::single(network));
        }
        Ok(Cidr {
            network: mask(network, bits),
            bits,
        })
    }

    /// One address, all of its bits.
    pub fn single(address: IpAddr) -> Cidr {
        let address = canonical_ip(address);
        Cidr {
            network: address,
            bits: max_bits(address),
        }
    }

    /// Whether `address` is in the range. An IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.1`, as a dual-stack listener sees IPv4 clients) is its IPv4
    /// address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical_ip(address);
        match (self.network, address) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(address, self.bits) == self.network
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; any other as it is.
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn max_bits(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(address: IpAddr, bits: u8) -> IpAddr {
    match address {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// One entry of a host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: every host.
    Any,
    /// `example.com` or `.example.com`: the name and its subdomains (as curl).
    Domain(String),
    /// `*.example.com`: subdomains only.
    Subdomains(String),
    /// A pattern with `*` (any run of characters) or `?` (one character)
    /// elsewhere, e.g. `build-*.corp.example` (as cntlm and px).
    Wildcard(String),
    /// An address or a CIDR range; matches hosts written as addresses.
    Range(Cidr),
}

impl HostPattern {
    /// Parses one entry; surrounding white space is ignored.
    pub fn parse(entry: &str) -> Result<HostPattern, HostListError> {
        let entry = entry.trim();
        if entry.contains('/') || entry.parse::<IpAddr>().is_ok() || entry.starts_with('[') {
            return Cidr::parse(entry).map(HostPattern::Range);
        }
        let name = entry.trim_end_matches('.').to_ascii_lowercase();
        if name == "*" {
            return Ok(HostPattern::Any);
        }
        if let Ok(address) = name.parse::<IpAddr>() {
            return Ok(HostPattern::Range(Cidr::single(address)));
        }
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._*?".contains(&b));
        if !valid {
            return Err(HostListError::BadPattern(entry.to_owned()));
        }
        if let Some(rest) = name.strip_prefix("*.") {
            if !rest.is_empty() && !rest.contains(['*', '?']) {
                return Ok(HostPattern::Subdomains(rest.to_owned()));
            }
        }
        if name.contains(['*', '?']) {
            return Ok(HostPattern::Wildcard(name));
        }
        let domain = name.trim_start_matches('.');
        if domain.is_empty() {
            return Err(HostListError::BadPattern(entry.to_owned()));
        }
        Ok(HostPattern::Domain(domain.to_owned()))
    }

    /// Whether `host` (a name or an address, as in a URL; `[::1]` with or without
    /// brackets) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = normal_host(host);
        let address = host.parse::<IpAddr>().ok();
        match (self, address) {
            (HostPattern::Any, _) => true,
            (HostPattern::Range(range), Some(a)) => range.contains(a),
            (HostPattern::Range(_), None) => false,
            (HostPattern::Domain(d), _) => {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.'))
            }
            (HostPattern::Subdomains(d), _) => host
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            (HostPattern::Wildcard(p), _) => glob(p.as_bytes(), host.as_bytes()),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Domain(d) => f.write_str(d),
            HostPattern::Subdomains(d) => write!(f, "*.{d}"),
            HostPattern::Wildcard(p) => f.write_str(p),
            HostPattern::Range(r) => write!(f, "{r}"),
        }
    }
}

/// A host as compared: lower case, no brackets, no trailing dot, an IPv4-mapped
/// address as its IPv4 address.
pub fn normal_host(host: &str) -> String {
    let host = host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(a) => canonical_ip(a).to_string(),
        Err(_) => host,
    }
}

/// `*` any run, `?` one byte; iterative with one backtrack point, so linear in
/// practice and never recursive.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == b'?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

/// A comma- (or space-) separated host list: `--noproxy`, `no_proxy`,
/// `--auth-proxies`. An empty list matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList {
    patterns: Vec<HostPattern>,
}

impl HostList {
    /// Parses a list; empty entries are skipped, a bad one fails the whole list
    /// (naming it).
    pub fn parse(text: &str) -> Result<HostList, HostListError> {
        let patterns = text
            .split([',', ' ', '\t', '\n', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(HostPattern::parse)
            .collect::<Result<_, _>>()?;
        Ok(HostList { patterns })
    }

    /// A list of the given patterns.
    pub fn of(patterns: Vec<HostPattern>) -> HostList {
        HostList { patterns }
    }

    /// Adds a pattern.
    pub fn push(&mut self, pattern: HostPattern) {
        self.patterns.push(pattern);
    }

    /// The first pattern `host` matches, for a log line saying why.
    pub fn matching(&self, host: &str) -> Option<&HostPattern> {
        self.patterns.iter().find(|p| p.matches(host))
    }

    /// Whether `host` matches any pattern.
    pub fn matches(&self, host: &str) -> bool {
        self.matching(host).is_some()
    }

    /// The patterns.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }

    /// True if the list has no pattern.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl std::fmt::Display for HostList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Which client addresses may use the proxy (`--allow`, repeatable). The default
/// is loopback only: `127.0.0.0/8` and `::1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAllowList {
    ranges: Vec<Cidr>,
}

impl Default for ClientAllowList {
    fn default() -> Self {
        ClientAllowList {
            ranges: vec![
                Cidr {
                    network: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                    bits: 8,
                },
                Cidr::single(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ],
        }
    }
}

impl ClientAllowList {
    /// The ranges given (each entry a CIDR range or an address); none means the
    /// default.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<ClientAllowList, HostListError> {
        let ranges: Vec<Cidr> = entries
            .into_iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()?;
        if ranges.is_empty() {
            return Ok(ClientAllowList::default());
        }
        Ok(ClientAllowList { ranges })
    }

    /// Whether a client at `address` may use the proxy.
    pub fn allows(&self, address: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(address))
    }

    /// True if every allowed address is a loopback address.
    pub fn only_loopback(&self) -> bool {
        self.ranges.iter().all(|r| match r.network {
            IpAddr::V4(a) => a.is_loopback() && r.bits >= 8,
            IpAddr::V6(a) => a.is_loopback() && r.bits == 128,
        })
    }

    /// The ranges.
    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> HostList {
        HostList::parse(text).unwrap()
    }

    #[test]
    fn names_match_themselves_and_their_subdomains() {
        let l = list("example.com, .corp.example ,*.wild.example");
        for host in [
            "example.com",
            "EXAMPLE.com.",
            "a.example.com",
            "corp.example",
            "x.y.corp.example",
            "a.wild.example",
        ] {
            assert!(l.matches(host), "{host}");
        }
        for host in [
            "notexample.com",
            "example.com.evil",
            "wild.example",
            "example",
            "10.0.0.1",
        ] {
            assert!(!l.matches(host), "{host}");
        }
    }

    #[test]
    fn wildcards_and_ranges() {
        let l = list("build-*.corp.example,10.0.0.0/8,::1,192.168.1.?");
        assert!(l.matches("build-42.corp.example"));
        assert!(!l.matches("build.corp.example"));
        assert!(l.matches("10.200.3.4"));
        assert!(l.matches("::ffff:10.1.1.1"));
        assert!(!l.matches("11.0.0.1"));
        assert!(l.matches("[::1]"));
        assert!(l.matches("192.168.1.7"));
        assert!(!l.matches("192.168.1.77"));
        assert!(list("*").matches("anything.example"));
        assert!(!HostList::default().matches("anything"));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "::1/129",
            "ab/c",
            "exa$mple",
            "ex:ample",
            ".",
        ] {
            let e = HostList::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad.trim()), "{bad}: {e}");
        }
    }

    #[test]
    fn the_allow_list_defaults_to_loopback() {
        let d = ClientAllowList::parse([]).unwrap();
        assert!(d.allows("127.0.0.2".parse().unwrap()));
        assert!(d.allows("::1".parse().unwrap()));
        assert!(d.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!d.allows("10.0.0.1".parse().unwrap()));
        assert!(d.only_loopback());
        let l = ClientAllowList::parse(["127.0.0.1/32", "10.0.0.0/8,fd00::/8"]).unwrap();
        assert!(!l.allows("127.0.0.2".parse().unwrap()));
        assert!(l.allows("10.9.9.9".parse().unwrap()));
        assert!(l.allows("fd12::1".parse().unwrap()));
        assert!(!l.only_loopback());
        assert!(ClientAllowList::parse(["127.0.0.1/40"]).is_err());
    }

    #[test]
    fn glob_is_not_fooled() {
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b*c", b"aXXbYY"));
        assert!(glob(b"*", b""));
        assert!(glob(b"**a", b"ba"));
        assert!(!glob(b"?", b""));
    }
}
