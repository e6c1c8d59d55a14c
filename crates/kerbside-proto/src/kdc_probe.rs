//! A KDC probe: the smallest AS-REQ (RFC 4120 §5.4.1) for a client name no realm
//! has, and the KDC's answer read as far as its clock and error code.
//!
//! `kerbside doctor` sends it to each KDC of a realm, over UDP and over TCP, to learn
//! whether the KDC answers at all and what time it thinks it is: every `KRB-ERROR`
//! carries the KDC's `stime`, so the clock skew is measured against the KDC itself,
//! with no ticket and no password. Nothing secret is sent or read.
//!
//! ```
//! use kerbside_proto::kdc_probe::{as_req, parse_reply, KdcReplyError};
//!
//! let request = as_req("EXAMPLE.COM", 1234, 1_800_000_000);
//! assert_eq!(request[0], 0x6a); // [APPLICATION 10] AS-REQ
//! assert_eq!(parse_reply(b"\x7e\x00"), Err(KdcReplyError::Malformed));
//! ```

use std::fmt;

use crate::der::{encode, Reader};

/// The client name of the probe: no realm has it, so the KDC answers with
/// `KDC_ERR_C_PRINCIPAL_UNKNOWN` (or, for another realm, `KDC_ERR_WRONG_REALM`).
pub const PROBE_CLIENT: &str = "kerbside-doctor-probe";

/// `KDC_ERR_C_PRINCIPAL_UNKNOWN`.
pub const ERR_C_PRINCIPAL_UNKNOWN: i32 = 6;
/// `KDC_ERR_PREAUTH_REQUIRED`.
pub const ERR_PREAUTH_REQUIRED: i32 = 25;
/// `KRB_AP_ERR_SKEW`.
pub const ERR_SKEW: i32 = 37;
/// `KDC_ERR_WRONG_REALM`.
pub const ERR_WRONG_REALM: i32 = 68;

fn int(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    // Minimal two's complement: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    encode(0x02, &bytes[start..])
}

fn explicit(n: u8, inner: Vec<u8>) -> Vec<u8> {
    encode(0xa0 | n, &inner)
}

fn general_string(text: &str) -> Vec<u8> {
    encode(0x1b, text.as_bytes())
}

fn principal_name(name_type: i64, parts: &[&str]) -> Vec<u8> {
    let strings: Vec<u8> = parts.iter().flat_map(|p| general_string(p)).collect();
    encode(
        0x30,
        &[
            explicit(0, int(name_type)),
            explicit(1, encode(0x30, &strings)),
        ]
        .concat(),
    )
}

/// `KerberosTime` for seconds since the Unix epoch: `YYYYMMDDHHMMSSZ`.
fn kerberos_time(unix: i64) -> Vec<u8> {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let text = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    encode(0x18, text.as_bytes())
}

/// A time for people: `2026-12-07 15:04:05 UTC` for seconds since the epoch.
pub fn utc_text(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's `civil_from_days`: a day count since 1970-01-01 to a date.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An AS-REQ for [`PROBE_CLIENT`] in `realm`, asking for `krbtgt/realm` until
/// `till` (seconds since the epoch; the local clock plus a day will do), with
/// AES and no pre-authentication.
pub fn as_req(realm: &str, nonce: u32, till: i64) -> Vec<u8> {
    let etypes: Vec<u8> = [18, 17, 20, 19].iter().flat_map(|e| int(*e)).collect();
    let body = encode(
        0x30,
        &[
            // kdc-options: a BIT STRING of 32 bits, none set.
            explicit(0, encode(0x03, &[0, 0, 0, 0, 0])),
            explicit(1, principal_name(1, &[PROBE_CLIENT])),
            explicit(2, general_string(realm)),
            explicit(3, principal_name(2, &["krbtgt", realm])),
            explicit(5, kerberos_time(till)),
            explicit(7, int(i64::from(nonce & 0x7fff_ffff))),
            explicit(8, encode(0x30, &etypes)),
        ]
        .concat(),
    );
    let req = encode(
        0x30,
        &[explicit(1, int(5)), explicit(2, int(10)), explicit(4, body)].concat(),
    );
    encode(0x6a, &req)
}

/// A message framed for TCP (RFC 4120 §7.2.2): a four-byte big-endian length first.
pub fn tcp_frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    [&len.to_be_bytes()[..], message].concat()
}

/// What a KDC answered the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdcReply {
    /// The KDC's clock: seconds since the Unix epoch.
    pub server_time: i64,
    /// The microseconds of `server_time`.
    pub server_usec: u32,
    /// The Kerberos error code (RFC 4120 §7.5.9), e.g. 6 for an unknown client.
    pub error_code: i32,
    /// The KDC's `e-text`, if it sent one and it is text.
    pub text: Option<String>,
}

