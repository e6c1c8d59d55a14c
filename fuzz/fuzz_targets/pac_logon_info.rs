//! The PAC's logon info (`KERB_VALIDATION_INFO`, NDR type serialization 1): no panics,
//! and no more groups than the input can hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::pac_logon_info(data));
