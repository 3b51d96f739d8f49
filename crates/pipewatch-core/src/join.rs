//! Join completeness of a pair: the share of leader records (orders) whose key (the user)
//! the follower (behaviour) carried around the same event time — told apart from late.
//!
//! A leader record at event time `t` is *matched* when the follower carried its key with
//! an event time in `[t − before, t + after]`, *missing* when it did not, and judged only
//! once the follower's watermark has passed `t + after + grace`: until then it is
//! *pending* (a follower 8 h behind is sync lag and pending, never missing). A record
//! that cannot be judged fairly — the follower's keys of its window were not read
//! (before pipewatch read the follower, or dropped by the `max_keys` cap), or the
//! `max_pending` cap is reached — is *unjudged*, counted, never missing.
//!
//! The follower's keys are kept as 64-bit hashes (XXH3 of the key as written: a string's
//! bytes, a number's text, so `"42"` and `42` are one key; the same on every replica and
//! build) in slices of [`SLICE_MS`] of event time, each a set; a window is widened to
//! whole slices (a key up to a slice outside it may match). Exact: two keys share a hash
//! with a chance of n / 2⁶⁴. Slices are dropped once no leader record can need them
//! (older than the oldest pending record and the leader's watermark, less `before`).
//! `sample = N` judges the keys whose hash is a multiple of N on both sides: memory / N,
//! the same keys on every replica.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::extract::Extractor;
use crate::json::{JsonPointer, Lookup, PointerSet};
use crate::time::Millis;
use crate::watermark::LowWatermark;

/// The follower's keys are kept per this much event time.
pub const SLICE_MS: Millis = 60_000;
/// Segments that label a join's outcomes at most.
pub const MAX_JOIN_SEGMENTS: usize = 4;
/// Join keys a stream reads at most (one per join it is a side of, the same pointer once).
pub const MAX_JOIN_KEYS: usize = 4;
/// Defaults of the caps, per pair: two million keys are 20–40 MB (a window of 35 minutes
/// holds one key per user and minute: 2 million is some 57 000 active users a minute).
pub const DEFAULT_MAX_KEYS: usize = 2_000_000;
pub const DEFAULT_MAX_PENDING: usize = 1_000_000;
/// The completeness ratio's window by default.
pub const DEFAULT_WINDOW_MS: Millis = 15 * 60_000;
/// `join_incomplete` by default: under half matched, of 20 judged at least.
pub const DEFAULT_INCOMPLETE_BELOW: f64 = 0.5;
pub const DEFAULT_MIN_JUDGED: u64 = 20;

/// Where a process reads a join's follower keys from, when pipewatch runs as replicas
/// that share the partitions of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinPartitions {
    /// Every partition of the follower's topics, read for the join by a consumer of its
    /// own (assigned, never joined or committed): always right, at the cost of reading
    /// the follower once more on every replica.
    All,
    /// The follower partitions the group assigned the process: right when both topics
    /// are co-partitioned (the same key, partition count and partitioner); the group
    /// assigns with the range assignor, which gives partition i of both to one member.
    CoPartitioned,
}

impl JoinPartitions {
    pub const NAMES: &'static [&'static str] = &["all", "co_partitioned"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "all" => Some(Self::All),
            "co_partitioned" => Some(Self::CoPartitioned),
            _ => None,
        }
    }
}

/// A pair's `join`, as configured.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub leader_key: JsonPointer,
    pub follower_key: JsonPointer,
    pub before_ms: Millis,
    pub after_ms: Millis,
    pub grace_ms: Millis,
    /// The leader's segments that label the outcomes: their indexes in its stream's
    /// segments, their names.
    pub segments: Vec<(usize, String)>,
    pub sample: u64,
    pub max_keys: usize,
    pub max_pending: usize,
    /// The completeness ratio is over the records judged within this.
    pub window_ms: Millis,
    pub partitions: JoinPartitions,
    /// The pair is `join_incomplete` while a value (or all the leader's records) judged
    /// at least `min_judged` times over the window has a completeness under this.
    pub incomplete_below: f64,
    pub min_judged: u64,
}

/// The hash of a key as a lookup found it: `None` without one (missing, `null`, an
/// object or array, not JSON).
#[inline]
pub fn key_hash(found: Lookup<'_>) -> Option<u64> {
    match found {
        Lookup::String { raw, .. } | Lookup::Number(raw) => Some(xxhash_rust::xxh3::xxh3_64(raw)),
        _ => None,
    }
}

/// The hash of an integer key (Avro `int`/`long`, a Protobuf integer): that of its
/// decimal text, as JSON writes it, so `42` is one key whatever the format. No allocation.
#[inline]
pub fn int_key_hash(v: i128) -> u64 {
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    xxhash_rust::xxh3::xxh3_64(&buf[at..])
}

/// A key as a schema-registry value carries it: text (a string, an enum's symbol) or an
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValue<'a> {
    Text(&'a [u8]),
    Int(i128),
}

impl KeyValue<'_> {
    #[inline]
    pub fn hash(self) -> u64 {
        match self {
            Self::Text(raw) => xxhash_rust::xxh3::xxh3_64(raw),
            Self::Int(v) => int_key_hash(v),
        }
    }
}

