//! Arbitrary proxy auto-config scripts (then, after a NUL byte, a host) loaded into
//! QuickJS and `FindProxyForURL` called: an answer or an error within the limits,
//! never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_pac::fuzz_check(data));
