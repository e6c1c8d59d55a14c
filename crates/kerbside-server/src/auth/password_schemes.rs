//! The password schemes and NTLM, checked against the gate's users files (Basic also
//! against the KDC and the keytab): each runs the check proto's typed state names and
//! hands the outcome back for the verdict.

use kerbside_proto::server_decision::{
    BasicCheck, BasicRoute, ExpectBasic, ExpectDigest, ExpectNtlm, ExpectSpnegoAuthenticate,
    ExpectSpnegoChallenge, NtlmRoute, Refused, Unreadable,
};

use super::*;

/// Checks `Authorization: Basic` against the htpasswd file, or the KDC and the keytab.
pub(super) async fn basic(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    expect: ExpectBasic,
) -> Verdict {
    let config = &shared.config;
    let decoded = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let pair = decoded
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()));
    let user = pair.as_ref().map(|(user, _)| user.as_str());
    let known = user.is_some_and(|user| {
        config
            .basic_users
            .as_ref()
            .is_some_and(|u| u.contains(user))
    });
    let check = match expect.credentials(user, known) {
        BasicRoute::Answer(verdict) => {
            if let Verdict::Refuse(refusal) = &verdict {
                if refusal.failure == Some(Failure::BasicUnknownUser) {
                    tracing::warn!(
                        user = user.unwrap_or("-"),
                        "Basic credentials for a user the gate does not know"
                    );
                }
            }
            return verdict;
        }
        BasicRoute::Htpasswd(check) => {
            let (Some(users), Some((user, password))) = (config.basic_users.clone(), pair) else {
                return check.handle(BasicCheck::Unavailable);
            };
            // The htpasswd file knows this user: bcrypt, off the async threads and within
            // the handshake limit (it is slow on purpose).
            let Ok(_permit) = shared.handshakes.acquire().await else {
                return check.handle(BasicCheck::Unavailable);
            };
            let started = Instant::now();
            let name = user.clone();
            let verdict = tokio::task::spawn_blocking(move || users.verify(&name, &password)).await;
            let ok = matches!(
                verdict,
                Ok(kerbside_proto::scheme::basic::htpasswd::Verdict::Verified)
            );
            if let Some(m) = shared.metrics() {
                m.handshake(ok, started.elapsed());
            }
            if !ok {
                tracing::warn!(%user, "Basic credentials refused (htpasswd): {verdict:?}");
                return check.handle(BasicCheck::Refused);
            }
            tracing::info!(%user, path = %request.uri.path(), "authenticated with Basic (htpasswd)");
            return check.handle(BasicCheck::Verified(user));
        }
        BasicRoute::Kdc(check) => check,
    };
    let (Some(fallback), Some(acceptor), Some((user, password))) =
        (&config.basic_fallback, config.acceptor.clone(), pair)
    else {
        return check.handle(BasicCheck::Unavailable);
    };
    let principal =
        match crate::passwords::basic_principal(&user, fallback.netbios_domain.as_deref()) {
            Ok(principal) => principal,
            Err(e) => {
                tracing::warn!(%user, "Basic credentials refused: {e}");
                return check.handle(BasicCheck::UnknownUser);
            }
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
        return check.handle(BasicCheck::Unavailable);
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
                principal,
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
        Ok(Ok(AcceptStep::Done {
            ref principal,
            ref service,
            ..
        })) if !super::identify::right_service(shared, request, principal, service.as_deref()) => {
            check.handle(BasicCheck::Refused)
        }
        Ok(Ok(AcceptStep::Done {
            principal,
            pac,
            lifetime,
            ..
        })) => {
            let principal = shared
                .domain_accounts
                .login(principal, pac.as_deref(), lifetime);
            if principal.contains("\\@") {
                tracing::warn!(%principal, "the KDC did not canonicalize the UPN the user typed, so the user is named by it, not by the account: set `canonicalize = true` in [libdefaults] of the gate's krb5.conf");
            }
            tracing::info!(%principal, path = %request.uri.path(), "authenticated with Basic (checked against the KDC and the keytab)");
            check.handle(BasicCheck::Verified(principal))
        }
        Ok(Ok(AcceptStep::Continue(_))) => check.handle(BasicCheck::Unavailable),
        Ok(Err(e)) => {
            tracing::warn!(user = %user_for_log, problem = ?e.problem(), "Basic credentials refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure(reason_label(e.problem()));
            }
            check.handle(BasicCheck::Refused)
        }
        Err(e) => {
            tracing::error!("authentication task failed: {e}");
            check.handle(BasicCheck::Unavailable)
        }
    }
}

