//! A stream's state: one tracker per assigned partition (watermark, position, log end,
//! silence, gaps, counts), the rate window over the broker's log ends, recent record
//! delays, segments and the baseline; and [`stream_snapshot`], which turns it into the
//! stream's part of a tick's snapshot with its one diagnosed cause.

use std::collections::VecDeque;

use crate::baseline::{band_at, hour_of, HourlyRates, PartitionHistory, HOUR_MS};
use crate::connect::{self, ConnectSnapshot};
use crate::diagnosis::{diagnose, StreamFacts};
use crate::extract::InvalidReason;
use crate::histogram::Histogram;
use crate::histogram::{GAP_DURATION_BUCKETS, RECORD_DELAY_BUCKETS};
use crate::json::{JsonPointer, PointerSet};
use crate::offset_hint::{hint, zone_offset, Spread};
use crate::offset_index::OffsetIndex;
use crate::schema::StreamSchemas;
use crate::segment::SNAPSHOT_SEGMENT;
use crate::segment::{SegmentSnapshot, SegmentState};
use crate::snapshot::{
    BaselineState, BaselineStatus, Direction, InvalidCounts, KafkaStatus, PartitionSnapshot, StreamSnapshot,
    TopicSnapshot,
};
use crate::spec::{MonitorSettings, PartitionSlot, Right, StreamSpec};
use crate::time::Millis;
use crate::watermark::LowWatermark;

/// A stream is `monitor_backlog` when its unread backlog grew over the rate window and
/// holds more than this many seconds of traffic.
pub const BACKLOG_TOLERANCE_SECONDS: f64 = 10.0;

#[derive(Debug, Clone)]
pub(crate) struct PartitionTracker {
    /// Its topic, as an index into the stream's topics, and its number in that topic.
    pub(crate) topic: usize,
    pub(crate) partition: i32,
    /// Max valid event time seen; never goes backwards.
    pub(crate) watermark: Option<Millis>,
    /// Arrival time of the last record (valid or not).
    pub(crate) last_record: Option<Millis>,
    /// Next offset pipewatch will read.
    pub(crate) position: Option<i64>,
    /// The broker's high-watermark offset, as last polled.
    pub(crate) log_end: Option<i64>,
    /// When the log end last advanced (or was first seen).
    pub(crate) log_end_advanced: Millis,
    /// The log end advanced at least once while watched. A partition nobody writes to
    /// (key skew leaves some empty) is quiet, not stalled.
    pub(crate) written: bool,
    /// The backlog drained at least once since assignment.
    pub(crate) caught_up: bool,
    /// Reading started at the log end: the first polled log end is the position.
    pub(crate) start_at_log_end: bool,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) invalid: [u64; InvalidReason::COUNT],
    pub(crate) gaps: u64,
    /// Start of the silence of the open gap.
    pub(crate) gap_since: Option<Millis>,
    /// Offsets to event times, for the streams a consumer reads.
    pub(crate) index: Option<Box<OffsetIndex>>,
    /// Offsets at hour boundaries, for streams with a baseline.
    pub(crate) history: History,
    /// The schema id the partition waits for: its records from `position` on are read
    /// once the registry gave it (the source paused the partition there).
    pub(crate) waiting: Option<u32>,
    /// The last record read was a snapshot's copy of an existing row (the stream's
    /// `snapshot_field`): until the first change after the snapshot.
    pub(crate) in_snapshot: bool,
}

impl PartitionTracker {
    pub(crate) fn new(topic: usize, partition: i32, now: Millis, indexed: bool) -> Self {
        Self {
            topic,
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
            history: History::NotAsked,
            waiting: None,
            in_snapshot: false,
        }
    }

    pub(crate) fn check_caught_up(&mut self) {
        if let (Some(pos), Some(end)) = (self.position, self.log_end) {
            if pos >= end {
                self.caught_up = true;
            }
        }
    }

    pub(crate) fn silence_ms(&self, now: Millis) -> Option<Millis> {
        self.log_end.map(|_| (now - self.log_end_advanced).max(0))
    }

