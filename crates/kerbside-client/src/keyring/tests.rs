//! Tests of the keyring file parser, lookups and credential sources.

use super::*;
use proptest::prelude::*;

const EXAMPLE: &str = r#"
    [[credential]]
    host = "intranet.example.com"
    user = 'EXAMPLE\alice'
    password = "exact-secret"
    schemes = ["ntlm", "basic"]

    [[credential]]
    host = "*.example.com"
    user = "wild@EXAMPLE.COM"
    password = "wild-secret"

    [[credential]]
    host = "*.deep.example.com"
    user = "deep"
    password = "deep-secret"

    [[credential]]
    realm = "EXAMPLE.COM"
    user = "realm@EXAMPLE.COM"
    password = "realm-secret"
    schemes = ["negotiate"]
"#;

fn user_for(
    keyring: &Keyring,
    host: &str,
    realm: Option<&str>,
    scheme: SchemeKind,
) -> Option<String> {
    keyring
        .lookup(host, realm, scheme)
        .map(|credential| credential.user.clone())
}

fn detail(result: Result<Keyring, KeyringError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn parses_the_documented_example() {
    let keyring = Keyring::parse(EXAMPLE).unwrap();
    assert_eq!(keyring.len(), 4);
    let exact = keyring
        .lookup("intranet.example.com", None, SchemeKind::Ntlm)
        .unwrap();
    assert_eq!(
        exact,
        &KeyringCredential {
            user: r"EXAMPLE\alice".into(),
            secret: KeyringSecret::Password("exact-secret".into()),
            schemes: vec![SchemeKind::Ntlm, SchemeKind::Basic],
        }
    );
    let wild = keyring
        .lookup("www.example.com", None, SchemeKind::Digest)
        .unwrap();
    assert_eq!(wild.schemes, SchemeKind::ALL);
    assert!(Keyring::parse("").unwrap().is_empty());
    // The module documentation's example parses too.
    let module_doc = include_str!("../keyring.rs")
        .lines()
        .skip_while(|line| !line.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|line| !line.starts_with("//! ```"))
        .map(|line| line.trim_start_matches("//!").trim_start())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(Keyring::parse(&module_doc).unwrap().len(), 5);
}

#[test]
fn exact_host_beats_wildcard_beats_realm() {
    let keyring = Keyring::parse(EXAMPLE).unwrap();
    let realm = Some("EXAMPLE.COM");
    use SchemeKind::{Basic, Digest, Negotiate, Ntlm};
    // Exact, case-insensitively and ignoring a trailing dot.
    for host in ["intranet.example.com", "INTRANET.Example.com."] {
        assert_eq!(
            user_for(&keyring, host, realm, Ntlm).as_deref(),
            Some(r"EXAMPLE\alice")
        );
    }
    // The exact entry does not allow Digest: the wildcard answers.
    assert_eq!(
        user_for(&keyring, "intranet.example.com", realm, Digest).as_deref(),
        Some("wild@EXAMPLE.COM")
    );
    // Wildcard beats realm, even for Negotiate.
    assert_eq!(
        user_for(&keyring, "intranet.example.com", realm, Negotiate).as_deref(),
        Some("wild@EXAMPLE.COM")
    );
    // The realm answers for a host no host entry matches, if the realm is known.
    assert_eq!(
        user_for(&keyring, "example.com", Some("example.com"), Negotiate).as_deref(),
        Some("realm@EXAMPLE.COM")
    );
    assert_eq!(user_for(&keyring, "example.com", None, Negotiate), None);
    assert_eq!(user_for(&keyring, "example.com", realm, Basic), None);
    assert_eq!(
        user_for(&keyring, "example.org", Some("OTHER.ORG"), Negotiate),
        None
    );
}

#[test]
fn wildcards_match_subdomains_only_and_the_longest_wins() {
    let keyring = Keyring::parse(EXAMPLE).unwrap();
    let basic = |host| user_for(&keyring, host, None, SchemeKind::Basic);
    assert_eq!(basic("a.example.com").as_deref(), Some("wild@EXAMPLE.COM"));
    assert_eq!(
        basic("a.b.example.com").as_deref(),
        Some("wild@EXAMPLE.COM")
    );
    assert_eq!(basic("example.com"), None);
    assert_eq!(basic("badexample.com"), None);
    assert_eq!(basic("example.com.evil.org"), None);
    assert_eq!(
        basic("deep.example.com").as_deref(),
        Some("wild@EXAMPLE.COM")
    );
    assert_eq!(basic("x.deep.example.com").as_deref(), Some("deep"));
    // Order in the file does not matter between wildcards of different lengths.
    let reversed = Keyring::parse(
        "[[credential]]\nhost = '*.deep.example.com'\nuser = 'deep'\npassword = ''\n\
         [[credential]]\nhost = '*.EXAMPLE.com'\nuser = 'wild'\npassword = ''\n",
    )
    .unwrap();
    assert_eq!(
        user_for(&reversed, "x.deep.example.com", None, SchemeKind::Basic).as_deref(),
        Some("deep")
    );
    assert_eq!(
        user_for(&reversed, "y.example.com", None, SchemeKind::Basic).as_deref(),
        Some("wild")
    );
}

#[test]
fn first_of_equal_entries_wins() {
    let keyring = Keyring::parse(
        "[[credential]]\nhost = 'h'\nuser = 'first'\npassword = ''\n\
         [[credential]]\nhost = 'H'\nuser = 'second'\npassword = ''\n",
    )
    .unwrap();
    assert_eq!(
        user_for(&keyring, "h", None, SchemeKind::Basic).as_deref(),
        Some("first")
    );
}

#[test]
fn rejects_what_it_cannot_use_and_says_why() {
    let cases = [
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\npasword = 'p'",
            "line 5, column 1: unknown field `pasword`",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'",
            "missing field `password`",
        ),
        ("[credential]\nhost = 'h'", "keyring: "),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 123456",
            "credential 1: `password` must be a string",
        ),
        (
            "[[credential]]\nhost = 'h'\nrealm = 'R'\nuser = 'u'\npassword = 'p'",
            "both `host` and `realm`",
        ),
        (
            "[[credential]]\nuser = 'u'\npassword = 'p'",
            "needs a `host` or a `realm`",
        ),
        (
            "[[credential]]\nhost = 'https://h.example/x'\nuser = 'u'\npassword = 'p'",
            "not a URL: write `h.example`",
        ),
        (
            "[[credential]]\nhost = 'h.example:8443'\nuser = 'u'\npassword = 'p'",
            "has a port",
        ),
        (
            "[[credential]]\nhost = 'a b'\nuser = 'u'\npassword = 'p'",
            "must be a host name",
        ),
        (
            "[[credential]]\nhost = '*'\nuser = 'u'\npassword = 'p'",
            "wildcard must be the whole first label",
        ),
        (
            "[[credential]]\nhost = 'a.*.com'\nuser = 'u'\npassword = 'p'",
            "wildcard must be the whole first label",
        ),
        (
            "[[credential]]\nhost = '*example.com'\nuser = 'u'\npassword = 'p'",
            "wildcard must be the whole first label",
        ),
        (
            "[[credential]]\nhost = '*..com'\nuser = 'u'\npassword = 'p'",
            "empty label",
        ),
        (
            "[[credential]]\nhost = '.example.com'\nuser = 'u'\npassword = 'p'",
            "for a wildcard write",
        ),
        (
            "[[credential]]\nhost = 'a..'\nuser = 'u'\npassword = 'p'",
            "empty label",
        ),
        (
            "[[credential]]\nrealm = ''\nuser = 'u'\npassword = 'p'",
            "`realm` must be a Kerberos realm",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = ''\npassword = 'p'",
            "`user` is empty",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = ['kerberos']",
            "unknown scheme `kerberos`",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = []",
            "`schemes` is empty",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\n[[credential]]\nhost = 'h'",
            "missing field `user`",
        ),
    ];
    for (text, expected) in cases {
        let message = detail(Keyring::parse(text));
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    // Scheme names are case-insensitive, duplicates collapse, and the strongest comes first.
    let keyring = Keyring::parse(
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\nschemes = ['Basic', 'NTLM', 'basic']",
    )
    .unwrap();
    assert_eq!(
        keyring
            .lookup("h", None, SchemeKind::Basic)
            .unwrap()
            .schemes,
        [SchemeKind::Ntlm, SchemeKind::Basic]
    );
}

