//! [`Apache`]: a private Apache 2 with mod_ssl and mod_auth_gssapi, a real Negotiate server to
//! test clients against.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{self, chmod, chown, log_tail};
use crate::{free_port, sbin, TestCert, TestRealm};

/// Where Debian keeps Apache's loadable modules.
const MODULE_DIR: &str = "/usr/lib/apache2/modules";

/// Modules the configuration uses (`log_config` and `unixd` are compiled into Debian's apache2).
const MODULES: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("auth_gssapi_module", "mod_auth_gssapi.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
    ("headers_module", "mod_headers.so"),
    ("mime_module", "mod_mime.so"),
    ("dir_module", "mod_dir.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("session_module", "mod_session.so"),
    ("session_cookie_module", "mod_session_cookie.so"),
    ("cgid_module", "mod_cgid.so"),
];

/// Modules loaded in reverse-proxy mode ([`ApacheOptions::proxy_to`]).
const PROXY_MODULES: &[(&str, &str)] = &[
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
];

/// `/private/upload`: a CGI that answers with the SHA-256 (hex) and the length of
/// the request body it received, as `<sha256> <bytes>\n`.
const UPLOAD_CGI: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
tmp=$(mktemp)
cat > \"$tmp\"
printf '%s %s\\n' \"$(sha256sum < \"$tmp\" | cut -d' ' -f1)\" \"$(wc -c < \"$tmp\")\"
rm -f \"$tmp\"
";

/// How long Apache may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many port choices to try when Apache cannot bind.
const START_ATTEMPTS: usize = 5;

/// The body of `/private/`.
pub const PRIVATE_BODY: &str = "kerbside private page\n";
/// The body of `/public/`.
pub const PUBLIC_BODY: &str = "kerbside public page\n";

/// How to configure the [`Apache`] harness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApacheOptions {
    /// Reverse-proxy mode, for benchmarks: every location is passed on (mod_proxy,
    /// mod_proxy_http, pooled keep-alive connections) to `http://ADDR/` with the
    /// location's prefix removed, instead of being served from files:
    ///
    /// * `/public/` — no authentication;
    /// * `/private/` — Negotiate as configured by the other options (by default a
    ///   token on every request);
    /// * `/bound/` — Negotiate with `GssapiConnectionBound On`;
    /// * `/session/` — Negotiate with `GssapiUseSessions On` (cookie `gssapi_session`,
    ///   `path=/session`, `secure` only over HTTPS).
    ///
    /// Authenticated requests reach the upstream with `X-Remote-User`. The server is
    /// set up for measuring: `LogLevel warn` (the access log stays), two worker
    /// processes of 64 threads started at once and never replaced (so a benchmark can
    /// count the CPU time of a fixed set of processes), keep-alive connections never
    /// closed by request count (`MaxKeepAliveRequests 0`, as the gate). `None` by default.
    pub proxy_to: Option<SocketAddr>,
    /// `GssapiConnectionBound On`: once a connection has authenticated, later requests on it are
    /// let through without a new `Authorization` header (the behaviour of IIS and of Negotiate
    /// as NTLM-era servers do it). Off by default: every request must authenticate.
    pub connection_bound: bool,
    /// Also listen without TLS on a second port ([`Apache::plain_url`]), and turn
    /// `GssapiSSLonly` off so Negotiate works there too. Off by default: HTTPS only, and
    /// mod_auth_gssapi refuses to authenticate over plain HTTP.
    pub plain_http: bool,
    /// `GssapiUseSessions On` with mod_session and mod_session_cookie: after a successful
    /// Negotiate exchange the response sets the cookie `gssapi_session` (`path=/private;
    /// httponly; secure`), and a later request carrying it is let in as the same user without
    /// any `Authorization` header. The cookie is encrypted and MACed with a random 32-byte key
    /// (`GssapiSessionKey file:<dir>/session.key`). Because the cookie is `secure`, clients
    /// send it back over HTTPS only. Off by default.
    pub sessions: bool,
    /// `GssapiSignalPersistentAuth On`: responses from `/private/` carry `Persistent-Auth:
    /// true` when [`connection_bound`](Self::connection_bound) is on and `Persistent-Auth:
    /// false` when it is off. Off by default: no `Persistent-Auth` header at all.
    pub persistent_auth: bool,
}

