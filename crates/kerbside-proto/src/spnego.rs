//! SPNEGO (RFC 4178) tokens, and NTLMSSP carried in SPNEGO on both ends (MS-SPNG).
//!
//! HTTP `Negotiate` (RFC 4559) carries SPNEGO tokens. Kerberos goes through GSSAPI; when a
//! client has no Kerberos ticket it may negotiate NTLM inside SPNEGO instead, and that is what
//! this module does without GSSAPI:
//!
//! - [`NegTokenInit`] (inside the GSS-API InitialContextToken `60 …` wrapper with the SPNEGO
//!   OID) and [`NegTokenResp`]: parsed and encoded by hand in DER. The parser takes definite,
//!   minimal lengths only, single-byte tags, known fields in order, and no trailing bytes; the
//!   grammar has a fixed depth, so nesting is bounded by construction.
//! - [`SpnegoNtlmInitiator`], a [`Mechanism`]: NegTokenInit with NTLMSSP and the NEGOTIATE,
//!   then the AUTHENTICATE with a mechListMIC, then the server's final token (whose
//!   mechListMIC is checked when present).
//! - [`SpnegoNtlmAcceptor`] → [`SpnegoExpectAuthenticate`]: the server side, for a NegTokenInit
//!   whose preferred mechanism is NTLMSSP. [`is_ntlmssp_init`] tells a gate which tokens to
//!   route here rather than to GSSAPI.
//!
//! The mechListMIC is NTLM GSS_GetMIC (sequence number 0 in each direction) over the DER
//! encoding of the MechTypeList as the initiator sent it (RFC 4178 §5). An acceptor requires
//! it when the NTLM AUTHENTICATE carried a MIC (MS-SPNG §3.2.5.1), and answers with its own
//! when the initiator sent one.

use std::fmt;

use crate::der::{self, DerError, Reader};
use crate::mechanism::{Mechanism, Step};
use crate::scheme::ntlm::client::{self, ClientInputs, ExpectChallenge, NtlmCredentials};
use crate::scheme::ntlm::crypto::SessionSecurity;
use crate::scheme::ntlm::server::{
    CheckInputs, ExpectAuthenticate, ExpectNegotiate, ExpectSessionKey, NtlmAuthenticated,
    ServerInputs, VerifyInputs,
};
use crate::scheme::ntlm::NtlmError;

