//! Tests of the session cookies: sealing and opening, tampering, expiry, key
//! rotation and key files, the cookie headers, and the fuzz check's seed corpus.

use super::*;
use proptest::prelude::*;

const HOUR: Duration = Duration::from_secs(3600);

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn codec(key: u8) -> SessionCodec {
    SessionCodec::new(SessionKeys::from_bytes([key; KEY_LEN]))
}

fn flip(value: &str, index: usize, mask: u8) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(value).unwrap();
    let index = index % bytes.len();
    bytes[index] ^= mask;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn seal_then_open_gives_the_session_back() {
    let codec = codec(1);
    let (value, session) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    assert_eq!(
        session,
        Session {
            principal: "alice@EXAMPLE.COM".into(),
            issued: 1000,
            expires: 4600
        }
    );
    assert_eq!(codec.open(&value, at(1000)).unwrap(), session);
    assert_eq!(codec.open(&value, at(4599)).unwrap(), session);
    assert!(value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

#[test]
fn each_seal_uses_a_new_nonce() {
    let codec = codec(1);
    let (a, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    let (b, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[..32], b[..32]);
}

#[test]
fn principals_of_every_length_round_trip() {
    let codec = codec(1);
    for len in [1, 2, 3, 100, MAX_PRINCIPAL_LEN - 1, MAX_PRINCIPAL_LEN] {
        let principal = "é".repeat(len / 2) + &"a".repeat(len % 2);
        let (value, session) = codec.seal(&principal, HOUR, at(1000)).unwrap();
        assert!(value.len() <= MAX_ENCODED_LEN);
        assert_eq!(codec.open(&value, at(1000)).unwrap(), session);
    }
    for principal in [String::new(), "a".repeat(MAX_PRINCIPAL_LEN + 1)] {
        assert!(matches!(
            codec.seal(&principal, HOUR, at(1000)),
            Err(SessionError::InvalidPrincipal { .. })
        ));
    }
}

#[test]
fn a_tampered_cookie_is_bad_mac() {
    let codec = codec(1);
    let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    let len = URL_SAFE_NO_PAD.decode(&value).unwrap().len();
    for index in 0..len {
        for mask in [0x01, 0x80, 0xff] {
            assert!(
                matches!(
                    codec.open(&flip(&value, index, mask), at(1000)),
                    Err(SessionError::BadMac)
                ),
                "byte {index}, mask {mask:#x}"
            );
        }
    }
}

#[test]
fn a_cookie_of_another_key_is_bad_mac() {
    let (value, _) = codec(1).seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    assert!(matches!(
        codec(2).open(&value, at(1000)),
        Err(SessionError::BadMac)
    ));
}

#[test]
fn a_cookie_sealed_under_another_name_is_bad_mac() {
    let other = codec(1).with_cookie_name("other").unwrap();
    let (value, _) = other.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    assert!(other.open(&value, at(1000)).is_ok());
    assert!(matches!(
        codec(1).open(&value, at(1000)),
        Err(SessionError::BadMac)
    ));
}

#[test]
fn garbage_is_malformed() {
    let codec = codec(1);
    let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    let too_long = "A".repeat(MAX_ENCODED_LEN + 1);
    for garbage in [
        "",
        "abc",
        &value[..value.len() - 1],
        &format!("{value}A"),
        &value.replace(|_| true, "="),
        &format!("{}+", &value[..value.len() - 1]),
        &too_long,
    ] {
        assert!(
            matches!(
                codec.open(garbage, at(1000)),
                Err(SessionError::Malformed | SessionError::BadMac)
            ),
            "{garbage:?}"
        );
    }
    assert!(matches!(
        codec.open("", at(1000)),
        Err(SessionError::Malformed)
    ));
}

#[test]
fn an_expired_session_is_expired() {
    let codec = codec(1);
    let (value, session) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
    for now in [session.expires, session.expires + 1, u64::MAX / 2] {
        assert!(matches!(
            codec.open(&value, at(now)),
            Err(SessionError::Expired { expired: 4600 })
        ));
    }
}

#[test]
fn expiry_is_capped_by_the_ticket_and_by_the_max_lifetime() {
    let codec = codec(1);
    let (_, session) = codec
        .seal("a@R", Duration::from_millis(90_500), at(1000))
        .unwrap();
    assert_eq!(session.expires, 1090);
    let (_, session) = codec.seal("a@R", 24 * HOUR, at(1000)).unwrap();
    assert_eq!(session.expires, 1000 + 8 * 3600);
    let short = SessionCodec::new(SessionKeys::from_bytes([1; KEY_LEN]))
        .with_max_lifetime(Duration::from_secs(60));
    let (_, session) = short.seal("a@R", HOUR, at(1000)).unwrap();
    assert_eq!(session.expires, 1060);
    assert!(matches!(
        codec.seal("a@R", Duration::from_millis(999), at(1000)),
        Err(SessionError::TicketExpiring)
    ));
}

#[test]
fn a_lower_max_lifetime_shortens_sessions_already_sealed() {
    let (value, _) = codec(1).seal("a@R", 8 * HOUR, at(1000)).unwrap();
    let short = codec(1).with_max_lifetime(HOUR);
    assert_eq!(short.open(&value, at(1000)).unwrap().expires, 4600);
    assert!(matches!(
        short.open(&value, at(4600)),
        Err(SessionError::Expired { expired: 4600 })
    ));
}

#[test]
fn an_unknown_payload_version_is_reported_after_authentication() {
    // Seal a payload of version 2 by hand with the codec's key and context.
    let codec = codec(1);
    let mut payload = vec![2u8];
    payload.extend_from_slice(&1000u64.to_be_bytes());
    payload.extend_from_slice(&5000u64.to_be_bytes());
    payload.extend_from_slice(&1u16.to_be_bytes());
    payload.push(b'a');
    let nonce = XNonce::from([9; NONCE_LEN]);
    let tag = codec
        .keys
        .current
        .cipher()
        .encrypt_inout_detached(&nonce, &codec.associated_data, payload[..].as_mut().into())
        .unwrap();
    let value = URL_SAFE_NO_PAD.encode([&nonce[..], &payload, &tag[..]].concat());
    assert!(matches!(
        codec.open(&value, at(1000)),
        Err(SessionError::UnsupportedVersion(2))
    ));
}

#[test]
fn rotation_keeps_old_cookies_and_seals_with_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let (current, old) = (dir.path().join("session.key"), dir.path().join("old.key"));
    let before = SessionCodec::new(SessionKeys::load_or_create(&current).unwrap());
    let (old_value, old_session) = before.seal("a@R", HOUR, at(1000)).unwrap();

    std::fs::rename(&current, &old).unwrap();
    let keys = SessionKeys::load_or_create(&current)
        .unwrap()
        .with_previous(std::slice::from_ref(&old))
        .unwrap();
    assert_eq!(keys.len(), 2);
    let after = SessionCodec::new(keys);
    assert_eq!(after.open(&old_value, at(1000)).unwrap(), old_session);
    let (new_value, new_session) = after.seal("b@R", HOUR, at(1000)).unwrap();
    assert_eq!(after.open(&new_value, at(1000)).unwrap(), new_session);
    // Sealed with the new key: the old key alone does not open it.
    assert!(matches!(
        before.open(&new_value, at(1000)),
        Err(SessionError::BadMac)
    ));
    let new_only = SessionCodec::new(SessionKeys::load_or_create(&current).unwrap());
    assert!(new_only.open(&new_value, at(1000)).is_ok());
    assert!(matches!(
        new_only.open(&old_value, at(1000)),
        Err(SessionError::BadMac)
    ));
}

#[test]
fn a_missing_previous_key_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = SessionKeys::from_bytes([1; KEY_LEN]).with_previous(&[dir.path().join("nope")]);
    assert!(matches!(result, Err(SessionError::KeyFileIo { .. })));
}

#[cfg(unix)]
#[test]
fn the_key_file_is_created_0600_with_32_bytes_and_read_back() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.key");
    let first = SessionCodec::new(SessionKeys::load_or_create(&path).unwrap());
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), 32);
    let (value, _) = first.seal("a@R", HOUR, at(1000)).unwrap();
    let second = SessionCodec::new(SessionKeys::load_or_create(&path).unwrap());
    assert!(second.open(&value, at(1000)).is_ok());
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.key");
    std::fs::write(&path, [3; KEY_LEN]).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = SessionKeys::load_or_create(&path).unwrap_err();
        assert!(
            matches!(error, SessionError::KeyFilePermissions { mode: m, .. } if m == mode),
            "{error:?}"
        );
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(error.to_string().contains(&path.display().to_string()));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(SessionKeys::load_or_create(&path).is_ok());
}

