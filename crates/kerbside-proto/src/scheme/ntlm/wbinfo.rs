//! What `wbinfo` (Samba's winbind client) says about a domain account, sans IO: the
//! answers the gate reads after the domain controller accepted an NTLM logon, to name
//! the user as Kerberos does and to give the rules the user's groups.
//!
//! - `wbinfo --name-to-sid='ADEXAMPLE\erin'` answers `S-1-5-21-…-1107 SID_USER (1)`:
//!   [`parse_name_to_sid`].
//! - `wbinfo --sid-to-name=S-1-5-21-…-1107` answers `ADEXAMPLE\Erin 1`, the account's
//!   `sAMAccountName` (in the directory's case, or in lower case when winbindd's cache
//!   holds it from a name-to-SID lookup): [`parse_sid_to_name`].
//! - `wbinfo --user-sids=S-1-5-21-…-1107` answers one SID a line, the groups of the
//!   user's logon token, nested membership and domain-local groups included:
//!   [`parse_user_sids`].
//!
//! ```
//! use kerbside_proto::scheme::ntlm::wbinfo::{parse_name_to_sid, parse_sid_to_name};
//!
//! let sid = parse_name_to_sid("S-1-5-21-1-2-3-1107 SID_USER (1)\n").unwrap();
//! assert_eq!(sid, "S-1-5-21-1-2-3-1107");
//! let account = parse_sid_to_name("ADEXAMPLE\\Erin 1\n").unwrap();
//! assert_eq!((account.domain.as_str(), account.name.as_str()), ("ADEXAMPLE", "Erin"));
//! ```

/// `enum lsa_SidType`'s `SID_NAME_USER`: a user account.
const SID_NAME_USER: u32 = 1;

/// An account as `wbinfo --sid-to-name` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName {
    /// The NetBIOS domain (`ADEXAMPLE`).
    pub domain: String,
    /// The account name in the directory's case (`Erin`).
    pub name: String,
}

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

/// The user SID of `wbinfo --name-to-sid`'s answer (`SID SID_USER (1)`); `None` for
/// anything else, a SID that names no user account included.
pub fn parse_name_to_sid(output: &str) -> Option<String> {
    let line = output.lines().next()?.trim();
    let (sid, kind) = line.split_once(' ')?;
    let kind = kind.trim();
    let number = kind.rsplit_once('(')?.1.strip_suffix(')')?;
    (is_sid(sid) && number.parse::<u32>().ok()? == SID_NAME_USER).then(|| sid.to_owned())
}

/// The account of `wbinfo --sid-to-name`'s answer for a user (`DOMAIN\name 1`); `None`
/// for anything else, or for a name that cannot be part of a principal (empty, with
/// white space, a control character, `@`, `/` or `\`).
pub fn parse_sid_to_name(output: &str) -> Option<AccountName> {
    let line = output.lines().next()?.trim_end();
    let (qualified, kind) = line.rsplit_once(' ')?;
    if kind.parse::<u32>().ok()? != SID_NAME_USER {
        return None;
    }
    let (domain, name) = qualified.split_once('\\')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && !s
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '@' | '/' | '\\'))
    };
    (plain(domain) && plain(name)).then(|| AccountName {
        domain: domain.to_owned(),
        name: name.to_owned(),
    })
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

/// Fuzz check: every parser takes `text` without panicking, and what it returns came
/// from `text` and has the shape it promises.
pub(crate) fn fuzz_check(text: &str) {
    if let Some(sid) = parse_name_to_sid(text) {
        assert!(is_sid(&sid) && text.contains(&sid));
    }
    if let Some(account) = parse_sid_to_name(text) {
        assert!(text.contains(&format!("{}\\{}", account.domain, account.name)));
        assert!(!account.name.contains(['\\', '@', '/', ' ']));
    }
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
        assert_eq!(
            parse_name_to_sid("S-1-5-21-3024129864-1798402130-3102629853-1107 SID_USER (1)\n"),
            Some("S-1-5-21-3024129864-1798402130-3102629853-1107".to_owned())
        );
        assert_eq!(
            parse_sid_to_name("ADEXAMPLE\\Erin 1\n"),
            Some(AccountName {
                domain: "ADEXAMPLE".into(),
                name: "Erin".into()
            })
        );
        let sids = parse_user_sids(
            "S-1-5-21-1-2-3-513\nS-1-5-21-1-2-3-1105\nS-1-5-32-545\nS-1-5-21-1-2-3-513\n",
        )
        .unwrap();
        assert_eq!(
            sids,
            ["S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1105", "S-1-5-32-545"]
        );
        assert_eq!(parse_user_sids(""), Some(vec![]));
    }

    #[test]
    fn groups_odd_names_and_errors_are_not_accounts() {
        // A group, not a user.
        assert_eq!(
            parse_name_to_sid("S-1-5-21-1-2-3-1105 SID_DOM_GROUP (2)"),
            None
        );
        assert_eq!(parse_sid_to_name("ADEXAMPLE\\developers 2"), None);
        for odd in [
            "ADEXAMPLE\\Erin Smith 1",
            "ADEXAMPLE\\ 1",
            "\\Erin 1",
            "Erin 1",
            "ADEXAMPLE\\a@b 1",
            "ADEXAMPLE\\a\u{7}b 1",
        ] {
            assert_eq!(parse_sid_to_name(odd), None, "{odd:?}");
        }
        assert_eq!(
            parse_name_to_sid("failed to call wbcLookupName: WBC_ERR_DOMAIN_NOT_FOUND"),
            None
        );
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
        fn no_input_makes_a_parser_panic_or_invent(text in "\\PC{0,80}") {
            fuzz_check(&text);
        }

        #[test]
        fn a_user_sid_line_is_read_back(subs in proptest::collection::vec(0u32..u32::MAX, 1..8)) {
            let sid = format!("S-1-5-{}", subs.iter().map(u32::to_string).collect::<Vec<_>>().join("-"));
            prop_assert_eq!(parse_name_to_sid(&format!("{sid} SID_USER (1)\n")), Some(sid.clone()));
            prop_assert_eq!(parse_user_sids(&format!("{sid}\n{sid}\n")), Some(vec![sid]));
        }
    }
}