/// Why a SPNEGO exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpnegoError {
    /// The token is not valid DER of the expected SPNEGO structure.
    #[error("the SPNEGO token is malformed: {0}")]
    Malformed(&'static str),
    /// The token is not wrapped as SPNEGO (GSS-API OID 1.3.6.1.5.5.2).
    #[error("the token is not SPNEGO: its GSS-API mechanism is {0}")]
    NotSpnego(String),
    /// The client prefers another mechanism (usually Kerberos): route its token to GSSAPI.
    #[error("the client prefers the mechanism {preferred}, not NTLM; it belongs to GSSAPI")]
    NtlmNotPreferred {
        /// The first OID of the client's mechTypes, dotted (empty list: empty string).
        preferred: String,
    },
    /// The client's NegTokenInit carries no optimistic NTLM token.
    #[error("the client's SPNEGO NegTokenInit carries no NTLM NEGOTIATE token")]
    NoMechToken,
    /// The peer's NegTokenResp carries no responseToken where one is needed.
    #[error("the peer's SPNEGO NegTokenResp carries no NTLM token")]
    NoResponseToken,
    /// The server selected a mechanism other than NTLMSSP.
    #[error("the server selected the SPNEGO mechanism {0}, not NTLM")]
    WrongMechanism(String),
    /// The peer rejected the negotiation.
    #[error("the peer rejected the SPNEGO negotiation (negState reject)")]
    Rejected,
    /// The peer's negState does not fit this step.
    #[error("the peer's SPNEGO negState is {found}, where {expected} was expected")]
    UnexpectedState {
        /// What was expected.
        expected: &'static str,
        /// What arrived.
        found: &'static str,
    },
    /// The client's NTLM AUTHENTICATE had a MIC but its NegTokenResp has no mechListMIC.
    #[error("the client sent an NTLM MIC but no SPNEGO mechListMIC, which MS-SPNG then requires")]
    MechListMicMissing,
    /// The peer's mechListMIC does not verify: the mechanism list was altered in transit.
    #[error(
        "the peer's SPNEGO mechListMIC does not verify: the mechanism list was altered \
         (a downgrade attempt?)"
    )]
    MechListMicMismatch,
    /// NTLM itself failed.
    #[error(transparent)]
    Ntlm(#[from] NtlmError),
    /// A token arrived when the exchange did not expect one.
    #[error("SPNEGO exchange used out of order: {0}")]
    OutOfOrder(&'static str),
}

/// An ASN.1 object identifier, kept as the contents octets of its DER encoding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Oid(Vec<u8>);

impl Oid {
    /// SPNEGO, 1.3.6.1.5.5.2.
    pub const SPNEGO: &'static [u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    /// NTLMSSP, 1.3.6.1.4.1.311.2.2.10.
    pub const NTLMSSP: &'static [u8] =
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
    /// Kerberos 5, 1.2.840.113554.1.2.2.
    pub const KRB5: &'static [u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
    /// Microsoft's Kerberos 5 OID, 1.2.840.48018.1.2.2.
    pub const MS_KRB5: &'static [u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

    /// An OID from the contents octets of its DER encoding, checked to be well-formed.
    pub fn from_der_contents(contents: &[u8]) -> Result<Self, SpnegoError> {
        let bad = SpnegoError::Malformed("an OBJECT IDENTIFIER is not valid DER");
        if contents.last().is_none_or(|b| b & 0x80 != 0) {
            return Err(bad);
        }
        // A subidentifier may not start with 0x80 (a non-minimal encoding).
        let mut at_start = true;
        for &b in contents {
            if at_start && b == 0x80 {
                return Err(bad);
            }
            at_start = b & 0x80 == 0;
        }
        Ok(Self(contents.to_vec()))
    }

    /// An OID from one of the constants above.
    pub fn known(contents: &'static [u8]) -> Self {
        Self(contents.to_vec())
    }

    /// The contents octets of the DER encoding.
    pub fn der_contents(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the NTLMSSP OID.
    pub fn is_ntlmssp(&self) -> bool {
        self.0 == Self::NTLMSSP
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut arcs = Vec::new();
        let mut value: u128 = 0;
        for &b in &self.0 {
            value = (value << 7) | u128::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(value);
                value = 0;
            }
        }
        let mut first = true;
        for (i, arc) in arcs.iter().enumerate() {
            let parts = if i == 0 {
                let top = (*arc / 40).min(2);
                vec![top, *arc - top * 40]
            } else {
                vec![*arc]
            };
            for p in parts {
                if !first {
                    f.write_str(".")?;
                }
                write!(f, "{p}")?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// The negState of a NegTokenResp (RFC 4178 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NegState {
    /// accept-completed (0).
    AcceptCompleted,
    /// accept-incomplete (1).
    AcceptIncomplete,
    /// reject (2).
    Reject,
    /// request-mic (3).
    RequestMic,
}

impl NegState {
    fn name(self) -> &'static str {
        match self {
            Self::AcceptCompleted => "accept-completed",
            Self::AcceptIncomplete => "accept-incomplete",
            Self::Reject => "reject",
            Self::RequestMic => "request-mic",
        }
    }

    fn value(self) -> u8 {
        match self {
            Self::AcceptCompleted => 0,
            Self::AcceptIncomplete => 1,
            Self::Reject => 2,
            Self::RequestMic => 3,
        }
    }
}

/// The initiator's first token (RFC 4178 §4.2.1), as sent inside the GSS-API
/// InitialContextToken wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegTokenInit {
    /// mechTypes, most preferred first.
    pub mech_types: Vec<Oid>,
    /// reqFlags: the contents octets of the BIT STRING (unused-bits count first).
    pub req_flags: Option<Vec<u8>>,
    /// mechToken: the optimistic token of the first mechanism.
    pub mech_token: Option<Vec<u8>>,
    /// mechListMIC.
    pub mech_list_mic: Option<Vec<u8>>,
}

impl NegTokenInit {
    /// Parses a NegTokenInit in its GSS-API wrapper (`60 … 06 06 2b0601050502 a0 …`).
    pub fn parse(token: &[u8]) -> Result<Self, SpnegoError> {
        let inner = only(token, TAG_APPLICATION_0, "InitialContextToken")?;
        let (oid, rest) = tlv(inner, TAG_OID, "thisMech")?;
        if oid != Oid::SPNEGO {
            let shown = Oid::from_der_contents(oid)
                .map_or_else(|_| "malformed".to_owned(), |o| o.to_string());
            return Err(SpnegoError::NotSpnego(shown));
        }
        let choice = only(rest, ctx(0), "negTokenInit")?;
        let mut fields = Fields::new(only(choice, TAG_SEQUENCE, "NegTokenInit")?);
        let mech_types = match fields.take(0)? {
            Some(list) => parse_mech_type_list(list)?,
            None => return Err(SpnegoError::Malformed("NegTokenInit has no mechTypes")),
        };
        let req_flags = match fields.take(1)? {
            Some(bits) => {
                let contents = only(bits, TAG_BIT_STRING, "reqFlags")?;
                match contents.first() {
                    Some(unused) if *unused <= 7 => Some(contents.to_vec()),
                    _ => return Err(SpnegoError::Malformed("reqFlags is not a valid BIT STRING")),
                }
            }
            None => None,
        };
        let mech_token = fields.octets(2, "mechToken")?;
        let mech_list_mic = fields.octets(3, "mechListMIC")?;
        fields.end()?;
        Ok(Self {
            mech_types,
            req_flags,
            mech_token,
            mech_list_mic,
        })
    }

    /// Encodes the token with its GSS-API wrapper.
    pub fn encode(&self) -> Vec<u8> {
        let mut seq = encode_tlv(ctx(0), &self.mech_types_der());
        if let Some(bits) = &self.req_flags {
            seq.extend(encode_tlv(ctx(1), &encode_tlv(TAG_BIT_STRING, bits)));
        }
        push_octets(&mut seq, 2, self.mech_token.as_deref());
        push_octets(&mut seq, 3, self.mech_list_mic.as_deref());
        let mut inner = encode_tlv(TAG_OID, Oid::SPNEGO);
        inner.extend(encode_tlv(ctx(0), &encode_tlv(TAG_SEQUENCE, &seq)));
        encode_tlv(TAG_APPLICATION_0, &inner)
    }

    /// The DER encoding of the MechTypeList, which the mechListMIC covers.
    pub fn mech_types_der(&self) -> Vec<u8> {
        mech_type_list_der(&self.mech_types)
    }
}

/// Every later token, both ways (RFC 4178 §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp {
    /// negState.
    pub neg_state: Option<NegState>,
    /// supportedMech: the mechanism the acceptor chose (in its first reply).
    pub supported_mech: Option<Oid>,
    /// responseToken: the mechanism's token.
    pub response_token: Option<Vec<u8>>,
    /// mechListMIC.
    pub mech_list_mic: Option<Vec<u8>>,
}

impl NegTokenResp {
    /// Parses a NegTokenResp (`a1 …`).
    pub fn parse(token: &[u8]) -> Result<Self, SpnegoError> {
        let choice = only(token, ctx(1), "negTokenResp")?;
        let mut fields = Fields::new(only(choice, TAG_SEQUENCE, "NegTokenResp")?);
        let neg_state = match fields.take(0)? {
            Some(e) => Some(match only(e, TAG_ENUMERATED, "negState")? {
                [0] => NegState::AcceptCompleted,
                [1] => NegState::AcceptIncomplete,
                [2] => NegState::Reject,
                [3] => NegState::RequestMic,
                _ => return Err(SpnegoError::Malformed("negState is not 0 to 3")),
            }),
            None => None,
        };
        let supported_mech = match fields.take(1)? {
            Some(o) => Some(Oid::from_der_contents(only(o, TAG_OID, "supportedMech")?)?),
            None => None,
        };
        let response_token = fields.octets(2, "responseToken")?;
        let mech_list_mic = fields.octets(3, "mechListMIC")?;
        fields.end()?;
        Ok(Self {
            neg_state,
            supported_mech,
            response_token,
            mech_list_mic,
        })
    }

    /// Encodes the token.
    pub fn encode(&self) -> Vec<u8> {
        let mut seq = Vec::new();
        if let Some(state) = self.neg_state {
            seq.extend(encode_tlv(
                ctx(0),
                &encode_tlv(TAG_ENUMERATED, &[state.value()]),
            ));
        }
        if let Some(mech) = &self.supported_mech {
            seq.extend(encode_tlv(
                ctx(1),
                &encode_tlv(TAG_OID, mech.der_contents()),
            ));
        }
        push_octets(&mut seq, 2, self.response_token.as_deref());
        push_octets(&mut seq, 3, self.mech_list_mic.as_deref());
        encode_tlv(ctx(1), &encode_tlv(TAG_SEQUENCE, &seq))
    }
}

/// Whether a `Negotiate` token should go to the NTLM code rather than GSSAPI: a raw NTLM
/// NEGOTIATE message, or a SPNEGO NegTokenInit whose preferred mechanism is NTLMSSP.
pub fn is_ntlmssp_init(token: &[u8]) -> bool {
    if crate::scheme::ntlm::message::message_type(token) == Some(1) {
        return true;
    }
    NegTokenInit::parse(token)
        .is_ok_and(|init| init.mech_types.first().is_some_and(Oid::is_ntlmssp))
}

/// NTLM in SPNEGO as a [`Mechanism`], for HTTP `Negotiate` without Kerberos.
///
/// `step(None)` → `Continue(NegTokenInit)`; `step(Some(challenge reply))` →
/// `Continue(NegTokenResp with the AUTHENTICATE and a mechListMIC)`; `step(Some(final reply))`
/// → `Done(None)` once the server's accept-completed (and its mechListMIC, if any) checks out.
#[derive(Debug)]
pub struct SpnegoNtlmInitiator {
    state: InitiatorState,
}

enum InitiatorState {
    Start(Box<(NtlmCredentials, ClientInputs)>),
    ExpectChallenge {
        ntlm: ExpectChallenge,
        mech_types_der: Vec<u8>,
    },
    ExpectFinal {
        security: Option<Box<SessionSecurity>>,
        mech_types_der: Vec<u8>,
    },
    Done,
    Spent,
}

impl fmt::Debug for InitiatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start(_) => "Start",
            Self::ExpectChallenge { .. } => "ExpectChallenge",
            Self::ExpectFinal { .. } => "ExpectFinal",
            Self::Done => "Done",
            Self::Spent => "Spent",
        })
    }
}

