//! Every metric family the tick renders on `/metrics`, declared once: its name, help,
//! type and labels. `/metrics` writes the families in the order of [`ALL`]; the rules
//! generator names the series it reads through the same constants, so a renamed metric
//! cannot leave a rule behind. (The source's and the receivers' own counters are
//! declared where they are registered: `pipewatch_kafka::SourceMetrics`,
//! `pipewatch_alert::DeliveryMetrics`.)

/// The metric types of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// One family. `labels` are all it can carry, in the order written; at `stream`
/// granularity a `partition` label is left out.
#[derive(Debug, PartialEq, Eq)]
pub struct Metric {
    /// Its place in [`ALL`].
    pub id: usize,
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

pub const KAFKA_UP: Metric = Metric {
    id: 0,
    name: "pipewatch_kafka_up",
    help: "1 when the Kafka cluster answers the log-end poll, else 0.",
    kind: Kind::Gauge,
    labels: &[],
};
pub const BUILD_INFO: Metric = Metric {
    id: 1,
    name: "pipewatch_build_info",
    help: "pipewatch's version; always 1.",
    kind: Kind::Gauge,
    labels: &["version"],
};
pub const PARTITION_WATERMARK_TIMESTAMP_SECONDS: Metric = Metric {
    id: 2,
    name: "pipewatch_partition_watermark_timestamp_seconds",
    help: "Max event time seen on the partition (never goes backwards).",
    kind: Kind::Gauge,
    labels: &["stream", "topic", "partition"],
};
pub const PARTITION_LAST_RECORD_TIMESTAMP_SECONDS: Metric = Metric {
    id: 3,
    name: "pipewatch_partition_last_record_timestamp_seconds",
    help: "When pipewatch read the partition's last record (arrival time).",
    kind: Kind::Gauge,
    labels: &["stream", "topic", "partition"],
};
pub const PARTITION_LOG_END_OFFSET: Metric = Metric {
    id: 4,
    name: "pipewatch_partition_log_end_offset",
    help: "The broker's high-watermark offset of the partition.",
    kind: Kind::Gauge,
    labels: &["stream", "topic", "partition"],
};
pub const PARTITION_POSITION_OFFSET: Metric = Metric {
    id: 5,
    name: "pipewatch_partition_position_offset",
    help: "The next offset pipewatch will read.",
    kind: Kind::Gauge,
    labels: &["stream", "topic", "partition"],
};
pub const PARTITION_BACKLOG_RECORDS: Metric = Metric {
    id: 6,
    name: "pipewatch_partition_backlog_records",
    help: "Records written but not yet read by pipewatch (log end - position).",
    kind: Kind::Gauge,
    labels: &["stream", "topic", "partition"],
};
pub const RECORDS_TOTAL: Metric = Metric {
    id: 7,
    name: "pipewatch_records_total",
    help: "Records read by pipewatch.",
    kind: Kind::Counter,
    labels: &["stream", "topic", "partition"],
};
pub const STREAM_PARTITIONS: Metric = Metric {
    id: 8,
    name: "pipewatch_stream_partitions",
    help: "Partitions of the stream's topic assigned to this pipewatch.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_ACTIVE_PARTITIONS: Metric = Metric {
    id: 9,
    name: "pipewatch_stream_active_partitions",
    help: "Assigned partitions that delivered a record within idle_partition_timeout.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_BACKLOG_RECORDS: Metric = Metric {
    id: 10,
    name: "pipewatch_stream_backlog_records",
    help: "Records written but not yet read by pipewatch, over the assigned partitions.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const RECORDS_INVALID_TOTAL: Metric = Metric {
    id: 11,
    name: "pipewatch_records_invalid_total",
    help: "Records whose event time could not be used, by reason.",
    kind: Kind::Counter,
    labels: &["stream", "topic", "partition", "reason"],
};
pub const RECORD_BYTES_TOTAL: Metric = Metric {
    id: 12,
    name: "pipewatch_record_bytes_total",
    help: "Payload bytes read by pipewatch.",
    kind: Kind::Counter,
    labels: &["stream", "topic", "partition"],
};
pub const GAPS_TOTAL: Metric = Metric {
    id: 13,
    name: "pipewatch_gaps_total",
    help: "Gaps opened: silences longer than max_silence.",
    kind: Kind::Counter,
    labels: &["stream", "topic", "partition"],
};
pub const STREAM_WATERMARK_TIMESTAMP_SECONDS: Metric = Metric {
    id: 14,
    name: "pipewatch_stream_watermark_timestamp_seconds",
    help: "Min of the active partitions' watermarks (max of all when every partition is idle).",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_FRESHNESS_LAG_SECONDS: Metric = Metric {
    id: 15,
    name: "pipewatch_stream_freshness_lag_seconds",
    help: "now - stream watermark.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_SILENCE_SECONDS: Metric = Metric {
    id: 16,
    name: "pipewatch_stream_silence_seconds",
    help: "Time since the log end of any of the stream's partitions last advanced.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_RATE_RECORDS_PER_SECOND: Metric = Metric {
    id: 17,
    name: "pipewatch_stream_rate_records_per_second",
    help: "Records written per second (broker log ends) over the rate window.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const STREAM_RATE_BOUND_RECORDS_PER_SECOND: Metric = Metric {
    id: 18,
    name: "pipewatch_stream_rate_bound_records_per_second",
    help: "The stream's configured min_rate and max_rate (bound=\"min\"|\"max\"), when set.",
    kind: Kind::Gauge,
    labels: &["stream", "bound"],
};
pub const STREAM_RATE_EXPECTED_RECORDS_PER_SECOND: Metric = Metric {
    id: 19,
    name: "pipewatch_stream_rate_expected_records_per_second",
    help: "The rate expected now from the topic's history and its band (bound=\"lower\"|\"expected\"|\"upper\"), for the assigned partitions; absent until there is enough history.",
    kind: Kind::Gauge,
    labels: &["stream", "bound"],
};
pub const STREAM_BASELINE_HISTORY_SECONDS: Metric = Metric {
    id: 20,
    name: "pipewatch_stream_baseline_history_seconds",
    help: "The complete past hours of history the stream's baseline is drawn from (assigned partitions), in seconds.",
    kind: Kind::Gauge,
    labels: &["stream"],
};
pub const SEGMENT_RECORDS_TOTAL: Metric = Metric {
    id: 21,
    name: "pipewatch_segment_records_total",
    help: "Records read per value of a segment field (value=\"other\" past the cap, \"none\" without the field).",
    kind: Kind::Counter,
    labels: &["stream", "segment", "value"],
};
pub const SEGMENT_SILENCE_SECONDS: Metric = Metric {
    id: 22,
    name: "pipewatch_segment_silence_seconds",
    help: "Time since the last record of the segment value read in real time (values silent for a day are left out).",
    kind: Kind::Gauge,
    labels: &["stream", "segment", "value"],
};
pub const SEGMENT_USED_TO_FLOW: Metric = Metric {
    id: 23,
    name: "pipewatch_segment_used_to_flow",
    help:
        "1 when the segment value's records came often enough that a silence of max_silence is unusual (it is judged).",
    kind: Kind::Gauge,
    labels: &["stream", "segment", "value"],
};
pub const SEGMENT_OVERFLOW_RECORDS_TOTAL: Metric = Metric {
    id: 24,
    name: "pipewatch_segment_overflow_records_total",
    help: "Records counted as value=\"other\" because the segment had its cap of distinct values (or the value was too long).",
    kind: Kind::Counter,
    labels: &["stream", "segment"],
};
pub const STREAM_RECORD_DELAY_SECONDS: Metric = Metric {
    id: 25,
    name: "pipewatch_stream_record_delay_seconds",
    help: "Arrival time - event time of records read in real time.",
    kind: Kind::Histogram,
    labels: &["stream"],
};
pub const GAP_DURATION_SECONDS: Metric = Metric {
    id: 26,
    name: "pipewatch_gap_duration_seconds",
    help: "Length of closed gaps (the whole silence).",
    kind: Kind::Histogram,
    labels: &["stream"],
};
pub const STREAM_CAUSE: Metric = Metric {
    id: 27,
    name: "pipewatch_stream_cause",
    help: "The stream's diagnosed state: 1 for the active cause, 0 otherwise.",
    kind: Kind::Gauge,
    labels: &["stream", "cause"],
};
pub const SYNC_LAG_SECONDS: Metric = Metric {
    id: 28,
    name: "pipewatch_sync_lag_seconds",
    help: "Leader watermark - follower watermark; positive: the follower is behind.",
    kind: Kind::Gauge,
    labels: &["pair", "leader", "follower"],
};
pub const CONSUMER_COMMITTED_OFFSET: Metric = Metric {
    id: 29,
    name: "pipewatch_consumer_committed_offset",
    help: "The next offset the consumer's group will read, as it committed it.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream", "topic", "partition"],
};
pub const CONSUMER_LAG_RECORDS: Metric = Metric {
    id: 30,
    name: "pipewatch_consumer_lag_records",
    help: "Log end - committed offset (never negative).",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream", "topic", "partition"],
};
pub const CONSUMER_LAG_SECONDS: Metric = Metric {
    id: 31,
    name: "pipewatch_consumer_lag_seconds",
    help: "now - event time of the oldest record the group has not processed (the record at its committed offset); 0 when nothing waits.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream", "topic", "partition"],
};
pub const CONSUMER_PARTITION_WATERMARK_TIMESTAMP_SECONDS: Metric = Metric {
    id: 32,
    name: "pipewatch_consumer_partition_watermark_timestamp_seconds",
    help: "Event time of the last record the consumer processed on the partition.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream", "topic", "partition"],
};
pub const CONSUMER_EXPIRED_RECORDS: Metric = Metric {
    id: 33,
    name: "pipewatch_consumer_expired_records",
    help:
        "Records deleted by retention before the consumer's group read them (log start - committed offset): data loss.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream", "topic", "partition"],
};
pub const CONSUMER_STREAM_LAG_RECORDS: Metric = Metric {
    id: 34,
    name: "pipewatch_consumer_stream_lag_records",
    help: "Log end - committed offset, summed over the stream's partitions where it is known.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream"],
};
pub const CONSUMER_STREAM_EXPIRED_RECORDS: Metric = Metric {
    id: 35,
    name: "pipewatch_consumer_stream_expired_records",
    help: "consumer_expired_records summed over the stream's partitions (present while any partition lost records).",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream"],
};
pub const CONSUMER_STREAM_LAG_SECONDS: Metric = Metric {
    id: 36,
    name: "pipewatch_consumer_stream_lag_seconds",
    help: "The largest consumer_lag_seconds over the stream's partitions.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream"],
};
pub const CONSUMER_WATERMARK_TIMESTAMP_SECONDS: Metric = Metric {
    id: 37,
    name: "pipewatch_consumer_watermark_timestamp_seconds",
    help: "Event time of the last record the consumer processed: min over the stream's active partitions.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "stream"],
};
pub const CONSUMER_SYNC_LAG_SECONDS: Metric = Metric {
    id: 38,
    name: "pipewatch_consumer_sync_lag_seconds",
    help: "The pair's sync lag as the consumer sees it: its leader watermark - its follower watermark.",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "pair", "leader", "follower"],
};
pub const CONSUMER_STALLED_SECONDS: Metric = Metric {
    id: 39,
    name: "pipewatch_consumer_stalled_seconds",
    help: "Time since the group's committed offsets last moved while records waited (0 while nothing waits).",
    kind: Kind::Gauge,
    labels: &["consumer", "group"],
};
pub const CONSUMER_CAUSE: Metric = Metric {
    id: 40,
    name: "pipewatch_consumer_cause",
    help: "The consumer's diagnosed state: 1 for the active cause, 0 otherwise; discovered=\"true\" for a group watched without a [[consumer]] (found by [discovery] or a Kafka Connect sink).",
    kind: Kind::Gauge,
    labels: &["consumer", "group", "cause", "discovered"],
};
pub const ALERT_ACTIVE: Metric = Metric {
    id: 41,
    name: "pipewatch_alert_active",
    help: "1 while the alert fires, 0 otherwise (pending included).",
    kind: Kind::Gauge,
    labels: &["alert", "severity"],
};
pub const ALERT_CAUSE: Metric = Metric {
    id: 42,
    name: "pipewatch_alert_cause",
    help: "The cause a firing alert carries (frozen while it fires): 1 for that cause, 0 otherwise; all 0 while it does not fire.",
    kind: Kind::Gauge,
    labels: &["alert", "cause"],
};

