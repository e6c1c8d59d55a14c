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

    /// Answer NTLM (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub ntlm: bool,

    /// Answer Digest (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub digest: bool,

    /// Answer Basic (not implemented yet: refused with a message).
    #[arg(long, help_heading = "Authentication")]
    pub basic: bool,

    /// Answer the strongest scheme the server offers (Negotiate > NTLM > Digest >
    /// Basic) that kerbside can use.
    #[arg(long, help_heading = "Authentication")]
    pub anyauth: bool,

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
    /// Without -u, the keyring file ($KERBSIDE_KEYRING, else
    /// ~/.config/kerbside/keyring.toml; refused unless mode 600) may hold a password
    /// for the host, used only when there is no ticket.
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

    /// Go through this HTTP proxy (`http://host:port` or `host:port`); `https://`
    /// URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate`
    /// is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain
    /// HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`,
    /// `https_proxy`, `all_proxy` from the environment.
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Proxy")]
    pub proxy: Option<String>,

    /// Hosts to reach without the proxy, comma-separated (`*` for all); default
    /// `no_proxy` from the environment.
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
        let mut credentials = credentials(self)?;
        if credentials == ClientCredentials::Default
            && schemes(self).contains(&SchemeKind::Negotiate)
        {
            // No -u and no --keytab: a Kerberos password for this host from the keyring
            // file, used only when there is no ticket.
            let sources =
                kerbside_client::CredentialSources::load_default().map_err(|e| e.to_string())?;
            if let Some(found) =
                sources.lookup(uri.host().unwrap_or_default(), None, SchemeKind::Negotiate)
            {
                credentials = ClientCredentials::Password {
                    principal: found.user.to_owned(),
                    password: found.password.to_owned(),
                };
            }
        }
        let mut proxy = match &self.proxy {
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
            auth: AuthSettings {
                schemes: SchemePolicy {
                    enabled: schemes(self),
                    allow_downgrade: false,
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
                ..AuthSettings::default()
            },
            http2: !self.http1_1,
            replay_limit: REPLAY_LIMIT,
            ..ClientConfig::default()
        })
    }
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

fn credentials(args: &ClientArgs) -> Result<ClientCredentials, String> {
    let (user, password) = match args.user.as_deref() {
        None | Some(":") | Some("") => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
            None => (Some(u.to_owned()), None),
        },
    };
    if let Some(path) = &args.keytab {
        return Ok(ClientCredentials::Keytab {
            path: path.clone(),
            principal: user,
        });
    }
    match (user, password) {
        (None, _) => Ok(ClientCredentials::Default),
        (Some(principal), Some(password)) => Ok(ClientCredentials::Password {
            principal,
            password,
        }),
        (Some(principal), None) => {
            if !std::io::stdin().is_terminal() {
                return Err(format!(
                    "-u {principal} needs a password: give -u {principal}:PASSWORD or run on a terminal"
                ));
            }
            let password = rpassword::prompt_password(format!("Password for {principal}: "))
                .map_err(|e| format!("cannot read the password: {e}"))?;
            Ok(ClientCredentials::Password {
                principal,
                password,
            })
        }
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
            mutual,
            legs,
            connection_bound,
        } => writeln!(
            err,
            "* Negotiate {}done after {legs} token(s); mutual authentication: {}{}",
            if *proxy { "with the proxy " } else { "" },
            match mutual {
                MutualOutcome::Verified => "server verified",
                MutualOutcome::NotSent => "server sent no final token",
                MutualOutcome::NotChecked => "not checked (--mutual off)",
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
        Event::Retrying { reason } => writeln!(err, "* Starting over on a new connection: {reason}"),
        _ => Ok(()),
    };
}