/// Why a reply is not a `KRB-ERROR` this probe can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdcReplyError {
    /// Not a Kerberos message at all (another service on the port?).
    NotKerberos,
    /// An AS-REP: the KDC issued a ticket for the probe's name (which should not exist).
    Issued,
    /// A `KRB-ERROR` that does not follow RFC 4120 §5.9.1 (or not strict DER).
    Malformed,
    /// A `KRB-ERROR` whose `stime` is not a `YYYYMMDDHHMMSSZ` time.
    BadTime,
}

impl fmt::Display for KdcReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotKerberos => "the answer is not a Kerberos message",
            Self::Issued => "the KDC issued a ticket for the probe's name",
            Self::Malformed => "a malformed KRB-ERROR",
            Self::BadTime => "a KRB-ERROR with a malformed server time",
        })
    }
}

impl std::error::Error for KdcReplyError {}

/// The four-byte length of a TCP reply (RFC 4120 §7.2.2), read from its first bytes;
/// `None` until four bytes are there, or when the high bit (reserved) is set.
pub fn tcp_length(prefix: &[u8]) -> Option<usize> {
    let bytes: [u8; 4] = prefix.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(bytes);
    if len & 0x8000_0000 != 0 {
        return None;
    }
    usize::try_from(len).ok()
}

fn small_int(bytes: &[u8]) -> Result<i64, KdcReplyError> {
    let minimal = match bytes {
        [] => false,
        [0x00, next, ..] => next & 0x80 != 0,
        [0xff, next, ..] => next & 0x80 == 0,
        _ => true,
    };
    if !minimal || bytes.len() > 8 {
        return Err(KdcReplyError::Malformed);
    }
    let start: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    Ok(bytes.iter().fold(start, |n, b| (n << 8) | i64::from(*b)))
}

fn inner(field: &[u8], tag: u8) -> Result<&[u8], KdcReplyError> {
    crate::der::whole(field, tag).map_err(|_| KdcReplyError::Malformed)
}

