//! Negotiate (SPNEGO, RFC 4559) on GSSAPI, through the `libgssapi` crate over MIT krb5.
//!
//! * [`NegotiateInitiator`]: the client side, one exchange per value, from the user's
//!   ticket cache; it implements [`kerbside_proto::Mechanism`] so the sans-IO client
//!   state machine drives it. A long-running client calls [`keep_ticket_cache_copies`]
//!   so that its tokens come from a kept in-memory copy of the cache.
//! * [`NegotiateAcceptor`]: the server side, from a keytab; [`AcceptContext`] is one
//!   exchange; [`NegotiateAcceptor::with_memory_replay_cache`] catches replays in a
//!   [`ReplayCache`] in memory instead of MIT's file cache;
//!   [`NegotiateAcceptor::with_replay_file`] keeps that cache in a [`ReplayJournal`]
//!   file as well, so a restart does not forget it.
//! * [`krb5`]: MIT krb5 itself (configuration, ticket caches, service tickets), for
//!   diagnosis.
//! * [`DelegatedCredential`]: what a client's login leaves the server to act in its
//!   name (a forwarded TGT, or an S4U2Proxy credential with
//!   [`NegotiateAcceptor::with_constrained_delegation`]), storable in a ticket cache.
//! * [`GssError`]: every GSSAPI failure, with a [`Problem`] in words a person can act on.
//!
//! All calls here block (they may read files or talk to a KDC): async callers run
//! them on a blocking thread.
#![warn(missing_docs)]

mod accept_ctx;
mod acceptor;
mod cred_cache;
mod delegation;
mod direct;
mod error;
mod ffi;
mod first_token;
mod initiator;
mod keytab;
pub mod krb5;
mod name_attr;
mod replay;
mod replay_journal;
mod shared_replay;

pub use acceptor::{
    AcceptContext, AcceptStep, AcceptorConfig, NegotiateAcceptor, ReplayCacheError, ReplayCheck,
};
pub use cred_cache::keep_ticket_cache_copies;
pub use delegation::DelegatedCredential;
pub use direct::accepted_directly;
pub use error::{GssError, Problem, Side};
pub use initiator::{ClientCredentials, Delegation, InitiatorConfig, NegotiateInitiator};
pub use replay::{Insert, ReplayCache};
pub use replay_journal::{Reloaded, ReplayFileError, ReplayJournal};
pub use shared_replay::{SharedReplay, SharedReplayError, WhenUnavailable};
