//! The monitor: every stream, pair and consumer, fed by the source and turned into a
//! [`Snapshot`] each tick ([`Monitor::tick`]). Pure: every method takes `now`. A
//! stream's state and its snapshot live in [`crate::stream`], a consumer's in
//! [`crate::consumer`]; what the causes mean in [`crate::diagnosis`].
//!
//! The hot path is [`Monitor::record`]: extract the event time, update the partition's
//! tracker and the stream's record-delay histogram. The monitor is owned by one thread
//! (the source's), so nothing here locks.

use std::collections::BTreeMap;

use crate::baseline::PartitionHistory;
use crate::connect::ConnectSnapshot;
use crate::consumer::{consumer_snapshot, ConsumerState, FetchRequest, Fetched, Known, Origin, Resolution};
use crate::diagnosis::{pair_cause, Cause, PairCause, Side};
use crate::discovery::Discovery;
use crate::extract::InvalidReason;
use crate::join::{
    key_hash, FollowerPayload, FollowerReader, FollowerRecord, JoinPartitions, JoinState, MAX_JOIN_KEYS,
    MAX_JOIN_SEGMENTS,
};
use crate::json::{JsonPointer, Lookup as Found, MAX_SET};
use crate::offset_hint::{hint, on_offset, Spread};
use crate::offset_index::OffsetIndex;
use crate::schema::{Read, Registry, SchemaFetch, StreamSchemas};
use crate::segment::{is_snapshot, SegmentState};
use crate::snapshot::{KafkaStatus, PairSnapshot, RegistrySnapshot, Snapshot, StreamSnapshot};
use crate::spec::{
    Committed, ConsumerError, ConsumerSpec, MonitorSettings, PairSpec, PartitionSlot, Right, StartPosition, StreamSpec,
};
use crate::stream::{stream_snapshot, History, PartitionTracker, StreamState, StreamTopic};
use crate::time::Millis;
use crate::topic_discovery::TopicDiscovery;
use crate::watermark::sync_lag_seconds;

/// How a join's own consumer's records of a schema-registry follower are read.
#[derive(Debug, Clone)]
struct CopySchemas {
    schemas: StreamSchemas,
    /// The follower's key: the one join key read.
    key: [JsonPointer; 1],
}

/// The monitor: all streams and pairs, fed by the source, read through snapshots.
#[derive(Debug, Clone)]
pub struct Monitor {
    settings: MonitorSettings,
    pub(crate) streams: Vec<StreamState>,
    pairs: Vec<PairSpec>,
    /// Each pair's join, if it has one (by the pair's index).
    joins: Vec<Option<JoinState>>,
    /// `partitions = "all"` with a follower in a schema-registry format, by the pair's
    /// index: the plans the join's copy of the follower is read with (the stream's own
    /// count the stream's records).
    copy_schemas: Vec<Option<CopySchemas>>,
    pub(crate) consumers: Vec<ConsumerState>,
    kafka: KafkaStatus,
    kafka_error: Option<String>,
    /// The cluster did not answer at the last tick.
    was_down: bool,
    /// The schemas the registry gave, and whether it answers.
    registry: Registry,
    /// A stream reads a schema-registry format.
    uses_registry: bool,
    /// The Kafka Connect clusters as last polled.
    connect: Vec<ConnectSnapshot>,
    /// A consumer's committed offsets changed since the offset indexes were trimmed.
    offsets_moved: bool,
    /// `[discovery]` of consumer groups, when on.
    pub(crate) discovery: Option<Discovery>,
    /// `[discovery] topics`, when on.
    pub(crate) topic_discovery: Option<TopicDiscovery>,
}

/// An assigned partition: its stream and slot, its topic (an index into the stream's
/// topics, [`Monitor::topics`]) and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRef {
    pub stream: usize,
    pub slot: PartitionSlot,
    pub topic: usize,
    pub partition: i32,
}

/// What became of one record handed to [`Monitor::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Read (or ignored: a partition not assigned).
    Read,
    /// Its schema id is not known yet (or an earlier record of its partition waits for
    /// one): the record was not read. The source holds it, in order, asks the registry
    /// for the schema and hands it in again once [`Monitor::schema_fetched`] says its
    /// partition is ready.
    Wait(u32),
}

/// Whether a process's partitions of a pair's two streams are co-partitioned: it holds
/// every partition of both (one replica), or every topic of both has the same partition
/// count (from the metadata) and the process the same partition numbers of each (the
/// range assignor's share). `None` while a count or an assignment is not known.
fn co_partitioned(leader: &StreamState, follower: &StreamState) -> Option<bool> {
    let mut shares = Vec::new();
    for s in [leader, follower] {
        for (t, topic) in s.topics.iter().enumerate() {
            let mut assigned: Vec<i32> =
                s.partitions.iter().flatten().filter(|p| p.topic == t).map(|p| p.partition).collect();
            assigned.sort_unstable();
            shares.push((topic.partition_count?, assigned));
        }
    }
    if shares.iter().all(|(_, a)| a.is_empty()) {
        return None;
    }
    // every partition of both here (one replica): any keys are
    if shares.iter().all(|(count, a)| a.len() == *count) {
        return Some(true);
    }
    Some(shares.windows(2).all(|w| w[0] == w[1]))
}

