//! [`TestRealm`]: a throwaway MIT Kerberos realm with its own KDC, database and keytab.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::marker::PhantomData;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{self, log_tail};
use crate::{free_port, sbin};

/// The name of every test realm.
pub const REALM: &str = "EXAMPLE.TEST";

/// Tools a realm runs, with the Debian package that provides each.
pub(crate) const REQUIRED_TOOLS: &[(&str, &str)] = &[
    ("krb5kdc", "krb5-kdc"),
    ("kdb5_util", "krb5-kdc"),
    ("kadmin.local", "krb5-admin-server"),
    ("kinit", "krb5-user"),
    ("klist", "krb5-user"),
];

/// The users every realm has, with their passwords.
const USERS: &[(&str, &str)] = &[("alice", "alice-password"), ("bob", "bob-password")];

/// The services every realm has; their keys are in [`TestRealm::keytab`].
const HTTP_SERVICES: &[&str] = &["HTTP/localhost", "HTTP/127.0.0.1"];

const MASTER_PASSWORD: &str = "kerbside-master-password";

/// How long the KDC may take to start listening.
const KDC_START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many ports to try when the KDC cannot bind the one it was given.
const KDC_START_ATTEMPTS: usize = 5;

/// Serializes the process-wide environment that [`TestRealm::enter`] sets and that in-process
/// GSSAPI reads. The data is `()`, so a panic while holding it corrupts nothing: poisoning is
/// ignored.
static ENV_LOCK: Mutex<()> = Mutex::new(());

/// A throwaway MIT Kerberos realm, `EXAMPLE.TEST`, in a temporary directory.
///
/// [`TestRealm::start`] writes `krb5.conf` and `kdc.conf`, creates the database, starts
/// `krb5kdc` on a free loopback port (UDP and TCP), and adds:
///
/// | principal | key |
/// |-----------|-----|
/// | `alice@EXAMPLE.TEST` | password `alice-password`; a ticket cache at [`user_ccache("alice")`](Self::user_ccache) |
/// | `bob@EXAMPLE.TEST` | password `bob-password`; no ticket cache |
/// | `HTTP/localhost@EXAMPLE.TEST` | random, in [`keytab`](Self::keytab) |
/// | `HTTP/127.0.0.1@EXAMPLE.TEST` | random, in [`keytab`](Self::keytab) |
///
/// Tools run through [`command`](Self::command) see the realm through their environment
/// ([`env`](Self::env)). Code that calls GSSAPI in this process must instead hold the guard
/// returned by [`enter`](Self::enter), which sets the same variables process-wide under a lock.
///
/// Several realms can run at once, each with its own directory and port. Dropping a realm stops
/// its KDC (and only its KDC) and deletes the directory.
///
/// ```no_run
/// use kerbside_testkit::TestRealm;
///
/// let realm = TestRealm::start().expect("start the test realm");
/// realm.add_user("carol", "carol-password").unwrap();
/// let ccache = realm.user_ccache("carol");
/// realm.kinit("carol", "carol-password", &ccache).unwrap();
///
/// // In-process GSSAPI: hold the guard while the library reads the environment.
/// let _env = realm.enter();
/// // … initiate a security context for HTTP@localhost as alice …
/// ```
#[derive(Debug)]
pub struct TestRealm {
    /// Stopped in `Drop` before `dir` is removed (fields drop after `drop` runs).
    kdc: Child,
    /// A shell that stops the KDC and removes `dir` once its stdin closes: when this
    /// process exits, also if the realm is a static that is never dropped. `Drop` kills
    /// it first, so it never signals a pid that was reused.
    watchdog: Option<(Child, ChildStdin)>,
    port: u16,
    krb5_conf: PathBuf,
    kdc_conf: PathBuf,
    keytab: PathBuf,
    rcache_dir: PathBuf,
    kdc_log: PathBuf,
    dir: TempDir,
}

