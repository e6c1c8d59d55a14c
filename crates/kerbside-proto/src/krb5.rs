//! Just enough of a Kerberos token to find its authenticator: a strict DER walker
//! from a Negotiate token (SPNEGO `NegTokenInit` or `NegTokenResp`, or a bare
//! Kerberos GSS token) down to the AP-REQ's encrypted authenticator.
//!
//! A server that keeps its own replay cache (instead of MIT's file cache) keys it on
//! the authenticator's ciphertext: it is what the client encrypted for this one
//! request, it cannot be changed without the decryption failing, and it is the same
//! however the AP-REQ is wrapped (a bare krb5 token, SPNEGO, SPNEGO with other
//! mechanism types listed). Nothing is decrypted here; GSSAPI still checks the token.
//!
//! The walk is strict (RFC 4120 §5 and RFC 4178 over X.690 DER): definite, minimal
//! lengths; every field in order; nothing after a value. A token that does not fit
//! is an [`Krb5TokenError`] naming why, and the caller falls back to a path that
//! does not need the authenticator. It never panics on any input.
//!
//! ```
//! use kerbside_proto::krb5::{authenticator, Krb5TokenError};
//!
//! assert_eq!(authenticator(b"\x60\x01"), Err(Krb5TokenError::Truncated));
//! ```

use std::fmt;

use crate::der::{self, DerError, Reader};
use crate::spnego::Oid;

/// SPNEGO, 1.3.6.1.5.5.2.
const OID_SPNEGO: &[u8] = Oid::SPNEGO;
/// Kerberos 5, 1.2.840.113554.1.2.2 (RFC 1964).
pub(crate) const OID_KRB5: &[u8] = Oid::KRB5;
/// Kerberos 5 as Windows 2000 misspelled it, 1.2.840.48018.1.2.2.
pub(crate) const OID_KRB5_MS: &[u8] = Oid::MS_KRB5;
/// RFC 1964 §1.1.1: the TOK_ID of an AP-REQ.
const TOK_ID_AP_REQ: [u8; 2] = [0x01, 0x00];

/// How the AP-REQ was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapping {
    /// A Kerberos GSS token (`0x60`, the krb5 OID, TOK_ID `01 00`).
    Krb5,
    /// The `mechToken` of a SPNEGO `NegTokenInit`.
    SpnegoInit,
    /// The `responseToken` of a SPNEGO `NegTokenResp` (a later leg).
    SpnegoResp,
}

/// The encrypted authenticator of an AP-REQ found in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticator<'a> {
    /// How the token carried the AP-REQ.
    pub wrapping: Wrapping,
    /// The authenticator's encryption type (`etype`, e.g. 18 for aes256-cts-hmac-sha1-96).
    pub etype: i64,
    /// The authenticator's ciphertext (`EncryptedData.cipher`).
    pub cipher: &'a [u8],
}

/// Why no authenticator was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Krb5TokenError {
    /// The input ends inside a value.
    Truncated,
    /// A length is indefinite, not minimal, or does not fit in memory.
    BadLength,
    /// A tag other than the one the grammar has at this place.
    UnexpectedTag {
        /// The tag the grammar wants.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes follow a complete value.
    TrailingBytes,
    /// The token is for another mechanism (NTLM, NegoEx, ...).
    NotKerberos,
    /// A SPNEGO token without a mechanism token.
    NoMechToken,
    /// A Kerberos token that is not an AP-REQ (TOK_ID other than `01 00`).
    NotApReq,
    /// `pvno` is not 5 or `msg-type` is not 14.
    BadApReqHeader,
    /// An INTEGER that is empty, not minimal, or beyond 64 bits.
    BadInteger,
}

impl fmt::Display for Krb5TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the token ends inside a value"),
            Self::BadLength => f.write_str("a length is not definite and minimal DER"),
            Self::UnexpectedTag { expected, found } => {
                write!(f, "tag {found:#04x} where {expected:#04x} belongs")
            }
            Self::TrailingBytes => f.write_str("bytes after a complete value"),
            Self::NotKerberos => f.write_str("not a Kerberos token"),
            Self::NoMechToken => f.write_str("a SPNEGO token without a mechanism token"),
            Self::NotApReq => f.write_str("a Kerberos token that is not an AP-REQ"),
            Self::BadApReqHeader => f.write_str("an AP-REQ with a wrong pvno or msg-type"),
            Self::BadInteger => f.write_str("an INTEGER that is not minimal DER"),
        }
    }
}

