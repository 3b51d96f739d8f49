//! The config file (TOML): raw serde structs that reject unknown keys, then
//! [`RawConfig::validate`], which reports every problem at once with its key path and
//! returns the validated [`Config`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pipewatch_alert::{ReceiverConfig, ReceiverKind, Secret};
use pipewatch_core::alert::{AlertKind, AlertRule, AlertTarget, TargetKind};
use pipewatch_core::baseline::BaselineSpec;
use pipewatch_core::segment::SegmentSpec;
use pipewatch_core::spec::ConsumerSpec;
use pipewatch_core::time::parse_duration;
use pipewatch_core::{EventTimeSource, Extractor, JsonPointer, MonitorSettings, PairSpec, StreamSpec, TimeFormat};
use pipewatch_kafka::{SourceConfig, Start};
use serde::Deserialize;

/// The whole file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The cluster to read and how.
    pub kafka: RawKafka,
    /// The one HTTP listener (/metrics, /healthz, /readyz, /api/v1/status, /).
    #[serde(default)]
    pub http: RawHttp,
    /// How the monitor measures.
    #[serde(default)]
    pub monitor: RawMonitor,
    /// What /metrics exports.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// How pipewatch stops.
    #[serde(default)]
    pub shutdown: RawShutdown,
    /// The streams to watch, one topic each.
    #[serde(default, rename = "stream")]
    pub streams: Vec<RawStream>,
    /// Streams that downstream jobs join: their sync lag is measured.
    #[serde(default, rename = "pair")]
    pub pairs: Vec<RawPair>,
    /// Downstream jobs whose groups' committed offsets are watched (never joined).
    #[serde(default, rename = "consumer")]
    pub consumers: Vec<RawConsumer>,
    /// Alert rules on streams and pairs.
    #[serde(default, rename = "alert")]
    pub alerts: Vec<RawAlert>,
    /// Where alerts are delivered.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<RawReceiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub name: String,
    /// `alertmanager` (its v2 API) or `webhook` (Alertmanager's webhook payload).
    pub kind: String,
    /// Alertmanager's base URL, or the webhook's URL.
    pub url: String,
    /// How long one request may take.
    #[serde(default = "default_receiver_timeout")]
    pub timeout: String,
    /// Alertmanager: how often firing alerts are re-sent (their `endsAt` is 4× ahead).
    #[serde(default = "default_resend_interval")]
    pub resend_interval: String,
    /// How many alerts (Alertmanager) or transitions (webhook) may wait; beyond, the
    /// oldest are dropped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// A CA certificate (PEM file) to trust for an https:// URL, besides the system's.
    pub ca_file: Option<String>,
    /// A file holding a token sent as `Authorization: Bearer <token>`.
    pub bearer_token_file: Option<String>,
    /// HTTP basic auth, the password read from a file.
    pub basic_auth: Option<RawBasicAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    /// A file holding the password (secrets live in files, never in the config).
    pub password_file: String,
}

/// A secret from a file, without its trailing newline; the problem, keyed, if unreadable.
fn secret_file(path: &str, key: String, p: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim_end_matches(['\n', '\r']).is_empty() => {
            p.add(key, format!("{path:?} is empty"));
            None
        }
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => {
            p.add(key, format!("cannot read {path:?}: {e}"));
            None
        }
    }
}

fn default_receiver_timeout() -> String {
    "10s".into()
}
fn default_resend_interval() -> String {
    "1m".into()
}
fn default_queue_capacity() -> usize {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Where to reach the cluster, `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// pipewatch's own consumer group: replicas sharing it split the partitions. Its
    /// offsets are never committed.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where reading starts: `earliest`, `latest` or `lookback`.
    #[serde(default = "default_start")]
    pub start: String,
    /// With `start = "lookback"`: how much history to replay at start.
    #[serde(default = "default_lookback")]
    pub lookback: String,
    /// Passed to librdkafka as they are (TLS, SASL, timeouts, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_group_id() -> String {
    "pipewatch".into()
}
fn default_start() -> String {
    "lookback".into()
}
fn default_lookback() -> String {
    "15m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Address of the HTTP listener; loopback by default, so nothing is exposed unasked.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How people reach this listener (behind a proxy, a Service, …), for the links in
    /// alerts; default `http://<listen>`.
    pub external_url: Option<String>,
    /// TLS and basic auth for the listener, in the Prometheus exporter-toolkit's format
    /// (the file node_exporter's `--web.config.file` reads).
    pub web_config_file: Option<String>,
    /// `/healthz` and `/readyz` answer without basic auth (Kubernetes probes).
    #[serde(default)]
    pub probes_without_auth: bool,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self { listen: default_listen(), external_url: None, web_config_file: None, probes_without_auth: false }
    }
}

pub fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `partition` (every partition's series: what small clusters want) or `stream` (per
    /// stream and consumer only: a few hundred series for a cluster of 10 000 partitions).
    #[serde(default = "default_granularity")]
    pub granularity: String,
}

fn default_granularity() -> String {
    "partition".into()
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self { granularity: default_granularity() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// On SIGTERM, queued notifications (resolves included) are still delivered for up
    /// to this long: a receiver that is down while pipewatch restarts loses nothing.
    #[serde(default = "default_shutdown_grace")]
    pub grace: String,
}

fn default_shutdown_grace() -> String {
    "10s".into()
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self { grace: default_shutdown_grace() }
    }
}

