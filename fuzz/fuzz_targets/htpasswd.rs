//! Feeds arbitrary bytes to the htpasswd parser, and checks that
//! whatever parses formats back into the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::htpasswd(data));
