//! The three NTLM messages (MS-NLMP §2.2.1), their negotiate flags (§2.2.2.5), AV pairs
//! (§2.2.2.1), the VERSION structure (§2.2.2.10) and the NTLMv2 client challenge (§2.2.2.7).
//!
//! Parsers take untrusted bytes: the signature, the message type and every offset and length
//! are checked against the buffer, and text that is not valid UTF-16LE is an error rather than
//! a replacement character. Only the Unicode form is supported: a CHALLENGE or AUTHENTICATE
//! without NTLMSSP_NEGOTIATE_UNICODE is refused with [`MessageError::OemOnly`]. (A NEGOTIATE may
//! offer OEM only, as curl's does: the server answers in Unicode anyway, and curl follows.)
//!
//! Each parsed value encodes back into bytes that parse to the same value; the encoders lay out
//! their payload right after the fixed header, in field order.

use std::fmt;

/// The eight bytes every NTLM message starts with.
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Why bytes are not a well-formed NTLM message or structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The bytes end before a fixed-size part of the message.
    #[error("it is {len} bytes long, shorter than the {needed} bytes its header needs")]
    TooShort {
        /// The length of the input.
        len: usize,
        /// The length needed.
        needed: usize,
    },
    /// The message does not start with `NTLMSSP\0`.
    #[error("it does not start with the NTLMSSP signature")]
    BadSignature,
    /// The message type field names another message.
    #[error("it is an NTLM message of type {found}, where type {expected} was expected")]
    WrongType {
        /// The type expected (1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE).
        expected: u32,
        /// The type found.
        found: u32,
    },
    /// A field's offset and length point outside the message, or into its fixed header.
    #[error("its {field} field points outside the message (offset {offset}, length {len})")]
    FieldOutOfBounds {
        /// The field's name in MS-NLMP.
        field: &'static str,
        /// The offset it gives.
        offset: u32,
        /// The length it gives.
        len: u16,
    },
    /// A text field is not valid UTF-16LE (odd length or unpaired surrogate).
    #[error("its {field} field is not valid UTF-16LE text")]
    InvalidUtf16 {
        /// The field's name in MS-NLMP.
        field: &'static str,
    },
    /// The peer set NTLMSSP_NEGOTIATE_OEM but not NTLMSSP_NEGOTIATE_UNICODE: it only speaks
    /// 8-bit code-page strings, which kerbside does not support.
    #[error("it uses only OEM (code page) strings; kerbside requires NTLMSSP_NEGOTIATE_UNICODE")]
    OemOnly,
    /// An AV pair runs past the end of its list, or the list has no MsvAvEOL terminator.
    #[error("its AV pair list is truncated or lacks its MsvAvEOL terminator")]
    TruncatedAvPairs,
    /// An AV pair of a fixed-size type has the wrong length.
    #[error("its AV pair {id} has length {len}, where {expected} bytes are required")]
    BadAvPairLength {
        /// The AvId.
        id: u16,
        /// The AvLen found.
        len: u16,
        /// The length the type requires.
        expected: u16,
    },
    /// A field is longer than the 65535 bytes its length field can express.
    #[error("its {field} field is too long to encode ({len} bytes)")]
    FieldTooLong {
        /// The field's name in MS-NLMP.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The NTLMv2 client challenge (the blob after NTProofStr) is malformed.
    #[error("its NTLMv2 client challenge is malformed: {0}")]
    BadClientChallenge(&'static str),
}

/// The NegotiateFlags field (MS-NLMP §2.2.2.5): which options a side asks for or grants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NegotiateFlags(pub u32);

impl NegotiateFlags {
    /// NTLMSSP_NEGOTIATE_UNICODE: strings are UTF-16LE.
    pub const UNICODE: Self = Self(0x0000_0001);
    /// NTLM_NEGOTIATE_OEM: strings are in the OEM code page.
    pub const OEM: Self = Self(0x0000_0002);
    /// NTLMSSP_REQUEST_TARGET: the client asks for the server's target name in the CHALLENGE.
    pub const REQUEST_TARGET: Self = Self(0x0000_0004);
    /// NTLMSSP_NEGOTIATE_SIGN: session signing (integrity).
    pub const SIGN: Self = Self(0x0000_0010);
    /// NTLMSSP_NEGOTIATE_SEAL: session sealing (confidentiality).
    pub const SEAL: Self = Self(0x0000_0020);
    /// NTLMSSP_NEGOTIATE_DATAGRAM: connectionless NTLM.
    pub const DATAGRAM: Self = Self(0x0000_0040);
    /// NTLMSSP_NEGOTIATE_LM_KEY: LAN Manager session key (NTLMv1 only; never used here).
    pub const LM_KEY: Self = Self(0x0000_0080);
    /// NTLMSSP_NEGOTIATE_NTLM: NTLM authentication (set by every client).
    pub const NTLM: Self = Self(0x0000_0200);
    /// NTLMSSP_ANONYMOUS (the "J" bit): an anonymous connection.
    pub const ANONYMOUS: Self = Self(0x0000_0800);
    /// NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED: the NEGOTIATE carries a domain name.
    pub const OEM_DOMAIN_SUPPLIED: Self = Self(0x0000_1000);
    /// NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED: the NEGOTIATE carries a workstation name.
    pub const OEM_WORKSTATION_SUPPLIED: Self = Self(0x0000_2000);
    /// NTLMSSP_NEGOTIATE_ALWAYS_SIGN: a dummy signature even without SIGN.
    pub const ALWAYS_SIGN: Self = Self(0x0000_8000);
    /// NTLMSSP_TARGET_TYPE_DOMAIN: the CHALLENGE's target name is a domain.
    pub const TARGET_TYPE_DOMAIN: Self = Self(0x0001_0000);
    /// NTLMSSP_TARGET_TYPE_SERVER: the CHALLENGE's target name is a server.
    pub const TARGET_TYPE_SERVER: Self = Self(0x0002_0000);
    /// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY: NTLM2 session security (required here).
    pub const EXTENDED_SESSIONSECURITY: Self = Self(0x0008_0000);
    /// NTLMSSP_NEGOTIATE_IDENTIFY: an identify-level token.
    pub const IDENTIFY: Self = Self(0x0010_0000);
    /// NTLMSSP_REQUEST_NON_NT_SESSION_KEY: LMOWF-based session key (NTLMv1 only).
    pub const REQUEST_NON_NT_SESSION_KEY: Self = Self(0x0040_0000);
    /// NTLMSSP_NEGOTIATE_TARGET_INFO: the CHALLENGE carries TargetInfo (AV pairs).
    pub const TARGET_INFO: Self = Self(0x0080_0000);
    /// NTLMSSP_NEGOTIATE_VERSION: the message carries a VERSION field.
    pub const VERSION: Self = Self(0x0200_0000);
    /// NTLMSSP_NEGOTIATE_128: 128-bit session keys.
    pub const KEY_128: Self = Self(0x2000_0000);
    /// NTLMSSP_NEGOTIATE_KEY_EXCH: the client sends an encrypted random session key.
    pub const KEY_EXCH: Self = Self(0x4000_0000);
    /// NTLMSSP_NEGOTIATE_56: 56-bit session keys.
    pub const KEY_56: Self = Self(0x8000_0000);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with the bits of `other` set too.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// These flags with the bits of `other` cleared.
    #[must_use]
    pub fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The bits set in both.
    #[must_use]
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

impl std::ops::BitOr for NegotiateFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.with(rhs)
    }
}

