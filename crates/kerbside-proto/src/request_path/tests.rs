//! The canonicaliser's rules, one example each, and its properties over generated paths.

use proptest::prelude::*;

use super::*;

fn canonical(path: &str) -> String {
    match CanonicalPath::parse(path) {
        Ok(p) => p.as_str().to_owned(),
        Err(e) => panic!("{path:?}: {e}"),
    }
}

fn refused(path: &str) -> PathError {
    match CanonicalPath::parse(path) {
        Ok(p) => panic!("{path:?} should be refused, got {p}"),
        Err(e) => e,
    }
}

#[test]
fn plain_paths_stay_as_they_are() {
    for path in [
        "/",
        "/a",
        "/a/",
        "/hg/repo",
        "/git/r.git/info/refs",
        "/~user/x-y_z.txt",
        "/a:b@c!$&'()*+,=",
        "/caf%C3%A9",
        "/a%20b",
        "/%3F%23",
        "/..a/b./...",
    ] {
        assert_eq!(canonical(path), path);
    }
}

#[test]
fn unreserved_escapes_are_decoded_and_others_upper_cased() {
    assert_eq!(canonical("/%61dmin"), "/admin");
    assert_eq!(canonical("/%41%7a%30%2D%5f%7E"), "/Az0-_~");
    assert_eq!(canonical("/caf%c3%a9"), "/caf%C3%A9");
    assert_eq!(canonical("/a%3bb"), "/a%3Bb");
    assert_eq!(canonical("/%25"), "/%25");
}

#[test]
fn bytes_not_allowed_raw_are_encoded() {
    assert_eq!(canonical("/a b"), "/a%20b");
    assert_eq!(canonical("/café"), "/caf%C3%A9");
    assert_eq!(
        canonical("/{x}|\"<>^`[]"),
        "/%7Bx%7D%7C%22%3C%3E%5E%60%5B%5D"
    );
    assert_eq!(canonical("/a?b#c"), "/a%3Fb%23c");
}

#[test]
fn dot_segments_are_resolved_in_any_spelling() {
    for path in [
        "/admin/../public/x",
        "/admin/%2e%2e/public/x",
        "/admin/%2E%2E/public/x",
        "/admin/.%2e/public/x",
        "/admin/%2e./public/x",
        "/admin/%2E%2e/public/x",
        "/./public/./x",
        "/public/%2e/x",
        "/a/b/../../public/x",
    ] {
        assert_eq!(canonical(path), "/public/x", "{path}");
    }
    assert_eq!(canonical("/a/b/.."), "/a/");
    assert_eq!(canonical("/a/."), "/a/");
    assert_eq!(canonical("/a/.."), "/");
    assert_eq!(canonical("/."), "/");
}

#[test]
fn slashes_are_merged() {
    assert_eq!(canonical("//admin"), "/admin");
    assert_eq!(canonical("/public//x"), "/public/x");
    assert_eq!(canonical("/a///"), "/a/");
    assert_eq!(canonical("//"), "/");
    assert_eq!(canonical("/a//../b"), "/b");
}

#[test]
fn climbing_above_the_root_is_refused() {
    assert_eq!(refused("/.."), PathError::EscapesRoot);
    assert_eq!(refused("/../etc/passwd"), PathError::EscapesRoot);
    assert_eq!(refused("/a/../../b"), PathError::EscapesRoot);
    assert_eq!(refused("/%2e%2e/x"), PathError::EscapesRoot);
    assert_eq!(refused("//..//x"), PathError::EscapesRoot);
}

