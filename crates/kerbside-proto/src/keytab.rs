//! The entries of a Kerberos keytab file (MIT's `FILE:` format, version `0x0502`, the
//! one `kadmin ktadd`, `ktutil`, `samba-tool domain exportkeytab`, `msktutil` and
//! Windows' `ktpass` write): which principal, which key version (kvno) and which
//! encryption type each key is for. The keys themselves are skipped and never kept.
//!
//! ```text
//! file    = 05 02, entry*
//! entry   = size:i32, then `size` bytes (a negative size is a hole of -size bytes; 0 ends)
//!           components:u16, realm:data, component:data * components, name_type:u32,
//!           timestamp:u32, vno8:u8, enctype:u16, key:data, [vno:u32, anything]
//! data    = length:u16, bytes
//! ```
//!
//! Big-endian throughout. The 32-bit `vno`, when present and not zero, replaces the
//! 8-bit one (kvnos past 255 wrap in `vno8`). The old native-endian version `0x0501`
//! is refused. Sans-IO: the caller reads the file. Never panics on any input.
//!
//! ```
//! use kerbside_proto::keytab::{parse, KeytabError};
//!
//! assert_eq!(parse(b"\x05\x02").unwrap(), vec![]);
//! assert_eq!(parse(b"\x05\x01"), Err(KeytabError::UnsupportedVersion(0x0501)));
//! ```

use std::fmt;

use thiserror::Error;

/// A Kerberos encryption type number (RFC 3961 and its successors; IANA "Kerberos
/// Encryption Type Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Enctype(pub i32);

/// How much a key of an encryption type can still be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnctypeStrength {
    /// AES (RFC 3962, RFC 8009) or Camellia (RFC 6803).
    Strong,
    /// RC4-HMAC (RFC 4757): deprecated by RFC 8429, disabled by default in MIT krb5 1.21
    /// and being retired by Microsoft; Active Directory's default for accounts without
    /// `msDS-SupportedEncryptionTypes`.
    Rc4,
    /// Single DES or triple DES: broken or deprecated (RFC 6649, RFC 8429), off in every
    /// current Kerberos.
    Des,
    /// A number this table does not know.
    Unknown,
}

impl Enctype {
    /// The name MIT's tools print (`klist -e`, `kdc.conf`), or `enctype N`.
    pub fn name(self) -> String {
        let known = match self.0 {
            1 => "des-cbc-crc",
            2 => "des-cbc-md4",
            3 => "des-cbc-md5",
            16 => "des3-cbc-sha1",
            17 => "aes128-cts-hmac-sha1-96",
            18 => "aes256-cts-hmac-sha1-96",
            19 => "aes128-cts-hmac-sha256-128",
            20 => "aes256-cts-hmac-sha384-192",
            23 => "arcfour-hmac",
            24 => "arcfour-hmac-exp",
            25 => "camellia128-cts-cmac",
            26 => "camellia256-cts-cmac",
            other => return format!("enctype {other}"),
        };
        known.to_owned()
    }

    /// Whether a key of this type should still be used.
    pub fn strength(self) -> EnctypeStrength {
        match self.0 {
            17..=20 | 25 | 26 => EnctypeStrength::Strong,
            23 | 24 => EnctypeStrength::Rc4,
            1..=3 | 16 => EnctypeStrength::Des,
            _ => EnctypeStrength::Unknown,
        }
    }
}

impl fmt::Display for Enctype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One key of a keytab, without the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeytabEntry {
    /// The principal's name components (`["HTTP", "www.example.test"]`).
    pub components: Vec<String>,
    /// The principal's realm.
    pub realm: String,
    /// The principal's name type (1 `KRB5_NT_PRINCIPAL`, 3 `KRB5_NT_SRV_HST`...).
    pub name_type: u32,
    /// When the key was written, in seconds since the Unix epoch.
    pub timestamp: u32,
    /// The key version number.
    pub kvno: u32,
    /// The key's encryption type.
    pub enctype: Enctype,
    /// The key's length in bytes (the key itself is not kept).
    pub key_len: usize,
}

impl KeytabEntry {
    /// The principal as Kerberos tools write it: `HTTP/www.example.test@EXAMPLE.TEST`.
    pub fn principal(&self) -> String {
        format!("{}@{}", self.components.join("/"), self.realm)
    }
}

/// Why a keytab could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeytabError {
    /// The file is shorter than its two version bytes.
    #[error("the file is empty or shorter than a keytab's version number")]
    Empty,
    /// The first byte is not `0x05`: not a keytab.
    #[error("not a keytab (it does not start with 0x05)")]
    NotKeytab,
    /// A keytab version other than `0x0502`.
    #[error("keytab version {0:#06x}; only 0x0502 is read (rewrite it with ktutil)")]
    UnsupportedVersion(u16),
    /// The file ends inside an entry.
    #[error("the keytab ends inside entry {0}")]
    Truncated(usize),
    /// An entry's fields run past its recorded size.
    #[error("entry {0} is longer than its recorded size")]
    EntryOverrun(usize),
    /// An entry with no name components.
    #[error("entry {0} has a principal with no name")]
    NoComponents(usize),
    /// A principal's name or realm is not UTF-8.
    #[error("entry {0} has a principal that is not UTF-8")]
    NotUtf8(usize),
}

