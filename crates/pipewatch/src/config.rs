//! The config file (TOML): raw serde structs that reject unknown keys, then
//! [`RawConfig::validate`], which reports every problem at once with its key path and
//! returns the validated [`Config`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

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
    /// The streams to watch, one topic each.
    #[serde(default, rename = "stream")]
    pub streams: Vec<RawStream>,
    /// Streams that downstream jobs join: their sync lag is measured.
    #[serde(default, rename = "pair")]
    pub pairs: Vec<RawPair>,
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
}

impl Default for RawHttp {
    fn default() -> Self {
        Self { listen: default_listen() }
    }
}

pub fn default_listen() -> String {
    "127.0.0.1:9464".into()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPair {
    pub name: String,
    /// The stream the follower must keep up with (e.g. orders).
    pub leader: String,
    /// The stream that must keep up (e.g. behaviour).
    pub follower: String,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceConfig,
    pub listen: SocketAddr,
    pub settings: MonitorSettings,
    pub streams: Vec<StreamSpec>,
    pub pairs: Vec<PairSpec>,
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
            streams.push(StreamSpec {
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

        let config = Config {
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
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
start = "beginning"
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
        assert!(shown.starts_with("config is invalid (7 problems)"), "{shown}");
        assert!(
            shown.contains("\"epoch_ms\" is not one of rfc3339, epoch_seconds, epoch_millis, epoch_micros"),
            "{shown}"
        );
        assert!(shown.contains("no stream named \"behavior\" (known: orders, orders)"), "{shown}");
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
}
