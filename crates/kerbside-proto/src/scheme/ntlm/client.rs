//! The client (initiator) side of NTLMv2: [`start`] gives the NEGOTIATE message and an
//! [`ExpectChallenge`]; its [`handle_challenge`](ExpectChallenge::handle_challenge) answers the
//! server's CHALLENGE with an AUTHENTICATE message and gives the [`Established`] context.
//!
//! The NEGOTIATE is the 40-byte form with a VERSION field, as Windows and pyspnego send it
//! (gss-ntlmssp 1.2 as an acceptor rejects curl's 32-byte form). When the CHALLENGE carries a
//! timestamp, the AUTHENTICATE carries a MIC and says so in MsvAvFlags, as Windows does.
//!
//! [`NtlmInitiator`] wraps the same states as a [`Mechanism`].

use std::fmt;

use super::crypto::{self, SessionSecurity, Side};
use super::message::{
    AuthenticateMessage, AvPair, AvPairs, ChallengeMessage, ClientChallengeBlob, MessageError,
    NegotiateFlags, NegotiateMessage, Version, AV_FLAG_MIC_PRESENT, MIC_OFFSET,
};
use super::NtlmError;
use crate::mechanism::{Mechanism, Step};

/// Who the client authenticates as: a domain, a user name, and a hash of the password.
/// Its [`Debug`] output never shows the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NtlmCredentials {
    /// The domain (NetBIOS or DNS name), possibly empty.
    pub domain: String,
    /// The user name (or a UPN such as `alice@example.com`, with an empty domain).
    pub user: String,
    /// The password's hash the responses are made from.
    pub secret: NtlmSecret,
}

/// The hash of the password an NTLMv2 client holds. Its [`Debug`] output shows neither.
#[derive(Clone, PartialEq, Eq)]
pub enum NtlmSecret {
    /// NTOWFv1 of the password: MD4 of its UTF-16LE encoding (cntlm's `PassNT`); good for
    /// any user name and domain.
    NtHash([u8; 16]),
    /// NTOWFv2 (MS-NLMP §3.3.2): HMAC-MD5 keyed with the NT hash over the upper-cased user
    /// name and the domain (cntlm's `PassNTLMv2`). It is the response key itself, so it
    /// answers only for the user and domain it was made for: the credentials' `user` and
    /// `domain` must be spelt as they were then (the user's case does not matter).
    Ntowfv2([u8; 16]),
}

impl fmt::Debug for NtlmSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NtHash(_) => f.write_str("NtHash(<redacted>)"),
            Self::Ntowfv2(_) => f.write_str("Ntowfv2(<redacted>)"),
        }
    }
}

impl NtlmCredentials {
    /// Credentials from a clear-text password, which is hashed at once and not kept.
    pub fn from_password(domain: &str, user: &str, password: &str) -> Self {
        Self::from_nt_hash(domain, user, crypto::nt_hash(password))
    }

    /// Credentials from an NT hash (as in a users file or a keytab-like store).
    pub fn from_nt_hash(domain: &str, user: &str, nt_hash: [u8; 16]) -> Self {
        Self {
            domain: domain.to_owned(),
            user: user.to_owned(),
            secret: NtlmSecret::NtHash(nt_hash),
        }
    }

    /// Credentials from an NTOWFv2 hash (cntlm's `PassNTLMv2`), which answers only for the
    /// user and domain it was made for; see [`NtlmSecret::Ntowfv2`].
    pub fn from_ntowfv2(domain: &str, user: &str, ntowfv2: [u8; 16]) -> Self {
        Self {
            domain: domain.to_owned(),
            user: user.to_owned(),
            secret: NtlmSecret::Ntowfv2(ntowfv2),
        }
    }

    /// The NTLMv2 response key (NTOWFv2 for this user and domain).
    fn response_key(&self) -> [u8; 16] {
        match &self.secret {
            NtlmSecret::NtHash(nt_hash) => crypto::ntowfv2(nt_hash, &self.user, &self.domain),
            NtlmSecret::Ntowfv2(key) => *key,
        }
    }