/// A private Apache 2 (`apache2 -DFOREGROUND`) in a temporary directory, on free loopback
/// ports, serving:
///
/// * `/private/` — protected by mod_auth_gssapi (`AuthType GSSAPI`, krb5 only, `Require
///   valid-user`) with the realm's HTTP keytab; the body is [`PRIVATE_BODY`] and the
///   `X-Remote-User` response header names the authenticated principal (`alice@EXAMPLE.TEST`).
/// * `/public/` — no authentication; the body is [`PUBLIC_BODY`].
///
/// HTTPS uses the given [`TestCert`], so clients must trust its CA. The server has its own
/// `ServerRoot`, `PidFile`, logs, mutexes, runtime directory, keytab copy and replay cache; it
/// never touches the system Apache. When the test runs as root, the worker processes run as
/// `www-data` (or `nobody`). Dropping the harness stops the server (SIGTERM, then SIGKILL) and
/// deletes its directory.
///
/// ```no_run
/// use kerbside_testkit::{Apache, ApacheOptions, TestCa, TestRealm};
///
/// let realm = TestRealm::start().unwrap();
/// let ca = TestCa::new();
/// let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
/// let url = apache.url("/private/"); // https://localhost:PORT/private/
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct Apache {
    /// Stopped in `Drop` before `dir` is removed.
    child: Child,
    port: u16,
    plain_port: Option<u16>,
    error_log: PathBuf,
    access_log: PathBuf,
    stderr_log: PathBuf,
    docroot: PathBuf,
    dir: TempDir,
}