pub const SCHEMA_REGISTRY_UP: Metric = Metric {
    id: 43,
    name: "pipewatch_schema_registry_up",
    help: "1 when the schema registry answered the last request for a schema, else 0 (only with a [schema_registry]).",
    kind: Kind::Gauge,
    labels: &[],
};
pub const STREAM_SCHEMA_CHANGES_TOTAL: Metric = Metric {
    id: 44,
    name: "pipewatch_stream_schema_changes_total",
    help: "Writer schema ids that appeared in the stream's records after the first (a schema-registry format).",
    kind: Kind::Counter,
    labels: &["stream"],
};
pub const CONNECT_UP: Metric = Metric {
    id: 45,
    name: "pipewatch_connect_up",
    help: "1 when the Kafka Connect cluster's REST API answered the last poll, else 0 (per [[connect]]).",
    kind: Kind::Gauge,
    labels: &["connect"],
};
pub const CONNECTOR_STATE: Metric = Metric {
    id: 46,
    name: "pipewatch_connector_state",
    help: "The connector's state as Kafka Connect reports it: one series per state, exactly one is 1 (as last answered while the cluster does not).",
    kind: Kind::Gauge,
    labels: &["connect", "connector", "type", "state"],
};
pub const CONNECTOR_TASK_STATE: Metric = Metric {
    id: 47,
    name: "pipewatch_connector_task_state",
    help: "The state of one task of the connector: one series per state, exactly one is 1.",
    kind: Kind::Gauge,
    labels: &["connect", "connector", "type", "task", "state"],
};
pub const CONNECTOR_FAILURES_TOTAL: Metric = Metric {
    id: 48,
    name: "pipewatch_connector_failures_total",
    help: "Times the connector or one of its tasks went into FAILED while pipewatch watched it.",
    kind: Kind::Counter,
    labels: &["connect", "connector"],
};
pub const CONNECTOR_STREAM: Metric = Metric {
    id: 49,
    name: "pipewatch_connector_stream",
    help: "1 for each connector and the stream it writes (role source) or the consumer it is (role sink): joins the connectors to their streams.",
    kind: Kind::Gauge,
    labels: &["connect", "connector", "role", "stream", "consumer"],
};

