//! Test support for kerbside: real peers in temporary directories.
//!
//! * [`TestRealm`] — a throwaway MIT Kerberos realm (`EXAMPLE.TEST`): a `krb5kdc` on a free
//!   loopback port, users `alice` and `bob`, services `HTTP/localhost` and `HTTP/127.0.0.1` in a
//!   keytab, and a ticket cache for alice.
//! * [`TestCa`] / [`TestCert`] — a private certificate authority and server certificates for
//!   `localhost` / `127.0.0.1` that curl, OpenSSL, Apache mod_ssl and rustls accept.
//! * [`Apache`] — a private Apache 2 with mod_ssl and mod_auth_gssapi guarding `/private/`,
//!   for interop tests against a real Negotiate server.
//! * [`Squid`] — a private Squid forward proxy that requires Negotiate (`407` /
//!   `Proxy-Authenticate`), checked by Debian's `negotiate_kerberos_auth` helper.
//! * [`TestDomain`] — a throwaway Samba Active Directory domain controller
//!   (`AD.EXAMPLE.TEST`, `ADEXAMPLE`) on loopback: users, nested groups, service accounts with
//!   SPNs and AES or RC4 keys, keytab export; one per machine at a time (fixed LDAP ports).
//! * Password-scheme peers, no realm needed, accounts [`PASSWORD_USERS`] (`alice` /
//!   `alice-password`, NTLM domain `EXAMPLE`): [`SchemeApache`] (NTLM through mod_auth_gssapi
//!   and gss-ntlmssp, or Digest MD5 through mod_auth_digest), [`Lighttpd`] (Digest SHA-256,
//!   or a plain static upstream) and [`PyNtlmServer`] (pyspnego's NTLM acceptor).
//!
//! Everything a fixture creates lives in its own temporary directory and on its own ports, so
//! several fixtures can run in parallel in one test process. The only process-wide state is the
//! environment: code that calls GSSAPI *in-process* must hold the guard from
//! [`TestRealm::enter`] for as long as it runs. Child processes get the realm's environment
//! explicitly from [`TestRealm::command`] or [`TestRealm::env`] and need no guard.
//!
//! ```no_run
//! use kerbside_testkit::TestRealm;
//!
//! let realm = TestRealm::start().expect("start the test realm");
//! let out = realm.command("klist").output().expect("run klist");
//! assert!(String::from_utf8_lossy(&out.stdout).contains("alice@EXAMPLE.TEST"));
//! ```
//!
//! The fixtures need the Debian packages `krb5-kdc`, `krb5-admin-server` (for `kadmin.local`),
//! `krb5-user`, for [`Apache`] also `apache2` and `libapache2-mod-auth-gssapi`, and for
//! [`Squid`] `squid`. Call
//! [`preflight`] to get one message listing what is missing.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)]

mod apache;
mod apache_schemes;
mod apache_server;
mod ca;
mod caddy;
mod clients;
mod daemon;
mod domain;
mod front_proxy;
mod haproxy;
mod lighttpd;
mod nginx;
mod passwords;
mod process;
mod pyntlm;
mod realm;
mod redis;
mod redis_ha;
mod request;
mod squid;

pub use apache::{AccessLogEntry, Apache, ApacheOptions, PRIVATE_BODY, PUBLIC_BODY};
pub use apache_schemes::{ApacheScheme, SchemeApache, SchemeApacheOptions};
pub use ca::{rustls_client_config, TestCa, TestCert};
pub use caddy::{Caddy, CaddyOptions, CADDY_FORWARD_AUTH_PATH};
pub use clients::{run_curl, run_curl_env, run_password_client, ClientFacts, CurlRun};
pub use domain::{
    ServiceKeys, TestDomain, AD_ADMIN_PASSWORD, AD_DNS_DOMAIN, AD_NETBIOS_DOMAIN, AD_REALM,
    AD_USERS, FIXED_PORTS, LOCK_PATH, WINBINDD_SOCKET,
};
pub use haproxy::{Backend, Haproxy, HaproxyOptions, SendProxy};
pub use lighttpd::{Lighttpd, LighttpdOptions, BENCH_BODY};
pub use nginx::{Nginx, NginxOptions, FORWARD_AUTH_PATH};
pub use passwords::{
    htdigest_file, htdigest_line, ntlm_user_file, DigestAlgorithm, PasswordUser, ALICE, BOB,
    DIGEST_REALM, NTLM_DOMAIN, PASSWORD_USERS,
};
pub use pyntlm::{peers_python, require_peers_python, PyNtlmLogEntry, PyNtlmOptions, PyNtlmServer};
pub use realm::{RealmEnvGuard, TestRealm, REALM};
pub use redis::Redis;
pub use redis_ha::{RedisCluster, RedisSentinelSet, SENTINEL_SERVICE};
pub use request::TestRequest;
pub use squid::{
    ProxyScheme, Squid, SquidOptions, BASIC_NCSA_HELPER, DIGEST_FILE_HELPER, NEGOTIATE_HELPER,
    NTLM_FAKE_HELPER, NTLM_WINBIND_HELPER, WINBINDD_PRIV_GROUP,
};

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// Directories searched for system tools after `PATH`: Kerberos and Apache daemons live in
/// `/usr/sbin`, which is often not on a non-root user's `PATH`.
const TOOL_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"];

