//! The consumer's context: the rebalance callback that decides where each newly assigned
//! partition starts (offsets are never committed, so this is the only place), routes its
//! records to the record queue and hands the change to the consumer thread; and the
//! client callbacks that tell an unreachable cluster, a failed login or a denied group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pipewatch_core::{Millis, Monitor, StartPosition};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::client::{now_ms, Start};
use crate::metrics::{classify, ErrorKind, SourceMetrics};
use crate::records::QueueHandle;
use crate::topics::TopicTable;

pub(crate) enum Assignment {
    Assigned(Vec<(String, i32, StartPosition)>),
    Revoked(Vec<(String, i32)>),
}

pub(crate) struct SourceContext {
    pub(crate) start: Start,
    pub(crate) metrics: SourceMetrics,
    /// Assignment changes from the rebalance callback, for the consumer loop; `changed`
    /// says there are some, so the per-record path only reads an atomic.
    pub(crate) changes: Mutex<Vec<Assignment>>,
    pub(crate) changed: AtomicBool,
    /// Where newly assigned partitions' records are routed, while the consumer loop runs.
    pub(crate) records: Mutex<Option<QueueHandle>>,
    /// The authorizer denied Read on pipewatch's own group (joining it); cleared when
    /// partitions are assigned.
    pub(crate) group_denied: AtomicBool,
    /// The last authentication failure (SASL), until the cluster answers again.
    pub(crate) auth_error: Mutex<Option<String>>,
    /// When librdkafka said every broker is down (0: it did not, or the cluster
    /// answered a poll since): the cluster is down at once, before a poll times out.
    pub(crate) brokers_down_at: AtomicI64,
}

impl SourceContext {
    fn push_change(&self, change: Assignment) {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner).push(change);
        self.changed.store(true, Ordering::Release);
    }
}

pub(crate) fn apply_assignment_changes(
    consumer: &BaseConsumer<SourceContext>,
    monitor: &mut Monitor,
    topics: &TopicTable,
    now: Millis,
) {
    let changes = std::mem::take(&mut *consumer.context().changes.lock().unwrap_or_else(PoisonError::into_inner));
    for change in changes {
        match change {
            Assignment::Assigned(ps) => {
                // pipewatch joined its group: Read on it is allowed
                consumer.context().group_denied.store(false, Ordering::Relaxed);
                for (topic, p, start) in ps {
                    if let Some((s, t)) = topics.get(&topic) {
                        monitor.assign_partition(s, t, p, start, now);
                    }
                }
            }
            Assignment::Revoked(ps) => {
                for (topic, p) in ps {
                    let Some((s, t)) = topics.get(&topic) else { continue };
                    if let Some(slot) = monitor.slot_of(s, t, p) {
                        monitor.revoke(s, slot);
                    }
                }
            }
        }
    }
}

/// librdkafka's own log lines: its errors as warnings, the rest at debug level.
pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            warn!(facility = fac, "librdkafka: {message}")
        }
        _ => debug!(facility = fac, "librdkafka: {message}"),
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_librdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = classify(&error);
        self.metrics.error(kind);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => self.brokers_down_at.store(now_ms(), Ordering::Relaxed),
            Some(RDKafkaErrorCode::GroupAuthorizationFailed) => self.group_denied.store(true, Ordering::Relaxed),
            Some(RDKafkaErrorCode::Authentication) => {
                *self.auth_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_string());
            }
            _ => {}
        }
        // librdkafka repeats transport errors while a broker is down: keep them at debug,
        // the all-brokers-down state is what a person needs.
        if kind == ErrorKind::Transport {
            debug!(error = %error, "kafka: {reason}");
        } else {
            warn!(error = %error, "kafka: {reason}");
        }
    }
}

/// Partitions per topic in a line of bounded length: `orders: 3 (0-2), behaviour: 2 (0, 4)`;
/// a long list of partition numbers is cut (the full list is logged at debug level).
pub(crate) fn summary<'a>(partitions: impl Iterator<Item = (&'a str, i32)>) -> String {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(p);
    }
    let topics: Vec<String> = by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            let mut ranges: Vec<String> = Vec::new();
            let mut i = 0;
            while i < ps.len() {
                let mut j = i;
                while j + 1 < ps.len() && ps[j + 1] == ps[j] + 1 {
                    j += 1;
                }
                ranges.push(if i == j { ps[i].to_string() } else { format!("{}-{}", ps[i], ps[j]) });
                i = j + 1;
            }
            let shown = if ranges.len() > 8 {
                format!("{}, … {} more ranges", ranges[..8].join(", "), ranges.len() - 8)
            } else {
                ranges.join(", ")
            };
            format!("{t}: {} ({shown})", ps.len())
        })
        .collect();
    if topics.is_empty() {
        "none".into()
    } else {
        topics.join("; ")
    }
}

