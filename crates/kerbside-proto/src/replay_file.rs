//! The format of the gate's replay cache file: the Kerberos authenticators it has
//! accepted, kept on disk so that a token captured before a restart of the gate is
//! still refused after it.
//!
//! The file is a 16-byte header ([`MAGIC`]) followed by fixed-size records of
//! [`RECORD_LEN`] bytes, appended one per accepted token:
//!
//! ```text
//! key      32 bytes   SHA-256 of the AP-REQ's encrypted authenticator
//! expires   8 bytes   Unix time (seconds, big-endian) after which the entry can go
//! ```
//!
//! Appends are not synced, so a crash of the machine (or a crash in the middle of a
//! write) can leave a partial record at the end: [`parse`] skips such a torn tail and
//! says how long it was. The same key may appear more than once (a compaction racing
//! an append); readers keep the latest expiry. Everything here is sans-IO: the caller
//! reads the file and the clock.

use thiserror::Error;

/// The first 16 bytes of every replay cache file (format version 1).
pub const MAGIC: &[u8; 16] = b"kerbside-rcache1";

/// The length of one record: a 32-byte key and an 8-byte expiry.
pub const RECORD_LEN: usize = 40;

/// One accepted authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// SHA-256 of the authenticator's ciphertext.
    pub key: [u8; 32],
    /// When the entry expires, in seconds since the Unix epoch.
    pub expires: u64,
}

impl Entry {
    /// The record as it is appended to the file.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..32].copy_from_slice(&self.key);
        out[32..].copy_from_slice(&self.expires.to_be_bytes());
        out
    }

    /// A record read back; `None` unless `record` is exactly [`RECORD_LEN`] bytes.
    pub fn decode(record: &[u8]) -> Option<Self> {
        let (key, expires) = record.split_first_chunk::<32>()?;
        let expires: &[u8; 8] = expires.try_into().ok()?;
        Some(Self {
            key: *key,
            expires: u64::from_be_bytes(*expires),
        })
    }
}

/// A replay cache file as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayFile {
    /// The whole records, in file order.
    pub entries: Vec<Entry>,
    /// How many bytes at the end did not make a whole record (or header): a write
    /// cut short by a crash. They are ignored.
    pub torn_tail: usize,
}

/// Why bytes are not a replay cache file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayFileError {
    /// The file does not start with [`MAGIC`]: it is some other file, or a newer
    /// format. It is not overwritten.
    #[error("it is not a kerbside replay cache file (it does not start with {MAGIC:?})")]
    NotAReplayFile,
}

/// Reads a replay cache file. An empty file, or one cut short inside its header (a
/// crash right after it was created), reads as no entries.
pub fn parse(data: &[u8]) -> Result<ReplayFile, ReplayFileError> {
    if data.len() < MAGIC.len() {
        return if MAGIC.starts_with(data) {
            Ok(ReplayFile {
                entries: Vec::new(),
                torn_tail: data.len(),
            })
        } else {
            Err(ReplayFileError::NotAReplayFile)
        };
    }
    let Some(body) = data.strip_prefix(MAGIC.as_slice()) else {
        return Err(ReplayFileError::NotAReplayFile);
    };
    let records = body.chunks_exact(RECORD_LEN);
    let torn_tail = records.remainder().len();
    Ok(ReplayFile {
        entries: records.filter_map(Entry::decode).collect(),
        torn_tail,
    })
}

/// A whole file holding `entries`: [`MAGIC`] and one record each.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * RECORD_LEN);
    out.extend_from_slice(MAGIC);
    for entry in entries {
        out.extend_from_slice(&entry.encode());
    }
    out
}

impl ReplayFile {
    /// The entries still alive at `now` (Unix seconds), one per key with its latest
    /// expiry, none expiring later than `now + window`: an entry never needs to live
    /// longer than the replay window, so a corrupt or future expiry (a clock set
    /// back) cannot pin an entry for longer.
    pub fn live(&self, now: u64, window: u64) -> Vec<Entry> {
        let limit = now.saturating_add(window);
        let mut latest: std::collections::HashMap<[u8; 32], u64> = std::collections::HashMap::new();
        for entry in &self.entries {
            if entry.expires <= now {
                continue;
            }
            let expires = entry.expires.min(limit);
            let slot = latest.entry(entry.key).or_insert(expires);
            *slot = (*slot).max(expires);
        }
        let mut out: Vec<Entry> = latest
            .into_iter()
            .map(|(key, expires)| Entry { key, expires })
            .collect();
        out.sort_by_key(|e| (e.expires, e.key));
        out
    }
}

