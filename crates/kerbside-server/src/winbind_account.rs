//! The domain account behind an NTLM logon the domain controller accepted: its SID, its
//! name and its groups, asked of winbindd with `wbinfo` and cached, so a user logged in with
//! NTLM gets the groups (for rules, the groups header and `REMOTE_USER_GROUPS`) Kerberos
//! gives them from the PAC.
//!
//! **Why `wbinfo`.** The Kerberos path gets all of this from the ticket's PAC; NTLM's
//! `ntlm_auth` helper says only "yes" and the session key. `wbinfo` is what the gate
//! already uses to name a PAC's group SIDs ([`crate::ad_groups`]): the same winbindd, the
//! same channel to the DC, no new dependency (libwbclient bindings would save a process
//! per call, but a user is looked up once per [`AccountLookup::TTL`], not per request).
//! Three calls: `--name-to-sid` (the account's SID), then together `--sid-to-name` (its
//! name) and `--user-sids` (the groups of its logon token, nested membership and
//! domain-local groups included, as the PAC lists them). The group SIDs are then named like
//! a PAC's ([`crate::ad_groups::GroupNames`]). `BUILTIN` aliases (`S-1-5-32-…`), which
//! winbindd adds and a PAC does not carry, are left out, so a rule matches the same
//! groups whichever scheme the user logged in with.
//!
//! **The name's case.** winbindd keeps the answer of a name-to-SID lookup in its cache in
//! both directions, the name in lower case, so after `--name-to-sid=ADEXAMPLE\erin`,
//! `--sid-to-name` says `erin`, not `Erin` (Samba 4.17, for `winbind cache time`). An account
//! whose name has capitals is named in lower case here (`erin@REALM`), while Kerberos names it
//! from the PAC (`Erin@REALM`); the domain controller's own spelling would need the logon's
//! answer itself (libwbclient's `wbcAuthenticateUserEx`), not a lookup.
//!
//! **Never waiting twice.** An answer is used for [`AccountLookup::TTL`]; after that it is
//! still used at once and asked again in the background. Only a user never seen before
//! makes a login wait, at most [`AccountLookup::DEADLINE`]; if winbindd cannot answer
//! then, the logon cannot be named and is refused as "the domain controller cannot be
//! asked" (`503`, as for the NTLM check itself).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kerbside_proto::scheme::ntlm::wbinfo::{parse_name_to_sid, parse_sid_to_name, parse_user_sids};
use tokio::process::Command;

use crate::identity::{DomainAccount, DomainGroup};

/// At most this many users are remembered; beyond it, aged answers are dropped first.
const MAX_USERS: usize = 50_000;

/// Who a domain user is, by the name typed at an NTLM logon; cheap to clone (shared).
#[derive(Debug, Clone)]
pub(crate) struct AccountLookup {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    wbinfo: PathBuf,
    netbios: String,
    realm: String,
    ttl: Duration,
    deadline: Duration,
    /// By the user name in lower case.
    cache: Mutex<HashMap<String, Cached>>,
    refreshing: Mutex<HashSet<String>>,
}

#[derive(Debug, Clone)]
struct Cached {
    principal: String,
    account: DomainAccount,
    fetched: Instant,
}

impl AccountLookup {
    /// How long an answer is used before it is asked again (in the background).
    pub(crate) const TTL: Duration = crate::ad_groups::GroupNames::DEFAULT_TTL;
    /// How long a logon of a user never seen before waits for winbindd.
    pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

    /// Lookups with the `wbinfo` program for the domain `netbios` of realm `realm`.
    pub(crate) fn new(wbinfo: PathBuf, netbios: &str, realm: &str) -> Self {
        Self::with_times(wbinfo, netbios, realm, Self::TTL, Self::DEADLINE)
    }

    fn with_times(
        wbinfo: PathBuf,
        netbios: &str,
        realm: &str,
        ttl: Duration,
        deadline: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                wbinfo,
                netbios: netbios.to_owned(),
                realm: realm.to_owned(),
                ttl,
                deadline,
                cache: Mutex::new(HashMap::new()),
                refreshing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The principal (`account@REALM`, as winbindd names the account) and the account (SID,
    /// group SIDs) of the domain user `user` (a plain account name, any case), or why
    /// winbindd could not say (a problem in words).
    pub(crate) async fn account(&self, user: &str) -> Result<(String, DomainAccount), String> {
        let key = user.to_lowercase();
        let cached = lock(&self.inner.cache).get(&key).cloned();
        if let Some(cached) = cached {
            if cached.fetched.elapsed() >= self.inner.ttl {
                self.refresh_in_background(key);
            }
            return Ok((cached.principal, cached.account));
        }
        let deadline = Instant::now() + self.inner.deadline;
        let fresh = self.inner.fetch(user, deadline).await?;
        self.inner.remember(key, &fresh);
        Ok((fresh.principal, fresh.account))
    }

    fn refresh_in_background(&self, key: String) {
        if !lock(&self.inner.refreshing).insert(key.clone()) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let deadline = Instant::now() + inner.deadline;
            match inner.fetch(&key, deadline).await {
                Ok(fresh) => inner.remember(key.clone(), &fresh),
                Err(e) => tracing::info!(
                    user = %key,
                    "cannot refresh a domain account through winbind ({e}); keeping what \
                     was known"
                ),
            }
            lock(&inner.refreshing).remove(&key);
        });
    }
}

