//! GSSAPI failures in words a person can act on.

use std::fmt;

use libgssapi::error::Error as RawError;

/// Which side of an exchange a failure happened on; it changes the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client, getting or using a ticket.
    Initiator,
    /// The server, checking a client's token with its keytab.
    Acceptor,
}

/// What went wrong, as far as GSSAPI and krb5 tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No ticket cache, or no usable ticket in it.
    NoCredentials,
    /// The ticket (or the credential) has expired.
    ExpiredTicket,
    /// The clocks differ by more than the allowed skew (5 minutes by default).
    ClockSkew,
    /// The KDC has no such service principal.
    ServerPrincipalUnknown,
    /// The KDC has no such user principal.
    ClientPrincipalUnknown,
    /// The keytab has no key for the principal the ticket is for, or cannot be read.
    KeytabLacksKey,
    /// The keytab's key has another version (kvno) than the one the ticket was made with.
    WrongKeyVersion,
    /// The ticket did not decrypt with the keytab's key (wrong key, or tampered).
    Integrity,
    /// No KDC of the realm answered.
    KdcUnreachable,
    /// The realm of the service is unknown to this machine's Kerberos configuration.
    RealmUnknown,
    /// The same token was presented before.
    Replay,
    /// The bytes are not a valid GSSAPI/SPNEGO token.
    DefectiveToken,
    /// The channel bindings of the token do not match the connection.
    ChannelBindings,
    /// The mechanism or name is not supported.
    Unsupported,
    /// The KDC refused the user's password (pre-authentication failed).
    WrongPassword,
    /// The KDC says the user's credentials are revoked: the account is locked out or
    /// disabled.
    AccountRevoked,
    /// Anything else; the GSSAPI text says more.
    Other,
}

/// A GSSAPI call that failed, with the advice for its [`Problem`].
#[derive(Debug, Clone)]
pub struct GssError {
    problem: Problem,
    side: Side,
    major: u32,
    minor: u32,
    detail: String,
    subject: Option<String>,
}

// krb5 error codes (krb5.h), as GSSAPI reports them in the minor status.
const KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: i32 = -1765328378;
const KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN: i32 = -1765328377;
const KRB5KDC_ERR_NEVER_VALID: i32 = -1765328373;
const KRB5KDC_ERR_CLIENT_REVOKED: i32 = -1765328366;
const KRB5KDC_ERR_PREAUTH_FAILED: i32 = -1765328360;
const KRB5KRB_AP_ERR_BAD_INTEGRITY: i32 = -1765328353;
const KRB5KRB_AP_ERR_TKT_EXPIRED: i32 = -1765328352;
const KRB5KRB_AP_ERR_REPEAT: i32 = -1765328350;
const KRB5KRB_AP_ERR_SKEW: i32 = -1765328347;
const KRB5KRB_AP_ERR_MODIFIED: i32 = -1765328343;
const KRB5KRB_AP_ERR_BADKEYVER: i32 = -1765328340;
const KRB5KRB_AP_ERR_NOKEY: i32 = -1765328339;
const KRB5_CC_NOTFOUND: i32 = -1765328243;
const KRB5_CC_END: i32 = -1765328242;
const KRB5KRB_AP_WRONG_PRINC: i32 = -1765328240;
const KRB5_KDCREP_SKEW: i32 = -1765328236;
const KRB5_REALM_UNKNOWN: i32 = -1765328230;
const KRB5_KDC_UNREACH: i32 = -1765328228;
const KRB5_KT_NOTFOUND: i32 = -1765328203;
const KRB5_KT_END: i32 = -1765328202;
const KRB5_FCC_NOFILE: i32 = -1765328189;
const KRB5_CC_FORMAT: i32 = -1765328185;
const KRB5_REALM_CANT_RESOLVE: i32 = -1765328164;
const KRB5_KT_KVNONOTFOUND: i32 = -1765328154;

