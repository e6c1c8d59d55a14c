//! [`Squid`]: a private Squid forward proxy that requires Negotiate, a real proxy to test
//! `Proxy-Authorization` and `CONNECT` against.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, NotReady};
use crate::process::{self, chmod, chown, log_tails};
use crate::TestRealm;

/// Debian's Negotiate/Kerberos authentication helper for Squid.
pub const NEGOTIATE_HELPER: &str = "/usr/lib/squid/negotiate_kerberos_auth";

/// How long Squid may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Squid gets to exit after SIGTERM (it takes about 2 s even with
/// `shutdown_lifetime 0 seconds`).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Squid's fake NTLM helper: it runs the NTLM exchange and takes any user, without
/// checking the password.
pub const NTLM_FAKE_HELPER: &str = "/usr/lib/squid/ntlm_fake_auth";

/// Samba's NTLM helper, checking passwords with the domain controller through winbindd.
pub const NTLM_WINBIND_HELPER: &str = "/usr/bin/ntlm_auth";

/// The group whose members may use winbindd's privileged pipe (Debian's winbind package).
pub const WINBINDD_PRIV_GROUP: &str = "winbindd_priv";

/// Squid's Digest helper for a file of `user:password` lines.
pub const DIGEST_FILE_HELPER: &str = "/usr/lib/squid/digest_file_auth";

/// Squid's Basic helper for an htpasswd-style file.
pub const BASIC_NCSA_HELPER: &str = "/usr/lib/squid/basic_ncsa_auth";

/// Which scheme the [`Squid`] proxy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyScheme {
    /// Negotiate, checked by [`NEGOTIATE_HELPER`] with the realm's HTTP keytab.
    #[default]
    Negotiate,
    /// NTLM through [`NTLM_FAKE_HELPER`]: the connection-bound exchange is real, the
    /// password is not checked; the user name Squid logs is the one the client sent.
    NtlmFake,
    /// Basic through [`BASIC_NCSA_HELPER`], for the accounts of
    /// [`PASSWORD_USERS`](crate::PASSWORD_USERS) (`alice` / `alice-password`).
    Basic,
    /// Digest (MD5, as Squid offers it) through [`DIGEST_FILE_HELPER`], for the
    /// accounts of [`PASSWORD_USERS`](crate::PASSWORD_USERS) (`alice` /
    /// `alice-password`), realm `kerbside test proxy`. Clients must allow MD5.
    Digest,
    /// [`Digest`](Self::Digest) with `auth_param digest nonce_max_count N`: a nonce
    /// used for more than N requests is stale (`407` with `stale=true`, RFC 7616 §3.3).
    DigestNonceMaxCount(u32),
    /// NTLM checked by an Active Directory domain controller: Samba's
    /// [`ntlm_auth --helper-protocol=squid-2.5-ntlmssp`](NTLM_WINBIND_HELPER) through the
    /// winbindd at `/run/samba/winbindd` (a running [`TestDomain`](crate::TestDomain) that
    /// has [granted](crate::TestDomain::grant_privileged_pipe) its privileged pipe to
    /// [`WINBINDD_PRIV_GROUP`]). As root, Squid runs with that group. The user Squid logs is
    /// `DOMAIN\user` as winbindd names it (`ADEXAMPLE\alice`).
    NtlmWinbind,
}

/// How to configure the [`Squid`] harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquidOptions {
    /// Require authentication for every request, `CONNECT` included. With `false` the
    /// proxy is open (to loopback clients), for tests of plain proxying.
    pub require_auth: bool,
    /// The scheme asked for when [`require_auth`](Self::require_auth) is on.
    pub scheme: ProxyScheme,
}

impl Default for SquidOptions {
    /// Negotiate required.
    fn default() -> SquidOptions {
        SquidOptions {
            require_auth: true,
            scheme: ProxyScheme::Negotiate,
        }
    }
}

