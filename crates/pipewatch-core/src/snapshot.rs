//! What the monitor tells: everything it knows at one tick, immutable, as the alert
//! evaluator, `/metrics`, `/api/v1/status` and the status page read it.

use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::baseline::Band;
use crate::connect::{ConnectSnapshot, ConnectorIssue};
use crate::diagnosis::{Cause, ConsumerCause};
use crate::extract::InvalidReason;
use crate::histogram::Histogram;
use crate::schema::SchemaInUse;
use crate::segment::SegmentSnapshot;
use crate::time::Millis;

/// Whether the cluster answers (as the log-end poller sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaStatus {
    /// Not asked yet.
    Unknown,
    Up,
    Down,
}

/// Everything the monitor knows at one tick: what the alert evaluator, /metrics and
/// /api/v1/status read.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub at_ms: Millis,
    pub kafka: KafkaStatus,
    /// Why the cluster does not answer, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_error: Option<String>,
    /// The schema registry, when a stream reads a format that needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<RegistrySnapshot>,
    /// The Kafka Connect clusters (`[[connect]]`) and their connectors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect: Vec<ConnectSnapshot>,
    pub streams: Vec<StreamSnapshot>,
    pub pairs: Vec<PairSnapshot>,
    pub consumers: Vec<ConsumerSnapshot>,
    /// `[discovery]` of consumer groups, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::discovery::DiscoverySnapshot>,
    /// `[discovery] topics`, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_discovery: Option<crate::topic_discovery::TopicDiscoverySnapshot>,
}

/// Whether the schema registry answers, as the last request for a schema found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrySnapshot {
    pub status: KafkaStatus,
    /// Why it does not answer, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Schema ids known to the process.
    pub schemas_known: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    pub name: String,
    /// Its topic; for a stream over several, the topics as configured (`orders-eu,
    /// orders-us`) or the pattern.
    pub topic: String,
    /// `[discovery] topics` found it: a stream of its own topic, not configured.
    pub discovered: bool,
    /// Every topic the stream reads (the configured ones, and those its pattern found),
    /// each with its counts.
    pub topics: Vec<TopicSnapshot>,
    /// Of a stream over several topics, those the cluster says do not exist (the stream
    /// is `topic_missing` only when none is left).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_topics: Vec<String>,
    pub cause: Cause,
    /// The right the authorizer denies pipewatch for this stream, e.g. `Read on topic
    /// orders` (the first, in the order group, Describe, Read).
    pub access_denied: Option<String>,
    /// While records wait for a schema the registry does not give: which, and why
    /// (`schema_registry_unreachable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<String>,
    /// The Kafka Connect source connectors that write the stream's topic, as
    /// `connect/connector`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connectors: Vec<String>,
    /// The worst fault of those connectors and their tasks, named (`connector_failed`,
    /// `connector_unassigned`, `connector_paused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorIssue>,
    /// A Connect cluster that does not answer held a connector writing the stream: its
    /// state is unknown (connector alerts are held back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_unknown: Option<String>,
    /// The schema ids the stream's partitions wait for (asked of the registry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for_schemas: Vec<u32>,
    /// A schema-registry format: the last writer schema ids read (at most
    /// [`crate::schema::SCHEMAS_SHOWN`]), newest last, each with what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<SchemaInUse>,
    /// New writer schema ids that appeared after the first.
    pub schema_changes: u64,
    /// Absent before the first valid record.
    pub watermark_ms: Option<Millis>,
    pub freshness_lag_seconds: Option<f64>,
    /// Time since the log end of any partition last advanced; absent before the first poll.
    pub silence_seconds: Option<f64>,
    pub max_silence_seconds: f64,
    /// The configured rate bounds (records/s), if any.
    pub min_rate: Option<f64>,
    pub max_rate: Option<f64>,
    /// Records written per second (broker log ends) over the rate window.
    pub rate_records_per_second: Option<f64>,
    /// The rate covers a whole `rate_window` (rate rules and volume causes wait for it).
    pub rate_window_full: bool,
    /// The expected rate learned from the history, for streams with a baseline.
    pub baseline: Option<BaselineStatus>,
    /// The segment values that used to flow and are silent, e.g. `channel=app`.
    pub segment_silent: Option<String>,
    /// The longest silence of a segment value that used to flow (`segment_silence`).
    pub segment_silence_seconds: Option<f64>,
    pub segments: Vec<SegmentSnapshot>,
    /// Median record delay of the records read in real time over the rate window (at
    /// most the last [`crate::stream::RECENT_DELAYS`] of them).
    pub median_record_delay_seconds: Option<f64>,
    /// A question when the record delays (or the leads of records rejected as
    /// `future_timestamp`) sit on a whole time-zone offset with a narrow spread: event
    /// times written as local time? Never a cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone_hint: Option<String>,
    pub backlog_records: i64,
    /// Partitions that delivered a record within `idle_partition_timeout`.
    pub active_partitions: usize,
    /// Records read, payload bytes, invalid records by reason and gaps opened on the
    /// stream since start, partitions revoked since included (they never go back).
    pub records: u64,
    pub bytes: u64,
    pub invalid: InvalidCounts,
    pub gaps: u64,
    pub record_delay: Histogram,
    pub gap_duration: Histogram,
    pub partitions: Vec<PartitionSnapshot>,
}

