//! NTLM for Active Directory accounts: the domain controller checks the NTLMv2 response,
//! through the host's winbindd and Samba's libwbclient (`wbcCtxAuthenticateUserEx`, see
//! [`crate::wbclient`]).
//!
//! The gate keeps its own NTLM state machine (`kerbside_proto::scheme::ntlm::server`): it
//! makes the CHALLENGE, parses the AUTHENTICATE and refuses NTLMv1 and anonymous logons
//! itself; the domain controller only answers "is this response right for this user, this
//! challenge", with the logon's account record and the session base key, with which the
//! gate checks the MIC, the SPNEGO mechListMIC and channel bindings as it does for its users
//! file. A check keeps no state between requests, so an abandoned handshake holds nothing.
//!
//! Every check has a deadline ([`CALL_TIMEOUT`], waiting for a free slot included); at most
//! [`MAX_CHECKS`] run at once, each on a blocking thread of its own with its own winbind
//! connection, and a check that misses its deadline keeps its slot until winbindd answers,
//! so a hung winbindd cannot pile up threads.
//!
//! The user is named as Kerberos names them: the account's `sAMAccountName` from the
//! logon record, in the directory's own case, `@` the realm (`erin`, `ERIN` and
//! `ADEXAMPLE\erin` are all `Erin@AD.EXAMPLE.TEST`), with the groups of its logon token
//! ([`crate::winbind_account`]). Only the gate's own domain (its NetBIOS or DNS name, or
//! none) is taken, and user names in UPN form are refused.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kerbside_proto::scheme::ntlm::helper::{parse_domain_info, DcRefusal};
use kerbside_proto::scheme::ntlm::server::ExpectSessionKey;
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::identity::DomainAccount;
use crate::winbind_account::AccountLookup;

/// How long one check may take, waiting for a free slot included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most checks that run at once.
pub const MAX_CHECKS: usize = 8;

/// How long `wbinfo` may take at startup.
const WBINFO_TIMEOUT: Duration = Duration::from_secs(10);

/// The domain the gate's host is joined to, as winbindd names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinbindDomain {
    /// The NetBIOS name, `ADEXAMPLE`.
    pub netbios: String,
    /// The DNS name, `ad.example.test`.
    pub dns: String,
    /// The Kerberos realm, the DNS name in capitals: `AD.EXAMPLE.TEST`.
    pub realm: String,
}

impl WinbindDomain {
    /// The domain of `netbios` and `dns` names.
    pub fn new(netbios: &str, dns: &str) -> Self {
        Self {
            netbios: netbios.to_ascii_uppercase(),
            dns: dns.to_ascii_lowercase(),
            realm: dns.to_ascii_uppercase(),
        }
    }

    /// The principal a user the domain controller is about to check is known by in logs
    /// until the account is looked up: `user@REALM`, the user name in lower case as
    /// winbindd names domain users. Refuses another domain and names that do not name one
    /// account of this one.
    pub fn principal(&self, user: &str, domain: &str) -> Result<String, WinbindRefusal> {
        let ours = domain.is_empty()
            || domain.eq_ignore_ascii_case(&self.netbios)
            || domain.eq_ignore_ascii_case(&self.dns);
        if !ours {
            return Err(WinbindRefusal::OtherDomain {
                domain: domain.to_owned(),
                ours: self.netbios.clone(),
            });
        }
        if user.contains('@') {
            return Err(WinbindRefusal::UpnName {
                user: user.to_owned(),
                netbios: self.netbios.clone(),
            });
        }
        if user.is_empty() || user.chars().any(|c| c.is_control() || "\\/".contains(c)) {
            return Err(WinbindRefusal::BadName(user.to_owned()));
        }
        Ok(format!("{}@{}", user.to_lowercase(), self.realm))
    }
}

/// Why a logon checked through winbind did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WinbindRefusal {
    /// The domain controller refused: wrong password, locked, disabled….
    #[error("{principal}: {refusal}")]
    Dc {
        /// Who tried.
        principal: String,
        /// What the domain controller said.
        refusal: DcRefusal,
    },
    /// The client named another domain.
    #[error(
        "the client logged in to the domain {domain:?}, but this gate checks NTLM against its \
         own domain {ours} only"
    )]
    OtherDomain {
        /// The domain the client sent.
        domain: String,
        /// The gate's domain.
        ours: String,
    },
    /// A UPN (`alice@ad.example.test`) as the NTLM user name.
    #[error(
        "the NTLM user name {user:?} is a UPN, which winbind cannot map to an account: log in \
         as {netbios}\\USER"
    )]
    UpnName {
        /// The name the client sent.
        user: String,
        /// The domain's NetBIOS name.
        netbios: String,
    },
    /// A user name with a control character, `\` or `/`.
    #[error("the NTLM user name {0:?} is not an account name")]
    BadName(String),
    /// winbindd could not be asked: not running, no answer in time, no right to its pipe.
    #[error("could not ask the domain controller through winbindd: {0}")]
    Unavailable(String),
}

