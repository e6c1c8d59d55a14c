//! `Cookie` header parsing (finding and removing a cookie) and `Set-Cookie` formatting: no
//! panics, round trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::cookie(data));