impl Monitor {
    pub fn new(settings: MonitorSettings, streams: Vec<StreamSpec>, pairs: Vec<PairSpec>) -> Self {
        let mut streams = streams.into_iter().map(StreamState::new).collect::<Vec<StreamState>>();
        let joins = pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                let join = pair.join.clone()?;
                streams[pair.leader].join_side(i, true, &join.leader_key);
                // `all`: the join's own consumer reads the follower's keys
                if join.partitions == JoinPartitions::CoPartitioned {
                    streams[pair.follower].join_side(i, false, &join.follower_key);
                }
                Some(JoinState::new(join))
            })
            .collect();
        let copy_schemas = pairs
            .iter()
            .zip(&joins)
            .map(|(pair, join): (_, &Option<JoinState>)| {
                let join = join.as_ref().filter(|j| j.spec.partitions == JoinPartitions::All)?;
                streams[pair.follower]
                    .schemas
                    .is_some()
                    .then(|| CopySchemas { schemas: StreamSchemas::default(), key: [join.spec.follower_key.clone()] })
            })
            .collect();
        Self {
            joins,
            copy_schemas,
            settings,
            uses_registry: streams.iter().any(|s| s.schemas.is_some()),
            connect: Vec::new(),
            offsets_moved: false,
            discovery: None,
            topic_discovery: None,
            streams,
            pairs,
            consumers: Vec::new(),
            kafka: KafkaStatus::Unknown,
            kafka_error: None,
            was_down: false,
            registry: Registry::default(),
        }
    }

    pub fn streams(&self) -> impl Iterator<Item = &StreamSpec> {
        self.streams.iter().map(|s| &s.spec)
    }

    /// The partitions assigned to this replica.
    pub fn assigned(&self) -> impl Iterator<Item = PartitionRef> + '_ {
        self.streams.iter().enumerate().flat_map(|(s, st)| {
            st.partitions.iter().enumerate().filter_map(move |(slot, p)| {
                p.as_ref().map(|p| PartitionRef {
                    stream: s,
                    slot: slot as PartitionSlot,
                    topic: p.topic,
                    partition: p.partition,
                })
            })
        })
    }

    /// A topic the stream reads from now on (one its `topic_pattern` matched): its index
    /// among the stream's topics, the same when it is one already.
    pub fn add_topic(&mut self, stream: usize, name: &str) -> Option<usize> {
        let s = self.streams.get_mut(stream)?;
        Some(match s.topics.iter().position(|t| &*t.name == name) {
            Some(i) => i,
            None => {
                s.topics.push(StreamTopic::new(name));
                s.topics.len() - 1
            }
        })
    }

    /// The stream's topics, by index, as it reads them now.
    pub fn topics(&self, stream: usize) -> impl Iterator<Item = &str> + '_ {
        self.streams.get(stream).into_iter().flat_map(|s| s.topics.iter().map(|t| &*t.name))
    }

    /// The slot of a partition of the stream's topic `topic` (an index into its topics),
    /// given now when it has none ([`PartitionSlot`]); `None` for a topic the stream does not read.
    pub fn slot(&mut self, stream: usize, topic: usize, partition: i32) -> Option<PartitionSlot> {
        self.streams.get_mut(stream)?.slot(topic, partition)
    }

    /// The slot of a partition, if it has one (the per-record path: two indexes).
    #[inline]
    pub fn slot_of(&self, stream: usize, topic: usize, partition: i32) -> Option<PartitionSlot> {
        self.streams.get(stream)?.slot_of(topic, partition)
    }

    /// Watches a downstream consumer: the partitions of its streams keep an offset index
    /// from now on.
    pub fn watch_consumer(&mut self, spec: ConsumerSpec, now: Millis) {
        self.index_streams(&spec.streams);
        self.consumers.push(ConsumerState::new(spec, Origin::Listed, now));
    }

    /// A consumer reads these streams: their partitions keep an offset index.
    pub(crate) fn index_streams(&mut self, streams: &[usize]) {
        for &i in streams {
            if let Some(s) = self.streams.get_mut(i) {
                s.indexed = true;
                for p in s.partitions.iter_mut().flatten() {
                    p.index.get_or_insert_with(|| Box::new(OffsetIndex::new()));
                }
            }
        }
    }

    /// Kafka Connect sink connectors (on clusters that answer) that read a watched
    /// stream and whose group is not watched yet: each as the consumer to watch, named
    /// by its connector (`connect/connector` where a consumer already has that name),
    /// with the default `max_lag` and `max_stall`. A configured `[[consumer]]` with the
    /// same group is the same consumer: not returned.
    pub fn unwatched_sinks(&self) -> Vec<ConsumerSpec> {
        let mut out: Vec<ConsumerSpec> = Vec::new();
        for k in self.connect.iter().filter(|k| k.answers()) {
            for c in k.connectors.iter().filter(|c| c.kind == crate::connect::ConnectorType::Sink) {
                let Some(group) = &c.group else { continue };
                let watched =
                    |g: &str| self.consumers.iter().any(|w| w.spec.group == g) || out.iter().any(|o| o.group == g);
                let streams: Vec<usize> = self
                    .streams
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.topics.iter().any(|t| c.reads(&t.name)))
                    .map(|(i, _)| i)
                    .collect();
                if streams.is_empty() || watched(group) {
                    continue;
                }
                let taken =
                    |n: &str| self.consumers.iter().any(|w| w.spec.name == n) || out.iter().any(|o| o.name == n);
                let name = if taken(&c.name) { format!("{}/{}", k.name, c.name) } else { c.name.clone() };
                out.push(ConsumerSpec {
                    name,
                    group: group.clone(),
                    streams,
                    max_lag_ms: crate::spec::DEFAULT_MAX_LAG_MS,
                    max_stall_ms: crate::spec::DEFAULT_MAX_STALL_MS,
                });
            }
        }
        out
    }

    /// Watches a sink connector's group found by [`Monitor::unwatched_sinks`]: a
    /// consumer like any other, marked as found, not listed.
    pub fn watch_sink(&mut self, spec: ConsumerSpec, now: Millis) {
        self.watch_consumer(spec, now);
        if let Some(c) = self.consumers.last_mut() {
            c.origin = Origin::Sink;
        }
    }

    pub fn consumers(&self) -> impl Iterator<Item = &ConsumerSpec> {
        self.consumers.iter().map(|c| &c.spec)
    }

    /// The consumers whose groups are read now (a forgotten one is not): its index, its
    /// spec, and whether `[discovery]` found it.
    pub fn read_groups(&self) -> impl Iterator<Item = (usize, &ConsumerSpec, bool)> + '_ {
        self.consumers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.forgotten_at.is_none())
            .map(|(i, c)| (i, &c.spec, c.origin == Origin::Discovery))
    }

    /// The discovered consumers caught up at the last tick (their offsets at the log end
    /// of every partition they read): the source need not read them while no record is
    /// written.
    pub fn caught_up_groups(&self) -> Vec<usize> {
        let discovered = |c: &&ConsumerState| c.origin == Origin::Discovery && c.forgotten_at.is_none();
        self.consumers.iter().enumerate().filter(|(_, c)| discovered(c) && c.caught_up).map(|(i, _)| i).collect()
    }

    /// The committed offsets of a consumer's group, as just read. Any offset that moved
    /// counts as progress.
    pub fn committed_offsets(&mut self, consumer: usize, offsets: &[Committed], now: Millis) {
        let Some(c) = self.consumers.get_mut(consumer).filter(|c| c.forgotten_at.is_none()) else {
            return;
        };
        let committed: BTreeMap<(usize, i32), i64> =
            offsets.iter().filter_map(|c| c.offset.filter(|o| *o >= 0).map(|o| ((c.stream, c.slot), o))).collect();
        if committed != c.committed {
            c.progress_at = now;
            self.offsets_moved = true;
        }
        c.error =
            committed.is_empty().then(|| ConsumerError::new("the group has no committed offsets for these topics"));
        c.unknown_since = if committed.is_empty() { c.unknown_since.or(Some(now)) } else { None };
        c.committed = committed;
    }

    /// Each offset index forgets the records every consumer that reads its partition has
    /// processed, but the last one (consumers whose offsets are not known do not count).
    fn trim_indexes(&mut self) {
        for (si, s) in self.streams.iter_mut().enumerate().filter(|(_, s)| s.indexed) {
            let mut lowest: Vec<Option<i64>> = vec![None; s.partitions.len()];
            let known = self.consumers.iter().filter(|c| c.error.is_none() && c.spec.streams.contains(&si));
            for c in known {
                for (&(_, p), &o) in c.committed.range((si, i32::MIN)..=(si, i32::MAX)) {
                    if let Some(l) = usize::try_from(p).ok().and_then(|p| lowest.get_mut(p)) {
                        *l = Some(l.map_or(o, |l| l.min(o)));
                    }
                }
            }
            for (p, low) in s.partitions.iter_mut().zip(lowest) {
                if let Some(index) = p.as_mut().and_then(|p| p.index.as_deref_mut()) {
                    index.keep_from(low);
                }
            }
        }
    }

    /// Up to `max` records to fetch: committed offsets older than the offset index, each
    /// asked for once while it stands still (a failed fetch again after [`crate::consumer::FETCH_RETRY_MS`]).
    pub fn take_fetches(&mut self, max: usize) -> Vec<FetchRequest> {
        let mut out = Vec::new();
        for (ci, c) in self.consumers.iter_mut().enumerate() {
            for (&(stream, slot), (offset, r)) in c.resolved.iter_mut() {
                if out.len() >= max {
                    return out;
                }
                if let Resolution::Wanted { previous } = *r {
                    let s = &self.streams[stream];
                    let Some(&(topic, partition)) = s.slot_owners.get(slot as usize) else { continue };
                    *r = Resolution::Requested { previous };
                    let topic = s.topics[topic].name.to_string();
                    out.push(FetchRequest { consumer: ci, stream, slot, topic, partition, offset: *offset });
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
        let Some(entry) = c.resolved.get_mut(&(request.stream, request.slot)) else {
            return;
        };
        if entry.0 != request.offset {
            return;
        }
        let stream = &mut self.streams[request.stream];
        let registry = &self.registry;
        entry.1 = match found {
            Fetched::Records(records) => {
                let times: Vec<(i64, Millis)> = records
                    .iter()
                    .filter_map(|r| {
                        let t = match &mut stream.schemas {
                            Some(schemas) => {
                                schemas.time_of(registry, &stream.spec, &stream.join_keys, r.payload, r.timestamp, now)
                            }
                            None => stream.spec.extractor.extract(r.payload, r.timestamp, now).ok(),
                        };
                        t.map(|t| (r.offset, t))
                    })
                    .collect();
                Resolution::Known(Known {
                    at: times.iter().find(|(o, _)| *o >= request.offset).map(|(_, t)| *t),
                    before: times.iter().rev().find(|(o, _)| *o < request.offset).map(|(_, t)| *t),
                })
            }
            Fetched::Expired { log_start } => Resolution::Expired { log_start },
            Fetched::Failed => Resolution::Failed(now),
        };
    }

    /// The consumer's offsets could not be read, and why.
    pub fn consumer_error(&mut self, consumer: usize, error: ConsumerError) {
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.error = Some(error);
        }
    }

    /// The authorizer denies (`Some(resource)`, e.g. `Read on topic orders`) or allows
    /// (`None`) a right for `stream`, or for every stream when `stream` is `None` (Read
    /// on pipewatch's own group).
    pub fn set_access_denied(&mut self, stream: Option<usize>, right: Right, resource: Option<String>) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if stream.is_none_or(|k| k == i) {
                if right == Right::ReadTopic && resource.is_some() {
                    s.records_when_read_denied = s.partitions.iter().flatten().map(|p| p.records).sum::<u64>()
                        + s.topics.iter().map(|t| t.revoked.records).sum::<u64>();
                }
                s.denied[right as usize] = resource.clone();
            }
        }
    }

    /// Whether the cluster answers, and when it does not, why (e.g. the authentication
    /// failure), as the status shows it.
    /// The Kafka Connect clusters as the last poll of each found them (every
    /// `[[connect]]`, in config order).
    pub fn set_connect(&mut self, clusters: Vec<ConnectSnapshot>) {
        self.connect = clusters;
    }

    pub fn set_kafka_status(&mut self, status: KafkaStatus, error: Option<String>) {
        self.kafka = status;
        self.kafka_error = error;
    }

    /// How the joins with `partitions = "all"` read their follower's records, for the
    /// join's own consumer: each reads every partition of `topics`.
    pub fn follower_readers(&self) -> Vec<FollowerReader> {
        self.pairs
            .iter()
            .zip(&self.joins)
            .enumerate()
            .filter_map(|(i, (pair, join))| {
                let join = join.as_ref().filter(|j| j.spec.partitions == JoinPartitions::All)?;
                let follower = &self.streams[pair.follower];
                let topics = follower.topics.iter().map(|t| t.name.to_string()).collect();
                let encoded = follower.schemas.is_some();
                Some(FollowerReader::new(i, topics, follower.spec.extractor.clone(), &join.spec.follower_key, encoded))
            })
            .collect()
    }

    /// Follower records of join `join` (the pair's index) its own consumer read, at `at`.
    pub fn follower_records(&mut self, join: usize, records: &[FollowerRecord], at: Millis) {
        if let Some(j) = self.joins.get_mut(join).and_then(Option::as_mut) {
            j.copied(records, at);
        }
    }

    /// Follower records of join `join` in a schema-registry format, as its own consumer
    /// read them (`FollowerReader::encoded`): each decoded with the join's own plans of
    /// the writer's schema, then applied as [`Self::follower_records`]'s are (one without
    /// a valid event time is not: the follower's stream counts it). `Err((i, id))`: the
    /// `i`-th record's schema `id` is not known yet: it and the ones after are to be given
    /// again once it is (in order, so that no key is lost).
    pub fn follower_payloads(
        &mut self,
        join: usize,
        records: &[FollowerPayload],
        at: Millis,
    ) -> Result<(), (usize, u32)> {
        let (Some(Some(j)), Some(Some(copy)), Some(pair)) =
            (self.joins.get_mut(join), self.copy_schemas.get_mut(join), self.pairs.get(join))
        else {
            return Ok(());
        };
        let spec = &self.streams[pair.follower].spec;
        let mut read = Vec::with_capacity(records.len());
        let mut waits = Ok(());
        for (i, r) in records.iter().enumerate() {
            let mut key = [None];
            let payload = r.payload.as_deref();
            match copy.schemas.read(
                &self.registry,
                spec,
                payload,
                r.timestamp,
                r.arrival,
                &mut [],
                false,
                &copy.key,
                &mut key,
            ) {
                Read::Wait(id) => {
                    waits = Err((i, id));
                    break;
                }
                Read::Time(Ok(t), _) => read.push(FollowerRecord { slot: r.slot, t, key: key[0] }),
                Read::Time(Err(_), _) => {}
            }
        }
        j.copied(&read, at);
        waits
    }

    /// Some join reads co-partitioned topics: the partition counts are wanted.
    pub fn has_co_partitioned_join(&self) -> bool {
        self.joins.iter().flatten().any(|j| j.spec.partitions == JoinPartitions::CoPartitioned)
    }

    /// How many partitions a topic of the stream has (from the cluster's metadata): what
    /// a `co_partitioned` join compares.
    pub fn set_partition_count(&mut self, stream: usize, topic: usize, count: usize) {
        if let Some(t) = self.streams.get_mut(stream).and_then(|s| s.topics.get_mut(topic)) {
            t.partition_count = Some(count);
        }
    }

    /// Whether the cluster says a topic of the stream (by index) exists, as the log-end
    /// poller sees it. The stream is `topic_missing` when none of its topics exists.
    pub fn set_topic_missing(&mut self, stream: usize, topic: usize, missing: bool) {
        if let Some(t) = self.streams.get_mut(stream).and_then(|s| s.topics.get_mut(topic)) {
            t.missing = missing;
        }
    }

    /// Whether the stream's `topic_pattern` matched none of the cluster's topics at the
    /// last listing: it is `topic_missing` then.
    pub fn set_unmatched(&mut self, stream: usize, unmatched: bool) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.unmatched = unmatched;
        }
    }

    /// Partition `partition` of the stream's topic `topic` (an index into its topics) was
    /// assigned to this process, reading from `start`: its slot, `None` for a topic the
    /// stream does not read.
    pub fn assign_partition(
        &mut self,
        stream: usize,
        topic: usize,
        partition: i32,
        start: StartPosition,
        now: Millis,
    ) -> Option<PartitionSlot> {
        let s = self.streams.get_mut(stream)?;
        let slot = s.slot(topic, partition)?;
        let idx = slot as usize;
        if s.partitions.len() <= idx {
            s.partitions.resize(idx + 1, None);
        }
        if s.partitions[idx].is_none() {
            let mut p = PartitionTracker::new(topic, partition, now, s.indexed);
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
        Some(slot)
    }

    /// A partition was taken away (rebalance): its series go with it.
    pub fn revoke(&mut self, stream: usize, slot: PartitionSlot) {
        let s = &mut self.streams[stream];
        if let Some(slot) = usize::try_from(slot).ok().and_then(|i| s.partitions.get_mut(i)) {
            if let Some(p) = slot.take() {
                s.topics[p.topic].revoked.add(&p);
                s.window_stale = true;
                s.hourly_stale = true;
            }
        }
    }

    #[inline]
    fn tracker(&mut self, stream: usize, slot: PartitionSlot) -> Option<&mut PartitionTracker> {
        let i = usize::try_from(slot).ok()?;
        self.streams.get_mut(stream)?.partitions.get_mut(i)?.as_mut()
    }

    /// One record read from a partition: the hot path. Records of partitions not
    /// assigned (late deliveries after a revoke), or waiting for a schema, are ignored.
    #[inline]
    pub fn record(
        &mut self,
        stream: usize,
        slot: PartitionSlot,
        offset: i64,
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        arrival: Millis,
    ) -> RecordOutcome {
        let Some(s) = self.streams.get_mut(stream) else {
            return RecordOutcome::Read;
        };
        let Some(p) = usize::try_from(slot).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut) else {
            return RecordOutcome::Read;
        };
        if let Some(id) = p.waiting {
            // behind a record that waits: it waits too (the source holds it, in order)
            return RecordOutcome::Wait(id);
        }
        if let Some(i) = s.snapshot_segment {
            // read again below, unless the record's fields are not read at all
            s.segments[i].forget_last();
        }
        // the join keys' hashes, read with the time and the segments
        let mut keys = [None; MAX_JOIN_KEYS];
        let (time, written) = match &mut s.schemas {
            // a schema-registry format: the schema id first (the record may wait for it)
            Some(schemas) => {
                match schemas.read(
                    &self.registry,
                    &s.spec,
                    payload,
                    kafka_timestamp,
                    arrival,
                    &mut s.segments,
                    p.caught_up,
                    &s.join_keys,
                    &mut keys,
                ) {
                    Read::Wait(id) => {
                        p.waiting = Some(id);
                        return RecordOutcome::Wait(id);
                    }
                    Read::Time(time, written) => (time, Some(written)),
                }
            }
            None => match payload {
                // the event time and the segments in one pass
                Some(doc) if !s.fields.is_empty() && !doc.is_empty() => {
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
                    let found_keys = values.get(s.segments.len()..).unwrap_or_default();
                    for (key, found) in keys.iter_mut().zip(found_keys) {
                        *key = key_hash(*found);
                    }
                    (time, None)
                }
                _ => (s.spec.extractor.extract(payload, kafka_timestamp, arrival), None),
            },
        };
        if let Ok(t) = time {
            for role in &s.join_roles {
                let (Some(join), Some(key)) =
                    (self.joins.get_mut(role.join).and_then(Option::as_mut), keys.get(role.key).copied().flatten())
                else {
                    continue;
                };
                if role.leader {
                    let mut values = [u16::MAX; MAX_JOIN_SEGMENTS];
                    for (v, (segment, _)) in values.iter_mut().zip(&join.spec.segments) {
                        if let Some(i) = s.segments.get(*segment).and_then(|g| g.last_index()) {
                            *v = u16::try_from(i).unwrap_or(u16::MAX);
                        }
                    }
                    join.leader(key, t, values, arrival);
                } else {
                    join.follower(slot as usize, key, t);
                }
            }
        }
        // a snapshot's copy of an existing row: its event time is old by design
        let snapshot = s.snapshot_segment.and_then(|i| s.segments[i].last_value()).is_some_and(is_snapshot);
        if s.snapshot_segment.is_some() {
            // until the first change after it: the rows it copied are all there is
            p.in_snapshot = snapshot;
        }
        p.records += 1;
        p.bytes += payload.map_or(0, |b| b.len() as u64);
        p.last_record = Some(arrival);
        p.position = Some(p.position.map_or(offset + 1, |pos| pos.max(offset + 1)));
        match time {
            Ok(t) => {
                p.watermark = Some(p.watermark.map_or(t, |w| w.max(t)));
                if let Some(index) = &mut p.index {
                    index.push(offset, t);
                }
                if p.caught_up && !snapshot {
                    s.record_delay.observe((arrival - t) as f64 / 1000.0);
                    s.recent_delays.push(arrival, arrival - t);
                }
            }
            Err(reason) => {
                p.invalid[reason.index()] += 1;
                // how far ahead, for the time-zone hint (the error path only)
                if reason == InvalidReason::FutureTimestamp {
                    let written = written.unwrap_or_else(|| s.spec.extractor.written_time(payload, kafka_timestamp));
                    if let Some(t) = written {
                        s.recent_leads.push(arrival, arrival - t);
                    }
                }
            }
        }
        p.check_caught_up();
        RecordOutcome::Read
    }

    /// The registry's answer for a schema id a record waits for. Once the id is known
    /// (found, or not in the registry) the partitions that wait for it are returned:
    /// their held records can be handed in again; while the registry does not answer,
    /// none.
    pub fn schema_fetched(&mut self, id: u32, fetch: SchemaFetch) -> Vec<(usize, PartitionSlot)> {
        if !self.registry.answer(id, fetch) {
            return Vec::new();
        }
        let mut resume = Vec::new();
        for (s, st) in self.streams.iter_mut().enumerate() {
            for (slot, p) in st.partitions.iter_mut().enumerate() {
                if let Some(p) = p.as_mut().filter(|p| p.waiting == Some(id)) {
                    p.waiting = None;
                    resume.push((s, slot as PartitionSlot));
                }
            }
        }
        resume
    }

    /// Whether any partition still waits for schema `id` (the registry did not answer).
    pub fn waiting_for(&self, id: u32) -> bool {
        self.streams.iter().flat_map(|s| s.partitions.iter().flatten()).any(|p| p.waiting == Some(id))
    }

    /// Whether a partition waits for a schema (the source holds its records).
    pub fn waiting(&self, stream: usize, slot: PartitionSlot) -> bool {
        let i = usize::try_from(slot).ok();
        self.streams.get(stream).and_then(|s| s.partitions.get(i?)?.as_ref()).is_some_and(|p| p.waiting.is_some())
    }

    /// The consumer's own position for a partition (next offset to read), e.g. after
    /// an offset reset; positions only move forward here.
    pub fn position(&mut self, stream: usize, slot: PartitionSlot, position: i64) {
        if let Some(p) = self.tracker(stream, slot) {
            if p.position.is_none_or(|pos| position > pos) {
                p.position = Some(position);
            }
            p.check_caught_up();
        }
    }

    /// A polled log-end (high-watermark) offset of a partition.
    pub fn log_end(&mut self, stream: usize, slot: PartitionSlot, log_end: i64, now: Millis) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(p) = usize::try_from(slot).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut) else {
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
    pub fn take_history_requests(&mut self) -> Vec<PartitionRef> {
        let mut out = Vec::new();
        for (i, s) in self.streams.iter_mut().enumerate().filter(|(_, s)| s.spec.baseline.is_some()) {
            for (slot, p) in s.partitions.iter_mut().enumerate() {
                if let Some(p) = p.as_mut().filter(|p| matches!(p.history, History::NotAsked)) {
                    p.history = History::Asked;
                    out.push(PartitionRef {
                        stream: i,
                        slot: slot as PartitionSlot,
                        topic: p.topic,
                        partition: p.partition,
                    });
                }
            }
        }
        out
    }

    /// A partition's history as learned from the broker (see
    /// [`PartitionHistory::from_offsets`]); `None`: it could not be read, ask again.
    pub fn learned(&mut self, stream: usize, slot: PartitionSlot, history: Option<PartitionHistory>) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(p) = usize::try_from(slot).ok().and_then(|i| s.partitions.get_mut(i)).and_then(Option::as_mut) else {
            return;
        };
        match history {
            Some(h) => {
                p.history = History::Learned(Box::new(h));
                s.hourly_stale = true;
            }
            None => p.history = History::NotAsked,
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
        self.forget_gone_groups(now);
        if std::mem::take(&mut self.offsets_moved) {
            self.trim_indexes();
        }
        let registry_down = self.registry.down.as_deref();
        let streams: Vec<StreamSnapshot> = self
            .streams
            .iter_mut()
            .map(|s| stream_snapshot(s, &settings, kafka, registry_down, &self.connect, now))
            .collect();
        let pairs = self
            .pairs
            .iter()
            .zip(self.joins.iter_mut())
            .map(|(pair, join)| {
                let leader = &streams[pair.leader];
                let follower = &streams[pair.follower];
                let join = join.as_mut().map(|j| {
                    let follower_watermark = match j.spec.partitions {
                        JoinPartitions::All => j.copied_watermark(now, settings.idle_partition_timeout_ms),
                        JoinPartitions::CoPartitioned => {
                            j.co_partitioned = co_partitioned(&self.streams[pair.leader], &self.streams[pair.follower]);
                            follower.watermark_ms
                        }
                    };
                    j.tick(leader.watermark_ms, follower_watermark, now);
                    let segments = &self.streams[pair.leader].segments;
                    j.snapshot(|g| segments.get(g).map(SegmentState::value_texts).unwrap_or_default(), now)
                });
                let sync_lag_seconds = sync_lag_seconds(leader.watermark_ms, follower.watermark_ms);
                let (cause, side) = match pair_cause(leader.cause, follower.cause, sync_lag_seconds) {
                    // both sides ok: the join's own cause, the follower's keys missing
                    (Cause::Ok, _) if join.as_ref().is_some_and(|j| !j.incomplete.is_empty()) => {
                        (PairCause::JoinIncomplete, Side::Follower)
                    }
                    (c, side) => (PairCause::Stream(c), side),
                };
                // the sync lag is a side's delay on a whole time-zone offset
                let sides = [&self.streams[pair.leader], &self.streams[pair.follower]];
                let timezone_hint = sync_lag_seconds.and_then(|lag| {
                    let lag = (lag * 1000.0) as Millis;
                    let zone = sides.iter().find_map(|s| s.zone_spread.filter(|z| on_offset(lag, *z)))?;
                    let half = (zone.p90 - zone.p10) / 2;
                    let way = if lag >= 0 { "behind" } else { "ahead of" };
                    let what = format!("{} is {way} {} by", follower.name, leader.name);
                    hint(&what, Spread { median: lag, p10: lag - half, p90: lag + half })
                });
                PairSnapshot {
                    join,
                    timezone_hint,
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
            .filter(|c| c.forgotten_at.is_none())
            .map(|c| consumer_snapshot(c, &self.streams, &streams, &self.pairs, kafka, &self.connect, now))
            .collect();
        let schema_registry = self.uses_registry.then(|| RegistrySnapshot {
            status: match (&self.registry.down, self.registry.known()) {
                (Some(_), _) => KafkaStatus::Down,
                (None, 0) => KafkaStatus::Unknown,
                (None, _) => KafkaStatus::Up,
            },
            error: self.registry.down.clone(),
            schemas_known: self.registry.known(),
        });
        Snapshot {
            at_ms: now,
            kafka,
            kafka_error: self.kafka_error.clone(),
            schema_registry,
            connect: self.connect.clone(),
            streams,
            pairs,
            consumers,
            discovery: self.discovery_snapshot(),
            topic_discovery: self.topic_discovery_snapshot(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::baseline::{BaselineSpec, Slot};
    use crate::consumer::{FetchedRecord, FETCH_RETRY_MS};
    use crate::diagnosis::{Cause, ConsumerCause};
    use crate::extract::{EventTimeSource, Extractor, InvalidReason, TimeFormat};
    use crate::json::JsonPointer;
    use crate::snapshot::{BaselineState, Direction};

    pub(crate) const T0: Millis = 1_795_375_975_000;
    pub(crate) const SEC: Millis = 1000;

    pub(crate) fn committed(stream: usize, slot: PartitionSlot, offset: Option<i64>) -> Committed {
        Committed { stream, slot, offset }
    }

    pub(crate) fn spec(name: &str) -> StreamSpec {
        StreamSpec {
            name: name.into(),
            topics: vec![format!("{name}-topic")],
            topic_pattern: None,
            value_format: crate::schema::ValueFormat::Json,
            message: None,
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

    pub(crate) fn monitor(streams: Vec<StreamSpec>, pairs: Vec<PairSpec>) -> Monitor {
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            streams,
            pairs,
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        m
    }

    pub(crate) fn rec(m: &mut Monitor, stream: usize, partition: i32, offset: i64, event: Millis, now: Millis) {
        let payload = format!(r#"{{"id": {offset}, "ts": {event}}}"#);
        m.record(stream, partition, offset, Some(payload.as_bytes()), None, now);
    }

    /// One stream with `n` partitions, assigned and caught up at offset 0.
    pub(crate) fn one_stream(n: i32) -> Monitor {
        let mut m = monitor(vec![spec("orders")], vec![]);
        for p in 0..n {
            m.assign_partition(0, 0, p, StartPosition::At(0), T0);
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
        // every reason a JSON stream can have (the rest are the registry formats')
        for reason in &InvalidReason::ALL[..5] {
            assert_eq!(p.invalid[reason.as_str()], 1, "{}", reason.as_str());
        }
        assert_eq!(p.invalid[InvalidReason::BadEncoding], 0);
    }

    /// orders (leader) and behaviour (follower), one partition each, caught up at 0.
    fn orders_behaviour() -> Monitor {
        let pairs = vec![PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1, join: None }];
        let mut m = monitor(vec![spec("orders"), spec("behaviour")], pairs);
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(0), T0);
            m.log_end(s, 0, 0, T0);
            m.position(s, 0, 0);
        }
        m
    }

    #[test]
    fn sync_lag_is_leader_minus_follower() {
        let mut m = orders_behaviour();
        assert_eq!(m.tick(T0).pairs[0].sync_lag_seconds, None);
        rec(&mut m, 0, 0, 0, T0, T0);
        rec(&mut m, 1, 0, 0, T0 - 8 * 3600 * SEC, T0);
        let s = m.tick(T0);
        assert_eq!(s.pairs[0].sync_lag_seconds, Some(28_800.0));
        assert_eq!(s.pairs[0].cause, PairCause::Stream(Cause::EventTimeDelayed));
        assert_eq!(s.streams[1].cause, Cause::EventTimeDelayed);
        assert_eq!(s.streams[0].cause, Cause::Ok);
        // follower ahead of the leader: negative
        rec(&mut m, 1, 0, 1, T0 + 60 * SEC, T0 + 60 * SEC);
        assert_eq!(m.tick(T0 + 60 * SEC).pairs[0].sync_lag_seconds, Some(-60.0));
    }

    /// orders in real time and behaviour `delay(i)` late, a record a second each for 30 s.
    fn paired_traffic(delay: impl Fn(i64) -> Millis) -> Snapshot {
        let mut m = orders_behaviour();
        let mut last = None;
        for i in 0..30 {
            let now = T0 + i * SEC;
            rec(&mut m, 0, 0, i, now, now);
            rec(&mut m, 1, 0, i, now - delay(i), now);
            m.log_end(0, 0, i + 1, now);
            m.log_end(1, 0, i + 1, now);
            last = Some(m.tick(now));
        }
        last.unwrap()
    }

    #[test]
    fn a_delay_on_a_whole_time_zone_offset_is_a_question_next_to_the_cause() {
        const H: Millis = 3600 * SEC;
        // local time read as UTC: 8 h and the real latency, a second or two
        let s = paired_traffic(|i| 8 * H + (i % 3) * SEC);
        assert_eq!(s.streams[1].cause, Cause::EventTimeDelayed, "the cause stays what it is");
        let hint = s.streams[1].timezone_hint.clone().unwrap_or_default();
        assert!(hint.starts_with("behind by 8h 00m ± ") && hint.contains("(UTC+08:00 or UTC−08:00)"), "{hint}");
        let pair = s.pairs[0].timezone_hint.clone().unwrap_or_default();
        assert!(pair.starts_with("behaviour is behind orders by 8h 00m ± "), "{pair}");
        assert_eq!(s.streams[0].timezone_hint, None, "orders are in real time");
        // a batch path 8 h behind spreads its delays over half an hour: no question
        let batch = paired_traffic(|i| 8 * H - 15 * 60 * SEC + i * 60 * SEC);
        assert_eq!(batch.streams[1].cause, Cause::EventTimeDelayed);
        assert_eq!((batch.streams[1].timezone_hint.as_deref(), batch.pairs[0].timezone_hint.as_deref()), (None, None));
        // east of UTC, local time read as UTC is in the future: rejected, and asked about
        let ahead = paired_traffic(|i| -(8 * H) - (i % 2) * SEC);
        assert_eq!(ahead.streams[1].invalid["future_timestamp"], 30);
        let hint = ahead.streams[1].timezone_hint.clone().unwrap_or_default();
        assert!(hint.starts_with("ahead by 8h 00m ± "), "{hint}");
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
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
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
        m.assign_partition(0, 0, 0, StartPosition::LogEnd, T0);
        m.assign_partition(0, 0, 1, StartPosition::Unknown, T0);
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
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
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
            m.assign_partition(0, 0, p, StartPosition::LogEnd, T0);
        }
        let asked: Vec<(usize, i32)> = m.take_history_requests().iter().map(|r| (r.stream, r.partition)).collect();
        assert_eq!(asked, vec![(0, 0), (0, 1)]);
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
        m.assign_partition(0, 0, 0, StartPosition::At(3), T0 + SEC);
        rec(&mut m, 0, 0, 3, T0 - 3 * SEC, T0 + 2 * SEC);
        let s = &m.tick(T0 + 2 * SEC).streams[0];
        assert_eq!((s.records, s.partitions[0].records), (6, 1));
        // an idle partition is not active
        let s = &m.tick(T0 + 2 * SEC + 301 * SEC).streams[0];
        assert_eq!(s.active_partitions, 0);
    }

    fn orders_and_behaviour(partitions: i32) -> Monitor {
        let pairs = vec![PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1, join: None }];
        let mut m = monitor(vec![spec("orders"), spec("behaviour")], pairs);
        for s in 0..2 {
            for p in 0..partitions {
                m.assign_partition(s, 0, p, StartPosition::At(0), T0);
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
        assert_eq!(
            s.pairs[0].cause,
            PairCause::Stream(Cause::EventTimeDelayed),
            "the follower is behind: its cause explains the lag"
        );
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
        m.consumer_error(0, ConsumerError { message: "access denied: Describe on group job".into(), denied: true });
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::AccessDenied);
        m.consumer_error(0, ConsumerError::new("timed out"));
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::GroupUnknown);
        m.consumer_error(0, ConsumerError { message: "access denied: Describe on group job".into(), denied: true });
        m.committed_offsets(0, &[committed(0, 0, Some(0))], T0);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::Ok);
    }

    #[test]
    fn a_missing_topic_is_its_own_cause_and_recovers() {
        let mut m = monitor(vec![spec("orders")], vec![]);
        m.set_topic_missing(0, 0, true);
        let s = m.tick(T0);
        assert_eq!(s.streams[0].cause, Cause::TopicMissing);
        m.set_kafka_status(KafkaStatus::Down, None);
        assert_eq!(
            m.tick(T0).streams[0].cause,
            Cause::KafkaUnreachable,
            "an unreachable cluster says nothing of topics"
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        m.set_topic_missing(0, 0, false);
        assert_eq!(m.tick(T0 + SEC).streams[0].cause, Cause::NoData);
    }

    #[test]
    fn a_stream_over_several_topics_numbers_their_partitions_and_is_missing_only_with_none_left() {
        let regional = StreamSpec { topics: vec!["orders-eu".into(), "orders-us".into()], ..spec("orders") };
        let mut m = monitor(vec![regional], vec![]);
        m.watch_consumer(analytics(vec![0]), T0);
        // eu 0 and 1 take slots 0 and 1; us 0 and 1 the next ones
        let mut slots = Vec::new();
        for (t, p) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            slots.push(m.assign_partition(0, t, p, StartPosition::At(0), T0).unwrap());
        }
        assert_eq!(slots, [0, 1, 2, 3]);
        let third = m.assigned().find(|a| a.slot == 2).map(|a| (m.topics(0).nth(a.topic), a.partition));
        assert_eq!(third, Some((Some("orders-us"), 0)));
        assert_eq!(m.assign_partition(0, 2, 0, StartPosition::At(0), T0), None, "a topic the stream does not read");
        for (slot, minutes) in [(0, 1), (1, 2), (2, 3), (3, 30)] {
            rec(&mut m, 0, slot, 0, T0 - minutes * 60 * SEC, T0);
            m.log_end(0, slot, 1, T0);
        }
        rec(&mut m, 0, 3, 1, T0 - 30 * 60 * SEC, T0);
        m.log_end(0, 3, 2, T0);
        // the analytics job is behind on orders-us 1 only
        let committed: Vec<Committed> =
            [(0, Some(1)), (1, Some(1)), (2, Some(1)), (3, Some(1))].map(|(s, o)| committed(0, s, o)).to_vec();
        m.committed_offsets(0, &committed, T0);
        let s = m.tick(T0 + SEC);
        let st = &s.streams[0];
        assert_eq!(st.topic, "orders-eu, orders-us");
        assert_eq!(st.watermark_ms, Some(T0 - 30 * 60 * SEC), "the low watermark over both topics");
        let labels: Vec<(&str, i32)> = st.partitions.iter().map(|p| (&*p.topic, p.partition)).collect();
        assert_eq!(labels, [("orders-eu", 0), ("orders-eu", 1), ("orders-us", 0), ("orders-us", 1)]);
        let per_topic: Vec<(&str, u64)> = st.topics.iter().map(|t| (&*t.name, t.records)).collect();
        assert_eq!(per_topic, [("orders-eu", 2), ("orders-us", 3)]);
        let lag: Vec<(&str, i32, Option<i64>)> =
            s.consumers[0].streams[0].partitions.iter().map(|p| (&*p.topic, p.partition, p.lag_records)).collect();
        assert_eq!(
            lag,
            [
                ("orders-eu", 0, Some(0)),
                ("orders-eu", 1, Some(0)),
                ("orders-us", 0, Some(0)),
                ("orders-us", 1, Some(1))
            ]
        );
        // a revoked partition's counts stay with its topic
        m.revoke(0, 3);
        assert_eq!(m.tick(T0 + 2 * SEC).streams[0].topics[1].records, 3);
        // one topic gone: named, not the stream's cause; both gone: topic_missing
        m.set_topic_missing(0, 1, true);
        let st = &m.tick(T0 + 3 * SEC).streams[0];
        assert_ne!(st.cause, Cause::TopicMissing);
        assert_eq!(st.missing_topics, ["orders-us"]);
        m.set_topic_missing(0, 0, true);
        let st = &m.tick(T0 + 4 * SEC).streams[0];
        assert_eq!(
            (st.cause, st.missing_phrase()),
            (Cause::TopicMissing, "none of its topics exists (orders-eu, orders-us)".into())
        );
    }

    #[test]
    fn a_pattern_stream_reads_the_topics_found_and_is_missing_while_none_matches() {
        let pattern = StreamSpec { topics: Vec::new(), topic_pattern: Some("^orders-".into()), ..spec("orders") };
        let mut m = monitor(vec![pattern], vec![]);
        assert_eq!(m.tick(T0).streams[0].cause, Cause::NoData, "not listed yet: nothing is known");
        m.set_unmatched(0, true);
        let st = &m.tick(T0 + SEC).streams[0];
        assert_eq!((st.cause, st.missing_phrase()), (Cause::TopicMissing, "no topic matches \"^orders-\"".into()));
        assert_eq!(m.add_topic(0, "orders-eu"), Some(0));
        assert_eq!(m.add_topic(0, "orders-eu"), Some(0), "the same topic once");
        m.set_unmatched(0, false);
        // partition 0 of the next topic found takes the next free slot
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
        assert_eq!(m.add_topic(0, "orders-us"), Some(1));
        assert_eq!(m.assign_partition(0, 1, 0, StartPosition::At(0), T0), Some(1));
        assert_eq!(m.assign_partition(0, 0, 1, StartPosition::At(0), T0), Some(2), "slot 1 is taken");
        let st = &m.tick(T0 + 2 * SEC).streams[0];
        assert_eq!(st.cause, Cause::NoData);
        let labels: Vec<(&str, i32)> = st.partitions.iter().map(|p| (&*p.topic, p.partition)).collect();
        assert_eq!(labels, [("orders-eu", 0), ("orders-us", 0), ("orders-eu", 1)]);
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
        m.committed_offsets(0, &[committed(0, 0, Some(40))], T0 + 100 * SEC);
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
            m.committed_offsets(0, &[committed(0, 0, Some(40))], t);
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
        m.committed_offsets(0, &[committed(0, 0, Some(end))], now + SEC);
        let c = &m.tick(now + SEC).consumers[0];
        assert_eq!(c.streams[0].partitions[0].lag_seconds, Some(0.0));
        assert_eq!(c.cause, ConsumerCause::Ok);
        // nothing written for an hour: the producer's silence, not a stopped consumer
        m.committed_offsets(0, &[committed(0, 0, Some(end))], now + 3900 * SEC);
        let c = &m.tick(now + 3900 * SEC).consumers[0];
        assert_eq!((c.cause, c.stalled_seconds), (ConsumerCause::UpstreamFault, 0.0), "idle, not stopped");
        // a committed offset past the polled log end: never a negative lag
        m.committed_offsets(0, &[committed(0, 0, Some(end + 5))], now + 3901 * SEC);
        assert_eq!(m.tick(now + 3901 * SEC).consumers[0].streams[0].partitions[0].lag_records, Some(0));
    }

    #[test]
    fn a_consumer_is_not_blamed_for_an_upstream_fault_and_an_unknown_group_is_named() {
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        rec(&mut m, 0, 0, 0, T0, T0);
        m.log_end(0, 0, 10, T0);
        m.committed_offsets(0, &[committed(0, 0, None)], T0);
        let c = &m.tick(T0).consumers[0];
        assert_eq!(c.cause, ConsumerCause::GroupUnknown);
        assert!(c.error.as_deref().unwrap().contains("no committed offsets"));
        m.consumer_error(0, ConsumerError::new("GroupAuthorizationFailed"));
        assert_eq!(m.tick(T0).consumers[0].error.as_deref(), Some("GroupAuthorizationFailed"));
        // the producer goes silent: the stream's fault, not the consumer's
        m.committed_offsets(0, &[committed(0, 0, Some(0))], T0);
        let later = T0 + 1000 * SEC;
        m.committed_offsets(0, &[committed(0, 0, Some(0))], later);
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
        m.committed_offsets(0, &[committed(0, 0, Some(offset)), committed(1, 0, Some(2))], now);
        let s = m.tick(now);
        let c = &s.consumers[0];
        assert_eq!(c.pairs[0].sync_lag_seconds, Some(28_800.0), "{c:?}");
        assert_eq!(c.streams[1].partitions[0].lag_seconds, Some(28_900.0 - 120.0), "the record of t = 120 s waits");
    }

    #[test]
    fn a_committed_offset_older_than_the_index_is_fetched_once_while_it_stands_still() {
        use crate::offset_index::OFFSET_INDEX_LEN;
        let mut m = one_stream(1);
        m.watch_consumer(analytics(vec![0]), T0);
        let n = OFFSET_INDEX_LEN as i64 + 100;
        for i in 0..n {
            rec(&mut m, 0, 0, i, T0 + i * SEC, T0 + n * SEC);
        }
        let now = T0 + n * SEC;
        m.log_end(0, 0, n, now);
        m.committed_offsets(0, &[committed(0, 0, Some(10))], now);
        let p = &m.tick(now).consumers[0].streams[0].partitions[0];
        assert_eq!((p.lag_records, p.lag_seconds), (Some(n - 10), None), "older than the index: not known yet");
        let wanted = m.take_fetches(8);
        assert_eq!(wanted.len(), 1);
        assert_eq!((wanted[0].topic.as_str(), wanted[0].partition, wanted[0].offset), ("orders-topic", 0, 10));
        assert!(m.take_fetches(8).is_empty(), "asked once");
        let payloads: Vec<String> = (9..12).map(|o| format!(r#"{{"ts": {}}}"#, T0 + o * SEC)).collect();
        let records: Vec<FetchedRecord<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(k, p)| FetchedRecord { offset: 9 + k as i64, payload: Some(p.as_bytes()), timestamp: None })
            .collect();
        m.fetched(&wanted[0], Fetched::Records(&records), now);
        for dt in [0, 5] {
            m.committed_offsets(0, &[committed(0, 0, Some(10))], now + dt * SEC);
            let p = &m.tick(now + dt * SEC).consumers[0].streams[0].partitions[0];
            assert_eq!(p.lag_seconds, Some((n - 10 + dt) as f64), "exact: now − event time of record 10");
            assert_eq!(p.watermark_ms, Some(T0 + 9 * SEC));
            assert!(m.take_fetches(8).is_empty(), "no more fetches while the offset stands still");
        }
        // the group moves (still behind the index): one new fetch; meanwhile the lag of
        // the offset before stands in (its series does not blink out)
        m.committed_offsets(0, &[committed(0, 0, Some(11))], now + 6 * SEC);
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
        m.committed_offsets(0, &[committed(0, 0, Some(12))], now + 8 * SEC);
        m.tick(now + 8 * SEC);
        let wanted = m.take_fetches(8);
        m.fetched(&wanted[0], Fetched::Failed, now + 8 * SEC);
        m.tick(now + 9 * SEC);
        assert!(m.take_fetches(8).is_empty());
        m.tick(now + 8 * SEC + FETCH_RETRY_MS);
        assert_eq!(m.take_fetches(8).len(), 1);
    }

    /// Debezium's snapshot: records of rows written long ago, read live. With the
    /// stream's `snapshot_field` they are `source_snapshot` (lag rules wait) and leave the
    /// record delays alone; without it, they are an upstream delay.
    #[test]
    fn a_snapshot_of_old_rows_is_source_snapshot_not_event_time_delayed() {
        let old = T0 - 30 * 86_400 * SEC;
        let run = |with_field: bool| {
            let mut s = spec("orders");
            if with_field {
                let pointer = JsonPointer::parse("/source/snapshot").unwrap();
                s.segments.push(crate::segment::SegmentSpec { name: crate::segment::SNAPSHOT_SEGMENT.into(), pointer });
            }
            let mut m = monitor(vec![s], vec![]);
            m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
            m.log_end(0, 0, 0, T0);
            m.position(0, 0, 0);
            let send = |m: &mut Monitor, offset: i64, ts: Millis, snapshot: &str, now: Millis| {
                let payload = format!(r#"{{"ts": {ts}, "source": {{"snapshot": "{snapshot}"}}}}"#);
                m.record(0, 0, offset, Some(payload.as_bytes()), None, now);
            };
            send(&mut m, 0, old, "first", T0);
            send(&mut m, 1, old + SEC, "true", T0);
            let during = m.tick(T0 + SEC);
            send(&mut m, 2, old + 2 * SEC, "last", T0 + SEC);
            let after = m.tick(T0 + 2 * SEC);
            // a change as it happens, a second old
            send(&mut m, 3, T0 + 2 * SEC, "false", T0 + 3 * SEC);
            let live = m.tick(T0 + 3 * SEC);
            (during, after, live)
        };
        let (during, after, live) = run(true);
        let st = &during.streams[0];
        assert_eq!(st.cause, Cause::SourceSnapshot);
        assert!(st.cause.holds_lag_rules() && !st.cause.is_fault());
        assert_eq!((st.median_record_delay_seconds, st.record_delay.counts().iter().sum::<u64>()), (None, 0));
        assert_eq!(st.watermark_ms, Some(old + SEC), "the rows' own times: the watermark is real");
        assert!(st.segments.is_empty(), "the snapshot field is no segment");
        // its last record read, no change yet: the table's newest row is old by design too
        assert_eq!(after.streams[0].cause, Cause::SourceSnapshot);
        let st = &live.streams[0];
        assert_eq!((st.cause, st.median_record_delay_seconds), (Cause::Ok, Some(1.0)));
        // without the field, the same records are an upstream delay, even once changes flow
        let (during, _, live) = run(false);
        assert_eq!(during.streams[0].cause, Cause::EventTimeDelayed);
        assert_eq!(live.streams[0].cause, Cause::EventTimeDelayed, "the snapshot's delays fill the window");
    }

    #[test]
    fn a_sink_connector_that_reads_a_stream_is_watched_once_whether_listed_or_not() {
        use crate::connect::{ConnectSnapshot, ConnectorState, ConnectorStatus, ConnectorType, TopicsFrom};
        let sink = |name: &str, topic: &str| ConnectorStatus {
            name: name.into(),
            kind: ConnectorType::Sink,
            state: ConnectorState::Running,
            worker_id: String::new(),
            trace: None,
            tasks: Vec::new(),
            topics: vec![topic.into()],
            topics_from: TopicsFrom::ActiveTopics,
            topic_prefix: None,
            group: Some(format!("connect-{name}")),
            failures: 0,
        };
        let mut m = monitor(vec![spec("orders")], vec![]);
        let listed = ConsumerSpec {
            name: "audit".into(),
            group: "connect-warehouse".into(),
            streams: vec![0],
            max_lag_ms: 60 * SEC,
            max_stall_ms: 60 * SEC,
        };
        m.watch_consumer(listed, T0);
        m.set_connect(vec![ConnectSnapshot {
            name: "cdc".into(),
            url: "http://connect:8083".into(),
            status: KafkaStatus::Up,
            error: None,
            polled_at_ms: Some(T0),
            connectors: vec![sink("warehouse", "orders-topic"), sink("audit", "orders-topic"), sink("x", "other")],
        }]);
        // warehouse is the listed consumer `audit`; the sink `audit` is new and its name is
        // taken; `x` reads nothing watched
        let found = m.unwatched_sinks();
        let names: Vec<(&str, &str)> = found.iter().map(|s| (s.name.as_str(), s.group.as_str())).collect();
        assert_eq!(names, [("cdc/audit", "connect-audit")]);
        assert_eq!((found[0].streams.clone(), found[0].max_lag_ms), (vec![0], crate::spec::DEFAULT_MAX_LAG_MS));
        m.watch_sink(found[0].clone(), T0);
        assert!(m.unwatched_sinks().is_empty(), "watched once");
        let snap = m.tick(T0 + SEC);
        let consumers: Vec<(&str, bool, Option<&str>)> =
            snap.consumers.iter().map(|c| (c.name.as_str(), c.discovered, c.sink.as_deref())).collect();
        assert_eq!(consumers, [("audit", false, Some("cdc/warehouse")), ("cdc/audit", true, Some("cdc/audit"))]);
    }
}

#[cfg(test)]
mod join_tests {
    use super::tests::{monitor, spec, SEC, T0};
    use super::*;
    use crate::join::{JoinSpec, Outcomes};
    use crate::json::JsonPointer;
    use crate::segment::SegmentSpec;

    fn join(partitions: JoinPartitions) -> JoinSpec {
        JoinSpec {
            leader_key: JsonPointer::parse("/user_id").unwrap(),
            follower_key: JsonPointer::parse("/user").unwrap(),
            before_ms: 60 * SEC,
            after_ms: 10 * SEC,
            grace_ms: 5 * SEC,
            segments: vec![(0, "referral".into())],
            sample: 1,
            max_keys: 1000,
            max_pending: 1000,
            window_ms: 900 * SEC,
            partitions,
            incomplete_below: 0.5,
            min_judged: 2,
        }
    }

    /// orders (segment referral) joined with behaviour (key `/user`).
    fn joined(partitions: JoinPartitions) -> Monitor {
        let mut orders = spec("orders");
        orders.segments =
            vec![SegmentSpec { name: "referral".into(), pointer: JsonPointer::parse("/referral").unwrap() }];
        let pair = PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1, join: Some(join(partitions)) };
        monitor(vec![orders, spec("behaviour")], vec![pair])
    }

    fn order(m: &mut Monitor, slot: PartitionSlot, offset: i64, user: &str, t: Millis) {
        let doc = format!(r#"{{"ts": {t}, "user_id": "{user}", "referral": "search"}}"#);
        m.record(0, slot, offset, Some(doc.as_bytes()), None, t);
    }

    #[test]
    fn the_keys_and_segments_are_read_with_the_event_time_and_the_outcomes_labelled_by_value() {
        let mut m = joined(JoinPartitions::CoPartitioned);
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(0), T0);
            m.log_end(s, 0, 0, T0);
            m.position(s, 0, 0);
        }
        let start = T0 - 300 * SEC;
        let behaviour = [(start, "u0"), (T0 - 30 * SEC, "7"), (T0 - 20 * SEC, "u1")];
        for (o, (t, user)) in behaviour.iter().enumerate() {
            let doc = format!(r#"{{"user": "{user}", "ts": {t}}}"#);
            m.record(1, 0, o as i64, Some(doc.as_bytes()), None, T0);
        }
        let orders = [(7, "search"), (1, "social"), (2, "social")];
        for (o, (user, referral)) in orders.iter().enumerate() {
            let user = if *user == 7 { "7".to_string() } else { format!("\"u{user}\"") };
            let doc = format!(r#"{{"ts": {T0}, "user_id": {user}, "referral": "{referral}"}}"#);
            m.record(0, 0, o as i64, Some(doc.as_bytes()), None, T0);
        }
        let s = m.tick(T0);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!((j.pending, j.total), (3, Outcomes::default()), "the follower is behind t + after + grace");
        let doc = format!(r#"{{"user": "x", "ts": {}}}"#, T0 + 15 * SEC);
        m.record(1, 0, 3, Some(doc.as_bytes()), None, T0 + 15 * SEC);
        let s = m.tick(T0 + 15 * SEC);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!((j.pending, j.total.matched, j.total.missing), (0, 2, 1));
        let by: Vec<_> = j.values.iter().map(|v| (v.value.as_str(), v.total.matched, v.total.missing)).collect();
        assert_eq!(by, [("search", 1, 0), ("social", 1, 1)], "the number 7 matches the string \"7\"");
    }

    #[test]
    fn a_value_under_incomplete_below_makes_the_pair_join_incomplete_after_the_sides_causes() {
        let mut m = joined(JoinPartitions::CoPartitioned);
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(0), T0);
        }
        let mut offsets = [0i64; 2];
        let mut write = |m: &mut Monitor, s: usize, doc: String, at: Millis| {
            m.record(s, 0, offsets[s], Some(doc.as_bytes()), None, at);
            offsets[s] += 1;
            m.log_end(s, 0, offsets[s], at);
            m.position(s, 0, offsets[s]);
        };
        write(&mut m, 1, format!(r#"{{"user": "first", "ts": {}}}"#, T0 - 70 * SEC), T0);
        for k in 0..4 {
            let (user, referral) = if k < 2 { (format!("u{k}"), "search") } else { (format!("s{k}"), "social") };
            if referral == "search" {
                write(&mut m, 1, format!(r#"{{"user": "{user}", "ts": {}}}"#, T0 - 10 * SEC), T0);
            }
            let order = format!(r#"{{"ts": {T0}, "user_id": "{user}", "referral": "{referral}"}}"#);
            write(&mut m, 0, order, T0);
        }
        write(&mut m, 1, format!(r#"{{"user": "x", "ts": {}}}"#, T0 + 20 * SEC), T0 + 20 * SEC);
        write(
            &mut m,
            0,
            format!(r#"{{"ts": {}, "user_id": "x", "referral": "search"}}"#, T0 + 20 * SEC),
            T0 + 20 * SEC,
        );
        let s = m.tick(T0 + 20 * SEC);
        let (p, j) = (&s.pairs[0], s.pairs[0].join.as_ref().unwrap());
        assert_eq!((s.streams[0].cause, s.streams[1].cause), (Cause::Ok, Cause::Ok));
        assert_eq!((p.cause, p.cause_stream.as_str()), (PairCause::JoinIncomplete, "behaviour"));
        let named: Vec<String> = j.incomplete.iter().map(|v| v.phrase()).collect();
        assert_eq!(named, ["referral=social: 0 of 2 matched"], "all: 2 of 4, not under half");
        // the follower's own cause wins: a stalled follower is not incompleteness
        m.set_topic_missing(1, 0, true);
        let s = m.tick(T0 + 21 * SEC);
        assert_eq!(s.pairs[0].cause, PairCause::Stream(Cause::TopicMissing));
    }

    #[test]
    fn co_partitioned_topics_have_one_count_and_the_same_partitions_else_nothing_is_judged_missing() {
        let mut m = joined(JoinPartitions::CoPartitioned);
        // this process has partition 1 of both, two of each
        for s in 0..2 {
            m.set_partition_count(s, 0, 2);
            let slot = m.slot(s, 0, 1).unwrap();
            m.assign_partition(s, 0, 1, StartPosition::At(0), T0);
            m.log_end(s, slot, 0, T0);
        }
        let behaviour = |m: &mut Monitor, o: i64, user: &str, t: Millis| {
            let doc = format!(r#"{{"user": "{user}", "ts": {t}}}"#);
            m.record(1, 1, o, Some(doc.as_bytes()), None, t);
        };
        behaviour(&mut m, 0, "first", T0 - 70 * SEC);
        behaviour(&mut m, 3, "u1", T0 - 50 * SEC);
        order(&mut m, 1, 0, "u1", T0);
        order(&mut m, 1, 1, "u2", T0);
        behaviour(&mut m, 1, "x", T0 + 20 * SEC);
        let s = m.tick(T0 + 20 * SEC);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!(j.co_partitioned, Some(true));
        assert_eq!((j.total.matched, j.total.missing), (1, 1));
        // the follower topic has three partitions: its keys are elsewhere
        m.set_partition_count(1, 0, 3);
        order(&mut m, 1, 2, "u1", T0 + 10 * SEC);
        behaviour(&mut m, 2, "x", T0 + 40 * SEC);
        let s = m.tick(T0 + 40 * SEC);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!(j.co_partitioned, Some(false));
        assert_eq!(j.total, Outcomes { matched: 1, missing: 1, unjudged: 1 }, "not judged while not co-partitioned");
        // a share of different partitions of each (not the range assignor's)
        m.set_partition_count(1, 0, 2);
        m.assign_partition(1, 0, 0, StartPosition::At(0), T0);
        assert_eq!(m.tick(T0 + 40 * SEC).pairs[0].join.as_ref().unwrap().co_partitioned, Some(false));
        // every partition of both here: one replica is right whatever the counts
        m.set_partition_count(1, 0, 3);
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
        m.assign_partition(1, 0, 2, StartPosition::At(0), T0);
        assert_eq!(m.tick(T0 + 40 * SEC).pairs[0].join.as_ref().unwrap().co_partitioned, Some(true));
    }

    #[test]
    fn with_all_partitions_the_join_reads_its_own_copy_of_the_follower_and_its_watermark() {
        let mut m = joined(JoinPartitions::All);
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(0), T0);
        }
        let readers = m.follower_readers();
        assert_eq!(readers.len(), 1);
        assert_eq!((readers[0].join, readers[0].topics.as_slice()), (0, ["behaviour-topic".to_string()].as_slice()));
        let read = |doc: &str| readers[0].read(Some(doc.as_bytes()), None, T0);
        let t = T0 - 50 * SEC;
        assert_eq!(read(&format!(r#"{{"ts": {t}, "user": 42}}"#)).map(|(t, k)| (t, k.is_some())), Some((t, true)));
        assert_eq!(read(&format!(r#"{{"ts": {t}}}"#)), Some((t, None)), "no key: the time still counts");
        assert_eq!(read(r#"{"user": "u1"}"#), None, "no event time");
        // the follower stream's own partition 0 is not the join's: its keys are not kept
        let doc = format!(r#"{{"user": "u2", "ts": {}}}"#, T0 - 50 * SEC);
        m.record(1, 0, 0, Some(doc.as_bytes()), None, T0);
        // the copy: partition slots 0 and 1, u1 on the one this process's group did not give it
        let (_, u1) = read(&format!(r#"{{"ts": {t}, "user": "u1"}}"#)).unwrap();
        let copy = [
            FollowerRecord { slot: 0, t: T0 - 70 * SEC, key: None },
            FollowerRecord { slot: 1, t: T0 - 65 * SEC, key: None },
            FollowerRecord { slot: 1, t: T0 - 50 * SEC, key: u1 },
        ];
        m.follower_records(0, &copy, T0);
        order(&mut m, 0, 0, "u1", T0);
        order(&mut m, 0, 1, "u2", T0);
        let s = m.tick(T0);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!((j.pending, j.partitions, j.co_partitioned), (2, JoinPartitions::All, None));
        // the copy's low watermark passes t + after + grace on both partitions
        let on = [
            FollowerRecord { slot: 0, t: T0 + 15 * SEC, key: None },
            FollowerRecord { slot: 1, t: T0 + 16 * SEC, key: None },
        ];
        m.follower_records(0, &on[..1], T0 + 15 * SEC);
        assert_eq!(m.tick(T0 + 15 * SEC).pairs[0].join.as_ref().unwrap().pending, 2, "partition 1 holds it back");
        m.follower_records(0, &on[1..], T0 + 16 * SEC);
        let s = m.tick(T0 + 16 * SEC);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!((j.pending, j.total.matched, j.total.missing), (0, 1, 1), "u2 read by the stream only: missing");
    }
}