#[cfg(unix)]
#[test]
fn a_key_file_of_the_wrong_length_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.key");
    for len in [0, 31, 33, 64] {
        std::fs::write(&path, vec![3; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = SessionKeys::load_or_create(&path).unwrap_err();
        assert!(
            matches!(error, SessionError::KeyFileLength { len: l, .. } if l == len as u64),
            "{error:?}"
        );
        let previous =
            SessionKeys::from_bytes([1; KEY_LEN]).with_previous(std::slice::from_ref(&path));
        assert!(matches!(previous, Err(SessionError::KeyFileLength { .. })));
    }
}

#[test]
fn set_cookie_header_has_the_security_attributes_and_the_ticket_lifetime() {
    let codec = codec(1);
    let ticket = Duration::from_secs(1234);
    let (value, session) = codec.seal("a@R", ticket, at(1_700_000_000)).unwrap();
    let header = codec.set_cookie_header(&value, &session, true, at(1_700_000_000));
    assert_eq!(
        header,
        format!(
            "kerbside_session={value}; Path=/; Max-Age=1234; \
             Expires=Tue, 14 Nov 2023 22:33:54 GMT; HttpOnly; Secure; SameSite=Lax"
        )
    );
    // Later, Max-Age counts down to the same end.
    let later = codec.set_cookie_header(&value, &session, true, at(1_700_001_000));
    assert!(later.contains("; Max-Age=234; "), "{later}");
    let plain = codec.set_cookie_header(&value, &session, false, at(1_700_000_000));
    assert!(!plain.contains("Secure"), "{plain}");
    assert!(plain.contains("HttpOnly; SameSite=Lax"), "{plain}");
    // Not a value from seal: the browser is told to drop the cookie instead.
    let bad = codec.set_cookie_header("a b", &session, true, at(1_700_000_000));
    assert_eq!(bad, codec.clear_cookie_header(true));
}

#[test]
fn clear_cookie_header_expires_the_cookie() {
    assert_eq!(
        codec(1).clear_cookie_header(true),
        "kerbside_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         HttpOnly; Secure; SameSite=Lax"
    );
    assert!(!codec(1).clear_cookie_header(false).contains("Secure"));
}

#[test]
fn cookie_names_are_checked() {
    for name in ["", "a b", "a;b", "__Host-s", "__Secure-s"] {
        assert!(
            matches!(
                codec(1).with_cookie_name(name),
                Err(SessionError::Cookie(CookieError::InvalidName { .. }))
            ),
            "{name:?}"
        );
    }
    assert_eq!(
        codec(1).with_cookie_name("sid").unwrap().cookie_name(),
        "sid"
    );
}

#[test]
fn from_request_finds_the_first_cookie_that_opens() {
    let codec = codec(1);
    let (good, session) = codec.seal("a@R", HOUR, at(1000)).unwrap();
    let (stranger, _) = self::codec(2).seal("b@R", HOUR, at(1000)).unwrap();
    let mut headers = http::HeaderMap::new();
    assert_eq!(codec.from_request(&headers, at(1000)).unwrap(), None);
    headers.append(http::header::COOKIE, "lang=en; theme=dark".parse().unwrap());
    assert_eq!(codec.from_request(&headers, at(1000)).unwrap(), None);
    headers.append(
        http::header::COOKIE,
        format!("kerbside_session={stranger}; kerbside_session=junk")
            .parse()
            .unwrap(),
    );
    assert!(matches!(
        codec.from_request(&headers, at(1000)),
        Err(SessionError::BadMac)
    ));
    headers.append(
        http::header::COOKIE,
        format!("x=1; kerbside_session=\"{good}\"").parse().unwrap(),
    );
    assert_eq!(
        codec.from_request(&headers, at(1000)).unwrap(),
        Some(session)
    );
    assert!(matches!(
        codec.from_request(&headers, at(5000)),
        Err(SessionError::BadMac)
    ));
}

#[test]
fn from_request_tries_a_bounded_number_of_cookies() {
    let codec = codec(1);
    let (good, _) = codec.seal("a@R", HOUR, at(1000)).unwrap();
    let mut line = "kerbside_session=x; ".repeat(MAX_COOKIES_TRIED);
    line.push_str(&format!("kerbside_session={good}"));
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, line.parse().unwrap());
    assert!(matches!(
        codec.from_request(&headers, at(1000)),
        Err(SessionError::Malformed)
    ));
}

