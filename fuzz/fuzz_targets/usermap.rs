//! The gate's principal → user map file: round trip and self-lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::fuzzing::usermap(data));
