//! The keytab reader (MIT's FILE format 0x0502): no panics, and what it reads writes
//! back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::keytab(data));
