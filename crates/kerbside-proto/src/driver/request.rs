//! [`RequestDriver`]: one request's attempts, and whether to try again.

use super::{AttemptEnd, Connection, DriverSettings, GiveUp, Learn, OriginFacts};
use crate::policy::Transport;

/// One request, across its attempts: at most one restart on a fresh connection,
/// at most one retry over HTTP/1.1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDriver {
    /// The attempt started over once already.
    restarted: bool,
    /// The request went again over HTTP/1.1 once already.
    h1_retried: bool,
    /// A 401 to this request offered Negotiate: a fresh attempt may send a token
    /// at once, even over plain HTTP.
    asked: bool,
}

/// What to do after an attempt ended without a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try again: open the next attempt with this driver, after recording what it
    /// learned (the origin needs HTTP/1.1).
    Again {
        /// The request's driver for the next attempt.
        driver: RequestDriver,
        /// Something to record about the origin first.
        learned: Option<Learn>,
    },
    /// Give up: the last attempt's error is the request's.
    GiveUp(GiveUp),
}

impl RequestDriver {
    /// A request that has not been tried yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a 401 to this request offered Negotiate.
    pub fn asked(&self) -> bool {
        self.asked
    }

    /// Records what an attempt learned that concerns the request itself.
    pub fn handle_learned(&mut self, learned: &Learn) {
        if *learned == Learn::NegotiateChallenge {
            self.asked = true;
        }
    }

    /// Opens the next attempt at the origin `host`: which connection it takes,
    /// then ([`Opening::connected`](super::Opening::connected)) whether credentials
    /// go before a 401. `has_cookie`: a cookie for the URL may stand for a
    /// handshake (a session cookie), so nothing is sent preemptively.
    pub fn open(
        &self,
        settings: &DriverSettings,
        origin: OriginFacts,
        host: &str,
        transport: Transport,
        has_cookie: bool,
    ) -> super::Opening {
        let connection = if self.restarted {
            Connection::Fresh {
                h1_only: origin.h1_only,
            }
        } else {
            Connection::Pooled {
                prefer_authenticated: origin.mode != super::OriginMode::PerRequest,
                h1_only: origin.h1_only,
            }
        };
        super::Opening::new(
            settings.clone(),
            origin,
            host.to_owned(),
            transport,
            has_cookie,
            self.asked,
            connection,
        )
    }

    /// Decides after an attempt ended: start over once on a fresh connection, go
    /// again once over HTTP/1.1, or give up.
    pub fn handle_end(self, end: AttemptEnd) -> Retry {
        match end {
            AttemptEnd::GiveUp(why) => Retry::GiveUp(why),
            AttemptEnd::Restart(reason) if self.restarted => {
                Retry::GiveUp(GiveUp::RestartedTwice(reason))
            }
            AttemptEnd::Restart(_) => Retry::Again {
                driver: Self {
                    restarted: true,
                    ..self
                },
                learned: None,
            },
            AttemptEnd::Http11Required if self.h1_retried => {
                Retry::GiveUp(GiveUp::Http11RequiredTwice)
            }
            AttemptEnd::Http11Required => Retry::Again {
                driver: Self {
                    h1_retried: true,
                    ..self
                },
                learned: Some(Learn::H1Only),
            },
        }
    }
}