// GSSAPI routine errors (RFC 2744 §3.9.1), the byte at bits 16..24 of the major status.
const ROUTINE_MASK: u32 = 0x00ff_0000;
const GSS_S_BAD_MECH: u32 = 1 << 16;
const GSS_S_BAD_NAME: u32 = 2 << 16;
const GSS_S_BAD_NAMETYPE: u32 = 3 << 16;
const GSS_S_BAD_BINDINGS: u32 = 4 << 16;
const GSS_S_BAD_SIG: u32 = 6 << 16;
const GSS_S_NO_CRED: u32 = 7 << 16;
const GSS_S_DEFECTIVE_TOKEN: u32 = 9 << 16;
const GSS_S_DEFECTIVE_CREDENTIAL: u32 = 10 << 16;
const GSS_S_CREDENTIALS_EXPIRED: u32 = 11 << 16;
const GSS_S_CONTEXT_EXPIRED: u32 = 12 << 16;
// Supplementary bit: the token was seen before.
const GSS_S_DUPLICATE_TOKEN: u32 = 1 << 1;

impl Problem {
    /// Classifies a GSSAPI status pair and GSSAPI's text for it.
    ///
    /// MIT's mechanism glue renumbers the krb5 minor codes it passes up (through
    /// SPNEGO in particular), so the raw code only helps when it arrives unmapped;
    /// the krb5 message text (English, as MIT ships it) is the reliable witness. An
    /// unrecognised status is [`Problem::Other`] and keeps GSSAPI's own words.
    pub fn classify(major: u32, minor: u32, text: &str) -> Problem {
        #[allow(clippy::cast_possible_wrap)]
        let by_minor = match minor as i32 {
            KRB5_FCC_NOFILE | KRB5_CC_NOTFOUND | KRB5_CC_END | KRB5_CC_FORMAT => {
                Some(Problem::NoCredentials)
            }
            KRB5KRB_AP_ERR_TKT_EXPIRED => Some(Problem::ExpiredTicket),
            KRB5KRB_AP_ERR_SKEW | KRB5_KDCREP_SKEW | KRB5KDC_ERR_NEVER_VALID => {
                Some(Problem::ClockSkew)
            }
            KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN => Some(Problem::ServerPrincipalUnknown),
            KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN => Some(Problem::ClientPrincipalUnknown),
            KRB5_KT_NOTFOUND | KRB5_KT_END | KRB5KRB_AP_ERR_NOKEY | KRB5KRB_AP_WRONG_PRINC => {
                Some(Problem::KeytabLacksKey)
            }
            KRB5KRB_AP_ERR_BADKEYVER | KRB5_KT_KVNONOTFOUND => Some(Problem::WrongKeyVersion),
            KRB5KRB_AP_ERR_BAD_INTEGRITY | KRB5KRB_AP_ERR_MODIFIED => Some(Problem::Integrity),
            KRB5_KDC_UNREACH => Some(Problem::KdcUnreachable),
            KRB5_REALM_UNKNOWN | KRB5_REALM_CANT_RESOLVE => Some(Problem::RealmUnknown),
            KRB5KRB_AP_ERR_REPEAT => Some(Problem::Replay),
            KRB5KDC_ERR_PREAUTH_FAILED => Some(Problem::WrongPassword),
            KRB5KDC_ERR_CLIENT_REVOKED => Some(Problem::AccountRevoked),
            _ => None,
        };
        if let Some(p) = by_minor.or_else(|| Self::from_text(text)) {
            return p;
        }
        if major & GSS_S_DUPLICATE_TOKEN != 0 && major & ROUTINE_MASK == 0 {
            return Problem::Replay;
        }
        match major & ROUTINE_MASK {
            GSS_S_NO_CRED => Problem::NoCredentials,
            GSS_S_CREDENTIALS_EXPIRED | GSS_S_CONTEXT_EXPIRED => Problem::ExpiredTicket,
            GSS_S_DEFECTIVE_TOKEN | GSS_S_DEFECTIVE_CREDENTIAL => Problem::DefectiveToken,
            GSS_S_BAD_SIG => Problem::Integrity,
            GSS_S_BAD_BINDINGS => Problem::ChannelBindings,
            GSS_S_BAD_MECH | GSS_S_BAD_NAME | GSS_S_BAD_NAMETYPE => Problem::Unsupported,
            _ if major & GSS_S_DUPLICATE_TOKEN != 0 => Problem::Replay,
            _ => Problem::Other,
        }
    }
}

