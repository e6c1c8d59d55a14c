//! NTLM for Active Directory accounts: the domain controller checks the NTLMv2 response,
//! through the host's winbindd and a bounded pool of long-lived Samba `ntlm_auth
//! --helper-protocol=ntlm-server-1` helpers.
//!
//! The gate keeps its own NTLM state machine (`kerbside_proto::scheme::ntlm::server`): it
//! makes the CHALLENGE, parses the AUTHENTICATE and refuses NTLMv1 and anonymous logons
//! itself; the helper only answers "is this response right for this user, this challenge",
//! and returns the session base key, with which the gate checks the MIC, the SPNEGO
//! mechListMIC and channel bindings as it does for its users file. One helper answers many
//! exchanges, one at a time: there is no state in it between requests, so an exchange is not
//! tied to a helper and an abandoned handshake holds nothing.
//!
//! Every call has a deadline ([`CALL_TIMEOUT`]); a helper that misses it, dies or answers
//! nonsense is killed and replaced by a new one on the next call; at most
//! [`MAX_HELPERS`] run at once, and a call waits (within its deadline) for one to be free.
//!
//! Once the domain controller said yes, the user is named `account@REALM` by the account's
//! SID (`erin`, `ERIN` and `ADEXAMPLE\erin` are all one user), with the groups of its logon
//! token, both asked of winbindd and cached ([`crate::winbind_account`]). Only the gate's own domain (its
//! NetBIOS or DNS name, or none) is taken, and user names in UPN form are refused: the helper
//! does not say which account a UPN belongs to.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kerbside_proto::scheme::ntlm::helper::{
    encode_request, parse_domain_info, DcRefusal, HelperError, HelperVerdict, ReplyReader, MAX_LINE,
};
use kerbside_proto::scheme::ntlm::server::ExpectSessionKey;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use crate::identity::DomainAccount;
use crate::winbind_account::AccountLookup;

/// How long one check may take, waiting for a free helper included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most helpers that run at once.
pub const MAX_HELPERS: usize = 8;

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
    /// The helper could not be asked: no answer in time, it died, or it said nonsense.
    #[error("could not ask the domain controller through ntlm_auth and winbindd: {0}")]
    Unavailable(String),
}

impl WinbindRefusal {
    /// Whether the domain controller could not be asked (a `503`, not the client's fault).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// How to start the helpers: the `ntlm_auth` program and Samba's configuration.
#[derive(Debug, Clone)]
pub struct WinbindConfig {
    /// `ntlm_auth` (looked up on `PATH`) unless set.
    pub ntlm_auth: PathBuf,
    /// `wbinfo` (looked up on `PATH`) unless set.
    pub wbinfo: PathBuf,
    /// Samba's configuration, passed as `--configfile=` (ntlm_auth's default otherwise).
    pub smb_conf: Option<PathBuf>,
}

impl Default for WinbindConfig {
    fn default() -> Self {
        Self {
            ntlm_auth: "ntlm_auth".into(),
            wbinfo: "wbinfo".into(),
            smb_conf: None,
        }
    }
}

/// NTLM checked by the domain controller: the domain and the helper pool.
#[derive(Debug)]
pub struct WinbindNtlm {
    domain: WinbindDomain,
    pool: HelperPool,
    accounts: AccountLookup,
}

impl WinbindNtlm {
    /// Asks winbindd which domain the host is joined to (`wbinfo --own-domain` and
    /// `--domain-info`) and makes the helper pool; fails in words when winbindd does not
    /// answer.
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
        Ok(Self::new(WinbindDomain::new(&netbios, &dns), &config))
    }

    /// NTLM for `domain` through helpers started as `config` says.
    pub fn new(domain: WinbindDomain, config: &WinbindConfig) -> Self {
        let mut args: Vec<OsString> = vec!["--helper-protocol=ntlm-server-1".into()];
        if let Some(conf) = &config.smb_conf {
            let mut arg = OsString::from("--configfile=");
            arg.push(conf);
            args.push(arg);
        }
        Self {
            accounts: AccountLookup::new(config.wbinfo.clone(), &domain.netbios, &domain.realm),
            domain,
            pool: HelperPool {
                program: config.ntlm_auth.clone(),
                args,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(MAX_HELPERS),
                timeout: CALL_TIMEOUT,
            },
        }
    }

