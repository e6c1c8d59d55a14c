//! NTLMv2 cryptography (MS-NLMP §3.3.2, §3.4): the one-way functions, the NTLMv2 response,
//! session keys, the MIC, channel-bindings hashes, and session security with extended session
//! security (signing and sealing, §3.4.4.2 and §3.4.3), which SPNEGO's mechListMIC needs.
//!
//! Nothing here is NTLMv1 or LM: those are not implemented, on purpose.

use hmac::{Hmac, KeyInit, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::{Rc4, StreamCipher};
use std::fmt;
use subtle::ConstantTimeEq;

use super::message::{utf16_encode, NegotiateFlags};
use super::NtlmError;

/// The NT hash of a password: NTOWFv1, MD4 of its UTF-16LE encoding (MS-NLMP §3.3.1).
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16_encode(password)).into()
}

/// NTOWFv2 (MS-NLMP §3.3.2): HMAC-MD5 keyed with the NT hash over the upper-cased user name
/// followed by the domain name as given.
pub fn ntowfv2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut identity = utf16_encode(&uppercase(user));
    identity.extend_from_slice(&utf16_encode(domain));
    hmac_md5(nt_hash, &[&identity])
}

/// cntlm's `PassNTLMv2` (`cntlm -H -u USER -d DOMAIN`): NTOWFv2 of the password with the
/// domain upper-cased too (cntlm upper-cases user and domain together), so it answers for
/// `USER` in the domain `DOMAIN` spelt in capitals, which is what a client holding it sends
/// (NetBIOS domain names are compared without regard to case).
pub fn ntlmv2_hash(password: &str, user: &str, domain: &str) -> [u8; 16] {
    ntowfv2(&nt_hash(password), user, &uppercase(domain))
}

/// A name upper-cased the way NTOWFv2 upper-cases the user name (see [`ntowfv2`]).
pub fn uppercase_name(name: &str) -> String {
    uppercase(name)
}

/// Upper-cases each character that has a one-character upper case, as Windows'
/// `RtlUpcaseUnicodeString` does (so `ß` stays `ß`).
fn uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// The LMv2 response (MS-NLMP §3.3.2): HMAC-MD5 over both challenges, then the client challenge.
pub fn lmv2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let mac = hmac_md5(response_key, &[server_challenge, client_challenge]);
    let mut out = [0; 24];
    out[..16].copy_from_slice(&mac);
    out[16..].copy_from_slice(client_challenge);
    out
}

/// NTProofStr (MS-NLMP §3.3.2): HMAC-MD5 keyed with NTOWFv2 over the server challenge and the
/// NTLMv2 client challenge blob.
pub fn nt_proof_str(response_key: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(response_key, &[server_challenge, blob])
}

/// SessionBaseKey for NTLMv2 (MS-NLMP §3.3.2), which is also the KeyExchangeKey (§3.4.5.1).
pub fn session_base_key(response_key: &[u8; 16], nt_proof_str: &[u8; 16]) -> [u8; 16] {
    hmac_md5(response_key, &[nt_proof_str])
}

/// RC4K (MS-NLMP §6): RC4 with a fresh key over 16 bytes; encrypts and decrypts the random
/// session key.
pub fn rc4k(key: &[u8; 16], data: &[u8; 16]) -> [u8; 16] {
    let mut out = *data;
    rc4(key).apply_keystream(&mut out);
    out
}

/// The MIC (MS-NLMP §3.1.5.1.2): HMAC-MD5 keyed with the exported session key over the three
/// messages, the AUTHENTICATE with its MIC field zeroed.
pub fn mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate_mic_zeroed: &[u8],
) -> [u8; 16] {
    hmac_md5(
        exported_session_key,
        &[negotiate, challenge, authenticate_mic_zeroed],
    )
}

/// The value of MsvAvChannelBindings (MS-NLMP §2.2.2.1) for GSS-API channel-bindings application
/// data (such as [`tls_server_end_point`](crate::channel_binding::tls_server_end_point)): MD5 of
/// the `gss_channel_bindings_struct` (RFC 2744 §3.11, RFC 4121 §4.1.1.2) with no addresses.
pub fn channel_bindings_hash(application_data: &[u8]) -> [u8; 16] {
    let len = u32::try_from(application_data.len()).unwrap_or(u32::MAX);
    let mut md5 = Md5::new();
    // initiator_addrtype, initiator_address.length, acceptor_addrtype, acceptor_address.length
    md5.update([0u8; 16]);
    md5.update(len.to_le_bytes());
    md5.update(application_data);
    md5.finalize().into()
}

/// Which end of the exchange a [`SessionSecurity`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (initiator).
    Client,
    /// The server (acceptor).
    Server,
}

const CLIENT_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// SIGNKEY (MS-NLMP §3.4.5.2) with extended session security, for messages sent by `sender`.
pub fn sign_key(exported_session_key: &[u8; 16], sender: Side) -> [u8; 16] {
    let magic = match sender {
        Side::Client => CLIENT_SIGN,
        Side::Server => SERVER_SIGN,
    };
    Md5::new()
        .chain_update(exported_session_key)
        .chain_update(magic)
        .finalize()
        .into()
}