impl std::error::Error for Krb5TokenError {}

/// Finds the encrypted authenticator of the AP-REQ in a Negotiate token: SPNEGO
/// `NegTokenInit` → `mechToken`, or `NegTokenResp` → `responseToken`, or a bare
/// Kerberos GSS token; then AP-REQ → `authenticator` → `cipher`.
pub fn authenticator(token: &[u8]) -> Result<Authenticator<'_>, Krb5TokenError> {
    let (wrapping, ap_req) = find_ap_req(token)?;
    let (_, authenticator) = ap_req_parts(ap_req)?;
    let (etype, _, cipher) = encrypted_data(authenticator)?;
    Ok(Authenticator {
        wrapping,
        etype,
        cipher,
    })
}

/// Which of the service's keys the ticket in an AP-REQ is encrypted with: the ticket's
/// `enc-part` etype and kvno, as the KDC chose them. A server whose keytab lacks this
/// kvno cannot open the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketKey {
    /// The encryption type of the ticket (the service key's type).
    pub etype: i64,
    /// The service key's version number, if the KDC sent one (it always does in
    /// practice).
    pub kvno: Option<i64>,
}

/// Finds the AP-REQ in a Negotiate token like [`authenticator`] and reads its ticket's
/// `enc-part` header: `Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1],
/// sname [2], enc-part [3] EncryptedData }`.
pub fn ticket_key(token: &[u8]) -> Result<TicketKey, Krb5TokenError> {
    let (_, ap_req) = find_ap_req(token)?;
    let (ticket, _) = ap_req_parts(ap_req)?;
    let mut der = Reader::new(whole(whole(ticket, 0x61)?, 0x30)?);
    let tkt_vno = integer(whole(der.expect(0xa0)?, 0x02)?)?;
    if tkt_vno != 5 {
        return Err(Krb5TokenError::BadApReqHeader);
    }
    der.expect(0xa1)?; // realm
    der.expect(0xa2)?; // sname
    let enc_part = der.expect(0xa3)?;
    der.end()?;
    let (etype, kvno, _) = encrypted_data(enc_part)?;
    Ok(TicketKey { etype, kvno })
}

/// The AP-REQ in a Negotiate token (without its TOK_ID), and how it was wrapped.
fn find_ap_req(token: &[u8]) -> Result<(Wrapping, &[u8]), Krb5TokenError> {
    match token.first() {
        Some(0xa1) => {
            let resp = whole(token, 0xa1)?;
            let mech_token = neg_token_resp(resp)?;
            Ok((Wrapping::SpnegoResp, krb5_gss_token(mech_token)?))
        }
        _ => {
            let (oid, inner) = gss_framing(token)?;
            if oid == OID_SPNEGO {
                let init = whole(inner, 0xa0)?;
                let mech_token = neg_token_init(init)?;
                Ok((Wrapping::SpnegoInit, krb5_gss_token(mech_token)?))
            } else {
                Ok((Wrapping::Krb5, krb5_after_oid(oid, inner)?))
            }
        }
    }
}

/// The mechanism token inside a SPNEGO `NegTokenInit` (the bytes GSSAPI hands to
/// the mechanism), or the token itself if it is not SPNEGO-framed.
pub fn spnego_mech_token(token: &[u8]) -> Result<&[u8], Krb5TokenError> {
    let (oid, inner) = gss_framing(token)?;
    if oid == OID_SPNEGO {
        neg_token_init(whole(inner, 0xa0)?)
    } else {
        Ok(token)
    }
}

/// A first Negotiate token that a server can answer with the Kerberos mechanism alone,
/// without GSSAPI's SPNEGO layer: what [`kerberos_first`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KerberosFirst<'a> {
    /// The AP-REQ (DER), without its GSS framing and TOK_ID.
    pub ap_req: &'a [u8],
    /// `None` for a bare Kerberos GSS token; for SPNEGO, the OID (contents octets) of
    /// the mechanism the client listed first, which the reply names as `supportedMech`
    /// (1.2.840.113554.1.2.2, or 1.2.840.48018.1.2.2 as Windows lists it).
    pub spnego_mech: Option<&'a [u8]>,
}

