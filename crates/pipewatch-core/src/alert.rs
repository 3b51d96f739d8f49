//! Alert rules and their state machine (inactive → pending → firing → resolved, as
//! Prometheus does), evaluated on each [`Snapshot`] with the time passed in.
//!
//! Root cause, not symptoms: every alert carries its target's diagnosed cause as a
//! label; while the cluster is unreachable the per-stream rules are held back and one
//! built-in `KafkaUnreachable` alert fires instead; lag rules wait while their streams
//! have no data yet or are catching up.

use std::collections::VecDeque;

use serde::Serialize;

use crate::diagnosis::{kafka_unreachable, AlertCause, Cause, ConsumerCause};
use crate::snapshot::ConsumerPairSnapshot;
use crate::snapshot::{KafkaStatus, Snapshot, StreamSnapshot};
use crate::time::{format_human, format_rfc3339, Millis};
use crate::watermark::behind;

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
}

/// What a rule's target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Stream,
    Pair,
    /// A `[[consumer]]`; `consumer_sync_lag` also names one of its pairs.
    Consumer,
}

impl AlertKind {
    pub const NAMES: [&'static str; 10] = [
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
            _ => return None,
        })
    }

    /// `true` for rules that fire above their threshold, `false` for `rate_low`
    /// (`volume_anomaly` fires when the rate is further from the expected rate than its
    /// threshold, in band half-widths, either side).
    pub fn fires_above(self) -> bool {
        self != Self::RateLow
    }

    /// The threshold when the rule names none (`volume_anomaly`: the band's edge).
    pub fn default_threshold(self) -> Option<f64> {
        (self == Self::VolumeAnomaly).then_some(1.0)
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

    /// What the rule's `target` names.
    pub fn target_kind(self) -> TargetKind {
        match self {
            Self::SyncLag => TargetKind::Pair,
            Self::ConsumerLag | Self::ConsumerSyncLag => TargetKind::Consumer,
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

    /// The one-line summary of a firing alert of this kind, for pipewatch's own alerts
    /// and the Prometheus rules alike: `subject` is the target stream or consumer; a
    /// sync lag's `follower` is behind its `leader`; `value` and `threshold` are already
    /// in human units.
    pub fn summary(self, subject: &str, leader: &str, follower: &str, value: &str, threshold: &str) -> String {
        match self {
            Self::FreshnessLag => format!("{subject} data is {value} old"),
            Self::SyncLag => behind(follower, value, leader),
            Self::Silence => format!("nothing written to {subject} for {value}"),
            Self::RateLow => format!("{subject} receives {value}, below {threshold}"),
            Self::RateHigh => format!("{subject} receives {value}, above {threshold}"),
            Self::InvalidRatio => format!("{value} of {subject} records are invalid"),
            Self::ConsumerLag => format!("{subject} is {value} behind its input"),
            Self::ConsumerSyncLag => format!("{subject} sees {follower} {value} behind {leader}"),
            Self::VolumeAnomaly => format!("{subject} receives {value}, outside its expected {threshold}"),
            // `subject`: the stream and its silent `segment=value`s
            Self::SegmentSilence => format!("no {subject} records for {value}"),
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
}

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
}

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AlertState {
    Inactive,
    Pending { since_ms: Millis },
    Firing { since_ms: Millis },
}

/// A rule going to firing, or back from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Firing,
    Resolved,
}

/// One alert as a receiver sees it: Alertmanager's shape (labels, annotations,
/// start and end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub transition: Transition,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub starts_at_ms: Millis,
    /// Set on resolve.
    pub ends_at_ms: Option<Millis>,
}

impl AlertEvent {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A rule's state as `/api/v1/status` and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    pub name: String,
    pub kind: AlertKind,
    pub target: String,
    pub severity: String,
    #[serde(flatten)]
    pub state: AlertState,
    /// The cause label: the target's cause, frozen while the alert fires.
    pub cause: AlertCause,
    /// The measured value (seconds, records/s or a fraction), when there is one.
    pub value: Option<f64>,
    pub threshold: f64,
    pub clear: f64,
    /// Why the rule is not evaluated right now (`kafka_unreachable`, `no_data`,
    /// `catching_up`; for a consumer's rule also `upstream_fault`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<AlertCause>,
    /// The firing alert as receivers get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<AlertEvent>,
}

struct RuleState {
    state: AlertState,
    cause: AlertCause,
    event: Option<AlertEvent>,
}

/// Evaluates the rules on each snapshot.
pub struct AlertEvaluator {
    rules: Vec<AlertRule>,
    states: Vec<RuleState>,
    kafka: RuleState,
    /// Per stream: `(at, invalid, records)` totals over the rate window.
    invalid_window: Vec<VecDeque<(Millis, u64, u64)>>,
    rate_window_ms: Millis,
}

/// What one evaluation found: the transitions of the tick and every rule's state.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Transitions in rule order (`KafkaUnreachable` first): what receivers get.
    pub events: Vec<AlertEvent>,
    /// Every rule's state after the tick (the built-in one while it is active).
    pub alerts: Vec<AlertStatus>,
}

