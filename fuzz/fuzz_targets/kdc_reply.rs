//! A KDC's answer to `kerbside doctor`'s probe (KRB-ERROR → server time, error code):
//! no panics, and what parses is in range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::kdc_reply(data));