impl WinbindRefusal {
    /// Whether the domain controller could not be asked (a `503`, not the client's fault).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// How to reach winbind: the `wbinfo` program.
#[derive(Debug, Clone)]
pub struct WinbindConfig {
    /// `wbinfo` (looked up on `PATH`) unless set.
    pub wbinfo: PathBuf,
    /// Samba's configuration. Not needed any more (libwbclient and `wbinfo` find winbindd
    /// at its socket); kept so configurations that name it still load.
    pub smb_conf: Option<PathBuf>,
}

impl Default for WinbindConfig {
    fn default() -> Self {
        Self {
            wbinfo: "wbinfo".into(),
            smb_conf: None,
        }
    }
}

/// A logon the domain controller accepted.
#[derive(Debug)]
pub struct DcLogon {
    /// `Account@REALM`, the account's name from the logon record.
    pub principal: String,
    /// The NTLMv2 session base key.
    pub session_key: [u8; 16],
    /// The account's SID.
    pub user_sid: String,
    /// Its `sAMAccountName`.
    pub account_name: String,
    /// Its user principal name, from the logon record.
    pub upn: Option<String>,
}

/// NTLM checked by the domain controller: the domain and the way to ask it.
#[derive(Debug)]
pub struct WinbindNtlm {
    domain: WinbindDomain,
    lib: Arc<crate::wbclient::Wbclient>,
    permits: Arc<Semaphore>,
    /// [`CALL_TIMEOUT`].
    timeout: Duration,
    accounts: AccountLookup,
}

impl WinbindNtlm {
    /// Asks winbindd which domain the host is joined to (`wbinfo --own-domain` and
    /// `--domain-info`) and loads libwbclient; fails in words when winbindd does not
    /// answer or the library is missing.
    pub async fn discover(config: WinbindConfig) -> Result<Self, crate::SetupError> {
        let own = wbinfo(&config, &["--own-domain"]).await?;
        let own = own.trim();
        let info = wbinfo(&config, &[&format!("--domain-info={own}")]).await?;
        let (netbios, dns) = parse_domain_info(&info).ok_or_else(|| {
            format!(
                "wbinfo --domain-info={own} did not give the domain's NetBIOS and DNS names \
                 (is the host joined to an Active Directory domain?): {info:?}"
            )
        })?;
        Self::new(WinbindDomain::new(&netbios, &dns), &config)
    }

    /// NTLM for `domain` through the host's winbindd.
    pub fn new(domain: WinbindDomain, config: &WinbindConfig) -> Result<Self, crate::SetupError> {
        let lib = crate::wbclient::Wbclient::load()?;
        Ok(Self {
            accounts: AccountLookup::new(config.wbinfo.clone(), &domain.netbios),
            domain,
            lib: Arc::new(lib),
            permits: Arc::new(Semaphore::new(MAX_CHECKS)),
            timeout: CALL_TIMEOUT,
        })
    }

    /// The domain.
    pub fn domain(&self) -> &WinbindDomain {
        &self.domain
    }

