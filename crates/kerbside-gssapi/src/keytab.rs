//! The acceptor's keytab, read once into memory and read again when the file changes.
//!
//! With a `FILE:` keytab, MIT krb5 opens, locks, reads and closes the file on every
//! `gss_accept_sec_context`. Here the file's entries are copied once into a `MEMORY:`
//! keytab (MIT's, through the krb5 keytab API: `krb5_kt_start_seq_get` /
//! `krb5_kt_next_entry` on the file, `krb5_kt_add_entry` into the memory one) and the
//! acceptor credentials are acquired from it (credential store `keytab` = the
//! `MEMORY:` name), so an accept touches no file.
//!
//! Key rotation without a restart keeps working: the file's identity (device, inode,
//! size, modification time) is looked at no more than once a second, and at once when
//! a first token fails (a ticket for a key added a moment ago); when it changed, a new
//! memory keytab is built and new credentials acquired from it, and they replace the
//! old ones in one swap (exchanges already started keep theirs). A file that cannot be
//! read or holds no usable key leaves the credentials in use as they are, and is
//! tried again when it changes again.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::accept_ctx::AcceptorHandle;
use crate::ffi;
use crate::krb5::ffi::{
    krb5_context, krb5_free_context, krb5_free_keytab_entry_contents, krb5_init_context,
    krb5_keytab, krb5_keytab_entry, krb5_kt_close, krb5_kt_cursor, krb5_kt_end_seq_get,
    krb5_kt_next_entry, krb5_kt_resolve, krb5_kt_start_seq_get,
};

#[link(name = "krb5")]
extern "C" {
    fn krb5_kt_add_entry(
        context: krb5_context,
        keytab: krb5_keytab,
        entry: *mut krb5_keytab_entry,
    ) -> i32;
}

/// `KRB5_KT_END` from `<krb5/krb5.h>`: no more entries.
const KT_END: i32 = -1_765_328_202;

/// How often the file is looked at while accepts succeed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A file's identity: a change to any of these means it must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        })
    }
}

/// A `MEMORY:` keytab holding a copy of a file's entries; freed by MIT when this
/// handle and every credential acquired from it are closed.
struct MemoryKeytab {
    context: krb5_context,
    keytab: krb5_keytab,
    name: String,
}

// SAFETY: the context and handle are used only in `load` (before the value exists)
// and in `drop` (with the value owned); MIT's MEMORY keytabs lock themselves.
unsafe impl Send for MemoryKeytab {}
// SAFETY: no method uses the raw pointers through `&self`.
unsafe impl Sync for MemoryKeytab {}

impl Drop for MemoryKeytab {
    fn drop(&mut self) {
        // SAFETY: both came from krb5 in `load` and are released once, handle first.
        unsafe {
            krb5_kt_close(self.context, self.keytab);
            krb5_free_context(self.context);
        }
    }
}

impl MemoryKeytab {
    /// Copies every entry of the keytab file at `path` into a new `MEMORY:` keytab;
    /// returns it with the number of entries.
    fn load(path: &Path) -> Result<(Self, usize), String> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "MEMORY:kerbside-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let c_file = CString::new(format!("FILE:{}", path.display()))
            .map_err(|_| "the keytab's path contains a NUL byte".to_owned())?;
        let c_name = CString::new(name.as_str()).map_err(|_| "bad memory keytab name")?;
        let mut context: krb5_context = ptr::null_mut();
        // SAFETY: krb5_init_context writes a context we own.
        let code = unsafe { krb5_init_context(&mut context) };
        if code != 0 || context.is_null() {
            return Err(format!("krb5_init_context failed ({code})"));
        }
        let mut keytab: krb5_keytab = ptr::null_mut();
        // SAFETY: the name is alive for the call; the handle is ours.
        let code = unsafe { krb5_kt_resolve(context, c_name.as_ptr(), &mut keytab) };
        if code != 0 {
            // SAFETY: the context is ours and freed once.
            unsafe { krb5_free_context(context) };
            return Err(format!("cannot make a memory keytab (krb5 error {code})"));
        }
        // From here on, dropping `memory` releases the handle and the context.
        let memory = Self {
            context,
            keytab,
            name,
        };
        let entries = memory.copy_from(&c_file)?;
        if entries == 0 {
            return Err("the keytab holds no keys".to_owned());
        }
        Ok((memory, entries))
    }

    fn copy_from(&self, file_name: &CString) -> Result<usize, String> {
        let mut file: krb5_keytab = ptr::null_mut();
        // SAFETY: every pointer is alive for the calls; the file handle, the cursor
        // and each entry's contents are released below, on every path.
        unsafe {
            let code = krb5_kt_resolve(self.context, file_name.as_ptr(), &mut file);
            if code != 0 {
                return Err(format!("cannot open the keytab (krb5 error {code})"));
            }
            let mut cursor: krb5_kt_cursor = ptr::null_mut();
            let code = krb5_kt_start_seq_get(self.context, file, &mut cursor);
            if code != 0 {
                krb5_kt_close(self.context, file);
                return Err(format!("cannot read the keytab (krb5 error {code})"));
            }
            let mut count = 0;
            let result = loop {
                let mut entry: krb5_keytab_entry = std::mem::zeroed();
                let code = krb5_kt_next_entry(self.context, file, &mut entry, &mut cursor);
                if code == KT_END {
                    break Ok(count);
                }
                if code != 0 {
                    break Err(format!("cannot read the keytab (krb5 error {code})"));
                }
                let added = krb5_kt_add_entry(self.context, self.keytab, &mut entry);
                krb5_free_keytab_entry_contents(self.context, &mut entry);
                if added != 0 {
                    break Err(format!("cannot copy a key (krb5 error {added})"));
                }
                count += 1;
            };
            krb5_kt_end_seq_get(self.context, file, &mut cursor);
            krb5_kt_close(self.context, file);
            result
        }
    }
}

