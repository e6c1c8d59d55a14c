//! The layer's own answers: `401` with the challenges the configuration offers
//! (strongest first, one per header line), the other refusals, and the HTTP/2
//! `HTTP_1_1_REQUIRED` marker.

use kerbside_proto::server_decision::{challenges, Continuation, Offer, Refusal};

use super::*;

pub(super) fn refuse<B: Default>(status: StatusCode, token: Option<&[u8]>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = HeaderValue::from_str(&challenge(token)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}

impl Shared {
    /// A refusal with no token: a 401 offers every scheme the gate takes.
    pub(super) fn refuse<B: Default>(&self, status: StatusCode, h2: bool) -> Response<B> {
        self.answer(status, None, false, h2)
    }

    /// A refusal. A 401 carrying a continuation token says only that; otherwise it
    /// offers every scheme the gate takes, strongest first, each challenge on its own
    /// header line (some clients, such as Python's httpx, find Digest only that way):
    /// Negotiate; NTLM in connection mode over HTTP/1.1 only (it authenticates the
    /// connection); Digest; Basic.
    pub(super) fn refuse_with<B: Default>(&self, refusal: &Refusal, h2: bool) -> Response<B> {
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
        self.answer(status, refusal.continuation.as_ref(), refusal.stale, h2)
    }

    fn answer<B: Default>(
        &self,
        status: StatusCode,
        continuation: Option<&Continuation>,
        stale: bool,
        h2: bool,
    ) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = status;
        if let Some(m) = self.metrics() {
            m.response(status);
        }
        if status != StatusCode::UNAUTHORIZED {
            return response;
        }
        let config = &self.config;
        let mut lines: Vec<String> = Vec::new();
        match continuation {
            Some(Continuation::Ntlm(token)) => lines.push(
                kerbside_proto::Challenge::new(
                    kerbside_proto::Scheme::NTLM,
                    kerbside_proto::AuthData::base64(Some(token)),
                )
                .to_header_value(),
            ),
            Some(Continuation::Negotiate(token)) => lines.push(challenge(Some(token))),
            None => {
                let basic_realm =
                    config
                        .basic_fallback
                        .as_ref()
                        .map(|b| b.realm.as_str())
                        .or(config
                            .basic_users
                            .as_ref()
                            .map(|_| config.basic_realm.as_str()));
                for offer in challenges(self.setup.offers(), config.mode.into(), h2) {
                    match offer {
                        Offer::Negotiate => lines.push(challenge(None)),
                        Offer::Ntlm => lines.push("NTLM".to_owned()),
                        Offer::Digest => {
                            for c in config.digest.iter().flat_map(|d| d.challenges(stale)) {
                                lines.push(crate::passwords::DigestSettings::header_value(&c));
                            }
                        }
                        Offer::Basic => {
                            if let Some(value) = basic_realm.and_then(|realm| {
                                kerbside_proto::scheme::basic::challenge_header_value(realm).ok()
                            }) {
                                lines.push(value);
                            }
                        }
                    }
                }
            }
        }
        for line in lines {
            if let Ok(value) = HeaderValue::from_str(&line) {
                response.headers_mut().append(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Marks the layer's answer to an HTTP/2 request that connection-bound
/// authentication cannot serve: the response is `421 Misdirected Request` (the client
/// should retry on an HTTP/1.1 connection) with this in its extensions. A server that
/// can reset HTTP/2 streams turns it into `HTTP_1_1_REQUIRED` (RFC 9113 §8.7) with
/// [`http11_required_as_error`], which is what browsers act on; the gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http11Required;

/// For `tower::ServiceBuilder::map_result` in front of [`NegotiateLayer`] on a
/// hyper server: a response marked [`Http11Required`] becomes the error that makes
/// hyper reset the HTTP/2 stream with `HTTP_1_1_REQUIRED`; everything else passes.
pub fn http11_required_as_error<B, E: Into<BoxError>>(
    result: Result<Response<B>, E>,
) -> Result<Response<B>, BoxError> {
    match result {
        Ok(response) if response.extensions().get::<Http11Required>().is_some() => {
            Err(Box::new(h2::Error::from(h2::Reason::HTTP_1_1_REQUIRED)))
        }
        Ok(response) => Ok(response),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn http11_required<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
    response.extensions_mut().insert(Http11Required);
    response
}
