//! [`TestDomain`]: a throwaway Samba Active Directory domain controller on loopback.
//!
//! Samba's LDAP (389, 636, 3268, 3269) and endpoint-mapper (135) ports cannot be moved, and
//! `ntlm_auth`/libwbclient only look for winbindd at the compiled-in `/run/samba/winbindd`, so
//! only one domain can run on a machine at a time: [`TestDomain::start`] takes the lock file
//! [`LOCK_PATH`] (`flock`; the fd is close-on-exec, so Samba does not inherit it and hold it
//! after we are gone) and fails with a clear message if another process keeps those ports or
//! that winbindd socket.
//!
//! A test binary shares one domain through [`TestDomain::shared`]: provisioning costs seconds.
//! Samba runs under a small watchdog shell that stops it (and winbindd, which Samba starts in
//! its own process group) as soon as the test process exits, even when a static is never
//! dropped or the process is killed.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{self, log_tail};
use crate::{free_port, sbin};

/// The Kerberos realm of every test domain.
pub const AD_REALM: &str = "AD.EXAMPLE.TEST";

/// The DNS name of every test domain.
pub const AD_DNS_DOMAIN: &str = "ad.example.test";

/// The NetBIOS name of every test domain (`ADEXAMPLE\alice`).
pub const AD_NETBIOS_DOMAIN: &str = "ADEXAMPLE";

/// The password of the domain's `Administrator`.
pub const AD_ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

/// The machine-wide lock file held while a domain runs.
pub const LOCK_PATH: &str = "/tmp/kerbside-samba.lock";

/// Samba's ports that cannot be moved to a free port.
pub const FIXED_PORTS: &[u16] = &[135, 389, 636, 3268, 3269];

/// Where `ntlm_auth` and libwbclient look for winbindd (compiled into Debian's Samba).
pub const WINBINDD_SOCKET: &str = "/run/samba/winbindd/pipe";

/// Tools a domain runs, with the Debian package that provides each.
pub(crate) const REQUIRED_TOOLS: &[(&str, &str)] = &[
    ("samba", "samba"),
    ("samba-tool", "samba-common-bin"),
    ("winbindd", "winbind"),
    ("ntlm_auth", "winbind"),
    ("wbinfo", "winbind"),
    ("kinit", "krb5-user"),
    ("/usr/bin/python3", "python3-samba"),
];

/// Data files provisioning needs that come in packages apt installs only as Recommends.
const REQUIRED_FILES: &[(&str, &str)] = &[(
    "/usr/share/samba/setup/provision.ldif",
    "samba-ad-provision",
)];

/// How long Samba may take to answer on its KDC and LDAP ports.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for another process's domain to go away (lock and ports).
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// How long Samba and its children get to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The users every domain starts with, and their passwords (the domain's password policy is
/// relaxed: no complexity, no expiry, so any non-empty password will do). `Erin` has a
/// capital in her account name: Kerberos (from the PAC) and winbind (in lower case) spell
/// her differently, and the gate must name her one way.
pub const AD_USERS: &[(&str, &str)] = &[
    ("alice", "alice-password"),
    ("bob", "bob-password"),
    ("Erin", "erin-password"),
];

/// Which keys a service account has, as `msDS-SupportedEncryptionTypes` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKeys {
    /// AD's default for an account without the attribute: tickets are encrypted with RC4
    /// (`arcfour-hmac`), and the exported keytab holds only the RC4 key.
    Rc4Default,
    /// `msDS-SupportedEncryptionTypes = 24`: AES256 and AES128 only.
    AesOnly,
}

