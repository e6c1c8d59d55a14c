//! Basic: RFC 7617's examples, errors, redaction, `htpasswd` against files written by
//! Apache's `htpasswd`, and property tests.

use proptest::prelude::*;

use super::htpasswd::{Htpasswd, HtpasswdErrorKind, Verdict};
use super::*;

#[test]
fn rfc7617_examples() {
    // §2: Aladdin / open sesame.
    let c = credentials("Aladdin", "open sesame").unwrap();
    assert_eq!(c.to_header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    // §2.1: "test" / "123£" in UTF-8.
    let c = credentials("test", "123\u{a3}").unwrap();
    assert_eq!(c.to_header_value(), "Basic dGVzdDoxMjPCow==");
    let login = decode(&Credentials::parse(b"Basic dGVzdDoxMjPCow==").unwrap()).unwrap();
    assert_eq!(
        (login.user.as_str(), login.password()),
        ("test", "123\u{a3}")
    );
    assert_eq!(
        challenge_header_value("WallyWorld").unwrap(),
        "Basic realm=\"WallyWorld\", charset=\"UTF-8\""
    );
    let parsed =
        crate::header::parse_challenges([challenge_header_value("a b").unwrap().as_bytes()])
            .unwrap();
    assert_eq!(parsed, vec![challenge("a b").unwrap()]);
}

#[test]
fn errors() {
    assert_eq!(credentials("a:b", "p"), Err(BasicError::ColonInUser));
    assert_eq!(
        credentials("a", "p\n"),
        Err(BasicError::ControlCharacter("password"))
    );
    assert!(challenge("x\r\ny").is_err());
    let decode_text = |text: &[u8]| decode(&Credentials::parse(text).unwrap());
    // A colon in the password is fine: only the first one splits.
    assert_eq!(decode_text(b"Basic YTpiOmM=").unwrap().password(), "b:c");
    assert_eq!(decode_text(b"Basic YWJj"), Err(BasicError::NoColon));
    assert_eq!(decode_text(b"Basic /w=="), Err(BasicError::NotUtf8));
    assert_eq!(decode_text(b"Basic a"), Err(BasicError::InvalidBase64));
    assert_eq!(decode_text(b"Basic"), Err(BasicError::NoToken));
    assert_eq!(decode_text(b"Basic realm=x"), Err(BasicError::NoToken));
    assert_eq!(
        decode_text(b"Basic YToKYg=="),
        Err(BasicError::ControlCharacter("password"))
    );
    assert!(matches!(
        decode_text(b"Negotiate YII="),
        Err(BasicError::NotBasic(_))
    ));
    // Padding is optional.
    assert_eq!(decode_text(b"basic YTpi").unwrap().user, "a");
}

/// Lines written by `htpasswd -bnB -C 5 alice 'correct horse'` and `htpasswd -bns bob pw`.
const APACHE_FILE: &str = "# users\n\
    alice:$2y$05$0.YH9lbjf3bI2SNmki4eD.QICHuT4fe26GY2XHDgeI/THJ9dHECvi\r\n\
    \n\
    bob:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n";

#[test]
fn htpasswd_verifies_apache_lines() {
    let file = Htpasswd::parse(APACHE_FILE.as_bytes()).unwrap();
    assert_eq!(file.entries().len(), 2);
    assert_eq!(file.verify("alice", "correct horse"), Verdict::Verified);
    assert_eq!(file.verify("alice", "correct hors"), Verdict::WrongPassword);
    assert_eq!(file.verify("bob", "pw"), Verdict::Verified);
    assert_eq!(file.verify("bob", "pW"), Verdict::WrongPassword);
    assert_eq!(file.verify("carol", "pw"), Verdict::UnknownUser);
    let shown = format!("{file:?}");
    assert!(
        !shown.contains("$2y$") && !shown.contains("GpHW"),
        "{shown}"
    );
    assert!(shown.contains("alice") && shown.contains("<redacted bcrypt>"));
}

#[test]
fn htpasswd_refuses_weak_and_malformed_hashes() {
    let kind = |text: &str| Htpasswd::parse(text.as_bytes()).unwrap_err();
    for (line, what) in [
        ("u:$apr1$eXikpY6N$C1n.hup8EpS7AuvgqgSGU.", "$apr1$"),
        ("u:yAMz74WPwnz9U", "crypt() DES"),
        ("u:$6$salt$abc", "crypt()"),
        ("u:plaintext", "unknown kind"),
    ] {
        let e = kind(&format!("# c\n{line}"));
        assert_eq!(e.line, 2);
        let message = e.to_string();
        assert!(
            message.contains(what) && message.contains("htpasswd -B"),
            "{message}"
        );
    }
    assert_eq!(
        kind("u:$2y$05$short").kind,
        HtpasswdErrorKind::InvalidBcrypt("u".into())
    );
    assert_eq!(
        kind("u:$2y$99$0.YH9lbjf3bI2SNmki4eD.QICHuT4fe26GY2XHDgeI/THJ9dHECvi").kind,
        HtpasswdErrorKind::InvalidBcrypt("u".into())
    );
    assert_eq!(
        kind("u:{SHA}abc").kind,
        HtpasswdErrorKind::InvalidSha1("u".into())
    );
    assert_eq!(kind("nocolon").kind, HtpasswdErrorKind::NoColon);
    assert_eq!(
        kind(":{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=").kind,
        HtpasswdErrorKind::EmptyUser
    );
    let e = kind("u:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\nu:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=");
    assert_eq!(
        e.kind,
        HtpasswdErrorKind::Duplicate {
            user: "u".into(),
            first_line: 1
        }
    );
    assert_eq!(
        Htpasswd::parse(b"u:\xff").unwrap_err().kind,
        HtpasswdErrorKind::NotUtf8
    );
}

proptest! {
    #[test]
    fn basic_round_trip(user in any::<String>(), password in any::<String>()) {
        match credentials(&user, &password) {
            Ok(c) => {
                let reparsed = Credentials::parse(c.to_header_value().as_bytes()).unwrap();
                let login = decode(&reparsed).unwrap();
                prop_assert_eq!((login.user.as_str(), login.password()), (user.as_str(), password.as_str()));
            }
            Err(_) => prop_assert!(user.contains(':') || has_control(&user) || has_control(&password)),
        }
    }

    #[test]
    fn basic_decode_never_panics(text in "(Basic|basic|Digest) [ -~]{0,60}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        for input in [text.as_bytes(), &bytes[..]] {
            if let Ok(c) = Credentials::parse(input) {
                let _ = decode(&c);
            }
        }
    }

    #[test]
    fn htpasswd_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                   text in "([a-z#]{0,5}:(\\$2[aby]\\$0[0-9]\\$|\\{SHA\\}|\\$apr1\\$)[./A-Za-z0-9=]{0,60}\n){0,4}") {
        for input in [&bytes[..], text.as_bytes()] {
            if let Ok(file) = Htpasswd::parse(input) {
                // Only cheap checks: a bcrypt cost in arbitrary input can be huge.
                for entry in file.entries() {
                    prop_assert!(file.contains(&entry.user));
                }
            }
        }
    }
}
