//! Feeds arbitrary bytes to the RFC 5929 `tls-server-end-point` channel-binding code as a DER
//! certificate, and checks that whatever is accepted gives the prefix followed by the digest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::cert_binding(data));