/// A private Squid forward proxy (`squid -N`) in a temporary directory, on a free loopback port.
///
/// With [`SquidOptions::require_auth`] every request (plain `GET http://…` and `CONNECT`) must
/// carry `Proxy-Authorization: Negotiate`; without it Squid answers `407` with
/// `Proxy-Authenticate: Negotiate`. Tickets are checked by Debian's helper
/// [`negotiate_kerberos_auth`](NEGOTIATE_HELPER) with a copy of the realm's HTTP keytab and
/// `-s GSS_C_NO_NAME`, so clients may target `HTTP@localhost` (for [`url`](Self::url)) or
/// `HTTP@127.0.0.1`. The authenticated user is `alice@EXAMPLE.TEST` (realm kept). Two helper
/// processes run, and connections to the proxy stay open after authenticating
/// (`auth_param negotiate keep_alive on`). `CONNECT` is allowed to every port, and Squid
/// caches nothing.
///
/// What clients see from Squid 5.7 (Debian 12):
///
/// * A refused request gets `407 Proxy Authentication Required` with a bare
///   `Proxy-Authenticate: Negotiate`; for `CONNECT` that 407 ends the tunnel attempt.
/// * An accepted request gets **no** final SPNEGO token back: the helper returns one, but
///   Squid 5.7 drops the `Proxy-Authentication-Info` header it would go in, and the `200
///   Connection established` of a `CONNECT` carries no headers at all. A client must not
///   insist on mutual authentication with this proxy.
/// * The helper logs `ERROR: krb5_pac_get_buffer: No such file or directory` for every ticket
///   (MIT tickets carry no PAC); it is harmless.
///
/// Squid has its own configuration, pid file, logs, core dump directory and replay cache; it
/// never touches the system Squid. When the test runs as root, Squid drops privileges to
/// `proxy`, which owns the directory. Dropping the harness stops Squid (SIGTERM, then SIGKILL)
/// and its helpers, and deletes the directory.
///
/// ```no_run
/// use kerbside_testkit::{Squid, SquidOptions, TestRealm};
///
/// let realm = TestRealm::start().unwrap();
/// let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
/// let mut curl = realm.command("curl");
/// curl.args(["--proxy", &squid.url(), "--proxy-negotiate", "-U", ":", "http://127.0.0.1:8080/"]);
/// ```
#[derive(Debug)]
pub struct Squid {
    /// Stopped in `Drop` before `dir` is removed.
    child: Child,
    /// Squid's `-n` service name, the prefix of its shared-memory segments.
    service: String,
    port: u16,
    access_log: PathBuf,
    cache_log: PathBuf,
    stderr_log: PathBuf,
    dir: TempDir,
}