/// How finely /metrics (and the rules generated for it) break the figures down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Every partition's series, and the stream's.
    Partition,
    /// The streams' and consumers' series only; the counters summed per stream.
    Stream,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Partition => "partition",
            Granularity::Stream => "stream",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// How often snapshots are taken, log ends polled and metrics refreshed.
    #[serde(default = "default_tick")]
    pub tick: String,
    /// A partition with no record for this long no longer holds the stream watermark back.
    #[serde(default = "default_idle_partition_timeout")]
    pub idle_partition_timeout: String,
    /// The window of the record rate and of the median record delay.
    #[serde(default = "default_rate_window")]
    pub rate_window: String,
    /// Event times further ahead of arrival than this are invalid (`future_timestamp`).
    #[serde(default = "default_max_future_skew")]
    pub max_future_skew: String,
}

fn default_tick() -> String {
    "1s".into()
}
fn default_idle_partition_timeout() -> String {
    "5m".into()
}
fn default_rate_window() -> String {
    "1m".into()
}
fn default_max_future_skew() -> String {
    "5m".into()
}

impl Default for RawMonitor {
    fn default() -> Self {
        Self {
            tick: default_tick(),
            idle_partition_timeout: default_idle_partition_timeout(),
            rate_window: default_rate_window(),
            max_future_skew: default_max_future_skew(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    /// The stream's name in metrics, alerts and pairs.
    pub name: String,
    /// The topic it reads.
    pub topic: String,
    /// Where records carry their event time.
    pub event_time: RawEventTime,
    /// A partition whose log end stops advancing for longer is silent: a gap opens.
    #[serde(default = "default_max_silence")]
    pub max_silence: String,
    /// A median record delay above this is `event_time_delayed`.
    #[serde(default = "default_max_record_delay")]
    pub max_record_delay: String,
    /// Below this many records per second the stream is `volume_low` (unset: no bound).
    pub min_rate: Option<f64>,
    /// Above this many records per second the stream is `volume_high` (unset: no bound).
    pub max_rate: Option<f64>,
    /// An expected rate per hour of the week learned from the topic's history
    /// (`volume_anomaly`); off unless set.
    pub baseline: Option<RawBaseline>,
    /// Low-cardinality fields counted per value (`segment_silent`).
    #[serde(default)]
    pub segments: Vec<RawSegment>,
    /// Distinct values kept per segment; later ones count as `other`.
    #[serde(default = "default_max_segment_values")]
    pub max_segment_values: usize,
}

fn default_max_segment_values() -> usize {
    pipewatch_core::segment::DEFAULT_MAX_VALUES
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// The `segment` label.
    pub name: String,
    /// JSON pointer to the field, e.g. `/channel`.
    pub field: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    /// How far back the history is read from the broker (at most the topic's retention).
    #[serde(default = "default_baseline_history")]
    pub history: String,
    /// The band's half-width in robust standard deviations (MAD × 1.4826).
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// The band is at least this share of the expected rate either side (0–1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The band is at least this many records/s either side (> 0): tiny absolute
    /// changes never alert.
    #[serde(default = "default_floor")]
    pub floor: f64,
}

fn default_baseline_history() -> String {
    "14d".into()
}
fn default_sensitivity() -> f64 {
    3.0
}
fn default_tolerance() -> f64 {
    0.2
}
fn default_floor() -> f64 {
    1.0
}

fn default_max_silence() -> String {
    "2m".into()
}
fn default_max_record_delay() -> String {
    "10m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventTime {
    /// JSON pointer to the field, e.g. `/created_at`.
    pub field: Option<String>,
    /// `rfc3339`, `epoch_seconds`, `epoch_millis` or `epoch_micros`.
    pub format: Option<String>,
    /// `kafka_timestamp`: use the Kafka message timestamp instead of a field.
    pub source: Option<String>,
}

/// A threshold: a duration for lag and silence rules, a number for rate and ratio rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawThreshold {
    Text(String),
    Number(f64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// The alert's name (`alertname`).
    pub name: String,
    /// `freshness_lag`, `sync_lag`, `silence`, `rate_low`, `rate_high`, `invalid_ratio`,
    /// `consumer_lag` or `consumer_sync_lag`.
    pub kind: String,
    /// A stream name; a pair name for `sync_lag`; a consumer name for the consumer kinds.
    pub target: String,
    /// For `consumer_sync_lag`: the pair (both of whose streams the consumer reads).
    pub pair: Option<String>,
    /// A duration (`"15m"`) for lag and silence, records/s for rates, a fraction (0–1)
    /// for `invalid_ratio`, band half-widths for `volume_anomaly` (default 1: the band's
    /// edge).
    pub threshold: Option<RawThreshold>,
    /// Once firing, the alert resolves only past this (hysteresis); default: threshold.
    pub clear: Option<RawThreshold>,
    /// How long the condition must hold before the alert fires.
    #[serde(default = "default_for", rename = "for")]
    pub for_: String,
    /// The `severity` label.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Extra labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The business consequence, for the person paged.
    pub impact: String,
}

fn default_for() -> String {
    "0s".into()
}
fn default_severity() -> String {
    "warning".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPair {
    pub name: String,
    /// The stream the follower must keep up with (e.g. orders).
    pub leader: String,
    /// The stream that must keep up (e.g. behaviour).
    pub follower: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    /// The `consumer` label (e.g. `analytics`).
    pub name: String,
    /// Its Kafka group id: pipewatch reads the group's committed offsets, never joins it.
    pub group: String,
    /// The configured streams it reads.
    pub streams: Vec<String>,
    /// Lag seconds above this: `consumer_lagging`.
    #[serde(default = "default_max_lag")]
    pub max_lag: String,
    /// Committed offsets still for longer while records wait: `consumer_stopped`.
    #[serde(default = "default_max_stall")]
    pub max_stall: String,
}

fn default_max_lag() -> String {
    "15m".into()
}
fn default_max_stall() -> String {
    "5m".into()
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceConfig,
    pub listen: SocketAddr,
    /// Base URL of the HTTP interface as people reach it.
    pub external_url: String,
    pub granularity: Granularity,
    /// TLS and basic auth of the listener (`http.web_config_file`).
    pub web: Option<crate::web::WebConfig>,
    /// `/healthz` and `/readyz` without basic auth.
    pub probes_without_auth: bool,
    /// How long queued notifications are still delivered at shutdown.
    pub shutdown_grace: Duration,
    pub alerts: Vec<AlertRule>,
    pub receivers: Vec<ReceiverConfig>,
    pub settings: MonitorSettings,
    pub streams: Vec<StreamSpec>,
    pub pairs: Vec<PairSpec>,
    pub consumers: Vec<ConsumerSpec>,
}

/// Every problem found, each with its key path.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "config is invalid ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for (key, msg) in &self.problems {
            write!(f, "\n  {key}: {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.0.push((key.into(), msg.into()));
    }

    fn duration(&mut self, key: impl Into<String>, text: &str) -> Duration {
        match parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.add(key, e);
                Duration::ZERO
            }
        }
    }

    fn positive_duration(&mut self, key: &str, text: &str) -> Duration {
        let d = self.duration(key, text);
        if d.is_zero() && parse_duration(text).is_ok() {
            self.add(key, "must be greater than zero");
        }
        d
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, anyhow::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("failed to read {}: {e}", path.display()))?;
    Ok(parse(&text)?)
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_else(|| "config".into());
        ConfigError { problems: vec![(key, e.message().to_string())] }
    })?;
    raw.validate()
}

