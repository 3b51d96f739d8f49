//! The source's own series: Kafka client errors by kind, record fetches by result, and the
//! offsets-by-time lookups of the history learner.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::messages::FetchOutcome;

/// Kafka error kinds counted in `pipewatch_kafka_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    AllBrokersDown,
    Transport,
    Consume,
    Rebalance,
    LogEndPoll,
    Metadata,
    OffsetFetch,
    /// Listing the consumer groups (`[discovery]`).
    ListGroups,
    /// Reading a stream's history for its baseline (ListOffsets by time).
    History,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::AllBrokersDown,
        ErrorKind::Transport,
        ErrorKind::Consume,
        ErrorKind::Rebalance,
        ErrorKind::LogEndPoll,
        ErrorKind::Metadata,
        ErrorKind::OffsetFetch,
        ErrorKind::ListGroups,
        ErrorKind::History,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::AllBrokersDown => "all_brokers_down",
            ErrorKind::Transport => "transport",
            ErrorKind::Consume => "consume",
            ErrorKind::Rebalance => "rebalance",
            ErrorKind::LogEndPoll => "log_end_poll",
            ErrorKind::Metadata => "metadata",
            ErrorKind::OffsetFetch => "offset_fetch",
            ErrorKind::ListGroups => "list_groups",
            ErrorKind::History => "history",
            ErrorKind::Other => "other",
        }
    }
}

/// The source's own series: `pipewatch_kafka_errors_total{kind}`, every kind from 0.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    errors: [IntCounter; ErrorKind::ALL.len()],
    /// `pipewatch_consumer_record_fetches_total{result}`: found, expired, failed.
    fetches: [IntCounter; 3],
    /// `pipewatch_baseline_offset_requests_total`: ListOffsets calls made to learn histories.
    pub history_requests: IntCounter,
    /// `pipewatch_records_held_for_schema` and `pipewatch_partitions_paused_for_schema`.
    pub(crate) held: IntGauge,
    pub(crate) paused: IntGauge,
}

impl SourceMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let vec =
            IntCounterVec::new(Opts::new("pipewatch_kafka_errors_total", "Kafka client errors by kind."), &["kind"])?;
        registry.register(Box::new(vec.clone()))?;
        let fetches = IntCounterVec::new(
            Opts::new(
                "pipewatch_consumer_record_fetches_total",
                "Records fetched to resolve a consumer's committed offset older than the offset index, by result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(fetches.clone()))?;
        let history_requests = IntCounter::new(
            "pipewatch_baseline_offset_requests_total",
            "Offsets-by-time lookups (one ListOffsets per leader broker each) made to learn the streams' history for their baselines.",
        )?;
        registry.register(Box::new(history_requests.clone()))?;
        let held = IntGauge::new(
            "pipewatch_records_held_for_schema",
            "Records held in memory until the schema registry gives their writer schema (read, in order, once it does).",
        )?;
        registry.register(Box::new(held.clone()))?;
        let paused = IntGauge::new(
            "pipewatch_partitions_paused_for_schema",
            "Partitions paused because the records held for their schema reached the limit (64 MiB or 200 000 records in all).",
        )?;
        registry.register(Box::new(paused.clone()))?;
        Ok(Self {
            history_requests,
            held,
            paused,
            errors: ErrorKind::ALL.map(|kind| vec.with_label_values(&[kind.as_str()])),
            fetches: ["found", "expired", "failed"].map(|r| fetches.with_label_values(&[r])),
        })
    }

    pub(crate) fn fetched(&self, outcome: &FetchOutcome) {
        let i = match outcome {
            FetchOutcome::Records(_) => 0,
            FetchOutcome::Expired { .. } => 1,
            FetchOutcome::Failed => 2,
        };
        self.fetches[i].inc();
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].inc();
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].get()
    }
}

pub(crate) fn classify(err: &KafkaError) -> ErrorKind {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::AllBrokersDown) => ErrorKind::AllBrokersDown,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve | RDKafkaErrorCode::Authentication,
        ) => ErrorKind::Transport,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_distinct_label_values() {
        let registry = Registry::new();
        let errors = SourceMetrics::register(&registry).unwrap();
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            for _ in 0..=i {
                errors.error(*kind);
            }
        }
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(errors.errors(*kind), i as u64 + 1, "{}", kind.as_str());
        }
        let exported = registry.gather();
        let errors_family = exported.iter().find(|f| f.name() == "pipewatch_kafka_errors_total").unwrap();
        assert_eq!(errors_family.get_metric().len(), ErrorKind::ALL.len(), "every kind from 0");
        let fetches = exported.iter().find(|f| f.name() == "pipewatch_consumer_record_fetches_total").unwrap();
        assert_eq!(fetches.get_metric().len(), 3, "found, expired, failed from 0");
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)), ErrorKind::AllBrokersDown);
    }
}
