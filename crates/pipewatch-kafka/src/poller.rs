//! The log-end poller thread: each tick the monitored topics' metadata (missing topics,
//! a denied Describe, an unreachable cluster), the log ends the consumer cannot tell yet,
//! every watched group's committed offsets (OffsetFetch: a group is never joined), and the
//! records fetched for committed offsets older than the offset index.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use pipewatch_core::FetchRequest;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::client::{client_config, now_ms, SourceConfig};
use pipewatch_core::spec::ConsumerError;

use crate::messages::{FetchOutcome, LogEndPoll, LogEnds};
use crate::metrics::{ErrorKind, SourceMetrics};

/// Records fetched per tick at most, so that a burst of far-behind groups cannot delay
/// the log-end poll.
pub(crate) const FETCHES_PER_TICK: usize = 4;

/// The poller thread's clients: metadata, log ends the consumer cannot tell, the
/// watched groups' offsets, record fetches.
pub(crate) struct Poller {
    pub(crate) client: BaseConsumer,
    pub(crate) topics: Vec<String>,
    pub(crate) groups: Vec<WatchedGroup>,
    /// Reads single records by offset (no group); present when consumers are watched.
    pub(crate) fetcher: Option<BaseConsumer>,
    /// Records the monitor wants fetched.
    pub(crate) requests: Receiver<Vec<FetchRequest>>,
    /// Assigned partitions whose log end the consumer has not learnt from a fetch yet.
    pub(crate) uncached: Receiver<Vec<(String, i32)>>,
    /// Groups watched from now on (Kafka Connect sinks found while running), in the
    /// order the monitor watches them: after the configured ones.
    pub(crate) added: Receiver<WatchedGroup>,
}

/// A watched consumer's group, read through a client of its own that never joins,
/// subscribes or commits: it only asks the group coordinator for committed offsets.
pub(crate) struct WatchedGroup {
    pub(crate) group: String,
    pub(crate) client: BaseConsumer<GroupContext>,
    pub(crate) topics: Vec<String>,
}

/// A watched group's client remembers what the authorizer answered: librdkafka reports
/// a denied FindCoordinator through the error callback, and the OffsetFetch then times out.
#[derive(Default)]
pub(crate) struct GroupContext {
    denied: AtomicBool,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) {
            self.denied.store(true, Ordering::Relaxed);
        } else {
            debug!(error = %error, "watched group's client: {reason}");
        }
    }
}

impl ConsumerContext for GroupContext {}

