//! The groups of a domain account whose NTLM logon the domain controller accepted, asked of
//! winbindd with `wbinfo --user-sids` and cached, so a user logged in with NTLM gets the
//! groups (for rules, the groups header and `REMOTE_USER_GROUPS`) Kerberos gives them from
//! the PAC.
//!
//! **Why `wbinfo`.** The Kerberos path gets the groups from the ticket's PAC; the NTLM
//! logon record names the account and its SID ([`crate::wbclient`]). `wbinfo --user-sids`
//! gives the groups of the account's logon token, nested membership and domain-local groups
//! included, as a PAC lists them: the same tool the gate already uses to name a PAC's group
//! SIDs ([`crate::ad_groups`]), which then names these the same way. It is asked by SID,
//! never by name (a name-to-SID lookup would leave winbindd's cache naming the account in
//! lower case). `BUILTIN` aliases (`S-1-5-32-…`), which winbindd adds and a PAC does not
//! carry, are left out, so a rule matches the same groups whichever scheme the user logged
//! in with.
//!
//! **Never waiting twice.** An answer is used for [`AccountLookup::TTL`]; after that it is
//! still used at once and asked again in the background. Only an account never seen
//! before makes a login wait, at most [`AccountLookup::DEADLINE`]; if winbindd cannot answer
//! then, the logon is refused as "the domain controller cannot be asked" (`503`, as for the
//! NTLM check itself), never let in without its groups.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kerbside_proto::scheme::ntlm::wbinfo::{is_sid, parse_user_sids};
use tokio::process::Command;

use crate::identity::{DomainAccount, DomainGroup};

/// At most this many accounts are remembered; beyond it, aged answers are dropped first.
const MAX_ACCOUNTS: usize = 50_000;

/// The groups of domain accounts, by SID; cheap to clone (shared).
#[derive(Debug, Clone)]
pub(crate) struct AccountLookup {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    wbinfo: PathBuf,
    netbios: String,
    ttl: Duration,
    deadline: Duration,
    /// Group SIDs by user SID, and when they were asked.
    cache: Mutex<HashMap<String, (Vec<String>, Instant)>>,
    refreshing: Mutex<HashSet<String>>,
}

impl AccountLookup {
    /// How long an answer is used before it is asked again (in the background).
    pub(crate) const TTL: Duration = crate::ad_groups::GroupNames::DEFAULT_TTL;
    /// How long a logon of an account never seen before waits for winbindd.
    pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

    /// Lookups with the `wbinfo` program for the domain `netbios`.
    pub(crate) fn new(wbinfo: PathBuf, netbios: &str) -> Self {
        Self::with_times(wbinfo, netbios, Self::TTL, Self::DEADLINE)
    }

    fn with_times(wbinfo: PathBuf, netbios: &str, ttl: Duration, deadline: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                wbinfo,
                netbios: netbios.to_owned(),
                ttl,
                deadline,
                cache: Mutex::new(HashMap::new()),
                refreshing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The account `account_name` with SID `user_sid`, and the SIDs of its groups (no
    /// names yet), or why winbindd could not say (a problem in words).
    pub(crate) async fn account(
        &self,
        user_sid: &str,
        account_name: &str,
    ) -> Result<DomainAccount, String> {
        if !is_sid(user_sid) {
            return Err(format!("{user_sid:?} is not a SID"));
        }
        let cached = lock(&self.inner.cache).get(user_sid).cloned();
        let groups = match cached {
            Some((groups, asked)) => {
                if asked.elapsed() >= self.inner.ttl {
                    self.refresh_in_background(user_sid.to_owned());
                }
                groups
            }
            None => {
                let deadline = Instant::now() + self.inner.deadline;
                let groups = self.inner.fetch(user_sid, deadline).await?;
                self.inner.remember(user_sid, &groups);
                groups
            }
        };
        let mut account = DomainAccount::new(account_name, self.inner.netbios.clone());
        account.sid = Some(user_sid.to_owned());
        account.groups = groups
            .into_iter()
            .map(|sid| DomainGroup { sid, name: None })
            .collect();
        Ok(account)
    }

    fn refresh_in_background(&self, sid: String) {
        if !lock(&self.inner.refreshing).insert(sid.clone()) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let deadline = Instant::now() + inner.deadline;
            match inner.fetch(&sid, deadline).await {
                Ok(groups) => inner.remember(&sid, &groups),
                Err(e) => tracing::info!(
                    %sid,
                    "cannot refresh a domain account's groups through winbind ({e}); keeping \
                     what was known"
                ),
            }
            lock(&inner.refreshing).remove(&sid);
        });
    }
}