impl fmt::Debug for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NegotiateFlags({:#010x})", self.0)
    }
}

/// The VERSION structure (MS-NLMP §2.2.2.10): the sender's OS version, for debugging only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// ProductMajorVersion.
    pub major: u8,
    /// ProductMinorVersion.
    pub minor: u8,
    /// ProductBuild.
    pub build: u16,
    /// NTLMRevisionCurrent (15 for NTLMSSP_REVISION_W2K3).
    pub revision: u8,
}

impl Version {
    /// What kerbside sends: Windows 10.0 build 20348 (as Windows Server 2022 does), revision 15.
    pub const KERBSIDE: Self = Self {
        major: 10,
        minor: 0,
        build: 20348,
        revision: 15,
    };

    fn parse(b: &[u8; 8]) -> Self {
        Self {
            major: b[0],
            minor: b[1],
            build: u16::from_le_bytes([b[2], b[3]]),
            revision: b[7],
        }
    }

    fn encode(self) -> [u8; 8] {
        let build = self.build.to_le_bytes();
        [
            self.major,
            self.minor,
            build[0],
            build[1],
            0,
            0,
            0,
            self.revision,
        ]
    }
}

/// The AvId of each AV pair type (MS-NLMP §2.2.2.1).
pub mod av_id {
    /// MsvAvEOL: the end of the list.
    pub const EOL: u16 = 0;
    /// MsvAvNbComputerName: the server's NetBIOS computer name.
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// MsvAvNbDomainName: the server's NetBIOS domain name.
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// MsvAvDnsComputerName: the server's FQDN.
    pub const DNS_COMPUTER_NAME: u16 = 3;
    /// MsvAvDnsDomainName: the server's DNS domain.
    pub const DNS_DOMAIN_NAME: u16 = 4;
    /// MsvAvDnsTreeName: the forest's DNS name.
    pub const DNS_TREE_NAME: u16 = 5;
    /// MsvAvFlags: a 32-bit flag set (0x2: the AUTHENTICATE carries a MIC).
    pub const FLAGS: u16 = 6;
    /// MsvAvTimestamp: a FILETIME.
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvSingleHost: a Single_Host_Data structure.
    pub const SINGLE_HOST: u16 = 8;
    /// MsvAvTargetName: the SPN of the server the client means, such as `HTTP/host`.
    pub const TARGET_NAME: u16 = 9;
    /// MsvAvChannelBindings: MD5 of the gss_channel_bindings_struct.
    pub const CHANNEL_BINDINGS: u16 = 10;
}

