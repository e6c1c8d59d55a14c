//! The forward proxy's parsers (host lists, CIDR ranges, proxy lists, PAC results,
//! `/proc/net/tcp` lines): no panics, and what parses formats back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_proto::fuzzing::forward_proxy(data));
