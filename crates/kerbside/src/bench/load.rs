//! The load itself: every connection runs requests until the run's bound, each
//! checked (status, final token) and counted as a success or a failure of a kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::StatusCode;
use kerbside_proto::scheme::negotiate::client::{MutualOutcome, NegotiateError, Progress};

use super::conn::{Answer, Connection, Connector, Target};
use super::failure::{ErrorKind, Failure};
use super::tokens::{Exchange, TokenPool};
use super::Mode;

/// What every connection shares during the run.
pub(super) struct Shared {
    pub(super) target: Arc<Target>,
    pub(super) connector: Connector,
    pub(super) mode: Mode,
    pub(super) expect: StatusCode,
    pub(super) timeout: Duration,
    pub(super) pool: TokenPool,
    /// Requests not yet started, when `--requests` bounds the run.
    pub(super) budget: Option<AtomicU64>,
    pub(super) deadline: Option<Instant>,
    pub(super) stop: AtomicBool,
    /// Why the run ended before its bound, if it did.
    pub(super) stopped_early: Mutex<Option<String>>,
    pub(super) ok: AtomicU64,
    pub(super) failed: AtomicU64,
}

impl Shared {
    /// Claims the next request; false when the run is over.
    pub(super) fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// A token for the next request; stops the run when the pool is empty.
    pub(super) fn token(&self) -> Option<Exchange> {
        let exchange = self.pool.take();
        if exchange.is_none() && !self.stop.swap(true, Ordering::Relaxed) {
            let mut reason = self
                .stopped_early
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reason.get_or_insert_with(|| {
                "the tokens made ahead ran out; raise --tokens or bound the run with --requests"
                    .to_owned()
            });
        }
        exchange
    }

    /// Checks the final response of an authenticated exchange: its status, then the
    /// server's final token against the exchange's context.
    pub(super) fn verify(
        &self,
        exchange: Exchange,
        answer: &Answer,
        tally: &mut Tally,
    ) -> Result<(), Failure> {
        self.check_status(answer)?;
        if answer.status == StatusCode::UNAUTHORIZED {
            // An expected 401 (--expect-status 401): nothing to verify.
            return Ok(());
        }
        let challenges = answer
            .challenges
            .as_ref()
            .map_err(|e| Failure::new(ErrorKind::Mutual, e.clone()))?;
        match exchange
            .state
            .handle_response(answer.status.as_u16(), challenges)
        {
            Ok(Progress::Established(done)) => {
                match done.mutual() {
                    MutualOutcome::Verified => tally.verified += 1,
                    MutualOutcome::NotSent => tally.not_sent += 1,
                    MutualOutcome::NotChecked => {}
                }
                Ok(())
            }
            Ok(Progress::Continue(..)) => Err(Failure::new(
                ErrorKind::Token,
                "the server asked for another leg",
            )),
            Err(
                e @ (NegotiateError::MutualAuthMissing
                | NegotiateError::MutualAuthFailed(_)
                | NegotiateError::MutualAuthIncomplete
                | NegotiateError::MalformedToken(_)),
            ) => Err(Failure::new(ErrorKind::Mutual, e.to_string())),
            Err(e) => Err(Failure::new(ErrorKind::Token, e.to_string())),
        }
    }

    pub(super) fn check_status(&self, answer: &Answer) -> Result<(), Failure> {
        if answer.status == self.expect {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorKind::Status,
                format!("expected {}, got {}", self.expect, answer.status),
            ))
        }
    }
}

/// What one connection counted; merged at the end.
pub(super) struct Tally {
    pub(super) latency: Histogram<u64>,
    pub(super) errors: BTreeMap<ErrorKind, (u64, String)>,
    pub(super) statuses: BTreeMap<u16, u64>,
    pub(super) verified: u64,
    pub(super) not_sent: u64,
}

impl Tally {
    pub(super) fn new() -> Self {
        Self {
            // 1 µs to 1 hour, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            errors: BTreeMap::new(),
            statuses: BTreeMap::new(),
            verified: 0,
            not_sent: 0,
        }
    }

    pub(super) fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (kind, (count, message)) in other.errors {
            let entry = self.errors.entry(kind).or_insert((0, message));
            entry.0 += count;
        }
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.verified += other.verified;
        self.not_sent += other.not_sent;
    }
}

/// How a claimed request ended when it did not fail.
pub(super) enum Done {
    /// The response passed every check.
    Success,
    /// Not sent: the token pool is empty and the run is stopping.
    NoToken,
}

/// One connection's loop: claims requests until the run is over.
pub(super) async fn drive(
    shared: Arc<Shared>,
    mut conn: Option<Connection>,
) -> (Tally, Option<Connection>) {
    let mut tally = Tally::new();
    let mut session = Session::default();
    while shared.claim() {
        let started = Instant::now();
        let work = one(&shared, &mut conn, &mut session, &mut tally);
        let result = match tokio::time::timeout(shared.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::Timeout,
                format!("no whole response within {:?}", shared.timeout),
            )),
        };
        match result {
            Ok(Done::Success) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = tally.latency.record(micros.max(1));
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Done::NoToken) => break,
            Err(failure) => {
                if matches!(
                    failure.kind,
                    ErrorKind::Connect | ErrorKind::Http | ErrorKind::Timeout
                ) {
                    conn = None;
                }
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let entry = tally
                    .errors
                    .entry(failure.kind)
                    .or_insert((0, failure.message));
                entry.0 += 1;
            }
        }
    }
    (tally, conn)
}

