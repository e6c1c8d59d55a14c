//! Access rules for the gate: whether a request, from a Kerberos principal or from nobody,
//! may go on to the app behind it, by path prefix, method and operation (read or push).
//!
//! The headline use is "anonymous read, authenticated push" in front of hgweb or
//! `git http-backend`:
//!
//! ```
//! use http::Method;
//! use kerbside_server::access::{AccessRule, AccessRules, Decision, Groups};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #[derive(serde::Deserialize)]
//! struct GateFile {
//!     access: Vec<AccessRule>,
//! }
//! let file: GateFile = toml::from_str(
//!     r#"
//!     [[access]]
//!     path = "/hg/"
//!     anonymous = true
//!
//!     [[access]]
//!     path = "/hg/"
//!     operation = "push"
//!     groups = ["developers"]
//!     "#,
//! )?;
//! let groups = Groups::parse("developers: alice@EXAMPLE.TEST, bob@EXAMPLE.TEST\n")?;
//! let rules = AccessRules::new(file.access, groups)?;
//!
//! // Anyone may clone and pull...
//! let pull = (&Method::GET, "/hg/repo", Some("cmd=getbundle"));
//! assert!(!rules.needs_authentication(pull.0, pull.1, pull.2));
//! assert_eq!(rules.decide(pull.0, pull.1, pull.2, None), Decision::Allow);
//!
//! // ...but a push needs a login, and then a developer.
//! let push = (&Method::POST, "/hg/repo", Some("cmd=unbundle&heads=686173686564"));
//! assert!(rules.needs_authentication(push.0, push.1, push.2));
//! assert_eq!(rules.decide(push.0, push.1, push.2, None), Decision::Authenticate);
//! assert_eq!(
//!     rules.decide(push.0, push.1, push.2, Some("alice@EXAMPLE.TEST")),
//!     Decision::Allow
//! );
//! assert!(matches!(
//!     rules.decide(push.0, push.1, push.2, Some("mallory@EXAMPLE.TEST")),
//!     Decision::Deny { .. }
//! ));
//! # Ok(()) }
//! ```
//!
//! # How a request is judged
//!
//! 1. **The path must be canonical.** The gate makes every request path canonical at its
//!    edge ([`canonical_path`](crate::canonical_path), rules in
//!    [`kerbside_proto::request_path`]): unreserved escapes decoded, `.` and `..` resolved
//!    in every spelling, `//` merged, and `%2F`, backslashes, control bytes and a `..` above
//!    `/` refused with `400` before any rule is asked. So `/public/../private/x`,
//!    `/public/%2e%2e/private/x` and `//private/./x` reach the rules (and the router, the
//!    proxy and CGI) as `/private/x`. [`AccessRules::decide`] is given that canonical path
//!    (`uri.path()` after the edge); one that is not canonical is denied outright rather
//!    than read a second way. Each segment is percent-decoded once for matching.
//!
//!    Matching is by whole segments and case-sensitive: rule path `/hg/` (or `/hg`) matches
//!    `/hg`, `/hg/` and `/hg/repo`, not `/hgweb`.
//! 2. **The request is classified** by [`classify`] as a [`Push`](Operation::Push) or a
//!    [`Read`](Operation::Read).
//! 3. **The most specific matching rule decides**, and only that one (there is no falling
//!    through to a broader rule). A rule matches when its path is a prefix of the request's,
//!    the method is in its `methods` (if given) and the operation is its `operation` (if
//!    given). Rules are ranked by
//!    - the longest path (in segments) first;
//!    - then, on the same path, the rule with more of `operation` and `methods` set first;
//!    - then, still tied, a deny rule before an allow rule, so an explicit deny cannot be
//!      undone by where it sits in the file;
//!    - then the order in the configuration.
//!
//!    Beware that a longer path beats an `operation`: with a push rule for `/hg/` and an
//!    anonymous rule for `/hg/public/`, a push to `/hg/public/repo` is judged by the
//!    anonymous rule. Give `/hg/public/` its own push rule to keep its pushes authenticated.
//! 4. **The rule's answer:** `deny = true` gives [`Decision::Deny`]; `anonymous = true` gives
//!    [`Decision::Allow`]; otherwise a request without a principal gets
//!    [`Decision::Authenticate`] (401), and one with a principal is allowed if the rule has
//!    `authenticated = true`, lists the principal in `users`, its realm (the part after the
//!    last `@`) in `realms`, or a group of the [`Groups`] file that has it as a member; else it
//!    is denied.
//! 5. **When no rule matches**, the request is refused: [`Decision::Authenticate`] without a
//!    principal (so an anonymous client is asked to log in, as it would be with no rules at
//!    all) and [`Decision::Deny`] with one. Add a rule for `/` to change that.
//!
//! The reasons in [`Decision::Deny`] are for the log: they name principals and rules, so the
//! gate must not send them to the client.

