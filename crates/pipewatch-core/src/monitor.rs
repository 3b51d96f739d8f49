//! The monitor state: one tracker per assigned partition, grouped into streams and
//! pairs, advanced and turned into a [`Snapshot`] each tick ([`Monitor::tick`]). Pure:
//! every method takes `now`. What the snapshot's causes mean lives in [`crate::diagnosis`].
//!
//! The hot path is [`Monitor::record`]: extract the event time, update the partition's
//! tracker and the stream's record-delay histogram. The monitor is owned by one thread
//! (the source's), so nothing here locks.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::baseline::{band_at, hour_of, Band, BaselineSpec, HourlyRates, PartitionHistory, HOUR_MS};
use crate::consumer::{
    ConsumerPairSnapshot, ConsumerPartitionSnapshot, ConsumerSnapshot, ConsumerSpec, ConsumerStreamSnapshot, Lookup,
    OffsetIndex,
};
use crate::diagnosis::{diagnose, diagnose_consumer, pair_cause, Cause, ConsumerFacts, Side, StreamFacts};
use crate::extract::{Extractor, InvalidReason};
use crate::histogram::{Histogram, GAP_DURATION_BUCKETS, RECORD_DELAY_BUCKETS};
use crate::json::{Lookup as Found, PointerSet, MAX_SET};
use crate::segment::{SegmentSnapshot, SegmentSpec, SegmentState};
use crate::time::Millis;

/// A stream is `monitor_backlog` when its unread backlog grew over the rate window and
/// holds more than this many seconds of traffic.
pub const BACKLOG_TOLERANCE_SECONDS: f64 = 10.0;

/// One stream as configured.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    pub topic: String,
    pub extractor: Extractor,
    /// A partition whose log end has not advanced for longer is silent; a gap opens.
    pub max_silence_ms: Millis,
    /// A median record delay over the rate window, or a freshness lag of a flowing
    /// stream, above this is `event_time_delayed`.
    pub max_record_delay_ms: Millis,
    /// Rate bounds (records/s) for `volume_low` / `volume_high`.
    pub min_rate: Option<f64>,
    pub max_rate: Option<f64>,
    /// The expected rate learned from the topic's history (`volume_anomaly`).
    pub baseline: Option<BaselineSpec>,
    /// Fields whose values are counted per record (`segment_silent`).
    pub segments: Vec<SegmentSpec>,
    /// Distinct values kept per segment; beyond, `other`.
    pub max_segment_values: usize,
}

/// One pair as configured: indexes into the stream list.
#[derive(Debug, Clone)]
pub struct PairSpec {
    pub name: String,
    pub leader: usize,
    pub follower: usize,
}

/// Monitor-wide settings.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    pub idle_partition_timeout_ms: Millis,
    pub rate_window_ms: Millis,
}

/// Where reading starts on a newly assigned partition, as the source decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// At this offset: the backlog up to the log end is replayed first.
    At(i64),
    /// At the log end: nothing to replay, the partition is caught up at once.
    LogEnd,
    /// Not known (the lookup failed); caught up once a record reaches the log end.
    Unknown,
}

/// A right pipewatch needs to read a stream, as the cluster's authorizer may deny it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Read on pipewatch's own group: joining it (every stream needs it).
    ReadGroup,
    /// Describe on the stream's topic: its metadata and log ends.
    DescribeTopic,
    /// Read on the stream's topic: its records.
    ReadTopic,
}

impl Right {
    const COUNT: usize = 3;
}

/// Whether the cluster answers (as the log-end poller sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaStatus {
    /// Not asked yet.
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone)]
struct PartitionTracker {
    partition: i32,
    /// Max valid event time seen; never goes backwards.
    watermark: Option<Millis>,
    /// Arrival time of the last record (valid or not).
    last_record: Option<Millis>,
    /// Next offset pipewatch will read.
    position: Option<i64>,
    /// The broker's high-watermark offset, as last polled.
    log_end: Option<i64>,
    /// When the log end last advanced (or was first seen).
    log_end_advanced: Millis,
    /// The log end advanced at least once while watched. A partition nobody writes to
    /// (key skew leaves some empty) is quiet, not stalled.
    written: bool,
    /// The backlog drained at least once since assignment.
    caught_up: bool,
    /// Reading started at the log end: the first polled log end is the position.
    start_at_log_end: bool,
    records: u64,
    bytes: u64,
    invalid: [u64; InvalidReason::COUNT],
    gaps: u64,
    /// Start of the silence of the open gap.
    gap_since: Option<Millis>,
    /// Offsets to event times, for the streams a consumer reads.
    index: Option<Box<OffsetIndex>>,
    /// Offsets at hour boundaries, for streams with a baseline (once learned).
    history: Option<Box<PartitionHistory>>,
    /// The history was asked of the source.
    history_requested: bool,
}

impl PartitionTracker {
    fn new(partition: i32, now: Millis, indexed: bool) -> Self {
        Self {
            partition,
            watermark: None,
            last_record: None,
            position: None,
            log_end: None,
            log_end_advanced: now,
            written: false,
            caught_up: false,
            start_at_log_end: false,
            records: 0,
            bytes: 0,
            invalid: [0; InvalidReason::COUNT],
            gaps: 0,
            gap_since: None,
            index: indexed.then(|| Box::new(OffsetIndex::new())),
            history: None,
            history_requested: false,
        }
    }

    fn check_caught_up(&mut self) {
        if let (Some(pos), Some(end)) = (self.position, self.log_end) {
            if pos >= end {
                self.caught_up = true;
            }
        }
    }

    fn silence_ms(&self, now: Millis) -> Option<Millis> {
        self.log_end.map(|_| (now - self.log_end_advanced).max(0))
    }

    fn backlog(&self) -> Option<i64> {
        match (self.log_end, self.position) {
            (Some(end), Some(pos)) => Some((end - pos).max(0)),
            _ => None,
        }
    }
}

/// What a stream's partitions have counted: kept for the stream when a partition is
/// revoked, so the stream's totals never go back.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    records: u64,
    bytes: u64,
    invalid: [u64; InvalidReason::COUNT],
    gaps: u64,
}

impl Counts {
    fn add(&mut self, p: &PartitionTracker) {
        self.records += p.records;
        self.bytes += p.bytes;
        self.gaps += p.gaps;
        for (total, n) in self.invalid.iter_mut().zip(p.invalid) {
            *total += n;
        }
    }
}

/// How many recent record delays a stream keeps for its median.
pub const RECENT_DELAYS: usize = 4096;

/// The delays of the last [`RECENT_DELAYS`] records read in real time, with their
/// arrival times: a fixed ring, so recording one is two stores.
#[derive(Debug, Clone)]
struct RecentDelays {
    /// `(arrival, delay)` in milliseconds.
    ring: Box<[(Millis, Millis)]>,
    next: usize,
    len: usize,
    scratch: Vec<Millis>,
}

impl RecentDelays {
    fn new() -> Self {
        Self { ring: vec![(0, 0); RECENT_DELAYS].into_boxed_slice(), next: 0, len: 0, scratch: Vec::new() }
    }

    #[inline]
    fn push(&mut self, arrival: Millis, delay: Millis) {
        self.ring[self.next] = (arrival, delay);
        self.next = (self.next + 1) % RECENT_DELAYS;
        self.len = (self.len + 1).min(RECENT_DELAYS);
    }

    /// The median delay of the records that arrived at or after `since`.
    fn median_since(&mut self, since: Millis) -> Option<Millis> {
        self.scratch.clear();
        self.scratch.extend(self.ring[..self.len].iter().filter(|(at, _)| *at >= since).map(|(_, d)| *d));
        if self.scratch.is_empty() {
            return None;
        }
        let mid = self.scratch.len() / 2;
        Some(*self.scratch.select_nth_unstable(mid).1)
    }
}

#[derive(Debug, Clone)]
struct WindowSample {
    at: Millis,
    log_end_sum: i64,
    backlog: i64,
}

#[derive(Debug, Clone)]
struct StreamState {
    spec: StreamSpec,
    /// Indexed by partition number; `None` where not assigned to this process.
    partitions: Vec<Option<PartitionTracker>>,
    record_delay: Histogram,
    gap_duration: Histogram,
    window: VecDeque<WindowSample>,
    recent_delays: RecentDelays,
    /// Set when the partitions whose log end is known change; the window restarts.
    window_stale: bool,
    last_watermark: Option<Millis>,
    /// The cluster answered that the topic does not exist.
    topic_missing: bool,
    /// A consumer reads the stream: its partitions keep an offset index.
    indexed: bool,
    /// The counts of partitions revoked from this process.
    revoked: Counts,
    /// What the authorizer denies, by [`Right`]: the resource, e.g. `Read on topic orders`.
    denied: [Option<String>; Right::COUNT],
    /// The stream's records read when Read on its topic was denied: one more proves it
    /// allowed again (checked at the tick, not per record).
    records_when_read_denied: u64,
    /// The assigned partitions' hourly rates summed, recomputed when `hourly_stale`.
    hourly: HourlyRates,
    hourly_stale: bool,
    segments: Vec<SegmentState>,
    /// With segments: the event time's field (first, when it is one) and the segments',
    /// looked up in one pass per record.
    fields: PointerSet,
}

/// A watched consumer group: its committed offsets as last read.
#[derive(Debug, Clone)]
struct ConsumerState {
    spec: ConsumerSpec,
    /// Committed offsets by `(stream, partition)`.
    committed: BTreeMap<(usize, i32), i64>,
    /// Why the offsets could not be read (or were not read yet).
    error: Option<String>,
    /// The error is the authorizer's: Describe on the group is denied.
    denied: bool,
    /// Since when records have waited with no committed offset moving.
    progress_at: Millis,
    /// Committed offsets older than the offset index, by `(stream, partition)`: the
    /// offset and what fetching its record found.
    resolved: BTreeMap<(usize, i32), (i64, Resolution)>,
}

