//! The rules as configured: what a rule measures ([`AlertKind`]), what it watches
//! ([`AlertTarget`]), its threshold, hysteresis and wait ([`AlertRule`]), and what holds
//! it back.

use serde::Serialize;

use crate::diagnosis::{Cause, ConsumerCause};
use crate::snapshot::Snapshot;
use crate::time::Millis;

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    FreshnessLag,
    SyncLag,
    Silence,
    RateLow,
    RateHigh,
    InvalidRatio,
    ConsumerLag,
    ConsumerSyncLag,
    VolumeAnomaly,
    SegmentSilence,
    ConnectorFailed,
    ConnectorPaused,
    ConsumerStopped,
    JoinCompleteness,
}

/// What a rule's target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Stream,
    Pair,
    /// A `[[consumer]]`, or `discovered` (every discovered consumer) for `consumer_lag`
    /// and `consumer_stopped`; `consumer_sync_lag` also names one of its pairs.
    Consumer,
    /// A stream (its source connector) or, when no stream has the name, a consumer (its
    /// sink connector).
    StreamOrConsumer,
}

impl AlertKind {
    pub const NAMES: [&'static str; 14] = [
        "freshness_lag",
        "sync_lag",
        "silence",
        "rate_low",
        "rate_high",
        "invalid_ratio",
        "consumer_lag",
        "consumer_sync_lag",
        "volume_anomaly",
        "segment_silence",
        "connector_failed",
        "connector_paused",
        "consumer_stopped",
        "join_completeness",
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "freshness_lag" => Self::FreshnessLag,
            "sync_lag" => Self::SyncLag,
            "silence" => Self::Silence,
            "rate_low" => Self::RateLow,
            "rate_high" => Self::RateHigh,
            "invalid_ratio" => Self::InvalidRatio,
            "consumer_lag" => Self::ConsumerLag,
            "consumer_sync_lag" => Self::ConsumerSyncLag,
            "volume_anomaly" => Self::VolumeAnomaly,
            "segment_silence" => Self::SegmentSilence,
            "connector_failed" => Self::ConnectorFailed,
            "connector_paused" => Self::ConnectorPaused,
            "consumer_stopped" => Self::ConsumerStopped,
            "join_completeness" => Self::JoinCompleteness,
            _ => return None,
        })
    }

    /// `true` for rules that fire above their threshold, `false` for `rate_low` and
    /// `join_completeness` (`volume_anomaly` fires when the rate is further from the
    /// expected rate than its threshold, in band half-widths, either side).
    pub fn fires_above(self) -> bool {
        !matches!(self, Self::RateLow | Self::JoinCompleteness)
    }

    /// The threshold when the rule names none (`volume_anomaly`: the band's edge; the
    /// kinds that fire on a cause take none: their value is 1 while the target is in it).
    pub fn default_threshold(self) -> Option<f64> {
        match self {
            Self::VolumeAnomaly => Some(1.0),
            k if k.state_causes().is_some() => Some(0.0),
            _ => None,
        }
    }

    /// The kinds that fire while their target is in a cause, with no threshold or
    /// `clear`: the stream's cause (none for a consumer-only kind) and the consumer's.
    /// `consumer_stopped` fires on the diagnosis, which already waits `max_stall` and
    /// needs records waiting.
    pub fn state_causes(self) -> Option<(Option<Cause>, ConsumerCause)> {
        match self {
            Self::ConsumerStopped => Some((None, ConsumerCause::ConsumerStopped)),
            k => k.connector_causes().map(|(stream, consumer)| (Some(stream), consumer)),
        }
    }

    /// Whether `target = "discovered"` (one alert instance per discovered consumer) is
    /// open to this kind.
    pub fn takes_discovered(self) -> bool {
        matches!(self, Self::ConsumerLag | Self::ConsumerStopped)
    }

    /// The connector kinds: the stream's and the consumer's cause they fire on (a
    /// failed task pages at the next poll of Connect; an unassigned one shows as the
    /// cause, its symptoms page if it stays so).
    pub fn connector_causes(self) -> Option<(Cause, ConsumerCause)> {
        match self {
            Self::ConnectorFailed => Some((Cause::ConnectorFailed, ConsumerCause::ConnectorFailed)),
            Self::ConnectorPaused => Some((Cause::ConnectorPaused, ConsumerCause::ConnectorPaused)),
            _ => None,
        }
    }

    /// The `severity` label when the rule sets none: a paused connector is somebody's
    /// decision, a failed one pages.
    pub fn default_severity(self) -> &'static str {
        match self {
            Self::ConnectorFailed | Self::ConsumerStopped => "page",
            Self::ConnectorPaused => "info",
            _ => "warning",
        }
    }

    /// Thresholds of these kinds are durations (seconds); the others are numbers.
    pub fn takes_duration(self) -> bool {
        matches!(
            self,
            Self::FreshnessLag
                | Self::SyncLag
                | Self::Silence
                | Self::ConsumerLag
                | Self::ConsumerSyncLag
                | Self::SegmentSilence
        )
    }

    /// What the rule's `target` names (the connector kinds: a stream or a consumer,
    /// see [`TargetKind::StreamOrConsumer`]).
    pub fn target_kind(self) -> TargetKind {
        match self {
            Self::SyncLag | Self::JoinCompleteness => TargetKind::Pair,
            Self::ConsumerLag | Self::ConsumerSyncLag | Self::ConsumerStopped => TargetKind::Consumer,
            Self::ConnectorFailed | Self::ConnectorPaused => TargetKind::StreamOrConsumer,
            _ => TargetKind::Stream,
        }
    }

    /// Lag rules wait while their streams have no data yet or catch up.
    pub fn waits_for_data(self) -> bool {
        matches!(
            self,
            Self::FreshnessLag | Self::SyncLag | Self::ConsumerLag | Self::ConsumerSyncLag | Self::SegmentSilence
        )
    }

    /// Whether a stream the rule reads being in `cause` holds the rule back (besides an
    /// unreachable cluster, which holds every rule, and a consumer's `upstream_fault`):
    /// lag rules wait while the stream has no data or catches up (the diagnosis table's
    /// `holds_lag_rules`); a segment's silence waits for every cause checked before
    /// `segment_silent` (the stream's own alerts page for those); a join's completeness
    /// waits while either side is in any cause but `ok` (a stalled or silent follower
    /// misses keys: its own cause is the fault). The evaluator and the Prometheus rules
    /// both ask this.
    pub fn held_by(self, cause: Cause) -> bool {
        match self {
            Self::JoinCompleteness => cause != Cause::Ok,
            Self::SegmentSilence => cause.rank() < Cause::SegmentSilent.rank(),
            kind if kind.waits_for_data() => cause.holds_lag_rules(),
            _ => false,
        }
    }
}

