//! [`Lighttpd`]: a private lighttpd, either guarding `/private/` with Digest (SHA-256 by
//! default, from an htdigest file) or as a plain static upstream.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, slash, Worker, UPLOAD_CGI, WHOAMI_CGI};
use crate::passwords::{self, DigestAlgorithm, DIGEST_REALM};
use crate::process::{self, chmod, chown, log_tail, log_tails};
use crate::{sbin, TestCert};

/// Where Debian keeps lighttpd's modules (`mod_openssl` is in `lighttpd-mod-openssl`).
const MODULE_DIR: &str = "/usr/lib/lighttpd";

/// How long lighttpd may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long lighttpd gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The body of `/bench`: 96 bytes, the benchmark's static upstream response.
pub const BENCH_BODY: &str =
    "kerbside benchmark upstream body: 96 bytes of static text served by a private lighttpd.........\n";

/// How to configure a [`Lighttpd`].
#[derive(Debug, Clone, Copy)]
pub struct LighttpdOptions<'a> {
    /// Serve HTTPS with this certificate ([`Lighttpd::url`]). Without one the server speaks
    /// plain HTTP only.
    pub cert: Option<&'a TestCert>,
    /// Also listen without TLS on a second port ([`Lighttpd::plain_url`]); implied when there
    /// is no [`cert`](Self::cert). Authentication applies there too.
    pub plain_http: bool,
    /// Guard `/private/` with Digest (`mod_auth`, `auth.backend = "htdigest"`, realm
    /// [`DIGEST_REALM`], `qop="auth"`) using this algorithm for HA1 and the response. `None`:
    /// no authentication anywhere.
    pub digest: Option<DigestAlgorithm>,
    /// Offer HTTP/2 over TLS (ALPN `h2`, lighttpd's default). Off by default: HTTP/1.1 only,
    /// so connection-level behaviour is what a test sees.
    pub http2: bool,
}

impl<'a> LighttpdOptions<'a> {
    /// Digest with SHA-256 on `/private/`, over HTTPS with `cert` only.
    pub fn digest(cert: &'a TestCert) -> LighttpdOptions<'a> {
        LighttpdOptions {
            cert: Some(cert),
            plain_http: false,
            digest: Some(DigestAlgorithm::Sha256),
            http2: false,
        }
    }

    /// A plain-HTTP static server without authentication (the benchmark's upstream):
    /// `/bench` is [`BENCH_BODY`].
    pub fn upstream() -> LighttpdOptions<'a> {
        LighttpdOptions {
            cert: None,
            plain_http: true,
            digest: None,
            http2: false,
        }
    }
}

/// A private lighttpd (`lighttpd -D`) in a temporary directory on free loopback ports,
/// serving:
///
/// * `/public/` — [`PUBLIC_BODY`](crate::PUBLIC_BODY), and `/bench` — [`BENCH_BODY`] (96 bytes), never
///   authenticated;
/// * `/private/` — [`PRIVATE_BODY`](crate::PRIVATE_BODY); with [`LighttpdOptions::digest`] only for the accounts in
///   [`PASSWORD_USERS`](crate::PASSWORD_USERS) (`alice` / `alice-password`, `bob` /
///   `bob-password`); a `401` carries `WWW-Authenticate: Digest realm="kerbside test realm",
///   charset="UTF-8", algorithm=SHA-256, nonce="…", qop="auth"`;
/// * `/private/whoami` — a CGI answering `user=<REMOTE_USER>\nauth=<AUTH_TYPE>\n`
///   (`user=alice`, `auth=Digest`): how a test sees who logged in;
/// * `/private/upload` — a CGI answering a POST with `<sha256 hex> <length>\n` of its body.
///
/// When the test runs as root, lighttpd drops to `www-data` (or `nobody`) after binding.
/// Dropping the harness stops the server and deletes its directory. It needs no Kerberos
/// realm; HTTPS needs Debian's `lighttpd-mod-openssl`.
///
/// ```no_run
/// use kerbside_testkit::{Lighttpd, LighttpdOptions, TestCa};
///
/// let ca = TestCa::new();
/// let cert = ca.issue(&[]);
/// let digest = Lighttpd::start(LighttpdOptions::digest(&cert)).unwrap();
/// let _ = digest.url("/private/whoami"); // https://localhost:PORT/private/whoami
/// let upstream = Lighttpd::start(LighttpdOptions::upstream()).unwrap();
/// let _ = upstream.plain_url("/bench"); // http://localhost:PORT/bench
/// ```
#[derive(Debug)]
pub struct Lighttpd {
    /// Stopped in `Drop` before `dir` is removed.
    child: Child,
    tls_port: Option<u16>,
    plain_port: Option<u16>,
    error_log: PathBuf,
    access_log: PathBuf,
    stderr_log: PathBuf,
    dir: TempDir,
}

