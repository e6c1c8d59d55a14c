//! Names for the group SIDs of an Active Directory PAC (`S-1-5-21-…-1105` →
//! `ADEXAMPLE\developers`), from the domain through winbind.
//!
//! **Why winbind.** The gate's host runs winbindd when it is joined to the domain (`net ads
//! join` or `realm join`), which NTLM through the domain needs anyway; winbind already
//! keeps an authenticated channel to a domain controller, fails over between them and has
//! its own cache. Asking LDAP directly would need a Kerberos initiator credential from the
//! gate's keytab, the DC's LDAP service name and a SASL/GSSAPI LDAP client in the gate —
//! more moving parts, and new dependencies, for the same answer. `wbinfo --lookup-sids`
//! takes many SIDs in one call, so a login costs one process per batch of new SIDs.
//!
//! Two things about `wbinfo` (Samba 4.17) shape the calls: one SID winbind cannot place
//! (`S-1-18-1`, "authentication authority asserted identity", is in every PAC) fails the
//! whole batch, so such SIDs are not asked for, and a failed batch is split in halves
//! until the SID that fails it stands alone; and `--lookup-sids` prints the domain of
//! each name as `<none>`, so the domain's name is asked once per domain SID
//! (`wbinfo --sid-to-name=S-1-5-21-…`, which answers `ADEXAMPLE 3`) and remembered.
//!
//! **Never waiting twice.** Each answer is kept for a time to live (names for
//! [`GroupNames::DEFAULT_TTL`], SIDs that did not resolve for a shorter time). A SID whose
//! answer has aged out is still answered from the cache at once, and looked up again in
//! the background; only SIDs never seen before make a request wait, and then for at most
//! the deadline ([`GroupNames::DEFAULT_DEADLINE`] for all of them together). A lookup the
//! request stopped waiting for goes on in the background (up to
//! [`GroupNames::LOOKUP_DEADLINE`]) and fills the cache for the next request; a SID being
//! looked up is not asked for twice. A SID that does not resolve in time, or at all, is
//! kept as its SID string: a rule naming the SID still matches, a rule naming the group
//! does not.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::identity::DomainGroup;

/// How many SIDs go to one `wbinfo` call.
const BATCH: usize = 200;

/// At most this many SIDs are remembered; beyond it, expired answers are dropped first.
const MAX_ENTRIES: usize = 100_000;

/// SID types (`enum lsa_SidType`) that name groups: domain group, alias (domain-local or
/// builtin), well-known group.
const GROUP_TYPES: &[u32] = &[2, 4, 5];

/// Resolves group SIDs to names through winbind, with a cache; cheap to clone (shared).
#[derive(Clone)]
pub struct GroupNames {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupNames")
            .field("wbinfo", &self.inner.wbinfo)
            .field("ttl", &self.inner.ttl)
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

struct Inner {
    wbinfo: PathBuf,
    ttl: Duration,
    negative_ttl: Duration,
    deadline: Duration,
    cache: Mutex<HashMap<String, Entry>>,
    /// SIDs being looked up (for a request, or again in the background).
    in_flight: Mutex<HashSet<String>>,
    /// Domain names by domain SID (`S-1-5-21-…` → `ADEXAMPLE`, `S-1-5-32` → `BUILTIN`).
    domains: Mutex<HashMap<String, String>>,
    /// Whether winbind being unavailable was logged as a warning already (later times
    /// are logged at debug level, so a gate without winbind does not fill its log).
    warned: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct Entry {
    name: Option<String>,
    expires: Instant,
}

impl GroupNames {
    /// How long a name is used before it is looked up again (in the background).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
    /// How long to wait for winbind when a login brings SIDs never seen before.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3);
    /// How long a SID that did not resolve stays unresolved before it is tried again.
    pub const NEGATIVE_TTL: Duration = Duration::from_secs(60);
    /// How long one lookup may take in all, requests having stopped waiting for it.
    pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(30);

    /// Lookups with `wbinfo` from the `PATH`, with the default time to live and deadline.
    pub fn winbind() -> Self {
        Self::with_program("wbinfo", Self::DEFAULT_TTL, Self::DEFAULT_DEADLINE)
    }

