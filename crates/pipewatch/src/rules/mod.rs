//! `pipewatch rules`: the Prometheus recording and alerting rules for a config.
//!
//! With several replicas in one consumer group each exports only its partitions'
//! series, so the stream and pair figures are recomputed by Prometheus from the
//! per-partition series, following the monitor's own definitions (`by (job, stream)`:
//! a `job` is one pipewatch deployment, whatever its replica count):
//!
//! - stream watermark: min of the active partitions' watermarks (a record read within
//!   `idle_partition_timeout`), the max of all when every partition is idle;
//! - freshness lag: now − stream watermark; silence: min of the replicas' silences;
//! - rate: records written per second (broker log ends) over `rate_window`;
//! - sync lag: leader watermark − follower watermark;
//! - cause: the first of the diagnosis order that holds across replicas, built from the
//!   diagnosis table itself (`pipewatch_core::diagnosis::ORDER`): each cause holds when
//!   any replica reports it, or only when every replica does (`no_data`;
//!   `producer_silent`, else some partitions flow: `partition_stalled`), or from the
//!   summed rate (the volume causes; `volume_anomaly` against the replicas' bands summed,
//!   only when every replica holding partitions has one), or a segment value silent at
//!   every replica that has read it (`segment_silent`);
//! - pair cause: the cause of the side that is behind (the follower's when the sync lag
//!   is positive), the other side's when that one is `ok`;
//! - join completeness: matched / (matched + missing) over the join's window, from the
//!   replicas' counters summed (never an average of their ratios).
//!
//! At `[metrics] granularity = "stream"` there are no per-partition series: the stream
//! watermark is the min of the replicas' stream watermarks over the replicas with an
//! active partition of the stream (the max of all when none has), which is the same min
//! over the same active partitions; the rate is the sum of the replicas' rates; the
//! consumer watermark follows the stream watermark's rule.
//!
//! The alerting rules mirror `[[alert]]`: same threshold, `clear` (hysteresis via the
//! `ALERTS` series), `for`, severity, labels, impact, and the target's cause as a label;
//! lag rules wait while their streams have no data or catch up, and every rule waits
//! while `KafkaUnreachable` fires.

use std::fmt::Write as _;

use crate::config::{Config, Granularity};
use crate::metrics::names;

mod alerts;
mod causes;

pub use alerts::PIPEWATCH_DOWN;
use causes::{anomaly_score_expr, cause_expr, consumer_cause_expr, pair_cause_expr};

/// The series of `/metrics` the rules read, named where `/metrics` declares them.
const P_WATERMARK: &str = names::PARTITION_WATERMARK_TIMESTAMP_SECONDS.name;
const P_LAST_RECORD: &str = names::PARTITION_LAST_RECORD_TIMESTAMP_SECONDS.name;
const P_LOG_END: &str = names::PARTITION_LOG_END_OFFSET.name;
const RECORDS: &str = names::RECORDS_TOTAL.name;
const RECORDS_INVALID: &str = names::RECORDS_INVALID_TOTAL.name;
const S_PARTITIONS: &str = names::STREAM_PARTITIONS.name;
const S_ACTIVE: &str = names::STREAM_ACTIVE_PARTITIONS.name;
const S_WATERMARK: &str = names::STREAM_WATERMARK_TIMESTAMP_SECONDS.name;
const S_SILENCE: &str = names::STREAM_SILENCE_SECONDS.name;
const S_RATE: &str = names::STREAM_RATE_RECORDS_PER_SECOND.name;
/// Each replica's band for its partitions (`bound` = lower, expected, upper).
const RATE_EXPECTED: &str = names::STREAM_RATE_EXPECTED_RECORDS_PER_SECOND.name;
const S_CAUSE: &str = names::STREAM_CAUSE.name;
const SEG_SILENCE: &str = names::SEGMENT_SILENCE_SECONDS.name;
const SEG_USED_TO_FLOW: &str = names::SEGMENT_USED_TO_FLOW.name;
const C_P_WATERMARK: &str = names::CONSUMER_PARTITION_WATERMARK_TIMESTAMP_SECONDS.name;
const C_STREAM_LAG: &str = names::CONSUMER_STREAM_LAG_SECONDS.name;
const C_WATERMARK: &str = names::CONSUMER_WATERMARK_TIMESTAMP_SECONDS.name;
const C_CAUSE: &str = names::CONSUMER_CAUSE.name;
const C_STALLED: &str = names::CONSUMER_STALLED_SECONDS.name;
const KAFKA_UP: &str = names::KAFKA_UP.name;
const CONNECT_UP: &str = names::CONNECT_UP.name;
const BUILD_INFO: &str = names::BUILD_INFO.name;
const JOIN_RECORDS: &str = names::JOIN_RECORDS_TOTAL.name;

