//! NTLM (MS-NLMP), NTLMv2 only, in pure Rust and sans IO: the message codec, the
//! cryptography, and both ends of the exchange as typed states.
//!
//! - [`message`]: NEGOTIATE, CHALLENGE and AUTHENTICATE, negotiate flags, AV pairs.
//! - [`crypto`]: NT hash, NTOWFv2, the NTLMv2 response, session keys, MIC, channel-bindings
//!   hash, and session security (GetMIC/VerifyMIC, Wrap/Unwrap) with extended session security.
//! - [`client`]: [`client::start`] → [`client::ExpectChallenge`] → [`client::Established`], and
//!   [`client::NtlmInitiator`], the same as a [`Mechanism`](crate::Mechanism).
//! - [`server`]: [`server::ExpectNegotiate`] → [`server::ExpectAuthenticate`] →
//!   [`server::NtlmAuthenticated`].
//! - [`users`]: the gate's NTLM users file (`DOMAIN\user:NTHASH`).
//! - [`helper`]: Samba's `ntlm_auth` ntlm-server-1 protocol, for a domain controller to check
//!   the NTLMv2 response ([`server::ExpectSessionKey`]).
//! - [`wbinfo`]: the groups `wbinfo --user-sids` gives a domain account, read after the
//!   domain controller accepted a logon.
//!
//! Time (FILETIME), client and server challenges and the random session key are arguments:
//! nothing here reads a clock or a random number generator. LM and NTLMv1 responses are never
//! produced, and a server refuses them.
//!
//! ```
//! use kerbside_proto::scheme::ntlm::{client, server};
//!
//! let credentials = client::NtlmCredentials::from_password("EXAMPLE", "alice", "s3cret");
//! let hash = kerbside_proto::scheme::ntlm::crypto::nt_hash("s3cret");
//! let now = 133_000_000_000_000_000; // a FILETIME
//! let (negotiate, expect_challenge) = client::start(credentials, client::ClientInputs {
//!     timestamp_fallback: now,
//!     client_challenge: [1; 8],
//!     exported_session_key: [2; 16],
//!     channel_bindings: None,
//!     target_spn: Some("HTTP/www.example.com".into()),
//!     workstation: None,
//! })?;
//! let acceptor = server::ExpectNegotiate::new(server::ServerInputs {
//!     server_challenge: [3; 8],
//!     timestamp: now,
//!     netbios_domain: "EXAMPLE".into(),
//!     netbios_computer: "WWW".into(),
//!     dns_domain: "example.com".into(),
//!     dns_computer: "www.example.com".into(),
//! });
//! let (challenge, expect_authenticate) = acceptor.handle_negotiate(&negotiate)?;
//! let (authenticate, _established) = expect_challenge.handle_challenge(&challenge)?;
//! let lookup = |user: &str, _domain: &str| user.eq_ignore_ascii_case("alice").then_some(hash);
//! let who = expect_authenticate.handle_authenticate(&authenticate, server::VerifyInputs {
//!     now,
//!     max_skew_secs: 300,
//!     channel_bindings: server::ChannelBindingCheck::IfPresent,
//!     expected_channel_bindings: None,
//!     lookup: &lookup,
//! })?;
//! assert_eq!((who.domain.as_str(), who.user.as_str()), ("EXAMPLE", "alice"));
//! # Ok::<(), kerbside_proto::scheme::ntlm::NtlmError>(())
//! ```

pub mod client;
pub mod crypto;
pub mod helper;
pub mod message;
pub mod server;
pub mod users;
pub mod wbinfo;

/// A time as NTLM carries it: a Windows FILETIME, 100 ns units since 1601-01-01 UTC, from
/// the time since the Unix epoch (the caller reads the clock).
pub fn filetime(since_unix_epoch: std::time::Duration) -> u64 {
    const UNIX_TO_1601_SECS: u64 = 11_644_473_600;
    (since_unix_epoch.as_secs() + UNIX_TO_1601_SECS) * 10_000_000
        + u64::from(since_unix_epoch.subsec_nanos() / 100)
}

#[cfg(test)]
mod tests;

pub use message::MessageError;

/// The scheme name as it appears in HTTP headers.
pub const SCHEME: &str = "NTLM";

