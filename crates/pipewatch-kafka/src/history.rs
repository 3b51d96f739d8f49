//! The history learner: for streams with a baseline, each assigned partition's offset
//! at every hour boundary of the history (offsets by time, one ListOffsets per leader
//! broker for all the partitions asked at once), on a thread of its own so that a long
//! history never delays the log-end poll. Read-only: nothing is committed and no group
//! is joined (the reader used when the broker has no time index assigns partitions under
//! pipewatch's own group id, as the record fetcher does).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipewatch_core::baseline::{hour_of, HourlyRates, PartitionHistory, HOUR_MS};
use pipewatch_core::Millis;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::client::now_ms;
use crate::messages::{HistoryRequest, Learned};
use crate::metrics::{ErrorKind, SourceMetrics};

/// How long one lookup may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// After a failure, the partitions are handed back this much later (and asked again).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The learner's clients: offsets by time, and (made when first needed) a reader for a
/// broker that cannot look offsets up by time.
pub(crate) struct Clients {
    pub lookups: BaseConsumer,
    /// The config of the reader: pipewatch's own group id (librdkafka assigns only with
    /// one), never joined or committed.
    pub reader: ClientConfig,
}

pub(crate) fn learn_histories(
    clients: Clients,
    requests: Receiver<HistoryRequest>,
    learned: Sender<Learned>,
    metrics: SourceMetrics,
    shutdown: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    while !shutdown.load(Ordering::Relaxed) {
        let request = match requests.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let started = Instant::now();
        let calls_before = metrics.history_requests.get();
        let result = learn(&clients, &request, now_ms(), &metrics, &shutdown);
        let calls = metrics.history_requests.get() - calls_before;
        let partitions = match result {
            Ok(histories) => {
                failures = 0;
                let hours = HourlyRates::sum(&histories).known();
                info!(
                    stream = %request.name,
                    partitions = histories.len(),
                    calls,
                    seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                    "history learnt: {hours} complete hours"
                );
                // the first and the current hour are never complete
                let asked = (request.history_ms / HOUR_MS) as usize;
                if hours + 2 < asked {
                    warn!(
                        stream = %request.name,
                        "the topic holds {hours} complete hours of the {asked} its baseline asks for (its retention, \
                         or its age): the slots are hours of the day until 13 days are known"
                    );
                }
                request.partitions.iter().copied().zip(histories.into_iter().map(Some)).collect()
            }
            Err(e) => {
                if shutdown.load(Ordering::Relaxed) {
                    return;
                }
                metrics.error(ErrorKind::History);
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    warn!(stream = %request.name, error = %e, failures, "failed to read the stream's history; retrying");
                }
                std::thread::sleep(RETRY_AFTER);
                request.partitions.iter().map(|&p| (p, None)).collect()
            }
        };
        if learned.send(Learned { topic: request.topic.clone(), partitions }).is_err() {
            return;
        }
    }
}

/// The offsets at each hour boundary of the history: the log end first (a boundary after
/// the last record is at the log end), one lookup at the epoch (does the broker have a
/// time index?), the log start, then the boundaries from the newest back (or, without a
/// time index, the records themselves).
fn learn(
    clients: &Clients,
    request: &HistoryRequest,
    now: Millis,
    metrics: &SourceMetrics,
    shutdown: &AtomicBool,
) -> Result<Vec<PartitionHistory>, KafkaError> {
    // One lookup: every partition's offset for `offset` (a time, or the log end or start);
    // `None` where no record is at or after the time.
    let lookup = |offset: Offset| -> Result<Vec<Option<i64>>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for &p in &request.partitions {
            tpl.add_partition(&request.topic, p).set_offset(offset)?;
        }
        metrics.history_requests.inc();
        let found = clients.lookups.offsets_for_times(tpl, TIMEOUT)?;
        let mut by_partition = HashMap::with_capacity(request.partitions.len());
        for e in found.elements_for_topic(&request.topic) {
            e.error()?;
            by_partition.insert(e.partition(), if let Offset::Offset(o) = e.offset() { Some(o) } else { None });
        }
        request
            .partitions
            .iter()
            .map(|p| by_partition.get(p).copied().ok_or(KafkaError::OffsetFetch(RDKafkaErrorCode::UnknownPartition)))
            .collect()
    };
    let ends = lookup(Offset::End)?;
    let now_hour = hour_of(now);
    let first_hour = now_hour - request.history_ms / HOUR_MS;
    // A broker with a time index has a record at or after the epoch in any partition
    // with records; one without (librdkafka's mock cluster) answers "none".
    let since_epoch = lookup(Offset::Offset(0))?;
    let starts = lookup(Offset::Beginning)?;
    let unindexed = (0..request.partitions.len())
        .any(|i| since_epoch[i].is_none() && ends[i].unwrap_or(0) > starts[i].unwrap_or(0));
    let by_time = if unindexed {
        info!(stream = %request.name, "the broker does not look offsets up by time: reading the history's records instead");
        read_records(clients, request, &starts, &ends, first_hour, now_hour, shutdown)?
    } else {
        let mut by_time: Vec<Vec<Option<i64>>> = Vec::new();
        for hour in (first_hour..=now_hour).rev() {
            if shutdown.load(Ordering::Relaxed) {
                return Err(KafkaError::Canceled);
            }
            by_time.push(lookup(Offset::Offset(hour * HOUR_MS))?);
        }
        by_time.reverse();
        by_time
    };
    Ok((0..request.partitions.len())
        .map(|i| {
            let column: Vec<Option<i64>> = by_time.iter().map(|row| row[i]).collect();
            let (start, end) = (starts[i].unwrap_or(0), ends[i].unwrap_or(0));
            PartitionHistory::from_offsets(first_hour, start, end, &column)
        })
        .collect())
}