/// A rule's target: an index into the snapshot's streams, pairs or consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertTarget {
    Stream(usize),
    Pair(usize),
    Consumer(usize),
    /// A consumer and one of the configured pairs whose two streams it reads.
    ConsumerPair {
        consumer: usize,
        pair: usize,
    },
    /// `target = "discovered"`: every discovered consumer, one alert instance each (the
    /// evaluator measures each as [`AlertTarget::Consumer`]).
    Discovered,
}

/// What `target = "discovered"` is called in the config and the status.
pub const DISCOVERED: &str = "discovered";

/// One `[[alert]]` rule, validated.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
    pub target: AlertTarget,
    /// Seconds for duration kinds, records/s for rates, a fraction for `invalid_ratio`.
    pub threshold: f64,
    /// Once firing, the alert resolves only past this value (hysteresis).
    pub clear: f64,
    pub for_ms: Millis,
    pub severity: String,
    pub labels: Vec<(String, String)>,
    /// The business consequence, for the person paged.
    pub impact: String,
    /// `join_completeness`: records judged over the join's window a segment value needs
    /// before its ratio may fire the rule (0 for the other kinds).
    pub min_judged: u64,
}

pub(crate) fn target_name(target: AlertTarget, snap: &Snapshot) -> &str {
    match target {
        AlertTarget::Stream(i) => &snap.streams[i].name,
        AlertTarget::Pair(i) => &snap.pairs[i].name,
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => &snap.consumers[c].name,
        AlertTarget::Discovered => DISCOVERED,
    }
}