impl AlertEvaluator {
    pub fn new(rules: Vec<AlertRule>, streams: usize, rate_window_ms: Millis) -> Self {
        let fresh = || RuleState { state: AlertState::Inactive, cause: Cause::Ok.into(), event: None };
        Self {
            states: rules.iter().map(|_| fresh()).collect(),
            rules,
            kafka: fresh(),
            invalid_window: vec![VecDeque::new(); streams],
            rate_window_ms,
        }
    }

    /// Evaluates every rule once on `snap`: its transitions and its state.
    pub fn evaluate(&mut self, snap: &Snapshot, now: Millis) -> Evaluation {
        self.track_invalid(snap, now);
        let mut out = Evaluation::default();

        let down = snap.kafka == KafkaStatus::Down;
        let kafka_cause = Cause::KafkaUnreachable.into();
        if let Some(e) = step(&mut self.kafka, Some(down), 0, kafka_cause, now, || kafka_event(now)) {
            out.events.push(e);
        }
        if self.kafka.state != AlertState::Inactive {
            out.alerts.push(AlertStatus {
                name: kafka_unreachable::ALERT.into(),
                kind: AlertKind::Silence,
                target: "kafka".into(),
                severity: kafka_unreachable::SEVERITY.into(),
                state: self.kafka.state,
                cause: kafka_cause,
                value: None,
                threshold: 0.0,
                clear: 0.0,
                held_back: None,
                event: self.kafka.event.clone(),
            });
        }

        for (rule, st) in self.rules.iter().zip(&mut self.states) {
            let (value, cause, held) = measure(rule, snap, &self.invalid_window);
            if held.is_some() && !matches!(st.state, AlertState::Firing { .. }) {
                st.state = AlertState::Inactive; // a wait resets a pending rule
            } else {
                let condition = match (held, value) {
                    (Some(_), _) => None,
                    (None, Some(v)) => Some(over(rule, v, &st.state)),
                    (None, None) => Some(false),
                };
                // The cause label is taken when the alert fires and kept until it resolves,
                // so that receivers see one alert, not a new one per change of diagnosis.
                let make = || rule_event(rule, snap, value.unwrap_or(0.0), cause, now);
                if let Some(e) = step(st, condition, rule.for_ms, cause, now, make) {
                    out.events.push(e);
                }
            }
            out.alerts.push(AlertStatus {
                name: rule.name.clone(),
                kind: rule.kind,
                target: target_name(rule, snap).to_string(),
                severity: rule.severity.clone(),
                state: st.state,
                cause: if matches!(st.state, AlertState::Firing { .. }) { st.cause } else { cause },
                value,
                threshold: rule.threshold,
                clear: rule.clear,
                held_back: held,
                event: st.event.clone(),
            });
        }
        out
    }

    /// The stream totals (`records_invalid_total` and `records_total`: partitions revoked
    /// since included), so that a rebalance taking partitions away moves no window.
    fn track_invalid(&mut self, snap: &Snapshot, now: Millis) {
        for (window, st) in self.invalid_window.iter_mut().zip(&snap.streams) {
            let invalid: u64 = st.invalid.values().sum();
            window.push_back((now, invalid, st.records));
            while window.len() >= 2 && window[1].0 <= now - self.rate_window_ms {
                window.pop_front();
            }
        }
    }
}

fn kafka_event(now: Millis) -> AlertEvent {
    AlertEvent {
        transition: Transition::Firing,
        labels: vec![
            ("alertname".into(), kafka_unreachable::ALERT.into()),
            ("cause".into(), Cause::KafkaUnreachable.as_str().into()),
            ("severity".into(), kafka_unreachable::SEVERITY.into()),
        ],
        annotations: vec![
            ("summary".into(), kafka_unreachable::SUMMARY.into()),
            (
                "description".into(),
                kafka_unreachable::DESCRIPTION.replace("{when}", &format!("since {}", format_rfc3339(now))),
            ),
            ("impact".into(), kafka_unreachable::IMPACT.into()),
        ],
        starts_at_ms: now,
        ends_at_ms: None,
    }
}

