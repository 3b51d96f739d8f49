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
//! structs for each (then encoding those) took most of a 200 ms scrape. Each family is
//! written into a buffer of its own, sized by the last scrape's, and the buffers are
//! sent as the body's chunks: no buffer grows by copying and the body is never copied
//! whole (those copies and the page faults of their fresh memory were over a third of
//! a scrape at 10 000 partitions).

use std::fmt::Write as _;

use pipewatch_core::alert::AlertState;
use pipewatch_core::diagnosis::{connect_unreachable, kafka_unreachable, AlertCause, ConsumerCause};
use pipewatch_core::histogram::Histogram;
use pipewatch_core::snapshot::{ConsumerPartitionSnapshot, ConsumerSnapshot};
use pipewatch_core::{Cause, KafkaStatus, Snapshot};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::config::Granularity;
use crate::tick::{Tick, TickRx};

pub mod names;

use names::*;

/// The whole exposition in chunks, in order: the registry's counters, then each family
/// of the latest tick (what `/metrics` sends, without joining them).
pub fn render_chunks(registry: &Registry, tick: &TickRx, view: View) -> Result<Vec<String>, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    let counters = String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))?;
    let tick = tick.borrow().clone();
    let families = tick_families(tick.as_deref(), view);
    let mut chunks = vec![counters];
    chunks.extend(families.into_chunks());
    Ok(chunks)
}

/// Which series `/metrics` serves.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// `metrics.granularity`.
    pub granularity: Granularity,
    /// `[discovery].partition_series`: discovered consumers' per-partition series too.
    pub discovered_partitions: bool,
}

/// Each family's size at the last scrape, by id: the next scrape's buffers are sized so.
static LAST_SIZES: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Every family of a tick, in the order of [`names::ALL`]: filled by metric, written
/// in that order.
struct Families(Vec<Family>);

impl Families {
    fn new() -> Self {
        let sizes = LAST_SIZES.lock().map(|s| s.clone()).unwrap_or_default();
        let capacity = |id: usize| sizes.get(id).map_or(0, |n| n + n / 8);
        Self(names::ALL.iter().map(|m| Family::new(m, capacity(m.id))).collect())
    }

    /// The families with samples, each one chunk (its `# HELP`, `# TYPE` and samples);
    /// their sizes kept for the next scrape.
    fn into_chunks(self) -> Vec<String> {
        if let Ok(mut sizes) = LAST_SIZES.lock() {
            *sizes = self.0.iter().map(|f| f.samples.len()).collect();
        }
        self.0.into_iter().filter(|f| f.has_samples()).map(|f| f.samples).collect()
    }

    fn gauge(&mut self, m: &Metric, labels: &[(&str, &str)], value: f64) {
        self.0[m.id].gauge(labels, value);
    }

    fn counter(&mut self, m: &Metric, labels: &[(&str, &str)], value: f64) {
        self.0[m.id].counter(labels, value);
    }

    fn histogram(&mut self, m: &Metric, labels: &[(&str, &str)], h: &Histogram) {
        self.0[m.id].histogram(labels, h);
    }

    #[cfg(test)]
    fn write(self, out: &mut String) {
        for chunk in self.into_chunks() {
            out.push_str(&chunk);
        }
    }
}

/// One metric family in the text format: its `# HELP` and `# TYPE` lines, then its
/// samples.
struct Family {
    metric: &'static Metric,
    samples: String,
    /// Where the samples start (after the two header lines).
    header: usize,
}

