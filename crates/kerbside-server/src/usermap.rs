//! Turning a Kerberos principal into the local user name a CGI program sees as
//! `REMOTE_USER`.
//!
//! Five ways, chosen with [`UserMap`]'s [`FromStr`] (the gate's `--user-map` flag):
//!
//! - `full`: the principal as it is (`alice@EXAMPLE.TEST`);
//! - `strip-realm` or `strip-realm:EXAMPLE.TEST,OTHER.TEST`: the principal without its
//!   realm (`alice`), for any realm or only for the listed ones;
//! - `down-level`: an Active Directory user's down-level logon name, `ADEXAMPLE\alice`
//!   (the NetBIOS domain from the PAC's logon info), and `upn`: their user principal name
//!   from the PAC (`alice@ad.example.test`); a client without a PAC is refused by both;
//! - anything else is the path of a map file (see [`MapFile`]) naming each principal
//!   that may come in, and the user it becomes.
//!
//! ```
//! use kerbside_server::usermap::UserMap;
//!
//! let map: UserMap = "strip-realm:EXAMPLE.TEST".parse()?;
//! assert_eq!(map.map("alice@EXAMPLE.TEST").as_deref(), Some("alice"));
//! assert_eq!(map.map("alice@ELSEWHERE.TEST"), None);
//! // A service principal is not a user.
//! assert_eq!(map.map("HTTP/www.example.test@EXAMPLE.TEST"), None);
//! # Ok::<(), kerbside_server::usermap::UserMapError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How principals become user names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMap {
    /// The whole principal, realm included.
    Full,
    /// The principal's first part, without `@REALM`; principals with more than one
    /// part (`HTTP/host@REALM`) are refused.
    StripRealm {
        /// The realms whose principals are accepted; empty accepts any realm.
        realms: Vec<String>,
    },
    /// Exactly the principals listed in a map file.
    File(MapFile),
    /// `DOMAIN\account` of an Active Directory user (from the PAC).
    DownLevel,
    /// The user principal name of an Active Directory user (from the PAC).
    Upn,
}

impl UserMap {
    /// The user name for `principal`, or `None` if the principal may not come in
    /// (the caller answers `403`).
    pub fn map(&self, principal: &str) -> Option<String> {
        if principal.chars().any(char::is_control) {
            return None;
        }
        match self {
            UserMap::Full => Some(principal.to_owned()),
            UserMap::StripRealm { realms } => {
                let (user, realm) = principal.rsplit_once('@')?;
                if !realms.is_empty() && !realms.iter().any(|r| r == realm) {
                    return None;
                }
                is_valid_user(user).then(|| user.to_owned())
            }
            UserMap::File(file) => file.get(principal).map(str::to_owned),
            // Only an authenticated client's PAC gives these: see `map_authenticated`.
            UserMap::DownLevel | UserMap::Upn => None,
        }
    }

    /// The user name for the client `who`: as [`map`](Self::map) for its principal, and
    /// from its Active Directory account for `down-level` and `upn`.
    ///
    /// ```
    /// use kerbside_proto::SchemeKind;
    /// use kerbside_server::usermap::UserMap;
    /// use kerbside_server::{Authenticated, DomainAccount};
    ///
    /// let mut who = Authenticated::new("bob@AD.EXAMPLE.TEST", SchemeKind::Negotiate, true);
    /// assert_eq!(UserMap::DownLevel.map_authenticated(&who), None);
    /// who.domain = Some(DomainAccount::new("bob", "ADEXAMPLE"));
    /// assert_eq!(UserMap::DownLevel.map_authenticated(&who).as_deref(), Some("ADEXAMPLE\\bob"));
    /// ```
    pub fn map_authenticated(&self, who: &crate::Authenticated) -> Option<String> {
        let from_domain = match self {
            UserMap::DownLevel => who.domain.as_ref().map(|d| d.down_level_name()),
            UserMap::Upn => who.domain.as_ref().and_then(|d| d.upn.clone()),
            _ => return self.map(&who.principal),
        };
        from_domain.filter(|user| {
            !user.is_empty() && !user.chars().any(|c| c.is_control() || c.is_whitespace())
        })
    }
}

impl FromStr for UserMap {
    type Err = UserMapError;

