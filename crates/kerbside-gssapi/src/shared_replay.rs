//! A replay cache shared by several acceptors (the gates behind one load balancer), in
//! front of which each keeps its own memory cache ([`crate::replay`]).
//!
//! Each gate's memory cache catches a token replayed to the same gate; only a shared
//! store catches one replayed to another gate. [`SharedReplay::claim`] must be a single
//! atomic check-and-set (Redis: `SET key 1 NX PX ttl`), keyed on the same digest of the
//! authenticator as the memory cache, so that of two gates shown one token at the same
//! moment exactly one accepts it.
//!
//! What happens when the store cannot answer is the operator's choice
//! ([`WhenUnavailable`]): refusing every Kerberos login until it is back (the default: an
//! outage cannot open a replay window silently), or falling back to this gate's memory
//! cache alone.

use std::fmt;
use std::time::Duration;

/// A store of authenticator digests that several acceptors share.
pub trait SharedReplay: fmt::Debug + Send + Sync {
    /// Claims `key` for `ttl`: `Ok(true)` when no acceptor had claimed it within its
    /// ttl (it is now claimed), `Ok(false)` when one had (a replay), `Err` when the
    /// store could not say. Called on the thread doing the accept: it must not wait
    /// long (give it a deadline of a fraction of a second).
    fn claim(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, SharedReplayError>;
}

/// The shared store could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared replay cache is unavailable: {0}")]
pub struct SharedReplayError(pub String);

/// What to do with a Kerberos login when the shared store cannot be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenUnavailable {
    /// Refuse it (the default): no replay window opens during an outage, at the cost
    /// of Kerberos logins failing until the store is back.
    #[default]
    Refuse,
    /// Accept it if this gate's own memory cache has not seen it: replays to the same
    /// gate are still caught, replays to another gate are not.
    Local,
}

/// A shared store and the policy for its outages, as an acceptor holds them.
#[derive(Debug)]
pub(crate) struct SharedCheck {
    pub(crate) store: std::sync::Arc<dyn SharedReplay>,
    pub(crate) when_unavailable: WhenUnavailable,
    pub(crate) ttl: Duration,
}

/// What the shared store made of an authenticator the memory cache let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shared {
    /// Not claimed before: go on.
    Fresh,
    /// Claimed by some acceptor before: refuse.
    Replay,
    /// The store could not say, and the policy refuses.
    Unavailable,
}

impl SharedCheck {
    pub(crate) fn check(&self, key: &[u8; 32]) -> Shared {
        match self.store.claim(key, self.ttl) {
            Ok(true) => Shared::Fresh,
            Ok(false) => Shared::Replay,
            Err(e) => match self.when_unavailable {
                WhenUnavailable::Refuse => {
                    tracing::warn!(
                        "Negotiate token refused: {e} (replay-cache-unavailable = \"refuse\")"
                    );
                    Shared::Unavailable
                }
                WhenUnavailable::Local => {
                    tracing::debug!("{e}; this gate's memory cache decides alone");
                    Shared::Fresh
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Default)]
    struct Store {
        seen: Mutex<HashSet<[u8; 32]>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl SharedReplay for Store {
        fn claim(&self, key: &[u8; 32], _ttl: Duration) -> Result<bool, SharedReplayError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(SharedReplayError("connection refused".to_owned()));
            }
            Ok(self.seen.lock().unwrap().insert(*key))
        }
    }

    #[test]
    fn a_key_claimed_once_is_a_replay_after_and_outages_follow_the_policy() {
        let store = Arc::new(Store::default());
        let check = |when| SharedCheck {
            store: store.clone(),
            when_unavailable: when,
            ttl: Duration::from_secs(600),
        };
        let refuse = check(WhenUnavailable::Refuse);
        assert_eq!(refuse.check(&[1; 32]), Shared::Fresh);
        assert_eq!(refuse.check(&[1; 32]), Shared::Replay);
        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(refuse.check(&[2; 32]), Shared::Unavailable);
        assert_eq!(check(WhenUnavailable::Local).check(&[2; 32]), Shared::Fresh);
    }
}
