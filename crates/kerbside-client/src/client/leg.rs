//! One leg: a request with its credentials and cookies on a connection, and its
//! response head.

use http::header::{
    HeaderValue, AUTHORIZATION, COOKIE, EXPECT, HOST, PROXY_AUTHORIZATION, SET_COOKIE,
};
use http::{Request, StatusCode, Uri};

use super::attempt::{Leg, LegError};
use super::event::{redacted, Event, Observer};
use super::{Client, Parts};
use crate::body::Replayable;
use crate::conn::{is_http11_required, Conn, Origin};
use crate::error::{Error, ErrorKind};

impl Client {
    /// Sends one leg on `conn`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn leg(
        &self,
        conn: &mut Conn,
        origin: &Origin,
        parts: &Parts,
        body: &mut Replayable,
        authorization: Option<&str>,
        proxy_authorization: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<Leg, LegError> {
        let Some((wire, gate)) = body.take() else {
            return Err(LegError::Fatal(Error::new(
                ErrorKind::Body,
                "the server asked for authentication after the streamed request body was \
                 sent, and it cannot be sent again; use --negotiate-preemptive or a body \
                 from a file",
            )));
        };
        let uri = if conn.is_h2() || conn.via_proxy {
            parts.uri.clone()
        } else {
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(|e| {
                    LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad path", e))
                })?
        };
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(wire)
            .map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad request", e))
            })?;
        *request.headers_mut() = parts.headers.clone();
        if conn.is_h2() {
            request.headers_mut().remove(HOST);
            *request.version_mut() = http::Version::HTTP_2;
        } else if !request.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(&origin.authority()).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::InvalidUrl, "bad host", e))
            })?;
            request.headers_mut().insert(HOST, host);
        }
        if let Some(auth) = authorization {
            let value = HeaderValue::from_str(auth).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::Auth, "bad token", e))
            })?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        if let Some(auth) = proxy_authorization {
            let value = HeaderValue::from_str(auth).map_err(|e| {
                LegError::Fatal(Error::with_source(ErrorKind::Auth, "bad token", e))
            })?;
            request.headers_mut().insert(PROXY_AUTHORIZATION, value);
        }
        if self.config.cookies && !request.headers().contains_key(COOKIE) {
            if let Some(cookie) = self.cookie_header(&parts.uri) {
                request.headers_mut().insert(COOKIE, cookie);
            }
        }
        if let Some(gate) = &gate {
            request
                .headers_mut()
                .insert(EXPECT, HeaderValue::from_static("100-continue"));
            let opener = gate.clone();
            hyper::ext::on_informational(&mut request, move |info| {
                if info.status() == StatusCode::CONTINUE {
                    opener.open();
                }
            });
            gate.open_after(self.config.continue_timeout);
        }
        observer.event(&Event::Request {
            conn: conn.id,
            line: format!("{} {} {}", request.method(), request.uri(), conn.protocol()),
            headers: redacted(request.headers()),
        });
        let result = conn.send(request).await;
        let withheld = gate.as_ref().is_some_and(|g| body.restore(g));
        match result {
            Ok(response) => {
                if self.config.cookies {
                    self.store_cookies(&parts.uri, response.headers());
                }
                observer.event(&Event::Response {
                    conn: conn.id,
                    line: format!("{:?} {}", response.version(), response.status()),
                    headers: redacted(response.headers()),
                });
                Ok(Leg { response, withheld })
            }
            Err(e) if is_http11_required(&e) => Err(LegError::Http11Required),
            Err(e) => Err(LegError::Send(Error::with_source(
                ErrorKind::Http,
                format!(
                    "the connection to {}:{} failed before a response came: {e}",
                    origin.host, origin.port
                ),
                e,
            ))),
        }
    }

    pub(super) fn cookie_header(&self, uri: &Uri) -> Option<HeaderValue> {
        let url = url::Url::parse(&uri.to_string()).ok()?;
        let store = self
            .shared
            .common
            .cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pairs: Vec<String> = store
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    pub(super) fn store_cookies(&self, uri: &Uri, headers: &http::HeaderMap) {
        let Ok(url) = url::Url::parse(&uri.to_string()) else {
            return;
        };
        let mut store = self
            .shared
            .common
            .cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for value in headers.get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                // A cookie the jar refuses (bad domain, malformed) is dropped.
                let _ = store.parse(text, &url);
            }
        }
    }
}