impl Inner {
    async fn fetch(&self, user_sid: &str, deadline: Instant) -> Result<Vec<String>, String> {
        let out = self
            .wbinfo(&format!("--user-sids={user_sid}"), deadline)
            .await?;
        let groups = parse_user_sids(&out)
            .ok_or_else(|| format!("wbinfo --user-sids={user_sid} answered {out:?}"))?;
        Ok(groups
            .into_iter()
            .filter(|g| g != user_sid && !g.starts_with("S-1-5-32-"))
            .collect())
    }

    fn remember(&self, user_sid: &str, groups: &[String]) {
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_ACCOUNTS && !cache.contains_key(user_sid) {
            cache.retain(|_, (_, asked)| asked.elapsed() < self.ttl);
            if cache.len() >= MAX_ACCOUNTS {
                cache.clear();
            }
        }
        cache.insert(user_sid.to_owned(), (groups.to_vec(), Instant::now()));
    }

    /// `wbinfo ARG`'s output, within `deadline`; a failure in words.
    async fn wbinfo(&self, arg: &str, deadline: Instant) -> Result<String, String> {
        let mut cmd = Command::new(&self.wbinfo);
        cmd.arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = format!("{} {arg}", self.wbinfo.display());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {shown}: {e} (apt-get install winbind)"))?;
        let out = tokio::time::timeout_at(deadline.into(), child.wait_with_output())
            .await
            .map_err(|_| format!("{shown}: no answer within {:?}", self.deadline))?
            .map_err(|e| format!("{shown} failed: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ad_groups::fake::{calls, fake_wbinfo};

    const SAMBA: &str = r#"case "$1" in
  --user-sids=S-1-5-21-1-2-3-1107) printf 'S-1-5-21-1-2-3-1107\nS-1-5-21-1-2-3-513\nS-1-5-21-1-2-3-1105\nS-1-5-32-545\n';;
  *) echo "failed to call wbcLookupUserSids: WBC_ERR_DOMAIN_NOT_FOUND" >&2; exit 1;;
esac"#;

    const ERIN: &str = "S-1-5-21-1-2-3-1107";

    #[tokio::test]
    async fn an_account_gets_its_token_groups_once() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::new(fake_wbinfo(dir.path(), SAMBA), "ADEXAMPLE");
        let account = lookup.account(ERIN, "Erin").await.unwrap();
        assert_eq!(account.down_level_name(), "ADEXAMPLE\\Erin");
        assert_eq!(account.sid.as_deref(), Some(ERIN));
        let groups: Vec<&str> = account.groups.iter().map(|g| g.sid.as_str()).collect();
        assert_eq!(groups, ["S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1105"]);
        assert_eq!(calls(dir.path()), 1);
        lookup.account(ERIN, "Erin").await.unwrap();
        assert_eq!(calls(dir.path()), 1, "the second logon asks nothing");
    }

    #[tokio::test]
    async fn an_unknown_or_unanswered_account_is_a_problem_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::new(fake_wbinfo(dir.path(), SAMBA), "ADEXAMPLE");
        let err = lookup.account("S-1-5-21-9-9", "x").await.unwrap_err();
        assert!(err.contains("WBC_ERR_DOMAIN_NOT_FOUND"), "{err}");
        assert!(lookup.account("erin", "x").await.is_err());
        let slow = AccountLookup::with_times(
            fake_wbinfo(dir.path(), "exec sleep 60"),
            "ADEXAMPLE",
            AccountLookup::TTL,
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let err = slow.account(ERIN, "Erin").await.unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let missing = AccountLookup::new("/nonexistent/wbinfo".into(), "ADEXAMPLE");
        let err = missing.account(ERIN, "Erin").await.unwrap_err();
        assert!(err.contains("apt-get install winbind"), "{err}");
    }

    #[tokio::test]
    async fn an_aged_answer_is_used_while_it_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::with_times(
            fake_wbinfo(dir.path(), SAMBA),
            "ADEXAMPLE",
            Duration::ZERO,
            Duration::from_secs(20),
        );
        lookup.account(ERIN, "Erin").await.unwrap();
        let account = lookup.account(ERIN, "Erin").await.unwrap();
        assert_eq!(account.groups.len(), 2);
        let waited = Instant::now();
        while calls(dir.path()) < 2 {
            assert!(waited.elapsed() < Duration::from_secs(20), "no refresh");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