/// The MsvAvFlags bit saying the AUTHENTICATE message carries a MIC.
pub const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

/// One AV pair (MS-NLMP §2.2.2.1), other than the MsvAvEOL terminator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AvPair {
    /// MsvAvNbComputerName.
    NbComputerName(String),
    /// MsvAvNbDomainName.
    NbDomainName(String),
    /// MsvAvDnsComputerName.
    DnsComputerName(String),
    /// MsvAvDnsDomainName.
    DnsDomainName(String),
    /// MsvAvDnsTreeName.
    DnsTreeName(String),
    /// MsvAvFlags.
    Flags(u32),
    /// MsvAvTimestamp, a FILETIME (100 ns units since 1601-01-01 UTC).
    Timestamp(u64),
    /// MsvAvSingleHost, kept as bytes.
    SingleHost(Vec<u8>),
    /// MsvAvTargetName.
    TargetName(String),
    /// MsvAvChannelBindings: MD5 of the channel bindings; all zero means none.
    ChannelBindings([u8; 16]),
    /// A type this code does not know, kept as it came.
    Other {
        /// The AvId (never 0..=10).
        id: u16,
        /// The value.
        value: Vec<u8>,
    },
}

/// An AV pair list (TargetInfo, MS-NLMP §2.2.2.1) without its MsvAvEOL terminator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AvPairs(pub Vec<AvPair>);