/// For a broker that cannot look offsets up by time: reads every record of the
/// partitions from the log start to the log end once and counts them by the hour of
/// their timestamp; the offset of a boundary is then the log start plus the records
/// before it (timestamps rise with offsets, as the broker's own time index assumes).
/// Rows by boundary from `first_hour` to `now_hour`, as the lookups give them.
fn read_records(
    clients: &Clients,
    request: &HistoryRequest,
    starts: &[Option<i64>],
    ends: &[Option<i64>],
    first_hour: i64,
    now_hour: i64,
    shutdown: &AtomicBool,
) -> Result<Vec<Vec<Option<i64>>>, KafkaError> {
    let reader: BaseConsumer = clients.reader.create()?;
    let n = request.partitions.len();
    let hours = (now_hour - first_hour + 1) as usize;
    // per partition: records before the first boundary, then per hour from it
    let mut before = vec![0i64; n];
    let mut counts = vec![vec![0i64; hours]; n];
    let mut tpl = TopicPartitionList::new();
    // partitions read up to their log end (or empty)
    let mut done: Vec<bool> = (0..n).map(|i| ends[i].unwrap_or(0) <= starts[i].unwrap_or(0)).collect();
    for (i, &p) in request.partitions.iter().enumerate().filter(|(i, _)| !done[*i]) {
        tpl.add_partition_offset(&request.topic, p, Offset::Offset(starts[i].unwrap_or(0)))?;
    }
    let index: HashMap<i32, usize> = request.partitions.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    reader.assign(&tpl)?;
    let mut idle_since = Instant::now();
    while done.iter().any(|d| !d) {
        if shutdown.load(Ordering::Relaxed) {
            return Err(KafkaError::Canceled);
        }
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                idle_since = Instant::now();
                let Some(&i) = index.get(&m.partition()) else { continue };
                let end = ends[i].unwrap_or(0);
                if m.offset() >= end {
                    continue;
                }
                let hour = m.timestamp().to_millis().map_or(first_hour, hour_of);
                if hour < first_hour {
                    before[i] += 1;
                } else if let Some(c) = counts[i].get_mut((hour - first_hour) as usize) {
                    *c += 1;
                }
                if m.offset() + 1 >= end {
                    done[i] = true;
                }
            }
            Some(Err(e)) => return Err(e),
            None if idle_since.elapsed() > TIMEOUT => {
                return Err(KafkaError::OffsetFetch(RDKafkaErrorCode::RequestTimedOut))
            }
            None => {
                // the last offsets may be control records, never delivered: the position says
                for e in reader.position()?.elements_for_topic(&request.topic) {
                    if let (Offset::Offset(pos), Some(&i)) = (e.offset(), index.get(&e.partition())) {
                        done[i] |= pos >= ends[i].unwrap_or(0);
                    }
                }
            }
        }
    }
    Ok((0..hours)
        .map(|h| {
            (0..n)
                .map(|i| {
                    let (start, end) = (starts[i].unwrap_or(0), ends[i].unwrap_or(0));
                    let offset = start + before[i] + counts[i][..h].iter().sum::<i64>();
                    (offset < end).then_some(offset)
                })
                .collect()
        })
        .collect())
}
