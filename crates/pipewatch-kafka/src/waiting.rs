//! Records that wait for their schema: a record whose writer schema id the monitor does
//! not know yet is not judged. The consumer thread holds it — and every later record of
//! its partition — in memory, asks the registry's side for the id once, and replays the
//! held records into the monitor, in order, once the answer is in: nothing is lost,
//! nothing counted invalid, and librdkafka's fetching is not disturbed.
//!
//! While the registry does not answer, records keep arriving: past [`MAX_HELD_BYTES`]
//! (or [`MAX_HELD_RECORDS`]) in all, every partition that holds records is paused
//! (librdkafka resumes a paused partition after the last record it delivered, which is
//! the last one held), and resumed once its records are replayed.

use std::collections::{HashMap, HashSet};

use pipewatch_core::{Millis, Monitor, PartitionSlot, RecordOutcome, SchemaFetch};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::TopicPartitionList;
use tracing::{info, warn};

use crate::messages::SchemaLink;
use crate::metrics::SourceMetrics;

/// Held payload bytes, over every partition, beyond which the partitions are paused.
pub(crate) const MAX_HELD_BYTES: usize = 64 << 20;
/// Held records, over every partition, beyond which the partitions are paused.
pub(crate) const MAX_HELD_RECORDS: usize = 200_000;

/// One record held, as it was read.
struct Held {
    offset: i64,
    payload: Option<Vec<u8>>,
    timestamp: Option<Millis>,
    arrival: Millis,
}

/// A partition's held records, and whether it is paused; its topic and number.
struct Partition {
    topic: String,
    partition: i32,
    records: Vec<Held>,
    paused: bool,
}

/// The records held for their schemas, and the registry's link.
pub(crate) struct Waiting {
    link: Option<SchemaLink>,
    metrics: SourceMetrics,
    /// By `(stream, slot)`.
    partitions: HashMap<(usize, PartitionSlot), Partition>,
    asked: HashSet<u32>,
    bytes: usize,
    records: usize,
}

impl Waiting {
    pub(crate) fn new(link: Option<SchemaLink>, metrics: SourceMetrics) -> Self {
        Self { link, metrics, partitions: HashMap::new(), asked: HashSet::new(), bytes: 0, records: 0 }
    }

