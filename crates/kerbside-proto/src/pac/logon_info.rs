//! `KERB_VALIDATION_INFO` (MS-PAC §2.5), the PAC's logon info: who the account is (its
//! name, RID and domain) and the groups it is in — the global and universal groups of its
//! own domain as RIDs (`GroupIds`), groups by whole SID (`ExtraSids`: other domains,
//! well-known SIDs, and domain-local groups when the KDC puts them there), and resource
//! groups (`ResourceGroupDomainSid` with `ResourceGroupIds`). The KDC has already expanded
//! nested membership: a member of a group that is in `developers` has `developers` here.
//!
//! The buffer is NDR (type serialization version 1); see [`ndr`](super::ndr). Reading is
//! strict: pointers whose referents are missing, arrays whose size disagrees with their
//! count, strings whose counts disagree with their length, and trailing bytes inside the
//! object buffer other than padding are refused.

use super::ndr::{Ndr, StringHeader};
use super::{PacError, Sid};

/// `SE_GROUP_*` attributes of a group membership (MS-PAC §2.2.1).
pub type GroupAttributes = u32;

/// One `GROUP_MEMBERSHIP`: a group of a domain by its RID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMembership {
    /// The group's relative identifier in its domain.
    pub rid: u32,
    /// `SE_GROUP_*` flags.
    pub attributes: GroupAttributes,
}

/// One `KERB_SID_AND_ATTRIBUTES`: a group (or other SID) by its whole SID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidAndAttributes {
    /// The SID.
    pub sid: Sid,
    /// `SE_GROUP_*` flags.
    pub attributes: GroupAttributes,
}

/// The parts of `KERB_VALIDATION_INFO` that say who the account is and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogonInfo {
    /// `EffectiveName`: the account's `sAMAccountName`, in the directory's case (`bob`).
    pub account_name: String,
    /// `FullName`: the display name, often empty.
    pub full_name: String,
    /// `UserId`: the account's RID in [`logon_domain_id`](Self::logon_domain_id).
    pub user_id: u32,
    /// `PrimaryGroupId`: the RID of the primary group (513, Domain Users, by default).
    pub primary_group_id: u32,
    /// `GroupIds`: groups of the account's domain.
    pub group_ids: Vec<GroupMembership>,
    /// `UserFlags` (`LOGON_EXTRA_SIDS` = 0x20, `LOGON_RESOURCE_GROUPS` = 0x200, …).
    pub user_flags: u32,
    /// `LogonServer`: the domain controller that issued the ticket (`DC1`).
    pub logon_server: String,
    /// `LogonDomainName`: the NetBIOS name of the account's domain (`ADEXAMPLE`).
    pub logon_domain_name: String,
    /// `LogonDomainId`: the SID of the account's domain.
    pub logon_domain_id: Option<Sid>,
    /// `ExtraSids`: groups and other SIDs given whole.
    pub extra_sids: Vec<SidAndAttributes>,
    /// `ResourceGroupDomainSid`: the domain of `resource_group_ids`.
    pub resource_group_domain_sid: Option<Sid>,
    /// `ResourceGroupIds`: domain-local groups of the resource domain.
    pub resource_group_ids: Vec<GroupMembership>,
}

/// The inline part of the structure, with the pointers whose referents follow it.
struct Inline {
    strings: [StringHeader; 6],
    user_id: u32,
    primary_group_id: u32,
    group_count: u32,
    group_ids: bool,
    user_flags: u32,
    logon_server: StringHeader,
    logon_domain_name: StringHeader,
    logon_domain_id: bool,
    sid_count: u32,
    extra_sids: bool,
    resource_group_domain_sid: bool,
    resource_group_count: u32,
    resource_group_ids: bool,
}

