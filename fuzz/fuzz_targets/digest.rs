//! Feeds arbitrary bytes to the Digest client and server (as challenges, credentials and
//! Authentication-Info), and checks that whatever parses formats back into the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::digest(data));