    /// Lookups with the `wbinfo` program at `wbinfo`.
    pub fn with_program(wbinfo: impl Into<PathBuf>, ttl: Duration, deadline: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                wbinfo: wbinfo.into(),
                ttl,
                negative_ttl: Self::NEGATIVE_TTL.min(ttl),
                deadline,
                cache: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashSet::new()),
                domains: Mutex::new(HashMap::new()),
                warned: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The groups `sids` (SID strings), named where the domain knows them. Waits only for
    /// SIDs not in the cache, and at most the deadline; see the [module docs](self).
    pub async fn resolve(&self, sids: &[String]) -> Vec<DomainGroup> {
        let now = Instant::now();
        let mut known: HashMap<String, Option<String>> = HashMap::new();
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        {
            let cache = lock(&self.inner.cache);
            for sid in sids {
                match cache.get(sid) {
                    Some(entry) => {
                        if entry.expires <= now {
                            stale.push(sid.clone());
                        }
                        known.insert(sid.clone(), entry.name.clone());
                    }
                    None => missing.push(sid.clone()),
                }
            }
        }
        if !stale.is_empty() {
            // Answered from the cache now; the new answer is for the next request.
            drop(self.start_lookup(stale));
        }
        if let Some(lookup) = self.start_lookup(missing) {
            if let Ok(Ok(found)) = tokio::time::timeout(self.inner.deadline, lookup).await {
                known.extend(found.into_iter().map(|(sid, name)| (sid, Some(name))));
            }
        }
        sids.iter()
            .map(|sid| DomainGroup {
                sid: sid.clone(),
                name: known.get(sid).cloned().flatten(),
            })
            .collect()
    }

    /// Starts a lookup of those of `sids` not being looked up already, as a task of its own
    /// that fills the cache when it ends (also if no one waits for it any more).
    fn start_lookup(
        &self,
        sids: Vec<String>,
    ) -> Option<tokio::task::JoinHandle<HashMap<String, String>>> {
        let todo: Vec<String> = {
            let mut in_flight = lock(&self.inner.in_flight);
            sids.into_iter()
                .filter(|sid| in_flight.insert(sid.clone()))
                .collect()
        };
        if todo.is_empty() {
            return None;
        }
        let inner = self.inner.clone();
        Some(tokio::spawn(async move {
            let found = inner.lookup(&todo).await;
            inner.remember(&todo, &found);
            let mut in_flight = lock(&inner.in_flight);
            for sid in &todo {
                in_flight.remove(sid);
            }
            found
        }))
    }
}

/// Why a `wbinfo` call gave no names.
enum Failure {
    /// winbind answered, but not for these SIDs (one of them, at least).
    Refused(String),
    /// No answer: no `wbinfo`, no winbindd, or the deadline passed.
    Unavailable(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Asks winbind for `sids`, in batches, within [`GroupNames::LOOKUP_DEADLINE`] for all
    /// of them; what was not answered in time is left out.
    async fn lookup(&self, sids: &[String]) -> HashMap<String, String> {
        let started = Instant::now();
        let deadline = started + GroupNames::LOOKUP_DEADLINE.max(self.deadline);
        let mut found = HashMap::new();
        // Only the NT authority's SIDs (domains, BUILTIN, well-known groups) are names.
        let askable: Vec<String> = sids
            .iter()
            .filter(|sid| sid.starts_with("S-1-5-"))
            .cloned()
            .collect();
        let mut todo: Vec<Vec<String>> = askable.chunks(BATCH).map(<[String]>::to_vec).collect();
        todo.reverse();
        while let Some(batch) = todo.pop() {
            match self.run_wbinfo(&batch, deadline).await {
                Ok(names) => found.extend(names),
                Err(Failure::Refused(_)) if batch.len() > 1 => {
                    // One SID winbind cannot place fails them all: halve and retry.
                    let (a, b) = batch.split_at(batch.len() / 2);
                    todo.push(b.to_vec());
                    todo.push(a.to_vec());
                }
                Err(Failure::Refused(problem)) => {
                    tracing::debug!(sid = %batch[0], "winbind has no name for it: {problem}");
                }
                Err(Failure::Unavailable(problem)) => {
                    let first = !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed);
                    if first {
                        tracing::warn!(
                            sids = sids.len(),
                            "cannot name the PAC's groups through winbind ({problem}); they \
                             are kept as SIDs. Is the gate's host joined to the domain and \
                             winbindd running (wbinfo --ping-dc)? Set ad-group-names = \"sid\" \
                             to stop asking"
                        );
                    } else {
                        tracing::debug!(sids = sids.len(), "winbind unavailable: {problem}");
                    }
                    break;
                }
            }
        }
        let found = self.with_domain_names(found, deadline).await;
        tracing::debug!(
            asked = sids.len(),
            named = found.len(),
            elapsed = ?started.elapsed(),
            "group SIDs looked up through winbind"
        );
        found
    }

