//! The gate's `replay-cache` Redis URLs (one server, Sentinels, Cluster nodes): no
//! panics, and an error never repeats the password it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::fuzzing::redis_url(data));
