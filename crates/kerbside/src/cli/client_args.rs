//! Client options shared by `kerbside fetch` and `kerbside tunnel`: authentication,
//! TLS and proxies, parsed by clap and resolved into the client library's
//! [`ClientConfig`].

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use http::Uri;
use kerbside_client::{
    AuthSettings, ClientConfig, ClientCredentials, Delegation, Event, Preemptive, ProxySettings,
    TlsSettings,
};
use kerbside_proto::scheme::negotiate::client::MutualOutcome;
use kerbside_proto::{MutualAuth, PlainHttpAuth, SchemeKind, SchemePolicy, TargetNameSettings};

/// Bodies up to this size are kept in memory and replayed during a handshake.
pub const REPLAY_LIMIT: usize = 1024 * 1024;

/// Authentication, TLS and proxy options of a client.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Answer `401 Negotiate` (Kerberos through SPNEGO).
    #[arg(long, help_heading = "Authentication")]
    pub negotiate: bool,

    /// Answer NTLM (NTLMv2 only, with the user and password of -u DOMAIN\\USER:PASS or
    /// the keyring). The whole exchange runs on one HTTP/1.1 connection.
    #[arg(long, help_heading = "Authentication")]
    pub ntlm: bool,

    /// Answer Digest (RFC 7616: SHA-256, SHA-512/256; MD5 only with
    /// --allow-digest-md5).
    #[arg(long, help_heading = "Authentication")]
    pub digest: bool,

    /// Answer Basic (the password itself, merely encoded: HTTPS only unless
    /// --allow-http-auth).
    #[arg(long, help_heading = "Authentication")]
    pub basic: bool,

    /// Answer the strongest scheme the server offers (Negotiate > NTLM > Digest >
    /// Basic) that kerbside holds credentials for: Negotiate needs a Kerberos ticket
    /// (or -u with a password), the others a user name and password.
    #[arg(long, help_heading = "Authentication")]
    pub anyauth: bool,

    /// Answer Digest challenges that offer only MD5 (old servers such as Apache's
    /// mod_auth_digest). MD5 is broken; a man in the middle could strip stronger
    /// offers.
    #[arg(long, help_heading = "Authentication")]
    pub allow_digest_md5: bool,

    /// When a stronger scheme failed (wrong password, rejected ticket), answer a
    /// weaker one the server also offers. Off by default: a man in the middle could
    /// force that.
    #[arg(long, help_heading = "Authentication")]
    pub allow_downgrade: bool,

    /// With no Kerberos ticket, answer Negotiate with NTLM inside SPNEGO (as Windows
    /// does). Weaker than Kerberos, so off by default.
    #[arg(long, help_heading = "Authentication")]
    pub negotiate_ntlm: bool,

    /// Also take user names and passwords from ~/.netrc (or $NETRC) for NTLM, Digest
    /// and Basic.
    #[arg(short = 'n', long, help_heading = "Authentication")]
    pub netrc: bool,

    /// Send the Negotiate token with the first request instead of waiting for a 401
    /// (never over plain HTTP unless allowed). Without it, the client still does so
    /// for origins an earlier request of the same run learned want Negotiate.
    #[arg(long, help_heading = "Authentication")]
    pub negotiate_preemptive: bool,

    /// Mutual authentication: `required` (the server must prove itself with a final
    /// token), `optional` (check the token if sent), `off`.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "optional",
        help_heading = "Authentication"
    )]
    pub mutual: MutualAuth,

    /// Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host,
    /// or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or
    /// `HTTP/host@REALM`.
    #[arg(long, value_name = "[HOST=]NAME", help_heading = "Authentication")]
    pub spn: Vec<String>,

    /// Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker:
    /// a spoofed DNS answer then picks which service gets your ticket.
    #[arg(long, help_heading = "Authentication")]
    pub spn_canonicalize: bool,

    /// Put a non-default port into the service name (`HTTP/host:port`).
    #[arg(long, help_heading = "Authentication")]
    pub spn_port: bool,

    /// Forward your ticket-granting ticket: `none` (default), `policy` (only to
    /// services the KDC marks ok-as-delegate), `always`.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "none",
        help_heading = "Authentication"
    )]
    pub delegation: DelegationArg,

    /// Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on
    /// HTTPS; `off` for servers that reject it.
    #[arg(
        long,
        value_enum,
        value_name = "ON|OFF",
        default_value = "on",
        help_heading = "Authentication"
    )]
    pub channel_binding: Switch,

    /// Give up after this many 401 responses to one request.
    #[arg(
        long,
        value_name = "N",
        default_value = "4",
        help_heading = "Authentication"
    )]
    pub max_auth_rounds: u32,

    /// Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the
    /// principal given with -u or the keytab's first.
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub keytab: Option<PathBuf>,

    /// User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos
    /// principal; its ticket is used if the cache has one, else the password gets one
    /// (asked for on the terminal when not given). `-u :` means "my ticket", as in curl.
    /// With NTLM, Digest and Basic: the user name (`DOMAIN\\USER` for NTLM; such a
    /// name is never taken for a Kerberos principal) and password. Without -u, the
    /// keyring file ($KERBSIDE_KEYRING, else ~/.config/kerbside/keyring.toml; refused
    /// unless mode 600) may hold a password for the host (for Negotiate, used only
    /// when there is no ticket), or for NTLM only its NT hash (`kerbside nt-hash`).
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER[:PASSWORD]",
        help_heading = "Authentication"
    )]
    pub user: Option<String>,

    /// Allow credentials over plain http://: for the URL's host, or with `=HOST` for
    /// that host (repeatable). Anyone on the network path can then steal or replay
    /// them.
    #[arg(
        long = "allow-http-auth",
        value_name = "HOST",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        help_heading = "Authentication"
    )]
    pub allow_http_auth: Vec<String>,

    /// Do not verify the server's TLS certificate (the connection is then open to a man
    /// in the middle).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Trust only the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Use HTTP/1.1 only (by default HTTP/2 is offered on TLS).
    #[arg(long = "http1.1")]
    pub http1_1: bool,

    /// Give up connecting after SECS seconds (fractions allowed, e.g. 0.5): name
    /// lookup, TCP connect, a proxy's CONNECT and the TLS handshake. Default 30; 0
    /// means the default.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, help_heading = "Timeouts")]
    pub connect_timeout: Option<std::time::Duration>,

    /// Give up on the whole transfer after SECS seconds (fractions allowed):
    /// connecting, every authentication leg, the response and its body. Default: no
    /// limit (0 too). The exit status of a timeout is 28, as curl's.
    #[arg(
        short = 'm',
        long,
        value_name = "SECS",
        value_parser = parse_seconds,
        help_heading = "Timeouts"
    )]
    pub max_time: Option<std::time::Duration>,

    /// Go through this proxy (`http://host:port` or `host:port`, or
    /// `https://host:port` for TLS to the proxy, checked with --proxy-cacert);
    /// `https://` URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate`
    /// is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain
    /// HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`,
    /// `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` from the environment, as
    /// curl reads them (upper-case `HTTP_PROXY` is never read: under CGI it is the
    /// client's `Proxy:` header).
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Proxy")]
    pub proxy: Vec<String>,

    /// Trust only the CA certificates in this PEM file for an `https://` proxy's
    /// certificate (curl's --proxy-cacert). Default: the system's roots (--cacert is
    /// for the server, not the proxy).
    #[arg(long, value_name = "FILE", help_heading = "Proxy")]
    pub proxy_cacert: Option<PathBuf>,

    /// Hosts to reach without the proxy, comma-separated: names (with their
    /// subdomains), IP addresses, CIDR ranges, `*` for all; default `no_proxy` or
    /// `NO_PROXY` from the environment.
    #[arg(long, value_name = "LIST", help_heading = "Proxy")]
    pub noproxy: Option<String>,
}