    /// Puts the domain's name in place of `<none>` in `DOMAIN\name`, asking winbind for
    /// each domain SID not seen before; a name whose domain stays unknown is dropped.
    async fn with_domain_names(
        &self,
        found: HashMap<String, String>,
        deadline: Instant,
    ) -> HashMap<String, String> {
        let mut named = HashMap::new();
        for (sid, name) in found {
            let Some(account) = name.strip_prefix("<none>\\") else {
                named.insert(sid, name);
                continue;
            };
            let Some((domain_sid, _rid)) = sid.rsplit_once('-') else {
                continue;
            };
            let known = lock(&self.domains).get(domain_sid).cloned();
            let domain = match known {
                Some(domain) => Some(domain),
                None => self.domain_name(domain_sid, deadline).await,
            };
            if let Some(domain) = domain {
                named.insert(sid, format!("{domain}\\{account}"));
            }
        }
        named
    }

    /// `wbinfo --sid-to-name=DOMAIN-SID`: `ADEXAMPLE 3` (3: a domain).
    async fn domain_name(&self, domain_sid: &str, deadline: Instant) -> Option<String> {
        let output = self
            .wbinfo_output(&format!("--sid-to-name={domain_sid}"), deadline)
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let (name, kind) = text.trim().rsplit_once(' ')?;
        let name = name.trim_end_matches('\\');
        if kind != "3"
            || name.is_empty()
            || name
                .chars()
                .any(|c| c.is_control() || c == ',' || c == '\\')
        {
            return None;
        }
        lock(&self.domains).insert(domain_sid.to_owned(), name.to_owned());
        Some(name.to_owned())
    }

    async fn wbinfo_output(
        &self,
        arg: &str,
        deadline: Instant,
    ) -> Result<std::process::Output, String> {
        let mut cmd = Command::new(&self.wbinfo);
        cmd.arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.wbinfo.display()))?;
        tokio::time::timeout_at(deadline.into(), child.wait_with_output())
            .await
            .map_err(|_| format!("no answer within {:?}", GroupNames::LOOKUP_DEADLINE))?
            .map_err(|e| format!("{} failed: {e}", self.wbinfo.display()))
    }

    async fn run_wbinfo(
        &self,
        sids: &[String],
        deadline: Instant,
    ) -> Result<HashMap<String, String>, Failure> {
        let output = self
            .wbinfo_output(&format!("--lookup-sids={}", sids.join(",")), deadline)
            .await
            .map_err(Failure::Unavailable)?;
        let names = parse_lookup_sids(&String::from_utf8_lossy(&output.stdout));
        if !output.status.success() && names.is_empty() {
            let err = String::from_utf8_lossy(&output.stderr);
            let problem = format!(
                "{} answered {}: {}",
                self.wbinfo.display(),
                output.status,
                err.trim()
            );
            // wbinfo fails the same way when winbindd is not there at all.
            if err.contains("WBC_ERR_WINBIND_NOT_AVAILABLE") {
                return Err(Failure::Unavailable(problem));
            }
            return Err(Failure::Refused(problem));
        }
        Ok(names)
    }

