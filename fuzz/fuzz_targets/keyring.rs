//! Feeds arbitrary bytes to the keyring (TOML) parser, and checks that whatever parses finds its
//! own credentials and never shows a password in its `Debug` output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerbside_client::keyring::fuzz_check(data));