impl LogonInfo {
    /// Reads the body of a `PAC_LOGON_INFO` buffer (type 1).
    pub fn parse(body: &[u8]) -> Result<LogonInfo, PacError> {
        let mut r = Ndr::open(body)?;
        // PAC_LOGON_INFO is a unique pointer to KERB_VALIDATION_INFO.
        if !r.pointer()? {
            return Err(PacError::BadNdr("the logon info pointer is null"));
        }
        let inline = read_inline(&mut r)?;
        let [effective_name, full_name, ..] = inline.strings;
        let account_name = r.string(effective_name)?;
        let full_name = r.string(full_name)?;
        // LogonScript, ProfilePath, HomeDirectory, HomeDirectoryDrive: read and dropped.
        for header in &inline.strings[2..] {
            r.string(*header)?;
        }
        let group_ids = memberships(&mut r, inline.group_ids, inline.group_count)?;
        let logon_server = r.string(inline.logon_server)?;
        let logon_domain_name = r.string(inline.logon_domain_name)?;
        let logon_domain_id = inline.logon_domain_id.then(|| r.sid()).transpose()?;
        let extra_sids = extra_sids(&mut r, inline.extra_sids, inline.sid_count)?;
        let resource_group_domain_sid = inline
            .resource_group_domain_sid
            .then(|| r.sid())
            .transpose()?;
        let resource_group_ids = memberships(
            &mut r,
            inline.resource_group_ids,
            inline.resource_group_count,
        )?;
        r.align(8)?;
        if r.left() != 0 {
            return Err(PacError::BadNdr("bytes after the logon info"));
        }
        Ok(LogonInfo {
            account_name,
            full_name,
            user_id: inline.user_id,
            primary_group_id: inline.primary_group_id,
            group_ids,
            user_flags: inline.user_flags,
            logon_server,
            logon_domain_name,
            logon_domain_id,
            extra_sids,
            resource_group_domain_sid,
            resource_group_ids,
        })
    }

    /// The account's SID: its domain's SID and its RID.
    pub fn user_sid(&self) -> Option<Sid> {
        self.logon_domain_id
            .as_ref()
            .map(|d| d.with_rid(self.user_id))
    }

    /// Every group SID the logon info names, each once, in order: `GroupIds` in the
    /// account's domain, then `ExtraSids`, then the resource groups.
    pub fn group_sids(&self) -> Vec<Sid> {
        let mut out: Vec<Sid> = Vec::new();
        let mut push = |sid: Sid| {
            if !out.contains(&sid) {
                out.push(sid);
            }
        };
        if let Some(domain) = &self.logon_domain_id {
            for g in &self.group_ids {
                push(domain.with_rid(g.rid));
            }
        }
        for extra in &self.extra_sids {
            push(extra.sid.clone());
        }
        if let Some(domain) = &self.resource_group_domain_sid {
            for g in &self.resource_group_ids {
                push(domain.with_rid(g.rid));
            }
        }
        out
    }
}

fn read_inline(r: &mut Ndr<'_>) -> Result<Inline, PacError> {
    // LogonTime, LogoffTime, KickOffTime, PasswordLastSet, PasswordCanChange,
    // PasswordMustChange: FILETIMEs (two u32s each).
    for _ in 0..12 {
        r.u32()?;
    }
    let strings = [
        r.string_header()?, // EffectiveName
        r.string_header()?, // FullName
        r.string_header()?, // LogonScript
        r.string_header()?, // ProfilePath
        r.string_header()?, // HomeDirectory
        r.string_header()?, // HomeDirectoryDrive
    ];
    let _logon_count = r.u16()?;
    let _bad_password_count = r.u16()?;
    let user_id = r.u32()?;
    let primary_group_id = r.u32()?;
    let group_count = r.u32()?;
    let group_ids = r.pointer()?;
    let user_flags = r.u32()?;
    let _user_session_key = r.bytes(16)?;
    let logon_server = r.string_header()?;
    let logon_domain_name = r.string_header()?;
    let logon_domain_id = r.pointer()?;
    // Reserved1[2], UserAccountControl, SubAuthStatus, LastSuccessfulILogon,
    // LastFailedILogon, FailedILogonCount, Reserved3.
    for _ in 0..10 {
        r.u32()?;
    }
    let sid_count = r.u32()?;
    let extra_sids = r.pointer()?;
    let resource_group_domain_sid = r.pointer()?;
    let resource_group_count = r.u32()?;
    let resource_group_ids = r.pointer()?;
    Ok(Inline {
        strings,
        user_id,
        primary_group_id,
        group_count,
        group_ids,
        user_flags,
        logon_server,
        logon_domain_name,
        logon_domain_id,
        sid_count,
        extra_sids,
        resource_group_domain_sid,
        resource_group_count,
        resource_group_ids,
    })
}