use std::collections::BTreeSet;

use http::Method;
use kerbside_proto::request_path::CanonicalPath;
use percent_encoding::percent_decode;
use serde::Deserialize;

use crate::identity::DomainGroup;

mod groups;
mod operation;

pub use groups::{is_domain_group, names_domain_group, Groups, GroupsError, GroupsErrorKind};
pub use operation::{classify, Operation};
/// The decoded segments of a canonical request path (empty segments left out, so `/hg/`
/// and `/hg` give the same), or why the path is not canonical.
///
/// The gate makes each path canonical at its edge; a path that is not is refused here
/// rather than read in some second way.
fn segments(path: &str) -> Result<Vec<Vec<u8>>, String> {
    match CanonicalPath::parse(path) {
        Ok(canonical) if canonical.as_str() == path => Ok(canonical
            .segments()
            .filter(|segment| !segment.is_empty())
            .map(|segment| percent_decode(segment.as_bytes()).collect())
            .collect()),
        Ok(canonical) => Err(format!(
            "is not in canonical form (it would be {:?})",
            canonical.as_str()
        )),
        Err(problem) => Err(problem.to_string()),
    }
}

fn display_segments(segments: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.extend(String::from_utf8_lossy(segment).escape_debug());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// One `[[access]]` table of the gate's configuration, as written; [`AccessRules::new`]
/// checks it.
///
/// ```toml
/// [[access]]
/// path = "/hg/"                   # prefix, by whole segments, of the decoded path; default "/"
/// methods = ["GET", "HEAD"]       # only these methods (case-sensitive, as sent)
/// operation = "push"              # only pushes ("push") or only everything else ("read")
/// anonymous = true                # allow without authentication
/// authenticated = true            # allow any authenticated principal
/// users = ["alice@EXAMPLE.TEST"]  # these principals, exactly as GSSAPI names them
/// realms = ["EXAMPLE.TEST"]       # any principal of these realms (case-sensitive)
/// groups = ["developers"]         # members of these groups of the groups file, or of
///                                 # AD groups from the PAC: "ADEXAMPLE\\developers", "S-1-5-21-…"
/// deny = false                    # refuse every request the rule matches
/// ```
///
/// A rule either denies (`deny = true` and nothing else about whom) or names whom it
/// allows: `anonymous`, `authenticated`, or any of `users`, `realms` and `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AccessRule {
    /// The path prefix the rule covers, matched by whole segments against the decoded,
    /// normalised request path: `/hg/` and `/hg` both cover `/hg` and `/hg/repo`, not
    /// `/hgweb`. `/` covers everything.
    pub path: String,
    /// When set, the rule matches only these methods (`HEAD` is not implied by `GET`).
    pub methods: Option<Vec<String>>,
    /// When set, the rule matches only requests [`classify`] puts in this operation.
    pub operation: Option<Operation>,
    /// Allow without authentication.
    pub anonymous: bool,
    /// Allow any authenticated principal.
    pub authenticated: bool,
    /// Allow these principals (`name@REALM`, compared exactly).
    pub users: Vec<String>,
    /// Allow any principal whose realm (after the last `@`) is one of these.
    pub realms: Vec<String>,
    /// Allow members of these groups of the [`Groups`] file, and of these Active Directory
    /// groups of the client's PAC (`DOMAIN\name` or a SID; see [`is_domain_group`]).
    pub groups: Vec<String>,
    /// Refuse every request this rule matches.
    pub deny: bool,
}

impl Default for AccessRule {
    /// A rule for `/` that allows no one yet.
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            methods: None,
            operation: None,
            anonymous: false,
            authenticated: false,
            users: Vec::new(),
            realms: Vec::new(),
            groups: Vec::new(),
            deny: false,
        }
    }
}

/// What the gate does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Answer `401` with a `Negotiate` challenge: the request needs a principal.
    Authenticate,
    /// Answer `403`.
    Deny {
        /// Why, for the log only: it names principals and rules, so it must not go into
        /// the response.
        reason: String,
    },
}

