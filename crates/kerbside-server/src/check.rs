//! `kerbside gate --check`: validates a configuration without serving, and, given a
//! test principal, performs a whole Kerberos round trip (KDC, service ticket, keytab)
//! so an operator learns in plain words what is wrong before users do.

use std::time::Duration;

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, ClientCredentials, Delegation, GssError, InitiatorConfig,
    NegotiateAcceptor, NegotiateInitiator, ReplayCheck,
};
use kerbside_proto::{Mechanism, MutualAuth, Step};

use crate::gate::{GateConfig, MountTarget};
use crate::proxy::IdentitySigner;

/// A client to test the keytab with.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The service name a client would ask a ticket for, e.g. `HTTP@www.example.com`.
    pub service: String,
    /// The test client's credentials (a keytab, a password, or a ticket cache).
    pub credentials: ClientCredentials,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// True if this part is fine.
    pub ok: bool,
    /// What was checked and what came out, in words.
    pub text: String,
}

/// All findings of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// In the order checked.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    fn ok(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            text: text.into(),
        });
    }

    fn problem(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: false,
            text: text.into(),
        });
    }

    /// True if nothing is wrong.
    pub fn all_ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for finding in &self.findings {
            writeln!(
                f,
                "{} {}",
                if finding.ok { "ok:     " } else { "PROBLEM:" },
                finding.text
            )?;
        }
        Ok(())
    }
}

/// Checks `config` (keytab, TLS material, keys, mounts) and, with a probe, a full
/// Kerberos round trip. Blocking: it reads files and may talk to the KDC.
pub fn check(config: &GateConfig, probe: Option<&Probe>) -> CheckReport {
    let mut report = CheckReport::default();
    let keytab_name = config
        .keytab
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "KRB5_KTNAME or the system keytab".to_owned());
    let acceptor = match usable_acceptor(config) {
        Ok(a) => {
            report.ok(format!(
                "keytab {keytab_name} holds usable keys{}",
                config
                    .acceptor
                    .as_ref()
                    .map(|n| format!(" for {n}"))
                    .unwrap_or_default()
            ));
            Some(a)
        }
        Err(e) => {
            report.problem(keytab_problem(config, &e));
            None
        }
    };
    match &config.tls {
        Some((cert, key)) => match crate::tls::load_server_config(cert, key) {
            Ok(_) => report.ok(format!(
                "TLS certificate {} and key {} load and match",
                cert.display(),
                key.display()
            )),
            Err(e) => report.problem(e.to_string()),
        },
        None => report.problem(
            "no TLS: tokens, cookies and identities would travel unprotected (give --tls-cert and --tls-key)",
        ),
    }
    if let Some(path) = &config.session_key {
        match std::fs::metadata(path) {
            Ok(_) => match crate::session::SessionKeys::load_or_create(path) {
                Ok(_) => report.ok(format!("session key {} is usable", path.display())),
                Err(e) => report.problem(format!("session key {}: {e}", path.display())),
            },
            Err(_) => report.ok(format!(
                "session key {} does not exist yet; it will be created (mode 0600) at start",
                path.display()
            )),
        }
    }
    if let Some(path) = &config.identity_key {
        match IdentitySigner::load(path) {
            Ok(_) => report.ok(format!("identity key {} is usable", path.display())),
            Err(e) => report.problem(e.to_string()),
        }
    }
    for mount in &config.mounts {
        match &mount.target {
            MountTarget::Proxy(upstream) => {
                let host = upstream.host().unwrap_or("");
                let port = upstream.port_u16().unwrap_or(80);
                let reachable = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .map(|addr| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()
                    })
                    .unwrap_or(false);
                if reachable {
                    report.ok(format!("{} -> upstream {upstream} answers", mount.prefix));
                } else {
                    report.problem(format!(
                        "{} -> upstream {upstream} does not accept connections (is it running?)",
                        mount.prefix
                    ));
                }
            }
            MountTarget::Cgi(cgi) => match crate::cgi::CgiService::new(cgi.clone()) {
                Ok(_) => report.ok(format!(
                    "{} -> CGI {} is executable",
                    mount.prefix,
                    cgi.program.display()
                )),
                Err(e) => report.problem(format!("{} -> {e}", mount.prefix)),
            },
            MountTarget::ForwardAuth => match crate::forward_auth::check_mode(config) {
                Ok(()) => report.ok(format!(
                    "{} -> forward-auth endpoint for front proxies at {:?}",
                    mount.prefix, config.forward_auth.trusted
                )),
                Err(e) => report.problem(format!("{} -> {e}", mount.prefix)),
            },
        }
    }
    match (probe, &acceptor) {
        (Some(probe), Some(acceptor)) => round_trip(&mut report, probe, acceptor),
        (Some(_), None) => {
            report.problem("no Kerberos round trip: the keytab is not usable (see above)")
        }
        (None, _) => report.ok(
            "no test principal given: pass --check-principal (with --check-keytab or --check-password-file) for a full Kerberos round trip",
        ),
    }
    report
}