impl TestRealm {
    /// Creates the realm, starts its KDC, adds the standard principals and gets alice a ticket.
    ///
    /// Fails with a message that includes the failing tool's stderr and the KDC's log.
    pub fn start() -> io::Result<TestRealm> {
        crate::preflight()?;
        let dir = tempfile::Builder::new()
            .prefix("kerbside-realm-")
            .tempdir()?;
        let path = dir.path().to_path_buf();
        let krb5_conf = path.join("krb5.conf");
        let kdc_conf = path.join("kdc.conf");
        let rcache_dir = path.join("rcache");
        let kdc_log = path.join("kdc.log");
        fs::create_dir(&rcache_dir)?;
        fs::write(path.join("kadm5.acl"), format!("*/admin@{REALM} *\n"))?;

        let mut port = free_port()?;
        write_configs(&path, port)?;
        let db_env = [
            (OsStr::new("KRB5_CONFIG"), krb5_conf.as_os_str()),
            (OsStr::new("KRB5_KDC_PROFILE"), kdc_conf.as_os_str()),
        ];
        process::run(
            Command::new(sbin("kdb5_util"))
                .args(["create", "-s", "-r", REALM, "-P", MASTER_PASSWORD])
                .envs(db_env),
            None,
            &|| log_tail("kdc.log", &kdc_log, 4000),
        )?;

        let mut attempt = 1;
        let kdc = loop {
            match start_kdc(&path, port, &db_env) {
                Ok(kdc) => break kdc,
                Err(KdcStartError::PortTaken(_)) if attempt < KDC_START_ATTEMPTS => {
                    attempt += 1;
                    port = free_port()?;
                    write_configs(&path, port)?;
                }
                Err(KdcStartError::PortTaken(msg)) | Err(KdcStartError::Other(msg)) => {
                    return Err(io::Error::other(msg))
                }
            }
        };

        let watchdog = watch(&kdc, &path);
        let realm = TestRealm {
            kdc,
            watchdog,
            port,
            krb5_conf,
            kdc_conf,
            keytab: path.join("http.keytab"),
            rcache_dir,
            kdc_log,
            dir,
        };
        // From here on, an early return drops `realm`, which stops the KDC.
        for (user, password) in USERS {
            realm.add_user(user, password)?;
        }
        for service in HTTP_SERVICES {
            realm.add_service(service)?;
        }
        realm.export_keytab(HTTP_SERVICES, &realm.keytab)?;
        let (alice, alice_password) = USERS[0];
        realm.kinit(alice, alice_password, &realm.user_ccache(alice))?;
        Ok(realm)
    }

    /// The realm name, `EXAMPLE.TEST`.
    pub fn realm(&self) -> &str {
        REALM
    }

    /// `user@EXAMPLE.TEST`.
    pub fn principal(&self, user: &str) -> String {
        format!("{user}@{REALM}")
    }

    /// The realm's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client configuration (`KRB5_CONFIG`): default realm, the KDC's address, no DNS.
    pub fn krb5_conf(&self) -> &Path {
        &self.krb5_conf
    }

    /// The KDC configuration (`KRB5_KDC_PROFILE`): database, stash, ports, logging.
    pub fn kdc_conf(&self) -> &Path {
        &self.kdc_conf
    }

    /// The keytab holding `HTTP/localhost` and `HTTP/127.0.0.1` (`KRB5_KTNAME`).
    pub fn keytab(&self) -> &Path {
        &self.keytab
    }

    /// The loopback port the KDC listens on, for both UDP and TCP.
    pub fn kdc_port(&self) -> u16 {
        self.port
    }

    /// The process id of this realm's `krb5kdc`.
    pub fn kdc_pid(&self) -> u32 {
        self.kdc.id()
    }

    /// The KDC's log, for test failure messages.
    pub fn kdc_log(&self) -> String {
        fs::read_to_string(&self.kdc_log).unwrap_or_default()
    }

