//! The rules engine's decisions, configuration errors and properties.

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
fn ad_groups_from_the_pac_need_no_groups_file() {
    let rules = rules(
        r#"
        [[access]]
        path = "/dev"
        groups = ["ADEXAMPLE\\developers"]

        [[access]]
        path = "/admins"
        groups = ["S-1-5-21-1-2-3-512"]
        "#,
        "",
    );
    let group = |sid: &str, name: Option<&str>| DomainGroup {
        sid: sid.to_owned(),
        name: name.map(str::to_owned),
    };
    let carol = [
        group("S-1-5-21-1-2-3-1106", Some("adexample\\DEVELOPERS")),
        group("S-1-5-21-1-2-3-512", None),
    ];
    let who = Some("carol@AD.EXAMPLE.TEST");
    let (get, path) = (method("GET"), "/dev/x");
    // A name matches without regard to case, as AD compares names.
    assert_eq!(
        rules.decide_for(&get, path, None, who, &carol),
        Decision::Allow
    );
    // A SID matches whether or not it has a name.
    assert_eq!(
        rules.decide_for(&get, "/admins", None, who, &carol),
        Decision::Allow
    );
    // A group without a name does not match a rule that names it.
    let unnamed = [group("S-1-5-21-1-2-3-1106", None)];
    assert!(matches!(
        rules.decide_for(&get, path, None, who, &unnamed),
        Decision::Deny { .. }
    ));
    // Nor does anyone without groups, or an anonymous client.
    assert!(matches!(
        rules.decide(&get, path, None, who),
        Decision::Deny { .. }
    ));
    assert_eq!(
        rules.decide_for(&get, path, None, None, &carol),
        Decision::Authenticate
    );
    // A plain name is still a group of the groups file, and must be in it.
    assert!(matches!(
        rules_from("[[access]]\npath = \"/\"\ngroups = [\"developers\"]\n", ""),
        Err(AccessError::UnknownGroup { .. })
    ));
    for entry in [
        "ADEXAMPLE\\developers",
        "S-1-5-21-1-2-3-512",
        "S-1-5-32-544",
    ] {
        assert!(is_domain_group(entry), "{entry}");
    }
    for entry in [
        "developers",
        "\\developers",
        "ADEXAMPLE\\",
        "S-1-5-x",
        "S-1-",
        "s-1-5-32-544",
    ] {
        assert!(!is_domain_group(entry), "{entry}");
    }
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
}
