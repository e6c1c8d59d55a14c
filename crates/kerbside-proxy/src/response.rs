//! The proxy's own answers: a status and one line saying what went wrong and
//! what to do, in plain text.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use kerbside_client::BoxError;

/// The body of every response to a client.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

/// `status` with `text` (and a newline) as the body.
pub(crate) fn text(status: StatusCode, text: impl Into<String>) -> Response<ProxyBody> {
    let mut body = text.into();
    body.push('\n');
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Like [`text`], and the connection closes after it.
pub(crate) fn closing(status: StatusCode, body: impl Into<String>) -> Response<ProxyBody> {
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The status a client gets for an upstream failure: never `401` or `407` (the
/// client has no say in the user's credentials), `504` for a timeout.
pub(crate) fn status_for(e: &kerbside_client::Error) -> StatusCode {
    if e.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    }
}

/// An empty body (the `200` of a `CONNECT`).
pub(crate) fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}