impl Inner {
    async fn fetch(&self, user: &str, deadline: Instant) -> Result<Cached, String> {
        let qualified = format!("{}\\{user}", self.netbios);
        let out = self
            .wbinfo(&format!("--name-to-sid={qualified}"), deadline)
            .await?;
        let sid = parse_name_to_sid(&out)
            .ok_or_else(|| format!("winbind has no user account {qualified:?}: {out:?}"))?;
        let (to_name, user_sids) = (format!("--sid-to-name={sid}"), format!("--user-sids={sid}"));
        let (name, groups) = tokio::join!(
            self.wbinfo(&to_name, deadline),
            self.wbinfo(&user_sids, deadline),
        );
        let (name, groups) = (name?, groups?);
        let account = parse_sid_to_name(&name)
            .filter(|a| a.domain.eq_ignore_ascii_case(&self.netbios))
            .ok_or_else(|| {
                format!(
                    "winbind names {sid} {name:?}, not a user of {}",
                    self.netbios
                )
            })?;
        let groups = parse_user_sids(&groups)
            .ok_or_else(|| format!("wbinfo --user-sids={sid} answered {groups:?}"))?;
        let mut domain_account = DomainAccount::new(account.name.clone(), self.netbios.clone());
        domain_account.groups = groups
            .into_iter()
            .filter(|g| *g != sid && !g.starts_with("S-1-5-32-"))
            .map(|sid| DomainGroup { sid, name: None })
            .collect();
        domain_account.sid = Some(sid);
        Ok(Cached {
            principal: format!("{}@{}", account.name, self.realm),
            account: domain_account,
            fetched: Instant::now(),
        })
    }

    fn remember(&self, key: String, fresh: &Cached) {
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_USERS && !cache.contains_key(&key) {
            cache.retain(|_, c| c.fetched.elapsed() < self.ttl);
            if cache.len() >= MAX_USERS {
                cache.clear();
            }
        }
        cache.insert(key, fresh.clone());
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
    use std::os::unix::fs::PermissionsExt;

    /// A fake `wbinfo` that logs each call to `calls` and answers like Samba 4.17's.
    fn fake_wbinfo(dir: &std::path::Path, body: &str) -> PathBuf {
        let path = dir.join("wbinfo");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$1\" >> '{}'\n{body}\n",
                dir.join("calls").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn calls(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("calls"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    const SAMBA: &str = r#"case "$1" in
  --name-to-sid=ADEXAMPLE\\erin|--name-to-sid=ADEXAMPLE\\ERIN) echo 'S-1-5-21-1-2-3-1107 SID_USER (1)';;
  --name-to-sid=*) echo "failed to call wbcLookupName: WBC_ERR_DOMAIN_NOT_FOUND" >&2; exit 1;;
  --sid-to-name=S-1-5-21-1-2-3-1107) echo 'ADEXAMPLE\Erin 1';;
  --user-sids=S-1-5-21-1-2-3-1107) printf 'S-1-5-21-1-2-3-1107\nS-1-5-21-1-2-3-513\nS-1-5-21-1-2-3-1105\nS-1-5-32-545\n';;
esac"#;

    #[tokio::test]
    async fn a_user_is_named_in_the_account_s_case_with_its_groups_once() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::new(
            fake_wbinfo(dir.path(), SAMBA),
            "ADEXAMPLE",
            "AD.EXAMPLE.TEST",
        );
        let (principal, account) = lookup.account("erin").await.unwrap();
        assert_eq!(principal, "Erin@AD.EXAMPLE.TEST");
        assert_eq!(account.down_level_name(), "ADEXAMPLE\\Erin");
        assert_eq!(account.sid.as_deref(), Some("S-1-5-21-1-2-3-1107"));
        let groups: Vec<&str> = account.groups.iter().map(|g| g.sid.as_str()).collect();
        assert_eq!(groups, ["S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1105"]);
        assert_eq!(calls(dir.path()), 3);
        let (again, _) = lookup.account("ERIN").await.unwrap();
        assert_eq!(again, principal);
        assert_eq!(calls(dir.path()), 3, "the second logon asks nothing");
    }

    #[tokio::test]
    async fn an_unknown_or_unanswered_user_is_a_problem_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::new(
            fake_wbinfo(dir.path(), SAMBA),
            "ADEXAMPLE",
            "AD.EXAMPLE.TEST",
        );
        let err = lookup.account("nobody").await.unwrap_err();
        assert!(err.contains("WBC_ERR_DOMAIN_NOT_FOUND"), "{err}");
        let slow = AccountLookup::with_times(
            fake_wbinfo(dir.path(), "exec sleep 60"),
            "ADEXAMPLE",
            "AD.EXAMPLE.TEST",
            AccountLookup::TTL,
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let err = slow.account("erin").await.unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let missing =
            AccountLookup::new("/nonexistent/wbinfo".into(), "ADEXAMPLE", "AD.EXAMPLE.TEST");
        let err = missing.account("erin").await.unwrap_err();
        assert!(err.contains("apt-get install winbind"), "{err}");
    }

    #[tokio::test]
    async fn an_aged_answer_is_used_while_it_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = AccountLookup::with_times(
            fake_wbinfo(dir.path(), SAMBA),
            "ADEXAMPLE",
            "AD.EXAMPLE.TEST",
            Duration::ZERO,
            Duration::from_secs(20),
        );
        lookup.account("erin").await.unwrap();
        let (principal, _) = lookup.account("erin").await.unwrap();
        assert_eq!(principal, "Erin@AD.EXAMPLE.TEST");
        let waited = Instant::now();
        while calls(dir.path()) < 6 {
            assert!(waited.elapsed() < Duration::from_secs(20), "no refresh");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
