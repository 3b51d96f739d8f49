//! The byte cursor the schema-registry formats read with: bounds-checked takes and the
//! base-128 varints Avro (zig-zag) and Protobuf (plain and zig-zag) share. Every read
//! either succeeds within the data or is [`FieldMiss::BadEncoding`]; nothing panics.

use crate::extract::FieldMiss;

pub(crate) struct Cursor<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte was read.
    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next `n` bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FieldMiss> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or(FieldMiss::BadEncoding)?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A base-128 varint of at most ten bytes (the tenth at most 1: no bit past 64).
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, FieldMiss> {
        // most keys, lengths and small numbers are one byte
        if let Some(&b) = self.data.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.data.get(self.pos).ok_or(FieldMiss::BadEncoding)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(FieldMiss::BadEncoding);
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FieldMiss::BadEncoding)
    }

    /// A zig-zag varint: Avro's int and long, Protobuf's sint32 and sint64.
    #[inline]
    pub(crate) fn zigzag(&mut self) -> Result<i64, FieldMiss> {
        self.varint().map(unzigzag)
    }

    /// A zig-zag varint that is a length or a count (not negative).
    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, FieldMiss> {
        usize::try_from(self.zigzag()?).map_err(|_| FieldMiss::BadEncoding)
    }
}

/// A zig-zag encoded value, decoded.
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}
