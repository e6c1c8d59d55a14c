//! Initiator credentials kept across exchanges while their source is unchanged.
//!
//! Acquiring a Kerberos credential reads the ticket cache (MIT opens, locks and
//! scans a `FILE:` cache several times per acquire), and a long-running client (the
//! forward proxy makes a token per tunnel) would pay that for every exchange. So a
//! credential is kept and handed to every new exchange while one `stat` says that
//! its source has not changed:
//!
//! * in a process that called [`keep_ticket_cache_copies`] (a long-running one: the
//!   proxy, the tunnel), a `FILE:` or `DIR:` ticket cache (the default, or a named
//!   one): the identity
//!   (device, inode, modification time, size) of the cache file, and for `DIR:` of
//!   the collection's `primary` file too. The kept credential reads a
//!   process-private `MEMORY:` copy of the file, so making a token does not open
//!   the file at all; service tickets got since are kept in that copy (never
//!   written to the user's file). A new ticket (`kinit`, `kinit -R`, another
//!   principal), `kswitch` and `kdestroy` change or remove the file and are noticed
//!   at the next exchange: a new copy is made (a new *generation*), or, with the
//!   file gone, the exchange fails as before ("no Kerberos ticket ... run kinit").
//!   A copy whose ticket-granting ticket has expired is not reused either.
//! * a client keytab: the keytab file's identity (MIT renews the ticket-granting
//!   ticket from the keytab by itself).
//! * other caches (`KCM:`, `KEYRING:`, `API:`) give no cheap change signal, and
//!   passwords are looked up per exchange: for them a credential is acquired per
//!   exchange, as before. So is a `FILE:`/`DIR:` cache in a process that did not ask
//!   for copies (a one-shot `kerbside fetch`): its service tickets go to the user's
//!   cache, where the next run (and `klist`) finds them, as with curl.
//!
//! A file rewritten within the file system's timestamp granularity of the copy
//! could keep its identity ("racy" as git calls it): while the copied file is less
//! than [`RACY`] old its bytes are compared as well.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libgssapi::credential::Cred;
use sha2::Digest as _;

use crate::error::GssError;
use crate::ffi;
use crate::initiator::{acquire, ClientCredentials};
use crate::krb5;

/// Whether `FILE:`/`DIR:` caches are copied into memory and kept.
static KEEP_COPIES: AtomicBool = AtomicBool::new(false);

/// Makes every later Negotiate exchange of this process from a `FILE:` or `DIR:`
/// ticket cache use a process-private in-memory copy of the cache, made again when
/// the cache file changes (one `stat` per exchange), instead of reading the file for
/// each token: for a long-running client that makes many tokens (a forward proxy
/// makes one per tunnel). A new `kinit`, `kinit -R`, `kswitch` or `kdestroy` is
/// still noticed at the next exchange; service tickets got since the copy stay in it
/// and are not written to the user's cache file. Without this call (the default)
/// only a client keytab's credential is kept.
pub fn keep_ticket_cache_copies() {
    KEEP_COPIES.store(true, Ordering::Relaxed);
}

/// How long after its last change a file's identity alone is not trusted.
const RACY_SECS: i64 = 2;

/// The credential for one exchange.
pub(crate) struct Acquired {
    /// `None`: GSSAPI's default credential, looked up at the first step.
    pub cred: Option<Cred>,
    /// The kept credential it comes from; `None` when made for this exchange only.
    pub generation: Option<Arc<Generation>>,
}

/// One kept credential. Its memory copy is destroyed when the last exchange
/// using it is dropped.
pub(crate) struct Generation {
    /// Distinct for every credential kept in this process (starts at 1).
    pub(crate) number: u64,
    /// `Some` until dropped (released before the memory copy is destroyed).
    cred: Option<Cred>,
    /// The file whose identity is [`Self::stamp`]'s first.
    file: PathBuf,
    stamp: Vec<Option<FileStamp>>,
    /// The ticket-granting ticket's end (Unix seconds).
    valid_until: i64,
    /// SHA-256 of the file at the copy, while its identity alone is not trusted
    /// (a hash: the file holds session keys).
    racy: Mutex<Option<Digest>>,
    /// `MEMORY:...`, the process-private copy of the ticket cache.
    memory: Option<String>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("number", &self.number)
            .field("file", &self.file)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        drop(self.cred.take());
        if let Some(name) = &self.memory {
            destroy_memory(name);
        }
    }
}

