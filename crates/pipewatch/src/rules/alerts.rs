//! The alerting rules: the built-in `KafkaUnreachable` and `PipewatchDown`, and each
//! `[[alert]]` with the same threshold, `clear` (through the `ALERTS` series), `for`,
//! labels, summary and what holds it back as pipewatch's own evaluator.

use pipewatch_core::alert::text::{alert_labels, TargetNames};
use pipewatch_core::alert::{AlertKind, AlertRule, AlertTarget};
use pipewatch_core::diagnosis::{connect_unreachable, kafka_unreachable, ConsumerCause};
use pipewatch_core::Cause;

use super::causes::band_sum;
use super::*;

/// A replica that Prometheus cannot scrape any more (one that answered within the hour).
pub const PIPEWATCH_DOWN: &str = "PipewatchDown";
const PIPEWATCH_DOWN_IMPACT: &str =
    "Faults in the pipeline may go unnoticed: freshness, completeness and sync of the partitions this replica watched are not measured.";

/// The `pipewatch-alerts` group.
pub(super) fn alerting_rules(out: &mut String, config: &Config) {
    out.push_str("  - name: pipewatch-alerts\n    rules:\n");
    let down = &format!("(max by (job) ({KAFKA_UP}) == 0)");
    alert(
        out,
        kafka_unreachable::ALERT,
        down,
        0,
        &[("severity", kafka_unreachable::SEVERITY), ("cause", Cause::KafkaUnreachable.as_str())],
        &[
            ("summary", kafka_unreachable::SUMMARY),
            ("description", &kafka_unreachable::DESCRIPTION.replace("{when}", "({{ $labels.job }})")),
            ("impact", kafka_unreachable::IMPACT),
        ],
    );
    alert(
        out,
        PIPEWATCH_DOWN,
        &format!("(up == 0) and on (job, instance) (max_over_time({BUILD_INFO}[1h]) == 1)"),
        60_000,
        &[("severity", "page"), ("cause", "pipewatch_down")],
        &[
            ("summary", "pipewatch {{ $labels.instance }} does not answer Prometheus"),
            (
                "description",
                "the scrape of {{ $labels.instance }} ({{ $labels.job }}) fails; the partitions it watched are unwatched until another replica takes them over",
            ),
            ("impact", PIPEWATCH_DOWN_IMPACT),
        ],
    );
    if !config.connect.is_empty() {
        // a replica that reaches the API is enough to know the connectors
        let description = connect_unreachable::DESCRIPTION.replace(
            "GET {url}/connectors fails {when}: {error}",
            "no replica of {{ $labels.job }} reaches its REST API",
        );
        alert(
            out,
            connect_unreachable::ALERT,
            &format!("max by (job, connect) ({CONNECT_UP}) == 0"),
            0,
            &[("severity", connect_unreachable::SEVERITY), ("cause", connect_unreachable::CAUSE)],
            &[
                ("summary", &connect_unreachable::SUMMARY.replace("{connect}", "{{ $labels.connect }}")),
                ("description", &description),
                ("impact", connect_unreachable::IMPACT),
            ],
        );
    }
    for rule in &config.alerts {
        alert_rule(out, config, rule, down);
    }
}

fn alert_rule(out: &mut String, config: &Config, rule: &AlertRule, down: &str) {
    let expr = alert_expr(config, rule, down);
    let names = target_names(config, rule);
    let labels = alert_labels(&[("severity", &rule.severity)], &names, &rule.labels);
    let (summary, description) = alert_text(config, rule);
    alert(
        out,
        &rule.name,
        &expr,
        rule.for_ms,
        &labels,
        &[("summary", &summary), ("description", &description), ("impact", &rule.impact)],
    );
}