impl Family {
    fn new(metric: &'static Metric, capacity: usize) -> Self {
        let mut samples = String::with_capacity(capacity);
        let _ = writeln!(samples, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(samples, "# TYPE {} {}", metric.name, metric.kind.as_str());
        Self { metric, header: samples.len(), samples }
    }

    /// A family without samples is left out (e.g. no sync lag before the first records).
    fn has_samples(&self) -> bool {
        self.samples.len() > self.header
    }

    /// One line: `name{labels} value`.
    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<f64>, value: f64) {
        let out = &mut self.samples;
        out.push_str(self.metric.name);
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
/// Whole numbers (offsets, counts: most samples) are written as integers, which is the
/// same text and a fraction of the float formatting's cost.
fn number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if v.is_finite() {
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
fn tick_families(tick: Option<&Tick>, view: View) -> Families {
    let mut f = Families::new();
    f.gauge(&KAFKA_UP, &[], if tick.is_some_and(|t| t.snapshot.kafka == KafkaStatus::Up) { 1.0 } else { 0.0 });
    f.gauge(&BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    if let Some(t) = tick {
        snapshot_families(&mut f, &t.snapshot, view.granularity);
        consumer_families(&mut f, &t.snapshot.consumers, view);
        connect_families(&mut f, &t.snapshot);
        discovery_families(&mut f, &t.snapshot);
        alert_families(&mut f, t);
    }
    f
}

fn snapshot_families(f: &mut Families, s: &Snapshot, granularity: Granularity) {
    if let Some(r) = &s.schema_registry {
        f.gauge(&SCHEMA_REGISTRY_UP, &[], if r.status == KafkaStatus::Up { 1.0 } else { 0.0 });
    }
    for st in &s.streams {
        let name = st.name.as_str();
        // a discovered topic's stream is one of hundreds: no histograms, the invalid
        // reasons once counted, its cause alone (see docs/metrics.md)
        let lean = st.discovered;
        let counted = |n: &u64| !lean || *n > 0;
        // summed per topic of the stream (one for most streams)
        let topics = if granularity == Granularity::Stream { &st.topics[..] } else { &[] };
        for t in topics {
            let l = [("stream", name), ("topic", &*t.name)];
            f.counter(&RECORDS_TOTAL, &l, t.records as f64);
            f.counter(&RECORD_BYTES_TOTAL, &l, t.bytes as f64);
            f.counter(&GAPS_TOTAL, &l, t.gaps as f64);
            for (reason, n) in t.invalid.iter().filter(|(_, n)| counted(n)) {
                f.counter(&RECORDS_INVALID_TOTAL, &[l[0], l[1], ("reason", reason)], *n as f64);
            }
        }
        let partitions = if granularity == Granularity::Partition { &st.partitions[..] } else { &[] };
        for p in partitions {
            let part = p.partition.to_string();
            let l: [(&str, &str); 3] = [("stream", name), ("topic", &p.topic), ("partition", &part)];
            if let Some(w) = p.watermark_ms {
                f.gauge(&PARTITION_WATERMARK_TIMESTAMP_SECONDS, &l, w as f64 / 1000.0);
            }
            if let Some(t) = p.last_record_ms {
                f.gauge(&PARTITION_LAST_RECORD_TIMESTAMP_SECONDS, &l, t as f64 / 1000.0);
            }
            if let Some(o) = p.log_end_offset {
                f.gauge(&PARTITION_LOG_END_OFFSET, &l, o as f64);
            }
            if let Some(o) = p.position_offset {
                f.gauge(&PARTITION_POSITION_OFFSET, &l, o as f64);
            }
            if let Some(b) = p.backlog_records {
                f.gauge(&PARTITION_BACKLOG_RECORDS, &l, b as f64);
            }
            f.counter(&RECORDS_TOTAL, &l, p.records as f64);
            f.counter(&RECORD_BYTES_TOTAL, &l, p.bytes as f64);
            f.counter(&GAPS_TOTAL, &l, p.gaps as f64);
            for (reason, n) in p.invalid.iter().filter(|(_, n)| counted(n)) {
                f.counter(&RECORDS_INVALID_TOTAL, &[l[0], l[1], l[2], ("reason", reason)], *n as f64);
            }
        }
        let l = [("stream", name)];
        if s.schema_registry.is_some() {
            f.counter(&STREAM_SCHEMA_CHANGES_TOTAL, &l, st.schema_changes as f64);
        }
        f.gauge(&STREAM_PARTITIONS, &l, st.partitions.len() as f64);
        f.gauge(&STREAM_ACTIVE_PARTITIONS, &l, st.active_partitions as f64);
        f.gauge(&STREAM_BACKLOG_RECORDS, &l, st.backlog_records as f64);
        if let Some(w) = st.watermark_ms {
            f.gauge(&STREAM_WATERMARK_TIMESTAMP_SECONDS, &l, w as f64 / 1000.0);
        }
        if let Some(v) = st.freshness_lag_seconds {
            f.gauge(&STREAM_FRESHNESS_LAG_SECONDS, &l, v);
        }
        if let Some(v) = st.silence_seconds {
            f.gauge(&STREAM_SILENCE_SECONDS, &l, v);
        }
        if let Some(v) = st.rate_records_per_second {
            f.gauge(&STREAM_RATE_RECORDS_PER_SECOND, &l, v);
        }
        for (bound, v) in [("min", st.min_rate), ("max", st.max_rate)] {
            if let Some(v) = v {
                f.gauge(&STREAM_RATE_BOUND_RECORDS_PER_SECOND, &[("stream", name), ("bound", bound)], v);
            }
        }
        if let Some(b) = &st.baseline {
            f.gauge(&STREAM_BASELINE_HISTORY_SECONDS, &l, b.history_hours as f64 * 3600.0);
            if let Some(band) = b.band {
                for (bound, v) in [("lower", band.lower), ("expected", band.expected), ("upper", band.upper)] {
                    f.gauge(&STREAM_RATE_EXPECTED_RECORDS_PER_SECOND, &[("stream", name), ("bound", bound)], v);
                }
            }
        }
        for g in &st.segments {
            f.counter(&SEGMENT_OVERFLOW_RECORDS_TOTAL, &[("stream", name), ("segment", &g.name)], g.overflow as f64);
            for v in &g.values {
                let labels = [("stream", name), ("segment", g.name.as_str()), ("value", v.value.as_str())];
                f.counter(&SEGMENT_RECORDS_TOTAL, &labels, v.records as f64);
                if let Some(silence) = v.silence_seconds {
                    f.gauge(&SEGMENT_SILENCE_SECONDS, &labels, silence);
                    f.gauge(&SEGMENT_USED_TO_FLOW, &labels, if v.judged { 1.0 } else { 0.0 });
                }
            }
        }
        if !lean {
            f.histogram(&STREAM_RECORD_DELAY_SECONDS, &l, &st.record_delay);
            f.histogram(&GAP_DURATION_SECONDS, &l, &st.gap_duration);
        }
        for cause in Cause::ALL.into_iter().filter(|c| !lean || st.cause == *c) {
            f.gauge(
                &STREAM_CAUSE,
                &[("stream", name), ("cause", cause.as_str())],
                if st.cause == cause { 1.0 } else { 0.0 },
            );
        }
    }
    for pair in &s.pairs {
        if let Some(v) = pair.sync_lag_seconds {
            f.gauge(
                &SYNC_LAG_SECONDS,
                &[("pair", &pair.name), ("leader", &pair.leader), ("follower", &pair.follower)],
                v,
            );
        }
        if let Some(j) = &pair.join {
            join_families(f, &pair.name, j);
        }
    }
}

/// A pair's join: outcomes and ratio for all and per segment value, what waits, the keys.
fn join_families(f: &mut Families, pair: &str, j: &pipewatch_core::join::JoinSnapshot) {
    let rows = std::iter::once((None, &j.total, j.ratio))
        .chain(j.values.iter().map(|v| (Some((v.segment.as_str(), v.value.as_str())), &v.total, v.ratio)));
    for (by, total, ratio) in rows {
        // all of the leader's records: segment and value empty (to Prometheus, absent)
        let (segment, value) = by.unwrap_or_default();
        for (outcome, n) in [("matched", total.matched), ("missing", total.missing), ("unjudged", total.unjudged)] {
            let labels = [("pair", pair), ("outcome", outcome), ("segment", segment), ("value", value)];
            f.counter(&JOIN_RECORDS_TOTAL, &labels, n as f64);
        }
        if let Some(r) = ratio {
            f.gauge(&JOIN_COMPLETENESS_RATIO, &[("pair", pair), ("segment", segment), ("value", value)], r);
        }
    }
    f.gauge(&JOIN_PENDING_RECORDS, &[("pair", pair)], j.pending as f64);
    if let Some(age) = j.pending_oldest_seconds {
        f.gauge(&JOIN_PENDING_OLDEST_SECONDS, &[("pair", pair)], age);
    }
    f.gauge(&JOIN_FOLLOWER_KEYS, &[("pair", pair)], j.follower_keys as f64);
}

/// The watched consumers' series: lag per partition, per stream the largest lag and the
/// consumer's watermark, its sync lag per pair, and its cause.
fn consumer_families(f: &mut Families, consumers: &[ConsumerSnapshot], view: View) {
    for c in consumers {
        let (name, group) = (c.name.as_str(), c.group.as_str());
        // a group [discovery] found: per stream only, unless asked
        let by_discovery = c.discovered && c.sink.is_none();
        let per_partition = view.granularity == Granularity::Partition && (view.discovered_partitions || !by_discovery);
        for st in &c.streams {
            let partitions = if per_partition { &st.partitions[..] } else { &[] };
            for p in partitions {
                let part = p.partition.to_string();
                let l = [
                    ("consumer", name),
                    ("group", group),
                    ("stream", &st.stream),
                    ("topic", &p.topic),
                    ("partition", &part),
                ];
                if let Some(o) = p.committed_offset {
                    f.gauge(&CONSUMER_COMMITTED_OFFSET, &l, o as f64);
                }
                if let Some(n) = p.lag_records {
                    f.gauge(&CONSUMER_LAG_RECORDS, &l, n as f64);
                }
                if let Some(s) = p.lag_seconds {
                    f.gauge(&CONSUMER_LAG_SECONDS, &l, s);
                }
                if let Some(w) = p.watermark_ms {
                    f.gauge(&CONSUMER_PARTITION_WATERMARK_TIMESTAMP_SECONDS, &l, w as f64 / 1000.0);
                }
                if let Some(n) = p.expired_records {
                    f.gauge(&CONSUMER_EXPIRED_RECORDS, &l, n as f64);
                }
            }
            let l = [("consumer", name), ("group", group), ("stream", st.stream.as_str())];
            // sums over the partitions where the figure is known; absent where none is
            let sum = |f: fn(&ConsumerPartitionSnapshot) -> Option<i64>| {
                st.partitions.iter().filter_map(f).fold(None, |acc: Option<i64>, n| Some(acc.unwrap_or(0) + n))
            };
            if let Some(n) = sum(|p| p.lag_records) {
                f.gauge(&CONSUMER_STREAM_LAG_RECORDS, &l, n as f64);
            }
            if let Some(n) = sum(|p| p.expired_records) {
                f.gauge(&CONSUMER_STREAM_EXPIRED_RECORDS, &l, n as f64);
            }
            if let Some(s) = st.max_lag_seconds {
                f.gauge(&CONSUMER_STREAM_LAG_SECONDS, &l, s);
            }
            if let Some(w) = st.watermark_ms {
                f.gauge(&CONSUMER_WATERMARK_TIMESTAMP_SECONDS, &l, w as f64 / 1000.0);
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
                f.gauge(&CONSUMER_SYNC_LAG_SECONDS, &l, v);
            }
        }
        f.gauge(&CONSUMER_STALLED_SECONDS, &[("consumer", name), ("group", group)], c.stalled_seconds);
        let discovered = if c.discovered { "true" } else { "false" };
        for k in ConsumerCause::ALL {
            f.gauge(
                &CONSUMER_CAUSE,
                &[("consumer", name), ("group", group), ("cause", k.as_str()), ("discovered", discovered)],
                if c.cause == k { 1.0 } else { 0.0 },
            );
        }
    }
}

/// `[discovery]`: the groups watched, the overflow, the last listing; the topics.
fn discovery_families(f: &mut Families, s: &Snapshot) {
    if let Some(d) = &s.topic_discovery {
        f.gauge(&DISCOVERY_TOPICS_WATCHED, &[], d.watched as f64);
        f.gauge(&DISCOVERY_TOPICS_OVERFLOW, &[], d.overflow as f64);
    }
    let Some(d) = &s.discovery else { return };
    f.gauge(&DISCOVERY_GROUPS_WATCHED, &[], d.watched as f64);
    f.gauge(&DISCOVERY_GROUPS_OVERFLOW, &[], d.overflow as f64);
    if let (Some(at), None) = (d.listed_at_ms, &d.error) {
        f.gauge(&DISCOVERY_LISTED_TIMESTAMP_SECONDS, &[], at as f64 / 1000.0);
    }
}

/// The Kafka Connect clusters, their connectors and tasks (one series per state), and
/// which stream or consumer each connector is.
fn connect_families(f: &mut Families, s: &Snapshot) {
    use pipewatch_core::connect::ConnectorState;
    for k in &s.connect {
        let connect = k.name.as_str();
        f.gauge(&CONNECT_UP, &[("connect", connect)], if k.answers() { 1.0 } else { 0.0 });
        for c in &k.connectors {
            let (connector, kind) = (c.name.as_str(), c.kind.as_str());
            for state in ConnectorState::ALL {
                let l = [("connect", connect), ("connector", connector), ("type", kind), ("state", state.as_str())];
                f.gauge(&CONNECTOR_STATE, &l, if c.state == state { 1.0 } else { 0.0 });
            }
            for t in &c.tasks {
                let task = t.id.to_string();
                for state in ConnectorState::ALL {
                    let l = [
                        ("connect", connect),
                        ("connector", connector),
                        ("type", kind),
                        ("task", task.as_str()),
                        ("state", state.as_str()),
                    ];
                    f.gauge(&CONNECTOR_TASK_STATE, &l, if t.state == state { 1.0 } else { 0.0 });
                }
            }
            f.counter(&CONNECTOR_FAILURES_TOTAL, &[("connect", connect), ("connector", connector)], c.failures as f64);
            for st in s.streams.iter().filter(|st| st.topics.iter().any(|t| c.writes(&t.name))) {
                let l = [
                    ("connect", connect),
                    ("connector", connector),
                    ("role", "source"),
                    ("stream", st.name.as_str()),
                    ("consumer", ""),
                ];
                f.gauge(&CONNECTOR_STREAM, &l, 1.0);
            }
            for cs in s.consumers.iter().filter(|cs| c.group.as_deref() == Some(cs.group.as_str())) {
                for st in &cs.streams {
                    let l = [
                        ("connect", connect),
                        ("connector", connector),
                        ("role", "sink"),
                        ("stream", st.stream.as_str()),
                        ("consumer", cs.name.as_str()),
                    ];
                    f.gauge(&CONNECTOR_STREAM, &l, 1.0);
                }
            }
        }
    }
}

/// One `alert_active` series per rule (and the built-in `KafkaUnreachable`) whose labels
/// never change, and the cause a firing alert carries as one series per cause. A rule of
/// several instances (`ConnectUnreachable` per cluster, a rule over discovered consumers)
/// is one series, firing while any instance fires, with every cause they carry.
fn alert_families(f: &mut Families, tick: &Tick) {
    let names = AlertCause::names();
    let mut push = |name: &str, severity: &str, firing_with: &[&str]| {
        f.gauge(
            &ALERT_ACTIVE,
            &[("alert", name), ("severity", severity)],
            if firing_with.is_empty() { 0.0 } else { 1.0 },
        );
        for c in &names {
            f.gauge(&ALERT_CAUSE, &[("alert", name), ("cause", c)], if firing_with.contains(c) { 1.0 } else { 0.0 });
        }
    };
    // the rules in their order, each with the causes its firing instances carry
    let mut rules: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    let mut at = std::collections::HashMap::new();
    for a in &tick.alerts {
        let i = *at.entry(a.name.as_str()).or_insert_with(|| {
            rules.push((&a.name, &a.severity, Vec::new()));
            rules.len() - 1
        });
        if matches!(a.state, AlertState::Firing { .. }) {
            rules[i].2.push(a.cause.as_str());
        }
    }
    for (name, severity, firing) in &rules {
        push(name, severity, firing);
    }
    // The built-in alerts are listed only while active; their series are there always.
    if !tick.alerts.iter().any(|a| a.name == kafka_unreachable::ALERT) {
        push(kafka_unreachable::ALERT, kafka_unreachable::SEVERITY, &[]);
    }
    if !tick.snapshot.connect.is_empty() && !tick.alerts.iter().any(|a| a.name == connect_unreachable::ALERT) {
        push(connect_unreachable::ALERT, connect_unreachable::SEVERITY, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: &Family) -> String {
        if f.has_samples() {
            f.samples.clone()
        } else {
            String::new()
        }
    }

    #[test]
    fn samples_follow_the_text_format() {
        const X: Metric = Metric { id: 0, name: "pipewatch_x", help: "An x.", kind: Kind::Gauge, labels: &[] };
        const Y: Metric = Metric { id: 0, name: "pipewatch_y", help: "A y.", kind: Kind::Counter, labels: &[] };
        let mut g = Family::new(&X, 0);
        g.gauge(&[("stream", "a\"b\\c\nd"), ("partition", "3")], 1.5);
        g.gauge(&[], f64::INFINITY);
        g.gauge(&[], 1_795_375_975.123);
        g.gauge(&[], 42.0);
        g.gauge(&[], -0.0);
        g.gauge(&[], 1e300);
        assert_eq!(
            written(&g),
            format!(
                "# HELP pipewatch_x An x.\n# TYPE pipewatch_x gauge\n\
                 pipewatch_x{{stream=\"a\\\"b\\\\c\\nd\",partition=\"3\"}} 1.5\n\
                 pipewatch_x +Inf\npipewatch_x 1795375975.123\npipewatch_x 42\npipewatch_x 0\npipewatch_x {}\n",
                1e300
            )
        );
        // no samples: no HELP/TYPE either
        assert_eq!(written(&Family::new(&Y, 0)), "");
    }

    #[test]
    fn histograms_end_with_an_inf_bucket_sum_and_count() {
        let mut h = Histogram::new(&[0.5, 2.0]);
        h.observe(0.1);
        h.observe(1.0);
        h.observe(10.0);
        const D: Metric =
            Metric { id: 0, name: "pipewatch_d", help: "A d.", kind: Kind::Histogram, labels: &["stream"] };
        let mut f = Family::new(&D, 0);
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
            m.assign_partition(0, 0, p, StartPosition::At(0), now);
            m.log_end(0, p, 2, now);
            m.record(0, p, 0, Some(format!(r#"{{"ts": {}}}"#, now - 5000).as_bytes()), None, now);
            m.record(0, p, 1, Some(b"not json"), None, now);
            committed.push(pipewatch_core::Committed { stream: 0, slot: p, offset: Some(1) });
        }
        m.committed_offsets(0, &committed, now);
        let tick = Tick { snapshot: m.tick(now), alerts: Vec::new(), events: Vec::new() };
        let mut out = String::new();
        tick_families(Some(&tick), View { granularity, discovered_partitions: true }).write(&mut out);
        out
    }

    /// Every sample of a rendered tick belongs to a declared family and carries exactly
    /// its declared labels (`partition` only at partition granularity).
    #[test]
    fn every_sample_carries_the_labels_its_family_declares() {
        for granularity in [Granularity::Partition, Granularity::Stream] {
            let text = body(2, granularity);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
                let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
                let family = names::ALL
                    .iter()
                    .find(|m| {
                        name == m.name
                            || (m.kind == Kind::Histogram
                                && ["_bucket", "_sum", "_count"].iter().any(|s| name == format!("{}{s}", m.name)))
                    })
                    .unwrap_or_else(|| panic!("{name} is not declared in metrics::names"));
                let written: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split('=').next().unwrap_or(""))
                    .filter(|l| *l != "le")
                    .collect();
                let declared: Vec<&str> = family
                    .labels
                    .iter()
                    .copied()
                    .filter(|l| *l != "partition" || granularity == Granularity::Partition)
                    .collect();
                assert_eq!(written, declared, "{line}");
            }
        }
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

    /// The families docs/metrics.md lists: name → (type, labels).
    pub(crate) fn documented() -> std::collections::BTreeMap<String, (String, Vec<String>)> {
        let docs = include_str!("../../../../docs/metrics.md");
        docs.lines()
            .filter(|l| l.starts_with("| `pipewatch_"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cells[1].trim_matches('`').to_string();
                let labels = cells[3].split(',').map(|c| c.trim().trim_matches('`').to_string());
                (name, (cells[2].to_string(), labels.filter(|l| !l.is_empty() && l != "—").collect()))
            })
            .collect()
    }

    #[tokio::test]
    async fn every_family_is_in_the_metrics_reference_with_its_type_and_labels() {
        let docs = documented();
        let mut declared: Vec<(String, String, Vec<String>)> = names::ALL
            .iter()
            .map(|m| {
                (m.name.to_string(), m.kind.as_str().to_string(), m.labels.iter().map(|l| l.to_string()).collect())
            })
            .collect();
        // the source's and the receivers' own, as their crates register them
        let registry = prometheus::Registry::new();
        let source = pipewatch_kafka::SourceMetrics::register(&registry).unwrap();
        source.error(pipewatch_kafka::ErrorKind::Other);
        source.history_requests.inc();
        let delivery = pipewatch_alert::DeliveryMetrics::register(&registry).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let receiver = pipewatch_alert::ReceiverConfig {
            name: "hook".into(),
            kind: pipewatch_alert::ReceiverKind::Webhook,
            url: "http://127.0.0.1:9/".into(),
            timeout: std::time::Duration::from_secs(1),
            resend_interval: std::time::Duration::from_secs(60),
            queue_capacity: 1,
            access: pipewatch_alert::Access::default(),
        };
        let _receivers = pipewatch_alert::Delivery::start(vec![receiver], "http://x".into(), &delivery, stop.clone());
        crate::registry::RegistryMetrics::register(&registry).unwrap();
        for f in registry.gather() {
            let labels = f.get_metric().first().map(|m| m.get_label().iter().map(|l| l.name().to_string()).collect());
            let kind = format!("{:?}", f.get_field_type()).to_lowercase();
            declared.push((f.name().to_string(), kind, labels.unwrap_or_default()));
        }
        for (name, kind, labels) in &declared {
            match docs.get(name) {
                Some((k, l)) => assert_eq!((k, l), (kind, labels), "{name} in docs/metrics.md"),
                None => panic!("{name} is not in docs/metrics.md"),
            }
        }
        for name in docs.keys() {
            assert!(declared.iter().any(|(n, _, _)| n == name), "docs/metrics.md lists {name}, which is not exported");
        }
        stop.cancel();
    }
}