/// `--delegation`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DelegationArg {
    /// Never forward the ticket-granting ticket.
    None,
    /// Only to services the KDC marks ok-as-delegate.
    Policy,
    /// Always.
    Always,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl ClientArgs {
    /// The schemes the options enable.
    pub fn schemes(&self) -> Vec<SchemeKind> {
        schemes(self)
    }

    /// Resolves the options into a client configuration; `uri` is the URL the
    /// user named (its host is the default for `--allow-http-auth`).
    pub fn config(&self, uri: &Uri) -> Result<ClientConfig, String> {
        let login = login(self)?;
        let mut credentials = kerberos_credentials(self, &login);
        let enabled = schemes(self);
        let wants_passwords = enabled.iter().any(|k| *k != SchemeKind::Negotiate);
        let mut sources = if wants_passwords || enabled.contains(&SchemeKind::Negotiate) {
            kerbside_client::CredentialSources::load_default_with(self.netrc)
                .map_err(|e| e.to_string())?
        } else {
            kerbside_client::CredentialSources::new()
        };
        if let (Some(user), Some(password)) = (&login.user, &login.password) {
            sources = sources.with_command_line(user.clone(), password.clone());
        }
        if credentials == ClientCredentials::Default
            && login.user.is_none()
            && enabled.contains(&SchemeKind::Negotiate)
        {
            // No -u and no --keytab: a Kerberos password for this host from the keyring
            // file, used only when there is no ticket.
            // An NT-hash entry cannot get a ticket: the ticket cache is used, and -v
            // says why no password was.
            if let Some(found) =
                sources.lookup(uri.host().unwrap_or_default(), None, SchemeKind::Negotiate)
            {
                match found.password(SchemeKind::Negotiate, uri.host().unwrap_or_default()) {
                    Ok(password) => {
                        credentials = ClientCredentials::Password {
                            principal: found.user.to_owned(),
                            password: password.to_owned(),
                        };
                    }
                    Err(e) => tracing::debug!("no Kerberos password from the keyring: {e}"),
                }
            }
        }
        // Given more than once, the last one counts (as curl).
        let mut proxy = match self.proxy.last() {
            Some(p) => {
                ProxySettings::all(kerbside_client::parse_proxy(p).map_err(|e| e.to_string())?)
            }
            None => ProxySettings::from_env(),
        };
        if let Some(list) = &self.noproxy {
            proxy.no_proxy = kerbside_client::split_list(list);
        }
        Ok(ClientConfig {
            proxy,
            tls: TlsSettings {
                ca_file: self.cacert.clone(),
                insecure: self.insecure,
            },
            proxy_tls: TlsSettings {
                ca_file: self.proxy_cacert.clone(),
                insecure: false,
            },
            auth: AuthSettings {
                schemes: SchemePolicy {
                    enabled,
                    allow_downgrade: self.allow_downgrade,
                    plain_http: plain_http_policy(&self.allow_http_auth, uri),
                },
                mutual: self.mutual,
                target: target_settings(self),
                delegation: match self.delegation {
                    DelegationArg::None => Delegation::None,
                    DelegationArg::Policy => Delegation::Policy,
                    DelegationArg::Always => Delegation::Always,
                },
                credentials,
                channel_binding: self.channel_binding == Switch::On,
                preemptive: if self.negotiate_preemptive {
                    Preemptive::Always
                } else {
                    Preemptive::Learned
                },
                max_auth_rounds: self.max_auth_rounds,
                passwords: sources,
                allow_digest_md5: self.allow_digest_md5,
                ntlm_in_negotiate: self.negotiate_ntlm,
                ..AuthSettings::default()
            },
            http2: !self.http1_1,
            replay_limit: REPLAY_LIMIT,
            connect_timeout: Some(
                self.connect_timeout
                    .filter(|d| !d.is_zero())
                    .unwrap_or(kerbside_client::DEFAULT_CONNECT_TIMEOUT),
            ),
            timeout: self.max_time.filter(|d| !d.is_zero()),
            ..ClientConfig::default()
        })
    }
}

