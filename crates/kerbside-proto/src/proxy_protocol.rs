//! The PROXY protocol header (HAProxy's, versions 1 and 2): what a load balancer in front
//! of the gate sends first on each connection to say who the client is.
//!
//! [`parse`] reads the start of a connection and says whether a whole header is there yet
//! ([`Parsed::Incomplete`] with how many bytes it needs at least), what it says
//! ([`Header`]) and how many bytes it took, or why the bytes are not a header. It never
//! reads past the header: the bytes after it belong to TLS or HTTP.
//!
//! Only what the gate uses is kept: the client's (source) and the balancer's (destination)
//! addresses of a TCP connection over IPv4 or IPv6. `LOCAL` (v2's health checks) and
//! `UNKNOWN` (v1) carry no client, and give [`Header::source`] `None`: the connection is
//! the balancer's own. TLVs of v2 are skipped. Anything else (UDP, UNIX sockets, a bad
//! version) is refused: the gate closes such a connection rather than guess.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes that open a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A version 1 header is at most this long, `\r\n` included (the specification's limit).
pub const V1_MAX_LEN: usize = 107;

/// A version 2 header's address block is at most this long here: the addresses and the
/// TLVs a balancer adds (ALPN, authority, unique id, SSL details) fit in far less. Longer
/// is refused instead of buffered.
pub const V2_MAX_BLOCK: usize = 2048;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// The client's address, as the balancer saw it; `None` for `LOCAL` (v2) and
    /// `UNKNOWN` (v1), where the connection is the balancer's own.
    pub source: Option<SocketAddr>,
    /// The address the client connected to on the balancer; `None` with `source`.
    pub destination: Option<SocketAddr>,
}

/// The outcome of [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far are the start of a header; at least `needed` bytes in all are
    /// required before it can be read.
    Incomplete {
        /// The length, counted from the start of the connection, to wait for at least.
        needed: usize,
    },
    /// A whole header, `consumed` bytes long.
    Complete {
        /// What it says.
        header: Header,
        /// Its length: the connection's own bytes start here.
        consumed: usize,
    },
}

/// Why the bytes are not a PROXY protocol header the gate takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// Neither `PROXY ` nor the version 2 signature: the peer does not speak the
    /// PROXY protocol (a client that reached the gate without the balancer?).
    #[error("the connection does not start with a PROXY protocol header")]
    NotProxyProtocol,
    /// A version 1 line longer than 107 bytes, or without its `\r\n`.
    #[error("the PROXY protocol v1 line is longer than 107 bytes")]
    V1TooLong,
    /// A version 1 line that does not follow the grammar.
    #[error("malformed PROXY protocol v1 line: {0}")]
    V1Malformed(&'static str),
    /// A version 2 header of another version, or a command other than LOCAL/PROXY.
    #[error("unsupported PROXY protocol v2 version or command byte {0:#04x}")]
    V2Command(u8),
    /// A version 2 address family or transport other than TCP over IPv4/IPv6
    /// (UDP, UNIX sockets).
    #[error("unsupported PROXY protocol v2 address family byte {0:#04x}")]
    V2Family(u8),
    /// The address block is shorter than its family needs, or longer than
    /// [`V2_MAX_BLOCK`].
    #[error("bad PROXY protocol v2 length {0}")]
    V2Length(usize),
}

/// Reads the PROXY protocol header at the start of `data` (the connection's first bytes).
pub fn parse(data: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if data.is_empty() {
        return Ok(Parsed::Incomplete { needed: 1 });
    }
    if data[0] == V2_SIGNATURE[0] {
        return parse_v2(data);
    }
    parse_v1(data)
}

fn parse_v1(data: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    const PREFIX: &[u8] = b"PROXY ";
    let start = &data[..data.len().min(PREFIX.len())];
    if !PREFIX.starts_with(start) {
        return Err(ProxyHeaderError::NotProxyProtocol);
    }
    let window = &data[..data.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if data.len() >= V1_MAX_LEN {
            return Err(ProxyHeaderError::V1TooLong);
        }
        return Ok(Parsed::Incomplete {
            needed: data.len() + 1,
        });
    };
    let line = std::str::from_utf8(&window[PREFIX.len().min(end)..end])
        .map_err(|_| ProxyHeaderError::V1Malformed("not ASCII"))?;
    let header = parse_v1_fields(line)?;
    Ok(Parsed::Complete {
        header,
        consumed: end + 2,
    })
}

