//! [`PyNtlmServer`]: a connection-bound NTLM web server on pyspnego's pure-Python acceptor
//! (`crates/kerbside/tests/peers/ntlm_server.py`), independent of gss-ntlmssp.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, slash};
use crate::passwords;
use crate::process::{self, chmod, log_tails};
use crate::TestCert;

/// How long the server may take to start listening (importing pyspnego takes a moment).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The server script, in the `kerbside` crate's Python peers.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kerbside/tests/peers/ntlm_server.py")
}

/// The Python of the peers venv that `scripts/install-deps.sh` makes: `$KERBSIDE_PEERS_VENV`
/// or `target/peers-venv` at the workspace root, then `bin/python`. `None` if it is not there.
pub fn peers_python() -> Option<PathBuf> {
    let venv = std::env::var_os("KERBSIDE_PEERS_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// [`peers_python`], or an error that says what to run.
pub(crate) fn peers_python_or_error() -> io::Result<PathBuf> {
    peers_python().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no Python peers venv (target/peers-venv or $KERBSIDE_PEERS_VENV): run \
             scripts/install-deps.sh (it makes the venv with python3-venv and pip)",
        )
    })
}

/// The Python of the peers venv (see [`peers_python`]); panics with what to run when the venv
/// was not made, so a test that needs a Python peer fails rather than passing unchecked.
pub fn require_peers_python() -> PathBuf {
    peers_python_or_error().unwrap_or_else(|e| panic!("this test needs the Python peers: {e}"))
}

/// How to configure a [`PyNtlmServer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PyNtlmOptions<'a> {
    /// Serve HTTPS with this certificate; plain HTTP without one.
    pub cert: Option<&'a TestCert>,
    /// Also offer `WWW-Authenticate: Negotiate` and accept NTLMSSP inside SPNEGO (pyspnego's
    /// own SPNEGO; no Kerberos). Off by default: `NTLM` only.
    pub negotiate: bool,
    /// Require `tls-server-end-point` channel bindings of the certificate in the client's
    /// NTLMv2 response (all-zero bindings still pass, as on Windows). HTTPS only.
    pub channel_bindings: bool,
    /// Send the CHALLENGE `401` and then close the connection, without a `Connection: close`
    /// header: a server that drops the connection mid-handshake. `curl --ntlm` (7.88) then
    /// starts over with a new NEGOTIATE on a fresh connection, again and again, never sending
    /// the AUTHENTICATE, and gives up with status `401` and exit 55 ("Connection died, tried
    /// 5 times before giving up") or, after 51 rounds, exit 47 ("Maximum (50) redirects
    /// followed"), depending on timing.
    pub close_after_challenge: bool,
}

/// `ntlm_server.py` run by the peers venv's Python, on a free loopback port it picks itself
/// (so no bind race), with the accounts of [`PASSWORD_USERS`](crate::PASSWORD_USERS) in its
/// `NTLM_USER_FILE`: `EXAMPLE\alice` / `alice-password`, `EXAMPLE\bob` / `bob-password`.
///
/// NTLM is connection-bound: `401 WWW-Authenticate: NTLM` → the client's NEGOTIATE →
/// `401 NTLM <CHALLENGE>` → AUTHENTICATE on the same connection → `200` with
/// `X-Remote-User: EXAMPLE\alice`; later requests on that connection are let in without an
/// `Authorization` header. A wrong password gets `401`. Every response names its connection
/// in `X-Connection-Id`. `/public/…` needs no login; a POST answers `<sha256 hex> <length>\n`
/// of its body; other requests get [`PRIVATE_BODY`](crate::PRIVATE_BODY).
///
/// It accepts `curl --ntlm` (7.88) and Python's requests-ntlm, and with
/// [`PyNtlmOptions::negotiate`] also `curl --negotiate` with gss-ntlmssp as the initiator
/// (NTLM inside SPNEGO). [`log`](Self::log) has one line per request for counting
/// connections and legs. Dropping the harness stops the server.
///
/// ```no_run
/// use kerbside_testkit::{PyNtlmOptions, PyNtlmServer};
///
/// let server = PyNtlmServer::start(PyNtlmOptions::default()).unwrap();
/// let url = server.url("/private/"); // http://127.0.0.1:PORT/private/
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct PyNtlmServer {
    /// Stopped in `Drop` before `dir` is removed.
    child: Child,
    port: u16,
    https: bool,
    log: PathBuf,
    stderr_log: PathBuf,
    dir: TempDir,
}