pub(crate) fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = set_start_offsets(consumer, self.start, &self.metrics, tpl);
                if let Some(records) = *self.records.lock().unwrap_or_else(PoisonError::into_inner) {
                    for (topic, p, _) in &starts {
                        records.route(consumer, topic, *p);
                    }
                }
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                info!(partitions = %summary(starts.iter().map(|(t, p, _)| (t.as_str(), *p))), "partitions assigned");
                debug!(partitions = ?starts, "partitions assigned, with their start");
                self.push_change(Assignment::Assigned(starts));
                r
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = partitions(tpl);
                info!(partitions = %summary(revoked.iter().map(|(t, p)| (t.as_str(), *p))), "partitions revoked");
                debug!(partitions = ?revoked, "partitions revoked");
                self.push_change(Assignment::Revoked(partitions(tpl)));
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance failed");
                self.metrics.error(ErrorKind::Rebalance);
                let revoked = consumer.assignment().map(|a| partitions(&a)).unwrap_or_default();
                self.push_change(Assignment::Revoked(revoked));
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.metrics.error(ErrorKind::Rebalance);
            warn!(error = %e, "failed to apply the partition assignment");
        }
    }
}

/// Decides where each newly assigned partition starts and sets it in `tpl` (of pipewatch's
/// group, and of a join's own consumer). Offsets are never committed, so this is the only
/// place a start is decided. `earliest` is looked up as the first offset with a
/// timestamp ≥ 0, so that an empty partition is known to be at its end (nothing to
/// replay).
pub(crate) fn set_start_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    start: Start,
    metrics: &SourceMetrics,
    tpl: &mut TopicPartitionList,
) -> Vec<(String, i32, StartPosition)> {
    let assigned = partitions(tpl);
    let since = match start {
        Start::Latest => {
            let _ = tpl.set_all_offsets(Offset::End);
            return assigned.into_iter().map(|(t, p)| (t, p, StartPosition::LogEnd)).collect();
        }
        Start::Earliest => 0,
        Start::Lookback(lookback) => now_ms() - lookback.as_millis() as Millis,
    };
    // Partition lists are built with `add_partition` + `set_offset` on the element:
    // `add_partition_offset` and `set_partition_offset` search the whole list for each
    // entry, quadratic in the partition count.
    let mut query = TopicPartitionList::with_capacity(assigned.len());
    for (topic, p) in &assigned {
        let _ = query.add_partition(topic, *p).set_offset(Offset::Offset(since));
    }
    let found = match consumer.offsets_for_times(query, Duration::from_secs(10)) {
        Ok(found) => found,
        Err(e) => {
            warn!(error = %e, "failed to look up start offsets; falling back to auto.offset.reset");
            metrics.error(ErrorKind::Rebalance);
            let fallback = if start == Start::Earliest { Offset::Beginning } else { Offset::End };
            let _ = tpl.set_all_offsets(fallback);
            let start = if start == Start::Earliest { StartPosition::Unknown } else { StartPosition::LogEnd };
            return assigned.into_iter().map(|(t, p)| (t, p, start)).collect();
        }
    };
    let found = found.elements();
    let found: HashMap<(&str, i32), i64> = found
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 && e.error().is_ok() => Some(((e.topic(), e.partition()), o)),
            _ => None,
        })
        .collect();
    let mut starts = Vec::with_capacity(assigned.len());
    for mut e in tpl.elements() {
        // No record that recent (or an empty partition): start at the end.
        let (offset, start) = match found.get(&(e.topic(), e.partition())) {
            Some(&o) => (Offset::Offset(o), StartPosition::At(o)),
            None => (Offset::End, StartPosition::LogEnd),
        };
        let _ = e.set_offset(offset);
        starts.push((e.topic().to_string(), e.partition(), start));
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_log_lines_stay_short_at_thousands_of_partitions() {
        let contiguous: Vec<(String, i32)> = (0..5000).map(|p| ("orders".to_string(), p)).collect();
        let line = summary(contiguous.iter().map(|(t, p)| (t.as_str(), *p)));
        assert_eq!(line, "orders: 5000 (0-4999)");
        // every other partition (a replica's share): ranges are cut after 8
        let scattered: Vec<(String, i32)> =
            (0..5000).step_by(2).map(|p| ("behaviour".to_string(), p)).chain([("orders".to_string(), 7)]).collect();
        let line = summary(scattered.iter().map(|(t, p)| (t.as_str(), *p)));
        assert!(
            line.starts_with("behaviour: 2500 (0, 2, 4, 6, 8, 10, 12, 14, … 2492 more ranges); orders: 1 (7)"),
            "{line}"
        );
        assert!(line.len() < 200);
        assert_eq!(summary(std::iter::empty()), "none");
    }
}