impl Lighttpd {
    /// Writes the configuration (checked with `lighttpd -tt`), starts lighttpd and waits until
    /// it accepts connections.
    ///
    /// Fails with a message that includes lighttpd's stderr and error log.
    pub fn start(opts: LighttpdOptions<'_>) -> io::Result<Lighttpd> {
        crate::check_tools(&[("lighttpd", "lighttpd"), ("sha256sum", "coreutils")])?;
        let mut modules = vec!["mod_accesslog", "mod_cgi"];
        if opts.cert.is_some() {
            modules.push("mod_openssl");
        }
        if opts.digest.is_some() {
            modules.extend(["mod_auth", "mod_authn_file"]);
        }
        let files: Vec<String> = modules.iter().map(|m| format!("{m}.so")).collect();
        daemon::check_modules(
            "lighttpd",
            MODULE_DIR,
            files.iter().map(String::as_str),
            |file| {
                if file == "mod_openssl.so" {
                    "lighttpd-mod-openssl"
                } else {
                    "lighttpd"
                }
            },
        )?;

        let dir = tempfile::Builder::new()
            .prefix("kerbside-lighttpd-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let worker = Worker::for_root();
        let owner = worker.as_ref().map(|w| w.ids);
        chmod(&root, 0o755)?;

        let docroot = root.join("htdocs");
        daemon::write_docroot(&docroot, &[("upload", UPLOAD_CGI), ("whoami", WHOAMI_CGI)])?;
        let bench = docroot.join("bench");
        fs::write(&bench, BENCH_BODY)?;
        chmod(&bench, 0o644)?;
        if let Some(algorithm) = opts.digest {
            let htdigest = root.join("htdigest");
            fs::write(&htdigest, passwords::htdigest_file(algorithm)?)?;
            chmod(&htdigest, 0o600)?;
            chown(&htdigest, owner)?;
        }
        if let Some(cert) = opts.cert {
            // Read at startup, before lighttpd drops privileges.
            daemon::write_cert(&root, cert)?;
        }
        // lighttpd opens its logs after dropping privileges.
        let error_log = root.join("error.log");
        let access_log = root.join("access.log");
        for log in [&error_log, &access_log] {
            fs::write(log, "")?;
            chown(log, owner)?;
        }
        let stderr_log = root.join("stderr.log");
        let conf_path = root.join("lighttpd.conf");

        let want_plain = opts.plain_http || opts.cert.is_none();
        let count = usize::from(opts.cert.is_some()) + usize::from(want_plain);
        let logs = || {
            log_tails(&[
                ("lighttpd stderr", &stderr_log, 4000),
                ("lighttpd error log", &error_log, 8000),
            ])
        };
        let ports_of = |ports: &[u16]| {
            (
                opts.cert.is_some().then(|| ports[0]),
                want_plain.then(|| ports[ports.len() - 1]),
            )
        };
        let (child, ports) = daemon::start_with_retries(
            count,
            |ports| {
                let (tls_port, plain_port) = ports_of(ports);
                let conf = Config {
                    root: &root,
                    tls_port,
                    plain_port,
                    worker: worker.as_ref(),
                    modules: &modules,
                    opts,
                };
                fs::write(&conf_path, conf.render())?;
                process::run(
                    Command::new(sbin("lighttpd"))
                        .arg("-tt")
                        .arg("-f")
                        .arg(&conf_path),
                    None,
                    &|| log_tail("lighttpd.conf", &conf_path, 6000),
                )?;

                let stderr = fs::File::create(&stderr_log)?;
                let mut cmd = Command::new(sbin("lighttpd"));
                cmd.arg("-D")
                    .arg("-f")
                    .arg(&conf_path)
                    .stdin(Stdio::null())
                    .stdout(stderr.try_clone()?)
                    .stderr(stderr);
                cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
            },
            |child, ports| daemon::wait_listening(child, "lighttpd", ports, START_TIMEOUT, &logs),
            |child| process::terminate(child, STOP_GRACE),
        )?;
        let (tls_port, plain_port) = ports_of(&ports);
        Ok(Lighttpd {
            child,
            tls_port,
            plain_port,
            error_log,
            access_log,
            stderr_log,
            dir,
        })
    }

    /// `https://localhost:PORT` + `path`.
    ///
    /// # Panics
    ///
    /// If the server was started without [`LighttpdOptions::cert`].
    pub fn url(&self, path: &str) -> String {
        let port = self
            .tls_port
            .expect("Lighttpd::url needs LighttpdOptions { cert: Some(..), .. }");
        format!("https://localhost:{port}{}", slash(path))
    }

    /// `http://localhost:PLAIN_PORT` + `path`.
    ///
    /// # Panics
    ///
    /// If the server has a certificate and was started without
    /// [`LighttpdOptions::plain_http`].
    pub fn plain_url(&self, path: &str) -> String {
        let port = self.plain_port.expect(
            "Lighttpd::plain_url needs LighttpdOptions { plain_http: true, .. } or no cert",
        );
        format!("http://localhost:{port}{}", slash(path))
    }

    /// The HTTPS port on 127.0.0.1, when there is a certificate.
    pub fn port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The plain-HTTP port on 127.0.0.1, when there is one.
    pub fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// The process id of lighttpd (it does not fork with `-D`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The error log and lighttpd's stderr, for test failure messages.
    pub fn error_log(&self) -> String {
        process::read_logs(&self.error_log, &[("lighttpd stderr", &self.stderr_log)])
    }

    /// The access log, one line per request:
    ///
    /// ```text
    /// 127.0.0.1 "GET /private/whoami HTTP/1.1" 401 user=-
    /// 127.0.0.1 "GET /private/whoami HTTP/1.1" 200 user=alice
    /// ```
    ///
    /// lighttpd buffers the log and writes it out about once a second:
    /// [`wait_access_log`](Self::wait_access_log) polls.
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// Polls the access log (up to 5 s) until `pred` holds for it, and returns it either way.
    pub fn wait_access_log(&self, pred: impl Fn(&str) -> bool) -> String {
        daemon::poll_log(|| self.access_log(), pred)
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        process::terminate(&mut self.child, STOP_GRACE);
    }
}

/// The inputs of `lighttpd.conf`.
struct Config<'a> {
    root: &'a Path,
    tls_port: Option<u16>,
    plain_port: Option<u16>,
    worker: Option<&'a Worker>,
    modules: &'a [&'a str],
    opts: LighttpdOptions<'a>,
}

