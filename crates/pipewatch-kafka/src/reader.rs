//! The consumer thread: reads records into the monitor (the per-record path: no lock, no
//! allocation), applies the rebalances, the poller's findings and the learnt histories,
//! and hands a snapshot to the tick stage every tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use pipewatch_core::monitor::PartitionRef;
use pipewatch_core::{
    Committed, ConnectSnapshot, FetchRequest, Fetched, FetchedRecord, KafkaStatus, Millis, Monitor, RecordOutcome,
    Right, Snapshot,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::Offset;
use tracing::{info, warn};

use crate::client::now_ms;
use crate::messages::WatchedGroup;
use crate::messages::{CaughtUp, FetchOutcome, HistoryRequest, JoinBatch, Learned, LogEndPoll};
use crate::metrics::{ErrorKind, SourceMetrics};
use crate::poller::FETCHES_PER_TICK;
use crate::rebalance::{apply_assignment_changes, SourceContext};
use crate::records::{cached_high_watermark, Item, RecordQueue};
use crate::topics::TopicTable;
use crate::waiting::Waiting;

/// The consumer thread's ends of the channels to and from the poller (and the history
/// learner, when a stream has a baseline).
pub(crate) struct PollerLink {
    pub(crate) polls: Receiver<LogEndPoll>,
    pub(crate) requests: Sender<Vec<FetchRequest>>,
    pub(crate) uncached: Sender<Vec<(String, i32)>>,
    pub(crate) history: Option<HistoryLink>,
    /// Groups to watch from now on (Kafka Connect sinks found while running).
    pub(crate) groups: Sender<WatchedGroup>,
    /// Discovered topics the monitor made streams of, for the poller to poll.
    pub(crate) topics: Sender<String>,
    pub(crate) caught_up: CaughtUp,
    /// The follower records the joins' own consumer read (`partitions = "all"`).
    pub(crate) joins: Option<Receiver<JoinBatch>>,
}

pub(crate) struct HistoryLink {
    pub(crate) requests: Sender<HistoryRequest>,
    pub(crate) learned: Receiver<Learned>,
}

/// The consumer thread: reads records into the monitor and hands a snapshot to the
/// tick stage every tick.
pub(crate) struct Reader {
    pub(crate) consumer: BaseConsumer<SourceContext>,
    /// The assigned partitions' records, read in batches (see `records`).
    pub(crate) records: RecordQueue,
    pub(crate) monitor: Monitor,
    /// Which stream reads which topic.
    pub(crate) topics: TopicTable,
    /// pipewatch's own group.
    pub(crate) group_id: String,
    pub(crate) metrics: SourceMetrics,
    pub(crate) errors_logged: u64,
    /// Each pair's join: whether its topics were co-partitioned at the last tick.
    pub(crate) co_partitioned: Vec<Option<bool>>,
    /// Records that wait for their schema, held, and the registry's link.
    pub(crate) waiting: Waiting,
    /// The joins' own consumer's records that wait for their schema (and every batch
    /// after them: none is taken while one waits, so the join thread waits in turn).
    pub(crate) join_waiting: Option<JoinBatch>,
    /// The Kafka Connect clusters' states, from the runtime's poller.
    pub(crate) connect: Option<Receiver<Vec<ConnectSnapshot>>>,
}

impl Reader {
    pub(crate) fn run(
        mut self,
        tick: Duration,
        shutdown: Arc<AtomicBool>,
        link: PollerLink,
        mut publish: impl FnMut(Snapshot),
    ) {
        let tick_ms = tick.as_millis().max(1) as Millis;
        let mut next_tick = now_ms();
        while !shutdown.load(Ordering::Relaxed) {
            // Rebalances and errors arrive on the consumer queue, and so do the records
            // of a partition fetched before it was routed to the record queue.
            let polled = self.consumer.poll(Duration::ZERO);
            let now = now_ms();
            // Rebalance callbacks run inside poll: apply them before any record, which
            // may belong to a partition just assigned.
            let changed = &self.consumer.context().changed;
            if changed.load(Ordering::Relaxed) && changed.swap(false, Ordering::Acquire) {
                apply_assignment_changes(&self.consumer, &mut self.monitor, &self.topics, now);
                self.waiting.forget_revoked(&self.monitor, &self.consumer);
            }
            let busy = match polled {
                Some(Ok(msg)) => {
                    let (p, o) = (msg.partition(), msg.offset());
                    let found = self.topics.get(msg.topic());
                    if let Some((stream, slot)) = found.and_then(|(s, t)| Some((s, self.monitor.slot_of(s, t, p)?))) {
                        let ts = msg.timestamp().to_millis();
                        if let RecordOutcome::Wait(id) = self.monitor.record(stream, slot, o, msg.payload(), ts, now) {
                            self.waiting.hold(msg.topic(), p, (stream, slot), id, o, msg.payload(), ts, now);
                        }
                    }
                    true
                }
                Some(Err(e)) => {
                    self.consume_error(&e);
                    true
                }
                None => false,
            };
            // Wait for records only when the consumer queue had nothing: a rebalance
            // waits at most 100 ms.
            let wait = if busy || now >= next_tick { Duration::ZERO } else { Duration::from_millis(100) };
            self.read_records(wait);
            if let Some(joins) = &link.joins {
                self.apply_join_batches(joins);
            }
            self.waiting.apply_answers(&mut self.monitor, &self.consumer);
            let now = now_ms();
            if now < next_tick {
                continue;
            }
            self.apply_polls(&link);
            self.apply_brokers_down(now, tick_ms);
            self.apply_group_denial();
            self.cached_log_ends(&link, now);
            if let Ok(positions) = self.consumer.position() {
                for e in positions.elements() {
                    let Some((s, t)) = self.topics.get(e.topic()) else { continue };
                    if let (Offset::Offset(o), Some(slot)) = (e.offset(), self.monitor.slot_of(s, t, e.partition())) {
                        self.monitor.position(s, slot, o);
                    }
                }
            }
            self.exchange_histories(&link);
            if let Some(latest) = self.connect.as_ref().and_then(|rx| rx.try_iter().last()) {
                self.monitor.set_connect(latest);
                self.watch_sinks(&link, now);
            }
            let snapshot = self.monitor.tick(now);
            self.log_co_partitioning(&snapshot);
            publish(snapshot);
            let caught_up = self.monitor.caught_up_groups();
            *link.caught_up.lock().unwrap_or_else(PoisonError::into_inner) = caught_up.into_iter().collect();
            let wanted = self.monitor.take_fetches(FETCHES_PER_TICK);
            if !wanted.is_empty() {
                let _ = link.requests.send(wanted);
            }
            next_tick = now - (now - next_tick) % tick_ms + tick_ms;
        }
        // The record queue goes before the consumer (it belongs to the consumer's client),
        // and the rebalance callback of the consumer's close must not route to it.
        *self.consumer.context().records.lock().unwrap_or_else(PoisonError::into_inner) = None;
        drop(self.records);
        info!("source stopped");
    }

    /// A `co_partitioned` join whose topics are not (or are again): said once per change.
    fn log_co_partitioning(&mut self, snapshot: &Snapshot) {
        for (i, pair) in snapshot.pairs.iter().enumerate() {
            let now = pair.join.as_ref().and_then(|j| j.co_partitioned);
            if self.co_partitioned.len() <= i {
                self.co_partitioned.resize(i + 1, None);
            }
            let was = std::mem::replace(&mut self.co_partitioned[i], now);
            match (was, now) {
                (Some(false), Some(true)) => info!(pair = %pair.name, "the join's topics are co-partitioned again"),
                (w, Some(false)) if w != Some(false) => warn!(
                    pair = %pair.name,
                    leader = %pair.leader,
                    follower = %pair.follower,
                    "the join's topics are not co-partitioned (partition counts differ, or this replica was given \
                     different partitions of each): nothing is judged missing until they are; use partitions = \"all\""
                ),
                _ => {}
            }
        }
    }

    /// One batch from the record queue into the monitor. The per-record path: no lock, no
    /// allocation, one hash lookup per run of records of the same topic.
    fn read_records(&mut self, wait: Duration) {
        // The arrival time of a batch is when it arrived: read once, after the wait for it
        // (read before, a record was up to `wait` early and its delay that much short).
        let mut arrived = None;
        let Reader { records, monitor, metrics, errors_logged, waiting, consumer, topics, .. } = self;
        let mut topic: (*const u8, usize, Option<(usize, usize)>) = (std::ptr::null(), 0, None);
        records.read(wait, |item| match item {
            Item::Record(r) => {
                if (r.topic.as_ptr(), r.topic.len()) != (topic.0, topic.1) {
                    topic = (r.topic.as_ptr(), r.topic.len(), topics.get(r.topic));
                }
                let Some((stream, t)) = topic.2 else { return };
                let Some(slot) = monitor.slot_of(stream, t, r.partition) else { return };
                let now = *arrived.get_or_insert_with(now_ms);
                if let RecordOutcome::Wait(id) = monitor.record(stream, slot, r.offset, r.payload, r.timestamp, now) {
                    waiting.hold(r.topic, r.partition, (stream, slot), id, r.offset, r.payload, r.timestamp, now);
                }
            }
            Item::Error(e, topic) => {
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
                    if let Some((topic, (s, _))) = topic.and_then(|t| Some((t, topics.get(t)?))) {
                        monitor.set_access_denied(Some(s), Right::ReadTopic, Some(format!("Read on topic {topic}")));
                    }
                }
                consume_error(metrics, errors_logged, &e)
            }
        });
        if !waiting.is_empty() {
            waiting.pause_if_over(consumer);
        }
    }

    /// The joins' own consumer's batches into the monitor, the one that waits for its
    /// schema first.
    fn apply_join_batches(&mut self, joins: &Receiver<JoinBatch>) {
        loop {
            let Some(mut b) = self.join_waiting.take().or_else(|| joins.try_recv().ok()) else { return };
            self.monitor.follower_records(b.join, &b.records, b.at);
            if let Err((read, id)) = self.monitor.follower_payloads(b.join, &b.payloads, b.at) {
                self.waiting.ask_for_join(id);
                b.records.clear();
                b.payloads.drain(..read);
                self.join_waiting = Some(b);
                return;
            }
        }
    }

    fn consume_error(&mut self, e: &KafkaError) {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) {
            self.consumer.context().group_denied.store(true, Ordering::Relaxed);
        }
        consume_error(&self.metrics, &mut self.errors_logged, e);
    }

    /// librdkafka lost every broker at least a tick ago and no poll answered since: the
    /// cluster is down now, before the poller's requests time out (so a crashed broker is
    /// `kafka_unreachable` before its silence could be taken for a silent producer).
    fn apply_brokers_down(&mut self, now: Millis, tick_ms: Millis) {
        let context = self.consumer.context();
        let since = context.brokers_down_at.load(Ordering::Relaxed);
        if since != 0 && now - since >= tick_ms {
            let auth = context.auth_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let why =
                auth.map_or_else(|| "every broker is down".to_string(), |a| format!("authentication failed: {a}"));
            self.monitor.set_kafka_status(KafkaStatus::Down, Some(why));
        }
    }

    /// What the authorizer denies pipewatch's own group, into the monitor.
    fn apply_group_denial(&mut self) {
        let denied = self.consumer.context().group_denied.load(Ordering::Relaxed);
        let resource = denied.then(|| format!("Read on group {}", self.group_id));
        self.monitor.set_access_denied(None, Right::ReadGroup, resource);
    }

    /// The log end of every assigned partition, from what librdkafka learnt from the last
    /// fetch response (each carries every fetched partition's high watermark, and the
    /// broker answers a fetch as soon as any partition has a new record): no request.
    /// The partitions it cannot tell yet go to the poller for a ListOffsets.
    fn cached_log_ends(&mut self, link: &PollerLink, now: Millis) {
        let mut uncached = Vec::new();
        let assigned: Vec<PartitionRef> = self.monitor.assigned().collect();
        for a in assigned {
            let Some(name) = self.topics.c_name(a.stream, a.topic) else { continue };
            match cached_high_watermark(&self.consumer, name, a.partition) {
                Some(end) => self.monitor.log_end(a.stream, a.slot, end, now),
                None => uncached.push((name.to_string_lossy().into_owned(), a.partition)),
            }
        }
        let _ = link.uncached.send(uncached);
    }

    /// The histories learnt since the last tick into the monitor; the partitions newly
    /// assigned to streams with a baseline to the learner, one request per stream.
    fn exchange_histories(&mut self, link: &PollerLink) {
        let Some(history) = &link.history else { return };
        while let Ok(learned) = history.learned.try_recv() {
            let Some((stream, t)) = self.topics.get(&learned.topic) else { continue };
            for (p, h) in learned.partitions {
                if let Some(slot) = self.monitor.slot_of(stream, t, p) {
                    self.monitor.learned(stream, slot, h);
                }
            }
        }
        // one request per topic of a stream
        let mut wanted: Vec<(usize, HistoryRequest)> = Vec::new();
        for a in self.monitor.take_history_requests() {
            match wanted.iter_mut().find(|(t, r)| r.stream == a.stream && *t == a.topic) {
                Some((_, r)) => r.partitions.push(a.partition),
                None => {
                    let Some(spec) = self.monitor.streams().nth(a.stream) else { continue };
                    let Some(baseline) = spec.baseline else { continue };
                    let Some(topic) = self.monitor.topics(a.stream).nth(a.topic) else { continue };
                    let request = HistoryRequest {
                        stream: a.stream,
                        name: spec.name.clone(),
                        topic: topic.to_string(),
                        partitions: vec![a.partition],
                        history_ms: baseline.history_ms,
                    };
                    wanted.push((a.topic, request));
                }
            }
        }
        let wanted = wanted.into_iter().map(|(_, r)| r);
        for r in wanted {
            let _ = history.requests.send(r);
        }
    }

    /// What the log-end poller found since the last tick, into the monitor.
    /// Every Kafka Connect sink connector that reads a watched stream is watched as the
    /// consumer of its group, listed or not: the monitor watches it, the poller reads its
    /// group's committed offsets from the next poll on.
    fn watch_sinks(&mut self, link: &PollerLink, now: Millis) {
        for spec in self.monitor.unwatched_sinks() {
            let topics = self.topics.of_streams(&spec.streams);
            info!(consumer = %spec.name, group = %spec.group, "a Kafka Connect sink connector reads a watched stream: watched as a consumer");
            let (consumer, group) = (self.monitor.consumers().count(), spec.group.clone());
            self.monitor.watch_sink(spec, now);
            let _ = link.groups.send(WatchedGroup { consumer, group, topics, discovered: false });
        }
    }

    fn apply_polls(&mut self, link: &PollerLink) {
        let mut found_topics = false;
        while let Ok(poll) = link.polls.try_recv() {
            let (consumer, topics, monitor) = (&self.consumer, &mut self.topics, &mut self.monitor);
            let context = consumer.context();
            // the topics the patterns match first: this poll's log ends may be theirs
            let listed = poll.topics.unwrap_or_default();
            for (stream, names) in &listed.patterns {
                for name in names {
                    if topics.add(monitor, *stream, name) {
                        let of = monitor.streams().nth(*stream).map_or("", |s| s.name.as_str());
                        info!(stream = %of, topic = %name, "a topic matches the stream's topic_pattern: read from now on");
                        found_topics = true;
                    }
                }
                monitor.set_unmatched(*stream, names.is_empty());
            }
            for (stream, topic) in monitor.topics_listed(listed.discovered) {
                info!(%topic, "topic discovered: read as a stream of its own");
                topics.add_stream(stream, &topic);
                let _ = link.topics.send(topic);
                found_topics = true;
            }
            match poll.log_ends {
                // a poll begun before librdkafka lost every broker says nothing of now
                Some(_) if poll.at <= context.brokers_down_at.load(Ordering::Relaxed) => {}
                Some(ends) => {
                    context.brokers_down_at.store(0, Ordering::Relaxed);
                    monitor.set_kafka_status(KafkaStatus::Up, None);
                    *context.auth_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
                    // Describe denied on a topic of the stream: the first one named
                    let mut denied: Vec<Option<String>> = vec![None; monitor.streams().count()];
                    for (topic, s, t) in topics.iter() {
                        monitor.set_topic_missing(s, t, ends.missing.iter().any(|m| m == topic));
                        if denied[s].is_none() && ends.denied.iter().any(|d| d == topic) {
                            denied[s] = Some(format!("Describe on topic {topic}"));
                        }
                    }
                    for (s, resource) in denied.into_iter().enumerate() {
                        monitor.set_access_denied(Some(s), Right::DescribeTopic, resource);
                    }
                    if monitor.has_co_partitioned_join() {
                        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
                        for (topic, _) in &ends.partitions {
                            *counts.entry(topic.as_str()).or_default() += 1;
                        }
                        for (topic, s, t) in topics.iter() {
                            if let Some(&n) = counts.get(topic) {
                                monitor.set_partition_count(s, t, n);
                            }
                        }
                    }
                    for (topic, p, end) in ends.offsets {
                        // A ListOffsets answer is older than what a fetch may have told
                        // since: the cache wins (a log end never goes back by mistake).
                        let Some((s, t)) = topics.get(&topic) else { continue };
                        let (Some(slot), Some(name)) = (monitor.slot_of(s, t, p), topics.c_name(s, t)) else {
                            continue;
                        };
                        if cached_high_watermark(consumer, name, p).is_none() {
                            monitor.log_end(s, slot, end, poll.at);
                        }
                    }
                }
                None => {
                    // the authentication failure says more than the poll's time-out
                    let auth = context.auth_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let why = auth.map(|a| format!("authentication failed: {a}")).or(poll.error);
                    monitor.set_kafka_status(KafkaStatus::Down, why);
                }
            }
            for (consumer, result) in poll.committed.into_iter().enumerate() {
                let Some(result) = result else { continue };
                match result {
                    Ok(offsets) => {
                        let offsets: Vec<Committed> = offsets
                            .into_iter()
                            .filter_map(|(topic, partition, offset)| {
                                let (stream, t) = topics.get(&topic)?;
                                Some(Committed { stream, slot: monitor.slot(stream, t, partition)?, offset })
                            })
                            .collect();
                        monitor.committed_offsets(consumer, &offsets, poll.at);
                    }
                    Err(error) => monitor.consumer_error(consumer, error),
                }
            }
            for (request, outcome) in &poll.fetched {
                let found = match outcome {
                    FetchOutcome::Records(records) => {
                        let borrowed: Vec<FetchedRecord<'_>> = records
                            .iter()
                            .map(|(offset, payload, timestamp)| FetchedRecord {
                                offset: *offset,
                                payload: payload.as_deref(),
                                timestamp: *timestamp,
                            })
                            .collect();
                        monitor.fetched(request, Fetched::Records(&borrowed), poll.at);
                        continue;
                    }
                    FetchOutcome::Expired { log_start } => Fetched::Expired { log_start: *log_start },
                    FetchOutcome::Failed => Fetched::Failed,
                };
                monitor.fetched(request, found, poll.at);
            }
            if let Some(listing) = poll.groups {
                monitor.groups_listed(listing, poll.at);
            }
        }
        if found_topics {
            self.topics_found(link);
        }
        self.send_group_changes(link);
    }

    /// New topics to read (a pattern's, discovered ones): the consumer subscribes to every
    /// watched topic afresh — unsubscribes first: librdkafka's change of a subscription in
    /// place left two replicas without an assignment under cooperative-sticky — so its
    /// group rebalances and the new partitions are assigned; and the poller reads the
    /// watched groups' offsets on them too.
    fn topics_found(&mut self, link: &PollerLink) {
        let names = self.topics.names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.subscribe(&refs) {
            warn!(error = %e, topics = ?names, "could not subscribe to the topics the patterns match");
        }
        for (consumer, spec, discovered) in self.monitor.read_groups() {
            let topics = self.topics.of_streams(&spec.streams);
            let _ = link.groups.send(WatchedGroup { consumer, group: spec.group.clone(), topics, discovered });
        }
    }

    /// The groups the monitor watches from now on (or no more), to the poller.
    fn send_group_changes(&mut self, link: &PollerLink) {
        for change in self.monitor.take_group_changes() {
            let topics = self.topics.of_streams(&change.streams);
            let forgotten = change.streams.is_empty();
            if forgotten {
                info!(group = %change.group, "a discovered group's offsets have been gone for forget_after: forgotten");
            } else {
                info!(group = %change.group, topics = ?topics, "consumer group discovered: watched");
            }
            let (consumer, group) = (change.consumer, change.group);
            let _ = link.groups.send(WatchedGroup { consumer, group, topics, discovered: true });
        }
    }
}

/// Counts a consume error; logs a few lines per burst (the counter has the rest).
pub(crate) fn consume_error(metrics: &SourceMetrics, logged: &mut u64, e: &KafkaError) {
    metrics.error(ErrorKind::Consume);
    if *logged < 10 || logged.is_power_of_two() {
        warn!(error = %e, "consume failed");
    }
    *logged += 1;
}