/// The acceptor the gate serves with, or why it cannot serve: a gate whose keytab
/// holds no key for its service would answer every client `401`, so it does not
/// start. A configuration with password users files (NTLM, Digest, Basic) and no
/// keytab named (`--keytab`) starts without Kerberos, with a warning; a keytab
/// that was named must work.
pub fn startup_acceptor(
    config: &GateConfig,
) -> Result<Option<NegotiateAcceptor>, crate::SetupError> {
    match usable_acceptor(config) {
        Ok(acceptor) => Ok(Some(acceptor)),
        Err(e) => {
            let passwords = config.ntlm_users.is_some()
                || config.digest_users.is_some()
                || config.basic_users.is_some();
            if passwords && config.keytab.is_none() && config.basic_fallback.is_none() {
                tracing::warn!(
                    "Kerberos (Negotiate) is off: {}; only the password schemes are offered",
                    keytab_problem(config, &e)
                );
                Ok(None)
            } else {
                Err(keytab_problem(config, &e).into())
            }
        }
    }
}

/// Acceptor credentials that surely come from the keytab: first acquired the strict
/// way (Kerberos only, no fallback to other mechanisms, which need no keytab and
/// would hide a missing one), then as the gate uses them.
fn usable_acceptor(config: &GateConfig) -> Result<NegotiateAcceptor, GssError> {
    let acceptor_config = AcceptorConfig {
        keytab: config.keytab.clone(),
        acceptor_name: config.acceptor.clone(),
    };
    NegotiateAcceptor::with_replay_check(&acceptor_config, ReplayCheck::Off)?;
    NegotiateAcceptor::new(&acceptor_config)
}

/// The keytab the gate reads: `--keytab`, else `KRB5_KTNAME`, else MIT's default.
fn keytab_path(config: &GateConfig) -> String {
    match &config.keytab {
        Some(path) => path.display().to_string(),
        None => match std::env::var("KRB5_KTNAME") {
            Ok(name) => name
                .strip_prefix("FILE:")
                .or_else(|| name.strip_prefix("WRFILE:"))
                .unwrap_or(&name)
                .to_owned(),
            Err(_) => "/etc/krb5.keytab".to_owned(),
        },
    }
}

/// The service principal the gate needs a key for, as kadmin writes it
/// (`HTTP@host` becomes `HTTP/host`).
fn wanted_principal(config: &GateConfig) -> String {
    match &config.acceptor {
        Some(name) if !name.contains('/') => match name.split_once('@') {
            Some((service, host)) => format!("{service}/{host}"),
            None => name.clone(),
        },
        Some(name) => name.clone(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "<host>".to_owned());
            format!("HTTP/{host}")
        }
    }
}

/// Why the keytab cannot serve, in words that name it, the principal it lacks, and
/// what to do.
fn keytab_problem(config: &GateConfig, error: &GssError) -> String {
    let path = keytab_path(config);
    let principal = wanted_principal(config);
    let what = match std::fs::metadata(&path) {
        Err(_) => format!("the keytab {path} does not exist (or cannot be read)"),
        // A keytab file starts with a 2-byte version; entries follow.
        Ok(meta) if meta.len() <= 2 => format!("the keytab {path} holds no keys"),
        Ok(_) => match &config.acceptor {
            Some(_) => format!("the keytab {path} holds no key for {principal}"),
            None => format!("the keytab {path} holds no usable key"),
        },
    };
    format!(
        "cannot authenticate anyone: {what}. Export the service key into it \
         (kadmin: ktadd -k {path} {principal}), give the right file with --keytab, \
         or name the principal it holds with --acceptor; --auth none serves without \
         authentication. [{error}]"
    )
}

fn round_trip(report: &mut CheckReport, probe: &Probe, acceptor: &NegotiateAcceptor) {
    let config = InitiatorConfig {
        target: probe.service.clone(),
        mutual: MutualAuth::Required,
        delegation: Delegation::None,
        credentials: probe.credentials.clone(),
        channel_bindings: None,
    };
    let who = match &probe.credentials {
        ClientCredentials::Keytab {
            principal: Some(p), ..
        }
        | ClientCredentials::Password { principal: p, .. }
        | ClientCredentials::FreshPassword { principal: p, .. } => p.clone(),
        _ => "the test client".to_owned(),
    };
    let token = NegotiateInitiator::new(&config).and_then(|mut init| {
        let token = match init.step(None)? {
            Step::Continue(t) | Step::Done(Some(t)) => t,
            Step::Done(None) => Vec::new(),
        };
        Ok((init, token))
    });
    let (mut initiator, token) = match token {
        Ok(pair) => {
            report.ok(format!(
                "{who} got a service ticket for {} from the KDC",
                probe.service
            ));
            pair
        }
        Err(e) => {
            report.problem(format!(
                "{who} could not get a ticket for {}: {e}",
                probe.service
            ));
            return;
        }
    };
    match acceptor.accept(&token) {
        Ok(AcceptStep::Done {
            principal,
            token: Some(final_token),
            ..
        }) => {
            report.ok(format!(
                "the keytab opened the ticket: {principal} would be let in"
            ));
            match initiator.step(Some(&final_token)) {
                Ok(Step::Done(None)) => {
                    report.ok("mutual authentication: the client verified the gate's answer")
                }
                Ok(_) | Err(_) => report.problem(
                    "the client could not verify the gate's final token (mutual authentication)",
                ),
            }
        }
        Ok(AcceptStep::Done { principal, .. }) => report.ok(format!(
            "the keytab opened the ticket: {principal} would be let in (no final token)"
        )),
        Ok(AcceptStep::Continue(_)) => {
            report.problem("the exchange wants more than one leg, which is unexpected for Kerberos")
        }
        Err(e) => report.problem(format!("the gate would refuse {who}: {e}")),
    }
}
