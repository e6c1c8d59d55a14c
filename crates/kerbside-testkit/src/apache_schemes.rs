//! [`SchemeApache`]: a private Apache 2 guarding `/private/` with a password scheme instead of
//! Kerberos — NTLM through mod_auth_gssapi and gss-ntlmssp, or Digest through
//! mod_auth_digest — a real server to test clients against.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apache_server::{self, ApacheServer, BaseConfig, SMALL_WORKERS};
use crate::daemon::{self, Worker, UPLOAD_CGI, WHOAMI_CGI};
use crate::passwords::{self, DigestAlgorithm, DIGEST_REALM, NTLM_DOMAIN};
use crate::process::{chmod, chown};
use crate::{sbin, AccessLogEntry, TestCert};

/// Modules every configuration loads (`log_config` and `unixd` are compiled in).
const COMMON_MODULES: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
    ("headers_module", "mod_headers.so"),
    ("mime_module", "mod_mime.so"),
    ("dir_module", "mod_dir.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("cgid_module", "mod_cgid.so"),
];

/// The scheme a [`SchemeApache`] asks for on `/private/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApacheScheme {
    /// NTLM, connection-bound: `AuthType GSSAPI`, `GssapiAllowedMech ntlmssp`,
    /// `GssapiConnectionBound On`, accounts from gss-ntlmssp's `NTLM_USER_FILE`.
    ///
    /// A `401` carries two challenges, `WWW-Authenticate: Negotiate` and
    /// `WWW-Authenticate: NTLM`; both lead to gss-ntlmssp. Users are `EXAMPLE\alice` /
    /// `alice-password` and `EXAMPLE\bob` / `bob-password` (a client that sends no domain,
    /// `alice`, is let in too). `REMOTE_USER` (and `X-Remote-User`) is `EXAMPLE\alice`.
    ///
    /// What it does **not** accept: Debian 12's gss-ntlmssp 1.2.0 rejects the 32-byte
    /// NEGOTIATE message of `curl --ntlm` (7.88) with "Invalid token was supplied (Failed to
    /// decode data)" in the error log: curl sends that NEGOTIATE twice, gets `401` both times
    /// and exits 0 with status `401`. Python's requests-ntlm (pyspnego's 40-byte NEGOTIATE
    /// with a version) gets through, and so does `curl --negotiate -u :` with gss-ntlmssp as
    /// the initiator (NTLM inside SPNEGO; `NTLMUSER=EXAMPLE\alice`, `NTLM_USER_FILE`, and no
    /// Kerberos ticket so SPNEGO falls back to NTLM).
    Ntlm,
    /// Digest with MD5, the only algorithm mod_auth_digest offers: `AuthType Digest`,
    /// `AuthDigestProvider file`, an htdigest file in realm [`DIGEST_REALM`], `qop="auth"`.
    Digest,
}

/// How to configure a [`SchemeApache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemeApacheOptions {
    /// The scheme on `/private/`.
    pub scheme: ApacheScheme,
    /// Also listen without TLS on a second port ([`SchemeApache::plain_url`]); for NTLM
    /// `GssapiSSLonly` is then off. Off by default: HTTPS only.
    pub plain_http: bool,
}

impl SchemeApacheOptions {
    /// `scheme` over HTTPS only.
    pub fn new(scheme: ApacheScheme) -> SchemeApacheOptions {
        SchemeApacheOptions {
            scheme,
            plain_http: false,
        }
    }
}

