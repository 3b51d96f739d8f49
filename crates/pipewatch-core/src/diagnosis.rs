//! Which link of the chain broke: the one home of the diagnosis.
//!
//! [`ORDER`] is the table: every [`Cause`] in the order it is checked, what makes it
//! hold for a stream ([`StreamFacts`]), how replicas that each see some partitions
//! combine it ([`Replicas`], read by the Prometheus rules generator), and what a person
//! reads next to it. [`diagnose`] takes the first that holds, so one root cause pages,
//! not its symptoms; [`pair_cause`] gives a pair the cause of the side that is behind.
//! A new cause is one enum variant and one row here; the rules follow.

use serde::Serialize;

use crate::connect::ConnectorFault;

/// The one state of a stream: a fault (the first that holds, in [`ORDER`]) or a normal
/// state. Declared in diagnosis order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    KafkaUnreachable,
    AccessDenied,
    SchemaRegistryUnreachable,
    TopicMissing,
    ConnectorFailed,
    ConnectorUnassigned,
    ConnectorPaused,
    NoData,
    ProducerSilent,
    PartitionStalled,
    CatchingUp,
    SourceSnapshot,
    MonitorBacklog,
    EventTimeDelayed,
    SegmentSilent,
    VolumeLow,
    VolumeHigh,
    VolumeAnomaly,
    Ok,
}

/// What the monitor knows of one stream at a tick: the inputs of every cause's test.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamFacts {
    /// The log-end poll fails: the cluster does not answer.
    pub kafka_down: bool,
    /// The cluster's authorizer denies pipewatch a right it needs to read the stream
    /// (Describe or Read on its topic, Read on pipewatch's own group).
    pub access_denied: bool,
    /// Records of the stream wait for a schema the registry was asked for and did not
    /// give: it does not answer.
    pub registry_unreachable: bool,
    /// The cluster answers that the stream's topic does not exist.
    pub topic_missing: bool,
    /// The worst state of the Kafka Connect source connectors that write the stream's
    /// topic (and their tasks), when it is a fault.
    pub connector: Option<ConnectorFault>,
    /// A valid event time was read (the stream has a watermark).
    pub has_watermark: bool,
    /// Partitions whose log end advanced within `max_silence`.
    pub flowing: usize,
    /// Partitions written to while watched, silent for longer than `max_silence`.
    pub silent: usize,
    /// Partitions never written to while watched (key skew), silent for as long.
    pub quiet: usize,
    /// Some partition's backlog has not drained since assignment.
    pub catching_up: bool,
    /// The last record read of some partition is a source connector's snapshot copy of
    /// an existing row (the stream's `snapshot_field`).
    pub source_snapshot: bool,
    /// pipewatch's own backlog grew over the rate window and holds more than
    /// [`crate::stream::BACKLOG_TOLERANCE_SECONDS`] of traffic.
    pub backlog_growing: bool,
    /// The median record delay, or the freshness lag of the stream, is over `max_record_delay`.
    pub event_time_old: bool,
    /// Records written per second over a whole rate window (`None` before the window is full).
    pub full_window_rate: Option<f64>,
    pub min_rate: Option<f64>,
    pub max_rate: Option<f64>,
    /// The band `(lower, upper)` of the expected rate, when the baseline has one.
    pub band: Option<(f64, f64)>,
    /// A segment value that used to flow is silent for longer than `max_silence`.
    pub segment_silent: bool,
}

/// How the causes that replicas report for their share of a stream's partitions
/// combine into the stream's cause (the Prometheus rules compute it this way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// Holds when any replica reports one of these causes.
    Any(&'static [Cause]),
    /// Holds only when every replica reports this cause.
    All,
    /// The rate summed over the replicas is below the stream's `min_rate` (a replica
    /// compares only its share).
    SummedRateBelowMin,
    /// The rate summed over the replicas is above the stream's `max_rate`.
    SummedRateAboveMax,
    /// The rate summed over the replicas is outside the band summed over them (each
    /// replica learns the history of its own partitions).
    SummedRateOutsideBand,
    /// A replica reports it, and the value is silent at every replica that has read it:
    /// its shortest silence over the replicas is over `max_silence` (each replica reads
    /// the records of its own partitions).
    SilentOnEveryReplica,
}