impl Squid {
    /// Writes the configuration, starts Squid and waits until it accepts connections.
    ///
    /// Fails with a message that includes Squid's stderr and cache log.
    pub fn start(realm: &TestRealm, opts: SquidOptions) -> io::Result<Squid> {
        crate::check_tools(&[("squid", "squid"), (NEGOTIATE_HELPER, "squid")])?;
        let dir = tempfile::Builder::new()
            .prefix("kerbside-squid-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        // As root Squid runs as `proxy` (Debian's default), which must write here.
        let user = (process::euid() == 0)
            .then(|| {
                let (uid, gid) = process::account("proxy")?;
                Some(("proxy".to_owned(), (uid, gid)))
            })
            .flatten();
        let owner = user.as_ref().map(|(_, ids)| *ids);
        chmod(&root, 0o755)?;
        chown(&root, owner)?;
        let rcache_dir = root.join("rcache");
        fs::create_dir(&rcache_dir)?;
        chmod(&rcache_dir, 0o700)?;
        chown(&rcache_dir, owner)?;
        let keytab = root.join("http.keytab");
        daemon::copy_keytab(realm, &keytab, owner)?;
        if opts.scheme == ProxyScheme::Basic {
            let passwd = root.join("passwd");
            for (i, user) in crate::PASSWORD_USERS.iter().enumerate() {
                let mut cmd = std::process::Command::new("htpasswd");
                cmd.arg("-b");
                if i == 0 {
                    cmd.arg("-c");
                }
                let status = cmd
                    .arg(&passwd)
                    .args([user.name, user.password])
                    .stderr(std::process::Stdio::null())
                    .status()?;
                if !status.success() {
                    return Err(io::Error::other(
                        "htpasswd failed for the Squid Basic users",
                    ));
                }
            }
            chmod(&passwd, 0o644)?;
        }
        if matches!(
            opts.scheme,
            ProxyScheme::Digest | ProxyScheme::DigestNonceMaxCount(_)
        ) {
            let passwd = root.join("digest-passwd");
            let lines: String = crate::PASSWORD_USERS
                .iter()
                .map(|u| format!("{}:{}\n", u.name, u.password))
                .collect();
            fs::write(&passwd, lines)?;
            chmod(&passwd, 0o644)?;
        }

        let access_log = root.join("access.log");
        let cache_log = root.join("cache.log");
        let stderr_log = root.join("stderr.log");
        let conf_path = root.join("squid.conf");

        let logs = || {
            log_tails(&[
                ("squid stderr", &stderr_log, 4000),
                ("squid cache.log", &cache_log, 8000),
            ])
        };
        // A service name of its own: Squid names its shared-memory segments after it
        // (`/dev/shm/squid-cf__metadata.shm` by default), and two Squids starting at
        // the same moment under one name collide ("shm_open ... File exists").
        let service = format!(
            "kerbside{}x{}",
            std::process::id(),
            SERVICES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (child, ports) = daemon::start_with_retries(
            1,
            |ports| {
                remove_segments(&service);
                let conf = Config {
                    root: &root,
                    port: ports[0],
                    user: user.as_ref().map(|(name, _)| name.as_str()),
                    opts,
                };
                fs::write(&conf_path, conf.render())?;
                for log in [&access_log, &cache_log] {
                    let _ = fs::remove_file(log);
                }

                // Helpers inherit the daemon's environment.
                let mut cmd = process::keytab_daemon(
                    &crate::sbin("squid"),
                    realm,
                    &keytab,
                    &rcache_dir,
                    &stderr_log,
                )?;
                // -N: no daemon, no SMP kids; -d1: important cache.log lines on stderr too.
                cmd.args(["-n", &service, "-N", "-d1", "-f"])
                    .arg(&conf_path);
                cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
            },
            |child, ports| wait_ready(child, ports[0], &cache_log, &logs),
            |child| stop(child, &keytab),
        )?;
        Ok(Squid {
            child,
            service,
            port: ports[0],
            access_log,
            cache_log,
            stderr_log,
            dir,
        })
    }

    /// `http://localhost:PORT`, the proxy URL; its Kerberos service is `HTTP@localhost`.
    pub fn url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of Squid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The contents of the access log, one line per request:
    ///
    /// ```text
    /// 127.0.0.1 port=41234 "GET http://127.0.0.1:8080/" 407 user=- result=TCP_DENIED
    /// 127.0.0.1 port=41234 "GET http://127.0.0.1:8080/" 200 user=alice@EXAMPLE.TEST result=TCP_MISS
    /// 127.0.0.1 port=41236 "CONNECT localhost:8443" 200 user=alice@EXAMPLE.TEST result=TCP_TUNNEL
    /// ```
    ///
    /// `port` is the client's source port, the same for every request on one connection; the
    /// status is the one Squid sent the client; `user` is the authenticated user, `-` if none;
    /// `result` is Squid's result code. Squid writes a line when a transaction ends (for
    /// `CONNECT`, when the tunnel closes) and may buffer it briefly, so read the log after the
    /// client has finished; [`wait_access_log`](Self::wait_access_log) polls.
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// Polls the access log (up to 5 s) until `pred` holds for it, and returns it either way.
    pub fn wait_access_log(&self, pred: impl Fn(&str) -> bool) -> String {
        daemon::poll_log(|| self.access_log(), pred)
    }

    /// Squid's cache log (with authentication at debug level) and stderr, which includes the
    /// helpers' stderr, for test failure messages.
    pub fn cache_log(&self) -> String {
        process::read_logs(&self.cache_log, &[("squid stderr", &self.stderr_log)])
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        stop(&mut self.child, &self.dir.path().join("http.keytab"));
        remove_segments(&self.service);
    }
}

/// Numbers the Squids of this process, for their service names.
static SERVICES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes the shared-memory segments of Squid service `service` (Squid leaves them
/// when it is stopped before its shutdown is over).
fn remove_segments(service: &str) {
    let prefix = format!("{service}-");
    if let Ok(entries) = fs::read_dir("/dev/shm") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Stops Squid and then any of its helpers that outlived it.
///
/// Squid closes its helpers' stdin when it exits and does not wait for them; a helper that has
/// not exited by then is killed. Helpers are recognised by their command line, which names
/// this Squid's keytab (Squid runs them as `(negotiate_kerberos_auth) -s … -k <dir>/http.keytab`).
fn stop(child: &mut Child, keytab: &Path) {
    // Helpers are Squid's children; note them now, they are reparented once Squid is gone.
    let helpers = process::children_of(child.id());
    process::terminate(child, STOP_GRACE);
    let keytab = keytab.as_os_str().as_encoded_bytes();
    for pid in helpers {
        let ours = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|cmdline| cmdline.windows(keytab.len()).any(|w| w == keytab))
            .unwrap_or(false);
        if ours {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Waits until `child` says in `cache_log` that it accepts connections on `port`, or says why
/// not.
///
/// Squid logs a line for every connection, even one closed before a request, so readiness is
/// read from its log rather than probed with a connection that would litter the access log.
fn wait_ready(
    child: &mut Child,
    port: u16,
    cache_log: &Path,
    logs: &dyn Fn() -> String,
) -> Result<(), NotReady> {
    let listening = format!("local=127.0.0.1:{port} ");
    daemon::wait_until(
        child,
        "squid",
        &format!("report listening on 127.0.0.1:{port}"),
        START_TIMEOUT,
        logs,
        &mut || {
            fs::read_to_string(cache_log)
                .map(|log| {
                    log.lines().any(|line| {
                        line.contains("Accepting HTTP Socket connections")
                            && line.contains(&listening)
                    })
                })
                .unwrap_or(false)
        },
    )
}

/// The inputs of `squid.conf`.
struct Config<'a> {
    root: &'a Path,
    port: u16,
    /// `cache_effective_user`, when running as root.
    user: Option<&'a str>,
    opts: SquidOptions,
}

impl Config<'_> {
    fn render(&self) -> String {
        let root = self.root.display();
        let mut c = String::new();
        let _ = writeln!(
            c,
            "# Written by kerbside-testkit; a private proxy, not the system Squid.
http_port 127.0.0.1:{port}
visible_hostname localhost
pid_filename {root}/squid.pid
coredump_dir {root}
cache_log {root}/cache.log
debug_options ALL,1 29,3
logformat kerbside %>a port=%>p \"%rm %ru\" %>Hs user=%un result=%Ss
access_log stdio:{root}/access.log logformat=kerbside
buffered_logs off
cache_store_log none
netdb_filename none
pinger_enable off
icp_port 0
htcp_port 0
cache deny all
shutdown_lifetime 0 seconds
client_persistent_connections on
server_persistent_connections on",
            port = self.port
        );
        if let Some(user) = self.user {
            let _ = writeln!(c, "cache_effective_user {user}");
            if self.opts.scheme == ProxyScheme::NtlmWinbind {
                let _ = writeln!(c, "cache_effective_group {WINBINDD_PRIV_GROUP}");
            }
        }
        let _ = writeln!(c, "acl SSL_ports port 1-65535");
        if self.opts.require_auth {
            let _ = writeln!(
                c,
                "{}
acl auth proxy_auth REQUIRED
http_access allow CONNECT SSL_ports auth
http_access allow auth
http_access deny all",
                match self.opts.scheme {
                    ProxyScheme::Negotiate => format!(
                        "auth_param negotiate program {NEGOTIATE_HELPER} -s GSS_C_NO_NAME -k \
                         {root}/http.keytab -c {root}/rcache
auth_param negotiate children 2
auth_param negotiate keep_alive on"
                    ),
                    ProxyScheme::NtlmFake => format!(
                        "auth_param ntlm program {NTLM_FAKE_HELPER}
auth_param ntlm children 2
auth_param ntlm keep_alive on"
                    ),
                    ProxyScheme::NtlmWinbind => format!(
                        "auth_param ntlm program {NTLM_WINBIND_HELPER} \
                         --helper-protocol=squid-2.5-ntlmssp
auth_param ntlm children 2
auth_param ntlm keep_alive on"
                    ),
                    ProxyScheme::Digest => format!(
                        "auth_param digest program {DIGEST_FILE_HELPER} {root}/digest-passwd
auth_param digest children 2
auth_param digest realm kerbside test proxy"
                    ),
                    ProxyScheme::DigestNonceMaxCount(max) => format!(
                        "auth_param digest program {DIGEST_FILE_HELPER} {root}/digest-passwd
auth_param digest children 2
auth_param digest realm kerbside test proxy
auth_param digest nonce_max_count {max}"
                    ),
                    ProxyScheme::Basic => format!(
                        "auth_param basic program {BASIC_NCSA_HELPER} {root}/passwd
auth_param basic children 2
auth_param basic realm kerbside test proxy"
                    ),
                }
            );
        } else {
            let _ = writeln!(
                c,
                "http_access allow CONNECT SSL_ports
http_access allow all"
            );
        }
        c
    }
}
