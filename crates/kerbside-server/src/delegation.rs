//! Delegated credentials handed to CGI programs (what mod_auth_gssapi's
//! `GssapiDelegCcacheDir` and `GssapiUseS4U2Proxy` do), off unless configured.
//!
//! When a client's login leaves the gate a credential to act in its name — a forwarded
//! TGT (the client delegated), or an S4U2Proxy credential (the gate's account may
//! delegate to named services; [`kerbside_gssapi::NegotiateAcceptor::with_constrained_delegation`])
//! — the [`DelegationStore`] writes it to a ticket cache file of that user in a private
//! directory:
//!
//! * the directory is the gate's user's own, mode 0700 (created so; an existing one that
//!   others can enter, or another user's, is refused);
//! * each user has one file, `krb5cc_<principal, percent-encoded>`, mode 0600, replaced
//!   atomically (written beside it, then renamed) at each new login that delegates;
//! * a file is removed when its tickets expire: a reaper sleeps until the earliest
//!   expiry (at most a minute) and removes what is due; files a previous run left are
//!   removed at start, since their expiry is not known;
//! * a CGI program of a request by that user gets `KRB5CCNAME=FILE:<the file>` while it
//!   has not expired. Proxy upstreams get nothing: a ticket cache is a file on the
//!   gate's machine, and forwarding the credential itself over HTTP is not done.
//!
//! When the store is off (the default), a credential a client delegates is released
//! from memory at the end of its login, and nothing is written.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kerbside_gssapi::DelegatedCredential;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a principal keeps in a file name: letters, digits and `.`, `-`, `_`, `@`;
/// everything else (`/`, `%`, `\`...) is percent-encoded, so two principals never share a
/// file and no name leaves the directory.
const FILE_NAME_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'@');

/// The prefix of every ticket cache file of the store.
const PREFIX: &str = "krb5cc_";

/// Credentials that expire within this of the stored ones are taken to be the same
/// tickets, and not written again.
const SAME_TICKETS: Duration = Duration::from_secs(2);

/// The longest the reaper sleeps between looks.
const REAPER_PERIOD: Duration = Duration::from_secs(60);

/// The ticket cache files of delegated credentials, one per user, in a private
/// directory. See the [module docs](self).
#[derive(Debug)]
pub struct DelegationStore {
    dir: PathBuf,
    /// File name → when its tickets expire.
    expiries: Mutex<HashMap<String, Instant>>,
    /// Wakes the reaper when a file is stored (it may expire before the reaper's
    /// next look).
    stored: tokio::sync::Notify,
}