/// What a connection of reuse mode keeps between requests.
#[derive(Default)]
pub(super) struct Session {
    /// The connection carries a completed handshake.
    pub(super) authenticated: bool,
    /// The server said `Persistent-Auth: true` on this connection.
    pub(super) bound: bool,
    /// Cookies the server set (`name=value`), sent back with every request.
    pub(super) cookies: BTreeMap<String, String>,
}

impl Session {
    pub(super) fn keep(&mut self, answer: &Answer) {
        self.bound |= answer.persistent_auth;
        for (name, value) in &answer.set_cookies {
            self.cookies.insert(name.clone(), value.clone());
        }
    }

    pub(super) fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The open connection, or a new one.
pub(super) async fn ready<'c>(
    shared: &Shared,
    conn: &'c mut Option<Connection>,
    session: &mut Session,
) -> Result<&'c mut Connection, Failure> {
    if conn.is_none() {
        session.authenticated = false;
        session.bound = false;
        *conn = Some(shared.connector.connect().await?.0);
    }
    conn.as_mut()
        .ok_or_else(|| Failure::new(ErrorKind::Connect, "no connection"))
}

/// Sends one request (one exchange in handshake mode) and checks the answer.
pub(super) async fn one(
    shared: &Shared,
    conn: &mut Option<Connection>,
    session: &mut Session,
    tally: &mut Tally,
) -> Result<Done, Failure> {
    let target = &shared.target;
    match shared.mode {
        Mode::Plain => {
            let answer = ready(shared, conn, session)
                .await?
                .send(target, None, None)
                .await?;
            tally.status(conn, &answer);
            shared.check_status(&answer)?;
        }
        Mode::PerRequest => {
            let Some(exchange) = shared.token() else {
                return Ok(Done::NoToken);
            };
            let answer = ready(shared, conn, session)
                .await?
                .send(target, Some(&exchange.authorization), None)
                .await?;
            tally.status(conn, &answer);
            shared.verify(exchange, &answer, tally)?;
        }
        Mode::Handshake => {
            let Some(exchange) = shared.token() else {
                return Ok(Done::NoToken);
            };
            let (mut fresh, _) = shared.connector.connect().await?;
            let challenge = fresh.send(target, None, None).await?;
            if challenge.status != StatusCode::UNAUTHORIZED {
                *tally.statuses.entry(challenge.status.as_u16()).or_default() += 1;
                return Err(Failure::new(
                    ErrorKind::Status,
                    format!("expected a 401 challenge, got {}", challenge.status),
                ));
            }
            let offered = challenge
                .challenges
                .as_ref()
                .is_ok_and(|c| c.iter().any(|c| c.scheme.is("Negotiate")));
            if !offered {
                return Err(Failure::new(
                    ErrorKind::Token,
                    "the 401 does not offer Negotiate",
                ));
            }
            if challenge.closing {
                return Err(Failure::new(
                    ErrorKind::Http,
                    "the server closed the connection after its 401: the token must go on \
                     the same connection",
                ));
            }
            let answer = fresh
                .send(target, Some(&exchange.authorization), None)
                .await?;
            *tally.statuses.entry(answer.status.as_u16()).or_default() += 1;
            shared.verify(exchange, &answer, tally)?;
        }
        Mode::Reuse => {
            let c = ready(shared, conn, session).await?;
            if session.authenticated || !session.cookies.is_empty() {
                let cookie = session.cookie_header();
                let answer = c.send(target, None, cookie.as_deref()).await?;
                session.keep(&answer);
                tally.status(conn, &answer);
                shared.check_status(&answer).map_err(|mut failure| {
                    if answer.status == StatusCode::UNAUTHORIZED
                        && !session.bound
                        && session.cookies.is_empty()
                    {
                        failure.message.push_str(
                            " (the server kept the authentication neither with the \
                             connection, Persistent-Auth: true, nor in a cookie)",
                        );
                    }
                    failure
                })?;
            } else {
                // Out of tokens (the server closed more connections than the pool
                // allows for): the run stops early and says so, as in per-request mode.
                let Some(exchange) = shared.token() else {
                    return Ok(Done::NoToken);
                };
                let answer = c.send(target, Some(&exchange.authorization), None).await?;
                session.keep(&answer);
                tally.status(conn, &answer);
                shared.verify(exchange, &answer, tally)?;
                session.authenticated = true;
            }
        }
    }
    Ok(Done::Success)
}

impl Tally {
    /// Counts a final status; forgets the connection if the server closes it.
    pub(super) fn status(&mut self, conn: &mut Option<Connection>, answer: &Answer) {
        *self.statuses.entry(answer.status.as_u16()).or_default() += 1;
        if answer.closing {
            *conn = None;
        }
    }
}