/// The one shape of first token whose exchange is settled by the Kerberos AP-REQ
/// alone, as RFC 4178 §3.2 lets an acceptor settle it when the initiator's
/// *preferred* mechanism takes its optimistic token: either a bare Kerberos GSS token
/// (RFC 4121 §4.1: `60`, the krb5 OID, TOK_ID `01 00`, AP-REQ), or a SPNEGO
/// `NegTokenInit` whose first `mechTypes` entry is Kerberos (either OID), whose
/// `mechToken` is such a Kerberos token, and which carries no `mechListMIC`. Anything
/// else (`None`) needs the full SPNEGO negotiation. Every element is checked strictly
/// (minimal DER, every `mechTypes` entry an OID, nothing after a value); the AP-REQ
/// itself is left to Kerberos.
pub fn kerberos_first(token: &[u8]) -> Option<KerberosFirst<'_>> {
    let (oid, inner) = gss_framing(token).ok()?;
    if oid == OID_KRB5 {
        return Some(KerberosFirst {
            ap_req: ap_req_after_tok_id(inner)?,
            spnego_mech: None,
        });
    }
    if oid != OID_SPNEGO {
        return None;
    }
    let mut der = Reader::new(whole(whole(inner, 0xa0).ok()?, 0x30).ok()?);
    let mut types = Reader::new(whole(der.expect(0xa0).ok()?, 0x30).ok()?);
    let first = types.expect(0x06).ok()?;
    while !types.rest().is_empty() {
        types.expect(0x06).ok()?;
    }
    if first != OID_KRB5 && first != OID_KRB5_MS {
        return None;
    }
    der.optional(0xa1).ok()?; // reqFlags
    let mech_token = whole(der.optional(0xa2).ok()??, 0x04).ok()?;
    if der.optional(0xa3).ok()?.is_some() {
        return None; // a mechListMIC in a first token: the full negotiation decides
    }
    der.end().ok()?;
    let (inner_oid, inner) = gss_framing(mech_token).ok()?;
    if inner_oid != OID_KRB5 {
        return None;
    }
    Some(KerberosFirst {
        ap_req: ap_req_after_tok_id(inner)?,
        spnego_mech: Some(first),
    })
}

/// What follows TOK_ID `01 00` (an AP-REQ), if that is the TOK_ID.
fn ap_req_after_tok_id(inner: &[u8]) -> Option<&[u8]> {
    match inner.split_at_checked(2) {
        Some((id, ap_req)) if id == TOK_ID_AP_REQ && !ap_req.is_empty() => Some(ap_req),
        _ => None,
    }
}

/// The server's answer to a [`KerberosFirst`] token once the AP-REQ is accepted, as
/// MIT's SPNEGO and krb5 mechanisms frame it: the AP-REP (if the client asked for
/// mutual authentication) in a Kerberos GSS token (TOK_ID `02 00`); for SPNEGO, inside
/// a `NegTokenResp` with `negState` accept-completed and `supportedMech` the client's
/// first mechanism (no `mechListMIC`: the preferred mechanism was taken). `None` for a
/// bare token without AP-REP (there is nothing to send).
pub fn kerberos_reply(spnego_mech: Option<&[u8]>, ap_rep: Option<&[u8]>) -> Option<Vec<u8>> {
    let framed = ap_rep.map(|rep| {
        der::encode(
            0x60,
            &[der::encode(0x06, OID_KRB5), vec![0x02, 0x00], rep.to_vec()].concat(),
        )
    });
    let Some(mech) = spnego_mech else {
        return framed;
    };
    let supported = if mech == OID_KRB5_MS {
        Oid::known(OID_KRB5_MS)
    } else {
        Oid::known(OID_KRB5)
    };
    Some(
        crate::spnego::NegTokenResp {
            neg_state: Some(crate::spnego::NegState::AcceptCompleted),
            supported_mech: Some(supported),
            response_token: framed,
            mech_list_mic: None,
        }
        .encode(),
    )
}

