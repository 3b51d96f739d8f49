//! Downstream consumers: the jobs that read the streams (e.g. `analytics`), watched
//! through their group's committed offsets, never joined. pipewatch reads every record
//! of the stream itself, so it knows the event time at each offset: a consumer's lag in
//! seconds is exact (now − event time of the oldest record it has not processed), not
//! interpolated from offset history.
//!
//! [`OffsetIndex`] keeps, per partition of a watched stream, the offsets and event times
//! of the last [`OFFSET_INDEX_LEN`] valid records read: a fixed ring, so recording one is
//! two stores. The consumer state and its snapshot live in [`crate::monitor`].

use serde::Serialize;

use crate::diagnosis::ConsumerCause;
use crate::time::Millis;

/// Valid records per partition whose offset and event time are kept: 16 bytes each, so
/// 8 KiB per partition of a stream a consumer reads.
pub const OFFSET_INDEX_LEN: usize = 512;

/// One `[[consumer]]` as configured.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub name: String,
    pub group: String,
    /// Indexes into the stream list.
    pub streams: Vec<usize>,
    /// Lag seconds above this: `consumer_lagging`.
    pub max_lag_ms: Millis,
    /// Committed offsets still for longer while records wait: `consumer_stopped`.
    pub max_stall_ms: Millis,
}

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

/// A consumer as `/api/v1/status` and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSnapshot {
    pub name: String,
    pub group: String,
    pub cause: ConsumerCause,
    /// Why the group's offsets could not be read, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds since the committed offsets last moved while records waited (0 while
    /// nothing waits).
    pub stalled_seconds: f64,
    pub streams: Vec<ConsumerStreamSnapshot>,
    pub pairs: Vec<ConsumerPairSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStreamSnapshot {
    pub stream: String,
    pub topic: String,
    /// The consumer's watermark: min of its partition watermarks over the stream's active
    /// partitions (max of all when every partition is idle); absent before it is known.
    pub watermark_ms: Option<Millis>,
    /// The largest lag in seconds over the partitions (absent while none is known).
    pub max_lag_seconds: Option<f64>,
    pub lag_records: i64,
    pub partitions: Vec<ConsumerPartitionSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerPartitionSnapshot {
    pub partition: i32,
    /// The next offset the group will read, as it committed it; absent: none committed.
    pub committed_offset: Option<i64>,
    /// Log end − committed offset, never negative.
    pub lag_records: Option<i64>,
    /// now − event time of the record at the committed offset; 0 when nothing waits.
    pub lag_seconds: Option<f64>,
    /// Event time of the last record the group processed.
    pub watermark_ms: Option<Millis>,
    /// The committed offset is below the log start: records were deleted before the group
    /// read them (data loss).
    pub expired: bool,
    /// How many: log start − committed offset (absent when not expired, or not known).
    pub expired_records: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerPairSnapshot {
    pub pair: String,
    pub leader: String,
    pub follower: String,
    /// The consumer's leader watermark − its follower watermark: what the job sees.
    pub sync_lag_seconds: Option<f64>,
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
