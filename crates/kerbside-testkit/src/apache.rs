//! [`Apache`]: a private Apache 2 with mod_ssl and mod_auth_gssapi, a real Negotiate server to
//! test clients against.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::apache_server::{self, ApacheServer, BaseConfig, SMALL_WORKERS};
use crate::daemon::{self, Worker, UPLOAD_CGI};
use crate::process::{self, chmod, chown};
use crate::{sbin, TestCert, TestRealm};

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
    /// Stops the server on drop, then deletes its directory.
    server: ApacheServer,
    docroot: PathBuf,
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
        apache_server::check_modules(MODULES.iter().chain(proxy_modules))?;

        let dir = tempfile::Builder::new()
            .prefix("kerbside-apache-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        // Worker processes run as an unprivileged user when we are root; they must reach the
        // keytab, the documents and the replay cache.
        let worker = Worker::for_root();
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
        daemon::write_docroot(&docroot, &[("upload", UPLOAD_CGI)])?;

        let keytab = root.join("http.keytab");
        daemon::copy_keytab(realm, &keytab, owner)?;
        // mod_ssl reads these in the parent (as root) at startup.
        daemon::write_cert(&root, cert)?;
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

        let server = ApacheServer::start(
            dir,
            opts.plain_http,
            |port, plain_port| {
                Config {
                    root: &root,
                    port,
                    plain_port,
                    worker: worker.as_ref(),
                    opts,
                }
                .render()
            },
            |stderr_log| {
                process::keytab_daemon(&sbin("apache2"), realm, &keytab, &rcache_dir, stderr_log)
            },
        )?;
        Ok(Apache { server, docroot })
    }

    /// `https://localhost:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `http://localhost:PLAIN_PORT` + `path`.
    ///
    /// # Panics
    ///
    /// If the server was started without [`ApacheOptions::plain_http`].
    pub fn plain_url(&self, path: &str) -> String {
        self.server.plain_url(
            path,
            "Apache::plain_url needs ApacheOptions { plain_http: true, .. }",
        )
    }

    /// The HTTPS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The plain-HTTP port on 127.0.0.1, with [`ApacheOptions::plain_http`].
    pub fn plain_port(&self) -> Option<u16> {
        self.server.plain_port()
    }

    /// The process id of the Apache parent process.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The parent process and its children (the workers, and mod_cgid's daemon when
    /// loaded), from `/proc`.
    pub fn pids(&self) -> Vec<u32> {
        let parent = self.pid();
        std::iter::once(parent)
            .chain(process::children_of(parent))
            .collect()
    }

    /// The server's temporary directory (`ServerRoot`), deleted on drop.
    pub fn dir(&self) -> &Path {
        self.server.dir()
    }

    /// The `DocumentRoot`; files added under `private/` or `public/` are served at once.
    pub fn docroot(&self) -> &Path {
        &self.docroot
    }

    /// The contents of the error log (with mod_auth_gssapi at debug level) and of Apache's
    /// stderr, for test failure messages.
    pub fn error_log(&self) -> String {
        self.server.error_log(&[])
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
        self.server.access_log()
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

    /// The [`access_entries`](Self::access_entries) once `done` holds for them (polled up
    /// to 5 s; returned either way): Apache writes a line after it has sent the response,
    /// so a client that has its answer may read the log a moment too early.
    pub fn wait_access_entries(
        &self,
        done: impl Fn(&[AccessLogEntry]) -> bool,
    ) -> Vec<AccessLogEntry> {
        let log = daemon::poll_log(
            || self.access_log(),
            |log| {
                let entries: Vec<_> = log.lines().filter_map(AccessLogEntry::parse).collect();
                done(&entries)
            },
        );
        log.lines().filter_map(AccessLogEntry::parse).collect()
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
        let proxy_modules = if self.opts.proxy_to.is_some() {
            PROXY_MODULES
        } else {
            &[]
        };
        let workers = if self.opts.proxy_to.is_some() {
            // Two children of 64 threads from the start, never more, never fewer.
            "StartServers 2\nServerLimit 2\nThreadLimit 64\nThreadsPerChild 64\n\
             MinSpareThreads 1\nMaxSpareThreads 128\nMaxRequestWorkers 128\n\
             MaxConnectionsPerChild 0\nMaxKeepAliveRequests 0"
        } else {
            SMALL_WORKERS
        };
        let mut c = BaseConfig {
            root: self.root,
            port: self.port,
            plain_port: self.plain_port,
            worker: self.worker,
            log_level: if self.opts.proxy_to.is_some() {
                "warn"
            } else {
                "info auth_gssapi:debug ssl:info"
            },
            modules: MODULES.iter().chain(proxy_modules).collect(),
            workers,
            cgis: "upload",
        }
        .render();
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