impl AvPairs {
    /// Parses a list that ends with MsvAvEOL; bytes after the terminator are ignored (the
    /// NTLMv2 client challenge has padding there).
    pub fn parse(mut b: &[u8]) -> Result<Self, MessageError> {
        let mut pairs = Vec::new();
        loop {
            let (id, len) = match b {
                [a, c, d, e, ..] => (u16::from_le_bytes([*a, *c]), u16::from_le_bytes([*d, *e])),
                _ => return Err(MessageError::TruncatedAvPairs),
            };
            let value = b
                .get(4..4 + usize::from(len))
                .ok_or(MessageError::TruncatedAvPairs)?;
            b = &b[4 + usize::from(len)..];
            let fixed = |expected: u16| {
                if len == expected {
                    Ok(())
                } else {
                    Err(MessageError::BadAvPairLength { id, len, expected })
                }
            };
            let text = |field| utf16_decode(value, field);
            pairs.push(match id {
                av_id::EOL => return Ok(Self(pairs)),
                av_id::NB_COMPUTER_NAME => AvPair::NbComputerName(text("MsvAvNbComputerName")?),
                av_id::NB_DOMAIN_NAME => AvPair::NbDomainName(text("MsvAvNbDomainName")?),
                av_id::DNS_COMPUTER_NAME => AvPair::DnsComputerName(text("MsvAvDnsComputerName")?),
                av_id::DNS_DOMAIN_NAME => AvPair::DnsDomainName(text("MsvAvDnsDomainName")?),
                av_id::DNS_TREE_NAME => AvPair::DnsTreeName(text("MsvAvDnsTreeName")?),
                av_id::FLAGS => {
                    fixed(4)?;
                    AvPair::Flags(u32::from_le_bytes(arr(value)))
                }
                av_id::TIMESTAMP => {
                    fixed(8)?;
                    AvPair::Timestamp(u64::from_le_bytes(arr(value)))
                }
                av_id::SINGLE_HOST => AvPair::SingleHost(value.to_vec()),
                av_id::TARGET_NAME => AvPair::TargetName(text("MsvAvTargetName")?),
                av_id::CHANNEL_BINDINGS => {
                    fixed(16)?;
                    AvPair::ChannelBindings(arr(value))
                }
                _ => AvPair::Other {
                    id,
                    value: value.to_vec(),
                },
            });
        }
    }

