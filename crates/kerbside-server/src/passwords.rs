//! The schemes the gate checks against its own user files, for clients without a
//! Kerberos ticket: NTLM (NT hashes, `--ntlm-users`), Digest (htdigest lines,
//! `--digest-users`) and Basic (htpasswd with bcrypt, `--basic-users`).
//!
//! The files hold password equivalents (an NT hash or an HA1 logs in as well as the
//! password), so a file that others can read is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kerbside_proto::scheme::basic::htpasswd::{Htpasswd, Verdict};
use kerbside_proto::scheme::digest::htdigest::Htdigest;
use kerbside_proto::scheme::digest::server::{DigestRefusal, DigestServer, DigestVerified};
use kerbside_proto::scheme::digest::{Algorithm, HashFunction};
use kerbside_proto::scheme::ntlm::server::{
    ChannelBindingCheck, CheckInputs, ExpectAuthenticate, ExpectNegotiate, ServerInputs,
    VerifyInputs,
};
use kerbside_proto::scheme::ntlm::users::NtlmUsers;
use kerbside_proto::scheme::ntlm::NtlmError;
use kerbside_proto::spnego::{SpnegoError, SpnegoExpectAuthenticate, SpnegoNtlmAcceptor};
use kerbside_proto::{Challenge, Credentials};

use crate::identity::DomainAccount;
use crate::ntlm_winbind::{WinbindNtlm, WinbindRefusal};

/// The largest user file read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// How far an NTLMv2 response's time may be from the gate's (Kerberos allows the same).
const NTLM_MAX_SKEW_SECS: u64 = 300;

/// Reads a file that must be private to its owner (no access for group or others).
pub fn read_private(path: &Path, what: &str) -> Result<Vec<u8>, crate::SetupError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the {what} {} can be read by others (mode {:o}): it holds password \
             equivalents; run chmod 600 on it",
            path.display(),
            mode & 0o777
        )
        .into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!(
            "the {what} {} is larger than {MAX_FILE} bytes",
            path.display()
        )
        .into());
    }
    std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()).into())
}

/// Unix seconds now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now as a FILETIME (100 ns since 1601).
fn filetime_now() -> u64 {
    kerbside_proto::scheme::ntlm::filetime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// NTLM in the gate: who checks the responses (the users file's NT hashes, or the
/// domain controller through winbind), and the names the gate gives itself in its
/// CHALLENGE.
#[derive(Debug, Clone)]
pub struct NtlmSettings {
    verifier: NtlmVerifier,
    /// The NetBIOS domain the CHALLENGE names.
    pub domain: String,
    /// The NetBIOS computer name the CHALLENGE names.
    pub computer: String,
    /// Also take NTLMSSP inside `Negotiate` (SPNEGO), as Windows clients and curl
    /// with gss-ntlmssp send it without a Kerberos ticket.
    pub in_negotiate: bool,
}

/// Who checks an NTLMv2 response.
#[derive(Debug, Clone)]
enum NtlmVerifier {
    /// The users file's NT hashes, here.
    Users(Arc<NtlmUsers>),
    /// The domain controller, through winbindd (`--ntlm-winbind`).
    Winbind(Arc<WinbindNtlm>),
}

/// A verified NTLM logon.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NtlmLogin {
    /// The user's name: as the users file spells it, or for a domain account the
    /// principal Kerberos would give it (`Erin@AD.EXAMPLE.TEST`, from the logon record).
    pub principal: String,
    /// Whether the TLS channel bindings matched.
    pub channel_bound: bool,
    /// The domain account and its groups (`--ntlm-winbind`); `None` for the users file.
    pub account: Option<DomainAccount>,
}

/// Why an NTLM logon was refused.
#[derive(Debug, thiserror::Error)]
pub enum NtlmRefusal {
    /// The exchange itself failed (malformed, NTLMv1, wrong response, MIC, bindings…).
    #[error(transparent)]
    Ntlm(#[from] NtlmError),
    /// NTLM inside SPNEGO failed.
    #[error(transparent)]
    Spnego(#[from] SpnegoError),
    /// The domain controller refused, or could not be asked.
    #[error(transparent)]
    Domain(#[from] WinbindRefusal),
}

impl NtlmRefusal {
    /// Whether the domain controller could not be asked (the client is not at fault).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Domain(d) if d.is_unavailable())
    }
}

/// The host's name, in capitals and without its domain, for NTLM's CHALLENGE.
fn computer_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_ascii_uppercase))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "KERBSIDE".to_owned())
}