#[test]
fn from_request_refuses_an_overlong_cookie_line() {
    let mut headers = http::HeaderMap::new();
    let line = format!("a={}", "x".repeat(70_000));
    headers.insert(http::header::COOKIE, line.parse().unwrap());
    assert!(matches!(
        codec(1).from_request(&headers, at(1000)),
        Err(SessionError::Cookie(CookieError::LineTooLong { .. }))
    ));
}

#[test]
fn debug_output_never_shows_keys_or_cookies() {
    let codec = SessionCodec::new(SessionKeys::new(
        SessionKey::from_bytes([0xab; KEY_LEN]),
        vec![SessionKey::from_bytes([0xcd; KEY_LEN])],
    ));
    let shown = format!("{codec:?} {codec:#?}");
    for leak in ["171", "205", "ab", "AB", "cd", "CD", "q6ur", "zc3N"] {
        assert!(!shown.contains(leak), "{leak} in {shown}");
    }
    assert!(shown.contains("redacted"), "{shown}");
    let (value, _) = codec.seal("a@R", HOUR, at(1000)).unwrap();
    let errors = [
        codec.open(&flip(&value, 30, 1), at(1000)).unwrap_err(),
        codec.open(&value, at(99_999)).unwrap_err(),
    ];
    for error in errors {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(&value[..16]), "{shown}");
    }
}