/// Advances one rule's state; returns its transition, if any.
fn step(
    st: &mut RuleState,
    condition: Option<bool>,
    for_ms: Millis,
    cause: AlertCause,
    now: Millis,
    make: impl FnOnce() -> AlertEvent,
) -> Option<AlertEvent> {
    let Some(active) = condition else { return None };
    match (st.state, active) {
        (AlertState::Inactive, true) if for_ms == 0 => fire(st, cause, now, make),
        (AlertState::Inactive, true) => {
            st.state = AlertState::Pending { since_ms: now };
            st.cause = cause;
            None
        }
        (AlertState::Pending { since_ms }, true) if now - since_ms >= for_ms => fire(st, cause, now, make),
        (AlertState::Pending { .. }, false) => {
            st.state = AlertState::Inactive;
            None
        }
        (AlertState::Firing { .. }, false) => {
            st.state = AlertState::Inactive;
            let mut e = st.event.take()?;
            e.transition = Transition::Resolved;
            e.ends_at_ms = Some(now);
            Some(e)
        }
        _ => None,
    }
}

fn fire(st: &mut RuleState, cause: AlertCause, now: Millis, make: impl FnOnce() -> AlertEvent) -> Option<AlertEvent> {
    st.state = AlertState::Firing { since_ms: now };
    st.cause = cause;
    let e = make();
    st.event = Some(e.clone());
    Some(e)
}

/// Whether the rule's condition holds: past the threshold to start, past `clear` to stop.
fn over(rule: &AlertRule, value: f64, state: &AlertState) -> bool {
    let value = if rule.kind == AlertKind::VolumeAnomaly { value.abs() } else { value };
    let bound = if matches!(state, AlertState::Firing { .. }) { rule.clear } else { rule.threshold };
    if rule.kind.fires_above() {
        if matches!(state, AlertState::Firing { .. }) {
            value >= bound
        } else {
            value > bound
        }
    } else if matches!(state, AlertState::Firing { .. }) {
        value <= bound
    } else {
        value < bound
    }
}

fn target_name<'a>(rule: &AlertRule, snap: &'a Snapshot) -> &'a str {
    match rule.target {
        AlertTarget::Stream(i) => &snap.streams[i].name,
        AlertTarget::Pair(i) => &snap.pairs[i].name,
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => &snap.consumers[c].name,
    }
}

/// The consumer's view of a configured pair.
fn consumer_pair<'a>(snap: &'a Snapshot, consumer: usize, pair: usize) -> Option<&'a ConsumerPairSnapshot> {
    let name = &snap.pairs.get(pair)?.name;
    snap.consumers.get(consumer)?.pairs.iter().find(|p| p.pair == *name)
}

/// The rule's value, its target's cause, and why it is held back (if it is).
fn measure(
    rule: &AlertRule,
    snap: &Snapshot,
    invalid_window: &[VecDeque<(Millis, u64, u64)>],
) -> (Option<f64>, AlertCause, Option<AlertCause>) {
    let sides: Vec<&StreamSnapshot> = match rule.target {
        AlertTarget::Stream(i) => vec![&snap.streams[i]],
        AlertTarget::Pair(i) => {
            let p = &snap.pairs[i];
            snap.streams.iter().filter(|s| s.name == p.leader || s.name == p.follower).collect()
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            let read: Vec<&str> = snap.consumers[c].streams.iter().map(|s| s.stream.as_str()).collect();
            snap.streams.iter().filter(|s| read.contains(&s.name.as_str())).collect()
        }
    };
    let cause: AlertCause = match rule.target {
        AlertTarget::Stream(i) => snap.streams[i].cause.into(),
        AlertTarget::Pair(i) => snap.pairs[i].cause.into(),
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => snap.consumers[c].cause.into(),
    };
    let held = if snap.kafka == KafkaStatus::Down {
        Some(Cause::KafkaUnreachable.into())
    } else if cause == AlertCause::Consumer(ConsumerCause::UpstreamFault) {
        // The stream's own rules page for the upstream fault: one root cause.
        Some(cause)
    } else if rule.kind == AlertKind::SegmentSilence && before_segment_silent(cause) {
        // every segment is silent when the whole stream is: its own cause pages
        Some(cause)
    } else if rule.kind.waits_for_data() {
        sides.iter().map(|s| s.cause).find(|c| c.holds_lag_rules()).map(AlertCause::from)
    } else {
        None
    };
    let value = match (rule.kind, rule.target) {
        (AlertKind::SyncLag, AlertTarget::Pair(i)) => snap.pairs[i].sync_lag_seconds,
        (AlertKind::FreshnessLag, AlertTarget::Stream(i)) => snap.streams[i].freshness_lag_seconds,
        (AlertKind::Silence, AlertTarget::Stream(i)) => snap.streams[i].silence_seconds,
        // A rate over less than a whole window (just after start) does not count yet.
        (AlertKind::RateLow | AlertKind::RateHigh, AlertTarget::Stream(i)) => {
            snap.streams[i].rate_records_per_second.filter(|_| snap.streams[i].rate_window_full)
        }
        // where the rate over a whole window stands in the band, signed
        (AlertKind::VolumeAnomaly, AlertTarget::Stream(i)) => snap.streams[i].baseline.and_then(|b| b.score),
        (AlertKind::SegmentSilence, AlertTarget::Stream(i)) => snap.streams[i].segment_silence_seconds,
        (AlertKind::InvalidRatio, AlertTarget::Stream(i)) => invalid_window.get(i).and_then(|w| {
            let (first, last) = (w.front()?, w.back()?);
            let records = last.2.saturating_sub(first.2);
            (records > 0).then(|| last.1.saturating_sub(first.1) as f64 / records as f64)
        }),
        (AlertKind::ConsumerLag, AlertTarget::Consumer(c)) => {
            snap.consumers[c].streams.iter().filter_map(|s| s.max_lag_seconds).reduce(f64::max)
        }
        (AlertKind::ConsumerSyncLag, AlertTarget::ConsumerPair { consumer, pair }) => {
            consumer_pair(snap, consumer, pair).and_then(|p| p.sync_lag_seconds)
        }
        _ => None,
    };
    (value, cause, held)
}