/// One row of the diagnosis table.
pub struct Diagnosis {
    pub cause: Cause,
    pub name: &'static str,
    /// What a person reads next to the cause.
    pub explain: &'static str,
    /// Whether the cause holds for a stream with these facts.
    pub holds: fn(&StreamFacts) -> bool,
    pub replicas: Replicas,
    /// A fault upstream of the stream's consumers: a consumer that reads the stream is
    /// not blamed for what it cannot read.
    pub upstream: bool,
    /// A fault of the pipeline or of its monitoring, as the status page colours it (not
    /// `ok`, `no_data`, `catching_up`).
    pub fault: bool,
    /// Lag rules (freshness, sync lag, a consumer's lag) wait while a stream they read
    /// is in this state: its watermark is not known or not real-time yet.
    pub holds_lag_rules: bool,
}

/// Every cause, in the order they are checked: the first that holds wins.
pub const ORDER: [Diagnosis; 19] = [
    Diagnosis {
        cause: Cause::KafkaUnreachable,
        name: "kafka_unreachable",
        explain: "the Kafka cluster does not answer",
        holds: |f| f.kafka_down,
        replicas: Replicas::Any(&[Cause::KafkaUnreachable]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::AccessDenied,
        name: "access_denied",
        explain: "the cluster denies pipewatch a right it needs to read the stream (named in the status): a monitoring fault, not a pipeline fault",
        holds: |f| f.access_denied,
        replicas: Replicas::Any(&[Cause::AccessDenied]),
        // pipewatch cannot see the stream: the consumers that read it are judged by their
        // own committed offsets
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::SchemaRegistryUnreachable,
        name: "schema_registry_unreachable",
        explain: "records wait for their schema and the schema registry does not answer (named in the status): a monitoring fault, nothing is lost; reading resumes when it answers",
        holds: |f| f.registry_unreachable,
        replicas: Replicas::Any(&[Cause::SchemaRegistryUnreachable]),
        // the consumers that read the stream are judged by their own committed offsets
        upstream: false,
        fault: true,
        // the stream's watermark stands still while its records wait
        holds_lag_rules: true,
    },
    Diagnosis {
        cause: Cause::TopicMissing,
        name: "topic_missing",
        explain: "the stream's topic does not exist on the cluster (a typo, or deleted)",
        holds: |f| f.topic_missing,
        replicas: Replicas::Any(&[Cause::TopicMissing]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    // The upstream fault wins over its symptoms (no_data, producer_silent, a stalled
    // partition, old event times): every replica polls the same Connect cluster.
    Diagnosis {
        cause: Cause::ConnectorFailed,
        name: "connector_failed",
        explain: "the Kafka Connect source connector that writes the stream, or one of its tasks, failed (named in the status with its worker and error); it stays stopped until restarted",
        holds: |f| f.connector == Some(ConnectorFault::Failed),
        replicas: Replicas::Any(&[Cause::ConnectorFailed]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::ConnectorUnassigned,
        name: "connector_unassigned",
        explain: "no Kafka Connect worker runs the source connector that writes the stream, or one of its tasks (a worker left, or a rebalance is under way)",
        holds: |f| f.connector == Some(ConnectorFault::Unassigned),
        replicas: Replicas::Any(&[Cause::ConnectorUnassigned]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::ConnectorPaused,
        name: "connector_paused",
        explain: "the Kafka Connect source connector that writes the stream is paused or stopped: somebody's decision, nothing is written until it is resumed",
        holds: |f| f.connector == Some(ConnectorFault::Paused),
        replicas: Replicas::Any(&[Cause::ConnectorPaused]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::NoData,
        name: "no_data",
        explain: "no valid record read yet",
        holds: |f| !f.has_watermark,
        replicas: Replicas::All,
        upstream: false,
        fault: false,
        holds_lag_rules: true,
    },
    Diagnosis {
        cause: Cause::ProducerSilent,
        name: "producer_silent",
        explain: "nothing is being written: the log end of every partition stopped advancing",
        holds: |f| f.silent + f.quiet > 0 && f.flowing == 0,
        // One replica's partitions all silent while another's flow is a stalled partition.
        replicas: Replicas::All,
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::PartitionStalled,
        name: "partition_stalled",
        explain: "some partitions stopped receiving data while others flow",
        holds: |f| f.silent > 0,
        replicas: Replicas::Any(&[Cause::ProducerSilent, Cause::PartitionStalled]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::CatchingUp,
        name: "catching_up",
        explain: "pipewatch is replaying the backlog after start or rebalance; lag alerts wait",
        holds: |f| f.catching_up,
        replicas: Replicas::Any(&[Cause::CatchingUp]),
        upstream: false,
        fault: false,
        holds_lag_rules: true,
    },
    Diagnosis {
        cause: Cause::SourceSnapshot,
        name: "source_snapshot",
        explain: "the source connector copies the table's existing rows (a Debezium snapshot), or did and no change followed yet: their event times are old by design; lag alerts wait for the first change",
        holds: |f| f.source_snapshot,
        replicas: Replicas::Any(&[Cause::SourceSnapshot]),
        upstream: false,
        fault: false,
        holds_lag_rules: true,
    },
    Diagnosis {
        cause: Cause::MonitorBacklog,
        name: "monitor_backlog",
        explain: "pipewatch itself cannot keep up with the topic (not a pipeline fault)",
        holds: |f| f.backlog_growing,
        replicas: Replicas::Any(&[Cause::MonitorBacklog]),
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::EventTimeDelayed,
        name: "event_time_delayed",
        explain: "records arrive, but their event time is old: an upstream delay",
        // Data flows (no partition is silent) yet its event time is old: either most
        // records arrive late, or an active partition holds the watermark far back.
        holds: |f| f.event_time_old,
        replicas: Replicas::Any(&[Cause::EventTimeDelayed]),
        upstream: true,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::SegmentSilent,
        name: "segment_silent",
        explain: "a segment value that used to flow has stopped while the stream flows (named in the status): one collection path is broken",
        holds: |f| f.segment_silent && f.flowing > 0,
        replicas: Replicas::SilentOnEveryReplica,
        // the rest of the stream flows: a consumer's lag is still its own
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::VolumeLow,
        name: "volume_low",
        explain: "the record rate is below its lower bound",
        holds: |f| matches!((f.full_window_rate, f.min_rate), (Some(rate), Some(min)) if rate < min),
        replicas: Replicas::SummedRateBelowMin,
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::VolumeHigh,
        name: "volume_high",
        explain: "the record rate is above its upper bound",
        holds: |f| matches!((f.full_window_rate, f.max_rate), (Some(rate), Some(max)) if rate > max),
        replicas: Replicas::SummedRateAboveMax,
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::VolumeAnomaly,
        name: "volume_anomaly",
        explain: "the record rate is outside the band expected at this hour from the topic's own history (low or high in the status)",
        holds: |f| matches!((f.full_window_rate, f.band), (Some(rate), Some((lower, upper))) if rate < lower || rate > upper),
        replicas: Replicas::SummedRateOutsideBand,
        upstream: false,
        fault: true,
        holds_lag_rules: false,
    },
    Diagnosis {
        cause: Cause::Ok,
        name: "ok",
        explain: "fresh, complete and flowing",
        holds: |_| true,
        // A replica's volume cause judged its share of the rate only.
        // (a segment's silence at one replica is the stream's only when every replica's is).
        replicas: Replicas::Any(&[
            Cause::Ok,
            Cause::SegmentSilent,
            Cause::VolumeLow,
            Cause::VolumeHigh,
            Cause::VolumeAnomaly,
        ]),
        upstream: false,
        fault: false,
        holds_lag_rules: false,
    },
];

impl Cause {
    /// Every value, in diagnosis order, as `pipewatch_stream_cause{cause}` exports them.
    pub const ALL: [Cause; ORDER.len()] = {
        let mut all = [Cause::Ok; ORDER.len()];
        let mut i = 0;
        while i < ORDER.len() {
            all[i] = ORDER[i].cause;
            i += 1;
        }
        all
    };

    /// The cause's row in [`ORDER`].
    pub fn diagnosis(self) -> &'static Diagnosis {
        &ORDER[self.rank()]
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.diagnosis().name
    }

    /// What a person reads next to the cause.
    pub fn explain(self) -> &'static str {
        self.diagnosis().explain
    }

    /// Its place in [`ORDER`]: a lower rank is checked first (and wins).
    pub fn rank(self) -> usize {
        // the enum is declared in the table's order (a test holds it there)
        self as usize
    }

    /// A fault of the pipeline or of its monitoring (see [`Diagnosis::fault`]).
    pub fn is_fault(self) -> bool {
        self.diagnosis().fault
    }

    /// A fault upstream of the stream's consumers (see [`Diagnosis::upstream`]).
    pub fn is_upstream_fault(self) -> bool {
        self.diagnosis().upstream
    }

    /// Lag rules wait while a stream they read is in this state (see
    /// [`Diagnosis::holds_lag_rules`]).
    pub fn holds_lag_rules(self) -> bool {
        self.diagnosis().holds_lag_rules
    }
}

/// A stream's cause: the first row of [`ORDER`] that holds.
pub fn diagnose(facts: &StreamFacts) -> Cause {
    ORDER.iter().find(|d| (d.holds)(facts)).map_or(Cause::Ok, |d| d.cause)
}

/// The side of a pair whose cause the pair carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Leader,
    Follower,
}

/// A pair's cause is the cause of the side that is behind: the follower's when the
/// sync lag is positive, the leader's when it is negative; with no sync lag (none yet,
/// or zero) the side whose cause comes first in [`ORDER`], the leader on a tie. When
/// that side is `ok`, the other side's. `ok` only when both are (then the side named
/// is the follower, the one downstream jobs wait for).
pub fn pair_cause(leader: Cause, follower: Cause, sync_lag_seconds: Option<f64>) -> (Cause, Side) {
    let behind = match sync_lag_seconds {
        Some(lag) if lag > 0.0 => Side::Follower,
        Some(lag) if lag < 0.0 => Side::Leader,
        _ if follower.rank() < leader.rank() => Side::Follower,
        _ => Side::Leader,
    };
    let (first, other) = match behind {
        Side::Leader => ((leader, Side::Leader), (follower, Side::Follower)),
        Side::Follower => ((follower, Side::Follower), (leader, Side::Leader)),
    };
    match (first.0, other.0) {
        (Cause::Ok, Cause::Ok) => (Cause::Ok, Side::Follower),
        (Cause::Ok, _) => other,
        _ => first,
    }
}

/// A pair's state: the cause [`pair_cause`] gives it from its sides, and after them all,
/// when both sides are `ok`, `join_incomplete`: its join finds the follower's records
/// for too few of the leader's (of a segment value, or all of them; see
/// [`crate::join::JoinSnapshot::incomplete`]). A stalled or late follower is its own
/// cause first, never incompleteness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairCause {
    Stream(Cause),
    JoinIncomplete,
}

impl PairCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream(c) => c.as_str(),
            Self::JoinIncomplete => join_incomplete::CAUSE,
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Self::Stream(c) => c.explain(),
            Self::JoinIncomplete => join_incomplete::EXPLAIN,
        }
    }
}

