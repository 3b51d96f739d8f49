//! Downstream consumers: the jobs that read the streams (e.g. `analytics`), watched
//! through their group's committed offsets, never joined. pipewatch reads every record
//! of the stream itself, so it knows the event time at each offset: a consumer's lag in
//! seconds is exact (now − event time of the oldest record it has not processed), not
//! interpolated from offset history.
//!
//! A watched consumer's state (its committed offsets as last read, the offsets older than
//! the offset index and what fetching their records found) and [`consumer_snapshot`],
//! its part of a tick's snapshot: lag per partition, watermarks, sync lags and cause.

use std::collections::BTreeMap;

use crate::connect::{self, ConnectSnapshot, ConnectorType};
use crate::diagnosis::{diagnose_consumer, ConsumerFacts};
use crate::offset_index::{Lookup, OffsetIndex};
use crate::snapshot::{
    ConsumerPairSnapshot, ConsumerPartitionSnapshot, ConsumerSnapshot, ConsumerStreamSnapshot, KafkaStatus,
    PartitionSnapshot, StreamSnapshot,
};
use crate::spec::{ConsumerError, ConsumerSpec, PairSpec, PartitionSlot};
use crate::stream::StreamState;
use crate::time::Millis;
use crate::watermark::{sync_lag_seconds, LowWatermark};

/// A watched consumer group: its committed offsets as last read.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerState {
    pub(crate) spec: ConsumerSpec,
    /// Committed offsets by `(stream, slot)`.
    pub(crate) committed: BTreeMap<(usize, PartitionSlot), i64>,
    /// Why the offsets could not be read (or were not read yet).
    pub(crate) error: Option<ConsumerError>,
    /// Since when records have waited with no committed offset moving.
    pub(crate) progress_at: Millis,
    /// Committed offsets older than the offset index, by `(stream, slot)`: the
    /// offset and what fetching its record found.
    pub(crate) resolved: BTreeMap<(usize, PartitionSlot), (i64, Resolution)>,
    /// Why it is watched.
    pub(crate) origin: Origin,
    /// Since when the group has had no committed offset on its streams (deleted, expired).
    pub(crate) unknown_since: Option<Millis>,
    /// When a discovered group was forgotten: no series, no reads, its slot kept.
    pub(crate) forgotten_at: Option<Millis>,
    /// At the last tick its offsets were read and at the log end on every partition of
    /// its streams: reading them again tells nothing new until a record is written.
    pub(crate) caught_up: bool,
}

/// Why a consumer is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A `[[consumer]]`.
    Listed,
    /// A Kafka Connect sink connector reads a watched stream in this group.
    Sink,
    /// `[discovery]` found the group.
    Discovery,
}

/// A committed offset older than the offset index, resolved by fetching its record.
/// While a fetch is under way the partition keeps what the previous offset's fetch
/// found (an upper bound of the lag, exact again once the answer comes), so its series
/// does not blink out each time a far-behind group commits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolution {
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
pub(crate) struct Known {
    pub(crate) at: Option<Millis>,
    pub(crate) before: Option<Millis>,
}

impl Resolution {
    /// What is known, or was known of the previous offset while this one is fetched.
    pub(crate) fn known(self) -> Option<Known> {
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
    /// The partition's slot in the stream; its topic and number.
    pub slot: PartitionSlot,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One record fetched for a [`FetchRequest`].
#[derive(Debug, Clone, Copy)]
pub struct FetchedRecord<'a> {
    pub offset: i64,
    pub payload: Option<&'a [u8]>,
    /// The Kafka timestamp.
    pub timestamp: Option<Millis>,
}

/// What fetching a [`FetchRequest`] found: the records from the one before the
/// committed offset on.
#[derive(Debug, Clone, Copy)]
pub enum Fetched<'a> {
    Records(&'a [FetchedRecord<'a>]),
    /// The offset is below the log start (given, when it could be read): deleted before
    /// the group read it.
    Expired {
        log_start: Option<i64>,
    },
    Failed,
}

impl ConsumerState {
    /// A consumer watched from `now`, its offsets not read yet.
    pub(crate) fn new(spec: ConsumerSpec, origin: Origin, now: Millis) -> Self {
        Self {
            spec,
            committed: BTreeMap::new(),
            error: Some(ConsumerError::new("offsets not read yet")),
            progress_at: now,
            resolved: BTreeMap::new(),
            origin,
            unknown_since: None,
            forgotten_at: None,
            caught_up: false,
        }
    }