/// A configuration mistake found by [`AccessRules::new`]. `rule` counts the rules from 1, in
/// configuration order, and `label` shows its path, operation and methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The rule's `path` does not start with `/`.
    #[error("access rule {rule}: path {path:?} does not start with /")]
    PathNotAbsolute {
        /// The rule's position, from 1.
        rule: usize,
        /// The path as configured.
        path: String,
    },
    /// The rule's `path` has a `.` or `..` segment, which no normalised request path has.
    #[error("access rule {rule}: path {path:?} has a . or .. segment; write the path it means")]
    PathHasDotSegment {
        /// The rule's position, from 1.
        rule: usize,
        /// The path as configured.
        path: String,
    },
    /// The rule's `path` is one no request path could be: it has a `%2F`, a backslash, a
    /// `;`, a control character or a bad escape (see [`CanonicalPath`]).
    #[error("access rule {rule}: path {path:?} {problem}; no request path can match it")]
    InvalidPath {
        /// The rule's position, from 1.
        rule: usize,
        /// The path as configured.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `methods = []`: the rule could never match.
    #[error("access rule {rule} ({label}): methods is empty, so the rule would never match")]
    EmptyMethods {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
    },
    /// A `methods` entry is not a method name, or not in upper case (methods are
    /// case-sensitive, and clients send them in upper case).
    #[error(
        "access rule {rule} ({label}): {method:?} is not an HTTP method; \
         write it in upper case, like GET"
    )]
    InvalidMethod {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
        /// The entry as configured.
        method: String,
    },
    /// A rule that does not deny names no one it allows.
    #[error(
        "access rule {rule} ({label}) allows no one: \
         set anonymous, authenticated, users, realms or groups (or deny = true)"
    )]
    AllowsNoOne {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
    },
    /// A deny rule also names whom to allow. A deny rule refuses everyone it matches, so
    /// the names would mislead.
    #[error(
        "access rule {rule} ({label}) denies everyone it matches, \
         so it cannot also set anonymous, authenticated, users, realms or groups"
    )]
    DenyWithAllowed {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
    },
    /// `anonymous` or `authenticated` is set beside narrower fields that would then never
    /// be consulted.
    #[error(
        "access rule {rule} ({label}): {field} = true already allows everyone \
         the other fields name; drop them"
    )]
    Redundant {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
        /// `anonymous` or `authenticated`.
        field: &'static str,
    },
    /// A `users` entry is not `name@REALM`; GSSAPI always names principals with their realm.
    #[error(
        "access rule {rule} ({label}): user {user:?} is not a principal of the form name@REALM"
    )]
    InvalidUser {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
        /// The entry as configured.
        user: String,
    },
    /// A `realms` entry is empty or has an `@`.
    #[error(
        "access rule {rule} ({label}): {realm:?} is not a realm name \
         (write EXAMPLE.TEST, without @)"
    )]
    InvalidRealm {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
        /// The entry as configured.
        realm: String,
    },
    /// A `groups` entry is not a group of the groups file.
    #[error("access rule {rule} ({label}): group {group:?} is not in the groups file")]
    UnknownGroup {
        /// The rule's position, from 1.
        rule: usize,
        /// The rule's path, operation and methods.
        label: String,
        /// The entry as configured.
        group: String,
    },
    /// Two rules match exactly the same requests, so only one could ever decide.
    #[error("access rules {first} and {rule} ({label}) match the same requests; merge them")]
    DuplicateRule {
        /// The earlier rule's position, from 1.
        first: usize,
        /// The later rule's position, from 1.
        rule: usize,
        /// The rules' path, operation and methods.
        label: String,
    },
}

/// The validated form of an [`AccessRule`].
#[derive(Debug, Clone)]
struct Rule {
    /// Position in the configuration, from 1.
    number: usize,
    /// Path, operation and methods, for messages.
    label: String,
    segments: Vec<Vec<u8>>,
    methods: Option<BTreeSet<Method>>,
    operation: Option<Operation>,
    deny: bool,
    anonymous: bool,
    authenticated: bool,
    users: BTreeSet<String>,
    realms: BTreeSet<String>,
    groups: Vec<String>,
}

