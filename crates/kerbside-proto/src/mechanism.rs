//! The [`Mechanism`] trait: one authentication exchange as a state machine.
//!
//! A mechanism turns the token a peer sent into the token to send back. It knows
//! nothing of HTTP: the scheme modules (`scheme::negotiate`, …) carry its tokens in
//! headers, and the IO crates decide which connection they travel on.

/// The result of feeding one token (or none, to start) to a mechanism.
///
/// Unlike GSSAPI's `Option<Buf>`, "continue" and "complete with a final token" are
/// different values, so a caller cannot mistake one for the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The exchange needs another leg: send this token and wait for the peer's answer.
    Continue(Vec<u8>),
    /// The exchange is complete on this side. A final token, if any, must still reach
    /// the peer (an acceptor's mutual-authentication token, for example).
    Done(Option<Vec<u8>>),
}

/// The initiating (client) side of an authentication mechanism.
///
/// One value is one exchange: once it has returned [`Step::Done`] or an error it is
/// spent, and a new exchange needs a new value. Implementations must never be reused
/// across connections.
pub trait Mechanism {
    /// The error a step can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Feeds the peer's token (`None` for the first leg) and returns what to do next.
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Self::Error>;
}
