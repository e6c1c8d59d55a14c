//! Feeds arbitrary bytes to every authentication-header parser, and checks that whatever parses
//! is formatted into something that parses back to the same value.
#![no_main]

use kerbside_proto::header::{
    format_challenges, parse_challenges, AuthenticationInfo, Credentials,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The whole input as one field line, then split on LF as several field lines.
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    for input in [vec![data], lines] {
        if let Ok(challenges) = parse_challenges(input.iter().copied()) {
            let formatted = format_challenges(&challenges);
            let reparsed = parse_challenges([formatted.as_bytes()]);
            assert_eq!(reparsed.as_ref(), Ok(&challenges), "{formatted:?}");
            for challenge in &challenges {
                let _ = challenge.decode_token68();
            }
        }
    }

    if let Ok(credentials) = Credentials::parse(data) {
        let formatted = credentials.to_header_value();
        assert_eq!(
            Credentials::parse(formatted.as_bytes()),
            Ok(credentials.clone()),
            "{formatted:?}"
        );
        let _ = credentials.decode_token68();
    }

    if let Ok(info) = AuthenticationInfo::parse(data) {
        let formatted = info.to_header_value();
        assert_eq!(
            AuthenticationInfo::parse(formatted.as_bytes()),
            Ok(info.clone()),
            "{formatted:?}"
        );
    }
});
