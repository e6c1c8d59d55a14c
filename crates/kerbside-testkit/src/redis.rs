//! [`Redis`]: a private `redis-server` on a free loopback port, with no persistence, that
//! can be stopped and started again on the same port (to test what the gates do while
//! their shared replay cache is away).

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon;
use crate::process::{self, log_tails};

/// How long Redis may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long Redis gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A private Redis. Dropping it stops Redis and deletes its directory.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it accepts
    /// connections.
    pub fn start() -> io::Result<Redis> {
        crate::check_tools(&[("redis-server", "redis-server")])?;
        let dir = tempfile::Builder::new()
            .prefix("kerbside-redis-")
            .tempdir()?;
        let log = dir.path().join("redis.log");
        let mut redis = Redis {
            child: None,
            port: 0,
            log,
            dir,
        };
        let logs = || log_tails(&[("redis log", &redis.log, 4000)]);
        let (child, ports) = daemon::start_with_retries(
            1,
            |ports| spawn(&redis.dir, &redis.log, ports[0]),
            |child, ports| daemon::wait_listening(child, "redis", ports, START_TIMEOUT, &logs),
            |child| process::terminate(child, STOP_GRACE),
        )?;
        redis.child = Some(child);
        redis.port = ports[0];
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running server's process id (for its CPU time); `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops Redis (SIGTERM, then SIGKILL); its port stays free for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }

    /// Starts Redis again on the same port, empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let mut child = spawn(&self.dir, &self.log, self.port)?;
        let logs = || log_tails(&[("redis log", &self.log, 4000)]);
        daemon::wait_listening(&mut child, "redis", &[self.port], START_TIMEOUT, &logs)
            .map_err(|e| io::Error::other(e.msg))?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(dir: &TempDir, log: &std::path::Path, port: u16) -> io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
}