    /// The domain.
    pub fn domain(&self) -> &WinbindDomain {
        &self.domain
    }

    /// Has the domain controller check the AUTHENTICATE's NTLMv2 response: the user's
    /// principal and the session base key, or why not.
    pub async fn check(
        &self,
        pending: &ExpectSessionKey,
    ) -> Result<(String, [u8; 16]), WinbindRefusal> {
        let principal = self.domain.principal(pending.user(), pending.domain())?;
        let request = encode_request(
            pending.user(),
            pending.domain(),
            pending.server_challenge(),
            pending.nt_response(),
        );
        match self.pool.ask(&request).await? {
            HelperVerdict::Authenticated { session_key } => Ok((principal, session_key)),
            HelperVerdict::Refused(refusal) => Err(WinbindRefusal::Dc { principal, refusal }),
        }
    }

    /// The account of `user`, whose logon the domain controller accepted: its principal
    /// (`account@REALM`, see [`crate::winbind_account`]) and its SID and group SIDs. Winbindd not answering is [`WinbindRefusal::Unavailable`].
    pub async fn account(&self, user: &str) -> Result<(String, DomainAccount), WinbindRefusal> {
        self.accounts.account(user).await.map_err(|e| {
            WinbindRefusal::Unavailable(format!(
                "the domain controller accepted {user}@{} but winbind cannot say who the account \
                 is: {e}",
                self.domain.realm
            ))
        })
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

/// Long-lived `ntlm_auth` helpers, at most [`MAX_HELPERS`], each answering one request at a
/// time.
#[derive(Debug)]
struct HelperPool {
    program: PathBuf,
    args: Vec<OsString>,
    idle: Mutex<Vec<Helper>>,
    permits: Semaphore,
    /// [`CALL_TIMEOUT`], shorter in tests.
    timeout: Duration,
}

#[derive(Debug)]
struct Helper {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl HelperPool {
    /// Sends `request` to a free helper (starting one if none is idle) and reads its answer,
    /// all within [`CALL_TIMEOUT`]. A helper that fails is dropped (and killed); a reused one
    /// that turns out dead is replaced once.
    async fn ask(&self, request: &[u8]) -> Result<HelperVerdict, WinbindRefusal> {
        let deadline = Instant::now() + self.timeout;
        let late = || {
            WinbindRefusal::Unavailable(format!(
                "no answer within {:?} (winbindd or the domain controller is slow or down)",
                self.timeout
            ))
        };
        let _permit = tokio::time::timeout_at(deadline.into(), self.permits.acquire())
            .await
            .map_err(|_| late())?
            .map_err(|_| WinbindRefusal::Unavailable("the gate is shutting down".into()))?;
        let reused = self.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
        let fresh_tries = if reused.is_some() { 1 } else { 0 };
        let mut helper = match reused {
            Some(helper) => helper,
            None => self.spawn()?,
        };
        for attempt in 0..=fresh_tries {
            if attempt > 0 {
                helper = self.spawn()?;
            }
            match tokio::time::timeout_at(deadline.into(), helper.ask(request)).await {
                Err(_) => return Err(late()),
                Ok(Ok(verdict)) => {
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.push(helper);
                    }
                    return Ok(verdict);
                }
                Ok(Err(HelperFailure::Gone(e))) if attempt < fresh_tries => {
                    tracing::info!("an idle ntlm_auth helper was gone ({e}); starting another");
                }
                Ok(Err(e)) => return Err(WinbindRefusal::Unavailable(e.to_string())),
            }
        }
        Err(late())
    }

    fn spawn(&self) -> Result<Helper, WinbindRefusal> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            WinbindRefusal::Unavailable(format!(
                "cannot start {}: {e} (apt-get install winbind)",
                self.program.display()
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WinbindRefusal::Unavailable(
                "the ntlm_auth helper has no pipes".into(),
            ));
        };
        Ok(Helper {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }
}

/// Why a helper could not answer.
#[derive(Debug, thiserror::Error)]
enum HelperFailure {
    /// It exited (or closed its pipes).
    #[error("the ntlm_auth helper exited: {0}")]
    Gone(String),
    /// It answered something that is not the protocol.
    #[error("{0}")]
    Protocol(#[from] HelperError),
}

impl Helper {
    async fn ask(&mut self, request: &[u8]) -> Result<HelperVerdict, HelperFailure> {
        let gone = |e: std::io::Error| HelperFailure::Gone(e.to_string());
        self.stdin.write_all(request).await.map_err(gone)?;
        self.stdin.flush().await.map_err(gone)?;
        let mut reader = ReplyReader::default();
        loop {
            let mut line = Vec::new();
            let read = (&mut self.stdout)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
                .map_err(gone)?;
            if read == 0 {
                return Err(HelperFailure::Gone("end of its output".into()));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            if let Some(verdict) = reader.line(text)? {
                return Ok(verdict);
            }
        }
    }
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

    /// A stand-in helper: a shell script speaking the protocol, to test the pool's handling
    /// of slow, dying and lying helpers without a domain.
    fn fake_helper(dir: &std::path::Path, body: &str) -> WinbindNtlm {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("ntlm_auth");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        WinbindNtlm::new(
            domain(),
            &WinbindConfig {
                ntlm_auth: path,
                ..WinbindConfig::default()
            },
        )
    }

    const YES: &str = r#"while read -r line; do
  if [ "$line" = "." ]; then
    printf 'Authenticated: Yes\nUser-Session-Key: 000102030405060708090A0B0C0D0E0F\n.\n'
  fi
done"#;

    #[tokio::test]
    async fn helpers_are_reused_and_a_dead_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let ntlm = fake_helper(dir.path(), YES);
        for _ in 0..3 {
            let verdict = ntlm.pool.ask(b"Username:: YQ==\n.\n").await.unwrap();
            assert!(matches!(verdict, HelperVerdict::Authenticated { .. }));
        }
        assert_eq!(ntlm.pool.idle.lock().unwrap().len(), 1);
        // The idle helper dies; the next call starts another.
        let helper = ntlm.pool.idle.lock().unwrap().pop().unwrap();
        let mut child = helper._child;
        child.kill().await.unwrap();
        let helper = Helper {
            _child: child,
            stdin: helper.stdin,
            stdout: helper.stdout,
        };
        ntlm.pool.idle.lock().unwrap().push(helper);
        let verdict = ntlm.pool.ask(b"Username:: YQ==\n.\n").await.unwrap();
        assert!(matches!(verdict, HelperVerdict::Authenticated { .. }));
    }

    #[tokio::test]
    async fn a_helper_that_says_nonsense_or_exits_is_an_unavailable_domain() {
        let dir = tempfile::tempdir().unwrap();
        let ntlm = fake_helper(dir.path(), "read -r line; echo 'hello there'; echo .");
        let err = ntlm.pool.ask(b"x\n.\n").await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(ntlm.pool.idle.lock().unwrap().is_empty());
        let ntlm = fake_helper(dir.path(), "exit 3");
        let err = ntlm.pool.ask(b"x\n.\n").await.unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
    }

    #[tokio::test]
    async fn a_helper_that_does_not_answer_misses_its_deadline_and_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ntlm = fake_helper(dir.path(), "exec sleep 600");
        ntlm.pool.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = ntlm.pool.ask(b"x\n.\n").await.unwrap_err();
        assert!(err.to_string().contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(ntlm.pool.idle.lock().unwrap().is_empty());
        // The permit came back: the pool still serves (and still times out).
        assert!(ntlm.pool.ask(b"x\n.\n").await.unwrap_err().is_unavailable());
    }

    #[tokio::test]
    async fn a_missing_program_is_told_in_words() {
        let ntlm = WinbindNtlm::new(
            domain(),
            &WinbindConfig {
                ntlm_auth: "/nonexistent/ntlm_auth".into(),
                ..WinbindConfig::default()
            },
        );
        let err = ntlm.pool.ask(b"x\n.\n").await.unwrap_err();
        assert!(err.to_string().contains("apt-get install winbind"), "{err}");
    }
}
