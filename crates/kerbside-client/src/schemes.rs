//! The mechanisms a connection-based exchange can run (Kerberos through GSSAPI, NTLM
//! in pure Rust, NTLM inside SPNEGO), and the per-request password schemes (Digest,
//! Basic), behind one small interface for [`Client`](crate::Client).

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use kerbside_gssapi::{GssError, NegotiateInitiator};
use kerbside_proto::scheme::digest::client::{DigestPolicy, DigestSession, Rechallenge};
use kerbside_proto::scheme::digest::{self, BodyHash};
use kerbside_proto::scheme::ntlm::client::{ClientInputs, NtlmCredentials, NtlmInitiator};
use kerbside_proto::scheme::ntlm::{crypto, NtlmError};
use kerbside_proto::spnego::SpnegoNtlmInitiator;
use kerbside_proto::{AuthenticationInfo, Challenge, Mechanism, Step};

use crate::error::{Error, ErrorKind};
use crate::keyring::FoundCredential;

/// One exchange's mechanism. Each value is used for one exchange on one connection.
#[derive(Debug)]
pub(crate) enum Initiator {
    /// Kerberos through SPNEGO, by GSSAPI.
    Gss(NegotiateInitiator),
    /// NTLM under the `NTLM` scheme.
    Ntlm(Box<NtlmInitiator>),
    /// NTLM inside SPNEGO under the `Negotiate` scheme.
    SpnegoNtlm(Box<SpnegoNtlmInitiator>),
}