/// A committed offset older than the offset index, resolved by fetching its record.
/// While a fetch is under way the partition keeps what the previous offset's fetch
/// found (an upper bound of the lag, exact again once the answer comes), so its series
/// does not blink out each time a far-behind group commits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resolution {
    /// To be fetched.
    Wanted { previous: Option<Known> },
    /// Handed to the source, not answered yet.
    Requested { previous: Option<Known> },
    /// What the fetch found.
    Known(Known),
    /// The record was deleted (retention) before the group read it; the log start, if
    /// it could be read.
    Expired { log_start: Option<i64> },
    /// The fetch failed at this time; tried again after [`FETCH_RETRY_MS`].
    Failed(Millis),
}

/// Event times of the first valid record at or after a committed offset, and of the
/// last valid one before it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Known {
    at: Option<Millis>,
    before: Option<Millis>,
}

impl Resolution {
    /// What is known, or was known of the previous offset while this one is fetched.
    fn known(self) -> Option<Known> {
        match self {
            Resolution::Known(k) => Some(k),
            Resolution::Wanted { previous } | Resolution::Requested { previous } => previous,
            Resolution::Expired { .. } | Resolution::Failed(_) => None,
        }
    }
}

/// How long a failed fetch of a committed offset's record waits before it is tried again.
pub const FETCH_RETRY_MS: Millis = 60_000;

/// A record pipewatch wants fetched: the one at a consumer's committed offset (and the
/// one before it), older than the offset index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub consumer: usize,
    pub stream: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What fetching a [`FetchRequest`] found: `(offset, payload, Kafka timestamp)` of the
/// records from the one before the committed offset on.
#[derive(Debug, Clone, Copy)]
pub enum Fetched<'a> {
    Records(&'a [(i64, Option<&'a [u8]>, Option<Millis>)]),
    /// The offset is below the log start (given, when it could be read): deleted before
    /// the group read it.
    Expired {
        log_start: Option<i64>,
    },
    Failed,
}

impl ConsumerState {
    /// What is known of `offset`'s record on `(stream, partition)`; a new offset is wanted.
    fn resolution(&mut self, stream: usize, partition: i32, offset: i64, now: Millis) -> Resolution {
        let entry = self.resolved.entry((stream, partition)).or_insert((offset, Resolution::Wanted { previous: None }));
        match *entry {
            (o, r) if o != offset => *entry = (offset, Resolution::Wanted { previous: r.known() }),
            (_, Resolution::Failed(at)) if now - at >= FETCH_RETRY_MS => {
                entry.1 = Resolution::Wanted { previous: None }
            }
            _ => {}
        }
        entry.1
    }
}

/// The monitor: all streams and pairs, fed by the source, read through snapshots.
#[derive(Debug, Clone)]
pub struct Monitor {
    settings: MonitorSettings,
    streams: Vec<StreamState>,
    pairs: Vec<PairSpec>,
    consumers: Vec<ConsumerState>,
    kafka: KafkaStatus,
    kafka_error: Option<String>,
    /// The cluster did not answer at the last tick.
    was_down: bool,
}

impl Monitor {
    pub fn new(settings: MonitorSettings, streams: Vec<StreamSpec>, pairs: Vec<PairSpec>) -> Self {
        let streams = streams
            .into_iter()
            .map(|spec| StreamState {
                partitions: Vec::new(),
                record_delay: Histogram::new(RECORD_DELAY_BUCKETS),
                gap_duration: Histogram::new(GAP_DURATION_BUCKETS),
                window: VecDeque::new(),
                recent_delays: RecentDelays::new(),
                window_stale: true,
                last_watermark: None,
                topic_missing: false,
                indexed: false,
                revoked: Counts::default(),
                denied: Default::default(),
                records_when_read_denied: 0,
                hourly: HourlyRates::default(),
                hourly_stale: true,
                segments: spec.segments.iter().map(|g| SegmentState::new(g.clone(), spec.max_segment_values)).collect(),
                fields: PointerSet::new(if spec.segments.is_empty() {
                    Vec::new()
                } else {
                    spec.extractor
                        .pointer()
                        .into_iter()
                        .chain(spec.segments.iter().map(|g| &g.pointer))
                        .cloned()
                        .collect()
                }),
                spec,
            })
            .collect();
        Self {
            settings,
            streams,
            pairs,
            consumers: Vec::new(),
            kafka: KafkaStatus::Unknown,
            kafka_error: None,
            was_down: false,
        }
    }

    pub fn streams(&self) -> impl Iterator<Item = &StreamSpec> {
        self.streams.iter().map(|s| &s.spec)
    }

