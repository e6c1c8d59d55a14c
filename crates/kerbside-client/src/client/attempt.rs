//! One attempt at a request on one connection: the legs of its handshake, the
//! 401s it meets, and what the client learns from them.

use std::sync::Arc;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use kerbside_proto::scheme::digest::client::DigestSession;
use kerbside_proto::scheme::negotiate::client::{
    ExpectFinalToken, MutualOutcome, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, Challenge, SchemeKind};

use super::event::*;
use super::proxy_auth::*;
use super::start::*;
use super::*;
use crate::body::Replayable;
use crate::conn::Origin;
use crate::error::{Error, ErrorKind};
use crate::schemes::{exchange_error, DigestState, Initiator, InitiatorError};

/// Why an attempt ended without a response.
pub(super) enum Failure {
    /// The connection went away in the middle of a handshake (or a reused one was
    /// stale): worth one more try on a fresh connection.
    Restart(Error),
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
    pub(super) async fn attempt(
        &self,
        origin: &Origin,
        parts: &Parts,
        body: &mut Replayable,
        observer: &dyn Observer,
        fresh: bool,
        asked: &mut bool,
    ) -> Result<Response<Incoming>, Failure> {
        let settings = &self.config.auth;
        let negotiate = settings.schemes.allows(SchemeKind::Negotiate);
        let known = self.origin_state(origin);
        let key = self.key(origin);
        let pooled = if fresh {
            None
        } else {
            self.checkout(&key, known.mode != Mode::PerRequest, known.h1_only)
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
        let mut proxy_auth = self.config.proxy.route(origin).map(ProxyAuth::new);
        let transport = self.transport(origin);
        let bound = conn.authenticated && known.mode != Mode::PerRequest;
        // A session cookie for this URL may stand for the handshake: try it first
        // (a 401 still leads to the exchange).
        let has_cookie = self.config.cookies && self.cookie_header(&parts.uri).is_some();
        let wants_preempt = negotiate
            && !bound
            && match settings.preemptive {
                Preemptive::Always => true,
                Preemptive::Learned => known.wants_negotiate && !has_cookie,
                Preemptive::Never => false,
            };
        // Over plain HTTP the first request goes without credentials, whatever the
        // options: the 401 decides (a 401 to this very request did).
        let unasked = transport.allows_unasked_credentials() || *asked;
        let preempt = wants_preempt && unasked;
        if wants_preempt && !unasked {
            observer.event(&Event::Notice {
                message: "no Negotiate token before a 401 over plain http://: the server's \
                          401 decides"
                    .to_owned(),
            });
        }
        let mut exchange = None;
        let mut authorization = None;
        if preempt {
            let reason = if settings.preemptive == Preemptive::Always {
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
        } else if !bound && !has_cookie && unasked {
            // Digest and Basic need no handshake once the server took them: the
            // next request carries them at once (Digest with the next nonce count).
            if let Some((credentials, next)) =
                self.preemptive_password(origin, &known, parts, body.bytes(), transport, observer)?
            {
                exchange = Some(next);
                authorization = Some(credentials);
            }
        }
        let mut challenges_seen = 0;
        let mut sent_tokens = u32::from(authorization.is_some());
        let mut failed: Option<SchemeKind> = None;
        loop {
            let proxy_header = proxy_auth
                .as_ref()
                .and_then(|p| p.header().map(str::to_owned));
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
                Err(e) => {
                    let mid_handshake = matches!(exchange, Some(Exchange::Token(_)));
                    return Err(match e {
                        LegError::Http11Required => Failure::Http11Required,
                        LegError::Fatal(e) => Failure::Fatal(e),
                        // A reused connection may have been closed by the server while
                        // idle, and one in the middle of a handshake must not be.
                        LegError::Send(e) if (reused || mid_handshake) && body.is_replayable() => {
                            Failure::Restart(e)
                        }
                        LegError::Send(e) => Failure::Fatal(e),
                    });
                }
            };
            let response = leg.response;
            let status = response.status();
            if conn.via_proxy {
                if let Some(pa) = proxy_auth.as_mut() {
                    if let ProxyStep::Retry = pa
                        .on_response(self, status, response.headers(), observer)
                        .await?
                    {
                        drain(response, self.config.max_challenge_body).await?;
                        if leg.withheld || conn.is_closed() {
                            conn = self.new_conn(origin, known.h1_only, observer).await?;
                        }
                        continue;
                    }
                }
            }
            let challenges = read_challenges(&response)?;
            if status == StatusCode::UNAUTHORIZED {
                challenges_seen += 1;
                if challenges.iter().any(|c| c.scheme.is("Negotiate")) {
                    self.learn(origin, |s| s.wants_negotiate = true);
                    *asked = true;
                }
            }
            match exchange.take() {
                None => {}
                Some(Exchange::Token(state)) => {
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
                        Ok(Progress::Continue(credentials, next)) => {
                            if conn.is_h2() {
                                // Connection-based exchanges need HTTP/1.1.
                                self.learn(origin, |s| s.h1_only = true);
                                return Err(Failure::Restart(Error::new(
                                    ErrorKind::Auth,
                                    format!(
                                        "the {kind} exchange needs more than one leg, which only \
                                         HTTP/1.1 can carry"
                                    ),
                                )));
                            }
                            self.too_many(challenges_seen)?;
                            drain(response, self.config.max_challenge_body).await?;
                            if leg.withheld || conn.is_closed() {
                                return Err(Failure::Restart(closed_mid_handshake(origin, kind)));
                            }
                            authorization = Some(credentials.to_header_value());
                            exchange = Some(Exchange::Token(next));
                            sent_tokens += 1;
                            continue;
                        }
                        Ok(Progress::Established(done)) => {
                            let persistent = persistent_auth(&response);
                            // NTLM authenticates the connection (MS-NTHT); Kerberos
                            // only where the server says so or was seen to.
                            let connection_bound = !conn.is_h2()
                                && (persistent == Some(true)
                                    || known.mode == Mode::ConnectionBound
                                    || kind == SchemeKind::Ntlm
                                    || ntlm_inside);
                            self.learn(origin, |s| {
                                if kind == SchemeKind::Negotiate {
                                    s.wants_negotiate = true;
                                }
                                match persistent {
                                    Some(true) if !conn.is_h2() => s.mode = Mode::ConnectionBound,
                                    Some(false) => s.mode = Mode::PerRequest,
                                    _ => {}
                                }
                            });
                            conn.authenticated = !conn.is_h2();
                            observer.event(&Event::Authenticated {
                                proxy: false,
                                scheme: kind.name().to_owned(),
                                mutual: done.mutual(),
                                legs: sent_tokens,
                                connection_bound,
                            });
                            let id = conn.id;
                            self.checkin(key, conn);
                            let mutual = (kind == SchemeKind::Negotiate && !ntlm_inside)
                                .then(|| done.mutual());
                            return Ok(finish(response, Some(kind), mutual, id, challenges_seen));
                        }
                        Err(NegotiateError::Rejected)
                            if preempt && sent_tokens == 1 && challenges_seen == 1 =>
                        {
                            // The preemptive token was not wanted (a new server, a
                            // stale belief): answer the challenge in the ordinary way.
                            self.learn(origin, |s| s.wants_negotiate = false);
                            drain(response, self.config.max_challenge_body).await?;
                            return Err(Failure::Restart(Error::new(
                                ErrorKind::Auth,
                                "the server refused a token sent without a 401; starting over",
                            )));
                        }
                        Err(NegotiateError::Rejected) => {
                            let weaker = self.weaker_on_offer(kind, &challenges);
                            if weaker.is_none() || !settings.schemes.allow_downgrade {
                                return Err(Failure::Fatal(self.rejected(
                                    kind,
                                    conn.channel_binding.is_some(),
                                    weaker,
                                )));
                            }
                            failed = Some(kind);
                            conn.authenticated = false;
                        }
                        Err(e) => return Err(Failure::Fatal(exchange_error(e))),
                    }
                }
                Some(Exchange::Password {
                    kind,
                    digest,
                    signed,
                    preemptive,
                    stale_retried,
                }) => {
                    if status != StatusCode::UNAUTHORIZED {
                        if let Some(session) = &digest {
                            if let Some(mut signed) = signed {
                                check_rspauth(&mut signed, &response)?;
                            }
                            let shared = session.clone();
                            self.learn(origin, |s| s.digest = Some(shared));
                        } else {
                            self.learn(origin, |s| s.basic = true);
                        }
                        observer.event(&Event::Authenticated {
                            proxy: false,
                            scheme: kind.name().to_owned(),
                            mutual: MutualOutcome::NotChecked,
                            legs: sent_tokens,
                            connection_bound: false,
                        });
                        let id = conn.id;
                        if !leg.withheld || conn.is_h2() {
                            self.checkin(key, conn);
                        }
                        return Ok(finish(response, Some(kind), None, id, challenges_seen));
                    }
                    if let (Some(session), false) = (&digest, stale_retried) {
                        let kept = body.bytes().cloned();
                        if let Some((header, signed)) =
                            self.digest_stale_retry(session, &challenges, parts, kept.as_ref())?
                        {
                            // stale=true: the password was right, the nonce old.
                            drain(response, self.config.max_challenge_body).await?;
                            if leg.withheld && !conn.is_h2() || conn.is_closed() {
                                conn = self.new_conn(origin, known.h1_only, observer).await?;
                            }
                            observer.event(&Event::Retrying {
                                reason: "the server says the Digest nonce is stale; answering its new one"
                                    .to_owned(),
                            });
                            authorization = Some(header);
                            exchange = Some(Exchange::Password {
                                kind,
                                digest,
                                signed: Some(signed),
                                preemptive,
                                stale_retried: true,
                            });
                            sent_tokens += 1;
                            continue;
                        }
                    }
                    if preemptive {
                        // What the server took before it refuses now (a restart, a
                        // new password file): forget it and answer the challenge.
                        self.learn(origin, |s| {
                            s.digest = None;
                            s.basic = false;
                        });
                    } else {
                        let weaker = self.weaker_on_offer(kind, &challenges);
                        if weaker.is_none() || !settings.schemes.allow_downgrade {
                            return Err(Failure::Fatal(self.rejected(kind, false, weaker)));
                        }
                        failed = Some(kind);
                    }
                }
            }
            if status != StatusCode::UNAUTHORIZED {
                if bound && known.mode == Mode::Unknown {
                    // A request without a token succeeded on an authenticated
                    // connection: the server keeps authentication with it.
                    self.learn(origin, |s| s.mode = Mode::ConnectionBound);
                }
                let id = conn.id;
                if !leg.withheld || conn.is_h2() {
                    self.checkin(key, conn);
                }
                return Ok(finish(response, None, None, id, challenges_seen));
            }
            if bound {
                // The server wants a token on every request after all.
                self.learn(origin, |s| s.mode = Mode::PerRequest);
                conn.authenticated = false;
            }
            if settings.schemes.enabled.is_empty() {
                // No authentication asked for: the 401 is the answer.
                let id = conn.id;
                return Ok(finish(response, None, None, id, challenges_seen));
            }
            self.too_many(challenges_seen)?;
            let mut unavailable = self.unavailable(origin, &challenges);
            let (credentials, next) = loop {
                let chosen = settings
                    .schemes
                    .choose_among(&challenges, failed, &origin.host, transport, &unavailable)
                    .map_err(|e| {
                        let kind = match e {
                            kerbside_proto::SchemeRefusal::Transport(_) => ErrorKind::Policy,
                            _ => ErrorKind::Auth,
                        };
                        Error::with_source(kind, e.to_string(), e)
                    })?;
                let (kind, reason) = (chosen.kind, chosen.reason.clone());
                if kind == SchemeKind::Ntlm && conn.is_h2() {
                    // A connection-based exchange cannot run on HTTP/2.
                    self.learn(origin, |s| s.h1_only = true);
                    return Err(Failure::Restart(Error::new(
                        ErrorKind::Auth,
                        format!("{kind} needs an HTTP/1.1 connection"),
                    )));
                }
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
                    Ok(started) => break started,
                    Err(StartError::Unavailable(why)) => unavailable.push((kind, why)),
                    Err(StartError::Failure(f)) => return Err(f),
                }
            };
            drain(response, self.config.max_challenge_body).await?;
            if leg.withheld && !conn.is_h2() {
                // The large body was kept back, which leaves an HTTP/1.1 connection
                // unusable; the token goes with it on a new one (Kerberos needs no
                // state from the 401, and NTLM starts with its first message). On
                // HTTP/2 only the stream was lost.
                conn = self.new_conn(origin, known.h1_only, observer).await?;
            } else if conn.is_closed() {
                if matches!(next, Exchange::Token(_)) {
                    return Err(Failure::Restart(closed_mid_handshake(
                        origin,
                        failed.unwrap_or(SchemeKind::Negotiate),
                    )));
                }
                conn = self.new_conn(origin, known.h1_only, observer).await?;
            }
            authorization = Some(credentials);
            exchange = Some(next);
            sent_tokens += 1;
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

    /// The enabled schemes weaker than `kind` that the server also offers, if any.
    pub(super) fn weaker_on_offer(
        &self,
        kind: SchemeKind,
        challenges: &[Challenge],
    ) -> Option<String> {
        let weaker: Vec<&str> = SchemeKind::ALL
            .into_iter()
            .filter(|k| *k > kind && self.config.auth.schemes.allows(*k))
            .filter(|k| challenges.iter().any(|c| c.scheme.is(k.name())))
            .map(SchemeKind::name)
            .collect();
        (!weaker.is_empty()).then(|| weaker.join(", "))
    }

    /// The error for credentials the server refused.
    pub(super) fn rejected(
        &self,
        kind: SchemeKind,
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

    pub(super) fn too_many(&self, challenges_seen: u32) -> Result<(), Failure> {
        let max = self.config.auth.max_auth_rounds;
        if challenges_seen > max {
            return Err(Failure::Fatal(Error::new(
                ErrorKind::Auth,
                format!(
                    "the server answered 401 {challenges_seen} times in a row; giving up \
                     (--max-auth-rounds {max})"
                ),
            )));
        }
        Ok(())
    }
}

pub(super) enum LegError {
    Send(Error),
    Http11Required,
    Fatal(Error),
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
        /// A `stale=true` challenge was answered already.
        stale_retried: bool,
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