    /// `full`, `strip-realm`, `strip-realm:REALM1,REALM2`, `down-level`, `upn`, or the
    /// path of a map file (loaded now; write `./full` for a file named `full`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(UserMap::Full),
            "down-level" => Ok(UserMap::DownLevel),
            "upn" => Ok(UserMap::Upn),
            "strip-realm" => Ok(UserMap::StripRealm { realms: Vec::new() }),
            _ => match s.strip_prefix("strip-realm:") {
                Some(list) => {
                    let realms: Vec<String> =
                        list.split(',').map(|r| r.trim().to_owned()).collect();
                    if realms
                        .iter()
                        .any(|r| r.is_empty() || r.chars().any(|c| c.is_whitespace() || c == '@'))
                    {
                        return Err(UserMapError::BadRealmList(list.to_owned()));
                    }
                    Ok(UserMap::StripRealm { realms })
                }
                None => MapFile::load(s).map(UserMap::File),
            },
        }
    }
}

/// A user name may be given to a CGI program: not empty, no control characters, no
/// `/`, no white space.
fn is_valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/')
}

/// A principal as written in a map file: not empty, no control characters, no white
/// space, no `=`, not starting with `#`.
fn is_valid_principal(principal: &str) -> bool {
    !principal.is_empty()
        && !principal.starts_with('#')
        && !principal
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '=')
}

/// A map file: one `principal = user` a line.
///
/// ```text
/// # who may use the repositories
/// alice@EXAMPLE.TEST = alice
/// bob@EXAMPLE.TEST   = robert
/// ```
///
/// Blank lines and lines whose first non-blank character is `#` are ignored; white
/// space around `=` is too. A principal listed twice is an error, and so is a user
/// name that is empty or has white space, a `/` or control characters. Principals
/// not listed are refused. Formatting a map file ([`Display`](fmt::Display)) gives
/// text that parses back to the same map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapFile {
    entries: BTreeMap<String, String>,
}

impl MapFile {
    /// Parses the text of a map file.
    pub fn parse(text: &str) -> Result<Self, UserMapError> {
        Self::parse_from(text, None)
    }

    /// Reads and parses a map file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, UserMapError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UserMapError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_from(&text, Some(path))
    }

    fn parse_from(text: &str, path: Option<&Path>) -> Result<Self, UserMapError> {
        let mut entries = BTreeMap::new();
        let mut lines_of: BTreeMap<String, usize> = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let bad = |problem| UserMapError::Line {
                path: path.map(Path::to_owned),
                line: number,
                problem,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (principal, user) = line.split_once('=').ok_or(bad(LineProblem::NoEquals))?;
            let (principal, user) = (principal.trim(), user.trim());
            if principal.is_empty() {
                return Err(bad(LineProblem::EmptyPrincipal));
            }
            if !is_valid_principal(principal) {
                return Err(bad(LineProblem::InvalidPrincipal(principal.to_owned())));
            }
            if !is_valid_user(user) {
                return Err(bad(LineProblem::InvalidUser(user.to_owned())));
            }
            if let Some(&first) = lines_of.get(principal) {
                return Err(UserMapError::Duplicate {
                    path: path.map(Path::to_owned),
                    principal: principal.to_owned(),
                    first,
                    second: number,
                });
            }
            lines_of.insert(principal.to_owned(), number);
            entries.insert(principal.to_owned(), user.to_owned());
        }
        Ok(Self { entries })
    }

    /// The user `principal` maps to, if it is listed.
    pub fn get(&self, principal: &str) -> Option<&str> {
        self.entries.get(principal).map(String::as_str)
    }

    /// The number of principals listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no principal is listed (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(principal, user)` pairs, ordered by principal.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(p, u)| (p.as_str(), u.as_str()))
    }
}

impl fmt::Display for MapFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (principal, user) in self.iter() {
            writeln!(f, "{principal} = {user}")?;
        }
        Ok(())
    }
}

/// Why a user map could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserMapError {
    /// The map file could not be read.
    #[error("cannot read the user map {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line of the map file is wrong.
    #[error("{}line {line}: {problem}", where_(path))]
    Line {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// A principal is listed twice.
    #[error(
        "{}principal {principal} is listed twice: on line {first} and on line {second}",
        where_(path)
    )]
    Duplicate {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The principal.
        principal: String,
        /// The line that lists it first.
        first: usize,
        /// The line that lists it again.
        second: usize,
    },
    /// `strip-realm:` is followed by an empty realm or one with white space or `@`.
    #[error(
        "strip-realm:{0}: give realms separated by commas, e.g. strip-realm:EXAMPLE.COM,OTHER.COM"
    )]
    BadRealmList(String),
}