impl Generation {
    /// Whether this credential may serve an exchange now.
    fn reusable(&self, stamp: &[Option<FileStamp>], now: i64) -> bool {
        if self.stamp != stamp || now >= self.valid_until {
            return false;
        }
        let mut racy = self.racy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(digest) = racy.as_ref() {
            if file_digest(&self.file) != *digest {
                return false;
            }
            if stamp
                .first()
                .and_then(Option::as_ref)
                .is_some_and(|s| now - s.mtime >= RACY_SECS)
            {
                *racy = None;
            }
        }
        true
    }

    fn acquired(self: &Arc<Self>) -> Acquired {
        Acquired {
            cred: self.cred.clone(),
            generation: Some(self.clone()),
        }
    }
}

type Digest = [u8; 32];

/// SHA-256 of a file's bytes (of nothing, when it cannot be read: never equal to
/// a readable ticket cache's).
fn file_digest(file: &Path) -> Digest {
    let bytes = std::fs::read(file).unwrap_or_default();
    sha2::Sha256::digest(&bytes).into()
}

/// What `stat` says about a file: a new ticket changes at least one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    size: u64,
}

fn stamp(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f).ok().map(|m| FileStamp {
                dev: m.dev(),
                ino: m.ino(),
                mtime: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
                size: m.size(),
            })
        })
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Where a credential comes from, as far as keeping it goes.
enum Source {
    /// A `FILE:` or `DIR:` cache: its full name and the files that change with it
    /// (the cache file first).
    Files { name: String, files: Vec<PathBuf> },
    /// A client keytab file.
    Keytab(PathBuf),
    /// Acquired per exchange.
    PerExchange,
}

fn source(credentials: &ClientCredentials) -> Source {
    let copies = KEEP_COPIES.load(Ordering::Relaxed);
    match credentials {
        ClientCredentials::Default | ClientCredentials::Ccache(_) if !copies => Source::PerExchange,
        ClientCredentials::Default => match std::env::var("KRB5CCNAME") {
            Ok(name) if !name.is_empty() => cache_source(&name),
            _ => default_cache_source(),
        },
        ClientCredentials::Ccache(name) => cache_source(name),
        ClientCredentials::Keytab { path, .. } => Source::Keytab(path.clone()),
        ClientCredentials::Password { .. } | ClientCredentials::FreshPassword { .. } => {
            Source::PerExchange
        }
    }
}

/// A named cache: `TYPE:residual`, or a bare path (a `FILE:` cache).
fn cache_source(name: &str) -> Source {
    match name.split_once(':') {
        None => file_source(name),
        Some(("FILE", path)) => file_source(path),
        Some(("DIR", _)) => {
            let Ok(ctx) = krb5::Context::new() else {
                return Source::PerExchange;
            };
            let source = match ctx.resolve_ccache(name) {
                Ok(cc) => typed_source(&cc.cache_type(), &cc.name()),
                Err(_) => Source::PerExchange,
            };
            source
        }
        Some(_) => Source::PerExchange,
    }
}

/// The configured default cache (`default_ccache_name`, else MIT's built-in).
fn default_cache_source() -> Source {
    let Ok(ctx) = krb5::Context::new() else {
        return Source::PerExchange;
    };
    let source = match ctx.default_ccache() {
        Ok(cc) => typed_source(&cc.cache_type(), &cc.name()),
        Err(_) => Source::PerExchange,
    };
    source
}

/// What krb5 resolved: `FILE` + path, or `DIR` + `:path` of the subsidiary cache.
fn typed_source(kind: &str, residual: &str) -> Source {
    match kind {
        "FILE" => file_source(residual),
        "DIR" => {
            let file = PathBuf::from(residual.trim_start_matches(':'));
            let Some(primary) = file.parent().map(|d| d.join("primary")) else {
                return Source::PerExchange;
            };
            Source::Files {
                name: format!("DIR::{}", file.display()),
                files: vec![file, primary],
            }
        }
        _ => Source::PerExchange,
    }
}

fn file_source(path: &str) -> Source {
    if path.is_empty() {
        return Source::PerExchange;
    }
    Source::Files {
        name: format!("FILE:{path}"),
        files: vec![PathBuf::from(path)],
    }
}

/// The ticket cache files a credential's source resolves to, looked up again at
/// most once a second (resolving the default cache makes a krb5 context).
static FILES: Mutex<Option<HashMap<String, ResolvedFiles>>> = Mutex::new(None);

/// When a source was resolved, and its files.
type ResolvedFiles = (Instant, Vec<PathBuf>);