/// The keys are hashes already: the set uses them as they are.
#[derive(Debug, Default, Clone, Copy)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u64s are hashed here; any other input still spreads
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeySet = HashSet<u64, BuildHasherDefault<AsIs>>;

/// A leader record waiting for the follower's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    t: Millis,
    key: u64,
    /// Its value of each of the join's segments (an index into the leader's values),
    /// `u16::MAX` where it had none.
    values: [u16; MAX_JOIN_SEGMENTS],
}

/// Follower keys inserted into their slices together (`JoinState::arrived`).
const KEY_RUN: usize = 256;
/// Pending records are kept per this much event time.
const PENDING_BUCKET_MS: Millis = 1000;

/// The leader's pending records by second of event time: a record is appended to its
/// second's list (the last one, mostly: a cheap push), and judged in whole lists once the
/// follower's watermark has passed their second; only the second the watermark is in is
/// gone through record by record. (A heap ordered by event time cost a pop of
/// `log2 n` cache misses per record.)
#[derive(Debug, Clone, Default)]
struct PendingRecords {
    by_second: BTreeMap<i64, Second>,
    len: usize,
    /// Lists judged, emptied, kept for the next seconds (no fresh memory, no page faults
    /// for every second of a catch-up).
    spare: Vec<Vec<Pending>>,
}

/// One second's pending records, and the oldest event time among them.
#[derive(Debug, Clone)]
struct Second {
    oldest: Millis,
    records: Vec<Pending>,
}

/// Emptied lists of pending records kept at most.
const SPARE_LISTS: usize = 2;

impl PendingRecords {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn push(&mut self, p: Pending) {
        let second = p.t.div_euclid(PENDING_BUCKET_MS);
        self.len += 1;
        if let Some(mut last) = self.by_second.last_entry() {
            if *last.key() == second {
                let last = last.get_mut();
                last.oldest = last.oldest.min(p.t);
                last.records.push(p);
                return;
            }
        }
        let spare = &mut self.spare;
        let s = self
            .by_second
            .entry(second)
            .or_insert_with(|| Second { oldest: p.t, records: spare.pop().unwrap_or_default() });
        s.oldest = s.oldest.min(p.t);
        s.records.push(p);
    }

    /// The oldest record's event time.
    fn oldest(&self) -> Option<Millis> {
        Some(self.by_second.first_key_value()?.1.oldest)
    }

    /// An emptied list, for a second to come.
    fn keep_spare(&mut self, records: Vec<Pending>) {
        if self.spare.len() < SPARE_LISTS {
            self.spare.push(records);
        }
    }

    /// Takes out, in no particular order, every record at `limit` or before.
    fn take_until(&mut self, limit: Millis, mut judge: impl FnMut(Pending)) {
        while let Some(mut first) = self.by_second.first_entry() {
            let second = *first.key();
            if (second + 1) * PENDING_BUCKET_MS - 1 <= limit {
                let mut records = first.remove().records;
                self.len -= records.len();
                records.drain(..).for_each(&mut judge);
                self.keep_spare(records);
                continue;
            }
            let s = first.get_mut();
            if s.oldest <= limit {
                let before = s.records.len();
                let mut oldest = Millis::MAX;
                s.records.retain(|p| {
                    let due = p.t <= limit;
                    if due {
                        judge(*p);
                    } else {
                        oldest = oldest.min(p.t);
                    }
                    !due
                });
                s.oldest = oldest;
                self.len -= before - s.records.len();
                if s.records.is_empty() {
                    let records = first.remove().records;
                    self.keep_spare(records);
                }
            }
            break;
        }
    }
}

/// What became of judged records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub matched: u64,
    pub missing: u64,
    pub unjudged: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Matched,
    Missing,
    Unjudged,
}

impl Outcomes {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Matched => self.matched += 1,
            Outcome::Missing => self.missing += 1,
            Outcome::Unjudged => self.unjudged += 1,
        }
    }

    fn ratio(&self) -> Option<f64> {
        let judged = self.matched + self.missing;
        (judged > 0).then(|| self.matched as f64 / judged as f64)
    }
}

/// Outcomes per segment value: `[segment][value]`, growing as values appear.
#[derive(Debug, Clone, Default)]
struct ByValue {
    all: Outcomes,
    values: Vec<Vec<Outcomes>>,
}

impl ByValue {
    fn add(&mut self, values: &[u16; MAX_JOIN_SEGMENTS], segments: usize, o: Outcome) {
        self.all.add(o);
        self.values.resize_with(segments, Vec::new);
        for (per, &v) in self.values.iter_mut().zip(values) {
            if v != u16::MAX {
                let v = usize::from(v);
                if per.len() <= v {
                    per.resize(v + 1, Outcomes::default());
                }
                per[v].add(o);
            }
        }
    }
}