impl Rule {
    fn compile(number: usize, config: AccessRule, groups: &Groups) -> Result<Self, AccessError> {
        let mut label = config.path.clone();
        if let Some(operation) = config.operation {
            label.push(' ');
            label.push_str(operation.as_str());
        }
        if let Some(methods) = config.methods.as_ref().filter(|m| !m.is_empty()) {
            label.push(' ');
            label.push_str(&methods.join(","));
        }
        let Some(rest) = config.path.strip_prefix('/') else {
            return Err(AccessError::PathNotAbsolute {
                rule: number,
                path: config.path,
            });
        };
        if rest
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(AccessError::PathHasDotSegment {
                rule: number,
                path: config.path,
            });
        }
        // Read the rule's path as a request path is read, so that `/a%20b`, `/a b` and
        // `/%61%20b` are one rule path, and a rule cannot silently never match.
        let segments = match segments(&config.path).or_else(|_| {
            CanonicalPath::parse(&config.path)
                .map(|canonical| segments(canonical.as_str()).unwrap_or_default())
        }) {
            Ok(segments) => segments,
            Err(problem) => {
                return Err(AccessError::InvalidPath {
                    rule: number,
                    path: config.path,
                    problem: problem.to_string(),
                })
            }
        };
        let methods = match config.methods {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(AccessError::EmptyMethods {
                    rule: number,
                    label,
                })
            }
            Some(names) => {
                let mut methods = BTreeSet::new();
                for name in names {
                    let method = Method::from_bytes(name.as_bytes())
                        .ok()
                        .filter(|_| !name.bytes().any(|b| b.is_ascii_lowercase()));
                    match method {
                        Some(method) => {
                            methods.insert(method);
                        }
                        None => {
                            return Err(AccessError::InvalidMethod {
                                rule: number,
                                label,
                                method: name,
                            })
                        }
                    }
                }
                Some(methods)
            }
        };
        let names_someone =
            !config.users.is_empty() || !config.realms.is_empty() || !config.groups.is_empty();
        if config.deny {
            if config.anonymous || config.authenticated || names_someone {
                return Err(AccessError::DenyWithAllowed {
                    rule: number,
                    label,
                });
            }
        } else if !(config.anonymous || config.authenticated || names_someone) {
            return Err(AccessError::AllowsNoOne {
                rule: number,
                label,
            });
        }
        if config.anonymous && (config.authenticated || names_someone) {
            return Err(AccessError::Redundant {
                rule: number,
                label,
                field: "anonymous",
            });
        }
        if config.authenticated && names_someone {
            return Err(AccessError::Redundant {
                rule: number,
                label,
                field: "authenticated",
            });
        }
        if let Some(user) = config.users.iter().find(|user| !is_principal(user)) {
            return Err(AccessError::InvalidUser {
                rule: number,
                label,
                user: user.clone(),
            });
        }
        if let Some(realm) = config
            .realms
            .iter()
            .find(|realm| realm.is_empty() || realm.contains('@'))
        {
            return Err(AccessError::InvalidRealm {
                rule: number,
                label,
                realm: realm.clone(),
            });
        }
        if let Some(group) = config
            .groups
            .iter()
            .find(|group| !groups.has_group(group) && !is_domain_group(group))
        {
            return Err(AccessError::UnknownGroup {
                rule: number,
                label,
                group: group.clone(),
            });
        }
        Ok(Self {
            number,
            label,
            segments,
            methods,
            operation: config.operation,
            deny: config.deny,
            anonymous: config.anonymous,
            authenticated: config.authenticated,
            users: config.users.into_iter().collect(),
            realms: config.realms.into_iter().collect(),
            groups: config.groups,
        })
    }

    /// How many of `operation` and `methods` the rule sets.
    fn constraints(&self) -> usize {
        usize::from(self.operation.is_some()) + usize::from(self.methods.is_some())
    }

    fn matches(&self, method: &Method, segments: &[Vec<u8>], operation: Operation) -> bool {
        segments.starts_with(&self.segments)
            && self.methods.as_ref().is_none_or(|m| m.contains(method))
            && self.operation.is_none_or(|o| o == operation)
    }

    fn admits(&self, principal: &str, groups: &Groups, domain_groups: &[DomainGroup]) -> bool {
        self.authenticated
            || self.users.contains(principal)
            || principal
                .rsplit_once('@')
                .is_some_and(|(_, realm)| self.realms.contains(realm))
            || self.groups.iter().any(|g| {
                groups.contains(g, principal)
                    || domain_groups.iter().any(|d| names_domain_group(g, d))
            })
    }

    fn decide(
        &self,
        principal: Option<&str>,
        groups: &Groups,
        domain_groups: &[DomainGroup],
    ) -> Decision {
        if self.deny {
            return Decision::Deny {
                reason: format!("denied by rule for {}", self.label),
            };
        }
        if self.anonymous {
            return Decision::Allow;
        }
        match principal {
            None => Decision::Authenticate,
            Some(principal) if self.admits(principal, groups, domain_groups) => Decision::Allow,
            Some(principal) => Decision::Deny {
                reason: format!(
                    "{} is not in users/realms/groups of rule for {}",
                    principal.escape_debug(),
                    self.label
                ),
            },
        }
    }
}

/// Whether `name` looks like `name@REALM`, with both parts non-empty.
fn is_principal(name: &str) -> bool {
    name.rsplit_once('@')
        .is_some_and(|(user, realm)| !user.is_empty() && !realm.is_empty())
}

