//! The password schemes and NTLM, checked against the gate's users files (Basic also
//! against the KDC and the keytab): each turns one `Authorization` header into an
//! identity or a refusal.

use super::*;

/// Checks `Authorization: Basic` against the KDC and the keytab.
pub(super) async fn basic(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = || Outcome::Refuse(Refusal::new(StatusCode::UNAUTHORIZED, None));
    let decoded = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((user, password)) = decoded
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
    else {
        return Err(Outcome::Refuse(Refusal::new(StatusCode::BAD_REQUEST, None)));
    };
    if user.is_empty() || user.contains(['/', '\0']) {
        return Err(refused());
    }
    if let Some(users) = config.basic_users.as_ref().filter(|u| u.contains(&user)) {
        // The htpasswd file knows this user: bcrypt, off the async threads and within
        // the handshake limit (it is slow on purpose).
        let Ok(_permit) = shared.handshakes.acquire().await else {
            return Err(refused());
        };
        let users = users.clone();
        let started = Instant::now();
        let (name, pass) = (user.clone(), password.clone());
        let verdict = tokio::task::spawn_blocking(move || users.verify(&name, &pass)).await;
        let ok = matches!(
            verdict,
            Ok(kerbside_proto::scheme::basic::htpasswd::Verdict::Verified)
        );
        if let Some(m) = shared.metrics() {
            m.handshake(ok, started.elapsed());
            if !ok {
                m.failure("basic_wrong_password");
            }
        }
        if !ok {
            tracing::warn!(%user, "Basic credentials refused (htpasswd): {verdict:?}");
            return Err(refused());
        }
        tracing::info!(%user, path = %request.uri.path(), "authenticated with Basic (htpasswd)");
        return Ok(Identity::Known {
            principal: user,
            scheme: SchemeKind::Basic,
            kerberos: false,
            final_token: None,
            set_cookie: None,
            info: None,
            channel_bound: false,
        });
    }
    let (Some(fallback), Some(acceptor)) = (&config.basic_fallback, config.acceptor.clone()) else {
        tracing::warn!(%user, "Basic credentials for a user the gate does not know");
        if let Some(m) = shared.metrics() {
            m.failure("basic_unknown_user");
        }
        return Err(refused());
    };
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.host())
        .map(strip_port)
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let service = fallback
        .service
        .clone()
        .unwrap_or_else(|| format!("HTTP@{host}"));
    let Ok(_permit) = shared.handshakes.acquire().await else {
        return Err(refused());
    };
    let started = Instant::now();
    let user_for_log = user.clone();
    let result = tokio::task::spawn_blocking(move || {
        use kerbside_proto::Mechanism;
        let config = kerbside_gssapi::InitiatorConfig {
            target: service,
            mutual: kerbside_proto::MutualAuth::Off,
            delegation: kerbside_gssapi::Delegation::None,
            credentials: kerbside_gssapi::ClientCredentials::FreshPassword {
                principal: user,
                password,
            },
            channel_bindings: None,
        };
        let mut initiator = kerbside_gssapi::NegotiateInitiator::new(&config)?;
        let token = match initiator.step(None)? {
            kerbside_proto::Step::Continue(t) | kerbside_proto::Step::Done(Some(t)) => t,
            kerbside_proto::Step::Done(None) => Vec::new(),
        };
        // The ticket the KDC issued must open with our own key.
        acceptor.accept(&token)
    })
    .await;
    if let Some(m) = shared.metrics() {
        m.handshake(
            matches!(result, Ok(Ok(AcceptStep::Done { .. }))),
            started.elapsed(),
        );
    }
    match result {
        Ok(Ok(AcceptStep::Done { principal, .. })) => {
            tracing::info!(%principal, path = %request.uri.path(), "authenticated with Basic (checked against the KDC and the keytab)");
            Ok(Identity::Known {
                principal,
                scheme: SchemeKind::Basic,
                kerberos: true,
                final_token: None,
                set_cookie: None,
                info: None,
                channel_bound: false,
            })
        }
        Ok(Ok(AcceptStep::Continue(_))) => Err(refused()),
        Ok(Err(e)) => {
            tracing::warn!(user = %user_for_log, problem = ?e.problem(), "Basic credentials refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure(reason_label(e.problem()));
            }
            Err(refused())
        }
        Err(e) => {
            tracing::error!("authentication task failed: {e}");
            Err(refused())
        }
    }
}