/// A throwaway Samba AD domain controller for the domain `AD.EXAMPLE.TEST` (`ADEXAMPLE`).
///
/// [`start`](Self::start) provisions the domain in a temporary directory (with `-s` pointing
/// at an empty base configuration, so the machine's `/etc/samba/smb.conf` plays no part),
/// relaxes the password policy, starts `samba -F` on 127.0.0.1 only with its KDC on a free
/// port, writes a `krb5.conf` for MIT clients, and adds the users of [`AD_USERS`].
///
/// ```no_run
/// use kerbside_testkit::{ServiceKeys, TestDomain};
///
/// let domain = TestDomain::shared().expect("start the test domain");
/// domain
///     .add_service_account("svc-web", &["HTTP/web.ad.example.test"], ServiceKeys::AesOnly)
///     .unwrap();
/// let keytab = domain.dir().join("web.keytab");
/// domain.export_keytab("HTTP/web.ad.example.test", &keytab).unwrap();
/// let ccache = domain.user_ccache("alice");
/// domain.kinit("alice", "alice-password", &ccache).unwrap();
/// ```
#[derive(Debug)]
pub struct TestDomain {
    /// The watchdog shell; Samba's process group is its own. Closing `watchdog_stdin` (or
    /// this process exiting) makes it stop Samba and remove `dir`.
    watchdog: Child,
    watchdog_stdin: Option<ChildStdin>,
    kdc_port: u16,
    smb_conf: PathBuf,
    krb5_conf: PathBuf,
    samba_log: PathBuf,
    dir: TempDir,
    /// Released last: held for as long as Samba may hold its fixed ports.
    _lock: File,
}

