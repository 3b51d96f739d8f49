//! The Prometheus rules `pipewatch rules` generates diagnose as the monitor does: for
//! every pair of causes two replicas can report for their shares of one stream, the
//! generated `pipewatch:stream_cause` is the cause the monitor's own diagnosis gives
//! the stream with both shares' facts together; the volume causes come from the summed
//! rate; a pair's cause is the side that is behind. Checked by promtool on series
//! made for each case.

use std::fmt::Write as _;
use std::path::PathBuf;

use pipewatch_core::connect::ConnectorFault;
use pipewatch_core::diagnosis::{
    diagnose, diagnose_consumer, pair_cause, ConsumerCause, ConsumerFacts, Side, StreamFacts,
};
use pipewatch_core::Cause;

/// The facts of one replica's share of a stream for which `cause` is the diagnosis.
fn witness(cause: Cause) -> StreamFacts {
    let healthy = StreamFacts { has_watermark: true, flowing: 1, ..StreamFacts::default() };
    let f = match cause {
        Cause::KafkaUnreachable => StreamFacts { kafka_down: true, ..healthy },
        Cause::AccessDenied => StreamFacts { access_denied: true, ..healthy },
        Cause::SchemaRegistryUnreachable => StreamFacts { registry_unreachable: true, ..healthy },
        Cause::TopicMissing => StreamFacts { topic_missing: true, ..healthy },
        Cause::ConnectorFailed => StreamFacts { connector: Some(ConnectorFault::Failed), ..healthy },
        Cause::ConnectorUnassigned => StreamFacts { connector: Some(ConnectorFault::Unassigned), ..healthy },
        Cause::ConnectorPaused => StreamFacts { connector: Some(ConnectorFault::Paused), ..healthy },
        Cause::NoData => StreamFacts { has_watermark: false, ..healthy },
        Cause::ProducerSilent => StreamFacts { silent: 1, flowing: 0, ..healthy },
        Cause::PartitionStalled => StreamFacts { silent: 1, ..healthy },
        Cause::CatchingUp => StreamFacts { catching_up: true, ..healthy },
        Cause::SourceSnapshot => StreamFacts { source_snapshot: true, ..healthy },
        Cause::MonitorBacklog => StreamFacts { backlog_growing: true, ..healthy },
        Cause::EventTimeDelayed => StreamFacts { event_time_old: true, ..healthy },
        // A replica's volume cause judges its own share of the rate against the bound.
        Cause::VolumeLow => StreamFacts { full_window_rate: Some(1.0), min_rate: Some(2.0), ..healthy },
        Cause::VolumeHigh => StreamFacts { full_window_rate: Some(3.0), max_rate: Some(2.0), ..healthy },
        Cause::VolumeAnomaly => StreamFacts { full_window_rate: Some(1.0), band: Some((2.0, 4.0)), ..healthy },
        Cause::SegmentSilent => StreamFacts { segment_silent: true, ..healthy },
        Cause::Ok => healthy,
    };
    assert_eq!(diagnose(&f), cause, "the witness of {cause:?}");
    f
}

/// Two replicas' shares as one stream.
fn merge(a: &StreamFacts, b: &StreamFacts) -> StreamFacts {
    StreamFacts {
        kafka_down: a.kafka_down || b.kafka_down,
        access_denied: a.access_denied || b.access_denied,
        registry_unreachable: a.registry_unreachable || b.registry_unreachable,
        topic_missing: a.topic_missing || b.topic_missing,
        connector: worst(a.connector, b.connector),
        has_watermark: a.has_watermark || b.has_watermark,
        flowing: a.flowing + b.flowing,
        silent: a.silent + b.silent,
        quiet: a.quiet + b.quiet,
        catching_up: a.catching_up || b.catching_up,
        source_snapshot: a.source_snapshot || b.source_snapshot,
        backlog_growing: a.backlog_growing || b.backlog_growing,
        event_time_old: a.event_time_old || b.event_time_old,
        full_window_rate: a.full_window_rate,
        min_rate: a.min_rate,
        max_rate: a.max_rate,
        band: a.band,
        segment_silent: a.segment_silent || b.segment_silent,
    }
}

/// The worse of two replicas' connector faults (every replica polls the same Connect).
fn worst(a: Option<ConnectorFault>, b: Option<ConnectorFault>) -> Option<ConnectorFault> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

const STEPS: usize = 24;
const INTERVAL_S: usize = 15;

/// `pipewatch_stream_cause` of one replica reporting `cause` for `stream`.
fn cause_series(out: &mut String, job: &str, instance: &str, stream: &str, cause: Cause) {
    for c in Cause::ALL {
        let v = if c == cause { 1 } else { 0 };
        let _ = writeln!(
            out,
            "      - series: 'pipewatch_stream_cause{{job=\"{job}\", instance=\"{instance}\", stream=\"{stream}\", cause=\"{}\"}}'\n        values: '{v}x{STEPS}'",
            c.as_str()
        );
    }
}