/// The fuzz target's check: parsing never panics; a file that parses encodes back
/// into the same bytes up to its torn tail; the live entries are alive, unique and
/// within the window.
pub(crate) fn fuzz_check(data: &[u8]) {
    let Ok(file) = parse(data) else {
        assert!(!data.starts_with(MAGIC) && !MAGIC.starts_with(data));
        return;
    };
    if data.len() >= MAGIC.len() {
        let whole = data.len() - file.torn_tail;
        assert_eq!(encode(&file.entries), &data[..whole]);
        assert!(file.torn_tail < RECORD_LEN);
    } else {
        assert!(file.entries.is_empty());
    }
    let now = data.first().map_or(0, |b| u64::from(*b) << 24);
    let live = file.live(now, 600);
    let keys: std::collections::HashSet<_> = live.iter().map(|e| e.key).collect();
    assert_eq!(keys.len(), live.len());
    assert!(live
        .iter()
        .all(|e| e.expires > now && e.expires <= now + 600));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(byte: u8, expires: u64) -> Entry {
        Entry {
            key: [byte; 32],
            expires,
        }
    }

    #[test]
    fn a_file_reads_back_what_was_appended() {
        let entries = [entry(1, 100), entry(2, 200)];
        let data = encode(&entries);
        assert_eq!(data.len(), 16 + 2 * 40);
        let file = parse(&data).unwrap();
        assert_eq!(file.entries, entries);
        assert_eq!(file.torn_tail, 0);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_counted() {
        let mut data = encode(&[entry(1, 100), entry(2, 200)]);
        data.extend_from_slice(&entry(3, 300).encode()[..17]);
        let file = parse(&data).unwrap();
        assert_eq!(file.entries, [entry(1, 100), entry(2, 200)]);
        assert_eq!(file.torn_tail, 17);
    }

    #[test]
    fn an_empty_or_half_written_header_is_an_empty_file() {
        assert_eq!(parse(b"").unwrap(), ReplayFile::default());
        assert_eq!(parse(&MAGIC[..5]).unwrap().torn_tail, 5);
        assert!(parse(&MAGIC[..5]).unwrap().entries.is_empty());
    }

    #[test]
    fn another_file_is_refused() {
        assert_eq!(
            parse(b"root:x:0:0:root:/root:/bin/bash\n"),
            Err(ReplayFileError::NotAReplayFile)
        );
        assert_eq!(parse(b"root"), Err(ReplayFileError::NotAReplayFile));
        let mut newer = encode(&[]);
        newer[15] = b'2';
        assert_eq!(parse(&newer), Err(ReplayFileError::NotAReplayFile));
    }

    #[test]
    fn live_entries_drop_the_expired_keep_the_latest_and_clamp_to_the_window() {
        let file = ReplayFile {
            entries: vec![
                entry(1, 999),
                entry(2, 1_100),
                entry(2, 1_200),
                entry(3, u64::MAX),
            ],
            torn_tail: 0,
        };
        assert_eq!(
            file.live(1_000, 600),
            [entry(2, 1_200), entry(3, 1_600)],
            "1 expired, 2 at its latest, 3 clamped"
        );
    }

    #[test]
    fn the_seed_files_are_as_described() {
        let seeds = kerbside_testkit::fuzz_seeds("replay_file");
        let (_, torn) = seeds
            .iter()
            .find(|(path, _)| path.ends_with("seed-torn-tail"))
            .expect("the seed-torn-tail seed");
        assert_eq!(parse(torn).unwrap().torn_tail, 13);
        assert_eq!(parse(torn).unwrap().entries.len(), 2);
    }

    proptest! {
        #[test]
        fn whatever_is_encoded_parses_back(
            keys in proptest::collection::vec((any::<[u8; 32]>(), any::<u64>()), 0..20),
        ) {
            let entries: Vec<Entry> =
                keys.into_iter().map(|(key, expires)| Entry { key, expires }).collect();
            let file = parse(&encode(&entries)).unwrap();
            prop_assert_eq!(file.entries, entries);
            prop_assert_eq!(file.torn_tail, 0);
        }

        #[test]
        fn a_file_cut_anywhere_keeps_its_whole_records(
            keys in proptest::collection::vec((any::<[u8; 32]>(), any::<u64>()), 0..8),
            cut in any::<usize>(),
        ) {
            let entries: Vec<Entry> =
                keys.into_iter().map(|(key, expires)| Entry { key, expires }).collect();
            let data = encode(&entries);
            let cut = cut % (data.len() + 1);
            let file = parse(&data[..cut]).unwrap();
            let whole = cut.saturating_sub(MAGIC.len()) / RECORD_LEN;
            prop_assert_eq!(&file.entries[..], &entries[..whole]);
        }

        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            with_magic in any::<bool>(),
        ) {
            let data = if with_magic { [MAGIC.as_slice(), &data].concat() } else { data };
            fuzz_check(&data);
        }
    }
}