/// Stream figures across replicas.
pub const STREAM_WATERMARK: &str = "pipewatch:stream_watermark_timestamp_seconds";
pub const STREAM_FRESHNESS: &str = "pipewatch:stream_freshness_lag_seconds";
pub const STREAM_SILENCE: &str = "pipewatch:stream_silence_seconds";
pub const STREAM_RATE: &str = "pipewatch:stream_rate_records_per_second";
pub const STREAM_INVALID_RATIO: &str = "pipewatch:stream_invalid_ratio";
pub const STREAM_CAUSE: &str = "pipewatch:stream_cause";
/// Where the stream's rate stands in its band, summed over replicas (streams with a
/// baseline): 0 at the expected rate, ±1 at the band's edges.
pub const STREAM_ANOMALY_SCORE: &str = "pipewatch:stream_rate_anomaly_score";
/// The silence of each segment value that used to flow, at the replica that heard it
/// last (streams with segments).
pub const SEGMENT_SILENCE: &str = "pipewatch:segment_silence_seconds";
pub const SYNC_LAG: &str = "pipewatch:sync_lag_seconds";
pub const PAIR_CAUSE: &str = "pipewatch:pair_cause";
/// A join's completeness across replicas, per segment value and overall (pairs with a `join`).
pub const JOIN_COMPLETENESS: &str = "pipewatch:join_completeness_ratio";
/// The leader records a join judged (matched or missing) over its window, across replicas.
pub const JOIN_JUDGED: &str = "pipewatch:join_judged_records";
/// Consumer figures across replicas (always emitted: consumers may be found while running).
pub const CONSUMER_LAG: &str = "pipewatch:consumer_lag_seconds";
pub const CONSUMER_WATERMARK: &str = "pipewatch:consumer_watermark_timestamp_seconds";
pub const CONSUMER_SYNC_LAG: &str = "pipewatch:consumer_sync_lag_seconds";
pub const CONSUMER_CAUSE: &str = "pipewatch:consumer_cause";

/// The same rules as a prometheus-operator `PrometheusRule` object (Kubernetes).
pub fn render_prometheus_rule(config: &Config, source: &str) -> String {
    let rules = render(config, source);
    let (header, groups): (Vec<&str>, Vec<&str>) = rules.lines().partition(|l| l.starts_with('#'));
    let mut out = header.join("\n");
    out.push_str(
        "\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: pipewatch\n  labels:\n    \
         app.kubernetes.io/name: pipewatch\nspec:\n",
    );
    out.push_str(&indent(&groups.join("\n"), 2));
    out.push('\n');
    out
}

/// Renders the rules file (YAML) for `config`; `source` names the config in its header.
pub fn render(config: &Config, source: &str) -> String {
    let mut out = String::new();
    let per = match config.granularity {
        Granularity::Partition => "per-partition series",
        Granularity::Stream => "replicas' stream series\n# (metrics.granularity = \"stream\")",
    };
    let _ = writeln!(
        out,
        "# Prometheus rules for pipewatch, generated by `pipewatch rules --config {source}`.\n\
         # Regenerate them when the config changes; do not edit by hand.\n\
         # They compute stream and pair figures from the {per}, so they are\n\
         # right when several replicas in one consumer group each export some partitions."
    );
    out.push_str("groups:\n  - name: pipewatch-recording\n    rules:\n");
    stream_records(&mut out, config);
    pair_records(&mut out, config);
    consumer_records(&mut out, config);
    alerts::alerting_rules(&mut out, config);
    out
}

