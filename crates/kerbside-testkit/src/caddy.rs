//! [`Caddy`]: a private Caddy in front of an upstream, asking a kerbside gate's
//! forward-auth endpoint about every request (`forward_auth`), configured as
//! docs/forward-auth.md tells people to.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::front_proxy::{FrontProxy, Launch};
use crate::process::{chmod, log_tails};
use crate::TestCert;

/// The path of the gate's forward-auth endpoint that Caddy asks.
pub const CADDY_FORWARD_AUTH_PATH: &str = "/kerbside-auth";

/// How to configure a [`Caddy`].
#[derive(Debug, Clone, Copy)]
pub struct CaddyOptions<'a> {
    /// The gate, `http://127.0.0.1:PORT`: its [`CADDY_FORWARD_AUTH_PATH`] answers.
    pub gate: &'a str,
    /// Where authenticated requests go, `http://127.0.0.1:PORT`.
    pub upstream: &'a str,
    /// Serve HTTPS with this certificate; plain HTTP without.
    pub cert: Option<&'a TestCert>,
    /// With a gate at `https://127.0.0.1:PORT`: the CA (PEM) its certificate is
    /// checked against (the name checked is `localhost`).
    pub gate_ca: Option<&'a Path>,
}

/// A private Caddy (`caddy run` with a Caddyfile) in a temporary directory (its
/// `HOME` and `XDG_*` too) on a free loopback port, admin endpoint off. Every request
/// is first sent to the gate's [`CADDY_FORWARD_AUTH_PATH`] as `forward_auth` would
/// (`X-Forwarded-Method`, `X-Forwarded-Uri`; spelled out, so that the gate's final
/// token and `Set-Cookie` reach the client); anything but a 2xx goes back to the
/// client as the gate gave it; a 2xx sends the request on to the upstream with
/// `X-Remote-User` from the gate's answer (the client's own copies of it and of
/// `X-Kerbside-User`/`X-Kerbside-Groups`, in any spelling, removed first), without
/// `Authorization` and the gate's session cookie.
#[derive(Debug)]
pub struct Caddy {
    proxy: FrontProxy,
    log: PathBuf,
}

impl Caddy {
    /// Writes the Caddyfile (checked with `caddy validate`), starts Caddy and waits
    /// until it accepts connections. Fails with Caddy's log.
    pub fn start(opts: CaddyOptions<'_>) -> io::Result<Caddy> {
        crate::check_tools(&[("caddy", "caddy")])?;
        let dir = FrontProxy::dir("kerbside-caddy-", opts.cert)?;
        let root = dir.path().to_path_buf();
        chmod(&root, 0o700)?;
        let log = root.join("caddy.log");
        let conf_path = root.join("Caddyfile");
        // `caddy validate` or `caddy run`, at home in the temporary directory.
        let caddy = |verb: &str| {
            let mut cmd = Command::new("caddy");
            cmd.arg(verb)
                .arg("--adapter")
                .arg("caddyfile")
                .arg("--config")
                .arg(&conf_path)
                .env("HOME", &root)
                .env("XDG_DATA_HOME", root.join("data"))
                .env("XDG_CONFIG_HOME", root.join("config"));
            cmd
        };
        let proxy = FrontProxy::start(
            dir,
            opts.cert.is_some(),
            Launch {
                name: "caddy",
                config: conf_path.clone(),
                output: log.clone(),
                render: &|port| render(&root, port, opts),
                check: &|| caddy("validate"),
                run: &|| caddy("run"),
                logs: &|| log_tails(&[("caddy log", &log, 8000)]),
            },
        )?;
        Ok(Caddy { proxy, log })
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

    /// Caddy's log, for test failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The Caddyfile: the forward-auth configuration of docs/forward-auth.md.
fn render(root: &Path, port: u16, opts: CaddyOptions<'_>) -> String {
    let root = root.display();
    let gate = opts
        .gate
        .trim_end_matches('/')
        .trim_start_matches("http://");
    let gate_tls = match opts.gate_ca {
        Some(ca) => format!(
            "\t\t\ttransport http {{\n\t\t\t\ttls_trusted_ca_certs {}\n\t\t\t\ttls_server_name localhost\n\t\t\t}}\n",
            ca.display()
        ),
        None => String::new(),
    };
    let upstream = opts
        .upstream
        .trim_end_matches('/')
        .trim_start_matches("http://");
    let (site, tls) = match opts.cert {
        Some(_) => (
            format!("https://localhost:{port}"),
            format!("\ttls {root}/cert.pem {root}/key.pem\n"),
        ),
        None => (format!("http://localhost:{port}"), String::new()),
    };
    format!(
        "# Written by kerbside-testkit; a private server, not the system Caddy.
{{
\tadmin off
\tauto_https off
\tstorage file_system {root}/data
}}
{site} {{
\tbind 127.0.0.1
{tls}\t# In this order (forward_auth would run before request_header): the client's
\t# identity headers, in any spelling, go; the gate's answer sets them.
\troute {{
\t\trequest_header -X-Remote-User
\t\trequest_header -X_Remote_User
\t\trequest_header -X-Kerbside-User
\t\trequest_header -X_Kerbside_User
\t\trequest_header -X-Kerbside-Groups
\t\trequest_header -X_Kerbside_Groups
\t\t# forward_auth, spelled out: Caddy 2.6's forward_auth copies nothing of a 2xx
\t\t# answer to the client, and sets a header the gate did not send to the
\t\t# placeholder's text; these blocks copy what is there. A non-2xx answer goes
\t\t# to the client as it is.
\t\treverse_proxy {gate} {{
{gate_tls}\t\t\tmethod GET
\t\t\trewrite {CADDY_FORWARD_AUTH_PATH}
\t\t\theader_up X-Forwarded-Method {{method}}
\t\t\theader_up X-Forwarded-Uri {{uri}}
\t\t\t@cookie_and_token {{
\t\t\t\tstatus 2xx
\t\t\t\theader Set-Cookie *
\t\t\t\theader WWW-Authenticate *
\t\t\t}}
\t\t\thandle_response @cookie_and_token {{
\t\t\t\trequest_header X-Remote-User {{rp.header.X-Remote-User}}
\t\t\t\theader Set-Cookie {{rp.header.Set-Cookie}}
\t\t\t\theader WWW-Authenticate {{rp.header.Www-Authenticate}}
\t\t\t}}
\t\t\t@cookie {{
\t\t\t\tstatus 2xx
\t\t\t\theader Set-Cookie *
\t\t\t}}
\t\t\thandle_response @cookie {{
\t\t\t\trequest_header X-Remote-User {{rp.header.X-Remote-User}}
\t\t\t\theader Set-Cookie {{rp.header.Set-Cookie}}
\t\t\t}}
\t\t\t@token {{
\t\t\t\tstatus 2xx
\t\t\t\theader WWW-Authenticate *
\t\t\t}}
\t\t\thandle_response @token {{
\t\t\t\trequest_header X-Remote-User {{rp.header.X-Remote-User}}
\t\t\t\theader WWW-Authenticate {{rp.header.Www-Authenticate}}
\t\t\t}}
\t\t\t@ok status 2xx
\t\t\thandle_response @ok {{
\t\t\t\trequest_header X-Remote-User {{rp.header.X-Remote-User}}
\t\t\t}}
\t\t}}
\t\treverse_proxy {upstream} {{
\t\t\theader_up -Authorization
\t\t\theader_up Cookie \"(^|[;\\s])kerbside_session=[^;]*;?\\s*\" \"$1\"
\t\t}}
\t}}
}}
"
    )
}
