//! One attempt at a request on one connection: the legs of its handshake, the
//! 401s it meets, and what the client learns from them.

use std::sync::Arc;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use kerbside_proto::driver::{
    Answered, AttemptEnd, Connection, ConnectionAfter, GiveUp, Learn, Next, Preempt, RequestDriver,
    ResponseHead, RestartReason, SendOn, Sent, TokenResult,
};
use kerbside_proto::scheme::digest::client::DigestSession;
use kerbside_proto::scheme::negotiate::client::{
    ExpectFinalToken, MutualOutcome, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, Challenge, SchemeKind};

use super::event::{Event, Observer, Outcome};
use super::proxy_auth::{ProxyAuth, ProxyStep};
use super::start::blocking;
use super::{Client, Parts};
use crate::body::Replayable;
use crate::conn::{Conn, Origin};
use crate::error::{Error, ErrorKind};
use crate::schemes::{exchange_error, DigestState, Initiator, InitiatorError};

/// Why an attempt ended without a response.
pub(super) enum Failure {
    /// The connection went away in the middle of a handshake (or a reused one was
    /// stale): worth one more try on a fresh connection.
    Restart(RestartReason, Error),
    /// The server wants HTTP/1.1 for this.
    Http11Required,
    /// Give up.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

pub(super) struct Leg {
    pub(super) response: Response<Incoming>,
    /// A streamed body was taken back unsent: the connection cannot be used again.
    pub(super) withheld: bool,
}

impl Client {
    /// One attempt at the request, leg after leg, on one connection (or a new one
    /// where the driver says so). Every decision comes from the attempt's state
    /// machine ([`kerbside_proto::driver`]); this only carries them out.
    pub(super) async fn attempt(
        &self,
        origin: &Origin,
        parts: &Parts,
        body: &mut Replayable,
        observer: &dyn Observer,
        request: &mut RequestDriver,
    ) -> Result<Response<Incoming>, Failure> {
        let known = self.origin_state(origin);
        let key = self.key(origin);
        let transport = self.transport(origin);
        // A session cookie for this URL may stand for the handshake: try it first
        // (a 401 still leads to the exchange).
        let has_cookie = self.config.cookies && self.cookie_header(&parts.uri).is_some();
        let opening = request.open(
            &self.driver,
            known.facts(),
            &origin.host,
            transport,
            has_cookie,
        );
        let pooled = match opening.connection() {
            Connection::Pooled {
                prefer_authenticated,
                h1_only,
            } => self.checkout(&key, prefer_authenticated, h1_only),
            Connection::Fresh { .. } => None,
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => {
                observer.event(&Event::Reusing {
                    conn: c.id,
                    authenticated: c.authenticated,
                });
                c
            }
            None => self.new_conn(origin, known.h1_only, observer).await?,
        };
        let mut proxy_auth = self.config.proxy.route(origin).map(|p| {
            ProxyAuth::new(p, self.config.auth.max_auth_rounds)
                .for_request(parts.method.as_str(), parts.uri.to_string())
        });
        if let Some(pa) = proxy_auth.as_mut() {
            pa.preempt_digest(self, observer);
        }
        let (mut ready, preempt) = opening.connected(reused, conn.authenticated);
        let mut exchange = None;
        let mut authorization = None;
        let mut sent = Sent::Nothing;
        match preempt {
            Preempt::Nothing => {}
            Preempt::HeldBack => observer.event(&Event::Notice {
                message: "no Negotiate token before a 401 over plain http://: the server's \
                          401 decides"
                    .to_owned(),
            }),
            Preempt::Negotiate { always } => {
                let reason = if always {
                    "sent without waiting for a 401 (--negotiate-preemptive)"
                } else {
                    "sent without waiting for a 401: an earlier request learned the server wants it"
                };
                match self
                    .start_negotiate(origin, &conn, None, reason.to_owned(), observer)
                    .await
                {
                    Ok((credentials, next)) => {
                        exchange = Some(Exchange::Token(next));
                        authorization = Some(credentials);
                        sent = Sent::Token {
                            kind: SchemeKind::Negotiate,
                            preemptive: true,
                        };
                    }
                    // No token can be made, and nothing was sent: the 401 decides,
                    // perhaps for another scheme.
                    Err(Failure::Fatal(e)) if e.kerberos_unavailable() => {
                        observer.event(&Event::Notice {
                            message: format!("no Negotiate token before the 401: {e}"),
                        });
                    }
                    Err(f) => return Err(f),
                }
            }
            Preempt::Password(kind) => {
                // Digest and Basic need no handshake once the server took them: the
                // next request carries them at once (Digest with the next nonce count).
                if let Some((credentials, next)) =
                    self.preemptive_password(origin, &known, kind, parts, body.bytes(), observer)?
                {
                    exchange = Some(next);
                    authorization = Some(credentials);
                    sent = Sent::Password {
                        kind,
                        preemptive: true,
                        stale_retry: false,
                    };
                }
            }
        }
        loop {
            let awaiting = ready.send(sent);
            let leg = loop {
                let proxy_header = match proxy_auth.as_mut() {
                    Some(p) => p.header_for_leg()?,
                    None => None,
                };
                let leg = match self
                    .leg(
                        &mut conn,
                        origin,
                        parts,
                        body,
                        authorization.as_deref(),
                        proxy_header.as_deref(),
                        observer,
                    )
                    .await
                {
                    Ok(leg) => leg,
                    Err(LegError::Http11Required) => {
                        return Err(self.ended(awaiting.handle_http11_required(), origin, &conn))
                    }
                    Err(LegError::Fatal(e)) => return Err(Failure::Fatal(e)),
                    Err(LegError::Send(e)) => {
                        if let Some(pa) = proxy_auth
                            .as_ref()
                            .filter(|p| conn.via_proxy && p.mid_exchange())
                        {
                            // The proxy's challenge was for this connection.
                            return Err(proxy_dropped_exchange(pa, e, body.is_replayable()));
                        }
                        return Err(match awaiting.handle_send_error(body.is_replayable()) {
                            AttemptEnd::Restart(reason) => Failure::Restart(reason, e),
                            _ => Failure::Fatal(e),
                        });
                    }
                };
                if conn.via_proxy {
                    if let Some(pa) = proxy_auth.as_mut() {
                        if let ProxyStep::Retry = pa
                            .on_response(
                                self,
                                leg.response.status(),
                                leg.response.headers(),
                                observer,
                            )
                            .await?
                        {
                            // The same leg again, with the proxy's credentials.
                            drain(leg.response, self.config.max_challenge_body).await?;
                            if leg.withheld || conn.is_closed() {
                                if pa.mid_exchange() {
                                    // The answer to the proxy's challenge would go on
                                    // another connection, where it means nothing.
                                    return Err(proxy_dropped_exchange(
                                        pa,
                                        Error::new(ErrorKind::Http, "connection closed"),
                                        body.is_replayable(),
                                    ));
                                }
                                conn = self.new_conn(origin, known.h1_only, observer).await?;
                            }
                            continue;
                        }
                    }
                }
                break leg;
            };
            let response = leg.response;
            let status = response.status();
            let challenges = read_challenges(&response)?;
            let offered = challenges
                .iter()
                .filter_map(|c| SchemeKind::of(&c.scheme))
                .collect();
            let head = ResponseHead::new(status.as_u16(), offered).on(conn.is_h2(), leg.withheld);
            let mut answered = awaiting.handle_response(head);
            self.apply(origin, request, &mut conn, answered.take_learned(), None);
            let withheld = leg.withheld;
            let after =
                |conn: &Conn| ConnectionAfter::new(withheld, conn.is_h2(), conn.is_closed());
            let mut next = match (answered, exchange.take()) {
                (Answered::Plain(unanswered), None) => unanswered.handle(),
                (Answered::Token(answered), Some(Exchange::Token(state))) => {
                    let kind = if state.scheme().is("NTLM") {
                        SchemeKind::Ntlm
                    } else {
                        SchemeKind::Negotiate
                    };
                    let ntlm_inside = matches!(state.mechanism(), Initiator::SpnegoNtlm(_));
                    let code = status.as_u16();
                    let offered = challenges.clone();
                    let progress =
                        blocking(move || ExpectFinalToken::handle_response(state, code, &offered))
                            .await?;
                    match progress {
                        Ok(Progress::Continue(credentials, next_state)) => {
                            let mut next = answered.handle_result(TokenResult::Continue);
                            self.apply(origin, request, &mut conn, next.take_learned(), None);
                            let Next::Continue(continuing) = next else {
                                return Err(self.ended_next(next, origin, &conn));
                            };
                            drain(response, self.config.max_challenge_body).await?;
                            match continuing.drained(after(&conn)) {
                                Ok((next_ready, _same)) => ready = next_ready,
                                Err(ended) => return Err(self.ended(ended.end, origin, &conn)),
                            }
                            authorization = Some(credentials.to_header_value());
                            exchange = Some(Exchange::Token(next_state));
                            sent = Sent::Token {
                                kind,
                                preemptive: false,
                            };
                            continue;
                        }
                        Ok(Progress::Established(done)) => {
                            let result = TokenResult::Established {
                                persistent: persistent_auth(&response),
                                ntlm_inside,
                            };
                            let mut next = answered.handle_result(result);
                            self.apply(origin, request, &mut conn, next.take_learned(), None);
                            let Next::Deliver(delivery) = next else {
                                return Err(self.ended_next(next, origin, &conn));
                            };
                            if let Some(authenticated) = delivery.authenticated {
                                conn.authenticated = authenticated;
                            }
                            observer.event(&Event::Authenticated {
                                proxy: false,
                                scheme: kind.name().to_owned(),
                                mutual: done.mutual(),
                                legs: delivery.tokens,
                                connection_bound: delivery.connection_bound,
                            });
                            let id = conn.id;
                            if delivery.keep_connection {
                                self.checkin(key, conn);
                            }
                            let mutual = (kind == SchemeKind::Negotiate && !ntlm_inside)
                                .then(|| done.mutual());
                            return Ok(finish(
                                response,
                                delivery.scheme,
                                mutual,
                                id,
                                delivery.challenges,
                            ));
                        }
                        Err(NegotiateError::Rejected) => {
                            let mut next = answered.handle_result(TokenResult::Rejected);
                            self.apply(origin, request, &mut conn, next.take_learned(), None);
                            if let Next::End(ended) = &next {
                                if ended.end
                                    == AttemptEnd::Restart(RestartReason::PreemptiveRefused)
                                {
                                    drain(response, self.config.max_challenge_body).await?;
                                    return Err(self.ended(ended.end.clone(), origin, &conn));
                                }
                            }
                            next
                        }
                        Err(e) => return Err(Failure::Fatal(exchange_error(e))),
                    }
                }
                (
                    Answered::Password(answered),
                    Some(Exchange::Password {
                        kind,
                        digest,
                        signed,
                        preemptive,
                    }),
                ) => {
                    if status != StatusCode::UNAUTHORIZED && digest.is_some() {
                        if let Some(mut signed) = signed {
                            check_rspauth(&mut signed, &response)?;
                        }
                    }
                    let mut next = answered.handle();
                    self.apply(
                        origin,
                        request,
                        &mut conn,
                        next.take_learned(),
                        digest.as_ref(),
                    );
                    match next {
                        Next::Deliver(delivery) => {
                            observer.event(&Event::Authenticated {
                                proxy: false,
                                scheme: kind.name().to_owned(),
                                mutual: MutualOutcome::NotChecked,
                                legs: delivery.tokens,
                                connection_bound: false,
                            });
                            let id = conn.id;
                            if delivery.keep_connection {
                                self.checkin(key, conn);
                            }
                            return Ok(finish(
                                response,
                                delivery.scheme,
                                None,
                                id,
                                delivery.challenges,
                            ));
                        }
                        Next::MaybeStale(stale) => {
                            let kept = body.bytes().cloned();
                            let renewed = match &digest {
                                Some(session) => self.digest_stale_retry(
                                    session,
                                    &challenges,
                                    parts,
                                    kept.as_ref(),
                                )?,
                                None => None,
                            };
                            if let Some((header, signed)) = renewed {
                                // stale=true: the password was right, the nonce old.
                                drain(response, self.config.max_challenge_body).await?;
                                let (next_ready, on) = stale.stale(after(&conn));
                                if on == SendOn::Fresh {
                                    conn = self.new_conn(origin, known.h1_only, observer).await?;
                                }
                                observer.event(&Event::Retrying {
                                    reason: "the server says the Digest nonce is stale; \
                                             answering its new one"
                                        .to_owned(),
                                });
                                ready = next_ready;
                                authorization = Some(header);
                                exchange = Some(Exchange::Password {
                                    kind,
                                    digest,
                                    signed: Some(signed),
                                    preemptive,
                                });
                                sent = Sent::Password {
                                    kind,
                                    preemptive,
                                    stale_retry: true,
                                };
                                continue;
                            }
                            stale.not_stale()
                        }
                        other => other,
                    }
                }
                _ => {
                    return Err(Failure::Fatal(Error::new(
                        ErrorKind::Auth,
                        "kerbside's request driver lost track of the exchange in flight \
                         (a bug: please report it)",
                    )))
                }
            };
            // No pending credentials explain the response: deliver it, or choose a
            // scheme for the 401.
            let choosing = loop {
                self.apply(origin, request, &mut conn, next.take_learned(), None);
                next = match next {
                    Next::Unanswered(unanswered) => unanswered.handle(),
                    Next::Choose(choosing) => break choosing,
                    Next::Deliver(delivery) => {
                        let id = conn.id;
                        if delivery.keep_connection {
                            self.checkin(key, conn);
                        }
                        return Ok(finish(response, None, None, id, delivery.challenges));
                    }
                    other => return Err(self.ended_next(other, origin, &conn)),
                };
            };
            let settings = &self.config.auth;
            let mut unavailable = self.unavailable(origin, &challenges);
            let mut choosing = choosing;
            let (credentials, next_exchange, starting) = loop {
                let chosen = settings
                    .schemes
                    .choose_among(
                        &challenges,
                        choosing.failed(),
                        &origin.host,
                        transport,
                        &unavailable,
                    )
                    .map_err(|e| {
                        let kind = match e {
                            kerbside_proto::SchemeRefusal::Transport(_) => ErrorKind::Policy,
                            _ => ErrorKind::Auth,
                        };
                        Error::with_source(kind, e.to_string(), e)
                    })?;
                let (kind, reason) = (chosen.kind, chosen.reason.clone());
                let starting = match choosing.chosen(kind) {
                    Ok(starting) => starting,
                    Err(mut ended) => {
                        self.apply(origin, request, &mut conn, ended.take_learned(), None);
                        return Err(self.ended(ended.end, origin, &conn));
                    }
                };
                let kept = body.bytes().cloned();
                match self
                    .start_scheme(
                        kind,
                        reason,
                        origin,
                        &conn,
                        &challenges,
                        parts,
                        kept.as_ref(),
                        observer,
                    )
                    .await
                {
                    Ok((credentials, next)) => break (credentials, next, starting),
                    Err(StartError::Unavailable(why)) => {
                        unavailable.push((kind, why));
                        choosing = starting.unavailable();
                    }
                    Err(StartError::Failure(f)) => return Err(f),
                }
            };
            drain(response, self.config.max_challenge_body).await?;
            let token = matches!(next_exchange, Exchange::Token(_));
            match starting.started(token, after(&conn)) {
                Ok((next_ready, on)) => {
                    if on == SendOn::Fresh {
                        conn = self.new_conn(origin, known.h1_only, observer).await?;
                    }
                    ready = next_ready;
                }
                Err(ended) => return Err(self.ended(ended.end, origin, &conn)),
            }
            sent = match &next_exchange {
                Exchange::Token(state) => Sent::Token {
                    kind: if state.scheme().is("NTLM") {
                        SchemeKind::Ntlm
                    } else {
                        SchemeKind::Negotiate
                    },
                    preemptive: false,
                },
                Exchange::Password { kind, .. } => Sent::Password {
                    kind: *kind,
                    preemptive: false,
                    stale_retry: false,
                },
            };
            authorization = Some(credentials);
            exchange = Some(next_exchange);
        }
    }

