//! Unit tests: the examples of RFC 7235, 7615, 7616 and 4559, headers seen in the wild, and
//! one test per error kind with its position.

use super::*;

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .collect()
}

fn challenges(value: &str) -> Vec<Challenge> {
    parse_challenges([value.as_bytes()]).unwrap()
}

fn param(name: &str, value: &str) -> AuthParam {
    AuthParam::new(name, value).unwrap()
}

fn challenge(scheme: &str, data: AuthData) -> Challenge {
    Challenge::new(Scheme::new(scheme).unwrap(), data)
}

fn params(pairs: &[(&str, &str)]) -> AuthData {
    AuthData::Params(pairs.iter().map(|(n, v)| param(n, v)).collect())
}

/// The kind and position of the error from parsing `value` as a challenge list.
fn challenge_error(value: &[u8]) -> (HeaderErrorKind, usize) {
    let err = parse_challenges([value]).unwrap_err();
    (err.kind(), err.position())
}

fn credentials_error(value: &[u8]) -> (HeaderErrorKind, usize) {
    let err = Credentials::parse(value).unwrap_err();
    (err.kind(), err.position())
}

/// Formats and parses back, and checks nothing changed.
fn assert_round_trip(parsed: &[Challenge]) {
    let formatted = format_challenges(parsed);
    assert_eq!(challenges(&formatted), parsed, "formatted as {formatted:?}");
}

#[test]
fn rfc7235_newauth_and_basic() {
    let parsed =
        parse_challenges(lines(include_bytes!("../../testdata/rfc7235-newauth.txt"))).unwrap();
    assert_eq!(
        parsed,
        [
            challenge(
                "Newauth",
                params(&[
                    ("realm", "apps"),
                    ("type", "1"),
                    ("title", "Login to \"apps\"")
                ])
            ),
            challenge("Basic", params(&[("realm", "simple")])),
        ]
    );
    assert_eq!(
        format_challenges(&parsed),
        r#"Newauth realm=apps, type=1, title="Login to \"apps\"", Basic realm=simple"#
    );
    assert_round_trip(&parsed);
}

