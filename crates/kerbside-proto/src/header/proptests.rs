//! Property tests: formatting then parsing gives back what was formatted, parsing never
//! panics, and parsing is stable under format → parse.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

fn token() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,10}"
}

fn token68() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,40}={0,2}"
}

/// Any value that can be written: visible ASCII (quotes, backslashes, commas, `=`), SP, HTAB
/// and some non-ASCII characters, possibly empty.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![token(), "[ \t!-~éü€漢]{0,16}", Just(String::new())]
}

fn params() -> impl Strategy<Value = Vec<AuthParam>> {
    prop::collection::vec((token(), value()), 1..6).prop_map(|pairs| {
        let mut seen = HashSet::new();
        pairs
            .into_iter()
            .filter(|(name, _)| seen.insert(name.to_ascii_lowercase()))
            .map(|(name, value)| AuthParam { name, value })
            .collect()
    })
}

fn data() -> impl Strategy<Value = AuthData> {
    prop_oneof![
        Just(AuthData::Empty),
        token68().prop_map(AuthData::Token68),
        params().prop_map(AuthData::Params),
    ]
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![
        Just(Scheme::NEGOTIATE),
        Just(Scheme::BASIC),
        token().prop_map(|t| Scheme::new(&t).unwrap()),
    ]
}

/// Bytes that often parse: the characters of the grammar, with a few that never should.
fn grammar_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(b"aAbZ09=,\" \t\\/+-".to_vec()),
            1 => any::<u8>(),
        ],
        0..40,
    )
}

proptest! {
    #[test]
    fn challenges_round_trip(challenges in prop::collection::vec((scheme(), data()), 0..5)) {
        let challenges: Vec<Challenge> =
            challenges.into_iter().map(|(scheme, data)| Challenge::new(scheme, data)).collect();
        let formatted = format_challenges(&challenges);
        prop_assert_eq!(parse_challenges([formatted.as_bytes()]).unwrap(), challenges.clone());
        // The same challenges one per line.
        let lines: Vec<String> = challenges.iter().map(Challenge::to_header_value).collect();
        prop_assert_eq!(parse_challenges(lines.iter().map(|l| l.as_bytes())).unwrap(), challenges);
    }

    #[test]
    fn credentials_round_trip(scheme in scheme(), data in data()) {
        let credentials = Credentials::new(scheme, data);
        let formatted = credentials.to_header_value();
        prop_assert_eq!(Credentials::parse(formatted.as_bytes()).unwrap(), credentials);
    }

    #[test]
    fn authentication_info_round_trip(params in prop::option::of(params())) {
        let info = AuthenticationInfo { params: params.unwrap_or_default() };
        let formatted = info.to_header_value();
        prop_assert_eq!(AuthenticationInfo::parse(formatted.as_bytes()).unwrap(), info);
    }

    #[test]
    fn negotiate_round_trip(token in prop::collection::vec(any::<u8>(), 1..200)) {
        let challenge = Challenge::negotiate(Some(&token));
        let parsed = parse_challenges([challenge.to_header_value().as_bytes()]).unwrap();
        prop_assert_eq!(parsed[0].decode_token68().unwrap(), Some(token));
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_challenges([&bytes[..]]);
        let _ = Credentials::parse(&bytes);
        let _ = AuthenticationInfo::parse(&bytes);
        let _ = Scheme::new(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn reparse_is_stable(bytes in grammar_soup()) {
        if let Ok(parsed) = parse_challenges([&bytes[..]]) {
            let formatted = format_challenges(&parsed);
            prop_assert_eq!(parse_challenges([formatted.as_bytes()]).unwrap(), parsed);
        }
        if let Ok(parsed) = Credentials::parse(&bytes) {
            let _ = parsed.decode_token68();
            prop_assert_eq!(Credentials::parse(parsed.to_header_value().as_bytes()).unwrap(), parsed);
        }
        if let Ok(parsed) = AuthenticationInfo::parse(&bytes) {
            prop_assert_eq!(
                AuthenticationInfo::parse(parsed.to_header_value().as_bytes()).unwrap(),
                parsed
            );
        }
    }

    #[test]
    fn errors_point_inside_the_value(bytes in grammar_soup()) {
        for err in [
            parse_challenges([&bytes[..]]).err(),
            Credentials::parse(&bytes).err(),
            AuthenticationInfo::parse(&bytes).err(),
        ].into_iter().flatten() {
            prop_assert!(err.position() <= bytes.len());
            prop_assert_eq!(err.found(), bytes.get(err.position()).copied());
        }
    }
}