    pub(crate) fn backlog(&self) -> Option<i64> {
        match (self.log_end, self.position) {
            (Some(end), Some(pos)) => Some((end - pos).max(0)),
            _ => None,
        }
    }
}

/// Where a partition's history (for its stream's baseline) stands.
#[derive(Debug, Clone)]
pub(crate) enum History {
    /// Not asked of the source yet (or asked again after a failed read).
    NotAsked,
    /// Asked, not answered yet.
    Asked,
    Learned(Box<PartitionHistory>),
}

impl History {
    pub(crate) fn learned(&self) -> Option<&PartitionHistory> {
        match self {
            History::Learned(h) => Some(h),
            _ => None,
        }
    }

    pub(crate) fn learned_mut(&mut self) -> Option<&mut PartitionHistory> {
        match self {
            History::Learned(h) => Some(h),
            _ => None,
        }
    }
}

/// One topic of a stream: its name, whether the cluster says it exists, its partitions'
/// slots, and the counts of its partitions revoked from this process.
#[derive(Debug, Clone)]
pub(crate) struct StreamTopic {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) missing: bool,
    /// By partition number: the partition's slot, [`NO_SLOT`] where none is given yet.
    pub(crate) slots: Vec<PartitionSlot>,
    pub(crate) revoked: Counts,
    /// Its partitions, from the cluster's metadata (`None`: not listed yet).
    pub(crate) partition_count: Option<usize>,
}

/// No slot given to a partition yet.
pub(crate) const NO_SLOT: PartitionSlot = -1;

impl StreamTopic {
    pub(crate) fn new(name: &str) -> Self {
        Self { name: name.into(), missing: false, slots: Vec::new(), revoked: Counts::default(), partition_count: None }
    }
}

/// What a stream's partitions have counted: kept for the stream when a partition is
/// revoked, so the stream's totals never go back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) invalid: [u64; InvalidReason::COUNT],
    pub(crate) gaps: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, p: &PartitionTracker) {
        self.merge(&Counts { records: p.records, bytes: p.bytes, invalid: p.invalid, gaps: p.gaps });
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.gaps += other.gaps;
        for (total, n) in self.invalid.iter_mut().zip(other.invalid) {
            *total += n;
        }
    }
}

/// How many recent record delays a stream keeps for its median.
pub const RECENT_DELAYS: usize = 4096;

/// How many recent leads of records rejected as `future_timestamp` a stream keeps (for
/// the time-zone hint).
pub const RECENT_LEADS: usize = 256;

/// The last delays (or leads) of records, with their arrival times: a fixed ring of
/// [`RECENT_DELAYS`] (or [`RECENT_LEADS`]), so recording one is two stores.
#[derive(Debug, Clone)]
pub(crate) struct RecentDelays {
    /// `(arrival, delay)` in milliseconds.
    pub(crate) ring: Box<[(Millis, Millis)]>,
    pub(crate) next: usize,
    pub(crate) len: usize,
    pub(crate) scratch: Vec<Millis>,
}

