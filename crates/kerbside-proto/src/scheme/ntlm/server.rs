//! The server (acceptor) side of NTLMv2: [`ExpectNegotiate`] answers the client's NEGOTIATE
//! with a CHALLENGE and becomes [`ExpectAuthenticate`], which verifies the AUTHENTICATE and
//! yields who the client is ([`NtlmAuthenticated`]).
//!
//! Both the 32-byte NEGOTIATE curl sends and the 40-byte one Windows sends are accepted. The
//! CHALLENGE always selects Unicode, even when the NEGOTIATE offers only OEM strings (curl's
//! does, and follows a Unicode CHALLENGE); an AUTHENTICATE in OEM strings is refused. Verification refuses anonymous logons and NTLMv1 responses,
//! checks the NTLMv2 response against the stored NT hash and this exchange's server challenge
//! (so an AUTHENTICATE replayed into another exchange fails), the response's timestamp against
//! the caller's clock, the MIC when MsvAvFlags announces one, and channel bindings as the
//! caller's [`ChannelBindingCheck`] says.
//!
//! The user lookup receives the user and domain names exactly as the client sent them; it
//! decides how to compare them (the [`users`](super::users) file compares case-insensitively).

use std::fmt;

use super::crypto::{self, SessionSecurity, Side};
use super::message::{
    AuthenticateMessage, AvPair, AvPairs, ChallengeMessage, ClientChallengeBlob, MessageError,
    NegotiateFlags, NegotiateMessage, Version, AV_FLAG_MIC_PRESENT, MIC_OFFSET,
};
use super::NtlmError;

/// What the server needs to answer a NEGOTIATE; the caller supplies randomness and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInputs {
    /// Eight random bytes, fresh for every exchange.
    pub server_challenge: [u8; 8],
    /// The current time as a FILETIME (100 ns units since 1601-01-01 UTC), sent as
    /// MsvAvTimestamp (which makes clients send a MIC).
    pub timestamp: u64,
    /// The NetBIOS domain name (also the CHALLENGE's TargetName), such as `EXAMPLE`.
    pub netbios_domain: String,
    /// The NetBIOS computer name, such as `WWW`.
    pub netbios_computer: String,
    /// The DNS domain, such as `example.com`; left out when empty.
    pub dns_domain: String,
    /// The server's FQDN, such as `www.example.com`; left out when empty.
    pub dns_computer: String,
}

/// The flags a server grants when the client asks for them.
const GRANTABLE: NegotiateFlags = NegotiateFlags(
    NegotiateFlags::REQUEST_TARGET.0
        | NegotiateFlags::SIGN.0
        | NegotiateFlags::SEAL.0
        | NegotiateFlags::ALWAYS_SIGN.0
        | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
        | NegotiateFlags::VERSION.0
        | NegotiateFlags::KEY_128.0
        | NegotiateFlags::KEY_EXCH.0
        | NegotiateFlags::KEY_56.0,
);

/// Waits for the client's NEGOTIATE message.
#[derive(Debug, Clone)]
pub struct ExpectNegotiate {
    inputs: ServerInputs,
}

impl ExpectNegotiate {
    /// A server-side exchange that has not seen a message yet.
    pub fn new(inputs: ServerInputs) -> Self {
        Self { inputs }
    }

    /// Answers a NEGOTIATE: the CHALLENGE to send, and the state that waits for the
    /// AUTHENTICATE.
    pub fn handle_negotiate(
        self,
        negotiate: &[u8],
    ) -> Result<(Vec<u8>, ExpectAuthenticate), NtlmError> {
        let parsed = NegotiateMessage::parse(negotiate).map_err(NtlmError::MalformedNegotiate)?;
        let i = &self.inputs;
        let mut pairs = vec![
            AvPair::NbDomainName(i.netbios_domain.clone()),
            AvPair::NbComputerName(i.netbios_computer.clone()),
        ];
        if !i.dns_domain.is_empty() {
            pairs.push(AvPair::DnsDomainName(i.dns_domain.clone()));
        }
        if !i.dns_computer.is_empty() {
            pairs.push(AvPair::DnsComputerName(i.dns_computer.clone()));
        }
        pairs.push(AvPair::Timestamp(i.timestamp));
        let flags = parsed.flags.intersect(GRANTABLE)
            | NegotiateFlags::UNICODE
            | NegotiateFlags::NTLM
            | NegotiateFlags::TARGET_TYPE_DOMAIN
            | NegotiateFlags::TARGET_INFO;
        let challenge = ChallengeMessage {
            target_name: i.netbios_domain.clone(),
            flags,
            server_challenge: i.server_challenge,
            target_info: Some(AvPairs(pairs)),
            version: flags
                .contains(NegotiateFlags::VERSION)
                .then_some(Version::KERBSIDE),
        }
        .encode()
        .map_err(|source| NtlmError::Encode {
            message: "CHALLENGE",
            source,
        })?;
        let next = ExpectAuthenticate {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
            server_challenge: i.server_challenge,
            flags,
        };
        Ok((challenge, next))
    }
}