#[test]
fn rfc7616_sha256_and_md5_challenges() {
    let data = include_bytes!("../../testdata/rfc7616-www-authenticate.txt");
    let parsed = parse_challenges(lines(data)).unwrap();
    assert_eq!(parsed.len(), 2);
    for (challenge, algorithm) in parsed.iter().zip(["SHA-256", "MD5"]) {
        assert_eq!(challenge.scheme, Scheme::DIGEST);
        assert_eq!(challenge.param("realm"), Some("http-auth@example.org"));
        assert_eq!(challenge.param("qop"), Some("auth, auth-int"));
        assert_eq!(challenge.param("algorithm"), Some(algorithm));
        assert_eq!(
            challenge.param("nonce"),
            Some("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v")
        );
        assert_eq!(
            challenge.param("opaque"),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        assert_eq!(challenge.data.params().len(), 5);
    }
    // The same two challenges in one field line.
    let joined = lines(data).join(&b", "[..]);
    assert_eq!(parse_challenges([&joined[..]]).unwrap(), parsed);
    assert_round_trip(&parsed);
}

#[test]
fn rfc7616_authorization() {
    for (file, algorithm, response) in [
        (
            &include_bytes!("../../testdata/rfc7616-authorization-md5.txt")[..],
            "MD5",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
        (
            &include_bytes!("../../testdata/rfc7616-authorization-sha256.txt")[..],
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let credentials = Credentials::parse(file.trim_ascii_end()).unwrap();
        assert_eq!(credentials.scheme, Scheme::DIGEST);
        assert_eq!(credentials.param("username"), Some("Mufasa"));
        assert_eq!(credentials.param("uri"), Some("/dir/index.html"));
        assert_eq!(credentials.param("algorithm"), Some(algorithm));
        assert_eq!(credentials.param("nc"), Some("00000001"));
        assert_eq!(credentials.param("qop"), Some("auth"));
        assert_eq!(credentials.param("response"), Some(response));
        assert_eq!(credentials.data.params().len(), 10);
        assert_eq!(credentials.token68(), None);
        assert_eq!(credentials.decode_token68().unwrap(), None);
        let formatted = credentials.to_header_value();
        assert_eq!(
            Credentials::parse(formatted.as_bytes()).unwrap(),
            credentials
        );
    }
}

#[test]
fn rfc4559_negotiate_exchange() {
    let exchange = lines(include_bytes!("../../testdata/rfc4559-exchange.txt"));
    let [first, authorization, last] = exchange[..] else {
        panic!("expected three lines");
    };

    let offer = parse_challenges([first]).unwrap();
    assert_eq!(offer, [Challenge::negotiate(None)]);
    assert_eq!(offer[0].to_header_value(), "Negotiate");

    let credentials = Credentials::parse(authorization).unwrap();
    assert_eq!(credentials.scheme, Scheme::NEGOTIATE);
    assert!(credentials.token68().unwrap().starts_with("YIIB"));
    let token = credentials.decode_token68().unwrap().unwrap();
    assert_eq!(token.len(), 0x189);
    assert_eq!(token[..2], [0x60, 0x82]);
    assert_eq!(Credentials::negotiate(Some(&token)), credentials);
    assert_eq!(credentials.to_header_value().as_bytes(), authorization);

    let reply = parse_challenges([last]).unwrap();
    assert_eq!(reply.len(), 1);
    assert!(reply[0].token68().unwrap().starts_with("oYG"));
    let token = reply[0].decode_token68().unwrap().unwrap();
    assert_eq!(token[0], 0xa1);
    assert_eq!(Challenge::negotiate(Some(&token)), reply[0]);
}

#[test]
fn rfc7615_authentication_info() {
    let info = AuthenticationInfo::parse(
        include_bytes!("../../testdata/rfc7615-authentication-info.txt").trim_ascii(),
    )
    .unwrap();
    assert_eq!(info.param("qop"), Some("auth"));
    assert_eq!(
        info.param("rspauth"),
        Some("4cf3a6a8d4f3e9c0d7d31ed8e3b1c2a4")
    );
    assert_eq!(
        info.param("NextNonce"),
        Some("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v")
    );
    assert_eq!(info.param("nc"), Some("00000001"));
    assert_eq!(info.params.len(), 5);
    assert_eq!(
        AuthenticationInfo::parse(info.to_header_value().as_bytes()).unwrap(),
        info
    );

    let only_nonce =
        AuthenticationInfo::parse(b"nextnonce=\"47364c23432d2e131a5fb210812c\"").unwrap();
    assert_eq!(
        only_nonce.params,
        [param("nextnonce", "47364c23432d2e131a5fb210812c")]
    );

    let rspauth =
        AuthenticationInfo::parse(b"qop=auth, rspauth=\"d3b07384d113edec49eaa6238ad5ff00\"")
            .unwrap();
    assert_eq!(
        rspauth.params,
        [
            param("qop", "auth"),
            param("rspauth", "d3b07384d113edec49eaa6238ad5ff00")
        ]
    );
    assert_eq!(
        rspauth.to_header_value(),
        "qop=auth, rspauth=d3b07384d113edec49eaa6238ad5ff00"
    );
}

#[test]
fn authentication_info_may_be_empty() {
    assert_eq!(AuthenticationInfo::parse(b"").unwrap().params, []);
    assert_eq!(AuthenticationInfo::parse(b" , ,\t").unwrap().params, []);
    assert_eq!(
        AuthenticationInfo::parse(b", a=1 ,, b=\"2\" ,")
            .unwrap()
            .params,
        [param("a", "1"), param("b", "2")]
    );
    let err = AuthenticationInfo::parse(b"=abc").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::ExpectedParamName, 0)
    );
    let err = AuthenticationInfo::parse(b"a=1, b").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::ExpectedEquals, 6)
    );
}

