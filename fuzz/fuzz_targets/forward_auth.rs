//! The gate's forward-auth endpoint: the original request named by a front proxy's
//! headers, and the trusted front proxies' addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::fuzzing::forward_auth(data));
