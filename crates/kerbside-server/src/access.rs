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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use http::Method;
use kerbside_proto::request_path::CanonicalPath;
use percent_encoding::percent_decode;
use serde::Deserialize;

/// What a request does: read, or change the repository (push).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Everything that is not a push: browsing, cloning, pulling, fetching.
    Read,
    /// A write: a Mercurial `unbundle` or `pushkey`, a git `receive-pack`, or a method that
    /// changes what is stored (`PUT`, `DELETE`, WebDAV's `MKCOL`, …).
    Push,
}

impl Operation {
    /// The name used in the configuration: `read` or `push`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Push => "push",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mercurial wire-protocol commands that need hgweb's `push` permission.
const HG_PUSH_COMMANDS: [&[u8]; 2] = [b"unbundle", b"pushkey"];

/// Tells a push from a read, by the shape of the request alone (never its body or headers).
///
/// A request is a [`Push`](Operation::Push) when any of these hold, and a
/// [`Read`](Operation::Read) otherwise:
///
/// - **Mercurial**: the query has `cmd=unbundle` or `cmd=pushkey` (hg's HTTP wire protocol
///   names the command in the query string), in any method; or `cmd=batch` in a `POST`,
///   because a batch may carry `pushkey` in `X-HgArg-*` headers or the body, which are not
///   looked at here, and hgweb refuses push commands in a batch sent with `GET` anyway (a
///   `cmds=` in the query that names `pushkey` or `unbundle` is a push with any method).
///   Clients send batches with `GET`, so anonymous pulls keep working, unless the server
///   enabled the experimental `httppostargs`, in which case pulls need push rights.
/// - **git**: a path segment is `git-receive-pack` (`POST …/git-receive-pack`), or the
///   query has `service=git-receive-pack` (`GET …/info/refs?service=git-receive-pack`).
/// - **Any app**: the method is not one that only reads, that is, it is none of `GET`,
///   `HEAD`, `OPTIONS`, `TRACE`, `POST`, `PROPFIND`, `REPORT` and `SEARCH`. So `PUT`,
///   `DELETE`, `PATCH`, WebDAV's `MKCOL`, `COPY`, `MOVE`, `LOCK`, `UNLOCK`, `PROPPATCH` (git's
///   old dumb-HTTP push) and any extension method are pushes. `POST` to other apps is a read:
///   restrict it with `methods` if it writes.
///
/// The query is parsed both as `&`-separated and as `&`- or `;`-separated (Python's
/// `parse_qsl` did the latter before 3.9.2), keys and values are form-decoded (`+` and
/// `%XX`), a command that appears twice counts if either is a push, and values compare
/// ignoring ASCII case: every doubt counts as a push.
///
/// ```
/// use http::Method;
/// use kerbside_server::access::{classify, Operation};
///
/// assert_eq!(classify(&Method::GET, "/hg/repo", Some("cmd=capabilities")), Operation::Read);
/// assert_eq!(classify(&Method::POST, "/hg/repo", Some("cmd=unbundle")), Operation::Push);
/// assert_eq!(
///     classify(&Method::GET, "/git/r.git/info/refs", Some("service=git-receive-pack")),
///     Operation::Push
/// );
/// assert_eq!(classify(&Method::POST, "/git/r.git/git-upload-pack", None), Operation::Read);
/// ```
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Operation {
    if method_writes(method)
        || path_is_receive_pack(path)
        || query.is_some_and(|q| query_is_push(method, q))
    {
        Operation::Push
    } else {
        Operation::Read
    }
}

fn method_writes(method: &Method) -> bool {
    let reads = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::POST,
    ];
    !reads.contains(method) && !matches!(method.as_str(), "PROPFIND" | "REPORT" | "SEARCH")
}

fn path_is_receive_pack(path: &str) -> bool {
    path.split('/').any(|raw| {
        let decoded: Cow<'_, [u8]> = percent_decode(raw.as_bytes()).into();
        decoded
            .split(|&b| b == b'/' || b == b'\\')
            .any(|piece| piece.eq_ignore_ascii_case(b"git-receive-pack"))
    })
}

fn query_is_push(method: &Method, query: &str) -> bool {
    let params = query_params(query, b"&").chain(query_params(query, b"&;"));
    for (key, value) in params {
        let push = match key.as_slice() {
            b"cmd" => {
                is_hg_push_command(&value)
                    || (*method == Method::POST && value.eq_ignore_ascii_case(b"batch"))
            }
            b"cmds" => value.split(|&b| b == b';').any(|op| {
                let op = op.trim_ascii_start();
                let name = op.split(|&b| b == b' ').next().unwrap_or_default();
                is_hg_push_command(name)
            }),
            b"service" => value.eq_ignore_ascii_case(b"git-receive-pack"),
            _ => false,
        };
        if push {
            return true;
        }
    }
    false
}

