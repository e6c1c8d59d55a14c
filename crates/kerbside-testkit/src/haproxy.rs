//! [`Haproxy`]: a private HAProxy (`haproxy -db`) on a free loopback port in TCP mode in
//! front of some gates, as docs/scale-out.md configures it: each connection to one gate
//! (the client's TLS and its NTLM or connection-bound handshake stay on it), the client's
//! address passed on with the PROXY protocol, and the gates' health endpoints checked.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::front_proxy::{FrontProxy, Launch};
use crate::process::log_tails;
use crate::sbin;

/// How a backend hears of the client: not at all, or with the PROXY protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProxy {
    /// No header: the gate sees HAProxy's address.
    Off,
    /// `send-proxy` (the text line of version 1).
    V1,
    /// `send-proxy-v2` (binary).
    V2,
}

/// One gate behind HAProxy.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether and how HAProxy sends the PROXY protocol to it.
    pub send_proxy: SendProxy,
}

/// How to configure a [`Haproxy`].
#[derive(Debug, Clone)]
pub struct HaproxyOptions {
    /// The gates, tried round-robin.
    pub backends: Vec<Backend>,
    /// Check each gate with `GET` of this path (over TLS when `tls_checks`), every
    /// 200 ms; a gate that answers anything but 200 once is taken out.
    pub health_path: Option<String>,
    /// The gates speak TLS (HAProxy passes TLS through; only its checks open TLS).
    pub tls_checks: bool,
}

/// A private HAProxy. Dropping it stops HAProxy and deletes its directory.
#[derive(Debug)]
pub struct Haproxy {
    proxy: FrontProxy,
    stats: PathBuf,
    log: PathBuf,
}

impl Haproxy {
    /// Writes the configuration (checked with `haproxy -c`), starts HAProxy and waits
    /// until it accepts connections.
    pub fn start(opts: &HaproxyOptions) -> io::Result<Haproxy> {
        crate::check_tools(&[("haproxy", "haproxy")])?;
        let dir = FrontProxy::dir("kerbside-haproxy-", None)?;
        let root = dir.path().to_path_buf();
        let conf = root.join("haproxy.cfg");
        let log = root.join("haproxy.log");
        let stats = root.join("stats.sock");
        // `haproxy -c` checks the configuration, `haproxy -db` runs in the foreground.
        let haproxy = |flag: &str| {
            let mut cmd = Command::new(sbin("haproxy"));
            cmd.arg(flag).arg("-f").arg(&conf);
            cmd
        };
        let proxy = FrontProxy::start(
            dir,
            false,
            Launch {
                name: "haproxy",
                config: conf.clone(),
                output: log.clone(),
                render: &|port| render(&root, port, opts),
                check: &|| haproxy("-c"),
                run: &|| haproxy("-db"),
                logs: &|| log_tails(&[("haproxy output", &log, 6000)]),
            },
        )?;
        // The port may answer before the stats socket is there (HAProxy binds the
        // socket under a temporary name and renames it).
        wait_for_stats(&stats)?;
        Ok(Haproxy { proxy, stats, log })
    }

    /// HAProxy as a TLS terminator in TCP mode: TLS on its port with `cert` (issued
    /// by a [`TestCa`](crate::TestCa)), the plain bytes passed to `127.0.0.1:backend`.
    /// In front of a [`Squid`](crate::Squid) it makes an `https://` proxy (Debian's
    /// Squid is built without OpenSSL, so it has no `https_port` of its own).
    pub fn tls_terminator(cert: &crate::TestCert, backend: u16) -> io::Result<Haproxy> {
        crate::check_tools(&[("haproxy", "haproxy")])?;
        let dir = FrontProxy::dir("kerbside-haproxy-tls-", None)?;
        let root = dir.path().to_path_buf();
        let pem = root.join("proxy.pem");
        fs::write(&pem, format!("{}{}", cert.cert_pem(), cert.key_pem()))?;
        let conf = root.join("haproxy.cfg");
        let log = root.join("haproxy.log");
        let stats = root.join("stats.sock");
        let haproxy = |flag: &str| {
            let mut cmd = Command::new(sbin("haproxy"));
            cmd.arg(flag).arg("-f").arg(&conf);
            cmd
        };
        let render = |port: u16| {
            format!(
                "# Written by kerbside-testkit; a private TLS terminator.
global
    stats socket {stats} mode 600 level admin
    maxconn 512
    log stderr format short local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s

listen tls
    bind 127.0.0.1:{port} ssl crt {pem}
    server backend 127.0.0.1:{backend}
",
                stats = stats.display(),
                pem = pem.display()
            )
        };
        let proxy = FrontProxy::start(
            dir,
            true,
            Launch {
                name: "haproxy",
                config: conf.clone(),
                output: log.clone(),
                render: &render,
                check: &|| haproxy("-c"),
                run: &|| haproxy("-db"),
                logs: &|| log_tails(&[("haproxy output", &log, 6000)]),
            },
        )?;
        wait_for_stats(&stats)?;
        Ok(Haproxy { proxy, stats, log })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.proxy.port()
    }

