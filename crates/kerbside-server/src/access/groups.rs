//! The groups file of the access rules: named lists of principals.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::is_principal;
use crate::identity::DomainGroup;

/// A groups file: named lists of principals that [`AccessRule::groups`](super::AccessRule::groups) refers to.
///
/// One group per line, `name: member, member`; members are separated by commas or
/// whitespace, and each is a principal `name@REALM` as GSSAPI gives it. `#` starts a comment
/// that runs to the end of the line (so neither names nor members can contain `#`). Blank
/// lines are skipped. A group may be given on several lines; its members are then merged,
/// and a member listed twice counts once. `name:` with no members defines an empty group.
///
/// ```text
/// # who may push
/// developers: alice@EXAMPLE.TEST, bob@EXAMPLE.TEST
/// developers: carol@OTHER.TEST     # merged with the line above
/// release-managers: alice@EXAMPLE.TEST
/// ```
///
/// [`Display`](fmt::Display) writes the file back, one line per group, and what it writes
/// parses to the same groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl Groups {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the text of a groups file.
    pub fn parse(text: &str) -> Result<Self, GroupsError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let fail = |kind| GroupsError::Syntax {
                path: None,
                line: index + 1,
                kind,
            };
            let line = match line.split_once('#') {
                Some((before, _comment)) => before,
                None => line,
            }
            .trim();
            if line.is_empty() {
                continue;
            }
            let Some((name, members)) = line.split_once(':') else {
                return Err(fail(GroupsErrorKind::MissingColon));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(fail(GroupsErrorKind::EmptyGroupName));
            }
            if name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '\u{feff}')
            {
                return Err(fail(GroupsErrorKind::InvalidGroupName {
                    name: name.to_owned(),
                }));
            }
            let group = groups.entry(name.to_owned()).or_default();
            for member in members
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|member| !member.is_empty())
            {
                if !is_principal(member) {
                    return Err(fail(GroupsErrorKind::InvalidMember {
                        member: member.to_owned(),
                    }));
                }
                group.insert(member.to_owned());
            }
        }
        Ok(Self { groups })
    }

    /// Reads and parses a groups file; syntax errors carry the file's path.
    pub fn load(path: &Path) -> Result<Self, GroupsError> {
        let text = std::fs::read_to_string(path).map_err(|source| GroupsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|error| match error {
            GroupsError::Syntax { line, kind, .. } => GroupsError::Syntax {
                path: Some(path.to_owned()),
                line,
                kind,
            },
            other => other,
        })
    }

    /// Whether `principal` is a member of `group` (`false` if there is no such group).
    pub fn contains(&self, group: &str, principal: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|members| members.contains(principal))
    }

    /// Whether the file defines `group`, even as empty.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// The members of `group`, in sorted order, or `None` if there is no such group.
    pub fn members(&self, group: &str) -> Option<impl Iterator<Item = &str> + '_> {
        self.groups
            .get(group)
            .map(|members| members.iter().map(String::as_str))
    }

    /// The names of the groups, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.groups.keys().map(String::as_str)
    }

    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Whether a rule's `groups` entry names an Active Directory group of the client's PAC
/// rather than a group of the groups file: `DOMAIN\name` (`ADEXAMPLE\developers`) or a
/// SID (`S-1-5-21-…-1105`). Such an entry needs no groups file.
pub fn is_domain_group(entry: &str) -> bool {
    is_sid(entry)
        || entry
            .split_once('\\')
            .is_some_and(|(domain, name)| !domain.is_empty() && !name.is_empty())
}

