//! Segments: low-cardinality fields read from each record (`channel`, `event`), so that
//! one collection path that stops is seen while the stream as a whole flows. Per value:
//! records and the arrival of the last one; a value that used to flow and has been
//! silent for the stream's `max_silence` is `segment_silent`.
//!
//! Bounded: at most `max_values` distinct values per segment (later ones count as
//! [`OTHER`], and as overflow), each at most [`MAX_VALUE_BYTES`] long. Values are kept
//! as written in the record (interned on first sight): the per-record path allocates
//! only for a value never seen before, and at most `max_values` times per segment.

use rustc_hash::FxHashMap;

use serde::Serialize;

use crate::json::{JsonPointer, Lookup};
use crate::time::Millis;

/// Where the values beyond the cap (or too long) are counted.
pub const OTHER: &str = "other";
/// Where records without the field (or with a value that is not a string or number) go.
pub const NONE: &str = "none";
/// Longer values count as [`OTHER`].
pub const MAX_VALUE_BYTES: usize = 64;
/// The default cap on distinct values per segment.
pub const DEFAULT_MAX_VALUES: usize = 50;
/// A value used to flow when its records came at least this many per `max_silence`
/// on average: a silence of `max_silence` is then unusual (under 1 % for Poisson arrivals).
pub const FLOWING_RECORDS_PER_SILENCE: f64 = 5.0;
/// A value silent this long is retired: no longer judged (a campaign that ended, a
/// channel removed), its silence series goes; it counts again if it comes back.
pub const RETIRE_AFTER_MS: Millis = 24 * 3_600_000;

/// The name of the segment that reads a stream's `snapshot_field` (Debezium's
/// `source.snapshot`): kept out of the segments shown and judged, it says whether a
/// record is a snapshot's copy of an existing row ([`snapshot_phase`]). A dot, which a
/// configured segment name cannot hold: no collision.
pub const SNAPSHOT_SEGMENT: &str = "source.snapshot";

/// Whether a `snapshot_field` value marks its record as a snapshot's copy of an existing
/// row, its event time old by design (Debezium: `true`, `first`,
/// `first_in_data_collection`, `incremental`, `last`, `last_in_data_collection`), not a
/// change as it happened (`false`, absent).
pub fn is_snapshot(value: &str) -> bool {
    matches!(value, "true" | "first" | "first_in_data_collection" | "incremental" | "last" | "last_in_data_collection")
}

/// One segment as configured.
#[derive(Debug, Clone)]
pub struct SegmentSpec {
    pub name: String,
    pub pointer: JsonPointer,
}

#[derive(Debug, Clone)]
struct Value {
    text: Box<str>,
    records: u64,
    /// Records read in real time (the partition caught up), between these arrivals: a
    /// replayed backlog arrives all at once and says nothing of how the value flows.
    live: u64,
    first_seen: Millis,
    last_seen: Millis,
}

impl Value {
    /// Its records came often enough that `max_silence` without one is unusual.
    fn used_to_flow(&self, max_silence: Millis) -> bool {
        let life = (self.last_seen - self.first_seen).max(1) as f64;
        self.live >= 2 && (self.live - 1) as f64 / life * max_silence as f64 >= FLOWING_RECORDS_PER_SILENCE
    }
}

/// One segment's values of a stream.
#[derive(Debug, Clone)]
pub(crate) struct SegmentState {
    spec: SegmentSpec,
    max_values: usize,
    values: Vec<Value>,
    /// Raw value bytes → index in `values` (Fx: values are short, and not an attacker's
    /// choice to collide: the cap bounds the map whatever they are).
    index: FxHashMap<Box<[u8]>, usize>,
    /// Records counted as [`OTHER`] because the cap was reached (or the value too long).
    overflow: u64,
    /// The value of the last record (none: not JSON).
    last: Option<usize>,
}

impl SegmentState {
    pub(crate) fn new(spec: SegmentSpec, max_values: usize) -> Self {
        Self {
            spec,
            max_values: max_values.max(1),
            values: Vec::new(),
            index: FxHashMap::default(),
            overflow: 0,
            last: None,
        }
    }

    fn intern(&mut self, raw: &[u8], now: Millis) -> usize {
        let v =
            Value { text: String::from_utf8_lossy(raw).into(), records: 0, live: 0, first_seen: now, last_seen: now };
        self.values.push(v);
        self.index.insert(raw.into(), self.values.len() - 1);
        self.values.len() - 1
    }

    /// One record's value, as its field's lookup found it (not JSON: not counted);
    /// `live`: read in real time.
    #[inline]
    pub(crate) fn record(&mut self, found: Lookup<'_>, live: bool, now: Millis) {
        let raw: &[u8] = match found {
            Lookup::String { raw, .. } | Lookup::Number(raw) => raw,
            Lookup::Missing | Lookup::Other => NONE.as_bytes(),
            Lookup::NotJson => {
                self.last = None;
                return;
            }
        };
        let i = match self.index.get(raw) {
            Some(&i) => i,
            None if raw.len() <= MAX_VALUE_BYTES && self.values.len() < self.max_values => self.intern(raw, now),
            None => {
                self.overflow += 1;
                match self.index.get(OTHER.as_bytes()) {
                    Some(&i) => i,
                    // the cap leaves room for `other` beyond it
                    None => self.intern(OTHER.as_bytes(), now),
                }
            }
        };
        self.last = Some(i);
        let v = &mut self.values[i];
        v.records += 1;
        if live {
            if v.live == 0 {
                v.first_seen = now;
            }
            v.live += 1;
            v.last_seen = now;
        }
    }