impl NtlmSettings {
    /// NTLM for the accounts of the domain the host is joined to, checked by its domain
    /// controller through winbindd (see [`crate::ntlm_winbind`]).
    pub fn winbind(ntlm: WinbindNtlm, in_negotiate: bool) -> Self {
        Self {
            domain: ntlm.domain().netbios.clone(),
            computer: computer_name(),
            in_negotiate,
            verifier: NtlmVerifier::Winbind(Arc::new(ntlm)),
        }
    }

    /// Loads the users file (`USER:NTHASH` lines, see `kerbside ntlm-passwd`).
    pub fn load(path: &Path, in_negotiate: bool) -> Result<Self, crate::SetupError> {
        let bytes = read_private(path, "NTLM users file")?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("the NTLM users file {} is not UTF-8", path.display()))?;
        let users = NtlmUsers::parse(&text)
            .map_err(|e| format!("the NTLM users file {}: {e}", path.display()))?;
        Ok(Self {
            verifier: NtlmVerifier::Users(Arc::new(users)),
            domain: "KERBSIDE".to_owned(),
            computer: computer_name(),
            in_negotiate,
        })
    }

    fn inputs(&self) -> Result<ServerInputs, String> {
        let mut server_challenge = [0u8; 8];
        getrandom::fill(&mut server_challenge)
            .map_err(|e| format!("the system has no random numbers: {e}"))?;
        Ok(ServerInputs {
            server_challenge,
            timestamp: filetime_now(),
            netbios_domain: self.domain.clone(),
            netbios_computer: self.computer.clone(),
            dns_domain: match &self.verifier {
                NtlmVerifier::Winbind(w) => w.domain().dns.clone(),
                NtlmVerifier::Users(_) => String::new(),
            },
            dns_computer: String::new(),
        })
    }

    /// Answers a NEGOTIATE message: the CHALLENGE and the state to keep with the
    /// connection.
    pub(crate) fn challenge(
        &self,
        negotiate: &[u8],
    ) -> Result<(Vec<u8>, ExpectAuthenticate), String> {
        ExpectNegotiate::new(self.inputs()?)
            .handle_negotiate(negotiate)
            .map_err(|e| e.to_string())
    }

    /// Answers a SPNEGO NegTokenInit carrying an NTLM NEGOTIATE: the NegTokenResp with
    /// the CHALLENGE, and the state to keep with the connection.
    pub(crate) fn spnego_challenge(
        &self,
        token: &[u8],
    ) -> Result<(Vec<u8>, SpnegoExpectAuthenticate), String> {
        SpnegoNtlmAcceptor::new(self.inputs()?)
            .handle_init(token)
            .map_err(|e| e.to_string())
    }

    /// Whether the domain controller checks the responses (`--ntlm-winbind`): then every
    /// NTLM login is a domain account's.
    pub fn is_domain(&self) -> bool {
        matches!(self.verifier, NtlmVerifier::Winbind(_))
    }

    /// Checks the NegTokenResp with the AUTHENTICATE (and its mechListMIC): the final
    /// NegTokenResp for the client and the login.
    pub async fn spnego_verify(
        &self,
        pending: SpnegoExpectAuthenticate,
        token: &[u8],
        binding: Option<&[u8]>,
        check: ChannelBindingCheck,
    ) -> Result<(Vec<u8>, NtlmLogin), NtlmRefusal> {
        match &self.verifier {
            NtlmVerifier::Users(users) => {
                let lookup = |user: &str, domain: &str| users.lookup(user, domain);
                let (reply, done) =
                    pending.handle_response(token, verify_inputs(binding, check, &lookup))?;
                Ok((
                    reply,
                    NtlmLogin {
                        principal: name_in(users, &done.user, &done.domain),
                        channel_bound: done.channel_bound,
                        account: None,
                    },
                ))
            }
            NtlmVerifier::Winbind(winbind) => {
                let pending = pending.handle_response_remote(token)?;
                let logon = winbind.check(pending.ntlm()).await?;
                let (reply, done) =
                    pending.handle_session_key(logon.session_key, check_inputs(binding, check))?;
                let account = winbind.account(&logon).await?;
                Ok((
                    reply,
                    NtlmLogin {
                        principal: logon.principal,
                        channel_bound: done.channel_bound,
                        account: Some(account),
                    },
                ))
            }
        }
    }

    /// Checks an AUTHENTICATE message against the CHALLENGE this connection sent: the
    /// login, with the user's name as the users file spells it (see [`NtlmUsers::find`]),
    /// or for a domain account as Kerberos names it (`Erin@REALM`), with its groups.
    pub async fn verify(
        &self,
        pending: ExpectAuthenticate,
        authenticate: &[u8],
        binding: Option<&[u8]>,
        check: ChannelBindingCheck,
    ) -> Result<NtlmLogin, NtlmRefusal> {
        match &self.verifier {
            NtlmVerifier::Users(users) => {
                let lookup = |user: &str, domain: &str| users.lookup(user, domain);
                let done = pending
                    .handle_authenticate(authenticate, verify_inputs(binding, check, &lookup))?;
                Ok(NtlmLogin {
                    principal: name_in(users, &done.user, &done.domain),
                    channel_bound: done.channel_bound,
                    account: None,
                })
            }
            NtlmVerifier::Winbind(winbind) => {
                let pending = pending.handle_authenticate_remote(authenticate)?;
                let logon = winbind.check(&pending).await?;
                let done =
                    pending.handle_session_key(logon.session_key, check_inputs(binding, check))?;
                let account = winbind.account(&logon).await?;
                Ok(NtlmLogin {
                    principal: logon.principal,
                    channel_bound: done.channel_bound,
                    account: Some(account),
                })
            }
        }
    }
}

