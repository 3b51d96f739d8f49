//! What the monitor is told: the streams, pairs and consumers as configured, its
//! settings, and the facts the source reports about partitions and rights.

use crate::baseline::BaselineSpec;
use crate::extract::Extractor;
use crate::schema::ValueFormat;
use crate::segment::SegmentSpec;
use crate::time::Millis;

/// A partition's place in its stream: the stream's partitions over all its topics are
/// numbered by the monitor ([`crate::Monitor::slot`]); for a stream of one topic a
/// partition's slot is its number.
pub type PartitionSlot = i32;

/// One stream as configured.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    /// Its topics by name (`topic`, or `topics`); empty when a pattern chooses them.
    pub topics: Vec<String>,
    /// `topic_pattern`: the regular expression the source matches the cluster's topics
    /// against (the monitor is told the topics it finds, [`crate::Monitor::add_topic`]).
    pub topic_pattern: Option<String>,
    /// How record values are encoded (JSON, or Avro through the schema registry).
    pub value_format: ValueFormat,
    /// Protobuf: the message the records are (`shop.Order`), where the schema holds
    /// several; otherwise the message indexes of each record's framing decide.
    pub message: Option<String>,
    pub extractor: Extractor,
    /// A partition whose log end has not advanced for longer is silent; a gap opens.
    pub max_silence_ms: Millis,
    /// A median record delay over the rate window, or a freshness lag of a flowing
    /// stream, above this is `event_time_delayed`.
    pub max_record_delay_ms: Millis,
    /// Rate bounds (records/s) for `volume_low` / `volume_high`.
    pub min_rate: Option<f64>,
    pub max_rate: Option<f64>,
    /// The expected rate learned from the topic's history (`volume_anomaly`).
    pub baseline: Option<BaselineSpec>,
    /// Fields whose values are counted per record (`segment_silent`).
    pub segments: Vec<SegmentSpec>,
    /// Distinct values kept per segment; beyond, `other`.
    pub max_segment_values: usize,
}

impl StreamSpec {
    /// The stream's topics as configured, for people: `orders`, `orders-eu, orders-us`,
    /// or the pattern.
    pub fn topic_label(&self) -> String {
        match &self.topic_pattern {
            Some(pattern) => pattern.clone(),
            None => self.topics.join(", "),
        }
    }

    /// Whether the stream has segments of its own (the `snapshot_field`, read as a
    /// segment, is none: it is never shown or judged).
    pub fn has_segments(&self) -> bool {
        self.segments.iter().any(|g| g.name != crate::segment::SNAPSHOT_SEGMENT)
    }
}

/// One pair as configured: indexes into the stream list.
#[derive(Debug, Clone)]
pub struct PairSpec {
    pub name: String,
    pub leader: usize,
    pub follower: usize,
    /// Join completeness: whether the leader's records find their key in the follower.
    pub join: Option<crate::join::JoinSpec>,
}

/// Monitor-wide settings.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    pub idle_partition_timeout_ms: Millis,
    pub rate_window_ms: Millis,
}

/// Where reading starts on a newly assigned partition, as the source decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// At this offset: the backlog up to the log end is replayed first.
    At(i64),
    /// At the log end: nothing to replay, the partition is caught up at once.
    LogEnd,
    /// Not known (the lookup failed); caught up once a record reaches the log end.
    Unknown,
}

/// A watched group's committed offset of one partition, as read: the next offset the
/// group will read; `None` where it committed none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub stream: usize,
    /// The partition's slot in its stream ([`crate::Monitor::slot`]).
    pub slot: PartitionSlot,
    pub offset: Option<i64>,
}

/// Why a watched group's committed offsets could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerError {
    pub message: String,
    /// The authorizer said no: Describe on the group is denied.
    pub denied: bool,
}

impl ConsumerError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), denied: false }
    }
}

/// A right pipewatch needs to read a stream, as the cluster's authorizer may deny it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Read on pipewatch's own group: joining it (every stream needs it).
    ReadGroup,
    /// Describe on the stream's topic: its metadata and log ends.
    DescribeTopic,
    /// Read on the stream's topic: its records.
    ReadTopic,
}

impl Right {
    pub(crate) const COUNT: usize = 3;
}

/// One `[[consumer]]` as configured.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub name: String,
    pub group: String,
    /// Indexes into the stream list.
    pub streams: Vec<usize>,
    /// Lag seconds above this: `consumer_lagging`.
    pub max_lag_ms: Millis,
    /// Committed offsets still for longer while records wait: `consumer_stopped`.
    pub max_stall_ms: Millis,
}

/// `consumer.max_lag` when not set (and for the consumers found, not listed): 15 min,
/// in whole minutes (the config writes its default from it).
pub const DEFAULT_MAX_LAG_MS: Millis = 15 * 60_000;
/// `consumer.max_stall` when not set: 5 min.
pub const DEFAULT_MAX_STALL_MS: Millis = 5 * 60_000;