fn parse_v1_fields(line: &str) -> Result<Header, ProxyHeaderError> {
    let mut fields = line.split(' ');
    let protocol = fields.next().unwrap_or_default();
    if protocol == "UNKNOWN" {
        // The rest of the line is to be ignored (the specification).
        return Ok(Header {
            version: 1,
            source: None,
            destination: None,
        });
    }
    let v6 = match protocol {
        "TCP4" => false,
        "TCP6" => true,
        _ => {
            return Err(ProxyHeaderError::V1Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let mut next = || {
        fields
            .next()
            .filter(|f| !f.is_empty())
            .ok_or(ProxyHeaderError::V1Malformed("a field is missing"))
    };
    let source_ip = ip(next()?, v6)?;
    let destination_ip = ip(next()?, v6)?;
    let source_port = port(next()?)?;
    let destination_port = port(next()?)?;
    if fields.next().is_some() {
        return Err(ProxyHeaderError::V1Malformed("too many fields"));
    }
    Ok(Header {
        version: 1,
        source: Some(SocketAddr::new(source_ip, source_port)),
        destination: Some(SocketAddr::new(destination_ip, destination_port)),
    })
}

fn ip(text: &str, v6: bool) -> Result<IpAddr, ProxyHeaderError> {
    if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    }
    .map_err(|_| ProxyHeaderError::V1Malformed("an address does not match its protocol"))
}

/// A decimal port without sign or leading zeros (the specification's form).
fn port(text: &str) -> Result<u16, ProxyHeaderError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    text.parse::<u16>()
        .ok()
        .filter(|_| canonical)
        .ok_or(ProxyHeaderError::V1Malformed(
            "a port is not a number from 0 to 65535",
        ))
}

fn parse_v2(data: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let head = &data[..data.len().min(V2_SIGNATURE.len())];
    if !V2_SIGNATURE.starts_with(head) {
        return Err(ProxyHeaderError::NotProxyProtocol);
    }
    if data.len() < 16 {
        return Ok(Parsed::Incomplete { needed: 16 });
    }
    let version_command = data[12];
    let family = data[13];
    let length = usize::from(u16::from_be_bytes([data[14], data[15]]));
    let local = match version_command {
        0x20 => true,
        0x21 => false,
        other => return Err(ProxyHeaderError::V2Command(other)),
    };
    if length > V2_MAX_BLOCK {
        return Err(ProxyHeaderError::V2Length(length));
    }
    let consumed = 16 + length;
    if data.len() < consumed {
        return Ok(Parsed::Incomplete { needed: consumed });
    }
    let block = &data[16..consumed];
    if local {
        // A LOCAL connection's addresses are to be ignored, whatever the family says.
        return Ok(Parsed::Complete {
            header: Header {
                version: 2,
                source: None,
                destination: None,
            },
            consumed,
        });
    }
    let (source, destination) = match family {
        // TCP over IPv4: 4 + 4 address bytes, 2 + 2 port bytes.
        0x11 => {
            let b = block.get(..12).ok_or(ProxyHeaderError::V2Length(length))?;
            let src = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let dst = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            (
                SocketAddr::new(src.into(), u16::from_be_bytes([b[8], b[9]])),
                SocketAddr::new(dst.into(), u16::from_be_bytes([b[10], b[11]])),
            )
        }
        // TCP over IPv6: 16 + 16, 2 + 2.
        0x21 => {
            let b = block.get(..36).ok_or(ProxyHeaderError::V2Length(length))?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&b[..16]);
            dst.copy_from_slice(&b[16..32]);
            (
                SocketAddr::new(
                    Ipv6Addr::from(src).into(),
                    u16::from_be_bytes([b[32], b[33]]),
                ),
                SocketAddr::new(
                    Ipv6Addr::from(dst).into(),
                    u16::from_be_bytes([b[34], b[35]]),
                ),
            )
        }
        other => return Err(ProxyHeaderError::V2Family(other)),
    };
    Ok(Parsed::Complete {
        header: Header {
            version: 2,
            source: Some(source),
            destination: Some(destination),
        },
        consumed,
    })
}