impl Apache {
    /// Writes the configuration, starts Apache and waits until it accepts connections.
    ///
    /// Fails with a message that includes Apache's stderr and error log.
    pub fn start(realm: &TestRealm, cert: &TestCert, opts: ApacheOptions) -> io::Result<Apache> {
        crate::check_tools(&[("apache2", "apache2")])?;
        let proxy_modules = if opts.proxy_to.is_some() {
            PROXY_MODULES
        } else {
            &[]
        };
        for (_, file) in MODULES.iter().chain(proxy_modules) {
            let path = Path::new(MODULE_DIR).join(file);
            if !path.exists() {
                let package = if file.contains("gssapi") {
                    "libapache2-mod-auth-gssapi"
                } else {
                    "apache2"
                };
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "Apache module {} is missing (Debian package {package})",
                        path.display()
                    ),
                ));
            }
        }

        let dir = tempfile::Builder::new()
            .prefix("kerbside-apache-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        // Worker processes run as an unprivileged user when we are root; they must reach the
        // keytab, the documents and the replay cache.
        let worker = (process::euid() == 0)
            .then(|| {
                ["www-data", "nobody"].iter().find_map(|name| {
                    let (uid, gid) = process::account(name)?;
                    Some(Worker {
                        user: (*name).to_owned(),
                        group: process::group_name(gid)?,
                        ids: (uid, gid),
                    })
                })
            })
            .flatten();
        let owner = worker.as_ref().map(|w| w.ids);
        chmod(&root, 0o755)?;

        let run_dir = root.join("run");
        let rcache_dir = root.join("rcache");
        let docroot = root.join("htdocs");
        for d in [&run_dir, &rcache_dir] {
            fs::create_dir(d)?;
            chown(d, owner)?;
        }
        chmod(&rcache_dir, 0o700)?;
        for (sub, body) in [("private", PRIVATE_BODY), ("public", PUBLIC_BODY)] {
            let d = docroot.join(sub);
            fs::create_dir_all(&d)?;
            chmod(&docroot, 0o755)?;
            chmod(&d, 0o755)?;
            let file = d.join("index.html");
            fs::write(&file, body)?;
            chmod(&file, 0o644)?;
        }
        let upload = docroot.join("private").join("upload");
        fs::write(&upload, UPLOAD_CGI)?;
        chmod(&upload, 0o755)?;

        let keytab = root.join("http.keytab");
        fs::copy(realm.keytab(), &keytab).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("copy keytab {}: {e}", realm.keytab().display()),
            )
        })?;
        chmod(&keytab, 0o600)?;
        chown(&keytab, owner)?;
        // mod_ssl reads these in the parent (as root) at startup.
        let cert_path = root.join("cert.pem");
        let key_path = root.join("key.pem");
        fs::write(&cert_path, cert.cert_pem())?;
        fs::write(&key_path, cert.key_pem())?;
        chmod(&key_path, 0o600)?;
        if opts.sessions || opts.proxy_to.is_some() {
            // mod_auth_gssapi wants exactly 32 raw bytes; it reads them at startup (as root),
            // but the file belongs to the worker user like the keytab.
            let session_key = root.join("session.key");
            let mut key = [0u8; 32];
            File::open("/dev/urandom")
                .and_then(|mut random| random.read_exact(&mut key))
                .map_err(|e| io::Error::new(e.kind(), format!("read /dev/urandom: {e}")))?;
            fs::write(&session_key, key)?;
            chmod(&session_key, 0o600)?;
            chown(&session_key, owner)?;
        }
        fs::write(
            root.join("mime.types"),
            "text/html html htm\ntext/plain txt\n",
        )?;

        let error_log = root.join("error.log");
        let access_log = root.join("access.log");
        let stderr_log = root.join("stderr.log");
        let conf_path = root.join("httpd.conf");

        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let plain_port = if opts.plain_http {
                Some(loop {
                    let p = free_port()?;
                    if p != port {
                        break p;
                    }
                })
            } else {
                None
            };
            let conf = Config {
                root: &root,
                port,
                plain_port,
                worker: worker.as_ref(),
                opts,
            };
            fs::write(&conf_path, conf.render())?;
            let _ = fs::remove_file(&error_log);

            let mut cmd =
                process::keytab_daemon(&sbin("apache2"), realm, &keytab, &rcache_dir, &stderr_log)?;
            cmd.arg("-f").arg(&conf_path).arg("-DFOREGROUND");
            let mut child = cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))?;
            let logs = || {
                format!(
                    "{}\n{}",
                    log_tail("apache2 stderr", &stderr_log, 4000),
                    log_tail("apache error log", &error_log, 8000)
                )
            };
            let ports: Vec<u16> = std::iter::once(port).chain(plain_port).collect();
            match wait_ready(&mut child, &ports, &logs) {
                Ok(()) => {
                    return Ok(Apache {
                        child,
                        port,
                        plain_port,
                        error_log,
                        access_log,
                        stderr_log,
                        docroot,
                        dir,
                    })
                }
                Err(not_ready) => {
                    process::terminate(&mut child, Duration::from_secs(10));
                    if !(not_ready.port_taken && attempt < START_ATTEMPTS) {
                        return Err(io::Error::other(not_ready.msg));
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// `https://localhost:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port, slash(path))
    }

    /// `http://localhost:PLAIN_PORT` + `path`.
    ///
    /// # Panics
    ///
    /// If the server was started without [`ApacheOptions::plain_http`].
    pub fn plain_url(&self, path: &str) -> String {
        let port = self
            .plain_port
            .expect("Apache::plain_url needs ApacheOptions { plain_http: true, .. }");
        format!("http://localhost:{port}{}", slash(path))
    }

    /// The HTTPS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain-HTTP port on 127.0.0.1, with [`ApacheOptions::plain_http`].
    pub fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// The process id of the Apache parent process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The parent process and its children (the workers, and mod_cgid's daemon when
    /// loaded), from `/proc`.
    pub fn pids(&self) -> Vec<u32> {
        let parent = self.pid();
        let mut pids = vec![parent];
        if let Ok(dir) = fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let ppid = fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|t| {
                        let rest = &t[t.rfind(')')? + 1..];
                        rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                    });
                if ppid == Some(parent) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The server's temporary directory (`ServerRoot`), deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `DocumentRoot`; files added under `private/` or `public/` are served at once.
    pub fn docroot(&self) -> &Path {
        &self.docroot
    }

    /// The contents of the error log (with mod_auth_gssapi at debug level) and of Apache's
    /// stderr, for test failure messages.
    pub fn error_log(&self) -> String {
        let mut text = fs::read_to_string(&self.error_log).unwrap_or_default();
        if let Ok(stderr) = fs::read_to_string(&self.stderr_log) {
            if !stderr.trim().is_empty() {
                let _ = write!(text, "--- apache2 stderr ---\n{stderr}");
            }
        }
        text
    }

    /// The contents of the access log, one line per request:
    ///
    /// ```text
    /// 127.0.0.1 port=41234 k=0 "GET /private/ HTTP/1.1" 401 user=- auth=-
    /// 127.0.0.1 port=41234 k=1 "GET /private/ HTTP/1.1" 200 user=alice@EXAMPLE.TEST auth=Negotiate
    /// ```
    ///
    /// * `port` — the client's source port (`%{remote}p`): requests on one connection share it;
    /// * `k` — how many requests this connection had served before this one (`%k`), so `k=0`
    ///   marks a new connection (TCP, and TLS handshake on the HTTPS port);
    /// * the request line and the final status (`%>s`);
    /// * `user` — the authenticated user (`%u`), `-` if none; also set when a session cookie
    ///   or a connection-bound context let the request in;
    /// * `auth` — the scheme of the request's `Authorization` header (`Negotiate`), `-` if it
    ///   had none.
    ///
    /// [`access_entries`](Self::access_entries) parses it. Apache writes a line when the
    /// response is done, so read the log after the client has finished.
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// The [`access_log`](Self::access_log), parsed; lines that do not parse are skipped.
    ///
    /// Counting costs with it: connections are the entries with
    /// [`new_connection`](AccessLogEntry::new_connection), round trips are the entries,
    /// challenges are the entries with status 401.
    pub fn access_entries(&self) -> Vec<AccessLogEntry> {
        self.access_log()
            .lines()
            .filter_map(AccessLogEntry::parse)
            .collect()
    }
}

/// One request in the [`Apache`] access log; see [`Apache::access_log`] for the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// The client's address (`127.0.0.1`).
    pub client: String,
    /// The client's source port: the same for every request on one connection.
    pub client_port: u16,
    /// How many earlier requests this connection had served (0 on a new connection).
    pub keepalive: u32,
    /// The request line, e.g. `GET /private/ HTTP/1.1`.
    pub request: String,
    /// The final status code.
    pub status: u16,
    /// The authenticated user, e.g. `alice@EXAMPLE.TEST`.
    pub user: Option<String>,
    /// The scheme of the request's `Authorization` header, e.g. `Negotiate`.
    pub auth_scheme: Option<String>,
    /// Bytes received for the request, headers and body (`%I`).
    pub bytes_in: u64,
}

