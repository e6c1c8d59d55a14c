//! Feeds arbitrary bytes as an `ntlm_auth` ntlm-server-1 answer to the reader, and checks
//! that a request made for any name keeps its lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::ntlm_helper(data));
