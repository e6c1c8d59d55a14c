//! What can go wrong: building the middleware ([`BuildError`]) and answering a
//! request ([`Error`]). Messages say what happened and what to do.

use kerbside_gssapi::GssError;
use kerbside_proto::scheme::negotiate::client::NegotiateError;

/// A configuration that [`Builder::build`](crate::Builder::build) refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A host given to the builder is not a bare host name or address.
    #[error(
        "{what}: {given:?} is not a host name; give the host alone, as it appears in the \
         URL (e.g. \"build.example.com\" or \"[::1]\"), without scheme, port or path"
    )]
    NotAHost {
        /// Which setting the host was given to.
        what: &'static str,
        /// What was given.
        given: String,
    },
    /// An explicit service name is neither `service@host` nor a principal `service/host[@REALM]`.
    #[error(
        "the service name {name:?} given for {host} is not a Kerberos service name: use \
         HTTP@host (host-based) or HTTP/host@REALM (a principal)"
    )]
    BadServiceName {
        /// The host it was given for.
        host: String,
        /// The name.
        name: String,
    },
    /// Ticket delegation was asked for and plain HTTP is allowed for a host.
    #[error(
        "delegating the Kerberos ticket-granting ticket is refused while plain HTTP is \
         allowed for {host}: a token sent in the clear can be relayed by anyone on the path, \
         and with it your delegated credentials; use https:// for that host or switch \
         delegation off"
    )]
    DelegationOverPlainHttp {
        /// The host plain HTTP is allowed for.
        host: String,
    },
    /// A client keytab was named that cannot be read.
    #[error(
        "the client keytab {path} cannot be read ({reason}): check the path and its permissions"
    )]
    KeytabUnreadable {
        /// The keytab path.
        path: String,
        /// What the file system said.
        reason: String,
    },
    /// The timeout for getting a token is zero.
    #[error("the token timeout is zero: no token could ever be made; give it some seconds")]
    ZeroTimeout,
}

/// Why the middleware could not answer a request. It reaches the caller as
/// [`reqwest_middleware::Error::Middleware`]; [`Error::of`] finds it there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server asked for Negotiate over plain HTTP and the host was not allowed.
    /// No token was made or sent.
    #[error(
        "refusing to send Negotiate credentials to {host} over plain HTTP: anyone on the \
         network path could steal or relay them; use https://, or allow it for this host \
         with NegotiateMiddleware::builder().allow_http_auth(\"{host}\") if you accept the risk"
    )]
    PlainHttp {
        /// The host that asked.
        host: String,
    },
    /// GSSAPI could not make a token (no ticket, expired ticket, unknown service...).
    #[error("no Kerberos token for {target}: {source}")]
    Kerberos {
        /// The service name the token was for.
        target: String,
        /// What GSSAPI said, in words a person can act on.
        #[source]
        source: GssError,
    },
    /// The exchange failed: the server rejected the token, its final token did not
    /// verify, it sent a malformed header...
    #[error("Negotiate with {host} failed: {source}")]
    Exchange {
        /// The host.
        host: String,
        /// What went wrong, from kerbside-proto's Negotiate state machine.
        #[source]
        source: NegotiateError<GssError>,
    },
    /// Mutual authentication is required and the server sent no final token.
    #[error(
        "{host} sent no final Negotiate token, so it did not prove it holds the service key \
         (mutual authentication is required; build the middleware with \
         .mutual(Mutual::Optional) to accept this)"
    )]
    MutualAuthMissing {
        /// The host.
        host: String,
    },
    /// The server answered the token with a `401` carrying another token: SPNEGO
    /// wants another leg, which must travel on the same connection.
    #[error(
        "{host} wants a multi-leg Negotiate exchange (a 401 with a continuation token): \
         that needs one connection for the whole handshake, which reqwest's pool cannot \
         promise; use kerbside-client for this server"
    )]
    MultiLeg {
        /// The host.
        host: String,
    },
    /// A `401 Negotiate` came after a body that cannot be sent twice (a stream).
    #[error(
        "{host} asked for Negotiate after the streamed request body was sent, and a stream \
         cannot be sent again: send a body that can be cloned (bytes, a string), make one \
         cheap request to the origin first so the middleware learns it wants Negotiate and \
         sends the token up front, or name the host in .preemptive(\"{host}\")"
    )]
    BodyNotReplayable {
        /// The host.
        host: String,
    },
    /// The server's `WWW-Authenticate` header does not parse.
    #[error("{host} sent a malformed WWW-Authenticate header: {source}")]
    MalformedChallenge {
        /// The host.
        host: String,
        /// The parse error.
        #[source]
        source: kerbside_proto::HeaderError,
    },
    /// Making or checking a token took longer than the token timeout.
    #[error(
        "Kerberos did not produce a token for {target} within {seconds} s: the KDC may be \
         unreachable (check the kdc lines of krb5.conf and the network)"
    )]
    Timeout {
        /// The service name.
        target: String,
        /// The timeout, in seconds.
        seconds: u64,
    },
    /// The blocking task that ran GSSAPI panicked or was cancelled.
    #[error("the Kerberos task for {target} did not finish: {detail}")]
    Task {
        /// The service name.
        target: String,
        /// What tokio said.
        detail: String,
    },
}

impl Error {
    /// The middleware's error inside a `reqwest_middleware::Error`, if it is one.
    ///
    /// ```no_run
    /// # async fn f(client: reqwest_middleware::ClientWithMiddleware) {
    /// match client.get("https://intranet.example.com/").send().await {
    ///     Err(e) if kerbside_reqwest::Error::of(&e).is_some_and(|k| k.is_no_ticket()) => {
    ///         eprintln!("{e}"); // "... run kinit"
    ///     }
    ///     _ => {}
    /// }
    /// # }
    /// ```
    pub fn of(error: &reqwest_middleware::Error) -> Option<&Error> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<Error>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    /// True when the user has no usable Kerberos ticket (none, or expired).
    pub fn is_no_ticket(&self) -> bool {
        let gss = match self {
            Self::Kerberos { source, .. } => Some(source),
            Self::Exchange {
                source: NegotiateError::Mechanism(source),
                ..
            } => Some(source),
            _ => None,
        };
        gss.is_some_and(|e| {
            matches!(
                e.problem(),
                kerbside_gssapi::Problem::NoCredentials | kerbside_gssapi::Problem::ExpiredTicket
            )
        })
    }

    /// True when the policy kept credentials from a plain-HTTP origin.
    pub fn is_plain_http(&self) -> bool {
        matches!(self, Self::PlainHttp { .. })
    }

    /// True when the server did not prove its identity (mutual authentication).
    pub fn is_mutual_auth(&self) -> bool {
        matches!(
            self,
            Self::MutualAuthMissing { .. }
                | Self::Exchange {
                    source: NegotiateError::MutualAuthFailed(_)
                        | NegotiateError::MutualAuthIncomplete,
                    ..
                }
        )
    }

    /// Turns a state-machine error into this error, with library (not CLI) advice.
    pub(crate) fn exchange(host: &str, source: NegotiateError<GssError>) -> Self {
        match source {
            NegotiateError::MutualAuthMissing => Self::MutualAuthMissing {
                host: host.to_owned(),
            },
            source => Self::Exchange {
                host: host.to_owned(),
                source,
            },
        }
    }
}
