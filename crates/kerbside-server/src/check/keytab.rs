//! What `kerbside gate --check` says about the keytab itself: every entry (principal,
//! kvno, enctypes), the key version the KDC uses now for each principal, stale and weak
//! keys, and the file's mode.
//!
//! The KDC's kvno is read from a real service ticket (its `enc-part` header,
//! [`kerbside_proto::krb5::ticket_key`]): first asked with the keytab's own key (an
//! Active Directory service account, or any MIT principal that may get initial tickets,
//! can), else with the test principal of `--check-principal`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kerbside_gssapi::{ClientCredentials, Delegation, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::keytab::{Enctype, EnctypeStrength, KeytabEntry};
use kerbside_proto::krb5::TicketKey;
use kerbside_proto::{Mechanism, MutualAuth, Step};

use super::{CheckReport, Probe};

/// The keys of one principal of the keytab.
#[derive(Debug)]
pub(crate) struct PrincipalKeys {
    /// `HTTP/www.example.test@EXAMPLE.TEST`.
    pub principal: String,
    /// The name components (`["HTTP", "www.example.test"]`).
    pub components: Vec<String>,
    /// kvno → enctypes, in the file's order.
    pub kvnos: BTreeMap<u32, Vec<Enctype>>,
}

impl PrincipalKeys {
    fn newest(&self) -> Option<(u32, &[Enctype])> {
        self.kvnos
            .iter()
            .next_back()
            .map(|(k, e)| (*k, e.as_slice()))
    }
}

