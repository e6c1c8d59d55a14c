//! For a URL: the service name kerbside asks a ticket for and why, the names other
//! clients would ask for (MIT's rules in krb5.conf, the CNAME target, reverse DNS),
//! and whether the KDC issues a ticket for each: its enctype, key version, size and
//! flags.

use std::net::IpAddr;

use http::Uri;
use kerbside_gssapi::krb5::{
    enctype_is_weak, enctype_name, Ccache, Context, Krb5ErrorKind, Ticket,
};
use kerbside_proto::TargetNameSettings;

use super::Finding;

/// What the request check needs to know of the service names.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The name kerbside asks for.
    pub kerbside: String,
    /// The ticket the KDC issued for it, if it did.
    pub ticket: Option<Ticket>,
}

/// `AI_CANONNAME` (the same value on Linux and the BSDs).
const AI_CANONNAME: i32 = 2;

fn canonical_name(host: &str) -> Option<String> {
    let host = host.to_owned();
    super::within(super::DNS_DEADLINE, move || {
        let hints = dns_lookup::AddrInfoHints {
            flags: AI_CANONNAME,
            ..dns_lookup::AddrInfoHints::default()
        };
        dns_lookup::getaddrinfo(Some(&host), None, Some(hints))
            .ok()?
            .filter_map(Result::ok)
            .find_map(|ai| ai.canonname)
    })
    .flatten()
}

fn reverse_name(host: &str) -> Option<String> {
    let host = host.to_owned();
    super::within(super::DNS_DEADLINE, move || {
        let addr: IpAddr = match host.parse() {
            Ok(a) => a,
            Err(_) => dns_lookup::lookup_host(&host).ok()?.into_iter().next()?,
        };
        dns_lookup::lookup_addr(&addr).ok()
    })
    .flatten()
}

/// The principal form of a host-based name, for `setspn` and `kadmin` lines.
fn principal_form(name: &str, realm: &str) -> String {
    match name.split_once('@') {
        Some((service, host)) if !service.contains('/') => format!("{service}/{host}@{realm}"),
        _ if name.contains('@') => name.to_owned(),
        _ => format!("{name}@{realm}"),
    }
}

fn describe(ticket: &Ticket) -> String {
    let enctype = ticket
        .enctype
        .map_or_else(|| "unknown enctype".to_owned(), enctype_name);
    let kvno = ticket
        .kvno
        .map_or_else(|| "unknown kvno".to_owned(), |k| format!("kvno {k}"));
    format!(
        "{} ({enctype}, {kvno}, {} bytes, {}forwardable, {}ok-as-delegate)",
        ticket.server,
        ticket.size,
        if ticket.flags.forwardable() {
            ""
        } else {
            "not "
        },
        if ticket.flags.ok_as_delegate() {
            ""
        } else {
            "not "
        },
    )
}

/// Checks the names for `url` and their tickets.
pub(super) fn check(
    context: &Context,
    cache: Option<&Ccache<'_>>,
    url: &Uri,
    target: &TargetNameSettings,
    findings: &mut Vec<Finding>,
) -> Names {
    let host = url
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let default_port = if url.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let port = url.port_u16().filter(|p| *p != default_port);
    let canonical = canonical_name(&host);
    let chosen = target.resolve(
        &host,
        port,
        if target.needs_canonical_name(&host) {
            canonical.as_deref()
        } else {
            None
        },
    );
    let realm = context.default_realm().unwrap_or_default();
    let mut found = format!("kerbside asks for {} ({})", chosen.name, chosen.reason);
    if let Some((service, h)) = chosen
        .name
        .split_once('@')
        .filter(|(s, _)| !s.contains('/'))
    {
        if let Ok(mit) = context.host_service_principal(service, h) {
            let mit = if mit.ends_with('@') {
                format!("{mit}{realm}")
            } else {
                mit
            };
            found.push_str(&format!(", which krb5.conf's host-name rules make {mit}"));
        }
    }
    findings.push(Finding::ok("spn", found));
    // The names other clients may ask for, each with why.
    let mut others: Vec<(String, String)> = Vec::new();
    if let Some(c) = canonical
        .as_deref()
        .filter(|c| !c.eq_ignore_ascii_case(&host))
    {
        others.push((
            format!("HTTP@{}", c.trim_end_matches('.').to_ascii_lowercase()),
            format!("clients that follow the CNAME of {host} (Windows, dns_canonicalize_hostname)"),
        ));
    }
    if let Some(r) = reverse_name(&host).filter(|r| !r.eq_ignore_ascii_case(&host)) {
        others.push((
            format!("HTTP@{}", r.trim_end_matches('.').to_ascii_lowercase()),
            format!("clients that use reverse DNS (rdns = true) for {host}'s address"),
        ));
    }
    let chosen_principal = principal_form(&chosen.name, &realm);
    let mut seen = vec![chosen_principal.to_ascii_lowercase()];
    let mut other_names = Vec::new();
    for (name, why) in others {
        let key = principal_form(&name, &realm).to_ascii_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
            other_names.push((name, why));
        }
    }
    let resolves = host.parse::<IpAddr>().is_ok() || {
        let name = host.clone();
        super::within(super::DNS_DEADLINE, move || {
            dns_lookup::lookup_host(&name).is_ok()
        })
        .unwrap_or(false)
    };
    if !resolves {
        findings.push(Finding::ok(
            "spn",
            format!(
                "{host} does not resolve here, so there is no CNAME or reverse name to compare"
            ),
        ));
    } else if other_names.is_empty() {
        findings.push(Finding::ok(
            "spn",
            "other clients ask for the same name (no CNAME, reverse DNS agrees)",
        ));
    }
    let Some(cache) = cache else {
        findings.push(Finding::warn(
            "service-ticket",
            "no_ticket",
            format!(
                "not asking the KDC for {}: no credentials, or no KDC answers",
                chosen.name
            ),
            "fix the credentials or the KDC first (above)",
        ));
        return Names {
            kerbside: chosen.name,
            ticket: None,
        };
    };
    let ticket = ticket_check(cache, &chosen.name, &realm, None, findings);
    for (name, why) in &other_names {
        ticket_check(cache, name, &realm, Some(why), findings);
    }
    Names {
        kerbside: chosen.name,
        ticket,
    }
}