/// The streams' figures across replicas: watermark, freshness, silence, rate, invalid
/// ratio, segment silence, cause, and each baseline's anomaly score.
fn stream_records(out: &mut String, config: &Config) {
    let idle = seconds(config.settings.idle_partition_timeout_ms);
    let window = duration(config.settings.rate_window_ms);
    let watermark = match config.granularity {
        Granularity::Partition => low_watermark_of_partitions("job, stream", P_WATERMARK, &idle),
        Granularity::Stream => low_watermark_of_replicas("job, stream", S_WATERMARK),
    };
    record(
        out,
        "Stream watermark: min of the active partitions' watermarks (a record read within\n\
         idle_partition_timeout), the max of all partitions' when every partition is idle.",
        STREAM_WATERMARK,
        &watermark,
        &[],
    );
    record(
        out,
        "Freshness lag: now - stream watermark.",
        STREAM_FRESHNESS,
        &format!("time() - {STREAM_WATERMARK}"),
        &[],
    );
    record(
        out,
        "Silence: time since the log end of any of the stream's partitions advanced.",
        STREAM_SILENCE,
        &format!("min by (job, stream) ({S_SILENCE})"),
        &[],
    );
    let rate = match config.granularity {
        Granularity::Partition => format!("sum by (job, stream) (rate({P_LOG_END}[{window}]))"),
        Granularity::Stream => format!("sum by (job, stream) ({S_RATE})"),
    };
    record(out, "Rate: records written per second (broker log ends) over the rate window.", STREAM_RATE, &rate, &[]);
    record(
        out,
        "Share of the records read over the rate window whose event time could not be used.",
        STREAM_INVALID_RATIO,
        &format!(
            "sum by (job, stream) (increase({RECORDS_INVALID}[{window}]))\n/\n\
             (sum by (job, stream) (increase({RECORDS}[{window}])) > 0)"
        ),
        &[],
    );
    // before the cause, which reads it
    if config.streams.iter().any(|s| s.has_segments()) {
        record(
            out,
            "Segment silence: the time since any replica read a record of the segment value, for values\n\
             that used to flow on some replica (their silence is judged).",
            SEGMENT_SILENCE,
            &format!(
                "min by (job, stream, segment, value) ({SEG_SILENCE})\n  \
                 and on (job, stream, segment, value)\n\
                 (max by (job, stream, segment, value) ({SEG_USED_TO_FLOW}) == 1)"
            ),
            &[],
        );
    }
    record(
        out,
        "Cause: the first of the diagnosis order that holds across replicas (value 1).",
        STREAM_CAUSE,
        &cause_expr(config),
        &[],
    );
    for s in config.streams.iter().filter(|s| s.baseline.is_some()) {
        record(
            out,
            &format!(
                "Where the rate of {} stands in its band (the replicas' bands summed): 0 at the expected\n\
                 rate, +-1 at the band's edges, negative below.",
                s.name
            ),
            STREAM_ANOMALY_SCORE,
            &anomaly_score_expr(&s.name),
            &[],
        );
    }
}