#[test]
fn scheme_with_params_then_bare_scheme() {
    assert_eq!(
        challenges(r#"Basic realm="a, b", Negotiate"#),
        [
            challenge("Basic", params(&[("realm", "a, b")])),
            challenge("Negotiate", AuthData::Empty)
        ]
    );
    assert_eq!(
        challenges(r#"Negotiate, Basic realm="x""#),
        [
            challenge("Negotiate", AuthData::Empty),
            challenge("Basic", params(&[("realm", "x")]))
        ]
    );
}

#[test]
fn ntlm_type1_message() {
    let parsed = parse_challenges(lines(include_bytes!("../../testdata/ntlm-type1.txt"))).unwrap();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].scheme, Scheme::NTLM);
    assert_eq!(
        parsed[0].token68(),
        Some("TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==")
    );
    let message = parsed[0].decode_token68().unwrap().unwrap();
    assert_eq!(message[..12], *b"NTLMSSP\0\x01\0\0\0");
}

#[test]
fn digest_with_unquoted_algorithm() {
    let parsed = challenges(r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#);
    assert_eq!(
        parsed,
        [challenge(
            "Digest",
            params(&[
                ("realm", "r"),
                ("nonce", "n"),
                ("algorithm", "SHA-256"),
                ("qop", "auth")
            ])
        )]
    );
    assert_eq!(
        format_challenges(&parsed),
        "Digest realm=r, nonce=n, algorithm=SHA-256, qop=auth"
    );
}

#[test]
fn scheme_and_param_names_ignore_case() {
    let parsed = challenges("negotiate, BASIC REALM=x");
    assert_eq!(parsed[0].scheme, Scheme::NEGOTIATE);
    assert!(parsed[0].scheme.is("NeGoTiAtE"));
    assert_eq!(parsed[0].scheme.as_str(), "negotiate");
    assert_eq!(parsed[1].scheme, Scheme::BASIC);
    assert_eq!(parsed[1].param("realm"), Some("x"));
    assert_eq!(parsed[1].param("Realm"), Some("x"));
    // The original spelling is kept when formatting.
    assert_eq!(format_challenges(&parsed), "negotiate, BASIC REALM=x");
}

#[test]
fn iis_sends_several_lines() {
    let parsed = parse_challenges(lines(include_bytes!(
        "../../testdata/iis-www-authenticate.txt"
    )))
    .unwrap();
    assert_eq!(
        parsed,
        [
            challenge("Negotiate", AuthData::Empty),
            challenge("NTLM", AuthData::Empty),
            challenge("Basic", params(&[("realm", "x")])),
        ]
    );
    assert_eq!(
        format_challenges(&parsed),
        r#"Negotiate, NTLM, Basic realm=x"#
    );
}

#[test]
fn empty_list_elements() {
    assert_eq!(challenges(",, Negotiate ,"), [Challenge::negotiate(None)]);
    assert_eq!(
        challenges(" , Basic realm=x , , charset=UTF-8 ,, Negotiate abc= ,"),
        [
            challenge("Basic", params(&[("realm", "x"), ("charset", "UTF-8")])),
            challenge("Negotiate", AuthData::Token68("abc=".into())),
        ]
    );
    assert_eq!(challenges(""), []);
    assert_eq!(challenges(" ,\t, "), []);
    assert_eq!(parse_challenges([]).unwrap(), []);
    assert_eq!(
        parse_challenges([&b""[..], b"Negotiate", b", "]).unwrap(),
        [Challenge::negotiate(None)]
    );
}

#[test]
fn tabs_are_whitespace() {
    assert_eq!(
        challenges("\tBasic\trealm\t=\t\"x\"\t,\tNegotiate\t"),
        [
            challenge("Basic", params(&[("realm", "x")])),
            challenge("Negotiate", AuthData::Empty)
        ]
    );
    assert_eq!(
        Credentials::parse(b"Negotiate\tYII=\t").unwrap(),
        Credentials::negotiate(Some(&[0x60, 0x82]))
    );
}

#[test]
fn token68_or_params() {
    let token68 = |s: &str| AuthData::Token68(s.into());
    assert_eq!(
        challenges("Negotiate abc="),
        [challenge("Negotiate", token68("abc="))]
    );
    assert_eq!(
        challenges("Negotiate abc==, NTLM"),
        [
            challenge("Negotiate", token68("abc==")),
            challenge("NTLM", AuthData::Empty)
        ]
    );
    assert_eq!(challenges("Foo abc"), [challenge("Foo", token68("abc"))]);
    assert_eq!(
        challenges("Foo a/b+c.d~e_f-"),
        [challenge("Foo", token68("a/b+c.d~e_f-"))]
    );
    assert_eq!(
        challenges("Foo abc=def"),
        [challenge("Foo", params(&[("abc", "def")]))]
    );
    assert_eq!(
        challenges(r#"Foo abc = "d""#),
        [challenge("Foo", params(&[("abc", "d")]))]
    );
    assert_eq!(
        challenges("Basic realm=x"),
        [challenge("Basic", params(&[("realm", "x")]))]
    );
    // After a comma, `token =` continues the params and a bare token starts a new challenge.
    assert_eq!(
        challenges("Foo a=1, b =2, Bar, Baz c=3"),
        [
            challenge("Foo", params(&[("a", "1"), ("b", "2")])),
            challenge("Bar", AuthData::Empty),
            challenge("Baz", params(&[("c", "3")])),
        ]
    );
    assert_eq!(
        challenges("Foo a=1, Bar x==, Baz"),
        [
            challenge("Foo", params(&[("a", "1")])),
            challenge("Bar", token68("x==")),
            challenge("Baz", AuthData::Empty),
        ]
    );
}

#[test]
fn quoted_strings() {
    let parsed = challenges(r#"Foo a="x\"y\\z", b="", c="a, b=c", d="\q\ \	""#);
    assert_eq!(
        parsed,
        [challenge(
            "Foo",
            params(&[("a", r#"x"y\z"#), ("b", ""), ("c", "a, b=c"), ("d", "q \t")])
        )]
    );
    assert_eq!(
        format_challenges(&parsed),
        "Foo a=\"x\\\"y\\\\z\", b=\"\", c=\"a, b=c\", d=\"q \t\""
    );
    assert_round_trip(&parsed);
}

#[test]
fn utf8_inside_quotes() {
    let parsed = challenges("Basic realm=\"Zürich\", charset=UTF-8");
    assert_eq!(parsed[0].param("realm"), Some("Zürich"));
    assert_eq!(
        format_challenges(&parsed),
        "Basic realm=\"Zürich\", charset=UTF-8"
    );
    assert_round_trip(&parsed);
}

#[test]
fn credentials() {
    assert_eq!(
        Credentials::parse(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
            .unwrap()
            .decode_token68()
            .unwrap(),
        Some(b"Aladdin:open sesame".to_vec())
    );
    assert_eq!(
        Credentials::parse(b"  Negotiate  ").unwrap(),
        Credentials::negotiate(None)
    );
    assert_eq!(
        Credentials::parse(b"Digest a=b, , c=\"d\",").unwrap(),
        Credentials::new(Scheme::DIGEST, params(&[("a", "b"), ("c", "d")]))
    );
    assert_eq!(
        Credentials::parse(b"Bearer mF_9.B5f-4.1JqM")
            .unwrap()
            .token68(),
        Some("mF_9.B5f-4.1JqM")
    );
}

#[test]
fn negotiate_builder() {
    assert_eq!(Challenge::negotiate(None).to_header_value(), "Negotiate");
    assert_eq!(
        Challenge::negotiate(Some(&[])).to_header_value(),
        "Negotiate"
    );
    assert_eq!(
        Credentials::negotiate(Some(b"\x60\x82\x01")).to_string(),
        "Negotiate YIIB"
    );
    assert_eq!(
        Challenge::negotiate(Some(b"\xa1")).to_string(),
        "Negotiate oQ=="
    );
}

#[test]
fn base64_padding_is_optional() {
    let padded = Credentials::parse(b"Negotiate oQ==").unwrap();
    let unpadded = Credentials::parse(b"Negotiate oQ").unwrap();
    assert_eq!(padded.decode_token68().unwrap(), Some(vec![0xa1]));
    assert_eq!(unpadded.decode_token68().unwrap(), Some(vec![0xa1]));
}

#[test]
fn invalid_base64() {
    for (value, position) in [
        (&b"Negotiate abc-def"[..], 3),
        (b"Negotiate a.bc", 1),
        (b"Negotiate a", 1),
        (b"Negotiate abcde=", 5),
    ] {
        let err = Credentials::parse(value)
            .unwrap()
            .decode_token68()
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.position()),
            (HeaderErrorKind::InvalidBase64, position),
            "{value:?}: {err}"
        );
    }
}

#[test]
fn error_unterminated_quote() {
    assert_eq!(
        challenge_error(br#"Basic realm="abc"#),
        (HeaderErrorKind::UnterminatedQuotedString, 12)
    );
    assert_eq!(
        challenge_error(br#"Basic realm="abc\"#),
        (HeaderErrorKind::UnterminatedQuotedString, 12)
    );
    assert_eq!(
        challenge_error(br#"Basic realm="a", b=", Negotiate"#),
        (HeaderErrorKind::UnterminatedQuotedString, 19)
    );
}

#[test]
fn error_bad_char_in_token() {
    assert_eq!(
        challenge_error(b"Nego@tiate"),
        (HeaderErrorKind::InvalidTokenChar, 4)
    );
    assert_eq!(
        challenge_error(b"Basic\"realm\""),
        (HeaderErrorKind::InvalidTokenChar, 5)
    );
    assert_eq!(
        challenge_error(b"Basic realm=a/b"),
        (HeaderErrorKind::InvalidTokenChar, 13)
    );
    assert_eq!(
        challenge_error(b"Basic re@lm=x"),
        (HeaderErrorKind::InvalidTokenChar, 8)
    );
    assert_eq!(
        challenge_error(b"Basic realm=x, Neg@"),
        (HeaderErrorKind::InvalidTokenChar, 18)
    );
    assert_eq!(
        credentials_error(b"Basic re(lm=x"),
        (HeaderErrorKind::InvalidTokenChar, 8)
    );
}

#[test]
fn error_missing_value() {
    assert_eq!(
        challenge_error(b"Basic charset=UTF-8, realm="),
        (HeaderErrorKind::ExpectedParamValue, 27)
    );
    assert_eq!(
        challenge_error(b"Basic a=b, realm= , x=y"),
        (HeaderErrorKind::ExpectedParamValue, 18)
    );
    assert_eq!(
        credentials_error(b"Digest nonce=1, realm=\t"),
        (HeaderErrorKind::ExpectedParamValue, 23)
    );
    assert_eq!(
        challenge_error(b"Negotiate abc==d"),
        (HeaderErrorKind::ExpectedParamValue, 14)
    );
}

#[test]
fn basic_realm_equals_is_a_token68() {
    // `realm=` matches token68 (RFC 9110 §11.2), so `Basic realm=` is grammatical: a Basic
    // challenge with a token68, not a parameter without a value.
    assert_eq!(
        challenges("Basic realm="),
        [challenge("Basic", AuthData::Token68("realm=".into()))]
    );
    assert_eq!(
        Credentials::parse(b"Basic realm=").unwrap().token68(),
        Some("realm=")
    );
    // A parameter after it has no scheme to belong to.
    assert_eq!(
        challenge_error(b"Basic realm=, charset=UTF-8"),
        (HeaderErrorKind::ParamWithoutScheme, 14)
    );
}

#[test]
fn error_param_without_scheme() {
    assert_eq!(
        challenge_error(b"realm=x"),
        (HeaderErrorKind::ParamWithoutScheme, 0)
    );
    assert_eq!(
        challenge_error(b", realm = x"),
        (HeaderErrorKind::ParamWithoutScheme, 2)
    );
    assert_eq!(
        challenge_error(b"Negotiate, realm=\"x\""),
        (HeaderErrorKind::ParamWithoutScheme, 11)
    );
    assert_eq!(
        challenge_error(b"Negotiate abc=, b=c"),
        (HeaderErrorKind::ParamWithoutScheme, 16)
    );
}

#[test]
fn error_no_scheme() {
    assert_eq!(
        challenge_error(b"=abc"),
        (HeaderErrorKind::ExpectedScheme, 0)
    );
    assert_eq!(
        challenge_error(b"Negotiate, \"x\""),
        (HeaderErrorKind::ExpectedScheme, 11)
    );
    assert_eq!(
        credentials_error(b"=abc"),
        (HeaderErrorKind::ExpectedScheme, 0)
    );
}

#[test]
fn error_nul_byte() {
    assert_eq!(
        challenge_error(b"Negotiate\0"),
        (HeaderErrorKind::ControlChar, 9)
    );
    assert_eq!(challenge_error(b"\0"), (HeaderErrorKind::ControlChar, 0));
    assert_eq!(
        challenge_error(b"Basic realm=\"a\0b\""),
        (HeaderErrorKind::InvalidQuotedChar, 14)
    );
    assert_eq!(
        challenge_error(b"Basic realm=\"a\\\0b\""),
        (HeaderErrorKind::InvalidQuotedChar, 15)
    );
    assert_eq!(
        credentials_error(b"Negotiate YII\0"),
        (HeaderErrorKind::ControlChar, 13)
    );
}

#[test]
fn error_header_injection() {
    assert_eq!(
        challenge_error(b"Basic realm=\"x\"\r\nSet-Cookie: a=b"),
        (HeaderErrorKind::ControlChar, 15)
    );
    assert_eq!(
        challenge_error(b"Basic realm=\"x\ny\""),
        (HeaderErrorKind::InvalidQuotedChar, 14)
    );
    assert_eq!(
        challenge_error(b"Basic realm=x\x7f"),
        (HeaderErrorKind::ControlChar, 13)
    );
}

#[test]
fn error_non_ascii() {
    assert_eq!(
        challenge_error("Basic réalm=x".as_bytes()),
        (HeaderErrorKind::NonAscii, 7)
    );
    assert_eq!(
        challenge_error("Négotiate".as_bytes()),
        (HeaderErrorKind::NonAscii, 1)
    );
    assert_eq!(
        challenge_error(b"Basic realm=\xe9"),
        (HeaderErrorKind::NonAscii, 12)
    );
    assert_eq!(
        challenge_error(b"Basic realm=\"\xe9\""),
        (HeaderErrorKind::InvalidUtf8, 13)
    );
    assert_eq!(
        credentials_error(b"Negotiate YII\xff"),
        (HeaderErrorKind::NonAscii, 13)
    );
}

#[test]
fn error_after_element() {
    assert_eq!(
        challenge_error(b"Basic realm=\"x\" y"),
        (HeaderErrorKind::ExpectedComma, 16)
    );
    assert_eq!(
        challenge_error(b"Basic realm=\"x\"y"),
        (HeaderErrorKind::ExpectedComma, 15)
    );
    assert_eq!(
        challenge_error(b"Basic realm=x y"),
        (HeaderErrorKind::ExpectedComma, 14)
    );
    assert_eq!(
        challenge_error(b"Foo abc def"),
        (HeaderErrorKind::ExpectedEquals, 8)
    );
    assert_eq!(
        credentials_error(b"Digest a=b, c"),
        (HeaderErrorKind::ExpectedEquals, 13)
    );
    assert_eq!(
        credentials_error(b"Digest a=b, Basic x"),
        (HeaderErrorKind::ExpectedEquals, 18)
    );
}

#[test]
fn error_trailing_data_after_credentials() {
    assert_eq!(
        credentials_error(b"Negotiate,"),
        (HeaderErrorKind::TrailingData, 9)
    );
    assert_eq!(
        credentials_error(b"Negotiate ,"),
        (HeaderErrorKind::TrailingData, 10)
    );
    assert_eq!(
        credentials_error(b"Negotiate abc, def"),
        (HeaderErrorKind::TrailingData, 13)
    );
}

#[test]
fn error_empty_credentials() {
    assert_eq!(credentials_error(b""), (HeaderErrorKind::Empty, 0));
    assert_eq!(credentials_error(b" \t"), (HeaderErrorKind::Empty, 2));
}

#[test]
fn error_duplicate_param() {
    assert_eq!(
        challenge_error(b"Digest realm=a, nonce=b, REALM=c"),
        (HeaderErrorKind::DuplicateParam, 25)
    );
    assert_eq!(
        credentials_error(b"Digest a=1, a=1"),
        (HeaderErrorKind::DuplicateParam, 12)
    );
    let err = AuthenticationInfo::parse(b"nc=1, NC=2").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::DuplicateParam, 6)
    );
    // The same name in two challenges is fine.
    assert_eq!(challenges("Basic realm=a, Digest realm=b").len(), 2);
}

#[test]
fn error_too_long() {
    let mut value = b"Negotiate ".to_vec();
    value.resize(MAX_VALUE_LEN, b'A');
    assert!(Credentials::parse(&value).is_ok());
    value.push(b'A');
    assert_eq!(
        credentials_error(&value),
        (HeaderErrorKind::TooLong, MAX_VALUE_LEN)
    );
    assert_eq!(
        challenge_error(&value),
        (HeaderErrorKind::TooLong, MAX_VALUE_LEN)
    );
}

#[test]
fn error_names_the_line() {
    let err = parse_challenges([&b"Negotiate"[..], b"NTLM", b"Basic realm=\"x"]).unwrap_err();
    assert_eq!(err.kind(), HeaderErrorKind::UnterminatedQuotedString);
    assert_eq!(err.position(), 12);
    assert_eq!(err.line(), Some(2));
    assert_eq!(
        err.to_string(),
        "unterminated quoted string at byte 12 (found '\"') in header line 3"
    );
    let err = Credentials::parse(b"Negotiate\0").unwrap_err();
    assert_eq!(err.line(), None);
    assert_eq!(err.found(), Some(0));
    assert_eq!(
        err.to_string(),
        "control character outside a quoted string at byte 9 (found byte 0x00)"
    );
}

#[test]
fn scheme() {
    assert_eq!(Scheme::new("Negotiate").unwrap(), Scheme::NEGOTIATE);
    assert_ne!(Scheme::NTLM, Scheme::NEGOTIATE);
    let err = Scheme::new("").unwrap_err();
    assert_eq!((err.kind(), err.position()), (HeaderErrorKind::Empty, 0));
    let err = Scheme::new("Nego tiate").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::InvalidTokenChar, 4)
    );
    let err = Scheme::new("Nego\ntiate").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::ControlChar, 4)
    );

    let mut set = std::collections::HashSet::new();
    set.insert(Scheme::new("NEGOTIATE").unwrap());
    assert!(set.contains(&Scheme::NEGOTIATE));
    assert!(!set.contains(&Scheme::BEARER));
    assert_eq!("basic".parse::<Scheme>().unwrap(), Scheme::BASIC);
}

#[test]
fn auth_param_new_checks() {
    assert!(AuthParam::new("realm", "a \"b\" \t\\ ü").is_ok());
    let err = AuthParam::new("re alm", "x").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::InvalidTokenChar, 2)
    );
    let err = AuthParam::new("realm", "a\r\nb").unwrap_err();
    assert_eq!(
        (err.kind(), err.position()),
        (HeaderErrorKind::InvalidQuotedChar, 1)
    );
}

#[test]
fn helpers() {
    assert!(is_token("Negotiate"));
    assert!(!is_token(""));
    assert!(!is_token("a b"));
    assert!(is_token68("abc=="));
    assert!(is_token68("a/b+"));
    assert!(!is_token68("=="));
    assert!(!is_token68("a=b"));
    let mut out = String::new();
    write_quoted_string(&mut out, r#"a"b\c"#);
    assert_eq!(out, r#""a\"b\\c""#);
}

#[test]
fn empty_param_list_formats_as_bare_scheme() {
    let credentials = Credentials::new(Scheme::BASIC, AuthData::Params(Vec::new()));
    assert_eq!(credentials.to_header_value(), "Basic");
    assert_eq!(format_challenges(&[]), "");
}

#[test]
fn debug_hides_token68() {
    let credentials = Credentials::parse(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
    let debug = format!("{credentials:?}");
    assert!(!debug.contains("QWxh"), "{debug}");
    assert!(debug.contains("Token68(<28 characters>)"), "{debug}");
}