    /// Encodes the list, MsvAvEOL included.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        for pair in &self.0 {
            let (id, value) = match pair {
                AvPair::NbComputerName(s) => (av_id::NB_COMPUTER_NAME, utf16_encode(s)),
                AvPair::NbDomainName(s) => (av_id::NB_DOMAIN_NAME, utf16_encode(s)),
                AvPair::DnsComputerName(s) => (av_id::DNS_COMPUTER_NAME, utf16_encode(s)),
                AvPair::DnsDomainName(s) => (av_id::DNS_DOMAIN_NAME, utf16_encode(s)),
                AvPair::DnsTreeName(s) => (av_id::DNS_TREE_NAME, utf16_encode(s)),
                AvPair::Flags(v) => (av_id::FLAGS, v.to_le_bytes().to_vec()),
                AvPair::Timestamp(v) => (av_id::TIMESTAMP, v.to_le_bytes().to_vec()),
                AvPair::SingleHost(v) => (av_id::SINGLE_HOST, v.clone()),
                AvPair::TargetName(s) => (av_id::TARGET_NAME, utf16_encode(s)),
                AvPair::ChannelBindings(v) => (av_id::CHANNEL_BINDINGS, v.to_vec()),
                AvPair::Other { id, value } => (*id, value.clone()),
            };
            let len = u16::try_from(value.len()).map_err(|_| MessageError::FieldTooLong {
                field: "AvPair",
                len: value.len(),
            })?;
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&value);
        }
        out.extend_from_slice(&[0; 4]);
        Ok(out)
    }

    /// The value of MsvAvTimestamp, if present.
    pub fn timestamp(&self) -> Option<u64> {
        self.0.iter().find_map(|p| match p {
            AvPair::Timestamp(t) => Some(*t),
            _ => None,
        })
    }

    /// The value of MsvAvFlags, if present.
    pub fn flags(&self) -> Option<u32> {
        self.0.iter().find_map(|p| match p {
            AvPair::Flags(f) => Some(*f),
            _ => None,
        })
    }

    /// The value of MsvAvChannelBindings, if present.
    pub fn channel_bindings(&self) -> Option<[u8; 16]> {
        self.0.iter().find_map(|p| match p {
            AvPair::ChannelBindings(h) => Some(*h),
            _ => None,
        })
    }

    /// The value of MsvAvTargetName, if present.
    pub fn target_name(&self) -> Option<&str> {
        self.0.iter().find_map(|p| match p {
            AvPair::TargetName(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// The NEGOTIATE message (MS-NLMP §2.2.1.1), type 1, sent by the client first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateMessage {
    /// What the client asks for.
    pub flags: NegotiateFlags,
    /// DomainName, in the OEM code page, as bytes (usually empty).
    pub domain: Vec<u8>,
    /// Workstation, in the OEM code page, as bytes (usually empty).
    pub workstation: Vec<u8>,
    /// Version, present when NTLMSSP_NEGOTIATE_VERSION is set and the header has room for it.
    pub version: Option<Version>,
}

impl NegotiateMessage {
    /// Parses a NEGOTIATE message: the 32-byte form curl sends, the 40-byte form with a
    /// VERSION that Windows sends, and the 16-byte form of old clients.
    pub fn parse(b: &[u8]) -> Result<Self, MessageError> {
        check_header(b, 1, 16)?;
        // No Unicode check here: curl's NEGOTIATE offers only OEM, yet follows a Unicode
        // CHALLENGE.
        let flags = NegotiateFlags(read_u32(b, 12));
        let (domain, workstation) = if b.len() >= 32 {
            (
                field(b, 16, "DomainName", 32)?.to_vec(),
                field(b, 24, "Workstation", 32)?.to_vec(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let version = match b.get(32..40) {
            Some(v) if flags.contains(NegotiateFlags::VERSION) => Some(Version::parse(&arr(v))),
            _ => None,
        };
        Ok(Self {
            flags,
            domain,
            workstation,
            version,
        })
    }

    /// Encodes the message: 40 bytes of header when it has a version, 32 otherwise, then the
    /// domain and workstation.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let header = if self.version.is_some() { 40 } else { 32 };
        let mut w = Writer::new(1, header);
        w.put_u32(12, self.flags.0);
        w.field(16, "DomainName", &self.domain)?;
        w.field(24, "Workstation", &self.workstation)?;
        if let Some(v) = self.version {
            w.put(32, &v.encode());
        }
        Ok(w.finish())
    }
}

/// The CHALLENGE message (MS-NLMP §2.2.1.2), type 2, the server's answer to a NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// TargetName: the server's domain or computer name.
    pub target_name: String,
    /// What the server grants.
    pub flags: NegotiateFlags,
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// TargetInfo: the AV pairs the client copies into its NTLMv2 response.
    pub target_info: Option<AvPairs>,
    /// The server's VERSION, when NTLMSSP_NEGOTIATE_VERSION is set and there is room for it.
    pub version: Option<Version>,
}

impl ChallengeMessage {
    /// Parses a CHALLENGE message.
    pub fn parse(b: &[u8]) -> Result<Self, MessageError> {
        check_header(b, 2, 32)?;
        let flags = NegotiateFlags(read_u32(b, 20));
        if !flags.contains(NegotiateFlags::UNICODE) {
            return Err(MessageError::OemOnly);
        }
        let mut header_end = 32;
        // Old servers (and Squid's ntlm_fake_auth) send a 40-byte header without the
        // TargetInfo fields, their payload right after it: the fields are there only when
        // the payload the TargetName points at starts at 48 or later.
        let target_name_len = read_u16(b, 12);
        let target_name_at = read_u32(b, 16);
        let has_info_fields = b.len() >= 48 && (target_name_len == 0 || target_name_at >= 48);
        let target_info = if has_info_fields {
            match field(b, 40, "TargetInfo", 48) {
                Ok(raw) => {
                    header_end = 48;
                    if raw.is_empty() {
                        None
                    } else {
                        Some(AvPairs::parse(raw)?)
                    }
                }
                // Squid's ntlm_fake_auth: a 40-byte header, an uninitialised TargetName
                // offset, and its OEM domain name where the TargetInfo fields would be.
                Err(MessageError::FieldOutOfBounds { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        // The TargetName only informs: one outside the message or not UTF-16 is taken as
        // empty rather than failing the exchange (curl reads it the same way).
        let target_name = field(b, 12, "TargetName", header_end)
            .ok()
            .and_then(|raw| utf16_decode(raw, "TargetName").ok())
            .unwrap_or_default();
        // The VERSION sits in bytes 48..56 only when no payload starts before 56.
        let target_info_len = read_u16(b, 40);
        let target_info_at = read_u32(b, 44);
        let has_version = has_info_fields
            && (target_name_len == 0 || target_name_at >= 56)
            && (target_info.is_none() || target_info_len == 0 || target_info_at >= 56);
        let version = match b.get(48..56) {
            Some(v) if has_version && flags.contains(NegotiateFlags::VERSION) => {
                Some(Version::parse(&arr(v)))
            }
            _ => None,
        };
        Ok(Self {
            target_name,
            flags,
            server_challenge: arr(&b[24..32]),
            target_info,
            version,
        })
    }

    /// Encodes the message: 56 bytes of header when it has a version, 48 otherwise.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let header = if self.version.is_some() { 56 } else { 48 };
        let mut w = Writer::new(2, header);
        w.field(12, "TargetName", &utf16_encode(&self.target_name))?;
        w.put_u32(20, self.flags.0);
        w.put(24, &self.server_challenge);
        let info = match &self.target_info {
            Some(info) => info.encode()?,
            None => Vec::new(),
        };
        w.field(40, "TargetInfo", &info)?;
        if let Some(v) = self.version {
            w.put(48, &v.encode());
        }
        Ok(w.finish())
    }
}

/// The AUTHENTICATE message (MS-NLMP §2.2.1.3), type 3, the client's answer to a CHALLENGE.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticateMessage {
    /// LmChallengeResponse (LMv2, or 24 zero bytes).
    pub lm_response: Vec<u8>,
    /// NtChallengeResponse: NTProofStr followed by the NTLMv2 client challenge.
    pub nt_response: Vec<u8>,
    /// DomainName.
    pub domain: String,
    /// UserName.
    pub user: String,
    /// Workstation.
    pub workstation: String,
    /// EncryptedRandomSessionKey (empty unless NTLMSSP_NEGOTIATE_KEY_EXCH).
    pub encrypted_session_key: Vec<u8>,
    /// The negotiated flags.
    pub flags: NegotiateFlags,
    /// The client's VERSION.
    pub version: Option<Version>,
    /// The MIC, when the header has room for it (the payload starts at 88 or later).
    pub mic: Option<[u8; 16]>,
}

impl fmt::Debug for AuthenticateMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateMessage")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("workstation", &self.workstation)
            .field("flags", &self.flags)
            .field("nt_response_len", &self.nt_response.len())
            .field("version", &self.version)
            .field("mic", &self.mic.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the MIC sits in an AUTHENTICATE message.
pub const MIC_OFFSET: usize = 72;

impl AuthenticateMessage {
    /// Parses an AUTHENTICATE message. Whether it has a VERSION and a MIC is read from where
    /// its payload starts, as Windows and pyspnego do.
    pub fn parse(b: &[u8]) -> Result<Self, MessageError> {
        check_header(b, 3, 64)?;
        let flags = NegotiateFlags(read_u32(b, 60));
        if !flags.contains(NegotiateFlags::UNICODE) {
            return Err(MessageError::OemOnly);
        }
        // The payload starts at the lowest offset of a non-empty field.
        let payload_start = [12usize, 20, 28, 36, 44, 52]
            .iter()
            .filter(|&&at| read_u16(b, at) != 0)
            .map(|&at| read_u32(b, at + 4) as usize)
            .min()
            .unwrap_or(b.len())
            .min(b.len());
        if payload_start < 64 {
            return Err(MessageError::FieldOutOfBounds {
                field: "payload",
                offset: u32::try_from(payload_start).unwrap_or(u32::MAX),
                len: 0,
            });
        }
        let text = |at, name| utf16_decode(field(b, at, name, payload_start)?, name);
        let version = match b.get(64..72) {
            Some(v) if payload_start >= 72 && flags.contains(NegotiateFlags::VERSION) => {
                Some(Version::parse(&arr(v)))
            }
            _ => None,
        };
        let mic = match b.get(MIC_OFFSET..MIC_OFFSET + 16) {
            Some(m) if payload_start >= MIC_OFFSET + 16 => Some(arr(m)),
            _ => None,
        };
        Ok(Self {
            lm_response: field(b, 12, "LmChallengeResponse", payload_start)?.to_vec(),
            nt_response: field(b, 20, "NtChallengeResponse", payload_start)?.to_vec(),
            domain: text(28, "DomainName")?,
            user: text(36, "UserName")?,
            workstation: text(44, "Workstation")?,
            encrypted_session_key: field(b, 52, "EncryptedRandomSessionKey", payload_start)?
                .to_vec(),
            flags,
            version,
            mic,
        })
    }

    /// Encodes the message: 88 bytes of header with a MIC (zero-filled version if none), 72
    /// with a version only, 64 otherwise.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let header = match (self.mic, self.version) {
            (Some(_), _) => 88,
            (None, Some(_)) => 72,
            (None, None) => 64,
        };
        let mut w = Writer::new(3, header);
        w.field(12, "LmChallengeResponse", &self.lm_response)?;
        w.field(20, "NtChallengeResponse", &self.nt_response)?;
        w.field(28, "DomainName", &utf16_encode(&self.domain))?;
        w.field(36, "UserName", &utf16_encode(&self.user))?;
        w.field(44, "Workstation", &utf16_encode(&self.workstation))?;
        w.field(52, "EncryptedRandomSessionKey", &self.encrypted_session_key)?;
        w.put_u32(60, self.flags.0);
        if let Some(v) = self.version {
            w.put(64, &v.encode());
        }
        if let Some(mic) = self.mic {
            w.put(MIC_OFFSET, &mic);
        }
        Ok(w.finish())
    }
}

/// The NTLMv2 client challenge (NTLMv2_CLIENT_CHALLENGE, MS-NLMP §2.2.2.7): the "blob" that
/// follows NTProofStr in an NTLMv2 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChallengeBlob {
    /// TimeStamp, a FILETIME.
    pub timestamp: u64,
    /// ChallengeFromClient.
    pub client_challenge: [u8; 8],
    /// The AV pairs: the server's TargetInfo with the client's additions.
    pub av_pairs: AvPairs,
}

impl ClientChallengeBlob {
    /// Parses the blob (without NTProofStr).
    pub fn parse(b: &[u8]) -> Result<Self, MessageError> {
        if b.len() < 28 {
            return Err(MessageError::BadClientChallenge("shorter than 28 bytes"));
        }
        if b[0] != 1 || b[1] != 1 {
            return Err(MessageError::BadClientChallenge(
                "RespType and HiRespType are not 1",
            ));
        }
        Ok(Self {
            timestamp: u64::from_le_bytes(arr(&b[8..16])),
            client_challenge: arr(&b[16..24]),
            av_pairs: AvPairs::parse(&b[28..])?,
        })
    }

    /// Encodes the blob as Windows does: header, AV pairs with MsvAvEOL, four zero bytes.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = vec![1, 1, 0, 0, 0, 0, 0, 0];
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.client_challenge);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.av_pairs.encode()?);
        out.extend_from_slice(&[0; 4]);
        Ok(out)
    }
}

/// Checks the signature, the message type and the minimum length.
fn check_header(b: &[u8], kind: u32, needed: usize) -> Result<(), MessageError> {
    let sig_len = b.len().min(SIGNATURE.len());
    if b[..sig_len] != SIGNATURE[..sig_len] {
        return Err(MessageError::BadSignature);
    }
    if b.len() < 12 {
        return Err(MessageError::TooShort {
            len: b.len(),
            needed,
        });
    }
    let found = read_u32(b, 8);
    if found != kind {
        return Err(MessageError::WrongType {
            expected: kind,
            found,
        });
    }
    if b.len() < needed {
        return Err(MessageError::TooShort {
            len: b.len(),
            needed,
        });
    }
    Ok(())
}

/// The message type of an NTLM message (1, 2 or 3), if `b` starts like one.
pub fn message_type(b: &[u8]) -> Option<u32> {
    (b.len() >= 12 && &b[..8] == SIGNATURE).then(|| read_u32(b, 8))
}

/// Reads the payload a field descriptor (Len, MaxLen, Offset) at `at` points to. A non-empty
/// field must lie after the fixed header (`header_end`) and inside the message.
fn field<'a>(
    b: &'a [u8],
    at: usize,
    name: &'static str,
    header_end: usize,
) -> Result<&'a [u8], MessageError> {
    let len = read_u16(b, at);
    let offset = read_u32(b, at + 4);
    if len == 0 {
        return Ok(&[]);
    }
    let start = offset as usize;
    let out_of_bounds = MessageError::FieldOutOfBounds {
        field: name,
        offset,
        len,
    };
    if start < header_end {
        return Err(out_of_bounds);
    }
    b.get(start..start + usize::from(len)).ok_or(out_of_bounds)
}