#[test]
fn an_nt_hash_stands_for_the_password_for_ntlm_only() {
    let keyring = Keyring::parse(
        "[[credential]]\nhost = 'proxy'\nuser = 'CORP\\alice'\n\
         nt_hash = '8846f7eaee8fb117ad06bdd830b7586c'\n",
    )
    .unwrap();
    let sources = CredentialSources::new().with_keyring(keyring);
    let found = sources
        .lookup("proxy", None, SchemeKind::Basic)
        .map(|f| (f.secret, f.password(SchemeKind::Basic, "the proxy proxy")));
    let hash = parse_nt_hash("8846F7EAEE8FB117AD06BDD830B7586C").unwrap();
    assert_eq!(
        hash,
        kerbside_proto::scheme::ntlm::crypto::nt_hash("password")
    );
    let (secret, password) = found.unwrap();
    assert_eq!(secret, Secret::NtHash(&hash));
    let refusal = password.unwrap_err();
    assert!(
        refusal.contains("the proxy proxy asks for Basic, which needs CORP\\alice's password")
            && refusal.contains("only its NT hash"),
        "{refusal}"
    );
    assert!(!format!("{secret:?}").contains("88"), "{secret:?}");
    for (text, expected) in [
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = '8846F7EA'",
            "`nt_hash` must be 32 hexadecimal digits",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = 'zz46F7EAEE8FB117AD06BDD830B7586C'",
            "`nt_hash` must be 32 hexadecimal digits",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\nnt_hash = 5",
            "`nt_hash` must be a string",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'p'\n\
             nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'",
            "more than one of `password`, `nt_hash` and `ntlmv2_hash`",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'u'\n\
             nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'\nschemes = ['basic']",
            "answers NTLM only",
        ),
    ] {
        let e = detail(Keyring::parse(text));
        assert!(e.contains(expected), "{text}: {e}");
        assert!(!e.contains("8846"), "{e}");
    }
}

