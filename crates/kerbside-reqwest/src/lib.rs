//! Kerberos (`Negotiate`, RFC 4559) for [reqwest], as a [`reqwest_middleware`] middleware.
//!
//! ```no_run
//! use kerbside_reqwest::{Mutual, NegotiateMiddleware};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(NegotiateMiddleware::builder().mutual(Mutual::Required).build()?)
//!     .build();
//! let page = client
//!     .get("https://intranet.example.com/private/")
//!     .send()
//!     .await?
//!     .error_for_status()?
//!     .text()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! What it does, for each request:
//!
//! * A `401` whose `WWW-Authenticate` offers `Negotiate` is answered by sending the
//!   request again with a token from a fresh GSSAPI context
//!   ([`kerbside_gssapi::NegotiateInitiator`], run on a blocking thread with a
//!   deadline) for the service `HTTP@host` (or the name given with
//!   [`Builder::spn`]). A Kerberos login takes one leg, so the token may travel on
//!   any connection of reqwest's pool.
//! * The server's final token is checked (mutual authentication): with
//!   [`Mutual::Required`] it must come and verify, with [`Mutual::Optional`] (the
//!   default) it must verify if it comes, with [`Mutual::Off`] it is ignored. A
//!   response that fails the check becomes an [`Error`], never a response.
//! * Origins that accepted a token get one with their next request straight away,
//!   saving the `401` (and [`Builder::preemptive`] names hosts that get one with the
//!   first).
//! * Tokens go over `https://` only, unless a host is allowed plain HTTP with
//!   [`Builder::allow_http_auth`]: a token in the clear can be relayed.
//! * A request that already carries `Authorization` passes untouched; so do other
//!   schemes' `401`s and a `401` from another origin a redirect led to.
//!
//! Errors say what to do (`run kinit`, `use https://`...): they reach the caller as
//! [`reqwest_middleware::Error::Middleware`], and [`Error::of`] finds them there.
//! What succeeded is in the response's extensions as a [`NegotiateOutcome`].
//!
//! # What it cannot do, and why
//!
//! * **NTLM**, **multi-leg SPNEGO** (a `401` that carries a continuation token) and a
//!   **proxy's `407`** need every leg of the handshake on one connection. A
//!   middleware hands requests to reqwest's pool, which may pick any connection,
//!   and cannot ask for the same one twice. A multi-leg exchange is refused with
//!   [`Error::MultiLeg`]; NTLM challenges and `407`s are passed on unanswered. Use
//!   [kerbside-client](https://docs.rs/kerbside-client), whose connections carry the
//!   handshake, for those.
//! * **TLS channel bindings** are not sent, for the same reason: the certificate of
//!   the connection a request will go out on is not known before it goes. A server
//!   that *requires* channel bindings refuses these tokens.
//! * **A streamed body** cannot be sent twice: when such a request gets a `401`,
//!   [`Error::BodyNotReplayable`] says so (as reqwest-middleware's retry middleware
//!   skips such requests). Bodies from bytes or strings are cloned and resent.
//! * **Redirects** are followed by reqwest below the middleware, so the token sent
//!   with a request also goes with a same-origin redirect of it, where a server with
//!   a replay cache refuses it: point requests at the final URL.
#![warn(missing_docs)]

mod config;
mod error;
mod middleware;
mod origins;

pub use config::{Builder, Config, DEFAULT_MAX_ORIGINS, DEFAULT_TOKEN_TIMEOUT};
pub use error::{BuildError, Error};
pub use kerbside_gssapi::{ClientCredentials, Delegation, GssError, Problem};
pub use kerbside_proto::scheme::negotiate::client::MutualOutcome;
pub use kerbside_proto::MutualAuth as Mutual;
pub use middleware::{NegotiateMiddleware, NegotiateOutcome};