/// `Authorization: NTLM`: a NEGOTIATE gets the CHALLENGE (kept with the connection),
/// an AUTHENTICATE is checked against it and the users file; the connection is then
/// authenticated (NTLM authenticates connections, MS-NTHT). With `--ntlm-winbind` the
/// domain controller checks the response; when it cannot be asked, proto's verdict is
/// `503`.
pub(super) async fn ntlm(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    expect: ExpectNtlm,
    conn: Option<&Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
) -> Verdict {
    let config = &shared.config;
    let token = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten());
    let pending = conn.is_some_and(|c| c.lock().ntlm.is_some());
    let route = expect.message(token.as_deref(), pending);
    // Proto routes a message to a check only when NTLM is configured and it decoded.
    let (Some(settings), Some(token)) = (&config.ntlm, token.as_deref()) else {
        return match route {
            NtlmRoute::Answer(verdict) => verdict,
            NtlmRoute::Challenge(expect) => expect.handle(Err(Unreadable)),
            NtlmRoute::Verify(expect) => expect.handle(Err(Refused)),
        };
    };
    match route {
        NtlmRoute::Answer(verdict) => {
            if let Verdict::Refuse(refusal) = &verdict {
                if refusal.failure == Some(Failure::NtlmNoChallenge) {
                    tracing::warn!("NTLM AUTHENTICATE without a CHALLENGE on this connection");
                }
            }
            verdict
        }
        NtlmRoute::Challenge(expect) => match settings.challenge(token) {
            Ok((challenge, pending)) => {
                if let Some(conn) = conn {
                    conn.lock().ntlm = Some(pending);
                }
                expect.handle(Ok(challenge))
            }
            Err(e) => {
                tracing::warn!("bad NTLM NEGOTIATE message: {e}");
                expect.handle(Err(Unreadable))
            }
        },
        NtlmRoute::Verify(expect) => {
            let Some(pending) = conn.and_then(|c| c.lock().ntlm.take()) else {
                return expect.handle(Err(Refused));
            };
            let started = Instant::now();
            let result = settings
                .verify(
                    pending,
                    token,
                    binding.as_deref().map(Vec::as_slice),
                    expect.binding_check(),
                )
                .await;
            if let Some(m) = shared.metrics() {
                m.handshake(result.is_ok(), started.elapsed());
            }
            match result {
                Ok(login) => {
                    let (principal, channel_bound) = (login.principal, login.channel_bound);
                    if let Some(account) = login.account {
                        shared.domain_accounts.insert(&principal, account, None);
                    }
                    tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM");
                    expect.handle(Ok(Verified {
                        principal,
                        channel_bound,
                        final_token: None,
                    }))
                }
                Err(e) => {
                    tracing::warn!(path = %request.uri.path(), "NTLM credentials refused: {e}");
                    if e.is_unavailable() {
                        expect.handle_unavailable()
                    } else {
                        expect.handle(Err(Refused))
                    }
                }
            }
        }
    }
}

/// NTLM inside SPNEGO under `Negotiate`, first leg: the NegTokenInit gets the
/// CHALLENGE, kept with the connection.
pub(super) fn spnego_ntlm_challenge(
    shared: &Arc<Shared>,
    expect: ExpectSpnegoChallenge,
    conn: Option<&Arc<ConnectionAuth>>,
) -> Verdict {
    let Some(settings) = &shared.config.ntlm else {
        return expect.handle(Err(Unreadable));
    };
    match settings.spnego_challenge(expect.token()) {
        Ok((reply, pending)) => {
            if let Some(conn) = conn {
                conn.lock().spnego_ntlm = Some(pending);
            }
            expect.handle(Ok(reply))
        }
        Err(e) => {
            tracing::warn!("bad NTLM-in-SPNEGO token: {e}");
            expect.handle(Err(Unreadable))
        }
    }
}

/// NTLM inside SPNEGO, second leg: the NegTokenResp with the AUTHENTICATE is checked
/// against the connection's pending exchange (by the domain controller with
/// `--ntlm-winbind`; `503` when it cannot be asked).
pub(super) async fn spnego_ntlm_authenticate(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    expect: ExpectSpnegoAuthenticate,
    conn: Option<&Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
) -> Verdict {
    let (Some(settings), Some(pending)) = (
        &shared.config.ntlm,
        conn.and_then(|c| c.lock().spnego_ntlm.take()),
    ) else {
        return expect.handle(Err(Refused));
    };
    let started = Instant::now();
    let result = settings
        .spnego_verify(
            pending,
            expect.token(),
            binding.as_deref().map(Vec::as_slice),
            expect.binding_check(),
        )
        .await;
    if let Some(m) = shared.metrics() {
        m.handshake(result.is_ok(), started.elapsed());
    }
    match result {
        Ok((reply, login)) => {
            let (principal, channel_bound) = (login.principal, login.channel_bound);
            if let Some(account) = login.account {
                shared.domain_accounts.insert(&principal, account, None);
            }
            tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM inside Negotiate");
            expect.handle(Ok(Verified {
                principal,
                channel_bound,
                final_token: Some(reply),
            }))
        }
        Err(e) => {
            tracing::warn!(path = %request.uri.path(), "NTLM inside Negotiate refused: {e}");
            if e.is_unavailable() {
                expect.handle_unavailable()
            } else {
                expect.handle(Err(Refused))
            }
        }
    }
}

/// `Authorization: Digest`, checked against the htdigest file; the nonce count is
/// recorded so a replayed request is refused.
pub(super) fn digest(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    expect: ExpectDigest,
) -> Verdict {
    let config = &shared.config;
    let credentials = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok());
    let (Some(settings), Some(credentials)) = (&config.digest, credentials) else {
        return expect.handle(Err(Unreadable));
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
    match &result {
        Ok(verified) => {
            tracing::info!(principal = %verified.user, path = %request.uri.path(), "authenticated with Digest")
        }
        Err(refusal) => {
            tracing::warn!(path = %request.uri.path(), "Digest credentials refused: {refusal}")
        }
    }
    expect.handle(Ok(result))
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