/// A private Apache 2 (`apache2 -DFOREGROUND`) in a temporary directory, on free loopback
/// ports, guarding `/private/` with NTLM or Digest (see [`ApacheScheme`]) for the accounts in
/// [`PASSWORD_USERS`](crate::PASSWORD_USERS) (`alice` / `alice-password`, `bob` /
/// `bob-password`). It needs no Kerberos realm. It serves:
///
/// * `/private/` — [`PRIVATE_BODY`](crate::PRIVATE_BODY); every response from under `/private/` carries
///   `X-Remote-User` naming the authenticated user (`EXAMPLE\alice` for NTLM, `alice` for
///   Digest);
/// * `/private/upload` — a CGI answering a POST with `<sha256 hex> <length>\n` of the body it
///   received;
/// * `/private/whoami` — a CGI answering `user=<REMOTE_USER>\nauth=<AUTH_TYPE>\n`;
/// * `/public/` — [`PUBLIC_BODY`](crate::PUBLIC_BODY), no authentication.
///
/// HTTPS uses the given [`TestCert`]. The access log has the format of
/// [`Apache::access_log`](crate::Apache::access_log). When the test runs as root the workers
/// run as `www-data` (or `nobody`). Dropping the harness stops the server and deletes its
/// directory.
///
/// ```no_run
/// use kerbside_testkit::{ApacheScheme, SchemeApache, SchemeApacheOptions, TestCa};
///
/// let ca = TestCa::new();
/// let apache =
///     SchemeApache::start(&ca.issue(&[]), SchemeApacheOptions::new(ApacheScheme::Ntlm)).unwrap();
/// let url = apache.url("/private/"); // https://localhost:PORT/private/
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct SchemeApache {
    /// Stops the server on drop, then deletes its directory.
    server: ApacheServer,
    ntlm_debug_log: PathBuf,
}

impl SchemeApache {
    /// Writes the configuration and the account file, starts Apache and waits until it
    /// accepts connections.
    ///
    /// Fails with a message that includes Apache's stderr and error log.
    pub fn start(cert: &TestCert, opts: SchemeApacheOptions) -> io::Result<SchemeApache> {
        crate::check_tools(&[
            ("apache2", "apache2"),
            ("md5sum", "coreutils"),
            ("sha256sum", "coreutils"),
        ])?;
        apache_server::check_modules(COMMON_MODULES.iter().chain(scheme_modules(opts.scheme)))?;
        if opts.scheme == ApacheScheme::Ntlm && !Path::new(NTLMSSP_MECH).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{NTLMSSP_MECH} is missing (Debian package gss-ntlmssp)"),
            ));
        }

        let dir = tempfile::Builder::new()
            .prefix("kerbside-apache-scheme-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let worker = Worker::for_root();
        let owner = worker.as_ref().map(|w| w.ids);
        chmod(&root, 0o755)?;

        let run_dir = root.join("run");
        fs::create_dir(&run_dir)?;
        chown(&run_dir, owner)?;
        daemon::write_docroot(
            &root.join("htdocs"),
            &[("upload", UPLOAD_CGI), ("whoami", WHOAMI_CGI)],
        )?;

        // The accounts: read by the workers, so theirs and private.
        let accounts = match opts.scheme {
            ApacheScheme::Ntlm => ("ntlm-users", passwords::ntlm_user_file()),
            ApacheScheme::Digest => ("htdigest", passwords::htdigest_file(DigestAlgorithm::Md5)?),
        };
        let accounts_path = root.join(accounts.0);
        fs::write(&accounts_path, accounts.1)?;
        chmod(&accounts_path, 0o600)?;
        chown(&accounts_path, owner)?;
        // gss-ntlmssp writes its debug log from the workers.
        let ntlm_debug_log = root.join("gssntlmssp-debug.log");
        fs::write(&ntlm_debug_log, "")?;
        chown(&ntlm_debug_log, owner)?;

        // mod_ssl reads these in the parent (as root) at startup.
        daemon::write_cert(&root, cert)?;

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
                let stderr = fs::File::create(stderr_log)?;
                let mut cmd = Command::new(sbin("apache2"));
                // gss-ntlmssp reads its environment in the process that calls GSSAPI, so the
                // accounts file must be in apache2's own environment (SetEnv does not reach
                // it).
                cmd.env_remove("KRB5CCNAME")
                    .env_remove("KRB5_KTNAME")
                    .env_remove("KRB5_CONFIG")
                    .env("NTLM_USER_FILE", &accounts_path)
                    .env("NETBIOS_DOMAIN_NAME", NTLM_DOMAIN)
                    .env("NETBIOS_COMPUTER_NAME", "KERBSIDE-APACHE")
                    .env("GSSNTLMSSP_DEBUG", &ntlm_debug_log)
                    .stdin(Stdio::null())
                    .stdout(stderr.try_clone()?)
                    .stderr(stderr);
                Ok(cmd)
            },
        )?;
        Ok(SchemeApache {
            server,
            ntlm_debug_log,
        })
    }

    /// `https://localhost:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `http://localhost:PLAIN_PORT` + `path`.
    ///
    /// # Panics
    ///
    /// If the server was started without [`SchemeApacheOptions::plain_http`].
    pub fn plain_url(&self, path: &str) -> String {
        self.server.plain_url(
            path,
            "SchemeApache::plain_url needs SchemeApacheOptions { plain_http: true, .. }",
        )
    }

    /// The HTTPS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The plain-HTTP port on 127.0.0.1, with [`SchemeApacheOptions::plain_http`].
    pub fn plain_port(&self) -> Option<u16> {
        self.server.plain_port()
    }

    /// The server's temporary directory (`ServerRoot`), deleted on drop.
    pub fn dir(&self) -> &Path {
        self.server.dir()
    }

    /// The error log (auth modules at debug level), Apache's stderr and, for NTLM,
    /// gss-ntlmssp's debug log, for test failure messages.
    pub fn error_log(&self) -> String {
        self.server
            .error_log(&[("gss-ntlmssp debug log", &self.ntlm_debug_log)])
    }

    /// The access log, one line per request, in the format of
    /// [`Apache::access_log`](crate::Apache::access_log) (`auth=` is the scheme of the
    /// request's `Authorization` header: `NTLM`, `Negotiate` or `Digest`).
    pub fn access_log(&self) -> String {
        self.server.access_log()
    }

    /// The [`access_log`](Self::access_log), parsed. Apache escapes the backslash of an NTLM
    /// user in the log (`EXAMPLE\\alice`); here the user is unescaped (`EXAMPLE\alice`).
    pub fn access_entries(&self) -> Vec<AccessLogEntry> {
        self.access_log()
            .lines()
            .filter_map(AccessLogEntry::parse)
            .map(|mut entry| {
                entry.user = entry.user.map(|u| u.replace("\\\\", "\\"));
                entry
            })
            .collect()
    }
}