fn is_hg_push_command(command: &[u8]) -> bool {
    HG_PUSH_COMMANDS
        .iter()
        .any(|push| command.trim_ascii().eq_ignore_ascii_case(push))
}

/// The query's `key=value` pairs, split on any of `separators`, each side form-decoded.
fn query_params<'q>(
    query: &'q str,
    separators: &'static [u8],
) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + 'q {
    query
        .as_bytes()
        .split(move |b| separators.contains(b))
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => {
                let (key, value) = pair.split_at(at);
                (
                    form_decode(key),
                    form_decode(value.get(1..).unwrap_or_default()),
                )
            }
            None => (form_decode(pair), Vec::new()),
        })
}

fn form_decode(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

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
/// groups = ["developers"]         # members of these groups of the groups file
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
    /// Allow members of these groups of the [`Groups`] file.
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
        if let Some(group) = config.groups.iter().find(|group| !groups.has_group(group)) {
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

    fn admits(&self, principal: &str, groups: &Groups) -> bool {
        self.authenticated
            || self.users.contains(principal)
            || principal
                .rsplit_once('@')
                .is_some_and(|(_, realm)| self.realms.contains(realm))
            || self.groups.iter().any(|g| groups.contains(g, principal))
    }

    fn decide(&self, principal: Option<&str>, groups: &Groups) -> Decision {
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
            Some(principal) if self.admits(principal, groups) => Decision::Allow,
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
            (Some(rule), _) => rule.decide(principal, &self.groups),
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

/// A groups file: named lists of principals that [`AccessRule::groups`] refers to.
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

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        access: Vec<AccessRule>,
    }

    fn rules_from(toml_text: &str, groups: &str) -> Result<AccessRules, AccessError> {
        let config: Config = toml::from_str(toml_text).expect("test config parses");
        AccessRules::new(
            config.access,
            Groups::parse(groups).expect("test groups parse"),
        )
    }

    fn rules(toml_text: &str, groups: &str) -> AccessRules {
        rules_from(toml_text, groups).expect("test rules are valid")
    }

    fn method(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).expect("test method")
    }

    /// `"POST /hg/repo?cmd=unbundle"` split into its parts.
    fn request(line: &str) -> (Method, String, Option<String>) {
        let (m, target) = line.split_once(' ').expect("method and target");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (target, None),
        };
        (method(m), path.to_owned(), query)
    }

    /// The path as the gate's edge passes it on: canonical, or as received when it has no
    /// canonical form (the gate answers 400 then; the rules must deny it too).
    fn at_the_edge(path: &str) -> String {
        CanonicalPath::parse(path).map_or_else(|_| path.to_owned(), |p| p.to_string())
    }

    /// Judges a request line as the gate does: path made canonical at the edge first.
    fn decide(rules: &AccessRules, line: &str, principal: Option<&str>) -> Decision {
        let (m, path, query) = request(line);
        rules.decide(&m, &at_the_edge(&path), query.as_deref(), principal)
    }

    fn op(line: &str) -> Operation {
        let (m, path, query) = request(line);
        classify(&m, &path, query.as_deref())
    }

    fn deny_reason(decision: Decision) -> String {
        match decision {
            Decision::Deny { reason } => reason,
            other => panic!("expected Deny, got {other:?}"),
        }
    }

    const ANON_READ_AUTH_PUSH: &str = r#"
        [[access]]
        path = "/hg/"
        anonymous = true

        [[access]]
        path = "/hg/"
        operation = "push"
        groups = ["developers"]

        [[access]]
        path = "/git/"
        anonymous = true

        [[access]]
        path = "/git/"
        operation = "push"
        realms = ["EXAMPLE.TEST"]
    "#;

    const GROUPS: &str = "developers: alice@EXAMPLE.TEST, bob@EXAMPLE.TEST\n";

    // ---- classification on real request shapes ----

    #[test]
    fn mercurial_reads() {
        for line in [
            "GET /hg/repo?cmd=capabilities",
            "GET /hg/repo?cmd=listkeys&namespace=phases",
            "GET /hg/repo?cmd=listkeys&namespace=bookmarks",
            "GET /hg/repo?cmd=heads",
            "GET /hg/repo?cmd=batch&cmds=heads+%3Bknown+nodes%3D",
            "GET /hg/repo?cmd=getbundle",
            "GET /hg/repo?cmd=lookup&key=tip",
            "GET /hg/repo/log/tip",
            "GET /hg/repo/file/tip/unbundle.txt?style=raw",
            "HEAD /hg/repo",
        ] {
            assert_eq!(op(line), Operation::Read, "{line}");
        }
    }

    #[test]
    fn mercurial_pushes() {
        for line in [
            "POST /hg/repo?cmd=unbundle&heads=686173686564",
            "POST /hg/repo?cmd=pushkey&namespace=bookmarks&key=main&old=&new=abc",
            "POST /hg/repo?cmd=pushkey&namespace=phases&key=abc&old=1&new=0",
            // the method does not save a push command
            "GET /hg/repo?cmd=unbundle",
            // the command may come second, be encoded, be repeated or use `;`
            "POST /hg/repo?heads=686173686564&cmd=unbundle",
            "POST /hg/repo?c%6Dd=unbund%6Ce",
            "POST /hg/repo?cmd=capabilities&cmd=unbundle",
            "POST /hg/repo?cmd=capabilities;cmd=pushkey",
            "POST /hg/repo?cmd=UNBUNDLE",
            // a POSTed batch may carry pushkey in headers or body
            "POST /hg/repo?cmd=batch",
            // a batch that names pushkey in the query, whatever the method
            "GET /hg/repo?cmd=batch&cmds=heads+%3Bpushkey+namespace%3Dbookmarks",
            "GET /hg/repo?cmd=batch&cmds=heads ;pushkey namespace=bookmarks",
        ] {
            assert_eq!(op(line), Operation::Push, "{line}");
        }
    }

    #[test]
    fn git_reads() {
        for line in [
            "GET /git/repo.git/info/refs?service=git-upload-pack",
            "POST /git/repo.git/git-upload-pack",
            "GET /git/repo.git/info/refs",
            "GET /git/repo.git/HEAD",
            "GET /git/repo.git/objects/ab/cdef0123",
        ] {
            assert_eq!(op(line), Operation::Read, "{line}");
        }
    }

    #[test]
    fn git_pushes() {
        for line in [
            "GET /git/repo.git/info/refs?service=git-receive-pack",
            "POST /git/repo.git/git-receive-pack",
            "POST /git/repo.git/git-receive-pack/",
            "POST /git/repo.git/git%2Dreceive%2Dpack",
            "POST /git/repo.git/GIT-RECEIVE-PACK",
            "GET /git/repo.git/info/refs?service=git-upload-pack&service=git-receive-pack",
            // dumb-HTTP push over WebDAV
            "PUT /git/repo.git/objects/ab/cdef0123",
            "MKCOL /git/repo.git/objects/ab/",
            "MOVE /git/repo.git/refs/heads/main.lock",
            "LOCK /git/repo.git/info/refs",
            "PROPPATCH /git/repo.git/",
        ] {
            assert_eq!(op(line), Operation::Push, "{line}");
        }
    }

    #[test]
    fn methods_that_write_are_pushes_for_any_app() {
        for name in [
            "PUT",
            "DELETE",
            "PATCH",
            "COPY",
            "UNLOCK",
            "CONNECT",
            "FROBNICATE",
        ] {
            assert_eq!(op(&format!("{name} /app/x")), Operation::Push, "{name}");
        }
        for name in [
            "GET", "HEAD", "OPTIONS", "TRACE", "POST", "PROPFIND", "REPORT", "SEARCH",
        ] {
            assert_eq!(op(&format!("{name} /app/x")), Operation::Read, "{name}");
        }
    }

    // ---- decisions ----

    #[test]
    fn anonymous_read_authenticated_push() {
        let rules = rules(ANON_READ_AUTH_PUSH, GROUPS);
        for line in [
            "GET /hg/repo?cmd=capabilities",
            "GET /hg/repo?cmd=listkeys&namespace=phases",
            "GET /git/repo.git/info/refs?service=git-upload-pack",
            "POST /git/repo.git/git-upload-pack",
        ] {
            assert_eq!(decide(&rules, line, None), Decision::Allow, "{line}");
            let (m, path, query) = request(line);
            assert!(!rules.needs_authentication(&m, &path, query.as_deref()));
        }
        for line in [
            "POST /hg/repo?cmd=unbundle&heads=686173686564",
            "POST /hg/repo?cmd=pushkey&namespace=phases",
            "GET /git/repo.git/info/refs?service=git-receive-pack",
            "POST /git/repo.git/git-receive-pack",
        ] {
            assert_eq!(decide(&rules, line, None), Decision::Authenticate, "{line}");
            let (m, path, query) = request(line);
            assert!(rules.needs_authentication(&m, &path, query.as_deref()));
        }
        assert_eq!(
            decide(
                &rules,
                "POST /hg/repo?cmd=unbundle",
                Some("alice@EXAMPLE.TEST")
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &rules,
                "POST /git/repo.git/git-receive-pack",
                Some("carol@EXAMPLE.TEST")
            ),
            Decision::Allow
        );
    }

    #[test]
    fn user_not_in_group_is_denied_with_a_reason() {
        let rules = rules(ANON_READ_AUTH_PUSH, GROUPS);
        let reason = deny_reason(decide(
            &rules,
            "POST /hg/repo?cmd=unbundle",
            Some("mallory@EXAMPLE.TEST"),
        ));
        assert_eq!(
            reason,
            "mallory@EXAMPLE.TEST is not in users/realms/groups of rule for /hg/ push"
        );
    }

    #[test]
    fn realm_allows_any_principal_of_that_realm_only() {
        let rules = rules(
            r#"
            [[access]]
            realms = ["EXAMPLE.TEST"]
            "#,
            "",
        );
        assert_eq!(
            decide(&rules, "GET /x", Some("anyone@EXAMPLE.TEST")),
            Decision::Allow
        );
        assert_eq!(
            decide(&rules, "GET /x", Some("host/www.example.test@EXAMPLE.TEST")),
            Decision::Allow
        );
        // the realm is after the last @, and compared case-sensitively
        assert_eq!(
            decide(&rules, "GET /x", Some("a@EXAMPLE.TEST@EVIL.TEST")),
            Decision::Deny {
                reason: "a@EXAMPLE.TEST@EVIL.TEST is not in users/realms/groups of rule for /"
                    .to_owned()
            }
        );
        assert!(matches!(
            decide(&rules, "GET /x", Some("alice@example.test")),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            decide(&rules, "GET /x", Some("EXAMPLE.TEST")),
            Decision::Deny { .. }
        ));
        assert_eq!(decide(&rules, "GET /x", None), Decision::Authenticate);
    }

    #[test]
    fn users_are_exact() {
        let rules = rules(
            r#"
            [[access]]
            users = ["alice@EXAMPLE.TEST"]
            "#,
            "",
        );
        assert_eq!(
            decide(&rules, "GET /", Some("alice@EXAMPLE.TEST")),
            Decision::Allow
        );
        for other in ["Alice@EXAMPLE.TEST", "alice@EXAMPLE.TES", "alice", ""] {
            assert!(
                matches!(decide(&rules, "GET /", Some(other)), Decision::Deny { .. }),
                "{other}"
            );
        }
    }

    #[test]
    fn explicit_deny_beats_broader_allow() {
        let rules = rules(
            r#"
            [[access]]
            path = "/"
            anonymous = true

            [[access]]
            path = "/hg/secret/"
            deny = true
            "#,
            "",
        );
        assert_eq!(decide(&rules, "GET /hg/public", None), Decision::Allow);
        assert_eq!(
            decide(&rules, "GET /hg/secret/file", Some("alice@EXAMPLE.TEST")),
            Decision::Deny {
                reason: "denied by rule for /hg/secret/".to_owned()
            }
        );
        assert!(matches!(
            decide(&rules, "GET /hg/secret", None),
            Decision::Deny { .. }
        ));
        // denied whoever asks, yet a gate that forwards only on `false` stays safe
        assert!(rules.needs_authentication(&Method::GET, "/hg/secret", None));
    }

    #[test]
    fn deny_wins_a_tie_wherever_it_is_written() {
        for config in [
            "[[access]]\npath = \"/a/\"\noperation = \"push\"\nauthenticated = true\n\
             [[access]]\npath = \"/a/\"\nmethods = [\"POST\"]\ndeny = true\n",
            "[[access]]\npath = \"/a/\"\nmethods = [\"POST\"]\ndeny = true\n\
             [[access]]\npath = \"/a/\"\noperation = \"push\"\nauthenticated = true\n",
        ] {
            let rules = rules(config, "");
            assert!(matches!(
                decide(&rules, "POST /a/r?cmd=unbundle", Some("alice@EXAMPLE.TEST")),
                Decision::Deny { .. }
            ));
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let rules = rules(
            r#"
            [[access]]
            path = "/"
            users = ["root@EXAMPLE.TEST"]

            [[access]]
            path = "/projects"
            users = ["alice@EXAMPLE.TEST"]

            [[access]]
            path = "/projects/public/"
            anonymous = true
            "#,
            "",
        );
        assert_eq!(
            decide(&rules, "GET /projects/public/x", None),
            Decision::Allow
        );
        assert_eq!(
            decide(&rules, "GET /projects/public", None),
            Decision::Allow
        );
        assert_eq!(
            decide(&rules, "GET /projects/x", None),
            Decision::Authenticate
        );
        assert_eq!(
            decide(&rules, "GET /projects/x", Some("alice@EXAMPLE.TEST")),
            Decision::Allow
        );
        assert!(matches!(
            decide(&rules, "GET /projects/x", Some("root@EXAMPLE.TEST")),
            Decision::Deny { .. }
        ));
        // whole segments: /projectsx is not under /projects
        assert!(matches!(
            decide(&rules, "GET /projectsx", Some("alice@EXAMPLE.TEST")),
            Decision::Deny { .. }
        ));
        assert_eq!(
            decide(&rules, "GET /projectsx", Some("root@EXAMPLE.TEST")),
            Decision::Allow
        );
    }

    #[test]
    fn operation_and_methods_beat_a_plain_rule_on_the_same_path() {
        let rules = rules(
            r#"
            [[access]]
            path = "/app/"
            methods = ["GET", "HEAD"]
            anonymous = true

            [[access]]
            path = "/app/"
            users = ["alice@EXAMPLE.TEST"]
            "#,
            "",
        );
        assert_eq!(decide(&rules, "GET /app/x", None), Decision::Allow);
        assert_eq!(decide(&rules, "HEAD /app/x", None), Decision::Allow);
        assert_eq!(decide(&rules, "POST /app/x", None), Decision::Authenticate);
        assert_eq!(
            decide(&rules, "OPTIONS /app/x", None),
            Decision::Authenticate
        );
    }

    #[test]
    fn no_matching_rule_is_refused() {
        let rules = rules(
            r#"
            [[access]]
            path = "/hg/"
            anonymous = true
            "#,
            "",
        );
        assert_eq!(decide(&rules, "GET /other", None), Decision::Authenticate);
        let reason = deny_reason(decide(&rules, "GET /other/x", Some("alice@EXAMPLE.TEST")));
        assert_eq!(
            reason,
            "no access rule matches GET /other/x (read) for alice@EXAMPLE.TEST"
        );
        let none = AccessRules::new(Vec::new(), Groups::new()).expect("no rules is valid");
        assert_eq!(decide(&none, "GET /", None), Decision::Authenticate);
        assert!(matches!(
            decide(&none, "GET /", Some("alice@EXAMPLE.TEST")),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn allow_all_authenticated_is_the_default() {
        let rules = AccessRules::allow_all_authenticated();
        for line in ["GET /", "POST /hg/r?cmd=unbundle", "DELETE /x"] {
            assert_eq!(decide(&rules, line, None), Decision::Authenticate);
            assert_eq!(decide(&rules, line, Some("x@ANY.TEST")), Decision::Allow);
        }
        assert!(matches!(
            decide(&rules, "GET /../x", Some("x@ANY.TEST")),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn authenticated_rule_in_config() {
        let rules = rules(
            r#"
            [[access]]
            path = "/hg/"
            operation = "read"
            authenticated = true
            "#,
            "",
        );
        assert_eq!(
            decide(&rules, "GET /hg/r", Some("x@ANY.TEST")),
            Decision::Allow
        );
        assert!(matches!(
            decide(&rules, "POST /hg/r?cmd=unbundle", Some("x@ANY.TEST")),
            Decision::Deny { .. }
        ));
    }

    // ---- path normalisation ----

    fn private_and_public() -> AccessRules {
        rules(
            r#"
            [[access]]
            path = "/public/"
            anonymous = true

            [[access]]
            path = "/hg/"
            anonymous = true

            [[access]]
            path = "/secret/"
            users = ["alice@EXAMPLE.TEST"]

            [[access]]
            path = "/hg/private/"
            users = ["alice@EXAMPLE.TEST"]
            "#,
            "",
        )
    }

    #[test]
    fn dot_dot_is_resolved_before_matching() {
        let rules = private_and_public();
        for line in [
            "GET /public/../secret/x",
            "GET /hg/../secret",
            "GET /public/%2e%2e/secret/x",
            "GET /public/%2E%2E/secret/x",
            "GET /public/.%2e/secret/x",
            "GET /hg/./private/x",
            "GET /hg/%2e/private/x",
            "GET /hg//private/x",
            "GET //hg/private/x",
            "GET /hg/a/b/../../private/x",
        ] {
            assert_eq!(decide(&rules, line, None), Decision::Authenticate, "{line}");
        }
        assert_eq!(
            decide(&rules, "GET /secret/../public/x", None),
            Decision::Allow
        );
        assert_eq!(
            decide(&rules, "GET /hg/private/../repo", None),
            Decision::Allow
        );
        // percent-decoding happens once: %252e%252e is the segment "%2e%2e", not ".."
        assert_eq!(
            decide(&rules, "GET /public/%252e%252e/secret", None),
            Decision::Allow
        );
        // an encoded segment name matches its decoded rule path
        assert_eq!(
            decide(&rules, "GET /%73ecret/x", None),
            Decision::Authenticate
        );
    }

    #[test]
    fn suspicious_paths_are_denied_outright() {
        let rules = AccessRules::allow_all_authenticated();
        for (line, expected) in [
            ("GET /..", "request path \"/..\" climbs above / with .."),
            (
                "GET /../etc/passwd",
                "request path \"/../etc/passwd\" climbs above / with ..",
            ),
            (
                "GET /a/../../b",
                "request path \"/a/../../b\" climbs above / with ..",
            ),
            (
                "GET /%2e%2e/b",
                "request path \"/%2e%2e/b\" climbs above / with ..",
            ),
            (
                "GET /public%2F..%2Fsecret",
                "request path \"/public%2F..%2Fsecret\" has an encoded slash (%2F)",
            ),
            (
                "GET /a%2fb",
                "request path \"/a%2fb\" has an encoded slash (%2F)",
            ),
            (
                "GET /a%5C..%5Cb",
                "request path \"/a%5C..%5Cb\" has a backslash (\\ or %5C)",
            ),
            (
                "GET /a\\..\\b",
                "request path \"/a\\\\..\\\\b\" has a backslash (\\ or %5C)",
            ),
            (
                "GET /a%00.txt",
                "request path \"/a%00.txt\" has a control character (such as %00 or %0A)",
            ),
            (
                "OPTIONS *",
                "request path \"*\" is the asterisk form (OPTIONS *), which the gate does not serve",
            ),
            (
                "GET /public/..;/secret",
                "request path \"/public/..;/secret\" has a ; (path parameters, which some servers strip before matching)",
            ),
        ] {
            assert_eq!(
                decide(&rules, line, Some("alice@EXAMPLE.TEST")),
                Decision::Deny {
                    reason: expected.to_owned()
                },
                "{line}"
            );
        }
    }

    #[test]
    fn empty_and_malformed_paths_are_denied() {
        let rules = private_and_public();
        for path in ["", "/public/%zz/%", "/public/%4"] {
            assert!(
                matches!(
                    rules.decide(&Method::GET, path, None, None),
                    Decision::Deny { .. }
                ),
                "{path:?}"
            );
        }
        assert_eq!(
            decide(&rules, "GET /public/%e2%28%a1", None),
            Decision::Allow
        );
    }

    #[test]
    fn rule_paths_are_read_as_request_paths_are() {
        let rules = rules(
            r#"
            [[access]]
            path = "/"
            anonymous = true

            [[access]]
            path = "/admin%20area"
            deny = true

            [[access]]
            path = "/café//%78"
            deny = true
            "#,
            "",
        );
        for line in [
            "GET /admin%20area/x",
            "GET /admin area/x",
            "GET /%61dmin%20area",
            "GET /caf%C3%A9/x/y",
            "GET /caf%c3%a9/%78",
        ] {
            assert!(
                matches!(decide(&rules, line, None), Decision::Deny { .. }),
                "{line}"
            );
        }
        assert_eq!(decide(&rules, "GET /admin/x", None), Decision::Allow);
        for path in ["/a%2Fb", "/a;b", "/a\\b", "/a%00"] {
            let error = rules_from(
                &format!("[[access]]\npath = {path:?}\nanonymous = true"),
                "",
            )
            .unwrap_err();
            assert!(
                matches!(error, AccessError::InvalidPath { rule: 1, .. }),
                "{path}: {error}"
            );
        }
    }

    #[test]
    fn non_canonical_paths_are_denied_not_read_a_second_way() {
        let rules = private_and_public();
        for (path, canonical) in [
            ("/secret/../public/x", "/public/x"),
            ("/public//x", "/public/x"),
            ("/%70ublic/x", "/public/x"),
            ("/public/caf%c3%a9", "/public/caf%C3%A9"),
        ] {
            assert_eq!(
                rules.decide(&Method::GET, path, None, None),
                Decision::Deny {
                    reason: format!(
                        "request path \"{path}\" is not in canonical form (it would be \"{canonical}\")"
                    )
                }
            );
            assert_eq!(
                rules.decide(&Method::GET, canonical, None, None),
                Decision::Allow
            );
        }
    }

    // ---- configuration errors ----

    #[test]
    fn configuration_errors() {
        let cases: &[(&str, AccessError)] = &[
            (
                "[[access]]\npath = \"hg/\"\nanonymous = true",
                AccessError::PathNotAbsolute {
                    rule: 1,
                    path: "hg/".into(),
                },
            ),
            (
                "[[access]]\npath = \"/hg/../x\"\nanonymous = true",
                AccessError::PathHasDotSegment {
                    rule: 1,
                    path: "/hg/../x".into(),
                },
            ),
            (
                "[[access]]\npath = \"/hg/\"",
                AccessError::AllowsNoOne {
                    rule: 1,
                    label: "/hg/".into(),
                },
            ),
            (
                "[[access]]\nanonymous = true\n[[access]]\nmethods = [\"get\"]\nanonymous = true",
                AccessError::InvalidMethod {
                    rule: 2,
                    label: "/ get".into(),
                    method: "get".into(),
                },
            ),
            (
                "[[access]]\nmethods = [\"GE T\"]\nanonymous = true",
                AccessError::InvalidMethod {
                    rule: 1,
                    label: "/ GE T".into(),
                    method: "GE T".into(),
                },
            ),
            (
                "[[access]]\nmethods = []\nanonymous = true",
                AccessError::EmptyMethods {
                    rule: 1,
                    label: "/".into(),
                },
            ),
            (
                "[[access]]\ndeny = true\nusers = [\"mallory@EXAMPLE.TEST\"]",
                AccessError::DenyWithAllowed {
                    rule: 1,
                    label: "/".into(),
                },
            ),
            (
                "[[access]]\nanonymous = true\nusers = [\"alice@EXAMPLE.TEST\"]",
                AccessError::Redundant {
                    rule: 1,
                    label: "/".into(),
                    field: "anonymous",
                },
            ),
            (
                "[[access]]\nauthenticated = true\nrealms = [\"EXAMPLE.TEST\"]",
                AccessError::Redundant {
                    rule: 1,
                    label: "/".into(),
                    field: "authenticated",
                },
            ),
            (
                "[[access]]\nusers = [\"alice\"]",
                AccessError::InvalidUser {
                    rule: 1,
                    label: "/".into(),
                    user: "alice".into(),
                },
            ),
            (
                "[[access]]\nrealms = [\"@EXAMPLE.TEST\"]",
                AccessError::InvalidRealm {
                    rule: 1,
                    label: "/".into(),
                    realm: "@EXAMPLE.TEST".into(),
                },
            ),
            (
                "[[access]]\ngroups = [\"developers\", \"devs\"]",
                AccessError::UnknownGroup {
                    rule: 1,
                    label: "/".into(),
                    group: "devs".into(),
                },
            ),
            (
                "[[access]]\npath = \"/hg\"\noperation = \"push\"\nanonymous = true\n\
                 [[access]]\npath = \"/hg/\"\noperation = \"push\"\ndeny = true",
                AccessError::DuplicateRule {
                    first: 1,
                    rule: 2,
                    label: "/hg/ push".into(),
                },
            ),
        ];
        for (config, expected) in cases {
            let error = rules_from(config, GROUPS).expect_err(config);
            assert_eq!(&error, expected, "{config}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = toml::from_str::<Config>("[[access]]\npath = \"/\"\nanonymus = true\n")
            .err()
            .expect("a typo is an error");
        assert!(error.to_string().contains("anonymus"), "{error}");
        let error = toml::from_str::<Config>("[[access]]\noperation = \"write\"\n")
            .err()
            .expect("an unknown operation is an error");
        assert!(error.to_string().contains("write"), "{error}");
    }

    #[test]
    fn error_messages_read_well() {
        let error = rules_from("[[access]]\npath = \"/hg/\"\noperation = \"push\"", "")
            .expect_err("allows no one");
        assert_eq!(
            error.to_string(),
            "access rule 1 (/hg/ push) allows no one: set anonymous, authenticated, users, \
             realms or groups (or deny = true)"
        );
    }

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

    // ---- properties ----

    const METHODS: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND",
    ];
    const QUERIES: &[Option<&str>] = &[
        None,
        Some("cmd=capabilities"),
        Some("cmd=unbundle&heads=00"),
        Some("cmd=pushkey"),
        Some("cmd=batch"),
        Some("service=git-receive-pack"),
        Some("service=git-upload-pack"),
    ];
    const PRINCIPALS: &[Option<&str>] = &[
        None,
        Some("alice@EXAMPLE.TEST"),
        Some("bob@EXAMPLE.TEST"),
        Some("carol@OTHER.TEST"),
    ];

    fn sample_rules() -> AccessRules {
        rules(
            r#"
            [[access]]
            path = "/"
            realms = ["EXAMPLE.TEST"]

            [[access]]
            path = "/a/"
            anonymous = true

            [[access]]
            path = "/a/"
            operation = "push"
            groups = ["developers"]

            [[access]]
            path = "/a/b/"
            deny = true

            [[access]]
            path = "/c"
            methods = ["GET", "HEAD"]
            anonymous = true

            [[access]]
            path = "/c/d/"
            users = ["carol@OTHER.TEST"]
            "#,
            "developers: alice@EXAMPLE.TEST",
        )
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("c".to_owned()),
            Just("d".to_owned()),
            "[a-e]{1,4}",
        ]
    }

    /// A path in normal form and a variant of it with `./`, `//` and `x/../` thrown in.
    fn path_and_variant() -> impl Strategy<Value = (String, String)> {
        (
            prop::collection::vec(segment(), 0..6),
            prop::collection::vec((0u8..4, "[a-z]{1,3}"), 6),
            any::<bool>(),
        )
            .prop_map(|(segments, noise, trailing_slash)| {
                let mut normal = String::new();
                let mut variant = String::new();
                for (index, segment) in segments.iter().enumerate() {
                    let (kind, detour) = &noise[index % noise.len()];
                    match kind {
                        0 => variant.push_str("/."),
                        1 => variant.push('/'),
                        2 => variant.push_str(&format!("/{detour}/..")),
                        _ => variant.push_str("/%2e"),
                    }
                    normal.push('/');
                    normal.push_str(segment);
                    variant.push('/');
                    variant.push_str(segment);
                }
                if normal.is_empty() {
                    normal.push('/');
                }
                if trailing_slash || variant.is_empty() {
                    variant.push_str("/./");
                }
                (normal, variant)
            })
    }

    fn percent_encode_all(path: &str) -> String {
        path.split('/')
            .map(|segment| {
                segment
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    proptest! {
        #[test]
        fn decide_never_panics(
            method in prop::sample::select(METHODS),
            path in any::<String>(),
            query in prop::option::of(any::<String>()),
            principal in prop::option::of(any::<String>()),
        ) {
            let rules = sample_rules();
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let _ = rules.decide(&method, &path, query.as_deref(), principal.as_deref());
            let _ = rules.needs_authentication(&method, &path, query.as_deref());
            let _ = classify(&method, &path, query.as_deref());
        }

        #[test]
        fn decide_never_panics_on_path_like_input(
            path in "[/.%2eEfF5cC0a/]{0,24}",
            query in "[=&;%+a-z0-9]{0,24}",
        ) {
            let rules = sample_rules();
            for principal in PRINCIPALS {
                let _ = rules.decide(&Method::POST, &path, Some(&query), *principal);
            }
        }

        #[test]
        fn dot_segments_do_not_change_the_decision(
            (normal, variant) in path_and_variant(),
            method in prop::sample::select(METHODS),
            query in prop::sample::select(QUERIES),
            principal in prop::sample::select(PRINCIPALS),
        ) {
            let rules = sample_rules();
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            prop_assert_eq!(
                rules.decide(&method, &at_the_edge(&variant), query, principal),
                rules.decide(&method, &normal, query, principal),
                "{} vs {}", variant, normal
            );
        }

        #[test]
        fn percent_encoding_does_not_change_the_decision(
            (normal, _) in path_and_variant(),
            method in prop::sample::select(METHODS),
            query in prop::sample::select(QUERIES),
            principal in prop::sample::select(PRINCIPALS),
        ) {
            let rules = sample_rules();
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let encoded = percent_encode_all(&normal);
            prop_assert_eq!(
                rules.decide(&method, &at_the_edge(&encoded), query, principal),
                rules.decide(&method, &normal, query, principal),
                "{}", encoded
            );
        }

        #[test]
        fn anonymous_requests_are_never_denied_for_the_principal(
            (normal, _) in path_and_variant(),
            method in prop::sample::select(METHODS),
            query in prop::sample::select(QUERIES),
        ) {
            // with no principal the answer is Allow, Authenticate or a rule's/path's deny,
            // never a "not in users" deny
            let rules = sample_rules();
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            if let Decision::Deny { reason } = rules.decide(&method, &normal, query, None) {
                prop_assert!(reason.starts_with("denied by rule for /a/b/"), "{}", reason);
            }
        }

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