impl PyNtlmServer {
    /// Starts the server and waits until it listens.
    ///
    /// Fails when the peers venv is missing (run `scripts/install-deps.sh`), or with the
    /// script's stderr when it does not come up.
    pub fn start(opts: PyNtlmOptions<'_>) -> io::Result<PyNtlmServer> {
        let python = peers_python_or_error()?;
        let dir = tempfile::Builder::new()
            .prefix("kerbside-pyntlm-")
            .tempdir()?;
        let root = dir.path();
        let users = root.join("ntlm-users");
        fs::write(&users, passwords::ntlm_user_file())?;
        chmod(&users, 0o600)?;
        let log = root.join("requests.log");
        let stdout_log = root.join("stdout.log");
        let stderr_log = root.join("stderr.log");

        let mut cmd = Command::new(&python);
        cmd.arg(script())
            .arg("--users")
            .arg(&users)
            .arg("--log")
            .arg(&log);
        if let Some(cert) = opts.cert {
            let (cert_path, key_path) = (root.join("cert.pem"), root.join("key.pem"));
            fs::write(&cert_path, cert.cert_pem())?;
            fs::write(&key_path, cert.key_pem())?;
            chmod(&key_path, 0o600)?;
            cmd.arg("--cert").arg(cert_path).arg("--key").arg(key_path);
        }
        if opts.negotiate {
            cmd.arg("--negotiate");
        }
        if opts.channel_bindings {
            cmd.arg("--channel-bindings");
        }
        if opts.close_after_challenge {
            cmd.arg("--close-after-challenge");
        }
        cmd.env("PYTHONUNBUFFERED", "1")
            .env_remove("NTLM_USER_FILE")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_log)?)
            .stderr(fs::File::create(&stderr_log)?);
        let mut child = cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))?;

        let logs = || {
            log_tails(&[
                ("ntlm_server.py stdout", &stdout_log, 2000),
                ("ntlm_server.py stderr", &stderr_log, 6000),
            ])
        };
        let mut port = None;
        let started = daemon::wait_until(
            &mut child,
            &format!("`{}`", process::command_line(&cmd)),
            "listen",
            START_TIMEOUT,
            &logs,
            &mut || {
                let stdout = fs::read_to_string(&stdout_log).unwrap_or_default();
                port = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("listening port=")?.split(' ').next())
                    .and_then(|p| p.parse::<u16>().ok());
                port.is_some()
            },
        );
        let port = match started.map(|()| port) {
            Ok(Some(port)) => port,
            Ok(None) => unreachable!("the server is ready once its port is read"),
            Err(not_ready) => {
                process::terminate(&mut child, STOP_GRACE);
                return Err(io::Error::other(not_ready.msg));
            }
        };
        Ok(PyNtlmServer {
            child,
            port,
            https: opts.cert.is_some(),
            log,
            stderr_log,
            dir,
        })
    }

    /// `https://localhost:PORT` + `path` with a certificate (its names are `localhost` and
    /// `127.0.0.1`), else `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        if self.https {
            format!("https://localhost:{}{}", self.port, slash(path))
        } else {
            format!("http://127.0.0.1:{}{}", self.port, slash(path))
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The request log, one line per answered request:
    ///
    /// ```text
    /// conn=1 scheme=http method=GET path=/private/ auth=NTLM leg=negotiate status=401 user=-
    /// conn=1 scheme=http method=GET path=/private/ auth=NTLM leg=authenticate status=200 user=EXAMPLE\alice
    /// conn=1 scheme=http method=GET path=/private/ auth=- leg=bound status=200 user=EXAMPLE\alice
    /// ```
    ///
    /// `conn` numbers connections from 1; `auth` is the scheme of the `Authorization` header
    /// (`-` if none); `leg` is `negotiate`, `authenticate`, `spnego` (a Negotiate token),
    /// `failed` (followed by `error=…`), `bound` (let in by the connection's earlier login),
    /// `public` or `none`. [`log_entries`](Self::log_entries) parses it.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The [`log`](Self::log), parsed.
    pub fn log_entries(&self) -> Vec<PyNtlmLogEntry> {
        self.log()
            .lines()
            .filter_map(PyNtlmLogEntry::parse)
            .collect()
    }

    /// The script's stderr (Python tracebacks), for failure messages.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for PyNtlmServer {
    fn drop(&mut self) {
        process::terminate(&mut self.child, STOP_GRACE);
    }
}

/// One request in the [`PyNtlmServer`] log; see [`PyNtlmServer::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyNtlmLogEntry {
    /// The connection's number, from 1.
    pub connection: u32,
    /// `http` or `https`.
    pub scheme: String,
    /// The request method.
    pub method: String,
    /// The request target.
    pub path: String,
    /// The scheme of the `Authorization` header (`NTLM`, `Negotiate`), if any.
    pub auth: Option<String>,
    /// What the request was: `negotiate`, `authenticate`, `spnego`, `failed`, `bound`,
    /// `public`, `none`.
    pub leg: String,
    /// The response status.
    pub status: u16,
    /// The user the connection is logged in as after this request (`EXAMPLE\alice`).
    pub user: Option<String>,
    /// Why a `failed` leg failed.
    pub error: Option<String>,
}

impl PyNtlmLogEntry {
    fn parse(line: &str) -> Option<PyNtlmLogEntry> {
        let (fields, error) = match line.split_once(" error=") {
            Some((fields, error)) => (fields, Some(error.to_owned())),
            None => (line, None),
        };
        let get = {
            let pairs: Vec<(&str, &str)> = fields
                .split(' ')
                .filter_map(|f| f.split_once('='))
                .collect();
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let dash_none = |v: String| (v != "-").then_some(v);
        Some(PyNtlmLogEntry {
            connection: get("conn")?.parse().ok()?,
            scheme: get("scheme")?,
            method: get("method")?,
            path: get("path")?,
            auth: dash_none(get("auth")?),
            leg: get("leg")?,
            status: get("status")?.parse().ok()?,
            user: dash_none(get("user")?),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse() {
        let entry = PyNtlmLogEntry::parse(
            "conn=2 scheme=https method=GET path=/private/ auth=NTLM leg=failed status=401 \
             user=- error=InvalidTokenError: Invalid NTLM response",
        )
        .unwrap();
        assert_eq!(entry.connection, 2);
        assert_eq!(entry.auth.as_deref(), Some("NTLM"));
        assert_eq!(entry.user, None);
        assert_eq!(
            entry.error.as_deref(),
            Some("InvalidTokenError: Invalid NTLM response")
        );
        let entry = PyNtlmLogEntry::parse(
            "conn=1 scheme=http method=POST path=/x auth=- leg=bound status=200 user=EXAMPLE\\alice",
        )
        .unwrap();
        assert_eq!(entry.user.as_deref(), Some("EXAMPLE\\alice"));
        assert_eq!((entry.status, entry.leg.as_str()), (200, "bound"));
    }
}