/// One pair's join: the follower's keys and the leader's pending records.
#[derive(Debug, Clone)]
pub(crate) struct JoinState {
    pub(crate) spec: JoinSpec,
    /// The follower's keys, one set per slice of event time; `slices[0]` is slice `first`.
    slices: VecDeque<KeySet>,
    first: i64,
    keys: usize,
    /// The follower's first event time read on each of its partitions (by slot): its keys
    /// are complete from the latest of them on.
    follower_from: Vec<Option<Millis>>,
    /// The end of the last slice dropped (no longer needed, or by the cap).
    dropped_to: Option<Millis>,
    /// Follower keys not kept: the `max_keys` cap with one slice left.
    keys_dropped: u64,
    /// Follower keys read, not in their slices yet: they go in in runs of `KEY_RUN`, and
    /// before every judgment. One at a time, between records, each insert into a large set
    /// waits for its cache miss; in a run, the processor overlaps them.
    arrived: Vec<(u64, Millis)>,
    /// The last slice dropped, emptied: the next new slice's memory.
    spare_slice: Option<KeySet>,
    pending: PendingRecords,
    totals: ByValue,
    /// The outcomes judged per minute (of judgment time) over the window: `(minute, …)`.
    recent: VecDeque<(i64, ByValue)>,
    /// `partitions = "all"`: the follower's partitions as the join's own consumer read
    /// them (by its slot), whose low watermark judges the leader's records.
    copy: Vec<CopiedPartition>,
    /// `partitions = "co_partitioned"`: whether the process's partitions were at the last
    /// tick (`None`: not known yet); while they are not, judged records are unjudged.
    pub(crate) co_partitioned: Option<bool>,
}

/// A follower partition read by the join's own consumer.
#[derive(Debug, Clone, Copy, Default)]
struct CopiedPartition {
    watermark: Option<Millis>,
    last_record: Option<Millis>,
}

/// A follower record as the join's own consumer read it (`partitions = "all"`): the
/// slot it gives the partition, the event time, the key's hash (`None`: no key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerRecord {
    pub slot: u32,
    pub t: Millis,
    pub key: Option<u64>,
}

/// A follower record in a schema-registry format as the join's own consumer read it
/// (`partitions = "all"`): decoded on the consumer thread, which has the schemas
/// (`Monitor::follower_payloads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerPayload {
    pub slot: u32,
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<Millis>,
    pub arrival: Millis,
}

/// How the join's own consumer reads a follower record (`partitions = "all"`): the event
/// time and the key in one pass, as the follower's stream reads them; or, in a
/// schema-registry format (`encoded`), not at all: its payload goes to the consumer
/// thread as it is.
#[derive(Debug, Clone)]
pub struct FollowerReader {
    /// The pair's index (its join's).
    pub join: usize,
    /// The follower's topics.
    pub topics: Vec<String>,
    /// The follower is in a schema-registry format.
    pub encoded: bool,
    fields: PointerSet,
    extractor: Extractor,
}

impl FollowerReader {
    pub(crate) fn new(
        join: usize,
        topics: Vec<String>,
        extractor: Extractor,
        key: &JsonPointer,
        encoded: bool,
    ) -> Self {
        let fields = PointerSet::new(extractor.pointer().into_iter().chain([key]).cloned().collect());
        Self { join, topics, encoded, fields, extractor }
    }

    /// The record's event time and key; `None` without a valid event time (the follower's
    /// stream counts it invalid).
    #[inline]
    pub fn read(
        &self,
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        arrival: Millis,
    ) -> Option<(Millis, Option<u64>)> {
        let mut found = [Lookup::Missing; 2];
        if let Some(doc) = payload.filter(|d| !d.is_empty()) {
            self.fields.lookup_all(doc, &mut found);
        }
        let (time, key) = if self.extractor.pointer().is_some() {
            (self.extractor.from_lookup(found[0], arrival), found[1])
        } else {
            (self.extractor.extract(payload, kafka_timestamp, arrival), found[0])
        };
        Some((time.ok()?, key_hash(key)))
    }
}

impl JoinState {
    pub(crate) fn new(spec: JoinSpec) -> Self {
        JoinState {
            spec,
            slices: VecDeque::new(),
            first: 0,
            keys: 0,
            follower_from: Vec::new(),
            dropped_to: None,
            keys_dropped: 0,
            arrived: Vec::new(),
            spare_slice: None,
            pending: PendingRecords::default(),
            totals: ByValue::default(),
            recent: VecDeque::new(),
            copy: Vec::new(),
            co_partitioned: None,
        }
    }

    /// Follower records the join's own consumer read (`partitions = "all"`), at `at`.
    pub(crate) fn copied(&mut self, records: &[FollowerRecord], at: Millis) {
        for r in records {
            let slot = r.slot as usize;
            if self.copy.len() <= slot {
                self.copy.resize(slot + 1, CopiedPartition::default());
            }
            let p = &mut self.copy[slot];
            p.watermark = Some(p.watermark.map_or(r.t, |w| w.max(r.t)));
            p.last_record = Some(at);
            match r.key {
                Some(key) => self.follower(slot, key, r.t),
                // no key, but its keys are read from here on
                None => self.read_from(slot, r.t),
            }
        }
    }

    /// A follower record at `t` read from partition slot `slot`: the partition's keys are
    /// known from its first.
    #[inline]
    fn read_from(&mut self, slot: usize, t: Millis) {
        if self.follower_from.get(slot).is_none_or(Option::is_none) {
            if self.follower_from.len() <= slot {
                self.follower_from.resize(slot + 1, None);
            }
            self.follower_from[slot] = Some(t);
        }
    }