/// Names the place of a TOML error: the key path (`stream[1].max_silence`) as far as
/// the text shows it, and the line.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut table = String::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let raw_line = text[line_start..].lines().next().unwrap_or("");
    let line = raw_line.trim();
    // A table's own header counts when the error points at it (e.g. a missing field).
    let headers_end = if line.starts_with('[') { line_start + raw_line.len() } else { line_start };
    for l in text[..headers_end].lines().map(str::trim) {
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim();
            let n = counts.entry(name).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
        }
    }
    let key = match line.split_once('=') {
        Some((k, _)) if !line.starts_with('[') => k.trim().trim_matches('"'),
        _ => "",
    };
    let path = match (table.is_empty(), key.is_empty()) {
        (true, true) => "config".to_string(),
        (true, false) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    format!("{path} (line {line_no})")
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut p = Problems::default();

        let k = &self.kafka;
        if k.bootstrap_servers.trim().is_empty() {
            p.add("kafka.bootstrap_servers", "must name at least one broker, e.g. \"localhost:9092\"");
        }
        if k.group_id.trim().is_empty() {
            p.add("kafka.group_id", "must not be empty");
        }
        let lookback = p.positive_duration("kafka.lookback", &k.lookback);
        let start = match k.start.as_str() {
            "earliest" => Start::Earliest,
            "latest" => Start::Latest,
            "lookback" => Start::Lookback(lookback),
            other => {
                p.add("kafka.start", format!("{other:?} is not one of earliest, latest, lookback"));
                Start::Latest
            }
        };
        for key in k.properties.keys() {
            if matches!(key.as_str(), "group.id" | "enable.auto.commit" | "bootstrap.servers") {
                p.add(
                    format!("kafka.properties.\"{key}\""),
                    "is set by pipewatch (use kafka.group_id / kafka.bootstrap_servers; offsets are never committed)",
                );
            }
        }

        let listen = match self.http.listen.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.add("http.listen", format!("{:?} is not an address like \"127.0.0.1:9464\"", self.http.listen));
                SocketAddr::from(([127, 0, 0, 1], 9464))
            }
        };

        let granularity = match self.metrics.granularity.as_str() {
            "partition" => Granularity::Partition,
            "stream" => Granularity::Stream,
            other => {
                p.add("metrics.granularity", format!("{other:?} is not one of partition, stream"));
                Granularity::Partition
            }
        };

        let shutdown_grace = p.duration("shutdown.grace", &self.shutdown.grace);
        let web = self.http.web_config_file.as_deref().and_then(|path| match crate::web::load(path) {
            Ok(web) => Some(web),
            Err(problems) => {
                for problem in problems {
                    p.add("http.web_config_file", problem);
                }
                None
            }
        });

        let m = &self.monitor;
        let tick = p.positive_duration("monitor.tick", &m.tick);
        let idle = p.positive_duration("monitor.idle_partition_timeout", &m.idle_partition_timeout);
        let rate_window = p.positive_duration("monitor.rate_window", &m.rate_window);
        let skew = p.duration("monitor.max_future_skew", &m.max_future_skew);
        if !tick.is_zero() && !rate_window.is_zero() && rate_window < tick * 2 {
            p.add("monitor.rate_window", format!("must span at least two ticks ({})", m.tick));
        }

        if self.streams.is_empty() {
            p.add("stream", "no [[stream]] configured: nothing to watch");
        }
        let mut names = HashSet::new();
        let mut topics = HashSet::new();
        let mut streams = Vec::new();
        for (i, s) in self.streams.iter().enumerate() {
            let key = |f: &str| format!("stream[{i}].{f}");
            if s.name.trim().is_empty() {
                p.add(key("name"), "must not be empty");
            } else if !names.insert(s.name.as_str()) {
                p.add(key("name"), format!("duplicate stream name {:?}", s.name));
            }
            if s.topic.trim().is_empty() {
                p.add(key("topic"), "must not be empty");
            } else if !topics.insert(s.topic.as_str()) {
                p.add(key("topic"), format!("topic {:?} is already watched by another stream", s.topic));
            }
            let source = event_time_source(&s.event_time, &key("event_time"), &mut p);
            let max_silence = p.positive_duration(&key("max_silence"), &s.max_silence);
            let max_record_delay = p.positive_duration(&key("max_record_delay"), &s.max_record_delay);
            for (f, v) in [("min_rate", s.min_rate), ("max_rate", s.max_rate)] {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    p.add(key(f), "must be a number of records per second, 0 or more");
                }
            }
            if let (Some(min), Some(max)) = (s.min_rate, s.max_rate) {
                if min > max {
                    p.add(key("min_rate"), format!("{min} is above max_rate {max}"));
                }
            }
            let baseline = s.baseline.as_ref().map(|b| {
                let key = |f: &str| format!("stream[{i}].baseline.{f}");
                let history = p.positive_duration(&key("history"), &b.history);
                if history > Duration::from_secs(90 * 86_400) {
                    p.add(key("history"), "at most 90d (the history is read from the broker at start)");
                } else if !history.is_zero() && history < Duration::from_secs(86_400) {
                    p.add(key("history"), "at least 1d (a day of hours is the shortest slot period)");
                }
                if !(b.sensitivity.is_finite() && b.sensitivity > 0.0) {
                    p.add(key("sensitivity"), "must be a number greater than 0 (robust standard deviations)");
                }
                if !(b.tolerance.is_finite() && (0.0..=1.0).contains(&b.tolerance)) {
                    p.add(key("tolerance"), "must be a share of the expected rate, 0 to 1");
                }
                if !(b.floor.is_finite() && b.floor > 0.0) {
                    p.add(key("floor"), "must be a number of records per second greater than 0");
                }
                BaselineSpec {
                    history_ms: history.as_millis() as i64,
                    sensitivity: b.sensitivity,
                    tolerance: b.tolerance,
                    floor: b.floor,
                }
            });
            let mut segments = Vec::new();
            for (j, g) in s.segments.iter().enumerate() {
                let key = |f: &str| format!("stream[{i}].segments[{j}].{f}");
                let valid =
                    !g.name.is_empty() && g.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    p.add(key("name"), "must be a short name of letters, digits, _ or - (the segment label)");
                } else if s.segments[..j].iter().any(|o| o.name == g.name) {
                    p.add(key("name"), format!("duplicate segment name {:?}", g.name));
                }
                match JsonPointer::parse(&g.field) {
                    Ok(pointer) => segments.push(SegmentSpec { name: g.name.clone(), pointer }),
                    Err(e) => p.add(key("field"), e.0),
                }
            }
            if !(1..=1000).contains(&s.max_segment_values) {
                p.add(key("max_segment_values"), "must be 1 to 1000 (each value is a series)");
            }
            if s.segments.len() > 8 {
                p.add(key("segments"), "at most 8 segments per stream (each costs a field lookup per record)");
            }
            streams.push(StreamSpec {
                segments,
                max_segment_values: s.max_segment_values,
                baseline,
                name: s.name.clone(),
                topic: s.topic.clone(),
                extractor: Extractor::new(source, skew.as_millis() as i64),
                max_silence_ms: max_silence.as_millis() as i64,
                max_record_delay_ms: max_record_delay.as_millis() as i64,
                min_rate: s.min_rate,
                max_rate: s.max_rate,
            });
        }

        let known = || self.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        let mut pairs = Vec::new();
        for (i, pr) in self.pairs.iter().enumerate() {
            let key = |f: &str| format!("pair[{i}].{f}");
            if pr.name.trim().is_empty() {
                p.add(key("name"), "must not be empty");
            } else if !names.insert(pr.name.as_str()) {
                p.add(key("name"), format!("duplicate name {:?} (stream and pair names share one namespace)", pr.name));
            }
            let mut find = |f: &str, name: &str| {
                let idx = self.streams.iter().position(|s| s.name == name);
                if idx.is_none() {
                    p.add(key(f), format!("no stream named {name:?} (known: {})", known()));
                }
                idx
            };
            let leader = find("leader", &pr.leader);
            let follower = find("follower", &pr.follower);
            if pr.leader == pr.follower {
                p.add(key("follower"), "must differ from the leader");
            }
            if let (Some(leader), Some(follower)) = (leader, follower) {
                pairs.push(PairSpec { name: pr.name.clone(), leader, follower });
            }
        }

        let consumers = consumer_specs(&self, &mut p);
        let alerts = self.alerts.iter().enumerate().filter_map(|(i, a)| alert_rule(i, a, &self, &mut p)).collect();
        let external_url = match &self.http.external_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_string(),
            Some(u) => {
                p.add("http.external_url", format!("{u:?} is not an http:// or https:// URL"));
                String::new()
            }
            None => {
                format!("{}://{listen}", if web.as_ref().is_some_and(|w| w.tls.is_some()) { "https" } else { "http" })
            }
        };

        let receivers = receiver_configs(&self, &mut p);

        let config = Config {
            external_url,
            granularity,
            web,
            probes_without_auth: self.http.probes_without_auth,
            shutdown_grace,
            alerts,
            receivers,
            source: SourceConfig {
                bootstrap_servers: k.bootstrap_servers.clone(),
                group_id: k.group_id.clone(),
                start,
                properties: k.properties.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                tick,
            },
            listen,
            settings: MonitorSettings {
                idle_partition_timeout_ms: idle.as_millis() as i64,
                rate_window_ms: rate_window.as_millis() as i64,
            },
            streams,
            pairs,
            consumers,
        };
        if p.0.is_empty() {
            if let Err(e) = pipewatch_kafka::validate_properties(&config.source) {
                p.add("kafka.properties", format!("librdkafka rejects them: {e}"));
            }
        }
        if p.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems: p.0 })
        }
    }
}