/// A stream fault found before `segment_silent` in the diagnosis order.
fn before_segment_silent(cause: AlertCause) -> bool {
    matches!(cause, AlertCause::Stream(c) if c.is_fault() && (c as usize) < Cause::SegmentSilent as usize)
}

/// Every label name [`rule_event`] sets itself, for any target: a rule's own `labels` may
/// not use them (the config check refuses them with their key).
pub const RESERVED_LABELS: [&str; 9] =
    ["alertname", "cause", "severity", "stream", "pair", "leader", "follower", "consumer", "group"];

fn rule_event(rule: &AlertRule, snap: &Snapshot, value: f64, cause: AlertCause, now: Millis) -> AlertEvent {
    let target = target_name(rule, snap);
    let mut labels = vec![
        ("alertname".to_string(), rule.name.clone()),
        ("cause".to_string(), cause.as_str().to_string()),
        ("severity".to_string(), rule.severity.clone()),
    ];
    match rule.target {
        AlertTarget::Stream(_) => labels.push(("stream".into(), target.into())),
        AlertTarget::Pair(i) => {
            let p = &snap.pairs[i];
            labels.push(("pair".into(), target.into()));
            labels.push(("leader".into(), p.leader.clone()));
            labels.push(("follower".into(), p.follower.clone()));
            // The side whose cause the pair carries.
            labels.push(("stream".into(), p.cause_stream.clone()));
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            labels.push(("consumer".into(), target.into()));
            labels.push(("group".into(), snap.consumers[c].group.clone()));
            if let AlertTarget::ConsumerPair { pair, .. } = rule.target {
                let p = &snap.pairs[pair];
                labels.push(("pair".into(), p.name.clone()));
                labels.push(("leader".into(), p.leader.clone()));
                labels.push(("follower".into(), p.follower.clone()));
            }
        }
    }
    for (k, v) in &rule.labels {
        if !labels.iter().any(|(name, _)| name == k) {
            labels.push((k.clone(), v.clone()));
        }
    }
    let (summary, measured) = describe(rule, snap, value);
    let description =
        format!("{measured}; cause: {} ({}); since {}", cause.as_str(), cause.explain(), format_rfc3339(now));
    AlertEvent {
        transition: Transition::Firing,
        labels,
        annotations: vec![
            ("summary".into(), summary),
            ("description".into(), description),
            ("impact".into(), rule.impact.clone()),
        ],
        starts_at_ms: now,
        ends_at_ms: None,
    }
}