pub const DISCOVERY_GROUPS_WATCHED: Metric = Metric {
    id: 50,
    name: "pipewatch_discovery_groups_watched",
    help: "Consumer groups [discovery] found and watches (at most discovery.max_groups).",
    kind: Kind::Gauge,
    labels: &[],
};
pub const DISCOVERY_GROUPS_OVERFLOW: Metric = Metric {
    id: 51,
    name: "pipewatch_discovery_groups_overflow",
    help: "Consumer groups that match [discovery] and read a watched stream but are not watched: beyond discovery.max_groups (named in the status).",
    kind: Kind::Gauge,
    labels: &[],
};
pub const DISCOVERY_LISTED_TIMESTAMP_SECONDS: Metric = Metric {
    id: 52,
    name: "pipewatch_discovery_listed_timestamp_seconds",
    help: "When the cluster's consumer groups were last listed successfully.",
    kind: Kind::Gauge,
    labels: &[],
};

pub const DISCOVERY_TOPICS_WATCHED: Metric = Metric {
    id: 53,
    name: "pipewatch_discovery_topics_watched",
    help: "Topics [discovery] found, each read as a stream of its own (at most discovery.max_topics).",
    kind: Kind::Gauge,
    labels: &[],
};
pub const DISCOVERY_TOPICS_OVERFLOW: Metric = Metric {
    id: 54,
    name: "pipewatch_discovery_topics_overflow",
    help: "Topics that match [discovery] topics and no stream reads, not read: beyond discovery.max_topics (named in the status).",
    kind: Kind::Gauge,
    labels: &[],
};
pub const JOIN_RECORDS_TOTAL: Metric = Metric {
    id: 55,
    name: "pipewatch_join_records_total",
    help: "A pair's leader records judged by its join: matched (the follower carried the key within the window), missing, or unjudged (the follower's keys of the window not read, or a cap); per value of a join segment, and with segment and value empty for all.",
    kind: Kind::Counter,
    labels: &["pair", "outcome", "segment", "value"],
};
pub const JOIN_PENDING_RECORDS: Metric = Metric {
    id: 56,
    name: "pipewatch_join_pending_records",
    help: "Leader records waiting for the follower's watermark to pass their event time + after + grace (late is not missing).",
    kind: Kind::Gauge,
    labels: &["pair"],
};
pub const JOIN_PENDING_OLDEST_SECONDS: Metric = Metric {
    id: 57,
    name: "pipewatch_join_pending_oldest_seconds",
    help: "Now - the event time of the oldest pending leader record.",
    kind: Kind::Gauge,
    labels: &["pair"],
};
pub const JOIN_COMPLETENESS_RATIO: Metric = Metric {
    id: 58,
    name: "pipewatch_join_completeness_ratio",
    help: "matched / (matched + missing) over the join's window (this replica's); segment and value empty for all.",
    kind: Kind::Gauge,
    labels: &["pair", "segment", "value"],
};
pub const JOIN_FOLLOWER_KEYS: Metric = Metric {
    id: 59,
    name: "pipewatch_join_follower_keys",
    help: "Follower key hashes the join keeps (its memory: about 10-20 bytes each).",
    kind: Kind::Gauge,
    labels: &["pair"],
};