impl SpnegoNtlmInitiator {
    /// An initiator that will authenticate with `credentials`.
    pub fn new(credentials: NtlmCredentials, inputs: ClientInputs) -> Self {
        Self {
            state: InitiatorState::Start(Box::new((credentials, inputs))),
        }
    }

    /// Whether the exchange completed (the server's final token was accepted).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, InitiatorState::Done)
    }
}

impl Mechanism for SpnegoNtlmInitiator {
    type Error = SpnegoError;

    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, SpnegoError> {
        match (
            std::mem::replace(&mut self.state, InitiatorState::Spent),
            input,
        ) {
            (InitiatorState::Start(start_with), None) => {
                let (credentials, inputs) = *start_with;
                let (negotiate, ntlm) = client::start(credentials, inputs)?;
                let init = NegTokenInit {
                    mech_types: vec![Oid::known(Oid::NTLMSSP)],
                    req_flags: None,
                    mech_token: Some(negotiate),
                    mech_list_mic: None,
                };
                self.state = InitiatorState::ExpectChallenge {
                    ntlm,
                    mech_types_der: init.mech_types_der(),
                };
                Ok(Step::Continue(init.encode()))
            }
            (
                InitiatorState::ExpectChallenge {
                    ntlm,
                    mech_types_der,
                },
                Some(token),
            ) => {
                let resp = NegTokenResp::parse(token)?;
                match resp.neg_state {
                    Some(NegState::AcceptIncomplete | NegState::RequestMic) => {}
                    Some(NegState::Reject) => return Err(SpnegoError::Rejected),
                    other => {
                        return Err(SpnegoError::UnexpectedState {
                            expected: "accept-incomplete",
                            found: other.map_or("absent", NegState::name),
                        })
                    }
                }
                if let Some(mech) = resp.supported_mech.filter(|m| !m.is_ntlmssp()) {
                    return Err(SpnegoError::WrongMechanism(mech.to_string()));
                }
                let challenge = resp.response_token.ok_or(SpnegoError::NoResponseToken)?;
                let (authenticate, established) = ntlm.handle_challenge(&challenge)?;
                let mut security = established.session_security().ok().map(Box::new);
                let mech_list_mic = security
                    .as_mut()
                    .map(|s| s.get_mic(&mech_types_der).to_vec());
                let reply = NegTokenResp {
                    neg_state: None,
                    supported_mech: None,
                    response_token: Some(authenticate),
                    mech_list_mic,
                };
                self.state = InitiatorState::ExpectFinal {
                    security,
                    mech_types_der,
                };
                Ok(Step::Continue(reply.encode()))
            }
            (
                InitiatorState::ExpectFinal {
                    security,
                    mech_types_der,
                },
                Some(token),
            ) => {
                let resp = NegTokenResp::parse(token)?;
                match resp.neg_state {
                    Some(NegState::AcceptCompleted) => {}
                    Some(NegState::Reject) => return Err(SpnegoError::Rejected),
                    other => {
                        return Err(SpnegoError::UnexpectedState {
                            expected: "accept-completed",
                            found: other.map_or("absent", NegState::name),
                        })
                    }
                }
                if let Some(mic) = &resp.mech_list_mic {
                    let mut security = security.ok_or(NtlmError::NoSessionSecurity)?;
                    security
                        .verify_mic(&mech_types_der, mic)
                        .map_err(|_| SpnegoError::MechListMicMismatch)?;
                }
                self.state = InitiatorState::Done;
                Ok(Step::Done(None))
            }
            (InitiatorState::Start(_), Some(_)) => Err(SpnegoError::OutOfOrder(
                "a server token arrived before the first token was sent",
            )),
            (InitiatorState::ExpectChallenge { .. } | InitiatorState::ExpectFinal { .. }, None) => {
                Err(SpnegoError::OutOfOrder(
                    "the server's token is needed to continue",
                ))
            }
            (InitiatorState::Done, _) => {
                self.state = InitiatorState::Done;
                Err(SpnegoError::OutOfOrder(
                    "the SPNEGO exchange is already complete",
                ))
            }
            (InitiatorState::Spent, _) => Err(SpnegoError::OutOfOrder(
                "the SPNEGO exchange already failed",
            )),
        }
    }
}