    /// The conventional ticket cache path for `user`, `<dir>/<user>.ccache`.
    ///
    /// Only alice's exists after [`start`](Self::start); for others call [`kinit`](Self::kinit)
    /// with this path. Prefix it with `FILE:` for `KRB5CCNAME`.
    pub fn user_ccache(&self, user: &str) -> PathBuf {
        self.dir().join(format!("{user}.ccache"))
    }

    /// Adds the user principal `name@EXAMPLE.TEST` with `password`.
    pub fn add_user(&self, name: &str, password: &str) -> io::Result<()> {
        check_word("principal name", name)?;
        if password.contains('"') || password.contains('\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a test password must not contain a double quote or a newline",
            ));
        }
        self.kadmin(&format!("addprinc -pw \"{password}\" {name}"))
            .map(drop)
    }

    /// Adds the principal `principal` (e.g. `HTTP/host.example.test`) with a random key.
    ///
    /// Export its key with [`export_keytab`](Self::export_keytab).
    pub fn add_service(&self, principal: &str) -> io::Result<()> {
        check_word("principal name", principal)?;
        self.kadmin(&format!("addprinc -randkey {principal}"))
            .map(drop)
    }

    /// Writes the current keys of `principals` to the keytab at `path` (appending if it exists).
    ///
    /// Keys are not re-randomized (`ktadd -norandkey`), so keytabs exported earlier stay valid.
    pub fn export_keytab(&self, principals: &[&str], path: &Path) -> io::Result<()> {
        for principal in principals {
            check_word("principal name", principal)?;
        }
        let path = path.to_str().filter(|p| !p.contains('"')).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "keytab path {} must be UTF-8 without quotes",
                    path.display()
                ),
            )
        })?;
        self.kadmin(&format!(
            "ktadd -norandkey -k \"{path}\" {}",
            principals.join(" ")
        ))
        .map(drop)
    }

    /// Gets a ticket-granting ticket for `user` into the ticket cache file `ccache`.
    ///
    /// The password goes to `kinit` on stdin; `kinit` runs in a new session (`setsid`) so it
    /// cannot prompt on the terminal of an interactive `cargo test`.
    pub fn kinit(&self, user: &str, password: &str, ccache: &Path) -> io::Result<()> {
        let mut ccache_name = OsString::from("FILE:");
        ccache_name.push(ccache);
        let kinit = sbin("kinit");
        let setsid = sbin("setsid");
        let mut cmd = if setsid.is_absolute() {
            let mut cmd = Command::new(setsid);
            cmd.arg("-w").arg(kinit);
            cmd
        } else {
            Command::new(kinit)
        };
        cmd.arg("-c").arg(&ccache_name).arg(user).envs(self.env());
        process::run(&mut cmd, Some(&format!("{password}\n")), &|| {
            log_tail("kdc.log", &self.kdc_log, 4000)
        })
        .map(drop)
    }

    /// Runs one `kadmin.local` query (e.g. `getprinc alice`) against the realm's database and
    /// returns its standard output.
    ///
    /// `kadmin.local` exits with status 0 even when a query fails, so any line on its stderr
    /// other than the harmless "No policy specified" notice is reported as an error.
    pub fn kadmin(&self, query: &str) -> io::Result<String> {
        let mut cmd = Command::new(sbin("kadmin.local"));
        cmd.args(["-r", REALM, "-q", query]).envs(self.env());
        let output = process::output_of(&mut cmd, None)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let complaint = stderr.lines().any(|line| {
            let line = line.trim();
            !line.is_empty()
                && !line.starts_with("No policy specified for")
                && !line.starts_with("WARNING: no policy specified for")
        });
        if !output.status.success() || complaint {
            return Err(process::failure(
                &cmd,
                &output,
                &log_tail("kadmin.log", &self.dir().join("kadmin.log"), 2000),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The environment that points Kerberos tools and libraries at this realm:
    ///
    /// * `KRB5_CONFIG` — [`krb5_conf`](Self::krb5_conf)
    /// * `KRB5_KDC_PROFILE` — [`kdc_conf`](Self::kdc_conf)
    /// * `KRB5CCNAME` — `FILE:` alice's ticket cache
    /// * `KRB5_KTNAME` — `FILE:` the HTTP [`keytab`](Self::keytab)
    /// * `KRB5RCACHEDIR` — a replay cache directory inside the realm's directory
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let file = |path: &Path| {
            let mut name = OsString::from("FILE:");
            name.push(path);
            name
        };
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf.clone().into()),
            ("KRB5_KDC_PROFILE".into(), self.kdc_conf.clone().into()),
            ("KRB5CCNAME".into(), file(&self.user_ccache(USERS[0].0))),
            ("KRB5_KTNAME".into(), file(&self.keytab)),
            ("KRB5RCACHEDIR".into(), self.rcache_dir.clone().into()),
        ]
    }

    /// A [`Command`] for `program` with [`env`](Self::env) applied.
    ///
    /// A bare program name is looked up in `/usr/sbin` and the other system directories as well
    /// as on `PATH` (see [`sbin`](crate::sbin)). Nothing else in the environment is changed.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let resolved = program
            .to_str()
            .map_or_else(|| PathBuf::from(program), sbin);
        let mut cmd = Command::new(resolved);
        cmd.envs(self.env());
        cmd
    }

    /// Points this process's environment at the realm until the guard is dropped.
    ///
    /// In-process GSSAPI (libgssapi, MIT krb5) reads `KRB5_CONFIG`, `KRB5CCNAME`,
    /// `KRB5_KTNAME`… from the process environment, which all threads share. This takes a
    /// process-wide lock, sets the variables of [`env`](Self::env), and on drop restores the
    /// previous values and releases the lock. **Every test that calls GSSAPI in-process must hold
    /// this guard for the whole time it uses GSSAPI**; tests that only run child processes should
    /// use [`command`](Self::command) instead and can run fully in parallel.
    ///
    /// Taking the guard twice on one thread without dropping the first deadlocks.
    #[must_use = "the environment is only set while the guard is held"]
    pub fn enter(&self) -> RealmEnvGuard<'_> {
        let lock = ENV_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut saved = Vec::new();
        for (key, value) in self.env() {
            saved.push((key.clone(), std::env::var_os(&key)));
            // Edition 2021: `set_var` is a safe fn. Racing readers in other threads are what the
            // lock is for; code reading these variables must hold a guard.
            std::env::set_var(&key, &value);
        }
        RealmEnvGuard {
            saved,
            _lock: lock,
            _realm: PhantomData,
        }
    }
}