/// Reads every entry of a keytab file, skipping holes (deleted entries).
pub fn parse(bytes: &[u8]) -> Result<Vec<KeytabEntry>, KeytabError> {
    let version = match bytes {
        [] | [_] => return Err(KeytabError::Empty),
        [0x05, minor, ..] => u16::from_be_bytes([0x05, *minor]),
        _ => return Err(KeytabError::NotKeytab),
    };
    if version != 0x0502 {
        return Err(KeytabError::UnsupportedVersion(version));
    }
    let mut rest = &bytes[2..];
    let mut entries = Vec::new();
    let mut index = 0;
    while !rest.is_empty() {
        index += 1;
        let mut file = Cursor::new(rest, KeytabError::Truncated(index));
        let size = file.u32()? as i32;
        if size == 0 {
            // MIT writes nothing after this; anything left is not an entry.
            break;
        }
        let body = file.take(size.unsigned_abs() as usize)?;
        rest = file.rest;
        if size > 0 {
            entries.push(entry(body, index)?);
        }
    }
    Ok(entries)
}

/// One entry's fields, from the `size` bytes it occupies.
fn entry(body: &[u8], index: usize) -> Result<KeytabEntry, KeytabError> {
    let mut cur = Cursor::new(body, KeytabError::EntryOverrun(index));
    let count = cur.u16()?;
    if count == 0 {
        return Err(KeytabError::NoComponents(index));
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| KeytabError::NotUtf8(index))
    };
    let realm = text(cur.data()?)?;
    let components = (0..count)
        .map(|_| cur.data().and_then(text))
        .collect::<Result<Vec<_>, _>>()?;
    let name_type = cur.u32()?;
    let timestamp = cur.u32()?;
    let vno8 = cur.u8()?;
    let enctype = Enctype(i32::from(cur.u16()?));
    let key_len = cur.data()?.len();
    // The 32-bit kvno is there if four bytes remain; zero means "use vno8".
    let kvno = match cur.u32() {
        Ok(vno) if vno != 0 => vno,
        _ => u32::from(vno8),
    };
    Ok(KeytabEntry {
        components,
        realm,
        name_type,
        timestamp,
        kvno,
        enctype,
        key_len,
    })
}

/// A big-endian reader whose every shortfall is `short`.
struct Cursor<'a> {
    rest: &'a [u8],
    short: KeytabError,
}