/// Why an NTLM exchange failed, on either side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    /// The client's NEGOTIATE message does not parse.
    #[error("the client's NTLM NEGOTIATE is malformed: {0}")]
    MalformedNegotiate(#[source] MessageError),
    /// The server's CHALLENGE message does not parse.
    #[error("the server's NTLM CHALLENGE is malformed: {0}")]
    MalformedChallenge(#[source] MessageError),
    /// The client's AUTHENTICATE message does not parse.
    #[error("the client's NTLM AUTHENTICATE is malformed: {0}")]
    MalformedAuthenticate(#[source] MessageError),
    /// A message could not be encoded (a name longer than NTLM's 16-bit lengths allow).
    #[error("cannot encode the NTLM {message} message: {source}")]
    Encode {
        /// Which message.
        message: &'static str,
        /// What is wrong.
        #[source]
        source: MessageError,
    },
    /// The server offers only what kerbside refuses: OEM strings or NTLMv1 (no target info).
    #[error("the server offers only NTLMv1/OEM NTLM ({detail}); kerbside speaks NTLMv2 only")]
    ServerOffersOnlyNtlmV1 {
        /// What is missing from its CHALLENGE.
        detail: &'static str,
    },
    /// The client's AUTHENTICATE uses OEM (code page) strings.
    #[error("the client answered in OEM (code page) NTLM; kerbside requires Unicode NTLMv2")]
    ClientOffersOnlyOem,
    /// The client answered with an NTLMv1 (24-byte) NT response.
    #[error(
        "the client sent an NTLMv1 response, which is refused: configure it for NTLMv2 only \
         (on Windows, LmCompatibilityLevel 3 or higher)"
    )]
    NtlmV1Response,
    /// The client tried an anonymous (null session) logon.
    #[error("the client tried an anonymous (null session) NTLM logon, which is refused")]
    Anonymous,
    /// The users file (or other store) has no NT hash for the user.
    #[error("no NTLM credentials are known for the user {domain}\\{user}")]
    UnknownUser {
        /// The user name the client sent.
        user: String,
        /// The domain name the client sent.
        domain: String,
    },
    /// The NTLMv2 response does not match the stored NT hash and this exchange's challenge.
    #[error(
        "the NTLMv2 response of {domain}\\{user} does not verify: a wrong password, or an \
         AUTHENTICATE message replayed from another exchange"
    )]
    WrongResponse {
        /// The user name the client sent.
        user: String,
        /// The domain name the client sent.
        domain: String,
    },
    /// The timestamp in the NTLMv2 response is too far from the server's clock.
    #[error(
        "the NTLMv2 response's timestamp is {skew_secs} s away from the server's clock (at most \
         {max_skew_secs} s allowed): a replayed response, or clocks that disagree"
    )]
    TimestampSkew {
        /// How far apart, in seconds.
        skew_secs: u64,
        /// The allowed skew, in seconds.
        max_skew_secs: u64,
    },
    /// MsvAvFlags says the AUTHENTICATE carries a MIC, but it has no room for one.
    #[error("the client's AUTHENTICATE announces a MIC but carries none")]
    MicMissing,
    /// The MIC does not verify: the three messages were altered in transit.
    #[error("the NTLM MIC does not verify: the NTLM messages were altered in transit")]
    MicMismatch,
    /// The server requires channel bindings and the client sent none.
    #[error(
        "the client sent no channel bindings, which this server requires (Extended Protection \
         for Authentication); use a client that binds NTLM to the TLS connection"
    )]
    ChannelBindingsMissing,
    /// The client's channel bindings are for another TLS connection.
    #[error(
        "the client's channel bindings do not match this TLS connection: a TLS-terminating \
         proxy in between, or an authentication relayed from another connection"
    )]
    ChannelBindingsMismatch,
    /// Channel bindings are required, but the caller has none for this connection.
    #[error("channel bindings are required, but this connection has none (is it plain HTTP?)")]
    ChannelBindingsUnavailable,
    /// The EncryptedRandomSessionKey is not 16 bytes although key exchange was negotiated.
    #[error("the client's AUTHENTICATE has a {len}-byte encrypted session key, not 16")]
    BadSessionKey {
        /// The length found.
        len: usize,
    },
    /// A GSS_VerifyMIC or GSS_Unwrap signature does not verify.
    #[error("an NTLM message signature does not verify")]
    BadSignature,
    /// Session security needs NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY, which the peer did not
    /// negotiate.
    #[error("the peer did not negotiate NTLM extended session security, needed for signing")]
    NoSessionSecurity,
    /// A token arrived when the exchange did not expect one.
    #[error("NTLM exchange used out of order: {0}")]
    OutOfOrder(&'static str),
}

/// Fuzz check: feeds `data` to every NTLM parser and to both state machines, and panics if a
/// parsed message does not encode back into bytes that parse to the same value.
pub(crate) fn fuzz_check(data: &[u8]) {
    use message::*;
    if let Ok(m) = NegotiateMessage::parse(data) {
        let encoded = m.encode().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(NegotiateMessage::parse(&encoded).as_ref(), Ok(&m));
    }
    if let Ok(m) = ChallengeMessage::parse(data) {
        let encoded = m.encode().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(ChallengeMessage::parse(&encoded).as_ref(), Ok(&m));
    }
    if let Ok(m) = AuthenticateMessage::parse(data) {
        let encoded = m.encode().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(AuthenticateMessage::parse(&encoded).as_ref(), Ok(&m));
    }
    if let Ok(pairs) = AvPairs::parse(data) {
        let encoded = pairs.encode().unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        assert_eq!(AvPairs::parse(&encoded).as_ref(), Ok(&pairs));
    }
    if let Ok(blob) = ClientChallengeBlob::parse(data) {
        let encoded = blob.encode().unwrap_or_else(|e| panic!("{blob:?}: {e}"));
        assert_eq!(ClientChallengeBlob::parse(&encoded).as_ref(), Ok(&blob));
    }

    let inputs = server::ServerInputs {
        server_challenge: [1; 8],
        timestamp: 0,
        netbios_domain: "D".into(),
        netbios_computer: "C".into(),
        dns_domain: String::new(),
        dns_computer: String::new(),
    };
    let negotiate = b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let _ = server::ExpectNegotiate::new(inputs.clone()).handle_negotiate(data);
    if let Ok((_, expect)) = server::ExpectNegotiate::new(inputs).handle_negotiate(negotiate) {
        let lookup = |_: &str, _: &str| Some([0u8; 16]);
        let _ = expect.handle_authenticate(
            data,
            server::VerifyInputs {
                now: 0,
                max_skew_secs: u64::MAX,
                channel_bindings: server::ChannelBindingCheck::IfPresent,
                expected_channel_bindings: Some(b"x"),
                lookup: &lookup,
            },
        );
    }
    let credentials = client::NtlmCredentials::from_nt_hash("D", "u", [0; 16]);
    let inputs = client::ClientInputs {
        timestamp_fallback: 0,
        client_challenge: [2; 8],
        exported_session_key: [3; 16],
        channel_bindings: Some(b"x".to_vec()),
        target_spn: Some("HTTP/x".into()),
        workstation: None,
    };
    if let Ok((_, expect)) = client::start(credentials, inputs) {
        let _ = expect.handle_challenge(data);
    }
}