/// Reads a little-endian u16 at a position the caller has checked.
fn read_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a little-endian u32 at a position the caller has checked.
fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes(arr(s)))
}

/// Copies a slice of the right length into an array (callers pass exact-length slices; a
/// shorter one is zero-padded rather than panicking).
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    for (o, i) in out.iter_mut().zip(s) {
        *o = *i;
    }
    out
}

/// Decodes UTF-16LE, refusing odd lengths and unpaired surrogates.
pub(crate) fn utf16_decode(b: &[u8], field: &'static str) -> Result<String, MessageError> {
    if b.len() % 2 != 0 {
        return Err(MessageError::InvalidUtf16 { field });
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| MessageError::InvalidUtf16 { field })
}

/// Encodes text as UTF-16LE.
pub(crate) fn utf16_encode(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Builds a message: fixed header, then each field's payload appended in order.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(kind: u32, header: usize) -> Self {
        let mut buf = vec![0; header];
        buf[..8].copy_from_slice(SIGNATURE);
        buf[8..12].copy_from_slice(&kind.to_le_bytes());
        Self { buf }
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.put(at, &v.to_le_bytes());
    }

    fn field(&mut self, at: usize, name: &'static str, data: &[u8]) -> Result<(), MessageError> {
        let too_long = MessageError::FieldTooLong {
            field: name,
            len: data.len(),
        };
        let len = u16::try_from(data.len()).map_err(|_| too_long.clone())?;
        let offset = u32::try_from(self.buf.len()).map_err(|_| too_long)?;
        self.put(at, &len.to_le_bytes());
        self.put(at + 2, &len.to_le_bytes());
        self.put_u32(at + 4, offset);
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn finish(self) -> Vec<u8> {
        self.buf
    }
}