/// gss-ntlmssp's mechanism, registered in `/etc/gss/mech.d/mech.ntlmssp.conf`.
const NTLMSSP_MECH: &str = "/usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so";

fn scheme_modules(scheme: ApacheScheme) -> &'static [(&'static str, &'static str)] {
    match scheme {
        ApacheScheme::Ntlm => &[("auth_gssapi_module", "mod_auth_gssapi.so")],
        ApacheScheme::Digest => &[
            ("auth_digest_module", "mod_auth_digest.so"),
            ("authn_file_module", "mod_authn_file.so"),
        ],
    }
}

/// The inputs of `httpd.conf`.
struct Config<'a> {
    root: &'a Path,
    port: u16,
    plain_port: Option<u16>,
    worker: Option<&'a Worker>,
    opts: SchemeApacheOptions,
}

impl Config<'_> {
    fn render(&self) -> String {
        let root = self.root.display();
        let mut c = BaseConfig {
            root: self.root,
            port: self.port,
            plain_port: self.plain_port,
            worker: self.worker,
            log_level: match self.opts.scheme {
                ApacheScheme::Ntlm => "info auth_gssapi:debug ssl:info",
                ApacheScheme::Digest => "info auth_digest:debug ssl:info",
            },
            modules: COMMON_MODULES
                .iter()
                .chain(scheme_modules(self.opts.scheme))
                .collect(),
            workers: SMALL_WORKERS,
            cgis: "upload|whoami",
        }
        .render();
        let auth = match self.opts.scheme {
            ApacheScheme::Ntlm => format!(
                "    AuthType GSSAPI
    AuthName \"kerbside NTLM\"
    GssapiAllowedMech ntlmssp
    GssapiConnectionBound On
    GssapiBasicAuth Off
    GssapiSSLonly {ssl_only}",
                ssl_only = if self.opts.plain_http { "Off" } else { "On" }
            ),
            ApacheScheme::Digest => format!(
                "    AuthType Digest
    AuthName \"{DIGEST_REALM}\"
    AuthDigestProvider file
    AuthUserFile \"{root}/htdigest\"
    AuthDigestDomain /private/"
            ),
        };
        let _ = writeln!(
            c,
            "
<Location \"/private/\">
{auth}
    Require valid-user
    Header set X-Remote-User \"expr=%{{REMOTE_USER}}\"
</Location>"
        );
        c
    }
}
