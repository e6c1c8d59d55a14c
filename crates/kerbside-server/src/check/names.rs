//! The names a gate is reached by, as `kerbside gate --check` compares them: a client
//! asks a ticket for `HTTP/<the host in its URL>` and checks that the TLS certificate
//! is for that same host, so every host name users type needs both a key in the keytab
//! and a name in the certificate.

use std::path::Path;

use kerbside_proto::acceptor_names::AcceptorNames;
use kerbside_proto::cert_names::{covers, subject_alt_names, CertName};
use rustls_pki_types::pem::PemObject;

use super::keytab::PrincipalKeys;
use super::CheckReport;

/// The host of an acceptor name: `HTTP@host` or `HTTP/host[@REALM]`.
fn acceptor_host(acceptor: &str) -> Option<String> {
    match acceptor.split_once('/') {
        Some((_, rest)) => Some(rest.split('@').next().unwrap_or(rest).to_owned()),
        None => acceptor.split_once('@').map(|(_, host)| host.to_owned()),
    }
}

/// The hosts the gate has `HTTP/` keys for, or the acceptor's host if one is named.
fn kerberos_hosts(acceptor: Option<&str>, principals: &[PrincipalKeys]) -> Vec<String> {
    if let Some(host) = acceptor.and_then(acceptor_host) {
        return vec![host];
    }
    let mut hosts: Vec<String> = principals
        .iter()
        .filter(|p| p.components.len() == 2 && p.components[0].eq_ignore_ascii_case("HTTP"))
        .map(|p| p.components[1].clone())
        .collect();
    hosts.dedup();
    hosts
}

/// Says which service names tickets are accepted for (`acceptor`: one, a list, or
/// `{HOSTNAME}`), and that every listed name has a key in the keytab.
pub(crate) fn report_acceptor_names(
    report: &mut CheckReport,
    names: &AcceptorNames,
    principals: &[PrincipalKeys],
) {
    match names {
        AcceptorNames::Any | AcceptorNames::One(_) => {}
        AcceptorNames::Hostname => {
            let hosts = kerberos_hosts(None, principals);
            report.ok(format!(
                "acceptor names: {} — the keytab has HTTP/ keys for {}",
                names.describe(),
                if hosts.is_empty() {
                    "no host".to_owned()
                } else {
                    hosts.join(", ")
                }
            ));
        }
        AcceptorNames::List(list) => {
            report.ok(format!("acceptor names: {}", names.describe()));
            for name in list {
                let in_keytab = principals.iter().any(|p| {
                    let realm = p.principal.rsplit_once('@').map(|(_, r)| r);
                    p.components.len() == 2
                        && p.components[0] == name.service
                        && p.components[1].eq_ignore_ascii_case(&name.host)
                        && name.realm.as_deref().is_none_or(|r| Some(r) == realm)
                });
                if !in_keytab && !principals.is_empty() {
                    report.problem(format!(
                        "the acceptor name {name} has no key in the keytab: clients asking \
                         for it will be refused; export its key into the keytab"
                    ));
                }
            }
        }
    }
}

/// Compares the acceptor's hosts with the certificate's names, and says which host names
/// will work.
pub(crate) fn report_names(
    report: &mut CheckReport,
    acceptor: Option<&str>,
    principals: &[PrincipalKeys],
    cert: Option<&Path>,
) {
    let hosts = kerberos_hosts(acceptor, principals);
    let cert_names = match cert.map(read_names) {
        Some(Ok(names)) => Some(names),
        Some(Err(e)) => {
            report.problem(e);
            return;
        }
        None => None,
    };
    let Some(cert_names) = cert_names else {
        if !hosts.is_empty() {
            report.ok(format!(
                "clients must reach the gate as {} (the hosts the keytab has HTTP/ keys for)",
                hosts.join(", ")
            ));
        }
        return;
    };
    let listed: Vec<String> = cert_names.iter().map(ToString::to_string).collect();
    for host in &hosts {
        if covers(&cert_names, host) {
            report.ok(format!(
                "the acceptor name HTTP/{host} is one of the TLS certificate's names"
            ));
        } else {
            report.warn(format!(
                "the gate accepts tickets for HTTP/{host}, but the TLS certificate is not for \
                 {host} (it is for {}): clients that use https://{host}/ fail TLS, and clients \
                 that use a name of the certificate ask a ticket the keytab has no key for; \
                 get a certificate for {host} or a key for the certificate's name",
                listed.join(", ")
            ));
        }
    }
    let mut reachable = Vec::new();
    for name in &cert_names {
        let host = name.to_string();
        let keyed = hosts.iter().any(|h| covers(std::slice::from_ref(name), h));
        match name {
            CertName::Dns(dns) if dns.starts_with("*.") => {
                if keyed {
                    reachable.push(host);
                }
            }
            _ if keyed => reachable.push(host),
            _ => report.warn(format!(
                "the TLS certificate names {host}, but the keytab has no key for HTTP/{host}: \
                 clients that reach the gate as https://{host}/ will ask for that ticket and \
                 fall back or fail (register the name: setspn -S HTTP/{host} ACCOUNT, or \
                 kadmin addprinc -randkey HTTP/{host}, then export the key)"
            )),
        }
    }
    if reachable.is_empty() {
        report.problem(
            "no host name has both a key in the keytab and a name in the TLS certificate: \
             no browser or curl can log in by Kerberos",
        );
    } else {
        report.ok(format!(
            "clients can reach the gate as https://{}/ (a key in the keytab and a name in \
             the certificate)",
            reachable.join("/, https://")
        ));
    }
}

fn read_names(cert: &Path) -> Result<Vec<CertName>, String> {
    let leaf = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .ok()
        .and_then(|mut it| it.next())
        .and_then(Result::ok)
        .ok_or_else(|| format!("the TLS certificate {} cannot be read", cert.display()))?;
    subject_alt_names(leaf.as_ref()).map_err(|e| format!("{}: {e}", cert.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptor_names_give_their_host() {
        assert_eq!(
            acceptor_host("HTTP@www.example.test").as_deref(),
            Some("www.example.test")
        );
        assert_eq!(
            acceptor_host("HTTP/www.example.test@R").as_deref(),
            Some("www.example.test")
        );
        assert_eq!(acceptor_host("HTTP/www"), Some("www".to_owned()));
        assert_eq!(acceptor_host("HTTP"), None);
    }
}