/// Reads `YYYYMMDDHHMMSSZ` into seconds since the epoch.
fn parse_time(text: &[u8]) -> Result<i64, KdcReplyError> {
    if text.len() != 15 || text[14] != b'Z' || !text[..14].iter().all(u8::is_ascii_digit) {
        return Err(KdcReplyError::BadTime);
    }
    let num = |a: usize, b: usize| {
        text[a..b]
            .iter()
            .fold(0_i64, |n, d| n * 10 + i64::from(d - b'0'))
    };
    let (y, mo, d, h, mi, s) = (
        num(0, 4),
        num(4, 6),
        num(6, 8),
        num(8, 10),
        num(10, 12),
        num(12, 14),
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(KdcReplyError::BadTime);
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Reads a KDC's reply to [`as_req`] (without TCP framing).
pub fn parse_reply(message: &[u8]) -> Result<KdcReply, KdcReplyError> {
    match message.first() {
        Some(0x7e) => {}
        Some(0x6b) => return Err(KdcReplyError::Issued),
        _ => return Err(KdcReplyError::NotKerberos),
    }
    let body = crate::der::whole(message, 0x7e).map_err(|_| KdcReplyError::Malformed)?;
    let seq = crate::der::whole(body, 0x30).map_err(|_| KdcReplyError::Malformed)?;
    let mut der = Reader::new(seq);
    let m = |_| KdcReplyError::Malformed;
    let pvno = small_int(inner(der.expect(0xa0).map_err(m)?, 0x02)?)?;
    let msg_type = small_int(inner(der.expect(0xa1).map_err(m)?, 0x02)?)?;
    if pvno != 5 || msg_type != 30 {
        return Err(KdcReplyError::Malformed);
    }
    der.optional(0xa2).map_err(m)?;
    der.optional(0xa3).map_err(m)?;
    let stime = parse_time(inner(der.expect(0xa4).map_err(m)?, 0x18)?)?;
    let susec = small_int(inner(der.expect(0xa5).map_err(m)?, 0x02)?)?;
    let code = small_int(inner(der.expect(0xa6).map_err(m)?, 0x02)?)?;
    let (Ok(server_usec), Ok(error_code)) = (u32::try_from(susec), i32::try_from(code)) else {
        return Err(KdcReplyError::Malformed);
    };
    if server_usec >= 1_000_000 {
        return Err(KdcReplyError::Malformed);
    }
    let mut text = None;
    while der.peek().is_some() {
        let (tag, contents) = der.any().map_err(m)?;
        if tag == 0xab {
            text = crate::der::whole(contents, 0x1b)
                .ok()
                .and_then(|t| std::str::from_utf8(t).ok())
                .map(|t| t.trim_end_matches('\0').to_owned());
        }
    }
    Ok(KdcReply {
        server_time: stime,
        server_usec,
        error_code,
        text,
    })
}

/// For `cargo fuzz` and the property tests: reading any input never panics, and a
/// time that parses lies within what `YYYYMMDDHHMMSSZ` can say.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(reply) = parse_reply(data) {
        assert!(reply.server_usec < 1_000_000);
        assert!(reply.server_time < 253_402_300_800 + 86_400);
    }
    let _ = tcp_length(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A KRB-ERROR as a KDC sends it, from its fields.
    fn krb_error(stime: &str, susec: i64, code: i64, etext: Option<&str>) -> Vec<u8> {
        let mut fields = vec![
            explicit(0, int(5)),
            explicit(1, int(30)),
            explicit(4, encode(0x18, stime.as_bytes())),
            explicit(5, int(susec)),
            explicit(6, int(code)),
            explicit(9, general_string("EXAMPLE.COM")),
            explicit(10, principal_name(2, &["krbtgt", "EXAMPLE.COM"])),
        ];
        if let Some(t) = etext {
            fields.push(explicit(11, general_string(t)));
        }
        encode(0x7e, &encode(0x30, &fields.concat()))
    }

    #[test]
    fn reads_a_kdc_error() {
        let reply = parse_reply(&krb_error(
            "20261207150405Z",
            123_456,
            6,
            Some("CLIENT_NOT_FOUND"),
        ))
        .unwrap();
        assert_eq!(reply.server_time, 1_796_655_845);
        assert_eq!(utc_text(reply.server_time), "2026-12-07 15:04:05 UTC");
        assert_eq!(reply.server_usec, 123_456);
        assert_eq!(reply.error_code, ERR_C_PRINCIPAL_UNKNOWN);
        assert_eq!(reply.text.as_deref(), Some("CLIENT_NOT_FOUND"));
    }

    #[test]
    fn refuses_what_is_not_a_kdc_error() {
        assert_eq!(parse_reply(b""), Err(KdcReplyError::NotKerberos));
        assert_eq!(parse_reply(b"HTTP/1.1"), Err(KdcReplyError::NotKerberos));
        assert_eq!(parse_reply(b"\x6b\x00"), Err(KdcReplyError::Issued));
        assert_eq!(
            parse_reply(&krb_error("2026120715040Z", 0, 6, None)),
            Err(KdcReplyError::BadTime)
        );
        assert_eq!(
            parse_reply(&krb_error("20261207150405Z", 1_000_000, 6, None)),
            Err(KdcReplyError::Malformed)
        );
    }

    #[test]
    fn the_request_is_an_as_req_with_the_realm() {
        let req = as_req("EXAMPLE.COM", 7, 1_796_655_845);
        assert_eq!(req[0], 0x6a);
        let text = String::from_utf8_lossy(&req);
        assert!(text.contains("EXAMPLE.COM"));
        assert!(text.contains(PROBE_CLIENT));
        assert!(text.contains("20261207150405Z"));
        assert_eq!(tcp_length(&tcp_frame(&req)), Some(req.len()));
        assert_eq!(tcp_length(&[0x80, 0, 0, 1]), None);
    }

    proptest! {
        #[test]
        fn times_go_both_ways(unix in 0_i64..253_402_300_799) {
            let encoded = kerberos_time(unix);
            prop_assert_eq!(parse_time(&encoded[2..]), Ok(unix));
        }

        #[test]
        fn any_error_fields_read_back(
            unix in 0_i64..253_402_300_799,
            susec in 0_i64..1_000_000,
            code in -1000_i64..1000,
        ) {
            let stime = kerberos_time(unix);
            let text = std::str::from_utf8(&stime[2..]).unwrap().to_owned();
            let reply = parse_reply(&krb_error(&text, susec, code, None)).unwrap();
            prop_assert_eq!(reply.server_time, unix);
            prop_assert_eq!(i64::from(reply.server_usec), susec);
            prop_assert_eq!(i64::from(reply.error_code), code);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_check(&data);
        }

        #[test]
        fn never_panics_on_damaged_errors(cut in 0_usize..120, flip in 0_usize..120, bit in 0_u8..8) {
            let mut bytes = krb_error("20261207150405Z", 5, 6, Some("x"));
            if let Some(b) = bytes.get_mut(flip) {
                *b ^= 1 << bit;
            }
            bytes.truncate(cut);
            fuzz_check(&bytes);
        }
    }
}
