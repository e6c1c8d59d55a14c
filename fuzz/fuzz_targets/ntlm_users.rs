//! Feeds arbitrary bytes to the NTLM users-file parser, and checks that whatever parses is
//! written back into lines that parse to the same entries, and finds its own entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::ntlm_users(data));