impl DelegationStore {
    /// Opens (or creates, mode 0700) the directory `dir`, and removes the ticket caches
    /// a previous run left there.
    pub fn open(dir: &Path) -> Result<Arc<Self>, crate::SetupError> {
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .recursive(true)
                    .create(dir)
                    .map_err(|e| {
                        format!(
                            "cannot create the delegation directory {}: {e}",
                            dir.display()
                        )
                    })?;
            }
            Err(e) => return Err(format!("the delegation directory {}: {e}", dir.display()).into()),
            Ok(meta) => check_private(dir, &meta)?,
        }
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| format!("the delegation directory {}: {e}", dir.display()))?;
        check_private(dir, &meta)?;
        let store = Self {
            dir: dir.to_owned(),
            expiries: Mutex::new(HashMap::new()),
            stored: tokio::sync::Notify::new(),
        };
        store.remove_leftovers();
        Ok(Arc::new(store))
    }

    /// What `kerbside gate --check` says of `dir`, without creating or changing
    /// anything: usable (or to be created), or why not.
    pub fn check_dir(dir: &Path) -> Result<String, String> {
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!(
                "delegation directory {} does not exist yet; it will be created (mode 0700)",
                dir.display()
            )),
            Err(e) => Err(format!("the delegation directory {}: {e}", dir.display())),
            Ok(meta) => check_private(dir, &meta)
                .map(|()| {
                    format!(
                        "delegation directory {} is the gate's own, mode 0700: delegated \
                         tickets go there for CGI programs",
                        dir.display()
                    )
                })
                .map_err(|e| e.to_string()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `principal`'s ticket cache (whether or not it exists).
    pub fn path_for(&self, principal: &str) -> PathBuf {
        self.dir.join(file_name(principal))
    }

    /// Stores `credential` as `principal`'s ticket cache, replacing the previous one.
    /// Failures are logged (the login itself stands).
    pub fn keep(&self, principal: &str, credential: &DelegatedCredential) {
        let Some(lifetime) = credential.lifetime().filter(|l| !l.is_zero()) else {
            tracing::info!(%principal, "delegated credential already expired; not stored");
            return;
        };
        let name = file_name(principal);
        let path = self.dir.join(&name);
        let expires = Instant::now() + lifetime;
        // The same tickets again (a client that delegates at every request, or S4U2Proxy
        // with the same service ticket): the file already holds them.
        if self.lock().get(&name).is_some_and(|&old| {
            old.max(expires) - old.min(expires) < SAME_TICKETS && path.is_file()
        }) {
            return;
        }
        let mut random = [0u8; 8];
        if getrandom::fill(&mut random).is_err() {
            tracing::warn!(
                "no randomness for a temporary file name; delegated credential not stored"
            );
            return;
        }
        let tmp = self.dir.join(format!(
            ".tmp-{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        let written = credential
            .store(&tmp)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| e.to_string())
            })
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
        match written {
            Ok(()) => {
                self.lock().insert(name, expires);
                self.stored.notify_one();
                tracing::info!(
                    %principal,
                    ccache = %path.display(),
                    expires_in = lifetime.as_secs(),
                    "delegated credential stored for CGI programs"
                );
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(%principal, "cannot store the delegated credential: {e}");
            }
        }
    }

    /// `principal`'s ticket cache, if it has one that has not expired.
    pub fn current(&self, principal: &str) -> Option<PathBuf> {
        let name = file_name(principal);
        let expires = *self.lock().get(&name)?;
        let path = self.dir.join(name);
        (expires > Instant::now() && path.is_file()).then_some(path)
    }

    /// Removes the files whose tickets have expired; returns when the next one expires.
    pub fn reap(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut expiries = self.lock();
        expiries.retain(|name, expires| {
            if *expires > now {
                return true;
            }
            match std::fs::remove_file(self.dir.join(name.as_str())) {
                Ok(()) => tracing::info!(file = %name, "expired delegated credential removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %name, "cannot remove an expired ticket cache: {e}")
                }
            }
            false
        });
        expiries.values().min().copied()
    }

    /// Runs forever: removes each file when it expires (sleeping until the earliest
    /// expiry, woken by each new file, and looking at least once a minute). Spawn it on
    /// the runtime that serves.
    pub async fn reaper(self: Arc<Self>) {
        loop {
            let next = self.reap();
            let period = Instant::now() + REAPER_PERIOD;
            let wake = next.map_or(period, |n| n.min(period));
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {}
                () = self.stored.notified() => {}
            }
        }
    }

    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(PREFIX) || name.starts_with(".tmp-") {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(file = %name, "cannot remove an old ticket cache: {e}");
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.expiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A directory only the gate's user can enter: not a symbolic link, its own, mode 0700
/// or stricter.
fn check_private(dir: &Path, meta: &std::fs::Metadata) -> Result<(), crate::SetupError> {
    if !meta.is_dir() {
        return Err(format!(
            "the delegation directory {} is not a directory (a symbolic link is refused too)",
            dir.display()
        )
        .into());
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(format!(
            "the delegation directory {} belongs to uid {}, not to the gate's user ({uid}): \
             give a directory of the gate's own",
            dir.display(),
            meta.uid()
        )
        .into());
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the delegation directory {} has mode {mode:04o}: others could read users' \
             tickets; chmod 700 it",
            dir.display()
        )
        .into());
    }
    Ok(())
}

/// `krb5cc_` and the principal with everything but letters, digits, `.`, `-`, `_` and
/// `@` percent-encoded.
fn file_name(principal: &str) -> String {
    format!(
        "{PREFIX}{}",
        utf8_percent_encode(principal, FILE_NAME_ESCAPES)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_directory_is_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("deleg");
        let store = DelegationStore::open(&dir).unwrap();
        let mode = std::fs::metadata(store.dir()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let err = DelegationStore::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("mode 0750") && err.contains("chmod 700"),
            "{err}"
        );

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = DelegationStore::open(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn leftovers_of_a_previous_run_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(dir.path().join("krb5cc_alice@EXAMPLE.TEST"), b"old").unwrap();
        std::fs::write(dir.path().join(".tmp-0011"), b"torn").unwrap();
        std::fs::write(dir.path().join("README"), b"not ours").unwrap();
        let store = DelegationStore::open(dir.path()).unwrap();
        assert!(store.current("alice@EXAMPLE.TEST").is_none());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("README")]);
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_name("alice@EXAMPLE.TEST"), "krb5cc_alice@EXAMPLE.TEST");
        assert_eq!(file_name("HTTP/www@R"), "krb5cc_HTTP%2Fwww@R");
        assert_eq!(file_name("../x"), "krb5cc_..%2Fx");
    }

    proptest! {
        #[test]
        fn file_names_are_one_component_and_never_shared(a in ".{0,40}", b in ".{0,40}") {
            let name = file_name(&a);
            prop_assert!(!name.contains('/') && !name.contains('\0'));
            prop_assert_eq!(Path::new(&name).components().count(), 1);
            if a != b {
                prop_assert_ne!(name, file_name(&b));
            }
        }
    }
}