    /// Splits a login such as `EXAMPLE\alice` into domain and user; a login without a
    /// backslash (`alice`, or a UPN `alice@example.com`) has an empty domain.
    pub fn split_login(login: &str) -> (&str, &str) {
        login.split_once('\\').unwrap_or(("", login))
    }
}

impl fmt::Debug for NtlmCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmCredentials")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("secret", &self.secret)
            .finish()
    }
}

/// What the client needs besides credentials; the caller supplies the randomness and time.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientInputs {
    /// The current time as a FILETIME (100 ns units since 1601-01-01 UTC), used in the NTLMv2
    /// response when the CHALLENGE carries no MsvAvTimestamp.
    pub timestamp_fallback: u64,
    /// Eight random bytes.
    pub client_challenge: [u8; 8],
    /// Sixteen random bytes: the session key, sent encrypted when key exchange is negotiated.
    pub exported_session_key: [u8; 16],
    /// Channel-bindings application data (for TLS, `tls-server-end-point:` and the certificate
    /// hash, see [`crate::channel_binding`]); `None` sends the all-zero "no bindings" hash.
    pub channel_bindings: Option<Vec<u8>>,
    /// The server's SPN, such as `HTTP/www.example.com`, sent as MsvAvTargetName.
    pub target_spn: Option<String>,
    /// The workstation name to send, if any.
    pub workstation: Option<String>,
}

impl fmt::Debug for ClientInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInputs")
            .field("timestamp_fallback", &self.timestamp_fallback)
            .field("channel_bindings", &self.channel_bindings.is_some())
            .field("target_spn", &self.target_spn)
            .field("workstation", &self.workstation)
            .finish_non_exhaustive()
    }
}

/// The flags kerbside's NEGOTIATE asks for: Unicode, NTLM with extended session security,
/// signing and sealing with 128-bit keys and key exchange, and a VERSION field.
pub const CLIENT_FLAGS: NegotiateFlags = NegotiateFlags(
    NegotiateFlags::UNICODE.0
        | NegotiateFlags::REQUEST_TARGET.0
        | NegotiateFlags::SIGN.0
        | NegotiateFlags::SEAL.0
        | NegotiateFlags::NTLM.0
        | NegotiateFlags::ALWAYS_SIGN.0
        | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
        | NegotiateFlags::VERSION.0
        | NegotiateFlags::KEY_128.0
        | NegotiateFlags::KEY_EXCH.0
        | NegotiateFlags::KEY_56.0,
);

/// Starts an exchange: the NEGOTIATE message to send, and the state that waits for the
/// server's CHALLENGE.
pub fn start(
    credentials: NtlmCredentials,
    inputs: ClientInputs,
) -> Result<(Vec<u8>, ExpectChallenge), NtlmError> {
    let negotiate = NegotiateMessage {
        flags: CLIENT_FLAGS,
        domain: Vec::new(),
        workstation: Vec::new(),
        version: Some(Version::KERBSIDE),
    }
    .encode()
    .map_err(|source| NtlmError::Encode {
        message: "NEGOTIATE",
        source,
    })?;
    let state = ExpectChallenge {
        credentials,
        inputs,
        negotiate: negotiate.clone(),
    };
    Ok((negotiate, state))
}

/// Waits for the server's CHALLENGE message.
#[derive(Debug)]
pub struct ExpectChallenge {
    credentials: NtlmCredentials,
    inputs: ClientInputs,
    negotiate: Vec<u8>,
}

impl ExpectChallenge {
    /// The NEGOTIATE message this exchange sent.
    pub fn negotiate_message(&self) -> &[u8] {
        &self.negotiate
    }

