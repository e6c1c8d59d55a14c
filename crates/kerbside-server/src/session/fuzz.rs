//! The `session` fuzz target's check: whatever opens seals and opens again, and no
//! error can carry part of the input.

use super::*;

/// The key of the `session` fuzz target and of its seed corpus.
#[doc(hidden)]
pub const FUZZ_KEY: [u8; KEY_LEN] = [0x5e; KEY_LEN];

/// The time at which the `session` fuzz target opens cookies: 2023-11-14T22:13:20Z.
#[doc(hidden)]
pub const FUZZ_NOW: u64 = 1_700_000_000;

/// Opens `data` as a cookie value and as `Cookie` header lines with [`FUZZ_KEY`] at
/// [`FUZZ_NOW`], and panics if what opens is not a session that seals and opens again to
/// the same principal, or if it fails with an error that could carry part of the input.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let codec = SessionCodec::new(SessionKeys::from_bytes(FUZZ_KEY));
    let now = UNIX_EPOCH + Duration::from_secs(FUZZ_NOW);
    let text = String::from_utf8_lossy(data);
    let check = |opened: Result<Option<Session>, SessionError>| match opened {
        Ok(Some(session)) => {
            assert!(session.expires > FUZZ_NOW);
            assert!(session.expires - session.issued <= DEFAULT_MAX_LIFETIME.as_secs());
            let lifetime = Duration::from_secs(session.expires - FUZZ_NOW);
            let (value, sealed) = codec
                .seal(&session.principal, lifetime, now)
                .unwrap_or_else(|e| panic!("an opened session does not seal again: {e}"));
            assert_eq!(codec.open(&value, now).ok(), Some(sealed));
        }
        Ok(None) => {}
        // Errors about a cookie carry nothing of the request, so cannot show a value.
        Err(
            SessionError::Malformed
            | SessionError::BadMac
            | SessionError::Expired { .. }
            | SessionError::UnsupportedVersion(_)
            | SessionError::Cookie(CookieError::LineTooLong { .. }),
        ) => {}
        Err(other) => panic!("opening a cookie cannot fail with {other:?}"),
    };
    check(codec.open(&text, now).map(Some));
    let mut headers = http::HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            headers.append(http::header::COOKIE, value);
        }
    }
    check(codec.from_request(&headers, now));
}
