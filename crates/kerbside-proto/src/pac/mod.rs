//! The Privilege Attribute Certificate (MS-PAC) that Active Directory puts in every ticket:
//! the buffers of a `PACTYPE`, the two that name the account — `PAC_CLIENT_INFO` (the name
//! as the client typed it at kinit) and `UPN_DNS_INFO` (the UPN, the DNS domain, and, from AD
//! and Samba 4.15 on, the account's own `sAMAccountName` and SID) — and the logon info
//! ([`LogonInfo`]: the account's name, NetBIOS domain and groups, NDR-encoded).
//!
//! Nothing here checks the PAC's signatures: the bytes must come from GSSAPI after it checked
//! them (MIT's `gss_get_name_attribute(name, "urn:mspac:")` returns a PAC only when its server
//! and KDC checksums verified). Parsing is strict (MS-PAC §2.3–2.10): every buffer lies inside
//! the PAC at an 8-byte aligned offset, no type appears twice, strings are whole UTF-16LE, SIDs
//! have the length their count says. It never panics on any input.
//!
//! ```
//! use kerbside_proto::pac::{Pac, PacError};
//!
//! assert_eq!(Pac::parse(&[1, 0, 0, 0]).unwrap_err(), PacError::Truncated);
//! ```

use std::fmt;

mod logon_info;
mod ndr;

pub use logon_info::{GroupAttributes, GroupMembership, LogonInfo, SidAndAttributes};

/// `ulType` of the `KERB_VALIDATION_INFO` buffer (groups; NDR-encoded).
pub const LOGON_INFO: u32 = 1;
/// `ulType` of `PAC_CLIENT_INFO`.
pub const CLIENT_INFO: u32 = 10;
/// `ulType` of `UPN_DNS_INFO`.
pub const UPN_DNS_INFO: u32 = 12;

/// More buffers than any KDC writes (Windows and Samba write under 16).
const MAX_BUFFERS: u32 = 256;

/// `UPN_DNS_INFO.Flags`: the account has no UPN of its own; the UPN shown is built from the
/// account name and the DNS domain.
const UPN_CONSTRUCTED: u32 = 1;
/// `UPN_DNS_INFO.Flags`: the extended form, with `SamName` and `Sid`.
const HAS_SAM_NAME_AND_SID: u32 = 2;

/// Why a PAC (or one of its buffers) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacError {
    /// The input ends inside a header, a buffer or a string.
    Truncated,
    /// `PACTYPE.Version` is not 0.
    UnknownVersion(u32),
    /// `cBuffers` is over 256.
    TooManyBuffers(u32),
    /// A buffer's offset is not a multiple of 8.
    Misaligned {
        /// The buffer's `ulType`.
        buffer_type: u32,
    },
    /// A buffer reaches past the end of the PAC.
    BufferOutOfBounds {
        /// The buffer's `ulType`.
        buffer_type: u32,
    },
    /// Two buffers have the same type.
    DuplicateBuffer {
        /// The repeated `ulType`.
        buffer_type: u32,
    },
    /// A string has an odd byte length or an unpaired surrogate.
    BadUtf16,
    /// A SID's length does not match its sub-authority count, or the count is over 15.
    BadSid,
    /// The NDR encoding of the logon info breaks the rule named.
    BadNdr(&'static str),
}

impl fmt::Display for PacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacError::Truncated => f.write_str("the PAC ends inside a field"),
            PacError::UnknownVersion(v) => write!(f, "PAC version {v} (only 0 is defined)"),
            PacError::TooManyBuffers(n) => write!(f, "PAC claims {n} buffers (at most 256)"),
            PacError::Misaligned { buffer_type } => {
                write!(f, "PAC buffer of type {buffer_type} is not 8-byte aligned")
            }
            PacError::BufferOutOfBounds { buffer_type } => {
                write!(
                    f,
                    "PAC buffer of type {buffer_type} reaches past the PAC's end"
                )
            }
            PacError::DuplicateBuffer { buffer_type } => {
                write!(f, "PAC has two buffers of type {buffer_type}")
            }
            PacError::BadUtf16 => f.write_str("a PAC string is not UTF-16LE"),
            PacError::BadSid => f.write_str("a PAC SID is malformed"),
            PacError::BadNdr(rule) => write!(f, "the PAC's logon info is malformed: {rule}"),
        }
    }
}

impl std::error::Error for PacError {}

/// A parsed PAC: its buffers by type, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pac<'a> {
    buffers: Vec<(u32, &'a [u8])>,
}

