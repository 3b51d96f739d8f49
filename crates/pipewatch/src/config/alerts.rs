//! `[[alert]]`: the rules, their target (a stream, a pair, a consumer, or a consumer and a
//! pair), threshold and `clear` in the kind's unit, and their own labels.

use pipewatch_core::alert::{AlertKind, AlertRule, AlertTarget, TargetKind, DISCOVERED, RESERVED_LABELS};
use pipewatch_core::time::parse_duration;

use super::problems::Problems;
use super::raw::{RawAlert, RawConfig, RawThreshold};

/// One `[[alert]]`, validated; `None` when it has a problem (each is added to `p`).
pub(super) fn alert_rule(i: usize, a: &RawAlert, raw: &RawConfig, p: &mut Problems) -> Option<AlertRule> {
    let key = |f: &str| format!("alert[{i}].{f}");
    let before = p.0.len();
    if a.name.trim().is_empty() {
        p.add(key("name"), "must not be empty");
    } else if raw.alerts[..i].iter().any(|b| b.name == a.name) {
        p.add(key("name"), format!("duplicate alert name {:?}", a.name));
    }
    let Some(kind) = AlertKind::from_name(&a.kind) else {
        p.add(key("kind"), format!("{:?} is not one of {}", a.kind, AlertKind::NAMES.join(", ")));
        return None;
    };
    if a.pair.is_some() && kind != AlertKind::ConsumerSyncLag {
        p.add(key("pair"), "only consumer_sync_lag takes a pair (its target is a consumer)");
    }
    let target = alert_target(kind, a, raw, &key, p);
    let threshold = match (&a.threshold, kind.default_threshold()) {
        (Some(_), _) if kind.state_causes().is_some() => {
            p.add(key("threshold"), format!("{} takes no threshold: it fires while {}", a.kind, state_meaning(kind)));
            None
        }
        (Some(t), _) => threshold_value(kind, t, &key("threshold"), p),
        (None, Some(default)) => Some(default),
        (None, None) => {
            p.add(key("threshold"), format!("{} needs a threshold", a.kind));
            None
        }
    };
    if let (AlertKind::VolumeAnomaly, Some(AlertTarget::Stream(i))) = (kind, target) {
        if raw.streams[i].baseline.is_none() {
            p.add(
                key("kind"),
                format!(
                    "volume_anomaly needs a baseline on stream {:?} (stream.baseline = {{ history = \"14d\" }})",
                    a.target
                ),
            );
        }
    }
    let clear = match &a.clear {
        Some(_) if kind.state_causes().is_some() => {
            p.add(key("clear"), format!("{} takes no clear: it resolves when that ends", a.kind));
            None
        }
        Some(c) => threshold_value(kind, c, &key("clear"), p),
        None => threshold,
    };
    if let (Some(t), Some(c)) = (threshold, clear) {
        if kind.fires_above() && c > t {
            p.add(key("clear"), "must not be above threshold: the alert would resolve before it could fire");
        } else if !kind.fires_above() && c < t {
            p.add(
                key("clear"),
                "must not be below threshold for rate_low: the alert would resolve before it could fire",
            );
        }
    }
    let for_ms = p.duration(key("for"), &a.for_).as_millis() as i64;
    let severity = a.severity.clone().unwrap_or_else(|| kind.default_severity().to_string());
    if severity.trim().is_empty() {
        p.add(key("severity"), "must not be empty");
    }
    if a.impact.trim().is_empty() {
        p.add(key("impact"), "say what this fault costs the business: the person paged reads it first");
    }
    check_labels(a, &key, p);
    let min_judged = match (a.min_judged, kind) {
        (Some(_), k) if k != AlertKind::JoinCompleteness => {
            p.add(key("min_judged"), "only join_completeness takes min_judged");
            0
        }
        (n, _) => n.unwrap_or(if kind == AlertKind::JoinCompleteness { DEFAULT_MIN_JUDGED } else { 0 }),
    };
    if p.since(before) {
        return None;
    }
    Some(AlertRule {
        name: a.name.clone(),
        kind,
        target: target?,
        threshold: threshold?,
        clear: clear?,
        for_ms,
        severity,
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        impact: a.impact.trim().to_string(),
        min_judged,
    })
}

/// `join_completeness`: records judged over the window before a value's ratio may fire.
const DEFAULT_MIN_JUDGED: u64 = 20;

/// What a kind that fires on a cause fires on, for its config errors.
fn state_meaning(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::ConsumerStopped => {
            "the consumer is consumer_stopped (no commit for its max_stall while records wait)"
        }
        _ => "the connector is in that state",
    }
}

fn threshold_value(kind: AlertKind, t: &RawThreshold, key: &str, p: &mut Problems) -> Option<f64> {
    match (kind.takes_duration(), t) {
        (true, RawThreshold::Text(text)) => match parse_duration(text) {
            Ok(d) => Some(d.as_secs_f64()),
            Err(e) => {
                p.add(key, e);
                None
            }
        },
        (true, RawThreshold::Number(n)) => {
            p.add(key, format!("{n} has no unit; write a duration such as \"15m\""));
            None
        }
        (false, RawThreshold::Number(n)) if kind == AlertKind::InvalidRatio && !(0.0..=1.0).contains(n) => {
            p.add(key, format!("{n} is not a fraction between 0 and 1 (0.05 = 5% of records invalid)"));
            None
        }
        (false, RawThreshold::Number(n)) if kind == AlertKind::JoinCompleteness && !(0.0..=1.0).contains(n) => {
            p.add(
                key,
                format!("{n} is not a fraction between 0 and 1 (0.5: fires when under half of the records match)"),
            );
            None
        }
        (false, RawThreshold::Number(n)) if kind == AlertKind::VolumeAnomaly && !(n.is_finite() && *n > 0.0) => {
            p.add(key, format!("{n} is not a number of band half-widths greater than 0 (1 = the band's edge)"));
            None
        }
        (false, RawThreshold::Number(n)) if !n.is_finite() || *n < 0.0 => {
            p.add(key, format!("{n} is not a rate of records per second, 0 or more"));
            None
        }
        (false, RawThreshold::Number(n)) => Some(*n),
        (false, RawThreshold::Text(text)) => {
            p.add(key, format!("{text:?}: this kind takes a number, not a duration"));
            None
        }
    }
}

