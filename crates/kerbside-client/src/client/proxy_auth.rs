//! Authenticating to a forward proxy (`407`, `Proxy-Authenticate`,
//! `Proxy-Authorization`) on the connection to it.

use http::header::{HeaderValue, PROXY_AUTHENTICATE};
use http::StatusCode;
use kerbside_gssapi::{Delegation, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{
    ExpectChallenge, ExpectFinalToken, NegotiateError, Progress,
};
use kerbside_proto::{parse_challenges, MutualAuth, SchemeKind, Transport};

use super::attempt::*;
use super::event::*;
use super::start::*;
use super::*;
use crate::error::{Error, ErrorKind};
use crate::proxy::ProxyAddr;
use crate::schemes::{exchange_error, gss_error, Initiator, InitiatorError};

/// What to do after a response from (or through) a proxy.
pub(super) enum ProxyStep {
    /// Send the request again with the new `Proxy-Authorization`.
    Retry,
    /// The proxy is satisfied (or has nothing to say).
    Done,
}

/// One exchange with a proxy (`407`, `Proxy-Authenticate`, `Proxy-Authorization`).
pub(super) struct ProxyAuth {
    proxy: ProxyAddr,
    exchange: Option<ExpectFinalToken<Initiator>>,
    header: Option<String>,
    rounds: u32,
    tokens: u32,
    /// Basic credentials went out: they go with every request through the proxy.
    basic: bool,
}

impl ProxyAuth {
    pub(super) fn new(proxy: ProxyAddr) -> Self {
        Self {
            proxy,
            exchange: None,
            header: None,
            rounds: 0,
            tokens: 0,
            basic: false,
        }
    }

    pub(super) fn header(&self) -> Option<&str> {
        self.header.as_deref()
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
        if self.basic {
            if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the proxy {}:{} refused the Basic credentials: wrong user name or \
                         password",
                        self.proxy.host, self.proxy.port
                    ),
                )));
            }
            return Ok(ProxyStep::Done);
        }
        if let Some(state) = self.exchange.take() {
            let scheme = state.scheme().as_str().to_owned();
            let code = status.as_u16();
            let progress =
                blocking(move || ExpectFinalToken::handle_response(state, code, &challenges))
                    .await?;
            return match progress {
                Ok(Progress::Continue(credentials, next)) => {
                    self.header = Some(credentials.to_header_value());
                    self.exchange = Some(next);
                    self.tokens += 1;
                    Ok(ProxyStep::Retry)
                }
                Ok(Progress::Established(done)) => {
                    observer.event(&Event::Authenticated {
                        proxy: true,
                        scheme,
                        mutual: done.mutual(),
                        legs: self.tokens,
                        connection_bound: true,
                    });
                    // The proxy keeps the authentication with the connection.
                    self.header = None;
                    Ok(ProxyStep::Done)
                }
                Err(NegotiateError::Rejected) if scheme == "NTLM" => {
                    Err(Failure::Fatal(Error::new(
                        ErrorKind::Auth,
                        format!(
                            "the proxy {}:{} refused the NTLM credentials: wrong user name, \
                             domain or password",
                            self.proxy.host, self.proxy.port
                        ),
                    )))
                }
                Err(e) => Err(proxy_error(e)),
            };
        }
        if status != StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            return Ok(ProxyStep::Done);
        }
        self.rounds += 1;
        client.too_many(self.rounds)?;
        let settings = &client.config.auth;
        // Passwords for the proxy's host; Digest is not answered to proxies.
        let mut unavailable: Vec<(SchemeKind, String)> = [SchemeKind::Ntlm, SchemeKind::Basic]
            .into_iter()
            .filter(|k| {
                settings
                    .passwords
                    .lookup(&self.proxy.host, None, *k)
                    .is_none()
            })
            .map(|k| {
                (
                    k,
                    format!(
                        "no user name and password for the proxy {}: give -u or put them \
                         in the keyring file",
                        self.proxy.host
                    ),
                )
            })
            .collect();
        unavailable.push((
            SchemeKind::Digest,
            "kerbside does not answer Digest to proxies".to_owned(),
        ));
        let chosen = settings
            .schemes
            .choose_among(
                &challenges,
                None,
                &self.proxy.host,
                Transport::Plain,
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
            if chosen.kind == SchemeKind::Basic {
                self.header = Some(crate::schemes::basic(found.user, found.password)?);
                self.basic = true;
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
            self.tokens = 1;
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
        self.tokens = 1;
        Ok(ProxyStep::Retry)
    }
}