/// The `[[consumer]]`s, validated: unique names, a group that is not pipewatch's own,
/// known streams, each once.
fn consumer_specs(raw: &RawConfig, p: &mut Problems) -> Vec<ConsumerSpec> {
    let known = || raw.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut consumers = Vec::new();
    for (i, c) in raw.consumers.iter().enumerate() {
        let key = |f: &str| format!("consumer[{i}].{f}");
        if c.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if raw.consumers[..i].iter().any(|o| o.name == c.name) {
            p.add(key("name"), format!("duplicate consumer name {:?}", c.name));
        }
        if c.group.trim().is_empty() {
            p.add(key("group"), "must not be empty");
        } else if c.group == raw.kafka.group_id {
            p.add(
                key("group"),
                format!("{:?} is pipewatch's own group (kafka.group_id): name the job's group", c.group),
            );
        }
        if c.streams.is_empty() {
            p.add(key("streams"), "must name at least one stream");
        }
        let mut streams_read = Vec::new();
        for (j, name) in c.streams.iter().enumerate() {
            match raw.streams.iter().position(|s| s.name == *name) {
                Some(_) if c.streams[..j].contains(name) => {
                    p.add(format!("consumer[{i}].streams[{j}]"), format!("{name:?} is listed twice"))
                }
                Some(idx) => streams_read.push(idx),
                None => p.add(
                    format!("consumer[{i}].streams[{j}]"),
                    format!("no stream named {name:?} (known: {})", known()),
                ),
            }
        }
        let max_lag = p.positive_duration(&key("max_lag"), &c.max_lag);
        let max_stall = p.positive_duration(&key("max_stall"), &c.max_stall);
        consumers.push(ConsumerSpec {
            name: c.name.clone(),
            group: c.group.clone(),
            streams: streams_read,
            max_lag_ms: max_lag.as_millis() as i64,
            max_stall_ms: max_stall.as_millis() as i64,
        });
    }
    consumers
}

