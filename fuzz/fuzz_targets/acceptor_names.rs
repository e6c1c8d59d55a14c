//! Reads arbitrary bytes as acceptor names and a request's `Host`, and checks tickets
//! against them: nothing panics, and `{HOSTNAME}` lets in a ticket for that host only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::acceptor_names(data));