/// Seconds as curl takes them: a non-negative number, fractions allowed (`0.5`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (such as 10 or 0.5)"))?;
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a number of seconds (such as 10 or 0.5)"))
}

fn plain_http_policy(args: &[String], uri: &Uri) -> PlainHttpAuth {
    if args.is_empty() {
        return PlainHttpAuth::Refuse;
    }
    PlainHttpAuth::Hosts(
        args.iter()
            .map(|h| match h.as_str() {
                "" => uri.host().unwrap_or_default().to_owned(),
                h => h.to_owned(),
            })
            .collect(),
    )
}

fn schemes(args: &ClientArgs) -> Vec<SchemeKind> {
    if args.anyauth {
        return SchemeKind::ALL.to_vec();
    }
    let mut v = Vec::new();
    if args.negotiate || args.negotiate_preemptive {
        v.push(SchemeKind::Negotiate);
    }
    if args.ntlm {
        v.push(SchemeKind::Ntlm);
    }
    if args.digest {
        v.push(SchemeKind::Digest);
    }
    if args.basic {
        v.push(SchemeKind::Basic);
    }
    v
}

/// The user name and password of `-u`, the password asked for on the terminal when
/// a scheme needs one and it was left out.
struct Login {
    user: Option<String>,
    password: Option<String>,
}

fn login(args: &ClientArgs) -> Result<Login, String> {
    let (user, password) = match args.user.as_deref() {
        None | Some(":") | Some("") => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
            None => (Some(u.to_owned()), None),
        },
    };
    let Some(user) = user else {
        return Ok(Login {
            user: None,
            password: None,
        });
    };
    if password.is_some() || args.keytab.is_some() {
        return Ok(Login {
            user: Some(user),
            password,
        });
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "-u {user} needs a password: give -u {user}:PASSWORD or run on a terminal"
        ));
    }
    let password = rpassword::prompt_password(format!("Password for {user}: "))
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(Login {
        user: Some(user),
        password: Some(password),
    })
}

