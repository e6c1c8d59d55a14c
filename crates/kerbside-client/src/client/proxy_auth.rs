//! Authenticating to a forward proxy (`407`, `Proxy-Authenticate`,
//! `Proxy-Authorization`) on the connection to it.

use http::header::{HeaderValue, PROXY_AUTHENTICATE};
use http::StatusCode;
use kerbside_gssapi::{Delegation, InitiatorConfig, NegotiateInitiator};
use std::sync::Arc;

use kerbside_proto::driver::{
    DigestRechallenge, ProxyAuthDriver, ProxyGiveUp, ProxyReconnect, ProxyStep as Decision,
    ProxyTokenResult,
};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, MutualAuth, SchemeKind, Transport};

use super::attempt::{too_many, Failure};
use super::event::{Event, Observer};
use super::start::blocking;
use super::Client;
use crate::error::{Error, ErrorKind};
use crate::proxy::ProxyAddr;
use crate::schemes::{exchange_error, gss_error, DigestState, Initiator, InitiatorError};

/// What to do after a response from (or through) a proxy.
pub(super) enum ProxyStep {
    /// Send the request again with the new `Proxy-Authorization`.
    Retry,
    /// The proxy is satisfied (or has nothing to say).
    Done,
}

/// One exchange with a proxy (`407`, `Proxy-Authenticate`, `Proxy-Authorization`):
/// [`ProxyAuthDriver`] decides, this carries it out.
pub(super) struct ProxyAuth {
    proxy: ProxyAddr,
    max_auth_rounds: u32,
    driver: ProxyAuthDriver,
    exchange: Option<ExpectFinalToken<Initiator>>,
    header: Option<String>,
    /// The token out was sent before any `407`: a `407` to it starts over with
    /// the proxy's challenge instead of counting as a refusal.
    preemptive: bool,
    /// The scheme of the exchange that completed on this connection.
    established: Option<SchemeKind>,
    /// The method and request target a Digest response covers (`CONNECT host:port`,
    /// `GET http://host/path`).
    request: (String, String),
    /// The Digest login whose credentials are out (a new one, or the one the proxy
    /// took before, with its next nonce count).
    digest: Option<Arc<DigestState>>,
    /// The Digest credentials in `header` went out once: the next leg of the request
    /// takes the next nonce count (the proxy refuses a count used before).
    digest_sent: bool,
}

impl ProxyAuth {
    pub(super) fn new(proxy: ProxyAddr, max_auth_rounds: u32) -> Self {
        Self {
            proxy,
            max_auth_rounds,
            driver: ProxyAuthDriver::new(max_auth_rounds),
            exchange: None,
            header: None,
            preemptive: false,
            established: None,
            request: ("CONNECT".to_owned(), String::new()),
            digest: None,
            digest_sent: false,
        }
    }

    /// The request the credentials go with: its method and target, as sent to the
    /// proxy (Digest signs them).
    pub(super) fn for_request(mut self, method: &str, target: String) -> Self {
        self.request = (method.to_owned(), target);
        self
    }

