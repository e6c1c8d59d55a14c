//! The replay cache on disk, so that a restart of the gate does not forget which
//! Kerberos authenticators it has already accepted (a token captured before the
//! restart would otherwise be accepted once more, within the clock skew).
//!
//! Each accepted authenticator is appended to the file as one 40-byte record (its
//! key and when it expires; format in [`kerbside_proto::replay_file`]) with a single
//! `write` on a file opened `O_APPEND`, before the accept is reported successful.
//! There is no `fsync` per accept: the record is in the kernel's page cache once
//! `write` returns, so it survives the gate being killed or crashing, and costs a
//! few microseconds beside an accept's ~250. Only a crash of the whole machine can
//! lose the last records, and a machine that reboots has usually taken longer than
//! the replay window. A token whose record cannot be written (a full disk) is
//! refused, as MIT refuses one its replay cache cannot record; a token the memory
//! cache has no room for is written to the file and then left to MIT's cache.
//!
//! At start the unexpired records are reloaded and the file is rewritten with only
//! them (a temporary file, synced, renamed over the old one); the same compaction
//! runs whenever the file has grown by as many records as were alive at the last
//! one (at least 65536). The file is owned by one process at a time (an exclusive
//! `flock`), must belong to the gate's user and not be writable by others, and is
//! never followed through a symbolic link, like MIT's own replay cache. When it
//! cannot be used, the caller falls back to MIT's file cache and says so.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kerbside_proto::replay_file::{self, Entry, ReplayFileError as FormatError};
use sha2::{Digest, Sha256};

use crate::replay::ReplayCache;

/// The file grows by at least this many records before it is compacted.
const MIN_COMPACTION: usize = 1 << 16;

/// Why the replay cache file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot use {} as the replay cache file: {problem}", path.display())]
pub struct ReplayFileError {
    path: PathBuf,
    problem: String,
}

impl ReplayFileError {
    fn new(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The replay cache's file, open and locked.
#[derive(Debug)]
pub struct ReplayJournal {
    path: PathBuf,
    /// Appends share it (each is one `write` on an `O_APPEND` file); a compaction
    /// takes it alone to swap the file.
    file: RwLock<File>,
    /// Records appended since the last compaction.
    appended: AtomicUsize,
    /// Compact once `appended` reaches this.
    compact_at: AtomicUsize,
    /// Whether the compaction at start ran (or was tried).
    compacted_once: AtomicBool,
    /// `compact_at` is never below this.
    min_compaction: usize,
    window_secs: u64,
}

/// What [`ReplayJournal::open`] found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// The unexpired entries (one per key).
    pub entries: Vec<Entry>,
    /// Bytes of a torn last record (a crash during a write), skipped.
    pub torn_tail: usize,
}

impl ReplayJournal {
    /// Where the gate keeps its replay cache when not told: in `KRB5RCACHEDIR`
    /// (else `/var/tmp`), as MIT does, named for the acceptor principal (or the
    /// keytab, when any key in it is accepted) and the user id, so two services or
    /// two users never share a file.
    pub fn default_path(acceptor_name: Option<&str>, keytab: Option<&Path>) -> PathBuf {
        let dir = std::env::var_os("KRB5RCACHEDIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
        let who = match (acceptor_name, keytab) {
            (Some(name), _) => name
                .chars()
                .take(100)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            (None, Some(keytab)) => {
                use std::os::unix::ffi::OsStrExt;
                let digest = Sha256::digest(keytab.as_os_str().as_bytes());
                let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                format!("keytab-{hex}")
            }
            (None, None) => "default".to_owned(),
        };
        dir.join(format!("kerbside_rcache_{who}_{}", os::euid()))
    }

    /// Opens (or creates, mode 0600) the file at `path` for entries that live
    /// `window`, reloads its unexpired entries and compacts it.
    pub fn open(path: &Path, window: Duration) -> Result<(Self, Reloaded), ReplayFileError> {
        Self::open_compacting_after(path, window, MIN_COMPACTION)
    }

    fn open_compacting_after(
        path: &Path,
        window: Duration,
        min_compaction: usize,
    ) -> Result<(Self, Reloaded), ReplayFileError> {
        let fail = |problem: String| ReplayFileError::new(path, problem);
        let mut file = open_locked(path).map_err(fail)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| fail(format!("cannot read it: {e}")))?;
        let parsed = replay_file::parse(&data).map_err(|e| match e {
            FormatError::NotAReplayFile => fail(format!(
                "{e}; remove it or give --replay-cache another file"
            )),
            other => fail(other.to_string()),
        })?;
        let window_secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
        let reloaded = Reloaded {
            entries: parsed.live(unix_now(), window_secs),
            torn_tail: parsed.torn_tail,
        };
        let journal = Self {
            path: path.to_owned(),
            file: RwLock::new(file),
            appended: AtomicUsize::new(0),
            compact_at: AtomicUsize::new(min_compaction),
            compacted_once: AtomicBool::new(false),
            min_compaction,
            window_secs,
        };
        if let Err(e) = journal.rewrite(|| reloaded.entries.clone()) {
            tracing::warn!(
                file = %path.display(),
                "cannot compact the replay cache file (appending to it as it is): {e}"
            );
        }
        Ok((journal, reloaded))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `key`, recorded now, with one `write`.
    pub(crate) fn append(&self, key: [u8; 32]) -> io::Result<()> {
        let entry = Entry {
            key,
            expires: unix_now().saturating_add(self.window_secs),
        };
        let file = self.file.read().unwrap_or_else(PoisonError::into_inner);
        let record = entry.encode();
        let written = (&*file).write(&record)?;
        if written != record.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {written} of {} bytes written", record.len()),
            ));
        }
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Compacts the file to the entries of `cache` if it has grown enough since the
    /// last time.
    pub(crate) fn compact_if_due(&self, cache: &ReplayCache) {
        if self.appended.load(Ordering::Relaxed) < self.compact_at.load(Ordering::Relaxed) {
            return;
        }
        // The snapshot is taken with appends held off, so an entry recorded after it
        // is appended to the new file, and one recorded before it is in it.
        let snapshot = || {
            let now = Instant::now();
            let unix = unix_now();
            cache
                .live_entries(now)
                .into_iter()
                .map(|(key, expires)| Entry {
                    key,
                    expires: unix + expires.saturating_duration_since(now).as_secs() + 1,
                })
                .collect()
        };
        if let Err(e) = self.rewrite(snapshot) {
            tracing::warn!(file = %self.path.display(), "cannot compact the replay cache file: {e}");
            // Try again after as many appends again.
            self.appended.store(0, Ordering::Relaxed);
        }
    }