    /// `partitions = "all"`: the low watermark of the follower's partitions as the join's
    /// own consumer read them (idle after `idle_ms` without a record); `None` otherwise.
    pub(crate) fn copied_watermark(&self, now: Millis, idle_ms: Millis) -> Option<Millis> {
        let mut w = LowWatermark::default();
        for p in &self.copy {
            w.add(p.watermark, p.last_record.is_some_and(|t| now - t <= idle_ms));
        }
        w.get()
    }

    fn sampled(&self, key: u64) -> bool {
        self.spec.sample <= 1 || key.is_multiple_of(self.spec.sample)
    }

    /// A follower record's key at event time `t`, read from partition slot `slot`.
    #[inline]
    pub(crate) fn follower(&mut self, slot: usize, key: u64, t: Millis) {
        self.read_from(slot, t);
        if !self.sampled(key) {
            return;
        }
        self.arrived.push((key, t));
        if self.arrived.len() >= KEY_RUN {
            self.insert_arrived();
        }
    }

    /// The follower keys read since the last run, into their slices.
    fn insert_arrived(&mut self) {
        let mut arrived = std::mem::take(&mut self.arrived);
        for (key, t) in arrived.drain(..) {
            self.insert(key, t);
        }
        self.arrived = arrived;
    }

    #[inline]
    fn insert(&mut self, key: u64, t: Millis) {
        let i = t.div_euclid(SLICE_MS);
        if self.slices.is_empty() {
            self.first = i;
        }
        if i < self.first {
            // older than any leader record still needs (or than the first read): a
            // record judged on it is unjudged already
            return;
        }
        while self.keys >= self.spec.max_keys && self.slices.len() > 1 && self.first < i {
            self.drop_front();
        }
        if self.keys >= self.spec.max_keys {
            self.keys_dropped += 1;
            self.dropped_to = Some(self.dropped_to.unwrap_or(Millis::MIN).max((i + 1) * SLICE_MS));
            return;
        }
        let at = (i - self.first) as usize;
        if at >= self.slices.len() {
            // the last slice dropped, or sized as the last one (a minute's keys are like
            // the one's before); any minutes skipped, empty
            let like = self.slices.back().map_or(0, KeySet::len);
            let new =
                self.spare_slice.take().unwrap_or_else(|| KeySet::with_capacity_and_hasher(like, Default::default()));
            self.slices.resize_with(at, KeySet::default);
            self.slices.push_back(new);
        }
        if self.slices[at].insert(key) {
            self.keys += 1;
        }
    }

    fn drop_front(&mut self) {
        if let Some(mut s) = self.slices.pop_front() {
            self.keys -= s.len();
            s.clear();
            self.spare_slice = Some(s);
            self.first += 1;
            self.dropped_to = Some(self.dropped_to.unwrap_or(Millis::MIN).max(self.first * SLICE_MS));
        }
    }

    /// A leader record's key at event time `t`, its segments' values.
    #[inline]
    pub(crate) fn leader(&mut self, key: u64, t: Millis, values: [u16; MAX_JOIN_SEGMENTS], now: Millis) {
        if !self.sampled(key) {
            return;
        }
        if self.pending.len() >= self.spec.max_pending {
            self.count(&values, Outcome::Unjudged, now);
            return;
        }
        self.pending.push(Pending { t, key, values });
    }

    fn count(&mut self, values: &[u16; MAX_JOIN_SEGMENTS], o: Outcome, now: Millis) {
        let n = self.spec.segments.len();
        self.totals.add(values, n, o);
        let minute = now.div_euclid(60_000);
        if self.recent.back().is_none_or(|(m, _)| *m != minute) {
            self.recent.push_back((minute, ByValue::default()));
        }
        if let Some((_, b)) = self.recent.back_mut() {
            b.add(values, n, o);
        }
    }

    /// From when on the follower's keys are all known: the latest first record read on
    /// any of its partitions, and the end of the last slice dropped (none: no record yet).
    fn known_from(&self) -> Option<Millis> {
        let read_from = *self.follower_from.iter().flatten().max()?;
        Some(self.dropped_to.map_or(read_from, |d| d.max(read_from)))
    }

    /// Whether the follower carried `key` within `[lo, hi]` (widened to whole slices):
    /// `None` when its keys of that window are not all known (`known_from`).
    /// The slices are looked in from the record's own (`at`) back to `lo`'s, then on to
    /// `hi`'s: a match is most often near the order, and a window of 35 minutes is 36
    /// slices.
    fn found(&self, key: u64, at: Millis, lo: Millis, hi: Millis, known_from: Option<Millis>) -> Option<bool> {
        if known_from.is_none_or(|from| lo < from) {
            return None;
        }
        let slice = |t: Millis| t.div_euclid(SLICE_MS) - self.first;
        let (a, at, b) = (slice(lo).max(0), slice(at), slice(hi));
        let holds = |i: i64| {
            usize::try_from(i).ok().and_then(|i| self.slices.get(i)).is_some_and(|s| !s.is_empty() && s.contains(&key))
        };
        Some((a..=at).rev().any(holds) || (at + 1..=b).any(holds))
    }