impl<'a> Cursor<'a> {
    fn new(rest: &'a [u8], short: KeytabError) -> Self {
        Self { rest, short }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], KeytabError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(self.short)?;
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, KeytabError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, KeytabError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, KeytabError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn data(&mut self) -> Result<&'a [u8], KeytabError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Writes `entries` as a version `0x0502` keytab with all-zero keys of each entry's
/// `key_len` (for tests and the fuzz target's round trip; a real keytab comes from the
/// KDC's tools). `None` if a name, realm or key is too long for the format.
pub fn encode_without_keys(entries: &[KeytabEntry]) -> Option<Vec<u8>> {
    let mut out = vec![0x05, 0x02];
    for e in entries {
        let mut body = Vec::new();
        body.extend(u16::try_from(e.components.len()).ok()?.to_be_bytes());
        let data = |bytes: &[u8], body: &mut Vec<u8>| -> Option<()> {
            body.extend(u16::try_from(bytes.len()).ok()?.to_be_bytes());
            body.extend(bytes);
            Some(())
        };
        data(e.realm.as_bytes(), &mut body)?;
        for c in &e.components {
            data(c.as_bytes(), &mut body)?;
        }
        body.extend(e.name_type.to_be_bytes());
        body.extend(e.timestamp.to_be_bytes());
        body.push((e.kvno & 0xff) as u8);
        body.extend(u16::try_from(e.enctype.0).ok()?.to_be_bytes());
        data(&vec![0; e.key_len], &mut body)?;
        body.extend(e.kvno.to_be_bytes());
        out.extend(i32::try_from(body.len()).ok()?.to_be_bytes());
        out.extend(body);
    }
    Some(out)
}

/// Reads `data` as a keytab and panics if what parses does not write back to the same
/// entries; for the fuzz target and the seed-replay test.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(entries) = parse(data) {
        for e in &entries {
            assert!(!e.components.is_empty());
            assert!(e.key_len <= data.len());
        }
        // Entries whose kvno is 0 (both fields) write back as 0 too.
        if let Some(again) = encode_without_keys(&entries) {
            assert_eq!(parse(&again), Ok(entries));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn http(kvno: u32, enctype: i32) -> KeytabEntry {
        KeytabEntry {
            components: vec!["HTTP".into(), "localhost".into()],
            realm: "EXAMPLE.TEST".into(),
            name_type: 3,
            timestamp: 1_700_000_000,
            kvno,
            enctype: Enctype(enctype),
            key_len: 32,
        }
    }

    /// Written by MIT krb5 1.20's `ktutil` (`addent -password -p HTTP/localhost@EXAMPLE.TEST
    /// -k 2 -e aes256-cts-hmac-sha1-96`, then aes128; the password is `not-a-secret`).
    const MIT_KTUTIL: &[u8] = include_bytes!("../testdata/keytab/mit-ktutil-http-localhost.keytab");

    #[test]
    fn a_keytab_written_by_mit_ktutil_is_read() {
        let entries = parse(MIT_KTUTIL).unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        for e in &entries {
            assert_eq!(e.principal(), "HTTP/localhost@EXAMPLE.TEST");
            assert_eq!(e.kvno, 2);
            assert_eq!(e.name_type, 1);
        }
        assert_eq!(entries[0].enctype.name(), "aes256-cts-hmac-sha1-96");
        assert_eq!(entries[0].key_len, 32);
        assert_eq!(entries[1].enctype.name(), "aes128-cts-hmac-sha1-96");
        assert_eq!(entries[1].key_len, 16);
    }

    #[test]
    fn holes_are_skipped_and_a_zero_size_ends() {
        let mut bytes = encode_without_keys(&[http(1, 18)]).unwrap();
        bytes.extend((-6i32).to_be_bytes());
        bytes.extend([0xee; 6]);
        bytes.extend(&encode_without_keys(&[http(2, 23)]).unwrap()[2..]);
        bytes.extend(0i32.to_be_bytes());
        bytes.extend([0xff; 3]);
        let entries = parse(&bytes).unwrap();
        assert_eq!(entries, vec![http(1, 18), http(2, 23)]);
    }

    #[test]
    fn the_32_bit_kvno_wins_over_the_8_bit_one() {
        let bytes = encode_without_keys(&[http(300, 18)]).unwrap();
        assert_eq!(parse(&bytes).unwrap()[0].kvno, 300);
        // Without the trailing 32-bit field (older writers), vno8 is the kvno.
        let mut short = bytes.clone();
        short.truncate(short.len() - 4);
        let size = i32::from_be_bytes([short[2], short[3], short[4], short[5]]) - 4;
        short[2..6].copy_from_slice(&size.to_be_bytes());
        assert_eq!(parse(&short).unwrap()[0].kvno, 300 & 0xff);
    }

    #[test]
    fn damage_is_named() {
        assert_eq!(parse(b""), Err(KeytabError::Empty));
        assert_eq!(parse(b"\x04\x02"), Err(KeytabError::NotKeytab));
        let bytes = encode_without_keys(&[http(1, 18)]).unwrap();
        assert_eq!(
            parse(&bytes[..bytes.len() - 1]),
            Err(KeytabError::Truncated(1))
        );
        let mut overrun = bytes.clone();
        overrun[5] = 10; // size 10: the principal's fields run past it
        overrun.truncate(6 + 10);
        assert_eq!(parse(&overrun), Err(KeytabError::EntryOverrun(1)));
        assert!(KeytabError::UnsupportedVersion(0x0501)
            .to_string()
            .contains("ktutil"));
    }

    #[test]
    fn enctypes_are_named_and_judged() {
        assert_eq!(Enctype(23).name(), "arcfour-hmac");
        assert_eq!(Enctype(23).strength(), EnctypeStrength::Rc4);
        assert_eq!(Enctype(3).strength(), EnctypeStrength::Des);
        assert_eq!(Enctype(16).strength(), EnctypeStrength::Des);
        assert_eq!(Enctype(18).strength(), EnctypeStrength::Strong);
        assert_eq!(Enctype(99).name(), "enctype 99");
        assert_eq!(Enctype(-128).strength(), EnctypeStrength::Unknown);
    }

    fn arb_entry() -> impl Strategy<Value = KeytabEntry> {
        (
            prop::collection::vec("[A-Za-z0-9.\\-]{1,20}", 1..4),
            "[A-Z.]{0,20}",
            any::<u32>(),
            any::<u32>(),
            1u32..,
            0i32..=0xffff,
            0usize..64,
        )
            .prop_map(
                |(components, realm, name_type, timestamp, kvno, enctype, key_len)| KeytabEntry {
                    components,
                    realm,
                    name_type,
                    timestamp,
                    kvno,
                    enctype: Enctype(enctype),
                    key_len,
                },
            )
    }

    proptest! {
        #[test]
        fn written_entries_read_back(entries in prop::collection::vec(arb_entry(), 0..6)) {
            let bytes = encode_without_keys(&entries).unwrap();
            prop_assert_eq!(parse(&bytes), Ok(entries));
        }

        #[test]
        fn any_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = vec![0x05, 0x02];
            bytes.extend(tail);
            fuzz_check(&bytes);
        }

        #[test]
        fn every_cut_of_a_keytab_is_an_error_or_fewer_entries(
            entries in prop::collection::vec(arb_entry(), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encode_without_keys(&entries).unwrap();
            let at = cut.index(bytes.len());
            if let Ok(found) = parse(&bytes[..at]) {
                prop_assert!(found.len() < entries.len() && entries.starts_with(&found));
            }
        }
    }
}