impl AccessLogEntry {
    /// Whether this request opened its connection (`k=0`).
    pub fn new_connection(&self) -> bool {
        self.keepalive == 0
    }

    /// Parses one line of the `kerbside` log format.
    pub(crate) fn parse(line: &str) -> Option<AccessLogEntry> {
        let (client, rest) = line.split_once(' ')?;
        let (port, rest) = rest.strip_prefix("port=")?.split_once(' ')?;
        let (keepalive, rest) = rest.strip_prefix("k=")?.split_once(' ')?;
        let (request, rest) = rest.strip_prefix('"')?.rsplit_once("\" ")?;
        let mut fields = rest.split(' ');
        let status = fields.next()?.parse().ok()?;
        let user = fields.next()?.strip_prefix("user=")?;
        let auth = fields.next()?.strip_prefix("auth=")?;
        let bytes_in = fields
            .next()
            .and_then(|f| f.strip_prefix("in="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let dash_none = |v: &str| (v != "-").then(|| v.to_owned());
        Some(AccessLogEntry {
            client: client.to_owned(),
            client_port: port.parse().ok()?,
            keepalive: keepalive.parse().ok()?,
            request: request.to_owned(),
            status,
            user: dash_none(user),
            auth_scheme: dash_none(auth),
            bytes_in,
        })
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM lets the parent stop its workers; a SIGKILLed parent would orphan them.
        process::terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// Waits until `child` accepts connections on every port, or reports why not.
fn wait_ready(child: &mut Child, ports: &[u16], logs: &dyn Fn() -> String) -> Result<(), NotReady> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let logs = logs();
            return Err(NotReady {
                port_taken: logs.contains("Address already in use"),
                msg: format!("apache2 exited during startup ({status})\n{logs}"),
            });
        }
        if ports
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NotReady {
                port_taken: false,
                msg: format!(
                    "apache2 did not accept connections on 127.0.0.1 ports {ports:?} within \
                     {START_TIMEOUT:?}\n{}",
                    logs()
                ),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Why Apache did not come up.
struct NotReady {
    port_taken: bool,
    msg: String,
}

/// The unprivileged account worker processes run as.
struct Worker {
    user: String,
    group: String,
    ids: (u32, u32),
}

/// The inputs of `httpd.conf`.
struct Config<'a> {
    root: &'a Path,
    port: u16,
    plain_port: Option<u16>,
    worker: Option<&'a Worker>,
    opts: ApacheOptions,
}

impl Config<'_> {
    fn render(&self) -> String {
        let root = self.root.display();
        let on_off = |b: bool| if b { "On" } else { "Off" };
        let mut c = String::new();
        let _ = writeln!(
            c,
            "# Written by kerbside-testkit; a private server, not the system Apache.
ServerRoot \"{root}\"
ServerName localhost
PidFile \"{root}/run/httpd.pid\"
DefaultRuntimeDir \"{root}/run\"
Mutex file:{root}/run default
ErrorLog \"{root}/error.log\"
LogLevel {log_level}
",
            log_level = if self.opts.proxy_to.is_some() {
                "warn"
            } else {
                "info auth_gssapi:debug ssl:info"
            }
        );
        let proxy_modules = if self.opts.proxy_to.is_some() {
            PROXY_MODULES
        } else {
            &[]
        };
        for (name, file) in MODULES.iter().chain(proxy_modules) {
            let _ = writeln!(c, "LoadModule {name} {MODULE_DIR}/{file}");
        }
        if let Some(w) = self.worker {
            let _ = writeln!(c, "User {}\nGroup {}", w.user, w.group);
        }
        let workers = if self.opts.proxy_to.is_some() {
            // Two children of 64 threads from the start, never more, never fewer.
            "StartServers 2\nServerLimit 2\nThreadLimit 64\nThreadsPerChild 64\n\
             MinSpareThreads 1\nMaxSpareThreads 128\nMaxRequestWorkers 128\n\
             MaxConnectionsPerChild 0\nMaxKeepAliveRequests 0"
        } else {
            "StartServers 1\nServerLimit 2\nThreadLimit 16\nThreadsPerChild 16\n\
             MinSpareThreads 1\nMaxSpareThreads 32\nMaxRequestWorkers 32"
        };
        let _ = writeln!(
            c,
            "
{workers}
Timeout 30
KeepAlive On
KeepAliveTimeout 30
TypesConfig \"{root}/mime.types\"
DirectoryIndex index.html
SetEnvIf Authorization \"^([!-~]+)\" KERBSIDE_AUTH_SCHEME=$1
LogFormat \"%h port=%{{remote}}p k=%k \\\"%r\\\" %>s user=%u auth=%{{KERBSIDE_AUTH_SCHEME}}e in=%I\" kerbside
CustomLog \"{root}/access.log\" kerbside
DocumentRoot \"{root}/htdocs\"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory \"{root}/htdocs\">
    Options None
    AllowOverride None
    Require all granted
</Directory>
ScriptSock \"{root}/run/cgid.sock\"
<Directory \"{root}/htdocs/private\">
    <Files \"upload\">
        Options +ExecCGI
        SetHandler cgi-script
    </Files>
</Directory>

SSLSessionCache \"shmcb:{root}/run/ssl_scache(512000)\"
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost:{port}
    SSLEngine on
    SSLCertificateFile \"{root}/cert.pem\"
    SSLCertificateKeyFile \"{root}/key.pem\"
</VirtualHost>",
            port = self.port
        );
        if let Some(plain) = self.plain_port {
            let _ = writeln!(
                c,
                "Listen 127.0.0.1:{plain} http
<VirtualHost 127.0.0.1:{plain}>
    ServerName localhost:{plain}
</VirtualHost>"
            );
        }
        let _ = writeln!(
            c,
            "
<Location \"/private/\">
    AuthType GSSAPI
    AuthName \"kerbside test realm\"
    GssapiCredStore keytab:{root}/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    GssapiSSLonly {ssl_only}
    GssapiConnectionBound {bound}
    Require valid-user
    GssapiSignalPersistentAuth {persist}
    Header set X-Remote-User \"expr=%{{REMOTE_USER}}\"",
            ssl_only = on_off(!self.opts.plain_http),
            bound = on_off(self.opts.connection_bound),
            persist = on_off(self.opts.persistent_auth),
        );
        if let Some(upstream) = self.opts.proxy_to {
            let _ = writeln!(
                c,
                "    RequestHeader set X-Remote-User \"expr=%{{REMOTE_USER}}\""
            );
            let _ = writeln!(c, "    ProxyPass \"http://{upstream}/\"");
        }
        if self.opts.sessions {
            let _ = writeln!(
                c,
                "    GssapiUseSessions On
    GssapiSessionKey file:{root}/session.key
    Session On
    SessionCookieName gssapi_session path=/private;httponly;secure;"
            );
        }
        c.push_str("</Location>\n");
        if let Some(upstream) = self.opts.proxy_to {
            self.render_proxy(&mut c, upstream);
        }
        c
    }

    /// The locations of reverse-proxy mode besides `/private/`.
    fn render_proxy(&self, c: &mut String, upstream: SocketAddr) {
        let root = self.root.display();
        let ssl_only = if self.opts.plain_http { "Off" } else { "On" };
        let secure = if self.opts.plain_http { "" } else { "secure;" };
        let negotiate = |c: &mut String, extra: &str| {
            let _ = writeln!(
                c,
                "    AuthType GSSAPI
    AuthName \"kerbside test realm\"
    GssapiCredStore keytab:{root}/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    GssapiSSLonly {ssl_only}
{extra}    Require valid-user
    RequestHeader set X-Remote-User \"expr=%{{REMOTE_USER}}\""
            );
        };
        let _ = writeln!(
            c,
            "ProxyRequests Off
<Location \"/public/\">
    ProxyPass \"http://{upstream}/\"
</Location>
<Location \"/bound/\">"
        );
        negotiate(
            c,
            "    GssapiConnectionBound On\n    GssapiSignalPersistentAuth On\n",
        );
        let _ = writeln!(
            c,
            "    ProxyPass \"http://{upstream}/\"
</Location>
<Location \"/session/\">"
        );
        negotiate(
            c,
            &format!(
                "    GssapiUseSessions On
    GssapiSessionKey file:{root}/session.key
    Session On
    SessionCookieName gssapi_session path=/session;httponly;{secure}
"
            ),
        );
        let _ = writeln!(
            c,
            "    ProxyPass \"http://{upstream}/\"
</Location>"
        );
    }
}

fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_parse() {
        let line = r#"127.0.0.1 port=41234 k=1 "GET /private/ HTTP/1.1" 200 user=alice@EXAMPLE.TEST auth=Negotiate"#;
        assert_eq!(
            AccessLogEntry::parse(line),
            Some(AccessLogEntry {
                client: "127.0.0.1".into(),
                client_port: 41234,
                keepalive: 1,
                request: "GET /private/ HTTP/1.1".into(),
                status: 200,
                user: Some("alice@EXAMPLE.TEST".into()),
                auth_scheme: Some("Negotiate".into()),
                bytes_in: 0,
            })
        );
        let line = r#"127.0.0.1 port=5 k=0 "GET /a\"b HTTP/1.1" 401 user=- auth=-"#;
        let entry = AccessLogEntry::parse(line).unwrap();
        assert!(entry.new_connection());
        assert_eq!(entry.request, r#"GET /a\"b HTTP/1.1"#);
        assert_eq!((entry.user, entry.auth_scheme), (None, None));
        assert_eq!(
            AccessLogEntry::parse("127.0.0.1 \"GET / HTTP/1.1\" 200 user=-"),
            None
        );
    }
}