    /// At a tick: judges the pending records the follower's watermark has passed, drops
    /// the slices no leader record can need, and forgets the outcomes older than the
    /// window.
    pub(crate) fn tick(&mut self, leader_watermark: Option<Millis>, follower_watermark: Option<Millis>, now: Millis) {
        self.insert_arrived();
        let (before, after, grace) = (self.spec.before_ms, self.spec.after_ms, self.spec.grace_ms);
        if let Some(fw) = follower_watermark {
            // the same for every record judged now (slices drop after); not
            // co-partitioned: the keys of the leader's partitions are elsewhere
            let known_from = if self.co_partitioned == Some(false) { None } else { self.known_from() };
            let mut pending = std::mem::take(&mut self.pending);
            pending.take_until(fw - after - grace, |p| {
                let o = match self.found(p.key, p.t, p.t - before, p.t + after, known_from) {
                    Some(true) => Outcome::Matched,
                    Some(false) => Outcome::Missing,
                    None => Outcome::Unjudged,
                };
                self.count(&p.values, o, now);
            });
            self.pending = pending;
        }
        // a leader record not read yet comes at or after the leader's watermark, less
        // the grace it is given
        let oldest = self.pending.oldest();
        let need = match (oldest, leader_watermark) {
            (Some(o), Some(w)) => Some(o.min(w - grace)),
            (o, w) => o.or(w.map(|w| w - grace)),
        };
        if let Some(need) = need {
            while self.slices.len() > 1 && (self.first + 1) * SLICE_MS <= need - before {
                self.drop_front();
            }
        }
        let first_minute = now.div_euclid(60_000) - self.spec.window_ms.div_euclid(60_000).max(1) + 1;
        while self.recent.front().is_some_and(|(m, _)| *m < first_minute) {
            self.recent.pop_front();
        }
    }

    /// The join at a tick; `values(segment)` names a leader segment's values, in their
    /// order: each one read so far has its outcomes, none judged yet as well (zero).
    pub(crate) fn snapshot(&self, values_of: impl Fn(usize) -> Vec<String>, now: Millis) -> JoinSnapshot {
        let mut window = ByValue::default();
        for (_, b) in &self.recent {
            merge(&mut window.all, &b.all);
            window.values.resize_with(b.values.len().max(window.values.len()), Vec::new);
            for (w, per) in window.values.iter_mut().zip(&b.values) {
                if w.len() < per.len() {
                    w.resize(per.len(), Outcomes::default());
                }
                for (w, o) in w.iter_mut().zip(per) {
                    merge(w, o);
                }
            }
        }
        let mut values = Vec::new();
        for (j, (segment, name)) in self.spec.segments.iter().enumerate() {
            for (v, value) in values_of(*segment).into_iter().enumerate() {
                let total = self.totals.values.get(j).and_then(|t| t.get(v)).copied().unwrap_or_default();
                let recent = window.values.get(j).and_then(|w| w.get(v)).copied().unwrap_or_default();
                values.push(JoinValueSnapshot {
                    segment: name.clone(),
                    value,
                    total,
                    window: recent,
                    ratio: recent.ratio(),
                    usual: usual(&total, &recent),
                });
            }
        }
        let oldest = self.pending.oldest();
        let judged = |o: &Outcomes| o.matched + o.missing;
        let low = |o: &Outcomes| {
            let r = o.ratio()?;
            (judged(o) >= self.spec.min_judged.max(1) && r < self.spec.incomplete_below).then_some(r)
        };
        let all = low(&window.all).map(|ratio| Incomplete {
            segment: None,
            value: None,
            matched: window.all.matched,
            judged: judged(&window.all),
            ratio,
            usual: usual(&self.totals.all, &window.all),
        });
        let by_value = values.iter().filter_map(|v| {
            Some(Incomplete {
                ratio: low(&v.window)?,
                segment: Some(v.segment.clone()),
                value: Some(v.value.clone()),
                matched: v.window.matched,
                judged: judged(&v.window),
                usual: v.usual,
            })
        });
        let incomplete = by_value.chain(all).collect();
        JoinSnapshot {
            pending: self.pending.len(),
            pending_oldest_seconds: oldest.map(|t| (now - t).max(0) as f64 / 1000.0),
            follower_keys: self.keys,
            follower_keys_dropped: self.keys_dropped,
            sample: self.spec.sample,
            window_seconds: self.spec.window_ms as f64 / 1000.0,
            total: self.totals.all,
            window: window.all,
            ratio: window.all.ratio(),
            usual: usual(&self.totals.all, &window.all),
            values,
            partitions: self.spec.partitions,
            co_partitioned: self.co_partitioned,
            incomplete,
        }
    }
}

fn merge(into: &mut Outcomes, o: &Outcomes) {
    into.matched += o.matched;
    into.missing += o.missing;
    into.unjudged += o.unjudged;
}

/// The ratio of the records judged before the window: what is usual for the value.
fn usual(total: &Outcomes, window: &Outcomes) -> Option<f64> {
    let before =
        Outcomes { matched: total.matched - window.matched, missing: total.missing - window.missing, unjudged: 0 };
    before.ratio()
}