impl Serialize for PairCause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<Cause> for PairCause {
    fn from(c: Cause) -> Self {
        Self::Stream(c)
    }
}

/// The pair cause after the sides' causes.
pub mod join_incomplete {
    pub const CAUSE: &str = "join_incomplete";
    pub const EXPLAIN: &str = "both streams flow, but the follower has no record of the same key around the time of too many of the leader's records (of the segment values named): a collection path that never existed or stopped (a tracker not loaded for one referral or channel), or a key written differently on one side";
}

/// The one state of a downstream consumer, first that holds in [`CONSUMER_ORDER`].
/// Declared in diagnosis order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerCause {
    KafkaUnreachable,
    AccessDenied,
    UpstreamFault,
    ConnectorFailed,
    ConnectorUnassigned,
    ConnectorPaused,
    GroupUnknown,
    RecordsExpired,
    ConsumerStopped,
    ConsumerLagging,
    Ok,
}

/// What the monitor knows of one consumer at a tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerFacts {
    pub kafka_down: bool,
    /// The authorizer denies pipewatch Describe on the group: its offsets cannot be read.
    pub access_denied: bool,
    /// A stream it reads has an upstream fault ([`Cause::is_upstream_fault`]).
    pub upstream_fault: bool,
    /// The consumer is a Kafka Connect sink connector (its group) whose worst state, or
    /// one of its tasks', is a fault.
    pub connector: Option<ConnectorFault>,
    /// The group's offsets cannot be read, or it committed none for these partitions.
    pub group_unknown: bool,
    /// A committed offset is below the log start: records were deleted before it read them.
    pub expired: bool,
    /// Records wait and no committed offset moved for `max_stall`.
    pub stalled: bool,
    /// Some partition's lag seconds are over `max_lag`.
    pub lagging: bool,
}