#[test]
fn an_ntlmv2_hash_answers_ntlm_only_for_a_domain_user() {
    let keyring = Keyring::parse(
        "[[credential]]\nhost = 'proxy'\nuser = 'EXAMPLE\\alice'\n\
         ntlmv2_hash = '512c91b5c22f94bf5d813adaf60cd7ad'\n",
    )
    .unwrap();
    let hash = parse_nt_hash("512C91B5C22F94BF5D813ADAF60CD7AD").unwrap();
    assert_eq!(
        hash,
        kerbside_proto::scheme::ntlm::crypto::ntlmv2_hash("secret", "alice", "EXAMPLE")
    );
    let sources = CredentialSources::new().with_keyring(keyring.clone());
    let found = sources.lookup("proxy", None, SchemeKind::Digest).unwrap();
    assert_eq!(found.secret, Secret::Ntlmv2Hash(&hash));
    assert_eq!(found.secret.hash_key(), Some("ntlmv2_hash"));
    let refusal = found
        .password(SchemeKind::Digest, "the proxy proxy")
        .unwrap_err();
    assert!(
        refusal.contains("asks for Digest, which needs EXAMPLE\\alice's password")
            && refusal.contains("only its NTLMv2 hash (ntlmv2_hash)"),
        "{refusal}"
    );
    for shown in [format!("{found:?}"), format!("{keyring:?}")] {
        assert!(!shown.contains("51") && !shown.contains("81"), "{shown}");
    }
    let hint = crate::schemes::ntlmv2_hash_hint(Some(found));
    assert!(
        hint.contains("only for the user and domain it was made for"),
        "{hint}"
    );
    assert!(!hint.contains("512C"), "{hint}");
    for (text, expected) in [
        (
            "[[credential]]\nhost = 'h'\nuser = 'alice'\n\
             ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
            "write `user` as 'DOMAIN\\user'",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = '\\alice'\n\
             ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
            "write `user` as 'DOMAIN\\user'",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'D\\u'\nntlmv2_hash = '512C91B5'",
            "`ntlmv2_hash` must be 32 hexadecimal digits",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'D\\u'\nntlmv2_hash = 5",
            "`ntlmv2_hash` must be a string",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'D\\u'\n\
             nt_hash = '8846F7EAEE8FB117AD06BDD830B7586C'\n\
             ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'",
            "more than one of",
        ),
        (
            "[[credential]]\nhost = 'h'\nuser = 'D\\u'\n\
             ntlmv2_hash = '512C91B5C22F94BF5D813ADAF60CD7AD'\nschemes = ['digest']",
            "an `ntlmv2_hash` answers NTLM only",
        ),
    ] {
        let e = detail(Keyring::parse(text));
        assert!(e.contains(expected), "{text}: {e}");
        assert!(!e.contains("512C"), "{e}");
    }
}

