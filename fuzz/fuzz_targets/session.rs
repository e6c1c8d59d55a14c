//! Opens arbitrary bytes as a session cookie value, and as `Cookie` header lines, with a fixed
//! key; checks that nothing panics and that whatever opens seals and opens again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::session::fuzz_check(data));