impl TestDomain {
    /// The domain shared by every test of this process, started on first use.
    ///
    /// It is never dropped: its watchdog stops Samba and removes its directory when the test
    /// process exits. An error starting it is returned to every caller.
    pub fn shared() -> io::Result<&'static TestDomain> {
        static SHARED: OnceLock<Result<TestDomain, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| TestDomain::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| io::Error::other(e.clone()))
    }

    /// Provisions and starts a new domain; see the type's documentation.
    ///
    /// Waits (up to two minutes) for another process's domain to finish, then fails with a
    /// message naming what holds Samba's fixed ports or the winbindd socket.
    pub fn start() -> io::Result<TestDomain> {
        crate::check_tools(REQUIRED_TOOLS)?;
        check_files()?;
        let lock = take_lock()?;
        wait_for_previous_domain()?;
        let dir = tempfile::Builder::new()
            .prefix("kerbside-domain-")
            .tempdir()?;
        let path = dir.path().to_path_buf();
        let base_conf = path.join("base.conf");
        fs::write(&base_conf, "")?;
        let samba_dir = path.join("samba");
        let smb_conf = samba_dir.join("etc/smb.conf");
        let samba_log = path.join("samba.log");
        let krb5_conf = path.join("krb5.conf");
        fs::create_dir_all(path.join("run"))?;

        let mut provision = Command::new(sbin("samba-tool"));
        provision
            .args(["domain", "provision", "-s"])
            .arg(&base_conf)
            .arg(format!("--realm={AD_REALM}"))
            .arg(format!("--domain={AD_NETBIOS_DOMAIN}"))
            .args([
                "--server-role=dc",
                "--dns-backend=NONE",
                "--use-rfc2307",
                "--host-name=dc1",
            ])
            .arg(format!("--adminpass={AD_ADMIN_PASSWORD}"))
            .arg("--targetdir")
            .arg(&samba_dir);
        for option in [
            "interfaces = 127.0.0.1".to_owned(),
            "bind interfaces only = yes".to_owned(),
            // No SMB file server, NetBIOS, DNS updates or replication: a KDC, LDAP, RPC
            // (netlogon, for NTLM through winbindd) and winbindd.
            "server services = rpc, ldap, kdc, winbindd".to_owned(),
            format!("pid directory = {}", path.join("run").display()),
            format!("ncalrpc dir = {}", path.join("run/ncalrpc").display()),
        ] {
            provision.arg(format!("--option={option}"));
        }
        clean_env(&mut provision);
        process::run(&mut provision, None, &String::new)?;

        let kdc_port = free_port()?;
        let kpasswd_port = free_port()?;
        let conf = fs::read_to_string(&smb_conf)?;
        let conf = conf.replacen(
            "[global]\n",
            &format!("[global]\n\tkrb5 port = {kdc_port}\n\tkpasswd port = {kpasswd_port}\n"),
            1,
        );
        fs::write(&smb_conf, conf)?;
        write_krb5_conf(&krb5_conf, kdc_port)?;

        let (watchdog, watchdog_stdin) = start_samba(&path, &smb_conf, &samba_log)?;
        let mut domain = TestDomain {
            watchdog,
            watchdog_stdin: Some(watchdog_stdin),
            kdc_port,
            smb_conf,
            krb5_conf,
            samba_log,
            dir,
            _lock: lock,
        };
        // From here on, an early return drops `domain`, which stops Samba.
        domain.wait_until_serving()?;
        domain.samba_tool(&[
            "domain",
            "passwordsettings",
            "set",
            "--complexity=off",
            "--history-length=0",
            "--min-pwd-age=0",
            "--max-pwd-age=0",
            "--min-pwd-length=0",
        ])?;
        for (user, password) in AD_USERS {
            domain.add_user(user, password)?;
        }
        Ok(domain)
    }

    /// The realm, `AD.EXAMPLE.TEST`.
    pub fn realm(&self) -> &str {
        AD_REALM
    }

    /// `user@AD.EXAMPLE.TEST`.
    pub fn principal(&self, user: &str) -> String {
        format!("{user}@{AD_REALM}")
    }

    /// The domain's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client configuration for MIT tools and libraries (`KRB5_CONFIG`): default realm
    /// `AD.EXAMPLE.TEST`, the KDC at 127.0.0.1:[`kdc_port`](Self::kdc_port), no DNS;
    /// `localhost` and `*.ad.example.test` belong to the realm.
    pub fn krb5_conf(&self) -> &Path {
        &self.krb5_conf
    }

    /// Samba's configuration (`samba-tool -s`, `ntlm_auth --configfile=`).
    pub fn smb_conf(&self) -> &Path {
        &self.smb_conf
    }

    /// The loopback port of Samba's KDC (TCP and UDP).
    pub fn kdc_port(&self) -> u16 {
        self.kdc_port
    }

    /// The tail of Samba's log (all its services, winbindd included), for failure messages.
    pub fn samba_log(&self) -> String {
        log_tail("samba log", &self.samba_log, 6000)
    }

    /// The conventional ticket cache path for `user`, `<dir>/<user>.ccache`.
    pub fn user_ccache(&self, user: &str) -> PathBuf {
        self.dir().join(format!("{user}.ccache"))
    }

    /// The environment that points MIT Kerberos tools at this domain: `KRB5_CONFIG`, and
    /// `KRB5CCNAME` at alice's [`user_ccache`](Self::user_ccache) (empty until
    /// [`kinit`](Self::kinit)).
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut ccache = OsString::from("FILE:");
        ccache.push(self.user_ccache("alice"));
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf.clone().into()),
            ("KRB5CCNAME".into(), ccache),
        ]
    }

    /// A [`Command`] for `program` (looked up like [`sbin`](crate::sbin)) with
    /// [`env`](Self::env) applied.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let resolved = program
            .to_str()
            .map_or_else(|| PathBuf::from(program), sbin);
        let mut cmd = Command::new(resolved);
        cmd.envs(self.env());
        cmd
    }

    /// Runs `samba-tool ARGS -s smb.conf` against the domain and returns its output.
    pub fn samba_tool(&self, args: &[&str]) -> io::Result<String> {
        let mut cmd = Command::new(sbin("samba-tool"));
        cmd.args(args).arg("-s").arg(&self.smb_conf);
        clean_env(&mut cmd);
        let out = process::run(&mut cmd, None, &|| self.samba_log())?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Adds the user `name` with `password`; the password never expires.
    pub fn add_user(&self, name: &str, password: &str) -> io::Result<()> {
        check_name("user name", name)?;
        self.samba_tool(&["user", "add", name, password])?;
        Ok(())
    }

    /// Adds the security group `name`.
    pub fn add_group(&self, name: &str) -> io::Result<()> {
        check_name("group name", name)?;
        self.samba_tool(&["group", "add", name])?;
        Ok(())
    }

    /// Makes `member` (a user's or a group's `sAMAccountName`: groups nest) a member of `group`.
    pub fn add_group_member(&self, group: &str, member: &str) -> io::Result<()> {
        check_name("group name", group)?;
        check_name("member name", member)?;
        self.samba_tool(&["group", "addmembers", group, member])?;
        Ok(())
    }

    /// Adds a service account `account` (a user account, as `ktpass` on Windows expects) with a
    /// random password, gives it the service principal names `spns` (`samba-tool spn add`) and
    /// the `keys` it may be issued tickets with.
    ///
    /// Export its keys with [`export_keytab`](Self::export_keytab).
    pub fn add_service_account(
        &self,
        account: &str,
        spns: &[&str],
        keys: ServiceKeys,
    ) -> io::Result<()> {
        check_name("account name", account)?;
        self.samba_tool(&["user", "add", account, "--random-password"])?;
        for spn in spns {
            check_name("service principal name", spn)?;
            self.samba_tool(&["spn", "add", spn, account])?;
        }
        match keys {
            ServiceKeys::Rc4Default => Ok(()),
            ServiceKeys::AesOnly => self.admin_script(&["enctypes", account, "24"]),
        }
    }

    /// Writes the current keys of `principal` (an SPN such as `HTTP/web.ad.example.test`, or an
    /// account name) to the keytab at `path`, appending if it exists (`samba-tool domain
    /// exportkeytab --principal`). Keys are exported as they are, not changed.
    pub fn export_keytab(&self, principal: &str, path: &Path) -> io::Result<()> {
        check_name("principal", principal)?;
        let path = path.to_str().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "keytab path must be UTF-8")
        })?;
        self.samba_tool(&[
            "domain",
            "exportkeytab",
            path,
            &format!("--principal={principal}"),
        ])?;
        Ok(())
    }

    /// Creates `count` groups named `PREFIX-0000`, `PREFIX-0001`… with `user` as their only
    /// member, in one transaction (about 6 s for 1200 groups on a loaded 2-core machine; one
    /// `samba-tool group add` each would take 20 minutes).
    pub fn add_user_to_new_groups(&self, user: &str, prefix: &str, count: usize) -> io::Result<()> {
        check_name("user name", user)?;
        check_name("group prefix", prefix)?;
        self.admin_script(&["many-groups", user, prefix, &count.to_string()])
    }

    /// Gets a ticket-granting ticket for `user` (any of the forms the KDC takes: `alice`,
    /// `ALICE`, `alice@AD.EXAMPLE.TEST`) into the ticket cache file `ccache`, with MIT's kinit.
    pub fn kinit(&self, user: &str, password: &str, ccache: &Path) -> io::Result<()> {
        self.kinit_with(&[], user, password, ccache)
    }

    /// [`kinit`](Self::kinit) with extra kinit flags, e.g. `["-E"]` for an enterprise name
    /// (`alice@ad.example.test`), or `["-C"]` to let the KDC canonicalize the name.
    pub fn kinit_with(
        &self,
        flags: &[&str],
        user: &str,
        password: &str,
        ccache: &Path,
    ) -> io::Result<()> {
        let mut ccache_name = OsString::from("FILE:");
        ccache_name.push(ccache);
        let mut cmd = Command::new(sbin("setsid"));
        cmd.arg("-w")
            .arg(sbin("kinit"))
            .args(flags)
            .arg("-c")
            .arg(&ccache_name)
            .arg(user)
            .envs(self.env());
        process::run(&mut cmd, Some(&format!("{password}\n")), &|| {
            self.samba_log()
        })?;
        Ok(())
    }

    /// The ids of the processes of this domain that are still alive: Samba's process group,
    /// and every process whose command line names this domain's directory (winbindd, which
    /// puts itself in a group of its own, and `samba-dcerpcd`, re-parented to init).
    pub fn pids(&self) -> Vec<u32> {
        domain_pids(self.watchdog.id(), self.dir())
    }

    /// Stops Samba and every process of the domain, waits until they are gone, and removes its
    /// directory. Returns an error naming the processes still alive after the grace period.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_processes()
    }

    fn stop_processes(&mut self) -> io::Result<()> {
        // Closing the watchdog's stdin makes it SIGTERM the group; we then do the same work
        // ourselves so that this returns only when everything is gone.
        drop(self.watchdog_stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        let group = self.watchdog.id();
        loop {
            let left = domain_pids(group, self.dir());
            if left.is_empty() {
                let _ = self.watchdog.wait();
                return Ok(());
            }
            let signal = if Instant::now() < deadline {
                "-TERM"
            } else {
                "-KILL"
            };
            for pid in &left {
                signal_pid(signal, *pid);
            }
            if Instant::now() > deadline + Duration::from_secs(5) {
                let _ = self.watchdog.kill();
                return Err(io::Error::other(format!(
                    "Samba processes still alive after SIGKILL: {left:?}"
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_serving(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                return Err(io::Error::other(format!(
                    "samba exited during startup ({status})\n{}",
                    self.samba_log()
                )));
            }
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            // A socket file left by an earlier winbindd exists but refuses connections.
            let winbindd = UnixStream::connect(WINBINDD_SOCKET).is_ok();
            if up(self.kdc_port) && up(389) && winbindd {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "samba did not serve its KDC (127.0.0.1:{}) and LDAP (127.0.0.1:389) \
                     within {START_TIMEOUT:?}\n{}",
                    self.kdc_port,
                    self.samba_log()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Disables the account `name` (`samba-tool user disable`): its logons are refused with
    /// `NT_STATUS_ACCOUNT_DISABLED`.
    pub fn disable_user(&self, name: &str) -> io::Result<()> {
        check_name("user name", name)?;
        self.samba_tool(&["user", "disable", name])?;
        Ok(())
    }

    /// Gives `user` alone a password settings object (a fine-grained password policy) that
    /// locks the account after `threshold` wrong passwords, for 30 minutes; the domain's own
    /// policy, for everyone else, never locks.
    pub fn lock_after_wrong_passwords(&self, user: &str, threshold: u32) -> io::Result<()> {
        check_name("user name", user)?;
        let pso = format!("lockout-{user}");
        self.samba_tool(&[
            "domain",
            "passwordsettings",
            "pso",
            "create",
            &pso,
            "1",
            &format!("--account-lockout-threshold={threshold}"),
            "--account-lockout-duration=30",
            "--reset-account-lockout-after=30",
            "--complexity=off",
            "--min-pwd-length=0",
            "--history-length=0",
            "--min-pwd-age=0",
            "--max-pwd-age=0",
        ])?;
        self.samba_tool(&["domain", "passwordsettings", "pso", "apply", &pso, user])?;
        Ok(())
    }

    /// Samba's `ntlm_auth` with `--configfile=` this domain's smb.conf; it reaches the
    /// domain's winbindd at [`WINBINDD_SOCKET`] (and its privileged pipe: run as root).
    pub fn ntlm_auth(&self) -> Command {
        let mut cmd = Command::new(sbin("ntlm_auth"));
        let mut conf = OsString::from("--configfile=");
        conf.push(&self.smb_conf);
        cmd.arg(conf);
        clean_env(&mut cmd);
        cmd
    }

    /// Lets the members of `group` use winbindd's privileged pipe (what NTLM checks need),
    /// as a joined host does for `winbindd_priv`: the pipe's directory gets that group, and
    /// the directories above it up to the domain's own become traversable (mode 0711).
    /// Returns the pipe's directory.
    pub fn grant_privileged_pipe(&self, group: &str) -> io::Result<PathBuf> {
        check_name("group", group)?;
        let samba = self.dir().join("samba");
        let found = ["state/winbindd_privileged", "private/winbindd_privileged"]
            .iter()
            .map(|p| samba.join(p))
            .find(|p| p.join("pipe").exists())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no winbindd_privileged/pipe under {}", samba.display()),
                )
            })?;
        let status = Command::new("chgrp")
            .arg(group)
            .arg(&found)
            .stdin(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "chgrp {group} {}",
                found.display()
            )));
        }
        crate::process::chmod(&found, 0o750)?;
        let mut dir = found.parent();
        while let Some(d) = dir {
            crate::process::chmod(d, 0o711)?;
            if d == self.dir() {
                break;
            }
            dir = d.parent();
        }
        Ok(found)
    }

    /// Runs `domain_admin.py` (Samba's Python bindings, Debian's python3) with `args`.
    fn admin_script(&self, args: &[&str]) -> io::Result<()> {
        let script = self.dir().join("domain_admin.py");
        if !script.exists() {
            fs::write(&script, include_str!("domain_admin.py"))?;
        }
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script).arg(&self.smb_conf).args(args);
        clean_env(&mut cmd);
        process::run(&mut cmd, None, &|| self.samba_log())?;
        Ok(())
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        let _ = self.stop_processes();
    }
}

