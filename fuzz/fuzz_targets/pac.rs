//! The PAC reader (AD's Privilege Attribute Certificate, MS-PAC): no panics, and the
//! buffers it finds lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::pac(data));
