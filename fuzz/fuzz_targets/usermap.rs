//! Feeds arbitrary text to the user-map file parser, and checks that whatever parses
//! is formatted into text that parses back to the same map, which maps each listed
//! principal to its user.
#![no_main]

use kerbside_server::usermap::{MapFile, UserMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(map) = MapFile::parse(&text) {
        let again = MapFile::parse(&map.to_string()).expect("a formatted map parses");
        assert_eq!(again, map);
        let users = UserMap::File(map.clone());
        for (principal, user) in map.iter() {
            assert_eq!(users.map(principal).as_deref(), Some(user));
        }
    }
    for line in text.lines() {
        let _ = UserMap::StripRealm { realms: Vec::new() }.map(line);
    }
});
