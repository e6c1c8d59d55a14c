//! The PROXY protocol header a load balancer sends first: no panics, a header never
//! longer than its input or the limits, its prefixes incomplete, its addresses encoded
//! back to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::proxy_protocol(data));