    /// The partitions assigned to this replica: `(stream, partition)`.
    pub fn assigned(&self) -> impl Iterator<Item = (usize, i32)> + '_ {
        self.streams.iter().enumerate().flat_map(|(s, st)| {
            st.partitions.iter().enumerate().filter(|(_, p)| p.is_some()).map(move |(p, _)| (s, p as i32))
        })
    }

    /// Watches a downstream consumer: the partitions of its streams keep an offset index
    /// from now on.
    pub fn watch_consumer(&mut self, spec: ConsumerSpec, now: Millis) {
        for &i in &spec.streams {
            if let Some(s) = self.streams.get_mut(i) {
                s.indexed = true;
                for p in s.partitions.iter_mut().flatten() {
                    p.index.get_or_insert_with(|| Box::new(OffsetIndex::new()));
                }
            }
        }
        let error = Some("offsets not read yet".to_string());
        self.consumers.push(ConsumerState {
            spec,
            committed: BTreeMap::new(),
            error,
            denied: false,
            progress_at: now,
            resolved: BTreeMap::new(),
        });
    }

    pub fn consumers(&self) -> impl Iterator<Item = &ConsumerSpec> {
        self.consumers.iter().map(|c| &c.spec)
    }

    /// The committed offsets of a consumer's group, as just read: `(stream, partition,
    /// offset)`, `None` where the group committed none. Any offset that moved counts as
    /// progress.
    pub fn committed_offsets(&mut self, consumer: usize, offsets: &[(usize, i32, Option<i64>)], now: Millis) {
        let Some(c) = self.consumers.get_mut(consumer) else {
            return;
        };
        let committed: BTreeMap<(usize, i32), i64> =
            offsets.iter().filter_map(|&(s, p, o)| o.filter(|o| *o >= 0).map(|o| ((s, p), o))).collect();
        if committed != c.committed {
            c.progress_at = now;
        }
        c.error = committed.is_empty().then(|| "the group has no committed offsets for these topics".to_string());
        c.denied = false;
        c.committed = committed;
    }

    /// Up to `max` records to fetch: committed offsets older than the offset index, each
    /// asked for once while it stands still (a failed fetch again after [`FETCH_RETRY_MS`]).
    pub fn take_fetches(&mut self, max: usize) -> Vec<FetchRequest> {
        let mut out = Vec::new();
        for (ci, c) in self.consumers.iter_mut().enumerate() {
            for (&(stream, partition), (offset, r)) in c.resolved.iter_mut() {
                if out.len() >= max {
                    return out;
                }
                if let Resolution::Wanted { previous } = *r {
                    *r = Resolution::Requested { previous };
                    let topic = self.streams[stream].spec.topic.clone();
                    out.push(FetchRequest { consumer: ci, stream, topic, partition, offset: *offset });
                }
            }
        }
        out
    }

    /// The answer to a [`FetchRequest`]. One for an offset the group has moved past since
    /// is dropped.
    pub fn fetched(&mut self, request: &FetchRequest, found: Fetched<'_>, now: Millis) {
        let Some(c) = self.consumers.get_mut(request.consumer) else {
            return;
        };
        let Some(entry) = c.resolved.get_mut(&(request.stream, request.partition)) else {
            return;
        };
        if entry.0 != request.offset {
            return;
        }
        let extractor = &self.streams[request.stream].spec.extractor;
        entry.1 = match found {
            Fetched::Records(records) => {
                let valid =
                    |r: &&(i64, Option<&[u8]>, Option<Millis>)| extractor.extract(r.1, r.2, now).ok().map(|t| (r.0, t));
                let times: Vec<(i64, Millis)> = records.iter().filter_map(|r| valid(&r)).collect();
                Resolution::Known(Known {
                    at: times.iter().find(|(o, _)| *o >= request.offset).map(|(_, t)| *t),
                    before: times.iter().rev().find(|(o, _)| *o < request.offset).map(|(_, t)| *t),
                })
            }
            Fetched::Expired { log_start } => Resolution::Expired { log_start },
            Fetched::Failed => Resolution::Failed(now),
        };
    }

    /// A consumer's offsets could not be read.
    /// The consumer's offsets could not be read, and why; `denied`: the authorizer said no.
    pub fn consumer_error(&mut self, consumer: usize, error: String, denied: bool) {
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.error = Some(error);
            c.denied = denied;
        }
    }

    /// The authorizer denies (`Some(resource)`, e.g. `Read on topic orders`) or allows
    /// (`None`) a right for `stream`, or for every stream when `stream` is `None` (Read
    /// on pipewatch's own group).
    pub fn set_access_denied(&mut self, stream: Option<usize>, right: Right, resource: Option<String>) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if stream.is_none_or(|k| k == i) {
                if right == Right::ReadTopic && resource.is_some() {
                    s.records_when_read_denied =
                        s.partitions.iter().flatten().map(|p| p.records).sum::<u64>() + s.revoked.records;
                }
                s.denied[right as usize] = resource.clone();
            }
        }
    }

    /// Whether the cluster answers, and when it does not, why (e.g. the authentication
    /// failure), as the status shows it.
    pub fn set_kafka_status(&mut self, status: KafkaStatus, error: Option<String>) {
        self.kafka = status;
        self.kafka_error = error;
    }

    /// Whether the cluster says the stream's topic exists (as the log-end poller sees it).
    pub fn set_topic_missing(&mut self, stream: usize, missing: bool) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.topic_missing = missing;
        }
    }

    /// A partition was assigned to this process, reading from `start`.
    pub fn assign(&mut self, stream: usize, partition: i32, start: StartPosition, now: Millis) {
        let Ok(idx) = usize::try_from(partition) else {
            return;
        };
        let s = &mut self.streams[stream];
        if s.partitions.len() <= idx {
            s.partitions.resize(idx + 1, None);
        }
        if s.partitions[idx].is_none() {
            let mut p = PartitionTracker::new(partition, now, s.indexed);
            match start {
                StartPosition::At(offset) => p.position = Some(offset),
                StartPosition::LogEnd => {
                    p.caught_up = true;
                    p.start_at_log_end = true;
                }
                StartPosition::Unknown => {}
            }
            s.partitions[idx] = Some(p);
            s.window_stale = true;
            s.hourly_stale = true;
        }
    }

    /// A partition was taken away (rebalance): its series go with it.
    pub fn revoke(&mut self, stream: usize, partition: i32) {
        let s = &mut self.streams[stream];
        if let Some(slot) = usize::try_from(partition).ok().and_then(|i| s.partitions.get_mut(i)) {
            if let Some(p) = slot.take() {
                s.revoked.add(&p);
                s.window_stale = true;
                s.hourly_stale = true;
            }
        }
    }

    #[inline]
    fn tracker(&mut self, stream: usize, partition: i32) -> Option<&mut PartitionTracker> {
        let i = usize::try_from(partition).ok()?;
        self.streams.get_mut(stream)?.partitions.get_mut(i)?.as_mut()
    }

    /// One record read from a partition: the hot path. Records of partitions not
    /// assigned (late deliveries after a revoke) are ignored.
    #[inline]
    pub fn record(
        &mut self,
        stream: usize,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        arrival: Millis,
    ) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(p) = usize::try_from(partition).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut)
        else {
            return;
        };
        p.records += 1;
        p.bytes += payload.map_or(0, |b| b.len() as u64);
        p.last_record = Some(arrival);
        p.position = Some(p.position.map_or(offset + 1, |pos| pos.max(offset + 1)));
        let time = match payload {
            // the event time and the segments in one pass
            Some(doc) if !s.segments.is_empty() && !doc.is_empty() => {
                let mut found = [Found::Missing; MAX_SET];
                s.fields.lookup_all(doc, &mut found);
                let (time, values) = if s.spec.extractor.pointer().is_some() {
                    (s.spec.extractor.from_lookup(found[0], arrival), &found[1..])
                } else {
                    (s.spec.extractor.extract(payload, kafka_timestamp, arrival), &found[..])
                };
                for (segment, value) in s.segments.iter_mut().zip(values) {
                    segment.record(*value, p.caught_up, arrival);
                }
                time
            }
            _ => s.spec.extractor.extract(payload, kafka_timestamp, arrival),
        };
        match time {
            Ok(t) => {
                p.watermark = Some(p.watermark.map_or(t, |w| w.max(t)));
                if let Some(index) = &mut p.index {
                    index.push(offset, t);
                }
                if p.caught_up {
                    s.record_delay.observe((arrival - t) as f64 / 1000.0);
                    s.recent_delays.push(arrival, arrival - t);
                }
            }
            Err(reason) => p.invalid[reason.index()] += 1,
        }
        p.check_caught_up();
    }

    /// The consumer's own position for a partition (next offset to read), e.g. after
    /// an offset reset; positions only move forward here.
    pub fn position(&mut self, stream: usize, partition: i32, position: i64) {
        if let Some(p) = self.tracker(stream, partition) {
            if p.position.is_none_or(|pos| position > pos) {
                p.position = Some(position);
            }
            p.check_caught_up();
        }
    }

    /// A polled log-end (high-watermark) offset of a partition.
    pub fn log_end(&mut self, stream: usize, partition: i32, log_end: i64, now: Millis) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(p) = usize::try_from(partition).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut)
        else {
            return;
        };
        match p.log_end {
            None => {
                p.log_end_advanced = now;
                s.window_stale = true;
                if p.start_at_log_end && p.position.is_none() {
                    p.position = Some(log_end);
                }
            }
            Some(prev) if log_end > prev => {
                if let Some(since) = p.gap_since.take() {
                    s.gap_duration.observe((now - since) as f64 / 1000.0);
                }
                p.log_end_advanced = now;
                p.written = true;
            }
            Some(prev) if log_end < prev => {
                // Topic re-created or truncated: start over.
                p.log_end_advanced = now;
                p.position = None;
                s.window_stale = true;
            }
            Some(_) => {}
        }
        p.log_end = Some(log_end);
        p.check_caught_up();
    }

    /// The assigned partitions of streams with a baseline whose history has not been
    /// asked for yet: `(stream, partition)`, each handed out once per assignment.
    pub fn take_history_requests(&mut self) -> Vec<(usize, i32)> {
        let mut out = Vec::new();
        for (i, s) in self.streams.iter_mut().enumerate().filter(|(_, s)| s.spec.baseline.is_some()) {
            for p in s.partitions.iter_mut().flatten().filter(|p| !p.history_requested) {
                p.history_requested = true;
                out.push((i, p.partition));
            }
        }
        out
    }

    /// A partition's history as learned from the broker (see
    /// [`PartitionHistory::from_offsets`]); `None`: it could not be read, ask again.
    pub fn learned(&mut self, stream: usize, partition: i32, history: Option<PartitionHistory>) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(p) = usize::try_from(partition).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut)
        else {
            return;
        };
        match history {
            Some(h) => {
                p.history = Some(Box::new(h));
                s.hourly_stale = true;
            }
            None => p.history_requested = false,
        }
    }

    /// Advances what time alone moves (gaps opening, the rate window) to `now` and
    /// returns everything measured: call once per tick. The snapshot is immutable; the
    /// tick stage hands it on.
    pub fn tick(&mut self, now: Millis) -> Snapshot {
        let settings = self.settings.clone();
        let kafka = self.kafka;
        // Back from an outage: what producers wrote while the cluster did not answer is
        // unknown, so silence starts over now rather than count the outage (a broker
        // that crashed and came back is one fault, KafkaUnreachable, not a silence too).
        if kafka == KafkaStatus::Up && self.was_down {
            for p in self.streams.iter_mut().flat_map(|s| s.partitions.iter_mut().flatten()) {
                p.log_end_advanced = p.log_end_advanced.max(now);
            }
        }
        self.was_down = kafka == KafkaStatus::Down;
        let streams: Vec<StreamSnapshot> =
            self.streams.iter_mut().map(|s| stream_snapshot(s, &settings, kafka, now)).collect();
        let pairs = self
            .pairs
            .iter()
            .map(|pair| {
                let leader = &streams[pair.leader];
                let follower = &streams[pair.follower];
                let sync_lag_seconds = match (leader.watermark_ms, follower.watermark_ms) {
                    (Some(l), Some(f)) => Some((l - f) as f64 / 1000.0),
                    _ => None,
                };
                let (cause, side) = pair_cause(leader.cause, follower.cause, sync_lag_seconds);
                PairSnapshot {
                    name: pair.name.clone(),
                    leader: leader.name.clone(),
                    follower: follower.name.clone(),
                    sync_lag_seconds,
                    cause,
                    cause_stream: match side {
                        Side::Leader => leader.name.clone(),
                        Side::Follower => follower.name.clone(),
                    },
                }
            })
            .collect();
        let consumers = self
            .consumers
            .iter_mut()
            .map(|c| consumer_snapshot(c, &self.streams, &streams, &self.pairs, kafka, now))
            .collect();
        Snapshot { at_ms: now, kafka, kafka_error: self.kafka_error.clone(), streams, pairs, consumers }
    }
}

/// One consumer at `now`: lag per partition from its committed offsets, the offset
/// index and the log ends of this tick; its watermarks, sync lags and cause.
fn consumer_snapshot(
    c: &mut ConsumerState,
    states: &[StreamState],
    streams: &[StreamSnapshot],
    pairs: &[PairSpec],
    kafka: KafkaStatus,
    now: Millis,
) -> ConsumerSnapshot {
    let mut out_streams = Vec::new();
    let (mut waiting, mut lagging, mut upstream_fault, mut any_expired) = (false, false, false, false);
    for k in 0..c.spec.streams.len() {
        let si = c.spec.streams[k];
        let (state, snap) = (&states[si], &streams[si]);
        upstream_fault |= snap.cause.is_upstream_fault();
        let mut partitions = Vec::new();
        let (mut active_min, mut any_max, mut max_lag, mut lag_sum) = (None::<Millis>, None::<Millis>, None::<f64>, 0);
        for ps in &snap.partitions {
            let index =
                state.partitions.get(ps.partition as usize).and_then(Option::as_ref).and_then(|t| t.index.as_deref());
            let committed = c.committed.get(&(si, ps.partition)).copied();
            let lag_records = committed.zip(ps.log_end_offset).map(|(o, end)| (end - o).max(0));
            // Event times of the record at the committed offset and of the one before it:
            // from the index, or (older than the index) from fetching them.
            let (mut at, mut watermark, mut expired) = (None, None, None);
            if let (Some(o), Some(ix)) = (committed, index) {
                watermark = ix.before(o);
                match ix.at_or_after(o) {
                    Lookup::Found(t) => at = Some(t),
                    Lookup::Older if lag_records.is_some_and(|n| n > 0) => {
                        let r = c.resolution(si, ps.partition, o, now);
                        if let Resolution::Expired { log_start } = r {
                            expired = Some(log_start.map_or(0, |start| (start - o).max(0)));
                        } else if let Some(k) = r.known() {
                            (at, watermark) = (k.at, k.before.or(watermark));
                        }
                    }
                    Lookup::Older | Lookup::Beyond => {}
                }
            }
            let lag_seconds = match lag_records {
                Some(0) => Some(0.0),
                _ => at.map(|t| (now - t).max(0) as f64 / 1000.0),
            };
            if let Some(w) = watermark {
                if ps.active {
                    active_min = Some(active_min.map_or(w, |m| m.min(w)));
                }
                any_max = Some(any_max.map_or(w, |m| m.max(w)));
            }
            if let Some(l) = lag_seconds {
                max_lag = Some(max_lag.map_or(l, |m: f64| m.max(l)));
                lagging |= l * 1000.0 > c.spec.max_lag_ms as f64;
            }
            waiting |= lag_records.is_some_and(|n| n > 0);
            lag_sum += lag_records.unwrap_or(0);
            partitions.push(ConsumerPartitionSnapshot {
                partition: ps.partition,
                committed_offset: committed,
                lag_records,
                lag_seconds,
                watermark_ms: watermark,
                expired: expired.is_some(),
                expired_records: expired.filter(|n| *n > 0),
            });
            any_expired |= expired.is_some();
        }
        out_streams.push(ConsumerStreamSnapshot {
            stream: snap.name.clone(),
            topic: snap.topic.clone(),
            watermark_ms: active_min.or(any_max),
            max_lag_seconds: max_lag,
            lag_records: lag_sum,
            partitions,
        });
    }
    // Nothing waits: the stall clock starts over (an idle consumer is not stopped).
    if !waiting {
        c.progress_at = now;
    }
    let stalled_ms = now - c.progress_at;
    let watermark_of = |i: usize| c.spec.streams.iter().position(|&s| s == i).and_then(|k| out_streams[k].watermark_ms);
    let out_pairs = pairs
        .iter()
        .filter(|p| c.spec.streams.contains(&p.leader) && c.spec.streams.contains(&p.follower))
        .map(|p| ConsumerPairSnapshot {
            pair: p.name.clone(),
            leader: streams[p.leader].name.clone(),
            follower: streams[p.follower].name.clone(),
            sync_lag_seconds: watermark_of(p.leader)
                .zip(watermark_of(p.follower))
                .map(|(l, f)| (l - f) as f64 / 1000.0),
        })
        .collect();
    let cause = diagnose_consumer(&ConsumerFacts {
        kafka_down: kafka == KafkaStatus::Down,
        access_denied: c.denied && c.error.is_some(),
        upstream_fault,
        group_unknown: c.error.is_some(),
        expired: any_expired,
        stalled: waiting && stalled_ms > c.spec.max_stall_ms,
        lagging,
    });
    ConsumerSnapshot {
        name: c.spec.name.clone(),
        group: c.spec.group.clone(),
        cause,
        error: c.error.clone(),
        stalled_seconds: stalled_ms as f64 / 1000.0,
        streams: out_streams,
        pairs: out_pairs,
    }
}

