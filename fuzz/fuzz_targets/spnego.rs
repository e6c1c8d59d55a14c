//! Feeds arbitrary bytes to the SPNEGO token parsers and the SPNEGO/NTLM acceptor and
//! initiator, and checks that whatever parses encodes back into the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::spnego(data));