/// Whether a deferred array of `count` elements follows: its pointer was set. A null
/// pointer with a count is `refusal`.
fn deferred(present: bool, count: u32, refusal: &'static str) -> Result<bool, PacError> {
    match (present, count) {
        (true, _) => Ok(true),
        (false, 0) => Ok(false),
        (false, _) => Err(PacError::BadNdr(refusal)),
    }
}

/// A deferred `GROUP_MEMBERSHIP` array of `count` elements, if its pointer was set.
fn memberships(
    r: &mut Ndr<'_>,
    present: bool,
    count: u32,
) -> Result<Vec<GroupMembership>, PacError> {
    if !deferred(present, count, "a group count with no groups")? {
        return Ok(Vec::new());
    }
    r.conformance(count, 8)?;
    (0..count)
        .map(|_| {
            Ok(GroupMembership {
                rid: r.u32()?,
                attributes: r.u32()?,
            })
        })
        .collect()
}

/// The deferred `KERB_SID_AND_ATTRIBUTES` array: the elements (a SID pointer and the
/// attributes each), then each SID in order.
fn extra_sids(
    r: &mut Ndr<'_>,
    present: bool,
    count: u32,
) -> Result<Vec<SidAndAttributes>, PacError> {
    if !deferred(present, count, "a SID count with no SIDs")? {
        return Ok(Vec::new());
    }
    r.conformance(count, 8)?;
    let mut elements = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let has_sid = r.pointer()?;
        let attributes = r.u32()?;
        if !has_sid {
            return Err(PacError::BadNdr("an extra SID is null"));
        }
        elements.push(attributes);
    }
    elements
        .into_iter()
        .map(|attributes| {
            Ok(SidAndAttributes {
                sid: r.sid()?,
                attributes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pac::Pac;
    use proptest::prelude::*;

    const SAMBA_KINIT_BOB: &[u8] = include_bytes!("../../testdata/pac/samba-kinit-BOB.pac");

    fn sid(text: &str) -> Sid {
        let mut parts = text.split('-').skip(1);
        let revision = parts.next().unwrap().parse().unwrap();
        let authority = parts.next().unwrap().parse().unwrap();
        Sid {
            revision,
            authority,
            sub_authorities: parts.map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn samba_logon_info_names_the_account_its_domain_and_groups() {
        let pac = Pac::parse(SAMBA_KINIT_BOB).unwrap();
        let info = pac.logon_info().unwrap().unwrap();
        assert_eq!(info.account_name, "Bob");
        assert_eq!(info.full_name, "");
        assert_eq!(info.logon_server, "DC1");
        assert_eq!(info.logon_domain_name, "ADEXAMPLE");
        let domain = "S-1-5-21-3024129864-1798402130-3102629853";
        assert_eq!(info.logon_domain_id, Some(sid(domain)));
        assert_eq!(info.user_id, 1102);
        assert_eq!(info.primary_group_id, 513);
        assert_eq!(
            info.user_sid().unwrap().to_string(),
            format!("{domain}-1102")
        );
        let groups: Vec<String> = info.group_sids().iter().map(Sid::to_string).collect();
        // Domain Users, a group of the domain, and "Authentication authority asserted
        // identity" (S-1-18-1) among the extra SIDs.
        assert_eq!(
            groups,
            [
                format!("{domain}-513"),
                format!("{domain}-1103"),
                "S-1-18-1".to_owned()
            ]
        );
        assert!(info.resource_group_domain_sid.is_none());
    }

    /// `carol` is in `frontend`, which is in `developers`, and in the domain-local group
    /// `dl-readers`: the PAC a Samba 4.17 DC issued for `HTTP/localhost` lists all three
    /// in `GroupIds` (the KDC expanded the nesting; Samba also puts domain-local groups
    /// of the user's own domain there).
    const SAMBA_CAROL_NESTED: &[u8] = include_bytes!("../../testdata/pac/samba-carol-nested.pac");

    #[test]
    fn samba_logon_info_of_a_user_in_nested_groups() {
        let pac = Pac::parse(SAMBA_CAROL_NESTED).unwrap();
        let info = pac.logon_info().unwrap().unwrap();
        assert_eq!(info.account_name, "carol");
        assert_eq!(info.logon_domain_name, "ADEXAMPLE");
        let domain = "S-1-5-21-800001438-3698098801-3866971833";
        let groups: Vec<String> = info.group_sids().iter().map(Sid::to_string).collect();
        // Domain Users, frontend (1107), developers (1106, only through frontend),
        // dl-readers (1108, domain-local), and S-1-18-1.
        assert_eq!(
            groups,
            [
                format!("{domain}-513"),
                format!("{domain}-1107"),
                format!("{domain}-1106"),
                format!("{domain}-1108"),
                "S-1-18-1".to_owned()
            ]
        );
        assert_eq!(
            info.user_sid().unwrap().to_string(),
            format!("{domain}-1105")
        );
        assert!(info.resource_group_ids.is_empty());
    }

    #[test]
    fn broken_logon_info_says_what_is_wrong() {
        let body = Pac::parse(SAMBA_KINIT_BOB)
            .unwrap()
            .buffer(crate::pac::LOGON_INFO)
            .unwrap()
            .to_vec();
        assert_eq!(LogonInfo::parse(&body[..8]), Err(PacError::Truncated));
        let mut bad = body.clone();
        bad[1] = 0; // big-endian
        assert!(matches!(LogonInfo::parse(&bad), Err(PacError::BadNdr(_))));
        // GroupCount (at 16 + 4 + 48 + 48 + 4 + 8 = 128) says 3, the array holds 2.
        let mut bad = body.clone();
        bad[128] = 3;
        assert!(matches!(LogonInfo::parse(&bad), Err(PacError::BadNdr(_))));
        // A group count of 2^32 - 1 fails before anything is allocated.
        let mut bad = body.clone();
        bad[128..132].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(LogonInfo::parse(&bad).is_err());
        // One byte more than the object buffer says.
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(LogonInfo::parse(&longer).ok(), LogonInfo::parse(&body).ok());
        let mut bad = body;
        bad[8] += 8; // ObjectBufferLength past the end
        assert_eq!(LogonInfo::parse(&bad), Err(PacError::Truncated));
    }

    /// NDR writer for the property tests: the inverse of the reader.
    #[derive(Default)]
    struct Writer {
        out: Vec<u8>,
        next_ref: u32,
    }

    impl Writer {
        fn align(&mut self, n: usize) {
            while self.out.len() % n != 0 {
                self.out.push(0);
            }
        }
        fn u16(&mut self, v: u16) {
            self.align(2);
            self.out.extend(v.to_le_bytes());
        }
        fn u32(&mut self, v: u32) {
            self.align(4);
            self.out.extend(v.to_le_bytes());
        }
        fn pointer(&mut self, present: bool) {
            self.next_ref += 4;
            let id = if present { 0x20000 + self.next_ref } else { 0 };
            self.u32(id);
        }
        fn string_header(&mut self, s: &str) {
            let len = (s.encode_utf16().count() * 2) as u16;
            self.u16(len);
            self.u16(len);
            self.pointer(true);
        }
        fn string(&mut self, s: &str) {
            let units: Vec<u16> = s.encode_utf16().collect();
            self.u32(units.len() as u32);
            self.u32(0);
            self.u32(units.len() as u32);
            for u in units {
                self.u16(u);
            }
        }
        fn sid(&mut self, sid: &Sid) {
            self.u32(sid.sub_authorities.len() as u32);
            self.out.push(sid.revision);
            self.out.push(sid.sub_authorities.len() as u8);
            self.out.extend(&sid.authority.to_be_bytes()[2..]);
            for s in &sid.sub_authorities {
                self.out.extend(s.to_le_bytes());
            }
        }
        fn memberships(&mut self, groups: &[GroupMembership]) {
            self.u32(groups.len() as u32);
            for g in groups {
                self.u32(g.rid);
                self.u32(g.attributes);
            }
        }
    }

    fn encode(info: &LogonInfo) -> Vec<u8> {
        let mut w = Writer::default();
        w.out.extend([
            1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        w.pointer(true);
        for _ in 0..12 {
            w.u32(0x7fff_ffff);
        }
        let empty = "";
        for s in [&info.account_name, &info.full_name] {
            w.string_header(s);
        }
        for _ in 0..4 {
            w.string_header(empty);
        }
        w.u16(1);
        w.u16(0);
        w.u32(info.user_id);
        w.u32(info.primary_group_id);
        w.u32(info.group_ids.len() as u32);
        w.pointer(!info.group_ids.is_empty());
        w.u32(info.user_flags);
        w.out.extend([0u8; 16]);
        w.string_header(&info.logon_server);
        w.string_header(&info.logon_domain_name);
        w.pointer(info.logon_domain_id.is_some());
        for _ in 0..10 {
            w.u32(0);
        }
        w.u32(info.extra_sids.len() as u32);
        w.pointer(!info.extra_sids.is_empty());
        w.pointer(info.resource_group_domain_sid.is_some());
        w.u32(info.resource_group_ids.len() as u32);
        w.pointer(!info.resource_group_ids.is_empty());
        w.string(&info.account_name);
        w.string(&info.full_name);
        for _ in 0..4 {
            w.string(empty);
        }
        if !info.group_ids.is_empty() {
            w.memberships(&info.group_ids);
        }
        w.string(&info.logon_server);
        w.string(&info.logon_domain_name);
        if let Some(sid) = &info.logon_domain_id {
            w.sid(sid);
        }
        if !info.extra_sids.is_empty() {
            w.u32(info.extra_sids.len() as u32);
            for e in &info.extra_sids {
                w.pointer(true);
                w.u32(e.attributes);
            }
            for e in &info.extra_sids {
                w.sid(&e.sid);
            }
        }
        if let Some(sid) = &info.resource_group_domain_sid {
            w.sid(sid);
        }
        if !info.resource_group_ids.is_empty() {
            w.memberships(&info.resource_group_ids);
        }
        w.align(8);
        let length = (w.out.len() - 16) as u32;
        w.out[8..12].copy_from_slice(&length.to_le_bytes());
        w.out
    }

    fn any_sid() -> impl Strategy<Value = Sid> {
        (
            any::<u8>(),
            0u64..(1 << 48),
            proptest::collection::vec(any::<u32>(), 0..=15),
        )
            .prop_map(|(revision, authority, sub_authorities)| Sid {
                revision,
                authority,
                sub_authorities,
            })
    }

    fn any_groups() -> impl Strategy<Value = Vec<GroupMembership>> {
        proptest::collection::vec(
            (any::<u32>(), any::<u32>())
                .prop_map(|(rid, attributes)| GroupMembership { rid, attributes }),
            0..20,
        )
    }

    fn any_logon_info() -> impl Strategy<Value = LogonInfo> {
        (
            ("\\PC{0,20}", "\\PC{0,20}", "\\PC{0,10}", "[A-Z]{0,15}"),
            (any::<u32>(), any::<u32>(), any::<u32>()),
            any_groups(),
            proptest::option::of(any_sid()),
            proptest::collection::vec(
                (any_sid(), any::<u32>())
                    .prop_map(|(sid, attributes)| SidAndAttributes { sid, attributes }),
                0..8,
            ),
            proptest::option::of(any_sid()),
            any_groups(),
        )
            .prop_map(
                |(
                    (account_name, full_name, logon_server, logon_domain_name),
                    (user_id, primary_group_id, user_flags),
                    group_ids,
                    logon_domain_id,
                    extra_sids,
                    resource_group_domain_sid,
                    resource_group_ids,
                )| LogonInfo {
                    account_name,
                    full_name,
                    user_id,
                    primary_group_id,
                    group_ids,
                    user_flags,
                    logon_server,
                    logon_domain_name,
                    logon_domain_id,
                    extra_sids,
                    resource_group_domain_sid,
                    resource_group_ids,
                },
            )
    }

    #[test]
    fn the_writer_matches_samba() {
        let body = Pac::parse(SAMBA_KINIT_BOB)
            .unwrap()
            .buffer(crate::pac::LOGON_INFO)
            .unwrap();
        let info = LogonInfo::parse(body).unwrap();
        assert_eq!(LogonInfo::parse(&encode(&info)).unwrap(), info);
    }

    proptest! {
        #[test]
        fn encoded_logon_info_reads_back(info in any_logon_info()) {
            prop_assert_eq!(LogonInfo::parse(&encode(&info)).unwrap(), info);
        }

        #[test]
        fn mutated_logon_info_never_panics(
            info in any_logon_info(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut bytes = encode(&info);
            for (pos, byte) in edits {
                let i = pos % bytes.len();
                bytes[i] = byte;
            }
            crate::pac::fuzz_check_logon_info(&bytes);
            crate::pac::fuzz_check_logon_info(&bytes[..cut % (bytes.len() + 1)]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            crate::pac::fuzz_check_logon_info(&data);
        }
    }
}