fn stream_snapshot(s: &mut StreamState, settings: &MonitorSettings, kafka: KafkaStatus, now: Millis) -> StreamSnapshot {
    let max_silence = s.spec.max_silence_ms;
    let mut partitions = Vec::new();
    let (mut active_min, mut any_max): (Option<Millis>, Option<Millis>) = (None, None);
    let (mut silent, mut quiet, mut flowing, mut catching_up) = (0usize, 0usize, 0usize, false);
    let (mut log_end_sum, mut backlog_sum) = (0i64, 0i64);
    let mut stream_silence: Option<Millis> = None;
    let mut totals = s.revoked;
    let mut active_partitions = 0;
    for p in s.partitions.iter_mut().flatten() {
        let active = p.last_record.is_some_and(|t| now - t <= settings.idle_partition_timeout_ms);
        active_partitions += usize::from(active);
        if let Some(w) = p.watermark {
            if active {
                active_min = Some(active_min.map_or(w, |m| m.min(w)));
            }
            any_max = Some(any_max.map_or(w, |m| m.max(w)));
        }
        let silence = p.silence_ms(now);
        if let Some(sil) = silence {
            stream_silence = Some(stream_silence.map_or(sil, |m| m.min(sil)));
            if sil <= max_silence {
                flowing += 1;
            } else if p.written {
                silent += 1;
                if p.gap_since.is_none() {
                    p.gap_since = Some(p.log_end_advanced);
                    p.gaps += 1;
                }
            } else {
                quiet += 1;
            }
        }
        if let Some(end) = p.log_end {
            log_end_sum += end;
        }
        let backlog = p.backlog();
        backlog_sum += backlog.unwrap_or(0);
        if !p.caught_up {
            catching_up = true;
        }
        // The log end was polled before the records read since: a position past it
        // proves the log end is at least there.
        let log_end = match (p.log_end, p.position) {
            (Some(end), Some(pos)) => Some(end.max(pos)),
            (end, _) => end,
        };
        totals.add(p);
        partitions.push(PartitionSnapshot {
            partition: p.partition,
            watermark_ms: p.watermark,
            last_record_ms: p.last_record,
            log_end_offset: log_end,
            position_offset: p.position,
            backlog_records: backlog,
            silence_seconds: silence.map(|ms| ms as f64 / 1000.0),
            active,
            caught_up: p.caught_up,
            records: p.records,
            bytes: p.bytes,
            invalid: InvalidReason::ALL.iter().map(|r| (r.as_str(), p.invalid[r.index()])).collect(),
            gaps: p.gaps,
            gap_open_since_ms: p.gap_since,
        });
    }
    // Stream watermark: min over active partitions; with none active, the freshest known.
    let watermark = active_min.or(any_max).or(s.last_watermark);
    s.last_watermark = watermark;

    // Rate window over broker log ends, backlog and record delays.
    if s.window_stale {
        s.window.clear();
        s.window_stale = false;
    }
    s.window.push_back(WindowSample { at: now, log_end_sum, backlog: backlog_sum });
    let window_start = now - settings.rate_window_ms;
    while s.window.len() >= 2 && s.window[1].at <= window_start {
        s.window.pop_front();
    }
    let oldest = &s.window[0];
    let window_full = oldest.at <= window_start;
    let elapsed_s = (now - oldest.at) as f64 / 1000.0;
    let rate =
        if elapsed_s > 0.0 { Some(((log_end_sum - oldest.log_end_sum).max(0)) as f64 / elapsed_s) } else { None };
    let median_record_delay = s.recent_delays.median_since(window_start).map(|ms| ms as f64 / 1000.0);
    let backlog_growing = elapsed_s > 0.0
        && backlog_sum > oldest.backlog
        && backlog_sum as f64 > rate.unwrap_or(0.0) * BACKLOG_TOLERANCE_SECONDS;

    let freshness_lag_ms = watermark.map(|w| now - w);
    let max_delay = s.spec.max_record_delay_ms;
    let full_window_rate = window_full.then(|| rate.unwrap_or(0.0));
    let baseline = baseline_status(s, settings, full_window_rate, now);
    let segments: Vec<SegmentSnapshot> = s.segments.iter().map(|g| g.snapshot(max_silence, now)).collect();
    let silent_segments: Vec<String> = segments
        .iter()
        .flat_map(|g| g.values.iter().filter(|v| v.silent).map(move |v| format!("{}={}", g.name, v.value)))
        .collect();
    let segment_silence_seconds = segments
        .iter()
        .flat_map(|g| g.values.iter().filter(|v| v.judged).filter_map(|v| v.silence_seconds))
        .reduce(f64::max);
    // a record read since Read on the topic was denied: it is allowed now
    if totals.records > s.records_when_read_denied {
        s.denied[Right::ReadTopic as usize] = None;
    }
    let access_denied = s.denied.iter().flatten().next().cloned();
    let cause = diagnose(&StreamFacts {
        kafka_down: kafka == KafkaStatus::Down,
        access_denied: access_denied.is_some(),
        topic_missing: s.topic_missing,
        has_watermark: watermark.is_some(),
        flowing,
        silent,
        quiet,
        catching_up,
        backlog_growing,
        event_time_old: median_record_delay.is_some_and(|d| d * 1000.0 > max_delay as f64)
            || freshness_lag_ms.is_some_and(|lag| lag > max_delay),
        full_window_rate,
        min_rate: s.spec.min_rate,
        max_rate: s.spec.max_rate,
        band: baseline.as_ref().and_then(|b| b.band).map(|b| (b.lower, b.upper)),
        segment_silent: !silent_segments.is_empty(),
    });

    StreamSnapshot {
        name: s.spec.name.clone(),
        topic: s.spec.topic.clone(),
        cause,
        access_denied,
        watermark_ms: watermark,
        freshness_lag_seconds: freshness_lag_ms.map(|lag| lag as f64 / 1000.0),
        silence_seconds: stream_silence.map(|ms| ms as f64 / 1000.0),
        max_silence_seconds: max_silence as f64 / 1000.0,
        min_rate: s.spec.min_rate,
        max_rate: s.spec.max_rate,
        rate_records_per_second: rate,
        rate_window_full: window_full,
        baseline,
        segment_silent: (!silent_segments.is_empty()).then(|| silent_segments.join(", ")),
        segment_silence_seconds,
        segments,
        median_record_delay_seconds: median_record_delay,
        backlog_records: backlog_sum,
        active_partitions,
        records: totals.records,
        bytes: totals.bytes,
        invalid: InvalidReason::ALL.iter().map(|r| (r.as_str(), totals.invalid[r.index()])).collect(),
        gaps: totals.gaps,
        record_delay: s.record_delay.clone(),
        gap_duration: s.gap_duration.clone(),
        partitions,
    }
}

/// A history boundary is taken from the log end when a tick comes this soon after it
/// (else that hour is not known).
const BOUNDARY_TOLERANCE_MS: Millis = 60_000;

/// Keeps the stream's history current (each partition's log end at an hour boundary)
/// and judges the rate over a whole window against the band of the moment in its middle.
fn baseline_status(
    s: &mut StreamState,
    settings: &MonitorSettings,
    full_window_rate: Option<f64>,
    now: Millis,
) -> Option<BaselineStatus> {
    let spec = s.spec.baseline?;
    let hour = hour_of(now);
    let keep = usize::try_from(spec.history_ms / HOUR_MS).unwrap_or(0) + 2;
    let mut learning = false;
    for p in s.partitions.iter_mut().flatten() {
        match p.history.as_deref_mut() {
            Some(h) if h.next_hour() <= hour => {
                let fresh = now - hour * HOUR_MS <= BOUNDARY_TOLERANCE_MS;
                h.push(hour, p.log_end.filter(|_| fresh), keep);
                s.hourly_stale = true;
            }
            Some(_) => {}
            None => learning = true,
        }
    }
    if learning || s.partitions.iter().flatten().next().is_none() {
        return Some(BaselineStatus {
            state: BaselineState::Learning,
            history_hours: 0,
            band: None,
            score: None,
            anomaly: None,
        });
    }
    if s.hourly_stale {
        s.hourly = HourlyRates::sum(s.partitions.iter().flatten().filter_map(|p| p.history.as_deref()));
        s.hourly_stale = false;
    }
    let band = band_at(&s.hourly, now - settings.rate_window_ms / 2, now, &spec);
    let score = band.zip(full_window_rate).map(|(b, rate)| b.score(rate));
    Some(BaselineStatus {
        state: if band.is_some() { BaselineState::Ready } else { BaselineState::NotEnoughHistory },
        history_hours: s.hourly.known(),
        band,
        score,
        anomaly: score.and_then(|x| {
            if x < -1.0 {
                Some(Direction::Low)
            } else if x > 1.0 {
                Some(Direction::High)
            } else {
                None
            }
        }),
    })
}