/// A one-line summary in human units, and what was measured (with partitions).
fn describe(rule: &AlertRule, snap: &Snapshot, value: f64) -> (String, String) {
    let threshold = rule.threshold;
    match rule.target {
        AlertTarget::Pair(i) => {
            let p = &snap.pairs[i];
            (
                rule.kind.summary(&p.name, &p.leader, &p.follower, &format_human(value), &format_human(threshold)),
                format!(
                    "sync lag (leader watermark - follower watermark) {} over {}",
                    format_human(value),
                    format_human(threshold)
                ),
            )
        }
        AlertTarget::Stream(i) => {
            let s = &snap.streams[i];
            let name = &s.name;
            let summary = match (rule.kind, s.baseline.and_then(|b| b.band)) {
                (AlertKind::SegmentSilence, _) => rule.kind.summary(
                    &format!("{name} {}", s.segment_silent.as_deref().unwrap_or("segment")),
                    "",
                    "",
                    &shown(rule.kind, value),
                    "",
                ),
                (AlertKind::VolumeAnomaly, Some(band)) => rule.kind.summary(
                    name,
                    "",
                    "",
                    &shown(AlertKind::RateLow, s.rate_records_per_second.unwrap_or(0.0)),
                    &format!("{:.2}–{:.2} records/s", band.lower, band.upper),
                ),
                _ => rule.kind.summary(name, "", "", &shown(rule.kind, value), &threshold.to_string()),
            };
            let silent: Vec<String> = s
                .partitions
                .iter()
                .filter(|p| p.gap_open_since_ms.is_some())
                .map(|p| p.partition.to_string())
                .collect();
            let holding = s
                .partitions
                .iter()
                .filter(|p| p.active && p.watermark_ms.is_some())
                .min_by_key(|p| p.watermark_ms)
                .map(|p| p.partition);
            let mut measured = format!("{} of {name} ({}): {}", rule.kind_name(), s.topic, shown(rule.kind, value));
            if !silent.is_empty() {
                measured.push_str(&format!("; silent partitions: {}", silent.join(", ")));
            }
            if let (AlertKind::FreshnessLag, Some(p)) = (rule.kind, holding) {
                measured.push_str(&format!("; oldest active partition: {p}"));
            }
            if let (AlertKind::SegmentSilence, Some(silent)) = (rule.kind, &s.segment_silent) {
                measured
                    .push_str(&format!(" (longest silence of a segment value that used to flow); silent: {silent}"));
            }
            if let (AlertKind::VolumeAnomaly, Some(b)) = (rule.kind, s.baseline) {
                if let Some(band) = b.band {
                    measured.push_str(&format!(
                        " band half-widths {} the expected {:.2} records/s ({}, from {} past hours); rate {}",
                        if value < 0.0 { "below" } else { "above" },
                        band.expected,
                        band.slot.as_str(),
                        band.samples,
                        shown(AlertKind::RateLow, s.rate_records_per_second.unwrap_or(0.0)),
                    ));
                }
            }
            (summary, measured)
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            let consumer = &snap.consumers[c];
            let (leader, follower) = match rule.target {
                AlertTarget::ConsumerPair { pair, .. } => {
                    (snap.pairs[pair].leader.as_str(), snap.pairs[pair].follower.as_str())
                }
                _ => ("", ""),
            };
            let summary = rule.kind.summary(&consumer.name, leader, follower, &format_human(value), "");
            let behind: Vec<String> = consumer
                .streams
                .iter()
                .filter_map(|s| {
                    s.max_lag_seconds.map(|l| format!("{} {} ({} records)", s.stream, format_human(l), s.lag_records))
                })
                .collect();
            let measured = format!(
                "{} of {} (group {}): {} over {}; lag per stream: {}",
                rule.kind_name(),
                consumer.name,
                consumer.group,
                format_human(value),
                format_human(threshold),
                if behind.is_empty() { "unknown".to_string() } else { behind.join(", ") }
            );
            (summary, measured)
        }
    }
}

fn shown(kind: AlertKind, value: f64) -> String {
    match kind {
        k if k.takes_duration() => format_human(value),
        AlertKind::InvalidRatio => format!("{:.1}%", value * 100.0),
        AlertKind::VolumeAnomaly => format!("{:.1}", value.abs()),
        _ => format!("{value:.2} records/s"),
    }
}