#[test]
fn ambiguous_bytes_are_refused() {
    assert_eq!(refused("/public/..%2fadmin"), PathError::EncodedSlash);
    assert_eq!(refused("/a%2Fb"), PathError::EncodedSlash);
    assert_eq!(refused("/a%5cb"), PathError::Backslash);
    assert_eq!(refused("/a\\b"), PathError::Backslash);
    assert_eq!(refused("/a%00b"), PathError::ControlByte);
    assert_eq!(refused("/a%01"), PathError::ControlByte);
    assert_eq!(refused("/a%0d%0a"), PathError::ControlByte);
    assert_eq!(refused("/a%7f"), PathError::ControlByte);
    assert_eq!(refused("/a\u{7f}"), PathError::ControlByte);
    assert_eq!(refused("/a\tb"), PathError::ControlByte);
    assert_eq!(refused("/a\0"), PathError::ControlByte);
    assert_eq!(refused("/%"), PathError::BadEscape);
    assert_eq!(refused("/%4"), PathError::BadEscape);
    assert_eq!(refused("/%zz"), PathError::BadEscape);
    assert_eq!(refused("/%u002e"), PathError::BadEscape);
    assert_eq!(refused("/admin/..;/x"), PathError::PathParameter);
    assert_eq!(refused("/.;x/a"), PathError::PathParameter);
    assert_eq!(refused("/%2e%2e;a"), PathError::PathParameter);
    assert_eq!(refused("/admin;jsessionid=1/x"), PathError::PathParameter);
    assert_eq!(canonical("/a%3bb"), "/a%3Bb");
    assert_eq!(refused("/%c0%ae%c0%ae/x"), PathError::OverlongUtf8);
    assert_eq!(refused("/a%C0%AFb"), PathError::OverlongUtf8);
    assert_eq!(refused("*"), PathError::Asterisk);
    assert_eq!(refused(""), PathError::Empty);
    assert_eq!(refused("a/b"), PathError::NotAbsolute);
    assert_eq!(refused("http://h/x"), PathError::NotAbsolute);
}

#[test]
fn a_refused_path_wins_over_a_later_dot_dot() {
    // The segment is refused before `..` could remove it.
    assert_eq!(refused("/a%2fb/../x"), PathError::EncodedSlash);
}

#[test]
fn segments_are_between_slashes() {
    let path = CanonicalPath::parse("/a/b%20c/").unwrap();
    assert_eq!(path.segments().collect::<Vec<_>>(), ["a", "b%20c", ""]);
    let root = CanonicalPath::parse("/").unwrap();
    assert_eq!(root.segments().collect::<Vec<_>>(), [""]);
}

fn check(path: &str) {
    fuzz_check(path.as_bytes());
}

/// Path-like input: segments of dots, letters and escapes (some dangerous).
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just("%2f".to_owned()),
        Just("%5C".to_owned()),
        Just("%00".to_owned()),
        Just(";".to_owned()),
        Just("%c0".to_owned()),
        Just("%ae".to_owned()),
        Just("%".to_owned()),
        "[a-z]{1,3}",
        "%[0-9a-fA-F]{2}",
        "[ -~]{1,2}",
        Just("é".to_owned()),
    ];
    let segment = prop::collection::vec(piece, 0..4).prop_map(|p| p.concat());
    prop::collection::vec(segment, 0..8).prop_map(|s| format!("/{}", s.join("/")))
}

proptest! {
    #[test]
    fn properties_hold_for_path_like_input(path in path_like()) {
        check(&path);
    }

    #[test]
    fn properties_hold_for_any_input(path in any::<String>()) {
        check(&path);
    }

    #[test]
    fn encoding_unreserved_characters_changes_nothing(
        segments in prop::collection::vec("[a-zA-Z0-9._~-]{1,6}", 1..5)
    ) {
        let plain = format!("/{}", segments.join("/"));
        let encoded: String = plain
            .bytes()
            .map(|b| if b == b'/' { "/".to_owned() } else { format!("%{b:02x}") })
            .collect();
        prop_assert_eq!(
            CanonicalPath::parse(&plain).map(|p| p.to_string()),
            CanonicalPath::parse(&encoded).map(|p| p.to_string())
        );
    }
}