proptest! {
    #[test]
    fn nt_hashes_read_back(bytes in proptest::array::uniform16(any::<u8>())) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        prop_assert_eq!(parse_nt_hash(&hex), Some(bytes));
        prop_assert_eq!(parse_nt_hash(&hex.to_uppercase()), Some(bytes));
        prop_assert_eq!(parse_nt_hash(&hex[1..]), None);
    }

    #[test]
    fn nt_hash_parsing_never_panics(text in ".{0,40}") {
        let _ = parse_nt_hash(&text);
    }
}

#[test]
fn errors_never_quote_a_password() {
    for text in [
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = \"hunter2",
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'hunter2'\nextra = 1",
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 7777777",
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = [\"hunter2\"]",
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = 'hunter2' 'x'",
        "[[credential]]\nhost = 'h'\nuser = 'u'\npassword = \"hunter2\\q\"",
    ] {
        let message = detail(Keyring::parse(text));
        assert!(
            !message.contains("hunter2") && !message.contains("7777777"),
            "{message}"
        );
    }
}

#[test]
fn debug_never_shows_a_password() {
    let keyring = Keyring::parse(EXAMPLE).unwrap();
    let sources = CredentialSources::new()
        .with_command_line("cli", "cli-secret")
        .with_keyring(keyring.clone())
        .with_netrc(Netrc::parse(b"machine h login n password netrc-secret").unwrap());
    let found = sources.lookup("h", None, SchemeKind::Basic).unwrap();
    let debug = format!(
        "{keyring:?} {keyring:#?} {sources:?} {found:?} {:?}",
        keyring.lookup("intranet.example.com", None, SchemeKind::Basic)
    );
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("<redacted>") && debug.contains("wild@EXAMPLE.COM"));
}