impl AlertRule {
    fn kind_name(&self) -> &'static str {
        AlertKind::NAMES[self.kind as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::ConsumerCause;
    use crate::histogram::{Histogram, GAP_DURATION_BUCKETS, RECORD_DELAY_BUCKETS};
    use crate::snapshot::{PairSnapshot, PartitionSnapshot};

    const T0: Millis = 1_795_375_975_000;
    const SEC: Millis = 1000;

    fn stream(name: &str, cause: Cause, freshness: Option<f64>) -> StreamSnapshot {
        StreamSnapshot {
            name: name.into(),
            topic: name.into(),
            cause,
            access_denied: None,
            watermark_ms: freshness.map(|f| T0 - (f * 1000.0) as Millis),
            freshness_lag_seconds: freshness,
            silence_seconds: Some(0.0),
            max_silence_seconds: 120.0,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segment_silent: None,
            segment_silence_seconds: None,
            segments: Vec::new(),
            rate_records_per_second: Some(10.0),
            rate_window_full: true,
            median_record_delay_seconds: None,
            backlog_records: 0,
            active_partitions: 0,
            records: 0,
            bytes: 0,
            invalid: Default::default(),
            gaps: 0,
            record_delay: Histogram::new(RECORD_DELAY_BUCKETS),
            gap_duration: Histogram::new(GAP_DURATION_BUCKETS),
            partitions: vec![PartitionSnapshot {
                partition: 0,
                watermark_ms: None,
                last_record_ms: None,
                log_end_offset: Some(10),
                position_offset: Some(10),
                backlog_records: Some(0),
                silence_seconds: Some(0.0),
                active: true,
                caught_up: true,
                records: 0,
                bytes: 0,
                invalid: Default::default(),
                gaps: 0,
                gap_open_since_ms: None,
            }],
        }
    }

    /// orders (leader) and behaviour (follower), behaviour `lag` seconds behind.
    fn snap(kafka: KafkaStatus, behaviour_cause: Cause, lag: f64) -> Snapshot {
        let pair_cause = behaviour_cause;
        Snapshot {
            at_ms: T0,
            kafka,
            kafka_error: None,
            streams: vec![
                stream("orders", Cause::Ok, Some(1.0)),
                stream("behaviour", behaviour_cause, Some(1.0 + lag)),
            ],
            pairs: vec![PairSnapshot {
                name: "orders_behaviour".into(),
                leader: "orders".into(),
                follower: "behaviour".into(),
                sync_lag_seconds: Some(lag),
                cause: pair_cause,
                cause_stream: "behaviour".into(),
            }],
            consumers: Vec::new(),
        }
    }

    fn sync_rule(for_s: i64) -> AlertRule {
        AlertRule {
            name: "BehaviourBehindOrders".into(),
            kind: AlertKind::SyncLag,
            target: AlertTarget::Pair(0),
            threshold: 900.0,
            clear: 600.0,
            for_ms: for_s * SEC,
            severity: "page".into(),
            labels: vec![("team".into(), "data".into())],
            impact: "Segmentation and ad targeting run on stale data.".into(),
        }
    }

    fn evaluator(rules: Vec<AlertRule>) -> Evaluator {
        Evaluator { inner: AlertEvaluator::new(rules, 2, 60 * SEC), last: Evaluation::default() }
    }

    /// The evaluator, keeping the last evaluation's rule states for the assertions.
    struct Evaluator {
        inner: AlertEvaluator,
        last: Evaluation,
    }

    impl Evaluator {
        fn evaluate(&mut self, snap: &Snapshot, now: Millis) -> Vec<AlertEvent> {
            self.last = self.inner.evaluate(snap, now);
            self.last.events.clone()
        }

        fn status(&self, _snap: &Snapshot) -> Vec<AlertStatus> {
            self.last.alerts.clone()
        }
    }

    #[test]
    fn pending_then_firing_only_after_for() {
        let mut ev = evaluator(vec![sync_rule(60)]);
        let s = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_920.0);
        assert!(ev.evaluate(&s, T0).is_empty());
        assert_eq!(ev.status(&s)[0].state, AlertState::Pending { since_ms: T0 });
        assert!(ev.evaluate(&s, T0 + 59 * SEC).is_empty());
        let fired = ev.evaluate(&s, T0 + 60 * SEC);
        assert_eq!(fired.len(), 1);
        let e = &fired[0];
        assert_eq!(e.transition, Transition::Firing);
        assert_eq!(e.label("alertname"), Some("BehaviourBehindOrders"));
        assert_eq!(e.label("cause"), Some("event_time_delayed"));
        assert_eq!(e.label("pair"), Some("orders_behaviour"));
        assert_eq!(e.label("severity"), Some("page"));
        assert_eq!(e.label("team"), Some("data"));
        assert_eq!(e.annotation("summary"), Some("behaviour is 8h 02m behind orders"));
        assert_eq!(e.annotation("impact"), Some("Segmentation and ad targeting run on stale data."));
        assert_eq!(e.annotation("generatorURL"), None, "the receiver adds the link back");
        assert!(ev.evaluate(&s, T0 + 61 * SEC).is_empty(), "firing stays firing without a new transition");
    }