    /// Answers the server's CHALLENGE: the AUTHENTICATE message to send, and the established
    /// context (whose session key the server will only share if it accepts the message).
    pub fn handle_challenge(self, challenge: &[u8]) -> Result<(Vec<u8>, Established), NtlmError> {
        let parsed = ChallengeMessage::parse(challenge).map_err(|e| match e {
            MessageError::OemOnly => NtlmError::ServerOffersOnlyNtlmV1 {
                detail: "no Unicode support",
            },
            e => NtlmError::MalformedChallenge(e),
        })?;
        // A CHALLENGE without target information (old servers, Squid's fake helper) still
        // gets an NTLMv2 response, with only the client's AV pairs in it: nothing weaker
        // than NTLMv2 ever goes out.
        let target_info = parsed.target_info.unwrap_or_default();
        let server_timestamp = target_info.timestamp();
        let with_mic = server_timestamp.is_some();
        let server_av_flags = target_info.flags().unwrap_or(0);

        // The AV pairs of the NTLMv2 response: the server's, then ours (MS-NLMP §3.1.5.1.2).
        let mut pairs: Vec<AvPair> = target_info
            .0
            .into_iter()
            .filter(|p| {
                !matches!(
                    p,
                    AvPair::ChannelBindings(_) | AvPair::TargetName(_) | AvPair::Flags(_)
                )
            })
            .collect();
        if with_mic || server_av_flags != 0 {
            let mic_flag = if with_mic { AV_FLAG_MIC_PRESENT } else { 0 };
            pairs.push(AvPair::Flags(server_av_flags | mic_flag));
        }
        pairs.push(AvPair::ChannelBindings(
            self.inputs
                .channel_bindings
                .as_deref()
                .map_or([0; 16], crypto::channel_bindings_hash),
        ));
        if let Some(spn) = &self.inputs.target_spn {
            pairs.push(AvPair::TargetName(spn.clone()));
        }
        let blob = ClientChallengeBlob {
            timestamp: server_timestamp.unwrap_or(self.inputs.timestamp_fallback),
            client_challenge: self.inputs.client_challenge,
            av_pairs: AvPairs(pairs),
        }
        .encode()
        .map_err(|source| NtlmError::Encode {
            message: "AUTHENTICATE",
            source,
        })?;

        let creds = &self.credentials;
        let response_key = creds.response_key();
        let proof = crypto::nt_proof_str(&response_key, &parsed.server_challenge, &blob);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&blob);
        // With a server timestamp, MS-NLMP §3.1.5.1.2 says to send Z(24) instead of LMv2.
        let lm_response = if with_mic {
            vec![0; 24]
        } else {
            crypto::lmv2_response(
                &response_key,
                &parsed.server_challenge,
                &self.inputs.client_challenge,
            )
            .to_vec()
        };

        let granted = NegotiateFlags::TARGET_INFO
            | NegotiateFlags::TARGET_TYPE_DOMAIN
            | NegotiateFlags::TARGET_TYPE_SERVER
            | CLIENT_FLAGS;
        let flags = parsed.flags.intersect(granted) | NegotiateFlags::VERSION;
        let key_exchange_key = crypto::session_base_key(&response_key, &proof);
        let (exported_session_key, encrypted_session_key) =
            if flags.contains(NegotiateFlags::KEY_EXCH) {
                let exported = self.inputs.exported_session_key;
                (
                    exported,
                    crypto::rc4k(&key_exchange_key, &exported).to_vec(),
                )
            } else {
                (key_exchange_key, Vec::new())
            };

        let mut authenticate = AuthenticateMessage {
            lm_response,
            nt_response,
            domain: creds.domain.clone(),
            user: creds.user.clone(),
            workstation: self.inputs.workstation.clone().unwrap_or_default(),
            encrypted_session_key,
            flags,
            version: Some(Version::KERBSIDE),
            mic: with_mic.then_some([0; 16]),
        }
        .encode()
        .map_err(|source| NtlmError::Encode {
            message: "AUTHENTICATE",
            source,
        })?;
        if with_mic {
            let mic = crypto::mic(
                &exported_session_key,
                &self.negotiate,
                challenge,
                &authenticate,
            );
            authenticate[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&mic);
        }
        Ok((
            authenticate,
            Established {
                flags,
                exported_session_key,
                mic_sent: with_mic,
            },
        ))
    }
}

