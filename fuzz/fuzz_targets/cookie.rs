//! Feeds arbitrary bytes to the `Cookie` header parser, and checks that every value it finds
//! is one `Set-Cookie` can send and the parser finds again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::cookie::fuzz_check(data));