/// The `[[receiver]]`s, validated.
fn receiver_configs(raw: &RawConfig, p: &mut Problems) -> Vec<ReceiverConfig> {
    let mut receivers = Vec::new();
    for (i, r) in raw.receivers.iter().enumerate() {
        let key = |f: &str| format!("receiver[{i}].{f}");
        if r.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if raw.receivers[..i].iter().any(|o| o.name == r.name) {
            p.add(key("name"), format!("duplicate receiver name {:?}", r.name));
        }
        let kind = match r.kind.as_str() {
            "alertmanager" => Some(ReceiverKind::Alertmanager),
            "webhook" => Some(ReceiverKind::Webhook),
            other => {
                p.add(key("kind"), format!("{other:?} is not one of alertmanager, webhook"));
                None
            }
        };
        if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
            p.add(key("url"), format!("{:?} is not an http:// or https:// URL", r.url));
        }
        let timeout = p.positive_duration(&key("timeout"), &r.timeout);
        let resend_interval = p.positive_duration(&key("resend_interval"), &r.resend_interval);
        if r.queue_capacity == 0 {
            p.add(key("queue_capacity"), "must be at least 1");
        }
        let ca_pem = r.ca_file.as_ref().and_then(|path| match std::fs::read(path) {
            Ok(pem) => match pipewatch_alert::check_ca(&pem) {
                Ok(()) => Some(pem),
                Err(e) => {
                    p.add(key("ca_file"), format!("{path:?} is not a PEM certificate: {e}"));
                    None
                }
            },
            Err(e) => {
                p.add(key("ca_file"), format!("cannot read {path:?}: {e}"));
                None
            }
        });
        let authorization = match (&r.bearer_token_file, &r.basic_auth) {
            (Some(_), Some(_)) => {
                p.add(key("basic_auth"), "set one of bearer_token_file and basic_auth");
                None
            }
            (Some(path), None) => secret_file(path, key("bearer_token_file"), p).map(|t| Secret::bearer(&t)),
            (None, Some(b)) => {
                if b.username.is_empty() {
                    p.add(key("basic_auth.username"), "must not be empty");
                }
                secret_file(&b.password_file, key("basic_auth.password_file"), p)
                    .map(|pw| Secret::basic(&b.username, &pw))
            }
            (None, None) => None,
        };
        if let Some(kind) = kind {
            receivers.push(ReceiverConfig {
                name: r.name.clone(),
                kind,
                url: r.url.clone(),
                timeout,
                resend_interval,
                queue_capacity: r.queue_capacity,
                ca_pem,
                authorization,
            });
        }
    }
    receivers
}