/// `Authorization: NTLM`: a NEGOTIATE gets the CHALLENGE (kept with the connection),
/// an AUTHENTICATE is checked against it and the users file; the connection is then
/// authenticated (NTLM authenticates connections, MS-NTHT).
pub(super) fn ntlm(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    h2: bool,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = |status| Outcome::Refuse(Refusal::new(status, None));
    let Some(settings) = &config.ntlm else {
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    if config.mode != AuthMode::Connection {
        tracing::info!("NTLM credentials, but NTLM needs connection mode; asking again");
        return Err(refused(StatusCode::UNAUTHORIZED));
    }
    if h2 {
        return Err(Outcome::Http11Required);
    }
    let token = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten());
    let Some(token) = token else {
        return Err(refused(StatusCode::BAD_REQUEST));
    };
    let Some(conn) = conn else {
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    match crate::passwords::ntlm_message_type(&token) {
        Some(1) => match settings.challenge(&token) {
            Ok((challenge, pending)) => {
                conn.lock().ntlm = Some(pending);
                Err(Outcome::Refuse(Refusal {
                    ntlm: true,
                    ..Refusal::new(StatusCode::UNAUTHORIZED, Some(challenge))
                }))
            }
            Err(e) => {
                tracing::warn!("bad NTLM NEGOTIATE message: {e}");
                Err(refused(StatusCode::BAD_REQUEST))
            }
        },
        Some(3) => {
            let Some(pending) = conn.lock().ntlm.take() else {
                tracing::warn!("NTLM AUTHENTICATE without a CHALLENGE on this connection");
                if let Some(m) = shared.metrics() {
                    m.failure("ntlm_no_challenge");
                }
                return Err(refused(StatusCode::UNAUTHORIZED));
            };
            let check = ntlm_binding_check(config.channel_binding, binding.is_some());
            let started = Instant::now();
            let result = settings.verify(
                pending,
                &token,
                binding.as_deref().map(Vec::as_slice),
                check,
            );
            if let Some(m) = shared.metrics() {
                m.handshake(result.is_ok(), started.elapsed());
            }
            match result {
                Ok((principal, channel_bound)) => {
                    tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM");
                    conn.lock().principal =
                        Some((principal.clone(), SchemeKind::Ntlm, false, channel_bound));
                    Ok(Identity::Known {
                        principal,
                        scheme: SchemeKind::Ntlm,
                        kerberos: false,
                        final_token: None,
                        set_cookie: None,
                        info: None,
                        channel_bound,
                    })
                }
                Err(e) => {
                    tracing::warn!(path = %request.uri.path(), "NTLM credentials refused: {e}");
                    if let Some(m) = shared.metrics() {
                        m.failure("ntlm_refused");
                    }
                    Err(refused(StatusCode::UNAUTHORIZED))
                }
            }
        }
        _ => Err(refused(StatusCode::BAD_REQUEST)),
    }
}

/// NTLM inside SPNEGO under `Negotiate`: the NegTokenInit gets the CHALLENGE (kept
/// with the connection), the NegTokenResp with the AUTHENTICATE is checked against it.
pub(super) fn spnego_ntlm(
    shared: &Arc<Shared>,
    settings: &crate::passwords::NtlmSettings,
    request: &http::request::Parts,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    token: &[u8],
    pending: Option<kerbside_proto::spnego::SpnegoExpectAuthenticate>,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = |status| Outcome::Refuse(Refusal::new(status, None));
    let Some(conn) = conn.filter(|_| config.mode == AuthMode::Connection) else {
        tracing::info!("NTLM inside Negotiate needs connection mode; asking again");
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    let Some(pending) = pending else {
        return match settings.spnego_challenge(token) {
            Ok((reply, pending)) => {
                conn.lock().spnego_ntlm = Some(pending);
                Err(Outcome::Refuse(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    Some(reply),
                )))
            }
            Err(e) => {
                tracing::warn!("bad NTLM-in-SPNEGO token: {e}");
                Err(refused(StatusCode::BAD_REQUEST))
            }
        };
    };
    let check = ntlm_binding_check(config.channel_binding, binding.is_some());
    let started = Instant::now();
    let result =
        settings.spnego_verify(pending, token, binding.as_deref().map(Vec::as_slice), check);
    if let Some(m) = shared.metrics() {
        m.handshake(result.is_ok(), started.elapsed());
    }
    match result {
        Ok((reply, principal, channel_bound)) => {
            tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM inside Negotiate");
            // The HTTP scheme was Negotiate, whatever mechanism SPNEGO chose.
            conn.lock().principal = Some((
                principal.clone(),
                SchemeKind::Negotiate,
                false,
                channel_bound,
            ));
            Ok(Identity::Known {
                principal,
                scheme: SchemeKind::Negotiate,
                kerberos: false,
                final_token: Some(reply),
                set_cookie: None,
                info: None,
                channel_bound,
            })
        }
        Err(e) => {
            tracing::warn!(path = %request.uri.path(), "NTLM inside Negotiate refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure("ntlm_refused");
            }
            Err(refused(StatusCode::UNAUTHORIZED))
        }
    }
}

pub(super) fn ntlm_binding_check(
    policy: ChannelBindingPolicy,
    tls: bool,
) -> kerbside_proto::scheme::ntlm::server::ChannelBindingCheck {
    use kerbside_proto::scheme::ntlm::server::ChannelBindingCheck;
    match (policy, tls) {
        (_, false) | (ChannelBindingPolicy::Off, _) => ChannelBindingCheck::Off,
        (ChannelBindingPolicy::Optional, true) => ChannelBindingCheck::IfPresent,
        (ChannelBindingPolicy::Required, true) => ChannelBindingCheck::Required,
    }
}

/// `Authorization: Digest`, checked against the htdigest file; the nonce count is
/// recorded so a replayed request is refused.
pub(super) fn digest(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let Some(settings) = &config.digest else {
        return Err(Outcome::Refuse(Refusal::new(
            StatusCode::UNAUTHORIZED,
            None,
        )));
    };
    let credentials = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok());
    let Some(credentials) = credentials else {
        return Err(Outcome::Refuse(Refusal::new(StatusCode::BAD_REQUEST, None)));
    };
    // The client hashed the request target as it sent it, before the gate's edge made
    // the path canonical.
    let target = match request
        .extensions
        .get::<crate::canonical_path::OriginalTarget>()
    {
        Some(original) => original.0.clone(),
        None => request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
    };
    let started = Instant::now();
    let result = settings.verify(&credentials, request.method.as_str(), &target);
    if let Some(m) = shared.metrics() {
        m.handshake(result.is_ok(), started.elapsed());
    }
    match result {
        Ok(verified) => {
            tracing::info!(principal = %verified.user, path = %request.uri.path(), "authenticated with Digest");
            Ok(Identity::Known {
                principal: verified.user,
                scheme: SchemeKind::Digest,
                kerberos: false,
                final_token: None,
                set_cookie: None,
                info: Some(verified.authentication_info),
                channel_bound: false,
            })
        }
        Err(refusal) => {
            tracing::warn!(path = %request.uri.path(), "Digest credentials refused: {refusal}");
            if let Some(m) = shared.metrics() {
                m.failure(if refusal.is_stale() {
                    "digest_stale_nonce"
                } else {
                    "digest_refused"
                });
            }
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Err(Outcome::Refuse(Refusal {
                stale: refusal.is_stale(),
                ..Refusal::new(status, None)
            }))
        }
    }
}

/// `host:port` → `host` (`[v6]:port` → `[v6]`).
pub(super) fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => authority,
    }
}