/// Fails naming the Debian packages of [`REQUIRED_FILES`] that are missing.
fn check_files() -> io::Result<()> {
    let missing: Vec<String> = REQUIRED_FILES
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(file, package)| format!("{file} (Debian package {package})"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "the Samba test domain needs files that are not installed: {} \
             (scripts/install-deps.sh installs them)",
            missing.join(", ")
        ),
    ))
}

/// Takes [`LOCK_PATH`], waiting up to [`LOCK_TIMEOUT`] for another process to release it.
fn take_lock() -> io::Result<File> {
    // std opens files with O_CLOEXEC: Samba, started later, does not inherit the lock.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .map_err(|e| io::Error::new(e.kind(), format!("open {LOCK_PATH}: {e}")))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(200));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another process has run a Samba test domain for over \
                         {LOCK_TIMEOUT:?} (it holds {LOCK_PATH}); only one can run at a time \
                         because Samba's LDAP and RPC ports are fixed: wait for it, or find it \
                         with `fuser {LOCK_PATH}`"
                    ),
                ))
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("lock {LOCK_PATH}: {e}"),
                ))
            }
        }
    }
}

/// Waits until Samba's fixed ports are free on loopback and no winbindd answers on
/// [`WINBINDD_SOCKET`] (a previous domain's Samba may still be exiting), then fails naming
/// what stays taken.
fn wait_for_previous_domain() -> io::Result<()> {
    let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(5);
    loop {
        let winbindd = UnixStream::connect(WINBINDD_SOCKET).is_ok();
        if winbindd && Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another winbindd answers on {WINBINDD_SOCKET} (the system's winbind \
                     service?): stop it (`systemctl stop winbind`); the test domain's winbindd \
                     must listen there for ntlm_auth"
                ),
            ));
        }
        let taken: Vec<u16> = FIXED_PORTS
            .iter()
            .copied()
            .filter(|port| TcpListener::bind(("127.0.0.1", *port)).is_err())
            .collect();
        if taken.is_empty() && !winbindd {
            return Ok(());
        }
        if Instant::now() > deadline && !taken.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "Samba's fixed ports {taken:?} on 127.0.0.1 are taken by another process \
                     (a system Samba or LDAP server? see `ss -ltnp`): the test domain needs \
                     ports {FIXED_PORTS:?}"
                ),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `samba -F` under a watchdog shell in a new process group, logging to `log`.