/// When the rule fires: its series past the threshold (past `clear` while it fires), joined
/// with its target's cause, unless what holds it back holds.
fn alert_expr(config: &Config, rule: &AlertRule, down: &str) -> String {
    // the selector of the consumer the rule names (none: every discovered one), in `cause`
    let consumer = |cause: Option<ConsumerCause>| {
        let mut labels = Vec::new();
        if let AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } = rule.target {
            labels.push(format!("consumer={}", quote(&config.consumers[c].name)));
        }
        labels.extend(cause.map(|k| format!("cause=\"{}\"", k.as_str())));
        if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(", "))
        }
    };
    let discovered = rule.target == AlertTarget::Discovered;
    let only_discovered =
        format!("\nand on (job, consumer) (max by (job, consumer) ({C_CAUSE}{{discovered=\"true\"}}))");
    if rule.kind == AlertKind::ConsumerStopped {
        // how long it has not committed, while its cause across replicas is consumer_stopped
        let mut expr = format!(
            "max by (job, consumer, group) ({C_STALLED}{})\n* on (job, consumer) group_left (cause) {CONSUMER_CAUSE}{}",
            consumer(None),
            consumer(Some(ConsumerCause::ConsumerStopped))
        );
        if discovered {
            expr.push_str(&only_discovered);
        }
        expr.push_str(&format!("\nunless on (job) {down}"));
        return expr;
    }
    if let Some((stream_cause, consumer_cause)) = rule.kind.connector_causes() {
        // the target's cause across replicas (every replica polls the same Connect)
        let series = match rule.target {
            AlertTarget::Stream(i) => {
                format!(
                    "{STREAM_CAUSE}{{stream={}, cause=\"{}\"}}",
                    quote(&config.streams[i].name),
                    stream_cause.as_str()
                )
            }
            AlertTarget::Consumer(c) => format!(
                "{CONSUMER_CAUSE}{{consumer={}, cause=\"{}\"}}",
                quote(&config.consumers[c].name),
                consumer_cause.as_str()
            ),
            _ => unreachable!("the config check gives a connector rule a stream or a consumer"),
        };
        return format!("{series} == 1\nunless on (job) {down}");
    }
    let (metric, selector, cause_metric, cause_selector, joined) = match rule.target {
        AlertTarget::Stream(i) => {
            let sel = format!("{{stream={}}}", quote(&config.streams[i].name));
            let metric = match rule.kind {
                AlertKind::FreshnessLag => STREAM_FRESHNESS,
                AlertKind::Silence => STREAM_SILENCE,
                AlertKind::RateLow | AlertKind::RateHigh => STREAM_RATE,
                AlertKind::InvalidRatio => STREAM_INVALID_RATIO,
                AlertKind::VolumeAnomaly => STREAM_ANOMALY_SCORE,
                AlertKind::SegmentSilence => SEGMENT_SILENCE,
                _ => SYNC_LAG,
            };
            (metric, sel.clone(), STREAM_CAUSE, sel, "cause")
        }
        AlertTarget::Pair(i) => {
            let sel = format!("{{pair={}}}", quote(&config.pairs[i].name));
            (SYNC_LAG, sel.clone(), PAIR_CAUSE, sel, "cause, stream")
        }
        AlertTarget::Consumer(c) => {
            let sel = format!("{{consumer={}}}", quote(&config.consumers[c].name));
            (CONSUMER_LAG, sel.clone(), CONSUMER_CAUSE, sel, "cause")
        }
        AlertTarget::ConsumerPair { consumer, pair } => {
            let name = quote(&config.consumers[consumer].name);
            let sel = format!("{{consumer={name}, pair={}}}", quote(&config.pairs[pair].name));
            (CONSUMER_SYNC_LAG, sel, CONSUMER_CAUSE, format!("{{consumer={name}}}"), "cause")
        }
        AlertTarget::Discovered => (CONSUMER_LAG, String::new(), CONSUMER_CAUSE, String::new(), "cause"),
    };
    // one alert per consumer: a firing instance keeps only itself above `clear`
    let on = if discovered { "job, consumer" } else { "job" };
    let op = if !rule.kind.fires_above() { "<" } else { ">" };
    let series = match rule.kind {
        // either side of the expected rate
        AlertKind::VolumeAnomaly => format!("abs({metric}{selector})"),
        // the lowest value judged at least min_judged times (its segment and value kept)
        AlertKind::JoinCompleteness => format!(
            "bottomk by (job, pair) (1, {JOIN_COMPLETENESS}{selector} and on (job, pair, segment, value) ({JOIN_JUDGED}{selector} >= {}))",
            rule.min_judged.max(1)
        ),
        _ => format!("{metric}{selector}"),
    };
    let mut expr = format!("{series} {op} {}", rule.threshold);
    if rule.clear != rule.threshold {
        expr = format!(
            "{expr}\nor\n({series} {op} {} and on ({on}) ALERTS{{alertname={}, alertstate=\"firing\"}})",
            rule.clear,
            quote(&rule.name)
        );
    }
    let mut expr =
        format!("(\n{}\n)\n* on ({on}) group_left ({joined}) {cause_metric}{cause_selector}", indent(&expr, 2));
    if discovered {
        expr.push_str(&only_discovered);
    }
    if matches!(rule.target, AlertTarget::Consumer(_) | AlertTarget::ConsumerPair { .. } | AlertTarget::Discovered) {
        // The stream's own rules page for an upstream fault.
        let upstream = consumer(Some(ConsumerCause::UpstreamFault));
        expr.push_str(&format!("\nunless on ({on}) {CONSUMER_CAUSE}{upstream}"));
    }
    // What holds the rule back while a stream it reads is in one of these causes (the
    // evaluator asks the same of the same streams).
    let holding: Vec<&str> = Cause::ALL.iter().filter(|c| rule.kind.held_by(**c)).map(|c| c.as_str()).collect();
    if !holding.is_empty() {
        let read: Vec<&str> = match rule.target {
            AlertTarget::Stream(i) => vec![&config.streams[i].name],
            AlertTarget::Pair(i) => {
                let p = &config.pairs[i];
                vec![&config.streams[p.leader].name, &config.streams[p.follower].name]
            }
            AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
                config.consumers[c].streams.iter().map(|&s| config.streams[s].name.as_str()).collect()
            }
            AlertTarget::Discovered => {
                // the streams each consumer reads, from its series
                expr.push_str(&format!(
                    "\nunless on (job, consumer) (\n  max by (job, consumer, stream) ({C_STREAM_LAG})\n    \
                     and on (job, stream) {STREAM_CAUSE}{{cause=~\"{}\"}}\n)",
                    holding.join("|")
                ));
                expr.push_str(&format!("\nunless on (job) {down}"));
                return expr;
            }
        };
        let streams = match read.as_slice() {
            [one] => format!("stream={}", quote(one)),
            many => format!("stream=~{}", quote(&many.iter().map(|s| regex_escape(s)).collect::<Vec<_>>().join("|"))),
        };
        expr.push_str(&format!("\nunless on (job) {STREAM_CAUSE}{{cause=~\"{}\", {streams}}}", holding.join("|")));
    }
    expr.push_str(&format!("\nunless on (job) {down}"));
    expr
}

