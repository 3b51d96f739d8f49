//! The history learner: for streams with a baseline, each assigned partition's offset
//! at every hour boundary of the history (offsets by time, one ListOffsets per leader
//! broker for all the partitions asked at once), on a thread of its own so that a long
//! history never delays the log-end poll. Read-only: no group, no commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipewatch_core::baseline::{hour_of, HourlyRates, PartitionHistory, HOUR_MS};
use pipewatch_core::Millis;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::source::{now_ms, ErrorKind, SourceMetrics};

/// Partitions of one stream whose history is wanted.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRequest {
    pub stream: usize,
    pub name: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub history_ms: Millis,
}

/// What was learnt: per partition its history, `None` where it could not be read.
pub(crate) struct Learned {
    pub stream: usize,
    pub partitions: Vec<(i32, Option<PartitionHistory>)>,
}

/// How long one lookup may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// After a failure, the partitions are handed back this much later (and asked again).
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub(crate) fn learn_histories(
    client: BaseConsumer,
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
        let result = learn(&client, &request, now_ms(), &metrics, &shutdown);
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
        if learned.send(Learned { stream: request.stream, partitions }).is_err() {
            return;
        }
    }
}

/// The offsets at each hour boundary of the history, from the newest back; the log end
/// first (a boundary after the last record is at the log end), the log start last.
fn learn(
    client: &BaseConsumer,
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
        let found = client.offsets_for_times(tpl, TIMEOUT)?;
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
    let mut by_time: Vec<Vec<Option<i64>>> = Vec::new();
    for hour in (first_hour..=now_hour).rev() {
        if shutdown.load(Ordering::Relaxed) {
            return Err(KafkaError::Canceled);
        }
        by_time.push(lookup(Offset::Offset(hour * HOUR_MS))?);
    }
    by_time.reverse();
    let starts = lookup(Offset::Beginning)?;
    Ok((0..request.partitions.len())
        .map(|i| {
            let column: Vec<Option<i64>> = by_time.iter().map(|row| row[i]).collect();
            let (start, end) = (starts[i].unwrap_or(0), ends[i].unwrap_or(0));
            PartitionHistory::from_offsets(first_hour, start, end, &column)
        })
        .collect())
}