impl Drop for TestRealm {
    fn drop(&mut self) {
        if let Some((mut watchdog, _stdin)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        process::terminate(&mut self.kdc, Duration::from_secs(5));
    }
}

/// Starts the watchdog of [`TestRealm::watchdog`]; `None` (the realm still works, and is
/// stopped by `Drop`) if `sh` cannot be started.
fn watch(kdc: &Child, dir: &Path) -> Option<(Child, ChildStdin)> {
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            "read _; kill -TERM \"$1\" 2>/dev/null; sleep 1; rm -rf -- \"$2\"",
        ])
        .arg("kerbside-realm-watchdog")
        .arg(kdc.id().to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = watchdog.stdin.take()?;
    Some((watchdog, stdin))
}

/// Holds the process environment pointed at a [`TestRealm`]; see [`TestRealm::enter`].
///
/// Dropping it restores the previous values of the variables it set and releases the
/// process-wide lock.
#[must_use = "the environment is only set while the guard is held"]
pub struct RealmEnvGuard<'realm> {
    saved: Vec<(OsString, Option<OsString>)>,
    _lock: MutexGuard<'static, ()>,
    _realm: PhantomData<&'realm TestRealm>,
}

impl std::fmt::Debug for RealmEnvGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealmEnvGuard")
            .field("saved", &self.saved)
            .finish_non_exhaustive()
    }
}