/// A partition's series: a log end growing by `rate` records/s, a watermark, a record
/// just read (active).
fn partition_series(out: &mut String, job: &str, instance: &str, stream: &str, rate: usize, watermark: i64) {
    let labels = format!(
        "job=\"{job}\", instance=\"{instance}\", stream=\"{stream}\", topic=\"{stream}\", partition=\"{instance}\""
    );
    let _ = writeln!(
        out,
        "      - series: 'pipewatch_partition_log_end_offset{{{labels}}}'\n        values: '0+{}x{STEPS}'",
        rate * INTERVAL_S
    );
    let _ = writeln!(
        out,
        "      - series: 'pipewatch_partition_watermark_timestamp_seconds{{{labels}}}'\n        values: '{watermark}x{STEPS}'"
    );
    let _ = writeln!(
        out,
        "      - series: 'pipewatch_partition_last_record_timestamp_seconds{{{labels}}}'\n        values: '0+{INTERVAL_S}x{STEPS}'"
    );
}

/// `pipewatch:stream_cause` of `stream` is `want` for job `pw`.
fn expect_cause(out: &mut String, stream: &str, want: Cause) {
    expect(out, "pipewatch:stream_cause", &format!("job=\"pw\", stream=\"{stream}\", cause=\"{}\"", want.as_str()));
}

fn expect(out: &mut String, metric: &str, labels: &str) {
    let _ = writeln!(out, "          - labels: '{metric}{{{labels}}}'\n            value: 1");
}