/// Asks for a service ticket for `name`; `other` says whose name it is when it is
/// not kerbside's (its failures are then warnings).
fn ticket_check(
    cache: &Ccache<'_>,
    name: &str,
    realm: &str,
    other: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Option<Ticket> {
    let whose = other.map_or_else(|| "kerbside's name".to_owned(), |w| format!("asked by {w}"));
    match cache.service_ticket(name) {
        Ok(ticket) => {
            let found = format!(
                "the KDC issues a ticket for {name} ({whose}): {}",
                describe(&ticket)
            );
            match ticket.enctype.filter(|e| enctype_is_weak(*e)) {
                Some(e) => findings.push(Finding::warn(
                    "service-ticket",
                    "weak_enctype",
                    format!(
                        "{found}: the service key is {}, which is weak (RC4/DES)",
                        enctype_name(e)
                    ),
                    format!(
                        "give {} AES keys: kadmin cpw -randkey -e aes256-cts-hmac-sha1-96:normal \
                         then ktadd; in Active Directory set msDS-SupportedEncryptionTypes to AES \
                         (ktpass /crypto AES256-SHA1) and reset the account's password",
                        principal_form(name, realm)
                    ),
                )),
                None => findings.push(Finding::ok("service-ticket", found)),
            }
            Some(ticket)
        }
        Err(e) => {
            let principal = principal_form(name, realm);
            let (cause, found, what_to_do) = match e.kind() {
                Krb5ErrorKind::UnknownServer => (
                    "unknown_spn",
                    format!(
                        "the KDC does not know the service principal {principal} ({whose}): \
                         the SPN is not registered"
                    ),
                    {
                        let spn = principal.split('@').next().unwrap_or(&principal).to_owned();
                        format!(
                            "register it: setspn -S {spn} SERVICE-ACCOUNT (Active Directory), or \
                             kadmin: addprinc -randkey {principal} and ktadd it to the server's \
                             keytab{}",
                            if other.is_none() {
                                "; or name the principal the server has with --spn HOST=NAME"
                            } else {
                                ""
                            }
                        )
                    },
                ),
                Krb5ErrorKind::Expired => (
                    "expired_ticket",
                    format!("no ticket for {principal}: your ticket has expired"),
                    "run kinit".to_owned(),
                ),
                Krb5ErrorKind::ClockSkew => (
                    "clock_skew",
                    format!("no ticket for {principal}: {}", e.message()),
                    "set the clock right (NTP)".to_owned(),
                ),
                Krb5ErrorKind::KdcUnreachable => (
                    "kdc_unreachable",
                    format!("no ticket for {principal}: {}", e.message()),
                    "see the kdc lines above".to_owned(),
                ),
                _ => (
                    "service_ticket_refused",
                    format!("no ticket for {principal}: {}", e.message()),
                    "see the KDC's log for the request".to_owned(),
                ),
            };
            if other.is_some() {
                findings.push(Finding::warn("service-ticket", cause, found, what_to_do));
            } else {
                findings.push(Finding::fail("service-ticket", cause, found, what_to_do));
            }
            None
        }
    }
}
