//! PAC (proxy auto-config) files for `kerbside proxy`: `FindProxyForURL(url,
//! host)` evaluated by QuickJS-NG (through `rquickjs`) on a dedicated thread,
//! with a wall-clock limit per call and a memory limit, and all the standard PAC
//! functions (`isPlainHostName`, `dnsDomainIs`, `localHostOrDomainIs`,
//! `isResolvable`, `isInNet`, `dnsResolve`, `myIpAddress`, `dnsDomainLevels`,
//! `shExpMatch`, `weekdayRange`, `dateRange`, `timeRange`, `convert_addr`, and
//! Microsoft's `dnsResolveEx`, `isResolvableEx`, `myIpAddressEx`).
//!
//! `myIpAddress()` is the address of the route to the outside (a connected UDP
//! socket, no packet sent), never a look-up of the machine's name;
//! `dnsResolve`/`isResolvable` of a name that does not resolve give `null` /
//! `false`, never an exception.
//!
//! This crate only runs the script. Fetching the file, re-fetching it, caching
//! answers per host and reading the answer (`PROXY a:1; DIRECT`) are the
//! proxy's (`kerbside_proxy::pac`).
//!
//! ```
//! # async fn run() -> Result<(), kerbside_pac::PacError> {
//! let pac = kerbside_pac::PacEngine::start(kerbside_pac::PacLimits::default())?;
//! pac.load(r#"function FindProxyForURL(url, host) {
//!     return dnsDomainIs(host, ".corp.example") ? "DIRECT" : "PROXY proxy.corp.example:8080; DIRECT";
//! }"#.to_owned()).await?;
//! assert_eq!(pac.find_proxy("http://intranet.corp.example/", "intranet.corp.example").await?, "DIRECT");
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```
#![warn(missing_docs)]

mod engine;
pub mod native;

use std::sync::mpsc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;

use engine::Job;

/// The limits one evaluation runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacLimits {
    /// Wall-clock time for one call of `FindProxyForURL` (and for the script's
    /// top level when it is loaded), `dnsResolve` look-ups included.
    pub time: Duration,
    /// Bytes the JavaScript heap may hold.
    pub memory: usize,
    /// Bytes of native stack the interpreter may use (deep recursion).
    pub stack: usize,
}

impl Default for PacLimits {
    /// 3 seconds (room for a slow `dnsResolve`), 32 MiB of heap, 1 MiB of stack.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(3),
            memory: 32 << 20,
            stack: 1 << 20,
        }
    }
}

/// Why a PAC script gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacError {
    /// No script is loaded (none yet, or the last one was broken).
    #[error("no PAC script is loaded")]
    NotLoaded,
    /// The script did not compile, or its top level threw.
    #[error("the PAC script does not run: {0}")]
    Script(String),
    /// The script defines no `FindProxyForURL`.
    #[error("the PAC script defines no function FindProxyForURL(url, host)")]
    NoFunction,
    /// `FindProxyForURL` threw.
    #[error("FindProxyForURL threw: {0}")]
    Exception(String),
    /// `FindProxyForURL` returned something other than a string.
    #[error("FindProxyForURL returned {0}, not a string such as \"PROXY host:port; DIRECT\"")]
    NotAString(String),
    /// The wall-clock limit was reached.
    #[error(
        "the PAC script ran longer than the limit of {} ms (a loop that never ends?)",
        .0.as_millis()
    )]
    TimeLimit(Duration),
    /// The memory (or stack) limit was reached. (QuickJS throws `null` when it
    /// has no memory left to make an error, so a script's own `throw null` reads
    /// as this too.)
    #[error(
        "the PAC script used more than its {} MiB of memory, recursed too deep, or threw null",
        .0 >> 20
    )]
    MemoryLimit(usize),
    /// The engine itself failed.
    #[error("the JavaScript engine failed: {0}")]
    Engine(String),
    /// The PAC thread is gone.
    #[error("the PAC thread has stopped")]
    Stopped,
}

/// A PAC evaluator: a handle to its thread (cheap to clone; the thread ends when
/// the last handle is dropped).
#[derive(Debug, Clone)]
pub struct PacEngine {
    jobs: mpsc::Sender<Job>,
    limits: PacLimits,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Load { .. } => "Load",
            Job::Unload => "Unload",
            Job::Find { .. } => "Find",
        })
    }
}

impl PacEngine {
    /// Starts the PAC thread, with no script loaded.
    pub fn start(limits: PacLimits) -> Result<Self, PacError> {
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("kerbside-pac".into())
            // The interpreter's own stack limit must fit well inside.
            .stack_size(limits.stack.saturating_mul(4).max(2 << 20))
            .spawn(move || engine::serve(rx, limits))
            .map_err(|e| PacError::Engine(format!("cannot start the PAC thread: {e}")))?;
        Ok(Self { jobs, limits })
    }

    /// The limits.
    pub fn limits(&self) -> PacLimits {
        self.limits
    }

    /// Replaces the script with `script`: evaluated in a fresh runtime, which
    /// must define `FindProxyForURL`. On an error no script is loaded.
    pub async fn load(&self, script: String) -> Result<(), PacError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job::Load { script, reply })
            .map_err(|_| PacError::Stopped)?;
        rx.await.map_err(|_| PacError::Stopped)?
    }

    /// Forgets the script.
    pub fn unload(&self) {
        let _ = self.jobs.send(Job::Unload);
    }

    /// `FindProxyForURL(url, host)`: the string it returned.
    pub async fn find_proxy(&self, url: &str, host: &str) -> Result<String, PacError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job::Find {
                url: url.to_owned(),
                host: host.to_owned(),
                reply,
            })
            .map_err(|_| PacError::Stopped)?;
        rx.await.map_err(|_| PacError::Stopped)?
    }
}

/// The `pac_script` fuzz target's check: `data` (a script, then after a NUL byte
/// the host) loaded and `FindProxyForURL` called under small limits never
/// panics or hangs: every outcome is an answer or a [`PacError`].
pub fn fuzz_check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (script, host) = text.split_once('\0').unwrap_or((&text, "h.example"));
    let limits = PacLimits {
        time: Duration::from_millis(100),
        memory: 8 << 20,
        stack: 256 << 10,
    };
    let Ok(engine) = PacEngine::start(limits) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        if engine.load(script.to_owned()).await.is_ok() {
            let url = format!("http://{host}/");
            let _ = engine.find_proxy(&url, host).await;
        }
    });
}

#[cfg(test)]
mod tests;
