//! The authentication layer: `Authorization: Negotiate` checked against a keytab.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use kerbside_gssapi::{AcceptStep, NegotiateAcceptor};
use kerbside_proto::scheme::negotiate::server::{challenge, read_authorization, Presented};
use tower_layer::Layer;
use tower_service::Service;

/// The authenticated client, inserted into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The client principal, e.g. `alice@EXAMPLE.TEST`.
    pub principal: String,
}

/// A [`Layer`] that requires a valid Negotiate token on every request.
///
/// Requests without one get `401` with `WWW-Authenticate: Negotiate`; malformed
/// `Authorization` headers get `400`. Accepted requests reach the inner service with
/// an [`Authenticated`] extension and without their `Authorization` header; the
/// acceptor's final token is added to the response as `WWW-Authenticate: Negotiate
/// <token>` (mutual authentication).
#[derive(Debug, Clone)]
pub struct NegotiateLayer {
    acceptor: NegotiateAcceptor,
}

impl NegotiateLayer {
    /// A layer checking tokens with this acceptor.
    pub fn new(acceptor: NegotiateAcceptor) -> Self {
        Self { acceptor }
    }
}

impl<S> Layer<S> for NegotiateLayer {
    type Service = NegotiateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        NegotiateService {
            inner,
            acceptor: self.acceptor.clone(),
        }
    }
}

/// The service made by [`NegotiateLayer`].
#[derive(Debug, Clone)]
pub struct NegotiateService<S> {
    inner: S,
    acceptor: NegotiateAcceptor,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn refuse<B: Default>(status: StatusCode, token: Option<&[u8]>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = HeaderValue::from_str(&challenge(token)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for NegotiateService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready handles this request; a clone takes its
        // place for the next one (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let acceptor = self.acceptor.clone();
        let presented = read_authorization(
            request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        Box::pin(async move {
            let token = match presented {
                Ok(Presented::Token(token)) => token,
                Ok(Presented::Nothing) => return Ok(refuse(StatusCode::UNAUTHORIZED, None)),
                Ok(Presented::OtherScheme(scheme)) => {
                    tracing::info!(%scheme, "credentials of another scheme; asking for Negotiate");
                    return Ok(refuse(StatusCode::UNAUTHORIZED, None));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bad Authorization header");
                    return Ok(refuse(StatusCode::BAD_REQUEST, None));
                }
            };
            let accepted = tokio::task::spawn_blocking(move || acceptor.accept(&token)).await;
            let (principal, final_token) = match accepted {
                Ok(Ok(AcceptStep::Done {
                    principal, token, ..
                })) => (principal, token),
                Ok(Ok(AcceptStep::Continue(token))) => {
                    // Multi-leg exchanges need the context kept with the connection,
                    // which only connection-bound mode does; ask the client to restart.
                    tracing::warn!("token needs another leg; per-request mode cannot continue it");
                    let _ = token;
                    return Ok(refuse(StatusCode::UNAUTHORIZED, None));
                }
                Ok(Err(e)) => {
                    tracing::warn!(problem = ?e.problem(), "Negotiate token refused: {e}");
                    return Ok(refuse(StatusCode::UNAUTHORIZED, None));
                }
                Err(e) => {
                    tracing::error!("authentication task failed: {e}");
                    return Ok(refuse(StatusCode::SERVICE_UNAVAILABLE, None));
                }
            };
            tracing::info!(%principal, "authenticated");
            request.headers_mut().remove(AUTHORIZATION);
            request.extensions_mut().insert(Authenticated { principal });
            let mut response = inner.call(request).await?;
            if let Some(token) = final_token {
                if let Ok(value) = HeaderValue::from_str(&challenge(Some(&token))) {
                    response.headers_mut().append(WWW_AUTHENTICATE, value);
                }
            }
            Ok(response)
        })
    }
}