/// Encodes a version 2 `PROXY` header for TCP between `source` and `destination` (both of
/// one family), as a balancer would: for tests and the fuzz check.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Option<Vec<u8>> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    let mut block = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            block.extend_from_slice(&s.ip().octets());
            block.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            block.extend_from_slice(&s.ip().octets());
            block.extend_from_slice(&d.ip().octets());
        }
        _ => return None,
    }
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    block.extend_from_slice(tlvs);
    let length = u16::try_from(block.len()).ok()?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&block);
    Some(out)
}

/// Encodes a version 1 line for TCP between `source` and `destination`.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Option<String> {
    let protocol = match (source, destination) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => "TCP4",
        (SocketAddr::V6(_), SocketAddr::V6(_)) => "TCP6",
        _ => return None,
    };
    Some(format!(
        "PROXY {protocol} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    ))
}

/// The fuzz check: no panic; a complete header's length is within the input and within
/// the limits; every prefix of a complete header is `Incomplete` with a need beyond it
/// (never an error, never a different header); and what a balancer would encode reads
/// back as itself.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(Parsed::Complete { header, consumed }) = parse(data) {
        assert!(consumed <= data.len());
        assert!(consumed <= 16 + V2_MAX_BLOCK);
        for cut in 0..consumed {
            match parse(&data[..cut]) {
                Ok(Parsed::Incomplete { needed }) => assert!(needed > cut),
                other => panic!("prefix of {cut} bytes of a header read as {other:?}"),
            }
        }
        if let (Some(s), Some(d)) = (header.source, header.destination) {
            let encoded = if header.version == 1 {
                encode_v1(s, d).map(String::into_bytes)
            } else {
                encode_v2(s, d, &[])
            };
            let encoded = encoded.expect("the addresses of one header are of one family");
            assert_eq!(
                parse(&encoded),
                Ok(Parsed::Complete {
                    header,
                    consumed: encoded.len()
                })
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_haproxy_v1_lines() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(line),
            Ok(Parsed::Complete {
                header: Header {
                    version: 1,
                    source: Some(addr("192.0.2.7:56324")),
                    destination: Some(addr("198.51.100.1:443")),
                },
                consumed: 45,
            })
        );
        let v6 = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
        assert!(matches!(
            parse(v6),
            Ok(Parsed::Complete { header: Header { source: Some(s), .. }, consumed: 36 })
                if s == addr("[2001:db8::1]:1")
        ));
        assert_eq!(
            parse(b"PROXY UNKNOWN whatever\r\n"),
            Ok(Parsed::Complete {
                header: Header {
                    version: 1,
                    source: None,
                    destination: None
                },
                consumed: 24
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_v1_line() {
        use ProxyHeaderError::*;
        for (input, want) in [
            (&b"GET / HTTP/1.1\r\n"[..], NotProxyProtocol),
            (b"\x16\x03\x01\x02\x00", NotProxyProtocol),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                V1Malformed("too many fields"),
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                V1Malformed("a field is missing"),
            ),
            (
                b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
                V1Malformed("a field is missing"),
            ),
            (
                b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
                V1Malformed("an address does not match its protocol"),
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
                V1Malformed("a port is not a number from 0 to 65535"),
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                V1Malformed("a port is not a number from 0 to 65535"),
            ),
            (
                b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
                V1Malformed("protocol is not TCP4, TCP6 or UNKNOWN"),
            ),
        ] {
            assert_eq!(parse(input), Err(want), "{}", input.escape_ascii());
        }
        let long = format!("PROXY TCP4 {}", "1".repeat(200));
        assert_eq!(parse(long.as_bytes()), Err(V1TooLong));
    }

    #[test]
    fn a_v1_line_in_pieces_is_incomplete_until_its_end() {
        let line = b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n";
        for cut in 0..line.len() {
            assert!(
                matches!(parse(&line[..cut]), Ok(Parsed::Incomplete { needed }) if needed > cut),
                "{cut}"
            );
        }
    }

    #[test]
    fn reads_v2_headers_with_tlvs_and_local() {
        let tlv = [0x01, 0x00, 0x02, b'h', b'2']; // PP2_TYPE_ALPN "h2"
        let header = encode_v2(addr("192.0.2.7:56324"), addr("198.51.100.1:443"), &tlv).unwrap();
        let mut input = header.clone();
        input.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse(&input),
            Ok(Parsed::Complete {
                header: Header {
                    version: 2,
                    source: Some(addr("192.0.2.7:56324")),
                    destination: Some(addr("198.51.100.1:443")),
                },
                consumed: header.len(),
            })
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&local),
            Ok(Parsed::Complete {
                header: Header {
                    version: 2,
                    source: None,
                    destination: None
                },
                consumed: 16
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_v2_header_the_gate_takes() {
        use ProxyHeaderError::*;
        let with = |cmd: u8, fam: u8, len: u16, block: &[u8]| {
            let mut v = V2_SIGNATURE.to_vec();
            v.extend_from_slice(&[cmd, fam]);
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(block);
            v
        };
        assert_eq!(parse(&with(0x11, 0x11, 12, &[0; 12])), Err(V2Command(0x11)));
        assert_eq!(parse(&with(0x22, 0x11, 12, &[0; 12])), Err(V2Command(0x22)));
        assert_eq!(parse(&with(0x21, 0x12, 12, &[0; 12])), Err(V2Family(0x12)));
        assert_eq!(
            parse(&with(0x21, 0x31, 216, &[0; 216])),
            Err(V2Family(0x31))
        );
        assert_eq!(parse(&with(0x21, 0x11, 8, &[0; 8])), Err(V2Length(8)));
        assert_eq!(parse(&with(0x21, 0x21, 12, &[0; 12])), Err(V2Length(12)));
        assert_eq!(parse(&with(0x21, 0x11, 4000, &[])), Err(V2Length(4000)));
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(NotProxyProtocol));
        assert_eq!(
            parse(&with(0x21, 0x11, 12, &[0; 5])),
            Ok(Parsed::Incomplete { needed: 28 })
        );
    }

    #[test]
    fn seeds_pass_the_fuzz_check() {
        let seeds = kerbside_testkit::fuzz_seeds("proxy_protocol");
        assert!(seeds.len() >= 4);
        for (_, data) in seeds {
            fuzz_check(&data);
        }
    }

    fn socket_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<u16>(),
                any::<[u8; 4]>(),
                any::<u16>()
            )
                .prop_map(|(a, p, b, q)| (
                    SocketAddr::new(Ipv4Addr::from(a).into(), p),
                    SocketAddr::new(Ipv4Addr::from(b).into(), q)
                )),
            (
                any::<[u8; 16]>(),
                any::<u16>(),
                any::<[u8; 16]>(),
                any::<u16>()
            )
                .prop_map(|(a, p, b, q)| (
                    SocketAddr::new(Ipv6Addr::from(a).into(), p),
                    SocketAddr::new(Ipv6Addr::from(b).into(), q)
                )),
        ]
    }

    proptest! {
        #[test]
        fn encoded_headers_read_back_and_leave_the_rest(
            (s, d) in socket_pair(),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
            v2 in any::<bool>(),
        ) {
            let mut input = if v2 {
                encode_v2(s, d, &[]).unwrap()
            } else {
                encode_v1(s, d).unwrap().into_bytes()
            };
            let len = input.len();
            input.extend_from_slice(&rest);
            fuzz_check(&input);
            prop_assert_eq!(
                parse(&input),
                Ok(Parsed::Complete {
                    header: Header { version: if v2 { 2 } else { 1 }, source: Some(s), destination: Some(d) },
                    consumed: len,
                })
            );
        }

        #[test]
        fn any_bytes_pass_the_fuzz_check(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_check(&data);
        }
    }
}