/// The names of the rule's target, as its labels carry them.
fn target_names<'a>(config: &'a Config, rule: &AlertRule) -> TargetNames<'a> {
    match rule.target {
        AlertTarget::Stream(i) => TargetNames::Stream(&config.streams[i].name),
        AlertTarget::Pair(i) => {
            let p = &config.pairs[i];
            let (leader, follower) = (&config.streams[p.leader].name, &config.streams[p.follower].name);
            TargetNames::Pair { pair: &p.name, leader, follower, cause_stream: None }
        }
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => {
            let pair = match rule.target {
                AlertTarget::ConsumerPair { pair, .. } => {
                    let p = &config.pairs[pair];
                    Some((
                        p.name.as_str(),
                        config.streams[p.leader].name.as_str(),
                        config.streams[p.follower].name.as_str(),
                    ))
                }
                _ => None,
            };
            TargetNames::Consumer { consumer: &config.consumers[c].name, group: None, pair }
        }
        AlertTarget::Discovered => TargetNames::Discovered,
    }
}

/// The summary (pipewatch's own sentence, the values as Prometheus templates) and the
/// description.
fn alert_text(config: &Config, rule: &AlertRule) -> (String, String) {
    let target = match rule.target {
        AlertTarget::Stream(i) => config.streams[i].name.clone(),
        AlertTarget::Consumer(c) | AlertTarget::ConsumerPair { consumer: c, .. } => config.consumers[c].name.clone(),
        AlertTarget::Pair(_) => String::new(),
        AlertTarget::Discovered => "{{ $labels.consumer }}".into(),
    };
    let format = rule.kind.value_format();
    let value = format.template();
    if rule.kind.connector_causes().is_some() {
        let summary = rule.kind.summary(&target, "", "", "the connector", "");
        let description = format!(
            "{}: see pipewatch's status for the connector, task, worker and error; cause: {{{{ $labels.cause }}}} (Prometheus rules over {{{{ $labels.job }}}})",
            rule.kind.as_str().replace('_', " ")
        );
        return (summary, description);
    }
    let summary = match rule.kind {
        AlertKind::SegmentSilence => {
            rule.kind.summary(&format!("{target} {{{{ $labels.segment }}}}={{{{ $labels.value }}}}"), "", "", value, "")
        }
        // the leader's records of the lowest value, as pipewatch names them
        AlertKind::JoinCompleteness => {
            // the names from the config: the rule's own labels are not the series'
            let AlertTarget::Pair(i) = rule.target else { unreachable!("the config check gives it a pair") };
            let (leader, follower) =
                (&config.streams[config.pairs[i].leader].name, &config.streams[config.pairs[i].follower].name);
            let subject =
                format!("{leader}{{{{ if $labels.segment }}}} with {{{{ $labels.segment }}}}={{{{ $labels.value }}}}{{{{ end }}}}");
            rule.kind.summary(&subject, leader, follower, value, &format.threshold(rule.threshold))
        }
        // the same sentence as pipewatch's: the rate and the band, asked of Prometheus
        AlertKind::VolumeAnomaly => rule.kind.summary(
            &target,
            "",
            "",
            &format!("{} records/s", queried(&format!("{STREAM_RATE}{{stream={}}}", quote(&target)))),
            &format!("{}–{} records/s", queried(&band_sum(&target, "lower")), queried(&band_sum(&target, "upper"))),
        ),
        _ => rule.kind.summary(
            &target,
            "{{ $labels.leader }}",
            "{{ $labels.follower }}",
            value,
            &rule.threshold.to_string(),
        ),
    };
    if rule.kind == AlertKind::ConsumerStopped {
        let description = format!(
            "consumer stopped: committed offsets of group {{{{ $labels.group }}}} unchanged for {value} while records wait; cause: {{{{ $labels.cause }}}} (Prometheus rules over {{{{ $labels.job }}}})"
        );
        return (summary, description);
    }
    let threshold = format.threshold(rule.threshold);
    let description = format!(
        "{} {value} ({} {threshold}); cause: {{{{ $labels.cause }}}} (Prometheus rules over the per-partition series of {{{{ $labels.job }}}})",
        rule.kind.as_str().replace('_', " "),
        if rule.kind.fires_above() { "over" } else { "under" },
    );
    (summary, description)
}