/// The name of the entry a verified user and domain were checked against: `alice` or
/// `EXAMPLE\bob` as the file writes it, never the client's spelling.
fn name_in(users: &NtlmUsers, user: &str, domain: &str) -> String {
    match users.find(user, domain) {
        Some(entry) => entry.name(),
        // Verification looked the same entry up; this is not reached.
        None => user.to_owned(),
    }
}

/// What an AUTHENTICATE whose response the domain controller checked is checked with.
fn check_inputs(binding: Option<&[u8]>, check: ChannelBindingCheck) -> CheckInputs<'_> {
    CheckInputs {
        now: filetime_now(),
        max_skew_secs: NTLM_MAX_SKEW_SECS,
        channel_bindings: check,
        expected_channel_bindings: binding,
    }
}

/// What an AUTHENTICATE is checked with: now, the skew allowed, the channel binding.
fn verify_inputs<'a>(
    binding: Option<&'a [u8]>,
    check: ChannelBindingCheck,
    lookup: &'a dyn Fn(&str, &str) -> Option<[u8; 16]>,
) -> VerifyInputs<'a> {
    VerifyInputs {
        now: filetime_now(),
        max_skew_secs: NTLM_MAX_SKEW_SECS,
        channel_bindings: check,
        expected_channel_bindings: binding,
        lookup,
    }
}

/// The NTLM message type of a token (1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE), if it
/// is an NTLMSSP message at all.
pub fn ntlm_message_type(token: &[u8]) -> Option<u32> {
    let signature = token.get(..8)?;
    if signature != b"NTLMSSP\0" {
        return None;
    }
    let t = token.get(8..12)?;
    Some(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
}

/// The Kerberos principal a user name typed for Basic (checked against the KDC) stands
/// for, in the forms Active Directory users type:
///
/// - `bob` and `bob@REALM`: as they are;
/// - `bob@ad.example.com` (a UPN): as it is; GSSAPI asks the KDC for it as an enterprise
///   name, which the KDC maps to the account (`bob@AD.EXAMPLE.COM`);
/// - `NETBIOS\bob`: `bob` of the default realm, when `NETBIOS` is the realm's NetBIOS
///   domain name `netbios` (in any case); another domain is refused.
pub fn basic_principal(user: &str, netbios: Option<&str>) -> Result<String, String> {
    if user.is_empty() || user.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!("{user:?} is not a user name"));
    }
    let Some((domain, name)) = user.split_once('\\') else {
        return Ok(user.to_owned());
    };
    if name.is_empty() || name.contains(['\\', '@']) {
        return Err(format!("{user:?} is not DOMAIN\\user"));
    }
    match netbios {
        Some(ours) if domain.eq_ignore_ascii_case(ours) => Ok(name.to_owned()),
        Some(ours) => Err(format!(
            "the domain {domain:?} of {user:?} is not this realm's NetBIOS domain {ours} \
             (set netbios-domain if it is)"
        )),
        None => Err(format!(
            "{user:?} names a NetBIOS domain, and none is set for this realm (netbios-domain)"
        )),
    }
}

/// Digest in the gate: a realm, the nonce key, and an htdigest file.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    server: Arc<DigestServer>,
    users: Arc<Htdigest>,
}