/// Each pair's sync lag and cause across replicas.
fn pair_records(out: &mut String, config: &Config) {
    for pair in &config.pairs {
        let (leader, follower) = (&config.streams[pair.leader].name, &config.streams[pair.follower].name);
        let labels = [("pair", pair.name.as_str()), ("leader", leader.as_str()), ("follower", follower.as_str())];
        record(
            out,
            &format!("Sync lag of pair {}: leader watermark - follower watermark.", pair.name),
            SYNC_LAG,
            &format!(
                "max by (job) ({STREAM_WATERMARK}{{stream={}}})\n- on (job)\nmax by (job) ({STREAM_WATERMARK}{{stream={}}})",
                quote(leader),
                quote(follower)
            ),
            &labels,
        );
        if let Some(j) = &pair.join {
            let window = duration(j.window_ms);
            let by = "job, pair, segment, value";
            let sel =
                |outcome: &str| format!("{JOIN_RECORDS}{{pair={},outcome=~{}}}", quote(&pair.name), quote(outcome));
            record(
                out,
                &format!(
                    "Leader records of pair {} its join judged (matched or missing) over its window, the\n\
                     replicas' counters summed; per segment value, and without segment and value for all.",
                    pair.name
                ),
                JOIN_JUDGED,
                &format!("sum by ({by}) (increase({}[{window}]))", sel("matched|missing")),
                &[],
            );
            record(
                out,
                &format!(
                    "Join completeness of pair {}: its leader's records matched / judged over the join's\n\
                     window, from the replicas' counters summed (never an average of their ratios).",
                    pair.name
                ),
                JOIN_COMPLETENESS,
                &format!(
                    "sum by ({by}) (increase({}[{window}]))\n/\n({JOIN_JUDGED}{{pair={}}} > 0)",
                    sel("matched"),
                    quote(&pair.name)
                ),
                &[],
            );
        }
        record(
            out,
            &format!(
                "Cause of pair {}: the cause of the side that is behind (the follower's when the sync lag\n\
                 is positive, the leader's when negative; else the cause first in the diagnosis order),\n\
                 the other side's when that one is ok; with both ok, join_incomplete while a join's\n\
                 value is under its incomplete_below (after the join's rules); `stream` is that side.",
                pair.name
            ),
            PAIR_CAUSE,
            &pair_cause_expr(leader, follower, &pair.name, pair.join.as_ref()),
            &labels,
        );
    }
}

/// The low-watermark rule over the replicas' own stream-level watermarks (granularity
/// `stream`): each replica's is the min over its active partitions, so the min over the
/// replicas that have an active partition of the stream is the min over all active
/// partitions; with none active anywhere, the max over the replicas that hold partitions.
fn low_watermark_of_replicas(by: &str, series: &str) -> String {
    format!(
        "min by ({by}) (\n  {series}\n    and on (job, instance, stream)\n  \
         ({S_ACTIVE} > 0)\n)\nor\n\
         max by ({by}) (\n  {series}\n    and on (job, instance, stream)\n  \
         ({S_PARTITIONS} > 0)\n)"
    )
}

/// The low-watermark rule over partition watermarks (granularity `partition`): the min
/// over the partitions that delivered a record within `idle` seconds, the max of all when
/// every one is idle.
fn low_watermark_of_partitions(by: &str, series: &str, idle: &str) -> String {
    format!(
        "min by ({by}) (\n  {series}\n    and on (job, stream, topic, partition)\n  \
         (time() - {P_LAST_RECORD} <= {idle})\n)\nor\nmax by ({by}) ({series})"
    )
}

/// Consumer lag, watermarks, sync lag and cause across replicas: each replica exports
/// the lag of the partitions it owns; the cause is one term per row of the consumer
/// diagnosis table (any replica's report holds: offsets and their movement are the
/// group's, the same for every replica). Always written: they match by label, so they
/// answer for the consumers found while running (`[discovery]`, Kafka Connect sinks) as
/// for the listed ones.
fn consumer_records(out: &mut String, config: &Config) {
    record(
        out,
        "Consumer lag: the largest lag seconds over its partitions, across replicas.",
        CONSUMER_LAG,
        &format!("max by (job, consumer, group) ({C_STREAM_LAG})"),
        &[],
    );
    let idle = seconds(config.settings.idle_partition_timeout_ms);
    let by = "job, consumer, group, stream";
    let mut watermark = match config.granularity {
        Granularity::Partition => low_watermark_of_partitions(by, C_P_WATERMARK, &idle),
        Granularity::Stream => low_watermark_of_replicas(by, C_WATERMARK),
    };
    let discovered_groups = config.discovery.as_ref().is_some_and(|d| d.groups.is_some() && !d.partition_series);
    if config.granularity == Granularity::Partition && discovered_groups {
        // discovered consumers have no partition series: their replicas' stream watermarks
        watermark = format!("{watermark}\nor\n{}", low_watermark_of_replicas(by, C_WATERMARK));
    }
    record(
        out,
        "Consumer watermark per stream: the low-watermark rule over the consumer's partition\n\
         watermarks (min over the stream's active partitions, max of all when every one is idle).",
        CONSUMER_WATERMARK,
        &watermark,
        &[],
    );
    record(
        out,
        "Consumer cause: the first of the consumer diagnosis order that any replica reports (value 1).",
        CONSUMER_CAUSE,
        &consumer_cause_expr(),
        &[],
    );
    for c in &config.consumers {
        for pair in config.pairs.iter().filter(|p| c.streams.contains(&p.leader) && c.streams.contains(&p.follower)) {
            let (leader, follower) = (&config.streams[pair.leader].name, &config.streams[pair.follower].name);
            let labels = [("pair", pair.name.as_str()), ("leader", leader.as_str()), ("follower", follower.as_str())];
            let side = |stream: &str| {
                format!(
                    "max by (job, consumer, group) ({CONSUMER_WATERMARK}{{consumer={}, stream={}}})",
                    quote(&c.name),
                    quote(stream)
                )
            };
            record(
                out,
                &format!(
                    "Sync lag of pair {} as consumer {} sees it: its leader watermark - its follower watermark.",
                    pair.name, c.name
                ),
                CONSUMER_SYNC_LAG,
                &format!("{}\n- on (job, consumer, group)\n{}", side(leader), side(follower)),
                &labels,
            );
        }
    }
}