fn alert_rule(i: usize, a: &RawAlert, raw: &RawConfig, p: &mut Problems) -> Option<AlertRule> {
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
    let pair_index = |name: &str| raw.pairs.iter().position(|pr| pr.name == name);
    if a.pair.is_some() && kind != AlertKind::ConsumerSyncLag {
        p.add(key("pair"), "only consumer_sync_lag takes a pair (its target is a consumer)");
    }
    let target = if kind.target_kind() == TargetKind::Consumer {
        let found = raw.consumers.iter().position(|c| c.name == a.target);
        if found.is_none() {
            let known: Vec<&str> = raw.consumers.iter().map(|c| c.name.as_str()).collect();
            p.add(
                key("target"),
                format!("{} needs a consumer; no consumer named {:?} (known: {})", a.kind, a.target, known.join(", ")),
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
        let found = pair_index(&a.target).map(AlertTarget::Pair);
        if found.is_none() {
            let known: Vec<&str> = raw.pairs.iter().map(|pr| pr.name.as_str()).collect();
            p.add(
                key("target"),
                format!("sync_lag needs a pair; no pair named {:?} (known: {})", a.target, known.join(", ")),
            );
        }
        found
    } else {
        let found = raw.streams.iter().position(|st| st.name == a.target).map(AlertTarget::Stream);
        if found.is_none() {
            let known: Vec<&str> = raw.streams.iter().map(|st| st.name.as_str()).collect();
            let hint = if raw.pairs.iter().any(|pr| pr.name == a.target) {
                " (a pair: only sync_lag targets pairs)"
            } else {
                ""
            };
            p.add(key("target"), format!("no stream named {:?}{hint} (known: {})", a.target, known.join(", ")));
        }
        found
    };
    let threshold = match (&a.threshold, kind.default_threshold()) {
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
    if a.severity.trim().is_empty() {
        p.add(key("severity"), "must not be empty");
    }
    if a.impact.trim().is_empty() {
        p.add(key("impact"), "say what this fault costs the business: the person paged reads it first");
    }
    for name in a.labels.keys() {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            p.add(key(&format!("labels.{name}")), "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)");
        } else if pipewatch_core::alert::RESERVED_LABELS.contains(&name.as_str()) {
            p.add(key(&format!("labels.{name}")), "is set by pipewatch");
        }
    }
    if p.0.len() > before {
        return None;
    }
    Some(AlertRule {
        name: a.name.clone(),
        kind,
        target: target?,
        threshold: threshold?,
        clear: clear?,
        for_ms,
        severity: a.severity.clone(),
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        impact: a.impact.trim().to_string(),
    })
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

fn event_time_source(e: &RawEventTime, key: &str, p: &mut Problems) -> EventTimeSource {
    let fallback = EventTimeSource::KafkaTimestamp;
    match (&e.source, &e.field) {
        (Some(source), None) => {
            if source != "kafka_timestamp" {
                p.add(
                    format!("{key}.source"),
                    format!("{source:?} is not a source; the only one is \"kafka_timestamp\""),
                );
            }
            if e.format.is_some() {
                p.add(format!("{key}.format"), "goes with field, not with source = \"kafka_timestamp\"");
            }
            fallback
        }
        (None, Some(field)) => {
            let pointer =
                JsonPointer::parse(field).map_err(|err| p.add(format!("{key}.field"), format!("{field:?}: {}", err.0)));
            let format = match &e.format {
                None => {
                    p.add(format!("{key}.format"), format!("missing: one of {}", TimeFormat::NAMES.join(", ")));
                    None
                }
                Some(f) => {
                    let parsed = TimeFormat::from_name(f);
                    if parsed.is_none() {
                        p.add(format!("{key}.format"), format!("{f:?} is not one of {}", TimeFormat::NAMES.join(", ")));
                    }
                    parsed
                }
            };
            match (pointer, format) {
                (Ok(pointer), Some(format)) => EventTimeSource::Field { pointer, format },
                _ => fallback,
            }
        }
        (Some(_), Some(_)) => {
            p.add(key, "set either field (with format) or source = \"kafka_timestamp\", not both");
            fallback
        }
        (None, None) => {
            p.add(key, "set field = \"/json/pointer\" with format, or source = \"kafka_timestamp\"");
            fallback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../pipewatch.example.toml");

    #[test]
    fn the_example_config_is_valid() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.streams.len(), 2);
        assert_eq!(c.pairs.len(), 1);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.source.start, Start::Lookback(Duration::from_secs(900)));
        assert_eq!(c.alerts.len(), 3);
        assert_eq!(c.alerts[2].kind, AlertKind::SegmentSilence);
        assert_eq!(c.streams[1].segments.len(), 1);
        assert_eq!(c.alerts[0].threshold, 900.0);
        assert_eq!(c.alerts[0].clear, 600.0);
        assert_eq!(c.external_url, "http://127.0.0.1:9464");
        assert_eq!(c.receivers.len(), 1);
        assert_eq!(c.receivers[0].kind, ReceiverKind::Alertmanager);
        assert_eq!(c.receivers[0].resend_interval, Duration::from_secs(60));
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
start = "beginning"
[metrics]
granularity = "topic"
[shutdown]
grace = "soon"
[monitor]
tick = "1 second"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "created_at", format = "rfc3339" }
max_silence = "2x"
[[stream]]
name = "orders"
topic = "user-behaviour"
event_time = { field = "/ts", format = "epoch_ms" }
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behavior"
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "kafka.start",
                "metrics.granularity",
                "shutdown.grace",
                "monitor.tick",
                "stream[0].event_time.field",
                "stream[0].max_silence",
                "stream[1].name",
                "stream[1].event_time.format",
                "pair[0].follower",
            ],
            "{err}"
        );
        let shown = err.to_string();
        assert!(shown.starts_with("config is invalid (9 problems)"), "{shown}");
        assert!(shown.contains("metrics.granularity: \"topic\" is not one of partition, stream"), "{shown}");
        assert!(
            shown.contains("\"epoch_ms\" is not one of rfc3339, epoch_seconds, epoch_millis, epoch_micros"),
            "{shown}"
        );
        assert!(shown.contains("no stream named \"behavior\" (known: orders, orders)"), "{shown}");
    }

    #[test]
    fn baselines_and_segments_are_validated_with_their_keys() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "2h", sensitivity = 0.0, tolerance = 1.5, floor = 0.0 }