impl Problem {
    /// Recognises the krb5 messages behind the common failures.
    fn from_text(text: &str) -> Option<Problem> {
        let t = text.to_ascii_lowercase();
        let has = |needle: &str| t.contains(needle);
        Some(if has("request is a replay") {
            Problem::Replay
        } else if has("clock skew too great") {
            Problem::ClockSkew
        } else if has("ticket expired") || has("credentials have expired") {
            Problem::ExpiredTicket
        } else if has("cannot contact any kdc") {
            Problem::KdcUnreachable
        } else if has("cannot find kdc for realm") || has("cannot resolve network address for kdc")
        {
            Problem::RealmUnknown
        } else if has("not found in kerberos database") {
            if t.contains("client ") && !t.contains("server ") {
                Problem::ClientPrincipalUnknown
            } else {
                Problem::ServerPrincipalUnknown
            }
        } else if (has("kvno") && has("not found in keytab"))
            || has("key version number for principal in key table is incorrect")
        {
            if has("(ticket kvno") && !has("out of date") {
                // "Request ticket server X not found in keytab (ticket kvno 1)": the
                // keytab has no key for that principal at all.
                Problem::KeytabLacksKey
            } else {
                Problem::WrongKeyVersion
            }
        } else if has("not found in keytab")
            || has("key table entry not found")
            || has("no key table entry found")
            || has("key table file") && has("not found")
        {
            Problem::KeytabLacksKey
        } else if has("no kerberos credentials available")
            || has("no credentials cache found")
            || has("credentials cache") && has("not found")
            || has("matching credential not found")
        {
            Problem::NoCredentials
        } else if has("preauthentication failed") || has("password incorrect") {
            Problem::WrongPassword
        } else if has("credentials have been revoked") {
            Problem::AccountRevoked
        } else if has("cannot decrypt ticket")
            || has("decrypt integrity check failed")
            || has("message stream modified")
            || has("bad integrity")
        {
            Problem::Integrity
        } else {
            return None;
        })
    }
}

impl GssError {
    pub(crate) fn from_raw(err: RawError, side: Side, subject: Option<String>) -> Self {
        Self::from_status(err.major.bits(), err.minor, err.to_string(), side, subject)
    }

    pub(crate) fn from_status(
        major: u32,
        minor: u32,
        detail: String,
        side: Side,
        subject: Option<String>,
    ) -> Self {
        Self {
            problem: Problem::classify(major, minor, &detail),
            side,
            major,
            minor,
            detail: detail.trim().to_owned(),
            subject,
        }
    }

    /// What went wrong.
    pub fn problem(&self) -> Problem {
        self.problem
    }

