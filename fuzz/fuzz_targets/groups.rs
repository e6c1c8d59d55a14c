//! Feeds arbitrary text to the gate's groups-file parser, and checks that whatever parses is
//! written back into a file that parses to the same groups.
#![no_main]

use kerbside_server::access::Groups;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(groups) = Groups::parse(&text) {
        let written = groups.to_string();
        match Groups::parse(&written) {
            Ok(again) => assert_eq!(again, groups, "{written:?}"),
            Err(error) => panic!("{written:?} does not parse back: {error}"),
        }
    }
});