segments = [{ name = "channel", field = "channel" }, { name = "channel", field = "/c" }, { name = "a b", field = "/x" }]
max_segment_values = 0
[[stream]]
name = "behaviour"
topic = "behaviour"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "365d" }
[[alert]]
name = "OrdersOffUsual"
kind = "volume_anomaly"
target = "orders"
threshold = -1.0
impact = "x"
[[alert]]
name = "BehaviourOffUsual"
kind = "volume_anomaly"
target = "behaviour"
impact = "x"
[[alert]]
name = "NoBaseline"
kind = "volume_anomaly"
target = "behaviour2"
impact = "x"
[[alert]]
name = "PathStopped"
kind = "segment_silence"
target = "orders"
impact = "x"
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "stream[0].baseline.history",
                "stream[0].baseline.sensitivity",
                "stream[0].baseline.tolerance",
                "stream[0].baseline.floor",
                "stream[0].segments[0].field",
                "stream[0].segments[1].name",
                "stream[0].segments[2].name",
                "stream[0].max_segment_values",
                "stream[1].baseline.history",
                "alert[0].threshold",
                "alert[2].target",
                "alert[3].threshold",
            ],
            "{err}"
        );
        let shown = err.to_string();
        assert!(shown.contains("at least 1d"), "{shown}");
        assert!(shown.contains("duplicate segment name \"channel\""), "{shown}");
        assert!(shown.contains("segment_silence needs a threshold"), "{shown}");
        // a volume_anomaly needs the stream's baseline; its threshold defaults to the band's edge
        let without = text.replace("baseline = { history = \"365d\" }\n", "");
        let err = parse(&without).unwrap_err();
        assert!(err.to_string().contains("volume_anomaly needs a baseline on stream \"behaviour\""), "{err}");
        let good = parse(
            "[kafka]\nbootstrap_servers = \"k:9092\"\n[[stream]]\nname = \"o\"\ntopic = \"o\"\n\
             event_time = { field = \"/ts\", format = \"epoch_millis\" }\nbaseline = {}\n\
             [[alert]]\nname = \"A\"\nkind = \"volume_anomaly\"\ntarget = \"o\"\nimpact = \"x\"\n",
        )
        .unwrap();
        let spec = good.streams[0].baseline.unwrap();
        assert_eq!((spec.history_ms, spec.sensitivity, spec.tolerance, spec.floor), (14 * 86_400_000, 3.0, 0.2, 1.0));
        assert_eq!((good.alerts[0].threshold, good.alerts[0].clear), (1.0, 1.0));
    }

    #[test]
    fn alert_rules_are_validated_with_their_keys() {
        let head = EXAMPLE.split("[[alert]]").next().unwrap();
        let text = format!(
            r#"{head}
[[alert]]
name = "BehaviourBehindOrders"
kind = "sync_lag"
target = "orders"
threshold = "15m"
clear = "20m"
impact = "stale segmentation"
[[alert]]
name = "OrdersInvalid"
kind = "invalid_ratio"
target = "orders_behaviour"
threshold = 5
impact = ""
labels = {{ "team-name" = "x", cause = "y" }}
[[alert]]
name = "OrdersSlow"
kind = "rate_lowish"
target = "orders"
threshold = 1
impact = "x"
"#
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "alert[0].target",
                "alert[0].clear",
                "alert[1].target",
                "alert[1].threshold",
                "alert[1].impact",
                "alert[1].labels.cause",
                "alert[1].labels.team-name",
                "alert[2].kind",
            ],
            "{err}"
        );
        assert!(err.to_string().contains("(a pair: only sync_lag targets pairs)"), "{err}");
    }

    #[test]
    fn receiver_secrets_and_cas_come_from_files_and_every_problem_is_keyed() {
        let dir = std::env::temp_dir().join(format!("pipewatch-receiver-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t0ken\n").unwrap();
        std::fs::write(dir.join("empty"), "\n").unwrap();
        std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
        let d = dir.display();
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[receiver]]
name = "ok"
kind = "webhook"
url = "https://hooks.example.com/"
bearer_token_file = "{d}/token"
[[receiver]]
name = "both"
kind = "webhook"
url = "https://hooks.example.com/"
bearer_token_file = "{d}/token"
basic_auth = {{ username = "pw", password_file = "{d}/token" }}
[[receiver]]
name = "files"
kind = "alertmanager"
url = "https://am.example.com"
ca_file = "{d}/ca.pem"
basic_auth = {{ username = "", password_file = "{d}/empty" }}
[[receiver]]
name = "missing"
kind = "alertmanager"
url = "https://am.example.com"
ca_file = "{d}/nothing.pem"
bearer_token_file = "{d}/nothing"
"#
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "receiver[1].basic_auth",
                "receiver[2].ca_file",
                "receiver[2].basic_auth.username",
                "receiver[2].basic_auth.password_file",
                "receiver[3].ca_file",
                "receiver[3].bearer_token_file",
            ],
            "{err}"
        );
        assert!(!err.to_string().contains("t0ken"), "{err}");
        let ok = parse(text.split("[[receiver]]\nname = \"both\"").next().unwrap()).unwrap();
        assert_eq!(ok.receivers[0].authorization, Some(Secret::bearer("t0ken")), "the newline is not part of it");
        assert!(!format!("{ok:?}").contains("t0ken"), "Debug shows no secret");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn consumers_are_validated_with_their_keys() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["orders", "behaviour"]
max_lag = "30m"
[[consumer]]
name = "analytics"
group = "pipewatch"
streams = ["ordres", "orders", "orders"]
max_stall = "soon"
[[consumer]]
name = "reporting"
group = ""
streams = []
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        for want in [
            "consumer[1].name: duplicate consumer name \"analytics\"",
            "consumer[1].group: \"pipewatch\" is pipewatch's own group (kafka.group_id)",
            "consumer[1].streams[0]: no stream named \"ordres\" (known: orders, behaviour)",
            "consumer[1].streams[2]: \"orders\" is listed twice",
            "consumer[1].max_stall: \"soon\" is not a duration",
            "consumer[2].group: must not be empty",
            "consumer[2].streams: must name at least one stream",
        ] {
            assert!(err.contains(want), "missing {want:?} in\n{err}");
        }
        let good = format!(
            "{EXAMPLE}{}",
            "[[consumer]]\nname = \"analytics\"\ngroup = \"analytics-job\"\nstreams = [\"behaviour\"]\n"
        );
        let c = parse(&good).unwrap();
        assert_eq!(c.consumers[0].streams, vec![1]);
        assert_eq!((c.consumers[0].max_lag_ms, c.consumers[0].max_stall_ms), (900_000, 300_000), "defaults 15m, 5m");
    }

    #[test]
    fn consumer_alerts_name_a_consumer_and_for_the_sync_lag_a_pair_it_reads() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["behaviour"]
