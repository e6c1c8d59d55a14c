//! The Kerberos token walker (Negotiate token → AP-REQ authenticator): no panics, and
//! what it finds lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::krb5_token(data));
