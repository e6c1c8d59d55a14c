//! What the [`Nginx`](crate::Nginx), [`Caddy`](crate::Caddy) and
//! [`Haproxy`](crate::Haproxy) harnesses share: a private front proxy in a temporary
//! directory on a free loopback port, its
//! configuration written and checked by the proxy itself before it starts, its output
//! in a log file, stopped (and the directory deleted) when dropped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, slash};
use crate::process::{self, log_tail};
use crate::TestCert;

/// How long a front proxy may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a front proxy gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start one front proxy.
pub(crate) struct Launch<'a> {
    /// Its name in messages (`nginx`, `caddy`, `haproxy`).
    pub(crate) name: &'static str,
    /// Where its configuration goes, in the temporary directory.
    pub(crate) config: PathBuf,
    /// Where its stdout and stderr go.
    pub(crate) output: PathBuf,
    /// The configuration for a port.
    pub(crate) render: &'a dyn Fn(u16) -> String,
    /// The command that checks the configuration (`nginx -t`, `caddy validate`,
    /// `haproxy -c`).
    pub(crate) check: &'a dyn Fn() -> Command,
    /// The command that runs the proxy in the foreground.
    pub(crate) run: &'a dyn Fn() -> Command,
    /// Its logs, for failure messages.
    pub(crate) logs: &'a dyn Fn() -> String,
}

/// A running front proxy.
#[derive(Debug)]
pub(crate) struct FrontProxy {
    child: Child,
    port: u16,
    tls: bool,
    dir: TempDir,
}

impl FrontProxy {
    /// A temporary directory for a proxy, `prefix`ed, with the certificate written
    /// into it (`cert.pem`, `key.pem`) when there is one.
    pub(crate) fn dir(prefix: &str, cert: Option<&TestCert>) -> io::Result<TempDir> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        if let Some(cert) = cert {
            daemon::write_cert(dir.path(), cert)?;
        }
        Ok(dir)
    }

    /// Writes the configuration, has the proxy check it, starts it and waits until it
    /// accepts connections (on another free port if the first was taken meanwhile).
    /// Fails with the proxy's logs.
    pub(crate) fn start(dir: TempDir, tls: bool, launch: Launch<'_>) -> io::Result<FrontProxy> {
        let (child, ports) = daemon::start_with_retries(
            1,
            |ports| {
                fs::write(&launch.config, (launch.render)(ports[0]))?;
                let label = launch
                    .config
                    .file_name()
                    .map_or_else(|| "configuration".into(), |name| name.to_string_lossy());
                process::run(&mut (launch.check)(), None, &|| {
                    log_tail(&label, &launch.config, 6000)
                })?;
                let output = fs::File::create(&launch.output)?;
                let mut cmd = (launch.run)();
                cmd.stdin(Stdio::null())
                    .stdout(output.try_clone()?)
                    .stderr(output);
                cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
            },
            |child, ports| {
                daemon::wait_listening(child, launch.name, ports, START_TIMEOUT, launch.logs)
            },
            |child| process::terminate(child, STOP_GRACE),
        )?;
        Ok(FrontProxy {
            child,
            port: ports[0],
            tls,
            dir,
        })
    }

    /// `http(s)://localhost:PORT` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}{}", self.port, slash(path))
    }

    /// The port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FrontProxy {
    fn drop(&mut self) {
        process::terminate(&mut self.child, STOP_GRACE);
    }
}
