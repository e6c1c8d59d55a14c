//! One cold first token at a time: the first Negotiate token for a target whose
//! service ticket is not known to be in the user's cache yet is made alone.
//!
//! Making it asks the KDC for the service ticket (a TGS request) and stores the
//! ticket in the cache; every later context for the target finds it there. When
//! a burst of contexts starts together on a cold cache (a forward proxy opening
//! 64 upstream connections, or 1000 tunnels, the moment a build starts), each
//! would send its own TGS request: MIT's KDC listens with a queue of 5 TCP
//! connections, the rest of the SYNs are dropped and retried by the kernel only
//! after 1 s, then 3 s, which was seen as a 2 s stall of the whole burst. With
//! this gate the first context asks the KDC and the others wait for it, then take
//! the ticket from the cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// `identity target` pairs with a first token made (the ticket is in the cache).
static WARM: Mutex<Option<HashSet<String>>> = Mutex::new(None);
/// Per cold `identity target`: held while its first token is made (one key per
/// lock, so a KDC that does not answer for one realm holds up only its own).
static COLD: Mutex<Option<HashMap<String, Arc<Mutex<()>>>>> = Mutex::new(None);

fn is_warm(key: &str) -> bool {
    WARM.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|w| w.contains(key))
}

/// Runs `make` (the first step of a context for `key`), alone while `key` is
/// cold; `key` is warm once a first step for it succeeded.
pub(crate) fn first_token<T, E>(key: &str, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    if is_warm(key) {
        return make();
    }
    let lock = COLD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_default()
        .clone();
    let _alone = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let result = make();
    if result.is_ok() {
        WARM.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashSet::new)
            .insert(key.to_owned());
        if let Some(cold) = COLD.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            cold.remove(key);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn cold_first_tokens_are_made_one_at_a_time_then_in_parallel() {
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let run = |key: &'static str| {
            let (inside, most) = (inside.clone(), most.clone());
            std::thread::spawn(move || {
                first_token(key, || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                })
            })
        };
        let cold: Vec<_> = (0..8).map(|_| run("alice HTTP@cold.test")).collect();
        for t in cold {
            t.join().unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "cold: one at a time");
        assert!(is_warm("alice HTTP@cold.test"));
        // Another cold target does not wait for a slow one: the slow first token
        // finishes only after the quick one did (a deadline, not a sleep, if not).
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let slow = std::thread::spawn(move || {
            first_token("alice HTTP@slow.test", || {
                entered_tx.send(()).unwrap();
                done.recv_timeout(std::time::Duration::from_secs(10))
                    .map_err(|_| "the quick target waited for the slow one")
            })
        });
        entered.recv().unwrap();
        first_token("alice HTTP@quick.test", || Ok::<(), ()>(())).unwrap();
        done_tx.send(()).unwrap();
        slow.join().unwrap().unwrap();
        assert!(!is_warm("alice HTTP@other.test"));
        // A failed first token leaves the target cold.
        assert!(first_token("alice HTTP@fails.test", || Err::<(), ()>(())).is_err());
        assert!(!is_warm("alice HTTP@fails.test"));
    }
}