/// `S-1-` followed by decimal numbers separated by `-`.
fn is_sid(entry: &str) -> bool {
    entry.strip_prefix("S-1-").is_some_and(|rest| {
        rest.split('-').all(|part| {
            !part.is_empty() && part.len() <= 10 && part.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

/// Whether the rule entry `entry` names the domain group `group`: a SID exactly, a
/// `DOMAIN\name` without regard to case (as AD compares names).
pub fn names_domain_group(entry: &str, group: &DomainGroup) -> bool {
    if is_sid(entry) {
        return entry == group.sid;
    }
    group
        .name
        .as_deref()
        .is_some_and(|name| name.to_lowercase() == entry.to_lowercase())
}

impl fmt::Display for Groups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, members) in &self.groups {
            write!(f, "{name}:")?;
            for (index, member) in members.iter().enumerate() {
                let separator = if index == 0 { " " } else { ", " };
                write!(f, "{separator}{member}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A groups file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupsError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read groups file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A line is not `name: member, member`.
    #[error("{}line {line}: {kind}", in_file(path.as_deref()))]
    Syntax {
        /// The file, when it was [loaded](Groups::load) from one.
        path: Option<PathBuf>,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        kind: GroupsErrorKind,
    },
}

impl GroupsError {
    /// The line the error is on, counted from 1, for a syntax error.
    pub fn line(&self) -> Option<usize> {
        match self {
            GroupsError::Syntax { line, .. } => Some(*line),
            GroupsError::Read { .. } => None,
        }
    }

    /// What is wrong, for a syntax error.
    pub fn kind(&self) -> Option<&GroupsErrorKind> {
        match self {
            GroupsError::Syntax { kind, .. } => Some(kind),
            GroupsError::Read { .. } => None,
        }
    }
}

fn in_file(path: Option<&Path>) -> String {
    path.map(|path| format!("groups file {}, ", path.display()))
        .unwrap_or_default()
}

/// What is wrong with a line of a groups file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupsErrorKind {
    /// The line has no `:` between the group name and its members.
    #[error("expected `group: member, member`, found no `:`")]
    MissingColon,
    /// Nothing stands before the `:`.
    #[error("the group name before `:` is empty")]
    EmptyGroupName,
    /// The group name has whitespace, a control character, a byte-order mark or a comma.
    #[error("{name:?} is not a group name: it has whitespace, a control character or a comma")]
    InvalidGroupName {
        /// The name as written.
        name: String,
    },
    /// A member is not `name@REALM`; GSSAPI always names principals with their realm.
    #[error("member {member:?} is not a principal of the form name@REALM")]
    InvalidMember {
        /// The member as written.
        member: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    // ---- groups file ----

    #[test]
    fn groups_file_with_comments_whitespace_and_duplicates() {
        let groups = Groups::parse(
            "\u{feff}# who may push\n\
             \n\
             developers: alice@EXAMPLE.TEST,bob@EXAMPLE.TEST   # trailing comment\n\
             \t  release :  alice@EXAMPLE.TEST\r\n\
             developers:carol@OTHER.TEST  dave@EXAMPLE.TEST,,\n\
             developers: alice@EXAMPLE.TEST\n\
             nobody:\n\
             # the end",
        )
        .expect("parses");
        assert_eq!(
            groups.names().collect::<Vec<_>>(),
            ["developers", "nobody", "release"]
        );
        assert_eq!(
            groups
                .members("developers")
                .expect("exists")
                .collect::<Vec<_>>(),
            [
                "alice@EXAMPLE.TEST",
                "bob@EXAMPLE.TEST",
                "carol@OTHER.TEST",
                "dave@EXAMPLE.TEST"
            ]
        );
        assert!(groups.contains("release", "alice@EXAMPLE.TEST"));
        assert!(!groups.contains("release", "bob@EXAMPLE.TEST"));
        assert!(!groups.contains("missing", "alice@EXAMPLE.TEST"));
        assert!(groups.has_group("nobody"));
        assert_eq!(groups.members("nobody").expect("exists").count(), 0);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups.to_string(),
            "developers: alice@EXAMPLE.TEST, bob@EXAMPLE.TEST, carol@OTHER.TEST, \
             dave@EXAMPLE.TEST\nnobody:\nrelease: alice@EXAMPLE.TEST\n"
        );
        assert_eq!(
            Groups::parse(&groups.to_string()).expect("reparses"),
            groups
        );
        assert!(Groups::parse("").expect("empty").is_empty());
        assert!(Groups::parse("# only a comment\n\n")
            .expect("comments")
            .is_empty());
    }

    #[test]
    fn groups_file_errors_have_line_numbers() {
        let cases: &[(&str, usize, GroupsErrorKind)] = &[
            (
                "developers alice@EXAMPLE.TEST",
                1,
                GroupsErrorKind::MissingColon,
            ),
            (
                "# c\n\nok: a@R\n: alice@EXAMPLE.TEST",
                4,
                GroupsErrorKind::EmptyGroupName,
            ),
            (
                "ok: a@R\ndev team: alice@EXAMPLE.TEST",
                2,
                GroupsErrorKind::InvalidGroupName {
                    name: "dev team".into(),
                },
            ),
            (
                "a,b: alice@EXAMPLE.TEST",
                1,
                GroupsErrorKind::InvalidGroupName { name: "a,b".into() },
            ),
            (
                "\n\n\ndevelopers: alice@EXAMPLE.TEST, bob",
                4,
                GroupsErrorKind::InvalidMember {
                    member: "bob".into(),
                },
            ),
            (
                "developers: @EXAMPLE.TEST",
                1,
                GroupsErrorKind::InvalidMember {
                    member: "@EXAMPLE.TEST".into(),
                },
            ),
            (
                "developers: alice@",
                1,
                GroupsErrorKind::InvalidMember {
                    member: "alice@".into(),
                },
            ),
            ("ok: a@R\r\nbroken\r\n", 2, GroupsErrorKind::MissingColon),
            (
                "\u{feff}\u{feff}a: x@R",
                1,
                GroupsErrorKind::InvalidGroupName {
                    name: "\u{feff}a".into(),
                },
            ),
        ];
        for (text, line, kind) in cases {
            let error = Groups::parse(text).expect_err(text);
            assert_eq!(error.line(), Some(*line), "{text:?}");
            assert_eq!(error.kind(), Some(kind), "{text:?}");
        }
        assert_eq!(
            Groups::parse("x\n").expect_err("no colon").to_string(),
            "line 1: expected `group: member, member`, found no `:`"
        );
    }

    #[test]
    fn groups_load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("groups");
        std::fs::write(&path, "developers: alice@EXAMPLE.TEST\n").expect("write");
        let groups = Groups::load(&path).expect("loads");
        assert!(groups.contains("developers", "alice@EXAMPLE.TEST"));

        std::fs::write(&path, "developers: alice@EXAMPLE.TEST\nbroken\n").expect("write");
        let error = Groups::load(&path).expect_err("line 2 is broken");
        assert_eq!(error.line(), Some(2));
        assert_eq!(
            error.to_string(),
            format!(
                "groups file {}, line 2: expected `group: member, member`, found no `:`",
                path.display()
            )
        );

        let missing = dir.path().join("missing");
        let error = Groups::load(&missing).expect_err("missing");
        assert!(matches!(error, GroupsError::Read { .. }));
        assert_eq!(error.line(), None);
        assert!(
            error.to_string().starts_with("cannot read groups file"),
            "{error}"
        );
    }

    proptest! {
        #[test]
        fn groups_parse_never_panics(text in any::<String>()) {
            let _ = Groups::parse(&text);
        }

        #[test]
        fn groups_round_trip(
            lines in prop::collection::vec(
                ("[a-z_-]{1,8}", prop::collection::vec("[a-z.]{1,6}@[A-Z.]{1,8}", 0..4)),
                0..6,
            )
        ) {
            let text: String = lines
                .iter()
                .map(|(name, members)| format!("{name}: {}\n", members.join(", ")))
                .collect();
            let groups = Groups::parse(&text).expect("generated file parses");
            for (name, members) in &lines {
                for member in members {
                    prop_assert!(groups.contains(name, member));
                }
            }
            prop_assert_eq!(Groups::parse(&groups.to_string()).expect("reparses"), groups);
        }
    }
}