impl<'a> Pac<'a> {
    /// Reads a `PACTYPE` and the bounds of its buffers (MS-PAC §2.3, §2.4).
    pub fn parse(data: &'a [u8]) -> Result<Pac<'a>, PacError> {
        let mut r = Reader::new(data);
        let count = r.u32()?;
        let version = r.u32()?;
        if version != 0 {
            return Err(PacError::UnknownVersion(version));
        }
        if count > MAX_BUFFERS {
            return Err(PacError::TooManyBuffers(count));
        }
        let mut buffers: Vec<(u32, &'a [u8])> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let buffer_type = r.u32()?;
            let size = r.u32()?;
            let offset = r.u64()?;
            if offset % 8 != 0 {
                return Err(PacError::Misaligned { buffer_type });
            }
            let body = usize::try_from(offset)
                .ok()
                .and_then(|start| data.get(start..start.checked_add(size as usize)?))
                .ok_or(PacError::BufferOutOfBounds { buffer_type })?;
            if buffers.iter().any(|(t, _)| *t == buffer_type) {
                return Err(PacError::DuplicateBuffer { buffer_type });
            }
            buffers.push((buffer_type, body));
        }
        Ok(Pac { buffers })
    }

    /// The buffer of type `buffer_type`, if the PAC has one.
    pub fn buffer(&self, buffer_type: u32) -> Option<&'a [u8]> {
        self.buffers
            .iter()
            .find(|(t, _)| *t == buffer_type)
            .map(|(_, body)| *body)
    }

    /// The buffer types, in the PAC's order.
    pub fn buffer_types(&self) -> impl Iterator<Item = u32> + '_ {
        self.buffers.iter().map(|(t, _)| *t)
    }

    /// `PAC_CLIENT_INFO`: the client name as the ticket request spelled it (`BOB` after
    /// `kinit BOB`), without the realm. `None` if the PAC has no such buffer.
    pub fn client_name(&self) -> Result<Option<String>, PacError> {
        let Some(body) = self.buffer(CLIENT_INFO) else {
            return Ok(None);
        };
        let mut r = Reader::new(body);
        let _client_id = r.u64()?;
        let length = r.u16()?;
        utf16(r.take(usize::from(length))?).map(Some)
    }

    /// `UPN_DNS_INFO`, if the PAC has it.
    pub fn upn_dns_info(&self) -> Result<Option<UpnDnsInfo>, PacError> {
        self.buffer(UPN_DNS_INFO).map(UpnDnsInfo::parse).transpose()
    }

    /// The logon info (`KERB_VALIDATION_INFO`), if the PAC has it.
    pub fn logon_info(&self) -> Result<Option<LogonInfo>, PacError> {
        self.buffer(LOGON_INFO).map(LogonInfo::parse).transpose()
    }
}

/// `UPN_DNS_INFO` (MS-PAC §2.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpnDnsInfo {
    /// The user principal name (`bob@ad.example.test`).
    pub upn: String,
    /// Whether the UPN was made up from the account name because the account has none.
    pub upn_constructed: bool,
    /// The DNS name of the account's domain, as AD spells it (`AD.EXAMPLE.TEST`).
    pub dns_domain: String,
    /// The account's `sAMAccountName` in its own case (`Bob`), when the KDC writes the
    /// extended form (Windows since the 2021 updates, Samba since 4.15).
    pub sam_name: Option<String>,
    /// The account's SID, with `sam_name`.
    pub sid: Option<Sid>,
}

impl UpnDnsInfo {
    /// Reads the buffer's body; strings are at offsets from its start.
    pub fn parse(body: &[u8]) -> Result<UpnDnsInfo, PacError> {
        let mut r = Reader::new(body);
        let upn = r.counted_at(body)?;
        let dns_domain = r.counted_at(body)?;
        let flags = r.u32()?;
        let (sam_name, sid) = if flags & HAS_SAM_NAME_AND_SID != 0 {
            let sam = r.counted_at(body)?;
            let sid = r.counted_at(body)?;
            (Some(utf16(sam)?), Some(Sid::parse(sid)?))
        } else {
            (None, None)
        };
        Ok(UpnDnsInfo {
            upn: utf16(upn)?,
            upn_constructed: flags & UPN_CONSTRUCTED != 0,
            dns_domain: utf16(dns_domain)?,
            sam_name,
            sid,
        })
    }
}

/// A security identifier (MS-DTYP §2.4.2.2), shown as `S-1-5-21-…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    /// The revision (1).
    pub revision: u8,
    /// The 48-bit identifier authority (5 for NT).
    pub authority: u64,
    /// Up to 15 sub-authorities; the last is the account's RID.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// Reads the binary form: revision, count, 6-byte big-endian authority, `count` LE u32s.
    pub fn parse(data: &[u8]) -> Result<Sid, PacError> {
        let (&revision, rest) = data.split_first().ok_or(PacError::BadSid)?;
        let (&count, rest) = rest.split_first().ok_or(PacError::BadSid)?;
        if count > 15 || rest.len() != 6 + 4 * usize::from(count) {
            return Err(PacError::BadSid);
        }
        let (authority, subs) = rest.split_at(6);
        let authority = authority
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let sub_authorities = subs
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Sid {
            revision,
            authority,
            sub_authorities,
        })
    }
}