    /// Holds a record the monitor said waits for schema `id` (asked for, once).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hold(
        &mut self,
        topic: &str,
        partition: i32,
        (stream, slot): (usize, PartitionSlot),
        id: u32,
        offset: i64,
        payload: Option<&[u8]>,
        timestamp: Option<Millis>,
        arrival: Millis,
    ) {
        self.bytes += payload.map_or(0, <[u8]>::len);
        self.records += 1;
        self.metrics.held.set(self.records as i64);
        let entry = self.partitions.entry((stream, slot));
        let held = entry.or_insert_with(|| Partition {
            topic: topic.to_string(),
            partition,
            records: Vec::new(),
            paused: false,
        });
        held.records.push(Held { offset, payload: payload.map(<[u8]>::to_vec), timestamp, arrival });
        self.ask(id, topic, partition, offset);
    }

    fn ask(&mut self, id: u32, topic: &str, partition: i32, offset: i64) {
        if self.ask_once(id) {
            info!(topic, partition, offset, schema_id = id, "records wait for their schema: asking the registry");
        }
    }

    /// Asks the registry's side for `id` unless asked already (until it is answered);
    /// `true` when asked now.
    fn ask_once(&mut self, id: u32) -> bool {
        let new = self.asked.insert(id);
        if let Some(link) = self.link.as_mut().filter(|_| new) {
            (link.ask)(id);
        }
        new
    }

    /// The joins' own consumer read a record of schema `id`, not known yet (its batch
    /// waits in the consumer thread): asked for once, as a held record's.
    pub(crate) fn ask_for_join(&mut self, id: u32) {
        if self.ask_once(id) {
            info!(schema_id = id, "the join consumer's records wait for their schema: asking the registry");
        }
    }

    /// Whether any record is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Past the budget, every partition that holds records is paused.
    pub(crate) fn pause_if_over<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if self.bytes <= MAX_HELD_BYTES && self.records <= MAX_HELD_RECORDS {
            return;
        }
        for held in self.partitions.values_mut().filter(|h| !h.paused) {
            let (topic, partition) = (held.topic.as_str(), held.partition);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, partition);
            match consumer.pause(&tpl) {
                Ok(()) => {
                    held.paused = true;
                    self.metrics.paused.inc();
                    info!(
                        topic,
                        partition,
                        held = held.records.len(),
                        "paused while its records wait for their schema"
                    );
                }
                Err(e) => warn!(topic, partition, error = %e, "could not pause the partition"),
            }
        }
    }

    /// The registry's answers into the monitor: each partition whose schema is known now
    /// has its held records replayed, in order, and is resumed.
    pub(crate) fn apply_answers<C: ConsumerContext>(&mut self, monitor: &mut Monitor, consumer: &BaseConsumer<C>) {
        let Some(link) = &self.link else { return };
        let answers: Vec<(u32, SchemaFetch)> = link.answers.try_iter().collect();
        for (id, fetch) in answers {
            let ready = monitor.schema_fetched(id, fetch);
            if monitor.waiting_for(id) {
                continue; // not answered: the registry's side asks again
            }
            self.asked.remove(&id);
            for (stream, slot) in ready {
                self.replay(monitor, consumer, stream, slot);
            }
        }
    }

    /// Replays a partition's held records; one that waits for another schema keeps the
    /// rest held.
    fn replay<C: ConsumerContext>(
        &mut self,
        monitor: &mut Monitor,
        consumer: &BaseConsumer<C>,
        stream: usize,
        slot: PartitionSlot,
    ) {
        let Some(mut held) = self.partitions.remove(&(stream, slot)) else { return };
        let mut records = std::mem::take(&mut held.records).into_iter();
        while let Some(r) = records.next() {
            let outcome = monitor.record(stream, slot, r.offset, r.payload.as_deref(), r.timestamp, r.arrival);
            if let RecordOutcome::Wait(next) = outcome {
                // a later version's record: it and the rest wait for that one
                held.records.push(r);
                held.records.extend(records);
                let topic = held.topic.clone();
                self.ask(next, &topic, held.partition, held.records[0].offset);
                self.recount();
                self.partitions.insert((stream, slot), held);
                return;
            }
        }
        self.recount();
        if held.paused {
            resume(consumer, &held.topic, held.partition);
        }
    }

    /// After a rebalance: the held records of a partition no longer assigned (or assigned
    /// afresh, reading again from where the new assignment starts) are dropped, and it is
    /// resumed.
    pub(crate) fn forget_revoked<C: ConsumerContext>(&mut self, monitor: &Monitor, consumer: &BaseConsumer<C>) {
        let gone: Vec<(usize, PartitionSlot)> =
            self.partitions.keys().copied().filter(|&(s, p)| !monitor.waiting(s, p)).collect();
        if gone.is_empty() {
            return;
        }
        for key in gone {
            if let Some(held) = self.partitions.remove(&key) {
                if held.paused {
                    resume(consumer, &held.topic, held.partition);
                }
            }
        }
        self.recount();
    }

    fn recount(&mut self) {
        self.records = self.partitions.values().map(|h| h.records.len()).sum();
        self.metrics.held.set(self.records as i64);
        self.metrics.paused.set(self.partitions.values().filter(|h| h.paused).count() as i64);
        self.bytes =
            self.partitions.values().flat_map(|h| &h.records).map(|r| r.payload.as_ref().map_or(0, Vec::len)).sum();
    }
}

fn resume<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.resume(&tpl) {
        warn!(topic, partition, error = %e, "could not resume the partition");
    }
}
