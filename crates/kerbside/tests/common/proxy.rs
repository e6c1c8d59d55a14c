//! Fixtures for the `kerbside proxy` tests: the proxy run as a child process on a
//! free loopback port, curl sent through it, its answers read, keyring files, and a
//! Squid requiring one scheme.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kerbside_testkit::{ProxyScheme, Squid, SquidOptions, TestRealm};

use super::{curl, kerbside, GateProcess};

/// A ticket cache that does not exist: a proxy run with it has no Kerberos ticket.
pub const NO_TICKET: &str = "FILE:/nonexistent/kerbside-no-ticket";

/// `kerbside proxy --listen 127.0.0.1:0 -v` with `args`, run from `cmd` (a
/// [`kerbside`] command with the test's environment set): the process and its port.
pub fn start_proxy(mut cmd: Command, args: &[&str]) -> (GateProcess, u16) {
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "-v"])
        .args(args);
    let p = GateProcess::from_command(cmd);
    let port = p.url.rsplit(':').next().unwrap().parse().unwrap();
    (p, port)
}

/// `kerbside proxy` on a free loopback port with `args`, the realm's environment and
/// no `no_proxy`/`NO_PROXY`.
pub fn proxy(realm: &TestRealm, args: &[&str]) -> (GateProcess, u16) {
    let mut cmd = kerbside(realm);
    cmd.env_remove("no_proxy").env_remove("NO_PROXY");
    start_proxy(cmd, args)
}

/// `kerbside proxy` on a free loopback port with `args` and no Kerberos ticket
/// ([`NO_TICKET`]); with `keyring` as its keyring file when given.
pub fn proxy_without_ticket(
    realm: &TestRealm,
    keyring: Option<&Path>,
    args: &[&str],
) -> (GateProcess, u16) {
    let mut cmd = kerbside(realm);
    if let Some(keyring) = keyring {
        cmd.env("KERBSIDE_KEYRING", keyring);
    }
    cmd.env("KRB5CCNAME", NO_TICKET);
    start_proxy(cmd, args)
}

/// Adds to `cmd` (curl, e.g. from [`curl`]) what sends it to `url` through the proxy
/// at `proxy_url` only (`--noproxy ''` lets `--proxy` apply over [`curl`]'s
/// `--noproxy '*'`), with its response headers (`-i`), 20 seconds at most, and
/// `extra` arguments.
pub fn through_proxy(mut cmd: Command, proxy_url: &str, extra: &[&str], url: &str) -> Command {
    cmd.args(["--noproxy", "", "--max-time", "20", "-i", "--proxy"])
        .arg(proxy_url)
        .args(extra)
        .arg(url);
    cmd
}

/// curl with the realm's environment (origins' CA: `ca`) through the proxy on
/// `127.0.0.1:port` only, not yet run.
pub fn curl_via_command(
    realm: &TestRealm,
    ca: &Path,
    port: u16,
    extra: &[&str],
    url: &str,
) -> Command {
    let proxy_url = format!("http://127.0.0.1:{port}");
    through_proxy(curl(realm, ca), &proxy_url, extra, url)
}

/// curl through the proxy on `127.0.0.1:port` only (no credentials of its own for the
/// proxy, no CA of its own), run.
pub fn curl_via(realm: &TestRealm, port: u16, extra: &[&str], url: &str) -> Output {
    curl_via_command(realm, &std::env::temp_dir(), port, extra, url)
        .output()
        .unwrap()
}

/// The status of curl's `-i` output: the last status line's (a CONNECT's `200
/// Connection established` comes first); 0 without one.
pub fn status_of(out: &Output) -> u16 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether Squid's access log has a `200` line containing `what` (Squid writes a
/// tunnel's line when it closes).
pub fn served_line(log: &str, what: &str) -> bool {
    log.lines().any(|l| l.contains(what) && l.contains(" 200 "))
}

/// Polls `pred` until it holds; panics naming `what` after 15 seconds.
pub fn wait_for(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if pred() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Writes `text` as `keyring.toml` in `dir` with mode `mode`: its path.
pub fn write_keyring(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let path = dir.join("keyring.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A keyring entry giving `user`'s `ntlmv2_hash` `hash` for `host`, then `more`
/// (further lines of the entry, or nothing).
pub fn ntlmv2_hash_entry(host: &str, user: &str, hash: &str, more: &str) -> String {
    format!("[[credential]]\nhost = \"{host}\"\nuser = '{user}'\nntlmv2_hash = \"{hash}\"\n{more}")
}

/// Squid for `realm` requiring `scheme` for every request, `CONNECT` included.
pub fn squid_requiring(realm: &TestRealm, scheme: ProxyScheme) -> Squid {
    Squid::start(
        realm,
        SquidOptions {
            require_auth: true,
            scheme,
        },
    )
    .unwrap()
}
