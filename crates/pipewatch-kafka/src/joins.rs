//! The joins' own consumer (`[[pair]] join.partitions = "all"`): every partition of the
//! followers' topics, assigned (never joined or committed: pipewatch's group id is only
//! librdkafka's condition for assigning), read on a thread of its own from the source's
//! `start`. Each record's event time and key ([`FollowerReader`]) go to the consumer
//! thread in batches, which applies them to the monitor's joins (a follower in a
//! schema-registry format: the record as it came, decoded there, where the schemas are): a replica judges the
//! leader records of its own partitions against the follower keys of all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipewatch_core::{FollowerPayload, FollowerReader, FollowerRecord, Millis};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::client::{now_ms, Start};
use crate::messages::JoinBatch;
use crate::metrics::{classify, ErrorKind, SourceMetrics};
use crate::reader::consume_error;
use crate::rebalance::{log_librdkafka, set_start_offsets, summary};
use crate::records::{Item, RecordQueue};

/// Records read before they go to the consumer thread at most; they also go when the
/// queue has nothing more for now.
const BATCH: usize = 4096;
/// How often the followers' topics are looked up for new partitions.
const METADATA_EVERY: Duration = Duration::from_secs(10);

/// Counts the consumer's errors with the source's and logs them as the group's are.
pub(crate) struct JoinContext {
    pub(crate) metrics: SourceMetrics,
}

impl ClientContext for JoinContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_librdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = classify(&error);
        self.metrics.error(kind);
        // the group's consumer tells an unreachable cluster already
        if kind == ErrorKind::Transport || kind == ErrorKind::AllBrokersDown {
            debug!(error = %error, "kafka (join consumer): {reason}");
        } else {
            warn!(error = %error, "kafka (join consumer): {reason}");
        }
    }
}

impl ConsumerContext for JoinContext {}

/// A join reading a topic, and the slot it gives each of the topic's partitions.
struct Reading {
    reader: usize,
    /// By partition number (partitions are assigned in order, from 0).
    slots: Vec<u32>,
}

/// The joins' consumer thread: assigns the followers' partitions as the metadata lists
/// them and sends what it reads until `shutdown`.
pub(crate) struct Joins {
    pub(crate) consumer: BaseConsumer<JoinContext>,
    pub(crate) readers: Vec<FollowerReader>,
    pub(crate) start: Start,
    pub(crate) metrics: SourceMetrics,
    pub(crate) batches: SyncSender<JoinBatch>,
}

