//! What an alert says: its labels (the ones pipewatch sets, [`RESERVED_LABELS`]), its
//! one-line summary per kind ([`AlertKind::summary`]), its value in human units and
//! what was measured; for pipewatch's own alerts and, through the same functions, the
//! Prometheus rules.

use crate::connect::{ConnectSnapshot, ConnectorIssue};
use crate::diagnosis::{connect_unreachable, kafka_unreachable, AlertCause, Cause};
use crate::snapshot::Snapshot;
use crate::time::{format_human, format_rfc3339, Millis};
use crate::watermark::behind;

use serde::Serialize;

use super::rules::{AlertKind, AlertRule, AlertTarget};

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

impl AlertKind {
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
            // `value`: the connector, as known (`connector orders-cdc`)
            Self::ConnectorFailed => format!("{value} of {subject} failed"),
            Self::ConnectorPaused => format!("{value} of {subject} is paused"),
            // `value`: how long its committed offsets have not moved
            Self::ConsumerStopped => format!("{subject} has committed nothing for {value} while records wait"),
            // `subject`: the leader's records of the lowest value (`orders with referral=social`)
            Self::JoinCompleteness => format!("{subject}: {value} matched {follower}, under {threshold}"),
        }
    }
}

pub(crate) fn kafka_event(now: Millis) -> AlertEvent {
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

pub(crate) fn connect_event(k: &ConnectSnapshot, now: Millis) -> AlertEvent {
    let description = connect_unreachable::DESCRIPTION
        .replace("{url}", &k.url)
        .replace("{error}", k.error.as_deref().unwrap_or("no answer"))
        .replace("{when}", &format!("since {}", format_rfc3339(now)));
    AlertEvent {
        transition: Transition::Firing,
        labels: vec![
            ("alertname".into(), connect_unreachable::ALERT.into()),
            ("cause".into(), connect_unreachable::CAUSE.into()),
            ("severity".into(), connect_unreachable::SEVERITY.into()),
            ("connect".into(), k.name.clone()),
        ],
        annotations: vec![
            ("summary".into(), connect_unreachable::SUMMARY.replace("{connect}", &k.name)),
            ("description".into(), description),
            ("impact".into(), connect_unreachable::IMPACT.into()),
        ],
        starts_at_ms: now,
        ends_at_ms: None,
    }
}

/// Every label name [`rule_event`] sets itself, for any target: a rule's own `labels` may
/// not use them (the config check refuses them with their key).
pub const RESERVED_LABELS: [&str; 9] =
    ["alertname", "cause", "severity", "stream", "pair", "leader", "follower", "consumer", "group"];

/// The alert of `rule` on `target` (the rule's own, or one consumer of a rule over
/// discovered consumers).
pub(crate) fn rule_event(
    rule: &AlertRule,
    target: AlertTarget,
    snap: &Snapshot,
    value: f64,
    cause: AlertCause,
    now: Millis,
) -> AlertEvent {
    let names = match target {
        AlertTarget::Stream(i) => TargetNames::Stream(&snap.streams[i].name),
        AlertTarget::Pair(i) => {
            let p = &snap.pairs[i];
            let (pair, leader, follower) = (p.name.as_str(), p.leader.as_str(), p.follower.as_str());
            TargetNames::Pair { pair, leader, follower, cause_stream: Some(&p.cause_stream) }
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            let pair = match target {
                AlertTarget::ConsumerPair { pair, .. } => {
                    let p = &snap.pairs[pair];
                    Some((p.name.as_str(), p.leader.as_str(), p.follower.as_str()))
                }
                _ => None,
            };
            let consumer = &snap.consumers[c];
            TargetNames::Consumer { consumer: &consumer.name, group: Some(&consumer.group), pair }
        }
        AlertTarget::Discovered => unreachable!("a rule over discovered consumers fires per consumer"),
    };
    let head = [("alertname", rule.name.as_str()), ("cause", cause.as_str()), ("severity", rule.severity.as_str())];
    let labels =
        alert_labels(&head, &names, &rule.labels).into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (summary, measured) = describe(rule, target, snap, value);
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
fn describe(rule: &AlertRule, target: AlertTarget, snap: &Snapshot, value: f64) -> (String, String) {
    match target {
        AlertTarget::Pair(i) => describe_pair(rule, snap, i, value),
        AlertTarget::Stream(i) => describe_stream(rule, snap, i, value),
        AlertTarget::Consumer(c) => describe_consumer(rule, snap, c, None, value),
        AlertTarget::ConsumerPair { consumer, pair } => describe_consumer(rule, snap, consumer, Some(pair), value),
        AlertTarget::Discovered => unreachable!("a rule over discovered consumers fires per consumer"),
    }
}

fn describe_pair(rule: &AlertRule, snap: &Snapshot, i: usize, value: f64) -> (String, String) {
    let threshold = rule.threshold;
    let p = &snap.pairs[i];
    if let (AlertKind::JoinCompleteness, Some(j)) = (rule.kind, &p.join) {
        return describe_join(rule, p, j, value);
    }
    let mut measured = format!(
        "sync lag (leader watermark - follower watermark) {} over {}",
        format_human(value),
        format_human(threshold)
    );
    if let Some(hint) = &p.timezone_hint {
        measured.push_str(&format!("; {hint}"));
    }
    (rule.kind.summary(&p.name, &p.leader, &p.follower, &format_human(value), &format_human(threshold)), measured)
}

/// A join's completeness: the value lowest named, how many of its records matched over the
/// window, the other values' level and its usual one.
fn describe_join(
    rule: &AlertRule,
    p: &crate::snapshot::PairSnapshot,
    j: &crate::join::JoinSnapshot,
    value: f64,
) -> (String, String) {
    let pct = |r: f64| ValueFormat::Percent.show(r);
    let lowest = j.lowest(rule.min_judged).and_then(|(_, v)| v);
    let subject = match lowest {
        Some(v) => format!("{} with {}={}", p.leader, v.segment, v.value),
        None => p.leader.clone(),
    };
    let w = lowest.map_or(&j.window, |v| &v.window);
    let mut measured = format!(
        "{subject}: {} of {} matched {} in the last {}",
        w.matched,
        w.matched + w.missing,
        p.follower,
        format_human(j.window_seconds)
    );
    if let Some(v) = lowest {
        let others: Vec<String> = j
            .values
            .iter()
            .filter(|o| o.segment == v.segment && o.value != v.value)
            .filter_map(|o| o.ratio.map(|r| format!("{}={} {}", o.segment, o.value, pct(r))))
            .collect();
        if !others.is_empty() {
            measured.push_str(&format!(", other values {}", others.join(", ")));
        }
    }
    if let Some(u) = lowest.map_or(j.usual, |v| v.usual) {
        measured.push_str(&format!(" (usually {})", pct(u)));
    }
    let summary = rule.kind.summary(&subject, &p.leader, &p.follower, &pct(value), &pct(rule.threshold));
    (summary, measured)
}

/// A connector rule: the connector named in the summary, the task, worker and error in
/// what was measured.
fn describe_connector(
    rule: &AlertRule,
    subject: &str,
    issue: Option<&ConnectorIssue>,
    connectors: &str,
) -> (String, String) {
    let connector = issue.map_or_else(|| "the connector".to_string(), |i| format!("connector {}", i.connector));
    let summary = rule.kind.summary(subject, "", "", &connector, "");
    let measured = match issue {
        Some(i) => i.describe(),
        None => format!("{} of {subject} ({connectors})", rule.kind.as_str()),
    };
    (summary, measured)
}

fn describe_stream(rule: &AlertRule, snap: &Snapshot, i: usize, value: f64) -> (String, String) {
    let threshold = rule.threshold;
    let s = &snap.streams[i];
    if rule.kind.connector_causes().is_some() {
        return describe_connector(rule, &s.name, s.connector.as_ref(), &s.connectors.join(", "));
    }
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
    let silent: Vec<String> =
        s.partitions.iter().filter(|p| p.gap_open_since_ms.is_some()).map(|p| p.partition.to_string()).collect();
    let holding = s
        .partitions
        .iter()
        .filter(|p| p.active && p.watermark_ms.is_some())
        .min_by_key(|p| p.watermark_ms)
        .map(|p| p.partition);
    let mut measured = format!("{} of {name} ({}): {}", rule.kind.as_str(), s.topic, shown(rule.kind, value));
    if !silent.is_empty() {
        measured.push_str(&format!("; silent partitions: {}", silent.join(", ")));
    }
    if let (AlertKind::FreshnessLag, Some(p)) = (rule.kind, holding) {
        measured.push_str(&format!("; oldest active partition: {p}"));
    }
    if let (AlertKind::SegmentSilence, Some(silent)) = (rule.kind, &s.segment_silent) {
        measured.push_str(&format!(" (longest silence of a segment value that used to flow); silent: {silent}"));
    }
    if let (AlertKind::VolumeAnomaly, Some(b)) = (rule.kind, s.baseline) {
        if let Some(band) = b.band {
            measured.push_str(&format!(
                " {} the expected {:.2} records/s ({}, from {} past hours); rate {}",
                if value < 0.0 { "below" } else { "above" },
                band.expected,
                band.slot.as_str(),
                band.samples,
                shown(AlertKind::RateLow, s.rate_records_per_second.unwrap_or(0.0)),
            ));
        }
    }
    if rule.kind == AlertKind::InvalidRatio {
        // why the records of a writer schema have no event time
        let problems: Vec<&str> = s.schemas.iter().filter_map(|x| x.problem.as_deref()).collect();
        if !problems.is_empty() {
            measured.push_str(&format!("; {}", problems.join("; ")));
        }
    }
    if let Some(hint) = &s.timezone_hint {
        measured.push_str(&format!("; {hint}"));
    }
    (summary, measured)
}

fn describe_consumer(rule: &AlertRule, snap: &Snapshot, c: usize, pair: Option<usize>, value: f64) -> (String, String) {
    let threshold = rule.threshold;
    let consumer = &snap.consumers[c];
    if rule.kind.connector_causes().is_some() {
        return describe_connector(
            rule,
            &consumer.name,
            consumer.connector.as_ref(),
            consumer.sink.as_deref().unwrap_or(""),
        );
    }
    let (leader, follower) = match pair {
        Some(pair) => (snap.pairs[pair].leader.as_str(), snap.pairs[pair].follower.as_str()),
        None => ("", ""),
    };
    // a stopped consumer is told by how long it has not committed
    let value = if rule.kind == AlertKind::ConsumerStopped { consumer.stalled_seconds } else { value };
    let summary = rule.kind.summary(&consumer.name, leader, follower, &format_human(value), "");
    let behind: Vec<String> = consumer
        .streams
        .iter()
        .filter_map(|s| {
            s.max_lag_seconds.map(|l| format!("{} {} ({} records)", s.stream, format_human(l), s.lag_records))
        })
        .collect();
    let what = match rule.kind {
        AlertKind::ConsumerStopped => format!("committed offsets unchanged for {}", format_human(value)),
        _ => format!("{} over {}", format_human(value), format_human(threshold)),
    };
    let measured = format!(
        "{} of {} (group {}): {what}; lag per stream: {}",
        rule.kind.as_str(),
        consumer.name,
        consumer.group,
        if behind.is_empty() { "unknown".to_string() } else { behind.join(", ") }
    );
    (summary, measured)
}

fn shown(kind: AlertKind, value: f64) -> String {
    kind.value_format().show(value)
}

/// The names a rule's target gives its alert as labels. A consumer's `group` and a
/// pair's `stream` (the side whose cause it carries) are known only while pipewatch
/// runs: the Prometheus rules, which pass `None`, take them from the series they read.
#[derive(Debug, Clone, Copy)]
pub enum TargetNames<'a> {
    Stream(&'a str),
    Pair {
        pair: &'a str,
        leader: &'a str,
        follower: &'a str,
        cause_stream: Option<&'a str>,
    },
    Consumer {
        consumer: &'a str,
        group: Option<&'a str>,
        pair: Option<(&'a str, &'a str, &'a str)>,
    },
    /// The Prometheus rules of a rule over discovered consumers: the series carry
    /// `consumer` and `group`.
    Discovered,
}

impl<'a> TargetNames<'a> {
    /// The target's labels, in the order alerts carry them.
    pub fn labels(&self) -> Vec<(&'static str, &'a str)> {
        match *self {
            TargetNames::Stream(stream) => vec![("stream", stream)],
            TargetNames::Pair { pair, leader, follower, cause_stream } => {
                let mut l = vec![("pair", pair), ("leader", leader), ("follower", follower)];
                l.extend(cause_stream.map(|s| ("stream", s)));
                l
            }
            TargetNames::Consumer { consumer, group, pair } => {
                let mut l = vec![("consumer", consumer)];
                l.extend(group.map(|g| ("group", g)));
                if let Some((pair, leader, follower)) = pair {
                    l.extend([("pair", pair), ("leader", leader), ("follower", follower)]);
                }
                l
            }
            TargetNames::Discovered => Vec::new(),
        }
    }
}

/// An alert's labels: `head` (pipewatch's own alerts: `alertname`, `cause`, `severity`;
/// the Prometheus rules: `severity`, Prometheus adds the rest), the target's, then the
/// rule's own (which never use a name pipewatch sets: the config check refuses them).
pub fn alert_labels<'a>(
    head: &[(&'static str, &'a str)],
    target: &TargetNames<'a>,
    own: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut labels: Vec<(&str, &str)> = head.to_vec();
    labels.extend(target.labels());
    for (k, v) in own {
        if !labels.iter().any(|(name, _)| name == k) {
            labels.push((k, v));
        }
    }
    labels
}

/// How a rule's value reads in human units, for pipewatch's alerts and the Prometheus
/// rules' templates alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// Seconds: `8h 02m`.
    Duration,
    RecordsPerSecond,
    /// A fraction: `25.0%`.
    Percent,
    /// How far from the expected rate, in band half-widths (either side).
    BandHalfWidths,
}

impl AlertKind {
    pub fn value_format(self) -> ValueFormat {
        match self {
            k if k.takes_duration() || k == AlertKind::ConsumerStopped => ValueFormat::Duration,
            AlertKind::InvalidRatio | AlertKind::JoinCompleteness => ValueFormat::Percent,
            AlertKind::VolumeAnomaly => ValueFormat::BandHalfWidths,
            _ => ValueFormat::RecordsPerSecond,
        }
    }
}

impl ValueFormat {
    /// A measured value.
    pub fn show(self, value: f64) -> String {
        match self {
            ValueFormat::Duration => format_human(value),
            ValueFormat::Percent => format!("{:.1}%", value * 100.0),
            ValueFormat::BandHalfWidths => format!("{:.1} band half-widths", value.abs()),
            ValueFormat::RecordsPerSecond => format!("{value:.2} records/s"),
        }
    }

    /// The same, as a Prometheus alert template of `$value`.
    pub fn template(self) -> &'static str {
        match self {
            ValueFormat::Duration => "{{ $value | humanizeDuration }}",
            ValueFormat::Percent => "{{ $value | humanizePercentage }}",
            ValueFormat::BandHalfWidths => "{{ $value | printf \"%.1f\" }} band half-widths",
            ValueFormat::RecordsPerSecond => "{{ $value | printf \"%.2f\" }} records/s",
        }
    }

    /// A configured threshold.
    pub fn threshold(self, threshold: f64) -> String {
        match self {
            ValueFormat::Duration => format_human(threshold),
            ValueFormat::Percent => format!("{}%", threshold * 100.0),
            ValueFormat::BandHalfWidths => format!("{threshold} band half-widths"),
            ValueFormat::RecordsPerSecond => format!("{threshold} records/s"),
        }
    }
}