/// The acceptor of NTLM in SPNEGO, waiting for the client's NegTokenInit.
#[derive(Debug, Clone)]
pub struct SpnegoNtlmAcceptor {
    ntlm: ExpectNegotiate,
}

impl SpnegoNtlmAcceptor {
    /// An acceptor that has not seen a token yet.
    pub fn new(inputs: ServerInputs) -> Self {
        Self {
            ntlm: ExpectNegotiate::new(inputs),
        }
    }

    /// Answers a NegTokenInit whose first mechanism is NTLMSSP and which carries the NTLM
    /// NEGOTIATE: a NegTokenResp (accept-incomplete, NTLMSSP, CHALLENGE) to send, and the state
    /// that waits for the AUTHENTICATE.
    pub fn handle_init(
        self,
        token: &[u8],
    ) -> Result<(Vec<u8>, SpnegoExpectAuthenticate), SpnegoError> {
        let init = NegTokenInit::parse(token)?;
        match init.mech_types.first() {
            Some(first) if first.is_ntlmssp() => {}
            first => {
                return Err(SpnegoError::NtlmNotPreferred {
                    preferred: first.map(Oid::to_string).unwrap_or_default(),
                })
            }
        }
        let negotiate = init.mech_token.as_deref().ok_or(SpnegoError::NoMechToken)?;
        let (challenge, ntlm) = self.ntlm.handle_negotiate(negotiate)?;
        let reply = NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: Some(Oid::known(Oid::NTLMSSP)),
            response_token: Some(challenge),
            mech_list_mic: None,
        };
        Ok((
            reply.encode(),
            SpnegoExpectAuthenticate {
                ntlm,
                mech_types_der: init.mech_types_der(),
            },
        ))
    }
}