/// One row of the consumer diagnosis table.
pub struct ConsumerDiagnosis {
    pub cause: ConsumerCause,
    pub name: &'static str,
    pub explain: &'static str,
    pub holds: fn(&ConsumerFacts) -> bool,
    /// A fault of the consumer itself (not `ok`, not upstream, not the cluster).
    pub fault: bool,
}

/// Every consumer cause, in the order they are checked: upstream first, so a consumer
/// is never blamed for data that was not there to read.
pub const CONSUMER_ORDER: [ConsumerDiagnosis; 11] = [
    ConsumerDiagnosis {
        cause: ConsumerCause::KafkaUnreachable,
        name: "kafka_unreachable",
        explain: "the Kafka cluster does not answer",
        holds: |f| f.kafka_down,
        fault: false,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::AccessDenied,
        name: "access_denied",
        explain: "the cluster denies pipewatch Describe on the group: its committed offsets cannot be read",
        holds: |f| f.access_denied,
        fault: false,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::UpstreamFault,
        name: "upstream_fault",
        explain: "a stream it reads is faulty upstream (see the stream's cause): not the consumer's fault",
        holds: |f| f.upstream_fault,
        fault: false,
    },
    // Before its symptoms: a failed sink stops committing, then lags, then loses records.
    ConsumerDiagnosis {
        cause: ConsumerCause::ConnectorFailed,
        name: "connector_failed",
        explain: "the Kafka Connect sink connector of this group, or one of its tasks, failed (named in the status with its worker and error); it stays stopped until restarted",
        holds: |f| f.connector == Some(ConnectorFault::Failed),
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::ConnectorUnassigned,
        name: "connector_unassigned",
        explain: "no Kafka Connect worker runs the sink connector of this group, or one of its tasks",
        holds: |f| f.connector == Some(ConnectorFault::Unassigned),
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::ConnectorPaused,
        name: "connector_paused",
        explain: "the Kafka Connect sink connector of this group is paused or stopped: somebody's decision",
        holds: |f| f.connector == Some(ConnectorFault::Paused),
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::GroupUnknown,
        name: "group_unknown",
        explain: "the group's committed offsets cannot be read, or it committed none",
        holds: |f| f.group_unknown,
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::RecordsExpired,
        name: "records_expired",
        explain: "retention deleted records before the group read them: data loss",
        holds: |f| f.expired,
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::ConsumerStopped,
        name: "consumer_stopped",
        explain: "records wait, but the group's committed offsets do not move",
        holds: |f| f.stalled,
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::ConsumerLagging,
        name: "consumer_lagging",
        explain: "the group moves, but the oldest record it has not processed is older than max_lag",
        holds: |f| f.lagging,
        fault: true,
    },
    ConsumerDiagnosis {
        cause: ConsumerCause::Ok,
        name: "ok",
        explain: "the consumer keeps up",
        holds: |_| true,
        fault: false,
    },
];