/// The gate's access rules and the groups they refer to, checked and ranked; see the
/// [module documentation](self) for how a request is judged.
#[derive(Debug, Clone)]
pub struct AccessRules {
    /// Most specific first.
    rules: Vec<Rule>,
    groups: Groups,
}

impl AccessRules {
    /// Checks the rules against each other and against `groups`, and ranks them.
    ///
    /// Errors name the first mistake: a path that does not start with `/` or has a `.` or
    /// `..` segment, an empty `methods`, a method not in upper case, a rule that allows no
    /// one, a deny rule that also names whom to allow, `anonymous`/`authenticated` beside
    /// narrower fields, a user without `@REALM`, a bad realm, a group the file does not
    /// define, two rules that match the same requests. No rules at all is valid and denies
    /// every request; see [`allow_all_authenticated`](Self::allow_all_authenticated) for the
    /// default of a gate with no rules configured.
    pub fn new(rules: Vec<AccessRule>, groups: Groups) -> Result<Self, AccessError> {
        let mut compiled: Vec<Rule> = Vec::with_capacity(rules.len());
        for (index, config) in rules.into_iter().enumerate() {
            let rule = Rule::compile(index + 1, config, &groups)?;
            if let Some(first) = compiled.iter().find(|other| {
                other.segments == rule.segments
                    && other.methods == rule.methods
                    && other.operation == rule.operation
            }) {
                return Err(AccessError::DuplicateRule {
                    first: first.number,
                    rule: rule.number,
                    label: rule.label,
                });
            }
            compiled.push(rule);
        }
        compiled.sort_by_key(|rule| {
            (
                std::cmp::Reverse(rule.segments.len()),
                std::cmp::Reverse(rule.constraints()),
                !rule.deny,
                rule.number,
            )
        });
        Ok(Self {
            rules: compiled,
            groups,
        })
    }

    /// The rules of a gate configured with none: every authenticated principal may do
    /// anything, and an anonymous request is asked to authenticate.
    pub fn allow_all_authenticated() -> Self {
        Self {
            rules: vec![Rule {
                number: 1,
                label: "/".to_owned(),
                segments: Vec::new(),
                methods: None,
                operation: None,
                deny: false,
                anonymous: false,
                authenticated: true,
                users: BTreeSet::new(),
                realms: BTreeSet::new(),
                groups: Vec::new(),
            }],
            groups: Groups::new(),
        }
    }

    /// The groups the rules refer to.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Judges one request. `path` is the request's canonical path (see
    /// [`CanonicalPath`]; the gate's edge makes it so), still percent-encoded, `query` the raw query (`uri.query()`), and `principal` the
    /// authenticated client, if any, as GSSAPI names it (`alice@EXAMPLE.TEST`).
    ///
    /// Never panics, whatever the path and query.
    pub fn decide(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        principal: Option<&str>,
    ) -> Decision {
        self.decide_for(method, path, query, principal, &[])
    }

    /// [`decide`](Self::decide) for a principal who is also in the Active Directory groups
    /// `domain_groups` (from the PAC of their ticket), which a rule names as
    /// `DOMAIN\name` or by SID (see [`is_domain_group`]).
    pub fn decide_for(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        principal: Option<&str>,
        domain_groups: &[DomainGroup],
    ) -> Decision {
        let segments = match segments(path) {
            Ok(segments) => segments,
            Err(problem) => {
                return Decision::Deny {
                    reason: format!("request path \"{}\" {problem}", path.escape_debug()),
                }
            }
        };
        let operation = classify(method, path, query);
        let rule = self
            .rules
            .iter()
            .find(|rule| rule.matches(method, &segments, operation));
        match (rule, principal) {
            (Some(rule), _) => rule.decide(principal, &self.groups, domain_groups),
            (None, None) => Decision::Authenticate,
            (None, Some(principal)) => Decision::Deny {
                reason: format!(
                    "no access rule matches {} {} ({operation}) for {}",
                    method.as_str().escape_debug(),
                    display_segments(&segments),
                    principal.escape_debug()
                ),
            },
        }
    }

    /// Whether the request needs a principal before it can be let through: `false` exactly
    /// when [`decide`](Self::decide) allows it anonymously, so the gate can skip the `401`
    /// for anonymous-read mounts.
    ///
    /// A request that will be denied whoever sends it also answers `true`, so a gate that
    /// only forwards when this is `false` can never forward a denied request.
    pub fn needs_authentication(&self, method: &Method, path: &str, query: Option<&str>) -> bool {
        self.decide(method, path, query, None) != Decision::Allow
    }
}

#[cfg(test)]
mod tests;