/// The client's side of a completed exchange. Its [`Debug`] output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Established {
    flags: NegotiateFlags,
    exported_session_key: [u8; 16],
    mic_sent: bool,
}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("flags", &self.flags)
            .field("mic_sent", &self.mic_sent)
            .finish_non_exhaustive()
    }
}

impl Established {
    /// The flags of the AUTHENTICATE message (what both sides agreed on).
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    /// The exported session key, from which the signing and sealing keys derive.
    pub fn exported_session_key(&self) -> &[u8; 16] {
        &self.exported_session_key
    }

    /// Whether the AUTHENTICATE carried a MIC (then SPNEGO requires a mechListMIC).
    pub fn mic_sent(&self) -> bool {
        self.mic_sent
    }

    /// Fresh session security (sequence numbers 0) for signing and sealing; refused unless
    /// extended session security was negotiated.
    pub fn session_security(&self) -> Result<SessionSecurity, NtlmError> {
        SessionSecurity::extended(Side::Client, self.flags, &self.exported_session_key)
    }
}

/// NTLM as a [`Mechanism`]: `step(None)` gives the NEGOTIATE, `step(Some(challenge))` the
/// AUTHENTICATE as [`Step::Done`]; any other step is an error.
#[derive(Debug)]
pub struct NtlmInitiator {
    state: InitiatorState,
}

#[derive(Debug)]
enum InitiatorState {
    Start(Box<(NtlmCredentials, ClientInputs)>),
    ExpectChallenge(ExpectChallenge),
    Established(Established),
    Spent,
}

impl NtlmInitiator {
    /// An initiator that will authenticate with `credentials`.
    pub fn new(credentials: NtlmCredentials, inputs: ClientInputs) -> Self {
        Self {
            state: InitiatorState::Start(Box::new((credentials, inputs))),
        }
    }

    /// The established context, once the AUTHENTICATE has been produced.
    pub fn established(&self) -> Option<&Established> {
        match &self.state {
            InitiatorState::Established(e) => Some(e),
            _ => None,
        }
    }
}

impl Mechanism for NtlmInitiator {
    type Error = NtlmError;

    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, NtlmError> {
        match (
            std::mem::replace(&mut self.state, InitiatorState::Spent),
            input,
        ) {
            (InitiatorState::Start(start_with), None) => {
                let (credentials, inputs) = *start_with;
                let (negotiate, next) = start(credentials, inputs)?;
                self.state = InitiatorState::ExpectChallenge(next);
                Ok(Step::Continue(negotiate))
            }
            (InitiatorState::ExpectChallenge(state), Some(challenge)) => {
                let (authenticate, established) = state.handle_challenge(challenge)?;
                self.state = InitiatorState::Established(established);
                Ok(Step::Done(Some(authenticate)))
            }
            (InitiatorState::Start(_), Some(_)) => Err(NtlmError::OutOfOrder(
                "a server token arrived before the NEGOTIATE was sent",
            )),
            (InitiatorState::ExpectChallenge(_), None) => Err(NtlmError::OutOfOrder(
                "the server's CHALLENGE is needed to continue",
            )),
            (InitiatorState::Established(established), _) => {
                self.state = InitiatorState::Established(established);
                Err(NtlmError::OutOfOrder(
                    "the NTLM exchange is already complete",
                ))
            }
            (InitiatorState::Spent, _) => Err(NtlmError::OutOfOrder(
                "the NTLM exchange already failed or completed",
            )),
        }
    }
}
