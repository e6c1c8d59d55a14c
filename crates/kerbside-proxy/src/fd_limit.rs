//! The open-file limit. Each tunnel holds two descriptors (client and upstream), and
//! each client connection waiting for its route one more, so a proxy under a shell's
//! usual soft limit of 1024 would refuse new clients at about 500 tunnels. Like Go's
//! runtime and most servers, the proxy raises its soft limit to the hard one at start.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The most descriptors asked for when the hard limit is unlimited (Linux caps
/// `RLIMIT_NOFILE` at `fs.nr_open`, 1048576 by default).
const UNLIMITED_CAP: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard limit; gives `(before, after)` when it
/// was raised, `None` when it already was there or could not be raised.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    let now = getrlimit(Resource::Nofile);
    let target = now.maximum.unwrap_or(UNLIMITED_CAP);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= target {
        return None;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    )
    .ok()?;
    Some((current, target))
}