/// The shared reader's errors, in this walker's words: every malformed length or tag is
/// a [`Krb5TokenError::BadLength`].
impl From<DerError> for Krb5TokenError {
    fn from(e: DerError) -> Self {
        match e {
            DerError::Truncated => Self::Truncated,
            DerError::MultiByteTag
            | DerError::IndefiniteLength
            | DerError::LengthTooLarge
            | DerError::NonMinimalLength => Self::BadLength,
            DerError::UnexpectedTag { expected, found } => Self::UnexpectedTag { expected, found },
            DerError::TrailingBytes => Self::TrailingBytes,
        }
    }
}

/// The contents of the single value `bytes` holds, which must have `tag`.
fn whole(bytes: &[u8], tag: u8) -> Result<&[u8], Krb5TokenError> {
    Ok(der::whole(bytes, tag)?)
}

/// RFC 2743 §3.1 framing: `[APPLICATION 0] { thisMech OID, innerToken }`; the
/// inner token is the rest of the contents, not a DER value of its own.
fn gss_framing(token: &[u8]) -> Result<(&[u8], &[u8]), Krb5TokenError> {
    let framed = whole(token, 0x60)?;
    let mut der = Reader::new(framed);
    let oid = der.expect(0x06)?;
    Ok((oid, der.rest()))
}

/// A Kerberos GSS token with an AP-REQ: `0x60`, the krb5 OID, `01 00`, AP-REQ.
fn krb5_gss_token(token: &[u8]) -> Result<&[u8], Krb5TokenError> {
    let (oid, inner) = gss_framing(token)?;
    krb5_after_oid(oid, inner)
}

fn krb5_after_oid<'a>(oid: &[u8], inner: &'a [u8]) -> Result<&'a [u8], Krb5TokenError> {
    if oid != OID_KRB5 && oid != OID_KRB5_MS {
        return Err(Krb5TokenError::NotKerberos);
    }
    match inner.split_at_checked(2) {
        None => Err(Krb5TokenError::Truncated),
        Some((id, _)) if id != TOK_ID_AP_REQ => Err(Krb5TokenError::NotApReq),
        Some((_, ap_req)) => Ok(ap_req),
    }
}

/// RFC 4178 §4.2.1 `NegTokenInit` (the contents of `[0]`) → `mechToken`.
fn neg_token_init(init: &[u8]) -> Result<&[u8], Krb5TokenError> {
    let mut der = Reader::new(whole(init, 0x30)?);
    der.expect(0xa0)?; // mechTypes
    der.optional(0xa1)?; // reqFlags
    let mech_token = der.optional(0xa2)?;
    der.optional(0xa3)?; // mechListMIC
    der.end()?;
    whole(mech_token.ok_or(Krb5TokenError::NoMechToken)?, 0x04)
}

/// RFC 4178 §4.2.2 `NegTokenResp` (the contents of `[1]`) → `responseToken`.
fn neg_token_resp(resp: &[u8]) -> Result<&[u8], Krb5TokenError> {
    let mut der = Reader::new(whole(resp, 0x30)?);
    der.optional(0xa0)?; // negState
    der.optional(0xa1)?; // supportedMech
    let response = der.optional(0xa2)?;
    der.optional(0xa3)?; // mechListMIC
    der.end()?;
    whole(response.ok_or(Krb5TokenError::NoMechToken)?, 0x04)
}

/// RFC 4120 §5.5.1 `AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0], msg-type [1],
/// ap-options [2], ticket [3], authenticator [4] EncryptedData }` → the ticket (with
/// its tag) and the authenticator (the contents of `[4]`).
fn ap_req_parts(ap_req: &[u8]) -> Result<(&[u8], &[u8]), Krb5TokenError> {
    let mut der = Reader::new(whole(whole(ap_req, 0x6e)?, 0x30)?);
    let pvno = integer(whole(der.expect(0xa0)?, 0x02)?)?;
    let msg_type = integer(whole(der.expect(0xa1)?, 0x02)?)?;
    if pvno != 5 || msg_type != 14 {
        return Err(Krb5TokenError::BadApReqHeader);
    }
    whole(der.expect(0xa2)?, 0x03)?; // ap-options: a BIT STRING
    let ticket = der.expect(0xa3)?; // ticket: [APPLICATION 1]
    whole(ticket, 0x61)?;
    let authenticator = der.expect(0xa4)?;
    der.end()?;
    Ok((ticket, authenticator))
}

