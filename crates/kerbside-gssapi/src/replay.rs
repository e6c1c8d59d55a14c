//! An in-memory replay cache for Kerberos authenticators, in place of MIT's file
//! replay cache (which takes a lock and does file I/O on every accept).
//!
//! Keys are SHA-256 digests of an AP-REQ's encrypted authenticator (see
//! [`kerbside_proto::krb5::authenticator`]), the same thing MIT's cache keys on
//! since krb5 1.18. An entry lives for twice the clock skew from when it was first
//! seen: MIT accepts an authenticator whose time is within the skew of its own
//! clock, so once that much time has passed on each side, the token is refused as
//! too old and its entry can go. The map is sharded (16 mutexes picked by the
//! digest's first byte) so accepts on different threads rarely wait on each other,
//! and bounded: a full shard drops expired entries, and if none has expired the
//! insert reports [`Insert::Full`] so the caller can fall back to MIT's cache rather
//! than forget an entry that still matters.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const SHARDS: usize = 16;

/// The outcome of [`ReplayCache::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Not seen within the window: now recorded.
    Fresh,
    /// Seen before within the window: a replay.
    Replay,
    /// The cache is full of entries that have not expired; nothing was recorded.
    Full,
}

/// Authenticators seen within the replay window.
#[derive(Debug)]
pub struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    window: Duration,
    per_shard: usize,
}

#[derive(Debug)]
struct Shard {
    /// Digest → when the entry expires.
    entries: HashMap<[u8; 32], Instant>,
    /// When expired entries are next swept out (also when the shard is full).
    next_sweep: Instant,
}

impl ReplayCache {
    /// MIT's default clock skew (`clockskew` in krb5.conf): 5 minutes.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(300);
    /// The default bound: about a million entries (some 100 MB at worst).
    pub const DEFAULT_CAPACITY: usize = 1 << 20;

    /// A cache for this clock skew (entries live twice as long) holding at most
    /// `capacity` entries.
    pub fn new(clock_skew: Duration, capacity: usize) -> Self {
        let now = Instant::now();
        let window = clock_skew.saturating_mul(2);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        next_sweep: now + window / 4,
                    })
                })
                .collect(),
            window,
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The digest an authenticator's ciphertext is kept under.
    pub fn key(cipher: &[u8]) -> [u8; 32] {
        Sha256::digest(cipher).into()
    }

    /// Records `key` as seen at `now`, unless it was seen within the window.
    pub fn insert(&self, key: [u8; 32], now: Instant) -> Insert {
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(expires) = shard.entries.get(&key) {
            if *expires > now {
                return Insert::Replay;
            }
        }
        if now >= shard.next_sweep || shard.entries.len() >= self.per_shard {
            shard.entries.retain(|_, expires| *expires > now);
            shard.next_sweep = now + self.window / 4;
            if shard.entries.len() >= self.per_shard {
                return Insert::Full;
            }
        }
        shard.entries.insert(key, now + self.window);
        Insert::Fresh
    }

    /// Records `key` as seen until `expires` (an entry reloaded from the replay
    /// cache file), whether or not the cache is full.
    pub fn restore(&self, key: [u8; 32], expires: Instant) {
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = shard.entries.entry(key).or_insert(expires);
        *slot = (*slot).max(expires);
    }

    /// The entries that have not expired at `now`, with when they expire.
    pub fn live_entries(&self, now: Instant) -> Vec<([u8; 32], Instant)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            out.extend(
                shard
                    .entries
                    .iter()
                    .filter(|(_, expires)| **expires > now)
                    .map(|(key, expires)| (*key, *expires)),
            );
        }
        out
    }

    /// How many entries are kept (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_good_once_within_the_window() {
        let cache = ReplayCache::new(Duration::from_secs(300), 100);
        let t0 = Instant::now();
        let key = ReplayCache::key(b"authenticator");
        assert_eq!(cache.insert(key, t0), Insert::Fresh);
        assert_eq!(cache.insert(key, t0), Insert::Replay);
        assert_eq!(
            cache.insert(key, t0 + Duration::from_secs(599)),
            Insert::Replay
        );
        // Twice the skew later the token is too old for Kerberos anyway.
        assert_eq!(
            cache.insert(key, t0 + Duration::from_secs(601)),
            Insert::Fresh
        );
        assert_eq!(cache.insert(ReplayCache::key(b"other"), t0), Insert::Fresh);
    }

    #[test]
    fn a_full_cache_forgets_only_what_expired() {
        let cache = ReplayCache::new(Duration::from_secs(1), 16);
        let t0 = Instant::now();
        // One entry per shard fills it (capacity 16 over 16 shards).
        let mut by_shard = std::collections::BTreeMap::new();
        for i in 0u32.. {
            let key = ReplayCache::key(&i.to_be_bytes());
            by_shard.entry(key[0] as usize % SHARDS).or_insert(key);
            if by_shard.len() == SHARDS {
                break;
            }
        }
        for key in by_shard.values() {
            assert_eq!(cache.insert(*key, t0), Insert::Fresh);
        }
        let key0 = by_shard[&0];
        let mut another = None;
        for i in 1_000_000u32.. {
            let key = ReplayCache::key(&i.to_be_bytes());
            if key[0] as usize % SHARDS == 0 {
                another = Some(key);
                break;
            }
        }
        let another = another.unwrap_or(key0);
        assert_eq!(cache.insert(another, t0), Insert::Full);
        assert_eq!(cache.insert(key0, t0), Insert::Replay, "not forgotten");
        let later = t0 + Duration::from_secs(3);
        assert_eq!(cache.insert(another, later), Insert::Fresh);
        assert_eq!(cache.len(), SHARDS);
    }
}