/// The acceptor of NTLM in SPNEGO, waiting for the NegTokenResp with the AUTHENTICATE.
#[derive(Debug, Clone)]
pub struct SpnegoExpectAuthenticate {
    ntlm: ExpectAuthenticate,
    mech_types_der: Vec<u8>,
}

impl SpnegoExpectAuthenticate {
    /// Verifies the client's AUTHENTICATE (see
    /// [`handle_authenticate`](ExpectAuthenticate::handle_authenticate)) and its mechListMIC;
    /// returns the final NegTokenResp (accept-completed, with our mechListMIC when the client
    /// sent one) and who the client is.
    pub fn handle_response(
        self,
        token: &[u8],
        verify: VerifyInputs<'_>,
    ) -> Result<(Vec<u8>, NtlmAuthenticated), SpnegoError> {
        let (authenticate, client_mic) = read_response(token)?;
        let who = self.ntlm.handle_authenticate(&authenticate, verify)?;
        finish(who, &self.mech_types_der, client_mic.as_deref())
    }

    /// [`handle_response`](Self::handle_response) when someone else holds the user's key
    /// (see [`ExpectAuthenticate::handle_authenticate_remote`]): the AUTHENTICATE whose
    /// NTLMv2 response the verifier checks, then
    /// [`SpnegoExpectSessionKey::handle_session_key`] with its verdict.
    pub fn handle_response_remote(
        self,
        token: &[u8],
    ) -> Result<SpnegoExpectSessionKey, SpnegoError> {
        let (authenticate, client_mic) = read_response(token)?;
        Ok(SpnegoExpectSessionKey {
            ntlm: self.ntlm.handle_authenticate_remote(&authenticate)?,
            mech_types_der: self.mech_types_der,
            client_mic,
        })
    }
}

