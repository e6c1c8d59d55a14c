//! The user's Kerberos credentials, as `kerbside fetch` would use them: the ticket
//! cache (type, name, principal, the TGT's expiry and renewability), or a ticket got
//! just now from `--keytab` or a password (`-u`, the keyring).

use kerbside_client::ClientCredentials;
use kerbside_gssapi::krb5::{enctype_is_weak, enctype_name, Ccache, Context, Krb5ErrorKind};
use kerbside_proto::kdc_probe::utc_text;

use super::{now, relative, Finding};

/// Warn when the TGT expires sooner than this.
const SOON: i64 = 15 * 60;

/// Checks the credentials; returns the cache the service-ticket checks use.
pub(super) fn check<'c>(
    context: &'c Context,
    credentials: &ClientCredentials,
    source: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Option<Ccache<'c>> {
    match credentials {
        ClientCredentials::Keytab { path, principal } => {
            let shown = path.display();
            match context.keytab_ccache(&path.to_string_lossy(), principal.as_deref()) {
                Ok(cache) => {
                    let who = cache.principal().unwrap_or_default();
                    findings.push(Finding::ok(
                        "credentials",
                        format!("--keytab {shown}: the KDC issued a ticket for {who}"),
                    ));
                    Some(cache)
                }
                Err(e) => {
                    let what_to_do = match e.kind() {
                        Krb5ErrorKind::NoKey => format!(
                            "the keytab has no key for that principal: `klist -kt {shown}` \
                             lists what it holds; name one with -u"
                        ),
                        Krb5ErrorKind::WrongKey => "the keytab's key is older than the \
                                                    KDC's: export it again (kadmin ktadd)"
                            .to_owned(),
                        Krb5ErrorKind::UnknownClient => {
                            "the KDC does not know that principal: check the name".to_owned()
                        }
                        _ => "check the keytab and the KDC (see the kdc lines above)".to_owned(),
                    };
                    findings.push(Finding::fail(
                        "credentials",
                        "keytab_unusable",
                        format!("--keytab {shown}: {}", e.message()),
                        what_to_do,
                    ));
                    None
                }
            }
        }
        ClientCredentials::FreshPassword {
            principal,
            password,
        } => password_cache(context, principal, password, source, findings),
        ClientCredentials::Password {
            principal,
            password,
        } => {
            // As fetch: the ticket cache first, the password only without a ticket.
            let mut quiet = Vec::new();
            match cache_check(context, None, &mut quiet) {
                Some(cache) if quiet.iter().all(|f| f.level == super::Level::Ok) => {
                    findings.extend(quiet);
                    Some(cache)
                }
                _ => password_cache(context, principal, password, source, findings),
            }
        }
        ClientCredentials::Ccache(name) => cache_check(context, Some(name), findings),
        _ => cache_check(context, None, findings),
    }
}

fn password_cache<'c>(
    context: &'c Context,
    principal: &str,
    password: &str,
    source: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Option<Ccache<'c>> {
    let from = source.map_or_else(String::new, |s| format!(" ({s})"));
    match context.password_ccache(principal, password) {
        Ok(cache) => {
            findings.push(Finding::ok(
                "credentials",
                format!(
                    "no ticket in the cache; the KDC took the password of {principal}{from} \
                     and issued a ticket"
                ),
            ));
            Some(cache)
        }
        Err(e) => {
            let (cause, what_to_do) = match e.kind() {
                Krb5ErrorKind::WrongKey => ("wrong_password", "check the password"),
                Krb5ErrorKind::UnknownClient => (
                    "unknown_user",
                    "the KDC does not know this user: check the name and realm",
                ),
                _ => (
                    "no_ticket",
                    "check the KDC (see the kdc lines above) and the password",
                ),
            };
            findings.push(Finding::fail(
                "credentials",
                cause,
                format!(
                    "the password of {principal}{from} got no ticket: {}",
                    e.message()
                ),
                what_to_do,
            ));
            None
        }
    }
}

/// The ticket cache and its TGT.
fn cache_check<'c>(
    context: &'c Context,
    name: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Option<Ccache<'c>> {
    let cache = match name {
        Some(n) => context.resolve_ccache(n),
        None => context.default_ccache(),
    };
    let cache = match cache {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::fail(
                "credentials",
                "no_ticket",
                format!("no usable ticket cache: {}", e.message()),
                "run kinit (check KRB5CCNAME)",
            ));
            return None;
        }
    };
    let which = format!("{}:{}", cache.cache_type(), cache.name());
    let principal = match cache.principal() {
        Ok(p) => p,
        Err(e) => {
            let found = if e.kind() == Krb5ErrorKind::NoCredentials {
                format!(
                    "no Kerberos credentials: the ticket cache {which} does not exist or is empty"
                )
            } else {
                format!("the ticket cache {which} cannot be read: {}", e.message())
            };
            findings.push(Finding::fail(
                "credentials",
                "no_ticket",
                found,
                "run kinit (check KRB5CCNAME); or give -u USER (a password) or --keytab",
            ));
            return None;
        }
    };
    let tickets = cache.tickets().unwrap_or_default();
    let realm = principal.rsplit_once('@').map_or("", |(_, r)| r);
    let tgt = tickets
        .iter()
        .find(|t| t.server == format!("krbtgt/{realm}@{realm}"))
        .or_else(|| tickets.iter().find(|t| t.is_tgt()));
    let Some(tgt) = tgt else {
        findings.push(Finding::fail(
            "credentials",
            "no_ticket",
            format!("the ticket cache {which} of {principal} holds no ticket-granting ticket"),
            "run kinit",
        ));
        return None;
    };
    let now = now();
    let t = tgt.times;
    let renew = if tgt.flags.renewable() && t.renew_till > 0 {
        format!(
            "renewable until {} ({})",
            utc_text(t.renew_till),
            relative(t.renew_till, now)
        )
    } else {
        "not renewable".to_owned()
    };
    let found = format!(
        "ticket cache {which}: {principal}; ticket-granting ticket {} {} ({}), {renew}; \
         flags {}, session key {}",
        if t.endtime <= now {
            "expired"
        } else {
            "valid until"
        },
        utc_text(t.endtime),
        relative(t.endtime, now),
        tgt.flags.letters(),
        enctype_name(tgt.session_enctype),
    );
    if t.endtime <= now {
        let what_to_do = if tgt.flags.renewable() && t.renew_till > now {
            "your Kerberos ticket has expired: run kinit -R (still renewable) or kinit"
        } else {
            "your Kerberos ticket has expired: run kinit"
        };
        findings.push(Finding::fail(
            "credentials",
            "expired_ticket",
            found,
            what_to_do,
        ));
        return None;
    }
    if t.endtime - now < SOON {
        findings.push(Finding::warn(
            "credentials",
            "ticket_expires_soon",
            found,
            "run kinit (or kinit -R) before it expires; a daemon needs a keytab (k5start, \
             gssproxy) rather than a user's ticket",
        ));
    } else if enctype_is_weak(tgt.session_enctype) {
        findings.push(Finding::warn(
            "credentials",
            "weak_enctype",
            found,
            "the realm issues RC4/DES session keys: enable AES for the user and the krbtgt",
        ));
    } else {
        findings.push(Finding::ok("credentials", found));
    }
    Some(cache)
}