impl ConsumerCause {
    /// Every value, in diagnosis order, as `pipewatch_consumer_cause{cause}` exports them.
    pub const ALL: [ConsumerCause; CONSUMER_ORDER.len()] = {
        let mut all = [ConsumerCause::Ok; CONSUMER_ORDER.len()];
        let mut i = 0;
        while i < CONSUMER_ORDER.len() {
            all[i] = CONSUMER_ORDER[i].cause;
            i += 1;
        }
        all
    };

    /// The cause's row in [`CONSUMER_ORDER`].
    pub fn diagnosis(self) -> &'static ConsumerDiagnosis {
        // the enum is declared in the table's order (a test holds it there)
        &CONSUMER_ORDER[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.diagnosis().name
    }

    pub fn explain(self) -> &'static str {
        self.diagnosis().explain
    }

    /// A fault of the consumer itself (see [`ConsumerDiagnosis::fault`]).
    pub fn is_fault(self) -> bool {
        self.diagnosis().fault
    }
}

/// The cause an alert carries: its target's, a stream's (or pair's) or a consumer's; or
/// the monitoring fault of a Kafka Connect cluster that does not answer (the built-in
/// `ConnectUnreachable`, and what holds connector rules back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertCause {
    Stream(Cause),
    Consumer(ConsumerCause),
    ConnectUnreachable,
    JoinIncomplete,
}