/// NTLM inside SPNEGO waiting for the session base key from whoever checks the NTLMv2
/// response (a domain controller).
#[derive(Debug, Clone)]
pub struct SpnegoExpectSessionKey {
    ntlm: ExpectSessionKey,
    mech_types_der: Vec<u8>,
    client_mic: Option<Vec<u8>>,
}

impl SpnegoExpectSessionKey {
    /// The AUTHENTICATE waiting for its verdict: user, domain, challenge and response.
    pub fn ntlm(&self) -> &ExpectSessionKey {
        &self.ntlm
    }

    /// Finishes with the verifier's session base key (see
    /// [`ExpectSessionKey::handle_session_key`]) and checks the mechListMIC: the final
    /// NegTokenResp and who the client is.
    pub fn handle_session_key(
        self,
        session_base_key: [u8; 16],
        check: CheckInputs<'_>,
    ) -> Result<(Vec<u8>, NtlmAuthenticated), SpnegoError> {
        let who = self.ntlm.handle_session_key(session_base_key, check)?;
        finish(who, &self.mech_types_der, self.client_mic.as_deref())
    }
}

/// The AUTHENTICATE and the mechListMIC of a client's NegTokenResp.
fn read_response(token: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), SpnegoError> {
    let resp = NegTokenResp::parse(token)?;
    if resp.neg_state == Some(NegState::Reject) {
        return Err(SpnegoError::Rejected);
    }
    let authenticate = resp.response_token.ok_or(SpnegoError::NoResponseToken)?;
    Ok((authenticate, resp.mech_list_mic))
}