fn record(out: &mut String, comment: &str, name: &str, expr: &str, labels: &[(&str, &str)]) {
    for line in comment.lines() {
        let _ = writeln!(out, "      # {line}");
    }
    let _ = writeln!(out, "      - record: {name}\n        expr: |-\n{}", indent(expr, 10));
    write_map(out, "labels", labels);
}

fn alert(out: &mut String, name: &str, expr: &str, for_ms: i64, labels: &[(&str, &str)], annotations: &[(&str, &str)]) {
    let _ = writeln!(out, "      - alert: {name}\n        expr: |-\n{}", indent(expr, 10));
    if for_ms > 0 {
        let _ = writeln!(out, "        for: {}", duration(for_ms));
    }
    write_map(out, "labels", labels);
    write_map(out, "annotations", annotations);
}

fn write_map(out: &mut String, key: &str, entries: &[(&str, &str)]) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "        {key}:");
    for (k, v) in entries {
        let _ = writeln!(out, "          {k}: {}", yaml_string(v));
    }
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{:by$}{l}", "")).collect::<Vec<_>>().join("\n")
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A Prometheus template that writes the value of `expr` (a query by `job` and more) for
/// the alert's job, with two decimals.
fn queried(expr: &str) -> String {
    let expr = expr.replacen('{', "{job=%q, ", 1);
    format!(
        "{{{{ with printf {} $labels.job | query }}}}{{{{ . | first | value | printf \"%.2f\" }}}}{{{{ end }}}}",
        serde_json::to_string(&expr).unwrap_or_default()
    )
}

/// A stream name inside a PromQL regular expression (RE2): its metacharacters escaped.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A PromQL string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