    /// The side the failure happened on.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The raw GSSAPI major status.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The raw mechanism (krb5) minor status.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// GSSAPI's own text for the status.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The advice for a person, without the GSSAPI text.
    pub fn advice(&self) -> String {
        let about = |prefix: &str| {
            self.subject
                .as_deref()
                .map(|s| format!("{prefix}{s}"))
                .unwrap_or_default()
        };
        match (self.problem, self.side) {
            (Problem::NoCredentials, Side::Initiator) => {
                "no Kerberos credentials for this user: run kinit".to_owned()
            }
            (Problem::NoCredentials, Side::Acceptor) => format!(
                "the server has no usable key{}: check the keytab path and its permissions",
                about(" in ")
            ),
            (Problem::ExpiredTicket, Side::Initiator) => {
                "your Kerberos ticket has expired: run kinit to get a new one".to_owned()
            }
            (Problem::ExpiredTicket, Side::Acceptor) => {
                "the client's Kerberos ticket has expired: the user must run kinit".to_owned()
            }
            (Problem::ClockSkew, _) => "the clocks of this machine and the KDC or the other \
                 side differ by more than the allowed skew (5 minutes): fix the time (NTP)"
                .to_owned(),
            (Problem::ServerPrincipalUnknown, _) => format!(
                "the KDC does not know the service principal{}: check the host name in the \
                 URL (or --spn), or create the principal (kadmin: addprinc -randkey \
                 HTTP/<host>) and export it to the server's keytab",
                about(" for ")
            ),
            (Problem::ClientPrincipalUnknown, _) => {
                "the KDC does not know this user principal: check the name given to kinit"
                    .to_owned()
            }
            (Problem::KeytabLacksKey, _) => format!(
                "the keytab{} has no key for the service principal the client asked for: \
                 export it (kadmin: ktadd -k <keytab> HTTP/<host>) or check --acceptor",
                about(" ")
            ),
            (Problem::WrongKeyVersion, _) => "the keytab's key for this service has another \
                 version (kvno) than the ticket: re-export the current key to the keytab; a \
                 client holding a ticket made with an old key should run kdestroy and kinit"
                .to_owned(),
            (Problem::Integrity, _) => "the token did not verify with the service key: the \
                 keytab holds a different key than the KDC (re-export it), or the token was \
                 altered"
                .to_owned(),
            (Problem::KdcUnreachable, _) => "cannot reach any KDC for the realm: check the kdc \
                 lines of krb5.conf (KRB5_CONFIG), DNS and the network"
                .to_owned(),
            (Problem::RealmUnknown, _) => format!(
                "this machine's Kerberos configuration does not know the realm{}: add it to \
                 [realms] and [domain_realm] in krb5.conf",
                about(" of ")
            ),
            (Problem::Replay, _) => {
                "this token was already used (replay detected): a token is good once".to_owned()
            }
            (Problem::DefectiveToken, _) => {
                "the token is not a valid Kerberos/SPNEGO token".to_owned()
            }
            (Problem::ChannelBindings, _) => {
                "the token is bound to another TLS channel than this connection".to_owned()
            }
            (Problem::Unsupported, Side::Acceptor) => "the token is for a mechanism this server \
                 does not accept (only Kerberos inside SPNEGO is)"
                .to_owned(),
            (Problem::Unsupported, Side::Initiator) => "the mechanism or name is not supported \
                 by GSSAPI here: check that MIT krb5's GSSAPI library is installed"
                .to_owned(),
            (Problem::WrongPassword, _) => {
                "the KDC refused the password: it is wrong (or the account's keys changed)"
                    .to_owned()
            }
            (Problem::AccountRevoked, _) => "the KDC refused the user: the account is locked \
                 out after too many wrong passwords, or disabled (its credentials are revoked)"
                .to_owned(),
            (Problem::Other, _) => "Kerberos (GSSAPI) failed".to_owned(),
        }
    }
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.advice())?;
        if !self.detail.is_empty() {
            write!(f, " [GSSAPI: {}]", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for GssError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::cast_sign_loss)]
    fn m(code: i32) -> u32 {
        code as u32
    }

    #[test]
    fn minor_codes_win_over_major() {
        let failure = 13 << 16;
        assert_eq!(
            Problem::classify(failure, m(KRB5_FCC_NOFILE), ""),
            Problem::NoCredentials
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5KRB_AP_ERR_SKEW), ""),
            Problem::ClockSkew
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN), ""),
            Problem::ServerPrincipalUnknown
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5_KDC_UNREACH), ""),
            Problem::KdcUnreachable
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5KRB_AP_ERR_BADKEYVER), ""),
            Problem::WrongKeyVersion
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5_KT_NOTFOUND), ""),
            Problem::KeytabLacksKey
        );
        assert_eq!(
            Problem::classify(failure, m(KRB5KRB_AP_ERR_REPEAT), ""),
            Problem::Replay
        );
        assert_eq!(
            Problem::classify(GSS_S_DEFECTIVE_TOKEN, 0, ""),
            Problem::DefectiveToken
        );
        assert_eq!(
            Problem::classify(GSS_S_NO_CRED, 0, ""),
            Problem::NoCredentials
        );
        assert_eq!(
            Problem::classify(GSS_S_DUPLICATE_TOKEN, 0, ""),
            Problem::Replay
        );
        assert_eq!(Problem::classify(failure, 0, ""), Problem::Other);
        assert_eq!(
            Problem::classify(GSS_S_NO_CRED, m(KRB5KDC_ERR_PREAUTH_FAILED), ""),
            Problem::WrongPassword
        );
        assert_eq!(
            Problem::classify(GSS_S_NO_CRED, m(KRB5KDC_ERR_CLIENT_REVOKED), ""),
            Problem::AccountRevoked
        );
    }

    #[test]
    fn a_refused_password_is_not_a_missing_ticket() {
        // What MIT's glue reports for gss_acquire_cred_from with a wrong password and for
        // a locked or disabled AD account, once the minor code was renumbered.
        let no_cred = GSS_S_NO_CRED;
        let wrong = Problem::classify(
            no_cred,
            1,
            "No credentials were supplied, or the \
             credentials were unavailable or inaccessible (Preauthentication failed)",
        );
        assert_eq!(wrong, Problem::WrongPassword);
        let revoked = Problem::classify(
            no_cred,
            1,
            "No credentials were supplied, or the \
             credentials were unavailable or inaccessible (Client's credentials have been \
             revoked)",
        );
        assert_eq!(revoked, Problem::AccountRevoked);
        let e = GssError {
            problem: wrong,
            side: Side::Initiator,
            major: no_cred,
            minor: 1,
            detail: String::new(),
            subject: None,
        };
        assert!(
            e.advice().contains("refused the password"),
            "{}",
            e.advice()
        );
        assert!(!e.advice().contains("kinit"), "{}", e.advice());
    }

    #[test]
    fn krb5_messages_are_recognised_when_the_minor_code_was_renumbered() {
        let f = 13 << 16;
        for (text, want) in [
            ("Unspecified GSS failure (Request is a replay)", Problem::Replay),
            ("(Server HTTP/x@EXAMPLE.TEST not found in Kerberos database)", Problem::ServerPrincipalUnknown),
            ("(Client 'carol@EXAMPLE.TEST' not found in Kerberos database)", Problem::ClientPrincipalUnknown),
            ("(Cannot contact any KDC for realm 'EXAMPLE.TEST')", Problem::KdcUnreachable),
            ("(Request ticket server HTTP/localhost@EXAMPLE.TEST not found in keytab (ticket kvno 1))", Problem::KeytabLacksKey),
            ("(Request ticket server HTTP/localhost@EXAMPLE.TEST kvno 2 not found in keytab; keytab is likely out of date)", Problem::WrongKeyVersion),
            ("(Clock skew too great)", Problem::ClockSkew),
            ("(Ticket expired)", Problem::ExpiredTicket),
            ("(No Kerberos credentials available (default cache: FILE:/x))", Problem::NoCredentials),
            ("(Decrypt integrity check failed)", Problem::Integrity),
            ("(Request ticket server HTTP/localhost@EXAMPLE.TEST kvno 1 enctype aes256-cts found in keytab but cannot decrypt ticket)", Problem::Integrity),
        ] {
            assert_eq!(Problem::classify(f, 100, text), want, "{text}");
        }
    }

    #[test]
    fn the_no_ticket_advice_says_run_kinit() {
        let e = GssError::from_status(
            GSS_S_NO_CRED,
            m(KRB5_FCC_NOFILE),
            "No credentials cache found".into(),
            Side::Initiator,
            None,
        );
        assert!(
            e.to_string()
                .starts_with("no Kerberos credentials for this user: run kinit"),
            "{e}"
        );
    }
}
