//! The little of NDR (MS-RPCE §2.2.6 type serialization version 1, over DCE NDR 2.0) that the
//! PAC's logon info needs: the two headers, aligned little-endian integers, unique pointers
//! (read as "present or not", since their referents follow in order), conformant arrays and
//! conformant-varying UTF-16 strings. Every read is bounds-checked and fails with a
//! [`PacError`]; counts are checked against the bytes left before anything is allocated.

use super::{PacError, Sid};

/// `CommonHeader.Version` of type serialization version 1.
const VERSION: u8 = 1;
/// `CommonHeader.Endianness`: little-endian, ASCII (the only form a PAC uses).
const LITTLE_ENDIAN: u8 = 0x10;
/// `CommonHeader.CommonHeaderLength`.
const COMMON_HEADER_LENGTH: u16 = 8;

/// A cursor over one serialized NDR stream; alignment is counted from the stream's start
/// (the headers are 16 bytes, so from the start of the object buffer as well).
pub(crate) struct Ndr<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Ndr<'a> {
    /// Checks the common and private headers (MS-RPCE §2.2.6.1, §2.2.6.2) and returns a
    /// cursor over the object buffer they announce.
    pub(crate) fn open(data: &'a [u8]) -> Result<Ndr<'a>, PacError> {
        let mut r = Ndr { data, pos: 0 };
        let version = r.u8()?;
        let endianness = r.u8()?;
        let header_length = r.u16()?;
        let _filler = r.u32()?;
        if version != VERSION
            || endianness != LITTLE_ENDIAN
            || header_length != COMMON_HEADER_LENGTH
        {
            return Err(PacError::BadNdr(
                "not an NDR type serialization version 1 header",
            ));
        }
        let length = r.u32()? as usize;
        let _filler = r.u32()?;
        if length % 8 != 0 {
            return Err(PacError::BadNdr(
                "object buffer length is not a multiple of 8",
            ));
        }
        let end = r
            .pos
            .checked_add(length)
            .filter(|end| *end <= data.len())
            .ok_or(PacError::Truncated)?;
        Ok(Ndr {
            data: &data[..end],
            pos: r.pos,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PacError> {
        let end = self.pos.checked_add(n).ok_or(PacError::Truncated)?;
        let bytes = self.data.get(self.pos..end).ok_or(PacError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Skips to the next multiple of `n` (a power of two).
    pub(crate) fn align(&mut self, n: usize) -> Result<(), PacError> {
        let padding = self.pos.wrapping_neg() & (n - 1);
        self.take(padding).map(|_| ())
    }

    /// The bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, PacError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, PacError> {
        self.align(2)?;
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, PacError> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `n` raw bytes (an array of bytes, unaligned).
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], PacError> {
        self.take(n)
    }

    /// A unique pointer's referent id: whether its referent follows (non-zero) or not.
    pub(crate) fn pointer(&mut self) -> Result<bool, PacError> {
        Ok(self.u32()? != 0)
    }

    /// The conformance of a conformant array of `count` elements of `size` bytes, checked
    /// against the count its structure gave and the bytes left.
    pub(crate) fn conformance(&mut self, count: u32, size: usize) -> Result<(), PacError> {
        let max_count = self.u32()?;
        if max_count != count {
            return Err(PacError::BadNdr("array size differs from its count"));
        }
        let needed = (count as usize)
            .checked_mul(size)
            .ok_or(PacError::Truncated)?;
        if needed > self.left() {
            return Err(PacError::Truncated);
        }
        Ok(())
    }

    /// The deferred body of an `RPC_UNICODE_STRING` whose header gave `length` and
    /// `maximum_length` bytes: a conformant-varying array of UTF-16 code units
    /// (MS-DTYP §2.3.10).
    pub(crate) fn string(&mut self, header: StringHeader) -> Result<String, PacError> {
        if !header.present {
            return if header.length == 0 {
                Ok(String::new())
            } else {
                Err(PacError::BadNdr("a string with a length has no buffer"))
            };
        }
        let max_count = self.u32()?;
        let offset = self.u32()?;
        let actual_count = self.u32()?;
        if header.length % 2 != 0
            || header.length > header.maximum_length
            || offset != 0
            || actual_count > max_count
            || actual_count != u32::from(header.length / 2)
            || max_count != u32::from(header.maximum_length / 2)
        {
            return Err(PacError::BadNdr(
                "a string's counts disagree with its length",
            ));
        }
        let units = self.take(usize::from(header.length))?;
        super::utf16(units)
    }

    /// A deferred `RPC_SID` (MS-DTYP §2.4.2.3): its conformance, then the SID.
    pub(crate) fn sid(&mut self) -> Result<Sid, PacError> {
        let max_count = self.u32()?;
        let revision = self.u8()?;
        let count = self.u8()?;
        if u32::from(count) != max_count || count > 15 {
            return Err(PacError::BadSid);
        }
        let authority = self.bytes(6)?;
        let mut sid = vec![revision, count];
        sid.extend_from_slice(authority);
        sid.extend_from_slice(self.bytes(4 * usize::from(count))?);
        Sid::parse(&sid)
    }

    /// An `RPC_UNICODE_STRING`'s inline part: lengths in bytes and the buffer's pointer.
    pub(crate) fn string_header(&mut self) -> Result<StringHeader, PacError> {
        let length = self.u16()?;
        let maximum_length = self.u16()?;
        let present = self.pointer()?;
        Ok(StringHeader {
            length,
            maximum_length,
            present,
        })
    }
}

/// The inline part of an `RPC_UNICODE_STRING`; its characters follow later.
#[derive(Clone, Copy)]
pub(crate) struct StringHeader {
    length: u16,
    maximum_length: u16,
    present: bool,
}
