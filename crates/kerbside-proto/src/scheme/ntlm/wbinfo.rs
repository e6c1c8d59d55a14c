//! What `wbinfo --user-sids` (Samba's winbind client) says about a domain account, sans
//! IO: the SIDs of the groups of its logon token, nested membership and domain-local groups
//! included, one a line. The gate reads it after the domain controller accepted an NTLM
//! logon, to give the rules the groups Kerberos gives from the PAC.
//!
//! ```
//! use kerbside_proto::scheme::ntlm::wbinfo::parse_user_sids;
//!
//! let sids = parse_user_sids("S-1-5-21-1-2-3-513\nS-1-5-21-1-2-3-1105\n").unwrap();
//! assert_eq!(sids, ["S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1105"]);
//! assert_eq!(parse_user_sids("failed to call wbcLookupUserSids: WBC_ERR_DOMAIN_NOT_FOUND"), None);
//! ```

/// Whether `s` is a SID string: `S-1-` then numbers separated by single `-`, at most 15
/// sub-authorities (MS-DTYP 2.4.2).
pub fn is_sid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("S-1-") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    parts.len() <= 16
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The SIDs of `wbinfo --user-sids`'s answer, one a line, each once, in order; `None` if
/// a line is not a SID (an error message, not a list).
pub fn parse_user_sids(output: &str) -> Option<Vec<String>> {
    let mut sids: Vec<String> = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !is_sid(line) {
            return None;
        }
        if !sids.iter().any(|s| s == line) {
            sids.push(line.to_owned());
        }
    }
    Some(sids)
}

/// Fuzz check: `text` read as `--user-sids` output never panics, and the SIDs it gives
/// are SIDs that came from `text`.
pub(crate) fn fuzz_check(text: &str) {
    if let Some(sids) = parse_user_sids(text) {
        assert!(sids.iter().all(|s| is_sid(s) && text.contains(s.as_str())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samba_4_17_answers_are_read() {
        let sids = parse_user_sids(
            "S-1-5-21-1-2-3-1107\nS-1-5-21-1-2-3-513\nS-1-5-32-545\nS-1-5-21-1-2-3-513\n",
        )
        .unwrap();
        assert_eq!(
            sids,
            ["S-1-5-21-1-2-3-1107", "S-1-5-21-1-2-3-513", "S-1-5-32-545"]
        );
        assert_eq!(parse_user_sids(""), Some(vec![]));
    }

    #[test]
    fn errors_and_odd_sids_are_not_lists() {
        assert_eq!(
            parse_user_sids("failed to call wbcLookupUserSids: WBC_ERR_WINBIND_NOT_AVAILABLE"),
            None
        );
        for bad in [
            "S-1-",
            "S-1-5-",
            "S-1-5--1",
            "S-1-5-x",
            "s-1-5-32",
            "S-1-5-32-545 ",
        ] {
            assert!(!is_sid(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic_or_invent(text in "\\PC{0,80}") {
            fuzz_check(&text);
        }

        #[test]
        fn a_sid_list_is_read_back(subs in proptest::collection::vec(0u32..u32::MAX, 1..8)) {
            let sid = format!("S-1-5-{}", subs.iter().map(u32::to_string).collect::<Vec<_>>().join("-"));
            prop_assert_eq!(parse_user_sids(&format!("{sid}\n{sid}\n")), Some(vec![sid]));
        }
    }
}