impl RecentDelays {
    pub(crate) fn new() -> Self {
        Self::with_capacity(RECENT_DELAYS)
    }

    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { ring: vec![(0, 0); capacity].into_boxed_slice(), next: 0, len: 0, scratch: Vec::new() }
    }

    #[inline]
    pub(crate) fn push(&mut self, arrival: Millis, delay: Millis) {
        self.ring[self.next] = (arrival, delay);
        // a compare, not a division by the ring's length (per record)
        self.next += 1;
        if self.next == self.ring.len() {
            self.next = 0;
        }
        self.len = (self.len + 1).min(self.ring.len());
    }

    /// The median and spread of the delays of the records that arrived at or after `since`.
    pub(crate) fn spread_since(&mut self, since: Millis) -> Option<Spread> {
        self.scratch.clear();
        self.scratch.extend(self.ring[..self.len].iter().filter(|(at, _)| *at >= since).map(|(_, d)| *d));
        Spread::of(&mut self.scratch)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct WindowSample {
    pub(crate) at: Millis,
    pub(crate) log_end_sum: i64,
    pub(crate) backlog: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct StreamState {
    pub(crate) spec: StreamSpec,
    /// Its topics: the configured ones, then those a `topic_pattern` found, in the order
    /// found (none leaves: a topic deleted is `missing`).
    pub(crate) topics: Vec<StreamTopic>,
    /// By slot ([`crate::Monitor::slot`]): `(topic, partition)`.
    pub(crate) slot_owners: Vec<(usize, i32)>,
    /// A `topic_pattern` was matched against the cluster's topics and found none.
    pub(crate) unmatched: bool,
    /// `[discovery] topics` found its topic: a stream of its own, not configured.
    pub(crate) discovered: bool,
    /// Indexed by slot; `None` where not assigned to this process.
    pub(crate) partitions: Vec<Option<PartitionTracker>>,
    pub(crate) record_delay: Histogram,
    pub(crate) gap_duration: Histogram,
    pub(crate) window: VecDeque<WindowSample>,
    pub(crate) recent_delays: RecentDelays,
    /// The delays of the records rejected as `future_timestamp`: negative, how far ahead
    /// they were.
    pub(crate) recent_leads: RecentDelays,
    /// The delays (negative: leads) of the last tick, when they sat on a whole time-zone
    /// offset: a pair's sync lag on the same offset is asked about too.
    pub(crate) zone_spread: Option<Spread>,
    /// Set when the partitions whose log end is known change; the window restarts.
    pub(crate) window_stale: bool,
    pub(crate) last_watermark: Option<Millis>,
    /// A consumer reads the stream: its partitions keep an offset index.
    pub(crate) indexed: bool,
    /// What the authorizer denies, by [`Right`]: the resource, e.g. `Read on topic orders`.
    pub(crate) denied: [Option<String>; Right::COUNT],
    /// The stream's records read when Read on its topic was denied: one more proves it
    /// allowed again (checked at the tick, not per record).
    pub(crate) records_when_read_denied: u64,
    /// The assigned partitions' hourly rates summed, recomputed when `hourly_stale`.
    pub(crate) hourly: HourlyRates,
    pub(crate) hourly_stale: bool,
    /// The segments' values, and last the `snapshot_field`'s ([`SNAPSHOT_SEGMENT`]), if
    /// configured (kept out of what is shown and judged).
    pub(crate) segments: Vec<SegmentState>,
    /// Where the `snapshot_field`'s state is in `segments`.
    pub(crate) snapshot_segment: Option<usize>,
    /// With segments: the event time's field (first, when it is one) and the segments',
    /// looked up in one pass per record.
    pub(crate) fields: PointerSet,
    /// The joins this stream is a side of, each with the index of its key among the
    /// join keys (looked up after the segments in `fields`).
    pub(crate) join_roles: Vec<JoinRole>,
    /// The join keys' pointers, in `fields` after the event time's and the segments'.
    pub(crate) join_keys: Vec<JsonPointer>,
    /// A schema-registry format: the plans per schema id (`None` for JSON, and for a
    /// stream that reads neither a field nor a segment from its values).
    pub(crate) schemas: Option<StreamSchemas>,
}

/// A stream's part in a pair's join.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinRole {
    /// The pair's index (its join's).
    pub(crate) join: usize,
    pub(crate) leader: bool,
    /// Its key's index among the stream's `join_keys`.
    pub(crate) key: usize,
}

impl StreamState {
    /// A stream as configured (or discovered), nothing assigned or read yet.
    pub(crate) fn new(spec: StreamSpec) -> Self {
        StreamState {
            topics: spec.topics.iter().map(|t| StreamTopic::new(t)).collect(),
            slot_owners: Vec::new(),
            unmatched: false,
            discovered: false,
            partitions: Vec::new(),
            record_delay: Histogram::new(RECORD_DELAY_BUCKETS),
            gap_duration: Histogram::new(GAP_DURATION_BUCKETS),
            window: VecDeque::new(),
            recent_delays: RecentDelays::new(),
            recent_leads: RecentDelays::with_capacity(RECENT_LEADS),
            zone_spread: None,
            window_stale: true,
            last_watermark: None,
            indexed: false,
            denied: Default::default(),
            records_when_read_denied: 0,
            hourly: HourlyRates::default(),
            hourly_stale: true,
            segments: spec.segments.iter().map(|g| SegmentState::new(g.clone(), spec.max_segment_values)).collect(),
            snapshot_segment: spec.segments.iter().position(|g| g.name == SNAPSHOT_SEGMENT),
            fields: PointerSet::new(if spec.segments.is_empty() {
                Vec::new()
            } else {
                spec.extractor.pointer().into_iter().chain(spec.segments.iter().map(|g| &g.pointer)).cloned().collect()
            }),
            join_roles: Vec::new(),
            join_keys: Vec::new(),
            schemas: (spec.value_format.uses_registry()
                && (spec.extractor.pointer().is_some() || !spec.segments.is_empty()))
            .then(StreamSchemas::default),
            spec,
        }
    }

    /// The stream as a side of join `join` (the pair's index), reading its key at
    /// `key`: the key joins the fields looked up in one pass.
    pub(crate) fn join_side(&mut self, join: usize, leader: bool, key: &JsonPointer) {
        let at = match self.join_keys.iter().position(|k| k == key) {
            Some(at) => at,
            None => {
                self.join_keys.push(key.clone());
                self.join_keys.len() - 1
            }
        };
        self.join_roles.push(JoinRole { join, leader, key: at });
        let segments = self.spec.segments.iter().map(|g| &g.pointer);
        let fields = self.spec.extractor.pointer().into_iter().chain(segments).chain(&self.join_keys);
        self.fields = PointerSet::new(fields.cloned().collect());
    }

    /// `topic_missing`: the cluster has none of the stream's topics (or its pattern
    /// matches none).
    pub(crate) fn topic_missing(&self) -> bool {
        self.unmatched || (!self.topics.is_empty() && self.topics.iter().all(|t| t.missing))
    }

    /// The slot of partition `partition` of topic `topic` (an index into `topics`),
    /// given now if it has none: the partition's number when that slot is free (so a
    /// stream of one topic numbers its slots as its partitions), else the next past the
    /// last. Slots are never taken back.
    pub(crate) fn slot(&mut self, topic: usize, partition: i32) -> Option<PartitionSlot> {
        let p = usize::try_from(partition).ok()?;
        let t = self.topics.get_mut(topic)?;
        if let Some(&slot) = t.slots.get(p).filter(|s| **s != NO_SLOT) {
            return Some(slot);
        }
        let free = |slot: usize| self.slot_owners.get(slot).is_none_or(|o| o.1 < 0);
        let slot = if free(p) { p } else { self.slot_owners.len() };
        if self.slot_owners.len() <= slot {
            self.slot_owners.resize(slot + 1, (0, -1));
        }
        self.slot_owners[slot] = (topic, partition);
        if t.slots.len() <= p {
            t.slots.resize(p + 1, NO_SLOT);
        }
        t.slots[p] = slot as PartitionSlot;
        Some(slot as PartitionSlot)
    }

    /// The slot of a partition, if it has one.
    #[inline]
    pub(crate) fn slot_of(&self, topic: usize, partition: i32) -> Option<PartitionSlot> {
        let t = self.topics.get(topic)?;
        t.slots.get(usize::try_from(partition).ok()?).copied().filter(|s| *s != NO_SLOT)
    }
}

/// What one pass over a stream's assigned partitions finds at `now` (gaps opening as
/// their silence crosses `max_silence`): their snapshots and the stream's sums.
struct PartitionPass {
    partitions: Vec<PartitionSnapshot>,
    watermark: LowWatermark,
    /// Partitions flowing, silent (written to while watched) and quiet (never written to).
    flowing: usize,
    silent: usize,
    quiet: usize,
    catching_up: bool,
    /// Some partition is in a source connector's snapshot.
    in_snapshot: bool,
    log_end_sum: i64,
    backlog_sum: i64,
    /// The shortest silence of a partition.
    silence: Option<Millis>,
    /// The stream's counts, the revoked partitions' included; and each topic's.
    totals: Counts,
    by_topic: Vec<Counts>,
    active: usize,
}

fn partition_pass(s: &mut StreamState, settings: &MonitorSettings, now: Millis) -> PartitionPass {
    let max_silence = s.spec.max_silence_ms;
    let mut partitions = Vec::new();
    let mut watermark_rule = LowWatermark::default();
    let (mut silent, mut quiet, mut flowing, mut catching_up) = (0usize, 0usize, 0usize, false);
    let mut in_snapshot = false;
    let (mut log_end_sum, mut backlog_sum) = (0i64, 0i64);
    let mut stream_silence: Option<Millis> = None;
    let mut by_topic: Vec<Counts> = s.topics.iter().map(|t| t.revoked).collect();
    let mut active_partitions = 0;
    for (slot, p) in s.partitions.iter_mut().enumerate() {
        let Some(p) = p else { continue };
        let active = p.last_record.is_some_and(|t| now - t <= settings.idle_partition_timeout_ms);
        active_partitions += usize::from(active);
        watermark_rule.add(p.watermark, active);
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
        in_snapshot |= p.in_snapshot;
        // The log end was polled before the records read since: a position past it
        // proves the log end is at least there.
        let log_end = match (p.log_end, p.position) {
            (Some(end), Some(pos)) => Some(end.max(pos)),
            (end, _) => end,
        };
        if let Some(counts) = by_topic.get_mut(p.topic) {
            counts.add(p);
        }
        partitions.push(PartitionSnapshot {
            topic: s.topics[p.topic].name.clone(),
            partition: p.partition,
            slot: slot as PartitionSlot,
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
            invalid: InvalidCounts(p.invalid),
            gaps: p.gaps,
            gap_open_since_ms: p.gap_since,
        });
    }
    let mut totals = Counts::default();
    for counts in &by_topic {
        totals.merge(counts);
    }
    PartitionPass {
        by_topic,
        partitions,
        watermark: watermark_rule,
        flowing,
        silent,
        quiet,
        catching_up,
        in_snapshot,
        log_end_sum,
        backlog_sum,
        silence: stream_silence,
        totals,
        active: active_partitions,
    }
}

/// The rate window over the broker's log ends: the rate, whether it covers a whole
/// window, the median record delay, and whether pipewatch's own backlog grows.
struct Window {
    rate: Option<f64>,
    full: bool,
    /// The record delays of the window: median and spread.
    delays: Option<Spread>,
    backlog_growing: bool,
}

fn rate_window(
    s: &mut StreamState,
    settings: &MonitorSettings,
    log_end_sum: i64,
    backlog_sum: i64,
    now: Millis,
) -> Window {
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
    let delays = s.recent_delays.spread_since(window_start);
    let backlog_growing = elapsed_s > 0.0
        && backlog_sum > oldest.backlog
        && backlog_sum as f64 > rate.unwrap_or(0.0) * BACKLOG_TOLERANCE_SECONDS;

    Window { rate, full: window_full, delays, backlog_growing }
}

pub(crate) fn stream_snapshot(
    s: &mut StreamState,
    settings: &MonitorSettings,
    kafka: KafkaStatus,
    registry_down: Option<&str>,
    connect: &[ConnectSnapshot],
    now: Millis,
) -> StreamSnapshot {
    let max_silence = s.spec.max_silence_ms;
    let pass = partition_pass(s, settings, now);
    // The low-watermark rule; with no partition watermark (all revoked), the last known.
    let watermark = pass.watermark.get().or(s.last_watermark);
    s.last_watermark = watermark;

    let Window { rate, full: window_full, delays, backlog_growing } =
        rate_window(s, settings, pass.log_end_sum, pass.backlog_sum, now);
    let median_record_delay = delays.map(|d| d.median as f64 / 1000.0);
    // delays (or leads of records rejected as future) on a whole time-zone offset
    let leads = s.recent_leads.spread_since(now - settings.rate_window_ms);
    s.zone_spread = [delays, leads].into_iter().flatten().find(|d| zone_offset(*d).is_some());
    let timezone_hint = s.zone_spread.and_then(|d| hint(if d.median >= 0 { "behind by" } else { "ahead by" }, d));
    let freshness_lag_ms = watermark.map(|w| now - w);
    let max_delay = s.spec.max_record_delay_ms;
    let full_window_rate = window_full.then(|| rate.unwrap_or(0.0));
    let baseline = baseline_status(s, settings, full_window_rate, now);
    let segments: Vec<SegmentSnapshot> = s
        .segments
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != s.snapshot_segment)
        .map(|(_, g)| g.snapshot(max_silence, now))
        .collect();
    let silent_segments: Vec<String> = segments
        .iter()
        .flat_map(|g| g.values.iter().filter(|v| v.silent).map(move |v| format!("{}={}", g.name, v.value)))
        .collect();
    let segment_silence_seconds = segments
        .iter()
        .flat_map(|g| g.values.iter().filter(|v| v.judged).filter_map(|v| v.silence_seconds))
        .reduce(f64::max);
    // a record read since Read on the topic was denied: it is allowed now
    if pass.totals.records > s.records_when_read_denied {
        s.denied[Right::ReadTopic as usize] = None;
    }
    let access_denied = s.denied.iter().flatten().next().cloned();
    let waiting_for: Vec<u32> = {
        let mut ids: Vec<u32> = s.partitions.iter().flatten().filter_map(|p| p.waiting).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let schema_registry = registry_down.filter(|_| !waiting_for.is_empty()).map(|why| {
        let ids: Vec<String> = waiting_for.iter().map(u32::to_string).collect();
        format!("records wait for schema {}: {why}", ids.join(", "))
    });
    let names: Vec<&str> = s.topics.iter().map(|t| &*t.name).collect();
    let writes = |c: &connect::ConnectorStatus| names.iter().any(|t| c.writes(t));
    let connector = connect::producer_issue(connect, writes);
    let cause = diagnose(&StreamFacts {
        kafka_down: kafka == KafkaStatus::Down,
        access_denied: access_denied.is_some(),
        registry_unreachable: schema_registry.is_some(),
        topic_missing: s.topic_missing(),
        connector: connector.as_ref().map(|i| i.fault),
        has_watermark: watermark.is_some(),
        flowing: pass.flowing,
        silent: pass.silent,
        quiet: pass.quiet,
        catching_up: pass.catching_up,
        source_snapshot: pass.in_snapshot,
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
        topic: s.spec.topic_label(),
        discovered: s.discovered,
        topics: s
            .topics
            .iter()
            .zip(&pass.by_topic)
            .map(|(t, c)| TopicSnapshot {
                name: t.name.clone(),
                missing: t.missing,
                records: c.records,
                bytes: c.bytes,
                invalid: InvalidCounts(c.invalid),
                gaps: c.gaps,
            })
            .collect(),
        missing_topics: s.topics.iter().filter(|t| t.missing).map(|t| t.name.to_string()).collect(),
        cause,
        access_denied,
        schema_registry,
        connectors: connect::connectors_of(connect, |c| names.iter().any(|t| c.writes(t))),
        connector_unknown: connect::unknown(connect, writes),
        connector,
        waiting_for_schemas: waiting_for,
        schemas: s.schemas.as_ref().map(StreamSchemas::in_use).unwrap_or_default(),
        schema_changes: s.schemas.as_ref().map_or(0, StreamSchemas::changes),
        watermark_ms: watermark,
        freshness_lag_seconds: freshness_lag_ms.map(|lag| lag as f64 / 1000.0),
        silence_seconds: pass.silence.map(|ms| ms as f64 / 1000.0),
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
        timezone_hint,
        backlog_records: pass.backlog_sum,
        active_partitions: pass.active,
        records: pass.totals.records,
        bytes: pass.totals.bytes,
        invalid: InvalidCounts(pass.totals.invalid),
        gaps: pass.totals.gaps,
        record_delay: s.record_delay.clone(),
        gap_duration: s.gap_duration.clone(),
        partitions: pass.partitions,
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
        match p.history.learned_mut() {
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
        s.hourly = HourlyRates::sum(s.partitions.iter().flatten().filter_map(|p| p.history.learned()));
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