    /// Records what an attempt learned: about the origin (shared by the client's
    /// requests), the request, and the connection. `digest`: the Digest login in
    /// flight, kept for the origin when the server took it.
    fn apply(
        &self,
        origin: &Origin,
        request: &mut RequestDriver,
        conn: &mut Conn,
        learned: Vec<Learn>,
        digest: Option<&Arc<DigestState>>,
    ) {
        for learn in learned {
            request.handle_learned(&learn);
            match learn {
                Learn::NegotiateChallenge => self.learn(origin, |s| s.wants_negotiate = true),
                Learn::WantsNegotiate(wants) => self.learn(origin, |s| s.wants_negotiate = wants),
                Learn::Mode(mode) => self.learn(origin, |s| s.mode = mode),
                Learn::H1Only => self.learn(origin, |s| s.h1_only = true),
                Learn::PasswordLoginTaken(SchemeKind::Digest) => {
                    if let Some(session) = digest {
                        let shared = session.clone();
                        self.learn(origin, |s| s.digest = Some(shared));
                    }
                }
                Learn::PasswordLoginTaken(_) => self.learn(origin, |s| s.basic = true),
                Learn::PasswordLoginForgotten => self.learn(origin, |s| {
                    s.digest = None;
                    s.basic = false;
                }),
                Learn::ConnectionUnauthenticated => conn.authenticated = false,
            }
        }
    }

