//! The checks behind `kerbside doctor [URL]`: what is wrong with Kerberos here, in
//! words, and what to do.
//!
//! [`run`] goes through the checks in order (the krb5 configuration and its KDCs, the
//! clock against the KDC, the user's credentials, and for a URL: the service names
//! clients ask for, the tickets the KDC issues for them, and the request itself) and
//! returns one [`Finding`] per check. A finding that blocks the ones after it (no
//! ticket: no service ticket to inspect) makes those say so; nothing else stops the
//! run. The findings serialize as JSON for `kerbside doctor --json`.
//!
//! ```no_run
//! # async fn example() {
//! use kerbside::doctor::{run, DoctorSettings, Level};
//!
//! let findings = run(DoctorSettings::default()).await;
//! for f in &findings {
//!     println!("{:?} {}: {}", f.level, f.check, f.found);
//! }
//! let failed = findings.iter().any(|f| f.level == Level::Fail);
//! # let _ = failed;
//! # }
//! ```

mod config;
mod credentials;
mod kdc;
mod request;
mod service;

use std::time::Duration;

use http::Uri;
use kerbside_client::{ClientConfig, ClientCredentials};
use kerbside_proto::TargetNameSettings;
use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing to do.
    Ok,
    /// Works, but something is weak or about to break.
    Warn,
    /// Broken: Kerberos fails here.
    Fail,
}

impl Level {
    /// `ok`, `warn` or `FAIL`, as the text output prints it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check, e.g. `credentials`, `kdc`, `clock`, `spn`.
    pub check: String,
    /// How it came out.
    pub level: Level,
    /// What was found, in words.
    pub found: String,
    /// What to do about it (`None` when nothing is to be done).
    pub what_to_do: Option<String>,
    /// A stable name of the cause for scripts (`no_ticket`, `expired_ticket`,
    /// `clock_skew`, `kdc_unreachable`, `unknown_spn`, `weak_enctype`,
    /// `token_rejected`, `header_too_large`, `ntlm_in_spnego`...), when there is one.
    pub cause: Option<&'static str>,
}

impl Finding {
    pub(crate) fn ok(check: &str, found: impl Into<String>) -> Self {
        Self {
            check: check.to_owned(),
            level: Level::Ok,
            found: found.into(),
            what_to_do: None,
            cause: None,
        }
    }

    pub(crate) fn warn(
        check: &str,
        cause: &'static str,
        found: impl Into<String>,
        what_to_do: impl Into<String>,
    ) -> Self {
        Self {
            check: check.to_owned(),
            level: Level::Warn,
            found: found.into(),
            what_to_do: Some(what_to_do.into()),
            cause: Some(cause),
        }
    }

    pub(crate) fn fail(
        check: &str,
        cause: &'static str,
        found: impl Into<String>,
        what_to_do: impl Into<String>,
    ) -> Self {
        Self {
            check: check.to_owned(),
            level: Level::Fail,
            found: found.into(),
            what_to_do: Some(what_to_do.into()),
            cause: Some(cause),
        }
    }
}

/// What to check, resolved from `kerbside doctor`'s options.
#[derive(Debug, Clone)]
pub struct DoctorSettings {
    /// The URL to check, if any.
    pub url: Option<Uri>,
    /// The Kerberos credentials, as `kerbside fetch` would use them.
    pub credentials: ClientCredentials,
    /// Where a password in `credentials` came from (`-u`, the keyring file), for
    /// the findings.
    pub credentials_source: Option<String>,
    /// How the service name is chosen (`--spn`, `--spn-canonicalize`, `--spn-port`).
    pub target: TargetNameSettings,
    /// The client for the request to the URL (`None`: no request is made).
    pub client: Option<ClientConfig>,
    /// How long each KDC may take to answer, per transport.
    pub kdc_timeout: Duration,
    /// Another limit (bytes) to check the `Authorization` header against, e.g. a
    /// proxy's in front of the server.
    pub header_limit: Option<usize>,
}

impl Default for DoctorSettings {
    fn default() -> Self {
        Self {
            url: None,
            credentials: ClientCredentials::Default,
            credentials_source: None,
            target: TargetNameSettings::default(),
            client: None,
            kdc_timeout: Duration::from_secs(3),
            header_limit: None,
        }
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `in 9h 59m` / `3m 2s ago`, for a time relative to `now`.
pub(crate) fn relative(when: i64, now: i64) -> String {
    let delta = when - now;
    let abs = delta.unsigned_abs();
    let text = if abs >= 3600 {
        format!("{}h {}m", abs / 3600, abs / 60 % 60)
    } else if abs >= 60 {
        format!("{}m {}s", abs / 60, abs % 60)
    } else {
        format!("{abs}s")
    };
    if delta > 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Runs every check in order and returns the findings.
pub async fn run(settings: DoctorSettings) -> Vec<Finding> {
    let kerberos_settings = settings.clone();
    let (mut findings, names) =
        match tokio::task::spawn_blocking(move || kerberos_checks(&kerberos_settings)).await {
            Ok(done) => done,
            Err(e) => (
                vec![Finding::fail(
                    "doctor",
                    "internal",
                    format!("the Kerberos checks stopped: {e}"),
                    "report this as a bug",
                )],
                None,
            ),
        };
    if let (Some(url), Some(client)) = (&settings.url, settings.client.clone()) {
        findings.extend(request::check(url, client, names.as_ref(), settings.header_limit).await);
    }
    findings
}

/// The configuration, KDC, clock, credential and service-ticket checks (blocking).
fn kerberos_checks(settings: &DoctorSettings) -> (Vec<Finding>, Option<service::Names>) {
    let mut findings = Vec::new();
    let context = match kerbside_gssapi::krb5::Context::new() {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::fail(
                "krb5.conf",
                "no_configuration",
                e.message(),
                "fix the file KRB5_CONFIG names (or /etc/krb5.conf)",
            ));
            return (findings, None);
        }
    };
    let realm = config::check(&context, &mut findings);
    let kdc_down = match &realm {
        Some(realm) => !kdc::check(&context, realm, settings.kdc_timeout, &mut findings),
        None => false,
    };
    let cache = credentials::check(
        &context,
        &settings.credentials,
        settings.credentials_source.as_deref(),
        &mut findings,
    );
    // With every KDC of the realm down, MIT would wait out its own timeouts per KDC.
    let cache = cache.filter(|_| !kdc_down);
    let names = settings.url.as_ref().map(|url| {
        service::check(
            &context,
            cache.as_ref(),
            url,
            &settings.target,
            &mut findings,
        )
    });
    (findings, names)
}

/// How long one DNS look-up may take (the system resolver has no deadline of its own).
pub(crate) const DNS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a blocking look-up on a thread of its own and waits for it at most `deadline`;
/// `None` when it did not answer in time (the thread is left to finish on its own).
pub(crate) fn within<T: Send + 'static>(
    deadline: std::time::Duration,
    lookup: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("doctor-dns".to_owned())
        .spawn(move || {
            let _ = tx.send(lookup());
        })
        .ok()?;
    rx.recv_timeout(deadline).ok()
}