///
/// The shell waits on its stdin: when that closes (we drop it, or this process dies), it
/// SIGTERMs Samba's group and every process naming `dir` in its command line, then SIGKILLs
/// what is left and removes `dir`.
fn start_samba(dir: &Path, smb_conf: &Path, log: &Path) -> io::Result<(Child, ChildStdin)> {
    let log_file = File::create(log)?;
    // Builtins only inside `ours` (`read`, `set`, `case`): a forked helper would itself be
    // in the watchdog's group. Samba stays in that group (`--no-process-group`); winbindd and
    // samba-dcerpcd make their own and are found by `dir` in their command line.
    let script = r#"
dir="$1"; conf="$2"
samba -F --no-process-group -s "$conf" --debug-stdout </dev/null &
spid=$!
ours() {
  pids=""
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    st=""; read -r st <"$p/stat" 2>/dev/null || true
    set -- $st
    [ $# -ge 5 ] || continue
    [ "$4" = "$$" ] && [ "$pid" != "$spid" ] && continue
    [ "$3" = "Z" ] && continue
    cmd=""; read -r cmd <"$p/cmdline" 2>/dev/null || true
    if [ "$5" = "$$" ]; then pids="$pids $pid"; continue; fi
    case "$cmd" in *"$dir"*) pids="$pids $pid" ;; esac
  done
}
read -r _ignored || true
n=0
while [ $n -lt 20 ]; do
  ours
  [ -z "$pids" ] && break
  kill -TERM $pids 2>/dev/null
  sleep 0.5
  n=$((n + 1))
done
ours
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
rm -rf "$dir"
"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("kerbside-samba-watchdog")
        .arg(dir)
        .arg(smb_conf)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    clean_env(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    Ok((child, stdin))
}

/// The live processes of a domain: those in the process group `group` (the watchdog's, which
/// Samba and its tasks share) other than the watchdog itself, and those whose command line
/// contains `dir`.
fn domain_pids(group: u32, dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir = dir.as_os_str().as_encoded_bytes();
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            if pid == group {
                return None;
            }
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may contain spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let mut fields = after_comm.split_whitespace();
            let state = fields.next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            let pgrp: u32 = fields.next()?.parse().ok()?;
            let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
            // Zombies are gone already; the watchdog's own helpers (`sleep`) are not Samba.
            if state == "Z" || (ppid == group && comm != "samba") {
                return None;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let names_dir = cmdline.windows(dir.len()).any(|w| w == dir);
            (pgrp == group || names_dir).then_some(pid)
        })
        .collect()
}

