//! What the daemon harnesses ([`Apache`](crate::Apache), [`SchemeApache`](crate::SchemeApache),
//! [`Lighttpd`](crate::Lighttpd), [`Squid`](crate::Squid), [`PyNtlmServer`](crate::PyNtlmServer))
//! share: the unprivileged account their workers run as, starting on free ports with retries,
//! waiting for them to listen, module checks, document roots, certificates and keytabs.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{self, chmod, chown};
use crate::{TestCert, TestRealm, PRIVATE_BODY, PUBLIC_BODY};

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
    wait_until(
        child,
        name,
        &format!("accept connections on 127.0.0.1 ports {ports:?}"),
        timeout,
        logs,
        &mut || {
            ports
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        },
    )
}

/// Waits until `ready()` holds while `child` (called `name` in messages) runs, or reports
/// why not: it exited, or it did not `what` within `timeout`; `logs()` is appended.
pub(crate) fn wait_until(
    child: &mut Child,
    name: &str,
    what: &str,
    timeout: Duration,
    logs: &dyn Fn() -> String,
    ready: &mut dyn FnMut() -> bool,
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
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NotReady {
                port_taken: false,
                msg: format!("{name} did not {what} within {timeout:?}\n{}", logs()),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Starts a daemon on `port_count` fresh free ports, up to [`START_ATTEMPTS`] times while it
/// reports its port taken: `launch(ports)` writes its configuration and spawns it,
/// `wait(child, ports)` waits until it is ready, `stop(child)` ends a failed attempt.
pub(crate) fn start_with_retries(
    port_count: usize,
    mut launch: impl FnMut(&[u16]) -> io::Result<Child>,
    mut wait: impl FnMut(&mut Child, &[u16]) -> Result<(), NotReady>,
    mut stop: impl FnMut(&mut Child),
) -> io::Result<(Child, Vec<u16>)> {
    let mut attempt = 1;
    loop {
        let ports = free_ports(port_count)?;
        let mut child = launch(&ports)?;
        match wait(&mut child, &ports) {
            Ok(()) => return Ok((child, ports)),
            Err(not_ready) => {
                stop(&mut child);
                if !(not_ready.port_taken && attempt < START_ATTEMPTS) {
                    return Err(io::Error::other(not_ready.msg));
                }
                attempt += 1;
            }
        }
    }
}

/// Polls `read()` (up to 5 s) until `pred` holds for it, and returns it either way: for
/// access logs that daemons write a little late.
pub(crate) fn poll_log(read: impl Fn() -> String, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = read();
        if pred(&log) || Instant::now() > deadline {
            return log;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that every module file in `files` is in `dir`; a missing one is reported as a
/// `server` module with the Debian package `package(file)`.
pub(crate) fn check_modules<'f>(
    server: &str,
    dir: &str,
    files: impl IntoIterator<Item = &'f str>,
    package: impl Fn(&str) -> &'static str,
) -> io::Result<()> {
    for file in files {
        let path = Path::new(dir).join(file);
        if !path.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{server} module {} is missing (Debian package {})",
                    path.display(),
                    package(file)
                ),
            ));
        }
    }
    Ok(())
}

/// Fills `docroot` with `private/index.html` ([`PRIVATE_BODY`](crate::PRIVATE_BODY)),
/// `public/index.html` ([`PUBLIC_BODY`](crate::PUBLIC_BODY)) and the executable scripts
/// `cgis` (name, text) in `private/`, all readable by everyone.
pub(crate) fn write_docroot(docroot: &Path, cgis: &[(&str, &str)]) -> io::Result<()> {
    for (sub, body) in [("private", PRIVATE_BODY), ("public", PUBLIC_BODY)] {
        let d = docroot.join(sub);
        fs::create_dir_all(&d)?;
        chmod(docroot, 0o755)?;
        chmod(&d, 0o755)?;
        let file = d.join("index.html");
        fs::write(&file, body)?;
        chmod(&file, 0o644)?;
    }
    for (name, script) in cgis {
        let cgi = docroot.join("private").join(name);
        fs::write(&cgi, script)?;
        chmod(&cgi, 0o755)?;
    }
    Ok(())
}

/// Writes `cert` to `root/cert.pem` and its key to `root/key.pem` (mode 0600).
pub(crate) fn write_cert(root: &Path, cert: &TestCert) -> io::Result<()> {
    fs::write(root.join("cert.pem"), cert.cert_pem())?;
    let key_path = root.join("key.pem");
    fs::write(&key_path, cert.key_pem())?;
    chmod(&key_path, 0o600)
}

/// Copies the realm's HTTP keytab to `dest`, private to `owner` (see [`chown`]).
pub(crate) fn copy_keytab(
    realm: &TestRealm,
    dest: &Path,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    fs::copy(realm.keytab(), dest).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("copy keytab {}: {e}", realm.keytab().display()),
        )
    })?;
    chmod(dest, 0o600)?;
    chown(dest, owner)
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
