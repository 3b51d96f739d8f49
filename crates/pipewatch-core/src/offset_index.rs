//! The offset index: per partition of a stream a consumer reads, the offsets and event
//! times of the last [`OFFSET_INDEX_LEN`] valid records read (a fixed ring, so recording
//! one is two stores), from which a consumer's committed offset is resolved to an event
//! time: its lag in seconds is exact, not interpolated from offset history.

use crate::time::Millis;

/// Valid records per partition whose offset and event time are kept: 16 bytes each, so
/// 8 KiB per partition of a stream a consumer reads.
pub const OFFSET_INDEX_LEN: usize = 512;
/// Where an offset falls in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The event time of the first valid record at or after the offset.
    Found(Millis),
    /// Past every indexed record: pipewatch has not read (a valid record) that far yet.
    Beyond,
    /// Before the oldest indexed record: the index cannot tell.
    Older,
}

/// The last [`OFFSET_INDEX_LEN`] valid records of a partition: `(offset, event time)`,
/// offsets increasing.
#[derive(Debug, Clone)]
pub(crate) struct OffsetIndex {
    ring: Box<[(i64, Millis)]>,
    next: usize,
    len: usize,
}

impl OffsetIndex {
    pub(crate) fn new() -> Self {
        Self { ring: vec![(0, 0); OFFSET_INDEX_LEN].into_boxed_slice(), next: 0, len: 0 }
    }

    #[inline]
    pub(crate) fn push(&mut self, offset: i64, event_time: Millis) {
        // Offsets only grow; a record read again (a reset) starts the index over.
        if self.len > 0 && offset <= self.get(self.len - 1).0 {
            self.len = 0;
            self.next = 0;
        }
        self.ring[self.next] = (offset, event_time);
        self.next = (self.next + 1) % OFFSET_INDEX_LEN;
        self.len = (self.len + 1).min(OFFSET_INDEX_LEN);
    }

    /// The `i`-th oldest entry.
    fn get(&self, i: usize) -> (i64, Millis) {
        let start = (self.next + OFFSET_INDEX_LEN - self.len) % OFFSET_INDEX_LEN;
        self.ring[(start + i) % OFFSET_INDEX_LEN]
    }

    /// The first entry at or after `offset` (binary search over the ring).
    fn first_at_or_after(&self, offset: i64) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The event time of the first valid record at or after `offset`.
    pub(crate) fn at_or_after(&self, offset: i64) -> Lookup {
        if self.len == 0 || offset > self.get(self.len - 1).0 {
            return Lookup::Beyond;
        }
        if offset < self.get(0).0 {
            return Lookup::Older;
        }
        Lookup::Found(self.get(self.first_at_or_after(offset)).1)
    }

    /// The event time of the last valid record before `offset` (the last one processed
    /// by a consumer whose committed offset this is), if indexed.
    pub(crate) fn before(&self, offset: i64) -> Option<Millis> {
        if self.len == 0 || offset <= self.get(0).0 {
            return None;
        }
        Some(self.get(self.first_at_or_after(offset) - 1).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_the_record_at_or_after_an_offset_and_forgets_the_oldest() {
        let mut ix = OffsetIndex::new();
        assert_eq!(ix.at_or_after(0), Lookup::Beyond);
        // offsets 10, 12, 14, … (the odd ones were invalid records)
        for i in 0..OFFSET_INDEX_LEN as i64 + 100 {
            ix.push(10 + 2 * i, 1000 * i);
        }
        let oldest = 10 + 2 * 100;
        assert_eq!(ix.at_or_after(oldest - 1), Lookup::Older);
        assert_eq!(ix.at_or_after(oldest), Lookup::Found(100_000));
        assert_eq!(ix.at_or_after(oldest + 1), Lookup::Found(101_000), "the next valid record");
        let newest = 10 + 2 * (OFFSET_INDEX_LEN as i64 + 99);
        assert_eq!(ix.at_or_after(newest), Lookup::Found(1000 * (OFFSET_INDEX_LEN as i64 + 99)));
        assert_eq!(ix.at_or_after(newest + 1), Lookup::Beyond);
        assert_eq!(ix.before(newest + 1), Some(1000 * (OFFSET_INDEX_LEN as i64 + 99)));
        assert_eq!(ix.before(oldest + 3), Some(101_000));
        assert_eq!(ix.before(oldest), None);
        // a reset (offsets read again) starts over
        ix.push(5, 7);
        assert_eq!(ix.at_or_after(5), Lookup::Found(7));
        assert_eq!(ix.at_or_after(4), Lookup::Older);
    }
}