/// Every family, in the order `/metrics` writes them.
pub const ALL: [&Metric; 60] = [
    &KAFKA_UP,
    &BUILD_INFO,
    &PARTITION_WATERMARK_TIMESTAMP_SECONDS,
    &PARTITION_LAST_RECORD_TIMESTAMP_SECONDS,
    &PARTITION_LOG_END_OFFSET,
    &PARTITION_POSITION_OFFSET,
    &PARTITION_BACKLOG_RECORDS,
    &RECORDS_TOTAL,
    &STREAM_PARTITIONS,
    &STREAM_ACTIVE_PARTITIONS,
    &STREAM_BACKLOG_RECORDS,
    &RECORDS_INVALID_TOTAL,
    &RECORD_BYTES_TOTAL,
    &GAPS_TOTAL,
    &STREAM_WATERMARK_TIMESTAMP_SECONDS,
    &STREAM_FRESHNESS_LAG_SECONDS,
    &STREAM_SILENCE_SECONDS,
    &STREAM_RATE_RECORDS_PER_SECOND,
    &STREAM_RATE_BOUND_RECORDS_PER_SECOND,
    &STREAM_RATE_EXPECTED_RECORDS_PER_SECOND,
    &STREAM_BASELINE_HISTORY_SECONDS,
    &SEGMENT_RECORDS_TOTAL,
    &SEGMENT_SILENCE_SECONDS,
    &SEGMENT_USED_TO_FLOW,
    &SEGMENT_OVERFLOW_RECORDS_TOTAL,
    &STREAM_RECORD_DELAY_SECONDS,
    &GAP_DURATION_SECONDS,
    &STREAM_CAUSE,
    &SYNC_LAG_SECONDS,
    &CONSUMER_COMMITTED_OFFSET,
    &CONSUMER_LAG_RECORDS,
    &CONSUMER_LAG_SECONDS,
    &CONSUMER_PARTITION_WATERMARK_TIMESTAMP_SECONDS,
    &CONSUMER_EXPIRED_RECORDS,
    &CONSUMER_STREAM_LAG_RECORDS,
    &CONSUMER_STREAM_EXPIRED_RECORDS,
    &CONSUMER_STREAM_LAG_SECONDS,
    &CONSUMER_WATERMARK_TIMESTAMP_SECONDS,
    &CONSUMER_SYNC_LAG_SECONDS,
    &CONSUMER_STALLED_SECONDS,
    &CONSUMER_CAUSE,
    &ALERT_ACTIVE,
    &ALERT_CAUSE,
    &SCHEMA_REGISTRY_UP,
    &STREAM_SCHEMA_CHANGES_TOTAL,
    &CONNECT_UP,
    &CONNECTOR_STATE,
    &CONNECTOR_TASK_STATE,
    &CONNECTOR_FAILURES_TOTAL,
    &CONNECTOR_STREAM,
    &DISCOVERY_GROUPS_WATCHED,
    &DISCOVERY_GROUPS_OVERFLOW,
    &DISCOVERY_LISTED_TIMESTAMP_SECONDS,
    &DISCOVERY_TOPICS_WATCHED,
    &DISCOVERY_TOPICS_OVERFLOW,
    &JOIN_RECORDS_TOTAL,
    &JOIN_PENDING_RECORDS,
    &JOIN_PENDING_OLDEST_SECONDS,
    &JOIN_COMPLETENESS_RATIO,
    &JOIN_FOLLOWER_KEYS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_declared_once_in_its_place() {
        let mut seen = std::collections::HashSet::new();
        for (i, m) in ALL.iter().enumerate() {
            assert_eq!(m.id, i, "{} is in the wrong place", m.name);
            assert!(seen.insert(m.name), "{} is declared twice", m.name);
            assert!(m.name.starts_with("pipewatch_") && !m.help.is_empty(), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                m.name
            );
        }
    }
}