/// Where a stream's baseline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    /// The history of some assigned partition is still being read from the broker.
    Learning,
    /// The history holds no past hour of the slot judged: nothing is judged.
    NotEnoughHistory,
    Ready,
}

/// Which side of its band a rate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Low,
    High,
}

/// A stream's expected rate and where its rate stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BaselineStatus {
    pub state: BaselineState,
    /// Complete past hours known (the stream's assigned partitions summed).
    pub history_hours: usize,
    /// The expected rate now and its band (records/s), when there is enough history.
    pub band: Option<Band>,
    /// Where the rate over a whole window stands in the band: 0 at the expected rate,
    /// ±1 at its edges (see [`Band::score`]).
    pub score: Option<f64>,
    /// Outside the band: `volume_anomaly`, low or high.
    pub anomaly: Option<Direction>,
}

/// Everything the monitor knows at one tick: what the alert evaluator, /metrics and
/// /api/v1/status read.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub at_ms: Millis,
    pub kafka: KafkaStatus,
    /// Why the cluster does not answer, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_error: Option<String>,
    pub streams: Vec<StreamSnapshot>,
    pub pairs: Vec<PairSnapshot>,
    pub consumers: Vec<ConsumerSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    pub name: String,
    pub topic: String,
    pub cause: Cause,
    /// The right the authorizer denies pipewatch for this stream, e.g. `Read on topic
    /// orders` (the first, in the order group, Describe, Read).
    pub access_denied: Option<String>,
    /// Absent before the first valid record.
    pub watermark_ms: Option<Millis>,
    pub freshness_lag_seconds: Option<f64>,
    /// Time since the log end of any partition last advanced; absent before the first poll.
    pub silence_seconds: Option<f64>,
    pub max_silence_seconds: f64,
    /// The configured rate bounds (records/s), if any.
    pub min_rate: Option<f64>,
    pub max_rate: Option<f64>,
    /// Records written per second (broker log ends) over the rate window.
    pub rate_records_per_second: Option<f64>,
    /// The rate covers a whole `rate_window` (rate rules and volume causes wait for it).
    pub rate_window_full: bool,
    /// The expected rate learned from the history, for streams with a baseline.
    pub baseline: Option<BaselineStatus>,
    /// The segment values that used to flow and are silent, e.g. `channel=app`.
    pub segment_silent: Option<String>,
    /// The longest silence of a segment value that used to flow (`segment_silence`).
    pub segment_silence_seconds: Option<f64>,
    pub segments: Vec<SegmentSnapshot>,
    /// Median record delay of the records read in real time over the rate window (at
    /// most the last [`RECENT_DELAYS`] of them).
    pub median_record_delay_seconds: Option<f64>,
    pub backlog_records: i64,
    /// Partitions that delivered a record within `idle_partition_timeout`.
    pub active_partitions: usize,
    /// Records read, payload bytes, invalid records by reason and gaps opened on the
    /// stream since start, partitions revoked since included (they never go back).
    pub records: u64,
    pub bytes: u64,
    pub invalid: BTreeMap<&'static str, u64>,
    pub gaps: u64,
    pub record_delay: Histogram,
    pub gap_duration: Histogram,
    pub partitions: Vec<PartitionSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionSnapshot {
    pub partition: i32,
    pub watermark_ms: Option<Millis>,
    pub last_record_ms: Option<Millis>,
    pub log_end_offset: Option<i64>,
    pub position_offset: Option<i64>,
    pub backlog_records: Option<i64>,
    pub silence_seconds: Option<f64>,
    pub active: bool,
    pub caught_up: bool,
    pub records: u64,
    pub bytes: u64,
    /// Invalid records by reason, every reason listed.
    pub invalid: BTreeMap<&'static str, u64>,
    pub gaps: u64,
    pub gap_open_since_ms: Option<Millis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairSnapshot {
    pub name: String,
    pub leader: String,
    pub follower: String,
    /// Leader watermark − follower watermark; positive: the follower is behind.
    pub sync_lag_seconds: Option<f64>,
    /// The cause of the side that is behind (see [`pair_cause`]).
    pub cause: Cause,
    /// The stream whose cause the pair carries.
    pub cause_stream: String,
}

impl StreamSnapshot {
    /// What the cause names besides its explanation: the right denied, the silent
    /// segment values, the side and band of a volume anomaly.
    pub fn cause_detail(&self) -> Option<String> {
        match self.cause {
            Cause::AccessDenied => self.access_denied.clone(),
            Cause::SegmentSilent => self.segment_silent.clone(),
            Cause::VolumeAnomaly => {
                let b = self.baseline?;
                let band = b.band?;
                Some(format!(
                    "{}: {:.2} records/s, expected {:.2}–{:.2} at this {}",
                    if b.anomaly? == Direction::Low { "low" } else { "high" },
                    self.rate_records_per_second.unwrap_or(0.0),
                    band.lower,
                    band.upper,
                    band.slot.as_str()
                ))
            }
            _ => None,
        }
    }
}

impl Snapshot {
    pub fn stream(&self, name: &str) -> Option<&StreamSnapshot> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn pair(&self, name: &str) -> Option<&PairSnapshot> {
        self.pairs.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Slot;
    use crate::diagnosis::ConsumerCause;
    use crate::extract::{EventTimeSource, TimeFormat};
    use crate::json::JsonPointer;

    const T0: Millis = 1_795_375_975_000;
    const SEC: Millis = 1000;

    fn spec(name: &str) -> StreamSpec {
        StreamSpec {
            name: name.into(),
            topic: format!("{name}-topic"),
            extractor: Extractor::new(
                EventTimeSource::Field { pointer: JsonPointer::parse("/ts").unwrap(), format: TimeFormat::EpochMillis },
                300 * SEC,
            ),
            max_silence_ms: 120 * SEC,
            max_record_delay_ms: 600 * SEC,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segments: Vec::new(),
            max_segment_values: crate::segment::DEFAULT_MAX_VALUES,
        }
    }

    fn monitor(streams: Vec<StreamSpec>, pairs: Vec<PairSpec>) -> Monitor {
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            streams,
            pairs,
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        m
    }

    fn rec(m: &mut Monitor, stream: usize, partition: i32, offset: i64, event: Millis, now: Millis) {
        let payload = format!(r#"{{"id": {offset}, "ts": {event}}}"#);
        m.record(stream, partition, offset, Some(payload.as_bytes()), None, now);
    }

    /// One stream with `n` partitions, assigned and caught up at offset 0.
    fn one_stream(n: i32) -> Monitor {
        let mut m = monitor(vec![spec("orders")], vec![]);
        for p in 0..n {
            m.assign(0, p, StartPosition::At(0), T0);
            m.log_end(0, p, 0, T0);
            m.position(0, p, 0);
        }
        m
    }

    #[test]
    fn partition_watermark_never_goes_back() {
        let mut m = one_stream(1);
        rec(&mut m, 0, 0, 0, T0 - 10 * SEC, T0);
        rec(&mut m, 0, 0, 1, T0 - 60 * SEC, T0); // out of order: fine, not a regression
        let snap = m.tick(T0);
        assert_eq!(snap.streams[0].partitions[0].watermark_ms, Some(T0 - 10 * SEC));
        assert_eq!(snap.streams[0].watermark_ms, Some(T0 - 10 * SEC));
        assert_eq!(snap.streams[0].freshness_lag_seconds, Some(10.0));
    }

    #[test]
    fn stream_watermark_is_min_of_active_partitions_and_idle_ones_leave() {
        let mut m = one_stream(2);
        rec(&mut m, 0, 0, 0, T0 - 100 * SEC, T0);
        rec(&mut m, 0, 1, 0, T0 - 5 * SEC, T0);
        assert_eq!(m.tick(T0).streams[0].watermark_ms, Some(T0 - 100 * SEC));
        // partition 0 goes idle (no record for > idle_partition_timeout), 1 keeps flowing
        let later = T0 + 301 * SEC;
        rec(&mut m, 0, 1, 1, later - 2 * SEC, later);
        assert_eq!(m.tick(later).streams[0].watermark_ms, Some(later - 2 * SEC));
        // all idle: the freshest known watermark, and freshness keeps growing
        let much_later = later + 400 * SEC;
        let s = m.tick(much_later);
        assert_eq!(s.streams[0].watermark_ms, Some(later - 2 * SEC));
        assert_eq!(s.streams[0].freshness_lag_seconds, Some(402.0));
    }

    #[test]
    fn no_watermark_before_the_first_valid_record() {
        let mut m = one_stream(1);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::NoData);
        assert_eq!(s.streams[0].watermark_ms, None);
        assert_eq!(s.streams[0].freshness_lag_seconds, None);
        m.record(0, 0, 0, Some(b"garbage"), None, T0);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::NoData);
        assert_eq!(s.streams[0].partitions[0].invalid["not_json"], 1);
    }

    #[test]
    fn invalid_records_count_by_reason_and_leave_watermarks_alone() {
        let mut m = one_stream(1);
        rec(&mut m, 0, 0, 0, T0 - SEC, T0);
        m.record(0, 0, 1, None, None, T0);
        m.record(0, 0, 2, Some(b"{oops"), None, T0);
        m.record(0, 0, 3, Some(br#"{"x":1}"#), None, T0);
        m.record(0, 0, 4, Some(br#"{"ts":"noon"}"#), None, T0);
        rec(&mut m, 0, 0, 5, T0 + 3600 * SEC, T0);
        let p = &m.tick(T0).streams[0].partitions[0];
        assert_eq!(p.watermark_ms, Some(T0 - SEC));
        assert_eq!(p.records, 6);
        for reason in InvalidReason::ALL {
            assert_eq!(p.invalid[reason.as_str()], 1, "{}", reason.as_str());
        }
    }

    #[test]
    fn sync_lag_is_leader_minus_follower() {
        let pairs = vec![PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1 }];
        let mut m = monitor(vec![spec("orders"), spec("behaviour")], pairs);
        for s in 0..2 {
            m.assign(s, 0, StartPosition::At(0), T0);
            m.log_end(s, 0, 0, T0);
            m.position(s, 0, 0);
        }
        assert_eq!(m.tick(T0).pairs[0].sync_lag_seconds, None);
        rec(&mut m, 0, 0, 0, T0, T0);
        rec(&mut m, 1, 0, 0, T0 - 8 * 3600 * SEC, T0);
        let s = m.tick(T0);
        assert_eq!(s.pairs[0].sync_lag_seconds, Some(28_800.0));
        assert_eq!(s.pairs[0].cause, Cause::EventTimeDelayed);
        assert_eq!(s.streams[1].cause, Cause::EventTimeDelayed);
        assert_eq!(s.streams[0].cause, Cause::Ok);
        // follower ahead of the leader: negative
        rec(&mut m, 1, 0, 1, T0 + 60 * SEC, T0 + 60 * SEC);
        assert_eq!(m.tick(T0 + 60 * SEC).pairs[0].sync_lag_seconds, Some(-60.0));
    }

    #[test]
    fn gap_opens_after_max_silence_and_closes_when_data_flows() {
        let mut m = one_stream(1);
        m.log_end(0, 0, 10, T0);
        rec(&mut m, 0, 0, 9, T0, T0);
        assert_eq!(m.tick(T0 + 120 * SEC).streams[0].partitions[0].gaps, 0, "not yet: silence == max_silence");
        let s = m.tick(T0 + 121 * SEC);
        assert_eq!(s.streams[0].partitions[0].gaps, 1);
        assert_eq!(s.streams[0].partitions[0].gap_open_since_ms, Some(T0));
        assert_eq!(s.streams[0].cause, Cause::ProducerSilent);
        m.log_end(0, 0, 10, T0 + 150 * SEC); // unchanged log end: the gap stays open
        assert_eq!(m.tick(T0 + 200 * SEC).streams[0].partitions[0].gaps, 1, "one gap, counted once");
        m.log_end(0, 0, 11, T0 + 300 * SEC);
        let s = m.tick(T0 + 300 * SEC);
        assert_eq!(s.streams[0].partitions[0].gap_open_since_ms, None);
        assert_eq!(s.streams[0].gap_duration.count(), 1);
        assert_eq!(s.streams[0].gap_duration.sum(), 300.0);
        assert_eq!(s.streams[0].silence_seconds, Some(0.0));
    }

    #[test]
    fn partitions_never_written_are_quiet_not_stalled() {
        let mut m = one_stream(2);
        for i in 1..=200 {
            let now = T0 + i * SEC;
            m.log_end(0, 0, i, now);
            rec(&mut m, 0, 0, i - 1, now, now);
        }
        let s = m.tick(T0 + 200 * SEC);
        assert_eq!(s.streams[0].cause, Cause::Ok, "partition 1 never received data: key skew, not a stall");
        assert_eq!(s.streams[0].partitions[1].gaps, 0);
        // a stream where nothing is written at all is a silent producer
        let mut quiet = one_stream(2);
        rec(&mut quiet, 0, 0, 0, T0, T0);
        assert_eq!(quiet.tick(T0 + 121 * SEC).streams[0].cause, Cause::ProducerSilent);
    }

    #[test]
    fn cause_precedence() {
        // two partitions: one silent, one flowing → partition_stalled
        let mut m = one_stream(2);
        rec(&mut m, 0, 0, 0, T0, T0);
        m.log_end(0, 0, 1, T0);
        m.log_end(0, 1, 1, T0 + 100 * SEC);
        m.log_end(0, 1, 2, T0 + 100 * SEC);
        rec(&mut m, 0, 1, 0, T0 + 100 * SEC, T0 + 100 * SEC);
        assert_eq!(m.tick(T0 + 150 * SEC).streams[0].cause, Cause::PartitionStalled);
        // both silent → producer_silent wins over partition_stalled
        assert_eq!(m.tick(T0 + 250 * SEC).streams[0].cause, Cause::ProducerSilent);
        // kafka unreachable wins over everything
        m.set_kafka_status(KafkaStatus::Down, None);
        assert_eq!(m.tick(T0 + 260 * SEC).streams[0].cause, Cause::KafkaUnreachable);
    }

    #[test]
    fn an_outage_of_the_cluster_is_not_counted_as_silence() {
        let mut m = one_stream(1);
        m.log_end(0, 0, 1, T0);
        rec(&mut m, 0, 0, 0, T0, T0);
        assert_eq!(m.tick(T0).streams[0].cause, Cause::Ok);
        m.set_kafka_status(KafkaStatus::Down, Some("all brokers down".into()));
        let s = m.tick(T0 + 200 * SEC);
        assert_eq!((s.streams[0].cause, s.kafka_error.as_deref()), (Cause::KafkaUnreachable, Some("all brokers down")));
        // back after 300 s, before any producer wrote again: not silent yet
        m.set_kafka_status(KafkaStatus::Up, None);
        let s = m.tick(T0 + 300 * SEC);
        assert_eq!((s.streams[0].cause, s.streams[0].silence_seconds), (Cause::Ok, Some(0.0)));
        // nothing written for max_silence after it came back: silent, as ever
        assert_eq!(m.tick(T0 + 421 * SEC).streams[0].cause, Cause::ProducerSilent);
    }

    #[test]
    fn catching_up_until_the_backlog_first_drains_and_delay_not_observed_meanwhile() {
        let mut m = monitor(vec![spec("orders")], vec![]);
        m.assign(0, 0, StartPosition::At(0), T0);
        m.log_end(0, 0, 100, T0);
        rec(&mut m, 0, 0, 0, T0 - 3600 * SEC, T0); // replaying an hour-old record
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::CatchingUp);
        assert_eq!(s.streams[0].record_delay.count(), 0);
        assert_eq!(s.streams[0].backlog_records, 99);
        m.position(0, 0, 100);
        rec(&mut m, 0, 0, 100, T0 - SEC, T0);
        let s = m.tick(T0 + SEC);
        assert_eq!(s.streams[0].cause, Cause::Ok);
        assert_eq!(s.streams[0].record_delay.count(), 1);
    }

    #[test]
    fn starting_at_the_log_end_is_caught_up_at_once() {
        let mut m = monitor(vec![spec("orders")], vec![]);
        m.assign(0, 0, StartPosition::LogEnd, T0);
        m.assign(0, 1, StartPosition::Unknown, T0);
        m.log_end(0, 0, 500, T0);
        m.log_end(0, 1, 500, T0);
        rec(&mut m, 0, 0, 500, T0, T0);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].partitions[0].backlog_records, Some(0));
        assert!(s.streams[0].partitions[0].caught_up);
        assert!(
            !s.streams[0].partitions[1].caught_up,
            "unknown start: not caught up before a record reaches the log end"
        );
        assert_eq!(s.streams[0].cause, Cause::CatchingUp);
    }

    #[test]
    fn rate_from_log_ends_and_volume_bounds() {
        let mut m = monitor(vec![StreamSpec { min_rate: Some(5.0), max_rate: Some(50.0), ..spec("orders") }], vec![]);
        m.assign(0, 0, StartPosition::At(0), T0);
        m.position(0, 0, 0);
        let mut end = 0;
        for i in 0..=60 {
            let now = T0 + i * SEC;
            end += 10;
            m.log_end(0, 0, end, now);
            m.position(0, 0, end);
            rec(&mut m, 0, 0, end - 1, now, now);
            let s = m.tick(now);
            if i >= 2 {
                assert!((s.streams[0].rate_records_per_second.unwrap() - 10.0).abs() < 1e-9);
            }
            assert_eq!(s.streams[0].cause, Cause::Ok);
        }
        // the producer slows to 1 record/s: volume_low once the window shows it
        for i in 61..=125 {
            let now = T0 + i * SEC;
            end += 1;
            m.log_end(0, 0, end, now);
            m.position(0, 0, end);
            rec(&mut m, 0, 0, end - 1, now, now);
        }
        let s = m.tick(T0 + 126 * SEC);
        assert!((s.streams[0].rate_records_per_second.unwrap() - 1.0).abs() < 0.1);
        assert_eq!(s.streams[0].cause, Cause::VolumeLow);
    }

    #[test]
    fn volume_is_judged_against_the_learned_band_and_history_is_kept_current() {
        use crate::baseline::{hour_of, PartitionHistory, HOUR_MS};
        let baseline = BaselineSpec { history_ms: 2 * 24 * HOUR_MS, sensitivity: 3.0, tolerance: 0.2, floor: 1.0 };
        let mut m = monitor(vec![StreamSpec { baseline: Some(baseline), ..spec("orders") }], vec![]);
        for p in 0..2 {
            m.assign(0, p, StartPosition::LogEnd, T0);
        }
        assert_eq!(m.take_history_requests(), vec![(0, 0), (0, 1)]);
        assert!(m.take_history_requests().is_empty(), "asked once");
        let s = m.tick(T0);
        let b = s.streams[0].baseline.unwrap();
        assert_eq!((b.state, b.band, s.streams[0].cause), (BaselineState::Learning, None, Cause::NoData));
        // two days of 10 records/s on each partition, up to the hour of T0
        let hour = hour_of(T0);
        let first = hour - 48;
        let by_time: Vec<Option<i64>> = (0..=48).map(|i| Some(1000 + i * 36_000)).collect();
        let end = 1000 + 48 * 36_000 + 20_000;
        for p in 0..2 {
            m.learned(0, p, Some(PartitionHistory::from_offsets(first, 1000, end, &by_time)));
        }
        let mut ends = [end; 2];
        let clock = std::cell::Cell::new(T0);
        let mut run = |m: &mut Monitor, rate: i64, seconds: i64| {
            let mut last = None;
            for _ in 0..seconds {
                clock.set(clock.get() + SEC);
                let now = clock.get();
                for (p, e) in ends.iter_mut().enumerate() {
                    *e += rate / 2;
                    m.log_end(0, p as i32, *e, now);
                    rec(m, 0, p as i32, *e - 1, now, now);
                }
                last = Some(m.tick(now));
            }
            last.unwrap().streams.remove(0)
        };
        let s = run(&mut m, 20, 61);
        let b = s.baseline.unwrap();
        let band = b.band.unwrap();
        assert_eq!((b.state, band.expected, band.slot), (BaselineState::Ready, 20.0, Slot::HourOfDay));
        // the first hour is not known whole: nothing before it was retained
        assert_eq!(b.history_hours, 47);
        assert_eq!((band.lower, band.upper), (16.0, 24.0));
        assert_eq!((s.cause, b.anomaly), (Cause::Ok, None));
        let s = run(&mut m, 6, 61);
        assert_eq!((s.cause, s.baseline.unwrap().anomaly), (Cause::VolumeAnomaly, Some(Direction::Low)));
        let s = run(&mut m, 60, 61);
        assert_eq!((s.cause, s.baseline.unwrap().anomaly), (Cause::VolumeAnomaly, Some(Direction::High)));
        // the next hour boundary is taken from the log end: the hour of T0 joins the history
        let to_boundary = (hour + 1) * HOUR_MS - clock.get();
        let s = run(&mut m, 20, to_boundary / SEC + 2);
        assert_eq!(s.baseline.unwrap().history_hours, 48);
        assert_eq!(s.cause, Cause::Ok);
    }

    #[test]
    fn median_record_delay_is_exact_and_forgets_records_older_than_the_window() {
        let mut m = one_stream(1);
        for i in 0..5 {
            rec(&mut m, 0, 0, i, T0 - 8 * 3600 * SEC - i * SEC, T0);
        }
        let s = m.tick(T0);
        assert_eq!(s.streams[0].median_record_delay_seconds, Some(28_802.0));
        assert_eq!(s.streams[0].cause, Cause::EventTimeDelayed);
        // the delay is fixed upstream: fresh records, and the old ones leave the window
        let later = T0 + 61 * SEC;
        rec(&mut m, 0, 0, 5, later - 2 * SEC, later);
        let s = m.tick(later);
        assert_eq!(s.streams[0].median_record_delay_seconds, Some(2.0));
    }

    #[test]
    fn one_partition_far_behind_is_event_time_delayed_at_once() {
        let mut m = one_stream(2);
        for i in 0..20 {
            rec(&mut m, 0, 0, i, T0, T0); // partition 0: real time, the majority
        }
        rec(&mut m, 0, 1, 0, T0 - 8 * 3600 * SEC, T0); // partition 1: a batch path, 8 h late
        let s = m.tick(T0);
        assert_eq!(s.streams[0].median_record_delay_seconds, Some(0.0));
        assert_eq!(s.streams[0].freshness_lag_seconds, Some(28_800.0));
        assert_eq!(s.streams[0].cause, Cause::EventTimeDelayed);
    }

    #[test]
    fn monitor_backlog_when_unread_records_grow() {
        let mut m = one_stream(1);
        rec(&mut m, 0, 0, 0, T0, T0);
        m.log_end(0, 0, 1, T0);
        m.tick(T0);
        // producers write 100/s, pipewatch reads 10/s
        for i in 1..=30 {
            let now = T0 + i * SEC;
            m.log_end(0, 0, 1 + 100 * i, now);
            rec(&mut m, 0, 0, 10 * i, now, now);
            m.tick(now);
        }
        assert_eq!(m.tick(T0 + 31 * SEC).streams[0].cause, Cause::MonitorBacklog);
    }

    #[test]
    fn revoked_partitions_leave_the_stream() {
        let mut m = one_stream(2);
        rec(&mut m, 0, 0, 0, T0 - 50 * SEC, T0);
        rec(&mut m, 0, 1, 0, T0 - 5 * SEC, T0);
        m.revoke(0, 0);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].partitions.len(), 1);
        assert_eq!(s.streams[0].watermark_ms, Some(T0 - 5 * SEC));
        // a late record of the revoked partition is ignored
        rec(&mut m, 0, 0, 1, T0 - 90 * SEC, T0);
        assert_eq!(m.tick(T0).streams[0].watermark_ms, Some(T0 - 5 * SEC));
    }

    #[test]
    fn stream_totals_keep_what_revoked_partitions_counted() {
        let mut m = one_stream(2);
        rec(&mut m, 0, 0, 0, T0 - 50 * SEC, T0);
        rec(&mut m, 0, 0, 1, T0 - 40 * SEC, T0);
        m.record(0, 0, 2, Some(b"not json"), None, T0);
        rec(&mut m, 0, 1, 0, T0 - 5 * SEC, T0);
        let before = m.tick(T0);
        let s = &before.streams[0];
        assert_eq!((s.records, s.invalid["not_json"], s.active_partitions), (4, 1, 2));
        let bytes = s.bytes;
        m.revoke(0, 0);
        rec(&mut m, 0, 1, 1, T0 - 4 * SEC, T0 + SEC);
        let after = m.tick(T0 + SEC);
        let s = &after.streams[0];
        // partition 0's series are gone, its counts stay in the stream's
        assert_eq!(s.partitions.len(), 1);
        assert_eq!((s.records, s.invalid["not_json"], s.active_partitions), (5, 1, 1));
        assert!(s.bytes > bytes);
        // reassigned, the partition counts from 0 again; the stream goes on from its total
        m.assign(0, 0, StartPosition::At(3), T0 + SEC);
        rec(&mut m, 0, 0, 3, T0 - 3 * SEC, T0 + 2 * SEC);
        let s = &m.tick(T0 + 2 * SEC).streams[0];
        assert_eq!((s.records, s.partitions[0].records), (6, 1));
        // an idle partition is not active
        let s = &m.tick(T0 + 2 * SEC + 301 * SEC).streams[0];
        assert_eq!(s.active_partitions, 0);
    }

    fn orders_and_behaviour(partitions: i32) -> Monitor {
        let pairs = vec![PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1 }];
        let mut m = monitor(vec![spec("orders"), spec("behaviour")], pairs);
        for s in 0..2 {
            for p in 0..partitions {
                m.assign(s, p, StartPosition::At(0), T0);
                m.log_end(s, p, 0, T0);
                m.position(s, p, 0);
            }
        }
        m
    }

    #[test]
    fn a_pair_takes_the_cause_of_the_side_that_is_behind() {
        let mut m = orders_and_behaviour(2);
        // both streams flow; behaviour records carry event times 8 h old (the silo)
        let mut offset = 0;
        for i in 0..=200 {
            let now = T0 + i * SEC;
            for s in 0..2 {
                for p in 0..2 {
                    // orders partition 1 stops receiving data after 10 s
                    if s == 0 && p == 1 && i > 10 {
                        continue;
                    }
                    m.log_end(s, p, offset + 1, now);
                    let event = if s == 1 { now - 8 * 3600 * SEC } else { now };
                    rec(&mut m, s, p, offset, event, now);
                }
            }
            offset += 1;
            m.tick(now);
        }
        let s = m.tick(T0 + 200 * SEC);
        assert_eq!(s.streams[0].cause, Cause::PartitionStalled);
        assert_eq!(s.streams[1].cause, Cause::EventTimeDelayed);
        assert!(s.pairs[0].sync_lag_seconds.unwrap() > 28_000.0);
        assert_eq!(s.pairs[0].cause, Cause::EventTimeDelayed, "the follower is behind: its cause explains the lag");
        assert_eq!(s.pairs[0].cause_stream, "behaviour");
    }

    #[test]
    fn a_denied_right_is_named_and_a_record_read_clears_read_on_the_topic() {
        let mut m = orders_and_behaviour(1);
        rec(&mut m, 0, 0, 0, T0, T0);
        rec(&mut m, 1, 0, 0, T0, T0);
        m.set_access_denied(Some(0), Right::ReadTopic, Some("Read on topic orders-topic".into()));
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::AccessDenied);
        assert_eq!(s.streams[0].access_denied.as_deref(), Some("Read on topic orders-topic"));
        assert_eq!(s.streams[1].cause, Cause::Ok, "only the stream named");
        // the group right covers every stream and is named first
        m.set_access_denied(None, Right::ReadGroup, Some("Read on group pw".into()));
        let s = m.tick(T0);
        assert_eq!(s.streams[0].access_denied.as_deref(), Some("Read on group pw"));
        assert_eq!(s.streams[1].access_denied.as_deref(), Some("Read on group pw"));
        m.set_access_denied(None, Right::ReadGroup, None);
        // a record read proves Read on the topic
        rec(&mut m, 0, 0, 1, T0 + SEC, T0 + SEC);
        let s = m.tick(T0 + SEC);
        assert_eq!((s.streams[0].cause, s.streams[0].access_denied.as_deref()), (Cause::Ok, None));
        // Describe stays until the source says otherwise: records do not prove it
        m.set_access_denied(Some(1), Right::DescribeTopic, Some("Describe on topic behaviour-topic".into()));
        rec(&mut m, 1, 0, 1, T0 + 2 * SEC, T0 + 2 * SEC);
        assert_eq!(m.tick(T0 + 2 * SEC).streams[1].cause, Cause::AccessDenied);
    }

    #[test]
    fn a_consumer_whose_group_may_not_be_described_is_access_denied_until_its_offsets_are_read() {
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        m.consumer_error(0, "access denied: Describe on group job".into(), true);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::AccessDenied);
        m.consumer_error(0, "timed out".into(), false);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::GroupUnknown);
        m.consumer_error(0, "access denied: Describe on group job".into(), true);
        m.committed_offsets(0, &[(0, 0, Some(0))], T0);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::Ok);
    }

    #[test]
    fn a_missing_topic_is_its_own_cause_and_recovers() {
        let mut m = monitor(vec![spec("orders")], vec![]);
        m.set_topic_missing(0, true);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::TopicMissing);
        m.set_kafka_status(KafkaStatus::Down, None);
        assert_eq!(
            m.tick(T0).streams[0].cause,
            Cause::KafkaUnreachable,
            "an unreachable cluster says nothing of topics"
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        m.set_topic_missing(0, false);
        assert_eq!(m.tick(T0 + SEC).streams[0].cause, Cause::NoData);
    }

    #[test]
    fn a_position_past_the_polled_log_end_shows_the_log_end_at_least_there() {
        let mut m = one_stream(1);
        m.log_end(0, 0, 426, T0);
        for offset in 0..431 {
            rec(&mut m, 0, 0, offset, T0, T0);
        }
        let p = &m.tick(T0).streams[0].partitions[0];
        assert_eq!(p.position_offset, Some(431));
        assert_eq!(p.log_end_offset, Some(431), "never a position past the log end");
        assert_eq!(p.backlog_records, Some(0));
    }

    fn analytics(streams: Vec<usize>) -> ConsumerSpec {
        ConsumerSpec {
            name: "analytics".into(),
            group: "analytics-job".into(),
            streams,
            max_lag_ms: 100 * SEC,
            max_stall_ms: 300 * SEC,
        }
    }

    #[test]
    fn consumer_lag_is_exact_in_seconds_and_a_stopped_consumer_is_told_from_an_idle_one() {
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::GroupUnknown, "offsets not read yet");
        // 100 records, one per second of event time
        for i in 0..100 {
            rec(&mut m, 0, 0, i, T0 + i * SEC, T0 + 100 * SEC);
        }
        m.log_end(0, 0, 100, T0 + 100 * SEC);
        m.committed_offsets(0, &[(0, 0, Some(40))], T0 + 100 * SEC);
        let now = T0 + 100 * SEC;
        let c = &m.tick(now).consumers[0];
        let p = &c.streams[0].partitions[0];
        assert_eq!(p.lag_records, Some(60));
        assert_eq!(p.lag_seconds, Some(60.0), "now − event time of the record at offset 40");
        assert_eq!(p.watermark_ms, Some(T0 + 39 * SEC), "the last record it processed");
        assert_eq!(c.cause, ConsumerCause::Ok);
        // it stops committing while the producer writes on: lag grows 1 s per second,
        // over max_lag it is lagging, still for max_stall it is stopped
        let mut end = 100;
        for dt in (10..=310).step_by(10) {
            let t = now + dt * SEC;
            rec(&mut m, 0, 0, end, t, t);
            end += 1;
            m.log_end(0, 0, end, t);
            m.committed_offsets(0, &[(0, 0, Some(40))], t);
            let c = &m.tick(t).consumers[0];
            assert_eq!(c.streams[0].partitions[0].lag_seconds, Some(60.0 + dt as f64));
            assert_eq!(c.streams[0].max_lag_seconds, Some(60.0 + dt as f64));
            let want = match dt {
                ..=40 => ConsumerCause::Ok,
                41..=300 => ConsumerCause::ConsumerLagging,
                _ => ConsumerCause::ConsumerStopped,
            };
            assert_eq!(c.cause, want, "after {dt} s");
        }
        // it catches up: nothing waits, lag 0; idle for an hour is not stopped
        let now = now + 310 * SEC;
        m.committed_offsets(0, &[(0, 0, Some(end))], now + SEC);
        let c = &m.tick(now + SEC).consumers[0];
        assert_eq!(c.streams[0].partitions[0].lag_seconds, Some(0.0));
        assert_eq!(c.cause, ConsumerCause::Ok);
        // nothing written for an hour: the producer's silence, not a stopped consumer
        m.committed_offsets(0, &[(0, 0, Some(end))], now + 3900 * SEC);
        let c = &m.tick(now + 3900 * SEC).consumers[0];
        assert_eq!((c.cause, c.stalled_seconds), (ConsumerCause::UpstreamFault, 0.0), "idle, not stopped");
        // a committed offset past the polled log end: never a negative lag
        m.committed_offsets(0, &[(0, 0, Some(end + 5))], now + 3901 * SEC);
        assert_eq!(m.tick(now + 3901 * SEC).consumers[0].streams[0].partitions[0].lag_records, Some(0));
    }

    #[test]
    fn a_consumer_is_not_blamed_for_an_upstream_fault_and_an_unknown_group_is_named() {
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        rec(&mut m, 0, 0, 0, T0, T0);
        m.log_end(0, 0, 10, T0);
        m.committed_offsets(0, &[(0, 0, None)], T0);
        let c = &m.tick(T0).consumers[0];
        assert_eq!(c.cause, ConsumerCause::GroupUnknown);
        assert!(c.error.as_deref().unwrap().contains("no committed offsets"));
        m.consumer_error(0, "GroupAuthorizationFailed".into(), false);
        assert_eq!(m.tick(T0).consumers[0].error.as_deref(), Some("GroupAuthorizationFailed"));
        // the producer goes silent: the stream's fault, not the consumer's
        m.committed_offsets(0, &[(0, 0, Some(0))], T0);
        let later = T0 + 1000 * SEC;
        m.committed_offsets(0, &[(0, 0, Some(0))], later);
        let s = m.tick(later);
        assert_eq!(s.streams[0].cause, Cause::ProducerSilent);
        assert_eq!(s.consumers[0].cause, ConsumerCause::UpstreamFault);
    }

    #[test]
    fn a_consumer_reading_behaviour_eight_hours_late_has_a_consumer_sync_lag_of_28800() {
        let mut m = orders_and_behaviour(1);
        m.watch_consumer(analytics(vec![0, 1]), T0);
        let now = T0 + 28_900 * SEC;
        // both topics in sync: a record a minute of event time, 0 … 28 860 s (482 records)
        let mut offset = 0;
        for t in (0..=28_860).step_by(60) {
            for s in 0..2 {
                rec(&mut m, s, 0, offset, T0 + t * SEC, now);
            }
            offset += 1;
        }
        for s in 0..2 {
            m.log_end(s, 0, offset, now);
        }
        let s = m.tick(now);
        assert_eq!(s.pairs[0].sync_lag_seconds, Some(0.0), "the topics are in sync");
        // the job read orders to the end, behaviour only up to the record of t = 60 s
        m.committed_offsets(0, &[(0, 0, Some(offset)), (1, 0, Some(2))], now);
        let s = m.tick(now);
        let c = &s.consumers[0];
        assert_eq!(c.pairs[0].sync_lag_seconds, Some(28_800.0), "{c:?}");
        assert_eq!(c.streams[1].partitions[0].lag_seconds, Some(28_900.0 - 120.0), "the record of t = 120 s waits");
    }

    #[test]
    fn a_committed_offset_older_than_the_index_is_fetched_once_while_it_stands_still() {
        use crate::consumer::OFFSET_INDEX_LEN;
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        let n = OFFSET_INDEX_LEN as i64 + 100;
        for i in 0..n {
            rec(&mut m, 0, 0, i, T0 + i * SEC, T0 + n * SEC);
        }
        let now = T0 + n * SEC;
        m.log_end(0, 0, n, now);
        m.committed_offsets(0, &[(0, 0, Some(10))], now);
        let p = &m.tick(now).consumers[0].streams[0].partitions[0];
        assert_eq!((p.lag_records, p.lag_seconds), (Some(n - 10), None), "older than the index: not known yet");
        let wanted = m.take_fetches(8);
        assert_eq!(wanted.len(), 1);
        assert_eq!((wanted[0].topic.as_str(), wanted[0].partition, wanted[0].offset), ("orders-topic", 0, 10));
        assert!(m.take_fetches(8).is_empty(), "asked once");
        let payloads: Vec<String> = (9..12).map(|o| format!(r#"{{"ts": {}}}"#, T0 + o * SEC)).collect();
        let records: Vec<(i64, Option<&[u8]>, Option<Millis>)> =
            payloads.iter().enumerate().map(|(k, p)| (9 + k as i64, Some(p.as_bytes()), None)).collect();
        m.fetched(&wanted[0], Fetched::Records(&records), now);
        for dt in [0, 5] {
            m.committed_offsets(0, &[(0, 0, Some(10))], now + dt * SEC);
            let p = &m.tick(now + dt * SEC).consumers[0].streams[0].partitions[0];
            assert_eq!(p.lag_seconds, Some((n - 10 + dt) as f64), "exact: now − event time of record 10");
            assert_eq!(p.watermark_ms, Some(T0 + 9 * SEC));
            assert!(m.take_fetches(8).is_empty(), "no more fetches while the offset stands still");
        }
        // the group moves (still behind the index): one new fetch; meanwhile the lag of
        // the offset before stands in (its series does not blink out)
        m.committed_offsets(0, &[(0, 0, Some(11))], now + 6 * SEC);
        let p = &m.tick(now + 6 * SEC).consumers[0].streams[0].partitions[0];
        assert_eq!(p.lag_seconds, Some((n - 10 + 6) as f64));
        let wanted = m.take_fetches(8);
        assert_eq!(wanted.iter().map(|w| w.offset).collect::<Vec<_>>(), vec![11]);
        // deleted by retention before the group read it: expired, not waited on
        m.fetched(&wanted[0], Fetched::Expired { log_start: Some(50) }, now + 6 * SEC);
        let s = m.tick(now + 7 * SEC);
        let p = &s.consumers[0].streams[0].partitions[0];
        assert!(p.expired && p.lag_seconds.is_none());
        assert_eq!(p.expired_records, Some(39), "offsets 11 … 49 were deleted before the group read them");
        assert_eq!(s.consumers[0].cause, ConsumerCause::RecordsExpired);
        assert!(m.take_fetches(8).is_empty());
        // a failed fetch is tried again after FETCH_RETRY_MS
        m.committed_offsets(0, &[(0, 0, Some(12))], now + 8 * SEC);
        m.tick(now + 8 * SEC);
        let wanted = m.take_fetches(8);
        m.fetched(&wanted[0], Fetched::Failed, now + 8 * SEC);
        m.tick(now + 9 * SEC);
        assert!(m.take_fetches(8).is_empty());
        m.tick(now + 8 * SEC + FETCH_RETRY_MS);
        assert_eq!(m.take_fetches(8).len(), 1);
    }
}