fn signal_pid(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `krb5.conf` for MIT clients of the domain's KDC on `port`.
fn write_krb5_conf(path: &Path, port: u16) -> io::Result<()> {
    fs::write(
        path,
        format!(
            "\
[libdefaults]
    default_realm = {AD_REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    forwardable = true

[realms]
    {AD_REALM} = {{
        kdc = 127.0.0.1:{port}
        admin_server = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {AD_REALM}
    127.0.0.1 = {AD_REALM}
    .{AD_DNS_DOMAIN} = {AD_REALM}
    {AD_DNS_DOMAIN} = {AD_REALM}
"
        ),
    )
}

/// Keeps the machine's Kerberos and Samba environment away from Samba's tools.
fn clean_env(cmd: &mut Command) {
    for var in [
        "KRB5_CONFIG",
        "KRB5CCNAME",
        "KRB5_KTNAME",
        "KRB5_KDC_PROFILE",
    ] {
        cmd.env_remove(var);
    }
}

/// Rejects names that would be taken as options or split a command.
fn check_name(what: &str, name: &str) -> io::Result<()> {
    if name.is_empty() || name.starts_with('-') || name.chars().any(char::is_whitespace) {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {name:?} must be non-empty, without spaces, not start with '-'"),
        ))
    } else {
        Ok(())
    }
}