    /// What is known of `offset`'s record on `(stream, slot)`; a new offset is wanted.
    pub(crate) fn resolution(&mut self, stream: usize, slot: PartitionSlot, offset: i64, now: Millis) -> Resolution {
        let entry = self.resolved.entry((stream, slot)).or_insert((offset, Resolution::Wanted { previous: None }));
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

/// One consumer at `now`: lag per partition from its committed offsets, the offset
/// index and the log ends of this tick; its watermarks, sync lags and cause.
pub(crate) fn consumer_snapshot(
    c: &mut ConsumerState,
    states: &[StreamState],
    streams: &[StreamSnapshot],
    pairs: &[PairSpec],
    kafka: KafkaStatus,
    connect: &[ConnectSnapshot],
    now: Millis,
) -> ConsumerSnapshot {
    let mut out_streams = Vec::new();
    let (mut waiting, mut lagging, mut upstream_fault, mut any_expired) = (false, false, false, false);
    // every partition's committed offset at its log end (none: not caught up)
    let mut at_end = None;
    for k in 0..c.spec.streams.len() {
        let si = c.spec.streams[k];
        let (state, snap) = (&states[si], &streams[si]);
        upstream_fault |= snap.cause.is_upstream_fault();
        let mut partitions = Vec::new();
        let (mut watermark_rule, mut max_lag, mut lag_sum) = (LowWatermark::default(), None::<f64>, 0);
        for ps in &snap.partitions {
            let index =
                state.partitions.get(ps.slot as usize).and_then(Option::as_ref).and_then(|t| t.index.as_deref());
            let p = consumer_partition(c, si, ps, index, now);
            watermark_rule.add(p.watermark_ms, ps.active);
            if let Some(l) = p.lag_seconds {
                max_lag = Some(max_lag.map_or(l, |m: f64| m.max(l)));
                lagging |= l * 1000.0 > c.spec.max_lag_ms as f64;
            }
            waiting |= p.lag_records.is_some_and(|n| n > 0);
            at_end = Some(at_end.unwrap_or(true) && p.lag_records == Some(0));
            lag_sum += p.lag_records.unwrap_or(0);
            any_expired |= p.expired;
            partitions.push(p);
        }
        out_streams.push(ConsumerStreamSnapshot {
            stream: snap.name.clone(),
            topic: snap.topic.clone(),
            watermark_ms: watermark_rule.get(),
            max_lag_seconds: max_lag,
            lag_records: lag_sum,
            partitions,
        });
    }
    c.caught_up = c.error.is_none() && at_end == Some(true);
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
            sync_lag_seconds: sync_lag_seconds(watermark_of(p.leader), watermark_of(p.follower)),
        })
        .collect();
    let group = c.spec.group.as_str();
    let is_sink = |s: &connect::ConnectorStatus| s.kind == ConnectorType::Sink && s.group.as_deref() == Some(group);
    let connector = connect::sink_issue(connect, group);
    let sink =
        connect.iter().find_map(|k| k.connectors.iter().find(|s| is_sink(s)).map(|s| format!("{}/{}", k.name, s.name)));
    let cause = diagnose_consumer(&ConsumerFacts {
        kafka_down: kafka == KafkaStatus::Down,
        access_denied: c.error.as_ref().is_some_and(|e| e.denied),
        upstream_fault,
        connector: connector.as_ref().map(|i| i.fault),
        group_unknown: c.error.is_some(),
        expired: any_expired,
        stalled: waiting && stalled_ms > c.spec.max_stall_ms,
        lagging,
    });
    ConsumerSnapshot {
        name: c.spec.name.clone(),
        group: c.spec.group.clone(),
        cause,
        error: c.error.as_ref().map(|e| e.message.clone()),
        sink,
        discovered: c.origin != Origin::Listed,
        connector_unknown: connect::unknown(connect, is_sink),
        connector,
        stalled_seconds: stalled_ms as f64 / 1000.0,
        streams: out_streams,
        pairs: out_pairs,
    }
}

/// One partition of a stream the consumer reads: its lag from the committed offset, the
/// offset index and this tick's log end; the event times of the record at the committed
/// offset and of the one before it come from the index or, older than the index, from
/// fetching them.
fn consumer_partition(
    c: &mut ConsumerState,
    stream: usize,
    ps: &PartitionSnapshot,
    index: Option<&OffsetIndex>,
    now: Millis,
) -> ConsumerPartitionSnapshot {
    let committed = c.committed.get(&(stream, ps.slot)).copied();
    let lag_records = committed.zip(ps.log_end_offset).map(|(o, end)| (end - o).max(0));
    let (mut at, mut watermark, mut expired) = (None, None, None);
    if let (Some(o), Some(ix)) = (committed, index) {
        watermark = ix.before(o);
        match ix.at_or_after(o) {
            Lookup::Found(t) => at = Some(t),
            Lookup::Older if lag_records.is_some_and(|n| n > 0) => {
                let r = c.resolution(stream, ps.slot, o, now);
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
    ConsumerPartitionSnapshot {
        topic: ps.topic.clone(),
        partition: ps.partition,
        committed_offset: committed,
        lag_records,
        lag_seconds,
        watermark_ms: watermark,
        expired: expired.is_some(),
        expired_records: expired.filter(|n| *n > 0),
    }
}
