//! The gate's groups file: what parses writes back to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::fuzzing::groups(data));