    /// The failure for an attempt that ended without an answer.
    fn ended(&self, end: AttemptEnd, origin: &Origin, conn: &Conn) -> Failure {
        match end {
            AttemptEnd::Http11Required => Failure::Http11Required,
            AttemptEnd::Restart(reason) => {
                let error = match reason {
                    RestartReason::ClosedMidHandshake(kind) => closed_mid_handshake(origin, kind),
                    RestartReason::SecondLegOnHttp2(kind) => Error::new(
                        ErrorKind::Auth,
                        format!(
                            "the {kind} exchange needs more than one leg, which only HTTP/1.1 \
                             can carry"
                        ),
                    ),
                    RestartReason::NeedsHttp11(kind) => Error::new(
                        ErrorKind::Auth,
                        format!("{kind} needs an HTTP/1.1 connection"),
                    ),
                    RestartReason::PreemptiveRefused => Error::new(
                        ErrorKind::Auth,
                        "the server refused a token sent without a 401; starting over",
                    ),
                    RestartReason::SendFailed => Error::new(
                        ErrorKind::Http,
                        format!(
                            "the connection to {}:{} failed before a response came",
                            origin.host, origin.port
                        ),
                    ),
                };
                Failure::Restart(reason, error)
            }
            AttemptEnd::GiveUp(GiveUp::TooManyChallenges { seen, max }) => too_many(seen, max),
            AttemptEnd::GiveUp(why) => Failure::Fatal(match why {
                GiveUp::Rejected { kind, weaker } => {
                    let weaker = (!weaker.is_empty()).then(|| {
                        weaker
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    self.rejected(kind, &origin.host, conn.channel_binding.is_some(), weaker)
                }
                other => Error::new(
                    ErrorKind::Auth,
                    format!("kerbside gave up on the request: {other:?}"),
                ),
            }),
        }
    }

    /// The failure for a step that should have ended the attempt.
    fn ended_next(&self, next: Next, origin: &Origin, conn: &Conn) -> Failure {
        match next {
            Next::End(ended) => self.ended(ended.end, origin, conn),
            _ => Failure::Fatal(Error::new(
                ErrorKind::Auth,
                "kerbside's request driver took an unexpected step (a bug: please report it)",
            )),
        }
    }

    /// The schemes on offer that this client cannot answer, and why: no password for
    /// the host (NTLM, Digest, Basic), or a Digest offer with MD5 only.
    pub(super) fn unavailable(
        &self,
        origin: &Origin,
        challenges: &[Challenge],
    ) -> Vec<(SchemeKind, String)> {
        let settings = &self.config.auth;
        let mut out = Vec::new();
        for kind in [SchemeKind::Ntlm, SchemeKind::Digest, SchemeKind::Basic] {
            if settings.schemes.allows(kind)
                && settings
                    .passwords
                    .lookup(&origin.host, None, kind)
                    .is_none()
            {
                out.push((
                    kind,
                    format!(
                        "no user name and password for {}: give -u USER:PASSWORD (DOMAIN\\USER \
                         for NTLM), or put them in the keyring file",
                        origin.host
                    ),
                ));
            }
        }
        if settings.schemes.allows(SchemeKind::Digest)
            && !out.iter().any(|(k, _)| *k == SchemeKind::Digest)
        {
            if let Err(why) = crate::schemes::digest_usable(challenges, settings.allow_digest_md5) {
                out.push((SchemeKind::Digest, why));
            }
        }
        out
    }

    /// The error for credentials the server refused.
    pub(super) fn rejected(
        &self,
        kind: SchemeKind,
        host: &str,
        channel_bound: bool,
        weaker: Option<String>,
    ) -> Error {
        let settings = &self.config.auth;
        let mut message = match kind {
            SchemeKind::Negotiate => NegotiateError::<InitiatorError>::Rejected.to_string(),
            SchemeKind::Ntlm => "the server refused the NTLM credentials (401 after the \
                                 AUTHENTICATE message): wrong user name, domain or password"
                .to_owned(),
            SchemeKind::Digest => "the server refused the Digest credentials: wrong user name \
                                   or password for its realm"
                .to_owned(),
            SchemeKind::Basic => "the server refused the Basic credentials: wrong user name or \
                                  password"
                .to_owned(),
        };
        if kind == SchemeKind::Ntlm {
            let found = settings.passwords.lookup(host, None, kind);
            message.push_str(&crate::schemes::ntlmv2_hash_hint(found));
        }
        if kind <= SchemeKind::Ntlm && channel_bound && settings.channel_binding {
            message.push_str(
                "; the token was bound to this TLS connection (channel bindings): if the \
                 server or a TLS-terminating proxy in front of it rejects that, retry with \
                 --channel-binding off",
            );
        }
        if let Some(weaker) = weaker {
            let refusal = kerbside_proto::SchemeRefusal::Downgrade {
                failed: kind,
                weaker,
            };
            message.push_str(&format!("; {refusal} (--allow-downgrade permits it)"));
        }
        Error::new(ErrorKind::Auth, message)
    }
}

pub(super) enum LegError {
    Send(Error),
    Http11Required,
    Fatal(Error),
}

/// The failure for a server (or proxy) that answered 401 (or 407) too often.
pub(super) fn too_many(seen: u32, max: u32) -> Failure {
    Failure::Fatal(Error::new(
        ErrorKind::Auth,
        format!(
            "the server answered 401 {seen} times in a row; giving up (--max-auth-rounds {max})"
        ),
    ))
}

pub(super) fn closed_mid_handshake(origin: &Origin, kind: SchemeKind) -> Error {
    Error::new(
        ErrorKind::Auth,
        format!(
            "{}:{} closed the connection in the middle of the {kind} exchange, twice; it \
             must keep the connection open between the 401 and the next request (a proxy or \
             load balancer in between may be switching connections)",
            origin.host, origin.port
        ),
    )
}

/// Why a chosen scheme could not start.
pub(super) enum StartError {
    /// The client holds no credentials for it (no Kerberos ticket): try the next.
    Unavailable(String),
    /// Give up (or start over).
    Failure(Failure),
}

/// An exchange waiting for the response to the credentials it sent.
pub(super) enum Exchange {
    /// A connection-based exchange (Negotiate, NTLM): tokens on one connection.
    Token(ExpectFinalToken<Initiator>),
    /// Digest or Basic: one request carries the credentials.
    Password {
        kind: SchemeKind,
        /// The Digest state (nonce, nonce count), shared with later requests.
        digest: Option<Arc<DigestState>>,
        /// The Digest session as it signed this request, for its `rspauth`.
        signed: Option<Box<DigestSession>>,
        /// Sent without a 401, because the server took it before.
        preemptive: bool,
    },
}

/// Checks the Digest `Authentication-Info` of a successful response, when sent.
pub(super) fn check_rspauth(
    signed: &mut DigestSession,
    response: &Response<Incoming>,
) -> Result<(), Failure> {
    let Some(value) = response.headers().get("authentication-info") else {
        return Ok(());
    };
    crate::schemes::check_info(signed, value.as_bytes()).map_err(Failure::Fatal)
}

/// `Persistent-Auth: true|false` (IIS and mod_auth_gssapi).
pub(super) fn persistent_auth(response: &Response<Incoming>) -> Option<bool> {
    let v = response.headers().get("persistent-auth")?.to_str().ok()?;
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub(super) fn read_challenges(response: &Response<Incoming>) -> Result<Vec<Challenge>, Error> {
    parse_challenges(
        response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(HeaderValue::as_bytes),
    )
    .map_err(|e| {
        Error::with_source(
            ErrorKind::Auth,
            format!("the server sent a malformed WWW-Authenticate header: {e}"),
            e,
        )
    })
}

/// Reads and drops a challenge's body so the connection can carry the next leg.
pub(super) async fn drain(response: Response<Incoming>, limit: usize) -> Result<(), Error> {
    Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                ErrorKind::Http,
                format!("could not read the 401 response body (limit {limit} bytes): {e}"),
            )
        })
}

pub(super) fn finish(
    mut response: Response<Incoming>,
    scheme: Option<SchemeKind>,
    negotiate: Option<MutualOutcome>,
    connection: u64,
    challenges: u32,
) -> Response<Incoming> {
    response.extensions_mut().insert(Outcome {
        scheme,
        negotiate,
        connection,
        challenges,
    });
    response
}

/// The connection to the proxy failed or closed in the middle of its
/// connection-based exchange: the request starts over on a new connection (once:
/// the request's restart budget) when its body can be sent again.
fn proxy_dropped_exchange(pa: &ProxyAuth, e: Error, replayable: bool) -> Failure {
    let proxy = pa.proxy();
    let e = Error::new(
        ErrorKind::Http,
        format!(
            "the proxy {}:{} closed the connection in the middle of its authentication \
             exchange ({e})",
            proxy.host, proxy.port
        ),
    );
    if replayable {
        Failure::Restart(RestartReason::SendFailed, e)
    } else {
        Failure::Fatal(e)
    }
}
