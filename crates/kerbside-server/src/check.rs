//! `kerbside gate --check`: validates a configuration without serving, and, given a
//! test principal, performs a whole Kerberos round trip (KDC, service ticket, keytab)
//! so an operator learns in plain words what is wrong before users do.
//!
//! The keytab is looked at entry by entry ([`keytab`]: kvno at the KDC, weak keys, the
//! file's mode), and the names it has keys for are compared with the TLS certificate's
//! ([`names`]).

mod keytab;
mod names;

use std::time::Duration;

use kerbside_gssapi::{
    AcceptStep, ClientCredentials, Delegation, InitiatorConfig, NegotiateAcceptor,
    NegotiateInitiator,
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

impl Probe {
    /// Who the test client is, for the report.
    fn who(&self) -> String {
        match &self.credentials {
            ClientCredentials::Keytab {
                principal: Some(p), ..
            }
            | ClientCredentials::Password { principal: p, .. }
            | ClientCredentials::FreshPassword { principal: p, .. } => p.clone(),
            _ => "the test client".to_owned(),
        }
    }
}

/// How a finding bears on serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// This part is fine.
    Ok,
    /// It works today, but should be fixed (weak keys, a keytab others can read, a name
    /// the certificate lacks).
    Warning,
    /// Users will be refused (or exposed) until it is fixed.
    Problem,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Fine, a warning, or a problem.
    pub level: Level,
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
    fn push(&mut self, level: Level, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            text: text.into(),
        });
    }

    fn ok(&mut self, text: impl Into<String>) {
        self.push(Level::Ok, text);
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warning, text);
    }

    fn problem(&mut self, text: impl Into<String>) {
        self.push(Level::Problem, text);
    }

    /// True if there is no problem (warnings allowed).
    pub fn all_ok(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Problem)
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for finding in &self.findings {
            writeln!(
                f,
                "{} {}",
                match finding.level {
                    Level::Ok => "ok:     ",
                    Level::Warning => "warning:",
                    Level::Problem => "PROBLEM:",
                },
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
    let acceptor = match crate::keytab::usable_acceptor(
        config.keytab.as_deref(),
        config.acceptor.as_deref(),
    ) {
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
            report.problem(crate::keytab::keytab_problem(
                config.keytab.as_deref(),
                config.acceptor.as_deref(),
                &e,
            ));
            None
        }
    };
    let principals = match crate::keytab::keytab_file(config.keytab.as_deref()) {
        Some(path) => keytab::report_keytab(&mut report, &path, probe),
        None => Vec::new(),
    };
    names::report_acceptor_names(&mut report, &config.acceptor_names, &principals);
    names::report_names(
        &mut report,
        config.acceptor.as_deref(),
        &principals,
        config.tls.as_ref().map(|(cert, _)| cert.as_path()),
    );
    report_delegation(&mut report, config);
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
            MountTarget::ForwardAuth => {
                match crate::forward_auth::check_mode(config.mode, config.ntlm_users.is_some()) {
                    Ok(()) => report.ok(format!(
                        "{} -> forward-auth endpoint for front proxies at {:?}",
                        mount.prefix, config.forward_auth.trusted
                    )),
                    Err(e) => report.problem(format!("{} -> {e}", mount.prefix)),
                }
            }
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

/// The delegation directory, and whether the gate's account gets its TGT for S4U2Proxy.
fn report_delegation(report: &mut CheckReport, config: &GateConfig) {
    match (&config.delegation_dir, &config.s4u2proxy) {
        (Some(dir), _) => match crate::delegation::DelegationStore::check_dir(dir) {
            Ok(text) => report.ok(text),
            Err(text) => report.problem(text),
        },
        (None, Some(_)) => report.problem(
            "s4u2proxy needs delegation-dir: the credentials it makes are kept there for CGI \
             programs",
        ),
        (None, None) => {}
    }
    if let Some(impersonator) = &config.s4u2proxy {
        match crate::gate::startup_acceptor(config) {
            Ok(_) => report.ok(format!(
                "s4u2proxy: the gate gets its own TGT as {impersonator} from the keytab; which \
                 services it may delegate to is the domain's to say (msDS-AllowedToDelegateTo)"
            )),
            Err(e) => report.problem(e.to_string()),
        }
    }
}

fn round_trip(report: &mut CheckReport, probe: &Probe, acceptor: &NegotiateAcceptor) {
    let config = InitiatorConfig {
        target: probe.service.clone(),
        mutual: MutualAuth::Required,
        delegation: Delegation::None,
        credentials: probe.credentials.clone(),
        channel_bindings: None,
    };
    let who = probe.who();
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
