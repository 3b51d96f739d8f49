//! `/metrics`: the monitor's and the alert rules' series are rendered at scrape time
//! from the latest [`Tick`], so what Prometheus sees is exactly what /api/v1/status
//! shows, series of revoked partitions go with them, and no series carries a stand-in
//! value (an unknown value is an absent series). The source's and the receivers' own
//! counters are registered by their crates (`SourceMetrics`, `DeliveryMetrics`).

use pipewatch_core::alert::AlertState;
use pipewatch_core::consumer::ConsumerSnapshot;
use pipewatch_core::diagnosis::{kafka_unreachable, AlertCause, ConsumerCause};
use pipewatch_core::histogram::Histogram;
use pipewatch_core::{Cause, KafkaStatus, Snapshot};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::tick::{Tick, TickRx};

/// Renders the monitor's and the alert rules' series on each scrape.
pub struct MonitorCollector {
    tick: TickRx,
}

impl MonitorCollector {
    pub fn register(registry: &Registry, tick: TickRx) -> prometheus::Result<()> {
        registry.register(Box::new(Self { tick }))
    }
}

/// Encodes everything in `registry` in the text exposition format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

struct Family(MetricFamily);

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Self {
        let mut f = MetricFamily::default();
        f.set_name(format!("pipewatch_{name}"));
        f.set_help(help.into());
        f.set_field_type(kind);
        Self(f)
    }

    /// Adds a sample with these labels; `set` fills in its value.
    fn push(&mut self, labels: &[(&str, &str)], set: impl FnOnce(&mut Metric)) {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name((*k).into());
                    l.set_value((*v).into());
                    l
                })
                .collect(),
        );
        set(&mut m);
        self.0.mut_metric().push(m);
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        self.push(labels, |m| m.set_gauge(g));
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut c = Counter::default();
        c.set_value(value);
        self.push(labels, |m| m.set_counter(c));
    }

    fn histogram(&mut self, labels: &[(&str, &str)], h: &Histogram) {
        let mut ph = prometheus::proto::Histogram::default();
        ph.set_sample_count(h.count());
        ph.set_sample_sum(h.sum());
        ph.set_bucket(
            h.cumulative()
                .map(|(le, count)| {
                    let mut b = Bucket::default();
                    b.set_upper_bound(le);
                    b.set_cumulative_count(count);
                    b
                })
                .collect(),
        );
        self.push(labels, |m| m.set_histogram(ph));
    }
}

impl Collector for MonitorCollector {
    fn desc(&self) -> Vec<&Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use MetricType::GAUGE;
        let mut kafka_up = Family::new("kafka_up", "1 when the Kafka cluster answers the log-end poll, else 0.", GAUGE);
        let mut build = Family::new("build_info", "pipewatch's version; always 1.", GAUGE);
        build.gauge(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        let tick = self.tick.borrow().clone();
        kafka_up.gauge(&[], if tick.as_ref().is_some_and(|t| t.snapshot.kafka == KafkaStatus::Up) { 1.0 } else { 0.0 });
        let mut out = vec![kafka_up, build];
        if let Some(t) = tick {
            out.extend(snapshot_families(&t.snapshot));
            out.extend(consumer_families(&t.snapshot.consumers));
            out.extend(alert_families(&t));
        }
        // A family with no sample (e.g. no sync lag before the first records) is left out.
        out.into_iter().map(|f| f.0).filter(|f| !f.get_metric().is_empty()).collect()
    }
}

fn snapshot_families(s: &Snapshot) -> Vec<Family> {
    use MetricType::{COUNTER, GAUGE, HISTOGRAM};
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
        for p in &st.partitions {
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
        s_watermark,
        s_fresh,
        s_silence,
        s_rate,
        s_bound,
        s_delay,
        s_gap,
        s_cause,
        sync,
    ]
}

/// The watched consumers' series: lag per partition, per stream the largest lag and the
/// consumer's watermark, its sync lag per pair, and its cause.
fn consumer_families(consumers: &[ConsumerSnapshot]) -> Vec<Family> {
    use MetricType::GAUGE;
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
            for p in &st.partitions {
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
    vec![committed, lag_records, lag_seconds, p_watermark, expired, max_lag, watermark, sync, stalled, cause]
}

/// One `alert_active` series per rule (and the built-in `KafkaUnreachable`) whose labels
/// never change, and the cause a firing alert carries as one series per cause.
fn alert_families(tick: &Tick) -> Vec<Family> {
    use MetricType::GAUGE;
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