impl Serialize for AlertCause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl AlertCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream(c) => c.as_str(),
            Self::Consumer(c) => c.as_str(),
            Self::ConnectUnreachable => connect_unreachable::CAUSE,
            Self::JoinIncomplete => join_incomplete::CAUSE,
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Self::Stream(c) => c.explain(),
            Self::Consumer(c) => c.explain(),
            Self::ConnectUnreachable => connect_unreachable::EXPLAIN,
            Self::JoinIncomplete => join_incomplete::EXPLAIN,
        }
    }

    /// Every label value an alert's cause can take, each once (`kafka_unreachable`, the
    /// connector causes and `ok` are both a stream's and a consumer's).
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        for c in ConsumerCause::ALL {
            if !names.contains(&c.as_str()) {
                names.push(c.as_str());
            }
        }
        names.push(connect_unreachable::CAUSE);
        names.push(join_incomplete::CAUSE);
        names
    }
}

impl From<Cause> for AlertCause {
    fn from(c: Cause) -> Self {
        Self::Stream(c)
    }
}

impl From<PairCause> for AlertCause {
    fn from(c: PairCause) -> Self {
        match c {
            PairCause::Stream(c) => Self::Stream(c),
            PairCause::JoinIncomplete => Self::JoinIncomplete,
        }
    }
}

impl From<ConsumerCause> for AlertCause {
    fn from(c: ConsumerCause) -> Self {
        Self::Consumer(c)
    }
}

/// A consumer's cause: the first row of [`CONSUMER_ORDER`] that holds.
pub fn diagnose_consumer(facts: &ConsumerFacts) -> ConsumerCause {
    CONSUMER_ORDER.iter().find(|d| (d.holds)(facts)).map_or(ConsumerCause::Ok, |d| d.cause)
}

/// The built-in alert that replaces the per-stream rules while the cluster does not answer.
pub mod kafka_unreachable {
    pub const ALERT: &str = "KafkaUnreachable";
    pub const SEVERITY: &str = "page";
    pub const SUMMARY: &str = "the Kafka cluster does not answer";
    pub const IMPACT: &str = "pipewatch cannot see the pipeline: freshness, completeness and sync of every stream are unknown until the cluster answers.";
    /// `{when}` is since when (pipewatch) or which job (the Prometheus rules).
    pub const DESCRIPTION: &str = "pipewatch's log-end polls fail {when}; per-stream alerts are held back";
}