/// How the server treats channel bindings (MsvAvChannelBindings); an all-zero or absent value
/// means the client sent none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBindingCheck {
    /// Ignore them.
    Off,
    /// Check them when the client sent some (and the connection has some); accept clients that
    /// sent none.
    IfPresent,
    /// Require them, and require them to match.
    Required,
}

/// What [`ExpectAuthenticate::handle_authenticate`] needs to decide.
pub struct VerifyInputs<'a> {
    /// The current time as a FILETIME.
    pub now: u64,
    /// How far the NTLMv2 response's timestamp may be from `now`, in seconds.
    pub max_skew_secs: u64,
    /// How to treat channel bindings.
    pub channel_bindings: ChannelBindingCheck,
    /// This connection's channel-bindings application data (`tls-server-end-point:` and the
    /// certificate hash); `None` on plain HTTP.
    pub expected_channel_bindings: Option<&'a [u8]>,
    /// Finds the NT hash for a user and domain, as the client sent them.
    pub lookup: &'a dyn Fn(&str, &str) -> Option<[u8; 16]>,
}

impl fmt::Debug for VerifyInputs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyInputs")
            .field("now", &self.now)
            .field("max_skew_secs", &self.max_skew_secs)
            .field("channel_bindings", &self.channel_bindings)
            .field(
                "expected_channel_bindings",
                &self.expected_channel_bindings.is_some(),
            )
            .finish_non_exhaustive()
    }
}

/// Waits for the client's AUTHENTICATE message.
#[derive(Debug, Clone)]
pub struct ExpectAuthenticate {
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    server_challenge: [u8; 8],
    flags: NegotiateFlags,
}

/// FILETIME ticks per second.
const TICKS_PER_SEC: u64 = 10_000_000;

impl ExpectAuthenticate {
    /// The CHALLENGE message this exchange sent.
    pub fn challenge_message(&self) -> &[u8] {
        &self.challenge
    }

    /// Verifies the client's AUTHENTICATE message and says who it is.
    pub fn handle_authenticate(
        self,
        authenticate: &[u8],
        verify: VerifyInputs<'_>,
    ) -> Result<NtlmAuthenticated, NtlmError> {
        let pending = self.handle_authenticate_remote(authenticate)?;
        let nt_hash = (verify.lookup)(&pending.msg.user, &pending.msg.domain).ok_or_else(|| {
            NtlmError::UnknownUser {
                user: pending.msg.user.clone(),
                domain: pending.msg.domain.clone(),
            }
        })?;
        let response_key = crypto::ntowfv2(&nt_hash, &pending.msg.user, &pending.msg.domain);
        let (proof, blob) = pending.proof_and_blob();
        let expected = crypto::nt_proof_str(&response_key, &pending.server_challenge, blob);
        if !crypto::ct_eq(&expected, proof) {
            return Err(NtlmError::WrongResponse {
                user: pending.msg.user,
                domain: pending.msg.domain,
            });
        }
        let session_base_key = crypto::session_base_key(&response_key, &expected);
        pending.handle_session_key(
            session_base_key,
            CheckInputs {
                now: verify.now,
                max_skew_secs: verify.max_skew_secs,
                channel_bindings: verify.channel_bindings,
                expected_channel_bindings: verify.expected_channel_bindings,
            },
        )
    }

