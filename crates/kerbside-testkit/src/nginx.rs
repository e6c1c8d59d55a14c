//! [`Nginx`]: a private nginx in front of an upstream, asking a kerbside gate's
//! forward-auth endpoint about every request (`auth_request`), configured as
//! docs/forward-auth.md tells people to.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Worker;
use crate::front_proxy::{FrontProxy, Launch};
use crate::process::{self, chmod, chown, log_tails};
use crate::{sbin, TestCert};

/// The path of the auth subrequest, on nginx and on the gate.
pub const FORWARD_AUTH_PATH: &str = "/kerbside-auth";

/// How to configure an [`Nginx`].
#[derive(Debug, Clone, Copy)]
pub struct NginxOptions<'a> {
    /// The gate, `http://127.0.0.1:PORT`: its [`FORWARD_AUTH_PATH`] answers the
    /// subrequests.
    pub gate: &'a str,
    /// Where authenticated requests go, `http://127.0.0.1:PORT`.
    pub upstream: &'a str,
    /// Serve HTTPS with this certificate; plain HTTP without.
    pub cert: Option<&'a TestCert>,
}

/// A private nginx (`nginx -g 'daemon off;'`) in a temporary directory on a free
/// loopback port. Every request is first asked about with `auth_request` at the
/// gate's [`FORWARD_AUTH_PATH`] (with `X-Original-Method` and `X-Original-URI`, no
/// body); a `401` goes to the client with the gate's `WWW-Authenticate`, a `200`
/// sends the request on to the upstream with `X-Remote-User`, `X-Kerbside-User` and
/// `X-Kerbside-Groups` set from the gate's answer (whatever the client sent), and the
/// gate's final `WWW-Authenticate` token and `Set-Cookie` are added to the answer.
///
/// When the test runs as root, the workers run as `www-data` (or `nobody`).
/// Dropping the harness stops nginx and deletes its directory.
#[derive(Debug)]
pub struct Nginx {
    proxy: FrontProxy,
    error_log: PathBuf,
    access_log: PathBuf,
    stderr_log: PathBuf,
}

impl Nginx {
    /// Writes the configuration (checked with `nginx -t`), starts nginx and waits until
    /// it accepts connections. Fails with nginx's stderr and error log.
    pub fn start(opts: NginxOptions<'_>) -> io::Result<Nginx> {
        crate::check_tools(&[("nginx", "nginx")])?;
        let dir = FrontProxy::dir("kerbside-nginx-", opts.cert)?;
        let root = dir.path().to_path_buf();
        let worker = Worker::for_root();
        let owner = worker.as_ref().map(|w| w.ids);
        chmod(&root, 0o755)?;
        let temp = root.join("temp");
        fs::create_dir_all(&temp)?;
        chown(&temp, owner)?;
        let error_log = root.join("error.log");
        let access_log = root.join("access.log");
        let stderr_log = root.join("stderr.log");
        let conf_path = root.join("nginx.conf");
        let nginx = |check: bool| {
            let mut cmd = Command::new(sbin("nginx"));
            if check {
                cmd.arg("-t");
            }
            cmd.arg("-e")
                .arg(&error_log)
                .arg("-p")
                .arg(&root)
                .arg("-c")
                .arg(&conf_path);
            cmd
        };
        let proxy = FrontProxy::start(
            dir,
            opts.cert.is_some(),
            Launch {
                name: "nginx",
                config: conf_path.clone(),
                output: stderr_log.clone(),
                render: &|port| render(&root, port, worker.as_ref(), opts),
                check: &|| nginx(true),
                run: &|| nginx(false),
                logs: &|| {
                    log_tails(&[
                        ("nginx stderr", &stderr_log, 4000),
                        ("nginx error log", &error_log, 8000),
                    ])
                },
            },
        )?;
        Ok(Nginx {
            proxy,
            error_log,
            access_log,
            stderr_log,
        })
    }

    /// `http(s)://localhost:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.proxy.port()
    }

    /// The server's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.proxy.path()
    }

    /// The error log and nginx's stderr, for test failure messages.
    pub fn error_log(&self) -> String {
        process::read_logs(&self.error_log, &[("nginx stderr", &self.stderr_log)])
    }

    /// The access log (`$request $status`, one line per request).
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

/// `nginx.conf`: the forward-auth configuration of docs/forward-auth.md, with the
/// paths of a private server.
fn render(root: &Path, port: u16, worker: Option<&Worker>, opts: NginxOptions<'_>) -> String {
    let root = root.display();
    let user = worker.map_or_else(String::new, |w| format!("user {} {};\n", w.user, w.group));
    let (listen, tls) = match opts.cert {
        Some(_) => (
            format!("127.0.0.1:{port} ssl"),
            format!("        ssl_certificate {root}/cert.pem;\n        ssl_certificate_key {root}/key.pem;\n"),
        ),
        None => (format!("127.0.0.1:{port}"), String::new()),
    };
    let gate = opts.gate.trim_end_matches('/');
    let upstream = opts.upstream.trim_end_matches('/');
    format!(
        "# Written by kerbside-testkit; a private server, not the system nginx.
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    # The client's Cookie without the gate's session cookie (a credential).
    map $http_cookie $kerbside_other_cookies {{
        default $http_cookie;
        \"~^(?<before>(?:.*;\\s*)?)kerbside_session=[^;]*(?:;\\s*)?(?<after>.*)$\" \"$before$after\";
    }}
    server {{
        listen {listen};
        server_name localhost;
{tls}
        location = {FORWARD_AUTH_PATH} {{
            internal;
            proxy_pass {gate}{FORWARD_AUTH_PATH};
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }}

        location / {{
            auth_request {FORWARD_AUTH_PATH};
            auth_request_set $kerbside_principal $upstream_http_x_remote_user;
            auth_request_set $kerbside_user $upstream_http_x_kerbside_user;
            auth_request_set $kerbside_groups $upstream_http_x_kerbside_groups;
            auth_request_set $kerbside_www_authenticate $upstream_http_www_authenticate;
            auth_request_set $kerbside_set_cookie $upstream_http_set_cookie;
            proxy_set_header X-Remote-User $kerbside_principal;
            proxy_set_header X-Kerbside-User $kerbside_user;
            proxy_set_header X-Kerbside-Groups $kerbside_groups;
            proxy_set_header Authorization \"\";
            proxy_set_header Cookie $kerbside_other_cookies;
            # On a 401 nginx copies the challenge itself; on a 2xx this adds the
            # final (mutual) token.
            add_header WWW-Authenticate $kerbside_www_authenticate;
            add_header Set-Cookie $kerbside_set_cookie always;
            proxy_pass {upstream};
        }}
    }}
}}
"
    )
}
