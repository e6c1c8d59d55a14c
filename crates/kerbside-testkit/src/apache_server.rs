//! What [`Apache`](crate::Apache) and [`SchemeApache`](crate::SchemeApache) share: the
//! module check, the common part of `httpd.conf`, and the running `apache2 -DFOREGROUND`
//! with its ports, logs and directory.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, slash, Worker};
use crate::process::{self, log_tails};

/// Where Debian keeps Apache's loadable modules.
const MODULE_DIR: &str = "/usr/lib/apache2/modules";

/// How long Apache may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Apache gets after SIGTERM: it stops its workers (a SIGKILLed parent would orphan
/// them).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The mpm_event settings of an ordinary (not benchmarking) server.
pub(crate) const SMALL_WORKERS: &str = "StartServers 1\nServerLimit 2\nThreadLimit 16\n\
     ThreadsPerChild 16\nMinSpareThreads 1\nMaxSpareThreads 32\nMaxRequestWorkers 32";

/// Checks that the Apache modules (name, file) are installed.
pub(crate) fn check_modules<'m>(
    modules: impl IntoIterator<Item = &'m (&'m str, &'m str)>,
) -> io::Result<()> {
    daemon::check_modules(
        "Apache",
        MODULE_DIR,
        modules.into_iter().map(|(_, file)| *file),
        |file| {
            if file.contains("gssapi") {
                "libapache2-mod-auth-gssapi"
            } else {
                "apache2"
            }
        },
    )
}

/// The part of `httpd.conf` both harnesses share: paths under `root`, modules, worker user,
/// the `kerbside` access log format, the document root with CGIs in `private/`, and the HTTPS
/// (and optional plain) virtual hosts. The caller appends its `<Location>`s.
pub(crate) struct BaseConfig<'a> {
    pub(crate) root: &'a Path,
    pub(crate) port: u16,
    pub(crate) plain_port: Option<u16>,
    pub(crate) worker: Option<&'a Worker>,
    /// The `LogLevel` arguments.
    pub(crate) log_level: &'a str,
    /// The modules to load: (name, file).
    pub(crate) modules: Vec<&'a (&'a str, &'a str)>,
    /// The mpm settings, e.g. [`SMALL_WORKERS`].
    pub(crate) workers: &'a str,
    /// The CGI scripts in `private/`, as a regex alternation (`upload|whoami`).
    pub(crate) cgis: &'a str,
}

impl BaseConfig<'_> {
    pub(crate) fn render(&self) -> String {
        let root = self.root.display();
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
            log_level = self.log_level
        );
        for (name, file) in &self.modules {
            let _ = writeln!(c, "LoadModule {name} {MODULE_DIR}/{file}");
        }
        if let Some(w) = self.worker {
            let _ = writeln!(c, "User {}\nGroup {}", w.user, w.group);
        }
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
    <FilesMatch \"^({cgis})$\">
        Options +ExecCGI
        SetHandler cgi-script
    </FilesMatch>
</Directory>

SSLSessionCache \"shmcb:{root}/run/ssl_scache(512000)\"
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost:{port}
    SSLEngine on
    SSLCertificateFile \"{root}/cert.pem\"
    SSLCertificateKeyFile \"{root}/key.pem\"
</VirtualHost>",
            workers = self.workers,
            cgis = self.cgis,
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
        c
    }
}

/// A running `apache2 -DFOREGROUND` with its configuration in `dir` (`httpd.conf`, logs
/// `error.log`, `access.log`, `stderr.log`). Dropping it stops the server, then deletes the
/// directory.
#[derive(Debug)]
pub(crate) struct ApacheServer {
    /// Stopped in `Drop` before `dir` is removed.
    child: Child,
    port: u16,
    plain_port: Option<u16>,
    error_log: PathBuf,
    access_log: PathBuf,
    stderr_log: PathBuf,
    dir: TempDir,
}

impl ApacheServer {
    /// Starts Apache on a free HTTPS port (and a plain one with `plain_http`), retrying when
    /// a port is taken, and waits until it accepts connections.
    ///
    /// Writes `mime.types`; `render(port, plain_port)` is `httpd.conf`; `command(stderr_log)` is the `apache2`
    /// command with its environment and output going to `stderr_log`.
    pub(crate) fn start(
        dir: TempDir,
        plain_http: bool,
        render: impl Fn(u16, Option<u16>) -> String,
        command: impl Fn(&Path) -> io::Result<Command>,
    ) -> io::Result<ApacheServer> {
        let root = dir.path();
        fs::write(
            root.join("mime.types"),
            "text/html html htm\ntext/plain txt\n",
        )?;
        let error_log = root.join("error.log");
        let access_log = root.join("access.log");
        let stderr_log = root.join("stderr.log");
        let conf_path = root.join("httpd.conf");
        let logs = || {
            log_tails(&[
                ("apache2 stderr", &stderr_log, 4000),
                ("apache error log", &error_log, 8000),
            ])
        };
        let (child, ports) = daemon::start_with_retries(
            if plain_http { 2 } else { 1 },
            |ports| {
                fs::write(&conf_path, render(ports[0], ports.get(1).copied()))?;
                let _ = fs::remove_file(&error_log);
                let mut cmd = command(&stderr_log)?;
                cmd.arg("-f").arg(&conf_path).arg("-DFOREGROUND");
                cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
            },
            |child, ports| daemon::wait_listening(child, "apache2", ports, START_TIMEOUT, &logs),
            |child| process::terminate(child, STOP_GRACE),
        )?;
        Ok(ApacheServer {
            child,
            port: ports[0],
            plain_port: ports.get(1).copied(),
            error_log,
            access_log,
            stderr_log,
            dir,
        })
    }

    /// `https://localhost:PORT` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port, slash(path))
    }

    /// `http://localhost:PLAIN_PORT` + `path`; panics with `missing` without a plain port.
    pub(crate) fn plain_url(&self, path: &str, missing: &str) -> String {
        let port = self.plain_port.expect(missing);
        format!("http://localhost:{port}{}", slash(path))
    }

    /// The HTTPS port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The plain-HTTP port on 127.0.0.1, if any.
    pub(crate) fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// The process id of the Apache parent process.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's temporary directory (`ServerRoot`).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The error log, then Apache's stderr and the `extra` logs (label, path) that are not
    /// empty.
    pub(crate) fn error_log(&self, extra: &[(&str, &Path)]) -> String {
        let mut logs = vec![("apache2 stderr", self.stderr_log.as_path())];
        logs.extend_from_slice(extra);
        process::read_logs(&self.error_log, &logs)
    }

    /// The access log (`kerbside` format).
    pub(crate) fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for ApacheServer {
    fn drop(&mut self) {
        process::terminate(&mut self.child, STOP_GRACE);
    }
}
