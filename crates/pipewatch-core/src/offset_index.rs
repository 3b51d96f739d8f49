//! The offset index: per partition of a stream a consumer reads, the offsets and event
//! times of the valid records read that a consumer may still need (at most
//! [`OFFSET_INDEX_LEN`]), from which a consumer's committed offset is resolved to an
//! event time: its lag in seconds is exact, not interpolated from offset history.
//!
//! Its memory follows what waits: the records before every watching consumer's committed
//! offset are forgotten (but the last one, the event time of what the slowest consumer
//! processed last), so a partition whose consumers are caught up keeps one entry, not
//! 8 KiB.

use std::collections::VecDeque;

use crate::time::Millis;

/// Valid records per partition whose offset and event time are kept at most: 16 bytes
/// each, so at most 8 KiB per partition of a stream a consumer reads.
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

/// The valid records of a partition a consumer may need: `(offset, event time)`, offsets
/// increasing.
#[derive(Debug, Clone, Default)]
pub(crate) struct OffsetIndex {
    entries: VecDeque<(i64, Millis)>,
    /// The lowest committed offset of the consumers that read the partition, once known:
    /// the entries before the last one below it are not needed.
    keep_from: Option<i64>,
}

impl OffsetIndex {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub(crate) fn push(&mut self, offset: i64, event_time: Millis) {
        // Offsets only grow; a record read again (a reset) starts the index over.
        if self.entries.back().is_some_and(|&(last, _)| offset <= last) {
            self.entries.clear();
        }
        if self.entries.len() == OFFSET_INDEX_LEN {
            self.entries.pop_front();
        }
        self.entries.push_back((offset, event_time));
        self.trim();
    }

    /// The lowest committed offset of the consumers reading the partition (`None`: not
    /// known, keep everything): the records before it but the last are forgotten.
    pub(crate) fn keep_from(&mut self, offset: Option<i64>) {
        self.keep_from = offset;
        self.trim();
        // give back what a burst of waiting records took
        if self.entries.capacity() > 64 && self.entries.capacity() > 4 * self.entries.len() {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    #[inline]
    fn trim(&mut self) {
        let Some(from) = self.keep_from else { return };
        // the second entry is still before `from`: the first is not needed
        while self.entries.len() > 1 && self.entries[1].0 < from {
            self.entries.pop_front();
        }
    }

    /// The first entry at or after `offset`.
    fn first_at_or_after(&self, offset: i64) -> usize {
        self.entries.partition_point(|&(o, _)| o < offset)
    }

    /// The event time of the first valid record at or after `offset`.
    pub(crate) fn at_or_after(&self, offset: i64) -> Lookup {
        match (self.entries.front(), self.entries.back()) {
            (Some(_), Some(&(last, _))) if offset > last => Lookup::Beyond,
            (Some(&(first, _)), _) if offset < first => Lookup::Older,
            (Some(_), _) => Lookup::Found(self.entries[self.first_at_or_after(offset)].1),
            _ => Lookup::Beyond,
        }
    }

    /// The event time of the last valid record before `offset` (the last one processed
    /// by a consumer whose committed offset this is), if indexed.
    pub(crate) fn before(&self, offset: i64) -> Option<Millis> {
        let i = self.first_at_or_after(offset);
        (i > 0).then(|| self.entries[i - 1].1)
    }

    /// Entries held (for the memory figures).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
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

    #[test]
    fn the_index_forgets_what_every_consumer_has_processed_but_the_last_record() {
        let mut ix = OffsetIndex::new();
        for o in 0..100 {
            ix.push(o, 1000 * o);
        }
        assert_eq!(ix.len(), 100, "no committed offset known yet: everything is kept");
        // the slowest consumer committed 60: it processed 59, and waits for 60 on
        ix.keep_from(Some(60));
        assert_eq!(ix.len(), 41);
        assert_eq!(ix.before(60), Some(59_000), "the watermark of the slowest consumer");
        assert_eq!(ix.at_or_after(60), Lookup::Found(60_000));
        assert_eq!(ix.at_or_after(58), Lookup::Older, "behind the slowest consumer: not known");
        // caught up: one entry stays, and records read later are trimmed as they come
        ix.keep_from(Some(100));
        assert_eq!((ix.len(), ix.before(100), ix.at_or_after(100)), (1, Some(99_000), Lookup::Beyond));
        ix.push(100, 100_000);
        ix.push(101, 101_000);
        assert_eq!(ix.len(), 3, "100 and 101 wait for the consumer");
        ix.keep_from(Some(102));
        assert_eq!(ix.len(), 1);
        ix.push(102, 102_000);
        ix.push(103, 103_000);
        ix.keep_from(Some(104));
        assert_eq!((ix.len(), ix.before(104)), (1, Some(103_000)));
        // a gap of invalid records: the last valid one before the offset stays
        ix.push(110, 110_000);
        ix.keep_from(Some(120));
        assert_eq!((ix.len(), ix.before(120)), (1, Some(110_000)));
    }
}