/// Checks the client's mechListMIC with the exchange's session key and makes the final
/// NegTokenResp.
fn finish(
    who: NtlmAuthenticated,
    mech_types_der: &[u8],
    client_mic: Option<&[u8]>,
) -> Result<(Vec<u8>, NtlmAuthenticated), SpnegoError> {
    let mech_list_mic = match client_mic {
        Some(mic) => {
            let mut security = who.session_security()?;
            security
                .verify_mic(mech_types_der, mic)
                .map_err(|_| SpnegoError::MechListMicMismatch)?;
            Some(security.get_mic(mech_types_der).to_vec())
        }
        None if who.mic_present => return Err(SpnegoError::MechListMicMissing),
        None => None,
    };
    let reply = NegTokenResp {
        neg_state: Some(NegState::AcceptCompleted),
        supported_mech: None,
        response_token: None,
        mech_list_mic,
    };
    Ok((reply.encode(), who))
}

const TAG_APPLICATION_0: u8 = 0x60;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_ENUMERATED: u8 = 0x0a;

/// The tag of an explicit context-specific field `[n]`.
const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// The shared reader's errors, in SPNEGO's words; a wrong tag is named by the caller.
fn malformed(e: DerError, what: &'static str) -> SpnegoError {
    SpnegoError::Malformed(match e {
        DerError::Truncated => "a DER value is truncated",
        DerError::MultiByteTag => "multi-byte DER tags are not used by SPNEGO",
        DerError::IndefiniteLength => "indefinite DER lengths are not allowed",
        DerError::LengthTooLarge => "a DER length is too large",
        DerError::NonMinimalLength => "a DER length is not minimal",
        DerError::UnexpectedTag { .. } => what,
        DerError::TrailingBytes => "trailing bytes after a DER value",
    })
}

/// Reads one TLV with tag `tag` at the start of `b`; returns its contents and what follows.
/// The value is read before its tag is checked, so a malformed value is reported as such.
fn tlv<'a>(b: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), SpnegoError> {
    let mut der = Reader::new(b);
    let (found, contents) = der.any().map_err(|e| malformed(e, what))?;
    if found != tag {
        return Err(SpnegoError::Malformed(what));
    }
    Ok((contents, der.rest()))
}

/// Reads one TLV with tag `tag` that must fill `b` exactly.
fn only<'a>(b: &'a [u8], tag: u8, what: &'static str) -> Result<&'a [u8], SpnegoError> {
    match tlv(b, tag, what)? {
        (contents, []) => Ok(contents),
        _ => Err(malformed(DerError::TrailingBytes, what)),
    }
}

/// Encodes one TLV.
fn encode_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    der::encode(tag, contents)
}

fn push_octets(seq: &mut Vec<u8>, n: u8, value: Option<&[u8]>) {
    if let Some(v) = value {
        seq.extend(encode_tlv(ctx(n), &encode_tlv(TAG_OCTET_STRING, v)));
    }
}

