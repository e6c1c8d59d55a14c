//! The gate's replay cache file: no panics, what parses encodes back up to a torn
//! tail, and the live entries are alive, unique and within the window.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::replay_file(data));