/// A Prometheus duration.
fn duration(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewatch_core::alert::AlertKind;

    #[test]
    fn example_config_renders_every_rule() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipewatch.example.toml")).unwrap();
        let config = crate::config::parse(&text).unwrap();
        let rules = render(&config, "pipewatch.example.toml");
        for needle in [
            "record: pipewatch:stream_watermark_timestamp_seconds",
            "<= 300)",
            "rate(pipewatch_partition_log_end_offset[60s])",
            "record: pipewatch:sync_lag_seconds",
            "pair: \"orders_behaviour\"",
            "alert: KafkaUnreachable",
            "alert: BehaviourBehindOrders",
            "pipewatch:sync_lag_seconds{pair=\"orders_behaviour\"} > 900",
            "pipewatch:sync_lag_seconds{pair=\"orders_behaviour\"} > 600 and on (job) ALERTS{alertname=\"BehaviourBehindOrders\", alertstate=\"firing\"}",
            "for: 60s",
            "team: \"checkout\"",
        ] {
            assert!(rules.contains(needle), "missing {needle:?} in\n{rules}");
        }
    }

    #[test]
    fn stream_granularity_reads_the_replicas_stream_series() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipewatch.example.toml")).unwrap();
        let text = format!(
            "{text}\n[[consumer]]\nname = \"analytics\"\ngroup = \"analytics-job\"\nstreams = [\"orders\", \"behaviour\"]\n"
        );
        let streams = text.replace("granularity = \"partition\"", "granularity = \"stream\"");
        assert_ne!(streams, text, "the example config sets metrics.granularity");
        let config = crate::config::parse(&streams).unwrap();
        let rules = render(&config, "pipewatch.example.toml");
        for needle in [
            "from the replicas' stream series",
            "pipewatch_stream_watermark_timestamp_seconds\n              and on (job, instance, stream)\n            (pipewatch_stream_active_partitions > 0)",
            "(pipewatch_stream_partitions > 0)",
            "sum by (job, stream) (pipewatch_stream_rate_records_per_second)",
            "min by (job, consumer, group, stream) (\n            pipewatch_consumer_watermark_timestamp_seconds\n",
            "record: pipewatch:consumer_sync_lag_seconds",
            "alert: BehaviourBehindOrders",
        ] {
            assert!(rules.contains(needle), "missing {needle:?} in\n{rules}");
        }
        assert!(!rules.contains("pipewatch_partition_") && !rules.contains("partition_watermark"), "{rules}");
        let partitions = render(&crate::config::parse(&text).unwrap(), "pipewatch.example.toml");
        assert!(partitions.contains("rate(pipewatch_partition_log_end_offset[60s])"), "{partitions}");
    }

    /// A config with a rule of every kind on top of the example's.
    fn every_kind() -> Config {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipewatch.example.toml")).unwrap();
        let text = text.replace(
            "[[stream]]\nname = \"orders\"",
            "[[stream]]\nname = \"orders\"\nbaseline = { history = \"14d\" }",
        );
        let text = format!(
            "{text}\n[[consumer]]\nname = \"analytics\"\ngroup = \"analytics-job\"\nstreams = [\"orders\", \"behaviour\"]\n\
             [[alert]]\nname = \"OrdersVolume\"\nkind = \"volume_anomaly\"\ntarget = \"orders\"\nimpact = \"x\"\n\
             [[alert]]\nname = \"AnalyticsBehind\"\nkind = \"consumer_lag\"\ntarget = \"analytics\"\nthreshold = \"10m\"\nimpact = \"x\"\n"
        );
        crate::config::parse(&text).unwrap()
    }

    #[test]
    fn a_volume_anomaly_reads_as_pipewatchs_own_sentence() {
        let rules = render(&every_kind(), "pipewatch.toml");
        let summary = rules
            .lines()
            .skip_while(|l| !l.contains("alert: OrdersVolume"))
            .find(|l| l.trim_start().starts_with("summary:"))
            .unwrap();
        let own = AlertKind::VolumeAnomaly.summary("orders", "", "", "R", "B");
        let (head, rest) = own.split_once('R').unwrap();
        assert!(summary.contains(head) && summary.contains(rest.split('B').next().unwrap()), "{summary}");
        assert!(summary.contains("| query }}"), "the rate and the band are asked of Prometheus: {summary}");
    }

    #[test]
    fn a_rule_waits_for_every_stream_it_reads_as_the_evaluator_does() {
        let rules = render(&every_kind(), "pipewatch.toml");
        let block = |alert: &str| -> String {
            rules
                .lines()
                .skip_while(|l| !l.contains(&format!("alert: {alert}")))
                .take_while(|l| !l.contains("labels:"))
                .collect()
        };
        // a pair: both sides, not only the side whose cause the pair carries
        assert!(block("BehaviourBehindOrders")
            .contains("pipewatch:stream_cause{cause=~\"schema_registry_unreachable|no_data|catching_up|source_snapshot\", stream=~\"orders|behaviour\"}"));
        assert!(block("OrdersStale").contains(
            "pipewatch:stream_cause{cause=~\"schema_registry_unreachable|no_data|catching_up|source_snapshot\", stream=\"orders\"}"
        ));
        let consumer = block("AnalyticsBehind");
        assert!(consumer.contains("cause=\"upstream_fault\""), "{consumer}");
        assert!(consumer.contains("stream=~\"orders|behaviour\""), "{consumer}");
        // a volume anomaly is judged whatever the data: nothing holds it but the cluster
        assert!(!block("OrdersVolume").contains("stream_cause{cause=~"), "{}", block("OrdersVolume"));
    }
}