/// The keytab's entries by principal, in the file's order of first appearance.
fn by_principal(entries: &[KeytabEntry]) -> Vec<PrincipalKeys> {
    let mut out: Vec<PrincipalKeys> = Vec::new();
    for entry in entries {
        let principal = entry.principal();
        let keys = match out.iter_mut().position(|p| p.principal == principal) {
            Some(i) => &mut out[i],
            None => {
                out.push(PrincipalKeys {
                    principal,
                    components: entry.components.clone(),
                    kvnos: BTreeMap::new(),
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        keys.kvnos
            .entry(entry.kvno)
            .or_default()
            .push(entry.enctype);
    }
    out
}

/// Reports the keytab at `path` (a file) and returns its principals, for the name
/// checks that follow.
pub(crate) fn report_keytab(
    report: &mut CheckReport,
    path: &Path,
    probe: Option<&Probe>,
) -> Vec<PrincipalKeys> {
    report_mode(report, path);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.problem(format!("cannot read the keytab {}: {e}", path.display()));
            return Vec::new();
        }
    };
    let entries = match kerbside_proto::keytab::parse(&bytes) {
        Ok(e) => e,
        Err(e) => {
            report.problem(format!("the keytab {}: {e}", path.display()));
            return Vec::new();
        }
    };
    let principals = by_principal(&entries);
    for keys in &principals {
        let listed: Vec<String> = keys
            .kvnos
            .iter()
            .map(|(kvno, enctypes)| {
                let names: Vec<String> = enctypes.iter().map(|e| e.name()).collect();
                format!("kvno {kvno} ({})", names.join(", "))
            })
            .collect();
        report.ok(format!(
            "keytab entry: {} {}",
            keys.principal,
            listed.join("; ")
        ));
        if keys.components.len() < 2 {
            // An account's own name (`svc-web@REALM`), as a keytab for --s4u2proxy
            // holds: it gets the gate's own tickets, and no service ticket is for it.
            report.ok(format!(
                "{} is an account name, not a service (service/host): no ticket asked for it",
                keys.principal
            ));
            report_enctypes(report, keys, None);
            continue;
        }
        let kdc = ask_kdc(keys, path, probe);
        report_kvno(report, keys, &kdc);
        report_enctypes(report, keys, kdc.as_ref().ok().map(|(key, _)| key));
    }
    principals
}

/// The file's owner-only mode: a keytab is the service's password.
fn report_mode(report: &mut CheckReport, path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        report.warn(format!(
            "the keytab {} has mode {mode:04o}: {} can read the service's keys and pretend \
             to be it to every user; make it readable by the gate's user only (chmod 600, \
             chown to the gate's user)",
            path.display(),
            if mode & 0o007 != 0 {
                "every local user"
            } else {
                "its group"
            },
        ));
    } else {
        report.ok(format!(
            "the keytab {} has mode {mode:04o} (its owner only)",
            path.display()
        ));
    }
}

/// Asks the KDC for a ticket to `keys.principal` and reads which key encrypts it; says
/// who asked.
fn ask_kdc(
    keys: &PrincipalKeys,
    path: &Path,
    probe: Option<&Probe>,
) -> Result<(TicketKey, String), String> {
    let own = ClientCredentials::Keytab {
        path: path.to_path_buf(),
        principal: Some(keys.principal.clone()),
    };
    let own_error = match ticket_key(&keys.principal, own) {
        Ok(key) => return Ok((key, format!("asked with {}'s own key", keys.principal))),
        Err(e) => e,
    };
    let Some(probe) = probe else {
        return Err(format!(
            "{} cannot get tickets with its own key ({own_error}); give --check-principal \
             (with --check-password-file, --check-keytab, or a ticket in the cache) to ask \
             the KDC as another user",
            keys.principal
        ));
    };
    match ticket_key(&keys.principal, probe.credentials.clone()) {
        Ok(key) => Ok((key, format!("asked as {}", probe.who()))),
        Err(e) => Err(format!(
            "the KDC gave no ticket for {}: with its own key: {own_error}; as {}: {e}",
            keys.principal,
            probe.who()
        )),
    }
}

/// A service ticket for `target` with `credentials`, and the key it is encrypted with.
pub(crate) fn ticket_key(
    target: &str,
    credentials: ClientCredentials,
) -> Result<TicketKey, String> {
    let config = InitiatorConfig {
        target: target.to_owned(),
        mutual: MutualAuth::Off,
        delegation: Delegation::None,
        credentials,
        channel_bindings: None,
    };
    let mut initiator = NegotiateInitiator::new(&config).map_err(|e| e.to_string())?;
    let token = match initiator.step(None).map_err(|e| e.to_string())? {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => return Err("GSSAPI produced no token".to_owned()),
    };
    kerbside_proto::krb5::ticket_key(&token)
        .map_err(|e| format!("the ticket in the token cannot be read: {e}"))
}

/// The KDC's kvno against the keytab's.
fn report_kvno(
    report: &mut CheckReport,
    keys: &PrincipalKeys,
    kdc: &Result<(TicketKey, String), String>,
) {
    let Some((newest, _)) = keys.newest() else {
        return;
    };
    let (key, how) = match kdc {
        Ok(found) => found,
        Err(e) => {
            report.warn(format!("cannot learn the KDC's key version: {e}"));
            return;
        }
    };
    let etype = Enctype(i32::try_from(key.etype).unwrap_or(-1));
    let Some(kvno) = key.kvno.and_then(|k| u32::try_from(k).ok()) else {
        report.warn(format!(
            "the KDC's ticket for {} carries no key version ({how})",
            keys.principal
        ));
        return;
    };
    match keys.kvnos.get(&kvno) {
        Some(enctypes) if enctypes.contains(&etype) => report.ok(format!(
            "the KDC encrypts tickets for {} with kvno {kvno} ({etype}), which the keytab \
             holds ({how})",
            keys.principal
        )),
        Some(_) => report.problem(format!(
            "the KDC encrypts tickets for {} with kvno {kvno} in {etype}, and the keytab has \
             kvno {kvno} but not in {etype} ({how}): export a new keytab with all the \
             account's enctypes",
            keys.principal
        )),
        None if kvno > newest => report.problem(format!(
            "the keytab is stale: the service's key was changed (kvno {kvno} at the KDC, \
             {newest} in the keytab): export a new keytab for {} (kadmin: ktadd; AD: \
             ktpass, samba-tool domain exportkeytab or msktutil --update); tickets the \
             KDC issues now cannot be opened ({how})",
            keys.principal
        )),
        None => report.problem(format!(
            "the keytab's key for {} is newer than the KDC's (kvno {newest} in the keytab, \
             {kvno} at the KDC): the keytab comes from another account or KDC, or the \
             password change has not reached this KDC yet ({how})",
            keys.principal
        )),
    }
}

/// RC4-only and DES keys, and RC4 tickets.
fn report_enctypes(report: &mut CheckReport, keys: &PrincipalKeys, kdc: Option<&TicketKey>) {
    let Some((newest, enctypes)) = keys.newest() else {
        return;
    };
    let des: Vec<String> = enctypes
        .iter()
        .filter(|e| e.strength() == EnctypeStrength::Des)
        .map(|e| e.name())
        .collect();
    if !des.is_empty() {
        report.warn(format!(
            "{} kvno {newest} has DES keys ({}): DES is broken and off in every current \
             Kerberos; make AES keys (MIT: cpw -e aes256-cts-hmac-sha1-96; AD: \
             msDS-SupportedEncryptionTypes = 24) and export a new keytab",
            keys.principal,
            des.join(", ")
        ));
    }
    let strong = enctypes
        .iter()
        .any(|e| e.strength() == EnctypeStrength::Strong);
    let rc4_ticket = kdc
        .and_then(|k| i32::try_from(k.etype).ok())
        .is_some_and(|e| Enctype(e).strength() == EnctypeStrength::Rc4);
    if !strong || rc4_ticket {
        let what = if strong {
            "the KDC issues RC4 (arcfour-hmac) tickets for it"
        } else {
            "it has only RC4 or weaker keys"
        };
        report.warn(format!(
            "{}: {what}. RC4 is deprecated (RFC 8429) and being turned off in Windows and \
             MIT krb5. In Active Directory set the account's msDS-SupportedEncryptionTypes \
             to 24 (AES128+AES256; PowerShell: Set-ADUser ACCOUNT -KerberosEncryptionType \
             AES128,AES256), reset its password so AES keys exist, and export a new keytab \
             with ktpass /crypto AES256-SHA1 (or samba-tool domain exportkeytab, msktutil \
             --enctypes 24)",
            keys.principal
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(principal: &str, kvno: u32, enctype: i32) -> KeytabEntry {
        let (name, realm) = principal.split_once('@').unwrap_or((principal, "R"));
        KeytabEntry {
            components: name.split('/').map(str::to_owned).collect(),
            realm: realm.to_owned(),
            name_type: 1,
            timestamp: 0,
            kvno,
            enctype: Enctype(enctype),
            key_len: 16,
        }
    }

    #[test]
    fn entries_group_by_principal_and_kvno() {
        let keys = by_principal(&[
            entry("HTTP/a@R", 1, 18),
            entry("HTTP/b@R", 5, 23),
            entry("HTTP/a@R", 2, 18),
            entry("HTTP/a@R", 2, 17),
        ]);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].principal, "HTTP/a@R");
        assert_eq!(keys[0].newest(), Some((2, &[Enctype(18), Enctype(17)][..])));
        assert_eq!(keys[1].newest(), Some((5, &[Enctype(23)][..])));
    }

    #[test]
    fn stale_and_weak_keys_are_named() {
        let keys = &by_principal(&[entry("HTTP/a@R", 3, 23)])[0];
        let mut report = CheckReport::default();
        let kdc = Ok((
            TicketKey {
                etype: 23,
                kvno: Some(4),
            },
            "asked".to_owned(),
        ));
        report_kvno(&mut report, keys, &kdc);
        report_enctypes(&mut report, keys, kdc.as_ref().ok().map(|(k, _)| k));
        let text = report.to_string();
        assert!(
            text.contains("the keytab is stale: the service's key was changed (kvno 4 at the KDC, 3 in the keytab): export a new keytab"),
            "{text}"
        );
        assert!(text.contains("msDS-SupportedEncryptionTypes"), "{text}");
        assert!(text.contains("ktpass /crypto AES256-SHA1"), "{text}");
        assert!(!report.all_ok());

        // DES beside AES: a DES warning, no RC4 one.
        let keys = &by_principal(&[entry("HTTP/a@R", 3, 18), entry("HTTP/a@R", 3, 3)])[0];
        let mut report = CheckReport::default();
        report_enctypes(&mut report, keys, None);
        let text = report.to_string();
        assert!(
            text.contains("warning: HTTP/a@R kvno 3 has DES keys (des-cbc-md5)"),
            "{text}"
        );
        assert!(!text.contains("RC4"), "{text}");
        assert!(report.all_ok(), "warnings only");
    }
}
