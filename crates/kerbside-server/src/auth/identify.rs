//! Carrying out what [`kerbside_proto::server_decision`] decides about a request's
//! credentials: the checks it names run here (GSSAPI within the handshake limit; the
//! password schemes in `password_schemes.rs`), their outcomes go back to it, and
//! what a login asks to be remembered is done (the connection's identity, a sealed
//! session cookie).

use super::password_schemes::{
    basic, digest, ntlm, spnego_ntlm_authenticate, spnego_ntlm_challenge,
};
use super::*;

/// Carries out what [`kerbside_proto::server_decision`] decides about a request's
/// credentials: runs the checks it names (GSSAPI, NTLM, Digest, Basic), hands their
/// outcomes back, and does what the login asks to be remembered (the connection's
/// identity; a sealed session cookie, returned as the `Set-Cookie` value).
pub(super) async fn carry_out(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    mut start: Start,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    session: SessionState,
) -> (Verdict, Option<String>) {
    let config = &shared.config;
    loop {
        let verdict = match start {
            Start::AskRules(ask) => {
                let needs = config.access.needs_authentication(
                    &request.method,
                    request.uri.path(),
                    request.uri.query(),
                );
                start = ask.handle(needs);
                continue;
            }
            Start::Answer(verdict) => verdict,
            Start::Reject(refusal) => Verdict::Refuse(refusal),
            Start::Basic(expect) => basic(shared, request, expect).await,
            Start::Ntlm(expect) => ntlm(shared, request, expect, conn.as_ref(), binding).await,
            Start::Digest(expect) => digest(shared, request, expect),
            Start::Remembered(expect) => {
                let connection = conn.as_ref().and_then(|c| c.lock().principal.clone());
                expect.handle(connection, session)
            }
            Start::Negotiate(expect) => {
                let (verdict, lifetime) =
                    negotiate(shared, request, expect, conn.as_ref(), binding).await;
                let set_cookie = match &verdict {
                    Verdict::Authenticated(login) => {
                        remember(shared, login, conn.as_ref(), lifetime)
                    }
                    _ => None,
                };
                return (verdict, set_cookie);
            }
        };
        if let Verdict::Authenticated(login) = &verdict {
            remember(shared, login, conn.as_ref(), None);
        }
        return (verdict, None);
    }
}

/// Does what a login asks to be remembered; a session cookie's `Set-Cookie` value
/// comes back. `lifetime`: how long the Kerberos ticket stays valid (one hour when
/// GSSAPI does not say).
fn remember(
    shared: &Shared,
    login: &Login,
    conn: Option<&Arc<ConnectionAuth>>,
    lifetime: Option<Duration>,
) -> Option<String> {
    let config = &shared.config;
    if let Some(m) = shared.metrics() {
        match login.source {
            Source::Connection => m.connection_reuse(),
            Source::SessionCookie => m.session_hit(),
            Source::Credentials => {}
        }
    }
    match login.remember {
        Remember::Nothing => None,
        Remember::OnConnection => {
            if let Some(conn) = conn {
                conn.lock().principal = Some(ConnectionLogin {
                    principal: login.principal.clone(),
                    scheme: login.scheme,
                    kerberos: login.kerberos,
                    channel_bound: login.channel_bound,
                });
            }
            None
        }
        Remember::SessionCookie => {
            let codec = config.sessions.as_ref()?;
            let remaining = lifetime.unwrap_or(Duration::from_secs(3600));
            let now = SystemTime::now();
            match codec.seal(&login.principal, remaining, now) {
                Ok((value, session)) => {
                    Some(codec.set_cookie_header(&value, &session, config.secure_cookies, now))
                }
                Err(e) => {
                    tracing::error!("cannot make a session cookie: {e}");
                    None
                }
            }
        }
    }
}

/// A `Negotiate` token: NTLM inside SPNEGO or GSSAPI, as proto routes it. The
/// ticket's remaining lifetime comes back with the verdict (for a session cookie).
async fn negotiate(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    expect: ExpectNegotiate,
    conn: Option<&Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
) -> (Verdict, Option<Duration>) {
    let pending = conn.is_some_and(|c| c.lock().spnego_ntlm.is_some());
    let expect = match expect.route(pending) {
        NegotiateRoute::Answer(verdict) => return (verdict, None),
        NegotiateRoute::SpnegoNtlmChallenge(expect) => {
            return (spnego_ntlm_challenge(shared, expect, conn), None)
        }
        NegotiateRoute::SpnegoNtlmAuthenticate(expect) => {
            return (
                spnego_ntlm_authenticate(shared, request, expect, conn, binding).await,
                None,
            )
        }
        NegotiateRoute::Kerberos(expect) => expect,
    };
    let accepted = shared
        .accept(
            expect.token(),
            conn.filter(|_| expect.keeps_context()).cloned(),
            binding.filter(|_| expect.uses_binding()),
        )
        .await;
    let mut lifetime = None;
    let outcome = match accepted {
        Err(outcome) => outcome,
        Ok(Ok(AcceptStep::Done {
            ref principal,
            ref service,
            ..
        })) if !right_service(shared, request, principal, service.as_deref()) => {
            KerberosOutcome::Refused
        }
        Ok(Ok(AcceptStep::Done {
            principal,
            token,
            channel_bound,
            lifetime: remaining,
            pac,
            ..
        })) => {
            lifetime = remaining;
            // An AD user is named from the PAC (its account), before anything logs or
            // remembers the login.
            let principal = shared
                .domain_accounts
                .login(principal, pac.as_deref(), remaining);
            KerberosOutcome::Done(Verified {
                principal,
                channel_bound,
                final_token: token,
            })
        }
        Ok(Ok(AcceptStep::Continue(next))) => {
            if !expect.keeps_context() {
                // Per request, a context cannot wait for the next leg: start over.
                tracing::warn!("token needs another leg, which only connection mode keeps");
            }
            KerberosOutcome::Continue(next)
        }
        Ok(Err(e)) => {
            tracing::warn!(problem = ?e.problem(), path = %request.uri.path(), "Negotiate token refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure(reason_label(e.problem()));
            }
            KerberosOutcome::Refused
        }
    };
    let principal = match &outcome {
        KerberosOutcome::Done(v) => Some(v.principal.clone()),
        _ => None,
    };
    let verdict = expect.handle(outcome);
    if let Some(principal) = principal {
        match &verdict {
            Verdict::Authenticated(_) => {
                tracing::info!(%principal, path = %request.uri.path(), "authenticated")
            }
            _ => tracing::warn!(
                %principal,
                "token not bound to this TLS channel (channel-binding required)"
            ),
        }
    }
    (verdict, lifetime)
}

/// Whether the ticket's `service` is one the gate takes for this request (a list of
/// acceptor names, or `{HOSTNAME}`: see [`AcceptorNames`]); a ticket for another one is
/// refused (`401`) with a line in the log saying which service and which host.
///
/// [`AcceptorNames`]: kerbside_proto::acceptor_names::AcceptorNames
pub(super) fn right_service(
    shared: &Shared,
    request: &http::request::Parts,
    principal: &str,
    service: Option<&str>,
) -> bool {
    let names = &shared.config.acceptor_names;
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.authority().map(|a| a.as_str()));
    match names.check(service.unwrap_or("(unknown)"), host) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(%principal, path = %request.uri.path(), "Negotiate token refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure("wrong_service");
            }
            false
        }
    }
}
