//! The server side: what a request's `Authorization` header asks of the acceptor.

use crate::header::{Challenge, Credentials, HeaderError};

/// What a request brings for Negotiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No `Authorization` header: answer 401 with a bare `Negotiate` challenge.
    Nothing,
    /// Credentials of another scheme: answer 401 with the challenge.
    OtherScheme(String),
    /// A Negotiate token for the acceptor.
    Token(Vec<u8>),
}

/// Why an `Authorization` header cannot be used at all (answer 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedAuthorization {
    /// The header does not follow the credentials grammar.
    #[error("malformed Authorization header: {0}")]
    Syntax(#[from] HeaderError),
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    Repeated,
    /// `Authorization: Negotiate` without a token.
    #[error("Authorization: Negotiate carries no token")]
    MissingToken,
}

/// Reads all `Authorization` (or `Proxy-Authorization`) header values of a request.
pub fn read_authorization<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Presented, MalformedAuthorization> {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return Ok(Presented::Nothing);
    };
    if values.next().is_some() {
        return Err(MalformedAuthorization::Repeated);
    }
    let credentials = Credentials::parse(first)?;
    if !credentials.scheme.is(super::SCHEME) {
        return Ok(Presented::OtherScheme(
            credentials.scheme.as_str().to_owned(),
        ));
    }
    match credentials.decode_token68()? {
        Some(token) if !token.is_empty() => Ok(Presented::Token(token)),
        _ => Err(MalformedAuthorization::MissingToken),
    }
}

/// The `WWW-Authenticate` value for a response: a bare `Negotiate` to ask for a
/// token, or `Negotiate <token>` to carry the acceptor's output.
pub fn challenge(token: Option<&[u8]>) -> String {
    Challenge::negotiate(token).to_header_value()
}