/// A pair's join at a tick.
#[derive(Debug, Clone, Serialize)]
pub struct JoinSnapshot {
    /// Leader records waiting for the follower's watermark to pass `t + after + grace`.
    pub pending: usize,
    /// Event-time age of the oldest of them.
    pub pending_oldest_seconds: Option<f64>,
    /// The follower's key hashes kept (over all slices).
    pub follower_keys: usize,
    /// Follower keys not kept because of `max_keys` (their leader records go unjudged).
    pub follower_keys_dropped: u64,
    pub sample: u64,
    pub window_seconds: f64,
    /// Outcomes since start, and over the window.
    pub total: Outcomes,
    pub window: Outcomes,
    /// matched / (matched + missing) over the window; none before a record is judged.
    pub ratio: Option<f64>,
    /// The same ratio over what was judged before the window.
    pub usual: Option<f64>,
    /// Per value of each segment that labels the outcomes.
    pub values: Vec<JoinValueSnapshot>,
    /// Where the follower keys come from (`all`: every partition, read by the join's own
    /// consumer; `co_partitioned`: the process's own).
    pub partitions: JoinPartitions,
    /// `co_partitioned`: whether the leader's and the follower's topics have the same
    /// partition count and the process the same partitions of both (`None`: not known
    /// yet, or `partitions = "all"`).
    pub co_partitioned: Option<bool>,
    /// The values (then all the leader's records) judged at least `min_judged` times over
    /// the window whose completeness is under `incomplete_below`: the pair is
    /// `join_incomplete` while there is one and both sides are `ok`.
    pub incomplete: Vec<Incomplete>,
}

/// A segment value (`None`: all the leader's records) with too few matched.
#[derive(Debug, Clone, Serialize)]
pub struct Incomplete {
    pub segment: Option<String>,
    pub value: Option<String>,
    pub matched: u64,
    pub judged: u64,
    pub ratio: f64,
    pub usual: Option<f64>,
}

impl Incomplete {
    /// "referral=social: 0 of 212 matched (usual 97 %)", "all: 40 of 100 matched".
    pub fn phrase(&self) -> String {
        let what = match (&self.segment, &self.value) {
            (Some(s), Some(v)) => format!("{s}={v}"),
            _ => "all".into(),
        };
        let usual = self.usual.map(|u| format!(" (usual {:.0} %)", u * 100.0)).unwrap_or_default();
        format!("{what}: {} of {} matched{usual}", self.matched, self.judged)
    }
}

