//! Third-party clients of the password schemes, run as child processes: curl
//! ([`run_curl`]) and the Python clients of `crates/kerbside/tests/peers/password_clients.py`
//! ([`run_password_client`]: requests-ntlm, httpx's DigestAuth).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus};

use crate::process;

/// What one `curl` run did.
#[derive(Debug)]
pub struct CurlRun {
    /// curl's exit status (0 also for a `401`: curl fails only on transport errors).
    pub exit: ExitStatus,
    /// The last response's status (`%{http_code}` of the last URL), 0 if there was none.
    pub status: u16,
    /// Every response's status line and headers, in order, as curl dumped them (`-D`): the
    /// `401`s curl answered come first.
    pub responses: Vec<String>,
    /// The body of the last response.
    pub body: String,
    /// curl's stderr (with `-v`, the exchange).
    pub stderr: String,
}

impl CurlRun {
    /// The values of header `name` in the last response.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.responses
            .last()
            .map(|r| header_values(r, name))
            .unwrap_or_default()
    }

    /// The status codes of every response, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.responses
            .iter()
            .filter_map(|r| r.split(' ').nth(1)?.parse().ok())
            .collect()
    }

    /// The values of header `name` in the first `401` response.
    pub fn first_challenges(&self, name: &str) -> Vec<String> {
        self.responses
            .iter()
            .find(|r| r.split(' ').nth(1) == Some("401"))
            .map(|r| header_values(r, name))
            .unwrap_or_default()
    }
}

fn header_values(response: &str, name: &str) -> Vec<String> {
    response
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// Runs `curl --silent --show-error --noproxy '*' ARGS`, trusting only `ca` (the private
/// test CA; the environment's CA bundle variables are removed), and captures the responses.
///
/// `args` carry the scheme, the credentials and the URL, e.g.
/// `["--ntlm", "-u", "EXAMPLE\\alice:alice-password", url]`.
pub fn run_curl(args: &[&str], ca: Option<&Path>) -> io::Result<CurlRun> {
    run_curl_env(args, ca, &[])
}

/// [`run_curl`] with `env` added to curl's environment, e.g. gss-ntlmssp's
/// `NTLM_USER_FILE` and `NTLMUSER` for `curl --negotiate -u :` with NTLM inside SPNEGO.
pub fn run_curl_env(
    args: &[&str],
    ca: Option<&Path>,
    env: &[(&str, &OsStr)],
) -> io::Result<CurlRun> {
    let dir = tempfile::tempdir()?;
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--noproxy", "*"])
        .arg("--dump-header")
        .arg(&headers)
        .arg("--output")
        .arg(&body)
        .args(["--write-out", "%{http_code}\n"])
        .args(args)
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .envs(env.iter().copied());
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = process::output_of(&mut cmd, None)?;
    let dumped = fs::read_to_string(&headers).unwrap_or_default();
    Ok(CurlRun {
        exit: out.status,
        status: String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|code| code.trim().parse().ok())
            .unwrap_or(0),
        responses: dumped
            .split("\r\n\r\n")
            .filter(|r| !r.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        body: fs::read_to_string(&body).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The `key=value` facts one run of `password_clients.py` printed.
#[derive(Debug)]
pub struct ClientFacts {
    facts: BTreeMap<String, String>,
    /// Everything the script printed, stdout then stderr, for failure messages.
    pub raw: String,
}

impl ClientFacts {
    /// The value of `key`.
    ///
    /// # Panics
    ///
    /// If the script printed no such fact (the message has all it printed).
    pub fn get(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map_or_else(|| panic!("no {key} in:\n{}", self.raw), String::as_str)
    }
}

/// Runs `password_clients.py ARGS` with the peers venv's Python (see [`peers_python`](crate::peers_python)),
/// e.g. `["requests-ntlm", url, "--user", "EXAMPLE\\alice", "--password", "…", "--ca", ca]`.
///
/// Fails if the venv is missing; a client that failed still returns its facts (`error=…`).
pub fn run_password_client(args: &[&str]) -> io::Result<ClientFacts> {
    let python = crate::pyntlm::peers_python_or_error()?;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kerbside/tests/peers/password_clients.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(args)
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE");
    let out = process::output_of(&mut cmd, None)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let facts = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(ClientFacts {
        facts,
        raw: format!(
            "{stdout}--- stderr ({}) ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}