    #[test]
    fn a_dip_below_threshold_resets_pending() {
        let mut ev = evaluator(vec![sync_rule(60)]);
        ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0);
        ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 100.0), T0 + 30 * SEC);
        assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0 + 61 * SEC).is_empty());
    }

    #[test]
    fn no_flapping_between_clear_and_threshold_then_resolve() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        assert_eq!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0).len(), 1);
        for (i, lag) in [899.0, 700.0, 601.0, 600.0, 850.0].into_iter().enumerate() {
            let t = T0 + (i as i64 + 1) * SEC;
            assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, lag), t).is_empty(), "lag {lag}");
        }
        let resolved = ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 599.0), T0 + 10 * SEC);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].transition, Transition::Resolved);
        assert_eq!(resolved[0].ends_at_ms, Some(T0 + 10 * SEC));
        assert_eq!(resolved[0].starts_at_ms, T0);
        assert_eq!(resolved[0].label("cause"), Some("event_time_delayed"), "the cause label is the one it fired with");
        // between clear and threshold again: stays quiet
        assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 800.0), T0 + 11 * SEC).is_empty());
    }

    #[test]
    fn rate_low_is_a_lower_bound_rule() {
        let rule = AlertRule {
            name: "OrdersVolumeLow".into(),
            kind: AlertKind::RateLow,
            target: AlertTarget::Stream(0),
            threshold: 5.0,
            clear: 8.0,
            for_ms: 0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        s.streams[0].rate_records_per_second = Some(0.0);
        s.streams[0].rate_window_full = false;
        assert!(ev.evaluate(&s, T0 - SEC).is_empty(), "a rate over part of a window does not count");
        s.streams[0].rate_window_full = true;
        s.streams[0].rate_records_per_second = Some(4.0);
        s.streams[0].cause = Cause::VolumeLow;
        let fired = ev.evaluate(&s, T0);
        assert_eq!(fired[0].annotation("summary"), Some("orders receives 4.00 records/s, below 5"));
        assert_eq!(fired[0].label("stream"), Some("orders"));
        s.streams[0].rate_records_per_second = Some(7.0);
        assert!(ev.evaluate(&s, T0 + SEC).is_empty(), "below clear: still firing");
        s.streams[0].rate_records_per_second = Some(9.0);
        assert_eq!(ev.evaluate(&s, T0 + 2 * SEC)[0].transition, Transition::Resolved);
    }

    #[test]
    fn an_unreachable_cluster_holds_rules_back_and_fires_one_alert() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        let down = snap(KafkaStatus::Down, Cause::KafkaUnreachable, 28_800.0);
        let events = ev.evaluate(&down, T0);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].label("alertname"), Some(kafka_unreachable::ALERT));
        assert_eq!(events[0].label("cause"), Some("kafka_unreachable"));
        assert_eq!(ev.status(&down)[1].held_back, Some(Cause::KafkaUnreachable.into()));
        let up = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_800.0);
        let events = ev.evaluate(&up, T0 + 5 * SEC);
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].label("alertname"), events[0].transition),
            (Some(kafka_unreachable::ALERT), Transition::Resolved)
        );
        assert_eq!(events[1].label("cause"), Some("event_time_delayed"));
    }

    #[test]
    fn lag_rules_wait_while_catching_up_or_without_data() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        for cause in [Cause::NoData, Cause::CatchingUp] {
            let s = snap(KafkaStatus::Up, cause, 28_800.0);
            assert!(ev.evaluate(&s, T0).is_empty());
            assert_eq!(ev.status(&s)[0].held_back, Some(cause.into()));
        }
    }

    #[test]
    fn invalid_ratio_over_the_window() {
        let rule = AlertRule {
            name: "BehaviourInvalid".into(),
            kind: AlertKind::InvalidRatio,
            target: AlertTarget::Stream(1),
            threshold: 0.1,
            clear: 0.05,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        assert!(ev.evaluate(&s, T0).is_empty());
        s.streams[1].partitions[0].records = 100;
        s.streams[1].partitions[0].invalid.insert("not_json", 25);
        s.streams[1].records = 100;
        s.streams[1].invalid.insert("not_json", 25);
        let fired = ev.evaluate(&s, T0 + SEC);
        assert_eq!(fired[0].annotation("summary"), Some("25.0% of behaviour records are invalid"));
    }

    #[test]
    fn the_reserved_labels_are_every_label_the_builder_sets() {
        let s = with_consumer(snap(KafkaStatus::Up, Cause::Ok, 0.0), ConsumerCause::Ok, Some(1.0), Some(1.0));
        let mut set = std::collections::BTreeSet::new();
        let targets = [
            AlertTarget::Stream(0),
            AlertTarget::Pair(0),
            AlertTarget::Consumer(0),
            AlertTarget::ConsumerPair { consumer: 0, pair: 0 },
        ];
        for target in targets {
            let rule = AlertRule { target, labels: Vec::new(), ..sync_rule(0) };
            set.extend(rule_event(&rule, &s, 1.0, Cause::Ok.into(), T0).labels.into_iter().map(|(name, _)| name));
        }
        let reserved: std::collections::BTreeSet<String> = RESERVED_LABELS.iter().map(|l| l.to_string()).collect();
        assert_eq!(set, reserved, "every reserved label is one the builder sets");
    }

    #[test]
    fn invalid_ratio_reads_the_stream_totals_that_survive_a_revoke() {
        let rule = AlertRule {
            name: "BehaviourInvalid".into(),
            kind: AlertKind::InvalidRatio,
            target: AlertTarget::Stream(1),
            threshold: 0.1,
            clear: 0.05,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        let mut p1 = s.streams[1].partitions[0].clone();
        p1.partition = 1;
        s.streams[1].partitions[0].records = 1000;
        p1.records = 1000;
        s.streams[1].partitions.push(p1);
        s.streams[1].records = 2000;
        assert!(ev.evaluate(&s, T0).is_empty());
        // a rebalance takes partition 0 away; partition 1 then reads 100 records, half invalid
        s.streams[1].partitions.remove(0);
        s.streams[1].partitions[0].records = 1100;
        s.streams[1].partitions[0].invalid.insert("not_json", 50);
        s.streams[1].records = 2100;
        s.streams[1].invalid.insert("not_json", 50);
        let fired = ev.evaluate(&s, T0 + SEC);
        assert_eq!(fired.len(), 1, "50 of the 100 records read since are invalid");
        assert_eq!(fired[0].annotation("summary"), Some("50.0% of behaviour records are invalid"));
    }

    fn with_consumer(mut s: Snapshot, cause: ConsumerCause, lag: Option<f64>, sync: Option<f64>) -> Snapshot {
        use crate::snapshot::{ConsumerSnapshot, ConsumerStreamSnapshot};
        s.consumers = vec![ConsumerSnapshot {
            name: "analytics".into(),
            group: "analytics-job".into(),
            cause,
            error: None,
            stalled_seconds: 0.0,
            streams: vec![ConsumerStreamSnapshot {
                stream: "behaviour".into(),
                topic: "behaviour".into(),
                watermark_ms: None,
                max_lag_seconds: lag,
                lag_records: 120,
                partitions: Vec::new(),
            }],
            pairs: vec![ConsumerPairSnapshot {
                pair: "orders_behaviour".into(),
                leader: "orders".into(),
                follower: "behaviour".into(),
                sync_lag_seconds: sync,
            }],
        }];
        s
    }

    #[test]
    fn consumer_rules_fire_with_the_consumer_cause_and_wait_for_an_upstream_fault() {
        let lag_rule = AlertRule {
            name: "AnalyticsBehind".into(),
            kind: AlertKind::ConsumerLag,
            target: AlertTarget::Consumer(0),
            threshold: 900.0,
            clear: 600.0,
            ..sync_rule(0)
        };
        let sync = AlertRule {
            name: "AnalyticsSeesBehaviourLate".into(),
            kind: AlertKind::ConsumerSyncLag,
            target: AlertTarget::ConsumerPair { consumer: 0, pair: 0 },
            threshold: 900.0,
            clear: 600.0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![lag_rule, sync]);
        let ok = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        let upstream = with_consumer(ok.clone(), ConsumerCause::UpstreamFault, Some(28_800.0), Some(28_800.0));
        assert!(ev.evaluate(&upstream, T0).is_empty(), "the stream's rules page for an upstream fault");
        assert_eq!(ev.status(&upstream)[0].held_back, Some(ConsumerCause::UpstreamFault.into()));
        let stopped = with_consumer(ok, ConsumerCause::ConsumerStopped, Some(1_000.0), Some(28_800.0));
        let fired = ev.evaluate(&stopped, T0 + SEC);
        assert_eq!(fired.len(), 2);
        assert_eq!(fired[0].label("cause"), Some("consumer_stopped"));
        assert_eq!(fired[0].label("consumer"), Some("analytics"));
        assert_eq!(fired[0].label("group"), Some("analytics-job"));
        assert_eq!(fired[0].annotation("summary"), Some("analytics is 16m 40s behind its input"));
        assert!(fired[0]
            .annotation("description")
            .unwrap()
            .contains("lag per stream: behaviour 16m 40s (120 records)"));
        assert_eq!(fired[1].label("pair"), Some("orders_behaviour"));
        assert_eq!(fired[1].annotation("summary"), Some("analytics sees behaviour 8h 00m behind orders"));
        assert_eq!(serde_json::to_value(ev.status(&stopped)[0].cause).unwrap(), "consumer_stopped");
    }
}