/// A loopback port that is free for both TCP and UDP right now.
///
/// The port is released before this returns, so another process may take it: fixtures that use
/// it retry with a new port when their server fails to bind.
pub fn free_port() -> io::Result<u16> {
    let mut last_err = None;
    for _ in 0..50 {
        let tcp = TcpListener::bind(("127.0.0.1", 0))?;
        let port = tcp.local_addr()?.port();
        match UdpSocket::bind(("127.0.0.1", port)) {
            Ok(_udp) => return Ok(port),
            Err(e) => last_err = Some(e),
        }
    }
    Err(io::Error::other(format!(
        "no loopback port free for both TCP and UDP after 50 tries: {}",
        last_err.map_or_else(String::new, |e| e.to_string())
    )))
}

/// Where the system tool `name` is: `/usr/sbin/name` if it exists (or another of the usual
/// system directories), else `name` itself, to be looked up on `PATH` when run.
///
/// Daemons such as `krb5kdc`, `kdb5_util`, `kadmin.local` and `apache2` are in `/usr/sbin`.
pub fn sbin(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| PathBuf::from(name))
}

/// `name` on `PATH` or in one of [`TOOL_DIRS`]; a name with a `/` is taken as a path.
fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    TOOL_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(path_dirs)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Where `tool` is (on `PATH` or in the usual system directories); panics, naming the tool and
/// the Debian `package` that provides it, when it is not installed.
///
/// For tests that run a third-party tool themselves: a test whose tool is missing fails, in CI
/// and out of it, rather than passing without checking anything. `scripts/install-deps.sh`
/// installs every tool the tests need.
///
/// ```no_run
/// let htpasswd = kerbside_testkit::require_tool("htpasswd", "apache2-utils");
/// std::process::Command::new(htpasswd).arg("-bnB").status().unwrap();
/// ```
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    find_tool(tool).unwrap_or_else(|| {
        panic!(
            "this test needs `{tool}`, which is not installed: install the Debian package \
             {package} (scripts/install-deps.sh installs every tool the tests need)"
        )
    })
}

/// The checked-in seed corpus of the fuzz target `target`: every `fuzz/corpus/<target>/seed-*`
/// file, path and contents, in name order. Inputs a local fuzzing run added (not named
/// `seed-*`, ignored by git) are left out, so every machine replays the same seeds.
///
/// Panics when the directory cannot be read or holds no seed: a replay test must not pass
/// because its corpus went missing.
pub fn fuzz_seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the seed corpus {}: {e}", dir.display()));
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("seed-"))
        })
        .map(|path| {
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path, data)
        })
        .collect();
    assert!(!seeds.is_empty(), "no seed-* files in {}", dir.display());
    seeds.sort();
    seeds
}

/// Checks that the tools the fixtures run are installed.
///
/// Returns an error naming every missing tool and the Debian package that provides it. The
/// fixtures call this themselves, so a test fails with that message rather than a bare
/// "No such file or directory".
pub fn preflight() -> io::Result<()> {
    check_tools(realm::REQUIRED_TOOLS)
}

fn check_tools(tools: &[(&str, &str)]) -> io::Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(tool, _)| find_tool(tool).is_none())
        .map(|(tool, package)| format!("`{tool}` (Debian package {package})"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "kerbside-testkit needs tools that were not found on PATH or in /usr/sbin: {}",
                missing.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_for_tcp_and_udp() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        let _tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let _udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    #[should_panic(
        expected = "needs `no-such-tool-here`, which is not installed: install the Debian package \
                    no-such-package"
    )]
    fn require_tool_fails_naming_the_tool_and_the_package() {
        require_tool("no-such-tool-here", "no-such-package");
    }

    #[test]
    fn fuzz_seeds_are_the_seed_files_only() {
        let seeds = fuzz_seeds("cookie");
        assert!(seeds.iter().all(|(path, _)| path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")));
    }

    #[test]
    #[should_panic(expected = "cannot read the seed corpus")]
    fn a_missing_corpus_fails() {
        fuzz_seeds("no-such-target");
    }

    #[test]
    fn require_tool_finds_an_installed_tool() {
        assert!(require_tool("sh", "dash").is_absolute());
    }

    #[test]
    fn sbin_finds_system_tools_and_passes_unknown_names_through() {
        assert!(sbin("sh").is_absolute());
        assert_eq!(
            sbin("no-such-tool-here"),
            PathBuf::from("no-such-tool-here")
        );
        assert_eq!(sbin("/no/such/tool"), PathBuf::from("/no/such/tool"));
    }
}