impl JoinSnapshot {
    /// The lowest completeness over the window of all the leader's records and of each
    /// segment value judged at least `min_judged` times in it, and which value (`None`:
    /// all): what `join_completeness` compares with its threshold.
    pub fn lowest(&self, min_judged: u64) -> Option<(f64, Option<&JoinValueSnapshot>)> {
        let judged = |o: &Outcomes| o.matched + o.missing;
        let all = (judged(&self.window) >= min_judged.max(1)).then_some(self.ratio).flatten().map(|r| (r, None));
        let values = self
            .values
            .iter()
            .filter(|v| judged(&v.window) >= min_judged.max(1))
            .filter_map(|v| v.ratio.map(|r| (r, Some(v))));
        all.into_iter().chain(values).min_by(|a, b| a.0.total_cmp(&b.0))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinValueSnapshot {
    pub segment: String,
    pub value: String,
    pub total: Outcomes,
    pub window: Outcomes,
    pub ratio: Option<f64>,
    pub usual: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const T0: Millis = 1_700_000_000_000 / MIN * MIN;

    fn spec(segments: usize) -> JoinSpec {
        JoinSpec {
            leader_key: JsonPointer::parse("/user_id").unwrap(),
            follower_key: JsonPointer::parse("/user_id").unwrap(),
            before_ms: 30 * MIN,
            after_ms: 5 * MIN,
            grace_ms: MIN,
            segments: (0..segments).map(|i| (i, format!("s{i}"))).collect(),
            sample: 1,
            max_keys: DEFAULT_MAX_KEYS,
            max_pending: DEFAULT_MAX_PENDING,
            window_ms: 15 * MIN,
            partitions: JoinPartitions::CoPartitioned,
            incomplete_below: DEFAULT_INCOMPLETE_BELOW,
            min_judged: 1,
        }
    }

    fn key(s: &str) -> u64 {
        key_hash(Lookup::String { raw: s.as_bytes(), escaped: false }).unwrap()
    }

    const NO_VALUES: [u16; MAX_JOIN_SEGMENTS] = [u16::MAX; MAX_JOIN_SEGMENTS];

    #[test]
    fn pending_records_come_out_when_due_whatever_the_order_they_came_in() {
        let mut pending = PendingRecords::default();
        // out of order, over three seconds, one of them before the others' second
        for t in [T0 + 1500, T0 + 200, T0 + 2999, T0 + 1000, T0 + 1999, T0 - 1, T0 + 2000] {
            pending.push(Pending { t, key: t as u64, values: NO_VALUES });
        }
        assert_eq!((pending.len(), pending.oldest()), (7, Some(T0 - 1)));
        let take = |pending: &mut PendingRecords, limit| {
            let mut out = Vec::new();
            pending.take_until(limit, |p| out.push(p.t));
            out.sort();
            out
        };
        assert_eq!(take(&mut pending, T0 - 2), Vec::<Millis>::new());
        // a whole second and part of the next
        assert_eq!(take(&mut pending, T0 + 1000), vec![T0 - 1, T0 + 200, T0 + 1000]);
        assert_eq!((pending.len(), pending.oldest()), (4, Some(T0 + 1500)));
        assert_eq!(take(&mut pending, T0 + 2000), vec![T0 + 1500, T0 + 1999, T0 + 2000]);
        assert_eq!(take(&mut pending, T0 + 10_000), vec![T0 + 2999]);
        // a second emptied record by record is gone with its oldest
        pending.push(Pending { t: T0 + 5100, key: 1, values: NO_VALUES });
        pending.push(Pending { t: T0 + 6100, key: 2, values: NO_VALUES });
        assert_eq!(take(&mut pending, T0 + 5500), vec![T0 + 5100]);
        assert_eq!((pending.len(), pending.oldest()), (1, Some(T0 + 6100)));
        assert_eq!(take(&mut pending, T0 + 6100), vec![T0 + 6100]);
        assert_eq!((pending.len(), pending.oldest()), (0, None));
    }

    #[test]
    fn a_string_and_a_number_with_the_same_text_are_one_key_and_other_values_none() {
        assert_eq!(key_hash(Lookup::Number(b"42")), Some(key("42")));
        for v in [0i128, 42, -7, i128::from(i64::MIN), i128::from(u64::MAX)] {
            assert_eq!(int_key_hash(v), key(&v.to_string()), "an integer key is its decimal text");
        }
        assert_ne!(key("42"), key("43"));
        assert_eq!(key_hash(Lookup::Missing), None);
        assert_eq!(key_hash(Lookup::Other), None);
        // the specified XXH3 of "42", the same on every build and replica
        assert_eq!(key("42"), xxhash_rust::xxh3::xxh3_64(b"42"));
    }

    #[test]
    fn a_leader_record_is_pending_until_the_follower_passes_its_window_then_matched_or_missing() {
        let mut j = JoinState::new(spec(1));
        j.follower(0, key("early"), T0 - 40 * MIN);
        j.follower(0, key("u1"), T0 - 10 * MIN);
        j.follower(0, key("u3"), T0 + 4 * MIN); // after the order, within `after`
        let social = [0, u16::MAX, u16::MAX, u16::MAX];
        let direct = [1, u16::MAX, u16::MAX, u16::MAX];
        j.leader(key("u1"), T0, direct, T0);
        j.leader(key("u2"), T0, social, T0);
        j.leader(key("u3"), T0, direct, T0);
        // the follower 8 h behind the order: nothing judged, all pending
        j.tick(Some(T0), Some(T0 - 8 * 60 * MIN), T0 + MIN);
        let s = j.snapshot(|_| vec!["social".into(), "direct".into()], T0 + MIN);
        assert_eq!((s.pending, s.total), (3, Outcomes::default()));
        assert_eq!(s.pending_oldest_seconds, Some(60.0));
        // the follower reaches t + after + grace
        j.tick(Some(T0), Some(T0 + 6 * MIN), T0 + 7 * MIN);
        let s = j.snapshot(|_| vec!["social".into(), "direct".into()], T0 + 7 * MIN);
        assert_eq!(s.pending, 0);
        assert_eq!(s.total, Outcomes { matched: 2, missing: 1, unjudged: 0 });
        assert_eq!(s.ratio, Some(2.0 / 3.0));
        let by: Vec<_> =
            s.values.iter().map(|v| (v.value.as_str(), v.total.matched, v.total.missing, v.ratio)).collect();
        assert_eq!(by, [("social", 0, 1, Some(0.0)), ("direct", 2, 0, Some(1.0))]);
        assert_eq!(s.usual, None, "nothing judged before the window");
    }

    #[test]
    fn keys_the_follower_was_not_read_for_leave_a_record_unjudged_never_missing() {
        let mut j = JoinState::new(spec(0));
        // the follower read from T0 on: an order at T0 + 10 min needs keys from T0 − 20 min
        j.follower(0, key("other"), T0);
        j.leader(key("u1"), T0 + 10 * MIN, NO_VALUES, T0);
        j.leader(key("u2"), T0 + 40 * MIN, NO_VALUES, T0);
        j.tick(None, Some(T0 + 50 * MIN), T0 + 50 * MIN);
        let s = j.snapshot(|_| Vec::new(), T0 + 50 * MIN);
        assert_eq!(s.total, Outcomes { matched: 0, missing: 1, unjudged: 1 });
    }

    #[test]
    fn slices_no_leader_record_can_need_are_dropped_and_the_cap_drops_the_oldest() {
        let mut j = JoinState::new(spec(0));
        for m in 0..120 {
            j.follower(0, key(&format!("u{m}")), T0 + m * MIN);
        }
        j.insert_arrived();
        assert_eq!(j.keys, 120);
        // the leader is at T0 + 100 min: its records need T0 + 69 min (less grace) on
        j.tick(Some(T0 + 100 * MIN), Some(T0 + 120 * MIN), T0 + 120 * MIN);
        assert_eq!(j.first - T0 / MIN, 69);
        assert_eq!(j.keys, 51);
        // a late leader record before what is kept: unjudged
        j.leader(key("u5"), T0 + 5 * MIN, NO_VALUES, T0 + 120 * MIN);
        j.tick(Some(T0 + 100 * MIN), Some(T0 + 120 * MIN), T0 + 120 * MIN);
        assert_eq!(j.snapshot(|_| Vec::new(), T0).total.unjudged, 1);

        let mut capped = JoinState::new(JoinSpec { max_keys: 10, ..spec(0) });
        for m in 0..20 {
            capped.follower(0, key(&format!("u{m}")), T0 + m * MIN);
        }
        capped.insert_arrived();
        assert_eq!((capped.keys, capped.first - T0 / MIN), (10, 10), "the oldest slices dropped");
        for k in 0..5 {
            capped.follower(0, key(&format!("v{k}")), T0 + 19 * MIN);
        }
        capped.insert_arrived();
        assert_eq!((capped.keys, capped.keys_dropped), (10, 0), "older slices made room");
        capped.leader(key("u12"), T0 + 40 * MIN, NO_VALUES, T0);
        capped.leader(key("u1"), T0 + 20 * MIN, NO_VALUES, T0);
        capped.tick(None, Some(T0 + 60 * MIN), T0 + 60 * MIN);
        assert_eq!(
            capped.snapshot(|_| Vec::new(), T0).total,
            Outcomes { matched: 0, missing: 0, unjudged: 2 },
            "windows reaching before what the cap kept are unjudged"
        );
        let mut pending = JoinState::new(JoinSpec { max_pending: 1, ..spec(0) });
        pending.leader(key("a"), T0, NO_VALUES, T0);
        pending.leader(key("b"), T0, NO_VALUES, T0);
        let s = pending.snapshot(|_| Vec::new(), T0);
        assert_eq!((s.pending, s.total.unjudged, s.total.missing), (1, 1, 0));
    }

    #[test]
    fn sampling_keeps_the_same_keys_on_both_sides() {
        let mut j = JoinState::new(JoinSpec { sample: 10, ..spec(0) });
        j.follower(0, key("early"), T0 - 40 * MIN);
        j.insert_arrived();
        let before = j.keys;
        for u in 0..10_000 {
            j.follower(0, key(&format!("u{u}")), T0);
        }
        j.insert_arrived();
        let kept = j.keys - before;
        assert!((800..1200).contains(&kept), "about one key in ten: {kept}");
        for u in 0..10_000 {
            j.leader(key(&format!("u{u}")), T0, NO_VALUES, T0);
        }
        assert_eq!(j.pending.len(), kept, "the same keys judged as kept");
        j.tick(None, Some(T0 + 10 * MIN), T0 + 10 * MIN);
        let s = j.snapshot(|_| Vec::new(), T0 + 10 * MIN);
        assert_eq!((s.total.missing, s.ratio), (0, Some(1.0)));
    }

    #[test]
    fn a_sampled_ratio_is_within_a_few_points_of_the_full_one_on_the_same_traffic() {
        // 20 000 orders; the users of four in five have behaviour 10 minutes before
        let ratio = |sample: u64| {
            let mut j = JoinState::new(JoinSpec { sample, ..spec(0) });
            j.follower(0, key("early"), T0 - 40 * MIN);
            for u in 0..20_000 {
                if u % 5 != 0 {
                    j.follower(0, key(&format!("u{u}")), T0 - 10 * MIN);
                }
                j.leader(key(&format!("u{u}")), T0, NO_VALUES, T0);
            }
            j.tick(None, Some(T0 + 10 * MIN), T0 + 10 * MIN);
            let s = j.snapshot(|_| Vec::new(), T0 + 10 * MIN);
            (s.ratio.unwrap(), s.total.matched + s.total.missing, j.keys)
        };
        let (full, judged, keys) = ratio(1);
        let (sampled, judged_sampled, keys_sampled) = ratio(10);
        assert_eq!((full, judged), (0.8, 20_000));
        assert!((sampled - full).abs() < 0.03, "sample = 10: {sampled} against {full}");
        assert!((1_700..2_300).contains(&judged_sampled), "about a tenth judged: {judged_sampled}");
        assert!(keys_sampled * 8 < keys, "about a tenth of the keys kept: {keys_sampled} of {keys}");
    }

    #[test]
    fn the_ratio_is_over_the_window_and_the_usual_level_over_what_came_before() {
        let mut j = JoinState::new(spec(0));
        j.follower(0, key("early"), T0 - 40 * MIN);
        j.follower(0, key("seen"), T0);
        for k in 0..10 {
            j.leader(key(if k < 9 { "seen" } else { "unseen" }), T0 + MIN, NO_VALUES, T0);
        }
        j.tick(None, Some(T0 + 10 * MIN), T0 + 10 * MIN);
        j.leader(key("unseen"), T0 + 2 * MIN, NO_VALUES, T0);
        j.tick(None, Some(T0 + 10 * MIN), T0 + 40 * MIN);
        let s = j.snapshot(|_| Vec::new(), T0 + 40 * MIN);
        assert_eq!((s.window, s.ratio), (Outcomes { matched: 0, missing: 1, unjudged: 0 }, Some(0.0)));
        assert_eq!(s.usual, Some(0.9));
    }
}
