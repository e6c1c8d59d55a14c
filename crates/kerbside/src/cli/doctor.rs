//! `kerbside doctor [URL]`: flags, and the findings printed one per line (or as JSON).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use http::Uri;
use kerbside::doctor::{self, DoctorSettings, Finding, Level};
use kerbside_client::{ClientCredentials, Keyring};

use super::client_args::ClientArgs;

/// Arguments of `kerbside doctor`.
#[derive(Debug, Args)]
#[command(after_help = "\
Checks, in order: the krb5 configuration (file, default realm, host-name rules), each KDC of \
the realm over UDP and TCP, the clock against the KDC's, your credentials (ticket cache, or \
--keytab / -u as fetch uses them), and for a URL: the service name kerbside asks for and the \
names other clients would ask for, the tickets the KDC issues for each (enctype, kvno, size, \
flags), then the request itself (schemes offered, token accepted, mutual authentication, \
header size). Each line says ok, warn or FAIL, what was found and what to do.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed.")]
pub struct DoctorArgs {
    /// The URL to check (https:// or http://); without it, only this machine's
    /// Kerberos setup is checked.
    pub url: Option<String>,

    /// Print the findings as JSON (an array of {check, level, found, what_to_do,
    /// cause}) instead of lines.
    #[arg(long)]
    pub json: bool,

    /// How long each KDC may take to answer, per transport (UDP, TCP).
    #[arg(long, value_name = "SECS", default_value = "3")]
    pub kdc_timeout: u64,

    /// Also check the Authorization header against this limit in bytes (a proxy's
    /// or server's in front of the URL).
    #[arg(long, value_name = "BYTES")]
    pub header_limit: Option<usize>,

    #[command(flatten)]
    pub client: ClientArgs,
}

fn print_text(findings: &[Finding]) {
    for f in findings {
        let mut line = format!("{:<4} {:<15} {}", f.level.word(), f.check, f.found);
        if let Some(todo) = &f.what_to_do {
            line.push_str("\n                     → ");
            line.push_str(todo);
        }
        println!("{line}");
    }
}

/// Runs `kerbside doctor`.
pub async fn run(mut args: DoctorArgs) -> ExitCode {
    if args.client.schemes().is_empty() {
        args.client.negotiate = true;
    }
    let url = match args.url.as_deref().map(str::parse::<Uri>) {
        None => None,
        Some(Ok(u)) if u.scheme().is_some() && u.host().is_some() => Some(u),
        Some(_) => {
            eprintln!(
                "kerbside doctor: {:?} is not a URL (https://host/path)",
                args.url.unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    let for_config = url
        .clone()
        .unwrap_or_else(|| Uri::from_static("https://localhost/"));
    let mut config = match args.client.config(&for_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside doctor: {e}");
            return ExitCode::from(2);
        }
    };
    if config.timeout.is_none() {
        config.timeout = Some(Duration::from_secs(30));
    }
    let credentials_source = match &config.auth.credentials {
        ClientCredentials::Password { .. } if args.client.user.is_some() => Some("-u".to_owned()),
        ClientCredentials::Password { .. } => Some(match Keyring::default_path() {
            Some(path) => format!("the keyring file {}", path.display()),
            None => "the keyring file".to_owned(),
        }),
        _ => None,
    };
    let settings = DoctorSettings {
        credentials: config.auth.credentials.clone(),
        credentials_source,
        target: config.auth.target.clone(),
        client: url.as_ref().map(|_| config),
        url,
        kdc_timeout: Duration::from_secs(args.kdc_timeout.max(1)),
        header_limit: args.header_limit,
    };
    let findings = doctor::run(settings).await;
    if args.json {
        match serde_json::to_string_pretty(&findings) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("kerbside doctor: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print_text(&findings);
    }
    if findings.iter().any(|f| f.level == Level::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
