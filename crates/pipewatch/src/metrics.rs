//! `/metrics`: the monitor's and the alert rules' series are rendered at scrape time
//! from the latest [`Tick`], so what Prometheus sees is exactly what /api/v1/status
//! shows, series of revoked partitions go with them, and no series carries a stand-in
//! value (an unknown value is an absent series). The source's and the receivers' own
//! counters are registered by their crates (`SourceMetrics`, `DeliveryMetrics`) in the
//! registry and encoded by the prometheus crate.
//!
//! At [`Granularity::Stream`] the per-partition series are left out and the counters
//! are summed per stream (revoked partitions' counts included, so they never go back):
//! the stream-level series below are exported at both granularities, so dashboards and
//! rules that read them work at either.
//!
//! The tick's series are written straight in the text exposition format: at 10 000
//! partitions they are over 100 000 lines, and building the client library's message
//! structs for each (then encoding those) took most of a 200 ms scrape.

use std::fmt::Write as _;

use pipewatch_core::alert::AlertState;
use pipewatch_core::diagnosis::{kafka_unreachable, AlertCause, ConsumerCause};
use pipewatch_core::histogram::Histogram;
use pipewatch_core::snapshot::{ConsumerPartitionSnapshot, ConsumerSnapshot};
use pipewatch_core::{Cause, KafkaStatus, Snapshot};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::config::Granularity;
use crate::tick::{Tick, TickRx};

/// The whole exposition: the registry's counters, then the latest tick's series.
pub fn render(registry: &Registry, tick: &TickRx, granularity: Granularity) -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    let mut out = String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))?;
    let tick = tick.borrow().clone();
    let families = tick_families(tick.as_deref(), granularity);
    // one allocation for the body (at 10 000 partitions ~15 MB): no copies as it grows
    out.reserve(families.iter().map(|f| f.samples.len() + f.name.len() * 2 + f.help.len() + 32).sum());
    for family in families {
        family.write(&mut out);
    }
    Ok(out)
}

/// The metric types of the text format.
mod kind {
    pub const GAUGE: &str = "gauge";
    pub const COUNTER: &str = "counter";
    pub const HISTOGRAM: &str = "histogram";
}

/// One metric family, its samples already in the text format.
struct Family {
    name: String,
    help: &'static str,
    kind: &'static str,
    samples: String,
}

impl Family {
    fn new(name: &str, help: &'static str, kind: &'static str) -> Self {
        Self { name: format!("pipewatch_{name}"), help, kind, samples: String::new() }
    }