    /// Has the domain controller check the AUTHENTICATE's NTLMv2 response: the account
    /// the logon was for and the session base key, or why not.
    pub async fn check(&self, pending: &ExpectSessionKey) -> Result<DcLogon, WinbindRefusal> {
        let principal = self.domain.principal(pending.user(), pending.domain())?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || {
            WinbindRefusal::Unavailable(format!(
                "no answer within {:?} (winbindd or the domain controller is slow or down)",
                self.timeout
            ))
        };
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| late())?
            .map_err(|_| WinbindRefusal::Unavailable("the gate is shutting down".into()))?;
        let lib = Arc::clone(&self.lib);
        let (user, domain) = (pending.user().to_owned(), pending.domain().to_owned());
        let challenge = pending.server_challenge();
        let nt_response = pending.nt_response().to_vec();
        let call = tokio::task::spawn_blocking(move || {
            // The slot is held until winbindd answers, even after the deadline.
            let _permit = permit;
            lib.authenticate_response(&user, &domain, challenge, &nt_response)
        });
        let outcome = tokio::time::timeout_at(deadline, call)
            .await
            .map_err(|_| late())?
            .map_err(|e| WinbindRefusal::Unavailable(format!("the check failed: {e}")))?;
        match outcome {
            crate::wbclient::Outcome::Authenticated(logon) => {
                let usable = !logon
                    .account_name
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '@' | '/' | '\\'));
                let named = if usable {
                    format!("{}@{}", logon.account_name, self.domain.realm)
                } else {
                    tracing::warn!(%principal, account = %logon.account_name.escape_debug(), "the logon's account name cannot be part of a principal; naming the user as typed");
                    principal
                };
                if !logon.domain_name.eq_ignore_ascii_case(&self.domain.netbios) {
                    return Err(WinbindRefusal::OtherDomain {
                        domain: logon.domain_name,
                        ours: self.domain.netbios.clone(),
                    });
                }
                // winbindd's record of an NTLM logon carries no UPN (it comes from the
                // logon's info3): AD's implicit one is the account at the realm's DNS
                // name, which is how a Kerberos ticket's PAC names it.
                let upn = logon.upn.or_else(|| {
                    usable.then(|| {
                        format!(
                            "{}@{}",
                            logon.account_name,
                            self.domain.realm.to_ascii_lowercase()
                        )
                    })
                });
                Ok(DcLogon {
                    principal: named,
                    session_key: logon.session_key,
                    user_sid: logon.user_sid,
                    account_name: logon.account_name,
                    upn,
                })
            }
            crate::wbclient::Outcome::Refused(message) => Err(WinbindRefusal::Dc {
                principal,
                refusal: DcRefusal::from_message(&message),
            }),
            crate::wbclient::Outcome::Unavailable(problem) => {
                Err(WinbindRefusal::Unavailable(problem))
            }
        }
    }

    /// The account of a logon the domain controller accepted (and whose MIC the gate
    /// checked), with the SIDs of its groups (see [`crate::winbind_account`]). Winbindd
    /// not answering is [`WinbindRefusal::Unavailable`].
    pub async fn account(&self, logon: &DcLogon) -> Result<DomainAccount, WinbindRefusal> {
        let mut account = self
            .accounts
            .account(&logon.user_sid, &logon.account_name)
            .await
            .map_err(|e| {
                WinbindRefusal::Unavailable(format!(
                    "the domain controller accepted {} but winbind cannot give the account's \
                     groups: {e}",
                    logon.principal
                ))
            })?;
        account.upn = logon.upn.clone();
        Ok(account)
    }
}

/// Runs `wbinfo ARGS` with a deadline; its output, or an error in words.
async fn wbinfo(config: &WinbindConfig, args: &[&str]) -> Result<String, crate::SetupError> {
    let mut cmd = Command::new(&config.wbinfo);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{} {}", config.wbinfo.display(), args.join(" "));
    let out = tokio::time::timeout(WBINFO_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{shown} did not answer within {WBINFO_TIMEOUT:?}"))?
        .map_err(|e| {
            format!(
                "cannot run {shown}: {e} (--ntlm-winbind needs Samba's winbind tools: \
                 apt-get install winbind)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {} — --ntlm-winbind needs the host joined to the domain and \
             winbindd running (its socket is /run/samba/winbindd/pipe)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> WinbindDomain {
        WinbindDomain::new("adexample", "AD.Example.Test")
    }

    #[test]
    fn users_of_the_own_domain_are_named_in_its_realm() {
        let d = domain();
        assert_eq!(d.realm, "AD.EXAMPLE.TEST");
        for (user, dom) in [
            ("alice", "ADEXAMPLE"),
            ("ALICE", "adexample"),
            ("Alice", ""),
            ("alice", "ad.example.test"),
        ] {
            assert_eq!(d.principal(user, dom).unwrap(), "alice@AD.EXAMPLE.TEST");
        }
    }

    #[test]
    fn other_domains_upns_and_odd_names_are_refused() {
        let d = domain();
        assert!(matches!(
            d.principal("alice", "OTHER"),
            Err(WinbindRefusal::OtherDomain { .. })
        ));
        let upn = d.principal("alice@ad.example.test", "").unwrap_err();
        assert!(upn.to_string().contains("ADEXAMPLE\\USER"), "{upn}");
        for bad in ["a\\b", "a/b", "a\nb", ""] {
            assert!(matches!(
                d.principal(bad, ""),
                Err(WinbindRefusal::BadName(_))
            ));
        }
    }
}