impl Drop for RealmEnvGuard<'_> {
    fn drop(&mut self) {
        // Runs before `_lock` is released, so nobody sees the half-restored environment.
        for (key, value) in self.saved.drain(..).rev() {
            match value {
                Some(value) => std::env::set_var(&key, value),
                None => std::env::remove_var(&key),
            }
        }
    }
}

/// Why the KDC did not start.
enum KdcStartError {
    /// Its port was taken by someone else: try another.
    PortTaken(String),
    Other(String),
}

/// Starts `krb5kdc` in the foreground and waits until it says it is serving and accepts TCP.
fn start_kdc(dir: &Path, port: u16, env: &[(&OsStr, &OsStr)]) -> Result<Child, KdcStartError> {
    let log = dir.join("kdc.log");
    let stderr_path = dir.join("kdc.stderr");
    // Each attempt gets fresh logs, so "address in use" refers to this attempt.
    let _ = fs::remove_file(&log);
    let io_err = |what: &str, e: io::Error| KdcStartError::Other(format!("{what}: {e}"));
    let stderr = File::create(&stderr_path).map_err(|e| io_err("create kdc.stderr", e))?;
    let mut cmd = Command::new(sbin("krb5kdc"));
    cmd.args(["-n", "-r", REALM, "-P"])
        .arg(dir.join("kdc.pid"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut kdc = cmd
        .spawn()
        .map_err(|e| KdcStartError::Other(process::spawn_error(&cmd, e).to_string()))?;

    let report = |headline: String| {
        let mut msg = headline;
        let _ = write!(
            msg,
            "\n{}\n{}",
            log_tail("kdc.log", &log, 4000),
            log_tail("krb5kdc stderr", &stderr_path, 2000)
        );
        msg
    };
    let deadline = Instant::now() + KDC_START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = kdc.try_wait() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let msg = report(format!(
                "krb5kdc on 127.0.0.1:{port} exited during startup ({status})"
            ));
            return Err(if text.contains("Address already in use") {
                KdcStartError::PortTaken(msg)
            } else {
                KdcStartError::Other(msg)
            });
        }
        let serving = fs::read_to_string(&log)
            .map(|text| text.contains("commencing operation"))
            .unwrap_or(false);
        if serving && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(kdc);
        }
        if Instant::now() > deadline {
            process::terminate(&mut kdc, Duration::from_secs(2));
            return Err(KdcStartError::Other(report(format!(
                "krb5kdc did not start serving on 127.0.0.1:{port} within {KDC_START_TIMEOUT:?}"
            ))));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `krb5.conf` and `kdc.conf` for a KDC on `port`.
fn write_configs(dir: &Path, port: u16) -> io::Result<()> {
    let d = dir.display();
    let krb5_conf = format!(
        "\
[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    forwardable = true

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}
    127.0.0.1 = {REALM}
"
    );
    // kdc_ports/kdc_tcp_ports would bind every address; kdc_listen/kdc_tcp_listen (krb5 >= 1.15)
    // take precedence and keep the test KDC on loopback.
    let kdc_conf = format!(
        "\
[kdcdefaults]
    kdc_ports = {port}
    kdc_tcp_ports = {port}

[realms]
    {REALM} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        acl_file = {d}/kadm5.acl
        kdc_ports = {port}
        kdc_tcp_ports = {port}
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h
        max_renewable_life = 7d
    }}

[logging]
    kdc = FILE:{d}/kdc.log
    admin_server = FILE:{d}/kadmin.log
    default = FILE:{d}/krb5.log
"
    );
    fs::write(dir.join("krb5.conf"), krb5_conf)?;
    fs::write(dir.join("kdc.conf"), kdc_conf)
}

/// Rejects names that would split or break a `kadmin` query.
fn check_word(what: &str, word: &str) -> io::Result<()> {
    if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c == '"') {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {word:?} must be non-empty without spaces or quotes"),
        ))
    } else {
        Ok(())
    }
}