#[test]
fn command_line_beats_keyring_beats_netrc() {
    let keyring = Keyring::parse(
        "[[credential]]\nhost = 'k.example'\nuser = 'from-keyring'\npassword = 'k'\nschemes = ['ntlm']",
    )
    .unwrap();
    let netrc = Netrc::parse(
        b"machine k.example login from-netrc password n\n\
          machine nopass.example login alone\n\
          default login anonymous password guest\n",
    )
    .unwrap();
    let files = CredentialSources::new()
        .with_keyring(keyring)
        .with_netrc(netrc);
    let all = files.clone().with_command_line("from-cli", "c");
    let lookup = |sources: &CredentialSources, host, scheme| {
        sources.lookup(host, None, scheme).map(|found| {
            (
                found.user.to_owned(),
                found.password(scheme, host).unwrap_or_default().to_owned(),
                found.source,
            )
        })
    };
    let owned =
        |user: &str, password: &str, source| Some((user.to_owned(), password.to_owned(), source));
    use CredentialSource::{CommandLine, Keyring as FromKeyring, Netrc as FromNetrc};
    assert_eq!(
        lookup(&all, "k.example", SchemeKind::Ntlm),
        owned("from-cli", "c", CommandLine)
    );
    assert_eq!(
        lookup(&all, "other", SchemeKind::Negotiate),
        owned("from-cli", "c", CommandLine)
    );
    assert_eq!(
        lookup(&files, "K.Example", SchemeKind::Ntlm),
        owned("from-keyring", "k", FromKeyring)
    );
    // The keyring entry does not allow Basic: the netrc answers.
    assert_eq!(
        lookup(&files, "k.example", SchemeKind::Basic),
        owned("from-netrc", "n", FromNetrc)
    );
    assert_eq!(
        lookup(&files, "k.example.", SchemeKind::Digest),
        owned("from-netrc", "n", FromNetrc)
    );
    // The netrc never answers Negotiate, and an entry without a password answers nothing
    // (not even the default entry after it).
    assert_eq!(lookup(&files, "k.example", SchemeKind::Negotiate), None);
    assert_eq!(lookup(&files, "nopass.example", SchemeKind::Basic), None);
    assert_eq!(
        lookup(&files, "else.example", SchemeKind::Basic),
        owned("anonymous", "guest", FromNetrc)
    );
    assert_eq!(
        lookup(&CredentialSources::new(), "k.example", SchemeKind::Basic),
        None
    );
}

fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

#[cfg(unix)]
#[test]
fn load_refuses_a_file_others_can_read_or_write() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o777] {
        let path = write_file(dir.path(), "keyring.toml", EXAMPLE, mode);
        let error = Keyring::load(&path).unwrap_err();
        assert!(
            matches!(&error, KeyringError::ReadableByOthers { mode: m, .. } if *m == mode),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display()))
                && message.contains(&format!("{mode:o}")),
            "{message}"
        );
        let netrc = write_file(dir.path(), "netrc", "machine h", mode);
        assert!(matches!(
            load_netrc(&netrc),
            Err(KeyringError::ReadableByOthers { .. })
        ));
    }
    for mode in [0o600, 0o400] {
        let path = write_file(dir.path(), "keyring.toml", EXAMPLE, mode);
        assert_eq!(Keyring::load(&path).unwrap().len(), 4);
        let netrc = write_file(dir.path(), "netrc", "machine h login u", mode);
        assert_eq!(load_netrc(&netrc).unwrap().entries().len(), 1);
    }
}

#[test]
fn load_names_the_file_in_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let error = Keyring::load(&missing).unwrap_err();
    assert!(
        matches!(&error, KeyringError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(error.to_string().contains("missing.toml"), "{error}");

    let bad = write_file(
        dir.path(),
        "bad.toml",
        "[[credential]]\nhost = 'h'\n",
        0o600,
    );
    let message = Keyring::load(&bad).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("`{}`: ", bad.display())),
        "{message}"
    );

    let not_utf8 = dir.path().join("latin1.toml");
    std::fs::write(&not_utf8, b"# caf\xe9\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&not_utf8, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(Keyring::load(&not_utf8)
        .unwrap_err()
        .to_string()
        .contains("not UTF-8"));

    let big = write_file(
        dir.path(),
        "big.toml",
        &"#".repeat(MAX_FILE_SIZE as usize + 1),
        0o600,
    );
    assert!(matches!(
        Keyring::load(&big),
        Err(KeyringError::TooLarge { .. })
    ));

    let netrc = write_file(dir.path(), "netrc", "machine h login", 0o600);
    let message = load_netrc(&netrc).unwrap_err().to_string();
    assert!(
        message.contains("netrc`: line 1, column 11: `login` needs a value"),
        "{message}"
    );
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
}

