//! [`Authenticated`] as an axum extractor (feature `axum`).
//!
//! A handler that takes `Authenticated` runs only for a client the layer
//! authenticated; otherwise axum answers `401` with the reason. `Option<Authenticated>`
//! runs for anonymous requests too (routes the access rules leave open).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::identity::Authenticated;

/// Why a handler that needs an [`Authenticated`] client did not get one: the request
/// was let through anonymously, or `NegotiateLayer` is not in front of the route.
/// Answers `401 Unauthorized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAuthenticated;

impl IntoResponse for NotAuthenticated {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            "not authenticated: this route needs a signed-in client (is NegotiateLayer in \
             front of it, and do the access rules require authentication here?)\n",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = NotAuthenticated;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or(NotAuthenticated)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authenticated>().cloned())
    }
}
