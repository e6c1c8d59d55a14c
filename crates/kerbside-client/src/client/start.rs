//! The first credentials of each scheme: a Kerberos token (by GSSAPI, off the
//! async threads), an NTLM message, Digest and Basic answers, and the ones sent
//! without a 401 to an origin that took them before.

use std::sync::Arc;

use http::Uri;
use kerbside_gssapi::{ClientCredentials, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::digest::client::DigestSession;
use kerbside_proto::scheme::negotiate::client::{ExpectChallenge, ExpectFinalToken};
use kerbside_proto::{Challenge, MutualAuth, SchemeKind};

use super::attempt::{Exchange, Failure, StartError};
use super::event::{Event, Observer};
use super::{Client, OriginState, Parts};
use crate::conn::{Conn, Origin};
use crate::error::{Error, ErrorKind};
use crate::schemes::{exchange_error, gss_error, Initiator};

impl Client {
    /// Starts the chosen scheme on `conn`: its first credentials and the exchange
    /// that waits for the answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_scheme(
        &self,
        kind: SchemeKind,
        reason: String,
        origin: &Origin,
        conn: &Conn,
        challenges: &[Challenge],
        parts: &Parts,
        body: Option<&bytes::Bytes>,
        observer: &dyn Observer,
    ) -> Result<(String, Exchange), StartError> {
        let settings = &self.config.auth;
        match kind {
            SchemeKind::Negotiate => {
                match self
                    .start_negotiate(origin, conn, Some(challenges), reason.clone(), observer)
                    .await
                {
                    Ok((credentials, next)) => Ok((credentials, Exchange::Token(next))),
                    Err(Failure::Fatal(e)) if e.kerberos_unavailable() => {
                        // No ticket and none to be had (no ticket, a user the KDC
                        // does not know, no KDC), and nothing was sent: NTLM inside
                        // SPNEGO, when allowed and a password is at hand; otherwise
                        // the next scheme on offer.
                        observer.event(&Event::Notice {
                            message: format!("Negotiate skipped: {e}"),
                        });
                        if settings.ntlm_in_negotiate {
                            if let Some(found) =
                                settings
                                    .passwords
                                    .lookup(&origin.host, None, SchemeKind::Ntlm)
                            {
                                return self
                                    .start_ntlm(origin, conn, &found, true, reason, observer)
                                    .map(|(c, next)| (c, Exchange::Token(next)));
                            }
                        }
                        Err(StartError::Unavailable(e.to_string()))
                    }
                    Err(f) => Err(StartError::Failure(f)),
                }
            }
            SchemeKind::Ntlm => {
                let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
                    return Err(StartError::Unavailable("no password".to_owned()));
                };
                self.start_ntlm(origin, conn, &found, false, reason, observer)
                    .map(|(c, next)| (c, Exchange::Token(next)))
            }
            SchemeKind::Digest | SchemeKind::Basic => {
                let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
                    return Err(StartError::Unavailable("no password".to_owned()));
                };
                observer.event(&Event::Scheme {
                    proxy: false,
                    scheme: kind.name().to_owned(),
                    scheme_reason: reason,
                    target: found.user.to_owned(),
                    target_reason: found.source.describe().to_owned(),
                    channel_binding: false,
                });
                let password = found.password(kind, &origin.host).map_err(|e| {
                    StartError::Failure(Failure::Fatal(Error::new(ErrorKind::Auth, e)))
                })?;
                if kind == SchemeKind::Basic {
                    let credentials = crate::schemes::basic(found.user, password)
                        .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                    return Ok((
                        credentials,
                        Exchange::Password {
                            kind,
                            digest: None,
                            signed: None,
                            preemptive: false,
                        },
                    ));
                }
                let session = crate::schemes::DigestState::start(
                    challenges,
                    found.user,
                    password,
                    settings.allow_digest_md5,
                )
                .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                let (header, signed) = session
                    .authorization(parts.method.as_str(), &request_target(&parts.uri), body)
                    .map_err(|e| StartError::Failure(Failure::Fatal(e)))?;
                Ok((
                    header,
                    Exchange::Password {
                        kind,
                        digest: Some(Arc::new(session)),
                        signed: Some(signed),
                        preemptive: false,
                    },
                ))
            }
        }
    }

    /// The first NTLM message, under the `NTLM` scheme or inside SPNEGO under
    /// `Negotiate`.
    pub(super) fn start_ntlm(
        &self,
        origin: &Origin,
        conn: &Conn,
        found: &crate::keyring::FoundCredential<'_>,
        inside_negotiate: bool,
        reason: String,
        observer: &dyn Observer,
    ) -> Result<(String, ExpectFinalToken<Initiator>), StartError> {
        let settings = &self.config.auth;
        let bindings = if settings.channel_binding {
            conn.channel_binding.clone()
        } else {
            None
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: if inside_negotiate {
                "NTLM inside Negotiate (SPNEGO)".to_owned()
            } else {
                "NTLM".to_owned()
            },
            scheme_reason: reason,
            target: found.user.to_owned(),
            target_reason: found.source.describe().to_owned(),
            channel_binding: bindings.is_some(),
        });
        let fatal = |e: String| StartError::Failure(Failure::Fatal(Error::new(ErrorKind::Auth, e)));
        let (credentials, inputs) =
            crate::schemes::ntlm_inputs(found, &origin.host, bindings).map_err(fatal)?;
        let (mech, scheme) = if inside_negotiate {
            (
                Initiator::SpnegoNtlm(Box::new(kerbside_proto::spnego::SpnegoNtlmInitiator::new(
                    credentials,
                    inputs,
                ))),
                kerbside_proto::Scheme::NEGOTIATE,
            )
        } else {
            (
                Initiator::Ntlm(Box::new(
                    kerbside_proto::scheme::ntlm::client::NtlmInitiator::new(credentials, inputs),
                )),
                kerbside_proto::Scheme::NTLM,
            )
        };
        // NTLM has no mutual authentication of its own (SPNEGO's mechListMIC is
        // checked by the mechanism).
        let (credentials, next) = ExpectChallenge::new(mech, MutualAuth::Off)
            .with_scheme(scheme)
            .with_max_legs(settings.max_legs)
            .start()
            .map_err(|e| StartError::Failure(Failure::Fatal(exchange_error(e))))?;
        Ok((credentials.to_header_value(), next))
    }

    /// Credentials for a request to an origin whose Digest or Basic login was taken
    /// before.
    pub(super) fn preemptive_password(
        &self,
        origin: &Origin,
        known: &OriginState,
        kind: SchemeKind,
        parts: &Parts,
        body: Option<&bytes::Bytes>,
        observer: &dyn Observer,
    ) -> Result<Option<(String, Exchange)>, Failure> {
        let settings = &self.config.auth;
        let digest = match kind {
            SchemeKind::Digest => match known.digest.clone() {
                Some(session) => Some(session),
                None => return Ok(None),
            },
            _ => None,
        };
        let Some(found) = settings.passwords.lookup(&origin.host, None, kind) else {
            return Ok(None);
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: kind.name().to_owned(),
            scheme_reason: "sent without waiting for a 401: the server took it before".to_owned(),
            target: found.user.to_owned(),
            target_reason: found.source.describe().to_owned(),
            channel_binding: false,
        });
        let (header, signed) = match &digest {
            Some(session) => {
                let (header, signed) = session.authorization(
                    parts.method.as_str(),
                    &request_target(&parts.uri),
                    body,
                )?;
                (header, Some(signed))
            }
            None => {
                let password = found
                    .password(kind, &origin.host)
                    .map_err(|e| Error::new(ErrorKind::Auth, e))?;
                (crate::schemes::basic(found.user, password)?, None)
            }
        };
        Ok(Some((
            header,
            Exchange::Password {
                kind,
                digest,
                signed,
                preemptive: true,
            },
        )))
    }

    /// New Digest credentials when the 401 says the nonce was stale.
    pub(super) fn digest_stale_retry(
        &self,
        session: &crate::schemes::DigestState,
        challenges: &[Challenge],
        parts: &Parts,
        body: Option<&bytes::Bytes>,
    ) -> Result<Option<(String, Box<DigestSession>)>, Failure> {
        if !session.take_stale(challenges) {
            return Ok(None);
        }
        Ok(Some(session.authorization(
            parts.method.as_str(),
            &request_target(&parts.uri),
            body,
        )?))
    }

    /// Prepares the first token of an exchange on `conn`.
    pub(super) async fn start_negotiate(
        &self,
        origin: &Origin,
        conn: &Conn,
        challenges: Option<&[Challenge]>,
        scheme_reason: String,
        observer: &dyn Observer,
    ) -> Result<(String, ExpectFinalToken<Initiator>), Failure> {
        let settings = &self.config.auth;
        let canonical = if settings.target.needs_canonical_name(&origin.host) {
            let host = origin.host.clone();
            tokio::task::spawn_blocking(move || canonical_name(&host))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let target =
            settings
                .target
                .resolve(&origin.host, origin.explicit_port(), canonical.as_deref());
        let channel_bindings = if settings.channel_binding {
            conn.channel_binding.clone()
        } else {
            None
        };
        observer.event(&Event::Scheme {
            proxy: false,
            scheme: "Negotiate".to_owned(),
            scheme_reason,
            target: target.name.clone(),
            target_reason: target.reason.clone(),
            channel_binding: channel_bindings.is_some(),
        });
        let config = InitiatorConfig {
            target: target.name,
            mutual: settings.mutual,
            delegation: settings.delegation,
            credentials: settings.credentials.clone(),
            channel_bindings,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let challenges = challenges.map(<[Challenge]>::to_vec);
        let (credentials, next) = blocking(move || {
            let mech = Initiator::Gss(
                NegotiateInitiator::new(&config)
                    .map_err(|e| credential_error(e, &config.credentials))?,
            );
            let start = ExpectChallenge::new(mech, mutual).with_max_legs(max_legs);
            match challenges {
                Some(c) => start.handle_challenge(&c),
                None => start.start(),
            }
            .map_err(exchange_error)
        })
        .await??;
        Ok((credentials.to_header_value(), next))
    }
}

/// The request-target of an origin-form request: the path and query.
pub(super) fn request_target(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
}

/// The canonical name DNS gives for `host` (following CNAMEs), if any.
pub(super) fn canonical_name(host: &str) -> Option<String> {
    let hints = dns_lookup::AddrInfoHints {
        flags: libc_ai_canonname(),
        ..dns_lookup::AddrInfoHints::default()
    };
    dns_lookup::getaddrinfo(Some(host), None, Some(hints))
        .ok()?
        .filter_map(Result::ok)
        .find_map(|ai| ai.canonname)
}

/// `AI_CANONNAME` from <netdb.h> (the same value on Linux and the BSDs).
pub(super) const fn libc_ai_canonname() -> i32 {
    2
}

/// The error for Kerberos credentials that could not be had, naming the user
/// when a password was given for one (`-u user:password`). The GSSAPI problem is
/// recorded in it: [`Error::kerberos_unavailable`] reads it.
pub(super) fn credential_error(
    e: kerbside_gssapi::GssError,
    credentials: &ClientCredentials,
) -> Error {
    // krb5.h: KRB5KDC_ERR_PREAUTH_FAILED, a wrong password where the KDC asks for
    // pre-authentication.
    const PREAUTH_FAILED: u32 = (-1_765_328_360_i32) as u32;
    let principal = match credentials {
        ClientCredentials::Password { principal, .. }
        | ClientCredentials::FreshPassword { principal, .. } => principal,
        _ => return gss_error(e),
    };
    let message = match e.problem() {
        kerbside_gssapi::Problem::ClientPrincipalUnknown => format!(
            "the KDC does not know the user {principal}, so its password gets no Kerberos \
             ticket"
        ),
        kerbside_gssapi::Problem::AccountRevoked => format!(
            "the KDC refused {principal}: the account is locked out after too many wrong \
             passwords, or disabled (nothing was sent to the server)"
        ),
        kerbside_gssapi::Problem::Integrity | kerbside_gssapi::Problem::WrongPassword => format!(
            "the KDC refused the password of {principal}: wrong password (nothing was sent \
             to the server)"
        ),
        _ if e.minor() == PREAUTH_FAILED => format!(
            "the KDC refused the password of {principal}: wrong password (nothing was sent \
             to the server)"
        ),
        _ => return gss_error(e),
    };
    let problem = e.problem();
    Error::with_source(ErrorKind::Auth, message, e).with_kerberos_problem(Some(problem))
}

/// Runs GSSAPI work (which may block on files or the KDC) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Failure::Fatal(Error::new(
            ErrorKind::Auth,
            format!("authentication task failed: {e}"),
        ))
    })
}