/// What the rule watches, by its kind: a consumer (with the pair for
/// `consumer_sync_lag`), a pair, or a stream.
fn alert_target(
    kind: AlertKind,
    a: &RawAlert,
    raw: &RawConfig,
    key: &dyn Fn(&str) -> String,
    p: &mut Problems,
) -> Option<AlertTarget> {
    let pair_index = |name: &str| raw.pairs.iter().position(|pr| pr.name == name);
    if kind.target_kind() == TargetKind::StreamOrConsumer {
        let stream = raw.streams.iter().position(|st| st.name == a.target).map(AlertTarget::Stream);
        let found = stream.or_else(|| raw.consumers.iter().position(|c| c.name == a.target).map(AlertTarget::Consumer));
        if found.is_none() {
            let known: Vec<&str> = raw
                .streams
                .iter()
                .map(|st| st.name.as_str())
                .chain(raw.consumers.iter().map(|c| c.name.as_str()))
                .collect();
            p.add(
                key("target"),
                format!(
                    "{} needs a stream (its source connector) or a consumer (its sink connector); none named {:?} (known: {})",
                    a.kind,
                    a.target,
                    known.join(", ")
                ),
            );
        }
        return found;
    }
    if kind.target_kind() == TargetKind::Consumer && a.target == DISCOVERED {
        if !kind.takes_discovered() {
            p.add(key("target"), format!("{} cannot target {DISCOVERED:?}: name a consumer", a.kind));
            return None;
        }
        if raw.discovery.as_ref().is_none_or(|d| d.groups.is_none()) && raw.connect.is_empty() {
            p.add(
                key("target"),
                format!("{DISCOVERED:?} needs consumers to discover: a [discovery] (or a [[connect]] cluster's sinks)"),
            );
            return None;
        }
        return Some(AlertTarget::Discovered);
    }
    if kind.target_kind() == TargetKind::Consumer {
        let found = raw.consumers.iter().position(|c| c.name == a.target);
        if found.is_none() {
            let known: Vec<&str> = raw.consumers.iter().map(|c| c.name.as_str()).collect();
            p.add(
                key("target"),
                format!(
                    "{} needs a consumer{}; no consumer named {:?} (known: {})",
                    a.kind,
                    if kind.takes_discovered() { " or \"discovered\"" } else { "" },
                    a.target,
                    known.join(", ")
                ),
            );
        }
        match (kind, found, &a.pair) {
            (AlertKind::ConsumerSyncLag, Some(consumer), Some(pair)) => match pair_index(pair) {
                Some(pi) => {
                    let c = &raw.consumers[consumer];
                    let pr = &raw.pairs[pi];
                    if c.streams.contains(&pr.leader) && c.streams.contains(&pr.follower) {
                        Some(AlertTarget::ConsumerPair { consumer, pair: pi })
                    } else {
                        p.add(
                            key("pair"),
                            format!("consumer {:?} does not read both {:?} and {:?}", c.name, pr.leader, pr.follower),
                        );
                        None
                    }
                }
                None => {
                    let known: Vec<&str> = raw.pairs.iter().map(|pr| pr.name.as_str()).collect();
                    p.add(key("pair"), format!("no pair named {pair:?} (known: {})", known.join(", ")));
                    None
                }
            },
            (AlertKind::ConsumerSyncLag, _, None) => {
                p.add(key("pair"), "consumer_sync_lag needs the pair whose sync lag the consumer sees");
                None
            }
            (_, found, _) => found.map(AlertTarget::Consumer),
        }
    } else if kind.target_kind() == TargetKind::Pair {
        let found = pair_index(&a.target);
        match found {
            None => {
                let known: Vec<&str> = raw.pairs.iter().map(|pr| pr.name.as_str()).collect();
                p.add(
                    key("target"),
                    format!("{} needs a pair; no pair named {:?} (known: {})", a.kind, a.target, known.join(", ")),
                );
            }
            Some(pi) if kind == AlertKind::JoinCompleteness && raw.pairs[pi].join.is_none() => {
                p.add(key("target"), format!("join_completeness needs a pair with a join; {:?} has none", a.target));
            }
            Some(_) => {}
        }
        found.map(AlertTarget::Pair)
    } else {
        let found = raw.streams.iter().position(|st| st.name == a.target).map(AlertTarget::Stream);
        if found.is_none() {
            let known: Vec<&str> = raw.streams.iter().map(|st| st.name.as_str()).collect();
            let hint = if raw.pairs.iter().any(|pr| pr.name == a.target) {
                " (a pair: only sync_lag and join_completeness target pairs)"
            } else {
                ""
            };
            p.add(key("target"), format!("no stream named {:?}{hint} (known: {})", a.target, known.join(", ")));
        }
        found
    }
}

/// The rule's own labels: Prometheus label names, none of those pipewatch sets.
fn check_labels(a: &RawAlert, key: &dyn Fn(&str) -> String, p: &mut Problems) {
    for name in a.labels.keys() {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            p.add(key(&format!("labels.{name}")), "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)");
        } else if RESERVED_LABELS.contains(&name.as_str()) {
            p.add(key(&format!("labels.{name}")), "is set by pipewatch");
        }
    }
}