impl Joins {
    pub(crate) fn run(self, shutdown: Arc<AtomicBool>) {
        let mut by_topic: HashMap<String, Vec<Reading>> = HashMap::new();
        for (i, r) in self.readers.iter().enumerate() {
            for t in &r.topics {
                by_topic.entry(t.clone()).or_default().push(Reading { reader: i, slots: Vec::new() });
            }
        }
        // slots are given per join over all its topics
        let mut next_slot = vec![0u32; self.readers.len()];
        let mut batches: Vec<Vec<FollowerRecord>> = vec![Vec::new(); self.readers.len()];
        // a schema-registry follower's records, as they came
        let mut payloads: Vec<Vec<FollowerPayload>> = vec![Vec::new(); self.readers.len()];
        let mut assigned: HashMap<String, i32> = HashMap::new();
        let mut listed_at: Option<Instant> = None;
        let mut errors_logged = 0u64;
        // the assigned partitions' records, read in batches (as the group's consumer does);
        // dropped before the consumer, at the end of this call
        let mut queue = RecordQueue::new(&self.consumer);
        while !shutdown.load(Ordering::Relaxed) {
            if listed_at.is_none_or(|at| at.elapsed() >= METADATA_EVERY) {
                listed_at = Some(Instant::now());
                self.assign_new(&mut by_topic, &mut assigned, &mut next_slot, &queue);
            }
            let readers = &self.readers;
            let mut take = |topic: &str, partition: i32, payload: Option<&[u8]>, ts: Option<Millis>, arrival| {
                let Some(readings) = by_topic.get(topic) else { return };
                for r in readings {
                    let Some(&slot) = usize::try_from(partition).ok().and_then(|p| r.slots.get(p)) else {
                        continue;
                    };
                    let reader = &readers[r.reader];
                    if reader.encoded {
                        let payload = payload.map(<[u8]>::to_vec);
                        payloads[r.reader].push(FollowerPayload { slot, payload, timestamp: ts, arrival });
                    } else if let Some((t, key)) = reader.read(payload, ts, arrival) {
                        batches[r.reader].push(FollowerRecord { slot, t, key });
                    }
                }
            };
            let mut failed = |e: &KafkaError| consume_error(&self.metrics, &mut errors_logged, e);
            // events, and records fetched before their partition was routed to the queue
            while let Some(polled) = self.consumer.poll(Duration::ZERO) {
                match polled {
                    Ok(msg) => take(msg.topic(), msg.partition(), msg.payload(), msg.timestamp().to_millis(), now_ms()),
                    Err(e) => failed(&e),
                }
            }
            let mut read = 0;
            while read < BATCH {
                let wait = Duration::from_millis(if read == 0 { 100 } else { 0 });
                let arrival = now_ms();
                let n = queue.read(wait, |item| match item {
                    Item::Record(r) => take(r.topic, r.partition, r.payload, r.timestamp, arrival),
                    Item::Error(e, _) => failed(&e),
                });
                if n == 0 {
                    break;
                }
                read += n;
            }
            let at = now_ms();
            for (i, (records, payloads)) in batches.iter_mut().zip(&mut payloads).enumerate() {
                if records.is_empty() && payloads.is_empty() {
                    continue;
                }
                let (records, payloads) = (std::mem::take(records), std::mem::take(payloads));
                let batch = JoinBatch { join: self.readers[i].join, records, payloads, at };
                // the consumer thread is behind: wait for it (the records wait in the broker)
                let mut batch = Some(batch);
                while let Some(b) = batch.take() {
                    match self.batches.try_send(b) {
                        Ok(()) => {}
                        Err(TrySendError::Full(b)) if !shutdown.load(Ordering::Relaxed) => {
                            std::thread::sleep(Duration::from_millis(5));
                            batch = Some(b);
                        }
                        Err(_) => return,
                    }
                }
            }
        }
        info!("join consumer stopped");
    }

    /// Assigns the followers' partitions the metadata lists and none is assigned yet,
    /// each from the source's start.
    fn assign_new(
        &self,
        by_topic: &mut HashMap<String, Vec<Reading>>,
        assigned: &mut HashMap<String, i32>,
        next_slot: &mut [u32],
        queue: &RecordQueue,
    ) {
        let mut tpl = TopicPartitionList::new();
        let mut grown = Vec::new();
        for (topic, readings) in by_topic.iter_mut() {
            let count = match self.consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                Ok(m) => m.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len()),
                Err(e) => {
                    // the group's poller names a missing topic or an unreachable cluster
                    debug!(error = %e, %topic, "join consumer: no metadata");
                    continue;
                }
            };
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            let from = assigned.get(topic).copied().unwrap_or(0);
            for p in from..count {
                tpl.add_partition(topic, p);
                for r in readings.iter_mut() {
                    // given once: an assignment tried again keeps the slot
                    if r.slots.len() <= p as usize {
                        r.slots.push(next_slot[r.reader]);
                        next_slot[r.reader] += 1;
                    }
                }
            }
            if count > from {
                grown.push((topic.clone(), from));
                assigned.insert(topic.clone(), count);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        let starts = set_start_offsets(&self.consumer, self.start, &self.metrics, &mut tpl);
        match self.consumer.incremental_assign(&tpl) {
            Ok(()) => {
                // the partitions exist in the client once assigned
                for (topic, p, _) in &starts {
                    queue.handle().route(&self.consumer, topic, *p);
                }
                info!(
                    partitions = %summary(starts.iter().map(|(t, p, _)| (t.as_str(), *p))),
                    "join consumer: follower partitions read for the join"
                )
            }
            Err(e) => {
                // tried again at the next lookup
                self.metrics.error(ErrorKind::Rebalance);
                warn!(error = %e, "join consumer: failed to assign the follower partitions");
                for (topic, from) in grown {
                    assigned.insert(topic, from);
                }
            }
        }
    }
}