/// Credentials acquired from one reading of the keytab. Fields drop in order: the
/// credentials (and their handle on the memory keytab) before the keytab itself.
struct Loaded {
    cred: AcceptorHandle,
    _keytab: MemoryKeytab,
    stamp: Stamp,
}

/// Acceptor credentials from a keytab file read into memory, read again when the
/// file changes.
pub(crate) struct ReloadingCred {
    path: PathBuf,
    acceptor_name: Option<String>,
    /// Other credential-store entries (`rcache`).
    extra: Vec<(String, String)>,
    current: RwLock<Arc<Loaded>>,
    /// Milliseconds since `epoch` at which the file is next looked at.
    next_check: AtomicU64,
    epoch: Instant,
    /// Held while reading the file again; the stamp of a file that could not be used,
    /// so it is not read again until it changes.
    reloading: Mutex<Option<Stamp>>,
}

impl fmt::Debug for ReloadingCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCred")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCred {
    /// Reads `path` into memory and acquires acceptor credentials from it.
    pub(crate) fn new(
        path: &Path,
        acceptor_name: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let loaded = load(path, acceptor_name, &extra)?;
        Ok(Self {
            path: path.to_path_buf(),
            acceptor_name: acceptor_name.map(str::to_owned),
            extra,
            current: RwLock::new(Arc::new(loaded)),
            next_check: AtomicU64::new(CHECK_EVERY.as_millis() as u64),
            epoch: Instant::now(),
            reloading: Mutex::new(None),
        })
    }

    /// The credentials to start an exchange with; looks at the file first if the
    /// last look was a second ago or more.
    pub(crate) fn get(&self) -> AcceptorHandle {
        self.current().cred.clone()
    }

    /// The name of the memory keytab in use (`MEMORY:…`), after the same look at the
    /// file as [`get`](Self::get).
    pub(crate) fn keytab_name(&self) -> String {
        self.current()._keytab.name.clone()
    }

    fn current(&self) -> Arc<Loaded> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let due = self.next_check.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_check
                .compare_exchange(
                    due,
                    now + CHECK_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.reload_if_changed();
        }
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the file again if it changed since it was last read; true if new
    /// credentials are in use.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let mut failed = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stamp = match Stamp::of(&self.path) {
            Ok(stamp) => stamp,
            Err(e) => {
                tracing::warn!(
                    keytab = %self.path.display(),
                    "cannot look at the keytab ({e}); the keys read before stay in use"
                );
                return false;
            }
        };
        let in_use = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .stamp;
        if stamp == in_use || *failed == Some(stamp) {
            return false;
        }
        match load(&self.path, self.acceptor_name.as_deref(), &self.extra) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
                *failed = None;
                tracing::info!(
                    keytab = %self.path.display(),
                    "keytab changed: its keys were read again"
                );
                // A file changed again while it was read has another stamp than the
                // one taken before reading, so it is read once more at the next look.
                true
            }
            Err(e) => {
                *failed = Some(stamp);
                tracing::warn!(
                    keytab = %self.path.display(),
                    "the keytab changed but cannot be used ({e}); the keys read before \
                     stay in use until it changes again"
                );
                false
            }
        }
    }
}

/// Reads the file into a new memory keytab and acquires credentials from it.
fn load(
    path: &Path,
    acceptor_name: Option<&str>,
    extra: &[(String, String)],
) -> Result<Loaded, String> {
    let stamp = Stamp::of(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (keytab, _entries) = MemoryKeytab::load(path)?;
    let mut store: Vec<(&str, &str)> = vec![("keytab", keytab.name.as_str())];
    store.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let cred = ffi::acquire_acceptor(acceptor_name, ffi::Usage::Accept, &store).map_err(|s| {
        format!(
            "no acceptor credentials from it (GSSAPI major {:#x}, minor {})",
            s.major, s.minor
        )
    })?;
    Ok(Loaded {
        cred,
        _keytab: keytab,
        stamp,
    })
}

/// An acceptor's credentials: fixed, or from a keytab read into memory.
#[derive(Clone)]
pub(crate) enum AcceptorCred {
    /// Acquired once; MIT reads the keytab on every accept (a `FILE:` keytab named
    /// by the environment, or constrained delegation).
    Fixed(AcceptorHandle),
    /// From a [`ReloadingCred`].
    Memory(Arc<ReloadingCred>),
}

impl fmt::Debug for AcceptorCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(_) => f.write_str("Fixed"),
            Self::Memory(m) => m.fmt(f),
        }
    }
}

impl AcceptorCred {
    /// The credentials to start an exchange with.
    pub(crate) fn get(&self) -> AcceptorHandle {
        match self {
            Self::Fixed(cred) => cred.clone(),
            Self::Memory(m) => m.get(),
        }
    }

    /// The memory keytab's name, if the keys were read into one (and the acceptor
    /// accepts for any of its principals: no acceptor name).
    pub(crate) fn memory_keytab_for_any_name(&self) -> Option<String> {
        match self {
            Self::Memory(m) if m.acceptor_name.is_none() => Some(m.keytab_name()),
            Self::Fixed(_) | Self::Memory(_) => None,
        }
    }

    /// After a failed first token: reads the keytab again if it changed (a ticket for
    /// a key added a moment ago); true if the token is worth trying again.
    pub(crate) fn reload_if_changed(&self) -> bool {
        match self {
            Self::Fixed(_) => false,
            Self::Memory(m) => m.reload_if_changed(),
        }
    }
}