/// `EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL,
/// cipher [2] OCTET STRING }`.
fn encrypted_data(bytes: &[u8]) -> Result<(i64, Option<i64>, &[u8]), Krb5TokenError> {
    let mut der = Reader::new(whole(bytes, 0x30)?);
    let etype = integer(whole(der.expect(0xa0)?, 0x02)?)?;
    let kvno = der
        .optional(0xa1)?
        .map(|kvno| integer(whole(kvno, 0x02)?))
        .transpose()?;
    let cipher = whole(der.expect(0xa2)?, 0x04)?;
    der.end()?;
    Ok((etype, kvno, cipher))
}

/// A DER INTEGER's contents: minimal two's complement, at most 8 bytes.
fn integer(bytes: &[u8]) -> Result<i64, Krb5TokenError> {
    let minimal = match bytes {
        [] => false,
        [0x00, next, ..] => next & 0x80 != 0,
        [0xff, next, ..] => next & 0x80 == 0,
        _ => true,
    };
    if !minimal || bytes.len() > 8 {
        return Err(Krb5TokenError::BadInteger);
    }
    let negative = bytes[0] & 0x80 != 0;
    let start: i64 = if negative { -1 } else { 0 };
    Ok(bytes.iter().fold(start, |n, b| (n << 8) | i64::from(*b)))
}

/// DER encoders for tests: wrap contents in a tag with a minimal length.
#[cfg(test)]
pub(crate) mod encode {
    /// `tag`, a minimal DER length, `contents`.
    pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        crate::der::encode(tag, contents)
    }

    /// A small DER INTEGER.
    pub fn int(n: u8) -> Vec<u8> {
        if n & 0x80 != 0 {
            tlv(0x02, &[0, n])
        } else {
            tlv(0x02, &[n])
        }
    }

    /// An AP-REQ with this authenticator cipher (and a dummy ticket).
    pub fn ap_req(cipher: &[u8]) -> Vec<u8> {
        let ticket = tlv(0x61, &tlv(0x30, &tlv(0xa0, &int(5))));
        let enc = tlv(
            0x30,
            &[
                tlv(0xa0, &int(18)),
                tlv(0xa1, &int(2)),
                tlv(0xa2, &tlv(0x04, cipher)),
            ]
            .concat(),
        );
        let body = [
            tlv(0xa0, &int(5)),
            tlv(0xa1, &int(14)),
            tlv(0xa2, &tlv(0x03, &[0, 0x20, 0, 0, 0])),
            tlv(0xa3, &ticket),
            tlv(0xa4, &enc),
        ]
        .concat();
        tlv(0x6e, &tlv(0x30, &body))
    }

    /// A Kerberos GSS token around an AP-REQ.
    pub fn krb5_token(ap_req: &[u8]) -> Vec<u8> {
        tlv(
            0x60,
            &[tlv(0x06, super::OID_KRB5), vec![1, 0], ap_req.to_vec()].concat(),
        )
    }

    /// SPNEGO `NegTokenInit` with these mechanism OIDs and this mechanism token.
    pub fn spnego_init(mechs: &[&[u8]], mech_token: &[u8]) -> Vec<u8> {
        let types: Vec<u8> = mechs.iter().flat_map(|m| tlv(0x06, m)).collect();
        let init = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x30, &types)),
                tlv(0xa2, &tlv(0x04, mech_token)),
            ]
            .concat(),
        );
        tlv(
            0x60,
            &[tlv(0x06, super::OID_SPNEGO), tlv(0xa0, &init)].concat(),
        )
    }

    /// SPNEGO `NegTokenResp` with this response token.
    pub fn spnego_resp(response: &[u8]) -> Vec<u8> {
        tlv(
            0xa1,
            &tlv(
                0x30,
                &[tlv(0xa0, &[0x0a, 1, 1]), tlv(0xa2, &tlv(0x04, response))].concat(),
            ),
        )
    }

    pub(crate) use super::{OID_KRB5, OID_KRB5_MS};
}