    /// The first half of verifying an AUTHENTICATE when someone else holds the user's key
    /// (a domain controller, asked through winbindd): parses the message and refuses what
    /// is refused whoever checks the response (anonymous logons, NTLMv1, OEM strings), and
    /// returns the NTLMv2 response for the verifier to check. Its verdict, the session base
    /// key, goes to [`ExpectSessionKey::handle_session_key`].
    pub fn handle_authenticate_remote(
        self,
        authenticate: &[u8],
    ) -> Result<ExpectSessionKey, NtlmError> {
        let msg = AuthenticateMessage::parse(authenticate).map_err(|e| match e {
            MessageError::OemOnly => NtlmError::ClientOffersOnlyOem,
            e => NtlmError::MalformedAuthenticate(e),
        })?;
        if msg.flags.contains(NegotiateFlags::ANONYMOUS)
            || msg.nt_response.is_empty()
            || msg.user.is_empty()
        {
            return Err(NtlmError::Anonymous);
        }
        if msg.nt_response.len() == 24 {
            return Err(NtlmError::NtlmV1Response);
        }
        let Some((_, blob)) = msg.nt_response.split_at_checked(16) else {
            return Err(NtlmError::MalformedAuthenticate(
                MessageError::BadClientChallenge("the NT response is too short"),
            ));
        };
        let parsed_blob =
            ClientChallengeBlob::parse(blob).map_err(NtlmError::MalformedAuthenticate)?;
        Ok(ExpectSessionKey {
            authenticate: authenticate.to_vec(),
            msg,
            blob: parsed_blob,
            negotiate: self.negotiate,
            challenge: self.challenge,
            server_challenge: self.server_challenge,
            flags: self.flags,
        })
    }
}

/// What [`ExpectSessionKey::handle_session_key`] checks besides the key: the clock and
/// channel bindings.
#[derive(Clone, Copy)]
pub struct CheckInputs<'a> {
    /// The current time as a FILETIME.
    pub now: u64,
    /// How far the NTLMv2 response's timestamp may be from `now`, in seconds.
    pub max_skew_secs: u64,
    /// How to treat channel bindings.
    pub channel_bindings: ChannelBindingCheck,
    /// This connection's channel-bindings application data; `None` on plain HTTP.
    pub expected_channel_bindings: Option<&'a [u8]>,
}

impl fmt::Debug for CheckInputs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckInputs")
            .field("now", &self.now)
            .field("max_skew_secs", &self.max_skew_secs)
            .field("channel_bindings", &self.channel_bindings)
            .field(
                "expected_channel_bindings",
                &self.expected_channel_bindings.is_some(),
            )
            .finish()
    }
}

/// An AUTHENTICATE that parsed, waiting for whoever holds the user's key to check its
/// NTLMv2 response and give the session base key (the "user session key" a domain
/// controller returns). Until then nothing about the user is trusted.
#[derive(Clone)]
pub struct ExpectSessionKey {
    authenticate: Vec<u8>,
    msg: AuthenticateMessage,
    blob: ClientChallengeBlob,
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    server_challenge: [u8; 8],
    flags: NegotiateFlags,
}

impl fmt::Debug for ExpectSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectSessionKey")
            .field("user", &self.msg.user)
            .field("domain", &self.msg.domain)
            .finish_non_exhaustive()
    }
}

impl ExpectSessionKey {
    /// The user name, as the client sent it (not verified yet).
    pub fn user(&self) -> &str {
        &self.msg.user
    }

    /// The domain name, as the client sent it (possibly empty; not verified yet).
    pub fn domain(&self) -> &str {
        &self.msg.domain
    }

    /// The server challenge this exchange sent (a domain controller's "LM challenge").
    pub fn server_challenge(&self) -> [u8; 8] {
        self.server_challenge
    }

    /// The client's NTLMv2 response (NTProofStr and the client's blob) for the verifier.
    pub fn nt_response(&self) -> &[u8] {
        &self.msg.nt_response
    }

    fn proof_and_blob(&self) -> (&[u8], &[u8]) {
        self.msg.nt_response.split_at(16)
    }