/// Polls every partition's log end of the monitored topics once per tick: metadata for
/// the partition list, then one ListOffsets (latest) per leader broker.
pub(crate) fn poll_log_ends(
    poller: Poller,
    tick: Duration,
    metrics: SourceMetrics,
    shutdown: Arc<AtomicBool>,
    tx: Sender<LogEndPoll>,
) {
    let Poller { client, topics, mut groups, fetcher, requests, uncached, added } = poller;
    let mut wanted: Vec<FetchRequest> = Vec::new();
    let mut uncached_now: Vec<(String, i32)> = Vec::new();
    let timeout = tick.max(Duration::from_secs(2)) * 3;
    let mut failures = 0u32;
    let mut ever_up = false;
    let mut missing: Vec<String> = Vec::new();
    while !shutdown.load(Ordering::Relaxed) {
        let started = std::time::Instant::now();
        // only the consumer's latest word counts
        while let Ok(latest) = uncached.try_recv() {
            uncached_now = latest;
        }
        let result = poll_once(&client, &topics, &uncached_now, timeout);
        let at = now_ms();
        let mut error = None;
        let log_ends = match result {
            Ok(ends) => {
                if failures > 0 || !ever_up {
                    info!("kafka reachable: {} partitions in the monitored topics", ends.partitions.len());
                }
                if ends.missing != missing {
                    for topic in ends.missing.iter().filter(|t| !missing.contains(t)) {
                        warn!(%topic, "topic does not exist: its stream is topic_missing until it does");
                    }
                    for topic in missing.iter().filter(|t| !ends.missing.contains(t)) {
                        info!(%topic, "topic exists now");
                    }
                    missing = ends.missing.clone();
                }
                failures = 0;
                ever_up = true;
                Some(ends)
            }
            Err((kind, e)) => {
                metrics.error(kind);
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    warn!(error = %e, failures, "failed to poll log ends");
                }
                error = Some(e.to_string());
                // One failure after a good poll may be a blip; two in a row (or none ever
                // good) is a cluster that does not answer.
                if failures >= 2 || !ever_up {
                    None
                } else {
                    continue;
                }
            }
        };
        groups.extend(added.try_iter());
        let committed = match &log_ends {
            Some(ends) => groups.iter().map(|g| committed_offsets(g, ends, timeout, &metrics)).collect(),
            None => Vec::new(),
        };
        // Only the newest request per partition of a consumer matters: the group has
        // moved past the others.
        while let Ok(more) = requests.try_recv() {
            for r in more {
                wanted.retain(|w| (w.consumer, w.stream, w.partition) != (r.consumer, r.stream, r.partition));
                wanted.push(r);
            }
        }
        let mut fetched = Vec::new();
        if let (Some(fetcher), Some(_)) = (&fetcher, &log_ends) {
            let n = wanted.len().min(FETCHES_PER_TICK);
            for request in wanted.drain(..n) {
                let outcome = fetch_records(fetcher, &request, timeout);
                metrics.fetched(&outcome);
                fetched.push((request, outcome));
            }
        }
        if tx.send(LogEndPoll { at, log_ends, error, committed, fetched }).is_err() {
            return;
        }
        let elapsed = started.elapsed();
        let mut left = tick.saturating_sub(elapsed);
        while !left.is_zero() && !shutdown.load(Ordering::Relaxed) {
            let step = left.min(Duration::from_millis(100));
            std::thread::sleep(step);
            left -= step;
        }
    }
}

/// One tick of the poller: the monitored topics' partitions (metadata, one request per
/// topic: a cluster that does not answer is down), and the log ends of `wanted` (one
/// ListOffsets per leader broker; usually none are wanted, see `cached_log_ends`).
pub(crate) fn poll_once(
    client: &BaseConsumer,
    topics: &[String],
    wanted: &[(String, i32)],
    timeout: Duration,
) -> Result<LogEnds, (ErrorKind, KafkaError)> {
    let mut query = TopicPartitionList::new();
    let mut ends = LogEnds::default();
    for topic in topics {
        match topic_partitions(client, topic, timeout).map_err(|e| (ErrorKind::Metadata, e))? {
            TopicMeta::Denied => ends.denied.push(topic.clone()),
            TopicMeta::Missing => ends.missing.push(topic.clone()),
            TopicMeta::Partitions(partitions) => {
                let first = ends.partitions.len();
                ends.partitions.extend(partitions.into_iter().map(|p| (topic.clone(), p)));
                let exists: std::collections::HashSet<i32> = ends.partitions[first..].iter().map(|(_, p)| *p).collect();
                // linear, unlike add_partition_offset (see set_start_offsets)
                for (_, p) in wanted.iter().filter(|(t, p)| t == topic && exists.contains(p)) {
                    query.add_partition(topic, *p).set_offset(Offset::End).map_err(|e| (ErrorKind::LogEndPoll, e))?;
                }
            }
        }
    }
    if query.count() == 0 {
        return Ok(ends);
    }
    let found = client.offsets_for_times(query, timeout).map_err(|e| (ErrorKind::LogEndPoll, e))?;
    ends.offsets = found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if e.error().is_ok() => Some((e.topic().to_string(), e.partition(), o)),
            _ => None,
        })
        .collect();
    Ok(ends)
}

