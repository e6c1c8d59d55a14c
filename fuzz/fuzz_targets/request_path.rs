//! The gate's request-path canonicaliser: idempotent, never yields a `.`/`..` segment, `//`,
//! or a segment that decodes to a `/`, and the path the router matches is the path the
//! access rules and CGI see.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_server::fuzzing::request_path(data));