    /// A fresh Negotiate token before any `407`, for a proxy known to want one
    /// (it authenticated with Negotiate before): no extra round trip per tunnel.
    /// Without a ticket nothing is sent and the `407` decides.
    pub(super) async fn preempt_negotiate(&mut self, client: &Client, observer: &dyn Observer) {
        let settings = &client.config.auth;
        if !settings.schemes.allows(SchemeKind::Negotiate)
            || settings
                .schemes
                .plain_http
                .check("Negotiate", &self.proxy.host, self.transport(client))
                .is_err()
        {
            return;
        }
        let target = settings.target.resolve(&self.proxy.host, None, None);
        observer.event(&Event::Scheme {
            proxy: true,
            scheme: "Negotiate".to_owned(),
            scheme_reason: "sent without waiting for a 407: the proxy took Negotiate before"
                .to_owned(),
            target: target.name.clone(),
            target_reason: format!("{} (of the proxy)", target.reason),
            channel_binding: false,
        });
        let config = InitiatorConfig {
            target: target.name,
            mutual: settings.mutual,
            delegation: Delegation::None,
            credentials: settings.credentials.clone(),
            channel_bindings: None,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let started = blocking(move || {
            let mech = Initiator::Gss(NegotiateInitiator::new(&config).map_err(gss_error)?);
            ExpectChallenge::new(mech, mutual)
                .with_max_legs(max_legs)
                .for_proxy()
                .start()
                .map_err(exchange_error)
        })
        .await;
        match started {
            Ok(Ok((credentials, next))) => {
                self.header = Some(credentials.to_header_value());
                self.exchange = Some(next);
                self.driver.started(SchemeKind::Negotiate);
                self.preemptive = true;
            }
            Ok(Err(e)) | Err(Failure::Fatal(e)) => observer.event(&Event::Notice {
                message: format!("no Negotiate token before the proxy's 407: {e}"),
            }),
            Err(_) => {}
        }
    }

    /// The Digest login the proxy took before, with its next nonce count, before any
    /// `407`: no extra round trip per request. A stale nonce is answered once with the
    /// new one; a refusal starts over with the proxy's challenge.
    pub(super) fn preempt_digest(&mut self, client: &Client, observer: &dyn Observer) {
        let Some(login) = client.proxy_digest(&self.proxy) else {
            return;
        };
        let (method, target) = &self.request;
        match login.authorization(method, target, None) {
            Ok((header, _)) => {
                observer.event(&Event::Scheme {
                    proxy: true,
                    scheme: "Digest".to_owned(),
                    scheme_reason: "sent without waiting for a 407: the proxy took this \
                                    Digest login before (next nonce count)"
                        .to_owned(),
                    target: login.user().to_owned(),
                    target_reason: "the login the proxy took".to_owned(),
                    channel_binding: false,
                });
                self.header = Some(header);
                self.digest = Some(login);
                self.digest_sent = false;
                self.driver.preempted(SchemeKind::Digest);
            }
            Err(e) => observer.event(&Event::Notice {
                message: format!("no Digest credentials before the proxy's 407: {e}"),
            }),
        }
    }

    /// How the connection to the proxy is protected: TLS for an `https://` proxy.
    fn transport(&self, client: &Client) -> Transport {
        match (self.proxy.tls, client.config.proxy_tls.insecure) {
            (false, _) => Transport::Plain,
            (true, false) => Transport::Tls,
            (true, true) => Transport::InsecureTls,
        }
    }

    /// Whether the proxy's Negotiate exchange completed on this connection.
    pub(super) fn negotiated(&self) -> bool {
        self.established == Some(SchemeKind::Negotiate)
    }

    /// Whether the exchange with the proxy is tied to this connection (past its
    /// first token): see [`ProxyAuthDriver::mid_exchange`].
    pub(super) fn mid_exchange(&self) -> bool {
        self.driver.mid_exchange()
    }

    /// The proxy, for messages.
    pub(super) fn proxy(&self) -> &ProxyAddr {
        &self.proxy
    }

    /// The proxy closed the connection before the next leg: connect again once.
    pub(super) fn handle_closed(&mut self) -> ProxyReconnect {
        let decision = self.driver.handle_closed();
        if decision == ProxyReconnect::StartOver {
            // The continuation was for the closed connection: nothing is sent until
            // the new connection's 407.
            self.exchange = None;
            self.header = None;
            self.preemptive = false;
        }
        decision
    }

    pub(super) fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The `Proxy-Authorization` for the next leg of a request sent through the proxy:
    /// [`header`](Self::header), except that Digest credentials sent once already are
    /// made again with the next nonce count (an origin's `401` takes more legs).
    pub(super) fn header_for_leg(&mut self) -> Result<Option<String>, Failure> {
        if let (Some(login), true) = (&self.digest, self.digest_sent) {
            let (method, target) = &self.request;
            self.header = Some(login.authorization(method, target, None)?.0);
        }
        self.digest_sent = self.digest.is_some();
        Ok(self.header.clone())
    }

    pub(super) async fn on_response(
        &mut self,
        client: &Client,
        status: StatusCode,
        headers: &http::HeaderMap,
        observer: &dyn Observer,
    ) -> Result<ProxyStep, Failure> {
        let challenges = parse_challenges(
            headers
                .get_all(PROXY_AUTHENTICATE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Auth,
                format!("the proxy sent a malformed Proxy-Authenticate header: {e}"),
                e,
            )
        })?;
        let proxy_error = |e: NegotiateError<InitiatorError>| {
            let problem = match &e {
                NegotiateError::Mechanism(m) => m.gss().map(kerbside_gssapi::GssError::problem),
                _ => None,
            };
            Failure::Fatal(
                Error::with_source(
                    ErrorKind::Auth,
                    format!("proxy {}:{}: {e}", self.proxy.host, self.proxy.port),
                    e,
                )
                .with_kerberos_problem(problem),
            )
        };
        if self.preemptive && status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            // The token sent before any 407 was not taken (a stale ticket, a proxy
            // that changed): start over with this 407, as for a first request.
            observer.event(&Event::Notice {
                message: "the proxy answered 407 to the Negotiate token sent before its \
                          challenge: starting over"
                    .to_owned(),
            });
            self.driver = ProxyAuthDriver::new(self.max_auth_rounds);
            self.exchange = None;
            self.header = None;
        }
        self.preemptive = false;
        let mut step = self.driver.handle_response(status.as_u16());
        if step == Decision::DigestRechallenge {
            // The new nonce answers this request only: a login of its own, so that
            // requests in flight at once with the shared login do not reset each
            // other's nonce count. It becomes the shared login once the proxy takes it.
            let login = self.digest.take().and_then(|shared| {
                let own = shared.fork();
                own.take_stale(&challenges).then(|| Arc::new(own))
            });
            let stale = login.is_some();
            step = self.driver.handle_digest_rechallenge(if stale {
                DigestRechallenge::Stale
            } else {
                DigestRechallenge::Refused
            });
            match (&step, login) {
                (Decision::Resend, Some(login)) => {
                    // RFC 7616 §3.3: the password was right, the nonce old.
                    observer.event(&Event::Notice {
                        message: "the proxy says the Digest nonce is stale: answering its \
                                  new challenge"
                            .to_owned(),
                    });
                    let (method, target) = &self.request;
                    self.header = Some(login.authorization(method, target, None)?.0);
                    self.digest = Some(login);
                    self.digest_sent = false;
                    return Ok(ProxyStep::Retry);
                }
                (Decision::Choose, _) => {
                    observer.event(&Event::Notice {
                        message: "the proxy answered 407 to the Digest login it took before: \
                                  starting over"
                            .to_owned(),
                    });
                    client.learn_proxy_digest(&self.proxy, None);
                    self.header = None;
                }
                _ => client.learn_proxy_digest(&self.proxy, None),
            }
        }
        if step == Decision::Done && status != StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            if let Some(login) = &self.digest {
                client.learn_proxy_digest(&self.proxy, Some(login.clone()));
            }
        }
        if let Decision::Exchange(kind) = step {
            let Some(state) = self.exchange.take() else {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    "kerbside's proxy driver lost track of the exchange in flight (a bug: \
                     please report it)",
                )));
            };
            let code = status.as_u16();
            let offered = challenges.clone();
            let progress =
                blocking(move || ExpectFinalToken::handle_response(state, code, &offered)).await?;
            step = match progress {
                Ok(Progress::Continue(credentials, next)) => {
                    self.header = Some(credentials.to_header_value());
                    self.exchange = Some(next);
                    self.driver.handle_token_result(ProxyTokenResult::Continue)
                }
                Ok(Progress::Established(done)) => {
                    let step = self
                        .driver
                        .handle_token_result(ProxyTokenResult::Established);
                    observer.event(&Event::Authenticated {
                        proxy: true,
                        scheme: kind.name().to_owned(),
                        mutual: done.mutual(),
                        legs: self.driver.tokens(),
                        connection_bound: true,
                    });
                    // The proxy keeps the authentication with the connection.
                    self.header = None;
                    self.established = Some(kind);
                    step
                }
                Err(NegotiateError::Rejected) => {
                    match self.driver.handle_token_result(ProxyTokenResult::Rejected) {
                        Decision::GiveUp(ProxyGiveUp::Rejected(SchemeKind::Ntlm)) => {
                            return Err(Failure::Fatal(Error::new(
                                ErrorKind::Auth,
                                format!(
                                    "the proxy {}:{} refused the NTLM credentials: wrong user \
                                     name, domain or password{}",
                                    self.proxy.host,
                                    self.proxy.port,
                                    crate::schemes::ntlmv2_hash_hint(
                                        client.config.auth.passwords.lookup(
                                            &self.proxy.host,
                                            None,
                                            SchemeKind::Ntlm
                                        )
                                    )
                                ),
                            )))
                        }
                        _ => return Err(proxy_error(NegotiateError::Rejected)),
                    }
                }
                Err(e) => return Err(proxy_error(e)),
            };
        }
        match step {
            Decision::Resend => return Ok(ProxyStep::Retry),
            Decision::Choose => {}
            Decision::Done | Decision::Exchange(_) | Decision::DigestRechallenge => {
                return Ok(ProxyStep::Done)
            }
            Decision::GiveUp(ProxyGiveUp::BasicRefused) => {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the proxy {}:{} refused the Basic credentials: wrong user name or \
                         password",
                        self.proxy.host, self.proxy.port
                    ),
                )))
            }
            Decision::GiveUp(ProxyGiveUp::DigestRefused) => {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the proxy {}:{} refused the Digest credentials: wrong user name or \
                         password",
                        self.proxy.host, self.proxy.port
                    ),
                )))
            }
            Decision::GiveUp(ProxyGiveUp::TooManyChallenges { seen, max }) => {
                return Err(too_many(seen, max))
            }
            Decision::GiveUp(why) => {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the proxy {}:{}: kerbside gave up ({why:?})",
                        self.proxy.host, self.proxy.port
                    ),
                )))
            }
        }
        let settings = &client.config.auth;
        // Passwords for the proxy's host.
        let unavailable: Vec<(SchemeKind, String)> =
            [SchemeKind::Ntlm, SchemeKind::Digest, SchemeKind::Basic]
                .into_iter()
                .filter(|k| {
                    settings
                        .passwords
                        .lookup(&self.proxy.host, None, *k)
                        .is_none()
                })
                .map(|k| {
                    let ntlm = settings
                        .passwords
                        .lookup(&self.proxy.host, None, SchemeKind::Ntlm);
                    let why = match ntlm {
                        // An NT hash answers NTLM only: say so rather than "none".
                        Some(found) if found.secret.hash_key().is_some() => {
                            match found.password(k, &format!("the proxy {}", self.proxy.host)) {
                                Err(e) => e,
                                Ok(_) => String::new(),
                            }
                        }
                        _ => format!(
                            "no user name and password for the proxy {}: give -u or put them \
                         in the keyring file",
                            self.proxy.host
                        ),
                    };
                    (k, why)
                })
                .collect();
        let chosen = settings
            .schemes
            .choose_among(
                &challenges,
                None,
                &self.proxy.host,
                self.transport(client),
                &unavailable,
            )
            .map_err(|e| {
                let kind = match e {
                    kerbside_proto::SchemeRefusal::Transport(_) => ErrorKind::Policy,
                    _ => ErrorKind::Auth,
                };
                Error::with_source(kind, format!("proxy {}: {e}", self.proxy.host), e)
            })?;
        if chosen.kind != SchemeKind::Negotiate {
            let found = settings
                .passwords
                .lookup(&self.proxy.host, None, chosen.kind)
                .ok_or_else(|| {
                    Failure::Fatal(Error::new(ErrorKind::Auth, "no password for the proxy"))
                })?;
            observer.event(&Event::Scheme {
                proxy: true,
                scheme: chosen.kind.name().to_owned(),
                scheme_reason: chosen.reason.clone(),
                target: found.user.to_owned(),
                target_reason: found.source.describe().to_owned(),
                channel_binding: false,
            });
            if matches!(chosen.kind, SchemeKind::Basic | SchemeKind::Digest) {
                let password = found
                    .password(chosen.kind, &format!("the proxy {}", self.proxy.host))
                    .map_err(|e| Failure::Fatal(Error::new(ErrorKind::Auth, e)))?;
                self.header = Some(if chosen.kind == SchemeKind::Basic {
                    crate::schemes::basic(found.user, password)?
                } else {
                    let session = DigestState::start(
                        &challenges,
                        found.user,
                        password,
                        settings.allow_digest_md5,
                    )
                    .map_err(|e| {
                        Failure::Fatal(Error::new(
                            ErrorKind::Auth,
                            format!("proxy {}: {e}", self.proxy.host),
                        ))
                    })?;
                    let (method, target) = &self.request;
                    let header = session.authorization(method, target, None)?.0;
                    self.digest = Some(Arc::new(session));
                    self.digest_sent = false;
                    header
                });
                self.driver.started(chosen.kind);
                return Ok(ProxyStep::Retry);
            }
            let (credentials, inputs) = crate::schemes::ntlm_inputs(&found, &self.proxy.host, None)
                .map_err(|e| Failure::Fatal(Error::new(ErrorKind::Auth, e)))?;
            let mech = Initiator::Ntlm(Box::new(
                kerbside_proto::scheme::ntlm::client::NtlmInitiator::new(credentials, inputs),
            ));
            let (credentials, next) = ExpectChallenge::new(mech, MutualAuth::Off)
                .with_scheme(kerbside_proto::Scheme::NTLM)
                .with_max_legs(settings.max_legs)
                .for_proxy()
                .start()
                .map_err(|e| Failure::Fatal(exchange_error(e)))?;
            self.header = Some(credentials.to_header_value());
            self.exchange = Some(next);
            self.driver.started(SchemeKind::Ntlm);
            return Ok(ProxyStep::Retry);
        }
        let target = settings.target.resolve(&self.proxy.host, None, None);
        observer.event(&Event::Scheme {
            proxy: true,
            scheme: chosen.kind.name().to_owned(),
            scheme_reason: chosen.reason.clone(),
            target: target.name.clone(),
            target_reason: format!("{} (of the proxy)", target.reason),
            channel_binding: false,
        });
        let config = InitiatorConfig {
            target: target.name,
            mutual: settings.mutual,
            delegation: Delegation::None,
            credentials: settings.credentials.clone(),
            channel_bindings: None,
        };
        let (mutual, max_legs) = (settings.mutual, settings.max_legs);
        let result = blocking(move || {
            let mech = Initiator::Gss(NegotiateInitiator::new(&config).map_err(gss_error)?);
            ExpectChallenge::new(mech, mutual)
                .with_max_legs(max_legs)
                .for_proxy()
                .handle_challenge(&challenges)
                .map_err(exchange_error)
        })
        .await??;
        let (credentials, next) = result;
        self.header = Some(credentials.to_header_value());
        self.exchange = Some(next);
        self.driver.started(SchemeKind::Negotiate);
        Ok(ProxyStep::Retry)
    }
}