/// A watched group's committed offsets for the partitions of its topics (OffsetFetch;
/// `None` where it committed none).
pub(crate) fn committed_offsets(
    group: &WatchedGroup,
    ends: &LogEnds,
    timeout: Duration,
    metrics: &SourceMetrics,
) -> Result<Vec<(String, i32, Option<i64>)>, ConsumerError> {
    let partitions = ends.partitions.iter().filter(|(t, _)| group.topics.contains(t)).map(|(t, p)| (t.as_str(), *p));
    read_committed(&group.client, partitions, timeout).map_err(|e| {
        metrics.error(ErrorKind::OffsetFetch);
        group_error(&group.client, &group.group, e)
    })
}

/// What a watched group's failed read says: the authorizer's no, named, or the error.
pub(crate) fn group_error(client: &BaseConsumer<GroupContext>, group: &str, e: KafkaError) -> ConsumerError {
    let denied = client.context().denied.swap(false, Ordering::Relaxed)
        || e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed);
    let error = if denied { format!("access denied: Describe on group {group}") } else { e.to_string() };
    ConsumerError { message: error, denied }
}

/// A client that reads `group`'s committed offsets: it has the group id, and never
/// subscribes, assigns or commits.
pub(crate) fn group_client(config: &SourceConfig, group: &str) -> KafkaResult<BaseConsumer<GroupContext>> {
    let mut cc = client_config(config, false);
    cc.set("group.id", group);
    cc.create_with_context(GroupContext::default())
}

/// The group's committed offsets for these partitions (OffsetFetch); `None` where it
/// committed none.
pub(crate) fn read_committed<'a, C: ConsumerContext>(
    client: &BaseConsumer<C>,
    partitions: impl Iterator<Item = (&'a str, i32)>,
    timeout: Duration,
) -> KafkaResult<Vec<(String, i32, Option<i64>)>> {
    let mut query = TopicPartitionList::new();
    for (topic, p) in partitions {
        query.add_partition(topic, p);
    }
    if query.count() == 0 {
        return Ok(Vec::new());
    }
    let found = client.committed_offsets(query, timeout)?;
    Ok(found
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 && e.error().is_ok() => (e.topic().to_string(), e.partition(), Some(o)),
            _ => (e.topic().to_string(), e.partition(), None),
        })
        .collect())
}

/// Reads the record before `request.offset` and the first at or after it (the one a
/// consumer whose committed offset this is will read next).
pub(crate) fn fetch_records(fetcher: &BaseConsumer, request: &FetchRequest, timeout: Duration) -> FetchOutcome {
    let from = (request.offset - 1).max(0);
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(&request.topic, request.partition, Offset::Offset(from)).is_err()
        || fetcher.assign(&tpl).is_err()
    {
        return FetchOutcome::Failed;
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut records = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break FetchOutcome::Failed;
        }
        match fetcher.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) if m.topic() == request.topic && m.partition() == request.partition => {
                let offset = m.offset();
                if offset >= from {
                    records.push((offset, m.payload().map(<[u8]>::to_vec), m.timestamp().to_millis()));
                }
                if offset >= request.offset {
                    break FetchOutcome::Records(std::mem::take(&mut records));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let expired = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
                );
                if expired {
                    let low = fetcher.fetch_watermarks(&request.topic, request.partition, timeout).ok();
                    break FetchOutcome::Expired { log_start: low.map(|(low, _)| low) };
                }
                debug!(error = %e, topic = %request.topic, partition = request.partition, "record fetch failed");
                break FetchOutcome::Failed;
            }
            None => {}
        }
    };
    let _ = fetcher.unassign();
    outcome
}

/// What the cluster's metadata says of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicMeta {
    /// Its partitions; none this time on other topic errors (a leader election under way).
    Partitions(Vec<i32>),
    /// It does not exist.
    Missing,
    /// The authorizer does not let pipewatch describe it (existing or not).
    Denied,
}

pub(crate) fn topic_partitions<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicMeta, KafkaError> {
    let md = client.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(TopicMeta::Missing);
    };
    Ok(match t.error() {
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => TopicMeta::Missing,
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) => TopicMeta::Denied,
        Some(_) => TopicMeta::Partitions(Vec::new()),
        None => TopicMeta::Partitions(t.partitions().iter().map(|p| p.id()).collect()),
    })
}