/// What tells connections authenticated from different tickets apart, for a
/// process that keeps copies (see [`keep_ticket_cache_copies`]): the identity of
/// the ticket cache file(s) now (device, inode, modification time, size; `-` for
/// a missing file), one `stat` each. Another `kinit` (of another principal, or
/// `kinit -R`), `kswitch` or `kdestroy` changes it. `None` where copies are not
/// kept (the credential is then looked up per exchange anyway) or the source is
/// not a ticket cache file.
pub(crate) fn cache_file_identity(credentials: &ClientCredentials) -> Option<String> {
    if !KEEP_COPIES.load(Ordering::Relaxed)
        || !matches!(
            credentials,
            ClientCredentials::Default | ClientCredentials::Ccache(_)
        )
    {
        return None;
    }
    let key = credentials.identity_key();
    let now = Instant::now();
    let cached = FILES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .get(&key)
        .filter(|(at, _)| now.duration_since(*at) < Duration::from_secs(1))
        .map(|(_, files)| files.clone());
    let files = match cached {
        Some(files) => files,
        None => {
            let files = match source(credentials) {
                Source::Files { files, .. } => files,
                Source::Keytab(_) | Source::PerExchange => Vec::new(),
            };
            FILES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(HashMap::new)
                .insert(key, (now, files.clone()));
            files
        }
    };
    if files.is_empty() {
        return None;
    }
    let parts: Vec<String> = stamp(&files)
        .iter()
        .map(|s| {
            s.as_ref().map_or_else(
                || "-".to_owned(),
                |s| {
                    format!(
                        "{}:{}:{}.{}:{}",
                        s.dev, s.ino, s.mtime, s.mtime_nsec, s.size
                    )
                },
            )
        })
        .collect();
    Some(parts.join("/"))
}

type Slot = Arc<Mutex<Option<Arc<Generation>>>>;

/// The kept credential per source (one lock per source, so a slow acquire for one
/// identity does not hold up another).
static KEPT: Mutex<Option<HashMap<String, Slot>>> = Mutex::new(None);
static NUMBERS: AtomicU64 = AtomicU64::new(1);

fn slot(key: String) -> Slot {
    KEPT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .clone()
}

/// The initiator credential for one exchange: the kept one when its source is
/// unchanged, else a new one (kept when its source allows).
pub(crate) fn initiator_credential(credentials: &ClientCredentials) -> Result<Acquired, GssError> {
    match source(credentials) {
        Source::PerExchange => per_exchange(credentials),
        Source::Files { name, files } => from_cache_file(credentials, &name, &files),
        Source::Keytab(file) => from_keytab(credentials, file),
    }
}

fn per_exchange(credentials: &ClientCredentials) -> Result<Acquired, GssError> {
    Ok(Acquired {
        cred: acquire(credentials)?,
        generation: None,
    })
}

fn from_cache_file(
    credentials: &ClientCredentials,
    name: &str,
    files: &[PathBuf],
) -> Result<Acquired, GssError> {
    let stamp = stamp(files);
    let now = unix_now();
    let slot = slot(format!("ccache {name}"));
    let mut kept = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(generation) = kept.as_ref().filter(|g| g.reusable(&stamp, now)) {
        return Ok(generation.acquired());
    }
    *kept = None;
    let Some(Some(file_stamp)) = stamp.first() else {
        // No cache file: today's path says what is missing.
        return per_exchange(credentials);
    };
    let (memory, valid_until, racy) = match memory_copy(name, &files[0], file_stamp, now) {
        Ok(copy) => copy,
        Err(why) => {
            tracing::debug!("not keeping a credential from {name}: {why}");
            return per_exchange(credentials);
        }
    };
    let cred = match ffi::acquire_krb5_initiator(None, &[("ccache", &memory)]) {
        Ok(cred) => cred,
        Err(_) => {
            destroy_memory(&memory);
            return per_exchange(credentials);
        }
    };
    let generation = Arc::new(Generation {
        number: NUMBERS.fetch_add(1, Ordering::Relaxed),
        cred: Some(cred),
        file: files[0].clone(),
        stamp,
        valid_until,
        racy: Mutex::new(racy),
        memory: Some(memory),
    });
    tracing::debug!(
        "Kerberos credential generation {} from {name}",
        generation.number
    );
    *kept = Some(generation.clone());
    Ok(generation.acquired())
}

fn destroy_memory(name: &str) {
    match krb5::Context::new().and_then(|ctx| ctx.resolve_ccache(name).map(|cc| cc.destroy())) {
        Ok(()) => {}
        Err(e) => tracing::debug!("cannot destroy the memory ticket cache {name}: {e}"),
    }
}