    /// Writes the entries `snapshot` gives (taken while no append can run) to a
    /// temporary file beside the journal, syncs it, locks it and renames it over the
    /// journal.
    fn rewrite(&self, snapshot: impl FnOnce() -> Vec<Entry>) -> io::Result<()> {
        let mut file = self.file.write().unwrap_or_else(PoisonError::into_inner);
        if self.appended.load(Ordering::Relaxed) < self.compact_at.load(Ordering::Relaxed)
            && self.compacted_once.swap(true, Ordering::Relaxed)
        {
            // Another thread compacted while this one waited for the lock.
            return Ok(());
        }
        let entries = snapshot();
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(".tmp");
        let tmp_path = PathBuf::from(tmp_name);
        // A file left by a compaction that crashed (it is ours: we hold the lock).
        let _ = std::fs::remove_file(&tmp_path);
        let mut tmp = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp_path)?;
        let written = os::lock(&tmp)
            .and_then(|()| tmp.write_all(&replay_file::encode(&entries)))
            .and_then(|()| tmp.sync_data())
            .and_then(|()| std::fs::rename(&tmp_path, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
        *file = tmp;
        self.appended.store(0, Ordering::Relaxed);
        self.compact_at
            .store(entries.len().max(self.min_compaction), Ordering::Relaxed);
        Ok(())
    }
}

/// Opens `path` without following a symbolic link, checks who owns it and who may
/// write to it, and takes the exclusive lock.
fn open_locked(path: &Path) -> Result<File, String> {
    // Another gate may compact (rename over) the file between our open and our
    // lock: then the lock is on a file no longer at `path`; try again.
    for _ in 0..3 {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    "it is a symbolic link, which the replay cache never follows; give a \
                     plain file"
                        .to_owned()
                }
                _ => format!("cannot open it: {e}"),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read its owner and mode: {e}"))?;
        if !meta.is_file() {
            return Err("it is not a regular file".to_owned());
        }
        let euid = os::euid();
        if meta.uid() != euid {
            return Err(format!(
                "it belongs to uid {}, not to this process (uid {euid}): someone else may have \
                 planted it; remove it or give --replay-cache a file of your own",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "others may write to it (mode {:o}); chmod 600 it",
                meta.mode() & 0o7777
            ));
        }
        os::lock(&file).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                "another process holds it (another gate for the same service and user?); \
                 give each gate its own --replay-cache"
                    .to_owned()
            } else {
                format!("cannot lock it: {e}")
            }
        })?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => return Ok(file),
            _ => continue,
        }
    }
    Err("it keeps being replaced while it is opened".to_owned())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The two system calls std does not offer at this crate's minimum Rust version.
#[allow(unsafe_code)]
mod os {
    use std::io;
    use std::os::unix::io::AsRawFd;