/// A cookie value sealed with [`FUZZ_KEY`] that opens at [`FUZZ_NOW`], for the seed
/// corpus: `cargo test -p kerbside-server print_a_fuzz_seed -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_a_fuzz_seed() {
    let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
    let (value, _) = codec
        .seal("alice@EXAMPLE.COM", 8 * HOUR, at(FUZZ_NOW - 60))
        .unwrap();
    println!("{value}");
}

/// Seeds of `fuzz/corpus/session`, replayed through the fuzz target's check; one of them
/// must open.
#[test]
fn seed_corpus_passes_the_fuzz_check() {
    let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
    let (mut seen, mut opened) = (0, 0);
    for (_, data) in kerbside_testkit::fuzz_seeds("session") {
        fuzz_check(&data);
        let text = String::from_utf8_lossy(&data);
        opened += usize::from(codec.open(&text, at(FUZZ_NOW)).is_ok());
        seen += 1;
    }
    assert!(seen >= 5, "the seed corpus went missing ({seen} files)");
    assert!(opened >= 1, "no seed opens with FUZZ_KEY at FUZZ_NOW");
}

proptest! {
    #[test]
    fn any_flipped_byte_is_bad_mac(
        principal in "[a-z]{1,20}@[A-Z.]{1,20}",
        index in any::<usize>(),
        mask in 1u8..,
    ) {
        let codec = codec(1);
        let (value, _) = codec.seal(&principal, HOUR, at(1000)).unwrap();
        prop_assert!(matches!(
            codec.open(&flip(&value, index, mask), at(1000)),
            Err(SessionError::BadMac)
        ));
    }

    #[test]
    fn any_changed_character_never_opens(
        index in any::<usize>(),
        replacement in any::<char>(),
    ) {
        let codec = codec(1);
        let (value, _) = codec.seal("alice@EXAMPLE.COM", HOUR, at(1000)).unwrap();
        let index = index % value.len();
        let mut changed = value.clone();
        changed.replace_range(index..=index, replacement.encode_utf8(&mut [0; 4]));
        prop_assume!(changed != value);
        prop_assert!(codec.open(&changed, at(1000)).is_err());
    }

    #[test]
    fn open_never_panics(text in ".{0,1500}") {
        fuzz_check(text.as_bytes());
    }

    #[test]
    fn open_never_panics_on_base64url(text in "[A-Za-z0-9_-]{70,1500}") {
        fuzz_check(text.as_bytes());
    }

    #[test]
    fn seal_and_open_round_trip(
        principal in "\\PC{1,60}",
        ticket in 1u64..100_000,
        now in 0u64..4_000_000_000,
    ) {
        let codec = codec(1);
        let (value, session) = codec
            .seal(&principal, Duration::from_secs(ticket), at(now))
            .unwrap();
        prop_assert_eq!(session.expires, now + ticket.min(8 * 3600));
        prop_assert_eq!(codec.open(&value, at(now)).unwrap(), session.clone());
        let header = codec.set_cookie_header(&value, &session, true, at(now));
        let max_age = format!("; Max-Age={}; ", ticket.min(8 * 3600));
        prop_assert!(header.contains(&max_age), "{}", header);
    }
}