impl Config<'_> {
    fn render(&self) -> String {
        let root = self.root.display();
        let modules = self
            .modules
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut c = String::new();
        let _ = writeln!(
            c,
            "# Written by kerbside-testkit; a private server, not the system lighttpd.
server.modules = ( {modules} )
server.document-root = \"{root}/htdocs\"
server.errorlog = \"{root}/error.log\"
server.bind = \"127.0.0.1\"
server.max-keep-alive-idle = 30
accesslog.filename = \"{root}/access.log\"
accesslog.format = \"%h \\\"%r\\\" %s user=%u\"
index-file.names = ( \"index.html\" )
mimetype.assign = ( \".html\" => \"text/html\", \"\" => \"text/plain\" )
$HTTP[\"url\"] =~ \"^/private/(upload|whoami)$\" {{
    cgi.assign = ( \"\" => \"\" )
}}"
        );
        if !self.opts.http2 {
            c.push_str("server.feature-flags += ( \"server.h2proto\" => \"disable\" )\n");
        }
        if let Some(w) = self.worker {
            let _ = writeln!(
                c,
                "server.username = \"{}\"\nserver.groupname = \"{}\"",
                w.user, w.group
            );
        }
        // The main port is the TLS one when there is a certificate, else the plain one.
        match (self.tls_port, self.plain_port) {
            (Some(tls), plain) => {
                let _ = writeln!(
                    c,
                    "server.port = {tls}
ssl.engine = \"enable\"
ssl.pemfile = \"{root}/cert.pem\"
ssl.privkey = \"{root}/key.pem\""
                );
                if let Some(plain) = plain {
                    let _ = writeln!(
                        c,
                        "$SERVER[\"socket\"] == \"127.0.0.1:{plain}\" {{\n    ssl.engine = \"disable\"\n}}"
                    );
                }
            }
            (None, Some(plain)) => {
                let _ = writeln!(c, "server.port = {plain}");
            }
            (None, None) => unreachable!("lighttpd needs a port"),
        }
        if let Some(algorithm) = self.opts.digest {
            let algorithm = match algorithm {
                DigestAlgorithm::Md5 => "MD5",
                DigestAlgorithm::Sha256 => "SHA-256",
            };
            let _ = writeln!(
                c,
                "auth.backend = \"htdigest\"
auth.backend.htdigest.userfile = \"{root}/htdigest\"
auth.require = ( \"/private/\" => (
    \"method\" => \"digest\",
    \"realm\" => \"{DIGEST_REALM}\",
    \"require\" => \"valid-user\",
    \"algorithm\" => \"{algorithm}\"
) )"
            );
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_body_is_96_bytes() {
        assert_eq!(BENCH_BODY.len(), 96);
    }
}
