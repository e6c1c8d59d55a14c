//! Feeds arbitrary bytes to the `~/.netrc` parser, and checks that whatever parses is written
//! back into text that parses to the same value, and finds its own entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::netrc(data));