/// Where Kerberos credentials come from: the keytab, the password of -u for its
/// principal, or the ticket cache. `DOMAIN\USER` is an NTLM name, never a principal.
fn kerberos_credentials(args: &ClientArgs, login: &Login) -> ClientCredentials {
    let user = login.user.clone().filter(|u| !u.contains('\\'));
    if let Some(path) = &args.keytab {
        return ClientCredentials::Keytab {
            path: path.clone(),
            principal: user,
        };
    }
    match (user, &login.password) {
        (Some(principal), Some(password)) => ClientCredentials::Password {
            principal,
            password: password.clone(),
        },
        _ => ClientCredentials::Default,
    }
}

fn target_settings(args: &ClientArgs) -> TargetNameSettings {
    TargetNameSettings {
        overrides: args
            .spn
            .iter()
            .map(|s| match s.split_once('=') {
                Some((host, name)) => (host.to_owned(), name.to_owned()),
                None => ("*".to_owned(), s.clone()),
            })
            .collect(),
        canonicalize: args.spn_canonicalize,
        include_port: args.spn_port,
    }
}

/// Prints an [`Event`] the way `-v` shows it.
pub fn verbose(event: &Event) {
    let mut err = std::io::stderr().lock();
    let _ = match event {
        Event::Connecting { host, port, tls } => writeln!(
            err,
            "* Connecting to {host} port {port}{}",
            if *tls { " (TLS)" } else { " (plain HTTP)" }
        ),
        Event::Connected {
            conn,
            peer,
            protocol,
        } => writeln!(err, "* Connected to {peer}, connection #{conn}, {protocol}"),
        Event::Reusing {
            conn,
            authenticated,
        } => writeln!(
            err,
            "* Reusing connection #{conn}{}",
            if *authenticated { " (authenticated)" } else { "" }
        ),
        Event::Request {
            conn,
            line,
            headers,
        } => {
            let _ = writeln!(err, "> [#{conn}] {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "> {n}: {v}");
            }
            writeln!(err, ">")
        }
        Event::Response {
            conn,
            line,
            headers,
        } => {
            let _ = writeln!(err, "< [#{conn}] {line}");
            for (n, v) in headers {
                let _ = writeln!(err, "< {n}: {v}");
            }
            writeln!(err, "<")
        }
        Event::Scheme {
            proxy,
            scheme,
            scheme_reason,
            target,
            target_reason,
            channel_binding,
        } if scheme != "Negotiate" => writeln!(
            err,
            "* Answering {} with {scheme} ({scheme_reason})\n* As user {target} ({target_reason}){}",
            if *proxy { "the proxy" } else { "the server" },
            if *channel_binding {
                "; TLS channel binding passed"
            } else {
                ""
            }
        ),
        Event::Scheme {
            proxy,
            scheme,
            scheme_reason,
            target,
            target_reason,
            channel_binding,
        } => writeln!(
            err,
            "* Answering {} with {scheme} ({scheme_reason})\n* Kerberos target {target} ({target_reason}){}",
            if *proxy { "the proxy" } else { "the server" },
            if *channel_binding {
                "; TLS channel binding passed"
            } else {
                ""
            }
        ),
        Event::Authenticated {
            proxy,
            scheme,
            mutual,
            legs,
            connection_bound,
        } => writeln!(
            err,
            "* {scheme} {}done after {legs} message(s); {}{}",
            if *proxy { "with the proxy " } else { "" },
            match (scheme.as_str(), mutual) {
                ("Negotiate", MutualOutcome::Verified) => {
                    "mutual authentication: server verified"
                }
                ("Negotiate", MutualOutcome::NotSent) => {
                    "mutual authentication: server sent no final token"
                }
                ("Negotiate", MutualOutcome::NotChecked) => {
                    "mutual authentication: not checked (--mutual off)"
                }
                ("NTLM", _) => "NTLM does not authenticate the server",
                _ => "the server took the password",
            },
            if *connection_bound {
                "; the connection stays authenticated"
            } else {
                ""
            }
        ),
        Event::Proxy { host, port, tunnel } => writeln!(
            err,
            "* Through proxy {host}:{port}{}",
            if *tunnel { " (CONNECT tunnel)" } else { "" }
        ),
        Event::Notice { message } => writeln!(err, "* {message}"),
        Event::Retrying { reason } => writeln!(err, "* Starting over on a new connection: {reason}"),
        _ => Ok(()),
    };
}