fn where_(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("{}: ", path.display()),
        None => String::new(),
    }
}

/// What is wrong with a line of a map file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The line is not `principal = user`.
    #[error("expected `principal = user`")]
    NoEquals,
    /// Nothing stands before `=`.
    #[error("no principal before `=`")]
    EmptyPrincipal,
    /// The principal has white space or control characters, or starts with `#`.
    #[error("{0:?} is not a principal")]
    InvalidPrincipal(String),
    /// The user name is empty, or has white space, `/` or control characters.
    #[error("{0:?} is not a valid user name (it must be non-empty, without white space, `/` or control characters)")]
    InvalidUser(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn down_level_and_upn_come_from_the_pac_only() {
        use crate::{Authenticated, DomainAccount};
        use kerbside_proto::SchemeKind;
        assert_eq!("down-level".parse::<UserMap>().unwrap(), UserMap::DownLevel);
        assert_eq!("upn".parse::<UserMap>().unwrap(), UserMap::Upn);
        let mut who = Authenticated::new("bob@AD.EXAMPLE.TEST", SchemeKind::Negotiate, true);
        // No PAC (an MIT KDC's ticket): refused, not guessed.
        assert_eq!(UserMap::DownLevel.map_authenticated(&who), None);
        assert_eq!(UserMap::Upn.map_authenticated(&who), None);
        assert_eq!(
            UserMap::StripRealm { realms: Vec::new() }
                .map_authenticated(&who)
                .as_deref(),
            Some("bob")
        );
        let mut account = DomainAccount::new("bob", "ADEXAMPLE");
        account.upn = Some("bob@ad.example.test".to_owned());
        who.domain = Some(account);
        assert_eq!(
            UserMap::DownLevel.map_authenticated(&who).as_deref(),
            Some("ADEXAMPLE\\bob")
        );
        assert_eq!(
            UserMap::Upn.map_authenticated(&who).as_deref(),
            Some("bob@ad.example.test")
        );
        assert_eq!(
            UserMap::Full.map_authenticated(&who).as_deref(),
            Some("bob@AD.EXAMPLE.TEST")
        );
    }

    #[test]
    fn parses_comments_blank_lines_and_spacing() {
        let map = MapFile::parse(
            "# users\n\n  alice@EXAMPLE.TEST = alice\r\nbob@EXAMPLE.TEST=robert\n\t# indented comment\ncarol@OTHER.TEST\t=  carol  \n",
        )
        .unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("alice@EXAMPLE.TEST"), Some("alice"));
        assert_eq!(map.get("bob@EXAMPLE.TEST"), Some("robert"));
        assert_eq!(map.get("carol@OTHER.TEST"), Some("carol"));
        assert_eq!(map.get("dave@EXAMPLE.TEST"), None);
    }

    #[test]
    fn duplicate_names_both_lines() {
        let err = MapFile::parse("a@R = a\n\nb@R = b\na@R = x\n").unwrap_err();
        match &err {
            UserMapError::Duplicate {
                principal,
                first,
                second,
                ..
            } => {
                assert_eq!(principal, "a@R");
                assert_eq!((*first, *second), (1, 4));
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("line 1") && text.contains("line 4"), "{text}");
    }

    #[test]
    fn refuses_bad_lines() {
        let problem = |text: &str| match MapFile::parse(text) {
            Err(UserMapError::Line { problem, line, .. }) => (line, problem),
            other => panic!("{text:?}: unexpected {other:?}"),
        };
        assert_eq!(problem("alice"), (1, LineProblem::NoEquals));
        assert_eq!(problem("# c\n = alice"), (2, LineProblem::EmptyPrincipal));
        assert_eq!(
            problem("a@R ="),
            (1, LineProblem::InvalidUser(String::new()))
        );
        assert_eq!(
            problem("a@R = al ice"),
            (1, LineProblem::InvalidUser("al ice".into()))
        );
        assert_eq!(
            problem("a@R = ../root"),
            (1, LineProblem::InvalidUser("../root".into()))
        );
        assert_eq!(
            problem("a@R = al\u{7}ice"),
            (1, LineProblem::InvalidUser("al\u{7}ice".into()))
        );
        assert_eq!(
            problem("a b@R = alice"),
            (1, LineProblem::InvalidPrincipal("a b@R".into()))
        );
        assert_eq!(
            problem("a@R = alice # trailing comment"),
            (
                1,
                LineProblem::InvalidUser("alice # trailing comment".into())
            )
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.map");
        std::fs::write(&path, "a@R = a\nbroken\n").unwrap();
        let err = MapFile::load(&path).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("{}: line 2", path.display())));
        let err = MapFile::load(dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, UserMapError::Read { .. }));
    }

    #[test]
    fn from_str_variants() {
        assert_eq!("full".parse::<UserMap>().unwrap(), UserMap::Full);
        assert_eq!(
            "strip-realm".parse::<UserMap>().unwrap(),
            UserMap::StripRealm { realms: vec![] }
        );
        assert_eq!(
            "strip-realm:A.TEST, B.TEST".parse::<UserMap>().unwrap(),
            UserMap::StripRealm {
                realms: vec!["A.TEST".into(), "B.TEST".into()]
            }
        );
        assert!(matches!(
            "strip-realm:".parse::<UserMap>(),
            Err(UserMapError::BadRealmList(_))
        ));
        assert!(matches!(
            "strip-realm:A,,B".parse::<UserMap>(),
            Err(UserMapError::BadRealmList(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full");
        std::fs::write(&path, "alice@EXAMPLE.TEST = alice\n").unwrap();
        let map: UserMap = path.to_str().unwrap().parse().unwrap();
        assert_eq!(map.map("alice@EXAMPLE.TEST").as_deref(), Some("alice"));
        assert_eq!(map.map("bob@EXAMPLE.TEST"), None);
    }

    #[test]
    fn mapping() {
        let full = UserMap::Full;
        assert_eq!(
            full.map("alice@EXAMPLE.TEST").as_deref(),
            Some("alice@EXAMPLE.TEST")
        );
        assert_eq!(full.map("alice\n@EXAMPLE.TEST"), None);
        let any = UserMap::StripRealm { realms: vec![] };
        assert_eq!(any.map("alice@EXAMPLE.TEST").as_deref(), Some("alice"));
        assert_eq!(any.map("bob@OTHER.TEST").as_deref(), Some("bob"));
        assert_eq!(any.map("alice"), None);
        assert_eq!(any.map("@EXAMPLE.TEST"), None);
        assert_eq!(any.map("host/www@EXAMPLE.TEST"), None);
        let one = UserMap::StripRealm {
            realms: vec!["EXAMPLE.TEST".into()],
        };
        assert_eq!(one.map("alice@EXAMPLE.TEST").as_deref(), Some("alice"));
        assert_eq!(one.map("alice@example.test"), None);
        assert_eq!(one.map("alice@OTHER.TEST"), None);
    }

    fn principal() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._/+-]{1,12}@[A-Z0-9.\\-]{1,12}"
    }

    fn user() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._@=#\\-\u{e9}\u{4e2d}]{1,12}"
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*|[ \t\r\n=#@a-z\u{0}\u{85}\u{2028}]*") {
            let _ = MapFile::parse(&text);
        }

        #[test]
        fn formatted_files_parse_back(
            entries in proptest::collection::btree_map(principal(), user(), 0..20),
            comment in "[^\r\n]*",
        ) {
            let mut text = format!("# {comment}\n\n");
            for (p, u) in &entries {
                text.push_str(&format!("  {p}\t=   {u} \r\n"));
            }
            let map = MapFile::parse(&text).unwrap();
            prop_assert_eq!(map.len(), entries.len());
            for (p, u) in &entries {
                prop_assert_eq!(UserMap::File(map.clone()).map(p), Some(u.clone()));
            }
            let again = MapFile::parse(&map.to_string()).unwrap();
            prop_assert_eq!(again, map);
        }

        #[test]
        fn parsed_files_format_back(text in "([a-z@=# \t]{0,10}\n){0,8}") {
            if let Ok(map) = MapFile::parse(&text) {
                prop_assert_eq!(MapFile::parse(&map.to_string()).unwrap(), map);
            }
        }
    }
}