/// One topic of a stream: what its partitions counted, revoked ones included.
#[derive(Debug, Clone, Serialize)]
pub struct TopicSnapshot {
    pub name: Arc<str>,
    pub missing: bool,
    pub records: u64,
    pub bytes: u64,
    pub invalid: InvalidCounts,
    pub gaps: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionSnapshot {
    pub topic: Arc<str>,
    pub partition: i32,
    /// Its slot in the stream ([`crate::Monitor::slot`]).
    #[serde(skip)]
    pub slot: crate::spec::PartitionSlot,
    pub watermark_ms: Option<Millis>,
    pub last_record_ms: Option<Millis>,
    pub log_end_offset: Option<i64>,
    pub position_offset: Option<i64>,
    pub backlog_records: Option<i64>,
    pub silence_seconds: Option<f64>,
    pub active: bool,
    pub caught_up: bool,
    pub records: u64,
    pub bytes: u64,
    /// Invalid records by reason, every reason listed.
    pub invalid: InvalidCounts,
    pub gaps: u64,
    pub gap_open_since_ms: Option<Millis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairSnapshot {
    pub name: String,
    pub leader: String,
    pub follower: String,
    /// Leader watermark − follower watermark; positive: the follower is behind.
    pub sync_lag_seconds: Option<f64>,
    /// The cause of the side that is behind (see [`crate::diagnosis::pair_cause`]), or
    /// `join_incomplete` after them.
    pub cause: crate::diagnosis::PairCause,
    /// The stream whose cause the pair carries.
    pub cause_stream: String,
    /// A question when the sync lag over the rate window sits on a whole time-zone
    /// offset with a narrow spread (see the stream's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone_hint: Option<String>,
    /// Join completeness, when the pair has a `join`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<crate::join::JoinSnapshot>,
}

impl StreamSnapshot {
    /// What `topic_missing` means for this stream: `topic "orders" does not exist`, `none
    /// of its topics exists (orders-eu, orders-us)`, `no topic matches "^orders-"`.
    pub fn missing_phrase(&self) -> String {
        match self.topics.len() {
            0 => format!("no topic matches {:?}", self.topic),
            1 => format!("topic {:?} does not exist", self.topic),
            _ => format!("none of its topics exists ({})", self.topic),
        }
    }

    /// What the cause names besides its explanation: the right denied, the silent
    /// segment values, the side and band of a volume anomaly.
    pub fn cause_detail(&self) -> Option<String> {
        match self.cause {
            Cause::AccessDenied => self.access_denied.clone(),
            Cause::SchemaRegistryUnreachable => self.schema_registry.clone(),
            Cause::ConnectorFailed | Cause::ConnectorUnassigned | Cause::ConnectorPaused => {
                self.connector.as_ref().map(ConnectorIssue::describe)
            }
            Cause::SegmentSilent => self.segment_silent.clone(),
            Cause::VolumeAnomaly => {
                let b = self.baseline?;
                let band = b.band?;
                Some(format!(
                    "{}: {:.2} records/s, expected {:.2}–{:.2} at this {}",
                    if b.anomaly? == Direction::Low { "low" } else { "high" },
                    self.rate_records_per_second.unwrap_or(0.0),
                    band.lower,
                    band.upper,
                    band.slot.as_str()
                ))
            }
            _ => None,
        }
    }
}

impl Snapshot {
    pub fn stream(&self, name: &str) -> Option<&StreamSnapshot> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn pair(&self, name: &str) -> Option<&PairSnapshot> {
        self.pairs.iter().find(|p| p.name == name)
    }
}

/// Where a stream's baseline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    /// The history of some assigned partition is still being read from the broker.
    Learning,
    /// The history holds no past hour of the slot judged: nothing is judged.
    NotEnoughHistory,
    Ready,
}

/// Which side of its band a rate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Low,
    High,
}

/// A stream's expected rate and where its rate stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BaselineStatus {
    pub state: BaselineState,
    /// Complete past hours known (the stream's assigned partitions summed).
    pub history_hours: usize,
    /// The expected rate now and its band (records/s), when there is enough history.
    pub band: Option<Band>,
    /// Where the rate over a whole window stands in the band: 0 at the expected rate,
    /// ±1 at its edges (see [`Band::score`]).
    pub score: Option<f64>,
    /// Outside the band: `volume_anomaly`, low or high.
    pub anomaly: Option<Direction>,
}

