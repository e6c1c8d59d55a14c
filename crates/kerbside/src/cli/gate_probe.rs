//! The round trip `kerbside gate --check` makes as a client (`--check-principal` with a
//! keytab, a password file or a ticket cache), to the service the gate accepts for.

use super::gate::GateArgs;

/// The client side of the `--check` round trip, or `None` without `--check-principal`.
pub(super) fn probe(args: &GateArgs) -> Result<Option<kerbside_server::check::Probe>, String> {
    use kerbside_client::ClientCredentials;
    let Some(principal) = args.check_principal.clone() else {
        return Ok(None);
    };
    let credentials = match (&args.check_keytab, &args.check_password_file) {
        (Some(_), Some(_)) => {
            return Err("give --check-keytab or --check-password-file, not both".to_owned())
        }
        (Some(keytab), None) => ClientCredentials::Keytab {
            path: keytab.clone(),
            principal: Some(principal),
        },
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            ClientCredentials::FreshPassword {
                principal,
                password: text.lines().next().unwrap_or_default().to_owned(),
            }
        }
        (None, None) => ClientCredentials::Password {
            principal,
            password: String::new(),
        },
    };
    let plain_acceptor = args
        .acceptor
        .iter()
        .find(|a| a.as_str() != kerbside_proto::acceptor_names::HOSTNAME);
    let service = match (&args.check_spn, plain_acceptor) {
        (Some(s), _) | (None, Some(s)) => s.clone(),
        (None, None) => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".to_owned());
            format!("HTTP@{host}")
        }
    };
    Ok(Some(kerbside_server::check::Probe {
        service,
        credentials,
    }))
}