/// Copies the cache `name` into a new memory cache: its name, the end of its
/// ticket-granting ticket, and the file's bytes when the file is racy.
fn memory_copy(
    name: &str,
    file: &Path,
    file_stamp: &FileStamp,
    now: i64,
) -> Result<(String, i64, Option<Digest>), String> {
    let racy = (now - file_stamp.mtime < RACY_SECS).then(|| file_digest(file));
    let memory = format!(
        "MEMORY:kerbside-{}-{}",
        std::process::id(),
        NUMBERS.fetch_add(1, Ordering::Relaxed)
    );
    let ctx = krb5::Context::new().map_err(|e| e.to_string())?;
    let source = ctx.resolve_ccache(name).map_err(|e| e.to_string())?;
    source.copy_to_memory(&memory).map_err(|e| e.to_string())?;
    let copy = ctx.resolve_ccache(&memory).map_err(|e| e.to_string())?;
    let valid_until = copy
        .principal()
        .and_then(|principal| {
            let realm = principal.rsplit_once('@').map_or("", |(_, r)| r).to_owned();
            let tgt = format!("krbtgt/{realm}@{realm}");
            Ok(copy
                .tickets()?
                .iter()
                .filter(|t| t.server == tgt)
                .map(|t| t.times.endtime)
                .max()
                .unwrap_or(0))
        })
        .unwrap_or(0);
    if valid_until <= now {
        copy.destroy();
        return Err("no valid ticket-granting ticket in the cache".to_owned());
    }
    Ok((memory, valid_until, racy))
}

fn from_keytab(credentials: &ClientCredentials, file: PathBuf) -> Result<Acquired, GssError> {
    let stamp = stamp(std::slice::from_ref(&file));
    let now = unix_now();
    let slot = slot(format!("keytab {}", credentials.identity_key()));
    let mut kept = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(generation) = kept.as_ref().filter(|g| g.reusable(&stamp, now)) {
        return Ok(generation.acquired());
    }
    *kept = None;
    let cred = acquire(credentials)?;
    let Some(Some(file_stamp)) = stamp.first() else {
        return Ok(Acquired {
            cred,
            generation: None,
        });
    };
    let racy = (now - file_stamp.mtime < RACY_SECS).then(|| file_digest(&file));
    let generation = Arc::new(Generation {
        number: NUMBERS.fetch_add(1, Ordering::Relaxed),
        cred,
        file,
        stamp,
        // MIT gets a new ticket-granting ticket from the keytab when it expires.
        valid_until: i64::MAX,
        racy: Mutex::new(racy),
        memory: None,
    });
    *kept = Some(generation.clone());
    Ok(generation.acquired())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_map_to_the_files_that_change_with_them() {
        let Source::Files { name, files } = cache_source("/tmp/krb5cc_1") else {
            panic!("a bare path is a FILE cache");
        };
        assert_eq!(name, "FILE:/tmp/krb5cc_1");
        assert_eq!(files, [PathBuf::from("/tmp/krb5cc_1")]);
        let Source::Files { name, .. } = cache_source("FILE:/tmp/x") else {
            panic!("FILE:");
        };
        assert_eq!(name, "FILE:/tmp/x");
        let Source::Files { name, files } = typed_source("DIR", ":/run/user/1/krb5cc/tkt1") else {
            panic!("DIR:");
        };
        assert_eq!(name, "DIR::/run/user/1/krb5cc/tkt1");
        assert_eq!(
            files,
            [
                PathBuf::from("/run/user/1/krb5cc/tkt1"),
                PathBuf::from("/run/user/1/krb5cc/primary")
            ]
        );
        for other in [
            "KCM:1000",
            "KEYRING:persistent:1000",
            "API:x",
            "MEMORY:x",
            "FILE:",
        ] {
            assert!(
                matches!(cache_source(other), Source::PerExchange),
                "{other}"
            );
        }
    }

    #[test]
    fn a_changed_or_missing_file_or_an_expired_ticket_is_not_reusable() {
        let dir = std::env::temp_dir().join(format!("kerbside-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cc");
        std::fs::write(&file, b"one").unwrap();
        let files = vec![file.clone()];
        let now = unix_now();
        let generation = Generation {
            number: 1,
            cred: None,
            file: file.clone(),
            stamp: stamp(&files),
            valid_until: now + 100,
            racy: Mutex::new(Some(file_digest(&file))),
            memory: None,
        };
        assert!(generation.reusable(&stamp(&files), now));
        assert!(!generation.reusable(&stamp(&files), now + 100), "expired");
        // Same identity (the stamp taken before), other bytes: racy, caught.
        std::fs::write(&file, b"two").unwrap();
        assert!(!generation.reusable(&generation.stamp.clone(), now));
        assert!(!generation.reusable(&stamp(&files), now), "rewritten");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(stamp(&files), [None]);
        assert!(!generation.reusable(&stamp(&files), now), "gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