/// Why a mechanism failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitiatorError {
    /// GSSAPI (Kerberos).
    #[error(transparent)]
    Gss(#[from] GssError),
    /// NTLM.
    #[error(transparent)]
    Ntlm(#[from] NtlmError),
    /// SPNEGO around NTLM.
    #[error(transparent)]
    Spnego(#[from] kerbside_proto::spnego::SpnegoError),
}

impl InitiatorError {
    /// The GSSAPI error, if this is one.
    pub(crate) fn gss(&self) -> Option<&GssError> {
        match self {
            Self::Gss(e) => Some(e),
            Self::Ntlm(_) | Self::Spnego(_) => None,
        }
    }
}

/// The client's error for a failed exchange, with the Kerberos problem behind it
/// (if any) recorded, so [`Error::kerberos_unavailable`] can tell.
pub(crate) fn exchange_error(
    e: kerbside_proto::scheme::negotiate::client::NegotiateError<InitiatorError>,
) -> Error {
    use kerbside_proto::scheme::negotiate::client::NegotiateError;
    let problem = match &e {
        NegotiateError::Mechanism(m) => m.gss().map(GssError::problem),
        _ => None,
    };
    Error::with_source(ErrorKind::Auth, e.to_string(), e).with_kerberos_problem(problem)
}

/// The client's error for a GSSAPI failure, with its problem recorded.
pub(crate) fn gss_error(e: GssError) -> Error {
    let problem = e.problem();
    Error::with_source(ErrorKind::Auth, e.to_string(), e).with_kerberos_problem(Some(problem))
}

impl Mechanism for Initiator {
    type Error = InitiatorError;

    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, InitiatorError> {
        match self {
            Self::Gss(m) => Ok(m.step(input)?),
            Self::Ntlm(m) => Ok(m.step(input)?),
            Self::SpnegoNtlm(m) => Ok(m.step(input)?),
        }
    }
}

/// The current time as a Windows FILETIME (100 ns since 1601-01-01), as NTLM wants.
pub(crate) fn filetime_now() -> u64 {
    kerbside_proto::scheme::ntlm::filetime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// `n` random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| format!("the system has no random numbers: {e}"))?;
    Ok(out)
}

/// Splits `DOMAIN\user` into its parts; `user@domain` and a bare `user` keep an empty
/// domain (the server then takes the user principal name or its own domain).
pub(crate) fn split_domain(user: &str) -> (&str, &str) {
    match user.split_once('\\') {
        Some((domain, user)) => (domain, user),
        None => ("", user),
    }
}

/// What to add to "the proxy (or server) refused the NTLM credentials" when the credential
/// was an `ntlmv2_hash`: the likely causes, which the refusal cannot tell apart.
pub(crate) fn ntlmv2_hash_hint(found: Option<FoundCredential<'_>>) -> String {
    match found {
        Some(found) if matches!(found.secret, crate::keyring::Secret::Ntlmv2Hash(_)) => format!(
            "; the keyring file holds an ntlmv2_hash for {}, which answers only for the \
             user and domain it was made for: a hash made for another user or domain (or \
             from an old password) is refused like a wrong password. Make it again for \
             exactly this user and domain with `kerbside nt-hash --ntlmv2`; a \
             hash copied from cntlm 0.92's -H output is printed with every bit inverted \
             (see docs/corporate-proxy.md)",
            found.user
        ),
        _ => String::new(),
    }
}

/// NTLM credentials and fresh per-exchange inputs for a found user name and password.
pub(crate) fn ntlm_inputs(
    found: &FoundCredential<'_>,
    host: &str,
    channel_bindings: Option<Vec<u8>>,
) -> Result<(NtlmCredentials, ClientInputs), String> {
    let (domain, user) = split_domain(found.user);
    let credentials = match found.secret {
        crate::keyring::Secret::Password(password) => {
            NtlmCredentials::from_password(domain, user, password)
        }
        crate::keyring::Secret::NtHash(hash) => NtlmCredentials::from_nt_hash(domain, user, *hash),
        // cntlm (and `kerbside nt-hash`) made the hash with the domain in
        // capitals: send it so, for the server's NTOWFv2 to match.
        crate::keyring::Secret::Ntlmv2Hash(key) => {
            NtlmCredentials::from_ntowfv2(&crypto::uppercase_name(domain), user, *key)
        }
    };
    let inputs = ClientInputs {
        timestamp_fallback: filetime_now(),
        client_challenge: random::<8>()?,
        exported_session_key: random::<16>()?,
        channel_bindings,
        target_spn: Some(format!("HTTP/{host}")),
        workstation: None,
    };
    Ok((credentials, inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_split_only_on_a_backslash() {
        assert_eq!(split_domain("EXAMPLE\\alice"), ("EXAMPLE", "alice"));
        assert_eq!(
            split_domain("alice@example.test"),
            ("", "alice@example.test")
        );
        assert_eq!(split_domain("alice"), ("", "alice"));
    }

    #[test]
    fn filetime_is_after_2020() {
        // 2020-01-01 as FILETIME.
        assert!(filetime_now() > 132_223_104_000_000_000);
    }
}

/// A Digest login (RFC 7616) to one origin: the session of `kerbside-proto`, shared by
/// the requests of a client, each taking the next nonce count.
#[derive(Debug)]
pub(crate) struct DigestState {
    session: Mutex<DigestSession>,
    /// The user name, for messages.
    user: String,
}

fn auth_error(message: String) -> Error {
    Error::new(ErrorKind::Auth, message)
}

impl DigestState {
    /// A login answering the strongest Digest challenge the policy allows.
    pub(crate) fn start(
        challenges: &[Challenge],
        user: &str,
        password: &str,
        allow_md5: bool,
    ) -> Result<DigestState, Error> {
        let challenge = digest::client::choose(challenges, &DigestPolicy { allow_md5 })
            .map_err(|e| auth_error(e.to_string()))?;
        Ok(DigestState {
            session: Mutex::new(DigestSession::new(challenge, user, password)),
            user: user.to_owned(),
        })
    }

    /// The user name the login answers for.
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DigestSession> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `Authorization` value for one request, and a copy of the session as it
    /// signed it, to check that request's `Authentication-Info` against (requests of
    /// one login may be in flight at once, each with its own nonce count); `body`
    /// (when kept in memory) lets the client answer `qop=auth-int`.
    pub(crate) fn authorization(
        &self,
        method: &str,
        uri: &str,
        body: Option<&Bytes>,
    ) -> Result<(String, Box<DigestSession>), Error> {
        let cnonce = hex(&random::<16>().map_err(auth_error)?);
        let mut session = self.lock();
        let body = body.map(|b| BodyHash::of(session.algorithm().hash(), b));
        let credentials = session
            .authorization(method, uri, body.as_ref(), &cnonce)
            .map_err(|e| auth_error(format!("cannot answer the Digest challenge: {e}")))?;
        Ok((
            digest::to_header_value(&credentials),
            Box::new(session.clone()),
        ))
    }

    /// A login of its own for one request: the same credentials and nonce, counted
    /// apart from this one (for a stale nonce's new challenge, which belongs to that
    /// request alone).
    pub(crate) fn fork(&self) -> DigestState {
        DigestState {
            session: Mutex::new(self.lock().clone()),
            user: self.user.clone(),
        }
    }

    /// Takes the new nonce of a `stale=true` challenge; false if the 401 refused the
    /// credentials instead.
    pub(crate) fn take_stale(&self, challenges: &[Challenge]) -> bool {
        self.lock().handle_rechallenge(challenges) == Rechallenge::RetryWithNewNonce
    }
}

/// Checks a response's `Authentication-Info` (`rspauth`) against the request it
/// answers (`signed`, from [`DigestState::authorization`]).
pub(crate) fn check_info(signed: &mut DigestSession, value: &[u8]) -> Result<(), Error> {
    let info = AuthenticationInfo::parse(value).map_err(|e| {
        auth_error(format!(
            "the server sent a malformed Authentication-Info header: {e}"
        ))
    })?;
    signed
        .verify_authentication_info(&info, None)
        .map(|_| ())
        .map_err(|e| auth_error(e.to_string()))
}

/// `Ok` when the Digest challenges on offer (if any) can be answered under the policy;
/// otherwise why not, in words.
pub(crate) fn digest_usable(challenges: &[Challenge], allow_md5: bool) -> Result<(), String> {
    if !challenges.iter().any(|c| c.scheme.is("Digest")) {
        return Ok(());
    }
    digest::client::choose(challenges, &DigestPolicy { allow_md5 })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization: Basic` value for a user name and password.
pub(crate) fn basic(user: &str, password: &str) -> Result<String, Error> {
    kerbside_proto::scheme::basic::credentials(user, password)
        .map(|c| c.to_header_value())
        .map_err(|e| auth_error(format!("cannot send Basic credentials: {e}")))
}