    /// The effective user id.
    pub(super) fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    /// An exclusive `flock` without waiting (`WouldBlock` if another holds it).
    pub(super) fn lock(file: &impl AsRawFd) -> io::Result<()> {
        // SAFETY: the descriptor is open for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn appended_entries_are_reloaded_and_the_file_compacted() {
        let dir = dir();
        let path = dir.path().join("rc");
        let (journal, reloaded) = ReplayJournal::open(&path, WINDOW).unwrap();
        assert!(reloaded.entries.is_empty());
        journal.append([1; 32]).unwrap();
        journal.append([2; 32]).unwrap();
        drop(journal);
        // A crash in the middle of a third write.
        let mut data = std::fs::read(&path).unwrap();
        data.extend_from_slice(&[3; 20]);
        std::fs::write(&path, &data).unwrap();
        let (_journal, reloaded) = ReplayJournal::open(&path, WINDOW).unwrap();
        let keys: Vec<[u8; 32]> = reloaded.entries.iter().map(|e| e.key).collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&[1; 32]) && keys.contains(&[2; 32]));
        assert_eq!(reloaded.torn_tail, 20);
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            16 + 2 * 40,
            "compacted at start, the torn tail gone"
        );
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn expired_entries_are_not_reloaded() {
        let dir = dir();
        let path = dir.path().join("rc");
        let old = Entry {
            key: [9; 32],
            expires: unix_now() - 1,
        };
        let young = Entry {
            key: [8; 32],
            expires: unix_now() + 100,
        };
        std::fs::write(&path, replay_file::encode(&[old, young])).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (_journal, reloaded) = ReplayJournal::open(&path, WINDOW).unwrap();
        assert_eq!(reloaded.entries, [young]);
    }

    #[test]
    fn the_file_is_compacted_to_the_live_entries_as_it_grows() {
        let dir = dir();
        let path = dir.path().join("rc");
        let (journal, _) = ReplayJournal::open_compacting_after(&path, WINDOW, 8).unwrap();
        let cache = ReplayCache::new(WINDOW / 2, 100);
        let t0 = Instant::now();
        // Five entries that have expired by now, then seven alive.
        for i in 0..5u8 {
            cache.restore([i; 32], t0);
            journal.append([i; 32]).unwrap();
        }
        for i in 5..12u8 {
            assert_eq!(cache.insert([i; 32], t0), crate::Insert::Fresh);
            journal.append([i; 32]).unwrap();
            journal.compact_if_due(&cache);
        }
        // The eighth append made it due: the file holds the live entries only.
        let file = replay_file::parse(&std::fs::read(&path).unwrap()).unwrap();
        let mut keys: Vec<u8> = file.entries.iter().map(|e| e.key[0]).collect();
        keys.sort_unstable();
        assert_eq!(keys, [5, 6, 7, 8, 9, 10, 11]);
        // Still appending, to the new file.
        journal.append([42; 32]).unwrap();
        let file = replay_file::parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(file.entries.len(), 8);
        drop(journal);
        let (_journal, reloaded) = ReplayJournal::open(&path, WINDOW).unwrap();
        assert_eq!(reloaded.entries.len(), 8);
    }

    #[test]
    fn a_second_process_cannot_share_the_file() {
        let dir = dir();
        let path = dir.path().join("rc");
        let (_journal, _) = ReplayJournal::open(&path, WINDOW).unwrap();
        let err = ReplayJournal::open(&path, WINDOW).unwrap_err();
        assert!(
            err.to_string().contains("another process holds it"),
            "{err}"
        );
    }

    #[test]
    fn unsafe_files_are_refused_in_words() {
        let dir = dir();
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ReplayJournal::open(&link, WINDOW).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let open = dir.path().join("open");
        std::fs::write(&open, b"").unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let err = ReplayJournal::open(&open, WINDOW).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");

        let other = dir.path().join("other");
        std::fs::write(&other, b"not a replay cache\n").unwrap();
        std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let err = ReplayJournal::open(&other, WINDOW).unwrap_err();
        assert!(
            err.to_string().contains("not a kerbside replay cache"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&other).unwrap(),
            b"not a replay cache\n",
            "left alone"
        );
    }

    #[test]
    fn the_default_path_names_the_principal_and_the_user() {
        let path = ReplayJournal::default_path(Some("HTTP/web.example@EXAMPLE"), None);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!("kerbside_rcache_HTTP_web.example@EXAMPLE_{}", os::euid())
        );
        let a = ReplayJournal::default_path(None, Some(Path::new("/a.keytab")));
        let b = ReplayJournal::default_path(None, Some(Path::new("/b.keytab")));
        assert_ne!(a, b);
    }
}