/// A consumer as `/api/v1/status` and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSnapshot {
    pub name: String,
    pub group: String,
    pub cause: ConsumerCause,
    /// Why the group's offsets could not be read, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The Kafka Connect sink connector whose group this is, as `connect/connector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// Watched without being listed as a `[[consumer]]`: a Kafka Connect sink's group
    /// (`sink` names it) or a group `[discovery]` found.
    pub discovered: bool,
    /// Its worst fault, or one of its tasks', named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorIssue>,
    /// The Connect cluster that held the sink does not answer: its state is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_unknown: Option<String>,
    /// Seconds since the committed offsets last moved while records waited (0 while
    /// nothing waits).
    pub stalled_seconds: f64,
    pub streams: Vec<ConsumerStreamSnapshot>,
    pub pairs: Vec<ConsumerPairSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStreamSnapshot {
    pub stream: String,
    pub topic: String,
    /// The consumer's watermark: min of its partition watermarks over the stream's active
    /// partitions (max of all when every partition is idle); absent before it is known.
    pub watermark_ms: Option<Millis>,
    /// The largest lag in seconds over the partitions (absent while none is known).
    pub max_lag_seconds: Option<f64>,
    pub lag_records: i64,
    pub partitions: Vec<ConsumerPartitionSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerPartitionSnapshot {
    pub topic: Arc<str>,
    pub partition: i32,
    /// The next offset the group will read, as it committed it; absent: none committed.
    pub committed_offset: Option<i64>,
    /// Log end − committed offset, never negative.
    pub lag_records: Option<i64>,
    /// now − event time of the record at the committed offset; 0 when nothing waits.
    pub lag_seconds: Option<f64>,
    /// Event time of the last record the group processed.
    pub watermark_ms: Option<Millis>,
    /// The committed offset is below the log start: records were deleted before the group
    /// read them (data loss).
    pub expired: bool,
    /// How many: log start − committed offset (absent when not expired, or not known).
    pub expired_records: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerPairSnapshot {
    pub pair: String,
    pub leader: String,
    pub follower: String,
    /// The consumer's leader watermark − its follower watermark: what the job sees.
    pub sync_lag_seconds: Option<f64>,
}

/// Invalid records by reason: a fixed array (no map built per partition per tick), read
/// and written by reason name in the order of the names (as `/metrics` and the status
/// API list them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvalidCounts(pub [u64; InvalidReason::COUNT]);

impl InvalidCounts {
    /// The reasons by name: `bad_encoding`, `bad_timestamp`, `empty_payload`,
    /// `future_timestamp`, `missing_field`, `not_json`, `unknown_schema`.
    const BY_NAME: [InvalidReason; InvalidReason::COUNT] = [
        InvalidReason::BadEncoding,
        InvalidReason::BadTimestamp,
        InvalidReason::EmptyPayload,
        InvalidReason::FutureTimestamp,
        InvalidReason::MissingField,
        InvalidReason::NotJson,
        InvalidReason::UnknownSchema,
    ];

    /// `(reason, count)` for every reason, zero counts included.
    pub fn iter(&self) -> InvalidIter<'_> {
        InvalidIter { counts: self, next: 0 }
    }

    pub fn values(&self) -> impl Iterator<Item = &u64> + '_ {
        self.0.iter()
    }
}

/// The reasons and their counts, by name.
pub struct InvalidIter<'a> {
    counts: &'a InvalidCounts,
    next: usize,
}

impl<'a> Iterator for InvalidIter<'a> {
    type Item = (&'static str, &'a u64);

    fn next(&mut self) -> Option<Self::Item> {
        let reason = *InvalidCounts::BY_NAME.get(self.next)?;
        self.next += 1;
        Some((reason.as_str(), &self.counts.0[reason.index()]))
    }
}

impl<'a> IntoIterator for &'a InvalidCounts {
    type Item = (&'static str, &'a u64);
    type IntoIter = InvalidIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::Index<InvalidReason> for InvalidCounts {
    type Output = u64;

    fn index(&self, reason: InvalidReason) -> &u64 {
        &self.0[reason.index()]
    }
}

impl std::ops::IndexMut<InvalidReason> for InvalidCounts {
    fn index_mut(&mut self, reason: InvalidReason) -> &mut u64 {
        &mut self.0[reason.index()]
    }
}

/// By name, as the status API and the tests read it: `invalid["not_json"]`.
impl std::ops::Index<&str> for InvalidCounts {
    type Output = u64;

    fn index(&self, name: &str) -> &u64 {
        match InvalidReason::ALL.iter().find(|r| r.as_str() == name) {
            Some(r) => &self.0[r.index()],
            None => &0,
        }
    }
}

impl Serialize for InvalidCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(InvalidReason::COUNT))?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason, n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_counts_list_every_reason_once_by_name() {
        let mut counts = InvalidCounts::default();
        counts[InvalidReason::NotJson] = 3;
        let names: Vec<&str> = counts.iter().map(|(r, _)| r).collect();
        let mut sorted: Vec<&str> = InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(counts["not_json"], 3);
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"bad_encoding":0,"bad_timestamp":0,"empty_payload":0,"future_timestamp":0,"missing_field":0,"not_json":3,"unknown_schema":0}"#
        );
    }
}
