//! The gate's edge: each request's path is made canonical once, before anything else
//! looks at it, so that the router, the access rules, the proxy, CGI and the logs all read
//! the same value (see [`kerbside_proto::request_path`] for the rules).
//!
//! [`CanonicalPathLayer`] replaces the request's URI with one whose path is canonical (the
//! query is kept as it came), puts the [`CanonicalPath`] and the [`OriginalTarget`] in the
//! request's extensions, and answers `400` with a short page, and a line in the log, to a
//! request whose path has no canonical form: such a request never reaches the layers and
//! services behind it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use kerbside_proto::request_path::{CanonicalPath, PathError};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::GateBody;
use crate::metrics::GateMetrics;
use crate::per_connection::ConnectionInfo;

/// The request target (path and query) exactly as the client sent it, before the path was
/// made canonical. Only for what must see the client's own spelling: Digest's `uri`
/// parameter is compared with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalTarget(pub String);

/// Makes the path of `request` canonical in place and records the original target; on
/// error the request is left as it was.
pub fn canonicalise<B>(request: &mut Request<B>) -> Result<CanonicalPath, PathError> {
    let canonical = CanonicalPath::parse(request.uri().path())?;
    let original = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    if canonical.as_str() != request.uri().path() {
        let target = match request.uri().query() {
            Some(query) => format!("{canonical}?{query}"),
            None => canonical.to_string(),
        };
        // The canonical path is ASCII pchars and escapes, and the query was valid
        // before: this cannot fail, but a failure is refused rather than ignored.
        let path_and_query = PathAndQuery::try_from(target).map_err(|_| PathError::NotAbsolute)?;
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        *request.uri_mut() = Uri::from_parts(parts).map_err(|_| PathError::NotAbsolute)?;
    }
    request.extensions_mut().insert(OriginalTarget(original));
    request.extensions_mut().insert(canonical.clone());
    Ok(canonical)
}

/// The `400` for a path with no canonical form.
fn bad_path(problem: PathError) -> Response<GateBody> {
    let text = format!(
        "<!DOCTYPE html>\n<title>Bad request path</title>\n<h1>Bad request path</h1>\n\
         <p>The request path {problem}, so the server cannot tell which resource it names. \
         Send the path without it.</p>\n"
    );
    let mut response = Response::new(
        http_body_util::Full::new(bytes::Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A [`Layer`] that makes each request's path canonical, or answers `400` (counted in the
/// metrics' responses, if given, like the gate's other refusals).
#[derive(Debug, Clone, Default)]
pub struct CanonicalPathLayer {
    metrics: Option<GateMetrics>,
}

impl CanonicalPathLayer {
    /// A layer that counts its `400`s in `metrics`, if given.
    pub fn new(metrics: Option<GateMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for CanonicalPathLayer {
    type Service = CanonicalPathService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CanonicalPathService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The [`Service`] of [`CanonicalPathLayer`].
#[derive(Debug, Clone)]
pub struct CanonicalPathService<S> {
    inner: S,
    metrics: Option<GateMetrics>,
}

impl<S, B> Service<Request<B>> for CanonicalPathService<S>
where
    S: Service<Request<B>, Response = Response<GateBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<GateBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match canonicalise(&mut request) {
            Ok(_) => Box::pin(self.inner.call(request)),
            Err(problem) => {
                let remote = request
                    .extensions()
                    .get::<ConnectionInfo>()
                    .map(|i| i.remote.to_string())
                    .unwrap_or_default();
                tracing::warn!(
                    %remote,
                    method = %request.method(),
                    path = %request.uri().path().escape_debug(),
                    "request path refused ({problem}); answering 400"
                );
                if let Some(m) = &self.metrics {
                    m.response(StatusCode::BAD_REQUEST);
                }
                Box::pin(std::future::ready(Ok(bad_path(problem))))
            }
        }
    }
}

/// Whether `path` is under the mount `prefix`: the prefix itself or below it, on a
/// segment boundary (`/app` covers `/app` and `/app/x`, not `/apple`).
pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str) -> Request<()> {
        Request::builder().uri(target).body(()).unwrap()
    }

    #[test]
    fn the_uri_gets_the_canonical_path_and_keeps_the_query() {
        let mut r = request("/admin/%2e%2E/public//x?a=%2e%2e&b=/../");
        let canonical = canonicalise(&mut r).unwrap();
        assert_eq!(canonical.as_str(), "/public/x");
        assert_eq!(r.uri().path(), "/public/x");
        assert_eq!(r.uri().query(), Some("a=%2e%2e&b=/../"));
        assert_eq!(
            r.extensions().get::<OriginalTarget>().unwrap().0,
            "/admin/%2e%2E/public//x?a=%2e%2e&b=/../"
        );
        assert_eq!(r.extensions().get::<CanonicalPath>(), Some(&canonical));
    }

    #[test]
    fn an_absolute_form_target_keeps_its_authority() {
        let mut r = request("http://example.test:8080/a/./b");
        canonicalise(&mut r).unwrap();
        assert_eq!(r.uri().to_string(), "http://example.test:8080/a/b");
    }

    #[test]
    fn a_refused_path_leaves_the_request_alone() {
        let mut r = request("/a%2fb");
        assert_eq!(canonicalise(&mut r), Err(PathError::EncodedSlash));
        assert_eq!(r.uri().path(), "/a%2fb");
        assert!(r.extensions().get::<CanonicalPath>().is_none());
    }
}