[[alert]]
name = "A"
kind = "consumer_lag"
target = "analytcs"
threshold = "15m"
impact = "stale"
[[alert]]
name = "B"
kind = "consumer_sync_lag"
target = "analytics"
pair = "orders_behaviour"
threshold = "15m"
impact = "stale"
[[alert]]
name = "C"
kind = "consumer_sync_lag"
target = "analytics"
threshold = "15m"
impact = "stale"
[[alert]]
name = "D"
kind = "freshness_lag"
target = "orders"
pair = "orders_behaviour"
threshold = "15m"
impact = "stale"
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        // the example's own alerts come first
        let first = EXAMPLE.matches("\n[[alert]]").count();
        for (i, want) in [
            "target: consumer_lag needs a consumer; no consumer named \"analytcs\" (known: analytics)",
            "pair: consumer \"analytics\" does not read both \"orders\" and \"behaviour\"",
            "pair: consumer_sync_lag needs the pair whose sync lag the consumer sees",
            "pair: only consumer_sync_lag takes a pair",
        ]
        .into_iter()
        .enumerate()
        {
            let want = format!("alert[{}].{want}", first + i);
            assert!(err.contains(&want), "missing {want:?} in\n{err}");
        }
    }

    #[test]
    fn labels_pipewatch_sets_on_a_consumer_alert_are_refused_with_their_key() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["behaviour"]
[[alert]]
name = "A"
kind = "consumer_lag"
target = "analytics"
threshold = "15m"
impact = "stale"
labels = { group = "data", consumer = "x", team = "data" }
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        let first = EXAMPLE.matches("\n[[alert]]").count();
        for label in ["group", "consumer"] {
            let want = format!("alert[{first}].labels.{label}: is set by pipewatch");
            assert!(err.contains(&want), "missing {want:?} in\n{err}");
        }
        assert!(!err.contains("labels.team"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse("[kafka]\nbootstrap_servers = \"x:1\"\nbootstrap = \"y\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka.bootstrap (line 3): unknown field `bootstrap`"), "{err}");
        let stream = "[[stream]]\nname = \"a\"\ntopic = \"a\"\nevent_time = { source = \"kafka_timestamp\" }\n";
        let err = parse(&format!("[kafka]\nbootstrap_servers = \"x:1\"\n{stream}[[stream]]\nname = 5\n")).unwrap_err();
        assert!(err.to_string().contains("stream[1].name (line 8): invalid type: integer `5`"), "{err}");
        let err =
            parse(&format!("[kafka]\nbootstrap_servers = \"x:1\"\n{stream}[[stream]]\nname = \"b\"\n")).unwrap_err();
        assert!(err.to_string().contains("stream[1] (line 7): missing field `topic`"), "{err}");
    }

    #[test]
    fn kafka_timestamp_source_and_bad_properties() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[kafka.properties]
"no.such.property" = "1"
[[stream]]
name = "clicks"
topic = "clicks"
event_time = { source = "kafka_timestamp" }
"#;
        let err = parse(text).unwrap_err();
        assert_eq!(err.problems[0].0, "kafka.properties");
        assert!(err.problems[0].1.contains("no.such.property"), "{err}");
    }

    mod never_panics {
        use proptest::prelude::*;

        const EXAMPLE: &str = include_str!("../../../pipewatch.example.toml");

        /// Loading never panics: a config is valid, or every problem has a key.
        fn loads(text: &str) -> Result<(), TestCaseError> {
            if let Err(e) = super::parse(text) {
                prop_assert!(!e.problems.is_empty());
                prop_assert!(e.problems.iter().all(|(k, m)| !k.is_empty() && !m.is_empty()), "{}", e);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn random_text(text in "\\PC{0,300}") {
                loads(&text)?;
            }

        }

        proptest! {
            // A config that validates creates a librdkafka client to check its properties
            // (milliseconds each): fewer cases here.
            #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn truncated_and_mutated_example(cut in 0..EXAMPLE.len(), edits in prop::collection::vec((0..EXAMPLE.len(), "[\\[\\]=\"{}0-9a-z.,\n -]"), 1..6)) {
                loads(EXAMPLE.get(..cut).unwrap_or(EXAMPLE))?;
                let mut text = EXAMPLE.to_string();
                for (at, with) in edits {
                    let at = (0..=at.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                    text.insert_str(at, &with);
                }
                loads(&text)?;
            }


            #[test]
            fn odd_values_for_every_duration_and_number(value in prop_oneof![
                "\"[0-9]{1,30}[a-z]{0,3}\"", "-?[0-9]{1,30}(\\.[0-9]{1,5})?(e[0-9]{1,4})?", Just("\"\"".to_string()),
                Just("nan".to_string()), Just("inf".to_string()), Just("-inf".to_string()),
            ]) {
                for key in ["tick", "idle_partition_timeout", "rate_window", "max_future_skew"] {
                    loads(&format!("{EXAMPLE}\n").replace(&format!("\n{key} = "), &format!("\n{key} = {value}\n# ")))?;
                }
                for key in ["max_silence", "min_rate", "threshold", "lookback", "grace"] {
                    loads(&EXAMPLE.replacen(&format!("\n{key} = "), &format!("\n{key} = {value}\n# "), 1))?;
                }
            }
        }
    }
}
