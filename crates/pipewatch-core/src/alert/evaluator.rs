//! The state machine of the rules (inactive → pending → firing → resolved, as
//! Prometheus does), evaluated on each [`Snapshot`] with the time passed in; what holds
//! a rule back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::diagnosis::{connect_unreachable, kafka_unreachable, AlertCause, Cause, ConsumerCause};
use crate::snapshot::{ConsumerPairSnapshot, KafkaStatus, Snapshot, StreamSnapshot};
use crate::time::Millis;

use super::rules::{target_name, AlertKind, AlertRule, AlertTarget, DISCOVERED};
use super::text::{connect_event, kafka_event, rule_event, AlertEvent, Transition};

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AlertState {
    Inactive,
    Pending { since_ms: Millis },
    Firing { since_ms: Millis },
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

impl RuleState {
    fn new() -> Self {
        RuleState { state: AlertState::Inactive, cause: Cause::Ok.into(), event: None }
    }
}

/// Evaluates the rules on each snapshot.
pub struct AlertEvaluator {
    rules: Vec<AlertRule>,
    states: Vec<RuleState>,
    /// Per rule, the instances of one that targets `discovered`: by consumer name.
    instances: Vec<BTreeMap<String, RuleState>>,
    kafka: RuleState,
    /// The built-in `ConnectUnreachable`, per `[[connect]]` cluster.
    connect: Vec<RuleState>,
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
        Self {
            states: rules.iter().map(|_| RuleState::new()).collect(),
            instances: rules.iter().map(|_| BTreeMap::new()).collect(),
            rules,
            kafka: RuleState::new(),
            connect: Vec::new(),
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

        self.connect.resize_with(snap.connect.len(), || RuleState {
            state: AlertState::Inactive,
            cause: AlertCause::ConnectUnreachable,
            event: None,
        });
        for (k, st) in snap.connect.iter().zip(&mut self.connect) {
            let down = k.status == KafkaStatus::Down;
            if let Some(e) = step(st, Some(down), 0, AlertCause::ConnectUnreachable, now, || connect_event(k, now)) {
                out.events.push(e);
            }
            if st.state != AlertState::Inactive {
                out.alerts.push(AlertStatus {
                    name: connect_unreachable::ALERT.into(),
                    kind: AlertKind::ConnectorFailed,
                    target: k.name.clone(),
                    severity: connect_unreachable::SEVERITY.into(),
                    state: st.state,
                    cause: AlertCause::ConnectUnreachable,
                    value: None,
                    threshold: 0.0,
                    clear: 0.0,
                    held_back: None,
                    event: st.event.clone(),
                });
            }
        }

        let invalid = &self.invalid_window;
        for ((rule, st), instances) in self.rules.iter().zip(&mut self.states).zip(&mut self.instances) {
            if rule.target != AlertTarget::Discovered {
                evaluate_rule(rule, rule.target, st, snap, invalid, now, &mut out);
                continue;
            }
            // one instance per discovered consumer
            let mut seen = BTreeSet::new();
            for (c, consumer) in snap.consumers.iter().enumerate().filter(|(_, c)| c.discovered) {
                let st = instances.entry(consumer.name.clone()).or_insert_with(RuleState::new);
                evaluate_rule(rule, AlertTarget::Consumer(c), st, snap, invalid, now, &mut out);
                seen.insert(consumer.name.as_str());
            }
            // a consumer forgotten (or now configured): its firing instance resolves
            instances.retain(|name, st| {
                let kept = seen.contains(name.as_str());
                if !kept {
                    out.events.extend(resolve(st, now));
                }
                kept
            });
            if instances.is_empty() {
                out.alerts.push(AlertStatus {
                    name: rule.name.clone(),
                    kind: rule.kind,
                    target: DISCOVERED.into(),
                    severity: rule.severity.clone(),
                    state: AlertState::Inactive,
                    cause: Cause::Ok.into(),
                    value: None,
                    threshold: rule.threshold,
                    clear: rule.clear,
                    held_back: None,
                    event: None,
                });
            }
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

/// One rule (or one instance of a rule over discovered consumers) on `snap`: its
/// transition into `out.events`, its state into `out.alerts`.
fn evaluate_rule(
    rule: &AlertRule,
    target: AlertTarget,
    st: &mut RuleState,
    snap: &Snapshot,
    invalid_window: &[VecDeque<(Millis, u64, u64)>],
    now: Millis,
    out: &mut Evaluation,
) {
    let (value, cause, held) = measure(rule, target, snap, invalid_window);
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
        let make = || rule_event(rule, target, snap, value.unwrap_or(0.0), cause, now);
        if let Some(e) = step(st, condition, rule.for_ms, cause, now, make) {
            out.events.push(e);
        }
    }
    out.alerts.push(AlertStatus {
        name: rule.name.clone(),
        kind: rule.kind,
        target: target_name(target, snap).to_string(),
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

/// Advances one rule's state; returns its transition, if any.
fn step(
    st: &mut RuleState,
    condition: Option<bool>,
    for_ms: Millis,
    cause: AlertCause,
    now: Millis,
    make: impl FnOnce() -> AlertEvent,
) -> Option<AlertEvent> {
    let active = condition?;
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
        (AlertState::Firing { .. }, false) => resolve(st, now),
        _ => None,
    }
}

/// Back to inactive; the resolve of the alert, if it fired.
fn resolve(st: &mut RuleState, now: Millis) -> Option<AlertEvent> {
    st.state = AlertState::Inactive;
    let mut e = st.event.take()?;
    e.transition = Transition::Resolved;
    e.ends_at_ms = Some(now);
    Some(e)
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
    if rule.kind.state_causes().is_some() {
        // 1 while the target is in the cause, 0 otherwise
        return value > 0.0;
    }
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

/// The consumer's view of a configured pair.
fn consumer_pair(snap: &Snapshot, consumer: usize, pair: usize) -> Option<&ConsumerPairSnapshot> {
    let name = &snap.pairs.get(pair)?.name;
    snap.consumers.get(consumer)?.pairs.iter().find(|p| p.pair == *name)
}

/// The rule's value, its target's cause, and why it is held back (if it is).
fn measure(
    rule: &AlertRule,
    target: AlertTarget,
    snap: &Snapshot,
    invalid_window: &[VecDeque<(Millis, u64, u64)>],
) -> (Option<f64>, AlertCause, Option<AlertCause>) {
    let sides: Vec<&StreamSnapshot> = match target {
        AlertTarget::Stream(i) => vec![&snap.streams[i]],
        AlertTarget::Pair(i) => {
            let p = &snap.pairs[i];
            snap.streams.iter().filter(|s| s.name == p.leader || s.name == p.follower).collect()
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            let read: Vec<&str> = snap.consumers[c].streams.iter().map(|s| s.stream.as_str()).collect();
            snap.streams.iter().filter(|s| read.contains(&s.name.as_str())).collect()
        }
        AlertTarget::Discovered => unreachable!("a rule over discovered consumers is measured per consumer"),
    };
    let cause: AlertCause = match target {
        AlertTarget::Stream(i) => snap.streams[i].cause.into(),
        AlertTarget::Pair(i) => snap.pairs[i].cause.into(),
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => snap.consumers[c].cause.into(),
        AlertTarget::Discovered => unreachable!("a rule over discovered consumers is measured per consumer"),
    };
    let connector_unknown = match target {
        AlertTarget::Stream(i) => snap.streams[i].connector_unknown.is_some(),
        AlertTarget::Consumer(c) => snap.consumers[c].connector_unknown.is_some(),
        _ => false,
    };
    let held = if snap.kafka == KafkaStatus::Down {
        Some(Cause::KafkaUnreachable.into())
    } else if rule.kind.connector_causes().is_some() && connector_unknown {
        // its Connect cluster does not answer: the connector's state is not known
        Some(AlertCause::ConnectUnreachable)
    } else if cause == AlertCause::Consumer(ConsumerCause::UpstreamFault) {
        // The stream's own rules page for the upstream fault: one root cause.
        Some(cause)
    } else {
        sides.iter().map(|s| s.cause).find(|c| rule.kind.held_by(*c)).map(AlertCause::from)
    };
    let value = match (rule.kind, target) {
        (AlertKind::SyncLag, AlertTarget::Pair(i)) => snap.pairs[i].sync_lag_seconds,
        (AlertKind::JoinCompleteness, AlertTarget::Pair(i)) => {
            snap.pairs[i].join.as_ref().and_then(|j| j.lowest(rule.min_judged)).map(|(r, _)| r)
        }
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
        _ => rule.kind.state_causes().map(|(stream, consumer)| {
            // 1 while the target (a stream or a consumer) is in the kind's cause
            let on = stream.is_some_and(|s| cause == AlertCause::Stream(s)) || cause == AlertCause::Consumer(consumer);
            if on {
                1.0
            } else {
                0.0
            }
        }),
    };
    (value, cause, held)
}