#[test]
fn generated_cause_rules_agree_with_the_monitor_on_every_cause_in_order() {
    let config = pipewatch::config::parse(
        r#"
[kafka]
bootstrap_servers = "127.0.0.1:9092"
[monitor]
rate_window = "60s"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/created_at", format = "rfc3339" }
[[stream]]
name = "behaviour"
topic = "behaviour"
event_time = { field = "/ts", format = "epoch_millis" }
[[stream]]
name = "vol_low"
topic = "vol_low"
event_time = { field = "/ts", format = "epoch_millis" }
min_rate = 5.0
[[stream]]
name = "vol_delayed"
topic = "vol_delayed"
event_time = { field = "/ts", format = "epoch_millis" }
min_rate = 5.0
[[stream]]
name = "vol_high"
topic = "vol_high"
event_time = { field = "/ts", format = "epoch_millis" }
max_rate = 100.0
[[stream]]
name = "vol_band"
topic = "vol_band"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "14d" }
[[stream]]
name = "vol_band_ok"
topic = "vol_band_ok"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "14d" }
[[stream]]
name = "vol_band_learning"
topic = "vol_band_learning"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "14d" }
[[stream]]
name = "seg_silent"
topic = "seg_silent"
event_time = { field = "/ts", format = "epoch_millis" }
segments = [{ name = "channel", field = "/channel" }]
[[stream]]
name = "seg_elsewhere"
topic = "seg_elsewhere"
event_time = { field = "/ts", format = "epoch_millis" }
segments = [{ name = "channel", field = "/channel" }]
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["orders", "behaviour"]
"#,
    )
    .expect("test config");
    let rules = pipewatch::rules::render(&config, "the agreement test");

    let mut series = String::new();
    let mut causes = String::new();
    let mut pairs = String::new();
    // Two replicas, every pair of causes that does not depend on the rate.
    let judged: Vec<Cause> = Cause::ALL
        .into_iter()
        .filter(|c| !matches!(c, Cause::VolumeLow | Cause::VolumeHigh | Cause::VolumeAnomaly | Cause::SegmentSilent))
        .collect();
    let mut cases = 0;
    for a in &judged {
        for b in &judged {
            let stream = format!("{}__{}", a.as_str(), b.as_str());
            cause_series(&mut series, "pw", "a", &stream, *a);
            cause_series(&mut series, "pw", "b", &stream, *b);
            let want = diagnose(&merge(&witness(*a), &witness(*b)));
            expect_cause(&mut causes, &stream, want);
            cases += 1;
        }
    }
    // The volume causes: two replicas at 2 records/s each, each within its own bound.
    for (stream, reported, rate) in
        [("vol_low", Cause::Ok, 2), ("vol_delayed", Cause::EventTimeDelayed, 2), ("vol_high", Cause::VolumeHigh, 60)]
    {
        let spec = config.streams.iter().find(|s| s.name == stream).unwrap();
        for instance in ["a", "b"] {
            cause_series(&mut series, "pw", instance, stream, reported);
            partition_series(&mut series, "pw", instance, stream, rate, 1000);
        }
        let mut facts = witness(reported);
        facts.full_window_rate = Some(2.0 * rate as f64);
        facts.min_rate = spec.min_rate;
        facts.max_rate = spec.max_rate;
        let want = diagnose(&facts);
        expect_cause(&mut causes, stream, want);
        cases += 1;
    }
    // The band: each replica's band of its share (lower 4, expected 5, upper 6 records/s)
    // summed; a replica still learning (no band) leaves the stream unjudged.
    for (stream, rate, bands) in [("vol_band", 2, 2), ("vol_band_ok", 5, 2), ("vol_band_learning", 2, 1)] {
        for (i, instance) in ["a", "b"].into_iter().enumerate() {
            cause_series(&mut series, "pw", instance, stream, Cause::Ok);
            partition_series(&mut series, "pw", instance, stream, rate, 1000);
            let _ = writeln!(
                series,
                "      - series: 'pipewatch_stream_partitions{{job=\"pw\", instance=\"{instance}\", stream=\"{stream}\"}}'\n        values: '1x{STEPS}'"
            );
            for (bound, v) in [("lower", 4), ("expected", 5), ("upper", 6)].into_iter().filter(|_| i < bands) {
                let _ = writeln!(
                    series,
                    "      - series: 'pipewatch_stream_rate_expected_records_per_second{{job=\"pw\", instance=\"{instance}\", stream=\"{stream}\", bound=\"{bound}\"}}'\n        values: '{v}x{STEPS}'"
                );
            }
        }
        let facts = StreamFacts {
            full_window_rate: Some(2.0 * rate as f64),
            band: (bands == 2).then_some((8.0, 12.0)),
            ..witness(Cause::Ok)
        };
        let want = diagnose(&facts);
        expect_cause(&mut causes, stream, want);
        cases += 1;
    }
    // A segment value silent at the replica that reports it: the stream's cause only when
    // it is silent at every replica that has read it (max_silence 2 m).
    for (stream, silences, want) in
        [("seg_silent", [600, 300], Cause::SegmentSilent), ("seg_elsewhere", [600, 5], Cause::Ok)]
    {
        for (instance, silence) in ["a", "b"].into_iter().zip(silences) {
            let reported = if silence > 120 { Cause::SegmentSilent } else { Cause::Ok };
            cause_series(&mut series, "pw", instance, stream, reported);
            let labels =
                format!("job=\"pw\", instance=\"{instance}\", stream=\"{stream}\", segment=\"channel\", value=\"app\"");
            let _ = writeln!(
                series,
                "      - series: 'pipewatch_segment_silence_seconds{{{labels}}}'\n        values: '{silence}x{STEPS}'\n      \
                 - series: 'pipewatch_segment_used_to_flow{{{labels}}}'\n        values: '1x{STEPS}'"
            );
        }
        expect_cause(&mut causes, stream, want);
        cases += 1;
    }
    assert!(causes.contains("cause=\"volume_low\"") && causes.contains("cause=\"volume_high\""));
    assert!(causes.contains("stream=\"vol_band\", cause=\"volume_anomaly\""));
    assert!(causes.contains("stream=\"vol_band_learning\", cause=\"ok\""));

    // Pairs, one job each: the side that is behind.
    use Cause::*;
    let pair_cases = [
        (PartitionStalled, EventTimeDelayed, 28_800),
        (ProducerSilent, EventTimeDelayed, -600),
        (PartitionStalled, Ok, 5),
        (Ok, EventTimeDelayed, -5),
        (EventTimeDelayed, PartitionStalled, 600),
        (Ok, Ok, 3),
        (Ok, Ok, -3),
        (NoData, CatchingUp, 0),
        (PartitionStalled, EventTimeDelayed, 0),
        (EventTimeDelayed, KafkaUnreachable, 0),
        (ProducerSilent, ProducerSilent, 0),
    ];
    for (i, (leader, follower, lag)) in pair_cases.into_iter().enumerate() {
        let job = format!("pair{i}");
        cause_series(&mut series, &job, "a", "orders", leader);
        cause_series(&mut series, &job, "a", "behaviour", follower);
        partition_series(&mut series, &job, "a", "orders", 1, 100_000);
        partition_series(&mut series, &job, "a", "behaviour", 1, 100_000 - lag);
        let (want, side) = pair_cause(leader, follower, Some(lag as f64));
        let stream = if side == Side::Leader { "orders" } else { "behaviour" };
        expect(
            &mut pairs,
            "pipewatch:pair_cause",
            &format!(
                "job=\"{job}\", stream=\"{stream}\", cause=\"{}\", pair=\"orders_behaviour\", leader=\"orders\", follower=\"behaviour\"",
                want.as_str()
            ),
        );
    }

    // Consumers: every pair of causes two replicas can report, against the monitor's
    // consumer diagnosis of both reports together.
    let consumer_witness = |c: ConsumerCause| {
        let f = match c {
            ConsumerCause::KafkaUnreachable => ConsumerFacts { kafka_down: true, ..Default::default() },
            ConsumerCause::AccessDenied => ConsumerFacts { access_denied: true, ..Default::default() },
            ConsumerCause::UpstreamFault => ConsumerFacts { upstream_fault: true, ..Default::default() },
            ConsumerCause::ConnectorFailed => {
                ConsumerFacts { connector: Some(ConnectorFault::Failed), ..Default::default() }
            }
            ConsumerCause::ConnectorUnassigned => {
                ConsumerFacts { connector: Some(ConnectorFault::Unassigned), ..Default::default() }
            }
            ConsumerCause::ConnectorPaused => {
                ConsumerFacts { connector: Some(ConnectorFault::Paused), ..Default::default() }
            }
            ConsumerCause::GroupUnknown => ConsumerFacts { group_unknown: true, ..Default::default() },
            ConsumerCause::RecordsExpired => ConsumerFacts { expired: true, ..Default::default() },
            ConsumerCause::ConsumerStopped => ConsumerFacts { stalled: true, ..Default::default() },
            ConsumerCause::ConsumerLagging => ConsumerFacts { lagging: true, ..Default::default() },
            ConsumerCause::Ok => ConsumerFacts::default(),
        };
        assert_eq!(diagnose_consumer(&f), c);
        f
    };
    let mut consumer_causes = String::new();
    for a in ConsumerCause::ALL {
        for b in ConsumerCause::ALL {
            let consumer = format!("{}__{}", a.as_str(), b.as_str());
            for (instance, cause) in [("a", a), ("b", b)] {
                for c in ConsumerCause::ALL {
                    let _ = writeln!(
                        series,
                        "      - series: 'pipewatch_consumer_cause{{job=\"pw\", instance=\"{instance}\", consumer=\"{consumer}\", group=\"g\", cause=\"{}\"}}'\n        values: '{}x{STEPS}'",
                        c.as_str(),
                        u8::from(c == cause)
                    );
                }
            }
            let (fa, fb) = (consumer_witness(a), consumer_witness(b));
            let merged = ConsumerFacts {
                kafka_down: fa.kafka_down || fb.kafka_down,
                access_denied: fa.access_denied || fb.access_denied,
                upstream_fault: fa.upstream_fault || fb.upstream_fault,
                connector: worst(fa.connector, fb.connector),
                group_unknown: fa.group_unknown || fb.group_unknown,
                expired: fa.expired || fb.expired,
                stalled: fa.stalled || fb.stalled,
                lagging: fa.lagging || fb.lagging,
            };
            let want = diagnose_consumer(&merged).as_str();
            expect(
                &mut consumer_causes,
                "pipewatch:consumer_cause",
                &format!("job=\"pw\", consumer=\"{consumer}\", group=\"g\", cause=\"{want}\""),
            );
        }
    }

    let eval = format!("{}s", (STEPS - 2) * INTERVAL_S);
    let test = format!(
        "rule_files:\n  - rules.yml\nevaluation_interval: {INTERVAL_S}s\ntests:\n  - interval: {INTERVAL_S}s\n    input_series:\n{series}    promql_expr_test:\n      - expr: pipewatch:stream_cause{{job=\"pw\"}}\n        eval_time: {eval}\n        exp_samples:\n{causes}      - expr: pipewatch:pair_cause\n        eval_time: {eval}\n        exp_samples:\n{pairs}      - expr: pipewatch:consumer_cause\n        eval_time: {eval}\n        exp_samples:\n{consumer_causes}      - expr: pipewatch:stream_rate_anomaly_score{{stream=~\"vol_band|vol_band_learning\"}}\n        eval_time: {eval}\n        exp_samples:\n          - labels: 'pipewatch:stream_rate_anomaly_score{{job=\"pw\", stream=\"vol_band\"}}'\n            value: -3\n"
    );
    let dir: PathBuf = std::env::temp_dir().join(pipewatch_kafka::testing::unique_topic("pipewatch-diagnosis-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), &rules).unwrap();
    std::fs::write(dir.join("test.yml"), &test).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["test", "rules", "test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("promtool is in Debian's prometheus package (apt-get install prometheus): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("SUCCESS"),
        "the generated rules disagree with the monitor ({cases} stream cases, {} pair cases; files in {}):\n{text}",
        pair_cases.len(),
        dir.display()
    );
    assert_eq!(cases, judged.len() * judged.len() + 8);
}