    /// HAProxy's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.proxy.pid()
    }

    /// The server's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.proxy.path()
    }

    /// HAProxy's output (its log goes to stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Each backend's status as HAProxy's checks see it (`UP`, `DOWN`, `no check`...),
    /// by backend index, read from the stats socket.
    pub fn statuses(&self) -> io::Result<Vec<String>> {
        self.stat("status")
    }

    /// One column of `show stat` (`status`, `scur` for the sessions open now, `stot` for
    /// all sessions so far, `srv_abrt`...) for each backend, by backend index, read from
    /// the stats socket.
    pub fn stat(&self, name: &str) -> io::Result<Vec<String>> {
        let mut socket = UnixStream::connect(&self.stats)?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        socket.write_all(b"show stat\n")?;
        let mut csv = String::new();
        socket.read_to_string(&mut csv)?;
        let mut lines = csv.lines();
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .ok_or_else(|| io::Error::other(format!("no stats header in {csv:?}")))?;
        let column = |name: &str| header.split(',').position(|c| c == name);
        let (sv, wanted) = column("svname")
            .zip(column(name))
            .ok_or_else(|| io::Error::other(format!("no svname/{name} in {header:?}")))?;
        let mut out = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if let (Some(server), Some(value)) = (fields.get(sv), fields.get(wanted)) {
                if let Some(i) = server
                    .strip_prefix("gate")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    if out.len() <= i {
                        out.resize(i + 1, String::new());
                    }
                    out[i] = (*value).to_owned();
                }
            }
        }
        Ok(out)
    }
}

/// `haproxy.cfg`: TCP mode, round-robin over the gates, PROXY protocol and health checks
/// as asked.
fn render(root: &Path, port: u16, opts: &HaproxyOptions) -> String {
    let root = root.display();
    let check = match &opts.health_path {
        Some(path) => format!(
            "    option httpchk\n    http-check send meth GET uri {path} ver HTTP/1.1 hdr Host localhost\n    http-check expect status 200\n"
        ),
        None => String::new(),
    };
    let mut servers = String::new();
    for (i, backend) in opts.backends.iter().enumerate() {
        let proxy = match backend.send_proxy {
            SendProxy::Off => "",
            SendProxy::V1 => " send-proxy",
            SendProxy::V2 => " send-proxy-v2",
        };
        let checks = match (&opts.health_path, backend.send_proxy, opts.tls_checks) {
            (None, _, _) => String::new(),
            (Some(_), send, tls) => format!(
                " check inter 200ms fall 1 rise 1{}{}",
                if send == SendProxy::Off {
                    ""
                } else {
                    " check-send-proxy"
                },
                if tls { " check-ssl verify none" } else { "" }
            ),
        };
        servers.push_str(&format!(
            "    server gate{i} 127.0.0.1:{}{proxy}{checks}\n",
            backend.port
        ));
    }
    format!(
        "# Written by kerbside-testkit; a private server, not the system HAProxy.
global
    stats socket {root}/stats.sock mode 600 level admin
    maxconn 512
    log stderr format short local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch

listen gates
    bind 127.0.0.1:{port}
    balance roundrobin
{check}{servers}"
    )
}

/// Waits until HAProxy's stats socket accepts a connection (10 s at most).
fn wait_for_stats(stats: &Path) -> io::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(stats) {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(io::Error::other(format!(
                    "HAProxy's stats socket {} did not accept a connection within 10 s: {e}",
                    stats.display()
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
