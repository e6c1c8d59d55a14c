//! The body and error types every part of the server shares: the gate's response
//! body, and the boxed error its bodies and services carry. A leaf: it imports
//! nothing from the crate.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// Errors of bodies streamed through the gate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Response bodies of the gate (proxied, from CGI, or made by the gate).
pub type GateBody = BoxBody<Bytes, BoxError>;
