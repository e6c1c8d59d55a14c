//! Whether the gate's keytab can serve, and if not, why, in words that name the
//! file, the principal it lacks and what to do. Used at startup (`gate`) and by
//! `kerbside gate --check` (`check`).

use std::path::Path;

use kerbside_gssapi::{AcceptorConfig, GssError, NegotiateAcceptor, ReplayCheck};

/// Acceptor credentials that surely come from the keytab: first acquired the strict
/// way (Kerberos only, no fallback to other mechanisms, which need no keytab and
/// would hide a missing one), then as the gate uses them.
pub(crate) fn usable_acceptor(
    keytab: Option<&Path>,
    acceptor: Option<&str>,
) -> Result<NegotiateAcceptor, GssError> {
    let acceptor_config = AcceptorConfig {
        keytab: keytab.map(Path::to_path_buf),
        acceptor_name: acceptor.map(str::to_owned),
    };
    NegotiateAcceptor::with_replay_check(&acceptor_config, ReplayCheck::Off)?;
    NegotiateAcceptor::new(&acceptor_config)
}

/// The keytab the gate reads: `--keytab`, else `KRB5_KTNAME`, else MIT's default.
fn keytab_path(keytab: Option<&Path>) -> String {
    match keytab {
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

/// The keytab file the gate reads, if it is a file (not `MEMORY:`, `KEYRING:`...).
pub(crate) fn keytab_file(keytab: Option<&Path>) -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(keytab_path(keytab));
    path.is_file().then_some(path)
}

/// The service principal the gate needs a key for, as kadmin writes it
/// (`HTTP@host` becomes `HTTP/host`).
fn wanted_principal(acceptor: Option<&str>) -> String {
    match acceptor {
        Some(name) if !name.contains('/') => match name.split_once('@') {
            Some((service, host)) => format!("{service}/{host}"),
            None => name.to_owned(),
        },
        Some(name) => name.to_owned(),
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
pub(crate) fn keytab_problem(
    keytab: Option<&Path>,
    acceptor: Option<&str>,
    error: &GssError,
) -> String {
    let path = keytab_path(keytab);
    let principal = wanted_principal(acceptor);
    let what = match std::fs::metadata(&path) {
        Err(_) => format!("the keytab {path} does not exist (or cannot be read)"),
        // A keytab file starts with a 2-byte version; entries follow.
        Ok(meta) if meta.len() <= 2 => format!("the keytab {path} holds no keys"),
        Ok(_) => match acceptor {
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