/// Walks `data` as a token and panics if what it finds is not inside the input, or
/// if a found authenticator is not found again in a re-wrapped token; for the fuzz
/// target and the seed-replay test.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(found) = authenticator(data) {
        let start = found.cipher.as_ptr() as usize;
        let base = data.as_ptr() as usize;
        assert!(start >= base && start + found.cipher.len() <= base + data.len());
    }
    // The ticket's key is read from the same AP-REQ: no panic whatever it holds.
    let _ = ticket_key(data);
    // A first token answered without SPNEGO: its AP-REQ lies inside the input, and the
    // reply built for it is a NegTokenResp that parses back to the same mechanism.
    if let Some(first) = kerberos_first(data) {
        let start = first.ap_req.as_ptr() as usize;
        let base = data.as_ptr() as usize;
        assert!(start >= base && start + first.ap_req.len() <= base + data.len());
        if let Some(mech) = first.spnego_mech {
            let reply = kerberos_reply(Some(mech), Some(first.ap_req)).unwrap_or_default();
            let parsed = crate::spnego::NegTokenResp::parse(&reply);
            assert!(
                parsed.is_ok_and(|r| r.supported_mech.is_some_and(|m| m.der_contents() == mech))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use proptest::prelude::*;

    /// A token captured from MIT krb5 1.20 (`kerbside fetch` against the test realm):
    /// SPNEGO NegTokenInit around a krb5 AP-REQ.
    fn real_token() -> Vec<u8> {
        let text = include_str!("../testdata/spnego-ap-req.b64");
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap_or_default()
    }

    #[test]
    fn the_same_authenticator_is_found_however_it_is_wrapped() {
        let cipher = [7u8; 200];
        let ap = ap_req(&cipher);
        let raw = krb5_token(&ap);
        for (token, wrapping) in [
            (raw.clone(), Wrapping::Krb5),
            (spnego_init(&[OID_KRB5], &raw), Wrapping::SpnegoInit),
            (
                spnego_init(&[OID_KRB5_MS, OID_KRB5, &[0x2b, 6, 1]], &raw),
                Wrapping::SpnegoInit,
            ),
            (spnego_resp(&raw), Wrapping::SpnegoResp),
        ] {
            let found = authenticator(&token);
            assert_eq!(
                found,
                Ok(Authenticator {
                    wrapping,
                    etype: 18,
                    cipher: &cipher
                })
            );
        }
    }

    #[test]
    fn the_ticket_key_of_a_real_token_is_read() {
        let key = ticket_key(&real_token()).unwrap();
        assert_eq!(key.etype, 18, "{key:?}");
        assert!(key.kvno.is_some_and(|k| k >= 1), "{key:?}");
        // The dummy ticket of the encoder has no enc-part: named, not a panic.
        let bare = krb5_token(&ap_req(&[1; 8]));
        assert!(ticket_key(&bare).is_err());
    }

    #[test]
    fn a_real_token_round_trips() {
        let token = real_token();
        assert!(token.len() > 300, "testdata/spnego-ap-req.b64 went missing");
        let found = authenticator(&token).unwrap();
        assert_eq!(found.wrapping, Wrapping::SpnegoInit);
        assert!(found.cipher.len() > 50);
        // Unwrap the mech token by hand and find the same cipher in it, bare.
        let pos = token
            .windows(2)
            .position(|w| w == [0x60, 0x82])
            .and_then(|first| {
                token[first + 1..]
                    .windows(2)
                    .position(|w| w == [0x60, 0x82])
                    .map(|p| p + first + 1)
            })
            .unwrap();
        assert_eq!(spnego_mech_token(&token), Ok(&token[pos..]));
        let inner = authenticator(&token[pos..]).unwrap();
        assert_eq!(inner.wrapping, Wrapping::Krb5);
        assert_eq!(inner.cipher, found.cipher);
        // Re-wrapped with an extra mechanism type, still the same authenticator.
        let rewrapped = spnego_init(
            &[&[0x2b, 6, 1, 4, 1, 0x82, 0x37, 2, 2, 10], OID_KRB5],
            &token[pos..],
        );
        assert_eq!(authenticator(&rewrapped).unwrap().cipher, found.cipher);
        // Cut anywhere, it is refused, not misread.
        for cut in 0..token.len() {
            assert!(authenticator(&token[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn what_does_not_fit_is_refused_in_words() {
        let raw = krb5_token(&ap_req(b"x"));
        assert_eq!(authenticator(b""), Err(Krb5TokenError::Truncated));
        let mut trailing = raw.clone();
        trailing.push(0);
        assert_eq!(authenticator(&trailing), Err(Krb5TokenError::TrailingBytes));
        let ntlm = spnego_init(&[&[0x2b, 6, 1]], &raw);
        assert!(
            authenticator(&ntlm).is_ok(),
            "the mech list does not matter"
        );
        let other = tlv(0x60, &[tlv(0x06, &[0x2b, 6, 1]), vec![1, 0]].concat());
        assert_eq!(authenticator(&other), Err(Krb5TokenError::NotKerberos));
        let ap_rep = tlv(
            0x60,
            &[tlv(0x06, OID_KRB5), vec![2, 0], ap_req(b"x")].concat(),
        );
        assert_eq!(authenticator(&ap_rep), Err(Krb5TokenError::NotApReq));
        // A long-form length for a short value is not DER.
        let mut long = vec![0x60, 0x81, (raw.len() - 2) as u8];
        long.extend_from_slice(&raw[2..]);
        assert_eq!(authenticator(&long), Err(Krb5TokenError::BadLength));
        // BER's indefinite length neither.
        assert_eq!(
            authenticator(&[0x60, 0x80, 0, 0]),
            Err(Krb5TokenError::BadLength)
        );
        let no_token = tlv(
            0x60,
            &[
                tlv(0x06, OID_SPNEGO),
                tlv(
                    0xa0,
                    &tlv(0x30, &tlv(0xa0, &tlv(0x30, &tlv(0x06, OID_KRB5)))),
                ),
            ]
            .concat(),
        );
        assert_eq!(authenticator(&no_token), Err(Krb5TokenError::NoMechToken));
    }

    #[test]
    fn only_a_first_token_settled_by_kerberos_alone_skips_spnego() {
        let ap = ap_req(&[9; 40]);
        let raw = krb5_token(&ap);
        let first = kerberos_first(&raw).unwrap();
        assert_eq!((first.ap_req, first.spnego_mech), (&ap[..], None));
        for mech in [OID_KRB5, OID_KRB5_MS] {
            let init = spnego_init(&[mech, &[0x2b, 6, 1, 4, 1, 0x82, 0x37, 2, 2, 10]], &raw);
            let first = kerberos_first(&init).unwrap();
            assert_eq!((first.ap_req, first.spnego_mech), (&ap[..], Some(mech)));
        }
        // NTLM (or anything) first: SPNEGO must negotiate.
        let ntlm_first = spnego_init(&[&[0x2b, 6, 1, 4, 1, 0x82, 0x37, 2, 2, 10], OID_KRB5], &raw);
        assert_eq!(kerberos_first(&ntlm_first), None);
        // The Windows OID inside the mechanism token, IAKERB or another TOK_ID: not here.
        let ms_inner = tlv(
            0x60,
            &[tlv(0x06, OID_KRB5_MS), vec![1, 0], ap.clone()].concat(),
        );
        assert_eq!(kerberos_first(&spnego_init(&[OID_KRB5], &ms_inner)), None);
        assert_eq!(kerberos_first(&ms_inner), None);
        let ap_rep = tlv(
            0x60,
            &[tlv(0x06, OID_KRB5), vec![2, 0], ap.clone()].concat(),
        );
        assert_eq!(kerberos_first(&ap_rep), None);
        assert_eq!(kerberos_first(&spnego_init(&[OID_KRB5], &ap_rep)), None);
        // A later leg, a mechListMIC, a malformed mechTypes entry, trailing bytes.
        assert_eq!(kerberos_first(&spnego_resp(&raw)), None);
        let with_mic = {
            let types = tlv(0xa0, &tlv(0x30, &tlv(0x06, OID_KRB5)));
            let init = tlv(
                0x30,
                &[
                    types,
                    tlv(0xa2, &tlv(0x04, &raw)),
                    tlv(0xa3, &tlv(0x04, b"mic")),
                ]
                .concat(),
            );
            tlv(0x60, &[tlv(0x06, OID_SPNEGO), tlv(0xa0, &init)].concat())
        };
        assert_eq!(kerberos_first(&with_mic), None);
        // A mechTypes entry that is not an OID (an INTEGER).
        let types = tlv(
            0xa0,
            &tlv(0x30, &[tlv(0x06, OID_KRB5), tlv(0x02, &[1])].concat()),
        );
        let init = tlv(0x30, &[types, tlv(0xa2, &tlv(0x04, &raw))].concat());
        let bad_list = tlv(0x60, &[tlv(0x06, OID_SPNEGO), tlv(0xa0, &init)].concat());
        assert_eq!(kerberos_first(&bad_list), None);
        let mut trailing = raw.clone();
        trailing.push(0);
        assert_eq!(kerberos_first(&trailing), None);
        assert_eq!(kerberos_first(&krb5_token(&[])), None);
    }

    #[test]
    fn the_reply_is_framed_as_mit_frames_it() {
        let rep = [0x6f, 0x03, 0x30, 0x01, 0x00];
        // Bare: the AP-REP in a Kerberos GSS token, or nothing at all.
        let bare = kerberos_reply(None, Some(&rep)).unwrap();
        assert_eq!(
            bare,
            tlv(
                0x60,
                &[tlv(0x06, OID_KRB5), vec![2, 0], rep.to_vec()].concat()
            )
        );
        assert_eq!(kerberos_reply(None, None), None);
        // SPNEGO: accept-completed, the client's first mechanism, the framed AP-REP.
        for mech in [OID_KRB5, OID_KRB5_MS] {
            let reply = kerberos_reply(Some(mech), Some(&rep)).unwrap();
            let parsed = crate::spnego::NegTokenResp::parse(&reply).unwrap();
            assert_eq!(
                parsed.neg_state,
                Some(crate::spnego::NegState::AcceptCompleted)
            );
            assert_eq!(parsed.supported_mech.unwrap().der_contents(), mech);
            assert_eq!(parsed.response_token.as_deref(), Some(&bare[..]));
            assert_eq!(parsed.mech_list_mic, None);
            let without = kerberos_reply(Some(mech), None).unwrap();
            let parsed = crate::spnego::NegTokenResp::parse(&without).unwrap();
            assert_eq!(parsed.response_token, None);
        }
    }

    #[test]
    fn a_real_token_is_a_kerberos_first_token() {
        let token = real_token();
        let first = kerberos_first(&token).unwrap();
        assert_eq!(first.spnego_mech, Some(OID_KRB5));
        assert_eq!(first.ap_req.first(), Some(&0x6e));
        for cut in 0..token.len() {
            assert_eq!(kerberos_first(&token[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn integers_are_minimal() {
        assert_eq!(integer(&[5]), Ok(5));
        assert_eq!(integer(&[0, 0x80]), Ok(128));
        assert_eq!(integer(&[0xff]), Ok(-1));
        assert_eq!(integer(&[0, 5]), Err(Krb5TokenError::BadInteger));
        assert_eq!(integer(&[]), Err(Krb5TokenError::BadInteger));
        assert_eq!(integer(&[1; 9]), Err(Krb5TokenError::BadInteger));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_check(&data);
        }

        #[test]
        fn mutated_real_tokens_never_panic(pos in 0usize..2000, byte in any::<u8>()) {
            let mut token = real_token();
            if !token.is_empty() {
                let i = pos % token.len();
                token[i] = byte;
            }
            fuzz_check(&token);
        }

        #[test]
        fn any_ap_req_is_found_again_and_answered(cipher in proptest::collection::vec(any::<u8>(), 0..400)) {
            let ap = ap_req(&cipher);
            let token = spnego_init(&[OID_KRB5_MS, OID_KRB5], &krb5_token(&ap));
            let first = kerberos_first(&token);
            prop_assert_eq!(first.map(|f| f.ap_req), Some(&ap[..]));
            let reply = kerberos_reply(first.and_then(|f| f.spnego_mech), Some(&ap)).unwrap_or_default();
            let parsed = crate::spnego::NegTokenResp::parse(&reply);
            prop_assert!(parsed.is_ok_and(|r| r.supported_mech.is_some_and(|m| m.der_contents() == OID_KRB5_MS)));
        }

        #[test]
        fn any_cipher_is_found_again(cipher in proptest::collection::vec(any::<u8>(), 0..400)) {
            let token = spnego_init(&[OID_KRB5], &krb5_token(&ap_req(&cipher)));
            prop_assert_eq!(authenticator(&token).map(|a| a.cipher), Ok(&cipher[..]));
        }
    }
}