fn mech_type_list_der(mechs: &[Oid]) -> Vec<u8> {
    let oids: Vec<u8> = mechs
        .iter()
        .flat_map(|m| encode_tlv(TAG_OID, m.der_contents()))
        .collect();
    encode_tlv(TAG_SEQUENCE, &oids)
}

fn parse_mech_type_list(b: &[u8]) -> Result<Vec<Oid>, SpnegoError> {
    let mut list = only(b, TAG_SEQUENCE, "mechTypes")?;
    let mut mechs = Vec::new();
    while !list.is_empty() {
        let (oid, rest) = tlv(list, TAG_OID, "mechTypes")?;
        mechs.push(Oid::from_der_contents(oid)?);
        list = rest;
    }
    Ok(mechs)
}

/// The explicit context-tagged fields of a SEQUENCE, read in increasing tag order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    /// The contents of field `[n]` if it comes next.
    fn take(&mut self, n: u8) -> Result<Option<&'a [u8]>, SpnegoError> {
        if self.rest.first() != Some(&ctx(n)) {
            return Ok(None);
        }
        let (contents, rest) = tlv(self.rest, ctx(n), "field")?;
        self.rest = rest;
        Ok(Some(contents))
    }

    /// An OCTET STRING field `[n]`.
    fn octets(&mut self, n: u8, what: &'static str) -> Result<Option<Vec<u8>>, SpnegoError> {
        match self.take(n)? {
            Some(f) => Ok(Some(only(f, TAG_OCTET_STRING, what)?.to_vec())),
            None => Ok(None),
        }
    }

    fn end(self) -> Result<(), SpnegoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SpnegoError::Malformed("an unknown or out-of-order field"))
        }
    }
}

/// Fuzz check: parses `data` as both token kinds (each must encode back to a token that parses
/// to the same value, and to the same bytes, DER being canonical), and feeds it to the acceptor
/// and the initiator.
pub(crate) fn fuzz_check(data: &[u8]) {
    if let Ok(init) = NegTokenInit::parse(data) {
        let encoded = init.encode();
        assert_eq!(encoded, data, "{init:?}");
        assert_eq!(NegTokenInit::parse(&encoded).as_ref(), Ok(&init));
    }
    if let Ok(resp) = NegTokenResp::parse(data) {
        let encoded = resp.encode();
        assert_eq!(encoded, data, "{resp:?}");
        assert_eq!(NegTokenResp::parse(&encoded).as_ref(), Ok(&resp));
    }
    let _ = is_ntlmssp_init(data);
    let inputs = ServerInputs {
        server_challenge: [1; 8],
        timestamp: 0,
        netbios_domain: "D".into(),
        netbios_computer: "C".into(),
        dns_domain: String::new(),
        dns_computer: String::new(),
    };
    let _ = SpnegoNtlmAcceptor::new(inputs.clone()).handle_init(data);
    let credentials = NtlmCredentials::from_nt_hash("D", "u", [0; 16]);
    let client_inputs = ClientInputs {
        timestamp_fallback: 0,
        client_challenge: [2; 8],
        exported_session_key: [3; 16],
        channel_bindings: None,
        target_spn: None,
        workstation: None,
    };
    let mut initiator = SpnegoNtlmInitiator::new(credentials, client_inputs);
    if let Ok(Step::Continue(init)) = initiator.step(None) {
        if let Ok((_, expect)) = SpnegoNtlmAcceptor::new(inputs).handle_init(&init) {
            let lookup = |_: &str, _: &str| Some([0u8; 16]);
            let _ = expect.handle_response(
                data,
                VerifyInputs {
                    now: 0,
                    max_skew_secs: u64::MAX,
                    channel_bindings: crate::scheme::ntlm::server::ChannelBindingCheck::Off,
                    expected_channel_bindings: None,
                    lookup: &lookup,
                },
            );
        }
        let _ = initiator.step(Some(data));
    }
}

#[cfg(test)]
mod tests;
