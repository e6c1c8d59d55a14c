//! The middleware: one fresh Negotiate exchange per request, driven by
//! kerbside-proto's client state machine, GSSAPI on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Extensions, HeaderValue, StatusCode};
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, MutualOutcome, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, Challenge, MutualAuth, Scheme};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::config::{Builder, Config};
use crate::error::Error;
use crate::origins::{Origin, Origins};

/// How much of a `401` body is read so its connection can be used again.
const DRAIN_LIMIT: usize = 64 * 1024;
/// How long reading that body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A `reqwest-middleware` middleware that answers `401 Negotiate` with a Kerberos
/// token; see the [crate documentation](crate).
#[derive(Debug, Clone)]
pub struct NegotiateMiddleware {
    config: Arc<Config>,
    origins: Arc<Origins>,
}

/// What the middleware did for a response, in its extensions
/// (`response.extensions().get::<NegotiateOutcome>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NegotiateOutcome {
    /// What became of mutual authentication.
    pub mutual: MutualOutcome,
    /// The token went with the first request, without waiting for a `401`.
    pub preemptive: bool,
    /// The Kerberos service name the token was made for.
    pub target: String,
}

type Exchange = ExpectFinalToken<NegotiateInitiator>;

impl NegotiateMiddleware {
    /// A builder with the defaults: the default ticket cache, mutual authentication
    /// optional, HTTPS only, `HTTP@host`, no delegation.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        Self {
            origins: Arc::new(Origins::new(config.max_origins)),
            config: Arc::new(config),
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn preemptive(&self, origin: &Origin) -> bool {
        let named = self
            .config
            .preemptive_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&origin.host));
        (named || self.origins.wants_negotiate(origin)) && self.allowed(origin).is_ok()
    }

    fn allowed(&self, origin: &Origin) -> Result<(), Error> {
        self.config
            .plain_http
            .check("Negotiate", &origin.host, origin.transport())
            .map_err(|_| Error::PlainHttp {
                host: origin.host.clone(),
            })
    }

    /// Runs GSSAPI work off the async threads, with the token deadline.
    async fn blocking<T: Send + 'static>(
        &self,
        target: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let timeout = self.config.token_timeout;
        match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::Task {
                target: target.to_owned(),
                detail: e.to_string(),
            }),
            Err(_) => Err(Error::Timeout {
                target: target.to_owned(),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// Makes the first token of a fresh exchange, answering `challenges` (or unasked).
    async fn start(
        &self,
        origin: &Origin,
        challenges: Option<Vec<Challenge>>,
    ) -> Result<(HeaderValue, Exchange, String), Error> {
        let target = self
            .config
            .target
            .resolve(&origin.host, origin.explicit_port(), None)
            .name;
        let initiator = InitiatorConfig {
            target: target.clone(),
            mutual: self.config.mutual,
            delegation: self.config.delegation,
            credentials: self.config.credentials.clone(),
            // reqwest does not say which connection (and certificate) a request
            // will go out on before it goes, so nothing can be bound to it.
            channel_bindings: None,
        };
        let mutual = self.config.mutual;
        let started = self
            .blocking(&target, move || {
                let mech = NegotiateInitiator::new(&initiator)?;
                let start = ExpectChallenge::new(mech, mutual);
                Ok(match challenges {
                    Some(c) => start.handle_challenge(&c),
                    None => start.start(),
                })
            })
            .await?
            .map_err(|source| Error::Kerberos {
                target: target.clone(),
                source,
            })?;
        let (credentials, exchange) = match started {
            Ok(started) => started,
            Err(NegotiateError::Mechanism(source)) => {
                return Err(Error::Kerberos { target, source })
            }
            Err(e) => return Err(Error::exchange(&origin.host, e)),
        };
        let mut value =
            HeaderValue::from_str(&credentials.to_header_value()).map_err(|e| Error::Task {
                target: target.clone(),
                detail: format!("the token made no valid header value: {e}"),
            })?;
        value.set_sensitive(true);
        tracing::debug!(host = %origin.host, %target, "sending a Negotiate token");
        Ok((value, exchange, target))
    }

    /// Checks the response to a token: the final token, a rejection, another leg.
    async fn finish(
        &self,
        origin: &Origin,
        exchange: Exchange,
        target: String,
        mut response: Response,
        preemptive: bool,
    ) -> Result<Response, Error> {
        let status = response.status();
        let challenges = match challenges(&response) {
            Ok(c) => c,
            // Nothing is read from a final token that is not checked.
            Err(_)
                if self.config.mutual == MutualAuth::Off && status != StatusCode::UNAUTHORIZED =>
            {
                Vec::new()
            }
            Err(source) => {
                self.origins.forget(origin);
                return Err(Error::MalformedChallenge {
                    host: origin.host.clone(),
                    source,
                });
            }
        };
        if preemptive && status == StatusCode::UNAUTHORIZED && !offers_negotiate(&challenges) {
            // The origin stopped asking for Negotiate: hand its 401 to the caller.
            self.origins.forget(origin);
            return Ok(response);
        }
        let code = status.as_u16();
        let progress = self
            .blocking(&target, move || exchange.handle_response(code, &challenges))
            .await?;
        match progress {
            Ok(Progress::Established(done)) => {
                self.origins.learn(origin);
                response.extensions_mut().insert(NegotiateOutcome {
                    mutual: done.mutual(),
                    preemptive,
                    target,
                });
                Ok(response)
            }
            Ok(Progress::Continue(..)) => {
                self.origins.forget(origin);
                Err(Error::MultiLeg {
                    host: origin.host.clone(),
                })
            }
            Err(e) => {
                self.origins.forget(origin);
                Err(Error::exchange(&origin.host, e))
            }
        }
    }
}

#[async_trait::async_trait]
impl Middleware for NegotiateMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let origin = match Origin::of(request.url()) {
            // A caller that set its own Authorization keeps it, untouched.
            Some(o) if !request.headers().contains_key(AUTHORIZATION) => o,
            _ => return next.run(request, extensions).await,
        };
        if self.preemptive(&origin) {
            let (value, exchange, target) = self.start(&origin, None).await?;
            request.headers_mut().insert(AUTHORIZATION, value);
            let response = next.run(request, extensions).await?;
            return Ok(self
                .finish(&origin, exchange, target, response, true)
                .await?);
        }
        let retry = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED
            || Origin::of(response.url()).as_ref() != Some(&origin)
        {
            // Not a challenge, or one from where a redirect led: not ours to answer.
            return Ok(response);
        }
        let offered = challenges(&response).map_err(|source| Error::MalformedChallenge {
            host: origin.host.clone(),
            source,
        })?;
        if !offers_negotiate(&offered) {
            return Ok(response);
        }
        self.allowed(&origin)?;
        let Some(mut retry) = retry else {
            return Err(Error::BodyNotReplayable {
                host: origin.host.clone(),
            }
            .into());
        };
        let (value, exchange, target) = self.start(&origin, Some(offered)).await?;
        drain(response).await;
        retry.headers_mut().insert(AUTHORIZATION, value);
        let response = next.run(retry, extensions).await?;
        Ok(self
            .finish(&origin, exchange, target, response, false)
            .await?)
    }
}

impl From<Error> for reqwest_middleware::Error {
    fn from(e: Error) -> Self {
        reqwest_middleware::Error::middleware(e)
    }
}

fn challenges(response: &Response) -> Result<Vec<Challenge>, kerbside_proto::HeaderError> {
    parse_challenges(
        response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

fn offers_negotiate(challenges: &[Challenge]) -> bool {
    challenges
        .iter()
        .any(|c| c.scheme.is(Scheme::NEGOTIATE.as_str()))
}

/// Reads a small `401` body so its connection can carry the next request; a large
/// or slow one is dropped (and its connection with it).
async fn drain(mut response: Response) {
    let read = async {
        let mut read = 0usize;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, read).await;
}