/// SEALKEY (MS-NLMP §3.4.5.3) with extended session security, for messages sent by `sender`:
/// 16 bytes with NTLMSSP_NEGOTIATE_128, 7 with NTLMSSP_NEGOTIATE_56, 5 otherwise.
pub fn seal_key(flags: NegotiateFlags, exported_session_key: &[u8; 16], sender: Side) -> Vec<u8> {
    let len = if flags.contains(NegotiateFlags::KEY_128) {
        16
    } else if flags.contains(NegotiateFlags::KEY_56) {
        7
    } else {
        5
    };
    let magic = match sender {
        Side::Client => CLIENT_SEAL,
        Side::Server => SERVER_SEAL,
    };
    let key: [u8; 16] = Md5::new()
        .chain_update(&exported_session_key[..len])
        .chain_update(magic)
        .finalize()
        .into();
    key.to_vec()
}

/// One direction of session security: its signing key, RC4 state and sequence number.
struct Direction {
    sign_key: [u8; 16],
    seal: Rc4,
    seq: u32,
}

impl Direction {
    fn new(flags: NegotiateFlags, exported_session_key: &[u8; 16], sender: Side) -> Self {
        Self {
            sign_key: sign_key(exported_session_key, sender),
            seal: rc4(&seal_key(flags, exported_session_key, sender)),
            seq: 0,
        }
    }

    /// The signature of `message` (MS-NLMP §3.4.4.2): version 1, the first eight bytes of the
    /// HMAC, RC4-sealed with key exchange, and the sequence number, which then advances.
    fn signature(&mut self, key_exch: bool, message: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        self.seq = self.seq.wrapping_add(1);
        let mac = hmac_md5(&self.sign_key, &[&seq, message]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&mac[..8]);
        if key_exch {
            self.seal.apply_keystream(&mut checksum);
        }
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&1u32.to_le_bytes());
        out[4..12].copy_from_slice(&checksum);
        out[12..].copy_from_slice(&seq);
        out
    }
}

/// NTLM session security with extended session security (MS-NLMP §3.4): GSS_GetMIC,
/// GSS_VerifyMIC, GSS_Wrap and GSS_Unwrap for one established context. Sequence numbers and
/// RC4 states advance with every call, per direction.
pub struct SessionSecurity {
    key_exch: bool,
    outgoing: Direction,
    incoming: Direction,
}

impl fmt::Debug for SessionSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecurity")
            .field("key_exch", &self.key_exch)
            .field("outgoing_seq", &self.outgoing.seq)
            .field("incoming_seq", &self.incoming.seq)
            .finish_non_exhaustive()
    }
}

impl SessionSecurity {
    /// Session security for a finished exchange; refused unless extended session security
    /// (the only signing kerbside implements) was negotiated.
    pub fn extended(
        side: Side,
        flags: NegotiateFlags,
        exported_session_key: &[u8; 16],
    ) -> Result<Self, NtlmError> {
        if !flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::NoSessionSecurity);
        }
        Ok(Self::new(side, flags, exported_session_key))
    }

    /// Session security for `side`, from the negotiated flags and the exported session key.
    pub fn new(side: Side, flags: NegotiateFlags, exported_session_key: &[u8; 16]) -> Self {
        let (out, inc) = match side {
            Side::Client => (Side::Client, Side::Server),
            Side::Server => (Side::Server, Side::Client),
        };
        Self {
            key_exch: flags.contains(NegotiateFlags::KEY_EXCH),
            outgoing: Direction::new(flags, exported_session_key, out),
            incoming: Direction::new(flags, exported_session_key, inc),
        }
    }

    /// GSS_GetMIC: the 16-byte signature of `message`, with the next outgoing sequence number.
    pub fn get_mic(&mut self, message: &[u8]) -> [u8; 16] {
        self.outgoing.signature(self.key_exch, message)
    }

    /// GSS_VerifyMIC: checks the peer's signature of `message` against the next incoming
    /// sequence number.
    pub fn verify_mic(&mut self, message: &[u8], signature: &[u8]) -> Result<(), NtlmError> {
        let expected = self.incoming.signature(self.key_exch, message);
        if bool::from(expected.ct_eq(signature)) {
            Ok(())
        } else {
            Err(NtlmError::BadSignature)
        }
    }

    /// GSS_WrapEx with confidentiality: the sealed message and its signature (computed over the
    /// plaintext, sealed after it with the same RC4 state).
    pub fn wrap(&mut self, message: &[u8]) -> (Vec<u8>, [u8; 16]) {
        let mut sealed = message.to_vec();
        self.outgoing.seal.apply_keystream(&mut sealed);
        let signature = self.outgoing.signature(self.key_exch, message);
        (sealed, signature)
    }

    /// GSS_UnwrapEx: unseals a message from the peer and checks its signature.
    pub fn unwrap(&mut self, sealed: &[u8], signature: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let mut message = sealed.to_vec();
        self.incoming.seal.apply_keystream(&mut message);
        let expected = self.incoming.signature(self.key_exch, &message);
        if bool::from(expected.ct_eq(signature)) {
            Ok(message)
        } else {
            Err(NtlmError::BadSignature)
        }
    }
}

/// HMAC-MD5 over the concatenation of `parts`.
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    #[allow(clippy::expect_used)]
    let mut mac =
        <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// An RC4 state keyed with `key` (5 to 16 bytes here).
fn rc4(key: &[u8]) -> Rc4 {
    #[allow(clippy::expect_used)]
    Rc4::new_from_slice(key).expect("RC4 takes keys of 1 to 256 bytes")
}

/// Constant-time equality of two byte strings.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
