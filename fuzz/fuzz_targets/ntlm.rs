//! Feeds arbitrary bytes to every NTLM message parser and to both NTLM state machines, and
//! checks that whatever parses encodes back into the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::ntlm(data));
