//! The tunnel's browser guard (Host, Origin, Sec-Fetch-Site): no panics, and what it
//! lets through names the listener.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::local_guard(data));