impl Sid {
    /// The SID of a member of this domain: this SID with `rid` appended.
    pub fn with_rid(&self, rid: u32) -> Sid {
        let mut sid = self.clone();
        sid.sub_authorities.push(rid);
        sid
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-{}", self.revision, self.authority)?;
        for sub in &self.sub_authorities {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

/// Little-endian reads that fail with [`PacError::Truncated`] instead of panicking.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PacError> {
        if self.rest.len() < n {
            return Err(PacError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, PacError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PacError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PacError> {
        let b = self.take(8)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_le_bytes(bytes))
    }

    /// A `(length u16, offset u16)` pair naming bytes of `body`.
    fn counted_at(&mut self, body: &'a [u8]) -> Result<&'a [u8], PacError> {
        let length = usize::from(self.u16()?);
        let offset = usize::from(self.u16()?);
        body.get(offset..offset + length).ok_or(PacError::Truncated)
    }
}

/// Decodes UTF-16LE, refusing odd lengths and unpaired surrogates.
fn utf16(bytes: &[u8]) -> Result<String, PacError> {
    if bytes.len() % 2 != 0 {
        return Err(PacError::BadUtf16);
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| PacError::BadUtf16)
}

/// Parses `data` as a PAC and every buffer this module reads, and panics if a buffer it
/// returns does not lie inside `data` (for the fuzz target and the property tests).
pub fn fuzz_check(data: &[u8]) {
    let Ok(pac) = Pac::parse(data) else {
        return;
    };
    let range = data.as_ptr_range();
    for t in pac.buffer_types().collect::<Vec<_>>() {
        let body = pac.buffer(t).unwrap_or_default();
        let inside = body.is_empty()
            || (range.start <= body.as_ptr() && body.as_ptr_range().end <= range.end);
        assert!(inside, "buffer {t} lies outside the input");
    }
    if let Ok(Some(name)) = pac.client_name() {
        assert!(
            name.len() <= data.len() * 2,
            "client name longer than its input"
        );
    }
    if let Ok(Some(info)) = pac.upn_dns_info() {
        assert!(info
            .sid
            .as_ref()
            .is_none_or(|s| s.sub_authorities.len() <= 15));
        let _ = info.sid.map(|s| s.to_string());
    }
    if let Ok(Some(info)) = pac.logon_info() {
        check_logon_info(&info, data.len());
    }
}

/// Parses `data` as the body of a logon info buffer (for the `pac_logon_info` fuzz target).
pub fn fuzz_check_logon_info(data: &[u8]) {
    if let Ok(info) = LogonInfo::parse(data) {
        check_logon_info(&info, data.len());
    }
}

fn check_logon_info(info: &LogonInfo, input: usize) {
    let groups = info.group_sids();
    assert!(
        groups.len() * 8 <= input,
        "more groups than the input can hold"
    );
    for sid in &groups {
        assert!(sid.sub_authorities.len() <= 16, "a SID with too many parts");
        let _ = sid.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The PAC of a ticket for `HTTP/localhost` after `kinit BOB`, for the account `Bob`, from
    /// a Samba 4.17 AD DC (read through MIT's `gss_get_name_attribute(…, "urn:mspac:")`).
    const SAMBA_KINIT_BOB: &[u8] = include_bytes!("../../testdata/pac/samba-kinit-BOB.pac");

    #[test]
    fn samba_pac_names_the_account_in_its_own_case() {
        let pac = Pac::parse(SAMBA_KINIT_BOB).unwrap();
        assert_eq!(
            pac.buffer_types().collect::<Vec<_>>(),
            [1, 10, 12, 6, 7, 16, 19]
        );
        assert_eq!(pac.client_name().unwrap().as_deref(), Some("BOB"));
        let info = pac.upn_dns_info().unwrap().unwrap();
        assert_eq!(info.upn, "Bob@ad.example.test");
        assert!(!info.upn_constructed);
        assert_eq!(info.dns_domain, "AD.EXAMPLE.TEST");
        assert_eq!(info.sam_name.as_deref(), Some("Bob"));
        assert_eq!(
            info.sid.unwrap().to_string(),
            "S-1-5-21-3024129864-1798402130-3102629853-1102"
        );
        assert!(pac.buffer(LOGON_INFO).is_some_and(|b| b.len() == 448));
    }

    #[test]
    fn broken_pacs_say_what_is_wrong() {
        assert_eq!(Pac::parse(&[]), Err(PacError::Truncated));
        let mut pac = SAMBA_KINIT_BOB.to_vec();
        pac[4] = 1;
        assert_eq!(Pac::parse(&pac), Err(PacError::UnknownVersion(1)));
        let mut pac = SAMBA_KINIT_BOB.to_vec();
        pac[0] = 0xff;
        pac[1] = 0xff;
        assert_eq!(Pac::parse(&pac), Err(PacError::TooManyBuffers(0xffff)));
        // The first buffer's offset (at 16) moved by one.
        let mut pac = SAMBA_KINIT_BOB.to_vec();
        pac[16] += 1;
        assert_eq!(
            Pac::parse(&pac),
            Err(PacError::Misaligned { buffer_type: 1 })
        );
        // The second buffer says it has type 1 too.
        let mut pac = SAMBA_KINIT_BOB.to_vec();
        pac[24] = 1;
        assert_eq!(
            Pac::parse(&pac),
            Err(PacError::DuplicateBuffer { buffer_type: 1 })
        );
        let cut = &SAMBA_KINIT_BOB[..SAMBA_KINIT_BOB.len() - 1];
        assert_eq!(
            Pac::parse(cut),
            Err(PacError::BufferOutOfBounds { buffer_type: 19 })
        );
        assert_eq!(
            Sid::parse(&[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0]),
            Err(PacError::BadSid)
        );
        assert_eq!(utf16(&[0x00, 0xd8]), Err(PacError::BadUtf16));
        assert_eq!(utf16(&[0x41]), Err(PacError::BadUtf16));
    }

    /// A PAC with a `PAC_CLIENT_INFO` named `client` and an extended `UPN_DNS_INFO`.
    fn build(client: &str, upn: &str, domain: &str, sam: &str, sid: &Sid) -> Vec<u8> {
        let w = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let mut client_info = 0u64.to_le_bytes().to_vec();
        client_info.extend((w(client).len() as u16).to_le_bytes());
        client_info.extend(w(client));
        let mut sid_bytes = vec![sid.revision, sid.sub_authorities.len() as u8];
        sid_bytes.extend(&sid.authority.to_be_bytes()[2..]);
        for s in &sid.sub_authorities {
            sid_bytes.extend(s.to_le_bytes());
        }
        let strings = [w(upn), w(domain), w(sam), sid_bytes];
        let mut upn_dns = Vec::new();
        let mut tail: Vec<u8> = Vec::new();
        let header = 20;
        for (i, s) in strings.iter().enumerate() {
            upn_dns.extend((s.len() as u16).to_le_bytes());
            upn_dns.extend(((header + tail.len()) as u16).to_le_bytes());
            if i == 1 {
                upn_dns.extend(HAS_SAM_NAME_AND_SID.to_le_bytes());
            }
            tail.extend(s);
        }
        upn_dns.extend(tail);
        let mut out = 2u32.to_le_bytes().to_vec();
        out.extend(0u32.to_le_bytes());
        let first = 8 + 2 * 16;
        let second = (first + client_info.len()).div_ceil(8) * 8;
        for (t, body, offset) in [
            (CLIENT_INFO, &client_info, first),
            (UPN_DNS_INFO, &upn_dns, second),
        ] {
            out.extend(t.to_le_bytes());
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
        }
        out.extend(&client_info);
        out.resize(second, 0);
        out.extend(&upn_dns);
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_check(&data);
        }

        #[test]
        fn mutated_real_pacs_never_panic(pos in 0usize..2000, byte in any::<u8>()) {
            let mut pac = SAMBA_KINIT_BOB.to_vec();
            let i = pos % pac.len();
            pac[i] = byte;
            fuzz_check(&pac);
        }

        #[test]
        fn built_pacs_read_back(
            client in "\\PC{0,20}",
            upn in "\\PC{0,40}",
            domain in "[A-Z.]{0,30}",
            sam in "\\PC{0,20}",
            subs in proptest::collection::vec(any::<u32>(), 0..=15),
        ) {
            let sid = Sid { revision: 1, authority: 5, sub_authorities: subs };
            let bytes = build(&client, &upn, &domain, &sam, &sid);
            let pac = Pac::parse(&bytes).unwrap();
            prop_assert_eq!(pac.client_name().unwrap(), Some(client));
            let info = pac.upn_dns_info().unwrap().unwrap();
            prop_assert_eq!(info.upn, upn);
            prop_assert_eq!(info.dns_domain, domain);
            prop_assert_eq!(info.sam_name, Some(sam));
            prop_assert_eq!(info.sid, Some(sid));
        }
    }
}