    /// Finishes the exchange with the session base key the verifier derived when the
    /// NTLMv2 response verified: checks the response's timestamp, the MIC (which needs
    /// the key, so a key that does not belong to this response fails here) and channel
    /// bindings, and says who the client is.
    pub fn handle_session_key(
        self,
        session_base_key: [u8; 16],
        check: CheckInputs<'_>,
    ) -> Result<NtlmAuthenticated, NtlmError> {
        let msg = self.msg;
        let skew = check.now.abs_diff(self.blob.timestamp) / TICKS_PER_SEC;
        if skew > check.max_skew_secs {
            return Err(NtlmError::TimestampSkew {
                skew_secs: skew,
                max_skew_secs: check.max_skew_secs,
            });
        }

        let flags = msg.flags.intersect(self.flags);
        // NTLMv2: KeyExchangeKey = SessionBaseKey (MS-NLMP 3.4.5.1).
        let key_exchange_key = session_base_key;
        let exported_session_key = if flags.contains(NegotiateFlags::KEY_EXCH) {
            let encrypted: [u8; 16] =
                msg.encrypted_session_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| NtlmError::BadSessionKey {
                        len: msg.encrypted_session_key.len(),
                    })?;
            crypto::rc4k(&key_exchange_key, &encrypted)
        } else {
            key_exchange_key
        };

        let av = &self.blob.av_pairs;
        let mic_present = av.flags().unwrap_or(0) & AV_FLAG_MIC_PRESENT != 0;
        if mic_present {
            let Some(mic) = msg.mic else {
                return Err(NtlmError::MicMissing);
            };
            let mut zeroed = self.authenticate;
            zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
            let expected = crypto::mic(
                &exported_session_key,
                &self.negotiate,
                &self.challenge,
                &zeroed,
            );
            if !crypto::ct_eq(&expected, &mic) {
                return Err(NtlmError::MicMismatch);
            }
        }

        let sent = av.channel_bindings().filter(|h| *h != [0; 16]);
        let channel_bound = check_channel_bindings(&check, sent)?;

        Ok(NtlmAuthenticated {
            user: msg.user,
            domain: msg.domain,
            workstation: msg.workstation,
            target_name: av.target_name().map(str::to_owned),
            flags,
            exported_session_key,
            mic_present,
            channel_bound,
        })
    }
}

/// Applies the caller's channel-binding policy; says whether the bindings matched.
fn check_channel_bindings(
    verify: &CheckInputs<'_>,
    sent: Option<[u8; 16]>,
) -> Result<bool, NtlmError> {
    let expected = verify
        .expected_channel_bindings
        .map(crypto::channel_bindings_hash);
    match (verify.channel_bindings, sent, expected) {
        (ChannelBindingCheck::Off, _, _) => Ok(false),
        (ChannelBindingCheck::Required, _, None) => Err(NtlmError::ChannelBindingsUnavailable),
        (ChannelBindingCheck::Required, None, Some(_)) => Err(NtlmError::ChannelBindingsMissing),
        (ChannelBindingCheck::IfPresent, None, _) | (ChannelBindingCheck::IfPresent, _, None) => {
            Ok(false)
        }
        (_, Some(sent), Some(expected)) => {
            if crypto::ct_eq(&sent, &expected) {
                Ok(true)
            } else {
                Err(NtlmError::ChannelBindingsMismatch)
            }
        }
    }
}

/// A client the server has authenticated. Its [`Debug`] output never shows the session key.
#[derive(Clone, PartialEq, Eq)]
pub struct NtlmAuthenticated {
    /// The user name, as the client sent it.
    pub user: String,
    /// The domain name, as the client sent it (possibly empty).
    pub domain: String,
    /// The workstation name the client sent (possibly empty).
    pub workstation: String,
    /// The MsvAvTargetName the client sent (the SPN it meant), if any.
    pub target_name: Option<String>,
    /// The negotiated flags.
    pub flags: NegotiateFlags,
    /// The exported session key.
    pub exported_session_key: [u8; 16],
    /// Whether the AUTHENTICATE carried a (verified) MIC.
    pub mic_present: bool,
    /// Whether channel bindings were checked and matched.
    pub channel_bound: bool,
}

impl fmt::Debug for NtlmAuthenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmAuthenticated")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("workstation", &self.workstation)
            .field("target_name", &self.target_name)
            .field("flags", &self.flags)
            .field("mic_present", &self.mic_present)
            .field("channel_bound", &self.channel_bound)
            .finish_non_exhaustive()
    }
}

impl NtlmAuthenticated {
    /// Fresh session security (sequence numbers 0) for the server; refused unless extended
    /// session security was negotiated.
    pub fn session_security(&self) -> Result<SessionSecurity, NtlmError> {
        SessionSecurity::extended(Side::Server, self.flags, &self.exported_session_key)
    }
}
