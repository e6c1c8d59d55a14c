//! The one DER reader (and writer) of the crate, for the two grammars kerbside walks by
//! hand: Kerberos AP-REQs ([`krb5`](crate::krb5)) and SPNEGO tokens
//! ([`spnego`](crate::spnego)).
//!
//! Strict X.690 DER, and only what those grammars use: single-byte tags; definite,
//! minimal lengths of at most four bytes; a value's contents must be all there. Each
//! violation is its own [`DerError`], which each grammar turns into its own error type
//! (the krb5 walker's named variants, SPNEGO's messages). It never panics on any input.
//!
//! Why not the `der` crate (in the tree through `x509-cert`): the GSS-API framing
//! (RFC 2743 §3.1) ends with an inner token that is not a DER value, both grammars keep
//! the exact error each violation had before, and what is needed is a cursor of eighty
//! lines.

/// Why a DER value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerError {
    /// The input ends inside a value.
    Truncated,
    /// A multi-byte (high) tag number, which neither grammar uses.
    MultiByteTag,
    /// BER's indefinite length (`0x80`).
    IndefiniteLength,
    /// A length of more than four bytes.
    LengthTooLarge,
    /// A length with a leading zero byte, or a long form for a length under 128.
    NonMinimalLength,
    /// A tag other than the one the grammar has at this place.
    UnexpectedTag {
        /// The tag the grammar wants.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes follow a complete value.
    TrailingBytes,
}

/// A cursor over consecutive DER values.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next value's tag, if there is a next byte.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// What has not been read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next value's tag and contents, whatever its tag.
    pub(crate) fn any(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&tag, after) = self.rest.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::MultiByteTag);
        }
        let (&first, mut after) = after.split_first().ok_or(DerError::Truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(DerError::IndefiniteLength);
            }
            if count > 4 {
                return Err(DerError::LengthTooLarge);
            }
            let (bytes, rest) = after.split_at_checked(count).ok_or(DerError::Truncated)?;
            after = rest;
            if bytes.first() == Some(&0) {
                return Err(DerError::NonMinimalLength);
            }
            let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(DerError::NonMinimalLength);
            }
            len
        };
        let (contents, rest) = after.split_at_checked(len).ok_or(DerError::Truncated)?;
        self.rest = rest;
        Ok((tag, contents))
    }

    /// The next value, which must have `tag` (checked before the value is read).
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        match self.peek() {
            Some(found) if found != tag => Err(DerError::UnexpectedTag {
                expected: tag,
                found,
            }),
            _ => self.any().map(|(_, contents)| contents),
        }
    }

    /// The next value if it has `tag`; nothing is read otherwise.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek() == Some(tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Succeeds when everything has been read.
    pub(crate) fn end(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingBytes)
        }
    }
}

/// The contents of the single value `bytes` holds, which must have `tag`.
pub(crate) fn whole(bytes: &[u8], tag: u8) -> Result<&[u8], DerError> {
    let mut der = Reader::new(bytes);
    let contents = der.expect(tag)?;
    der.end()?;
    Ok(contents)
}

/// `tag`, the minimal DER length of `contents`, then `contents`.
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    if let Ok(short @ 0..0x80) = u8::try_from(len) {
        out.push(short);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let count = bytes.len() - skip;
        out.push(0x80 | u8::try_from(count).unwrap_or(0x7f));
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_violation_has_its_own_error() {
        fn read(bytes: &[u8]) -> Result<(u8, &[u8]), DerError> {
            Reader::new(bytes).any()
        }
        assert_eq!(read(b""), Err(DerError::Truncated));
        assert_eq!(read(b"\x04"), Err(DerError::Truncated));
        assert_eq!(read(b"\x04\x02a"), Err(DerError::Truncated));
        assert_eq!(read(b"\x1f\x01a"), Err(DerError::MultiByteTag));
        assert_eq!(read(b"\x04\x80a\x00\x00"), Err(DerError::IndefiniteLength));
        assert_eq!(
            read(b"\x04\x85\x01\x00\x00\x00\x00"),
            Err(DerError::LengthTooLarge)
        );
        assert_eq!(read(b"\x04\x82\x00\x80"), Err(DerError::NonMinimalLength));
        assert_eq!(read(b"\x04\x81\x7f"), Err(DerError::NonMinimalLength));
        assert_eq!(read(b"\x04\x81\x80"), Err(DerError::Truncated));
        assert_eq!(read(b"\x04\x01ab"), Ok((0x04, &b"a"[..])));
        assert_eq!(
            Reader::new(b"\x02\x01\x05").expect(0x04),
            Err(DerError::UnexpectedTag {
                expected: 0x04,
                found: 0x02
            })
        );
        assert_eq!(whole(b"\x04\x01ab", 0x04), Err(DerError::TrailingBytes));
        assert_eq!(whole(b"\x04\x01a", 0x04), Ok(&b"a"[..]));
    }

    #[test]
    fn optional_reads_only_its_own_tag() {
        let mut der = Reader::new(b"\xa1\x01x\xa2\x01y");
        assert_eq!(der.optional(0xa0), Ok(None));
        assert_eq!(der.optional(0xa1), Ok(Some(&b"x"[..])));
        assert_eq!(der.rest(), b"\xa2\x01y");
        assert_eq!(der.optional(0xa2), Ok(Some(&b"y"[..])));
        assert_eq!(der.end(), Ok(()));
    }

    proptest! {
        #[test]
        fn what_is_encoded_reads_back(tag in 0u8..0x1f, contents in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let bytes = encode(tag, &contents);
            prop_assert_eq!(whole(&bytes, tag), Ok(&contents[..]));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut der = Reader::new(&data);
            while der.any().is_ok() {}
        }
    }
}