#[test]
fn default_paths_follow_the_environment() {
    let keyring = |vars: &[(&str, &str)]| default_keyring_path(&env_of(vars));
    let netrc = |vars: &[(&str, &str)]| default_netrc_path(&env_of(vars));
    assert_eq!(
        keyring(&[
            ("KERBSIDE_KEYRING", "/k.toml"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h")
        ]),
        Some(("/k.toml".into(), true))
    );
    assert_eq!(
        keyring(&[
            ("KERBSIDE_KEYRING", ""),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h")
        ]),
        Some(("/x/kerbside/keyring.toml".into(), false))
    );
    // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert_eq!(
        keyring(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]),
        Some(("/h/.config/kerbside/keyring.toml".into(), false))
    );
    assert_eq!(keyring(&[]), None);
    assert_eq!(
        netrc(&[("NETRC", "/n"), ("HOME", "/h")]),
        Some(("/n".into(), true))
    );
    let name = if cfg!(windows) { "_netrc" } else { ".netrc" };
    assert_eq!(
        netrc(&[("HOME", "/h")]),
        Some((Path::new("/h").join(name), false))
    );
    assert_eq!(netrc(&[]), None);
}

#[test]
fn load_default_skips_missing_files_unless_named() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let sources = CredentialSources::load_from_env(&env_of(&[("HOME", home)])).unwrap();
    assert!(sources.keyring.is_none() && sources.netrc.is_none());

    let named = dir.path().join("nope.toml");
    let env = env_of(&[
        ("HOME", home),
        ("KERBSIDE_KEYRING", named.to_str().unwrap()),
    ]);
    assert!(matches!(
        CredentialSources::load_from_env(&env),
        Err(KeyringError::Io { .. })
    ));

    write_file(dir.path(), ".netrc", "machine h login u password p", 0o600);
    std::fs::create_dir_all(dir.path().join(".config/kerbside")).unwrap();
    write_file(
        &dir.path().join(".config/kerbside"),
        "keyring.toml",
        "[[credential]]\nhost = 'k'\nuser = 'u'\npassword = 'p'",
        0o600,
    );
    let sources = CredentialSources::load_from_env(&env_of(&[("HOME", home)])).unwrap();
    assert_eq!(sources.keyring.map(|k| k.len()), Some(1));
    if cfg!(unix) {
        assert_eq!(sources.netrc.map(|n| n.entries().len()), Some(1));
    }
}

/// Seeds of `fuzz/corpus/keyring`, replayed through the fuzz target's check.
#[test]
fn seed_corpus_passes_the_fuzz_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/keyring");
    let mut seen = 0;
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            fuzz_check(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 5, "the seed corpus went missing ({seen} files)");
}

proptest! {
    #[test]
    fn parse_never_panics(text in ".{0,300}") {
        fuzz_check(text.as_bytes());
    }

    #[test]
    fn parse_never_panics_on_keyring_like_text(
        lines in prop::collection::vec(
            prop_oneof![
                Just("[[credential]]".to_owned()),
                "(host|realm|user|password) = [\"'][*a-zA-Z.:/@ \\\\]{0,12}[\"']",
                "(nt_hash|ntlmv2_hash|password) = [\"'][0-9a-fA-F]{30,33}[\"']",
                "schemes = \\[([\"'](ntlm|basic|digest|negotiate|x)[\"'], ?){0,3}\\]",
                ".{0,20}",
            ],
            0..12,
        )
    ) {
        fuzz_check(lines.join("\n").as_bytes());
    }
}