    /// Forgets the last value (a record whose fields are not read: an empty payload).
    pub(crate) fn forget_last(&mut self) {
        self.last = None;
    }

    /// The index of the value the last record had (see [`Self::value_text`]).
    pub(crate) fn last_index(&self) -> Option<usize> {
        self.last
    }

    /// Every value read so far as written, in the order of their indexes.
    pub(crate) fn value_texts(&self) -> Vec<String> {
        self.values.iter().map(|v| v.text.to_string()).collect()
    }

    /// The value the last record had, as written.
    pub(crate) fn last_value(&self) -> Option<&str> {
        self.last.map(|i| &*self.values[i].text)
    }

    pub(crate) fn snapshot(&self, max_silence: Millis, now: Millis) -> SegmentSnapshot {
        let values = self
            .values
            .iter()
            .map(|v| {
                let silence = now - v.last_seen;
                let retired = v.live == 0 || silence > RETIRE_AFTER_MS;
                let judged = !retired && v.used_to_flow(max_silence);
                SegmentValueSnapshot {
                    value: v.text.to_string(),
                    records: v.records,
                    silence_seconds: (!retired).then(|| silence.max(0) as f64 / 1000.0),
                    judged,
                    silent: judged && silence > max_silence,
                }
            })
            .collect();
        SegmentSnapshot { name: self.spec.name.clone(), values, overflow: self.overflow }
    }
}

/// One segment of a stream at a tick.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSnapshot {
    pub name: String,
    pub values: Vec<SegmentValueSnapshot>,
    /// Records counted as `other` because the segment had its cap of distinct values.
    pub overflow: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentValueSnapshot {
    pub value: String,
    pub records: u64,
    /// Time since its last record read in real time; absent before the first and once
    /// retired (silent for a day).
    pub silence_seconds: Option<f64>,
    /// It used to flow: its silence is judged.
    pub judged: bool,
    /// Judged and silent for longer than the stream's `max_silence`.
    pub silent: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SegmentState {
        fn record_doc(&mut self, doc: &[u8], live: bool, now: Millis) {
            let found = self.spec.pointer.lookup(doc);
            self.record(found, live, now);
        }
    }

    fn state(max: usize) -> SegmentState {
        SegmentState::new(SegmentSpec { name: "channel".into(), pointer: JsonPointer::parse("/channel").unwrap() }, max)
    }

    #[test]
    fn values_are_counted_capped_and_judged_once_they_flowed() {
        let mut s = state(3);
        for i in 0..100 {
            for v in ["web", "app"] {
                s.record_doc(format!(r#"{{"channel":"{v}","ts":1}}"#).as_bytes(), true, i * 1000);
            }
        }
        s.record_doc(br#"{"ts":1}"#, true, 100_000);
        s.record_doc(br#"{"channel":"email"}"#, true, 100_000);
        s.record_doc(br#"{"channel":"sms"}"#, true, 100_000);
        s.record_doc(b"not json", true, 100_000);
        let snap = s.snapshot(120_000, 100_000);
        let names: Vec<&str> = snap.values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(names, ["web", "app", NONE, OTHER]);
        assert_eq!(snap.overflow, 2);
        assert!(snap.values[0].judged && !snap.values[2].judged, "one record does not make a flow");
        // web stops; app goes on
        for i in 100..300 {
            s.record_doc(br#"{"channel":"app"}"#, true, i * 1000);
        }
        let snap = s.snapshot(120_000, 300_000);
        assert!(snap.values[0].silent && !snap.values[1].silent);
        assert_eq!(snap.values[0].silence_seconds, Some(201.0));
        // a day later web is retired: no longer judged
        let snap = s.snapshot(120_000, 300_000 + RETIRE_AFTER_MS);
        assert!(!snap.values[0].judged && snap.values[0].silence_seconds.is_none());
    }

    #[test]
    fn a_replayed_backlog_counts_but_is_not_a_flow() {
        let mut s = state(50);
        for _ in 0..1000 {
            s.record_doc(br#"{"channel":"web"}"#, false, 5_000);
        }
        let snap = s.snapshot(120_000, 500_000);
        assert_eq!(snap.values[0].records, 1000);
        assert!(!snap.values[0].judged && snap.values[0].silence_seconds.is_none());
    }

    #[test]
    fn a_rare_value_is_not_judged_and_long_values_are_other() {
        let mut s = state(50);
        // one record every 10 minutes: silence of 2 minutes is normal for it
        for i in 0..20 {
            s.record_doc(br#"{"channel":"fax"}"#, true, i * 600_000);
        }
        let long = format!(r#"{{"channel":"{}"}}"#, "x".repeat(MAX_VALUE_BYTES + 1));
        s.record_doc(long.as_bytes(), true, 0);
        let snap = s.snapshot(120_000, 20 * 600_000);
        assert!(!snap.values[0].judged);
        assert_eq!((snap.values[1].value.as_str(), snap.overflow), (OTHER, 1));
    }

    #[test]
    fn ten_thousand_distinct_values_stay_within_the_cap() {
        let mut s = state(DEFAULT_MAX_VALUES);
        for i in 0..10_000 {
            s.record_doc(format!(r#"{{"channel":"c{i}"}}"#).as_bytes(), true, i);
        }
        assert_eq!(s.values.len(), DEFAULT_MAX_VALUES + 1);
        assert_eq!(s.index.len(), DEFAULT_MAX_VALUES + 1);
        let snap = s.snapshot(120_000, 10_000);
        assert_eq!(snap.overflow, 10_000 - DEFAULT_MAX_VALUES as u64);
        assert_eq!(snap.values.last().map(|v| (v.value.as_str(), v.records)), Some((OTHER, snap.overflow)));
    }
}