impl DigestSettings {
    /// Loads the users file and makes a server for `realm` with a fresh nonce key;
    /// MD5 is offered after SHA-256 only when `allow_md5` and the file has MD5 lines.
    pub fn load(
        path: &Path,
        realm: &str,
        allow_md5: bool,
        nonce_lifetime: u64,
    ) -> Result<Self, crate::SetupError> {
        let bytes = read_private(path, "Digest users file")?;
        let users = Htdigest::parse(&bytes)
            .map_err(|e| format!("the Digest users file {}: {e}", path.display()))?;
        if !users.entries().iter().any(|e| e.realm == realm) {
            tracing::warn!(
                "the Digest users file {} has no user in realm {realm:?}: nobody can log in",
                path.display()
            );
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("the system has no random numbers: {e}"))?;
        let mut algorithms = vec![Algorithm::new(HashFunction::Sha256, false)];
        if allow_md5 {
            algorithms.push(Algorithm::new(HashFunction::Md5, false));
        }
        let server = DigestServer::new(realm, key)
            .and_then(|s| s.with_algorithms(&algorithms))
            .and_then(|s| s.with_nonce_lifetime(nonce_lifetime))
            .map_err(|e| format!("Digest: {e}"))?;
        Ok(Self {
            server: Arc::new(server),
            users: Arc::new(users),
        })
    }

    /// The challenges of a 401, strongest first, each for its own header line.
    pub fn challenges(&self, stale: bool) -> Vec<Challenge> {
        self.server.challenges(unix_now(), stale)
    }

    /// Verifies `Authorization: Digest`.
    pub fn verify(
        &self,
        credentials: &Credentials,
        method: &str,
        request_target: &str,
    ) -> Result<DigestVerified, DigestRefusal> {
        self.server.verify(
            credentials,
            method,
            request_target,
            self.users.as_ref(),
            unix_now(),
        )
    }

    /// The value of a challenge line.
    pub fn header_value(challenge: &Challenge) -> String {
        kerbside_proto::scheme::digest::challenge_header_value(challenge)
    }
}

/// Basic in the gate against an htpasswd file (bcrypt hashes).
#[derive(Debug, Clone)]
pub struct BasicUsers {
    users: Arc<Htpasswd>,
}

impl BasicUsers {
    /// Loads the htpasswd file (`htpasswd -B` lines).
    pub fn load(path: &Path) -> Result<Self, crate::SetupError> {
        let bytes = read_private(path, "Basic users file")?;
        let users = Htpasswd::parse(&bytes)
            .map_err(|e| format!("the Basic users file {}: {e}", path.display()))?;
        Ok(Self {
            users: Arc::new(users),
        })
    }

    /// Whether the file has this user.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains(user)
    }

    /// Checks a password (bcrypt: slow on purpose; call off the async threads).
    pub fn verify(&self, user: &str, password: &str) -> Verdict {
        self.users.verify(user, password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntlm_message_types_are_read_from_the_header_only() {
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(ntlm_message_type(&m), Some(3));
        assert_eq!(ntlm_message_type(b"NTLMSSP\0\x01"), None);
        assert_eq!(ntlm_message_type(b"YIIB"), None);
    }

    #[test]
    fn basic_names_in_ad_forms_map_to_principals() {
        let ours = Some("ADEXAMPLE");
        for (typed, principal) in [
            ("bob", "bob"),
            ("bob@AD.EXAMPLE.TEST", "bob@AD.EXAMPLE.TEST"),
            ("bob@ad.example.test", "bob@ad.example.test"),
            ("ADEXAMPLE\\bob", "bob"),
            ("adexample\\bob", "bob"),
        ] {
            assert_eq!(
                basic_principal(typed, ours).as_deref(),
                Ok(principal),
                "{typed}"
            );
        }
        for refused in [
            "OTHER\\bob",
            "ADEXAMPLE\\",
            "ADEXAMPLE\\a\\b",
            "a/b",
            "",
            "a\nb",
        ] {
            assert!(basic_principal(refused, ours).is_err(), "{refused}");
        }
        let err = basic_principal("OTHER\\bob", ours).unwrap_err();
        assert!(err.contains("netbios-domain"), "{err}");
        assert!(basic_principal("ADEXAMPLE\\bob", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn basic_names_never_panic_and_never_gain_a_domain(user in ".{0,40}") {
            if let Ok(principal) = basic_principal(&user, Some("D")) {
                proptest::prop_assert!(!principal.contains('\\'));
                proptest::prop_assert!(user.ends_with(&principal));
            }
        }
    }

    #[test]
    fn user_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "alice:00112233445566778899AABBCCDDEEFF\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = NtlmSettings::load(&path, false).unwrap_err();
        assert!(err.message().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(NtlmSettings::load(&path, false).is_ok());
    }
}