    fn remember(&self, asked: &[String], found: &HashMap<String, String>) {
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        if cache.len() + asked.len() > MAX_ENTRIES {
            cache.retain(|_, entry| entry.expires > now);
            if cache.len() + asked.len() > MAX_ENTRIES {
                cache.clear();
            }
        }
        for sid in asked {
            let name = found.get(sid).cloned();
            let ttl = if name.is_some() {
                self.ttl
            } else {
                self.negative_ttl
            };
            cache.insert(
                sid.clone(),
                Entry {
                    name,
                    expires: now + ttl,
                },
            );
        }
    }
}

/// Reads `wbinfo --lookup-sids` output: one `SID -> DOMAIN\name TYPE` line per SID that
/// resolved. Lines for SIDs that are not groups, and names with control characters or
/// commas (which could not travel in the groups header), are left out.
pub fn parse_lookup_sids(output: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for line in output.lines() {
        let Some((sid, rest)) = line.split_once(" -> ") else {
            continue;
        };
        let Some((name, kind)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(kind) = kind.trim().parse::<u32>() else {
            continue;
        };
        let sid = sid.trim();
        if !GROUP_TYPES.contains(&kind)
            || !sid.starts_with("S-1-")
            || name.is_empty()
            || name.ends_with('\\')
            || name.chars().any(|c| c.is_control() || c == ',')
        {
            continue;
        }
        names.insert(sid.to_owned(), name.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wbinfo_output_is_read_line_by_line() {
        let out = "S-1-5-21-1-2-3-1105 -> ADEXAMPLE\\developers 2\n\
                   S-1-5-21-1-2-3-1104 -> ADEXAMPLE\\carol 1\n\
                   S-1-5-32-545 -> BUILTIN\\Users 4\n\
                   S-1-5-21-1-2-3-513 -> ADEXAMPLE\\Domain Users 2\n\
                   S-1-18-1 -> <none>\\ 8\n\
                   garbage\n";
        let names = parse_lookup_sids(out);
        assert_eq!(names["S-1-5-21-1-2-3-1105"], "ADEXAMPLE\\developers");
        assert_eq!(names["S-1-5-32-545"], "BUILTIN\\Users");
        assert_eq!(names["S-1-5-21-1-2-3-513"], "ADEXAMPLE\\Domain Users");
        assert_eq!(names.len(), 3, "{names:?}");
    }

    pub(crate) use super::fake::{calls, fake_wbinfo};

    #[tokio::test]
    async fn names_are_looked_up_once_and_unknown_sids_stay_sids() {
        let dir = tempfile::tempdir().unwrap();
        let wbinfo = fake_wbinfo(
            dir.path(),
            "echo 'S-1-5-21-1-2-3-1105 -> ADEXAMPLE\\developers 2'",
        );
        let names =
            GroupNames::with_program(wbinfo, Duration::from_secs(600), Duration::from_secs(20));
        let sids = vec!["S-1-5-21-1-2-3-1105".to_owned(), "S-1-18-1".to_owned()];
        let groups = names.resolve(&sids).await;
        assert_eq!(groups[0].label(), "ADEXAMPLE\\developers");
        assert_eq!(groups[1].label(), "S-1-18-1");
        assert_eq!(calls(dir.path()), 1);
        let again = names.resolve(&sids).await;
        assert_eq!(again, groups);
        assert_eq!(calls(dir.path()), 1, "the second login waits on no lookup");
    }

    #[tokio::test]
    async fn a_sid_winbind_cannot_place_does_not_cost_the_others_their_names() {
        let dir = tempfile::tempdir().unwrap();
        // Like Samba 4.17's wbinfo: one unknown SID fails the batch, and names come back
        // with the domain `<none>`.
        let wbinfo = fake_wbinfo(
            dir.path(),
            r#"case "$1" in
  *-666*) echo 'wbcLookupSids failed: WBC_ERR_INVALID_RESPONSE' >&2; exit 1;;
  --sid-to-name=*) echo 'ADEXAMPLE 3';;
  *) for s in $(echo "${1#--lookup-sids=}" | tr ',' ' '); do echo "$s -> <none>\\g${s##*-} 2"; done;;
esac"#,
        );
        let names =
            GroupNames::with_program(wbinfo, Duration::from_secs(600), Duration::from_secs(20));
        let sids: Vec<String> = [
            "S-1-5-21-1-2-3-1",
            "S-1-5-21-1-2-3-666",
            "S-1-5-21-1-2-3-2",
            "S-1-18-1",
        ]
        .map(str::to_owned)
        .to_vec();
        let groups = names.resolve(&sids).await;
        let labels: Vec<&str> = groups.iter().map(DomainGroup::label).collect();
        assert_eq!(
            labels,
            [
                "ADEXAMPLE\\g1",
                "S-1-5-21-1-2-3-666",
                "ADEXAMPLE\\g2",
                "S-1-18-1"
            ]
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert!(!calls.contains("S-1-18-1"), "never asked: {calls}");
        assert_eq!(
            calls.matches("--sid-to-name=").count(),
            1,
            "the domain's name is asked once: {calls}"
        );
    }

    #[tokio::test]
    async fn a_hanging_winbind_costs_one_deadline_and_leaves_sids() {
        let dir = tempfile::tempdir().unwrap();
        let wbinfo = fake_wbinfo(dir.path(), "exec sleep 60");
        let names =
            GroupNames::with_program(wbinfo, Duration::from_secs(600), Duration::from_millis(300));
        let sids = vec!["S-1-5-21-1-2-3-1105".to_owned()];
        let groups = tokio::time::timeout(Duration::from_secs(30), names.resolve(&sids))
            .await
            .expect("the deadline cuts the lookup short");
        assert_eq!(groups[0].name, None);
        assert_eq!(groups[0].label(), "S-1-5-21-1-2-3-1105");
        names.resolve(&sids).await;
        assert_eq!(
            calls(dir.path()),
            1,
            "an unresolved SID is not asked again at once"
        );
    }

    #[tokio::test]
    async fn a_slow_answer_is_kept_for_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let wbinfo = fake_wbinfo(
            dir.path(),
            "sleep 1; echo 'S-1-5-21-1-2-3-1105 -> ADEXAMPLE\\developers 2'",
        );
        let names =
            GroupNames::with_program(wbinfo, Duration::from_secs(600), Duration::from_millis(50));
        let sids = vec!["S-1-5-21-1-2-3-1105".to_owned()];
        // The request stops waiting at its deadline...
        assert_eq!(names.resolve(&sids).await[0].name, None);
        // ...and the lookup goes on: a later request finds the name, with no new call.
        let waited = Instant::now();
        loop {
            if names.resolve(&sids).await[0].name.as_deref() == Some("ADEXAMPLE\\developers") {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "the answer never came"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(calls(dir.path()), 1);
    }

    #[tokio::test]
    async fn a_missing_wbinfo_leaves_sids() {
        let names = GroupNames::with_program(
            "/nonexistent/wbinfo",
            Duration::from_secs(600),
            Duration::from_secs(5),
        );
        let groups = names.resolve(&["S-1-5-32-545".to_owned()]).await;
        assert_eq!(groups[0].label(), "S-1-5-32-545");
    }

    #[tokio::test]
    async fn an_aged_answer_is_used_while_it_is_looked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let wbinfo = fake_wbinfo(
            dir.path(),
            "echo 'S-1-5-21-1-2-3-1105 -> ADEXAMPLE\\developers 2'",
        );
        // A time to live of zero: every answer has aged out by the next request.
        let names = GroupNames::with_program(wbinfo, Duration::ZERO, Duration::from_secs(20));
        let sids = vec!["S-1-5-21-1-2-3-1105".to_owned()];
        names.resolve(&sids).await;
        let groups = names.resolve(&sids).await;
        assert_eq!(groups[0].label(), "ADEXAMPLE\\developers");
        // The refresh runs in the background; wait for it (the second call).
        let waited = Instant::now();
        while calls(dir.path()) < 2 {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "no background refresh"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A fake `wbinfo` for the tests of the winbind look-ups (here and in
/// [`winbind_account`](crate::winbind_account)).
#[cfg(test)]
pub(crate) mod fake {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// A `wbinfo` in `dir` that appends each call's first argument to `dir/calls` and
    /// answers with the shell `body`.
    pub(crate) fn fake_wbinfo(dir: &Path, body: &str) -> PathBuf {
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

    /// How many times the fake was called.
    pub(crate) fn calls(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("calls"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}