    /// One line: `name{labels} value`.
    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<f64>, value: f64) {
        let out = &mut self.samples;
        out.push_str(&self.name);
        out.push_str(suffix);
        if !labels.is_empty() || le.is_some() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label(out, v);
                out.push('"');
            }
            if let Some(le) = le {
                if !labels.is_empty() {
                    out.push(',');
                }
                out.push_str("le=\"");
                number(out, le);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        number(out, value);
        out.push('\n');
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        self.line("", labels, None, value);
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: f64) {
        self.line("", labels, None, value);
    }

    fn histogram(&mut self, labels: &[(&str, &str)], h: &Histogram) {
        for (le, count) in h.cumulative() {
            self.line("_bucket", labels, Some(le), count as f64);
        }
        self.line("_bucket", labels, Some(f64::INFINITY), h.count() as f64);
        self.line("_sum", labels, None, h.sum());
        self.line("_count", labels, None, h.count() as f64);
    }

    /// `# HELP`, `# TYPE` and the samples; nothing for a family without samples (e.g. no
    /// sync lag before the first records).
    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        out.push_str(&self.samples);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn escape_label(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value or bucket bound: shortest round-trip decimal, `+Inf`/`-Inf`/`NaN`.
fn number(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}

/// Every family of the latest tick: Kafka's state and the build, the monitor's, the
/// consumers' and the alert rules' series.
fn tick_families(tick: Option<&Tick>, granularity: Granularity) -> Vec<Family> {
    use kind::GAUGE;
    let mut kafka_up = Family::new("kafka_up", "1 when the Kafka cluster answers the log-end poll, else 0.", GAUGE);
    let mut build = Family::new("build_info", "pipewatch's version; always 1.", GAUGE);
    build.gauge(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    kafka_up.gauge(&[], if tick.is_some_and(|t| t.snapshot.kafka == KafkaStatus::Up) { 1.0 } else { 0.0 });
    let mut out = vec![kafka_up, build];
    if let Some(t) = tick {
        out.extend(snapshot_families(&t.snapshot, granularity));
        out.extend(consumer_families(&t.snapshot.consumers, granularity));
        out.extend(alert_families(t));
    }
    out
}

fn snapshot_families(s: &Snapshot, granularity: Granularity) -> Vec<Family> {
    use kind::{COUNTER, GAUGE, HISTOGRAM};
    let mut p_watermark = Family::new(
        "partition_watermark_timestamp_seconds",
        "Max event time seen on the partition (never goes backwards).",
        GAUGE,
    );
    let mut p_last = Family::new(
        "partition_last_record_timestamp_seconds",
        "When pipewatch read the partition's last record (arrival time).",
        GAUGE,
    );
    let mut p_end =
        Family::new("partition_log_end_offset", "The broker's high-watermark offset of the partition.", GAUGE);
    let mut p_pos = Family::new("partition_position_offset", "The next offset pipewatch will read.", GAUGE);
    let mut p_backlog = Family::new(
        "partition_backlog_records",
        "Records written but not yet read by pipewatch (log end - position).",
        GAUGE,
    );
    let mut records = Family::new("records_total", "Records read by pipewatch.", COUNTER);
    let mut s_partitions =
        Family::new("stream_partitions", "Partitions of the stream's topic assigned to this pipewatch.", GAUGE);
    let mut s_active = Family::new(
        "stream_active_partitions",
        "Assigned partitions that delivered a record within idle_partition_timeout.",
        GAUGE,
    );
    let mut s_backlog = Family::new(
        "stream_backlog_records",
        "Records written but not yet read by pipewatch, over the assigned partitions.",
        GAUGE,
    );
    let mut invalid =
        Family::new("records_invalid_total", "Records whose event time could not be used, by reason.", COUNTER);
    let mut bytes = Family::new("record_bytes_total", "Payload bytes read by pipewatch.", COUNTER);
    let mut gaps = Family::new("gaps_total", "Gaps opened: silences longer than max_silence.", COUNTER);
    let mut s_watermark = Family::new(
        "stream_watermark_timestamp_seconds",
        "Min of the active partitions' watermarks (max of all when every partition is idle).",
        GAUGE,
    );
    let mut s_fresh = Family::new("stream_freshness_lag_seconds", "now - stream watermark.", GAUGE);
    let mut s_silence = Family::new(
        "stream_silence_seconds",
        "Time since the log end of any of the stream's partitions last advanced.",
        GAUGE,
    );
    let mut s_rate = Family::new(
        "stream_rate_records_per_second",
        "Records written per second (broker log ends) over the rate window.",
        GAUGE,
    );
    let mut s_bound = Family::new(
        "stream_rate_bound_records_per_second",
        "The stream's configured min_rate and max_rate (bound=\"min\"|\"max\"), when set.",
        GAUGE,
    );
    let mut s_expected = Family::new(
        "stream_rate_expected_records_per_second",
        "The rate expected now from the topic's history and its band (bound=\"lower\"|\"expected\"|\"upper\"), for the assigned partitions; absent until there is enough history.",
        GAUGE,
    );
    let mut s_history = Family::new(
        "stream_baseline_history_seconds",
        "The complete past hours of history the stream's baseline is drawn from (assigned partitions), in seconds.",
        GAUGE,
    );
    let mut seg_records = Family::new(
        "segment_records_total",
        "Records read per value of a segment field (value=\"other\" past the cap, \"none\" without the field).",
        COUNTER,
    );
    let mut seg_silence = Family::new(
        "segment_silence_seconds",
        "Time since the last record of the segment value read in real time (values silent for a day are left out).",
        GAUGE,
    );
    let mut seg_flowing = Family::new(
        "segment_used_to_flow",
        "1 when the segment value's records came often enough that a silence of max_silence is unusual (it is judged).",
        GAUGE,
    );
    let mut seg_overflow = Family::new(
        "segment_overflow_records_total",
        "Records counted as value=\"other\" because the segment had its cap of distinct values (or the value was too long).",
        COUNTER,
    );
    let mut s_delay = Family::new(
        "stream_record_delay_seconds",
        "Arrival time - event time of records read in real time.",
        HISTOGRAM,
    );
    let mut s_gap = Family::new("gap_duration_seconds", "Length of closed gaps (the whole silence).", HISTOGRAM);
    let mut s_cause =
        Family::new("stream_cause", "The stream's diagnosed state: 1 for the active cause, 0 otherwise.", GAUGE);
    let mut sync = Family::new(
        "sync_lag_seconds",
        "Leader watermark - follower watermark; positive: the follower is behind.",
        GAUGE,
    );

    for st in &s.streams {
        let name = st.name.as_str();
        if granularity == Granularity::Stream {
            let l = [("stream", name), ("topic", st.topic.as_str())];
            records.counter(&l, st.records as f64);
            bytes.counter(&l, st.bytes as f64);
            gaps.counter(&l, st.gaps as f64);
            for (reason, n) in &st.invalid {
                invalid.counter(&[l[0], l[1], ("reason", reason)], *n as f64);
            }
        }
        let partitions = if granularity == Granularity::Partition { &st.partitions[..] } else { &[] };
        for p in partitions {
            let part = p.partition.to_string();
            let l: [(&str, &str); 3] = [("stream", name), ("topic", &st.topic), ("partition", &part)];
            if let Some(w) = p.watermark_ms {
                p_watermark.gauge(&l, w as f64 / 1000.0);
            }
            if let Some(t) = p.last_record_ms {
                p_last.gauge(&l, t as f64 / 1000.0);
            }
            if let Some(o) = p.log_end_offset {
                p_end.gauge(&l, o as f64);
            }
            if let Some(o) = p.position_offset {
                p_pos.gauge(&l, o as f64);
            }
            if let Some(b) = p.backlog_records {
                p_backlog.gauge(&l, b as f64);
            }
            records.counter(&l, p.records as f64);
            bytes.counter(&l, p.bytes as f64);
            gaps.counter(&l, p.gaps as f64);
            for (reason, n) in &p.invalid {
                invalid.counter(&[l[0], l[1], l[2], ("reason", reason)], *n as f64);
            }
        }
        let l = [("stream", name)];
        s_partitions.gauge(&l, st.partitions.len() as f64);
        s_active.gauge(&l, st.active_partitions as f64);
        s_backlog.gauge(&l, st.backlog_records as f64);
        if let Some(w) = st.watermark_ms {
            s_watermark.gauge(&l, w as f64 / 1000.0);
        }
        if let Some(v) = st.freshness_lag_seconds {
            s_fresh.gauge(&l, v);
        }
        if let Some(v) = st.silence_seconds {
            s_silence.gauge(&l, v);
        }
        if let Some(v) = st.rate_records_per_second {
            s_rate.gauge(&l, v);
        }
        for (bound, v) in [("min", st.min_rate), ("max", st.max_rate)] {
            if let Some(v) = v {
                s_bound.gauge(&[("stream", name), ("bound", bound)], v);
            }
        }
        if let Some(b) = &st.baseline {
            s_history.gauge(&l, b.history_hours as f64 * 3600.0);
            if let Some(band) = b.band {
                for (bound, v) in [("lower", band.lower), ("expected", band.expected), ("upper", band.upper)] {
                    s_expected.gauge(&[("stream", name), ("bound", bound)], v);
                }
            }
        }
        for g in &st.segments {
            seg_overflow.counter(&[("stream", name), ("segment", &g.name)], g.overflow as f64);
            for v in &g.values {
                let labels = [("stream", name), ("segment", g.name.as_str()), ("value", v.value.as_str())];
                seg_records.counter(&labels, v.records as f64);
                if let Some(silence) = v.silence_seconds {
                    seg_silence.gauge(&labels, silence);
                    seg_flowing.gauge(&labels, if v.judged { 1.0 } else { 0.0 });
                }
            }
        }
        s_delay.histogram(&l, &st.record_delay);
        s_gap.histogram(&l, &st.gap_duration);
        for cause in Cause::ALL {
            s_cause.gauge(&[("stream", name), ("cause", cause.as_str())], if st.cause == cause { 1.0 } else { 0.0 });
        }
    }
    for pair in &s.pairs {
        if let Some(v) = pair.sync_lag_seconds {
            sync.gauge(&[("pair", &pair.name), ("leader", &pair.leader), ("follower", &pair.follower)], v);
        }
    }
    vec![
        p_watermark,
        p_last,
        p_end,
        p_pos,
        p_backlog,
        records,
        invalid,
        bytes,
        gaps,
        s_partitions,
        s_active,
        s_backlog,
        s_watermark,
        s_fresh,
        s_silence,
        s_rate,
        s_bound,
        s_expected,
        s_history,
        seg_records,
        seg_silence,
        seg_flowing,
        seg_overflow,
        s_delay,
        s_gap,
        s_cause,
        sync,
    ]
}

/// The watched consumers' series: lag per partition, per stream the largest lag and the
/// consumer's watermark, its sync lag per pair, and its cause.
fn consumer_families(consumers: &[ConsumerSnapshot], granularity: Granularity) -> Vec<Family> {
    use kind::GAUGE;
    let mut committed = Family::new(
        "consumer_committed_offset",
        "The next offset the consumer's group will read, as it committed it.",
        GAUGE,
    );
    let mut lag_records = Family::new("consumer_lag_records", "Log end - committed offset (never negative).", GAUGE);
    let mut lag_seconds = Family::new(
        "consumer_lag_seconds",
        "now - event time of the oldest record the group has not processed (the record at its committed offset); 0 when nothing waits.",
        GAUGE,
    );
    let mut p_watermark = Family::new(
        "consumer_partition_watermark_timestamp_seconds",
        "Event time of the last record the consumer processed on the partition.",
        GAUGE,
    );
    let mut expired = Family::new(
        "consumer_expired_records",
        "Records deleted by retention before the consumer's group read them (log start - committed offset): data loss.",
        GAUGE,
    );
    let mut s_lag_records = Family::new(
        "consumer_stream_lag_records",
        "Log end - committed offset, summed over the stream's partitions where it is known.",
        GAUGE,
    );
    let mut s_expired = Family::new(
        "consumer_stream_expired_records",
        "consumer_expired_records summed over the stream's partitions (present while any partition lost records).",
        GAUGE,
    );
    let mut max_lag = Family::new(
        "consumer_stream_lag_seconds",
        "The largest consumer_lag_seconds over the stream's partitions.",
        GAUGE,
    );
    let mut watermark = Family::new(
        "consumer_watermark_timestamp_seconds",
        "Event time of the last record the consumer processed: min over the stream's active partitions.",
        GAUGE,
    );
    let mut sync = Family::new(
        "consumer_sync_lag_seconds",
        "The pair's sync lag as the consumer sees it: its leader watermark - its follower watermark.",
        GAUGE,
    );
    let mut stalled = Family::new(
        "consumer_stalled_seconds",
        "Time since the group's committed offsets last moved while records waited (0 while nothing waits).",
        GAUGE,
    );
    let mut cause =
        Family::new("consumer_cause", "The consumer's diagnosed state: 1 for the active cause, 0 otherwise.", GAUGE);
    for c in consumers {
        let (name, group) = (c.name.as_str(), c.group.as_str());
        for st in &c.streams {
            let partitions = if granularity == Granularity::Partition { &st.partitions[..] } else { &[] };
            for p in partitions {
                let part = p.partition.to_string();
                let l = [
                    ("consumer", name),
                    ("group", group),
                    ("stream", &st.stream),
                    ("topic", &st.topic),
                    ("partition", &part),
                ];
                if let Some(o) = p.committed_offset {
                    committed.gauge(&l, o as f64);
                }
                if let Some(n) = p.lag_records {
                    lag_records.gauge(&l, n as f64);
                }
                if let Some(s) = p.lag_seconds {
                    lag_seconds.gauge(&l, s);
                }
                if let Some(w) = p.watermark_ms {
                    p_watermark.gauge(&l, w as f64 / 1000.0);
                }
                if let Some(n) = p.expired_records {
                    expired.gauge(&l, n as f64);
                }
            }
            let l = [("consumer", name), ("group", group), ("stream", st.stream.as_str())];
            // sums over the partitions where the figure is known; absent where none is
            let sum = |f: fn(&ConsumerPartitionSnapshot) -> Option<i64>| {
                st.partitions.iter().filter_map(f).fold(None, |acc: Option<i64>, n| Some(acc.unwrap_or(0) + n))
            };
            if let Some(n) = sum(|p| p.lag_records) {
                s_lag_records.gauge(&l, n as f64);
            }
            if let Some(n) = sum(|p| p.expired_records) {
                s_expired.gauge(&l, n as f64);
            }
            if let Some(s) = st.max_lag_seconds {
                max_lag.gauge(&l, s);
            }
            if let Some(w) = st.watermark_ms {
                watermark.gauge(&l, w as f64 / 1000.0);
            }
        }
        for p in &c.pairs {
            if let Some(v) = p.sync_lag_seconds {
                let l = [
                    ("consumer", name),
                    ("group", group),
                    ("pair", &p.pair),
                    ("leader", &p.leader),
                    ("follower", &p.follower),
                ];
                sync.gauge(&l, v);
            }
        }
        stalled.gauge(&[("consumer", name), ("group", group)], c.stalled_seconds);
        for k in ConsumerCause::ALL {
            cause.gauge(
                &[("consumer", name), ("group", group), ("cause", k.as_str())],
                if c.cause == k { 1.0 } else { 0.0 },
            );
        }
    }
    vec![
        committed,
        lag_records,
        lag_seconds,
        p_watermark,
        expired,
        s_lag_records,
        s_expired,
        max_lag,
        watermark,
        sync,
        stalled,
        cause,
    ]
}

/// One `alert_active` series per rule (and the built-in `KafkaUnreachable`) whose labels
/// never change, and the cause a firing alert carries as one series per cause.
fn alert_families(tick: &Tick) -> Vec<Family> {
    use kind::GAUGE;
    let mut active = Family::new("alert_active", "1 while the alert fires, 0 otherwise (pending included).", GAUGE);
    let mut cause = Family::new(
        "alert_cause",
        "The cause a firing alert carries (frozen while it fires): 1 for that cause, 0 otherwise; all 0 while it does not fire.",
        GAUGE,
    );
    let names = AlertCause::names();
    let mut push = |name: &str, severity: &str, firing_with: Option<&str>| {
        active.gauge(&[("alert", name), ("severity", severity)], if firing_with.is_some() { 1.0 } else { 0.0 });
        for c in &names {
            cause.gauge(&[("alert", name), ("cause", c)], if firing_with == Some(*c) { 1.0 } else { 0.0 });
        }
    };
    for a in &tick.alerts {
        push(&a.name, &a.severity, matches!(a.state, AlertState::Firing { .. }).then_some(a.cause.as_str()));
    }
    // The built-in alert is listed only while active; its series are there always.
    if !tick.alerts.iter().any(|a| a.name == kafka_unreachable::ALERT) {
        push(kafka_unreachable::ALERT, kafka_unreachable::SEVERITY, None);
    }
    vec![active, cause]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: &Family) -> String {
        let mut out = String::new();
        f.write(&mut out);
        out
    }

    #[test]
    fn samples_follow_the_text_format() {
        let mut g = Family::new("x", "An x.", kind::GAUGE);
        g.gauge(&[("stream", "a\"b\\c\nd"), ("partition", "3")], 1.5);
        g.gauge(&[], f64::INFINITY);
        g.gauge(&[], 1_795_375_975.123);
        assert_eq!(
            written(&g),
            "# HELP pipewatch_x An x.\n# TYPE pipewatch_x gauge\n\
             pipewatch_x{stream=\"a\\\"b\\\\c\\nd\",partition=\"3\"} 1.5\n\
             pipewatch_x +Inf\npipewatch_x 1795375975.123\n"
        );
        // no samples: no HELP/TYPE either
        assert_eq!(written(&Family::new("y", "A y.", kind::COUNTER)), "");
    }

    #[test]
    fn histograms_end_with_an_inf_bucket_sum_and_count() {
        let mut h = Histogram::new(&[0.5, 2.0]);
        h.observe(0.1);
        h.observe(1.0);
        h.observe(10.0);
        let mut f = Family::new("d", "A d.", kind::HISTOGRAM);
        f.histogram(&[("stream", "s")], &h);
        let text = written(&f);
        let samples: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            samples,
            [
                "pipewatch_d_bucket{stream=\"s\",le=\"0.5\"} 1",
                "pipewatch_d_bucket{stream=\"s\",le=\"2\"} 2",
                "pipewatch_d_bucket{stream=\"s\",le=\"+Inf\"} 3",
                "pipewatch_d_sum{stream=\"s\"} 11.1",
                "pipewatch_d_count{stream=\"s\"} 3",
            ]
        );
    }

    /// The body of one tick of a stream with `partitions` partitions and a consumer, at
    /// `granularity`.
    fn body(partitions: i32, granularity: Granularity) -> String {
        use pipewatch_core::spec::StartPosition;
        let config = crate::config::parse(
            r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders-t"
event_time = { field = "/ts", format = "epoch_millis" }
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["orders"]
"#,
        )
        .unwrap();
        let now = 1_795_375_975_000;
        let mut m = pipewatch_core::Monitor::new(config.settings, config.streams, config.pairs);
        m.set_kafka_status(KafkaStatus::Up, None);
        m.watch_consumer(config.consumers[0].clone(), now);
        let mut committed = Vec::new();
        for p in 0..partitions {
            m.assign(0, p, StartPosition::At(0), now);
            m.log_end(0, p, 2, now);
            m.record(0, p, 0, Some(format!(r#"{{"ts": {}}}"#, now - 5000).as_bytes()), None, now);
            m.record(0, p, 1, Some(b"not json"), None, now);
            committed.push((0, p, Some(1)));
        }
        m.committed_offsets(0, &committed, now);
        let tick = Tick { snapshot: m.tick(now), alerts: Vec::new(), events: Vec::new() };
        let mut out = String::new();
        for f in tick_families(Some(&tick), granularity) {
            f.write(&mut out);
        }
        out
    }

    #[test]
    fn stream_granularity_exports_no_partition_and_sums_the_counters() {
        let text = body(3, Granularity::Stream);
        assert!(!text.contains("partition=\""), "{text}");
        for line in [
            "pipewatch_records_total{stream=\"orders\",topic=\"orders-t\"} 6",
            "pipewatch_records_invalid_total{stream=\"orders\",topic=\"orders-t\",reason=\"not_json\"} 3",
            "pipewatch_stream_partitions{stream=\"orders\"} 3",
            "pipewatch_stream_active_partitions{stream=\"orders\"} 3",
            "pipewatch_stream_backlog_records{stream=\"orders\"} 0",
            "pipewatch_consumer_stream_lag_records{consumer=\"analytics\",group=\"analytics-job\",stream=\"orders\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // the series do not grow with the partitions
        let series = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(series(&text), series(&body(300, Granularity::Stream)));
    }

    #[test]
    fn partition_granularity_exports_every_partition_and_the_stream_series() {
        let text = body(3, Granularity::Partition);
        for line in [
            "pipewatch_records_total{stream=\"orders\",topic=\"orders-t\",partition=\"2\"} 2",
            "pipewatch_partition_log_end_offset{stream=\"orders\",topic=\"orders-t\",partition=\"0\"} 2",
            "pipewatch_consumer_lag_records{consumer=\"analytics\",group=\"analytics-job\",stream=\"orders\",topic=\"orders-t\",partition=\"1\"} 1",
            "pipewatch_stream_partitions{stream=\"orders\"} 3",
            "pipewatch_consumer_stream_lag_records{consumer=\"analytics\",group=\"analytics-job\",stream=\"orders\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let series = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert!(series(&body(30, Granularity::Partition)) > series(&text) + 27 * 10, "{text}");
    }
}
