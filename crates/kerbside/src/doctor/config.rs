//! The krb5 configuration: which file, the default realm, and the host-name settings
//! that decide which service name MIT clients ask for.

use kerbside_gssapi::krb5::Context;

use super::Finding;

/// The files MIT reads, as `KRB5_CONFIG` (a `:`-separated list) or the default says.
fn config_files() -> (Vec<String>, &'static str) {
    match std::env::var("KRB5_CONFIG") {
        Ok(list) if !list.is_empty() => (
            list.split(':').map(str::to_owned).collect(),
            "from KRB5_CONFIG",
        ),
        _ => (vec!["/etc/krb5.conf".to_owned()], "the default"),
    }
}

/// The value of a `[libdefaults]` boolean-ish relation, or its MIT default.
pub(super) fn libdefault(context: &Context, name: &str, default: &str) -> (String, bool) {
    match context
        .profile_values(&["libdefaults", name])
        .into_iter()
        .next()
    {
        Some(v) => (v, true),
        None => (default.to_owned(), false),
    }
}

fn is_true(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "t" | "y"
    )
}

/// Checks the file and the default realm; returns the realm.
pub(super) fn check(context: &Context, findings: &mut Vec<Finding>) -> Option<String> {
    let (files, source) = config_files();
    let (present, missing): (Vec<&String>, Vec<&String>) = files
        .iter()
        .partition(|f| std::path::Path::new(f.as_str()).is_file());
    if present.is_empty() {
        findings.push(Finding::fail(
            "krb5.conf",
            "no_configuration",
            format!("{} ({source}) does not exist", files.join(":")),
            "install krb5-user and write /etc/krb5.conf (or point KRB5_CONFIG at your file)",
        ));
    } else if !missing.is_empty() {
        findings.push(Finding::warn(
            "krb5.conf",
            "missing_configuration_file",
            format!(
                "reading {} ({source}); {} does not exist",
                present
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "remove the missing file from KRB5_CONFIG",
        ));
    } else {
        findings.push(Finding::ok(
            "krb5.conf",
            format!("reading {} ({source})", files.join(", ")),
        ));
    }
    let realm = context.default_realm();
    match &realm {
        Some(r) => findings.push(Finding::ok("realm", format!("default realm {r}"))),
        None => findings.push(Finding::fail(
            "realm",
            "no_default_realm",
            "no default realm",
            "set default_realm in the [libdefaults] section of krb5.conf",
        )),
    }
    let (canon, canon_set) = libdefault(context, "dns_canonicalize_hostname", "true");
    let (rdns, rdns_set) = libdefault(context, "rdns", "true");
    let said = |set: bool| if set { "" } else { " (MIT's default)" };
    let mut found = format!(
        "dns_canonicalize_hostname = {canon}{}, rdns = {rdns}{}: ",
        said(canon_set),
        said(rdns_set)
    );
    let canon_on = is_true(&canon);
    found.push_str(if canon_on && is_true(&rdns) {
        "a host-based name (HTTP@host, which kerbside, curl and browsers ask for) becomes \
         HTTP/<the CNAME target>, then the name reverse DNS gives for its address: the SPN \
         follows DNS, not the URL"
    } else if canon_on {
        "a host-based name (HTTP@host, which kerbside, curl and browsers ask for) becomes \
         HTTP/<the CNAME target>: the SPN follows DNS, not the URL"
    } else if canon.eq_ignore_ascii_case("fallback") {
        "a host-based name (HTTP@host) becomes HTTP/<the URL's host>, and the CNAME target \
         only if the KDC does not know that"
    } else {
        "a host-based name (HTTP@host) becomes HTTP/<the URL's host> as written"
    });
    findings.push(Finding::ok("dns", found));
    realm
}