/// The built-in alert of a Kafka Connect cluster whose REST API does not answer: a
/// monitoring fault (the streams keep their Kafka-level causes; the connector rules of the
/// connectors it held are held back until it answers).
pub mod connect_unreachable {
    pub const ALERT: &str = "ConnectUnreachable";
    /// The `cause` label of the alert, and what holds connector rules back.
    pub const CAUSE: &str = "connect_unreachable";
    pub const SEVERITY: &str = "warning";
    pub const SUMMARY: &str = "the Kafka Connect cluster {connect} does not answer";
    pub const EXPLAIN: &str = "the Kafka Connect REST API does not answer: the states of its connectors are unknown";
    pub const IMPACT: &str = "pipewatch cannot tell whether the connectors of this Connect cluster run: a failed connector is seen only by its symptoms (producer_silent, a consumer's lag) until the API answers.";
    /// `{connect}`, `{url}`, `{error}` and `{when}` filled in.
    pub const DESCRIPTION: &str =
        "GET {url}/connectors fails {when}: {error}; connector alerts of its connectors are held back";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a table of docs/architecture.md between its marker comments, as cells.
    fn documented(marker: &str) -> Vec<Vec<String>> {
        let docs = include_str!("../../../docs/architecture.md");
        let start = docs.find(&format!("<!-- {marker}: checked against diagnosis.rs by a test -->")).expect(marker);
        let end = start + docs[start..].find("<!-- end of the").expect("end marker");
        docs[start..end]
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| rank") && !l.starts_with("|---"))
            .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_string()).collect())
            .collect()
    }

    #[test]
    fn the_architecture_document_shows_the_diagnosis_tables_as_they_are() {
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let rows = documented("diagnosis table");
        assert_eq!(rows.len(), ORDER.len(), "docs/architecture.md lists {} causes", rows.len());
        for (i, (row, d)) in rows.iter().zip(&ORDER).enumerate() {
            // rank, cause, holds when (prose), upstream, fault, lag rules wait, explain
            let want =
                [i.to_string(), d.name.into(), yes(d.upstream), yes(d.fault), yes(d.holds_lag_rules), d.explain.into()];
            let got = [&row[0], &row[1], &row[3], &row[4], &row[5], &row[6]].map(|c| c.to_string());
            assert_eq!(got, want, "row {i} of the diagnosis table in docs/architecture.md");
        }
        let rows = documented("consumer diagnosis table");
        assert_eq!(rows.len(), CONSUMER_ORDER.len());
        for (i, (row, d)) in rows.iter().zip(&CONSUMER_ORDER).enumerate() {
            let want = [i.to_string(), d.name.into(), yes(d.fault), d.explain.into()];
            assert_eq!(row[..4], want, "row {i} of the consumer diagnosis table in docs/architecture.md");
        }
    }

    #[test]
    fn the_table_is_in_declaration_order_with_distinct_names() {
        for (i, d) in ORDER.iter().enumerate() {
            assert_eq!(d.cause as usize, i, "{}", d.name);
            assert_eq!(Cause::ALL[i], d.cause);
            assert_eq!(serde_json::to_value(d.cause).unwrap(), d.name, "serde name");
        }
        let names: std::collections::HashSet<_> = ORDER.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), ORDER.len());
        assert_eq!(ORDER.last().map(|d| d.cause), Some(Cause::Ok), "ok holds when nothing else does");
    }

    #[test]
    fn each_cause_wins_over_every_later_one() {
        let healthy = StreamFacts { has_watermark: true, flowing: 2, ..StreamFacts::default() };
        assert_eq!(diagnose(&healthy), Cause::Ok);
        let mut f = healthy;
        f.min_rate = Some(10.0);
        f.max_rate = Some(0.5);
        f.full_window_rate = Some(1.0);
        assert_eq!(diagnose(&f), Cause::VolumeLow);
        f.event_time_old = true;
        assert_eq!(diagnose(&f), Cause::EventTimeDelayed);
        f.backlog_growing = true;
        assert_eq!(diagnose(&f), Cause::MonitorBacklog);
        f.source_snapshot = true;
        assert_eq!(diagnose(&f), Cause::SourceSnapshot, "old event times of a snapshot are not a delay");
        f.catching_up = true;
        assert_eq!(diagnose(&f), Cause::CatchingUp);
        f.silent = 1;
        assert_eq!(diagnose(&f), Cause::PartitionStalled);
        f.flowing = 0;
        assert_eq!(diagnose(&f), Cause::ProducerSilent);
        f.has_watermark = false;
        assert_eq!(diagnose(&f), Cause::NoData);
        f.connector = Some(ConnectorFault::Paused);
        assert_eq!(diagnose(&f), Cause::ConnectorPaused);
        f.connector = Some(ConnectorFault::Unassigned);
        assert_eq!(diagnose(&f), Cause::ConnectorUnassigned);
        f.connector = Some(ConnectorFault::Failed);
        assert_eq!(diagnose(&f), Cause::ConnectorFailed, "the upstream fault, not its symptoms");
        f.topic_missing = true;
        assert_eq!(diagnose(&f), Cause::TopicMissing);
        f.registry_unreachable = true;
        assert_eq!(diagnose(&f), Cause::SchemaRegistryUnreachable);
        f.access_denied = true;
        assert_eq!(diagnose(&f), Cause::AccessDenied);
        f.kafka_down = true;
        assert_eq!(diagnose(&f), Cause::KafkaUnreachable);
    }

    #[test]
    fn the_consumer_table_is_in_order_and_upstream_comes_first() {
        for (i, d) in CONSUMER_ORDER.iter().enumerate() {
            assert_eq!(d.cause as usize, i, "{}", d.name);
            assert_eq!(serde_json::to_value(d.cause).unwrap(), d.name);
        }
        let mut f = ConsumerFacts::default();
        assert_eq!(diagnose_consumer(&f), ConsumerCause::Ok);
        f.lagging = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::ConsumerLagging);
        f.stalled = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::ConsumerStopped);
        f.expired = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::RecordsExpired, "data loss outranks a stop");
        f.group_unknown = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::GroupUnknown);
        f.connector = Some(ConnectorFault::Paused);
        assert_eq!(diagnose_consumer(&f), ConsumerCause::ConnectorPaused);
        f.connector = Some(ConnectorFault::Failed);
        assert_eq!(diagnose_consumer(&f), ConsumerCause::ConnectorFailed, "a failed sink, not consumer_stopped");
        f.upstream_fault = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::UpstreamFault, "never blamed for what it cannot read");
        f.kafka_down = true;
        assert_eq!(diagnose_consumer(&f), ConsumerCause::KafkaUnreachable);
        let upstream: Vec<&str> = ORDER.iter().filter(|d| d.upstream).map(|d| d.name).collect();
        assert_eq!(
            upstream,
            [
                "kafka_unreachable",
                "topic_missing",
                "connector_failed",
                "connector_unassigned",
                "connector_paused",
                "producer_silent",
                "partition_stalled",
                "event_time_delayed"
            ]
        );
    }

    #[test]
    fn a_pair_carries_the_cause_of_the_side_that_is_behind() {
        use Cause::*;
        // behaviour 8 h behind (the silo), then an orders partition stalls: still the silo
        assert_eq!(pair_cause(PartitionStalled, EventTimeDelayed, Some(28_800.0)), (EventTimeDelayed, Side::Follower));
        // the leader behind: its cause
        assert_eq!(pair_cause(ProducerSilent, EventTimeDelayed, Some(-600.0)), (ProducerSilent, Side::Leader));
        // the side behind is ok: the other side's cause
        assert_eq!(pair_cause(PartitionStalled, Ok, Some(5.0)), (PartitionStalled, Side::Leader));
        assert_eq!(pair_cause(Ok, EventTimeDelayed, Some(-5.0)), (EventTimeDelayed, Side::Follower));
        // no sync lag yet, or none: the cause first in the diagnosis order, leader on a tie
        assert_eq!(pair_cause(NoData, NoData, None), (NoData, Side::Leader));
        assert_eq!(pair_cause(NoData, TopicMissing, None), (TopicMissing, Side::Follower), "the fault, not no_data");
        assert_eq!(pair_cause(PartitionStalled, EventTimeDelayed, Some(0.0)), (PartitionStalled, Side::Leader));
        assert_eq!(pair_cause(Ok, CatchingUp, Some(0.0)), (CatchingUp, Side::Follower));
        assert_eq!(pair_cause(Ok, Ok, Some(3.0)), (Ok, Side::Follower), "ok only when both are");
        assert_eq!(pair_cause(Ok, Ok, Some(-3.0)), (Ok, Side::Follower));
    }
}
