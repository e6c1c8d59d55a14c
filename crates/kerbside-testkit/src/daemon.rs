//! What the password-scheme daemons ([`SchemeApache`](crate::SchemeApache),
//! [`Lighttpd`](crate::Lighttpd), [`PyNtlmServer`](crate::PyNtlmServer)) share: the
//! unprivileged account their workers run as, waiting for them to listen, distinct free ports.

use std::collections::BTreeSet;
use std::io;
use std::net::TcpStream;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use crate::process;

/// How many port choices a harness tries when its server cannot bind.
pub(crate) const START_ATTEMPTS: usize = 5;

/// The unprivileged account worker processes run as when we are root.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub(crate) user: String,
    pub(crate) group: String,
    pub(crate) ids: (u32, u32),
}

impl Worker {
    /// `www-data` (or `nobody`) when this process runs as root, else `None`: the daemon keeps
    /// our own user.
    pub(crate) fn for_root() -> Option<Worker> {
        if process::euid() != 0 {
            return None;
        }
        ["www-data", "nobody"].iter().find_map(|name| {
            let (uid, gid) = process::account(name)?;
            Some(Worker {
                user: (*name).to_owned(),
                group: process::group_name(gid)?,
                ids: (uid, gid),
            })
        })
    }
}

/// Why a daemon did not come up.
pub(crate) struct NotReady {
    /// The daemon said its address was in use: worth another port.
    pub(crate) port_taken: bool,
    pub(crate) msg: String,
}

/// Waits until `child` (called `name` in messages) accepts connections on every port in
/// `ports`, or reports why not, with `logs()` appended.
pub(crate) fn wait_listening(
    child: &mut Child,
    name: &str,
    ports: &[u16],
    timeout: Duration,
    logs: &dyn Fn() -> String,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let logs = logs();
            return Err(NotReady {
                port_taken: logs.contains("Address already in use")
                    || logs.contains("address already in use"),
                msg: format!("{name} exited during startup ({status})\n{logs}"),
            });
        }
        if ports
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NotReady {
                port_taken: false,
                msg: format!(
                    "{name} did not accept connections on 127.0.0.1 ports {ports:?} within \
                     {timeout:?}\n{}",
                    logs()
                ),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// `n` distinct free loopback ports (see [`crate::free_port`] for the race this leaves).
pub(crate) fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let mut ports = BTreeSet::new();
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let port = crate::free_port()?;
        if ports.insert(port) {
            order.push(port);
        }
    }
    Ok(order)
}

/// `path` with a leading `/`.
pub(crate) fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// `/private/upload` and similar: a CGI that answers with the SHA-256 (hex) and the length
/// of the request body it received, as `<sha256> <bytes>\n` (the same script as
/// [`Apache`](crate::Apache)'s).
pub(crate) const UPLOAD_CGI: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
tmp=$(mktemp)
cat > \"$tmp\"
printf '%s %s\\n' \"$(sha256sum < \"$tmp\" | cut -d' ' -f1)\" \"$(wc -c < \"$tmp\")\"
rm -f \"$tmp\"
";

/// `/private/whoami`: a CGI that answers with `REMOTE_USER` and `AUTH_TYPE`, as
/// `user=<REMOTE_USER>\nauth=<AUTH_TYPE>\n`.
pub(crate) const WHOAMI_CGI: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\nuser=%s\\nauth=%s\\n' \"$REMOTE_USER\" \"$AUTH_TYPE\"
";
