//! Feeds arbitrary bytes to every authentication-header parser, and checks that whatever parses
//! is formatted into something that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::auth_header(data));
